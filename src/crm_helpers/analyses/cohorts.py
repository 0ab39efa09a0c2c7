"""Cohorts: who keeps buying after their first purchase, and which acquisition channels bring repeat buyers.

A customer's **cohort** is the calendar month of their first paid order; **months since** is the
number of calendar months from that month (0 = the first month). Only paid orders count
(refunded and cancelled orders are not purchases), and everything is as of a given date.
The repeat rates are aggregated in SQLite; the cohort table reads one small row per paid order
(customer, net revenue, month) and counts in pandas (see :func:`cohort_table`).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.queries import query_df
from crm_helpers.store.facts import (
    REPEAT_WINDOW_DAYS,
    buyer_repeats,
    month_index_sql,
    month_label,
    net_revenue_sql,
    next_day,
    on_or_before_sql,
    paid,
)

_COHORT_COLUMNS = ["cohort", "months_since", "cohort_size", "customers", "retention", "revenue", "revenue_per_customer"]


def cohort_table(db: Database, as_of: dt.date, *, last_cohorts: int | None = None) -> pd.DataFrame:
    """Retention and revenue by first-purchase month × months since, in long form.

    One row per (cohort, months_since) from 0 up to ``as_of``'s month; columns

    - ``cohort`` (``YYYY-MM`` of the first paid order), ``months_since`` (0, 1, ...),
    - ``cohort_size``: customers whose first paid order is in the cohort month,
    - ``customers``: of those, how many have a paid order in that month,
    - ``retention``: customers / cohort_size (share still buying, 0-1; 1 at months_since 0),
    - ``revenue``: net revenue (sum of paid orders' amounts less refunds) of the cohort in that month,
    - ``revenue_per_customer``: revenue / cohort_size (per customer acquired, not per buyer).

    Months that are observed but without purchases show 0; the month of ``as_of`` counts orders up
    to ``as_of`` only. ``last_cohorts`` keeps only the most recent cohorts. An empty store gives an
    empty frame with these columns.
    """
    # one row per paid order, counted in pandas: SQLite's GROUP BY with count(DISTINCT) per cell
    # sorted the 1.2M orders of the scale store twice (9.2 s of CPU; 3.5 s this way, same cells)
    orders = query_df(
        db,
        f"SELECT customer_id, {net_revenue_sql()} AS amount, {month_index_sql()} AS m FROM orders "
        f"WHERE {paid()} AND {on_or_before_sql('order_date')}",
        params={"end_next": next_day(as_of)},
    )
    if orders.empty:
        return pd.DataFrame(columns=_COHORT_COLUMNS)
    customer = pd.factorize(orders["customer_id"])[0]
    month = orders["m"].to_numpy(dtype=np.int64)
    first = pd.Series(month).groupby(customer).transform("min").to_numpy()
    grouped = pd.DataFrame({"cohort": first, "months_since": month - first, "customer": customer,
                            "amount": pd.to_numeric(orders["amount"]).astype(float)}).groupby(["cohort", "months_since"])
    cells = pd.DataFrame({"customers": grouped["customer"].nunique(),
                          "revenue": grouped["amount"].sum(min_count=1)}).reset_index()
    last = as_of.year * 12 + as_of.month - 1
    cohorts = np.arange(int(cells["cohort"].min()), last + 1)
    if last_cohorts is not None:
        cohorts = cohorts[-last_cohorts:]
    grid = pd.DataFrame(
        [(c, k) for c in cohorts for k in range(last - c + 1)], columns=["cohort", "months_since"]
    )
    table = grid.merge(cells, on=["cohort", "months_since"], how="left").fillna({"customers": 0, "revenue": 0.0})
    sizes = table.loc[table["months_since"] == 0].set_index("cohort")["customers"]
    table["cohort_size"] = table["cohort"].map(sizes).astype(int)
    table = table[table["cohort_size"] > 0].copy()
    table["customers"] = table["customers"].astype(int)
    table["retention"] = table["customers"] / table["cohort_size"]
    table["revenue_per_customer"] = table["revenue"] / table["cohort_size"]
    table["cohort"] = table["cohort"].map(month_label)
    return table[_COHORT_COLUMNS].reset_index(drop=True)


def cohort_matrix(table: pd.DataFrame, value: str = "retention") -> pd.DataFrame:
    """Pivot :func:`cohort_table` to cohorts (rows, oldest first) × months since (columns).

    Cells not yet observed (after ``as_of``) are NaN, unlike observed months without purchases (0).
    """
    return table.pivot(index="cohort", columns="months_since", values=value).sort_index()


def retention_curve(table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Average retention by months since first purchase, over every cohort observed that long.

    Columns: ``months_since, cohorts, customers_observed, retention, retention_low,
    retention_high`` where retention is the customer-weighted share still buying (sum of buyers /
    sum of cohort sizes, 0-1) and low/high its Wilson interval at ``confidence``. Late months are
    observed for the oldest cohorts only: the interval shows how little a point there rests on.
    """
    from statsmodels.stats.proportion import proportion_confint

    grouped = table.groupby("months_since").agg(
        cohorts=("cohort", "size"), customers_observed=("cohort_size", "sum"), buyers=("customers", "sum")
    )
    grouped["retention"] = grouped["buyers"] / grouped["customers_observed"]
    low, high = proportion_confint(grouped["buyers"], grouped["customers_observed"], alpha=1 - confidence,
                                   method="wilson")
    grouped["retention_low"], grouped["retention_high"] = low, high
    return grouped.drop(columns="buyers").reset_index()


def repeat_rate_by_channel(db: Database, as_of: dt.date, *, window_days: int = REPEAT_WINDOW_DAYS) -> pd.DataFrame:
    """Repeat-purchase rate by acquisition channel, two ways.

    A *repeat purchase* is a paid order on a later calendar day than the customer's first paid
    order (:func:`crm_helpers.store.facts.buyer_repeats`; a second order the same day is not one).

    - ``repeat_rate_ever`` (naive): share of the channel's buyers with any repeat purchase up to
      ``as_of``. Customers acquired recently have had less time to come back, so a channel that
      grew lately looks worse than it is.
    - ``repeat_rate_window`` (sound): among buyers whose first purchase is at least
      ``window_days`` (:data:`~crm_helpers.store.facts.REPEAT_WINDOW_DAYS`) before ``as_of``
      (``mature``), the share who bought again within ``window_days`` days of their first
      purchase: every customer gets the same time.

    Columns: ``acquisition_channel`` (``"not recorded"`` when blank), ``customers``,
    ``repeaters``, ``repeat_rate_ever``, ``mature``, ``repeaters_window``, ``repeat_rate_window``
    (shares 0-1, NaN when the denominator is 0); sorted by ``repeat_rate_window``, best first.
    """
    buyers = buyer_repeats(db, as_of, window_days=window_days)
    columns = ["acquisition_channel", "customers", "repeaters", "repeat_rate_ever", "mature", "repeaters_window",
               "repeat_rate_window"]
    if buyers.empty:
        return pd.DataFrame(columns=columns)
    channels = query_df(db, "SELECT customer_id, coalesce(nullif(acquisition_channel, ''), 'not recorded') "
                            "AS acquisition_channel FROM customers")
    buyers = buyers.merge(channels, on="customer_id", how="inner")
    table = buyers.assign(repeater=buyers["repeat_day"].notna()).groupby("acquisition_channel").agg(
        customers=("customer_id", "size"), repeaters=("repeater", "sum"), mature=("mature", "sum"),
        repeaters_window=("bought_again", "sum")).reset_index()
    table[["repeaters", "mature", "repeaters_window"]] = table[["repeaters", "mature", "repeaters_window"]].astype(int)
    table["repeat_rate_ever"] = table["repeaters"] / table["customers"]
    table["repeat_rate_window"] = table["repeaters_window"] / table["mature"].replace(0, np.nan)
    table = table.sort_values(["repeat_rate_window", "customers"], ascending=False, na_position="last")
    return table[columns].reset_index(drop=True)
