"""The right to be forgotten: erase one person's personal data everywhere the workbook keeps it.

``forget()`` works in one transaction. The person's customer id is replaced everywhere by a
random pseudonym (so amounts stay and revenue history still adds up, but nothing links the
rows to the person any more); every personal column of the schema is cleared in every table
(names, e-mail, phone, notes, interaction subjects, feedback comments); segment snapshots
follow the pseudonym; the import bookkeeping kept for undo (previous and written rows of every
batch) is rewritten the same way; rows that mention the person are removed from the import-reject
files (those in the inbox and every one an import recorded). The erasure is logged with the
pseudonym, the time and the counts, never with the erased data.

After the transaction the report packs rendered from this store are rewritten
(:func:`crm_helpers.store.pack_scrub.scrub_packs`):
every folder a pack went to is remembered in ``report_folders`` (:func:`remember_report_folder`,
called by the report runner), and in every page, notebook and CSV under it, the owner's pack and its
``share/`` copy alike, each occurrence of the person's name, e-mail, phone (as stored and in its
international form), company (when no other customer has it), customer id and free-text values
becomes the pseudonym, in whatever encoding the file holds it (as written, HTML-escaped,
JSON-escaped, CSV-quoted). A file that still holds one of them afterwards is removed, and said so.

In the same transaction the person goes on the suppression list (``suppression.py``: keyed hashes
of their identifiers), which keeps them erased: imports skip their rows, data entry refuses them,
and :func:`reapply_erasures` erases them again in a restored store or a backup being purged.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlite_utils import Database

from crm_helpers.errors import CrmError
from crm_helpers.store import config
from crm_helpers.store.files import partial_folders, remove_stale_partials
from crm_helpers.store.safe_csv import write_safe_rows
from crm_helpers.store.schema import (
    ERASURE_LOG,
    IMPORT_BATCHES,
    SEGMENT_SNAPSHOTS,
    TABLES,
    TASKS,
    personal_columns,
)
from crm_helpers.store.connection import compact_customer_search, store_path
from crm_helpers.store.suppression import (
    Erasure,
    SuppressionList,
    erased_mask,
    record_erasure,
)
from crm_helpers.store.undo import pack, unpack
from crm_helpers.store.pack_scrub import PackScrub, report_folders, scrub_packs, values_shown

_ALSO_CLEARED = ("company", "city", "tags")
"""Customer columns that are not personal data in general but can point at one person; cleared too."""


class ForgetError(CrmError, ValueError):
    """Nobody with that id or e-mail is in the store."""


@dataclass
class ErasureReport:
    """What ``forget`` changed: the pseudonym now standing for the person, and counts."""

    pseudonym: str
    rows_changed: dict[str, int] = field(default_factory=dict)
    reject_files_cleaned: list[str] = field(default_factory=list)
    inbox_files_mentioning: list[str] = field(default_factory=list)
    packs: PackScrub | None = None
    """What :func:`scrub_packs` rewrote and removed in the report packs."""
    working_folders: list[str] = field(default_factory=list)
    """Working folders of a render or backup still running (``.crm-partial-*``), which may hold the
    person; those left by a killed process are removed by ``forget`` itself."""


def _find_customer(db: Database, who: str) -> tuple[str, str | None, str | None, str | None]:
    row = db.execute(
        "SELECT customer_id, email, name, phone FROM customers WHERE customer_id = ? OR email = ?",
        [who.strip(), who.strip().lower()],
    ).fetchone()
    if row is None:
        raise ForgetError(f"no customer with id or e-mail {who!r}")
    return row


def _referencing_tables() -> list[str]:
    return [t.name for t in TABLES.values() if t.name != "customers" and "customer_id" in t.column_names]


def forget(db: Database, who: str, *, inbox: Path | None = None, backups: Path | None = None) -> ErasureReport:
    """Erase the personal data of the customer with id or e-mail ``who``; see the module doc.

    The person goes on the suppression list in the same transaction, and the list is copied to the
    sidecar in ``backups`` (default: the store's backup folder, :func:`config.backups_dir`).
    """
    customer_id, email, name, phone = _find_customer(db, who)
    person_values = values_shown(db, customer_id)
    report = ErasureReport(_new_pseudonym())
    db.execute("PRAGMA secure_delete = ON")  # deleted values are overwritten, not left in free pages
    with db.atomic():
        db.execute("PRAGMA defer_foreign_keys = ON")
        recorded_rejects = _erase(db, customer_id, email, report)
        compact_customer_search(db)  # the search index keeps nothing of them, not even marked deleted
        record_erasure(db, report.pseudonym, person={"customer_id": customer_id, "email": email, "phone": phone},
                       rows_changed=sum(report.rows_changed.values()))
        _log(db, report)
    _after_erasure(db, backups)
    report.packs = scrub_packs(db, person_values, pseudonym=report.pseudonym)
    report.working_folders = _working_folders(db, backups)
    needles = _mentions_of(v for v in (customer_id, email, name, phone) if v)
    rejects = set(recorded_rejects)
    if inbox is not None and inbox.exists():
        rejects |= {p.parent.resolve() / p.name for p in inbox.rglob("*.rejects.csv")}  # a link stays a link
    for path in sorted(p for p in rejects if p.is_file()):
        if _remove_rows_mentioning(path, needles):
            report.reject_files_cleaned.append(str(path))
    if inbox is not None and inbox.exists():
        for path in sorted(inbox.iterdir()):
            if path.is_file() and not path.name.endswith(".rejects.csv") and _mentions(path, needles):
                report.inbox_files_mentioning.append(path.name)
    return report


def reapply_erasures(db: Database, erasures: SuppressionList) -> list[ErasureReport]:
    """Erase again every customer of ``db`` whom ``erasures`` names (a store restored from before
    their erasure, a backup being purged), under the pseudonym of their erasure (a new one if that
    is taken), in one transaction; ``db``'s suppression list gains ``erasures``. Returns one report
    per person erased again. Reject files and the sidecar are not touched: the original erasure
    cleaned and wrote them; the caller compacts or checkpoints the file."""
    reports = []
    db.execute("PRAGMA secure_delete = ON")  # deleted values are overwritten, not left in free pages
    with db.atomic():
        db.execute("PRAGMA defer_foreign_keys = ON")
        erasures.save(db)
        for customer_id, email, erasure in erased_people(db, erasures):
            taken = db.execute("SELECT 1 FROM customers WHERE customer_id = ?", [erasure.pseudonym]).fetchone()
            report = ErasureReport(_new_pseudonym() if taken else erasure.pseudonym)
            _erase(db, customer_id, email, report)
            _log(db, report)
            reports.append(report)
        if reports:
            compact_customer_search(db)
    return reports


def erased_people(db: Database, erasures: SuppressionList) -> list[tuple[str, str | None, Erasure]]:
    """``(customer_id, email, erasure)`` of every customer of ``db`` whom ``erasures`` names."""
    if not erasures or "customers" not in db.table_names():
        return []
    erasures = erasures.for_store(db)  # phones written without a country code are read in db's country
    customers = pd.DataFrame(db.execute("SELECT customer_id, email, phone FROM customers").fetchall(),
                             columns=["customer_id", "email", "phone"], dtype=object)
    held = customers[erased_mask(erasures, customers)]  # bulk: each identifier hashed once
    return [(cid, email, erasures.match({"customer_id": cid, "email": email, "phone": phone}))
            for cid, email, phone in held.itertuples(index=False)]


def _new_pseudonym() -> str:
    return "ERASED-" + secrets.token_hex(5).upper()


def _erase(db: Database, customer_id: str, email: str | None, report: ErasureReport) -> list[Path]:
    """Give the person's rows to ``report.pseudonym`` and clear their personal columns, in every
    table and in the import bookkeeping, inside the caller's transaction; counts go to ``report``.
    Returns the rejects files the imports recorded."""
    pseudonym, personal = report.pseudonym, personal_columns()
    cleared = ", ".join(f"{c} = NULL" for c in _cleared_columns("customers"))
    db.execute(f"UPDATE customers SET customer_id = ?, {cleared} WHERE customer_id = ?", [pseudonym, customer_id])
    report.rows_changed["customers"] = 1
    for table in _referencing_tables() + [SEGMENT_SNAPSHOTS]:
        sets = ["customer_id = ?"] + [f"{c} = NULL" for c in personal.get(table, [])]
        cursor = db.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE customer_id = ?", [pseudonym, customer_id])
        if cursor.rowcount:
            report.rows_changed[table] = cursor.rowcount
    if TASKS.name in db.table_names():  # the desk's tasks: their notes are the owner's words about the person
        cleared = ", ".join(f"{c.name} = NULL" for c in TASKS.columns if c.personal)
        cursor = db.execute(f"UPDATE {TASKS.name} SET customer_id = ?, {cleared} WHERE customer_id = ?",
                            [pseudonym, customer_id])
        if cursor.rowcount:
            report.rows_changed[TASKS.name] = cursor.rowcount
    if "demo_truth" in db.table_names():
        db.execute("UPDATE demo_truth SET customer_id = ? WHERE customer_id = ?", [pseudonym, customer_id])
    batches, recorded_rejects = _scrub_import_batches(db, customer_id, email, pseudonym)
    if batches:
        report.rows_changed[IMPORT_BATCHES] = batches
    return recorded_rejects


def _log(db: Database, report: ErasureReport) -> None:
    db.execute(f"INSERT INTO {ERASURE_LOG} (erased_at, pseudonym, rows_changed) VALUES (?, ?, ?)",
               [dt.datetime.now().isoformat(timespec="seconds"), report.pseudonym, sum(report.rows_changed.values())])


def _after_erasure(db: Database, backups: Path | None) -> None:
    """Empty the WAL file (its old frames still hold the erased values) and copy the suppression
    list to the sidecar beside the backups of a store file. Inside a caller's transaction both wait:
    the erasure is not committed yet (the next backup or restore copies the list)."""
    path = store_path(db)
    if path == ":memory:" or db.conn.in_transaction:
        return
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # best effort: a reader holding a snapshot defers it
    SuppressionList.load(db).write_sidecar(backups or config.backups_dir(Path(path)))


def _working_folders(db: Database, backups: Path | None) -> list[str]:
    """Remove the working folders a killed render or backup left beside the store's packs and
    backups (a store snapshot, pages: they may hold the person) and name those still in use."""
    path = store_path(db)
    places = set() if path == ":memory:" else {backups or config.backups_dir(Path(path))}
    for folder in report_folders(db):
        places |= {Path(folder), Path(folder).parent}
    left = []
    for place in sorted(places):
        remove_stale_partials(place)
        left += [str(p) for p in partial_folders(place)]
    return left


def _cleared_columns(table: str) -> list[str]:
    return personal_columns()[table] + (list(_ALSO_CLEARED) if table == "customers" else [])


def _scrub_import_batches(db: Database, customer_id: str, email: str | None, pseudonym: str) -> tuple[int, list[Path]]:
    """Rewrite the undo bookkeeping of every batch that holds the person: their id becomes the
    pseudonym and their personal columns are cleared, as in the tables. Returns the number of
    batches rewritten and the rejects files the batches recorded."""
    changed, rejects = 0, []
    rows = db.execute(f"SELECT batch_id, table_name, inserted_keys, previous_rows, written_rows FROM {IMPORT_BATCHES}")
    for batch_id, table, inserted_blob, previous_blob, written_blob in rows.fetchall():
        inserted = unpack(inserted_blob) or {}
        if inserted.get("rejects_file"):
            rejects.append(Path(inserted["rejects_file"]))
        if table not in TABLES or "customer_id" not in TABLES[table].column_names:
            continue
        position = TABLES[table].pk_columns.index("customer_id") if "customer_id" in TABLES[table].pk_columns else None
        keys = [[pseudonym if i == position and v == customer_id else v for i, v in enumerate(k)]
                for k in inserted.get("keys", [])]
        created = [pseudonym if c == customer_id else c for c in inserted.get("created_customers", [])]
        previous = unpack(previous_blob) or []
        written = unpack(written_blob) or []
        hits = _scrub_records(previous + written, table, customer_id, email, pseudonym)
        if hits or keys != inserted.get("keys", []) or created != inserted.get("created_customers", []):
            db.execute(
                f"UPDATE {IMPORT_BATCHES} SET inserted_keys = ?, previous_rows = ?, written_rows = ? WHERE batch_id = ?",
                [pack({**inserted, "keys": keys, "created_customers": created}), pack(previous), pack(written),
                 batch_id],
            )
            changed += 1
    return changed, rejects


def _scrub_records(records: Iterable[dict], table: str, customer_id: str, email: str | None, pseudonym: str) -> int:
    """Pseudonymize, in place, the records of the person (by id, or by e-mail for customers)."""
    hits = 0
    for record in records:
        if record.get("customer_id") == customer_id:
            record["customer_id"] = pseudonym
        elif not (table == "customers" and email is not None and record.get("email") == email):
            continue
        for column in _cleared_columns(table):
            if column in record:
                record[column] = None
        hits += 1
    return hits


def _mentions_of(values: Iterable[str]) -> re.Pattern[str]:
    """Any of ``values`` as a whole word, in any case (``ADA@Example.com`` as written in a file; not
    ``C12`` inside ``C123``)."""
    alternatives = "|".join(re.escape(v.strip()) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _mentions(path: Path, needles: re.Pattern[str]) -> bool:
    try:
        data = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return False
    return needles.search(data) is not None


def _remove_rows_mentioning(path: Path, needles: re.Pattern[str]) -> bool:
    """Drop the rows of a rejects file that mention the person; the file stays owner-only and is
    replaced whole (never written through a link, see :func:`crm_helpers.store.safe_csv.write_safe_rows`)."""
    if path.is_symlink():  # not ours: the workbook never writes a rejects file through a link
        return False
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    kept = [r for r in rows if not any(needles.search(cell) for cell in r)]
    if len(kept) == len(rows):
        return False
    write_safe_rows(path, kept)
    return True
