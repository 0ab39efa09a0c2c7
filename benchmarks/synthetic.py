"""Customer summaries drawn from the BG/NBD and Gamma-Gamma models themselves, for sizes the
scale store does not reach (1,000,000 customers) without generating ten times the orders."""

from __future__ import annotations

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
