"""Customer summaries drawn from the purchase models and Gamma-Gamma themselves: for sizes the
scale store does not reach (1,000,000 customers) without generating ten times the orders, and
books whose future is known, to measure how often a stated range holds it (the coverage part)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def bgnbd_summary(
    n: int,
    bgnbd: tuple[float, float, float, float],
    gamma_gamma: tuple[float, float, float],
    *,
    max_age_days: int = 730,
    random_state: int = 0,
) -> pd.DataFrame:
    """``n`` customers drawn from BG/NBD (r, alpha, a, b; times in days) and Gamma-Gamma (p, q, v).

    Each customer's age T is a whole number of days in [0, max_age_days]; purchases follow a
    Poisson process at rate λ ~ Gamma(r, 1/alpha) per day, and after each repeat purchase the
    customer leaves with probability p ~ Beta(a, b). Out: frequency (repeat purchases),
    recency (day of the last purchase, whole days), T, monetary_value (mean repeat spend, 0
    for one-time buyers), like :func:`crm_helpers.analyses.clv.summary_from_transactions` with
    ``freq="D"``. Vectorized: one round per purchase number, over the customers still buying.
    """
    r, alpha, a, b = bgnbd
    p, q, v = gamma_gamma
    rng = np.random.default_rng(random_state)
    age = rng.integers(0, max_age_days + 1, n).astype(float)
    lam = rng.gamma(r, 1 / alpha, n)
    leave = rng.beta(a, b, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    t = np.zeros(n)
    buying = np.arange(n)
    while len(buying):
        t[buying] += rng.exponential(1 / lam[buying])
        bought = t[buying] <= age[buying]
        who = buying[bought]
        x[who] += 1
        tx[who] = t[who]
        stays = rng.random(len(who)) >= leave[who]
        buying = who[stays]
    nu = rng.gamma(q, 1 / v, n)
    repeat = x > 0
    spend = np.zeros(n)
    spend[repeat] = rng.gamma(p * x[repeat], 1 / (nu[repeat] * x[repeat]))
    return pd.DataFrame({
        "frequency": x,
        "recency": np.floor(tx),
        "T": age,
        "monetary_value": np.round(np.maximum(spend, 0.01), 2) * repeat,
    })


@dataclass(frozen=True)
class Book:
    """A simulated book split at a calibration end: what the models see and what happened next.

    ``summary``: frequency, recency, T, monetary_value up to the calibration end (lifetimes'
    conventions, continuous time); ``holdout_purchases`` / ``holdout_spend``: each customer's
    realised purchases and spend in the ``horizon`` after it; ``full``: frequency, recency, T at
    the end of the horizon (the same customers' whole history, for holdout log-likelihoods).
    """

    summary: pd.DataFrame
    holdout_purchases: np.ndarray
    holdout_spend: np.ndarray
    horizon: float
    full: pd.DataFrame


def simulate_book(
    model: str,
    n: int,
    params: tuple[float, float, float, float],
    gamma_gamma: tuple[float, float, float],
    *,
    cohort_weeks: float = 12.0,
    calibration_weeks: float = 39.0,
    horizon: float = 39.0,
    random_state: int | np.random.Generator = 0,
) -> Book:
    """``n`` customers drawn from a purchase model ("BG/NBD", "MBG/NBD" or "Pareto/NBD", its
    parameters in weeks: r, alpha, a, b or r, alpha, s, beta) and Gamma-Gamma (p, q, v), followed
    past the calibration end for ``horizon`` weeks: the shape of Fader, Hardie & Lee's CDNOW
    cohort (first purchases spread over ``cohort_weeks``, calibration to week ``calibration_weeks``).

    Each customer buys at a Poisson rate λ ~ Gamma(r, alpha) from their first purchase; BG/NBD
    customers leave with chance p ~ Beta(a, b) after each repeat purchase (MBG/NBD: after every
    purchase, the first included); Pareto/NBD customers after an Exponential(μ), μ ~ Gamma(s, beta),
    lifetime. Each purchase is worth Gamma(p, ν), ν ~ Gamma(q, v) per customer.
    """
    r, alpha, third, fourth = params
    p, q, v = gamma_gamma
    rng = np.random.default_rng(random_state)
    T = calibration_weeks - rng.uniform(0, cohort_weeks, n)
    end = T + horizon
    lam = rng.gamma(r, 1 / alpha, n)
    nu = rng.gamma(q, 1 / v, n)
    if model == "Pareto/NBD":
        death = rng.exponential(1 / rng.gamma(third, 1 / fourth, n))
        leave = np.zeros(n)
    else:
        death = np.full(n, np.inf)
        leave = rng.beta(third, fourth, n)
        if model == "MBG/NBD":
            death[rng.random(n) < leave] = 0.0
    x, tx, last = np.zeros(n), np.zeros(n), np.zeros(n)
    cal_spend, hold_x, hold_spend = np.zeros(n), np.zeros(n), np.zeros(n)
    t = np.zeros(n)
    buying = np.flatnonzero(death > 0)
    while len(buying):
        t[buying] += rng.exponential(1 / lam[buying])
        who = buying[(t[buying] <= end[buying]) & (t[buying] <= death[buying])]
        value = rng.gamma(p, 1 / nu[who])
        in_cal = t[who] <= T[who]
        cal, hold = who[in_cal], who[~in_cal]
        x[cal] += 1
        tx[cal] = t[cal]
        cal_spend[cal] += value[in_cal]
        hold_x[hold] += 1
        last[who] = t[who]
        hold_spend[hold] += value[~in_cal]
        stays = rng.random(len(who)) >= leave[who]
        buying = who[stays]
    summary = pd.DataFrame({"frequency": x, "recency": tx, "T": T,
                            "monetary_value": np.divide(cal_spend, x, out=np.zeros(n), where=x > 0)})
    full = pd.DataFrame({"frequency": x + hold_x, "recency": last, "T": end})
    return Book(summary, hold_x, hold_spend, horizon, full)
