"""How often the forecast's stated 80 % range holds the actual month, on simulated seasonal sales.

    python -m benchmarks.forecast_coverage --calibrate --jobs 2 # print RANGE_FACTORS and BACKTEST_SHAPE (about 1 h)
    python -m benchmarks.forecast_coverage --series 40          # a coverage table on the console

Five generators of monthly sales, each drawn with random parameters and a random first month (so
the history ends in any month of the year):

- ``december peak``: a shop growing 0–3 % a month (or shrinking up to 0.5 %), November × 1.1–1.4,
  December × 1.4–2.0, July–August × 0.6–0.9; log-normal noise, sd 8–20 %.
- ``summer business``: a sine season peaking in June–July, amplitude 20–50 %; trend −1 to +1 % a
  month; noise sd 10–25 %.
- ``small counts``: paid orders, Poisson-gamma with mean 15–80 a month, a mild season (0–20 %,
  any phase), trend −1 to +1.5 %; overdispersion shape 20–60.
- ``bumpy``: the December shop with campaign bursts (8 % of months, × 1.3–1.8) and, in one run
  of three, a lasting level shift (× 0.7–1.3) at a random month.
- ``drifting level``: a level that wanders month to month (a random walk on the log scale, steps
  of sd 2–6 % around a drift of −0.5 to +2 %), so that, unlike in the four above, the misses grow
  with the months ahead; a December peak × 1.0–1.6; noise sd 5–15 %.

:func:`run_series` forecasts 6 months from the history with :func:`forecast.forecast_series` (the
page's own pipeline: model, backtest, the range rescaled month by month) and scores them against
the 6 simulated months that follow. :func:`calibrate` turns such runs into the factors of
:data:`forecast.RANGE_FACTORS` and :data:`forecast.BACKTEST_SHAPE`; :func:`coverage` is what
``make bench`` reports, on seeds apart from the calibration's.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_helpers.analyses import forecast

HORIZON = 6
GENERATORS = ("december peak", "summer business", "small counts", "bumpy", "drifting level")
CALIBRATION: dict[str, tuple[tuple[int, ...], int]] = {
    "6 to 11 months": ((6, 8, 9, 11), 100),
    "12 months": ((12,), 1_000),
    "13 to 14 months": ((13, 14), 200),
    "15 to 17 months": ((15, 16, 17), 134),
    "18 to 20 months": ((18, 19, 20), 134),  # no backtest widening under 21 months (forecast.MIN_BACKTEST_MONTHS)
    "21 to 23 months": ((21, 22, 23), 134),
    "24 months": ((24,), 800),
    "25 to 32 months": ((25, 26, 27, 28, 29, 30, 31, 32), 50),
    "33 to 35 months": ((33, 34, 35), 134),
    "36 months or more": ((36, 48, 60), 134),
}
"""Per band of :data:`forecast.RANGE_BANDS`, the history lengths ``--calibrate`` simulates and how many
series of each generator at each length: about 2,000 a band, 5,000 at exactly 12 months (a series
there takes about 0.02 s of one core, against 0.6–1 s from 24 months) and 4,000 at exactly 24 (its
factors are the largest of the SARIMAX bands). With 1,000 a band, the factors calibrated for 12
months held 84 % of fresh series' months, 87 % five and six months ahead."""
BENCH_LENGTHS = (12, 18, 24, 30, 48)
"""History lengths the coverage benchmark reports: the issue's four, and 30 months (the band from 25
to 32, where the seasonal ARIMA has no backtest to widen its range yet)."""
CALIBRATION_SEED, BENCH_SEED = 1_000, 5_000_000
"""Seeds of the calibration runs start at the first, the benchmark's at the second: never the same series."""


def simulate(kind: str, months: int, rng: np.random.Generator) -> pd.Series:
    """``months`` consecutive monthly values of generator ``kind`` (see the module docstring), from a random month."""
    start = pd.Timestamp(year=2019, month=int(rng.integers(1, 13)), day=1)
    index = pd.date_range(start, periods=months, freq="MS")
    month, t = index.month.to_numpy(), np.arange(months)
    if kind in ("december peak", "bumpy"):
        season = np.ones(months)
        season[month == 12] = rng.uniform(1.4, 2.0)
        season[month == 11] = rng.uniform(1.1, 1.4)
        season[np.isin(month, (7, 8))] = rng.uniform(0.6, 0.9)
        level = rng.uniform(2_000, 50_000) * (1 + rng.uniform(-0.005, 0.03)) ** t * season
        if kind == "bumpy":
            level = level * np.where(rng.random(months) < 0.08, rng.uniform(1.3, 1.8, months), 1.0)
            if rng.random() < 1 / 3:
                level = level * np.where(t >= rng.integers(1, months), rng.uniform(0.7, 1.3), 1.0)
        values = level * np.exp(rng.normal(0, rng.uniform(0.08, 0.20), months))
    elif kind == "summer business":
        season = 1 + rng.uniform(0.2, 0.5) * np.cos(2 * np.pi * (month - rng.uniform(6, 7)) / 12)
        level = rng.uniform(2_000, 50_000) * (1 + rng.uniform(-0.01, 0.01)) ** t * season
        values = level * np.exp(rng.normal(0, rng.uniform(0.10, 0.25), months))
    elif kind == "small counts":
        season = 1 + rng.uniform(0, 0.2) * np.cos(2 * np.pi * (month - rng.uniform(1, 13)) / 12)
        mean = rng.uniform(15, 80) * (1 + rng.uniform(-0.01, 0.015)) ** t * season
        shape = rng.uniform(20, 60)
        values = rng.poisson(rng.gamma(shape, mean / shape)).astype(float)
    elif kind == "drifting level":
        steps = rng.normal(rng.uniform(-0.005, 0.02), rng.uniform(0.02, 0.06), months)
        season = np.where(month == 12, rng.uniform(1.0, 1.6), 1.0)
        level = rng.uniform(2_000, 50_000) * np.exp(np.cumsum(steps)) * season
        values = level * np.exp(rng.normal(0, rng.uniform(0.05, 0.15), months))
    else:
        raise ValueError(f"unknown generator {kind!r}; choose from {', '.join(GENERATORS)}")
    return pd.Series(values, index=index)


@dataclass(frozen=True)
class Run:
    """One simulated series forecast ``HORIZON`` months ahead from ``months`` of history."""

    kind: str
    months: int
    seed: int
    inside: tuple[bool, ...]
    """Per month ahead: the actual fell inside the stated (final) range."""
    scores: tuple[float, ...]
    """Per month ahead: the miss divided by the model's own half-width (the factor on it that would
    just have reached the actual)."""
    q: float = float("nan")
    """The backtest's factor (:func:`forecast.backtest_factor`), NaN when it did not set the range."""
    halves: tuple[float, ...] = ()
    """Per month ahead: the model's own half-width (:func:`forecast.model_half_width`), in the series' unit."""


def run_series(kind: str, months: int, seed: int) -> Run:
    """Simulate ``months + HORIZON`` months, forecast from the first ``months``, score the rest."""
    y = simulate(kind, months + HORIZON, np.random.default_rng(seed))
    history, future = y.iloc[:months], y.iloc[months:].to_numpy()
    one = forecast.forecast_series(history, horizon=HORIZON)
    fc, raw = one.forecast, one.raw
    inside = (future >= fc["lower"].to_numpy() - 1e-9) & (future <= fc["upper"].to_numpy() + 1e-9)
    half = forecast.model_half_width(raw)
    miss = np.abs(future - raw["forecast"].to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(half > 0, miss / half, np.where(miss > 0, np.inf, 0.0))
    return Run(kind, months, seed, tuple(bool(v) for v in inside), tuple(float(v) for v in scores),
               float("nan") if one.q is None else one.q, tuple(float(v) for v in half))


def _run_one(job: tuple[str, int, int]) -> Run:
    return run_series(*job)


def simulate_runs(lengths: tuple[int, ...], per_generator: int, *, seed: int, jobs: int = 1) -> list[Run]:
    """``per_generator`` runs of every generator at every length: generator g's i-th run at ``months``
    has seed ``seed + g·10,000,000 + i·1,000 + months``, so the calibration's seeds (from
    :data:`CALIBRATION_SEED`, at most 4,999 runs a generator and length) never meet the benchmark's."""
    work = [(kind, months, seed + g * 10_000_000 + i * 1_000 + months)
            for months in lengths for g, kind in enumerate(GENERATORS) for i in range(per_generator)]
    if jobs <= 1:
        return [_run_one(job) for job in work]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_run_one, work, chunksize=4))


MIN_CALIBRATION_RUNS = 100
"""The fewest simulated forecasts a set of factors is calibrated on; with fewer the band keeps 1.0."""


def _factors(scores: np.ndarray, halves: np.ndarray, interval: float) -> tuple[float, ...]:
    """Per month ahead, the smallest factor on the model's own half-width (``halves``, one row per run)
    whose range, never narrower than the month before (:func:`forecast.widen_by_horizon`), holds
    ``interval`` of the runs: the ``interval`` quantile (taken upwards) of the factor each run needs
    (``scores``), counting 0 where the month before's range already held it. Rounded up to 0.01."""
    factors: list[float] = []
    before = np.zeros(len(scores))  # each run's stated half-width the month before, in the unit of ``halves``
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(scores.shape[1]):
            held = scores[:, k] * halves[:, k] <= before + 1e-12
            needed = np.quantile(np.where(held, 0.0, scores[:, k]), interval, method="higher")
            factor = float(np.ceil(100 * needed - 1e-9) / 100) + 0.0  # + 0.0: never -0.0
            factors.append(factor)
            before = np.maximum(before, halves[:, k] * factor)
    return tuple(factors)


def calibrate(runs: list[Run], *, interval: float = forecast.CALIBRATED_INTERVAL
              ) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """``(RANGE_FACTORS entry, BACKTEST_SHAPE entry)`` from simulated runs (:func:`_factors`), None where
    fewer than :data:`MIN_CALIBRATION_RUNS` runs lacked (or had) a backtest factor. With one, each run's
    scores are divided by it: the shape is a factor on (model half-width × backtest factor)."""
    scores = np.array([r.scores for r in runs], dtype=float).reshape(len(runs), -1)
    halves = np.array([r.halves for r in runs], dtype=float).reshape(scores.shape)
    q = np.array([r.q for r in runs], dtype=float)
    without, with_q = np.isnan(q), ~np.isnan(q)
    factors = (_factors(scores[without], halves[without], interval)
               if without.sum() >= MIN_CALIBRATION_RUNS else None)
    shape = (_factors(scores[with_q] / q[with_q, None], halves[with_q] * q[with_q, None], interval)
             if with_q.sum() >= MIN_CALIBRATION_RUNS else None)
    return factors, shape


def coverage(runs: list[Run]) -> pd.DataFrame:
    """Share of forecasts inside the stated range: one row per history length, columns ``1 … 6`` months ahead,
    ``all`` and ``series`` (how many simulated series)."""
    rows = []
    for months in sorted({r.months for r in runs}):
        inside = np.array([r.inside for r in runs if r.months == months], dtype=float)
        row = {"months": months, **{str(h + 1): inside[:, h].mean() for h in range(inside.shape[1])},
               "all": inside.mean(), "series": len(inside)}
        rows.append(row)
    return pd.DataFrame(rows).set_index("months")


def coverage_by_generator(runs: list[Run]) -> pd.DataFrame:
    """Share inside the range per generator (rows) and history length (columns), all months ahead pooled."""
    frame = pd.DataFrame([{"generator": r.kind, "months": r.months, "inside": np.mean(r.inside)} for r in runs])
    return frame.pivot_table(index="generator", columns="months", values="inside", aggfunc="mean")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate", action="store_true",
                        help="print the factors per band for RANGE_FACTORS and BACKTEST_SHAPE")
    parser.add_argument("--series", type=int,
                        help="series per generator and length (default: the band's in CALIBRATION; 50 without "
                             "--calibrate)")
    parser.add_argument("--bands", help="comma-separated bands to calibrate (default: all)")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.calibrate:
        bands = [b.strip() for b in args.bands.split(",")] if args.bands else list(CALIBRATION)
        for band in bands:
            lengths, series = CALIBRATION[band]
            runs = simulate_runs(lengths, args.series or series, seed=CALIBRATION_SEED, jobs=args.jobs)
            factors, shape = calibrate(runs)
            with_q = sum(not np.isnan(r.q) for r in runs)
            print(f'    "{band}": RANGE_FACTORS {factors} ({len(runs) - with_q} series without a backtest factor), '
                  f"BACKTEST_SHAPE {shape} ({with_q} with one), {time.perf_counter() - started:.0f} s", flush=True)
        return 0
    runs = simulate_runs(BENCH_LENGTHS, args.series or 50, seed=BENCH_SEED, jobs=args.jobs)
    print(coverage(runs).round(3).to_string())
    print(coverage_by_generator(runs).round(3).to_string())
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
