"""Journal revisions: how this code shapes a claim's journal for the same steps (orthogonal to
the service version of `versions.py`). Revision 1 recorded the step (a SetState) before every
step; revision 2 records it only where no entry of its own names the step (3 SetStates per claim
instead of 8). A claim journaled by revision 1 cannot be replayed by revision 2 code, so the
services keep serving every revision they know, each under its own path (`journal_path`): a
deployment registered by older code is moved to its revision's path when the stack restarts with
newer code, and its claims finish there, while new claims start on a new deployment at the root
path (`serve_journal_revisions`).

Kept free of heavy imports: the workbench's stack reads it on every start."""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

JOURNAL_REVISION = 2
"""The journal revision new claims are journaled with (see the module's docstring)."""
JOURNAL_REVISIONS = (1, 2)
"""Every revision this code still replays: older deployments drain on them."""
_JOURNAL_PATH = re.compile(r"^/journal/r(\d+)(?=/|$)")
_serving: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "journal_revision", default=None
)


def journal_path(revision: int) -> str:
    """The path under which the services serve claims journaled by `revision` (the root path
    serves `JOURNAL_REVISION`)."""
    if revision not in JOURNAL_REVISIONS:
        raise ValueError(
            f"Journal revision {revision} is not one this code replays ({JOURNAL_REVISIONS}): "
            "its claims need the code that journaled them."
        )
    return "" if revision == JOURNAL_REVISION else f"/journal/r{revision}"


def journal_revision() -> int:
    """The revision the current request is served with: its path's, else the root's
    (`WORKBENCH_JOURNAL_REVISION`, default `JOURNAL_REVISION`)."""
    serving = _serving.get()
    if serving is not None:
        return serving
    return int(os.environ.get("WORKBENCH_JOURNAL_REVISION") or JOURNAL_REVISION)


ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def serve_journal_revisions(app: ASGIApp) -> ASGIApp:
    """The Restate app, also under `/journal/r<N>` for each older revision (the SDK serves under
    any mount path); a revision this code does not know is answered 404 with the reason."""

    async def serve(scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = _JOURNAL_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await app(scope, receive, send)
            return
        revision = int(match[1])
        if revision not in JOURNAL_REVISIONS:
            body = (
                f"journal revision {revision} is not served by this code (it replays "
                f"{', '.join(map(str, JOURNAL_REVISIONS))}): deploy the code that journaled it"
            ).encode()
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        token = _serving.set(revision)
        try:
            await app(scope, receive, send)
        finally:
            _serving.reset(token)

    return serve


def served_at(uri: str) -> tuple[str, int]:
    """A deployment's URI -> (the services' own URI, the journal revision served there)."""
    base = uri.rstrip("/")
    found = re.search(r"/journal/r(\d+)$", base)
    if found is None:
        return base, JOURNAL_REVISION
    return base[: found.start()], int(found[1])
