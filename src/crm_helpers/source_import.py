"""Importing a whole export of a known tool: ``crm import FILE``, no table named.

The file's source is recognised from its headers (:mod:`crm_helpers.sources`, also when the
header follows some preamble lines), and one export fills every table it knows about: a
line-item file writes the orders, their items, the customers and the products it names. It is
one import in one transaction, logged as one batch per table tied by a group id, so
``crm undo-import`` takes it back whole. The rules, whatever the source:

- rows of one order share its order id; order fields written only on the first line (Shopify) are
  carried to the other lines; the same product on several lines of one order is summed (quantity;
  the unit price is the quantity-weighted mean);
- customers are matched on the customer id the export gives, else by e-mail (lower-cased) to those
  already in the store, else get a stable id made from the e-mail; a stored value is never
  overwritten by an empty one;
- an order without any customer identity (a guest checkout) is kept, for a customer of its own
  tagged ``guest``, and counted in the summary;
- money: :func:`crm_helpers.importing.settle_refunds`; a source without a status column means paid
  (the summary says so); failed and voided payments are stored as ``failed``, never as revenue;
  each order keeps its currency (net revenue converts it to the store's with the exchange rates:
  :func:`crm_helpers.facts.net_revenue_sql`);
- exchange rates (the ECB's reference rates: a date, then one column per currency) fill the
  ``exchange_rates`` table, one row per currency and day; ``N/A`` cells are no rate;
- dates: as the tool writes them; a timestamp with a zone suffix gives its local date;
- long numbers kept as text for Excel (``="3456789012345678901"``, or a leading tab) are read as
  the text inside.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sqlite_utils import Database

from .data import currency_note
from .importing import (ImportRejected, ImportResult, RowError, _message, _write_rejects, clean_column,
                        decide_dayfirst, import_file, read_chunks, rejects_path, remembered_mapping,
                        settle_refunds, stable_customer_id, write_table)
from .schema import LOAD_ORDER, RATES, TABLES, Column
from .schema import table as schema_table
from .sources import Source, normalize, recognise
from .store import explain_error, store_path, write_transaction
from .suppression import KINDS, skip_erased

CANCELLED = "orders.cancelled"
"""The pseudo-target of a source's ``cancelled_when`` column (not stored: it sets the status)."""
REFUND_OF = "orders.refund_of"
"""The pseudo-target of a source's ``refund_of`` column: the order a refund row pays back."""
PREAMBLE_ROWS = 30
"""How far down a file its header may start (payment bills open with a few lines of account details)."""


@dataclass
class SourceImportResult:
    """What importing one export did (or, in a dry run, would do) to each table."""

    file: Path
    source: Source
    mapping: dict[str, str]  # file header -> "table.column"
    ignored_columns: list[str]
    tables: dict[str, ImportResult] = field(default_factory=dict)
    guest_orders: int = 0
    erased_skipped: int = 0
    rejected: int = 0  # bad rows left out (``skip_bad_rows``)
    rejects_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def batch_ids(self) -> list[int]:
        return [r.batch_id for r in self.tables.values() if r.batch_id is not None]

    def summary(self) -> str:
        """A few lines for a person: the source, what went where, the counts and the assumptions."""
        lines = [f"{self.file.name}: recognised as {self.source.title}"]
        if self.dry_run:
            lines += ["columns:"] + [f"  {h} -> {t}" for h, t in self.mapping.items()]
        if self.ignored_columns and self.dry_run:
            lines.append(f"ignored columns: {', '.join(self.ignored_columns)}")
        elif self.ignored_columns:  # the owner saw them in the dry run; a tool's export has dozens
            lines.append(f"{len(self.ignored_columns)} columns of the export are not needed and were ignored "
                         "(--dry-run lists them)")
        verb = "would be" if self.dry_run else "were"
        for name, r in self.tables.items():
            lines.append(f"  {name:14} {r.inserted} inserted, {r.updated} updated, {r.unchanged} unchanged")
        if self.guest_orders:
            lines.append(f"{self.guest_orders} guest orders without any customer identity {verb} kept, each for a "
                         "customer of its own tagged 'guest'")
        if self.erased_skipped:
            lines.append(f"{self.erased_skipped} rows of erased people skipped (see `crm forget --list`)")
        if self.rejected:
            where = f": rows and reasons in {self.rejects_path.name}" if self.rejects_path else ""
            lines.append(f"{self.rejected} bad rows {'would be' if self.dry_run else 'were'} left out{where}")
        lines += self.notes
        if self.batch_ids:
            lines.append(f"import batch {self.batch_ids[0]} (undo it all with `crm undo-import {self.batch_ids[0]}`)")
        if self.dry_run:
            lines.append("(dry run: nothing written)")
        return "\n".join(lines)


# ------------------------------------------------------------------------------ recognising
def find_source(header: list[str], data: list[list[str]]) -> tuple[Source, int] | None:
    """The source and the index of its header row (0 = the file's first row), or None."""
    for index, row in enumerate([header, *data[:PREAMBLE_ROWS]]):
        source = recognise(row)
        if source is not None:
            return source, index
    return None


def file_source(path: Path, encoding: str | None = None) -> tuple[list[str], tuple[Source, int] | None]:
    """The file's first row and :func:`find_source` of it, from the file's first chunk only (enough
    to find a header below a preamble: a large file is not read whole)."""
    header, chunks = read_chunks(path, encoding)
    first = next(chunks, None)
    return header, find_source(header, first.data if first else [])


def _targets(source: Source, header: list[str]) -> tuple[dict[int, str], list[str]]:
    """``({file column index: "table.column"}, ignored headers)``; a header named twice counts once."""
    by_norm = {normalize(h): t for h, t in source.columns.items()}
    if source.cancelled_when:
        by_norm[normalize(source.cancelled_when)] = CANCELLED
    if source.refund_of:
        by_norm[normalize(source.refund_of)] = REFUND_OF
    found: dict[int, str] = {}
    ignored: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header):
        norm = normalize(raw)
        target = by_norm.get(norm)
        if target is None:
            target = next((t for pattern, t in source.questions.items() if re.search(pattern, raw, re.I)), None)
        if target is not None and norm not in seen:
            found[i] = target
            seen.add(norm)
        elif raw.strip():
            ignored.append(raw.strip())
    return found, ignored


def _cell(value: str, empty: tuple[str, ...]) -> str:
    """A cell's text: trimmed; the tool's word for "no value" as empty; ``="3456789012345678901"``
    (how shop back-ends keep long numbers as text for Excel) as the text inside. Plain Python: a
    pandas string method per rule costs several times more on a million lines."""
    value = value.strip()
    if value in empty:
        return ""
    if value.startswith('="') and value.endswith('"') and len(value) > 2:
        return value[2:-1]
    return value


def _combine(raw: pd.DataFrame, found: dict[int, str], source: Source) -> pd.DataFrame:
    """One text column per target: a ``joined`` target joins its headers with a space, any other
    target takes the first non-empty of its headers (in the file's order). The tool's words for
    "no value" are empty."""
    out: dict[str, pd.Series] = {}
    joined = source.joined
    for i, target in found.items():
        values = pd.Series([_cell(v, source.empty) for v in raw[i]], index=raw.index, dtype=object)
        if target not in out:
            out[target] = values
        elif target in joined:
            out[target] = (out[target] + " " + values).str.strip()
        else:
            out[target] = out[target].where(out[target] != "", values)
    return pd.DataFrame(out)


def _kept(source: Source, header: list[str], raw: pd.DataFrame, rows: np.ndarray,
          result: SourceImportResult) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows that are sales (a source's ``keep``); the others are counted in the summary."""
    keep = np.ones(len(raw), dtype=bool)
    position = {normalize(h): i for i, h in enumerate(header)}
    for column, values in source.keep.items():
        if normalize(column) in position:
            keep &= raw[position[normalize(column)]].str.strip().isin(values).to_numpy()
    if not keep.all():
        kinds = ", ".join(f"{c} {' / '.join(v)}" for c, v in source.keep.items())
        result.notes.append(f"{int((~keep).sum())} rows that are not sales were left out (only {kinds} are)")
    return raw[keep].reset_index(drop=True), rows[keep]


def _carry_down(frame: pd.DataFrame, key: str, per_line: tuple[str, ...] = ()) -> pd.DataFrame:
    """Order fields written on an order's first line only, carried to its other lines (not the
    ``per_line`` ones, which each line has of its own)."""
    order_level = [c for c in frame.columns
                   if c.split(".")[0] in ("orders", "customers") and c != key and c not in per_line]
    if not order_level:
        return frame
    blanked = frame[order_level].replace("", np.nan)
    filled = blanked.groupby(frame[key], sort=False).transform("first")
    return frame.assign(**{c: filled[c].fillna("") for c in order_level})


# ---------------------------------------------------------------------------------- cleaning
def _clean(frame: pd.DataFrame, dayfirst: bool | None, rows: np.ndarray, errors: list[RowError]) -> dict[str, pd.Series]:
    """Every target column cleaned as its store column (amounts and quantities may be negative: refunds)."""
    out = {}
    for target in frame.columns:
        table, name = target.split(".")
        if target in (CANCELLED, REFUND_OF, "orders.status"):  # the tool's own words, read by _status
            out[target] = frame[target].where(frame[target] != "", None)
            continue
        column: Column = TABLES[table].column(name)
        if name in ("amount", "quantity"):
            column = replace(column, minimum=None)
        column = replace(column, required=False)  # what is required is checked per table below
        found: list[RowError] = []
        out[target] = clean_column(column, frame[target], dayfirst, found, rows)
        errors += [replace(e, column=target) for e in found]
    return out


def _status(source: Source, frame: pd.DataFrame, clean: dict[str, pd.Series], rows: np.ndarray,
            errors: list[RowError], notes: list[str]) -> pd.Series:
    if "orders.status" not in frame:
        notes.append("the export has no status column: every order was taken as paid")
        status = pd.Series("paid", index=frame.index, dtype=object)
    else:
        text = frame["orders.status"].str.strip().str.lower()
        status = text.map({k.lower(): v for k, v in source.statuses.items()})
        for idx in np.flatnonzero((status.isna() & (text != "")).to_numpy()):
            errors.append(RowError(int(rows[idx]), "orders.status", frame["orders.status"].iat[idx],
                                   f"is not a status of {source.title} ({', '.join(source.statuses)})"))
    if CANCELLED in clean:
        status = status.where(clean[CANCELLED].isna(), "cancelled")
    return status


# ---------------------------------------------------------------------------------- building
def _short_id(prefix: str, *parts: object) -> str:
    return prefix + hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:10]


def _customer_keys(db: Database, clean: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    """Each row's customer id: the store's customer with its e-mail, else the id the export gives,
    else the export's id for that e-mail on another row, else one made from the e-mail; None for a
    row without any identity. The e-mail comes first so that a person keeps one record whichever
    tool's export (each with ids of its own) came in first."""
    none = pd.Series([None] * len(index), index=index, dtype=object)
    given = clean.get("customers.customer_id", none)
    emails = clean.get("customers.email", none)
    known = dict(db.execute("SELECT email, customer_id FROM customers WHERE email IS NOT NULL").fetchall())
    in_file: dict[str, str] = {}
    for cid, email in zip(given, emails):
        if cid is not None and email is not None:
            in_file.setdefault(email, cid)
    return pd.Series([known.get(email) or cid or in_file.get(email) or stable_customer_id(email)
                      if email is not None else cid for cid, email in zip(given, emails)], index=index, dtype=object)


def _last_non_empty(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per ``key``: each column's last non-empty value (a later line or row wins)."""
    return frame.groupby(key, sort=False).last().reset_index()


def _build(db: Database, source: Source, frame: pd.DataFrame, clean: dict[str, pd.Series], rows: np.ndarray,
           errors: list[RowError], result: SourceImportResult) -> dict[str, pd.DataFrame]:
    """The store tables this export fills, one frame each, keyed and de-duplicated."""
    tables: dict[str, pd.DataFrame] = {}
    customer_id = _customer_keys(db, clean, frame.index)
    # Here every row's identifiers are known: customer_id, clean["customers.email"], clean["customers.phone"],
    # clean["orders.order_id"] (the one place to check a row against anything keyed on a person).
    has_orders = "orders.order_id" in clean
    if has_orders:
        order_id = clean["orders.order_id"]
        for idx in np.flatnonzero(order_id.isna().to_numpy()):
            errors.append(RowError(int(rows[idx]), "orders.order_id", "", "required"))
        guest = customer_id.isna() & order_id.notna()
        customer_id = customer_id.copy()
        customer_id[guest] = [_short_id("G-", source.key, o) for o in order_id[guest]]
        result.guest_orders = int(order_id[guest].nunique())
    refunds = _refunds_of_listed_orders(clean, len(frame))
    customers = pd.DataFrame({"customer_id": customer_id})
    for target, values in clean.items():
        table, name = target.split(".")
        if table == "customers" and name != "customer_id":
            customers[name] = values
    if has_orders:
        customers["tags"] = np.where(guest, "guest", None)
    customers = customers[~refunds]  # the other side of a refund row is the business itself
    tables["customers"] = _last_non_empty(customers.dropna(subset=["customer_id"]), "customer_id")
    if has_orders:
        tables.update(_orders(source, frame, clean, customer_id, rows, errors, result, refunds))
    if "feedback.submitted_at" in clean:
        tables["feedback"] = _feedback(source, clean, customer_id, rows, errors)
    return tables


def _refunds_of_listed_orders(clean: dict[str, pd.Series], n: int) -> np.ndarray:
    """Rows paying back (negative amount) an order the same file lists (by ``refund_of``)."""
    if REFUND_OF not in clean or "orders.amount" not in clean:
        return np.zeros(n, dtype=bool)
    listed = set(clean["orders.order_id"].dropna())
    amount = pd.to_numeric(clean["orders.amount"], errors="coerce")
    return ((amount < 0) & clean[REFUND_OF].isin(listed)).to_numpy()


def _apply_refunds(orders: pd.DataFrame, refunds: pd.DataFrame) -> pd.DataFrame:
    """Refund rows added to the refunded_amount of the orders they pay back; paid back whole, the
    order is ``refunded``."""
    back = refunds.groupby("order_id")["amount"].sum().abs()
    paid_back = orders["order_id"].map(back).fillna(0.0)
    refunded = (orders["refunded_amount"].astype(float) + paid_back).clip(upper=orders["amount"].astype(float))
    whole = (paid_back > 0) & (refunded >= orders["amount"].astype(float) - 1e-9)
    return orders.assign(refunded_amount=refunded.astype(object), status=orders["status"].where(~whole, "refunded"))


def _orders(source: Source, frame: pd.DataFrame, clean: dict[str, pd.Series], customer_id: pd.Series,
            rows: np.ndarray, errors: list[RowError], result: SourceImportResult,
            refunds: np.ndarray) -> dict[str, pd.DataFrame]:
    order_id = clean["orders.order_id"]
    lines = pd.DataFrame({"order_id": order_id, "customer_id": customer_id, "_row": rows})
    for target, values in clean.items():
        table, name = target.split(".")
        if table in ("orders", "order_items", "products") and name not in ("order_id", "customer_id"):
            lines[f"{table}.{name}"] = values
    lines["status"] = _status(source, frame, clean, rows, errors, result.notes)
    if source.credit_note_prefix:
        credit = order_id.fillna("").str.startswith(source.credit_note_prefix)
        lines.loc[credit, "status"] = "refunded"
    if "orders.currency" in lines:
        lines["orders.currency"] = lines["orders.currency"].str.upper()
    elif source.currency:
        lines["orders.currency"] = source.currency
    if source.amount == "line_totals" and "order_items.unit_price" not in lines and "order_items.quantity" in lines:
        lines["order_items.unit_price"] = lines["orders.amount"].astype(float) / lines["order_items.quantity"].astype(float)
    if refunds.any():
        paid_back = pd.DataFrame({"order_id": clean[REFUND_OF][refunds],
                                  "amount": pd.to_numeric(clean["orders.amount"][refunds])})
        lines = lines[~refunds]
    lines = lines[lines["order_id"].notna()]
    out: dict[str, pd.DataFrame] = {}
    if "order_items.quantity" in lines:
        items, products = _items(lines)
        out["products"], out["order_items"] = products, items
    first = lines.groupby("order_id", sort=False).first()
    orders = pd.DataFrame({"order_id": first.index, "customer_id": first["customer_id"].to_numpy(),
                           "order_date": first["orders.order_date"].to_numpy(), "status": first["status"].to_numpy()})
    if source.amount == "lines":
        money = lines["order_items.quantity"].astype(float) * lines["order_items.unit_price"].astype(float)
        orders["amount"] = money.groupby(lines["order_id"], sort=False).sum().round(2).to_numpy()
    elif source.amount == "line_totals":
        money = lines["orders.amount"].astype(float)
        orders["amount"] = money.groupby(lines["order_id"], sort=False).sum(min_count=1).round(2).to_numpy()
    else:
        orders["amount"] = first["orders.amount"].to_numpy()
    for name in ("refunded_amount", "currency", "channel"):
        if f"orders.{name}" in first:
            orders[name] = first[f"orders.{name}"].to_numpy()
    first_rows = first["_row"].to_numpy()
    for column in ("order_date", "amount", "status"):
        for idx in np.flatnonzero(pd.isna(orders[column]).to_numpy()):
            errors.append(RowError(int(first_rows[idx]), f"orders.{column}", "", "required"))
    orders = settle_refunds(orders, first_rows, errors)
    if refunds.any():
        orders = _apply_refunds(orders, paid_back)
    out["orders"] = orders
    return out


def _items(lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Order lines summed per (order, product) and the products they name. Lines of credit notes
    (negative quantities: goods taken back) and lines without any product are not items."""
    kept = lines[lines["order_items.quantity"].notna()].copy()
    name = kept["products.name"] if "products.name" in kept else pd.Series(None, index=kept.index, dtype=object)
    product = kept["order_items.product_id"] if "order_items.product_id" in kept else name.copy()
    product = product.copy()
    unnamed = product.isna() & name.notna()  # a line without a product code: its name makes one
    product[unnamed] = [_short_id("P-", n) for n in name[unnamed]]
    kept = kept.assign(product_id=product, name=name.where(name.notna(), product))
    kept = kept[kept["product_id"].notna() & (kept["order_items.quantity"].astype(float) > 0)]
    quantity = kept["order_items.quantity"].astype(float)
    price = kept["order_items.unit_price"].astype(float) if "order_items.unit_price" in kept else np.nan
    kept = kept.assign(quantity=quantity, money=quantity * price)
    grouped = kept.groupby(["order_id", "product_id"], sort=False)
    summed = pd.DataFrame({"quantity": grouped["quantity"].sum(),
                           "money": grouped["money"].sum(min_count=1)}).reset_index()
    items = pd.DataFrame({"order_id": summed["order_id"], "product_id": summed["product_id"],
                          "quantity": summed["quantity"].round().astype(int).astype(object),
                          "unit_price": (summed["money"] / summed["quantity"]).round(4)})
    items["unit_price"] = items["unit_price"].astype(object).where(items["unit_price"].notna(), None)
    products = _last_non_empty(kept.assign(unit_price=price)[["product_id", "name", "unit_price"]], "product_id")
    products["unit_price"] = products["unit_price"].astype(object).where(products["unit_price"].notna(), None)
    return items, products


def _rates(source: Source, header: list[str], raw: pd.DataFrame, found: dict[int, str], rows: np.ndarray,
           dayfirst: bool | None, errors: list[RowError]) -> pd.DataFrame:
    """A wide rates file (``source.rates_per``) as ``exchange_rates`` rows: one per currency column
    (a header that is an ISO code) and day with a rate; the tool's "no value" cells are left out."""
    date_at = next(i for i, t in found.items() if t == f"{RATES.name}.rate_date")
    bad: list[RowError] = []
    day = clean_column(RATES.column("rate_date"), raw[date_at], dayfirst, bad, rows)
    errors += [replace(e, column=header[date_at].strip()) for e in bad]
    rate = RATES.column("per_eur")
    frames = []
    for i, name in enumerate(header):
        code = name.strip().upper()
        if i == date_at or not re.fullmatch(r"[A-Z]{3}", code):
            continue
        cells = pd.Series([_cell(v, source.empty) for v in raw[i]], index=raw.index, dtype=object)
        bad = []
        per = clean_column(replace(rate, required=False), cells, dayfirst, bad, rows)
        errors += [replace(e, column=name.strip()) for e in bad]
        frames.append(pd.DataFrame({"currency": code, "rate_date": day, "per_eur": per}).dropna())
    if not frames:
        return pd.DataFrame(columns=RATES.column_names)
    return pd.concat(frames, ignore_index=True)


def _feedback(source: Source, clean: dict[str, pd.Series], customer_id: pd.Series, rows: np.ndarray,
              errors: list[RowError]) -> pd.DataFrame:
    submitted = clean["feedback.submitted_at"]
    frame = pd.DataFrame({"feedback_id": [_short_id(source.id_prefix, c, s) for c, s in zip(customer_id, submitted)],
                          "customer_id": customer_id, "submitted_at": submitted})
    for target, values in clean.items():
        table, name = target.split(".")
        if table == "feedback" and name != "submitted_at":
            frame[name] = values
    for idx in np.flatnonzero(customer_id.isna().to_numpy()):
        errors.append(RowError(int(rows[idx]), "customers.email", "", "required to match the answer to a customer"))
    return frame.dropna(subset=["customer_id"])


# ----------------------------------------------------------------------------------- the import
def import_any(db: Database, path: str | os.PathLike[str], *, encoding: str | None = None,
               dayfirst: bool | None = None, dry_run: bool = False,
               skip_bad_rows: bool = False) -> SourceImportResult | ImportResult:
    """``crm import FILE``: a known tool's export (:func:`import_export`), else a layout imported
    before with ``--map`` (into the table and with the mapping kept for it)."""
    header, found = file_source(Path(path), encoding)
    saved = remembered_mapping(db, header)
    if found is None and saved is not None:
        return import_file(db, saved[0], path, encoding=encoding, dayfirst=dayfirst, dry_run=dry_run,
                           skip_bad_rows=skip_bad_rows)
    return import_export(db, path, encoding=encoding, dayfirst=dayfirst, dry_run=dry_run, skip_bad_rows=skip_bad_rows)


def import_export(db: Database, path: str | os.PathLike[str], *, encoding: str | None = None,
                  dayfirst: bool | None = None, dry_run: bool = False,
                  skip_bad_rows: bool = False) -> SourceImportResult:
    """Recognise ``path``'s source and import everything it holds; see the module doc.

    Raises :class:`ImportRejected` (nothing written) when the source is not recognised or a row
    is bad; the message names the file, row, column and reason. With ``skip_bad_rows`` the good
    rows are written and the bad ones, with the other lines of their orders, go with their reasons
    to ``<file>.rejects.csv`` beside it (as a named-table import does).
    """
    path = Path(path)
    header, chunks = read_chunks(path, encoding)
    first = next(chunks, None)
    head = first.data if first else []
    found_source = find_source(header, head)
    if found_source is None:
        raise ImportRejected(
            f"{path.name}: not an export this workbook knows (headers: {', '.join(h for h in header[:8] if h)}…). "
            "Name the table it belongs to, e.g. `crm import orders FILE`, with --map 'Their Header=column' if needed; "
            "docs/bringing-your-data-in.md lists the exports recognised."
        )
    source, at = found_source
    if at:
        header, head = head[at - 1], head[at:]
    found, ignored = _targets(source, header)
    if source.rates_per:  # the other columns are the currencies, not columns left aside
        ignored = []
    result = SourceImportResult(path, source, {header[i].strip(): t for i, t in found.items()}, ignored,
                                dry_run=dry_run)
    raw, lines = _columns(source, header, found, itertools.chain([head], (c.data for c in chunks)),
                          keep_lines=skip_bad_rows)
    if raw.empty:
        raise ImportRejected(f"{path.name}: only a header row, no data")
    rows = np.arange(at + 2, at + 2 + len(raw))
    raw, rows = _kept(source, header, raw, rows, result)
    notes = len(result.notes)
    tables, errors = _prepare(db, source, path, header, raw, rows, found, dayfirst, result)
    rejected: list[RowError] = []
    if errors and skip_bad_rows:
        rejected = errors + _other_lines_of_bad_orders(source, header, raw, rows, found, errors)
        good = ~np.isin(rows, [e.row for e in rejected])
        del result.notes[notes:]  # said again by the pass over the good rows
        tables, errors = _prepare(db, source, path, header, raw[good].reset_index(drop=True), rows[good], found,
                                  dayfirst, result)
        result.rejected = len({e.row for e in rejected})
    if errors:
        raise ImportRejected(_message(path, errors, "Fix these rows in the export (or in the tool) and import it "
                                                    "again, or import the good ones with --skip-bad-rows."))
    _write(db, path, tables, result, rejects_path(path) if rejected and not dry_run else None)
    if rejected and not dry_run:
        result.rejects_path = _write_rejects(path, header, dict(zip(rows.tolist(), lines)), rejected)
    if not dry_run and (note := currency_note(db)):
        result.notes.append(f"note: {note}")
    return result


def _columns(source: Source, header: list[str], found: dict[int, str], batches: Iterator[list[list[str]]], *,
             keep_lines: bool) -> tuple[pd.DataFrame, list[list[str]]]:
    """The export's rows as text, a column per file column the import reads (labelled by its
    position; the other columns of a tool's wide export are never held), read a chunk at a time;
    and, with ``keep_lines``, the rows as they are (for a rejects file). A payment bill's closing
    ``#`` lines are left out."""
    width = len(header)
    position = {normalize(h): i for i, h in enumerate(header)}
    wanted = (range(width) if source.rates_per else
              sorted({*found, *(position[normalize(c)] for c in source.keep if normalize(c) in position)}))
    columns: dict[int, list[str]] = {i: [] for i in wanted}
    lines: list[list[str]] = []
    for data in batches:
        data = [d for d in data if len(d) > 1 or (d and not d[0].startswith("#"))]
        for i in wanted:
            columns[i] += [d[i] if i < len(d) else "" for d in data]
        if keep_lines:
            lines += data
    return pd.DataFrame({i: pd.Series(v, dtype=object) for i, v in columns.items()}), lines


def _prepare(db: Database, source: Source, path: Path, header: list[str], raw: pd.DataFrame, rows: np.ndarray,
             found: dict[int, str], dayfirst: bool | None, result: SourceImportResult
             ) -> tuple[dict[str, pd.DataFrame], list[RowError]]:
    """The store tables ``raw``'s rows fill, and the problems of its rows (in the file's own terms)."""
    errors: list[RowError] = []
    if source.rates_per:
        return {RATES.name: _rates(source, header, raw, found, rows, dayfirst, errors)}, errors
    frame = _combine(raw, found, source)
    for target, value in source.constants.items():
        frame[target] = value
    if source.lines and "orders.order_id" in frame:
        frame = _carry_down(frame, "orders.order_id", per_line=("orders.amount",) if source.amount == "line_totals" else ())
    headers = {t: h for h, t in result.mapping.items()}
    dates = {headers.get(t, t): frame[t] for t in frame if t.split(".")[1] in ("order_date", "submitted_at")}
    decided = decide_dayfirst(path, dates, source.dayfirst if dayfirst is None else dayfirst, rows)
    clean = _clean(frame, decided, rows, errors)
    frame, clean, rows = _skip_erased(db, frame, clean, rows, errors, result)
    tables = _build(db, source, frame, clean, rows, errors, result)
    return tables, _in_file_terms(errors, result.mapping)


def _other_lines_of_bad_orders(source: Source, header: list[str], raw: pd.DataFrame, rows: np.ndarray, found: dict[int, str],
                               errors: list[RowError]) -> list[RowError]:
    """The good lines of an order one of whose lines is bad: left out with it, so that no order is
    written with part of its lines (and a wrong amount)."""
    at = next((i for i, t in found.items() if t == "orders.order_id"), None)
    if at is None or not source.lines:
        return []
    order = pd.Series([_cell(v, source.empty) for v in raw[at]], index=raw.index, dtype=object)
    bad = np.isin(rows, [e.row for e in errors])
    of_bad = order.isin(set(order[bad]) - {""}).to_numpy() & ~bad
    return [RowError(int(r), header[at].strip(), o, "another line of this order is bad")
            for r, o in zip(rows[of_bad], order[of_bad])]


def _skip_erased(db: Database, frame: pd.DataFrame, clean: dict[str, pd.Series], rows: np.ndarray,
                 errors: list[RowError], result: SourceImportResult
                 ) -> tuple[pd.DataFrame, dict[str, pd.Series], np.ndarray]:
    """Leave out every line of a person on the suppression list (matched on the customer id, e-mail or
    phone the export gives): nothing of it is imported, merged or made into a customer, and its
    problems are not reported (issue 18). Counted in ``result.erased_skipped``."""
    identity = pd.DataFrame({kind: clean[f"customers.{kind}"].to_numpy() for kind in KINDS
                             if f"customers.{kind}" in clean})
    _, kept_rows, result.erased_skipped = skip_erased(db, identity, rows, errors)
    if not result.erased_skipped:
        return frame, clean, rows
    keep = np.isin(rows, kept_rows)  # file row numbers are unique: one per line
    return (frame[keep].reset_index(drop=True), {t: v[keep].reset_index(drop=True) for t, v in clean.items()},
            rows[keep])


def _in_file_terms(errors: list[RowError], mapping: dict[str, str]) -> list[RowError]:
    """Errors naming the file's own column headers; a row's "required" is dropped when the row
    already has an error that explains it."""
    headers: dict[str, list[str]] = {}
    for header, target in mapping.items():
        headers.setdefault(target, []).append(header)
    explained = {e.row for e in errors if e.reason != "required"}
    return [replace(e, column=" / ".join(headers.get(e.column, [e.column]))) for e in errors
            if e.reason != "required" or e.row not in explained]


def _write(db: Database, path: Path, tables: dict[str, pd.DataFrame], result: SourceImportResult,
           rejects: Path | None = None) -> None:
    """Every table of the export in one transaction, parents first; one batch per table, one group
    (each batch knows the ``rejects`` file of the bad rows left out, for erasure)."""
    try:
        with db.atomic() if result.dry_run else write_transaction(db):
            group_id = None
            for name in (*LOAD_ORDER, RATES.name):
                if name not in tables or tables[name].empty:
                    continue
                table_result = ImportResult(table=name, file=path, dry_run=result.dry_run)
                write_table(db, schema_table(name), path, tables[name], table_result, rejects=rejects, group_id=group_id,
                            keep_stored=True)
                result.tables[name] = table_result
                if group_id is None and table_result.batch_id is not None:
                    group_id = table_result.batch_id
                    db.execute("UPDATE import_log SET group_id = ? WHERE batch_id = ?", [group_id, group_id])
    except sqlite3.DatabaseError as exc:
        raise ImportRejected(f"{path.name}: nothing was imported: {explain_error(store_path(db), exc)}") from None
