"""One number style for the pack: every page, the index, the PDFs, the CSVs and the chart axes.

The rules, each in one function here and used everywhere else:

- **money** (:func:`money`): no decimals from 1,000 up (``21,883 EUR``), two below (``954.22 EUR``),
  thousands separated, the currency after the amount;
- **counts** (:func:`count`): whole numbers with thousands separators (``1,276``);
- **rates** (:func:`percent`): in % with one decimal (``85.4 %``); a share kept as a fraction
  (0.854) is multiplied by 100 first (:func:`fraction_as_percent`);
- **months** (:func:`month`): ``2026-11``, never ``2026-11-01``;
- **ranges** (:func:`span`): ``low to high`` and the unit once (``1,000 to 2,000 EUR``);
- **in another language** (:mod:`crm_helpers.i18n`) the same rules in its readers' form: in Chinese
  ``€21,883``, ``85.4%``, months ``2026年11月``, ranges ``1,000至2,000``;
- **axes** (:func:`axis_tick`): thousands separated, no scientific offset (``12,000``, not
  ``1000012000`` run together);
- **CSV files** (:func:`for_csv`): plain values a spreadsheet reads as numbers: no separators,
  rounded (money and measures to two decimals, whole-number floats as integers, midnight
  timestamps as dates).

The page tables (:mod:`crm_helpers.report.tables`) tell a rate from an amount by its column's name
(:func:`column_kind`), since a table carries no units of its own.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd

from crm_helpers.i18n import DEFAULT, language, t

# money, amounts and ranges are written in the store layer, so that the analyses' sentences share them
from crm_helpers.store.values import MISSING, amount, finite_number as _finite, is_currency, money, span  # noqa: F401
# and a CSV's values where every CSV is written, so that the analyses' files share them
from crm_helpers.store.safe_csv import CSV_DECIMALS, for_csv  # noqa: F401



def count(value: float | None) -> str:
    """A count as a whole number with thousands separators (``1,276``)."""
    if value is None or not _finite(value):
        return MISSING
    return f"{round(float(value)):,}"


def percent(value: float | None, *, sign: bool = True) -> str:
    """A rate already in % with one decimal (``85.4 %``); ``sign=False`` leaves the % off (for a
    column whose heading says %)."""
    if value is None or not _finite(value):
        return MISSING
    return f"{float(value):,.1f}" + (t(" %") if sign else "")


def figure(value: float | None, unit: str) -> str:
    """A headline figure with its unit, as the index and the pages' summaries write it: money with
    its currency, a rate in %, anything else with up to two decimals, as many as the recorded value
    carries (NPS 23.7, not 23.70; 3.6 hours) and none from 100 up, then its unit."""
    if value is None or not _finite(value):
        return MISSING
    if unit == "%":
        return percent(value)
    if is_currency(unit):
        return money(value, unit)
    text = f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.2f}".rstrip("0")
    return f"{text} {unit}".strip()


def fraction_as_percent(value: float | None) -> str:
    """A share kept as a fraction of 1 (0.854) as a rate: ``85.4 %``."""
    if value is None or not _finite(value):
        return MISSING
    return percent(float(value) * 100)


def month(value: Any) -> str:
    """A month as ``2026-11`` (Chinese ``2026年11月``; a date, a timestamp or a pandas Period; text is kept)."""
    if isinstance(value, pd.Period):
        value = value.to_timestamp()
    if isinstance(value, (dt.date, pd.Timestamp, np.datetime64)):
        stamp = pd.Timestamp(value)
        return f"{stamp:%Y-%m}" if language() == DEFAULT else t("{year}-{month:02d}", year=stamp.year,
                                                                   month=stamp.month)
    return str(value)


def period(start: dt.date, end: dt.date) -> str:
    """A report's period as its title shows it: the month (:func:`month`) for a calendar month,
    else ``start – end`` (as :attr:`crm_helpers.store.periods.Period.label`)."""
    if start.day == 1 and (end + dt.timedelta(days=1)).day == 1 and (start.year, start.month) == (end.year, end.month):
        return month(start)
    return f"{start.isoformat()} – {end.isoformat()}"


def axis_tick(value: float, _position: Any = None) -> str:
    """A chart's tick label: thousands separated, at most two decimals, trailing zeros dropped
    (``12,000``, ``0.5``, ``2.25``); for ``matplotlib.ticker.FuncFormatter``."""
    if not _finite(value):
        return ""
    if abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


_PERCENT_NAME = re.compile(r"(\bpct\b|%|\bpercent\b)")
_FRACTION_NAME = re.compile(r"(\brate\b|probability|\bp alive\b|\bshare\b|confidence|\bsupport\b|retention|"
                            r"\bchurn\b)")
_MONTH_NAME = re.compile(r"(month|cohort|\borigin\b)")


def column_kind(name: Any, values: pd.Series) -> str:
    """How a page shows a column, from its name (in words, as :func:`tables.plain_name` writes it)
    and its values: ``"percent"`` (a rate in %: named "... pct" or with "%"), ``"fraction"`` (a
    rate kept as a fraction of 1: named like a rate, share, probability, confidence, support or
    retention, every value between 0 and 1), ``"month"`` (first-of-month dates in a column named
    for months), else ``""`` (the general rules of :func:`crm_helpers.report.tables.cell`)."""
    text = str(name).lower().replace("_", " ")
    if pd.api.types.is_datetime64_any_dtype(values) and _MONTH_NAME.search(text):
        present = pd.to_datetime(values.dropna())
        if len(present) and bool(((present.dt.day == 1) & (present == present.dt.normalize())).all()):
            return "month"
        return ""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return ""
    if _PERCENT_NAME.search(text):
        return "percent"
    if _FRACTION_NAME.search(text) and pd.api.types.is_float_dtype(values):
        present = values.dropna()
        if len(present) and bool(((present >= 0) & (present <= 1)).all()):
            return "fraction"
    return ""


def heading(name: str) -> str:
    """A column heading with its unit in the one style: "share pct" → "share (%)"."""
    return re.sub(r"\s*\bpct\b", " (%)", name).replace("  ", " ")
