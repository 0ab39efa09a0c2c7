"""The right to be forgotten: erase one person's personal data everywhere the workbook keeps it.

``forget()`` works in one transaction. The person's customer id is replaced everywhere by a
random pseudonym (so amounts stay and revenue history still adds up, but nothing links the
rows to the person any more); every personal column of the schema is cleared in every table
(names, e-mail, phone, notes, interaction subjects, feedback comments); segment snapshots
follow the pseudonym; rows in import-reject files that mention the person are removed. The
erasure is logged with the pseudonym, the time and the counts, never with the erased data.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from .schema import SEGMENT_SNAPSHOTS, TABLES, personal_columns

ERASURE_LOG = "erasure_log"


class ForgetError(ValueError):
    """Nobody with that id or e-mail is in the store."""


@dataclass
class ErasureReport:
    """What ``forget`` changed: the pseudonym now standing for the person, and counts."""

    pseudonym: str
    rows_changed: dict[str, int] = field(default_factory=dict)
    reject_files_cleaned: list[str] = field(default_factory=list)
    inbox_files_mentioning: list[str] = field(default_factory=list)


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


def forget(db: Database, who: str, *, inbox: Path | None = None) -> ErasureReport:
    """Erase the personal data of the customer with id or e-mail ``who``; see the module doc."""
    customer_id, email, name, phone = _find_customer(db, who)
    pseudonym = "ERASED-" + secrets.token_hex(5).upper()
    report = ErasureReport(pseudonym)
    personal = personal_columns()
    with db.atomic():
        db.execute("PRAGMA defer_foreign_keys = ON")
        cleared = ", ".join(f"{c} = NULL" for c in personal["customers"])
        db.execute(
            f"UPDATE customers SET customer_id = ?, {cleared}, company = NULL, city = NULL, tags = NULL "
            "WHERE customer_id = ?",
            [pseudonym, customer_id],
        )
        report.rows_changed["customers"] = 1
        for table in _referencing_tables() + [SEGMENT_SNAPSHOTS]:
            sets = ["customer_id = ?"] + [f"{c} = NULL" for c in personal.get(table, [])]
            cursor = db.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE customer_id = ?", [pseudonym, customer_id])
            if cursor.rowcount:
                report.rows_changed[table] = cursor.rowcount
        if "demo_truth" in db.table_names():
            db.execute("UPDATE demo_truth SET customer_id = ? WHERE customer_id = ?", [pseudonym, customer_id])
        db.table(ERASURE_LOG).insert(
            {
                "erased_at": dt.datetime.now().isoformat(timespec="seconds"),
                "pseudonym": pseudonym,
                "rows_changed": sum(report.rows_changed.values()),
            },
            pk="id",
        )
    needles = [v for v in (customer_id, email, name, phone) if v]
    if inbox is not None and inbox.exists():
        for path in sorted(inbox.rglob("*.rejects.csv")):
            if _remove_rows_mentioning(path, needles):
                report.reject_files_cleaned.append(path.name)
        for path in sorted(inbox.iterdir()):
            if path.is_file() and not path.name.endswith(".rejects.csv") and _mentions(path, needles):
                report.inbox_files_mentioning.append(path.name)
    return report


def _mentions(path: Path, needles: list[str]) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return any(n.encode("utf-8") in data for n in needles)


def _remove_rows_mentioning(path: Path, needles: list[str]) -> bool:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    kept = [r for r in rows if not any(n in cell for cell in r for n in needles)]
    if len(kept) == len(rows):
        return False
    out = io.StringIO()
    csv.writer(out).writerows(kept)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(out.getvalue(), encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return True
