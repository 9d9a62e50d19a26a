"""Shared by every test run: notebooks executed by nbmake get a private workbench home (set for
the whole session, so it holds even when only notebooks are collected: nbmake items use no
fixtures), and the stack they started there is stopped at the end (tests leave nothing running)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_previous: str | None = None
_home: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _previous, _home
    _previous = os.environ.get("WORKBENCH_HOME")
    _home = Path(tempfile.mkdtemp(prefix="workbench-nb-"))
    os.environ["WORKBENCH_HOME"] = str(_home)  # notebook kernels inherit the environment


def pytest_unconfigure(config: pytest.Config) -> None:
    if _home is None:
        return
    try:
        if (_home / "stack.json").exists():
            from workbench import stack

            stack.stop(_home)
    finally:
        if _previous is None:
            os.environ.pop("WORKBENCH_HOME", None)
        else:
            os.environ["WORKBENCH_HOME"] = _previous
        shutil.rmtree(_home, ignore_errors=True)
