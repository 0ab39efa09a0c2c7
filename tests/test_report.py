"""The monthly report pack end to end: demo store -> `crm report` -> HTML pages and index."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from bs4 import BeautifulSoup
from nbformat.v4 import new_notebook

from support import write_notebook
from crm_helpers.report import headlines
from crm_helpers.store.periods import parse_month
from crm_helpers.report.index import format_change, format_value
from crm_helpers.report.runner import (
    ReportError,
    discover_notebooks,
    longest_first,
    previous_seconds,
    render_report,
    runs_alone,
)
from crm_helpers.store.connection import open_db

CRM = str(Path(sys.executable).with_name("crm"))


def _notebook(path: Path, *code: str) -> None:
    write_notebook(path, *code, parameters='db_path = ""\nperiod_start = ""\nperiod_end = ""\nsize = 1')


@pytest.fixture(scope="module")
def tiny_pack_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebooks")
    _notebook(folder / "01_ok.ipynb", "from crm_helpers.report import headlines\nheadlines.record('answer', 42 * size, label='The answer')")
    _notebook(folder / "02_fails.ipynb", "raise RuntimeError('planted failure for the test')")
    _notebook(folder / "03_ok.ipynb", "print(period_start, period_end)")
    return folder


@pytest.mark.slow
def test_one_failing_notebook_does_not_lose_the_others(tiny_pack_dir, demo_db_path, tmp_path):
    result = render_report(demo_db_path, parse_month("2026-10"), out_dir=tmp_path, notebooks_dir=tiny_pack_dir,
                           jobs=2, progress=False, overrides={"size": 2})
    assert not result.ok
    assert [r.name for r in result.failed] == ["02_fails"]
    assert (tmp_path / "01_ok.html").exists() and (tmp_path / "03_ok.html").exists()
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "planted failure for the test" in index and "02_fails.ipynb" in index
    assert result.runs[0].headlines["answer"]["value"] == 84  # the override reached the notebook
    assert "2026-10-01 2026-10-31" in (tmp_path / "03_ok.html").read_text(encoding="utf-8")


def _executed(path: Path, seconds: float) -> None:
    nb = new_notebook()
    nb.metadata["papermill"] = {"duration": seconds}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def test_the_pool_starts_the_notebooks_that_took_longest_last_time_first(tmp_path):
    sources = [tmp_path / "notebooks" / f"{n}.ipynb" for n in ("02_a", "03_b", "04_c", "05_d")]
    reports = tmp_path / "reports"
    _executed(reports / "2026-09" / "04_c.ipynb", 9.5)  # an earlier month
    _executed(reports / "2026-09" / "03_b.ipynb", 1.0)
    _executed(reports / "2026-08" / "05_d.ipynb", 4.0)  # only in an older month
    _executed(reports / "2026-10" / "03_b.ipynb", 12.0)  # a re-render of this month wins
    target = reports / "2026-10"
    assert previous_seconds(sources[1], target) == 12.0 and previous_seconds(sources[0], target) == 0.0
    assert [p.stem for p in longest_first(sources, target)] == ["03_b", "04_c", "05_d", "02_a"]
    # a first run ever: name order, while no notebook can be read
    assert longest_first(sources, tmp_path / "elsewhere" / "2026-10") == sources
    # ... and most code cells first when they can (06 is the longest page and has the most)
    sources[0].parent.mkdir()
    for source, cells in zip(sources, (2, 1, 3, 2)):
        _notebook(source, *["x = 1"] * cells)
    assert [p.stem for p in longest_first(sources, tmp_path / "elsewhere" / "2026-10")] == ["04_c", "02_a", "05_d", "03_b"]
    assert [p.stem for p in longest_first(discover_notebooks(), tmp_path / "elsewhere" / "2026-10")][0] == "06_sales_and_forecast"


def test_the_import_notebook_runs_alone_only_while_its_inbox_holds_a_file_not_imported_yet(demo_db_copy, tmp_path):
    from crm_helpers.ingest.inbox import import_inbox

    notebook, inbox = tmp_path / "01_import.ipynb", tmp_path / "inbox"
    params = {"db_path": str(demo_db_copy), "inbox_dir": "inbox"}  # relative: to the notebook's folder
    assert not runs_alone(notebook, params, db_path=demo_db_copy), "no inbox folder: nothing to import"
    inbox.mkdir()
    assert not runs_alone(notebook, params, db_path=demo_db_copy), "an empty inbox"
    customer = open_db(demo_db_copy).execute("SELECT customer_id FROM customers LIMIT 1").fetchone()[0]
    (inbox / "orders_2026-11.csv").write_text("order_id,customer_id,order_date,amount,status\n"
                                              f"NEW-1,{customer},2026-11-02,10,paid\n", encoding="utf-8")
    assert runs_alone(notebook, params, db_path=demo_db_copy), "a new file: the store will change"
    assert not runs_alone(tmp_path / "02_other.ipynb", params, db_path=demo_db_copy), "only 00/01 import"
    assert import_inbox(open_db(demo_db_copy), inbox).iloc[0].status == "imported"
    assert not runs_alone(notebook, params, db_path=demo_db_copy), "the same file, imported last month"


def test_unknown_parameter_is_rejected_with_the_valid_ones(tiny_pack_dir, demo_db_path, tmp_path):
    with pytest.raises(ReportError, match="unknown parameter.*colour.*size"):
        render_report(demo_db_path, parse_month("2026-10"), out_dir=tmp_path, notebooks_dir=tiny_pack_dir,
                      overrides={"colour": "red"}, progress=False)


def test_figures_show_the_decimals_they_carry():
    assert [format_value(v, "") for v in (23.7, 3.95, 4.0, 0.5, 1234.5)] == ["23.7", "3.95", "4", "0.5", "1,234"]
    assert format_value(72.4, "%") == "72.4 %" and format_value(None, "EUR") == "not available"
    assert format_value(None, "EUR", missing="no campaign with a measurable effect") == "no campaign with a measurable effect"


def test_only_selects_notebooks_and_rejects_unknown_numbers(tiny_pack_dir):
    assert [p.name for p in discover_notebooks(tiny_pack_dir, ["3"])] == ["03_ok.ipynb"]
    with pytest.raises(ReportError, match="no notebook numbered 09"):
        discover_notebooks(tiny_pack_dir, ["09"])


@pytest.fixture(scope="module")
def rendered_pack(tmp_path_factory):
    """The real pack, rendered by the `crm` command on a small demo store, with a share copy."""
    root = tmp_path_factory.mktemp("pack")
    db = root / "crm.db"
    subprocess.run([CRM, "demo", "--db", str(db), "--customers", "300", "--months", "18", "--end", "2026-10"],
                   check=True, capture_output=True, text=True)
    proc = subprocess.run([CRM, "report", "--db", str(db), "--month", "2026-10", "--out", str(root / "out"),
                           "--share", "--no-pdf"], capture_output=True, text=True)
    return root, db, proc


@pytest.mark.slow
def test_every_notebook_renders_without_error(rendered_pack):
    root, _, proc = rendered_pack
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = root / "out"
    assert str(out / "index.html") in proc.stdout
    for source in discover_notebooks():
        executed = out / source.name
        assert executed.exists() and executed.with_suffix(".html").exists(), source.name
        nb = nbformat.read(str(executed), as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{source.name}: {errors[:1]}"


@pytest.mark.slow
def test_index_shows_the_figures_the_notebooks_recorded(rendered_pack):
    root, _, _ = rendered_pack
    out = root / "out"
    index = (out / "index.html").read_text(encoding="utf-8")
    recorded = {}
    for executed in sorted(out.glob("[0-9][0-9]_*.ipynb")):
        recorded.update(headlines.read(str(executed)))
    shown = list(recorded)
    assert shown, "no notebook recorded a headline figure"
    for key in shown:
        payload = recorded[key]
        assert format_value(payload["value"], payload.get("unit", ""), missing=payload.get("missing") or "") in index, key
    # a figure without a value says why in words, never "n/a" or a code word
    soup = BeautifulSoup(index, "html.parser")
    for hidden in soup(["script", "style"]):
        hidden.decompose()
    text = soup.get_text(" ")
    assert "n/a" not in text and not CODE_WORDS.findall(text), CODE_WORDS.findall(text)[:5]
    missing = [p for p in recorded.values() if p["value"] is None]
    for payload in missing:
        assert payload.get("missing") and payload["missing"] in text, payload["key"]


def _personal_values(db_path: Path) -> tuple[set[str], set[str]]:
    db = open_db(db_path)
    emails = {r[0] for r in db.execute("SELECT email FROM customers WHERE email IS NOT NULL")}
    phones = {r[0] for r in db.execute("SELECT phone FROM customers WHERE phone IS NOT NULL")}
    return emails, phones


@pytest.mark.slow
def test_share_pack_holds_no_email_or_phone_of_the_store(rendered_pack):
    root, db, _ = rendered_pack
    share = root / "out" / "share"
    files = [p for p in share.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files) and any(p.suffix == ".ipynb" for p in files)
    emails, phones = _personal_values(db)
    # every phone number of the store, however it is written (spaces, dashes, dots, brackets): one
    # pattern, built once and run once per page
    separators = r"[\s\-./()]*"
    written_any_way = re.compile("|".join(separators.join(d) for d in {re.sub(r"\D", "", p) for p in phones}
                                          if len(d) >= 9))
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not [e for e in emails if e in text], f"{path.name} leaks e-mail addresses"
        assert not [p for p in phones if p in text], f"{path.name} leaks phone numbers"
        readable = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=\s]+", "", text)  # plots are no text
        found = written_any_way.search(readable)
        assert found is None, f"{path.name} leaks a phone number written as {found.group(0)!r}"
        if path.suffix == ".ipynb":
            nb = nbformat.read(str(path), as_version=4)
            assert all(c.source.startswith("# code hidden") for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_private_pack_does_show_personal_data_for_the_owner(rendered_pack):
    """The masking test above would pass trivially if no notebook showed any e-mail at all."""
    root, db, _ = rendered_pack
    emails, _ = _personal_values(db)
    text = "".join(p.read_text(encoding="utf-8") for p in (root / "out").glob("*.html"))
    text += (root / "out" / "follow_up_queue.csv").read_text(encoding="utf-8") if (root / "out" / "follow_up_queue.csv").exists() else ""
    assert any(e in text for e in emails)


def test_report_for_a_month_without_data_says_so(demo_db_path):
    proc = subprocess.run([CRM, "report", "--db", str(demo_db_path), "--month", "2030-01"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "no orders in 2030-01" in proc.stderr and "Traceback" not in proc.stderr


def test_changes_are_points_for_shares_and_scales_and_relative_for_amounts():
    assert format_change(36.4, 33.3, unit="", change="points") == "▲ +3.1 pts"  # NPS: a fixed −100…100 scale
    assert format_change(81.8, 86.7, unit="%") == "▼ -4.9 pts"
    assert format_change(1100.0, 1000.0, unit="EUR") == "▲ +10.0 %"
    assert format_change(None, 1000.0, unit="EUR") == ""


def _pages(out: Path) -> dict[str, BeautifulSoup]:
    return {p.name: BeautifulSoup(p.read_text(encoding="utf-8"), "html.parser") for p in sorted(out.glob("*.html"))}


@pytest.mark.slow
def test_the_owners_pages_show_no_code_and_the_executed_notebooks_keep_it(rendered_pack):
    root, _, _ = rendered_pack
    out = root / "out"
    pages = _pages(out)
    assert len(pages) == len(discover_notebooks()) + 2  # every notebook, the index and the glossary
    for name, soup in pages.items():
        assert not soup.select(".jp-CodeCell .jp-InputArea, .jp-InputPrompt, .jp-CodeCell .jp-Editor"), name
        assert "headlines.record(" not in soup.get_text(), name
    for executed in out.glob("[0-9][0-9]_*.ipynb"):
        nb = nbformat.read(str(executed), as_version=4)
        assert any("import" in c.source for c in nb.cells if c.cell_type == "code"), executed.name


CODE_WORDS = re.compile(r"(?<![\w-])(NaN|None|<NA>|NaT|nan)(?![\w-])")
HEDGED_PLURALS = re.compile(r"\w+\(s\)")
"""A count written "complaint(s)": each count has its singular and plural sentence (``tn``)."""


@pytest.mark.slow
def test_the_pages_read_as_a_report_no_code_words_and_no_long_tables(rendered_pack):
    root, _, _ = rendered_pack
    for name, soup in _pages(root / "out").items():
        for hidden in soup(["script", "style"]):
            hidden.decompose()
        text = soup.get_text(" ")
        assert not CODE_WORDS.findall(text), f"{name}: {CODE_WORDS.findall(text)[:5]}"
        assert not HEDGED_PLURALS.findall(text), f"{name}: {HEDGED_PLURALS.findall(text)[:5]}"  # "1 campaign(s)"
        for table in soup.find_all("table"):
            assert len(table.select("tbody tr")) <= 25, f"{name}: a table of {len(table.select('tbody tr'))} rows"


@pytest.mark.slow
def test_the_index_opens_with_the_actions_then_what_needs_attention(rendered_pack):
    root, _, _ = rendered_pack
    soup = _pages(root / "out")["index.html"]
    actions = soup.select_one("#actions")
    assert actions is not None and soup.find("h2") is actions.find("h2"), "the first section of the index"
    for item in actions.select("li"):
        page, _, anchor = item.select_one("a")["href"].partition("#")
        assert anchor and f'id="{anchor}"' in (root / "out" / page).read_text(encoding="utf-8"), anchor
        assert " at stake" in item.get_text() or "no money estimate" in item.get_text()
    assert len(actions.select("li")) >= 3
    section = soup.select_one("#attention")
    assert section is not None and soup.find_all("h2")[1] is section.find("h2"), "the second section of the index"
    items = section.select("li")
    assert 1 <= len(items) <= 7
    for item in items:
        link = item.select_one("a")["href"]
        assert link == "#kpis" or (root / "out" / link).exists(), link
        assert item.get_text().strip().endswith((".", "?"))
    for change in soup.select("#kpis td.change"):
        assert {"good", "bad", "noise", "neutral"} & set(change["class"])


@pytest.mark.slow
def test_page_02_shows_one_time_buyers_at_f1_and_new_customers(rendered_pack):
    root, _, _ = rendered_pack
    text = _pages(root / "out")["02_segmentation.html"].get_text(" ")
    assert "Your buyers fall most clearly into" in text
    summary = [t for t in _pages(root / "out")["02_segmentation.html"].find_all("table")
               if "New Customers" in t.get_text() and "customers" in t.select_one("thead").get_text()]
    row = next(tr for tr in summary[0].select("tbody tr") if "New Customers" in tr.get_text())
    assert int(row.select("td")[1].get_text().replace(",", "")) > 0


def test_with_code_renders_the_analysts_view(tiny_pack_dir, demo_db_path, tmp_path):
    result = render_report(demo_db_path, parse_month("2026-10"), out_dir=tmp_path, notebooks_dir=tiny_pack_dir,
                           only=["01"], progress=False, with_code=True)
    soup = BeautifulSoup((tmp_path / "01_ok.html").read_text(encoding="utf-8"), "html.parser")
    assert result.ok and soup.select(".jp-CodeCell .jp-InputArea")
    assert "headlines.record(" in soup.get_text()


@pytest.mark.slow
def test_the_pack_is_owner_only_like_the_store(rendered_pack):
    root, _, _ = rendered_pack
    out = root / "out"
    entries = [out, *out.rglob("*")]
    assert any(p.name == "share" for p in entries) and any(p.suffix == ".csv" for p in entries)
    modes = {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in entries}
    assert {k: m for k, m in modes.items() if m != (0o700 if (root / k).is_dir() else 0o600)} == {}


def test_a_re_render_takes_group_and_other_permissions_off_earlier_files(tiny_pack_dir, demo_db_path, tmp_path):
    out = tmp_path / "pack"
    out.mkdir(mode=0o755)
    old = out / "notes.txt"
    old.write_text("kept from before")
    old.chmod(0o644)
    render_report(demo_db_path, parse_month("2026-10"), out_dir=out, notebooks_dir=tiny_pack_dir, only=["03"],
                  progress=False)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700 and stat.S_IMODE(old.stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "03_ok.html").stat().st_mode) == 0o600


@pytest.mark.slow
def test_the_same_month_rendered_twice_gives_the_same_numbers(rendered_pack):
    """Seeded models and no hidden clock: a second run of the pack records identical headline figures."""
    root, db, _ = rendered_pack
    again = render_report(db, parse_month("2026-10"), out_dir=root / "again", progress=False)
    assert again.ok, [r.error for r in again.failed]
    first = {r.name: headlines.read(str(root / "out" / r.notebook.name)) for r in again.runs}
    second = {r.name: r.headlines for r in again.runs}
    assert any(first.values()) and first == second


@pytest.mark.slow
@pytest.mark.parametrize("notebook", [p.name for p in discover_notebooks()])
def test_each_notebook_runs_with_its_defaults_as_in_jupyterlab(notebook, demo_db_copy, tmp_path, monkeypatch):
    """`make lab`: no parameters injected; the default store (here via CRM_DB) and the latest complete month."""
    import papermill as pm

    from crm_helpers.store.config import KERNEL_NAME, NOTEBOOKS_DIR
    from crm_helpers.report.runner import kernel_config

    monkeypatch.setenv("CRM_DB", str(demo_db_copy))  # notebook 02 writes segment snapshots
    monkeypatch.setenv("CRM_INBOX", str(tmp_path / "inbox"))
    out = tmp_path / notebook
    pm.execute_notebook(str(NOTEBOOKS_DIR / notebook), str(out), kernel_name=KERNEL_NAME, cwd=str(NOTEBOOKS_DIR),
                        progress_bar=False, config=kernel_config())
    assert "2026-10" in out.read_text(encoding="utf-8")  # the demo's latest complete month was picked


def test_the_desk_is_not_part_of_the_pack():
    names = [p.name for p in discover_notebooks()]
    assert "00_desk.ipynb" not in names and names[0].startswith("01_")


def test_the_glossary_defines_each_term_once_and_the_index_links_it(tiny_pack_dir, demo_db_path, tmp_path):
    from crm_helpers.report.glossary import TERMS

    terms = [t.term for t in TERMS]
    assert len(terms) == len(set(terms))
    for needed in ("Lost customers", "Customers probably lost", "Customers at risk", "Repeat rate", "P(alive)"):
        assert needed in terms
    for term in TERMS:  # each names a function that exists
        module, _, name = term.computed_by.rpartition(".")
        assert hasattr(__import__(module, fromlist=[name]), name), term.computed_by
    render_report(demo_db_path, parse_month("2026-10"), out_dir=tmp_path, notebooks_dir=tiny_pack_dir, only=["03"],
                  progress=False)
    index = BeautifulSoup((tmp_path / "index.html").read_text(encoding="utf-8"), "html.parser")
    assert index.find("a", href="glossary.html")
    page = BeautifulSoup((tmp_path / "glossary.html").read_text(encoding="utf-8"), "html.parser")
    assert [dt.get_text() for dt in page.select("dt")] == terms


@pytest.mark.slow
def test_the_index_lists_as_many_people_to_follow_up_as_its_headline_promises(rendered_pack):
    root, _, _ = rendered_pack
    index = BeautifulSoup((root / "out" / "index.html").read_text(encoding="utf-8"), "html.parser")
    promised = re.search(r"the (\d+) most urgent are listed", index.get_text())
    assert promised, "the follow-up headline says how many are listed"
    assert len(index.select("table.queue tbody tr")) == int(promised.group(1))
    headers = [th.get_text() for th in index.select("table.queue th")]
    assert "last order" in headers and not any("_" in h for h in headers), headers


def test_a_kernel_that_never_started_is_started_once_more(tmp_path, monkeypatch):
    """Two kernels started at once can race for one TCP port; the runner tries such a start again
    (and only such a failure: an error in a cell is not retried)."""
    import papermill

    from crm_helpers.report.runner import KERNEL_START_FAILURE, _execute_one

    calls = []

    def flaky(source, out, **kwargs):
        calls.append(source)
        if len(calls) == 1:
            raise RuntimeError(KERNEL_START_FAILURE)
        nbformat.write(new_notebook(), out)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    run = _execute_one(str(tmp_path / "01_x.ipynb"), str(tmp_path), {})
    assert run.ok and len(calls) == 2

    def broken_cell(source, out, **kwargs):
        calls.append(source)
        raise RuntimeError("a cell failed")

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", broken_cell)
    assert not _execute_one(str(tmp_path / "02_y.ipynb"), str(tmp_path), {}).ok and len(calls) == 1


def _first_figure(page: BeautifulSoup, term: str) -> float:
    """The number in the first numeric cell of the table row whose first cell starts with ``term``."""
    row = next(tr for tr in page.find_all("tr") if tr.find("td") and tr.td.get_text(" ", strip=True).startswith(term))
    return float(re.search(r"-?\d+(?:\.\d+)?", row.find("td", class_="num").get_text()).group())


@pytest.mark.slow
def test_page_03_and_the_index_give_the_same_repeat_rate(rendered_pack):
    root, _, _ = rendered_pack
    pages = _pages(root / "out")
    on_index, on_page = _first_figure(pages["index.html"], "Repeat rate"), _first_figure(pages["03_scoring.html"],
                                                                                          "Repeat rate")
    assert on_index == pytest.approx(on_page, abs=0.05), "one word, one number (issue 14, point 4)"


def _cells(soup: BeautifulSoup) -> list:
    """The page's cells in reading order (markdown and outputs; the owner's pages hide code)."""
    return soup.select(".jp-Cell")


def _is_markdown(cell) -> bool:
    return "jp-MarkdownCell" in cell.get("class", [])


FIRST_USE = {
    "02_segmentation.html": {"K-means": "as alike as possible", "silhouette": "how well separated",
                             "inertia": "from their group's centre"},
    "05_satisfaction_review.html": {"95% CI": "confidence, given how many", "p value": "if nothing had really",
                                    "z-test": "comparing two shares", "bootstrap": "re-drawn",
                                    "R²": "share of the differences", "out-of-bag": "did not learn from",
                                    "TF-IDF": "the rarer it is", "90th percentile": "nine in ten"},
    "06_sales_and_forecast.html": {"SARIMAX": "same month a year earlier", "AIC": "penalty for complexity",
                                   "MAPE": "average miss", "backtest": "as if it were", "fold": "Each such start",
                                   "seasonal-naive": "same month last year", "80% range": "8 times in 10",
                                   "exponential smoothing": "recent ones count most"},
}
"""Technical terms of a page and the plain words that must stand beside their first use."""


@pytest.mark.slow
def test_technical_terms_are_explained_in_plain_words_at_their_first_use(rendered_pack):
    root, _, _ = rendered_pack
    pages = _pages(root / "out")
    for page, terms in FIRST_USE.items():
        cells = _cells(pages[page])
        for term, plain in terms.items():
            first = next((c for c in cells if term in c.get_text(" ")), None)
            assert first is not None, f"{page}: {term!r} never used"
            assert _is_markdown(first), f"{page}: {term!r} first appears in an output, unexplained"
            assert plain in first.get_text(" "), f"{page}: {term!r} without its plain words {plain!r}"


SCORE_COLUMNS = {"score": "score", "standardized": "standardized", "rf importance": "rf importance",
                 "p value": "p value", "ci low": "ci low", "nps ci low": "nps ci low",
                 "weighted index": "weighted index", "article s": "article s", "last nps": "last nps",
                 "lift": "lift", "confidence": "confidence", "support": "support", "win rate": "win rate",
                 "value win rate": "value win rate", "model mape": "mape", "fold": "fold", "origin": "origin"}
"""Table columns holding a score or a statistic, and the word its section must explain."""


@pytest.mark.slow
def test_every_score_in_a_table_is_explained_in_its_section(rendered_pack):
    root, _, _ = rendered_pack
    pages = _pages(root / "out")
    checked = 0
    for page in ("05_satisfaction_review.html", "06_sales_and_forecast.html"):
        section = ""
        for cell in _cells(pages[page]):
            if _is_markdown(cell):
                section = ("" if cell.find("h2") else section) + " " + cell.get_text(" ").lower()
                continue
            for table in cell.find_all("table"):
                for header in (th.get_text(" ", strip=True) for th in table.select("thead th")):
                    if header in SCORE_COLUMNS:
                        checked += 1
                        assert SCORE_COLUMNS[header] in section, f"{page}: column {header!r} unexplained"
    assert checked >= 10


@pytest.mark.slow
def test_a_list_cut_on_pages_05_and_06_is_complete_in_a_linked_csv(rendered_pack):
    import pandas as pd

    root, _, _ = rendered_pack
    out = root / "out"
    pages = _pages(out)
    linked = 0
    for page in ("05_satisfaction_review.html", "06_sales_and_forecast.html"):
        for note in pages[page].select("p.table-note"):
            cut = re.search(r"The first (\d+) of ([\d,]+) rows", note.get_text())
            assert int(cut.group(1)) <= 25, f"{page}: a table of more than 25 rows"
            rows = int(cut.group(2).replace(",", ""))
            link = note.select_one("a")
            assert link is not None, f"{page}: a list cut without its CSV"
            csv = out / link["href"]
            assert stat.S_IMODE(csv.stat().st_mode) == 0o600
            assert len(pd.read_csv(csv, encoding="utf-8-sig")) == rows
            assert (out / "share" / link["href"]).exists(), "the shared copy links its masked CSV too"
            linked += 1
    assert linked, "the demo's next-product offers are longer than a page"


def test_a_page_renders_each_figure_once_for_its_png(demo_db_path, tmp_path):
    """With the inline backend a figure is drawn for its PNG only (pyplot's after-cell redraw for
    interactive windows is disconnected by the workbook's plot setup), and still shown."""
    import papermill as pm

    from crm_helpers.store.config import KERNEL_NAME
    from crm_helpers.report.runner import kernel_config

    nb = tmp_path / "plot.ipynb"
    _notebook(nb,
              "from crm_helpers.workbook import open_workbook\n"
              "from matplotlib.backends.backend_agg import FigureCanvasAgg\n"
              "db, period = open_workbook(db_path, period_start, period_end=period_end)\n"
              "draws, _draw = [], FigureCanvasAgg.draw\n"
              "FigureCanvasAgg.draw = lambda canvas, *a, **k: (draws.append(1), _draw(canvas, *a, **k))[1]",
              "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2, 3]);",
              "print(len(draws))")
    out = tmp_path / "plot-out.ipynb"
    pm.execute_notebook(str(nb), str(out), parameters={"db_path": str(demo_db_path)}, kernel_name=KERNEL_NAME,
                        progress_bar=False, config=kernel_config())
    cells = nbformat.read(str(out), as_version=4).cells
    assert any("image/png" in o.get("data", {}) for o in cells[-2].outputs)
    # print_figure with bbox_inches="tight" draws twice (once to measure); the REPL hook made it three
    assert int(cells[-1].outputs[0]["text"]) == 2


@pytest.mark.slow
def test_a_page_shows_each_headline_once_not_again_as_its_record(rendered_pack):
    """The one-line outputs that record figures, flags and tables for the index are not on the pages:
    page 06 showed "Revenue: 24,178.50 EUR ..." under the table of the same figures. A figure a page
    shows nowhere else is printed by its notebook (``print(headlines.line(...))``), once. The page's
    opening summary names its main figures in a sentence of its own, and is left out here."""
    out = rendered_pack[0] / "out"
    pages = _pages(out)
    for soup in pages.values():
        for summary in soup.select("div.page-summary"):
            summary.decompose()
    for executed in sorted(out.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(str(executed), as_version=4)
        outputs = [o for c in nb.cells for o in c.get("outputs", [])]
        records = [o["data"]["text/plain"] for o in outputs if set(o.get("data", {})) & set(headlines.RECORD_MIME_TYPES)]
        printed = "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
        text = pages[executed.with_suffix(".html").name].get_text("\n")
        # 01 (imports) and 07 (the planner: what-if levers, not the month's figures) record nothing
        assert records or executed.name.startswith(("01", "07")), f"{executed.name} records nothing"
        for line in records:
            assert text.count(line) == printed.count(line) <= 1, f"{executed.name}: {line!r}"
    page_06 = pages["06_sales_and_forecast.html"].get_text("\n")
    assert "Revenue: " not in page_06 and "Weighted pipeline, current deals: " in page_06


def test_the_kernels_own_log_lines_stay_off_the_owners_terminal(tmp_path, demo_db_path, capfd):
    """jupyter_client stops each kernel with SIGINT; ipykernel logged "ERROR | KeyboardInterrupt
    caught in kernel" on the terminal of `crm report` when that raced the kernel's last message."""
    import papermill as pm

    from crm_helpers.store.config import KERNEL_NAME
    from crm_helpers.report.runner import kernel_config

    nb = tmp_path / "log.ipynb"
    _notebook(nb, "from ipykernel.kernelapp import IPKernelApp\n"
                  "IPKernelApp.instance().log.error('a kernel log line')")
    pm.execute_notebook(str(nb), str(tmp_path / "log-out.ipynb"), parameters={"db_path": str(demo_db_path)},
                        kernel_name=KERNEL_NAME, progress_bar=False, config=kernel_config())
    assert "a kernel log line" not in capfd.readouterr().err


def _ids(soup: BeautifulSoup) -> set[str]:
    return {tag["id"] for tag in soup.find_all(id=True)}


@pytest.mark.slow
def test_every_page_has_a_title_a_way_back_and_the_index_lands_on_sections(rendered_pack):
    from urllib.parse import unquote

    root, _, _ = rendered_pack
    pages = _pages(root / "out")
    for name, soup in pages.items():
        if not name[:2].isdigit():
            continue
        title = soup.title.get_text()
        assert title == f"{soup.find('h1').get_text().rstrip('¶').strip()} · CRM report 2026-10", name
        nav = soup.select_one("nav.pack-nav")
        assert nav is not None and nav.select_one('a[href="index.html"]') is not None, name
        sections = [unquote(a["href"][1:]) for a in nav.select("ol a")]
        assert sections and set(sections) <= _ids(soup), name
    index = pages["index.html"]
    sectioned = [a["href"] for a in index.select("a[href]") if "#" in a["href"] and not a["href"].startswith("#")]
    assert len([h for h in sectioned if "#" in h]) >= 8, "figures and actions link to their sections"
    for href in sectioned:
        page, _, anchor = href.partition("#")
        assert unquote(anchor) in _ids(pages[page]), href


@pytest.mark.slow
def test_analyst_material_is_folded_into_an_appendix_at_the_end_of_the_page(rendered_pack):
    root, _, _ = rendered_pack
    soup = _pages(root / "out")["03_scoring.html"]
    appendix = soup.select_one("main > details.appendix")
    assert appendix is not None and not appendix.has_attr("open")
    assert appendix.find("summary").get_text() == "How this was computed"
    assert "Can the probabilities be taken at face value?" in appendix.get_text()
    assert "horizon_days" in appendix.get_text(), "the page's settings, by name, in the appendix only"
    outside = soup.select_one("main").get_text(" ").replace(appendix.get_text(" "), "")
    assert "Brier" not in outside and "horizon_days" not in outside
    assert soup.select_one("main").find_all(recursive=False)[-1] is appendix, "the appendix ends the page"
    for page, soup in _pages(root / "out").items():
        for table in soup.select("table"):
            assert table.select("tbody tr") or not table.select("thead th"), f"{page}: a table of headers only"


def test_the_brief_lists_the_top_ten_of_the_call_list_with_every_column():
    from crm_helpers.report.pages import NotebookRun
    from crm_helpers.report.pdf import BRIEF_CALLS, brief_html

    rows = [{"name": f"Person {i}", "email": f"p{i}@example.com", "money_at_stake": 1000.0 + i,
             "reasons": "open complaint; valuable, not contacted"} for i in range(15)]
    run = NotebookRun("03_scoring", Path("03_scoring.ipynb"), None, True, 1.0,
                      tables={"follow_up_queue": {"key": "follow_up_queue", "columns": ["name", "email"],
                                                  "rows": rows, "units": {"money_at_stake": "EUR a year"}}})
    soup = BeautifulSoup(brief_html(parse_month("2026-10"), [run]), "html.parser")
    table = soup.find_all("table")[-1]
    assert [th.get_text() for th in table.select("th")] == ["Name", "E-mail", "Money at stake (EUR a year)", "Why"]
    assert len(table.select("tbody tr")) == BRIEF_CALLS
    assert [td.get_text() for td in table.select("tbody tr")[0].select("td")] == \
        ["Person 0", "p0@example.com", "1,000", "open complaint (+1 more)"]


def _page_with_summary(lines: list[str]) -> nbformat.NotebookNode:
    """A notebook as it ran: a title cell, a section, a recorded figure and the summary cell last."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

    from crm_helpers.report import summaries

    figure = new_output("display_data", data={headlines.MIME_TYPE: {"key": "x", "value": 1, "label": "X"}, "text/plain": "X: 1"})
    shown = new_output("display_data", data={summaries.MIME_TYPE: lines, "text/plain": "\n".join(lines)})
    return new_notebook(cells=[
        new_markdown_cell("# A page\n\nWhat the owner learns here."),
        new_markdown_cell("## First section\n\nA sentence."),
        new_code_cell("figure()", outputs=[figure]),
        new_code_cell("summaries.show(...)", outputs=[shown], metadata={"tags": [summaries.TAG]}),
    ])


def test_the_summary_opens_the_page_right_under_its_title(tmp_path):
    from crm_helpers.report.pages import write_html

    lines = ["Revenue: 37,720 EUR, against 30,458 EUR the month before.", "Forecast revenue next month: 48,054 EUR."]
    for exclude_input in (True, False):
        write_html(_page_with_summary(lines), tmp_path / "page.html", exclude_input=exclude_input, period_label="2026-11")
        soup = BeautifulSoup((tmp_path / "page.html").read_text(), "html.parser")
        after_title = soup.find("h1").find_next_sibling()
        assert after_title.name == "div" and "page-summary" in after_title["class"]
        assert [p.get_text() for p in after_title.select("p")] == lines
        assert soup.get_text().count(lines[0]) == 1, "shown once, at the top, not again where the cell ran"


def test_a_page_carries_a_few_kb_of_css_not_jupyterlabs_265_kb(tmp_path):
    from crm_helpers.report.pages import write_html

    write_html(_page_with_summary(["One line."]), tmp_path / "owner.html", exclude_input=True)
    write_html(_page_with_summary(["One line."]), tmp_path / "analyst.html", exclude_input=False)
    owner, analyst = ((tmp_path / name).read_text() for name in ("owner.html", "analyst.html"))
    styles = re.findall(r"<style.*?</style>", owner, re.S)
    assert sum(map(len, styles)) < 8_000, "about 4 KB of the page's own CSS (it was 265 KB)"
    assert len(owner) < 20_000 and "<script src=" not in owner, "no script fetched from the web"
    assert ".highlight .k" not in owner and ".highlight .k" in analyst, "the code's colours only where code shows"
    assert "table.for-people" in owner and "div.table-box" in owner and "details.appendix" in owner


@pytest.mark.slow
def test_each_page_opens_with_a_summary_of_at_most_three_sentences_with_numbers(rendered_pack):
    root, _, _ = rendered_pack
    for name, soup in _pages(root / "out").items():
        if not name[:2].isdigit():
            continue
        summary = soup.find("h1").find_next_sibling()
        assert summary is not None and "page-summary" in summary.get("class", []), name
        lines = [p.get_text() for p in summary.select("p")]
        assert 1 <= len(lines) <= 3, (name, lines)
        for line in lines:
            assert len(re.findall(r"[.!?](?:\s|$)", line)) == 1 and line.endswith("."), (name, line)
        assert re.search(r"\d", " ".join(lines)), (name, lines)


def test_a_summary_changes_with_the_data(demo_db_copy):
    import sqlite3

    from crm_helpers.analyses import segmentation
    from crm_helpers.analyses.features import customer_features
    from crm_helpers.analyses.quality import DataGap
    from crm_helpers.report import summaries

    period = parse_month("2026-11")
    segments = segmentation.segment_summary(segmentation.rfm_table(customer_features(open_db(demo_db_copy), period.end)))
    before = summaries.segments_page(segmentation.headline_figures(open_db(demo_db_copy), period=period), segments=segments)
    with sqlite3.connect(demo_db_copy) as con:  # 150 customers stop buying half a year ago
        con.execute("DELETE FROM orders WHERE order_date >= '2026-05-01' AND customer_id IN "
                    "(SELECT customer_id FROM orders GROUP BY customer_id HAVING count(*) >= 3 LIMIT 150)")
    after = summaries.segments_page(segmentation.headline_figures(open_db(demo_db_copy), period=period), segments=segments)
    assert before.lines[0].startswith("Customers at risk: ") and after.lines[0].startswith("Customers at risk: ")
    assert before.lines[0] != after.lines[0] and len(before.lines) <= 3 and len(after.lines) <= 3

    overview = pd.DataFrame({"table": ["customers", "orders"], "rows": [920, 3805], "first": ["", "2024-12-01"],
                             "last": ["", "2026-11-30"]})
    clean = summaries.import_page(None, gaps=[], overview=overview)
    gap = DataGap("silence", "orders", "no order for 40 days, usually one every 2", 0.001, 5000.0)
    holed = summaries.import_page(None, gaps=[gap], overview=overview)
    assert clean.lines[0].startswith("Nothing new came in") and "No gap" in clean.message
    assert holed.lines[0] == "A gap in the data makes the other pages less reliable: no order for 40 days, usually one every 2."
