"""Several currencies are never summed as one: exchange rates imported from the ECB's file convert
orders to the store's currency in the one definition of net revenue; without a rate, orders are
left out of the money figures and a note counts them per currency."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_helpers.cli import main
from crm_helpers.store.queries import currency_note, money_note, store_currency, unconverted_orders
from crm_helpers.ingest.table_import import ImportRejected
from crm_helpers.analyses.sales import period_figures
from crm_helpers.store.facts import net_revenue_sql
from crm_helpers.ingest.export_import import import_export
from crm_helpers.store.connection import SCHEMA_VERSION, memory_db, open_db, schema_version
from crm_helpers.store.undo import undo_import

RATES_FILE = Path(__file__).parent / "fixtures" / "sources" / "eurofxref-hist.csv"


def _published() -> dict[tuple[str, str], float]:
    """The ECB file's rates read with the csv module: {(currency, day): units per 1 EUR}."""
    with RATES_FILE.open(newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    return {(header[i], row[0]): float(row[i]) for row in rows[1:] for i in range(1, len(header))
            if header[i] and row[i] != "N/A"}


def _store(orders: list[tuple[str, str, float, float, str]]):
    """A store with one customer and paid orders (id, date, amount, refunded, currency)."""
    db = memory_db()
    db.table("customers").insert({"customer_id": "K1"})
    db.table("orders").insert_all([
        {"order_id": o, "customer_id": "K1", "order_date": d, "amount": a, "refunded_amount": r, "currency": c,
         "status": "paid"} for o, d, a, r, c in orders])
    return db


# four EUR orders (the store's currency), three in USD, one in GBP
TWO_CURRENCIES = [
    ("E1", "2025-04-22", 100.0, 0.0, "EUR"),
    ("E2", "2025-04-23", 50.0, 10.0, "EUR"),
    ("E3", "2025-04-24", 20.0, 0.0, "EUR"),
    ("E4", "2025-04-25", 30.0, 0.0, "EUR"),
    ("U1", "2025-04-24", 113.76, 0.0, "USD"),  # 1.1376 USD per EUR that day: 100 EUR
    ("U2", "2025-04-19", 227.20, 113.60, "USD"),  # Easter Saturday: the rate of Thursday 17 April, 1.136
    ("U3", "2025-04-10", 10.0, 0.0, "USD"),  # before the first rate in the file: no rate
    ("G1", "2025-04-24", 85.50, 0.0, "GBP"),  # 0.855 GBP per EUR: 100 EUR
]


def _net(db, where: str = "1") -> float:
    return db.execute(f"SELECT sum({net_revenue_sql()}) FROM orders WHERE status = 'paid' AND {where}").fetchone()[0]


def test_the_ecb_file_lands_one_row_per_currency_and_day_and_again_changes_nothing():
    db = memory_db()
    result = import_export(db, RATES_FILE)
    assert result.source.key == "ecb_rates" and not result.ignored_columns
    stored = {(r["currency"], r["rate_date"]): r["per_eur"] for r in db.query("SELECT * FROM exchange_rates")}
    assert stored == _published()  # N/A cells (CYP, EEK, …) are no rate; ZAR, before the closing comma, is one
    assert stored[("USD", "2025-04-17")] == 1.136 and stored[("ZAR", "2025-04-25")] == 21.3608
    again = import_export(db, RATES_FILE)
    assert (again.tables["exchange_rates"].inserted, again.tables["exchange_rates"].updated) == (0, 0)
    undo_import(db, result.batch_ids[0])
    assert db.table("exchange_rates").count == 0


def test_without_rates_other_currencies_are_left_out_and_counted_per_currency():
    db = _store(TWO_CURRENCIES)
    assert store_currency(db) == "EUR"
    assert _net(db) == pytest.approx(100 + 40 + 20 + 30)  # the EUR orders only, never EUR + USD + GBP
    assert unconverted_orders(db) == {"USD": 3, "GBP": 1}
    note = currency_note(db)
    assert "4 paid orders (3 in USD, 1 in GBP) are left out of the money figures, which are in EUR" in note
    assert "crm import" in note


def test_with_rates_orders_are_converted_at_the_rate_of_their_date():
    db = _store(TWO_CURRENCIES)
    import_export(db, RATES_FILE)
    net = {r[0]: r[1] for r in db.execute(f"SELECT order_id, {net_revenue_sql()} FROM orders")}
    assert net["U1"] == pytest.approx(100.0)
    assert net["U2"] == pytest.approx(100.0)  # (227.20 − 113.60) / 1.136
    assert net["G1"] == pytest.approx(100.0)
    assert net["U3"] is None and net["E2"] == pytest.approx(40.0)
    assert unconverted_orders(db) == {"USD": 1}
    assert "1 paid order (1 in USD) is left out" in currency_note(db)
    # the analyses read the one definition: the month's revenue counts the converted orders
    figures = period_figures(db, dt.date(2025, 4, 1), end=dt.date(2025, 4, 30))
    assert figures["revenue"] == pytest.approx(190 + 300)


def test_a_store_in_another_currency_converts_through_the_euro():
    db = _store([("U1", "2025-04-24", 10.0, 0.0, "USD"), ("U2", "2025-04-24", 10.0, 0.0, "USD"),
                 ("E1", "2025-04-24", 100.0, 0.0, "EUR"), ("G1", "2025-04-24", 85.5, 0.0, "GBP"),
                 ("N1", "2025-04-24", 5.0, 0.0, None)])
    import_export(db, RATES_FILE)
    net = {r[0]: r[1] for r in db.execute(f"SELECT order_id, {net_revenue_sql()} FROM orders")}
    assert store_currency(db) == "USD"
    assert net["E1"] == pytest.approx(113.76)  # 100 EUR × 1.1376 USD per EUR
    assert net["G1"] == pytest.approx(85.5 / 0.855 * 1.1376)
    assert net["N1"] == 5.0  # an order without a currency is in the store's


def test_a_bad_rate_names_file_row_and_currency_and_nothing_is_written(tmp_path):
    db = memory_db()
    lines = RATES_FILE.read_text().splitlines()
    lines[2] = lines[2].replace(",1.1376,", ",1.13x76,", 1)  # 2025-04-24's USD
    bad = tmp_path / "eurofxref-hist.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportRejected, match=r"row 3, column USD: '1\.13x76' not a number") as rejected:
        import_export(db, bad)
    assert str(rejected.value).startswith("eurofxref-hist.csv: 1 bad row; nothing was imported")
    assert db.table("exchange_rates").count == 0


def test_the_cli_notes_orders_left_out_after_an_orders_import(tmp_path):
    db_path = tmp_path / "crm.db"
    db = open_db(db_path)
    assert schema_version(db) == SCHEMA_VERSION >= 5  # with the exchange rates (m005)
    db.table("customers").insert({"customer_id": "K1"})
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,customer_id,order_date,amount,currency,status\n"
                      "A1,K1,2025-04-22,100,EUR,paid\nA2,K1,2025-04-23,80,EUR,paid\nA3,K1,2025-04-24,50,USD,paid\n")
    runner = CliRunner()
    first = runner.invoke(main, ["import", "--db", str(db_path), "orders", str(orders)])
    assert first.exit_code == 0, first.output
    assert "1 paid order (1 in USD) is left out" in first.output
    rates = runner.invoke(main, ["import", "--db", str(db_path), str(RATES_FILE)])
    assert rates.exit_code == 0, rates.output
    assert "recognised as ECB euro reference exchange rates" in rates.output and "left out" not in rates.output


def test_purchases_for_clv_leave_out_orders_without_a_rate():
    from crm_helpers.analyses.clv import paid_purchase_days

    db = _store(TWO_CURRENCIES)
    days = paid_purchase_days(db, "2025-04-30")
    assert not days["amount"].isna().any()
    assert days["amount"].sum() == pytest.approx(190.0) and days["orders"].sum() == 4  # the EUR orders
    import_export(db, RATES_FILE)
    days = paid_purchase_days(db, "2025-04-30")
    assert days["amount"].sum() == pytest.approx(490.0) and days["orders"].sum() == 7  # U3 still has no rate


def test_money_note_says_what_was_converted_and_what_is_left_out():
    db = _store(TWO_CURRENCIES)
    assert money_note(db).startswith("4 paid orders (3 in USD, 1 in GBP) are left out")
    import_export(db, RATES_FILE)
    note = money_note(db)
    assert note.startswith("Amounts are in EUR; 3 paid orders (2 in USD, 1 in GBP) were converted at the ECB "
                           "reference rate")
    assert "1 paid order (1 in USD) is left out" in note
    assert money_note(_store([o for o in TWO_CURRENCIES if o[4] == "EUR"])) == ""


@pytest.mark.slow
def test_a_rendered_money_page_shows_the_currency_note_under_its_title(tmp_path):
    from bs4 import BeautifulSoup

    from crm_helpers.store.periods import Period
    from crm_helpers.report.runner import render_report

    db_path = tmp_path / "crm.db"
    db = open_db(db_path)
    db.table("customers").insert({"customer_id": "K1"})
    db.table("orders").insert_all([
        {"order_id": o, "customer_id": "K1", "order_date": d, "amount": a, "refunded_amount": r, "currency": c,
         "status": "paid"} for o, d, a, r, c in TWO_CURRENCIES])
    import_export(db, RATES_FILE)
    period = Period(dt.date(2025, 4, 1), dt.date(2025, 4, 30))
    result = render_report(db_path, period, out_dir=tmp_path / "report", only=["06"],
                           jobs=1, progress=False)
    assert result.ok, [(r.name, r.error) for r in result.failed]
    page = BeautifulSoup((tmp_path / "report" / "06_sales_and_forecast.html").read_text(encoding="utf-8"),
                         "html.parser")
    title = page.find("h1")
    after_title = title.find_next(string=lambda s: "converted at the ECB reference rate" in s)
    assert after_title is not None
    assert "3 paid orders (2 in USD, 1 in GBP)" in after_title and "1 paid order (1 in USD) is left out" in after_title
    assert after_title.find_previous("h2") is None  # before the page's first section
