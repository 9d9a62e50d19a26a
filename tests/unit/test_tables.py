"""The helpers' tables as a notebook shows them (`Table`, `frame_html`) and the widgets' tables
(`table`): nothing that reads as noise (NaN, <NA>, None), nothing cut, numbers aligned."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from workbench.frames import Table, as_table
from workbench.widgets.tables import frame_html, table

LONG = "payments attempted 2, accepted 1, refused as duplicates 1; ran in pids 101, 202"


def _cells(html: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", html, flags=re.S)


@pytest.fixture
def frame() -> Table:
    return as_table(
        pd.DataFrame(
            {
                "step": ["parse", "reimburse", "write score"],
                "executed": pd.array([1, 2, None], dtype="Int64"),
                "seconds": [None, 1.5, 2.0],
                "amount_eur": [110.86, 397.8, 73.2],
                "kind": ["error", None, "crash"],
                "note": ["", LONG, "not observed"],
                "labels": [["latest", "production"], [], ["staging"]],
                "created": pd.to_datetime(
                    ["2026-11-27T17:09:21.984427+00:00", None, "2026-11-28T08:00:00.000000+00:00"],
                    utc=True,
                ),
            }
        )
    )


def test_missing_values_show_blank_and_text_in_full(frame: Table) -> None:
    html = frame._repr_html_()
    cells = _cells(html)
    for noise in ("&lt;NA&gt;", "<NA>", "None", "nan", "NaN", "NaT"):
        assert noise not in cells, f"{noise} shown in {cells}"
    assert LONG in cells  # pandas would cut it at 50 characters
    assert "latest, production" in cells and "2026-11-27 17:09:21" in cells


def test_numbers_share_their_decimals_and_align_right(frame: Table) -> None:
    cells = _cells(frame_html(frame))
    assert ["110.86", "397.80", "73.20"] == [c for c in cells if c in ("110.86", "397.80", "73.20")]
    assert "1.5" in cells and "2.0" in cells
    css = frame_html(frame).split("</style>")[0]
    amount = list(frame.columns).index("amount_eur")
    note = list(frame.columns).index("note")
    for cell in (rf"td\.col{amount}", rf"th\.col_heading\.col{amount}"):
        assert re.search(cell + r" *\{\s*text-align: right", css)
    assert re.search(rf"td\.col{note} *\{{\s*text-align: left;\s*white-space: normal", css)


def test_the_default_index_is_left_out_and_a_meaningful_one_kept(frame: Table) -> None:
    assert "row_heading" not in frame_html(frame)
    by_step = frame.set_index("step")
    assert isinstance(by_step, Table)
    assert re.search(r'class="row_heading[^"]*" >reimburse<', frame_html(by_step))
    picked = frame.query("kind == 'crash'")
    assert isinstance(picked, Table) and 'class="row_heading level0 row0" >2<' in frame_html(picked)


def test_long_frames_are_cut_and_say_so() -> None:
    long = as_table(pd.DataFrame({"n": range(500)}))
    with pd.option_context("display.max_rows", 60, "display.min_rows", 10):
        html = frame_html(long)
    assert len(_cells(html)) == 10
    assert "the first 10 of 500 rows" in html


def test_tables_stay_tables_and_keep_attrs() -> None:
    plain = pd.DataFrame({"a": [1, 2]})
    plain.attrs["claim_id"] = "c-1"
    made = as_table(plain)
    assert made.attrs == {"claim_id": "c-1"} and as_table(made) is made
    assert isinstance(pd.concat([made, made]), Table) and isinstance(made.head(1), Table)
    assert made.equals(plain)


def test_widget_tables_align_numbers_under_their_headers() -> None:
    html = table(pd.DataFrame({"name": ["restate"], "restarts": [2], "note": [None]}))
    assert "<th class='wb-num'>restarts</th>" in html and "<td class='wb-num'>2</td>" in html
    assert "<td>restate</td>" in html and "<td></td>" in html
