"""The measurement the benchmark calls: CPU per request of each kind a claim makes."""

from __future__ import annotations

import json

from workbench.local.llm import perf


def test_cpu_per_call_measures_every_kind_of_claim_request() -> None:
    numbers = perf.cpu_per_call(rounds=1, documents=2)
    assert list(numbers) == ["parser", "analyst tools", "analyst decision", "judge", "claim call"]
    assert all(ms > 0 for ms in numbers.values()), numbers
    kinds = list(numbers)[:4]
    assert numbers["claim call"] == sum(numbers[k] for k in kinds) / 4


def test_the_measured_requests_are_the_workflows_own() -> None:
    requests = perf.claim_requests(documents=3)
    assert {k: len(v) for k, v in requests.items()} == {
        "parser": 3,
        "analyst tools": 3,
        "analyst decision": 3,
        "judge": 3,
    }
    decision = requests["analyst decision"][0]
    assert [m["role"] for m in decision["messages"]] == [
        "system", "user", "assistant", "tool", "tool"
    ]  # fmt: skip
    judge_input = json.loads(requests["judge"][0]["messages"][1]["content"])
    assert judge_input["document"] and judge_input["analyst_policy"]
