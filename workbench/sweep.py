"""The crash-point sweep: crash one claim at every journal boundary and prove the invariants.

    report = wb.faults.sweep(wb.samples.get("claim-001"))
    report                        # the verdict, the heatmap (boundary x kind), what broke and why
    report.frame                  # one row per case
    report.heatmap()
    wb.faults.sweep(doc, version="unsafe")    # a payment without an idempotency key: caught

A durable workflow promises that wherever its process dies, the claim ends the same way, its
side effects happen once and finished work is not redone. A claim has a few dozen journal
boundaries, so the promise can be checked exhaustively:

1. a **baseline**: the claim once, without faults (one that waits for review is decided at once,
   as `review=` says, and so is every case);
2. its **boundaries**, read from the baseline's journals, the workflow's and the judge's: each
   step, each model call, each tool, the review wait, the payment, the send to the judge, the
   judge's own steps (`boundaries_of`);
3. one claim per (boundary, kind), each under its own id with that fault planned, `concurrency`
   at a time;
4. per case, the invariants against the baseline (`INVARIANTS`), what the fault cost (extra
   model calls and tokens) and the time from the crash to completion (`check_case`).

Claims run side by side share the services process and the Restate server that the faults kill.
A fault that kills a process holds its claim where it fired (`wb.faults.plan_together`), so
that the crashes of one wave of cases coincide and cost one restart instead of one each; the
other claims of the wave are interrupted too, wherever they are. The invariants must hold all the
same: they are what durable execution promises under any number of crashes.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import json
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd

from services import names
from services.fault_store import ATTEMPT, CRASHED, EVALUATION, EXECUTED, FAULT
from services.faults import KINDS, MODEL_CALL, MODEL_KINDS, STEPS, WORKFLOW_MODEL_STEPS
from services.models import ClaimOutcome, ClaimRequest

from ._aio import run_sync
from .claims import AsyncClaims, Claim
from .errors import ClaimStateError, RestateError, SweepError, WorkbenchError
from .frames import epoch_s
from .progress import Progress

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .samples import Sample
    from .session import Session

__all__ = [
    "DEFAULT_KINDS",
    "INVARIANTS",
    "KILLS",
    "SWEEP_KINDS",
    "Boundary",
    "CaseResult",
    "ClaimEvidence",
    "SweepError",
    "SweepReport",
    "asweep",
    "boundaries_of",
    "check_case",
    "plan_waves",
    "sweep",
]

DEFAULT_KINDS = ("crash", "crash_after_effect", "kill_restate")
SWEEP_KINDS = tuple(k for k in KINDS if k != "terminal")
"""Faults a claim must survive without changing its outcome (a `terminal` fault ends it on
purpose, so it has no place in a sweep). Model faults apply at model calls only."""

INVARIANTS: dict[str, str] = {
    "fault fired": "the planned fault fired where it was planned (else the case proves nothing)",
    "completed": "the claim and its evaluation completed: not paused, not stuck, not failed",
    "same outcome": "the same status, decision and EUR amounts as the baseline",
    "one payment": "exactly one payment for an approved claim (none otherwise), the one its "
    "outcome names",
    "no work redone": "no step or model call whose result was journaled ran again (so no "
    "token is billed twice for it)",
    "judge score": "the evaluation was sent once and its score is on the claim's trace",
}
"""What must hold in every case, compared with the baseline."""

HOLD_BASE_S = 2.0
HOLD_PER_SPREAD = 3.0
HOLD_MAX_S = 10.0
"""A wave's killing faults hold their claims until all of them fired, at most HOLD_BASE_S +
HOLD_PER_SPREAD x (the spread of their boundaries in the baseline, seconds), and HOLD_MAX_S:
the bound matters only when a case's fault does not fire (its claim took another path)."""
POLL_S = 0.5
REVIEW_POLL_S = 0.2
"""How often a case is looked at while it runs (more often when it may wait for review)."""
SCORES_WAIT_S = 20.0
"""How long the sweep waits for judge scores still missing from Langfuse once the judge ended."""
REDONE_MARGIN_S = 0.2
"""A result Restate journaled more than this before a try began was journaled by an earlier try,
so that try must replay it, not run it again. (Restate's and the services' clocks are read in
different processes: under load an entry's time can lead the services' by ~0.1 s; a try begins
after a restart or a retry delay, at least 0.2 s after the failure that ended the one before.)"""
FRAME_COLUMNS = [
    "boundary",
    "kind",
    "passed",
    "broken",
    "why",
    "extra_model_calls",
    "extra_tokens",
    "recovery_s",
    "claim_id",
    "status",
    "attempts",
    "processes",
    "wave",
]


# -- boundaries ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Boundary:
    """A point of a claim's journal where a fault can be planned. `name` is the fault step that
    targets it (`Fault(name, kind)`); `invocation` is "workflow" or "judge"; `entry` says what
    the journal records there; `at_s` is when the baseline reached it (seconds after the claim
    started); `targetable` is False for a journal entry no fault can name (a step of your own
    that `services.faults.STEPS` does not know, a second entry of the same name)."""

    name: str
    invocation: str
    entry: str
    index: int
    at_s: float | None = None
    model_call: bool = False
    targetable: bool = True


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(row.get("entry_json") or "{}")
    except ValueError:
        return {}


def _value(raw: Any) -> Any:
    """A journaled value (bytes as a list of ints) decoded from JSON, or None."""
    if not isinstance(raw, list):
        return None
    try:
        return json.loads(bytes(raw).decode())
    except (ValueError, TypeError):
        return None


def _target(command: dict[str, Any]) -> str:
    target = (command.get("request") or command).get("invocation_target") or {}
    inner = next(iter(target.values()), {}) if isinstance(target, dict) else {}
    if not isinstance(inner, dict):
        return "?"
    return "/".join(str(inner[k]) for k in ("name", "handler") if inner.get(k))


def targetable(name: str) -> bool:
    """Whether a fault can be planned at a step of this name."""
    return name in STEPS or MODEL_CALL.match(name) is not None


def boundaries_of(
    workflow: Iterable[dict[str, Any]],
    judge: Iterable[dict[str, Any]] = (),
    started_at: float | None = None,
) -> list[Boundary]:
    """The boundaries of a claim from its journals (`sys_journal` rows of its workflow and of
    its judge's evaluation), in order: every `ctx.run` (a step, a tool, the payment; a model call
    as "model call N" in the workflow and as "judge" in the judge), the wait for a promise (the
    review), and every call or send to another handler (the judge). `started_at` (epoch seconds)
    gives each its `at_s`."""
    found: list[Boundary] = []
    seen: set[str] = set()

    def add(name: str, invocation: str, entry: str, row: dict[str, Any], model: bool = False):
        at = epoch_s(row.get("appended_at"))
        ok = targetable(name) and name not in seen
        if name in seen:
            entry += " (a second entry of that name: its faults fire at the first)"
        seen.add(name)
        found.append(
            Boundary(
                name,
                invocation,
                entry,
                int(row.get("index") or 0),
                round(at - started_at, 3) if at is not None and started_at is not None else None,
                model,
                ok,
            )
        )

    calls, current = 0, ""
    for row in workflow:
        command = _entry(row).get("Command") or {}
        if "SetState" in command:
            if command["SetState"].get("key") == names.STEP_KEY:
                step = _value(command["SetState"].get("value"))
                current = step if isinstance(step, str) else current
        elif "Run" in command:
            name = command["Run"].get("name") or row.get("name") or "run"
            if name == names.CALL_LLM:
                calls += 1
                where = f" ({current})" if current else ""
                add(f"model call {calls}", "workflow", f"model call {calls}{where}", row, True)
            else:
                add(name, "workflow", f"step {name!r}", row)
        elif "GetPromise" in command:
            key = command["GetPromise"].get("key")
            if key == names.REVIEW_PROMISE:
                add(names.AWAITING_REVIEW, "workflow", "the wait for the review decision", row)
            else:
                add(f"promise {key}", "workflow", f"the wait for promise {key!r}", row)
        elif "OneWayCall" in command or "Call" in command:
            kind = "OneWayCall" if "OneWayCall" in command else "Call"
            called = _target(command[kind])
            verb = "one-way send" if kind == "OneWayCall" else "call"
            if kind == "OneWayCall" and called == f"{names.JUDGE}/{names.EVALUATE}":
                add(names.EVALUATE_STEP, "workflow", f"the {verb} to {called}", row)
            else:
                add(f"{verb} {called}", "workflow", f"the {verb} to {called}", row)
        elif "Sleep" in command:
            add("sleep", "workflow", "a durable timer", row)
    for row in judge:
        command = _entry(row).get("Command") or {}
        if "Run" in command:
            name = command["Run"].get("name") or row.get("name") or "run"
            if name == names.CALL_LLM:
                add(names.JUDGE_CALL, "judge", "the judge's model call", row, True)
            else:
                add(name, "judge", f"the judge's step {name!r}", row)
    return found


def applies(boundary: Boundary, kind: str) -> bool:
    """Whether a `kind` fault can fire at `boundary` (model faults only at model calls)."""
    return boundary.targetable and (kind not in MODEL_KINDS or boundary.model_call)


# -- what a journal recorded ---------------------------------------------------------------------
def run_results(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every `ctx.run` result a journal recorded, in order: name, ok, at (epoch seconds), and
    for a model call the tokens its answer used (the model response is journaled whole)."""
    opened: dict[Any, str] = {}
    results = []
    for row in rows:
        body = _entry(row)
        command = body.get("Command") or {}
        if "Run" in command:
            opened[command["Run"].get("completion_id")] = (
                command["Run"].get("name") or row.get("name") or "run"
            )
        run = ((body.get("Notification") or {}).get("Completion") or {}).get("Run")
        if run is None:
            continue
        result = run.get("result") or {}
        name = opened.get(run.get("completion_id"), "run")
        tokens = None
        if name == names.CALL_LLM and "Success" in result:
            usage = (_value(result["Success"]) or {}).get("usage") or {}
            tokens = usage.get("total_tokens")
        results.append(
            {
                "name": name,
                "ok": "Success" in result,
                "at": epoch_s(row.get("appended_at")),
                "tokens": tokens,
            }
        )
    return results


def _review_wait(rows: Iterable[dict[str, Any]]) -> tuple[float, float] | None:
    """When the workflow began waiting for the review decision and when it arrived."""
    start, completion = None, None
    for row in rows:
        body = _entry(row)
        command = body.get("Command") or {}
        if "GetPromise" in command and command["GetPromise"].get("key") == names.REVIEW_PROMISE:
            start, completion = (
                epoch_s(row.get("appended_at")),
                command["GetPromise"].get("completion_id"),
            )
        done = ((body.get("Notification") or {}).get("Completion") or {}).get("GetPromise")
        if done is not None and start is not None and done.get("completion_id") == completion:
            end = epoch_s(row.get("appended_at"))
            return (start, end) if end is not None else None
    return None


# -- the evidence of one claim --------------------------------------------------------------------
@dataclass
class ClaimEvidence:
    """What the witnesses hold about one claim of a sweep: its status and outcome (Restate),
    its workflow invocation and its judge evaluations (`sys_invocation` rows), both journals,
    the services' records (`faults.sqlite3`), its payments (the ledger), and how many judge
    scores its trace has (None where they were not read). `error` says why the sweep could not
    follow it to the end."""

    claim_id: str
    status: str
    outcome: ClaimOutcome | None = None
    last_error: str | None = None
    workflow: dict[str, Any] | None = None
    judges: list[dict[str, Any]] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    judge_journal: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    payments: pd.DataFrame = field(default_factory=pd.DataFrame)
    scores: int | None = None
    error: str | None = None


def _requests(evidence: ClaimEvidence, invocation: str) -> list[tuple[str | None, float]]:
    """The model requests the services sent for one invocation: (digest of the request, when)."""
    steps = WORKFLOW_MODEL_STEPS if invocation == "workflow" else (names.JUDGE_CALL,)
    out = []
    for e in evidence.events:
        if e["event"] == EXECUTED and e["step"] in steps:
            detail = str(e.get("detail") or "")
            out.append((detail.removeprefix("request ") if detail else None, e["at"]))
    return out


def _journal(evidence: ClaimEvidence, invocation: str) -> list[dict[str, Any]]:
    return evidence.journal if invocation == "workflow" else evidence.judge_journal


def billed_tokens(evidence: ClaimEvidence) -> tuple[int, int]:
    """(model requests sent, tokens billed for them): each request priced at the tokens its
    journaled answer used (matched by the request's digest, in order); a request whose answer
    was never journaled at the mean of the invocation's calls."""
    sent = tokens = 0
    for invocation in ("workflow", "judge"):
        results = run_results(_journal(evidence, invocation))
        calls = [r for r in results if r["name"] == names.CALL_LLM]
        priced = [r["tokens"] for r in calls if r["ok"] and r["tokens"] is not None]
        mean = statistics.fmean(priced) if priced else 0.0
        requests = _requests(evidence, invocation)
        order = list(dict.fromkeys(d for d, _ in requests if d))
        for digest, _ in requests:
            sent += 1
            k = order.index(digest) if digest in order else len(priced)
            tokens += int(priced[k]) if k < len(priced) else round(mean)
    return sent, tokens


def _try_starts(evidence: ClaimEvidence, invocation: str) -> list[float]:
    """When each try of the workflow (its `attempt` records) or of the judge's evaluation (its
    `evaluation` records) began, by the services' clock."""
    if invocation == "workflow":
        return [e["at"] for e in evidence.events if e["event"] == ATTEMPT]
    return [e["at"] for e in evidence.events if e["event"] == EVALUATION]


def _rerun(at: float, journaled: float | None, starts: list[float]) -> float | None:
    """If an execution at `at` belongs to a try that began after Restate had journaled the
    result (so the try had to replay it), how long after the journal it ran; else None."""
    if journaled is None:
        return None
    began = max((s for s in starts if s <= at), default=None)
    if began is None or journaled >= began - REDONE_MARGIN_S:
        return None
    return at - journaled


def redone_work(evidence: ClaimEvidence) -> list[str]:
    """Steps and model calls that ran again in a try that began after Restate had journaled
    their result (so it had to replay them): each a sentence saying what and how long after."""
    problems: list[str] = []
    model_steps = (*WORKFLOW_MODEL_STEPS, names.JUDGE_CALL)
    for invocation in ("workflow", "judge"):
        results = run_results(_journal(evidence, invocation))
        starts = _try_starts(evidence, invocation)
        done_at: dict[str, float] = {}
        for r in results:
            if r["ok"] and r["name"] != names.CALL_LLM and r["at"] is not None:
                done_at.setdefault(r["name"], r["at"])
        for step, journaled in done_at.items():
            if step in model_steps:
                continue
            again = [
                late
                for e in evidence.events
                if e["event"] == EXECUTED
                and e["step"] == step
                and (late := _rerun(e["at"], journaled, starts)) is not None
            ]
            if again:
                problems.append(
                    f"step {step!r} ran again {again[0]:.1f} s after its result was journaled"
                )
        calls = [r for r in results if r["name"] == names.CALL_LLM and r["ok"]]
        requests = _requests(evidence, invocation)
        order = list(dict.fromkeys(d for d, _ in requests if d))
        for k, digest in enumerate(order[: len(calls)]):
            again = [
                late
                for d, at in requests
                if d == digest and (late := _rerun(at, calls[k]["at"], starts)) is not None
            ]
            if again:
                what = f"model call {k + 1}" if invocation == "workflow" else "the judge's call"
                problems.append(
                    f"{what} was sent again {again[0]:.1f} s after its answer was journaled "
                    "(its tokens billed twice)"
                )
    return problems


# -- the invariants ------------------------------------------------------------------------------
@dataclass
class CaseResult:
    """One case checked: which invariants broke (name -> why), what the fault cost, how long
    recovery took, and how often the claim was tried and in how many processes."""

    broken: dict[str, str]
    extra_model_calls: int
    extra_tokens: int
    recovery_s: float | None
    attempts: int
    processes: int

    @property
    def passed(self) -> bool:
        return not self.broken


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) < 0.005


def _outcome_diff(case: ClaimOutcome, baseline: ClaimOutcome) -> list[str]:
    diffs = []
    for name in ("status", "decision"):
        got, want = getattr(case, name), getattr(baseline, name)
        if got != want:
            diffs.append(f"{name} {got!r} (baseline {want!r})")
    for name in ("amount_eur", "paid_eur"):
        got, want = getattr(case, name), getattr(baseline, name)
        if not _close(got, want):
            diffs.append(f"{name} {got} (baseline {want})")
    return diffs


def _judged(row: dict[str, Any]) -> bool:
    return row.get("status") == "completed" and row.get("completion_result") == "success"


def recovery_s(evidence: ClaimEvidence, boundary: Boundary) -> float | None:
    """Seconds from the crash (the process killed; for a fault that kills nothing, when it
    fired) to the completion of the invocation it hit, less the time spent waiting for a
    reviewer after it. None when the fault did not fire or the invocation did not complete."""
    crashed = [e["at"] for e in evidence.events if e["event"] == CRASHED]
    fired = [e["at"] for e in evidence.events if e["event"] == FAULT]
    if not fired:
        return None
    start = min(crashed) if crashed else min(fired)
    row = evidence.workflow if boundary.invocation == "workflow" else None
    if boundary.invocation == "judge" and evidence.judges:
        row = evidence.judges[0]
    end = epoch_s((row or {}).get("completed_at"))
    if end is None:
        return None
    wait = _review_wait(evidence.journal)
    if wait is not None and boundary.invocation == "workflow" and wait[1] > start:
        end -= wait[1] - max(wait[0], start)
    return round(max(end - start, 0.0), 3)


def check_case(
    baseline: ClaimEvidence, case: ClaimEvidence, boundary: Boundary, kind: str
) -> CaseResult:
    """Check one case against the baseline: each invariant of `INVARIANTS` that broke, with
    why; the extra model calls and tokens the fault cost; the recovery time."""
    broken: dict[str, str] = {}
    events = case.events
    if not any(e["event"] == FAULT for e in events):
        broken["fault fired"] = (
            f"the {kind} planned at {boundary.name!r} never fired: the claim did not reach "
            "that point (its path differs from the baseline's)"
        )
    outcome = case.outcome
    workflow_done = (case.workflow or {}).get("status") == "completed"
    if case.error:
        broken["completed"] = case.error
    elif case.status == "paused":
        broken["completed"] = (
            f"Restate paused the claim after repeated failures (last error: {case.last_error}); "
            f"resume it with wb.claims.resume({case.claim_id!r}) once the cause is fixed"
        )
    elif not workflow_done or case.status not in names.FINAL_STATUSES:
        broken["completed"] = f"the claim is {case.status}, not completed"
    elif not case.judges or not all(_judged(j) for j in case.judges):
        states = ", ".join(str(j.get("status")) for j in case.judges) or "never started"
        broken["completed"] = f"its evaluation by the judge did not complete ({states})"
    base = baseline.outcome
    if outcome is None or base is None:
        if base is not None:
            broken["same outcome"] = "the claim has no outcome"
    elif diffs := _outcome_diff(outcome, base):
        broken["same outcome"] = "; ".join(diffs)
    payments = case.payments
    expected = 1 if base is not None and base.status == names.PAID else 0
    if len(payments) != expected:
        listed = ", ".join(f"{p.payment_id} {p.amount_eur:.2f} EUR" for p in payments.itertuples())
        broken["one payment"] = (
            f"{len(payments)} payments in the ledger{f' ({listed})' if listed else ''}, "
            f"expected {expected}"
            + (": the payment was made again" if len(payments) > expected else "")
        )
    elif expected and outcome is not None and outcome.payment_id != payments["payment_id"].iloc[0]:
        broken["one payment"] = (
            f"the ledger's payment {payments['payment_id'].iloc[0]} is not the one the outcome "
            f"names ({outcome.payment_id})"
        )
    if redone := redone_work(case):
        broken["no work redone"] = "; ".join(redone)
    if len(case.judges) > 1:
        broken["judge score"] = f"the evaluation was sent {len(case.judges)} times, not once"
    elif (
        case.scores is not None
        and baseline.scores is not None
        and case.scores != baseline.scores
        and "completed" not in broken
    ):
        broken["judge score"] = (
            "no judge score on the claim's trace"
            if case.scores == 0
            else f"{case.scores} judge scores on the claim's trace, not {baseline.scores}"
        )
    sent, tokens = billed_tokens(case)
    base_sent, base_tokens = billed_tokens(baseline)
    attempts = [e for e in events if e["event"] == "attempt"]
    return CaseResult(
        broken=broken,
        extra_model_calls=sent - base_sent,
        extra_tokens=tokens - base_tokens,
        recovery_s=recovery_s(case, boundary),
        attempts=len(attempts),
        processes=len({e["pid"] for e in attempts}),
    )


# -- the report ----------------------------------------------------------------------------------
@dataclass
class SweepReport:
    """The result of `wb.faults.sweep`: `frame` (one row per case: boundary, kind, passed,
    broken, why, extra_model_calls, extra_tokens, recovery_s, claim_id, status, attempts,
    processes, wave), `verdict` (one line), `heatmap()`, the `baseline` claim, the
    `boundaries` read from its journals, and `timing` (where the time went)."""

    document: str
    version: str | None
    kinds: tuple[str, ...]
    baseline: Claim
    boundaries: list[Boundary]
    swept: list[str]
    frame: pd.DataFrame
    timing: dict[str, Any]

    @property
    def passed(self) -> bool:
        """Every case kept every invariant (and there was at least one case)."""
        return bool(len(self.frame)) and bool(self.frame["passed"].all())

    @property
    def failures(self) -> pd.DataFrame:
        """The cases that broke an invariant, with why."""
        return self.frame[~self.frame["passed"].astype(bool)].reset_index(drop=True)

    @property
    def uncovered(self) -> list[Boundary]:
        """Journal boundaries no fault can target (listed, never silently skipped)."""
        return [b for b in self.boundaries if not b.targetable]

    def boundary_frame(self) -> pd.DataFrame:
        """The boundaries read from the baseline's journals: name, invocation, what the journal
        records there, its index, when the baseline reached it, whether it was swept.

        Example:
            >>> report.boundary_frame()
        """
        return pd.DataFrame(
            [
                {
                    "boundary": b.name,
                    "invocation": b.invocation,
                    "entry": b.entry,
                    "journal_index": b.index,
                    "at_s": b.at_s,
                    "targetable": b.targetable,
                    "swept": b.name in self.swept and b.targetable,
                }
                for b in self.boundaries
            ]
        )

    def claim_id(self, boundary: str, kind: str) -> str:
        """The id of the case claim for (boundary, kind), to look at it closely.

        Example:
            >>> wb.ledger(report.claim_id("reimburse", "crash_after_effect"))
        """
        rows = self.frame[(self.frame["boundary"] == boundary) & (self.frame["kind"] == kind)]
        if rows.empty:
            raise KeyError(
                f"No case ({boundary!r}, {kind!r}) in this sweep; its boundaries: "
                f"{', '.join(self.swept)}; its kinds: {', '.join(self.kinds)}."
            )
        return str(rows["claim_id"].iloc[0])

    @property
    def verdict(self) -> str:
        """One line: passed or failed, how many cases, what broke where."""
        frame, n = self.frame, len(self.frame)
        rows = len(set(frame["boundary"])) if n else 0
        what = f"{n} cases ({rows} boundaries x {len(self.kinds)} kinds)"
        version = f" on {self.version}" if self.version else ""
        uncovered = self.uncovered
        missing = (
            f"; {len(uncovered)} boundaries no fault can target: "
            + ", ".join(b.name for b in uncovered)
            if uncovered
            else ""
        )
        if not n:
            return f"NOTHING SWEPT{version}: no case ran{missing}."
        failures = self.failures
        if failures.empty:
            recovery = frame["recovery_s"].dropna()
            timing = (
                f"; recovery median {recovery.median():.1f} s, max {recovery.max():.1f} s"
                if len(recovery)
                else ""
            )
            extra = int(frame["extra_model_calls"].clip(lower=0).sum())
            tokens = int(frame["extra_tokens"].clip(lower=0).sum())
            cost = f"; {extra} model calls repeated ({tokens:,} tokens)" if extra else ""
            return f"PASSED{version}: all {what} kept every invariant{timing}{cost}{missing}."
        first = failures.iloc[0]
        where = ", ".join(
            f"{r.boundary} x {r.kind} ({r.broken})" for r in failures.head(3).itertuples()
        )
        more = f" and {len(failures) - 3} more" if len(failures) > 3 else ""
        return (
            f"FAILED{version}: {len(failures)} of {what} broke an invariant: {where}{more}. "
            f"First: {first.why}{missing}."
        )

    def heatmap(self, ax: Axes | None = None) -> Axes:
        """The cases as a boundary x kind grid, coloured by result, annotated with the recovery
        time (and the broken invariant); returns the Axes.

        Example:
            >>> report.heatmap()
        """
        from .charts import sweep_heatmap

        rows = list(
            dict.fromkeys(
                b.name for b in self.boundaries if b.name in self.swept or not b.targetable
            )
        )
        labels = {
            b.name: f"{b.name}  [{b.invocation}]" + ("" if b.targetable else " (no fault)")
            for b in self.boundaries
        }
        version = f" of {self.version}" if self.version else ""
        passed = int(self.frame["passed"].sum()) if len(self.frame) else 0
        return sweep_heatmap(
            self.frame,
            boundaries=rows,
            kinds=list(self.kinds),
            labels=labels,
            title=f"Crash-point sweep{version}: {passed} of {len(self.frame)} cases kept every "
            "invariant",
            ax=ax,
        )

    def heatmap_png(self) -> bytes:
        """The heatmap as PNG bytes (for a widget or a file).

        Example:
            >>> Path("sweep.png").write_bytes(report.heatmap_png())
        """
        import matplotlib.pyplot as plt

        ax = self.heatmap()
        buffer = io.BytesIO()
        ax.figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        plt.close(ax.figure)
        return buffer.getvalue()

    def __repr__(self) -> str:
        lines = [self.verdict]
        for r in self.failures.itertuples():
            lines.append(f"  {r.boundary} x {r.kind} ({r.claim_id}): {r.why}")
        lines.append(f"  {self._timing_line()}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.passed else "#c62828"
        head = f"<p style='color:{color}'><b>{html.escape(self.verdict)}</b></p>"
        image = base64.b64encode(self.heatmap_png()).decode()
        picture = f"<img src='data:image/png;base64,{image}'/>"
        parts = [head, picture]
        if not self.failures.empty:
            failures = self.failures[["boundary", "kind", "broken", "why", "claim_id"]]
            parts += ["<p><b>Broken invariants</b></p>", failures.to_html(index=False)]
        parts.append(
            f"<p style='color:#555;font-size:12px'>{html.escape(self._timing_line())} · "
            "report.frame has every case</p>"
        )
        return "".join(parts)

    def _timing_line(self) -> str:
        t = self.timing
        line = (
            f"{t.get('cases', 0)} cases in {t.get('total_s', 0):.1f} s "
            f"({t.get('cases_per_s', 0):.2f} cases/s, {t.get('waves', 0)} waves of up to "
            f"{t.get('concurrency', 0)})"
        )
        if t.get("down_s") is not None:
            line += (
                f"; a wave, median: claims held {t['held_s']} s, process down and back "
                f"{t['down_s']} s, replay and the rest {t['finish_s']} s"
            )
        return line


# -- running it ----------------------------------------------------------------------------------
@dataclass
class _Case:
    boundary: Boundary
    kind: str
    claim_id: str
    wave: int = 0
    claim: Claim | None = None
    error: str | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"


KILLS = {"crash": "services", "crash_after_effect": "services", "kill_restate": "restate"}
"""Which process a kind of fault kills (the others kill none)."""


def plan_waves(
    cases: Sequence[Any], concurrency: int, kinds: Sequence[str] | None = None
) -> list[list[Any]]:
    """Cases in waves of at most `concurrency`: the cases whose faults kill the same process
    together (a wave restarts the services, or Restate, or nothing: never both), in the order of
    `kinds`; within that, neighbours in the claim's order together (so that the faults of a wave
    fire close in time)."""
    order = list(kinds) if kinds is not None else list(dict.fromkeys(c.kind for c in cases))
    groups = list(dict.fromkeys(KILLS.get(k, "nothing") for k in order))
    waves: list[list[Any]] = []
    for group in groups:
        members = sorted(
            (c for c in cases if KILLS.get(c.kind, "nothing") == group),
            key=lambda c: (
                c.boundary.at_s if c.boundary.at_s is not None else float("inf"),
                order.index(c.kind) if c.kind in order else len(order),
            ),
        )
        waves += [members[i : i + concurrency] for i in range(0, len(members), concurrency)]
    return waves


def hold_for(wave: Sequence[Any]) -> float:
    """At most how long the killing faults of a wave hold their claims for the others."""
    times = [c.boundary.at_s for c in wave if c.boundary.at_s is not None]
    spread = (max(times) - min(times)) if times else 0.0
    return round(min(HOLD_BASE_S + HOLD_PER_SPREAD * spread, HOLD_MAX_S), 3)


def check_kinds(kinds: Iterable[str] | str) -> tuple[str, ...]:
    """The kinds to sweep, checked (ValueError naming what is valid)."""
    chosen = (kinds,) if isinstance(kinds, str) else tuple(dict.fromkeys(kinds))
    if not chosen:
        raise ValueError(f"A sweep needs at least one fault kind, such as {DEFAULT_KINDS}.")
    for kind in chosen:
        if kind == "terminal":
            raise ValueError(
                "A terminal fault ends the claim on purpose, so its outcome must differ from the "
                "baseline: it has no place in a sweep. Sweep the faults a claim must survive: "
                f"{', '.join(SWEEP_KINDS)}."
            )
        if kind not in SWEEP_KINDS:
            raise ValueError(f"Fault kind {kind!r} is not one of: {', '.join(SWEEP_KINDS)}.")
    return chosen


async def _decided(claims: AsyncClaims, claim_id: str, approve: bool, poll_s: float) -> Claim:
    """Decide a claim that waits for review, riding out Restate or the services restarting."""
    while True:
        try:
            now = await claims.get(claim_id)
        except (RestateError, httpx.TransportError):
            await asyncio.sleep(poll_s)
            continue
        if now.done or now.status == "paused":
            return now
        if not now.awaiting_review:
            await asyncio.sleep(poll_s)
            continue
        try:
            decided = await claims.decide(
                claim_id, approve, reviewer="sweep", note="decided by the crash-point sweep"
            )
        except ClaimStateError:
            await asyncio.sleep(poll_s)  # it moved meanwhile: look again
            continue
        except (RestateError, httpx.TransportError):
            await asyncio.sleep(poll_s)
            continue
        assert isinstance(decided, Claim)
        return decided


async def _judge_done(session: Session, claim_id: str, poll_s: float) -> None:
    """Until every evaluation of the claim by the judge has completed (or was paused)."""
    while True:
        try:
            rows = await session.restate.invocations(
                service=names.JUDGE, key=claim_id, handler=names.EVALUATE
            )
        except (RestateError, httpx.TransportError):
            rows = []
        if rows and all(r["status"] in ("completed", "paused") for r in rows):
            return
        await asyncio.sleep(poll_s)


async def _run_claim(
    session: Session,
    request: ClaimRequest,
    claim_id: str,
    faults: list[Any],
    approve: bool,
    timeout_s: float,
    poll_s: float,
) -> tuple[Claim | None, str | None]:
    """Submit one claim (with its faults), decide it if it waits for review, wait for its
    evaluation; returns the claim and, if it could not be followed to the end, why."""
    claims = AsyncClaims(session)

    async def follow() -> Claim:
        claim = await claims.submit(request, claim_id, faults=faults, poll_interval_s=poll_s)
        if claim.awaiting_review:
            claim = await _decided(claims, claim_id, approve, poll_s)
        if claim.done:
            await _judge_done(session, claim_id, REVIEW_POLL_S)
        return claim

    try:
        return await asyncio.wait_for(follow(), timeout_s), None
    except TimeoutError:
        session.faults.clear(claim_id)  # a fault it did not reach yet must not fire later
        try:
            now: Claim | None = await claims.get(claim_id)
        except WorkbenchError:
            now = None
        where = f": it is {now.status} at step {now.step!r}" if now is not None else ""
        error = f" (last error: {now.last_error})" if now is not None and now.last_error else ""
        return now, f"it did not complete within {timeout_s:g} s{where}{error}"
    except WorkbenchError as e:
        return None, f"{type(e).__name__}: {e}"


async def _evidence(
    session: Session,
    claims: dict[str, Claim | None],
    errors: dict[str, str | None],
    scores_expected: int | None = None,
) -> dict[str, ClaimEvidence]:
    """Read every witness for these claims (a few queries for all of them); `scores_expected`:
    how many judge scores each should have (the baseline's), to wait for the late ones."""
    restate = session.restate
    ids = list(claims)
    workflows = {
        r["target_service_key"]: r
        for r in await restate.invocations(service=names.WORKFLOW, keys=ids, handler=names.RUN)
    }
    judges: dict[str, list[dict[str, Any]]] = {}
    for r in await restate.invocations(service=names.JUDGE, keys=ids, handler=names.EVALUATE):
        judges.setdefault(r["target_service_key"], []).append(r)
    wanted = [w["id"] for w in workflows.values()] + [
        rows[0]["id"] for rows in judges.values() if rows
    ]
    journals = await restate.journals(wanted)
    found = {}
    for claim_id in ids:
        claim = claims[claim_id]
        if claim is not None and not claim.done:
            try:  # a case that did not complete: as Restate knows it now
                claim = await AsyncClaims(session).get(claim_id)
            except WorkbenchError:
                pass
        workflow = workflows.get(claim_id)
        evaluations = judges.get(claim_id, [])
        found[claim_id] = ClaimEvidence(
            claim_id=claim_id,
            status=claim.status if claim is not None else "not submitted",
            outcome=claim.outcome if claim is not None else None,
            last_error=claim.last_error if claim is not None else None,
            workflow=workflow,
            judges=evaluations,
            journal=journals.get(workflow["id"], []) if workflow else [],
            judge_journal=journals.get(evaluations[0]["id"], []) if evaluations else [],
            events=session.fault_store.events(claim_id),
            payments=session.ledger_store.payments([claim_id]),
            error=errors.get(claim_id),
        )
    await _count_scores(session, found, scores_expected)
    return found


async def _count_scores(
    session: Session, found: dict[str, ClaimEvidence], expected: int | None
) -> None:
    """How many judge scores each claim's trace has, from Langfuse; waits (at most
    SCORES_WAIT_S) for those still missing when `expected` says there should be one (a real
    Langfuse ingests scores asynchronously). Without Langfuse: whether the judge kept a verdict
    (its `verdict` handler), as 1 or 0."""
    judged = {k: e for k, e in found.items() if e.judges and all(_judged(j) for j in e.judges)}
    if not session.has_langfuse:
        for evidence in judged.values():
            try:
                result = await session.restate.call(names.JUDGE, evidence.claim_id, "verdict")
            except (RestateError, httpx.TransportError):
                continue
            evidence.scores = int(bool((result or {}).get("verdict")))
        return
    traces = {e.outcome.trace_id: e for e in judged.values() if e.outcome and e.outcome.trace_id}
    deadline = time.monotonic() + SCORES_WAIT_S
    while traces:
        try:
            scores = session.scores.get(trace_ids=list(traces), join=False)
        except WorkbenchError:
            return  # Langfuse unreachable: the scores are not judged (the claims still are)
        counts = scores["trace_id"].value_counts() if len(scores) else pd.Series(dtype=int)
        for trace_id, evidence in traces.items():
            evidence.scores = int(counts.get(trace_id, 0))
        missing = [e for e in traces.values() if expected and (e.scores or 0) < expected]
        if not missing or time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.5)


async def asweep(
    session: Session,
    document: str | ClaimRequest | Sample,
    kinds: Iterable[str] | str = DEFAULT_KINDS,
    *,
    steps: Iterable[str] | None = None,
    concurrency: int = 4,
    review: str = "approve",
    prompt_label: str | None = None,
    timeout_s: float = 120.0,
    progress: bool = True,
    on_case: Callable[[int, int, str], None] | None = None,
) -> SweepReport:
    """The sweep as a coroutine (see `Faults.sweep`); `on_case(done, total, what)` is called as
    the baseline and each case finish (the failure panel shows it)."""
    from .faults import Fault

    kinds = check_kinds(kinds)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number >= 1; got {concurrency!r}.")
    if review not in ("approve", "reject"):
        raise ValueError(f"review must be 'approve' or 'reject'; got {review!r}.")
    approve = review == "approve"
    stack = session.stack
    if stack is None or "services" not in stack.names:
        raise SweepError(
            "The sweep plans its faults in the fault store of the services this stack runs and "
            "kills their process: this session is attached to endpoints only. Run it against a "
            "stack started with wb.start()."
        )
    command = stack.process("services").command
    if concurrency > 1 and "--workers" in command:
        workers = command[command.index("--workers") + 1]
        raise SweepError(
            f"The services run as {workers} worker processes (services_workers / "
            "WORKBENCH_SERVICES_WORKERS): claims crashed together in a wave would be spread over "
            "workers that each count their own. Sweep with concurrency=1, or on a stack with one "
            "services worker."
        )
    if "kill_restate" in kinds and "restate" not in stack.names:
        raise SweepError(
            "kill_restate kills the Restate server the workbench runs; this stack uses one at "
            f"{session.endpoints.admin_url}. Sweep without it: kinds=('crash', "
            "'crash_after_effect')."
        )
    request = AsyncClaims(session).request(document, prompt_label)
    run = f"sweep-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()

    baseline_id = f"{run}-baseline"
    claim, error = await _run_claim(
        session, request, baseline_id, [], approve, timeout_s, REVIEW_POLL_S
    )
    if claim is None or error or not claim.done or claim.status == "paused":
        raise SweepError(
            f"The baseline claim {baseline_id!r} (no fault) did not complete, so there is "
            f"nothing to compare the cases with: {error or (claim.status if claim else 'none')}"
            f". Look at it with wb.claim({baseline_id!r}) and fix that first."
        )
    baseline_s = time.monotonic() - started
    if on_case:
        on_case(0, 0, "baseline done")
    outcome = claim.outcome
    scored = 1 if outcome is not None and outcome.claim is not None and outcome.trace_id else None
    evidence = await _evidence(session, {baseline_id: claim}, {}, scored)
    base = evidence[baseline_id]
    start_at = epoch_s((base.workflow or {}).get("created_at"))
    boundaries = boundaries_of(base.journal, base.judge_journal, start_at)
    names_found = [b.name for b in boundaries]
    chosen = names_found if steps is None else list(dict.fromkeys(steps))
    unknown = [s for s in chosen if s not in names_found]
    if unknown:
        raise SweepError(
            f"Steps {unknown} are not boundaries of this claim; its journal has: "
            f"{', '.join(names_found)}."
        )
    cases = [
        _Case(b, kind, f"{run}-{_slug(b.name)}-{_slug(kind)}")
        for b in boundaries
        if b.name in chosen
        for kind in kinds
        if applies(b, kind)
    ]
    waves = plan_waves(cases, concurrency, kinds)
    poll_s = REVIEW_POLL_S if names.AWAITING_REVIEW in names_found else POLL_S
    wave_times: list[float] = []
    with Progress(len(cases), "cases", enabled=progress) as bar:
        for number, wave in enumerate(waves, 1):
            t = time.monotonic()
            session.faults.plan_together(
                {c.claim_id: Fault(c.boundary.name, c.kind) for c in wave}, within_s=hold_for(wave)
            )

            async def one(case: _Case, number: int = number) -> None:
                case.wave = number
                case.claim, case.error = await _run_claim(
                    session, request, case.claim_id, [], approve, timeout_s, poll_s
                )
                status = case.claim.status if case.claim is not None else "not run"
                bar.update(status)
                if on_case:
                    on_case(bar.done, len(cases), f"{case.boundary.name} x {case.kind}: {status}")

            await asyncio.gather(*(one(c) for c in wave))
            wave_times.append(time.monotonic() - t)
    cases_s = time.monotonic() - started - baseline_s
    t = time.monotonic()
    evidence = await _evidence(
        session,
        {c.claim_id: c.claim for c in cases},
        {c.claim_id: c.error for c in cases},
        base.scores,
    )
    rows = []
    for case in cases:
        result = check_case(base, evidence[case.claim_id], case.boundary, case.kind)
        rows.append(
            {
                "boundary": case.boundary.name,
                "kind": case.kind,
                "passed": result.passed,
                "broken": ", ".join(result.broken),
                "why": "; ".join(f"{k}: {v}" for k, v in result.broken.items()),
                "extra_model_calls": result.extra_model_calls,
                "extra_tokens": result.extra_tokens,
                "recovery_s": result.recovery_s,
                "claim_id": case.claim_id,
                "status": evidence[case.claim_id].status,
                "attempts": result.attempts,
                "processes": result.processes,
                "wave": case.wave,
            }
        )
    frame = _frame(rows, boundaries, kinds)
    total_s = time.monotonic() - started
    timing = {
        "total_s": round(total_s, 2),
        "baseline_s": round(baseline_s, 2),
        "cases_s": round(cases_s, 2),
        "check_s": round(time.monotonic() - t, 2),
        "cases": len(cases),
        "cases_per_s": round(len(cases) / total_s, 3) if total_s else 0.0,
        "waves": len(waves),
        "concurrency": concurrency,
        "wave_s": [round(w, 2) for w in wave_times],
        "hold_max_s": [hold_for(w) for w in waves],
        **wave_phases(waves, evidence),
    }
    return SweepReport(
        document=request.document,
        version=outcome.service_version if outcome is not None else None,
        kinds=kinds,
        baseline=claim,
        boundaries=boundaries,
        swept=[b.name for b in boundaries if b.name in chosen and b.targetable],
        frame=frame,
        timing=timing,
    )


def wave_phases(waves: list[list[Any]], evidence: dict[str, ClaimEvidence]) -> dict[str, Any]:
    """Where each wave's time went, from the witnesses' clocks: `held_s` from the first fault to
    the kill (claims held for the rest of the wave), `down_s` from the kill until a new try of a
    case began (the restart, and Restate's retry finding it), `finish_s` from there until the
    last claim and evaluation of the wave completed (replay and the rest of the work). Medians
    over the waves, and the list per wave."""
    held, down, finish = [], [], []
    for wave in waves:
        found = [evidence[c.claim_id] for c in wave if c.claim_id in evidence]
        events = [e for ev in found for e in ev.events]
        fired = [e["at"] for e in events if e["event"] == FAULT]
        killed = [e["at"] for e in events if e["event"] == CRASHED]
        ends = [
            epoch_s(row.get("completed_at"))
            for ev in found
            for row in [ev.workflow or {}, *ev.judges]
        ]
        ends = [t for t in ends if t is not None]
        if not (fired and killed and ends):
            continue
        kill = min(killed)
        back = [e["at"] for e in events if e["event"] in (ATTEMPT, EVALUATION) and e["at"] > kill]
        if not back:
            continue
        held.append(kill - min(fired))
        down.append(min(back) - kill)
        finish.append(max(ends) - min(back))

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 2) if values else None

    return {
        "held_s": median(held),
        "down_s": median(down),
        "finish_s": median(finish),
        "per_wave": [
            {"held_s": round(h, 2), "down_s": round(d, 2), "finish_s": round(f, 2)}
            for h, d, f in zip(held, down, finish, strict=True)
        ],
    }


def _frame(rows: list[dict[str, Any]], boundaries: list[Boundary], kinds: tuple[str, ...]):
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    order = {b.name: i for i, b in enumerate(boundaries)}
    frame["_b"] = frame["boundary"].map(order)
    frame["_k"] = frame["kind"].map({k: i for i, k in enumerate(kinds)})
    frame = frame.sort_values(["_b", "_k"], kind="stable").drop(columns=["_b", "_k"])
    frame["passed"] = frame["passed"].astype(bool)
    frame["recovery_s"] = pd.to_numeric(frame["recovery_s"]).astype("Float64")
    for column in ("extra_model_calls", "extra_tokens", "attempts", "processes", "wave"):
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    return frame.reset_index(drop=True)


def sweep(
    session: Session,
    document: str | ClaimRequest | Sample,
    kinds: Iterable[str] | str = DEFAULT_KINDS,
    *,
    version: str | None = None,
    **options: Any,
) -> SweepReport:
    """Run a sweep from synchronous code (see `Faults.sweep`). With `version`, that version of
    the services takes the new claims during the sweep (deployed if it does not run yet) and the
    version that took them before takes them again afterwards."""
    if version is None:
        return run_sync(asweep(session, document, kinds, **options))
    deployments = session.deployments
    before = deployments.list()
    latest = before.loc[before["latest"].astype(bool), "version"]
    previous = str(latest.iloc[0]) if len(latest) and pd.notna(latest.iloc[0]) else None
    deployments.deploy(version)
    try:
        return run_sync(asweep(session, document, kinds, **options))
    finally:
        if previous and previous != version:
            deployments.deploy(previous)  # new claims go to the version of before again
