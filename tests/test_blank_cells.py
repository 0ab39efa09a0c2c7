"""An empty cell never overwrites what the store knows (docs/bringing-your-data-in.md), in every
table imported by name (`crm import TABLE FILE`) and in a tool's export; and a spreadsheet's
Excel guards (`'+1 514…`, `="0012345"`) are taken off phones and ids."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_helpers.cli import main
from crm_helpers.ingest.export_import import import_export
from crm_helpers.ingest.table_import import import_file
from crm_helpers.store.connection import memory_db, open_db
from crm_helpers.store.schema import TABLES, Column, Table


def _value(column: Column) -> object:
    """A valid, non-empty value of ``column`` (its id columns point at the parents of :func:`_parents`)."""
    if column.references:
        return "P-" + column.references.split(".")[0]
    if column.allowed:
        return column.allowed[0]
    if column.type == "date":
        return "2026-03-04"
    if column.type == "datetime":
        return "2026-03-04 10:05:00"
    if column.type == "bool":
        return "1"
    if column.type in ("integer", "real"):
        return str(int(column.minimum or 0) + 1 if column.maximum is None or column.maximum >= 1 else column.maximum)
    return f"{column.name} value"


def _parents(db, table: Table) -> None:
    """One row in each table ``table`` refers to, keyed as :func:`_value` names it."""
    for column in table.columns:
        if column.references:
            parent = TABLES[column.references.split(".")[0]]
            _parents(db, parent)
            db.table(parent.name).insert({c.name: "P-" + parent.name if c.name in parent.pk_columns else _value(c)
                                          for c in parent.columns if c.required}, pk=parent.pk, replace=True)


def _write(path: Path, header: list[str], row: list[object]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, row])
    return path


def _keyed(table: Table, column: Column) -> bool:
    return column.name in table.pk_columns


@pytest.mark.parametrize("name", sorted(TABLES))
def test_a_file_of_empty_cells_keeps_every_stored_value(tmp_path, name):
    table = TABLES[name]
    db = memory_db()
    _parents(db, table)
    header = [c.name for c in table.columns]
    full = [_value(c) if not _keyed(table, c) or c.references else f"K-{c.name}" for c in table.columns]
    if name == "customers":
        full[header.index("email")] = "zoe@example.org"
    import_file(db, name, path=_write(tmp_path / "full.csv", header, full))
    stored = [dict(r) for r in db.query(f"SELECT * FROM {name}")]
    assert len(stored) == 1 and all(v is not None for v in stored[0].values()), stored
    # the same row again with only its key and required cells written: nothing stored is erased
    blank = [v if _keyed(table, c) or c.required else "" for c, v in zip(table.columns, full)]
    result = import_file(db, name, path=_write(tmp_path / "blank.csv", header, blank))
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 1)
    assert [dict(r) for r in db.query(f"SELECT * FROM {name}")] == stored


def test_crm_import_customers_with_empty_email_and_phone_keeps_them(tmp_path):
    db_path = tmp_path / "crm.db"
    runner = CliRunner()
    first = _write(tmp_path / "c1.csv", ["customer_id", "name", "email", "phone"],
                   ["C00001", "Zoe", "zoe@example.org", "+32 470 12 34 56"])
    assert runner.invoke(main, ["import", "customers", str(first), "--db", str(db_path)]).exit_code == 0
    again = _write(tmp_path / "c2.csv", ["customer_id", "name", "email", "phone"], ["C00001", "Zoe", "", ""])
    out = runner.invoke(main, ["import", "customers", str(again), "--db", str(db_path)])
    assert out.exit_code == 0, out.output
    row = dict(next(open_db(db_path).query("SELECT * FROM customers")))
    assert (row["name"], row["email"], row["phone"]) == ("Zoe", "zoe@example.org", "+32 470 12 34 56")


def test_a_new_value_still_replaces_the_stored_one(tmp_path):
    db = memory_db()
    import_file(db, "customers", path=_write(tmp_path / "a.csv", ["customer_id", "email", "phone"],
                                             ["C1", "zoe@example.org", "111"]))
    import_file(db, "customers", path=_write(tmp_path / "b.csv", ["customer_id", "email", "phone"], ["C1", "", "222"]))
    row = dict(next(db.query("SELECT email, phone FROM customers")))
    assert row == {"email": "zoe@example.org", "phone": "222"}


def test_an_orders_file_without_refunds_keeps_the_stored_refund_and_a_new_order_has_none(tmp_path):
    db = memory_db()
    header = ["order_id", "customer_id", "order_date", "amount", "refunded_amount", "status"]
    import_file(db, "orders", path=_write(tmp_path / "a.csv", header, ["O1", "C1", "2026-01-05", "50", "20", "paid"]),
                create_missing_customers=True)
    plain = tmp_path / "b.csv"
    plain.write_text("order_id,customer_id,order_date,amount,status\nO1,C1,2026-01-05,50,paid\n"
                     "O2,C1,2026-01-06,30,paid\nO3,C1,2026-01-07,40,refunded\n")
    import_file(db, "orders", path=plain)
    refunded = dict(db.execute("SELECT order_id, refunded_amount FROM orders").fetchall())
    assert refunded == {"O1": 20.0, "O2": 0.0, "O3": 40.0}


def test_a_tool_export_with_empty_cells_keeps_what_the_store_knows(tmp_path):
    db = memory_db()
    import_file(db, "customers", path=_write(tmp_path / "c.csv", ["customer_id", "email", "phone", "city"],
                                             ["7001", "alice@example.com", "+33 4 72 00 00 00", "Lyon"]))
    export = tmp_path / "stripe.csv"  # Stripe payments header (tests/fixtures/sources/stripe_payments.csv)
    export.write_text("id,Created (UTC),Amount,Amount Refunded,Currency,Status,Customer ID,Customer Email,"
                      "Card Address City,Card Address Country\n"
                      "ch_1,2026-06-02 14:05:11,120.00,0.00,eur,Paid,,alice@example.com,,FR\n")
    import_export(db, export)
    row = dict(next(db.query("SELECT * FROM customers WHERE customer_id = '7001'")))
    assert (row["phone"], row["city"], row["country"]) == ("+33 4 72 00 00 00", "Lyon", "FR")


@pytest.mark.parametrize("cell, stored", [("'+1 514 555 0101", "+1 514 555 0101"),
                                          ('="+1 514 555 0101"', "+1 514 555 0101"),
                                          ("+1 514 555 0101", "+1 514 555 0101")])
def test_excel_guards_are_taken_off_phones_and_ids(tmp_path, cell, stored):
    db = memory_db()
    import_file(db, "customers", path=_write(tmp_path / "c.csv", ["customer_id", "name", "phone"],
                                             ["'0012345", "'t Hooft", cell]))
    row = dict(next(db.query("SELECT customer_id, name, phone FROM customers")))
    assert row == {"customer_id": "0012345", "name": "'t Hooft", "phone": stored}  # a name keeps its apostrophe
