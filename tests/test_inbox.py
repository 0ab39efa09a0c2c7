"""The inbox remembers a file whose rows were all in the store already (a re-downloaded export), and
forgets it again when an import it relied on is undone."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import shutil
import sqlite3
from pathlib import Path

import pytest

from crm_helpers.store.backup import backup, restore, verify
from crm_helpers.store.config import PROJECT_ROOT
from crm_helpers.store.forget import forget
from crm_helpers.ingest.table_import import import_file
from crm_helpers.ingest.inbox import import_inbox, waiting_files
from crm_helpers.report.runner import runs_alone
from crm_helpers.store.schema import TABLES
from crm_helpers.store.connection import (
    IMPORT_CHECKS,
    SCHEMA_VERSION,
    memory_db,
    open_db,
    schema_version,
    table_counts,
)
from crm_helpers.store.undo import list_batches, undo_import

SHOPIFY_ORDERS = Path(__file__).parent / "fixtures" / "sources" / "shopify_orders_export.csv"
IMPORT_NOTEBOOK = PROJECT_ROOT / "notebooks" / "01_import_and_entry.ipynb"
CUSTOMERS = "customer_id,name,email\nC1,Ada,ada@example.com\nC2,Bo,bo@example.com\n"
ORDERS = ("order_id,customer_id,order_date,amount,status\n"
          "O1,C1,2026-10-02,40,paid\nO2,C2,2026-10-05,25.5,paid\nO3,C1,2026-10-20,12,refunded\n")


def _redownloaded(text: str, *, group_by_first_column: bool = False) -> str:
    """``text`` (a CSV) as the tool would give it on another download: the same rows, the orders in
    the opposite order (the lines of one order kept together and in their order) and Windows line
    ends, so other bytes."""
    header, *rows = list(csv.reader(io.StringIO(text)))
    key = (lambda r: r[0]) if group_by_first_column else id  # id: every row a block of its own
    blocks = [list(lines) for _, lines in itertools.groupby(rows, key=key)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for block in reversed(blocks):
        writer.writerows(block)
    return out.getvalue()


def _data(db) -> dict[str, list[tuple]]:
    """Every row of every CRM table."""
    return {t: sorted(map(tuple, db.execute(f"SELECT * FROM {t}").fetchall()), key=repr) for t in TABLES}


def _row(results, name: str):
    return results.set_index("file").loc[name]


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


@pytest.fixture
def shop(inbox: Path):
    """A store filled from a Shopify orders export dropped in the inbox, and that export downloaded
    again (other bytes, the same orders) beside it: ``(db, again)``."""
    db = memory_db()
    shutil.copy(SHOPIFY_ORDERS, inbox / "orders_export.csv")
    assert import_inbox(db, inbox)["status"].tolist() == ["imported"]
    again = inbox / "orders_export (1).csv"
    again.write_text(_redownloaded(SHOPIFY_ORDERS.read_text(encoding="utf-8"), group_by_first_column=True),
                     encoding="utf-8")
    assert again.read_bytes() != SHOPIFY_ORDERS.read_bytes()
    return db, again


def test_a_redownloaded_export_is_waiting_before_one_inbox_run_and_not_after(shop, inbox):
    db, again = shop
    before, batches = _data(db), list_batches(db)["batch_id"].tolist()
    assert waiting_files(db, inbox) == [again]

    first = _row(import_inbox(db, inbox), again.name)

    assert first.status == "imported" and (first.inserted, first.updated) == (0, 0)
    assert first.unchanged == sum(len(before[t]) for t in ("customers", "products", "orders", "order_items"))
    assert "nothing changed" in first.message
    assert _data(db) == before and list_batches(db)["batch_id"].tolist() == batches  # no batch to undo
    assert waiting_files(db, inbox) == []


def test_a_second_run_imports_nothing_and_says_the_rows_were_in_the_store_already(shop, inbox):
    db, again = shop
    import_inbox(db, inbox)
    checked = db.execute(f"SELECT checked_at FROM {IMPORT_CHECKS}").fetchall()
    assert len(checked) == 1

    second = _row(import_inbox(db, inbox), again.name)

    assert second.status == "already imported" and (second.inserted, second.updated, second.rejected) == (0, 0, 0)
    assert f"checked on {checked[0][0][:10]}" in second.message
    assert "were in the store already" in second.message and "not imported again" in second.message
    assert db.execute(f"SELECT checked_at FROM {IMPORT_CHECKS}").fetchall() == checked  # not imported again


def test_a_named_table_file_with_the_same_rows_is_checked_once(inbox):
    db = memory_db()
    (inbox / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (inbox / "orders_2026-10.csv").write_text(ORDERS, encoding="utf-8")
    assert import_inbox(db, inbox)["status"].tolist() == ["imported", "imported"]
    again = inbox / "orders_2026-10 (1).csv"
    again.write_text(_redownloaded(ORDERS), encoding="utf-8")
    assert waiting_files(db, inbox) == [again]

    first = _row(import_inbox(db, inbox), again.name)
    second = _row(import_inbox(db, inbox), again.name)

    assert (first.status, first.inserted, first.unchanged) == ("imported", 0, ORDERS.count("\n") - 1)
    assert (second.status, second.unchanged) == ("already imported", first.unchanged)
    assert "were in the store already" in second.message
    assert waiting_files(db, inbox) == []
    assert db.execute(f"SELECT file_name, source FROM {IMPORT_CHECKS}").fetchall() == [(again.name, "orders")]


def test_a_dry_run_records_nothing(shop, inbox):
    db, again = shop
    assert _row(import_inbox(db, inbox, dry_run=True), again.name).status == "checked"
    assert waiting_files(db, inbox) == [again]


def test_undoing_the_import_that_brought_the_rows_makes_the_checked_file_waiting_again(shop, inbox):
    db, again = shop
    import_inbox(db, inbox)
    full = _data(db)
    undo_import(db, int(list_batches(db)["batch_id"].iat[0]))  # the original export's import
    assert table_counts(db)["orders"] == 0
    assert waiting_files(db, inbox) == sorted([again, inbox / "orders_export.csv"])

    (inbox / "orders_export.csv").unlink()  # only the re-downloaded file is left to bring them back
    back = _row(import_inbox(db, inbox), again.name)

    assert back.status == "imported" and back.inserted > 0
    assert _data(db) == full
    assert waiting_files(db, inbox) == []
    undo_import(db, int(list_batches(db)["batch_id"].iat[0]))  # the import of the file checked before
    assert table_counts(db)["orders"] == 0 and waiting_files(db, inbox) == [again]


def test_batches_undone_before_the_check_or_imported_after_it_do_not_bring_the_file_back(shop, inbox, tmp_path):
    db, again = shop
    early = tmp_path / "customers_early.csv"
    early.write_text("customer_id,name\nK1,Kim\n", encoding="utf-8")
    undo_import(db, import_file(db, "customers", path=early).batch_id)  # undone before the check below
    assert waiting_files(db, inbox) == [again]
    import_inbox(db, inbox)  # the check
    assert waiting_files(db, inbox) == []

    later = inbox / "customers_later.csv"
    later.write_text("customer_id,name\nK2,Lee\n", encoding="utf-8")
    import_inbox(db, inbox)
    assert waiting_files(db, inbox) == []
    undo_import(db, int(list_batches(db)["batch_id"].iat[0]))  # imported after the check

    assert waiting_files(db, inbox) == [later]
    assert _row(import_inbox(db, inbox), again.name).status == "already imported"


def _customers_downloaded_twice(db, inbox: Path) -> Path:
    """Import ``customers.csv`` from ``inbox`` into ``db`` and drop its second download beside it
    (returned, not imported yet)."""
    (inbox / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    import_inbox(db, inbox)
    again = inbox / "customers (1).csv"
    again.write_text(_redownloaded(CUSTOMERS), encoding="utf-8")
    return again


def test_the_report_no_longer_runs_the_import_page_alone_for_a_checked_file(tmp_path, inbox):
    store = tmp_path / "crm.db"
    db = open_db(store)
    _customers_downloaded_twice(db, inbox)
    parameters = {"inbox_dir": str(inbox)}
    assert runs_alone(IMPORT_NOTEBOOK, parameters, db_path=store)
    import_inbox(db, inbox)
    assert not runs_alone(IMPORT_NOTEBOOK, parameters, db_path=store)


def test_a_busy_store_is_a_plain_rejection_and_the_file_still_waits(tmp_path, inbox):
    store = tmp_path / "crm.db"
    db = open_db(store)
    again = _customers_downloaded_twice(db, inbox)
    shutil.copy(SHOPIFY_ORDERS, inbox / "export.csv")
    db.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(store)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        results = import_inbox(db, inbox)
    finally:
        other.rollback()
        other.close()

    for name in (again.name, "export.csv"):
        row = _row(results, name)
        assert row.status == "rejected" and "the store is busy" in row.message and name in row.message
    assert waiting_files(db, inbox) == [again, inbox / "export.csv"]
    assert db.table(IMPORT_CHECKS).count == 0


def test_after_forget_a_checked_file_stays_done_and_another_download_brings_nobody_back(tmp_path, inbox):
    db = open_db(tmp_path / "crm.db")
    again = _customers_downloaded_twice(db, inbox)
    import_inbox(db, inbox)

    report = forget(db, "ada@example.com", inbox=inbox, backups=tmp_path / "backups")

    assert report.inbox_files_mentioning == ["customers (1).csv", "customers.csv"]
    held = db.execute(f"SELECT * FROM {IMPORT_CHECKS}").fetchall()
    assert held and not any("ada" in str(value).lower() for row in held for value in row)
    assert waiting_files(db, inbox) == []
    again.unlink()
    (inbox / "customers (2).csv").write_text(CUSTOMERS.replace("\n", "\r\n"), encoding="utf-8")
    third = _row(import_inbox(db, inbox), "customers (2).csv")
    assert (third.status, third.inserted, third.updated) == ("imported", 0, 0)
    assert "1 rows of erased people skipped" in third.message
    assert db.execute("SELECT count(*) FROM customers WHERE email = 'ada@example.com'").fetchone()[0] == 0
    assert waiting_files(db, inbox) == []


def _as_version_5(path: Path) -> None:
    """Turn the store at ``path`` into what schema version 5 left: no record of checked files."""
    conn = sqlite3.connect(path)
    conn.executescript(f"DROP TABLE {IMPORT_CHECKS}; DROP TABLE report_folders; "
                       "ALTER TABLE import_log DROP COLUMN balance; DROP TABLE tasks; "
                       "DELETE FROM _sqlite_migrations WHERE name LIKE 'm006%' OR name LIKE 'm007%' "
                       "OR name LIKE 'm008%' OR name LIKE 'm009%' OR name LIKE 'm010%' OR name LIKE 'm011%'; "
                       "DROP TRIGGER customer_search_insert; DROP TRIGGER customer_search_delete; DROP TRIGGER customer_search_update; DROP TABLE customer_search; DROP VIEW customer_search_source; "
                       "PRAGMA user_version = 5;")
    conn.close()


def test_a_version_5_store_migrates_keeps_its_data_and_then_records_checks(tmp_path, inbox):
    store = tmp_path / "crm.db"
    db = open_db(store)
    (inbox / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (inbox / "orders_2026-10.csv").write_text(ORDERS, encoding="utf-8")
    import_inbox(db, inbox)
    before, batches = _data(db), list_batches(db)
    db.conn.close()
    _as_version_5(store)

    db = open_db(store)

    assert schema_version(db) == SCHEMA_VERSION
    assert _data(db) == before and list_batches(db).equals(batches)
    assert db.table(IMPORT_CHECKS).count == 0
    (inbox / "orders (1).csv").write_text(_redownloaded(ORDERS), encoding="utf-8")
    import_inbox(db, inbox)
    assert waiting_files(db, inbox) == []


def test_a_version_5_backup_restores_into_a_current_store_and_a_current_one_backs_up(tmp_path, inbox):
    store = tmp_path / "crm.db"
    db = open_db(store)
    again = _customers_downloaded_twice(db, inbox)
    import_inbox(db, inbox)  # a check recorded in the current store
    before = _data(db)
    db.conn.close()
    current = backup(store, tmp_path / "backups", now=dt.datetime(2026, 11, 2))
    assert verify(current) == SCHEMA_VERSION
    old = tmp_path / "old.db"
    shutil.copy(store, old)
    _as_version_5(old)
    old_backup = backup(old, tmp_path / "backups", now=dt.datetime(2026, 11, 1))
    assert verify(old_backup) == 5

    restore(old_backup, store)
    db = open_db(store)
    assert schema_version(db) == SCHEMA_VERSION and _data(db) == before
    assert waiting_files(db, inbox) == [again]  # the old backup holds no check

    restore(current, store)
    db = open_db(store)
    assert _data(db) == before and waiting_files(db, inbox) == []
