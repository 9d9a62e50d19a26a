"""One client per protocol; each is the only code of the notebook layer that speaks it.

- `RestateClient`: Restate's ingress (invoke, attach) and admin API (SQL, deployments,
  invocations);
- `LangfuseClient`: Langfuse's public API (observations, traces, scores, prompts, datasets);
- `FaultStoreClient`: the fault plans and the services' evidence (`faults.sqlite3`);
- `LedgerClient`: the payments ledger (`ledger.sqlite3`).

A `workbench.Session` owns one of each; the helpers a notebook calls use them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .faults import FaultStoreClient
    from .langfuse import LangfuseClient
    from .ledger import LedgerClient
    from .restate import RestateClient

__all__ = ["FaultStoreClient", "LangfuseClient", "LedgerClient", "RestateClient"]

_MODULES = {
    "FaultStoreClient": ".faults",
    "LangfuseClient": ".langfuse",
    "LedgerClient": ".ledger",
    "RestateClient": ".restate",
}
"""Imported on first use: the stack's own code imports `clients.restate` alone, and the command
line (`python -m workbench status`) must not load pandas with the ledger's client."""


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULES[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
