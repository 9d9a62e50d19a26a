"""A trace as rows on one time axis: observations nested under their parents, each a bar placed
by its start and end relative to the trace's, with what a tooltip and a badge need."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from .._http import loads
from ._format import duration, score_value, tokens

_NICE_STEPS_S = [m * 10.0**e for e in range(-4, 5) for m in (1, 2, 5)]  # 0.1 ms .. 500000 s
MAX_TICKS = 8
MIN_WIDTH_PCT = 0.4
"""A bar never narrower than this, so an instant span stays visible and clickable."""


@dataclass
class Bar:
    id: str
    name: str
    type: str
    level: str
    depth: int
    left: float
    """Percent of the axis from the trace's start."""
    width: float
    """Percent of the axis."""
    start_ns: int
    end_ns: int | None
    duration: str
    offset: str
    """Start relative to the trace's start."""
    model: str | None = None
    usage: str = ""
    prompt_name: str | None = None
    prompt_version: int | None = None
    status_message: str | None = None
    version: str | None = None
    children: int = 0
    scores: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_error(self) -> bool:
        return self.level == "ERROR"

    @property
    def is_open(self) -> bool:
        """Still running when exported (no end time)."""
        return self.end_ns is None

    @property
    def tooltip(self) -> str:
        parts = [self.name or "(unnamed)", self.type, self.duration, f"at +{self.offset}"]
        if self.model:
            parts.append(f"model {self.model}")
        if self.usage:
            parts.append(f"tokens {self.usage}")
        if self.prompt_name:
            parts.append(f"prompt {self.prompt_name} v{self.prompt_version}")
        if self.level not in ("DEFAULT", "DEBUG"):
            parts.append(f"{self.level}: {self.status_message or ''}".rstrip(": "))
        for score in self.scores:
            parts.append(f"score {score['name']} = {score_value(score)}")
        return " · ".join(parts)


@dataclass(frozen=True)
class Tick:
    left: float
    label: str


def _tree_order(rows: list[sqlite3.Row]) -> list[tuple[sqlite3.Row, int, int]]:
    """(row, depth, number of children) in depth-first order, children by start time. An
    observation whose parent is not in the trace (not exported yet, or in another service) is
    shown as a root."""
    by_id = {row["id"]: row for row in rows}
    children: dict[str | None, list[sqlite3.Row]] = {}
    for row in rows:
        parent = row["parent_observation_id"]
        key = parent if parent in by_id and parent != row["id"] else None
        children.setdefault(key, []).append(row)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r["start_ns"], r["id"]))
    ordered: list[tuple[sqlite3.Row, int, int]] = []
    seen: set[str] = set()

    def walk(roots: list[sqlite3.Row]) -> None:
        stack = [(row, 0) for row in reversed(roots)]
        while stack:
            row, depth = stack.pop()
            if row["id"] in seen:
                continue
            seen.add(row["id"])
            kids = children.get(row["id"], [])
            ordered.append((row, depth, len(kids)))
            stack.extend((kid, depth + 1) for kid in reversed(kids))

    walk(children.get(None, []))
    leftovers = [row for row in rows if row["id"] not in seen]  # parent cycles: never lost
    walk(leftovers)
    return ordered


def _axis_label(seconds: float, step: float, span_s: float) -> str:
    """In ms below a second of span, else in s; with as many decimals as the step has."""
    if seconds == 0:
        return "0"
    scale, unit = (1000.0, "ms") if span_s < 1 else (1.0, "s")
    decimals = len(f"{step * scale:.6g}".partition(".")[2])
    return f"{seconds * scale:.{decimals}f} {unit}"


def ticks(span_s: float) -> list[Tick]:
    """Gridlines at a 1-2-5 step, at most MAX_TICKS + 1 of them."""
    if span_s <= 0:
        return [Tick(0.0, "0")]
    step = next((s for s in _NICE_STEPS_S if span_s / s <= MAX_TICKS), _NICE_STEPS_S[-1])
    out = []
    n = 0
    while n * step <= span_s * 1.0000001:
        out.append(Tick(100.0 * n * step / span_s, _axis_label(n * step, step, span_s)))
        n += 1
    return out


def build(
    rows: list[sqlite3.Row],
    start_ns: int,
    end_ns: int,
    scores: list[dict[str, Any]],
) -> tuple[list[Bar], list[Tick]]:
    """The rows of a trace's waterfall and the axis' gridlines."""
    span = max(end_ns - start_ns, 1_000_000)  # at least 1 ms, so one instant still has a width
    by_observation: dict[str, list[dict[str, Any]]] = {}
    for score in scores:
        if score.get("observationId"):
            by_observation.setdefault(score["observationId"], []).append(score)
    bars = []
    for row, depth, kids in _tree_order(rows):
        end = row["end_ns"]
        stop = end if end is not None else end_ns
        left = 100.0 * (row["start_ns"] - start_ns) / span
        width = max(100.0 * (stop - row["start_ns"]) / span, MIN_WIDTH_PCT)
        left = min(max(left, 0.0), 100.0 - MIN_WIDTH_PCT)
        usage = loads(row["usage_details"]) or {}
        bars.append(
            Bar(
                id=row["id"],
                name=row["name"] or "",
                type=row["type"],
                level=row["level"],
                depth=depth,
                left=round(left, 3),
                width=round(min(width, 100.0 - left), 3),
                start_ns=row["start_ns"],
                end_ns=end,
                duration=duration((end - row["start_ns"]) / 1e9) if end is not None else "open",
                offset=duration(max(0, row["start_ns"] - start_ns) / 1e9),
                model=row["model"],
                usage=tokens(usage),
                prompt_name=row["prompt_name"],
                prompt_version=row["prompt_version"],
                status_message=row["status_message"],
                version=row["version"],
                children=kids,
                scores=by_observation.get(row["id"], []),
            )
        )
    return bars, ticks(span / 1e9)
