"""Plan failures: which claim, which step, what goes wrong, how many times.

    import workbench as wb
    from workbench import Fault, faults

    wb.submit_claim(doc, faults=[Fault("reimburse", "crash_after_effect")])  # this claim only
    faults.arm(Fault("lookup policy", "crash"), claims=2)   # the next 2 claims reaching the step
    faults.planned()                                        # what is planned, what fired
    faults.history(claim_id)                                # what ran, what fired, which pid

Plans go to `faults.sqlite3` in the stack's home, where the services read them (a service killed
by a fault finds the rest of its plan after its restart); each fault fires exactly `times` times.
The service side of the hooks is `services.faults`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from services._fault_store import FaultStore, Plan
from services.faults import DEFAULT_SECONDS, KINDS, MODEL_KINDS, STEPS, check, is_model_step

SECONDS_KINDS = frozenset(DEFAULT_SECONDS)
"""Kinds that take `seconds`: delay (how long), rate_limit (Retry-After), timeout (when)."""


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


# -- where the plans are --------------------------------------------------------------------------
def home() -> Path:
    """The stack's home (the one `workbench.start()` returned), else WORKBENCH_HOME, else the
    project's `.workbench`."""
    from . import _stack

    if _stack is not None:
        return Path(_stack.home)
    from .stack import resolve_home

    return resolve_home(os.environ.get("WORKBENCH_HOME"))


def store_path(home_dir: Path | str | None = None) -> Path:
    return Path(home_dir or home()) / "faults.sqlite3"


@cache
def _store(path: Path) -> FaultStore:
    return FaultStore(path)


def store(home_dir: Path | str | None = None) -> FaultStore:
    return _store(store_path(home_dir))


def _params(fault: Fault, home_dir: Path | str | None) -> dict[str, Any]:
    params = fault.params
    if fault.kind == "kill_restate":
        params.update(_restate_process(home_dir))
    return params


def _restate_process(home_dir: Path | str | None) -> dict[str, Any]:
    """The pid (and start time, against pid reuse) of the stack's restate-server, for the
    service that will kill it. Refused when Restate is not run by this stack."""
    import psutil

    from . import _stack
    from .stack import attach

    stack = _stack if _stack is not None and home_dir is None else attach(home_dir or home())
    if stack is None:
        return {}
    if "restate" not in stack.names:
        raise ValueError(
            "kill_restate needs the Restate server that the workbench runs; this stack uses an "
            f"existing one at {stack.admin_url}, which it does not kill."
        )
    pid = stack.pid("restate")
    if pid is None:
        return {}
    try:
        return {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    except psutil.Error:
        return {"pid": pid}


# -- planning -------------------------------------------------------------------------------------
def plan(
    claim_id: str, faults: list[Fault] | tuple[Fault, ...], *, home_dir: Any = None
) -> list[Plan]:
    """Attach faults to one claim (before it is submitted: `submit_claim(..., faults=[...])`)."""
    return _add(_faults(faults), home_dir, claim_id=claim_id)


def arm(*faults: Fault, claims: int = 1, home_dir: Any = None) -> list[Plan]:
    """Arm faults for the next `claims` claims that reach their step (each such claim takes one
    copy, which fires `times` times in it)."""
    if not isinstance(claims, int) or claims < 1:
        raise ValueError(f"claims={claims!r} is not valid: arm a fault for 1 or more claims.")
    return _add(_faults(faults), home_dir, claims=claims)


def _add(faults: list[Fault], home_dir: Any, **target: Any) -> list[Plan]:
    """Store each fault for its target: one claim (`claim_id=`) or the next N (`claims=`)."""
    db = store(home_dir)
    return [
        db.add(**target, step=f.step, kind=f.kind, times=f.times, params=_params(f, home_dir))
        for f in faults
    ]


def disarm(*, home_dir: Any = None) -> int:
    """Forget the armed faults that no claim took yet; returns how many were armed."""
    return store(home_dir).disarm()


def clear(claim_id: str | None = None, *, home_dir: Any = None) -> int:
    """Forget every fault not fired yet (of one claim, or all, armed ones included)."""
    return store(home_dir).clear(claim_id)


def _faults(faults: Any) -> list[Fault]:
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


# -- reading back ---------------------------------------------------------------------------------
PLAN_COLUMNS = ["id", "claim", "step", "kind", "times", "fired", "left", "seconds"]


def planned(claim_id: str | None = None, *, home_dir: Any = None) -> pd.DataFrame:
    """The planned faults: for one claim, or all (armed ones show "next N claims")."""
    rows = []
    for p in store(home_dir).plans(claim_id):
        rows.append(
            {
                "id": p.id,
                "claim": p.claim_id or f"next {p.claims_left} claims",
                "step": p.step,
                "kind": p.kind,
                "times": p.times,
                "fired": p.fired if p.claim_id else None,
                "left": p.remaining if p.claim_id else None,
                "seconds": p.params.get("seconds"),
            }
        )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


HISTORY_COLUMNS = ["t_s", "step", "event", "call", "kind", "detail", "pid"]


def history(claim_id: str, *, home_dir: Any = None) -> pd.DataFrame:
    """What the services did for a claim, in order: each attempt of its workflow, each step body
    executed and completed, each model request sent and answered, each fault fired, with the
    pid of the process that did it (a new pid after a crash) and the time since the first."""
    events = store(home_dir).events(claim_id)
    if not events:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    start = events[0]["at"]
    frame = pd.DataFrame(events)
    frame["t_s"] = (frame["at"] - start).round(3)
    frame["call"] = frame["call"].astype("Int64")
    return frame[HISTORY_COLUMNS]


def kinds() -> pd.DataFrame:
    """Every fault kind, what it does, and where it can be planned."""
    return pd.DataFrame(
        [
            {
                "kind": kind,
                "what happens": what,
                "steps": "parse, analyze, judge, model call N" if kind in MODEL_KINDS else "any",
                "seconds": DEFAULT_SECONDS.get(kind),
            }
            for kind, what in KINDS.items()
        ]
    )


def steps() -> list[str]:
    """The steps a fault can name (and "model call N")."""
    return [*STEPS, "model call 1", "model call 2", "model call 3"]


__all__ = [
    "KINDS",
    "STEPS",
    "Fault",
    "arm",
    "clear",
    "disarm",
    "history",
    "is_model_step",
    "kinds",
    "plan",
    "planned",
    "steps",
]
