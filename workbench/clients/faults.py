"""The fault store client: the only code of the notebook layer that reads and writes the fault
plans and the evidence the services record (`faults.sqlite3` in the stack's home; the format is
`services.fault_store`, shared with the services that read the plans)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from services.fault_store import FaultStore, Plan

__all__ = ["FAULTS_FILE", "FaultStoreClient", "Plan"]

FAULTS_FILE = "faults.sqlite3"


class FaultStoreClient:
    """Plans and evidence in `home`'s fault store (created on first use)."""

    def __init__(self, home: Path | str) -> None:
        self.path = Path(home) / FAULTS_FILE

    def __repr__(self) -> str:
        return f"FaultStoreClient({self.path})"

    @cached_property
    def _store(self) -> FaultStore:
        return FaultStore(self.path)

    def add(self, **plan: Any) -> Plan:
        """Store one planned fault (`claim_id=` for one claim, or `claims=` for the next N)."""
        return self._store.add(**plan)

    def plans(self, claim_id: str | None = None) -> list[Plan]:
        return self._store.plans(claim_id)

    def disarm(self) -> int:
        return self._store.disarm()

    def clear(self, claim_id: str | None = None) -> int:
        return self._store.clear(claim_id)

    def events(self, claim_id: str | None = None) -> list[dict[str, Any]]:
        """What the services recorded, in order (attempts, executions, completions, faults)."""
        if not self.path.exists():
            return []
        return self._store.events(claim_id)

    def close(self) -> None:
        if "_store" in self.__dict__:
            self._store.close()
            del self.__dict__["_store"]
