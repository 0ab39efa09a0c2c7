"""The store: schema, keys, pragmas, permissions, migrations, clear errors."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from crm_helpers.store.schema import TABLES, data_model_markdown
from crm_helpers.store.connection import (
    SCHEMA_VERSION,
    StoreError,
    memory_db,
    open_db,
    schema_version,
    table_counts,
)
from crm_helpers.store.config import PROJECT_ROOT


def test_new_store_has_every_table_and_version(tmp_path):
    db = open_db(tmp_path / "crm.db")
    assert set(TABLES) <= set(db.table_names())
    assert schema_version(db) == SCHEMA_VERSION
    assert table_counts(db) == {name: 0 for name in TABLES}


def test_store_file_is_owner_only(tmp_path):
    path = tmp_path / "crm.db"
    open_db(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_pragmas_foreign_keys_wal_busy_timeout(tmp_path):
    db = open_db(tmp_path / "crm.db")
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_foreign_keys_are_enforced():
    db = memory_db()
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO orders (order_id, customer_id, order_date, amount, status) VALUES ('O1', 'nobody', '2026-01-01', 5, 'paid')"
        )


def test_email_unique_when_present_only():
    db = memory_db()
    db.table("customers").insert_all([
        {"customer_id": "A", "email": "a@example.com"},
        {"customer_id": "B", "email": None},
        {"customer_id": "C", "email": None},
    ])
    with pytest.raises(sqlite3.IntegrityError):
        db.table("customers").insert({"customer_id": "D", "email": "a@example.com"})


def test_reopening_applies_no_migration_twice_and_keeps_rows(tmp_path):
    path = tmp_path / "crm.db"
    db = open_db(path)
    db.table("customers").insert({"customer_id": "A", "name": "Ada"})
    db.conn.close()
    again = open_db(path)
    assert again.table("customers").count == 1
    assert schema_version(again) == SCHEMA_VERSION


def test_not_a_database_gives_a_plain_message(tmp_path):
    path = tmp_path / "crm.db"
    path.write_bytes(b"this is a text file, not a store" * 100)
    with pytest.raises(StoreError, match="not a CRM store"):
        open_db(path)


def test_data_model_doc_is_up_to_date():
    doc = PROJECT_ROOT / "docs" / "data-model.md"
    assert doc.read_text(encoding="utf-8") == data_model_markdown(), "run `crm schema-doc`"
