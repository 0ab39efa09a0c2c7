"""Clear refusals: nothing of a refused file quoted, a NUL byte refused wherever it is, UTF-16 without
a byte-order mark read, a repeated header named, a store of a newer workbook never written, a passphrase
prompt without a terminal ended in one line, a long list of ignored columns cut."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_helpers.cli import main
from crm_helpers.ingest import entry
from crm_helpers.ingest.export_import import import_export
from crm_helpers.ingest.inbox import import_inbox
from crm_helpers.ingest.table_import import ImportRejected, import_file
from crm_helpers.store.backup import backup
from crm_helpers.store.connection import SCHEMA_VERSION, NewerStoreError, memory_db, open_db, table_counts

STRIPE = Path(__file__).parent / "fixtures" / "sources" / "stripe_customers.csv"
SECRET = "root:$6$Zq7SECRETSALT$h4sh3dPa55w0rd:19700:0:99999:7:::"
NEWER = "made by a newer version of the workbook: update it (git pull && make setup)"


def _crm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``crm`` as a cron job runs it: another process, no terminal, nothing on standard input."""
    environment = {k: v for k, v in os.environ.items() if k != "CRM_BACKUP_PASSPHRASE"} | (env or {})
    return subprocess.run([sys.executable, "-m", "crm_helpers.cli", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, start_new_session=True, timeout=120, env=environment)


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# ----------------------------------------------------------------- nothing of a refused file quoted
def test_an_inbox_link_to_a_secret_file_is_refused_without_quoting_it(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(f"{SECRET}\ndaemon:*:19700:0:99999:7:::\n", encoding="utf-8")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "customers.csv").symlink_to(secret)
    (inbox / "customers_key.csv").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    binary = bytes(range(256)) * 16
    (inbox / "customers_photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + binary)

    results = import_inbox(open_db(tmp_path / "crm.db"), inbox)  # page 01 shows these messages
    assert list(results["status"]) == ["rejected"] * 3
    shown = " ".join(results["message"])
    for quoted in ("SECRET", "root", "daemon", "BEGIN", "b3BlbnNz", "PNG"):
        assert quoted not in shown
    assert "not a row of column names (its content is not shown)" in shown and "binary file" in shown
    for args in (["customers", str(inbox / "customers.csv")], [str(inbox / "customers.csv")]):
        done = _invoke("import", "--db", str(tmp_path / "crm.db"), *args)
        assert done.exit_code == 1 and "SECRET" not in done.output and "root" not in done.output


def test_the_columns_of_a_real_table_are_still_named_when_a_required_one_is_missing(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("Kunde,Stadt\nAda,Berlin\n", encoding="utf-8")
    with pytest.raises(ImportRejected, match="missing required column.*the file's columns: Kunde, Stadt"):
        import_file(memory_db(), "customers", path=path)


# ------------------------------------------------------------------------------ NUL bytes
def _customers_with_nul(tmp_path: Path, *, at_row: int) -> Path:
    lines = ["customer_id,name,email"] + [f"C{i},Person number {i},p{i}@example.com" for i in range(2, 401)]
    lines[at_row - 1] = f"C{at_row},Mal\x00lory,mallory@example.com"
    path = tmp_path / "customers.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    assert path.read_bytes().index(b"\x00") > 4096
    return path


def test_a_nul_byte_after_the_first_4_kb_refuses_its_row_naming_file_row_and_column(tmp_path):
    path = _customers_with_nul(tmp_path, at_row=300)
    db = memory_db()
    with pytest.raises(ImportRejected) as refused:
        import_file(db, "customers", path=path)
    assert "customers.csv" in str(refused.value)
    assert "row 300, column name: 'Mallory' holds a NUL byte" in str(refused.value)
    assert table_counts(db)["customers"] == 0

    result = import_file(db, "customers", path=path, skip_bad_rows=True)
    assert result.inserted == 398 and result.rejected == 1
    assert db.execute("SELECT count(*) FROM customers WHERE instr(name, char(0)) OR name LIKE 'Mal%'").fetchone() == (0,)


def test_a_nul_byte_in_a_known_tools_export_refuses_its_row_in_any_column(tmp_path):
    lines = STRIPE.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("false", "fal\x00se")  # a column the import does not even read
    path = tmp_path / "stripe_customers.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ImportRejected, match="row 3, column Delinquent: 'false' holds a NUL byte"):
        import_export(memory_db(), path)
    db = memory_db()
    import_export(db, path, skip_bad_rows=True)
    assert [r[0] for r in db.execute("SELECT name FROM customers")] == ["Alice Martin"]


def test_a_header_with_a_nul_byte_refuses_the_file(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes(b"customer_id,na\x00me\nC1,Ada\n")
    with pytest.raises(ImportRejected, match=r"customers.csv: row 1 \(the header\), column 2: holds a NUL byte"):
        import_file(memory_db(), "customers", path=path)


# ------------------------------------------------------------------------ UTF-16 without BOM
@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read(tmp_path, codec):
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id\tname\temail\nC1\t王芳\twang@example.cn\nC2\tZoé Peeters\tzoe@example.org\n"
                     .encode(codec))
    assert not path.read_bytes().startswith((b"\xff\xfe", b"\xfe\xff"))
    db = memory_db()
    assert import_file(db, "customers", path=path).inserted == 2
    assert [r[0] for r in db.execute("SELECT name FROM customers ORDER BY customer_id")] == ["王芳", "Zoé Peeters"]


# ------------------------------------------------------------------------------ repeated headers
def test_a_repeated_header_is_refused_naming_the_columns(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,name,Email,city,email\nC1,Ada,ada@example.com,Paris,ada@work.example\n")
    db = memory_db()
    with pytest.raises(ImportRejected, match=r"customers.csv: the header names 'Email' twice \(columns 3 and 5\)"):
        import_file(db, "customers", path=path)
    assert table_counts(db)["customers"] == 0

    lines = STRIPE.read_text(encoding="utf-8").splitlines()
    export = tmp_path / "stripe.csv"
    export.write_text("\n".join([lines[0] + ",Email"] + [line + ",other@example.com" for line in lines[1:]]) + "\n")
    with pytest.raises(ImportRejected, match=r"stripe.csv: the header names 'Email' twice \(columns 3 and 14\)"):
        import_export(db, export)


# ------------------------------------------------------------------------ long lists cut
def test_five_thousand_ignored_columns_are_cut_after_ten_with_a_count(tmp_path):
    path = tmp_path / "customers.csv"
    extra = [f"extra{i}" for i in range(4997)]
    path.write_text(",".join(["customer_id", "name", "email", *extra]) + "\n"
                    + ",".join(["C1", "Ada", "ada@example.com", *["x"] * 4997]) + "\n")
    summary = import_file(memory_db(), "customers", path=path).summary()
    assert "ignored columns: extra0, extra1, extra2, extra3, extra4, extra5, extra6, extra7, extra8, extra9 " \
           "... and 4,987 more" in summary
    assert "extra10" not in summary and len(summary) < 400


# ---------------------------------------------------------------------- a newer workbook's store
@pytest.fixture
def newer_store(tmp_path) -> Path:
    path = tmp_path / "crm.db"
    db = open_db(path)
    entry.add_customer(db, "C1", name="Ada", email="ada@example.com")
    import_file(db, "customers", path=_write(tmp_path / "more.csv", "customer_id,name\nC2,Bo\n"))
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.conn.close()
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _content(path: Path) -> list:
    conn = sqlite3.connect(path)
    try:
        return [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("customers", "import_log", "import_batches", "segment_snapshots")]
    finally:
        conn.close()


def test_a_store_of_a_newer_workbook_is_read_with_a_warning_and_never_written(newer_store, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_INBOX", str(tmp_path / "inbox"))
    before = _content(newer_store)
    status = CliRunner().invoke(main, ["status", "--db", str(newer_store)], catch_exceptions=False)
    assert status.exit_code == 0 and "customers" in status.stdout
    assert f"Warning: crm.db: this store was {NEWER}" in status.stderr

    db = str(newer_store)
    new_file = str(_write(tmp_path / "new.csv", "customer_id,name\nC3,Cy\n"))
    for args in (["import", "--db", db, "customers", new_file], ["import", "--db", db, new_file],
                 ["undo-import", "--db", db, "1"], ["forget", "--db", db, "C1", "--yes"],
                 ["demo", "--db", db, "--replace", "--customers", "20", "--months", "3"],
                 ["report", "--db", db, "--month", "2026-10"], ["init", "--db", db]):
        done = CliRunner().invoke(main, args, catch_exceptions=False)
        assert done.exit_code == 1, args
        assert done.output.startswith("Error: crm.db: this store was " + NEWER), (args, done.output)
    assert _content(newer_store) == before

    opened = open_db(newer_store)  # a desk or notebook opened on it
    with pytest.raises(NewerStoreError, match="update it"):
        entry.add_customer(opened, "C4", name="Dee")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _write(inbox / "customers.csv", "customer_id,name\nC5,Eve\n")
    results = import_inbox(opened, inbox)
    assert list(results["status"]) == ["rejected"] and NEWER in results["message"][0]
    assert _content(newer_store) == before


# ----------------------------------------------------------------- a passphrase without a terminal
def test_a_passphrase_prompt_without_a_terminal_ends_in_one_error_line(tmp_path):
    store = tmp_path / "crm.db"
    entry.add_customer(open_db(store), "C1", name="Ada")
    sealed = backup(store, passphrase="correct horse")
    expected = ("Error: a passphrase is needed and there is no terminal to ask it: set CRM_BACKUP_PASSPHRASE "
                "(for example `read -rs CRM_BACKUP_PASSPHRASE && export CRM_BACKUP_PASSPHRASE`) and run the command "
                "again")
    for args in (["backup", "--encrypt"], ["restore", str(sealed)], ["forget", "--purge-backups"]):
        done = _crm(*args, "--db", str(store))
        assert done.returncode == 1, args
        assert done.stderr.splitlines() == [expected] and done.stdout == "", (args, done.stderr)
    assert _crm("backup", "--encrypt", "--db", str(store), env={"CRM_BACKUP_PASSPHRASE": "x"}).returncode == 0
