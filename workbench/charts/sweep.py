"""The crash-point sweep as a heatmap: one row per journal boundary, one column per fault kind,
each cell coloured by whether every invariant held and annotated with the recovery time (and
the broken invariant, when one broke)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

PASSED_COLOR = "#66bb6a"
FAILED_COLOR = "#e53935"
NOT_RUN_COLOR = "#eeeeee"
"""Cells of a kind that does not apply at a boundary (a model fault at a step), or of a boundary
no fault can target."""


def sweep_heatmap(
    frame: pd.DataFrame,
    *,
    boundaries: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Draw a sweep's cases (`SweepReport.frame`: boundary, kind, passed, broken, recovery_s)
    as a boundary x kind grid: green where every invariant held, red where one broke (its name
    written in the cell), grey where nothing ran; each run cell shows the seconds from the crash
    to completion. `boundaries` and `kinds` fix the order (default: as they come); `labels`
    renames rows. Returns the Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    rows = list(boundaries) if boundaries is not None else list(dict.fromkeys(frame["boundary"]))
    cols = list(kinds) if kinds is not None else list(dict.fromkeys(frame["kind"]))
    if ax is None:
        height = 0.42 * max(len(rows), 1) + 1.3
        _, ax = plt.subplots(figsize=(1.9 * max(len(cols), 1) + 3.2, height))
    grid = np.full((len(rows), len(cols)), np.nan)
    cells: dict[tuple[int, int], Any] = {}
    for case in frame.itertuples():
        if case.boundary not in rows or case.kind not in cols:
            continue
        i, j = rows.index(case.boundary), cols.index(case.kind)
        grid[i, j] = 1.0 if bool(case.passed) else 0.0
        cells[i, j] = case
    colors = ListedColormap([FAILED_COLOR, PASSED_COLOR]).with_extremes(bad=NOT_RUN_COLOR)
    ax.imshow(np.ma.masked_invalid(grid), cmap=colors, vmin=0, vmax=1, aspect="auto")
    for (i, j), case in cells.items():
        seconds = case.recovery_s
        text = f"{seconds:.1f} s" if seconds is not None and pd.notna(seconds) else "n/a"
        if not bool(case.passed) and case.broken:
            text += "\n" + str(case.broken).replace(", ", "\n")
        ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color="#111111")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isnan(grid[i, j]):
                ax.text(j, i, "-", ha="center", va="center", fontsize=8, color="#9e9e9e")
    names = labels or {}
    ax.set_yticks(range(len(rows)), [names.get(r, r) for r in rows], fontsize=8.5)
    ax.set_xticks(range(len(cols)), cols, fontsize=8.5)
    ax.xaxis.tick_top()
    ax.set_xticks(np.arange(-0.5, len(cols), 1), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rows), 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    passed = int(frame["passed"].astype(bool).sum()) if len(frame) else 0
    ax.set_title(
        title or f"Crash-point sweep: {passed} of {len(frame)} cases kept every invariant",
        fontsize=10,
        pad=22,
    )
    ax.legend(
        handles=[
            Patch(color=PASSED_COLOR, label="every invariant held"),
            Patch(color=FAILED_COLOR, label="an invariant broke"),
            Patch(color=NOT_RUN_COLOR, label="not applicable"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7.5,
        frameon=False,
    )
    ax.figure.tight_layout()
    return ax
