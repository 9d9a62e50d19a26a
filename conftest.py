"""Shared by every test run: notebooks executed by nbmake get a private workbench home, and the
stack they started is stopped at the end of the session (tests must leave nothing running)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def notebook_home():
    """Point notebooks' kernels (which inherit this environment) at a temporary home."""
    previous = os.environ.get("WORKBENCH_HOME")
    home = Path(tempfile.mkdtemp(prefix="workbench-nb-"))
    os.environ["WORKBENCH_HOME"] = str(home)
    try:
        yield home
    finally:
        if (home / "stack.json").exists():
            from workbench import stack

            stack.stop(home)
        if previous is None:
            os.environ.pop("WORKBENCH_HOME", None)
        else:
            os.environ["WORKBENCH_HOME"] = previous
