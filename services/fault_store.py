"""`faults.sqlite3`: the planned faults and the evidence of what really ran.

One SQLite file in the workbench home, written by the planner (`workbench.faults`) and by the
services. It outlives any process: a service killed by a `crash` fault finds the rest of its plan
after its restart, and the evidence written before the kill is still there. WAL mode, and every
write commits before the step goes on, so an evidence row is on disk before anything can crash.

Tables:
- `plans`: one row per planned fault. A claim's own fault has `claim_id` set and counts down
  `remaining`; a fault armed for the next claims has no `claim_id` and counts down `claims_left`,
  each claim that reaches the step taking a copy of it (`armed_from`).
- `events`: what happened, one row each: an `attempt` of a claim's workflow started, a step's body
  `executed` (or a model request was sent), it `completed` (or the model answered), a `fault` fired,
  the process `crashed` with the claim in it (written just before a crash fault kills it). Each
  row carries the pid of the process that wrote it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    claim_id TEXT,
    step TEXT NOT NULL,
    kind TEXT NOT NULL,
    times INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    claims_left INTEGER,
    armed_from INTEGER,
    params TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS plans_by_claim ON plans (claim_id, step);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    claim_id TEXT NOT NULL,
    step TEXT NOT NULL,
    event TEXT NOT NULL,
    call INTEGER,
    kind TEXT,
    detail TEXT,
    pid INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_claim ON events (claim_id, event);
"""

ATTEMPT, EXECUTED, COMPLETED, FAULT = "attempt", "executed", "completed", "fault"
CRASHED = "crashed"
"""The process (the services' own, or Restate for `kill_restate`) is killed now, by a fault."""
EVALUATION = "evaluation"
"""An attempt of the judge's evaluation of the claim started (the workflow's are `attempt`)."""
LOST = "lost"
"""`detail` of a `completed` event whose result never reached the journal (the process was
killed right after it, on purpose)."""


@dataclass(frozen=True)
class Plan:
    """A planned fault as stored (a claim's own, or armed for the next claims)."""

    id: int
    claim_id: str | None
    step: str
    kind: str
    times: int
    remaining: int
    claims_left: int | None = None
    armed_from: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    @property
    def fired(self) -> int:
        return self.times - self.remaining

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Plan:
        data = dict(row)
        data["params"] = json.loads(data.get("params") or "{}")
        return cls(**data)


_ANY_LIVE_PLAN = (
    "SELECT 1 FROM plans WHERE (claim_id IS NOT NULL AND remaining > 0) "
    "OR (claim_id IS NULL AND claims_left > 0) LIMIT 1"
)


class FaultStore:
    """The plans and events in one SQLite file; safe to share between processes (WAL, busy
    timeout) and between threads of one process (one connection behind a lock)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # a commit reaches the OS before the call returns: it survives the process being killed
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._no_plans_at: int | None = None  # the data_version at which no plan was live

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- planning ------------------------------------------------------------------------------
    def add(
        self,
        *,
        step: str,
        kind: str,
        times: int,
        params: dict[str, Any] | None = None,
        claim_id: str | None = None,
        claims: int | None = None,
    ) -> Plan:
        """Plan a fault for one claim (`claim_id`) or arm it for the next `claims` claims."""
        if (claim_id is None) == (claims is None):
            raise ValueError("A fault is planned either for a claim_id or for the next claims.")
        with self._lock, self._transaction():
            self._no_plans_at = None
            cursor = self._db.execute(
                "INSERT INTO plans (claim_id, step, kind, times, remaining, claims_left, params, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    claim_id,
                    step,
                    kind,
                    times,
                    times,
                    claims,
                    json.dumps(params or {}),
                    time.time(),
                ),
            )
            row = self._db.execute("SELECT * FROM plans WHERE id = ?", (cursor.lastrowid,))
            return Plan.from_row(row.fetchone())

    def plans(self, claim_id: str | None = None, *, armed: bool | None = None) -> list[Plan]:
        query, args = "SELECT * FROM plans WHERE 1 = 1", []
        if claim_id is not None:
            query += " AND claim_id = ?"
            args.append(claim_id)
        if armed is True:
            query += " AND claim_id IS NULL"
        elif armed is False:
            query += " AND claim_id IS NOT NULL"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [Plan.from_row(r) for r in rows]

    def disarm(self) -> int:
        """Forget the faults armed for the next claims that no claim took yet."""
        with self._lock, self._transaction():
            return self._db.execute(
                "UPDATE plans SET claims_left = 0 WHERE claim_id IS NULL AND claims_left > 0"
            ).rowcount

    def clear(self, claim_id: str | None = None) -> int:
        """Forget every plan not fired yet (of one claim, or all of them, armed ones included)."""
        with self._lock, self._transaction():
            if claim_id is None:
                n = self._db.execute("UPDATE plans SET remaining = 0 WHERE remaining > 0").rowcount
                self._db.execute("UPDATE plans SET claims_left = 0 WHERE claims_left > 0")
                return n
            return self._db.execute(
                "UPDATE plans SET remaining = 0 WHERE claim_id = ? AND remaining > 0", (claim_id,)
            ).rowcount

    # -- firing --------------------------------------------------------------------------------
    def has_plans(self, claim_id: str, steps: Sequence[str]) -> bool:
        """A cheap read: is anything planned (or armed) for this claim at one of these steps?

        Asked at every step and model call, and nearly always answered no: once no plan is live
        at all, the answer is kept until another connection (a planner: `wb.faults`, another
        worker) commits to the file, which SQLite's `data_version` tells in a few microseconds."""
        marks = ",".join("?" * len(steps))
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version == self._no_plans_at:
                return False
            row = self._db.execute(
                f"SELECT 1 FROM plans WHERE step IN ({marks}) AND ("
                "(claim_id = ? AND remaining > 0) OR (claim_id IS NULL AND claims_left > 0)"
                ") LIMIT 1",
                (*steps, claim_id),
            ).fetchone()
            if row is None and self._db.execute(_ANY_LIVE_PLAN).fetchone() is None:
                self._no_plans_at = version
        return row is not None

    def take(
        self,
        claim_id: str,
        steps: Sequence[str],
        kinds: Iterable[str],
        *,
        where: str,
        call: int | None = None,
        exclusive: Iterable[str] = (),
    ) -> list[Plan]:
        """Fire the faults planned for this claim at one of `steps` whose kind is in `kinds`:
        each one's `remaining` goes down by one, atomically, and a `fault` event is written in the
        same transaction, so each fires exactly as many times as planned even if the process dies
        right after. Faults armed for the next claims are first bound to this claim (once per
        claim). Of the `exclusive` kinds (those that end the try), only the first one fires."""
        kinds, exclusive = set(kinds), set(exclusive)
        marks = ",".join("?" * len(steps))
        fired: list[Plan] = []
        with self._lock, self._transaction():
            self._no_plans_at = None  # armed plans may be bound to this claim below
            armed = self._db.execute(
                f"SELECT * FROM plans WHERE claim_id IS NULL AND claims_left > 0 "
                f"AND step IN ({marks}) ORDER BY id",
                tuple(steps),
            ).fetchall()
            for row in armed:
                taken = self._db.execute(
                    "SELECT 1 FROM plans WHERE armed_from = ? AND claim_id = ?",
                    (row["id"], claim_id),
                ).fetchone()
                if taken:
                    continue
                self._db.execute(
                    "UPDATE plans SET claims_left = claims_left - 1 WHERE id = ?", (row["id"],)
                )
                self._db.execute(
                    "INSERT INTO plans (claim_id, step, kind, times, remaining, armed_from, "
                    "params, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        claim_id,
                        row["step"],
                        row["kind"],
                        row["times"],
                        row["times"],
                        row["id"],
                        row["params"],
                        time.time(),
                    ),
                )
            rows = self._db.execute(
                f"SELECT * FROM plans WHERE claim_id = ? AND step IN ({marks}) AND remaining > 0 "
                "ORDER BY id",
                (claim_id, *steps),
            ).fetchall()
            ended = False
            for row in rows:
                plan = Plan.from_row(row)
                if plan.kind not in kinds or (ended and plan.kind in exclusive):
                    continue
                self._db.execute(
                    "UPDATE plans SET remaining = remaining - 1 WHERE id = ?", (plan.id,)
                )
                n = plan.fired + 1
                self._insert_event(claim_id, where, FAULT, call, plan.kind, f"{n} of {plan.times}")
                fired.append(plan)
                ended = ended or plan.kind in exclusive
        return fired

    # -- evidence ------------------------------------------------------------------------------
    def record(
        self,
        claim_id: str,
        step: str,
        event: str,
        *,
        call: int | None = None,
        kind: str | None = None,
        detail: str | None = None,
    ) -> None:
        with self._lock:
            self._insert_event(claim_id, step, event, call, kind, detail)

    def count(self, claim_id: str, event: str, steps: Sequence[str]) -> int:
        """How many `event` rows this claim has at these steps (lost results not counted)."""
        marks = ",".join("?" * len(steps))
        with self._lock:
            row = self._db.execute(
                f"SELECT COUNT(*) FROM events WHERE claim_id = ? AND event = ? "
                f"AND step IN ({marks}) AND (detail IS NULL OR detail != ?)",
                (claim_id, event, *steps, LOST),
            ).fetchone()
        return int(row[0])

    def events(self, claim_id: str | None = None) -> list[dict[str, Any]]:
        query, args = "SELECT * FROM events", ()
        if claim_id is not None:
            query, args = query + " WHERE claim_id = ?", (claim_id,)
        with self._lock:
            return [dict(r) for r in self._db.execute(query + " ORDER BY id", args).fetchall()]

    def _insert_event(
        self,
        claim_id: str,
        step: str,
        event: str,
        call: int | None,
        kind: str | None,
        detail: str | None,
    ) -> None:
        self._db.execute(
            "INSERT INTO events (claim_id, step, event, call, kind, detail, pid, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (claim_id, step, event, call, kind, detail, os.getpid(), time.time()),
        )

    class _Transaction:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *rest: object) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _transaction(self) -> FaultStore._Transaction:
        return FaultStore._Transaction(self._db)
