"""The payments ledger client: the only code of the notebook layer that reads the services'
SQLite ledger (`ledger.sqlite3` in the stack's home)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pandas as pd

from services.ledger import Ledger
from services.names import payment_key

__all__ = ["ATTEMPT_COLUMNS", "LEDGER_FILE", "PAYMENT_COLUMNS", "LedgerClient"]

LEDGER_FILE = "ledger.sqlite3"
PAYMENT_COLUMNS = [
    "payment_id",
    "claim_id",
    "customer_id",
    "amount_eur",
    "paid_at",
    "idempotency_key",
]
ATTEMPT_COLUMNS = ["attempt", "at", "accepted", "idempotency_key"]


class LedgerClient:
    """Reads the ledger file in `home`; an absent file is an empty ledger."""

    def __init__(self, home: Path | str) -> None:
        self.path = Path(home) / LEDGER_FILE

    def __repr__(self) -> str:
        return f"LedgerClient({self.path})"

    @cached_property
    def _ledger(self) -> Ledger:
        return Ledger(self.path)

    def payments(self, claim_ids: list[str] | None = None) -> pd.DataFrame:
        """Every payment made (one row per idempotency key, so one per paid claim), or those of
        `claim_ids`."""
        if not self.path.exists():
            return pd.DataFrame(columns=PAYMENT_COLUMNS)
        rows = [p.model_dump() for p in self._ledger.payments()]
        frame = pd.DataFrame(rows, columns=PAYMENT_COLUMNS)
        if claim_ids is not None:
            frame = frame[frame["claim_id"].isin(claim_ids)].reset_index(drop=True)
        return frame

    def attempts(self, claim_id: str) -> pd.DataFrame:
        """Every payment attempt for a claim, accepted or refused as a duplicate (counted in the
        same transaction as the payment, so a crash cannot hide one)."""
        if not self.path.exists():
            return pd.DataFrame(columns=ATTEMPT_COLUMNS)
        key = payment_key(claim_id)
        rows = [
            {
                "attempt": i + 1,
                "at": r["at"],
                "accepted": bool(r["accepted"]),
                "idempotency_key": key,
            }
            for i, r in enumerate(self._ledger.attempts(key))
        ]
        return pd.DataFrame(rows, columns=ATTEMPT_COLUMNS)
