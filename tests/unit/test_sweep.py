"""The crash-point sweep, in-process: boundaries read from journals, the invariants checked
against a baseline (each one made to break), the waves, the report and its heatmap, and the
service-side hooks the sweep relies on (faults planned together, the non-step boundaries)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest

from services import faults as hooks
from services import names, versions
from services.fault_store import FaultStore
from services.models import ClaimData, ClaimOutcome
from workbench.claims import Claim
from workbench.faults import Fault
from workbench.session import Endpoints, Session
from workbench.sweep import (
    INVARIANTS,
    KILLS,
    Boundary,
    ClaimEvidence,
    SweepReport,
    _Case,
    boundaries_of,
    check_case,
    check_kinds,
    hold_for,
    plan_waves,
    recovery_s,
)

matplotlib.use("Agg")

T0 = 1_800_000_000.0  # the claim starts here (epoch seconds)


# -- journals as Restate's sys_journal rows --------------------------------------------------------
def _at(seconds: float) -> str:
    moment = datetime.fromtimestamp(T0 + seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bytes(value: Any) -> list[int]:
    return list(json.dumps(value).encode())


class Journal:
    """Builds the rows of one invocation's journal, entry by entry. `resume=(name, at)`: the
    entries from the run `name` on were recorded by a later try, starting at `at`."""

    def __init__(self, resume: tuple[str, float] | None = None) -> None:
        self.rows: list[dict[str, Any]] = []
        self.completion = 0
        self.resume = resume
        self.shift = 0.0

    def _add(self, at: float, body: dict[str, Any], name: str | None = None) -> None:
        self.rows.append(
            {
                "index": len(self.rows),
                "entry_type": next(iter(body)),
                "name": name,
                "entry_json": json.dumps(body),
                "appended_at": _at(at + self.shift),
            }
        )

    def step(self, name: str, at: float) -> Journal:
        self._add(at, {"Command": {"SetState": {"key": names.STEP_KEY, "value": _bytes(name)}}})
        return self

    def run(
        self, name: str, at: float, done: float, value: Any = "ok", label: str | None = None
    ) -> Journal:
        if self.resume is not None and self.resume[0] == (label or name) and not self.shift:
            self.shift = self.resume[1] - at
        self.completion += 1
        run = {"completion_id": self.completion, "name": name}
        self._add(at, {"Command": {"Run": run}}, name)
        result = {"completion_id": self.completion, "result": {"Success": _bytes(value)}}
        self._add(done, {"Notification": {"Completion": {"Run": result}}})
        return self

    def model(self, at: float, done: float, tokens: int) -> Journal:
        self.calls = getattr(self, "calls", 0) + 1
        answer = {"output": [], "usage": {"total_tokens": tokens}}
        return self.run(names.CALL_LLM, at, done, answer, label=f"model call {self.calls}")

    def review(self, at: float, done: float) -> Journal:
        self.completion += 1
        key = {"key": names.REVIEW_PROMISE, "completion_id": self.completion}
        self._add(at, {"Command": {"GetPromise": key}})
        result = {"completion_id": self.completion, "result": {"Success": _bytes({})}}
        self._add(done, {"Notification": {"Completion": {"GetPromise": result}}})
        return self

    def send_to_judge(self, at: float) -> Journal:
        target = {"VirtualObject": {"name": names.JUDGE, "key": "c", "handler": names.EVALUATE}}
        self._add(at, {"Command": {"OneWayCall": {"request": {"invocation_target": target}}}})
        return self


def workflow_journal(
    review: bool = False, resume: tuple[str, float] | None = None
) -> list[dict[str, Any]]:
    """The journal of the sample claim: in the baseline's times, or resumed by a later try."""
    j = Journal(resume)
    j.step("fetch prompts", 0.01).run("fetch prompts", 0.01, 0.05)
    j.step("parse", 0.06).model(0.06, 0.20, tokens=700)
    j.step("convert to EUR", 0.21).run("convert to EUR", 0.21, 0.22)
    j.step("analyze", 0.23).model(0.23, 0.30, tokens=500)
    j.run("check fraud", 0.31, 0.32).run("lookup policy", 0.33, 0.34).model(0.35, 0.40, 450)
    if review:
        j.step(names.AWAITING_REVIEW, 0.41).review(0.41, 5.0)
    j.step("reimburse", 5.01).run("reimburse", 5.01, 5.03)
    j.step("evaluate", 5.04).send_to_judge(5.04)
    return j.rows


def judge_journal(later_s: float = 0.0) -> list[dict[str, Any]]:
    j = Journal()
    j.shift = later_s
    j.run("gather evidence", 5.10, 5.11).model(5.12, 5.20, tokens=300)
    return j.run("write score", 5.21, 5.25).rows


# -- boundaries ------------------------------------------------------------------------------------
def test_the_boundaries_are_read_from_both_journals_in_order() -> None:
    found = boundaries_of(workflow_journal(review=True), judge_journal(), T0)
    assert [(b.name, b.invocation) for b in found] == [
        ("fetch prompts", "workflow"),
        ("model call 1", "workflow"),
        ("convert to EUR", "workflow"),
        ("model call 2", "workflow"),
        ("check fraud", "workflow"),
        ("lookup policy", "workflow"),
        ("model call 3", "workflow"),
        ("awaiting review", "workflow"),
        ("reimburse", "workflow"),
        ("evaluate", "workflow"),
        ("gather evidence", "judge"),
        ("judge", "judge"),
        ("write score", "judge"),
    ]
    assert all(b.targetable for b in found)
    assert [b.name for b in found if b.model_call] == [
        "model call 1",
        "model call 2",
        "model call 3",
        "judge",
    ]
    assert found[1].entry == "model call 1 (parse)" and found[3].entry == "model call 2 (analyze)"
    assert found[0].at_s == pytest.approx(0.01) and found[-1].at_s == pytest.approx(5.21)


def test_a_boundary_no_fault_can_target_is_listed_not_dropped() -> None:
    j = Journal().run("fetch prompts", 0.0, 0.1).run("my own step", 0.2, 0.3)
    j.run("fetch prompts", 0.4, 0.5)  # a second entry of the same name
    found = boundaries_of(j.rows)
    assert [(b.name, b.targetable) for b in found] == [
        ("fetch prompts", True),
        ("my own step", False),
        ("fetch prompts", False),
    ]
    assert "second entry" in found[2].entry


# -- kinds and waves -------------------------------------------------------------------------------
def test_kinds_are_checked_and_terminal_is_refused_saying_why() -> None:
    assert check_kinds("crash") == ("crash",)
    assert check_kinds(["crash", "crash", "error"]) == ("crash", "error")
    with pytest.raises(ValueError, match="A terminal fault ends the claim on purpose"):
        check_kinds(("crash", "terminal"))
    with pytest.raises(ValueError, match="Fault kind 'explode' is not one of: error"):
        check_kinds(["explode"])
    with pytest.raises(ValueError, match="at least one fault kind"):
        check_kinds([])


def test_waves_kill_one_process_and_hold_neighbouring_boundaries() -> None:
    bounds = boundaries_of(workflow_journal(), judge_journal(), T0)
    kinds = ("kill_restate", "crash", "crash_after_effect", "error")
    cases = [_Case(b, k, f"{b.name}-{k}") for k in kinds for b in bounds]
    waves = plan_waves(cases, 4, kinds)
    assert [len(w) for w in waves] == [4, 4, 4] + [4] * 6 + [4, 4, 4]
    killed = [{KILLS.get(c.kind, "nothing") for c in w} for w in waves]
    assert killed == [{"restate"}] * 3 + [{"services"}] * 6 + [{"nothing"}] * 3
    assert [(c.boundary.name, c.kind) for c in waves[3]] == [
        ("fetch prompts", "crash"),
        ("fetch prompts", "crash_after_effect"),
        ("model call 1", "crash"),
        ("model call 1", "crash_after_effect"),
    ]
    assert hold_for(waves[0]) < hold_for(waves[1]), "a wider spread holds longer"


# -- the invariants --------------------------------------------------------------------------------
def _outcome(claim_id: str, **changes: Any) -> ClaimOutcome:
    claim = ClaimData(
        customer_id="C-1001",
        claim_date="2026-03-14",
        amount=120.5,
        currency="USD",
        category="dental",
        has_receipt=True,
        description="dental",
        problems=[],
    )
    fields = {
        "claim_id": claim_id,
        "status": "paid",
        "reason": "ok",
        "claim": claim,
        "decision": "approve",
        "amount_eur": 110.86,
        "paid_eur": 110.86,
        "payment_id": "pay-1",
        "trace_id": f"trace-{claim_id}",
    }
    return ClaimOutcome(**{**fields, **changes})


def _events(*rows: tuple) -> list[dict[str, Any]]:
    """(seconds, step, event, kind, detail, pid) rows as the fault store returns them."""
    return [
        {
            "id": i,
            "claim_id": "c",
            "at": T0 + at,
            "step": step,
            "event": event,
            "call": None,
            "kind": kind,
            "detail": detail,
            "pid": pid,
        }
        for i, (at, step, event, kind, detail, pid) in enumerate(rows)
    ]


def _run_events(pid: int, start: float, *steps: tuple[str, str | None]) -> list[tuple]:
    """An attempt starting at `start` that executes and completes each (step, digest)."""
    rows: list[tuple] = [(start, "workflow", "attempt", None, None, pid)]
    t = start
    for step, digest in steps:
        t += 0.001
        rows.append((t, step, "executed", None, f"request {digest}" if digest else None, pid))
        rows.append((t + 0.0005, step, "completed", None, None, pid))
    return rows


BASELINE_STEPS = [
    ("fetch prompts", None),
    ("parse", "d1"),
    ("convert to EUR", None),
    ("analyze", "d2"),
    ("check fraud", None),
    ("lookup policy", None),
    ("analyze", "d3"),
    ("reimburse", None),
]


def _judge_events(pid: int, start: float) -> list[tuple]:
    return [
        (start, "evaluate", "evaluation", None, None, pid),
        (start + 0.01, "gather evidence", "executed", None, None, pid),
        (start + 0.02, "judge", "executed", None, "request j1", pid),
        (start + 0.03, "write score", "executed", None, None, pid),
    ]


def _payments(*ids: str) -> pd.DataFrame:
    return pd.DataFrame(
        [{"payment_id": i, "claim_id": "c", "amount_eur": 110.86} for i in ids],
        columns=["payment_id", "claim_id", "amount_eur"],
    )


def _evidence(claim_id: str, events: list[dict], **changes: Any) -> ClaimEvidence:
    fields: dict[str, Any] = {
        "claim_id": claim_id,
        "status": "paid",
        "outcome": _outcome(claim_id),
        "workflow": {"status": "completed", "completed_at": _at(5.05)},
        "judges": [{"status": "completed", "completion_result": "success", "completed_at": _at(6)}],
        "journal": workflow_journal(),
        "judge_journal": judge_journal(),
        "events": events,
        "payments": _payments("pay-1"),
        "scores": 1,
    }
    return ClaimEvidence(**{**fields, **changes})


@pytest.fixture
def baseline() -> ClaimEvidence:
    rows = _run_events(1, -0.001, *BASELINE_STEPS) + _judge_events(1, 5.09)
    return _evidence("base", _events(*rows))


def _bound(name: str) -> Boundary:
    found = {b.name: b for b in boundaries_of(workflow_journal(), judge_journal(), T0)}
    return found[name]


RESUMED_S = 1.58
"""The crash inside 'lookup policy' (0.33 s) costs the claim this much: its second try starts
at 1.9 s and records the rest of the journal that much later than the baseline did."""


def _lookup_crash(second_try: list[tuple[str, str | None]], **changes: Any) -> ClaimEvidence:
    """A crash inside 'lookup policy', then a new process doing `second_try`."""
    first = _run_events(1, -0.001, *BASELINE_STEPS[:5])
    first += [
        (0.33, "lookup policy", "fault", "crash", "1 of 1", 1),
        (0.40, "lookup policy", "crashed", "crash", "pid 1", 1),
    ]
    rows = [*first, *_run_events(2, 1.9, *second_try), *_judge_events(2, 5.09 + RESUMED_S)]
    fields: dict[str, Any] = {
        "journal": workflow_journal(resume=("lookup policy", 0.33 + RESUMED_S)),
        "judge_journal": judge_journal(RESUMED_S),
        "workflow": {"status": "completed", "completed_at": _at(5.05 + RESUMED_S)},
    }
    return _evidence("c", _events(*rows), **{**fields, **changes})


def test_a_crash_that_resumes_from_the_journal_keeps_every_invariant(baseline) -> None:
    case = _lookup_crash([("lookup policy", None), ("analyze", "d3"), ("reimburse", None)])
    result = check_case(baseline, case, _bound("lookup policy"), "crash")
    assert result.broken == {}
    assert result.passed
    assert (result.extra_model_calls, result.extra_tokens) == (0, 0)
    assert result.recovery_s == pytest.approx(5.05 + RESUMED_S - 0.40, abs=0.002), "from the crash"
    assert (result.attempts, result.processes) == (2, 2)


def test_a_model_call_journaled_before_the_crash_sent_again_is_caught(baseline) -> None:
    replay_broken = [("analyze", "d2"), ("lookup policy", None), ("analyze", "d3")]
    case = _lookup_crash(replay_broken)
    result = check_case(baseline, case, _bound("lookup policy"), "crash")
    assert set(result.broken) == {"no work redone"}
    assert result.broken["no work redone"].startswith("model call 2 was sent again 1.6 s after")
    assert "tokens billed twice" in result.broken["no work redone"]
    assert (result.extra_model_calls, result.extra_tokens) == (1, 500)


def test_a_step_journaled_before_the_crash_run_again_is_caught(baseline) -> None:
    case = _lookup_crash([("check fraud", None), ("lookup policy", None), ("analyze", "d3")])
    result = check_case(baseline, case, _bound("lookup policy"), "crash")
    assert result.broken["no work redone"] == (
        "step 'check fraud' ran again 1.6 s after its result was journaled"
    )


def test_an_answer_lost_in_a_crash_is_sent_again_and_costs_its_tokens(baseline) -> None:
    first = _run_events(1, -0.001, *BASELINE_STEPS[:3])
    first += [
        (0.24, "analyze", "executed", None, "request d2", 1),
        (0.29, "analyze", "completed", None, "lost", 1),
        (0.29, "analyze", "fault", "crash_after_effect", "1 of 1", 1),
        (0.35, "analyze", "crashed", "crash_after_effect", "pid 1", 1),
    ]
    second = _run_events(2, 1.9, *BASELINE_STEPS[3:])
    events = _events(*first, *second, *_judge_events(2, 5.09 + 1.67))
    case = _evidence(
        "c",
        events,
        journal=workflow_journal(resume=("model call 2", 1.9)),
        judge_journal=judge_journal(1.67),
    )
    result = check_case(baseline, case, _bound("model call 2"), "crash_after_effect")
    assert result.passed, result.broken  # not journaled before the crash: a re-send is allowed
    assert (result.extra_model_calls, result.extra_tokens) == (1, 500)


def test_a_second_payment_breaks_one_payment(baseline) -> None:
    case = _lookup_crash(
        [("lookup policy", None), ("analyze", "d3"), ("reimburse", None)],
        payments=_payments("pay-1", "pay-2"),
    )
    result = check_case(baseline, case, _bound("reimburse"), "crash_after_effect")
    assert result.broken["one payment"] == (
        "2 payments in the ledger (pay-1 110.86 EUR, pay-2 110.86 EUR), expected 1: the payment "
        "was made again"
    )


@pytest.mark.parametrize(
    ("changes", "invariant", "why"),
    [
        ({"events": []}, "fault fired", r"crash planned at 'lookup policy' never fired"),
        (
            {"outcome": _outcome("c", status="rejected", paid_eur=None), "status": "rejected"},
            "same outcome",
            r"status 'rejected' \(baseline 'paid'\); paid_eur None \(baseline 110.86\)",
        ),
        (
            {"status": "paused", "last_error": "boom"},
            "completed",
            r"Restate paused the claim after repeated failures \(last error: boom\)",
        ),
        ({"error": "it did not complete within 5 s"}, "completed", "did not complete within 5 s"),
        (
            {"judges": [{"status": "backing-off"}]},
            "completed",
            r"evaluation by the judge did not complete \(backing-off\)",
        ),
        (
            {"judges": [{"status": "completed", "completion_result": "success"}] * 2},
            "judge score",
            "the evaluation was sent 2 times, not once",
        ),
        ({"scores": 0}, "judge score", "no judge score on the claim's trace"),
        ({"payments": _payments()}, "one payment", "0 payments in the ledger, expected 1"),
        (
            {"payments": _payments("pay-9")},
            "one payment",
            r"the ledger's payment pay-9 is not the one the outcome names \(pay-1\)",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v and len(v) < 16 else None,
)
def test_each_invariant_breaks_with_its_reason(baseline, changes, invariant, why) -> None:
    case = _lookup_crash(
        [("lookup policy", None), ("analyze", "d3"), ("reimburse", None)],
        **{k: v for k, v in changes.items() if k != "events"},
    )
    if "events" in changes:
        case.events = changes["events"]
    result = check_case(baseline, case, _bound("lookup policy"), "crash")
    assert invariant in result.broken, result.broken
    assert pd.Series([result.broken[invariant]]).str.contains(why).all(), result.broken
    assert set(result.broken) <= set(INVARIANTS)


def test_recovery_leaves_out_the_wait_for_a_reviewer() -> None:
    events = _events(
        (0.0, "workflow", "attempt", None, None, 1),
        (0.30, "check fraud", "fault", "crash", "1 of 1", 1),
        (0.32, "check fraud", "crashed", "crash", "pid 1", 1),
    )
    case = _evidence(
        "c",
        events,
        journal=workflow_journal(review=True),
        workflow={"status": "completed", "completed_at": _at(5.05)},
    )
    # waited 0.41 s -> 5.0 s for the reviewer after the crash: 4.59 s not counted
    assert recovery_s(case, _bound("check fraud")) == pytest.approx(5.05 - 0.32 - 4.59, abs=0.002)


# -- the report ------------------------------------------------------------------------------------
def _report(rows: list[dict[str, Any]]) -> SweepReport:
    bounds = boundaries_of(workflow_journal(), judge_journal(), T0)
    frame = pd.DataFrame(rows)
    return SweepReport(
        document="doc",
        version="v1",
        kinds=("crash", "crash_after_effect"),
        baseline=Claim("base", "paid"),
        boundaries=bounds,
        swept=[b.name for b in bounds],
        frame=frame,
        timing={"total_s": 10.0, "cases": len(rows), "cases_per_s": 0.4, "waves": 2},
    )


def _row(boundary: str, kind: str, broken: str = "", recovery: float = 2.0) -> dict[str, Any]:
    return {
        "boundary": boundary,
        "kind": kind,
        "passed": not broken,
        "broken": broken,
        "why": f"{broken}: 2 payments in the ledger" if broken else "",
        "extra_model_calls": 0,
        "extra_tokens": 0,
        "recovery_s": recovery,
        "claim_id": f"sweep-{boundary}-{kind}",
    }


def test_the_verdict_says_passed_or_what_broke_where() -> None:
    good = _report([_row("reimburse", "crash"), _row("reimburse", "crash_after_effect", "")])
    assert good.passed
    assert good.verdict.startswith("PASSED on v1: all 2 cases (1 boundaries x 2 kinds) kept")
    assert "recovery median 2.0 s" in good.verdict
    bad = _report(
        [_row("reimburse", "crash"), _row("reimburse", "crash_after_effect", "one payment")]
    )
    assert not bad.passed
    assert bad.verdict.startswith(
        "FAILED on v1: 1 of 2 cases (1 boundaries x 2 kinds) broke an invariant: reimburse x "
        "crash_after_effect (one payment)"
    )
    assert bad.failures["claim_id"].tolist() == ["sweep-reimburse-crash_after_effect"]
    assert "sweep-reimburse-crash_after_effect" in repr(bad)
    assert bad.claim_id("reimburse", "crash") == "sweep-reimburse-crash"
    with pytest.raises(KeyError, match=r"No case \('parse', 'crash'\) in this sweep"):
        bad.claim_id("parse", "crash")


def test_the_heatmap_colours_each_case_and_shows_the_recovery_time() -> None:
    report = _report(
        [
            _row("reimburse", "crash", recovery=1.8),
            _row("reimburse", "crash_after_effect", "one payment"),
        ]
    )
    ax = report.heatmap()
    texts = [t.get_text() for t in ax.texts]
    assert "1.8 s" in texts and "2.0 s\none payment" in texts
    assert texts.count("-") == (len(report.boundaries) - 1) * 2, "cells not run are marked"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["crash", "crash_after_effect"]
    html = report._repr_html_()
    assert "data:image/png;base64," in html and "Broken invariants" in html


# -- planning faults together, and the hooks in the services ---------------------------------------
def test_faults_planned_together_share_one_wave(tmp_path: Path) -> None:
    session = Session(Endpoints("http://127.0.0.1:9", "http://127.0.0.1:9"), home=tmp_path)
    try:
        plans = session.faults.plan_together(
            {
                "a": Fault("parse", "crash"),
                "b": Fault("reimburse", "crash_after_effect"),
                "c": Fault("check fraud", "error"),
            },
            within_s=3,
        )
        killing = [p for p in plans if p.kind != "error"]
        assert {p.params["wave"] for p in killing} and len({p.params["wave"] for p in killing}) == 1
        assert all(p.params["wave_size"] == 2 and p.params["linger_s"] == 3 for p in killing)
        assert "wave" not in [p for p in plans if p.kind == "error"][0].params
        with pytest.raises(ValueError, match=r"within_s=0 is not within 0-30 seconds"):
            session.faults.plan_together({"d": Fault("parse", "crash")}, within_s=0)
    finally:
        session.close()


@pytest.fixture
def in_claim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FaultStore:
    db = FaultStore(tmp_path / "faults.sqlite3")
    monkeypatch.setattr(hooks, "store", lambda: db)
    monkeypatch.setattr(hooks, "_claim_id", lambda: "c")
    monkeypatch.setattr(hooks, "_replaying", lambda: False)
    yield db
    db.close()


def test_crashes_planned_together_wait_for_each_other_then_die_once(in_claim, monkeypatch) -> None:
    kills: list[float] = []
    monkeypatch.setattr(hooks, "crash_self", lambda: kills.append(asyncio.get_event_loop().time()))
    monkeypatch.setattr(hooks, "_dying", [])
    params = {"linger_s": 5.0, "wave": "w1", "wave_size": 2}
    first = in_claim.add(claim_id="c", step="parse", kind="crash", times=1, params=params)
    second = in_claim.add(claim_id="c", step="reimburse", kind="crash", times=1, params=params)

    async def both() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        held = asyncio.ensure_future(hooks.die(first, "parse"))
        await asyncio.sleep(0.2)
        assert not held.done() and not kills, "the first waits for the second"
        await hooks.die(second, "reimburse")
        await held
        return loop.time() - started

    took = asyncio.run(both())
    assert 0.2 <= took < 2.0, "released when the wave fired, not after linger_s"
    crashed = [(e["step"], e["kind"]) for e in in_claim.events("c") if e["event"] == "crashed"]
    assert ("parse", "crash") in crashed and ("reimburse", "crash") in crashed


def test_a_boundary_fires_where_the_workflow_reaches_it_never_on_replay(
    in_claim, monkeypatch
) -> None:
    crashes: list[str] = []

    async def fake_die(plan, where):
        crashes.append(f"{plan.kind} at {where}")

    monkeypatch.setattr(hooks, "die", fake_die)
    in_claim.add(claim_id="c", step="evaluate", kind="crash", times=1)
    in_claim.add(claim_id="c", step="evaluate", kind="crash_after_effect", times=1)
    sent: list[str] = []

    async def send() -> str:
        sent.append("sent")
        return "inv-1"

    monkeypatch.setattr(hooks, "_replaying", lambda: True)
    assert asyncio.run(hooks.boundary("evaluate", send)) == "inv-1"
    assert crashes == [], "a replay fires nothing"
    monkeypatch.setattr(hooks, "_replaying", lambda: False)
    asyncio.run(hooks.boundary("evaluate", send))
    assert crashes == ["crash at evaluate", "crash_after_effect at evaluate"]
    asyncio.run(hooks.boundary("evaluate", send))
    assert len(crashes) == 2 and sent == ["sent"] * 3, "each fault fires once"


def test_the_unsafe_version_pays_under_a_fresh_key_each_time() -> None:
    safe = versions.payment_key("v1", "c-1")
    assert safe == names.payment_key("c-1") == versions.payment_key("v1", "c-1")
    unsafe = {versions.payment_key(versions.UNSAFE, "c-1") for _ in range(3)}
    assert len(unsafe) == 3 and all(k.startswith(safe + "/") for k in unsafe)
    assert not versions.verifies_documents(versions.UNSAFE)


def test_model_requests_carry_a_digest_of_what_they_ask() -> None:
    same = hooks.request_digest([{"role": "user", "content": "a"}])
    assert same == hooks.request_digest([{"content": "a", "role": "user"}])
    assert same != hooks.request_digest([{"role": "user", "content": "b"}])
