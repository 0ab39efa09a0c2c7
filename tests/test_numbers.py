"""One number style for pages, index, PDFs, axes and CSVs (issue 29, item 3): report/numbers.py."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
from bs4 import BeautifulSoup

from crm_helpers.report import numbers, tables


def test_money_has_no_decimals_from_a_thousand_up_and_always_its_currency():
    assert numbers.money(21883.0, "EUR") == "21,883 EUR"
    assert numbers.money(954.221, "EUR") == "954.22 EUR"
    assert numbers.money(2899.4, "EUR", signed=True) == "+2,899 EUR"
    assert numbers.money(None, "EUR") == numbers.MISSING


def test_counts_are_whole_rates_have_one_decimal_months_are_year_and_month():
    assert numbers.count(1276.0) == "1,276"
    assert numbers.percent(85.38) == "85.4 %" and numbers.percent(85.38, sign=False) == "85.4"
    assert numbers.fraction_as_percent(0.4388) == "43.9 %"
    assert numbers.month(dt.date(2026, 11, 1)) == numbers.month(pd.Timestamp("2026-11-01")) == "2026-11"
    assert numbers.month(pd.Period("2026-11", "M")) == "2026-11"


def test_a_range_is_written_one_way_with_its_unit_once():
    assert numbers.span("1,000", "2,000", unit="EUR") == "1,000 to 2,000 EUR"
    assert numbers.span("21.2", "53.8") == "21.2 to 53.8"


def test_axis_ticks_carry_thousands_separators():
    assert [numbers.axis_tick(v) for v in (10000.0, 12000.0, 0.5, 2.25, 3.0)] == ["10,000", "12,000", "0.5", "2.25", "3"]


def test_a_plot_axis_reads_12000_with_its_separator_never_run_together():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crm_helpers.report import plots

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.barh(["a", "b"], [10000, 12500])
    plots.readable_axes(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    plt.close(fig)
    assert "10,000" in labels and all("," in label for label in labels if len(label) > 3), labels
    assert len(labels) <= 7


def test_page_tables_show_rates_in_percent_and_months_as_year_and_month():
    frame = pd.DataFrame({"month": pd.to_datetime(["2026-11-01", "2026-12-01"]), "share_pct": [85.381, 14.619],
                          "win_rate": [0.4388, 0.1], "lift": [7.77, 1.5], "revenue": [21883.4, 954.22]})
    soup = BeautifulSoup(tables.for_people(frame), "html.parser")
    assert [th.get_text() for th in soup.select("th")] == ["month", "share (%)", "win rate", "lift", "revenue"]
    assert [td.get_text() for td in soup.select("tbody tr")[0].select("td")] == \
        ["2026-11", "85.4", "43.9 %", "7.77", "21,883"]


def test_an_empty_table_is_a_sentence_not_headers_only():
    html = tables.for_people(pd.DataFrame(columns=["ticket_id", "age_days"]))
    assert "<table" not in html and tables.NOTHING in html


def test_a_long_sentence_in_a_table_gets_room_and_the_table_scrolls_in_its_own_box():
    soup = BeautifulSoup(tables.for_people(pd.DataFrame({"note": ["x " * 50], "n": [1]})), "html.parser")
    assert soup.select_one("div.table-box > table.for-people") is not None
    assert "long" in soup.select_one("td").get("class", [])


def test_amount_columns_get_their_currency_in_the_heading():
    frame = tables.with_unit(pd.DataFrame({"lever": ["x"], "effect": [2899.0], "low": [954.2]}), ["effect", "low"],
                             unit="EUR")
    assert list(frame.columns) == ["lever", "effect (EUR)", "low (EUR)"]


def test_csv_values_are_plain_and_rounded():
    frame = pd.DataFrame({"responses": [80.0, 75.0], "score": [6.872500399936011, 1.0],
                          "when": pd.to_datetime(["2026-11-01", "2026-11-02"]), "name": ["a", None]})
    out = numbers.for_csv(frame)
    assert out["responses"].tolist() == [80, 75] and str(out["responses"].dtype) == "Int64"
    assert out["score"].tolist() == [6.87, 1.0]
    assert out["when"].tolist() == [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
    assert out.to_csv(index=False).splitlines()[1] == "80,6.87,2026-11-01,a"
    assert np.isnan(numbers.for_csv(pd.DataFrame({"x": [np.nan, 1.5]}))["x"][0])


def test_a_range_of_money_is_written_the_same_one_way_by_the_analyses():
    from crm_helpers.store.values import money_span

    assert money_span(8523.4, 14531.0, currency="EUR") == "8,523 to 14,531 EUR"
    assert money_span(-4108.0, 4901.0, currency="EUR") == "-4,108 to 4,901 EUR", "a dash would read as a minus here"
    assert money_span(5.0, 1200.0, currency="EUR", signed=True) == "+5 to +1,200 EUR"


RANGE_WITH_A_DASH = re.compile(r"\}–\{|:[^}]*f\}–")
"""An f-string that writes a range with a dash between two values ("{low:,.0f}–{high:,.0f}")."""


def test_no_sentence_writes_a_range_with_a_dash_between_two_values():
    root = Path(numbers.__file__).parents[1]
    dashed = [str(path.relative_to(root)) for path in sorted(root.rglob("*.py"))
              if RANGE_WITH_A_DASH.search(path.read_text(encoding="utf-8"))]
    assert not dashed, f"write ranges with store.values.span / money_span: {dashed}"


def test_every_csv_of_a_frame_holds_plain_rounded_values(tmp_path):
    from crm_helpers.analyses.followup import write_follow_up

    queue = pd.DataFrame({"customer_id": ["C1", "C2"], "money_at_stake": [3131.0, 80.0],
                          "churn_probability": [0.78412, 0.02], "value_score": [40.43333333, 91.4]})
    written = write_follow_up(queue, tmp_path)
    lines = written.read_text(encoding="utf-8-sig").splitlines()
    assert lines[1:] == ["C1,3131,0.784,40.43", "C2,80,0.02,91.4"]
