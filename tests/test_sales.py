"""Pipeline, customer flows and headline figures: hand-computed fixtures, the demo's planted pipeline, the notebook."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from support import DEMO_MONTH_END, DEMO_MONTH_START, run_notebook
from crm_helpers.analyses import sales
from crm_helpers.report.headlines import read as read_headlines
from crm_helpers.store.periods import Period
from crm_helpers.store.connection import memory_db

AS_OF = dt.date(2026, 6, 30)


def _opp(oid: str, stage: str, amount: float, opened: str, *, closed: str | None = None,
         last: str | None = None, expected: str | None = None, probability: float | None = None,
         source: str = "referral", reason: str | None = None) -> dict:
    return {"opportunity_id": oid, "customer_id": "C1", "title": oid, "source": source, "stage": stage,
            "amount": amount, "probability": probability, "opened_at": opened, "expected_close": expected,
            "closed_at": closed, "last_activity_at": last, "lost_reason": reason}


@pytest.fixture
def pipeline_db():
    """Ten deals: 3 lead, 2 qualified, 1 proposal, 1 negotiation, 2 won, 1 lost (+1 opened after as_of)."""
    db = memory_db()
    db.table("customers").insert({"customer_id": "C1", "name": "Ada"})
    db.table("opportunities").insert_all([
        _opp("L1", "lead", 1000, "2026-06-20", last="2026-06-25", expected="2026-07-15"),
        _opp("L2", "lead", 2000, "2026-04-01", last="2026-04-01", expected="2026-05-01", probability=0.2),
        _opp("L3", "lead", 500, "2026-03-01", expected="2026-08-10"),
        _opp("Q1", "qualified", 4000, "2026-05-01", last="2026-06-29", expected="2026-07-20"),
        _opp("Q2", "qualified", 1000, "2026-05-10", last="2026-05-20", expected="2026-07-31", source="cold_email"),
        _opp("P1", "proposal", 3000, "2026-05-15", last="2026-06-01", expected="2026-08-05", probability=0.6),
        _opp("N1", "negotiation", 10000, "2026-04-15", last="2026-06-28"),
        _opp("W1", "won", 2000, "2026-01-10", closed="2026-03-01", last="2026-03-01"),
        _opp("W2", "won", 6000, "2026-05-01", closed="2026-06-10", last="2026-06-10", source="cold_email"),
        _opp("X1", "lost", 3000, "2026-02-01", closed="2026-06-15", last="2026-06-15", source="cold_email",
             reason="price"),
        _opp("F1", "lead", 9999, "2026-07-02"),
    ])
    return db


@pytest.fixture
def opps(pipeline_db):
    return sales.opportunities_as_of(pipeline_db, AS_OF)


def test_opportunities_opened_after_as_of_are_ignored(opps):
    assert "F1" not in set(opps["opportunity_id"])
    assert len(opps) == 10


def test_pipeline_by_stage_counts_and_weights(opps):
    table = sales.pipeline_by_stage(opps).set_index("stage")
    assert table.loc["lead", "deals"] == 3 and table.loc["lead", "amount"] == 3500
    # blank probability -> the stage default 0.1; L2 keeps its own 0.2
    assert table.loc["lead", "weighted_amount"] == pytest.approx(1000 * 0.1 + 2000 * 0.2 + 500 * 0.1)
    assert table.loc["qualified", "weighted_amount"] == pytest.approx(5000 * 0.25)
    assert table.loc["proposal", "weighted_amount"] == pytest.approx(3000 * 0.6)
    assert table.loc["negotiation", "weighted_amount"] == pytest.approx(10000 * 0.7)
    assert table.loc["total", "deals"] == 7
    assert table.loc["total", "weighted_amount"] == pytest.approx(550 + 1250 + 1800 + 7000)


def test_funnel_by_hand(opps):
    funnel = sales.stage_funnel(opps).set_index("stage")
    # lost deals count at lead only; won deals reached every stage
    assert funnel["reached"].tolist() == [10, 6, 4, 3, 2]
    assert funnel.loc["qualified", "conversion_from_previous"] == pytest.approx(6 / 10)
    assert funnel.loc["proposal", "conversion_from_previous"] == pytest.approx(4 / 6)
    assert funnel.loc["negotiation", "conversion_from_previous"] == pytest.approx(3 / 4)
    assert funnel.loc["won", "conversion_from_previous"] == pytest.approx(2 / 3)
    assert funnel.loc["won", "share_of_leads"] == pytest.approx(0.2)


def test_win_rate_by_hand(opps):
    overall = sales.win_rate(opps).iloc[0]
    assert (overall["won"], overall["lost"], overall["decided"]) == (2, 1, 3)
    assert overall["win_rate"] == pytest.approx(2 / 3)
    assert overall["value_win_rate"] == pytest.approx(8000 / 11000)
    june = sales.win_rate(opps, start=dt.date(2026, 6, 1), end=AS_OF).iloc[0]
    assert (june["won"], june["lost"]) == (1, 1)
    by_source = sales.win_rate(opps, by="source").set_index("source")
    assert by_source.loc["cold_email", "win_rate"] == pytest.approx(0.5)
    assert by_source.loc["referral", "win_rate"] == pytest.approx(1.0)


def test_win_rate_with_nothing_decided_is_nan(opps):
    table = sales.win_rate(opps, start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31))
    assert table.iloc[0]["decided"] == 0 and math.isnan(table.iloc[0]["win_rate"])


def test_sales_cycle_by_hand(opps):
    cycle = sales.sales_cycle(opps).set_index("outcome")
    won_days = [(dt.date(2026, 3, 1) - dt.date(2026, 1, 10)).days, (dt.date(2026, 6, 10) - dt.date(2026, 5, 1)).days]
    lost_days = (dt.date(2026, 6, 15) - dt.date(2026, 2, 1)).days
    assert cycle.loc["won", "mean_days"] == pytest.approx(np.mean(won_days))
    assert cycle.loc["lost", "mean_days"] == pytest.approx(lost_days)
    assert cycle.loc["all", "deals"] == 3
    assert cycle.loc["all", "mean_days"] == pytest.approx(np.mean(won_days + [lost_days]))


def test_stale_uses_last_activity_or_opening(opps):
    stale = sales.stale_opportunities(opps, stale_days=30)
    # L2 silent since 2026-04-01, L3 never worked on since opening 2026-03-01, Q2 since 2026-05-20
    assert stale["opportunity_id"].tolist() == ["L3", "L2", "Q2"]
    assert stale["days_since_activity"].tolist() == [(AS_OF - dt.date(2026, 3, 1)).days,
                                                     (AS_OF - dt.date(2026, 4, 1)).days,
                                                     (AS_OF - dt.date(2026, 5, 20)).days]
    assert sales.stale_opportunities(opps, stale_days=200).empty


def test_closed_deals_and_lost_reasons(opps):
    deals = sales.closed_deals(opps, dt.date(2026, 6, 1), end=AS_OF)
    assert deals["opportunity_id"].tolist() == ["W2", "X1"]
    assert deals.set_index("opportunity_id").loc["X1", "lost_reason"] == "price"
    assert deals.set_index("opportunity_id").loc["W2", "cycle_days"] == 40
    reasons = sales.lost_reasons(deals)
    assert reasons.to_dict("records") == [{"lost_reason": "price", "deals": 1, "amount": 3000.0}]


def test_weighted_pipeline_by_month(opps):
    table = sales.weighted_pipeline_by_month(opps, AS_OF).set_index("expected_close_month")
    assert list(table.index) == ["overdue", "2026-07", "2026-08", "no date"]
    assert table.loc["overdue", "deals"] == 1  # L2, expected 2026-05-01
    assert table.loc["2026-07", "weighted_amount"] == pytest.approx(100 + 1000 + 250)  # L1, Q1, Q2
    assert table.loc["2026-08", "weighted_amount"] == pytest.approx(50 + 1800)  # L3, P1
    assert table.loc["no date", "weighted_amount"] == pytest.approx(7000)  # N1
    assert table["cumulative_weighted"].iloc[-1] == pytest.approx(10600)


def test_past_as_of_treats_later_closed_deals_as_open(pipeline_db):
    opps = sales.opportunities_as_of(pipeline_db, dt.date(2026, 5, 31))
    row = opps.set_index("opportunity_id").loc["W2"]
    assert row["status_at"] == "open" and row["stage_at"] == sales.STAGE_NOT_RECORDED
    assert math.isnan(row["win_probability"])
    stages = sales.pipeline_by_stage(opps).set_index("stage")
    assert stages.loc[sales.STAGE_NOT_RECORDED, "deals"] == 2  # W2 and X1 closed in June
    assert sales.win_rate(opps).iloc[0]["decided"] == 1  # only W1 was decided by the end of May


def test_empty_pipeline_gives_empty_tables():
    opps = sales.opportunities_as_of(memory_db(), AS_OF)
    assert sales.pipeline_by_stage(opps).set_index("stage").loc["total", "deals"] == 0
    assert sales.stage_funnel(opps)["reached"].sum() == 0
    assert sales.win_rate(opps).iloc[0]["decided"] == 0
    assert sales.stale_opportunities(opps).empty
    assert sales.weighted_pipeline_by_month(opps, AS_OF).empty
    assert sales.sales_cycle(opps)["deals"].sum() == 0


# -- customer flows ---------------------------------------------------------------------------------


@pytest.fixture
def flows_db():
    """A: Jan, Feb, Jun; B: Jan; C: Mar, Apr; D: a refunded Feb order only."""
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c} for c in "ABCD"])
    orders = [("A", "2026-01-05", 10), ("A", "2026-02-07", 20), ("A", "2026-06-03", 40), ("B", "2026-01-20", 5),
              ("C", "2026-03-11", 7), ("C", "2026-04-02", 8), ("C", "2026-04-20", 9)]
    rows = [{"order_id": f"O{k}", "customer_id": c, "order_date": d, "amount": a, "currency": "EUR", "status": "paid"}
            for k, (c, d, a) in enumerate(orders)]
    rows.append({"order_id": "R1", "customer_id": "D", "order_date": "2026-02-10", "amount": 99, "currency": "EUR",
                 "status": "refunded"})
    db.table("orders").insert_all(rows)
    return db


def test_monthly_flows_by_hand(flows_db):
    flows = sales.monthly_customer_flows(flows_db, AS_OF, lapse_months=2).set_index("month")
    assert list(flows.index) == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    assert flows["active"].tolist() == [2, 1, 1, 1, 0, 1]
    assert flows["new"].tolist() == [2, 0, 1, 0, 0, 0]
    assert flows["returning"].tolist() == [0, 1, 0, 1, 0, 0]
    assert flows["reactivated"].tolist() == [0, 0, 0, 0, 0, 1]
    # B lost in March (2 months after January), A in April, C in June
    assert flows["lost"].tolist() == [0, 0, 1, 1, 0, 1]
    assert flows["customer_base"].tolist() == [2, 2, 2, 1, 1, 1]


def test_period_figures_by_hand(flows_db):
    june = sales.period_figures(flows_db, dt.date(2026, 6, 1), end=AS_OF, lapse_months=2)
    assert june["revenue"] == 40 and june["paid_orders"] == 1
    assert (june["active_customers"], june["new_customers"], june["returning_customers"],
            june["reactivated_customers"], june["lost_customers"]) == (1, 0, 0, 1, 1)
    assert june["repeat_rate"] == 100.0
    april = sales.period_figures(flows_db, dt.date(2026, 4, 1), end=dt.date(2026, 4, 30), lapse_months=2)
    assert april["paid_orders"] == 2 and april["active_customers"] == 1
    assert april["repeat_purchase_share"] == 100.0  # both April orders are C's repeat purchases
    february = sales.period_figures(flows_db, dt.date(2026, 2, 1), end=dt.date(2026, 2, 28), lapse_months=2)
    assert february["revenue"] == 20  # the refunded order is not revenue
    may = sales.period_figures(flows_db, dt.date(2026, 5, 1), end=dt.date(2026, 5, 31), lapse_months=2)
    assert may["active_customers"] == 0 and math.isnan(may["repeat_rate"])


def test_headline_table_has_previous_month(flows_db):
    table = sales.headline_table(flows_db, Period(dt.date(2026, 6, 1), AS_OF), lapse_months=2).set_index("key")
    assert set(sales.HEADLINE_KEYS) <= set(table.index)
    assert table.loc["revenue", "value"] == 40 and table.loc["revenue", "previous"] == 0
    assert table.loc["revenue", "unit"] == "EUR" and table.loc["repeat_rate", "unit"] == "%"
    assert isinstance(table.loc["active_customers", "value"], int) and table.loc["lost_customers", "value"] == 1
    assert table.loc["repeat_rate", "previous"] is None  # nobody bought in May: no rate


def test_flows_on_empty_store():
    assert sales.monthly_customer_flows(memory_db(), AS_OF).empty
    figures = sales.period_figures(memory_db(), dt.date(2026, 6, 1), end=AS_OF)
    assert figures["revenue"] == 0 and math.isnan(figures["repeat_rate"])


def test_bad_parameters_are_plain_value_errors(flows_db, opps):
    with pytest.raises(ValueError, match="lapse_months"):
        sales.monthly_customer_flows(flows_db, AS_OF, lapse_months=0)
    with pytest.raises(ValueError, match="stale_days"):
        sales.stale_opportunities(opps, stale_days=-1)


# -- the demo business --------------------------------------------------------------------------------

DEMO_AS_OF = dt.date(2026, 10, 31)


@pytest.fixture(scope="module")
def demo_opps(demo_db_path):
    from crm_helpers.store.connection import open_db

    return sales.opportunities_as_of(open_db(demo_db_path), DEMO_AS_OF)


def test_demo_referrals_win_more_than_cold_email(demo_opps):
    """Planted: referrals win most, cold e-mail least. Each side of 50 %, and the gap far beyond
    chance (one-sided two-proportion z-test), rather than a margin fitted to one draw."""
    from statsmodels.stats.proportion import proportions_ztest

    by_source = sales.win_rate(demo_opps, by="source").set_index("source")
    assert by_source.loc["referral", "win_rate"] > 0.5 > by_source.loc["cold_email", "win_rate"]
    decided = by_source["won"] + by_source["lost"]
    _, p = proportions_ztest(by_source.loc[["referral", "cold_email"], "won"].to_numpy(),
                             decided[["referral", "cold_email"]].to_numpy(), alternative="larger")
    assert p < 0.001


def test_demo_sales_cycle_matches_the_planted_gamma(demo_opps):
    # planted: Gamma(3, 15) + 5 days, mean 50; deals still open (long cycles) are not included
    mean_days = sales.sales_cycle(demo_opps).set_index("outcome").loc["all", "mean_days"]
    assert 40 <= mean_days <= 58


def test_demo_stale_list_holds_the_planted_silent_deals(demo_opps):
    stale = sales.stale_opportunities(demo_opps, stale_days=30)
    open_deals = demo_opps[demo_opps["status_at"] == "open"]
    planted = open_deals[(open_deals["last_activity_at"] == open_deals["opened_at"])
                         & (open_deals["opened_at"] < pd.Timestamp(DEMO_AS_OF - dt.timedelta(days=30)))]
    assert len(planted) > 0
    assert set(planted["opportunity_id"]) <= set(stale["opportunity_id"])
    assert (stale["last_activity_at"] < pd.Timestamp(DEMO_AS_OF - dt.timedelta(days=30))).all()


def test_demo_monthly_flows_agree_with_period_figures(demo_db):
    flows = sales.monthly_customer_flows(demo_db, DEMO_AS_OF)
    assert (flows["active"] == flows["new"] + flows["returning"] + flows["reactivated"]).all()
    for month in flows["month"].iloc[[0, 6, 13, -1]]:
        start = dt.date.fromisoformat(f"{month}-01")
        end = (pd.Timestamp(start) + pd.offsets.MonthEnd(0)).date()
        figures = sales.period_figures(demo_db, start, end=end)
        row = flows.set_index("month").loc[month]
        assert (figures["active_customers"], figures["new_customers"], figures["returning_customers"],
                figures["reactivated_customers"], figures["lost_customers"]) == (
            row["active"], row["new"], row["returning"], row["reactivated"], row["lost"])


def test_demo_revenue_matches_the_generated_orders(demo_db, demo_business):
    orders = demo_business.tables["orders"]
    october = orders[(orders["status"] == "paid") & orders["order_date"].str.startswith("2026-10")]
    table = sales.headline_table(demo_db, Period(dt.date(2026, 10, 1), DEMO_AS_OF)).set_index("key")
    assert table.loc["revenue", "value"] == pytest.approx(october["amount"].sum())
    assert table.loc["paid_orders", "value"] == len(october)
    assert table.loc["active_customers", "value"] == october["customer_id"].nunique()


# -- the notebook ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_notebook_runs_on_the_demo_store(tmp_path, demo_db_path):
    out = run_notebook("06_sales_and_forecast.ipynb", tmp_path, db_path=str(demo_db_path),
                       period_start=DEMO_MONTH_START, period_end=DEMO_MONTH_END)
    recorded = read_headlines(str(out))
    for key in sales.HEADLINE_KEYS:
        assert key in recorded and recorded[key]["previous"] is not None
    assert recorded["revenue"]["unit"] == "EUR" and recorded["repeat_rate"]["unit"] == "%"
    assert recorded["forecast_next_month_revenue"]["value"] > 0
    assert recorded["weighted_pipeline"]["value"] > 0 and recorded["weighted_pipeline_overdue"]["value"] > 0
    from crm_helpers.report.headlines import read_flags

    assert any(f["key"] == "pipeline overdue" and f["money"] == recorded["weighted_pipeline_overdue"]["value"]
               for f in read_flags(str(out)))
    categories = {k for k in recorded if k.startswith("revenue_category_") and not k.endswith("_prev")}
    assert categories == {"revenue_category_tea", "revenue_category_teaware", "revenue_category_service",
                          "revenue_category_subscription"}


@pytest.mark.slow
def test_notebook_runs_on_a_three_month_store_without_items(tmp_path):
    from crm_helpers.demo import generate_demo, write_demo
    from crm_helpers.store.connection import open_db

    business = generate_demo(customers=40, months=3, seed=5, end="2026-10")
    business.tables["order_items"] = business.tables["order_items"].iloc[0:0]
    path = tmp_path / "short.db"
    write_demo(open_db(path), business)
    out = run_notebook("06_sales_and_forecast.ipynb", tmp_path, db_path=str(path),
                       period_start=DEMO_MONTH_START, period_end=DEMO_MONTH_END)
    assert "revenue" in read_headlines(str(out))


def test_revenue_by_category_adds_up_to_the_months_revenue(demo_db):
    period = Period(dt.date(2026, 10, 1), DEMO_AS_OF)
    table = sales.revenue_by_category(demo_db, period)
    figures = sales.period_figures(demo_db, period.start, end=period.end)
    before = sales.period_figures(demo_db, dt.date(2026, 9, 1), end=dt.date(2026, 9, 30))
    assert table["revenue"].sum() == pytest.approx(figures["revenue"])  # demo lines add up to the order
    assert table["previous"].sum() == pytest.approx(before["revenue"])
    assert set(table["category"]) == {"tea", "teaware", "service", "subscription"}
    assert table["share_pct"].sum() == pytest.approx(100) and table["revenue"].is_monotonic_decreasing


def test_the_pipeline_splits_into_current_and_overdue_deals(demo_opps, demo_db):
    by_month = sales.weighted_pipeline_by_month(demo_opps, DEMO_AS_OF)
    current, overdue = sales.pipeline_split(by_month)
    assert current + overdue == pytest.approx(by_month["weighted_amount"].sum())
    open_deals = demo_opps[demo_opps["status_at"] == "open"]
    late = open_deals["expected_close"] <= pd.Timestamp(DEMO_AS_OF)
    assert overdue == pytest.approx(open_deals.loc[late, "weighted_amount"].sum()) and overdue > 0
    figures = {h.key: h for h in sales.headline_figures(demo_db, period=Period(dt.date(2026, 10, 1), DEMO_AS_OF))
               if h.key.startswith("weighted_pipeline")}
    assert figures["weighted_pipeline"].value == pytest.approx(current)
    assert figures["weighted_pipeline_overdue"].value == pytest.approx(overdue)
    assert {h.unit for h in figures.values()} == {"EUR"}


def test_pipeline_attention_only_when_deals_are_overdue():
    deal = {"customer_id": "C1", "stage": "proposal", "amount": 3000.0, "probability": 0.5, "opened_at": "2026-05-01"}
    db = memory_db()
    db.table("customers").insert({"customer_id": "C1", "name": "Ada"})
    db.table("opportunities").insert({"opportunity_id": "O1", **deal, "expected_close": "2026-07-31"})
    june, july = Period(dt.date(2026, 6, 1), dt.date(2026, 6, 30)), Period(dt.date(2026, 8, 1), dt.date(2026, 8, 31))
    assert sales.attention_items(db, period=june) == []
    (item,) = sales.attention_items(db, period=july)
    assert item.money == 1500.0 and "1,500 in the store currency" in item.sentence


def test_headline_figures_are_the_table_the_categories_and_the_pipeline_in_that_order(demo_db):
    october = Period(dt.date(2026, 10, 1), DEMO_AS_OF)
    keys = [h.key for h in sales.headline_figures(demo_db, period=october)]
    categories = list(sales.revenue_by_category(demo_db, october)["category"])
    assert keys == [*sales.HEADLINE_KEYS, *(f"revenue_category_{c}" for c in categories),
                    "weighted_pipeline", "weighted_pipeline_overdue"]
    august = Period(dt.date(2026, 8, 1), dt.date(2026, 8, 31))
    revenue = {h.key: h for h in sales.headline_figures(demo_db, period=october, previous=august)}["revenue"]
    assert revenue.previous == sales.period_figures(demo_db, august.start, end=august.end)["revenue"]
