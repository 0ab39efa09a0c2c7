"""The report pack as a person sees it: headless Chromium opens the pages from disk.

Needs Debian's `chromium` (installed by .ci/run); skipped with the reason where it is missing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from browser_support import BROWSER_MARKS, CHROMIUM, CRM, small_demo_store
from browser_support import FLAGS as CHROMIUM_FLAGS

pytestmark = BROWSER_MARKS
FLAGS = ["--headless", *CHROMIUM_FLAGS, "--allow-file-access-from-files"]

# Runs in the page after load: what a person would check at a glance.
PROBE = """
(() => {
  const imgs = [...document.images];
  const kpis = document.querySelector('#kpis');
  const r = kpis ? kpis.getBoundingClientRect() : null;
  return JSON.stringify({
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    kpiRows: kpis ? kpis.querySelectorAll('tbody tr').length : 0,
    kpiVisible: !!r && r.width > 0 && r.height > 0 && getComputedStyle(kpis).visibility !== 'hidden',
    textCells: document.querySelectorAll('table.for-people td:not(.num)').length,
    textCellsRight: [...document.querySelectorAll('table.for-people td:not(.num)')]
      .filter(td => getComputedStyle(td).textAlign === 'right').length,
    numCellsNotRight: [...document.querySelectorAll('table.for-people td.num')]
      .filter(td => getComputedStyle(td).textAlign !== 'right').length,
    printed: document.querySelectorAll('.jp-RenderedText[data-mime-type="text/plain"] pre').length,
    printedAsCode: [...document.querySelectorAll('.jp-RenderedText[data-mime-type="text/plain"] pre')]
      .filter(pre => /monospace/.test(getComputedStyle(pre).fontFamily)
                     || getComputedStyle(pre).wordBreak === 'break-all').length,
  });
})()
"""


def _dump_dom_with_probe(page: Path, user_dir: Path) -> str:
    """Load ``page`` in Chromium, run PROBE, and return its JSON (written into the DOM title)."""
    html = page.read_text(encoding="utf-8")
    probe_page = page.with_name(f"_probe_{page.name}")
    probe_page.write_text(html.replace("</body>", f"<script>window.addEventListener('load', () => "
                                       f"{{ document.title = 'PROBE:' + {PROBE.strip()}; }});</script></body>"),
                          encoding="utf-8")
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={user_dir}", "--virtual-time-budget=5000",
                           "--dump-dom", probe_page.as_uri()], capture_output=True, text=True, timeout=120)
    probe_page.unlink()
    start = proc.stdout.find("<title>PROBE:")
    assert start >= 0, proc.stderr[-2000:]
    import html as html_lib

    return html_lib.unescape(proc.stdout[start + len("<title>PROBE:"):proc.stdout.find("</title>", start)])


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    db = small_demo_store(root)
    subprocess.run([CRM, "report", "--db", str(db), "--month", "2026-10", "--out", str(root / "out"),
                    "--only", "02,04,05,06"], capture_output=True)
    return root / "out"


def test_index_shows_the_kpi_table_and_a_screenshot_is_taken(pack, tmp_path):
    import json

    result = json.loads(_dump_dom_with_probe(pack / "index.html", tmp_path / "u1"))
    assert result["kpiVisible"] and result["kpiRows"] >= 5, result
    shot = tmp_path / "index.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'u2'}", "--window-size=1100,900",
                    f"--screenshot={shot}", (pack / "index.html").as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000


def test_a_notebook_page_loads_its_images(pack, tmp_path):
    import json

    page = next(p for p in sorted(pack.glob("0*.html")))
    result = json.loads(_dump_dom_with_probe(page, tmp_path / "u3"))
    assert result["images"] >= 1 and result["broken"] == 0, result
    # words read from the left, numbers line up on the right (JupyterLab's own CSS right-aligns every cell)
    assert result["textCells"] > 0 and result["textCellsRight"] == 0 and result["numCellsNotRight"] == 0, result
    # a sentence the notebook prints reads as text: the page's font, lines wrapped between words
    assert result["printed"] > 0 and result["printedAsCode"] == 0, result


PHONE = 390
"""A phone's width in CSS pixels (an iPhone 12 to 15)."""


def test_at_390_px_no_page_scrolls_sideways_and_no_headline_value_is_hidden(pack):
    """Tables scroll inside their own box; the index's figures and their values stay in view."""
    import shutil as _shutil

    from playwright.sync_api import sync_playwright

    pages = sorted(pack.glob("*.html"))
    assert len(pages) >= 5
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_shutil.which("chromium"), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": PHONE, "height": 800})
        for html_file in pages:
            page.goto(html_file.as_uri())
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= PHONE, f"{html_file.name} scrolls sideways: {wide} px"
        page.goto((pack / "index.html").as_uri())
        hidden = page.evaluate("""[...document.querySelectorAll('#kpis .v')].filter(v => {
            const r = v.getBoundingClientRect(), cell = v.closest('td').getBoundingClientRect();
            return r.width === 0 || r.left < cell.left - 1 || r.right > cell.right + 1 || r.right > innerWidth;
          }).map(v => v.textContent)""")
        shown = page.evaluate("document.querySelectorAll('#kpis .v').length")
        browser.close()
    assert shown >= 5 and hidden == [], hidden


needs_pdftotext = pytest.mark.skipif(__import__("shutil").which("pdftotext") is None,
                                     reason="pdftotext is not installed (apt-get install poppler-utils)")


def _pdf(path: Path, *args: str) -> str:
    return subprocess.run(["pdftotext", *args, str(path), "-"], capture_output=True, text=True, check=True).stdout


@needs_pdftotext
def test_the_brief_is_one_a4_page_with_the_actions_figures_and_call_list(pack):
    info = subprocess.run(["pdfinfo", str(pack / "brief.pdf")], capture_output=True, text=True, check=True).stdout
    assert __import__("re").search(r"Pages:\s+1\n", info) and "(A4)" in info, info
    text = _pdf(pack / "brief.pdf")
    for heading in ("Actions this month", "Headline figures", "Same month last year", "Whom to contact this week"):
        assert heading in text, heading


@needs_pdftotext
def test_the_pack_pdf_keeps_every_column_of_every_table_and_numbers_its_pages(pack):
    """Every word of every table heading of every page is in the PDF whole: a column cut at the
    paper's edge would leave fragments ('increme') instead."""
    import re as _re

    from bs4 import BeautifulSoup

    text = _pdf(pack / "pack.pdf", "-layout")  # no joining of hyphenated line ends
    split = _re.compile(r"[\s\-–]+")  # a cell may wrap at a hyphen: compare the parts between hyphens
    words = set(split.split(text))
    assert _re.search(r"page 1 of (\d+)", text) and "Contents" in text
    checked = 0
    for html_file in sorted(pack.glob("0*.html")):
        soup = BeautifulSoup(html_file.read_text(encoding="utf-8"), "html.parser")
        for table in soup.select("table.for-people"):
            for header in table.select("thead th"):
                for word in filter(None, split.split(header.get_text(" "))):
                    checked += 1
                    assert word in words, f"{html_file.name}: column {header.get_text()!r} lost in pack.pdf"
            for row in table.select("tbody tr")[:3]:  # the last column's values, where a cut would fall
                last = [w for w in split.split(row.select("td")[-1].get_text(" ")) if w]
                # Chinese text wraps between characters, not at spaces: its characters are all there
                assert all(w in words or (not w.isascii() and set(w) <= set(text)) for w in last), \
                    f"{html_file.name}: {last} cut in pack.pdf"
    assert checked > 100
