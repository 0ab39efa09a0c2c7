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


# ---------------------------------------------------------------------- correcting past entries
@pytest.fixture
def order(db):
    """Customer C1's order of 2 Tea at 9.50 and 1 Pot at 20.00 (list prices), 39.00 in all."""
    db.table("products").insert({"product_id": "P2", "name": "Pot", "unit_price": 20.0})
    entry.add_customer(db, "C1", name="Bo")
    return entry.record_order(db, "C1", items=[("P1", 2, None), ("P2", 1, None)], order_date="2026-03-01")


def _money(db, order_id):
    row = db.table("orders").get(order_id)
    return row["amount"], row["refunded_amount"], row["status"]


def test_record_order_settles_refunds_as_the_importer_does(db, order):
    assert _money(db, order) == (39.0, 0.0, "paid")
    refunded = entry.record_order(db, "C1", items=[("P1", 1, None)], status="refunded")
    assert _money(db, refunded) == (9.5, 9.5, "refunded")  # paid back whole, as an import of it stores it


def test_changing_a_quantity_moves_the_amount_by_the_lines_change(db, order):
    entry.edit_order(db, order, quantities={"P1": 3})
    assert _money(db, order) == (48.5, 0.0, "paid")
    db.execute("UPDATE orders SET amount = amount + 4.9")  # shipping on the whole order, as an import may hold
    entry.edit_order(db, order, quantities={"P2": "0", "P1": 1})  # a line removed, another changed
    assert _money(db, order) == (14.4, 0.0, "paid")  # 9.50 of tea + the 4.90 of shipping kept
    assert db.execute("SELECT product_id, quantity FROM order_items").fetchall() == [("P1", 1)]
    entry.edit_order(db, order, amount="12,00")  # typed by hand: taken as typed, cleaned like an import's
    assert _money(db, order) == (12.0, 0.0, "paid")


def test_an_order_gains_a_product_line_at_a_given_or_the_list_price(db, order):
    db.table("products").insert({"product_id": "P3", "name": "Cups", "unit_price": 6.0})
    entry.edit_order(db, order, quantities={"P3": "2"}, prices={"P3": "5,50"})  # typed as the importer reads it
    assert db.execute("SELECT product_id, quantity, unit_price FROM order_items WHERE product_id = 'P3'").fetchall() \
        == [("P3", 2, 5.5)]
    assert _money(db, order) == (50.0, 0.0, "paid")  # 39.00 + 2 × 5.50
    db.execute("DELETE FROM order_items WHERE product_id = 'P3'")
    db.execute("UPDATE orders SET amount = 39")
    entry.edit_order(db, order, quantities={"P3": 1})  # no price given: the list's
    assert _money(db, order) == (45.0, 0.0, "paid")
    entry.edit_order(db, order, quantities={"P3": 0})
    for bad, column in (({"P3": "-1"}, "unit_price"), ({"P3": "abc"}, "unit_price")):
        with pytest.raises(ValidationError) as refused:
            entry.edit_order(db, order, quantities={"P3": 2}, prices=bad)
        assert refused.value.column == column
    with pytest.raises(ValidationError, match="no such product"):
        entry.edit_order(db, order, quantities={"P9": 1}, prices={"P9": 3})
    assert _money(db, order) == (39.0, 0.0, "paid")  # refused: nothing written


def test_a_refund_follows_the_corrected_amount_or_is_refused_beyond_it(db, order):
    entry.edit_order(db, order, status="refunded")
    assert _money(db, order) == (39.0, 39.0, "refunded")
    entry.edit_order(db, order, quantities={"P1": 1})
    assert _money(db, order) == (29.5, 29.5, "refunded")  # refunded whole stays whole
    entry.edit_order(db, order, status="paid", refunded_amount="10")
    with pytest.raises(ValidationError, match="refunded_amount.*more than the order's amount 5"):
        entry.edit_order(db, order, amount=5)
    assert _money(db, order) == (29.5, 10.0, "paid")  # nothing written


@pytest.mark.parametrize("table, add, changes, field, reason", [
    ("feedback", lambda db: entry.add_feedback(db, "C1", nps=3), {"nps": 11}, "nps", "out of range"),
    ("interactions", lambda db: entry.log_interaction(db, "C1", channel="call"), {"channel": "pigeon"}, "channel",
     "not one of"),
    ("interactions", lambda db: entry.log_interaction(db, "C1", channel="call"), {"occurred_at": ""}, "occurred_at",
     "required"),
    ("tickets", lambda db: entry.open_ticket(db, "C1", opened_at="2026-03-10 09:00"),
     {"closed_at": "2026-03-09 08:00"}, "closed_at", "before the ticket was opened"),
    ("opportunities", lambda db: entry.add_opportunity(db, "C1", opened_at="2026-03-10"),
     {"closed_at": "2026-03-01", "stage": "won"}, "closed_at", "before the opportunity was opened"),
    ("tasks", lambda db: entry.add_task(db, "2026-03-20", customer_id="C1"), {"customer_id": "C2"}, "customer_id",
     "cannot be changed"),
    ("tasks", lambda db: entry.add_task(db, "2026-03-20", customer_id="C1"), {"due": "soon"}, "due", "date"),
])
def test_a_correction_is_checked_by_the_importers_rules_and_writes_nothing_when_refused(db, table, add, changes,
                                                                                         field, reason):
    entry.add_customer(db, "C1", name="Bo")
    key = add(db)
    before = db.execute(f"SELECT * FROM {table}").fetchall()
    with pytest.raises(ValidationError, match=reason) as info:
        entry.edit_entry(db, table, entry_id=key, **changes)
    assert info.value.column == field
    assert db.execute(f"SELECT * FROM {table}").fetchall() == before


def test_a_correction_writes_only_what_changed_and_blank_clears(db):
    entry.add_customer(db, "C1", name="Bo")
    iid = entry.log_interaction(db, "C1", channel="call", occurred_at="2026-03-01 10:00", outcome="no answer",
                                notes="try again")
    entry.edit_entry(db, "interactions", entry_id=iid, outcome="wants a quote", notes=" ", occurred_at="2026-03-01T11:30")
    row = db.table("interactions").get(iid)
    assert (row["outcome"], row["notes"], row["occurred_at"], row["channel"]) == (
        "wants a quote", None, "2026-03-01 11:30:00", "call")


def test_deleting_an_order_takes_its_lines_and_a_referred_entry_is_refused(db, order):
    ticket = entry.open_ticket(db, "C1")
    entry.add_task(db, "2026-03-20", note="ring back", ticket_id=ticket)
    with pytest.raises(ValidationError, match="1 tasks refer to it"):
        entry.delete_entry(db, "tickets", entry_id=ticket)
    entry.delete_entry(db, "orders", entry_id=order)
    assert db.table("orders").count == 0 and db.table("order_items").count == 0
    with pytest.raises(ValidationError, match="not an entry of the timeline"):
        entry.delete_entry(db, "customers", entry_id="C1")
