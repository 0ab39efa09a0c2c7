"""Data entry from a notebook: the same rules as the importer, plain errors, one transaction each."""

from __future__ import annotations

import pytest

from crm_helpers.ingest import entry
from crm_helpers.store.connection import StoreError, memory_db, open_db
from crm_helpers.store.validation import ValidationError


@pytest.fixture
def db():
    db = memory_db()
    db.table("products").insert({"product_id": "P1", "name": "Tea", "unit_price": 9.5})
    return db


def test_add_customer_normalizes_email_and_updates_on_a_known_email(db):
    cid = entry.add_customer(db, name="Ada", email="  ADA@Example.COM ", first_seen="2026-01-01")
    assert db.table("customers").get(cid)["email"] == "ada@example.com"
    same = entry.add_customer(db, email="ada@example.com", phone="+44 20 1234")
    assert same == cid and db.table("customers").count == 1
    assert db.table("customers").get(cid)["phone"] == "+44 20 1234"


def test_record_order_prices_lines_from_the_product_list(db):
    cid = entry.add_customer(db, "C1", name="Bo")
    oid = entry.record_order(db, cid, items=[("P1", 2, None)], order_date="2026-03-01")
    assert db.table("orders").get(oid)["amount"] == pytest.approx(19.0)
    assert db.table("order_items").count == 1


@pytest.mark.parametrize("call, field, reason", [
    (lambda db: entry.log_interaction(db, "C404", channel="call"), "customer_id", "unknown customer"),
    (lambda db: entry.add_feedback(db, "C1", nps=11), "nps", "out of range"),
    (lambda db: entry.add_feedback(db, "C1", csat=0), "csat", "out of range"),
    (lambda db: entry.log_interaction(db, "C1", channel="pigeon"), "channel", "not one of"),
    (lambda db: entry.record_order(db, "C1", items=[("P404", 1, None)]), "product_id", "no such product"),
])
def test_bad_entries_raise_a_plain_error_and_write_nothing(db, call, field, reason):
    entry.add_customer(db, "C1", name="Bo")
    before = {t: db.table(t).count for t in ("interactions", "feedback", "orders", "order_items")}
    with pytest.raises(ValidationError, match=reason) as info:
        call(db)
    assert field in str(info.value)
    assert {t: db.table(t).count for t in before} == before


def test_close_dates_before_open_dates_are_refused(db):
    entry.add_customer(db, "C1", name="Bo")
    ticket = entry.open_ticket(db, "C1", category="complaint", opened_at="2026-03-10 09:00:00")
    with pytest.raises(ValidationError, match="before the ticket was opened"):
        entry.close_ticket(db, ticket, closed_at="2026-03-09 09:00:00")
    assert db.table("tickets").get(ticket)["status"] == "open"
    entry.close_ticket(db, ticket, closed_at="2026-03-11 09:00:00", csat=4)
    assert db.table("tickets").get(ticket)["status"] == "closed"

    opp = entry.add_opportunity(db, "C1", amount=2000, opened_at="2026-03-01")
    with pytest.raises(ValidationError, match="before"):
        entry.move_opportunity(db, opp, stage="won", closed_at="2026-02-01")
    entry.move_opportunity(db, opp, stage="won", closed_at="2026-03-20")
    row = db.table("opportunities").get(opp)
    assert (row["stage"], row["probability"], row["closed_at"]) == ("won", 1.0, "2026-03-20")


def _rows(db) -> dict[str, int]:
    return {t: db.table(t).count for t in ("customers", "orders", "order_items", "feedback", "tickets")}


def test_a_read_only_store_gives_a_plain_message_and_writes_nothing(tmp_path):
    db = open_db(tmp_path / "crm.db")
    db.table("products").insert({"product_id": "P1", "name": "Tea", "unit_price": 9.5})
    entry.add_customer(db, "C1", name="Bo")
    before = _rows(db)
    db.execute("PRAGMA query_only = ON")  # what a read-only file or mount does to every write
    for call in (lambda: entry.add_customer(db, "C2", name="Cy"),
                 lambda: entry.record_order(db, "C1", items=[("P1", 1, None)]),
                 lambda: entry.add_feedback(db, "C1", nps=9)):
        with pytest.raises(StoreError, match=f"nothing was written: {tmp_path / 'crm.db'}: the store is read-only"):
            call()
        assert not db.conn.in_transaction
    db.execute("PRAGMA query_only = OFF")
    assert _rows(db) == before


def test_a_full_disk_gives_a_plain_message_and_the_next_entry_succeeds(tmp_path):
    db = open_db(tmp_path / "crm.db")
    before = _rows(db)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page
    with pytest.raises(StoreError, match="the disk is full; nothing was written"):
        entry.add_customer(db, "C1", name="Bo", notes="x" * 200_000)
    assert not db.conn.in_transaction and _rows(db) == before
    db.execute("PRAGMA max_page_count = 1073741823")
    assert entry.add_customer(db, "C1", name="Bo", notes="x" * 200_000) == "C1"


def test_answering_a_ticket_notes_the_first_answer_only(db):
    entry.add_customer(db, "C1", name="Bo")
    ticket = entry.open_ticket(db, "C1", opened_at="2026-03-10 09:00:00")
    with pytest.raises(ValidationError, match="before the ticket was opened"):
        entry.answer_ticket(db, ticket, answered_at="2026-03-09 09:00:00")
    entry.answer_ticket(db, ticket, answered_at="2026-03-10 11:00:00")
    entry.answer_ticket(db, ticket, answered_at="2026-03-12 11:00:00")
    assert db.table("tickets").get(ticket)["first_response_at"] == "2026-03-10 11:00:00"
    entry.close_ticket(db, ticket, closed_at="2026-03-13 09:00:00")
    with pytest.raises(ValidationError, match="closed already"):
        entry.answer_ticket(db, ticket)
