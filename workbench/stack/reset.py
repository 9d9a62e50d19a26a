"""`reset`: delete a workbench home, only one the stack created, and only when confirmed.

    plan = reset_plan(home)     # what would go: journals, payments, traces, user prompts
    print(plan.describe())
    reset(home, yes=True)       # stop the stack, then delete the folder

A folder without the marker `.workbench-home` is refused whatever it contains (`reset` once
removed unrelated `*.db` files from a folder the workbench never created)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .config import find_project
from .errors import ResetRefusedError, StackError
from .home import MARKER, is_home
from .stack import Stack, local_http, resolve_home
from .state import StackState


@dataclass
class ResetPlan:
    """What `reset` deletes in `home`. A count is None when it cannot be known (e.g. Restate's
    journals while the stack is stopped: only the size of its data is known then)."""

    home: Path
    exists: bool
    ours: bool
    running: bool = False
    invocations: int | None = None
    restate_bytes: int = 0
    payments: int | None = None
    traces: int | None = None
    scores: int | None = None
    user_prompts: int | None = None
    entries: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.exists:
            return f"{self.home} does not exist: nothing to delete."
        if not self.ours:
            return (
                f"{self.home} is not a workbench home (it has no {MARKER} file): reset "
                "deletes nothing there."
            )
        journals = (
            f"{self.invocations} Restate invocations with their journals"
            if self.invocations is not None
            else "Restate's journals and state (the stack is stopped: not counted)"
        )
        lines = [
            f"reset deletes the workbench home {self.home}"
            + (" (and stops the stack running there)" if self.running else "")
            + ":",
            f"  - {journals}, {self.restate_bytes / 1e6:.1f} MB in restate/",
            f"  - {_count(self.payments)} payments in the ledger (ledger.sqlite3)",
            f"  - {_count(self.traces)} traces and {_count(self.scores)} scores in the embedded "
            "Langfuse (langfuse.sqlite3)",
            f"  - {_count(self.user_prompts)} prompt versions created by you (beyond "
            "data/prompts/)",
            f"  - everything else in it: {', '.join(self.entries) or 'nothing'}",
        ]
        return "\n".join(lines)


def _count(value: int | None) -> str:
    return "no" if value == 0 else ("?" if value is None else f"{value:,}")


def reset_plan(home: str | os.PathLike[str] | None = None) -> ResetPlan:
    path = resolve_home(home)
    plan = ResetPlan(home=path, exists=path.exists(), ours=is_home(path))
    if not plan.exists or not plan.ours:
        return plan
    plan.entries = sorted(entry.name for entry in path.iterdir() if entry.name != ".stack.lock")
    plan.restate_bytes = _size(path / "restate") + _size(path / "cluster")
    plan.payments = _sql_count(path / "ledger.sqlite3", "SELECT COUNT(*) FROM payments")
    langfuse = path / "langfuse.sqlite3"
    plan.traces = _sql_count(langfuse, "SELECT COUNT(*) FROM traces")
    plan.scores = _sql_count(langfuse, "SELECT COUNT(*) FROM scores")
    plan.user_prompts = _user_prompts(langfuse, _project_of(path))
    state = StackState.load(path)
    if state is not None:
        stack = Stack(state)
        plan.running = stack.is_running()
        if plan.running and not state.external.get("restate"):
            with contextlib.suppress(StackError, httpx.HTTPError, KeyError, ValueError):
                with local_http(5.0) as http:
                    rows = stack.admin(http).sql("SELECT COUNT(*) AS n FROM sys_invocation")
                plan.invocations = int(rows[0]["n"])
    return plan


def reset(
    home: str | os.PathLike[str] | None = None, *, yes: bool = False, grace_s: float = 5.0
) -> Path:
    """Stop the stack in `home` and delete the folder, if the stack created it (it holds the
    marker) and `yes` confirms it. Raises ResetRefusedError otherwise, saying why."""
    from .lifecycle import stop

    plan = reset_plan(home)
    path = plan.home
    if path in {Path("/"), Path.home().resolve(), find_project()} or path in Path.cwd().parents:
        raise ResetRefusedError(f"refusing to reset {path}: it is not a workbench home folder")
    if not plan.exists:
        return path
    if not plan.ours:
        raise ResetRefusedError(
            f"refusing to reset {path}: it has no {MARKER} file, so the workbench did not "
            "create it. Point --home (WORKBENCH_HOME) at a workbench home, or delete what you "
            "want gone by hand."
        )
    if not yes:
        raise ResetRefusedError(
            f"reset of {path} not confirmed: it deletes journals, payments, traces and your "
            "prompts. Pass --yes (reset(home, yes=True)) to confirm."
        )
    stop(path, grace_s=grace_s)
    shutil.rmtree(path)
    return path


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def _sql_count(db: Path, sql: str) -> int | None:
    if not db.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return None


def _project_of(home: Path) -> Path:
    state = StackState.load(home)
    return Path(state.project) if state is not None else find_project()


def _user_prompts(db: Path, project: Path) -> int | None:
    """Prompt versions in the embedded Langfuse that are not a seed of data/prompts/."""
    if not db.is_file():
        return 0
    seeds: dict[tuple[str, int], str] = {}
    with contextlib.suppress(OSError, ValueError, KeyError):
        folder = project / "data" / "prompts"
        for entry in json.loads((folder / "index.json").read_text()):
            seeds[(entry["name"], int(entry["version"]))] = (folder / entry["file"]).read_text()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT name, version, prompt FROM prompts").fetchall()
    except sqlite3.Error:
        return None
    return sum(1 for name, version, text in rows if seeds.get((name, version)) != text)
