"""The business facts: each rule defined once, and every analysis that uses it agrees."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from crm_helpers.store import facts
from crm_helpers.analyses import followup, lead_scoring, sales, scoring, service
from crm_helpers.analyses.features import customer_features
from crm_helpers.store.periods import parse_month
from crm_helpers.store.connection import memory_db

AS_OF = dt.date(2026, 10, 31)
OCT = parse_month("2026-10")


def _day(days_before: int) -> str:
    return (AS_OF - dt.timedelta(days=days_before)).isoformat()


@pytest.fixture
def book():
    """A bought in September and October; B bought twice in October, the first time ever; C in January
    and October; D bought in October and has a refunded October order. A has a won deal without a
    closing date and no activity for 148 days; B a complaint closed once and reopened; C a complaint
    still open; D a complaint closed for good."""
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c, "name": f"Person {c}", "email": f"{c.lower()}@example.com"}
                                      for c in "ABCD"])
    orders = [("A", "2026-09-10", "paid"), ("A", "2026-10-05", "paid"), ("B", "2026-10-02", "paid"),
              ("B", "2026-10-20", "paid"), ("C", "2026-01-15", "paid"), ("C", "2026-10-30", "paid"),
              ("D", "2026-10-11", "paid"), ("D", "2026-10-12", "refunded")]
    db.table("orders").insert_all([{"order_id": f"o{i}", "customer_id": c, "order_date": d, "amount": 50.0,
                                    "status": s} for i, (c, d, s) in enumerate(orders)])
    db.table("tickets").insert_all([
        {"ticket_id": "t-reopened", "customer_id": "B", "opened_at": "2026-10-01 09:00:00", "category": "complaint",
         "status": "open", "closed_at": "2026-10-03 12:00:00"},
        {"ticket_id": "t-open", "customer_id": "C", "opened_at": "2026-10-20 09:00:00", "category": "complaint",
         "status": "open"},
        {"ticket_id": "t-closed", "customer_id": "D", "opened_at": "2026-10-05 09:00:00", "category": "complaint",
         "status": "closed", "closed_at": "2026-10-06 09:00:00"},
    ])
    db.table("opportunities").insert_all([
        {"opportunity_id": "won-undated", "customer_id": "A", "title": "Gift boxes", "source": "website",
         "stage": "won", "amount": 900.0, "opened_at": _day(200), "last_activity_at": _day(148)},
        {"opportunity_id": "quiet", "customer_id": "D", "title": "Tasting", "source": "referral",
         "stage": "proposal", "amount": 400.0, "probability": 0.5, "opened_at": _day(100),
         "last_activity_at": _day(60)},
    ])
    return db


# -- dates ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("day", [dt.date(2026, 1, 1), dt.date(2026, 12, 31), dt.date(1999, 7, 4)])
def test_the_month_index_in_sql_and_in_python_agree(day):
    sql = memory_db().execute(f"SELECT {facts.month_index_sql('d')} FROM (SELECT ? AS d)", [f"{day} 10:00:00"])
    assert sql.fetchone()[0] == facts.month_index(day)
    assert facts.month_index(dt.date(day.year + 1, day.month, 1)) - facts.month_index(day) == 12


def test_iso_dates_pass_text_and_none_through():
    assert facts.iso(dt.date(2026, 3, 4)) == "2026-03-04" == facts.iso("2026-03-04")
    assert facts.iso(None) is None
    assert facts.next_day("2026-12-31") == "2027-01-01" == facts.next_day(dt.date(2026, 12, 31))


# -- the two disagreements of issue 17 -----------------------------------------------------------

def test_a_won_deal_without_closed_at_is_won_and_never_idle_or_followed_up(book):
    opps = sales.opportunities_as_of(book, AS_OF).set_index("opportunity_id")
    assert opps.loc["won-undated", "status_at"] == "won" and opps.loc["won-undated", "won"] == 1
    assert pd.isna(opps.loc["won-undated", "days_since_activity"]), "a decided deal has no idle days"
    assert opps.loc["quiet", "status_at"] == "open" and opps.loc["quiet", "days_since_activity"] == 60
    assert sales.stale_opportunities(opps.reset_index(), 30)["opportunity_id"].tolist() == ["quiet"]
    pipeline = lead_scoring.open_pipeline(opps.reset_index(), None)
    assert pipeline["opportunity_id"].tolist() == ["quiet"]
    queue = followup.follow_up_queue(book, AS_OF, scored=scoring.score_customers(book, AS_OF, model=None),
                                     pipeline=pipeline, top_n=10).table.set_index("customer_id")
    assert "open deal 'Tasting'" in queue.loc["D", "reasons"]
    assert "A" not in queue.index or "deal" not in queue.loc["A", "reasons"]
    assert not queue["reasons"].str.contains("148 days").any()


def test_a_reopened_complaint_is_open_in_service_features_and_both_follow_up_lists(book):
    backlog = service.backlog(book, AS_OF).set_index("ticket_id")
    assert sorted(backlog.index) == ["t-open", "t-reopened"] and backlog.loc["t-reopened", "reopened"]
    features = customer_features(book, AS_OF).set_index("customer_id")
    assert features["open_complaints"].to_dict() == {"A": 0, "B": 1, "C": 1, "D": 0}
    unhappy = followup.unhappy_customers(book, AS_OF).set_index("customer_id")["open_complaints"]
    assert unhappy.to_dict() == {"B": 1, "C": 1}
    calls = followup.follow_up(book, AS_OF).set_index("customer_id")
    assert calls["open_complaints"].to_dict() == {"B": 1, "C": 1}
    queue = followup.follow_up_queue(book, AS_OF, scored=scoring.score_customers(book, AS_OF, model=None),
                                     pipeline=lead_scoring.open_pipeline(sales.opportunities_as_of(book, AS_OF), None),
                                     top_n=10).table.set_index("customer_id")
    assert queue.loc["B", "reasons"].startswith("open complaint ticket")
    assert queue.loc["C", "reasons"].startswith("open complaint ticket")
    assert "D" not in queue.index or "complaint" not in queue.loc["D", "reasons"]


def test_a_detractor_is_the_same_person_on_both_follow_up_lists(book):
    book.table("feedback").insert_all([
        {"feedback_id": "f1", "customer_id": "A", "submitted_at": "2026-10-31 18:00:00", "nps": 2},
        {"feedback_id": "f2", "customer_id": "D", "submitted_at": _day(89), "nps": 5},
        {"feedback_id": "f3", "customer_id": "C", "submitted_at": _day(90), "nps": 0},  # one day too old
    ])
    calls = followup.follow_up(book, AS_OF, lookback_days=90)
    detractors = set(calls.loc[calls["last_nps"].notna(), "customer_id"])
    assert detractors == {"A", "D"}, "an answer on the last evening counts; one of 91 days ago does not"
    queue = followup.follow_up_queue(book, AS_OF, scored=scoring.score_customers(book, AS_OF, model=None),
                                     pipeline=lead_scoring.open_pipeline(sales.opportunities_as_of(book, AS_OF), None),
                                     top_n=10, lookback_days=90)
    said = queue.table.loc[queue.table["reasons"].str.contains("detractor"), "customer_id"]
    assert set(said) == detractors


# -- rates ---------------------------------------------------------------------------------------

def test_repeat_rate_and_loyalty_by_hand(book):
    # October buyers: A (bought in September), B (first ever), C (bought in January), D (first ever)
    assert facts.repeat_rate(book, OCT.start, end=OCT.end) == pytest.approx(100 * 2 / 4)
    # October's paid orders: A 1, B 2, C 1, D 1; the first orders ever are one of B's and D's
    assert facts.loyalty(book, OCT.start, end=OCT.end) == pytest.approx(
        {"purchases": 5, "repeat_purchases": 3, "loyalty": 3 / 5})
    # the whole record: 7 paid orders of 4 buyers
    assert facts.loyalty(book, None, end=AS_OF)["loyalty"] == pytest.approx(3 / 7)
    figures = sales.period_figures(book, OCT.start, end=OCT.end)
    assert figures["repeat_rate"] == pytest.approx(50.0)
    assert figures["repeat_purchase_share"] == pytest.approx(60.0)


def test_page_03_and_the_index_give_the_same_repeat_rate_and_loyalty(demo_db):
    period = parse_month("2026-10")
    overview = scoring.loyalty_overview(demo_db, period.end, period_start=period.start).set_index("measure")
    index = sales.headline_table(demo_db, period).set_index("key")["value"]
    assert overview.loc["Repeat rate", "value_pct"] == pytest.approx(index["repeat_rate"], abs=0.005)
    assert overview.loc[facts.LOYALTY_LABEL, "value_pct"] == pytest.approx(
        index["repeat_purchase_share"], abs=0.005)
    assert overview.loc["Repeat rate", "definition"] == facts.REPEAT_RATE_MEANING


def test_order_margin_is_amount_minus_cost_when_known_else_amount_times_margin():
    orders = pd.DataFrame({"amount": [100.0, 200.0, 50.0], "cost": [70.0, None, "n/a"]})
    margin = facts.order_margin(orders, 0.25)
    assert margin.tolist() == pytest.approx([30.0, 50.0, 12.5])
    assert margin.index.equals(orders.index)


# -- rules written once (issue 25): each resolved disagreement pinned ------------------------------

RULE_DAY = dt.date(2026, 6, 30)


def _shop():
    """Ann buys twice on 2025-01-10 and not again; Bob buys on 2025-01-10 and 2025-02-01 (a return)."""
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": "A", "name": "Ann", "acquisition_channel": "ads"},
                                      {"customer_id": "B", "name": "Bob", "acquisition_channel": "ads"}])
    db.table("orders").insert_all([
        {"order_id": "a1", "customer_id": "A", "order_date": "2025-01-10", "amount": 10.0, "status": "paid"},
        {"order_id": "a2", "customer_id": "A", "order_date": "2025-01-10", "amount": 5.0, "status": "paid"},
        {"order_id": "b1", "customer_id": "B", "order_date": "2025-01-10", "amount": 10.0, "status": "paid"},
        {"order_id": "b2", "customer_id": "B", "order_date": "2025-02-01", "amount": 10.0, "status": "paid"},
    ])
    return db


def test_a_same_day_second_order_is_no_repeat_for_scoring_cohorts_and_loyalty_alike():
    from crm_helpers.analyses import cohorts

    db = _shop()
    repeats = facts.buyer_repeats(db, RULE_DAY).set_index("customer_id")
    assert repeats["repeat_purchases"].to_dict() == {"A": 0, "B": 1}
    assert repeats["bought_again"].to_dict() == {"A": False, "B": True}
    overview = scoring.loyalty_overview(db, RULE_DAY).set_index("measure")["value_pct"]
    assert overview[f"Bought again within {facts.REPEAT_WINDOW_DAYS} days"] == pytest.approx(50.0)
    channel = cohorts.repeat_rate_by_channel(db, RULE_DAY).set_index("acquisition_channel").loc["ads"]
    assert (channel["repeaters"], channel["repeaters_window"], channel["repeat_rate_window"]) == (1, 1, 0.5)
    assert facts.loyalty(db, None, end=RULE_DAY)["repeat_purchases"] == 1  # b2 only: a2 is Ann's first day


def test_the_repeat_window_is_one_year_for_every_page():
    import inspect

    from crm_helpers.analyses import cohorts
    from crm_helpers.report.glossary import TERMS

    assert facts.REPEAT_WINDOW_DAYS == 365
    for function in (cohorts.repeat_rate_by_channel, scoring.loyalty_overview):
        assert inspect.signature(function).parameters["window_days"].default == facts.REPEAT_WINDOW_DAYS
    assert any(t.term == "Bought again within 365 days" for t in TERMS)
    assert not any("180" in t.term + t.meaning for t in TERMS)


def _deals(as_of: dt.date) -> pd.DataFrame:
    """Open deals due yesterday, today and tomorrow, as of ``as_of``."""
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c, "name": c} for c in "XYZ"])
    db.table("opportunities").insert_all([
        {"opportunity_id": f"d{k}", "customer_id": c, "title": c, "stage": "proposal", "amount": 100.0,
         "probability": 0.5, "opened_at": "2026-06-01", "last_activity_at": as_of.isoformat(),
         "expected_close": (as_of + dt.timedelta(days=k)).isoformat()}
        for k, c in ((-1, "X"), (0, "Y"), (1, "Z"))])
    return sales.opportunities_as_of(db, as_of)


def test_a_deal_due_today_is_not_overdue_in_sales_and_desk_alike():
    opps = _deals(RULE_DAY)
    assert facts.deal_overdue(opps["status_at"], opps["expected_close"], as_of=RULE_DAY).tolist() == [True, False, False]
    by_month = sales.weighted_pipeline_by_month(opps, RULE_DAY)
    assert by_month.set_index("expected_close_month").loc["overdue", "deals"] == 1  # before: <= as_of made 2
    assert sales.pipeline_split(by_month) == (100.0, 50.0)


def test_desk_and_followup_and_sales_agree_on_stale():
    opps = _deals(RULE_DAY)
    opps["days_since_activity"] = [facts.STALE_DAYS, facts.STALE_DAYS + 1, 0.0]
    stale = sales.stale_opportunities(opps)
    assert stale["customer_id"].tolist() == ["Y"]
    assert facts.deal_stale(opps["days_since_activity"]).tolist() == [False, True, False]
    import inspect

    from crm_helpers import desk

    assert inspect.signature(followup.follow_up_queue).parameters["stale_days"].default == facts.STALE_DAYS
    assert not hasattr(desk, "STALE_DAYS")


def test_up_to_the_end_of_a_day_keeps_its_timestamps():
    db = memory_db()
    db.execute("CREATE TABLE t (at TEXT)")
    db.execute("INSERT INTO t VALUES ('2026-06-30'), ('2026-06-30 23:59:59'), ('2026-07-01')")
    sql = f"SELECT count(*) FROM t WHERE {facts.on_or_before_sql('at')}"
    assert db.execute(sql, {"end_next": facts.next_day(RULE_DAY)}).fetchone()[0] == 2


def test_a_refund_lowers_its_categorys_net_revenue():
    db = memory_db()
    db.table("customers").insert({"customer_id": "A", "name": "Ann"})
    db.table("products").insert_all([{"product_id": "p1", "name": "Tea", "category": "tea"},
                                     {"product_id": "p2", "name": "Cup", "category": "teaware"}])
    db.table("orders").insert_all([
        {"order_id": "o1", "customer_id": "A", "order_date": "2026-06-05", "amount": 90.0, "refunded_amount": 30.0,
         "status": "paid"},
        {"order_id": "o2", "customer_id": "A", "order_date": "2026-06-06", "amount": 20.0, "status": "paid"}])
    db.table("order_items").insert_all([
        {"order_id": "o1", "product_id": "p1", "quantity": 2, "unit_price": 30.0},
        {"order_id": "o1", "product_id": "p2", "quantity": 1, "unit_price": 30.0}])
    table = sales.revenue_by_category(db, parse_month("2026-06")).set_index("category")["revenue"]
    # o1's net 60 split 2:1 over its lines; o2 has no lines (before: 60 tea, 30 teaware, o2 nowhere)
    assert table.to_dict() == pytest.approx({"tea": 40.0, "teaware": 20.0, "no category": 20.0})


def test_the_categories_of_a_month_add_up_to_its_net_revenue(demo_db):
    period = parse_month("2026-10")
    table = sales.revenue_by_category(demo_db, period)
    figures = sales.period_figures(demo_db, period.start, end=period.end)
    assert table["revenue"].sum() == pytest.approx(figures["revenue"])


def test_lost_customers_agree_between_the_flows_and_the_months_figures(demo_db):
    flows = sales.monthly_customer_flows(demo_db, dt.date(2026, 10, 31)).set_index("month")
    for month in ("2026-08", "2026-09", "2026-10"):
        period = parse_month(month)
        figures = sales.period_figures(demo_db, period.start, end=period.end)
        assert figures["lost_customers"] == flows.loc[month, "lost"]


# -- up to the end of a day: a timestamp of the last day counts everywhere ---------------------------

LATE = f"{AS_OF} 15:00:00"  # an afternoon of the as-of day (the last day of OCT)


def test_a_deal_closed_in_the_afternoon_of_the_last_day_is_decided_in_that_period():
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c, "name": c} for c in "AB"])
    db.table("opportunities").insert_all([
        {"opportunity_id": "won-late", "customer_id": "A", "title": "Boxes", "stage": "won", "amount": 500.0,
         "opened_at": "2026-10-01", "closed_at": LATE},
        {"opportunity_id": "lost-late", "customer_id": "B", "title": "Cups", "stage": "lost", "amount": 100.0,
         "opened_at": "2026-10-11", "closed_at": f"{AS_OF} 09:30:00"},
        {"opportunity_id": "busy", "customer_id": "B", "title": "Tea", "stage": "proposal", "amount": 50.0,
         "opened_at": "2026-10-01", "last_activity_at": LATE}])
    opps = sales.opportunities_as_of(db, AS_OF).set_index("opportunity_id")
    assert opps["status_at"].to_dict() == {"won-late": "won", "lost-late": "lost", "busy": "open"}
    assert opps.loc["busy", "days_since_activity"] == 0, "activity this afternoon: 0 days, not unknown"
    opps = opps.reset_index()
    rate = sales.win_rate(opps, start=OCT.start, end=OCT.end).iloc[0]
    assert (rate["won"], rate["lost"], rate["win_rate"]) == (1, 1, 0.5)
    cycle = sales.sales_cycle(opps, start=OCT.start, end=OCT.end).set_index("outcome")
    assert cycle["deals"].to_dict() == {"won": 1, "lost": 1, "all": 2}
    assert sorted(sales.closed_deals(opps, OCT.start, end=OCT.end)["opportunity_id"]) == ["lost-late", "won-late"]
    before = sales.opportunities_as_of(db, AS_OF - dt.timedelta(days=1)).set_index("opportunity_id")
    assert (before["status_at"] == "open").all(), "the day before, both were still open"


@pytest.fixture
def late_book():
    """Order dates with their times (the schema's date columns keep days; a store written by hand may not).
    A bought on 1 October and at 15:00 on the as-of day (campaign "c1"), with a line; B was contacted by
    campaign c2 on 1 October and bought at 15:00 on its window's last day (30 days on) and the day after;
    A answered a survey and was called on the evening of the as-of day."""
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": "A", "name": "Ann", "first_seen": "2026-01-01"},
                                      {"customer_id": "B", "name": "Bo", "first_seen": "2026-01-01"},
                                      {"customer_id": "N", "name": "New", "first_seen": f"{AS_OF} 18:00:00"}])
    db.table("products").insert({"product_id": "p1", "name": "Tea", "category": "tea"})
    db.table("campaigns").insert_all([{"campaign_id": "c1", "name": "Autumn", "start_date": "2026-10-01", "cost": 10.0},
                                      {"campaign_id": "c2", "name": "Mail", "start_date": "2026-10-01", "cost": 10.0}])
    db.table("campaign_contacts").insert({"campaign_id": "c2", "customer_id": "B", "contacted_at": "2026-10-01"})
    db.table("orders").insert_all([
        {"order_id": "a1", "customer_id": "A", "order_date": "2026-10-01 10:00:00", "amount": 20.0, "status": "paid"},
        {"order_id": "a2", "customer_id": "A", "order_date": LATE, "amount": 30.0, "status": "paid",
         "campaign_id": "c1"},
        {"order_id": "b1", "customer_id": "B", "order_date": "2026-10-31 15:00:00", "amount": 40.0, "status": "paid"},
        {"order_id": "b2", "customer_id": "B", "order_date": "2026-11-01 09:00:00", "amount": 50.0, "status": "paid"}])
    db.table("order_items").insert({"order_id": "a2", "product_id": "p1", "quantity": 1, "unit_price": 30.0})
    db.table("feedback").insert({"feedback_id": "f1", "customer_id": "A", "submitted_at": f"{AS_OF} 18:00:00",
                                 "nps": 9})
    db.table("interactions").insert({"interaction_id": "i1", "customer_id": "A", "occurred_at": f"{AS_OF} 23:59:00",
                                     "channel": "phone"})
    return db


def test_an_order_in_the_afternoon_of_the_as_of_day_counts_in_clv_romi_and_cross_sell(late_book):
    from crm_helpers.analyses import clv, crosssell, romi

    days = clv.paid_purchase_days(late_book, AS_OF)
    assert days.groupby("customer_id")["amount"].sum().to_dict() == {"A": 50.0, "B": 40.0}
    attributed = romi.attributed_orders(late_book, AS_OF).set_index("order_id")
    assert attributed["campaign_id"].to_dict() == {"a2": "c1", "b1": "c2"}, "the coded order of the afternoon counts"
    later = romi.attributed_orders(late_book, AS_OF + dt.timedelta(days=5), attribution_window_days=30)
    assert later["order_id"].tolist() == ["a2", "b1"], "b1 is on the window's last day (30 days on), b2 after it"
    assert crosssell.paid_lines(late_book, AS_OF).holds.sum() == 1


def test_the_customer_features_keep_the_evening_of_the_as_of_day(late_book):
    features = customer_features(late_book, AS_OF, buyers_only=False).set_index("customer_id")
    assert features.loc["A", "frequency"] == 2 and features.loc["A", "monetary"] == 50.0
    assert features.loc["A", "days_since_contact"] == 0 and features.loc["A", "last_nps"] == 9
    assert "N" in features.index, "first seen this evening: known by the end of the day"
    from crm_helpers.analyses.features import paid_orders_between

    later = paid_orders_between(late_book, AS_OF - dt.timedelta(days=1), until=AS_OF)
    assert later.to_dict() == {"A": 1, "B": 1}
    assert paid_orders_between(late_book, AS_OF, until=AS_OF + dt.timedelta(days=1)).to_dict() == {"B": 1}, \
        "an order on the afternoon of `after` is not after it"


# -- open now --------------------------------------------------------------------------------------

def test_open_now_is_one_rule_for_the_desk_and_the_quality_check():
    from crm_helpers.analyses.quality import quality_checks
    from crm_helpers.desk import Desk

    db = memory_db()
    db.table("customers").insert({"customer_id": "A", "name": "Ann", "email": "a@example.com"})
    db.table("tickets").insert_all([
        {"ticket_id": "open", "customer_id": "A", "opened_at": "2026-10-01 09:00:00", "status": "open"},
        {"ticket_id": "reopened", "customer_id": "A", "opened_at": "2026-10-02 09:00:00", "status": "pending",
         "closed_at": "2026-10-03 09:00:00"},
        {"ticket_id": "closed-ahead", "customer_id": "A", "opened_at": "2026-10-04 09:00:00", "status": "closed",
         "closed_at": (dt.date.today() + dt.timedelta(days=3)).isoformat()},
        {"ticket_id": "closed", "customer_id": "A", "opened_at": "2026-10-05 09:00:00", "status": "closed",
         "closed_at": "2026-10-06 09:00:00"}])
    checks = quality_checks(db).set_index("check")
    assert checks.loc["open tickets", "count"] == 2
    desk = Desk(db, today="2026-10-31")
    desk.select("A")
    assert sorted(v for _, v in desk.ticket.fields["ticket_id"].options) == ["open", "reopened"]


# -- one spelling --------------------------------------------------------------------------------

def test_no_other_spelling_of_the_end_of_a_day_comes_back():
    """"Up to the end of a day" is ``on_or_before_sql`` / ``on_or_before`` (``< next_day``) and "open now" is
    ``ticket_open_now_sql``; facts.py alone names the other spellings (to say why they are not used)."""
    import re
    from pathlib import Path

    import crm_helpers

    forbidden = re.compile(r"T99|\bBETWEEN\b|'9999|<= pd\.Timestamp|'\+1 day'")  # SQL in capitals, as written
    root = Path(crm_helpers.__file__).parent
    found = [f"{path.relative_to(root)}:{n}: {line.strip()}"
             for path in sorted(root.rglob("*.py")) if path.name != "facts.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if forbidden.search(line)]
    assert found == []


# -- contacts ------------------------------------------------------------------------------------

def test_contacted_since_counts_a_contact_after_the_trigger_up_to_the_as_of_day():
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c} for c in "ABCD"])
    db.table("interactions").insert_all([
        {"interaction_id": "same-day", "customer_id": "A", "occurred_at": "2026-10-08 15:00:00", "channel": "email"},
        {"interaction_id": "before", "customer_id": "B", "occurred_at": "2026-10-07 09:00:00", "channel": "call"},
        {"interaction_id": "too-late", "customer_id": "C", "occurred_at": "2026-11-02 09:00:00", "channel": "call"},
        {"interaction_id": "earlier-that-day", "customer_id": "D", "occurred_at": "2026-10-08 08:00:00",
         "channel": "call"},
    ])
    sql = (f"SELECT who FROM (SELECT 'A' AS who, '2026-10-08' AS seen UNION ALL SELECT 'B', '2026-10-08' "
           f"UNION ALL SELECT 'C', '2026-10-08' UNION ALL SELECT 'D', '2026-10-08 12:00:00') "
           f"WHERE {facts.contacted_since_sql('who', 'seen')} ORDER BY who")
    contacted = [r[0] for r in db.execute(sql, {"end_next": facts.next_day(AS_OF)})]
    assert contacted == ["A"], "a contact later on the trigger's day counts; one before it, or after as_of, does not"
    later = [r[0] for r in db.execute(sql, {"end_next": facts.next_day("2026-11-30")})]
    assert later == ["A", "C"], "as of a later day, the later contact counts too"
