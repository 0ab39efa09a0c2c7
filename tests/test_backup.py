"""Backups: online copy, verification, rotation, encryption, restore keeps the replaced store."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
import subprocess
import sys
import time

import pytest

from crm_helpers.store.backup import BackupError, backup, restore, verify
from crm_helpers.store.connection import open_db, table_counts


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "crm.db"
    db = open_db(path)
    db.table("customers").insert_all({"customer_id": f"C{i}", "name": f"N{i}"} for i in range(50))
    return path


def test_backup_is_verified_owner_only_and_complete(store, tmp_path):
    path = backup(store, tmp_path / "bk")
    assert verify(path) >= 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sqlite3.connect(path).execute("SELECT count(*) FROM customers").fetchone()[0] == 50


def test_keep_rotates_old_backups(store, tmp_path):
    for day in range(1, 6):
        backup(store, tmp_path / "bk", keep=3, now=dt.datetime(2026, 1, day))
    names = sorted(p.name for p in (tmp_path / "bk").iterdir())
    assert names == ["crm-20260103-000000.db", "crm-20260104-000000.db", "crm-20260105-000000.db"]


def test_backup_while_another_process_writes(store, tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", f"""
import time
from crm_helpers.store.connection import open_db
db = open_db({str(store)!r})
for i in range(400):
    db.table("customers").insert({{"customer_id": f"W{{i}}"}})
    time.sleep(0.002)
"""])
    try:
        time.sleep(0.3)
        paths = [backup(store, tmp_path / "bk", now=dt.datetime(2026, 1, 1, 0, 0, k)) for k in range(3)]
    finally:
        writer.wait(timeout=60)
    for path in paths:
        assert verify(path) >= 1


def test_encrypted_backup_round_trip_and_wrong_passphrase(store, tmp_path):
    path = backup(store, tmp_path / "bk", passphrase="correct horse")
    assert path.suffix == ".enc" and b"SQLite format" not in path.read_bytes()
    target = tmp_path / "restored.db"
    restore(path, target, passphrase="correct horse")
    assert table_counts(open_db(target))["customers"] == 50
    with pytest.raises(BackupError, match="wrong passphrase"):
        restore(path, tmp_path / "other.db", passphrase="battery staple")
    with pytest.raises(BackupError, match="encrypted"):
        restore(path, tmp_path / "other.db")


def test_restore_refuses_a_damaged_backup_and_keeps_the_store(store, tmp_path):
    bad = tmp_path / "crm-bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    before = store.read_bytes()
    with pytest.raises(BackupError):
        restore(bad, store)
    assert store.read_bytes() == before


def test_restore_keeps_the_replaced_store(store, tmp_path):
    path = backup(store, tmp_path / "bk")
    open_db(store).table("customers").insert({"customer_id": "late"})
    kept = restore(path, store).kept
    assert kept is not None and kept.exists()
    assert table_counts(open_db(store))["customers"] == 50
    assert sqlite3.connect(kept).execute("SELECT count(*) FROM customers").fetchone()[0] == 51


def test_every_file_a_backup_or_restore_writes_is_owner_only(store, tmp_path):
    plain = backup(store, tmp_path / "bk", now=dt.datetime(2026, 1, 1))
    sealed = backup(store, tmp_path / "bk", passphrase="correct horse", now=dt.datetime(2026, 1, 2))
    kept = restore(plain, store).kept
    restored_from_sealed = restore(sealed, tmp_path / "other.db", passphrase="correct horse")
    assert restored_from_sealed.kept is None  # nothing was there to keep
    for path in (plain, sealed, kept, store, tmp_path / "other.db"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path.name
    assert stat.S_IMODE(os.stat(tmp_path / "bk").st_mode) == 0o700
