"""The demo business: deterministic, consistent with the schema, planted signals present."""

from __future__ import annotations

import pandas as pd

from crm_helpers.demo import generate_demo, stable_digest, write_demo
from crm_helpers.store.connection import memory_db, table_counts


def test_same_seed_same_business_other_seed_other_business():
    a = generate_demo(customers=60, months=12, seed=1, end="2026-10")
    b = generate_demo(customers=60, months=12, seed=1, end="2026-10")
    c = generate_demo(customers=60, months=12, seed=2, end="2026-10")
    assert stable_digest(a) == stable_digest(b)
    assert stable_digest(a) != stable_digest(c)


def test_demo_fits_the_schema_and_its_period(demo_business):
    db = memory_db()
    counts = write_demo(db, demo_business)
    assert counts == table_counts(db)
    orders = demo_business.tables["orders"]
    assert orders["order_date"].min() >= demo_business.start.isoformat()
    assert orders["order_date"].max() <= demo_business.end.isoformat()
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_default_size_is_about_800_buyers_over_24_months(demo_business):
    """800 buyers drawn as before, plus the 40 planted steady buyers (5 %, issue 27)."""
    buyers = demo_business.tables["orders"]["customer_id"].nunique()
    assert 700 <= buyers <= 840
    months = pd.to_datetime(demo_business.tables["orders"]["order_date"]).dt.to_period("M").nunique()
    assert months == 24


def test_types_differ_in_basket_value_and_frequency(demo_business):
    orders = demo_business.tables["orders"].merge(demo_business.truth, on="customer_id")
    per_type = orders.groupby("customer_type").agg(aov=("amount", "mean"), n=("order_id", "count"))
    per_customer = orders.groupby(["customer_type", "customer_id"]).size().groupby("customer_type").mean()
    assert per_type.loc["vip", "aov"] > 2 * per_type.loc["regular", "aov"] > 2 * per_type.loc["occasional", "aov"] / 1.5
    assert per_customer["vip"] > per_customer["regular"] > per_customer["occasional"]


def test_december_is_the_peak_month(demo_business):
    """December has the largest seasonal factor once the trend (a growing customer base) is taken
    out: classical multiplicative decomposition of the monthly order counts."""
    from statsmodels.tsa.seasonal import seasonal_decompose

    days = pd.to_datetime(demo_business.tables["orders"]["order_date"])
    monthly = days.dt.to_period("M").value_counts().sort_index()
    monthly.index = monthly.index.to_timestamp()
    seasonal = seasonal_decompose(monthly, model="multiplicative", period=12).seasonal
    assert seasonal.groupby(seasonal.index.month).first().idxmax() == 12


def test_the_demo_keeps_acquiring_customers_to_its_last_month(demo_business):
    """New customers (first paid order) in the last month are at least half the monthly average
    of the months before it: no data gap at the end of the demo (it used to stop five weeks early)."""
    orders = demo_business.tables["orders"]
    paid = orders[orders["status"] == "paid"]
    first = pd.to_datetime(paid.groupby("customer_id")["order_date"].min()).dt.to_period("M")
    per_month = first.value_counts().sort_index()
    last = pd.Period(demo_business.end, freq="M")
    assert per_month.index.max() == last
    assert per_month[last] >= 0.5 * per_month[per_month.index < last].mean()
    first_seen = pd.to_datetime(demo_business.tables["customers"]["first_seen"])
    assert first_seen.max() >= pd.Timestamp(demo_business.end) - pd.Timedelta(days=7)
