"""The purchase rhythm: who buys regularly, when their next order is due, and who is late for it.

A customer's **purchase days** are the distinct days with a paid order (:func:`~crm_helpers.store.facts.paid`)
up to ``as_of``; two orders on one day are one purchase. Their **intervals** are the days between
consecutive purchase days. For every customer with at least :data:`MIN_PURCHASES` purchase days:

- the **usual interval** is the median interval (days), and the expected next order is the last
  purchase day plus the usual interval;
- **regularity** is the coefficient of variation (CV) of the intervals (sample standard deviation
  / mean). A buyer whose orders come at random moments (a Poisson buyer, the assumption of BG/NBD)
  has exponential gaps, CV 1; Gamma(k) gaps (the "CNBD-k" of BG/CNBD-k, an Erlang-k clock) have CV
  1/√k. A customer is **regular** when the CV is at most :data:`MAX_CV` (Gamma shape k ≥ 6.25): a plain
  measure, read from the customer's own orders, that needs no model fit and says what the owner
  sees ("every seven weeks, give or take five days"). A BG/CNBD-k fit gives one k for everybody,
  not which customers are regular, so it was not used;
- **late for their usual reorder**: a regular customer whose expected date is more than their own
  **tolerance** past (as_of − expected date > tolerance), the tolerance being twice their robust
  spread (2 × 1.4826 × the median absolute deviation of their intervals, about two standard
  deviations for normal spread) and at least :data:`MIN_TOLERANCE_DAYS`;
- the **usual order value** is the median net revenue (:func:`~crm_helpers.store.facts.net_revenue_sql`)
  of their purchase days, in the store's currency: what the shop misses per reorder that does not
  come.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.facts import net_revenue_sql, next_day, on_or_before_sql, paid
from crm_helpers.store.periods import Period
from crm_helpers.store.queries import memoized, query_df, store_currency
from crm_helpers.i18n import t, tn
from crm_helpers.store.values import Action, Attention, Headline, named_list, money_whole

MIN_PURCHASES = 5
"""Purchase days a customer needs before their rhythm is judged (four intervals)."""
MAX_CV = 0.4
"""Largest coefficient of variation of the intervals for a **regular** customer. On the demo store
3 of 221 random-moment buyers with five or more purchase days come below it (CV 1 expected)."""
MIN_TOLERANCE_DAYS = 7
"""The smallest tolerance past the expected date, in days: a week, whatever the customer's spread."""
MAD_TO_SD = 1.4826
"""Median absolute deviation × this = standard deviation, for normally spread intervals."""

COLUMNS = ["customer_id", "name", "purchases", "first_purchase", "last_purchase", "interval_days", "spread_days",
           "cv", "regular", "expected_date", "tolerance_days", "days_late", "late", "order_value", "value_per_year"]


@dataclass(frozen=True)
class PurchaseRhythm:
    """Every customer with at least ``min_purchases`` purchase days as of ``as_of``, with their rhythm.

    ``customers`` has one row per such customer, columns :data:`COLUMNS`: purchases (purchase
    days), first_purchase and last_purchase (dates), interval_days (median interval, days),
    spread_days (1.4826 × median absolute deviation of the intervals, days), cv (sample standard
    deviation / mean of the intervals), regular (cv ≤ ``max_cv``), expected_date (last purchase +
    usual interval), tolerance_days (2 × spread, at least :data:`MIN_TOLERANCE_DAYS`), days_late
    (as_of − expected date, days; negative: not due yet), late (regular and days_late > tolerance),
    order_value (median net revenue per purchase day, ``currency``), value_per_year (order_value ×
    365 / interval_days, ``currency``). Sorted by order_value, largest first.
    """

    as_of: dt.date
    customers: pd.DataFrame
    currency: str
    min_purchases: int = MIN_PURCHASES
    max_cv: float = MAX_CV

    @property
    def ok(self) -> bool:
        """Whether any customer has enough purchase days to judge a rhythm."""
        return not self.customers.empty

    @property
    def message(self) -> str:
        """Plain words when there is nothing to show; empty otherwise."""
        if self.ok:
            return ""
        return (f"No customer has {self.min_purchases} or more days with a paid order up to {self.as_of:%Y-%m-%d}, "
                "so nobody's usual reorder interval can be told yet; this page fills in as customers come back.")

    @property
    def regulars(self) -> pd.DataFrame:
        """The regular customers (cv ≤ max_cv), largest usual order first."""
        return self.customers.loc[self.customers["regular"].astype(bool)]

    @property
    def late(self) -> pd.DataFrame:
        """The regular customers late for their usual reorder, largest usual order first (money at stake)."""
        return self.customers.loc[self.customers["late"].astype(bool)]


def rhythm_of(purchases: pd.DataFrame, as_of: dt.date, *, min_purchases: int = MIN_PURCHASES,
              max_cv: float = MAX_CV) -> pd.DataFrame:
    """The rhythm of each customer from their purchases.

    ``purchases``: one row per paid order, columns customer_id, order_date (date or ISO text) and
    revenue (net revenue in the store's currency; NaN when it cannot be converted). Orders of one
    day are one purchase day (their revenue added). Returns the :data:`COLUMNS` frame described in
    :class:`PurchaseRhythm` (``name`` taken from a ``name`` column when ``purchases`` has one),
    largest order_value first.
    """
    if purchases.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame = purchases.assign(day=pd.to_datetime(purchases["order_date"]).dt.normalize())
    names = frame.groupby("customer_id")["name"].first() if "name" in frame else None
    days = frame.groupby(["customer_id", "day"])["revenue"].sum(min_count=1).reset_index()
    days = days[days.groupby("customer_id")["day"].transform("size") >= min_purchases]
    if days.empty:
        return pd.DataFrame(columns=COLUMNS)
    days = days.sort_values(["customer_id", "day"])
    days["gap"] = days.groupby("customer_id")["day"].diff().dt.days
    gaps = days.dropna(subset=["gap"]).groupby("customer_id")["gap"]
    per = pd.DataFrame({
        "purchases": days.groupby("customer_id").size(),
        "first_purchase": days.groupby("customer_id")["day"].min().dt.date,
        "last_purchase": days.groupby("customer_id")["day"].max(),
        "interval_days": gaps.median(),
        "spread_days": MAD_TO_SD * gaps.apply(lambda g: float(np.median(np.abs(g - np.median(g))))),
        "cv": gaps.std(ddof=1) / gaps.mean(),
        "order_value": days.groupby("customer_id")["revenue"].median(),
    })
    per["regular"] = per["cv"] <= max_cv
    expected = per["last_purchase"] + pd.to_timedelta(per["interval_days"], unit="D")
    per["expected_date"] = expected.dt.date
    per["last_purchase"] = per["last_purchase"].dt.date
    per["tolerance_days"] = np.maximum(2 * per["spread_days"], MIN_TOLERANCE_DAYS)
    per["days_late"] = (pd.Timestamp(as_of) - expected).dt.days
    per["late"] = per["regular"] & (per["days_late"] > per["tolerance_days"])
    per["value_per_year"] = per["order_value"] * 365 / per["interval_days"]
    per["name"] = names.reindex(per.index) if names is not None else None
    per = per.reset_index()
    return per[COLUMNS].sort_values(["order_value", "customer_id"], ascending=[False, True],
                                    na_position="last", ignore_index=True)


@memoized
def purchase_rhythm(db: Database, as_of: dt.date, *, min_purchases: int = MIN_PURCHASES,
                    max_cv: float = MAX_CV) -> PurchaseRhythm:
    """The purchase rhythm of every customer of the store as of ``as_of`` (paid orders up to the end
    of that day), see :class:`PurchaseRhythm`. Memoized (:func:`~crm_helpers.store.queries.memoized`):
    treat the result as read-only."""
    purchases = query_df(
        db,
        f"SELECT o.customer_id, o.order_date, {net_revenue_sql('o')} AS revenue, c.name "
        f"FROM orders o LEFT JOIN customers c USING (customer_id) "
        f"WHERE {paid('o')} AND {on_or_before_sql('o.order_date')}",
        params={"end_next": next_day(as_of)},
    )
    purchases["revenue"] = pd.to_numeric(purchases["revenue"], errors="coerce")
    table = rhythm_of(purchases, as_of, min_purchases=min_purchases, max_cv=max_cv)
    return PurchaseRhythm(as_of, table, store_currency(db), min_purchases=min_purchases, max_cv=max_cv)


def late_regulars(db: Database, *, as_of: dt.date) -> pd.DataFrame:
    """The regular customers late for their usual reorder on ``as_of``, largest usual order first:
    the :class:`PurchaseRhythm` columns, order_value and value_per_year in the store's currency.
    Shared (memoized): treat it as read-only."""
    return purchase_rhythm(db, as_of).late


def headline_figures(db: Database, *, period: Period, previous: Period | None = None) -> list[Headline]:
    """Regular customers late for their usual reorder at ``period``'s last day beside ``previous``'s
    (default: the month before): a count (a counted fact), its note saying of how many regular
    buyers. The money of their usual orders is the action's (:func:`actions`), not a second figure:
    the index's table stays short."""
    prev = previous or period.previous_month()
    now, before = purchase_rhythm(db, period.end), purchase_rhythm(db, prev.end)
    return [
        Headline("late_regulars", len(now.late), "Regular buyers late for their usual reorder", good="down",
                 previous=len(before.late), exact=True, lowest=0,
                 note=t("of {count} customers with {days}+ purchase days who reorder at a steady interval: past "
                        "their expected order date by more than their own spread", count=len(now.regulars),
                        days=MIN_PURCHASES)),
    ]


def attention_items(db: Database, *, period: Period) -> list[Attention]:
    """One item when regular customers are late for their usual reorder at ``period``'s last day:
    how many, the money of one usual order each (store currency) and who to contact first."""
    late = purchase_rhythm(db, period.end).late
    if late.empty:
        return []
    money = float(late["order_value"].sum())
    currency = store_currency(db) or "in the store currency"
    first = late.iloc[0]
    who = first["name"] or first["customer_id"]
    fields = dict(money=money_whole(money, currency), who=who, days=f"{first['days_late']:.0f}")
    sentence = tn("1 regular buyer is late for their usual reorder (one usual order each: {money}): get in touch, "
                  "starting with {who} ({days} days past their expected order).",
                  "{n} regular buyers are late for their usual reorder (one usual order each: {money}): get in "
                  "touch, starting with {who} ({days} days past their expected order).", n=len(late), **fields)
    return [Attention("late regulars", sentence, money=money)]


LATE_SECTION = "Late for their usual reorder"
"""The heading of page 02's section on the purchase rhythm (the action links to it)."""


def actions(db: Database, *, period: Period) -> list[Action]:
    """One action when regular customers are late for their usual reorder at ``period``'s last day:
    get in touch, the biggest usual orders first by name. Money: one usual order of each (store
    currency), the order that is not coming; it replaces the "late regulars" attention item."""
    late = purchase_rhythm(db, period.end).late
    if late.empty:
        return []
    money = float(late["order_value"].sum())
    names = [str(row["name"] or row["customer_id"]) for _, row in late.head(3).iterrows()]
    sentence = tn("Get in touch with the regular buyer who is later than their own rhythm for their usual reorder, "
                  "the biggest usual orders first: {names}.",
                  "Get in touch with the {n} regular buyers who are later than their own rhythm for their usual "
                  "reorder, the biggest usual orders first: {names}.", n=len(late),
                  names=named_list(names, more=len(late) - len(names)))
    return [Action("late regulars", sentence, money, currency=store_currency(db), page="02_segmentation",
                   section=LATE_SECTION, replaces="late regulars")]
