"""Report periods: which month a notebook or report is about.

Every notebook takes ``period_start`` and ``period_end`` (ISO dates, both inclusive) as
papermill parameters; blank means "the latest complete month of data in the store".
``as_of`` for the analyses is the period's last day.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlite_utils import Database


@dataclass(frozen=True)
class Period:
    """An inclusive date range, usually one calendar month."""

    start: dt.date
    end: dt.date

    @property
    def as_of(self) -> dt.date:
        """The day the analyses look back from: the period's last day."""
        return self.end

    @property
    def label(self) -> str:
        """``YYYY-MM`` for a calendar month, else ``start – end``."""
        if self.start == month_start(self.start) and self.end == month_end(self.start):
            return f"{self.start:%Y-%m}"
        return f"{self.start.isoformat()} – {self.end.isoformat()}"

    def previous_month(self) -> "Period":
        """The calendar month before this period's start."""
        prev_end = self.start - dt.timedelta(days=1)
        return Period(month_start(prev_end), prev_end)

    def year_before(self) -> "Period":
        """The same period a year earlier (the same calendar month for a month; 29 February
        becomes 28 February)."""
        return Period(_a_year_before(self.start), _a_year_before(self.end))


def _a_year_before(day: dt.date) -> dt.date:
    return day.replace(year=day.year - 1, day=min(day.day, month_end(day.replace(day=1, year=day.year - 1)).day))


def same_month_last_year(db: Database, period: Period) -> Period | None:
    """:meth:`Period.year_before` when the store's orders reach back to its first day (the earliest
    order, whatever its status, is on or before it), else None: a year-on-year figure is only
    shown for a month the store holds whole, never for one its data start inside."""
    first = db.execute("SELECT min(order_date) FROM orders").fetchone()[0]
    year = period.year_before()
    return year if first and str(first)[:10] <= year.start.isoformat() else None


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_end(day: dt.date) -> dt.date:
    nxt = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt - dt.timedelta(days=1)


def parse_month(text: str) -> Period:
    """``"2026-10"`` -> the calendar month October 2026. Raises ValueError with the expected form."""
    match = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
    if not match:
        raise ValueError(f"month {text!r} is not in the form YYYY-MM (e.g. 2026-10)") from None
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise ValueError(f"month {text!r}: there is no month {month}; months run from 01 to 12 (e.g. {year}-10)")
    first = dt.date(year, month, 1)
    return Period(first, month_end(first))


def latest_complete_month(db: Database, today: dt.date | None = None) -> Period | None:
    """The last calendar month that has ended and holds orders, or None for an empty store.

    "Complete" means the month is over (before ``today``'s month) or the data run to its
    last day. ``today`` defaults to the real date; pass it to make a result reproducible.
    """
    row = db.execute("SELECT max(order_date) FROM orders").fetchone()
    if not row or not row[0]:
        return None
    last = dt.date.fromisoformat(str(row[0])[:10])
    today = today or dt.date.today()
    if last == month_end(last) or month_start(last) < month_start(today):
        month = month_start(last)
    else:  # the data run into the month still under way: take the month before
        month = month_start(month_start(last) - dt.timedelta(days=1))
    return Period(month, month_end(month))


def resolve_period(db: Database, period_start: str = "", *, period_end: str = "") -> Period:
    """The period a notebook's parameters name; blank parameters mean the latest complete month.

    Raises ValueError when the store holds no orders and no period was given, or when the
    end is before the start.
    """
    if period_start and period_end:
        start, end = dt.date.fromisoformat(period_start), dt.date.fromisoformat(period_end)
    elif period_start:
        start = dt.date.fromisoformat(period_start)
        end = month_end(start)
    else:
        found = latest_complete_month(db)
        if found is None:
            raise ValueError("the store holds no orders yet: import some or run `crm demo` first")
        return found
    if end < start:
        raise ValueError(f"period end {end} is before its start {start}")
    return Period(start, end)
