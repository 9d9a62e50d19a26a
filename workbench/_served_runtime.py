"""What code served from the kernel (`wb.serve`) needs to behave like the stack's services: the
OpenAI Agents SDK's default client pointed at the stack's model, and the SDK's traces sent to the
stack's Langfuse through OpenInference and `RestateTracer`, so an agent run in a handler joins
the trace of its Restate invocation (the same wiring as `services/tracing.py`).

Both are settings of the Agents SDK, which are global to the process: an agent the user runs
directly in a cell uses them too (its spans then make a trace of their own; a `RestateTracer`
alone would raise outside a handler).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import threading
import weakref
from typing import Any

__all__ = ["SERVED_SCOPE", "HandlerTracer", "configure_model", "configure_tracing", "reset"]

SERVED_SCOPE = "openinference.openai_agents"
"""The instrumentation scope of the agents' spans (as in the services)."""

_lock = threading.Lock()
_model: tuple[str, str] | None = None
_previous_client: Any = None
_tracing: tuple[Any, ...] | None = None
_provider: Any = None


@functools.cache
def _per_loop_transport_class() -> type:
    # openai>=3 sends with httpx2 (its own dependency), whose transports are not httpx's
    import httpx2

    class PerLoopTransport(httpx2.AsyncBaseTransport):
        """One connection pool per event loop: the served handlers run on the server's loop, an
        agent run in a cell on the kernel's, and a pool must not cross loops."""

        def __init__(self) -> None:
            self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
                weakref.WeakKeyDictionary()
            )

        async def handle_async_request(self, request: Any) -> Any:
            loop = asyncio.get_running_loop()
            pool = self._pools.get(loop)
            if pool is None:
                pool = self._pools[loop] = httpx2.AsyncHTTPTransport()
            return await pool.handle_async_request(request)

        async def aclose(self) -> None:
            pool = self._pools.pop(asyncio.get_running_loop(), None)
            if pool is not None:
                await pool.aclose()

    return PerLoopTransport


def configure_model(base_url: str, api_key: str) -> None:
    """Make `base_url` (the stack's model: the embedded one, or the endpoint configured with
    OPENAI_BASE_URL) the Agents SDK's default client. The SDK's API choice (Responses by
    default) is left as the user set it."""
    global _model, _previous_client
    from agents import set_default_openai_client
    from agents.models import _openai_shared
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    with _lock:
        if _model == (base_url, api_key):
            return
        if _model is None:
            _previous_client = _openai_shared.get_default_openai_client()
        client = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            http_client=DefaultAsyncHttpxClient(transport=_per_loop_transport_class()()),
        )
        set_default_openai_client(client, use_for_tracing=False)
        _model = (base_url, api_key)


def configure_tracing(
    langfuse_url: str | None,
    public_key: str | None,
    secret_key: str | None,
    *,
    service_name: str = "workbench-served",
) -> bool:
    """Send the Agents SDK's traces to Langfuse (OTLP, as Langfuse documents it), parented under
    the Restate invocation inside a handler; or switch the SDK's tracing off when there is no
    Langfuse (never to OpenAI's platform). Returns whether tracing is on."""
    global _tracing, _provider
    from agents import set_trace_processors, set_tracing_disabled

    wanted = (langfuse_url, public_key, secret_key, service_name)
    with _lock:
        if _tracing == wanted:
            return bool(langfuse_url)
        previous, _provider = _provider, None
        if previous is not None:
            previous.shutdown()
        _tracing = wanted
        if not (langfuse_url and public_key and secret_key):
            set_trace_processors([])
            set_tracing_disabled(True)
            return False
        from openinference.instrumentation import OITracer, TraceConfig
        from openinference.instrumentation.openai_agents._processor import (
            OpenInferenceTracingProcessor,
        )
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
        exporter = OTLPSpanExporter(
            endpoint=f"{langfuse_url.rstrip('/')}/api/public/otel/v1/traces",
            headers={"Authorization": f"Basic {token}"},
            compression=Compression.Gzip,
        )
        # a provider of our own: the kernel's global one (and any Langfuse client there) stays
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        # Langfuse away: the exporter retries quietly, as in the services (no red cell output)
        for noisy in ("opentelemetry.sdk._shared_internal", "opentelemetry.exporter.otlp"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
        _provider = provider
        tracer = HandlerTracer(provider.get_tracer(SERVED_SCOPE))
        set_trace_processors(
            [OpenInferenceTracingProcessor(OITracer(tracer, config=TraceConfig()))]  # type: ignore[arg-type]
        )
        set_tracing_disabled(False)
        return True


def reset() -> None:
    """Undo both (tests; a kernel keeps them): the default client before `configure_model` is
    back, the span exporter is shut down and the Agents SDK traces nothing."""
    global _model, _tracing, _provider, _previous_client
    from agents import set_trace_processors, set_tracing_disabled
    from agents.models import _openai_shared

    with _lock:
        provider, _provider = _provider, None
        if _model is not None:
            _openai_shared.set_default_openai_client(_previous_client)  # None included
        _model = _tracing = _previous_client = None
    if provider is not None:
        provider.shutdown()
    set_trace_processors([])
    set_tracing_disabled(True)


def flush(timeout_ms: int = 5000) -> None:
    """Export the spans made so far now (the exporter otherwise sends every 0.5 s)."""
    with _lock:
        provider = _provider
    if provider is not None:
        provider.force_flush(timeout_ms)


@functools.cache
def _handler_tracer_class() -> type:
    from restate.ext.tracing import RestateTracer
    from restate.server_context import current_context

    class HandlerTracer(RestateTracer):
        """`RestateTracer` inside a Restate handler (every span a child of the invocation's
        attempt, none while replaying); the plain tracer outside one (an agent run in a cell
        gets a trace of its own instead of an exception)."""

        # OpenInference calls these on its proxy: call the base explicitly, as services do
        def start_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
            if not _in_handler():
                return self._tracer.start_span(name, *args, **kwargs)
            return RestateTracer.start_span(self, name, *args, **kwargs)

        def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
            if not _in_handler():
                return self._tracer.start_as_current_span(name, *args, **kwargs)
            return RestateTracer.start_as_current_span(self, name, *args, **kwargs)

    def _in_handler() -> bool:
        try:
            return current_context() is not None
        except LookupError:  # never set in this context
            return False

    return HandlerTracer


def HandlerTracer(tracer: Any) -> Any:  # noqa: N802 - a class made on first use (lazy imports)
    """A tracer that parents spans under the Restate invocation inside a handler."""
    return _handler_tracer_class()(tracer)
