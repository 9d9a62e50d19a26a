"""Every response of the embedded Langfuse server satisfies Langfuse's own OpenAPI spec
(shared/reference/langfuse-openapi.yml), except the SDK-5 deviations listed in DEVIATIONS."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.routing import Route
from starlette.testclient import TestClient

from workbench.local.langfuse import create_app

PK, SK = "pk-lf-spec", "sk-lf-spec"
HEADERS = {"Authorization": "Basic " + base64.b64encode(f"{PK}:{SK}".encode()).decode()}
REPO = Path(__file__).resolve().parents[2]
SPEC_CANDIDATES = [
    Path(os.environ.get("LANGFUSE_OPENAPI_SPEC", "/nonexistent")),
    REPO.parent / "shared" / "reference" / "langfuse-openapi.yml",
    Path("/work/shared/reference/langfuse-openapi.yml"),
]

DEVIATIONS: dict[tuple[str, str, int], tuple[str, Callable[[httpx.Response], bool]]] = {
    ("POST", "/api/public/scores", 202): (
        "SDK 5 posts a JSON list of scores and expects 202 {'message': 'Accepted'}",
        lambda r: r.json() == {"message": "Accepted"},
    ),
    ("POST", "/api/public/scores", 207): (
        "SDK 5: a list with invalid scores is answered 207 {accepted, rejected, errors}",
        lambda r: (
            {"accepted", "rejected", "errors"} <= set(r.json())
            and all(isinstance(e["message"], str) for e in r.json()["errors"])
        ),
    ),
    ("POST", "/api/public/otel/v1/traces", 200): (
        "OTLP/HTTP: a protobuf request gets a protobuf ExportTraceServiceResponse (the spec "
        "lists only JSON); JSON requests are validated against the spec",
        lambda r: r.headers["content-type"] == "application/x-protobuf" and r.content == b"",
    ),
}
"""The only allowed differences from the spec: (method, path, status) -> (why, own check)."""

IMPLEMENTED = {
    ("GET", "/api/public/health"),
    ("GET", "/api/public/projects"),
    ("POST", "/api/public/otel/v1/traces"),
    ("GET", "/api/public/v2/prompts"),
    ("POST", "/api/public/v2/prompts"),
    ("GET", "/api/public/v2/prompts/{promptName}"),
    ("DELETE", "/api/public/v2/prompts/{promptName}"),
    ("PATCH", "/api/public/v2/prompts/{name}/versions/{version}"),
    ("POST", "/api/public/scores"),
    ("DELETE", "/api/public/scores/{scoreId}"),
    ("GET", "/api/public/v3/scores"),
    ("GET", "/api/public/v2/scores"),
    ("GET", "/api/public/v2/scores/{scoreId}"),
    ("GET", "/api/public/v2/observations"),
    ("GET", "/api/public/traces"),
    ("DELETE", "/api/public/traces"),
    ("GET", "/api/public/traces/{traceId}"),
    ("DELETE", "/api/public/traces/{traceId}"),
    ("GET", "/api/public/v2/datasets"),
    ("POST", "/api/public/v2/datasets"),
    ("GET", "/api/public/v2/datasets/{datasetName}"),
    ("GET", "/api/public/dataset-items"),
    ("POST", "/api/public/dataset-items"),
    ("GET", "/api/public/dataset-items/{id}"),
    ("DELETE", "/api/public/dataset-items/{id}"),
    ("POST", "/api/public/dataset-run-items"),
    ("GET", "/api/public/dataset-run-items"),
    ("GET", "/api/public/datasets/{datasetName}/runs"),
    ("GET", "/api/public/datasets/{datasetName}/runs/{runName}"),
    ("DELETE", "/api/public/datasets/{datasetName}/runs/{runName}"),
    ("GET", "/api/public/experiments"),
    ("GET", "/api/public/experiment-items"),
}
"""(method, spec path) of every operation the server implements."""


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    spec_path = next((p for p in SPEC_CANDIDATES if p.is_file()), None)
    if spec_path is None:
        pytest.skip(
            "langfuse-openapi.yml not found: set LANGFUSE_OPENAPI_SPEC or keep shared/ beside "
            "the repository"
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(spec_path.read_text(encoding="utf-8"), Loader=loader)
    # The published spec uses `const`, which OpenAPI 3.0 does not allow, so the spec itself is
    # not validated; responses are validated against its schemas all the same.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


class Checked:
    """A test client whose every response is validated against the spec as it arrives."""

    def __init__(self, client: TestClient, openapi: OpenAPI) -> None:
        self.client = client
        self.openapi = openapi
        self.operations: set[tuple[str, str]] = set()
        self.deviations: set[tuple[str, str, int]] = set()

    def __call__(
        self, method: str, path: str, spec_path: str, status: int, **kwargs: Any
    ) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        key = (method, spec_path, response.status_code)
        content_type = response.headers.get("content-type", "").split(";")[0]
        if key in DEVIATIONS and not (
            key[1] == "/api/public/otel/v1/traces" and content_type == "application/json"
        ):
            why, check = DEVIATIONS[key]
            assert check(response), f"{method} {path} does not answer as allowed ({why})"
            self.deviations.add(key)
        else:
            request = MockRequest("http://localhost", method, path.split("?")[0])
            mock = MockResponse(
                response.content,
                status_code=response.status_code,
                content_type=content_type or "application/json",
            )
            try:
                self.openapi.validate_response(request, mock)
            except Exception as exc:  # openapi-core raises one of several error classes
                detail = getattr(exc, "__cause__", None) or exc
                pytest.fail(
                    f"{method} {path} -> {response.status_code} violates the spec: {detail}"
                )
            if 400 <= response.status_code:
                body = response.json()
                assert isinstance(body["message"], str) and isinstance(body["error"], str)
        self.operations.add((method, spec_path))
        return response


@pytest.fixture(scope="module")
def checked(openapi, tmp_path_factory) -> Iterator[Checked]:
    app = create_app(tmp_path_factory.mktemp("spec") / "langfuse.db", PK, SK)
    with TestClient(app, headers=HEADERS) as client:
        yield Checked(client, openapi)


def _spans() -> bytes:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.version": "1"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("langfuse-sdk")
    with tracer.start_as_current_span(
        "root",
        attributes={
            "langfuse.trace.name": "spec-trace",
            "user.id": "u",
            "langfuse.trace.tags": ["spec"],
            "langfuse.observation.input": '{"in": 1}',
            "langfuse.observation.metadata.k": '"v"',
        },
    ):
        with tracer.start_as_current_span(
            "generation",
            attributes={
                "langfuse.observation.type": "generation",
                "langfuse.observation.model.name": "m",
                "langfuse.observation.usage_details": '{"input": 3, "output": 4}',
                "langfuse.observation.cost_details": '{"total": 0.1}',
                "langfuse.observation.prompt.name": "p",
                "langfuse.observation.prompt.version": 1,
                "langfuse.observation.completion_start_time": '"2026-01-01T00:00:00Z"',
            },
        ):
            pass
    provider.shutdown()
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def test_every_operation_answers_as_the_spec_says(checked: Checked) -> None:
    call = checked
    call("GET", "/api/public/health", "/api/public/health", 200, headers={"Authorization": ""})
    call("GET", "/api/public/projects", "/api/public/projects", 200)
    call("GET", "/api/public/projects", "/api/public/projects", 401, headers={"Authorization": "x"})

    # spans, in both encodings
    otel = "/api/public/otel/v1/traces"
    body = _spans()
    call("POST", otel, otel, 200, content=body, headers={"Content-Type": "application/x-protobuf"})
    trace_id = encode_spans_trace_id(body)
    json_span = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "ab" * 16,
                                "spanId": "cd" * 8,
                                "name": "json",
                                "startTimeUnixNano": "1767225600000000000",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    call("POST", otel, otel, 200, json=json_span)
    call(
        "POST",
        otel,
        otel,
        400,
        content=b"\xff\xff",
        headers={"Content-Type": "application/x-protobuf"},
    )

    # prompts
    prompts = "/api/public/v2/prompts"
    call(
        "POST",
        prompts,
        prompts,
        200,
        json={
            "name": "f/text",
            "prompt": "hi {{x}}",
            "labels": ["production"],
            "tags": ["t"],
            "commitMessage": "first",
        },
    )
    call(
        "POST",
        prompts,
        prompts,
        200,
        json={"name": "f/text", "prompt": "v2", "config": {"temperature": 0}},
    )
    chat = [{"role": "system", "content": "s"}, {"type": "placeholder", "name": "history"}]
    call(
        "POST",
        prompts,
        prompts,
        200,
        json={"name": "chat", "type": "chat", "prompt": chat, "labels": ["production"]},
    )
    item = "/api/public/v2/prompts/{promptName}"
    call("GET", f"{prompts}/f%2Ftext", item, 200)
    call("GET", f"{prompts}/f%2Ftext?version=2", item, 200)
    call("GET", f"{prompts}/chat?label=production", item, 200)
    call("GET", f"{prompts}/missing", item, 404)
    versions = "/api/public/v2/prompts/{name}/versions/{version}"
    call("PATCH", f"{prompts}/f%2Ftext/versions/2", versions, 200, json={"newLabels": ["staging"]})
    call("PATCH", f"{prompts}/f%2Ftext/versions/2", versions, 400, json={"newLabels": ["latest"]})
    call("GET", f"{prompts}?label=production&page=1&limit=10", prompts, 200)
    call("DELETE", f"{prompts}/chat", item, 204)

    # scores of every data type
    scores = "/api/public/scores"
    call(
        "POST",
        scores,
        scores,
        200,
        json={"id": "single", "traceId": trace_id, "name": "n", "value": 1.5},
    )
    batch = [
        {
            "id": "num",
            "traceId": trace_id,
            "observationId": "0" * 16,
            "name": "n",
            "value": 0.5,
            "metadata": {"a": 1},
        },
        {"id": "cat", "traceId": trace_id, "name": "c", "value": "approve"},
        {"id": "bool", "traceId": trace_id, "name": "b", "value": 1, "dataType": "BOOLEAN"},
        {
            "id": "text",
            "traceId": trace_id,
            "name": "t",
            "value": "looks right",
            "dataType": "TEXT",
        },
        {
            "id": "corr",
            "traceId": trace_id,
            "name": "fix",
            "value": "better",
            "dataType": "CORRECTION",
        },
        {"id": "sess", "sessionId": "s-1", "name": "n", "value": 1},
        {"id": "run", "datasetRunId": "run-1", "name": "n", "value": 1},
    ]
    call("POST", scores, scores, 202, json=batch)
    call("POST", scores, scores, 207, json=[{"name": "orphan", "value": 1}])
    call("POST", scores, scores, 400, json={"name": "orphan", "value": 1})
    v3 = "/api/public/v3/scores"
    call("GET", f"{v3}?fields=details,subject,annotation", v3, 200)
    call("GET", v3, v3, 200)
    call("GET", f"{v3}?fields=nope", v3, 400)
    v2 = "/api/public/v2/scores"
    call("GET", v2, v2, 200)
    call("GET", f"{v2}?fields=score", v2, 200)
    call("GET", f"{v2}/text", "/api/public/v2/scores/{scoreId}", 200)
    call("GET", f"{v2}/nope", "/api/public/v2/scores/{scoreId}", 404)
    call("DELETE", f"{scores}/single", "/api/public/scores/{scoreId}", 204)

    # observations and traces
    observations = "/api/public/v2/observations"
    call("GET", observations, observations, 200)
    everything = "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context"
    call("GET", f"{observations}?fields={everything}&limit=1", observations, 200)
    traces = "/api/public/traces"
    call("GET", traces, traces, 200)
    call("GET", f"{traces}?fields=core", traces, 200)
    one = "/api/public/traces/{traceId}"
    call("GET", f"{traces}/{trace_id}", one, 200)
    call("GET", f"{traces}/{'0' * 32}", one, 404)
    call("DELETE", f"{traces}/{trace_id}", one, 200)
    call("DELETE", traces, traces, 200, json={"traceIds": ["ab" * 16]})

    # datasets
    datasets = "/api/public/v2/datasets"
    call(
        "POST",
        datasets,
        datasets,
        200,
        json={"name": "d/1", "description": "x", "metadata": {"a": 1}},
    )
    call("GET", datasets, datasets, 200)
    call("GET", f"{datasets}/d%2F1", "/api/public/v2/datasets/{datasetName}", 200)
    call("GET", f"{datasets}/nope", "/api/public/v2/datasets/{datasetName}", 404)
    items = "/api/public/dataset-items"
    call(
        "POST",
        items,
        items,
        200,
        json={"datasetName": "d/1", "id": "i", "input": {"q": 1}, "expectedOutput": "a"},
    )
    call("GET", f"{items}?datasetName=d%2F1&page=1&limit=5", items, 200)
    call("GET", f"{items}/i", "/api/public/dataset-items/{id}", 200)

    # dataset runs: an item linked to a trace, twice (idempotent), read back four ways
    run_items = "/api/public/dataset-run-items"
    link = {"runName": "r/1", "datasetItemId": "i", "traceId": trace_id, "metadata": {"v": 1}}
    first = call("POST", run_items, run_items, 200, json=link).json()
    assert call("POST", run_items, run_items, 200, json=link).json()["id"] == first["id"]
    call("POST", run_items, run_items, 404, json={**link, "datasetItemId": "nope"})
    call("POST", run_items, run_items, 400, json={"datasetItemId": "i", "traceId": trace_id})
    dataset_id = call("GET", f"{datasets}/d%2F1", "/api/public/v2/datasets/{datasetName}", 200)
    dataset_id = dataset_id.json()["id"]
    listed = call("GET", f"{run_items}?datasetId={dataset_id}&runName=r%2F1", run_items, 200)
    assert [i["traceId"] for i in listed.json()["data"]] == [trace_id]
    call("GET", f"{run_items}?datasetId={dataset_id}", run_items, 400)
    runs = "/api/public/datasets/{datasetName}/runs"
    one_run = "/api/public/datasets/{datasetName}/runs/{runName}"
    assert call("GET", "/api/public/datasets/d%2F1/runs", runs, 200).json()["data"][0]["name"] == (
        "r/1"
    )
    run = call("GET", "/api/public/datasets/d%2F1/runs/r%2F1", one_run, 200).json()
    assert [i["id"] for i in run["datasetRunItems"]] == [first["id"]]
    call("GET", "/api/public/datasets/d%2F1/runs/nope", one_run, 404)
    experiments = "/api/public/experiments"
    since = "2000-01-01T00:00:00Z"
    found = call(
        "GET", f"{experiments}?fromStartTime={since}&fields=core,metadata,scores", experiments, 200
    ).json()
    assert [e["name"] for e in found["data"]] == ["r/1"] and found["data"][0]["itemCount"] == 1
    call("GET", experiments, experiments, 400)
    exp_items = "/api/public/experiment-items"
    everything = "core,dataset,io,metadata,itemMetadata,experimentMetadata,scores"
    found = call("GET", f"{exp_items}?fromStartTime={since}&fields={everything}", exp_items, 200)
    assert [i["experimentItemId"] for i in found.json()["data"]] == ["i"]
    call("GET", f"{exp_items}?fromStartTime={since}&fields=nope", exp_items, 400)
    call("DELETE", "/api/public/datasets/d%2F1/runs/r%2F1", one_run, 200)
    call("DELETE", "/api/public/datasets/d%2F1/runs/r%2F1", one_run, 404)

    call("DELETE", f"{items}/i", "/api/public/dataset-items/{id}", 200)

    missing = IMPLEMENTED - checked.operations
    assert not missing, f"operations never validated: {sorted(missing)}"
    assert checked.deviations == set(DEVIATIONS), "a listed deviation is no longer exercised"


def encode_spans_trace_id(body: bytes) -> str:
    request = ExportTraceServiceRequest.FromString(body)
    return request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()


def test_implemented_operations_are_in_the_spec_and_served(openapi, tmp_path) -> None:
    spec_paths = openapi.spec / "paths"
    for method, path in sorted(IMPLEMENTED):
        assert path in spec_paths, f"{path} is not in the spec"
        assert method.lower() in spec_paths / path, f"{method} {path} is not in the spec"
    app = create_app(tmp_path / "l.db", PK, SK)
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    # every Starlette route corresponds to an implemented spec operation, and vice versa
    to_spec = {
        "/api/public/v2/prompts/{rest:path}": {
            "GET": "/api/public/v2/prompts/{promptName}",
            "DELETE": "/api/public/v2/prompts/{promptName}",
            "PATCH": "/api/public/v2/prompts/{name}/versions/{version}",
        },
        "/api/public/v2/datasets/{rest:path}": {"GET": "/api/public/v2/datasets/{datasetName}"},
        "/api/public/scores/{score_id}": {"DELETE": "/api/public/scores/{scoreId}"},
        "/api/public/v2/scores/{score_id}": {"GET": "/api/public/v2/scores/{scoreId}"},
        "/api/public/traces/{trace_id}": {
            m: "/api/public/traces/{traceId}" for m in ("GET", "DELETE")
        },
        "/api/public/dataset-items/{item_id}": {
            m: "/api/public/dataset-items/{id}" for m in ("GET", "DELETE")
        },
        "/api/public/datasets/{rest:path}/runs": {"GET": "/api/public/datasets/{datasetName}/runs"},
        "/api/public/datasets/{rest:path}/runs/{run:path}": {
            m: "/api/public/datasets/{datasetName}/runs/{runName}" for m in ("GET", "DELETE")
        },
    }
    translated = {(method, to_spec.get(path, {}).get(method, path)) for method, path in served}
    assert translated == IMPLEMENTED
