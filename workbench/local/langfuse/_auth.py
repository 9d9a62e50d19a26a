"""Basic auth with the configured key pair, as Langfuse's public API: `base64(pk:sk)`."""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from ._errors import Unauthorized

OPEN_PATHS = frozenset({"/api/public/health"})


class BasicAuth:
    """ASGI middleware: every HTTP request but `OPEN_PATHS` needs the configured key pair."""

    def __init__(self, app: ASGIApp, *, public_key: str, secret_key: str) -> None:
        self.app = app
        self._public_key = public_key.encode()
        self._secret_key = secret_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = b""
        for key, value in scope["headers"]:
            if key == b"authorization":
                header = value
                break
        problem = self._problem(header)
        if problem is None:
            await self.app(scope, receive, send)
            return
        await Unauthorized(problem).response()(scope, receive, send)

    def _problem(self, header: bytes) -> str | None:
        """None when the header carries the configured keys, else what is wrong with it."""
        how = (
            "Send 'Authorization: Basic base64(public_key:secret_key)' with the keys this server "
            "was started with (LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY)."
        )
        scheme, _, token = header.partition(b" ")
        if not header:
            return f"No Authorization header. {how}"
        if scheme.lower() != b"basic":
            return f"Unsupported authorization scheme '{scheme.decode(errors='replace')}'. {how}"
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return f"The Basic credentials are not valid base64. {how}"
        public_key, sep, secret_key = decoded.partition(b":")
        if not sep:
            return f"The Basic credentials have no ':' between public and secret key. {how}"
        public_ok = hmac.compare_digest(public_key, self._public_key)
        secret_ok = hmac.compare_digest(secret_key, self._secret_key)
        if public_ok and secret_ok:
            return None
        shown = public_key.decode(errors="replace")
        return f"Invalid credentials: public key '{shown}' with this secret key is unknown. {how}"
