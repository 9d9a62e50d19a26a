"""Charts a notebook shows: pictures where a table would hide the pattern."""

from __future__ import annotations

from typing import Any

import pandas as pd

STATUS_COLORS = {
    "paid": "#2e7d32",
    "rejected": "#c62828",
    "awaiting review": "#f9a825",
    "invalid": "#6d4c41",
    "failed": "#4a148c",
    "running": "#1565c0",
}


def outcome_bars(frame: pd.DataFrame, ax: Any = None) -> Any:
    """Claims per status, with the EUR paid written on the bar."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    counts = frame.groupby("status").agg(claims=("id", "count"), paid=("paid_eur", "sum"))
    counts = counts.sort_values("claims", ascending=False)
    colors = [STATUS_COLORS.get(s, "#757575") for s in counts.index]
    bars = ax.bar(counts.index, counts["claims"], color=colors)
    for bar, paid in zip(bars, counts["paid"], strict=True):
        if paid:
            ax.annotate(
                f"{paid:,.0f} EUR",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_ylabel("claims")
    ax.set_title(f"Outcomes of {len(frame)} claims")
    ax.spines[["top", "right"]].set_visible(False)
    return ax
