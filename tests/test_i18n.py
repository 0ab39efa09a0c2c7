"""The pack in Simplified Chinese (``crm report --lang zh``): the message catalogue, the number
formats per language, and the index, brief and glossary with no English sentence left."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from crm_helpers import i18n
from crm_helpers.report import glossary, index, numbers, pdf, runner
from crm_helpers.report.pages import NotebookRun
from crm_helpers.store import config, values
from crm_helpers.store.periods import parse_month
from i18n_support import comment_words, english_sentences, literal_messages, store_words

SRC = Path(i18n.__file__).parent
TRANSLATED_MODULES = ("report/index.py", "report/pdf.py", "report/glossary.py", "report/numbers.py",
                      "store/values.py", "report/runner.py", "report/sentences.py")
"""The modules whose every sentence the Chinese catalogue covers (the index, the brief, the glossary, the
pages' sentences)."""


@pytest.fixture
def chinese():
    """The language set to Chinese for one test, English again after it."""
    i18n.set_language("zh")
    yield
    i18n.set_language("en")


def test_english_is_the_default_and_its_text_is_the_source():
    assert i18n.language() == "en"
    assert i18n.t("{count} on {page}", count=3, page="page 04") == "3 on page 04"
    assert i18n.tn("… and {n} smaller item: {where}.", "… and {n} smaller items: {where}.", n=2, where="x") \
        == "… and 2 smaller items: x."
    assert values.money(21883.4, "EUR") == "21,883 EUR"
    assert values.money(-12, "CNY") == "-12 CNY"
    assert numbers.month(dt.date(2026, 11, 1)) == "2026-11"
    assert numbers.percent(85.44) == "85.4 %"
    assert numbers.span("1,000", "2,000", unit="EUR") == "1,000 to 2,000 EUR"


def test_a_placeholder_may_be_called_message_or_context(chinese):
    """`crm report` printed a traceback for "inbox: {message}": the placeholder collided with t's own argument."""
    assert i18n.t("inbox: {message}", message="2 files") == "收件箱：2 files"
    assert i18n.tc("tickets.priority", "low", message="x", context="y") == "低"
    assert i18n.tn("{n} order", "{n} orders", n=2, singular="x", plural="y").startswith("2")


def test_chinese_numbers_money_months_and_ranges(chinese):
    assert values.money(21883.4, "EUR") == "€21,883"
    assert values.money(954.219, "CNY") == "¥954.22"
    assert values.money(-12, "CNY") == "-¥12"
    assert values.money(1500, "CNY", signed=True) == "+¥1,500"
    assert numbers.month(dt.date(2026, 11, 1)) == "2026年11月"
    assert numbers.period(dt.date(2026, 11, 1), dt.date(2026, 11, 30)) == "2026年11月"
    assert numbers.percent(85.44) == "85.4%"
    assert numbers.span("1,000", "2,000", unit="CNY") == "¥1,000至¥2,000"
    assert values.named_list(["王芳", "李雷"], more=38) == "王芳、李雷和另外38位"
    assert i18n.tn("… and {n} smaller item: {where}.", "… and {n} smaller items: {where}.", n=2, where="x") \
        == "……以及另外 2 项较小的事项：x。"


def test_a_language_is_named_in_short_or_long_form_and_an_unknown_one_is_refused(monkeypatch):
    assert i18n.check_language("zh-Hans") == i18n.check_language("zh_CN") == i18n.check_language("ZH") == "zh"
    with pytest.raises(i18n.LanguageError, match="choose one of en .English., zh"):
        i18n.check_language("fr")
    monkeypatch.setenv("CRM_LANG", "zh")
    assert config.report_language() == "zh"
    monkeypatch.delenv("CRM_LANG")
    assert config.report_language() == "en"


def test_crm_report_refuses_a_language_without_a_catalogue(tmp_path, monkeypatch):
    from crm_helpers.cli import main

    result = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "crm.db"), "--lang", "klingon"])
    assert result.exit_code != 0 and "no language 'klingon'" in result.output and "zh" in result.output
    monkeypatch.setenv("CRM_LANG", "xx")
    result = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "crm.db")])
    assert result.exit_code != 0 and "CRM_LANG" in result.output


def test_the_catalogue_translates_every_sentence_of_the_index_the_brief_and_the_glossary():
    entries = i18n.catalogue("zh")
    messages = set().union(*(literal_messages(SRC / m) for m in TRANSLATED_MODULES))
    messages |= {index.HEADLINES_NOTE, index.NO_NOISE_TITLE, glossary.GLOSSARY_INTRO, values.NOT_AVAILABLE,
                 *[v for v in index.VERDICT_TITLES.values() if v], *index.VERDICT_NOTES.values(),
                 *index.BASIS_WORDS.values()}
    messages |= {text for term in glossary.TERMS for text in (term.term, term.meaning)}
    assert len(messages) > 90
    assert sorted(m for m in messages if m not in entries) == []


def test_every_translation_keeps_the_placeholders_of_its_english():
    import re

    field = re.compile(r"\{(\w+)")
    for english, chinese in i18n.catalogue("zh").items():
        for text in (chinese if isinstance(chinese, tuple) else (chinese,)):
            extra = {"n"} if isinstance(chinese, tuple) else set()  # one form for every count says the count
            assert set(field.findall(text)) - extra == set(field.findall(english)) - extra, english


def test_markdown_cells_are_translated_block_by_block_and_keep_their_english_anchor(chinese, monkeypatch):
    import nbformat

    monkeypatch.setattr(i18n, "catalogue", lambda lang: {"Who to call": "要联系谁", "The list.": "名单。"})
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Who to call\n\nThe list.\n\nA paragraph not in the catalogue."),
        nbformat.v4.new_markdown_cell("## Not in the catalogue")])
    runner.translate_markdown(notebook)
    assert notebook.cells[0].source == ('<a id="Who-to-call"></a>\n\n## 要联系谁\n\n名单。\n\n'
                                        "A paragraph not in the catalogue.")
    assert notebook.cells[1].source == "## Not in the catalogue"


def _figure(key: str, label: str, value: float, unit: str, **extra) -> dict:
    return values.Headline(key, value, label, unit=unit, **extra).payload()


def _runs() -> list[NotebookRun]:
    """One run with the index's parts: figures beyond and within noise, an action, a flag, a call list."""
    figures = {
        "revenue": _figure("revenue", "Revenue", 36210.0, "EUR", previous=30120.0, year_ago=25000.0, exact=True),
        "repeat_rate": _figure("repeat_rate", "Repeat rate", 43.9, "%", previous=41.0, se=1.0, previous_se=1.0),
        "nps": _figure("nps", "NPS", 38.0, "", previous=35.0),
    }
    action = {"sentence": "给王芳打电话。", "money": 1840.0, "low": 900.0, "high": 2500.0, "currency": "EUR",
              "rank_money": 1840.0, "section": "Headline figures", "link": "03_scoring.html#Headline-figures"}
    queue = {"columns": ["name", "email", "money_at_stake", "reasons"], "units": {"money_at_stake": "EUR"},
             "rows": [{"name": "王芳", "email": "wang.fang@example.com", "money_at_stake": 1840.0,
                       "reasons": "很久没有下单; 投诉未解决"}]}
    return [NotebookRun("03_scoring", Path("03_scoring.ipynb"), Path("03_scoring.html"), True, 1.0,
                        headlines=figures, flags=[{"sentence": "三张工单超过 14 天未解决。", "money": 120.0}],
                        tables={index.FOLLOW_UP_TABLE: queue, "actions": {"rows": [action]}})]


NAMES = {"Wang", "Fang", "example"}
"""What may stay in Latin letters on a Chinese page: people's names, e-mail addresses."""


def _no_english(html_text: str) -> list[str]:
    from i18n_support import page_text

    return english_sentences(page_text(html_text), allowed=NAMES, min_words=2)


def test_the_index_brief_and_glossary_in_chinese_hold_no_english_sentence(chinese):
    period = parse_month("2026-11")
    page = index.index_html(period, _runs())
    soup = BeautifulSoup(page, "html.parser")
    assert soup.html["lang"] == "zh-Hans"
    assert soup.title.get_text() == "CRM 报告 2026年11月"
    assert "€36,210" in page and "本月行动" in page and "涉及金额 €1,840，可能在 €900至€2,500 之间" in page
    assert _no_english(page) == []
    brief = pdf.brief_html(period, _runs())
    assert BeautifulSoup(brief, "html.parser").html["lang"] == "zh-Hans" and "同比变化" in brief
    assert _no_english(brief) == []
    words = glossary.glossary_html("CRM 报告 2026年11月 术语表")
    assert _no_english(words) == [] and 'id="customers-at-risk"' in words


def test_the_english_index_is_as_before_without_a_word_of_chinese():
    page = index.index_html(parse_month("2026-11"), _runs())
    assert '<html lang="en">' in page and "Actions this month" in page and "36,210 EUR" in page
    assert "本月" not in page and "主要指标" not in page


def test_a_figure_is_drawn_in_chinese(chinese):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crm_helpers.report import plots

    figure, ax = plt.subplots()
    ax.bar(["Champions", "Wang Fang"], [3, 4], label="history")
    ax.set(title="Customers per segment", xlabel="net revenue (EUR)", ylabel="unknown words")
    ax.legend()
    plots.translate_figure(figure)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("各分群客户数", "净收入 (EUR)", "unknown words")
    assert [label.get_text() for label in ax.get_xticklabels()] == ["冠军客户", "Wang Fang"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["历史"]
    plt.close(figure)


CRM = str(Path(sys.executable).with_name("crm"))
TERMS = ("buy till you die",)
"""English terms a Chinese page quotes on purpose, beside their translation (the model family's own name)."""
needs_printing = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("pdftotext") is None,
                                    reason="headless Chromium prints the PDFs and pdftotext reads them")


@pytest.fixture(scope="module")
def chinese_pack(tmp_path_factory):
    """The whole demo pack (every page, the index, the glossary, brief.pdf and pack.pdf) rendered by
    `crm report --lang zh` on a store of its own (rendering records snapshots in the store), once for
    the tests below; with the words that may stay in Latin letters (the store's names, the customers'
    comments)."""
    root = tmp_path_factory.mktemp("zh-pack")
    db = root / "crm.db"
    subprocess.run([CRM, "demo", "--db", str(db), "--customers", "300", "--months", "18", "--end", "2026-10"],
                   check=True, capture_output=True, text=True)
    proc = subprocess.run([CRM, "report", "--db", str(db), "--month", "2026-10", "--out", "pack", "--lang", "zh"],
                          capture_output=True, text=True, cwd=root)  # a folder relative to where crm runs
    names, comments = store_words(db)
    return root / "pack", proc, names | comment_words(comments) | NAMES


def _left(text: str, allowed: set[str]) -> list[str]:
    for term in TERMS:
        text = text.replace(term, "")
    return english_sentences(text, allowed=allowed)


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
@needs_printing
def test_the_whole_demo_pack_in_chinese_leaves_no_english_sentence(chinese_pack):
    """Every page, the index and the glossary, and what `crm report` printed: no English sentence
    outside names, product names and the customers' own words."""
    from i18n_support import page_text

    pack, proc, allowed = chinese_pack
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("  01_import_and_entry") and "报告：" in proc.stdout and "PDF：" in proc.stdout
    assert english_sentences(proc.stdout, allowed=allowed) == []
    pages = sorted(pack.glob("*.html"))
    assert [p.name for p in pages][-2:] == ["glossary.html", "index.html"] and len(pages) == 9
    left = {}
    for page in pages:
        html_text = page.read_text(encoding="utf-8")
        assert '<html lang="zh-Hans">' in html_text, page.name
        left[page.name] = _left(page_text(html_text), allowed)
    assert {name: lines for name, lines in left.items() if lines} == {}


@pytest.mark.slow
@needs_printing
def test_the_chinese_brief_is_one_a4_page_and_neither_pdf_holds_an_english_sentence(chinese_pack):
    pack, _, allowed = chinese_pack
    info = subprocess.run(["pdfinfo", str(pack / "brief.pdf")], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Pages:\s+1\n", info) and "(A4)" in info, info
    brief, whole = _pdf_text(pack / "brief.pdf"), _pdf_text(pack / "pack.pdf")
    assert "简报 2026年10月" in brief and "本月行动" in brief and "同比变化" in brief
    assert "目录" in whole and re.search(r"第 1 页，共 \d+ 页", whole)
    assert _left(brief, allowed) == [] and _left(whole, allowed) == []


@pytest.mark.slow
@needs_printing
def test_every_chinese_page_has_its_title_and_a_way_back_to_the_index(chinese_pack):
    pack, _, _ = chinese_pack
    for page in sorted(pack.glob("0*.html")):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        heading = soup.find("h1").get_text().rstrip("¶").strip()
        assert re.search(r"[\u4e00-\u9fff]", heading) and soup.title.get_text() == f"{heading} · CRM 报告 2026年10月"
        back = soup.select_one('nav.pack-nav a[href="index.html"]')
        assert back is not None and not english_sentences(back.get_text(), min_words=1), page.name


def test_the_pages_summaries_are_in_the_catalogue_and_come_out_in_chinese(chinese):
    from crm_helpers.report import summaries

    entries = i18n.catalogue("zh")
    sentences = {name: text for name, text in vars(summaries).items()
                 if name.isupper() and isinstance(text, str) and " " in text}  # not MIME_TYPE, TAG
    assert len(sentences) >= 13 and sorted(n for n, text in sentences.items() if text not in entries) == []
    figures = [values.Headline("at_risk_customers", 67, "Customers at risk", previous=60),
               values.Headline("best_campaign_lift", None, "Extra revenue of the best recent campaign",
                               missing="no campaign with a measurable effect")]
    assert summaries.from_figures(figures, keys=["at_risk_customers", "best_campaign_lift"]) == [
        "有流失风险的客户：67，上月为 60。", "近期最佳活动的额外收入：没有效果可测量的活动。"]
    segments = pd.DataFrame({"segment": ["Hibernating", "Champions"], "customers": [261, 100], "share_pct": [72.3, 27.7]})
    assert summaries.segments_page([], segments=segments).lines == (
        "在您的 361 位购买客户中，最大的分群是“休眠”：261 位客户，占 72.3%。",)
    overview = pd.DataFrame({"table": ["customers", "orders"], "rows": [920, 3805], "last": ["", "2026-11-30"]})
    assert summaries.import_page(None, gaps=[], overview=overview).lines == (
        "本月没有新数据：收件箱里没有要导入的文件。", "数据没有缺口：每张表都按平常的节奏更新到了最新。",
        "数据库中共有 920 位客户的 3,805 笔订单，最新一笔在 2026-11-30。")


def test_the_lines_a_page_prints_are_whole_translated_sentences(chinese):
    from crm_helpers.report import sentences

    period = parse_month("2026-11")
    assert sentences.sales_period(period, "EUR") == "期间 2026年11月，截至 2026-11-30。金额单位为 EUR，指已付款订单的净收入。"
    assert sentences.segments_as_of(period.end, 1822) == "截至 2026-11-30 的分群：1,822 位购买客户（至少有一笔已付款订单的客户）。"
    assert sentences.purchase_model_line("") == "使用的购买模型：无"
    i18n.set_language("en")
    assert sentences.sales_period(period, "EUR") == "Period 2026-11, as of 2026-11-30. Money in EUR, net revenue of paid orders."
    assert sentences.store_line("crm.db", period, inbox="data/inbox") == "Store: crm.db · period 2026-11 · inbox data/inbox"


def test_refusals_of_the_entry_functions_the_importer_and_undo_come_out_in_chinese(chinese, tmp_path):
    """The shared checking code's reasons (validation, data entry, undo) and the importer's bad-row
    message follow the language in use; their English is the tests' of test_entry / test_importing."""
    from crm_helpers.ingest import entry
    from crm_helpers.ingest.table_import import ImportRejected, import_file
    from crm_helpers.store.connection import memory_db
    from crm_helpers.store.undo import UndoError, undo_import
    from crm_helpers.store.validation import ValidationError

    db = memory_db()
    customer = entry.add_customer(db, "C1", name="Wang Fang")
    task = entry.add_task(db, "2030-01-01", note="call", customer_id=customer)
    with pytest.raises(ValidationError) as refused:
        entry.snooze_task(db, task, until="2020-01-01")
    assert refused.value.reason == "不晚于今天：请推迟到以后的某一天"
    with pytest.raises(ValidationError) as refused:
        entry.add_feedback(db, customer, nps=11)
    assert refused.value.reason == "超出范围 0至10"
    with pytest.raises(ValidationError) as refused:
        entry.log_interaction(db, "C404", channel="call")
    assert refused.value.reason == "未知客户"
    ticket = entry.open_ticket(db, customer, opened_at="2026-03-10 09:00")
    entry.add_task(db, "2030-01-02", ticket_id=ticket)
    with pytest.raises(ValidationError) as refused:
        entry.delete_entry(db, "tickets", entry_id=ticket)
    assert refused.value.reason == "有 1 条任务引用了它：请先删除或修改这些记录"
    bad = tmp_path / "orders.csv"
    bad.write_text("order_id,customer_id,order_date,amount,status\nO1,C1,2026-01-05,ten,paid\n"
                   "O2,C404,2026-01-05,10,paid\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as rejected:
        import_file(db, "orders", path=bad)
    message = str(rejected.value)
    assert message.startswith("orders.csv：有 2 行有问题；没有导入任何内容。")
    assert "第 2 行，amount 列：'ten' 不是数字" in message and "第 3 行，customer_id 列：'C404' 未知客户" in message
    assert "--create-missing-customers 会把他们添加为" in message
    with pytest.raises(UndoError, match="没有导入批次 99"):
        undo_import(db, 99)
    assert english_sentences(message, allowed={"Wang", "Fang"}) == []


def test_the_crm_command_speaks_chinese_with_lang_zh_or_crm_lang(tmp_path, monkeypatch):
    """`crm --lang zh` (or CRM_LANG=zh): the demo's, the import's and the report's lines and refusals,
    "Error:" included, in Chinese; English is the default (the other tests read it)."""
    from crm_helpers.cli import main

    db = str(tmp_path / "crm.db")
    try:
        made = CliRunner().invoke(main, ["--lang", "zh", "demo", "--db", db, "--customers", "30", "--months", "3"])
        again = CliRunner().invoke(main, ["--lang", "zh", "demo", "--db", db])
        bad = tmp_path / "orders.csv"
        bad.write_text("order_id,customer_id,order_date,amount,status\nO1,C404,2026-01-05,ten,paid\n", encoding="utf-8")
        monkeypatch.setenv("CRM_LANG", "zh")
        refused = CliRunner().invoke(main, ["import", "--db", db, "orders", str(bad)])
        kept = CliRunner().invoke(main, ["import", "--db", db, "orders", str(bad), "--skip-bad-rows",
                                         "--create-missing-customers", "--dry-run"])
        no_month = CliRunner().invoke(main, ["report", "--db", db, "--month", "2020-01"])
        nobody = CliRunner().invoke(main, ["forget", "--db", db, "--list"])
    finally:
        i18n.set_language("en")
    assert made.exit_code == 0 and made.output.startswith("示例业务已写入") and "客户" in made.output
    assert again.exit_code == 1 and again.output.startswith("错误：") and "已经有数据" in again.output
    assert refused.exit_code == 1 and "第 2 行，amount 列：'ten' 不是数字" in refused.output
    assert kept.exit_code == 0 and "（试运行：没有写入任何内容）" in kept.output and "对账" in kept.output
    assert no_month.exit_code == 1 and "2020-01 没有订单" in no_month.output
    assert nobody.exit_code == 0 and nobody.output == "还没有人被清除。\n"
    for result in (made, again, refused, kept, no_month):
        assert english_sentences(result.output) == [], result.output


def test_an_import_s_counted_notes_come_out_in_chinese(chinese):
    """A note with a count is written in the owner's language where it is made: translating the
    finished English sentence when shown could never find it in the catalogue."""
    from crm_helpers.ingest.export_import import import_export
    from crm_helpers.store.connection import memory_db

    fixture = Path(__file__).parent / "fixtures" / "sources" / "wechat_pay_bill.csv"
    summary = import_export(memory_db(), fixture).summary()
    assert "1 行不是销售，未计入" in summary and "not a sale" not in summary
