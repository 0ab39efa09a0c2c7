"""Erasure that stays erased: the suppression list keeps a forgotten person out of re-imports,
data entry, restores and backups."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_helpers.store.backup import backup, check_copies, decrypt_bytes, purge_copies, restore, verify
from crm_helpers.cli import main
from crm_helpers.demo import generate_demo, write_demo
from crm_helpers.ingest.entry import add_customer, update_customer
from crm_helpers.store.forget import forget
from crm_helpers.ingest.table_import import import_file
from crm_helpers.ingest.inbox import import_inbox
from crm_helpers.store.connection import open_db
from crm_helpers.store.suppression import SuppressionList, identifiers, sidecar_path
from crm_helpers.store.validation import ValidationError

PASSPHRASE = "correct horse"


@pytest.fixture
def store(tmp_path) -> Path:
    """A small demo business in ``tmp_path/data/crm.db`` (backups go to ``tmp_path/data/backups``)."""
    path = tmp_path / "data" / "crm.db"
    write_demo(open_db(path), generate_demo(customers=60, months=12, seed=3, end="2026-10"))
    return path


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``crm`` in-process, with the inbox in ``tmp_path`` (never the project's)."""
    monkeypatch.setenv("CRM_INBOX", str(tmp_path / "inbox"))
    monkeypatch.setenv("CRM_BACKUP_PASSPHRASE", PASSPHRASE)
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def _person(db_path: Path, customer_id: str = "C00002") -> dict[str, str]:
    db = open_db(db_path)
    cursor = db.execute("SELECT customer_id, name, email, phone FROM customers WHERE customer_id = ?", [customer_id])
    return dict(zip([d[0] for d in cursor.description], cursor.fetchone()))


def _export(db_path: Path, sql: str, target: Path) -> Path:
    """What the owner's shop exports every month: every row, the erased person included."""
    db = open_db(db_path)
    cursor = db.execute(sql)
    lines = [",".join(d[0] for d in cursor.description)]
    lines += [",".join("" if v is None else str(v) for v in row) for row in cursor.fetchall()]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def _occurrences(data: bytes, *values: str) -> list[str]:
    """The values found in ``data`` in any letter case (bytes as SQLite or a file stores them)."""
    lowered = data.lower()
    return [v for v in values if v.lower().encode("utf-8") in lowered]


# ------------------------------------------------------------------------------------- imports
def test_reimporting_the_same_exports_does_not_bring_the_person_back(store, tmp_path):
    """The issue's case: forget Zoe, import last month's full exports again."""
    person = _person(store)
    customers = _export(store, "SELECT customer_id, name, email, phone FROM customers", tmp_path / "customers.csv")
    orders = _export(store, "SELECT order_id, customer_id, order_date, amount, status FROM orders",
                     tmp_path / "orders.csv")
    db = open_db(store)
    n_orders = db.execute("SELECT count(*) FROM orders WHERE customer_id = ?", [person["customer_id"]]).fetchone()[0]
    n_customers = db.table("customers").count
    revenue = db.execute("SELECT sum(amount), count(*) FROM orders").fetchone()
    assert n_orders > 0

    report = forget(db, person["email"])
    again = import_file(db, "customers", path=customers)
    orders_again = import_file(db, "orders", path=orders, create_missing_customers=True)

    assert (again.inserted, again.updated, again.erased_skipped) == (0, 0, 1)
    assert "1 rows of erased people skipped" in again.summary()
    assert person["email"] not in again.summary() and person["customer_id"] not in again.summary()
    assert (orders_again.inserted, orders_again.created_customers, orders_again.erased_skipped) == (0, 0, n_orders)
    assert f"{n_orders} rows of erased people skipped" in orders_again.summary()
    assert db.execute("SELECT count(*) FROM customers WHERE customer_id = ? OR email = ?",
                      [person["customer_id"], person["email"]]).fetchone()[0] == 0
    assert db.table("customers").count == n_customers  # the pseudonym row stands in for the person
    assert db.execute("SELECT sum(amount), count(*) FROM orders").fetchone() == revenue
    assert db.execute("SELECT count(*) FROM orders WHERE customer_id = ?", [report.pseudonym]).fetchone()[0] == n_orders


def test_the_person_is_recognised_by_any_identifier_and_dry_run_says_so(store, tmp_path):
    """A new platform id with the old e-mail in capitals, or only the phone written another way."""
    person = _person(store)
    db = open_db(store)
    forget(db, person["customer_id"])
    digits = re.sub(r"\D", "", person["phone"])
    export = tmp_path / "customers_shop.csv"
    export.write_text("customer_id,name,email,phone\n"
                      f"SHOP-991,{person['name']},{person['email'].upper()},\n"
                      f"SHOP-992,{person['name']},,{'-'.join([digits[:4], digits[4:]])}\n"
                      "SHOP-993,Someone New,someone.new@example.org,\n", encoding="utf-8")
    before = db.table("customers").count

    dry = import_file(db, "customers", path=export, dry_run=True)
    assert (dry.inserted, dry.erased_skipped) == (1, 2)
    assert "2 rows of erased people skipped" in dry.summary()
    assert dry.summary().endswith("(dry run: nothing written)")
    assert db.table("customers").count == before

    done = import_file(db, "customers", path=export)
    assert (done.inserted, done.erased_skipped) == (1, 2)
    assert db.execute("SELECT customer_id FROM customers WHERE customer_id LIKE 'SHOP-%'").fetchall() == [("SHOP-993",)]


def test_bad_rows_of_an_erased_person_are_skipped_not_written_to_a_rejects_file(store, tmp_path):
    person = _person(store)
    db = open_db(store)
    forget(db, person["customer_id"])
    export = tmp_path / "customers_bad.csv"
    export.write_text("customer_id,name,email,consent_marketing\n"
                      f"{person['customer_id']},{person['name']},{person['email']},perhaps\n"
                      "N-1,Other,other.person@example.org,perhaps\n", encoding="utf-8")
    result = import_file(db, "customers", path=export, skip_bad_rows=True)
    assert (result.rejected, result.erased_skipped) == (1, 1)
    rejects = result.rejects_path.read_text(encoding="utf-8-sig")
    assert "other.person@example.org" in rejects and not _occurrences(rejects.encode(), person["email"])


def test_the_inbox_skips_them_too(store, tmp_path):
    person = _person(store)
    db = open_db(store)
    forget(db, person["email"])
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _export(store, "SELECT customer_id, name, email FROM customers", inbox / "customers_2026-10.csv")
    (inbox / "customers_2026-10.csv").write_text((inbox / "customers_2026-10.csv").read_text()
                                                 + f"{person['customer_id']},{person['name']},{person['email']}\n")
    table = import_inbox(db, inbox)
    assert table.loc[0, "status"] == "imported" and table.loc[0, "inserted"] == 0
    assert "1 rows of erased people skipped" in table.loc[0, "message"]


def test_data_entry_refuses_an_erased_person_and_writes_nothing(store):
    person = _person(store)
    db = open_db(store)
    forget(db, person["customer_id"])
    before = db.table("customers").count
    with pytest.raises(ValidationError, match="erased on") as caught:
        add_customer(db, name="Back Again", email=f"  {person['email'].upper()} ")
    assert caught.value.column == "email"
    with pytest.raises(ValidationError, match="suppression list"):
        add_customer(db, person["customer_id"], name="Back Again")
    assert db.table("customers").count == before
    assert add_customer(db, name="A Stranger", email="stranger@example.org")  # others still come in


# ------------------------------------------------------------------------ the list itself
def test_the_suppression_list_holds_no_identifier_in_clear(store, tmp_path):
    """grep of the database file, its WAL and the sidecar for the e-mail, the phone and the id."""
    person = _person(store)
    db = open_db(store)
    forget(db, person["email"])
    entries = db.execute("SELECT pseudonym, digests FROM suppression_list").fetchall()
    assert len(entries) == 1 and set(json.loads(entries[0][1])) == {"customer_id", "email", "phone"}
    digits = re.sub(r"\D", "", person["phone"])
    for path in (store, Path(f"{store}-wal"), sidecar_path(store.parent / "backups")):
        data = path.read_bytes() if path.exists() else b""
        assert _occurrences(data, person["email"], person["phone"], digits, person["customer_id"]) == [], path
    assert stat.S_IMODE(os.stat(sidecar_path(store.parent / "backups")).st_mode) == 0o600
    assert SuppressionList.read_sidecar(store.parent / "backups").match({"email": person["email"]})


def test_identifiers_are_normalised_once_for_recording_and_matching():
    assert identifiers({"customer_id": " C7 ", "email": " Ada@Example.COM", "phone": "+41 (79) 555-01-02"}) == {
        "customer_id": "C7", "email": "ada@example.com", "phone": "+41795550102"}
    assert identifiers({"email": "not an address", "phone": "12-34", "customer_id": "  "}) == {}


def test_forget_list_shows_the_erasures_without_personal_data(store, cli):
    first, second = _person(store, "C00002"), _person(store, "C00005")
    cli("forget", "--db", str(store), "--yes", first["email"])
    cli("forget", "--db", str(store), "--yes", second["customer_id"])
    listing = cli("forget", "--db", str(store), "--list")
    lines = listing.strip().splitlines()
    assert len(lines) == 2 and all("identifiers: customer id, e-mail, phone" in line for line in lines)
    assert all(re.search(r"rows changed: [1-9]\d*$", line) for line in lines)
    assert not _occurrences(listing.encode(), *first.values(), *second.values())
    assert "was erased on" in cli("forget", "--db", str(store), "--list", first["email"].upper())
    assert "not on the suppression list" in cli("forget", "--db", str(store), "--list", "someone@example.org")


# ------------------------------------------------------------------------------ restores
def test_restoring_an_older_backup_erases_the_person_again(store, tmp_path, cli):
    person = _person(store)
    old = backup(store, now=dt.datetime(2026, 11, 1))
    cli("forget", "--db", str(store), "--yes", person["email"])

    output = cli("restore", "--db", str(store), str(old))

    assert "Erased again: 1 person" in output
    db = open_db(store)
    assert db.execute("SELECT count(*) FROM customers WHERE customer_id = ? OR email = ?",
                      [person["customer_id"], person["email"]]).fetchone()[0] == 0
    erasure = next(iter(SuppressionList.load(db).erasures.values()))
    assert db.execute("SELECT count(*) FROM orders WHERE customer_id = ?", [erasure.pseudonym]).fetchone()[0] > 0
    assert not _occurrences(store.read_bytes(), person["email"], person["phone"])
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_store_that_predates_the_list_learns_it_from_the_sidecar(store, tmp_path):
    """The current store is lost, the backup is from before schema version 3: only the sidecar beside
    the backups remembers the erasure."""
    person = _person(store)
    old = backup(store, now=dt.datetime(2026, 11, 1))
    conn = sqlite3.connect(old)
    conn.executescript("DROP TABLE suppression_list; DROP TABLE suppression_keys; DROP TABLE erasure_log; "
                       "DELETE FROM _sqlite_migrations WHERE name = 'm003_suppression_list'; PRAGMA user_version = 2;")
    conn.close()
    forget(open_db(store), person["customer_id"])
    for side in ("", "-wal", "-shm"):
        Path(f"{store}{side}").unlink(missing_ok=True)

    restored = restore(old, store)

    assert restored.erased_again == 1 and restored.kept is None
    db = open_db(store)
    held = db.execute("SELECT count(*) FROM customers WHERE customer_id = ?", [person["customer_id"]]).fetchone()[0]
    assert held == 0 and len(SuppressionList.load(db)) == 1


def test_restoring_a_backup_taken_after_the_erasure_erases_nobody(store, tmp_path):
    db = open_db(store)
    forget(db, "C00002")
    later = backup(store)
    assert restore(later, store).erased_again == 0


# ---------------------------------------------------------------------------- backups
def test_forget_names_the_backups_that_still_hold_the_person_and_purges_them(store, tmp_path, cli):
    """Plain and encrypted backups and the copy a restore kept: after --purge-backups no byte of the
    e-mail in any of them (the encrypted one decrypted), each verified, the others' rows kept."""
    person = _person(store)
    plain = backup(store, now=dt.datetime(2026, 11, 1))
    sealed = backup(store, passphrase=PASSPHRASE, now=dt.datetime(2026, 11, 2))
    restore(plain, store)  # leaves crm.db.replaced-… beside the store
    kept = next(store.parent.glob("crm.db.replaced-*"))
    others = sqlite3.connect(plain).execute("SELECT count(*) FROM customers").fetchone()[0]

    told = cli("forget", "--db", str(store), "--yes", person["email"])
    for path in (plain, sealed, kept):
        assert f"{path}: still holds them" in told
    assert "--purge-backups" in told

    purged = cli("forget", "--db", str(store), "--purge-backups")
    for path in (plain, sealed, kept):
        assert f"{path}: rewritten without them and verified" in purged
    assert "none holds an erased person any more" in purged
    assert sealed.read_bytes().startswith(b"CRMBAK1")
    files = {plain: plain.read_bytes(), kept: kept.read_bytes(), sealed: decrypt_bytes(sealed.read_bytes(), PASSPHRASE)}
    for path, data in files.items():
        assert _occurrences(data, person["email"], person["phone"]) == [], path
    for path in (plain, kept):
        verify(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert sqlite3.connect(path).execute("SELECT count(*) FROM customers").fetchone()[0] == others
    assert stat.S_IMODE(os.stat(sealed).st_mode) == 0o600
    assert all(not c.holds for c in check_copies(store, SuppressionList.load(open_db(store)), passphrase=PASSPHRASE))


def test_a_backup_with_another_passphrase_is_left_as_it_is_and_named(store, tmp_path):
    sealed = backup(store, passphrase="another one", now=dt.datetime(2026, 11, 2))
    before = sealed.read_bytes()
    db = open_db(store)
    forget(db, "C00002")
    checks = purge_copies(store, SuppressionList.load(db), passphrase=PASSPHRASE)
    assert [(c.path, c.purged) for c in checks] == [(sealed, False)]
    assert "wrong passphrase" in checks[0].problem
    assert sealed.read_bytes() == before


def test_backups_keep_working_while_the_backups_are_purged(store, tmp_path):
    """Another process takes backups in a loop during the purge: some finish while it runs, every
    backup verifies, and neither the purged ones nor the new ones hold the person."""
    person = _person(store)
    for day in range(1, 6):
        backup(store, now=dt.datetime(2026, 11, day))
    db = open_db(store)
    forget(db, person["customer_id"])
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", f"""
import datetime as dt, pathlib, time
from crm_helpers.store.backup import backup
for k in range(300):
    if pathlib.Path({str(stop)!r}).exists():
        break
    backup({str(store)!r}, keep=1000, now=dt.datetime(2026, 12, 1, 0, k // 60, k % 60))
    print(time.time(), flush=True)
"""], stdout=subprocess.PIPE, text=True)
    try:
        first = float(writer.stdout.readline())  # the writer's first backup is the signal to start
        started = time.time()
        checks = purge_copies(store, SuppressionList.load(db))
        finished = time.time()
    finally:
        stop.touch()
        rest, _ = writer.communicate(timeout=120)
    assert writer.returncode == 0
    finishes = [first] + [float(t) for t in rest.split()]
    assert any(started < t < finished for t in finishes), "no backup was taken during the purge"
    assert sum(c.purged for c in checks) == 5 and not any(c.problem for c in checks)
    backups = sorted((store.parent / "backups").glob("crm-*.db"))
    assert len(backups) == 5 + len(finishes)
    for path in backups:
        verify(path)
        assert not _occurrences(path.read_bytes(), person["email"]), path


def test_a_damaged_sidecar_stops_a_restore_with_a_plain_message_and_is_set_aside_by_the_next_backup(store, cli):
    old = backup(store, now=dt.datetime(2026, 11, 1))
    forget(open_db(store), "C00002")
    sidecar = sidecar_path(store.parent / "backups")
    sidecar.write_text('{"keys": {"k": "not hex"}', encoding="utf-8")
    before = store.read_bytes()
    result = CliRunner().invoke(main, ["restore", "--db", str(store), str(old)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{sidecar}: the suppression list kept beside the backups cannot be read" in result.output
    assert store.read_bytes() == before
    cli("backup", "--db", str(store))  # the store's own list is whole: written afresh, the damaged one kept aside
    assert len(SuppressionList.read_sidecar(sidecar.parent)) == 1
    assert len(list(sidecar.parent.glob("suppression-list.json.damaged-*"))) == 1


def test_a_tool_export_leaves_out_every_line_of_an_erased_person(tmp_path):
    """Issue 18 for the multi-table exports of issue 13: a Shopify orders export imported again
    after `crm forget` brings back none of the erased buyer's lines, and says how many it skipped."""
    from crm_helpers.store.forget import forget
    from crm_helpers.ingest.export_import import import_export
    from crm_helpers.store.connection import open_db

    fixture = Path(__file__).parent / "fixtures" / "sources" / "shopify_orders_export.csv"
    db = open_db(tmp_path / "crm.db")
    first = import_export(db, fixture)
    email = db.execute("SELECT email FROM customers WHERE email IS NOT NULL ORDER BY customer_id").fetchone()[0]
    lines = sum(1 for line in fixture.read_text(encoding="utf-8").splitlines() if email.lower() in line.lower())
    orders_before = db.execute("SELECT count(*) FROM orders").fetchone()[0]
    forget(db, email)
    again = import_export(db, fixture)
    assert again.erased_skipped == lines > 0
    assert f"{lines} rows of erased people skipped" in again.summary()
    assert db.execute("SELECT count(*) FROM customers WHERE lower(email) = lower(?)", [email]).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == orders_before  # kept only anonymous
    assert first.tables["orders"].inserted == orders_before


# ---------------------------------------------------------------- phones in one international form
GERMAN_MOBILE = "+49 152 6493665"
SAME_NUMBER = ("0049 152 6493665", "0152 6493665", "+49 (0)152 649 36 65", "49 152 6493665")


def _customers_file(path: Path, phones: tuple[str, ...]) -> Path:
    rows = [f"SHOP-{i},Caller {i},,{phone}" for i, phone in enumerate(phones)]
    path.write_text("customer_id,name,email,phone\n" + "\n".join(rows) + "\nSHOP-NEW,A Stranger,,+49 30 1234567\n",
                    encoding="utf-8")
    return path


def _german_store(tmp_path: Path, *, country: str | None = "Germany") -> tuple[Path, str]:
    """A store whose customers live in ``country`` (None: no country recorded), with one customer
    whose phone is :data:`GERMAN_MOBILE`; returns the store and that customer's id."""
    path = tmp_path / "data" / "crm.db"
    db = open_db(path)
    write_demo(db, generate_demo(customers=40, months=6, seed=5, end="2026-10"))
    db.execute("UPDATE customers SET country = ?", [country])
    db.execute("UPDATE customers SET phone = ? WHERE customer_id = 'C00003'", [GERMAN_MOBILE])
    db.conn.commit()
    return path, "C00003"


def test_the_store_country_is_the_most_common_customer_country_by_code_or_name(tmp_path):
    from crm_helpers.store.suppression import country_code, store_region

    assert [country_code(c) for c in ("DE", "de", "Germany", " Deutschland ", "德国", "Allemagne")] == ["DE"] * 6
    assert country_code("Atlantis") is None
    path, _ = _german_store(tmp_path)
    db = open_db(path)
    assert store_region(db) == "DE"
    db.execute("UPDATE customers SET country = NULL")
    assert store_region(db) is None
    db.execute("UPDATE customers SET country = 'China' WHERE rowid % 4 <> 0")
    assert store_region(db) == "CN"


def test_a_forgotten_phone_written_any_other_way_is_refused_by_import_and_data_entry(tmp_path):
    """Issue 26: ``0049 152 6493665`` and ``0152 6493665`` passed the list after ``+49 152 6493665``."""
    path, customer_id = _german_store(tmp_path)
    db = open_db(path)
    forget(db, customer_id)
    done = import_file(db, "customers", path=_customers_file(tmp_path / "customers.csv", SAME_NUMBER))
    assert (done.inserted, done.erased_skipped) == (1, len(SAME_NUMBER))
    for phone in SAME_NUMBER:
        with pytest.raises(ValidationError, match="erased on") as caught:
            add_customer(db, name="Back Again", phone=phone)  # what the desk's "Add new customer" calls
        assert caught.value.column == "phone"
    assert add_customer(db, name="Someone Else", phone="0152 6493666")  # one digit off: another person
    other = add_customer(db, name="Someone Else Again", phone="0152 6493667")
    with pytest.raises(ValidationError, match="erased on"):
        update_customer(db, other, phone="0049 152 6493665")  # the desk's "Save changes"
    assert db.execute("SELECT phone FROM customers WHERE customer_id = ?", [other]).fetchone()[0] == "0152 6493667"


def test_a_forgotten_local_phone_is_refused_written_internationally(tmp_path):
    path, customer_id = _german_store(tmp_path)
    db = open_db(path)
    db.execute("UPDATE customers SET phone = '0152 6493665' WHERE customer_id = ?", [customer_id])
    forget(db, customer_id)
    for phone in (GERMAN_MOBILE, "0049 152 6493665", "+491526493665"):
        assert SuppressionList.load(db).match({"phone": phone}), phone


def test_without_a_store_country_international_forms_still_match_each_other(tmp_path):
    """No country recorded: ``+49 …`` and ``0049 …`` are one number; a local number matches the same
    local number and its international form (by the national digits)."""
    path, customer_id = _german_store(tmp_path, country=None)
    db = open_db(path)
    forget(db, customer_id)
    erasures = SuppressionList.load(db)
    assert erasures.region is None
    for phone in ("0049 152 6493665", "+49-152-6493665", "49 152 6493665"):
        assert erasures.match({"phone": phone}), phone
    assert not erasures.match({"phone": "+43 152 6493665"})  # the same digits in Austria: someone else


def test_erasures_recorded_with_the_old_digits_only_rule_still_match_every_form(tmp_path):
    """A list written before phones were read internationally hashed the digits as written; no
    entry is migrated (only hashes are kept), each phone is looked up under the old forms too."""
    import hashlib
    import hmac

    path, _ = _german_store(tmp_path)
    db = open_db(path)
    secret = os.urandom(32)
    old = {"+49 152 6493665": "491526493665", "0152 7000001": "01527000001"}  # as written -> old digest input
    db.execute("INSERT INTO suppression_keys (key_id, secret) VALUES ('old', ?)", [secret])
    for n, digits in enumerate(old.values()):
        digest = hmac.new(secret, f"phone\x1f{digits}".encode(), hashlib.sha256).hexdigest()
        db.execute("INSERT INTO suppression_list (pseudonym, erased_at, key_id, digests, rows_changed) "
                   "VALUES (?, '2026-01-01T10:00:00', 'old', ?, 1)", [f"ERASED-OLD{n}", json.dumps({"phone": digest})])
    db.conn.commit()
    erasures = SuppressionList.load(db)
    for phone in ("+49 152 6493665", "0049 152 6493665", "0152 6493665", "+491526493665"):
        assert erasures.match({"phone": phone}).pseudonym == "ERASED-OLD0", phone
    for phone in ("0152 7000001", "+49 152 7000001", "0049 1527000001"):
        assert erasures.match({"phone": phone}).pseudonym == "ERASED-OLD1", phone
    done = import_file(db, "customers", path=_customers_file(tmp_path / "c.csv", SAME_NUMBER))
    assert done.erased_skipped == len(SAME_NUMBER)
