"""The purchase rhythm: usual intervals, expected dates, and the regular buyers late for their reorder
(issue 27, item 4); on hand-made frames and on the demo's planted steady buyers."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from crm_helpers.analyses import rhythm
from crm_helpers.store.periods import parse_month
from support import DEMO_END

AS_OF = parse_month(DEMO_END).end


def _purchases(customer_id: str, days: list[str], revenue: float | list[float] = 30.0) -> pd.DataFrame:
    values = revenue if isinstance(revenue, list) else [revenue] * len(days)
    return pd.DataFrame({"customer_id": customer_id, "order_date": days, "revenue": values})


def test_a_hand_made_customer_gets_the_exact_median_interval_expected_date_and_lateness():
    # gaps 40, 40, 42, 38 days; two orders on 2026-06-10 are one purchase day (revenue added)
    frame = _purchases("A", ["2026-01-01", "2026-02-10", "2026-03-22", "2026-05-03", "2026-06-10", "2026-06-10"],
                       [30.0, 34.0, 20.0, 31.0, 10.0, 22.0])
    row = rhythm.rhythm_of(frame, dt.date(2026, 8, 15)).iloc[0]
    assert row["purchases"] == 5
    assert row["interval_days"] == 40
    assert row["expected_date"] == dt.date(2026, 7, 20)
    assert row["days_late"] == 26
    assert row["spread_days"] == pytest.approx(rhythm.MAD_TO_SD * 1)  # deviations 0, 0, 2, 2: median 1
    assert row["tolerance_days"] == rhythm.MIN_TOLERANCE_DAYS  # 2 × 1.48 days is less than a week
    assert row["regular"] and row["late"]
    assert row["order_value"] == 31.0  # median of 30, 34, 20, 31, 32
    assert row["value_per_year"] == pytest.approx(31.0 * 365 / 40)
    # on the expected date plus the tolerance the customer is not late yet; a day later they are
    on_edge = rhythm.rhythm_of(frame, dt.date(2026, 7, 27)).iloc[0]
    assert on_edge["days_late"] == 7 and not on_edge["late"]
    assert rhythm.rhythm_of(frame, dt.date(2026, 7, 28)).iloc[0]["late"]


def test_an_irregular_buyer_with_many_orders_is_not_called_regular_nor_late():
    gaps = [2, 90, 5, 150, 3, 40, 200, 7, 1, 120, 10]  # days: bursts and long pauses, like a Poisson buyer
    days = pd.Timestamp("2025-01-01") + pd.to_timedelta(pd.Series([0, *gaps]).cumsum(), unit="D")
    frame = _purchases("B", days.dt.strftime("%Y-%m-%d").tolist())
    row = rhythm.rhythm_of(frame, dt.date(2030, 1, 1)).iloc[0]
    assert row["purchases"] == 12
    assert row["cv"] > 1 and not row["regular"] and not row["late"]


def test_too_few_purchases_give_no_rhythm():
    frame = _purchases("C", ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"])
    assert rhythm.rhythm_of(frame, dt.date(2026, 12, 31)).empty
    assert list(rhythm.rhythm_of(frame, dt.date(2026, 12, 31)).columns) == rhythm.COLUMNS
    result = rhythm.PurchaseRhythm(dt.date(2026, 12, 31), rhythm.rhythm_of(frame, dt.date(2026, 12, 31)), "EUR")
    assert not result.ok and "5 or more days with a paid order" in result.message


def _planted(demo_business) -> tuple[set[str], set[str]]:
    truth = demo_business.truth
    steady = truth[truth["usual_interval_days"].notna()]
    return set(steady["customer_id"]), set(steady.loc[steady["late_for_reorder"] == 1, "customer_id"])


def _precision_recall(found: set[str], planted: set[str]) -> tuple[float, float]:
    hits = len(found & planted)
    return hits / max(len(found), 1), hits / len(planted)


def test_demo_plants_steady_buyers_some_of_them_late(demo_business):
    steady, late = _planted(demo_business)
    assert len(steady) == 40 and len(late) == 16
    orders = demo_business.tables["orders"]
    last = pd.to_datetime(orders[orders["customer_id"].isin(steady)].groupby("customer_id")["order_date"].max())
    truth = demo_business.truth.set_index("customer_id")
    days = (pd.Timestamp(demo_business.end) - last) / pd.Timedelta(days=1)
    gone = days / truth.loc[last.index, "usual_interval_days"]  # usual intervals since the last order
    assert (gone[list(late)] >= 1.6).all() and (gone[list(steady - late)] < 1.6).all()


def test_demo_planted_regular_buyers_are_recovered(demo_db, demo_business):
    result = rhythm.purchase_rhythm(demo_db, AS_OF)
    assert result.ok and result.currency == "EUR"
    steady, _ = _planted(demo_business)
    precision, recall = _precision_recall(set(result.regulars["customer_id"]), steady)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)  # measured 0.93 and 1.0
    # their usual interval is the planted one, within a few days
    found = result.customers.set_index("customer_id").loc[sorted(steady)]
    planted = demo_business.truth.set_index("customer_id").loc[sorted(steady), "usual_interval_days"]
    assert (found["interval_days"] - planted).abs().median() < 4


def test_demo_planted_late_buyers_are_listed_by_money_at_stake(demo_db, demo_business):
    late = rhythm.late_regulars(demo_db, as_of=AS_OF)
    _, planted = _planted(demo_business)
    precision, recall = _precision_recall(set(late["customer_id"]), planted)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)  # measured 0.94 and 1.0
    assert late["order_value"].is_monotonic_decreasing and late["name"].notna().all()
    assert (late["days_late"] > late["tolerance_days"]).all()


def test_demo_headlines_and_attention_agree_with_the_late_list(demo_db):
    period = parse_month(DEMO_END)
    late = rhythm.late_regulars(demo_db, as_of=AS_OF)
    figures = {h.key: h for h in rhythm.headline_figures(demo_db, period=period)}
    assert figures["late_regulars"].value == len(late)
    assert figures["late_regulars"].note.startswith(f"of {len(rhythm.purchase_rhythm(demo_db, AS_OF).regulars)} customers")
    assert figures["late_regulars"].exact and figures.keys() == {"late_regulars"}
    assert figures["late_regulars"].previous == len(rhythm.late_regulars(demo_db, as_of=period.previous_month().end))
    (item,) = rhythm.attention_items(demo_db, period=period)
    assert item.money == pytest.approx(late["order_value"].sum())
    assert f"{len(late)} regular buyers are late" in item.sentence and late.iloc[0]["name"] in item.sentence


def test_the_late_regulars_are_one_action_that_replaces_their_attention_item(demo_db):
    period = parse_month(DEMO_END)
    late = rhythm.late_regulars(demo_db, as_of=AS_OF)
    (action,) = rhythm.actions(demo_db, period=period)
    (item,) = rhythm.attention_items(demo_db, period=period)
    assert action.money == pytest.approx(late["order_value"].sum()) and action.currency == "EUR"
    assert action.replaces == item.key
    assert f"the {len(late)} regular buyers who are later" in action.sentence
    assert all(name in action.sentence for name in late["name"].head(3))
    assert action.link == "02_segmentation.html#Late-for-their-usual-reorder"

def test_the_page_sentence_and_table_name_the_late_regulars_with_units(demo_db):
    from crm_helpers.report import sentences

    result = rhythm.purchase_rhythm(demo_db, AS_OF)
    report = sentences.rhythm_report(result)
    late = result.late
    assert report.ok and report.message.startswith(f"**{len(late)} of your {len(result.regulars)} regular buyers")
    assert f"{late['order_value'].sum():,.0f} EUR" in report.message
    assert list(report.table.columns) == ["customer", "customer id", "usual interval (days)", "last order",
                                          "expected order", "days late", "usual order (EUR)"]
    assert list(report.table.index) == list(range(len(late)))
    assert report.table["customer"].tolist() == late["name"].tolist()
    empty = rhythm.PurchaseRhythm(AS_OF, rhythm.rhythm_of(_purchases("C", ["2026-01-01"]), AS_OF), "EUR")
    assert not sentences.rhythm_report(empty).ok and sentences.rhythm_report(empty).message == empty.message


def test_the_rhythm_plot_without_customers_says_why():
    import matplotlib

    matplotlib.use("Agg")
    from crm_helpers.report import plots

    empty = rhythm.PurchaseRhythm(AS_OF, rhythm.rhythm_of(_purchases("C", ["2026-01-01"]), AS_OF), "EUR")
    ax = plots.plot_purchase_rhythm(empty)
    assert "enough orders" in ax.texts[0].get_text()
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def test_an_empty_store_has_no_rhythm_and_raises_nothing():
    from crm_helpers.store.connection import memory_db

    db = memory_db()
    period = parse_month(DEMO_END)
    result = rhythm.purchase_rhythm(db, AS_OF)
    assert not result.ok and result.late.empty and list(result.late.columns) == rhythm.COLUMNS
    assert {h.key: h.value for h in rhythm.headline_figures(db, period=period)} == {
        "late_regulars": 0}
    assert rhythm.attention_items(db, period=period) == []
