"""The prompt-label switcher (ipywidgets 8).

    wb.prompts.switcher("claim-analyst")

shows the versions of a prompt and where each label points; pick a version and a label and press
Promote to move the label (what `wb.prompts.promote` does). The table refreshes after a
promotion made here, after one made in code through `wb.prompts` in this kernel, and on Refresh.
"""

from __future__ import annotations

import html
import threading
import weakref
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .tables import STYLE, WIDGET_CLASS

if TYPE_CHECKING:
    from ..prompts import Prompts

__all__ = ["LabelSwitcher", "refresh_switchers"]

_live: weakref.WeakSet[LabelSwitcher] = weakref.WeakSet()
_live_lock = threading.Lock()
PRODUCTION, LATEST = "production", "latest"


def refresh_switchers(name: str) -> None:
    """Refresh every switcher of this kernel that shows prompt `name` (a label moved)."""
    with _live_lock:
        shown = [s for s in _live if s.prompt_name == name]
    for switcher in shown:
        switcher.refresh()


class LabelSwitcher(widgets.VBox):
    """The versions of one prompt with their labels, and a [Promote] button.

    Its parts are attributes, so a test (or a notebook) can drive it without a browser:
    `version` (Dropdown of version numbers), `label` (Combobox, any label), `button`, `table`
    (HTML) and `status` (HTML, the last result or error)."""

    def __init__(
        self,
        name: str = "claim-analyst",
        label: str = PRODUCTION,
        *,
        prompts: Prompts | None = None,
    ) -> None:
        if prompts is None:
            from ..prompts import Prompts

            prompts = Prompts()
        self.prompts = prompts
        self.prompt_name = name
        self.labels_now: dict[str, int] = {}
        """Where each label points, as last read."""
        self.table = widgets.HTML()
        wide = {"description_width": "60px"}
        self.version = widgets.Dropdown(
            description="version", layout={"width": "380px"}, style=wide
        )
        self.label = widgets.Combobox(
            value=label,
            placeholder="label, e.g. production",
            description="label",
            ensure_option=False,
            layout={"width": "260px"},
            style=wide,
        )
        self.button = widgets.Button(
            description="Promote", button_style="primary", icon="arrow-up", tooltip="Move label"
        )
        self.reload = widgets.Button(description="Refresh", icon="refresh", tooltip="Read again")
        self.status = widgets.HTML()
        self.button.on_click(self._on_promote)
        self.reload.on_click(lambda _: self.refresh())
        super().__init__(
            [
                widgets.HTML(f"<b>Prompt <code>{html.escape(name)}</code></b>"),
                self.table,
                widgets.HBox([self.version, self.label, self.button, self.reload]),
                self.status,
            ]
        )
        self.add_class(WIDGET_CLASS)
        self.refresh()
        with _live_lock:
            _live.add(self)

    def refresh(self) -> None:
        """Read the versions and labels again from Langfuse."""
        try:
            frame = self.prompts.list(self.prompt_name)
        except Exception as e:  # shown in the widget: a callback's exception would be lost
            self._say(str(e), error=True)
            return
        rows = []
        for row in frame.itertuples():
            labels = " ".join(
                f"<span style='background:{_label_color(x)};color:white;border-radius:3px;"
                f"padding:0 4px;margin-right:3px'>{html.escape(x)}</span>"
                for x in row.labels
            )
            message = html.escape(row.commit_message or "")
            rows.append(f"<tr><td>v{row.version}</td><td>{labels}</td><td>{message}</td></tr>")
        self.table.value = (
            f"{STYLE}<table class='wb-table'><tr><th>version</th><th>labels</th>"
            "<th>commit message</th></tr>" + "".join(rows) + "</table>"
        )
        current = self.version.value
        self.version.options = [
            (
                f"v{row.version}" + (f"  ({', '.join(row.labels)})" if row.labels else ""),
                row.version,
            )
            for row in frame.itertuples()
        ]
        versions = [row.version for row in frame.itertuples()]
        if current in versions:
            self.version.value = current
        elif versions:
            self.version.value = versions[-1]
        known = sorted({x for labels in frame["labels"] for x in labels} - {LATEST})
        self.label.options = tuple(known)
        self.labels_now = {x: row.version for row in frame.itertuples() for x in row.labels}

    def _on_promote(self, _button: Any = None) -> None:
        version, label = self.version.value, (self.label.value or "").strip()
        if version is None:
            self._say("Pick a version first.", error=True)
            return
        if not label:
            self._say("Type or pick a label (e.g. production).", error=True)
            return
        before = self.labels_now.get(label)
        try:
            self.prompts.promote(self.prompt_name, int(version), label)
        except Exception as e:  # shown in the widget: a callback's exception would be lost
            self._say(str(e), error=True)
            return
        moved = f"v{before} \u2192 v{version}" if before and before != version else f"v{version}"
        self._say(
            f"{self.prompt_name}: {label} is now {moved}. New claims with label {label!r} use it."
        )

    def promote(self) -> None:
        """What the button does (for scripts): promote the selected version to the label."""
        self._on_promote()

    def _say(self, text: str, error: bool = False) -> None:
        color = "#c62828" if error else "#2e7d32"
        self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"


def _label_color(label: str) -> str:
    return {"production": "#2e7d32", "staging": "#ef6c00", "latest": "#757575"}.get(
        label, "#1565c0"
    )
