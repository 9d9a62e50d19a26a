"""Notebooks are tutorials committed without outputs (CI executes them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_no_outputs_and_starts_with_objectives(path: Path) -> None:
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and c.get("outputs")]
    assert dirty == [], f"{path.name}: cells {dirty} have outputs; strip them before committing"
    assert "Learning objectives" in "".join(nb["cells"][0]["source"])


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found"
