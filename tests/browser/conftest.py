"""Real-browser tests: Playwright (Python) driving the system's Chromium (Debian's `chromium`
package); Playwright's own browser download is never used.

Fixtures:
- `browser`: one headless Chromium for the tests of this folder (skipped, saying why, when
  Chromium or Playwright is missing);
- `context` / `page`: a fresh browser context (cookies, storage) and page per test;
- `screenshot(page, name)`: saves a full-page PNG into the test's output folder,
  `test-output/browser/<test name>/` (ignored by git; `WORKBENCH_TEST_OUTPUT` moves it), and a
  failing test leaves `failure.png` there.

Chromium is found at `WORKBENCH_CHROMIUM`, else `chromium` / `chromium-browser` on PATH, else
/usr/bin/chromium. `.ci/run` installs it (apt-get install -y chromium) so CI always runs these.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Flags for a closed network and a root user (CI containers): no sandbox, no calls home."""
PROJECT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("WORKBENCH_TEST_OUTPUT") or PROJECT / "test-output")
ACTION_TIMEOUT_MS = 15_000
"""How long a click or an expectation waits for the page before failing (not a sleep)."""


def chromium_path() -> str | None:
    """The Chromium executable to drive, or None when there is none."""
    configured = os.environ.get("WORKBENCH_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_FAILED] = report.failed


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    # Package scope, not session: Playwright's sync API keeps an event loop running in this
    # thread while it is open, which would stop later asyncio tests (pytest-asyncio) from running.
    executable = chromium_path()
    if executable is None:
        configured = os.environ.get("WORKBENCH_CHROMIUM")
        where = (
            f"WORKBENCH_CHROMIUM={configured} is not an executable"
            if configured
            else "Chromium not found"
        )
        pytest.skip(
            f"{where}, so the browser tests are skipped: install it "
            "(Debian/Ubuntu: apt-get install -y chromium) or set WORKBENCH_CHROMIUM to its path."
        )
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip(
            "Playwright is not installed, so the browser tests are skipped: run make setup."
        )
    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh, temporary user-data dir (removed at close).
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """This test's output folder (emptied first, so what is there comes from this run)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = OUTPUT / "browser" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    ctx.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught script errors of `page` and the errors its console shows (a blocked script, a
    policy violation), in order; a test asserts there are none. HTTP error statuses, which the
    console also reports, are left out: tests assert those on the page."""
    return []


def _console_error(message: Any) -> str | None:
    if message.type != "error" or message.text.startswith("Failed to load resource"):
        return None
    return f"console: {message.text}"


@pytest.fixture
def page(
    context: Any, output_dir: Path, page_errors: list[str], request: pytest.FixtureRequest
) -> Iterator[Any]:
    opened = context.new_page()
    opened.on("pageerror", lambda error: page_errors.append(str(error)))
    opened.on(
        "console",
        lambda message: page_errors.extend(filter(None, [_console_error(message)])),
    )
    try:
        yield opened
    finally:
        if request.node.stash.get(_FAILED, False):
            opened.screenshot(path=str(output_dir / "failure.png"), full_page=True)
        opened.close()


@pytest.fixture
def screenshot(output_dir: Path) -> Callable[[Any, str], Path]:
    """`screenshot(page, "traces")` saves `NN-traces.png` (numbered in order) and returns it."""
    taken: list[Path] = []

    def take(target: Any, name: str) -> Path:
        path = output_dir / f"{len(taken) + 1:02d}-{name}.png"
        target.screenshot(path=str(path), full_page=True)
        taken.append(path)
        return path

    return take
