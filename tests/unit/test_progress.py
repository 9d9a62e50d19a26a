"""The progress bar's HTML: its count, its state, and why it stopped before its end."""

from __future__ import annotations

import re

from workbench.progress import Progress

STATE = re.compile(r"data-state='(\w+)'")


def _html(bar: Progress) -> str:
    return bar._html()  # the markup the notebook shows (its display id is updated with it)


def test_a_bar_counts_and_is_done_at_its_total() -> None:
    bar = Progress(3, "claims", enabled=False)
    bar.update("paid")
    bar.update("rejected")
    assert STATE.search(_html(bar)).group(1) == "running"
    assert "<b>2/3</b> claims · 1 paid, 1 rejected" in _html(bar)
    bar.update("paid")
    assert STATE.search(_html(bar)).group(1) == "done"


def test_a_bar_stopped_early_says_why() -> None:
    bar = Progress(60, "items", enabled=False)
    bar.set(12, {"paid": 12})
    bar.stop("stopped waiting at 10 ended, as asked")
    shown = _html(bar)
    assert STATE.search(shown).group(1) == "stopped"
    assert "<b>12/60</b>" in shown and "<i>stopped waiting at 10 ended, as asked</i>" in shown
    bar.set(60)  # reaching the total later: done, the note no longer applies
    assert STATE.search(_html(bar)).group(1) == "done" and "<i>" not in _html(bar)
