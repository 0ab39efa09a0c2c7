"""Backups: online copy, verification, rotation, encryption, restore keeps the replaced store."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

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
from pathlib import Path
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


# ------------------------------------------------------------------ a restore under an open desk
def _crm(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``crm`` in another process, as the owner would run it beside an open desk; no terminal."""
    return subprocess.run([sys.executable, "-m", "crm_helpers.cli", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, start_new_session=True, timeout=120, **kwargs)


def _names(path) -> set[str]:
    fresh = open_db(path)
    try:
        return {r[0] for r in fresh.execute("SELECT name FROM customers WHERE name IS NOT NULL")}
    finally:
        fresh.conn.close()


def test_a_desk_open_during_a_restore_saves_into_the_restored_store(tmp_path):
    from crm_helpers.desk import Desk
    from crm_helpers.ingest import entry

    path = tmp_path / "crm.db"
    db = open_db(path)
    entry.add_customer(db, "C1", name="Anna Li")
    saved = backup(path, tmp_path / "bk")
    entry.add_customer(db, "C2", name="After The Backup")
    desk = Desk(db, today="2026-03-15")
    inode = os.stat(path).st_ino

    done = _crm("restore", "--db", str(path), str(saved))
    assert done.returncode == 0, done.stderr
    assert _names(path) == {"Anna Li"}

    desk.select(None)
    desk.customer.fields["name"].value = "Bo Berg"
    desk.customer.add.click()
    assert "Saved" in desk.customer.message.value
    assert _names(path) == {"Anna Li", "Bo Berg"}  # what the desk said it saved is in the store
    assert os.stat(path).st_ino == inode  # the backup was copied into the file, not put in its place
    entry.log_interaction(db, "C1", channel="call")  # a notebook's connection goes on writing too
    assert open_db(path).table("interactions").count == 1
    kept = next(tmp_path.glob("crm.db.replaced-*"))
    assert sqlite3.connect(kept).execute("SELECT count(*) FROM customers").fetchone()[0] == 2


def test_a_store_file_replaced_under_an_open_desk_refuses_its_save(tmp_path):
    from crm_helpers.desk import Desk
    from crm_helpers.ingest import entry
    from crm_helpers.store.connection import StoreReplacedError

    path = tmp_path / "crm.db"
    db = open_db(path)
    entry.add_customer(db, "C1", name="Anna Li")
    desk = Desk(db, today="2026-03-15")
    other = tmp_path / "other.db"
    other_db = open_db(other)
    entry.add_customer(other_db, "C9", name="Other Store")
    other_db.conn.close()  # written through into other.db
    for side in ("-wal", "-shm"):  # another tool puts another store in its place, as `crm demo --replace` does
        Path(f"{path}{side}").unlink()
    os.replace(other, path)

    desk.select(None)
    desk.customer.fields["name"].value = "Bo Berg"
    desk.customer.add.click()
    message = desk.customer.message.value
    assert "Not saved" in message and "the store was replaced since this page opened" in message
    assert "Saved:" not in message and str(tmp_path) not in message
    with pytest.raises(StoreReplacedError, match="nothing was saved: reload the page / reopen the store"):
        entry.log_interaction(db, "C1", channel="call")
    assert _names(path) == {"Other Store"}
    path.unlink()
    with pytest.raises(StoreReplacedError):  # a store removed under it: refused too
        entry.add_customer(db, "C3", name="Cy")


def test_a_restore_waits_for_a_write_in_progress_and_keeps_it_in_the_kept_copy(store, tmp_path):
    import threading

    saved = backup(store, tmp_path / "bk")
    writer = open_db(store)
    locked, release = threading.Event(), threading.Event()

    def write_slowly():
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO customers (customer_id) VALUES ('in-progress')")
        locked.set()
        release.wait(10)
        writer.execute("COMMIT")

    thread = threading.Thread(target=write_slowly)
    thread.start()
    locked.wait(10)
    threading.Timer(0.3, release.set).start()
    kept = restore(saved, store).kept
    thread.join()
    assert sqlite3.connect(kept).execute("SELECT count(*) FROM customers").fetchone()[0] == 51
    fresh = open_db(store)
    assert table_counts(fresh)["customers"] == 50
    assert fresh.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert fresh.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600


def test_a_restore_into_a_store_of_another_page_size(tmp_path):
    small = tmp_path / "small.db"
    conn = sqlite3.connect(small)
    conn.execute("PRAGMA page_size = 1024")
    conn.close()
    db = open_db(small)
    db.table("customers").insert_all({"customer_id": f"C{i}", "name": f"N{i}"} for i in range(20))
    saved = backup(small, tmp_path / "bk")  # pages of 1,024 bytes
    target = tmp_path / "crm.db"
    open_db(target).table("customers").insert({"customer_id": "X"})  # pages of 4,096 bytes, WAL
    restore(saved, target)
    fresh = open_db(target)
    assert table_counts(fresh)["customers"] == 20 and fresh.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_a_person_erased_while_the_restore_prepared_is_erased_in_the_restored_store(tmp_path, monkeypatch):
    import crm_helpers.store.backup as backup_module
    from crm_helpers.store.forget import forget
    from crm_helpers.store.suppression import SuppressionList

    path = tmp_path / "crm.db"
    db = open_db(path)
    db.table("customers").insert_all([{"customer_id": "C1", "name": "Anna Li", "email": "anna@example.com"},
                                      {"customer_id": "C2", "name": "Bo Berg"}])
    saved = backup(path, tmp_path / "bk")
    forget(db, "C1", backups=tmp_path / "elsewhere")
    # the restore read the suppression lists just before that erasure was committed
    monkeypatch.setattr(backup_module, "known_erasures", lambda *_: SuppressionList())
    restored = restore(saved, path)
    assert restored.erased_again == 1
    assert _names(path) == {"Bo Berg"}
    assert b"anna@example.com" not in path.read_bytes() + Path(f"{path}-wal").read_bytes()


def test_a_backup_or_store_of_a_newer_workbook_is_named_as_such(store, tmp_path):
    from crm_helpers.store.connection import SCHEMA_VERSION

    saved = backup(store, tmp_path / "bk")
    conn = sqlite3.connect(saved)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    done = _crm("restore", "--db", str(store), str(saved))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: {saved.name}: made by a newer version of the workbook: update it (git pull && make setup) "
        f"(schema version {SCHEMA_VERSION + 1}; this workbook knows up to {SCHEMA_VERSION})"]
    assert table_counts(open_db(store))["customers"] == 50

    plain = backup(store, tmp_path / "bk2")
    newer = open_db(store)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = store.read_bytes()
    with pytest.raises(BackupError, match="made by a newer version of the workbook: update it"):
        restore(plain, store)
    assert store.read_bytes() == before


def test_a_store_damaged_beyond_reading_is_set_aside_and_restored(store, tmp_path):
    saved = backup(store, tmp_path / "bk")
    damage = os.urandom(8192)
    store.write_bytes(damage)
    for side in ("-wal", "-shm"):
        Path(f"{store}{side}").unlink(missing_ok=True)
    kept = restore(saved, store).kept
    assert kept is not None and kept.read_bytes() == damage and stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    assert table_counts(open_db(store))["customers"] == 50
