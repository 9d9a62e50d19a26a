"""The home folder: its marker, what it remembers between runs, and its permissions.

A home the stack created holds the marker file `.workbench-home`; `reset` deletes only such a
folder. `home.json` (0600) outlives `down`: the embedded Langfuse's keys (generated at the first
start, so no two homes share them), the ports of the last run (reused by the next `up` when they
are free) and the Restate deployment id of each services process (so that services that come
back on another port update their deployment in place instead of registering a new one).
The folder is 0700 (when the stack created it); its databases, state and logs are 0600 (and the
processes run with umask 077)."""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MARKER = ".workbench-home"
HOME_FILE = "home.json"
OWN_FILES = (
    "stack.json",
    HOME_FILE,
    "supervisord.conf",
    "supervisord.pid",
    "ledger.sqlite3",
    "langfuse.sqlite3",
    "faults.sqlite3",
)
"""Files the stack writes in the home (a database's -wal/-shm files go with it): kept 0600."""


def is_home(path: Path) -> bool:
    """Whether the stack created `path` (it holds the marker)."""
    return (path / MARKER).is_file()


def prepare(home: Path) -> None:
    """Create the home (0700) with its marker when it does not exist or is empty; make sure the
    logs folder exists; tighten permissions of what is there."""
    fresh = not home.exists() or not any(p for p in home.iterdir() if p.name != ".stack.lock")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if fresh:
        (home / MARKER).write_text(
            "created by workbench.stack: `python -m workbench reset` may delete this folder\n"
        )
    (home / "logs").mkdir(exist_ok=True, mode=0o700)
    secure(home)


def secure(home: Path) -> None:
    """The files the stack keeps in the home, and everything in its logs folder, 0600; the logs
    folder 0700; the home itself 0700 when the stack created it (a folder the user chose and
    filled is left as it is, apart from the stack's own files). Restate's data folder is left to
    Restate, which runs with umask 077."""
    if not home.is_dir():
        return
    if is_home(home):
        _chmod(home, 0o700)
    logs = home / "logs"
    if logs.is_dir() and not logs.is_symlink():
        _chmod(logs, 0o700)
        for entry in logs.iterdir():
            if entry.is_file() and not entry.is_symlink():
                _chmod(entry, 0o600)
    for entry in home.iterdir():
        if entry.is_file() and not entry.is_symlink() and _own(entry.name):
            _chmod(entry, 0o600)


def _own(name: str) -> bool:
    return name == MARKER or any(name == f or name.startswith(f"{f}-") for f in OWN_FILES)


def _chmod(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
    except OSError:  # not ours (e.g. a shared folder): leave it
        pass


@dataclass
class HomeRecord:
    """`home.json`: what a home remembers between runs of the stack."""

    langfuse_keys: list[str] = field(default_factory=list)  # public, secret (embedded Langfuse)
    ports: dict[str, int] = field(default_factory=dict)  # name -> port of the last run
    deployments: dict[str, str] = field(default_factory=dict)  # services process -> deployment id
    journal_revisions: dict[str, int] = field(default_factory=dict)  # deployment id -> revision
    """The journal revision each deployment was registered with (`services.journal`); a
    deployment recorded without one was registered before revisions were: revision 1."""
    older_deployments: dict[str, dict[str, int]] = field(default_factory=dict)
    """Services process -> the older deployments it serves on their revision's path (id ->
    revision): their claims finish there."""

    def deployment_revision(self, name: str) -> int | None:
        """The journal revision of the deployment services process `name` served last time."""
        deployment_id = self.deployments.get(name)
        if deployment_id is None:
            return None
        return self.journal_revisions.get(deployment_id, 1)

    @classmethod
    def load(cls, home: Path) -> HomeRecord:
        try:
            data: Any = json.loads((home / HOME_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except TypeError:
            return cls()

    def save(self, home: Path) -> None:
        path = home / HOME_FILE
        tmp = path.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the keys
        with os.fdopen(fd, "w") as file:
            json.dump(asdict(self), file, indent=2)
            file.write("\n")
        os.replace(tmp, path)

    def keys(self) -> tuple[str, str]:
        """The embedded Langfuse's keys, generated the first time they are asked for."""
        if len(self.langfuse_keys) != 2 or not all(self.langfuse_keys):
            self.langfuse_keys = [
                f"pk-lf-{secrets.token_hex(16)}",
                f"sk-lf-{secrets.token_hex(24)}",
            ]
        return self.langfuse_keys[0], self.langfuse_keys[1]


def update(home: Path, **changes: Any) -> HomeRecord:
    """Load `home.json`, apply `changes` (dicts are merged), save it; returns the record."""
    record = HomeRecord.load(home)
    for key, value in changes.items():
        current = getattr(record, key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged = {**current, **value}
            setattr(record, key, {k: v for k, v in merged.items() if v is not None})
        else:
            setattr(record, key, value)
    record.save(home)
    return record
