"""Importing what the owner's tools export (CSV, Excel) into the store.

``import_file(db, "orders", "export.csv")`` reads the file (delimiter and encoding detected,
UTF-8/UTF-16/GBK/GB18030, ``.xlsx``), matches its headers to the table's columns (English and
Chinese aliases, or an explicit mapping), cleans every value (thousands separators, currency
symbols, comma decimals, day/month order decided once for the whole file, Excel serial dates),
checks keys and references, and upserts by the table's natural key in one transaction:

- importing the same file twice changes nothing; an updated export updates the rows it changed;
- an empty cell never overwrites what the store knows (a new row takes :data:`NEW_ROW_DEFAULTS`);
- a phone's or an id's Excel guard (``'+1 514…``, ``="0012345"``) is taken off;
- customers without an id are matched on their e-mail; two rows for one person are merged;
- a ``mapping`` (``--map``) is kept for the file's layout (its headers) and used for the next file
  of the same layout when none is given;
- by default one bad row rejects the whole file and nothing is written; with
  ``skip_bad_rows=True`` the good rows are written and the bad ones go, with their reasons, to
  ``<file>.rejects.csv`` beside the input.

Each import is a batch in the import log; what it changed is kept for ``undo_import``.

A file is read as a stream and cleaned and written :data:`CHUNK_ROWS` rows at a time, all inside
the one transaction, so that a million-row export needs the memory of a chunk, not of the file
(``benchmarks/bench_import.py`` measures both against a bare ``executemany``).
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import hashlib
import itertools
import json
import os
import re
import sqlite3
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
from sqlite_utils import Database

from crm_helpers.errors import CrmError
from crm_helpers.i18n import t, tn
from crm_helpers.store.schema import IMPORT_BATCHES, IMPORT_LOG, IMPORT_MAPPINGS, Column, Table
from crm_helpers.store.schema import table as schema_table
from crm_helpers.ingest.sources import normalize
from crm_helpers.store.connection import explain_error, store_path, write_transaction
from crm_helpers.store.files import refuse_link
from crm_helpers.store.suppression import skip_erased
from crm_helpers.store.undo import Packer, differs, pack, table_items
from crm_helpers.store.validation import FALSE_WORDS, MAX_WHOLE_NUMBER, TRUE_WORDS, clean_value, date_parts

if TYPE_CHECKING:  # ingest.balance reads money with this module's cleaning: imported where it is used
    from crm_helpers.ingest.balance import ImportBalance

MAX_XLSX_BYTES = 50 * 1024 * 1024
MAX_XLSX_UNPACKED = 500 * 1024 * 1024
MAX_XLSX_RATIO = 100
SHOWN_ERRORS = 10
NOTHING_CHANGED = "nothing changed: the store holds all of it already (no import batch to undo)"
NEW_ROW_DEFAULTS: dict[str, dict[str, Any]] = {"orders": {"refunded_amount": 0.0}}
"""What a new row of a table gets in a column its file left empty (an order's refunded amount:
nothing paid back); a stored row keeps its own value (:class:`TableBatch`, ``keep_stored``)."""
CHUNK_ROWS = 100_000
"""Rows read, cleaned and written at a time: an import's memory grows with this, not with the file."""
IMPORT_CACHE_MIB = 256
"""SQLite's page cache while a large export is written (:func:`import_page_cache`)."""
SNIFF_BYTES = 4096
"""How much of a file's start tells binary from text, and UTF-16 without a byte-order mark."""
BINARY_NULS = 8
"""More NUL bytes than this in the first :data:`SNIFF_BYTES` make a file binary (refused whole);
fewer refuse only the rows that hold them (see :func:`nul_errors`)."""
LIST_LIMIT = 10
"""Names a message lists before it says how many more there are (:func:`cut_list`)."""
LEGACY_ENCODINGS = ("gb18030", "big5", "cp1252", "cp1250", "shift_jis")
"""Encodings tried when a file is not UTF-8/UTF-16; others must be given with ``--encoding``."""

_HEADER_ALIASES: dict[str, str] = {
    # English exports
    "email": "email", "e-mail": "email", "emailaddress": "email", "customeremail": "email", "mail": "email",
    "fullname": "name", "customername": "name", "contactname": "name", "name": "name",
    "phonenumber": "phone", "mobile": "phone", "telephone": "phone", "tel": "phone", "cell": "phone",
    "customerid": "customer_id", "customernumber": "customer_id", "clientid": "customer_id",
    "orderid": "order_id", "ordernumber": "order_id", "invoicenumber": "order_id", "orderno": "order_id",
    "orderdate": "order_date", "total": "amount", "ordertotal": "amount", "totalamount": "amount",
    "grandtotal": "amount", "productid": "product_id", "sku": "product_id", "productcode": "product_id",
    "qty": "quantity", "price": "unit_price", "unitprice": "unit_price", "companyname": "company",
    "organisation": "company", "organization": "company", "optin": "consent_marketing",
    "marketingconsent": "consent_marketing", "acceptsmarketing": "consent_marketing",
    # Chinese exports (Chinese Excel, WeChat tools, shop back-ends)
    "姓名": "name", "客户名称": "name", "客户姓名": "name", "邮箱": "email", "电子邮件": "email",
    "电子邮箱": "email", "电话": "phone", "手机": "phone", "手机号": "phone", "联系电话": "phone",
    "客户编号": "customer_id", "客户id": "customer_id", "客户代码": "customer_id", "订单号": "order_id",
    "订单编号": "order_id", "下单日期": "order_date", "订单日期": "order_date", "金额": "amount",
    "订单金额": "amount", "实付金额": "amount", "公司": "company", "城市": "city", "国家": "country",
    "行业": "industry", "数量": "quantity", "单价": "unit_price", "产品编号": "product_id",
    "商品编号": "product_id", "产品名称": "name", "成本": "cost", "渠道": "channel", "状态": "status",
    "备注": "notes", "评论": "comment", "留言": "comment",
}
_ISO_DAY_AND_TIME = r"\d{4}-\d{2}-\d{2}(?:[ T](?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?(?:\s?(?:Z|UTC|[+-]\d{2}:?\d{2}))?)?"
_PLAIN_EMAIL = r"(?!mailto:)[^@\s]+@[^@\s]+\.[^@\s]+"
_GENERIC_DATE = {"date", "日期", "时间", "createdat", "created"}
_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
"""The line boundaries of ``str.splitlines``."""


@dataclass
class Chunk:
    """Consecutive data rows of a file, as text, with their row numbers (the header is row 1)."""

    rows: np.ndarray
    data: list[list[str]]


class ImportRejected(CrmError, ValueError):
    """The file as a whole was not imported; nothing was written. The message says why."""


@dataclass
class RowError:
    """One problem: the file's row as a spreadsheet shows it (header = row 1), column, value, reason
    (in the owner's language: a fixed English reason such as ``"required"`` is translated when shown)."""

    row: int
    column: str
    value: Any
    reason: str

    def __str__(self) -> str:
        return t("row {row}, column {column}: {value} {reason}", row=self.row, column=self.column,
                 value=repr(self.value), reason=t(self.reason))


class LeftOutRows:
    """The ``ok`` and ``message`` of an import's result, from its ``rejected`` count and ``rejects_path``.

    ``ok`` is True: the file was imported (a file refused as a whole raises :class:`ImportRejected`
    instead); ``message`` says how many bad rows were left out and where their reasons are, and is
    empty when none was.
    """

    rejected: int
    rejects_path: Path | None

    @property
    def ok(self) -> bool:
        """True: the file was imported (a refused file raises instead)."""
        return True

    @property
    def message(self) -> str:
        """How many bad rows were left out and where their reasons are; empty when none was."""
        if not self.rejected:
            return ""
        if self.rejects_path is None:
            return tn("{n} bad row was left out", "{n} bad rows were left out", n=self.rejected)
        return tn("{n} bad row was left out; its reasons are in {file}", "{n} bad rows were left out; their reasons "
                  "are in {file}", n=self.rejected, file=self.rejects_path.name)


@dataclass
class ImportResult(LeftOutRows):
    """Counts and problems of one import."""

    table: str
    file: Path
    batch_id: int | None = None
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    merged: int = 0
    created_customers: int = 0
    erased_skipped: int = 0
    dry_run: bool = False
    ignored_columns: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # file header -> store column
    notes: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rejects_path: Path | None = None
    balance: ImportBalance | None = None  # an orders file's money balance (None for other tables)

    def summary(self) -> str:
        """One line for a person: what happened to the file; an orders file's balance per currency
        follows on lines of its own."""
        parts = [t("{count} inserted", count=self.inserted), t("{count} updated", count=self.updated),
                 t("{count} unchanged", count=self.unchanged), t("{count} rejected", count=self.rejected)]
        if self.merged:
            parts.append(t("{count} duplicate rows merged", count=self.merged))
        if self.created_customers:
            parts.append(t("{count} customers created", count=self.created_customers))
        if self.erased_skipped:
            parts.append(t("{count} rows of erased people skipped", count=self.erased_skipped))
        text = f"{self.file.name} -> {self.table}: " + ", ".join(parts)
        if self.dry_run and self.columns:
            text += "; " + t("columns: {columns}", columns=", ".join(f"{h} -> {c}" for h, c in self.columns.items()))
        if self.rejects_path:
            text += "; " + t("bad rows and reasons in {file}", file=self.rejects_path.name)
        if self.ignored_columns:
            text += "; " + t("ignored columns: {columns}", columns=cut_list(self.ignored_columns))
            text += map_hint(self.table, self.ignored_columns[:LIST_LIMIT])
        for note in self.notes:  # each written in the owner's language where it was made
            text += f"; {note}"
        if not self.dry_run and self.batch_id is None:
            text += f"; {t(NOTHING_CHANGED)}"
        text += " " + t("(dry run: nothing written)") if self.dry_run else ""
        if self.balance is not None and self.balance.message:
            text += "\n" + self.balance.message
            if not self.balance.ok:
                text += "\n" + t("the balance does not close: {difference} (imported with --skip-bad-rows; check the "
                                 "file against the tool that wrote it)", difference=self.balance.difference())
        return text


# ---------------------------------------------------------------------------------------- reading
def _decode(raw: bytes, path: Path, encoding: str | None) -> tuple[str, str]:
    """The file's text and the codec that reads it."""
    if encoding:
        try:
            return raw.decode(encoding), encoding
        except (LookupError, UnicodeDecodeError) as exc:
            raise ImportRejected(t("{file}: cannot be read as {encoding}: {reason}", file=path.name, encoding=encoding,
                                   reason=exc)) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise ImportRejected(t("{file}: starts like UTF-16 text but is damaged: {reason}", file=path.name,
                                   reason=exc.reason)) from None
    if (codec := utf16_without_bom(raw[:SNIFF_BYTES])) is not None:
        try:
            return raw.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise ImportRejected(t("{file}: looks like UTF-16 text but is damaged: {reason}", file=path.name,
                                   reason=exc.reason)) from None
    if raw[:SNIFF_BYTES].count(b"\x00") > BINARY_NULS:
        raise ImportRejected(t("{file}: this looks like a binary file, not a CSV or Excel export (its content is not "
                               "shown)", file=path.name))
    try:
        return raw.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # Only the encodings an owner's tools write: Chinese Excel (GBK/GB18030, Big5), Western and
    # Central European Windows, Japanese. Left open, short Chinese files are taken for Korean.
    best = from_bytes(raw[:200_000], cp_isolation=list(LEGACY_ENCODINGS)).best()
    name = (best.encoding if best else "gb18030").lower()
    if name in ("gbk", "gb2312", "hz", "big5") or name.startswith("gb"):
        name = "gb18030"  # superset of GBK/GB2312, the default of Chinese Excel
    try:
        return raw.decode(name), name
    except (LookupError, UnicodeDecodeError):
        raise ImportRejected(t("{file}: the text encoding could not be recognised; give it with --encoding (e.g. "
                               "gb18030, latin-1)", file=path.name)) from None


def utf16_without_bom(sample: bytes) -> str | None:
    """``"utf-16-le"`` or ``"utf-16-be"`` when ``sample`` (a file's first bytes) is UTF-16 text
    written without a byte-order mark, else None.

    A table's text is mostly ASCII (separators, digits, line ends, Latin letters), whose UTF-16 code
    units have one zero byte each: in little-endian the odd bytes, in big-endian the even ones. So a
    sample where at least a fifth of the odd (even) bytes are zero and no even (odd) one is, is read
    as UTF-16LE (BE) when it then reads as text (all but 5 % printable characters or line ends); a
    binary file has zeros in both, an 8-bit text none.
    """
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even, odd = sample[0:pairs * 2:2].count(0), sample[1:pairs * 2:2].count(0)
    codec = ("utf-16-le" if odd >= pairs / 5 and even == 0 else
             "utf-16-be" if even >= pairs / 5 and odd == 0 else None)
    if codec is None:
        return None
    text = sample[:pairs * 2].decode(codec, errors="replace")
    readable = sum(c.isprintable() or c in "\r\n\t" for c in text) - text.count("\ufffd")
    return codec if readable >= 0.95 * len(text) else None


def _csv_layout(path: Path, encoding: str | None) -> tuple[str, str]:
    """``(codec, delimiter)`` of a CSV file: the whole file is decoded once to check the codec reads
    all of it (the text is not kept; the rows are then read as a stream)."""
    text, codec = _decode(path.read_bytes(), path, encoding)
    if not text.strip():
        raise ImportRejected(t("{file}: the file is empty", file=path.name))
    first_line = _LINE_BREAK.split(text, maxsplit=1)[0]  # text.splitlines()[0] without splitting it all
    return codec, max([",", ";", "\t", "|"], key=first_line.count)


def _csv_batches(path: Path, codec: str, delimiter: str, size: int) -> Iterator[list[list[str]]]:
    """The file's records, ``size`` at a time (blank ones left out: no cell holds more than whitespace)."""
    with open(path, encoding=codec, newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        while True:
            try:
                batch = list(itertools.islice(reader, size))
            except csv.Error as exc:
                raise ImportRejected(t("{file}: malformed CSV near row {row}: {reason} (an unclosed quote?)",
                                       file=path.name, row=reader.line_num, reason=exc)) from None
            if not batch:
                return
            yield list(itertools.compress(batch, map(str.strip, map("".join, batch))))  # C-level loops


def read_chunks(path: Path, encoding: str | None = None, *, chunk_rows: int = CHUNK_ROWS
                ) -> tuple[list[str], Iterator[Chunk]]:
    """The header of a CSV or .xlsx file and its data rows as text, ``chunk_rows`` at a time.

    A CSV file is read as a stream, so an import's memory is bounded by the chunk, not the file.
    Each :class:`Chunk` holds the rows' numbers (the header is row 1; blank rows are not counted)."""
    if not path.exists():
        raise ImportRejected(t("{file}: no such file", file=path))
    if path.stat().st_size == 0:
        raise ImportRejected(t("{file}: the file is empty", file=path.name))
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        rows = _read_xlsx(path)
        batches: Iterator[list[list[str]]] = (rows[k:k + chunk_rows] for k in range(0, len(rows), chunk_rows))
    else:
        codec, delimiter = _csv_layout(path, encoding)
        batches = _csv_batches(path, codec, delimiter, chunk_rows)
    header = None
    for batch in batches:
        if batch:
            header, first = batch[0], batch[1:]
            break
    if header is None:
        raise ImportRejected(t("{file}: the file holds only separators, no values", file=path.name))
    nul = next((i for i, h in enumerate(header) if "\x00" in h), None)
    if nul is not None:
        raise ImportRejected(t("{file}: row 1 (the header), column {column}: holds a NUL byte, which no export "
                               "writes: the file is damaged or not a table. Export it again.", file=path.name,
                               column=nul + 1))
    return header, _numbered(itertools.chain([first], batches))


def nul_errors(header: list[str], rows: np.ndarray, *, data: list[list[str]]) -> list[RowError]:
    """A :class:`RowError` for every cell of ``data`` (rows numbered ``rows``) that holds a NUL
    byte, naming its column: no export writes one, and none may reach the store (it would cut a
    name short in most programs). One scan of the chunk's text when it holds none."""
    if "\x00" not in "".join(map("".join, data)):  # C-level joins: 0.04 s per 100,000 rows of 12 cells
        return []
    return [RowError(int(r), header[i].strip() if i < len(header) and header[i].strip() else f"column {i + 1}",
                     cell.replace("\x00", "")[:40], "holds a NUL byte (a damaged or binary file)")
            for r, d in zip(rows, data) for i, cell in enumerate(d) if "\x00" in cell]


def cut_list(names: list[str], *, limit: int = LIST_LIMIT) -> str:
    """``names`` joined with commas, the first ``limit`` of them, then "... and 4,987 more"."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} ... and {len(names) - limit:,} more"


def header_listing(header: list[str]) -> str:
    """The header's names for a refusal message ("the file's columns: a, b, c", at most
    :data:`LIST_LIMIT`), only when they look like the names of a table's columns: two or more,
    none longer than 60 characters. Otherwise (a password file, a key, a letter taken for a table)
    nothing of the file is quoted."""
    names = [h.strip() for h in header if h.strip()]
    if len(names) < 2 or max(map(len, names)) > 60:
        return t("its first row is not a row of column names (its content is not shown)")
    return t("the file's columns: {columns}", columns=cut_list(names))


def _numbered(batches: Iterator[list[list[str]]]) -> Iterator[Chunk]:
    row = 2
    for batch in batches:
        if batch:
            yield Chunk(np.arange(row, row + len(batch)), batch)
            row += len(batch)


def _check_xlsx(path: Path) -> None:
    if path.stat().st_size > MAX_XLSX_BYTES:
        raise ImportRejected(t("{file}: the workbook is larger than {size} MB; export it as CSV", file=path.name,
                                size=MAX_XLSX_BYTES // 2**20))
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except zipfile.BadZipFile:
        raise ImportRejected(t("{file}: not a valid .xlsx workbook", file=path.name)) from None
    unpacked = sum(i.file_size for i in infos)
    packed = max(sum(i.compress_size for i in infos), 1)
    if unpacked > MAX_XLSX_UNPACKED or unpacked / packed > MAX_XLSX_RATIO:
        raise ImportRejected(
            f"{path.name}: the workbook unpacks to {unpacked / 2**20:.0f} MB ({unpacked / packed:.0f}x its size); "
            "refused as a possible compression bomb. Export it as CSV instead."
        )


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") if value.time() != dt.time() else value.strftime("%Y-%m-%d")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(path: Path) -> list[list[str]]:
    """The first sheet's non-blank rows as text, the header first."""
    _check_xlsx(path)
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        raise ImportRejected(t("{file}: the workbook cannot be read: {reason}", file=path.name, reason=exc)) from None
    try:
        rows = [[_cell_text(v) for v in row] for row in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ImportRejected(t("{file}: the first sheet is empty", file=path.name))
    return rows


# ------------------------------------------------------------------------------------ headers
def map_hint(table: str, ignored: list[str]) -> str:
    """A ``--map`` suggestion for ignored headers that look like a column of ``table`` ("" if none).

    ``Consent`` suggests ``consent_marketing``: a header whose words are part of a column's name,
    or a close spelling of one.
    """
    import difflib

    columns = schema_table(table).column_names
    pairs = []
    for header in ignored:
        norm = normalize(header)
        near = [c for c in columns if norm and (norm in c or c in norm)] or difflib.get_close_matches(norm, columns, 1)
        if near:
            pairs.append(f"--map '{header}={near[0]}'")
    return f" (to keep them: {' '.join(pairs)})" if pairs else ""


def match_headers(spec: Table, header: list[str], *,
                  mapping: dict[str, str] | None) -> tuple[dict[int, str], list[str]]:
    """``({file column index: store column}, ignored headers)``."""
    columns = set(spec.column_names)
    mapping = mapping or {}
    bad = {dst for dst in mapping.values() if dst not in columns}
    if bad:
        raise ImportRejected(t("--map target {targets} is not a column of {table}; valid: {columns}",
                               targets=", ".join(sorted(bad)), table=spec.name, columns=", ".join(spec.column_names)))
    by_norm = {normalize(c): c for c in spec.column_names}
    main_date = next((c.name for c in spec.columns if c.type in ("date", "datetime") and c.required), None)
    explicit = {normalize(k): v for k, v in mapping.items()}
    found: dict[int, str] = {}
    ignored: list[str] = []
    for i, raw in enumerate(header):
        norm = normalize(raw)
        target = explicit.get(norm) or by_norm.get(norm) or _HEADER_ALIASES.get(norm)
        if target is None and norm in _GENERIC_DATE:
            target = main_date
        if target is None and norm == "id":
            target = spec.pk_columns[0]
        if target in columns and target not in found.values():
            found[i] = target
        elif raw.strip():
            ignored.append(raw.strip())
    return found, ignored


def refuse_repeated_headers(path: Path, header: list[str], *, read: Iterable[int]) -> None:
    """Refuse a file whose header names a column it would import (one of the indexes ``read``)
    twice or more: which of them holds the values is not for the workbook to guess. The message
    names the header and the columns (1 = the first)."""
    at: dict[str, list[int]] = {}
    for i, raw in enumerate(header):
        if raw.strip():
            at.setdefault(normalize(raw), []).append(i)
    read = set(read)
    for places in at.values():
        if len(places) > 1 and read & set(places):
            numbers = ", ".join(str(i + 1) for i in places[:-1]) + f" and {places[-1] + 1}"
            raise ImportRejected(
                f"{path.name}: the header names {header[places[0]].strip()!r} "
                f"{'twice' if len(places) == 2 else f'{len(places)} times'} (columns "
                f"{numbers}); the workbook cannot tell which one to import. Rename or delete the others and "
                "import it again (nothing was imported)."
            )


def header_signature(header: list[str]) -> str:
    """A file layout's key: its non-empty headers, normalised, in order."""
    return "|".join(normalize(h) for h in header if h.strip())


def remembered_mapping(db: Database, header: list[str]) -> tuple[str, dict[str, str]] | None:
    """``(table, mapping)`` kept for this layout by an earlier ``--map``, or None."""
    row = db.execute(f"SELECT target_table, mapping FROM {IMPORT_MAPPINGS} WHERE signature = ?",
                     [header_signature(header)]).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def remember_mapping(db: Database, header: list[str], *, table: str, mapping: dict[str, str]) -> None:
    """Keep ``mapping`` for this layout, so that next month's export of it needs no flags."""
    db.table(IMPORT_MAPPINGS).upsert(
        {"signature": header_signature(header), "target_table": table, "mapping": json.dumps(mapping),
         "saved_at": dt.datetime.now().isoformat(timespec="seconds")}, pk="signature")


# ---------------------------------------------------------------------------------- cleaning
def decide_dayfirst(path: Path, dates: dict[str, pd.Series], *, dayfirst: bool | None,
                    rows: np.ndarray | None = None) -> bool | None:
    """The day/month order of the file's d/m/y-or-m/d/y dates like 03/04/2025: as given, else decided
    once from all of ``dates`` ({column as the message names it: values}; a first or second part
    above 12 decides it). ImportRejected when the file mixes both orders, or when nothing decides it:
    then the message quotes the file's first ambiguous date with its row (``rows[i]`` is the file
    row of position ``i``; default ``i + 2``, after the header) and column."""
    if dayfirst is not None:
        return dayfirst
    day_evidence = month_evidence = False
    ambiguous: dict[str, set[str]] = {}  # column -> its values that either order would read
    for col, series in dates.items():
        for value in series.dropna().unique():  # each distinct value once: cheap on a large file
            parts = date_parts(str(value))
            if parts is None:
                continue
            a, b = parts
            day_evidence |= a > 12
            month_evidence |= b > 12
            if a <= 12 and b <= 12 and a != b:
                ambiguous.setdefault(col, set()).add(value)
    if day_evidence and month_evidence:
        raise ImportRejected(t("{file}: the dates mix day/month and month/day order; fix the file so that one order "
                               "is used", file=path.name))
    if day_evidence or month_evidence:
        return day_evidence
    if ambiguous:
        examples = []
        for col, values in ambiguous.items():
            first = int(np.flatnonzero(dates[col].isin(values).to_numpy())[0])
            examples.append((int(rows[first]) if rows is not None else first + 2, col, str(dates[col].iat[first])))
        row, col, value = min(examples)  # the file's first ambiguous date
        value = value.strip()
        a, b = date_parts(value)
        raise ImportRejected(t(
            "{file}: row {row}, column {column}: {value} could be {one} or {other}, and no date in the file decides the "
            "order; pass --dayfirst (day first, as in most of Europe) or --monthfirst (month first, as in the US); "
            "from Python: dayfirst=True or False", file=path.name, row=row, column=col, value=repr(value),
            one=_day_month(a, b), other=_day_month(b, a)))
    return None


def _day_month(day: int, month: int) -> str:
    return f"{day} {dt.date(2000, month, 1):%B}"


def clean_column(column: Column, raw: pd.Series, *, dayfirst: bool | None, errors: list[RowError],
                 rows: np.ndarray) -> pd.Series:
    """Clean one column: each distinct value once when values repeat (dates, statuses, customers of
    an orders file), with vectorized fast paths for tidy values and per-value parsing for the rest.
    A bad value gives a :class:`RowError` for every row that holds it. A phone's or an id's Excel
    guard is taken off (:func:`without_excel_guards`)."""
    codes, uniques = distinct_texts(raw, without_excel_guards if excel_guarded(column) else trimmed)
    if 2 * len(uniques) > len(raw):  # mostly distinct values: row by row
        return _clean_text(column, pd.Series(uniques[codes], index=raw.index, dtype=object), dayfirst, errors, rows)
    found: list[RowError] = []
    clean = _clean_text(column, pd.Series(uniques, dtype=object), dayfirst, found, np.arange(len(uniques)))
    if found:
        by_unique: dict[int, list[RowError]] = {}
        for e in found:
            by_unique.setdefault(e.row, []).append(e)
        for idx in np.flatnonzero(np.isin(codes, list(by_unique))):
            errors += [replace(e, row=int(rows[idx])) for e in by_unique[codes[idx]]]
    return pd.Series(clean.to_numpy()[codes], index=raw.index, dtype=object)


def trimmed(values: list[str]) -> list[str]:
    """Each text without its surrounding whitespace (at C speed)."""
    return list(map(str.strip, values))


def excel_guarded(column: Column) -> bool:
    """Whether a spreadsheet may have guarded the column's values as text: phones and ids (a
    leading ``+`` or ``0``, 19 digits), which Excel would otherwise turn into numbers or formulas."""
    return column.type == "text" and (column.name == "phone" or column.name.endswith("_id"))


def without_excel_guards(values: list[str]) -> list[str]:
    """Each text trimmed and without the guard a spreadsheet export puts on it to keep it text:
    a leading apostrophe (``'+1 514 555 0101``, Shopify) or the formula ``="0012345"`` (shop
    back-ends) gives the text inside."""
    cells = trimmed(values)
    joined = "\x00" + "\x00".join(cells)  # one C-level search instead of a test per value
    if "\x00'" not in joined and '\x00="' not in joined:
        return cells
    return [c[1:].strip() if c[:1] == "'" else c[2:-1].strip() if c[:2] == '="' and c[-1:] == '"' and len(c) > 2
            else c for c in cells]


def distinct_texts(raw: pd.Series, rule: Callable[[list[str]], list[str]] = trimmed, *,
                   always_merge: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, texts)``: ``rule`` of each value's text (a missing value as ""), as the index of it
    in ``texts``. The values are told apart first and ``rule`` runs once per distinct value: a
    file's columns repeat (dates, statuses, customers of an orders file). Values that give one text
    (" a" and "a") share a code, so ``texts`` are distinct, unless most values are distinct
    (``2 * len(texts) > len(raw)``, order ids: :func:`clean_column` cleans those row by row) and
    not ``always_merge``. A categorical ``raw`` is taken as told apart already."""
    if isinstance(raw.dtype, pd.CategoricalDtype):
        codes, found = raw.cat.codes.to_numpy().astype(np.intp), raw.cat.categories.to_numpy(dtype=object)
    else:
        codes, found = pd.factorize(raw.to_numpy(dtype=object))  # a missing value (None, NaN) is -1
    try:
        cells = rule(list(found))
    except TypeError:  # a value that is not text (a number read from a workbook)
        cells = rule([str(v) for v in found])
    texts = np.array([*cells, ""], dtype=object)
    codes[codes < 0] = len(found)
    if not always_merge and 2 * len(texts) > len(raw):
        return codes, texts
    merged, texts = pd.factorize(texts)
    return merged[codes], texts.astype(object)


def _clean_text(column: Column, text: pd.Series, dayfirst: bool | None, errors: list[RowError],
                rows: np.ndarray) -> pd.Series:
    """:func:`clean_column` of stripped text, value by value."""
    blank = text == ""
    out = pd.Series([None] * len(text), index=text.index, dtype=object)
    todo = ~blank
    if column.type in ("real", "integer"):
        # what pandas reads as a number, Python's float() reads as the same number (parse_number's
        # last step); "1,5", "€ 12" and the like are left to clean_value
        fast = pd.to_numeric(text.where(todo, None), errors="coerce").astype(float)
        ok = fast.notna() & np.isfinite(fast)  # 400 digits parse as inf: left to clean_value to refuse
        if column.minimum is not None:
            ok &= fast >= column.minimum
        if column.maximum is not None:
            ok &= fast <= column.maximum
        if column.type == "integer":
            ok &= (fast.fillna(0) == fast.fillna(0).round()) & (fast.abs() <= MAX_WHOLE_NUMBER)
            out[ok] = fast[ok].astype("int64").astype(object)
        else:
            out[ok] = fast[ok].astype(float).astype(object)
        todo &= ~ok
    elif column.type == "date":
        # an ISO day, alone or with a valid clock time and zone suffix (parse_date keeps the day as written)
        iso = todo & text.str.fullmatch(_ISO_DAY_AND_TIME)
        day = text.str.slice(0, 10)
        parsed = pd.to_datetime(day.where(iso, None), format="%Y-%m-%d", errors="coerce")
        ok = parsed.notna()
        out[ok] = day[ok]
        todo &= ~ok
    elif column.type == "bool":
        lowered = text.str.lower()
        out[todo & lowered.isin(TRUE_WORDS)] = 1
        out[todo & lowered.isin(FALSE_WORDS)] = 0
        todo &= ~lowered.isin(TRUE_WORDS | FALSE_WORDS)
    elif column.name == "email":
        lowered = text.str.lower()
        ok = todo & lowered.str.fullmatch(_PLAIN_EMAIL)  # what normalize_email accepts, without "mailto:"
        out[ok] = lowered[ok]
        todo &= ~ok
    elif column.type == "text" and column.name != "email" and not column.allowed:
        out[todo] = text[todo]
        todo &= False
    elif column.type == "text" and column.name != "email":
        lowered = text.map(str.lower)  # what clean_value stores for an allowed value
        ok = todo & lowered.isin(column.allowed)
        out[ok] = lowered[ok]
        todo &= ~ok
    values = out.to_numpy(dtype=object, copy=True)  # element writes: far cheaper than Series.iat
    for idx in np.flatnonzero(todo.to_numpy()):
        value = text.iat[idx]
        try:
            values[idx] = clean_value(column, value, dayfirst=dayfirst)
        except ValueError as exc:
            errors.append(RowError(int(rows[idx]), column.name, value, str(exc)))
    out = pd.Series(values, index=text.index, dtype=object)
    if column.required:
        for idx in np.flatnonzero(blank.to_numpy()):
            errors.append(RowError(int(rows[idx]), column.name, "", "required"))
    return out


def stable_customer_id(email: str) -> str:
    """The id made for a customer known only by an e-mail (lower-cased): the same e-mail, the same id."""
    return "C-" + hashlib.sha1(email.encode()).hexdigest()[:10]


def known_emails(db: Database, emails: pd.Series) -> dict[str, str]:
    """``{e-mail: customer_id}`` of the stored customers with one of ``emails`` (cleaned: lower-case),
    in one query on the unique e-mail index, however many customers the store holds."""
    wanted = emails.dropna().unique().tolist()
    if not wanted:
        return {}
    return dict(db.execute("SELECT email, customer_id FROM customers WHERE email IN (SELECT value FROM json_each(?))",
                           [orjson.dumps(wanted).decode()]).fetchall())


def _customer_ids(db: Database, frame: pd.DataFrame, rows: np.ndarray, errors: list[RowError]) -> pd.Series:
    """Fill missing customer ids: the id another row of the file gives the same e-mail, else the
    store's customer with that e-mail, else :func:`stable_customer_id`. E-mails are compared
    lower-cased (they are stored so), so one person written twice becomes one record."""
    ids = frame["customer_id"] if "customer_id" in frame else pd.Series([None] * len(frame), index=frame.index)
    emails = frame["email"] if "email" in frame else pd.Series([None] * len(frame), index=frame.index)
    known = known_emails(db, emails)
    in_file: dict[str, str] = {}
    for cid, email in zip(ids, emails):
        if cid is not None and email is not None:
            in_file.setdefault(email, cid)
    ids = ids.astype(object)
    for idx in range(len(frame)):
        cid, email = ids.iat[idx], emails.iat[idx]
        if cid is None and email is None:
            errors.append(RowError(int(rows[idx]), "customer_id", "", "required (or an e-mail to match on)"))
            continue
        if cid is None:
            cid = ids.iat[idx] = in_file.get(email) or known.get(email) or stable_customer_id(email)
        # also for an id taken from another row of the file: that row's e-mail clash is this row's too
        if email is not None and known.get(email, cid) != cid:
            errors.append(RowError(int(rows[idx]), "email", email,
                                   t("already belongs to customer {customer}", customer=known[email])))
    return ids


def _merge_duplicates(frame: pd.DataFrame, keys: list[str], rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, int]:
    """One record per key: later non-empty values win; the first row number is kept."""
    key = frame[keys[0]].astype(str)
    for col in keys[1:]:  # the same text as joining each row's values with \x1f, column by column
        key = key + "\x1f" + frame[col].astype(str)
    if not key.duplicated().any():
        return frame, rows, 0
    frame = frame.assign(_row=rows, _key=key.to_numpy())
    merged = frame.groupby("_key", sort=False).agg(
        {**{c: "last" for c in frame.columns if c not in ("_key", "_row")}, "_row": "first"}
    )
    return merged.drop(columns="_row").reset_index(drop=True), merged["_row"].to_numpy(), len(frame) - len(merged)


def _check_references(db: Database, spec: Table, frame: pd.DataFrame, rows: np.ndarray, errors: list[RowError],
                      create_missing_customers: bool, known: dict[str, set[Any]]) -> list[str]:
    """Flag rows pointing at unknown parents; returns customer ids to create (when allowed).
    ``known``: the parents' keys by ``"table.column"``, read once per import and kept across its chunks
    (the customers this import creates are added to it)."""
    to_create: list[str] = []
    for column in spec.columns:
        if not column.references or column.name not in frame:
            continue
        parent, parent_col = column.references.split(".")
        values = frame[column.name]
        wanted = set(values.dropna().unique())
        if not wanted:
            continue
        if column.references not in known:
            known[column.references] = {r[0] for r in db.execute(f"SELECT {parent_col} FROM {parent}").fetchall()}
        missing = wanted - known[column.references]
        if not missing:
            continue
        if parent == "customers" and create_missing_customers:
            to_create = sorted(missing)
            continue
        for idx in np.flatnonzero(values.isin(missing).to_numpy()):
            errors.append(RowError(int(rows[idx]), column.name, values.iat[idx], UNKNOWN[parent]))
    return to_create


# ----------------------------------------------------------------------------------- writing
def _existing_rows(db: Database, spec: Table, keys: list[tuple], columns: list[str] | None = None
                   ) -> dict[tuple, Any]:
    """The stored rows under ``keys``: ``{key: row as a dict}``, or with ``columns``
    ``{key: tuple of those columns' values}`` (cheaper: what a re-import compares)."""
    pk = spec.pk_columns
    db.execute("DROP TABLE IF EXISTS temp._import_keys")
    db.execute(f"CREATE TEMP TABLE _import_keys ({', '.join(pk)})")
    db.conn.executemany(f"INSERT INTO temp._import_keys VALUES ({', '.join('?' * len(pk))})", keys)
    join = " AND ".join(f"t.{c} = k.{c}" for c in pk)
    wanted = ", ".join(f"t.{c}" for c in (*pk, *columns)) if columns is not None else "t.*"
    cursor = db.execute(f"SELECT {wanted} FROM {spec.name} t JOIN temp._import_keys k ON {join}")
    if columns is not None:
        n = len(pk)
        found: dict[tuple, Any] = {row[:n]: row[n:] for row in cursor.fetchall()}
    else:
        names = [d[0] for d in cursor.description]
        found = {}
        for row in cursor.fetchall():
            record = dict(zip(names, row))
            found[tuple(record[c] for c in pk)] = record
    db.execute("DROP TABLE temp._import_keys")
    return found


@contextmanager
def import_page_cache(db: Database, mib: int = IMPORT_CACHE_MIB) -> Iterator[None]:
    """SQLite's page cache of ``db``'s connection raised to ``mib`` MiB while an import writes, then
    set back. An export fills indexes that take keys in random order (customer ids made from
    e-mails, the orders' customer index); with the default 2 MiB cache every insert reads and
    spills index pages again (a 1,000,000-line export: 55 s of CPU instead of 65 s, for 160 MiB
    more memory at its peak)."""
    before = db.execute("PRAGMA cache_size").fetchone()[0]
    db.execute(f"PRAGMA cache_size = {-1024 * mib}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA cache_size = {int(before)}")


@contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Python's cyclic garbage collector paused during an import: it makes millions of row lists and
    key tuples, none in a reference cycle, while the batches' key sets grow with the file; the
    collector's passes over them cost about an eighth of a 1,000,000-line import (CPU 65 s against
    75 s; the memory peak is the same)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def rejects_path(path: Path) -> Path:
    """Where the bad rows of ``path`` go with ``skip_bad_rows``: ``<stem>.rejects.csv`` beside it."""
    return path.with_name(f"{path.stem}.rejects.csv")


def write_rejects(path: Path, header: list[str], *, raw_rows: dict[int, list[str]], errors: list[RowError]) -> Path:
    """The rejected rows of ``path`` as the file had them (``raw_rows`` by row number, under
    ``header``), each led by its row number and reasons, written to :func:`rejects_path` (whole, never
    through a link: :func:`crm_helpers.store.safe_csv.write_safe_rows`); returns it."""
    from crm_helpers.store.safe_csv import write_safe_rows

    by_row: dict[int, list[str]] = {}
    for e in errors:
        by_row.setdefault(e.row, []).append(t("{column}: {value} {reason}", column=e.column, value=repr(e.value),
                                              reason=t(e.reason)))
    target = rejects_path(path)
    rows = [["row", "reasons", *header]]
    rows += [[str(r), "; ".join(reasons), *raw_rows.get(r, [])] for r, reasons in sorted(by_row.items())]
    write_safe_rows(target, rows)
    return target


UNKNOWN = {"customers": "unknown customer", "products": "unknown product", "orders": "unknown order",
           "campaigns": "unknown campaign", "tickets": "unknown ticket", "opportunities": "unknown opportunity"}
"""The reason of a row whose id is not in the table it refers to, one whole phrase per table (translated when shown)."""
SKIP_HINT = "Fix these rows, or import the good ones with --skip-bad-rows (bad rows go to a .rejects.csv file)."


def rejection_message(path: Path, errors: list[RowError], *, hint: str = SKIP_HINT) -> str:
    """What :class:`ImportRejected` says for a file with bad rows: how many, the first
    ``SHOWN_ERRORS`` of them, and ``hint`` (what to do)."""
    errors = sorted(errors, key=lambda e: e.row)
    shown = "\n".join(f"  {e}" for e in errors[:SHOWN_ERRORS])
    more = "\n  " + t("… and {count} more", count=len(errors) - SHOWN_ERRORS) if len(errors) > SHOWN_ERRORS else ""
    rows = len({e.row for e in errors})
    said = t(hint)
    if hint == SKIP_HINT and any(e.reason == UNKNOWN["customers"] for e in errors):
        said += t(" If these customers are new, --create-missing-customers adds them as bare customers"
                  " (or import the customers file first).")
    return tn("{file}: {n} bad row; nothing was imported.", "{file}: {n} bad rows; nothing was imported.", n=rows,
              file=path.name) + f"\n{shown}{more}\n{said}"


def import_file(
    db: Database,
    table: str,
    *,
    path: str | os.PathLike[str],
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
    dayfirst: bool | None = None,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
    create_missing_customers: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportResult:
    """Import one CSV/.xlsx file into ``table``; see the module doc. Raises :class:`ImportRejected`.

    The file is read, cleaned and written ``chunk_rows`` rows at a time inside one write
    transaction (a bad row or any failure leaves the store as it was). A key met again in a later
    chunk is merged into the row written for it, as within a chunk; a customers row without an id
    takes the id of its e-mail from the rows before it (a later row giving that e-mail an id is an
    error of that row: put the rows with ids first in a file of more than ``chunk_rows`` rows)."""
    path = Path(path)
    if skip_bad_rows and not dry_run:  # before anything is written: the rejects file would go through a link
        refuse_link(rejects_path(path))
    try:
        spec = schema_table(table)
    except ValueError as exc:
        raise ImportRejected(str(exc)) from None
    header, chunks = read_chunks(path, encoding, chunk_rows=chunk_rows)
    first = next(chunks, None)
    if first is None:
        raise ImportRejected(t("{file}: only a header row, no data", file=path.name))
    chunks = itertools.chain([first], chunks)
    result = ImportResult(table=spec.name, file=path, dry_run=dry_run)
    given = mapping
    if mapping is None and (saved := remembered_mapping(db, header)) and saved[0] == spec.name:
        mapping = saved[1]
        result.notes.append(t("used the --map kept from an earlier file of this layout"))
    found, result.ignored_columns = match_headers(spec, header, mapping=mapping)
    refuse_repeated_headers(path, header, read=found)
    result.columns = {header[i].strip(): column for i, column in found.items()}
    required = {c.name for c in spec.columns if c.required}
    if spec.name == "customers" and "email" in found.values():
        required.discard("customer_id")
    if spec.name == "orders" and "status" not in found.values():
        required.discard("status")
        result.notes.append(t("the file has no status column: every order was taken as paid"))
    missing = sorted(required - set(found.values()))
    if missing:
        raise ImportRejected(tn(
            "{file}: missing required column {columns} for {table}; {listing}. Rename the file's headers or use "
            "--map 'Their Header=column'.",
            "{file}: missing required columns {columns} for {table}; {listing}. Rename the file's headers or use "
            "--map 'Their Header=column'.", n=len(missing), file=path.name, columns=", ".join(missing),
            table=spec.name, listing=header_listing(header)))
    dates = [c.name for c in spec.columns if c.type in ("date", "datetime") and c.name in found.values()]
    errors: list[RowError] = []
    bad_lines: dict[int, list[str]] = {}  # the bad rows as the file has them, for the rejects file
    known: dict[str, set[Any]] = {}
    decided = dayfirst
    if spec.name == "orders":
        from crm_helpers.ingest.balance import ImportBalance

        result.balance = ImportBalance()
    try:
        with import_page_cache(db), without_cyclic_gc(), db.atomic() if dry_run else write_transaction(db):
            batch = TableBatch(db, spec, path=path, result=result, keep_stored=True)  # an empty cell never erases
            for chunk in chunks:
                raw, chunk_errors = _raw_frame(chunk, found, header)
                if decided is None and has_day_month(raw, dates):  # decided once, from the whole file
                    all_dates, all_rows = _file_dates(path, encoding, found, dates)
                    decided = decide_dayfirst(path, all_dates, dayfirst=None, rows=all_rows)
                frame, rows, skipped = _clean_chunk(db, spec, raw, chunk.rows, required, decided, chunk_errors)
                result.erased_skipped += skipped
                to_create = _check_references(db, spec, frame, rows, chunk_errors, create_missing_customers, known)
                errors += chunk_errors
                bad_rows = {e.row for e in chunk_errors}
                if bad_rows:  # the file's own text of each, for the rejects file
                    bad_lines.update((int(chunk.rows[i]), chunk.data[i])
                                     for i in np.flatnonzero(np.isin(chunk.rows, list(bad_rows))))
                if errors and not skip_bad_rows:
                    continue  # nothing more is written: the other chunks are read for their problems only
                good = ~np.isin(rows, list(bad_rows))
                frame, _, merged = _merge_duplicates(frame[good].reset_index(drop=True), list(spec.pk_columns),
                                                     rows[good])
                result.merged += merged
                if to_create:
                    used = set(frame["customer_id"]) if "customer_id" in frame else set()
                    to_create = [c for c in to_create if c in used]
                    known["customers.customer_id"].update(to_create)
                batch.add(frame, to_create)
                if result.balance is not None:
                    count_orders_money(result.balance, header, chunk=chunk, raw=raw, kept=rows, rejected=bad_rows,
                                       stored=frame)
            if errors and not skip_bad_rows:
                raise ImportRejected(rejection_message(path, errors))
            if result.balance is not None and not (result.balance.ok or skip_bad_rows):
                raise ImportRejected(t(
                    "{file}: nothing was imported: the money does not balance: {difference}. {balance}\n"
                    "The file holds money the import would not store as the file says (a refund column under a "
                    "name the import does not read, say): map that column with --map, or import the file with "
                    "--skip-bad-rows to store it with the difference listed.",
                    file=path.name, difference=result.balance.difference(), balance=result.balance.message))
            result.errors, result.rejected = errors, len(bad_lines)
            result.created_customers = len(batch.created_customers)
            batch.close(rejects_path(path) if errors else None)
            result.merged += batch.merged
            if result.batch_id is not None and result.balance is not None and result.balance.currencies:
                db.execute(f"UPDATE {IMPORT_LOG} SET balance = ? WHERE batch_id = ?",
                           [result.balance.to_json(), result.batch_id])
            if given and not dry_run:  # kept with the import it was used for, under its write lock
                remember_mapping(db, header, table=spec.name, mapping=given)
    except sqlite3.DatabaseError as exc:
        raise ImportRejected(t("{file}: nothing was imported: {reason}", file=path.name,
                               reason=explain_error(store_path(db), exc))) from None
    if result.errors and skip_bad_rows and not dry_run:
        result.rejects_path = write_rejects(path, header, raw_rows=bad_lines, errors=result.errors)
    return result


def count_orders_money(balance: ImportBalance, header: list[str], *, chunk: Chunk, raw: pd.DataFrame,
                       kept: np.ndarray, rejected: set[int], stored: pd.DataFrame) -> None:
    """Count one chunk of an orders file into ``balance`` (:mod:`crm_helpers.ingest.balance`): the
    file's side from its own cells (``raw``: the chunk's text by store column; ``chunk.data`` for
    the columns the import does not read, a refund column under another name), the store's side
    from the orders written (``stored``). ``kept``: the chunk's rows left after the erased people's;
    ``rejected``: the rows left out as bad (``--skip-bad-rows``). An order written on several rows
    counts once (its largest amount), as the import merges them.

    A file's refunds: what its refund columns say, a negative amount, and the whole amount of a
    ``refunded`` order that says nothing of how much was paid back."""
    from crm_helpers.ingest.balance import NO_CURRENCY, money, recorded_refunds

    amount = money(raw["amount"])
    refund = recorded_refunds(header, chunk.data, amount=amount, status=None, refunded_status=set())
    if "status" in raw:
        codes, texts = distinct_texts(raw["status"], always_merge=True)
        whole = np.char.lower(texts.astype(str))[codes] == "refunded"
        refund = np.where(whole & (refund == 0), np.nan_to_num(np.abs(amount)), refund)
    left_out = np.where(np.isin(chunk.rows, kept), "", "erased").astype(object)
    if rejected:
        left_out[np.isin(chunk.rows, list(rejected))] = "rejected"
    if "currency" in raw:
        codes, texts = distinct_texts(raw["currency"], always_merge=True)
        currency = np.array([t.upper() or NO_CURRENCY for t in texts], dtype=object)[codes]
    else:
        currency = np.full(len(raw), NO_CURRENCY, dtype=object)
    order_id, _ = distinct_texts(raw["order_id"], always_merge=True)  # trimmed: one code per order
    balance.count_file(pd.DataFrame({
        "order_id": order_id, "currency": currency, "amount": amount, "refund": refund,
        "refund_row": np.zeros(len(raw), dtype=bool), "left_out": left_out}), per_order=True)
    balance.count_stored(stored, None)


def text_columns(data: list[list[str]], found: dict[int, Any], *, width: int) -> pd.DataFrame:
    """Rows of text as columns: for each ``{file column index: label}`` of ``found`` a column of that
    label; the cells a short row lacks are empty."""
    if data and set(map(len, data)) == {width}:  # the common case: one block, converted at C speed
        table = np.array(data, dtype=object)[:, list(found)]  # 7x faster than a column per tuple
        return pd.DataFrame(table, columns=list(found.values()), dtype=object, copy=False)
    return pd.DataFrame({col: [d[i] if i < len(d) else "" for d in data] for i, col in found.items()}, dtype=object)


def _raw_frame(chunk: Chunk, found: dict[int, str], header: list[str]) -> tuple[pd.DataFrame, list[RowError]]:
    """The chunk's text by store column, and its rows with more fields than the header or a NUL byte."""
    width = len(header)
    errors = [] if max(map(len, chunk.data), default=0) <= width else [
        RowError(int(r), "(row)", len(d), t("has {fields} fields, the header has {width}", fields=len(d), width=width))
        for r, d in zip(chunk.rows, chunk.data) if len(d) > width and any(c.strip() for c in d[width:])]
    return text_columns(chunk.data, found, width=width), errors + nul_errors(header, chunk.rows, data=chunk.data)


def has_day_month(raw: pd.DataFrame, dates: list[str]) -> bool:
    """Whether some date of ``raw`` is written day/month or month/day (03/04/2025)."""
    return any(date_parts(str(v)) is not None for c in dates for v in raw[c].unique())


def _file_dates(path: Path, encoding: str | None, found: dict[int, str], dates: list[str]
                ) -> tuple[dict[str, pd.Series], np.ndarray]:
    """Every date of the file (a second read of it, for :func:`decide_dayfirst`) and the rows'
    numbers."""
    _, chunks = read_chunks(path, encoding)
    at = {col: i for i, col in found.items() if col in dates}
    values: dict[str, list[str]] = {c: [] for c in dates}
    rows = []
    for chunk in chunks:
        rows.append(chunk.rows)
        for col, i in at.items():
            values[col] += [d[i] if i < len(d) else "" for d in chunk.data]
    return {c: pd.Series(v, dtype=object) for c, v in values.items()}, np.concatenate(rows)


def _clean_chunk(db: Database, spec: Table, raw: pd.DataFrame, rows: np.ndarray, required: set[str],
                 dayfirst: bool | None, errors: list[RowError]) -> tuple[pd.DataFrame, np.ndarray, int]:
    """A chunk's rows as the store holds them (customers' ids filled, erased people left out,
    refunds settled), their row numbers and how many rows of erased people were left out; the
    problems go to ``errors``."""
    frame = pd.DataFrame({col: clean_column(_as_found(spec, col, required), raw[col], dayfirst=dayfirst, errors=errors,
                                            rows=rows)
                          for col in raw})
    if spec.name == "customers":
        frame["customer_id"] = _customer_ids(db, frame, rows, errors)
    frame, rows, skipped = skip_erased(db, frame, rows=rows, errors=errors)  # the suppression list
    if spec.name == "orders":
        if "status" not in frame:
            frame["status"] = "paid"
        frame = refunds_as_said(frame, settle_refunds(frame, rows, errors=errors))
    return frame, rows, skipped


def refunds_as_said(given: pd.DataFrame, settled: pd.DataFrame) -> pd.DataFrame:
    """``settled`` (:func:`settle_refunds` of ``given``) with the refunded amount left empty where
    the file said nothing of one: no ``refunded_amount`` cell (or column), no negative amount, not
    refunded. An empty cell never overwrites a stored refund; a new order gets 0
    (:data:`NEW_ROW_DEFAULTS`)."""
    said = (given["refunded_amount"].notna() if "refunded_amount" in given
            else pd.Series(False, index=given.index))
    unsaid = (~said & (settled["status"] != "refunded")).to_numpy()
    if not unsaid.any():
        return settled
    refunded = settled["refunded_amount"].astype(object).copy()
    refunded[unsaid] = None
    return settled.assign(refunded_amount=refunded)


def _as_found(spec: Table, name: str, required: set[str]) -> Column:
    """The column as this file must fill it: a customers file with e-mails may leave ids empty; an
    order's amount may be negative (a refund, see :func:`settle_refunds`)."""
    column = spec.column(name)
    if (spec.name, name) == ("orders", "amount"):
        column = replace(column, minimum=None)
    return column if column.required == (name in required) else replace(column, required=name in required)


def settle_refunds(frame: pd.DataFrame, rows: np.ndarray, *, errors: list[RowError]) -> pd.DataFrame:
    """Money as it moves, the one rule for every import of orders (cleaned ``amount``, ``status``
    and, when the file has it, ``refunded_amount``):

    - a negative amount (a refund written as a negative payment, a credit note) is money paid
      back: amount and refunded_amount become its absolute value, status ``refunded``;
    - a ``refunded`` order that does not say how much was paid back (or says 0: Gumroad's Partial
      Refund of a sale refunded whole) was paid back whole;
    - otherwise refunded_amount is what the file says, 0 when it says nothing; more than the amount
      is an error of the row.
    """
    amount = pd.to_numeric(frame["amount"], errors="coerce")
    refunded = (pd.to_numeric(frame["refunded_amount"], errors="coerce") if "refunded_amount" in frame
                else pd.Series(np.nan, index=frame.index))
    negative = (amount < 0).to_numpy()
    amount = amount.abs()
    status = frame["status"].copy()
    status[negative] = "refunded"
    refunded[negative] = amount[negative]
    whole = (status == "refunded").to_numpy() & (refunded.isna() | (refunded == 0)).to_numpy()
    refunded[whole] = amount[whole]
    refunded = refunded.fillna(0.0)
    for idx in np.flatnonzero((refunded > amount + 1e-9).to_numpy()):
        errors.append(RowError(int(rows[idx]), "refunded_amount", float(refunded.iat[idx]),
                               t("is more than the order's amount {amount}", amount=f"{float(amount.iat[idx]):g}")))
    return frame.assign(amount=amount.astype(object).where(amount.notna(), None),
                        refunded_amount=refunded.astype(object), status=status)


def with_defaults(records: list[tuple], columns: list[str], *, defaults: dict[str, Any]) -> list[tuple]:
    """``records`` (tuples in the order of ``columns``) with an empty value of a column of
    ``defaults`` replaced by its default (:data:`NEW_ROW_DEFAULTS`)."""
    at = [(columns.index(c), v) for c, v in defaults.items() if c in columns]
    if not at or not any(r[i] is None for r in records for i, _ in at):
        return records
    out = []
    for record in records:
        values = list(record)
        for i, default in at:
            if values[i] is None:
                values[i] = default
        out.append(tuple(values))
    return out


def column_defaults(columns: list[list[Any]], names: list[str], *, defaults: dict[str, Any]) -> list[list[Any]]:
    """``columns`` (value lists, named ``names``) with an empty value of a column of ``defaults``
    replaced by its default (:data:`NEW_ROW_DEFAULTS`): :func:`with_defaults` a column at a time,
    for rows that are all new (a first import), without rebuilding every row's tuple."""
    out = list(columns)
    for name, default in defaults.items():
        if name in names and None in out[names.index(name)]:
            out[names.index(name)] = [default if v is None else v for v in out[names.index(name)]]
    return out


def _natives(values: list[Any]) -> list[Any]:
    """Numpy scalars as Python ones (the rest as they are)."""
    if not any(issubclass(t, np.generic) for t in set(map(type, values))):
        return values
    return [v.item() if isinstance(v, np.generic) else v for v in values]


class TableBatch:
    """One table's import batch, written a chunk at a time inside one write transaction (that
    holds the write lock from the first read of the rows it compares with, so nobody commits in
    between). The import log keeps what it changed (and where its rejects file is) for undo and
    erasure; ``group_id`` ties the batches of one export that fills several tables together.

    Each chunk's rows are compared with the stored ones by key: new rows are inserted, changed ones
    updated (their values before are kept), equal ones left. A key met again in a later chunk is
    merged into the row written for it: its non-empty values win. ``keep_stored``: an empty value of
    the file never overwrites a stored one (an export adds what it knows). In a dry run only
    ``result``'s counts are set.
    """

    def __init__(self, db: Database, spec: Table, *, path: Path, result: ImportResult,
                 keep_stored: bool = False) -> None:
        self.db, self.spec, self.path, self.result, self.keep_stored = db, spec, path, result, keep_stored
        self.pk = list(spec.pk_columns)
        self.seen: dict[tuple, bool] = {}  # every key of this batch: True when the batch inserted it
        self.previous: list[dict[str, Any]] = []  # the rows it updated, as they were before
        self.updated_keys: set[tuple] = set()
        self.created_customers: list[str] = []
        self.merged = 0
        self.empty_at_start = db.execute(f"SELECT 1 FROM {spec.name} LIMIT 1").fetchone() is None
        self.inserted_keys, self.written = Packer(), Packer()  # the written rows in the compact form
        self.columns: list[str] | None = None
        self.inserted_keys.write('{"keys": ')
        self.inserted_keys.array_start()

    def add(self, frame: pd.DataFrame, to_create: list[str] | None = None) -> None:
        """Write one chunk (its keys unique: duplicates merged by the caller)."""
        cols = list(frame.columns)
        if self.columns is None:
            self.columns = cols
            self.written.write(orjson.dumps({"columns": cols})[:-1] + b', "rows": [')
        elif cols != self.columns:
            raise ValueError(f"every chunk of a batch has the columns {self.columns}, not {cols}")
        columns = [_natives(frame[c].astype(object).where(frame[c].notna(), None).tolist()) for c in cols]
        values = list(zip(*columns))
        keys = list(zip(*(columns[cols.index(c)] for c in self.pk)))
        inserts: list[tuple] = []
        updates: list[tuple] = []
        inserted: list[tuple] = []
        defaults = NEW_ROW_DEFAULTS.get(self.spec.name, {})
        if self.empty_at_start and self.seen.keys().isdisjoint(keys):  # a first import: every row is new
            inserts, inserted = list(zip(*column_defaults(columns, cols, defaults=defaults))), keys
            self.seen.update(dict.fromkeys(keys, True))
        else:
            # the rows stored under these keys: from before the import, or written by an earlier chunk
            lookup = [k for k in keys if k in self.seen] if self.empty_at_start else keys
            existing = _existing_rows(self.db, self.spec, lookup, cols) if lookup else {}
            changed: list[tuple] = []  # keys of rows stored before the import that it changes
            for key, record in zip(keys, values):
                old = existing.get(key)
                again = key in self.seen
                if old is None:
                    if again:  # a dry run wrote nothing: the key's earlier row is merged into
                        self.merged += 1
                    else:
                        inserts.append(record)
                        inserted.append(key)
                        self.seen[key] = True
                    continue
                self.merged += again
                if self.keep_stored or again:
                    record = tuple(o if v is None else v for o, v in zip(old, record))
                self.seen.setdefault(key, False)
                if old == record or not any(map(differs, old, record)):
                    continue  # equal values never differ: the common case of a re-import
                updates.append(record)
                if not self.seen[key] and key not in self.updated_keys:
                    self.updated_keys.add(key)
                    changed.append(key)
            if changed:  # their values before, every column, for undo
                before = _existing_rows(self.db, self.spec, changed)
                self.previous += [before[k] for k in changed]
            inserts = with_defaults(inserts, cols, defaults=defaults)
        self.created_customers += to_create or []
        if self.result.dry_run:
            return
        if to_create:
            self.db.conn.executemany("INSERT OR IGNORE INTO customers (customer_id) VALUES (?)",
                                     [(c,) for c in to_create])
        non_key = [c for c in cols if c not in self.pk]
        conflict = f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in non_key)}" if non_key else "DO NOTHING"
        insert = f"INSERT INTO {self.spec.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        # the keys were read under this transaction's write lock and duplicates merged: new rows
        # take a plain INSERT (an upsert costs SQLite about twice as much per row)
        self.db.conn.executemany(insert, inserts)
        self.db.conn.executemany(f"{insert} ON CONFLICT({', '.join(self.pk)}) {conflict}", updates)
        self.inserted_keys.items(table_items(inserted))
        self.written.items(table_items(inserts))
        self.written.items(table_items(updates))

    def close(self, rejects: Path | None = None, *, group_id: int | None = None) -> None:
        """Set the counts and write the batch's bookkeeping (``rejects``: the file of the rows left
        out, for erasure); a batch that changed nothing and left nothing out gets none
        (``result.batch_id`` stays None)."""
        result = self.result
        result.inserted = sum(self.seen.values())
        result.updated = len(self.updated_keys)
        result.unchanged = len(self.seen) - result.inserted - result.updated
        if result.dry_run or not (result.inserted or result.updated or self.created_customers or rejects):
            return  # a batch that changed nothing is not logged: the undo history lists what can be taken back
        with open(self.path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        cursor = self.db.execute(
            f"INSERT INTO {IMPORT_LOG} (file_name, sha256, table_name, inserted, updated, unchanged, rejected, "
            "imported_at, group_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [self.path.name, digest, self.spec.name, result.inserted, result.updated, result.unchanged,
             result.rejected, dt.datetime.now().isoformat(timespec="seconds"), group_id],
        )
        result.batch_id = cursor.lastrowid
        self.inserted_keys.write("], " + json.dumps({"created_customers": self.created_customers,
                                                      "rejects_file": str(rejects.resolve()) if rejects else None})[1:])
        if self.columns is None:
            self.written.write('{"columns": [], "rows": [')
        self.written.write("]}")
        self.db.execute(
            f"INSERT INTO {IMPORT_BATCHES} (batch_id, table_name, inserted_keys, previous_rows, written_rows) "
            "VALUES (?, ?, ?, ?, ?)",
            [result.batch_id, self.spec.name, self.inserted_keys.close(), pack(self.previous), self.written.close()],
        )
