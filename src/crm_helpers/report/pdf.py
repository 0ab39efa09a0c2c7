"""The pack on paper: ``brief.pdf`` (one A4 page for the owner's desk or an e-mail) and ``pack.pdf``
(every page of the pack, with a contents list and page numbers), printed by headless Chromium.

- The brief holds this month's actions, the headline figures beside the same month last year, and
  the first :data:`BRIEF_CALLS` people of the call list. It is laid out at the printable width of
  A4 and, when it would run over one page, scaled down in the browser until it fits (never cut).
- The pack is the contents list, then each page of the month in number order with its appendix
  unfolded; on paper a table wraps its cells to the page's width instead of scrolling, so no
  column is lost; page numbers are printed in the bottom margin (CSS ``@page`` margin boxes).

Chromium is the system's ``chromium`` (as for the browser tests). Without it, or when printing
fails, :func:`write_pdfs` says so in its result and the HTML pack stands as it is. Both files are
printed into a private temporary folder and moved into the pack in one rename each (owner-only).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_helpers.i18n import html_lang, t
from crm_helpers.store.files import place, write_text
from crm_helpers.store.periods import Period
from crm_helpers.report import headlines, numbers
from crm_helpers.report.index import (FOLLOW_UP_TABLE, KPI_ORDER, format_change, format_value, money_text,
                                      recorded_actions)
from crm_helpers.report.pages import NotebookRun, ReportResult

BRIEF_FILE, PACK_FILE = "brief.pdf", "pack.pdf"
BRIEF_ACTIONS = 5
"""How many actions the brief lists (the biggest by money at stake)."""
BRIEF_CALLS = 10
"""How many people of the call list the brief lists."""
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-pdf-header-footer",
                  "--allow-file-access-from-files")
"""Headless print without a browser window, without Chromium's own header and footer (the pages
print their page numbers themselves), and without reaching for the network."""
PRINT_SECONDS = 180
"""How long one print may take before it is given up (a pack of seven pages takes a few seconds)."""

A4_WIDTH_PX, A4_HEIGHT_PX = 718, 1047
"""The printable area of A4 with 10 mm margins, in CSS pixels (96 per inch): 190 × 277 mm."""


@dataclass
class PdfResult:
    """What :func:`write_pdfs` wrote."""

    written: list[Path] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        """Both files were written."""
        return not self.message


def chromium() -> str | None:
    """The path of the system's headless Chromium, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


# -- the brief -----------------------------------------------------------------------------------------

BRIEF_CSS = f"""
@page{{size:A4;margin:10mm}}
body{{font-family:system-ui,'DejaVu Sans',sans-serif;font-size:10px;color:#1f2933;margin:0;width:{A4_WIDTH_PX}px}}
h1{{font-size:17px;margin:0 0 2px}} h2{{font-size:12.5px;margin:10px 0 3px;border-bottom:1px solid #cbd2d9}}
.sub{{color:#52606d;margin:0}} ol{{margin:2px 0;padding-left:16px}} li{{margin:2px 0}}
.stake{{font-weight:600}} .meta{{color:#52606d}}
table{{border-collapse:collapse;width:100%}} th,td{{padding:2px 4px;border-bottom:1px solid #e4e7eb;text-align:left;
vertical-align:top;overflow-wrap:anywhere}} td.num,th.num{{text-align:right;white-space:nowrap}}
td.mail{{font-size:9px}} td.who{{white-space:nowrap}}
.good{{color:#067647}} .bad{{color:#b42318}} .note{{color:#7b8794}}
"""
FIT_SCRIPT = f"""<script>
(() => {{ const h = document.body.scrollHeight;
  if (h > {A4_HEIGHT_PX}) document.body.style.zoom = ({A4_HEIGHT_PX} / h * 0.98).toFixed(3); }})();
</script>"""
"""Scales the brief down when it is taller than one A4 page, so it prints on one page, whole."""


def _brief_actions(runs: list[NotebookRun]) -> str:
    every = recorded_actions(runs)
    ranked = every[:BRIEF_ACTIONS]
    if not ranked:
        return f'<p>{t("No analysis has an action for you this month.")}</p>'
    items = "".join(f'<li>{html.escape(row["sentence"])} <span class="stake">{html.escape(money_text(row))}</span>'
                    f'<span class="meta"> · {html.escape(t("page {number}", number=run.name[:2]))}</span></li>'
                    for row, run in ranked)
    rest = len(every) - len(ranked)
    more = f'<p class="meta">{t("… and {count} smaller in the pack.", count=rest)}</p>' if rest > 0 else ""
    return f"<ol>{items}</ol>{more}"


def _brief_figures(runs: list[NotebookRun]) -> str:
    figures = {key: payload for run in runs for key, payload in run.headlines.items()}
    keys = [k for k in KPI_ORDER if k in figures] + sorted(k for k in figures if k not in KPI_ORDER)
    if not keys:
        return f'<p>{t("No headline figures were recorded.")}</p>'
    rows = []
    for key in keys:
        payload = figures[key]
        unit = payload.get("unit", "")
        year_ago = payload.get("year_ago")
        verdict = headlines.compare(payload, against="year").verdict if year_ago is not None else ""
        change = format_change(payload.get("value"), year_ago, unit=unit, change=payload.get("change", ""))
        rows.append(
            f'<tr><td>{html.escape(t(payload.get("label") or key))}</td>'
            f'<td class="num">{format_value(payload.get("value"), unit, missing=payload.get("missing") or "")}</td>'
            f'<td class="num">{format_value(year_ago, unit) if year_ago is not None else ""}</td>'
            f'<td class="num {verdict}">{change}</td></tr>')
    return (f'<table><thead><tr><th>{t("Figure")}</th><th class="num">{t("This month")}</th><th class="num">'
            f'{t("Same month last year")}</th><th class="num">{t("Change on the year")}</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _first_reason(text: Any) -> str:
    """The call list's first reason for a person (the pack's list has them all)."""
    reasons = [part.strip() for part in str(text or "").split(";") if part.strip()]
    if not reasons:
        return ""
    if len(reasons) == 1:
        return reasons[0]
    return t("{reason} (+{count} more)", reason=reasons[0], count=len(reasons) - 1)


def _brief_calls(runs: list[NotebookRun]) -> str:
    recorded = next((run.tables[FOLLOW_UP_TABLE] for run in runs if FOLLOW_UP_TABLE in run.tables), None)
    rows = (recorded or {}).get("rows", [])[:BRIEF_CALLS]
    if not rows:
        return f'<p>{t("Nobody needs a follow-up this week.")}</p>'
    unit = (recorded or {}).get("units", {}).get("money_at_stake", "")
    body = "".join(
        f'<tr><td class="who">{html.escape(str(row.get("name") or ""))}</td>'
        f'<td class="mail">{html.escape(str(row.get("email") or ""))}</td>'
        f'<td class="num">{numbers.amount(row["money_at_stake"]) if row.get("money_at_stake") is not None else ""}</td>'
        f'<td>{html.escape(_first_reason(row.get("reasons")))}</td></tr>' for row in rows)
    return (f'<table><thead><tr><th>{t("Name")}</th><th>{t("E-mail")}</th><th class="num">'
            f'{t("Money at stake ({unit})", unit=html.escape(unit))}</th>'
            f'<th>{t("Why")}</th></tr></thead><tbody>{body}</tbody></table>')


def brief_html(period: Period, runs: list[NotebookRun]) -> str:
    """The brief as one HTML page for A4 (see the module notes)."""
    title = html.escape(t("CRM brief {month}", month=numbers.period(period.start, period.end)))
    return f"""<!DOCTYPE html>
<html lang="{html_lang()}"><head><meta charset="utf-8"><title>{title}</title>
<style>{BRIEF_CSS}</style></head><body>
<h1>{title}</h1>
<p class="sub">{t("{start} to {end} · the whole pack: index.html or pack.pdf", start=period.start.isoformat(),
                  end=period.end.isoformat())}</p>
<h2>{t("Actions this month")}</h2>{_brief_actions(runs)}
<h2>{t("Headline figures")}</h2>{_brief_figures(runs)}
<h2>{t("Whom to contact this week (the first {count})", count=BRIEF_CALLS)}</h2>{_brief_calls(runs)}
{FIT_SCRIPT}</body></html>
"""


# -- the pack --------------------------------------------------------------------------------------------

PACK_CSS = """<style>
@page{size:A4;margin:12mm 10mm 14mm;@bottom-center{content:PAGE_NUMBERS;
font:9px system-ui,sans-serif;color:#52606d}}
section.pack-page{break-before:page} nav.pack-nav{display:none}
body.jp-Notebook{max-width:none;padding:0;margin:0;width:718px}
.jp-OutputArea-output,div.table-box{overflow:visible!important;max-width:100%}
table.for-people,.jp-RenderedHTMLCommon table{width:100%!important;table-layout:auto;font-size:7.5px!important}
table.for-people td,table.for-people th,.jp-RenderedHTMLCommon td,.jp-RenderedHTMLCommon th{min-width:0!important;
max-width:none!important;white-space:normal!important;overflow-wrap:break-word;padding:1px 3px!important}
table.for-people td.num{white-space:nowrap!important} table.for-people td.long{width:25%}
.jp-OutputArea-output img{max-width:100%!important;height:auto}
tr,img{break-inside:avoid} h1,h2,h3{break-after:avoid}
ol.contents{font-size:13px;line-height:1.8}
</style>"""
"""On paper: each page of the pack starts a sheet, tables wrap to the sheet's width (every column
kept), page numbers at the bottom (``PAGE_NUMBERS``: their words in the pack's language). The body is laid out at the sheet's printable width (190 mm)."""
FIT_TABLES = """<script>
document.querySelectorAll('table').forEach(t => {
  const limit = document.body.getBoundingClientRect().width, wide = t.getBoundingClientRect().width;
  if (wide > limit) t.style.zoom = (limit / wide * 0.99).toFixed(3); });
</script>"""
"""Shrinks a table still wider than the sheet once wrapped (many columns of long words) until it
fits, so no column is cut and no word broken."""

_HEAD = re.compile(r"<head>(.*?)</head>", re.S)
_MAIN = re.compile(r"<main>(.*?)</main>", re.S)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


def pack_html(period: Period, runs: list[NotebookRun]) -> str:
    """Every page of ``runs`` (with a page) as one HTML document for print: a contents list, then
    the pages in order, appendices unfolded, their scripts left out."""
    pages = [run for run in runs if run.html is not None and run.html.exists()]
    head, parts, contents = "", [], []
    for run in pages:
        text = run.html.read_text(encoding="utf-8")
        if not head and (found := _HEAD.search(text)):
            head = _SCRIPT.sub("", found.group(1))
        body = _MAIN.search(text)
        content = body.group(1) if body else ""
        content = content.replace('<details class="appendix"', '<details class="appendix" open')
        title = re.search(r"<title>(.*?)</title>", text, re.S)
        name = html.unescape(title.group(1)).split(" · ")[0] if title else run.name
        anchor = f"page-{run.name}"
        contents.append(f'<li><a href="#{anchor}">{html.escape(run.name[:2])} · {html.escape(name)}</a></li>')
        parts.append(f'<section class="pack-page" id="{anchor}">{content}</section>')
    title = html.escape(t("CRM report {month}", month=numbers.period(period.start, period.end)))
    page_numbers = t('"page " counter(page) " of " counter(pages)')
    return (f'<!DOCTYPE html>\n<html lang="{html_lang()}"><head>{head}{PACK_CSS.replace("PAGE_NUMBERS", page_numbers)}'
            f'<title>{title}</title></head><body class="jp-Notebook"><main><h1>{title}</h1>'
            f'<p>{t("{start} to {end}. Contents:", start=period.start.isoformat(), end=period.end.isoformat())}</p>'
            f'<ol class="contents">{"".join(contents)}</ol>{"".join(parts)}</main>{FIT_TABLES}</body></html>\n')


# -- printing --------------------------------------------------------------------------------------------


def print_pdf(page: Path, pdf: Path, *, browser: str) -> None:
    """Print the HTML file ``page`` to ``pdf`` with headless Chromium (``browser``); raises
    :class:`subprocess.SubprocessError` or OSError when it fails or writes nothing."""
    with tempfile.TemporaryDirectory(prefix="crm-chromium-") as profile:
        subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={pdf.resolve()}",
                        page.resolve().as_uri()], capture_output=True, timeout=PRINT_SECONDS, check=True)
    if not pdf.exists() or pdf.stat().st_size == 0:
        raise OSError(f"Chromium wrote no PDF for {page.name}")


def write_pdfs(result: ReportResult) -> PdfResult:
    """Write ``brief.pdf`` and ``pack.pdf`` into the pack of ``result`` (see the module notes)."""
    browser = chromium()
    if browser is None:
        return PdfResult(message="No PDFs were written: headless Chromium is not installed "
                                 "(apt-get install chromium); the HTML pack is complete.")
    written = []
    with tempfile.TemporaryDirectory(prefix=".crm-pdf-", dir=result.out_dir) as work:
        folder = Path(work)
        for name, text in ((BRIEF_FILE, brief_html(result.period, result.runs)),
                           (PACK_FILE, pack_html(result.period, result.runs))):
            source = write_text(folder / Path(name).with_suffix(".html").name, text)
            try:
                print_pdf(source, folder / name, browser=browser)
            except (OSError, subprocess.SubprocessError) as exc:
                return PdfResult(written, f"{name} was not written: Chromium could not print it ({exc}). "
                                          "The HTML pack is complete; render again to retry.")
            written.append(place(folder / name, result.out_dir / name))
    return PdfResult(written)
