"""Erasure: personal data gone everywhere, amounts kept, erasure logged without the data."""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from crm_helpers.demo import generate_demo, write_demo
from crm_helpers.store.forget import ForgetError, forget
from crm_helpers.ingest.table_import import import_file
from crm_helpers.store.undo import unpack
from crm_helpers.store.schema import personal_columns
from crm_helpers.store.connection import open_db


@pytest.fixture
def small_store(tmp_path):
    db = open_db(tmp_path / "crm.db")
    write_demo(db, generate_demo(customers=60, months=12, seed=3, end="2026-10"))
    db.table("segment_snapshots").insert({"month": "2026-10", "customer_id": "C00002", "segment": "Champions",
                                          "r_score": 5, "f_score": 5, "m_score": 5})
    return db


def _dump_text(db) -> str:
    parts = []
    for table in db.table_names():
        for row in db.execute(f"SELECT * FROM [{table}]").fetchall():
            parts.append("|".join("" if v is None else str(v) for v in row))
    return "\n".join(parts)


def test_forget_by_email_erases_everywhere_and_keeps_revenue(small_store, tmp_path):
    db = small_store
    cid, email, name, phone = db.execute("SELECT customer_id, email, name, phone FROM customers WHERE customer_id = 'C00002'").fetchone()
    comments = [r[0] for r in db.execute("SELECT comment FROM feedback WHERE customer_id = ? AND comment IS NOT NULL", [cid])]
    revenue = db.execute("SELECT sum(amount), count(*) FROM orders").fetchone()
    names_before = db.execute("SELECT count(*) FROM customers WHERE name = ?", [name]).fetchone()[0]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "customers.rejects.csv").write_text(f"row,email,reason\n3,{email},bad\n4,other@example.com,bad\n")
    (inbox / "customers_export.csv").write_text(f"email\n{email}\n")

    report = forget(db, email.upper(), inbox=inbox)

    text = _dump_text(db)
    for value in (cid, email, phone):  # unique to the person (names and comment templates may repeat)
        assert value not in text
    assert db.execute("SELECT count(*) FROM customers WHERE name = ?", [name]).fetchone()[0] == names_before - 1
    assert db.execute("SELECT count(*) FROM feedback WHERE customer_id = ? AND comment IS NOT NULL",
                      [report.pseudonym]).fetchone()[0] == 0
    assert db.execute("SELECT sum(amount), count(*) FROM orders").fetchone() == revenue
    assert db.execute("SELECT count(*) FROM orders WHERE customer_id = ?", [report.pseudonym]).fetchone()[0] > 0
    assert db.execute("SELECT segment FROM segment_snapshots WHERE customer_id = ?", [report.pseudonym]).fetchone()
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    rejects = (inbox / "customers.rejects.csv").read_text()
    assert email not in rejects and "other@example.com" in rejects
    assert report.inbox_files_mentioning == ["customers_export.csv"]
    log = db.execute("SELECT * FROM erasure_log").fetchall()
    assert len(log) == 1 and email not in str(log) and name not in str(log)


def test_personal_columns_of_the_pseudonym_are_empty(small_store):
    report = forget(small_store, "C00005")
    for table, cols in personal_columns().items():
        for col in cols:
            n = small_store.execute(
                f"SELECT count(*) FROM {table} WHERE customer_id = ? AND {col} IS NOT NULL", [report.pseudonym]
            ).fetchone()[0]
            assert n == 0, (table, col)


def test_unknown_person_is_a_clear_error_and_changes_nothing(small_store):
    before = _dump_text(small_store)
    with pytest.raises(ForgetError, match="no customer"):
        forget(small_store, "nobody@example.com")
    assert _dump_text(small_store) == before


def test_import_bookkeeping_and_rejects_files_outside_the_inbox_are_erased(small_store, tmp_path):
    """An import kept the person's previous and written rows (for undo) and wrote a rejects file
    beside its input, outside the inbox: both must lose the person too."""
    db = small_store
    cid, email, phone = db.execute("SELECT customer_id, email, phone FROM customers WHERE customer_id = 'C00002'").fetchone()
    other = db.execute("SELECT email FROM customers WHERE customer_id = 'C00003'").fetchone()[0]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    export = downloads / "customers_update.csv"
    export.write_text("customer_id,name,email,phone,consent_marketing\n"
                      f"{cid},Renamed Person,{email},+41 79 555 01 02,yes\n"
                      f"{cid},Renamed Person,{email.upper()},+41 79 555 01 02,maybe\n"
                      f"C00003,Someone Else,{other},,yes\n"
                      "C00004,Third Person,,,perhaps\n", encoding="utf-8")
    result = import_file(db, "customers", path=export, skip_bad_rows=True)
    assert result.updated == 2 and result.rejected == 2

    report = forget(db, cid)

    blobs = db.execute("SELECT inserted_keys, previous_rows, written_rows FROM import_batches").fetchall()
    text = "\n".join(unpack(b).__repr__() for row in blobs for b in row)
    for value in (cid, email, phone, "Renamed Person", "+41 79 555 01 02"):
        assert value not in text, value
    assert report.pseudonym in text and other in text  # the batch still holds the other rows, for undo
    rejects = result.rejects_path.read_text(encoding="utf-8-sig")
    assert cid not in rejects and email.lower() not in rejects.lower() and "C00004" in rejects
    assert str(result.rejects_path.resolve()) in report.reject_files_cleaned
    assert stat.S_IMODE(os.stat(result.rejects_path).st_mode) == 0o600


def test_a_short_id_does_not_erase_rows_of_longer_ids_in_rejects_files(small_store, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    small_store.table("customers").insert({"customer_id": "C1", "name": "Zed Short"})
    (inbox / "orders.rejects.csv").write_text("row,reasons,customer_id\n2,x,C1\n3,x,C10\n4,x,c1\n", encoding="utf-8")
    forget(small_store, "C1", inbox=inbox)
    assert (inbox / "orders.rejects.csv").read_text(encoding="utf-8-sig").splitlines() == ["row,reasons,customer_id",
                                                                                          "3,x,C10"]


def test_the_suppression_list_is_written_in_the_erasures_transaction(tmp_path):
    """Rolled back with the caller's transaction: the person is back in full and on no list, and no
    sidecar announces an erasure that never happened."""
    db = open_db(tmp_path / "crm.db")
    db.table("customers").insert({"customer_id": "C1", "name": "Ada", "email": "ada@example.com"})
    with pytest.raises(RuntimeError):
        with db.atomic():
            forget(db, "ada@example.com")
            assert db.execute("SELECT count(*) FROM suppression_list").fetchone()[0] == 1
            raise RuntimeError("the caller changes its mind")
    assert db.execute("SELECT customer_id, email FROM customers").fetchall() == [("C1", "ada@example.com")]
    assert db.execute("SELECT count(*) FROM suppression_list").fetchone()[0] == 0
    assert not (tmp_path / "backups").exists()
    forget(db, "C1")
    assert db.execute("SELECT count(*) FROM suppression_list").fetchone()[0] == 1
    assert (tmp_path / "backups" / "suppression-list.json").exists()


# ----------------------------------------------------------------------------- the report packs
def _pack_with_the_person(db, folder, *, name: str, email: str, customer_id: str):
    """A pack folder as the runner and share writer leave it, the person in every encoding a page,
    notebook or CSV holds a value in; remembered by the store."""
    import html
    import json

    from crm_helpers.store.pack_scrub import remember_report_folder
    from crm_helpers.store.safe_csv import write_safe_rows

    share = folder / "share"
    share.mkdir(parents=True)
    (folder / "03_scoring.html").write_text(
        f"<td>{html.escape(name)}</td><td>{email}</td><pre>{html.escape(name, quote=False)}</pre>"
        f"<td>{customer_id}</td><td>{customer_id}9</td>", encoding="utf-8")
    cell = {"outputs": [{"text": [f"{customer_id} {name}\n"], "data": {"text/html": [f"<b>{html.escape(name)}</b>"]}}]}
    (folder / "03_scoring.ipynb").write_text(json.dumps({"cells": [cell]}, ensure_ascii=True), encoding="utf-8")
    write_safe_rows(folder / "follow_up_queue.csv", [["customer_id", "name", "email"], [customer_id, name, email],
                                                     ["C99999", "Somebody Else", "else@example.org"]])
    (share / "index.html").write_text(f"<p>Call {html.escape(name)} today</p>", encoding="utf-8")
    (share / "notes.md").write_text(f"- {name.upper()}: call back", encoding="utf-8")
    assert remember_report_folder(_store_file(db), folder, period="2026-10")


def _store_file(db) -> str:
    from crm_helpers.store.connection import store_path

    return store_path(db)


def _files_holding(folder, *values: str) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file()
                  and any(v.lower().encode("utf-8") in p.read_bytes().lower() for v in values))


def test_forget_rewrites_every_remembered_pack_in_every_encoding_and_names_the_files(small_store, tmp_path):
    db = small_store
    name = "Pat \"PJ\" O'Brien"
    db.execute("UPDATE customers SET name = ? WHERE customer_id = 'C00002'", [name])
    db.conn.commit()
    email = db.execute("SELECT email FROM customers WHERE customer_id = 'C00002'").fetchone()[0]
    default, elsewhere = tmp_path / "reports" / "2026-10", tmp_path / "elsewhere"
    for folder in (default, elsewhere):
        _pack_with_the_person(db, folder, name=name, email=email, customer_id="C00002")
    assert len(_files_holding(default, "Brien", email) + _files_holding(elsewhere, "Brien", email)) == 10

    report = forget(db, "C00002")

    assert _files_holding(default, "Brien", email, "C00002\"", ">C00002<") == []
    assert _files_holding(elsewhere, "Brien", email, "C00002\"", ">C00002<") == []
    assert len(report.packs.rewritten) == 10 and report.packs.removed == []
    assert set(report.packs.folders) == {str(default), str(elsewhere)}
    page = (default / "03_scoring.html").read_text(encoding="utf-8")
    assert page.count(report.pseudonym) == 4 and "<td>C000029</td>" in page  # a longer id is another customer
    rows = list(csv.reader((default / "follow_up_queue.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert rows[1:] == [[report.pseudonym] * 3, ["C99999", "Somebody Else", "else@example.org"]]
    assert str(default / "share") in report.packs.message and "10 report files" in report.packs.message
    for path in default.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_a_file_still_showing_the_person_after_the_rewrite_is_removed_and_named(small_store, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_REPORTS", str(tmp_path / "reports"))
    db = small_store
    name, email = db.execute("SELECT name, email FROM customers WHERE customer_id = 'C00002'").fetchone()
    folder = tmp_path / "reports" / "2026-10"
    _pack_with_the_person(db, folder, name=name, email=email, customer_id="C00002")
    odd = "".join(f"&#{ord(c)};" for c in name)  # every letter a numeric entity: no form forget writes itself
    (folder / "share" / "04_clv_romi.html").write_text(f"<td>{odd}</td>", encoding="utf-8")
    outside = tmp_path / "outside.html"
    outside.write_text(name, encoding="utf-8")
    (folder / "link.html").symlink_to(outside)

    report = forget(db, "C00002")

    assert report.packs.removed == [str(folder / "share" / "04_clv_romi.html")]
    assert not (folder / "share" / "04_clv_romi.html").exists()
    assert report.packs.rerender() == ["crm report --month 2026-10 --share"]  # the default folder: no --out
    assert str(folder / "share" / "04_clv_romi.html") in report.packs.message
    assert outside.read_text(encoding="utf-8") == name  # a link in the pack is never followed


def test_a_two_character_chinese_name_is_rewritten_wherever_it_stands(small_store, tmp_path):
    db = small_store
    db.execute("UPDATE customers SET name = '王芳' WHERE customer_id = 'C00002'")
    db.conn.commit()
    email = db.execute("SELECT email FROM customers WHERE customer_id = 'C00002'").fetchone()[0]
    folder = tmp_path / "out"
    _pack_with_the_person(db, folder, name="王芳", email=email, customer_id="C00002")
    (folder / "05_satisfaction_review.html").write_text("<td>客户王芳：发货太慢</td>", encoding="utf-8")
    report = forget(db, "C00002")
    assert _files_holding(folder, "王芳", "\\u738b\\u82b3", email) == []
    assert f"客户{report.pseudonym}：发货太慢" in (folder / "05_satisfaction_review.html").read_text(encoding="utf-8")


def test_the_store_remembers_each_pack_folder_once_with_its_latest_render(tmp_path):
    from crm_helpers.store.pack_scrub import remember_report_folder, report_folders

    store = tmp_path / "crm.db"
    for folder in ("a", "b", "a"):
        (tmp_path / folder).mkdir(exist_ok=True)
        assert remember_report_folder(store, tmp_path / folder, period="2026-10")
    (tmp_path / "gone").mkdir()
    remember_report_folder(store, tmp_path / "gone", period="2026-09")
    (tmp_path / "gone").rmdir()
    assert report_folders(open_db(store)) == {str(tmp_path / "a"): "2026-10", str(tmp_path / "b"): "2026-10"}
    read_only = tmp_path / "ro"
    read_only.mkdir()
    copy = read_only / "crm.db"
    copy.write_bytes(store.read_bytes())
    os.chmod(copy, 0o400)
    os.chmod(read_only, 0o500)
    try:
        assert remember_report_folder(copy, tmp_path / "a", period="2026-10") is (os.geteuid() == 0)
    finally:
        os.chmod(read_only, 0o700)


# ------------------------------------------------------------- a real pack, rendered twice, then erased
CRM = str(Path(sys.executable).with_name("crm"))
SURNAMES, GIVEN = "王李张刘陈杨黄赵周吴", "芳伟娜敏静磊强洋艳勇"
LONG_NAMES = [s + g for s in "孙马朱胡郭" for g in ("小龙", "建国", "晓明", "志强", "海燕")]
QUOTED_NAMES = ["Pat O'Brien", 'Jo "JJ" Smith', "Mary-Kate D'Arcy", "Li", "Al"]


@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    """A demo store where a third of the customers have two- or three-character Chinese names and a
    few have quotes in theirs or are called "Li" and "Al"; its pack rendered by `crm report --share`
    into the default folder (``CRM_REPORTS``) and, pages 03 and 05, into an ``--out`` folder."""
    root = tmp_path_factory.mktemp("packs")
    db_file = root / "data" / "crm.db"
    env = {**os.environ, "CRM_REPORTS": str(root / "reports"), "CRM_INBOX": str(root / "inbox")}
    subprocess.run([CRM, "demo", "--db", str(db_file), "--customers", "300", "--months", "18", "--end", "2026-10"],
                   check=True, capture_output=True, text=True, env=env)
    db = open_db(db_file)
    ids = [r[0] for r in db.execute("SELECT customer_id FROM customers ORDER BY customer_id")]
    chinese = [name for pair in zip(LONG_NAMES, [s + g for s in SURNAMES for g in GIVEN]) for name in pair]
    renamed = dict(zip(ids[::3], chinese)) | dict(zip(ids[1::41], QUOTED_NAMES))
    db.conn.executemany("UPDATE customers SET name = ? WHERE customer_id = ?", [(n, c) for c, n in renamed.items()])
    db.conn.commit()
    db.conn.close()
    runs = [subprocess.run([CRM, "report", "--db", str(db_file), "--month", "2026-10", "--share", *extra],
                           capture_output=True, text=True, env=env)
            for extra in ([], ["--out", str(root / "elsewhere"), "--only", "03,05"])]
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
    return root, db_file, env


def _pages(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".html", ".ipynb", ".csv"))


def _readable(path: Path) -> str:
    """A file's text as a reader sees it: a notebook's strings decoded, images left out."""
    import html
    import json
    import re

    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        text = "\n".join(str(v) for c in cells for v in _strings(c))
    text = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=\s]+", "", text)
    text = re.sub(r'"image/png":\s*"[^"]*"', "", text)
    return html.unescape(text)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if not k.startswith("image/"):
                yield from _strings(v)


@pytest.mark.slow
def test_share_masks_every_name_chinese_short_and_quoted_in_pages_notebooks_and_csvs(packs):
    import re

    root, db_file, _ = packs
    db = open_db(db_file)
    names = [r[0] for r in db.execute("SELECT name FROM customers WHERE name IS NOT NULL")]
    latin = re.compile("|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in sorted(names, key=len, reverse=True)
                                if not ("\u4e00" <= n[0] <= "\u9fff")))
    cjk = [n for n in names if "\u4e00" <= n[0] <= "\u9fff"]
    owner = "".join(_readable(p) for p in _pages(root / "reports" / "2026-10") if "share" not in p.parts)
    shown_cjk = [n for n in cjk if n in owner]
    assert len([n for n in shown_cjk if len(n) == 2]) >= 3 and any(len(n) == 3 for n in shown_cjk), shown_cjk
    assert any(n in owner for n in ("Pat O'Brien", 'Jo "JJ" Smith', "Mary-Kate D'Arcy"))  # else the test is idle
    for share in (root / "reports" / "2026-10" / "share", root / "elsewhere" / "share"):
        files = _pages(share)
        assert {p.suffix for p in files} == {".html", ".ipynb", ".csv"}
        for path in files:
            text = _readable(path)
            assert not [n for n in cjk if n in text], f"{path.name} shows {[n for n in cjk if n in text][:3]}"
            found = latin.search(text)
            assert found is None, f"{path.name} shows the name {found.group(0)!r}"


@pytest.mark.slow
def test_no_page_shows_an_absolute_path(packs):
    """Issue 26: pages 01 and 03 showed the store's absolute path (the owner's user name)."""
    root, db_file, _ = packs
    forbidden = ["/home/", str(root), str(db_file.resolve()), str(Path.home()) + "/"]
    folders = [root / "reports" / "2026-10", root / "elsewhere"]
    pages = [p for f in folders for p in _pages(f) if p.suffix == ".html" or "share" in p.parts]
    assert {"01_import_and_entry.html", "03_scoring.html"} <= {p.name for p in pages}
    for path in pages:
        text = path.read_text(encoding="utf-8-sig")
        assert not [f for f in forbidden if f in text], f"{path} shows {[f for f in forbidden if f in text]}"
    page_01 = _readable(root / "reports" / "2026-10" / "01_import_and_entry.html")
    assert "Store: crm.db" in page_01 and "inbox inbox" in page_01
    assert "Written to follow_up_queue.csv" in _readable(root / "reports" / "2026-10" / "03_scoring.html")


@pytest.mark.slow
def test_forget_leaves_no_trace_of_the_person_in_either_pack_and_names_the_files(packs):
    """Issue 26: after `crm forget` the month's pack (index, pages 03 and 05 and their notebooks,
    follow_up_queue.csv, customers_to_call.csv) still held the person."""
    import re

    root, db_file, env = packs
    folders = [root / "reports" / "2026-10", root / "elsewhere"]
    queue = list(csv.DictReader((folders[0] / "follow_up_queue.csv").read_text(encoding="utf-8-sig").splitlines()))
    person = next((row for row in queue if "\u4e00" <= row["name"][0] <= "\u9fff"), queue[0])
    db = open_db(db_file)
    phone = db.execute("SELECT phone FROM customers WHERE customer_id = ?", [person["customer_id"]]).fetchone()[0]
    db.conn.close()
    values = [person["name"], person["email"]] + ([phone, re.sub(r"[^\d+]", "", phone)] if phone else [])
    holding = [p for f in folders for p in f.rglob("*") if p.is_file()
               and any(v.lower().encode() in p.read_bytes().lower() for v in values)]
    assert {p.parent for p in holding} >= set(folders), "the person must be in both packs for this test to hold"

    done = subprocess.run([CRM, "forget", "--db", str(db_file), "--yes", person["customer_id"]],
                          capture_output=True, text=True, env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes().lower()
                assert not [v for v in values if v.lower().encode() in data], f"{path} still holds the person"
                assert not re.search(rf"\b{person['customer_id'].lower()}\b".encode(), data), path
    for folder in folders:
        assert str(folder) in done.stdout and str(folder / "share") in done.stdout
    assert re.search(r"Rewrote (\d+) report files", done.stdout)
    assert int(re.search(r"Rewrote (\d+) report files", done.stdout).group(1)) >= len(holding)


def test_their_own_comment_is_hidden_in_the_packs_but_a_comment_others_wrote_too_is_kept(small_store, tmp_path):
    db = small_store
    own = "The blue teapot arrived cracked, second time"
    shared = "Fast delivery, thank you"
    ids = [r[0] for r in db.execute("SELECT feedback_id FROM feedback WHERE customer_id = 'C00002' LIMIT 2")]
    other = db.execute("SELECT feedback_id FROM feedback WHERE customer_id <> 'C00002' LIMIT 1").fetchone()[0]
    assert len(ids) == 2, "the demo person needs two answers for this test"
    db.conn.executemany("UPDATE feedback SET comment = ? WHERE feedback_id = ?",
                        [(own, ids[0]), (shared, ids[1]), (shared, other)])
    db.conn.commit()
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "05_satisfaction_review.html").write_text(f"<td>{own}</td><td>{shared}</td>", encoding="utf-8")
    from crm_helpers.store.pack_scrub import remember_report_folder

    remember_report_folder(_store_file(db), folder, period="2026-10")
    forget(db, "C00002")
    assert (folder / "05_satisfaction_review.html").read_text(encoding="utf-8") == f"<td>[erased]</td><td>{shared}</td>"


def test_forget_removes_working_folders_a_killed_backup_left_and_names_those_in_use(small_store, tmp_path):
    db = small_store
    backups = tmp_path / "backups"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = backups / f".crm-partial-{dead}-x"  # a killed `crm backup --encrypt`: a plaintext snapshot
    live = backups / f".crm-partial-{os.getpid()}-y"  # a backup running now
    for folder in (stale, live):
        folder.mkdir(parents=True)
        (folder / "snapshot.db").write_bytes(b"the person's data")

    report = forget(db, "C00002", backups=backups)

    assert not stale.exists()
    assert live.exists() and report.working_folders == [str(live)]


def test_the_pdfs_of_a_pack_that_showed_the_person_are_removed_and_named(small_store, tmp_path):
    """brief.pdf and pack.pdf are printed from the pages and cannot be searched as text: where the
    person was found, they go (the next render prints them again); elsewhere they stay."""
    db = small_store
    name, email = db.execute("SELECT name, email FROM customers WHERE customer_id = 'C00002'").fetchone()
    folder, other = tmp_path / "out", tmp_path / "other"
    _pack_with_the_person(db, folder, name=name, email=email, customer_id="C00002")
    other.mkdir()
    (other / "index.html").write_text("<p>nobody here</p>", encoding="utf-8")
    for pack in (folder, other):
        (pack / "brief.pdf").write_bytes(b"%PDF-1.4 compressed")
    from crm_helpers.store.pack_scrub import remember_report_folder

    assert remember_report_folder(_store_file(db), other, period="2026-09")
    report = forget(db, "C00002")
    assert not (folder / "brief.pdf").exists() and str(folder / "brief.pdf") in report.packs.removed
    assert (other / "brief.pdf").exists()
