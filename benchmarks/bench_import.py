"""Import of a large orders CSV through ``crm_helpers.importing.import_file`` against a bare insert.

Each run starts from a fresh copy of a store that holds the customers, products and campaigns,
and runs in its own Python process (so one run's memory and caches do not help the next):

- first import: ``import_file(db, "orders", csv)`` (reading, header matching, cleaning and
  validating every value, reference checks, upsert, undo bookkeeping), all rows inserted;
- re-import of the unchanged file into the same store: every row compared, all "unchanged";
- reference: what a minimal script does, the same file read with ``csv.reader`` (empty fields
  as NULL) and the rows inserted with ``sqlite3`` ``executemany`` into the same schema (same
  indexes, foreign keys on) in one transaction.

``python -m benchmarks.bench_import --child MODE STORE CSV`` is one such run; it prints a JSON line.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import pstats
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .results import Row, Section, Timing, load_average, log, peak_rss_mib, plural
from .scale_store import ScaleStore

TARGET_RATIO = 2.0
PROFILE_ROWS = 200_000


# ---------------------------------------------------------------------------------- child runs
def _import(store: str, csv_path: str, profile_to: str | None = None) -> dict[str, float]:
    from crm_helpers.importing import import_file
    from crm_helpers.store import open_db

    db = open_db(store)
    profiler = cProfile.Profile() if profile_to else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    first = import_file(db, "orders", csv_path)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile_to)
    out = {"first": time.perf_counter() - started, "first_cpu": time.process_time() - cpu, "rows": first.inserted}
    if first.updated or first.unchanged or first.rejected:
        raise SystemExit(f"unexpected first import: {first.summary()}")
    if not profiler:
        started, cpu = time.perf_counter(), time.process_time()
        again = import_file(db, "orders", csv_path)
        out["again"], out["again_cpu"] = time.perf_counter() - started, time.process_time() - cpu
        if again.unchanged != first.inserted:
            raise SystemExit(f"unexpected re-import: {again.summary()}")
    return out


def _bare(store: str, csv_path: str) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA foreign_keys = ON")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [tuple(v if v != "" else None for v in r) for r in reader]
    parsed = time.perf_counter()
    with conn:
        conn.executemany(
            f"INSERT INTO orders ({', '.join(header)}) VALUES ({', '.join('?' * len(header))})", rows
        )
    done = time.perf_counter()
    conn.close()
    return {"bare": done - started, "bare_cpu": time.process_time() - cpu, "insert_only": done - parsed,
            "rows": len(rows)}


def _child(mode: str, store: str, csv_path: str, profile_to: str | None) -> None:
    result = _import(store, csv_path, profile_to) if mode == "import" else _bare(store, csv_path)
    result["maxrss_mb"] = peak_rss_mib()
    print(json.dumps(result))


def _run_child(mode: str, base: Path, csv_path: Path, work: Path, profile_to: Path | None = None) -> dict:
    store = work / "import.db"
    for p in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        p.unlink(missing_ok=True)
    shutil.copyfile(base, store)
    cmd = [sys.executable, "-m", "benchmarks.bench_import", "--child", mode, str(store), str(csv_path)]
    if profile_to:
        cmd += ["--profile", str(profile_to)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        raise RuntimeError(f"import benchmark run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _head(source: Path, target: Path, rows: int) -> Path:
    """The header and first ``rows`` data lines of a CSV file (one record per line)."""
    with open(source, encoding="utf-8", newline="") as src, open(target, "w", encoding="utf-8", newline="") as dst:
        for k, line in enumerate(src):
            if k > rows:
                break
            dst.write(line)
    return target


def top_costs(stats_path: Path, n: int = 12, package: str = "crm_helpers") -> str:
    """The top entries of a cProfile dump as a Markdown code block: the package's own functions
    by cumulative time, then every function by own time."""
    parts = []
    for order, restriction in (("cumulative", (f"{package}/",)), ("tottime", ())):
        buf = io.StringIO()
        stats = pstats.Stats(str(stats_path), stream=buf)
        stats.sort_stats(order).print_stats(*restriction, n)
        lines = [ln for ln in buf.getvalue().splitlines()
                 if ln.strip() and not ln.lstrip().startswith(("Ordered by", "List reduced", "Random listing"))
                 and ".prof" not in ln and "function calls" not in ln]
        parts.append(f"by {'cumulative time, package functions only' if restriction else 'own time, everything'}:\n"
                     + "\n".join(_short_path(ln) for ln in lines))
    return "```\n" + "\n\n".join(parts) + "\n```"


def _short_path(line: str) -> str:
    """Drop the folders before ``crm_helpers/``, a site-packages package or the standard library."""
    line = re.sub(r"/\S*/src/(crm_helpers/)", r"\1", line)
    line = re.sub(r"/\S*/site-packages/", "", line)
    return re.sub(r"/\S*/lib/python3\.\d+/", "", line)


# ---------------------------------------------------------------------------------- the part
def run(store: ScaleStore, repeats: int, *, profile: bool | None = None) -> Section:
    """Import benchmark on ``store``'s orders CSV. ``profile``: cProfile one import (None: only
    when a target is missed)."""
    rows_n = store.counts["orders"]
    section = Section("import", f"Import of a {rows_n:,}-row orders CSV",
                      busy=f"load average {load_average()} at start")
    firsts, agains, bares, inserts, rss_import, rss_bare = [], [], [], [], [], []
    cpu_first, cpu_again, cpu_bare = [], [], []
    with tempfile.TemporaryDirectory(prefix="crm-bench-import-", dir=store.db_path.parent) as tmp:
        work = Path(tmp)
        for k in range(repeats):
            log(f"import run {k + 1}/{repeats} ({rows_n:,} rows)")
            imp = _run_child("import", store.customers_db_path, store.orders_csv, work)
            bare = _run_child("bare", store.customers_db_path, store.orders_csv, work)
            firsts.append(imp["first"])
            agains.append(imp["again"])
            bares.append(bare["bare"])
            inserts.append(bare["insert_only"])
            cpu_first.append(imp["first_cpu"])
            cpu_again.append(imp["again_cpu"])
            cpu_bare.append(bare["bare_cpu"])
            rss_import.append(imp["maxrss_mb"])
            rss_bare.append(bare["maxrss_mb"])
        first, again, bare_t = Timing(firsts), Timing(agains), Timing(bares)
        ratio = first.median / bare_t.median
        section.add(Row("first import (`import_file`, all rows inserted)", first, reference=bare_t,
                        reference_name="csv.reader + executemany", target=f"≤ {TARGET_RATIO:g}× the bare insert",
                        met=ratio <= TARGET_RATIO))
        section.add(Row("first import throughput", Timing([rows_n / t for t in firsts]), unit="rows/s",
                        reference=Timing([rows_n / t for t in bares]), reference_name="bare"))
        section.add(Row("re-import of the unchanged file (all unchanged)", again, reference=first,
                        reference_name="first import", target="≤ the first import", met=again.median <= first.median))
        section.add(Row("first import, CPU time of the process", Timing(cpu_first), reference=Timing(cpu_bare),
                        reference_name="bare insert CPU", note="less sensitive to other work on the machine"))
        section.add(Row("re-import, CPU time of the process", Timing(cpu_again), reference=Timing(cpu_first),
                        reference_name="first import CPU"))
        section.add(Row("bare insert: csv.reader + executemany", bare_t))
        section.add(Row("bare insert: executemany only (rows already parsed)", Timing(inserts)))
        section.add(Row("peak memory of the importing process", Timing(rss_import), unit="MiB",
                        reference=Timing(rss_bare), reference_name="bare insert process"))
        section.notes.append(
            f"{plural(repeats, 'run')} each; every run in a fresh process on a fresh copy of a store holding "
            f"{store.counts['customers']:,} customers. Peak memory is the process's `VmHWM` at its end."
        )
        if profile or (profile is None and (ratio > TARGET_RATIO or again.median > first.median)):
            sample = _head(store.orders_csv, work / "sample.csv", PROFILE_ROWS)
            log(f"profiling a first import of the first {PROFILE_ROWS:,} rows with cProfile")
            stats = work / "import.prof"
            _run_child("import", store.customers_db_path, sample, work, profile_to=stats)
            section.notes.append(
                f"Where a first import spends its time (cProfile of one import of the file's first "
                f"{PROFILE_ROWS:,} rows, to keep the run short: the shares are those of the full file, the "
                f"profiler's overhead inflates the total):\n\n" + top_costs(stats))
    return section


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=3, metavar=("MODE", "STORE", "CSV"), required=True)
    parser.add_argument("--profile")
    args = parser.parse_args()
    _child(*args.child, args.profile)


if __name__ == "__main__":
    main()
