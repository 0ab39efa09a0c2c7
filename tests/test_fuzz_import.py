"""Property-based fuzzing of the importer (hypothesis).

Whatever the file (random bytes, a damaged export, any of the encodings and delimiters people's
tools write, columns shuffled, renamed or mapped, extreme and hostile values, a random workbook),
``import_file`` ends in exactly one of two ways:

- a clean import: the store passes its integrity and foreign-key checks, every stored value is
  valid for its column, the counts add up, the rejects file (if any) is owner-only and
  formula-safe, and undoing the batch gives back exactly the store as it was;
- a clean :class:`ImportRejected`: the store (every row of every table, the import log) is
  unchanged.

Any other exception fails the test. Examples per property: ``$CRM_FUZZ_EXAMPLES`` (default 500,
a fifth of that for workbooks: 1,600 cases, about 25 s on one core; ``make fuzz`` runs 5,000).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import os
import sqlite3
import stat
from pathlib import Path

import pytest
import sqlite_utils
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from crm_helpers.ingest.table_import import _HEADER_ALIASES, ImportRejected, import_file
from crm_helpers.store.safe_csv import FORMULA_STARTS
from crm_helpers.store.schema import IMPORT_BATCHES, IMPORT_LOG, TABLES, Column
from crm_helpers.store.connection import migrate_db
from crm_helpers.store.undo import undo_import
from crm_helpers.store.validation import validate_record

EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
TABLE_NAMES = sorted(TABLES)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "gb18030", "big5", "cp1252", "latin-1", "shift_jis"]
DELIMITERS = [",", ";", "\t", "|"]

# Known rows the generated files refer to (so that references, updates and merges happen).
EXISTING = {
    "customer_id": ["C1", "C2", "C3"],
    "product_id": ["P1", "P2"],
    "campaign_id": ["K1"],
    "order_id": ["O1", "O2"],
}
NASTY_TEXT = [
    "", " ", "\t", "NULL", "None", "nan", "NaN", "null", "-", "'", '"', '""', "\\", "\\N", ",", ";", "|",
    "=HYPERLINK(\"http://x\")", "=cmd|' /C calc'!A0", "+1+1", "-1", "@SUM(A1)", "\r=1",
    "x'); DROP TABLE customers; --", "\u202eevil", "😀", "中文名字", "Ünïcødé", "\u00a0", "\ufeff", "a\nb", "a\r\nb",
    "x" * 3000,
]
NASTY_NUMBERS = [
    "0", "-0", "1e308", "-1e308", "1e309", "1e-320", "inf", "-inf", "nan", "1" * 400, "99999999999999999999999",
    "9223372036854775808", "-9223372036854775809", "1,234.56", "1.234,56", "1 234,56", "€1.234,56", "$ 12", "(12)",
    "12-", "1_000", "0x10", "١٢٣", "½", "1/2", "12.5%", "¥1288.50", "RMB 12", "  7  ", "1e5", ".5", "5.",
]
NASTY_DATES = [
    "0000-00-00", "0001-01-01", "9999-12-31", "2026-02-29", "2024-02-29", "2026-13-01", "2026-00-10", "99999-01-01",
    "31/12/1999", "12/31/1999", "03/04/2026", "1/2/3", "2026年3月4日", "2026年13月40日", "60", "1", "2958465",
    "2958466", "45000.75", "1e5", "2026-01-01T25:61:61", "2026-01-01 10:00:00+05:00", "2026-01-01Z", "yesterday",
]
BOOL_WORDS = ["yes", "no", "YES", "y", "n", "true", "False", "1", "0", "是", "否", "ja", "maybe", "2", "✓", "x"]


# ------------------------------------------------------------------------------------- the store
@pytest.fixture(scope="module")
def template() -> sqlite3.Connection:
    """The store every example starts from: three customers, two products, a campaign, two orders."""
    db = sqlite_utils.Database(memory=True)
    db.execute("PRAGMA foreign_keys = ON")
    migrate_db(db)
    db.table("customers").insert_all([
        {"customer_id": "C1", "name": "Ada", "email": "ada@example.com", "consent_marketing": 1},
        {"customer_id": "C2", "name": "Bo", "email": "bo@example.com"},
        {"customer_id": "C3", "name": "Cy"},
    ])
    db.table("products").insert_all([{"product_id": "P1", "name": "Tea", "unit_price": 9.5},
                                      {"product_id": "P2", "name": "Pot", "unit_price": 30.0}])
    db.table("campaigns").insert({"campaign_id": "K1", "name": "Spring", "channel": "email", "cost": 100.0})
    db.table("orders").insert_all([
        {"order_id": "O1", "customer_id": "C1", "order_date": "2026-01-02", "amount": 10.0, "status": "paid"},
        {"order_id": "O2", "customer_id": "C2", "order_date": "2026-01-03", "amount": 20.0, "status": "refunded"},
    ])
    db.table("order_items").insert({"order_id": "O1", "product_id": "P1", "quantity": 1, "unit_price": 10.0})
    return db.conn


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


_counter = itertools.count()


def _fresh_store(template: sqlite3.Connection) -> sqlite_utils.Database:
    conn = sqlite3.connect(":memory:")
    template.backup(conn)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA foreign_keys = ON")
    return db


def _everything(db: sqlite_utils.Database) -> dict[str, list]:
    tables = [*TABLES, IMPORT_LOG, IMPORT_BATCHES]
    return {t: sorted(map(repr, db.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}


def _data(snapshot: dict[str, list]) -> dict[str, list]:
    return {t: rows for t, rows in snapshot.items() if t in TABLES}


def _run(template: sqlite3.Connection, folder: Path, name: str, raw: bytes, table: str, **options) -> None:
    """Import ``raw`` as file ``name`` and check that it ended cleanly either way (see the module doc)."""
    db = _fresh_store(template)
    before = _everything(db)
    path = folder / f"{next(_counter)}-{name}"
    path.write_bytes(raw)
    try:
        try:
            result = import_file(db, table, path=path, **options)
        except ImportRejected as exc:
            event("rejected")
            assert str(exc).strip()
            assert not db.conn.in_transaction
            assert _everything(db) == before
            return
        event("imported, rows rejected" if result.rejected else "imported")
        _check_clean_import(db, before, table, result, options)
    finally:
        path.unlink()
        path.with_name(f"{path.stem}.rejects.csv").unlink(missing_ok=True)


def _check_clean_import(db, before, table, result, options) -> None:
    assert not db.conn.in_transaction
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert min(result.inserted, result.updated, result.unchanged, result.rejected, result.merged) >= 0
    after = _everything(db)
    if options.get("dry_run"):
        assert after == before and result.batch_id is None
        return
    assert len(after[table]) - len(before[table]) == result.inserted
    if table != "customers":
        assert len(after["customers"]) - len(before["customers"]) == result.created_customers
    for name in {table, "customers"}:
        cursor = db.execute(f"SELECT * FROM {name}")
        columns = [d[0] for d in cursor.description]
        for row in cursor.fetchall():
            record = {c: v for c, v in zip(columns, row) if v is not None}
            assert validate_record(TABLES[name], record)[1] == [], (name, record)
    if result.rejects_path is not None:
        assert stat.S_IMODE(os.stat(result.rejects_path).st_mode) == 0o600
        with open(result.rejects_path, encoding="utf-8-sig", newline="") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        assert not [c for c in cells if c.startswith(FORMULA_STARTS)], "a rejects cell would run as a formula"
    changed = result.inserted or result.updated or result.created_customers or result.rejects_path is not None
    if not changed:  # an import that changed nothing leaves no batch to undo, and the store as it was
        assert result.batch_id is None and _data(after) == _data(before)
        return
    assert result.batch_id is not None
    undo_import(db, result.batch_id)
    assert _data(_everything(db)) == _data(before)


# ------------------------------------------------------------------------------------ strategies
def _valid(column: Column, table: str) -> st.SearchStrategy[str]:
    """Values a clean export would hold for ``column``, in the many ways people's tools write them."""
    if column.name in EXISTING and (column.references or column.name not in TABLES[table].pk_columns):
        return st.sampled_from(EXISTING[column.name])
    if column.name in TABLES[table].pk_columns:
        return st.sampled_from(EXISTING.get(column.name, ["N0"])) | st.integers(0, 6).map(lambda i: f"N{i}")
    if column.name == "email":
        return st.sampled_from([" ADA@Example.COM ", "mailto:bo@example.com"]) \
            | st.integers(0, 9).map(lambda i: f"person{i}@example.org")
    if column.allowed:
        return st.sampled_from(column.allowed).flatmap(lambda v: st.sampled_from([v, v.upper(), f" {v.title()} "]))
    if column.type in ("integer", "real"):
        lo = column.minimum if column.minimum is not None else -1e6
        hi = column.maximum if column.maximum is not None else 1e6
        if column.type == "integer":
            return st.integers(int(lo), int(hi)).map(str)
        return st.floats(lo, hi).flatmap(lambda x: st.sampled_from([repr(x), f"{x:.2f}", f"{x:,.2f}", f"€ {x:.2f}",
                                                                     f"{x:.2f}".replace(".", ",")]))
    if column.type in ("date", "datetime"):
        days = st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31))
        return days.flatmap(lambda d: st.sampled_from([d.isoformat(), f"{d.year}年{d.month}月{d.day}日",
                                                       f"{d.isoformat()} 10:20:30",
                                                       str((d - dt.date(1899, 12, 30)).days)]))
    if column.type == "bool":
        return st.sampled_from(["yes", "no", "YES", "y", "n", "true", "False", "1", "0", "是", "否", ""])
    if column.required:
        return st.sampled_from(["Ada Lovelace", "Tea", "Zürich", "a, b", 'say "hi"', "  padded  ", "=1+1", "中文名字"])
    return st.sampled_from(NASTY_TEXT) | st.text(max_size=20)


HOSTILE = st.sampled_from([*NASTY_TEXT, "\x00"]) | st.sampled_from(NASTY_NUMBERS) | st.sampled_from(NASTY_DATES) \
    | st.sampled_from(BOOL_WORDS) | st.sampled_from(["X404", "x@y", "@", "a@b.c@d.e", "03/04/2026", "12/31/1999"]) \
    | st.text(max_size=12)


def _header(column: str) -> st.SearchStrategy[str]:
    aliases = [alias for alias, target in _HEADER_ALIASES.items() if target == column]
    spellings = [column, column.upper(), column.replace("_", " ").title(), f" {column} ", column.replace("_", "-")]
    return st.sampled_from(spellings + aliases)


@st.composite
def exports(draw) -> tuple[str, list[list[str]], dict[str, str]]:
    """A table name, the rows of an export for it (header first) and the ``--map`` it needs."""
    table = draw(st.sampled_from(TABLE_NAMES))
    spec = TABLES[table]
    required = [c for c in spec.columns if c.required]
    optional = [c for c in spec.columns if not c.required]
    columns = [c for c in required if draw(st.integers(0, 39)) > 0]  # now and then a required column is missing
    columns += draw(st.lists(st.sampled_from(optional), unique_by=lambda c: c.name, max_size=len(optional))) \
        if optional else []
    columns = draw(st.permutations(columns))
    mapping: dict[str, str] = {}
    fields: list[tuple[str, Column | None]] = []
    for i, column in enumerate(columns):
        if draw(st.integers(0, 9)) == 0:  # a header nobody could guess: renamed, given with --map
            fields.append((f"Spalte {i}", column))
            mapping[f"Spalte {i}"] = column.name
        else:
            fields.append((draw(_header(column.name)), column))
    for junk in draw(st.lists(st.sampled_from(["Notizen", "", "id", "Date", "extra", "email", "日期"]), max_size=2)):
        fields.insert(draw(st.integers(0, len(fields))), (junk, None))
    rows = []
    for _ in range(draw(st.sampled_from([3, 1, 2, 5, 8, 12, 0]))):
        dirty = draw(st.integers(0, 3)) == 0  # one row in four may hold anything
        row = [draw(HOSTILE | _valid(column, table) if dirty else _valid(column, table)) if column is not None
               else draw(st.sampled_from(NASTY_TEXT)) for _, column in fields]
        cut = draw(st.integers(0, 15))
        rows.append(row[:cut] if 0 < cut < min(len(row), 2) else row)  # now and then a short row
    if mapping and draw(st.integers(0, 4)) == 0:
        mapping[draw(st.sampled_from(["Spalte 99", "Notizen"]))] = draw(st.sampled_from(["shoe_size", "name"]))
    return table, [[name for name, _ in fields], *rows], mapping


def _encode(rows: list[list[str]], delimiter: str, quoting: int, newline: str, encoding: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=newline).writerows(rows)
    return out.getvalue().encode(encoding, errors="replace")


OPTIONS = st.fixed_dictionaries({"skip_bad_rows": st.booleans()}, optional={
    "create_missing_customers": st.booleans(),
    "dry_run": st.sampled_from([False, False, True]),
    "dayfirst": st.sampled_from([None, True, False]),
})


# -------------------------------------------------------------------------------------- properties
REGRESSION = dict(delimiter=",", quoting=csv.QUOTE_MINIMAL, newline="\n", encoding="utf-8", tell_encoding="no",
                  options={"skip_bad_rows": False})


@FUZZ
@given(
    export=exports(),
    delimiter=st.sampled_from(DELIMITERS),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    encoding=st.sampled_from(ENCODINGS),
    tell_encoding=st.sampled_from(["no"] * 6 + ["right", "wrong"]),
    options=OPTIONS,
)
@example(export=("order_items", [["order_id", "product_id", "quantity"], ["O1", "P2", "1e30"]], {}),
         **REGRESSION)  # a whole number too large for SQLite: was an OverflowError
@example(export=("order_items", [["order_id", "product_id", "quantity"], ["O1", "P2", "99999999999999999999999"]], {}),
         **REGRESSION)  # was stored wrapped around, as -9223372036854775808
@example(export=("orders", [["order_id", "customer_id", "order_date", "amount", "status"],
                            ["O9", "C1", "2026-01-01", "1" * 400, "paid"]], {}),
         **REGRESSION)  # 400 digits: was stored as an infinite amount
def test_exports_of_any_shape_import_cleanly_or_are_rejected_cleanly(
    template, folder, export, delimiter, quoting, newline, encoding, tell_encoding, options
):
    table, rows, mapping = export
    raw = _encode(rows, delimiter, quoting, newline, encoding)
    given_encoding = {"no": None, "right": encoding, "wrong": "ascii"}[tell_encoding]
    _run(template, folder, f"{table}.csv", raw, table, mapping=mapping or None, encoding=given_encoding, **options)


@FUZZ
@given(
    raw=st.binary(max_size=3000),
    table=st.sampled_from(TABLE_NAMES),
    suffix=st.sampled_from([".csv", ".txt", ".tsv", ".xlsx"]),
    options=OPTIONS,
)
@example(raw=b"\xff\xfea\x00b", table="orders", suffix=".csv", options={})  # damaged UTF-16: was a UnicodeDecodeError
@example(raw=b"PK\x03\x04" + b"\x00" * 40, table="orders", suffix=".xlsx", options={})
@example(raw=b",", table="orders", suffix=".csv", options={})  # separators only: was an IndexError
def test_random_bytes_are_rejected_cleanly(template, folder, raw, table, suffix, options):
    _run(template, folder, f"{table}{suffix}", raw, table, **options)


@FUZZ
@given(export=exports(), data=st.data(), options=OPTIONS)
def test_damaged_exports_are_rejected_or_imported_cleanly(template, folder, export, data, options):
    """A good-looking export with bytes flipped, cut off or inserted (a bad download, a broken disk)."""
    table, rows, mapping = export
    raw = bytearray(_encode(rows, ",", csv.QUOTE_MINIMAL, "\n", data.draw(st.sampled_from(ENCODINGS))))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(raw)))
        damage = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if damage == "flip" and where < len(raw):
            raw[where] = data.draw(st.integers(0, 255))
        elif damage == "cut":
            del raw[where:]
        else:
            raw[where:where] = data.draw(st.binary(min_size=1, max_size=8))
    _run(template, folder, f"{table}.csv", bytes(raw), table, mapping=mapping or None, **options)


XLSX_CELL = st.one_of(
    st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(min_value=dt.datetime(1900, 3, 1)), st.booleans(),
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=15),
)


@settings(FUZZ, max_examples=max(EXAMPLES // 5, 10))
@given(export=exports(), cells=st.lists(st.lists(XLSX_CELL, max_size=6), max_size=5), options=OPTIONS)
def test_workbooks_import_cleanly_or_are_rejected_cleanly(template, folder, export, cells, options):
    """Excel workbooks: the export's text, plus typed cells (numbers, dates, booleans) as Excel holds them."""
    from openpyxl import Workbook

    table, rows, mapping = export
    book = Workbook()
    sheet = book.active
    for row in [*rows, *cells]:
        sheet.append([_xlsx_safe(v) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    _run(template, folder, f"{table}.xlsx", buffer.getvalue(), table, mapping=mapping or None, **options)


def _xlsx_safe(value):
    """Excel cannot hold control characters; a workbook never has them."""
    if isinstance(value, str):
        return "".join(ch for ch in value if ch in "\t\n\r" or ord(ch) >= 32)
    return value
