"""Evidence that a claim resumed where it stopped, not a claim that it did.

Two witnesses that do not depend on each other:
- Restate: the journal (what was recorded) and the invocation (its status, retries, last failure),
  read through the admin SQL API;
- the services: every step body that really ran, every model request really sent and answered,
  every fault fired, every attempt of the workflow, with the pid of the process (`faults.sqlite3`,
  written before anything can crash), and every payment attempt (the ledger).

    wb.faults.attempts(claim)       # retries, last failure, the attempts and their pids
    wb.faults.report(claim)         # per step: executed, journaled, replayed, attempts
    wb.faults.payments(claim)       # each payment attempt, accepted or refused as a duplicate
"""

from __future__ import annotations

import asyncio
import html
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from services import names
from services.faults import PREVENTING, STEPS, WORKFLOW_MODEL_STEPS

from .frames import as_table, journaled_results
from .session import Session

__all__ = ["Attempts", "aattempts", "aresumption_report", "report_frame"]

JUDGE_STEPS = frozenset(
    {names.JUDGE_CALL, names.GATHER_EVIDENCE, names.FETCH_JUDGE_PROMPT, names.WRITE_SCORE}
)
REPORT_COLUMNS = ["step", "executed", "journaled", "replayed", "attempts", "note"]
ATTEMPT_COLUMNS = ["attempt", "t_s", "pid", "new process"]


# -- attempts ------------------------------------------------------------------------------------
@dataclass
class Attempts:
    """How often a claim's workflow was tried. `retry_count` and `last_failure` are Restate's
    (sys_invocation; Restate reports them while the claim runs and drops them once it completed),
    `history` is each attempt the services saw start, with its pid (a new pid: after a crash)."""

    claim_id: str
    status: str | None
    retry_count: int | None
    last_failure: str | None
    history: pd.DataFrame = field(repr=False)
    invocation_id: str | None = None

    @property
    def count(self) -> int:
        """Attempts that reached the workflow's code (the first run included)."""
        return len(self.history)

    @property
    def retries(self) -> int:
        """Restate's retry count while it runs; afterwards, attempts beyond the first."""
        if self.retry_count is not None:
            return self.retry_count
        return max(self.count - 1, 0)

    @property
    def processes(self) -> int:
        """How many service processes worked on the claim (more than one: it survived a crash)."""
        return int(self.history["pid"].nunique()) if len(self.history) else 0

    def __repr__(self) -> str:
        return (
            f"Attempts({self.claim_id}: {self.count} attempts, {self.retries} retries, "
            f"in {self.processes} service process(es), status {self.status}, "
            f"last failure {self.last_failure or 'none'})"
        )

    def _repr_html_(self) -> str:
        head = html.escape(
            f"{self.claim_id}: {self.count} attempts ({self.retries} retries) in "
            f"{self.processes} service processes; Restate status {self.status}"
        )
        failure = html.escape(self.last_failure or "none")
        table = self.history.to_html(index=False, na_rep="")
        return f"<p><b>{head}</b><br>last failure: {failure}</p>{table}"


def _attempt_history(events: list[dict[str, Any]]) -> pd.DataFrame:
    rows, start, pids = [], None, set()
    for event in events:
        if event["event"] != "attempt":
            continue
        start = event["at"] if start is None else start
        rows.append(
            {
                "attempt": len(rows) + 1,
                "t_s": round(event["at"] - start, 3),
                "pid": event["pid"],
                "new process": bool(pids) and event["pid"] not in pids,
            }
        )
        pids.add(event["pid"])
    return pd.DataFrame(rows, columns=ATTEMPT_COLUMNS)


def _last_failure(events: list[dict[str, Any]]) -> str | None:
    """The last thing that went wrong, as the services saw it."""
    for event in reversed(events):
        if event["step"] in JUDGE_STEPS:
            continue
        if event["event"] == "fault":
            where = f"{event['step']!r} (fault {event['detail']}, pid {event['pid']})"
            return f"{event['kind']} at {where}"
        if event["event"] == "failed":
            return f"at {event['step']!r}: {event['detail']}"
    return None


async def aattempts(session: Session, claim_id: str) -> Attempts:
    """How often the claim was tried, its last failure, and each attempt with its pid."""
    invocation = await session.restate.invocation(names.WORKFLOW, claim_id)
    events = session.fault_store.events(claim_id)
    failure = (invocation or {}).get("last_failure") or _last_failure(events)
    retry_count = (invocation or {}).get("retry_count")
    return Attempts(
        claim_id=claim_id,
        status=(invocation or {}).get("status"),
        retry_count=int(retry_count) if retry_count is not None else None,
        last_failure=failure,
        history=_attempt_history(events),
        invocation_id=(invocation or {}).get("id"),
    )


# -- the report ----------------------------------------------------------------------------------
async def aresumption_report(
    session: Session, claim_id: str, *, judge_wait_s: float = 10.0
) -> pd.DataFrame:
    """Per step of a claim: how often its body really `executed` (for a model step: requests
    sent), how many results Restate `journaled`, how often a later attempt `replayed` the
    journaled result instead of running the step again (the judge's attempts are not counted),
    and the `attempts` (executions plus tries a fault ended before the work). Waits (at most
    `judge_wait_s`) for the judge, which scores the claim after it ended."""
    from .errors import ClaimNotFoundError

    restate = session.restate
    workflow = await restate.invocation(names.WORKFLOW, claim_id)
    if workflow is None:
        raise ClaimNotFoundError(f"No claim {claim_id!r} was submitted to this Restate server.")
    results = journaled_results(await restate.journal(workflow["id"]), None)
    judge = await restate.invocation(names.JUDGE, claim_id, names.EVALUATE)
    deadline = time.monotonic() + judge_wait_s
    # the judge runs after the claim ended: let it finish, so that its rows are final
    while judge and judge.get("status") != "completed" and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        judge = await restate.invocation(names.JUDGE, claim_id, names.EVALUATE)
    judge_results = journaled_results(await restate.journal(judge["id"]), "judge") if judge else []
    events = session.fault_store.events(claim_id)
    payments = session.ledger_store.attempts(claim_id)
    return report_frame(claim_id, results, judge_results, events, payments)


def report_frame(
    claim_id: str,
    results: list[dict],
    judge_results: list[dict],
    events: list[dict[str, Any]],
    payments: pd.DataFrame,
) -> pd.DataFrame:
    """The report from its witnesses (kept apart from the queries, to be tested alone)."""
    attempt_times = [e["at"] for e in events if e["event"] == "attempt"]
    order = list(STEPS)
    seen = {r["step"] for r in results + judge_results} | {
        e["step"] for e in events if e["event"] in ("executed", "fault")
    }
    seen.discard("workflow")
    steps = [s for s in order if s in seen] + sorted(seen - set(order))
    judge_steps = {r["step"] for r in judge_results} | JUDGE_STEPS
    rows = []
    for step in steps:
        mine = [e for e in events if e["step"] == step]
        executed: Any = sum(e["event"] == "executed" for e in mine)
        fired = [e for e in mine if e["event"] == "fault"]
        prevented = sum(e["kind"] in PREVENTING for e in fired)
        observed = bool(mine)
        recorded = [
            r for r in (judge_results if step in judge_steps else results) if r["step"] == step
        ]
        if step in judge_steps:
            replayed: Any = pd.NA
        else:
            replayed = sum(
                sum(1 for t in attempt_times if r["at"] is not None and t > r["at"])
                for r in recorded
            )
        rows.append(
            {
                "step": step,
                "executed": executed if observed else pd.NA,
                "journaled": len(recorded),
                "replayed": replayed,
                "attempts": executed + prevented if observed else pd.NA,
                "note": _note(step, mine, fired, payments)
                if observed
                else "not a workbench step: its body is not observed",
            }
        )
    frame = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    for column in ("executed", "replayed", "attempts"):
        frame[column] = frame[column].astype("Int64")
    frame.attrs["claim_id"] = claim_id
    return as_table(frame)


def _note(step: str, mine: list[dict], fired: list[dict], payments: pd.DataFrame) -> str:
    parts = []
    if fired:
        counts: dict[str, int] = {}
        for e in fired:
            counts[e["kind"]] = counts.get(e["kind"], 0) + 1
        parts.append("faults: " + ", ".join(f"{k} x{n}" for k, n in counts.items()))
    lost = sum(e["event"] == "completed" and e["detail"] == "lost" for e in mine)
    if lost:
        parts.append(f"{lost} result(s) lost in a crash before the journal")
    if step in (*WORKFLOW_MODEL_STEPS, "judge"):
        sent = sum(e["event"] == "executed" for e in mine)
        answered = sum(e["event"] == "completed" for e in mine)
        parts.append(f"model requests sent {sent}, answered {answered}")
    if step == "reimburse" and len(payments):
        accepted = int(payments["accepted"].sum())
        refused = len(payments) - accepted
        parts.append(
            f"payments attempted {len(payments)}, accepted {accepted}, "
            f"refused as duplicates {refused}"
        )
    pids = sorted({e["pid"] for e in mine if e["event"] == "executed"})
    if len(pids) > 1:
        parts.append(f"ran in pids {', '.join(map(str, pids))}")
    return "; ".join(parts)
