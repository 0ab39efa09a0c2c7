"""Cohorts: a hand-computed cohort table, repeat rates by channel, and the demo's falling retention."""

from __future__ import annotations

import datetime as dt
import math

import matplotlib
import numpy as np
import pytest
from scipy import stats

from crm_helpers.analyses import cohorts
from crm_helpers.report import plots
from crm_helpers.store.connection import memory_db

matplotlib.use("Agg")

AS_OF = dt.date(2026, 4, 30)


@pytest.fixture
def shop():
    """A, B (referral) first buy in January; C (ads) in February; D (no channel) in March after a refund;
    E (ads) in April."""
    db = memory_db()
    db.table("customers").insert_all([
        {"customer_id": "A", "acquisition_channel": "referral"},
        {"customer_id": "B", "acquisition_channel": "referral"},
        {"customer_id": "C", "acquisition_channel": "ads"}, {"customer_id": "D", "acquisition_channel": None},
        {"customer_id": "E", "acquisition_channel": "ads"},
    ])
    orders = [("A", "2026-01-05", 10, "paid"), ("A", "2026-02-07", 20, "paid"), ("A", "2026-03-01", 5, "paid"),
              ("B", "2026-01-20", 5, "paid"), ("C", "2026-02-11", 7, "paid"), ("C", "2026-02-20", 3, "paid"),
              ("C", "2026-04-02", 8, "paid"), ("D", "2026-01-10", 60, "refunded"), ("D", "2026-03-15", 50, "paid"),
              ("E", "2026-04-20", 4, "paid"), ("E", "2026-04-25", 6, "paid"), ("E", "2026-05-02", 9, "paid")]
    db.table("orders").insert_all(
        {"order_id": f"O{k}", "customer_id": c, "order_date": d, "amount": a, "status": s}
        for k, (c, d, a, s) in enumerate(orders)
    )
    return db


def test_cohort_table_by_hand(shop):
    table = cohorts.cohort_table(shop, AS_OF).set_index(["cohort", "months_since"])
    jan = table.loc["2026-01"]
    assert jan["cohort_size"].unique().tolist() == [2]
    assert jan["customers"].tolist() == [2, 1, 1, 0]
    assert jan["retention"].tolist() == [1.0, 0.5, 0.5, 0.0]
    assert jan["revenue"].tolist() == [15.0, 20.0, 5.0, 0.0]
    assert jan["revenue_per_customer"].tolist() == [7.5, 10.0, 2.5, 0.0]
    feb = table.loc["2026-02"]
    assert feb["customers"].tolist() == [1, 0, 1] and feb["revenue"].tolist() == [10.0, 0.0, 8.0]
    mar = table.loc["2026-03"]  # D's refunded January order does not make D a January customer
    assert mar["cohort_size"].iloc[0] == 1 and mar["revenue"].tolist() == [50.0, 0.0]
    apr = table.loc["2026-04"]  # E's May order is after as_of
    assert apr["customers"].tolist() == [1] and apr["revenue"].tolist() == [10.0]


def test_matrix_leaves_unobserved_months_blank(shop):
    matrix = cohorts.cohort_matrix(cohorts.cohort_table(shop, AS_OF))
    assert list(matrix.index) == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert matrix.loc["2026-02", 1] == 0.0  # observed, nobody bought
    assert math.isnan(matrix.loc["2026-02", 3]) and math.isnan(matrix.loc["2026-04", 1])


def test_retention_curve_weights_by_customers(shop):
    curve = cohorts.retention_curve(cohorts.cohort_table(shop, AS_OF)).set_index("months_since")
    assert curve.loc[0, "retention"] == 1.0 and curve.loc[0, "customers_observed"] == 5
    assert curve.loc[1, "retention"] == pytest.approx(1 / 4)  # Jan (1 of 2), Feb (0 of 1), Mar (0 of 1)
    assert curve.loc[2, "retention"] == pytest.approx(2 / 3)
    assert curve.loc[3, "retention"] == 0.0
    # Wilson 95% interval of 2 buyers out of 3 observed, by hand: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    z, n, p = 1.959964, 3, 2 / 3
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert curve.loc[2, "retention_low"] == pytest.approx((centre - half) / (1 + z * z / n), rel=1e-5)
    assert curve.loc[2, "retention_high"] == pytest.approx((centre + half) / (1 + z * z / n), rel=1e-5)
    assert (curve["retention_low"] <= curve["retention"]).all() and (curve["retention"] <= curve["retention_high"]).all()


def test_last_cohorts_keeps_the_recent_ones(shop):
    table = cohorts.cohort_table(shop, AS_OF, last_cohorts=2)
    assert sorted(table["cohort"].unique()) == ["2026-03", "2026-04"]


def test_repeat_rate_by_channel_by_hand(shop):
    table = cohorts.repeat_rate_by_channel(shop, AS_OF, window_days=30).set_index("acquisition_channel")
    assert list(table.index) == ["ads", "referral", "not recorded"]
    # A's second order comes 33 days after the first: a repeater, but not within 30 days
    assert table.loc["referral"].to_dict() == {"customers": 2, "repeaters": 1, "repeat_rate_ever": 0.5, "mature": 2,
                                               "repeaters_window": 0, "repeat_rate_window": 0.0}
    # E (first order in April) repeats but is not mature yet: only C counts in the window rate
    assert table.loc["ads", "repeat_rate_ever"] == 1.0
    assert table.loc["ads", "mature"] == 1 and table.loc["ads", "repeat_rate_window"] == 1.0
    assert table.loc["not recorded", "repeaters"] == 0


def test_empty_store_gives_empty_tables():
    db = memory_db()
    assert cohorts.cohort_table(db, AS_OF).empty
    assert cohorts.repeat_rate_by_channel(db, AS_OF).empty
    with pytest.raises(ValueError, match="window_days"):
        cohorts.repeat_rate_by_channel(db, AS_OF, window_days=0)


def test_heatmap_draws(shop):
    matrix = cohorts.cohort_matrix(cohorts.cohort_table(shop, AS_OF))
    ax = plots.plot_cohort_heatmap(matrix, title="Retention")
    assert ax.get_title() == "Retention"


# -- the demo business --------------------------------------------------------------------------------

DEMO_AS_OF = dt.date(2026, 10, 31)


@pytest.fixture(scope="module")
def demo_table(demo_db_path):
    from crm_helpers.store.connection import open_db

    return cohorts.cohort_table(open_db(demo_db_path), DEMO_AS_OF)


def test_demo_retention_falls_with_months_since_first_purchase(demo_table):
    curve = cohorts.retention_curve(demo_table).set_index("months_since")["retention"]
    rho = stats.spearmanr(curve.loc[1:18].index, curve.loc[1:18].to_numpy()).statistic
    assert rho < -0.6
    early, middle, late = curve.loc[1:3].mean(), curve.loc[10:12].mean(), curve.loc[16:18].mean()
    assert early > middle > late


def test_demo_cohorts_cover_every_buyer_and_all_revenue(demo_table, demo_business):
    orders = demo_business.tables["orders"]
    paid = orders[orders["status"] == "paid"]
    sizes = demo_table.drop_duplicates("cohort")["cohort_size"]
    assert sizes.sum() == paid["customer_id"].nunique()
    assert demo_table["revenue"].sum() == pytest.approx(paid["amount"].sum())
    assert np.allclose(demo_table.loc[demo_table["months_since"] == 0, "retention"], 1.0)


def test_demo_referred_customers_come_back_most(demo_db_path):
    """Planted: referrals bring the most VIPs and marketplace the fewest (docs/demo-data.md)."""
    from crm_helpers.store.connection import open_db

    # 180 days, not the one-year default (facts.REPEAT_WINDOW_DAYS): a year leaves only 54 marketplace
    # and 63 social buyers mature on this store, too few to tell the two apart (46.3 % and 46.0 %)
    by_channel = cohorts.repeat_rate_by_channel(open_db(demo_db_path), DEMO_AS_OF,
                                                window_days=180).set_index("acquisition_channel")
    rates = by_channel["repeat_rate_window"]
    assert rates.idxmax() == "referral" and rates.idxmin() == "marketplace", rates.round(2).to_dict()


@pytest.mark.parametrize("as_of", [dt.date(2026, 10, 31), dt.date(2025, 7, 15)])
def test_demo_cohort_cells_match_the_sql_aggregate(demo_db, as_of):
    """The cells counted in pandas equal the SQL GROUP BY that defined them before."""
    from crm_helpers.store.facts import month_index_sql, net_revenue_sql, paid

    rows = demo_db.execute(f"""
        WITH p AS (SELECT customer_id, {net_revenue_sql()} AS amount, {month_index_sql()} AS m FROM orders
                   WHERE {paid()} AND order_date <= :as_of),
             f AS (SELECT customer_id, min(m) AS cohort FROM p GROUP BY customer_id)
        SELECT f.cohort, p.m - f.cohort, count(DISTINCT p.customer_id), sum(p.amount)
        FROM p JOIN f USING (customer_id) GROUP BY f.cohort, p.m - f.cohort""", {"as_of": as_of.isoformat()}).fetchall()
    table = cohorts.cohort_table(demo_db, as_of).set_index(["cohort", "months_since"])
    assert len(rows) > 30
    for cohort, since, customers, revenue in rows:
        cell = table.loc[(f"{cohort // 12:04d}-{cohort % 12 + 1:02d}", since)]
        assert cell["customers"] == customers and cell["revenue"] == pytest.approx(revenue, rel=1e-12)
    assert table["customers"].sum() == sum(r[2] for r in rows)  # the cells without purchases are zeros
