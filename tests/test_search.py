"""The desk's customer search through its index (store/connection.py m011, store/queries.py): the
same people as a scan of every customer would find, and still so after imports, entries, corrections,
undo, an erasure and a restore from a backup."""

from __future__ import annotations

import sqlite3

import pytest

from crm_helpers.desk import count_customers, find_customers
from crm_helpers.ingest import entry
from crm_helpers.ingest.table_import import import_file
from crm_helpers.store.backup import backup, restore
from crm_helpers.store.connection import CUSTOMER_SEARCH, PHONE_DIGITS_SQL, memory_db, open_db
from crm_helpers.store.forget import forget
from crm_helpers.store.undo import entry_record, undo_entry, undo_import

PEOPLE = [
    {"customer_id": "C1", "name": "Anna Li", "email": "anna@example.com", "phone": "+49 30 123-4567"},
    {"customer_id": "C2", "name": "Wei Zhang", "email": "wei@example.com", "company": "Tea House"},
    {"customer_id": "C3", "name": "王芳", "email": "wang.fang@example.cn", "phone": "(010) 5555 0101"},
    {"customer_id": "C4", "name": "张伟明", "company": "🍵 Tea Bar"},
    {"customer_id": "C5", "name": "ÅSA Öberg", "email": "asa@example.se", "company": "100% Tee_Haus"},
]
NEEDLES = ["anna", "ANN", "an", "tea h", "example.com", "example", "1234567", "30 123", "123-45", "0105555",
           "王芳", "王", "张伟明", "伟明", "🍵", "🍵 tea", "tea bar", "åsa", "Öberg", "100%", "e_h", "%", "_", "zzz",
           "ER", '"quoted"', "wei@", "nobody here"]
"""Text the owner might type: whole and part names, any case, 2-character Chinese names, emoji, phone
digits with and without spaces, the characters LIKE treats specially, quotes."""


def scanned(db, text: str) -> list[str]:
    """The customers a scan of every row finds for ``text``: name, e-mail, company or phone containing
    it (any case), or a phone whose digits contain its digits (3 or more); erased people never."""
    needle = text.strip().lower()
    digits = "".join(ch for ch in needle if ch.isdigit())
    rows = db.execute(f"SELECT customer_id, name, email, company, phone, {PHONE_DIGITS_SQL.format(phone='phone')} "
                      "FROM customers WHERE COALESCE(name, email, phone, company) IS NOT NULL").fetchall()
    return sorted(cid for cid, *values, phone_digits in rows
                  if needle and (any(needle in (v or "").lower() for v in values)
                                 or len(digits) >= 3 and digits in (phone_digits or "")))


def assert_found_as_scanned(db) -> None:
    db.execute(f"INSERT INTO {CUSTOMER_SEARCH} ({CUSTOMER_SEARCH}, rank) VALUES ('integrity-check', 1)")  # index = rows
    for text in NEEDLES:
        assert sorted(cid for _, cid in find_customers(db, text, limit=1000)) == scanned(db, text), text
        assert count_customers(db, text) == len(scanned(db, text)), text


@pytest.fixture
def db():
    db = memory_db()
    for person in PEOPLE:
        entry.add_customer(db, **person)
    return db


def test_search_finds_what_a_scan_finds_through_the_index(db):
    assert [cid for _, cid in find_customers(db, "王芳")] == ["C3"]  # 2 characters: the scan
    assert [cid for _, cid in find_customers(db, "伟明")] == ["C4"]
    assert [cid for _, cid in find_customers(db, "张伟明")] == ["C4"]  # 3 and more: the index
    assert [cid for _, cid in find_customers(db, "🍵")] == ["C4"] == [cid for _, cid in find_customers(db, "🍵 tea")]
    assert [cid for _, cid in find_customers(db, "åsa öberg")] == ["C5"]  # any case, beyond ASCII too
    assert [cid for _, cid in find_customers(db, "0105555")] == ["C3"]  # digits whatever the brackets and spaces
    assert find_customers(db, "100%") == [("ÅSA Öberg (100% Tee_Haus) · asa@example.se", "C5")]
    assert [c for _, c in find_customers(db, "%")] == ["C5"] and find_customers(db, '"quoted"') == []  # literally
    plan = " ".join(str(r) for r in db.execute("EXPLAIN QUERY PLAN SELECT customer_id FROM customers WHERE rowid IN "
                                               f"(SELECT rowid FROM {CUSTOMER_SEARCH} WHERE {CUSTOMER_SEARCH} MATCH 'anna')"))
    assert "VIRTUAL TABLE INDEX" in plan and "SCAN customers" not in plan
    assert_found_as_scanned(db)


def test_the_index_follows_entries_corrections_undo_and_deletion(db):
    before = db.table("customers").get("C2")
    entry.update_customer(db, "C2", name="Wei Chen", phone="0171 222 3333", company=None)
    record = entry_record(db, "changes", rows=[("customers", ("C2",), before)])
    assert find_customers(db, "zhang") == [] and [c for _, c in find_customers(db, "1712223")] == ["C2"]
    assert_found_as_scanned(db)
    undo_entry(db, record)
    assert [c for _, c in find_customers(db, "zhang")] == ["C2"] and find_customers(db, "1712223") == []
    assert_found_as_scanned(db)
    added = entry.add_customer(db, name="Zora Neu", email="zora@example.org")
    assert [c for _, c in find_customers(db, "zora")] == [added]
    db.execute("DELETE FROM customers WHERE customer_id = ?", [added])
    assert find_customers(db, "zora") == []
    assert_found_as_scanned(db)


def test_the_index_follows_an_import_and_its_undo(db, tmp_path):
    csv = tmp_path / "customers.csv"
    csv.write_text("customer_id,name,email,phone,company\n"
                   "C1,Anna Lindqvist,anna@example.com,,\n"  # an update
                   "N1,Nils Holm,nils@example.org,+46 8 765 43 21,Holm AB\n", encoding="utf-8")
    result = import_file(db, "customers", path=csv)
    assert [c for _, c in find_customers(db, "lindqvist")] == ["C1"] and [c for _, c in find_customers(db, "8765")] == ["N1"]
    assert_found_as_scanned(db)
    undo_import(db, result.batch_id)
    assert find_customers(db, "lindqvist") == [] and find_customers(db, "holm") == []
    assert [c for _, c in find_customers(db, "anna li")] == ["C1"]
    assert_found_as_scanned(db)


def test_an_erased_person_leaves_the_index(db):
    forget(db, "C3")
    assert find_customers(db, "wang.fang") == [] and find_customers(db, "0105555") == []
    assert find_customers(db, "王芳") == []
    assert_found_as_scanned(db)


def test_the_index_is_right_after_a_restore_from_a_backup(tmp_path):
    path = tmp_path / "crm.db"
    store = open_db(path)
    for person in PEOPLE:
        entry.add_customer(store, **person)
    store.close()
    saved = backup(path, tmp_path / "backups")
    store = open_db(path)
    entry.update_customer(store, "C1", name="Anna Berg")
    entry.add_customer(store, "C9", name="Later Person")
    forget(store, "C2", backups=tmp_path / "backups")  # erased after the backup: erased again in it
    store.close()
    restore(saved, path)
    store = open_db(path)
    assert [c for _, c in find_customers(store, "anna li")] == ["C1"] and [c for _, c in find_customers(store, "berg")] == ["C5"]
    assert find_customers(store, "later") == [] and find_customers(store, "zhang") == []
    assert_found_as_scanned(store)
    store.close()
    with sqlite3.connect(path) as conn:  # a store migrated from before the index finds the same
        conn.execute(f"INSERT INTO {CUSTOMER_SEARCH} ({CUSTOMER_SEARCH}) VALUES ('delete-all')")
        conn.execute("PRAGMA user_version = 10")
        for suffix in ("insert", "delete", "update"):
            conn.execute(f"DROP TRIGGER {CUSTOMER_SEARCH}_{suffix}")
        conn.execute(f"DROP TABLE {CUSTOMER_SEARCH}")
        conn.execute(f"DROP VIEW {CUSTOMER_SEARCH}_source")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm011_customer_search'")  # sqlite-migrate's record
    store = open_db(path)
    assert_found_as_scanned(store)
    store.close()
