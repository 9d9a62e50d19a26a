"""Each fault kind against the real stack, asserting its evidence (what ran, what was journaled,
what was replayed, what was paid), not only that the claim finished."""

from __future__ import annotations

import time

import httpx
import psutil
import pytest

import workbench as wb
from workbench import Fault, faults

from .conftest import claims_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with claims_stack(tmp_path_factory.mktemp("faults-home"), llm_latency_ms=5) as s:
        yield s


def _doc(i: int = 0) -> wb.Sample:
    return wb.samples.pick(status="paid")[i]


def _row(report, step: str) -> dict:
    rows = report[report["step"] == step].to_dict("records")
    assert rows, f"no row for {step!r} in\n{report}"
    return rows[0]


def _report(claim_id: str):
    return wb.faults.report(claim_id)  # waits for the judge, which runs after the outcome


def _paid_once(claim_id: str) -> None:
    ledger = wb.ledger()
    assert int((ledger["claim_id"] == claim_id).sum()) == 1, ledger


def test_error_is_retried_and_completed_steps_are_not_run_again(stack) -> None:
    c = wb.submit_claim(_doc(), faults=[Fault("convert to EUR", "error", times=2)])
    assert c.status == "paid", c
    report = _report(c.id)
    convert = _row(report, "convert to EUR")
    assert (convert["executed"], convert["attempts"], convert["journaled"]) == (1, 3, 1)
    # the two steps before it were journaled once, executed once, replayed by each retry
    for step in ("fetch prompts", "parse"):
        row = _row(report, step)
        assert (row["executed"], row["journaled"], row["replayed"]) == (1, 1, 2), row
    attempts = c.attempts
    assert attempts.count == 3 and attempts.processes == 1
    assert "error" in attempts.last_failure
    _paid_once(c.id)


def test_an_error_that_never_stops_fails_the_claim_after_the_step_budget(stack) -> None:
    c = wb.submit_claim(_doc(1), faults=[Fault("check fraud", "error", times=6)])
    assert c.status == "failed", c
    assert "Injected error" in c.outcome.reason
    assert faults.planned(c.id)["fired"].tolist() == [5], "5 tries per step, then terminal"
    assert wb.faults.payments(c.id).empty


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ("check fraud", "The analyst failed for good: Injected terminal"),
        ("lookup policy", "The analyst failed for good: Injected terminal"),
        ("parse", "The parser failed for good: Injected terminal"),
        ("reimburse", "The payment failed for good: Injected terminal"),
    ],
    ids=["first-tool", "second-tool", "model-call", "payment"],
)
def test_terminal_ends_the_claim_with_the_reason_and_pays_nothing(stack, step, reason) -> None:
    c = wb.submit_claim(_doc(), faults=[Fault(step, "terminal")])
    assert c.status == "failed", c
    assert c.outcome.reason.startswith(reason), c.outcome.reason
    row = _row(_report(c.id), step)
    assert (row["executed"], row["attempts"]) == (0, 1), row
    assert c.attempts.count == 1, "a terminal failure is not retried"
    assert wb.faults.payments(c.id).empty


def test_crash_restarts_the_service_and_replays_without_rerunning_model_calls(stack) -> None:
    pid = stack.pid("services")
    c = wb.submit_claim(_doc(), faults=[Fault("lookup policy", "crash")])
    assert c.status == "paid", c
    assert stack.pid("services") != pid
    attempts = c.attempts
    assert attempts.processes == 2 and attempts.history["new process"].tolist() == [False, True]
    report = _report(c.id)
    # model calls made before the crash were journaled and replayed, never sent again
    assert _row(report, "parse")["executed"] == 1
    assert _row(report, "analyze")["executed"] == 2  # one before the crash, one after
    assert _row(report, "parse")["replayed"] == 1
    policy = _row(report, "lookup policy")
    assert (policy["executed"], policy["attempts"], policy["journaled"]) == (1, 2, 1)
    _paid_once(c.id)


def test_crash_after_the_payment_pays_again_and_the_ledger_refuses_it(stack) -> None:
    c = wb.submit_claim(_doc(), faults=[Fault("reimburse", "crash_after_effect")])
    assert c.status == "paid", c
    payments = wb.faults.payments(c.id)
    assert payments["accepted"].tolist() == [True, False], payments
    _paid_once(c.id)
    row = _row(_report(c.id), "reimburse")
    assert (row["executed"], row["journaled"]) == (2, 1), row
    assert "lost in a crash" in row["note"]
    assert wb.ledger().query("claim_id == @c.id")["payment_id"].item() == c.outcome.payment_id


def test_delay_slows_the_step_and_retries_nothing(stack) -> None:
    t = time.perf_counter()
    c = wb.submit_claim(_doc(), faults=[Fault("convert to EUR", "delay", seconds=1.0)])
    assert c.status == "paid" and time.perf_counter() - t >= 1.0
    history = faults.history(c.id)
    fired = history.query("event == 'fault'")["t_s"].item()
    ran = history.query("step == 'convert to EUR' and event == 'executed'")["t_s"].item()
    assert ran - fired >= 1.0 - 0.002  # (times rounded to the millisecond)
    assert c.attempts.count == 1


def test_rate_limit_retry_after_is_honoured_by_restate(stack) -> None:
    c = wb.submit_claim(_doc(), faults=[Fault("model call 1", "rate_limit", times=2, seconds=0.7)])
    assert c.status == "paid", c
    history = faults.history(c.id).query("step == 'parse'")
    times = history.query("event in ['fault', 'executed']")["t_s"].tolist()
    assert len(times) == 3  # two 429s, then the call that went through
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.7 - 0.002, gaps  # Retry-After 0.7 s (times rounded to the ms)
    row = _row(_report(c.id), "parse")
    assert (row["executed"], row["attempts"], row["journaled"]) == (1, 3, 1)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("model call 2", "server_error"),
        Fault("model call 3", "timeout", seconds=0.3),
        Fault("model call 2", "error", times=2),
    ],
    ids=str,
)
def test_model_call_failures_are_retried_on_the_client_side(stack, fault) -> None:
    c = wb.submit_claim(_doc(), faults=[fault])
    assert c.status == "paid", c
    row = _row(_report(c.id), "analyze")
    assert row["executed"] == 2, "each of the analyst's two model calls was sent once"
    assert row["attempts"] == 2 + fault.times
    assert row["journaled"] == 2
    assert (
        faults.history(c.id).query("event == 'fault'")["call"].tolist()
        == [int(fault.step.split()[-1])] * fault.times
    )


def test_output_that_does_not_parse_is_retried_not_journaled(stack) -> None:
    c = wb.submit_claim(_doc(), faults=[Fault("parse", "bad_output")])
    assert c.status == "paid", c
    row = _row(_report(c.id), "parse")
    # sent twice (the first answer was garbled), journaled once: the garbage never got in
    assert (row["executed"], row["journaled"]) == (2, 1), row
    assert "answered 1" in row["note"]
    assert (c.journal["kind"] == "model call").sum() == 3


def test_judge_errors_are_retried_by_the_judge(stack) -> None:
    c = wb.submit_claim(_doc(), faults=[Fault("judge", "error", times=2)])
    assert c.status == "paid"
    row = _row(_report(c.id), "judge")
    assert (row["executed"], row["attempts"], row["journaled"]) == (1, 3, 1), row


def test_the_claim_survives_a_restate_kill(stack) -> None:
    restate, services = stack.pid("restate"), stack.pid("services")
    c = wb.submit_claim(_doc(), faults=[Fault("check fraud", "kill_restate")])
    assert c.status == "paid", c
    assert stack.pid("restate") != restate
    assert not psutil.pid_exists(restate) or psutil.Process(restate).status() == "zombie"
    assert stack.pid("services") == services
    report = _report(c.id)
    fraud = _row(report, "check fraud")
    assert (fraud["executed"], fraud["attempts"], fraud["journaled"]) == (1, 2, 1)
    assert _row(report, "parse")["executed"] == 1
    assert c.attempts.count == 2
    _paid_once(c.id)


def test_armed_faults_hit_the_next_claims_once_each(stack) -> None:
    faults.arm(Fault("reimburse", "crash_after_effect"), claims=2)
    try:
        batch = [wb.submit_claim(_doc(i)) for i in range(3)]
    finally:
        faults.disarm()
    assert [c.status for c in batch] == ["paid"] * 3
    refused = [int((~wb.faults.payments(c.id)["accepted"]).sum()) for c in batch]
    assert refused == [1, 1, 0]
    for c in batch:
        _paid_once(c.id)
    spent = faults.planned(spent=True).query("claim.str.startswith('next')")
    assert spent.iloc[-1]["claim"] == "next 0 claims" and spent.iloc[-1]["fired"] == 2
    assert faults.planned().query("claim.str.startswith('next')").empty, "spent ones hidden"


def test_failed_attempts_show_as_error_spans_on_the_trace(stack) -> None:
    c = wb.submit_claim(
        _doc(),
        faults=[Fault("convert to EUR", "error", times=2), Fault("model call 2", "server_error")],
    )
    assert c.status == "paid", c
    trace = wb.traces.wait(
        c, expect=lambda f: (f["name"] == "convert to EUR").sum() >= 3, timeout_s=15
    )
    errors = trace[trace["level"] == "ERROR"]
    convert = errors[errors["name"] == "convert to EUR"]["status_message"].tolist()
    assert len(convert) == 2 and all("Injected error in 'convert to EUR'" in m for m in convert)
    assert errors["name"].str.startswith("invocation-attempt").sum() >= 2
    generations = errors[errors["type"] == "GENERATION"]["status_message"]
    assert generations.str.contains("Injected server_error").any()


def test_the_timeline_shows_the_retry_the_fault_the_trace_and_the_score(stack) -> None:
    c = wb.submit_claim(_doc(), faults=[Fault("convert to EUR", "error")])
    assert c.status == "paid", c
    wb.scores.wait(c, timeout_s=30)
    journal = c.journal
    assert journal.loc[journal["step"] == "convert to EUR", "attempt"].tolist() == [2]
    view = wb.timeline(c, live=False)
    lanes = view.frame.groupby("lane", observed=True).size()
    assert lanes["attempts"] == 2 and lanes["faults"] == 1 and lanes["judge"] == 1
    assert lanes["journal"] == len(journal) and lanes["trace"] > 0
    first = view.frame[view.frame["lane"] == "attempts"].iloc[0]
    assert first["status"] == "error" and "convert to EUR: error" in first["detail"]
    assert view.chart.value.count("<g class='wb-item'>") == len(view.frame)
    assert "<title>" in view.chart.value
    view.items.value = len(view.frame) - 1  # the score, picked in the list
    assert "score quality" in view.detail.value
    view.stop()


def test_the_model_down_a_claim_retries_then_completes_once_it_is_back(stack) -> None:
    paid = wb.submit_claim(_doc(2))
    with wb.faults.model_down() as outage:
        assert stack.status().set_index("name").loc["llm", "state"] == "STOPPED"
        c = wb.submit_claim(_doc(3), wait=False)
        during = outage.wait_retrying(c, retries=2)
        assert during.status == "retrying" and during.step == "parse", during
        assert "did not answer" in (during.last_error or ""), during
        with pytest.raises(wb.ClaimStateError, match=r"is paid at step .* not retrying"):
            outage.wait_retrying(paid)
    assert outage.back_at is not None and outage.down_s > 0
    with httpx.Client(timeout=5, trust_env=False) as http:  # answering again, at once
        assert stack.process("llm").check_ready(http) is None
    done = wb.claims.wait(c)
    assert done.status == "paid", done
    assert done.attempts.retries >= 2
    _paid_once(c.id)
    with pytest.raises(wb.StackError, match="still down"):
        wb.faults.model_down().since_back_s()
