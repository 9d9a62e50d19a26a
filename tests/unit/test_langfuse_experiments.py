"""The LangfuseClient's side of experiments against the embedded server over HTTP: a dataset and
its items upserted, run items linked once however often asked, the same link written as Langfuse
v4's experiment span when a server has no dataset-run-items API, and both kinds of run read back
alike (the dataset-run endpoints, the experiments API, the viewer's dataset page)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from workbench.clients.langfuse import LangfuseClient, RunItemsUnsupportedError
from workbench.errors import LangfuseError
from workbench.local.langfuse.testing import LocalLangfuse, running_server

PK, SK = "pk-lf-exp", "sk-lf-exp"
TRACES = ["a" * 32, "b" * 32]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LocalLangfuse]:
    with running_server(tmp_path_factory.mktemp("exp") / "langfuse.db", PK, SK) as local:
        yield local


@pytest.fixture
def client(server) -> Iterator[LangfuseClient]:
    langfuse = LangfuseClient(server.base_url, PK, SK)
    try:
        yield langfuse
    finally:
        langfuse.close()


def _dataset(client: LangfuseClient, name: str) -> str:
    client.upsert_dataset(name, description="two documents")
    client.upsert_dataset_items(
        name,
        [
            {
                "id": f"{name}-d{i}",
                "input": f"document {i}",
                "expected_output": {"decision": "approve"},
            }
            for i in range(2)
        ],
    )
    dataset = client.dataset(name)
    assert dataset is not None and [i.id for i in client.dataset_items(name)] != []
    return dataset.id


def test_run_items_are_linked_once(client) -> None:
    _dataset(client, "exp/api")
    for _ in range(2):  # a resumed experiment links again: nothing doubles
        for i, trace in enumerate(TRACES):
            client.link_run_item("exp:a", f"exp/api-d{i}", trace, metadata={"variant": "a"})
    run = client.dataset_run("exp/api", "exp:a")
    assert run is not None and run["metadata"] == {"variant": "a"}
    assert sorted(i["traceId"] for i in run["datasetRunItems"]) == TRACES
    assert [r["name"] for r in client.dataset_runs("exp/api")] == ["exp:a"]
    assert client.dataset_run("exp/api", "nope") is None
    with pytest.raises(LangfuseError, match="Dataset item 'missing' not found"):
        client.link_run_item("exp:a", "missing", TRACES[0])


def test_runs_written_as_spans_read_back_as_runs(client, server) -> None:
    dataset_id = _dataset(client, "exp/spans")
    for _ in range(2):  # the same span id: sent again, it replaces itself
        for i, trace in enumerate(TRACES):
            client.link_run_item_as_span(
                run_id="run-spans",
                run="exp:b",
                dataset_id=dataset_id,
                dataset_item_id=f"exp/spans-d{i}",
                trace_id=trace,
                description="as Langfuse v4 records it",
                metadata={"variant": "b"},
                expected_output={"decision": "approve"},
            )
    run = client.dataset_run("exp/spans", "exp:b")
    assert run is not None and run["description"] == "as Langfuse v4 records it"
    assert sorted(i["datasetItemId"] for i in run["datasetRunItems"]) == [
        "exp/spans-d0",
        "exp/spans-d1",
    ]
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = {e.name: e for e in client.experiments(since, dataset_id=dataset_id)}
    assert found["exp:b"].item_count == 2
    with httpx.Client(base_url=server.base_url, auth=(PK, SK)) as http:
        page = http.get(f"/project/local-workbench/datasets/{dataset_id}")
    assert page.status_code == 200 and "exp:b" in page.text


def test_a_langfuse_without_the_run_items_api_is_told_apart(server) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/public/dataset-run-items":
            return httpx.Response(404, json={"message": "Not Found", "error": "NotFound"})
        return httpx.Response(500)

    client = LangfuseClient("http://langfuse.test", PK, SK)
    client.__dict__["http"] = httpx.Client(
        base_url="http://langfuse.test", transport=httpx.MockTransport(answer)
    )
    with pytest.raises(RunItemsUnsupportedError, match="has no dataset-run-items API"):
        client.link_run_item("exp:a", "d0", TRACES[0])
    client.close()


def test_a_missing_dataset_is_none(client) -> None:
    assert client.dataset("no/such/dataset") is None
