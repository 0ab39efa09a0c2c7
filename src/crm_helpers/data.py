"""Reading the store into pandas: small, explicit queries that return DataFrames.

Analyses take DataFrames; these functions fetch them with SQL that filters and aggregates
inside SQLite, so a notebook never loads a whole large table just to count it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import pandas as pd
from sqlite_utils import Database

from .schema import STORE_CURRENCY_SQL, net_revenue_sql


def query_df(
    db: Database,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    *,
    parse_dates: Sequence[str] = (),
) -> pd.DataFrame:
    """Run a SELECT with bound parameters and return a DataFrame (dates parsed when named)."""
    cursor = db.execute(sql, params or [])
    columns = [d[0] for d in cursor.description]
    frame = pd.DataFrame.from_records(cursor.fetchall(), columns=columns)
    for col in parse_dates:
        frame[col] = pd.to_datetime(frame[col])
    return frame


def _iso(day: dt.date | str | None) -> str | None:
    if day is None:
        return None
    return day if isinstance(day, str) else day.isoformat()


def orders(
    db: Database,
    *,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    statuses: Sequence[str] = ("paid",),
) -> pd.DataFrame:
    """Orders with ``order_date`` in [start, end] (inclusive) and the given statuses.

    Columns: order_id, customer_id, order_date (datetime64), amount (gross), cost,
    currency, channel, campaign_id, status.
    """
    where, params = ["status IN (%s)" % ",".join("?" * len(statuses))], list(statuses)
    if start is not None:
        where.append("order_date >= ?")
        params.append(_iso(start))
    if end is not None:
        where.append("order_date <= ?")
        params.append(_iso(end))
    sql = (
        "SELECT order_id, customer_id, order_date, amount, cost, currency, channel, campaign_id, status "
        f"FROM orders WHERE {' AND '.join(where)} ORDER BY order_date, order_id"
    )
    return query_df(db, sql, params, parse_dates=["order_date"])


def store_currency(db: Database) -> str:
    """The currency of most paid orders (e.g. ``"EUR"``), or ``""`` when no order names one
    (:data:`~crm_helpers.schema.STORE_CURRENCY_SQL`)."""
    row = db.execute(STORE_CURRENCY_SQL).fetchone()
    return str(row[0]) if row else ""


def unconverted_orders(db: Database) -> dict[str, int]:
    """``{currency: paid orders}`` of the paid orders left out of the money figures: in a currency
    other than the store's, without an exchange rate on or before their date (their
    :func:`~crm_helpers.schema.net_revenue_sql` is NULL). Empty when every order counts."""
    rows = db.execute(
        f"SELECT currency, count(*) FROM orders WHERE status = 'paid' AND {net_revenue_sql()} IS NULL "
        "GROUP BY currency ORDER BY count(*) DESC, currency"
    ).fetchall()
    return {str(currency): int(n) for currency, n in rows}


def currency_note(db: Database) -> str:
    """A sentence for the owner when some paid orders are left out of the money figures for want of
    exchange rates (see :func:`unconverted_orders`); ``""`` when none are."""
    left_out = unconverted_orders(db)
    if not left_out:
        return ""
    counts = ", ".join(f"{n} in {currency}" for currency, n in left_out.items())
    total = sum(left_out.values())
    return (f"{total} paid order{'s' if total != 1 else ''} ({counts}) {'are' if total != 1 else 'is'} left out of "
            f"the money figures, which are in {store_currency(db)}: there is no exchange rate for "
            f"{'them' if total != 1 else 'it'} on or before the order date. Import the ECB reference rates "
            "(eurofxref-hist.csv) with `crm import FILE` to count them.")
