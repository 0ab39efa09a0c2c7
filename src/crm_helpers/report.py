"""The monthly report pack: every ``notebooks/NN_*.ipynb`` executed with papermill for one month.

``render_report()`` writes into ``reports/YYYY-MM/``:

- ``NN_name.ipynb``: the executed notebook, the immutable record of the run (papermill keeps
  its parameters in the metadata);
- ``NN_name.html``: the owner's page, code hidden (``with_code=True`` keeps it: the analyst's
  view), plots embedded as images so it works offline and as an e-mail attachment;
- ``glossary.html``: one plain definition per term the pages use (:mod:`crm_helpers.glossary`);
- ``index.html``: the month's headline figures (read back from what the notebooks recorded with
  :mod:`crm_helpers.headlines`), the follow-up queue, and links to every notebook;
- with ``share=True`` also ``share/``: the same pack with code hidden and personal data masked,
  the only part meant to leave the machine.

The pages hold customers' names and e-mails, so the pack is owner-only like the store: folders
0700, files 0600 (``share/`` too; the owner decides what to send).

Notebooks run in parallel worker processes; one notebook's failure does not lose the others.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: a kernel that only needs a constant of this module
    import nbformat  # (scoring's FOLLOW_UP_FILE) would pay 1-5 s for nbformat's jsonschema

from . import config, headlines, inbox
from .glossary import GLOSSARY_FILE, write_glossary
from .periods import Period
from .store import owner_only_umask

STANDARD_PARAMETERS = ("db_path", "period_start", "period_end", "output_dir")
"""Injected by the runner into every notebook that declares them."""

FOLLOW_UP_FILE = "follow_up_queue.csv"
NOT_IN_PACK = "00_"
"""Notebooks named so are never rendered into the pack (the desk)."""
FIRST_NOTEBOOKS = ("00", "01")
"""Notebooks that may write to the store (imports): they run alone before the parallel rest while
their inbox holds a file not imported yet (:func:`runs_alone`)."""

KPI_ORDER = [
    "revenue", "paid_orders", "active_customers", "new_customers", "returning_customers",
    "lost_customers", "repeat_rate", "nps", "csat", "best_campaign_lift",
    "total_expected_clv",
]
"""Headline keys shown first on the index, in this order; any other recorded key follows."""


class ReportError(Exception):
    """The report cannot be rendered at all (no notebooks, unknown parameter, no data)."""


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
    """Per inbox file, what the import notebook did with it (see :func:`crm_helpers.inbox.show`)."""
    rendered: bool = True
    """False for a page of an earlier run kept in the index by ``only=`` (not re-rendered now)."""
    flags: list[dict[str, Any]] = field(default_factory=list)
    """What the notebook flagged for "Needs attention" (see :func:`crm_helpers.headlines.flag`)."""


@dataclass
class ReportResult:
    """What ``render_report`` wrote."""

    period: Period
    out_dir: Path
    runs: list[NotebookRun]
    index: Path
    share_index: Path | None = None

    @property
    def ok(self) -> bool:
        """Every notebook rendered by this run succeeded (pages kept from earlier runs do not count)."""
        return not self.failed

    @property
    def failed(self) -> list[NotebookRun]:
        return [r for r in self.runs if r.rendered and not r.ok]


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
    notebook: Path, base: dict[str, Any], overrides: dict[str, Any], declared: dict[str, str] | None = None
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


def write_html(notebook: nbformat.NotebookNode, path: Path, *, exclude_input: bool = False) -> None:
    """Export ``notebook`` to a self-contained HTML file (images inline)."""
    body, _ = _html_exporter(exclude_input).from_notebook_node(notebook)
    path.write_text(body, encoding="utf-8")


def kernel_config():
    """Kernel settings for papermill: CurveZMQ-encrypted transport when the kernel offers it.

    The kernel and the runner talk over local TCP; ipykernel ≥ 7.3 warns on every start when that
    traffic is plain text, and the notebooks carry customers' personal data.
    """
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport_encryption = "auto"
    return config


KERNEL_START_FAILURE = "Kernel died before replying to kernel_info"
"""nbclient's error when a kernel never started (seen when two kernels raced for one TCP port)."""


def _execute_one(notebook: str, out_dir: str, parameters: dict[str, Any], with_code: bool = False) -> NotebookRun:
    """Run one notebook and export its HTML (code hidden unless ``with_code``). Runs in a worker
    process; never raises."""
    import nbformat
    import papermill as pm

    started = time.perf_counter()
    source = Path(notebook)
    out_nb = Path(out_dir) / source.name
    out_html = out_nb.with_suffix(".html")
    error = ""
    for attempt in range(2):
        try:
            pm.execute_notebook(
                str(source), str(out_nb), parameters=parameters, kernel_name=config.KERNEL_NAME,
                cwd=str(source.parent), progress_bar=False, log_output=False, config=kernel_config(),
            )
            error = ""
        except Exception as exc:  # PapermillExecutionError, a dead kernel, ...: keep the others going
            error = _last_lines(exc)
        if not (error and attempt == 0 and KERNEL_START_FAILURE in error):
            break
        # jupyter_client picks the kernel's TCP ports before the kernel binds them, so kernels
        # started at the same moment by other processes can take the same port: start once more
    html_path: Path | None = None
    record: dict[str, dict[str, Any]] = {}
    flags: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    if out_nb.exists():
        try:
            executed = nbformat.read(str(out_nb), as_version=4)
            record = headlines.read(executed)
            flags = headlines.read_flags(executed)
            files = inbox.read_summary(executed)
            write_html(executed, out_html, exclude_input=not with_code)
            html_path = out_html
        except Exception as exc:
            error = error or _last_lines(exc)
    return NotebookRun(source.stem, out_nb, html_path, not error, time.perf_counter() - started, error, record,
                       files, flags=flags)


def earlier_run(notebook: Path, out_dir: Path) -> NotebookRun | None:
    """The page of ``notebook`` already rendered in ``out_dir`` by an earlier run, or None.

    Read back from the executed copy (its headlines, its papermill duration and error flag), so an
    index re-written after ``only=`` still links and summarises every page of the month.
    """
    import nbformat

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
    )


def owner_only(folder: Path) -> None:
    """Take group and other permissions off ``folder`` and everything in it: folders 0700,
    files 0600. Entries of other users are left as they are."""
    for path in (folder, *folder.rglob("*")):
        info = path.lstat()
        if info.st_uid == os.geteuid() and not path.is_symlink():
            os.chmod(path, 0o700 if path.is_dir() else 0o600)


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
    import nbformat

    candidates = [out_dir / notebook.name]
    if out_dir.parent.is_dir():
        months = sorted((d for d in out_dir.parent.iterdir() if d.is_dir() and d != out_dir), reverse=True)
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


def longest_first(notebooks: list[Path], out_dir: Path) -> list[Path]:
    """The notebooks in the order the pool should start them: longest previous run first.

    Starting the long ones first keeps one core from waiting on a long notebook that started
    last (longest-processing-time scheduling); ties and first runs keep name order.
    """
    return sorted(notebooks, key=lambda nb: (-previous_seconds(nb, out_dir), nb.name))


def runs_alone(notebook: Path, parameters: dict[str, Any], db_path: str | os.PathLike[str]) -> bool:
    """Whether ``notebook`` must run before the others: it is numbered 00/01 (it imports the inbox)
    and its inbox holds a file not imported yet, so the store may change under the other notebooks.

    With nothing waiting it only reads, like the rest, and runs in the pool beside them (one core
    less idle while it runs). The inbox is its ``inbox_dir`` parameter (relative to the notebook's
    folder, where papermill runs it), else :func:`crm_helpers.config.inbox_dir`.
    """
    if notebook.name[:2] not in FIRST_NOTEBOOKS:
        return False
    folder = notebook.parent / parameters["inbox_dir"] if parameters.get("inbox_dir") else config.inbox_dir()
    if not folder.is_dir():
        return False
    from .store import open_db

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
    share: bool = False,
    with_code: bool = False,
    overrides: dict[str, Any] | None = None,
    notebooks_dir: Path | None = None,
    progress: bool = True,
) -> ReportResult:
    """Render the pack for ``period`` into ``out_dir`` (default ``reports/YYYY-MM``).

    ``jobs`` notebooks run at once (default: the number of cores). The HTML pages hide the code
    (the owner's pack) unless ``with_code`` (the analyst's view); the executed notebooks always keep
    it. Everything is written owner-only (see the module docstring). Returns a
    :class:`ReportResult`; check ``.ok``. Raises :class:`ReportError` before running anything
    when the notebooks or parameters are wrong.
    """
    from tqdm.auto import tqdm

    notebooks = discover_notebooks(notebooks_dir, only)
    overrides = overrides or {}
    declared = check_overrides(notebooks, overrides)
    target = Path(out_dir) if out_dir else config.reports_dir() / period.start.strftime("%Y-%m")
    with owner_only_umask():  # inherited by the workers and kernels, so every file is born 0600
        target.mkdir(parents=True, exist_ok=True)
        base = {
            "db_path": str(Path(db_path).resolve()),
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
            "output_dir": str(target.resolve()),
        }
        jobs = max(1, min(jobs or os.cpu_count() or 1, len(notebooks)))
        tasks = {nb: notebook_parameters(nb, base, overrides, declared[nb]) for nb in notebooks}
        runs: list[NotebookRun] = []
        bar = tqdm(total=len(notebooks), desc=f"report {period.label}", unit="notebook", disable=not progress)
        # notebooks numbered 00/01 import and prepare data: they run alone, before the others read
        first = {nb: p for nb, p in tasks.items() if runs_alone(nb, p, base["db_path"])}
        rest = {nb: tasks[nb] for nb in longest_first([nb for nb in tasks if nb not in first], target)}
        for nb, params in (first.items() if jobs > 1 else tasks.items()):
            bar.set_postfix_str(nb.stem)
            runs.append(_execute_one(str(nb), str(target), params, with_code))
            bar.update()
        if jobs > 1 and rest:
            with ProcessPoolExecutor(max_workers=jobs, initializer=_one_thread_per_kernel) as pool:
                futures = [pool.submit(_execute_one, str(nb), str(target), params, with_code)
                           for nb, params in rest.items()]
                for future in as_completed(futures):
                    run = future.result()
                    bar.set_postfix_str(run.name)
                    runs.append(run)
                    bar.update()
        bar.close()
        if only:  # keep the month's other pages, rendered earlier, in the index
            rendered = {r.name for r in runs}
            kept = (earlier_run(nb, target) for nb in discover_notebooks(notebooks_dir) if nb.stem not in rendered)
            runs += [run for run in kept if run is not None]
        runs.sort(key=lambda r: r.name)
        index = target / "index.html"
        index.write_text(index_html(period, runs, target), encoding="utf-8")
        write_glossary(target, f"Glossary of the CRM report {period.label}")
        result = ReportResult(period, target, runs, index)
        if share:
            from .share import write_share_pack

            result.share_index = write_share_pack(result, db_path)
    owner_only(target)  # the folder and files of earlier runs, made before this rule
    return result


def _format_value(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (int, float)):
        if unit == "%":
            return f"{value:,.1f} %"
        # up to two decimals, as many as the recorded value carries (NPS 23.7, not 23.70)
        text = f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.2f}".rstrip("0")
        return f"{text} {unit}".strip()
    return html.escape(str(value))


def _format_change(value: Any, previous: Any, unit: str, change: str = "") -> str:
    """The move against the previous month: in points for shares and fixed scales, else in %."""
    if not isinstance(value, (int, float)) or not isinstance(previous, (int, float)):
        return ""
    delta = value - previous
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    if (change or ("points" if unit == "%" else "relative")) == "points":
        return f"{arrow} {delta:+,.1f} pts"
    if previous:
        return f"{arrow} {delta / abs(previous) * 100:+,.1f} %"
    return f"{arrow} {delta:+,.0f}"


VERDICT_TITLES = {
    "good": "a real move, good for the business",
    "bad": "a real move, bad for the business",
    "noise": "within its noise: could be chance, not a change",
    "neutral": "",
}


def _change_cell(payload: dict[str, Any], previous: dict[str, Any] | None) -> str:
    """The change column: the arrow coloured by :func:`headlines.compare`'s verdict."""
    text = _format_change(payload.get("value"), (previous or {}).get("value"), payload.get("unit", ""),
                          payload.get("change", ""))
    if not text:
        return '<td class="num"></td>'
    verdict = headlines.compare(payload, previous).verdict
    title = VERDICT_TITLES[verdict]
    extra = '<div class="note">within noise</div>' if verdict == "noise" else ""
    return (f'<td class="num change {verdict}"' + (f' title="{title}"' if title else "") + f">{text}{extra}</td>")


def _value_cell(payload: dict[str, Any]) -> str:
    """The value, with its 95 % range underneath when one was recorded."""
    unit = payload.get("unit", "")
    text = _format_value(payload.get("value"), unit)
    bounds = headlines.interval(payload)
    if bounds and payload.get("value") is not None:
        digits = 0 if isinstance(payload["value"], int) else 1  # a count's range in whole numbers
        low, high = (_format_value(round(b, digits) if digits else int(round(b)), unit) for b in bounds)
        text += f'<div class="note">95 % range {low} to {high}</div>'
    return f'<td class="num">{text}</td>'


def _latest_figures(runs: list[NotebookRun]) -> dict[str, tuple[dict[str, Any], NotebookRun]]:
    """Every recorded figure by key, with the run that recorded it."""
    return {key: (payload, run) for run in runs for key, payload in run.headlines.items()}


def _page_link(run: NotebookRun) -> str:
    return (run.html or run.notebook).name


def _kpi_rows(runs: list[NotebookRun]) -> list[str]:
    figures = _latest_figures(runs)
    keys = [k for k in KPI_ORDER if k in figures]
    keys += sorted(k for k in figures if k not in KPI_ORDER and not k.endswith("_prev"))
    rows = []
    for key in keys:
        payload, run = figures[key]
        previous = figures.get(f"{key}_prev", (None, run))[0]
        note = f'<div class="note">{html.escape(payload.get("note") or "")}</div>' if payload.get("note") else ""
        rows.append(
            f'<tr><td><a href="{html.escape(_page_link(run))}">{html.escape(payload.get("label") or key)}</a>{note}</td>'
            f"{_value_cell(payload)}{_change_cell(payload, previous)}</tr>"
        )
    return rows


ATTENTION_MAX, ATTENTION_MIN = 7, 3
"""How many sentences "Needs attention" holds at most, and at least (filled with real good news)."""


def _move_sentence(payload: dict[str, Any], previous: dict[str, Any]) -> str:
    rose = payload["value"] > previous["value"]
    unit = payload.get("unit", "")
    return (f"{payload.get('label') or payload['key']} {'rose' if rose else 'fell'} from "
            f"{_format_value(previous['value'], unit)} to {_format_value(payload['value'], unit)}, "
            "more than its usual month-to-month noise.")


def needs_attention(runs: list[NotebookRun]) -> list[tuple[str, str]]:
    """The index's "Needs attention" list: ``(sentence, page)`` pairs, at most :data:`ATTENTION_MAX`.

    What the notebooks flagged (:func:`crm_helpers.headlines.flag`), and every headline figure
    that moved the bad way by more than its noise (:func:`crm_helpers.headlines.compare`), ranked
    by the money at stake: the flag's own ``money``; for a figure in money, its change; for a count,
    its change times the figure's recorded ``worth`` (money per unit). Below :data:`ATTENTION_MIN`
    items, real good moves follow, then one sentence saying that nothing else moved beyond noise.
    """
    items: list[tuple[float, str, str]] = []
    good: list[tuple[float, str, str]] = []
    for run in runs:
        page = _page_link(run)
        items += [(float(f.get("money") or 0.0), f["sentence"], page) for f in run.flags]
        for key, payload in run.headlines.items():
            previous = run.headlines.get(f"{key}_prev")
            if key.endswith("_prev") or previous is None:
                continue
            change = headlines.compare(payload, previous)
            if change.verdict not in ("good", "bad"):
                continue
            worth = 1.0 if payload.get("unit") not in ("", "%") else float(payload.get("worth") or 0.0)
            entry = (abs(change.delta or 0.0) * worth, _move_sentence(payload, previous), page)
            (items if change.verdict == "bad" else good).append(entry)
    ranked = sorted(items, key=lambda i: -i[0])[:ATTENTION_MAX]
    ranked += sorted(good, key=lambda i: -i[0])[:max(0, ATTENTION_MIN - len(ranked))]
    chosen = [(sentence, page) for _, sentence, page in ranked]
    if len(chosen) < ATTENTION_MIN:
        chosen.append(("Every other headline figure moved within its usual noise: nothing else needs you this "
                       "month.", "#kpis"))
    return chosen


def _attention_html(runs: list[NotebookRun]) -> str:
    entries = "".join(f'<li><a href="{html.escape(page)}">{html.escape(sentence)}</a></li>'
                      for sentence, page in needs_attention(runs))
    return f'<section id="attention"><h2>Needs attention</h2><ol>{entries}</ol></section>'


def _follow_up_html(out_dir: Path, limit: int = 25) -> str:
    """The follow-up queue notebook 03 wrote, whole (it holds its ``top_n``, 20 by default, so the
    index lists as many as the headline promises), never more than ``limit`` rows."""
    path = out_dir / FOLLOW_UP_FILE
    if not path.exists():
        return "<p>No follow-up queue this month.</p>"
    import pandas as pd

    frame = pd.read_csv(path).head(limit)
    if frame.empty:
        return "<p>Nobody needs a follow-up this week.</p>"
    cols = [c for c in ("name", "email", "reasons", "last_order", "last_contact") if c in frame.columns]
    return frame[cols].to_html(index=False, na_rep="", classes="queue", border=0, escape=True)


INDEX_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1f2933}
h1{margin-bottom:.2em} .sub{color:#52606d;margin-top:0}
table{border-collapse:collapse;width:100%;margin:1em 0} th,td{padding:.45em .6em;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap} .note{color:#7b8794;font-size:.85em}
.failed{color:#b42318} pre{background:#fef3f2;padding:.6em;overflow:auto;font-size:.85em}
a{color:#0b69a3}
.good{color:#067647} .bad{color:#b42318} .noise{color:#9aa5b1}
#attention ol{padding-left:1.4em} #attention li{margin:.35em 0}
"""


def index_html(period: Period, runs: list[NotebookRun], out_dir: Path, *, title_suffix: str = "") -> str:
    """The pack's ``index.html``: headline figures with change, follow-up queue, notebook links."""
    kpis = _kpi_rows(runs)
    kpi_table = (
        '<table id="kpis"><thead><tr><th>Figure</th><th>This month</th><th>vs previous month</th></tr></thead><tbody>'
        + "".join(kpis) + "</tbody></table>"
    ) if kpis else "<p>No headline figures were recorded.</p>"
    items = []
    for run in runs:
        target = _page_link(run)
        status = '<span class="failed">failed</span>' if not run.ok else (
            f"{run.seconds:.1f} s" if run.rendered else "rendered in an earlier run")
        detail = "" if run.ok else f"<pre>{html.escape(run.error)}</pre>" + (
            f'<a href="{html.escape(run.notebook.name)}">executed notebook</a>' if run.notebook.exists() else ""
        )
        items.append(f'<li><a href="{html.escape(target)}">{html.escape(run.name)}</a> — {status}{detail}</li>')
    generated = dt.date.today().isoformat()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CRM report {html.escape(period.label)}{title_suffix}</title>
<style>{INDEX_CSS}</style></head><body>
<h1>CRM report {html.escape(period.label)}{html.escape(title_suffix)}</h1>
<p class="sub">{period.start.isoformat()} to {period.end.isoformat()} · rendered {generated} ·
<a href="{GLOSSARY_FILE}">glossary: what each word means</a></p>
{_attention_html(runs)}
<h2>Headline figures</h2>
<p class="sub">Arrows against the previous month: <span class="good">green</span> is good for the business,
<span class="bad">red</span> is bad, <span class="noise">grey</span> is within the figure's usual noise (it could be
chance, so it is not a change).</p>
{kpi_table}
<h2>Whom to contact this week</h2>
{_follow_up_html(out_dir)}
<h2>Notebooks</h2>
<ul>{''.join(items)}</ul>
</body></html>
"""
