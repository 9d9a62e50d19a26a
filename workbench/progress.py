"""A progress bar for long work (a batch of claims, an experiment), safe from any thread.

In a Jupyter kernel it is an HTML bar in the cell's output, updated in place through a display
id: nothing to render but HTML, so a saved notebook shows the final state ("20/20 · 14 paid,
4 rejected, 2 awaiting review · 6.1 s"), not a widget's first frame. Elsewhere it is a tqdm bar
on stderr.

    with Progress(total=20, what="claims") as bar:
        bar.update("paid")          # one more done, counted under its status
"""

from __future__ import annotations

import html
import threading
import time
from collections import Counter
from types import TracebackType
from typing import Any

from .display import in_jupyter

__all__ = ["Progress"]

UPDATE_EVERY_S = 0.2
"""At most this often does the bar send an update to the notebook (plus the last one)."""


class Progress:
    """`total` items of `what`; `update(label)` counts one more, grouped by `label`."""

    def __init__(self, total: int, what: str = "items", *, enabled: bool = True) -> None:
        self.total = total
        self.what = what
        self.enabled = enabled and total > 0
        self.done = 0
        self.counts: Counter[str] = Counter()
        self._started = time.monotonic()
        self._last_sent = 0.0
        self._lock = threading.Lock()
        self._handle: Any = None
        self._tqdm: Any = None
        self.stopped: str | None = None

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        if in_jupyter():
            from IPython.display import HTML, display

            self._handle = display(HTML(self._html()), display_id=True)
        else:
            from tqdm import tqdm

            self._tqdm = tqdm(total=self.total, desc=self.what, unit=self.what.rstrip("s"))
        return self

    def update(self, label: str | None = None, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if label:
                self.counts[label] += n
            self._show(n, counted=bool(label))

    def set(self, done: int, counts: dict[str, int] | None = None) -> None:
        """Show `done` items (and these counts by label) now: for work whose progress is read
        rather than counted (an experiment running in Restate)."""
        with self._lock:
            step = done - self.done
            self.done = done
            if counts is not None:
                self.counts = Counter(counts)
            self._show(step, counted=True)

    def _show(self, step: int, *, counted: bool) -> None:
        """Bring the bar to `self.done` (moved by `step`): tqdm at once, the notebook's HTML at
        most every UPDATE_EVERY_S and at the end. Called with the lock held."""
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.total = self.total
            self._tqdm.update(step)
            if counted:
                self._tqdm.set_postfix_str(self._counts_text(), refresh=False)
            return
        now = time.monotonic()
        if self._handle is not None and (
            now - self._last_sent >= UPDATE_EVERY_S or self.done >= self.total
        ):
            self._send()
            self._last_sent = now

    def stop(self, note: str) -> None:
        """End the bar before its total, saying why (`note`: "waited for 10 as asked", "stalled:
        ..."): the bar turns grey with the note, so a saved notebook does not show work that
        looks cut off."""
        with self._lock:
            self.stopped = note
            if self._tqdm is not None:
                self._tqdm.set_postfix_str(f"{self._counts_text()} · {note}", refresh=True)
            elif self._handle is not None:
                self._send()

    def _send(self) -> None:
        from IPython.display import HTML

        self._handle.update(HTML(self._html()))

    def _counts_text(self) -> str:
        return ", ".join(f"{n} {label}" for label, n in self.counts.most_common())

    def _html(self) -> str:
        share = self.done / self.total if self.total else 1.0
        elapsed = time.monotonic() - self._started
        counts = html.escape(self._counts_text())
        ended = self.done >= self.total
        color = "#2e7d32" if ended else "#757575" if self.stopped else "#1565c0"
        state = "done" if ended else "stopped" if self.stopped else "running"
        return (
            f"<div class='wb-progress' data-state='{state}' "
            "style='font-family:sans-serif;font-size:12px;margin:2px 0'>"
            f"<span style='display:inline-block;width:240px;height:10px;background:#e0e0e0;"
            f"border-radius:5px;vertical-align:middle;overflow:hidden'>"
            f"<span style='display:block;width:{share * 100:.1f}%;height:100%;"
            f"background:{color}'></span></span> "
            f"<b>{self.done}/{self.total}</b> {html.escape(self.what)}"
            + (f" · {counts}" if counts else "")
            + f" · {elapsed:.1f} s"
            + (f" · <i>{html.escape(self.stopped)}</i>" if self.stopped and not ended else "")
            + "</div>"
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._handle is not None:
            self._send()  # the final state, whatever the throttle held back
