"""Charts of an experiment: two variants on the same documents, and every variant's accuracy.

cmp = exp.compare("production", "v3")
paired_scores(cmp.table, "production", "v3")     # each document's score under a and b
decision_matrix(cmp.table, "production", "v3")   # decisions under a (rows) and b (columns)
accuracy_bars(exp.results())                      # accuracy and mean score per variant
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .scores import PALETTE

__all__ = ["DECISION_ORDER", "accuracy_bars", "decision_matrix", "paired_scores", "wilson"]

DECISION_ORDER = ["approve", "reject", "review", "invalid", "failed"]
SAME, CHANGED = "#1565c0", "#ef6c00"


def _axes(ax: Any, size: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size)
    return ax


def _columns(table: pd.DataFrame, a: str, b: str, *names: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Pass the table of exp.compare(a, b); got {type(table).__name__}.")
    missing = [f"{n}_{v}" for n in names for v in (a, b) if f"{n}_{v}" not in table.columns]
    if missing:
        raise ValueError(
            f"The table has no column {missing[0]!r}: pass exp.compare({a!r}, {b!r}).table "
            "with the same two variants."
        )


def paired_scores(
    table: pd.DataFrame,
    a: str,
    b: str,
    *,
    summary: pd.DataFrame | None = None,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Each document as a point: its score under `a` (x) and under `b` (y). Above the diagonal
    `b` scored higher; orange points changed decision. The title gives the mean difference and
    its 95% interval when `summary` (the comparison's) is given. Returns the Axes."""
    _columns(table, a, b, "score", "decision")
    both = table.dropna(subset=[f"score_{a}", f"score_{b}"])
    if both.empty:
        raise ValueError(
            f"No document has a score under both {a!r} and {b!r} yet: wait for the judge "
            "(exp.wait()) and compare again."
        )
    ax = _axes(ax, (5.5, 5.5))
    x = both[f"score_{a}"].to_numpy(dtype=float)
    y = both[f"score_{b}"].to_numpy(dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.012, 0.012, size=(2, len(both)))
    changed = both["changed"].to_numpy(dtype=bool)
    for mask, color, label in ((~changed, SAME, "same decision"), (changed, CHANGED, "changed")):
        if mask.any():
            ax.scatter(
                x[mask] + jitter[0][mask],
                y[mask] + jitter[1][mask],
                s=36,
                color=color,
                alpha=0.8,
                edgecolor="white",
                linewidth=0.6,
                label=f"{label} ({int(mask.sum())})",
            )
    low = min(0.0, float(np.nanmin([x.min(), y.min()]))) - 0.05
    high = max(1.0, float(np.nanmax([x.max(), y.max()]))) + 0.05
    ax.plot([low, high], [low, high], color="#9e9e9e", linewidth=1, linestyle="--", zorder=0)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel(f"score under {a}")
    ax.set_ylabel(f"score under {b}")
    if title is None:
        title = f"{b} vs {a}: {len(both)} documents"
        if summary is not None and "mean score" in summary.index:
            row = summary.loc["mean score"]
            diff = row[f"{b} - {a}"]
            title += (
                f"\nmean difference {diff:+.3f} "
                f"[{row['95% CI low']:+.3f}, {row['95% CI high']:+.3f}] (95% CI)"
            )
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return ax


def _ordered(values: list[Any]) -> list[str]:
    present = {str(v) for v in values if v is not None and not pd.isna(v)}
    known = [d for d in DECISION_ORDER if d in present]
    return known + sorted(present - set(known))


def decision_matrix(table: pd.DataFrame, a: str, b: str, *, ax: Any = None) -> Any:
    """How many documents went from each decision under `a` (rows) to each under `b`
    (columns); the diagonal kept its decision. Returns the Axes."""
    _columns(table, a, b, "decision")
    da, db = table[f"decision_{a}"], table[f"decision_{b}"]
    labels = _ordered([*da, *db])
    if not labels:
        raise ValueError("No document has a decision under both variants yet.")
    counts = pd.crosstab(da, db).reindex(index=labels, columns=labels, fill_value=0)
    from matplotlib.patches import Rectangle

    ax = _axes(ax, (1.2 + 1.1 * len(labels), 1.0 + 0.9 * len(labels)))
    data = counts.to_numpy()
    ax.imshow(data, cmap="Blues", vmin=0, vmax=max(1, int(data.max())))
    for i in range(len(labels)):
        for j in range(len(labels)):
            value = int(data[i, j])
            color = "white" if value > data.max() / 2 else "#212121"
            weight = "bold" if i != j and value else "normal"
            ax.text(j, i, str(value), ha="center", va="center", color=color, fontweight=weight)
            if i == j:
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#9e9e9e", lw=1)
                )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel(f"decision under {b}")
    ax.set_ylabel(f"decision under {a}")
    changed = int(data.sum() - np.trace(data))
    ax.set_title(f"{changed} of {int(data.sum())} decisions changed")
    return ax


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (NaN for n = 0)."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def accuracy_bars(results: pd.DataFrame, *, ax: Any = None) -> Any:
    """Per variant: accuracy against the expected outcomes (95% Wilson interval) and the mean
    judge score (95% normal interval), side by side, with how many items each rests on.
    Returns the Axes."""
    if not isinstance(results, pd.DataFrame) or "variant" not in results.columns:
        raise TypeError("Pass the frame of exp.results().")
    variants = list(dict.fromkeys(results["variant"]))
    if not variants:
        raise ValueError("The experiment has no items yet.")
    ax = _axes(ax, (1.5 + 1.6 * len(variants), 4.0))
    width = 0.38
    for offset, (metric, color) in enumerate((("accuracy", PALETTE[0]), ("score", PALETTE[1]))):
        means, lows, highs, counts = [], [], [], []
        for variant in variants:
            rows = results[results["variant"] == variant]
            if metric == "accuracy":
                values = rows["correct"].dropna().astype(float)
                low, high = wilson(values.sum(), len(values))
            else:
                values = rows["score"].dropna().astype(float)
                half = 1.96 * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0
                low, high = values.mean() - half, values.mean() + half
            mean = values.mean() if len(values) else float("nan")
            means.append(mean)
            lows.append(mean - low if len(values) else 0)
            highs.append(high - mean if len(values) else 0)
            counts.append(len(values))
        xs = np.arange(len(variants)) + (offset - 0.5) * width
        label = "accuracy" if metric == "accuracy" else "mean judge score"
        ax.bar(xs, means, width, color=color, alpha=0.85, label=label)
        ax.errorbar(xs, means, yerr=[lows, highs], fmt="none", ecolor="#424242", capsize=3)
        for x, mean, n in zip(xs, means, counts, strict=True):
            if not math.isnan(mean):
                ax.text(x, 0.02, f"{mean:.2f}\nn={n}", ha="center", va="bottom", fontsize=7,
                        color="white")  # fmt: skip
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share correct / score")
    ax.set_title("Accuracy and judge score per variant (95% intervals)")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    return ax
