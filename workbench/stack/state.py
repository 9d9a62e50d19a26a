"""`<home>/stack.json`: ports, pids and urls of a running stack (and how to reach supervisord)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "stack.json"
STATE_VERSION = 1


@dataclass
class StackState:
    home: str
    project: str
    stack_id: str
    persistent: bool
    started_at: float
    supervisor: dict[str, Any]  # pid, port, url, username, password, identifier
    processes: dict[str, dict[str, Any]]  # name -> ManagedProcess.to_state() (+ pid)
    urls: dict[str, str | None]  # ingress, admin, llm (OpenAI base URL), services
    external: dict[str, bool] = field(default_factory=dict)  # llm / restate not run by us
    ports: dict[str, int] = field(default_factory=dict)  # name (ingress, admin, ...) -> port
    langfuse_keys: list[str] = field(default_factory=list)  # public, secret
    moved_ports: list[dict[str, Any]] = field(default_factory=list)  # ports.PortMove fields
    version: int = STATE_VERSION

    @property
    def path(self) -> Path:
        return Path(self.home) / STATE_FILE

    def save(self) -> None:
        path = self.path
        tmp = path.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the RPC password
        with os.fdopen(fd, "w") as file:
            json.dump(asdict(self), file, indent=2)
            file.write("\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, home: Path) -> StackState | None:
        try:
            data = json.loads((home / STATE_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return None
        try:
            return cls(**data)
        except TypeError:
            return None


def remove_state(home: Path) -> None:
    for name in (STATE_FILE, "supervisord.pid"):
        (home / name).unlink(missing_ok=True)
