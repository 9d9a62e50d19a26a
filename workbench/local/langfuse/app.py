"""The Starlette app of the embedded Langfuse-compatible server."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import datasets, experiments, observations, otlp, prompts, runs, scores, traces
from ._auth import BasicAuth
from ._errors import ApiError, Json, error_response
from .db import Database
from .viewer import BrowserPages, create_viewer

SERVER_VERSION = "3.0.0-workbench"
"""Reported by /api/public/health: Langfuse-API-compatible, served by the workbench."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Project:
    id: str
    name: str


def project_for(name: str) -> Project:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "project"
    return Project(id=f"local-{slug}", name=name)


async def health(request: Request) -> Response:
    return Json({"version": SERVER_VERSION, "status": "OK"})


async def projects(request: Request) -> Response:
    project: Project = request.app.state.project
    return Json(
        {
            "data": [
                {
                    "id": project.id,
                    "name": project.name,
                    "organization": {"id": "local-workbench", "name": "workbench"},
                    "metadata": {},
                }
            ]
        }
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = (
            f"No endpoint {request.method} {request.url.path}. This server speaks the Langfuse "
            "public API subset listed in workbench/local/langfuse/README.md."
        )
        return error_response(404, message, "NotFoundError")
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        response = error_response(
            405,
            f"Method {request.method} is not allowed on {request.url.path} (allowed: {allowed}).",
            "MethodNotAllowedError",
        )
        if allowed:
            response.headers["Allow"] = allowed
        return response
    return error_response(exc.status_code, str(exc.detail), "HTTPError")


async def _server_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, OverflowError):  # a number no check above caught: the client's, not ours
        return error_response(
            400,
            f"A number in this request is beyond the 64-bit integers this server stores ({exc}).",
            "InvalidRequestError",
        )
    _log.exception("embedded langfuse failed on %s %s", request.method, request.url.path)
    return error_response(
        500,
        f"The embedded Langfuse server failed on this request ({type(exc).__name__}: {exc}). "
        "See its log (stderr) for the traceback.",
        "InternalServerError",
    )


def create_app(
    db_path: Path,
    public_key: str,
    secret_key: str,
    project_name: str = "workbench",
    *,
    prompt_changes: Path | None = None,
) -> Starlette:
    """The Langfuse-API-compatible app storing into the SQLite file `db_path`, with the
    read-only viewer for browsers at every path outside /api/; `prompt_changes`: a file
    appended to after every prompt change (`prompts.announce_change`)."""
    db = Database(db_path)
    db.prompt_changes = prompt_changes
    project = project_for(project_name)
    viewer = create_viewer(db, project.id, project.name, public_key, secret_key)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            db.close()

    routes = [
        Route("/api/public/health", health, methods=["GET"]),
        Route("/api/public/projects", projects, methods=["GET"]),
        Route("/api/public/otel/v1/traces", otlp.export_traces, methods=["POST"]),
        Route("/api/public/v2/prompts", prompts.prompts_collection, methods=["GET", "POST"]),
        Route(
            "/api/public/v2/prompts/{rest:path}",
            prompts.prompt_item,
            methods=["GET", "DELETE", "PATCH"],
        ),
        Route("/api/public/scores", scores.create_scores, methods=["POST"]),
        Route("/api/public/scores/{score_id}", scores.delete_score, methods=["DELETE"]),
        Route("/api/public/v3/scores", scores.get_scores_v3, methods=["GET"]),
        Route("/api/public/v2/scores", scores.get_scores_v2, methods=["GET"]),
        Route("/api/public/v2/scores/{score_id}", scores.get_score_v2, methods=["GET"]),
        Route("/api/public/v2/observations", observations.get_observations_v2, methods=["GET"]),
        Route("/api/public/traces", traces.list_traces_endpoint, methods=["GET"]),
        Route("/api/public/traces", traces.delete_traces_endpoint, methods=["DELETE"]),
        Route("/api/public/traces/{trace_id}", traces.get_trace_endpoint, methods=["GET"]),
        Route("/api/public/traces/{trace_id}", traces.delete_trace_endpoint, methods=["DELETE"]),
        Route("/api/public/v2/datasets", datasets.datasets_collection, methods=["GET", "POST"]),
        Route(
            "/api/public/v2/datasets/{rest:path}", datasets.dataset_item_endpoint, methods=["GET"]
        ),
        Route("/api/public/dataset-items", datasets.items_collection, methods=["GET", "POST"]),
        Route(
            "/api/public/dataset-items/{item_id}",
            datasets.item_endpoint,
            methods=["GET", "DELETE"],
        ),
        Route("/api/public/dataset-run-items", runs.run_items_collection, methods=["GET", "POST"]),
        Route("/api/public/datasets/{rest:path}/runs", runs.runs_endpoint, methods=["GET"]),
        Route(
            "/api/public/datasets/{rest:path}/runs/{run:path}",
            runs.runs_endpoint,
            methods=["GET", "DELETE"],
        ),
        Route("/api/public/experiments", experiments.experiments_endpoint, methods=["GET"]),
        Route(
            "/api/public/experiment-items",
            experiments.experiment_items_endpoint,
            methods=["GET"],
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(BrowserPages, viewer=viewer),
            Middleware(BasicAuth, public_key=public_key, secret_key=secret_key),
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.project = project
    return app
