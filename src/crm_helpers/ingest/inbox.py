"""Importing every file dropped into the inbox folder.

A file whose headers are those of a known tool's export (Shopify, Stripe, ...; see
:mod:`crm_helpers.ingest.sources`) is recognised whatever its name and fills every table it holds. Any
other file is imported into the table its name starts with (``orders_2026-10.csv`` goes to
``orders``, ``customers.xlsx`` to ``customers``), or the table a ``--map`` was kept for its
layout. Unlike ``crm import``, the inbox imports the good rows of a table file with bad rows: the
bad rows, each with its reason, go to ``NAME.rejects.csv`` beside the file (removed again once
the file imports cleanly). Files already imported with the same content (same sha256 in the
import log, in a batch that was not undone) are skipped and reported with the counts of their
first import, so the inbox can be left as it is: raw files are never edited or moved. A file
whose import was taken back with ``crm undo-import`` is imported again on the next run.

A file whose rows were all in the store already (last month's export downloaded again: other
bytes, the same data) changes nothing and so leaves no import batch; the inbox records it in
:data:`~crm_helpers.store.connection.IMPORT_CHECKS` instead and skips it too, until an import it relied on is
undone (see :func:`waiting_files`).

``show(results)`` displays the outcome in a notebook and records it (a custom MIME output, like
:mod:`crm_helpers.report.headlines`) so that ``crm report`` can print one line per file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
from sqlite_utils import Database

from crm_helpers.ingest.table_import import (
    ImportRejected,
    import_file,
    read_chunks,
    rejects_path,
    remembered_mapping,
)
from crm_helpers.store.schema import IMPORT_BATCHES, IMPORT_LOG, TABLES
from crm_helpers.ingest.export_import import file_source, import_export
from crm_helpers.ingest.sources import Source
from crm_helpers.store.connection import IMPORT_CHECKS, StoreError, explain_error, store_path, write_transaction

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
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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


def _checks(db: Database) -> dict[str, dict[str, Any]]:
    """``{sha256: the check}`` for files imported with nothing to change whose check still holds
    (see :func:`waiting_files`): no import batch that stood when the file was checked was undone since."""
    rows = db.execute(
        f"SELECT c.sha256, c.checked_at, c.unchanged FROM {IMPORT_CHECKS} c WHERE c.standing_batches = "
        f"(SELECT count(*) FROM {IMPORT_BATCHES} b WHERE b.batch_id <= c.newest_batch AND b.undone_at IS NULL)"
    ).fetchall()
    return {sha: {"checked_at": at, "inserted": 0, "updated": 0, "unchanged": unchanged, "rejected": 0}
            for sha, at, unchanged in rows}


def _done(db: Database) -> dict[str, dict[str, Any]]:
    """``{sha256: counts}`` of the files the inbox need not import: those imported (with
    ``imported_at``, :func:`_first_imports`) and those checked with nothing to change (with
    ``checked_at``, :func:`_checks`); an import of the file wins over a check of it."""
    return _checks(db) | _first_imports(db)


def _record_check(db: Database, path: Path, sha: str, source: str, unchanged: int) -> None:
    """Record that ``path`` (content ``sha``, imported as ``source``: a table or a tool's key) was
    imported with nothing to change, with the undo history it relied on: the newest import batch and
    how many batches up to it stand."""
    db.execute(
        f"INSERT OR REPLACE INTO {IMPORT_CHECKS} (sha256, file_name, source, unchanged, checked_at, "
        "newest_batch, standing_batches) SELECT ?, ?, ?, ?, ?, coalesce(max(batch_id), 0), "
        f"count(*) FILTER (WHERE undone_at IS NULL) FROM {IMPORT_BATCHES}",
        [sha, path.name, source, unchanged, dt.datetime.now().isoformat(timespec="seconds")],
    )


def _inbox_files(inbox: Path) -> list[Path]:
    """The files of ``inbox`` the import looks at (supported types, not our own rejects files)."""
    return sorted(p for p in inbox.glob("*") if p.is_file() and p.suffix.lower() in SUPPORTED
                  and not p.name.endswith(".rejects.csv"))


def waiting_files(db: Database, inbox: Path) -> list[Path]:
    """The files of ``inbox`` whose content is not in the store yet: what :func:`import_inbox` may
    write. Empty when the folder does not exist.

    A file is done (not waiting) when a file of the same bytes (sha256) was imported in a batch
    that was not undone, or when the inbox imported it with nothing to change and that check still
    holds. A check holds while every import batch that stood when it was made still stands. Undoing
    any of them makes the file waiting again, and the next run imports it (recording a new check if
    it changes nothing again): the import that brought the file's rows, or any other that old, since
    the check does not record which batches its rows came from. Batches imported after the check do
    not matter: they could not have brought the file's rows, which were all in the store before them.
    """
    if not inbox.is_dir():
        return []
    done = _done(db)
    return [p for p in _inbox_files(inbox) if _sha256(p) not in done]


def import_inbox(db: Database, inbox: Path, *, dry_run: bool = False) -> pd.DataFrame:
    """Import every supported file in ``inbox``; one result row per file.

    Columns: file, table, status (imported, already imported, rejected, skipped, checked), inserted,
    updated, unchanged, rejected (rows), rejects_file (the file of bad rows and reasons, or ""),
    message (one full line for a person). A file rejected as a whole leaves the store unchanged;
    a file with some bad rows is imported without them. A file already imported is reported with
    the counts of its first import. A file whose import changes nothing is recorded as checked, in
    the import's transaction, and reported as already imported on the next runs (see
    :func:`waiting_files` for how long that holds).
    """
    rows = []
    files = _inbox_files(inbox)
    done = _done(db)
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
        sha = _sha256(path) if row["table"] else ""
        first = done.get(sha)
        if row["table"] is None:
            row.update(status="skipped", message=f"{path.name}: skipped, neither a known tool's export nor named "
                       "after a table (e.g. orders_2026-10.csv, customers.xlsx)")
        elif first and "checked_at" in first:
            row.update(status="already imported", unchanged=first["unchanged"],
                       message=f"{path.name}: checked on {first['checked_at'][:10]}: all its rows "
                       f"({first['unchanged']}) were in the store already, so there was nothing to import; "
                       "not imported again")
        elif first:
            counts = {k: first[k] for k in ("inserted", "updated", "unchanged", "rejected")}
            row.update(status="already imported", **counts,
                       rejects_file=stale.name if first["rejected"] and stale.exists() else "",
                       message=f"{path.name}: already imported on {first['imported_at'][:10]} "
                       f"({counts['inserted']} inserted, {counts['updated']} updated, "
                       f"{counts['rejected']} rejected); same content, not imported again")
        else:
            imported_as = row["table"]
            try:
                with nullcontext() if dry_run else write_transaction(db):  # the import and its check at once
                    if source:
                        result = import_export(db, path, dry_run=dry_run)
                        counts = {k: sum(getattr(r, k) for r in result.tables.values())
                                  for k in ("inserted", "updated", "unchanged")}
                        row.update(table=", ".join(result.tables) or source.key, **counts)
                        changed = bool(result.batch_ids)
                    else:
                        result = import_file(db, imported_as, path=path, dry_run=dry_run, skip_bad_rows=True)
                        row.update(inserted=result.inserted, updated=result.updated, unchanged=result.unchanged,
                                   rejected=result.rejected)
                        changed = result.batch_id is not None
                    if not (dry_run or changed):
                        _record_check(db, path, sha, imported_as, row["unchanged"])
            except (ImportRejected, ValueError) as exc:
                row.update(status="rejected", message=f"{exc} (nothing of this file was imported)")
            except StoreError as exc:  # a store of a newer workbook, or replaced since it was opened
                row.update(status="rejected", message=f"{path.name}: nothing of this file was imported: {exc}")
            except sqlite3.DatabaseError as exc:  # the store busy, full or read-only: the import rolled back
                row.update(status="rejected", message=f"{path.name}: nothing of this file was imported: "
                           f"{explain_error(store_path(db), exc)}")
            else:
                if not dry_run and not row["rejected"]:
                    stale.unlink(missing_ok=True)  # the rows it listed are fixed now
                rejects = getattr(result, "rejects_path", None)
                row.update(status="checked" if dry_run else "imported", rejects_file=rejects.name if rejects else "",
                           message=result.summary())
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def rejected_rows(results: pd.DataFrame, inbox: Path, *, limit: int = 25) -> pd.DataFrame:
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
