"""Run a notebook the way JupyterLab's Run All does: every code cell's execute request is sent to
the kernel at once (queued), each with `stop_on_error` unless it is tagged `raises-exception`
(JupyterLab's rule), then the replies and outputs are collected per cell.

nbmake/nbclient send one cell, wait for it, then send the next: a kernel that cannot take queued
requests while a cell runs (a helper re-entering the kernel's event loop) passes there and hangs
in JupyterLab. This harness is what people do."""

from __future__ import annotations

import json
import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

RAISES = "raises-exception"


@dataclass
class CellRun:
    index: int
    source: str
    expects_error: bool
    status: str | None = None  # the execute_reply's status: ok, error, aborted
    errors: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status is not None

    def problems(self) -> list[str]:
        """What a person would see as wrong in this cell's output area."""
        first = (self.source.strip().splitlines() or [""])[0][:60]
        head = f"cell {self.index} ({first!r})"
        found = []
        if not self.finished:
            found.append(f"{head}: never finished (still [*])")
        elif self.expects_error:
            if not self.errors:
                found.append(f"{head}: tagged {RAISES} but raised nothing")
        elif self.status != "ok" or self.errors:
            found.append(f"{head}: {self.status}: {' | '.join(self.errors)[-1500:]}")
        if self.stderr:
            found.append(f"{head}: wrote to stderr: {''.join(self.stderr)[-1500:]}")
        return found


@dataclass
class RunAll:
    path: Path
    cells: list[CellRun]
    seconds: float

    def problems(self) -> list[str]:
        return [p for cell in self.cells for p in cell.problems()]


def code_cells(path: Path) -> list[CellRun]:
    notebook = json.loads(path.read_text())
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        tags = cell.get("metadata", {}).get("tags", [])
        cells.append(CellRun(index, source, RAISES in tags))
    return cells


def run_all(path: Path, *, timeout_s: float = 600.0, env: dict[str, str] | None = None) -> RunAll:
    """Queue every code cell of `path` at once in a fresh kernel (cwd: the notebook's folder),
    wait until all replied or `timeout_s` passed, and return what each cell did."""
    cells = code_cells(path)
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(path.parent), env={**os.environ, **(env or {})})
    client = manager.client()
    client.start_channels()
    started = time.monotonic()
    try:
        client.wait_for_ready(timeout=60)
        by_id = {
            client.execute(
                cell.source, allow_stdin=False, stop_on_error=not cell.expects_error
            ): cell
            for cell in cells
        }
        deadline = started + timeout_s
        while any(not cell.finished for cell in cells) and time.monotonic() < deadline:
            _drain(client, by_id, timeout_s=min(1.0, max(deadline - time.monotonic(), 0.01)))
        _drain_iopub(client, by_id, timeout_s=0.5)  # outputs that trail the last reply
    finally:
        seconds = time.monotonic() - started
        client.stop_channels()
        manager.shutdown_kernel(now=False, restart=False)
    return RunAll(path, cells, seconds)


def _drain(client: Any, by_id: dict[str, CellRun], timeout_s: float) -> None:
    _drain_iopub(client, by_id, timeout_s=0.0)
    try:
        reply = client.get_shell_msg(timeout=timeout_s)
    except queue.Empty:
        return
    cell = by_id.get(reply["parent_header"].get("msg_id"))
    if cell is not None and reply["msg_type"] == "execute_reply":
        cell.status = reply["content"]["status"]


def _drain_iopub(client: Any, by_id: dict[str, CellRun], timeout_s: float) -> None:
    while True:
        try:
            message = client.get_iopub_msg(timeout=timeout_s)
        except queue.Empty:
            return
        cell = by_id.get(message["parent_header"].get("msg_id"))
        if cell is None:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "error":
            cell.errors.append(f"{content['ename']}: {content['evalue']}")
        elif kind == "stream" and content.get("name") == "stderr":
            cell.stderr.append(content["text"])
        elif kind in ("execute_result", "display_data", "stream"):
            cell.outputs.append({"type": kind, **content})
