"""OTLP span ingest of the embedded Langfuse server, fed by the OpenTelemetry SDK's own OTLP/HTTP
exporter over loopback: the span-to-observation mapping rules and the all-or-nothing decoding."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from workbench.local.langfuse.testing import LocalLangfuse, running_server

PK, SK = "pk-lf-otlp", "sk-lf-otlp"
ALL_FIELDS = "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LocalLangfuse]:
    with running_server(tmp_path_factory.mktemp("otlp") / "langfuse.db", PK, SK) as local:
        yield local


def provider_for(
    server: LocalLangfuse,
    resource: dict[str, Any] | None = None,
    compression: Compression = Compression.Gzip,
    secret_key: str = SK,
) -> TracerProvider:
    """A TracerProvider exporting (batched) to the server with the real OTLP/HTTP exporter."""
    token = base64.b64encode(f"{PK}:{secret_key}".encode()).decode()
    exporter = OTLPSpanExporter(
        endpoint=server.otlp_endpoint,
        headers={"Authorization": f"Basic {token}"},
        compression=compression,
    )
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "test"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def observations(server: LocalLangfuse, trace_id: str) -> dict[str, dict[str, Any]]:
    """The trace's observations by name, with every field group."""
    answer = httpx.get(
        f"{server.base_url}/api/public/v2/observations",
        params={"traceId": trace_id, "fields": ALL_FIELDS},
        headers=server.auth_header,
    )
    assert answer.status_code == 200, answer.text
    return {obs["name"]: obs for obs in answer.json()["data"]}


def stored_count(server: LocalLangfuse) -> int:
    return (
        server.app.state.db.connection().execute("SELECT COUNT(*) FROM observations").fetchone()[0]
    )


def trace_hex(span: Any) -> str:
    return format(span.get_span_context().trace_id, "032x")


def finished_spans(build: Any) -> list[ReadableSpan]:
    """Spans built by `build(tracer)`, kept in memory (for hand-made export bodies)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "raw"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("raw"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def post(server: LocalLangfuse, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(server.otlp_endpoint, content=body, headers={**server.auth_header, **headers})


# --- mapping -----------------------------------------------------------------------------------


def test_openinference_spans(server) -> None:
    provider = provider_for(
        server,
        {
            "service.name": "claims",
            "service.version": "2.1.0",
            "deployment.environment.name": "staging",
        },
    )
    tracer = provider.get_tracer("openinference.instrumentation.openai_agents")
    with tracer.start_as_current_span(
        "claim-agent",
        attributes={
            "openinference.span.kind": "AGENT",
            "input.value": "Parse claim C-1",
            "output.value": '{"approved": true}',
            "user.id": "customer-7",
            "session.id": "claim-C-1",
            "tag.tags": ["claims", "agent"],
            "metadata": '{"workflow": "ClaimWorkflow"}',
        },
    ) as root:
        with tracer.start_as_current_span(
            "response",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "workbench-local",
                "llm.token_count.prompt": 12,
                "llm.token_count.completion": 3,
                "llm.token_count.total": 15,
                "llm.invocation_parameters": '{"temperature": 0}',
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "You analyze claims.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "C-1",
                "output.value": "approve",
            },
        ):
            pass
        with tracer.start_as_current_span(
            "lookup_policy",
            attributes={"openinference.span.kind": "TOOL", "input.value": '{"id": "C-1"}'},
        ):
            pass
        with tracer.start_as_current_span("guard", attributes={"openinference.span.kind": "CHAIN"}):
            pass
    provider.shutdown()

    found = observations(server, trace_hex(root))
    assert {name: obs["type"] for name, obs in found.items()} == {
        "claim-agent": "AGENT",
        "response": "GENERATION",
        "lookup_policy": "TOOL",
        "guard": "CHAIN",
    }
    llm = found["response"]
    assert llm["providedModelName"] == "workbench-local"
    assert llm["usageDetails"] == {"input": 12, "output": 3, "total": 15}
    assert llm["modelParameters"] == {"temperature": 0}
    assert json.loads(llm["input"]) == [
        {"role": "system", "content": "You analyze claims."},
        {"role": "user", "content": "C-1"},
    ]
    assert llm["output"] == "approve"
    assert (llm["version"], llm["environment"]) == ("2.1.0", "staging")
    agent = found["claim-agent"]
    assert (agent["input"], agent["output"]) == ("Parse claim C-1", '{"approved": true}')
    assert agent["isRootObservation"] and agent["parentObservationId"] is None
    assert agent["metadata"]["workflow"] == "ClaimWorkflow"
    assert agent["metadata"]["resourceAttributes"]["service.name"] == "claims"
    assert found["lookup_policy"]["parentObservationId"] == agent["id"]
    assert (llm["userId"], llm["sessionId"], llm["tags"], llm["traceName"]) == (
        "customer-7",
        "claim-C-1",
        ["claims", "agent"],
        "claim-agent",
    )


def test_gen_ai_spans(server) -> None:
    provider = provider_for(server)
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai")
    with tracer.start_as_current_span(
        "invoke_agent analyst", attributes={"gen_ai.operation.name": "invoke_agent"}
    ) as root:
        with tracer.start_as_current_span(
            "chat m-1",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m-1",
                "gen_ai.response.model": "m-1-2026",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.usage.input_tokens": 20,
                "gen_ai.usage.output_tokens": 5,
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
                ),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool fx", attributes={"gen_ai.operation.name": "execute_tool"}
        ):
            pass
        with tracer.start_as_current_span("bare", attributes={"gen_ai.request.model": "m-2"}):
            pass
    provider.shutdown()

    found = observations(server, trace_hex(root))
    assert {name: obs["type"] for name, obs in found.items()} == {
        "invoke_agent analyst": "AGENT",
        "chat m-1": "GENERATION",
        "execute_tool fx": "TOOL",
        "bare": "GENERATION",
    }
    chat = found["chat m-1"]
    assert chat["model"] == "m-1-2026"  # the response model wins over the requested one
    assert chat["usageDetails"] == {"input": 20, "output": 5, "total": 25}
    assert chat["modelParameters"] == {"temperature": 0.2}
    assert json.loads(chat["input"])[0]["role"] == "user"
    assert found["bare"]["model"] == "m-2"
    assert chat["environment"] == "default"


def test_langfuse_attributes_win(server) -> None:
    provider = provider_for(server, {"service.name": "svc", "service.version": "2"})
    tracer = provider.get_tracer("langfuse-sdk")
    with tracer.start_as_current_span(
        "step",
        attributes={
            "openinference.span.kind": "CHAIN",
            "langfuse.observation.type": "span",
            "langfuse.version": "9",
            "langfuse.environment": "ci",
            "langfuse.observation.level": "WARNING",
            "langfuse.observation.metadata.count": "3",
            "langfuse.observation.metadata.label": '"3"',
            "langfuse.observation.metadata.nested": '{"a": [1, 2]}',
            "langfuse.observation.prompt.name": "ignored-on-spans",
            "langfuse.observation.prompt.version": 1,
        },
    ) as root:
        with tracer.start_as_current_span(
            "generate",
            attributes={
                "langfuse.observation.type": "generation",
                "langfuse.observation.model.name": "lf-model",
                "llm.model_name": "oi-model",
                "langfuse.observation.usage_details": '{"input": 7, "output": 2}',
                "langfuse.observation.cost_details": '{"input": 0.5, "output": 0.25}',
                "langfuse.observation.prompt.name": "claim-analyst",
                "langfuse.observation.prompt.version": 3,
                "langfuse.observation.input": '{"messages": []}',
                "input.value": "not this one",
                "langfuse.observation.completion_start_time": '"2026-01-01T00:00:00.250000Z"',
            },
        ):
            pass
        with tracer.start_as_current_span("broken") as broken:
            broken.set_status(Status(StatusCode.ERROR, "fx table missing"))
    provider.shutdown()

    found = observations(server, trace_hex(root))
    step, generate, broken_obs = found["step"], found["generate"], found["broken"]
    assert (step["type"], step["level"], step["version"], step["environment"]) == (
        "SPAN",
        "WARNING",
        "9",
        "ci",
    )
    assert (step["metadata"]["count"], step["metadata"]["label"]) == (3, "3")
    assert step["metadata"]["nested"] == {"a": [1, 2]}
    assert step["promptName"] is None  # prompts link generations only
    assert (generate["type"], generate["model"]) == ("GENERATION", "lf-model")
    assert (generate["promptName"], generate["promptVersion"]) == ("claim-analyst", 3)
    assert generate["usageDetails"] == {"input": 7, "output": 2, "total": 9}
    assert (generate["costDetails"], generate["totalCost"]) == (
        {"input": 0.5, "output": 0.25},
        0.75,
    )
    assert generate["input"] == '{"messages": []}'
    assert generate["completionStartTime"] == "2026-01-01T00:00:00.250000Z"
    assert (generate["version"], generate["environment"]) == ("2", "default")
    assert (broken_obs["level"], broken_obs["statusMessage"]) == ("ERROR", "fx table missing")


# --- encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "compression", [Compression.Gzip, Compression.NoCompression, Compression.Deflate], ids=str
)
def test_exporter_compressions_are_accepted(server, compression) -> None:
    provider = provider_for(server, compression=compression)
    with provider.get_tracer("langfuse-sdk").start_as_current_span("compressed") as span:
        pass
    provider.shutdown()
    assert list(observations(server, trace_hex(span))) == ["compressed"]


def test_protobuf_request_gets_protobuf_response(server) -> None:
    spans = finished_spans(lambda tracer: tracer.start_span("raw").end())
    body = gzip.compress(encode_spans(spans).SerializeToString())
    answer = post(
        server, body, **{"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-protobuf"
    assert answer.content == b""  # an empty ExportTraceServiceResponse


def _json_request(trace_id: str, span_id: str, name: str) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.version", "value": {"stringValue": "7"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "json-client"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": name,
                                "kind": 1,
                                "startTimeUnixNano": "1767225600000000000",
                                "endTimeUnixNano": 1767225601000000000,
                                "attributes": [
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
                                    {
                                        "key": "gen_ai.usage.input_tokens",
                                        "value": {"intValue": "4"},
                                    },
                                ],
                                "status": {"code": 2, "message": "boom"},
                            }
                        ],
                    }
                ],
            }
        ]
    }


@pytest.mark.parametrize(
    "trace_id, span_id",
    [
        ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"),
        (
            base64.b64encode(bytes.fromhex("5b8efff798038103d269b633813fc60d")).decode(),
            base64.b64encode(bytes.fromhex("eee19b7ec3c1b175")).decode(),
        ),
    ],
    ids=["hex-ids", "base64-ids"],
)
def test_json_otlp_is_accepted(server, trace_id, span_id) -> None:
    answer = httpx.post(
        server.otlp_endpoint,
        json=_json_request(trace_id, span_id, "json-span"),
        headers=server.auth_header,
    )
    assert (answer.status_code, answer.json()) == (200, {})
    hex_trace = trace_id if len(trace_id) == 32 else base64.b64decode(trace_id).hex()
    obs = observations(server, hex_trace)["json-span"]
    assert (obs["type"], obs["level"], obs["statusMessage"], obs["version"]) == (
        "GENERATION",
        "ERROR",
        "boom",
        "7",
    )
    assert (obs["startTime"], obs["latency"]) == ("2026-01-01T00:00:00.000000Z", 1.0)
    assert obs["usageDetails"] == {"input": 4, "total": 4}


# --- refusals: nothing of a bad request is stored --------------------------------------------


def _three_spans() -> bytes:
    def build(tracer: Any) -> None:
        with tracer.start_as_current_span("a"):
            with tracer.start_as_current_span("b"):
                pass
            with tracer.start_as_current_span("c"):
                pass

    return encode_spans(finished_spans(build)).SerializeToString()


@pytest.mark.parametrize(
    "body, headers, status, message",
    [
        (b"\xff\xff\xff\xff", {}, 400, "not a valid OTLP ExportTraceServiceRequest protobuf"),
        (_three_spans()[:-7], {}, 400, "not a valid OTLP ExportTraceServiceRequest protobuf"),
        (b"not gzip", {"Content-Encoding": "gzip"}, 400, "not valid gzip data"),
        (gzip.compress(_three_spans())[:-12], {"Content-Encoding": "gzip"}, 400, "gzip"),
        (b"{]", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (b'{"resourceSpans": 3}', {"Content-Type": "application/json"}, 400, "OTLP JSON"),
        (_three_spans(), {"Content-Type": "text/plain"}, 415, "is not an OTLP encoding"),
        (_three_spans(), {"Content-Encoding": "br"}, 415, "Content-Encoding 'br'"),
    ],
    ids=[
        "garbage",
        "truncated",
        "bad-gzip",
        "truncated-gzip",
        "bad-json",
        "json-not-otlp",
        "wrong-type",
        "unknown-encoding",
    ],
)
def test_malformed_bodies_are_refused_and_nothing_is_stored(
    server, body, headers, status, message
) -> None:
    before = stored_count(server)
    answer = post(server, body, **{"Content-Type": "application/x-protobuf", **headers})
    assert answer.status_code == status, answer.text
    assert message in answer.json()["message"]
    assert stored_count(server) == before


def test_one_bad_span_rejects_the_whole_request(server) -> None:
    request = encode_spans(
        finished_spans(lambda tracer: [tracer.start_span(n).end() for n in "xyz"])
    )
    request.resource_spans[0].scope_spans[0].spans[2].span_id = b"\x01\x02"
    before = stored_count(server)
    answer = post(server, request.SerializeToString(), **{"Content-Type": "application/x-protobuf"})
    assert answer.status_code == 400
    assert "('z') has a 2-byte spanId; OTLP spanIds are 8 bytes" in answer.json()["message"]
    assert stored_count(server) == before


def test_json_ids_of_the_wrong_size_are_refused(server) -> None:
    answer = httpx.post(
        server.otlp_endpoint,
        json=_json_request("abc", "eee19b7ec3c1b174", "x"),
        headers=server.auth_header,
    )
    assert answer.status_code == 400
    assert "spans[0].traceId has value 'abc'" in answer.json()["message"]


def test_wrong_keys_are_refused(server) -> None:
    spans = finished_spans(lambda tracer: tracer.start_span("secret").end())
    exporter = OTLPSpanExporter(
        endpoint=server.otlp_endpoint,
        headers={"Authorization": "Basic " + base64.b64encode(f"{PK}:nope".encode()).decode()},
    )
    before = stored_count(server)
    assert exporter.export(spans) == SpanExportResult.FAILURE
    exporter.shutdown()
    answer = httpx.post(
        server.otlp_endpoint, content=b"", headers={"Content-Type": "application/x-protobuf"}
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "Unauthorized"
    assert stored_count(server) == before


def test_re_exported_spans_replace_and_traces_merge(server) -> None:
    """A retried export stores each span once; trace fields from later batches are merged."""

    def build(tracer: Any) -> None:
        with tracer.start_as_current_span("root", attributes={"langfuse.trace.tags": ["first"]}):
            with tracer.start_as_current_span("child", attributes={"user.id": "late-user"}):
                pass

    spans = finished_spans(build)
    child = next(s for s in spans if s.name == "child")
    root = next(s for s in spans if s.name == "root")
    headers = {"Content-Type": "application/x-protobuf"}
    for batch in ([child], [child], [root]):  # child first (as batching may do), once retried
        assert post(server, encode_spans(batch).SerializeToString(), **headers).status_code == 200
    trace_id = trace_hex(root)
    assert sorted(observations(server, trace_id)) == ["child", "root"]
    trace = httpx.get(
        f"{server.base_url}/api/public/traces/{trace_id}", headers=server.auth_header
    ).json()
    assert (trace["name"], trace["userId"], trace["tags"]) == ("root", "late-user", ["first"])


def test_trace_whose_root_is_elsewhere_is_named_after_its_earliest_span(server) -> None:
    """Spans continuing a remote parent (e.g. a caller's traceparent) still make a named trace."""
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    parent = set_span_in_context(NonRecordingSpan(remote))

    def build(tracer: Any) -> None:
        with tracer.start_as_current_span("invocation-attempt", context=parent):
            with tracer.start_as_current_span("call LLM"):
                pass

    headers = {"Content-Type": "application/x-protobuf"}
    body = encode_spans(finished_spans(build)).SerializeToString()
    assert post(server, body, **headers).status_code == 200
    trace_id = format(0xABC, "032x")
    found = observations(server, trace_id)
    assert not found["invocation-attempt"]["isRootObservation"]
    assert found["invocation-attempt"]["parentObservationId"] == format(0xDEF, "016x")
    trace = httpx.get(f"{server.base_url}/api/public/traces/{trace_id}", headers=server.auth_header)
    assert trace.json()["name"] == "invocation-attempt"


def test_concurrent_exports_are_all_stored(server) -> None:
    """Parallel requests (each its own batch) are serialized by the store, none lost."""

    def build(tracer: Any) -> None:
        for _ in range(25):
            with tracer.start_as_current_span("parallel-root"):
                with tracer.start_as_current_span("parallel-child"):
                    pass

    bodies = [encode_spans(finished_spans(build)).SerializeToString() for _ in range(8)]
    before = stored_count(server)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(
                lambda b: post(server, b, **{"Content-Type": "application/x-protobuf"}), bodies
            )
        )
    assert [answer.status_code for answer in statuses] == [200] * 8
    assert stored_count(server) == before + 8 * 50
    traces = httpx.get(
        f"{server.base_url}/api/public/traces",
        params={"name": "parallel-root", "limit": 1},
        headers=server.auth_header,
    ).json()
    assert traces["meta"]["totalItems"] == 8 * 25
