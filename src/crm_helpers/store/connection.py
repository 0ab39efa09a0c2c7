"""The SQLite store: opening it safely and keeping its schema up to date.

``open_db()`` is the one way in. It creates the file with owner-only permissions (0600),
turns on foreign keys, WAL mode and a busy timeout (so a report can read while a notebook
writes), and applies any pending migration, so an older store upgrades in place.
``PRAGMA user_version`` holds the schema version.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlite_utils
from sqlite_utils import Database, Migrations

from crm_helpers.errors import CrmError
from crm_helpers.store import config
from crm_helpers.store.schema import (
    ERASURE_LOG,
    IMPORT_BATCHES,
    IMPORT_LOG,
    IMPORT_MAPPINGS,
    RATES,
    REPORT_FOLDERS,
    SEGMENT_SNAPSHOTS,
    SQL_TYPES,
    SUPPRESSION_KEYS,
    SUPPRESSION_LIST,
    TABLES,
    TASKS,
    Table,
)

BUSY_TIMEOUT_MS = 10_000

migrations = Migrations("crm_helpers")

IMPORT_CHECKS = "import_checks"
"""Inbox files imported with nothing to change (all their rows in the store already), by sha256.
Defined here, not beside the other bookkeeping tables in ``schema.py``: that module's bytes key the
cached scale store."""


class StoreError(CrmError):
    """The store cannot be opened or written (read-only, disk full, not a database)."""


class NewerStoreError(StoreError):
    """The store (or backup) was made by a newer version of the workbook: this code reads it at most,
    and writes nothing to it."""


class StoreReplacedError(StoreError):
    """The store file was replaced (a restore by another tool, ``crm demo --replace``) since this
    connection opened it; the write was refused, so nothing went into the replaced, unlinked file."""


NEWER_VERSION = "made by a newer version of the workbook: update it (git pull && make setup)"
"""What a store or backup with a schema newer than :data:`SCHEMA_VERSION` is called, in every message."""

_OPENED: weakref.WeakKeyDictionary[Database, tuple[Path, int, int]] = weakref.WeakKeyDictionary()
"""The file each store opened by :func:`open_db` was, when opened: ``(path, st_dev, st_ino)``."""


def _create(db: Database, t: Table) -> None:
    """Table ``t`` of the schema with its key, NOT NULLs, foreign keys and indexes."""
    fks = [
        (c.name, c.references.split(".")[0], c.references.split(".")[1])
        for c in t.columns
        if c.references
    ]
    db.table(t.name).create(
        {c.name: SQL_TYPES[c.type] for c in t.columns},
        pk=t.pk if isinstance(t.pk, str) else tuple(t.pk),
        not_null={c.name for c in t.columns if c.required},
        foreign_keys=fks,
    )
    for cols in t.indexes:
        db.table(t.name).create_index(list(cols))


@migrations()
def m001_initial_schema(db: Database) -> None:
    """All CRM tables, their keys, foreign keys and indexes; the import log."""
    for t in TABLES.values():
        _create(db, t)
    db.execute(
        "CREATE UNIQUE INDEX idx_customers_email_unique ON customers(email) "
        "WHERE email IS NOT NULL AND email <> ''"
    )
    db.table(IMPORT_LOG).create(
        {
            "batch_id": int,
            "file_name": str,
            "sha256": str,
            "table_name": str,
            "inserted": int,
            "updated": int,
            "unchanged": int,
            "rejected": int,
            "imported_at": str,
        },
        pk="batch_id",
    )
    db.table(SEGMENT_SNAPSHOTS).create(
        {
            "month": str,
            "customer_id": str,
            "segment": str,
            "r_score": int,
            "f_score": int,
            "m_score": int,
        },
        pk=("month", "customer_id"),
        foreign_keys=[("customer_id", "customers", "customer_id")],
    )
    db.execute("PRAGMA user_version = 1")


@migrations()
def m002_import_batches(db: Database) -> None:
    """What each import changed, so that ``crm undo-import`` can take it back.

    One row per batch: the keys it inserted and, for the rows it updated, their previous and
    written values (gzip-compressed JSON, so a million-row import adds one small row).
    """
    db.table(IMPORT_BATCHES).create(
        {"batch_id": int, "table_name": str, "inserted_keys": bytes, "previous_rows": bytes,
         "written_rows": bytes, "undone_at": str},
        pk="batch_id",
        foreign_keys=[("batch_id", IMPORT_LOG, "batch_id")],
    )
    db.execute("PRAGMA user_version = 2")


@migrations()
def m003_suppression_list(db: Database) -> None:
    """The suppression list of ``crm forget`` (keyed hashes of erased people's identifiers, and the
    keys), and the erasure log, which ``forget`` used to create on its first erasure."""
    db.table(ERASURE_LOG).create({"id": int, "erased_at": str, "pseudonym": str, "rows_changed": int}, pk="id",
                                 if_not_exists=True)
    db.table(SUPPRESSION_KEYS).create({"key_id": str, "secret": bytes}, pk="key_id")
    db.table(SUPPRESSION_LIST).create(
        {"pseudonym": str, "erased_at": str, "key_id": str, "digests": str, "rows_changed": int},
        pk="pseudonym",
        not_null={"erased_at", "key_id", "digests"},
        foreign_keys=[("key_id", SUPPRESSION_KEYS, "key_id")],
    )
    db.execute("PRAGMA user_version = 3")


@migrations()
def m004_refunds_and_source_imports(db: Database) -> None:
    """Money as it moves and imports of whole exports.

    ``orders.refunded_amount`` (what was paid back; a store created after this column entered the
    schema has it from m001 already); ``import_log.group_id`` (the first batch of an export that
    wrote several tables, undone together); ``import_mappings`` (a ``--map`` kept per file layout).
    """
    if "refunded_amount" not in db.table("orders").columns_dict:
        db.table("orders").add_column("refunded_amount", float)
        # what the importer now writes for such orders, so re-importing last month's file changes nothing
        db.execute("UPDATE orders SET refunded_amount = CASE WHEN status = 'refunded' THEN amount ELSE 0 END")
    db.table(IMPORT_LOG).add_column("group_id", int)
    db.table(IMPORT_MAPPINGS).create(
        {"signature": str, "target_table": str, "mapping": str, "saved_at": str}, pk="signature"
    )
    db.execute("PRAGMA user_version = 4")


@migrations()
def m005_exchange_rates(db: Database) -> None:
    """The exchange rates table (``crm import`` of the ECB reference rates), with which net revenue
    converts orders in other currencies to the store's."""
    _create(db, RATES)
    db.execute("PRAGMA user_version = 5")


@migrations()
def m006_import_checks(db: Database) -> None:
    """The inbox's record of files whose import changed nothing (:data:`IMPORT_CHECKS`).

    Such an import leaves no batch in ``import_log`` (so that ``crm undo-import`` of the newest
    batch takes back the last real import); this table keeps the inbox from importing the file again
    at every run. One row per file content: ``sha256``, ``file_name``, ``source`` (the table a named
    file went to, or the key of the tool whose export it is), ``unchanged`` (the rows it matched,
    all equal already; summed over the tables of an export), ``checked_at`` (local time, ISO), and
    the undo history it relied on: ``newest_batch`` (the newest import batch then, 0 for none) and
    ``standing_batches`` (how many batches up to it stood, not undone). See
    :func:`crm_helpers.ingest.inbox.waiting_files` for the rule.
    """
    db.table(IMPORT_CHECKS).create(
        {"sha256": str, "file_name": str, "source": str, "unchanged": int, "checked_at": str, "newest_batch": int,
         "standing_batches": int},
        pk="sha256",
        not_null={"file_name", "source", "unchanged", "checked_at", "newest_batch", "standing_batches"},
    )
    db.execute("PRAGMA user_version = 6")


@migrations()
def m007_report_folders(db: Database) -> None:
    """Where this store's report packs were rendered (:data:`REPORT_FOLDERS`): ``path`` (absolute),
    ``period`` (YYYY-MM), ``rendered_at`` (local time, ISO); ``crm forget`` rewrites them."""
    db.table(REPORT_FOLDERS).create({"path": str, "period": str, "rendered_at": str}, pk="path",
                                    not_null={"period", "rendered_at"})
    db.execute("PRAGMA user_version = 7")


@migrations()
def m008_layouts(db: Database) -> None:
    """What the tools' current exports carry (a store created after these entered the schema has
    them from m001 already):

    - ``feedback.customer_id`` may be empty: an anonymous survey answer (问卷星 without a question
      that identifies the person) counts in NPS and CSAT and is linked to nobody;
    - ``order_items.discount``: the money a line's discounts took off (its ``unit_price`` is after it).
    """
    if any(c.name == "customer_id" and c.notnull for c in db.table("feedback").columns):
        db.table("feedback").transform(not_null={"customer_id": False})
    if "discount" not in db.table("order_items").columns_dict:
        db.table("order_items").add_column("discount", float)
    db.execute("PRAGMA user_version = 8")


@migrations()
def m009_import_balances(db: Database) -> None:
    """``import_log.balance``: the money balance of an export's import, kept with each of its
    batches (JSON, per currency: the file's money, paid, refunded, failed/cancelled, not sales by
    kind, erased, rejected, the refunds the file records and any difference; see
    :mod:`crm_helpers.ingest.balance`). Empty for imports without money and for those before it."""
    db.execute(f"ALTER TABLE {IMPORT_LOG} ADD COLUMN balance TEXT")
    db.execute("PRAGMA user_version = 9")


@migrations()
def m010_tasks(db: Database) -> None:
    """The desk's tasks (:data:`~crm_helpers.store.schema.TASKS`): a due date, a note, optionally a
    customer, deal or ticket, when it was done and how often it was snoozed."""
    _create(db, TASKS)
    db.execute("PRAGMA user_version = 10")


CUSTOMER_SEARCH = "customer_search"
"""The search index of the customers (m011): SQLite FTS5 with the trigram tokenizer over each
customer's name, e-mail, company, phone as stored and phone digits (:data:`PHONE_DIGITS_SQL`), so any
part of 3 characters or more is found through the index, in any case; its rowids are the customers'.
Kept by triggers on ``customers`` (insert, update of those columns, delete) and rebuilt whole by
:func:`rebuild_customer_search` (after a restore, whose compaction may renumber rows)."""
PHONE_DIGITS_SQL = "replace(replace(replace(replace(replace({phone}, ' ', ''), '-', ''), '/', ''), '(', ''), ')', '')"
"""A phone number without its spaces, dashes, slashes and brackets (``{phone}``: the column), as the
desk's search finds it by its digits alone."""
_SEARCH_COLUMNS = "name, email, company, phone, digits"


def _search_values(row: str) -> str:
    """The index's columns from the ``customers`` row ``row`` (``new`` or ``old`` in a trigger)."""
    return f"{row}.rowid, {row}.name, {row}.email, {row}.company, {row}.phone, " + PHONE_DIGITS_SQL.format(phone=f"{row}.phone")


@migrations()
def m011_customer_search(db: Database) -> None:
    """The desk's customer search through an index (:data:`CUSTOMER_SEARCH`) instead of a scan of
    every customer per keystroke: an FTS5 table whose content is the view ``customer_search_source``
    (the customers' searched columns and phone digits), kept by triggers, filled once here."""
    db.execute(f"CREATE VIEW {CUSTOMER_SEARCH}_source AS SELECT rowid AS customer_rowid, name, email, company, phone, "
               f"{PHONE_DIGITS_SQL.format(phone='phone')} AS digits FROM customers")
    db.execute(f"CREATE VIRTUAL TABLE {CUSTOMER_SEARCH} USING fts5({_SEARCH_COLUMNS}, "
               f"content='{CUSTOMER_SEARCH}_source', content_rowid='customer_rowid', tokenize='trigram')")
    delete = (f"INSERT INTO {CUSTOMER_SEARCH} ({CUSTOMER_SEARCH}, rowid, {_SEARCH_COLUMNS}) "
              f"VALUES ('delete', {_search_values('old')});")
    insert = f"INSERT INTO {CUSTOMER_SEARCH} (rowid, {_SEARCH_COLUMNS}) VALUES ({_search_values('new')});"
    db.execute(f"CREATE TRIGGER {CUSTOMER_SEARCH}_insert AFTER INSERT ON customers BEGIN {insert} END")
    db.execute(f"CREATE TRIGGER {CUSTOMER_SEARCH}_delete AFTER DELETE ON customers BEGIN {delete} END")
    db.execute(f"CREATE TRIGGER {CUSTOMER_SEARCH}_update AFTER UPDATE OF name, email, company, phone ON customers "
               f"BEGIN {delete} {insert} END")
    rebuild_customer_search(db)
    db.execute("PRAGMA user_version = 11")


def rebuild_customer_search(db: Database) -> None:
    """Fill the customer search index afresh from the customers (FTS5's ``rebuild``)."""
    db.execute(f"INSERT INTO {CUSTOMER_SEARCH} ({CUSTOMER_SEARCH}) VALUES ('rebuild')")


def compact_customer_search(db: Database) -> None:
    """Merge the search index into one b-tree (FTS5's ``optimize``): what an erasure took out of it
    is then gone from its pages too, not only marked deleted."""
    db.execute(f"INSERT INTO {CUSTOMER_SEARCH} ({CUSTOMER_SEARCH}) VALUES ('optimize')")


SCHEMA_VERSION = 11
"""The ``PRAGMA user_version`` of a fully migrated store."""


@contextmanager
def owner_only_umask() -> Iterator[None]:
    """Files and folders created inside are readable by their owner only (umask 077); processes
    started inside (kernels, workers) inherit it."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def open_db(path: str | os.PathLike[str] | None = None, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the store at ``path`` (default: :func:`config.default_db_path`).

    The file and its WAL side files are created readable by the owner only. Raises
    :class:`StoreError` with a plain message when the file is not a database, the folder
    is read-only or the disk is full. A store made by a newer version of the workbook (its schema
    version above :data:`SCHEMA_VERSION`) opens without migrations, for reading:
    :func:`newer_store_warning` names it, and :func:`write_transaction` refuses every write to it.
    The file's identity is recorded, so that :func:`write_transaction` refuses to write once the
    file at ``path`` is another one.
    """
    db_path = Path(path) if path is not None else config.default_db_path()
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        _tighten_permissions(db_path)  # before SQLite creates the WAL files with the store's mode
        with owner_only_umask():
            conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                conn.execute("PRAGMA journal_mode = DELETE")
            db = sqlite_utils.Database(conn)
            if migrate:
                migrate_db(db)
            info = db_path.stat()
            _OPENED[db] = (db_path.absolute(), info.st_dev, info.st_ino)
    except sqlite3.DatabaseError as exc:
        raise StoreError(_explain(db_path, exc)) from exc
    except OSError as exc:
        raise StoreError(f"{db_path}: cannot open the store: {exc.strerror or exc}") from exc
    return db


def _tighten_permissions(path: Path) -> None:
    """Take group and other permissions off the store and its WAL side files; never add any (a
    read-only store stays read-only). Files this user may not change (not theirs, immutable) are
    left as they are."""
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            info = file.stat()
            if info.st_mode & 0o077 and info.st_uid == os.geteuid():
                os.chmod(file, info.st_mode & 0o700)
        except (FileNotFoundError, PermissionError):
            continue


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """One short write transaction that takes the write lock first (``BEGIN IMMEDIATE``).

    What is read inside it is what the writes apply to: no other process can commit in between
    (it waits up to the busy timeout for the lock instead). Committed at the end, rolled back on
    any exception; inside an already open transaction it is a savepoint of that transaction.

    Refused (rolled back, nothing written) with :class:`StoreReplacedError` when the file at the
    store's path is no longer the one this connection opened (:func:`refuse_replaced`), and with
    :class:`NewerStoreError` when the store was made by a newer version (:func:`refuse_newer`).
    A restore by ``crm restore`` keeps the file (it copies the backup into it), so open
    connections go on writing into the restored store.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        refuse_replaced(db)
        refuse_newer(db)
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    db.execute("COMMIT")


def refuse_replaced(db: Database) -> None:
    """Raise :class:`StoreReplacedError` when the file at the path ``db`` was opened from (by
    :func:`open_db`) is another file now, or is gone: its writes would go into the old, unlinked
    file, and be lost. Called under the write lock, so the file cannot change until the commit."""
    opened = _OPENED.get(db)
    if opened is None:
        return
    path, dev, ino = opened
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    if info is None or (info.st_dev, info.st_ino) != (dev, ino):
        raise StoreReplacedError(
            f"{path.name}: the store was replaced since this page opened (a restore?); nothing was saved: "
            "reload the page / reopen the store, then enter it again."
        )


def newer_store_warning(db: Database) -> str | None:
    """The sentence naming a store made by a newer version of the workbook, or None."""
    version = schema_version(db)
    if version <= SCHEMA_VERSION:
        return None
    return (f"{Path(store_path(db)).name}: this store was {NEWER_VERSION}; it has schema version {version}, "
            f"this workbook knows up to {SCHEMA_VERSION}, so it writes nothing to it.")


def refuse_newer(db: Database) -> None:
    """Raise :class:`NewerStoreError` (nothing written) when ``db`` was made by a newer version."""
    warning = newer_store_warning(db)
    if warning:
        raise NewerStoreError(f"{warning} Nothing was written.")


def memory_db() -> Database:
    """An in-memory store with the full schema (for tests and trying things out)."""
    db = sqlite_utils.Database(memory=True)
    db.execute("PRAGMA foreign_keys = ON")
    migrate_db(db)
    return db


def migrate_db(db: Database) -> None:
    """Apply pending migrations, each in its own transaction; none to a store of a newer version."""
    if schema_version(db) <= SCHEMA_VERSION and migrations.pending(db):
        migrations.apply(db)


def schema_version(db: Database) -> int:
    """The store's ``PRAGMA user_version``."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _explain(path: Path, exc: sqlite3.DatabaseError) -> str:
    msg = str(exc).lower()
    if "readonly" in msg or "read-only" in msg:
        return f"{path}: the store is read-only; check the file's permissions or the disk."
    if "disk is full" in msg or "full" in msg:
        return f"{path}: the disk is full; nothing was written. Free some space and try again."
    if "not a database" in msg or "file is encrypted" in msg:
        return f"{path}: this file is not a CRM store (not an SQLite database)."
    if "locked" in msg:
        return f"{path}: the store is busy (another program holds a write lock); try again."
    if "disk i/o error" in msg:
        return (f"{path}: the disk could not be written or read (disk I/O error); the disk may be full or "
                "failing. Nothing was written: free some space and try again.")
    return f"{path}: {exc}"


def explain_error(path: str | os.PathLike[str], exc: sqlite3.DatabaseError) -> str:
    """A one-line, plain explanation of an SQLite error on the store at ``path``."""
    return _explain(Path(path), exc)


def store_path(db: Database) -> str:
    """The file behind ``db`` (``":memory:"`` for an in-memory store), for messages."""
    row = db.execute("PRAGMA database_list").fetchone()
    return row[2] or ":memory:"


def table_counts(db: Database) -> dict[str, int]:
    """Row count of every CRM table (cheap: ``SELECT count(*)``)."""
    return {name: db.table(name).count for name in TABLES}
