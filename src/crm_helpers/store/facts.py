"""The business facts: one home for each rule the analyses share, with its definition.

Every analysis that needs "a paid order", "net revenue", "net revenue by category", "an open
ticket", "a won deal", "an overdue deal", "a stale deal", "a lost customer", "a repeat purchase",
"bought again within a year", "the repeat rate", "the article's loyalty formula", "a month index", "up to the
end of a day" or "an ISO date" takes it from here, so the same word always means the same thing on
every page. SQL rules are expressions to paste into a
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


def on_or_before_sql(column: str, next_day_param: str = ":end_next") -> str:
    """SQL condition: the date or timestamp ``column`` falls on or before a day, up to its end.

    The one spelling of "up to the end of a day": ``column < next day`` (bind ``next_day_param`` to
    :func:`next_day` of the day), which keeps a timestamp of that day (``2026-11-30 17:05``) as well as
    its date. ``column <= day`` would drop the timestamps, and ``BETWEEN`` or ``day + 'T99'`` say the
    same thing in other words, so they are not used.
    """
    return f"{column} < {next_day_param}"


def on_or_before(values: pd.Series, day: dt.date | str) -> pd.Series:
    """Whether each date or timestamp of ``values`` (datetime64) falls on or before ``day``, up to its end.

    The pandas spelling of :func:`on_or_before_sql`: ``values < next_day(day)``, so a deal closed at
    15:00 on ``day`` is on or before it (``values <= day`` would compare with midnight and leave it
    out). NaT is not. One bool per value, same index.
    """
    return values < pd.Timestamp(next_day(day))


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


def category_revenue_sql(alias: str = "o") -> str:
    """SQL query: each paid order's net revenue split over its product categories (net revenue by category).

    Rows ``order_id, order_date, category, revenue``: the order's :func:`net_revenue_sql` (refunds taken off,
    in the store's currency) allocated to its lines in proportion to ``quantity × unit_price``
    (equally when the lines are worth 0), each line to its product's category (``"no category"``
    when it has none); an order without lines goes whole to ``"no category"``. So the categories of
    any set of orders add up to their net revenue. The orders are those of the query's ``WHERE``
    over ``orders`` aliased ``alias``: append ``AND`` conditions (the paid condition is included).
    """
    lines = ("SELECT i.order_id, coalesce(nullif(p.category, ''), 'no category') AS category, "
             "coalesce(i.quantity * i.unit_price, 0) AS worth "
             "FROM order_items i LEFT JOIN products p USING (product_id)")
    share = ("(CASE WHEN t.worth > 0 THEN l.worth / t.worth WHEN t.n > 0 THEN 1.0 / t.n ELSE 1.0 END)")
    return (f"SELECT {alias}.order_id, {alias}.order_date, coalesce(l.category, 'no category') AS category, "
            f"{net_revenue_sql(alias)} * {share} AS revenue "
            f"FROM orders {alias} LEFT JOIN ({lines}) l ON l.order_id = {alias}.order_id "
            f"LEFT JOIN (SELECT i.order_id, sum(coalesce(i.quantity * i.unit_price, 0)) AS worth, count(*) AS n "
            f"FROM order_items i GROUP BY i.order_id) t ON t.order_id = {alias}.order_id WHERE {paid(alias)}")


# -- customers ---------------------------------------------------------------------------------

REPEAT_WINDOW_DAYS = 365
"""The repeat window: "bought again" means a repeat purchase within this many days of the first.

A year, so that a customer who buys once a season (or once a year, for a yearly occasion) counts
as coming back; a shorter window would call seasonal buyers one-time buyers. A customer counts
only once they have had the whole window (their first paid order at least this many days before
the as-of day), so the share compares fairly from month to month and between channels."""


def repeat_day_sql(day: str = "order_date", first_day: str = "first_day") -> str:
    """SQL condition: a paid order on ``day`` is a **repeat purchase** of a customer whose first
    paid order was on ``first_day``: it falls on a later calendar day.

    A second paid order on the first day is not a repeat: it is a split or corrected checkout, not
    a customer coming back. Both are dates or timestamps (only their calendar days are compared).
    """
    return f"(substr({day}, 1, 10) > substr({first_day}, 1, 10))"


def buyer_repeats(db: Database, as_of: dt.date | str, *,
                  window_days: int = REPEAT_WINDOW_DAYS) -> pd.DataFrame:
    """Per buyer: purchases, repeat purchases, and whether they bought again within the window.

    One row per customer with a paid order up to the end of ``as_of``, by customer_id:
    ``purchases`` (paid orders), ``repeat_purchases`` (those on a later calendar day than the
    first, :func:`repeat_day_sql`), ``first_day`` and ``repeat_day`` (ISO dates of the first
    purchase and of the first repeat purchase, None without one), ``mature`` (the first purchase
    is at least ``window_days`` days before ``as_of``, so the whole window has been seen) and
    ``bought_again`` (mature, and the first repeat purchase at most ``window_days`` days after the
    first purchase: "bought again within :data:`REPEAT_WINDOW_DAYS` days").
    """
    if window_days < 1:
        raise ValueError(f"window_days must be at least 1, not {window_days}")
    sql = f"""
        WITH o AS (SELECT customer_id, substr(order_date, 1, 10) AS day FROM orders
                   WHERE {paid()} AND customer_id IS NOT NULL AND {on_or_before_sql("order_date")}),
             f AS (SELECT customer_id, min(day) AS first_day, count(*) AS purchases FROM o GROUP BY customer_id)
        SELECT f.customer_id, f.purchases, sum({repeat_day_sql("o.day", "f.first_day")}) AS repeat_purchases,
               f.first_day, min(CASE WHEN {repeat_day_sql("o.day", "f.first_day")} THEN o.day END) AS repeat_day
        FROM f JOIN o USING (customer_id) GROUP BY f.customer_id ORDER BY f.customer_id
    """
    rows = db.execute(sql, {"end_next": next_day(as_of)}).fetchall()
    frame = pd.DataFrame(rows, columns=["customer_id", "purchases", "repeat_purchases", "first_day", "repeat_day"])
    frame[["purchases", "repeat_purchases"]] = frame[["purchases", "repeat_purchases"]].astype("int64")
    first = pd.to_datetime(frame["first_day"])
    days = (pd.to_datetime(frame["repeat_day"]) - first).dt.days
    frame["mature"] = first <= pd.Timestamp(as_of) - pd.Timedelta(days=window_days)
    frame["bought_again"] = frame["mature"] & days.le(window_days)
    return frame


LOST_AFTER_MONTHS = 6
"""Calendar months without a paid order after which a customer is lost (the lapse window ``L``)."""


def lost_meaning(months: int = LOST_AFTER_MONTHS) -> str:
    """Lost customers, the last step of the ladder at risk → probably lost → lost, in one plain sentence
    as the index, page 06 and the glossary print it (``months``: the lapse window, calendar months)."""
    return (f"Customers whose last paid order was exactly {months} months before this month and who have not "
            "bought since: they left the customer base this month (this month's departures, not a running total).")


def lost_month_sql(last_month: str) -> str:
    """SQL expression: the month (a :func:`month_index`) in which a customer whose paid order was in
    month ``last_month`` is lost if they buy nothing after it: ``last_month + L`` (``L`` =
    :data:`LOST_AFTER_MONTHS`, or the parameter ``:lapse`` the query binds)."""
    return f"({last_month} + :lapse)"


def lost_sql(last_month: str, next_month: str) -> str:
    """SQL condition: the customer is **lost** after their paid order in month ``last_month``.

    Lost = ``L`` full calendar months pass without a paid order: their next paid order after
    ``last_month`` (``next_month``, a :func:`month_index`; NULL when there is none yet) is later than
    ``last_month + L``. They leave the customer base in month :func:`lost_month_sql`, when their last
    paid order is exactly ``L`` months back; a later order makes them reactivated, not un-lost.
    ``L`` is the parameter ``:lapse`` (normally :data:`LOST_AFTER_MONTHS`).
    """
    return f"({next_month} IS NULL OR {next_month} > {lost_month_sql(last_month)})"


LOYALTY_LABEL = "Repeat purchase share (the article's loyalty formula)"
"""The one name of :func:`loyalty` on every page and in the glossary."""

LOYALTY_MEANING = ("Of this month's paid orders, the share that are repeat purchases (on a later day than the "
                   "customer's first order), in %: the article's loyalty formula (repeat purchases / all purchases).")
"""The repeat purchase share (the article's loyalty formula) in plain words, as the pages and the glossary print it."""


def loyalty(db: Database, start: dt.date | str | None, *, end: dt.date | str) -> dict[str, float]:
    """The article's loyalty formula = repeat purchases / all purchases in [start, end] (paid orders only).

    A purchase is a paid order. It is a *repeat* purchase when it falls on a later calendar day
    than its customer's first paid order ever (:func:`repeat_day_sql`): every order of a customer's
    first day counts as first (a second order that day is a split checkout, not a return).
    ``start`` None counts from the first order. Returns ``{"purchases", "repeat_purchases",
    "loyalty"}`` (loyalty 0–1, NaN without purchases).
    """
    # one probe per buyer of the period (a probe per order was quadratic in a customer's orders:
    # 45 s for the whole record of the 1.25M-order scale store, now about a second)
    sql = f"""
    SELECT coalesce(sum(b.n), 0) AS purchases,
           coalesce(sum(CASE WHEN b.customer_id IS NULL THEN 0 ELSE (
               SELECT count(*) FROM orders f WHERE f.customer_id = b.customer_id AND {paid('f')}
                 AND f.order_date >= :start AND {on_or_before_sql("f.order_date")}
                 AND NOT {repeat_day_sql("f.order_date", "b.first_day")}) END), 0) AS first_purchases
    FROM (SELECT o.customer_id, count(*) AS n,
                 (SELECT min(p.order_date) FROM orders p WHERE p.customer_id = o.customer_id AND {paid('p')})
                   AS first_day
          FROM orders o WHERE {paid('o')} AND o.order_date >= :start AND {on_or_before_sql("o.order_date")}
          GROUP BY o.customer_id) b
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
    again and "bought again within :data:`REPEAT_WINDOW_DAYS` days" (:func:`buyer_repeats`) are other
    measures with other names. A paid order before ``start`` is always on an earlier day than the
    period's, so it agrees with :func:`repeat_day_sql`.
    """
    active, before = db.execute(
        f"""SELECT count(*), coalesce(sum(EXISTS (SELECT 1 FROM orders p WHERE p.customer_id = b.customer_id
                                                 AND {paid('p')} AND p.order_date < :start)), 0)
            FROM (SELECT DISTINCT customer_id FROM orders
                  WHERE {paid()} AND order_date >= :start AND {on_or_before_sql("order_date")}) b""",
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


def ticket_open_now_sql(alias: str = "") -> str:
    """SQL condition: the ticket is **open now**, whatever today's date: :func:`ticket_open_sql` with its
    cutoff after every stored time, so open means not closed (yet or again): status other than ``closed``.

    For the counts and lists of today (the desk's open tickets, the data-quality check), not for a
    period's end: a report as of a past day uses :func:`ticket_open_sql` with the day after it. No
    parameter to bind; ``alias`` is the tickets table's alias.
    """
    return ticket_open_sql("'9999-12-31'", alias=alias)


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

    A deal is won (lost) when its stage is ``won`` (``lost``) and it closed on or before ``as_of``, up
    to its end (:func:`on_or_before`: a deal closed at 15:00 on ``as_of`` is decided), **or has no**
    ``closed_at`` (a won deal without a closing date is won, never open or idle). A deal won or lost
    after ``as_of`` was open then. ``closed_at`` is datetime64 (NaT when blank).
    """
    decided = stage.isin(DEAL_OUTCOMES) & (closed_at.isna() | on_or_before(closed_at, as_of))
    return np.where(decided, stage, "open")


def deal_overdue(status_at: pd.Series, expected_close: pd.Series, *, as_of: dt.date | str) -> pd.Series:
    """Whether each deal is **overdue** at ``as_of``: open (``status_at``, see :func:`deal_status_at`)
    and its expected close date strictly before ``as_of``. A deal due on ``as_of`` is not overdue
    yet (it may still close today); a deal without an expected close date never is.
    ``expected_close`` is datetime64 (NaT when blank); one bool per deal, same index."""
    return (status_at == "open") & (expected_close < pd.Timestamp(as_of))


STALE_DAYS = 30
"""An open deal with no activity for more than this many days is **stale** (gone quiet, idle)."""


def deal_stale(days_since_activity: pd.Series, stale_days: int = STALE_DAYS) -> pd.Series:
    """Whether each open deal is **stale** at the as-of day: its last recorded activity (or its
    opening, when none is recorded) is more than ``stale_days`` days back
    (``days_since_activity > stale_days``, days as ``crm_helpers.analyses.sales.opportunities_as_of``
    counts them: NaN for decided deals and when unknown, never stale). One bool per deal, same index."""
    if stale_days < 0:
        raise ValueError(f"stale_days must be 0 or more, not {stale_days}")
    return days_since_activity > stale_days


# -- contacts ----------------------------------------------------------------------------------


def contacted_since_sql(customer: str, trigger: str, *, until: str = ":end_next") -> str:
    """SQL condition: the customer has been **contacted since their trigger**.

    The one rule of the call list: a person leaves it once an interaction with them is logged after
    the event that put them on it (a detractor answer, a lapse, a complaint ticket, an idle deal),
    and comes back on a new event, which is later than that interaction. True when ``interactions``
    holds a row of ``customer`` (an SQL expression, e.g. ``t.customer_id``) with ``occurred_at``
    later than ``trigger`` (an SQL expression giving an ISO date or timestamp) and before ``until``
    (the day after the as-of day, :func:`next_day`, so a contact logged after the report's day does
    not count for it). Any logged interaction counts, whatever its channel, direction or outcome: it
    is the owner's record that the person was dealt with. Compared as ISO text, so an interaction on
    the trigger's day counts when the trigger is a bare date (``2026-11-08 09:00`` is after
    ``2026-11-08``) and when it is later in the day than a timestamped trigger.
    """
    return (f"EXISTS (SELECT 1 FROM interactions AS contact WHERE contact.customer_id = {customer} "
            f"AND contact.occurred_at > {trigger} AND contact.occurred_at < {until})")


# -- tasks ---------------------------------------------------------------------------------------


def task_open_sql(cutoff: str | None = None, *, alias: str = "") -> str:
    """SQL condition: the task is **open**: not done (``done_at`` blank), or, with ``cutoff`` (an SQL
    expression giving the ISO day after the as-of day, e.g. ``:end_next``), not done before it. A
    snoozed task is open."""
    prefix = f"{alias}." if alias else ""
    if cutoff is None:
        return f"{prefix}done_at IS NULL"
    return f"({prefix}done_at IS NULL OR {prefix}done_at >= {cutoff})"


def task_due_sql(day: str = ":day", *, alias: str = "") -> str:
    """SQL condition: the task is **due** on ``day`` (an SQL expression giving an ISO date): open
    (:func:`task_open_sql`) with its due date on or before that day. It is **overdue** when its due
    date is before the day (:func:`task_overdue_sql`); a task snoozed to a later day is not due."""
    prefix = f"{alias}." if alias else ""
    return f"({task_open_sql(alias=alias)} AND {prefix}due <= {day})"


def task_overdue_sql(day: str = ":day", cutoff: str | None = None, *, alias: str = "") -> str:
    """SQL condition: the task is **overdue** on ``day``: open (at ``cutoff``, see
    :func:`task_open_sql`; blank: now) and due before that day."""
    prefix = f"{alias}." if alias else ""
    return f"({task_open_sql(cutoff, alias=alias)} AND {prefix}due < {day})"
