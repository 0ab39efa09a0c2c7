"""Two processes on one store: a report reads while a notebook session writes.

WAL mode, a busy timeout and short write transactions mean no "database is locked" failure,
and a reader inside one transaction sees one consistent snapshot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from crm_helpers.store.periods import parse_month
from crm_helpers.report.runner import render_report
from crm_helpers.store.connection import open_db

WRITER = """
import sys, time
from crm_helpers.ingest import entry
from crm_helpers.store.connection import open_db
db = open_db(sys.argv[1])
deadline = time.time() + float(sys.argv[2])
n = 0
while time.time() < deadline:
    entry.log_interaction(db, "C00001", channel="email", subject=f"note {n}")
    n += 1
print(n)
"""


def _start_writer(db_path: Path, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def store(tmp_path, demo_db_path):
    path = tmp_path / "crm.db"
    src = open_db(demo_db_path)
    src.execute(f"VACUUM INTO '{path}'")
    return path


STEPPED_WRITER = """
import sys
from crm_helpers.ingest import entry
from crm_helpers.store.connection import open_db
db = open_db(sys.argv[1])
print("ready", flush=True)
for line in sys.stdin:  # one committed write per line asked for, answered when it is committed
    n = int(line)
    for k in range(n):
        entry.log_interaction(db, "C00001", channel="email", subject=f"note {k}")
    print(f"committed {n}", flush=True)
"""


def test_reader_sees_one_snapshot_while_a_writer_commits(store):
    writer = subprocess.Popen([sys.executable, "-c", STEPPED_WRITER, str(store)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ask(n: int) -> None:  # waits on the writer's answer, never on the clock
        writer.stdin.write(f"{n}\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == f"committed {n}", writer.stderr.read()

    try:
        assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        db = open_db(store)
        db.execute("BEGIN")
        first = db.execute("SELECT count(*) FROM interactions").fetchone()[0]
        ask(12)  # committed by the other process while this read transaction is open
        second = db.execute("SELECT count(*) FROM interactions").fetchone()[0]
        db.execute("COMMIT")
        later = db.execute("SELECT count(*) FROM interactions").fetchone()[0]
    finally:
        writer.stdin.close()
        writer.wait(timeout=60)
    assert writer.returncode == 0, writer.stderr.read()
    assert first == second, "a reader's transaction must not see rows committed meanwhile"
    assert later == second + 12


@pytest.mark.slow
def test_report_renders_while_a_session_writes(store, tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    for k in range(2):
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "crm-workbook", "display_name": "CRM", "language": "python"}
        params = new_code_cell('db_path = ""\nperiod_start = ""\nperiod_end = ""')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [new_markdown_cell("# Reader"), params, new_code_cell(
            "from crm_helpers.analyses import quality\nfrom crm_helpers.workbook import open_workbook\n"
            "db, period = open_workbook(db_path, period_start, period_end=period_end)\n"
            "for _ in range(200):\n    quality.table_overview(db); quality.quality_checks(db)"
        )]
        nbformat.write(nb, str(folder / f"0{k + 2}_reader.ipynb"))
    writer = _start_writer(store, 6)
    try:
        result = render_report(store, parse_month("2026-10"), out_dir=tmp_path / "out", notebooks_dir=folder,
                               jobs=2, progress=False)
    finally:
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0 and "locked" not in err, err
    assert result.ok, [r.error for r in result.failed]
