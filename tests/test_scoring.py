"""Loyalty, churn propensity, value score, lead scoring and the follow-up queue."""

from __future__ import annotations

import csv
import datetime as dt
import stat

import numpy as np
import pandas as pd
import pytest

from crm_helpers.analyses import followup as fu, lead_scoring as ls, scoring as sc
from crm_helpers.report import headlines
from crm_helpers.analyses.features import customer_features
from crm_helpers.analyses.sales import opportunities_as_of
from crm_helpers.analyses.followup import FOLLOW_UP_FILE
from crm_helpers.store.connection import memory_db, open_db
from crm_helpers.store.periods import parse_month

from support import DEMO_MONTH_END, DEMO_MONTH_START, run_notebook

AS_OF = dt.date(2026, 10, 31)


def _day(days_before: int) -> str:
    return (AS_OF - dt.timedelta(days=days_before)).isoformat()


@pytest.fixture
def book():
    """A: one order; B: two; C: four (one more refunded). D is a prospect with an idle deal."""
    db = memory_db()
    db.table("customers").insert_all([
        {"customer_id": "A", "name": "Ann", "email": "ann@example.com"},
        {"customer_id": "B", "name": "Ben", "email": "ben@example.com"},
        {"customer_id": "C", "name": "@Cy", "email": "cy@example.com"},
        {"customer_id": "D", "name": "Dee", "email": "dee@example.com"},
    ])
    orders = [("A", 500, 20.0), ("B", 420, 30.0), ("B", 400, 30.0),
              ("C", 30, 100.0), ("C", 20, 100.0), ("C", 10, 100.0), ("C", 5, 100.0)]
    db.table("orders").insert_all(
        [{"order_id": f"o{i}", "customer_id": c, "order_date": _day(d), "amount": a, "status": "paid"}
         for i, (c, d, a) in enumerate(orders)]
        + [{"order_id": "r1", "customer_id": "C", "order_date": _day(3), "amount": 999.0, "status": "refunded"}]
    )
    db.table("tickets").insert({"ticket_id": "t1", "customer_id": "B", "opened_at": f"{_day(2)} 10:00:00",
                                "category": "complaint", "status": "open"})
    db.table("feedback").insert({"feedback_id": "f1", "customer_id": "C", "submitted_at": _day(12), "nps": 3})
    db.table("interactions").insert({"interaction_id": "i1", "customer_id": "C", "occurred_at": f"{_day(100)} 09:00:00",
                                     "channel": "call"})
    db.table("opportunities").insert_all([
        {"opportunity_id": "op1", "customer_id": "D", "title": "=Workshop", "source": "referral", "stage": "proposal",
         "amount": 2000.0, "probability": 0.5, "opened_at": _day(60), "last_activity_at": _day(45)},
        {"opportunity_id": "op2", "customer_id": "A", "title": "Gift boxes", "source": "website", "stage": "won",
         "amount": 900.0, "probability": 1.0, "opened_at": _day(90), "closed_at": _day(5), "last_activity_at": _day(5)},
        {"opportunity_id": "op3", "customer_id": "B", "title": "Tasting", "source": None, "stage": "lost",
         "amount": 500.0, "probability": 0.0, "opened_at": _day(90), "closed_at": _day(50), "last_activity_at": _day(50)},
    ])
    return db


# -- loyalty -----------------------------------------------------------------------------------

def test_seeds_loyalty_per_customer_and_overall(book):
    table = sc.loyalty_table(book, AS_OF).set_index("customer_id")
    assert table["purchases"].tolist() == [1, 2, 4]  # the refunded order is not a purchase
    assert table["repeat_purchases"].tolist() == [0, 1, 3]
    assert table["loyalty"].tolist() == pytest.approx([0.0, 0.5, 0.75])
    overview = sc.loyalty_overview(book, AS_OF).set_index("measure")["value_pct"]
    assert overview["Since the first order: repeat purchases / all purchases"] == pytest.approx(100 * 4 / 7)
    assert overview["Since the first order: average per buyer of repeat purchases / purchases"] == pytest.approx(100 * 1.25 / 3)
    assert overview["Buyers who ever bought again"] == pytest.approx(100 * 2 / 3)
    # first purchases at least 365 days ago: A (never came back) and B (came back after 20 days)
    assert overview["Bought again within 365 days"] == pytest.approx(50.0)


def test_a_second_order_the_same_day_is_not_a_repeat_purchase(book):
    """facts.repeat_day_sql: A second order on A's first day is a split checkout, not a return
    (before, scoring counted it as bought again within 365 days, cohorts did not)."""
    book.table("orders").insert({"order_id": "same", "customer_id": "A", "order_date": _day(500), "amount": 5.0,
                                 "status": "paid"})
    table = sc.loyalty_table(book, AS_OF).set_index("customer_id")
    assert table.loc["A", ["purchases", "repeat_purchases"]].tolist() == [2, 0]
    overview = sc.loyalty_overview(book, AS_OF).set_index("measure")["value_pct"]
    assert overview["Buyers who ever bought again"] == pytest.approx(100 * 2 / 3)
    assert overview["Bought again within 365 days"] == pytest.approx(50.0)
    assert overview["Since the first order: repeat purchases / all purchases"] == pytest.approx(100 * 4 / 8)


def test_loyalty_of_an_empty_store_is_not_a_number():
    overview = sc.loyalty_overview(memory_db(), AS_OF)
    assert overview["value_pct"].isna().all() and len(overview) == 4


# -- value -------------------------------------------------------------------------------------

def test_value_score_by_hand(book):
    score = sc.value_score(customer_features(book, AS_OF))
    # C is best on revenue, orders and recency (percentile 5/6), A worst on all (1/6), B in the middle
    assert score.to_dict() == pytest.approx({"A": 100 / 6, "B": 50.0, "C": 500 / 6})
    assert sc.value_score(customer_features(memory_db(), AS_OF)).empty


# -- churn -------------------------------------------------------------------------------------

def test_churn_snapshot_labels_the_following_window(book):
    snap = sc.churn_snapshot(book, _day(60), horizon_days=45).set_index("customer_id")
    # 60 days ago A and B were buyers (C's first order came 30 days ago); neither bought in the next 45 days
    assert list(snap.index) == ["A", "B"] and snap["churned"].tolist() == [1, 1]
    later = sc.churn_snapshot(book, _day(25), horizon_days=30).set_index("customer_id")
    assert later.loc["C", "churned"] == 0 and later.loc["A", "churned"] == 1


def test_calibration_table_by_hand():
    table = sc.calibration_table(pd.Series([0, 0, 1, 1]), pd.Series([0.1, 0.3, 0.6, 0.9]), bins=2)
    assert table["predicted"].tolist() == pytest.approx([0.2, 0.75])
    assert table["observed"].tolist() == [0.0, 1.0] and table["customers"].tolist() == [2, 2]


def test_churn_model_needs_both_outcomes(book):
    feats = customer_features(book, AS_OF)
    with pytest.raises(sc.ScoringError, match="only one outcome"):
        sc.ChurnModel().fit(feats, pd.Series([1] * len(feats)))
    with pytest.raises(sc.ScoringError, match="unknown model kind"):
        sc.ChurnModel(kind="forest").fit(feats, pd.Series([0, 1, 1]))


def test_tiny_book_gets_notes_not_models(book):
    churn = sc.churn_backtest(book, AS_OF)
    assert churn.model is None and "No churn model" in churn.message
    scored = sc.score_customers(book, AS_OF, model=churn.model)
    assert scored["churn_probability"].isna().all() and scored["value_score"].notna().all()
    leads = ls.lead_backtest(opportunities_as_of(book, AS_OF))
    assert leads.model is None and "No lead scoring" in leads.message
    assert not churn.ok and not leads.ok, "no result is said one way: ok False, message why"
    empty = sc.churn_backtest(memory_db(), AS_OF)
    assert empty.model is None and empty.metrics.empty


@pytest.fixture(scope="module")
def demo(demo_db_path):
    db = open_db(demo_db_path)
    churn = sc.churn_backtest(db, AS_OF, horizon_days=90, random_state=0)
    opps = opportunities_as_of(db, AS_OF)
    leads = ls.lead_backtest(opps, random_state=0)
    scored = sc.score_customers(db, AS_OF, model=churn.model, previous_as_of="2026-09-30")
    pipeline = ls.open_pipeline(opps, leads.model)
    queue = fu.follow_up_queue(db, AS_OF, scored=scored, pipeline=pipeline, top_n=20)
    return db, churn, leads, scored, pipeline, queue


def test_demo_churn_model_ranks_the_later_unseen_snapshot(demo):
    _, churn, *_ = demo
    assert churn.train_cutoff + dt.timedelta(days=90) == churn.test_cutoff
    assert churn.test_cutoff + dt.timedelta(days=90) == AS_OF, "outcomes end on as_of: nothing later is used"
    metrics = churn.metrics.set_index("model")
    assert metrics.loc["logistic", "ROC AUC"] >= 0.75
    assert metrics.loc["boosting", "ROC AUC"] >= 0.7
    assert (metrics["Brier score"] < metrics["Brier, base rate only"]).all(), "better than guessing the base rate"
    calib = churn.calibration[churn.calibration["model"] == "logistic"]
    assert calib["customers"].sum() == metrics.loc["logistic", "test customers"]
    assert np.corrcoef(calib["predicted"], calib["observed"])[0, 1] > 0.8


def test_demo_churn_odds_ratios_read_the_planted_process(demo):
    """Buy till you die: a long silence means leaving. The model carries that through recency and
    recent orders together (they move together, so either single odds ratio may take the lead)."""
    _, churn, _, scored, *_ = demo
    odds = churn.model.odds_ratios().set_index("input")
    assert odds.loc["orders in the last 90 days", "odds_ratio"] < 1
    silence = scored["churn_probability"].corr(scored["recency_days"], method="spearman")
    assert silence > 0.5, f"a long silence means leaving (Spearman {silence:.2f})"
    assert odds["reading"].str.contains("odds of leaving|hardly").all()


def test_demo_lead_scoring_beats_the_base_rate(demo):
    _, _, leads, _, pipeline, _ = demo
    holdout = leads.metrics.iloc[0]
    assert holdout["check"].startswith("later") and holdout["ROC AUC"] >= 0.65
    assert leads.metrics.iloc[1]["ROC AUC"] >= 0.65
    odds = leads.model.odds_ratios().set_index("input")["odds_ratio"]
    assert odds["source: referral"] > odds["source: cold_email"], "referrals win most (planted)"
    assert odds["deal size"] < 1, "large deals win less (planted)"
    assert pipeline["win_probability"].between(0, 1).all() and len(pipeline) > 0
    value = ls.pipeline_value(pipeline).iloc[0]
    assert value["expected value (model)"] == pytest.approx((pipeline["win_probability"] * pipeline["amount"]).sum())
    assert value["expected value (model)"] < value["total amount"]


def test_demo_follow_up_queue_has_reasons_in_words(demo):
    db, _, _, scored, _, queue = demo
    table = queue.table
    assert list(table.columns) == fu.QUEUE_COLUMNS and len(queue.top) == 20 and queue.candidates == len(table) > 20
    assert table["reasons"].str.len().gt(0).all() and table["name"].notna().all()
    assert table["money_at_stake"].notna().all() and table["money_at_stake"].is_monotonic_decreasing
    assert queue.by_reason["people"].sum() >= queue.candidates
    first = table.iloc[0]
    assert first["money_at_stake"] == table["money_at_stake"].max() > 0


def test_demo_scoring_is_reproducible(demo):
    db, churn, leads, scored, pipeline, queue = demo
    again = sc.churn_backtest(db, AS_OF, horizon_days=90, random_state=0)
    pd.testing.assert_frame_equal(again.metrics, churn.metrics)
    rescored = sc.score_customers(db, AS_OF, model=again.model, previous_as_of="2026-09-30")
    pd.testing.assert_frame_equal(rescored, scored)
    requeue = fu.follow_up_queue(db, AS_OF, scored=rescored,
                                 pipeline=ls.open_pipeline(opportunities_as_of(db, AS_OF),
                                                           ls.lead_backtest(opportunities_as_of(db, AS_OF)).model))
    pd.testing.assert_frame_equal(requeue.table, queue.table)


# -- leads and the queue on the hand-made book -------------------------------------------------

def test_opportunities_status_as_of(book):
    opps = opportunities_as_of(book, AS_OF).set_index("opportunity_id")
    assert opps["status_at"].to_dict() == {"op1": "open", "op2": "won", "op3": "lost"}
    assert opps.loc["op1", "days_since_activity"] == 45 and opps.loc["op2", "age_days"] == 85
    assert opps.loc["op3", "source"] == "unknown" and pd.isna(opps.loc["op2", "days_since_activity"])
    earlier = opportunities_as_of(book, _day(10)).set_index("opportunity_id")
    assert earlier.loc["op2", "status_at"] == "open" and earlier.loc["op2", "age_days"] == 80


def test_follow_up_queue_by_hand(book, tmp_path):
    scored = sc.score_customers(book, AS_OF, model=None)
    pipeline = ls.open_pipeline(opportunities_as_of(book, AS_OF), None)
    queue = fu.follow_up_queue(book, AS_OF, scored=scored, pipeline=pipeline, top_n=3)
    table = queue.table.set_index("customer_id")
    # without a churn model only D's idle deal has money at stake (2,000 × your 50 %); the others go by yearly value
    assert list(table.index) == ["D", "C", "B"] and queue.candidates == 3
    figures = fu.headline_figures(book, period=parse_month("2026-10"), top_n=3)
    assert [(h.key, h.value, h.note) for h in figures] == [("follow_up_count", 3, queue.message)]
    assert table.loc["C", "reasons"] == "detractor: NPS 3 on 2026-10-19; valuable, no contact for 100 days"
    assert table.loc["D", "money_at_stake"] == 1000 and pd.isna(table.loc["C", "money_at_stake"])
    assert table.loc["C", "yearly_value"] == 400 and table.loc["B", "yearly_value"] == round(60 / (420 / 365.25))
    assert table.loc["B", "reasons"] == "open complaint ticket"
    assert table.loc["D", "reasons"] == "open deal '=Workshop' (2,000, 50% win chance) idle for 45 days"
    assert table.loc["C", "last_contact"] == _day(100) and table.loc["C", "last_order"] == _day(5)
    assert table.loc["D", "last_order"] is None or pd.isna(table.loc["D", "last_order"])
    assert fu.write_follow_up(queue.table, "") is None
    path = fu.write_follow_up(queue.table, tmp_path / "pack")
    assert path.name == FOLLOW_UP_FILE and stat.S_IMODE(path.stat().st_mode) == 0o600
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["customer_id"] for r in rows] == ["D", "C", "B"]
    assert rows[1]["name"] == "'@Cy" and rows[0]["reasons"].startswith("open deal '=Workshop'")


def test_empty_store_gives_an_empty_queue():
    db = memory_db()
    queue = fu.follow_up_queue(db, AS_OF, scored=sc.score_customers(db, AS_OF, model=None),
                               pipeline=ls.open_pipeline(opportunities_as_of(db, AS_OF), None))
    assert queue.table.empty and queue.candidates == 0 and list(queue.table.columns) == fu.QUEUE_COLUMNS
    assert queue.ok and not queue.anyone_to_follow_up and queue.message == "nobody needs a follow-up"
    (headline,) = fu.headline_figures(db, period=parse_month("2026-10"))
    assert headline.key == "follow_up_count" and headline.value == 0 and headline.note == queue.message


@pytest.mark.slow
def test_notebook_03_runs_writes_the_queue_and_records_its_count(demo_db_path, tmp_path):
    pack = tmp_path / "pack"
    out = run_notebook("03_scoring.ipynb", tmp_path, db_path=str(demo_db_path), period_start=DEMO_MONTH_START,
                       period_end=DEMO_MONTH_END, output_dir=str(pack))
    recorded = headlines.read(str(out))
    assert set(recorded) == {"follow_up_count"} and recorded["follow_up_count"]["value"] > 0
    with open(pack / FOLLOW_UP_FILE, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {"customer_id", "name", "email", "reasons", "last_order", "last_contact"} <= set(rows[0])
    assert len(rows) == recorded["follow_up_count"]["value"], "the CSV holds the whole list the page counts"
