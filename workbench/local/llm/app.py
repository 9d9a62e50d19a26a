"""The Starlette app serving the OpenAI-compatible endpoints of the embedded model."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._protocol import (
    MODEL_ID,
    Answer,
    Conversation,
    RequestError,
    completion,
    completion_chunks,
    error_body,
    parse_chat,
)
from ._responses import parse_responses, response, response_events
from .tasks import answer

_log = logging.getLogger(__name__)
_CREATED = int(time.time())
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Larger request bodies are refused with 413 while they arrive (declared or chunked): a claim
conversation is kilobytes, not megabytes, and nothing past the limit is read or kept."""


class BodyTooLarge(Exception):
    pass


def _model(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "workbench"}


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def latency(request: Request) -> Response:
    """`GET /workbench/latency` answers the simulated latency per completion; `PUT` with
    `{"latency_ms": N}` changes it for the requests that arrive from now on (the benchmark
    measures a zero-latency and a 100 ms model on the same stack)."""
    if request.method == "PUT":
        try:
            value = json.loads(await request.body())["latency_ms"]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(value)
        except (ValueError, KeyError, TypeError) as exc:
            message = (
                f'Expected a JSON body such as {{"latency_ms": 100}} with a number >= 0, '
                f"got {exc!r}."
            )
            return JSONResponse(error_body(message, param="latency_ms"), status_code=400)
        request.app.state.latency_ms = float(value)
    return JSONResponse({"latency_ms": request.app.state.latency_ms})


async def list_models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [_model(MODEL_ID)]})


async def get_model(request: Request) -> Response:
    return JSONResponse(_model(request.path_params["model"]))  # any name is accepted


async def read_body(request: Request) -> bytes:
    """The request body, refused as soon as it passes MAX_BODY_BYTES (the declared length is
    checked first; a chunked body is counted as it streams in and never held past the limit)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> Response:
    message = (
        f"The request body is larger than {MAX_BODY_BYTES:,} bytes. Send the claim document "
        "itself (a few kilobytes), not its attachments."
    )
    # the rest of the body is never read: close the connection instead of draining it
    return JSONResponse(
        error_body(message, code="request_too_large"),
        status_code=413,
        headers={"connection": "close"},
    )


async def _handle(
    request: Request,
    parse: Callable[[Any], tuple[Conversation, Any]],
    whole: Callable[[Conversation, Answer, Any], dict[str, Any]],
    stream: Callable[[Conversation, Answer, Any], Iterator[str]],
) -> Response:
    try:
        raw = await read_body(request)
    except BodyTooLarge:
        return _too_large()
    except ClientDisconnect:
        return Response(status_code=400)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        message = (
            f"The request body is not valid JSON ({exc}). Send a JSON object such as "
            '{"model": "workbench-local", "messages": [{"role": "user", "content": "..."}]}.'
        )
        return JSONResponse(error_body(message), status_code=400)
    try:
        conversation, echo = parse(body)
        latency = request.app.state.latency_ms
        if latency > 0:
            await asyncio.sleep(latency / 1000)
        result = answer(conversation)
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
    if conversation.stream:
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(
            stream(conversation, result, echo), media_type="text/event-stream", headers=headers
        )
    return JSONResponse(whole(conversation, result, echo))


def _chat_stream(conversation: Conversation, result: Answer, echo: Any) -> Iterator[str]:
    for chunk in completion_chunks(conversation, result):
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"


def _responses_stream(conversation: Conversation, result: Answer, echo: Any) -> Iterator[str]:
    for event in response_events(conversation, result, echo):
        yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


async def chat_completions(request: Request) -> Response:
    return await _handle(
        request,
        lambda body: (parse_chat(body), None),
        lambda conversation, result, _: completion(conversation, result),
        _chat_stream,
    )


async def responses(request: Request) -> Response:
    return await _handle(request, parse_responses, response, _responses_stream)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {
        404: f"No route {request.url.path}. workbench-local serves GET /v1/models, POST "
        "/v1/chat/completions and POST /v1/responses.",
        405: f"{request.method} is not allowed on {request.url.path}.",
    }.get(status, str(getattr(exc, "detail", exc)))
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(error_body(message, kind=kind), status_code=status)


def create_app(latency_ms: float = 0.0) -> Starlette:
    """The embedded model's ASGI app; `latency_ms` is slept before answering each request."""
    if latency_ms < 0:
        raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/workbench/latency", latency, methods=["GET", "PUT"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.latency_ms = float(latency_ms)
    return app
