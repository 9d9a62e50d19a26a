"""The payments ledger as a DataFrame (read straight from the services' SQLite file)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from services.ledger import Ledger


def _ledger_path(home: Path | None) -> Path:
    if home is None:
        from . import _stack

        home = (
            Path(_stack.home)
            if _stack is not None
            else Path(
                os.environ.get(
                    "WORKBENCH_HOME", Path(__file__).resolve().parent.parent / ".workbench"
                )
            )
        )
    return Path(home) / "ledger.sqlite3"


def ledger(home: Path | None = None) -> pd.DataFrame:
    """Every payment made: one row per idempotency key, so one per paid claim."""
    path = _ledger_path(home)
    columns = ["payment_id", "claim_id", "customer_id", "amount_eur", "paid_at", "idempotency_key"]
    if not path.exists():
        return pd.DataFrame(columns=columns)
    payments = Ledger(path).payments()
    return pd.DataFrame([p.model_dump() for p in payments], columns=columns)
