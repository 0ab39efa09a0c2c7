"""`crm import FILE` of the tools' current export layouts (issue 31, item 4): each fixture under
tests/fixtures/sources/ imports with no flags, twice without change, and lands as the export says.
Where each fixture's header comes from: tests/fixtures/sources/README.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_helpers.ingest.export_import import import_export
from crm_helpers.store.connection import memory_db
from crm_helpers.store.validation import parse_date

from support import import_twice_unchanged

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
LAYOUTS = {
    "stripe_payments_current.csv": "Stripe payments (current layout)",
    "woocommerce_orders_current.csv": "WooCommerce orders (Customer/Order/Coupon Export, current default format)",
    "google_forms_responses_download.csv": "Google Forms survey responses",
    "typeform_responses_partial.csv": "Typeform responses",
    "wjx_answers_anonymous.csv": "问卷星",
    "shopify_orders_discounts.csv": "Shopify orders (with line items)",
    "wechat_pay_bill.xlsx": "WeChat Pay bill",
    "gumroad_sales.csv": "Gumroad sales",
    "amazon_all_orders.txt": "Amazon seller orders",
    "alipay_pc_download.csv": "Alipay trade records, PC site",
}


def _order(db, order_id):
    return dict(next(db.query("SELECT * FROM orders WHERE order_id = ?", [order_id])))


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_each_current_layout_imports_with_no_flags_and_twice_without_change(tmp_path, name):
    _, again = import_twice_unchanged(tmp_path / "crm.db", FIXTURES / name, recognised_as=LAYOUTS[name])
    assert "nothing changed" in again or " 0 inserted, 0 updated" in again


def test_stripe_current_layout_amounts_refunds_statuses_and_customers():
    db = memory_db()
    import_export(db, FIXTURES / "stripe_payments_current.csv")
    assert (_order(db, "py_3Qa0001")["amount"], _order(db, "py_3Qa0001")["order_date"]) == (120.0, "2026-06-02")
    partial = _order(db, "py_3Qa0002")
    assert (partial["status"], partial["amount"], partial["refunded_amount"]) == ("paid", 80.0, 30.0)
    whole = _order(db, "py_3Qa0003")
    assert (whole["status"], whole["refunded_amount"]) == ("refunded", 80.0)
    assert _order(db, "py_3Qa0004")["status"] == "failed"
    # Amount in the payment's own currency, not the Converted Amount (55.32 EUR)
    usd = _order(db, "py_3Qa0005")
    assert (usd["amount"], usd["currency"]) == (60.0, "USD")
    assert _order(db, "py_3Qa0006")["amount"] == 1250.0  # "1,250.00"
    alice = dict(next(db.query("SELECT * FROM customers WHERE customer_id = 'cus_A1'")))
    assert (alice["email"], alice["name"], alice["city"], alice["country"]) == \
        ("alice@example.com", "Alice Martin", "Lyon", "FR")
    assert db.execute("SELECT count(*) FROM customers").fetchone()[0] == 4


def test_woocommerce_current_default_format_refunds_currencies_and_people():
    db = memory_db()
    import_export(db, FIXTURES / "woocommerce_orders_current.csv")
    assert (_order(db, "5101")["amount"], _order(db, "5101")["order_date"]) == (34.9, "2026-06-01")
    partial = _order(db, "5102")
    assert (partial["status"], partial["amount"], partial["refunded_amount"]) == ("paid", 45.5, 10.0)
    assert (_order(db, "5103")["status"], _order(db, "5103")["refunded_amount"]) == ("refunded", 30.0)
    assert _order(db, "5104")["status"] == "failed"
    assert (_order(db, "5105")["currency"], _order(db, "5105")["status"]) == ("USD", "paid")
    # Ines@Example.fr and ines@example.fr are one person
    assert _order(db, "5101")["customer_id"] == _order(db, "5102")["customer_id"]
    ines = dict(next(db.query("SELECT * FROM customers WHERE email = 'ines@example.fr'")))
    assert (ines["name"], ines["phone"], ines["city"]) == ("Ines Moreau", "+33 6 12 34 56 78", "Nantes")
    ann = dict(next(db.query("SELECT * FROM customers WHERE email = 'ann@example.com'")))
    assert (ann["company"], ann["country"]) == ("Lee Studio", "US")


def test_woocommerce_header_written_with_the_column_key_order_date_is_read_too(tmp_path):
    text = (FIXTURES / "woocommerce_orders_current.csv").read_text(encoding="utf-8")
    renamed = tmp_path / "orders-export.csv"
    renamed.write_text(text.replace(",date,status,", ",order_date,status,", 1), encoding="utf-8")
    db = memory_db()
    result = import_export(db, renamed)
    assert "current default format" in result.summary()
    assert _order(db, "5102")["order_date"] == "2026-06-03"


@pytest.mark.parametrize("written, stored", [
    ("2026/06/14 9:12:03 AM GMT+2", "2026-06-14 09:12:03"),
    ("2026/06/14 12:12:03 AM GMT+2", "2026-06-14 00:12:03"),
    ("2026/06/14 12:05:00 PM", "2026-06-14 12:05:00"),
    ("6/14/2026 9:12:03 PM GMT-4", "2026-06-14 21:12:03"),
    ("2026/6/14 下午9:12:03", "2026-06-14 21:12:03"),
    ("2026-06-14 09:00 CEST", "2026-06-14 09:00:00"),
    ("2026-05-01 23:30:00 -0500", "2026-05-01 23:30:00"),
])
def test_timestamps_with_am_pm_and_zone_names_keep_the_clock_as_written(written, stored):
    assert parse_date(written, with_time=True) == stored


def test_a_clock_time_that_am_pm_cannot_have_is_still_refused():
    with pytest.raises(ValueError):
        parse_date("2026/06/14 13:00:00 PM")


def test_google_forms_download_timestamps_import_with_their_day():
    db = memory_db()
    import_export(db, FIXTURES / "google_forms_responses_download.csv")
    answers = {r["email"]: r for r in db.query(
        "SELECT c.email, f.submitted_at, f.nps, f.csat FROM feedback f JOIN customers c USING (customer_id)")}
    assert (answers["alice@example.com"]["submitted_at"], answers["alice@example.com"]["nps"]) == ("2026-06-14", 10)
    assert answers["bob@example.com"]["submitted_at"] == "2026-06-15"  # 6:40:51 PM
    assert answers["carol@example.com"]["submitted_at"] == "2026-06-16"  # 12:05 AM is just after midnight


def test_typeform_partial_response_is_left_out_and_counted_also_in_the_dry_run():
    db = memory_db()
    dry = import_export(db, FIXTURES / "typeform_responses_partial.csv", dry_run=True)
    assert "feedback       2 inserted" in dry.summary()
    result = import_export(db, FIXTURES / "typeform_responses_partial.csv")
    assert "1 response never submitted (partial: no submission time) was left out" in result.summary()
    assert db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 2
    # the one who left before the end is not made a customer either
    assert db.execute("SELECT count(*) FROM customers WHERE email = 'erin@example.com'").fetchone()[0] == 0
    scores = dict(db.execute("SELECT c.email, f.nps FROM feedback f JOIN customers c USING (customer_id)").fetchall())
    assert scores == {"carol@example.com": 8, "dave@example.com": 3}


def test_wjx_anonymous_answers_are_kept_linked_to_nobody_and_counted_in_nps_and_csat():
    import datetime as dt

    from crm_helpers.analyses.followup import unhappy_customers
    from crm_helpers.analyses.satisfaction import ItemWeights, period_scores
    from crm_helpers.store.periods import Period

    db = memory_db()
    result = import_export(db, FIXTURES / "wjx_answers_anonymous.csv")
    assert "2 anonymous answers" in result.summary()
    rows = [dict(r) for r in db.query("SELECT customer_id, nps, csat, comment FROM feedback ORDER BY submitted_at, nps")]
    anonymous = [r for r in rows if r["customer_id"] is None]
    # two answers in the same second, told apart by what they say
    assert [(r["nps"], r["csat"], r["comment"]) for r in anonymous] == [(3, 2, "发货太慢"), (10, 5, None)]
    assert db.execute("SELECT count(*) FROM customers").fetchone()[0] == 2  # nobody made up for them
    june = period_scores(db, Period(dt.date(2026, 6, 1), dt.date(2026, 6, 30)), weights=ItemWeights(), n_boot=50)
    assert (june["responses"], june["promoters"], june["detractors"]) == (4, 2, 2)
    # an anonymous detractor is nobody to call
    assert unhappy_customers(db, dt.date(2026, 6, 30))["customer_id"].notna().all()
    assert len(unhappy_customers(db, dt.date(2026, 6, 30))) == 1  # li@example.cn, nps 4


def test_a_store_made_before_anonymous_feedback_accepts_it_after_migrating(tmp_path):
    import sqlite3

    from crm_helpers.store.connection import SCHEMA_VERSION, open_db as open_store

    path = tmp_path / "old.db"
    open_store(path).close()
    raw = sqlite3.connect(path)  # the feedback table as stores before m008 had it: customer_id NOT NULL
    raw.executescript(
        "PRAGMA foreign_keys = OFF; ALTER TABLE feedback RENAME TO old_feedback;"
        "CREATE TABLE feedback (feedback_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(customer_id),"
        " submitted_at TEXT NOT NULL, nps INTEGER, csat INTEGER, score_quality INTEGER, score_delivery INTEGER,"
        " score_price INTEGER, score_service INTEGER, comment TEXT); DROP TABLE old_feedback;"
        "ALTER TABLE import_log DROP COLUMN balance; DROP TABLE tasks; PRAGMA user_version = 7;")
    raw.executescript("DROP TRIGGER customer_search_insert; DROP TRIGGER customer_search_delete; DROP TRIGGER customer_search_update; DROP TABLE customer_search; DROP VIEW customer_search_source; ")  # the customer search index (m011)
    raw.execute("DELETE FROM _sqlite_migrations WHERE name IN ('m008_layouts', 'm009_import_balances', 'm010_tasks', "
                "'m011_customer_search')")
    raw.commit()
    raw.close()
    db = open_store(path)
    assert not next(c for c in db.table("feedback").columns if c.name == "customer_id").notnull
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    import_export(db, FIXTURES / "wjx_answers_anonymous.csv")
    assert db.execute("SELECT count(*) FROM feedback WHERE customer_id IS NULL").fetchone()[0] == 2


def test_shopify_unit_prices_are_net_of_line_discounts_and_the_discount_is_kept():
    db = memory_db()
    import_export(db, FIXTURES / "shopify_orders_discounts.csv")
    items = {(r["order_id"], r["product_id"]): (r["quantity"], r["unit_price"], r["discount"])
             for r in db.query("SELECT * FROM order_items")}
    assert items == {("#2001", "MUG-01"): (2, 10.0, 5.0),  # 2 × 12.50 − 5.00
                     ("#2001", "TEA-02"): (1, 8.0, 0.0),
                     ("#2002", "TEA-02"): (1, 6.4, 1.6)}
    # what the buyer paid for the lines adds up to the order's total; the product keeps its list price
    assert _order(db, "#2001")["amount"] == 2 * 10.0 + 8.0
    prices = dict(db.execute("SELECT product_id, unit_price FROM products").fetchall())
    assert prices == {"MUG-01": 12.5, "TEA-02": 8.0}


def test_shopify_phones_guarded_for_excel_are_stored_bare():
    db = memory_db()
    import_export(db, FIXTURES / "shopify_orders_discounts.csv")
    phones = dict(db.execute("SELECT email, phone FROM customers").fetchall())
    assert phones == {"nina@example.ca": "+1 514 555 0101", "omar@example.ca": "+1 438 555 0199"}


def test_an_export_without_line_discounts_leaves_the_discount_empty():
    db = memory_db()
    import_export(db, FIXTURES / "online_retail.csv")
    assert db.execute("SELECT count(*) FROM order_items WHERE discount IS NOT NULL").fetchone()[0] == 0


def test_a_wechat_bill_downloaded_as_xlsx_imports_like_the_csv():
    db = memory_db()
    result = import_export(db, FIXTURES / "wechat_pay_bill.xlsx")
    assert "1 row that is not a sale was left out" in result.summary()  # the shop's own lunch
    orders = {r["order_id"]: r for r in db.query("SELECT * FROM orders")}
    # 28-digit order numbers stay exact text; the dates are the workbook's date cells
    paid = orders["1000039901202607080987654321"]
    assert (paid["amount"], paid["currency"], paid["status"], paid["order_date"], paid["customer_id"]) == \
        (188.0, "CNY", "paid", "2026-07-08", "陈女士")
    assert orders["1000039901202607150987654322"]["status"] == "paid"  # 已存入零钱
    back = orders["1000039901202607200987654323"]
    assert (back["status"], back["refunded_amount"]) == ("refunded", 80.0)
    assert len(orders) == 3


def test_gumroad_sales_refunds_people_and_the_totals_row_left_out():
    db = memory_db()
    import_export(db, FIXTURES / "gumroad_sales.csv")
    orders = {r["order_id"]: r for r in db.query("SELECT * FROM orders")}
    assert "Totals" not in orders and len(orders) == 4  # the closing row of column totals is no sale
    partial = orders["Qm9uZXlQbGFubmVyMg=="]
    assert (partial["status"], partial["amount"], partial["refunded_amount"], partial["currency"]) == \
        ("paid", 30.0, 10.0, "USD")
    whole = orders["SGFiaXRUcmFja2VyMw=="]  # Fully Refunded? 1, Partial Refund ($) 0.0: paid back whole
    assert (whole["status"], whole["refunded_amount"]) == ("refunded", 8.0)
    # Ada@Example.com and ada@example.com are one buyer with two purchases
    assert orders["hZr2UQ0q9TzZ7vC4u7o8Qw=="]["customer_id"] == orders["SGFiaXRUcmFja2VyNA=="]["customer_id"]
    ada = dict(next(db.query("SELECT * FROM customers WHERE email = 'ada@example.com'")))
    assert (ada["name"], ada["city"], ada["country"]) == ("Ada Example", "Leeds", "United Kingdom")
    items = dict(db.execute("SELECT order_id, unit_price FROM order_items").fetchall())
    assert items["Qm9uZXlQbGFubmVyMg=="] == 30.0
    assert dict(db.execute("SELECT product_id, name FROM products").fetchall()) == \
        {"planner": "Budget Planner", "habits": "Habit Tracker"}


def test_amazon_all_orders_report_tab_separated_lines_make_orders_of_guests():
    db = memory_db()
    result = import_export(db, FIXTURES / "amazon_all_orders.txt")
    assert result.guest_orders == 3  # the report names no buyer
    first = _order(db, "303-1234567-1000001")
    assert (first["amount"], first["status"], first["currency"], first["channel"], first["order_date"]) == \
        (33.0, "paid", "EUR", "Amazon.de", "2026-06-03")  # 25.00 for 2 mugs + 8.00 tea
    assert _order(db, "303-1234567-1000002")["status"] == "cancelled"
    assert (_order(db, "303-1234567-1000003")["status"], _order(db, "303-1234567-1000003")["currency"]) == \
        ("paid", "GBP")  # Unshipped: paid, not yet sent
    items = {(r["order_id"], r["product_id"]): (r["quantity"], r["unit_price"]) for r in db.query("SELECT * FROM order_items")}
    assert items[("303-1234567-1000001", "MUG-01")] == (2, 12.5)
    assert items[("303-1234567-1000003", "TEA-02")] == (3, 7.0)
    guest = dict(next(db.query("SELECT c.* FROM customers c JOIN orders o USING (customer_id) "
                               "WHERE o.order_id = '303-1234567-1000002'")))
    assert (guest["tags"], guest["city"], guest["country"]) == ("guest", "Lyon", "FR")


def test_alipay_pc_site_download_with_its_preamble_footer_and_partial_refund():
    raw = (FIXTURES / "alipay_pc_download.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the download is GBK
    db = memory_db()
    result = import_export(db, FIXTURES / "alipay_pc_download.csv")
    assert "1 row that is not a sale was left out" in result.summary()  # the shop's own lunch
    orders = {r["order_id"]: r for r in db.query("SELECT * FROM orders")}
    assert set(orders) == {"2026060522001411111111", "2026061022001422222222", "2026061822001444444444"}
    first = orders["2026060522001411111111"]
    assert (first["amount"], first["currency"], first["status"], first["order_date"], first["customer_id"]) == \
        (268.0, "CNY", "paid", "2026-06-05", "陈女士")
    partial = orders["2026061022001422222222"]  # 成功退款（元） 40.00 in the sale's own row
    assert (partial["status"], partial["refunded_amount"]) == ("paid", 40.0)
    assert orders["2026061822001444444444"]["status"] == "cancelled"  # 交易关闭, never paid
