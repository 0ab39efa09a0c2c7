"""Customer features as of a date: hand-computed fixture, refunds, time travel, the demo store."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from crm_helpers.store import queries
from crm_helpers.analyses.features import (
    FEATURE_COLUMNS,
    as_date,
    customer_features,
    last_order_date,
    paid_orders_between,
)
from crm_helpers.store.connection import memory_db

AS_OF = "2026-03-31"


@pytest.fixture
def small_db():
    """Four people: A buys (with a refund and a cancellation), B only had a refund, C bought on the day."""
    db = memory_db()
    db.table("customers").insert_all([
        {"customer_id": "A", "name": "Ann", "first_seen": "2026-01-10"},
        {"customer_id": "B", "name": "Bob", "first_seen": "2026-01-05"},
        {"customer_id": "C", "name": "Cy", "first_seen": "2026-03-31"},
        {"customer_id": "P", "name": "Pat", "first_seen": "2026-02-01"},
        {"customer_id": "Q", "name": "Quinn", "first_seen": "2026-05-01"},
    ])
    db.table("orders").insert_all([
        {"order_id": "1", "customer_id": "A", "order_date": "2026-01-10", "amount": 100.0, "status": "paid"},
        {"order_id": "2", "customer_id": "A", "order_date": "2026-02-01", "amount": 30.0, "status": "refunded"},
        {"order_id": "3", "customer_id": "A", "order_date": "2026-03-01", "amount": 50.0, "status": "paid"},
        {"order_id": "4", "customer_id": "A", "order_date": "2026-03-05", "amount": 20.0, "status": "cancelled"},
        {"order_id": "5", "customer_id": "A", "order_date": "2026-04-10", "amount": 999.0, "status": "paid"},
        {"order_id": "6", "customer_id": "B", "order_date": "2026-01-05", "amount": 40.0, "status": "refunded"},
        {"order_id": "7", "customer_id": "C", "order_date": "2026-03-31", "amount": 10.0, "status": "paid"},
    ])
    db.table("interactions").insert_all([
        {"interaction_id": "i1", "customer_id": "A", "occurred_at": "2026-03-31 18:00:00", "channel": "call"},
        {"interaction_id": "i2", "customer_id": "A", "occurred_at": "2026-04-01 09:00:00", "channel": "email"},
        {"interaction_id": "i3", "customer_id": "C", "occurred_at": "2026-03-01 09:00:00", "channel": "email"},
    ])
    db.table("tickets").insert_all([
        {"ticket_id": "t1", "customer_id": "A", "opened_at": "2026-03-20 10:00:00", "closed_at": "2026-04-02 10:00:00",
         "category": "complaint", "status": "closed"},
        {"ticket_id": "t2", "customer_id": "C", "opened_at": "2026-03-01 10:00:00", "closed_at": "2026-03-02 10:00:00",
         "category": "complaint", "status": "closed"},
        {"ticket_id": "t3", "customer_id": "C", "opened_at": "2026-03-03 10:00:00", "category": "question",
         "status": "open"},
    ])
    db.table("feedback").insert_all([
        {"feedback_id": "f1", "customer_id": "A", "submitted_at": "2026-02-01", "nps": 9},
        {"feedback_id": "f2", "customer_id": "A", "submitted_at": "2026-03-15", "nps": 3},
        {"feedback_id": "f3", "customer_id": "A", "submitted_at": "2026-04-05", "nps": 10},
    ])
    return db


def test_hand_computed_buyer(small_db):
    f = customer_features(small_db, AS_OF).set_index("customer_id")
    assert list(f.index) == ["A", "C"], "only buyers by default: B only had a refund, P and Q never ordered"
    a = f.loc["A"]
    assert a["frequency"] == 2  # the refunded, the cancelled and the April order do not count
    assert a["monetary"] == pytest.approx(150.0)
    assert a["avg_order_value"] == pytest.approx(75.0)
    assert a["recency_days"] == 30 and a["tenure_days"] == 80
    assert a["first_order"] == pd.Timestamp("2026-01-10") and a["last_order"] == pd.Timestamp("2026-03-01")
    assert (a["refunded_orders"], a["refunded_amount"], a["cancelled_orders"]) == (1, 30.0, 1)
    assert a["recent_orders"] == 2
    assert a["interactions"] == 1 and a["days_since_contact"] == 0  # the evening call counts, April's does not
    assert (a["tickets"], a["complaints"], a["open_complaints"]) == (1, 1, 1)  # closed only in April
    assert a["last_nps"] == 3 and a["last_nps_date"] == pd.Timestamp("2026-03-15")


def test_order_on_the_day_is_zero_days_ago_and_closed_complaints_are_not_open(small_db):
    c = customer_features(small_db, AS_OF).set_index("customer_id").loc["C"]
    assert (c["recency_days"], c["tenure_days"], c["frequency"]) == (0, 0, 1)
    assert c["days_since_contact"] == 30
    assert (c["tickets"], c["complaints"], c["open_complaints"]) == (2, 1, 0)
    assert pd.isna(c["last_nps"])


def test_all_known_customers_include_non_buyers_but_not_future_ones(small_db):
    f = customer_features(small_db, AS_OF, buyers_only=False).set_index("customer_id")
    assert sorted(f.index) == ["A", "B", "C", "P"]
    b = f.loc["B"]
    assert b["frequency"] == 0 and b["monetary"] == 0 and b["refunded_orders"] == 1
    assert pd.isna(b["recency_days"]) and pd.isna(b["avg_order_value"])


def test_later_as_of_sees_later_orders(small_db):
    a = customer_features(small_db, "2026-04-30").set_index("customer_id").loc["A"]
    assert a["frequency"] == 3 and a["monetary"] == pytest.approx(1149.0) and a["recency_days"] == 20
    assert a["open_complaints"] == 0 and a["last_nps"] == 10


def test_before_any_order_and_empty_store_give_empty_frames(small_db):
    assert customer_features(small_db, "2025-12-31").empty
    empty = customer_features(memory_db(), AS_OF)
    assert empty.empty and list(empty.columns) == list(FEATURE_COLUMNS)
    assert last_order_date(memory_db()) is None


def test_paid_orders_between_counts_paid_orders_after_the_cutoff(small_db):
    counts = paid_orders_between(small_db, "2026-03-01", until="2026-04-30")
    assert counts.to_dict() == {"A": 1, "C": 1}  # 1 March itself is excluded, the cancelled one too
    assert paid_orders_between(small_db, "2030-01-01", until="2030-02-01").empty
    assert last_order_date(small_db) == dt.date(2026, 4, 10)


def test_as_date_accepts_dates_and_rejects_nonsense():
    assert as_date("2026-10-31") == dt.date(2026, 10, 31) == as_date(pd.Timestamp("2026-10-31 13:00"))
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        as_date("31/10/2026")


def test_demo_features_match_a_pandas_recount(demo_db):
    as_of = dt.date(2026, 10, 31)
    f = customer_features(demo_db, as_of).set_index("customer_id")
    paid = queries.query_df(demo_db, "SELECT order_id, customer_id, order_date, amount FROM orders "
                            "WHERE status = 'paid' AND order_date <= ?", params=[as_of.isoformat()],
                            parse_dates=["order_date"])
    recount = paid.groupby("customer_id").agg(n=("order_id", "size"), revenue=("amount", "sum"),
                                              last=("order_date", "max"))
    assert len(f) == len(recount)
    pd.testing.assert_series_equal(f["frequency"], recount["n"].reindex(f.index), check_names=False)
    pd.testing.assert_series_equal(f["monetary"], recount["revenue"].reindex(f.index), check_names=False)
    assert (f["recency_days"].astype(int) == (pd.Timestamp(as_of) - recount["last"].reindex(f.index)).dt.days).all()
    assert (f["recent_orders"] <= f["frequency"]).all() and (f["tenure_days"] >= f["recency_days"]).all()
