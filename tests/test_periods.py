"""Report periods: parsing months and finding the latest complete month."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_helpers.store.periods import Period, latest_complete_month, parse_month, resolve_period
from crm_helpers.store.connection import memory_db


def _store_with_orders(*dates: str):
    db = memory_db()
    db.table("customers").insert({"customer_id": "A"})
    db.table("orders").insert_all(
        {"order_id": f"O{i}", "customer_id": "A", "order_date": d, "amount": 1.0, "status": "paid"}
        for i, d in enumerate(dates)
    )
    return db


def test_parse_month_and_label():
    p = parse_month("2024-02")
    assert (p.start, p.end) == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert p.label == "2024-02"
    assert p.previous_month() == Period(dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month("Feb 2024")


def test_latest_complete_month_skips_the_month_under_way():
    db = _store_with_orders("2026-09-30", "2026-10-12")
    assert latest_complete_month(db, today=dt.date(2026, 10, 20)).label == "2026-09"
    assert latest_complete_month(db, today=dt.date(2026, 11, 2)).label == "2026-10"


def test_month_whose_last_day_has_data_is_complete():
    db = _store_with_orders("2026-10-31")
    assert latest_complete_month(db, today=dt.date(2026, 10, 31)).label == "2026-10"


def test_empty_store_has_no_period_and_resolve_says_why():
    db = memory_db()
    assert latest_complete_month(db) is None
    with pytest.raises(ValueError, match="no orders"):
        resolve_period(db)


def test_resolve_explicit_period_and_reject_reversed():
    db = memory_db()
    assert resolve_period(db, "2026-03-01", period_end="").end == dt.date(2026, 3, 31)
    with pytest.raises(ValueError, match="before its start"):
        resolve_period(db, "2026-03-10", period_end="2026-03-01")
