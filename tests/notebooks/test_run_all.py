"""Every notebook survives Run All: all cells queued at once, as JupyterLab sends them."""

from __future__ import annotations

from pathlib import Path

import pytest

from .runall import run_all

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
RUN_ALL_TIMEOUT_S = 600.0


@pytest.mark.integration
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_run_all_finishes_without_errors(path: Path) -> None:
    result = run_all(path, timeout_s=RUN_ALL_TIMEOUT_S)
    assert result.problems() == [], "\n".join(result.problems())
    assert left_behind() == [], f"{path.name} leaves this behind for the next notebook"


def left_behind() -> list[str]:
    """What a notebook left in the stack that would change a later notebook's output: claims not
    finished (waiting for review, paused, running) and faults armed for claims to come. Nothing,
    when no stack runs in the home (the notebook did not start one)."""
    from services import names
    from workbench import Session
    from workbench._aio import run_sync
    from workbench.stack import attach

    stack = attach()
    if stack is None:
        return []
    session = Session.of_stack(stack)
    unfinished = run_sync(
        session.restate.invocations(service=names.WORKFLOW, handler=names.RUN, unfinished=True)
    )
    ids = [str(row["target_service_key"]) for row in unfinished]
    left = [f"claim {c.id} ({c.status})" for c in session.claims.get(ids)] if ids else []
    armed = [p for p in session.fault_store.plans(None) if p.claim_id is None and p.claims_left]
    left += [f"fault {p.kind} at {p.step!r} armed for {p.claims_left} claim(s)" for p in armed]
    return left


def test_queued_cell_runs_while_a_helper_waits(tmp_path: Path) -> None:
    """The smallest Run All: a cell that blocks in a sync helper (a coroutine run to completion
    from a cell) and a second cell queued behind it. With a helper that re-enters the kernel's
    loop, the second cell never runs; here it must, after the first."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import asyncio\nfrom workbench._aio import run_sync\n"
            "async def slow():\n    await asyncio.sleep(0.5)\n    return 'first'\n"
            "print(run_sync(slow()))"
        ),
        nbformat.v4.new_code_cell("print('next')"),
        nbformat.v4.new_code_cell(
            "async def mine():\n    return run_sync(slow())\n"
            "print(await mine())"  # a sync helper called from the user's own async code
        ),
    ]
    path = tmp_path / "queued.ipynb"
    nbformat.write(notebook, path)
    result = run_all(path, timeout_s=60)
    assert result.problems() == [], "\n".join(result.problems())
    texts = ["".join(o.get("text", "") for o in cell.outputs) for cell in result.cells]
    assert texts == ["first\n", "next\n", "first\n"]
