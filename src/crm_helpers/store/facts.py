"""The business facts: one home for each rule the analyses share, with its definition.

Every analysis that needs "a paid order", "net revenue", "an open ticket", "a won deal", "the
repeat rate", "the seeds' loyalty", "a month index" or "an ISO date" takes it from here, so the
same word always means the same thing on every page. SQL rules are expressions to paste into a
query (with the table alias the query uses); pandas rules take and return Series.

This module sits at the bottom of the package, beside :mod:`crm_helpers.store.schema`: it imports
nothing from the analyses.
"""

from __future__ import annotations

import datetime as dt
from typing import overload

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.schema import RATES, RATES_BASE

# -- dates -------------------------------------------------------------------------------------


@overload
def iso(day: dt.date | str) -> str: ...
@overload
def iso(day: None) -> None: ...
def iso(day: dt.date | str | None) -> str | None:
    """A day as ``YYYY-MM-DD`` text, the way the store keeps dates (text passes through, None stays None)."""
    if day is None or isinstance(day, str):
        return day
    return day.isoformat()


def next_day(day: dt.date | str) -> str:
    """The day after ``day`` as ISO text: ``column < next_day(d)`` keeps everything up to the end of ``d``,
    timestamps of that day included."""
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return (day + dt.timedelta(days=1)).isoformat()


def month_index(day: dt.date) -> int:
    """Months since year 0 (``year × 12 + month − 1``): consecutive months differ by 1."""
    return day.year * 12 + day.month - 1


def month_label(index: int) -> str:
    """The ``YYYY-MM`` label of a :func:`month_index`."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_index_sql(column: str = "order_date") -> str:
    """:func:`month_index` of an ISO date or timestamp column, as an SQL expression."""
    return (f"(CAST(substr({column}, 1, 4) AS INTEGER) * 12 + CAST(substr({column}, 6, 2) AS INTEGER) - 1)")


# -- orders ------------------------------------------------------------------------------------

PAID = "paid"
"""The order status of a purchase. Only paid orders are purchases and revenue: refunded,
cancelled, failed and pending orders are neither."""


def paid(alias: str = "") -> str:
    """SQL condition: the order is a purchase (``status = 'paid'``); ``alias`` is the orders table's alias."""
    return f"{alias + '.' if alias else ''}status = '{PAID}'"


STORE_CURRENCY_SQL = (
    f"SELECT currency FROM orders WHERE {paid()} AND currency IS NOT NULL AND currency <> '' "
    "GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1"
)
"""The store's currency: that of most paid orders (ties: alphabetical); no row when no order names one."""


def _rate_sql(currency: str, day: str) -> str:
    """Units of ``currency`` per 1 :data:`~crm_helpers.store.schema.RATES_BASE` on ``day``: the latest rate
    published on or before that day (weekends and bank holidays take the last working day's); NULL without one."""
    return (f"(CASE WHEN {currency} = '{RATES_BASE}' THEN 1.0 ELSE (SELECT fx.per_eur FROM {RATES.name} AS fx "
            f"WHERE fx.currency = {currency} AND fx.rate_date <= {day} ORDER BY fx.rate_date DESC LIMIT 1) END)")


def net_revenue_sql(alias: str = "") -> str:
    """The one definition of an order's net revenue, as an SQL expression over ``orders``.

    ``amount − refunded_amount`` (a missing refunded_amount counts as 0), in the store's currency
    (:data:`STORE_CURRENCY_SQL`). An order in another currency is converted with the
    :data:`~crm_helpers.store.schema.RATES` of its order date (the latest earlier rate, through EUR);
    without a rate for it the expression is NULL, so sums leave the order out instead of adding two
    currencies up (``crm_helpers.store.queries.unconverted_orders`` counts them for the note). An order
    without a currency is in the store's. It is revenue only for paid orders: callers pair it with
    :func:`paid`. ``alias`` is the table alias used in the query (``"o"`` gives ``o.amount``);
    without one the query must read ``FROM orders`` unaliased.
    """
    p = f"{alias}." if alias else "orders."
    net = f"({p}amount - coalesce({p}refunded_amount, 0))"
    store, own, day = f"({STORE_CURRENCY_SQL})", f"{p}currency", f"{p}order_date"
    return (f"(CASE WHEN coalesce({own}, '') IN ('', coalesce({store}, '')) THEN {net} "
            f"ELSE {net} * {_rate_sql(store, day)} / {_rate_sql(own, day)} END)")


def order_margin(orders: pd.DataFrame, margin: float) -> pd.Series:
    """The one definition of an order's gross margin, in the order's money (the store's currency).

    ``amount − cost`` when the order carries a cost, else ``amount × margin`` (``margin`` is the
    gross margin share of revenue, between 0 and 1). ``orders`` has the columns ``amount`` and
    ``cost`` (missing or non-numeric cost counts as unknown); one value per row, same index.
    """
    cost = pd.to_numeric(orders["cost"], errors="coerce")
    return (orders["amount"] - cost).where(cost.notna(), orders["amount"] * margin)


LOYALTY_MEANING = ("Of this month's paid orders, the share that are not a customer's first order, in %: the seeds' "
                   "\"customer loyalty\" (repeat purchases / all purchases).")
"""The repeat purchase share (the seeds' loyalty) in plain words, as the pages and the glossary print it."""


def loyalty(db: Database, start: dt.date | str | None, *, end: dt.date | str) -> dict[str, float]:
    """The seeds' loyalty = repeat purchases / all purchases in [start, end] (paid orders only).

    A purchase is a paid order. It is a *repeat* purchase unless it is its customer's first paid
    order ever; when a customer's first day holds several orders, one of them counts as the first
    (so over a whole record, a customer's loyalty is ``1 − 1/orders``). ``start`` None counts from
    the first order. Returns ``{"purchases", "repeat_purchases", "loyalty"}`` (loyalty 0–1, NaN
    without purchases).
    """
    # one probe per buyer of the period (a probe per order was quadratic in a customer's orders:
    # 45 s for the whole record of the 1.25M-order scale store, now about a second)
    sql = f"""
    SELECT coalesce(sum(b.n), 0) AS purchases,
           coalesce(sum(b.customer_id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM orders p WHERE p.customer_id = b.customer_id AND {paid('p')}
                 AND p.order_date < :start)), 0) AS first_purchases
    FROM (SELECT customer_id, count(*) AS n FROM orders
          WHERE {paid()} AND order_date >= :start AND order_date < :end_next GROUP BY customer_id) b
    """
    purchases, firsts = db.execute(sql, {"start": iso(start) or "", "end_next": next_day(end)}).fetchone()
    repeat = purchases - firsts
    return {"purchases": float(purchases), "repeat_purchases": float(repeat),
            "loyalty": repeat / purchases if purchases else float("nan")}


REPEAT_RATE_MEANING = "Of this month's buyers, the share who had bought before (returning or reactivated), in %."
"""The repeat rate in plain words, as the pages and the glossary print it."""


def repeat_rate(db: Database, start: dt.date | str, *, end: dt.date | str) -> float:
    """The repeat rate of [start, end], in %: of the customers with a paid order in the period, the
    share who had a paid order before ``start`` (returning or reactivated customers). NaN without buyers.

    This is the "Repeat rate" of the index and of every page; the share of buyers who *ever* bought
    twice and the 12-month repeat rate are other measures with other names.
    """
    active, before = db.execute(
        f"""SELECT count(*), coalesce(sum(EXISTS (SELECT 1 FROM orders p WHERE p.customer_id = b.customer_id
                                                 AND {paid('p')} AND p.order_date < :start)), 0)
            FROM (SELECT DISTINCT customer_id FROM orders
                  WHERE {paid()} AND order_date >= :start AND order_date < :end_next) b""",
        {"start": iso(start), "end_next": next_day(end)},
    ).fetchone()
    return 100.0 * before / active if active else float("nan")


# -- tickets -----------------------------------------------------------------------------------


def ticket_closed_sql(cutoff: str = ":cutoff", *, alias: str = "") -> str:
    """SQL condition: the ticket was closed before ``cutoff`` (an SQL value: a parameter such as
    ``:cutoff``, normally the day after the period) and is still closed: status ``closed`` and
    ``closed_at`` earlier than ``cutoff``. NULL (not true) for a closed ticket without ``closed_at``."""
    p = f"{alias}." if alias else ""
    return f"({p}status = 'closed' AND {p}closed_at < {cutoff})"


def ticket_open_sql(cutoff: str = ":cutoff", *, alias: str = "") -> str:
    """SQL condition: a ticket opened before ``cutoff`` is **open** at ``cutoff``.

    Open = not closed yet (status other than ``closed``), or closed only at or after ``cutoff``.
    A **reopened** ticket (it has a ``closed_at`` but its status is open or pending again: closed
    once, opened again) is open. A ``closed`` ticket without ``closed_at`` counts as closed. Pair it
    with ``opened_at < cutoff``.
    """
    p = f"{alias}." if alias else ""
    return f"({p}status <> 'closed' OR {p}closed_at >= {cutoff})"


def ticket_reopened_sql(cutoff: str = ":cutoff", *, alias: str = "") -> str:
    """SQL condition: the ticket was closed before ``cutoff`` but is open again (see :func:`ticket_open_sql`).

    The store keeps no ticket history, so a reopened ticket is detectable only while it is open."""
    p = f"{alias}." if alias else ""
    return f"({p}status <> 'closed' AND {p}closed_at IS NOT NULL AND {p}closed_at < {cutoff})"


# -- deals -------------------------------------------------------------------------------------

DEAL_OUTCOMES = ("won", "lost")
"""The stages of a decided deal; every other stage is open."""


def deal_status_at(stage: pd.Series, closed_at: pd.Series, *, as_of: dt.date | str) -> np.ndarray:
    """Each deal's status at the end of ``as_of``: ``won``, ``lost`` or ``open``.

    A deal is won (lost) when its stage is ``won`` (``lost``) and it closed on or before ``as_of``
    **or has no** ``closed_at`` (a won deal without a closing date is won, never open or idle). A deal
    won or lost after ``as_of`` was open then. ``closed_at`` is datetime64 (NaT when blank).
    """
    decided = stage.isin(DEAL_OUTCOMES) & ~(closed_at > pd.Timestamp(as_of))
    return np.where(decided, stage, "open")
