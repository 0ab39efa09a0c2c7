"""`crm import FILE`: the exports of real tools, recognised from their headers and imported whole.

The fixtures under tests/fixtures/sources/ carry the headers each tool writes (where each header
was taken from: tests/fixtures/sources/README.md); the values are small and hand-made, and each
test asserts what the export says landed in the store.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_helpers.cli import main
from crm_helpers.ingest.table_import import ImportRejected
from crm_helpers.ingest.inbox import import_inbox
from crm_helpers.store.schema import RATES
from crm_helpers.ingest.export_import import import_export
from crm_helpers.store.connection import memory_db, open_db, table_counts
from crm_helpers.store.undo import undo_import

from support import import_twice_unchanged

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
SOURCES = {
    "shopify_orders_export.csv": "Shopify orders",
    "shopify_customers_export.csv": "Shopify customers",
    "stripe_payments.csv": "Stripe payments",
    "online_retail.csv": "Invoice lines (UCI Online Retail layout)",
    "taobao_orders.csv": "Taobao",
    "google_forms_responses.csv": "Google Forms",
    "woocommerce_orders.csv": "WooCommerce orders",
    "stripe_customers.csv": "Stripe customers",
    "paypal_activity.csv": "PayPal activity download",
    "etsy_sold_orders.csv": "Etsy sold orders",
    "etsy_sold_order_items.csv": "Etsy sold order items",
    "douyin_orders.csv": "Douyin shop orders",
    "wechat_pay_bill.csv": "WeChat Pay bill",
    "alipay_bill.csv": "Alipay bill",
    "mailchimp_subscribed_members.csv": "Mailchimp audience (subscribed",
    "mailchimp_unsubscribed_members.csv": "Mailchimp audience (unsubscribed",
    "mailchimp_cleaned_members.csv": "Mailchimp audience (cleaned",
    "typeform_responses.csv": "Typeform responses",
    "wjx_answers.csv": "问卷星",
    "eurofxref-hist.csv": "ECB euro reference exchange rates",
    "woocommerce_customers.csv": "WooCommerce customers",
}


def _rows(db, sql, params=()):
    return [dict(r) for r in db.query(sql, params)]


def _order(db, order_id):
    return next(db.query("SELECT * FROM orders WHERE order_id = ?", [order_id]))


def _snapshot(db):
    return {t: _rows(db, f"SELECT * FROM {t} ORDER BY 1, 2") for t in [*table_counts(db), RATES.name]}


@pytest.mark.parametrize("name", list(SOURCES))
def test_each_export_imports_with_no_flags_and_twice_without_change(tmp_path, name):
    _, again = import_twice_unchanged(tmp_path / "crm.db", FIXTURES / name, recognised_as=SOURCES[name])
    assert " 0 inserted, 0 updated" in again and "inserted, 0 updated" in again


def test_dry_run_shows_source_mapping_and_counts_and_writes_nothing(tmp_path):
    db_path = tmp_path / "crm.db"
    result = CliRunner().invoke(main, ["import", "--db", str(db_path), "--dry-run",
                                       str(FIXTURES / "shopify_orders_export.csv")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "recognised as Shopify orders" in out
    assert "Name -> orders.order_id" in out and "Lineitem sku -> order_items.product_id" in out
    assert "ignored columns:" in out and "Fulfillment Status" in out
    assert "orders         7 inserted" in out and "order_items    8 inserted" in out
    assert "dry run: nothing written" in out
    assert sum(table_counts(open_db(db_path)).values()) == 0


def test_shopify_orders_land_as_the_export_says():
    db = memory_db()
    result = import_export(db, FIXTURES / "shopify_orders_export.csv")
    # order fields on the first line only are carried to the second; both lines are items
    assert _order(db, "#1001")["amount"] == 33.0
    assert _rows(db, "SELECT product_id, quantity, unit_price FROM order_items WHERE order_id = '#1001' "
                     "ORDER BY product_id") == [{"product_id": "MUG-01", "quantity": 2, "unit_price": 12.5},
                                                {"product_id": "TEA-02", "quantity": 1, "unit_price": 8.0}]
    # partially refunded: paid, with what went back; refunded whole; voided: failed; cancelled
    assert (_order(db, "#1002")["status"], _order(db, "#1002")["refunded_amount"]) == ("paid", 10.0)
    assert (_order(db, "#1003")["status"], _order(db, "#1003")["refunded_amount"]) == ("refunded", 25.0)
    assert _order(db, "#1004")["status"] == "failed"
    assert _order(db, "#1005")["status"] == "cancelled"
    # 23:30 at UTC-5 is still 3 May where the shop is
    assert _order(db, "#1002")["order_date"] == "2026-05-03"
    # the same product on two lines of one order is one item of quantity 2
    assert _rows(db, "SELECT quantity FROM order_items WHERE order_id = '#1007'") == [{"quantity": 2}]
    # e-mail in capitals on one order, lower case on another: one customer, name not taken from `Name`
    alice = _rows(db, "SELECT * FROM customers WHERE email = 'alice@example.com'")
    assert len(alice) == 1 and alice[0]["name"] == "Alice Martin" and alice[0]["city"] == "Lyon"
    assert {_order(db, "#1001")["customer_id"], _order(db, "#1005")["customer_id"]} == {alice[0]["customer_id"]}
    # the guest order is kept and counted
    assert result.guest_orders == 1
    guest = next(db.query("SELECT c.tags FROM orders o JOIN customers c USING (customer_id) WHERE order_id = '#1006'"))
    assert guest["tags"] == "guest"
    assert _rows(db, "SELECT name FROM products ORDER BY product_id") == [{"name": "Stoneware mug"},
                                                                        {"name": "Green tea 100 g"}]


def test_shopify_customers_keep_names_addresses_and_consent_and_orders_join_them_by_email():
    db = memory_db()
    import_export(db, FIXTURES / "shopify_customers_export.csv")
    alice = next(db.query("SELECT * FROM customers WHERE customer_id = '7001'"))
    assert (alice["name"], alice["city"], alice["country"], alice["company"]) == \
        ("Alice Martin", "Lyon", "FR", "Martin Ceramics")
    assert (alice["consent_marketing"], alice["notes"], alice["tags"]) == (1, "prefers morning deliveries", "vip")
    bob = next(db.query("SELECT * FROM customers WHERE customer_id = '7002'"))
    assert (bob["email"], bob["consent_marketing"]) == ("bob@example.com", 0)
    import_export(db, FIXTURES / "shopify_orders_export.csv")
    assert _order(db, "#1001")["customer_id"] == "7001"  # Alice@Example.com matched case-insensitively
    assert _order(db, "#1007")["customer_id"] == "7002"
    assert db.execute("SELECT count(*) FROM customers WHERE email = 'alice@example.com'").fetchone()[0] == 1


def test_stripe_payments_partial_refunds_failures_and_currencies():
    db = memory_db()
    result = import_export(db, FIXTURES / "stripe_payments.csv")
    assert (_order(db, "ch_3Pq0002")["status"], _order(db, "ch_3Pq0002")["refunded_amount"]) == ("paid", 30.0)
    assert (_order(db, "ch_3Pq0003")["status"], _order(db, "ch_3Pq0003")["refunded_amount"]) == ("refunded", 80.0)
    assert _order(db, "ch_3Pq0004")["status"] == "failed"
    assert (_order(db, "ch_3Pq0005")["currency"], _order(db, "ch_3Pq0001")["currency"]) == ("USD", "EUR")
    assert _order(db, "ch_3Pq0001")["customer_id"] == "cus_A1"
    # no exchange rates in the store: the USD payment is left out of the (EUR) money figures, and said so
    assert any("1 paid order (1 in USD) is left out of the money figures, which are in EUR" in n
               for n in result.notes)
    # a payment without a Stripe customer still has an e-mail: a stable customer of its own
    sam = _order(db, "ch_3Pq0005")["customer_id"]
    assert next(db.query("SELECT email FROM customers WHERE customer_id = ?", [sam]))["email"] == "sam@example.com"


def test_uci_invoice_lines_sum_products_keep_credit_notes_and_guests():
    db = memory_db()
    result = import_export(db, FIXTURES / "online_retail.csv")
    # 12/1/2010 is 1 December (the layout is month first)
    assert _order(db, "536365")["order_date"] == "2010-12-01"
    assert _order(db, "536544")["order_date"] == "2010-12-13"
    # 85123A appears on two lines of 536365 (6 + 2): one item of 8; the amount is the sum of the lines
    assert next(db.query("SELECT quantity FROM order_items WHERE order_id = '536365' AND product_id = '85123A'"))[
        "quantity"] == 8
    assert _order(db, "536365")["amount"] == pytest.approx(8 * 2.55 + 6 * 3.39)
    # the credit note C536379 is money paid back, not revenue
    credit = _order(db, "C536379")
    assert (credit["status"], credit["amount"], credit["refunded_amount"]) == ("refunded", 27.5, 27.5)
    assert result.guest_orders == 2
    assert _order(db, "536367")["customer_id"] == "13047"


def test_taobao_report_in_gbk_keeps_19_digit_order_numbers_exact():
    raw = (FIXTURES / "taobao_orders.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the fixture really is GBK
    db = memory_db()
    import_export(db, FIXTURES / "taobao_orders.csv")
    ids = [r["order_id"] for r in db.query("SELECT order_id FROM orders ORDER BY order_id")]
    assert ids == ["3456789012345678901", "3456789012345678902", "3456789012345678903"]
    first = _order(db, "3456789012345678901")
    assert (first["amount"], first["currency"], first["status"], first["order_date"]) == \
        (128.0, "CNY", "paid", "2026-03-01")
    assert _order(db, "3456789012345678902")["status"] == "paid"  # shipped, awaiting the buyer's confirmation
    assert _order(db, "3456789012345678903")["status"] == "cancelled"  # 交易关闭
    assert next(db.query("SELECT name FROM customers WHERE customer_id = '茶友小王'"))["name"] == "王小明"


def test_google_forms_nps_and_csat_from_the_question_wording_matched_by_email():
    db = memory_db()
    import_export(db, FIXTURES / "shopify_customers_export.csv")
    import_export(db, FIXTURES / "google_forms_responses.csv")
    answers = {r["customer_id"]: r for r in db.query("SELECT * FROM feedback")}
    assert (answers["7001"]["nps"], answers["7001"]["csat"], answers["7001"]["comment"]) == (10, 5, "Lovely mugs")
    assert (answers["7002"]["nps"], answers["7002"]["csat"]) == (6, 3)  # Bob@Example.com
    assert answers["7001"]["submitted_at"] == "2026-06-14"
    new = db.execute("SELECT customer_id FROM customers WHERE email = 'newfan@example.org'").fetchone()[0]
    assert answers[new]["nps"] == 9


def test_undo_takes_a_whole_export_back_and_leaves_earlier_data_as_it_was():
    db = memory_db()
    import_export(db, FIXTURES / "shopify_customers_export.csv")
    before = _snapshot(db)
    result = import_export(db, FIXTURES / "shopify_orders_export.csv")
    assert set(result.tables) == {"customers", "products", "orders", "order_items"}
    undone = undo_import(db, result.batch_ids[-1])  # any batch of the export takes back all of it
    assert undone.deleted > 0
    assert _snapshot(db) == before


def test_an_unknown_file_says_how_to_import_it(tmp_path):
    path = tmp_path / "mystery.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(ImportRejected, match=r"mystery.csv: not an export this workbook knows.*crm import orders FILE"):
        import_export(memory_db(), path)


def test_a_bad_row_names_file_row_and_column_and_nothing_is_written(tmp_path):
    text = (FIXTURES / "stripe_payments.csv").read_text(encoding="utf-8").replace("120.00", "12O.00")
    path = tmp_path / "payments.csv"
    path.write_text(text, encoding="utf-8")
    db = memory_db()
    with pytest.raises(ImportRejected, match=r"(?s)payments.csv: 1 bad row.*\n  row 2, column Amount: '12O.00' not a number\nFix"):
        import_export(db, path)
    assert sum(table_counts(db).values()) == 0


def test_the_inbox_recognises_exports_by_their_headers_whatever_their_names(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(FIXTURES / "shopify_orders_export.csv", inbox / "export (3).csv")
    db = memory_db()
    report = import_inbox(db, inbox)
    assert report["status"].tolist() == ["imported"]
    assert report["table"].iloc[0] == "customers, products, orders, order_items"
    assert table_counts(db)["orders"] == 7
    assert import_inbox(db, inbox)["status"].tolist() == ["already imported"]


def test_bringing_your_data_in_page_lists_every_source_and_is_up_to_date():
    from crm_helpers.store.config import PROJECT_ROOT
    from crm_helpers.ingest.sources import SOURCES, bringing_data_in_markdown

    text = (PROJECT_ROOT / "docs" / "bringing-your-data-in.md").read_text(encoding="utf-8")
    assert text == bringing_data_in_markdown(), "run `python -m crm_helpers.ingest.sources`"
    for source in SOURCES:
        assert f"| {source.title} | {source.menu} |" in text


def test_every_source_has_a_fixture_that_it_recognises():
    from crm_helpers.ingest.export_import import file_source
    from crm_helpers.ingest.sources import SOURCES

    found = set()
    for path in [*FIXTURES.glob("*.csv"), *FIXTURES.glob("*.txt")]:  # Amazon reports are .txt
        found.add(file_source(path)[1][0].key)
    assert found == {s.key for s in SOURCES}


def test_a_map_given_once_is_kept_for_that_layout(tmp_path):
    db_path = tmp_path / "crm.db"
    db = open_db(db_path)
    db.table("customers").insert_all([{"customer_id": "K1"}, {"customer_id": "K2"}])
    header = "Beleg,Kunde,Datum,Brutto\n"
    march, april = tmp_path / "march.csv", tmp_path / "april.csv"
    march.write_text(header + "R1,K1,2026-03-02,100\n", encoding="utf-8")
    april.write_text(header + "R2,K2,2026-04-03,80\n", encoding="utf-8")
    runner = CliRunner()
    unknown = runner.invoke(main, ["import", "--db", str(db_path), str(april)])
    assert unknown.exit_code != 0 and "not an export this workbook knows" in unknown.output
    maps = ["--map", "Beleg=order_id", "--map", "Kunde=customer_id", "--map", "Datum=order_date",
            "--map", "Brutto=amount"]
    first = runner.invoke(main, ["import", "--db", str(db_path), "orders", str(march), *maps])
    assert first.exit_code == 0, first.output
    second = runner.invoke(main, ["import", "--db", str(db_path), str(april)])  # no table, no --map
    assert second.exit_code == 0, second.output
    assert "used the --map kept" in second.output
    assert next(open_db(db_path).query("SELECT amount, status FROM orders WHERE order_id = 'R2'")) == \
        {"amount": 80.0, "status": "paid"}


def test_woocommerce_orders_statuses_and_customers_by_email():
    db = memory_db()
    import_export(db, FIXTURES / "woocommerce_orders.csv")
    assert [_order(db, n)["status"] for n in ("4990", "4991", "4992", "4993")] == ["paid", "paid", "refunded", "failed"]
    assert _order(db, "4992")["refunded_amount"] == 30.0
    assert _order(db, "4991")["order_date"] == "2026-05-30"  # 5/30/2026: month first, decided by the file
    ines = _rows(db, "SELECT customer_id, name, city FROM customers WHERE email = 'ines@example.fr'")
    assert len(ines) == 1 and (ines[0]["name"], ines[0]["city"]) == ("Ines Moreau", "Nantes")
    assert _order(db, "4991")["customer_id"] == ines[0]["customer_id"]  # Ines@Example.fr


def test_stripe_customers_then_payments_are_one_customer_each():
    db = memory_db()
    import_export(db, FIXTURES / "stripe_customers.csv")
    import_export(db, FIXTURES / "stripe_payments.csv")
    zoe = next(db.query("SELECT * FROM customers WHERE customer_id = 'cus_B2'"))
    assert (zoe["name"], zoe["email"], zoe["first_seen"], zoe["city"]) == ("Zoé Peeters", "zoe@example.org",
                                                                          "2026-02-03", "Ghent")
    assert db.execute("SELECT count(*) FROM customers WHERE email = 'alice@example.com'").fetchone()[0] == 1


def test_paypal_refund_rows_pay_back_their_order_and_transfers_are_not_sales():
    db = memory_db()
    result = import_export(db, FIXTURES / "paypal_activity.csv")
    assert _order(db, "1AB23456CD789012E")["amount"] == 1250.0  # "1,250.00"
    refunded = _order(db, "2BC34567DE890123F")
    assert (refunded["status"], refunded["refunded_amount"]) == ("refunded", 99.99)
    assert _order(db, "5EF67890AB123456C")["status"] == "failed"  # Denied
    assert table_counts(db)["orders"] == 3  # neither the refund row nor the withdrawal is an order
    assert any("1 row that is not a sale was left out" in n for n in result.notes)
    assert db.execute("SELECT count(*) FROM customers WHERE email = 'shop@example.com'").fetchone()[0] == 0


def test_etsy_orders_and_order_items_describe_the_same_orders():
    db = memory_db()
    import_export(db, FIXTURES / "etsy_sold_orders.csv")
    assert (_order(db, "9001")["amount"], _order(db, "9001")["currency"], _order(db, "9001")["order_date"]) == \
        (76.0, "CAD", "2026-09-03")
    items = memory_db()
    import_export(items, FIXTURES / "etsy_sold_order_items.csv")
    # two lines of the same listing in order 9002: one item of 3; the order is the sum of its lines
    assert next(items.query("SELECT quantity, unit_price FROM order_items WHERE order_id = '9002'")) == \
        {"quantity": 3, "unit_price": 9.0}
    assert _order(items, "9002")["amount"] == 27.0
    assert next(items.query("SELECT name FROM products WHERE product_id = '1501'"))["name"] == \
        "Handmade Ceramic Mug - Speckled, Stoneware"


def test_douyin_sub_orders_make_one_order_with_its_items():
    db = memory_db()
    import_export(db, FIXTURES / "douyin_orders.csv")
    order = _order(db, "6917926768823643751")  # tab-prefixed 19-digit number, kept exact
    assert (order["amount"], order["status"], order["currency"]) == (pytest.approx(59.80 + 19.90), "paid", "CNY")
    assert _order(db, "6917926768823643761")["status"] == "cancelled"
    assert _rows(db, "SELECT product_id, quantity, unit_price FROM order_items WHERE order_id = '6917926768823643751' "
                     "ORDER BY product_id") == [{"product_id": "SOAP-100", "quantity": 2, "unit_price": 29.9},
                                                {"product_id": "TOWEL-1", "quantity": 1, "unit_price": 19.9}]


def test_wechat_pay_bill_after_its_preamble_keeps_income_only():
    db = memory_db()
    result = import_export(db, FIXTURES / "wechat_pay_bill.csv")
    orders = {r["order_id"]: r for r in db.query("SELECT * FROM orders")}
    assert set(orders) == {"1000039901202606080987654321", "1000039901202606150987654322",
                           "1000039901202606200987654323"}  # the 支出 (spending) row is not a sale
    assert orders["1000039901202606080987654321"]["amount"] == 188.0  # ¥188.00
    assert orders["1000039901202606200987654323"]["status"] == "refunded"
    assert {o["customer_id"] for o in orders.values()} == {"陈女士", "Leo"}
    assert any("1 row that is not a sale was left out" in n for n in result.notes)


def test_mailchimp_exports_set_marketing_consent_by_email():
    db = memory_db()
    import_export(db, FIXTURES / "shopify_customers_export.csv")
    import_export(db, FIXTURES / "mailchimp_subscribed_members.csv")
    import_export(db, FIXTURES / "mailchimp_unsubscribed_members.csv")
    consent = dict(db.execute("SELECT email, consent_marketing FROM customers WHERE email IS NOT NULL").fetchall())
    assert consent["alice@example.com"] == 1
    assert consent["bob@example.com"] == 0  # unsubscribed (Bob@Example.com)
    assert consent["fia@example.se"] == 1
    assert next(db.query("SELECT name FROM customers WHERE email = 'fia@example.se'"))["name"] == "Fia Falk"
    import_export(db, FIXTURES / "mailchimp_cleaned_members.csv")  # Fia's address bounced since
    consent = dict(db.execute("SELECT email, consent_marketing FROM customers WHERE email IS NOT NULL").fetchall())
    assert (consent["fia@example.se"], consent["gus@example.org"], consent["alice@example.com"]) == (0, 0, 1)
    assert db.execute("SELECT count(*) FROM customers WHERE email = 'fia@example.se'").fetchone()[0] == 1


@pytest.mark.parametrize("name, email, nps, csat", [
    ("typeform_responses.csv", "dave@example.com", 3, 2),
    ("wjx_answers.csv", "wang@example.cn", 9, 5),
])
def test_typeform_and_wjx_scores_from_the_question_wording(name, email, nps, csat):
    db = memory_db()
    import_export(db, FIXTURES / name)
    row = next(db.query("SELECT f.nps, f.csat FROM feedback f JOIN customers c USING (customer_id) WHERE c.email = ?",
                        [email]))
    assert (row["nps"], row["csat"]) == (nps, csat)


def test_wjx_empty_answer_marker_is_no_comment():
    db = memory_db()
    import_export(db, FIXTURES / "wjx_answers.csv")
    comments = {r["comment"] for r in db.query("SELECT comment FROM feedback")}
    assert comments == {"包装很好", None}


def test_long_numbers_written_as_excel_text_stay_exact(tmp_path):
    text = (FIXTURES / "taobao_orders.csv").read_bytes().decode("gbk")
    text = text.replace("3456789012345678901,", '"=""3456789012345678901""",')
    path = tmp_path / "taobao.csv"
    path.write_bytes(text.encode("gbk"))
    db = memory_db()
    import_export(db, path)
    assert _order(db, "3456789012345678901")["amount"] == 128.0


def test_flags_of_a_named_table_are_refused_without_one(tmp_path):
    result = CliRunner().invoke(main, ["import", "--db", str(tmp_path / "crm.db"), "--map", "A=email",
                                       str(FIXTURES / "stripe_payments.csv")])
    assert result.exit_code != 0 and "need the table" in result.output


def test_alipay_bill_in_gbk_after_its_preamble_keeps_income_with_exact_numbers():
    db = memory_db()
    import_export(db, FIXTURES / "alipay_bill.csv")
    orders = {r["order_id"]: r for r in db.query("SELECT * FROM orders")}
    assert set(orders) == {"2026050322001414871443694067", "2026052022001414871443694099"}  # trailing tab gone
    assert [o["amount"] for o in orders.values()] == [268.0, 99.0]
    assert {o["customer_id"] for o in orders.values()} == {"赵先生"}


def test_skip_bad_rows_writes_the_good_orders_and_the_bad_lines_with_reasons(tmp_path):
    # #1001's second line gets a bad quantity: both its lines are left out, the other orders written
    lines = (FIXTURES / "shopify_orders_export.csv").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace(",1,Green tea 100 g,", ",one,Green tea 100 g,", 1)
    path = tmp_path / "orders_export.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db_path = tmp_path / "crm.db"
    refused = CliRunner().invoke(main, ["import", "--db", str(db_path), str(path)])
    assert refused.exit_code != 0 and "row 3, column Lineitem quantity: 'one'" in refused.output
    assert "--skip-bad-rows" in refused.output and sum(table_counts(open_db(db_path)).values()) == 0

    result = CliRunner().invoke(main, ["import", "--db", str(db_path), "--skip-bad-rows", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 bad rows were left out: rows and reasons in orders_export.rejects.csv" in result.output
    db = open_db(db_path)
    orders = {r["order_id"] for r in db.query("SELECT order_id FROM orders")}
    assert "#1001" not in orders and {"#1002", "#1003"} <= orders
    assert db.execute("SELECT count(*) FROM order_items WHERE order_id = '#1001'").fetchone()[0] == 0
    with (tmp_path / "orders_export.rejects.csv").open(newline="", encoding="utf-8-sig") as f:  # BOM: for Excel
        rejects = list(csv.reader(f))
    assert rejects[0][:3] == ["row", "reasons", "Name"]
    assert [(r[0], r[2]) for r in rejects[1:]] == [("2", "#1001"), ("3", "#1001")]
    assert "another line of this order is bad" in rejects[1][1] and "'one' not a number" in rejects[2][1]
    assert oct((tmp_path / "orders_export.rejects.csv").stat().st_mode & 0o777) == "0o600"


def test_skip_bad_rows_of_a_rates_file_keeps_the_good_days(tmp_path):
    lines = (FIXTURES / "eurofxref-hist.csv").read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("2025-04-25", "2025-04-31", 1)
    path = tmp_path / "eurofxref-hist.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = memory_db()
    result = import_export(db, path, skip_bad_rows=True)
    assert result.rejected == 1 and result.rejects_path.name == "eurofxref-hist.rejects.csv"
    days = {r[0] for r in db.execute("SELECT DISTINCT rate_date FROM exchange_rates")}
    assert days == {"2025-04-17", "2025-04-22", "2025-04-23", "2025-04-24"}


def test_woocommerce_customers_join_the_people_of_the_orders_export_by_email():
    db = memory_db()
    import_export(db, FIXTURES / "woocommerce_orders.csv")
    ines = _order(db, "4990")["customer_id"]
    result = import_export(db, FIXTURES / "woocommerce_customers.csv")
    assert (result.tables["customers"].inserted, result.tables["customers"].updated) == (1, 2)
    people = {r["email"]: r for r in db.query("SELECT * FROM customers")}
    assert set(people) == {"ines@example.fr", "tom@example.de", "mei@example.cn"}
    # the e-mail in capitals is the person of orders 4990/4991, now with what the customers export knows
    assert people["ines@example.fr"]["customer_id"] == ines
    assert {k: people["ines@example.fr"][k] for k in ("name", "phone", "company", "city", "country", "first_seen")} \
        == {"name": "Ines Moreau", "phone": "+33 6 12 34 56 78", "company": "Atelier Moreau", "city": "Lyon",
            "country": "FR", "first_seen": "2026-05-20"}
    # a guest (customer_id 0) is matched by e-mail like anyone; without an account e-mail, the billing one
    assert people["tom@example.de"]["customer_id"] == _order(db, "4992")["customer_id"]
    assert (people["mei@example.cn"]["name"], people["mei@example.cn"]["first_seen"]) == ("Mei Lin", "2026-06-02")


def test_a_real_import_counts_the_ignored_columns_instead_of_listing_dozens(tmp_path):
    out = CliRunner().invoke(main, ["import", "--db", str(tmp_path / "crm.db"),
                                    str(FIXTURES / "shopify_orders_export.csv")]).output
    assert "columns of the export are not needed and were ignored (--dry-run lists them)" in out
    assert "Fulfillment Status" not in out
