"""Refunds wherever the tool records them, and whose money it is (issue 31, items 2 and 3).

Each fixture's header is the tool's own (where it comes from: tests/fixtures/sources/README.md);
the tests assert what the store holds: amounts, refunded amounts, statuses and customers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_helpers.ingest.export_import import import_export
from crm_helpers.ingest.table_import import ImportRejected
from crm_helpers.store.connection import memory_db
from crm_helpers.store.undo import undo_import

FIXTURES = Path(__file__).parent / "fixtures" / "sources"


def _orders(db) -> dict[str, dict]:
    return {r["order_id"]: dict(r) for r in db.query("SELECT * FROM orders")}


def _money(order: dict) -> tuple:
    return order["amount"], order["refunded_amount"], order["status"]


@pytest.mark.parametrize(("name", "order_id", "expected"), [
    ("etsy_sold_orders_adjusted.csv", "9101", (43.80, 10.00, "paid")),  # 43.80 adjusted to 33.80
    ("etsy_sold_orders_en_gb.csv", "9201", (56.50, 10.00, "paid")),  # the en-GB layout, the same column
])
def test_an_etsy_adjusted_order_total_is_a_partial_refund(name, order_id, expected):
    db = memory_db()
    import_export(db, FIXTURES / name)
    orders = _orders(db)
    assert _money(orders[order_id]) == pytest.approx(expected)
    unadjusted = next(o for o in orders.values() if o["order_id"] != order_id)
    assert unadjusted["refunded_amount"] == 0 and unadjusted["status"] == "paid"


def test_a_wechat_partial_refund_status_is_a_paid_sale_with_its_refund():
    db = memory_db()
    result = import_export(db, FIXTURES / "wechat_pay_bill_partial_refund.csv")  # 已退款(￥50.00): not refused
    orders = _orders(db)
    assert _money(orders["1000039901202607030987654331"]) == pytest.approx((200.0, 50.0, "paid"))
    assert _money(orders["1000039901202607080987654332"]) == pytest.approx((90.0, 0.0, "paid"))
    assert len(orders) == 2 and result.rejected == 0
    # the bill's owner (微信昵称 小店) moving money of their own: no sale, never a customer
    assert "1000050001202607120987654333" not in orders
    assert {r["customer_id"] for r in db.query("SELECT customer_id FROM customers")} == {"陈女士", "Leo"}
    assert "of 小店's own money" in result.summary()
    assert result.balance.currencies["CNY"].not_sales["owner's own"] == [1, pytest.approx(500.0)]


def test_douyin_after_sale_refunds_and_encrypted_buyers_are_no_identity():
    db = memory_db()
    result = import_export(db, FIXTURES / "douyin_orders_after_sale.csv")
    orders = _orders(db)
    assert _money(orders["6917926768823650001"]) == pytest.approx((79.70, 19.90, "paid"))  # one line paid back
    assert _money(orders["6917926768823650011"]) == pytest.approx((29.90, 0.0, "paid"))
    assert _money(orders["6917926768823650021"]) == pytest.approx((39.80, 39.80, "refunded"))  # its only line
    customers = [dict(r) for r in db.query("SELECT * FROM customers")]
    assert len(customers) == 3 and result.guest_orders == 3  # each order a guest of its own
    assert len({o["customer_id"] for o in orders.values()}) == 3
    assert not any(str(c[k] or "").startswith(("##", "$$")) for c in customers for k in ("customer_id", "name", "phone"))


def test_an_alipay_refund_row_pays_back_its_payment_and_is_no_order():
    db = memory_db()
    import_export(db, FIXTURES / "alipay_bill_refund.csv")
    orders = _orders(db)
    assert set(orders) == {"2026050322001414871443694067", "2026052022001414871443694099"}
    assert _money(orders["2026050322001414871443694067"]) == pytest.approx((268.0, 268.0, "refunded"))
    assert _money(orders["2026052022001414871443694099"]) == pytest.approx((99.0, 0.0, "paid"))
    assert db.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 1  # 赵先生, once


def test_a_paypal_refund_of_an_earlier_download_updates_that_order_never_a_new_one():
    db = memory_db()
    import_export(db, FIXTURES / "paypal_activity.csv")
    customers_before = db.execute("SELECT COUNT(*) FROM customers").fetchone()[0]
    later = import_export(db, FIXTURES / "paypal_activity_later.csv")
    orders = _orders(db)
    assert _money(orders["1AB23456CD789012E"]) == pytest.approx((1250.0, 20.0, "paid"))  # 20.00 of it paid back
    assert "9CD01234EF567890A" not in orders  # the refund row: no order of its own
    assert later.balance.currencies["EUR"].earlier_refunds == pytest.approx(20.0)
    # a General Payment received from a customer is a sale; one the shop sent is not
    assert _money(orders["6FA78901BC234567D"]) == pytest.approx((300.0, 0.0, "paid"))
    assert orders["6FA78901BC234567D"]["currency"] == "USD"
    assert "7AB89012CD345678E" not in orders
    assert "outside a checkout (General Payment) was taken as sales" in later.summary()
    emails = {r["email"] for r in db.query("SELECT email FROM customers")}
    assert "shop@example.com" not in emails and "billing@printstudio.example" not in emails
    assert emails >= {"jana@example.com", "omar@example.net", "lea@example.org"}
    assert db.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == customers_before + 2  # Omar and Lea
    again = import_export(db, FIXTURES / "paypal_activity_later.csv")
    assert not again.batch_ids and _orders(db) == orders  # the refund is not counted twice
    undo_import(db, later.batch_ids[0])
    assert _money(_orders(db)["1AB23456CD789012E"]) == pytest.approx((1250.0, 0.0, "paid"))


def test_a_paypal_refund_of_a_payment_nowhere_is_refused_naming_its_row(tmp_path):
    db = memory_db()
    path = tmp_path / "paypal_activity_later.csv"  # the rejects file is written beside it
    path.write_bytes((FIXTURES / "paypal_activity_later.csv").read_bytes())
    with pytest.raises(ImportRejected) as refused:
        import_export(db, path)
    assert "row 2" in str(refused.value) and "neither in this file nor in the store" in str(refused.value)
    assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0
    result = import_export(db, path, skip_bad_rows=True)
    assert result.rejected == 1 and result.balance.ok
    assert "9CD01234EF567890A" not in _orders(db)


def test_etsy_order_items_after_the_orders_keep_what_the_buyer_paid_and_the_buyer():
    db = memory_db()
    import_export(db, FIXTURES / "etsy_sold_orders.csv")
    before = _orders(db)
    customers = [dict(r) for r in db.query("SELECT * FROM customers ORDER BY customer_id")]
    items = import_export(db, FIXTURES / "etsy_sold_order_items.csv")
    assert _orders(db) == before  # 76.00 with shipping, not the 68.00 of its items; the same buyer
    assert [dict(r) for r in db.query("SELECT * FROM customers ORDER BY customer_id")] == customers
    assert items.guest_orders == 0
    assert next(db.query("SELECT quantity, unit_price FROM order_items WHERE order_id = '9002'")) == \
        {"quantity": 3, "unit_price": 9.0}
    assert items.balance.currencies["CAD"].described == pytest.approx(104.0) and items.balance.ok
