"""Files written safely (issue 26, item 1): whole or not at all, owner-only, never through a link.

- every writer goes through :mod:`crm_helpers.store.files`: a symbolic link at the destination is
  refused with a message naming it, and the file it points to is untouched (rejects in the inbox,
  pages and CSVs of the pack, segment exports, backups);
- a failed write leaves the destination as it was and no temporary file behind;
- the pack is rendered into a fresh folder and swapped in whole: a re-render on a full disk leaves
  every file of the previous pack byte-identical;
- working folders (``.crm-partial-*``) of killed processes are removed by the next run, those of
  running ones are kept.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from support import write_notebook
from crm_helpers.analyses.segment_export import export_segment
from crm_helpers.ingest.inbox import import_inbox
from crm_helpers.report.runner import ReportError, render_report
from crm_helpers.store import files
from crm_helpers.store.backup import BackupError, backup
from crm_helpers.store.connection import open_db, table_counts
from crm_helpers.store.periods import parse_month

CRM = str(Path(sys.executable).with_name("crm"))
MONTH = parse_month("2026-10")
CUSTOMERS = "customer_id,name,email\nC1,Ann Lee,ann@example.com\nC2,Bo Chan,bo@example.com\n"
ORDERS_WITH_A_BAD_ROW = ("order_id,customer_id,order_date,amount,status\n"
                         "O1,C1,2026-10-02,10,paid\nO2,C1,2026-10-03,12,paid\nO3,C1,2026-10-04,not money,paid\n")
SQLITE_HEADER = b"SQLite format 3\x00"


def _dead_pid() -> int:
    """The id of a process that has ended (a child started and waited for)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fingerprint(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- the module itself
def test_a_link_at_the_destination_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.db"
    victim.write_bytes(b"precious")
    link = tmp_path / "page.html"
    link.symlink_to(victim)
    for write in (lambda: files.write_text(link, "x"), lambda: files.write_bytes(link, b"x")):
        with pytest.raises(files.UnsafeWriteError, match=f"{link} is a symbolic link; refusing to write through it"):
            write()
    broken = tmp_path / "broken.csv"
    broken.symlink_to(tmp_path / "not-there")
    with pytest.raises(files.UnsafeWriteError, match="broken.csv is a symbolic link"):
        files.write_text(broken, "x")
    assert victim.read_bytes() == b"precious" and not (tmp_path / "not-there").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv", "page.html", "victim.db"]


def test_a_failed_write_leaves_the_file_as_it_was_and_no_temporary_file(tmp_path):
    target = tmp_path / "index.html"
    target.write_text("the previous page", encoding="utf-8")
    with pytest.raises(OSError, match="No space left"):
        with files.atomic_open(target) as handle:
            handle.write("half of the new page")
            raise OSError(28, "No space left on device")
    assert target.read_text(encoding="utf-8") == "the previous page"
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_files_are_written_whole_and_owner_only(tmp_path):
    path = files.write_text(tmp_path / "a.csv", "a,b\n")
    assert path.read_text(encoding="utf-8") == "a,b\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = files.write_text(tmp_path / "doc.md", "# Doc\n", file_mode=0o644)
    assert stat.S_IMODE(doc.stat().st_mode) == 0o644


def test_stale_working_folders_are_removed_and_live_ones_kept(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".crm-partial-{dead}-2026-10"
    live = tmp_path / f".crm-partial-{os.getpid()}-2026-09"
    aside = tmp_path / f".crm-old-{dead}-2026-08"  # killed between the two renames of a swap
    for folder in (stale, live, aside):
        folder.mkdir()
        (folder / "index.html").write_text(folder.name, encoding="utf-8")
    assert files.partial_folders(tmp_path) == sorted([stale, live, aside])
    assert files.remove_stale_partials(tmp_path) == [stale]
    assert not stale.exists() and live.is_dir()
    assert (tmp_path / "2026-08" / "index.html").read_text(encoding="utf-8") == aside.name  # put back
    assert files.partial_folders(tmp_path) == [live]


def test_a_folder_is_swapped_in_whole_or_left_as_it_was(tmp_path):
    target = tmp_path / "2026-10"
    target.mkdir()
    (target / "index.html").write_text("old", encoding="utf-8")
    with pytest.raises(OSError):
        with files.fresh_folder(target) as work:
            files.write_text(work / "index.html", "new")
            raise OSError(27, "File too large")
    assert _fingerprint(target) == {"index.html": b"old"} and files.partial_folders(tmp_path) == []
    with files.fresh_folder(target) as work:
        files.write_text(work / "index.html", "new")
    assert _fingerprint(target) == {"index.html": b"new"} and sorted(tmp_path.iterdir()) == [target]


# ----------------------------------------------------------------------------- the writers
def _inbox_with_a_link_at_its_rejects(tmp_path: Path) -> tuple[Path, Path, bytes]:
    store = tmp_path / "data" / "crm.db"
    db = open_db(store)
    db.table("customers").insert_all([{"customer_id": "C1", "name": "Ann Lee"}])
    db.close()
    inbox = tmp_path / "data" / "inbox"
    inbox.mkdir()
    (inbox / "orders_2026-10.csv").write_text(ORDERS_WITH_A_BAD_ROW, encoding="utf-8")
    (inbox / "orders_2026-10.rejects.csv").symlink_to(Path("..") / "crm.db")  # the attack of the issue
    return store, inbox, store.read_bytes()[:100]


def test_a_rejects_link_in_the_inbox_leaves_the_store_intact_and_says_why(tmp_path):
    store, inbox, header = _inbox_with_a_link_at_its_rejects(tmp_path)
    row = import_inbox(open_db(store), inbox).iloc[0]
    assert row.status == "rejected", row.message
    assert "orders_2026-10.rejects.csv is a symbolic link; refusing to write through it" in row.message
    assert store.read_bytes()[:100] == header and table_counts(open_db(store))["orders"] == 0


@pytest.mark.slow
def test_crm_report_only_01_with_a_rejects_link_leaves_the_store_intact(demo_db_copy, tmp_path):
    """The issue's reproduction: `crm report --only 01` with NAME.rejects.csv -> the store in the inbox."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    customer = open_db(demo_db_copy).execute("SELECT customer_id FROM customers LIMIT 1").fetchone()[0]
    (inbox / "orders_late.csv").write_text(ORDERS_WITH_A_BAD_ROW.replace("C1", customer).replace("O", "LATE-"),
                                           encoding="utf-8")
    (inbox / "orders_late.rejects.csv").symlink_to(demo_db_copy)
    before = table_counts(open_db(demo_db_copy))
    proc = subprocess.run([CRM, "report", "--db", str(demo_db_copy), "--month", "2026-10", "--only", "01", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True,
                          env={**os.environ, "CRM_INBOX": str(inbox)})
    assert "Traceback" not in proc.stderr
    assert "orders_late.rejects.csv is a symbolic link; refusing to write through it" in proc.stdout, proc.stdout
    assert demo_db_copy.read_bytes().startswith(SQLITE_HEADER) and table_counts(open_db(demo_db_copy)) == before


def test_crm_import_skip_bad_rows_refuses_a_rejects_link(tmp_path):
    store, inbox, header = _inbox_with_a_link_at_its_rejects(tmp_path)
    proc = subprocess.run([CRM, "import", "orders", str(inbox / "orders_2026-10.csv"), "--skip-bad-rows",
                           "--db", str(store)], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "orders_2026-10.rejects.csv is a symbolic link; refusing to write through it" in proc.stderr
    assert store.read_bytes()[:100] == header and table_counts(open_db(store))["orders"] == 0  # nothing imported


def test_a_segment_export_refuses_a_link(demo_db_path, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    link = tmp_path / "at_risk.csv"
    link.symlink_to(victim)
    with pytest.raises(files.UnsafeWriteError, match="at_risk.csv is a symbolic link"):
        export_segment(open_db(demo_db_path), "At Risk", to=link, include_without_consent=True)
    assert victim.read_text(encoding="utf-8") == "precious"
    proc = subprocess.run([CRM, "export", "segment", "At Risk", "--to", str(link), "--db", str(demo_db_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "is a symbolic link" in proc.stderr and "Traceback" not in proc.stderr
    assert victim.read_text(encoding="utf-8") == "precious"


def test_a_backup_refuses_a_link_at_its_name(tmp_path):
    store = tmp_path / "crm.db"
    open_db(store).table("customers").insert_all([{"customer_id": "C1", "name": "Ann"}])
    folder = tmp_path / "backups"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    now = dt.datetime(2026, 11, 1, 9, 30)
    (folder / "crm-20261101-093000.db").symlink_to(victim)
    with pytest.raises(BackupError, match="crm-20261101-093000.db is a symbolic link; refusing to write through it"):
        backup(store, folder, now=now)
    assert victim.read_text(encoding="utf-8") == "precious" and files.partial_folders(folder) == []
    (folder / "crm-20261101-093000.db").unlink()
    made = backup(store, folder, now=now)
    assert made.read_bytes().startswith(SQLITE_HEADER) and not made.is_symlink()


# ----------------------------------------------------------------------------- the pack
def _notebook(path: Path, *code: str) -> None:
    write_notebook(path, *code, parameters='db_path = ""\nperiod_start = ""\nperiod_end = ""\noutput_dir = ""\nlabel = "first"')


@pytest.fixture(scope="module")
def tiny_notebooks(tmp_path_factory):
    """Two cheap pages: one prints, one writes a CSV into the pack (as notebook 03 writes its queue)."""
    folder = tmp_path_factory.mktemp("notebooks")
    # the page prints ~48 kB, so that it is the one file of the pack larger than a "full disk" allows
    _notebook(folder / "03_page.ipynb", "print('page of the', label, 'render')\nprint('filler ' * 8_000)")
    _notebook(folder / "04_list.ipynb",
              "import pandas as pd\nfrom pathlib import Path\nfrom crm_helpers.store.safe_csv import write_safe_csv\n"
              "write_safe_csv(pd.DataFrame({'render': [label]}), Path(output_dir) / 'list.csv')\nprint(label)")
    return folder


@pytest.fixture
def tiny_store(tmp_path):
    path = tmp_path / "crm.db"
    open_db(path).close()
    return path


def _render(store: Path, out: Path, notebooks: Path, **kwargs):
    return render_report(store, MONTH, out_dir=out, notebooks_dir=notebooks, jobs=1, progress=False, **kwargs)


def _links_of(index: Path) -> list[str]:
    soup = BeautifulSoup(index.read_text(encoding="utf-8"), "html.parser")
    return [a["href"] for a in soup.find_all("a", href=True) if not a["href"].startswith("#")]


@pytest.mark.slow
def test_links_planted_in_the_pack_are_never_written_through(tiny_store, tiny_notebooks, tmp_path):
    out = tmp_path / "reports" / "2026-10"
    assert _render(tiny_store, out, tiny_notebooks).ok
    victims = {name: tmp_path / f"victim-{name}" for name in ("03_page.html", "list.csv", "index.html")}
    for name, victim in victims.items():
        victim.write_text("precious", encoding="utf-8")
        (out / name).unlink()
        (out / name).symlink_to(victim)
    dead, live = _dead_pid(), os.getpid()
    (out.parent / f".crm-partial-{dead}-2026-09").mkdir()  # left by a killed render
    (out.parent / f".crm-partial-{live}-2026-09").mkdir()  # of a process that runs (this one)
    result = _render(tiny_store, out, tiny_notebooks, only=["03"], overrides={"label": "second"})
    assert result.ok and result.out_dir == out and result.runs[0].html == out / "03_page.html"
    assert all(v.read_text(encoding="utf-8") == "precious" for v in victims.values())
    assert not any(p.is_symlink() for p in out.iterdir())
    assert "page of the second render" in (out / "03_page.html").read_text(encoding="utf-8")
    assert not (out.parent / f".crm-partial-{dead}-2026-09").exists()
    assert [p.name for p in files.partial_folders(out.parent)] == [f".crm-partial-{live}-2026-09"]
    assert all((out / href).is_file() for href in _links_of(out / "index.html"))


FULL_DISK_RENDER = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
    limit = int(sys.argv[5])  # above every notebook and the store's 32 kB index, below the largest page
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from crm_helpers.report.runner import ReportError, render_report
    from crm_helpers.store.periods import parse_month
    store, out, notebooks, only = sys.argv[1:5]
    try:
        render_report(store, parse_month("2026-10"), out_dir=out, notebooks_dir=Path(notebooks), jobs=1,
                      progress=False, only=only.split(",") if only else None, overrides={"label": "doomed"})
    except ReportError as exc:
        print(exc)
        sys.exit(3)
""")


SQLITE_SHARED_INDEX = 32_768
"""Bytes of a store's ``-shm`` file, which opening it writes: a "full disk" must allow that much."""


def _file_limit(pack: dict[str, bytes], *, folder: str = "") -> int:
    """A largest file size for a "full disk" while ``folder`` of the pack is written again: above
    every executed notebook there and the store's shared index (so the notebooks run and the store
    opens), below the largest page (so writing the pages fails)."""
    files = {name: len(data) for name, data in pack.items() if name.startswith(folder)}
    floor = max([SQLITE_SHARED_INDEX] + [size for name, size in files.items() if name.endswith(".ipynb")])
    largest_page = max(size for name, size in files.items() if name.endswith(".html"))
    assert floor + 1000 < largest_page, "the test needs a page larger than the notebooks and the store's index"
    return (floor + largest_page) // 2


@pytest.mark.slow
@pytest.mark.parametrize("only", ["", "04"])
def test_a_re_render_on_a_full_disk_keeps_the_previous_pack(tiny_store, tiny_notebooks, tmp_path, only):
    out = tmp_path / "reports" / "2026-10"
    assert _render(tiny_store, out, tiny_notebooks).ok
    before = _fingerprint(out)
    assert {"03_page.html", "04_list.ipynb", "list.csv", "index.html", "glossary.html"} <= set(before)
    proc = subprocess.run([sys.executable, "-c", FULL_DISK_RENDER, str(tiny_store), str(out), str(tiny_notebooks),
                           only, str(_file_limit(before))], capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert "the disk is full" in proc.stdout and f"the previous pack in {out} is unchanged" in proc.stdout
    assert _fingerprint(out) == before  # every file byte-identical, none added or lost
    assert all((out / href).is_file() for href in _links_of(out / "index.html"))
    assert files.partial_folders(out.parent) == [] and sorted(p.name for p in out.parent.iterdir()) == ["2026-10"]


def test_a_render_into_a_folder_that_is_not_a_packs_is_refused(tiny_store, tiny_notebooks, tmp_path):
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    (home / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ReportError, match="not a report pack's folder.*Documents/"):
        _render(tiny_store, home, tiny_notebooks)
    data = tmp_path / "data"
    data.mkdir()
    (data / "crm.db").write_bytes(tiny_store.read_bytes())
    with pytest.raises(ReportError, match="holds crm.db"):
        _render(tiny_store, data, tiny_notebooks)
    assert sorted(p.name for p in home.iterdir()) == ["Documents", "notes.txt"]
    assert [p.name for p in data.iterdir()] == ["crm.db"]


FULL_DISK_SHARE = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[4])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from crm_helpers.report.pages import ReportResult
    from crm_helpers.report.runner import discover_notebooks, earlier_run
    from crm_helpers.report.share import ShareError, write_share_pack
    from crm_helpers.store.periods import parse_month
    store, out, notebooks = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    runs = [earlier_run(nb, out) for nb in discover_notebooks(notebooks)]
    try:
        write_share_pack(ReportResult(parse_month("2026-10"), out, runs, out / "index.html"), store)
    except ShareError as exc:
        print(exc)
        sys.exit(3)
""")


@pytest.mark.slow
def test_a_shared_copy_on_a_full_disk_keeps_the_previous_one(tiny_store, tiny_notebooks, tmp_path):
    from crm_helpers.report.share import write_share_pack

    out = tmp_path / "reports" / "2026-10"
    result = _render(tiny_store, out, tiny_notebooks)
    write_share_pack(result, tiny_store)
    before = _fingerprint(out)
    assert {"share/index.html", "share/03_page.html", "share/list.csv"} <= set(before)
    proc = subprocess.run([sys.executable, "-c", FULL_DISK_SHARE, str(tiny_store), str(out), str(tiny_notebooks),
                           str(_file_limit(before, folder="share/"))], capture_output=True, text=True)
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert "the disk is full" in proc.stdout and "the previous" in proc.stdout and "is unchanged" in proc.stdout
    assert _fingerprint(out) == before and files.partial_folders(out) == []
