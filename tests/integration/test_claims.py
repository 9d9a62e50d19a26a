"""The claim workflow end to end: the real restate-server, the services and the embedded model,
started through the stack in a private home."""

from __future__ import annotations

import pytest

import workbench as wb

from ..protocol import wait_for
from .conftest import claims_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with claims_stack(tmp_path_factory.mktemp("claims-home"), llm_latency_ms=20) as s:
        yield s


def _payments(claim_id: str) -> int:
    frame = wb.ledger()
    return int((frame["claim_id"] == claim_id).sum())


def test_an_approvable_claim_is_paid_once_with_a_named_journal(stack) -> None:
    sample = wb.samples.pick(status="paid")[0]
    c = wb.submit_claim(sample)
    assert c.status == "paid", c
    o = c.outcome
    assert o.paid_eur and o.paid_eur > 0
    assert o.claim.customer_id == sample.expected["customer_id"]
    assert o.prompt_versions == {"claim-parser": 1, "claim-analyst": 1, "claim-judge": 1}
    assert _payments(c.id) == 1
    names = set(c.journal_entries["name"])
    assert {
        "fetch prompts",
        "call LLM",
        "check fraud",
        "lookup policy",
        "convert to EUR",
        "reimburse",
    } <= names


def test_a_rejected_claim_pays_nothing_and_says_why(stack) -> None:
    c = wb.submit_claim(wb.samples.pick(status="rejected")[0])
    assert c.status == "rejected"
    assert c.outcome.paid_eur is None
    assert c.outcome.reason
    assert _payments(c.id) == 0


def test_bad_input_ends_terminally_with_a_reason_and_no_retries(stack) -> None:
    c = wb.submit_claim("Hello, I would like some money back please. Thanks!")
    assert c.status == "invalid"
    assert "lacks" in c.outcome.reason and "customer_id" in c.outcome.reason
    again = wb.claim(c.id)
    assert again.outcome == c.outcome
    runs = again.journal
    assert (runs["kind"] == "model call").sum() == 1, (
        "an invalid document is parsed once, not retried"
    )


def test_unknown_currency_is_invalid_naming_the_currency(stack) -> None:
    c = wb.submit_claim(
        "Claim form\nCustomer ID: C-1001\nDate: 2026-03-02\nAmount: 300 XYZ\n"
        "Category: pharmacy\nReceipt attached: yes"
    )
    assert c.status == "invalid"
    assert "'XYZ'" in c.outcome.reason and "fx.json" in c.outcome.reason


def test_review_waits_durably_then_approve_pays(stack) -> None:
    c = wb.submit_claim(wb.samples.pick(status="review")[0])
    assert c.status == "awaiting review"
    assert wb.claim(c.id).step == "awaiting review"
    assert _payments(c.id) == 0
    done = wb.claims.approve(c.id, reviewer="ana", note="checked")
    assert done.status == "paid"
    assert done.outcome.reviewed_by == "ana"
    assert _payments(c.id) == 1


def test_review_then_reject_pays_nothing(stack) -> None:
    c = wb.submit_claim(wb.samples.pick(status="review")[1])
    assert c.status == "awaiting review"
    done = wb.claims.reject(c.id, reviewer="ana", note="duplicate invoice")
    assert done.status == "rejected"
    assert "duplicate invoice" in done.outcome.reason
    assert _payments(c.id) == 0


def test_approving_a_claim_that_does_not_wait_is_refused(stack) -> None:
    c = wb.submit_claim(wb.samples.pick(status="paid")[1])
    with pytest.raises(wb.ClaimStateError, match="it ended paid; only a claim awaiting review"):
        wb.claims.approve(c.id)


def test_resubmitting_an_id_returns_the_same_outcome_and_pays_once(stack) -> None:
    sample = wb.samples.pick(status="paid")[2]
    first = wb.submit_claim(sample, id="resubmitted-claim-1")
    second = wb.submit_claim(sample, id="resubmitted-claim-1")
    batch = wb.claims.submit_many([("resubmitted-claim-1", sample)] * 3, progress=False)
    assert second.outcome == first.outcome
    assert all(c.outcome == first.outcome for c in batch)
    assert _payments("resubmitted-claim-1") == 1


def test_a_killed_service_is_restarted_and_the_claim_completes(stack) -> None:
    c = wb.submit_claim(wb.samples.pick(status="review")[2])
    assert c.status == "awaiting review"
    old_pid = stack.pid("services")
    stack.kill("services")
    stack.wait_ready("services", timeout_s=30)
    assert stack.pid("services") != old_pid
    done = wb.claims.approve(c.id)
    assert done.status == "paid"
    assert _payments(c.id) == 1


def test_a_batch_reports_every_claim(stack) -> None:
    batch = wb.claims.submit_many(wb.samples.pick(12), concurrency=4, progress=False)
    assert len(batch) == 12
    frame = batch.to_frame()
    assert set(frame["status"]) <= {"paid", "rejected", "invalid", "awaiting review"}
    expected = [s.status_v1 for s in wb.samples.pick(12)]
    got = ["review" if s == "awaiting review" else s for s in frame["status"]]
    assert got == expected


@pytest.mark.parametrize("step", ["convert to EUR", "reimburse"])
def test_a_running_claim_shows_the_step_it_is_in(stack, step) -> None:
    """Steps that are one ctx.run of their own name record no step state: the journal says it."""
    c = wb.submit_claim(
        wb.samples.pick(status="paid")[2], faults=[wb.Fault(step, "delay", seconds=4)], wait=False
    )
    seen = wait_for(
        f"claim {c.id} to show step {step!r}",
        lambda: (now := wb.claim(c.id)).step == step and now,
        timeout_s=60,
        poll_s=0.1,
    )
    assert seen.status == "running"
    done = wb.claims.wait(c.id)
    assert done.status == "paid" and done.step == "done"
    assert wb.claim(c.id).step == "done"
