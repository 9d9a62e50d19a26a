"""Who may look: the server's key pair once, then a signed session cookie.

The cookie holds `<expiry>.<hmac>` signed with the key pair, so it survives a server restart,
needs no storage, and stops working when the keys change. Its name carries a digest of the public
key: two stacks on the same host (cookies ignore ports) keep separate sessions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

SESSION_TTL_S = 7 * 24 * 3600
"""How long a login lasts (a local tool: a week, as a notebook server's token would)."""


class Keys:
    """The key pair the server was started with; checks keys and issues session tokens."""

    def __init__(self, public_key: str, secret_key: str) -> None:
        self._public = public_key.encode()
        self._secret = secret_key.encode()
        digest = hashlib.sha256(self._public).hexdigest()[:10]
        self.cookie_name = f"workbench_viewer_{digest}"
        self._signing_key = hashlib.sha256(
            b"viewer-session\0" + self._public + b"\0" + self._secret
        )

    def match(self, public_key: str, secret_key: str) -> bool:
        """Whether both keys are the server's (constant time, both always compared)."""
        public_ok = hmac.compare_digest(public_key.encode(), self._public)
        secret_ok = hmac.compare_digest(secret_key.encode(), self._secret)
        return public_ok and secret_ok

    def match_basic(self, header: str) -> bool:
        """Whether an `Authorization: Basic ...` header carries the server's keys."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode()
        except (binascii.Error, ValueError):
            return False
        public_key, sep, secret_key = decoded.partition(":")
        return bool(sep) and self.match(public_key, secret_key)

    def _sign(self, expires: int) -> str:
        return hmac.new(self._signing_key.digest(), str(expires).encode(), "sha256").hexdigest()

    def issue(self, now_s: float | None = None) -> str:
        """A session token valid for SESSION_TTL_S."""
        expires = int((time.time() if now_s is None else now_s) + SESSION_TTL_S)
        return f"{expires}.{self._sign(expires)}"

    def valid(self, token: str | None, now_s: float | None = None) -> bool:
        if not token:
            return False
        raw_expires, _, signature = token.partition(".")
        if not (raw_expires.isascii() and raw_expires.isdigit() and len(raw_expires) <= 12):
            return False
        expires = int(raw_expires)
        if expires < (time.time() if now_s is None else now_s):
            return False
        return hmac.compare_digest(signature, self._sign(expires))


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this server only (never another host)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
