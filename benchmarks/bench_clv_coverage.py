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

With n runs a share has a standard error of about √(0.16 / n): ±4 points at 100 runs, ±9 at 20.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

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

FULL_RUNS = {800: 100, 2_500: 100, 25_000: 20}
QUICK_RUNS = {800: 5}
LEVEL = 0.8
DRAWS = 500


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


def run(runs_by_size: dict[int, int]) -> Section:
    """Coverage and choice figures for each model and size, ``runs_by_size[n]`` books each."""
    section = Section("clv_coverage", "How often the stated 80 % ranges hold the truth (simulated books)",
                      busy=f"load average {load_average()} at start")
    for n, runs in runs_by_size.items():  # the small sizes of every model first
        for truth in CDNOW_PARAMETERS:
            started = time.perf_counter()
            log(f"clv_coverage: {truth}, {n:,} customers, {runs} books")
            books = [book_coverage(truth, n, seed) | book_choice(truth, n, seed) for seed in range(runs)]
            seconds = (time.perf_counter() - started) / runs
            share = {k: 100 * float(np.mean([b[k] for b in books])) for k in ("purchases", "spend", "choice",
                                                                                "old_choice")}
            log(f"clv_coverage: {truth}, {n:,} customers: purchases {share['purchases']:.0f} %, spend "
                f"{share['spend']:.0f} % inside the 80 % range; true model chosen {share['choice']:.0f} % "
                f"(smallest total error: {share['old_choice']:.0f} %); {seconds:.1f} s a book")
            for what in ("purchases", "spend"):
                section.add(Row(f"{truth}, {n:,} customers: realised {what} inside the 80 % range",
                                Timing([share[what]]), unit="% of books", target="75–85 %",
                                met=75 <= share[what] <= 85, note=f"{runs} books"))
            section.add(Row(f"{truth}, {n:,} customers: true model chosen by holdout log-likelihood",
                            Timing([share["choice"]]), unit="% of books",
                            reference=Timing([share["old_choice"]]), reference_name="smallest error on the total",
                            target="> 33 % (chance)", met=share["choice"] > 100 / 3,
                            note=f"median width of the purchase range {100 * np.median([b['width'] for b in books]):.0f} % "
                                 f"of the expected total; {seconds:.1f} s a book (fits, both ranges)"))
    section.notes.append(
        f"Ranges from {DRAWS} simulated futures each (100 parameter draws from the fit's asymptotic normal, each "
        "customer's latent state drawn given their history, then their purchases and spend). A share from n books "
        "has a standard error of about √(0.16/n): ±4 points at 100 books, ±9 at 20.")
    return section
