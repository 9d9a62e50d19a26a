"""Failure injection: plan failures per claim and step, watch the claim resume, read the evidence.

    import workbench as wb
    from workbench import Fault

    wb.claims.submit(doc, faults=[Fault("reimburse", "crash_after_effect")])  # this claim only
    wb.faults.arm(Fault("lookup policy", "crash"), claims=2)  # the next 2 claims at the step
    wb.faults.planned()                 # what is planned, what fired
    wb.faults.history(claim)            # what ran, what fired, in which pid
    wb.faults.report(claim)             # per step: executed, journaled, replayed
    with wb.faults.model_down(): ...    # the embedded model stopped inside the block
    wb.faults.panel()                   # the same, clicked
    wb.faults.sweep(doc)                # crash the claim at every journal boundary, check it all

Plans go to `faults.sqlite3` in the stack's home, where the services read them (a service killed
by a fault finds the rest of its plan after its restart); each fault fires exactly `times` times.
The service side of the hooks is `services.faults`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from services.faults import DEFAULT_SECONDS, KINDS, MODEL_KINDS, STEPS, check, is_model_step

from ._aio import run_sync
from .claims import Claim, ClaimsLike, claim_ids
from .clients.faults import Plan
from .frames import as_table
from .session import Namespace, module_namespace

if TYPE_CHECKING:
    from .evidence import Attempts
    from .outages import ModelOutage
    from .samples import Sample
    from .sweep import SweepReport
    from .widgets.panel import FaultPanel

SECONDS_KINDS = frozenset(DEFAULT_SECONDS)
"""Kinds that take `seconds`: delay (how long), rate_limit (Retry-After), timeout (when)."""
KILLING_KINDS = frozenset({"crash", "crash_after_effect", "kill_restate"})
"""Kinds that kill a process (the services' own, or Restate)."""
MAX_TOGETHER_S = 30.0


@dataclass(frozen=True)
class Fault:
    """One planned failure. `step` is one of `faults.STEPS` or "model call N" (1 = the parser's
    model call, 2 and 3 = the analyst's); `kind` is one of `faults.KINDS`; it fires `times`
    times; `seconds` is the delay, the Retry-After of a rate limit, or when a timeout hits."""

    step: str
    kind: str
    times: int = 1
    seconds: float | None = None

    def __post_init__(self) -> None:
        check(self.step, self.kind)
        if not isinstance(self.times, int) or isinstance(self.times, bool) or self.times < 1:
            raise ValueError(f"Fault times {self.times!r} is not valid: use a whole number >= 1.")
        if self.kind == "terminal" and self.times != 1:
            raise ValueError(
                f"A terminal fault ends the claim the first time it fires; times={self.times} "
                "would never fire again. Use times=1."
            )
        if self.seconds is not None:
            if self.kind not in SECONDS_KINDS:
                raise ValueError(
                    f"Fault kind {self.kind!r} takes no seconds (only "
                    f"{', '.join(sorted(SECONDS_KINDS))} do); got seconds={self.seconds!r}."
                )
            if not 0 <= float(self.seconds) <= 300:
                raise ValueError(f"Fault seconds {self.seconds!r} is not within 0-300.")

    @property
    def params(self) -> dict[str, Any]:
        return {} if self.seconds is None else {"seconds": float(self.seconds)}

    def __str__(self) -> str:
        extra = f", {self.seconds:g} s" if self.seconds is not None else ""
        times = f" x{self.times}" if self.times > 1 else ""
        return f"{self.kind}{times} at {self.step!r}{extra}"


PLAN_COLUMNS = ["id", "claim", "step", "kind", "times", "fired", "left", "seconds"]
HISTORY_COLUMNS = ["t_s", "step", "event", "call", "kind", "detail", "pid"]


def as_faults(faults: Any) -> list[Fault]:
    """A Fault or an iterable of them, checked."""
    if isinstance(faults, Fault):
        return [faults]
    items = list(faults)
    for item in items:
        if not isinstance(item, Fault):
            raise TypeError(
                f"Faults are workbench.Fault(step=..., kind=...); got {type(item).__name__} "
                f"{item!r}."
            )
    return items


class Faults(Namespace):
    """Failure injection (`wb.faults`): plan faults for a claim or arm them for the next claims,
    see what is planned and what fired, and read the evidence that a claim resumed (attempts,
    the per-step report, payment attempts). `Fault`, `kinds()` and `steps()` describe what can
    be planned; `panel()` is the same as a widget."""

    Fault = Fault

    # -- what can be planned -------------------------------------------------------------------
    @staticmethod
    def kinds() -> pd.DataFrame:
        """Every fault kind, what it does, and where it can be planned.

        Example:
            >>> wb.faults.kinds()
        """
        return as_table(
            pd.DataFrame(
                [
                    {
                        "kind": kind,
                        "what happens": what,
                        "steps": "parse, analyze, judge, model call N"
                        if kind in MODEL_KINDS
                        else "any",
                        "seconds": DEFAULT_SECONDS.get(kind),
                    }
                    for kind, what in KINDS.items()
                ]
            )
        )

    @staticmethod
    def steps() -> list[str]:
        """The steps a fault can name (and "model call N").

        Example:
            >>> wb.faults.steps()[:4]
            ['fetch prompts', 'parse', 'verify documents', 'convert to EUR']
        """
        return [*STEPS, "model call 1", "model call 2", "model call 3"]

    # -- planning ------------------------------------------------------------------------------
    def plan(self, claim: Claim | str, faults: Fault | list[Fault]) -> list[Plan]:
        """Attach faults to one claim before it is submitted (what
        `wb.claims.submit(..., faults=[...])` does).

        Example:
            >>> wb.faults.plan("claim-x", [Fault("parse", "error", times=2)])
        """
        claim_id = claim_ids(claim)[0]
        return [self._add(f, claim_id=claim_id) for f in as_faults(faults)]

    def plan_together(self, faults: dict[str, Fault], *, within_s: float = 2.0) -> list[Plan]:
        """Plan one fault for each of several claims (claim id -> Fault) so that the ones that
        kill a process (crash, crash_after_effect, kill_restate) kill it together: each holds
        its claim where it fired until all of them fired, or `within_s` after it fired, and
        then the process dies once (or Restate is killed once) for all of them, with every
        claim inside its own step. Claims run side by side then share one restart instead of
        waiting for one each: what `wb.faults.sweep` does per wave of cases.

        Example:
            >>> wb.faults.plan_together({"c-1": Fault("parse", "crash"),
            ...                          "c-2": Fault("reimburse", "crash")}, within_s=2)
        """
        if not 0 < float(within_s) <= MAX_TOGETHER_S:
            raise ValueError(f"within_s={within_s!r} is not within 0-{MAX_TOGETHER_S:g} seconds.")
        planned = {claim_ids(claim)[0]: as_faults(fault) for claim, fault in faults.items()}
        killing = sum(f.kind in KILLING_KINDS for fs in planned.values() for f in fs)
        wave = {"linger_s": float(within_s), "wave": uuid.uuid4().hex, "wave_size": killing}
        return [
            self._add(f, claim_id=claim_id, extra=wave if f.kind in KILLING_KINDS else None)
            for claim_id, fs in planned.items()
            for f in fs
        ]

    def arm(self, *faults: Fault, claims: int = 1) -> list[Plan]:
        """Arm faults for the next `claims` claims that reach their step (each such claim takes
        one copy, which fires `times` times in it).

        Example:
            >>> wb.faults.arm(Fault("reimburse", "crash_after_effect"), claims=2)
        """
        if not isinstance(claims, int) or isinstance(claims, bool) or claims < 1:
            raise ValueError(f"claims={claims!r} is not valid: arm a fault for 1 or more claims.")
        return [self._add(f, claims=claims) for f in as_faults(faults)]

    def _add(self, fault: Fault, extra: dict[str, Any] | None = None, **target: Any) -> Plan:
        params = {**fault.params, **(extra or {})}
        if fault.kind == "kill_restate":
            params.update(self._restate_process())
        return self.session.fault_store.add(
            **target, step=fault.step, kind=fault.kind, times=fault.times, params=params
        )

    def _restate_process(self) -> dict[str, Any]:
        """The pid (and start time, against pid reuse) of the stack's restate-server, for the
        service that will kill it. Refused when the workbench does not run Restate."""
        import psutil

        stack = self.session.stack
        if stack is None or "restate" not in stack.names:
            raise ValueError(
                "kill_restate needs the Restate server that the workbench runs; this session "
                f"uses one at {self.session.endpoints.admin_url}, which it does not kill."
            )
        pid = stack.pid("restate")
        if pid is None:
            return {}
        try:
            return {"pid": pid, "create_time": psutil.Process(pid).create_time()}
        except psutil.Error:
            return {"pid": pid}

    def disarm(self) -> int:
        """Forget the armed faults that no claim took yet; returns how many were armed.

        Example:
            >>> wb.faults.disarm()
            1
        """
        return self.session.fault_store.disarm()

    def clear(self, claim: Claim | str | None = None) -> int:
        """Forget every fault not fired yet (of one claim, or all, armed ones included); returns
        how many were planned.

        Example:
            >>> wb.faults.clear(c)
        """
        return self.session.fault_store.clear(None if claim is None else claim_ids(claim)[0])

    # -- reading back --------------------------------------------------------------------------
    def planned(self, claim: Claim | str | None = None, *, spent: bool = False) -> pd.DataFrame:
        """The planned faults: of one claim, or all. An armed fault shows "next N claims" while
        claims may still take it (and how many took it under `fired`); with `spent=True`, also
        the armed faults every claim took.

        Example:
            >>> wb.faults.planned()
        """
        plans = self.session.fault_store.plans(None if claim is None else claim_ids(claim)[0])
        taken: dict[int, int] = {}
        for p in plans:
            if p.armed_from is not None:
                taken[p.armed_from] = taken.get(p.armed_from, 0) + 1
        rows = []
        for p in plans:
            armed = p.claim_id is None
            if armed and not spent and not p.claims_left:
                continue
            rows.append(
                {
                    "id": p.id,
                    "claim": f"next {p.claims_left} claims" if armed else p.claim_id,
                    "step": p.step,
                    "kind": p.kind,
                    "times": p.times,
                    "fired": taken.get(p.id, 0) if armed else p.fired,
                    "left": p.claims_left if armed else p.remaining,
                    "seconds": p.params.get("seconds"),
                }
            )
        frame = pd.DataFrame(rows, columns=PLAN_COLUMNS)
        for column in ("id", "times", "fired", "left"):
            frame[column] = frame[column].astype("Int64")
        return as_table(frame)

    def history(self, claim: Claim | str) -> pd.DataFrame:
        """What the services did for a claim, in order: each attempt of its workflow, each step
        body executed and completed, each model request sent and answered, each fault fired,
        with the pid of the process that did it (a new pid after a crash) and the time since the
        first.

        Example:
            >>> wb.faults.history(c).query("event == 'fault'")
        """
        events = self.session.fault_store.events(claim_ids(claim)[0])
        if not events:
            return as_table(pd.DataFrame(columns=HISTORY_COLUMNS))
        start = events[0]["at"]
        frame = pd.DataFrame(events)
        frame["t_s"] = (frame["at"] - start).round(3)
        frame["call"] = frame["call"].astype("Int64")
        return as_table(frame[HISTORY_COLUMNS])

    def attempts(self, claim: Claim | str) -> Attempts:
        """How often Restate tried the claim, its last failure, and each attempt the services
        saw start (with its pid: a new pid means a new process, after a crash).

        Example:
            >>> wb.faults.attempts(c)
        """
        from .evidence import aattempts

        return run_sync(aattempts(self.session, claim_ids(claim)[0]))

    def report(self, claim: Claim | str, *, judge_wait_s: float = 10.0) -> pd.DataFrame:
        """Per step of a claim: how often its body really `executed` (model steps: requests
        sent), how many results Restate `journaled`, how often a later attempt `replayed` a
        journaled result instead of running the step again, and the `attempts`. Waits (at most
        `judge_wait_s`) for the judge, which scores the claim after it ended.

        Example:
            >>> wb.faults.report(c).set_index("step").loc["parse", "executed"]
            1
        """
        from .evidence import aresumption_report

        return run_sync(
            aresumption_report(self.session, claim_ids(claim)[0], judge_wait_s=judge_wait_s)
        )

    def payments(self, claims: ClaimsLike) -> pd.DataFrame:
        """Every payment attempt of the claims, accepted or refused as a duplicate (the ledger
        counts them in the same transaction as the payment, so a crash cannot hide one).

        Example:
            >>> wb.faults.payments(c)["accepted"].sum()
            1
        """
        frames = []
        for claim_id in claim_ids(claims):
            frame = self.session.ledger_store.attempts(claim_id)
            frame.insert(0, "claim_id", claim_id)
            frames.append(frame)
        return as_table(pd.concat(frames, ignore_index=True))

    def sweep(
        self,
        document: str | Sample | Any,
        kinds: tuple[str, ...] | list[str] | str = ("crash", "crash_after_effect", "kill_restate"),
        *,
        steps: list[str] | None = None,
        concurrency: int = 4,
        version: str | None = None,
        review: str = "approve",
        prompt_label: str | None = None,
        timeout_s: float = 120.0,
        progress: bool = True,
    ) -> SweepReport:
        """The crash-point sweep: run the claim once without faults (the baseline), read its
        boundaries from its journals (each step, model call, tool, the review wait, the payment,
        the send to the judge, the judge's steps), then run one claim per (boundary, kind) under
        its own id with that fault planned, `concurrency` at a time, and check each against the
        baseline: the fault fired; the claim and its evaluation completed; same status, decision
        and EUR amounts; exactly one payment for an approved claim; no step or model call whose
        result was journaled ran again; one evaluation, its score on the trace. Also per case:
        the extra model calls and tokens the fault cost and the seconds from the crash to
        completion.

        `document`: a claim text, a `Sample` or a `ClaimRequest`. `kinds`: any fault kind but
        `terminal` (model faults apply at model calls only). `steps`: only these boundaries.
        `version`: run the sweep on that service version (deployed if needed, e.g. "unsafe",
        whose payment has no idempotency key); the version that took new claims before takes
        them again afterwards. `review`: how the claims that wait for a human are decided
        ("approve" or "reject"). `timeout_s`: per claim. The faults kill the stack's shared
        processes: claims of yours in flight meanwhile are interrupted (and resume) too.
        Returns a `SweepReport` (`verdict`, `frame`, `heatmap()`, `failures`).

        Example:
            >>> report = wb.faults.sweep(wb.samples.get("claim-001"))
            >>> report.verdict
            'PASSED on v1: all 36 cases (12 boundaries x 3 kinds) kept every invariant; ...'
        """
        from .sweep import sweep

        return sweep(
            self.session,
            document,
            kinds,
            steps=steps,
            concurrency=concurrency,
            version=version,
            review=review,
            prompt_label=prompt_label,
            timeout_s=timeout_s,
            progress=progress,
        )

    def model_down(self, *, timeout_s: float = 60.0) -> ModelOutage:
        """A model outage as a context manager: the embedded model stops on entering the `with`
        block and is started again (and answering) on leaving it. Claims that need it meanwhile
        are retried by Restate, then go on where they stopped. `outage.wait_retrying(claim)`
        waits until Restate retried a claim; `outage.down_s` says how long the model was down.

        Example:
            >>> with wb.faults.model_down() as outage:
            ...     c = wb.submit_claim(doc, wait=False)
            ...     outage.wait_retrying(c, retries=3).status
            'retrying'
        """
        from .outages import ModelOutage

        return ModelOutage(self.session, timeout_s=timeout_s)

    def panel(self, **options: Any) -> FaultPanel:
        """The failure-injection panel: pick a claim and a fault, submit, watch the journal live,
        kill or restart processes, read the outcome and the evidence. Options: refresh_s,
        timeout_s.

        Example:
            >>> wb.faults.panel()
        """
        from .widgets.panel import FaultPanel

        return FaultPanel(self.session, **options)


__all__ = ["KINDS", "STEPS", "Fault", "Faults", "as_faults", "is_model_step"]


__getattr__, __dir__ = module_namespace(__name__, Faults)
