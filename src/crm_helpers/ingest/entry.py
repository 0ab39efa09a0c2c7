"""Entering everyday facts from a notebook: customers, interactions, orders, feedback, tickets, deals, tasks.

Each function checks its input like the importer (same rules, from the schema), writes in one
short transaction and returns the id of what it wrote. A problem raises
:class:`~crm_helpers.store.validation.ValidationError` (a ValueError) naming the field, the value and
the reason: an unknown customer, an NPS of 11, a close date before the open date. A store that
cannot be written (read-only, disk full, locked) raises :class:`~crm_helpers.store.connection.StoreError`
with a plain reason; in every case nothing is written.
Timestamps default to now and dates to today, in local time.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from sqlite_utils import Database

from crm_helpers.store.schema import OPEN_STAGES, TABLES, TASKS
from crm_helpers.store.connection import StoreError, explain_error, store_path, write_transaction
from crm_helpers.store.suppression import refuse_erased
from crm_helpers.store.validation import ValidationError, normalize_email, require_valid


def _new_id(prefix: str) -> str:
    return f"{prefix}-{dt.datetime.now():%Y%m%d%H%M%S}-{secrets.token_hex(4)}"


def _now() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _require_customer(db: Database, customer_id: str) -> None:
    if not db.execute("SELECT 1 FROM customers WHERE customer_id = ?", [customer_id]).fetchone():
        raise ValidationError("customer_id", customer_id, "unknown customer")


def _fetch(db: Database, table: str, key: str, value: str) -> dict[str, Any]:
    cursor = db.execute(f"SELECT * FROM {table} WHERE {key} = ?", [value])
    row = cursor.fetchone()
    if row is None:
        raise ValidationError(key, value, f"no such {table[:-1]}")
    return dict(zip([d[0] for d in cursor.description], row))


@contextmanager
def _writing(db: Database) -> Iterator[None]:
    """One write transaction; SQLite's operational errors (read-only, disk full, locked) become a
    :class:`StoreError` with a plain reason, after the transaction was rolled back."""
    outer = db.conn.in_transaction
    try:
        with write_transaction(db):
            yield
    except sqlite3.OperationalError as exc:
        if not outer and db.conn.in_transaction:  # a failed COMMIT can leave it open
            db.conn.rollback()
        raise StoreError(f"nothing was written: {explain_error(store_path(db), exc)}") from None


def _insert(db: Database, table: str, record: dict[str, Any]) -> None:
    clean = require_valid(TABLES[table], {k: v for k, v in record.items() if v is not None})
    with _writing(db):
        db.table(table).insert(clean)


def add_customer(db: Database, customer_id: str | None = None, **fields: Any) -> str:
    """Create a customer, or update it when the id (or the e-mail) is already known; returns the id.

    ``fields`` are columns of ``customers`` (name, email, phone, company, consent_marketing, ...).
    A person erased by ``crm forget`` (their id, e-mail or phone on the suppression list) is refused.
    """
    unknown = set(fields) - set(TABLES["customers"].column_names)
    if unknown:
        raise ValidationError(sorted(unknown)[0], fields[sorted(unknown)[0]], "not a customer field")
    refuse_erased(db, {"customer_id": customer_id, **fields})  # the suppression list of `crm forget`
    if customer_id is None and fields.get("email"):
        email = normalize_email(fields["email"])
        row = db.execute("SELECT customer_id FROM customers WHERE email = ?", [email]).fetchone()
        customer_id = row[0] if row else None
    customer_id = customer_id or _new_id("C")
    fields.setdefault("first_seen", dt.date.today().isoformat())
    if db.execute("SELECT 1 FROM customers WHERE customer_id = ?", [customer_id]).fetchone():
        fields.pop("first_seen")
        update_customer(db, customer_id, **fields)
    else:
        _insert(db, "customers", {"customer_id": customer_id, **fields})
    return customer_id


def update_customer(db: Database, customer_id: str, **fields: Any) -> None:
    """Change some fields of a known customer; a new e-mail or phone of an erased person is refused."""
    current = _fetch(db, "customers", "customer_id", customer_id)
    refuse_erased(db, {k: v for k, v in fields.items() if k != "customer_id" and v is not None})
    clean = require_valid(TABLES["customers"], {k: v for k, v in {**current, **fields}.items() if v is not None})
    with _writing(db):
        db.table("customers").update(customer_id, {k: clean.get(k) for k in fields})


def log_interaction(db: Database, customer_id: str, *, channel: str, occurred_at: str | None = None,
                    direction: str = "outbound", subject: str | None = None, outcome: str | None = None,
                    notes: str | None = None) -> str:
    """Note an e-mail, call, meeting, chat or social contact; returns the interaction id."""
    _require_customer(db, customer_id)
    interaction_id = _new_id("I")
    _insert(db, "interactions", {"interaction_id": interaction_id, "customer_id": customer_id, "channel": channel,
                                 "occurred_at": occurred_at or _now(), "direction": direction, "subject": subject,
                                 "outcome": outcome, "notes": notes})
    return interaction_id


def record_order(db: Database, customer_id: str, *, items: Iterable[tuple[str, int, float | None]],
                 order_id: str | None = None, order_date: str | None = None, amount: float | None = None,
                 cost: float | None = None, currency: str = "EUR", channel: str | None = None,
                 campaign_id: str | None = None, status: str = "paid") -> str:
    """Record an order and its lines ``(product_id, quantity, unit_price or None)`` in one transaction.

    A missing unit price comes from the product list; ``amount`` (gross) defaults to the sum of
    the lines. Returns the order id.
    """
    _require_customer(db, customer_id)
    order_id = order_id or _new_id("O")
    lines = []
    for product_id, quantity, unit_price in items:
        product = _fetch(db, "products", "product_id", product_id)
        price = product["unit_price"] if unit_price is None else unit_price
        lines.append(require_valid(TABLES["order_items"], {"order_id": order_id, "product_id": product_id,
                                                           "quantity": quantity, "unit_price": price}))
    total = amount if amount is not None else sum(l["quantity"] * (l["unit_price"] or 0) for l in lines)
    order = require_valid(TABLES["orders"], {k: v for k, v in {
        "order_id": order_id, "customer_id": customer_id, "order_date": order_date or dt.date.today().isoformat(),
        "amount": total, "cost": cost, "currency": currency, "channel": channel, "campaign_id": campaign_id,
        "status": status}.items() if v is not None})
    with _writing(db):
        db.table("orders").insert(order)
        if lines:
            db.table("order_items").insert_all(lines)
    return order_id


def add_feedback(db: Database, customer_id: str, *, nps: int | None = None, csat: int | None = None,
                 score_quality: int | None = None, score_delivery: int | None = None, score_price: int | None = None,
                 score_service: int | None = None, comment: str | None = None, submitted_at: str | None = None) -> str:
    """Record a survey answer (NPS 0–10, CSAT and item scores 1–5); returns the feedback id."""
    _require_customer(db, customer_id)
    feedback_id = _new_id("F")
    _insert(db, "feedback", {"feedback_id": feedback_id, "customer_id": customer_id,
                             "submitted_at": submitted_at or dt.date.today().isoformat(), "nps": nps, "csat": csat,
                             "score_quality": score_quality, "score_delivery": score_delivery,
                             "score_price": score_price, "score_service": score_service, "comment": comment})
    return feedback_id


def open_ticket(db: Database, customer_id: str, *, category: str | None = None, priority: str = "normal",
                opened_at: str | None = None) -> str:
    """Open a service ticket; returns its id."""
    _require_customer(db, customer_id)
    ticket_id = _new_id("T")
    _insert(db, "tickets", {"ticket_id": ticket_id, "customer_id": customer_id, "opened_at": opened_at or _now(),
                            "category": category, "priority": priority, "status": "open"})
    return ticket_id


def answer_ticket(db: Database, ticket_id: str, *, answered_at: str | None = None) -> None:
    """Note the first answer to an open ticket (kept if one is noted already; refuses a time before
    the ticket was opened, or a closed ticket)."""
    ticket = _fetch(db, "tickets", "ticket_id", ticket_id)
    if ticket["status"] == "closed":
        raise ValidationError("ticket_id", ticket_id, "is closed already")
    answered = require_valid(TABLES["tickets"], {**{k: v for k, v in ticket.items() if v is not None},
                                                 "first_response_at": answered_at or _now()})["first_response_at"]
    if answered < ticket["opened_at"]:
        raise ValidationError("first_response_at", answered, f"is before the ticket was opened ({ticket['opened_at']})")
    with _writing(db):
        db.table("tickets").update(ticket_id, {"first_response_at": ticket["first_response_at"] or answered})


def close_ticket(db: Database, ticket_id: str, *, closed_at: str | None = None, csat: int | None = None) -> None:
    """Close a ticket (refuses a close time before the open time)."""
    ticket = _fetch(db, "tickets", "ticket_id", ticket_id)
    closed = require_valid(TABLES["tickets"], {**{k: v for k, v in ticket.items() if v is not None},
                                               "closed_at": closed_at or _now(), "status": "closed", "csat": csat})
    if closed["closed_at"] < ticket["opened_at"]:
        raise ValidationError("closed_at", closed["closed_at"], f"is before the ticket was opened ({ticket['opened_at']})")
    with _writing(db):
        db.table("tickets").update(ticket_id, {"closed_at": closed["closed_at"], "status": "closed",
                                               "csat": closed.get("csat"),
                                               "first_response_at": ticket["first_response_at"] or closed["closed_at"]})


def add_opportunity(db: Database, customer_id: str, *, title: str | None = None, amount: float | None = None,
                    source: str | None = None, stage: str = "lead", probability: float | None = None,
                    opened_at: str | None = None, expected_close: str | None = None) -> str:
    """Open a sales opportunity (amount gross, probability 0–1); returns its id."""
    _require_customer(db, customer_id)
    opportunity_id = _new_id("OP")
    opened = opened_at or dt.date.today().isoformat()
    _insert(db, "opportunities", {"opportunity_id": opportunity_id, "customer_id": customer_id, "title": title,
                                  "amount": amount, "source": source, "stage": stage, "probability": probability,
                                  "opened_at": opened, "expected_close": expected_close, "last_activity_at": opened})
    return opportunity_id


def move_opportunity(db: Database, opportunity_id: str, *, stage: str, closed_at: str | None = None,
                     amount: float | None = None, probability: float | None = None,
                     lost_reason: str | None = None) -> None:
    """Move a deal to another stage; won and lost close it (refuses a close date before it opened)."""
    opp = _fetch(db, "opportunities", "opportunity_id", opportunity_id)
    today = dt.date.today().isoformat()
    changes: dict[str, Any] = {"stage": stage, "last_activity_at": today}
    if amount is not None:
        changes["amount"] = amount
    if probability is not None:
        changes["probability"] = probability
    if stage in OPEN_STAGES:
        changes["closed_at"] = None
    else:
        changes["closed_at"] = closed_at or today
        changes["probability"] = 1.0 if stage == "won" else 0.0
        if lost_reason:
            changes["lost_reason"] = lost_reason
    merged = require_valid(TABLES["opportunities"], {k: v for k, v in {**opp, **changes}.items() if v is not None})
    if merged.get("closed_at") and merged["closed_at"] < opp["opened_at"]:
        raise ValidationError("closed_at", merged["closed_at"], f"is before the opportunity was opened ({opp['opened_at']})")
    with _writing(db):
        db.table("opportunities").update(opportunity_id, {k: merged.get(k) for k in changes})


def add_task(db: Database, due: str, *, note: str | None = None, customer_id: str | None = None,
             opportunity_id: str | None = None, ticket_id: str | None = None) -> str:
    """Write down a task due on ``due`` (YYYY-MM-DD), about a customer, deal or ticket or nobody;
    a deal or ticket without a customer gives the task its customer. Returns the task id."""
    for column, value, table in (("customer_id", customer_id, "customers"), ("opportunity_id", opportunity_id,
                                 "opportunities"), ("ticket_id", ticket_id, "tickets")):
        if value is not None:
            row = _fetch(db, table, column, value)
            customer_id = customer_id or row.get("customer_id")
    if not (note or customer_id):
        raise ValidationError("note", "", "say what to do, or choose whom it is about")
    task_id = _new_id("K")
    clean = require_valid(TASKS, {k: v for k, v in {
        "task_id": task_id, "due": due, "note": note, "customer_id": customer_id, "opportunity_id": opportunity_id,
        "ticket_id": ticket_id, "created_at": _now(), "snoozed": 0}.items() if v is not None})
    with _writing(db):
        db.table(TASKS.name).insert(clean)
    return task_id


def _open_task(db: Database, task_id: str) -> dict[str, Any]:
    task = _fetch(db, TASKS.name, "task_id", task_id)
    if task["done_at"] is not None:
        raise ValidationError("task_id", task_id, f"was done already ({task['done_at']})")
    return task


def complete_task(db: Database, task_id: str, *, channel: str | None = "call", notes: str | None = None) -> str | None:
    """Mark an open task done now and, when it concerns a customer and ``channel`` is given, log the
    contact (an interaction now, its subject the task's note, outcome "done", ``notes``) in the same
    transaction. Returns the interaction id, or None when none was logged."""
    task = _open_task(db, task_id)
    now = _now()
    interaction = None
    if task["customer_id"] is not None and channel is not None:
        interaction = require_valid(TABLES["interactions"], {k: v for k, v in {
            "interaction_id": _new_id("I"), "customer_id": task["customer_id"], "channel": channel, "occurred_at": now,
            "direction": "outbound", "subject": f"task: {task['note'] or 'follow-up'}", "outcome": "done",
            "notes": notes}.items() if v is not None})
    with _writing(db):
        db.table(TASKS.name).update(task_id, {"done_at": now})
        if interaction is not None:
            db.table("interactions").insert(interaction)
    return None if interaction is None else str(interaction["interaction_id"])


def snooze_task(db: Database, task_id: str, *, until: str) -> None:
    """Move an open task to the day ``until`` (YYYY-MM-DD, after today; counted in ``snoozed``)."""
    task = _open_task(db, task_id)
    due = require_valid(TASKS, {**{k: v for k, v in task.items() if v is not None}, "due": until})["due"]
    if due <= dt.date.today().isoformat():
        raise ValidationError("due", until, "is not after today: snooze to a later day")
    with _writing(db):
        db.table(TASKS.name).update(task_id, {"due": due, "snoozed": (task["snoozed"] or 0) + 1})
