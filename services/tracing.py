"""Tracing into Langfuse, wired as Restate's upstream example does.

The Langfuse SDK's client owns the OpenTelemetry TracerProvider and exports to
`LANGFUSE_BASE_URL` (the embedded server, Langfuse Cloud, or a self-hosted Langfuse). The agents'
spans come from OpenInference's processor for the OpenAI Agents SDK, through `RestateTracer`, so
they join the trace of the Restate invocation (the server exports its own spans there too).
Durable steps get a span each, made only when the step really executes (never on replay), so
failed attempts show as error spans. Without Langfuse keys tracing is off and claims run the
same."""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("services.tracing")

STEP_SCOPE = "workbench.services"
"""The instrumentation scope of the durable-step spans (exported to Langfuse explicitly)."""

_tracer: Any = None
_current_prompt: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "current_prompt", default=None
)
_current_claim: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_claim", default=None
)
_starting_run_root: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "starting_run_root", default=False
)


def _export(span: Any) -> bool:
    scope = getattr(span, "instrumentation_scope", None)
    name = getattr(scope, "name", "") or ""
    return name in {STEP_SCOPE, "langfuse-sdk"} or name.startswith("openinference")


def configure_tracing() -> bool:
    """Send traces to Langfuse when it is configured; returns whether tracing is on."""
    global _tracer
    from agents import set_trace_processors, set_tracing_disabled

    keys = os.environ.get("LANGFUSE_PUBLIC_KEY"), os.environ.get("LANGFUSE_SECRET_KEY")
    if not all(keys):
        set_trace_processors([])
        set_tracing_disabled(True)
        log.warning(
            "Tracing is off: set LANGFUSE_BASE_URL, LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY "
            "to send traces to Langfuse. Claims run the same without it."
        )
        return False

    version = os.environ.get("SERVICE_VERSION", "v1")
    os.environ.setdefault("OTEL_SERVICE_NAME", "claim-services")
    attributes = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if "service.version" not in attributes:
        extra = f"service.version={version}"
        os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"{attributes},{extra}" if attributes else extra
    # The exporter's timer, for a process that is never idle; an idle one exports at once
    # (`export_when_idle`), so a claim's trace is readable ~0.1 s after it and its judge end.
    os.environ.setdefault("LANGFUSE_FLUSH_INTERVAL", str(BUSY_EXPORT_INTERVAL_S))

    # Each generation's messages once, as `input.value`/`output.value` (what Langfuse reads for
    # the generation's input and output), not a second time flattened into
    # `llm.input_messages.N.*`/`llm.output_messages.N.*` attributes (a claim's trace: 8 of its
    # 36 KB). Set either to "false" to have them again.
    os.environ.setdefault("OPENINFERENCE_HIDE_INPUT_MESSAGES", "true")
    os.environ.setdefault("OPENINFERENCE_HIDE_OUTPUT_MESSAGES", "true")

    from langfuse import Langfuse
    from openinference.instrumentation import OITracer, TraceConfig
    from openinference.instrumentation.openai_agents._processor import (
        OpenInferenceTracingProcessor,
    )
    from opentelemetry import trace as trace_api
    from restate.ext.tracing import RestateTracer

    Langfuse(should_export_span=_export)
    _warn_if_unreachable()
    agents_tracer = _prompt_tagging_tracer(trace_api.get_tracer("openinference.openai_agents"))
    processor = OpenInferenceTracingProcessor(OITracer(agents_tracer, config=TraceConfig()))  # type: ignore[arg-type]
    set_trace_processors([_one_span_per_agent(processor)])
    set_tracing_disabled(False)
    _tracer = RestateTracer(trace_api.get_tracer(STEP_SCOPE))
    return True


BUSY_EXPORT_INTERVAL_S = 2.0
"""How often a busy services process exports its spans (`LANGFUSE_FLUSH_INTERVAL` overrides)."""
IDLE_EXPORT_AFTER_S = 0.1
"""How long the services process must have had no request in flight before it exports."""


def export_when_idle(app: Any, flush: Callable[[], object] | None = None) -> Any:
    """The ASGI app `app`, exporting the finished spans as soon as no request has been in flight
    for `IDLE_EXPORT_AFTER_S`, instead of on the exporter's timer alone.

    The export (Langfuse's span transform, OTLP encoding, the POST) takes the interpreter's lock
    for about 0.4 ms of CPU per span; on a short timer (it was 0.5 s) it ran in the middle of most
    claims. Exported when the process is idle, a notebook sees a claim's trace right after the
    claim (and its judge) end; under load the timer (`BUSY_EXPORT_INTERVAL_S`) or a full batch
    (512 spans) exports, a few times less often, off most claims' path. `flush` exports (by
    default the tracer provider's `force_flush`)."""
    if _tracer is None:
        return app
    import threading
    import time

    in_flight = 0
    last_end = 0.0
    idle = threading.Event()
    started = False

    def exporter() -> None:
        export = flush or _flush_provider
        while True:
            idle.wait()
            idle.clear()
            quiet_until = last_end + IDLE_EXPORT_AFTER_S
            while in_flight == 0 and (left := quiet_until - time.monotonic()) > 0:
                time.sleep(left)
                quiet_until = last_end + IDLE_EXPORT_AFTER_S
            if in_flight == 0:
                try:
                    export()
                except Exception:  # the exporter logs its own failures; the timer retries
                    log.debug("idle export failed", exc_info=True)

    async def serving(scope: Any, receive: Any, send: Any) -> None:
        nonlocal in_flight, last_end, started
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if not started:  # in the worker process, after any fork
            started = True
            threading.Thread(target=exporter, name="export-when-idle", daemon=True).start()
        in_flight += 1
        try:
            await app(scope, receive, send)
        finally:
            in_flight -= 1
            if in_flight == 0:
                last_end = time.monotonic()
                idle.set()

    return serving


def _flush_provider() -> None:
    from opentelemetry import trace as trace_api

    trace_api.get_tracer_provider().force_flush(5_000)  # type: ignore[attr-defined]


def _warn_if_unreachable() -> None:
    """One clear warning when the backend does not answer; the exporter retries quietly."""
    import httpx

    base = os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST", "")
    try:
        httpx.get(f"{base.rstrip('/')}/api/public/health", timeout=2.0)
    except httpx.HTTPError as e:
        log.warning(
            "Langfuse at %s does not answer (%s): claims still complete; their traces are "
            "exported when it is back, or dropped if it stays away.",
            base,
            type(e).__name__,
        )
    for noisy in ("opentelemetry.sdk._shared_internal", "opentelemetry.exporter.otlp"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


UNRECORDED_SPAN_TYPES = frozenset({"turn"})
"""The agents SDK's span types not sent to Langfuse: each loop *turn* carries no input, output or
usage OpenInference would record (a bare CHAIN span) and only wraps the generation inside it;
every span is parented to the Restate attempt anyway (`RestateTracer`). The run's *task* span
is kept: it carries the run's workflow name (a served agent's trace is named by it)."""


def _one_span_per_agent(inner: Any) -> Any:
    """The agents' processor with one span per agent: without the span of each run's root
    ("Agent workflow", kind AGENT), which would only wrap the agent's own span ("Parser", AGENT)
    one to one, and without the SDK's turn spans (`UNRECORDED_SPAN_TYPES`). Every span
    is parented under the Restate invocation anyway (`RestateTracer`). The tracer below answers a
    non-recording span while the processor starts a run's root."""
    from agents.tracing import TracingProcessor

    def recorded(span: Any) -> bool:
        return getattr(span.span_data, "type", None) not in UNRECORDED_SPAN_TYPES

    class OneSpanPerAgent(TracingProcessor):
        def on_trace_start(self, trace: Any) -> None:
            token = _starting_run_root.set(True)
            try:
                inner.on_trace_start(trace)
            finally:
                _starting_run_root.reset(token)

        def on_trace_end(self, trace: Any) -> None:
            inner.on_trace_end(trace)

        def on_span_start(self, span: Any) -> None:
            if recorded(span):
                inner.on_span_start(span)

        def on_span_end(self, span: Any) -> None:
            if recorded(span):
                inner.on_span_end(span)

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self) -> None:
            inner.force_flush()

    return OneSpanPerAgent()


def _prompt_tagging_tracer(inner: Any) -> Any:
    """A RestateTracer that also links the spans started while an agent runs to the prompt
    version that instructed it (Langfuse links generations to prompts by these attributes)."""
    from restate.ext.tracing import RestateTracer

    class PromptTaggingTracer(RestateTracer):
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            if _starting_run_root.get():  # a run's root span: not recorded (_one_span_per_agent)
                from opentelemetry.trace import INVALID_SPAN

                return INVALID_SPAN
            # OpenInference calls this unbound with its proxy as `self`: call the base the same way
            span = RestateTracer.start_span(self, *args, **kwargs)
            if span.is_recording():
                if (prompt := _current_prompt.get()) is not None:
                    span.set_attribute("langfuse.observation.prompt.name", prompt[0])
                    span.set_attribute("langfuse.observation.prompt.version", prompt[1])
                if (claim_id := _current_claim.get()) is not None:
                    span.set_attribute("langfuse.trace.metadata.claim_id", claim_id)
            return span

    return PromptTaggingTracer(inner)


@contextmanager
def prompt_in_use(name: str, version: int) -> Iterator[None]:
    token = _current_prompt.set((name, version))
    try:
        yield
    finally:
        _current_prompt.reset(token)


def set_claim(claim_id: str) -> None:
    _current_claim.set(claim_id)


@contextmanager
def step_span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span for one real execution of a durable step (none when tracing is off)."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.trace import Status, StatusCode

    attrs = {"openinference.span.kind": "CHAIN", "langfuse.observation.type": "span"}
    claim_id = _current_claim.get()
    if claim_id is not None:
        attrs["langfuse.trace.metadata.claim_id"] = claim_id
    attrs.update({k: v for k, v in attributes.items() if v is not None})
    span = _tracer.start_span(name, attributes=attrs)
    try:
        yield span
    except BaseException as e:
        if span.is_recording():
            span.set_status(Status(StatusCode.ERROR, f"{type(e).__name__}: {e}"))
            span.set_attribute("langfuse.observation.level", "ERROR")
            span.set_attribute("langfuse.observation.status_message", f"{type(e).__name__}: {e}")
        raise
    finally:
        span.end()


def warning(name: str, message: str, **attributes: Any) -> None:
    """A WARNING-level observation in the claim's trace, e.g. clauses the analyst could not apply.
    None when tracing is off or outside a Restate handler; none while Restate replays (so it is
    recorded once per claim, not once per attempt)."""
    if _tracer is None:
        return
    from restate.server_context import current_context

    try:
        current_context()
    except LookupError:
        return
    attrs: dict[str, Any] = {
        "openinference.span.kind": "CHAIN",
        "langfuse.observation.type": "event",
        "langfuse.observation.level": "WARNING",
        "langfuse.observation.status_message": message,
        "output.value": message,
    }
    claim_id = _current_claim.get()
    if claim_id is not None:
        attrs["langfuse.trace.metadata.claim_id"] = claim_id
    attrs.update({k: v for k, v in attributes.items() if v is not None})
    _tracer.start_span(name, attributes=attrs).end()


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C traceparent header (`00-<trace>-<span>-<flags>`)."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) >= 4 and len(parts[1]) == 32 else None
