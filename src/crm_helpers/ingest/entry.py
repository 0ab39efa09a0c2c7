"""Entering everyday facts from a notebook: customers, interactions, orders, feedback, tickets, deals, tasks;
correcting or deleting one of them later (:func:`edit_entry`, :func:`edit_order`, :func:`delete_entry`).

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

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.i18n import t, tc
from crm_helpers.store.schema import OPEN_STAGES, TABLES, TASKS, Table
from crm_helpers.store.schema import table as schema_table
from crm_helpers.ingest.table_import import RowError, settle_refunds
from crm_helpers.store.connection import StoreError, explain_error, store_path, write_transaction
from crm_helpers.store.suppression import refuse_erased
from crm_helpers.store.validation import ValidationError, is_blank, normalize_email, require_valid

ENTRY_TABLES = ("orders", "interactions", "feedback", "tickets", "opportunities", TASKS.name)
"""The tables whose rows are a customer's timeline: each row can be corrected or deleted."""
_NO_SUCH = {"customers": "no such customer", "products": "no such product", "orders": "no such order",
            "interactions": "no such interaction", "feedback": "no such feedback", "tickets": "no such ticket",
            "opportunities": "no such opportunity", TASKS.name: "no such task"}
"""The refusal for an id that is not in the table, one whole phrase per table (through :func:`t`)."""


def _new_id(prefix: str) -> str:
    return f"{prefix}-{dt.datetime.now():%Y%m%d%H%M%S}-{secrets.token_hex(4)}"


def _now() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _require_customer(db: Database, customer_id: str) -> None:
    if not db.execute("SELECT 1 FROM customers WHERE customer_id = ?", [customer_id]).fetchone():
        raise ValidationError("customer_id", customer_id, t("unknown customer"))


def _fetch(db: Database, table: str, key: str, value: str) -> dict[str, Any]:
    cursor = db.execute(f"SELECT * FROM {table} WHERE {key} = ?", [value])
    row = cursor.fetchone()
    if row is None:
        raise ValidationError(key, value, t(_NO_SUCH[table]))
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
        raise StoreError(t("nothing was written: {reason}", reason=explain_error(store_path(db), exc))) from None


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
        raise ValidationError(sorted(unknown)[0], fields[sorted(unknown)[0]], t("not a customer field"))
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
    the lines; the refunded amount follows the importer's rule (:func:`_settled`). Returns the order id.
    """
    _require_customer(db, customer_id)
    order_id = order_id or _new_id("O")
    lines = []
    for product_id, quantity, unit_price in items:
        product = _fetch(db, "products", "product_id", product_id)
        price = product["unit_price"] if unit_price is None else unit_price
        lines.append(require_valid(TABLES["order_items"], {"order_id": order_id, "product_id": product_id,
                                                           "quantity": quantity, "unit_price": price}))
    total = amount if amount is not None else _lines_total(lines)
    order = _settled(require_valid(TABLES["orders"], {k: v for k, v in {
        "order_id": order_id, "customer_id": customer_id, "order_date": order_date or dt.date.today().isoformat(),
        "amount": total, "cost": cost, "currency": currency, "channel": channel, "campaign_id": campaign_id,
        "status": status}.items() if v is not None}))
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
        raise ValidationError("ticket_id", ticket_id, t("is closed already"))
    answered = _check_times("tickets", require_valid(TABLES["tickets"], {
        **{k: v for k, v in ticket.items() if v is not None}, "first_response_at": answered_at or _now()}))["first_response_at"]
    with _writing(db):
        db.table("tickets").update(ticket_id, {"first_response_at": ticket["first_response_at"] or answered})


def close_ticket(db: Database, ticket_id: str, *, closed_at: str | None = None, csat: int | None = None) -> None:
    """Close a ticket (refuses a close time before the open time)."""
    ticket = _fetch(db, "tickets", "ticket_id", ticket_id)
    closed = _check_times("tickets", require_valid(TABLES["tickets"], {
        **{k: v for k, v in ticket.items() if v is not None and k != "first_response_at"},
        "closed_at": closed_at or _now(), "status": "closed", "csat": csat}))
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
    merged = _check_times("opportunities", require_valid(TABLES["opportunities"], {
        k: v for k, v in {**opp, **changes}.items() if v is not None}))
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
        raise ValidationError("note", "", t("say what to do, or choose whom it is about"))
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
        raise ValidationError("task_id", task_id, t("was done already ({when})", when=task["done_at"]))
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
        raise ValidationError("due", until, t("is not after today: snooze to a later day"))
    with _writing(db):
        db.table(TASKS.name).update(task_id, {"due": due, "snoozed": (task["snoozed"] or 0) + 1})


# ---------------------------------------------------------------------- correcting past entries
_OPENED_AT = {"tickets": ("is before the ticket was opened ({opened})", ("first_response_at", "closed_at")),
              "opportunities": ("is before the opportunity was opened ({opened})", ("closed_at",))}
"""Per table: the refusal of a time before the row was opened (a whole phrase, through :func:`t`), the columns checked."""


def _check_times(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """The order of times within one row (the same when adding and when correcting): a ticket is
    not answered or closed, a deal not closed, before it was opened. Returns ``row``."""
    refusal, columns = _OPENED_AT.get(table, ("", ()))
    for column in columns:
        if row.get(column) and row.get("opened_at") and str(row[column]) < str(row["opened_at"]):
            raise ValidationError(column, row[column], t(refusal, opened=row["opened_at"]))
    return row


def _lines_total(lines: Iterable[dict[str, Any]]) -> float:
    """An order's lines in money: quantity × unit price (gross, after the line's discounts), summed."""
    return round(float(sum(l["quantity"] * (l.get("unit_price") or 0) for l in lines)), 2)


def _settled(order: dict[str, Any]) -> dict[str, Any]:
    """``order`` (cleaned) with its refunded amount as the importer stores it
    (:func:`~crm_helpers.ingest.table_import.settle_refunds`: a refunded order without an amount paid
    back was paid back whole, otherwise what is given, 0 when nothing is); more paid back than the
    amount is refused beside ``refunded_amount``."""
    errors: list[RowError] = []
    frame = pd.DataFrame([{"amount": order["amount"], "status": order["status"],
                           "refunded_amount": order.get("refunded_amount")}], dtype=object)
    settled = settle_refunds(frame, np.array([0]), errors=errors)
    if errors:
        raise ValidationError(errors[0].column, errors[0].value, errors[0].reason)
    return {**order, "refunded_amount": float(settled["refunded_amount"].iat[0])}


def _entry_table(table: str) -> Table:
    if table not in ENTRY_TABLES:
        raise ValidationError("table", table, t("not an entry of the timeline ({tables})", tables=", ".join(ENTRY_TABLES)))
    return schema_table(table)


def _corrected(db: Database, spec: Table, *, entry_id: str, changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored row and the row with ``changes`` (blank: cleared) checked by the importer's rules."""
    fixed = [c for c in changes if c in (spec.pk, "customer_id")]
    unknown = sorted(set(changes) - set(spec.column_names))
    if fixed or unknown:
        name = (fixed or unknown)[0]
        raise ValidationError(name, changes[name], t("cannot be changed here") if fixed
                              else t("not a field of {table}", table=spec.name))
    current = _fetch(db, spec.name, str(spec.pk), entry_id)
    merged = {k: v for k, v in {**current, **changes}.items() if not is_blank(v)}
    return current, _check_times(spec.name, require_valid(spec, merged))


def edit_entry(db: Database, table: str, *, entry_id: str, **changes: Any) -> None:
    """Correct a past interaction, feedback, ticket, deal or task: ``changes`` are columns of ``table``
    with their new values as typed (a blank one is cleared), checked with the importer's rules and the
    order of its times (:func:`_check_times`), written in one transaction. The id and the customer
    stay; an order goes through :func:`edit_order` (its lines and money)."""
    spec = _entry_table(table)
    if table == "orders":
        edit_order(db, entry_id, **changes)
        return
    _, merged = _corrected(db, spec, entry_id=entry_id, changes=changes)
    with _writing(db):
        db.table(spec.name).update(entry_id, {k: merged.get(k) for k in changes})


def order_lines(db: Database, order_id: str) -> list[dict[str, Any]]:
    """The order's lines as stored (order_id, product_id, quantity, unit_price, discount), by product."""
    cursor = db.execute("SELECT * FROM order_items WHERE order_id = ? ORDER BY product_id", [order_id])
    return [dict(zip([d[0] for d in cursor.description], row)) for row in cursor.fetchall()]


def edit_order(db: Database, order_id: str, *, quantities: dict[str, int | str] | None = None,
               prices: dict[str, float | str] | None = None, **changes: Any) -> None:
    """Correct a past order in one transaction: ``quantities`` maps products to their new number of
    units (0 or blank removes the line; a product not on the order is added as a new line, at its
    unit price in ``prices`` when given there, else at its list price, as :func:`record_order` does),
    ``changes`` columns of ``orders`` as typed.

    Money stays as :func:`record_order` stores it: a line keeps the unit price paid; when the lines
    change and no new amount is given, the amount changes by what the lines' total changed (so an
    order of lines alone is again their sum, and shipping or a discount on the whole order stays);
    an order refunded whole stays refunded whole at its new amount, a partial refund stays as it was,
    and more paid back than the amount is refused (:func:`_settled`)."""
    spec = TABLES["orders"]
    old_lines = {l["product_id"]: l for l in order_lines(db, order_id)}
    current = _fetch(db, "orders", "order_id", order_id)
    lines = dict(old_lines)
    for product_id, quantity in (quantities or {}).items():
        if is_blank(quantity) or str(quantity).strip() == "0":
            lines.pop(product_id, None)
            continue
        if product_id in old_lines:
            price = old_lines[product_id]["unit_price"]
        else:  # a new line: a product of the list, at the price given, else its list price
            given = (prices or {}).get(product_id)
            listed = _fetch(db, "products", "product_id", product_id)["unit_price"]
            price = listed if is_blank(given) else given
        line = {**old_lines.get(product_id, {}), "order_id": order_id, "product_id": product_id,
                "quantity": quantity, "unit_price": price}
        lines[product_id] = {**line, **require_valid(TABLES["order_items"], {k: v for k, v in line.items()
                                                                              if v is not None})}
    changes = dict(changes)
    if is_blank(changes.get("amount")) and lines != old_lines:
        changes["amount"] = round(float(current["amount"]) + _lines_total(lines.values())
                                  - _lines_total(old_lines.values()), 2)
    whole = current["status"] == "refunded" and (current["refunded_amount"] or 0) >= float(current["amount"]) - 1e-9
    if "refunded_amount" not in changes and whole:
        changes["refunded_amount"] = None  # paid back whole: whole again at the new amount
    _, merged = _corrected(db, spec, entry_id=order_id, changes=changes)
    merged = _settled(merged)
    written = {k: merged.get(k) for k in (*changes, "refunded_amount")}
    gone = [p for p in old_lines if p not in lines]
    with _writing(db):
        db.table("orders").update(order_id, written)
        for product_id in gone:
            db.execute("DELETE FROM order_items WHERE order_id = ? AND product_id = ?", [order_id, product_id])
        changed = [l for p, l in lines.items() if l != old_lines.get(p)]
        if changed:
            db.table("order_items").upsert_all(changed, pk=("order_id", "product_id"))


def delete_entry(db: Database, table: str, *, entry_id: str) -> None:
    """Delete a past entry of a customer's timeline in one transaction (an order with its lines).
    Refused, deleting nothing, while other rows refer to it (a task about a ticket or a deal, a
    campaign's contact ...): the message says which, to delete or change those first."""
    spec = _entry_table(table)
    _fetch(db, spec.name, str(spec.pk), entry_id)
    referring = [(t.name, c.name) for t in (*TABLES.values(), TASKS) for c in t.columns
                 if c.references == f"{spec.name}.{spec.pk}" and not (t.name == "order_items" and table == "orders")]
    for child, column in referring:
        n = db.execute(f"SELECT COUNT(*) FROM {child} WHERE {column} = ?", [entry_id]).fetchone()[0]
        if n:
            raise ValidationError(str(spec.pk), entry_id, t("{n} {rows} refer to it: delete or change those first",
                                                             n=n, rows=tc("table", child)))
    with _writing(db):
        if table == "orders":
            db.execute("DELETE FROM order_items WHERE order_id = ?", [entry_id])
        db.execute(f"DELETE FROM {spec.name} WHERE {spec.pk} = ?", [entry_id])
