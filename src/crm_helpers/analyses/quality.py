"""Data-quality overview of the store: what is there, and what looks wrong.

Every figure is an SQL aggregate, so the overview stays cheap on a large store.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.queries import memoized, query_df, store_currency, unconverted_orders
from crm_helpers.store.facts import net_revenue_sql, next_day, on_or_before_sql, paid, ticket_open_now_sql
from crm_helpers.store.periods import Period
from crm_helpers.store.values import Action, Attention

DATE_COLUMNS = {
    "customers": "first_seen",
    "campaigns": "start_date",
    "orders": "order_date",
    "interactions": "occurred_at",
    "campaign_contacts": "contacted_at",
    "feedback": "submitted_at",
    "tickets": "opened_at",
    "opportunities": "opened_at",
}


def table_overview(db: Database) -> pd.DataFrame:
    """One row per table: rows, first and last date (of the table's main date column)."""
    rows = []
    for table in ("customers", "products", "campaigns", "orders", "order_items", "interactions",
                  "campaign_contacts", "feedback", "tickets", "opportunities"):
        col = DATE_COLUMNS.get(table)
        if col:
            n, first, last = db.execute(f"SELECT count(*), min({col}), max({col}) FROM {table}").fetchone()
        else:
            n, first, last = db.execute(f"SELECT count(*), NULL, NULL FROM {table}").fetchone()
        rows.append({"table": table, "rows": n, "first": (first or "")[:10], "last": (last or "")[:10]})
    return pd.DataFrame(rows)


CHECKS: dict[str, tuple[str, str]] = {
    "customers without e-mail": (
        "SELECT count(*) FROM customers WHERE email IS NULL OR email = ''",
        "Add an e-mail to reach them and to match later imports.",
    ),
    "customers without consent flag": (
        "SELECT count(*) FROM customers WHERE consent_marketing IS NULL",
        "Unknown consent counts as no consent in segment exports.",
    ),
    "paid orders without items": (
        f"SELECT count(*) FROM orders o WHERE {paid()} "
        "AND NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.order_id)",
        "Cross-sell analysis ignores these orders.",
    ),
    "orders without cost": (
        "SELECT count(*) FROM orders WHERE cost IS NULL",
        "Margins use the notebooks' default profit margin for these.",
    ),
    "orders with amount 0": (
        f"SELECT count(*) FROM orders WHERE amount = 0 AND {paid()}",
        "Free orders count as purchases but add no revenue.",
    ),
    "customers who never ordered": (
        "SELECT count(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id)",
        "Prospects and leads; they appear in the pipeline, not in RFM.",
    ),
    "open tickets": (
        f"SELECT count(*) FROM tickets WHERE {ticket_open_now_sql()}",
        "See the satisfaction review for their age.",
    ),
}


def quality_checks(db: Database) -> pd.DataFrame:
    """Counts of common data problems, each with what it means for the analyses."""
    rows = [
        {"check": name, "count": db.execute(sql).fetchone()[0], "what it means": hint}
        for name, (sql, hint) in CHECKS.items()
    ]
    return pd.DataFrame(rows)


def import_history(db: Database, limit: int = 20) -> pd.DataFrame:
    """The latest imports from the import log, newest first."""
    return query_df(
        db,
        "SELECT batch_id, imported_at, file_name, table_name, inserted, updated, unchanged, rejected "
        "FROM import_log ORDER BY batch_id DESC LIMIT ?",
        params=[limit],
    )


# -- data gaps ---------------------------------------------------------------------------------------

GAP_CHANCE = 0.01
"""A silence or a thin month is reported when it would happen by chance less often than this."""

BASELINE_DAYS = 365
"""The usual pace of a table is measured over this many days before its newest row."""

FIRST_PAID_ORDERS = f"SELECT min(order_date) AS day FROM orders WHERE {paid()} GROUP BY customer_id"
"""One row per customer: the day of their first paid order (a new customer, as in the sales figures)."""


@dataclass(frozen=True)
class DataGap:
    """A hole in the data that would mislead the analyses: what, since when, how unlikely by chance.

    ``money`` is a rough size of what the gap hides, in the store's currency (the orders or first
    orders missing at the usual pace, times their usual amount; 0 when the table carries no money).
    """

    check: str
    table: str
    finding: str
    chance: float
    money: float


def _silence(db: Database, name: str, table: str, days_sql: str, as_of: dt.date,
             value_sql: str | None) -> DataGap | None:
    """The gap from the newest row of ``days_sql`` (one ``day`` per row) to ``as_of``, if unusual.

    The rows of the year before the newest one are taken as a Poisson process of rate λ a day; a
    silence of g days then happens by chance with probability exp(−λg).
    """
    newest = db.execute(f"SELECT max(substr(day, 1, 10)) FROM ({days_sql}) WHERE {on_or_before_sql('day')}",
                        {"end_next": next_day(as_of)}).fetchone()[0]
    if not newest:
        return None
    last = dt.date.fromisoformat(newest)
    silence = (as_of - last).days
    since = (last - dt.timedelta(days=BASELINE_DAYS)).isoformat()
    count = db.execute(f"SELECT count(*) FROM ({days_sql}) WHERE day >= :since_next AND {on_or_before_sql('day')}",
                       {"since_next": next_day(since), "end_next": next_day(newest)}).fetchone()[0]
    rate = count / BASELINE_DAYS
    chance = math.exp(-rate * silence)
    if silence < 7 or chance >= GAP_CHANCE:
        return None
    each = db.execute(value_sql).fetchone()[0] if value_sql else 0.0
    expected = rate * silence
    finding = (f"No {name} since {last:%d %B %Y} ({silence} days before {as_of:%d %B}); at the usual pace of "
               f"about {rate * 30.4:,.0f} a month, {expected:,.0f} were expected. Is an export missing?")
    return DataGap(f"no {name} for longer than usual", table, finding, chance, expected * float(each or 0.0))


def _thin_months(db: Database, as_of: dt.date, months: int = 24, neighbours: int = 2) -> list[DataGap]:
    """Months with far fewer paid orders than the months around them (Poisson lower tail < GAP_CHANCE
    at the neighbours' mean, and under half of it)."""
    from scipy import stats  # imported here: page 01 otherwise pays for scipy at start-up

    frame = query_df(db, "SELECT substr(order_date, 1, 7) AS month, count(*) AS orders, avg(amount) AS amount "
                         f"FROM orders WHERE {paid()} AND {on_or_before_sql('order_date')} GROUP BY month ORDER BY month",
                     params={"end_next": next_day(as_of)})
    if len(frame) < 3:
        return []
    frame = frame.set_index("month").reindex(pd.period_range(frame["month"].iloc[0], as_of.strftime("%Y-%m"),
                                                             freq="M").strftime("%Y-%m"))
    frame["orders"] = frame["orders"].fillna(0)
    counts = frame["orders"].to_numpy()
    gaps = []
    for i in range(max(1, len(frame) - months), len(frame)):  # the store's first month is a partial start
        around = [counts[j] for j in range(i - neighbours, i + neighbours + 1) if j != i and 0 <= j < len(counts)]
        usual = sum(around) / len(around)
        chance = float(stats.poisson.cdf(counts[i], usual))
        if counts[i] < usual / 2 and chance < GAP_CHANCE:
            month = dt.date.fromisoformat(frame.index[i] + "-01")
            amount = float(frame["amount"].dropna().mean())  # the average paid order
            gaps.append(DataGap(
                "a month with far fewer orders", "orders",
                f"{month:%B %Y} has {counts[i]:,.0f} paid orders; the months around it have about {usual:,.0f}. "
                "Are orders missing from an import?",
                chance, float((usual - counts[i]) * amount)))
    return gaps


@memoized
def data_gaps(db: Database, as_of: dt.date) -> list[DataGap]:
    """Holes in the data up to ``as_of`` (the period's last day) that would mislead the analyses.

    Three checks: no new customers (first paid orders) for longer than usual; a table whose newest
    row is far older than ``as_of`` given its usual pace; a month with far fewer paid orders than
    the months around it. "Longer than usual" and "far fewer" mean: less likely than
    :data:`GAP_CHANCE` by chance (Poisson). Biggest money first. Memoized (:func:`memoized`): the
    list is shared with :func:`attention_items`, treat it as read-only.
    """
    first_order = (f"SELECT avg(amount) FROM orders o WHERE {paid()} AND order_date = "
                   f"(SELECT min(order_date) FROM orders f WHERE f.customer_id = o.customer_id AND {paid()})")
    found = [_silence(db, "new customers", "customers", FIRST_PAID_ORDERS, as_of, first_order)]
    for table, column in DATE_COLUMNS.items():
        if table in ("campaigns", "campaign_contacts", "customers"):
            continue  # campaigns and their contacts come in bursts, not at a pace; customers: the check above
        value = f"SELECT avg(amount) FROM orders WHERE {paid()}" if table == "orders" else None
        found.append(_silence(db, f"{table.replace('_', ' ')} rows", table,
                              f"SELECT {column} AS day FROM {table}", as_of, value))
    gaps = [g for g in found if g is not None] + _thin_months(db, as_of)
    return sorted(gaps, key=lambda g: -g.money)


def attention_items(db: Database, *, period: Period) -> list[Attention]:
    """Each of :func:`data_gaps` up to ``period``'s last day as a "Needs attention" item, with the
    money the gap may hide (in the store's currency)."""
    return [Attention(f"data_gap {gap.check} {gap.table}", gap.finding, money=gap.money)
            for gap in data_gaps(db, period.end)]


MIN_HISTORY_MONTHS = 12
"""Fewer calendar months of paid orders than this (up to the report month) are too little history to
trust the models of customer value, churn and the forecast: :func:`actions` says so."""


def actions(db: Database, *, period: Period) -> list[Action]:
    """The data gaps up to ``period``'s end as actions, money in the store's currency:

    - paid orders left out of every money figure for want of an exchange rate
      (:func:`~crm_helpers.store.queries.unconverted_orders`): import the rates. Money = the left-out
      orders × the average net revenue of a counted paid order (a rough size; no range);
    - each of :func:`data_gaps` (a missing export, a thin month), with the money it may hide; a gap
      in a table without money has no estimate and ranks last;
    - fewer than :data:`MIN_HISTORY_MONTHS` months of paid orders: import the earlier ones. No money
      estimate; ranked at one month's net revenue (the average of the months held), the size of the
      figures it leaves unsure.
    """
    currency = store_currency(db)
    found = []
    window = {"end_next": next_day(period.end)}
    orders, revenue, months = db.execute(
        f"SELECT count({net_revenue_sql()}), sum({net_revenue_sql()}), count(DISTINCT substr(order_date, 1, 7)) "
        f"FROM orders WHERE {paid()} AND {on_or_before_sql('order_date')}", window).fetchone()
    if left_out := unconverted_orders(db):
        counts = ", ".join(f"{n:,} in {c}" for c, n in left_out.items())
        found.append(Action(
            "exchange rates missing",
            f"Import the ECB exchange rates (eurofxref-hist.csv, with `crm import FILE`): {sum(left_out.values()):,} "
            f"paid orders ({counts}) are left out of every money figure, which is in {currency}.",
            sum(left_out.values()) * (revenue or 0.0) / max(orders or 0, 1), currency=currency,
            page="01_import_and_entry", section="What the store holds"))
    for gap in data_gaps(db, period.end):
        found.append(Action(
            f"data gap {gap.check} {gap.table}", gap.finding, gap.money if gap.money > 0 else None, currency=currency,
            page="01_import_and_entry", section="Gaps in the data", rule="" if gap.money > 0 else "no money estimate: ranked last"))
    if orders and months < MIN_HISTORY_MONTHS:
        found.append(Action(
            "too little history",
            f"Import your earlier orders if you have them: the store holds {months} month{'s' if months != 1 else ''} "
            f"of paid orders, too little to trust customer value, churn scores and the forecast.",
            None, currency=currency, page="01_import_and_entry", section="What the store holds", rank_money=(revenue or 0.0) / months,
            rule="no money estimate: ranked at one month's net revenue, the size of the figures it leaves unsure"))
    return found


def data_gap_table(gaps: list[DataGap], db: Database) -> pd.DataFrame:
    """The gaps as a table for the owner: check, table, what we found, money it may hide."""
    currency = store_currency(db)
    return pd.DataFrame([{"check": g.check, "table": g.table, "what we found": g.finding,
                          f"may hide ({currency})": round(g.money)} for g in gaps],
                        columns=["check", "table", "what we found", f"may hide ({currency})"])
