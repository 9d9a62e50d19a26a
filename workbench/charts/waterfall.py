"""The trace waterfall: every span of a claim's trace on one time axis.

One row per observation, in tree order (a child under its parent, siblings by start time, the
name indented by depth), a bar from its start to its end coloured by type. Restate's own spans
(ingress, invocation attempts) are hatched grey, failed attempts (level ERROR) get a red edge and
a red cross, and steps that ran again after a failure are marked `retry k/n`. Generations show
their model, tokens and prompt version beside the bar.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["TYPE_COLORS", "waterfall", "waterfall_rows"]

TYPE_COLORS = {
    "GENERATION": "#7b1fa2",
    "AGENT": "#1565c0",
    "TOOL": "#ef6c00",
    "CHAIN": "#2e7d32",
    "SPAN": "#00838f",
    "EVENT": "#6d4c41",
    "RETRIEVER": "#ad1457",
    "EMBEDDING": "#5d4037",
    "EVALUATOR": "#827717",
    "GUARDRAIL": "#37474f",
}
OTHER_COLOR = "#757575"
RESTATE_COLOR = "#cfd8dc"
RESTATE_EDGE = "#455a64"
ERROR_COLOR = "#d50000"
RETRY_COLOR = "#e65100"


def _tree_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in depth-first order (children under their parent, by start), with `depth`."""
    frame = frame.sort_values(["start", "end"], kind="stable")
    ids = set(frame["id"])
    children: dict[Any, list[int]] = {}
    for index, parent in zip(frame.index, frame["parent"], strict=True):
        key = parent if isinstance(parent, str) and parent in ids else None
        children.setdefault(key, []).append(index)
    order: list[tuple[int, int]] = []
    seen: set[int] = set()

    def visit(index: int, depth: int) -> None:
        if index in seen:  # a malformed parent cycle: show each row once
            return
        seen.add(index)
        order.append((index, depth))
        for child in children.get(frame.at[index, "id"], []):
            visit(child, depth + 1)

    for root in children.get(None, []):
        visit(root, 0)
    for index in frame.index:  # rows only reachable through a cycle
        visit(index, 0)
    ordered = frame.loc[[i for i, _ in order]].copy()
    ordered["depth"] = [d for _, d in order]
    return ordered.reset_index(drop=True)


def waterfall_rows(observations: pd.DataFrame) -> pd.DataFrame:
    """The rows the waterfall draws: tree order, `depth`, and `offset_ms`/`length_ms` from the
    trace's first start."""
    from ..frames import mark_retries

    frame = observations.copy()
    if "retried" not in frame.columns:
        frame = mark_retries(frame)
    frame["end"] = frame["end"].fillna(frame["start"])
    frame = _tree_order(frame)
    origin = frame["start"].min()
    frame["offset_ms"] = (frame["start"] - origin).dt.total_seconds() * 1000.0
    frame["length_ms"] = (frame["end"] - frame["start"]).dt.total_seconds() * 1000.0
    return frame


def _note(row: Any) -> str:
    parts = [f"{row.length_ms:,.0f} ms" if row.length_ms >= 1 else f"{row.length_ms:.2f} ms"]
    if isinstance(row.model, str) and row.model:
        parts.append(row.model)
    if pd.notna(row.input_tokens) or pd.notna(row.output_tokens):
        tokens_in = int(row.input_tokens) if pd.notna(row.input_tokens) else 0
        tokens_out = int(row.output_tokens) if pd.notna(row.output_tokens) else 0
        parts.append(f"{tokens_in}\u2192{tokens_out} tok")
    if isinstance(row.prompt_name, str) and pd.notna(row.prompt_version):
        parts.append(f"{row.prompt_name} v{int(row.prompt_version)}")
    if row.retried:
        parts.append(f"retry {int(row.attempt)}/{int(row.attempts)}")
    return "  \u00b7  ".join(parts)


def _label(row: Any, width: int = 38) -> str:
    """The name, indented under its parent (a tree branch marks children)."""
    name = str(row.name) if isinstance(row.name, str) else "(unnamed)"
    if len(name) > width:
        name = name[: width - 1] + "\u2026"
    depth = int(row.depth)
    return name if depth == 0 else "    " * (depth - 1) + "\u2514 " + name


def _left_align_labels(ax: Any) -> None:
    """Left-align the y tick labels (so the indentation shows), padded by the widest one."""
    labels = ax.get_yticklabels()
    if not labels:
        return
    renderer = ax.figure.canvas.get_renderer()
    widest = max(label.get_window_extent(renderer).width for label in labels)
    for label in labels:
        label.set_horizontalalignment("left")
    ax.tick_params(axis="y", pad=widest * 72.0 / ax.figure.dpi + 4)


def _rows_to_draw(observations: pd.DataFrame, max_rows: int) -> tuple[pd.DataFrame, int]:
    """The rows of one trace to draw (at most `max_rows`) and how many were left out."""
    if not isinstance(observations, pd.DataFrame):
        raise TypeError(
            "waterfall() draws the DataFrame of wb.traces.get(...); got "
            f"{type(observations).__name__}. For a claim or a trace id, use "
            "wb.traces.waterfall(claim)."
        )
    if observations.empty:
        raise ValueError(
            "This trace has no observations to draw (yet): wait for it with "
            "wb.traces.wait(claim) and pass what it returns."
        )
    trace_ids = observations["trace_id"].dropna().unique()
    if len(trace_ids) > 1:
        raise ValueError(
            f"waterfall() draws one trace; these observations span {len(trace_ids)} traces. "
            "Filter the frame on one trace_id."
        )
    rows = waterfall_rows(observations)
    return rows.head(max_rows), max(0, len(rows) - max_rows)


def _draw_bars(ax: Any, rows: pd.DataFrame, min_width: float) -> None:
    """One bar per row (Restate's hatched grey, failures edged red and crossed), its note."""
    for y, row in enumerate(rows.itertuples()):
        failed = row.level == "ERROR"
        width = max(row.length_ms, min_width)
        if row.restate:
            face, edge, hatch = RESTATE_COLOR, RESTATE_EDGE, "///"
        else:
            face, edge, hatch = TYPE_COLORS.get(row.type, OTHER_COLOR), "none", None
        ax.barh(
            y,
            width,
            left=row.offset_ms,
            height=0.62,
            color=face,
            edgecolor=ERROR_COLOR if failed else edge,
            linewidth=2.2 if failed else 0.6,
            hatch=hatch,
            zorder=2,
            gid=f"obs-{row.id}",
        )
        end = row.offset_ms + width
        if failed:
            ax.plot(end, y, marker="X", color=ERROR_COLOR, markersize=9, zorder=3, gid="error")
        ax.annotate(
            _note(row),
            (end, y),
            xytext=(7 if failed else 4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7.5,
            color=RETRY_COLOR if row.retried else "#424242",
            fontstyle="italic" if row.retried else "normal",
        )


def _draw_axes(ax: Any, rows: pd.DataFrame, total_ms: float, min_width: float) -> None:
    """The tree of names on the y axis (failures red, Restate's grey), milliseconds on x."""
    ax.set_yticks(list(range(len(rows))), [_label(r) for r in rows.itertuples()], fontsize=8.5)
    for tick, row in zip(ax.get_yticklabels(), rows.itertuples(), strict=True):
        if row.level == "ERROR":
            tick.set_color(ERROR_COLOR)
        elif row.restate:
            tick.set_color(RESTATE_EDGE)
    _left_align_labels(ax)
    ax.set_ylim(len(rows) - 0.5, -0.7)
    ax.set_xlim(0, total_ms * 1.32 + min_width)
    ax.set_xlabel("milliseconds since the trace started")
    ax.grid(axis="x", color="#eeeeee", zorder=0)
    ax.spines[["top", "right"]].set_visible(False)


def _summary(rows: pd.DataFrame, hidden: int, total_ms: float) -> str:
    """ "18 observations, 900 ms, 2 failed, 2 steps retried (4 tries)"."""
    summary = f"{len(rows) + hidden} observations, {total_ms:,.0f} ms"
    errors = int((rows["level"] == "ERROR").sum())
    if errors:
        summary += f", {errors} failed"
    retried = rows[rows["retried"]]
    if len(retried):
        steps = retried["name"].nunique()
        summary += f", {steps} {'step' if steps == 1 else 'steps'} retried ({len(retried)} tries)"
    if hidden:
        summary += f" (first {len(rows)} shown)"
    return summary


def _legend(ax: Any, rows: pd.DataFrame) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [
        Patch(color=TYPE_COLORS.get(t, OTHER_COLOR), label=t)
        for t in sorted(set(rows.loc[~rows["restate"], "type"].dropna()))
    ]
    if rows["restate"].any():
        handles.append(
            Patch(facecolor=RESTATE_COLOR, edgecolor=RESTATE_EDGE, hatch="///", label="Restate")
        )
    if (rows["level"] == "ERROR").any():
        handles.append(
            Line2D([], [], marker="X", color=ERROR_COLOR, linestyle="none", label="ERROR")
        )
    if rows["retried"].any():
        handles.append(
            Line2D([], [], marker="$\u21bb$", color=RETRY_COLOR, linestyle="none", label="retried")
        )
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False
    )


def waterfall(
    observations: pd.DataFrame,
    *,
    ax: Any = None,
    max_rows: int = 80,
    title: str | None = None,
) -> Any:
    """Draw one trace's observations (the DataFrame of `wb.traces.get(...)`) as a waterfall;
    returns the Axes. `wb.traces.waterfall(claim)` reads the trace and calls this."""
    import matplotlib.pyplot as plt

    rows, hidden = _rows_to_draw(observations, max_rows)
    total_ms = float((rows["offset_ms"] + rows["length_ms"]).max() or 0.0)
    min_width = max(total_ms * 0.004, 0.05)
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 1.4 + 0.32 * len(rows)))
    _draw_bars(ax, rows, min_width)
    _draw_axes(ax, rows, total_ms, min_width)
    trace_id = str(rows["trace_id"].dropna().iloc[0]) if rows["trace_id"].notna().any() else "?"
    ax.set_title(
        title or f"Trace {trace_id}\n{_summary(rows, hidden, total_ms)}", fontsize=11, loc="left"
    )
    _legend(ax, rows)
    ax.figure.tight_layout()
    return ax
