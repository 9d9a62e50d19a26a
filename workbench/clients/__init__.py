"""One client per protocol; each is the only code of the notebook layer that speaks it.

- `RestateClient`: Restate's ingress (invoke, attach) and admin API (SQL, deployments,
  invocations);
- `LangfuseClient`: Langfuse's public API (observations, traces, scores, prompts, datasets);
- `FaultStoreClient`: the fault plans and the services' evidence (`faults.sqlite3`);
- `LedgerClient`: the payments ledger (`ledger.sqlite3`).

A `workbench.Session` owns one of each; the helpers a notebook calls use them.
"""

from __future__ import annotations

from .faults import FaultStoreClient
from .langfuse import LangfuseClient
from .ledger import LedgerClient
from .restate import RestateClient

__all__ = ["FaultStoreClient", "LangfuseClient", "LedgerClient", "RestateClient"]
