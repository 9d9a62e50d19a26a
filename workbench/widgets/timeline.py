"""A claim on one time axis (ipywidgets 8 + SVG): what Restate journaled, the workflow's
attempts and the processes they ran in, the faults that fired, the wait for a human, the trace's
spans and generations, and the judge's score. Hover a bar for its detail, or pick it in the list
below; while the claim runs, the view refreshes itself.

    wb.timeline(claim)          # or wb.claims.timeline(claim), claim.timeline()
"""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd

from ..frames import LANES
from .tables import note

if TYPE_CHECKING:
    from ..claims import Claims

__all__ = ["Timeline", "svg"]

LANE_COLORS = {
    "journal": "#1565c0",
    "attempts": "#546e7a",
    "faults": "#d50000",
    "review": "#f9a825",
    "trace": "#7b1fa2",
    "judge": "#2e7d32",
}
WIDTH, LABEL_W, ROW_H, PAD = 960, 90, 14, 6
"""Pixels: the drawing, the lane labels, one row of bars, the space between lanes."""


def _packed(lane: pd.DataFrame, scale: float, origin: float) -> list[tuple[Any, int]]:
    """Each item of a lane with the row it goes on (greedy: the first row where it fits)."""
    ends: list[float] = []
    placed = []
    for item in lane.itertuples():
        x0 = (item.start - origin) * scale
        x1 = x0 + max(((item.end or item.start) - item.start) * scale, 6.0)
        row = next((i for i, end in enumerate(ends) if end <= x0), len(ends))
        if row == len(ends):
            ends.append(x1)
        else:
            ends[row] = x1
        placed.append((item, row))
    return placed


def svg(frame: pd.DataFrame, *, now: float | None = None) -> str:
    """The timeline as SVG: one band per lane, bars for spans of time, diamonds for instants,
    a red outline for failures, a `<title>` (the hover text) on each."""
    if frame.empty:
        return note("Nothing recorded for this claim yet.")
    origin = float(frame["start"].min())
    last = float(pd.concat([frame["start"], frame["end"].dropna()]).max())
    if now is not None and (frame["status"] == "running").any():
        last = max(last, now)
    span = max(last - origin, 0.05)
    scale = (WIDTH - LABEL_W - 20) / span
    parts, y = [], 18
    for lane in LANES:
        items = frame[frame["lane"] == lane]
        if items.empty:
            continue
        placed = _packed(items, scale, origin)
        rows = max(r for _, r in placed) + 1
        height = rows * ROW_H
        parts.append(
            f"<text x='4' y='{y + min(height, ROW_H) - 3}' font-size='11' fill='#424242'>"
            f"{lane}</text>"
            f"<line x1='{LABEL_W}' x2='{WIDTH}' y1='{y + height + PAD / 2}' "
            f"y2='{y + height + PAD / 2}' stroke='#eeeeee'/>"
        )
        for item, row in placed:
            parts.append(
                _shape(item, LABEL_W + (item.start - origin) * scale, y + row * ROW_H, scale)
            )
        y += height + PAD
    ticks = _ticks(span)
    for t in ticks:
        x = LABEL_W + t * scale
        parts.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='12' y2='{y}' stroke='#f0f0f0'/>"
            f"<text x='{x:.1f}' y='10' font-size='9' fill='#757575' text-anchor='middle'>"
            f"{t:g} s</text>"
        )
    body = "".join(parts[len(parts) - len(ticks) :] + parts[: len(parts) - len(ticks)])
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{y + 4}' "
        f"class='wb-timeline' style='font-family:sans-serif'>{body}</svg>"
    )


def _shape(item: Any, x: float, y: float, scale: float) -> str:
    color = LANE_COLORS.get(item.lane, "#757575")
    title = f"<title>{html.escape(item.detail or item.label)}</title>"
    edge = "stroke='#d50000' stroke-width='2'" if item.status == "error" else "stroke='none'"
    if item.end is None or pd.isna(item.end):
        cx, cy = x, y + ROW_H / 2 - 1
        points = f"{cx},{cy - 5} {cx + 5},{cy} {cx},{cy + 5} {cx - 5},{cy}"
        return f"<g class='wb-item'><polygon points='{points}' fill='{color}' {edge}/>{title}</g>"
    width = max((item.end - item.start) * scale, 2.0)
    opacity = "0.55" if item.status == "running" else "0.85"
    label = html.escape(item.label if width > 60 else "")
    return (
        f"<g class='wb-item'><rect x='{x:.1f}' y='{y:.1f}' width='{width:.1f}' "
        f"height='{ROW_H - 3}' rx='2' fill='{color}' fill-opacity='{opacity}' {edge}/>"
        f"<text x='{x + 3:.1f}' y='{y + ROW_H - 5:.1f}' font-size='9' fill='white'>"
        f"{label[: int(width / 5)]}</text>{title}</g>"
    )


def _ticks(span: float) -> list[float]:
    step = (
        next(
            s
            for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300, 600, 3600)
            if span / s <= 10
        )
        if span < 36000
        else 3600.0
    )
    return [round(i * step, 6) for i in range(int(span / step) + 1)]


class Timeline(widgets.VBox):
    """One claim on one time axis, refreshed while it runs. Its parts are attributes, so it can
    be driven headless: `frame` (the rows), `chart` (the SVG), `items` (the list), `detail`,
    `refresh()`, `stop()`."""

    def __init__(
        self, claims: Claims, claim_id: str, *, live: bool = True, refresh_s: float = 1.0
    ) -> None:
        self._claims = claims
        self.claim_id = claim_id
        self.refresh_s = refresh_s
        self.frame = pd.DataFrame()
        self.header = widgets.HTML()
        self.chart = widgets.HTML()
        self.items = widgets.Select(
            description="detail", rows=6, layout=widgets.Layout(width="480px")
        )
        self.detail = widgets.HTML()
        self.reload = widgets.Button(description="Refresh", icon="refresh")
        self.items.observe(self._on_pick, "value")
        self.reload.on_click(lambda _: self.refresh())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__(
            [self.header, self.chart, widgets.HBox([self.items, self.detail]), self.reload]
        )
        self.refresh()
        if live and not self._settled():
            self._thread = threading.Thread(target=self._follow, daemon=True, name=claim_id)
            self._thread.start()

    def _settled(self) -> bool:
        """Nothing more will come: the claim ended and its score landed (or it cannot)."""
        claim = getattr(self, "claim", None)
        if claim is None or not claim.done:
            return False
        return (self.frame["lane"] == "judge").any() or claim.outcome is None

    def refresh(self) -> None:
        """Read the claim, its journal, its records, its trace and its score again."""
        try:
            self.claim, self.frame = self._claims.timeline_frame(self.claim_id)
        except Exception as e:  # shown in the widget: a thread or callback has no one to raise to
            self.header.value = note(f"{self.claim_id}: {type(e).__name__}: {e}", "#b00")
            return
        now = time.time()
        status = html.escape(self.claim.status)
        self.header.value = (
            f"<b>{html.escape(self.claim_id)}</b> · {status} · step "
            f"{html.escape(self.claim.step)} · {len(self.frame)} events"
        )
        self.chart.value = svg(self.frame, now=now)
        origin = float(self.frame["start"].min()) if len(self.frame) else now
        picked = self.items.value
        self.items.options = [
            (f"+{r.start - origin:6.2f} s  {r.lane}: {r.label}", i)
            for i, r in enumerate(self.frame.itertuples())
        ]
        if picked is not None and picked < len(self.frame):
            self.items.value = picked

    def _on_pick(self, _: Any = None) -> None:
        if self.items.value is None or self.items.value >= len(self.frame):
            return
        item = self.frame.iloc[self.items.value]
        self.detail.value = (
            "<pre style='white-space:pre-wrap;font-size:11px;margin:0'>"
            f"{html.escape(str(item['detail']))}</pre>"
        )

    def _follow(self) -> None:
        deadline = time.monotonic() + 3600.0
        while not self._stop.wait(self.refresh_s) and time.monotonic() < deadline:
            self.refresh()
            if self._settled():
                return

    def stop(self) -> None:
        """Stop refreshing (it also stops by itself once the claim ended and was scored)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __repr__(self) -> str:
        return f"Timeline({self.claim_id}: {len(self.frame)} events)"
