"""Importing a whole export of a known tool: ``crm import FILE``, no table named.

The file's source is recognised from its headers (:mod:`crm_helpers.ingest.sources`, also when the
header follows some preamble lines), and one export fills every table it knows about: a
line-item file writes the orders, their items, the customers and the products it names. It is
one import in one transaction, logged as one batch per table tied by a group id, so
``crm undo-import`` takes it back whole. The file is read, cleaned and written a chunk of about
:data:`~crm_helpers.ingest.table_import.CHUNK_ROWS` rows at a time (cut between orders), so a large export
needs the memory of a chunk, not of the file. The rules, whatever the source:

- rows of one order share its order id; order fields written only on the first line (Shopify) are
  carried to the other lines; the same product on several lines of one order is summed (quantity;
  the unit price is the quantity-weighted mean);
- customers are matched on the customer id the export gives, else by e-mail (lower-cased) to those
  already in the store, else get a stable id made from the e-mail; a stored value is never
  overwritten by an empty one;
- an order without any customer identity (a guest checkout) is kept, for a customer of its own
  tagged ``guest``, and counted in the summary;
- money: :func:`crm_helpers.ingest.table_import.settle_refunds`; a source without a status column means paid
  (the summary says so); failed and voided payments are stored as ``failed``, never as revenue;
  each order keeps its currency (net revenue converts it to the store's with the exchange rates:
  :func:`crm_helpers.store.facts.net_revenue_sql`);
- exchange rates (the ECB's reference rates: a date, then one column per currency) fill the
  ``exchange_rates`` table, one row per currency and day; ``N/A`` cells are no rate;
- dates: as the tool writes them; a timestamp with a zone suffix gives its local date;
- long numbers kept as text for Excel (``="3456789012345678901"``, or a leading tab) are read as
  the text inside;
- refunds wherever the tool records them: an adjusted total (Etsy), a partial refund in the status
  (``已退款(￥50.00)``), after-sale lines (Douyin 售后状态), refund rows naming their payment (PayPal's
  Reference Txn ID, Alipay's 退款成功 rows); a refund of a payment imported earlier updates that
  order, never a new order or customer;
- whose money it is: the shop's own account (PayPal's receiving address, a bill's owner) is never a
  customer; encrypted or masked buyer fields are no identity; the lines of orders another export of
  the tool stored (Etsy Order Items after Orders) leave each order's amount and buyer as they are;
- the money balance (:mod:`crm_helpers.ingest.balance`): every amount of the file accounted for, per
  currency; an import whose balance does not close is refused naming the difference (with
  ``skip_bad_rows``: imported with it listed); the balance is kept with the batch (``import_log.balance``).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.i18n import t, tn
from crm_helpers.store.queries import currency_note
from crm_helpers.ingest.balance import ImportBalance, money, partial_refunds, recorded_refunds
from crm_helpers.ingest.table_import import (
    CHUNK_ROWS,
    NOTHING_CHANGED,
    LeftOutRows,
    ImportRejected,
    ImportResult,
    RowError,
    TableBatch,
    clean_column,
    cut_list,
    decide_dayfirst,
    distinct_texts,
    has_day_month,
    header_listing,
    import_file,
    import_page_cache,
    without_cyclic_gc,
    known_emails,
    nul_errors,
    read_chunks,
    refuse_repeated_headers,
    rejection_message,
    rejects_path,
    remembered_mapping,
    settle_refunds,
    stable_customer_id,
    text_columns,
    trimmed,
    write_rejects,
)
from crm_helpers.store.schema import LOAD_ORDER, RATES, TABLES, Column
from crm_helpers.store.schema import table as schema_table
from crm_helpers.ingest.sources import Source, normalize, recognise
from crm_helpers.store.connection import explain_error, store_path, write_transaction
from crm_helpers.store.files import refuse_link
from crm_helpers.store.suppression import KINDS, skip_erased

CANCELLED = "orders.cancelled"
"""The pseudo-target of a source's ``cancelled_when`` column (not stored: it sets the status)."""
REFUND_OF = "orders.refund_of"
"""The pseudo-target of a source's ``refund_of`` column: the order a refund row pays back."""
ADJUSTED = "orders.adjusted_total"
"""The pseudo-target of a source's ``adjusted_total`` column: the order's total after partial refunds."""
AFTER_SALE = "orders.after_sale"
"""The pseudo-target of a source's ``refunded_when`` column: a line's after-sale (refund) status."""
LINE_REFUND = "orders.line_refund"
"""The pseudo-target of a source's ``line_refunded`` column: the money a line's after-sale paid back."""
MASKED = re.compile(r"^(?:##|\$\$)|\*{3}")
"""An encrypted (``##…``, ``$$…``: Douyin) or masked (``138****0000``) cell: no identity."""
ORDER_FIELDS = ("order_date", "amount", "refunded_amount", "currency", "channel")
"""The order's own fields an export's lines give (read from the order's first line)."""
PREAMBLE_ROWS = 30
"""How far down a file its header may start (payment bills open with a few lines of account details)."""


GUEST_ORDERS = {
    (True, True): "1 guest order without any customer identity would be kept, for a customer of its own tagged 'guest'",
    (True, False): "1 guest order without any customer identity was kept, for a customer of its own tagged 'guest'",
    (False, True): "{count} guest orders without any customer identity would be kept, each for a customer of its own "
                   "tagged 'guest'",
    (False, False): "{count} guest orders without any customer identity were kept, each for a customer of its own "
                    "tagged 'guest'",
}
"""The summary's line on orders without a customer: (one order?, dry run?) → the whole sentence (through ``t``)."""
LEFT_OUT = {
    (True, True): "{count} bad rows would be left out: rows and reasons in {file}",
    (True, False): "{count} bad rows were left out: rows and reasons in {file}",
    (False, True): "{count} bad rows would be left out",
    (False, False): "{count} bad rows were left out",
}
"""The summary's line on bad rows: (a rejects file?, dry run?) → the whole sentence (through ``t``)."""


@dataclass
class SourceImportResult(LeftOutRows):
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
    balance: ImportBalance = field(default_factory=ImportBalance)
    erased_rows: list[int] = field(default_factory=list)  # file rows of erased people (this part)
    earlier: pd.DataFrame | None = None  # stored orders of earlier imports paid back by refund rows
    earlier_refunds: list[tuple[float, str | None]] = field(default_factory=list)  # (amount, currency)
    described: set[str] = field(default_factory=set)  # orders of this part stored from the source's ``lines_of``

    def add(self, part: SourceImportResult) -> None:
        """Count in what a part of the file (a chunk of its rows) did."""
        self.guest_orders += part.guest_orders
        self.erased_skipped += part.erased_skipped
        self.notes += [n for n in part.notes if n not in self.notes]

    @property
    def batch_ids(self) -> list[int]:
        return [r.batch_id for r in self.tables.values() if r.batch_id is not None]

    def summary(self) -> str:
        """A few lines for a person: the source, what went where, the counts and the assumptions."""
        lines = [t("{file}: recognised as {source}", file=self.file.name, source=self.source.title)]
        if self.dry_run:
            lines += [t("columns:")] + [f"  {h} -> {column}" for h, column in self.mapping.items()]
        if self.ignored_columns and self.dry_run:
            lines.append(t("ignored columns: {columns}", columns=cut_list(self.ignored_columns)))
        elif self.ignored_columns:  # the owner saw them in the dry run; a tool's export has dozens
            lines.append(t("{count} columns of the export are not needed and were ignored (--dry-run lists them)",
                           count=len(self.ignored_columns)))
        for name, r in self.tables.items():
            lines.append(f"  {name:14} " + t("{inserted} inserted, {updated} updated, {unchanged} unchanged",
                                            inserted=r.inserted, updated=r.updated, unchanged=r.unchanged))
        if self.guest_orders:
            lines.append(t(GUEST_ORDERS[(self.guest_orders == 1, self.dry_run)], count=self.guest_orders))
        if self.erased_skipped:
            lines.append(t("{count} rows of erased people skipped (see `crm forget --list`)", count=self.erased_skipped))
        if self.rejected:
            file = self.rejects_path.name if self.rejects_path else ""
            lines.append(t(LEFT_OUT[(bool(file), self.dry_run)], count=self.rejected, file=file))
        lines += self.notes  # each written in the owner's language where it was made
        if self.balance.message:
            lines.append(self.balance.message)
        if self.balance.message and not self.balance.ok:
            lines.append(t("the balance does not close: {difference} (imported with --skip-bad-rows; check the export "
                           "against the tool)", difference=self.balance.difference()))
        if self.batch_ids:
            lines.append(t("import batch {batch} (undo it all with `crm undo-import {batch}`)", batch=self.batch_ids[0]))
        elif not self.dry_run:
            lines.append(t(NOTHING_CHANGED))
        if self.dry_run:
            lines.append(t("(dry run: nothing written)"))
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
    """``({file column index: "table.column"}, ignored headers)``; a header named twice is read once
    (:func:`~crm_helpers.ingest.table_import.refuse_repeated_headers` refuses such a file)."""
    by_norm = {normalize(h): t for h, t in source.columns.items()}
    if source.cancelled_when:
        by_norm[normalize(source.cancelled_when)] = CANCELLED
    if source.refund_of:
        by_norm[normalize(source.refund_of)] = REFUND_OF
    if source.adjusted_total:
        by_norm[normalize(source.adjusted_total)] = ADJUSTED
    for column in source.refunded_when:
        by_norm[normalize(column)] = AFTER_SALE
    if source.line_refunded:
        by_norm[normalize(source.line_refunded)] = LINE_REFUND
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


def _text(values: pd.Series, rule: Callable[[list[str]], list[str]]) -> pd.Series:
    """``rule`` (:func:`_cell_texts`) of each value, as a categorical Series: the distinct texts
    (always with "") and a code per row (:func:`~crm_helpers.ingest.table_import.distinct_texts`). The steps
    after it (carrying order fields down, cleaning) work on the codes: an export repeats its dates,
    statuses and e-mails on line after line (a 1,000,000-line export: 4 s less than trimming every cell)."""
    codes, texts = distinct_texts(values, rule, always_merge=True)
    kinds = pd.CategoricalDtype(pd.Index(texts, dtype=object))
    return pd.Series(pd.Categorical.from_codes(codes, dtype=kinds), index=values.index)


def _cells(values: pd.Series, source: Source) -> pd.Series:
    """:func:`_text` of a file column by the source's rules (:func:`_cell`)."""
    return _text(values, partial(_cell_texts, empty=source.empty))


def _cell_texts(values: list[str], empty: tuple[str, ...]) -> list[str]:
    """:func:`_cell` of each value: trimmed at C speed, the other rules only when some value has a
    ``="`` or is a word for "no value" (most columns have neither)."""
    cells = trimmed(values)
    if '="' in "\x00".join(cells) or (empty and not set(empty).isdisjoint(cells)):
        return [_cell(v, empty) for v in cells]
    return cells


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
    for i, target in found.items():
        values = _cells(raw[i], source)
        if target not in out:
            out[target] = values
            continue
        before, values = out[target].astype(object), values.astype(object)
        both = before + " " + values if target in source.joined else before.where(before != "", values)
        out[target] = _text(both, trimmed)
    return pd.DataFrame(out)


def _kept(source: Source, header: list[str], raw: pd.DataFrame, rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows that are sales (a source's ``keep``) and their row numbers."""
    keep = np.ones(len(raw), dtype=bool)
    position = {normalize(h): i for i, h in enumerate(header)}
    for column, values in source.keep.items():
        if normalize(column) in position:
            keep &= raw[position[normalize(column)]].str.strip().isin(values).to_numpy()
    keep = (keep & ~_sent(source, header, raw)) | _bill_refund_rows(source, header, raw, keep)
    return raw[keep].reset_index(drop=True), rows[keep]


def _amount_column(source: Source, header: list[str], raw: pd.DataFrame) -> pd.Series | None:
    """The file's amount cells (the source's ``orders.amount`` column), or None."""
    position = {normalize(h): i for i, h in enumerate(header)}
    at = next((position[normalize(h)] for h, t in source.columns.items()
               if t == "orders.amount" and normalize(h) in position), None)
    return None if at is None or at not in raw else _cells(raw[at], source).astype(object)


def _sent(source: Source, header: list[str], raw: pd.DataFrame) -> np.ndarray:
    """Rows of a ``received_only`` kind whose money went out (the shop paying someone): not sales."""
    position = {normalize(h): i for i, h in enumerate(header)}
    sent = np.zeros(len(raw), dtype=bool)
    amount = _amount_column(source, header, raw) if source.received_only else None
    if amount is None:
        return sent
    for column, values in source.received_only.items():
        if normalize(column) in position:
            kind = raw[position[normalize(column)]].str.strip().isin(values).to_numpy()
            sent |= kind & ~(money(amount) > 0)
    return sent


def _bill_refund_rows(source: Source, header: list[str], raw: pd.DataFrame, sales: np.ndarray) -> np.ndarray:
    """A bill's rows paying back one of its sales (a source's ``refund_rows``, e.g. Alipay's 退款成功
    row): the refund's order number carries the payment's before ``_``. A refund of a row that is
    not a sale (the owner's own spending paid back) stays out, as not a sale."""
    position = {normalize(h): i for i, h in enumerate(header)}
    refund = np.zeros(len(raw), dtype=bool)
    for column, values in source.refund_rows.items():
        if normalize(column) in position:
            refund |= raw[position[normalize(column)]].str.strip().isin(values).to_numpy()
    order_at = next((position[normalize(h)] for h, t in source.columns.items()
                     if t == "orders.order_id" and normalize(h) in position), None)
    if not refund.any() or order_at is None:
        return np.zeros(len(raw), dtype=bool)
    order = _cells(raw[order_at], source).astype(object)
    paid_back = order.str.split("_").str[0]
    return refund & paid_back.isin(set(order[sales & ~refund])).to_numpy()


def _mark_bill_refunds(source: Source, header: list[str], raw: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The kept refund rows of a bill (:func:`_bill_refund_rows`) written as a refund row: a negative
    amount naming the payment it pays back (``REFUND_OF``), so that the payment's order is refunded."""
    if not source.refund_rows:
        return frame
    position = {normalize(h): i for i, h in enumerate(header)}
    refund = np.zeros(len(raw), dtype=bool)
    for column, values in source.refund_rows.items():
        if normalize(column) in position:
            refund |= raw[position[normalize(column)]].str.strip().isin(values).to_numpy()
    frame = frame.copy(deep=False)
    order = frame["orders.order_id"].astype(object)
    amount = frame["orders.amount"].astype(object)
    frame[REFUND_OF] = np.where(refund, order.str.split("_").str[0], "")
    frame["orders.amount"] = np.where(refund & ~amount.str.startswith("-"), "-" + amount, amount)
    return frame


def _without_own_account(source: Source, header: list[str], raw: pd.DataFrame, frame: pd.DataFrame,
                         notes: list[str]) -> pd.DataFrame:
    """The shop's own address (the most frequent value of the source's ``own_account`` column: the
    account that received the money) is never a customer's e-mail."""
    position = {normalize(h): i for i, h in enumerate(header)}
    at = position.get(normalize(source.own_account or ""))
    if at is None or at not in raw or "customers.email" not in frame:
        return frame
    received = raw[at].str.strip().str.lower()
    received = received[received != ""]
    if received.empty:
        return frame
    shop = received.value_counts().index[0]
    email = frame["customers.email"].astype(object)
    own = (email.str.strip().str.lower() == shop).to_numpy()
    if not own.any():
        return frame
    frame = frame.copy(deep=False)
    frame["customers.email"] = np.where(own, "", email)
    note = t("the shop's own account {shop} is not a customer", shop=shop)
    if note not in notes:
        notes.append(note)
    return frame


def _without_masked_identity(frame: pd.DataFrame) -> pd.DataFrame:
    """Encrypted or masked buyer fields (:data:`MASKED`: Douyin's ``##…``/``$$…``, ``138****0000``)
    are no identity: each such order is a guest of its own unless another field identifies the
    buyer; an encrypted name is no name."""
    targets = [t for t in ("customers.customer_id", "customers.email", "customers.phone", "customers.name")
               if t in frame]
    rule = {t: re.compile(r"^(?:##|\$\$)") if t == "customers.name" else MASKED for t in targets}
    masked = {t: _each_distinct(frame[t], lambda v, r=rule[t]: "x" if r.search(str(v)) else "") == "x"
              for t in targets}  # a rule per distinct text: identity columns repeat over an order's lines
    if not any(m.any() for m in masked.values()):
        return frame
    frame = frame.copy(deep=False)
    for target, hit in masked.items():
        if hit.any():
            frame[target] = np.where(hit.to_numpy(), "", frame[target].astype(object))
    return frame


def _bill_owner(source: Source, preamble: list[list[str]]) -> str | None:
    """The bill's owner as its preamble names them (a source's ``owner_named``), or None."""
    for line in preamble:
        text = ",".join(line).strip().strip(",")
        for pattern in source.owner_named:
            if (found := re.search(pattern, text)) and found.group(1).strip():
                return found.group(1).strip()
    return None


def _owners_own(source: Source, header: list[str], columns: pd.DataFrame, owner: str | None) -> np.ndarray:
    """Rows whose other side (the mapped customer id: 交易对方) is the bill's owner: money the owner
    moved between their own accounts, no sale and no customer."""
    if owner is None:
        return np.zeros(len(columns), dtype=bool)
    at = next((i for i, t in _targets(source, header)[0].items() if t == "customers.customer_id"), None)
    if at is None or at not in columns:
        return np.zeros(len(columns), dtype=bool)
    return (columns[at].str.strip() == owner).to_numpy()


def _count_not_sales(balance: ImportBalance, source: Source, header: list[str], found: dict[int, str],
                     columns: pd.DataFrame, left: np.ndarray, *, own: np.ndarray | None = None) -> None:
    """The money of the rows left out as not sales (a source's ``keep``), by kind (the value of its
    first ``keep`` column; ``own``: rows of the bill's owner's own money, "owner's own"), into ``balance``."""
    position = {normalize(h): i for i, h in enumerate(header)}
    kind_at = next((position[normalize(c)] for c in source.keep if normalize(c) in position), None)
    amount_at = next((i for i, t in found.items() if t == "orders.amount"), None)
    currency_at = next((i for i, t in found.items() if t == "orders.currency"), None)
    part = columns[left]
    kinds = part[kind_at].str.strip() if kind_at is not None else pd.Series("other", index=part.index)
    if own is not None:
        kinds = kinds.where(~own[left], "owner's own")
    amounts = money(_cells(part[amount_at], source).astype(object)) if amount_at is not None else np.zeros(len(part))
    currencies = (part[currency_at].str.strip().str.upper() if currency_at is not None
                  else pd.Series(source.currency, index=part.index, dtype=object))
    balance.count_not_sales(kinds, amounts, currencies=currencies)


def _count_money(balance: ImportBalance, source: Source, header: list[str], data: list[list[str]], rows: np.ndarray,
                 frame: pd.DataFrame, kept_rows: np.ndarray, *, gone: dict[int, str],
                 prepared: dict[str, pd.DataFrame], part: SourceImportResult) -> dict[str, pd.DataFrame]:
    """Count one chunk into ``balance``: the file's side from the kept rows' cells (``frame``, and
    ``data`` for the columns the import does not read), the store's side from the orders written
    (``prepared``); returns ``prepared`` with the earlier imports' orders that refund rows pay back."""
    kept_data = [data[i] for i in kept_rows - rows[0]]
    if source.amount == "lines":
        amount = (money(frame["order_items.quantity"].astype(object))
                  * money(frame["order_items.unit_price"].astype(object)))
    else:
        amount = money(frame["orders.amount"].astype(object))
    status = frame["orders.status"].astype(object) if "orders.status" in frame else None
    refund = recorded_refunds(header, kept_data, amount=amount, status=status,
                              refunded_status={k.lower() for k, v in source.statuses.items() if v == "refunded"})
    refund_of = (frame[REFUND_OF].astype(object).fillna("") != "").to_numpy() if REFUND_OF in frame else False
    currency = (frame["orders.currency"].astype(object).str.strip().str.upper() if "orders.currency" in frame
                else pd.Series(source.currency, index=frame.index, dtype=object))
    order_id = (frame["orders.order_id"].astype(object) if "orders.order_id" in frame
                else pd.Series(kept_rows.astype(str), index=frame.index))
    described = order_id.isin(part.described).to_numpy()
    balance.count_file(pd.DataFrame({
        "order_id": order_id.to_numpy(), "currency": currency.where(currency != "", None).to_numpy(), "amount": amount,
        "refund": refund, "refund_row": (amount < 0) & refund_of,
        "left_out": _left_out(kept_rows, gone, described=described)}),
        per_order=source.lines and source.amount == "total")
    stored = prepared.get("orders", pd.DataFrame())
    balance.count_stored(stored[~stored["order_id"].isin(part.described)] if part.described else stored,
                         source.currency)
    if part.described:  # the refunds their lines record must be on those orders too
        lines = pd.DataFrame({"order_id": order_id.to_numpy(), "currency": currency.where(currency != "", None).to_numpy(),
                              "refund": refund})
        balance.count_described_refunds(lines[described & (lines["refund"] > 0).to_numpy()],
                                        stored[stored["order_id"].isin(part.described)])
    balance.count_earlier_refunds([a for a, _ in part.earlier_refunds], currencies=[c for _, c in part.earlier_refunds])
    if part.earlier is None:
        return prepared
    orders = prepared.get("orders")
    earlier = part.earlier if orders is None else part.earlier.reindex(columns=orders.columns)
    return {**prepared, "orders": earlier if orders is None else pd.concat([orders, earlier], ignore_index=True)}


def _left_out(rows: np.ndarray, gone: dict[int, str], *, described: np.ndarray) -> np.ndarray:
    """Each row's part in the balance: "rejected" or "erased" (``gone``: file row -> which),
    "described" (a line of an order stored from the tool's order export), else ""."""
    out = np.where(described, "described", "").astype(object)
    if gone:
        numbers = np.fromiter(gone, dtype=np.int64, count=len(gone))
        at = np.flatnonzero(np.isin(rows, numbers))
        out[at] = [gone[int(r)] for r in rows[at]]
    return out


def _not_sales_note(source: Source, left_out: int) -> str:
    kinds = ", ".join(f"{c} {' / '.join(v)}" for c, v in source.keep.items())
    return tn("{n} row that is not a sale was left out (only {kinds} are sales)",
              "{n} rows that are not sales were left out (only {kinds} are sales)", n=left_out, kinds=kinds)


def _each_distinct(values: pd.Series, rule: Callable[[str], str]) -> pd.Series:
    """``rule`` applied to each distinct text of ``values`` once (a missing value stays None): a
    status or currency column repeats a few words over a million lines."""
    codes, uniques = pd.factorize(values)
    done = np.array([*map(rule, uniques), None], dtype=object)
    return pd.Series(done[codes], index=values.index, dtype=object)


def _carry_down(frame: pd.DataFrame, key: str, per_line: tuple[str, ...] = ()) -> pd.DataFrame:
    """Order fields written on an order's first line only, carried to its other lines (not the
    ``per_line`` ones, which each line has of its own). A categorical column (:func:`_text`) is
    carried by its codes."""
    order_level = [c for c in frame.columns
                   if c.split(".")[0] in ("orders", "customers") and c != key and c not in per_line]
    codes, uniques = pd.factorize(frame[key])  # the key is text: every row has an order (maybe "")
    frame = frame.copy(deep=False)
    for column in order_level:
        kind = frame[column].dtype
        coded = isinstance(kind, pd.CategoricalDtype)
        values = frame[column].cat.codes.to_numpy() if coded else frame[column].to_numpy(dtype=object)
        blank = kind.categories.get_loc("") if coded else ""
        written = values != blank
        if written.all():
            continue
        first = np.full(len(uniques), -1)
        at = np.flatnonzero(written)[::-1]
        first[codes[at]] = at  # written last for each order: its first non-empty line
        source = first[codes]
        carried = np.where(source >= 0, values[np.maximum(source, 0)], blank)
        frame[column] = pd.Categorical.from_codes(carried, dtype=kind) if coded else carried
    return frame


# ---------------------------------------------------------------------------------- cleaning
def _clean(frame: pd.DataFrame, dayfirst: bool | None, rows: np.ndarray, errors: list[RowError]) -> dict[str, pd.Series]:
    """Every target column cleaned as its store column (amounts and quantities may be negative: refunds)."""
    out = {}
    for target in frame.columns:
        table, name = target.split(".")
        if target in (CANCELLED, REFUND_OF, AFTER_SALE, "orders.status"):  # the tool's own words, read by _status
            words = frame[target].astype(object)
            out[target] = words.where(words != "", None)
            continue
        column: Column = TABLES[table].column("amount" if target in (ADJUSTED, LINE_REFUND) else name)
        if name in ("amount", "quantity"):
            column = replace(column, minimum=None)
        column = replace(column, required=False)  # what is required is checked per table below
        found: list[RowError] = []
        out[target] = clean_column(column, frame[target], dayfirst=dayfirst, errors=found, rows=rows)
        errors += [replace(e, column=target) for e in found]
    return out


def _status(source: Source, frame: pd.DataFrame, clean: dict[str, pd.Series], rows: np.ndarray,
            errors: list[RowError], notes: list[str]) -> pd.Series:
    if "orders.status" not in frame:
        notes.append(t("the export has no status column: every order was taken as paid"))
        status = pd.Series("paid", index=frame.index, dtype=object)
    else:
        text = _each_distinct(frame["orders.status"], lambda v: v.strip().lower())
        status = text.map({k.lower(): v for k, v in source.statuses.items()})
        status[status.isna() & ~np.isnan(partial_refunds(text))] = "paid"  # 已退款(￥50.00): paid, part back
        for idx in np.flatnonzero((status.isna() & (text != "")).to_numpy()):
            errors.append(RowError(int(rows[idx]), "orders.status", frame["orders.status"].iat[idx],
                                   t("is not a status of {source} ({statuses})", source=source.title,
                                     statuses=", ".join(source.statuses))))
    if CANCELLED in clean:
        status = status.where(clean[CANCELLED].isna(), "cancelled")
    return status


# ---------------------------------------------------------------------------------- building
def _short_id(prefix: str, *parts: object) -> str:
    return prefix + hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:10]


def _customer_keys(db: Database, clean: dict[str, pd.Series], index: pd.Index, in_file: dict[str, str]) -> pd.Series:
    """Each row's customer id: the store's customer with its e-mail, else the id the export gives,
    else the export's id for that e-mail on another row, else one made from the e-mail; None for a
    row without any identity. The e-mail comes first so that a person keeps one record whichever
    tool's export (each with ids of its own) came in first. ``in_file`` ({e-mail: id the export
    gives it}) is kept across the chunks of one file: this chunk's pairs are added to it."""
    none = pd.Series([None] * len(index), index=index, dtype=object)
    given = clean.get("customers.customer_id", none)
    emails = clean.get("customers.email", none)
    pairs = pd.DataFrame({"email": emails, "id": given}).dropna().drop_duplicates("email")
    for email, cid in zip(pairs["email"], pairs["id"]):
        in_file.setdefault(email, cid)
    ids = emails.map(known_emails(db, emails))
    ids = ids.where(ids.notna(), given)
    ids = ids.where(ids.notna(), emails.map(in_file))
    made = ids.isna() & emails.notna()
    ids[made] = emails[made].map({e: stable_customer_id(e) for e in emails[made].unique()})
    return ids.astype(object).where(ids.notna(), None)


def _last_non_empty(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per ``key``: each column's last non-empty value (a later line or row wins)."""
    return frame.groupby(key, sort=False).last().reset_index()


def _build(db: Database, source: Source, frame: pd.DataFrame, clean: dict[str, pd.Series], rows: np.ndarray,
           errors: list[RowError], result: SourceImportResult, in_file: dict[str, str]) -> dict[str, pd.DataFrame]:
    """The store tables these rows fill, one frame each, keyed and de-duplicated."""
    tables: dict[str, pd.DataFrame] = {}
    customer_id = _customer_keys(db, clean, frame.index, in_file)
    # Here every row's identifiers are known: customer_id, clean["customers.email"], clean["customers.phone"],
    # clean["orders.order_id"] (the one place to check a row against anything keyed on a person).
    has_orders = "orders.order_id" in clean
    refunds = _refund_rows(clean, len(frame))
    if has_orders:
        order_id = clean["orders.order_id"]
        for idx in np.flatnonzero(order_id.isna().to_numpy()):
            errors.append(RowError(int(rows[idx]), "orders.order_id", "", "required"))
        guest = customer_id.isna() & order_id.notna() & ~refunds  # a refund row is no order of its own
        customer_id = customer_id.copy()
        customer_id[guest] = [_short_id("G-", source.key, o) for o in order_id[guest]]
        result.guest_orders = int(order_id[guest].nunique())
    customers = pd.DataFrame({"customer_id": customer_id})
    for target, values in clean.items():
        table, name = target.split(".")
        if table == "customers" and name != "customer_id":
            customers[name] = values
    if has_orders:
        customers["tags"] = np.where(guest, "guest", None)
    customers = customers[~refunds]  # the other side of a refund row is the business itself
    if "feedback.submitted_at" in clean:  # a response never submitted is left out whole (see _feedback)
        customers = customers[clean["feedback.submitted_at"].notna().to_numpy()[~refunds]]
    tables["customers"] = _last_non_empty(customers.dropna(subset=["customer_id"]), "customer_id")
    if has_orders:
        tables.update(_orders(source, frame, clean, customer_id, rows, errors, result, refunds))
        if refunds.any():
            result.earlier = _refunds_of_earlier_payments(db, source, clean, rows, refunds, errors, result)
    if "feedback.submitted_at" in clean:
        tables["feedback"] = _feedback(source, clean, customer_id, notes=result.notes,
                                       stamps=frame["feedback.submitted_at"].astype(object))
    return tables


def _received_sales(source: Source, header: list[str], raw: pd.DataFrame) -> int:
    """How many kept rows are of a ``received_only`` kind: money a customer sent outside a checkout
    (a PayPal General Payment), taken as a sale."""
    position = {normalize(h): i for i, h in enumerate(header)}
    return sum(int(raw[position[normalize(c)]].str.strip().isin(v).sum())
               for c, v in source.received_only.items() if normalize(c) in position)


def _refund_rows(clean: dict[str, pd.Series], n: int) -> np.ndarray:
    """Rows paying back (negative amount) the payment they name (by ``refund_of``), in this file or
    an earlier one: never an order or a customer of their own."""
    if REFUND_OF not in clean or "orders.amount" not in clean:
        return np.zeros(n, dtype=bool)
    amount = pd.to_numeric(clean["orders.amount"], errors="coerce")
    return ((amount < 0) & clean[REFUND_OF].notna()).to_numpy()


def _refunds_of_earlier_payments(db: Database, source: Source, clean: dict[str, pd.Series], rows: np.ndarray,
                                 refunds: np.ndarray, errors: list[RowError], result: SourceImportResult
                                 ) -> pd.DataFrame | None:
    """The stored orders (of an earlier import) that refund rows of this file pay back, with their
    ``refunded_amount`` and status updated: the refunded amount becomes what this file's refund
    rows pay back, unless the store already holds more (importing the file again changes nothing);
    paid back whole, the order is ``refunded``. A refund of a payment neither in this file nor in the
    store is an error of its row. The money is added to ``result.earlier_refunds`` for the balance."""
    listed = set(clean["orders.order_id"][~refunds].dropna())
    target = clean[REFUND_OF][refunds]
    elsewhere = ~target.isin(listed).to_numpy()
    if not elsewhere.any():
        return None
    ids = list(dict.fromkeys(target[elsewhere]))
    marks = ", ".join("?" * len(ids))
    stored = {r["order_id"]: r for r in db.query(
        f"SELECT order_id, amount, refunded_amount, status, currency FROM orders WHERE order_id IN ({marks})", ids)}
    amount = pd.to_numeric(clean["orders.amount"][refunds], errors="coerce").abs()[elsewhere]
    currency = (clean["orders.currency"][refunds][elsewhere] if "orders.currency" in clean
                else pd.Series(source.currency, index=amount.index))
    back: dict[str, float] = {}
    for order_id, value, cur, row in zip(target[elsewhere], amount, currency, rows[refunds][elsewhere]):
        if order_id not in stored:
            errors.append(RowError(int(row), REFUND_OF, order_id,
                                   "pays back a payment that is neither in this file nor in the store: import the "
                                   "download that holds the payment first (or leave this row out with "
                                   "--skip-bad-rows)"))
            continue
        back[order_id] = back.get(order_id, 0.0) + float(value)
        said = cur.upper() if isinstance(cur, str) else ""  # a source naming no currency: the order's own
        result.earlier_refunds.append((float(value), said or stored[order_id]["currency"]))
    updated = []
    for order_id, paid_back in back.items():
        order = stored[order_id]
        refunded = min(float(order["amount"]), max(float(order["refunded_amount"] or 0.0), round(paid_back, 2)))
        whole = refunded >= float(order["amount"]) - 0.005
        updated.append({"order_id": order_id, "refunded_amount": refunded,
                        "status": "refunded" if whole else order["status"]})
    return pd.DataFrame(updated) if updated else None


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
    if AFTER_SALE in lines and source.refunded_when:  # a line closed because its money was paid back was sold
        lines.loc[_paid_back_lines(source, lines) & (lines["status"] == "cancelled"), "status"] = "paid"
    if source.credit_note_prefix:
        credit = order_id.fillna("").str.startswith(source.credit_note_prefix)
        lines.loc[credit, "status"] = "refunded"
    if "orders.currency" in lines:
        lines["orders.currency"] = _each_distinct(lines["orders.currency"], str.upper)
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
    if "orders.status" in clean:
        lines["_words"] = clean["orders.status"]
    order_level = ["customer_id", "status", "_row", *(f"orders.{c}" for c in ORDER_FIELDS), ADJUSTED, "_words"]
    first = lines[["order_id", *(c for c in order_level if c in lines)]].groupby("order_id", sort=False).first()
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
    for name in ORDER_FIELDS[2:]:
        if f"orders.{name}" in first:
            orders[name] = first[f"orders.{name}"].to_numpy()
    first_rows = first["_row"].to_numpy()
    for column in ("order_date", "amount", "status"):
        for idx in np.flatnonzero(pd.isna(orders[column]).to_numpy()):
            errors.append(RowError(int(first_rows[idx]), f"orders.{column}", "", "required"))
    orders = settle_refunds(orders, first_rows, errors=errors)
    orders = _refunds_written_on_orders(source, lines, first, orders)
    if refunds.any():
        orders = _apply_refunds(orders, paid_back[paid_back["order_id"].isin(set(orders["order_id"]))])
    out["orders"] = orders
    return out


def line_discounts(lines: pd.DataFrame) -> pd.Series:
    """The money each line's discounts took off, all its units together (``order_items.discount``;
    NaN where the export says nothing of one)."""
    if "order_items.discount" not in lines:
        return pd.Series(np.nan, index=lines.index)
    return lines["order_items.discount"].astype(float)


def _refunds_written_on_orders(source: Source, lines: pd.DataFrame, first: pd.DataFrame,
                               orders: pd.DataFrame) -> pd.DataFrame:
    """Refunds a tool writes on the order rather than as a refunded amount: an adjusted total (the
    order's total less what was paid back: Etsy), a partial refund in the status (``已退款(￥50.00)``:
    WeChat) and after-sale lines paid back whole (Douyin 售后状态 退款成功, each line's own amount).
    The refunded amount is the largest the order's cells say; paid back whole, the order is refunded."""
    amount = pd.to_numeric(orders["amount"], errors="coerce")
    back = pd.Series(0.0, index=orders.index)
    if ADJUSTED in first:
        adjusted = pd.to_numeric(pd.Series(first[ADJUSTED].to_numpy(), index=orders.index), errors="coerce")
        back = back.where(adjusted.isna(), np.maximum(back, (amount - adjusted.abs()).clip(lower=0.0)))
    if "_words" in first:
        part = partial_refunds(pd.Series(first["_words"].to_numpy(), index=orders.index))
        back = np.maximum(back, np.nan_to_num(np.abs(part)))
    if AFTER_SALE in lines and source.refunded_when:
        done = _paid_back_lines(source, lines)
        line_money = (lines["orders.amount"].astype(float) if source.amount == "line_totals"
                      else pd.Series(np.inf, index=lines.index))
        if LINE_REFUND in lines:  # the money the after-sale paid back, when the export says it
            said = pd.to_numeric(lines[LINE_REFUND], errors="coerce").abs()
            line_money = said.where(said > 0, line_money).clip(upper=line_money)
        per_order = line_money.where(done, 0.0).groupby(lines["order_id"], sort=False).sum()
        back = np.maximum(back, orders["order_id"].map(per_order).fillna(0.0).clip(upper=amount).to_numpy())
    back = pd.Series(np.minimum(np.asarray(back, dtype=float), amount.fillna(0.0).to_numpy()), index=orders.index)
    if not (back > 0).any():
        return orders
    refunded = np.maximum(pd.to_numeric(orders["refunded_amount"], errors="coerce").fillna(0.0), back.round(2))
    whole = (back > 0) & (refunded >= amount - 0.005)
    status = orders["status"].where(~(whole & (orders["status"] == "paid")), "refunded")
    return orders.assign(refunded_amount=refunded.astype(object), status=status)


def _paid_back_lines(source: Source, lines: pd.DataFrame) -> pd.Series:
    """Lines whose after-sale status says their money was paid back (a source's ``refunded_when``)."""
    return lines[AFTER_SALE].isin({v for vs in source.refunded_when.values() for v in vs})


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
    discount = line_discounts(kept)
    kept = kept.assign(quantity=quantity, money=quantity * price - discount.fillna(0.0), discount=discount)
    grouped = kept.groupby(["order_id", "product_id"], sort=False)
    summed = pd.DataFrame({"quantity": grouped["quantity"].sum(), "money": grouped["money"].sum(min_count=1),
                           "discount": grouped["discount"].sum(min_count=1)}).reset_index()
    items = pd.DataFrame({"order_id": summed["order_id"], "product_id": summed["product_id"],
                          "quantity": summed["quantity"].round().astype(int).astype(object),
                          "unit_price": (summed["money"] / summed["quantity"]).round(4)})
    items["unit_price"] = items["unit_price"].astype(object).where(items["unit_price"].notna(), None)
    if "order_items.discount" in kept:  # the price paid is after the discount; the discount is kept
        items["discount"] = summed["discount"].round(2).astype(object).where(summed["discount"].notna(), None)
    products = _last_non_empty(kept.assign(unit_price=price)[["product_id", "name", "unit_price"]], "product_id")
    products["unit_price"] = products["unit_price"].astype(object).where(products["unit_price"].notna(), None)
    return items, products


def _rates(source: Source, header: list[str], raw: pd.DataFrame, found: dict[int, str], rows: np.ndarray,
           dayfirst: bool | None, errors: list[RowError]) -> pd.DataFrame:
    """A wide rates file (``source.rates_per``) as ``exchange_rates`` rows: one per currency column
    (a header that is an ISO code) and day with a rate; the tool's "no value" cells are left out."""
    date_at = next(i for i, t in found.items() if t == f"{RATES.name}.rate_date")
    bad: list[RowError] = []
    day = clean_column(RATES.column("rate_date"), raw[date_at], dayfirst=dayfirst, errors=bad, rows=rows)
    errors += [replace(e, column=header[date_at].strip()) for e in bad]
    rate = RATES.column("per_eur")
    frames = []
    for i, name in enumerate(header):
        code = name.strip().upper()
        if i == date_at or not re.fullmatch(r"[A-Z]{3}", code):
            continue
        cells = _cells(raw[i], source)
        bad = []
        per = clean_column(replace(rate, required=False), cells, dayfirst=dayfirst, errors=bad, rows=rows)
        errors += [replace(e, column=name.strip()) for e in bad]
        frames.append(pd.DataFrame({"currency": code, "rate_date": day, "per_eur": per}).dropna())
    if not frames:
        return pd.DataFrame(columns=RATES.column_names)
    return pd.concat(frames, ignore_index=True)


def _feedback(source: Source, clean: dict[str, pd.Series], customer_id: pd.Series, *, notes: list[str],
              stamps: pd.Series) -> pd.DataFrame:
    """The survey's answers. A response without a submission time (a partial response, left before
    the end) is left out; one without anyone's identity (an anonymous 问卷星 answer) is kept linked
    to nobody, its id made from its submission time as the file writes it (``stamps``, to the
    second) and its answers; both are counted in ``notes``."""
    submitted = clean["feedback.submitted_at"]
    if (unsent := submitted.isna().to_numpy()).any():
        notes.append(tn("{n} response never submitted (partial: no submission time) was left out",
                        "{n} responses never submitted (partial: no submission time) were left out", n=int(unsent.sum())))
        clean = {k: v[~unsent].reset_index(drop=True) for k, v in clean.items()}
        customer_id, stamps = customer_id[~unsent].reset_index(drop=True), stamps[~unsent].reset_index(drop=True)
        submitted = clean["feedback.submitted_at"]
    answers = [f"feedback.{c}" for c in ("nps", "csat", "comment") if f"feedback.{c}" in clean]
    ids = [_short_id(source.id_prefix, c, s) if c is not None else
           _short_id(source.id_prefix, "anonymous", stamp, *(clean[a].iat[k] for a in answers))
           for k, (c, s, stamp) in enumerate(zip(customer_id, submitted, stamps))]
    frame = pd.DataFrame({"feedback_id": ids, "customer_id": customer_id, "submitted_at": submitted})
    for target, values in clean.items():
        table, name = target.split(".")
        if table == "feedback" and name != "submitted_at":
            frame[name] = values
    if anonymous := int(customer_id.isna().sum()):
        notes.append(tn("{n} anonymous answer (no e-mail or other identity) was kept: it counts in NPS and CSAT and "
                        "is linked to nobody", "{n} anonymous answers (no e-mail or other identity) were kept: they "
                        "count in NPS and CSAT and are linked to nobody", n=anonymous))
    return frame


# ----------------------------------------------------------------------------------- the import
def import_any(db: Database, path: str | os.PathLike[str], *, encoding: str | None = None,
               dayfirst: bool | None = None, dry_run: bool = False,
               skip_bad_rows: bool = False) -> SourceImportResult | ImportResult:
    """``crm import FILE``: a known tool's export (:func:`import_export`), else a layout imported
    before with ``--map`` (into the table and with the mapping kept for it)."""
    header, found = file_source(Path(path), encoding)
    saved = remembered_mapping(db, header)
    if found is None and saved is not None:
        return import_file(db, saved[0], path=path, encoding=encoding, dayfirst=dayfirst, dry_run=dry_run,
                           skip_bad_rows=skip_bad_rows)
    return import_export(db, path, encoding=encoding, dayfirst=dayfirst, dry_run=dry_run, skip_bad_rows=skip_bad_rows)


def import_export(db: Database, path: str | os.PathLike[str], *, encoding: str | None = None,
                  dayfirst: bool | None = None, dry_run: bool = False, skip_bad_rows: bool = False,
                  chunk_rows: int = CHUNK_ROWS) -> SourceImportResult:
    """Recognise ``path``'s source and import everything it holds; see the module doc.

    The file is read, cleaned and written about ``chunk_rows`` rows at a time inside one write
    transaction, cut between orders (:func:`_order_batches`), so a million-line export needs the
    memory of a chunk. Raises :class:`ImportRejected` (nothing written) when the source is not
    recognised or a row is bad; the message names the file, row, column and reason. With
    ``skip_bad_rows`` the good rows are written and the bad ones, with the other lines of their
    orders, go with their reasons to ``<file>.rejects.csv`` beside it (as a named-table import does).
    """
    path = Path(path)
    header, chunks = read_chunks(path, encoding, chunk_rows=chunk_rows)
    first = next(chunks, None)
    head = first.data if first else []
    found_source = find_source(header, head)
    if found_source is None:
        raise ImportRejected(
            f"{path.name}: not an export this workbook knows; {header_listing(header)}. "
            "Name the table it belongs to, e.g. `crm import orders FILE`, with --map 'Their Header=column' if needed; "
            "docs/bringing-your-data-in.md lists the exports recognised."
        )
    source, at = found_source
    preamble = [header, *head[:at - 1]] if at else []  # a bill's account details above its header
    if at:
        header = head[at - 1]
    found, ignored = _targets(source, header)
    refuse_repeated_headers(path, header, read=found)
    if source.rates_per:  # the other columns are the currencies, not columns left aside
        ignored = []
    result = SourceImportResult(path, source, {header[i].strip(): t for i, t in found.items()}, ignored,
                                dry_run=dry_run)
    lines = _data_lines(itertools.chain([head], (c.data for c in chunks)), at, closing=source.closing_rows)
    batches = _order_batches(source, found, lines)
    errors: list[RowError] = []
    rejected: list[RowError] = []
    bad_lines: dict[int, list[str]] = {}  # the rejected rows as the file has them
    in_file: dict[str, str] = {}  # e-mail -> the customer id the export gives it, over all chunks
    decided = source.dayfirst if dayfirst is None else dayfirst
    row, left_out, received, owned = at + 2, 0, 0, 0
    owner = _bill_owner(source, preamble) if source.owner_named else None
    counts_money = not source.rates_per and ("orders.amount" in found.values() or source.amount == "lines")
    gone: dict[int, str] = {}  # file row -> "rejected" or "erased": left out, for the balance
    if skip_bad_rows and not dry_run:  # before anything is written: the rejects file would go through a link
        refuse_link(rejects_path(path))
    try:
        with import_page_cache(db), without_cyclic_gc(), db.atomic() if dry_run else write_transaction(db):
            tables = _ExportBatches(db, path, result)
            for data in batches:
                rows = np.arange(row, row + len(data))
                row += len(data)
                columns = _columns(source, header, found, data)
                raw, kept_rows = _kept(source, header, columns, rows)
                own = _owners_own(source, header, columns, owner)
                owned += int(own.sum())
                if own.any():  # the owner's own transfers: no sale
                    raw, kept_rows = raw[~own[np.isin(rows, kept_rows)]].reset_index(drop=True), \
                        kept_rows[~np.isin(kept_rows, rows[own])]
                left_out += len(rows) - len(kept_rows)
                received += _received_sales(source, header, raw)
                if counts_money and len(kept_rows) < len(rows):
                    _count_not_sales(result.balance, source, header, found, columns, ~np.isin(rows, kept_rows),
                                     own=own)
                if raw.empty:
                    continue
                if source.rates_per:
                    part, prepared, chunk_errors = result, *_prepare_rates(source, header, raw, found, kept_rows, dayfirst)
                else:
                    frame = _frame(source, raw, found)
                    frame = _mark_bill_refunds(source, header, raw, frame)
                    frame = _without_own_account(source, header, raw, frame, result.notes)
                    frame = _without_masked_identity(frame)
                    orders = frame["orders.order_id"].unique() if "orders.order_id" in frame else ()
                    if source.lines and (split := tables.order_seen_before(orders)):
                        raise ImportRejected(f"{path.name}: the lines of order {split} are not next to each other; "
                                             "sort the export by order (as the tool writes it) and import it again")
                    if decided is None and has_day_month(frame, _date_targets(frame)):  # once, from the whole file
                        dates, numbers = _file_dates(path, encoding, source, header, found, at, result.mapping)
                        decided = decide_dayfirst(path, dates, dayfirst=None, rows=numbers)
                    part, prepared, chunk_errors = _prepare(db, source, frame, kept_rows, decided, result, in_file)
                chunk_errors = nul_errors(header, rows, data=data) + chunk_errors  # a NUL in any column, read or not
                if chunk_errors and skip_bad_rows:
                    bad = chunk_errors + _other_lines_of_bad_orders(source, header, raw, kept_rows, found, chunk_errors)
                    good = ~np.isin(kept_rows, [e.row for e in bad])
                    if source.rates_per:
                        prepared, chunk_errors = _prepare_rates(source, header, raw[good].reset_index(drop=True),
                                                                found, kept_rows[good], dayfirst)
                    else:
                        part, prepared, chunk_errors = _prepare(db, source, frame[good].reset_index(drop=True),
                                                                kept_rows[good], decided, result, in_file)
                    rejected += bad
                    bad_rows = {e.row for e in bad}
                    bad_lines.update((int(r), d) for r, d in zip(rows, data) if r in bad_rows)
                    gone.update(dict.fromkeys(bad_rows, "rejected"))
                errors += chunk_errors
                if errors:
                    continue  # nothing more is written: the other chunks are read for their problems only
                if part is not result:
                    result.add(part)
                if counts_money:
                    gone.update(dict.fromkeys(part.erased_rows, "erased"))
                    prepared = _count_money(result.balance, source, header, data, rows, frame, kept_rows,
                                            gone=gone, prepared=prepared, part=part)
                tables.add(prepared)
            if row == at + 2:
                raise ImportRejected(f"{path.name}: only a header row, no data")
            if errors:
                raise ImportRejected(rejection_message(
                    path, errors, hint="Fix these rows in the export (or in the tool) and import it again, or import "
                    "the good ones with --skip-bad-rows."))
            if not (result.balance.ok or skip_bad_rows):
                raise ImportRejected(
                    f"{path.name}: nothing was imported: the money does not balance: {result.balance.difference()}. "
                    f"{result.balance.message}\nThe export holds money the import would not store as the tool says "
                    "(a refund column renamed, a layout this workbook does not know yet): check the export against "
                    "the tool, or import it with --skip-bad-rows to store it with the difference listed.")
            tables.close(rejects_path(path) if rejected and not dry_run else None)
            if result.batch_ids and result.balance.currencies:
                marks = ", ".join("?" * len(result.batch_ids))
                db.execute(f"UPDATE import_log SET balance = ? WHERE batch_id IN ({marks})",
                           [result.balance.to_json(), *result.batch_ids])
    except sqlite3.DatabaseError as exc:
        raise ImportRejected(f"{path.name}: nothing was imported: {explain_error(store_path(db), exc)}") from None
    if left_out:
        result.notes.insert(0, _not_sales_note(source, left_out))
    if owned:
        result.notes.append(tn("{n} row of {owner}'s own money (the bill's owner, never a customer) left out as not "
                               "sales", "{n} rows of {owner}'s own money (the bill's owner, never a customer) left out "
                               "as not sales", n=owned, owner=owner))
    if received:
        kinds = ", ".join(v for values in source.received_only.values() for v in values)
        result.notes.append(tn("{n} payment received from customers outside a checkout ({kinds}) was taken as sales",
                               "{n} payments received from customers outside a checkout ({kinds}) were taken as "
                               "sales", n=received, kinds=kinds))
    result.rejected = len(bad_lines)
    if rejected and not dry_run:
        result.rejects_path = write_rejects(path, header, raw_rows=bad_lines, errors=rejected)
    if not dry_run and (note := currency_note(db)):
        result.notes.append(t("note: {note}", note=note))
    return result


def _data_lines(batches: Iterator[list[list[str]]], at: int, *, closing: tuple[str, ...] = ()
                ) -> Iterator[list[list[str]]]:
    """The rows below the header (the file's first ``at`` rows are a preamble and the header), a
    payment bill's closing ``#`` lines and the export's closing summary rows (first cell starting
    with one of ``closing``: Gumroad's ``Totals``, the Alipay download's ``共8笔记录``) left out."""
    for data in batches:
        skipped = min(at, len(data))
        data, at = data[skipped:], at - skipped
        data = [d for d in data if (len(d) > 1 or (d and not d[0].startswith("#")))
                and not (closing and d and d[0].strip().startswith(closing))]
        if data:
            yield data


def _order_batches(source: Source, found: dict[int, str], batches: Iterator[list[list[str]]]
                   ) -> Iterator[list[list[str]]]:
    """The rows in batches cut between orders: the lines of the order a batch ends in go with the
    next batch, so that an order is built from all its lines (order fields carried from its first
    line, its products summed). A source whose refund rows name the order they pay back (PayPal
    lists them before it) is read whole: such files are a person's payment history, small."""
    if source.refund_of or source.refund_rows:
        whole = [d for data in batches for d in data]
        if whole:
            yield whole
        return
    at = next((i for i, t in found.items() if t == "orders.order_id"), None)
    if at is None:
        yield from batches
        return

    def order(line: list[str]) -> str:
        return _cell(line[at], source.empty) if at < len(line) else ""

    carried: list[list[str]] = []
    batches = iter(batches)
    data = next(batches, None)
    while data is not None:
        following = next(batches, None)
        data = carried + data if carried else data
        if following is None:  # the file's last rows: nothing to cut
            yield data
            return
        last = order(data[-1])
        cut = len(data) - 1
        while cut > 0 and order(data[cut - 1]) == last:
            cut -= 1
        if cut:
            yield data[:cut]
        carried, data = data[cut:], following


def _columns(source: Source, header: list[str], found: dict[int, str], data: list[list[str]]) -> pd.DataFrame:
    """Rows of the export as text, a column per file column the import reads (labelled by its
    position; the other columns of a tool's wide export are never held)."""
    position = {normalize(h): i for i, h in enumerate(header)}
    extra = [*source.keep, *source.refund_rows, *source.received_only, *([source.own_account] if source.own_account
                                                                        else [])]
    wanted = (range(len(header)) if source.rates_per else
              sorted({*found, *(position[normalize(c)] for c in extra if normalize(c) in position)}))
    return text_columns(data, {i: i for i in wanted}, width=len(header))


def _frame(source: Source, raw: pd.DataFrame, found: dict[int, str]) -> pd.DataFrame:
    """The rows' text by target ("table.column"), the source's constants added and order fields
    carried to every line of their order."""
    frame = _combine(raw, found, source)
    for target, value in source.constants.items():
        frame[target] = value
    if source.lines and "orders.order_id" in frame:
        frame = _carry_down(frame, "orders.order_id", per_line=("orders.amount", AFTER_SALE, LINE_REFUND)
                            if source.amount == "line_totals" else ())
    return frame


def _date_targets(frame: pd.DataFrame) -> list[str]:
    return [t for t in frame if t.split(".")[1] in ("order_date", "submitted_at")]


def _file_dates(path: Path, encoding: str | None, source: Source, header: list[str], found: dict[int, str],
                at: int, mapping: dict[str, str]) -> tuple[dict[str, pd.Series], np.ndarray]:
    """Every date of the export's sales rows ({header: values}, a second read of the file, for
    :func:`decide_dayfirst`) and their row numbers."""
    dates = {i: t for i, t in found.items() if t.split(".")[1] in ("order_date", "submitted_at")}
    _, chunks = read_chunks(path, encoding)
    parts, numbers, row = [], [], at + 2
    for data in _data_lines((c.data for c in chunks), at, closing=source.closing_rows):
        rows = np.arange(row, row + len(data))
        row += len(data)
        raw, rows = _kept(source, header, _columns(source, header, found, data), rows)
        parts.append(_combine(raw, dates, source).astype(object))
        numbers.append(rows)
    frame = pd.concat(parts, ignore_index=True)
    headers = {t: h for h, t in mapping.items()}
    return {headers[t]: frame[t] for t in frame}, np.concatenate(numbers)


def _prepare(db: Database, source: Source, frame: pd.DataFrame, rows: np.ndarray, dayfirst: bool | None,
             result: SourceImportResult, in_file: dict[str, str]
             ) -> tuple[SourceImportResult, dict[str, pd.DataFrame], list[RowError]]:
    """The store tables ``frame``'s rows fill, what to add to ``result`` for them (a result of
    their own: counts and notes) and their problems (in the file's own terms)."""
    part = replace(result, tables={}, notes=[], guest_orders=0, erased_skipped=0, erased_rows=[], earlier=None,
                   earlier_refunds=[], described=set())
    errors: list[RowError] = []
    clean = _clean(frame, dayfirst, rows, errors)
    frame, clean, rows = _skip_erased(db, frame, clean, rows, errors, part)
    tables = _build(db, source, frame, clean, rows, errors, part, in_file)
    if source.lines_of and "orders" in tables:
        tables = _orders_stored_by_their_export(db, tables, part)
    return part, tables, _in_file_terms(errors, result.mapping)


def _orders_stored_by_their_export(db: Database, tables: dict[str, pd.DataFrame],
                                   result: SourceImportResult) -> dict[str, pd.DataFrame]:
    """Lines of orders already in the store (from the tool's order export, the source's ``lines_of``)
    fill the items and products; the order keeps its amount (what the buyer paid, shipping and tax
    included), status and buyer, and no second customer is made for it. Its refunded amount is the
    larger of the stored one and what the lines say was paid back (Taobao's 宝贝报表 is where its
    refunds are written); paid back whole, the order is ``refunded``. Such orders are named in
    ``result.described`` (for the balance)."""
    orders = tables["orders"]
    ids = orders["order_id"].dropna().tolist()
    stored: dict[str, dict] = {}
    for at in range(0, len(ids), 500):
        part = ids[at:at + 500]
        stored |= {r["order_id"]: dict(r) for r in db.query(
            f"SELECT * FROM orders WHERE order_id IN ({', '.join('?' * len(part))})", part)}
    if not stored:
        return tables
    known = orders["order_id"].isin(stored).to_numpy()
    kept = orders.copy()
    lines_say = pd.to_numeric(kept["refunded_amount"], errors="coerce") if "refunded_amount" in kept else None
    for column in kept.columns:
        if column != "order_id":
            kept.loc[known, column] = [stored[o][column] for o in kept.loc[known, "order_id"]]
    if lines_say is not None and (lines_say[known] > 0).any():
        amount = pd.to_numeric(kept["amount"], errors="coerce")
        before = pd.to_numeric(kept["refunded_amount"], errors="coerce").fillna(0.0)
        refunded = np.minimum(np.maximum(before, lines_say.fillna(0.0)), amount).where(known, before)
        whole = known & (refunded > before) & (refunded >= amount - 0.005)
        kept["refunded_amount"] = refunded.round(2).astype(object)
        kept["status"] = kept["status"].where(~whole, "refunded")
    result.described |= set(stored)
    own = set(kept["customer_id"].dropna())  # the buyers of the orders still in the file
    customers = tables["customers"]
    made = set(orders.loc[known, "customer_id"].dropna()) - set(kept.loc[~known, "customer_id"].dropna())
    customers = customers[~customers["customer_id"].isin(made - own)]
    result.guest_orders -= sum(1 for c in made - own if str(c).startswith("G-"))  # no guest made for them
    return {**tables, "orders": kept, "customers": customers}


def _prepare_rates(source: Source, header: list[str], raw: pd.DataFrame, found: dict[int, str], rows: np.ndarray,
                   dayfirst: bool | None) -> tuple[dict[str, pd.DataFrame], list[RowError]]:
    errors: list[RowError] = []
    return {RATES.name: _rates(source, header, raw, found, rows, dayfirst, errors)}, errors


def _other_lines_of_bad_orders(source: Source, header: list[str], raw: pd.DataFrame, rows: np.ndarray, found: dict[int, str],
                               errors: list[RowError]) -> list[RowError]:
    """The good lines of an order one of whose lines is bad: left out with it, so that no order is
    written with part of its lines (and a wrong amount)."""
    at = next((i for i, t in found.items() if t == "orders.order_id"), None)
    if at is None or not source.lines:
        return []
    order = _cells(raw[at], source).astype(object)
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
    _, kept_rows, result.erased_skipped = skip_erased(db, identity, rows=rows, errors=errors)
    if not result.erased_skipped:
        return frame, clean, rows
    keep = np.isin(rows, kept_rows)  # file row numbers are unique: one per line
    result.erased_rows = [int(r) for r in rows[~keep]]
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


class _ExportBatches:
    """The import batches of one export: a :class:`TableBatch` per table it fills, opened at the
    table's first rows and written a chunk at a time inside the import's transaction; closed
    together, parents first, as one group (``crm undo-import`` takes the group back whole)."""

    def __init__(self, db: Database, path: Path, result: SourceImportResult) -> None:
        self.db, self.path, self.result = db, path, result
        self.batches: dict[str, TableBatch] = {}

    def add(self, tables: dict[str, pd.DataFrame]) -> None:
        """Write one chunk's tables (each keyed and de-duplicated), parents first."""
        for name in (*LOAD_ORDER, RATES.name):
            frame = tables.get(name)
            if frame is None or frame.empty:
                continue
            if name not in self.batches:
                self.result.tables[name] = ImportResult(table=name, file=self.path, dry_run=self.result.dry_run)
                self.batches[name] = TableBatch(self.db, schema_table(name), path=self.path,
                                                result=self.result.tables[name], keep_stored=True)
            self.batches[name].add(frame)

    def order_seen_before(self, order_ids: Iterable[str]) -> str | None:
        """One of ``order_ids`` that an earlier chunk wrote already, or None."""
        seen = self.batches["orders"].seen if "orders" in self.batches else {}
        return next((o for o in order_ids if (o,) in seen), None) if seen else None

    def close(self, rejects: Path | None) -> None:
        """Write each batch's bookkeeping (``rejects``: the file of the rows left out, for erasure)."""
        group_id = None
        tables = {}
        for name in (*LOAD_ORDER, RATES.name):
            if name not in self.batches:
                continue
            self.batches[name].close(rejects, group_id=group_id)
            tables[name] = self.result.tables[name]
            if group_id is None and tables[name].batch_id is not None:
                group_id = tables[name].batch_id
                self.db.execute("UPDATE import_log SET group_id = ? WHERE batch_id = ?", [group_id, group_id])
        self.result.tables = tables
