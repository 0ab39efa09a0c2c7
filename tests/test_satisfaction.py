"""Satisfaction: hand-computed CSAT, NPS and the articles' formulas; planted signals on the demo store."""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from itertools import count
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support import DEMO_MONTH_END, DEMO_MONTH_START, run_notebook
from crm_helpers.store import facts
from crm_helpers.analyses import followup, satisfaction
from crm_helpers.report import headlines, sentences
from crm_helpers.store.periods import Period, parse_month
from crm_helpers.analyses.satisfaction import ItemWeights, NotEnoughResponses, SatisfactionError
from crm_helpers.store.connection import memory_db

OCT = parse_month("2026-10")
EQUAL = ItemWeights()
_ids = count(1)


def _db_with_customers(*customer_ids: str):
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c, "name": f"Person {c}"} for c in customer_ids])
    return db


def _answer(db, customer_id: str, day: str, *, nps=None, csat=None, q=None, d=None, p=None, s=None, comment=None):
    db.table("feedback").insert({
        "feedback_id": f"F{next(_ids):05d}", "customer_id": customer_id, "submitted_at": day, "nps": nps,
        "csat": csat, "score_quality": q, "score_delivery": d, "score_price": p, "score_service": s,
        "comment": comment,
    })


def _scores(db, period: Period = OCT, weights: ItemWeights = EQUAL, min_responses: int = 3) -> pd.Series:
    return satisfaction.period_scores(db, period, weights=weights, min_responses=min_responses, n_boot=500)


# -- hand-computed measures ----------------------------------------------------------------------


def test_csat_is_the_share_of_4_and_5_with_the_mean_beside_it():
    db = _db_with_customers("A")
    for score in (5, 4, 3, 2, 5):
        _answer(db, "A", "2026-10-05", csat=score)
    _answer(db, "A", "2026-09-30", csat=1)  # previous month: not counted
    row = _scores(db)
    assert row["csat_answers"] == 5 and row["csat_positive"] == 3
    assert row["csat_pct"] == pytest.approx(60.0)
    assert row["csat_mean"] == pytest.approx(3.8)
    assert satisfaction.csat_share(3, 5) == pytest.approx(60.0)


def test_nps_counts_passives_in_the_denominator():
    db = _db_with_customers("A")
    for score in (10, 9, 8, 7, 6, 0, 10, 10):
        _answer(db, "A", "2026-10-10", nps=score)
    row = _scores(db)
    assert (row["promoters"], row["passives"], row["detractors"]) == (4, 2, 2)
    assert row["nps"] == pytest.approx(100 * (4 - 2) / 8)  # 25
    assert row["nps_ci_low"] <= row["nps"] <= row["nps_ci_high"]
    assert satisfaction.nps_counts(pd.Series([10, 9, 8, 7, 6, 0, None])) == (2, 2, 2)
    assert satisfaction.nps_score(3, 0, detractors=1) == pytest.approx(50.0)


def test_nps_all_passives_is_zero_with_a_zero_width_interval():
    db = _db_with_customers("A")
    for score in (7, 8, 7, 8):
        _answer(db, "A", "2026-10-03", nps=score)
    row = _scores(db)
    assert row["nps"] == 0
    assert (row["nps_ci_low"], row["nps_ci_high"]) == (0, 0)


def test_a_single_response_gives_an_extreme_nps_flagged_as_a_small_sample():
    db = _db_with_customers("A")
    _answer(db, "A", "2026-10-03", nps=10, csat=5)
    row = _scores(db, min_responses=30)
    assert row["nps"] == 100 and row["csat_pct"] == 100
    assert bool(row["small_sample"])
    assert "Small sample" in sentences.month_summary(row, row)
    assert all("small sample" in f.note for f in satisfaction.headline_figures(db, period=OCT, min_responses=30)
               if f.key.startswith(("nps", "csat")))


def test_an_empty_month_gives_blank_measures_and_a_plain_note():
    db = _db_with_customers("A")
    _answer(db, "A", "2026-09-12", nps=9, csat=5)
    now, prev = _scores(db), _scores(db, OCT.previous_month())
    assert now["responses"] == 0
    for key in ("csat_pct", "csat_mean", "nps", "nps_ci_low", "weighted_index", "seeds_s", "experience_score"):
        assert math.isnan(now[key]), key
    assert sentences.month_summary(now, prev).startswith("**No responses this month**")
    compared = satisfaction.compare_periods(now, prev, n_boot=200)
    assert compared["p_value"].isna().all() and compared["significant"].isna().all()
    assert compared["verdict"].str.contains("no answers this period").all()
    figures = {f.key: f for f in satisfaction.headline_figures(db, period=OCT)}  # beside September
    assert figures["nps"].value is None and figures["csat"].value is None and figures["satisfaction_index"].value is None
    assert figures["nps"].previous == 100 and figures["csat"].previous == 100
    card = satisfaction.scorecard(now, prev)
    assert card.loc[card["measure"] == "NPS", "this period"].item() == "–"


def test_headline_keys_are_only_the_assigned_ones():
    db = _db_with_customers("A")
    _answer(db, "A", "2026-10-03", nps=9, csat=4, q=4, d=4, p=4, s=4)
    figures = satisfaction.headline_figures(db, period=OCT, previous=OCT)
    assert {f.key for f in figures} == {"nps", "csat", "satisfaction_index"}  # each with its previous month
    assert {f.unit for f in figures if f.key.startswith("csat")} == {"%"}
    assert {f.unit for f in figures if not f.key.startswith("csat")} == {""}


# -- the articles' formulas ---------------------------------------------------------------------------


def test_weighted_satisfaction_as_written_and_normalized():
    weights = ItemWeights(quality=0.4, delivery=0.3, price=0.2, service=0.1)
    full = {"quality": 5, "delivery": 3, "price": 4, "service": 2}
    # Σ wᵢsᵢ = 2.0 + 0.9 + 0.8 + 0.2 = 3.9; articles' S = 3.9 / 4; index = 3.9 / 1.0
    assert satisfaction.weighted_satisfaction(full, weights) == pytest.approx((0.975, 3.9))
    # delivery missing: Σ = 3.0 over 3 items; index divides by the answered weights 0.7
    partial = {"quality": 5, "delivery": None, "price": 4, "service": 2}
    assert satisfaction.weighted_satisfaction(partial, weights) == pytest.approx((1.0, 3.0 / 0.7))

    db = _db_with_customers("A")
    _answer(db, "A", "2026-10-01", q=5, d=3, p=4, s=2)
    _answer(db, "A", "2026-10-02", q=5, p=4, s=2)
    _answer(db, "A", "2026-10-03", nps=9)  # no item scores: outside both means
    row = _scores(db, weights=weights)
    assert row["seeds_s"] == pytest.approx((0.975 + 1.0) / 2)
    assert row["weighted_index"] == pytest.approx((3.9 + 3.0 / 0.7) / 2)
    assert 1 <= row["weighted_index"] <= 5 and row["seeds_s"] < 1.25  # the naive S is off the 1–5 scale


def test_equal_weights_make_the_index_the_plain_item_mean():
    db = _db_with_customers("A")
    _answer(db, "A", "2026-10-01", q=5, d=1, p=3, s=3)
    row = _scores(db)
    assert row["weighted_index"] == pytest.approx(3.0)
    assert row["seeds_s"] == pytest.approx(0.75)


@pytest.mark.parametrize("kwargs", [dict(quality=-0.1), dict(quality=0, delivery=0, price=0, service=0),
                                    dict(price=float("nan"))])
def test_bad_weights_are_refused_with_a_plain_message(kwargs):
    with pytest.raises(SatisfactionError, match="weight"):
        ItemWeights(**kwargs)


def test_experience_score_maps_items_onto_the_three_parts():
    assert satisfaction.experience_score(0.5, 0.5, emotional=0.5) == pytest.approx(1.5)  # the article's own example
    db = _db_with_customers("A")
    _answer(db, "A", "2026-10-01", nps=10, q=5, d=4, s=5)
    _answer(db, "A", "2026-10-02", nps=6, q=3, d=2, s=4)
    row = _scores(db)
    assert row["functional"] == pytest.approx(2 / 4)  # quality and delivery answers of 4–5: 5, 4 of 5, 4, 3, 2
    assert row["service"] == pytest.approx(1.0)
    assert row["emotional"] == pytest.approx(0.5)  # one promoter of two
    assert row["experience_score"] == pytest.approx(2.0)
    assert row["experience_mean"] == pytest.approx(2 / 3)


def test_seeds_satisfaction_counts_every_answer_as_feedback():
    db = _db_with_customers("A")
    _answer(db, "A", "2026-10-01", csat=5)
    _answer(db, "A", "2026-10-01", csat=2)
    _answer(db, "A", "2026-10-01", nps=9)  # no overall score: positive by NPS
    _answer(db, "A", "2026-10-01", nps=5)
    _answer(db, "A", "2026-10-01", q=4)  # feedback without an overall score or NPS: not positive
    row = _scores(db)
    assert row["seeds_satisfaction"] == pytest.approx(2 / 5)
    assert row["csat_pct"] == pytest.approx(50.0)  # CSAT counts only the two overall answers


def test_loyalty_is_repeat_paid_purchases_over_all_paid_purchases():
    db = _db_with_customers("A", "B", "C")
    orders = [("A", "2026-09-05", "paid"), ("A", "2026-10-03", "paid"), ("B", "2026-10-10", "paid"),
              ("B", "2026-10-12", "refunded"), ("C", "2026-09-20", "cancelled"), ("C", "2026-10-20", "paid"),
              ("C", "2026-10-25", "paid")]
    db.table("orders").insert_all([{"order_id": f"O{k}", "customer_id": c, "order_date": d, "amount": 10.0,
                                    "status": st} for k, (c, d, st) in enumerate(orders)])
    result = facts.loyalty(db, OCT.start, end=OCT.end)
    # October paid orders: A (repeat), B (first), C (first paid), C (repeat) -> 2 of 4
    assert result == {"purchases": 4.0, "repeat_purchases": 2.0, "loyalty": 0.5}
    assert math.isnan(facts.loyalty(db, "2026-01-01", end="2026-01-31")["loyalty"])


def test_article_formula_table_labels_each_formula():
    db = _db_with_customers("A")
    _answer(db, "A", "2026-10-01", nps=9, csat=5, q=5, d=5, p=5, s=5)
    row = _scores(db)
    table = satisfaction.article_formulas(row, row, weights=EQUAL)
    assert table["measure"].str.contains("rticle's").sum() == 4
    assert "not on the 1–5 scale" in table.loc[0, "formula"]
    assert table.loc[table["measure"] == "Article's weighted satisfaction S", "this period"].item() == "1.25"
    # the loyalty formula is the same figure, under the same name and as a percentage, as on the other pages
    with_orders = row.copy()
    with_orders["loyalty"] = 0.8467
    table = satisfaction.article_formulas(with_orders, row, weights=EQUAL).set_index("measure")
    assert table.loc[facts.LOYALTY_LABEL, "this period"] == "84.7 %"  # not 0.85
    assert table.loc[facts.LOYALTY_LABEL, "previous period"] == "–"  # no orders, no figure


# -- month-over-month change -----------------------------------------------------------------------


def _counts(csat_pos: int, csat_n: int, pro: int, pas: int, det: int, small: bool = False) -> pd.Series:
    n = pro + pas + det
    return pd.Series({"csat_positive": csat_pos, "csat_answers": csat_n, "csat_pct": 100 * csat_pos / csat_n,
                      "promoters": pro, "passives": pas, "detractors": det,
                      "nps": satisfaction.nps_score(pro, pas, detractors=det), "small_sample": small,
                      "responses": max(n, csat_n)})


def test_csat_change_uses_the_pooled_two_proportion_z_test():
    now, prev = _counts(45, 55, 30, 15, 10), _counts(30, 50, 20, 15, 15)
    table = satisfaction.compare_periods(now, prev, n_boot=500).set_index("test")
    pooled = 75 / 105
    z = (45 / 55 - 30 / 50) / math.sqrt(pooled * (1 - pooled) * (1 / 55 + 1 / 50))
    expected_p = math.erfc(abs(z) / math.sqrt(2))
    row = table.loc["two-proportion z-test"]
    assert row["p_value"] == pytest.approx(expected_p, rel=1e-6)
    assert row["change"] == pytest.approx(100 * (45 / 55 - 30 / 50))
    assert row["ci_low"] < row["change"] < row["ci_high"]


def test_nps_change_is_significant_only_when_the_bootstrap_interval_excludes_zero():
    up = satisfaction.compare_periods(_counts(35, 40, 35, 5, 0), _counts(10, 40, 5, 5, 30), n_boot=1000)
    assert up["significant"].tolist() == [True, True]
    same = satisfaction.compare_periods(_counts(20, 40, 20, 10, 10), _counts(20, 40, 20, 10, 10), n_boot=1000)
    assert same["significant"].tolist() == [False, False]
    flat = satisfaction.compare_periods(_counts(40, 40, 0, 40, 0), _counts(40, 40, 0, 40, 0), n_boot=200)
    assert flat["p_value"].tolist() == [1.0, 1.0] and not flat["significant"].any()


def test_a_small_sample_is_named_in_the_verdict():
    table = satisfaction.compare_periods(_counts(3, 4, 3, 1, 0, small=True), _counts(20, 40, 20, 10, 10))
    assert table["verdict"].str.contains("small sample").all()


def test_bootstrap_is_seeded():
    a = satisfaction.nps_ci(12, 5, detractors=7, random_state=3)
    assert a == satisfaction.nps_ci(12, 5, detractors=7, random_state=3)


def test_monthly_trend_keeps_months_without_answers():
    db = _db_with_customers("A")
    _answer(db, "A", "2026-08-15", nps=10, csat=5)
    _answer(db, "A", "2026-10-15", nps=0, csat=1)
    _answer(db, "A", "2026-11-02", nps=0, csat=1)  # after as_of: ignored
    trend = satisfaction.monthly_trend(db, OCT.end, weights=EQUAL, months=4, min_responses=1, n_boot=100)
    assert trend["month"].tolist() == ["2026-07", "2026-08", "2026-09", "2026-10"]
    assert trend["responses"].tolist() == [0, 1, 0, 1]
    assert trend["nps"].iloc[1] == 100 and trend["nps"].iloc[3] == -100
    assert trend["nps"].iloc[[0, 2]].isna().all() and trend["small_sample"].iloc[[0, 2]].all()


# -- drivers, themes, follow-up on hand data -------------------------------------------------------


def test_key_drivers_find_the_item_that_drives_the_outcome():
    rng = np.random.default_rng(0)
    n = 300
    items = {k: rng.integers(1, 6, n).astype(float) for k in ("quality", "delivery", "price", "service")}
    overall = np.clip(np.rint(0.2 + 0.8 * items["price"] + 0.1 * items["service"] + rng.normal(0, 0.4, n)), 1, 5)
    frame = pd.DataFrame({"csat": overall, **items})
    model = satisfaction.KeyDriverAnalysis(n_estimators=50, random_state=0).fit(frame)
    assert model.top_driver_ == "price" and model.rf_top_driver_ == "price"
    assert 0.5 < model.r_squared_ <= 1
    price = model.table_.set_index("item").loc["price"]
    assert price["ci_low"] < price["coefficient"] < price["ci_high"]
    assert "**Price is the top driver**" in sentences.top_driver(model)


def test_key_drivers_refuse_too_few_answers_and_the_report_says_so():
    frame = pd.DataFrame({"csat": [5.0, 4.0], "quality": [5.0, 4.0], "delivery": [5.0, 3.0],
                          "price": [4.0, 4.0], "service": [5.0, 5.0]})
    with pytest.raises(NotEnoughResponses, match="only 2 complete answers"):
        satisfaction.KeyDriverAnalysis().fit(frame)
    report = sentences.driver_report(satisfaction.key_drivers(frame))
    assert report.message.startswith("**Not enough answers") and report.table.empty and not report.ok


def test_comment_terms_handle_english_words_and_chinese_characters():
    terms = satisfaction.comment_terms("Late delivery, parcel took two weeks")
    assert {"late", "delivery", "late delivery", "parcel"} <= set(terms)
    assert "two" not in terms  # an English stop word
    assert satisfaction.comment_terms("发货太慢") == ["发货", "货太", "太慢"]
    mixed = satisfaction.comment_terms("Tea 很好!")
    assert set(mixed) == {"tea", "很好"}


def test_comment_themes_separate_detractors_from_promoters_in_both_languages():
    frame = pd.DataFrame({
        "nps": [2, 3, 1, 4, 10, 9, 10, 9],
        "comment": ["发货太慢", "late parcel, 太慢了", "late again", "发货太慢 late",
                    "质量很好", "很好 lovely tea", "lovely tea", "质量很好"],
    })
    themes = satisfaction.comment_themes(frame, top=5).set_index("theme")
    assert themes.loc["太慢", "leans_to"] == "detractors" and themes.loc["late", "leans_to"] == "detractors"
    assert themes.loc["很好", "leans_to"] == "promoters" and themes.loc["lovely tea", "leans_to"] == "promoters"
    assert themes.loc["太慢", "detractor_comments"] == 3
    assert "parcel" not in themes.index  # in one comment only: never shown


def test_comment_themes_need_comments_on_both_sides():
    frame = pd.DataFrame({"nps": [1, 2, 3, 10], "comment": ["late", "late", "slow", "great"]})
    with pytest.raises(NotEnoughResponses, match="1 promoter"):
        satisfaction.comment_themes(frame)
    themes = sentences.theme_report(satisfaction.themes_of_comments(frame))
    assert themes.message.startswith("**Not enough comments") and not themes.ok


def test_follow_up_lists_recent_detractors_and_open_complaints_with_their_last_interaction():
    db = _db_with_customers("D", "P", "R", "K", "X", "OLD")
    _answer(db, "D", "2026-10-20", nps=3, comment="Late again")
    _answer(db, "P", "2026-10-20", nps=10)
    _answer(db, "R", "2026-09-01", nps=2)
    _answer(db, "R", "2026-10-05", nps=9)  # recovered: the latest answer counts
    _answer(db, "OLD", "2026-03-01", nps=0)  # outside the 90 days
    db.table("tickets").insert_all([
        {"ticket_id": "T1", "customer_id": "K", "opened_at": "2026-10-28 09:00:00", "category": "complaint",
         "status": "open"},
        {"ticket_id": "T2", "customer_id": "X", "opened_at": "2026-10-01 09:00:00", "category": "complaint",
         "status": "closed", "closed_at": "2026-10-02 09:00:00"},
        {"ticket_id": "T3", "customer_id": "P", "opened_at": "2026-10-01 09:00:00", "category": "question",
         "status": "open"},
    ])
    db.table("interactions").insert_all([
        {"interaction_id": "I1", "customer_id": "D", "occurred_at": "2026-10-01 10:00:00", "channel": "email",
         "outcome": "answered"},
        {"interaction_id": "I2", "customer_id": "D", "occurred_at": "2026-10-22 10:00:00", "channel": "call",
         "outcome": "no reply"},
        {"interaction_id": "I3", "customer_id": "D", "occurred_at": "2026-11-05 10:00:00", "channel": "chat"},
    ])
    table = followup.follow_up(db, OCT.end, lookback_days=90).set_index("customer_id")
    assert table.index.tolist() == ["K", "D"]  # open complaint first
    assert table.loc["D", "last_interaction"] == "2026-10-22 10:00:00" and table.loc["D", "last_channel"] == "call"
    assert table.loc["D", "reason"] == "detractor: NPS 3 on 2026-10-20"  # the call list's own wording
    assert table.loc["K", "reason"].startswith("1 open complaint since 2026-10-28")
    assert table.loc["D", "last_comment"] == "Late again" and table.loc["D", "name"] == "Person D"
    report = sentences.follow_up_report(followup.follow_up(db, OCT.end), as_of=OCT.end)
    assert report.message.startswith("**2 customers to call**") and report.ok
    empty = sentences.follow_up_report(followup.follow_up(db, dt.date(2025, 1, 31)), as_of=dt.date(2025, 1, 31))
    assert empty.table.empty and empty.message.startswith("Nobody to call") and empty.ok


# -- planted signals on the demo store -------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_db_path: Path):
    from crm_helpers.store.connection import open_db

    return open_db(demo_db_path)


@pytest.fixture(scope="module")
def year_answers(demo) -> pd.DataFrame:
    return satisfaction.answers(demo, satisfaction.lookback_start(OCT.end, months=12), end=OCT.end)


def test_delivery_is_the_top_driver_on_the_demo_store(year_answers):
    model = satisfaction.KeyDriverAnalysis(random_state=0).fit(year_answers)
    table = model.table_.set_index("item")
    assert model.top_driver_ == "delivery" and model.rf_top_driver_ == "delivery"
    others = table.drop(index="delivery")
    assert table.loc["delivery", "ci_low"] > others["ci_high"].max()  # clearly first, not by chance
    assert "**Delivery is the top driver**" in sentences.top_driver(model)
    report = sentences.driver_report(satisfaction.key_drivers(year_answers))
    assert report.ok and report.message == sentences.top_driver(model) and set(report.table["item"]) == set(table.index)


def test_the_follow_up_list_holds_every_planted_unhappy_customer_who_answered(demo):
    lookback = 90
    since = (OCT.end - dt.timedelta(days=lookback - 1)).isoformat()
    answered_unhappy = {r[0] for r in demo.execute(
        "SELECT DISTINCT f.customer_id FROM feedback f JOIN demo_truth t USING (customer_id) "
        "WHERE t.unhappy = 1 AND f.nps IS NOT NULL AND f.submitted_at >= ? AND f.submitted_at <= ?",
        [since, OCT.end.isoformat()]).fetchall()}
    table = followup.follow_up(demo, OCT.end, lookback_days=lookback)
    assert len(answered_unhappy) >= 3
    assert answered_unhappy <= set(table["customer_id"])
    assert (table["last_nps"].dropna() <= 6).all()


def test_satisfaction_rises_after_the_courier_change(demo, demo_business):
    change = dt.date.fromisoformat(demo_business.facts["courier_change"])
    first_full = (change.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    after = Period(first_full, OCT.end)  # the full months after the change
    last_before = change.replace(day=1) - dt.timedelta(days=1)
    before = Period(satisfaction.lookback_start(last_before, months=12), last_before)  # the 12 months before it
    now, then = _scores(demo, after, min_responses=30), _scores(demo, before, min_responses=30)
    assert now["weighted_index"] > then["weighted_index"]
    change_table = satisfaction.compare_periods(now, then).set_index("measure")
    assert bool(change_table.loc["NPS", "significant"]) and change_table.loc["NPS", "change"] > 0
    # CSAT (a 4–5 share) is the coarsest measure: with ~270 answers after the change it resolves the
    # direction, not a few points (its 95 % interval spans about ±7 pts)
    assert change_table.loc["CSAT (% answering 4–5)", "change"] > 0
    # what was planted is faster delivery: the delivery score itself rises beyond chance (Welch t-test)
    from scipy import stats

    delivery_after = satisfaction.answers(demo, after.start, end=after.end)["delivery"].dropna()
    delivery_before = satisfaction.answers(demo, before.start, end=before.end)["delivery"].dropna()
    test = stats.ttest_ind(delivery_after, delivery_before, equal_var=False, alternative="greater")
    assert delivery_after.mean() > delivery_before.mean() and test.pvalue < 0.05


def test_trend_counts_match_the_store_and_intervals_hold_the_estimate(demo):
    trend = satisfaction.monthly_trend(demo, OCT.end, weights=EQUAL, months=24, min_responses=30)
    total = demo.execute("SELECT COUNT(*) FROM feedback WHERE submitted_at <= ?", [OCT.end.isoformat()]).fetchone()[0]
    assert trend["responses"].sum() == total
    answered = trend[trend["responses"] > 0]
    assert ((answered["nps_ci_low"] <= answered["nps"]) & (answered["nps"] <= answered["nps_ci_high"])).all()
    assert trend["small_sample"].equals(trend["responses"] < 30)


def test_lateness_is_what_detractors_write_about_on_the_demo_store(demo):
    frame = satisfaction.comments(demo, satisfaction.lookback_start(OCT.end, months=12), end=OCT.end)
    themes = satisfaction.comment_themes(frame)
    detractor_themes = themes.loc[themes["leans_to"] == "detractors", "theme"].head(3).tolist()
    assert "late" in detractor_themes


# -- the notebook ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_notebook_runs_for_the_demo_month_and_records_its_headlines(demo_db_path, demo, tmp_path):

    out = run_notebook("05_satisfaction_review.ipynb", tmp_path, db_path=str(demo_db_path),
                       period_start=DEMO_MONTH_START, period_end=DEMO_MONTH_END)
    found = headlines.read(str(out))
    assert set(found) == {"nps", "csat", "satisfaction_index", "median_first_response_hours"}
    assert all(found[key]["previous"] is not None for key in found)
    expected = _scores(demo, OCT, min_responses=30)
    assert found["nps"]["value"] == pytest.approx(expected["nps"], abs=0.05)
    assert found["csat"]["value"] == pytest.approx(expected["csat_pct"], abs=0.05)
    assert f"{int(expected['responses'])} responses" in found["nps"]["note"]
    assert "Delivery is the top driver" in out.read_text(encoding="utf-8")


@pytest.mark.slow
def test_notebook_runs_for_a_month_without_feedback(demo_db_path, tmp_path):

    copy = tmp_path / "no_october_feedback.db"
    with sqlite3.connect(demo_db_path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
        dst.execute("DELETE FROM feedback WHERE submitted_at >= '2026-10-01'")
    out = run_notebook("05_satisfaction_review.ipynb", tmp_path, db_path=str(copy),
                       period_start=DEMO_MONTH_START, period_end=DEMO_MONTH_END)
    found = headlines.read(str(out))
    assert found["nps"]["value"] is None and found["csat"]["value"] is None
    assert found["nps"]["previous"] is not None
    assert "No responses this month" in out.read_text(encoding="utf-8")
