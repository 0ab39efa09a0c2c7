"""Reading the store: :func:`query_df` runs a SELECT into a DataFrame, and the store's currency.

Analyses write their own SQL, which filters and aggregates inside SQLite (so a notebook never
loads a whole table just to count it), with the business rules of :mod:`crm_helpers.store.facts`;
:func:`store_currency` and :func:`currency_note` say in which currency their money is and which
paid orders are left out of it.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.facts import STORE_CURRENCY_SQL, net_revenue_sql, paid


def query_df(
    db: Database,
    sql: str,
    *,
    params: Sequence[Any] | dict[str, Any] | None = None,
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
    (:data:`~crm_helpers.store.facts.STORE_CURRENCY_SQL`)."""
    row = db.execute(STORE_CURRENCY_SQL).fetchone()
    return str(row[0]) if row else ""


def paid_orders_by_currency(db: Database) -> dict[str, tuple[int, int]]:
    """``{currency: (paid orders, of which left out)}`` of the paid orders in a currency other than
    the store's (:func:`store_currency`); left out: without an exchange rate on or before their date
    (their :func:`~crm_helpers.store.facts.net_revenue_sql` is NULL), the others are converted. Empty
    when every paid order is in the store's currency. One pass over the orders."""
    rows = db.execute(
        f"SELECT currency, count(*), sum({net_revenue_sql()} IS NULL) FROM orders WHERE {paid()} "
        f"AND coalesce(currency, '') NOT IN ('', coalesce(({STORE_CURRENCY_SQL}), '')) "
        "GROUP BY currency ORDER BY count(*) DESC, currency"
    ).fetchall()
    return {str(currency): (int(n), int(left_out)) for currency, n, left_out in rows}


def unconverted_orders(db: Database) -> dict[str, int]:
    """``{currency: paid orders}`` of the paid orders left out of the money figures for want of an
    exchange rate (see :func:`paid_orders_by_currency`). Empty when every order counts."""
    return _left_out(paid_orders_by_currency(db))


def _left_out(by_currency: dict[str, tuple[int, int]]) -> dict[str, int]:
    """The left-out counts of :func:`paid_orders_by_currency`, most first."""
    order = sorted(by_currency, key=lambda c: (-by_currency[c][1], c))
    return {c: by_currency[c][1] for c in order if by_currency[c][1]}


def currency_note(db: Database) -> str:
    """A sentence for the owner when some paid orders are left out of the money figures for want of
    exchange rates (see :func:`unconverted_orders`); ``""`` when none are."""
    return _left_out_sentence(db, unconverted_orders(db))


def _left_out_sentence(db: Database, left_out: dict[str, int]) -> str:
    if not left_out:
        return ""
    counts = ", ".join(f"{n} in {currency}" for currency, n in left_out.items())
    total = sum(left_out.values())
    return (f"{total} paid order{'s' if total != 1 else ''} ({counts}) {'are' if total != 1 else 'is'} left out of "
            f"the money figures, which are in {store_currency(db)}: there is no exchange rate for "
            f"{'them' if total != 1 else 'it'} on or before the order date. Import the ECB reference rates "
            "(eurofxref-hist.csv) with `crm import FILE` to count them.")


def money_note(db: Database) -> str:
    """The line under a page's title when the store's paid orders are in several currencies: which
    were converted to the store's currency (at the ECB reference rate of the order's date, or the
    latest before it) and which are left out (:func:`currency_note`); ``""`` when every paid order is
    in the store's currency."""
    by_currency = paid_orders_by_currency(db)
    converted = {c: n - left for c, (n, left) in by_currency.items() if n > left}
    parts = []
    if converted:
        counts = ", ".join(f"{n} in {c}" for c, n in converted.items())
        total = sum(converted.values())
        parts.append(f"Amounts are in {store_currency(db)}; {total} paid order{'s' if total != 1 else ''} "
                     f"({counts}) {'were' if total != 1 else 'was'} converted at the ECB reference rate of the "
                     "order's date (or the latest before it).")
    if left_out := _left_out(by_currency):
        parts.append(_left_out_sentence(db, left_out))
    return " ".join(parts)

