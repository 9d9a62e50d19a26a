"""The Starlette app serving the OpenAI-compatible endpoints of the embedded model."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._protocol import MODEL_ID, RequestError, completion, error_body, parse_request
from .tasks import answer

_log = logging.getLogger(__name__)
_CREATED = int(time.time())
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Larger request bodies are refused with 413: a claim conversation is kilobytes, not megabytes."""


def _model(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "workbench"}


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def list_models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [_model(MODEL_ID)]})


async def get_model(request: Request) -> Response:
    return JSONResponse(_model(request.path_params["model"]))  # any name is accepted


async def chat_completions(request: Request) -> Response:
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > MAX_BODY_BYTES
    raw = b"" if too_large else await request.body()
    if too_large or len(raw) > MAX_BODY_BYTES:
        message = (
            f"The request body is larger than {MAX_BODY_BYTES:,} bytes. Send the "
            "claim document itself (a few kilobytes), not its attachments."
        )
        return JSONResponse(error_body(message, code="request_too_large"), status_code=413)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        message = (
            f"The request body is not valid JSON ({exc}). Send a JSON object such as "
            '{"model": "workbench-local", "messages": [{"role": "user", "content": "..."}]}.'
        )
        return JSONResponse(error_body(message), status_code=400)
    try:
        chat = parse_request(body)
        latency = request.app.state.latency_ms
        if latency > 0:
            await asyncio.sleep(latency / 1000)
        content, tool_calls = answer(chat)
    except RequestError as exc:
        return JSONResponse(error_body(exc.message, exc.param, exc.code), status_code=400)
    except Exception as exc:  # a rule tripped on input it does not expect: say so, as OpenAI would
        _log.exception("workbench-local failed on a request")
        message = (
            f"workbench-local could not answer this request ({type(exc).__name__}: {exc}). "
            "Check that the user message has the shape the task expects (see "
            "workbench/local/llm/README.md)."
        )
        return JSONResponse(error_body(message, kind="server_error"), status_code=500)
    return JSONResponse(completion(chat, content, tool_calls))


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {
        404: f"No route {request.url.path}. workbench-local serves GET /v1/models and POST "
        "/v1/chat/completions only (not the Responses API: with the OpenAI Agents SDK, call "
        "agents.set_default_openai_api('chat_completions')).",
        405: f"{request.method} is not allowed on {request.url.path}.",
    }.get(status, str(getattr(exc, "detail", exc)))
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(error_body(message, kind=kind), status_code=status)


def create_app(latency_ms: float = 0.0) -> Starlette:
    """The embedded model's ASGI app; `latency_ms` is slept before answering each completion."""
    if latency_ms < 0:
        raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.latency_ms = float(latency_ms)
    return app
