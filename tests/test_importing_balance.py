"""The money balance of `crm import FILE`: every amount of an export accounted for, per currency.

The file's money = paid + refunded + failed/cancelled + not sales (each kind) + erased + rejected,
and the refunds the file records are on stored orders; an import whose balance does not close is
refused naming the difference (with --skip-bad-rows: imported with the gap listed), and the balance
is kept with the import batch. The fixtures' headers and where each comes from:
tests/fixtures/sources/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_helpers.cli import main
from crm_helpers.ingest.export_import import import_export
from crm_helpers.ingest.inbox import import_inbox
from crm_helpers.ingest.table_import import ImportRejected
from crm_helpers.store.connection import memory_db, open_db, table_counts

FIXTURES = Path(__file__).parent / "fixtures" / "sources"

BALANCES = {  # fixture -> {currency: (the file's money, paid, refunded, failed/cancelled, not sales)}
    "shopify_orders_export.csv": {"EUR": (159.50, 96.00, 35.00, 28.50, 0)},
    "stripe_payments.csv": {"EUR": (325.00, 170.00, 110.00, 45.00, 0), "USD": (60.00, 60.00, 0, 0, 0)},
    "online_retail.csv": {"(no currency)": (135.93, 108.43, 27.50, 0, 0)},
    "taobao_orders.csv": {"CNY": (283.50, 184.50, 0, 99.00, 0)},
    "woocommerce_orders.csv": {"(no currency)": (117.50, 75.50, 30.00, 12.00, 0)},
    "paypal_activity.csv": {"EUR": (2389.99, 1250.00, 99.99, 40.00, 1000.00)},
    "etsy_sold_orders.csv": {"CAD": (124.00, 124.00, 0, 0, 0)},
    "etsy_sold_orders_adjusted.csv": {"USD": (68.80, 58.80, 10.00, 0, 0)},
    "etsy_sold_orders_en_gb.csv": {"GBP": (77.50, 67.50, 10.00, 0, 0)},
    "etsy_sold_order_items.csv": {"CAD": (104.00, 104.00, 0, 0, 0)},
    "douyin_orders.csv": {"CNY": (109.60, 79.70, 0, 29.90, 0)},
    "douyin_orders_after_sale.csv": {"CNY": (149.40, 89.70, 59.70, 0, 0)},
    "wechat_pay_bill.csv": {"CNY": (411.50, 308.00, 80.00, 0, 23.50)},
    "wechat_pay_bill_partial_refund.csv": {"CNY": (813.50, 240.00, 50.00, 0, 523.50)},  # 500.00 the owner's own
    "alipay_bill.csv": {"CNY": (370.32, 367.00, 0, 0, 3.32)},
    "alipay_bill_refund.csv": {"CNY": (370.32, 99.00, 268.00, 0, 3.32)},
    "square_transactions.csv": {"(no currency)": (107.32, 84.36, 22.96, 0, 0)},  # refund rows pay back payments
    "square_item_details.csv": {"(no currency)": (99.00, 87.00, 12.00, 0, 0)},
    "taobao_order_items.csv": {"CNY": (443.50, 228.00, 116.50, 99.00, 0)},  # 退款关闭's 20.00 is no refund
    "etsy_sold_orders_status.csv": {"USD": (125.00, 46.00, 34.00, 45.00, 0)},
}


def _kept_balance(db) -> dict:
    """The balance kept with the newest import's batches (the same JSON on each batch of the group)."""
    kept = {r["balance"] for r in db.query(
        "SELECT balance FROM import_log WHERE group_id = (SELECT MAX(group_id) FROM import_log)")}
    assert len(kept) == 1
    return json.loads(kept.pop())


@pytest.mark.parametrize("name", list(BALANCES))
def test_each_money_export_balances_with_no_flags_twice_and_keeps_its_balance(tmp_path, name):
    db_path = tmp_path / "crm.db"
    runner = CliRunner()
    first = runner.invoke(main, ["import", "--db", str(db_path), str(FIXTURES / name)])
    assert first.exit_code == 0, first.output
    kept = _kept_balance(open_db(db_path))
    assert set(kept) == set(BALANCES[name])
    for currency, (file_money, paid, refunded, failed, not_sales) in BALANCES[name].items():
        c = kept[currency]
        assert (c["file_money"], c["paid"], c["refunded"], c["failed_cancelled"]) == pytest.approx(
            (file_money, paid, refunded, failed))
        assert sum(k["money"] for k in c["not_sales"].values()) == pytest.approx(not_sales)
        assert c["difference"] == 0 and c["refunds_difference"] == 0
        assert f"balance {currency}: the file's money {file_money:,.2f} = paid {paid:,.2f}" in first.output
    stored = {t: [dict(r) for r in open_db(db_path).query(f"SELECT * FROM {t} ORDER BY 1, 2")]
              for t in table_counts(open_db(db_path))}
    again = runner.invoke(main, ["import", "--db", str(db_path), str(FIXTURES / name)])
    assert again.exit_code == 0, again.output
    assert "nothing changed" in again.output and "balance " in again.output
    assert {t: [dict(r) for r in open_db(db_path).query(f"SELECT * FROM {t} ORDER BY 1, 2")]
            for t in table_counts(open_db(db_path))} == stored


def _renamed(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of fixture ``name`` with header ``old`` renamed ``new`` (as a tool's new layout might)."""
    text = (FIXTURES / name).read_text(encoding="utf-8-sig")
    head, rest = text.split("\n", 1)
    assert old in head.split(",")
    path = tmp_path / name
    path.write_text(",".join(new if h == old else h for h in head.split(",")) + "\n" + rest, encoding="utf-8")
    return path


def test_an_export_whose_refund_column_was_renamed_is_refused_by_its_balance(tmp_path):
    broken = _renamed(tmp_path, "shopify_orders_export.csv", "Refunded Amount", "Refunded Amount (EUR)")
    db = memory_db()
    with pytest.raises(ImportRejected) as refused:
        import_export(db, broken)
    message = str(refused.value)
    assert "the money does not balance" in message
    assert "10.00 EUR of refunds the file records is on no stored order" in message  # the partial refund
    assert "check the export against the tool" in message
    assert sum(table_counts(db).values()) == 0  # nothing stored wrong


def test_with_skip_bad_rows_an_unbalanced_export_is_imported_with_its_gap_listed(tmp_path):
    broken = _renamed(tmp_path, "shopify_orders_export.csv", "Refunded Amount", "Refunded Amount (EUR)")
    db_path = tmp_path / "crm.db"
    result = CliRunner().invoke(main, ["import", "--db", str(db_path), "--skip-bad-rows", str(broken)])
    assert result.exit_code == 0, result.output
    assert "DIFFERENCE 10.00 of refunds the file records but no order shows" in result.output
    assert "the balance does not close" in result.output
    assert _kept_balance(open_db(db_path))["EUR"]["refunds_difference"] == pytest.approx(10.0)


def test_the_dry_run_shows_the_balance_and_predicts_the_refusal(tmp_path):
    db_path = tmp_path / "crm.db"
    runner = CliRunner()
    dry = runner.invoke(main, ["import", "--db", str(db_path), "--dry-run", str(FIXTURES / "wechat_pay_bill.csv")])
    assert dry.exit_code == 0, dry.output
    assert "balance CNY: the file's money 411.50 = paid 308.00 + refunded 80.00 + failed/cancelled 0.00 + " \
           "not sales 23.50 (1 支出)" in dry.output
    broken = _renamed(tmp_path, "shopify_orders_export.csv", "Refunded Amount", "Refunded Amount (EUR)")
    refused = runner.invoke(main, ["import", "--db", str(db_path), "--dry-run", str(broken)])
    assert refused.exit_code != 0 and "the money does not balance" in refused.output


def test_rejected_rows_are_counted_in_the_balance_with_their_money(tmp_path):
    text = (FIXTURES / "stripe_payments.csv").read_text(encoding="utf-8")
    path = tmp_path / "stripe_payments.csv"
    path.write_text(text.replace("2026-06-10 16:45:00", "not a date"), encoding="utf-8")
    result = import_export(memory_db(), path, skip_bad_rows=True)
    eur = result.balance.currencies["EUR"]
    assert (eur.rejected, eur.rejected_rows, eur.file_money) == pytest.approx((80.0, 1, 325.0))
    assert result.balance.ok and "rejected 80.00 (1 rows)" in result.summary()


def test_the_inbox_says_each_files_balance(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "bill.csv").write_bytes((FIXTURES / "wechat_pay_bill_partial_refund.csv").read_bytes())
    results = import_inbox(open_db(tmp_path / "crm.db"), inbox)
    assert results["status"].tolist() == ["imported"]
    assert "balance CNY: the file's money 813.50 = paid 240.00 + refunded 50.00" in results["message"].iat[0]


def test_rows_of_erased_people_are_counted_as_erased_in_the_balance():
    from crm_helpers.store.forget import forget

    db = memory_db()
    import_export(db, FIXTURES / "stripe_payments.csv")
    forget(db, "alice@example.com")
    again = import_export(db, FIXTURES / "stripe_payments.csv")
    eur = again.balance.currencies["EUR"]
    assert again.erased_skipped == 1 and again.balance.ok
    assert (eur.erased, eur.file_money) == pytest.approx((120.0, 325.0))  # her 120.00 payment, not stored again
    assert "erased people 120.00" in again.summary()
