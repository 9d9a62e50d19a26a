"""One Langfuse client per endpoints, shared by `workbench.prompts` and the trace/score readers.

The client is the real `langfuse` SDK (tracing off: the notebook only reads and manages), plus a
plain httpx client with Basic auth for the endpoints the SDK has no call for (the v1 traces API).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from .session import Endpoints, langfuse_endpoints

if TYPE_CHECKING:
    from langfuse import Langfuse


class LangfuseError(RuntimeError):
    """Langfuse could not be reached, refused the keys, or refused the request."""


_lock = threading.Lock()
_clients: dict[tuple[str, str, str], tuple[Langfuse, httpx.Client]] = {}


def _key(current: Endpoints) -> tuple[str, str, str]:
    assert current.langfuse_url and current.langfuse_public_key and current.langfuse_secret_key
    return current.langfuse_url, current.langfuse_public_key, current.langfuse_secret_key


def _evict_stale_sdk_state(url: str, public_key: str, secret_key: str) -> None:
    """The SDK keeps one resource manager per public key, whatever the URL: a kernel that moves
    from one Langfuse to another with the same keys (pk-lf-local on a new port) would keep
    talking to the old one. Drop such a stale entry."""
    from langfuse._client.resource_manager import LangfuseResourceManager

    with LangfuseResourceManager._lock:
        existing = LangfuseResourceManager._instances.get(public_key)
        if existing is None:
            return
        if existing.base_url.rstrip("/") == url and existing.secret_key == secret_key:
            return
        LangfuseResourceManager._instances.pop(public_key, None)
    _shutdown(existing)


def _shutdown(resources: Any) -> None:
    """Stop an SDK resource manager's threads, its prompt-cache refresher included (the SDK
    leaves that one to an exit hook)."""
    resources.shutdown()
    manager = getattr(getattr(resources, "prompt_cache", None), "_task_manager", None)
    if manager is not None:
        manager.shutdown()


def _make(url: str, public_key: str, secret_key: str) -> tuple[Langfuse, httpx.Client]:
    from langfuse import Langfuse

    _evict_stale_sdk_state(url, public_key, secret_key)
    sdk = Langfuse(
        public_key=public_key, secret_key=secret_key, base_url=url, tracing_enabled=False
    )
    http = httpx.Client(base_url=url, auth=(public_key, secret_key), timeout=10.0)
    return sdk, http


def _pair() -> tuple[Langfuse, httpx.Client]:
    key = _key(langfuse_endpoints())
    with _lock:
        if key not in _clients:
            _clients[key] = _make(*key)
        return _clients[key]


def sdk() -> Langfuse:
    """The `langfuse.Langfuse` client for this kernel's Langfuse (cached per endpoints)."""
    return _pair()[0]


def http() -> httpx.Client:
    """An httpx client with Basic auth, based at this kernel's Langfuse (cached per endpoints)."""
    return _pair()[1]


def url() -> str:
    return _key(langfuse_endpoints())[0]


def close() -> None:
    """Shut every cached client down (background threads included)."""
    from langfuse._client.resource_manager import LangfuseResourceManager

    with _lock:
        pairs = [*_clients.items()]
        _clients.clear()
    for (_, public_key, _), (client, http_client) in pairs:
        http_client.close()
        resources = getattr(client, "_resources", None)
        if resources is not None:
            _shutdown(resources)
        with LangfuseResourceManager._lock:
            if LangfuseResourceManager._instances.get(public_key) is resources:
                LangfuseResourceManager._instances.pop(public_key, None)


def describe_error(error: Exception) -> str:
    """A one-line reason from an SDK or HTTP error (the server's JSON message when it sent one)."""
    body: Any = getattr(error, "body", None)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    response = getattr(error, "response", None)
    if isinstance(response, httpx.Response):
        return describe_error_response(response)
    return str(error) or type(error).__name__


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Turn an unreachable server or refused keys into a LangfuseError that says what to do."""
    from langfuse.api import AccessDeniedError, UnauthorizedError

    try:
        yield
    except httpx.TransportError as e:
        raise LangfuseError(
            f"{what}: Langfuse at {url()} does not answer ({type(e).__name__}: {e}). Start the "
            "stack with workbench.start(), or check LANGFUSE_BASE_URL."
        ) from None
    except (UnauthorizedError, AccessDeniedError) as e:
        raise LangfuseError(
            f"{what}: Langfuse at {url()} refused the keys (public key "
            f"{langfuse_endpoints().langfuse_public_key!r}): {describe_error(e)}. Check "
            "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY."
        ) from None


def get_json(path: str, what: str, *, missing_ok: bool = False, **params: Any) -> Any:
    """GET a JSON answer with Basic auth (for the endpoints the SDK has no call for); None for a
    404 when `missing_ok`."""
    with guard(what):
        response = http().get(path, params={k: v for k, v in params.items() if v is not None})
    if response.status_code in (401, 403):
        raise LangfuseError(
            f"{what}: Langfuse at {url()} refused the keys (public key "
            f"{langfuse_endpoints().langfuse_public_key!r}): {describe_error_response(response)}. "
            "Check LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY."
        )
    if response.status_code == 404 and missing_ok:
        return None
    if not response.is_success:
        raise LangfuseError(
            f"{what}: HTTP {response.status_code} from {url()}: {describe_error_response(response)}"
        )
    return response.json()


def describe_error_response(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text[:300]
