"""This month's actions (issue 27): every analysis offers its candidates as :class:`Action` values through
``actions(db, *, period)``, and the index opens with the biggest ones, each with its money, range and
link, counting the ones left out, and never says that nothing needs the owner while one exists."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from crm_helpers.analyses import clv, lead_scoring, quality, romi, satisfaction, segmentation, service
from crm_helpers.report import headlines
from crm_helpers.report.index import ACTIONS_MAX, index_html, needs_attention
from crm_helpers.report.pages import NotebookRun
from crm_helpers.store.connection import memory_db
from crm_helpers.store.periods import Period, parse_month
from crm_helpers.store.values import Action, named_list

from support import DEMO_END

NOTHING_NEEDS_YOU = ("nothing needs you", "nothing else needs you")


def test_an_action_never_has_money_or_a_range_below_zero_and_links_to_its_section():
    action = Action("k", "Do it.", 100.0, currency="EUR", low=-40.0, high=300.0, page="04_clv_romi",
                    section="Customers probably lost")
    assert (action.money, action.low, action.high) == (100.0, 0.0, 300.0)
    assert action.link == "04_clv_romi.html#Customers-probably-lost"
    assert action.rank_money == 100.0 and action.payload()["link"] == action.link
    assert Action("k", "Do it.", -5.0).money == 0.0


def test_an_action_without_money_must_say_how_it_is_ranked():
    with pytest.raises(ValueError, match="rule"):
        Action("k", "Do it.", None)
    ranked = Action("k", "Do it.", None, rule="ranked at one month's revenue", rank_money=2500.0)
    assert ranked.money is None and ranked.rank_money == 2500.0


def test_names_read_as_one_phrase():
    assert named_list(["A"]) == "A"
    assert named_list(["A", "B", "C"]) == "A, B and C"
    assert named_list(["A", "B"], more=38) == "A, B and 38 more"


@pytest.fixture(scope="module")
def module_db(demo_db_path: Path):
    """One connection to the demo store for the module, so memoized analyses are computed once."""
    from crm_helpers.store.connection import open_db

    return open_db(demo_db_path)


@pytest.fixture(scope="module")
def demo_actions(module_db) -> dict[str, Action]:
    """Every analysis' actions for the demo's month, by key (the settings the notebooks pass)."""
    db = module_db
    period = parse_month(DEMO_END)
    found = [*quality.actions(db, period=period), *segmentation.actions(db, period=period),
             *lead_scoring.actions(db, period=period), *clv.actions(db, period=period, horizon_months=36),
             *romi.actions(db, period=period), *satisfaction.actions(db, period=period),
             *service.actions(db, period=period)]
    return {action.key: action for action in found}


def test_the_demo_month_has_at_least_five_actions_each_with_money_and_a_link(demo_actions):
    assert len(demo_actions) >= 5
    for action in demo_actions.values():
        assert action.money is not None and action.money > 0, action
        assert action.currency == "EUR" and action.sentence.endswith(".")
        assert action.link.split("#")[0] in {"01_import_and_entry.html", "02_segmentation.html", "03_scoring.html",
                                               "04_clv_romi.html", "05_satisfaction_review.html"}
        assert "#" in action.link, action
    ranged = [a for a in demo_actions.values() if a.low is not None]
    assert len(ranged) >= 3  # win back, repeat the newsletter, the service delay
    assert all(0 <= a.low <= a.money <= a.high for a in ranged)


def test_the_newsletter_is_repeated_and_paid_social_stopped(demo_actions):
    repeat = [a for a in demo_actions.values() if a.key.startswith("repeat campaign")]
    stop = [a for a in demo_actions.values() if a.key.startswith("stop campaign")]
    assert any("Spring newsletter" in a.sentence for a in repeat)
    newsletter = next(a for a in repeat if "Spring newsletter" in a.sentence)
    assert newsletter.low > 0 and "120 EUR" in newsletter.sentence
    social = next(a for a in stop if "Paid social ads" in a.sentence)
    assert social.money == 1500.0 and social.low is None  # its cost: a fact, no range
    assert "no measurable extra revenue" in social.sentence


def test_the_overdue_deals_show_the_models_chance_beside_yours(demo_actions):
    deals = demo_actions["overdue deals"]
    assert "your stage estimates give them a" in deals.sentence and "the model" in deals.sentence
    assert deals.sentence.count(" % ") >= 2  # both chances, in per cent


def test_winning_back_names_the_biggest_lapsed_spenders(demo_actions, module_db):
    analysis = clv.analyse_customers(module_db, parse_month(DEMO_END).end, horizon_months=36)
    biggest = analysis.probably_lost(3)["name"].tolist()
    sentence = demo_actions["win back probably lost"].sentence
    assert biggest and all(name in sentence for name in biggest)


def test_the_slow_tickets_action_compares_a_day_with_slower(demo_actions):
    delay = demo_actions["service delay"]
    assert "within a day" in delay.sentence and "2–7 days" in delay.sentence


def _three_currency_store():
    """A store filled as from exports: two thirds of the money in EUR, a third in USD and GBP, no rates."""
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": f"K{i}", "name": f"Kunde {i}"} for i in range(30)])
    orders, start = [], dt.date(2026, 1, 1)
    for i in range(90):
        currency = ("EUR", "EUR", "USD" if i % 2 else "GBP")[i % 3]
        orders.append({"order_id": f"O{i}", "customer_id": f"K{i % 30}", "currency": currency, "status": "paid",
                       "order_date": (start + dt.timedelta(days=3 * i)).isoformat(), "amount": 100.0})
    db.table("orders").insert_all(orders)
    return db


def test_a_store_with_a_third_of_its_money_unconverted_lists_the_rates_as_an_action():
    db = _three_currency_store()
    period = Period(dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    found = {a.key: a for a in quality.actions(db, period=period)}
    gap = found["exchange rates missing"]
    assert "30 paid orders" in gap.sentence and "USD" in gap.sentence and "GBP" in gap.sentence
    assert gap.money == pytest.approx(30 * 100.0)  # the left-out orders at the counted orders' average
    assert found["too little history"].money is None and found["too little history"].rule


def _run(name: str, actions: list[Action], flags: list[dict] | None = None) -> NotebookRun:
    rows = [a.payload() for a in actions]
    return NotebookRun(name, Path(f"{name}.ipynb"), Path(f"{name}.html"), True, 1.0, flags=flags or [],
                       tables={headlines.ACTIONS_TABLE: {"key": headlines.ACTIONS_TABLE, "rows": rows}})


def test_the_index_opens_with_the_actions_ranked_by_money_and_counts_the_rest():
    from bs4 import BeautifulSoup

    small = [Action(f"gap {i}", f"Import export {i}.", 10.0 + i, currency="EUR", page="01_import_and_entry",
                    section="Gaps in the data") for i in range(4)]
    big = [Action("win back", "Win back Wei Berg.", 24_000.0, currency="EUR", low=20_000.0, high=26_000.0,
                  page="04_clv_romi", section="Customers probably lost"),
           Action("repeat", "Repeat the newsletter.", 12_600.0, currency="EUR", low=9_500.0, high=15_600.0,
                  page="04_clv_romi", section="Campaigns ranked by what they really brought")]
    more = [Action(f"call {i}", f"Call person {i}.", 1_000.0 * (i + 1), currency="EUR",
                   page="05_satisfaction_review", section="Whom to call") for i in range(ACTIONS_MAX - 2)]
    runs = [_run("01_import_and_entry", small), _run("04_clv_romi", big), _run("05_satisfaction_review", more)]
    soup = BeautifulSoup(index_html(parse_month("2026-11"), runs), "html.parser")
    assert soup.find("h2").get_text() == "Actions this month"
    items = soup.select("#actions li")
    assert len(items) == ACTIONS_MAX
    assert items[0].get_text().startswith("Win back Wei Berg.") and "24,000 EUR at stake, likely 20,000 to 26,000 EUR" \
        in items[0].get_text()
    assert items[0].select_one("a")["href"] == "04_clv_romi.html#Customers-probably-lost"
    assert soup.select_one("#actions .more").get_text() == "… and 4 smaller items: 4 on page 01."
    assert not any(words in soup.get_text().lower() for words in NOTHING_NEEDS_YOU)


def test_needs_attention_never_says_nothing_needs_you_while_an_action_exists():
    with_action = needs_attention([_run("04_clv_romi", [Action("k", "Do it.", 5.0)])])
    assert not any(words in sentence.lower() for sentence, _ in with_action for words in NOTHING_NEEDS_YOU)
    assert "actions above" in with_action[-1][0]
    without = needs_attention([_run("04_clv_romi", [])])
    assert "actions above" not in without[-1][0]


def test_an_attention_item_an_action_supersedes_is_said_once():
    overdue = {"key": "pipeline overdue", "sentence": "Deals worth 32,897 EUR (weighted) are overdue.", "money": 1.0}
    other = {"key": "campaign C04", "sentence": "Referral rewards cannot be measured.", "money": 1.0}
    action = Action("overdue deals", "Update the overdue deals.", 13_000.0, replaces="pipeline overdue")
    sentences = [s for s, _ in needs_attention([_run("03_scoring", [action], flags=[overdue, other])])]
    assert "Referral rewards cannot be measured." in sentences and overdue["sentence"] not in sentences


def test_the_overdue_deals_action_supersedes_the_sales_flag(demo_actions, module_db):
    from crm_helpers.analyses import sales

    flags = {item.key for item in sales.attention_items(module_db, period=parse_month(DEMO_END))}
    assert demo_actions["overdue deals"].replaces in flags


def test_the_win_back_action_carries_the_planners_numbers_and_links_to_page_07(module_db, demo_actions):
    from bs4 import BeautifulSoup

    from crm_helpers.analyses import plan

    period = parse_month(DEMO_END)
    win_back = demo_actions["win back probably lost"]
    (filled,) = plan.with_what_if(module_db, [win_back], period=period)
    expected = plan.plan_effect(module_db, as_of=period.end, since=period.start, win_back=plan.DEFAULT_WIN_BACK)
    assert filled.what_if == expected.sentence and "80 % range" in filled.what_if
    assert filled.what_if_page == plan.PLANNER_PAGE and filled.money == win_back.money
    (other,) = plan.with_what_if(module_db, [Action("k", "Do it.", 5.0)], period=period)
    assert other.what_if == ""  # only the levers the planner's page values get numbers
    soup = BeautifulSoup(index_html(period, [_run("04_clv_romi", [filled])]), "html.parser")
    link = soup.select_one('#actions a[href="07_plan.html"]')
    assert link is not None and expected.sentence in link.parent.get_text()
