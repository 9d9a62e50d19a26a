"""The embedded Langfuse server's rules, driven in-process over HTTP (Starlette's test client):
prompt versions and labels, score batches and upserts, trace reads, datasets, error bodies."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from starlette.testclient import TestClient

from workbench.local.langfuse import create_app

AUTH = ("pk-lf-api", "sk-lf-api")
HEADERS = {"Authorization": "Basic " + base64.b64encode(b"pk-lf-api:sk-lf-api").decode()}


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    with TestClient(create_app(tmp_path / "langfuse.db", *AUTH), headers=HEADERS) as test_client:
        yield test_client


class Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[Any] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def ingest_trace(client: TestClient, **trace: Any) -> str:
    """Store a two-span trace (root 'claim' with a child generation); returns its id."""
    exporter = Collect()
    provider = TracerProvider(resource=Resource.create({"service.name": "claims"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("langfuse-sdk")
    attrs = {f"langfuse.trace.{k}" if k in ("name", "tags") else k: v for k, v in trace.items()}
    with tracer.start_as_current_span("claim", attributes=attrs) as root:
        root.set_attribute("langfuse.observation.input", '{"claim": 1}')
        with tracer.start_as_current_span("llm", attributes={"gen_ai.request.model": "m"}):
            pass
    provider.shutdown()
    body = encode_spans(exporter.spans).SerializeToString()
    answer = client.post(
        "/api/public/otel/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert answer.status_code == 200, answer.text
    return format(root.get_span_context().trace_id, "032x")


def create_prompt(client: TestClient, name: str, text: str, **extra: Any) -> dict[str, Any]:
    answer = client.post("/api/public/v2/prompts", json={"name": name, "prompt": text, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- auth and error bodies -------------------------------------------------------------------


def test_health_needs_no_auth(tmp_path) -> None:
    with TestClient(create_app(tmp_path / "l.db", *AUTH)) as anonymous:
        answer = anonymous.get("/api/public/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "OK"


@pytest.mark.parametrize(
    "auth, message",
    [
        (None, "No Authorization header"),
        (("pk-lf-api", "wrong"), "Invalid credentials"),
        (("pk-other", "sk-lf-api"), "Invalid credentials"),
    ],
    ids=["missing", "wrong-secret", "wrong-public"],
)
def test_wrong_or_missing_keys_get_401_json(tmp_path, auth, message) -> None:
    with TestClient(create_app(tmp_path / "l.db", *AUTH)) as anonymous:
        answer = anonymous.get("/api/public/projects", auth=auth)
    assert answer.status_code == 401
    assert answer.json()["error"] == "Unauthorized"
    assert message in answer.json()["message"]


def test_projects_lists_the_one_project(client) -> None:
    (project,) = client.get("/api/public/projects").json()["data"]
    assert project["name"] == "workbench"
    assert project["organization"]["name"] == "workbench"


def test_unknown_path_and_wrong_method_are_json(client) -> None:
    missing = client.get("/api/public/nothing-here")
    assert missing.status_code == 404
    assert "No endpoint GET /api/public/nothing-here" in missing.json()["message"]
    wrong = client.put("/api/public/v3/scores")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "MethodNotAllowedError"


def test_body_over_the_limit_is_413(client) -> None:
    answer = client.post(
        "/api/public/v2/prompts",
        content=b"x" * (16 * 1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert "larger than the limit" in answer.json()["message"]


def test_invalid_json_is_400_saying_so(client) -> None:
    answer = client.post(
        "/api/public/v2/prompts", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["message"]


# --- prompts ---------------------------------------------------------------------------------


def test_new_versions_count_up_and_latest_follows(client) -> None:
    first = create_prompt(client, "analyst", "v1", labels=["production"])
    second = create_prompt(client, "analyst", "v2")
    assert (first["version"], second["version"]) == (1, 2)
    assert first["labels"] == ["latest", "production"]
    assert second["labels"] == ["latest"]
    v1 = client.get("/api/public/v2/prompts/analyst", params={"version": 1}).json()
    assert v1["labels"] == ["production"]
    assert client.get("/api/public/v2/prompts/analyst").json()["version"] == 1  # production
    latest = client.get("/api/public/v2/prompts/analyst", params={"label": "latest"}).json()
    assert latest["version"] == 2


def test_a_label_lives_on_one_version_only(client) -> None:
    create_prompt(client, "judge", "v1", labels=["production", "staging"])
    create_prompt(client, "judge", "v2", labels=["staging"])
    v1 = client.get("/api/public/v2/prompts/judge", params={"version": 1}).json()
    assert v1["labels"] == ["production"]
    moved = client.patch(
        "/api/public/v2/prompts/judge/versions/2", json={"newLabels": ["production"]}
    )
    assert moved.status_code == 200
    assert moved.json()["labels"] == ["latest", "production", "staging"]
    assert client.get("/api/public/v2/prompts/judge").json()["version"] == 2
    v1 = client.get("/api/public/v2/prompts/judge", params={"version": 1}).json()
    assert v1["labels"] == []


def test_tags_are_shared_across_versions(client) -> None:
    create_prompt(client, "parser", "v1", tags=["claims"])
    create_prompt(client, "parser", "v2")  # no tags sent: kept
    assert client.get("/api/public/v2/prompts/parser", params={"version": 2}).json()["tags"] == [
        "claims"
    ]
    create_prompt(client, "parser", "v3", tags=["claims", "v3"])
    v1 = client.get("/api/public/v2/prompts/parser", params={"version": 1}).json()
    assert v1["tags"] == ["claims", "v3"]


def test_changing_the_type_is_refused(client) -> None:
    create_prompt(client, "typed", "text")
    answer = client.post(
        "/api/public/v2/prompts",
        json={"name": "typed", "type": "chat", "prompt": [{"role": "user", "content": "x"}]},
    )
    assert answer.status_code == 400
    assert "is a text prompt; a new version cannot be chat" in answer.json()["message"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"prompt": "x"}, "'name' is required"),
        ({"name": "a", "prompt": ["x"]}, 'needs "type": "chat"'),
        ({"name": "a", "prompt": "x", "labels": ["Prod"]}, "Label 'Prod' is not valid"),
        ({"name": "a/", "prompt": "x"}, "starts or ends with '/'"),
        ({"name": "a", "type": "chat", "prompt": [{"role": "u"}]}, "needs string 'role'"),
    ],
    ids=["no-name", "list-without-chat-type", "bad-label", "trailing-slash", "bad-message"],
)
def test_invalid_prompts_are_400_saying_why(client, body, message) -> None:
    answer = client.post("/api/public/v2/prompts", json=body)
    assert answer.status_code == 400
    assert message in answer.json()["message"]


def test_patch_refuses_latest_and_unknown_versions(client) -> None:
    create_prompt(client, "p", "x")
    latest = client.patch("/api/public/v2/prompts/p/versions/1", json={"newLabels": ["latest"]})
    assert latest.status_code == 400
    assert "always assigned to the latest" in latest.json()["message"]
    missing = client.patch("/api/public/v2/prompts/p/versions/9", json={"newLabels": ["a"]})
    assert missing.status_code == 404
    assert missing.json()["error"] == "LangfuseNotFoundError"


def test_prompt_names_with_slashes_are_percent_encoded(client) -> None:
    create_prompt(client, "claims/analyst", "x", labels=["production"])
    found = client.get("/api/public/v2/prompts/claims%2Fanalyst")
    assert found.json()["name"] == "claims/analyst"
    patched = client.patch(
        "/api/public/v2/prompts/claims%2Fanalyst/versions/1", json={"newLabels": ["staging"]}
    )
    assert "staging" in patched.json()["labels"]


def test_unknown_label_404_lists_what_exists(client) -> None:
    create_prompt(client, "judge", "x", labels=["staging"])
    answer = client.get("/api/public/v2/prompts/judge")
    assert answer.status_code == 404
    assert answer.json() == {
        "message": (
            "Prompt not found: 'judge' has no label 'production' (versions [1], labels "
            "['latest', 'staging']). Promote a version with PATCH "
            '/api/public/v2/prompts/{name}/versions/{version} {"newLabels": [...]}.'
        ),
        "error": "LangfuseNotFoundError",
    }


def test_prompt_list_filters_and_pages(client) -> None:
    create_prompt(client, "a", "1", labels=["production"], tags=["t"], config={"n": 1})
    create_prompt(client, "a", "2", config={"n": 2})
    create_prompt(client, "b", "1")
    create_prompt(client, "c", "1", tags=["t"])
    everything = client.get("/api/public/v2/prompts").json()
    assert [p["name"] for p in everything["data"]] == ["a", "b", "c"]
    first = everything["data"][0]
    assert (first["versions"], first["labels"], first["lastConfig"]) == (
        [1, 2],
        ["latest", "production"],
        {"n": 2},
    )
    production = client.get("/api/public/v2/prompts", params={"label": "production"}).json()
    assert [(p["name"], p["versions"]) for p in production["data"]] == [("a", [1])]
    tagged = client.get("/api/public/v2/prompts", params={"tag": "t"}).json()
    assert [p["name"] for p in tagged["data"]] == ["a", "c"]
    page = client.get("/api/public/v2/prompts", params={"limit": 2, "page": 2}).json()
    assert [p["name"] for p in page["data"]] == ["c"]
    assert page["meta"] == {"page": 2, "limit": 2, "totalItems": 3, "totalPages": 2}


def test_delete_by_version_label_or_all(client) -> None:
    for text in ("1", "2", "3"):
        create_prompt(client, "d", text, labels=["production"] if text == "1" else [])
    assert client.delete("/api/public/v2/prompts/d", params={"version": 3}).status_code == 204
    latest = client.get("/api/public/v2/prompts/d", params={"label": "latest"}).json()
    assert latest["version"] == 2  # 'latest' moved to the newest remaining version
    assert (
        client.delete("/api/public/v2/prompts/d", params={"label": "production"}).status_code == 204
    )
    assert client.get("/api/public/v2/prompts/d", params={"version": 1}).status_code == 404
    assert client.delete("/api/public/v2/prompts/d").status_code == 204
    assert client.delete("/api/public/v2/prompts/d").status_code == 404


# --- scores ----------------------------------------------------------------------------------


def test_score_list_is_202_and_ids_upsert(client) -> None:
    batch = [
        {"id": "s1", "traceId": "t1", "name": "quality", "value": 0.5},
        {"id": "s2", "traceId": "t1", "name": "verdict", "value": "approve"},
    ]
    answer = client.post("/api/public/scores", json=batch)
    assert (answer.status_code, answer.json()) == (202, {"message": "Accepted"})
    again = client.post("/api/public/scores", json=[{**batch[0], "value": 0.75}])
    assert again.status_code == 202
    data = client.get("/api/public/v3/scores", params={"traceId": "t1"}).json()["data"]
    assert sorted((s["id"], s["value"], s["dataType"]) for s in data) == [
        ("s1", 0.75, "NUMERIC"),
        ("s2", "approve", "CATEGORICAL"),
    ]


def test_score_list_with_invalid_items_is_207(client) -> None:
    answer = client.post(
        "/api/public/scores",
        json=[
            {"traceId": "t", "name": "ok", "value": 1},
            {"traceId": "t", "name": "flag", "value": 2, "dataType": "BOOLEAN"},
            {"name": "orphan", "value": 1},
        ],
    )
    assert answer.status_code == 207
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (1, 2)
    assert "BOOLEAN score 'flag' must have value 1 or 0" in body["errors"][0]["message"]
    assert "attached to nothing" in body["errors"][1]["message"]


def test_single_score_object_is_200_with_id(client) -> None:
    answer = client.post(
        "/api/public/scores", json={"traceId": "t", "name": "ok", "value": 1, "id": "one"}
    )
    assert (answer.status_code, answer.json()) == (200, {"id": "one"})
    invalid = client.post(
        "/api/public/scores",
        json={"traceId": "t", "name": "x", "value": "a", "dataType": "NUMERIC"},
    )
    assert invalid.status_code == 400
    assert "is not a finite number" in invalid.json()["message"]


def test_v3_scores_filter_and_page_with_a_cursor(client) -> None:
    batch = [
        {
            "id": f"n{i}",
            "traceId": "t",
            "name": "n",
            "value": float(i),
            "timestamp": f"2026-01-01T00:00:0{i}Z",
        }
        for i in range(5)
    ]
    batch.append(
        {
            "id": "b",
            "traceId": "t",
            "observationId": "o",
            "name": "flag",
            "value": 1,
            "dataType": "BOOLEAN",
        }
    )
    assert client.post("/api/public/scores", json=batch).status_code == 202
    seen: list[str] = []
    params: dict[str, Any] = {"name": "n", "limit": 2}
    while True:
        page = client.get("/api/public/v3/scores", params=params).json()
        seen.extend(s["id"] for s in page["data"])
        if "cursor" not in page["meta"]:
            break
        params["cursor"] = page["meta"]["cursor"]
    assert seen == ["n4", "n3", "n2", "n1", "n0"]
    ranged = client.get(
        "/api/public/v3/scores", params={"dataType": "NUMERIC", "valueMin": 1, "valueMax": 2}
    ).json()
    assert sorted(s["id"] for s in ranged["data"]) == ["n1", "n2"]
    flag = client.get(
        "/api/public/v3/scores", params={"traceId": "t", "observationId": "o", "fields": "subject"}
    ).json()["data"][0]
    assert (flag["value"], flag["subject"]) == (
        True,
        {"kind": "observation", "id": "o", "traceId": "t"},
    )
    bad = client.get("/api/public/v3/scores", params={"observationId": "o"})
    assert bad.status_code == 400
    assert "observationId needs traceId" in bad.json()["message"]


def test_v2_scores_page_and_join_the_trace(client) -> None:
    trace_id = ingest_trace(client, **{"user.id": "u1", "tags": ["a"]})
    client.post("/api/public/scores", json=[{"traceId": trace_id, "name": "q", "value": 1}])
    body = client.get("/api/public/v2/scores", params={"userId": "u1"}).json()
    (score,) = body["data"]
    assert score["trace"] == {
        "userId": "u1",
        "tags": ["a"],
        "environment": "default",
        "sessionId": None,
    }
    assert body["meta"]["totalItems"] == 1


def test_delete_score_is_204_then_404(client) -> None:
    client.post("/api/public/scores", json={"id": "gone", "traceId": "t", "name": "x", "value": 1})
    assert client.delete("/api/public/scores/gone").status_code == 204
    assert client.delete("/api/public/scores/gone").status_code == 404


# --- traces ----------------------------------------------------------------------------------


def test_trace_is_derived_from_its_spans(client) -> None:
    trace_id = ingest_trace(
        client, **{"name": "claim-42", "user.id": "u", "session.id": "s", "tags": ["x", "y"]}
    )
    client.post("/api/public/scores", json={"traceId": trace_id, "name": "q", "value": 1})
    trace = client.get(f"/api/public/traces/{trace_id}").json()
    assert (trace["name"], trace["userId"], trace["sessionId"], trace["tags"]) == (
        "claim-42",
        "u",
        "s",
        ["x", "y"],
    )
    assert trace["input"] == {"claim": 1}
    assert [o["name"] for o in trace["observations"]] == ["claim", "llm"]
    assert trace["observations"][1]["type"] == "GENERATION"
    assert [s["name"] for s in trace["scores"]] == ["q"]
    assert trace["latency"] >= 0


def test_trace_list_filters(client) -> None:
    first = ingest_trace(client, **{"name": "a", "user.id": "u1", "tags": ["t1"]})
    second = ingest_trace(client, **{"name": "b", "user.id": "u2", "tags": ["t1", "t2"]})
    listed = client.get("/api/public/traces").json()
    assert [t["id"] for t in listed["data"]] == [second, first]
    assert listed["data"][0]["observations"] and listed["meta"]["totalItems"] == 2
    by_user = client.get("/api/public/traces", params={"userId": "u1"}).json()["data"]
    assert [t["id"] for t in by_user] == [first]
    by_tags = client.get("/api/public/traces", params=[("tags", "t1"), ("tags", "t2")]).json()
    assert [t["id"] for t in by_tags["data"]] == [second]
    by_name = client.get("/api/public/traces", params={"name": "a", "orderBy": "timestamp.asc"})
    assert [t["id"] for t in by_name.json()["data"]] == [first]


def test_missing_trace_is_404(client) -> None:
    answer = client.get("/api/public/traces/" + "0" * 32)
    assert answer.status_code == 404
    assert "flush the exporter" in answer.json()["message"]


def test_delete_trace_removes_its_observations(client) -> None:
    trace_id = ingest_trace(client)
    assert client.delete(f"/api/public/traces/{trace_id}").status_code == 200
    observations = client.get("/api/public/v2/observations", params={"traceId": trace_id}).json()
    assert observations["data"] == []


def test_observation_filters_and_cursor(client) -> None:
    trace_id = ingest_trace(client, **{"user.id": "u9"})
    generations = client.get(
        "/api/public/v2/observations", params={"type": "GENERATION", "userId": "u9"}
    ).json()["data"]
    assert [o["name"] for o in generations] == ["llm"]
    roots = client.get(
        "/api/public/v2/observations", params={"traceId": trace_id, "isRootObservation": "true"}
    ).json()["data"]
    assert [o["name"] for o in roots] == ["claim"]
    structured = client.get(
        "/api/public/v2/observations",
        params={
            "filter": '[{"type": "stringObject", "column": "resourceAttributes", '
            '"key": "service.name", "operator": "=", "value": "claims"}, '
            '{"type": "string", "column": "name", "operator": "starts with", "value": "cl"}]'
        },
    ).json()["data"]
    assert [o["name"] for o in structured] == ["claim"]
    first = client.get("/api/public/v2/observations", params={"limit": 1}).json()
    second = client.get(
        "/api/public/v2/observations", params={"limit": 1, "cursor": first["meta"]["cursor"]}
    ).json()
    assert first["data"][0]["id"] != second["data"][0]["id"]
    bad = client.get("/api/public/v2/observations", params={"fields": "core,nope"})
    assert bad.status_code == 400
    assert "unknown group(s) nope" in bad.json()["message"]


# --- datasets --------------------------------------------------------------------------------


def test_datasets_and_items(client) -> None:
    dataset = client.post("/api/public/v2/datasets", json={"name": "claims/golden"}).json()
    assert dataset["name"] == "claims/golden"
    item = client.post(
        "/api/public/dataset-items",
        json={"datasetName": "claims/golden", "id": "i1", "input": {"a": 1}, "expectedOutput": 2},
    ).json()
    assert (item["datasetId"], item["status"], item["mediaReferences"]) == (
        dataset["id"],
        "ACTIVE",
        [],
    )
    client.post(
        "/api/public/dataset-items",
        json={"datasetName": "claims/golden", "id": "i1", "expectedOutput": 3},
    )
    got = client.get("/api/public/v2/datasets/claims%2Fgolden").json()
    assert got["id"] == dataset["id"]
    items = client.get("/api/public/dataset-items", params={"datasetName": "claims/golden"}).json()
    assert [(i["id"], i["input"], i["expectedOutput"]) for i in items["data"]] == [
        ("i1", {"a": 1}, 3)
    ]
    missing = client.post("/api/public/dataset-items", json={"datasetName": "nope"})
    assert missing.status_code == 404
