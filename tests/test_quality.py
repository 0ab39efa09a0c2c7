"""Data-gap checks: a missing export is named, with its date, before it misleads the other pages."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from crm_helpers.analyses import quality
from crm_helpers.store.connection import open_db
from crm_helpers.store.periods import parse_month

AS_OF = dt.date(2026, 10, 31)


def _delete(db_path, *statements: str) -> None:
    conn = sqlite3.connect(str(db_path))  # foreign keys off: a planted hole, as a missing export leaves
    with conn:
        for sql in statements:
            conn.execute(sql)
    conn.close()


@pytest.fixture
def gappy_db(demo_db_copy):
    """The demo with three planted holes: no first orders after 15 September, no tickets after
    August, and four in five of June's paid orders gone."""
    _delete(
        demo_db_copy,
        "DELETE FROM orders WHERE status = 'paid' AND order_date LIKE '2026-06-%' AND rowid % 5 <> 0",
        "DELETE FROM orders WHERE customer_id IN (SELECT customer_id FROM orders WHERE status = 'paid' "
        "GROUP BY customer_id HAVING min(order_date) >= '2026-09-15')",
        "DELETE FROM tickets WHERE opened_at >= '2026-09-01'",
    )
    return open_db(demo_db_copy)


def test_each_planted_gap_is_named_with_its_date(gappy_db):
    gaps = {g.check: g for g in quality.data_gaps(gappy_db, AS_OF)}
    new = gaps["no new customers for longer than usual"]
    newest = dt.datetime.strptime(new.finding.split("since ")[1].split(" (")[0], "%d %B %Y").date()
    assert dt.date(2026, 9, 1) <= newest < dt.date(2026, 9, 15) and "export missing" in new.finding
    assert new.chance < quality.GAP_CHANCE and new.money > 0
    tickets = gaps["no tickets rows for longer than usual"]
    assert tickets.table == "tickets" and "August 2026" in tickets.finding
    thin = gaps["a month with far fewer orders"]
    assert thin.finding.startswith("June 2026 has") and thin.money > 0


def test_the_gaps_are_ranked_by_money_and_shown_as_a_table(gappy_db):
    gaps = quality.data_gaps(gappy_db, AS_OF)
    assert [g.money for g in gaps] == sorted((g.money for g in gaps), reverse=True)
    table = quality.data_gap_table(gaps, gappy_db)
    assert len(table) == len(gaps) and table.iloc[:, -1].map(type).eq(int).all()


def test_the_demo_itself_has_no_gap(demo_db):
    """The demo keeps acquiring customers, answering tickets and selling to its last day."""
    assert quality.data_gaps(demo_db, AS_OF) == []


def test_each_data_gap_becomes_one_attention_item_with_its_money(gappy_db):
    gaps = quality.data_gaps(gappy_db, AS_OF)
    items = quality.attention_items(gappy_db, period=parse_month("2026-10"))
    assert [(i.key, i.sentence, i.money) for i in items] == [
        (f"data_gap {g.check} {g.table}", g.finding, g.money) for g in gaps]
    assert "data_gap no tickets rows for longer than usual tickets" in {i.key for i in items}
