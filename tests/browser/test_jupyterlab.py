"""JupyterLab as people use it, in a real Chromium: every notebook survives Run > Run All Cells
with nothing a person would call broken (no error, no stderr block, every widget rendered as a
widget, every chart drawn), and the two widgets work when clicked: the failure panel of 02 and
the prompt-label switcher of 04.

One JupyterLab server serves all the tests of this module, over copies of notebooks/ (so outputs
never reach the repository); the kernels reach the stack of the session's WORKBENCH_HOME (the
root conftest stops it at the end). Each test shuts its kernels down; the server is stopped by
pid at the end of the module. Screenshots of every notebook, screen by screen, go to
test-output/browser/<test>/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import PROJECT
from .jupyterlab import JupyterLab, Notebook, widget_repr

NOTEBOOKS = sorted((PROJECT / "notebooks").glob("*.ipynb"))
RUN_ALL_TIMEOUT_S = 600.0
"""Bound of one notebook's Run All (the same as the notebook tests')."""
CLAIM_MS = 180_000
DELAY_S = 5.0
"""The panel's claim is slowed twice by this in `convert to EUR`: time to click the kills."""
PROGRESS = re.compile(r"data-state='(?!stopped)[^']*'[^>]*>.*?<b>(\d+)/(\d+)</b>", re.S)
"""The count of a progress bar as `workbench.progress` writes it (done/total), unless the bar
says it was stopped before its end on purpose (a wait `until=` some items, with its note)."""
"""How long the panel's claim may take, with its kills and restarts, before the test fails."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    folder = tmp_path_factory.mktemp("jupyterlab")
    root = folder / "notebooks"
    root.mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, root / path.name)
    server = JupyterLab(root, folder / "state")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def notebook(lab: JupyterLab, page: Any) -> Iterator[Callable[[str], Notebook]]:
    """`notebook("02_....ipynb")` opens that notebook in the page (a fresh workspace); its
    kernel is shut down after the test."""

    def open_notebook(name: str) -> Notebook:
        return Notebook(page, lab, name).open()

    try:
        yield open_notebook
    finally:
        lab.shut_down_kernels()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_run_all_shows_no_error_and_renders_every_widget_and_chart(
    path: Path,
    notebook: Callable[[str], Notebook],
    screenshot: Callable[[Any, str], Path],
    page_errors: list[str],
) -> None:
    nb = notebook(path.name)
    seconds = nb.run_all(RUN_ALL_TIMEOUT_S)
    cells = nb.cells()
    shots = nb.screenshots(screenshot, "screen")
    problems = nb.problems()
    code = [c for c in cells if c.kind == "code"]
    print(
        f"{path.stem}: Run All in {seconds:.1f} s; {len(code)} code cells, "
        f"{sum(c.images for c in cells)} images, {sum(c.widgets for c in cells)} widget parts, "
        f"{len(shots)} screenshots"
    )
    assert problems == [], f"{path.name} after Run All:\n" + "\n".join(problems)
    assert len(cells) == len(nb.cells_json), "the page shows another number of cells"
    try:
        saved = nb.save()
    finally:  # the next test opens the notebook as the repository has it, without outputs
        shutil.copy(path, nb.path)
    unfinished = [
        (index, bar)
        for index, cell in enumerate(saved["cells"])
        for output in cell.get("outputs", [])
        for bar in PROGRESS.findall("".join(output.get("data", {}).get("text/html", "")))
        if bar[0] != bar[1]
    ]
    assert unfinished == [], (
        f"progress bars saved before their end (cell, done/total): {unfinished}"
    )
    assert page_errors == []


def test_failure_panel_clicked_through_a_claim_with_kills_and_a_restart(
    notebook: Callable[[str], Notebook],
    screenshot: Callable[[Any, str], Path],
    page_errors: list[str],
) -> None:
    """Pick a sample, a slow step (delay, twice) and Submit; while the claim is in that step,
    Kill service, then Kill Restate, then Restart the services; the live status follows, and the
    outcome and the evidence appear."""
    from playwright.sync_api import expect

    from workbench import samples

    nb = notebook("02_failures_and_resumption.ipynb")
    nb.run_cell(nb.index_of(lambda s: "wb.start(" in s))
    index = nb.index_of(lambda s: "wb.faults.panel(" in s)
    shown = nb.run_cell(index)
    assert shown.widgets, f"the panel did not render as a widget: {shown.outputs}"
    panel = nb.cell(index).locator(".jp-OutputArea-output")
    panel.scroll_into_view_if_needed()
    page = nb.page

    def field(kind: str, label: str) -> Any:
        return panel.locator(kind, has=page.locator(f"label:text-is('{label}')"))

    def html(pattern: str) -> Any:
        return panel.locator(".widget-html").filter(has_text=re.compile(pattern))

    def shows(pattern: str, timeout_ms: float = 15_000) -> Any:
        """The panel's text part matching `pattern`, once it shows; else fail with what the
        panel's text parts say."""
        part = html(pattern)
        try:
            expect(part).to_have_count(1, timeout=timeout_ms)
        except AssertionError:
            said = [t[:300] for t in panel.locator(".widget-html").all_inner_texts() if t.strip()]
            raise AssertionError(f"the panel never showed {pattern!r}; it shows {said}") from None
        return part

    # a sample that any analyst version pays, other than the one the panel shows first
    sample = field(".widget-dropdown", "sample").locator("select")
    shown_first = sample.input_value()
    chosen = next(
        s
        for s in samples.pick(status="paid")
        if s.status_v2 == "paid" and not shown_first.startswith(f"{s.id}:")
    )
    options = sample.locator("option").all_text_contents()
    sample.select_option(label=next(o for o in options if o.startswith(f"{chosen.id}:")))
    field(".widget-dropdown", "step").locator("select").select_option("convert to EUR")
    field(".widget-dropdown", "fault").locator("select").select_option("delay")
    seconds = field(".widget-text", "seconds").locator("input")
    expect(seconds).to_be_enabled()  # delay takes seconds
    for label, value in (("times", "2"), ("seconds", f"{DELAY_S:g}")):
        box = field(".widget-text", label).locator("input")
        box.fill(value)
        box.press("Tab")  # a number box commits its value on change, as a person's Tab does
    shows("^delay: ")  # the help line says what the kind does
    screenshot(page, "panel-picked")

    buttons = panel.locator("button")
    buttons.filter(has_text="Submit").click()
    shows(f"^Submit(ting|ted) panel-[0-9a-f]+ with delay x2 at 'convert to EUR', {DELAY_S:g} s")
    status = html(r"^panel-[0-9a-f]+ · \d+\.\d s · status ")
    expect(status).to_contain_text("step convert to EUR", timeout=60_000)  # in the slow step
    buttons.filter(has_text="Kill service").click()
    shows(r"^Killed services \(pid \d+, SIGKILL\)")
    screenshot(page, "panel-service-killed")
    expect(status).to_contain_text(re.compile(r"processes [2-9]"), timeout=60_000)  # resumed
    buttons.filter(has_text="Kill Restate").click()
    shows(r"^Killed restate \(pid \d+, SIGKILL\)")
    buttons.filter(has_text="Restart").click()
    # the restart waits for Restate (killed just before) to register the services again
    shows(r"^Restarted services: pid \d+, ready", timeout_ms=CLAIM_MS)
    screenshot(page, "panel-restarted")

    outcome = shows(r"^PAID panel-[0-9a-f]+ · paid after \d+\.\d s", timeout_ms=CLAIM_MS)
    customer = outcome.locator("tr", has=page.locator("td:text-is('customer')"))
    expect(customer).to_contain_text(chosen.expected["customer_id"])
    elapsed = float(re.findall(r"paid after (\d+\.\d) s", outcome.inner_text())[0])
    assert elapsed >= 2 * DELAY_S, f"the outcome reads {elapsed} s, shorter than its two delays"
    expect(status).to_contain_text("status paid")
    report = panel.locator("table.wb-table", has=page.locator("th:text-is('replayed')"))
    expect(report).to_have_count(1)
    expect(panel).to_contain_text("Resumption report")
    row = report.locator("tr", has=page.locator("td:text-is('convert to EUR')"))
    expect(row).to_contain_text("faults: delay x2")  # the second delay: a try after the kill
    expect(status).to_contain_text(re.compile(r"attempts [2-9]\d* \(Restate retries [1-9]"))
    expect(panel).to_contain_text("Payment attempts")
    journal = panel.locator("table.wb-table", has=page.locator("th:text-is('kind')"))
    expect(journal).to_have_count(1)
    processes = panel.locator("table.wb-table", has=page.locator("th:text-is('restarts')"))
    for name in ("restate", "services"):
        restarts = processes.locator("tr", has=page.locator(f"td:text-is('{name}')"))
        assert int(restarts.locator("td").last.inner_text()) >= 1, f"{name} never restarted"
    screenshot(page, "panel-outcome")
    assert _problems_of_cells_run(nb) == []
    assert page_errors == []


def test_label_switcher_promotes_and_follows_code(
    notebook: Callable[[str], Notebook],
    screenshot: Callable[[Any, str], Path],
    page_errors: list[str],
) -> None:
    from playwright.sync_api import expect

    from workbench import stack
    from workbench.session import Session

    name = "claim-analyst"
    nb = notebook("04_prompt_labels.ipynb")
    nb.run_cell(nb.index_of(lambda s: "wb.start(" in s))
    session = Session.of_stack(stack.attach())  # the kernel's stack, from this process
    before = _production(session, name)
    assert before is not None, f"{name} has no production version after the first cell"
    target = next(v for v in session.prompts.list(name)["version"] if v != before)
    try:
        index = nb.index_of(lambda s: "wb.prompts.switcher(" in s)
        shown = nb.run_cell(index)
        assert shown.widgets, f"the switcher did not render as a widget: {shown.outputs}"
        switcher = nb.cell(index).locator(".jp-OutputArea-output")
        switcher.scroll_into_view_if_needed()

        def row(version: int) -> Any:
            return switcher.locator("tr", has=nb.page.locator(f"td:text-is('v{version}')"))

        expect(row(before)).to_contain_text("production")
        version = switcher.locator(
            ".widget-dropdown", has=nb.page.locator("label:text-is('version')")
        ).locator("select")
        options = version.locator("option").all_text_contents()
        version.select_option(label=next(o for o in options if o.split()[0] == f"v{target}"))
        label = switcher.locator(".widget-text", has=nb.page.locator("label:text-is('label')"))
        label.locator("input").fill("production")
        switcher.locator("button", has_text="Promote").click()
        expect(switcher).to_contain_text(f"{name}: production is now v{before} \u2192 v{target}")
        expect(row(target)).to_contain_text("production")
        expect(row(before)).not_to_contain_text("production")
        screenshot(nb.page, "promoted-by-click")

        asked = nb.add_cell(f'wb.prompts.labels("{name}")["production"]')
        assert asked.outputs and f"['{name} v{target}']" in asked.outputs[0].text, (
            f"the kernel sees production elsewhere: {[o.text for o in asked.outputs]}"
        )
        assert _production(session, name) == target

        nb.add_cell(f'wb.prompts.promote("{name}", {before}, "production");')
        expect(row(before)).to_contain_text("production")  # the switcher followed the code
        expect(row(target)).not_to_contain_text("production")
        screenshot(nb.page, "moved-back-by-code")
        assert _problems_of_cells_run(nb) == []
        assert page_errors == []
    finally:
        session.prompts.promote(name, int(before), "production")  # as the notebook leaves it


def _problems_of_cells_run(nb: Notebook) -> list[str]:
    pattern = widget_repr()
    return [p for cell in nb.cells() if cell.ran for p in cell.problems(pattern)]


def _production(session: Any, name: str) -> int | None:
    frame = session.prompts.list(name)
    versions = [int(r.version) for r in frame.itertuples() if "production" in r.labels]
    return versions[0] if versions else None


def test_run_all_checks_catch_what_a_person_would_call_broken(
    lab: JupyterLab, notebook: Callable[[str], Notebook]
) -> None:
    """The checks above can fail: a notebook with a stderr block, a widget printed as text, a
    chart printed as text, an error (after which nothing runs), beside a widget and a chart that
    render and a cell tagged raises-exception."""
    import nbformat

    cell = nbformat.v4.new_code_cell
    broken = nbformat.v4.new_notebook()
    broken.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    broken.cells = [
        cell("import sys\nprint('careful', file=sys.stderr)"),
        cell("import ipywidgets\nprint(repr(ipywidgets.VBox()))"),
        cell("ipywidgets.IntSlider(description='fine')"),
        cell("print('<Figure size 640x480 with 1 Axes>')"),
        cell("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2]);"),
        cell("raise ValueError('expected')", metadata={"tags": ["raises-exception"]}),
        cell("1 / 0"),
        cell("print('after the error')"),
    ]
    nbformat.write(broken, lab.root / "zz_broken.ipynb")
    try:
        nb = notebook("zz_broken.ipynb")
        nb.run_all(timeout_s=120)
        problems = nb.problems()
    finally:
        (lab.root / "zz_broken.ipynb").unlink()
    expected = [
        r"^cell 0 \[1\]: 'import sys': shows an error or stderr block: careful$",
        r"^cell 1 \[2\]: 'import ipywidgets': a widget printed as text: VBox\(",
        r"^cell 3 \[4\]: .*: a chart printed as text: <Figure size 640x480 with 1 Axes>$",
        r"^cell 6 \[7\]: '1 / 0': shows an error or stderr block: .*ZeroDivisionError: division",
        r"^cell 7 \[ \]: .*: never ran \(Run All stopped before it\)$",
    ]
    assert len(problems) == len(expected), "\n".join(problems)
    for problem, pattern in zip(problems, expected, strict=True):
        assert re.search(pattern, problem), f"{problem!r} does not match {pattern!r}"
    cells = nb.cells()
    assert cells[2].widgets and cells[4].images  # the widget and the chart that work
