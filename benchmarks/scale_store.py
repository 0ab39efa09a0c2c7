"""The scale store: the demo business at 100,000 customers and about 1,000,000 orders.

Built once per set of parameters and cached in ``benchmarks/scale/<name>-<key>/``, the key made
of the parameters and the source of the generator and schema (a change to either builds a new
one and removes the older ``<name>-*`` folders):

- ``store.db``: every table, written with plain ``executemany`` in one transaction
  (``write_demo`` goes through sqlite-utils' dict rows, about 3x slower at this size);
- ``customers.db``: customers, products and campaigns only, the starting point of the import
  benchmark;
- ``orders.csv``: the orders table as an export file, the import benchmark's input;
- ``store.json``: row counts and how long generating and writing took.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from crm_helpers import demo
from crm_helpers.store import schema
from crm_helpers.demo import DEMO_TRUTH, DemoBusiness, generate_demo
from crm_helpers.store.schema import LOAD_ORDER
from crm_helpers.store.connection import open_db

SCALE_DIR = Path(__file__).resolve().parent / "scale"

IMPORT_BASE_TABLES = ("customers", "products", "campaigns")
"""What the import benchmark's store holds before the orders arrive."""


@dataclass(frozen=True)
class StoreSpec:
    """Parameters of a generated store (``generate_demo``'s arguments) and its folder's name."""

    name: str = "scale"
    customers: int = 100_000
    months: int = 24
    seed: int = 2026
    end: str = "2026-10"
    purchase_rate_scale: float = 3.4
    dropout_scale: float = 0.3

    @property
    def period(self) -> tuple[str, str]:
        """The report month the benchmarks render: the store's last month."""
        start = pd.Timestamp(f"{self.end}-01")
        return start.date().isoformat(), (start + pd.offsets.MonthEnd(0)).date().isoformat()

    def key(self) -> str:
        h = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode())
        for module in (demo, schema):
            h.update(Path(module.__file__).read_bytes())
        return h.hexdigest()[:12]


SCALE = StoreSpec()
"""100,000 buyers over 24 months with purchase rates ×3.4 and dropout ×0.3: about 10 orders each."""

QUICK = StoreSpec(name="quick", customers=300, months=12, seed=7, purchase_rate_scale=1.0, dropout_scale=1.0)
"""A tiny store for ``--quick`` smoke runs."""


@dataclass
class ScaleStore:
    """Paths and facts of a built store."""

    spec: StoreSpec
    db_path: Path
    customers_db_path: Path
    orders_csv: Path
    counts: dict[str, int]
    generate_seconds: float
    write_seconds: float
    cached: bool


def _rows(frame: pd.DataFrame):
    return frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)


def write_tables(path: Path, business: DemoBusiness, tables: tuple[str, ...], truth: bool) -> None:
    """Write ``tables`` of ``business`` (and the demo truth) into a new store at ``path``."""
    db = open_db(path)
    conn = db.conn
    # a fresh file that is rebuilt if anything goes wrong: no journal while loading, WAL after;
    # the generator's rows are consistent by construction, so foreign keys are not re-checked
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")
    with conn:
        for name in tables:
            frame = business.tables[name]
            cols = list(frame.columns)
            conn.executemany(
                f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", _rows(frame)
            )
    if truth:
        db.table(DEMO_TRUTH).insert_all(
            business.truth.astype(object).where(business.truth.notna(), None).to_dict("records"),
            pk="customer_id", batch_size=5000,
        )
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


def build(spec: StoreSpec = SCALE, folder: Path = SCALE_DIR, *, log=print) -> ScaleStore:
    """The store for ``spec`` in ``folder``: the cached one, or a new one built now."""
    key = spec.key()
    home = folder / f"{spec.name}-{key}"
    home.mkdir(parents=True, exist_ok=True)
    db_path, customers_db = home / "store.db", home / "customers.db"
    csv_path, meta_path = home / "orders.csv", home / "store.json"
    if all(p.exists() for p in (db_path, customers_db, csv_path, meta_path)):
        for cached in (db_path, customers_db):  # brought to the current schema once, not in each timed copy
            open_db(cached).conn.close()
        meta = json.loads(meta_path.read_text())
        return ScaleStore(spec, db_path, customers_db, csv_path, meta["counts"], meta["generate_seconds"],
                          meta["write_seconds"], cached=True)
    log(f"generating the store {asdict(spec)} (cached afterwards in {home})")
    started = time.perf_counter()
    business = generate_demo(customers=spec.customers, months=spec.months, seed=spec.seed, end=spec.end,
                             purchase_rate_scale=spec.purchase_rate_scale, dropout_scale=spec.dropout_scale)
    generated = time.perf_counter() - started
    counts = {name: len(frame) for name, frame in business.tables.items()}
    log(f"generated in {generated:.0f} s: {counts}")
    started = time.perf_counter()
    for target, tables, truth in ((db_path, LOAD_ORDER, True), (customers_db, IMPORT_BASE_TABLES, False)):
        tmp = target.with_name(target.name + ".tmp")
        for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            stale.unlink(missing_ok=True)
        write_tables(tmp, business, tables, truth)
        os.replace(tmp, target)
    tmp_csv = csv_path.with_name(csv_path.name + ".tmp")
    business.tables["orders"].to_csv(tmp_csv, index=False)
    os.replace(tmp_csv, csv_path)
    written = time.perf_counter() - started
    log(f"written in {written:.0f} s")
    meta_path.write_text(json.dumps({"spec": asdict(spec), "counts": counts, "generate_seconds": generated,
                                     "write_seconds": written}, indent=1))
    for old in folder.glob(f"{spec.name}-*"):  # stores of older parameters or generator versions
        if old != home and old.is_dir():
            shutil.rmtree(old)
    return ScaleStore(spec, db_path, customers_db, csv_path, counts, generated, written, cached=False)
