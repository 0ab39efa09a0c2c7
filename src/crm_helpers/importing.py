"""Importing what the owner's tools export (CSV, Excel) into the store.

``import_file(db, "orders", "export.csv")`` reads the file (delimiter and encoding detected,
UTF-8/UTF-16/GBK/GB18030, ``.xlsx``), matches its headers to the table's columns (English and
Chinese aliases, or an explicit mapping), cleans every value (thousands separators, currency
symbols, comma decimals, day/month order decided once for the whole file, Excel serial dates),
checks keys and references, and upserts by the table's natural key in one transaction:

- importing the same file twice changes nothing; an updated export updates the rows it changed;
- customers without an id are matched on their e-mail; two rows for one person are merged;
- a ``mapping`` (``--map``) is kept for the file's layout (its headers) and used for the next file
  of the same layout when none is given;
- by default one bad row rejects the whole file and nothing is written; with
  ``skip_bad_rows=True`` the good rows are written and the bad ones go, with their reasons, to
  ``<file>.rejects.csv`` beside the input.

Each import is a batch in the import log; what it changed is kept for ``undo_import``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import sqlite3
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlite_utils import Database

from .schema import IMPORT_BATCHES, IMPORT_LOG, IMPORT_MAPPINGS, Column, Table
from .schema import table as schema_table
from .sources import normalize
from .store import explain_error, store_path, write_transaction
from .suppression import skip_erased
from .undo import differs, pack
from .validation import FALSE_WORDS, MAX_WHOLE_NUMBER, TRUE_WORDS, clean_value, date_parts

MAX_XLSX_BYTES = 50 * 1024 * 1024
MAX_XLSX_UNPACKED = 500 * 1024 * 1024
MAX_XLSX_RATIO = 100
SHOWN_ERRORS = 10
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


class ImportRejected(ValueError):
    """The file as a whole was not imported; nothing was written. The message says why."""


@dataclass
class RowError:
    """One problem: the file's row as a spreadsheet shows it (header = row 1), column, value, reason."""

    row: int
    column: str
    value: Any
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.value!r} {self.reason}"


@dataclass
class ImportResult:
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

    def summary(self) -> str:
        """One line for a person: what happened to the file."""
        parts = [f"{self.inserted} inserted", f"{self.updated} updated", f"{self.unchanged} unchanged",
                 f"{self.rejected} rejected"]
        if self.merged:
            parts.append(f"{self.merged} duplicate rows merged")
        if self.created_customers:
            parts.append(f"{self.created_customers} customers created")
        if self.erased_skipped:
            parts.append(f"{self.erased_skipped} rows of erased people skipped")
        text = f"{self.file.name} -> {self.table}: " + ", ".join(parts)
        if self.dry_run and self.columns:
            text += "; columns: " + ", ".join(f"{h} -> {c}" for h, c in self.columns.items())
        if self.rejects_path:
            text += f"; bad rows and reasons in {self.rejects_path.name}"
        if self.ignored_columns:
            text += f"; ignored columns: {', '.join(self.ignored_columns)}"
            text += map_hint(self.table, self.ignored_columns)
        for note in self.notes:
            text += f"; {note}"
        return text + (" (dry run: nothing written)" if self.dry_run else "")


# ---------------------------------------------------------------------------------------- reading
def _decode(raw: bytes, path: Path, encoding: str | None) -> str:
    if encoding:
        try:
            return raw.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise ImportRejected(f"{path.name}: cannot be read as {encoding}: {exc}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ImportRejected(f"{path.name}: starts like UTF-16 text but is damaged: {exc.reason}") from None
    if b"\x00" in raw[:4096]:
        raise ImportRejected(f"{path.name}: this looks like a binary file, not a CSV or Excel export")
    try:
        return raw.decode("utf-8-sig")
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
        return raw.decode(name)
    except (LookupError, UnicodeDecodeError):
        raise ImportRejected(
            f"{path.name}: the text encoding could not be recognised; give it with --encoding (e.g. gb18030, latin-1)"
        ) from None


def _read_csv(path: Path, encoding: str | None) -> tuple[list[str], list[list[str]]]:
    text = _decode(path.read_bytes(), path, encoding)
    if not text.strip():
        raise ImportRejected(f"{path.name}: the file is empty")
    first_line = _LINE_BREAK.split(text, maxsplit=1)[0]  # text.splitlines()[0] without splitting it all
    delimiter = max([",", ";", "\t", "|"], key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        rows = [r for r in reader]
    except csv.Error as exc:
        raise ImportRejected(
            f"{path.name}: malformed CSV near row {reader.line_num}: {exc} (an unclosed quote?)"
        ) from None
    rows = [r for r in rows if "".join(r).strip()]  # some cell holds more than whitespace
    if not rows:
        raise ImportRejected(f"{path.name}: the file holds only separators, no values")
    return rows[0], rows[1:]


def _check_xlsx(path: Path) -> None:
    if path.stat().st_size > MAX_XLSX_BYTES:
        raise ImportRejected(f"{path.name}: the workbook is larger than {MAX_XLSX_BYTES // 2**20} MB; export it as CSV")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except zipfile.BadZipFile:
        raise ImportRejected(f"{path.name}: not a valid .xlsx workbook") from None
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


def _read_xlsx(path: Path) -> tuple[list[str], list[list[str]]]:
    _check_xlsx(path)
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        raise ImportRejected(f"{path.name}: the workbook cannot be read: {exc}") from None
    try:
        rows = [[_cell_text(v) for v in row] for row in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ImportRejected(f"{path.name}: the first sheet is empty")
    return rows[0], rows[1:]


def read_rows(path: Path, encoding: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of a CSV or .xlsx file, as text."""
    if not path.exists():
        raise ImportRejected(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImportRejected(f"{path.name}: the file is empty")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    return _read_csv(path, encoding)


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


def match_headers(spec: Table, header: list[str], mapping: dict[str, str] | None) -> tuple[dict[int, str], list[str]]:
    """``({file column index: store column}, ignored headers)``."""
    columns = set(spec.column_names)
    mapping = mapping or {}
    bad = {dst for dst in mapping.values() if dst not in columns}
    if bad:
        raise ImportRejected(
            f"--map target {', '.join(sorted(bad))} is not a column of {spec.name}; valid: {', '.join(spec.column_names)}"
        )
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


def header_signature(header: list[str]) -> str:
    """A file layout's key: its non-empty headers, normalised, in order."""
    return "|".join(normalize(h) for h in header if h.strip())


def remembered_mapping(db: Database, header: list[str]) -> tuple[str, dict[str, str]] | None:
    """``(table, mapping)`` kept for this layout by an earlier ``--map``, or None."""
    row = db.execute(f"SELECT target_table, mapping FROM {IMPORT_MAPPINGS} WHERE signature = ?",
                     [header_signature(header)]).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def remember_mapping(db: Database, header: list[str], table: str, mapping: dict[str, str]) -> None:
    """Keep ``mapping`` for this layout, so that next month's export of it needs no flags."""
    db.table(IMPORT_MAPPINGS).upsert(
        {"signature": header_signature(header), "target_table": table, "mapping": json.dumps(mapping),
         "saved_at": dt.datetime.now().isoformat(timespec="seconds")}, pk="signature")


# ---------------------------------------------------------------------------------- cleaning
def decide_dayfirst(path: Path, dates: dict[str, pd.Series], dayfirst: bool | None,
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
        raise ImportRejected(
            f"{path.name}: the dates mix day/month and month/day order; fix the file so that one order is used"
        )
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
        raise ImportRejected(
            f"{path.name}: row {row}, column {col}: {value!r} could be {_day_month(a, b)} or {_day_month(b, a)}, "
            "and no date in the file decides the order; pass --dayfirst (day first, as in most of Europe) "
            "or --monthfirst (month first, as in the US); from Python: dayfirst=True or False"
        )
    return None


def _day_month(day: int, month: int) -> str:
    return f"{day} {dt.date(2000, month, 1):%B}"


def clean_column(column: Column, raw: pd.Series, dayfirst: bool | None, errors: list[RowError],
                  rows: np.ndarray) -> pd.Series:
    """Clean one column: vectorized fast paths for tidy values, per-value parsing for the rest."""
    values = raw.astype(object).where(raw.notna(), "").tolist()
    stripped = list(map(str.strip, values)) if set(map(type, values)) <= {str} else [str(v).strip() for v in values]
    text = pd.Series(stripped, index=raw.index, dtype=object)
    blank = text == ""
    out = pd.Series([None] * len(text), index=text.index, dtype=object)
    todo = ~blank
    if column.type in ("real", "integer"):
        fast = pd.to_numeric(text.where(todo & text.str.fullmatch(r"-?\d+(\.\d+)?"), None), errors="coerce")
        fast = fast.astype(float)
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
            values[idx] = clean_value(column, value, dayfirst)
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


def _customer_ids(db: Database, frame: pd.DataFrame, rows: np.ndarray, errors: list[RowError]) -> pd.Series:
    """Fill missing customer ids: the id another row of the file gives the same e-mail, else the
    store's customer with that e-mail, else :func:`stable_customer_id`. E-mails are compared
    lower-cased (they are stored so), so one person written twice becomes one record."""
    ids = frame["customer_id"] if "customer_id" in frame else pd.Series([None] * len(frame), index=frame.index)
    emails = frame["email"] if "email" in frame else pd.Series([None] * len(frame), index=frame.index)
    known = dict(db.execute("SELECT email, customer_id FROM customers WHERE email IS NOT NULL").fetchall())
    in_file: dict[str, str] = {}
    for cid, email in zip(ids, emails):
        if cid is not None and email is not None:
            in_file.setdefault(email, cid)
    ids = ids.astype(object)
    for idx in range(len(frame)):
        cid, email = ids.iat[idx], emails.iat[idx]
        if cid is None and email is not None:
            ids.iat[idx] = in_file.get(email) or known.get(email) or stable_customer_id(email)
        elif cid is None:
            errors.append(RowError(int(rows[idx]), "customer_id", "", "required (or an e-mail to match on)"))
        elif email is not None and known.get(email, cid) != cid:
            errors.append(RowError(int(rows[idx]), "email", email, f"already belongs to customer {known[email]}"))
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
                      create_missing_customers: bool) -> list[str]:
    """Flag rows pointing at unknown parents; returns customer ids to create (when allowed)."""
    to_create: list[str] = []
    for column in spec.columns:
        if not column.references or column.name not in frame:
            continue
        parent, parent_col = column.references.split(".")
        values = frame[column.name]
        wanted = set(values.dropna().unique())
        if not wanted:
            continue
        known = {r[0] for r in db.execute(f"SELECT {parent_col} FROM {parent}").fetchall()}
        missing = wanted - known
        if not missing:
            continue
        if parent == "customers" and create_missing_customers:
            to_create = sorted(missing)
            continue
        noun = parent[:-1] if parent.endswith("s") else parent
        for idx in np.flatnonzero(values.isin(missing).to_numpy()):
            errors.append(RowError(int(rows[idx]), column.name, values.iat[idx], f"unknown {noun}"))
    return to_create


# ----------------------------------------------------------------------------------- writing
def _existing_rows(db: Database, spec: Table, keys: list[tuple]) -> dict[tuple, dict[str, Any]]:
    pk = spec.pk_columns
    db.execute("DROP TABLE IF EXISTS temp._import_keys")
    db.execute(f"CREATE TEMP TABLE _import_keys ({', '.join(pk)})")
    db.conn.executemany(f"INSERT INTO temp._import_keys VALUES ({', '.join('?' * len(pk))})", keys)
    join = " AND ".join(f"t.{c} = k.{c}" for c in pk)
    cursor = db.execute(f"SELECT t.* FROM {spec.name} t JOIN temp._import_keys k ON {join}")
    names = [d[0] for d in cursor.description]
    found = {}
    for row in cursor.fetchall():
        record = dict(zip(names, row))
        found[tuple(record[c] for c in pk)] = record
    db.execute("DROP TABLE temp._import_keys")
    return found


def rejects_path(path: Path) -> Path:
    """Where the bad rows of ``path`` go with ``skip_bad_rows``: ``<stem>.rejects.csv`` beside it."""
    return path.with_name(f"{path.stem}.rejects.csv")


def _write_rejects(path: Path, header: list[str], raw_rows: dict[int, list[str]], errors: list[RowError]) -> Path:
    from .safe_csv import write_safe_rows

    by_row: dict[int, list[str]] = {}
    for e in errors:
        by_row.setdefault(e.row, []).append(f"{e.column}: {e.value!r} {e.reason}")
    target = rejects_path(path)
    rows = [["row", "reasons", *header]]
    rows += [[str(r), "; ".join(reasons), *raw_rows.get(r, [])] for r, reasons in sorted(by_row.items())]
    write_safe_rows(target, rows)
    return target


SKIP_HINT = "Fix these rows, or import the good ones with --skip-bad-rows (bad rows go to a .rejects.csv file)."


def _message(path: Path, errors: list[RowError], hint: str = SKIP_HINT) -> str:
    errors = sorted(errors, key=lambda e: e.row)
    shown = "\n".join(f"  {e}" for e in errors[:SHOWN_ERRORS])
    more = f"\n  … and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
    rows = len({e.row for e in errors})
    if hint == SKIP_HINT and any(e.reason == "unknown customer" for e in errors):
        hint += (" If these customers are new, --create-missing-customers adds them as bare customers"
                 " (or import the customers file first).")
    return f"{path.name}: {rows} bad row(s); nothing was imported.\n{shown}{more}\n{hint}"


def import_file(
    db: Database,
    table: str,
    path: str | os.PathLike[str],
    mapping: dict[str, str] | None = None,
    *,
    encoding: str | None = None,
    dayfirst: bool | None = None,
    dry_run: bool = False,
    skip_bad_rows: bool = False,
    create_missing_customers: bool = False,
) -> ImportResult:
    """Import one CSV/.xlsx file into ``table``; see the module doc. Raises :class:`ImportRejected`."""
    path = Path(path)
    try:
        spec = schema_table(table)
    except ValueError as exc:
        raise ImportRejected(str(exc)) from None
    header, data = read_rows(path, encoding)
    if not data:
        raise ImportRejected(f"{path.name}: only a header row, no data")
    result = ImportResult(table=spec.name, file=path, dry_run=dry_run)
    given = mapping
    if mapping is None and (saved := remembered_mapping(db, header)) and saved[0] == spec.name:
        mapping = saved[1]
        result.notes.append("used the --map kept from an earlier file of this layout")
    found, result.ignored_columns = match_headers(spec, header, mapping)
    result.columns = {header[i].strip(): column for i, column in found.items()}
    required = {c.name for c in spec.columns if c.required}
    if spec.name == "customers" and "email" in found.values():
        required.discard("customer_id")
    if spec.name == "orders" and "status" not in found.values():
        required.discard("status")
        result.notes.append("the file has no status column: every order was taken as paid")
    missing = sorted(required - set(found.values()))
    if missing:
        raise ImportRejected(
            f"{path.name}: missing required column(s) {', '.join(missing)} for {spec.name}; the file has "
            f"{', '.join(h for h in header if h.strip())}. Rename them or use --map 'Their Header=column'."
        )
    width = len(header)
    rows = np.arange(2, len(data) + 2)
    errors: list[RowError] = []
    for r, d in zip(rows, data):
        if len(d) > width and any(c.strip() for c in d[width:]):
            errors.append(RowError(int(r), "(row)", len(d), f"has {len(d)} fields, the header has {width}"))
    if all(len(d) == width for d in data):
        by_column = list(zip(*data))
        raw = pd.DataFrame({col: list(by_column[i]) for i, col in found.items()})
    else:
        raw = pd.DataFrame({col: [d[i] if i < len(d) else "" for d in data] for i, col in found.items()})
    decided = decide_dayfirst(path, {c.name: raw[c.name] for c in spec.columns
                                     if c.type in ("date", "datetime") and c.name in raw}, dayfirst, rows)
    frame = pd.DataFrame({col: clean_column(_as_found(spec, col, required), raw[col], decided, errors, rows)
                          for col in raw})
    if spec.name == "customers":
        frame["customer_id"] = _customer_ids(db, frame, rows, errors)
    frame, rows, result.erased_skipped = skip_erased(db, frame, rows, errors)  # the suppression list
    if spec.name == "orders":
        if "status" not in frame:
            frame["status"] = "paid"
        frame = settle_refunds(frame, rows, errors)
    to_create = _check_references(db, spec, frame, rows, errors, create_missing_customers)
    bad_rows = {e.row for e in errors}
    if bad_rows and not skip_bad_rows:
        raise ImportRejected(_message(path, errors))
    good = ~np.isin(rows, list(bad_rows))
    frame, good_rows = frame[good].reset_index(drop=True), rows[good]
    result.errors, result.rejected = errors, len(bad_rows)
    frame, good_rows, result.merged = _merge_duplicates(frame, list(spec.pk_columns), good_rows)
    if to_create:
        used = set(frame["customer_id"]) if "customer_id" in frame else set()
        to_create = [c for c in to_create if c in used]
        result.created_customers = len(to_create)
    _upsert(db, spec, path, frame, result, to_create, rejects_path(path) if result.errors else None)
    if given and not dry_run:
        remember_mapping(db, header, spec.name, given)
    if result.errors and skip_bad_rows and not dry_run:
        result.rejects_path = _write_rejects(path, header, dict(enumerate(data, start=2)), result.errors)
    return result


def _as_found(spec: Table, name: str, required: set[str]) -> Column:
    """The column as this file must fill it: a customers file with e-mails may leave ids empty; an
    order's amount may be negative (a refund, see :func:`settle_refunds`)."""
    column = spec.column(name)
    if (spec.name, name) == ("orders", "amount"):
        column = replace(column, minimum=None)
    return column if column.required == (name in required) else replace(column, required=name in required)


def settle_refunds(frame: pd.DataFrame, rows: np.ndarray, errors: list[RowError]) -> pd.DataFrame:
    """Money as it moves, the one rule for every import of orders (cleaned ``amount``, ``status``
    and, when the file has it, ``refunded_amount``):

    - a negative amount (a refund written as a negative payment, a credit note) is money paid
      back: amount and refunded_amount become its absolute value, status ``refunded``;
    - a ``refunded`` order that does not say how much was paid back was paid back whole;
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
    whole = (status == "refunded").to_numpy() & refunded.isna().to_numpy()
    refunded[whole] = amount[whole]
    refunded = refunded.fillna(0.0)
    for idx in np.flatnonzero((refunded > amount + 1e-9).to_numpy()):
        errors.append(RowError(int(rows[idx]), "refunded_amount", float(refunded.iat[idx]),
                               f"is more than the order's amount {float(amount.iat[idx]):g}"))
    return frame.assign(amount=amount.astype(object).where(amount.notna(), None),
                        refunded_amount=refunded.astype(object), status=status)


def _natives(values: list[Any]) -> list[Any]:
    """Numpy scalars as Python ones (the rest as they are)."""
    if not any(issubclass(t, np.generic) for t in set(map(type, values))):
        return values
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame.to_dict("records")`` with missing values as None and numpy scalars as Python ones,
    built column by column (pandas' row-wise boxing dominates an import of a million rows)."""
    cols = list(frame.columns)
    columns = [_natives(frame[c].astype(object).where(frame[c].notna(), None).tolist()) for c in cols]
    return [dict(zip(cols, values)) for values in zip(*columns)]


def _upsert(db: Database, spec: Table, path: Path, frame: pd.DataFrame, result: ImportResult,
            to_create: list[str], rejects: Path | None) -> None:
    """Write one table's batch in its own transaction (see :func:`write_table`)."""
    try:
        with db.atomic() if result.dry_run else write_transaction(db):
            write_table(db, spec, path, frame, result, to_create=to_create, rejects=rejects)
    except sqlite3.DatabaseError as exc:
        raise ImportRejected(f"{path.name}: nothing was imported: {explain_error(store_path(db), exc)}") from None


def write_table(db: Database, spec: Table, path: Path, frame: pd.DataFrame, result: ImportResult, *,
                to_create: list[str] | tuple[str, ...] = (), rejects: Path | None = None,
                group_id: int | None = None, keep_stored: bool = False) -> None:
    """Upsert ``frame`` into ``spec``'s table as one import batch; call it inside a write transaction
    (that holds the write lock from the first read of the rows it compares with, so nobody commits
    in between). The import log keeps what it changed (and where its rejects file is) for undo and
    erasure; ``group_id`` ties the batches of one export that fills several tables together.
    ``keep_stored``: an empty value of the file never overwrites a stored one (an export adds what
    it knows). In a dry run only ``result``'s counts are set."""
    cols = list(frame.columns)
    pk = list(spec.pk_columns)
    records = _records(frame)
    keys = [tuple(r[c] for c in pk) for r in records]
    existing = _existing_rows(db, spec, keys)
    inserts, inserted_keys, updates, previous = [], [], [], []
    for key, record in zip(keys, records):
        old = existing.get(key)
        if old is None:
            inserts.append(record)
            inserted_keys.append(key)
            continue
        if keep_stored:
            record = {c: old[c] if v is None else v for c, v in record.items()}
        if tuple(old[c] for c in cols) == tuple(record.values()):
            continue  # equal values never differ: the common case of a re-import
        if any(differs(old[c], record[c]) for c in cols):
            updates.append(record)
            previous.append(old)
    result.inserted, result.updated = len(inserts), len(updates)
    result.unchanged = len(records) - len(inserts) - len(updates)
    if result.dry_run:
        return
    if to_create:
        db.conn.executemany("INSERT OR IGNORE INTO customers (customer_id) VALUES (?)", [(c,) for c in to_create])
    non_key = [c for c in cols if c not in pk]
    conflict = (f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in non_key)}" if non_key else "DO NOTHING")
    insert = f"INSERT INTO {spec.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    # the keys were read under this transaction's write lock and duplicates merged: new rows
    # take a plain INSERT (an upsert costs SQLite about twice as much per row)
    db.conn.executemany(insert, [tuple(r.values()) for r in inserts])
    db.conn.executemany(f"{insert} ON CONFLICT({', '.join(pk)}) {conflict}", [tuple(r.values()) for r in updates])
    cursor = db.execute(
        f"INSERT INTO {IMPORT_LOG} (file_name, sha256, table_name, inserted, updated, unchanged, rejected, "
        "imported_at, group_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [path.name, hashlib.sha256(path.read_bytes()).hexdigest(), spec.name, result.inserted, result.updated,
         result.unchanged, result.rejected, dt.datetime.now().isoformat(timespec="seconds"), group_id],
    )
    result.batch_id = cursor.lastrowid
    db.execute(
        f"INSERT INTO {IMPORT_BATCHES} (batch_id, table_name, inserted_keys, previous_rows, written_rows) "
        "VALUES (?, ?, ?, ?, ?)",
        [result.batch_id, spec.name,
         pack({"keys": inserted_keys, "created_customers": list(to_create),  # tuples: the same JSON arrays
               "rejects_file": str(rejects.resolve()) if rejects else None}),
         pack(previous), pack(inserts + updates)],
    )
