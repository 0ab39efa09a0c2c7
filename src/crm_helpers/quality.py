"""Data-quality overview of the store: what is there, and what looks wrong.

Every figure is an SQL aggregate, so the overview stays cheap on a large store.
"""

from __future__ import annotations

import pandas as pd
from sqlite_utils import Database

from .data import query_df

DATE_COLUMNS = {
    "customers": "first_seen",
    "campaigns": "start_date",
    "orders": "order_date",
    "interactions": "occurred_at",
    "campaign_contacts": "contacted_at",
    "feedback": "submitted_at",
    "tickets": "opened_at",
    "opportunities": "opened_at",
}


def table_overview(db: Database) -> pd.DataFrame:
    """One row per table: rows, first and last date (of the table's main date column)."""
    rows = []
    for table in ("customers", "products", "campaigns", "orders", "order_items", "interactions",
                  "campaign_contacts", "feedback", "tickets", "opportunities"):
        col = DATE_COLUMNS.get(table)
        if col:
            n, first, last = db.execute(f"SELECT count(*), min({col}), max({col}) FROM {table}").fetchone()
        else:
            n, first, last = db.execute(f"SELECT count(*), NULL, NULL FROM {table}").fetchone()
        rows.append({"table": table, "rows": n, "first": (first or "")[:10], "last": (last or "")[:10]})
    return pd.DataFrame(rows)


CHECKS: dict[str, tuple[str, str]] = {
    "customers without e-mail": (
        "SELECT count(*) FROM customers WHERE email IS NULL OR email = ''",
        "Add an e-mail to reach them and to match later imports.",
    ),
    "customers without consent flag": (
        "SELECT count(*) FROM customers WHERE consent_marketing IS NULL",
        "Unknown consent counts as no consent in segment exports.",
    ),
    "paid orders without items": (
        "SELECT count(*) FROM orders o WHERE status = 'paid' "
        "AND NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.order_id)",
        "Cross-sell analysis ignores these orders.",
    ),
    "orders without cost": (
        "SELECT count(*) FROM orders WHERE cost IS NULL",
        "Margins use the notebooks' default profit margin for these.",
    ),
    "orders with amount 0": (
        "SELECT count(*) FROM orders WHERE amount = 0 AND status = 'paid'",
        "Free orders count as purchases but add no revenue.",
    ),
    "customers who never ordered": (
        "SELECT count(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id)",
        "Prospects and leads; they appear in the pipeline, not in RFM.",
    ),
    "open tickets": (
        "SELECT count(*) FROM tickets WHERE status <> 'closed'",
        "See the satisfaction review for their age.",
    ),
}


def quality_checks(db: Database) -> pd.DataFrame:
    """Counts of common data problems, each with what it means for the analyses."""
    rows = [
        {"check": name, "count": db.execute(sql).fetchone()[0], "what it means": hint}
        for name, (sql, hint) in CHECKS.items()
    ]
    return pd.DataFrame(rows)


def import_history(db: Database, limit: int = 20) -> pd.DataFrame:
    """The latest imports from the import log, newest first."""
    return query_df(
        db,
        "SELECT batch_id, imported_at, file_name, table_name, inserted, updated, unchanged, rejected "
        "FROM import_log ORDER BY batch_id DESC LIMIT ?",
        [limit],
    )
