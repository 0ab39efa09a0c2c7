"""Faults injected into the store's writers: nothing is lost, nothing half-written, every message plain.

- SIGKILL of an importing process at chosen points (write lock just taken, half the rows written,
  everything written but not committed) and at seeded random moments; of an undo mid-way; of a
  backup before its copy is in place. Afterwards the store passes ``PRAGMA integrity_check``,
  holds exactly the rows it held before (or, for a random moment, those of the complete import),
  and the next import or undo succeeds.
- A read-only store and a full disk: a plain message, nothing written.
- Two imports at once from two processes: both land (no "database is locked").
- Files that must not be read whole: an .xlsx compression bomb, an oversized workbook.
- SQL injection: values travel only as bound parameters, table and column names only from the
  schema, ``--map`` targets are checked against it.
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import sqlite_utils

from crm_helpers.ingest import entry
from crm_helpers.store.backup import PARTIAL_PREFIX, BackupError, backup
from crm_helpers.demo import generate_demo, write_demo
from crm_helpers.store.forget import forget
from crm_helpers.ingest.table_import import MAX_XLSX_BYTES, ImportRejected, import_file
from crm_helpers.store.schema import TABLES
from crm_helpers.store.connection import migrate_db, open_db
from crm_helpers.store.undo import UndoError, list_batches, undo_import

CRM = str(Path(sys.executable).with_name("crm"))
NEW_ORDERS = 3000
UPDATED_ORDERS = 100
ORDERS_HEADER = "order_id,customer_id,order_date,amount,status\n"

# A child process that runs one write and stops for good ("PAUSED") at the moment given by the
# SQL statement it is about to run: the parent then kills it with SIGKILL.
CHILD = r"""
import sys, time
from crm_helpers.store.connection import open_db
db_path, action, arg, pause_on, pause_at = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
db = open_db(db_path)
seen = 0
def trace(sql):
    global seen
    if sql.startswith(pause_on):
        seen += 1
        if seen == pause_at:
            print("PAUSED", flush=True)
            time.sleep(600)
db.conn.set_trace_callback(trace if pause_on != "-" else None)
from crm_helpers.ingest.table_import import import_file
print("STARTED", flush=True)
if action == "import":
    print(import_file(db, "orders", path=arg).summary(), flush=True)
elif action == "undo":
    from crm_helpers.store.undo import undo_import
    print(undo_import(db, int(arg)).summary(), flush=True)
elif action == "backup":
    from crm_helpers.store import backup
    def slow_verify(path, **kwargs):
        print("PAUSED", flush=True)
        time.sleep(600)
    backup.verify = slow_verify
    backup.backup(db_path, arg, passphrase="a passphrase")
"""


def _fingerprint(path: Path) -> dict:
    """Everything a killed writer must leave as it was: every row of every table, the import log."""
    conn = sqlite3.connect(path)
    try:
        tables = list(TABLES) + ["import_log", "import_batches"]
        return {t: sorted(map(tuple, conn.execute(f"SELECT * FROM {t}").fetchall()), key=repr) for t in tables}
    finally:
        conn.close()


def _integrity(path: Path) -> tuple[str, list]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0], conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()


def _start(db_path: Path, action: str, arg: str, pause_on: str = "-", pause_at: int = 1) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db_path), action, arg, pause_on, str(pause_at)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _read_line(proc) == "STARTED"
    return proc


def _read_line(proc: subprocess.Popen, timeout: float = 120) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail("the child process did not answer in time")
    line = proc.stdout.readline().strip()
    if not line:
        proc.wait()
        pytest.fail(f"the child process ended early: {proc.stderr.read()[-2000:]}")
    return line


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, Path]:
    """A small demo store and an export of orders that inserts 3,000 rows and updates 200."""
    folder = tmp_path_factory.mktemp("faults")
    store = folder / "template.db"
    db = open_db(store)
    write_demo(db, generate_demo(customers=80, months=12, seed=5, end="2026-10"))
    customers = [r[0] for r in db.execute("SELECT customer_id FROM customers ORDER BY customer_id")]
    existing = db.execute(f"SELECT order_id, customer_id, order_date, amount FROM orders WHERE status = 'paid' "
                          f"ORDER BY order_id LIMIT {UPDATED_ORDERS}").fetchall()
    db.conn.close()
    rng = random.Random(8)
    lines = [f"{oid},{cid},{day},{amount},refunded" for oid, cid, day, amount in existing]
    lines += [f"N{i:05d},{rng.choice(customers)},2026-10-{rng.randint(1, 31):02d},{rng.randint(5, 300)}.50,paid"
              for i in range(NEW_ORDERS)]
    export = folder / "orders_export.csv"
    export.write_text(ORDERS_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return store, export


def _copy(source: Path, path: Path) -> Path:
    """A copy of the store at ``source``, created owner-only as open_db would."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    src, dst = sqlite3.connect(source), sqlite3.connect(path)
    src.backup(dst)
    src.close()
    dst.close()
    return path


@pytest.fixture
def store(template, tmp_path) -> Path:
    return _copy(template[0], tmp_path / "crm.db")


KILL_POINTS = {
    "write lock just taken": ("DROP TABLE IF EXISTS temp._import_keys", 1),
    "half the rows written": ("INSERT INTO orders", (NEW_ORDERS + UPDATED_ORDERS) // 2),
    "all written, not yet committed": ("COMMIT", 1),
}


@pytest.mark.parametrize("point", KILL_POINTS, ids=list(KILL_POINTS))
def test_an_import_killed_mid_way_leaves_the_store_as_it_was(template, store, point):
    export = template[1]
    before = _fingerprint(store)
    proc = _start(store, "import", str(export), *map(str, KILL_POINTS[point]))
    assert _read_line(proc) == "PAUSED"
    _kill(proc)
    assert _integrity(store) == ("ok", [])
    assert _fingerprint(store) == before
    result = import_file(open_db(store), "orders", path=export)
    assert (result.inserted, result.updated) == (NEW_ORDERS, UPDATED_ORDERS)
    assert _integrity(store) == ("ok", [])


def test_an_import_killed_at_random_moments_is_all_or_nothing(template, tmp_path):
    """Killed at any moment, the import has happened whole or not at all."""
    export = template[1]
    done = _copy(template[0], tmp_path / "done.db")
    started = time.perf_counter()
    import_file(open_db(done), "orders", path=export)
    duration = time.perf_counter() - started
    after = {t: rows for t, rows in _fingerprint(done).items() if t not in ("import_log", "import_batches")}
    before = _fingerprint(template[0])
    rng = random.Random(20261031)
    outcomes = []
    for k in range(4):
        store = _copy(template[0], tmp_path / f"round{k}.db")
        proc = _start(store, "import", str(export))
        time.sleep(rng.uniform(0.0, 0.9 * duration))
        outcomes.append("finished" if proc.poll() is not None else "killed")
        if outcomes[-1] == "killed":
            _kill(proc)
        assert _integrity(store) == ("ok", [])
        now = _fingerprint(store)
        data = {t: rows for t, rows in now.items() if t not in ("import_log", "import_batches")}
        assert now == before or (data == after and len(now["import_log"]) == 1), outcomes
    assert "killed" in outcomes


def test_an_undo_killed_mid_way_leaves_the_batch_standing(template, store):
    db = open_db(store)
    batch = import_file(db, "orders", path=template[1]).batch_id
    db.conn.close()
    before = _fingerprint(store)
    proc = _start(store, "undo", str(batch), "DELETE FROM orders", 3)  # 500 keys per DELETE: mid-way
    assert _read_line(proc) == "PAUSED"
    _kill(proc)
    assert _integrity(store) == ("ok", [])
    assert _fingerprint(store) == before
    db = open_db(store)
    assert undo_import(db, batch).deleted == NEW_ORDERS
    assert _integrity(store) == ("ok", [])


def test_a_killed_encrypted_backup_leaves_no_copy_behind(store, tmp_path):
    folder = tmp_path / "backups"
    proc = _start(store, "backup", str(folder))
    assert _read_line(proc) == "PAUSED"  # the plaintext snapshot is written, not yet verified nor encrypted
    _kill(proc)
    assert not list(folder.glob("crm-*"))
    assert list(folder.glob(f"{PARTIAL_PREFIX}*"))  # the killed process could not clean up
    path = backup(store, folder, passphrase="a passphrase")
    assert sorted(p.name for p in folder.iterdir()) == [path.name]  # the stale plaintext copy is gone
    assert _integrity(store) == ("ok", [])


def test_an_import_through_the_cli_is_committed_for_other_processes(template, store):
    proc = subprocess.run([CRM, "import", "orders", str(template[1]), "--db", str(store)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT count(*) FROM orders WHERE order_id LIKE 'N%'").fetchone()[0] == NEW_ORDERS
    assert conn.execute("SELECT count(*) FROM import_log").fetchone()[0] == 1


def test_two_imports_at_once_both_land(store, tmp_path):
    db = open_db(store)
    customer = db.execute("SELECT min(customer_id) FROM customers").fetchone()[0]
    db.conn.close()
    files = []
    for k in range(2):
        f = tmp_path / f"orders_{k}.csv"
        f.write_text(ORDERS_HEADER + "".join(f"P{k}-{i},{customer},2026-10-01,5,paid\n" for i in range(2000)))
        files.append(f)
    procs = [subprocess.Popen([CRM, "import", "orders", str(f), "--db", str(store)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for f in files]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert not any("locked" in err for _, err in results)
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT count(*) FROM orders WHERE order_id LIKE 'P_-%'").fetchone()[0] == 4000


# ------------------------------------------------------------------------ read-only, disk full
def _make_read_only(path: Path) -> list[list[str]]:
    """Make the store file read-only for this process; returns the commands that undo it."""
    if os.geteuid() != 0:
        os.chmod(path, 0o400)
        return []
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root without the right to make a file immutable (chattr +i)")
    return [["chattr", "-i", str(path)]]


def test_a_read_only_store_gives_a_plain_message_and_writes_nothing(store, template, tmp_path):
    before = _fingerprint(store)
    undo = _make_read_only(store)
    try:
        proc = subprocess.run([CRM, "import", "orders", str(template[1]), "--db", str(store)],
                              capture_output=True, text=True)
        status = subprocess.run([CRM, "status", "--db", str(store)], capture_output=True, text=True)
        copy = subprocess.run([CRM, "backup", "--db", str(store), "--to", str(tmp_path / "bk")],
                              capture_output=True, text=True)
    finally:
        for command in undo:
            subprocess.run(command, check=True)
        os.chmod(store, 0o600)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"orders_export.csv: nothing was imported: {store}: the store is read-only" in proc.stderr
    assert status.returncode == 0, status.stderr  # reading still works
    assert copy.returncode == 0, copy.stderr  # and so does a backup
    assert _fingerprint(store) == before
    assert _integrity(store) == ("ok", [])


def test_opening_never_makes_a_read_only_store_writable(store):
    os.chmod(store, 0o400)
    open_db(store).conn.close()
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o400
    os.chmod(store, 0o644)
    open_db(store).conn.close()
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600  # group and other bits are taken away


def test_wal_side_files_are_owner_only_too(store):
    os.chmod(store, 0o644)  # e.g. copied in by another tool
    db = open_db(store)
    db.table("customers").insert({"customer_id": "X1"})
    for side in ("-wal", "-shm"):
        assert stat.S_IMODE(os.stat(f"{store}{side}").st_mode) == 0o600, side


def test_a_query_only_connection_refuses_imports_and_undos_plainly(store, template):
    db = open_db(store)
    batch = import_file(db, "orders", path=template[1]).batch_id
    before = _fingerprint(store)
    db.execute("PRAGMA query_only = ON")
    with pytest.raises(ImportRejected, match="the store is read-only"):
        import_file(db, "orders", path=template[1])
    with pytest.raises(UndoError, match=f"batch {batch} was not undone: .*the store is read-only"):
        undo_import(db, batch)
    assert _fingerprint(store) == before


def test_a_full_disk_rejects_the_import_whole_and_the_next_one_succeeds(store, template):
    db = open_db(store)
    before = _fingerprint(store)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 5}")  # the disk fills up a few pages in
    with pytest.raises(ImportRejected, match=r"nothing was imported: .*the disk is full; nothing was written"):
        import_file(db, "orders", path=template[1])
    assert not db.conn.in_transaction
    assert _fingerprint(store) == before
    assert _integrity(store) == ("ok", [])
    db.execute("PRAGMA max_page_count = 1073741823")
    assert import_file(db, "orders", path=template[1]).inserted == NEW_ORDERS


def test_a_full_disk_during_a_backup_leaves_no_backup_file(store, tmp_path, monkeypatch):
    import crm_helpers.store.backup as backup_module

    def full(source: Path, dest: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup_module, "_snapshot", full)
    with pytest.raises(BackupError, match="cannot write the backup: No space left on device"):
        backup(store, tmp_path / "bk")
    assert list((tmp_path / "bk").iterdir()) == []


# ------------------------------------------------------------------------ files not read whole
@pytest.fixture
def no_unpacking(monkeypatch):
    """Fail the test if anything decompresses a workbook member or hands the file to openpyxl."""
    import openpyxl

    def refuse(*args, **kwargs):
        raise AssertionError("the workbook was read")

    monkeypatch.setattr(zipfile.ZipExtFile, "read", refuse)
    monkeypatch.setattr(openpyxl, "load_workbook", refuse)


def test_an_xlsx_compression_bomb_is_refused_before_it_is_unpacked(tmp_path, no_unpacking):
    bomb = tmp_path / "orders.xlsx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (20 * 2**20))  # 20 MB of zeros -> ~20 kB
    assert bomb.stat().st_size < 100_000
    db = sqlite_utils.Database(memory=True)
    migrate_db(db)
    with pytest.raises(ImportRejected, match=r"orders.xlsx: the workbook unpacks to 20 MB .*compression bomb"):
        import_file(db, "orders", path=bomb)


def test_an_oversized_xlsx_is_refused_by_its_size_alone(tmp_path, no_unpacking):
    big = tmp_path / "orders.xlsx"
    with open(big, "wb") as handle:  # sparse: takes no disk space
        handle.truncate(MAX_XLSX_BYTES + 1)
    db = sqlite_utils.Database(memory=True)
    migrate_db(db)
    with pytest.raises(ImportRejected, match="orders.xlsx: the workbook is larger than 50 MB; export it as CSV"):
        import_file(db, "orders", path=big)


def test_a_damaged_xlsx_is_a_plain_rejection(tmp_path):
    bad = tmp_path / "orders.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really a zip file" * 10)
    db = sqlite_utils.Database(memory=True)
    migrate_db(db)
    with pytest.raises(ImportRejected, match="orders.xlsx: not a valid .xlsx workbook"):
        import_file(db, "orders", path=bad)


# ------------------------------------------------------------------------------ SQL injection
class RecordingConnection(sqlite3.Connection):
    """Keeps the text of every SQL statement the code sends, before values are bound."""

    statements: list[str]

    def execute(self, sql, *args):  # type: ignore[override]
        self.statements.append(sql)
        return super().execute(sql, *args)

    def executemany(self, sql, *args):  # type: ignore[override]
        self.statements.append(sql)
        return super().executemany(sql, *args)

    def executescript(self, sql):  # type: ignore[override]
        self.statements.append(sql)
        return super().executescript(sql)

    def cursor(self, *args, **kwargs):  # type: ignore[override]
        raise AssertionError("the package runs SQL through the connection only")


MARK = "Zq9Xv"
EVIL = f"x'); DROP TABLE customers; --{MARK}"


def test_values_from_files_and_callers_only_travel_as_parameters(tmp_path):
    conn = sqlite3.connect(":memory:", factory=RecordingConnection)
    conn.statements = []
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA foreign_keys = ON")
    migrate_db(db)
    conn.statements.clear()
    customers = tmp_path / "customers.csv"
    customers.write_text(f'customer_id,name,email,"notes {MARK}) VALUES (1); --",city\n'
                         f'"C1{EVIL}","{EVIL}",a{MARK.lower()}@example.com,x,"{EVIL}"\n'
                         f'C2,"{EVIL}",not-an-email{MARK},x,\n', encoding="utf-8")
    result = import_file(db, "customers", path=customers, skip_bad_rows=True)
    assert (result.inserted, result.rejected) == (1, 1)
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS_HEADER + f'"O{EVIL}","C1{EVIL}",2026-01-01,5,paid\n', encoding="utf-8")
    batch = import_file(db, "orders", path=orders).batch_id
    entry.log_interaction(db, f"C1{EVIL}", channel="email", subject=EVIL, occurred_at="2026-01-02 10:00:00")
    list_batches(db)
    with pytest.raises(UndoError):
        undo_import(db, 1)  # the customer has orders now: refused, after looking them up by key
    undo_import(db, batch)
    assert db.table("customers").get(f"C1{EVIL}")["city"] == EVIL  # stored as written, quotes and all
    forget(db, f"a{MARK.lower()}@example.com")
    leaked = [s for s in conn.statements if MARK.lower() in s.lower()]
    assert not leaked, leaked
    assert db.table("interactions").count == 1 and set(TABLES) <= set(db.table_names())


def test_names_in_sql_come_only_from_the_schema(tmp_path):
    db = sqlite_utils.Database(memory=True)
    migrate_db(db)
    f = tmp_path / "c.csv"
    f.write_text("customer_id,name\nC1,Ada\n", encoding="utf-8")
    with pytest.raises(ImportRejected, match="unknown table 'customers; DROP TABLE orders'"):
        import_file(db, "customers; DROP TABLE orders", path=f)
    with pytest.raises(ImportRejected, match=r"--map target name = 'x', email is not a column of customers"):
        import_file(db, "customers", path=f, mapping={"name": "name = 'x', email"})
    proc = subprocess.run([CRM, "import", "customers", str(f), "--db", str(tmp_path / "crm.db"),
                           "--map", "name=shoe_size"], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "--map target shoe_size is not a column of customers; valid: customer_id, name" in proc.stderr
    assert db.table("customers").count == 0 and set(TABLES) <= set(db.table_names())
