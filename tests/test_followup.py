"""The call list that remembers (issue 27): contacts take people off, new triggers bring them back,
the list is ranked by money at stake, and its CSV, count and headline are one number."""

from __future__ import annotations

import csv
import string
import datetime as dt

import pandas as pd
import pytest

from crm_helpers import desk
from crm_helpers.analyses import followup as fu, lead_scoring as ls, satisfaction as sat, scoring as sc
from crm_helpers.analyses.features import customer_features
from crm_helpers.analyses.sales import opportunities_as_of
from crm_helpers.analyses.segmentation import rfm_table
from crm_helpers.store.connection import memory_db, open_db
from crm_helpers.store.periods import parse_month

AS_OF = dt.date(2026, 10, 31)
LOGISTIC = ("logistic",)


@pytest.fixture(scope="module")
def demo(demo_db_path):
    """The demo store and its call list as page 03 computes it (the logistic model only: the one that scores)."""
    db = open_db(demo_db_path)
    return db, fu.follow_up_queue_as_of(db, AS_OF, previous_as_of=dt.date(2026, 9, 30), kinds=LOGISTIC)


def _queue(db, scored, pipeline):
    return fu.follow_up_queue(db, AS_OF, scored=scored, pipeline=pipeline, previous_as_of=dt.date(2026, 9, 30))


def test_a_detractor_contacted_after_answering_leaves_the_list_and_comes_back_on_a_new_answer(demo, demo_db_copy):
    db, queue = demo
    table = queue.table
    only_detractor = table.loc[table["reasons"].str.fullmatch(r"detractor: NPS \d+ on [\d-]+")]
    assert len(only_detractor) >= 3
    person = only_detractor.iloc[0]["customer_id"]
    answered = db.execute("SELECT max(submitted_at) FROM feedback WHERE customer_id = ? AND nps IS NOT NULL",
                          [person]).fetchone()[0]
    scored = sc.score_customers(db, AS_OF, model=sc.churn_backtest(db, AS_OF, kinds=LOGISTIC).model,
                                previous_as_of=dt.date(2026, 9, 30))
    pipeline = ls.open_pipeline(opportunities_as_of(db, AS_OF), ls.lead_backtest_as_of(db, AS_OF).model)
    copy = open_db(demo_db_copy)
    pd.testing.assert_frame_equal(_queue(copy, scored, pipeline).table, table)
    contact = (dt.date.fromisoformat(answered[:10]) + dt.timedelta(days=1)).isoformat()
    copy.table("interactions").insert({"interaction_id": "i-test-1", "customer_id": person,
                                       "occurred_at": f"{contact} 10:00:00", "channel": "email"})
    after_contact = _queue(copy, scored, pipeline)
    assert person not in set(after_contact.table["customer_id"])
    assert after_contact.candidates == queue.candidates - 1
    assert after_contact.by_reason.set_index("reason").loc["recent detractor answer", "people"] == \
        queue.by_reason.set_index("reason").loc["recent detractor answer", "people"] - 1
    copy.table("feedback").insert({"feedback_id": "f-test-1", "customer_id": person,
                                   "submitted_at": f"{contact} 18:00:00", "nps": 2})
    again = _queue(copy, scored, pipeline).table.set_index("customer_id")
    assert again.loc[person, "reasons"] == f"detractor: NPS 2 on {contact}", "a new answer brings them back"


def test_a_top_value_detractor_ranks_above_every_low_value_one(demo):
    _, queue = demo
    table = queue.table
    assert table["money_at_stake"].is_monotonic_decreasing
    detractors = table.loc[table["reasons"].str.contains("detractor")]
    top = detractors["value_score"].idxmax()
    low = detractors.index[detractors["value_score"] < 50]
    assert detractors.loc[top, "value_score"] >= 90 and len(low) >= 3
    assert top < low.min(), "the most valuable detractor comes before every below-typical one"
    assert table.loc[top, "money_at_stake"] == pytest.approx(
        table.loc[top, "yearly_value"] * table.loc[top, "churn_probability"], abs=1)


def test_the_most_valuable_recent_detractor_is_in_the_top_twenty_with_the_measured_chance_of_leaving(demo):
    db, queue = demo
    table = queue.table
    detractors = table.loc[table["reasons"].str.contains("detractor")]
    top = detractors["value_score"].idxmax()
    assert top < queue.top_n, "the most valuable unhappy customer is among the names the index shows"
    rates = sat.unhappy_leave_rates(db, AS_OF).set_index("band")["rate"]
    assert table.loc[top, "churn_probability"] == pytest.approx(rates[5], abs=0.001), \
        "a loyal buyer's low model chance is raised to what this store measured after unhappy answers"


def test_unhappy_leave_rates_count_buyers_who_bought_nothing_in_the_horizon_after_an_unhappy_answer():
    db = memory_db()
    people = [f"P{i:02d}" for i in range(30)]
    db.table("customers").insert_all([{"customer_id": c, "name": c} for c in people])
    orders = [{"order_id": f"o{c}", "customer_id": c, "order_date": "2026-01-10", "status": "paid",
               "amount": 50.0, "currency": "EUR"} for c in people]
    # 12 of 30 bought again within 90 days of their detractor answer; P29 answered before any order (not counted)
    orders += [{"order_id": f"r{c}", "customer_id": c, "order_date": "2026-04-01", "status": "paid",
                "amount": 50.0, "currency": "EUR"} for c in people[:12]]
    db.table("orders").insert_all(orders)
    db.table("feedback").insert_all([{"feedback_id": f"f{c}", "customer_id": c, "nps": 4,
                                      "submitted_at": "2026-01-05" if c == "P29" else "2026-02-01"} for c in people])
    rates = sat.unhappy_leave_rates(db, dt.date(2026, 6, 30)).set_index("band")
    assert rates.loc[1, "events"] == 29
    assert rates.loc[1, "rate"] == pytest.approx(17 / 29)
    assert pd.isna(rates.loc[2, "rate"]), "a band with too few answers measures nothing"
    early = sat.unhappy_leave_rates(db, dt.date(2026, 4, 15)).set_index("band")
    assert early.loc[1, "events"] == 0, "answers whose 90 days have not ended yet are not counted"


def test_the_three_biggest_lapsed_spenders_and_cant_lose_them_are_on_the_list(demo):
    db, queue = demo
    features = customer_features(db, AS_OF)
    lapsed = features.loc[features["last_order"] < "2026-05-01"]  # no paid order for 6 full months
    biggest = lapsed.nlargest(3, "monetary")["customer_id"]
    top = queue.top.set_index("customer_id")
    assert set(biggest) <= set(top.index), "the first people to contact are in the index's top 20"
    assert top.loc[biggest, "reasons"].str.startswith("lapsed top spender: ").all()
    cant_lose = set(rfm_table(features).query("segment == \"Can't Lose Them\"")["customer_id"])
    said = set(queue.table.loc[queue.table["reasons"].str.contains("Can't Lose Them"), "customer_id"])
    assert said and said <= cant_lose


def test_the_csv_holds_the_whole_list_and_the_page_count_and_headline_agree(demo, tmp_path):
    db, queue = demo
    assert queue.candidates == len(queue.table) > len(queue.top) == 20
    (headline,) = fu.headline_figures(db, period=parse_month("2026-10"), kinds=LOGISTIC)
    path = fu.write_follow_up(queue.table, tmp_path)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == queue.candidates == headline.value
    assert f"all {queue.candidates} are in {fu.FOLLOW_UP_FILE}" in headline.note
    assert [r["customer_id"] for r in rows] == queue.table["customer_id"].tolist()
    assert list(rows[0]) == fu.QUEUE_COLUMNS and queue.currency == "EUR"


def test_the_desk_today_shows_the_head_of_the_same_list(demo):
    db, _ = demo
    shown = desk.follow_up(db, AS_OF, top_n=5)
    whole = fu.follow_up_queue_as_of(db, AS_OF, kinds=LOGISTIC).table
    pd.testing.assert_frame_equal(shown, whole.head(5))


def test_an_idle_deal_counts_its_expected_value_and_a_contact_after_it_went_idle_clears_it():
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c, "name": f"Person {c}"} for c in "DE"])
    db.table("opportunities").insert_all([
        {"opportunity_id": f"op{c}", "customer_id": c, "title": "Workshop", "source": "referral", "stage": "proposal",
         "amount": 2000.0, "probability": 0.4, "opened_at": "2026-07-01", "last_activity_at": "2026-08-01"}
        for c in "DE"])
    # idle since 2026-08-31 (30 days after the last activity): E's call on 09-15 came after it, D's on 08-20 before
    db.table("interactions").insert_all([
        {"interaction_id": "iD", "customer_id": "D", "occurred_at": "2026-08-20 10:00:00", "channel": "call"},
        {"interaction_id": "iE", "customer_id": "E", "occurred_at": "2026-09-15 10:00:00", "channel": "call"}])
    queue = fu.follow_up_queue(db, AS_OF, scored=sc.score_customers(db, AS_OF, model=None),
                               pipeline=ls.open_pipeline(opportunities_as_of(db, AS_OF), None))
    assert queue.table["customer_id"].tolist() == ["D"]
    assert queue.table.loc[0, "money_at_stake"] == 800.0
    assert queue.table.loc[0, "reasons"] == "open deal 'Workshop' (2,000, 40% win chance) idle for 91 days"


def test_every_reason_carries_its_plain_wording_and_the_facts_it_was_made_from(demo):
    db, queue = demo
    for key, wording in fu.REASON_WORDINGS.items():  # two whole sentences with the same named placeholders
        assert wording.kind in fu.REASON_LABELS and wording.text and wording.plain, key
        names = [name for text in (wording.text, wording.plain) for _, name, _, _ in string.Formatter().parse(text)
                 if name is not None]
        assert all(name.isidentifier() for name in names), f"{key}: placeholders are named, for the translators"
    kinds = set()
    for row in queue.table.itertuples():
        reasons = queue.reasons[row.customer_id]
        assert reasons and row.reasons == "; ".join(r.text for r in reasons)  # the pack's column is made from them
        for reason in reasons:
            assert reason.wording in fu.REASON_WORDINGS and reason.facts, reason
            assert reason.plain and "{" not in reason.plain and reason.plain != reason.text, reason
            kinds.add(reason.kind)
    assert kinds == set(queue.by_reason.loc[queue.by_reason["people"] > 0, "reason"].map(
        {label: kind for kind, label in fu.REASON_LABELS.items()}))
    assert queue.plain_reasons("nobody") == []


def test_plain_reasons_say_what_happened_and_when():
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c, "name": f"Person {c}"} for c in "DFG"])
    db.table("opportunities").insert({"opportunity_id": "opD", "customer_id": "D", "title": "Workshop",
                                      "source": "referral", "stage": "proposal", "amount": 2000.0, "probability": 0.4,
                                      "opened_at": "2026-07-01", "last_activity_at": "2026-08-01"})
    db.table("feedback").insert_all([
        {"feedback_id": "fF", "customer_id": "F", "submitted_at": "2026-10-28 09:00:00", "nps": 3},
        {"feedback_id": "fG", "customer_id": "G", "submitted_at": "2026-10-30 09:00:00", "nps": 5}])
    queue = fu.follow_up_queue(db, AS_OF, scored=sc.score_customers(db, AS_OF, model=None),
                               pipeline=ls.open_pipeline(opportunities_as_of(db, AS_OF), None))
    assert queue.plain_reasons("F") == ["answered 3 of 10 when asked whether they would recommend you, 3 days ago"]
    assert queue.plain_reasons("G") == ["answered 5 of 10 yesterday when asked whether they would recommend you"]
    assert queue.plain_reasons("D") == ["deal 'Workshop' with no news for 91 days"]
    (deal,) = queue.reasons["D"]
    assert (deal.kind, deal.facts["days"], deal.facts["chance"]) == ("stale", "91", "40")
    assert deal.text == "open deal 'Workshop' (2,000, 40% win chance) idle for 91 days"
    (answer,) = queue.reasons["F"]
    assert (answer.facts["score"], answer.facts["days"], answer.text) == ("3", 3, "detractor: NPS 3 on 2026-10-28")
