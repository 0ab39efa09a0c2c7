"""The desk in Simplified Chinese (``CRM_LANG=zh``): every text it shows the owner comes from the
catalogue, and English stays the default. Fast: widgets are built in memory, no browser."""

from __future__ import annotations

import datetime as dt
import os
import re

import ipywidgets as widgets
import pytest
from i18n_support import english_sentences

from crm_helpers import i18n
from crm_helpers.desk import Desk, customer_timeline, day_from_words
from crm_helpers.desk_server import new_key
from crm_helpers.ingest import entry
from crm_helpers.store.connection import memory_db

STORE_WORDS = {"Anna", "Li", "Wei", "Zhang", "Tea", "House", "Sencha", "Gaiwan", "Wholesale", "Samples"}
"""The store's own words (people, a company, products, a deal's title): data, not the desk's sentences."""


@pytest.fixture
def chinese():
    """The language set to Chinese for one test, English again after it."""
    i18n.set_language("zh")
    yield
    i18n.set_language("en")


def shop():
    """A small store with something for every part of the desk: a task overdue, an open ticket, a
    quiet deal, a first-purchase anniversary in the coming days, an interaction and feedback."""
    db = memory_db()
    db.table("products").insert_all([{"product_id": "P1", "name": "Sencha 100g", "unit_price": 9.5},
                                     {"product_id": "P2", "name": "Gaiwan", "unit_price": 20.0}])
    entry.add_customer(db, "C1", name="Anna Li", email="anna@example.com")
    entry.add_customer(db, "C2", name="Wei Zhang", email="wei@example.com", company="Tea House")
    entry.record_order(db, "C1", items=[("P1", 2, None)], order_date="2025-03-17")
    entry.log_interaction(db, "C1", channel="call", occurred_at="2026-02-01 10:00:00")
    entry.add_feedback(db, "C1", submitted_at="2026-02-02 10:00:00", nps=9, csat=4)
    entry.add_task(db, "2026-03-10", customer_id="C1")
    entry.open_ticket(db, "C2", category="complaint", priority="low", opened_at="2026-03-01 10:00:00")
    entry.add_opportunity(db, "C2", title="Wholesale", amount=500, opened_at="2026-01-02",
                          expected_close="2026-02-01")
    return db


def shown(widget: widgets.Widget) -> list[str]:
    """Every text the page shows of ``widget`` and its children: labels (descriptions), hints
    (placeholders), HTML and text values, the options' labels and the tabs' titles."""
    names = ("description", "placeholder") if hasattr(widget, "options") else ("description", "placeholder", "value")
    parts = [getattr(widget, name) for name in names if isinstance(getattr(widget, name, None), str)]
    parts += [o[0] if isinstance(o, tuple) else str(o) for o in getattr(widget, "options", ()) or ()]  # a list's value is its stored code
    parts += [str(title) for title in getattr(widget, "titles", ()) or ()]
    for child in getattr(widget, "children", ()) or ():
        parts += shown(child)
    return parts


def every_text(desk: Desk) -> str:
    """The desk's texts as the owner goes through it: Today, a chosen customer with their timeline,
    the editor open on an entry, the delete question, a refused save and a saved one."""
    panel = desk.entry_panel()
    tabs = next(w for w in panel.children if isinstance(w, widgets.Tab))
    for page in range(len(tabs.children)):  # each tab opened once: its form is built then
        tabs.selected_index = page
    texts = shown(desk.today_panel()) + shown(panel)
    desk.select("C1")
    texts += shown(desk.entry_panel())
    items = {item.table: item for item in customer_timeline(desk.db, "C1")}
    desk.editor.open(items["orders"])
    texts += shown(desk.editor.panel)
    desk.editor.open(items["feedback"], delete=True)
    texts += shown(desk.editor.panel)
    desk.editor.close()
    desk.feedback.save.click()  # nothing given: refused
    texts += shown(desk.feedback.widget())
    desk.interaction.fields["subject"].value = "Samples"  # the owner's own words
    desk.interaction.save.click()
    texts += shown(desk.interaction.widget())
    desk.today_list.done(desk.today_list.lines[0])  # the message says what was written, field by field
    texts += shown(desk.today_panel())
    return re.sub(r"<[^>]+>", "\n", "\n".join(texts))  # each piece of an HTML text on its own line


def test_the_desk_in_chinese_shows_no_english_sentence(chinese):
    desk = Desk(shop(), today="2026-03-15")
    text = every_text(desk)
    assert "今天" in text and "已保存" in text and "撤销这条记录" in text and "推荐意愿 9/10 满意度 4/5" in text
    assert "€19.00，已付款：2 × Sencha 100g" in text and "Sencha 100g — €9.50" in text  # the sign first, as the pack
    assert english_sentences(text, allowed=STORE_WORDS, min_words=2) == []


def test_english_stays_the_default():
    assert i18n.language() == "en"
    desk = Desk(shop(), today="2026-03-15")
    text = every_text(desk)
    assert "Today (" in text and "Undo this entry" in text and "Add something new" in text
    assert "would recommend 9 of 10 satisfied 4 of 5" in text and "19.00 EUR, paid: 2 × Sencha 100g" in text
    assert not re.search(r"[\u4e00-\u9fff]", text)


@pytest.mark.parametrize("typed, day", [("明天", "2026-03-16"), ("后天", "2026-03-17"), ("周二", "2026-03-17"),
                                        ("下周二", "2026-03-17"), ("星期日", "2026-03-22"), ("3天后", "2026-03-18"),
                                        ("2周后", "2026-03-29"), ("tomorrow", "2026-03-16")])
def test_snooze_and_due_days_can_be_said_in_chinese(typed, day):
    # 2026-03-15 is a Sunday: the next Tuesday is the 17th, the next Sunday the 22nd
    assert day_from_words(typed, today=dt.date(2026, 3, 15)) == day


def test_a_snooze_in_chinese_moves_the_task_to_that_day(chinese):
    db = shop()
    desk = Desk(db)  # today: the entry functions refuse a snooze to a day not after the real today
    desk.today_panel()
    assert desk.today_list.snooze_to.value == "明天"
    line = next(line for line in desk.today_list.lines if line.customer_id == "C1")
    desk.today_list.snooze_to.value = "周二"
    desk.today_list.snooze(line)
    assert "已推迟" in desk.today_list.message.value
    assert db.execute("SELECT due FROM tasks WHERE customer_id = 'C1'").fetchone()[0] == day_from_words("tuesday", today=dt.date.today())


def test_the_desk_page_says_its_language(monkeypatch):
    from crm_helpers.desk_server import server_config

    assert server_config(new_key()).VoilaExporter.language_code == "en"
    monkeypatch.setenv("CRM_LANG", "zh")
    assert server_config(new_key()).VoilaExporter.language_code == "zh"  # <html lang="zh">


def test_desk_server_lang_option_sets_the_language_for_its_kernels(monkeypatch):
    from crm_helpers import desk_server

    def stop() -> str:
        raise SystemExit(0)  # before anything is served

    monkeypatch.setenv("CRM_LANG", "en")  # restored after the test: main() sets it for the kernels
    monkeypatch.setattr(desk_server, "new_key", stop)
    with pytest.raises(SystemExit):
        desk_server.main(["--lang", "zh-Hans"])
    assert os.environ["CRM_LANG"] == "zh"
    with pytest.raises(SystemExit) as refused:
        desk_server.main(["--lang", "fr"])  # no catalogue: refused with the languages there are
    assert refused.value.code == 2


def test_the_desk_page_s_title_and_section_sentences_are_translated_as_the_page_is_served(monkeypatch):
    """Voilà's prelaunch hook hands the notebook as read to the pack's translate_markdown: every
    Markdown block of notebook 00 has its entry (a reworded sentence would fall back to English),
    and the cells stay Markdown, the title first; English: the notebook as written."""
    import nbformat

    from crm_helpers.desk_server import NOTEBOOK, server_config, translated_page
    from crm_helpers.store.config import PROJECT_ROOT

    def page() -> nbformat.NotebookNode:
        return nbformat.read(PROJECT_ROOT / "notebooks" / NOTEBOOK, as_version=4)

    assert server_config(new_key()).VoilaConfiguration.prelaunch_hook is translated_page
    monkeypatch.setenv("CRM_LANG", "en")
    assert translated_page(None, page(), cwd="") == page()
    monkeypatch.setenv("CRM_LANG", "zh")
    try:
        served = translated_page(None, page(), cwd="")
    finally:
        i18n.set_language("en")
    markdown = [cell.source for cell in served.cells if cell.cell_type == "markdown"]
    assert len(markdown) == 3 and markdown[0].startswith("# 工作台\n\n先看今天的待办")
    assert served.cells[0].cell_type == "markdown" and "## 记录发生的事" in markdown[2]
    words = re.sub(r"<a id=[^>]*></a>|`make desk`", "", "\n".join(markdown))  # the English anchors stay, for links
    assert english_sentences(words, min_words=2) == []


def test_the_desk_server_prints_its_lines_in_the_desk_s_language(monkeypatch, capsys):
    from crm_helpers import desk_server

    class Started(Exception):
        pass

    class App:
        kernel_manager = type("KM", (), {"fill": None})()

        def initialize(self, argv):
            pass

        def start(self):
            raise Started

    monkeypatch.setenv("CRM_LANG", "en")
    monkeypatch.setattr("jupyter_server.serverapp.ServerApp.instance", lambda config: App())
    monkeypatch.setattr("tornado.ioloop.IOLoop.current", lambda: type("L", (), {"add_callback": lambda self, f: None})())
    monkeypatch.setattr(desk_server, "lan_address", lambda: None)
    for lang, said in (("en", "Anyone with this address can use the desk"), ("zh", "拿到这个地址的人都能使用工作台")):
        with pytest.raises(Started):
            desk_server.main(["--lang", lang, "--no-browser", "--lan"])
        printed = capsys.readouterr().out
        assert said in printed and "token=" in printed
    i18n.set_language("en")
    assert english_sentences(printed, min_words=2) == []


def test_a_refusal_names_the_field_by_its_label_and_says_why_in_chinese(chinese):
    db = shop()
    desk = Desk(db, today="2026-03-15")
    desk.today_panel()
    line = next(line for line in desk.today_list.lines if line.customer_id == "C1")
    desk.today_list.snooze_to.value = "2020-01-01"
    desk.today_list.snooze(line)
    assert "不晚于今天：请推迟到以后的某一天" in desk.today_list.message.value
    from crm_helpers.desk import field_label

    assert field_label("closed_at") == "关闭时间" and field_label("customer_id") == "客户编号"  # "Not saved: {field}: …"
    i18n.set_language("en")
    assert field_label("closed_at") == "Closed" and field_label("customer_id") == "Customer id"
