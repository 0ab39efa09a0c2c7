"""The money balance of a named-table import (`crm import orders FILE`): the file's money = paid +
refunded + failed/cancelled + erased + rejected, and the refunds the file records are on stored
orders, per currency; kept with the batch (import_log.balance). An orders file whose balance does
not close is refused naming the difference (with --skip-bad-rows: imported with the gap listed).
The files here are hand-written in the workbook's own column names (docs/bringing-your-data-in.md)."""

from __future__ import annotations

import json

import pytest

from crm_helpers.ingest.table_import import ImportRejected, import_file
from crm_helpers.store.connection import memory_db

ORDERS = """order_id,customer_id,order_date,amount,refunded_amount,currency,status
A1,C1,2026-03-01,100.00,,EUR,paid
A2,C1,2026-03-02,40.00,10.00,EUR,paid
A3,C2,2026-03-03,25.50,,EUR,refunded
A4,C2,2026-03-04,12.00,,EUR,cancelled
A5,C2,2026-03-05,-8.00,,EUR,paid
A6,C1,2026-03-06,30.00,,USD,paid
"""


@pytest.fixture
def db():
    store = memory_db()
    store["customers"].insert_all([{"customer_id": "C1"}, {"customer_id": "C2"}])
    return store


def _write(tmp_path, text: str, name: str = "orders.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_orders_file_ends_with_its_balance_per_currency_kept_with_the_batch_and_again_on_reimport(db, tmp_path):
    path = _write(tmp_path, ORDERS)
    first = import_file(db, "orders", path=path)
    assert first.balance.ok
    eur = first.balance.currencies["EUR"]
    assert (eur.file_money, eur.paid, eur.refunded, eur.failed) == pytest.approx((185.5, 130.0, 43.5, 12.0))
    assert eur.file_refunds == pytest.approx(43.5)  # 10 written, 25.50 refunded whole, 8 a negative amount
    assert first.balance.currencies["USD"].paid == pytest.approx(30.0)
    assert ("balance EUR: the file's money 185.50 = paid 130.00 + refunded 43.50 + failed/cancelled 12.00"
            in first.summary())
    kept = json.loads(db.execute("SELECT balance FROM import_log WHERE batch_id = ?", [first.batch_id]).fetchone()[0])
    assert kept["EUR"]["file_money"] == 185.5 and kept["USD"]["paid"] == 30.0
    again = import_file(db, "orders", path=path)
    assert again.unchanged == 6 and again.balance.ok and "balance EUR" in again.summary()


def test_a_refund_column_the_import_does_not_read_is_refused_by_the_balance_and_nothing_is_stored(db, tmp_path):
    path = _write(tmp_path, "order_id,customer_id,order_date,amount,status,Money Refunded (EUR)\n"
                            "B1,C1,2026-03-01,60.00,paid,20.00\nB2,C2,2026-03-02,15.00,paid,\n")
    with pytest.raises(ImportRejected) as refused:
        import_file(db, "orders", path=path)
    message = str(refused.value)
    assert "orders.csv: nothing was imported: the money does not balance" in message
    assert "20.00 (no currency) of refunds the file records is on no stored order" in message
    assert db["orders"].count == 0 and db["import_log"].count == 0


def test_with_skip_bad_rows_an_unbalanced_file_is_imported_with_the_difference_listed(db, tmp_path):
    path = _write(tmp_path, "order_id,customer_id,order_date,amount,status,Money Refunded (EUR)\n"
                            "B1,C1,2026-03-01,60.00,paid,20.00\n")
    result = import_file(db, "orders", path=path, skip_bad_rows=True)
    assert result.inserted == 1 and not result.balance.ok
    assert "DIFFERENCE 20.00 of refunds the file records but no order shows" in result.summary()
    assert "the balance does not close" in result.summary()
    kept = json.loads(db.execute("SELECT balance FROM import_log").fetchone()[0])
    assert kept["(no currency)"]["refunds_difference"] == 20.0


def test_rejected_rows_are_counted_in_the_balance(db, tmp_path):
    path = _write(tmp_path, "order_id,customer_id,order_date,amount,status\n"
                            "D1,C1,2026-03-01,70.00,paid\nD2,NOBODY,2026-03-02,5.25,paid\n")
    result = import_file(db, "orders", path=path, skip_bad_rows=True)
    balance = result.balance.currencies["(no currency)"]
    assert result.balance.ok and (balance.paid, balance.rejected, balance.rejected_rows) == (70.0, 5.25, 1)
    assert "rejected 5.25 (1 rows)" in result.summary()


def test_a_dry_run_shows_the_balance_and_writes_nothing(db, tmp_path):
    result = import_file(db, "orders", path=_write(tmp_path, ORDERS), dry_run=True)
    assert result.balance.ok and "balance EUR" in result.summary() and db["orders"].count == 0


def test_a_file_of_another_table_has_no_balance(db, tmp_path):
    result = import_file(db, "customers", path=_write(tmp_path, "customer_id,name\nC3,Ada\n", "people.csv"))
    assert result.balance is None and "balance" not in result.summary()
