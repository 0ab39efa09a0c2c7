"""Import of a plain orders CSV (part ``import``) and of a line-item export (part ``export``)
against a bare insert.

Each run starts from a fresh copy of a store that holds the customers, products and campaigns,
and runs in its own Python process (so one run's memory and caches do not help the next):

- the file: the first :data:`ORDERS_ROWS` of the scale store's orders in the five columns an
  owner's plain orders file has (:data:`PLAIN_COLUMNS`);
- first import: ``import_file(db, "orders", csv)`` (reading, header matching, cleaning and
  validating every value, reference checks, upsert, undo bookkeeping, the money balance), all
  rows inserted;
- re-import of the unchanged file into the same store: every row compared, all "unchanged";
- reference: what a minimal script does, the same file read with ``csv.reader`` (empty fields
  as NULL) or with ``pandas.read_csv``, and the rows inserted with ``sqlite3`` ``executemany``
  into the same schema (same indexes, foreign keys on) in one transaction; the faster of the two
  (by median) is the reference of the target;
- part ``export``: a Shopify-style line-item export made from the same orders (an order on one to
  three lines, the order's fields on its first line only), imported with ``crm import FILE``'s
  ``import_export`` into an empty store (customers, products, orders and items), against the
  same file's lines read with ``csv.reader`` and inserted as they are into one table. A part of its
  own so that ``python -m benchmarks.run --only export`` measures it without the orders file's
  longer runs.

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

TARGET_RATIO = 1.5
"""The orders import against the faster bare insert (issue 31)."""
EXPORT_TARGET_RATIO = 2.0
"""The export import against the bare insert of the rows it stores."""
ORDERS_ROWS = 1_000_000
PLAIN_COLUMNS = ("order_id", "customer_id", "order_date", "amount", "status")
"""The columns of the plain orders file the ``import`` part imports."""
TARGET_MEMORY_RATIO = 1.5
PROFILE_ROWS = 200_000
EXPORT_LINES = 1_000_000
SHOPIFY_COLUMNS = ("Name", "Email", "Financial Status", "Paid at", "Created at", "Currency", "Total",
                   "Refunded Amount", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku",
                   "Billing Name", "Billing City", "Billing Country", "Cancelled at")
"""Columns of Shopify's order export (a subset of its 79) that the Shopify source reads."""


# ---------------------------------------------------------------------------------- child runs
def _import(store: str, csv_path: str, profile_to: str | None = None) -> dict[str, float]:
    from crm_helpers.ingest.table_import import import_file
    from crm_helpers.store.connection import open_db

    db = open_db(store)
    profiler = cProfile.Profile() if profile_to else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    first = import_file(db, "orders", path=csv_path)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile_to)
    out = {"first": time.perf_counter() - started, "first_cpu": time.process_time() - cpu, "rows": first.inserted}
    if first.updated or first.unchanged or first.rejected:
        raise SystemExit(f"unexpected first import: {first.summary()}")
    if not profiler:
        started, cpu = time.perf_counter(), time.process_time()
        again = import_file(db, "orders", path=csv_path)
        out["again"], out["again_cpu"] = time.perf_counter() - started, time.process_time() - cpu
        if again.unchanged != first.inserted:
            raise SystemExit(f"unexpected re-import: {again.summary()}")
    return out


def _read_rows(path: str | Path, *, reader: str, as_text: bool = False) -> tuple[list[str], list[tuple]]:
    """A CSV's header and rows, missing values as None: ``reader`` ``"csv"`` (``csv.reader``, every
    value text) or ``"pandas"`` (``pandas.read_csv``, typed unless ``as_text``)."""
    if reader == "pandas":
        import pandas as pd

        frame = pd.read_csv(path, dtype=str if as_text else None)
        return list(frame.columns), list(frame.astype(object).where(frame.notna(), None)
                                          .itertuples(index=False, name=None))
    with open(path, newline="", encoding="utf-8") as f:
        lines = csv.reader(f)
        header = next(lines)
        return header, [tuple(v if v != "" else None for v in r) for r in lines]


def _bare(store: str, csv_path: str, *, reader: str = "csv") -> dict[str, float]:
    """``reader`` ``"csv"``: ``csv.reader``, empty fields as NULL; ``"pandas"``: ``pandas.read_csv``,
    missing values as NULL; then ``executemany`` in one transaction."""
    started, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA foreign_keys = ON")
    header, rows = _read_rows(csv_path, reader=reader)
    parsed = time.perf_counter()
    with conn:
        conn.executemany(
            f"INSERT INTO orders ({', '.join(header)}) VALUES ({', '.join('?' * len(header))})", rows
        )
    done = time.perf_counter()
    conn.close()
    return {"bare": done - started, "bare_cpu": time.process_time() - cpu, "insert_only": done - parsed,
            "rows": len(rows)}


def _export(store: str, csv_path: str, profile_to: str | None = None) -> dict[str, float]:
    from crm_helpers.ingest.export_import import import_export
    from crm_helpers.store.connection import open_db

    db = open_db(store)
    profiler = cProfile.Profile() if profile_to else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    result = import_export(db, csv_path)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile_to)
    return {"first": time.perf_counter() - started, "first_cpu": time.process_time() - cpu,
            "rows": sum(r.inserted for r in result.tables.values())}


def _bare_export(store: str, csv_path: str) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(store)
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [tuple(v if v != "" else None for v in r) for r in reader]
    with conn:
        conn.execute(f"CREATE TABLE export_lines ({', '.join(f'c{i}' for i in range(len(header)))})")
        conn.executemany(f"INSERT INTO export_lines VALUES ({', '.join('?' * len(header))})", rows)
    conn.close()
    return {"bare": time.perf_counter() - started, "bare_cpu": time.process_time() - cpu, "rows": len(rows)}


def _bare_rows(store: str, rows_dir: str, *, reader: str = "csv") -> dict[str, float]:
    """csv.reader (or ``reader="pandas"``: pandas.read_csv) + executemany of the rows an export
    import stored (one CSV per table in ``rows_dir``, parents first) into the store's own tables,
    keys and indexes: the orders part's bare references applied to the same rows the import writes."""

    started, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA foreign_keys = ON")
    written = 0
    with conn:
        for path in sorted(Path(rows_dir).glob("*.csv")):
            header, rows = _read_rows(path, reader=reader, as_text=True)  # ids like 00123 stay text
            table = path.stem.split("-", 1)[1]
            conn.executemany(f"INSERT INTO {table} ({', '.join(header)}) VALUES ({', '.join('?' * len(header))})",
                             rows)
            written += len(rows)
    conn.close()
    return {"bare": time.perf_counter() - started, "bare_cpu": time.process_time() - cpu, "rows": written}


def _dump_stored_rows(imported: Path, target: Path) -> Path:
    """The rows of the four tables an export import wrote, one CSV per table named ``N-table.csv``
    in load order (what :func:`_bare_rows` inserts)."""
    from crm_helpers.store.schema import LOAD_ORDER

    target.mkdir(exist_ok=True)
    conn = sqlite3.connect(imported)
    for k, table in enumerate(t for t in LOAD_ORDER if t in ("customers", "products", "orders", "order_items")):
        cursor = conn.execute(f"SELECT * FROM {table}")
        with open(target / f"{k}-{table}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([d[0] for d in cursor.description])
            writer.writerows(cursor)
    conn.close()
    return target


def plain_orders(orders_csv: Path, target: Path, rows: int) -> Path:
    """The first ``rows`` orders of the scale store's orders file in :data:`PLAIN_COLUMNS` (an
    owner's plain orders file: id, customer, day, amount, status)."""
    with open(orders_csv, newline="", encoding="utf-8") as src, open(target, "w", newline="", encoding="utf-8") as dst:
        reader = csv.DictReader(src)
        writer = csv.writer(dst)
        writer.writerow(PLAIN_COLUMNS)
        for k, order in enumerate(reader):
            if k >= rows:
                break
            writer.writerow([order[c] for c in PLAIN_COLUMNS])
    return target


def shopify_export(orders_csv: Path, target: Path, lines: int) -> Path:
    """A Shopify-style export of ``lines`` lines made from the scale store's orders: every third
    order on two lines and every seventh on three, the order's own fields on its first line only."""
    status = {"paid": "paid", "refunded": "refunded", "cancelled": "voided"}
    with open(orders_csv, newline="", encoding="utf-8") as src, open(target, "w", newline="", encoding="utf-8") as dst:
        writer = csv.writer(dst)
        writer.writerow(SHOPIFY_COLUMNS)
        written = 0
        for k, order in enumerate(csv.DictReader(src)):
            n = 3 if k % 7 == 0 else 2 if k % 3 == 0 else 1
            stamp = f"{order['order_date']} 10:00:00 +0200"
            for line in range(min(n, lines - written)):
                sku = f"SKU-{(k * 31 + line) % 400:03d}"
                refunded = order["amount"] if order["status"] == "refunded" else "0.00"  # as Shopify writes it
                order_fields = [order["status"] and status.get(order["status"], "paid"), stamp, stamp,
                                order.get("currency") or "EUR", order["amount"], refunded] if line == 0 else [""] * 6
                writer.writerow([f"#{order['order_id']}", f"{order['customer_id'].lower()}@example.com",
                                 *order_fields, "1", f"Product {sku}", order["amount"], sku,
                                 *(["A Customer", "Lyon", "FR"] if line == 0 else ["", "", ""]), ""])
                written += 1
            if written >= lines:
                break
    return target


def _child(mode: str, store: str, csv_path: str, profile_to: str | None) -> None:
    modes = {"import": lambda: _import(store, csv_path, profile_to), "bare": lambda: _bare(store, csv_path),
             "bare_pandas": lambda: _bare(store, csv_path, reader="pandas"),
             "export": lambda: _export(store, csv_path, profile_to), "bare_export": lambda: _bare_export(store, csv_path),
             "bare_rows": lambda: _bare_rows(store, csv_path),
             "bare_rows_pandas": lambda: _bare_rows(store, csv_path, reader="pandas")}
    result = modes[mode]()
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
    """Import benchmark on a plain orders file made from ``store``'s orders (:func:`plain_orders`).
    ``profile``: cProfile one import (None: only when a target is missed)."""
    rows_n = min(ORDERS_ROWS, store.counts["orders"])
    section = Section("import", f"Import of a plain {rows_n:,}-row orders CSV ({len(PLAIN_COLUMNS)} columns)",
                      busy=f"load average {load_average()} at start")
    runs: list[tuple[dict, dict, dict]] = []  # (import, csv.reader bare, pandas bare) per repeat
    with tempfile.TemporaryDirectory(prefix="crm-bench-import-", dir=store.db_path.parent) as tmp:
        work = Path(tmp)
        orders = plain_orders(store.orders_csv, work / "orders.csv", rows_n)
        for k in range(repeats):
            log(f"import run {k + 1}/{repeats} ({rows_n:,} rows)")
            runs.append((_run_child("import", store.customers_db_path, orders, work),
                         _run_child("bare", store.customers_db_path, orders, work),
                         _run_child("bare_pandas", store.customers_db_path, orders, work)))

        def timing(side: int, key: str) -> Timing:
            return Timing([run[side][key] for run in runs])

        first, again = timing(0, "first"), timing(0, "again")
        by_csv, by_pandas = timing(1, "bare"), timing(2, "bare")
        side, bare_t = min(((1, by_csv), (2, by_pandas)), key=lambda x: x[1].median)
        bare_name = ("csv.reader" if side == 1 else "pandas.read_csv") + " + executemany (the faster bare insert)"
        ratio = first.median / bare_t.median
        section.add(Row("first import (`import_file`, all rows inserted, with the money balance)", first,
                        reference=bare_t, reference_name=bare_name, target=f"≤ {TARGET_RATIO:g}× the bare insert",
                        met=ratio <= TARGET_RATIO))
        section.add(Row("first import throughput", Timing([rows_n / t for t in timing(0, "first").runs]),
                        unit="rows/s", reference=Timing([rows_n / t for t in bare_t.runs]), reference_name="bare"))
        section.add(Row("re-import of the unchanged file (all unchanged)", again, reference=first,
                        reference_name="first import", target="≤ the first import", met=again.median <= first.median))
        section.add(Row("first import, CPU time of the process", timing(0, "first_cpu"),
                        reference=timing(side, "bare_cpu"), reference_name="bare insert CPU",
                        note="less sensitive to other work on the machine"))
        section.add(Row("re-import, CPU time of the process", timing(0, "again_cpu"), reference=timing(0, "first_cpu"),
                        reference_name="first import CPU"))
        section.add(Row("bare insert: csv.reader + executemany", by_csv, reference=first,
                        reference_name="first import"))
        section.add(Row("bare insert: pandas.read_csv + executemany", by_pandas, reference=first,
                        reference_name="first import"))
        section.add(Row("bare insert: executemany only (rows already parsed by csv.reader)", timing(1, "insert_only")))
        section.add(Row("peak memory of the importing process", timing(0, "maxrss_mb"), unit="MiB",
                        reference=timing(side, "maxrss_mb"), reference_name="bare insert process"))
        section.notes.append(
            f"{plural(repeats, 'run')} each; every run in a fresh process on a fresh copy of a store holding "
            f"{store.counts['customers']:,} customers. The file is the first {rows_n:,} of the scale store's orders "
            f"in the columns {', '.join(PLAIN_COLUMNS)}. The reference is the faster (by median) of the two bare "
            "inserts, each run in the same session on the same file. Peak memory is the process's `VmHWM` at its end."
        )
        if profile or (profile is None and (ratio > TARGET_RATIO or again.median > first.median)):
            section.notes.append(_profile_note("import", store.customers_db_path, orders, work, "a first import"))
    return section


def _profile_note(mode: str, base: Path, csv_path: Path, work: Path, what: str) -> str:
    """Where ``what`` (child ``mode`` on a copy of ``base``) spends its time: a note with the top
    entries of a cProfile of one run on the first :data:`PROFILE_ROWS` rows of ``csv_path``."""
    sample = _head(csv_path, work / "sample.csv", PROFILE_ROWS)
    log(f"profiling {what} of the first {PROFILE_ROWS:,} rows with cProfile")
    stats = work / f"{mode}.prof"
    _run_child(mode, base, sample, work, profile_to=stats)
    return (f"Where {what} spends its time (cProfile of one import of the file's first {PROFILE_ROWS:,} rows, "
            "to keep the run short: the shares are those of the full file, the profiler's overhead inflates "
            "the total):\n\n" + top_costs(stats))


def run_export(store: ScaleStore, repeats: int, *, profile: bool | None = None) -> Section:
    """Import of a Shopify-style line-item export made from ``store``'s orders, against the bare
    insert of its lines. ``profile``: cProfile one import (None: only when a target is missed)."""
    from crm_helpers.store.connection import open_db

    lines = min(EXPORT_LINES, store.counts["orders"])
    section = Section("export", f"Import of a {lines:,}-line Shopify-style export (`crm import FILE`)",
                      busy=f"load average {load_average()} at start")
    with tempfile.TemporaryDirectory(prefix="crm-bench-export-", dir=store.db_path.parent) as tmp:
        work = Path(tmp)
        export = shopify_export(store.orders_csv, work / "shopify_orders_export.csv", lines)
        empty = work / "empty.db"
        open_db(empty).conn.close()
        runs = []  # (import, bare insert of its lines, bare inserts of the rows it stored: csv, pandas) per repeat
        rows_dir = None
        for k in range(repeats):
            log(f"line-item export run {k + 1}/{repeats} ({lines:,} lines)")
            imported = _run_child("export", empty, export, work)
            rows_dir = rows_dir or _dump_stored_rows(work / "import.db", work / "stored-rows")
            runs.append((imported, _run_child("bare_export", empty, export, work),
                         _run_child("bare_rows", empty, rows_dir, work),
                         _run_child("bare_rows_pandas", empty, rows_dir, work)))

        def timing(side: int, key: str) -> Timing:
            return Timing([run[side][key] for run in runs])

        first, lines_t = timing(0, "first"), timing(1, "bare")
        side, stored = min(((2, timing(2, "bare")), (3, timing(3, "bare"))), key=lambda x: x[1].median)
        ratio = first.median / stored.median
        reference = (f"{'csv.reader' if side == 2 else 'pandas.read_csv'} + executemany of its "
                     f"{runs[0][2]['rows']:,} stored rows into the store's tables (the faster bare insert)")
        section.add(Row(f"first import of a {lines:,}-line Shopify-style export (`crm import FILE`: customers, "
                        "products, orders, items)", first, reference=stored, reference_name=reference,
                        target=f"≤ {EXPORT_TARGET_RATIO:g}× the bare insert", met=ratio <= EXPORT_TARGET_RATIO))
        section.add(Row("first import of the export, CPU time of the process", timing(0, "first_cpu"),
                        reference=timing(side, "bare_cpu"), reference_name="bare insert CPU",
                        note="less sensitive to other work on the machine"))
        section.add(Row("the same import against the floor: its lines into one table without keys", first,
                        reference=lines_t, reference_name="csv.reader + executemany of its lines",
                        note="reading the file and writing it once; no target: the import writes four tables"))
        section.add(Row("bare insert of the stored rows: csv.reader + executemany", timing(2, "bare")))
        section.add(Row("bare insert of the stored rows: pandas.read_csv + executemany", timing(3, "bare")))
        memory, memory_bare = timing(0, "maxrss_mb"), timing(side, "maxrss_mb")
        section.add(Row("peak memory importing the line-item export", memory, unit="MiB", reference=memory_bare,
                        reference_name="bare insert process", target=f"≤ {TARGET_MEMORY_RATIO:g}× the bare insert",
                        met=memory.median / memory_bare.median <= TARGET_MEMORY_RATIO))
        section.notes.append(
            f"{plural(repeats, 'run')} each; every run in a fresh process on a fresh empty store. The export has "
            f"{len(SHOPIFY_COLUMNS)} of Shopify's columns; every third order is on two lines and every seventh on "
            "three. Peak memory is the process's `VmHWM` at its end. The bare insert, as in the orders part, "
            "is the rows the import stored (customers, products, orders, items) read from CSV and inserted into "
            "the store's own tables with their keys and indexes, in one transaction; the faster (by median) of "
            "csv.reader and pandas.read_csv is the reference. The floor is the export's "
            "lines inserted as they are into one table without keys: reading and writing the file, no more.")
        if profile or (profile is None and ratio > EXPORT_TARGET_RATIO):
            section.notes.append(_profile_note("export", empty, export, work, "the import of the export"))
    return section


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=3, metavar=("MODE", "STORE", "CSV"), required=True)
    parser.add_argument("--profile")
    args = parser.parse_args()
    _child(*args.child, args.profile)


if __name__ == "__main__":
    main()
