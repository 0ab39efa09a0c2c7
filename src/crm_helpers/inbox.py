"""Importing every file dropped into the inbox folder.

A file whose headers are those of a known tool's export (Shopify, Stripe, ...; see
:mod:`crm_helpers.sources`) is recognised whatever its name and fills every table it holds. Any
other file is imported into the table its name starts with (``orders_2026-10.csv`` goes to
``orders``, ``customers.xlsx`` to ``customers``), or the table a ``--map`` was kept for its
layout. Unlike ``crm import``, the inbox imports the good rows of a table file with bad rows: the
bad rows, each with its reason, go to ``NAME.rejects.csv`` beside the file (removed again once
the file imports cleanly). Files already imported with the same content (same sha256 in the
import log, in a batch that was not undone) are skipped and reported with the counts of their
first import, so the inbox can be left as it is: raw files are never edited or moved. A file
whose import was taken back with ``crm undo-import`` is imported again on the next run.

``show(results)`` displays the outcome in a notebook and records it (a custom MIME output, like
:mod:`crm_helpers.report.headlines`) so that ``crm report`` can print one line per file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
from sqlite_utils import Database

from .importing import ImportRejected, import_file, read_chunks, rejects_path, remembered_mapping
from .schema import IMPORT_BATCHES, IMPORT_LOG, TABLES
from .source_import import file_source, import_export
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
        found = file_source(path)[1]
    except ImportRejected:
        return None
    return found[0] if found else None


def _remembered_table(db: Database, path: Path) -> str | None:
    """The table of a layout imported before with ``--map`` (None when unknown or unreadable)."""
    try:
        saved = remembered_mapping(db, read_chunks(path)[0])
    except ImportRejected:
        return None
    return saved[0] if saved else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


COLUMNS = ["file", "table", "status", "inserted", "updated", "unchanged", "rejected", "rejects_file", "message"]
MIME_TYPE = "application/vnd.crm-inbox+json"


def _first_imports(db: Database) -> dict[str, dict[str, Any]]:
    """``{sha256: counts of its first import}`` for files imported in batches that were not undone."""
    rows = db.execute(  # an export that filled several tables is one group of batches: its counts summed
        f"SELECT l.sha256, min(l.imported_at), sum(l.inserted), sum(l.updated), sum(l.unchanged), sum(l.rejected) "
        f"FROM {IMPORT_LOG} l LEFT JOIN {IMPORT_BATCHES} b ON b.batch_id = l.batch_id WHERE b.undone_at IS NULL "
        "GROUP BY l.sha256, coalesce(l.group_id, l.batch_id) ORDER BY min(l.batch_id)"
    ).fetchall()
    first: dict[str, dict[str, Any]] = {}
    for sha, at, ins, upd, unch, rej in rows:
        first.setdefault(sha, {"imported_at": at, "inserted": ins, "updated": upd, "unchanged": unch,
                               "rejected": rej})
    return first


def _inbox_files(inbox: Path) -> list[Path]:
    """The files of ``inbox`` the import looks at (supported types, not our own rejects files)."""
    return sorted(p for p in inbox.glob("*") if p.is_file() and p.suffix.lower() in SUPPORTED
                  and not p.name.endswith(".rejects.csv"))


def waiting_files(db: Database, inbox: Path) -> list[Path]:
    """The files of ``inbox`` whose content is not in the store yet (no import of it that was not
    undone): what :func:`import_inbox` may write. Empty when the folder does not exist."""
    if not inbox.is_dir():
        return []
    done = _first_imports(db)
    return [p for p in _inbox_files(inbox) if _sha256(p) not in done]


def import_inbox(db: Database, inbox: Path, *, dry_run: bool = False) -> pd.DataFrame:
    """Import every supported file in ``inbox``; one result row per file.

    Columns: file, table, status (imported, already imported, rejected, skipped, checked), inserted,
    updated, unchanged, rejected (rows), rejects_file (the file of bad rows and reasons, or ""),
    message (one full line for a person). A file rejected as a whole leaves the store unchanged;
    a file with some bad rows is imported without them. A file already imported is reported with
    the counts of its first import.
    """
    rows = []
    files = _inbox_files(inbox)
    done = _first_imports(db)
    sources = {p: source_for_file(p) for p in files}
    # parents first, so that orders find the customers imported in the same run; a known tool's
    # export (which brings its own customers) after the plain customer and product files
    order = {name: i for i, name in enumerate(TABLES)}
    files.sort(key=lambda p: (order["orders"] - 0.5 if sources[p] else order.get(table_for_file(p) or "", 99), p.name))
    for path in files:
        source = sources[path]
        table = table_for_file(path) or _remembered_table(db, path)
        row: dict[str, Any] = {"file": path.name, "table": source.key if source else table, "status": "",
                               "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0, "rejects_file": "",
                               "message": ""}
        stale = rejects_path(path)
        first = done.get(_sha256(path)) if row["table"] else None
        if row["table"] is None:
            row.update(status="skipped", message=f"{path.name}: skipped, neither a known tool's export nor named "
                       "after a table (e.g. orders_2026-10.csv, customers.xlsx)")
        elif first:
            counts = {k: first[k] for k in ("inserted", "updated", "unchanged", "rejected")}
            row.update(status="already imported", **counts,
                       rejects_file=stale.name if first["rejected"] and stale.exists() else "",
                       message=f"{path.name}: already imported on {first['imported_at'][:10]} "
                       f"({counts['inserted']} inserted, {counts['updated']} updated, "
                       f"{counts['rejected']} rejected); same content, not imported again")
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
                row.update(status="rejected", message=f"{exc} (nothing of this file was imported)")
            else:
                if not dry_run and not row["rejected"]:
                    stale.unlink(missing_ok=True)  # the rows it listed are fixed now
                rejects = getattr(result, "rejects_path", None)
                row.update(status="checked" if dry_run else "imported", rejects_file=rejects.name if rejects else "",
                           message=result.summary())
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def rejected_rows(results: pd.DataFrame, inbox: Path, limit: int = 25) -> pd.DataFrame:
    """The bad rows behind ``results``: file, row number in the file, and the reasons (at most ``limit``)."""
    frames = []
    for name in results.get("rejects_file", pd.Series(dtype=str)):
        if name and (inbox / name).exists():
            frame = pd.read_csv(inbox / name, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                                usecols=["row", "reasons"])
            frames.append(frame.assign(file=name.removesuffix(".rejects.csv")))
    if not frames:
        return pd.DataFrame(columns=["file", "row", "reasons"])
    return pd.concat(frames, ignore_index=True)[["file", "row", "reasons"]].head(limit)


def show(results: pd.DataFrame) -> None:
    """Display the inbox outcome in a notebook (a full sentence per file) and record it for ``crm report``."""
    from IPython.display import display

    lines = [str(m) for m in results["message"]]
    display({MIME_TYPE: results.to_dict(orient="records"), "text/plain": "\n".join(lines)}, raw=True)
