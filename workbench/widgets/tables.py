"""HTML tables that read well in JupyterLab, and coloured notes.

- `frame_html(frame)`: how the helpers' DataFrames (`workbench.frames.Table`) show in a
  notebook: missing values blank (no NaN, `<NA>` or None), text in full and left-aligned under
  its header (long text wrapped in a bounded width, not cut at 50 characters), numbers
  right-aligned with one number of decimals per column, the default 0..n-1 index left out;
- `table(frame)`: the compact tables inside the widgets (the failure panel, the switcher);
- `STYLE` and `WIDGET_CLASS`: the style sheet a widget carries, and the class of its outer box:
  ipywidgets gives every HTML widget the line height of a button (28 px), which spreads tables
  and wrapped text over twice their height.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

__all__ = ["STYLE", "WIDGET_CLASS", "frame_html", "note", "table"]

WIDGET_CLASS = "wb-widget"
"""The class of a workbench widget's outer box: STYLE's text rules apply inside it."""
STYLE = (
    "<style>"
    ".wb-table{border-collapse:collapse;font-size:12px;margin:2px 0;line-height:1.35}"
    ".wb-table th,.wb-table td{text-align:left;padding:2px 8px;border-bottom:1px solid #e0e0e0;"
    "vertical-align:top}"
    ".wb-table th{background:#f5f5f5;font-weight:600}"
    ".wb-table .wb-num{text-align:right;font-variant-numeric:tabular-nums}"
    f".{WIDGET_CLASS} .widget-html>.widget-html-content{{line-height:1.45}}"
    "</style>"
)


def table(frame: pd.DataFrame, *, max_chars: int = 160) -> str:
    """A DataFrame as a compact HTML table: missing values blank, numbers right-aligned under
    their headers, long text cut with an ellipsis (the full text in the cell's tooltip)."""
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    num = " class='wb-num'"
    head = "".join(
        f"<th{num if n else ''}>{html.escape(str(c))}</th>"
        for c, n in zip(frame.columns, numeric, strict=True)
    )
    rows = []
    for values in frame.itertuples(index=False):
        cells = []
        for value, is_number in zip(values, numeric, strict=True):
            text = "" if _missing(value) else str(value)
            shown = text if len(text) <= max_chars else text[: max_chars - 1] + "\u2026"
            title = f" title='{html.escape(text)}'" if shown != text else ""
            cells.append(f"<td{num if is_number else ''}{title}>{html.escape(shown)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"{STYLE}<table class='wb-table'><tr>{head}</tr>{''.join(rows)}</table>"


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def note(text: str, color: str = "#555") -> str:
    return f"<span style='color:{color}'>{html.escape(text)}</span>"


LONG_TEXT = 50
"""Text columns with values longer than this wrap (within `WRAP_WIDTH`) instead of widening."""
WRAP_WIDTH = "44em"


def frame_html(frame: pd.DataFrame) -> str:
    """`frame` as an HTML table for a notebook (see the module's docstring). A frame longer than
    pandas' `display.max_rows` shows its first `display.min_rows` rows and says so."""
    total = len(frame)
    max_rows = pd.get_option("display.max_rows")
    shown = frame
    caption = ""
    if max_rows is not None and total > max_rows:
        shown = frame.head(pd.get_option("display.min_rows") or max_rows)
        caption = f"the first {len(shown)} of {total} rows"
    styler = pd.DataFrame(shown).style  # a plain frame: its Styler knows nothing of Table
    formatters: dict[Any, Any] = {}
    styles = []
    for position in range(shown.shape[1]):
        column = shown.iloc[:, position]
        label = shown.columns[position]
        cells = f"td.col{position}"
        heads = f"th.col_heading.col{position}"
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            if pd.api.types.is_float_dtype(column):
                formatters[label] = _float_format(column)
            styles.append({"selector": f"{cells}, {heads}", "props": "text-align:right"})
            continue
        if pd.api.types.is_datetime64_any_dtype(column):
            formatters[label] = _time_format
        elif column.map(lambda v: isinstance(v, list | tuple | set)).any():
            formatters[label] = _items_format
        show = formatters.get(label, str)
        texts = [show(v) for v in column if not _missing(v)]
        props = (
            f"text-align:left;white-space:normal;min-width:16em;max-width:{WRAP_WIDTH}"
            if max(map(len, texts), default=0) > LONG_TEXT
            else "text-align:left;white-space:nowrap"
        )
        styles += [
            {"selector": cells, "props": props},
            {"selector": heads, "props": "text-align:left"},
        ]
    styles.append({"selector": "td, th", "props": "vertical-align:top"})
    styler = styler.format(formatters, na_rep="", escape="html").set_table_styles(styles)
    if isinstance(shown.index, pd.RangeIndex) and shown.index.start == 0 and shown.index.step == 1:
        styler = styler.hide(axis="index")
    if caption:
        styler = styler.set_caption(caption)
    return styler.to_html()


def _float_format(column: pd.Series) -> Any:
    """One number of decimals for the whole column (the fewest that show every value)."""
    values = [float(v) for v in column if not _missing(v)]
    if any(abs(v) >= 1e15 or 0 < abs(v) < 1e-6 for v in values):
        return "{:.6g}".format
    decimals = max((len(f"{v:.6f}".rstrip("0").split(".")[1]) for v in values if v == v), default=0)
    return f"{{:.{decimals}f}}".format


def _time_format(value: Any) -> str:
    """A timestamp to the second: `2026-03-14 09:30:05` (UTC when it has a zone)."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def _items_format(value: Any) -> str:
    """A list cell (labels, claim ids) as its items: `latest, staging`."""
    if isinstance(value, list | tuple | set):
        return ", ".join(map(str, value))
    return str(value)
