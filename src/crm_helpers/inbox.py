"""Importing every file dropped into the inbox folder.

A file whose headers are those of a known tool's export (Shopify, Stripe, ...; see
:mod:`crm_helpers.sources`) is recognised whatever its name and fills every table it holds.
Any other file is imported into the table its name starts with (``orders_2026-10.csv`` goes to
``orders``, ``customers.xlsx`` to ``customers``), or the table a ``--map`` was kept for its layout. Files already imported with the same
content (same sha256 in the import log, in a batch that was not undone) are skipped, so the
inbox can be left as it is: raw files are never edited or moved. A file whose import was taken
back with ``crm undo-import`` is imported again on the next run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from sqlite_utils import Database

from .importing import ImportRejected, import_file, read_rows, remembered_mapping
from .schema import IMPORT_BATCHES, IMPORT_LOG, TABLES
from .source_import import find_source, import_export
from .sources import Source

SUPPORTED = (".csv", ".tsv", ".txt", ".xlsx")


def table_for_file(path: Path) -> str | None:
    """The table a file belongs to, from the start of its name (longest table name first)."""
    stem = path.stem.lower().replace("-", "_").replace(" ", "_")
    for name in sorted(TABLES, key=len, reverse=True):
        if stem == name or stem.startswith(name + "_") or stem.startswith(name):
            return name
    return None


def source_for_file(path: Path) -> Source | None:
    """The known tool whose export ``path`` is, from its headers (None when none, or unreadable)."""
    try:
        header, data = read_rows(path)
    except ImportRejected:
        return None
    found = find_source(header, data)
    return found[0] if found else None


def _remembered_table(db: Database, path: Path) -> str | None:
    """The table of a layout imported before with ``--map`` (None when unknown or unreadable)."""
    try:
        saved = remembered_mapping(db, read_rows(path)[0])
    except ImportRejected:
        return None
    return saved[0] if saved else None


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
    sources = {p: source_for_file(p) for p in files}
    # parents first, so that orders find the customers imported in the same run; a known tool's
    # export (which brings its own customers) after the plain customer and product files
    order = {name: i for i, name in enumerate(TABLES)}
    files.sort(key=lambda p: (order["orders"] - 0.5 if sources[p] else order.get(table_for_file(p) or "", 99), p.name))
    for path in files:
        source = sources[path]
        table = table_for_file(path) or _remembered_table(db, path)
        row = {"file": path.name, "table": source.key if source else table, "status": "",
               "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0, "message": ""}
        if row["table"] is None:
            row.update(status="skipped", message="neither a known tool's export nor named after a table (orders_…)")
        elif _sha256(path) in done:
            row.update(status="already imported", message="same content as an earlier import")
        else:
            try:
                if source:
                    result = import_export(db, path, dry_run=dry_run)
                    counts = {k: sum(getattr(r, k) for r in result.tables.values())
                              for k in ("inserted", "updated", "unchanged")}
                    row.update(table=", ".join(result.tables) or source.key, **counts)
                else:
                    result = import_file(db, row["table"], path, dry_run=dry_run, skip_bad_rows=True)
                    row.update(inserted=result.inserted, updated=result.updated, unchanged=result.unchanged,
                               rejected=result.rejected)
            except (ImportRejected, ValueError) as exc:
                row.update(status="rejected", message=str(exc))
            else:
                row.update(status="checked" if dry_run else "imported", message=result.summary())
        rows.append(row)
    return pd.DataFrame(rows, columns=["file", "table", "status", "inserted", "updated", "unchanged", "rejected",
                                       "message"])
