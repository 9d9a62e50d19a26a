"""Writing the judge's score onto the claim's trace in Langfuse.

A plain HTTP POST of one score (the documented single-object form), so the durable step that
calls it knows whether it landed: it retries until it does, except on answers no retry can fix
(wrong keys, a rejected score), which end it at once. The score id is derived from the claim, so
a retry after a crash overwrites instead of adding a second score."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import httpx

from .names import SCORE as SCORE_NAME
from .outage import LANGFUSE as OUTAGE


def score_id(claim_id: str, name: str = SCORE_NAME) -> str:
    return f"{claim_id}-{name}"


_client: httpx.AsyncClient | None = None


def _http() -> httpx.AsyncClient:
    """One client for the process: a client per call would build a TLS context every time."""
    global _client
    if _client is None:
        base = os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST", "")
        auth = (
            os.environ.get("LANGFUSE_PUBLIC_KEY", ""),
            os.environ.get("LANGFUSE_SECRET_KEY", ""),
        )
        _client = httpx.AsyncClient(base_url=base.rstrip("/"), auth=auth, timeout=10)
    return _client


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
    http = _http()
    where = str(http.base_url)
    try:
        response = await http.post("/api/public/scores", json=body)
    except httpx.TransportError as e:
        OUTAGE.failed(where, e, "the judges' scores are written when it answers")
        raise
    if response.status_code >= 500 or response.status_code == 429:
        OUTAGE.failed(where, f"HTTP {response.status_code}", "scores are written when it answers")
    else:
        OUTAGE.answered(where)
    if response.status_code in (400, 401, 403, 404, 422):
        raise ValueError(  # permanent: a retry cannot fix it (the step ends terminally)
            f"Langfuse refused the score for trace {trace_id} (HTTP {response.status_code}): "
            f"{response.text[:500]}. Check LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY."
        )
    response.raise_for_status()  # 429/5xx: retried by the durable step
    return score_id(claim_id, name)
