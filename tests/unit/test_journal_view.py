"""A claim's journal read as one row per step, from journals recorded by a real restate-server
(tests/unit/data/journals.json: a claim whose FX step failed once and was retried, and a claim
that waited for review and was approved)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.frames import journal_frame, step_journal

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
