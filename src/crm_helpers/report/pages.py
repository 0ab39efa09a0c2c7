"""The pages of a pack: one executed notebook as an HTML page, the record of how it ran, and
the pack's owner-only file modes. Shared by the runner, the index and the share writer."""

from __future__ import annotations

import functools
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from crm_helpers.i18n import html_lang, t
from crm_helpers.ingest import inbox
from crm_helpers.store.files import write_text
from crm_helpers.store.periods import Period
from crm_helpers.report import headlines, summaries, tables

SHARE_FOLDER = "share"
"""The pack's subfolder for the masked copy (:mod:`crm_helpers.report.share`); a re-render keeps it."""

@dataclass
class NotebookRun:
    """The outcome of one notebook in the pack."""

    name: str
    notebook: Path
    html: Path | None
    ok: bool
    seconds: float
    error: str = ""
    headlines: dict[str, dict[str, Any]] = field(default_factory=dict)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    """Per inbox file, what the import notebook did with it (see :func:`crm_helpers.ingest.inbox.show`)."""
    rendered: bool = True
    """False for a page of an earlier run kept in the index by ``only=`` (not re-rendered now)."""
    flags: list[dict[str, Any]] = field(default_factory=list)
    """What the notebook flagged for "Needs attention" (see :func:`crm_helpers.report.headlines.flag`)."""
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Tables the notebook recorded for the index, by key (see :func:`crm_helpers.report.headlines.record_table`)."""


@dataclass
class ReportResult:
    """What ``render_report`` wrote."""

    period: Period
    out_dir: Path
    runs: list[NotebookRun]
    index: Path

    @property
    def ok(self) -> bool:
        """Every notebook rendered by this run succeeded (pages kept from earlier runs do not count)."""
        return not self.failed

    @property
    def failed(self) -> list[NotebookRun]:
        return [r for r in self.runs if r.rendered and not r.ok]



PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head -%}
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{{ nb.metadata.get('title', resources['metadata']['name']) | escape_html_keep_quotes }}</title>
{%- if resources.global_content_filter.include_input -%}
{% for css in resources.inlining.css %}<style>{{ css }}</style>{% endfor %}
{%- endif -%}
{%- endblock html_head -%}
"""
"""The page's HTML: JupyterLab's markup (nbconvert's ``lab`` template) without its 265 KB of CSS,
its require.js, MathJax and Mermaid scripts (no page uses them; they were fetched from the web);
the code's colours only when the code is shown. :data:`PAGE_CSS` styles what the pages use."""


@functools.lru_cache(maxsize=2)
def _html_exporter(exclude_input: bool):
    """One exporter per view and process, reused for every page (its templates load once);
    validated once after all preprocessors instead of after each of them."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"crm_page.html.j2": PAGE_TEMPLATE})],
                            template_file="crm_page.html.j2")
    exporter.optimistic_validation = True
    exporter.exclude_input = exclude_input
    exporter.exclude_input_prompt = exclude_input
    exporter.exclude_output_prompt = exclude_input
    return exporter


PAGE_CSS = """<style>
:root{--ink:#1f2933;--muted:#52606d;--line:#e4e7eb;--link:#0b69a3;--code-bg:#f5f7f9;
--jp-mirror-editor-keyword-color:#008000;--jp-mirror-editor-number-color:#080;--jp-mirror-editor-def-color:#00f;
--jp-mirror-editor-variable-color:#212121;--jp-mirror-editor-punctuation-color:#05a;--jp-mirror-editor-operator-color:#a2f;
--jp-mirror-editor-comment-color:#408080;--jp-mirror-editor-string-color:#ba2121;--jp-mirror-editor-builtin-color:#008000;
--jp-mirror-editor-meta-color:#a2f;--jp-mirror-editor-error-color:#f00;--jp-cell-editor-background:var(--code-bg)}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body.jp-Notebook{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;font-size:14px;
line-height:1.6;color:var(--ink);padding:0 1em;max-width:1100px;margin:0 auto;box-sizing:border-box;background:#fff}
main{max-width:100%} a{color:var(--link);text-decoration:none} a:hover{text-decoration:underline}
a.anchor-link{display:none}
h1{font-size:2em;line-height:1.25;margin:.8em 0 .4em;font-weight:500} h2{font-size:1.55em;margin:1.4em 0 .5em;font-weight:500}
h3{font-size:1.2em;margin:1.2em 0 .4em;font-weight:600} h4{font-size:1em;margin:1em 0 .4em}
p,ul,ol{margin:.5em 0} code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;background:var(--code-bg);
padding:0 .2em;border-radius:3px} blockquote{margin:.5em 0;padding-left:1em;border-left:3px solid var(--line);color:var(--muted)}
.jp-Collapser,.jp-OutputPrompt,.jp-InputPrompt{display:none}
.jp-Cell{padding:.1em 0} .jp-Cell,.jp-OutputArea-child,.jp-Cell-outputWrapper{min-width:0;max-width:100%}
.jp-OutputArea-output{max-width:100%;overflow-x:auto;margin:.2em 0} .jp-OutputArea-output img{max-width:100%;height:auto}
.jp-RenderedText pre,.jp-OutputArea-output pre{font-family:inherit;font-size:1em;line-height:1.5;margin:0;
white-space:pre-wrap;word-break:normal;overflow-wrap:break-word}
.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]{background:#fdd;padding:.2em .5em}
.jp-RenderedHTMLCommon table{border-collapse:collapse;margin:.5em 0;font-size:.92em;line-height:1.35}
.jp-RenderedHTMLCommon th,.jp-RenderedHTMLCommon td{padding:.3em .6em;border-bottom:1px solid var(--line);
text-align:right;vertical-align:top} .jp-RenderedHTMLCommon th{font-weight:600}
.jp-RenderedHTMLCommon tbody tr:nth-child(even){background:#f7f8fa}
.jp-InputArea{margin:.4em 0} .jp-InputArea-editor{background:var(--code-bg);border:1px solid var(--line);border-radius:4px;
padding:.4em .6em;overflow-x:auto} .jp-InputArea-editor pre{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:13px;line-height:1.45}
nav.pack-nav{font-size:14px;padding:.6em 0;border-bottom:1px solid var(--line);margin-bottom:.5em;line-height:1.6}
nav.pack-nav a{margin-right:1em} nav.pack-nav details{display:inline} nav.pack-nav ol{margin:.3em 0;padding-left:1.4em}
div.page-summary{font-size:1.08em;background:#f0f6fb;border-left:4px solid var(--link);padding:.4em .8em;margin:.4em 0 1em}
div.page-summary p{margin:.2em 0}
table.for-people td:not(.num){min-width:6em}
details.appendix{margin:2em 0;padding:.5em 1em;border:1px solid var(--line);border-radius:6px;background:#fafbfc}
details.appendix>summary{font-size:1.2em;font-weight:600;cursor:pointer}
@media (max-width:600px){body.jp-Notebook{padding:0 .5em} h1{font-size:1.6em} h2{font-size:1.3em}}
@page{margin:.5in}
@media print{nav.pack-nav{display:none} details.appendix{border:none}
 .jp-OutputArea-output{overflow:visible} table.for-people{font-size:.8em}
 table.for-people td,table.for-people th{max-width:none} tr,img{break-inside:avoid}}
</style>"""
"""Every style of a page (about 4 KB, in place of JupyterLab's 265 KB): the page's font and
headings; a sentence a notebook prints reads as text, not code, wrapped between words; the page
fits a 390 px phone (a wide table or plot scrolls inside its own box, never the page); the
navigation bar, the summary under the title and the folded appendix; the code's colours in the
analyst's view; in print, every column of a table on the paper."""

APPENDIX_TAG = "appendix"
"""The cell tag of analyst material (model checks, parameters, calibration): on the owner's page
it moves, in its order, to the folded "How this was computed" section at the end."""
APPENDIX_TITLE = "How this was computed"
INDEX_FILE, GLOSSARY_LINK = "index.html", "glossary.html"
STANDARD_SETTINGS = ("db_path", "period_start", "period_end", "output_dir", "lang")
"""Parameters every page gets from the runner: the store and the month, not settings of the page."""


def page_title(notebook: nbformat.NotebookNode) -> str:
    """The page's title: the text of its first Markdown heading ("Notebook" when it has none)."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return "Notebook"


def section_anchor(heading: str) -> str:
    """The id nbconvert gives a Markdown heading (its text, spaces as hyphens), as a link's fragment."""
    from urllib.parse import quote

    return quote(heading.strip().replace(" ", "-"), safe="?/:@!$&'()*+,;=")


def sections(notebook: nbformat.NotebookNode, *, appendix: bool = False) -> list[str]:
    """The page's section headings (level 2) in order; those of the appendix cells only when ``appendix``."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown" or (APPENDIX_TAG in cell.metadata.get("tags", [])) != appendix:
            continue
        found += [line[3:].strip() for line in cell.source.splitlines() if line.startswith("## ")]
    return found


def settings(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """The page's settings as it ran: the defaults of its ``parameters`` cell, updated by what the
    runner injected, without :data:`STANDARD_SETTINGS` (only plain literals; {} when unreadable)."""
    import ast

    found: dict[str, Any] = {}
    for tag in ("parameters", "injected-parameters"):
        for cell in notebook.cells:
            if cell.cell_type == "code" and tag in cell.metadata.get("tags", []):
                try:
                    tree = ast.parse(cell.source)
                except SyntaxError:
                    continue
                for node in tree.body:
                    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                        try:
                            found[node.targets[0].id] = ast.literal_eval(node.value)
                        except ValueError:
                            continue
    return {k: v for k, v in found.items() if k not in STANDARD_SETTINGS}


def _setting(value: Any) -> str:
    """A setting's value in words: blank (None) is the store's own rule, true/false yes/no."""
    if value is None:
        return t("the store's default")
    if isinstance(value, bool):
        return t("yes") if value else t("no")
    return tables.cell(value) if isinstance(value, (int, float)) else repr(value)


def _settings_html(values: dict[str, Any]) -> str:
    if not values:
        return ""
    rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(_setting(v))}</td></tr>"
                   for k, v in values.items())
    return (f'<h3>{t("Settings of this page")}</h3><p>'
            + t("The values this page ran with (change one with {command}).",
                command="<code>crm report --param name=value</code>") + "</p>"
            f'<div class="table-box"><table class="for-people"><tbody>{rows}</tbody></table></div>')


def _nav_html(notebook: nbformat.NotebookNode, *, period_label: str) -> str:
    """The bar at the top of a page: back to the index, the glossary, and the page's sections."""
    entries = "".join(f'<li><a href="#{section_anchor(h)}">{html.escape(h)}</a></li>' for h in sections(notebook))
    contents = f"<details><summary>{t('On this page')}</summary><ol>{entries}</ol></details>" if entries else ""
    back = t("← CRM report {month}", month=period_label) if period_label else t("← CRM report")
    return (f'<nav class="pack-nav"><a href="{INDEX_FILE}">{html.escape(back)}</a>'
            f'<a href="{GLOSSARY_LINK}">{t("Glossary")}</a>{contents}</nav>')


def owner_order(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, str]:
    """A copy of ``notebook`` with its :data:`APPENDIX_TAG` cells moved to the end, and the id of
    the first of them ("" when it has none)."""
    import copy

    page = copy.deepcopy(notebook)
    tagged = [c for c in page.cells if APPENDIX_TAG in c.metadata.get("tags", [])]
    if not tagged:
        return page, ""
    page.cells = [c for c in page.cells if APPENDIX_TAG not in c.metadata.get("tags", [])] + tagged
    return page, str(tagged[0].get("id", ""))


def _without_summary(page: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``page`` (a copy already) without the summary's output, which :func:`_with_summary` places."""
    for cell in page.cells:
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if summaries.MIME_TYPE not in o.get("data", {})]
    return page


def _with_summary(body: str, lines: tuple[str, ...]) -> str:
    """``body`` with the summary's ``lines`` (one paragraph each) right after the page's title."""
    end = body.find("</h1>")
    if not lines or end < 0:
        return body
    block = '<div class="page-summary" id="summary">' + "".join(f"<p>{html.escape(line)}</p>" for line in lines) + "</div>"
    return body[:end + 5] + "\n" + block + body[end + 5:]


def write_html(notebook: nbformat.NotebookNode, path: Path, *, exclude_input: bool = False,
               period_label: str = "") -> None:
    """Export ``notebook`` to a self-contained HTML file (images inline), without the outputs that
    record for the index (:func:`crm_helpers.report.headlines.page_outputs`), with :data:`PAGE_CSS`.

    The page is titled by its heading and the month (``period_label``), opens with a bar linking
    back to the index and to its sections, and (the owner's view, ``exclude_input``) ends with the
    folded "How this was computed" appendix: the cells tagged :data:`APPENDIX_TAG` and the page's
    settings. The analyst's view (code shown) keeps every cell where it is. The page's summary
    (:mod:`crm_helpers.report.summaries`, displayed by its last cell) opens it, under the title."""
    page = _without_summary(headlines.page_outputs(notebook))
    title = page_title(page)
    page.metadata["title"] = t("{title} · CRM report {month}", title=title, month=period_label) if period_label \
        else title
    first_appendix = ""
    if exclude_input:
        page, first_appendix = owner_order(page)
    body, _ = _html_exporter(exclude_input).from_notebook_node(page)
    # every table an output shows carries the table style (so it looks right in JupyterLab too);
    # the page holds it once, in its head
    body = body.replace(tables.STYLE, "").replace("</head>", PAGE_CSS + "\n" + tables.STYLE + "\n</head>", 1)
    body = re.sub(r"<html[^>]*>", f'<html lang="{html_lang()}">', body, count=1)
    body = body.replace("<main>", "<main>\n" + _nav_html(page, period_label=period_label), 1)
    body = _with_summary(body, summaries.read(notebook))
    if exclude_input:
        found = body.find(f'id="cell-id={first_appendix}"') if first_appendix else -1
        start = body.rfind("<div", 0, found) if found >= 0 else -1  # the first appendix cell's own tag
        extra = _settings_html(settings(notebook))
        if start >= 0:
            body = (body[:start] + f'<details class="appendix" id="appendix"><summary>{t(APPENDIX_TITLE)}</summary>'
                    + extra + "\n" + body[start:])
            body = body.replace("</main>", "</details>\n</main>", 1)
        elif extra:
            body = body.replace("</main>", f'<details class="appendix" id="appendix"><summary>{t(APPENDIX_TITLE)}'
                                f"</summary>{extra}</details>\n</main>", 1)
    write_text(path, body)



def owner_only(folder: Path) -> None:
    """Take group and other permissions off ``folder`` and everything in it: folders 0700,
    files 0600. Entries of other users are left as they are."""
    for path in (folder, *folder.rglob("*")):
        info = path.lstat()
        if info.st_uid == os.geteuid() and not path.is_symlink():
            os.chmod(path, 0o700 if path.is_dir() else 0o600)


def read_summary(notebook: str | nbformat.NotebookNode) -> list[dict[str, Any]]:
    """Per inbox file, what the import notebook did with it, as :func:`crm_helpers.ingest.inbox.show`
    recorded it in the executed notebook ([] if none)."""
    found = headlines.recorded(notebook, inbox.MIME_TYPE)
    return [dict(row) for row in found[0]] if found else []
