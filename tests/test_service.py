"""Service tickets: hand-timed tickets, the as-of rule, backlog and reopening; planted signals on the demo."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest

from crm_helpers.analyses import service
from crm_helpers.store.periods import parse_month
from crm_helpers.store.connection import memory_db, open_db

OCT, SEP = parse_month("2026-10"), parse_month("2026-09")


@pytest.fixture
def db():
    """Six tickets with hand-picked times (hours from opening in the comments)."""
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c} for c in "ABCDE"])
    rows = [
        # id, customer, opened, first response, closed, category, status, csat
        ("T1", "A", "2026-10-01 08:00:00", "2026-10-01 10:00:00", "2026-10-02 08:00:00", "question", "closed", 5),
        ("T2", "A", "2026-10-03 00:00:00", "2026-10-03 06:00:00", "2026-10-05 00:00:00", "complaint", "closed", 4),
        ("T3", "B", "2026-10-10 00:00:00", "2026-10-10 10:00:00", None, "complaint", "open", None),
        ("T4", "C", "2026-10-30 00:00:00", "2026-11-02 00:00:00", "2026-11-03 00:00:00", "request", "closed", 2),
        ("T5", "D", "2026-09-01 00:00:00", "2026-09-01 01:00:00", "2026-10-20 00:00:00", "complaint", "closed", 1),
        ("T6", "E", "2026-10-12 00:00:00", "2026-10-12 04:00:00", "2026-10-13 00:00:00", "complaint", "open", None),
    ]
    # hours to first response / to close: T1 2 / 24, T2 6 / 48, T3 10 / open, T4 answered and closed in
    # November (after October's end), T5 1 / 49 days, T6 4 / closed once but open again (reopened)
    db.table("tickets").insert_all([
        {"ticket_id": t, "customer_id": c, "opened_at": o, "first_response_at": f, "closed_at": cl,
         "category": cat, "status": st, "csat": cs} for t, c, o, f, cl, cat, st, cs in rows
    ])
    return db


def test_times_are_in_hours_and_only_what_happened_by_month_end_counts(db):
    frame = service.tickets(db, OCT.start, end=OCT.end)
    assert frame["ticket_id"].tolist() == ["T1", "T2", "T3", "T6", "T4"]
    t4 = frame.set_index("ticket_id").loc["T4"]
    assert math.isnan(t4["first_response_hours"]) and pd.isna(t4["closed_at"]) and math.isnan(t4["csat"])
    row = service.response_times(frame, by=None).iloc[0]
    assert row["tickets"] == 5 and row["answered"] == 4 and row["waiting_for_answer"] == 1
    assert row["median_first_response_hours"] == pytest.approx(5.0)  # of 2, 4, 6, 10
    assert row["p90_first_response_hours"] == pytest.approx(8.8)  # 6 + 0.7 · (10 − 6)
    assert row["closed"] == 2 and row["still_open"] == 3  # the reopened T6 is not closed
    assert row["median_resolution_hours"] == pytest.approx(36.0)
    assert row["p90_resolution_hours"] == pytest.approx(45.6)
    later = service.tickets(db, OCT.start, end=OCT.end, as_of=dt.date(2026, 11, 30)).set_index("ticket_id")
    assert later.loc["T4", "first_response_hours"] == pytest.approx(72.0) and later.loc["T4", "csat"] == 2


def test_volume_by_month_and_category(db):
    table = service.volume_by_month(service.tickets(db, SEP.start, end=OCT.end))
    assert table.loc["2026-10", "complaint"] == 3 and table.loc["2026-10", "total"] == 5
    assert table.loc["2026-09", "total"] == 1


def test_headline_is_the_median_first_response_of_the_month_and_the_one_before(db):
    figures = {f.key: f for f in service.headline_figures(db, period=OCT)}
    assert set(figures) == {"median_first_response_hours"}
    assert figures["median_first_response_hours"].value == 5.0
    assert figures["median_first_response_hours"].previous == 1.0
    assert figures["median_first_response_hours"].note == "5 tickets opened, 4 answered by month end"
    assert service.headline_figures(db, period=OCT, previous=OCT)[0].previous == 5.0
    assert service.headline_figures(db, period=parse_month("2026-01"))[0].value is None


def test_backlog_as_of_a_date(db):
    end = service.backlog(db, OCT.end).set_index("ticket_id")
    assert set(end.index) == {"T3", "T4", "T6"}
    assert end.loc["T3", "age_days"] == pytest.approx(22.0)
    assert not end.loc["T4", "answered"] and end.loc["T6", "reopened"]
    early = service.backlog(db, dt.date(2026, 10, 4))
    assert set(early["ticket_id"]) == {"T2", "T5"}
    summary = service.backlog_summary(service.backlog(db, OCT.end))
    assert summary.loc["all", "open"] == 3 and summary.loc["all", "not_answered"] == 1
    assert summary.loc["complaint", "open"] == 2
    none = service.backlog_summary(service.backlog(db, dt.date(2026, 1, 31)))
    assert none.loc["all", "open"] == 0


def test_long_running_and_reopened_tickets(db):
    table = service.long_running(db, OCT, threshold_days=7)
    assert table["ticket_id"].tolist() == ["T5", "T3", "T6"]
    why = dict(zip(table["ticket_id"], table["why"]))
    assert why == {"T5": "closed after more than 7 days", "T3": "open for more than 7 days",
                   "T6": "reopened (closed once, open again)"}
    assert table.loc[0, "days"] == pytest.approx(49.0)


def test_ticket_csat_after_close_by_resolution_time(db):
    frame = service.tickets(db, SEP.start, end=OCT.end)
    bands = service.csat_after_close(frame, by="resolution")
    assert bands.loc["within a day", "rated"] == 1 and bands.loc["within a day", "csat_pct"] == 100
    assert bands.loc["1–2 days", "mean_rating"] == 4
    assert bands.loc["over a week", "csat_pct"] == 0
    assert bands.loc["2–7 days", "closed"] == 0
    months = service.csat_after_close(frame, by="month")
    assert months.loc["2026-09", "mean_rating"] == 1 and months.loc["2026-10", "rated"] == 2
    with pytest.raises(ValueError, match="by must be"):
        service.csat_after_close(frame, by="week")


def test_ticket_experience_groups_later_answers(db):
    answers = [("A", "2026-10-10", 9), ("B", "2026-10-15", 3), ("C", "2026-10-20", 10), ("D", "2026-10-25", 5)]
    db.table("feedback").insert_all([{"feedback_id": f"F{k}", "customer_id": c, "submitted_at": d, "nps": n}
                                     for k, (c, d, n) in enumerate(answers)])
    table = service.ticket_experience_nps(db, OCT.end, n_boot=200)
    assert table.loc["ticket closed, rated 4–5", "answers"] == 1  # A: T2 (rated 4) is the latest before
    assert table.loc["ticket still open", "answers"] == 1  # B: T3 open when answering
    assert table.loc["no ticket", "nps"] == 100  # C: T4 came after the answer
    assert table.loc["ticket closed, rated 1–3", "nps"] == -100  # D: T5, 54 days before
    assert table.loc["any recent ticket", "nps"] == pytest.approx(100 * (1 - 2) / 3)
    assert table.loc["ticket closed, not rated", "answers"] == 0


# -- planted signals on the demo store -------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_db_path: Path):
    return open_db(demo_db_path)


def test_long_resolution_lowers_ticket_csat_on_the_demo(demo):
    frame = service.tickets(demo, "2024-01-01", end=OCT.end)
    bands = service.csat_after_close(frame, by="resolution")
    ratings = bands["mean_rating"].dropna()
    assert ratings.is_monotonic_decreasing
    assert bands.loc["within a day", "csat_pct"] > bands.loc["over a week", "csat_pct"] + 50


def test_answers_after_a_ticket_score_a_lower_nps_on_the_demo(demo):
    table = service.ticket_experience_nps(demo, OCT.end, lookback_days=365)
    assert table.loc["any recent ticket", "answers"] >= 50
    assert table.loc["no ticket", "nps_ci_low"] > table.loc["any recent ticket", "nps"]


def test_demo_month_figures_agree_with_the_raw_tickets(demo):
    raw = pd.read_sql_query(
        "SELECT opened_at, first_response_at FROM tickets WHERE opened_at LIKE '2026-10%'", demo.conn)
    hours = (pd.to_datetime(raw["first_response_at"]) - pd.to_datetime(raw["opened_at"])).dt.total_seconds() / 3600
    row = service.period_times(demo, OCT)
    assert row["tickets"] == len(raw) and row["answered"] == hours.notna().sum()
    assert row["median_first_response_hours"] == pytest.approx(hours.median())
    open_now = {r[0] for r in demo.execute("SELECT ticket_id FROM tickets WHERE status <> 'closed'").fetchall()}
    assert set(service.backlog(demo, OCT.end)["ticket_id"]) == open_now  # the demo ends with October
