"""Campaign ROMI: attribution, gross and net ROMI, incremental revenue, edge cases and the planted campaigns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crm_helpers.analyses import romi
from crm_helpers.store.connection import memory_db, open_db
from crm_helpers.store.periods import parse_month

from support import DEMO_MONTH_END

AS_OF = "2026-04-30"


@pytest.fixture
def shop():
    """A hand-made store: four campaigns, eight customers, a dozen orders (see the comments)."""
    db = memory_db()
    people = ["A", "B", "C", "D", "E", "F", "G"]
    db.table("customers").insert_all(
        [{"customer_id": c, "name": c, "first_seen": "2026-01-01", "consent_marketing": 1} for c in people]
        + [{"customer_id": "N", "name": "N", "first_seen": "2026-03-05", "consent_marketing": 1}]
    )
    db.table("campaigns").insert_all([
        {"campaign_id": "K1", "name": "Newsletter", "channel": "email", "start_date": "2026-03-01", "cost": 100.0},
        {"campaign_id": "K2", "name": "Free post", "channel": "social", "start_date": "2026-03-05", "cost": 0.0},
        {"campaign_id": "K3", "name": "Fair", "channel": "event", "start_date": "2026-03-10", "cost": 50.0},
        {"campaign_id": "K4", "name": "Referral", "channel": "referral", "start_date": "2026-01-01", "cost": 40.0},
        {"campaign_id": "K5", "name": "Next year", "channel": "email", "start_date": "2027-01-01", "cost": 10.0},
    ])
    db.table("campaign_contacts").insert_all([
        {"campaign_id": "K1", "customer_id": "A", "contacted_at": "2026-03-01", "responded": 1},
        {"campaign_id": "K1", "customer_id": "B", "contacted_at": "2026-03-01", "responded": 0},
        {"campaign_id": "K1", "customer_id": "C", "contacted_at": "2026-03-02", "responded": 0},
        {"campaign_id": "K2", "customer_id": "A", "contacted_at": "2026-03-05", "responded": 0},
    ])
    orders = [(f"P{c}", c, "2026-02-01", 10.0, None, None, "paid") for c in people]  # everyone active before
    orders += [
        ("A1", "A", "2026-03-10", 100.0, 40.0, None, "paid"),  # contacted by K1 then K2: first touch K1
        ("B1", "B", "2026-03-05", 50.0, None, "K1", "paid"),  # carries K1's code; no cost: margin 0.3 × 50
        ("B2", "B", "2026-03-20", 100.0, 30.0, None, "paid"),  # in K1's window
        ("C1", "C", "2026-04-15", 80.0, 20.0, None, "paid"),  # 44 days after the contact: outside the window
        ("C2", "C", "2026-03-03", 20.0, 5.0, None, "refunded"),  # not revenue
        ("D1", "D", "2026-03-10", 30.0, 10.0, None, "paid"),  # not contacted
        ("N1", "N", "2026-03-06", 60.0, 20.0, "K4", "paid"),  # referred: first order carries K4's code
        ("N2", "N", "2026-03-20", 40.0, 10.0, None, "paid"),
    ]
    db.table("orders").insert_all([
        dict(zip(["order_id", "customer_id", "order_date", "amount", "cost", "campaign_id", "status"], o))
        for o in orders
    ])
    return db


@pytest.fixture
def shop_table(shop) -> pd.DataFrame:
    return romi.campaign_table(shop, AS_OF, attribution_window_days=30, margin=0.3, n_boot=500).set_index("campaign_id")


def test_attribution_by_hand(shop):
    first = romi.attributed_orders(shop, AS_OF, attribution_window_days=30, margin=0.3).set_index("order_id")
    assert sorted(first.index) == ["A1", "B1", "B2", "N1"]
    assert first.loc["A1", "campaign_id"] == "K1" and first.loc["A1", "how"] == "contact"
    assert first.loc["B1", "how"] == "code" and first.loc["B1", "margin"] == pytest.approx(15.0)
    assert first.loc["A1", "margin"] == pytest.approx(60.0)
    last = romi.attributed_orders(shop, AS_OF, touch="last", margin=0.3).set_index("order_id")
    assert last.loc["A1", "campaign_id"] == "K2"
    five_days = romi.attributed_orders(shop, AS_OF, attribution_window_days=5).set_index("order_id")
    assert five_days.loc["A1", "campaign_id"] == "K2"  # K1's contact is 9 days before: only K2's window holds it
    four_days = romi.attributed_orders(shop, AS_OF, attribution_window_days=4).set_index("order_id")
    assert "A1" not in four_days.index and "B1" in four_days.index  # a code counts whatever the window


def test_romi_by_hand(shop_table):
    k1 = shop_table.loc["K1"]
    assert (k1["contacted"], k1["responded"], k1["buyers"], k1["attributed_orders"]) == (3, 1, 2, 3)
    assert k1["attributed_revenue"] == pytest.approx(250.0)  # 100 + 50 + 100
    assert k1["attributed_margin"] == pytest.approx(145.0)  # 60 + 15 + 70
    assert k1["gross_romi_pct"] == pytest.approx(250.0)  # 250 / 100 × 100%
    assert k1["net_romi_pct"] == pytest.approx(45.0)  # (145 − 100) / 100
    assert k1["payback_days"] == pytest.approx(19.0)  # margin reaches 15, 75, 145: covered on 2026-03-20
    assert k1["kind"] == "retention" and pd.isna(k1["cost_per_acquired"])
    k4 = shop_table.loc["K4"]
    assert k4["acquired_customers"] == 1 and k4["cost_per_acquired"] == pytest.approx(40.0)
    assert k4["gross_romi_pct"] == pytest.approx(150.0) and k4["net_romi_pct"] == pytest.approx(0.0)
    assert k4["payback_days"] == pytest.approx(64.0) and k4["kind"] == "acquisition"
    assert "K5" not in shop_table.index  # starts after the as-of date


def test_incremental_revenue_by_hand(shop):
    lift = romi.incremental_revenue(shop, "K1", as_of=AS_OF, attribution_window_days=30, n_boot=1000)
    # window 2026-03-01 .. 2026-04-01; contacted A 100, B 150, C 0; comparison D 30, E 0, F 0, G 0 (N came later)
    assert (lift["contacted"], lift["comparison_customers"]) == (3, 4)
    assert str(lift["window_start"]) == "2026-03-01" and str(lift["window_end"]) == "2026-04-01"
    assert lift["incremental_revenue"] == pytest.approx(3 * (250 / 3 - 30 / 4))  # 227.5
    assert lift["ci_low"] < lift["incremental_revenue"] < lift["ci_high"]
    again = romi.incremental_revenue(shop, "K1", as_of=AS_OF, attribution_window_days=30, n_boot=1000)
    other_seed = romi.incremental_revenue(shop, "K1", as_of=AS_OF, attribution_window_days=30, n_boot=1000, random_state=1)
    assert (again["ci_low"], again["ci_high"]) == (lift["ci_low"], lift["ci_high"])
    assert (other_seed["ci_low"], other_seed["ci_high"]) != (lift["ci_low"], lift["ci_high"])


def test_not_defined_figures_say_why_and_are_never_inf_or_nan(shop_table):
    k2, k3, k4 = shop_table.loc["K2"], shop_table.loc["K3"], shop_table.loc["K4"]
    assert pd.isna(k2["gross_romi_pct"]) and pd.isna(k2["net_romi_pct"])
    assert "ROMI not defined" in k2["note"] and "cost nothing" in k2["note"]
    assert pd.isna(k3["gross_romi_pct"]) and "no contacts recorded" in k3["note"]
    assert pd.isna(k4["incremental_revenue"]) and "no comparison group" in k4["note"]
    for col in romi.MONEY_COLUMNS:
        assert str(shop_table[col].dtype) == "Float64"
        values = shop_table[col].dropna().to_numpy(dtype=float)
        assert np.isfinite(values).all(), col


def test_channel_totals_by_hand(shop_table):
    totals = romi.channel_totals(shop_table.reset_index()).set_index("channel")
    assert totals.loc["email", "cost"] == pytest.approx(100.0)
    assert totals.loc["email", "gross_romi_pct"] == pytest.approx(250.0)
    assert pd.isna(totals.loc["social", "gross_romi_pct"]) and "not defined" in totals.loc["social", "note"]
    assert totals["cost"].sum() == pytest.approx(shop_table["cost"].sum())


def test_a_campaign_without_cost_or_dates_is_reported_not_defined():
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": "A"}])
    db.table("campaigns").insert_all([{"campaign_id": "X", "name": "Flyers"}])
    db.table("orders").insert_all([{"order_id": "1", "customer_id": "A", "order_date": "2026-01-05", "amount": 10.0,
                                    "status": "paid", "campaign_id": "X"}])
    row = romi.campaign_table(db, "2026-02-01").iloc[0]
    assert row["start_date"] == "2026-01-05"  # no start date: its first coded order
    assert pd.isna(row["cost"]) and pd.isna(row["gross_romi_pct"]) and "no cost is recorded" in row["note"]
    assert row["attributed_revenue"] == pytest.approx(10.0) and row["acquired_customers"] == 1


def test_bad_settings_and_an_empty_store(shop):
    with pytest.raises(romi.RomiError):
        romi.campaign_table(shop, AS_OF, margin=1.5)
    with pytest.raises(romi.RomiError):
        romi.attributed_orders(shop, AS_OF, attribution_window_days=-1)
    empty = romi.campaign_table(memory_db(), AS_OF)
    assert empty.empty and list(empty.columns) == romi.TABLE_COLUMNS
    assert romi.lift_ranking(empty).empty


# ------------------------------------------------------------------------------------------
# The demo business: the planted campaigns
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_table(demo_db_path) -> pd.DataFrame:
    return romi.campaign_table(open_db(demo_db_path), DEMO_MONTH_END, attribution_window_days=30, margin=0.3)


def test_effective_campaign_has_incremental_revenue_above_zero(demo_table, demo_business):
    c01 = demo_table.set_index("campaign_id").loc[demo_business.facts["effective_campaign"]]
    assert c01["incremental_revenue"] > 0 and c01["incremental_ci_low"] > 0
    assert c01["net_romi_pct"] > 100


def test_ineffective_campaign_looks_good_but_its_lift_includes_zero(demo_table, demo_business):
    c02 = demo_table.set_index("campaign_id").loc[demo_business.facts["ineffective_campaign"]]
    assert c02["gross_romi_pct"] > 100  # the tags make it look profitable
    assert c02["incremental_ci_low"] < 0 < c02["incremental_ci_high"]


def test_demo_edge_campaigns_are_not_defined(demo_table):
    table = demo_table.set_index("campaign_id")
    assert pd.isna(table.loc["C06", "gross_romi_pct"]) and "cost nothing" in table.loc["C06", "note"]
    assert pd.isna(table.loc["C07", "net_romi_pct"]) and "no contacts recorded" in table.loc["C07", "note"]
    c04 = table.loc["C04"]
    assert c04["kind"] == "acquisition" and c04["acquired_customers"] > 0
    assert c04["cost_per_acquired"] == pytest.approx(600.0 / c04["acquired_customers"])
    totals = romi.channel_totals(demo_table)
    assert totals["cost"].sum() == pytest.approx(demo_table["cost"].sum())


def test_campaigns_are_ranked_by_measured_extra_revenue_every_one_included(demo_table, demo_business):
    ranking = romi.lift_ranking(demo_table, "EUR")
    assert sorted(ranking["campaign_id"]) == sorted(demo_table["campaign_id"])  # nothing left out
    assert ranking.iloc[0]["campaign_id"] == demo_business.facts["effective_campaign"]
    assert ranking.iloc[0]["measurable"] and "of extra revenue (95 % range" in ranking.iloc[0]["verdict"]
    c02 = ranking.set_index("campaign_id").loc[demo_business.facts["ineffective_campaign"]]
    assert not c02["measurable"] and "brought no measurable extra revenue" in c02["verdict"]
    assert c02["verdict"].startswith("Paid social ads cost 1,500 EUR")
    # the trade fair kept no contact list: in the ranking, last, saying why it cannot be measured
    unmeasured = ranking[ranking["incremental_revenue"].isna()]
    assert "C07" in set(unmeasured["campaign_id"]) and ranking.index[ranking["campaign_id"] == "C07"][0] >= len(
        ranking) - len(unmeasured)
    assert "cannot be measured" in unmeasured.set_index("campaign_id").loc["C07", "verdict"]
    measured = ranking["incremental_revenue"].dropna().astype(float)
    assert measured.is_monotonic_decreasing



def _recent(db, period) -> pd.DataFrame:
    """The lift ranking of the campaigns that ran in ``period`` or the month before, as of its end."""
    table = romi.campaign_table(db, period.end, attribution_window_days=30, margin=0.3)
    return romi.lift_ranking(romi.near_period(db, table, start=period.start, end=period.end), "EUR")


def test_the_best_campaign_headline_is_the_top_measurable_one_of_this_month_or_the_last(demo_db, demo_business):
    march = parse_month("2026-03")  # the effective newsletter ran from late February into March
    recent = _recent(demo_db, march)
    (best,) = romi.headline_figures(demo_db, period=march)
    top = recent.iloc[0]
    assert top["campaign_id"] == demo_business.facts["effective_campaign"]
    assert top["measurable"] and top["incremental_revenue"] > 0
    assert best.key == "best_campaign_lift" and best.value == pytest.approx(top["incremental_revenue"]) and best.value > 0
    assert best.interval == pytest.approx((top["incremental_ci_low"], top["incremental_ci_high"]))
    assert best.note == top["verdict"] and best.unit == "EUR" and best.good == "up"
    (none,) = romi.headline_figures(demo_db, period=parse_month(DEMO_MONTH_END[:7]))  # the referrals: unmeasured
    assert none.value is None and none.interval is None and "no campaign" in none.note


def test_only_campaigns_near_the_month_are_kept(demo_db, demo_table):
    near = romi.near_period(demo_db, demo_table, start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 31))
    ends = dict(demo_db.execute("SELECT campaign_id, end_date FROM campaigns").fetchall())
    for row in demo_table.itertuples():
        ran_near = row.start_date <= "2026-10-31" and ends[row.campaign_id] >= "2026-09-01"
        assert (row.campaign_id in set(near["campaign_id"])) == ran_near, row.campaign_id
    assert "C04" in set(near["campaign_id"])  # the referral programme runs the whole time


def test_attention_items_name_campaigns_that_cost_money_and_brought_nothing_measurable(demo_db, demo_business):
    may = parse_month("2026-05")  # the paid social ads ran from late April into May
    recent = _recent(demo_db, may)
    paid = recent["cost"].astype(float) > 0
    worked = recent["measurable"] & (recent["incremental_revenue"].astype(float) > 0)
    wasted = recent[paid & ~worked]
    items = romi.attention_items(demo_db, period=may)
    assert f"campaign {demo_business.facts['ineffective_campaign']}" in {i.key for i in items}
    assert [(i.key, i.sentence, i.money) for i in items] == [
        (f"campaign {r.campaign_id}", r.verdict, float(r.cost)) for r in wasted.itertuples()]
    assert romi.attention_items(memory_db(), period=may) == []
