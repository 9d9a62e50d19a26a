"""JupyterLab for the browser tests: the server, a notebook opened in a page, and what a person
sees in its cells.

- `JupyterLab` runs the project's `jupyter lab` (`--no-browser`, a free loopback port, a token)
  over a folder of copies of the notebooks (outputs saved by JupyterLab's autosave land there,
  never in the repository), with its own settings, workspaces and runtime folders; `stop()` ends
  it by pid after shutting its kernels down, and ends any kernel process still alive by pid.
- `Notebook` drives one notebook in a page as people do: open it, Run > Run All Cells, wait until
  the kernel is idle and no cell shows `[*]`, run one cell (Shift+Enter), add a cell at the end
  and run it, and take screenshots of it from top to bottom.
- `CellView.problems()` says what a person would call wrong in a cell's output area: an error or
  a stderr block, a cell that never ran, a widget that did not render (or printed as text), a
  chart printed as text instead of drawn.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

RAISES = "raises-exception"
"""The tag of a cell that must fail (JupyterLab's Run All goes on past it, as nbmake does)."""
CHART_CALLS = re.compile(r"\.(plot|chart|waterfall|over_time)\(")
"""Calls of the workbench's chart helpers (ClaimBatch.plot, wb.scores.chart / over_time,
wb.traces.waterfall): a cell making one must show a drawn image."""
FIGURE_AS_TEXT = re.compile(r"<(Figure size [^>]*|Axes: [^>]*|matplotlib\.[^>]*)>")
WIDGET_ERROR = re.compile(r"Error displaying widget|Loading widget\.\.\.|model not found")
SETTINGS = {
    # no calls home from a closed network, no toast over the screenshots
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
PAGE_CONFIG = {"buildCheck": False, "buildAvailable": False}
"""No "a build is needed" check at each page load: the extensions are prebuilt (ipywidgets')."""


def widget_repr() -> re.Pattern[str]:
    """The text repr of a widget that was printed instead of rendered: `VBox(children=...)`,
    `FaultPanel(idle, ...)`: every ipywidgets class and the workbench's panels."""
    import ipywidgets

    import workbench.widgets

    names: set[str] = set(workbench.widgets.__all__)
    stack: list[type] = [ipywidgets.Widget]
    while stack:
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    return re.compile(r"^\s*(" + "|".join(sorted(map(re.escape, names))) + r")\(")


# -- the server ---------------------------------------------------------------------------------
class JupyterLabError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterLab:
    """`jupyter lab` serving `root` on a free loopback port, with a token."""

    def __init__(self, root: Path, state: Path, *, python: str = sys.executable) -> None:
        self.root = root
        self.state = state
        self.python = python
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = state / "jupyterlab.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.kernel_pids: set[int] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, **query: str) -> str:
        params = "&".join([f"token={self.token}", *(f"{k}={v}" for k, v in query.items())])
        return f"{self.base_url}/{path.lstrip('/')}?{params}"

    def command(self) -> list[str]:
        command = [
            self.python,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",  # a port taken meanwhile is an error, not a new port
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.user_settings_dir={self.state / 'settings'}",
            f"--LabApp.workspaces_dir={self.state / 'workspaces'}",
            "--LabApp.extension_manager=readonly",  # no PyPI look-ups from a closed network
            "--ServerApp.jpserver_extensions=jupyter_lsp=False",  # no language server here
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")  # CI containers run as root
        return command

    def start(self, timeout_s: float = 60.0) -> None:
        for name, values in SETTINGS.items():
            path = self.state / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        (self.state / "workspaces").mkdir(parents=True, exist_ok=True)
        labconfig = self.state / "config" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
        env = {
            **os.environ,  # WORKBENCH_HOME (the root conftest's) reaches the kernels
            "JUPYTER_RUNTIME_DIR": str(self.state / "runtime"),
            "JUPYTER_CONFIG_PATH": os.pathsep.join(
                [str(self.state / "config"), os.environ.get("JUPYTER_CONFIG_PATH", "")]
            ).rstrip(os.pathsep),
            "PATH": os.pathsep.join([str(Path(self.python).parent), os.environ.get("PATH", "")]),
        }
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise JupyterLabError(
                    f"jupyter lab exited with code {self.process.returncode} before answering; "
                    f"the end of its log ({self.log_path}):\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.url("api/status"), timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise JupyterLabError(
            f"jupyter lab did not answer on {self.base_url} within {timeout_s:.0f} s; the end "
            f"of its log ({self.log_path}):\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def api(self, method: str, path: str) -> Any:
        answer = httpx.request(method, self.url(f"api/{path}"), timeout=30.0)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def _note_kernels(self) -> None:
        """Remember the pids of the kernels the server runs (children of its process)."""
        import psutil

        if self.process is None:
            return
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.Error:
            return
        for child in children:
            try:
                if "ipykernel_launcher" in " ".join(child.cmdline()):
                    self.kernel_pids.add(child.pid)
            except psutil.Error:
                continue

    def shut_down_kernels(self) -> None:
        """End every session (and its kernel) the pages opened."""
        self._note_kernels()
        for session in self.api("GET", "sessions"):
            self.api("DELETE", f"sessions/{session['id']}")

    def stop(self, timeout_s: float = 20.0) -> None:
        """Shut the kernels down, stop the server by its pid (SIGTERM, then SIGKILL), and end any
        kernel process it left (by the pids noted)."""
        process = self.process
        if process is None:
            return
        try:
            if process.poll() is None:
                try:
                    self.shut_down_kernels()
                except httpx.HTTPError:
                    self._note_kernels()
        finally:
            self.process = None
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout_s)
            _end_pids(self.kernel_pids, timeout_s)


def _end_pids(pids: set[int], timeout_s: float) -> None:
    import psutil

    alive = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            process.terminate()
            alive.append(process)
        except psutil.Error:
            continue
    _, still = psutil.wait_procs(alive, timeout=timeout_s)
    for process in still:
        try:
            process.kill()
        except psutil.Error:
            continue


# -- what a cell shows --------------------------------------------------------------------------
@dataclass
class OutputView:
    mime: str
    """The output's MIME type as JupyterLab rendered it (a widget: "widget")."""
    text: str
    images: int = 0
    widgets: int = 0


@dataclass
class CellView:
    index: int
    kind: str  # code, markdown, raw
    prompt: str = ""
    source: str = ""
    tags: list[str] = field(default_factory=list)
    outputs: list[OutputView] = field(default_factory=list)

    @property
    def head(self) -> str:
        first = (self.source.strip().splitlines() or [""])[0]
        return f"cell {self.index} {self.prompt or '[ ]:'} {first[:70]!r}"

    @property
    def expects_error(self) -> bool:
        return RAISES in self.tags

    @property
    def ran(self) -> bool:
        return bool(re.fullmatch(r"\[\d+\]:", self.prompt))

    @property
    def images(self) -> int:
        return sum(o.images for o in self.outputs)

    @property
    def widgets(self) -> int:
        return sum(o.widgets for o in self.outputs)

    def problems(self, widget_text: re.Pattern[str]) -> list[str]:
        """What a person would see as wrong in this cell (empty when all is well)."""
        if self.kind != "code" or not self.source.strip():
            return []
        found: list[str] = []
        if "*" in self.prompt:
            found.append(f"{self.head}: still running ([*])")
        elif not self.ran:
            found.append(f"{self.head}: never ran (Run All stopped before it)")
        stderr = [o for o in self.outputs if o.mime == "application/vnd.jupyter.stderr"]
        if self.expects_error:
            if self.ran and not stderr:
                found.append(f"{self.head}: tagged {RAISES} but showed no error")
        else:
            shows = "shows an error or stderr block"
            found += [f"{self.head}: {shows}: {_cut(o.text, tail=True)}" for o in stderr]
        for output in self.outputs:
            if output.mime == "widget":
                if not output.widgets or WIDGET_ERROR.search(output.text):
                    found.append(f"{self.head}: a widget did not render: {_cut(output.text)}")
            elif widget_text.search(output.text):
                found.append(f"{self.head}: a widget printed as text: {_cut(output.text)}")
            if FIGURE_AS_TEXT.search(output.text) and not output.images:
                found.append(f"{self.head}: a chart printed as text: {_cut(output.text)}")
        if CHART_CALLS.search(self.source) and self.ran and not self.images:
            found.append(f"{self.head}: makes a chart but shows no image")
        return found


def _cut(text: str, limit: int = 600, *, tail: bool = False) -> str:
    """`text` on one line, at most `limit` characters: its start, or its end (`tail`: where a
    traceback says what was raised)."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    return "..." + text[3 - limit :] if tail else text[: limit - 3] + "..."


# -- a notebook in a page -----------------------------------------------------------------------
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
_SNAPSHOT = """panel => [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].map(cell => ({
    kind: cell.classList.contains('jp-CodeCell') ? 'code'
        : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw',
    prompt: (cell.querySelector('.jp-InputPrompt')?.textContent || '').trim(),
    source: [...cell.querySelectorAll('.jp-InputArea .cm-line')].map(l => l.textContent)
        .join('\\n'),
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(out => {
        const copy = out.cloneNode(true);
        copy.querySelectorAll('style, script').forEach(e => e.remove());
        const widget = out.querySelector('.jupyter-widgets, .jp-RenderedIPyWidget')
            || out.classList.contains('jp-RenderedIPyWidget')
            || /widget/i.test(out.dataset.mimeType || '');
        return {
            mime: widget ? 'widget' : (out.dataset.mimeType || ''),
            text: (copy.textContent || '').slice(0, 4000),
            images: out.querySelectorAll('img').length,
            widgets: out.querySelectorAll('.jupyter-widgets').length,
        };
    }),
}))"""
_RUN_ALL_DONE = """panel => {
    const status = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
    const prompts = [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
        .map(p => p.textContent);
    return status === 'idle' && !prompts.some(p => p.includes('*'))
        && prompts.some(p => /\\[\\d+\\]/.test(p));
}"""
_WIDGETS_SETTLED = """panel => [...panel.querySelectorAll('.jp-OutputArea-output')].every(out =>
    !/Loading widget/.test(out.textContent || ''))"""

_SCROLL_TO = """(e, top) => {
    e.scrollTop = top;
    const cells = e.querySelectorAll('.jp-Cell');
    const last = cells[cells.length - 1];
    const end = last ? last.getBoundingClientRect().bottom - e.getBoundingClientRect().top
        + e.scrollTop : e.scrollHeight;
    return [e.scrollTop, e.clientHeight, Math.min(end + 20, e.scrollHeight)];
}"""
_NEXT_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


class Notebook:
    """One notebook open in a JupyterLab page."""

    def __init__(self, page: Any, lab: JupyterLab, name: str) -> None:
        self.page = page
        self.lab = lab
        self.name = name
        self.path = lab.root / name
        notebook = json.loads(self.path.read_text())
        self.cells_json = notebook["cells"]
        self.panel = page.locator(PANEL)

    def open(self, timeout_s: float = 90.0) -> Notebook:
        """Open the notebook in a fresh workspace and wait for its cells and an idle kernel."""
        self.page.goto(self.lab.url(f"lab/tree/{self.name}", reset=""))
        count = len(self.cells_json)
        self.page.wait_for_function(
            f"() => document.querySelectorAll('{PANEL} .jp-Notebook .jp-Cell').length === {count}",
            timeout=timeout_s * 1000,
        )
        self.wait_idle(timeout_s)
        return self

    def wait_idle(self, timeout_s: float) -> None:
        self.panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
            state="attached", timeout=timeout_s * 1000
        )

    def menu(self, *path: str) -> None:
        """Click through the menu bar: `menu("Run", "Run All Cells")`."""
        self.page.get_by_role("menuitem", name=path[0], exact=True).click()
        for item in path[1:]:
            self.page.get_by_role("menuitem", name=item, exact=True).click()

    def run_all(self, timeout_s: float) -> float:
        """Run > Run All Cells, then wait until the kernel is idle and no cell shows [*]
        (at most `timeout_s`); returns the seconds it took. On timeout, says which cell still
        runs and what it showed."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        started = time.monotonic()
        self.menu("Run", "Run All Cells")
        try:
            self.page.wait_for_function(
                f"() => ({_RUN_ALL_DONE})(document.querySelector('{PANEL}'))",
                timeout=timeout_s * 1000,
                polling=500,
            )
        except PlaywrightTimeout:
            cells = self.cells()
            running = [c for c in cells if "*" in c.prompt]
            shown = "; ".join(_cut(o.text, 300) for o in running[0].outputs) if running else ""
            raise AssertionError(
                f"{self.name}: Run All did not finish within {timeout_s:.0f} s: "
                + (
                    f"{running[0].head} still runs ({len(running)} cells at [*]); it shows: "
                    f"{shown or '(nothing)'}"
                    if running
                    else "the kernel never went idle"
                )
            ) from None
        self.settle()
        return time.monotonic() - started

    def settle(self, timeout_s: float = 15.0) -> None:
        """Wait (bounded) until no widget output still reads "Loading widget..."."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(
                f"() => ({_WIDGETS_SETTLED})(document.querySelector('{PANEL}'))",
                timeout=timeout_s * 1000,
            )
        except PlaywrightTimeout:
            pass  # problems() reports the widget that never loaded

    def cells(self) -> list[CellView]:
        """Every cell as the page shows it, with its source and tags from the file (a cell added
        in the page: its source as the editor shows it)."""
        views = []
        for index, shown in enumerate(self.panel.evaluate(_SNAPSHOT)):
            saved = self.cells_json[index] if index < len(self.cells_json) else None
            views.append(
                CellView(
                    index=index,
                    kind=shown["kind"],
                    prompt=shown["prompt"],
                    source="".join(saved["source"]) if saved else shown["source"],
                    tags=list(saved.get("metadata", {}).get("tags", [])) if saved else [],
                    outputs=[OutputView(**o) for o in shown["outputs"]],
                )
            )
        return views

    def problems(self) -> list[str]:
        pattern = widget_repr()
        return [p for cell in self.cells() for p in cell.problems(pattern)]

    def index_of(self, predicate: Callable[[str], bool]) -> int:
        """The index of the first code cell whose source satisfies `predicate`."""
        for index, cell in enumerate(self.cells_json):
            if cell["cell_type"] == "code" and predicate("".join(cell["source"])):
                return index
        raise AssertionError(f"{self.name}: no code cell matches {predicate}")

    def cell(self, index: int) -> Any:
        return self.panel.locator(".jp-Notebook .jp-Cell").nth(index)

    def run_cell(self, index: int, timeout_s: float = 120.0) -> CellView:
        """Select cell `index` and press Shift+Enter, as a person does; wait for its number."""
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Shift+Enter")
        self._wait_ran(index, timeout_s)
        return self.cells()[index]

    def _wait_ran(self, index: int, timeout_s: float) -> None:
        prompt = self.cell(index).locator(".jp-InputPrompt")
        from playwright.sync_api import expect

        expect(prompt).to_have_text(re.compile(r"\[\d+\]:"), timeout=timeout_s * 1000)
        self.wait_idle(timeout_s)
        self.settle()

    def add_cell(self, code: str, timeout_s: float = 120.0) -> CellView:
        """Add a code cell below the last one, type `code` into it and run it (Ctrl+Enter: in
        place); return what it shows."""
        last = self.cell(self.count() - 1)
        last.scroll_into_view_if_needed()
        last.locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("b")  # command mode: insert a cell below
        index = self.count() - 1
        new = self.cell(index)
        new.locator(".cm-content").click()
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Control+Enter")
        self._wait_ran(index, timeout_s)
        return self.cells()[index]

    def save(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """Save (Ctrl+S, into the lab's copy), wait until the tab is no longer dirty, and return
        the notebook as saved."""
        self.page.keyboard.press("Escape")  # command mode (no editor keeps the keys)
        self.page.keyboard.press("Control+s")
        tab = self.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current")
        from playwright.sync_api import expect

        expect(tab).not_to_have_class(re.compile(r"\bjp-mod-dirty\b"), timeout=timeout_s * 1000)
        return json.loads(self.path.read_text())

    def count(self) -> int:
        return self.panel.locator(".jp-Notebook .jp-Cell").count()

    def screenshots(self, take: Callable[[Any, str], Path], name: str) -> list[Path]:
        """Screenshots of the whole notebook, one per screen (overlapping a little), top to
        bottom, down to its last cell."""
        scroller = self.panel.locator(".jp-WindowedPanel-outer")
        paths, top = [], 0
        while True:
            top, height, end = scroller.evaluate(_SCROLL_TO, top)
            self.page.evaluate(_NEXT_FRAMES)  # what scrolled in is painted
            paths.append(take(self.page, name))
            if top + height >= end:
                return paths
            top += max(height - 60, 200)
