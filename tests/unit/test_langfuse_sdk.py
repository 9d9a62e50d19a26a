"""The embedded Langfuse server with its real client: the `langfuse` SDK 5, over loopback HTTP.

Every endpoint the SDK has is exercised through the SDK: auth_check, prompts (create, get by
label and by version, update labels, cache-free fetch), scores (create_score, flushed, then read
with the v3 API), spans (exported by the SDK's own OTLP exporter) read back as observations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langfuse import Langfuse, observe, propagate_attributes
from langfuse._client.resource_manager import LangfuseResourceManager
from langfuse.api import NotFoundError, UnauthorizedError
from langfuse.api.core import ApiError
from opentelemetry.sdk.trace import TracerProvider

from workbench.local.langfuse.testing import LocalLangfuse, running_server

PK, SK = "pk-lf-sdk", "sk-lf-sdk"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LocalLangfuse]:
    with running_server(tmp_path_factory.mktemp("sdk") / "langfuse.db", PK, SK) as local:
        yield local


def _client(server: LocalLangfuse, public_key: str, secret_key: str, **options: Any) -> Langfuse:
    # Our own TracerProvider: the SDK would otherwise install one globally for the test session.
    return Langfuse(
        public_key=public_key,
        secret_key=secret_key,
        base_url=server.base_url,
        tracer_provider=TracerProvider(),
        **options,
    )


def _close(client: Langfuse, public_key: str) -> None:
    client.shutdown()
    LangfuseResourceManager._instances.pop(public_key, None)  # the SDK keeps one per key


@pytest.fixture(scope="module")
def langfuse(server) -> Iterator[Langfuse]:
    client = _client(server, PK, SK, environment="unit", release="r-1", flush_interval=0.2)
    yield client
    _close(client, PK)


# --- auth --------------------------------------------------------------------------------------


def test_auth_check_with_the_configured_keys(langfuse) -> None:
    assert langfuse.auth_check() is True


def test_auth_check_with_wrong_keys_raises_401(server) -> None:
    wrong = _client(server, "pk-lf-wrong", "sk-lf-wrong", tracing_enabled=False)
    try:
        with pytest.raises(UnauthorizedError) as raised:
            wrong.auth_check()
    finally:
        _close(wrong, "pk-lf-wrong")
    assert raised.value.status_code == 401
    assert "public key 'pk-lf-wrong'" in raised.value.body["message"]


# --- prompts -----------------------------------------------------------------------------------


def test_prompt_versions_and_labels(langfuse) -> None:
    name = "claims/analyst"  # a folder: the SDK percent-encodes the '/'
    first = langfuse.create_prompt(
        name=name, prompt="Approve up to {{limit}}.", labels=["production"], tags=["claims"]
    )
    second = langfuse.create_prompt(
        name=name, prompt="Approve up to {{limit}} EUR.", labels=["staging"]
    )
    assert (first.version, second.version) == (1, 2)

    production = langfuse.get_prompt(name, cache_ttl_seconds=0)
    assert (production.version, production.compile(limit=3000)) == (1, "Approve up to 3000.")
    assert langfuse.get_prompt(name, label="staging", cache_ttl_seconds=0).version == 2
    by_version = langfuse.get_prompt(name, version=2, cache_ttl_seconds=0)
    assert by_version.prompt == "Approve up to {{limit}} EUR."
    assert by_version.tags == ["claims"]  # tags are shared across versions

    updated = langfuse.update_prompt(name=name, version=2, new_labels=["production"])
    assert updated.labels == ["latest", "production", "staging"]
    assert langfuse.get_prompt(name, cache_ttl_seconds=0).version == 2  # no stale cache
    assert langfuse.get_prompt(name, version=1, cache_ttl_seconds=0).labels == []


def test_chat_prompt_with_placeholder(langfuse) -> None:
    langfuse.create_prompt(
        name="judge",
        type="chat",
        prompt=[
            {"role": "system", "content": "Score the claim {{claim_id}}."},
            {"type": "placeholder", "name": "history"},
        ],
        labels=["production"],
        config={"model": "workbench-local", "temperature": 0},
    )
    prompt = langfuse.get_prompt("judge", type="chat", cache_ttl_seconds=0)
    assert prompt.config == {"model": "workbench-local", "temperature": 0}
    messages = prompt.compile(claim_id="C-1", history=[{"role": "user", "content": "hi"}])
    assert messages == [
        {"role": "system", "content": "Score the claim C-1."},
        {"role": "user", "content": "hi"},
    ]


def test_unknown_prompt_is_not_found(langfuse) -> None:
    with pytest.raises(NotFoundError) as raised:
        langfuse.get_prompt("no-such-prompt", cache_ttl_seconds=0, max_retries=0)
    assert "'no-such-prompt' does not exist" in raised.value.body["message"]


def test_changing_a_prompt_type_is_refused(langfuse) -> None:
    langfuse.create_prompt(name="typed", prompt="text")
    with pytest.raises(ApiError) as raised:
        langfuse.create_prompt(name="typed", type="chat", prompt=[{"role": "user", "content": "x"}])
    assert raised.value.status_code == 400
    assert "is a text prompt" in raised.value.body["message"]


def test_fallback_is_used_when_the_label_is_missing(langfuse) -> None:
    prompt = langfuse.get_prompt(
        "typed", label="nowhere", cache_ttl_seconds=0, max_retries=0, fallback="offline"
    )
    assert prompt.is_fallback and prompt.prompt == "offline"


# --- traces, observations, scores ----------------------------------------------------------------


def test_sdk_spans_read_back_as_observations(langfuse, server) -> None:
    prompt = langfuse.create_prompt(name="parser", prompt="Parse {{doc}}", labels=["production"])
    with propagate_attributes(
        trace_name="claim C-9",
        user_id="customer-9",
        session_id="claim-C-9",
        tags=["claims"],
        metadata={"tier": "gold"},
        version="svc-1.2",
    ):
        with langfuse.start_as_current_observation(
            name="ClaimWorkflow.run", input={"claim": "C-9"}, metadata={"count": 3, "label": "3"}
        ) as root:
            with langfuse.start_as_current_observation(
                name="parse",
                as_type="generation",
                model="workbench-local",
                model_parameters={"temperature": 0},
                usage_details={"input": 120, "output": 30},
                cost_details={"total": 0.002},
                prompt=prompt,
                input=[{"role": "user", "content": "Parse C-9"}],
            ) as generation:
                generation.update(output={"amount": 120.0})
            with langfuse.start_as_current_observation(
                name="lookup_policy", as_type="tool", level="WARNING", status_message="slow"
            ):
                pass
            root.update(output={"approved": True})
            trace_id = root.trace_id
    langfuse.flush()

    found = langfuse.api.observations.get_many(
        trace_id=trace_id, fields="core,basic,io,metadata,model,usage,prompt,metrics,trace_context"
    )
    by_name = {obs.name: obs for obs in found.data}
    assert set(by_name) == {"ClaimWorkflow.run", "parse", "lookup_policy"}
    parse = by_name["parse"]
    assert (parse.type, parse.model) == ("GENERATION", "workbench-local")
    assert parse.usage_details == {"input": 120, "output": 30, "total": 150}
    assert (parse.total_cost, parse.model_parameters) == (0.002, {"temperature": 0})
    assert (parse.prompt_name, parse.prompt_version) == ("parser", prompt.version)
    assert json.loads(parse.input) == [{"role": "user", "content": "Parse C-9"}]
    assert json.loads(parse.output) == {"amount": 120.0}
    assert (parse.environment, parse.version) == ("unit", "svc-1.2")
    assert (parse.user_id, parse.session_id, parse.trace_name, parse.tags) == (
        "customer-9",
        "claim-C-9",
        "claim C-9",
        ["claims"],
    )
    root_obs = by_name["ClaimWorkflow.run"]
    assert root_obs.is_root_observation and root_obs.parent_observation_id is None
    assert parse.parent_observation_id == root_obs.id
    assert (root_obs.metadata["count"], root_obs.metadata["label"]) == (3, "3")
    tool = by_name["lookup_policy"]
    assert (tool.type, tool.level, tool.status_message) == ("TOOL", "WARNING", "slow")

    trace = httpx.get(f"{server.base_url}/api/public/traces/{trace_id}", headers=server.auth_header)
    assert trace.json()["metadata"] == {"tier": "gold"}
    assert (trace.json()["input"], trace.json()["output"]) == ({"claim": "C-9"}, {"approved": True})

    roots = langfuse.api.observations.get_many(trace_id=trace_id, is_root_observation=True)
    assert [obs.name for obs in roots.data] == ["ClaimWorkflow.run"]
    generations = langfuse.api.observations.get_many(trace_id=trace_id, type="GENERATION")
    assert [obs.id for obs in generations.data] == [parse.id]


def test_observe_decorator(langfuse, server) -> None:
    @observe(name="judge-claim", as_type="generation")
    def judge(claim_id: str) -> str:
        langfuse.update_current_generation(model="judge-model", usage_details={"input": 5})
        return f"approve {claim_id}"

    with langfuse.start_as_current_observation(name="evaluate") as parent:
        assert judge("C-3", langfuse_public_key=PK) == "approve C-3"
    langfuse.flush()
    found = langfuse.api.observations.get_many(
        trace_id=parent.trace_id, name="judge-claim", fields="core,io,model"
    )
    (obs,) = found.data
    assert (obs.type, obs.model, obs.output) == ("GENERATION", "judge-model", "approve C-3")
    trace = httpx.get(
        f"{server.base_url}/api/public/traces/{parent.trace_id}", headers=server.auth_header
    )
    assert trace.json()["name"] == "evaluate"


def test_scores_are_created_and_read_with_v3(langfuse) -> None:
    trace_id = langfuse.create_trace_id(seed="scores")
    langfuse.create_score(
        name="accuracy", value=0.9, trace_id=trace_id, score_id="acc-1", comment="good"
    )
    langfuse.create_score(
        name="verdict", value="approve", trace_id=trace_id, data_type="CATEGORICAL"
    )
    langfuse.create_score(
        name="paid-once",
        value=1,
        trace_id=trace_id,
        observation_id="0123456789abcdef",
        data_type="BOOLEAN",
    )
    langfuse.flush()
    langfuse.create_score(
        name="accuracy", value=0.95, trace_id=trace_id, score_id="acc-1"
    )  # upsert
    langfuse.flush()

    scores = langfuse.api.scores.get_many(trace_id=trace_id, fields="details,subject")
    by_name = {score.name: score for score in scores.data}
    assert len(scores.data) == 3
    accuracy = by_name["accuracy"]
    assert (accuracy.id, accuracy.value, accuracy.data_type) == ("acc-1", 0.95, "NUMERIC")
    assert (accuracy.environment, accuracy.subject.kind, accuracy.subject.id) == (
        "unit",
        "trace",
        trace_id,
    )
    assert (by_name["verdict"].value, by_name["verdict"].data_type) == ("approve", "CATEGORICAL")
    paid = by_name["paid-once"]
    assert (paid.value, paid.subject.kind, paid.subject.trace_id) == (True, "observation", trace_id)
    numeric = langfuse.api.scores.get_many(trace_id=trace_id, data_type="NUMERIC", value_min=0.9)
    assert [score.id for score in numeric.data] == ["acc-1"]


def test_dataset_round_trip(langfuse) -> None:
    langfuse.create_dataset(name="golden/claims", description="expected outcomes")
    for index in range(3):
        langfuse.create_dataset_item(
            dataset_name="golden/claims",
            id=f"claim-{index}",
            input={"claim": index},
            expected_output={"approved": index % 2 == 0},
        )
    dataset = langfuse.get_dataset("golden/claims", fetch_items_page_size=2)
    assert dataset.description == "expected outcomes"
    assert sorted(item.id for item in dataset.items) == ["claim-0", "claim-1", "claim-2"]
    assert {item.id: item.expected_output for item in dataset.items}["claim-1"] == {
        "approved": False
    }


def test_experiments_read_back_however_they_were_recorded(langfuse, server) -> None:
    """A run of the SDK's run_experiment (spans) and a run linked through the dataset-run-items
    API are both experiments of the dataset, read with the SDK's experiments client."""
    from datetime import UTC, datetime, timedelta

    since = datetime.now(UTC) - timedelta(minutes=1)
    langfuse.create_dataset(name="exp/claims")
    for index in range(3):
        langfuse.create_dataset_item(
            dataset_name="exp/claims",
            id=f"exp-claim-{index}",
            input={"claim": index},
            expected_output={"approved": index != 1},
        )
    dataset = langfuse.get_dataset("exp/claims")
    result = dataset.run_experiment(
        name="by-spans",
        run_name="by-spans",
        task=lambda *, item, **_: {"approved": True},
        evaluators=[
            lambda *, output, expected_output, **_: {
                "name": "correct",
                "value": float(output == expected_output),
            }
        ],
    )
    langfuse.flush()
    traces = [item.trace_id for item in result.item_results]
    with httpx.Client(base_url=server.base_url, auth=(PK, SK)) as http:
        for index, trace_id in enumerate(traces):  # the same traces, linked by the API
            answer = http.post(
                "/api/public/dataset-run-items",
                json={
                    "runName": "by-api",
                    "runDescription": "linked through the API",
                    "datasetItemId": f"exp-claim-{index}",
                    "traceId": trace_id,
                },
            )
            assert answer.status_code == 200, answer.text
        runs = http.get("/api/public/datasets/exp%2Fclaims/runs").json()["data"]
    assert sorted(run["name"] for run in runs) == ["by-api", "by-spans"]

    found = langfuse.api.experiments.list(
        from_start_time=since, dataset_id=dataset.id, fields="core,metadata,scores"
    )
    by_name = {e.name: e for e in found.data}
    assert set(by_name) == {"by-api", "by-spans"}
    assert by_name["by-api"].item_count == by_name["by-spans"].item_count == 3
    assert by_name["by-api"].description == "linked through the API"

    items = langfuse.api.experiments.list_items(
        from_start_time=since, experiment_name="by-api", fields="core,dataset,io,scores"
    )
    assert sorted(i.experiment_item_id for i in items.data) == [f"exp-claim-{i}" for i in range(3)]
    assert {i.trace_id for i in items.data} == set(traces)
    assert {i.experiment_dataset_id for i in items.data} == {dataset.id}
    expected = {i.experiment_item_id: i.expected_output for i in items.data}
    assert expected["exp-claim-1"] == {"approved": False}
    scores = {i.experiment_item_id: [s.value for s in i.scores or []] for i in items.data}
    assert scores == {"exp-claim-0": [1.0], "exp-claim-1": [0.0], "exp-claim-2": [1.0]}

    first = langfuse.api.experiments.list_items(from_start_time=since, limit=2)
    assert len(first.data) == 2 and first.meta.cursor
    rest = langfuse.api.experiments.list_items(from_start_time=since, cursor=first.meta.cursor)
    assert len(first.data) + len(rest.data) == 6 and not rest.meta.cursor
