"""The crash-point sweep against the real stack: every boundary of a claim's journal crashed
with `crash` and `crash_after_effect`, on a claim that is paid and on one that waits for review;
all invariants hold on the safe version, and the unsafe payment is caught."""

from __future__ import annotations

import json

import pytest

import workbench as wb
from services import names
from workbench._aio import run_sync

from .conftest import claims_stack

pytestmark = pytest.mark.integration

KINDS = ("crash", "crash_after_effect")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with claims_stack(tmp_path_factory.mktemp("sweep-home"), llm_latency_ms=5) as s:
        yield s


def _journal_boundaries(claim_id: str) -> list[str]:
    """What the claim's journals hold, read here on their own: each run (a model call as
    "model call N", the judge's as "judge"), the review wait, the send to the judge."""
    restate = wb.current().restate
    found, calls = [], 0
    for service, handler in ((names.WORKFLOW, names.RUN), (names.JUDGE, names.EVALUATE)):
        invocation = run_sync(restate.invocation(service, claim_id, handler))
        for row in run_sync(restate.journal(invocation["id"])):
            entry_type, name = row["entry_type"], row.get("name")
            if entry_type == "Command: Run" and name == names.CALL_LLM:
                calls += service == names.WORKFLOW
                found.append(f"model call {calls}" if service == names.WORKFLOW else "judge")
            elif entry_type == "Command: Run":
                found.append(name)
            elif entry_type == "Command: GetPromise":
                found.append(names.AWAITING_REVIEW)
            elif entry_type == "Command: OneWayCall":
                found.append(names.EVALUATE_STEP)
    return found


def _case(report, boundary: str, kind: str) -> dict:
    rows = report.frame[(report.frame["boundary"] == boundary) & (report.frame["kind"] == kind)]
    assert len(rows) == 1, report.frame
    return rows.iloc[0].to_dict()


def test_every_boundary_of_a_paid_claim_survives_crashes(stack) -> None:
    report = wb.faults.sweep(wb.samples.pick(status="paid")[0], KINDS, progress=False)
    assert report.passed, f"{report!r}\n{report.failures.to_string()}"
    assert report.verdict.startswith("PASSED on v1: all ")
    # every boundary of the baseline's journals was swept, with each kind
    boundaries = _journal_boundaries(report.baseline.id)
    assert report.swept == boundaries
    assert {"model call 3", "check fraud", "reimburse", "evaluate", "write score"} <= set(
        boundaries
    )
    assert sorted(map(tuple, report.frame[["boundary", "kind"]].values.tolist())) == sorted(
        (b, k) for b in boundaries for k in KINDS
    )
    assert report.uncovered == []
    # the evidence behind the invariants, for the cases that teach them
    paid_twice = _case(report, "reimburse", "crash_after_effect")
    attempts = wb.faults.payments(paid_twice["claim_id"])
    assert attempts["accepted"].tolist() == [True, False], "the ledger refused the duplicate"
    lost_answer = _case(report, "model call 2", "crash_after_effect")
    assert lost_answer["extra_model_calls"] == 1 and lost_answer["extra_tokens"] > 0
    assert _case(report, "model call 2", "crash")["extra_model_calls"] == 0
    assert _case(report, "lookup policy", "crash")["processes"] == 2
    assert report.frame["recovery_s"].notna().all()
    history = wb.faults.history(_case(report, "check fraud", "crash")["claim_id"])
    assert (history["event"] == "crashed").sum() == 1


def test_a_claim_that_waits_for_review_survives_a_crash_while_waiting(stack) -> None:
    report = wb.faults.sweep(wb.samples.pick(status="review")[0], KINDS, progress=False)
    assert report.passed, f"{report!r}\n{report.failures.to_string()}"
    assert report.swept == _journal_boundaries(report.baseline.id)
    assert names.AWAITING_REVIEW in report.swept
    waited = _case(report, names.AWAITING_REVIEW, "crash")
    claim = wb.claims.get(waited["claim_id"])
    assert claim.status == "paid" and claim.outcome.reviewed_by == "sweep"
    assert claim.attempts.processes >= 2, "it crashed while waiting and came back"


def test_the_unsafe_payment_is_caught_where_it_pays_twice(stack) -> None:
    doc = wb.samples.pick(status="paid")[1]
    report = wb.faults.sweep(doc, ("crash_after_effect",), version="unsafe", progress=False)
    assert not report.passed
    assert report.version == "unsafe"
    assert report.verdict.startswith("FAILED on unsafe: 1 of ")
    failures = report.failures
    assert failures[["boundary", "kind", "broken"]].values.tolist() == [
        ["reimburse", "crash_after_effect", "one payment"]
    ]
    assert "2 payments in the ledger" in failures["why"].item()
    assert len(wb.ledger(failures["claim_id"].item())) == 2
    latest = wb.deployments.list().query("latest")
    assert latest["version"].tolist() == ["v1"], "the version of before takes new claims again"


def test_a_restate_kill_at_chosen_boundaries_and_bad_arguments(stack) -> None:
    doc = wb.samples.pick(status="paid")[2]
    report = wb.faults.sweep(
        doc, "kill_restate", steps=["check fraud", "evaluate"], concurrency=2, progress=False
    )
    assert report.passed, f"{report!r}\n{report.failures.to_string()}"
    assert report.frame["boundary"].tolist() == ["check fraud", "evaluate"]
    assert set(report.boundary_frame().query("swept")["boundary"]) == {"check fraud", "evaluate"}
    with pytest.raises(ValueError, match="A terminal fault ends the claim on purpose"):
        wb.faults.sweep(doc, ("terminal",))
    with pytest.raises(wb.SweepError, match=r"Steps \['pay'\] are not boundaries of this claim"):
        wb.faults.sweep(doc, "crash", steps=["pay"], progress=False)
    assert json.dumps(report.timing)  # plain numbers, for the benchmark
