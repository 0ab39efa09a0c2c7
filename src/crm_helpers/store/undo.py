"""Taking an import back: ``undo_import(db, batch_id)`` (``crm undo-import BATCH``); taking one
entry of the desk back: ``undo_entry(db, record)``.

Every import is a batch: a row of ``import_log`` and a row of ``import_batches`` holding the keys
of the rows it inserted, the previous values of the rows it updated and the values it wrote
(gzip-compressed JSON, written by the importer with :func:`pack`). Undoing a batch, in one write
transaction, deletes the rows it inserted (and the bare customers it created with
``create_missing_customers``), puts back the previous values of the columns it updated, and
stamps the batch ``undone_at``. An export that filled several tables (``crm import FILE``) is one
group of batches, one per table: undoing any of them undoes the whole group, children first.

It refuses, saying why and changing nothing, when later changes depend on the batch:

- a row the batch wrote holds other values now (a later import, a notebook or a hand edit changed
  it): undoing would silently throw that change away, so the later batch must be undone first;
- a row the batch wrote is gone (deleted, or its person erased with ``crm forget``);
- other rows refer to a row the batch inserted (orders of a customer it created, ...);
- the batch was undone already.

An entry (one save of a desk form, one correction or one deletion of a past entry) is recorded as
an :class:`EntryRecord`: the rows it inserted, the rows it changed with their values before and
after, and the rows it deleted whole (an order with its items). :func:`undo_entry` takes it back
under the same rules: it refuses when a row was changed or removed since, when rows written since
refer to a row the entry inserted, when a row it deleted is back in the store, or when a row it
would put back refers to one that is gone (its customer erased with ``crm forget``, its product
removed).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sqlite3
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd
from sqlite_utils import Database

from crm_helpers.errors import CrmError
from crm_helpers.i18n import t, tc
from crm_helpers.store.schema import IMPORT_BATCHES, IMPORT_LOG, LOAD_ORDER, SEGMENT_SNAPSHOTS, TABLES, TASKS, Table
from crm_helpers.store.schema import table as schema_table
from crm_helpers.store.connection import explain_error, store_path, write_transaction

_CHUNK = 500
"""Keys per ``IN (...)`` query (well below SQLite's limit on bound parameters)."""
_SHOWN_KEYS = 3

Key = tuple[Any, ...]


class UndoError(CrmError, ValueError):
    """The batch was not undone and nothing was changed; the message says why."""


@dataclass
class UndoResult:
    """What undoing one batch changed."""

    batch_id: int
    table: str
    file_name: str
    deleted: int = 0
    restored: int = 0
    customers_removed: int = 0

    def summary(self) -> str:
        """One line for a person."""
        fields = {"batch": self.batch_id, "file": self.file_name, "table": self.table, "deleted": self.deleted,
                  "restored": self.restored, "customers": self.customers_removed}
        if self.customers_removed:
            return t("batch {batch} ({file} -> {table}) undone: {deleted} inserted rows removed, {restored} updated "
                     "rows restored, {customers} customers it created removed", **fields)
        return t("batch {batch} ({file} -> {table}) undone: {deleted} inserted rows removed, {restored} updated rows "
                 "restored", **fields)


@dataclass
class _Batch:
    batch_id: int
    table: str
    file_name: str
    inserted: list[Key]
    created_customers: list[str]
    previous: list[dict[str, Any]]
    written: list[dict[str, Any]]


# ------------------------------------------------------------------------- the batch format
PACK_LEVEL = 1
"""zlib level of the bookkeeping blobs: on 150,000 written orders level 1 compresses in a third of
level 6's time (0.4 s against 1.3 s) for blobs 12% larger."""


def pack(obj: Any) -> bytes:
    """Gzip-compressed JSON of ``obj``: the form of every bookkeeping blob of ``import_batches``."""
    return gzip.compress(json.dumps(obj, default=str).encode("utf-8"), compresslevel=PACK_LEVEL)


class Packer:
    """:func:`pack`'s output written a piece at a time, so that a large import never holds the
    JSON of all its rows at once: ``write`` JSON text in order, ``items`` the (comma-separated)
    members of an array, ``close`` returns the blob. :func:`table_items` gives rows in the
    compact form :func:`unpack` reads back as records."""

    def __init__(self) -> None:
        self._zip = zlib.compressobj(PACK_LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
        self._parts: list[bytes] = []
        self._first = True

    def write(self, text: str | bytes) -> None:
        """Append JSON text as it is (an opening ``[``, a closing ``]``...)."""
        self._parts.append(self._zip.compress(text.encode("utf-8") if isinstance(text, str) else text))

    def items(self, text: str | bytes) -> None:
        """Append array members given as JSON text without their brackets (``'{..},{..}'``)."""
        if text:
            self.write(text if self._first else (b"," if isinstance(text, bytes) else ",") + text)
            self._first = False

    def array_start(self) -> None:
        """Open an array whose members :meth:`items` appends."""
        self.write("[")
        self._first = True

    def close(self) -> bytes:
        """The whole blob; the Packer is used up."""
        self._parts.append(self._zip.flush())
        return b"".join(self._parts)


def table_items(rows: list[tuple[Any, ...]]) -> bytes:
    """Rows as JSON arrays for :meth:`Packer.items`, inside ``{"columns": [...], "rows": [...]}``
    (orjson: three times faster than ``json.dumps``; a value it does not know is written as text)."""
    return orjson.dumps(rows, default=str)[1:-1]


def unpack(blob: bytes | None) -> Any:
    """The inverse of :func:`pack` (None for a missing blob). Rows written in the compact form
    ``{"columns": [...], "rows": [[...], ...]}`` (see :class:`Packer`) come back as records."""
    obj = None if blob is None else json.loads(gzip.decompress(blob).decode("utf-8"))
    if isinstance(obj, dict) and obj.keys() == {"columns", "rows"}:
        return [dict(zip(obj["columns"], row)) for row in obj["rows"]]
    return obj


def differs(stored: Any, new: Any) -> bool:
    """Whether two values of one column differ (numbers compared with a relative tolerance of 1e-9)."""
    if stored is None or new is None:
        return stored is not new
    if isinstance(stored, (int, float)) and isinstance(new, (int, float)):
        return abs(float(stored) - float(new)) > 1e-9 * max(1.0, abs(float(new)))
    return str(stored) != str(new)


# ---------------------------------------------------------------------------------- reading
def list_batches(db: Database, limit: int | None = 20) -> pd.DataFrame:
    """The newest import batches first.

    Columns: batch_id, imported_at, table, file, inserted, updated, unchanged, rejected,
    undone_at (None while the batch stands).
    """
    sql = (f"SELECT l.batch_id, l.imported_at, l.table_name AS \"table\", l.file_name AS file, l.inserted, "
           f"l.updated, l.unchanged, l.rejected, b.undone_at FROM {IMPORT_LOG} l "
           f"LEFT JOIN {IMPORT_BATCHES} b ON b.batch_id = l.batch_id ORDER BY l.batch_id DESC")
    params: list[Any] = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    cursor = db.execute(sql, params)
    frame = pd.DataFrame.from_records(cursor.fetchall(), columns=[d[0] for d in cursor.description])
    frame["undone_at"] = frame["undone_at"].astype(object).where(frame["undone_at"].notna(), None)
    return frame


def _load_batch(db: Database, batch_id: int) -> _Batch:
    row = db.execute(
        f"SELECT l.file_name, b.table_name, b.inserted_keys, b.previous_rows, b.written_rows, b.undone_at "
        f"FROM {IMPORT_LOG} l JOIN {IMPORT_BATCHES} b ON b.batch_id = l.batch_id WHERE l.batch_id = ?",
        [batch_id],
    ).fetchone()
    if row is None:
        raise UndoError(t("there is no import batch {batch}; `crm status` lists the recent ones", batch=batch_id))
    file_name, table, inserted_blob, previous_blob, written_blob, undone_at = row
    if undone_at:
        raise UndoError(t("batch {batch} ({file}) was already undone on {when}", batch=batch_id, file=file_name,
                          when=undone_at))
    inserted = unpack(inserted_blob) or {}
    return _Batch(batch_id, table, file_name, [tuple(k) for k in inserted.get("keys", [])],
                  list(inserted.get("created_customers", [])), unpack(previous_blob) or [],
                  unpack(written_blob) or [])


def _where_keys(columns: tuple[str, ...], keys: list[Key]) -> tuple[str, list[Any]]:
    """``column IN (?, ...)`` (or ``(a, b) IN (VALUES (?, ?), ...)``) and its parameters."""
    if len(columns) == 1:
        return f"{columns[0]} IN ({', '.join('?' * len(keys))})", [k[0] for k in keys]
    row = f"({', '.join('?' * len(columns))})"
    return f"({', '.join(columns)}) IN (VALUES {', '.join([row] * len(keys))})", [v for k in keys for v in k]


def _rows_by_key(db: Database, spec: Table, keys: list[Key]) -> dict[Key, dict[str, Any]]:
    found: dict[Key, dict[str, Any]] = {}
    for start in range(0, len(keys), _CHUNK):
        where, params = _where_keys(spec.pk_columns, keys[start:start + _CHUNK])
        cursor = db.execute(f"SELECT * FROM {spec.name} WHERE {where}", params)
        names = [d[0] for d in cursor.description]
        for values in cursor.fetchall():
            record = dict(zip(names, values))
            found[tuple(record[c] for c in spec.pk_columns)] = record
    return found


def _referrers(table: str) -> list[tuple[str, str, str]]:
    """``(child table, child column, parent column)`` for every foreign key pointing at ``table``
    (the desk's tasks included)."""
    refs = [(t.name, c.name, c.references.split(".")[1]) for t in (*TABLES.values(), TASKS) for c in t.columns
            if c.references and c.references.split(".")[0] == table]
    if table == "customers":
        refs.append((SEGMENT_SNAPSHOTS, "customer_id", "customer_id"))
    return refs


def _count_references(db: Database, table: str, pk: str, keys: list[Any]) -> dict[str, tuple[int, Any]]:
    """``{child table: (rows referring to one of keys, one such key)}``."""
    found: dict[str, tuple[int, Any]] = {}
    for child, column, parent_column in _referrers(table):
        if parent_column != pk:
            continue
        total, example = 0, None
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            n, first = db.execute(
                f"SELECT count(*), min({column}) FROM {child} WHERE {column} IN ({', '.join('?' * len(chunk))})", chunk
            ).fetchone()
            total += n
            example = example if example is not None else first
        if total:
            found[child] = (total, example)
    return found


# ------------------------------------------------------------------------------- the checks
def _show(keys: list[Key]) -> str:
    shown = [k[0] if len(k) == 1 else "(" + ", ".join(map(str, k)) + ")" for k in keys[:_SHOWN_KEYS]]
    return ", ".join(map(str, shown)) + (", …" if len(keys) > _SHOWN_KEYS else "")


def _changed_since(current: dict[str, Any], written: dict[str, Any] | None, inserted: bool) -> bool:
    """Whether a row the batch wrote holds other values now than those it wrote."""
    if written is None:  # a batch recorded before written values of inserted rows were kept
        return False
    if any(differs(current[c], v) for c, v in written.items() if c in current):
        return True
    # a row the batch inserted held nothing but what it wrote
    return inserted and any(v is not None for c, v in current.items() if c not in written)


def _later_writers(db: Database, batch: _Batch, table: str, keys: set[Key]) -> dict[int, tuple[str, list[Key]]]:
    """Later batches (still standing) that wrote some of ``keys`` of ``table``: ``{batch_id: (file, keys)}``."""
    pk = schema_table(table).pk_columns
    found: dict[int, tuple[str, list[Key]]] = {}
    cursor = db.execute(
        f"SELECT l.batch_id, l.file_name, b.written_rows FROM {IMPORT_LOG} l JOIN {IMPORT_BATCHES} b "
        "ON b.batch_id = l.batch_id WHERE b.table_name = ? AND l.batch_id > ? AND b.undone_at IS NULL "
        "ORDER BY l.batch_id",
        [table, batch.batch_id],
    )
    for later_id, file_name, blob in cursor.fetchall():
        touched = [k for k in (tuple(r[c] for c in pk) for r in unpack(blob) or []) if k in keys]
        if touched:
            found[later_id] = (file_name, touched)
    return found


def _explain_changes(db: Database, batch: _Batch, table: str, changed: list[Key], what: str) -> list[str]:
    problems = []
    unexplained = set(changed)
    for later_id, (file_name, keys) in _later_writers(db, batch, table, set(changed)).items():
        problems.append(t("{count} {what} changed since by import batch {later} ({file}): {keys}; undo batch "
                          "{later} first", count=len(keys), what=tc("undo", what), later=later_id, file=file_name,
                          keys=_show(keys)))
        unexplained -= set(keys)
    if unexplained:
        keys = [k for k in changed if k in unexplained]
        problems.append(t("{count} {what} changed since by hand or from a notebook: {keys}; undoing would throw "
                          "those changes away", count=len(keys), what=tc("undo", what), keys=_show(keys)))
    return problems


def _dependencies(db: Database, spec: Table, batch: _Batch) -> list[str]:
    """Plain reasons why the batch cannot be undone (empty when it can)."""
    pk = spec.pk_columns
    written = {tuple(r[c] for c in pk): r for r in batch.written}
    updated = [tuple(r[c] for c in pk) for r in batch.previous]
    current = _rows_by_key(db, spec, batch.inserted + updated)
    problems: list[str] = []
    for keys, inserted, what in ((batch.inserted, True, "rows it inserted"), (updated, False, "rows it updated")):
        gone = [k for k in keys if k not in current]
        if gone:
            problems.append(t("{count} {what} are no longer in the store (deleted or erased since): {keys}",
                              count=len(gone), what=tc("undo", what), keys=_show(gone)))
        changed = [k for k in keys if k in current and _changed_since(current[k], written.get(k), inserted)]
        if changed:
            problems += _explain_changes(db, batch, spec.name, changed, what)
    if len(pk) == 1 and batch.inserted:
        refs = _count_references(db, spec.name, pk[0], [k[0] for k in batch.inserted if k in current])
        for child, (n, example) in refs.items():
            problems.append(t("{n} {child} rows refer to {table} this batch inserted (e.g. {example}); remove or "
                              "undo those first", n=n, child=child, table=spec.name, example=example))
    return problems


def _created_customer_problems(db: Database, batch: _Batch) -> list[str]:
    """Run after the batch's own rows are deleted: the customers it created must be bare and unreferenced."""
    customers = TABLES["customers"]
    keys = [(c,) for c in batch.created_customers]
    current = _rows_by_key(db, customers, keys)
    problems = []
    filled = [k for k in keys if k in current and _changed_since(current[k], {"customer_id": k[0]}, inserted=True)]
    if filled:
        problems += _explain_changes(db, batch, "customers", filled, "customers it created")
    for child, (n, example) in _count_references(db, "customers", "customer_id", [k[0] for k in keys]).items():
        problems.append(t("{n} {child} rows written since refer to customers this batch created (e.g. {example})",
                          n=n, child=child, example=example))
    return problems


# ---------------------------------------------------------------------------------- writing
def _restore(db: Database, spec: Table, batch: _Batch) -> int:
    """Put back the previous values of the columns the batch wrote on the rows it updated."""
    pk = spec.pk_columns
    written = {tuple(r[c] for c in pk): r for r in batch.written}
    by_columns: dict[tuple[str, ...], list[list[Any]]] = {}
    for old in batch.previous:
        key = tuple(old[c] for c in pk)
        columns = tuple(c for c in written.get(key, old) if c not in pk and c in spec.column_names)
        by_columns.setdefault(columns, []).append([old[c] for c in columns] + list(key))
    for columns, params in by_columns.items():
        if columns:
            db.conn.executemany(
                f"UPDATE {spec.name} SET {', '.join(f'{c} = ?' for c in columns)} "
                f"WHERE {' AND '.join(f'{c} = ?' for c in pk)}",
                params,
            )
    return len(batch.previous)


def _delete(db: Database, spec: Table, keys: list[Key]) -> int:
    deleted = 0
    for start in range(0, len(keys), _CHUNK):
        where, params = _where_keys(spec.pk_columns, keys[start:start + _CHUNK])
        deleted += db.execute(f"DELETE FROM {spec.name} WHERE {where}", params).rowcount
    return deleted


def _group(db: Database, batch_id: int) -> list[int]:
    """The batches undone with ``batch_id``: all batches of the export it belongs to (an export that
    filled several tables is one group), children before parents; just ``[batch_id]`` otherwise."""
    row = db.execute(f"SELECT coalesce(group_id, batch_id) FROM {IMPORT_LOG} WHERE batch_id = ?",
                     [batch_id]).fetchone()
    if row is None:
        return [batch_id]  # _load_batch says there is no such batch
    members = db.execute(f"SELECT batch_id, table_name FROM {IMPORT_LOG} WHERE coalesce(group_id, batch_id) = ?",
                         [row[0]]).fetchall()
    order = {name: i for i, name in enumerate(LOAD_ORDER)}
    return [b for b, _ in sorted(members, key=lambda m: (-order.get(m[1], 0), -m[0]))]


def undo_import(db: Database, batch_id: int, *, now: dt.datetime | None = None) -> UndoResult:
    """Undo import batch ``batch_id`` (see the module doc); raises :class:`UndoError` with the reason.

    ``now`` is the time stamped in ``undone_at`` (default: the current local time).
    """
    stamp = (now or dt.datetime.now()).isoformat(timespec="seconds")
    try:
        with write_transaction(db):
            result = UndoResult(batch_id, "", "")
            for member in _group(db, batch_id):  # children first: orders go before the customers they name
                batch = _load_batch(db, member)
                spec = schema_table(batch.table)
                result.file_name = batch.file_name
                result.table = f"{spec.name}, {result.table}" if result.table else spec.name
                problems = _dependencies(db, spec, batch)
                if not problems:
                    result.deleted += _delete(db, spec, batch.inserted)
                    result.restored += _restore(db, spec, batch)
                    problems = _created_customer_problems(db, batch)
                if problems:
                    raise UndoError(t("batch {batch} ({file} -> {table}) cannot be undone; nothing was changed:",
                                      batch=member, file=batch.file_name, table=spec.name)
                                    + "\n" + "\n".join(f"  - {p}" for p in problems))
                result.customers_removed += _delete(db, TABLES["customers"],
                                                    [(c,) for c in batch.created_customers])
                db.execute(f"UPDATE {IMPORT_BATCHES} SET undone_at = ? WHERE batch_id = ?", [stamp, member])
    except sqlite3.IntegrityError as exc:
        raise UndoError(t("batch {batch} cannot be undone; nothing was changed: putting the previous values back "
                          "would clash with rows written since ({reason})", batch=batch_id, reason=exc)) from None
    except sqlite3.DatabaseError as exc:
        raise UndoError(t("batch {batch} was not undone: {reason}", batch=batch_id,
                          reason=explain_error(store_path(db), exc))) from None
    return result


# -------------------------------------------------------------------------- one desk entry
@dataclass(frozen=True)
class RowChange:
    """One row an entry wrote: ``before`` is None for a row it inserted, ``after`` None for a row it
    deleted (``before`` then holds the whole row, to put back)."""

    table: str
    key: Key
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class EntryRecord:
    """What one save wrote, parents first, and a line saying what it was (for the person who undoes it)."""

    summary: str
    changes: tuple[RowChange, ...]


def read_row(db: Database, table: str, *, key: Key) -> dict[str, Any] | None:
    """The row of ``table`` with primary key ``key`` (a tuple), or None."""
    return _rows_by_key(db, schema_table(table), [key]).get(key)


def entry_record(db: Database, summary: str, *, rows: list[tuple[str, Key, dict[str, Any] | None]]) -> EntryRecord:
    """The :class:`EntryRecord` of a write just made: ``rows`` are ``(table, key, the row before or
    None)``, parents first; each row's values now are read after (None: the write deleted it)."""
    return EntryRecord(summary, tuple(RowChange(t, k, before, read_row(db, t, key=k)) for t, k, before in rows))


ONE_ROW = {"customers": "customer", "products": "product", "orders": "order", "campaigns": "campaign",
           "tickets": "ticket", "opportunities": "opportunity"}
"""A table a row refers to → what one of its rows is called (its ``undo`` entry in the catalogue)."""


def _missing_parents(db: Database, change: RowChange, *, own: set[tuple[str, Key]]) -> list[str]:
    """The rows a deleted row refers to that are no longer in the store (nor put back by the same
    entry): putting it back would point at nothing, or at a person erased since."""
    missing = []
    for column in schema_table(change.table).columns:
        value = (change.before or {}).get(column.name)
        if column.references and value is not None:
            parent, _ = column.references.split(".")
            if (parent, (value,)) not in own and read_row(db, parent, key=(value,)) is None:
                missing.append(t("its {parent} {value} is no longer in the store (erased or removed since)",
                                 parent=tc("undo", ONE_ROW.get(parent, parent)), value=value))
    return missing


def entry_problems(db: Database, record: EntryRecord) -> list[str]:
    """Why ``record`` cannot be undone now, in plain words (empty when it can): a row it wrote was
    changed or removed since, rows written since refer to a row it inserted, a row it deleted is
    back, or a row it deleted refers to one that is gone."""
    problems = []
    deleted = {(c.table, c.key) for c in record.changes if c.after is None}
    for change in record.changes:
        current = read_row(db, change.table, key=change.key)
        if change.after is None:
            if current is not None:
                problems.append(t("{table} {key} is in the store again", table=change.table, key=_show([change.key])))
            problems += [f"{change.table} {_show([change.key])}: {p}"
                         for p in _missing_parents(db, change, own=deleted)]
        elif current is None:
            problems.append(t("{table} {key} is no longer in the store", table=change.table, key=_show([change.key])))
        elif any(differs(current.get(c), v) for c, v in change.after.items()):
            problems.append(t("{table} {key} was changed since", table=change.table, key=_show([change.key])))
    inserted = [c for c in record.changes if c.before is None]
    own = {(c.table, c.key) for c in inserted}
    for change in inserted:
        spec = schema_table(change.table)
        if len(spec.pk_columns) == 1:
            for child, (n, _) in _count_references(db, change.table, spec.pk_columns[0], [change.key[0]]).items():
                if n > sum(1 for t, _k in own if t == child):
                    problems.append(t("{child} rows written since refer to {table} {key}", child=child,
                                      table=change.table, key=change.key[0]))
    return problems


def undo_entry(db: Database, record: EntryRecord) -> None:
    """Take back one entry in one write transaction: delete the rows it inserted, put back the
    values of the rows it changed, then insert again the rows it deleted (parents first). Raises
    :class:`UndoError` saying why, changing nothing, when :func:`entry_problems` finds a reason."""
    try:
        with write_transaction(db):
            problems = entry_problems(db, record)
            if problems:
                raise UndoError(t("cannot undo \"{summary}\"; nothing was changed: {problems}", summary=record.summary,
                                  problems="; ".join(problems)))
            for change in reversed(record.changes):  # children first
                spec = schema_table(change.table)
                if change.before is None:
                    _delete(db, spec, [change.key])
                elif change.after is not None:
                    where, params = _where_keys(spec.pk_columns, [change.key])
                    columns = [c for c in change.after if c not in spec.pk_columns]
                    db.execute(f"UPDATE {spec.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE {where}",
                               [change.before.get(c) for c in columns] + params)
            for change in record.changes:  # parents first: an order before its items
                if change.after is None and change.before is not None:
                    row = {c: v for c, v in change.before.items() if c in schema_table(change.table).column_names}
                    db.execute(f"INSERT INTO {change.table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                               list(row.values()))
    except sqlite3.DatabaseError as exc:
        raise UndoError(t("\"{summary}\" was not undone: {reason}", summary=record.summary,
                          reason=explain_error(store_path(db), exc))) from None
