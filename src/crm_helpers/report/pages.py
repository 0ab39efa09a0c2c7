"""The pages of a pack: one executed notebook as an HTML page, the record of how it ran, and
the pack's owner-only file modes. Shared by the runner, the index and the share writer."""

from __future__ import annotations

import functools

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from crm_helpers.ingest import inbox
from crm_helpers.store.files import write_text
from crm_helpers.store.periods import Period
from crm_helpers.report import headlines

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



@functools.lru_cache(maxsize=2)
def _html_exporter(exclude_input: bool):
    """One exporter per view and process, reused for every page (its templates load once);
    validated once after all preprocessors instead of after each of them."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.optimistic_validation = True
    exporter.exclude_input = exclude_input
    exporter.exclude_input_prompt = exclude_input
    exporter.exclude_output_prompt = exclude_input
    return exporter


PAGE_CSS = """<style>
.jp-RenderedText[data-mime-type="text/plain"]{font-family:var(--jp-content-font-family,system-ui,sans-serif);
font-size:var(--jp-content-font-size1,14px);line-height:1.5}
.jp-OutputArea-output.jp-RenderedText[data-mime-type="text/plain"] pre{font-family:inherit;font-size:1em;
white-space:pre-wrap;word-break:normal;overflow-wrap:break-word}
</style>"""
"""Added to every page: a sentence a notebook prints reads as text, not code, in the page's font
and wrapped between words (the lab template sets it in monospace and breaks lines inside words)."""


def write_html(notebook: nbformat.NotebookNode, path: Path, *, exclude_input: bool = False) -> None:
    """Export ``notebook`` to a self-contained HTML file (images inline), without the outputs that
    record for the index (:func:`crm_helpers.report.headlines.page_outputs`), with :data:`PAGE_CSS`."""
    body, _ = _html_exporter(exclude_input).from_notebook_node(headlines.page_outputs(notebook))
    write_text(path, body.replace("</head>", PAGE_CSS + "\n</head>", 1))



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
