"""``make bench`` part ``forecast``: how often the forecast's stated 80 % range holds the actual month.

Simulated seasonal sales (:mod:`benchmarks.forecast_coverage`: five generators) with 12, 18, 24, 30
and 48 months of history (:data:`~benchmarks.forecast_coverage.BENCH_LENGTHS`), each forecast 6
months ahead by the page's own pipeline (:func:`crm_helpers.analyses.forecast.forecast_series`); a
row per history length and month ahead gives the share of forecasts whose actual fell inside the
stated range. Target 75–85 % wherever the page says "8 months in 10". The series are seeded apart
from those that calibrated the factors.
"""

from __future__ import annotations

import time

from crm_helpers.analyses import forecast

from . import forecast_coverage as fc
from .results import Row, Section, Timing

TARGET = (0.75, 0.85)


def run(per_generator: int, *, jobs: int = 1, lengths: tuple[int, ...] = fc.BENCH_LENGTHS) -> Section:
    """Coverage per history length and month ahead, over ``per_generator`` series of each generator."""
    started = time.perf_counter()
    runs = fc.simulate_runs(lengths, per_generator, seed=fc.BENCH_SEED, jobs=jobs)
    return section(runs, per_generator, seconds=time.perf_counter() - started)


def section(runs: list[fc.Run], per_generator: int, *, seconds: float) -> Section:
    """The part's rows and notes from simulated runs (``seconds``: how long simulating them took)."""
    table = fc.coverage(runs)
    s = Section("forecast", "Forecast ranges: coverage on simulated seasonal sales")
    target = f"{TARGET[0]:.0%}–{TARGET[1]:.0%}"
    for months, row in table.iterrows():
        band = forecast.history_band(int(months))
        for column in [*(str(h) for h in range(1, fc.HORIZON + 1)), "all"]:
            share = float(row[column])
            ahead = "all 6 months ahead pooled" if column == "all" else (
                "1 month ahead" if column == "1" else f"{column} months ahead")
            s.add(Row(f"{months} months of history, {ahead}", Timing([100 * share]), unit="%",
                      target=target, met=TARGET[0] <= share <= TARGET[1],
                      note=f"{int(row['series'])} series; band {band}" if column == "all" else ""))
    by_generator = fc.coverage_by_generator(runs)
    s.notes.append(
        f"{per_generator} series of each of the {len(fc.GENERATORS)} generators ({', '.join(fc.GENERATORS)}) per "
        "length of history, forecast 6 months ahead with `forecast.forecast_series` (the model, its backtest, the "
        "range rescaled month by month: the backtest's factor times `forecast.BACKTEST_SHAPE`, or "
        "`forecast.RANGE_FACTORS` without a backtest); a forecast counts when "
        "the simulated actual falls inside the stated 80 % range. Seeds apart from the calibration's "
        "(`python -m benchmarks.forecast_coverage --calibrate`). Share inside, all months ahead pooled, by "
        "generator: " + "; ".join(
            f"{kind} " + ", ".join(f"{m} months {100 * by_generator.loc[kind, m]:.0f} %" for m in by_generator.columns)
            for kind in by_generator.index) + "."
    )
    s.notes.append(f"Simulating and forecasting took {seconds:.0f} s.")
    return s
