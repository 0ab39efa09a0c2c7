"""Headline figures against the previous month and the same month last year: coloured by what is
good, grey within noise, counted facts without a range, and the index's "Needs attention" list built
from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup
from nbformat.v4 import new_code_cell, new_notebook, new_output

from crm_helpers.analyses import sales, satisfaction, segmentation, service
from crm_helpers.demo import generate_demo, write_demo
from crm_helpers.store.connection import open_db
from crm_helpers.store.periods import parse_month
from crm_helpers.report import headlines
from crm_helpers.report.index import ATTENTION_MAX, ATTENTION_MIN, index_html, needs_attention
from crm_helpers.report.pages import NotebookRun


def _count(key: str, value: int, good: str = "up", previous: int | None = None, **extra) -> dict:
    """A count as the sales notebook records it: Poisson standard error √n, of the previous month too."""
    return {"key": key, "value": value, "label": key.replace("_", " ").capitalize(), "unit": "", "good": good,
            "se": value ** 0.5, "previous": previous, "previous_se": None if previous is None else previous ** 0.5,
            **extra}


def test_a_move_within_poisson_noise_is_grey_whatever_its_size_in_percent():
    # the demo's lost customers: 23 -> 36 is +56.5 %, but √(23 + 36) · 1.96 = 15 > 13
    change = headlines.compare(_count("lost_customers", 36, "down"), _count("lost_customers_prev", 23, "down"))
    assert change.delta == 13 and change.within_noise is True and change.verdict == "noise"


def test_a_real_move_is_coloured_by_what_is_good_for_the_business():
    lost = headlines.compare(_count("lost_customers", 80, "down"), _count("lost_customers_prev", 30, "down"))
    assert lost.within_noise is False and lost.verdict == "bad"  # lost customers up is bad news
    fewer_lost = headlines.compare(_count("lost_customers", 30, "down"), _count("lost_customers_prev", 80, "down"))
    assert fewer_lost.verdict == "good"
    new = headlines.compare(_count("new_customers", 1), _count("new_customers_prev", 41))
    assert new.verdict == "bad"
    assert headlines.compare(_count("follow_up", 80, ""), _count("follow_up_prev", 30, "")).verdict == "neutral"


def test_a_tested_change_interval_decides_before_standard_errors():
    now = {"key": "nps", "value": 23.7, "good": "up", "se": 0.1, "change_interval": [-17.0, 18.0]}
    assert headlines.compare(now, {"value": 23.5, "se": 0.1}).verdict == "noise"  # the bootstrap includes 0
    now["change_interval"] = [2.0, 30.0]
    assert headlines.compare(now, {"value": 7.5}).verdict == "good"


def test_without_any_noise_recorded_a_move_is_not_called_good_or_bad():
    change = headlines.compare({"value": 3.95, "good": "up"}, {"value": 3.98})
    assert change.within_noise is None and change.verdict == "neutral"
    assert headlines.compare({"value": None, "good": "up"}, {"value": 3.0}).delta is None


def test_interval_is_the_recorded_one_or_value_plus_minus_two_standard_errors():
    assert headlines.interval({"value": 10.0, "interval": [4.0, 19.0], "se": 1.0}) == (4.0, 19.0)
    low, high = headlines.interval({"value": 100.0, "se": 10.0})
    assert low == pytest.approx(80.4, abs=0.01) and high == pytest.approx(119.6, abs=0.01)
    assert headlines.interval({"value": 100.0}) is None


def test_record_refuses_an_unknown_good_direction():
    with pytest.raises(ValueError, match="good must be"):
        headlines.record("x", 1, label="x", good="higher")


def _run(name: str, figures: list[dict], flags: list[dict] = ()) -> NotebookRun:
    return NotebookRun(name, Path(f"{name}.ipynb"), Path(f"{name}.html"), True, 1.0,
                       headlines={f["key"]: f for f in figures}, flags=list(flags))


def test_needs_attention_ranks_by_money_links_each_page_and_leaves_out_noise():
    sales = _run("06_sales", [
        _count("new_customers", 1, worth=150.0, previous=41),  # 40 × 150 = 6,000 at stake
        _count("lost_customers", 36, "down", worth=150.0, previous=23),  # noise
        {"key": "revenue", "value": 20000.0, "unit": "EUR", "good": "up", "se": 900.0, "label": "Revenue",
         "previous": 30000.0, "previous_se": 1000.0},  # 10,000 EUR at stake
    ])
    romi = _run("04_romi", [], [{"key": "c02", "sentence": "Paid social ads cost 1,200 EUR and brought no "
                                                          "measurable extra revenue.", "money": 1200.0}])
    items = needs_attention([romi, sales])
    assert [page for _, page in items] == ["06_sales.html", "06_sales.html", "04_romi.html"]
    assert items[0][0] == "Revenue fell from 30,000 EUR to 20,000 EUR, more than its usual month-to-month noise."
    assert "New customers fell from 41 to 1" in items[1][0]
    assert not any("Lost" in sentence for sentence, _ in items)


def test_needs_attention_holds_at_most_seven_and_says_when_nothing_else_moved():
    many = _run("01", [], [{"key": f"k{i}", "sentence": f"Gap {i}.", "money": float(i)} for i in range(10)])
    items = needs_attention([many])
    assert len(items) == ATTENTION_MAX and items[0][0] == "Gap 9."
    quiet = needs_attention([_run("06", [_count("lost_customers", 36, "down", previous=23)])])
    assert len(quiet) == 1 < ATTENTION_MIN and "within its usual noise" in quiet[0][0]


def test_a_headline_carries_its_previous_month_and_turns_nan_into_not_available():
    figure = headlines.Headline("nps", float("nan"), "NPS", previous=np.int64(12), interval=(float("nan"), 3.0),
                                se=2.0, previous_se=float("inf"))
    assert figure.value is None and figure.previous == 12 and isinstance(figure.previous, int)
    assert figure.interval is None and figure.previous_se is None and not figure.noise_known
    assert figure.change == "relative" and headlines.Headline("rate", 5.0, "Rate", unit="%").change == "points"
    with pytest.raises(ValueError, match="good must be"):
        headlines.Headline("x", 1, "x", good="higher")


def _executed(*payloads: dict, mime: str = headlines.MIME_TYPE):
    return new_notebook(cells=[new_code_cell("", outputs=[new_output("display_data", data={mime: p})])
                               for p in payloads])


def test_read_folds_a_figure_recorded_the_old_way_as_key_prev_into_previous():
    old = _executed(_count("lost_customers", 36, "down"), _count("lost_customers_prev", 23, "down"),
                    _count("follow_up_prev", 3))  # a _prev without its figure is kept as it is
    figures = headlines.read(old)
    assert set(figures) == {"lost_customers", "follow_up_prev"}
    assert figures["lost_customers"]["previous"] == 23 and figures["lost_customers"]["previous_se"] == 23 ** 0.5
    assert headlines.compare(figures["lost_customers"]).verdict == "noise"  # as the pair compared before


def test_a_recorded_table_is_read_back_by_key_and_reaches_the_index():
    table = {"key": "follow_up_queue", "label": "Whom to contact", "columns": ["name", "email", "reasons"],
             "rows": [{"name": "Ann Lee", "email": None, "reasons": "open complaint"}]}
    tables = headlines.read_tables(_executed(table, mime=headlines.TABLE_MIME_TYPE))
    assert tables == {"follow_up_queue": table}
    run = NotebookRun("03_scoring", Path("03_scoring.ipynb"), Path("03_scoring.html"), True, 1.0, tables=tables)
    page = BeautifulSoup(index_html(parse_month("2026-10"), [run]), "html.parser")
    queue = page.select_one("table.queue")
    assert [td.get_text() for td in queue.select("td")] == ["Ann Lee", "", "open complaint"]


def test_a_move_without_a_noise_estimate_is_grey_and_says_so():
    at_risk = {"key": "at_risk_customers", "value": 123, "label": "Customers at risk", "unit": "", "good": "",
               "previous": 100}
    revenue = _count("revenue", 100, previous=40)  # a real move, good for the business
    run = _run("02", [at_risk, revenue])
    page = BeautifulSoup(index_html(parse_month("2026-10"), [run]), "html.parser")
    cells = {row.select_one("a").get_text(): row.select_one("td.change") for row in page.select("#kpis tbody tr")}
    grey = cells["Customers at risk"]
    assert "unjudged" in grey["class"] and not {"good", "bad"} & set(grey["class"])
    assert "no noise estimate" in grey["title"] and "no noise estimate" in grey.get_text()
    assert "good" in cells["Revenue"]["class"] and "no noise estimate" not in cells["Revenue"].get_text()


# -- the same month last year, facts without ranges (issue 27, item 2) ------------------------------

NOVEMBER = parse_month("2026-11")


@pytest.fixture(scope="module")
def november_db(tmp_path_factory):
    """The demo business as ``crm demo`` writes it, up to November 2026: November 2025 is about half
    November 2026 (a seasonal shop whose month-on-month move is within noise)."""
    path = tmp_path_factory.mktemp("november") / "crm.db"
    write_demo(open_db(path), generate_demo(customers=800, months=24, seed=42, end="2026-11"))
    return open_db(path)


@pytest.fixture(scope="module")
def november_figures(november_db) -> dict[str, dict]:
    """The headline payloads sales, satisfaction, service and segmentation record for November 2026."""
    figures = [*sales.headline_figures(november_db, period=NOVEMBER),
               *satisfaction.headline_figures(november_db, period=NOVEMBER),
               *service.headline_figures(november_db, period=NOVEMBER),
               *segmentation.headline_figures(november_db, period=NOVEMBER)]
    return {f.key: f.payload() for f in figures}


def _rows(page: BeautifulSoup) -> dict[str, list]:
    """Each headline row's cells (figure, this month, previous month, same month last year) by label."""
    return {row.select_one("a").get_text(): row.select("td") for row in page.select("#kpis tbody tr")}


def test_the_year_on_year_figure_is_the_stores_own_same_month_last_year(november_db, november_figures):
    revenue, orders = november_db.execute(
        "SELECT sum(amount - coalesce(refunded_amount, 0)), count(*) FROM orders WHERE status = 'paid' "
        "AND order_date >= '2025-11-01' AND order_date < '2025-12-01'").fetchone()
    assert november_figures["revenue"]["year_ago"] == pytest.approx(revenue, abs=0.01)
    assert november_figures["paid_orders"]["year_ago"] == orders > 0
    promoters, detractors, answers = november_db.execute(
        "SELECT sum(nps >= 9), sum(nps <= 6), count(*) FROM feedback WHERE nps IS NOT NULL "
        "AND submitted_at >= '2025-11-01' AND submitted_at < '2025-12-01'").fetchone()
    assert november_figures["nps"]["year_ago"] == pytest.approx(100 * (promoters - detractors) / answers, abs=0.05)
    # and the index shows it in the same-month-last-year column
    page = BeautifulSoup(index_html(NOVEMBER, [_run("06", [november_figures["revenue"]])]), "html.parser")
    assert f"{revenue:,.0f} EUR" in _rows(page)["Revenue"][3].get_text()


def test_november_about_double_last_november_is_coloured_though_within_noise_on_october(november_figures):
    revenue = november_figures["revenue"]
    assert revenue["value"] > 1.5 * revenue["year_ago"]  # the demo's growth and season: about double
    assert headlines.compare(revenue, against="month").verdict == "noise"  # +26.8 % on October: could be chance
    assert headlines.compare(revenue).basis == "year" and headlines.compare(revenue).verdict == "good"
    page = BeautifulSoup(index_html(NOVEMBER, [_run("06", [revenue])]), "html.parser")
    _, _, october, last_november = _rows(page)["Revenue"]
    assert {"change", "good"} <= set(last_november["class"]) and "beyond noise" in last_november.get_text()
    assert "change" not in october["class"] and "noise" not in october.get_text()  # shown for reference, not judged
    (sentence, _), *_ = needs_attention([_run("06", [revenue])])
    assert f"{revenue['year_ago']:,.0f} EUR in the same month last year to {revenue['value']:,.0f} EUR" in sentence


def test_without_a_year_of_history_the_previous_month_is_the_comparison(november_db):
    (revenue, *_) = sales.headline_figures(november_db, period=parse_month("2025-11"))  # data start 2024-12-01
    assert revenue.year_ago is None and revenue.basis == "month"
    assert headlines.compare(revenue.payload()).basis == "month"
    (held, *_) = sales.headline_figures(november_db, period=parse_month("2025-12"))  # December 2024 is held whole
    assert held.year_ago is not None and held.basis == "year"


def test_counted_facts_carry_no_range_and_estimates_keep_theirs(november_figures):
    page = BeautifulSoup(index_html(NOVEMBER, [_run("06", list(november_figures.values()))]), "html.parser")
    rows = _rows(page)
    facts = [p["label"] for p in november_figures.values() if p["exact"]]
    assert {"Revenue", "Paid orders", "Active customers", "New customers", "Customers at risk"} <= set(facts)
    for label in facts:
        assert "range" not in rows[label][1].get_text(), label
    assert rows["Paid orders"][1].get_text().strip() == f"{november_figures['paid_orders']['value']:,.0f}"  # the fact alone
    assert "95 % range" in rows["CSAT, share answering 4–5"][1].get_text()  # an estimate from a sample
    assert "95 % range" in rows["NPS"][1].get_text()


def test_no_range_goes_below_zero_for_a_quantity_that_cannot():
    # a store with one month of data: revenue 2,719 EUR ± 1.96 · 1,730 would reach −672 EUR
    estimate = headlines.Headline("expected_revenue", 2719.0, "Expected revenue", unit="EUR", se=1730.0,
                                  interval=(-672.0, 6110.0), lowest=0.0)
    assert estimate.interval == (0.0, 6110.0)
    share = headlines.Headline("share", 2.0, "Share", unit="%", interval=(-3.0, 104.0))
    assert share.interval == (0.0, 100.0)  # a share in % stays within 0…100 without being told
    nps = headlines.Headline("nps", -90.0, "NPS", interval=(-120.0, -60.0), lowest=-100.0, highest=100.0)
    assert nps.interval == (-100.0, -60.0)  # a scale that can be negative keeps its negative range
    recorded = {"key": "clv", "label": "Customer value", "value": 500.0, "unit": "EUR", "se": 400.0, "lowest": 0.0}
    page = BeautifulSoup(index_html(NOVEMBER, [_run("04", [estimate.payload(), share.payload(), recorded])]),
                         "html.parser")
    ranges = {label: cells[1].get_text() for label, cells in _rows(page).items()}
    assert ranges["Expected revenue"].endswith("95 % range 0 to 6,110 EUR")
    assert ranges["Customer value"].endswith("95 % range 0 to 1,284 EUR")  # value ± 1.96 se, clipped too
    assert ranges["Share"].endswith("0.0 to 100.0 %") and not any("-" in text for text in ranges.values())


def test_a_figure_without_a_noise_estimate_is_never_called_within_noise(november_figures):
    at_risk = dict(november_figures["at_risk_customers"], previous=52)
    assert at_risk["year_ago"] is not None and at_risk["se"] is None
    page = BeautifulSoup(index_html(NOVEMBER, [_run("02", [at_risk])]), "html.parser")
    row = " ".join(td.get_text(" ") for td in _rows(page)["Customers at risk"])
    assert "within noise" not in row and "no noise estimate" in row
    (sentence, _), = needs_attention([_run("02", [at_risk])])
    assert "Customers at risk has none" in sentence and "moved within its usual noise" not in sentence
