"""Reading the store: :func:`query_df` runs a SELECT into a DataFrame, and the store's currency.

Analyses write their own SQL, which filters and aggregates inside SQLite (so a notebook never
loads a whole table just to count it), with the business rules of :mod:`crm_helpers.facts`;
:func:`store_currency` and :func:`currency_note` say in which currency their money is and which
paid orders are left out of it.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
from sqlite_utils import Database

from .facts import STORE_CURRENCY_SQL, net_revenue_sql, paid


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


def store_currency(db: Database) -> str:
    """The currency of most paid orders (e.g. ``"EUR"``), or ``""`` when no order names one
    (:data:`~crm_helpers.facts.STORE_CURRENCY_SQL`)."""
    row = db.execute(STORE_CURRENCY_SQL).fetchone()
    return str(row[0]) if row else ""


def unconverted_orders(db: Database) -> dict[str, int]:
    """``{currency: paid orders}`` of the paid orders left out of the money figures: in a currency
    other than the store's, without an exchange rate on or before their date (their
    :func:`~crm_helpers.facts.net_revenue_sql` is NULL). Empty when every order counts."""
    rows = db.execute(
        f"SELECT currency, count(*) FROM orders WHERE {paid()} AND {net_revenue_sql()} IS NULL "
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
