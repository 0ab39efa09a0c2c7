"""Share mode: a copy of a rendered pack for people outside the company.

Code cells are hidden and every personal value (names, e-mails, phones, free-text notes and
comments) is replaced by a stable pseudonym, in the HTML pages, the executed notebooks and
every CSV file of ``<pack>/share/``. Called after the pack is rendered (the CLI's ``--share``);
it reads the pack, never the runner. Like the pack, ``share/`` is written into a fresh folder and
swapped in whole (:func:`crm_helpers.store.files.fresh_folder`): a failed write (a full disk)
leaves the previous ``share/`` as it was.
"""

from __future__ import annotations

import copy
import csv
import io
import os
from pathlib import Path
from typing import Any

import nbformat

from crm_helpers.errors import CrmError
from crm_helpers.store.connection import open_db, owner_only_umask
from crm_helpers.store.files import UnsafeWriteError, fresh_folder, remove_stale_partials, write_failure, write_text
from crm_helpers.store.safe_csv import write_safe_rows
from crm_helpers.report.glossary import write_glossary
from crm_helpers.report.index import index_html
from crm_helpers.report.pages import SHARE_FOLDER, NotebookRun, ReportResult, owner_only, write_html
from crm_helpers.report.privacy import Masker

HIDDEN_CODE = "# code hidden in the shared copy"


class ShareError(CrmError):
    """The shared copy could not be written; the previous ``share/`` is unchanged."""


def _mask_value(value: Any, masker: Masker) -> Any:
    if isinstance(value, str):
        return masker.mask(value)
    if isinstance(value, list):
        return [_mask_value(v, masker) for v in value]
    if isinstance(value, dict):
        return {k: _mask_value(v, masker) for k, v in value.items()}
    return value


def mask_notebook(notebook: nbformat.NotebookNode, masker: Masker) -> nbformat.NotebookNode:
    """A copy with code hidden and personal data masked in every output and markdown cell."""
    masked = copy.deepcopy(notebook)
    masked.metadata.pop("papermill", None)  # holds the parameters, i.e. the local store path
    for cell in masked.cells:
        if cell.cell_type == "code":
            cell.source = HIDDEN_CODE
            for output in cell.get("outputs", []):
                for key in ("text", "traceback", "evalue"):
                    if key in output:
                        output[key] = _mask_value(output[key], masker)
                data = output.get("data", {})
                for mime in list(data):
                    if not mime.startswith("image/"):
                        data[mime] = _mask_value(data[mime], masker)
        else:
            cell.source = masker.mask(cell.source)
    return masked


def mask_csv(source: Path, target: Path, *, masker: Masker) -> Path:
    """Write ``source`` (a CSV of the pack) to ``target`` with every cell masked on its own: a cell is
    read as the spreadsheet reads it (quotes undone), so ``"Jo ""JJ"" Smith"`` is masked like any
    name; written back with :func:`write_safe_rows` (formulas neutralized, owner-only)."""
    rows = csv.reader(io.StringIO(source.read_text(encoding="utf-8-sig"), newline=""))
    return write_safe_rows(target, ([masker.mask(cell) for cell in row] for row in rows))


def write_share_pack(result: ReportResult, db_path: str | os.PathLike[str]) -> Path:
    """Write ``<pack>/share/`` from the rendered pack ``result``; returns its ``index.html``.

    Owner-only like the pack (the owner decides what to send). Written whole or not at all:
    :class:`ShareError` when it could not be written (the previous ``share/`` is then unchanged)."""
    share_dir = result.out_dir / SHARE_FOLDER
    with owner_only_umask():
        remove_stale_partials(result.out_dir)  # left by a share writer that was killed
        masker = Masker.from_db(open_db(db_path))
        try:
            with fresh_folder(share_dir) as work:
                _write_share(result, work, masker)
                owner_only(work)
        except (OSError, UnsafeWriteError) as exc:
            reason = write_failure(exc)
            kept = f"the previous {share_dir} is unchanged" if share_dir.is_dir() else "no shared copy was written"
            raise ShareError(f"{reason}: the shared copy was not written ({kept}); the pack in {result.out_dir} "
                             "was. Fix that and render again with --share.") from None
    return share_dir / "index.html"


def _write_share(result: ReportResult, work: Path, masker: Masker) -> None:
    """The masked copy of every page, notebook and CSV of ``result``, its index and glossary, into ``work``."""
    runs: list[NotebookRun] = []
    for run in result.runs:
        nb_path = work / run.notebook.name
        html_path: Path | None = None
        if run.notebook.exists():
            masked = mask_notebook(nbformat.read(str(run.notebook), as_version=4), masker)
            write_text(nb_path, nbformat.writes(masked) + "\n")
            html_path = nb_path.with_suffix(".html")
            write_html(masked, html_path, exclude_input=True, period_label=result.period.label)
        runs.append(NotebookRun(run.name, nb_path, html_path, run.ok, run.seconds,
                                masker.mask(run.error), _mask_value(run.headlines, masker),
                                flags=_mask_value(run.flags, masker), tables=_mask_value(run.tables, masker)))
    for listing in sorted(p for p in result.out_dir.glob("*.csv") if not p.is_symlink()):  # the lists pages link
        mask_csv(listing, work / listing.name, masker=masker)
    write_text(work / "index.html", index_html(result.period, runs, title_suffix=" (shared copy)"))
    write_glossary(work, f"Glossary of the CRM report {result.period.label}")
