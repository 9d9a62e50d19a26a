"""Integers beyond what SQLite stores (64-bit) are the client's mistake: 400 with the reason,
never a 500 (timestamps before 1677 or after 2262, pages, prompt versions, OTLP times)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from starlette.testclient import TestClient

from workbench.local.langfuse import create_app

HEADERS = {"Authorization": "Basic " + base64.b64encode(b"pk:sk").decode()}
HUGE = str(2**70)


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    app = create_app(tmp_path / "langfuse.db", "pk", "sk")
    with TestClient(app, headers=HEADERS, raise_server_exceptions=False) as test_client:
        test_client.post(
            "/api/public/v2/prompts", json={"name": "p", "type": "text", "prompt": "x"}
        )
        test_client.post("/api/public/v2/datasets", json={"name": "d"})
        yield test_client


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("GET", f"/api/public/traces?page={HUGE}", None, r"'page' has value \d+, beyond the 64"),
        ("GET", "/api/public/traces?page=2147483648", None, r"'page' .* must be <= 2147483647"),
        ("GET", f"/api/public/traces?limit={HUGE}", None, r"'limit'"),
        ("GET", "/api/public/traces?fromTimestamp=1500-01-01T00:00:00Z", None, r"1677-09-21"),
        ("GET", "/api/public/traces?toTimestamp=9999-12-31T00:00:00Z", None, r"2262-04-11"),
        ("GET", "/api/public/v2/observations?fromStartTime=1600-01-01T00:00:00Z", None, "1677"),
        ("GET", f"/api/public/v2/scores?page={HUGE}", None, r"'page'"),
        ("GET", "/api/public/v3/scores?fromTimestamp=2300-01-01T00:00:00Z", None, "2262"),
        ("GET", f"/api/public/v2/prompts?page={HUGE}", None, r"'page'"),
        ("GET", f"/api/public/v2/prompts/p?version={HUGE}", None, r"'version'"),
        ("GET", "/api/public/v2/prompts?fromUpdatedAt=1000-01-01T00:00:00Z", None, "1677"),
        ("PATCH", f"/api/public/v2/prompts/p/versions/{HUGE}", {"newLabels": ["a"]}, "range"),
        ("GET", f"/api/public/v2/datasets?page={HUGE}", None, r"'page'"),
        ("GET", f"/api/public/dataset-items?page={HUGE}", None, r"'page'"),
        (
            "GET",
            "/api/public/dataset-items?datasetName=d&version=3000-01-01T00:00:00Z",
            None,
            "2262",
        ),
        (
            "POST",
            "/api/public/scores",
            {"traceId": "t", "name": "q", "value": 1, "timestamp": "1500-01-01T00:00:00Z"},
            r"Score 'q' has timestamp 1500-01-01T00:00:00Z is outside",
        ),
        (
            "POST",
            "/api/public/scores",
            {"traceId": "t", "name": "q", "value": 1, "timestamp": "2300-01-01T00:00:00Z"},
            "2262-04-11",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith(("/", "GET", "POST")) else None,
)
def test_out_of_range_integers_are_answered_400(client, method, path, body, message) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "InvalidRequestError"
    assert re.search(message, response.json()["message"]), response.text


def _otlp(client: TestClient, **span: object) -> object:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="s", **span)]
                    )
                ]
            )
        ]
    )
    return client.post(
        "/api/public/otel/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )


@pytest.mark.parametrize(
    "times",
    [
        {"start_time_unix_nano": 2**63},
        {"start_time_unix_nano": 2**64 - 1, "end_time_unix_nano": 2**64 - 1},
        {"start_time_unix_nano": 1, "end_time_unix_nano": 2**63 + 5},
    ],
    ids=["start-2^63", "both-max", "end"],
)
def test_otlp_times_from_2_63_are_refused_and_nothing_stored(client, times) -> None:
    response = _otlp(client, **times)
    assert response.status_code == 400
    assert "beyond 2262-04-11" in response.json()["message"]
    assert client.get("/api/public/traces").json()["data"] == []


def test_huge_numbers_in_attributes_are_dropped_not_fatal(client) -> None:
    attributes = [
        KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=2**63 - 1)),
        KeyValue(key="langfuse.observation.prompt.name", value=AnyValue(string_value="p")),
        KeyValue(key="langfuse.observation.prompt.version", value=AnyValue(string_value=HUGE)),
        KeyValue(
            key="langfuse.observation.completion_start_time",
            value=AnyValue(string_value='"3000-01-01T00:00:00Z"'),
        ),
    ]
    assert _otlp(client, start_time_unix_nano=10**18, attributes=attributes).status_code == 200
    observation = client.get("/api/public/v2/observations").json()["data"][0]
    assert observation.get("promptVersion") is None
    assert observation.get("completionStartTime") is None
