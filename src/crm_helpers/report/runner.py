"""The monthly report pack: every ``notebooks/NN_*.ipynb`` executed with papermill for one month.

``render_report()`` writes into ``reports/YYYY-MM/``:

- ``NN_name.ipynb``: the executed notebook, the immutable record of the run (papermill keeps
  its parameters in the metadata);
- ``NN_name.html``: the owner's page, code hidden (``with_code=True`` keeps it: the analyst's
  view), plots embedded as images so it works offline and as an e-mail attachment;
- ``glossary.html``: one plain definition per term the pages use (:mod:`crm_helpers.report.glossary`);
- ``index.html`` (:mod:`.index`): the month's headline figures and follow-up queue, read back from
  what the notebooks recorded with :mod:`crm_helpers.report.headlines`, and links to every notebook.

The masked ``share/`` copy is written afterwards by :func:`crm_helpers.report.share.write_share_pack`
(the CLI calls it); the runner and the share writer never import each other.

Only notebooks 00 and 01 write to the store (imports). The one other write, the month's segment
snapshots that notebook 02 compares, is made here before the analysis notebooks run
(:data:`STORE_STEPS`), so the analysis notebooks only read.

The pages hold customers' names and e-mails, so the pack is owner-only like the store: folders
0700, files 0600 (``share/`` too; the owner decides what to send).

The pack is written whole or not at all: it is rendered into a fresh sibling folder
(``reports/.crm-partial-<pid>-YYYY-MM``, see :func:`crm_helpers.store.files.fresh_folder`; a
re-render with ``only=`` first copies the previous pack's files into it, ``share/`` is always
carried over) and swapped in place of the previous pack when every file is written. When a write
fails (a full disk, a file size limit) the fresh folder is removed, the previous pack is left
exactly as it was and :class:`ReportError` says so. A notebook that fails for its own reasons (a
cell raises) is part of the new pack as today: its executed notebook shows the error, and the index
marks it failed (the previous good page is not kept, since it described other data).

Notebooks run in parallel worker processes; one notebook's failure does not lose the others.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import nbformat

from crm_helpers.errors import CrmError
from crm_helpers.i18n import DEFAULT, set_language, t
from crm_helpers.store import config
from crm_helpers.ingest import inbox
from crm_helpers.analyses import segmentation
from crm_helpers.store.periods import Period
from crm_helpers.store.connection import open_db, owner_only_umask
from crm_helpers.store.files import (DISK_FULL, UnsafeWriteError, copy_files, fresh_folder, is_disk_full,
                                     remove_stale_partials, write_failure, write_text)
from crm_helpers.store.pack_scrub import remember_report_folder
from crm_helpers.report import headlines, numbers
from crm_helpers.report.glossary import write_glossary
from crm_helpers.report.index import index_html
from crm_helpers.report.pages import (SHARE_FOLDER, NotebookRun, ReportResult, owner_only, read_summary,
                                      section_anchor, write_html)

STANDARD_PARAMETERS = ("db_path", "period_start", "period_end", "output_dir", "lang")
"""Injected by the runner into every notebook that declares them."""

NOT_IN_PACK = "00_"
"""Notebooks named so are never rendered into the pack (the desk)."""
FIRST_NOTEBOOKS = ("00", "01")
"""Notebooks that may write to the store (imports): they run alone before the parallel rest while
their inbox holds a file not imported yet (:func:`runs_alone`)."""


def _segment_snapshots(db_path: str, period: Period) -> None:
    """Store the RFM segments as of the period's last day, and of the previous month's last day
    unless that month was recorded already (notebook 02 shows who moved between the two)."""
    db = open_db(db_path)
    segmentation.snapshot_month(db, period.end)
    segmentation.snapshot_month(db, period.previous_month().end, replace=False)


STORE_STEPS: dict[str, Callable[[str, Period], None]] = {"02_segmentation": _segment_snapshots}
"""Store writes the runner makes, after notebooks 00/01 and before the notebook (by name) that
reads them, so that only the import notebooks write to the store themselves."""


def prepare_store(db_path: str, period: Period, *, names: list[str]) -> dict[str, str]:
    """Run the :data:`STORE_STEPS` of the notebooks named ``names`` (stems); returns ``{name: error}``
    for the steps that failed (their notebooks are then reported as failed, not run)."""
    errors = {}
    for name, step in STORE_STEPS.items():
        if name in names:
            try:
                step(db_path, period)
            except Exception as exc:  # one notebook's preparation must not sink the pack
                errors[name] = _last_lines(exc)
    return errors


class ReportError(CrmError):
    """The report cannot be rendered at all (no notebooks, unknown parameter, no data)."""


def discover_notebooks(notebooks_dir: Path | None = None, only: list[str] | None = None) -> list[Path]:
    """The pack's notebooks: ``NN_*.ipynb`` in name order, optionally only those whose NN is listed.

    ``00_*`` notebooks are not part of the pack (``00_desk.ipynb`` is the owner's forms, see ``make desk``).
    """
    folder = notebooks_dir or config.NOTEBOOKS_DIR
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if not p.name.startswith(NOT_IN_PACK))
    if only:
        wanted = {o.strip().zfill(2) for o in only if o.strip()}
        unknown = wanted - {p.name[:2] for p in found}
        if unknown:
            raise ReportError(
                f"no notebook numbered {', '.join(sorted(unknown))}; the pack has "
                + ", ".join(p.name[:2] for p in found)
            )
        found = [p for p in found if p.name[:2] in wanted]
    if not found:
        raise ReportError(f"no notebooks named NN_*.ipynb in {folder}")
    return found


def declared_parameters(notebook: Path) -> dict[str, str]:
    """``{name: default as written}`` of the notebook's cell tagged ``parameters``."""
    import papermill as pm

    return {name: info["default"] for name, info in pm.inspect_notebook(str(notebook)).items()}


def notebook_parameters(
    notebook: Path, base: dict[str, Any], *, overrides: dict[str, Any], declared: dict[str, str] | None = None
) -> dict[str, Any]:
    """The parameters to inject: the standard ones the notebook declares, plus its overrides."""
    declared = declared if declared is not None else declared_parameters(notebook)
    params = {k: v for k, v in base.items() if k in declared}
    params.update({k: v for k, v in overrides.items() if k in declared})
    return params


def check_overrides(notebooks: list[Path], overrides: dict[str, Any]) -> dict[Path, dict[str, str]]:
    """Reject override names no notebook declares, listing the valid ones. Returns declarations."""
    declared = {nb: declared_parameters(nb) for nb in notebooks}
    valid = sorted({name for d in declared.values() for name in d} - set(STANDARD_PARAMETERS))
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ReportError(
            f"unknown parameter(s) {', '.join(unknown)}; the notebooks accept: {', '.join(valid)}"
        )
    return declared



def kernel_config():
    """Kernel settings for papermill: CurveZMQ-encrypted transport when the kernel offers it, and
    a kernel that keeps its own log lines off the owner's terminal.

    The kernel and the runner talk over local TCP; ipykernel ≥ 7.3 warns on every start when that
    traffic is plain text, and the notebooks carry customers' personal data. jupyter_client stops
    every kernel with SIGINT first; when that lands while the kernel still finishes its last
    message, ipykernel logs "ERROR | KeyboardInterrupt caught in kernel", which is no error of the
    report. A notebook that really fails is reported by the runner with its error.
    """
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport_encryption = "auto"
    config.NotebookClient.extra_arguments = ["--IPKernelApp.log_level=CRITICAL"]
    return config


KERNEL_START_FAILURE = "Kernel died before replying to kernel_info"
"""nbclient's error when a kernel never started (seen when two kernels raced for one TCP port)."""


_ERRNO = re.compile(r"\[Errno (\d+)\] ([^:]*)(?:: '(.*)')?")
"""How an OSError a notebook cell met reads in papermill's error (``[Errno 28] No space left on device: 'x.csv'``)."""


def disk_full(exc: BaseException) -> OSError | None:
    """The "no room for the data" OSError behind ``exc`` (:data:`crm_helpers.store.files.DISK_FULL`):
    ``exc`` itself, or the one a notebook's cell met (papermill passes it on by name and text); else None."""
    if is_disk_full(exc):
        return exc  # type: ignore[return-value]
    found = _ERRNO.match(str(getattr(exc, "evalue", "") or ""))
    if found and int(found[1]) in DISK_FULL:
        return OSError(int(found[1]), found[2], found[3])
    return None


def translate_markdown(notebook: nbformat.NotebookNode) -> None:
    """Put each markdown cell of ``notebook`` (headings, the sentences that open sections) in the
    language in use, one block at a time (blocks are separated by a blank line): a heading by its
    text (``## Customers probably lost`` by "Customers probably lost", so the index's section names
    and the page's headings share one entry), any other block by its whole text. A block without an
    entry stays as written. A translated section heading keeps the anchor of its English text too
    (:func:`~crm_helpers.report.pages.section_anchor`), where the index's actions and figures link.
    English: nothing changes."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        blocks = []
        for block in cell.source.strip().split("\n\n"):
            hashes, space, heading = block.partition(" ")
            if space and hashes and set(hashes) == {"#"} and "\n" not in block:
                translated = t(heading.strip())
                anchor = (f'<a id="{section_anchor(heading.strip())}"></a>\n\n'
                          if hashes == "##" and translated != heading.strip() else "")
                blocks.append(f"{anchor}{hashes} {translated}")
            else:
                blocks.append(t(block.strip()))
        cell.source = "\n\n".join(blocks)


def _month_label(period_start: str) -> str:
    """The month of a page's period as its title and back link show it (``2026-11``; Chinese
    ``2026年11月``); blank without a period."""
    try:
        return numbers.month(dt.date.fromisoformat(period_start[:10]))
    except ValueError:
        return period_start[:7]


def _execute_one(notebook: str, out_dir: str, parameters: dict[str, Any], with_code: bool = False, *,
                 lang: str = DEFAULT) -> NotebookRun:
    """Run one notebook and export its HTML (code hidden unless ``with_code``) in the language
    ``lang``. Runs in a worker process. Any failure of the notebook is its run's error; only a full
    disk (or file size limit), met by the notebook, papermill or the page, raises (as OSError): then
    the pack cannot be written."""
    import papermill as pm

    set_language(lang)

    started = time.perf_counter()
    source = Path(notebook)
    out_nb = Path(out_dir) / source.name
    out_html = out_nb.with_suffix(".html")
    error = ""
    # papermill saves the whole notebook before and after every cell unless told not to (06: about
    # 80 writes of a notebook growing to 0.6 MB, ~1 s); it is written once at the end, or when a cell
    # fails. The earlier run's copy goes first, so a kernel that dies leaves no stale record behind.
    out_nb.unlink(missing_ok=True)
    out_html.unlink(missing_ok=True)  # a page copied from the previous pack (only=) is this run's or none
    for attempt in range(2):
        try:
            pm.execute_notebook(
                str(source), str(out_nb), parameters=parameters, kernel_name=config.KERNEL_NAME,
                cwd=str(source.parent), progress_bar=False, log_output=False, config=kernel_config(),
                request_save_on_cell_execute=False,
            )
            error = ""
        except Exception as exc:  # PapermillExecutionError, a dead kernel, ...: keep the others going
            if (full := disk_full(exc)) is not None:
                raise full from None
            error = _last_lines(exc)
        if not (error and attempt == 0 and KERNEL_START_FAILURE in error):
            break
        # jupyter_client picks the kernel's TCP ports before the kernel binds them, so kernels
        # started at the same moment by other processes can take the same port: start once more
    html_path: Path | None = None
    record: dict[str, dict[str, Any]] = {}
    flags: list[dict[str, Any]] = []
    tables: dict[str, dict[str, Any]] = {}
    files: list[dict[str, Any]] = []
    if out_nb.exists():
        try:
            executed = nbformat.read(str(out_nb), as_version=4)
            record = headlines.read(executed)
            flags = headlines.read_flags(executed)
            tables = headlines.read_tables(executed)
            files = read_summary(executed)
            if lang != DEFAULT:
                translate_markdown(executed)
            write_html(executed, out_html, exclude_input=not with_code,
                       period_label=_month_label(str(parameters.get("period_start", ""))))
            html_path = out_html
        except Exception as exc:
            if is_disk_full(exc):
                raise
            error = error or _last_lines(exc)
    return NotebookRun(source.stem, out_nb, html_path, not error, time.perf_counter() - started, error, record,
                       files, flags=flags, tables=tables)


def earlier_run(notebook: Path, out_dir: Path) -> NotebookRun | None:
    """The page of ``notebook`` already rendered in ``out_dir`` by an earlier run, or None.

    Read back from the executed copy (its headlines, its papermill duration and error flag), so an
    index re-written after ``only=`` still links and summarises every page of the month.
    """
    executed_path = out_dir / notebook.name
    if not executed_path.exists():
        return None
    try:
        executed = nbformat.read(str(executed_path), as_version=4)
    except Exception:  # a damaged copy is left out rather than sinking the index
        return None
    meta = executed.metadata.get("papermill", {})
    failed = bool(meta.get("exception"))
    html_path = executed_path.with_suffix(".html")
    return NotebookRun(
        notebook.stem, executed_path, html_path if html_path.exists() else None, not failed,
        float(meta.get("duration") or 0.0), "failed in an earlier run; re-render it" if failed else "",
        headlines.read(executed), [], rendered=False, flags=headlines.read_flags(executed),
        tables=headlines.read_tables(executed),
    )



THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _one_thread_per_kernel() -> None:
    """Worker initializer: kernels started from here use one BLAS/OpenMP thread each.

    With one notebook per core, multi-threaded BLAS and OpenMP only make the kernels wait on
    each other (model fits ran up to ten times slower on a busy 2-core machine).
    """
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


def previous_seconds(notebook: Path, out_dir: Path) -> float:
    """How long ``notebook`` took in its latest earlier run, in seconds of wall time (0 if never).

    Read from papermill's ``duration`` in the executed copy in ``out_dir`` (a re-render of the
    same month) or else in the newest sibling month folder.
    """
    candidates = [out_dir / notebook.name]
    if out_dir.parent.is_dir():
        months = sorted((d for d in out_dir.parent.iterdir()
                         if d.is_dir() and d != out_dir and not d.name.startswith(".")), reverse=True)
        candidates += [d / notebook.name for d in months]
    for path in candidates:
        if path.exists():
            try:
                duration = nbformat.read(str(path), as_version=4).metadata.get("papermill", {}).get("duration")
            except Exception:  # an unreadable old copy only costs the ordering
                continue
            if isinstance(duration, (int, float)):
                return float(duration)
    return 0.0


def code_cells(notebook: Path) -> int:
    """How many code cells ``notebook`` has (0 if it cannot be read): the stand-in for its run time
    before it has ever run (on the demo the order by code cells is the order by time)."""
    try:
        return sum(cell.cell_type == "code" for cell in nbformat.read(str(notebook), as_version=4).cells)
    except Exception:  # an unreadable notebook fails later, with its own message
        return 0


def longest_first(notebooks: list[Path], out_dir: Path) -> list[Path]:
    """The notebooks in the order the pool should start them: longest previous run first.

    Starting the long ones first keeps one core from waiting on a long notebook that started
    last (longest-processing-time scheduling). Notebooks that never ran (a first pack) follow,
    most code cells first (:func:`code_cells`); ties keep name order.
    """
    return sorted(notebooks, key=lambda nb: (-previous_seconds(nb, out_dir), -code_cells(nb), nb.name))


def runs_alone(notebook: Path, parameters: dict[str, Any], *, db_path: str | os.PathLike[str]) -> bool:
    """Whether ``notebook`` must run before the others: it is numbered 00/01 (it imports the inbox)
    and its inbox holds a file not imported yet, so the store may change under the other notebooks.

    With nothing waiting it only reads, like the rest, and runs in the pool beside them (one core
    less idle while it runs). The inbox is its ``inbox_dir`` parameter (relative to the notebook's
    folder, where papermill runs it), else :func:`crm_helpers.store.config.inbox_dir`.
    """
    if notebook.name[:2] not in FIRST_NOTEBOOKS:
        return False
    folder = notebook.parent / parameters["inbox_dir"] if parameters.get("inbox_dir") else config.inbox_dir()
    if not folder.is_dir():
        return False
    db = open_db(db_path)
    try:
        return bool(inbox.waiting_files(db, folder))
    finally:
        db.close()


def _last_lines(exc: BaseException, n: int = 8) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[-n:])


def render_report(
    db_path: str | os.PathLike[str],
    period: Period,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    only: list[str] | None = None,
    jobs: int | None = None,
    with_code: bool = False,
    overrides: dict[str, Any] | None = None,
    notebooks_dir: Path | None = None,
    progress: bool = True,
    lang: str = "",
) -> ReportResult:
    """Render the pack for ``period`` into ``out_dir`` (default ``reports/YYYY-MM``), in the
    language ``lang`` (blank: the ``CRM_LANG`` setting, else English; :mod:`crm_helpers.i18n`).

    ``jobs`` notebooks run at once (default: the number of cores). The HTML pages hide the code
    (the owner's pack) unless ``with_code`` (the analyst's view); the executed notebooks always keep
    it. Everything is written owner-only (see the module docstring). Returns a
    :class:`ReportResult`; check ``.ok``. Raises :class:`ReportError` before running anything
    when the notebooks or parameters are wrong, and after, when the pack could not be written (a
    full disk): then the previous pack is left exactly as it was (see the module docstring).
    """
    lang = set_language(lang or config.report_language())
    notebooks = discover_notebooks(notebooks_dir, only)
    overrides = overrides or {}
    declared = check_overrides(notebooks, overrides)
    target = Path(out_dir) if out_dir else config.reports_dir() / period.start.strftime("%Y-%m")
    with owner_only_umask():  # inherited by the workers and kernels, so every file is born 0600
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(target.parent)  # left by a render that was killed
        check_pack_folder(target)
        remember_report_folder(db_path, target, period=period.label)  # before any page: `crm forget` finds it
        try:
            with fresh_folder(target) as work:
                # only=: the month's other pages stay; always: share/ and files of the owner's own
                copy_files(target, work, folders=(SHARE_FOLDER,), skip=() if only else PAGE_SUFFIXES)
                runs = _render_into(work, period, db_path=db_path, notebooks=notebooks, previous=target,
                                    declared=declared, overrides=overrides, jobs=jobs, with_code=with_code,
                                    progress=progress, lang=lang)
                if only:  # keep the month's other pages, rendered earlier (copied above), in the index
                    rendered = {r.name for r in runs}
                    kept = (earlier_run(nb, work) for nb in discover_notebooks(notebooks_dir)
                            if nb.stem not in rendered)
                    runs += [run for run in kept if run is not None]
                runs.sort(key=lambda r: r.name)
                write_text(work / "index.html", index_html(period, runs))
                write_glossary(work, t("Glossary of the CRM report {month}",
                                       month=numbers.period(period.start, period.end)))
                owner_only(work)
        except (OSError, UnsafeWriteError) as exc:
            raise ReportError(not_written(exc, period=period, target=target)) from None
    for run in runs:  # the pages now live in the swapped-in folder
        run.notebook = target / run.notebook.name
        run.html = target / run.html.name if run.html else None
    return ReportResult(period, target, runs, target / "index.html")


PAGE_SUFFIXES = (".ipynb", ".html", ".csv", ".pdf")
"""What a render writes into a pack: executed notebooks, pages, the index and glossary, the lists, the
PDFs (printed by the CLI after the render: a full render without them leaves no stale ones)."""
SQLITE_HEADER = b"SQLite format 3\x00"


def check_pack_folder(target: Path) -> None:
    """Refuse (:class:`ReportError`) to render into a folder that is not a pack's: one holding a
    folder other than ``share/`` or a database (``--out data`` or ``--out ~``), since a render
    replaces the folder whole. A new folder, or one of files only, is a pack's."""
    if not target.is_dir() or target.is_symlink():
        return
    foreign = []
    for entry in sorted(target.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            if entry.name != SHARE_FOLDER and not entry.name.startswith("."):
                foreign.append(entry.name + "/")
        elif entry.is_file() and not entry.is_symlink():
            with open(entry, "rb") as handle:
                if handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER:
                    foreign.append(entry.name)
    if foreign:
        raise ReportError(f"{target} is not a report pack's folder (it holds {', '.join(foreign[:5])}); a render "
                          "replaces its folder whole, so nothing was written. Give --out a new folder.")


def not_written(exc: BaseException, *, period: Period, target: Path) -> str:
    """What the owner reads when the pack for ``period`` could not be written to ``target``."""
    reason = write_failure(exc, disk_full=disk_full(exc) is not None)
    kept = f"the previous pack in {target} is unchanged" if target.is_dir() else "nothing was written"
    return f"{reason}: the report for {period.label} was not written; {kept}. Fix that and render again."


def _render_into(work: Path, period: Period, *, db_path: str | os.PathLike[str], notebooks: list[Path],
                 previous: Path, declared: dict[Path, dict[str, str]], overrides: dict[str, Any],
                 jobs: int | None, with_code: bool, progress: bool, lang: str = DEFAULT) -> list[NotebookRun]:
    """Run ``notebooks`` for ``period`` with their pages written into the folder ``work``; the
    import notebooks first and alone when they have files to import, then the store's preparation
    steps, then the rest in ``jobs`` worker processes, longest first by their times in the pack
    ``previous``. Raises OSError when the disk is full."""
    from tqdm.auto import tqdm

    base = {
        "db_path": str(Path(db_path).resolve()),
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "output_dir": str(work.resolve()),
        "lang": lang,
    }
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(notebooks)))
    tasks = {nb: notebook_parameters(nb, base, overrides=overrides, declared=declared[nb]) for nb in notebooks}
    runs: list[NotebookRun] = []
    bar = tqdm(total=len(notebooks), desc=f"report {period.label}", unit="notebook", disable=not progress)
    # notebooks numbered 00/01 import and prepare data: they run alone, before the others read
    first = {nb: p for nb, p in tasks.items() if runs_alone(nb, p, db_path=base["db_path"])}
    rest = {nb: tasks[nb] for nb in longest_first([nb for nb in tasks if nb not in first], previous)}
    for nb, params in first.items():
        bar.set_postfix_str(nb.stem)
        runs.append(_execute_one(str(nb), str(work), params, with_code, lang=lang))
        bar.update()
    unprepared = prepare_store(base["db_path"], period, names=[nb.stem for nb in rest])
    for nb in [nb for nb in rest if nb.stem in unprepared]:
        runs.append(NotebookRun(nb.stem, work / nb.name, None, False, 0.0,
                                f"the store could not be prepared for it: {unprepared[nb.stem]}"))
        del rest[nb]
        bar.update()
    if jobs == 1:
        for nb, params in rest.items():
            bar.set_postfix_str(nb.stem)
            runs.append(_execute_one(str(nb), str(work), params, with_code, lang=lang))
            bar.update()
    elif rest:
        # spawned, not forked: a process that already talked to a kernel holds a ZeroMQ context, and a
        # forked copy of it can hang for ever sending its first message to a new kernel (seen in the suite)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_one_thread_per_kernel) as pool:
            futures = [pool.submit(_execute_one, str(nb), str(work), params, with_code, lang=lang)
                       for nb, params in rest.items()]
            try:
                for future in as_completed(futures):
                    run = future.result()
                    bar.set_postfix_str(run.name)
                    runs.append(run)
                    bar.update()
            except OSError:  # the disk is full: the pack cannot be written, do not start the others
                pool.shutdown(cancel_futures=True)
                raise
    bar.close()
    return runs
