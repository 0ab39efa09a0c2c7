"""BG/NBD with a customer characteristic: do customers of one group buy more often, or stay longer?

The BG/NBD of :mod:`crm_helpers.models.btyd` (Fader, Hardie & Lee 2005) with time-invariant
covariates, as CLVTools writes them for its BG/NBD (Bachmann, Meierer & Näf 2021, "The Role of
Time-Invariant Covariates in Customer Lifetime Value Models"): a customer of group ``g`` has the
purchase-rate scale ``alpha_g = alpha · exp(−gamma_purchase_g)`` (their rates are
Gamma(r, alpha_g): a positive effect means more purchases) and the dropout shape
``a_g = a · exp(gamma_dropout_g)`` (their chance to leave after a purchase is Beta(a_g, b): a
positive effect means more leaving); the reference group has no effect. One-hot groups only (the
acquisition channel is the workbook's one use), fitted by maximum likelihood with a weak normal
prior (standard deviation :data:`EFFECT_PRIOR_SD`) on each effect, so that a small group cannot
send its effect to infinity, and a weak one on the dropout shapes (:data:`SHAPE_PRIOR_SD`), so that
a book where few have left yet keeps finite parameters and a range.

Why written here: lifetimes has no covariates, and CLVTools (R) and PyMC-Marketing (PyMC, a
compiler and several hundred MB) are too heavy for one characteristic; the likelihood is the
BG/NBD's closed form with per-group parameters. Conventions as :mod:`crm_helpers.models.btyd`
(``frequency`` repeat purchase periods, ``recency``, ``T``, all in days in this workbook).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import betaln, gammaln

from crm_helpers.models.btyd import (ArrayLike, ClvError, NoRepeatBuyersError, beta_geo_new_customer_purchases,
                                     nonnegative_floats)

EFFECT_PRIOR_SD = 2.0
"""Standard deviation of the normal prior on each group's effects (log scale): exp(±2) is a 7-fold
difference in purchase rate or dropout, allowed but not forced by little data."""

SHAPE_PRIOR_SD = 2.0
"""Standard deviation of the weak normal prior on log a and log b (centred on a = b = 1). Where few
customers have left, the likelihood is flat along a and b growing together (every customer with
the same dropout chance) and the maximum runs off to a ≈ 60, b ≈ 1,500 or to the bounds, with no
finite range; the prior keeps them where the data can still move them."""

_NODES = (np.arange(512) + 0.5) / 512
"""Quantile levels at which the Beta distribution of the dropout chance is evaluated (midpoint rule)."""


class BetaGeoCovariateModel:
    """BG/NBD whose purchase rate and dropout depend on a customer's group (see the module notes).

    ``fit(frequency, recency, T, groups=...)`` returns self; fitted state: ``params_`` (r, alpha, a,
    b of the reference group), ``effects_`` (DataFrame by group: purchase, dropout, log scale,
    0 for ``reference_``), ``groups_`` (the groups' names, the reference first), ``covariance_``
    (of the fitted parameters, from the numerical Hessian; None when it is not positive definite).
    """

    def __init__(self, effect_prior_sd: float = EFFECT_PRIOR_SD) -> None:
        self.effect_prior_sd = effect_prior_sd

    def fit(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, groups: Sequence[str] | pd.Series,
            reference: str | None = None) -> "BetaGeoCovariateModel":
        """Fit on one row per customer; ``groups`` holds each customer's group label; ``reference``
        (default: the largest group) is the group the effects are measured against."""
        x, tx, t_cap = (nonnegative_floats(v, n) for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T")))
        labels = pd.Series(np.asarray(groups, dtype=object)).fillna("unknown").astype(str)
        if not len(x) == len(tx) == len(t_cap) == len(labels):
            raise ClvError("frequency, recency, T and groups must have one value per customer")
        if not (x > 0).any():
            raise NoRepeatBuyersError("nobody bought twice: there is nothing to learn about buying again")
        counts = labels.value_counts()
        reference = reference if reference is not None else str(counts.index[0])
        if reference not in counts.index:
            raise ClvError(f"the reference group {reference!r} has no customer")
        self.reference_ = reference
        self.groups_ = [reference] + [g for g in counts.index if g != reference]
        codes = pd.Categorical(labels, categories=self.groups_).codes
        self._data = (x, tx, t_cap, codes)
        k = len(self.groups_)
        rate = x.sum() / max(t_cap.sum(), 1e-9)
        start = np.r_[np.log([1.0, 1.0 / max(rate, 1e-9), 1.0, 3.0]), np.zeros(2 * (k - 1))]
        found = optimize.minimize(self._objective, start, method="L-BFGS-B",
                                  bounds=[(-12, 12)] * 4 + [(-8, 8)] * (2 * (k - 1)))
        if not np.isfinite(found.fun):
            raise ClvError("the BG/NBD with groups could not be fitted to these customers")
        self._theta = found.x
        r, alpha, a, b = np.exp(found.x[:4])
        self.params_ = {"r": r, "alpha": alpha, "a": a, "b": b}
        self.effects_ = pd.DataFrame({"purchase": np.r_[0.0, found.x[4:4 + k - 1]],
                                      "dropout": np.r_[0.0, found.x[4 + k - 1:]]}, index=pd.Index(self.groups_, name="group"))
        self.group_sizes_ = counts.reindex(self.groups_).astype(int)
        self.covariance_ = _inverse_hessian(self._objective, found.x)
        return self

    def _objective(self, theta: np.ndarray) -> float:
        """Minus the log-likelihood plus the effects' prior."""
        x, tx, t_cap, codes = self._data
        k = len(self.groups_)
        log_r, log_alpha, log_a, log_b = theta[:4]
        purchase = np.r_[0.0, theta[4:4 + k - 1]][codes]
        dropout = np.r_[0.0, theta[4 + k - 1:]][codes]
        r, b = np.exp(log_r), np.exp(log_b)
        alpha, a = np.exp(log_alpha - purchase), np.exp(log_a + dropout)
        first = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
                 - (r + x) * np.log(alpha + t_cap))
        with np.errstate(invalid="ignore", divide="ignore"):
            second = np.where(x > 0, betaln(a + 1, b + x - 1) - betaln(a, b + x)
                              + (r + x) * (np.log(alpha + t_cap) - np.log(alpha + tx)), -np.inf)
        loglik = np.sum(first + np.logaddexp(0.0, second))
        prior = (0.5 * np.sum(theta[4:] ** 2) / self.effect_prior_sd ** 2
                 + 0.5 * (log_a ** 2 + log_b ** 2) / SHAPE_PRIOR_SD ** 2)
        value = -loglik + prior
        return float(value) if np.isfinite(value) else 1e300

    def group_outlook(self, t: float, *, draws: int = 400, level: float = 0.8, random_state: int = 0) -> pd.DataFrame:
        """For a new customer of each group: ``purchases``, the repeat purchases expected in their first
        ``t`` periods (days), and ``later``, those expected in the next ``t`` (a customer who leaves
        buys nothing then: staying and buying in one figure), each with ``_low`` / ``_high``, the
        ``level`` range over the parameters' uncertainty (``draws`` from their asymptotic normal; none
        when ``draws`` is 0 or the covariance is unknown); ``customers`` is the group's size. Indexed
        by group, reference first.

        The BG/NBD's own chance of being "alive" is not offered: a customer there can leave only
        right after a purchase, so a group that buys rarely looks loyal however soon it stops."""
        rng = np.random.default_rng(random_state)
        thetas = self._theta[None, :]
        if self.covariance_ is not None and draws > 0:
            thetas = np.vstack([thetas, rng.multivariate_normal(self._theta, self.covariance_, size=draws)])
        k, tail = len(self.groups_), (1 - level) / 2
        zeros = np.zeros((len(thetas), 1))
        purchase_effects = np.hstack([zeros, thetas[:, 4:4 + k - 1]])
        dropout_effects = np.hstack([zeros, thetas[:, 4 + k - 1:]])
        r, b = np.exp(thetas[:, 0]), np.exp(thetas[:, 3])
        rows = []
        for g, group in enumerate(self.groups_):
            alpha, a = np.exp(thetas[:, 1] - purchase_effects[:, g]), np.exp(thetas[:, 2] + dropout_effects[:, g])
            first = _new_customer_purchases(t, r, alpha, a, b)
            later = _new_customer_purchases(2 * t, r, alpha, a, b) - first
            row = {"group": group, "customers": int(self.group_sizes_.iloc[g]), "purchases": first[0], "later": later[0]}
            for name, values in (("purchases", first[1:]), ("later", later[1:])):
                row[f"{name}_low"] = np.quantile(values, tail) if len(values) else np.nan
                row[f"{name}_high"] = np.quantile(values, 1 - tail) if len(values) else np.nan
            rows.append(row)
        return pd.DataFrame(rows).set_index("group")


def _new_customer_purchases(t: float, r: np.ndarray, alpha: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """BG/NBD's expected repeat purchases of a new customer in ``t`` periods (Fader, Hardie & Lee 2005,
    eq. 9), elementwise over parameter draws; where that formula has no finite value (a ≤ 1), the
    same expectation by quadrature over p: E[X(t) | λ, p] = (1 − e^{−λpt}) / p, and over λ ~
    Gamma(r, alpha) E[e^{−λpt}] = (alpha / (alpha + pt))^r."""
    with np.errstate(invalid="ignore", divide="ignore"):
        closed = beta_geo_new_customer_purchases(t, r, alpha=alpha, a=a, b=b)
    bad = ~np.isfinite(closed) | (a <= 1)
    if bad.any():
        p = stats.beta.ppf(_NODES[None, :], a[bad, None], b[bad, None]).clip(1e-12, 1)
        inner = 1 - (alpha[bad, None] / (alpha[bad, None] + p * t)) ** r[bad, None]
        closed[bad] = np.mean(inner / p, axis=1)
    return closed


def _inverse_hessian(f, theta: np.ndarray, step: float = 1e-4) -> np.ndarray | None:
    """The inverse of ``f``'s Hessian at ``theta`` (central differences), or None when it is not
    positive definite (then no range can be given)."""
    n = len(theta)
    h = np.zeros((n, n))
    e = np.eye(n) * step
    f0 = f(theta)
    for i in range(n):
        for j in range(i, n):
            if i == j:
                h[i, i] = (f(theta + e[i]) - 2 * f0 + f(theta - e[i])) / step ** 2
            else:
                h[i, j] = h[j, i] = (f(theta + e[i] + e[j]) - f(theta + e[i] - e[j]) - f(theta - e[i] + e[j])
                                     + f(theta - e[i] - e[j])) / (4 * step ** 2)
    try:
        np.linalg.cholesky(h)
    except np.linalg.LinAlgError:
        return None
    return np.linalg.inv(h)
