"""The cluster's partition leadership over time: which node led each partition."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

NODE_COLORS = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037"]


def leadership_grid(snapshots: Sequence[pd.DataFrame], nodes: Sequence[str], ax: Any = None) -> Any:
    """One row per snapshot (its `moment`), one cell per partition, coloured by its leader; a
    partition without a leader is grey. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    partitions = sorted({int(p) for s in snapshots for p in s["partition"]})
    colors = {node: NODE_COLORS[i % len(NODE_COLORS)] for i, node in enumerate(nodes)}
    if ax is None:
        _, ax = plt.subplots(
            figsize=(max(4.0, 0.6 * len(partitions) + 2), 0.5 * len(snapshots) + 1.2)
        )
    for row, snapshot in enumerate(snapshots):
        leaders = {
            int(p): leader
            for p, leader in zip(snapshot["partition"], snapshot["leader"], strict=True)
        }
        for column, partition in enumerate(partitions):
            leader = leaders.get(partition)
            ax.add_patch(
                Rectangle((column, row), 0.95, 0.9, color=colors.get(str(leader), "#bdbdbd"))
            )
            if leader:
                ax.text(
                    column + 0.47,
                    row + 0.45,
                    str(leader).rsplit("-", 1)[-1],
                    ha="center",
                    va="center",
                    color="white",
                    fontsize=8,
                )
    ax.set_xlim(0, len(partitions))
    ax.set_ylim(len(snapshots), 0)
    ax.set_xticks([c + 0.47 for c in range(len(partitions))], [str(p) for p in partitions])
    ax.set_yticks(
        [r + 0.45 for r in range(len(snapshots))],
        [str(s["moment"].iloc[0]) if len(s) else "?" for s in snapshots],
    )
    ax.set_xlabel("partition")
    ax.set_title("Partition leaders (the number is the node)")
    ax.legend(
        handles=[Patch(color=c, label=n) for n, c in colors.items()],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        fontsize=8,
    )
    ax.spines[["top", "right", "left", "bottom"]].set_visible(False)
    return ax
