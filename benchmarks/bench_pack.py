"""The whole report pack (``render_report``): wall time with 1 and with the default jobs, peak
memory per process, the papermill floor, each notebook's time above it, and a profile.

Each pack runs in a child process (``python -m benchmarks.bench_pack --child ...``) while this
process samples ``/proc`` every 0.1 s: for every process below it (the runner, its worker
processes, the Jupyter kernels) the kernel's own high-water mark of resident memory
(``VmHWM`` in ``/proc/PID/status``) is read until the process ends, so the peak per process is
exact up to the growth of its last 0.1 s. (``getrusage().ru_maxrss`` is no check here: Linux
carries a process's RSS at fork across ``exec``, so every child of a large parent reports at least
the parent's size.)

The floor is a notebook run through the same runner (papermill, kernel start, HTML export) that
does nothing (``empty``) or only opens the workbook like every notebook's first cell
(``imports``: pandas, seaborn, the store); a notebook's time above the floor is its own work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from crm_helpers.store import config

from .results import Row, Section, Timing, load_average, log, plural

ROOT = Path(__file__).resolve().parent.parent
TARGET_DEMO_S = 20.0
TARGET_SCALE_S = 120.0
TARGET_MEMORY_MIB = 2048.0
KERNEL_SPEC = {"name": config.KERNEL_NAME, "display_name": "CRM workbook (.venv)", "language": "python"}


# --------------------------------------------------------------------------- memory sampling
def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _descendants(root: int) -> list[int]:
    kids, out, todo = _children_map(), [], [root]
    while todo:
        pid = todo.pop()
        for child in kids.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def _hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _kind(pid: int, root: int) -> str:
    """``runner`` (the child this process started), ``kernel`` (a Jupyter kernel), ``worker``
    (any other Python process below the runner: the pool's workers), else the program's name."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/stat", "rb") as f:
            ppid = int(f.read().decode(errors="replace").rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return "?"
    if "ipykernel" in cmd:
        return "kernel"
    if ppid == root:
        return "runner"
    if "python" in cmd:
        return "worker"
    return cmd.split(" ", 1)[0].rsplit("/", 1)[-1] or "?"


@dataclass
class MemorySampler:
    """Peak resident memory (MiB) of every process below ``root``, sampled from /proc."""

    root: int
    interval: float = 0.1
    peaks: dict[int, float] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in _descendants(self.root):
                hwm = _hwm_kib(pid)
                if hwm is None:
                    continue
                if pid not in self.kinds:
                    self.order.append(pid)
                if self.kinds.get(pid) != "kernel":
                    # a kernel seen between its fork and its exec still shows its parent's command
                    # line (and memory): asked again until it is a kernel, its peak restarted then
                    kind = _kind(pid, self.root)
                    if kind != self.kinds.get(pid):
                        self.kinds[pid] = kind
                        self.peaks.pop(pid, None)
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), hwm / 1024)
            self._stop.wait(self.interval)

    def __enter__(self) -> "MemorySampler":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def by_kind(self, kind: str) -> list[float]:
        """Peaks of the processes of one kind, in the order they started."""
        return [self.peaks[p] for p in self.order if self.kinds[p] == kind]


# ---------------------------------------------------------------------------------- the child
def _child(db_path: str, start: str, end: str, jobs: int, out_dir: str, notebooks_dir: str | None,
           only: str | None) -> None:
    from crm_helpers.store.periods import Period
    from crm_helpers.report.runner import render_report

    import datetime as dt

    period = Period(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    started = time.perf_counter()
    result = render_report(db_path, period, out_dir=out_dir, jobs=jobs, progress=False,
                           notebooks_dir=Path(notebooks_dir) if notebooks_dir else None,
                           only=only.split(",") if only else None)
    wall = time.perf_counter() - started
    print(json.dumps({"wall": wall, "runs": [{"name": r.name, "seconds": r.seconds, "ok": r.ok, "error": r.error}
                               for r in result.runs]}))


@dataclass
class PackRun:
    wall: float
    runs: list[dict]
    kernels: list[float]
    workers: list[float]
    runner: float

    @property
    def failed(self) -> list[str]:
        return [f"{r['name']}: {r['error'].splitlines()[-1] if r['error'] else '?'}" for r in self.runs if not r["ok"]]


def render_pack(db_path: Path, period: tuple[str, str], jobs: int, out_dir: Path,
                notebooks_dir: Path | None = None, only: list[str] | None = None) -> PackRun:
    """Render the pack in a child process, sampling the memory of every process below it."""
    cmd = [sys.executable, "-m", "benchmarks.bench_pack", "--child", str(db_path), period[0], period[1], str(jobs),
           str(out_dir)]
    if notebooks_dir:
        cmd += ["--notebooks", str(notebooks_dir)]
    if only:
        cmd += ["--only", ",".join(only)]
    with MemorySampler(os.getpid()) as mem:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"report pack run failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return PackRun(data["wall"], data["runs"], mem.by_kind("kernel"), mem.by_kind("worker"),
                   max(mem.by_kind("runner") or [0.0]))


# ---------------------------------------------------------------------------------- notebooks
def _notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = KERNEL_SPEC
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _parameters_cell() -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell('db_path = ""\nperiod_start = ""\nperiod_end = ""')
    cell.metadata["tags"] = ["parameters"]
    return cell


def write_floor_notebooks(folder: Path) -> None:
    """``90_empty.ipynb`` (parameters only) and ``91_imports.ipynb`` (opens the workbook)."""
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(_notebook([nbformat.v4.new_markdown_cell("# Empty"), _parameters_cell()]),
                   str(folder / "90_empty.ipynb"))
    opening = ("from crm_helpers.workbook import open_workbook\n\n"
               "db, period = open_workbook(db_path, period_start, period_end)\nas_of = period.end")
    nbformat.write(_notebook([nbformat.v4.new_markdown_cell("# Imports"), _parameters_cell(),
                              nbformat.v4.new_code_cell(opening)]), str(folder / "91_imports.ipynb"))


def write_profiled_copy(source: Path, folder: Path, stats_path: Path) -> Path:
    """A copy of ``source`` whose kernel runs under cProfile and dumps the stats at the end."""
    nb = nbformat.read(str(source), as_version=4)
    start = nbformat.v4.new_code_cell(
        "import cProfile as _cprofile\n_profiler = _cprofile.Profile()\n_profiler.enable()")
    stop = nbformat.v4.new_code_cell(f"_profiler.disable()\n_profiler.dump_stats({str(stats_path)!r})")
    params = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), 0)
    nb.cells = nb.cells[: params + 1] + [start] + nb.cells[params + 1:] + [stop]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    nbformat.write(nb, str(target))
    return target


# ---------------------------------------------------------------------------------- the part
def _timing(runs: list[PackRun], pick) -> Timing:
    return Timing([pick(r) for r in runs])


def _pack_rows(section: Section, label: str, runs1: list[PackRun], runs_n: list[PackRun], jobs: int,
               target_s: float) -> None:
    wall1, wall_n = _timing(runs1, lambda r: r.wall), _timing(runs_n, lambda r: r.wall)
    section.add(Row(f"{label}: pack, 1 job", wall1))
    section.add(Row(f"{label}: pack, {jobs} jobs (default)", wall_n, reference=wall1, reference_name="1 job",
                    target=f"≤ {target_s:g} s", met=wall_n.median <= target_s))
    every = runs1 + runs_n
    kernel = Timing([max(r.kernels or [0.0]) for r in every])
    section.add(Row(f"{label}: peak memory of the largest kernel", kernel, unit="MiB",
                    target=f"≤ {TARGET_MEMORY_MIB:,.0f} MiB", met=kernel.high <= TARGET_MEMORY_MIB))
    workers = [max(r.workers) for r in runs_n if r.workers]
    if workers:
        section.add(Row(f"{label}: peak memory of a pool worker", Timing(workers), unit="MiB",
                        target=f"≤ {TARGET_MEMORY_MIB:,.0f} MiB", met=max(workers) <= TARGET_MEMORY_MIB))
    section.add(Row(f"{label}: peak memory of the runner process", Timing([r.runner for r in every]), unit="MiB"))


def _per_notebook(section: Section, label: str, runs1: list[PackRun], floor: Timing) -> str:
    """Rows per notebook from the 1-job runs; returns the slowest notebook's name."""
    names = [r["name"] for r in runs1[0].runs]
    slowest, slowest_s = names[0], -1.0
    for i, name in enumerate(names):
        seconds = Timing([r.runs[i]["seconds"] for r in runs1])
        above = Timing([max(s - floor.median, 0.0) for s in seconds.runs])
        memory = [r.kernels[i] for r in runs1 if len(r.kernels) == len(names)]
        mem_note = f"kernel peak {max(memory):,.0f} MiB" if memory else ""
        section.add(Row(f"{label}: {name}, above the floor", above, reference=seconds, reference_name="whole run",
                        note=mem_note))
        if seconds.median > slowest_s:
            slowest, slowest_s = name, seconds.median
    return slowest


def run(demo_db: Path, scale_db: Path | None, period_demo: tuple[str, str], period_scale: tuple[str, str],
        repeats_demo: int, repeats_scale: int, *, profile: bool = True, notebooks_dir: Path | None = None,
        floor_repeats: int = 3) -> Section:
    """The pack benchmark on the demo store and (when given) the scale store."""
    from .bench_import import top_costs

    jobs = os.cpu_count() or 1
    section = Section("pack", "The report pack (`render_report`, every notebook)",
                      busy=f"load average {load_average()} at start")
    with tempfile.TemporaryDirectory(prefix="crm-bench-pack-") as tmp:
        work = Path(tmp)
        floors = work / "floor"
        write_floor_notebooks(floors)
        log(f"papermill floor, {floor_repeats} runs")
        floor_runs = [render_pack(demo_db, period_demo, 1, work / f"floor-out-{k}", notebooks_dir=floors)
                      for k in range(floor_repeats)]
        empty = Timing([r.runs[0]["seconds"] for r in floor_runs])
        imports = Timing([r.runs[1]["seconds"] for r in floor_runs])
        section.add(Row("floor: empty notebook through the runner (kernel start, papermill, HTML)", empty))
        section.add(Row("floor: notebook that only opens the workbook (imports, store, period)", imports,
                        note=f"kernel peak {max(max(r.kernels) for r in floor_runs):,.0f} MiB"))
        stores = [("demo store", demo_db, period_demo, repeats_demo, 1, TARGET_DEMO_S)]
        if scale_db is not None:
            stores.append(("scale store", scale_db, period_scale, repeats_scale, repeats_scale, TARGET_SCALE_S))
        slowest = ("", None, period_demo)
        for label, db, period, repeats, ones, target in stores:
            runs1, runs_n = [], []
            for k in range(repeats):
                log(f"pack on the {label}, {jobs} jobs, run {k + 1}/{repeats}")
                runs_n.append(render_pack(db, period, jobs, work / f"{label}-n-{k}", notebooks_dir=notebooks_dir))
                if k < ones:
                    log(f"pack on the {label}, 1 job, run {k + 1}/{ones}")
                    runs1.append(render_pack(db, period, 1, work / f"{label}-1-{k}", notebooks_dir=notebooks_dir))
            failed = [f"{f} ({setting}, run {k + 1})" for setting, runs in (("1 job", runs1), (f"{jobs} jobs", runs_n))
                      for k, r in enumerate(runs) for f in r.failed]
            if failed:
                section.notes.append(f"**Failed notebooks on the {label}** (the run's time is still counted): "
                                     + "; ".join(failed))
            _pack_rows(section, label, runs1, runs_n, jobs, target)
            name = _per_notebook(section, label, runs1, empty)
            slowest = (name, db, period)
        if profile and slowest[1] is not None:
            name, db, period = slowest
            log(f"profiling {name} on the {'scale' if db == scale_db else 'demo'} store")
            source = (notebooks_dir or config.NOTEBOOKS_DIR) / f"{name}.ipynb"
            stats = work / "notebook.prof"
            profiled = write_profiled_copy(source, work / "profiled", stats)
            render_pack(db, period, 1, work / "profiled-out", notebooks_dir=profiled.parent)
            if stats.exists():
                section.notes.append(
                    f"Where the slowest notebook, `{name}`, spends its time on the "
                    f"{'scale' if db == scale_db else 'demo'} store (cProfile inside its kernel, one run; the first "
                    "table is the package's own functions by cumulative time, the second everything by own time):"
                    f"\n\n{top_costs(stats, n=15)}")
    section.notes.insert(0, (
        f"On the demo store {plural(repeats_demo, 'run')} with the default jobs and 1 with one job; on the scale "
        f"store {plural(repeats_scale, 'run')} of each; the floor {plural(floor_repeats, 'run')}. Per-notebook "
        "times are from the 1-job runs (each includes its kernel start "
        "and HTML export); 'above the floor' subtracts the empty notebook's median. Peak memory per process: "
        "VmHWM sampled from /proc every 0.1 s for every process below the benchmark (see the module "
        "docstring of `benchmarks/bench_pack.py`); the median/min–max is over the runs, the verdict uses "
        "the highest."))
    return section


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=5, metavar=("DB", "START", "END", "JOBS", "OUT"), required=True)
    parser.add_argument("--notebooks")
    parser.add_argument("--only")
    args = parser.parse_args()
    db, start, end, jobs, out = args.child
    _child(db, start, end, int(jobs), out, args.notebooks, args.only)


if __name__ == "__main__":
    main()
