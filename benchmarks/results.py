"""Timings, result rows and the results file.

A figure is the median of several runs with their min–max. Each benchmark part returns a
:class:`Section` (rows plus notes); :func:`write_results` merges the sections of this run into
``results.json`` (so ``--only`` keeps the other parts' last figures) and renders ``RESULTS.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs of one thing."""

    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def low(self) -> float:
        return min(self.runs)

    @property
    def high(self) -> float:
        return max(self.runs)


def measure(fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> tuple[Timing, Any]:
    """Run ``fn`` ``repeats`` times (``setup`` before each run, untimed); the timing and the last result."""
    runs, result = [], None
    for _ in range(max(1, repeats)):
        if setup is not None:
            setup()
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return Timing(runs), result


@dataclass
class Row:
    """One measured figure, its reference and its target.

    ``value`` and ``reference`` are in ``unit`` (seconds unless said otherwise); ``ratio`` is
    value / reference; ``met`` is None where the row has no target.
    """

    measure: str
    value: Timing | None
    unit: str = "s"
    reference: Timing | None = None
    reference_name: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.reference is None or not self.reference.median:
            return None
        return self.value.median / self.reference.median


@dataclass
class Section:
    """The figures of one benchmark part."""

    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measured_at: str = ""
    busy: str = ""  # what else ran on the machine during the measurement, if known

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


# ------------------------------------------------------------------------------ the machine
def machine() -> dict[str, str]:
    """CPU model, cores, memory, Python and library versions, date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    import numpy
    import pandas

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "python": platform.python_version(),
        "numpy / pandas": f"{numpy.__version__} / {pandas.__version__}",
        "sqlite": __import__("sqlite3").sqlite_version,
        "os": platform.platform(),
        "date": dt.datetime.now().isoformat(timespec="minutes"),
        "commit": _git_commit(),
    }


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def load_average() -> str:
    """The 1-minute load average (other work on the machine shows here)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


# ------------------------------------------------------------------------------ the files
def _timing_from(data: dict[str, Any] | None) -> Timing | None:
    return Timing(list(data["runs"])) if data else None


def _row_from(data: dict[str, Any]) -> Row:
    return Row(**{**data, "value": _timing_from(data.get("value")), "reference": _timing_from(data.get("reference"))})


def section_from(data: dict[str, Any]) -> Section:
    return Section(**{**data, "rows": [_row_from(r) for r in data.get("rows", [])]})


def read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_results(sections: list[Section], json_path: Path, md_path: Path, info: dict[str, str],
                  order: list[str], preamble: str = "", appendix: str = "") -> None:
    """Merge this run's sections into ``json_path`` (other sections kept) and render ``md_path``."""
    stored = read_json(json_path)
    by_key = {s["key"]: s for s in stored.get("sections", [])}
    for s in sections:
        by_key[s.key] = asdict(s)
    ordered = [by_key[k] for k in order if k in by_key] + [v for k, v in by_key.items() if k not in order]
    payload = {"machine": info, "sections": ordered}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(info, [section_from(s) for s in ordered], preamble, appendix),
                       encoding="utf-8")


def _fmt_seconds(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:,.0f}"
    if seconds >= 10:
        return f"{seconds:.1f}"
    if seconds >= 0.1:
        return f"{seconds:.2f}"
    return f"{seconds:.3f}"


def fmt(value: float, unit: str) -> str:
    """A figure for the table: seconds with sensible digits, rates and sizes with separators."""
    if unit == "s":
        return _fmt_seconds(value)
    if unit in ("rows/s", "MB", "MiB"):
        return f"{value:,.0f}"
    return f"{value:,.3g}"


def _verdict(row: Row) -> str:
    if row.met is None:
        return ""
    return "met" if row.met else "**missed**"


def render_markdown(info: dict[str, str], sections: list[Section], preamble: str = "", appendix: str = "") -> str:
    lines = ["# Benchmark results", ""]
    if preamble:
        lines += [preamble.strip(), ""]
    lines += ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines.append("")
    for s in sections:
        lines += [f"## {s.title}", ""]
        stamp = f"Measured {s.measured_at}" if s.measured_at else ""
        if s.busy:
            stamp += f"; {s.busy}"
        if stamp:
            lines += [stamp + ".", ""]
        if s.rows:
            lines += ["| measure | runs | median | min–max | unit | reference (median) | ratio | target | verdict |",
                      "|---|---:|---:|---:|---|---|---:|---|---|"]
            for r in s.rows:
                v = r.value
                median = fmt(v.median, r.unit) if v else "—"
                spread = f"{fmt(v.low, r.unit)}–{fmt(v.high, r.unit)}" if v and len(v.runs) > 1 else ""
                ref = r.reference_name
                if r.reference:
                    ref = f"{ref} {fmt(r.reference.median, r.unit)}".strip()
                ratio = f"{r.ratio:.2f}×" if r.ratio is not None else ""
                measure = r.measure + (f" ({r.note})" if r.note else "")
                lines.append(f"| {measure} | {len(v.runs) if v else 0} | {median} | {spread} | {r.unit} | {ref} | "
                             f"{ratio} | {r.target} | {_verdict(r)} |")
            lines.append("")
        for note in s.notes:
            lines += [note.rstrip(), ""]
    if appendix:
        lines += [appendix.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def peak_rss_mib(pid: int | str = "self") -> float:
    """The process's high-water mark of resident memory (``VmHWM``), in MiB.

    Not ``getrusage().ru_maxrss``: Linux carries the RSS a process had when it was forked across
    ``exec``, so a child started from a large parent reports at least the parent's size.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def log(message: str) -> None:
    """Progress on stderr, so a long run shows where it is."""
    print(f"[bench {dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)
