"""Importing every file dropped into the inbox folder.

A file is imported into the table its name starts with (``orders_2026-10.csv`` goes to
``orders``, ``customers.xlsx`` to ``customers``). Files already imported with the same
content (same sha256 in the import log, in a batch that was not undone) are skipped, so the
inbox can be left as it is: raw files are never edited or moved. A file whose import was taken
back with ``crm undo-import`` is imported again on the next run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from sqlite_utils import Database

from .importing import ImportRejected, import_file
from .schema import IMPORT_BATCHES, IMPORT_LOG, TABLES

SUPPORTED = (".csv", ".tsv", ".txt", ".xlsx")


def table_for_file(path: Path) -> str | None:
    """The table a file belongs to, from the start of its name (longest table name first)."""
    stem = path.stem.lower().replace("-", "_").replace(" ", "_")
    for name in sorted(TABLES, key=len, reverse=True):
        if stem == name or stem.startswith(name + "_") or stem.startswith(name):
            return name
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_inbox(db: Database, inbox: Path, *, dry_run: bool = False) -> pd.DataFrame:
    """Import every supported file in ``inbox``; one result row per file.

    Columns: file, table, status (imported, already imported, rejected, skipped), inserted,
    updated, unchanged, rejected, message. A rejected file leaves the store unchanged.
    """
    rows = []
    files = sorted(p for p in inbox.glob("*") if p.is_file() and p.suffix.lower() in SUPPORTED
                   and not p.name.endswith(".rejects.csv"))
    done = {r[0] for r in db.execute(
        f"SELECT l.sha256 FROM {IMPORT_LOG} l LEFT JOIN {IMPORT_BATCHES} b ON b.batch_id = l.batch_id "
        "WHERE b.undone_at IS NULL").fetchall()}
    # parents first, so that orders find the customers imported in the same run
    order = {name: i for i, name in enumerate(TABLES)}
    files.sort(key=lambda p: (order.get(table_for_file(p) or "", 99), p.name))
    for path in files:
        row = {"file": path.name, "table": table_for_file(path), "status": "", "inserted": 0, "updated": 0,
               "unchanged": 0, "rejected": 0, "message": ""}
        if row["table"] is None:
            row.update(status="skipped", message="name does not start with a table name (e.g. orders_…)")
        elif _sha256(path) in done:
            row.update(status="already imported", message="same content as an earlier import")
        else:
            try:
                result = import_file(db, row["table"], path, dry_run=dry_run, skip_bad_rows=True)
            except (ImportRejected, ValueError) as exc:
                row.update(status="rejected", message=str(exc))
            else:
                row.update(status="checked" if dry_run else "imported", inserted=result.inserted,
                           updated=result.updated, unchanged=result.unchanged, rejected=result.rejected,
                           message=result.summary())
        rows.append(row)
    return pd.DataFrame(rows, columns=["file", "table", "status", "inserted", "updated", "unchanged", "rejected",
                                       "message"])
