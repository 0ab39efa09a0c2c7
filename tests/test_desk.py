"""The desk's forms, driven as a person would: set the widgets' values, click, check the store."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from pathlib import Path

import ipywidgets as widgets
import jsonschema
import nbformat
import pytest
from support import run_notebook

from crm_helpers.ingest import entry
from crm_helpers.store.config import KERNEL_NAME, PROJECT_ROOT
from crm_helpers.demo import DEMO_TRUTH
from crm_helpers.desk import (SEARCH_LIMIT, SHOWN_ROWS, Desk, call_list, count_customers, customer_timeline,
                              find_customers, follow_up)
from crm_helpers.desk_server import CULL_IDLE_S, TEMPLATE, allowed_hosts, new_key, server_config
from crm_helpers.analyses.followup import follow_up_queue_as_of
from crm_helpers.store.facts import STALE_DAYS
from crm_helpers.store.forget import forget
from crm_helpers.store.connection import memory_db, open_db


@pytest.fixture
def db():
    db = memory_db()
    db.table("products").insert_all([{"product_id": "P1", "name": "Sencha 100g", "unit_price": 9.5},
                                     {"product_id": "P2", "name": "Gaiwan", "unit_price": 20.0}])
    entry.add_customer(db, "C1", name="Anna Li", email="anna@example.com")
    entry.add_customer(db, "C2", name="Wei Zhang", email="wei@example.com", company="Tea House")
    return db


@pytest.fixture
def desk(db):
    return Desk(db, today="2026-03-15")


def fill(form, **values):
    for name, value in values.items():
        form.fields[name].value = value


def error(form, name: str) -> str:
    return form.errors[name].value


def count(db, table: str) -> int:
    return db.table(table).count


def texts(widget) -> str:
    """Every piece of text the widget tree shows (values, labels, options)."""
    parts = []
    for name in ("value", "description", "placeholder"):
        value = getattr(widget, name, None)
        if isinstance(value, str):
            parts.append(value)
    parts += [str(o) for o in getattr(widget, "options", ()) or ()]
    for child in getattr(widget, "children", ()) or ():
        parts.append(texts(child))
    return "\n".join(parts)


# ----------------------------------------------------------------------------- finding
def test_search_finds_by_part_of_name_email_or_company(desk, db):
    assert [cid for _, cid in find_customers(db, "ANNA")] == ["C1"]
    assert [cid for _, cid in find_customers(db, "tea h")] == ["C2"]
    assert [cid for _, cid in find_customers(db, "example.com")] == ["C1", "C2"]
    assert find_customers(db, "  ") == [] and find_customers(db, "%") == []
    desk.search.value = "wei"
    assert [v for _, v in desk.matches.options] == ["C2"]
    desk.matches.value = "C2"
    assert desk.customer_id == "C2" and "Wei Zhang" in desk.selected.value
    assert desk.customer.fields["company"].value == "Tea House"


def test_search_finds_by_phone_digits_and_says_how_many_more(desk, db):
    entry.update_customer(db, "C1", phone="+49 30 123-4567")
    assert [cid for _, cid in find_customers(db, "1234567")] == ["C1"]
    assert [cid for _, cid in find_customers(db, "30 123")] == ["C1"]
    for n in range(SEARCH_LIMIT + 4):
        entry.add_customer(db, f"M{n}", name=f"Miller {n:02d}")
    desk.search.value = "miller"
    assert len(desk.matches.options) == SEARCH_LIMIT and "4 more" in desk.more.value
    assert count_customers(db, "miller") == SEARCH_LIMIT + 4
    desk.search.value = "miller 01"
    assert desk.more.value == ""


def test_enter_in_a_field_saves_the_form(desk, db):
    desk.select("C1")
    form = desk.interaction
    fill(form, outcome="wants a quote")
    form.fields["outcome"]._handle_msg({"content": {"data": {"method": "custom", "content": {"event": "submit"}}},
                                      "buffers": []})  # what the page sends on Enter
    assert "Saved: call with Anna Li" in form.message.value and count(db, "interactions") == 1


# ---------------------------------------------------------------------------- customers
def test_adding_a_customer_writes_one_row_and_can_be_undone(desk, db):
    form = desk.customer
    desk.select(None)
    fill(form, name="Bo Berg", email=" BO@Example.org ", phone="+46 8 123", consent_marketing=True)
    form.add.click()
    row = db.execute("SELECT customer_id, email, consent_marketing, first_seen FROM customers WHERE name = 'Bo Berg'").fetchone()
    assert row[1:] == ("bo@example.org", 1, dt.date.today().isoformat())
    assert desk.customer_id == row[0] and "Saved" in form.message.value and form.undo.layout.display == ""
    form.undo.click()
    assert count(db, "customers") == 2 and "Undone" in form.message.value and desk.customer_id is None


@pytest.mark.parametrize("values, field, reason", [
    ({"name": "", "email": ""}, "name", "give a name or an e-mail"),
    ({"name": "Cy", "email": "cy-at-example"}, "email", "not an e-mail address"),
    ({"name": "Anna again", "email": "Anna@Example.com"}, "email", "belongs to Anna Li already"),
])
def test_adding_a_customer_is_refused_beside_the_field(desk, db, values, field, reason):
    desk.select(None)
    fill(desk.customer, **values)
    desk.customer.add.click()
    assert reason in error(desk.customer, field) and "Not saved" in desk.customer.message.value
    assert count(db, "customers") == 2


def test_a_known_email_offers_to_open_that_customer(desk):
    desk.select(None)
    fill(desk.customer, name="Anna L.", email="anna@example.com")
    desk.customer.add.click()
    assert desk.customer.open_existing.layout.display == ""
    desk.customer.open_existing.click()
    assert desk.customer_id == "C1" and desk.customer.fields["name"].value == "Anna Li"


def test_editing_a_customer_and_undoing_the_edit(desk, db):
    desk.select("C1")
    fill(desk.customer, phone="+49 30 555", city="Berlin")
    desk.customer.save.click()
    assert db.table("customers").get("C1")["city"] == "Berlin"
    fill(desk.customer, email="wei@example.com")
    desk.customer.save.click()
    assert "belongs to Wei Zhang already" in error(desk.customer, "email")
    desk.customer.undo.click()
    row = db.table("customers").get("C1")
    assert (row["phone"], row["city"], row["email"]) == (None, None, "anna@example.com")


def test_add_new_starts_from_an_empty_form_and_copies_nothing_of_the_chosen_customer(desk, db):
    desk.select("C2")
    fill(desk.customer, phone="+49 30 555", city="Berlin", notes="likes oolong", consent_marketing=True)
    desk.customer.save.click()
    form = desk.customer
    assert form.add.layout.display == "none" and form.new.layout.display == ""  # only Save changes / New
    fill(form, name="Bo Berg", email="bo@example.org")
    form.add.click()  # even clicked from code: refused while Wei Zhang is on the form
    assert "press \u201cNew customer\u201d first" in form.message.value and count(db, "customers") == 2
    form.new.click()
    assert desk.customer_id is None and desk.matches.value is None
    assert all(form.fields[n].value == "" for n in form.TEXT_FIELDS) and form.fields["consent_marketing"].value is False
    assert form.add.layout.display == "" and form.save.layout.display == "none"
    fill(form, name="Bo Berg", email="bo@example.org")
    form.add.click()
    row = db.execute("SELECT phone, company, city, notes, consent_marketing FROM customers WHERE name = 'Bo Berg'").fetchone()
    assert row == (None, None, None, None, 0) and desk.customer_id != "C2"


def test_editing_without_a_chosen_customer_is_refused(desk):
    desk.select(None)
    fill(desk.customer, name="Nobody")
    desk.customer.save.click()
    assert "choose a customer first" in desk.customer.message.value


# ---------------------------------------------------------------------- future dates
def test_a_date_in_the_future_is_saved_only_once_confirmed(desk, db):
    desk.select("C1")
    form = desk.interaction
    fill(form, occurred_at="2099-01-05 10:00", outcome="booked")
    form.save.click()
    assert "is in the future" in error(form, "occurred_at") and count(db, "interactions") == 0
    assert form.future_ok.layout.display == ""
    form.future_ok.value = True
    fill(form, occurred_at="2099-01-06 10:00")  # another date: asked again
    assert form.future_ok.value is False
    form.save.click()
    assert count(db, "interactions") == 0
    form.future_ok.value = True
    form.save.click()
    assert db.execute("SELECT occurred_at FROM interactions").fetchone() == ("2099-01-06 10:00:00",)
    assert form.future_ok.layout.display == "none" and form.future_ok.value is False
    fill(desk.order, order_date="2099-02-01")
    desk.order.fields["product_id"].value = "P1"
    desk.order.add_line.click()
    desk.order.save.click()
    assert "is in the future" in error(desk.order, "order_date") and count(db, "orders") == 0
    fill(desk.feedback, nps="9", submitted_at=(dt.date.today() + dt.timedelta(days=1)).isoformat())
    desk.feedback.save.click()
    assert "is in the future" in error(desk.feedback, "submitted_at") and count(db, "feedback") == 0
    fill(desk.feedback, submitted_at=dt.date.today().isoformat())  # today is not the future
    desk.feedback.save.click()
    assert count(db, "feedback") == 1


# ------------------------------------------------------------------------- interactions
def test_logging_an_interaction_defaults_to_now(desk, db):
    desk.select("C1")
    fill(desk.interaction, channel="call", subject="quote", outcome="wants a quote", notes="two boxes")
    before = dt.datetime.now().replace(microsecond=0)
    desk.interaction.save.click()
    row = db.execute("SELECT customer_id, channel, direction, outcome, occurred_at FROM interactions").fetchone()
    assert row[:4] == ("C1", "call", "outbound", "wants a quote")
    assert before <= dt.datetime.fromisoformat(row[4]) <= dt.datetime.now()
    assert "Outcome: wants a quote" in desk.interaction.message.value  # what was written
    assert desk.interaction.fields["outcome"].value == ""  # emptied for the next one
    desk.interaction.undo.click()
    assert count(db, "interactions") == 0


@pytest.mark.parametrize("customer, when, where, reason", [
    (None, "", "message", "choose a customer first"),
    ("C1", "2026-02-30 10:00", "occurred_at", "impossible date"),
    ("C1", "yesterday", "occurred_at", "not a date"),
])
def test_an_interaction_is_refused(desk, db, customer, when, where, reason):
    desk.select(customer)
    fill(desk.interaction, occurred_at=when)
    desk.interaction.save.click()
    shown = desk.interaction.message.value if where == "message" else error(desk.interaction, where)
    assert reason in shown and count(db, "interactions") == 0


# ------------------------------------------------------------------------------- orders
def test_an_order_prices_its_lines_from_the_list_and_can_be_undone(desk, db):
    desk.select("C2")
    form = desk.order
    assert form.fields["product_id"].options[1] == ("Sencha 100g — 9.50 EUR", "P1")
    fill(form, product_id="P1", quantity="2")
    form.add_line.click()
    fill(form, product_id="P2", quantity="1")
    form.add_line.click()
    assert "Total: 39.00 EUR" in form.lines_view.value
    fill(form, status="paid", order_date="2026-03-14")
    form.save.click()
    order = db.execute("SELECT order_id, customer_id, amount, status, order_date FROM orders").fetchone()
    assert order[1:] == ("C2", 39.0, "paid", "2026-03-14")
    assert count(db, "order_items") == 2 and form.lines == []
    form.undo.click()
    assert count(db, "orders") == 0 and count(db, "order_items") == 0


@pytest.mark.parametrize("quantity, reason", [("0", "below the minimum 1"), ("two", "not a number"),
                                              ("1.5", "not a whole number")])
def test_a_bad_quantity_is_refused_beside_the_field(desk, quantity, reason):
    desk.select("C2")
    fill(desk.order, product_id="P1", quantity=quantity)
    desk.order.add_line.click()
    assert reason in error(desk.order, "quantity") and desk.order.lines == []


def test_an_order_without_lines_or_with_a_bad_date_is_refused(desk, db):
    desk.select("C2")
    desk.order.save.click()
    assert "add at least one line" in error(desk.order, "product_id")
    desk.order.add_line.click()
    fill(desk.order, order_date="2026-02-30")
    desk.order.save.click()
    assert "impossible date" in error(desk.order, "order_date")
    assert count(db, "orders") == 0


# ----------------------------------------------------------------------------- feedback
def test_feedback_with_item_scores(desk, db):
    desk.select("C1")
    fill(desk.feedback, nps="9", csat="5", score_quality="5", score_delivery="3", score_price="4",
         score_service="5", comment="lovely tea")
    desk.feedback.save.click()
    row = db.execute("SELECT nps, csat, score_quality, score_delivery, score_price, score_service, comment "
                     "FROM feedback").fetchone()
    assert row == (9, 5, 5, 3, 4, 5, "lovely tea")


@pytest.mark.parametrize("values, field, reason", [
    ({"nps": "11"}, "nps", "out of range 0 to 10"),
    ({"csat": "0"}, "csat", "out of range 1 to 5"),
    ({"score_delivery": "six"}, "score_delivery", "not a number"),
    ({"score_price": "4.5"}, "score_price", "not a whole number"),
    ({}, "nps", "give at least one score or a comment"),
])
def test_feedback_is_refused_beside_the_field(desk, db, values, field, reason):
    desk.select("C1")
    fill(desk.feedback, **values)
    desk.feedback.save.click()
    assert reason in error(desk.feedback, field) and count(db, "feedback") == 0


# ------------------------------------------------------------------------------ tickets
def test_a_ticket_is_opened_answered_and_closed(desk, db):
    desk.select("C1")
    form = desk.ticket
    fill(form, category="complaint", priority="high", when="2026-03-10 09:00")
    form.open.click()
    (tid,) = [v for _, v in form.fields["ticket_id"].options]
    assert db.table("tickets").get(tid)["status"] == "open"
    fill(form, ticket_id=tid, when="2026-03-09 09:00")
    form.answer.click()
    assert "before the ticket was opened" in error(form, "when")
    fill(form, when="2026-03-10 10:30")
    form.answer.click()
    assert db.table("tickets").get(tid)["first_response_at"] == "2026-03-10 10:30:00"
    fill(form, ticket_id=tid, when="2026-03-11 09:00", csat="9")
    form.close.click()
    assert "out of range 1 to 5" in error(form, "csat") and db.table("tickets").get(tid)["status"] == "open"
    fill(form, when="2026-03-11 09:00", csat="4")
    form.close.click()
    row = db.table("tickets").get(tid)
    assert (row["status"], row["csat"], row["closed_at"]) == ("closed", 4, "2026-03-11 09:00:00")
    assert form.fields["ticket_id"].options == ()
    form.undo.click()
    assert db.table("tickets").get(tid)["status"] == "open"


def test_answering_without_an_open_ticket_is_refused(desk):
    desk.select("C2")
    desk.ticket.answer.click()
    assert "no open ticket" in error(desk.ticket, "ticket_id")


# -------------------------------------------------------------------------------- deals
@pytest.mark.parametrize("values, field, reason", [
    ({"amount": "-5"}, "amount", "below the minimum 0"),
    ({"amount": "lots"}, "amount", "not a number"),
    ({"expected_close": "soon"}, "expected_close", "not a date"),
])
def test_a_deal_is_refused_beside_the_field(desk, db, values, field, reason):
    desk.select("C2")
    fill(desk.deal, title="Gift boxes", **values)
    desk.deal.add.click()
    assert reason in error(desk.deal, field) and count(db, "opportunities") == 0


def test_a_deal_moves_through_the_stages_and_lost_asks_why(desk, db):
    desk.select("C2")
    form = desk.deal
    soon = (dt.date.today() + dt.timedelta(days=45)).isoformat()  # after the deal opens (today)
    fill(form, title="Gift boxes", amount="2 500", source="referral", expected_close=soon)
    form.add.click()
    (oid,) = [v for _, v in form.fields["opportunity_id"].options]
    assert db.table("opportunities").get(oid)["amount"] == 2500.0
    fill(form, opportunity_id=oid, stage="proposal")
    form.move.click()
    assert db.table("opportunities").get(oid)["stage"] == "proposal"
    fill(form, opportunity_id=oid, stage="lost")
    form.move.click()
    assert "say why it was lost" in error(form, "lost_reason")
    assert db.table("opportunities").get(oid)["stage"] == "proposal"
    fill(form, opportunity_id=oid, stage="lost", lost_reason="price")
    form.move.click()
    row = db.table("opportunities").get(oid)
    assert (row["stage"], row["lost_reason"], row["probability"]) == ("lost", "price", 0.0)
    assert form.fields["opportunity_id"].options == ()
    form.undo.click()
    assert db.table("opportunities").get(oid)["stage"] == "proposal"


def test_moving_without_an_open_deal_is_refused(desk):
    desk.select("C1")
    desk.deal.move.click()
    assert "no open deal" in error(desk.deal, "opportunity_id")


# --------------------------------------------------------------------------------- undo
def test_undo_is_refused_when_the_entry_was_changed_or_used_since(desk, db):
    desk.select(None)
    fill(desk.customer, name="Dee", email="dee@example.com")
    desk.customer.add.click()
    cid = desk.customer_id
    desk.interaction.save.click()  # an interaction now refers to the new customer
    desk.customer.undo.click()
    assert "refer to customers" in desk.customer.message.value and db.table("customers").get(cid)
    desk.interaction.undo.click()
    desk.customer.undo.click()
    assert "Undone" in desk.customer.message.value and count(db, "customers") == 2

    desk.select("C1")
    fill(desk.feedback, nps="3")
    desk.feedback.save.click()
    db.execute("UPDATE feedback SET nps = 4")  # a later correction by hand
    desk.feedback.undo.click()
    assert "was changed since" in desk.feedback.message.value and count(db, "feedback") == 1


# --------------------------------------------------------------------- safety and privacy
def test_an_erased_customer_is_never_shown(desk, db):
    desk.select(None)
    fill(desk.customer, name="Ella Erased", email="ella@example.com", phone="+49 30 555")
    desk.customer.add.click()
    ella = desk.customer_id
    fill(desk.interaction, notes="Ella's phone is +49 30 555")
    desk.interaction.save.click()
    assert "Ella" in texts(desk.entry_panel())
    forget(db, ella)  # from the command line, while the desk is open
    desk.search.value = "ell"  # the next thing the owner does
    assert desk.customer_id is None and desk.matches.options == ()
    assert find_customers(db, "ella") == [] and find_customers(db, "ERASED") == []
    shown = texts(desk.entry_panel())
    assert "Ella" not in shown and "ella@example.com" not in shown and "555" not in shown
    assert desk.customer.last is None and desk.interaction.last is None

    desk.select("C1")
    entry.log_interaction(db, "C1", channel="call", notes="Anna's phone is +49 30 555")
    forget(db, "C1")
    desk.changed()
    assert desk.customer_id is None
    assert find_customers(db, "anna") == [] and find_customers(db, "ERASED") == []
    shown = texts(desk.entry_panel())
    assert "Anna" not in shown and "anna@example.com" not in shown


def test_the_desk_writes_while_a_report_reads_and_waits_out_a_short_write_lock(tmp_path):
    path = tmp_path / "crm.db"
    db = open_db(path)
    entry.add_customer(db, "C1", name="Anna Li")
    reader = open_db(path)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM customers").fetchone() == (1,)  # a report's read snapshot
    desk = Desk(db, today="2026-03-15")
    desk.select("C1")
    desk.interaction.save.click()
    assert "Saved" in desk.interaction.message.value

    writer = open_db(path)
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock():
        writer.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(5)
        writer.execute("COMMIT")

    thread = threading.Thread(target=hold_the_lock)
    thread.start()
    locked.wait(5)
    threading.Timer(0.3, release.set).start()  # an import commits while the owner clicks
    desk.interaction.save.click()
    thread.join()
    assert "Saved" in desk.interaction.message.value and count(db, "interactions") == 2
    reader.execute("COMMIT")


# -------------------------------------------------------------------------------- today
@pytest.fixture(scope="module")
def demo_desk(tmp_path_factory, demo_business):
    from crm_helpers.demo import write_demo

    path = tmp_path_factory.mktemp("desk") / "crm.db"
    write_demo(open_db(path), demo_business)
    desk = Desk(open_db(path), today="2026-11-15")
    desk.today_panel()
    return desk


def test_today_finds_the_planted_detractors_and_forgotten_deals(demo_desk):
    db, items = demo_desk.db, demo_desk.today_list.items
    unhappy = {r[0] for r in db.execute(f"SELECT customer_id FROM {DEMO_TRUTH} WHERE unhappy = 1")}
    follow = [i for i in items if i.kind == "follow-up"]
    assert 0 < len(follow) <= SHOWN_ROWS
    # Today shows the head of page 03's call list (most money at stake first), which holds the planted detractors
    call_list = follow_up(db, demo_desk.today, top_n=10_000)
    assert [i.customer_id for i in follow] == call_list["customer_id"].head(len(follow)).tolist()
    assert any(c in unhappy and "detractor" in why for c, why in zip(call_list["customer_id"], call_list["reasons"]))
    # planted: forgotten deals have had no activity since they were opened
    forgotten = db.execute("SELECT customer_id FROM opportunities WHERE stage NOT IN ('won', 'lost') "
                           "AND last_activity_at = opened_at AND julianday('2026-11-15') - julianday(opened_at) > ?",
                           [STALE_DAYS]).fetchall()
    quiet = [i for i in items if i.kind == "deal" and "no news" in i.why]
    assert len(quiet) == min(SHOWN_ROWS, len(forgotten)) > 0
    assert {i.customer_id for i in quiet} <= {r[0] for r in forgotten}
    assert all(len([i for i in items if i.kind == k]) <= SHOWN_ROWS for k in ("ticket", "deal", "anniversary"))


def test_today_is_one_line_per_person_in_plain_words_with_links(demo_desk):
    today = demo_desk.today_list
    people = [line.customer_id for line in today.lines]
    assert len(people) == len(set(people)) > 0  # never twice
    twice = {i.customer_id for i in today.items if i.customer_id} - {
        i.customer_id for i in today.items if [j.customer_id for j in today.items].count(i.customer_id) == 1}
    assert twice, "the demo has people with two reasons (e.g. a ticket and a follow-up)"
    merged = next(line for line in today.lines if line.customer_id in twice)
    assert len(merged.reasons) >= 2
    shown = texts(today.box)
    assert "NPS" not in shown and "detractor" not in shown and "score " not in shown
    queue = call_list(demo_desk.db, demo_desk.today)
    follow = [i for i in today.items if i.kind == "follow-up"]
    assert all(i.why == "; ".join(r.plain for r in queue.reasons[i.customer_id]) for i in follow)
    with_phone = next(line for line in today.lines if line.phone)
    assert f'href="tel:{"".join(c for c in with_phone.phone if c.isdigit() or c == "+")}"' in with_phone.html()
    assert f'href="mailto:{with_phone.email}"' in with_phone.html()
    assert "<h3>Today (" in shown and "None" not in shown and "nan" not in shown


def test_done_logs_an_interaction_and_takes_the_person_off_the_list(demo_desk):
    db, today = demo_desk.db, demo_desk.today_list
    first = next(i for i in today.items if i.kind == "follow-up")
    name = db.table("customers").get(first.customer_id)["name"]
    assert name in texts(today.box)
    today.buttons[first.customer_id][0].click()
    row = db.execute("SELECT channel, outcome FROM interactions WHERE customer_id = ? ORDER BY occurred_at DESC",
                     [first.customer_id]).fetchone()
    assert row == ("call", "contacted")
    assert first.customer_id not in {i.customer_id for i in today.items}
    assert isinstance(today.widget(), widgets.VBox)


def test_done_takes_a_note_and_can_be_undone(demo_desk):
    db, today = demo_desk.db, demo_desk.today_list
    person = next(i for i in today.items if i.kind == "follow-up")
    today.note.value = "left a message, calls back Friday"
    today.buttons[person.customer_id][0].click()
    logged = db.execute("SELECT interaction_id, outcome, notes FROM interactions WHERE customer_id = ? "
                        "ORDER BY occurred_at DESC LIMIT 1", [person.customer_id]).fetchone()
    assert logged[1:] == ("contacted", "left a message, calls back Friday")
    assert person.customer_id not in {i.customer_id for i in today.items}
    assert today.note.value == "" and "Done: " in today.message.value and today.undo.layout.display == ""
    today.undo.click()
    assert db.table("interactions").count_where("interaction_id = ?", [logged[0]]) == 0
    assert person.customer_id in {i.customer_id for i in today.items} and "Undone" in today.message.value


def test_snooze_hides_a_person_until_the_day_and_undo_brings_them_back(demo_desk):
    db, today = demo_desk.db, demo_desk.today_list
    person = next(i for i in today.items if i.kind == "follow-up").customer_id
    today.snooze_to.value = "tuesday"  # 2026-11-15 is a Sunday
    today.buttons[person][1].click()
    task = db.execute("SELECT task_id, due, done_at FROM tasks WHERE customer_id = ?", [person]).fetchone()
    assert task[1:] == ("2026-11-17", None) and "Snoozed" in today.message.value
    assert person not in {i.customer_id for i in today.items}
    today.undo.click()
    assert db.table("tasks").count_where("task_id = ?", [task[0]]) == 0
    assert person in {i.customer_id for i in today.items}


def test_a_task_for_tuesday_shows_on_tuesday_first_and_done_logs_the_contact(demo_desk):
    db = demo_desk.db
    person = db.execute("SELECT customer_id, name FROM customers WHERE name IS NOT NULL LIMIT 1").fetchone()
    demo_desk.select(person[0])
    fill(demo_desk.task, due="tuesday", note="call back about the quote")
    demo_desk.task.save.click()
    assert "Saved: task for 2026-11-17 about" in demo_desk.task.message.value
    task_id = db.execute("SELECT task_id FROM tasks WHERE note = 'call back about the quote'").fetchone()[0]
    assert person[0] not in {i.customer_id for i in demo_desk.today_list.items}  # not due before Tuesday
    tuesday = Desk(demo_desk.db, today="2026-11-18")  # a day late: overdue, listed first
    tuesday.today_panel()
    first = tuesday.today_list.lines[0]
    assert first.customer_id == person[0] and first.reasons[0] == "call back about the quote (overdue by 1 day)"
    tuesday.today_list.note.value = "agreed on the quote"
    tuesday.today_list.buttons[person[0]][0].click()
    done = db.execute("SELECT done_at FROM tasks WHERE task_id = ?", [task_id]).fetchone()[0]
    logged = db.execute("SELECT subject, outcome, notes FROM interactions WHERE customer_id = ? "
                        "ORDER BY occurred_at DESC, rowid DESC LIMIT 1", [person[0]]).fetchone()
    assert done is not None and logged == ("task: call back about the quote", "done", "agreed on the quote")
    assert person[0] not in {line.customer_id for line in tuesday.today_list.lines}
    tuesday.today_list.undo.click()
    assert db.execute("SELECT done_at FROM tasks WHERE task_id = ?", [task_id]).fetchone()[0] is None
    assert person[0] == tuesday.today_list.lines[0].customer_id


def test_a_task_about_nobody_and_a_bad_day_are_handled_beside_the_field(desk, db):
    desk.select(None)
    fill(desk.task, due="someday", note="order more tea", about=False)
    desk.task.save.click()
    assert "someday" in error(desk.task, "due") and count(db, "tasks") == 0
    fill(desk.task, due="2026-03-14", note="order more tea", about=False)
    desk.task.save.click()
    assert count(db, "tasks") == 1
    # the save echoes what was typed, named as the form names it, not the desk's own bookkeeping
    assert "Due: 2026-03-14" in desk.task.message.value and "To do: order more tea" in desk.task.message.value
    assert "created" not in desk.task.message.value and "snoozed" not in desk.task.message.value
    desk.today_list.recompute()
    line = desk.today_list.lines[0]
    assert line.customer_id is None and line.reasons == ["order more tea (overdue by 1 day)"]


@pytest.mark.parametrize("words, day", [("today", "2026-11-15"), ("tomorrow", "2026-11-16"), ("Tue", "2026-11-17"),
                                        ("sunday", "2026-11-22"), ("in 3 days", "2026-11-18"),
                                        ("in 2 weeks", "2026-11-29"), ("2026-12-01", "2026-12-01")])
def test_days_in_words(words, day):
    from crm_helpers.desk import day_from_words

    assert day_from_words(words, today=dt.date(2026, 11, 15)) == day


def test_erasure_clears_the_persons_tasks(db):
    entry.add_task(db, "2026-03-20", note="call Anna about her order", customer_id="C1")
    forget(db, "C1")
    assert db.execute("SELECT customer_id, note FROM tasks").fetchall()[0][1] is None
    assert "C1" not in {r[0] for r in db.execute("SELECT customer_id FROM tasks")}


def test_today_leaves_out_an_erased_person(demo_desk):
    db, today = demo_desk.db, demo_desk.today_list
    person = next(i for i in today.items if i.kind == "follow-up")
    name = db.table("customers").get(person.customer_id)["name"]
    forget(db, person.customer_id)
    today.refresh()
    assert person.customer_id not in {i.customer_id for i in today.items}
    assert name not in texts(today.box)


def test_a_standby_kernel_hands_its_store_and_scored_list_to_the_page(demo_db_copy):
    import crm_helpers.desk as desk_module

    desk_module.warm_up(str(demo_db_copy), poll_s=0.01)
    warm = desk_module._standby.db
    scored = follow_up_queue_as_of(warm, dt.date.today(), kinds=("logistic",))
    desk = Desk.open(str(demo_db_copy))
    assert desk.db is warm and desk_module._standby is None
    assert follow_up_queue_as_of(desk.db, dt.date.today(), kinds=("logistic",)) is scored  # the standby's result


def test_a_standby_kernel_draws_the_page_ahead_and_redraws_it_after_a_write(demo_db_copy):
    import crm_helpers.desk as desk_module

    desk_module.warm_up(str(demo_db_copy), poll_s=0.01)
    drawn = desk_module._standby.desk
    today, panel = drawn.today_panel(), drawn.entry_panel()
    other = open_db(demo_db_copy)  # another window writes while the standby waits
    entry.add_task(other, dt.date.today().isoformat(), note="written meanwhile")
    other.close()
    desk = Desk.open(str(demo_db_copy))
    assert desk is drawn and desk.today_panel() is today and desk.entry_panel() is panel  # the cells only show them
    assert "written meanwhile (due today)" in texts(today)
    assert Desk.open(str(demo_db_copy)) is not drawn  # a second page draws its own


def test_a_tab_s_form_is_built_when_the_tab_is_first_opened(desk, db):
    panel = desk.entry_panel()
    tabs = next(w for w in panel.children if isinstance(w, widgets.Tab))
    assert [type(f).__name__ for f in desk.forms] == ["CustomerForm"] and tabs.children[6].children == ()
    assert "Add task" not in texts(panel)
    tabs.selected_index = 6  # "Task"
    assert [type(f).__name__ for f in desk.forms] == ["CustomerForm", "TaskForm"]
    assert "Add task" in texts(panel) and desk.entry_panel() is panel
    desk.select("C1")
    fill(desk.interaction, subject="asked from code")  # a form asked for from code is built too ...
    desk.interaction.save.click()
    assert desk.interaction.save in tabs.children[1].children[0].children  # ... and shown in its tab
    assert db.execute("SELECT COUNT(*) FROM interactions WHERE subject = 'asked from code'").fetchone()[0] == 1


# --------------------------------------------------------------------------- make lab
def test_the_lab_settings_turn_news_off_and_pick_the_project_kernel():
    overrides = json.loads((PROJECT_ROOT / "jupyter" / "lab-overrides.json").read_text())
    plugin = "@jupyterlab/apputils-extension:notification"
    schema = json.loads((Path(sys.prefix) / "share/jupyter/lab/schemas/@jupyterlab/apputils-extension"
                         / "notification.json").read_text())
    jsonschema.validate(overrides[plugin], schema)  # names and values JupyterLab knows
    assert overrides[plugin]["fetchNews"] == "false"
    server = json.loads((PROJECT_ROOT / "jupyter" / "server-config.json").read_text())
    assert server["MappingKernelManager"]["default_kernel_name"] == KERNEL_NAME


# -------------------------------------------------------------------------- make desk
def test_the_desk_server_is_local_keyed_and_culls_idle_kernels():
    key = new_key()
    assert len(key) >= 40 and new_key() != key
    c = server_config(key)
    assert (c.ServerApp.ip, c.ServerApp.allow_remote_access, c.IdentityProvider.token) == ("127.0.0.1", False, key)
    assert c.ServerApp.local_hostnames == ["localhost", "127.0.0.1", "::1"] and c.ServerApp.terminals_enabled is False
    assert [name for name, on in c.ServerApp.jpserver_extensions.items() if on] == ["voila"]
    kernels = c.MappingKernelManager
    assert (kernels.cull_idle_timeout, kernels.cull_connected) == (CULL_IDLE_S, False) and 0 < kernels.cull_interval
    lan = server_config(key, lan=True)
    assert lan.ServerApp.ip == "0.0.0.0" and lan.ServerApp.allow_remote_access is False  # the Host check stays on
    assert set(lan.ServerApp.local_hostnames) == set(allowed_hosts(lan=True)) > set(c.ServerApp.local_hostnames)
    assert c.ServerApp.kernel_manager_class.__name__ == "StandbyKernelManager" and c.StandbyKernelManager.standby
    assert server_config(key, standby=False).StandbyKernelManager.standby is False  # --no-standby


def test_a_kernel_listed_before_the_server_marks_it_is_shown_as_starting():
    """The turn between jupyter_client listing a new kernel and jupyter_server marking it: the
    kernel list answers (it answered 500 when the standby kernel was caught there)."""
    from jupyter_client.manager import AsyncKernelManager

    manager = server_config(new_key()).ServerApp.kernel_manager_class()
    manager._kernels["new"] = AsyncKernelManager(kernel_name=KERNEL_NAME)  # what jupyter_client does first
    assert [(k["id"], k["execution_state"]) for k in manager.list_kernels()] == [("new", "starting")]
    assert manager.kernel_model("new")["name"] == KERNEL_NAME


def test_the_desk_template_leaves_out_every_cdn_link_of_the_stock_one():
    stock = (Path(sys.prefix) / "share/jupyter/voila/templates/lab/index.html.j2").read_text()
    ours = (PROJECT_ROOT / "jupyter/voila/templates" / TEMPLATE / "index.html.j2").read_text()
    links = [line.strip() for line in stock.splitlines() if "<link" in line and "https://" in line]
    assert links and all(f"replace('{link}', '')" in ours for link in links)


@pytest.mark.slow
def test_the_desk_notebook_runs_top_to_bottom_on_a_store(demo_db_copy, tmp_path):
    executed = nbformat.read(run_notebook("00_desk.ipynb", tmp_path, db_path=str(demo_db_copy), today="2026-11-15"),
                             as_version=4)
    views = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 2  # the Today list and the forms, nothing else printed


# ------------------------------------------------------------------ plausibility questions
def test_a_deal_expected_to_close_before_it_opens_is_asked_once(desk, db):
    desk.select("C1")
    fill(desk.deal, title="Workshop", expected_close="2020-01-31")
    desk.deal.add.click()
    assert "is before the deal is opened" in error(desk.deal, "expected_close") and count(db, "opportunities") == 0
    assert desk.deal.sure.layout.display == ""
    desk.deal.sure.value = True
    desk.deal.add.click()
    assert count(db, "opportunities") == 1 and desk.deal.sure.layout.display == "none"


def test_a_huge_quantity_is_asked_about_with_the_lines_amount(desk, db):
    desk.select("C1")
    fill(desk.order, product_id="P1", quantity="1000000")
    desk.order.add_line.click()
    assert "makes a line of 9,500,000" in error(desk.order, "quantity") and desk.order.lines == []
    desk.order.sure.value = True
    desk.order.add_line.click()
    assert desk.order.lines == [("P1", 1_000_000, None)] and error(desk.order, "quantity") == ""


def test_blanking_an_email_and_a_phone_without_digits_are_asked_about(desk, db):
    desk.select("C1")
    fill(desk.customer, email="", phone="call me maybe")
    desk.customer.save.click()
    assert "fewer than 5 digits" in error(desk.customer, "phone")
    assert db.table("customers").get("C1")["email"] == "anna@example.com"
    fill(desk.customer, phone="+49 30 1234567")
    desk.customer.save.click()
    assert "blanks the e-mail anna@example.com" in error(desk.customer, "email")
    desk.customer.sure.value = True
    desk.customer.save.click()
    assert db.table("customers").get("C1")["email"] is None and "Saved" in desk.customer.message.value


def test_page_03_counts_open_and_overdue_tasks_as_of_its_day(db):
    from crm_helpers.analyses.followup import task_counts

    late = entry.add_task(db, "2026-03-01", note="send the catalogue", customer_id="C1")
    entry.add_task(db, "2099-03-20", note="call Wei", customer_id="C2")
    day = dt.date.today()
    assert (task_counts(db, day).open, task_counts(db, day).overdue) == (2, 1)
    entry.complete_task(db, late)
    counts = task_counts(db, day)
    assert (counts.open, counts.overdue) == (1, 0) and "1 open, 0 of them overdue" in counts.message
    assert task_counts(db, day - dt.timedelta(days=1)).open == 0  # written today: not there yesterday


def test_the_chosen_customers_timeline_lists_everything_newest_first(desk, db):
    from crm_helpers.desk import customer_timeline

    entry.record_order(db, "C1", items=[("P1", 2, None), ("P2", 1, None)], order_date="2026-03-01")
    entry.log_interaction(db, "C1", channel="call", occurred_at="2026-03-05 10:00:00", outcome="wants a quote")
    entry.add_feedback(db, "C1", nps=3, comment="slow delivery", submitted_at="2026-03-03")
    entry.add_task(db, "2026-03-20", note="send the quote", customer_id="C1")
    entries = customer_timeline(db, "C1")
    assert [e.kind for e in entries] == ["task", "call", "feedback", "order"]
    assert [e.table for e in entries] == ["tasks", "interactions", "feedback", "orders"]
    assert entries[3].what == "39.00 EUR, paid: 2 × Sencha 100g, 1 × Gaiwan"
    assert entries[2].what == "would recommend 3 of 10 “slow delivery”"
    desk.select("C1")
    assert "send the quote (open)" in texts(desk.timeline) and "wants a quote" in texts(desk.timeline)
    rows = _rows(desk)
    assert [b.description for b in rows[0].children[1].children] == ["Done", "Edit", "Delete"]  # an open task
    assert [b.description for b in rows[1].children[1].children] == ["Edit", "Delete"]
    desk.select(None)
    assert _rows(desk) == []


# ------------------------------------------------------------- correcting the timeline
def _rows(desk) -> list:
    """The timeline's entries (the editor's panel, shown among them, left out)."""
    return [r for r in desk.timeline.children if "desk-line" in r._dom_classes]


def _line(desk, text: str):
    """The timeline row of the chosen customer that shows ``text``: (its Edit button, its Delete button)."""
    rows = [r for r in _rows(desk) if text in r.children[0].value]
    assert len(rows) == 1, [r.children[0].value for r in _rows(desk)]
    buttons = {b.description: b for b in rows[0].children[1].children}
    return buttons["Edit"], buttons["Delete"]


def _items(db, order_id: str) -> list[tuple]:
    return db.execute("SELECT product_id, quantity, unit_price FROM order_items WHERE order_id = ? ORDER BY product_id",
                      [order_id]).fetchall()


def test_yesterdays_order_is_corrected_from_the_timeline_and_the_correction_undone(desk, db):
    oid = entry.record_order(db, "C1", items=[("P1", 2, None), ("P2", 1, None)], order_date="2026-03-14")
    db.execute("UPDATE order_items SET unit_price = 8.0 WHERE product_id = 'P1'")  # a price paid below the list's
    db.execute("UPDATE orders SET amount = 36.0")
    desk.select("C1")
    edit, _ = _line(desk, "36.00 EUR, paid")
    edit.click()
    editor = desk.editor
    assert editor.form.layout.display == "" and editor.fields["amount"].value == "36.00"
    assert editor.fields["quantity:P1"].description == "Units of Sencha 100g"
    editor.fields["quantity:P1"].value = "3"
    editor.save.click()
    assert "Saved: correction of the order of 2026-03-14" in editor.message.value
    assert _items(db, oid) == [("P1", 3, 8.0), ("P2", 1, 20.0)]  # the price paid kept
    order = db.table("orders").get(oid)
    assert (order["amount"], order["refunded_amount"]) == (44.0, 0.0)  # the lines' total, as record_order stores it
    assert editor.form.layout.display == "none" and "3 × Sencha 100g" in texts(desk.timeline)
    _line(desk, "44.00 EUR")[0].click()
    editor.fields["quantity:P2"].value = "0"  # a line removed
    editor.fields["status"].value = "refunded"
    editor.save.click()
    order = db.table("orders").get(oid)
    assert _items(db, oid) == [("P1", 3, 8.0)] and (order["amount"], order["refunded_amount"]) == (24.0, 24.0)
    editor.undo.click()
    assert "Undone" in editor.message.value
    order = db.table("orders").get(oid)
    assert _items(db, oid) == [("P1", 3, 8.0), ("P2", 1, 20.0)]
    assert (order["amount"], order["status"], order["refunded_amount"]) == (44.0, "paid", 0.0)


def test_an_order_gains_a_product_line_in_the_editor_and_the_addition_is_undone(desk, db):
    oid = entry.record_order(db, "C1", items=[("P1", 2, None)], order_date="2026-03-14")  # 19.00 EUR
    desk.select("C1")
    _line(desk, "19.00 EUR, paid")[0].click()
    editor = desk.editor
    assert [label for label, _ in editor.fields["new_product"].options] == ["", "Gaiwan — 20.00 EUR"]  # not on it yet
    editor.fields["new_unit_price"].value = "18"
    editor.save.click()
    assert "pick the product of the new line" in error(editor, "new_product") and _items(db, oid) == [("P1", 2, 9.5)]
    editor.fields["new_product"].value = "P2"
    editor.fields["new_quantity"].value = "5000"
    editor.save.click()
    assert "is 5,000 units" in error(editor, "new_quantity")  # asked once
    editor.fields["new_quantity"].value = "2"
    editor.fields["new_unit_price"].value = "-3"
    editor.save.click()
    assert error(editor, "new_unit_price") != "" and _items(db, oid) == [("P1", 2, 9.5)]
    editor.fields["new_unit_price"].value = "18"
    editor.save.click()
    assert "Saved: correction of the order" in editor.message.value
    assert _items(db, oid) == [("P1", 2, 9.5), ("P2", 2, 18.0)] and db.table("orders").get(oid)["amount"] == 55.0
    assert "2 × Gaiwan" in texts(desk.timeline)
    editor.undo.click()
    assert _items(db, oid) == [("P1", 2, 9.5)] and db.table("orders").get(oid)["amount"] == 19.0


def test_an_order_amount_typed_by_hand_keeps_a_partial_refund_within_it(desk, db):
    oid = entry.record_order(db, "C1", items=[("P2", 2, None)], order_date="2026-03-14")
    db.execute("UPDATE orders SET refunded_amount = 15")  # 15 paid back of 40
    desk.select("C1")
    _line(desk, "(15.00 paid back)")[0].click()
    desk.editor.fields["amount"].value = "10"
    desk.editor.save.click()
    assert "is more than the order&#x27;s amount 10" in error(desk.editor, "refunded_amount")
    assert db.table("orders").get(oid)["amount"] == 40.0
    desk.editor.fields["amount"].value = "38"
    desk.editor.save.click()
    assert (db.table("orders").get(oid)["amount"], db.table("orders").get(oid)["refunded_amount"]) == (38.0, 15.0)


def test_deleting_an_order_asks_once_and_undo_puts_it_back_with_its_lines(desk, db):
    oid = entry.record_order(db, "C1", items=[("P1", 2, None), ("P2", 1, None)], order_date="2026-03-14")
    kept = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("orders", "order_items")}
    desk.select("C1")
    _line(desk, "39.00 EUR")[1].click()
    assert "Delete this order of 2026-03-14?" in desk.editor.heading.value and count(db, "orders") == 1
    assert desk.timeline.children.index(desk.editor.panel) == 1  # right under the entry it asks about
    desk.editor.cancel.click()
    assert desk.editor.form.layout.display == "none" and count(db, "orders") == 1
    _line(desk, "39.00 EUR")[1].click()
    desk.editor.confirm.click()
    assert "deleted" in desk.editor.message.value and count(db, "orders") == 0 and count(db, "order_items") == 0
    assert "39.00 EUR" not in texts(desk.timeline)
    desk.editor.undo.click()
    assert "Undone" in desk.editor.message.value
    assert {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in kept} == kept
    assert db.table("orders").get(oid) and "39.00 EUR" in texts(desk.timeline)


@pytest.mark.parametrize("add, text, field, value, column, stored", [
    (lambda db: entry.log_interaction(db, "C1", channel="call", occurred_at="2026-03-14 10:00", outcome="no answer"),
     "no answer", "outcome", "wants a quote", "outcome", "wants a quote"),
    (lambda db: entry.add_feedback(db, "C1", nps=3, submitted_at="2026-03-10"), "would recommend 3", "nps", "8",
     "nps", 8),
    (lambda db: entry.open_ticket(db, "C1", category="question", opened_at="2026-03-10 09:00"), "question, open",
     "priority", "urgent", "priority", "urgent"),
    (lambda db: entry.add_opportunity(db, "C1", title="Wholesale", amount=900, opened_at="2026-03-01"), "Wholesale",
     "amount", "1200", "amount", 1200.0),
    (lambda db: entry.add_task(db, "2026-03-20", note="send the quote", customer_id="C1"), "send the quote",
     "due", "2026-03-24", "due", "2026-03-24"),
])
def test_every_kind_of_entry_is_corrected_deleted_and_both_undone(desk, db, add, text, field, value, column, stored):
    key = add(db)
    table = next(e.table for e in customer_timeline(db, "C1"))
    original = db.table(table).get(key)
    desk.select("C1")
    _line(desk, text)[0].click()
    desk.editor.fields[field].value = value
    desk.editor.save.click()
    assert "Saved: correction" in desk.editor.message.value
    assert db.table(table).get(key) == {**original, column: stored}  # nothing else changed
    desk.editor.undo.click()
    assert db.table(table).get(key) == original
    _line(desk, text)[1].click()
    desk.editor.confirm.click()
    assert count(db, table) == 0
    desk.editor.undo.click()
    assert "Undone" in desk.editor.message.value and db.table(table).get(key) == original


def test_a_correction_is_checked_like_an_import_and_refused_beside_the_field(desk, db):
    entry.add_feedback(db, "C1", nps=3, submitted_at="2026-03-10")
    ticket = entry.open_ticket(db, "C1", category="question", opened_at="2026-03-10 09:00")
    desk.select("C1")
    _line(desk, "would recommend 3")[0].click()
    desk.editor.save.click()
    assert "nothing was changed" in desk.editor.message.value
    desk.editor.fields["nps"].value = "11"
    desk.editor.save.click()
    assert "out of range 0 to 10" in error(desk.editor, "nps") and "Not saved" in desk.editor.message.value
    desk.editor.fields["submitted_at"].value = "2099-01-01"
    desk.editor.fields["nps"].value = "9"
    desk.editor.save.click()
    assert "is in the future" in error(desk.editor, "submitted_at")
    _line(desk, "question, open")[0].click()
    desk.editor.fields["closed_at"].value = "2026-03-09 09:00"
    desk.editor.save.click()
    assert "before the ticket was opened" in error(desk.editor, "closed_at")
    assert db.table("tickets").get(ticket)["closed_at"] is None
    assert db.execute("SELECT nps FROM feedback").fetchone()[0] == 3


def test_deleting_a_ticket_a_task_is_about_is_refused_and_an_erased_persons_entry_is_not_put_back(desk, db):
    ticket = entry.open_ticket(db, "C1", category="question", opened_at="2026-03-10 09:00")
    entry.add_task(db, "2026-03-20", note="ring back", ticket_id=ticket)
    entry.log_interaction(db, "C1", channel="call", occurred_at="2026-03-14 10:00", outcome="no answer")
    desk.select("C1")
    _line(desk, "question, open")[1].click()
    desk.editor.confirm.click()
    assert "1 tasks refer to it" in desk.editor.message.value and count(db, "tickets") == 1
    _line(desk, "no answer")[1].click()
    desk.editor.confirm.click()
    assert count(db, "interactions") == 0
    record = desk.editor.last
    forget(db, "C1")
    desk.changed()  # the person is gone: their deletion is no longer offered for undo
    assert desk.editor.last is None and desk.editor.undo.layout.display == "none"
    from crm_helpers.store.undo import UndoError, undo_entry

    with pytest.raises(UndoError, match="no longer in the store"):
        undo_entry(db, record)
    assert count(db, "interactions") == 0



def test_an_open_task_is_done_from_the_timeline_and_undone(desk, db):
    task = entry.add_task(db, "2026-03-17", note="call about the order", customer_id="C1")
    desk.select("C1")
    row = next(r for r in _rows(desk) if "call about the order (open)" in r.children[0].value)
    next(b for b in row.children[1].children if b.description == "Done").click()
    assert "Saved: task done: call about the order" in desk.editor.message.value
    assert db.table("tasks").get(task)["done_at"] is not None and count(db, "interactions") == 1
    assert "call about the order (done)" in texts(desk.timeline)
    desk.editor.undo.click()
    assert db.table("tasks").get(task)["done_at"] is None and count(db, "interactions") == 0


def test_anniversaries_are_the_first_paid_orders_of_this_week_in_past_years(demo_desk):
    from crm_helpers.analyses.features import customer_features
    from crm_helpers.desk import ANNIVERSARY_DAYS, book_today

    db, day = demo_desk.db, dt.date(2026, 10, 30)
    first = customer_features(db, day).dropna(subset=["first_order"])
    window = {(day + dt.timedelta(days=n)).strftime("%m-%d") for n in range(ANNIVERSARY_DAYS)}
    expected = set(first.loc[first["first_order"].dt.strftime("%m-%d").isin(window)
                             & (first["first_order"].dt.year < day.year), "customer_id"])
    found = book_today(db, day).anniversaries
    assert expected and {i.customer_id for i in found} == expected
    assert all(i.kind == "anniversary" and " as a customer " in i.why for i in found)
