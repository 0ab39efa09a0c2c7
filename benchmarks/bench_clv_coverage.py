"""Coverage of the purchase and spend ranges, and how often the model choice finds the true model.

Books are drawn from each purchase model with Gamma-Gamma spend (:func:`benchmarks.synthetic.simulate_book`,
the shape of the CDNOW cohort: first purchases over 12 weeks, calibration to week 39, a 39-week
horizon) at the parameters Fader, Hardie & Lee (and lifetimes) estimate on CDNOW. Each book is
fitted as the workbook fits a store (the weak prior, :data:`crm_helpers.models.btyd.WEAK_PRIOR_SD`),
its 80 % ranges for the horizon's repeat purchases and spend are taken
(:meth:`~crm_helpers.models.btyd.PurchaseModel.purchases_range`, ``spend_range``), and the share of
books whose realised total falls inside is the coverage (target 75–85 %). The same books score the
model choice: all three models are fitted and the one with the highest holdout log-likelihood per
customer is picked (as :func:`crm_helpers.analyses.clv.holdout_validation` does), beside the old
criterion (the smallest error on the holdout total); chance is one in three.

With n runs a share has a standard error of about √(0.16 / n): ±4 points at 100 runs, ±9 at 20, so
a single model's 100 books cannot tell 80 % from 86 % (ranges that hold exactly 80 % would land outside
75–85 % in one model-and-size cell in five). The target is therefore judged where the books are enough
to judge it, per size and for purchases and for spend, the three models' books together (300 books,
±2.3 points); each model's share is shown with its 95 % interval and checked against 80 %.
Last, the CDNOW master file (23,570 customers; in the test-only lifetimes wheel), calibrated to
1997-09-30: each model's prediction for the next 39 weeks, its 80 % range, and whether what happened
falls inside.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from statsmodels.stats.proportion import proportion_confint

from crm_helpers.analyses import clv
from crm_helpers.analyses.clv import summary_from_transactions
from crm_helpers.models import btyd

from .results import Row, Section, Timing, load_average, log
from .synthetic import simulate_book

CDNOW_PARAMETERS = {
    "BG/NBD": (btyd.BetaGeoModel, (0.243, 4.414, 0.793, 2.426)),
    "MBG/NBD": (btyd.ModifiedBetaGeoModel, (0.525, 6.183, 0.891, 1.614)),
    "Pareto/NBD": (btyd.ParetoNBDModel, (0.553, 10.578, 0.606, 11.668)),
}
"""Each model's CDNOW estimates (weeks): Fader, Hardie & Lee 2005 (BG/NBD), lifetimes' fits (MBG/NBD,
Pareto/NBD), as reproduced by tests/test_clv.py and tests/test_btyd.py."""

CDNOW_GAMMA_GAMMA = (6.25, 3.74, 15.44)
"""Gamma-Gamma's CDNOW estimates (p, q, v), Fader, Hardie & Lee's "RFM and CLV"."""

FULL_RUNS = {800: 100, 2_500: 100, 25_000: 100}
QUICK_RUNS = {800: 5}
LEVEL = 0.8
TARGET = (75.0, 85.0)
"""Share of books (%) whose realised total falls inside the 80 % range, judged per size, models pooled."""
DRAWS = 500


RANGES_NOTE = (
    f"Ranges from {DRAWS} simulated futures each (100 parameter draws from the fit's asymptotic normal, each "
    "customer's latent state drawn given their history, then their purchases and spend). A share from n books "
    "has a standard error of about √(0.16/n): ±4 points at 100 books, ±9 at 20, so one model's 100 books cannot "
    "tell 80 % from 86 %: ranges holding exactly 80 % would fall outside 75–85 % in one cell in five. The 75–85 % "
    "target is judged on the three models' books together, per size, for purchases and for spend (300 books, "
    "±2.3 points); each model's own share is checked against 80 % with its 95 % (Wilson) interval.")
"""What the coverage rows mean and how sure they are (the part's first note)."""

def _fit(model_class: type[btyd.PurchaseModel], summary) -> btyd.PurchaseModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model_class(prior_sd=btyd.WEAK_PRIOR_SD).fit(summary["frequency"], summary["recency"], summary["T"])


def book_coverage(truth: str, n: int, seed: int, *, n_draws: int = DRAWS) -> dict[str, float]:
    """One simulated book from ``truth``, fitted with its own model: whether its 80 % ranges held the
    realised totals of purchases and spend, and the purchase range's width relative to the expected total."""
    model_class, params = CDNOW_PARAMETERS[truth]
    book = simulate_book(truth, n, params, CDNOW_GAMMA_GAMMA, random_state=seed)
    s = book.summary
    cal = (s["frequency"], s["recency"], s["T"])
    model = _fit(model_class, s)
    repeat = s[s["frequency"] > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spend = btyd.GammaGammaModel(prior_sd=btyd.WEAK_PRIOR_SD).fit(repeat["frequency"], repeat["monetary_value"])
    purchases = model.purchases_range(book.horizon, *cal, level=LEVEL, n_draws=n_draws, random_state=seed)
    spent = model.spend_range(book.horizon, *cal, monetary_value=s["monetary_value"], spend_model=spend, level=LEVEL,
                              n_draws=n_draws, random_state=seed)
    return {"purchases": purchases.contains(book.holdout_purchases.sum()),
            "spend": spent.contains(book.holdout_spend.sum()),
            "width": (purchases.high - purchases.low) / purchases.expected}


def book_choice(truth: str, n: int, seed: int) -> dict[str, bool]:
    """The same book fitted with all three models: whether the holdout log-likelihood (``choice``) and
    the smallest error on the holdout total (``old_choice``) pick ``truth``."""
    book = simulate_book(truth, n, CDNOW_PARAMETERS[truth][1], CDNOW_GAMMA_GAMMA, random_state=seed)
    s, full = book.summary, book.full
    cal = (s["frequency"], s["recency"], s["T"])
    fitted = {name: _fit(cls, s) for name, (cls, _) in CDNOW_PARAMETERS.items()}
    score = {name: float(np.sum(m.log_likelihood_per_customer(full["frequency"], full["recency"], full["T"])
                                - m.log_likelihood_per_customer(*cal))) for name, m in fitted.items()}
    actual = book.holdout_purchases.sum()
    miss = {name: abs(float(np.sum(m.expected_purchases(book.horizon, *cal))) - actual) for name, m in fitted.items()}
    return {"choice": max(score, key=score.get) == truth, "old_choice": min(miss, key=miss.get) == truth}


def share_interval(share: float, runs: int) -> tuple[float, float]:
    """The 95 % (Wilson) interval of a share of ``runs`` books, in % like ``share``."""
    low, high = proportion_confint(round(share * runs / 100), runs, alpha=0.05, method="wilson")
    return 100 * float(low), 100 * float(high)


def model_coverage_row(truth: str, n: int, what: str, share: float, runs: int, *, detail: str = "") -> Row:
    """One model's share (%) of ``runs`` books whose realised ``what`` fell inside the 80 % range; met when its
    95 % interval holds 80 % (``detail``: said after the number of books)."""
    low, high = share_interval(share, runs)
    return Row(f"{truth}, {n:,} customers: realised {what} inside the 80 % range", Timing([share]),
               unit="% of books", target="80 % within the 95 % interval", met=low <= 100 * LEVEL <= high,
               note=f"{runs} books{f' ({detail})' if detail else ''}; 95 % interval {low:.0f}–{high:.0f} %")


def pooled_coverage_row(n: int, what: str, shares: list[tuple[float, int]]) -> Row:
    """The three models' books together at one size: ``shares`` holds each model's (share in %, books)."""
    runs = sum(r for _, r in shares)
    share = sum(s * r for s, r in shares) / runs
    low, high = share_interval(share, runs)
    return Row(f"All three models, {n:,} customers: realised {what} inside the 80 % range", Timing([share]),
               unit="% of books", target=f"{TARGET[0]:.0f}–{TARGET[1]:.0f} %", met=TARGET[0] <= share <= TARGET[1],
               note=f"{runs} books, {' + '.join(str(r) for _, r in shares)} from the models; "
                    f"95 % interval {low:.0f}–{high:.0f} %")


CDNOW_CALIBRATION_END, CDNOW_END = "1997-09-30", "1998-06-30"
"""The CDNOW master file's calibration end (FHL's 39 weeks from 1997-01-01) and its last day."""


def _cdnow_folder() -> Path:
    """The datasets folder of the test-only lifetimes wheel (it holds the CDNOW files), found without importing it."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        return Path("/nonexistent")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets"


def cdnow_master_holdout(folder: Path) -> list[dict[str, object]]:
    """Each model fitted on the CDNOW master file's calibration period (23,570 customers, in weeks of 7
    days, as the workbook fits a store) and asked for the next 39 weeks: its expected repeat purchases
    and spend, their 80 % ranges, what happened and whether it fell inside. Empty when the file is absent."""
    path = folder / "CDNOW_master.txt"
    if not path.exists():
        return []
    raw = pd.read_csv(path, sep=r"\s+", header=0, names=["customer", "date", "cds", "amount"], dtype={"date": str})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    split = summary_from_transactions(raw, "customer", datetime_col="date", monetary_value_col="amount",
                                      observation_period_end=CDNOW_END, calibration_period_end=CDNOW_CALIBRATION_END,
                                      freq="D", freq_multiplier=7)
    s = split.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T",
                              "monetary_value_cal": "monetary_value"})
    cal = (s["frequency"], s["recency"], s["T"])
    horizon = float(s["duration_holdout"].iloc[0])
    actual = float(s["frequency_holdout"].sum())
    actual_spend = float((s["frequency_holdout"] * s["monetary_value_holdout"]).sum())
    # the pack's own check on the calibration period: the model chosen then, and its error at the origins
    days = raw[raw["date"] <= CDNOW_CALIBRATION_END].groupby(["customer", "date"], as_index=False)["amount"].sum()
    validation = clv.holdout_on_purchase_days(days.rename(columns={"customer": "customer_id", "date": "order_date"}),
                                              dt.date.fromisoformat(CDNOW_CALIBRATION_END))
    repeat = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spend = btyd.GammaGammaModel(prior_sd=btyd.WEAK_PRIOR_SD).fit(repeat["frequency"], repeat["monetary_value"])
    rows = []
    for name, (model_class, _) in CDNOW_PARAMETERS.items():
        model = _fit(model_class, s)
        model_sd = clv.model_error_sd(validation.errors.get(name, [])) if validation.ok else 0.0
        bought = model.purchases_range(horizon, *cal, level=LEVEL, n_draws=DRAWS, model_sd=model_sd)
        spent = model.spend_range(horizon, *cal, monetary_value=s["monetary_value"], spend_model=spend, level=LEVEL,
                                  n_draws=DRAWS, model_sd=model_sd)
        rows.append({"model": name, "purchases": bought, "actual": actual, "spend": spent,
                     "actual_spend": actual_spend, "chosen": validation.chosen == name, "model_sd": model_sd,
                     "errors": validation.errors.get(name, [])})
    return rows


def _one_book(job: tuple[str, int, int]) -> dict[str, float]:
    """Coverage and choice figures of one book: ``job`` is (true model, customers, seed)."""
    truth, n, seed = job
    return book_coverage(truth, n, seed) | book_choice(truth, n, seed)


def run(runs_by_size: dict[int, int], *, jobs: int = 1) -> Section:
    """Coverage and choice figures for each model and size, ``runs_by_size[n]`` books each, the books
    spread over ``jobs`` processes (each book is seeded by its number, so the figures do not depend on it)."""
    pool = ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else None
    try:
        return _run(runs_by_size, pool, jobs)
    finally:
        if pool is not None:
            pool.shutdown()


def _run(runs_by_size: dict[int, int], pool: ProcessPoolExecutor | None, jobs: int) -> Section:
    section = Section("clv_coverage", "How often the stated 80 % ranges hold the truth (simulated books)",
                      busy=f"load average {load_average()} at start")
    for n, runs in runs_by_size.items():  # the small sizes of every model first
        pooled: dict[str, list[tuple[float, int]]] = {"purchases": [], "spend": []}
        for truth in CDNOW_PARAMETERS:
            started = time.perf_counter()
            log(f"clv_coverage: {truth}, {n:,} customers, {runs} books")
            work = [(truth, n, seed) for seed in range(runs)]
            books = list(pool.map(_one_book, work)) if pool is not None else [_one_book(job) for job in work]
            seconds = (time.perf_counter() - started) / runs * max(jobs, 1)  # process time a book
            share = {k: 100 * float(np.mean([b[k] for b in books])) for k in ("purchases", "spend", "choice",
                                                                                "old_choice")}
            log(f"clv_coverage: {truth}, {n:,} customers: purchases {share['purchases']:.0f} %, spend "
                f"{share['spend']:.0f} % inside the 80 % range; true model chosen {share['choice']:.0f} % "
                f"(smallest total error: {share['old_choice']:.0f} %); {seconds:.1f} s a book")
            for what in ("purchases", "spend"):
                section.add(model_coverage_row(truth, n, what, share[what], runs))
                pooled[what].append((share[what], runs))
            section.add(Row(f"{truth}, {n:,} customers: true model chosen by holdout log-likelihood",
                            Timing([share["choice"]]), unit="% of books",
                            reference=Timing([share["old_choice"]]), reference_name="smallest error on the total",
                            target="> 33 % (chance)", met=share["choice"] > 100 / 3,
                            note=f"median width of the purchase range {100 * np.median([b['width'] for b in books]):.0f} % "
                                 f"of the expected total; {seconds:.1f} s a book (fits, both ranges)"))
        for what in ("purchases", "spend"):
            section.add(pooled_coverage_row(n, what, pooled[what]))
    for row in cdnow_master_holdout(_cdnow_folder()):
        for what, actual in (("purchases", row["actual"]), ("spend", row["actual_spend"])):
            r = row[what]
            section.add(Row(f"CDNOW master file, {row['model']}: {what} in the 39 weeks after 1997-09-30",
                            Timing([actual]), unit="purchases" if what == "purchases" else "USD",
                            target="inside the 80 % range", met=r.contains(actual),
                            note=f"expected {r.expected:,.0f}, 80 % range {r.low:,.0f}–{r.high:,.0f} (model error "
                                 f"{row['model_sd']:.2f} on the log scale, from the calibration period's own holdout "
                                 f"errors {', '.join(f'{e:+.0%}' for e in row['errors'])})"
                                 + ("; the model the pack's check chose then" if row["chosen"] else "")))
    section.notes.append(RANGES_NOTE)
    return section
