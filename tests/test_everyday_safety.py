"""What the owner does out of habit neither loses data nor leaks it, and never shows a traceback.

- `make demo` / `crm demo` refuse a store that holds anything; FORCE=1 / --replace first takes a
  verified backup that holds the old data.
- Every file a command can leave in data/ is git-ignored and owner-only.
- Every command, given a folder, a missing file, an unreadable file, a locked store or a full
  disk, ends with one plain "Error: …" line.
- `crm report --only` keeps the month's other pages in the index.
- The inbox reports each file like an import, and cleans up a stale rejects file.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from crm_helpers.store import config
from crm_helpers.store.backup import verify
from crm_helpers.cli import main
from crm_helpers.ingest.inbox import import_inbox, rejected_rows
from crm_helpers.store.periods import parse_month
from crm_helpers.report.pages import read_summary
from crm_helpers.report.runner import render_report
from crm_helpers.store.connection import open_db, table_counts

CRM = str(Path(sys.executable).with_name("crm"))
CUSTOMERS = "customer_id,name,email\nC1,Ann Lee,ann@example.com\nC2,Bo Chan,bo@example.com\n"
ORDERS_WITH_A_BAD_ROW = ("order_id,customer_id,order_date,amount,status\n"
                         "O1,C1,2026-10-02,10,paid\nO2,C1,2026-10-03,12,paid\nO3,C1,2026-10-04,not money,paid\n")


def _crm(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([CRM, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, **kwargs)


def _store_with_customers(path: Path) -> Path:
    """A store at ``path`` holding two customers, imported from an export outside its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    export = path.parent.parent / f"{path.parent.name}-customers.csv"
    export.write_text(CUSTOMERS, encoding="utf-8")
    assert _crm("import", "customers", str(export), "--db", str(path)).returncode == 0
    return path


# ------------------------------------------------------------------------------ make demo
@pytest.mark.slow
def test_make_demo_refuses_a_store_with_data_and_force_backs_it_up_first(tmp_path):
    store = _store_with_customers(tmp_path / "data" / "crm.db")
    make = ["make", "-s", "-C", str(config.PROJECT_ROOT), f"DB={store}"]
    refused = subprocess.run([*make, "demo"], capture_output=True, text=True)
    assert refused.returncode != 0
    assert "already holds data (2 customers)" in refused.stderr and "FORCE=1" in refused.stderr
    assert table_counts(open_db(store))["customers"] == 2  # nothing deleted
    assert not (tmp_path / "data" / "backups").exists()

    replaced = subprocess.run([*make, "demo", "FORCE=1"], capture_output=True, text=True)
    assert replaced.returncode == 0, replaced.stderr
    backups = list((tmp_path / "data" / "backups").glob("crm-*.db"))
    assert len(backups) == 1 and str(backups[0].name) in replaced.stdout
    verify(backups[0])
    saved = sqlite3.connect(backups[0])
    assert saved.execute("SELECT name FROM customers ORDER BY customer_id").fetchall() == [("Ann Lee",), ("Bo Chan",)]
    counts = table_counts(open_db(store))
    assert counts["orders"] > 1000 and "ann@example.com" not in store.read_bytes().decode("latin-1")


def test_crm_demo_refuses_any_data_not_only_orders(tmp_path):
    store = _store_with_customers(tmp_path / "crm.db")
    result = CliRunner().invoke(main, ["demo", "--db", str(store), "--customers", "20", "--months", "3"])
    assert result.exit_code == 1 and "already holds data (2 customers)" in result.output
    assert table_counts(open_db(store))["orders"] == 0


# ------------------------------------------------------------------- what data/ may hold
def _git_ignored(paths: list[str]) -> set[str]:
    proc = subprocess.run(["git", "-C", str(config.PROJECT_ROOT), "check-ignore", "--no-index", "--stdin"],
                          input="\n".join(paths), capture_output=True, text=True)
    return set(proc.stdout.split())


@pytest.mark.slow
def test_every_file_a_command_leaves_in_data_is_git_ignored_and_owner_only(tmp_path):
    if shutil.which("git") is None or not (config.PROJECT_ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the project")
    data = tmp_path / "data"
    store = _store_with_customers(data / "crm.db")
    inbox = data / "inbox"
    inbox.mkdir()
    (inbox / "orders_2026-10.csv").write_text(ORDERS_WITH_A_BAD_ROW, encoding="utf-8")
    env = {"CRM_BACKUP_PASSPHRASE": "correct horse battery staple", "CRM_INBOX": str(inbox)}
    steps = [
        ["import", "orders", str(inbox / "orders_2026-10.csv"), "--skip-bad-rows"],  # a rejects file
        ["backup"], ["backup", "--encrypt"],  # backups, plain and encrypted
        ["status"],
    ]
    for args in steps:
        proc = _crm(*args, "--db", str(store), env=env)
        assert proc.returncode == 0, (args, proc.stderr)
    backup = sorted((data / "backups").glob("crm-*.db"))[0]
    for args in (["restore", str(backup)], ["forget", "--yes", "bo@example.com"],
                 ["demo", "--replace", "--customers", "30", "--months", "3"]):
        proc = _crm(*args, "--db", str(store), env=env)
        assert proc.returncode == 0, (args, proc.stderr)
    left = sorted(p for p in data.rglob("*") if p.is_file() and p.name != ".gitkeep")
    names = [str(Path("data") / p.relative_to(data)) for p in left]
    assert any(".replaced-" in n for n in names) and any(n.endswith(".db.enc") for n in names)
    assert any(n.endswith(".rejects.csv") for n in names)
    assert sorted(set(names) - _git_ignored(names)) == []
    loose = [str(p.relative_to(data)) for p in left if p.stat().st_mode & 0o077 and "inbox" not in p.parts
             or p.name.endswith(".rejects.csv") and p.stat().st_mode & 0o077]
    assert loose == []
    for folder in (p for p in data.rglob("*") if p.is_dir() and p.name != "inbox"):
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, folder


# ------------------------------------------------------------------- no traceback, ever
@pytest.fixture
def paths(tmp_path):
    """A real store, a folder, a missing file and a CSV that this user may not read."""
    store = _store_with_customers(tmp_path / "store" / "crm.db")
    folder = tmp_path / "a folder"
    folder.mkdir()
    unreadable = tmp_path / "unreadable.csv"
    unreadable.write_text(CUSTOMERS, encoding="utf-8")
    unreadable.chmod(0)
    return {"store": store, "folder": folder, "missing": tmp_path / "missing.csv", "unreadable": unreadable}


def _commands(store: Path, path: Path) -> list[list[str]]:
    """Each command with ``path`` where the user types a file or folder, on the store ``store``."""
    db = ["--db", str(store)]
    return [
        ["import", "customers", str(path), *db], ["restore", str(path), *db],
        ["export", "segment", "At Risk", "--to", str(path), *db], ["backup", "--to", str(path), *db],
        ["init", "--db", str(path)], ["status", "--db", str(path)], ["demo", "--db", str(path)],
        ["report", "--db", str(path)], ["forget", "--yes", "C1", "--db", str(path)],
        ["undo-import", "1", "--db", str(path)],
    ]


def _assert_plain(result, args) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, result.output, repr(result.exception))
    assert "Traceback" not in result.output, args
    if result.exit_code:
        assert result.output.strip().splitlines()[-1].startswith("Error:"), (args, result.output)


@pytest.mark.parametrize("kind", ["folder", "missing", "unreadable"])
def test_no_command_shows_a_traceback_for_a_bad_path(paths, kind, monkeypatch):
    target = paths[kind]
    if kind == "unreadable" and os.geteuid() == 0:
        # root reads any file: make reading it fail as it does for the owner's own user
        real_open = open

        def guarded(file, *args, **kwargs):
            if str(file) == str(target):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr("builtins.open", guarded)
        monkeypatch.setattr("io.open", guarded)
    runner = CliRunner()
    for args in _commands(paths["store"], target):
        result = runner.invoke(main, args)
        _assert_plain(result, args)
    message = runner.invoke(main, ["import", "customers", str(paths["folder"]), "--db", str(paths["store"])]).output
    assert "is a folder, not a file" in message


def test_no_command_shows_a_traceback_on_a_locked_store(paths, monkeypatch):
    monkeypatch.setattr("crm_helpers.store.connection.BUSY_TIMEOUT_MS", 50)
    store = paths["store"]
    (store.parent / "more.csv").write_text("customer_id,name\nC3,Cy\n", encoding="utf-8")
    holder = sqlite3.connect(store, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    try:
        runner = CliRunner()
        locked = runner.invoke(main, ["import", "customers", str(store.parent / "more.csv"), "--db", str(store)])
        assert locked.exit_code == 1 and "busy" in locked.output and "try again" in locked.output
        for args in _commands(store, store.parent / "more.csv"):
            _assert_plain(runner.invoke(main, args), args)
    finally:
        holder.rollback()
        holder.close()
    assert table_counts(open_db(store))["customers"] == 2


def _small_disk() -> None:
    """Child process: files may not grow past 150 kB, as on a full disk (Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))


@pytest.mark.slow
def test_no_command_shows_a_traceback_on_a_full_disk(tmp_path):
    store = _store_with_customers(tmp_path / "crm.db")
    big = tmp_path / "customers_big.csv"
    big.write_text("customer_id,name,email\n" + "".join(f"D{i},Name {i},d{i}@example.com\n" for i in range(20_000)),
                   encoding="utf-8")
    for args in (["import", "customers", str(big)], ["demo", "--replace"], ["backup"],
                 ["demo", "--db", str(tmp_path / "new.db")]):
        proc = subprocess.run([CRM, *args, *([] if "--db" in args else ["--db", str(store)])],
                              capture_output=True, text=True, preexec_fn=_small_disk)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.strip().startswith("Error:"), (args, proc.stderr)
        assert "full" in proc.stderr or "disk" in proc.stderr, proc.stderr
    assert table_counts(open_db(store))["customers"] == 2  # nothing half-written


def test_messages_say_what_is_wrong_and_what_to_do(paths, tmp_path):
    runner = CliRunner()
    db = ["--db", str(paths["store"])]
    month = runner.invoke(main, ["report", "--month", "2026-13", *db]).output
    assert "there is no month 13" in month
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a store", encoding="utf-8")
    restore = runner.invoke(main, ["restore", str(garbage), *db]).output
    assert "garbage.db: not a CRM backup" in restore and "restore.db" not in restore
    dates = tmp_path / "orders.csv"
    dates.write_text("order_id,customer_id,order_date,amount,status\nO1,C1,2026-10-02,5,paid\n"
                     "O2,C1,03/04/2026,10,paid\n", encoding="utf-8")
    ambiguous = runner.invoke(main, ["import", "orders", str(dates), *db]).output
    assert "row 3, column order_date: '03/04/2026' could be 3 April or 4 March" in ambiguous
    assert "--dayfirst" in ambiguous and "--monthfirst" in ambiguous
    consent = tmp_path / "customers_more.csv"
    consent.write_text("customer_id,name,Consent\nC5,Eve,yes\n", encoding="utf-8")
    assert "--map 'Consent=consent_marketing'" in runner.invoke(main, ["import", "customers", str(consent), *db]).output
    unknown = tmp_path / "orders_unknown.csv"
    unknown.write_text("order_id,customer_id,order_date,amount,status\nO9,C99,2026-10-02,5,paid\n", encoding="utf-8")
    assert "--create-missing-customers" in runner.invoke(main, ["import", "orders", str(unknown), *db]).output


# --------------------------------------------------------------------------- report --only
def _notebook(path: Path, code: str) -> None:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "crm-workbook", "display_name": "CRM", "language": "python"}
    params = new_code_cell('db_path = ""\nperiod_start = ""\nperiod_end = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell("# Test"), params, new_code_cell(code)]
    nbformat.write(nb, str(path))


@pytest.mark.slow
def test_only_keeps_the_other_pages_and_their_figures_in_the_index(demo_db_path, tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for n, value in (("01_first", 1), ("02_second", 2), ("03_third", 3)):
        _notebook(notebooks / f"{n}.ipynb",
                  f"from crm_helpers.report import headlines\nheadlines.record('figure_{n[:2]}', {value}, label='Figure {n}')")
    out, month = tmp_path / "out", parse_month("2026-10")
    render_report(demo_db_path, month, out_dir=out, notebooks_dir=notebooks, jobs=1, progress=False)
    result = render_report(demo_db_path, month, out_dir=out, notebooks_dir=notebooks, only=["02"], jobs=1,
                           progress=False)
    assert result.ok and [r.name for r in result.runs if r.rendered] == ["02_second"]
    index = (out / "index.html").read_text(encoding="utf-8")
    for n in ("01_first", "02_second", "03_third"):
        assert f'href="{n}.html"' in index and f"Figure {n}" in index
    assert "rendered in an earlier run" in index


# ----------------------------------------------------------------------------------- inbox
def test_the_inbox_reports_each_file_like_an_import_and_cleans_stale_rejects(tmp_path):
    db = open_db(_store_with_customers(tmp_path / "crm.db"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    orders = inbox / "orders_2026-10.csv"
    orders.write_text(ORDERS_WITH_A_BAD_ROW, encoding="utf-8")
    first = import_inbox(db, inbox).iloc[0]
    assert (first.status, first.inserted, first.rejected) == ("imported", 2, 1)
    assert first.rejects_file == "orders_2026-10.rejects.csv" and (inbox / first.rejects_file).exists()
    assert "2 inserted" in first.message and "1 rejected" in first.message
    bad = rejected_rows(import_inbox(db, inbox), inbox)
    assert bad.to_dict(orient="records") == [
        {"file": "orders_2026-10", "row": "4", "reasons": "amount: 'not money' not a number"}]

    again = import_inbox(db, inbox).iloc[0]  # next month, the same file still in the inbox
    assert again.status == "already imported" and (again.inserted, again.rejected) == (2, 1)
    assert "2 inserted" in again.message and "1 rejected" in again.message

    orders.write_text(ORDERS_WITH_A_BAD_ROW.replace("not money", "14"), encoding="utf-8")  # the owner fixed it
    fixed = import_inbox(db, inbox).iloc[0]
    assert (fixed.status, fixed.rejected, fixed.rejects_file) == ("imported", 0, "")
    assert not (inbox / "orders_2026-10.rejects.csv").exists()


@pytest.mark.slow
def test_crm_report_prints_what_the_inbox_did(demo_db_copy, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    customer = open_db(demo_db_copy).execute("SELECT customer_id FROM customers LIMIT 1").fetchone()[0]
    (inbox / "orders_late.csv").write_text(ORDERS_WITH_A_BAD_ROW.replace("C1", customer).replace("O", "LATE-"),
                                           encoding="utf-8")
    proc = _crm("report", "--db", str(demo_db_copy), "--month", "2026-10", "--only", "01", "--out",
                str(tmp_path / "out"), env={"CRM_INBOX": str(inbox)})
    assert proc.returncode == 0, proc.stderr
    assert "inbox: orders_late.csv -> orders: 2 inserted" in proc.stdout and "1 rejected" in proc.stdout
    executed = nbformat.read(str(tmp_path / "out" / "01_import_and_entry.ipynb"), as_version=4)
    assert [r["rejected"] for r in read_summary(executed)] == [1]
    page = (tmp_path / "out" / "01_import_and_entry.html").read_text(encoding="utf-8")
    assert "not a number" in page and "orders_late.rejects.csv" in page
