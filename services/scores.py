"""Writing the judge's score onto the claim's trace in Langfuse.

A plain HTTP POST of one score (the documented single-object form), so the durable step that
calls it knows whether it landed: it retries until it does, except on answers no retry can fix
(wrong keys, a rejected score), which end it at once. The score id is derived from the claim, so
a retry after a crash overwrites instead of adding a second score.

The POST goes through the standard library's `http.client` on a worker thread, over kept-alive
connections, not through httpx: one request costs the services about 0.3 ms of CPU that way
against 1.5-2 ms with httpx's async client (measured against the embedded Langfuse, one at a
time; at concurrency 32 httpx's cost grew to 5 ms), and the services are the stack's
bottleneck. Proxies from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) are honoured as
httpx would."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import queue
import ssl
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .names import SCORE as SCORE_NAME
from .outage import LANGFUSE as OUTAGE

TIMEOUT_S = 10.0
PATH = "/api/public/scores"


def score_id(claim_id: str, name: str = SCORE_NAME) -> str:
    return f"{claim_id}-{name}"


class ScoreServerError(Exception):
    """Langfuse answered 429 or 5xx: the durable step retries."""


@dataclass(frozen=True)
class _Target:
    """Where scores go: the Langfuse base URL, its credentials, and the proxy if one applies."""

    base: str
    scheme: str
    host: str
    port: int
    prefix: str
    authorization: str
    proxy: tuple[str, int] | None

    @classmethod
    def from_env(cls) -> _Target:
        base = (os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST", "")).rstrip(
            "/"
        )
        parts = urlsplit(base)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(
                f"LANGFUSE_BASE_URL={base!r} is not an http(s) URL; set it to the Langfuse "
                "server, e.g. http://127.0.0.1:3000 or https://cloud.langfuse.com."
            )
        public, secret = (
            os.environ.get(k, "") for k in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY")
        )
        keys = f"{public}:{secret}"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(
            base=base,
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            prefix=parts.path.rstrip("/"),
            authorization="Basic " + base64.b64encode(keys.encode()).decode(),
            proxy=_proxy_for(parts.scheme, parts.hostname),
        )


def _proxy_for(scheme: str, host: str) -> tuple[str, int] | None:
    """The environment's proxy for this scheme and host (None when NO_PROXY names the host)."""
    if urllib.request.proxy_bypass_environment(host):
        return None
    proxy = urllib.request.getproxies_environment().get(scheme)
    if not proxy:
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or 80


class _Connections:
    """Kept-alive connections to one target, each used by one thread at a time."""

    def __init__(self, target: _Target) -> None:
        self.target = target
        self._idle: queue.SimpleQueue[http.client.HTTPConnection] = queue.SimpleQueue()
        self._tls = ssl.create_default_context() if target.scheme == "https" else None

    def _new(self) -> http.client.HTTPConnection:
        t = self.target
        host, port = t.proxy or (t.host, t.port)
        if self._tls is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=TIMEOUT_S, context=self._tls
            )
            if t.proxy is not None:
                conn.set_tunnel(t.host, t.port)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
        return conn

    def post(self, body: bytes) -> tuple[int, bytes]:
        """POST `body` to the scores endpoint: (status, response body). A kept-alive connection
        the server closed meanwhile is replaced once (the write is idempotent: the score's id)."""
        t = self.target
        url = t.prefix + PATH
        if t.proxy is not None and t.scheme == "http":
            url = f"{t.base}{PATH}"  # a plain-HTTP proxy takes the absolute URL
        headers = {
            "Authorization": t.authorization,
            "Content-Type": "application/json",
            "Host": t.host if t.port in (80, 443) else f"{t.host}:{t.port}",
        }
        for attempt in (0, 1):
            try:
                conn = self._idle.get_nowait()
                reused = True
            except queue.Empty:
                conn, reused = self._new(), False
            try:
                conn.request("POST", url, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle connection: once more on a fresh one
                raise
            except BaseException:
                conn.close()
                raise
            if response.will_close:
                conn.close()
            else:
                self._idle.put(conn)
            return response.status, data
        raise AssertionError("unreachable")


_connections: _Connections | None = None


def _pool() -> _Connections:
    """One pool for the process (the target is read from the environment once)."""
    global _connections
    if _connections is None:
        _connections = _Connections(_Target.from_env())
    return _connections


async def write_score(
    trace_id: str,
    claim_id: str,
    value: float,
    comment: str,
    metadata: dict[str, Any],
    name: str = SCORE_NAME,
) -> str:
    body = {
        "id": score_id(claim_id, name),
        "traceId": trace_id,
        "name": name,
        "value": value,
        "dataType": "NUMERIC",
        "comment": comment,
        "metadata": metadata,
        "environment": os.environ.get("LANGFUSE_TRACING_ENVIRONMENT", "default"),
        "timestamp": datetime.now(UTC).isoformat(),
    }
    pool = _pool()
    where = pool.target.base
    try:
        status, data = await asyncio.to_thread(pool.post, json.dumps(body).encode())
    except (OSError, http.client.HTTPException) as e:
        OUTAGE.failed(where, e, "the judges' scores are written when it answers")
        raise
    if status >= 500 or status == 429:
        OUTAGE.failed(where, f"HTTP {status}", "scores are written when it answers")
        raise ScoreServerError(f"Langfuse at {where} answered HTTP {status} to a score")
    OUTAGE.answered(where)
    if status == 408:
        raise ScoreServerError(f"Langfuse at {where} timed out a score (HTTP 408)")
    if not 200 <= status < 300:  # 3xx/4xx: a retry cannot fix it (the step ends terminally)
        hint = (
            "Check LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY."
            if status in (401, 403)
            else "Check LANGFUSE_BASE_URL (the server's root, without /api)."
            if status in (301, 302, 307, 308, 404, 405)
            else "The score's body is logged above; report it if it looks right."
        )
        raise ValueError(
            f"Langfuse refused the score for trace {trace_id} (HTTP {status}): "
            f"{data[:500].decode(errors='replace')}. {hint}"
        )
    return score_id(claim_id, name)
