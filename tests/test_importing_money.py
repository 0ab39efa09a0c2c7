"""Money as it really moves, in files imported into a named table, and the customers merge by e-mail."""

from __future__ import annotations

import pytest

from crm_helpers.ingest.table_import import ImportRejected, import_file
from crm_helpers.store.facts import net_revenue_sql
from crm_helpers.store.connection import memory_db


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _orders(db):
    return {r["order_id"]: r for r in db.query("SELECT * FROM orders")}


def test_orders_without_a_status_column_are_paid_and_the_summary_says_so(tmp_path):
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": "K1"}, {"customer_id": "K2"}])
    path = _write(tmp_path, "订单.csv", "订单号,客户编号,日期,金额\nA1,K1,2026-03-01,100\nA2,K2,2026-03-02,\"1.250,50\"\n")
    result = import_file(db, "orders", path=path)
    orders = _orders(db)
    assert {o["status"] for o in orders.values()} == {"paid"}
    assert orders["A2"]["amount"] == 1250.5 and orders["A2"]["refunded_amount"] == 0
    assert "no status column: every order was taken as paid" in result.summary()


def test_a_refund_written_as_a_negative_amount_is_money_paid_back(tmp_path):
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": "K1"}])
    path = _write(tmp_path, "orders.csv", "order_id;customer_id;order_date;amount;status\n"
                                          "B1;K1;15.03.2026;90,00;paid\nB2;K1;05.03.2026;-45,00;refunded\n")
    import_file(db, "orders", path=path)
    refund = _orders(db)["B2"]
    assert (refund["amount"], refund["refunded_amount"], refund["status"]) == (45.0, 45.0, "refunded")
    # a negative amount is a refund even where the file calls it paid
    path = _write(tmp_path, "orders2.csv", "order_id,customer_id,order_date,amount,status\nB3,K1,2026-03-06,-10,paid\n")
    import_file(db, "orders", path=path)
    assert _orders(db)["B3"]["status"] == "refunded"


def test_a_refund_larger_than_the_order_is_a_bad_row(tmp_path):
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": "K1"}])
    path = _write(tmp_path, "orders.csv", "order_id,customer_id,order_date,amount,refunded_amount,status\n"
                                          "B1,K1,2026-03-01,20,25,paid\n")
    with pytest.raises(ImportRejected, match=r"row 2, column refunded_amount: 25.0 is more than the order's amount 20"):
        import_file(db, "orders", path=path)
    assert db.table("orders").count == 0


def test_net_revenue_is_amount_less_refunds_of_paid_orders(tmp_path):
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": "K1"}])
    path = _write(tmp_path, "orders.csv", "order_id,customer_id,order_date,amount,refunded_amount,status\n"
                                          "N1,K1,2026-03-01,100,30,paid\nN2,K1,2026-03-02,50,,paid\n"
                                          "N3,K1,2026-03-03,70,,refunded\nN4,K1,2026-03-04,40,,cancelled\n")
    import_file(db, "orders", path=path)
    net = db.execute(f"SELECT sum({net_revenue_sql()}) FROM orders WHERE status = 'paid'").fetchone()[0]
    assert net == pytest.approx(100 - 30 + 50)
    assert _orders(db)["N3"]["refunded_amount"] == 70  # refunded, saying no more: paid back whole


def test_customers_file_with_one_person_twice_by_id_and_by_email_in_capitals_is_merged(tmp_path):
    db = memory_db()
    path = _write(tmp_path, "customers.csv", "customer_id,name,email,city\n"
                                             "C1,Alice Martin,alice@example.com,\n"
                                             ",,ALICE@EXAMPLE.COM,Lyon\n")
    result = import_file(db, "customers", path=path)
    rows = list(db.query("SELECT * FROM customers"))
    assert len(rows) == 1 and result.merged == 1
    assert (rows[0]["customer_id"], rows[0]["name"], rows[0]["email"], rows[0]["city"]) == \
        ("C1", "Alice Martin", "alice@example.com", "Lyon")


def test_the_analyses_count_revenue_net_of_partial_refunds():
    import datetime as dt
    from pathlib import Path

    from crm_helpers.analyses.cohorts import cohort_table
    from crm_helpers.analyses.features import customer_features
    from crm_helpers.analyses.sales import period_figures
    from crm_helpers.ingest.export_import import import_export

    db = memory_db()
    import_export(db, Path(__file__).parent / "fixtures" / "sources" / "shopify_orders_export.csv")
    # paid: #1001 33, #1002 40 less 10 refunded, #1006 8, #1007 25; refunded, failed, cancelled: no revenue
    expected = 33 + (40 - 10) + 8 + 25
    figures = period_figures(db, dt.date(2026, 5, 1), end=dt.date(2026, 5, 31))
    assert figures["revenue"] == pytest.approx(expected)
    features = customer_features(db, dt.date(2026, 5, 31))
    assert features["monetary"].sum() == pytest.approx(expected)
    assert cohort_table(db, dt.date(2026, 5, 31))["revenue"].sum() == pytest.approx(expected)


def test_an_older_store_gets_refunded_amounts_and_a_reimport_changes_nothing(tmp_path):
    import sqlite3

    from crm_helpers.store.connection import SCHEMA_VERSION, open_db, schema_version

    path = tmp_path / "old.db"
    db = open_db(path)
    db.table("customers").insert_all([{"customer_id": "K1"}])
    csv_path = _write(tmp_path, "orders.csv", "order_id,customer_id,order_date,amount,status\n"
                                              "A1,K1,2026-03-01,100,paid\nA2,K1,2026-03-02,40,refunded\n")
    import_file(db, "orders", path=csv_path)
    db.conn.close()
    # the store as version 3 left it: no refunded_amount column, no group ids, no kept mappings
    conn = sqlite3.connect(path)
    conn.executescript("ALTER TABLE orders DROP COLUMN refunded_amount; ALTER TABLE import_log DROP COLUMN group_id; "
                       "ALTER TABLE import_log DROP COLUMN balance; "
                       "DROP TABLE import_mappings; DROP TABLE exchange_rates; DROP TABLE import_checks; DROP TABLE report_folders; "
                       "DROP TABLE tasks; "
                       "DELETE FROM _sqlite_migrations WHERE substr(name, 1, 4) IN "
                       "('m004', 'm005', 'm006', 'm007', 'm008', 'm009', 'm010', 'm011'); "
                       "DROP TRIGGER customer_search_insert; DROP TRIGGER customer_search_delete; DROP TRIGGER customer_search_update; DROP TABLE customer_search; DROP VIEW customer_search_source; "
                       "PRAGMA user_version = 3;")
    conn.close()
    db = open_db(path)
    assert schema_version(db) == SCHEMA_VERSION
    assert {r["order_id"]: r["refunded_amount"] for r in db.query("SELECT * FROM orders")} == {"A1": 0, "A2": 40}
    again = import_file(db, "orders", path=csv_path)
    assert (again.updated, again.unchanged) == (0, 2)


def test_a_dry_run_of_a_named_table_shows_which_column_goes_where(tmp_path):
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": "K1"}])
    path = _write(tmp_path, "orders.csv", "Beleg,Kunde,Datum,Brutto\nR1,K1,2026-03-02,100\n")
    result = import_file(db, "orders", path=path, mapping={"Beleg": "order_id", "Kunde": "customer_id",
                                                           "Datum": "order_date", "Brutto": "amount"}, dry_run=True)
    assert "columns: Beleg -> order_id, Kunde -> customer_id, Datum -> order_date, Brutto -> amount" in result.summary()
    assert "1 inserted" in result.summary() and db.table("orders").count == 0
