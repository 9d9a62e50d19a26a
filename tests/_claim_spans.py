"""A claim's trace as the stack exports it, built with the OpenTelemetry SDK and encoded as an
OTLP protobuf body: Restate's invocation spans, the durable steps (one attempt failing as an ERROR
span), the agents with their model generations (usage, model, the prompt name and version), the
service version as a resource attribute and the claim id in the trace metadata. Times are given
explicitly, so the waterfall has real durations without sleeping."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

MS = 1_000_000


class Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


@dataclass(frozen=True)
class ClaimTrace:
    trace_id: str
    body: bytes
    """OTLP ExportTraceServiceRequest, protobuf."""
    span_ids: dict[str, str]
    """Observation id by span name (the first span of that name)."""
    names: list[str]
    """Every span's name, in the order they were started."""


def claim_trace(
    claim_id: str,
    *,
    start_ns: int,
    prompt: tuple[str, int] = ("claim-analyst", 1),
    failing_step: str | None = "check fraud",
    service_version: str = "v1",
    step_name_suffix: str = "",
) -> ClaimTrace:
    """One claim's trace. `failing_step` gets a first attempt that fails (an ERROR span) before
    the attempt that succeeds; `step_name_suffix` is appended to the steps' names (to test that
    user-controlled text is shown escaped)."""
    exporter = Collect()
    resource = Resource.create(
        {"service.name": "claim-services", "service.version": service_version}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("workbench.services")
    claim = {"langfuse.trace.metadata.claim_id": claim_id}
    names: list[str] = []
    ids: dict[str, str] = {}
    ends: dict[int, int] = {}

    def span(name: str, parent: Any, at_ms: float, ms: float, **attributes: Any) -> Any:
        context = trace_api.set_span_in_context(parent) if parent is not None else None
        started = tracer.start_span(
            name,
            context=context,
            start_time=start_ns + int(at_ms * MS),
            attributes={**claim, **attributes},
        )
        names.append(name)
        ids.setdefault(name, format(started.get_span_context().span_id, "016x"))
        ends[id(started)] = start_ns + int((at_ms + ms) * MS)  # ended by `close`
        return started

    def close(done: Any, error: str | None = None) -> None:
        if error is not None:
            done.set_status(Status(StatusCode.ERROR, error))
            done.set_attribute("langfuse.observation.level", "ERROR")
            done.set_attribute("langfuse.observation.status_message", error)
        done.end(end_time=ends[id(done)])

    def step(name: str, parent: Any, at_ms: float, ms: float, error: str | None = None) -> None:
        close(
            span(
                name + step_name_suffix,
                parent,
                at_ms,
                ms,
                **{"openinference.span.kind": "CHAIN", "langfuse.observation.type": "span"},
            ),
            error,
        )

    def generation(parent: Any, at_ms: float, ms: float, usage: tuple[int, int], out: Any) -> None:
        messages = [
            {
                "role": "system",
                "content": f"You are the claims analyst ({prompt[0]} v{prompt[1]}).",
            },
            {"role": "user", "content": f"Claim {claim_id}: water damage, 1,250.00 EUR."},
        ]
        close(
            span(
                "call LLM",
                parent,
                at_ms,
                ms,
                **{
                    "openinference.span.kind": "LLM",
                    "llm.model_name": "workbench-local",
                    "llm.token_count.prompt": usage[0],
                    "llm.token_count.completion": usage[1],
                    "input.value": json.dumps(messages),
                    "output.value": json.dumps(out),
                    "langfuse.observation.prompt.name": prompt[0],
                    "langfuse.observation.prompt.version": prompt[1],
                },
            )
        )

    root = span(
        "ingress",
        None,
        0,
        180,
        **{
            "langfuse.trace.name": f"claim {claim_id}",
            "input.value": json.dumps({"claim_id": claim_id, "document": "Water damage ..."}),
            "output.value": json.dumps({"status": "approved", "amount_eur": 1250.0}),
        },
    )
    attempt = span("invocation-attempt", root, 2, 176)
    step("fetch prompts", attempt, 4, 6)
    parse = span("parse", attempt, 12, 40, **{"openinference.span.kind": "AGENT"})
    generation(parse, 14, 34, (412, 96), {"customer_id": "K-7", "amount": "1250.00 EUR"})
    close(parse)
    step("convert to EUR", attempt, 54, 3)
    analyze = span("analyze", attempt, 60, 90, **{"openinference.span.kind": "AGENT"})
    at = 62.0
    if failing_step is not None:
        step(failing_step, analyze, at, 8, "ConnectionError: the fraud database did not answer")
        at += 10
    step("check fraud", analyze, at, 6)
    step("lookup policy", analyze, at + 8, 5)
    generation(analyze, at + 16, 50, (880, 140), {"decision": "approve", "reason": "clause 3"})
    close(analyze)
    step("reimburse", attempt, 156, 12)
    close(attempt)
    close(root)
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    return ClaimTrace(trace_id, encode_spans(exporter.spans).SerializeToString(), ids, names)
