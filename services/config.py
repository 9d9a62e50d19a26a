"""The services' settings, read from the environment (the services are the deployable unit: they
never import the workbench). The workbench stack sets these for its embedded default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_PROJECT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    """Claim data, FX rates, policies, fraud database, prompts (`WORKBENCH_DATA_DIR`)."""
    home: Path
    """Where the payments ledger lives (`WORKBENCH_HOME`)."""
    model: str
    """The model name sent to the OpenAI-compatible endpoint (`WORKBENCH_MODEL`)."""
    service_version: str
    """This deployment's version, stored with every outcome (`SERVICE_VERSION`)."""

    @property
    def ledger_path(self) -> Path:
        return Path(os.environ.get("WORKBENCH_LEDGER", self.home / "ledger.sqlite3"))


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings(
        data_dir=Path(os.environ.get("WORKBENCH_DATA_DIR", _PROJECT / "data")),
        home=Path(os.environ.get("WORKBENCH_HOME", _PROJECT / ".workbench")),
        model=os.environ.get("WORKBENCH_MODEL", "gpt-4o-mini"),
        service_version=os.environ.get("SERVICE_VERSION", "v1"),
    )
