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
from matplotlib.axes import Axes
from sqlite_utils import Database

from crm_helpers.store.queries import query_df
from crm_helpers.store.facts import month_index_sql, month_label, net_revenue_sql, paid

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
        f"WHERE {paid()} AND order_date <= :as_of",
        params={"as_of": as_of.isoformat()},
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


def repeat_rate_by_channel(db: Database, as_of: dt.date, *, window_days: int = 180) -> pd.DataFrame:
    """Repeat-purchase rate by acquisition channel, two ways.

    A *repeat purchase* is a paid order on a later day than the customer's first paid order.

    - ``repeat_rate_ever`` (naive): share of the channel's buyers with any repeat purchase up to
      ``as_of``. Customers acquired recently have had less time to come back, so a channel that
      grew lately looks worse than it is.
    - ``repeat_rate_window`` (sound): among buyers whose first purchase is at least
      ``window_days`` before ``as_of`` (``mature``), the share who bought again within
      ``window_days`` days of their first purchase: every customer gets the same time.

    Columns: ``acquisition_channel`` (``"not recorded"`` when blank), ``customers``,
    ``repeaters``, ``repeat_rate_ever``, ``mature``, ``repeaters_window``, ``repeat_rate_window``
    (shares 0-1, NaN when the denominator is 0); sorted by ``repeat_rate_window``, best first.
    """
    if window_days < 1:
        raise ValueError(f"window_days must be at least 1, not {window_days}")
    sql = f"""
        WITH p AS (
            SELECT customer_id, order_date FROM orders WHERE {paid()} AND order_date <= :as_of
        ), f AS (
            SELECT customer_id, min(order_date) AS first_date FROM p GROUP BY customer_id
        ), s AS (
            SELECT p.customer_id, min(p.order_date) AS second_date
            FROM p JOIN f USING (customer_id) WHERE p.order_date > f.first_date GROUP BY p.customer_id
        )
        SELECT coalesce(nullif(c.acquisition_channel, ''), 'not recorded') AS acquisition_channel,
               count(*) AS customers,
               count(s.second_date) AS repeaters,
               sum(f.first_date <= date(:as_of, :back)) AS mature,
               sum(f.first_date <= date(:as_of, :back)
                   AND s.second_date <= date(f.first_date, :ahead)) AS repeaters_window
        FROM f JOIN customers c USING (customer_id) LEFT JOIN s USING (customer_id)
        GROUP BY 1
    """
    params = {"as_of": as_of.isoformat(), "back": f"-{window_days} days", "ahead": f"+{window_days} days"}
    table = query_df(db, sql, params=params)
    columns = ["acquisition_channel", "customers", "repeaters", "repeat_rate_ever", "mature", "repeaters_window",
               "repeat_rate_window"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    table = table.fillna({"mature": 0, "repeaters_window": 0})
    table[["mature", "repeaters_window"]] = table[["mature", "repeaters_window"]].astype(int)
    table["repeat_rate_ever"] = table["repeaters"] / table["customers"]
    table["repeat_rate_window"] = table["repeaters_window"] / table["mature"].replace(0, np.nan)
    table = table.sort_values(["repeat_rate_window", "customers"], ascending=False, na_position="last")
    return table[columns].reset_index(drop=True)


def plot_cohort_heatmap(matrix: pd.DataFrame, *, title: str, percent: bool = True, ax: Axes | None = None) -> Axes:
    """A seaborn heatmap of :func:`cohort_matrix`: shares shown in percent, other values as they are.

    Cells are labelled with their value when there are at most 200 of them (more would be unreadable).
    The colour scale is set by months 1 and later, so that month 0 (100% retention by definition,
    the first purchase) does not wash out the differences that matter.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.45 * matrix.shape[1] + 2), max(3.0, 0.32 * matrix.shape[0] + 1)))
    shown = matrix * 100 if percent else matrix
    later = shown.drop(columns=0, errors="ignore")
    top = later.max().max() if later.notna().any().any() else None
    sns.heatmap(shown, ax=ax, cmap="crest", vmin=0, vmax=top, annot=matrix.size <= 200, fmt=".0f", cbar=True,
                annot_kws={"fontsize": 7}, cbar_kws={"label": "%" if percent else ""})
    ax.set(title=title, xlabel="months since first purchase", ylabel="first-purchase month")
    return ax


def plot_retention_curve(curve: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """:func:`retention_curve` from month 1 on, in percent, with its interval as a band.

    Month 0 (100% by definition) is left out so the scale shows the months that matter.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    later = curve[curve["months_since"] >= 1]
    ax.fill_between(later["months_since"], 100 * later["retention_low"], 100 * later["retention_high"],
                    color="#3b8ea5", alpha=0.2, label="95% interval")
    ax.plot(later["months_since"], 100 * later["retention"], marker="o", color="#3b8ea5", label="share still buying")
    ax.set(title="Share of a cohort still buying, by months since the first purchase",
           xlabel="months since first purchase", ylabel="%", ylim=(0, None))
    ax.legend(loc="lower left")
    return ax
