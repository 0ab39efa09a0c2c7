"""Tables for people: how every table of the report pack is shown to the owner.

One rule set for every page, applied to each DataFrame a notebook displays
(:func:`use_for_display`, called by :func:`crm_helpers.workbook.open_workbook`) and by
:func:`show` for long lists:

- a missing value (NaN, None, ``<NA>``, NaT) is shown as "—", never as code words;
- numbers in the pack's one style (:mod:`crm_helpers.report.numbers`): whole numbers (counts, also
  when pandas stored them as floats) without decimals, amounts with two decimals below 1,000 and
  none above, thousands separated; a rate in % with one decimal (a column named "... pct" or with
  "%", headed "(%)"; a share kept as a fraction of 1 shown as "43.9 %"); first-of-month dates in a
  month column as "2026-11"; yes/no for true/false; dates without a midnight time;
- column names in words (``days_since_order`` -> "days since order"), no row numbers;
- an empty table is not drawn as headers only: one sentence says there is nothing to list;
- text in full (pandas cuts cells at 50 characters; these tables never do);
- at most :data:`MAX_ROWS` rows on a page: a longer list is cut there with a sentence saying so,
  and with :func:`show` written in full to a CSV next to the page (owner-only, formulas
  neutralized, plain rounded values: :func:`crm_helpers.report.numbers.for_csv`) and linked;
- a table wider than the screen scrolls inside its own box (``div.table-box``), never the page.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm_helpers.i18n import t
from crm_helpers.report import numbers

MAX_ROWS = 25
"""The most rows a table shows on a page."""

MISSING = numbers.MISSING
"""What a missing value looks like on a page."""

NOTHING = "Nothing to list here this month."
"""What a page shows instead of a table without rows."""


def cell(value: Any) -> str:
    """One value as the owner reads it (see the module notes)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return t("yes") if value else t("no")
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return MISSING
        return numbers.amount(value)
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        stamp = pd.Timestamp(value)
        if pd.isna(stamp):
            return MISSING
        return stamp.strftime("%Y-%m-%d" if stamp == stamp.normalize() else "%Y-%m-%d %H:%M")
    if isinstance(value, float) and math.isnan(value):
        return MISSING
    text = str(value)
    return MISSING if text in ("nan", "NaN", "None", "<NA>", "NaT") else t(text)


def _integral_columns(frame: pd.DataFrame) -> set[Any]:
    """Float columns whose every present value is whole: counts stored as floats."""
    found = set()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values):
            present = values.dropna()
            if len(present) and np.all(np.isfinite(present)) and np.all(present == np.round(present)):
                found.add(column)
    return found


def heading(name: Any) -> str:
    """A column's heading on a page: its name in words (:func:`plain_name`) with its unit in the one
    style (:func:`crm_helpers.report.numbers.heading`), in the pack's language (the unit in brackets
    is kept as it is: "effect (EUR)" → "效果 (EUR)")."""
    text = numbers.heading(plain_name(name))
    base, bracket, unit = text.partition(" (")
    return t(base) + (bracket + unit if bracket else "") if base else text


def plain_name(name: Any) -> str:
    """A column name as a page heads it: words, not snake_case ("last_order" → "last order")."""
    return MISSING if name is None else str(name).replace("_", " ")


def _shown(value: Any, kind: str) -> str:
    """One cell by its column's kind (:func:`crm_helpers.report.numbers.column_kind`)."""
    if kind and (value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)):
        return MISSING
    if kind == "percent":
        return numbers.percent(value, sign=False)
    if kind == "fraction":
        return numbers.fraction_as_percent(value)
    if kind == "month":
        return numbers.month(value)
    return cell(value)


def with_unit(frame: pd.DataFrame, columns: Sequence[str], *, unit: str) -> pd.DataFrame:
    """``frame`` with ``unit`` in the names of ``columns`` (``effect`` → ``effect (EUR)``): a table
    of amounts says what they are counted in. Columns it does not hold are skipped; blank ``unit``
    leaves the names as they are."""
    if not unit:
        return frame
    return frame.rename(columns={c: f"{c} ({unit})" for c in columns if c in frame.columns})


LONG_TEXT = 60
"""A text cell of more characters than this is given room (``td.long``, at least 16 em wide): a
sentence squeezed into a narrow column made rows hundreds of pixels tall; the table scrolls instead."""


def _td(text: str, *, numeric: bool) -> str:
    if numeric:
        return f'<td class="num">{html.escape(text)}</td>'
    return f'<td class="long">{html.escape(text)}</td>' if len(text) > LONG_TEXT else f"<td>{html.escape(text)}</td>"


def for_people(frame: pd.DataFrame, *, max_rows: int = MAX_ROWS) -> str:
    """The table as HTML for a page: the rules of the module notes, at most ``max_rows`` rows."""
    if len(frame.index) == 0:
        return f'<p class="table-note">{t(NOTHING)}</p>'
    shown = frame
    if not isinstance(shown.index, pd.RangeIndex) or shown.index.name is not None:
        shown = shown.rename_axis(shown.index.name or "").reset_index()  # an unnamed index: a blank header, not "index"
    if isinstance(shown.columns, pd.MultiIndex):
        shown.columns = [" ".join(str(p) for p in c if str(p)) for c in shown.columns]
    body = shown.head(max_rows)
    kinds = [numbers.column_kind(plain_name(c), shown.iloc[:, i]) for i, c in enumerate(shown.columns)]
    header = "".join(f"<th>{html.escape(heading(c))}</th>" for c in body.columns)
    numeric = [pd.api.types.is_numeric_dtype(body.iloc[:, i]) and not pd.api.types.is_bool_dtype(body.iloc[:, i])
               for i in range(body.shape[1])]
    rows = []
    for values in body.itertuples(index=False, name=None):
        cells = "".join(_td(_shown(v, kinds[i]), numeric=numeric[i]) for i, v in enumerate(values))
        rows.append(f"<tr>{cells}</tr>")
    note = ""
    if len(shown) > max_rows:
        note = f'<p class="table-note">{t("The first {shown} of {count} rows.", shown=max_rows, count=f"{len(shown):,}")}</p>'
    return (
        '<div class="table-box"><table class="for-people"><thead><tr>' + header + "</tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></div>" + note
    )


STYLE = """<style>
table.for-people{border-collapse:collapse;margin:.5em 0;font-size:.92em}
table.for-people th,table.for-people td,.jp-RenderedHTMLCommon table.for-people th,
.jp-RenderedHTMLCommon table.for-people td{padding:.3em .6em;border-bottom:1px solid #e4e7eb;text-align:left;
vertical-align:top;white-space:normal;max-width:40em}
table.for-people td.num,.jp-RenderedHTMLCommon table.for-people td.num{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}
p.table-note{color:#52606d;font-size:.9em}
div.table-box{max-width:100%;overflow-x:auto}
table.for-people td.long,.jp-RenderedHTMLCommon table.for-people td.long{min-width:16em}
</style>"""


def _html_formatter(frame: pd.DataFrame) -> str:
    return STYLE + for_people(frame)


def use_for_display() -> None:
    """Make every DataFrame a notebook displays a table for people (no effect outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to register
        return
    shell = get_ipython()
    if shell is None:
        return
    html_formatter = shell.display_formatter.formatters["text/html"]
    html_formatter.for_type(pd.DataFrame, _html_formatter)
    pd.set_option("display.max_colwidth", None)  # text/plain too: never cut a cell


def show(frame: pd.DataFrame, *, name: str, output_dir: str | os.PathLike[str] = "",
         max_rows: int = MAX_ROWS, csv_only: Sequence[str] = ()) -> Path | None:
    """Display ``frame`` for people; a list longer than ``max_rows`` also goes, complete, to
    ``output_dir/name.csv`` (owner-only, see :mod:`crm_helpers.store.safe_csv`), linked under the table.
    ``csv_only``: columns kept in the CSV but left off the page (e.g. a sentence that would repeat
    on every row there).

    Returns the CSV's path, or None when the table fits on the page or no ``output_dir`` is given
    (then the page says that only the first rows are shown).
    """
    from IPython.display import HTML, display

    from crm_helpers.store.safe_csv import write_safe_csv

    written = None
    if len(frame) > max_rows and output_dir:
        written = write_safe_csv(numbers.for_csv(frame), Path(output_dir) / f"{name}.csv")
    table = for_people(frame.drop(columns=list(csv_only)), max_rows=max_rows)
    if written is not None:
        table = table.replace(
            '<p class="table-note">',
            '<p class="table-note">' + t("All {count} rows are in {file}. ", count=f"{len(frame):,}",
                                         file=f'<a href="{html.escape(written.name)}">{html.escape(written.name)}</a>'),
            1)
    display(HTML(STYLE + table))
    return written
