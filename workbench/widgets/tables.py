"""HTML for the widgets: tables that line up and read well in JupyterLab (no `<NA>`, headers
left-aligned over their columns), and coloured notes."""

from __future__ import annotations

import html

import pandas as pd

__all__ = ["note", "table"]

STYLE = (
    "<style>"
    ".wb-table{border-collapse:collapse;font-size:12px;margin:2px 0}"
    ".wb-table th,.wb-table td{text-align:left;padding:2px 8px;border-bottom:1px solid #e0e0e0;"
    "vertical-align:top}"
    ".wb-table th{background:#f5f5f5;font-weight:600}"
    "</style>"
)


def table(frame: pd.DataFrame, *, max_chars: int = 160) -> str:
    """A DataFrame as a compact HTML table: missing values blank, long text cut with an
    ellipsis (the full text in the cell's tooltip)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):
        cells = []
        for value in values:
            text = "" if _missing(value) else str(value)
            shown = text if len(text) <= max_chars else text[: max_chars - 1] + "\u2026"
            title = f" title='{html.escape(text)}'" if shown != text else ""
            cells.append(f"<td{title}>{html.escape(shown)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"{STYLE}<table class='wb-table'><tr>{head}</tr>{''.join(rows)}</table>"


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def note(text: str, color: str = "#555") -> str:
    return f"<span style='color:{color}'>{html.escape(text)}</span>"
