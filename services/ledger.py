"""The payments ledger: SQLite, one row per payment, unique by idempotency key.

A payment step that is retried after a crash (the payment made, the process dead before the
result was journaled) comes back with the same key; the ledger refuses to pay again and answers
with the first payment, marked `duplicate`. Every attempt is counted, so the evidence survives
the crash that the journal did not see."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from .models import Payment

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    idempotency_key TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL UNIQUE,
    claim_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    amount_eur REAL NOT NULL,
    paid_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS payment_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    at TEXT NOT NULL
);
"""


class Ledger:
    """A SQLite ledger file; safe to use from several processes at once (WAL, busy timeout)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def pay(
        self, idempotency_key: str, claim_id: str, customer_id: str, amount_eur: float
    ) -> Payment:
        """Pay once per key. A repeated key pays nothing and returns the first payment."""
        if not idempotency_key:
            raise ValueError("A payment needs an idempotency key; got an empty one.")
        if amount_eur <= 0:
            raise ValueError(f"A payment must be positive; got {amount_eur!r} EUR.")
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            inserted = db.execute(
                "INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(idempotency_key) DO NOTHING",
                (
                    idempotency_key,
                    f"pay-{uuid.uuid4().hex[:12]}",
                    claim_id,
                    customer_id,
                    round(amount_eur, 2),
                    now,
                ),
            ).rowcount
            db.execute(
                "INSERT INTO payment_attempts (idempotency_key, accepted, at) VALUES (?, ?, ?)",
                (idempotency_key, inserted, now),
            )
            row = db.execute(
                "SELECT * FROM payments WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            db.execute("COMMIT")
        return Payment(**dict(row), duplicate=not inserted)

    def payments(self) -> list[Payment]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM payments ORDER BY paid_at").fetchall()
        return [Payment(**dict(r)) for r in rows]

    def attempts(self, idempotency_key: str | None = None) -> list[dict]:
        """Every payment attempt, accepted or refused as a duplicate."""
        query, args = "SELECT * FROM payment_attempts", ()
        if idempotency_key is not None:
            query, args = query + " WHERE idempotency_key = ?", (idempotency_key,)
        with closing(self._connect()) as db:
            return [dict(r) for r in db.execute(query + " ORDER BY id", args).fetchall()]
