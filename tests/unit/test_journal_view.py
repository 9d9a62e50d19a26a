"""A claim's journal read as one row per step, from journals recorded by a real restate-server
(tests/unit/data/journals.json: a claim whose FX step failed once and was retried, and a claim
that waited for review and was approved)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.frames import WORKFLOW_RUN_STEPS, journal_frame, journal_step, step_journal

JOURNALS = json.loads((Path(__file__).parent / "data" / "journals.json").read_text())


@pytest.fixture
def retried():
    recorded = JOURNALS["retry"]
    return step_journal(recorded["rows"], recorded["attempt_starts"])


def test_one_row_per_step_with_model_calls_named_after_their_step(retried) -> None:
    assert retried["step"].tolist() == [
        "input",
        "fetch prompts",
        "parse",
        "convert to EUR",
        "analyze",
        "check fraud",
        "lookup policy",
        "analyze",
        "reimburse",
        "evaluate",
        "output",
    ]
    kinds = dict(zip(retried["step"], retried["kind"], strict=False))
    assert kinds["parse"] == "model call" and kinds["check fraud"] == "step"
    assert kinds["evaluate"] == "send" and kinds["output"] == "output"
    raw = journal_frame(JOURNALS["retry"]["rows"])
    assert len(raw) > len(retried), "state updates and completions are folded into their step"


def test_the_retry_shows_in_the_attempt_that_recorded_each_result(retried) -> None:
    attempts = dict(zip(retried["step"], retried["attempt"], strict=False))
    assert attempts["fetch prompts"] == 1 and attempts["parse"] == 1
    assert attempts["convert to EUR"] == 2, "the failed try was retried in the second attempt"
    assert attempts["reimburse"] == 2
    assert retried["error"].eq("").all()


def test_results_read_as_short_digests(retried) -> None:
    result = dict(zip(retried["step"], retried["result"], strict=False))
    assert result["fetch prompts"] == "claim-parser v1, claim-analyst v1, claim-judge v1"
    assert result["parse"].startswith("model: {") and "customer_id" in result["parse"]
    assert result["output"] == "paid"
    assert result["evaluate"].startswith("ClaimJudge/")
    assert retried["result"].str.len().max() <= 120
    assert (retried.loc[retried["kind"] != "input", "ms"].dropna() >= 0).all()


def test_the_review_wait_is_a_step_of_its_own() -> None:
    view = step_journal(JOURNALS["review"]["rows"])
    wait = view[view["kind"] == "promise"].iloc[0]
    assert wait["step"] == "waiting for 'review'"
    assert '"approved": true' in wait["result"]
    assert view["attempt"].isna().all(), "without the services' records, no attempt numbers"


def test_the_timeline_puts_attempts_and_faults_beside_the_journal(retried) -> None:
    from workbench.frames import timeline_frame

    starts = JOURNALS["retry"]["attempt_starts"]
    events = [{"event": "attempt", "at": t, "pid": 7, "step": "workflow"} for t in starts]
    fault_at = starts[0] + 0.01
    events.insert(
        1,
        {
            "event": "fault",
            "at": fault_at,
            "pid": 7,
            "step": "convert to EUR",
            "kind": "error",
            "detail": "1 of 1",
        },
    )
    frame = timeline_frame(retried, events, now=starts[-1] + 5)
    lanes = frame.groupby("lane", observed=True).size().to_dict()
    assert lanes == {"journal": len(retried), "attempts": 2, "faults": 1}
    first, second = frame[frame["lane"] == "attempts"].itertuples()
    assert first.status == "error" and first.end == second.start
    assert "convert to EUR: error 1 of 1" in first.detail
    assert second.status == "ok" and second.end >= frame["start"].max()
    assert frame[frame["lane"] == "faults"].iloc[0]["start"] == fault_at


def _without_self_named_step_states(rows: list[dict]) -> list[dict]:
    """The journal as the workflow writes it now: no step state for a step that is one
    `ctx.run` of its own name, for the send to the judge, or for `done`."""
    dropped = {*WORKFLOW_RUN_STEPS, "evaluate", "done"}
    kept = []
    for row in rows:
        command = json.loads(row.get("entry_json") or "{}").get("Command") or {}
        state = command.get("SetState") or {}
        if state.get("key") == "step" and json.loads(bytes(state["value"])) in dropped:
            continue
        kept.append(row)
    return kept


@pytest.mark.parametrize("name", ["retry", "review"])
def test_the_steps_read_the_same_without_state_for_self_named_steps(name) -> None:
    recorded = JOURNALS[name]
    rows = _without_self_named_step_states(recorded["rows"])
    assert len(rows) < len(recorded["rows"])
    full = step_journal(recorded["rows"], recorded.get("attempt_starts", []))
    lean = step_journal(rows, recorded.get("attempt_starts", []))
    assert lean["step"].tolist() == full["step"].tolist()
    assert lean["kind"].tolist() == full["kind"].tolist()


def test_a_running_claim_is_at_the_last_step_its_journal_names() -> None:
    rows = _without_self_named_step_states(JOURNALS["retry"]["rows"])
    commands = [json.loads(r.get("entry_json") or "{}").get("Command") or {} for r in rows]
    names_run = [c["Run"].get("name") for c in commands if "Run" in c]
    assert names_run[:2] == ["fetch prompts", "call LLM"]
    upto = {  # the journal cut after each command: the step a reader sees then
        "fetch prompts": "fetch prompts",
        "convert to EUR": "convert to EUR",
        "check fraud": "analyze",
        "reimburse": "reimburse",
    }
    for run_name, expected in upto.items():
        cut = next(i for i, c in enumerate(commands) if c.get("Run", {}).get("name") == run_name)
        assert journal_step(rows[: cut + 1]) == expected, run_name
    assert journal_step(rows[:1]) is None
