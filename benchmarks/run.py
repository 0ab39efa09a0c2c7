"""``make bench``: every benchmark part, each against its reference, into ``benchmarks/RESULTS.md``.

    python -m benchmarks.run                                # everything (about 15 minutes)
    python -m benchmarks.run --only import,clv              # some parts; the others keep their last figures
    python -m benchmarks.run --only export                  # just the line-item export (a few minutes)
    python -m benchmarks.run --quick --out /tmp/R.md        # a small smoke run (tiny store, one run each)
    python -m benchmarks.run --only clv --pareto-only --out /tmp/R.md   # only the Pareto/NBD fits, ours and lifetimes'

Parts: ``import`` (an orders CSV), ``export`` (a line-item export), ``clv``, ``pack``, ``analyses``, ``desk`` (the desk's page
and a save in Chromium, with and without the standby kernel) (the scale store is built or taken from the
cache whenever a part needs it), ``clv_coverage`` (how often the purchase and spend ranges hold
the truth on simulated books) and ``forecast`` (the forecast range's coverage on simulated
seasonal sales, about 8 minutes), which need no store. Figures are medians of several runs with their min–max; the
number of runs per part is in its notes. ``results.json`` beside the results file keeps every
part's figures, so a partial run re-renders the whole file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import bench_analyses, bench_clv, bench_clv_coverage, bench_desk, bench_forecast, bench_import, bench_pack, scale_store
from .results import Row, Section, Timing, load_average, log, machine, read_json, write_results

PARTS = ("import", "export", "clv", "pack", "analyses", "desk", "clv_coverage", "forecast")
STORELESS = {"clv_coverage", "forecast"}
"""Parts that need no scale store."""
HERE = Path(__file__).resolve().parent
FINDINGS = HERE / "findings.md"
"""Hand-written reading of the last full run (what is slow and why), included in the results."""

DEMO = scale_store.StoreSpec(name="demo", customers=800, months=24, seed=42, purchase_rate_scale=1.0,
                             dropout_scale=1.0)
"""The default demo business, as the tests and ``crm demo`` build it."""


@dataclass(frozen=True)
class Plan:
    """How much to run: the store and the number of runs per part."""

    store: scale_store.StoreSpec
    import_runs: int
    clv_runs: int
    lifetimes_runs: int
    clv_big: int
    pack_demo_runs: int
    pack_scale_runs: int
    floor_runs: int
    analyses_runs: int
    install_lifetimes_deps: bool
    coverage_runs: dict[int, int]
    desk_loads: int = 3
    forecast_series: int = 100
    """Simulated series per generator and length of history in the forecast coverage part."""


FULL = Plan(scale_store.SCALE, import_runs=2, clv_runs=5, lifetimes_runs=2, clv_big=1_000_000, pack_demo_runs=2,
            pack_scale_runs=1, floor_runs=2, analyses_runs=2, install_lifetimes_deps=True,
            coverage_runs=bench_clv_coverage.FULL_RUNS)
QUICK = Plan(scale_store.QUICK, import_runs=1, clv_runs=1, lifetimes_runs=1, clv_big=5_000, pack_demo_runs=1,
             pack_scale_runs=0, floor_runs=1, analyses_runs=1, install_lifetimes_deps=False,
             coverage_runs=bench_clv_coverage.QUICK_RUNS, desk_loads=1, forecast_series=1)

PREAMBLE = """\
Written by `make bench` (`python -m benchmarks.run`); do not edit by hand — the reading of the
figures is in `benchmarks/findings.md`, included at the end. Every figure is the median of the
runs shown, with their min–max; the reference ran in the same session on the same data. The
scale store is the demo generator at 100,000 buyers over 24 months with purchase rates ×3.4 and
dropout ×0.3 (`benchmarks/scale_store.py`), cached in `benchmarks/scale/` by its parameters.
"""


def _store_section(store: scale_store.ScaleStore, label: str) -> Section:
    s = Section("store" if label == "scale" else f"store-{label}", f"The {label} store", measured_at=_now())
    how = "taken from the cache" if store.cached else "built in this run"
    s.notes.append(
        f"{how} (`{store.db_path.parent.name}`): " + ", ".join(f"{k} {v:,}" for k, v in store.counts.items())
        + f". Generating it took {store.generate_seconds:.0f} s and writing it {store.write_seconds:.0f} s "
        "(when it was built)."
    )
    s.add(Row("generate (`generate_demo`)", Timing([store.generate_seconds]), note=how))
    s.add(Row("write (executemany, one transaction) + CSV export", Timing([store.write_seconds])))
    return s


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M")


def _working_copy(db: Path, folder: Path) -> Path:
    """Notebooks write (segment snapshots): render the pack on a copy, keep the cached store as built."""
    target = folder / f"{db.parent.name}-{db.name}"
    shutil.copyfile(db, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help=f"comma-separated parts: {', '.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="tiny store, one run each (a smoke test)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="results file (default: %(default)s)")
    parser.add_argument("--scale-dir", type=Path, default=scale_store.SCALE_DIR,
                        help="where generated stores are cached (default: %(default)s)")
    parser.add_argument("--notebooks", type=Path, help="notebooks folder for the pack (default: the project's)")
    parser.add_argument("--no-reference", action="store_true", help="skip the lifetimes reference")
    parser.add_argument("--pareto-only", action="store_true",
                        help="clv part: only the Pareto/NBD fits, ours and lifetimes' (a shorter loop; needs --out, "
                             "since it would replace the clv part's full figures)")
    parser.add_argument("--coverage-runs", help="clv_coverage part: books per size, e.g. 800:100,2500:100,25000:20 "
                                                "(default: that; --quick: 800:5)")
    parser.add_argument("--desk-loads", type=int, help="desk part: page loads with the standby kernel (default 3)")
    parser.add_argument("--desk-cold-loads", type=int,
                        help="desk part: page loads without it (default as --desk-loads; 0 leaves them out)")
    parser.add_argument("--render", action="store_true",
                        help="only re-render the results file from results.json (and findings.md)")
    args = parser.parse_args(argv)
    if args.render:
        stored = read_json(args.out.with_name("results.json"))
        if not stored:
            parser.error(f"no {args.out.with_name('results.json')} to render")
        write_results([], args.out.with_name("results.json"), args.out, stored["machine"], order=["store", *PARTS],
                      preamble=PREAMBLE, appendix=FINDINGS.read_text(encoding="utf-8") if FINDINGS.exists() else "")
        return 0
    parts = [p.strip() for p in (args.only or ",".join(PARTS)).split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    if args.pareto_only and args.out == HERE / "RESULTS.md":
        parser.error("--pareto-only writes part of the clv figures only: give another --out")
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    info = machine()
    info["load average at start"] = load_average()
    log(f"parts: {', '.join(parts)}{' (quick)' if args.quick else ''}; load average {info['load average at start']}")
    sections: list[Section] = []
    store = None
    if set(parts) - STORELESS:
        store = scale_store.build(plan.store, args.scale_dir, log=log)
        sections.append(_store_section(store, "scale" if not args.quick else "quick"))
    for part in parts:
        part_started = time.perf_counter()
        if part == "forecast":
            section = bench_forecast.run(plan.forecast_series, jobs=min(2, os.cpu_count() or 1))
        elif part == "import":
            section = bench_import.run(store, plan.import_runs, profile=False if args.quick else None)
        elif part == "export":
            section = bench_import.run_export(store, plan.import_runs, profile=False if args.quick else None)
        elif part == "clv":
            env_ok = not args.no_reference and (plan.install_lifetimes_deps or _lifetimes_ready(args.scale_dir))
            section = bench_clv.run(store, plan.clv_runs, plan.lifetimes_runs, big=plan.clv_big,
                                    with_reference=env_ok, deps_folder=args.scale_dir, pareto_only=args.pareto_only)
        elif part == "clv_coverage":
            runs = (dict(tuple(int(v) for v in pair.split(":")) for pair in args.coverage_runs.split(","))
                    if args.coverage_runs else plan.coverage_runs)
            section = bench_clv_coverage.run(runs, jobs=min(2, os.cpu_count() or 1))
        elif part == "pack":
            demo = scale_store.build(DEMO, args.scale_dir, log=log)
            with tempfile.TemporaryDirectory(prefix="crm-bench-stores-") as tmp:
                demo_db = _working_copy(demo.db_path, Path(tmp))
                big_db = _working_copy(store.db_path, Path(tmp)) if plan.pack_scale_runs else None
                section = bench_pack.run(demo_db, big_db, DEMO.period, store.spec.period, plan.pack_demo_runs,
                                         plan.pack_scale_runs, profile=not args.quick, notebooks_dir=args.notebooks,
                                         floor_repeats=plan.floor_runs)
        elif part == "desk":
            section = bench_desk.run(store.db_path, args.desk_loads or plan.desk_loads, cold_loads=args.desk_cold_loads,
                                     label="scale store" if not args.quick else "quick store")
        else:
            section = bench_analyses.run(store.db_path, store.spec.period[1], plan.analyses_runs,
                                         label="scale store" if not args.quick else "quick store")
        section.measured_at = _now()
        section.notes.append(f"This part took {time.perf_counter() - part_started:.0f} s of wall time in all "
                             f"(load average {load_average()} at its end).")
        sections.append(section)
        log(f"{part} done in {time.perf_counter() - part_started:.0f} s")
    info["wall time of this run"] = f"{time.perf_counter() - started:.0f} s ({', '.join(parts)})"
    findings = FINDINGS.read_text(encoding="utf-8") if FINDINGS.exists() and not args.quick else ""
    write_results(sections, args.out.with_name("results.json"), args.out, info,
                  order=["store", *PARTS], preamble=PREAMBLE, appendix=findings)
    log(f"results written to {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


def _lifetimes_ready(folder: Path) -> bool:
    return (folder / "lifetimes-deps").is_dir()


if __name__ == "__main__":
    sys.exit(main())
