"""The owner's desk: forms for everyday entry and today's to-do list (``notebooks/00_desk.ipynb``).

Every form calls a function of :mod:`crm_helpers.ingest.entry`, so it checks a value with the same rules
as the importer; a refusal is shown in plain words beside the field it concerns and nothing is
written. Each save is one transaction and is kept as an :class:`~crm_helpers.store.undo.EntryRecord`,
so the form offers "Undo this entry" until the next save. Past entries are corrected or deleted
from the chosen customer's timeline (:class:`EntryEditor`: "Edit" / "Delete" beside each entry, checked
the same way, one transaction each, "Undo this change" puts back the previous values or the deleted
rows); adding and correcting are separate actions.

Personal data: the desk reads names and e-mails from the store each time it shows them. A person
erased with ``crm forget`` keeps no name, e-mail, phone or company, so searches cannot find them
and the Today list leaves them out (nobody to contact); the selected customer is dropped when
their row is gone.

Times are local: dates ``YYYY-MM-DD``, timestamps ``YYYY-MM-DD HH:MM:SS``; a blank date or time
field means now (today). A date after now is saved only once "Yes, the date is in the future" is
ticked (a typo such as 2027 for 2026 is caught), and a contact dated in the future never takes its
person off the Today list.

The buttons carry no icons: the page loads nothing from the internet (see
:mod:`crm_helpers.desk_server`), and the icon font would come from a CDN.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle
import pandas as pd
from sqlite_utils import Database

from crm_helpers.errors import CrmError
from crm_helpers.i18n import BABEL_LOCALE, DEFAULT, currency_symbol, language, set_language, t, tc, tn
from crm_helpers.ingest import entry
from crm_helpers.analyses import followup
from crm_helpers.store.queries import customer_search_sql, memoized, store_currency
from crm_helpers.analyses.features import as_date
from crm_helpers.analyses.sales import opportunities_as_of, stale_opportunities
from crm_helpers.store.schema import (
    INTERACTION_CHANNELS,
    OPEN_STAGES,
    OPPORTUNITY_STAGES,
    ORDER_STATUSES,
    TABLES,
    TASKS,
    TICKET_CATEGORIES,
    TICKET_PRIORITIES,
    Column,
)
from crm_helpers.store.schema import table as schema_table
from crm_helpers.analyses.service import backlog
from crm_helpers.store.config import report_language
from crm_helpers.store.connection import open_db, write_transaction
from crm_helpers.store.facts import (
    contacted_since_sql,
    deal_overdue,
    next_day,
    on_or_before_sql,
    paid,
    task_due_sql,
    task_open_sql,
    ticket_open_now_sql,
)
from crm_helpers.store.undo import EntryRecord, differs, entry_record, read_row, undo_entry
from crm_helpers.store.validation import ValidationError, clean_value, is_blank

SHOWN_ROWS = 15
"""Rows per list of the Today panel (the pages stay short)."""
ANNIVERSARY_DAYS = 7
"""First-purchase anniversaries in the next this many days (today included) are listed."""
SEARCH_LIMIT = 20
LARGE_QUANTITY = 1000
"""An order line of this many or more is asked about once (a typo such as 1,000,000 for 1)."""
SURE = "Yes, save it as it is"
"""The box that answers a plausibility question (:meth:`_Form.ask`)."""
STANDBY_POLL_S = 2.0
"""How often, in seconds, a standby kernel (:func:`warm_up`) looks whether the store was written."""

_CONTACTABLE = "COALESCE(name, email, phone, company) IS NOT NULL"
"""A customer the desk may show: erased people (``crm forget``) hold none of these any more."""
_ERROR = '<span style="color:#b00020">{}</span>'
_OK = '<span style="color:#1b5e20">{}</span>'


def _text(value: Any) -> str:
    """A stored value as a person reads it: blank for missing, never "None" or "nan"."""
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _choices(values: Any, *, column: str) -> list[tuple[str, str]]:
    """A list's options: each stored value (``"call"``, ``"paid"``) of ``column`` (``"tickets.priority"``)
    shown in the owner's language, as meant in that column (:func:`crm_helpers.i18n.tc`)."""
    return [(tc(column, v), v) for v in values]


def _weekday_day(day: dt.date) -> str:
    """``Tuesday 08 December`` in English; the language's own form otherwise (``12月8日星期二``)."""
    if language() == DEFAULT:
        return f"{day:%A %d %B}"
    from babel.dates import format_skeleton

    return format_skeleton("MMMMdEEEE", day, locale=BABEL_LOCALE[language()])


def _money(amount: str, currency: str) -> str:
    """An amount already written (``1,234.50``) with its currency as the owner's language writes it:
    ``1,234.50 EUR`` in English, the currency's sign first in Chinese (``€1,234.50``, ``¥12.00``,
    :func:`crm_helpers.i18n.currency_symbol`)."""
    symbol = currency_symbol(currency) if currency else ""
    if not symbol:
        return f"{amount} {currency}"
    return f"-{symbol}{amount[1:]}" if amount.startswith("-") else f"{symbol}{amount}"


def _blank_to_none(value: Any) -> Any:
    return None if is_blank(value) else (value.strip() if isinstance(value, str) else value)


# ------------------------------------------------------------------------------ reading
def _matches_sql(text: str) -> tuple[str, dict[str, str]] | None:
    """The WHERE clause and parameters of a search for ``text`` (see :func:`find_customers`)."""
    found = customer_search_sql(text)
    return None if found is None else (f"{_CONTACTABLE} AND {found[0]}", found[1])


def find_customers(db: Database, text: str, *, limit: int = SEARCH_LIMIT) -> list[tuple[str, str]]:
    """Customers whose name, e-mail, company or phone contains ``text`` (any case; a phone also by
    its digits alone, from 3 on, whatever spaces or dashes it is stored with): ``[(label,
    customer_id)]``, by name, at most ``limit`` (:func:`count_customers` says how many in all).
    Blank text finds nobody; erased people are never found."""
    where = _matches_sql(text)
    if where is None:
        return []
    rows = db.execute(f"SELECT customer_id, name, email, company FROM customers WHERE {where[0]} "
                      "ORDER BY lower(name), customer_id LIMIT :limit", {**where[1], "limit": limit}).fetchall()
    return [(customer_label(name, email, company=company, customer_id=cid), cid) for cid, name, email, company in rows]


def count_customers(db: Database, text: str) -> int:
    """How many customers :func:`find_customers` would find for ``text`` without its limit."""
    where = _matches_sql(text)
    return 0 if where is None else int(db.execute(f"SELECT COUNT(*) FROM customers WHERE {where[0]}",
                                                  where[1]).fetchone()[0])


TIMELINE_ROWS = 20
"""Entries of the chosen customer's timeline shown under their name, newest first."""

_TIMELINE_SQL = f"""
SELECT * FROM (
  SELECT o.order_date AS at, 'order' AS kind, printf('%.2f', o.amount) AS a, COALESCE(o.currency, '') AS b,
         o.status AS c,
         CASE WHEN o.refunded_amount > 0 AND o.refunded_amount < o.amount
              THEN printf('%.2f', o.refunded_amount) END AS d,
         (SELECT group_concat(i.quantity || ' × ' || COALESCE(p.name, i.product_id), ', ')
          FROM order_items i LEFT JOIN products p ON p.product_id = i.product_id
          WHERE i.order_id = o.order_id) AS e,
         'orders' AS tbl, o.order_id AS id, 0 AS open_task
  FROM orders o WHERE o.customer_id = :customer
  UNION ALL
  SELECT occurred_at, channel, trim(COALESCE(subject, '') || COALESCE(' → ' || outcome, '')
                                    || COALESCE(' (' || notes || ')', '')), NULL, NULL, NULL, NULL,
         'interactions', interaction_id, 0
  FROM interactions WHERE customer_id = :customer
  UNION ALL
  SELECT submitted_at, 'feedback', CAST(nps AS TEXT), CAST(csat AS TEXT), comment, NULL, NULL, 'feedback', feedback_id, 0
  FROM feedback WHERE customer_id = :customer
  UNION ALL
  SELECT opened_at, 'ticket', category, status, NULL, NULL, NULL, 'tickets', ticket_id, 0
  FROM tickets WHERE customer_id = :customer
  UNION ALL
  SELECT opened_at, 'deal', title, stage, printf('%.0f', amount), NULL, NULL, 'opportunities', opportunity_id, 0
  FROM opportunities WHERE customer_id = :customer
  UNION ALL
  SELECT due, 'task', note, NULL, NULL, NULL, NULL, '{TASKS.name}', task_id, done_at IS NULL
  FROM {TASKS.name} WHERE customer_id = :customer
) ORDER BY at DESC, id DESC LIMIT :limit
"""
"""Each entry's date, kind, the texts its line is written from (``a``-``e``, :func:`_what`: numbers as
the line shows them), its row and whether it is an open task."""


def _what(table: str, parts: tuple[Any, ...], *, open_task: bool) -> str:
    """What a timeline entry says, in the owner's language, from :data:`_TIMELINE_SQL`'s ``a``-``e``:
    an order's amount, currency, status, the amount paid back and its lines; an interaction's subject,
    outcome and notes (as typed); a survey answer's scores and comment; a ticket's kind and status; a
    deal's title, stage and amount; a task's note and whether it is still open."""
    a, b, c, d, e = (_text(v) for v in parts)
    if table == "orders":
        status = tc("orders.status", c)
        text = (t("{amount}, {status} ({paid_back} paid back)", amount=_money(a, b), status=status,
                  paid_back=_money(d, b) if b and currency_symbol(b) else d)  # English: "(5.00 paid back)"
                if d else t("{amount}, {status}", amount=_money(a, b), status=status))
        return t("{order}: {lines}", order=text, lines=e) if e else text
    if table == "feedback":
        said = [t("would recommend {nps} of 10", nps=a) if a else "", t("satisfied {csat} of 5", csat=b) if b else "",
                f"\u201c{c}\u201d" if c else ""]
        return " ".join(part for part in said if part)
    if table == "tickets":
        return t("{kind}, {status}", kind=tc("tickets.category", a) if a else t("ticket"), status=tc("tickets.status", b))
    if table == "opportunities":
        return ", ".join([a or t("untitled"), tc("opportunities.stage", b), *([c] if c else [])])
    if table == TASKS.name:
        return t("{task} (open)", task=a or t("task")) if open_task else t("{task} (done)", task=a or t("task"))
    return a


@dataclass(frozen=True)
class TimelineEntry:
    """One entry of a customer's timeline: when (the stored date or time; a task's due day), its
    kind (the channel for an interaction), what it says, the row it is (``table``, ``key``), and
    whether it is a task still open."""

    at: str
    kind: str
    what: str
    table: str
    key: str
    open_task: bool = False


def customer_timeline(db: Database, customer_id: str, *, limit: int = TIMELINE_ROWS) -> list[TimelineEntry]:
    """The customer's orders (with their items), interactions, feedback, tickets, deals and tasks,
    newest first, at most ``limit``."""
    return [TimelineEntry(str(at), str(kind), _what(table, parts, open_task=bool(open_task)), str(table), str(key),
                          bool(open_task))
            for at, kind, *parts, table, key, open_task in
            db.execute(_TIMELINE_SQL, {"customer": customer_id, "limit": limit}).fetchall()]


def customer_label(name: Any, email: Any, *, company: Any, customer_id: str) -> str:
    """``Anna Li (Tea House) · anna@example.com``; the id when nothing else is known."""
    label = _text(name) or _text(email) or customer_id
    if _text(company):
        label += f" ({company})"
    if _text(name) and _text(email):
        label += f" · {email}"
    return label


def _customer(db: Database, customer_id: str | None) -> dict[str, Any] | None:
    """The customer's row while it is in the store and not erased."""
    if not customer_id:
        return None
    row = db.execute(f"SELECT * FROM customers WHERE customer_id = ? AND {_CONTACTABLE}", [customer_id])
    values = row.fetchone()
    return None if values is None else dict(zip([d[0] for d in row.description], values))


def _record(db: Database, summary: str, rows: list[tuple[str, tuple[Any, ...], dict[str, Any] | None]]) -> EntryRecord:
    """The :class:`EntryRecord` of a save: ``rows`` are ``(table, key, row before or None)``, read after."""
    return entry_record(db, summary, rows=rows)


_KEPT_BY_THE_DESK = {"created_at", "snoozed"}
"""Columns the desk fills in itself (when a task was written down, how often it was moved): the
save message already says what they record, so they are not echoed as typed values."""


def _written(record: EntryRecord) -> str:
    """The values the entry's main row holds now, in small print, named as the form names them
    (ids, blanks and the desk's own bookkeeping left out)."""
    main = record.changes[0]
    if main.after is None:  # a deletion
        return ""
    columns = schema_table(main.table)
    values = [t("{field}: {value}", field=field_label(c),
                value=tc(f"{main.table}.{c}", v) if columns.column(c).allowed else v)
              for c, v in main.after.items()
              if v is not None and not c.endswith("_id") and c not in _KEPT_BY_THE_DESK
              and (main.before is None or main.before.get(c) != v)]
    return f'<br><small>{html.escape("; ".join(values))}</small>' if values else ""


def _set_options(dropdown: widgets.Dropdown, options: list[tuple[str, str]]) -> None:
    """New options; the chosen value stays when it is still there, else the first one is chosen."""
    keep = dropdown.value
    dropdown.options = options
    values = [v for _, v in options]
    dropdown.value = keep if keep in values else (values[0] if values else None)


# -------------------------------------------------------------------------------- forms
class _Undoable:
    """A panel with a message line and an "Undo" button that takes back its last saved entry."""

    desk: "Desk"
    last: EntryRecord | None
    message: widgets.HTML
    undo: widgets.Button

    def _undo(self) -> None:
        if self.last is None:
            return
        try:
            undo_entry(self.desk.db, self.last)
        except CrmError as exc:  # UndoError, or the store replaced or too new
            self.message.value = _ERROR.format(html.escape(str(exc)))
            return
        self.message.value = _OK.format(html.escape(t("Undone: {summary}.", summary=self.last.summary)))
        self.last = None
        self.undo.layout.display = "none"
        self.desk.changed()


class _Form(_Undoable):
    """A form: named fields, an error line beside each, a message, and "Undo this entry"."""

    title = ""
    save: widgets.Button

    def __init__(self, desk: "Desk") -> None:
        self.desk = desk
        self.fields: dict[str, widgets.ValueWidget] = {}
        self.errors: dict[str, widgets.HTML] = {}
        self.message = widgets.HTML()
        self.undo = widgets.Button(description=t("Undo this entry"), layout=widgets.Layout(display="none"))
        self.undo.on_click(lambda _: self._undo())
        self.future_ok = widgets.Checkbox(description=t("Yes, the date is in the future"), indent=False,
                                          layout=widgets.Layout(display="none"))
        self.sure = widgets.Checkbox(description=t(SURE), indent=False, layout=widgets.Layout(display="none"))
        self.last: EntryRecord | None = None

    label_width = "9em"
    """The width of the fields' labels (:meth:`_field`)."""

    def _field(self, name: str, widget: widgets.ValueWidget) -> widgets.ValueWidget:
        own = widget.style
        widget.style = self.desk.shared(type(own), description_width=self.label_width)  # one per kind of field
        own.close()  # never drawn: the page does not fetch it
        self.fields[name] = widget
        self.errors[name] = widgets.HTML(layout=self.desk.shared(widgets.Layout),
                                         style=self.desk.shared(HTMLStyle))
        widget.observe(lambda _: setattr(self.sure, "value", False), names="value")  # a new value, a new question
        if isinstance(widget, widgets.Text):  # Enter in a one-line field presses the field's button
            widget.on_msg(lambda _, content, __, n=name: content.get("event") == "submit" and self.enter(n))
        return widget

    def enter(self, name: str) -> None:
        """Enter pressed in the field ``name``: press the button that saves it (:attr:`save`)."""
        self.save.click()

    def _date_field(self, name: str, widget: widgets.Text) -> widgets.Text:
        """A date or time field; changing it asks for the future-date confirmation again."""
        widget.observe(lambda _: setattr(self.future_ok, "value", False), names="value")
        return self._field(name, widget)

    def when(self, name: str, *, table: str, column: str) -> str | None:
        """The date field ``name`` for ``table.column`` (None when blank: now). A date after now is
        refused beside the field, with "Yes, the date is in the future" shown below, until that box
        is ticked; a value that is no date at all is left for the entry function to refuse."""
        value = self.value(name)
        if value is None:
            return None
        try:
            stored = str(clean_value(TABLES[table].column(column), value))
        except ValueError:
            return value
        now = dt.datetime.now()
        latest = now.strftime("%Y-%m-%d %H:%M:%S") if len(stored) > len("YYYY-MM-DD") else now.date().isoformat()
        if stored > latest and not self.future_ok.value:
            self.future_ok.layout.display = ""
            raise ValidationError(name, value, t("is in the future: tick \u201cYes, the date is in the future\u201d "
                                                 "below if it is meant, or correct it"))
        return value

    def ask(self, name: str, value: Any, question: str) -> None:
        """A value that is allowed but rarely meant: refused beside the field ``name`` with the
        ``question`` and :data:`SURE` shown below the form, until that box is ticked (once: changing
        any field asks again)."""
        if not self.sure.value:
            self.sure.layout.display = ""
            raise ValidationError(name, value, t("{question}: tick \u201c{sure}\u201d below if it is meant, or correct it",
                                                 question=question, sure=t(SURE)))

    def footer(self) -> widgets.Widget:
        """The confirmations (shown when needed), the message and "Undo this entry"."""
        return widgets.VBox([self.future_ok, self.sure, widgets.HBox([self.message, self.undo])])

    def _row(self, name: str) -> widgets.HBox:
        return widgets.HBox([self.fields[name], self.errors[name]], layout=self.desk.shared(widgets.Layout))

    def _button(self, description: str, action: Callable[[], EntryRecord], style: str = "primary") -> widgets.Button:
        button = widgets.Button(description=description, button_style=style)
        button.on_click(lambda _: self.run(action))
        return button

    def value(self, name: str) -> Any:
        """The field's value, None when blank."""
        return _blank_to_none(self.fields[name].value)

    def customer_id(self) -> str:
        """The selected customer, or a refusal saying to choose one."""
        if self.desk.current() is None:
            raise ValidationError("customer", "", t("choose a customer first (type part of a name above)"))
        return str(self.desk.customer_id)

    def clear(self) -> None:
        """Empty the text fields after a save."""
        for widget in self.fields.values():
            if isinstance(widget, (widgets.Text, widgets.Textarea)):
                widget.value = ""

    def run(self, action: Callable[[], EntryRecord]) -> bool:
        """Run a save: a refusal goes beside its field (or into the message), a success into the
        message with "Undo this entry". Returns whether something was written."""
        for error in self.errors.values():
            error.value = ""
        try:
            record = action()
        except ValidationError as exc:
            shown = f"{exc.value!r}: {exc.reason}" if exc.value not in (None, "") else exc.reason
            if exc.column in self.errors:
                self.errors[exc.column].value = _ERROR.format(html.escape(shown))
                self.message.value = _ERROR.format(html.escape(t("Not saved: see the note beside the field.")))
            else:
                self.message.value = _ERROR.format(html.escape(t("Not saved: {field}: {reason}", field=field_label(exc.column), reason=shown)))
            return False
        except CrmError as exc:
            self.message.value = _ERROR.format(html.escape(t("Not saved: {reason}", reason=exc)))
            return False
        except sqlite3.IntegrityError as exc:  # e.g. the same e-mail saved from another window meanwhile
            self.message.value = _ERROR.format(html.escape(t("Not saved: it clashes with a row written meanwhile ({reason}).", reason=exc)))
            return False
        self.last = record
        self.message.value = _OK.format(html.escape(t("Saved: {summary}.", summary=record.summary))) + _written(record)
        self.undo.layout.display = ""
        self.future_ok.value = self.sure.value = False
        self.future_ok.layout.display = self.sure.layout.display = "none"
        self.clear()
        self.desk.changed()
        return True

    def drop_if_gone(self) -> None:
        """Forget the last entry (and what the message shows of it) when its row is no longer as it
        was written: removed, changed, or its person erased with ``crm forget`` (then it could not be
        undone anyway)."""
        if self.last is None:
            return
        main = self.last.changes[0]
        now = read_row(self.desk.db, main.table, key=main.key)
        if main.after is None:  # a deletion: stale once the row is back or its person gone
            stale = now is not None or _customer(self.desk.db, (main.before or {}).get("customer_id")) is None
        else:
            stale = now is None or any(differs(now.get(c), v) for c, v in main.after.items())
        if stale:
            self.last = None
            self.message.value = ""
            self.undo.layout.display = "none"

    def refresh(self) -> None:
        """Re-read what the form lists from the store (after any save)."""

    def widget(self) -> widgets.Widget:
        """Every field in order, the form's ``save`` button, the message and "Undo this entry"."""
        return widgets.VBox([*(self._row(n) for n in self.fields), self.save, self.footer()])


class CustomerForm(_Form):
    """Add a customer, or change the selected one; a known e-mail is refused with "Open that one".

    The two never mix: with a customer chosen the form shows their row, "Save changes" and "New
    customer" (which empties the form and lets go of them); only an empty start offers "Add as new
    customer", so nothing of one person is copied into another."""

    title = "Customer"
    TEXT_FIELDS = ("name", "email", "phone", "company", "country", "city", "notes")

    def __init__(self, desk: "Desk") -> None:
        super().__init__(desk)
        for name in self.TEXT_FIELDS:
            widget = widgets.Textarea if name == "notes" else widgets.Text
            self._field(name, widget(description=t(name.capitalize().replace("Email", "E-mail"))))
        self._field("consent_marketing", widgets.Checkbox(description=t("Agreed to marketing e-mails"), indent=False))
        self.existing: str | None = None
        self.open_existing = widgets.Button(description=t("Open that one"), layout=widgets.Layout(display="none"))
        self.open_existing.on_click(lambda _: self.desk.select(self.existing))
        self.add = self._button(t("Add as new customer"), self._add)
        self.save = self._button(t("Save changes"), self._save, style="")
        self.new = widgets.Button(description=t("New customer"))
        self.new.on_click(lambda _: self.start_new())

    def enter(self, name: str) -> None:
        (self.save if self.desk.customer_id is not None else self.add).click()

    def start_new(self) -> None:
        """Let go of the chosen customer and empty the form for a new one."""
        self.desk.select(None)
        self.message.value = ""

    def _values(self) -> dict[str, Any]:
        values = {name: self.value(name) for name in self.TEXT_FIELDS}
        values["consent_marketing"] = int(bool(self.fields["consent_marketing"].value))
        return values

    def _refuse_known_email(self, email: str | None, own_id: str | None) -> None:
        self.existing = None
        self.open_existing.layout.display = "none"
        if email is None:
            return
        try:
            clean = clean_value(TABLES["customers"].column("email"), email)
        except ValueError as exc:
            raise ValidationError("email", email, str(exc)) from None
        row = self.desk.db.execute("SELECT customer_id, name FROM customers WHERE email = ? AND customer_id IS NOT ?",
                                   [clean, own_id]).fetchone()
        if row:
            self.existing = row[0]
            self.open_existing.layout.display = ""
            raise ValidationError("email", email, t("belongs to {name} already", name=_text(row[1]) or t("another customer")))

    def _add(self) -> EntryRecord:
        if self.desk.customer_id is not None:
            raise ValidationError("customer", "", t("the form shows {name}: press \u201cNew customer\u201d first, so nothing of theirs is copied",
                                                    name=self.desk.name()))
        values = self._values()
        if not (values["name"] or values["email"]):
            raise ValidationError("name", "", t("give a name or an e-mail"))
        self._refuse_known_email(values["email"], None)
        self._plausible(values, None)
        cid = entry.add_customer(self.desk.db, customer_id=None, **{k: v for k, v in values.items() if v is not None})
        record = _record(self.desk.db, t("new customer {name}", name=values['name'] or values['email']), [("customers", (cid,), None)])
        self.desk.select(cid)
        return record

    def _plausible(self, values: dict[str, Any], before: dict[str, Any] | None) -> None:
        phone = values.get("phone")
        if phone is not None and sum(ch.isdigit() for ch in str(phone)) < 5:
            self.ask("phone", phone, t("has fewer than 5 digits: is it a phone number"))
        if before and before.get("email") and values.get("email") is None:
            self.ask("email", "", t("blanks the e-mail {email} this customer had", email=before['email']))

    def _save(self) -> EntryRecord:
        cid = self.customer_id()
        values = self._values()
        self._refuse_known_email(values["email"], cid)
        before = read_row(self.desk.db, "customers", key=(cid,))
        self._plausible(values, before)
        entry.update_customer(self.desk.db, cid, **values)
        return _record(self.desk.db, t("changes to {name}", name=values['name'] or cid), [("customers", (cid,), before)])

    def clear(self) -> None:
        """Keep the fields: they show the selected customer after a save."""

    def show(self, row: dict[str, Any] | None) -> None:
        """Fill the fields from the selected customer's row (empty them without one)."""
        for name in self.TEXT_FIELDS:
            self.fields[name].value = _text((row or {}).get(name))
        self.fields["consent_marketing"].value = bool((row or {}).get("consent_marketing"))
        self.existing = None
        self.open_existing.layout.display = "none"
        self.add.layout.display = "none" if row else ""
        self.save.layout.display = self.new.layout.display = "" if row else "none"

    def widget(self) -> widgets.Widget:
        return widgets.VBox([*(self._row(n) for n in self.fields), widgets.HBox([self.add, self.save, self.new]),
                             self.sure, widgets.HBox([self.message, self.open_existing, self.undo])])


class InteractionForm(_Form):
    """Log a call, e-mail, meeting, chat or social contact with the selected customer."""

    title = "Interaction"

    def __init__(self, desk: "Desk") -> None:
        super().__init__(desk)
        self._field("channel", widgets.Dropdown(options=_choices(INTERACTION_CHANNELS, column="interactions.channel"),
                                                value="call", description=t("Channel")))
        self._field("direction", widgets.Dropdown(options=[(t("I reached them"), "outbound"), (t("They reached me"), "inbound")],
                                                  description=t("Who started")))
        self._field("subject", widgets.Text(description=t("Subject")))
        self._field("outcome", widgets.Text(description=t("Outcome"), placeholder=t("e.g. wants a quote")))
        self._field("notes", widgets.Textarea(description=t("Notes")))
        self._date_field("occurred_at", widgets.Text(description=t("When"), placeholder=t("now (or YYYY-MM-DD HH:MM)")))
        self.save = self._button(t("Log it"), self._save)

    def _save(self) -> EntryRecord:
        cid = self.customer_id()
        iid = entry.log_interaction(self.desk.db, cid, channel=self.fields["channel"].value,
                                    direction=self.fields["direction"].value, subject=self.value("subject"),
                                    outcome=self.value("outcome"), notes=self.value("notes"),
                                    occurred_at=self.when("occurred_at", table="interactions", column="occurred_at"))
        return _record(self.desk.db, t("{channel} with {name}", channel=t(self.fields['channel'].value), name=self.desk.name()),
                       [("interactions", (iid,), None)])


class OrderForm(_Form):
    """Record an order: pick products (list prices shown), quantities, status; the total is computed."""

    title = "Order"

    def __init__(self, desk: "Desk") -> None:
        super().__init__(desk)
        self._field("product_id", widgets.Dropdown(description=t("Product")))
        self._field("quantity", widgets.Text(value="1", description=t("Quantity")))
        self._field("status", widgets.Dropdown(options=_choices(ORDER_STATUSES, column="orders.status"),
                                               description=t("Status")))
        self._date_field("order_date", widgets.Text(description=t("Date"), placeholder=t("today (or YYYY-MM-DD)")))
        self.lines: list[tuple[str, int, float | None]] = []
        self.lines_view = widgets.HTML()
        self.add_line = widgets.Button(description=t("Add line"))
        self.add_line.on_click(lambda _: self._add_line())
        self.clear_lines = widgets.Button(description=t("Clear lines"))
        self.clear_lines.on_click(lambda _: self._set_lines([]))
        self.save = self._button(t("Record order"), self._save)
        self.currency = ""
        self.refresh()

    def refresh(self) -> None:
        self.currency = self.currency or store_currency(self.desk.db) or "EUR"  # read once: a pass over the orders
        rows = self.desk.db.execute("SELECT product_id, name, unit_price FROM products ORDER BY name").fetchall()
        self.prices = {pid: price for pid, _, price in rows}
        _set_options(self.fields["product_id"], [
            (t("{product} — no list price", product=name) if price is None else
             t("{product} — {price}", product=name, price=_money(f"{price:,.2f}", self.currency)), pid)
            for pid, name, price in rows])

    def enter(self, name: str) -> None:
        (self.add_line if name == "quantity" else self.save).click()

    def _add_line(self) -> None:
        self.errors["quantity"].value = ""
        try:
            quantity = clean_value(TABLES["order_items"].column("quantity"), self.fields["quantity"].value)
        except ValueError as exc:
            self.errors["quantity"].value = _ERROR.format(html.escape(f"{self.fields['quantity'].value!r}: {exc}"))
            return
        pid = self.fields["product_id"].value
        if pid is None:
            self.errors["product_id"].value = _ERROR.format(html.escape(t("pick a product") if self.prices else
                                                                        t("there are no products in the store yet")))
            return
        if int(quantity) >= LARGE_QUANTITY:
            line = _money(f"{int(quantity) * (self.prices.get(pid) or 0):,.0f}", self.currency)
            try:
                self.ask("quantity", self.fields["quantity"].value, t("makes a line of {amount}", amount=line))
            except ValidationError as exc:
                self.errors["quantity"].value = _ERROR.format(html.escape(f"{exc.value!r}: {exc.reason}"))
                return
        self.sure.value = False
        self.sure.layout.display = "none"
        self._set_lines(self.lines + [(pid, int(quantity), None)])

    def _set_lines(self, lines: list[tuple[str, int, float | None]]) -> None:
        self.lines = lines
        rows = [f"<li>{q} × {html.escape(str(self.fields['product_id'].options[self._index(p)][0]))}</li>"
                for p, q, _ in lines]
        self.lines_view.value = f"<ul>{''.join(rows)}</ul><b>" + html.escape(t("Total: {amount}", amount=_money(f"{self.total():,.2f}", self.currency))) + "</b>" if rows else ""

    def _index(self, pid: str) -> int:
        return [v for _, v in self.fields["product_id"].options].index(pid)

    def total(self) -> float:
        """The order's amount: quantity × list price, summed over the lines (gross)."""
        return float(sum(q * (self.prices.get(p) or 0) for p, q, _ in self.lines))

    def _save(self) -> EntryRecord:
        cid = self.customer_id()
        if not self.lines:
            raise ValidationError("product_id", "", t("add at least one line (pick a product, then Add line)"))
        merged: dict[str, int] = {}
        for pid, quantity, _ in self.lines:  # a product picked twice is one line of the order
            merged[pid] = merged.get(pid, 0) + quantity
        oid = entry.record_order(self.desk.db, cid, items=[(p, q, None) for p, q in merged.items()],
                                 order_date=self.when("order_date", table="orders", column="order_date"), status=self.fields["status"].value,
                                 currency=self.currency)
        record = _record(self.desk.db, t("order of {amount} from {name}", amount=_money(f"{self.total():,.2f}", self.currency), name=self.desk.name()),
                         [("orders", (oid,), None), *(("order_items", (oid, p), None) for p in merged)])
        self._set_lines([])
        return record

    def clear(self) -> None:
        self.fields["quantity"].value = "1"
        self.fields["order_date"].value = ""

    def widget(self) -> widgets.Widget:
        return widgets.VBox([self._row("product_id"), self._row("quantity"), widgets.HBox([self.add_line, self.clear_lines]),
                             self.lines_view, self._row("status"), self._row("order_date"), self.save,
                             self.footer()])


class FeedbackForm(_Form):
    """A survey answer: NPS 0–10, CSAT 1–5, the four item scores 1–5, a comment (blank: not asked)."""

    title = "Feedback"
    SCORES = {"nps": "NPS (0–10)", "csat": "CSAT (1–5)", "score_quality": "Quality (1–5)",
              "score_delivery": "Delivery (1–5)", "score_price": "Price (1–5)", "score_service": "Service (1–5)"}

    def __init__(self, desk: "Desk") -> None:
        super().__init__(desk)
        for name, label in self.SCORES.items():
            self._field(name, widgets.Text(description=t(label), layout=widgets.Layout(width="16em")))
        self._field("comment", widgets.Textarea(description=t("Comment")))
        self._date_field("submitted_at", widgets.Text(description=t("Date"), placeholder=t("today (or YYYY-MM-DD)")))
        self.save = self._button(t("Save feedback"), self._save)

    def _save(self) -> EntryRecord:
        cid = self.customer_id()
        values = {name: self.value(name) for name in (*self.SCORES, "comment")}
        if all(v is None for v in values.values()):
            raise ValidationError("nps", "", t("give at least one score or a comment"))
        fid = entry.add_feedback(self.desk.db, cid, submitted_at=self.when("submitted_at", table="feedback",
                                                                           column="submitted_at"), **values)
        return _record(self.desk.db, t("feedback from {name}", name=self.desk.name()), [("feedback", (fid,), None)])


class TicketForm(_Form):
    """Open a ticket for the selected customer; note the first answer; close it (with a CSAT)."""

    title = "Ticket"

    def __init__(self, desk: "Desk") -> None:
        super().__init__(desk)
        self._field("category", widgets.Dropdown(options=_choices(TICKET_CATEGORIES, column="tickets.category"),
                                                 description=t("Kind")))
        self._field("priority", widgets.Dropdown(options=_choices(TICKET_PRIORITIES, column="tickets.priority"),
                                                 value="normal", description=t("Priority")))
        self._field("ticket_id", widgets.Dropdown(description=t("Open ticket")))
        self._date_field("when", widgets.Text(description=t("When"), placeholder=t("now (or YYYY-MM-DD HH:MM)")))
        self._field("csat", widgets.Text(description=t("CSAT (1–5)"), layout=widgets.Layout(width="16em")))
        self.open = self._button(t("Open ticket"), self._open)
        self.answer = self._button(t("Mark answered"), self._answer, style="")
        self.close = self._button(t("Close ticket"), self._close, style="")

    def refresh(self) -> None:
        rows = self.desk.db.execute(
            "SELECT ticket_id, category, opened_at, first_response_at FROM tickets WHERE customer_id = :customer "
            f"AND {ticket_open_now_sql()} ORDER BY opened_at", {"customer": self.desk.customer_id}).fetchall()
        _set_options(self.fields["ticket_id"], [
            (t("{kind} opened {when}, answered", kind=t(_text(cat) or "ticket"), when=opened[:16]) if answered else
             t("{kind} opened {when}, not answered yet", kind=t(_text(cat) or "ticket"), when=opened[:16]), tid)
            for tid, cat, opened, answered in rows])

    def enter(self, name: str) -> None:
        if name == "csat":
            self.close.click()
        elif name == "when" and self.fields["ticket_id"].value is not None:
            self.answer.click()
        else:
            self.open.click()

    def _ticket(self) -> str:
        self.customer_id()
        if self.fields["ticket_id"].value is None:
            raise ValidationError("ticket_id", "", t("this customer has no open ticket"))
        return str(self.fields["ticket_id"].value)

    def _open(self) -> EntryRecord:
        tid = entry.open_ticket(self.desk.db, self.customer_id(), category=self.fields["category"].value,
                                priority=self.fields["priority"].value, opened_at=self.when("when", table="tickets", column="opened_at"))
        return _record(self.desk.db, t("{kind} ticket for {name}", kind=t(self.fields['category'].value), name=self.desk.name()),
                       [("tickets", (tid,), None)])

    def _changed(self, summary: str, call: Callable[[str], None]) -> EntryRecord:
        tid = self._ticket()
        before = read_row(self.desk.db, "tickets", key=(tid,))
        try:
            call(tid)
        except ValidationError as exc:
            column = {"closed_at": "when", "first_response_at": "when"}.get(exc.column, exc.column)
            raise ValidationError(column, exc.value, exc.reason) from None
        return _record(self.desk.db, summary.format(name=self.desk.name()), [("tickets", (tid,), before)])

    def _answer(self) -> EntryRecord:
        when = self.when("when", table="tickets", column="first_response_at")
        return self._changed(t("ticket answered for {name}"), lambda t: entry.answer_ticket(self.desk.db, t, answered_at=when))

    def _close(self) -> EntryRecord:
        when = self.when("when", table="tickets", column="closed_at")
        return self._changed(t("ticket closed for {name}"), lambda t: entry.close_ticket(self.desk.db, t, closed_at=when,
                                                                           csat=self.value("csat")))

    def widget(self) -> widgets.Widget:
        return widgets.VBox([self._row("category"), self._row("priority"), self.open, widgets.HTML("<hr>"),
                             self._row("ticket_id"), self._row("when"), self._row("csat"),
                             widgets.HBox([self.answer, self.close]), self.footer()])


class DealForm(_Form):
    """Add an opportunity for the selected customer and move it through the stages (lost asks why)."""

    title = "Deal"

    def __init__(self, desk: "Desk") -> None:
        super().__init__(desk)
        self._field("title", widgets.Text(description=t("What")))
        self._field("amount", widgets.Text(description=t("Amount")))
        self._field("source", widgets.Text(description=t("Came from"), placeholder=t("referral, website, ...")))
        self._field("expected_close", widgets.Text(description=t("Expected close"), placeholder="YYYY-MM-DD"))
        self._field("opportunity_id", widgets.Dropdown(description=t("Open deal")))
        self._field("stage", widgets.Dropdown(options=_choices(OPPORTUNITY_STAGES, column="opportunities.stage"),
                                              description=t("Move to")))
        self._field("lost_reason", widgets.Text(description=t("Why lost")))
        self.add = self._button(t("Add deal"), self._add)
        self.move = self._button(t("Move"), self._move, style="")

    def refresh(self) -> None:
        rows = self.desk.db.execute(
            "SELECT opportunity_id, title, stage, amount FROM opportunities WHERE customer_id = ? AND stage IN "
            f"({','.join('?' * len(OPEN_STAGES))}) ORDER BY opened_at", [self.desk.customer_id, *OPEN_STAGES]).fetchall()
        _set_options(self.fields["opportunity_id"], [
            (t("{title} ({stage})", title=_text(title) or t("untitled"), stage=tc("opportunities.stage", stage)) if amount is None else
             t("{title} ({stage}, {amount})", title=_text(title) or t("untitled"), stage=tc("opportunities.stage", stage), amount=f"{amount:,.0f}"),
             oid)
            for oid, title, stage, amount in rows])

    def enter(self, name: str) -> None:
        (self.move if name == "lost_reason" else self.add).click()

    def _add(self) -> EntryRecord:
        close = self.value("expected_close")
        try:
            day = str(clean_value(TABLES["opportunities"].column("expected_close"), close)) if close else None
        except ValueError:
            day = None  # not a date: the entry function refuses it beside the field
        if day is not None and day < dt.date.today().isoformat():
            self.ask("expected_close", close, t("is before the deal is opened (today)"))
        oid = entry.add_opportunity(self.desk.db, self.customer_id(), title=self.value("title"),
                                    amount=self.value("amount"), source=self.value("source"),
                                    expected_close=self.value("expected_close"))
        return _record(self.desk.db, t("deal '{title}' with {name}", title=self.value('title') or t("untitled"), name=self.desk.name()),
                       [("opportunities", (oid,), None)])

    def _move(self) -> EntryRecord:
        self.customer_id()
        oid, stage = self.fields["opportunity_id"].value, self.fields["stage"].value
        if oid is None:
            raise ValidationError("opportunity_id", "", t("this customer has no open deal"))
        if stage == "lost" and self.value("lost_reason") is None:
            raise ValidationError("lost_reason", "", t("say why it was lost (it helps you later)"))
        before = read_row(self.desk.db, "opportunities", key=(oid,))
        entry.move_opportunity(self.desk.db, oid, stage=stage,
                               lost_reason=self.value("lost_reason") if stage == "lost" else None)
        return _record(self.desk.db, t("deal moved to {stage}", stage=tc("opportunities.stage", stage)), [("opportunities", (oid,), before)])

    def widget(self) -> widgets.Widget:
        return widgets.VBox([*(self._row(n) for n in ("title", "amount", "source", "expected_close")), self.add,
                             widgets.HTML("<hr>"), *(self._row(n) for n in ("opportunity_id", "stage", "lost_reason")),
                             self.move, self.footer()])


class TaskForm(_Form):
    """Write down a task: when (``tuesday``, ``in 2 weeks`` or YYYY-MM-DD, :func:`day_from_words`),
    what to do, and whether it is about the chosen customer; Today lists it from that day on."""

    title = "Task"

    def __init__(self, desk: "Desk") -> None:
        super().__init__(desk)
        self._field("due", widgets.Text(description=t("Due"), placeholder=t("tuesday, in 2 weeks or YYYY-MM-DD")))
        self._field("note", widgets.Text(description=t("To do"), placeholder=t("e.g. call back about the quote")))
        self._field("about", widgets.Checkbox(description=t("About the chosen customer"), value=True, indent=False))
        self.save = self._button(t("Add task"), self._save)

    def _save(self) -> EntryRecord:
        typed = self.value("due")
        if typed is None:
            raise ValidationError("due", "", t("say when: tuesday, in 2 weeks or YYYY-MM-DD"))
        due = day_from_words(typed, today=self.desk.today)
        customer = self.customer_id() if self.fields["about"].value else None
        tid = entry.add_task(self.desk.db, due, note=self.value("note"), customer_id=customer)
        summary = t("task for {day} about {name}", day=due, name=self.desk.name()) if customer else t("task for {day}", day=due)
        return _record(self.desk.db, summary, [("tasks", (tid,), None)])


FORMS: tuple[type[_Form], ...] = (CustomerForm, InteractionForm, OrderForm, FeedbackForm, TicketForm, DealForm,
                                   TaskForm)
"""The desk's forms, one tab each, in the tabs' order (:meth:`Desk.form`)."""
_F = TypeVar("_F", bound=_Form)
_W = TypeVar("_W", bound=widgets.Widget)


# ------------------------------------------------------------------- correcting the timeline
EDIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("order_date", "status", "amount", "refunded_amount"),
    "interactions": ("occurred_at", "channel", "direction", "subject", "outcome", "notes"),
    "feedback": ("submitted_at", "nps", "csat", "score_quality", "score_delivery", "score_price", "score_service",
                 "comment"),
    "tickets": ("opened_at", "category", "priority", "status", "first_response_at", "closed_at", "csat"),
    "opportunities": ("title", "amount", "source", "stage", "probability", "opened_at", "expected_close", "closed_at",
                      "lost_reason"),
    TASKS.name: ("due", "note", "done_at"),
}
"""The fields the editor shows for each kind of timeline entry, in order (ids, the customer and
bookkeeping such as a deal's last activity stay as they are); an order also shows one quantity per line."""
_LABELS = {"order_date": "Date", "refunded_amount": "Paid back", "occurred_at": "When", "direction": "Who started",
           "submitted_at": "Date", "nps": "NPS (0–10)", "csat": "CSAT (1–5)", "score_quality": "Quality (1–5)",
           "score_delivery": "Delivery (1–5)", "score_price": "Price (1–5)", "score_service": "Service (1–5)",
           "opened_at": "Opened", "category": "Kind", "first_response_at": "First answer", "closed_at": "Closed",
           "title": "What", "source": "Came from", "probability": "Probability (0–1)",
           "expected_close": "Expected close", "lost_reason": "Why lost", "due": "Due", "note": "To do",
           "done_at": "Done at"}


def field_label(column: str) -> str:
    """The owner's name of the field that edits ``column`` (``"closed_at"`` → "Closed"), in the language in use."""
    return t(_LABELS.get(column, column.replace("_", " ").capitalize()))


_CORRECT = {"orders": "Correct this order of {when}", "interactions": "Correct this interaction of {when}",
            "feedback": "Correct this feedback of {when}", "tickets": "Correct this ticket of {when}",
            "opportunities": "Correct this deal of {when}", TASKS.name: "Correct this task of {when}"}
"""The editor's heading for each kind of entry, one whole sentence each (translated through :func:`t`)."""
_DELETE = {"orders": "Delete this order of {when}?", "interactions": "Delete this interaction of {when}?",
           "feedback": "Delete this feedback of {when}?", "tickets": "Delete this ticket of {when}?",
           "opportunities": "Delete this deal of {when}?", TASKS.name: "Delete this task of {when}?"}
_CORRECTED = {"orders": "correction of the order of {when} for {name}",
              "interactions": "correction of the interaction of {when} for {name}",
              "feedback": "correction of the feedback of {when} for {name}",
              "tickets": "correction of the ticket of {when} for {name}",
              "opportunities": "correction of the deal of {when} for {name}",
              TASKS.name: "correction of the task of {when} for {name}"}
_DELETED = {"orders": "order of {when} deleted for {name}", "interactions": "interaction of {when} deleted for {name}",
            "feedback": "feedback of {when} deleted for {name}", "tickets": "ticket of {when} deleted for {name}",
            "opportunities": "deal of {when} deleted for {name}", TASKS.name: "task of {when} deleted for {name}"}
_HAPPENED = {"orders": "order_date", "interactions": "occurred_at", "feedback": "submitted_at", "tickets": "opened_at"}
"""The date of an entry that has happened: moved after now, it is asked about once (:meth:`_Form.when`)."""


def _changed(column: Column, stored: Any, *, typed: Any) -> bool:
    """Whether the value typed in an editor field differs from the stored one (a value that does not
    fit the column counts as changed, for the entry function to refuse beside the field)."""
    if typed is None:
        return stored is not None
    try:
        return differs(stored, clean_value(column, typed))
    except ValueError:
        return True


class EntryEditor(_Form):
    """Correct or delete one entry of the chosen customer's timeline: "Edit" beside it opens this
    form filled with the entry ("Save changes" writes only what was changed, with the importer's
    rules, :func:`entry.edit_entry` / :func:`entry.edit_order`); "Delete" asks once ("Yes, delete
    it", :func:`entry.delete_entry`, an order with its lines). Each is one transaction and "Undo
    this change" takes it back, a deletion included. Adding stays in the tabs below."""

    title = "Correct an entry"
    label_width = "18em"  # "Units of Sencha green tea 100g" whole

    def __init__(self, desk: "Desk") -> None:
        super().__init__(desk)
        self.entry: TimelineEntry | None = None
        self.undo.description = t("Undo this change")
        self.heading = widgets.HTML()
        self.rows = widgets.VBox()
        self.save = self._button(t("Save changes"), self._save)
        self.confirm = self._button(t("Yes, delete it"), self._delete, style="danger")
        self.cancel = widgets.Button(description=t("Cancel"))
        self.cancel.on_click(lambda _: self.close())
        self.buttons = widgets.HBox()
        self.form = widgets.VBox([self.heading, self.rows, self.buttons], layout=widgets.Layout(display="none"))
        self.form.add_class("desk-editor")
        self.panel = widgets.VBox([self.form, self.footer()])
        self.anchor: str | None = None
        """The key of the timeline entry the panel is shown under (:meth:`Desk.place_editor`)."""

    def open(self, item: TimelineEntry, *, delete: bool = False) -> None:
        """Show ``item`` for correcting (``delete``: the question whether to delete it)."""
        row = read_row(self.desk.db, item.table, key=(item.key,))
        if row is None:
            self.message.value = _ERROR.format(html.escape(t("That entry is no longer in the store.")))
            self.desk.select(self.desk.customer_id)
            return
        self.entry = item
        self.fields, self.errors = {}, {}
        self.future_ok.value = self.sure.value = False
        self.future_ok.layout.display = self.sure.layout.display = "none"
        if delete:
            self.heading.value = ("<b>" + html.escape(t(_DELETE[item.table], when=item.at[:16])) + "</b> "
                                  f"{html.escape(item.what)}<br><small>"
                                  + html.escape(t("\u201cUndo this change\u201d afterwards brings it back.")) + "</small>")
            self.buttons.children = [self.confirm, self.cancel]
        else:
            self.heading.value = "<b>" + html.escape(t(_CORRECT[item.table], when=item.at[:16])) + "</b>"
            spec = schema_table(item.table)
            for name in EDIT_COLUMNS[item.table]:
                self._field(name, self._widget(spec.column(name), row.get(name), table=item.table))
            if item.table == "orders":
                products = self.desk.db.execute("SELECT product_id, name, unit_price FROM products ORDER BY name").fetchall()
                names = {pid: name for pid, name, _ in products}
                lines = entry.order_lines(self.desk.db, item.key)
                for line in lines:
                    pid = line["product_id"]
                    self._field(f"quantity:{pid}", widgets.Text(value=str(line["quantity"]),
                                                                description=t("Units of {product}", product=_text(names.get(pid)) or pid)))
                self._new_line_fields(products, on_order={line["product_id"] for line in lines},
                                      currency=_text(row.get("currency")))
            self.buttons.children = [self.save, self.cancel]
        for widget in self.fields.values():
            widget.layout.width = "40em"  # the value beside its label as wide as in the tabs (a phone: the full width)
        self.rows.children = [self._row(n) for n in self.fields]
        self.form.layout.display = ""
        self.anchor = item.key
        self.desk.place_editor()

    def _new_line_fields(self, products: list[tuple[str, Any, Any]], *, on_order: set[str], currency: str) -> None:
        """The fields of a product line to add to the order: a product not on it yet (list prices
        shown), its units (1 unless changed) and its unit price (blank: the list price)."""
        self._field("new_product", widgets.Dropdown(options=[("", None)] + [
            (t("{product} — no list price", product=_text(name) or pid) if price is None else
             t("{product} — {price}", product=_text(name) or pid, price=_money(f"{price:,.2f}", currency)), pid)
            for pid, name, price in products if pid not in on_order], value=None, description=t("Add a product")))
        self._field("new_quantity", widgets.Text(value="1", description=t("Its units")))
        self._field("new_unit_price", widgets.Text(description=t("Its unit price"), placeholder=t("its list price")))

    def _new_line(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The product line to add, as :func:`entry.edit_order` takes it: ``({product: units},
        {product: unit price})``, both empty when no product is picked; checked beside its fields
        with the importer's rules (a very large number of units asked about once)."""
        pid, units, price = (self.value(n) for n in ("new_product", "new_quantity", "new_unit_price"))
        if pid is None:
            if price is not None:
                raise ValidationError("new_product", "", t("pick the product of the new line"))
            return {}, {}
        counted = self._units("new_quantity", units)
        if counted is None or counted <= 0:
            raise ValidationError("new_quantity", units or "", t("give the number of units of the new line"))
        if price is None:
            return {pid: units}, {}
        try:
            clean_value(TABLES["order_items"].column("unit_price"), price)
        except ValueError as exc:
            raise ValidationError("new_unit_price", price, str(exc)) from None
        return {pid: units}, {pid: price}

    def _units(self, name: str, typed: Any) -> int | None:
        """The units typed in the field ``name``, checked by the importer's rules (None when blank or 0,
        which removes a line); a very large number is asked about once (:meth:`ask`)."""
        if typed is None or str(typed) == "0":
            return None
        try:
            units = int(clean_value(TABLES["order_items"].column("quantity"), typed))
        except ValueError as exc:
            raise ValidationError(name, typed, str(exc)) from None
        if units >= LARGE_QUANTITY:
            self.ask(name, typed, t("is {units} units", units=f"{units:,}"))
        return units

    def _widget(self, column: Column, stored: Any, *, table: str) -> widgets.ValueWidget:
        """A field for ``column`` of ``table`` holding ``stored``: a list for a column of allowed values, else text."""
        label = field_label(column.name)
        if column.allowed:
            options = [("", None)] * (not column.required) + _choices(column.allowed, column=f"{table}.{column.name}")
            if stored is not None and stored not in column.allowed:
                options.append((str(stored), stored))
            return widgets.Dropdown(options=options, value=stored, description=label)
        if column.name in ("notes", "comment", "note"):
            return widgets.Textarea(value=_text(stored), description=label)
        money = column.name in ("amount", "refunded_amount") and isinstance(stored, (int, float))
        return widgets.Text(value=f"{stored:.2f}" if money else _text(stored), description=label)

    def close(self) -> None:
        """Hide the form (the message and "Undo this change" stay)."""
        self.entry = None
        self.form.layout.display = "none"
        self.heading.value = ""
        self.rows.children = ()

    def clear(self) -> None:
        self.close()

    def _item(self) -> TimelineEntry:
        if self.entry is None:
            raise ValidationError("entry", "", t("choose an entry of the timeline first (Edit or Delete beside it)"))
        return self.entry

    def _quantities(self, lines: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The order's ``lines`` (by product) whose number of units was changed: ``{product_id: units as
        typed}`` (blank or 0 removes the line)."""
        column = TABLES["order_items"].column("quantity")
        quantities = {}
        for name in (n for n in self.fields if n.startswith("quantity:")):
            typed, pid = self.value(name), name.split(":", 1)[1]
            if typed is None or str(typed) == "0" or _changed(column, lines[pid]["quantity"], typed=typed):
                self._units(name, typed)
                quantities[pid] = typed
        return quantities

    def _save(self) -> EntryRecord:
        item, db = self._item(), self.desk.db
        spec = schema_table(item.table)
        before = read_row(db, item.table, key=(item.key,)) or {}
        changes = {name: self.value(name) for name in EDIT_COLUMNS[item.table]
                   if _changed(spec.column(name), before.get(name), typed=self.value(name))}
        date = _HAPPENED.get(item.table)
        if date in changes:
            changes[date] = self.when(date, table=item.table, column=date)
        lines: dict[str, dict[str, Any]] = {}
        quantities: dict[str, Any] = {}
        prices: dict[str, Any] = {}
        if item.table == "orders":
            lines = {l["product_id"]: l for l in entry.order_lines(db, item.key)}
            quantities = self._quantities(lines)
            added, prices = self._new_line()
            quantities.update(added)
        if not (changes or quantities):
            raise ValidationError("entry", "", t("nothing was changed: correct a value first, or press Cancel"))
        if item.table == "orders":
            try:
                entry.edit_order(db, item.key, quantities=quantities, prices=prices, **changes)
            except ValidationError as exc:  # the new line's price, refused by the importer's rules
                field = {"unit_price": "new_unit_price", "product_id": "new_product"}.get(exc.column, exc.column)
                raise ValidationError(field, exc.value, exc.reason) from None
        else:
            entry.edit_entry(db, item.table, entry_id=item.key, **changes)
        after = {l["product_id"] for l in entry.order_lines(db, item.key)} if item.table == "orders" else set()
        return _record(db, t(_CORRECTED[item.table], when=item.at[:16], name=self.desk.name()),
                       [(item.table, (item.key,), before),
                        *(("order_items", (item.key, p), lines.get(p)) for p in sorted(set(lines) | after))])

    def _delete(self) -> EntryRecord:
        item, db = self._item(), self.desk.db
        before = read_row(db, item.table, key=(item.key,))
        lines = entry.order_lines(db, item.key) if item.table == "orders" else []
        entry.delete_entry(db, item.table, entry_id=item.key)
        return _record(db, t(_DELETED[item.table], when=item.at[:16], name=self.desk.name()),
                       [(item.table, (item.key,), before),
                        *(("order_items", (item.key, l["product_id"]), l) for l in lines)])

    def complete(self, item: TimelineEntry) -> None:
        """Mark the open task ``item`` done now and log the contact (a call), as Today's "Done" does."""
        self.close()
        self.entry = item
        self.anchor = item.key
        self.run(self._complete)

    def _complete(self) -> EntryRecord:
        item, db = self._item(), self.desk.db
        before = read_row(db, item.table, key=(item.key,))
        iid = entry.complete_task(db, item.key)
        return _record(db, t("task done: {note}", note=_text((before or {}).get('note')) or t("follow-up")),
                       [(item.table, (item.key,), before), *([("interactions", (iid,), None)] if iid else [])])

    def widget(self) -> widgets.Widget:
        """The form, its message and "Undo this change": shown under the entry it concerns."""
        return self.panel


# -------------------------------------------------------------------------------- today
@dataclass
class TodayItem:
    """One reason to act today: whom (None: a task about nobody), why in plain words, and its kind
    (:data:`KINDS`); ``task_id`` for a task."""

    customer_id: str | None
    why: str
    kind: str
    task_id: str | None = None


KINDS = ("task", "follow-up", "ticket", "deal", "anniversary")
"""The kinds of Today's reasons, in the order they are listed: tasks due first."""


@dataclass
class TodayLine:
    """One line of Today: one person (never twice) with every reason, their phone and e-mail, and
    the tasks "Done" and "Snooze" act on; or one task about nobody."""

    customer_id: str | None
    label: str
    phone: str
    email: str
    reasons: list[str]
    task_ids: list[str]

    def html(self) -> str:
        """The line as the page shows it: the name, ``tel:`` and ``mailto:`` links, the reasons."""
        links = []
        if self.phone:
            dial = "".join(ch for ch in self.phone if ch.isdigit() or ch == "+")
            links.append(f'<a href="tel:{html.escape(dial)}">{html.escape(self.phone)}</a>')
        if self.email:
            links.append(f'<a href="mailto:{html.escape(self.email)}">{html.escape(self.email)}</a>')
        contact = f' <span class="desk-contact">{" · ".join(links)}</span>' if links else ""
        return (f"<b>{html.escape(self.label)}</b>{contact}<br>"
                f"<span class='desk-why'>{html.escape('; '.join(self.reasons))}</span>")


def call_list(db: Database, as_of: dt.date) -> followup.FollowUpQueue:
    """The call list of notebook 03 (:func:`followup.follow_up_queue_as_of`, the same triggers, reasons,
    contacts and money at stake; only the logistic model is fitted, the one that scores) as of
    ``as_of``; memoized on the store's state, so a standby kernel's scoring is the page's."""
    return followup.follow_up_queue_as_of(db, as_of, kinds=("logistic",))


def follow_up(db: Database, as_of: dt.date, *, top_n: int = SHOWN_ROWS) -> pd.DataFrame:
    """The ``top_n`` first rows of :func:`call_list` as of ``as_of``: :data:`followup.QUEUE_COLUMNS`."""
    return call_list(db, as_of).table.head(top_n)


def _due_tasks(db: Database, as_of: dt.date) -> list[TodayItem]:
    """Open tasks due by ``as_of`` (:func:`crm_helpers.store.facts.task_due_sql`), the oldest due first."""
    rows = db.execute(f"SELECT task_id, customer_id, due, note FROM {TASKS.name} WHERE {task_due_sql(':day')} "
                      "ORDER BY due, created_at", {"day": as_of.isoformat()}).fetchall()
    items = []
    for task_id, customer_id, due, note in rows:
        late = (as_of - dt.date.fromisoformat(due)).days
        why = (t("{task} (due today)", task=note or t("task")) if late == 0 else
               tn("{task} (overdue by {n} day)", "{task} (overdue by {n} days)", n=late, task=note or t("task")))
        items.append(TodayItem(customer_id, why, "task", task_id))
    return items


@dataclass(frozen=True)
class BookToday:
    """The parts of Today read from the whole book, computed once per store state and day
    (:func:`book_today`): the call list (``queue``), open deals gone quiet or overdue (``deals``) and
    first-purchase anniversaries (``anniversaries``). A save at the desk does not recompute them
    (seconds on a large store); the people it concerns leave Today at once by :func:`today_items`'
    rules (contacted, snoozed, erased), and the next page, or the standby kernel after any write,
    computes them afresh."""

    queue: followup.FollowUpQueue
    deals: tuple[TodayItem, ...]
    anniversaries: tuple[TodayItem, ...]


@memoized
def book_today(db: Database, as_of: dt.date) -> BookToday:
    """:class:`BookToday` as of ``as_of``: :func:`call_list`, :func:`_deals` and :func:`_anniversaries`.
    Memoized on the store's state (:func:`~crm_helpers.store.queries.memoized`), so the standby
    kernel's computation (:func:`warm_up`) is the page's; treat it as read-only."""
    return BookToday(call_list(db, as_of), tuple(_deals(db, as_of)), tuple(_anniversaries(db, as_of)))


def today_items(db: Database, as_of: dt.date, *, book: BookToday | None = None) -> list[TodayItem]:
    """What to do today, in the order of :data:`KINDS`: tasks due or overdue (the oldest first), the
    head of the call list (``book.queue``, default :func:`book_today`; each reason in the owner's
    words, :attr:`followup.Reason.plain`, worded from the same facts as the pack's), open tickets by
    age (oldest first), open deals gone quiet or overdue and first-purchase anniversaries in the next
    :data:`ANNIVERSARY_DAYS` days (``book``'s). Tasks and tickets are read now.
    Apart from tasks, people contacted on or since ``as_of`` and not later than now (an interaction
    logged: one dated in the future has not happened yet, so it hides nobody), people with an open
    task due later (snoozed) and erased people are left out; at most :data:`SHOWN_ROWS` per kind."""
    book = book_today(db, as_of) if book is None else book
    items = _due_tasks(db, as_of)
    items += [TodayItem(cid, "; ".join(book.queue.plain_reasons(cid)), "follow-up")
              for cid in book.queue.table["customer_id"].head(SHOWN_ROWS)]
    tickets = backlog(db, as_of)
    items += [TodayItem(r.customer_id, t("{kind} open for {days} days", kind=t(_text(r.category) or "ticket"),
                                         days=f"{r.age_days:.0f}") if r.answered else
                        t("{kind} open for {days} days, not answered yet", kind=t(_text(r.category) or "ticket"),
                          days=f"{r.age_days:.0f}"), "ticket")
              for r in tickets.sort_values("age_days", ascending=False).itertuples()]
    items += [*book.deals, *book.anniversaries]
    return _shown(db, as_of, items)


def _deals(db: Database, as_of: dt.date) -> list[TodayItem]:
    """Open deals gone quiet (:func:`crm_helpers.store.facts.deal_stale`, more than
    :data:`~crm_helpers.store.facts.STALE_DAYS` days) or overdue (:func:`crm_helpers.store.facts.deal_overdue`)."""
    opps = opportunities_as_of(db, as_of)
    quiet = stale_opportunities(opps)
    items = [TodayItem(r.customer_id, t("deal '{title}' with no news for {days} days",
                                        title=_text(r.title) or t("untitled"), days=r.days_since_activity), "deal")
             for r in quiet.itertuples()]
    overdue = opps[deal_overdue(opps["status_at"], opps["expected_close"], as_of=as_of)
                   & ~opps["opportunity_id"].isin(quiet["opportunity_id"])]
    items += [TodayItem(r.customer_id, t("deal '{title}' was expected to close on {day}",
                                         title=_text(r.title) or t("untitled"), day=f"{r.expected_close:%Y-%m-%d}"),
                        "deal") for r in overdue.itertuples()]
    return items


_FIRST_ORDERS_SQL = f"""
SELECT customer_id, MIN(order_date) FROM orders NOT INDEXED
WHERE {paid()} AND customer_id IS NOT NULL AND {on_or_before_sql("order_date")}
GROUP BY customer_id HAVING substr(MIN(order_date), 6, 5) IN (SELECT value FROM json_each(:days))
"""
"""Customers whose first paid order (``customer_features``' ``first_order``) fell on one of the
month-days ``:days`` (a JSON list of ``MM-DD``), with that order's date; one pass over the orders,
without a row per customer in Python."""


def _anniversaries(db: Database, as_of: dt.date) -> list[TodayItem]:
    """First-purchase anniversaries (1 year or more) in the :data:`ANNIVERSARY_DAYS` days from ``as_of``;
    a first order on 29 February is remembered on 28 February in a common year."""
    window = [as_of + dt.timedelta(days=n) for n in range(ANNIVERSARY_DAYS)]
    days = {f"{d:%m-%d}" for d in window} | ({"02-29"} if any((d.month, d.day) == (2, 28) for d in window) else set())
    rows = db.execute(_FIRST_ORDERS_SQL, {"days": json.dumps(sorted(days)), "end_next": next_day(as_of)}).fetchall()
    items = []
    for customer_id, first_text in sorted(rows):
        first = dt.date.fromisoformat(str(first_text)[:10])
        for years in (as_of.year - first.year, as_of.year - first.year + 1):
            try:
                day = first.replace(year=first.year + years)
            except ValueError:  # 29 February in a common year
                day = first.replace(year=first.year + years, day=28)
            if years >= 1 and 0 <= (day - as_of).days < ANNIVERSARY_DAYS:
                why = (tn("{n} year as a customer today", "{n} years as a customer today", n=years) if day == as_of
                       else tn("{n} year as a customer on {day}", "{n} years as a customer on {day}", n=years,
                               day=_weekday_day(day)))
                items.append(TodayItem(customer_id, why, "anniversary"))
    return items


def _shown(db: Database, as_of: dt.date, items: list[TodayItem]) -> list[TodayItem]:
    """Leave out, except tasks, people contacted since ``as_of`` began, up to now
    (:func:`facts.contacted_since_sql`, the call list's rule: a contact dated in the future does not
    count) and people with an open task due after ``as_of`` (snoozed); leave out people the desk may
    not show; cap each kind. Reads, in batches by key, only the people it needs to fill each kind's
    :data:`SHOWN_ROWS`, not the whole book (thousands of open tickets on a large store)."""
    until = (dt.datetime.now() + dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    later = {r[0] for r in db.execute(f"SELECT customer_id FROM {TASKS.name} WHERE customer_id IS NOT NULL AND "
                                      f"{task_open_sql()} AND NOT {task_due_sql(':day')}", {"day": as_of.isoformat()})}
    known: dict[str, tuple[bool, bool]] = {}  # customer_id: (the desk may show them, contacted since as_of began)

    def look_up(ids: set[str]) -> None:
        chunk = sorted(ids - known.keys())
        if chunk:
            rows = db.execute(f"SELECT c.customer_id, {contacted_since_sql('c.customer_id', '?', until='?')} FROM "
                              f"customers AS c WHERE {_CONTACTABLE} AND c.customer_id IN ({','.join('?' * len(chunk))})",
                              [as_of.isoformat(), until, *chunk]).fetchall()
            known.update({cid: (False, False) for cid in chunk})
            known.update({cid: (True, bool(was)) for cid, was in rows})

    def keep(item: TodayItem) -> bool:
        if item.customer_id is None:
            return item.kind == "task"
        showable, contacted = known[item.customer_id]
        return showable and (item.kind == "task" or not contacted and item.customer_id not in later)

    kept: list[TodayItem] = []
    for kind in KINDS:
        mine, taken = [i for i in items if i.kind == kind], []
        for start in range(0, len(mine), 100):
            batch = mine[start:start + 100]
            look_up({i.customer_id for i in batch if i.customer_id is not None})
            taken += [i for i in batch if keep(i)]
            if len(taken) >= SHOWN_ROWS:
                break
        kept += taken[:SHOWN_ROWS]
    return kept


def today_lines(db: Database, items: list[TodayItem]) -> list[TodayLine]:
    """Today's ``items`` as lines, one per person in the order they first appear (a task about
    nobody is a line of its own), with their name, phone and e-mail read from the store now."""
    ids = sorted({i.customer_id for i in items if i.customer_id is not None})
    people = {cid: (customer_label(n, None, company=c, customer_id=cid), _text(p), _text(e))
              for cid, n, e, c, p in db.execute(
                  "SELECT customer_id, name, email, company, phone FROM customers WHERE customer_id IN "
                  f"({','.join('?' * len(ids))})", ids).fetchall()} if ids else {}
    lines: dict[str, TodayLine] = {}
    for item in items:
        key = item.customer_id or f"task:{item.task_id}"
        if key not in lines:
            label, phone, email = people.get(item.customer_id or "", (t("To do"), "", ""))
            lines[key] = TodayLine(item.customer_id, label, phone, email, [], [])
        line = lines[key]
        line.reasons += [why for why in item.why.split("; ") if why not in line.reasons]
        if item.task_id:
            line.task_ids.append(item.task_id)
    return list(lines.values())


_ZH_DAYS = {"今天": 0, "明天": 1, "后天": 2}
"""Days said in Chinese, as days after today (:func:`day_from_words`)."""


def day_from_words(text: str, *, today: dt.date) -> str:
    """A day typed as the owner says it, as YYYY-MM-DD: ``2026-12-08``, ``today``, ``tomorrow``, a
    weekday (``tuesday``, ``tue``: the next one after today), ``in 3 days``, ``in 2 weeks``; the same
    in Chinese (``今天``, ``明天``, ``后天``, ``周二`` / ``星期二`` / ``下周二``, ``3天后``, ``2周后``). Other
    text is returned as typed, for the schema's check to refuse beside the field."""
    words = text.strip().lower()
    if words in ("today", "tomorrow") or words in _ZH_DAYS:
        return (today + dt.timedelta(days=_ZH_DAYS.get(words, words == "tomorrow"))).isoformat()
    weekday = re.fullmatch(r"下?(?:周|星期|礼拜)([一二三四五六日天])", words)
    if weekday:
        words = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "sunday")[
            "一二三四五六日天".index(weekday.group(1))]
    later = re.fullmatch(r"(\d+)\s*(天|日|周|星期|个星期)后", words)
    if later:
        words = f"in {later.group(1)} {'days' if later.group(2) in ('天', '日') else 'weeks'}"
    for number, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")):
        if words in (name, name[:3], f"next {name}"):
            return (today + dt.timedelta(days=(number - today.weekday() - 1) % 7 + 1)).isoformat()
    parts = words.split()
    if len(parts) == 3 and parts[0] == "in" and parts[1].isdigit() and parts[2].rstrip("s") in ("day", "week"):
        return (today + dt.timedelta(days=int(parts[1]) * (7 if parts[2].startswith("week") else 1))).isoformat()
    return text.strip()


class TodayList(_Undoable):
    """Today, at the top of the desk: one line per person with "Done" and "Snooze".

    "Done" logs the contact now (the channel and optional note above the list) and marks the
    person's due tasks done, in one transaction; "Snooze" moves their due tasks to the day in
    "Snooze to" (default tomorrow), or, for a person without one, writes a task for that day, so
    they leave Today until then. "Undo" takes the last one back. The book-wide parts (the call
    list, quiet deals, anniversaries: :func:`book_today`) are computed once (:meth:`recompute`; in
    the desk server's standby kernel before the page opens, see :func:`warm_up`); tasks, tickets and
    who was contacted or snoozed are re-read after every save."""

    def __init__(self, desk: "Desk") -> None:
        self.desk = desk
        wide = {"description_width": "7em"}
        self.channel = widgets.Dropdown(options=_choices(INTERACTION_CHANNELS, column="interactions.channel"), value="call",
                                        description=t("Contacted by"),
                                        style=wide, layout=widgets.Layout(width="16em"))
        self.note = widgets.Text(description=t("Note"), placeholder=t("optional, e.g. left a message"), style=wide)
        self.snooze_to = widgets.Text(description=t("Snooze to"), value=t("tomorrow"), style=wide,
                                      placeholder=t("tomorrow, tuesday, in 2 weeks or YYYY-MM-DD"))
        self.message = widgets.HTML()
        self.undo = widgets.Button(description=t("Undo"), layout=widgets.Layout(display="none"))
        self.undo.on_click(lambda _: self._undo())
        self.last: EntryRecord | None = None
        self.box = widgets.VBox()
        self.items: list[TodayItem] = []
        self.lines: list[TodayLine] = []
        self.buttons: dict[str, tuple[widgets.Button, widgets.Button]] = {}
        self.heading = widgets.HTML()
        self._panel: widgets.VBox | None = None
        self._drawn: dict[str, tuple[tuple[str, tuple[str, ...]], widgets.HBox]] = {}
        """Each line's key: what it said (its HTML and tasks) and its row, reused while it says the same."""
        self.book: BookToday | None = None

    def recompute(self) -> None:
        """Score the customers again (seconds on a large store, none when the standby kernel has)
        and redraw."""
        self.book = book_today(self.desk.db, self.desk.today)
        self.refresh()

    def refresh(self) -> None:
        """Redraw from the store (tasks, tickets, who was contacted or snoozed), with the book's
        parts (:class:`BookToday`) as last computed."""
        if self.book is None:
            self.recompute()
            return
        self.items = today_items(self.desk.db, self.desk.today, book=self.book)
        self.lines = today_lines(self.desk.db, self.items)
        self.heading.value = ("<h3>" + html.escape(t("Today ({count})", count=len(self.lines))) + "</h3>"
                              + ("" if self.lines else "<i>" + html.escape(t("nothing to do today")) + "</i>"))
        # one layout and style for all lines' buttons, text and rows, and a line kept while it says the
        # same: fewer widget models for the page to fetch when it opens and after each save
        share = self.desk.shared
        button, text, box = share(widgets.Layout, width="6em"), share(widgets.Layout, flex="1 1 20em"), share(widgets.Layout)
        style, look = share(widgets.ButtonStyle), share(HTMLStyle)
        drawn, self.buttons = self._drawn, {}
        self._drawn = {}
        for line in self.lines:
            key = line.customer_id or line.task_ids[0]
            said = (line.html(), tuple(line.task_ids))
            if key in drawn and drawn[key][0] == said:
                row = drawn[key][1]
            else:
                done = widgets.Button(description=t("Done"), button_style="success", layout=button, style=style)
                done.on_click(lambda _, l=line: self.done(l))
                snooze = widgets.Button(description=t("Snooze"), layout=button, style=style)
                snooze.on_click(lambda _, l=line: self.snooze(l))
                row = widgets.HBox([widgets.HTML(said[0], layout=text, style=look), done, snooze], layout=box)
                row.add_class("desk-line")
            self._drawn[key] = (said, row)
            self.buttons[key] = (row.children[1], row.children[2])
        self.box.children = [self.heading, *(row for _, row in self._drawn.values())]
        for said, row in drawn.values():
            if row not in self.box.children:  # a line gone or changed: its widgets are dropped
                for widget in (*row.children, row):
                    widget.close()

    def _saved(self, record: EntryRecord, verb: str) -> None:
        self.last = record
        self.note.value = ""
        self.message.value = _OK.format(html.escape(verb.format(summary=record.summary))) + _written(record)
        self.undo.layout.display = ""
        self.desk.changed()

    def _failed(self, exc: Exception) -> None:
        shown = f"{exc.value!r}: {exc.reason}" if isinstance(exc, ValidationError) and exc.value else str(exc)
        self.message.value = _ERROR.format(html.escape(t("Not saved: {reason}", reason=shown)))

    def done(self, line: TodayLine) -> None:
        """Log the contact (now, the channel and note above the list) and mark the line's tasks done."""
        db, note = self.desk.db, _blank_to_none(self.note.value)
        before = {tid: read_row(db, TASKS.name, key=(tid,)) for tid in line.task_ids}
        changes: list[tuple[str, tuple[Any, ...], dict[str, Any] | None]] = []
        try:
            with write_transaction(db):
                for n, tid in enumerate(line.task_ids):
                    iid = entry.complete_task(db, tid, channel=self.channel.value if n == 0 else None, notes=note)
                    changes += [("tasks", (tid,), before[tid])] + ([("interactions", (iid,), None)] if iid else [])
                if line.customer_id is not None and not line.task_ids:
                    iid = entry.log_interaction(db, line.customer_id, channel=self.channel.value,
                                                subject=t("follow-up: {reasons}", reasons="; ".join(line.reasons)), outcome="contacted",
                                                notes=note)
                    changes.append(("interactions", (iid,), None))
        except CrmError as exc:
            self._failed(exc)
            return
        self._saved(_record(db, f"{line.label}", changes), t("Done: {summary}."))

    def snooze(self, line: TodayLine) -> None:
        """Move the line's tasks to the "Snooze to" day, or write a task for that day for its person."""
        db = self.desk.db
        until = day_from_words(self.snooze_to.value, today=self.desk.today)
        before = {tid: read_row(db, TASKS.name, key=(tid,)) for tid in line.task_ids}
        try:
            with write_transaction(db):
                for tid in line.task_ids:
                    entry.snooze_task(db, tid, until=until)
                changes = [("tasks", (tid,), before[tid]) for tid in line.task_ids]
                if not line.task_ids:
                    tid = entry.add_task(db, until, note=t("follow up: {reasons}", reasons="; ".join(line.reasons)),
                                         customer_id=line.customer_id)
                    changes.append(("tasks", (tid,), None))
        except CrmError as exc:
            self._failed(exc)
            return
        self._saved(_record(db, t("{name} until {day}", name=line.label, day=until), changes), t("Snoozed: {summary}."))

    def widget(self) -> widgets.Widget:
        """The panel: the lines, the channel and note "Done" writes, "Snooze to", the message and
        "Undo" (built once: the same panel each time)."""
        if self._panel is None:
            again = widgets.Button(description=t("Score again"))
            again.on_click(lambda _: self.recompute())
            self._panel = widgets.VBox([self.box, widgets.HBox([self.channel, self.note]),
                                        widgets.HBox([self.snooze_to, again]), widgets.HBox([self.message, self.undo])])
            self._panel.add_class("desk-today")
        return self._panel


# ------------------------------------------------------------------------------ standby
@dataclass
class _Standby:
    """A kernel waiting for the next page (:func:`warm_up`): its store, the watcher that keeps
    today's call list scored while it waits, and the page's desk built ahead (``desk``, with the
    store's state it was drawn from, ``drawn``)."""

    db_path: str
    db: Database
    stop: threading.Event
    watcher: threading.Thread
    desk: "Desk"
    drawn: tuple[int, str]


_standby: _Standby | None = None


def _store_version(db: Database) -> tuple[int, str]:
    """Changes whenever another connection commits a write (``PRAGMA data_version``) or the day turns."""
    return int(db.execute("PRAGMA data_version").fetchone()[0]), dt.date.today().isoformat()


def warm_up(db_path: str = "", *, poll_s: float = STANDBY_POLL_S) -> None:
    """Make this kernel ready for the desk's next page (the desk server's standby kernel,
    :func:`crm_helpers.desk_server.standby_kernel_manager`): open the store at ``db_path`` (blank: the
    default store), compute today's book-wide parts of Today (:func:`book_today`: the call list scored,
    quiet deals, anniversaries; memoized on the store's state), and
    score it again once after each write by anyone (looked for every ``poll_s`` seconds) until a
    page takes the kernel (:meth:`Desk.open` with the same ``db_path``), so the page shows it at
    once. Only one standby per kernel: calling it again replaces the first."""
    global _standby
    _release_standby()
    set_language(report_language())  # Today's reasons are written in the owner's language when scored
    db = open_db(db_path or None)
    book_today(db, dt.date.today())
    desk = Desk(db)  # the page's widgets, drawn ahead: the page's cells only show them
    desk.today_panel()
    desk.entry_panel()
    drawn = _store_version(db)
    stop = threading.Event()

    def watch() -> None:
        seen = _store_version(db)
        while not stop.wait(poll_s):
            now = _store_version(db)
            if now != seen:
                book_today(db, dt.date.today())
                seen = now

    watcher = threading.Thread(target=watch, name="desk-standby", daemon=True)
    watcher.start()
    _standby = _Standby(db_path, db, stop, watcher, desk, drawn)


def _release_standby() -> _Standby | None:
    """Stop the standby's watcher (waiting for a scoring under way) and hand it over."""
    global _standby
    if _standby is None:
        return None
    standby, _standby = _standby, None
    standby.stop.set()
    standby.watcher.join()
    return standby


# --------------------------------------------------------------------------------- desk
class Desk:
    """The selected customer, a search box, the forms (as tabs) and the Today list, over one store.

    ``today`` fixes the day the Today list is for (default: the local date); forms still stamp
    entries with the current time unless a time is typed in.
    """

    def __init__(self, db: Database, *, today: dt.date | str | None = None) -> None:
        self.db = db
        self.today = as_date(today) if today else dt.date.today()
        self.customer_id: str | None = None
        self.search = widgets.Text(description=t("Find"), placeholder=t("part of a name, e-mail, phone or company"),
                                   continuous_update=True)
        self.matches = widgets.Select(options=[], rows=6, description=t("Customers"),
                                      layout=widgets.Layout(width="48em"))
        self.selected = widgets.HTML()
        self.more = widgets.HTML()
        self.timeline = widgets.VBox()
        self.timeline.add_class("desk-timeline")
        self._editor: EntryEditor | None = None
        self._shared: dict[tuple[Any, ...], widgets.Widget] = {}
        self._editor_at = 0
        self._timeline_keys: list[str] = []
        self._timeline_drawn: dict[TimelineEntry, widgets.HBox] = {}
        """Each timeline entry shown and its row, kept while the entry says the same."""
        self.search.observe(lambda _: self.find(), names="value")
        self.matches.observe(lambda change: change["new"] and self.select(change["new"]), names="value")
        self._forms: dict[type[_Form], _Form] = {}
        self._pages: list[widgets.Box] = []
        self._entry: widgets.Widget | None = None
        self.today_list = TodayList(self)
        self.select(None)

    def shared(self, kind: type[_W], **traits: Any) -> _W:
        """One ``kind`` of style or layout with ``traits``, shared by every widget that asks for it and
        never changed afterwards: the page fetches and draws one model instead of one per widget."""
        key = (kind, *sorted(traits.items()))
        if key not in self._shared:
            self._shared[key] = kind(**traits)
        return self._shared[key]  # type: ignore[return-value]

    @property
    def editor(self) -> "EntryEditor":
        """The timeline's editor (:class:`EntryEditor`), built when first used (Edit, Delete or Done
        beside an entry) and shown under the entry it concerns from then on."""
        if self._editor is None:
            self._editor = EntryEditor(self)
        return self._editor

    def form(self, kind: type[_F]) -> _F:
        """The desk's form of ``kind`` (one of :data:`FORMS`), built the first time it is asked for
        (its tab opened, or a save from code): a page shows only the widgets of the tabs opened, so
        it gets fewer of them to fetch and draw when it opens."""
        built = self._forms.get(kind)
        if built is None:
            built = self._forms[kind] = kind(self)
            built.refresh()
            if isinstance(built, CustomerForm):
                built.show(_customer(self.db, self.customer_id))
            if self._pages:
                self._pages[FORMS.index(kind)].children = (built.widget(),)
        return built  # type: ignore[return-value]

    @property
    def forms(self) -> list[_Form]:
        """The forms built so far (:meth:`form`), in the tabs' order."""
        return [self._forms[kind] for kind in FORMS if kind in self._forms]

    @property
    def customer(self) -> CustomerForm:
        """The "Customer" tab's form."""
        return self.form(CustomerForm)

    @property
    def interaction(self) -> InteractionForm:
        """The "Interaction" tab's form."""
        return self.form(InteractionForm)

    @property
    def order(self) -> OrderForm:
        """The "Order" tab's form."""
        return self.form(OrderForm)

    @property
    def feedback(self) -> FeedbackForm:
        """The "Feedback" tab's form."""
        return self.form(FeedbackForm)

    @property
    def ticket(self) -> TicketForm:
        """The "Ticket" tab's form."""
        return self.form(TicketForm)

    @property
    def deal(self) -> DealForm:
        """The "Deal" tab's form."""
        return self.form(DealForm)

    @property
    def task(self) -> TaskForm:
        """The "Task" tab's form."""
        return self.form(TaskForm)

    @classmethod
    def open(cls, db_path: str = "", today: str = "") -> "Desk":
        """The desk on the store at ``db_path`` (blank: the default store); in a standby kernel
        (:func:`warm_up` on the same store) it takes over the store and today's scored call list."""
        set_language(report_language())  # $CRM_LANG, as for the pack (``crm desk --lang`` sets it)
        standby = _release_standby() if _standby is not None and _standby.db_path == db_path else None
        if standby is None:
            return cls(open_db(db_path or None), today=today or None)
        desk, now = standby.desk, _store_version(standby.db)
        if (as_date(today) if today else dt.date.today()) != desk.today or now[1] != standby.drawn[1]:
            return cls(standby.db, today=today or None)  # another day than the one drawn
        if now != standby.drawn:  # written meanwhile: Today as the watcher scored it, the lists re-read
            desk.today_list.recompute()
            desk.changed()
        return desk

    def current(self) -> dict[str, Any] | None:
        """The selected customer's row; drops the selection when the row is gone or erased."""
        row = _customer(self.db, self.customer_id)
        if row is None and self.customer_id is not None:
            self.select(None)
        return row

    def drop_gone(self) -> None:
        """Stop showing anything of rows removed or erased since they were shown."""
        self.current()
        for form in (*self.forms, *[self._editor] * (self._editor is not None)):
            form.drop_if_gone()

    def name(self) -> str:
        row = self.current() or {}
        return customer_label(row.get("name"), None, company=None, customer_id=str(self.customer_id))

    def find(self) -> None:
        """List the customers matching the search box."""
        self.drop_gone()
        found = find_customers(self.db, self.search.value)
        self.matches.options = found
        self.matches.value = None
        more = count_customers(self.db, self.search.value) - len(found) if len(found) == SEARCH_LIMIT else 0
        self.more.value = "<i>" + html.escape(t("{count} more: type more of the name, e-mail, phone or company", count=f"{more:,}")) + "</i>" if more else ""

    def select(self, customer_id: str | None) -> None:
        """Make ``customer_id`` the customer the forms write for (None: nobody)."""
        row = _customer(self.db, customer_id)
        if (row or {}).get("customer_id") != self.customer_id and self._editor is not None:
            self._editor.close()  # another person: their entry is not on screen any more
            self._editor.anchor = None
        self.customer_id = row["customer_id"] if row else None
        self.selected.value = ("<b>" + html.escape(t("Now working on:")) + "</b> " + html.escape(customer_label(
                                   row["name"], row["email"], company=row["company"], customer_id=row["customer_id"]))
                               if row else "<i>" + html.escape(t("No customer chosen: find one above, or add a new one.")) + "</i>")
        if row is None:
            self.matches.value = None
        self.timeline.children = self._timeline_rows(customer_timeline(self.db, row["customer_id"]) if row else [])
        self.place_editor()
        self.customer.show(row)
        for form in self.forms:
            form.refresh()

    def _timeline_rows(self, entries: list[TimelineEntry]) -> list[widgets.Widget]:
        """One line per entry, with "Edit" and "Delete" (:class:`EntryEditor`); an open task also "Done"."""
        button, text = self.shared(widgets.Layout, width="5.5em"), self.shared(widgets.Layout, flex="1 1 20em")
        style, box, look = self.shared(widgets.ButtonStyle), self.shared(widgets.Layout), self.shared(HTMLStyle)
        rows: list[widgets.Widget] = []
        drawn, self._timeline_drawn = self._timeline_drawn, {}
        for item in entries:
            if item in drawn:  # the entry says the same as when drawn: its row stays (nothing to re-send)
                rows.append(self._timeline_drawn.setdefault(item, drawn[item]))
                continue
            edit = widgets.Button(description=t("Edit"), layout=button, style=style)
            edit.on_click(lambda _, i=item: self.editor.open(i))
            delete = widgets.Button(description=t("Delete"), layout=button, style=style)
            delete.on_click(lambda _, i=item: self.editor.open(i, delete=True))
            line = widgets.HTML(f"<small>{html.escape(item.at[:16])}</small> <b>{html.escape(t(item.kind))}</b> "
                                f"{html.escape(item.what)}", layout=text, style=look)
            buttons = [edit, delete]
            if item.open_task:
                done = widgets.Button(description=t("Done"), button_style="success", layout=button, style=style)
                done.on_click(lambda _, i=item: self.editor.complete(i))
                buttons.insert(0, done)
            row = widgets.HBox([line, widgets.HBox(buttons, layout=box)], layout=box)  # buttons together
            row.add_class("desk-line")
            rows.append(self._timeline_drawn.setdefault(item, row))
        for item, row in drawn.items():
            if item not in self._timeline_drawn:  # gone or changed: its widgets are dropped
                line, box = row.children
                for widget in (*box.children, box, line, row):
                    widget.close()
        self._timeline_keys = [item.key for item in entries]
        return rows

    def place_editor(self) -> None:
        """Show the editor's panel right under the timeline entry it concerns (on a phone the entry,
        its form and its message stay on one screen); where that entry is gone (deleted), at the
        place it had; else at the end."""
        if self._editor is None:  # nothing corrected yet: no panel to place
            return
        rows = [r for r in self.timeline.children if r is not self.editor.panel]
        keys = self._timeline_keys
        if self.editor.anchor in keys:
            self._editor_at = keys.index(self.editor.anchor) + 1
        at = min(self._editor_at if self.editor.anchor is not None else len(rows), len(rows))
        self.timeline.children = [*rows[:at], self.editor.panel, *rows[at:]]

    def changed(self) -> None:
        """After a save or an undo: re-read the selection, the forms' lists and the Today list."""
        self.drop_gone()
        self.select(self.customer_id)
        if self.today_list.book is not None:
            self.today_list.refresh()

    def entry_panel(self) -> widgets.Widget:
        """The search box, the selected customer and one tab per form (:data:`FORMS`); a tab's form is
        built when the tab is first opened (:meth:`form`), the first one at once. Built once: the
        same panel each time."""
        if self._entry is None:
            self._pages = [widgets.VBox() for _ in FORMS]
            tabs = widgets.Tab(children=self._pages)  # the first tab open
            tabs.titles = tuple(t(kind.title) for kind in FORMS)
            for kind, form in self._forms.items():
                self._pages[FORMS.index(kind)].children = (form.widget(),)
            self.form(FORMS[0])
            tabs.observe(lambda change: change["new"] is not None and self.form(FORMS[change["new"]]),
                         names="selected_index")
            self._entry = widgets.VBox([self.search, self.matches, self.more, self.selected, self.timeline,
                                        widgets.HTML("<b>" + html.escape(t("Add something new")) + "</b>"), tabs])
        return self._entry

    def today_panel(self) -> widgets.Widget:
        """The Today list (computes its book-wide parts, :func:`book_today`, the first time)."""
        if self.today_list.book is None:
            self.today_list.recompute()
        return self.today_list.widget()
