"""Charts of judge scores: how a prompt version, a label or a service version scores.

df = wb.scores.get(batch)
wb.scores.chart(df, by="prompt_version")      # box + every score + the mean, per version
wb.scores.over_time(df, by="prompt_label")    # each score in time, with a rolling mean
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["GROUPINGS", "score_chart", "scores_over_time"]

GROUPINGS = {
    "prompt_version": "analyst prompt version",
    "prompt_label": "prompt label",
    "service_version": "service version",
}
PALETTE = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#827717"]
UNKNOWN = "unknown"
UNKNOWN_COLOR = "#9e9e9e"


def _color(i: int, group: str) -> str:
    return UNKNOWN_COLOR if group == UNKNOWN else PALETTE[i % len(PALETTE)]


def _check(frame: pd.DataFrame, by: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"Pass the DataFrame of wb.scores.get(...); got {type(frame).__name__}.")
    missing = [c for c in ("value", by) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"The scores frame has no column {missing[0]!r}: group by one of "
            f"{', '.join(c for c in GROUPINGS if c in frame.columns) or 'its columns'} "
            "(a frame from wb.scores.get() has them all)."
        )
    if frame["value"].dropna().empty:
        raise ValueError(
            "There are no scores to chart: submit claims, then wait for the judge with "
            "wb.scores.wait(claims) and pass what it returns."
        )


def _group_names(frame: pd.DataFrame, by: str) -> pd.Series:
    """Readable group names (v1, v2, production, unknown), as an ordered categorical."""
    column = frame[by]
    if by == "prompt_version" or pd.api.types.is_numeric_dtype(column):
        numbers = pd.to_numeric(column, errors="coerce")
        order = sorted(numbers.dropna().unique())
        prefix = "v" if by == "prompt_version" else ""
        names = numbers.map(lambda v: UNKNOWN if pd.isna(v) else f"{prefix}{int(v)}")
        categories = [f"{prefix}{int(v)}" for v in order]
    else:
        names = column.map(lambda v: UNKNOWN if v is None or pd.isna(v) else str(v))
        categories = sorted(set(names) - {UNKNOWN})
    if (names == UNKNOWN).any():
        categories.append(UNKNOWN)
    return pd.Series(pd.Categorical(names, categories=categories), index=frame.index)


def _score_name(frame: pd.DataFrame) -> str:
    names = frame["name"].dropna().unique() if "name" in frame.columns else []
    return str(names[0]) if len(names) == 1 else "score"


def score_chart(
    scores: pd.DataFrame,
    by: str = "prompt_version",
    *,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """The distribution of scores per group (`prompt_version`, `prompt_label`,
    `service_version` or any column): a box, every score as a dot, the mean as a diamond with
    its value and the count. Returns the Axes."""
    import matplotlib.pyplot as plt

    _check(scores, by)
    frame = scores.dropna(subset=["value"]).copy()
    frame["group"] = _group_names(frame, by)
    groups = [g for g in frame["group"].cat.categories if (frame["group"] == g).any()]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(groups) + 2), 4))
    values = [frame.loc[frame["group"] == g, "value"].astype(float).to_numpy() for g in groups]
    positions = np.arange(1, len(groups) + 1)
    boxes = ax.boxplot(
        values,
        positions=positions,
        widths=0.5,
        patch_artist=True,
        showfliers=False,
        medianprops={"color": "#212121"},
    )
    rng = np.random.default_rng(0)  # the same jitter every time
    for i, (box, data) in enumerate(zip(boxes["boxes"], values, strict=True)):
        color = _color(i, groups[i])
        box.set_facecolor(color)
        box.set_alpha(0.25)
        jitter = rng.uniform(-0.16, 0.16, size=len(data))
        ax.scatter(
            positions[i] + jitter, data, s=18, color=color, alpha=0.8, zorder=3, linewidths=0
        )
        mean = float(np.mean(data))
        ax.scatter(
            [positions[i]], [mean], marker="D", s=60, color="white", edgecolor="#212121", zorder=4
        )
        ax.annotate(
            f"mean {mean:.2f}\nn={len(data)}",
            (positions[i] + 0.3, mean),
            va="center",
            fontsize=8,
        )
    ax.set_xticks(positions, [str(g) for g in groups])
    ax.set_xlim(0.4, len(groups) + 0.9)
    low, high = frame["value"].min(), frame["value"].max()
    if 0 <= low and high <= 1:
        ax.set_ylim(-0.05, 1.08)
    name = _score_name(frame)
    ax.set_ylabel(f"{name} score")
    ax.set_xlabel(GROUPINGS.get(by, by))
    ax.set_title(title or f"Judge {name} by {GROUPINGS.get(by, by)} ({len(frame)} scores)")
    ax.grid(axis="y", color="#eeeeee", zorder=0)
    ax.spines[["top", "right"]].set_visible(False)
    ax.figure.tight_layout()
    return ax


def scores_over_time(
    scores: pd.DataFrame,
    by: str = "prompt_version",
    *,
    window: int = 5,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Each score at its time, coloured by group, with the rolling mean of the last `window`
    scores of that group as a line (a promotion shows as one line taking over from another).
    Returns the Axes."""
    import matplotlib.pyplot as plt

    _check(scores, by)
    if "timestamp" not in scores.columns:
        raise ValueError("The scores frame has no 'timestamp' column; pass wb.scores.get().")
    if window < 1:
        raise ValueError(f"window must be at least 1 score; got {window}.")
    frame = scores.dropna(subset=["value", "timestamp"]).copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["group"] = _group_names(frame, by)
    frame = frame.sort_values("timestamp", kind="stable")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    groups = [g for g in frame["group"].cat.categories if (frame["group"] == g).any()]
    for i, group in enumerate(groups):
        part = frame[frame["group"] == group]
        color = _color(i, group)
        times = part["timestamp"].dt.tz_convert(None)
        ax.scatter(times, part["value"], s=20, color=color, alpha=0.6, linewidths=0, zorder=3)
        rolling = part["value"].astype(float).rolling(window, min_periods=1).mean()
        ax.plot(
            times,
            rolling,
            color=color,
            linewidth=2,
            zorder=4,
            label=f"{group} (n={len(part)}, mean {part['value'].mean():.2f})",
        )
    _time_axis(ax, frame["timestamp"])
    low, high = frame["value"].min(), frame["value"].max()
    if 0 <= low and high <= 1:
        ax.set_ylim(-0.05, 1.08)
    name = _score_name(frame)
    ax.set_ylabel(f"{name} score")
    first = frame["timestamp"].min()
    ax.set_xlabel(f"time of the score (UTC, from {first:%Y-%m-%d %H:%M})")
    ax.set_title(
        title or f"Judge {name} over time by {GROUPINGS.get(by, by)} (rolling mean of {window})"
    )
    ax.legend(title=GROUPINGS.get(by, by), fontsize=8, loc="best", framealpha=0.85)
    ax.grid(color="#eeeeee", zorder=0)
    ax.spines[["top", "right"]].set_visible(False)
    ax.figure.tight_layout()
    return ax


def _time_axis(ax: Any, times: pd.Series) -> None:
    """Clock times on the x axis, whatever the span: H:M:S within a day, dates beyond (never the
    bare "25, 30, 35" of seconds that a concise date formatter shows for a minute's data)."""
    import matplotlib.dates as mdates

    span = times.max() - times.min()
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=7))
    fmt = "%H:%M:%S" if span < pd.Timedelta(hours=1) else "%H:%M"
    if span >= pd.Timedelta(days=1):
        fmt = "%b %d %H:%M"
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt))
    for label in ax.get_xticklabels():
        label.set_rotation(0)
