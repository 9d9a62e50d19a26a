"""A read-only trace viewer at the embedded Langfuse's root URL, for browsers.

Server-rendered HTML (Jinja2, autoescaped; a little inline CSS and script, no build step) over the
same SQLite the API serves. Its URLs follow Langfuse's own (`/project/{projectId}/traces/{traceId}`,
`/prompts/{name}`, `/datasets/{id}`), so a link made for a real Langfuse (the SDK's
`get_trace_url()`, the API's `htmlPath`) opens the same page here. A browser logs in once with the
server's key pair and then holds a session cookie; the API under `/api/` keeps Basic auth.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from .pages import create_viewer

__all__ = ["BrowserPages", "create_viewer"]


class BrowserPages:
    """ASGI middleware: every HTTP request outside `/api/` goes to the viewer, the rest (the
    Langfuse API, with its own auth and JSON errors) to the wrapped app."""

    def __init__(self, app: ASGIApp, *, viewer: Starlette) -> None:
        self.app = app
        self.viewer = viewer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/api/"):
            await self.viewer(scope, receive, send)
        else:
            await self.app(scope, receive, send)
