"""The "buy till you die" models and the spend model, with no store access.

- **BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): customers buy
  at their own Poisson rate and may leave for good right after each repeat purchase.
- **MBG/NBD** (Batislam, Denizel & Filiztekin 2007): as BG/NBD, but a customer may also leave
  right after the first purchase, so one-time buyers can be gone too.
- **Pareto/NBD** (Schmittlein, Morrison & Colombo 1987; likelihood as in Fader, Hardie & Lee
  2005, "A note on deriving the Pareto/NBD model"): customers buy at their own Poisson rate and
  leave at any moment after an exponential lifetime with its own rate.
- **Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV"): what one purchase is worth.

Conventions follow the ``lifetimes`` library: ``frequency`` is the number of repeat purchase
periods, ``recency`` the customer's age at their last purchase, ``T`` their age at the end of
the observation, all in the same periods (days in this workbook); the models follow the
scikit-learn shape (``fit`` returns self, fitted state ends in ``_``) and lifetimes' parameter
names.

Why these models are written here instead of depending on ``lifetimes``: the library has been
unmaintained since 2020, it pins old versions of ``autograd`` and ``dill`` that clash with the
rest of the scientific stack, and its fitters evaluate the likelihood on every customer row
(autograd for BG/NBD, Nelder-Mead over ``hyp2f1`` on every row for Pareto/NBD), which is slow
for millions of customers and fails on some data. The models are a few closed-form formulas;
here each log-likelihood is evaluated once per *unique* (frequency, recency, T) row with
weights, vectorized with ``scipy.special`` (the Pareto/NBD's hypergeometric term by a quadrature
of the integral it stands for), with analytic gradients tested against finite differences, and
the fits are checked against published CDNOW estimates (and lifetimes' own fits) in the tests.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Callable, Self, Sequence

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

from crm_helpers import i18n
from crm_helpers.errors import CrmError
from crm_helpers.models.predictive import DEFAULT_DRAWS, FutureSampler, PredictiveRange, predictive_range

ArrayLike = pd.Series | np.ndarray | Sequence[float]
LogLikelihood = Callable[[np.ndarray], tuple[float, np.ndarray]]
"""A function of the parameters returning the weighted log-likelihood and its gradient."""

GG_CORRELATION_LIMIT = 0.3
"""Above this absolute frequency–monetary correlation, Gamma-Gamma's independence assumption is doubtful."""


class ClvError(CrmError, ValueError):
    """The data cannot be summarised, or a model cannot be fitted or applied to them."""


class NoRepeatBuyersError(ClvError):
    """Nobody bought twice: there is nothing to learn the repeat-purchase process from."""


class NegativeValueError(ClvError):
    """A frequency, recency, age or monetary value is negative."""


class GammaGammaAssumptionWarning(UserWarning):
    """Spend per purchase is correlated with purchase frequency, which Gamma-Gamma assumes it is not."""


class CommonDropoutWarning(UserWarning):
    """The fitted chances of leaving hardly differ between customers: a and b say little alone."""


COMMON_DROPOUT_CV = 0.25
"""Coefficient of variation of the fitted Beta(a, b) of dropout chances below which the fit says
that everybody has about the same chance of leaving (CDNOW's fit has 0.85)."""


# --------------------------------------------------------------------------------------------
# Shared helpers of the models
# --------------------------------------------------------------------------------------------


def nonnegative_floats(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as a flat float array; ClvError names ``name`` when one is missing, infinite or negative."""
    arr = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(arr).all():
        raise ClvError(f"{name} holds missing or infinite values")
    if (arr < 0).any():
        raise NegativeValueError(f"{name} must not be negative ({int((arr < 0).sum())} negative values)")
    return arr


def shaped_like(result: np.ndarray, template: ArrayLike, *, name: str) -> pd.Series | np.ndarray:
    """``result`` as a Series named ``name`` with the template's index when the input was a Series,
    else as it is: the models answer in the shape they were asked in."""
    if isinstance(template, pd.Series):
        return pd.Series(result, index=template.index, name=name)
    return result


def _check_rfm(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, tx, t_cap = nonnegative_floats(frequency, "frequency"), nonnegative_floats(recency, "recency"), nonnegative_floats(T, "T")
    if not (len(x) == len(tx) == len(t_cap)):
        raise ClvError("frequency, recency and T must have the same length")
    if (x != np.round(x)).any():
        raise ClvError("frequency must be a whole number of repeat purchase periods")
    if (tx > t_cap + 1e-9).any():
        raise ClvError("recency (age at last purchase) cannot exceed T (age at the end)")
    if ((x == 0) & (tx > 0)).any():
        raise ClvError("a customer with no repeat purchase must have recency 0")
    return x, tx, t_cap


def _unique_inverse(columns: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of ``columns`` and, for every row, the position of its unique row.

    Each column is coded on its own and the codes are combined step by step (re-coded after
    each step, so the combined key stays small): far faster than hashing tuples.
    """
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for col in columns:
        code, uniques = pd.factorize(col)
        key, _ = pd.factorize(key * len(uniques) + code)
    key = np.asarray(key, dtype=np.int64)
    representative = np.empty(int(key.max()) + 1 if len(key) else 0, dtype=np.int64)
    representative[key] = np.arange(len(key))
    return [np.asarray(col, dtype=float)[representative] for col in columns], key


def _collapse(columns: list[np.ndarray], weights: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of ``columns`` and the summed weight of each (the likelihood is per unique row)."""
    uniques, key = _unique_inverse(columns)
    return uniques, np.bincount(key, weights=weights, minlength=len(uniques[0]))


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Σ a·b without BLAS: a multi-threaded BLAS dot thrashes when other processes share the cores."""
    return float(np.add.reduce(a * b))


LOG_BOUND = 25.0
"""Every parameter is searched between e^−25 and e^25."""


WEAK_PRIOR_SD = 2.5
"""Spread, on the log scale, of the weak prior the workbook's analyses give every parameter: a
parameter may still move e^2.5 ≈ 12 times away from the prior's centre at one standard deviation,
so a book with plenty of repeat buyers is hardly touched, but a thin book can no longer send a
parameter that its data cannot tell (BG/NBD's a and b on the demo) to e^25."""


@dataclass(frozen=True)
class LogPrior:
    """Independent normal priors on the log-parameters: ln θ ~ N(``centre``, ``sd``²)."""

    centre: np.ndarray
    sd: float

    def precision(self) -> np.ndarray:
        """The prior's precision matrix on the log scale (diagonal 1/sd²)."""
        return np.eye(len(self.centre)) / self.sd**2


def _fit_log_params(
    loglik_grad: LogLikelihood, start: np.ndarray, total_weight: float, penalizer: float, what: str,
    prior: LogPrior | None = None,
) -> np.ndarray:
    """Maximise the weighted log-likelihood over log-parameters with L-BFGS-B and the given gradient.

    With ``prior`` it is the log-posterior that is maximised (the posterior mode): the likelihood
    plus Σ −(ln θ − centre)² / (2 sd²).
    """

    def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(u)
        ll, grad = loglik_grad(theta)
        value = -ll / total_weight + penalizer * np.sum(theta**2)
        grad_u = (-grad / total_weight + 2 * penalizer * theta) * theta  # chain rule: d/du = theta * d/dtheta
        if prior is not None:
            gap = u - prior.centre
            value += np.sum(gap**2) / (2 * prior.sd**2 * total_weight)
            grad_u = grad_u + gap / (prior.sd**2 * total_weight)
        return value, grad_u

    result = optimize.minimize(
        objective, np.log(start), jac=True, method="L-BFGS-B",
        bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start), options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
    )
    if not np.isfinite(result.fun):
        raise ClvError(f"the {what} fit failed: the likelihood is not finite for these data")
    if not result.success and "ABNORMAL" not in str(result.message).upper():
        raise ClvError(f"the {what} fit did not converge: {result.message}")
    return np.exp(result.x)


def _covariance(loglik_grad: LogLikelihood, theta: np.ndarray, prior: LogPrior | None = None) -> np.ndarray:
    """The inverse observed information (Hessian by central differences of the gradient).

    With ``prior``, the inverse of the log-posterior's curvature (the Laplace approximation of
    the posterior), taken on the log scale, where the prior is normal, and turned back into the
    parameters' scale. The rows and columns of any parameter whose variance is not positive are
    NaN (with a warning): the data cannot tell that parameter.
    """
    k = len(theta)
    hessian = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        hessian[:, j] = -(loglik_grad(up)[1] - loglik_grad(down)[1]) / (2 * h)
    hessian = (hessian + hessian.T) / 2
    scale = np.ones((k, k))
    if prior is not None:  # on u = ln θ: −∂²LL/∂u² = θθᵀ ∘ (−∂²LL/∂θ²) − diag(θ ∘ ∂LL/∂θ), plus the prior's precision
        scale = np.outer(theta, theta)
        hessian = scale * hessian - np.diag(theta * loglik_grad(theta)[1]) + prior.precision()
    covariance = np.full((k, k), np.nan)
    try:
        covariance = np.linalg.inv(hessian) * scale
    except np.linalg.LinAlgError:
        pass
    bad = ~(np.diag(covariance) > 0)
    if bad.any():
        covariance[bad, :] = np.nan
        covariance[:, bad] = np.nan
        warnings.warn("the information matrix is not positive definite at the estimate: some standard errors "
                      "are not available (a parameter may sit at the edge of what the data can tell)", stacklevel=3)
    return covariance


# --------------------------------------------------------------------------------------------
# The purchase models: what BG/NBD, MBG/NBD and Pareto/NBD share
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RfmRows:
    """Unique (frequency, recency, T) rows with weights, each column coded against its few distinct values.

    Frequency, recency and T take few distinct values (whole days of a few years), so every
    special function is evaluated on those values only and gathered back to the rows. The
    Pareto/NBD's hypergeometric term G(u) is a function of the frequency and an age u, needed at
    u = recency and at u = T: it is evaluated once on the union of the distinct (frequency,
    recency) and (frequency, T) pairs (``age_pairs``; at a million customers 63,000 pairs where
    the two lists hold 106,000), and ``tx_pair`` / ``t_pair`` say, for every row, which of them
    are its (frequency, recency) and (frequency, T).
    """

    w: np.ndarray
    x: np.ndarray
    x_values: np.ndarray
    x_code: np.ndarray
    tx_values: np.ndarray
    tx_code: np.ndarray
    t_values: np.ndarray
    t_code: np.ndarray
    x_weight: np.ndarray  # total weight per distinct frequency
    age_pairs: tuple[np.ndarray, np.ndarray]  # distinct (frequency, age) pairs, age a recency or a T
    tx_pair: np.ndarray
    t_pair: np.ndarray

    @classmethod
    def build(cls, x: np.ndarray, tx: np.ndarray, t_cap: np.ndarray, w: np.ndarray) -> "_RfmRows":
        (x, tx, t_cap), w = _collapse([x, tx, t_cap], w)
        x_code, x_values = pd.factorize(x, sort=True)
        tx_code, tx_values = pd.factorize(tx, sort=True)
        t_code, t_values = pd.factorize(t_cap, sort=True)
        (pair_x, pair_age), pair = _unique_inverse([np.concatenate([x, x]), np.concatenate([tx, t_cap])])
        return cls(w, x, np.asarray(x_values, dtype=float), x_code, np.asarray(tx_values, dtype=float), tx_code,
                   np.asarray(t_values, dtype=float), t_code,
                   np.bincount(x_code, weights=w, minlength=len(x_values)), (pair_x, pair_age), pair[:len(x)],
                   pair[len(x):])


PARAMETER_DRAWS = 100
"""Parameter vectors behind a simulated range (each shared by several futures): P(alive) is
computed once per parameter draw, the Pareto/NBD's by quadrature."""

UNKNOWN_LOG_SD = 1.0
"""Log-scale standard deviation a parameter draw gets when the fit cannot give its variance."""


class _Estimator:
    """Fitted parameters in ``params_`` (a Series named by ``param_names``), as scikit-learn keeps fitted state."""

    param_names: list[str] = []

    def _theta(self) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise ClvError("fit the model first")
        return self.params_.to_numpy(dtype=float)

    def _store_fit(self, theta: np.ndarray, loglik_grad: LogLikelihood, n_customers: int,
                   prior: LogPrior | None = None) -> None:
        """Keep the maximum-likelihood (or, with ``prior``, posterior-mode) ``theta`` as the fitted state:
        ``params_``, ``covariance_`` and ``standard_errors_`` (from the Hessian of the log-likelihood,
        or of the log-posterior), ``log_likelihood_``, ``n_customers_``."""
        self.params_ = pd.Series(theta, index=self.param_names, name="estimate")
        self.covariance_ = _covariance(loglik_grad, theta, prior)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(self.covariance_)), index=self.param_names,
                                          name="standard_error")
        self.log_likelihood_ = loglik_grad(theta)[0]
        self.n_customers_ = n_customers

    def parameter_draws(self, n_draws: int, *, random_state: int | np.random.Generator | None = None) -> np.ndarray:
        """``n_draws`` parameter vectors (rows, in ``param_names`` order) from the fit's asymptotic
        normal on the log scale, ln θ ~ N(ln θ̂, Cov(ln θ)) (Cov(ln θ) = ``covariance_`` / θ̂θ̂ᵀ, the
        delta method), so every draw is positive. A parameter whose variance is not available (the
        data cannot tell it) is drawn with a standard deviation of 1 on the log scale, a factor
        e ≈ 2.7 either way: a wide range rather than a confident one."""
        theta = self._theta()
        log_cov = np.array(self.covariance_, dtype=float) / np.outer(theta, theta)
        unknown = ~np.isfinite(np.diag(log_cov))
        log_cov[unknown, :] = 0.0
        log_cov[:, unknown] = 0.0
        log_cov[unknown, unknown] = UNKNOWN_LOG_SD**2
        rng = np.random.default_rng(random_state)
        return np.exp(rng.multivariate_normal(np.log(theta), log_cov, size=n_draws, method="eigh"))

    def with_params(self, theta: ArrayLike) -> Self:
        """A copy of this fitted model with other parameter values (to see how predictions move with them), not refitted."""
        other = copy.copy(self)
        other.params_ = pd.Series(np.asarray(theta, dtype=float), index=self.param_names, name="estimate")
        return other


class PurchaseModel(_Estimator):
    """What the three purchase models share: the fit, the checks, and predictions per customer.

    A subclass gives ``name``, ``param_names``, its log-likelihood (``_loglik_grad``), a start
    (``_start``), P(alive) (``_p_alive``), the expected purchases of a customer alive at T
    (``_if_alive``) and those of a new customer (``expected_purchases_new_customer``). Times are
    in the summary's periods (days in this workbook). ``penalizer_coef`` adds
    ``penalizer_coef · Σ θ²`` to the mean negative log-likelihood, as in lifetimes (0 = plain
    maximum likelihood; a small value steadies tiny books). ``prior_sd`` (None = plain maximum
    likelihood) puts a weak normal prior of that spread on every log-parameter, centred on the
    data's scale (the default start: r, a, s of 1, α the mean time between purchases, β the mean
    age), and the fit is the posterior mode: what the workbook's analyses use
    (:data:`WEAK_PRIOR_SD`), so a thin book cannot send a parameter to a bound.

    Fitted state: ``params_`` (Series), ``standard_errors_`` and ``covariance_`` (from the inverse
    observed information of the unpenalised likelihood; NaN where it is not positive definite),
    ``log_likelihood_``, ``n_customers_``.
    """

    name = ""

    def __init__(self, penalizer_coef: float = 0.0, prior_sd: float | None = None) -> None:
        self.penalizer_coef = penalizer_coef
        self.prior_sd = prior_sd

    def fit(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None,
        initial_params: ArrayLike | None = None,
    ) -> "PurchaseModel":
        """Fit on one row per customer (or per group of identical customers with ``weights``).

        ``initial_params`` (as lifetimes' argument of that name, in ``param_names`` order) starts
        the search there, e.g. from a fit on an earlier period of the same book; by default it
        starts from the data's mean purchase rate and age.
        """
        x, tx, t_cap = _check_rfm(frequency, recency, T)
        w = np.ones_like(x) if weights is None else nonnegative_floats(weights, "weights")
        if len(w) != len(x):
            raise ClvError("weights must have one value per row")
        if len(x) == 0 or w.sum() == 0:
            raise ClvError(f"there are no customers to fit the {self.name} model on")
        if not (w[x > 0] > 0).any():
            raise NoRepeatBuyersError(
                f"none of the {int(w.sum())} customers bought more than once: {self.name} needs repeat "
                "buyers to learn how often customers buy and when they leave"
            )
        if (t_cap[w > 0] == 0).all():
            raise ClvError("every customer bought for the first time at the end of the observation (T = 0)")
        rows = _RfmRows.build(x, tx, t_cap, w)

        def loglik_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return self._loglik_grad(theta, rows)

        rate = np.dot(w, x) / max(np.dot(w, t_cap), 1e-9)
        mean_age = np.dot(w, t_cap) / w.sum()
        start = self._start(rate, mean_age) if initial_params is None else nonnegative_floats(initial_params, "initial_params")
        if len(start) != len(self.param_names) or not (start > 0).all():
            raise ClvError(f"initial_params must be {len(self.param_names)} positive values "
                           f"({', '.join(self.param_names)})")
        prior = None if self.prior_sd is None else LogPrior(np.log(self._start(rate, mean_age)), self.prior_sd)
        theta = _fit_log_params(loglik_grad, start, w.sum(), self.penalizer_coef, self.name, prior)
        self._store_fit(theta, loglik_grad, int(w.sum()), prior)
        self._check_fit(theta)
        return self

    def log_likelihood(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None
    ) -> float:
        """Log-likelihood of these customers at the model's parameters (fitted, or set by :meth:`with_params`)."""
        x, tx, t_cap = _check_rfm(frequency, recency, T)
        w = np.ones_like(x) if weights is None else nonnegative_floats(weights, "weights")
        return self._loglik(self._theta(), _RfmRows.build(x, tx, t_cap, w))

    def log_likelihood_per_customer(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """Each customer's log-likelihood at the model's parameters (they sum to :meth:`log_likelihood`).

        The difference between a customer's value on their history up to a later date and on the
        same history up to an earlier one is the log-probability the model gave, at the earlier
        date, to what they did in between: a holdout score (:func:`crm_helpers.analyses.clv.holdout_validation`).
        """
        x, tx, t_cap = _check_rfm(frequency, recency, T)
        return self._row_loglik(self._theta(), x, tx, t_cap)

    def _row_loglik(self, theta: np.ndarray, x: np.ndarray, tx: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _loglik(self, theta: np.ndarray, rows: _RfmRows) -> float:
        return self._loglik_grad(theta, rows)[0]

    def _start(self, rate: float, mean_age: float) -> np.ndarray:
        raise NotImplementedError

    def _loglik_grad(self, theta: np.ndarray, rows: _RfmRows) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def _check_fit(self, theta: np.ndarray) -> None:
        """Warn about a fit that is valid but easy to misread (nothing by default)."""

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> pd.Series | np.ndarray:
        """Probability that each customer is still a customer at age T."""
        x, tx, t_cap = _check_rfm(frequency, recency, T)
        return shaped_like(self._p_alive(x, tx, t_cap), frequency, name="p_alive")

    def expected_purchases(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> pd.Series | np.ndarray:
        """Expected repeat purchases in the next ``t`` periods given each customer's history.

        lifetimes' ``conditional_expected_number_of_purchases_up_to_time``.
        """
        x, tx, t_cap = _check_rfm(frequency, recency, T)
        if t < 0:
            raise NegativeValueError("the prediction horizon t must not be negative")
        # the part for a customer still alive depends on (frequency, T) only: evaluate it on those pairs
        (ux, ut), pair = _unique_inverse([x, t_cap])
        return shaped_like(self._if_alive(t, ux, ut)[pair] * self._p_alive(x, tx, t_cap), frequency,
                           name="expected_purchases")

    def discounted_expected_purchases(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, months: int, periods_per_month: float,
        monthly_rate: float,
    ) -> pd.Series | np.ndarray:
        """Expected repeat purchases in each of the next ``months`` months, month k discounted by
        (1 + ``monthly_rate``)ᵏ, summed per customer: the purchase side of lifetimes'
        discounted-cash-flow CLV. A month is ``periods_per_month`` model periods.
        """
        x, tx, t_cap = _check_rfm(frequency, recency, T)
        (ux, ut), pair = _unique_inverse([x, t_cap])  # the purchase curve depends on (frequency, T) only
        discounted = np.zeros_like(ux)
        previous = np.zeros_like(ux)
        for k in range(1, int(months) + 1):  # a loop over months, not customers
            cumulative = self._if_alive(k * periods_per_month, ux, ut)
            discounted += (cumulative - previous) / (1 + monthly_rate) ** k
            previous = cumulative
        return shaped_like(self._p_alive(x, tx, t_cap) * discounted[pair], frequency,
                           name="discounted_expected_purchases")

    def future_sampler(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, n_draws: int = DEFAULT_DRAWS,
        random_state: int = 0, spend_model: "GammaGammaModel | None" = None, monetary_value: ArrayLike | None = None,
        scale: ArrayLike | None = None, model_sd: float = 0.0,
    ) -> FutureSampler:
        """Simulated futures of these customers over the next ``t`` periods (see :class:`FutureSampler`).

        Each draw takes one parameter vector (:meth:`parameter_draws`; the spend model's too),
        then for every customer, given their history: whether they are still a customer (with
        their P(alive) under that draw), their purchase rate and dropout given that they are
        (:meth:`_draw_if_alive`), their repeat purchases in (T, T + t], and with ``spend_model``
        (Gamma-Gamma) and ``monetary_value`` their spend level given their past spend and the
        value of those purchases. Without a spend model the values are purchases. ``scale``
        multiplies each customer's values (e.g. a margin and a discount); ``model_sd`` is the
        model's own error on the log scale (:class:`FutureSampler`). Reproducible for a given
        ``random_state``.
        """
        x, tx, t_cap = _check_rfm(frequency, recency, T)
        if t < 0:
            raise NegativeValueError("the prediction horizon t must not be negative")
        # fewer parameter draws than futures: each is used by n_draws / PARAMETER_DRAWS columns in turn
        thetas = self.parameter_draws(min(n_draws, PARAMETER_DRAWS), random_state=np.random.default_rng([random_state, 0]))
        column_theta = np.arange(n_draws) % len(thetas)
        multiplier = np.ones_like(x) if scale is None else nonnegative_floats(scale, "scale")
        spend_thetas, m = None, None
        if spend_model is not None:
            m = nonnegative_floats(np.zeros_like(x) if monetary_value is None else monetary_value, "monetary_value")
            spend_thetas = spend_model.parameter_draws(len(thetas), random_state=np.random.default_rng([random_state, 3]))[
                column_theta]
        if len(multiplier) != len(x) or (m is not None and len(m) != len(x)):
            raise ClvError("scale and monetary_value must have one value per customer")

        def draw_block(positions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            bx, btx, bt = x[positions], tx[positions], t_cap[positions]
            alive = rng.random((len(positions), n_draws)) < self._p_alive_draws(thetas, bx, btx, bt)[:, column_theta]
            values = np.where(alive, self._draw_if_alive(thetas[column_theta], t, bx, bt, rng), 0).astype(float)
            if spend_thetas is not None:
                values = GammaGammaModel.draw_spend(spend_thetas, values, frequency=bx, monetary_value=m[positions],
                                                    rng=rng)
            return values * multiplier[positions, None]

        return FutureSampler(draw_block, len(x), n_draws, random_state, model_sd)

    def purchases_range(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, level: float = 0.8,
        n_draws: int = DEFAULT_DRAWS, random_state: int = 0, model_sd: float = 0.0,
    ) -> PredictiveRange:
        """The range in which these customers' repeat purchases over the next ``t`` periods fall
        with probability ``level``: in total (``expected``, ``low``, ``high``) and per customer
        (``per_customer``). The range holds the parameters' uncertainty and each customer's own
        randomness (:meth:`future_sampler`), and with ``model_sd`` the model's own error; the
        expected values are :meth:`expected_purchases`.
        """
        sampler = self.future_sampler(t, frequency, recency, T, n_draws=n_draws, random_state=random_state,
                                      model_sd=model_sd)
        expected = np.asarray(self.expected_purchases(t, frequency, recency, T))
        return predictive_range(sampler, expected, what="repeat purchases", horizon=t, level=level,
                                index=frequency.index if isinstance(frequency, pd.Series) else None)

    def spend_range(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, monetary_value: ArrayLike,
        spend_model: "GammaGammaModel", level: float = 0.8, n_draws: int = DEFAULT_DRAWS, random_state: int = 0,
        model_sd: float = 0.0,
    ) -> PredictiveRange:
        """As :meth:`purchases_range`, for the spend of those purchases (in the currency of
        ``monetary_value``), each purchase's value drawn from the fitted Gamma-Gamma ``spend_model``
        given the customer's past mean spend; the expected values are expected purchases × the
        expected spend per purchase (:meth:`GammaGammaModel.expected_average_value`).
        """
        sampler = self.future_sampler(t, frequency, recency, T, n_draws=n_draws, random_state=random_state,
                                      spend_model=spend_model, monetary_value=monetary_value, model_sd=model_sd)
        expected = (np.asarray(self.expected_purchases(t, frequency, recency, T))
                    * np.asarray(spend_model.expected_average_value(frequency, monetary_value)))
        return predictive_range(sampler, expected, what="spend", horizon=t, level=level,
                                index=frequency.index if isinstance(frequency, pd.Series) else None)

    def _p_alive_draws(self, thetas: np.ndarray, x: np.ndarray, tx: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        """P(alive) of every customer (rows) under every parameter draw (columns)."""
        return np.column_stack([self.with_params(theta)._p_alive(x, tx, t_cap) for theta in thetas])

    def _draw_if_alive(self, thetas: np.ndarray, t: float, x: np.ndarray, t_cap: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
        """Repeat purchases in (T, T + t] of every customer (rows) under every parameter draw
        (columns), drawn as if each is still a customer at T: their latent rates drawn given that
        and their history, then their purchases."""
        raise NotImplementedError

    def _p_alive(self, x: np.ndarray, tx: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _if_alive(self, t: float, x: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        """Expected purchases in (T, T + t] of a customer alive at T with ``x`` repeat purchases."""
        raise NotImplementedError

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> float | np.ndarray:
        """Expected repeat purchases of a new customer in their first ``t`` periods.

        lifetimes' ``expected_number_of_purchases_up_to_time``; what the model predicts for a
        customer about whom nothing is known yet.
        """
        raise NotImplementedError


def _scalar_or_array(value: np.ndarray) -> float | np.ndarray:
    return float(value) if value.ndim == 0 else value


# --------------------------------------------------------------------------------------------
# BG/NBD and MBG/NBD: leaving after a purchase
# --------------------------------------------------------------------------------------------


def _beta_geo_loglik_grad(theta: np.ndarray, rows: _RfmRows, modified: bool = False) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD (FHL 2005, eq. 6) or MBG/NBD log-likelihood and its gradient in (r, alpha, a, b).

    BG/NBD:  LL = ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b)
                  + ln[(α+T)^−(r+x) + 1{x>0} · a/(b+x−1) · (α+t_x)^−(r+x)]
    MBG/NBD (``modified``; Batislam et al. 2007, as lifetimes' ``ModifiedBetaGeoFitter``) is the
    same with x + 1 in place of x in the Beta terms and the second bracket term for every x:
             LL = … + ln B(a, b+x+1) − ln B(a, b) + ln[(α+T)^−(r+x) + a/(b+x) · (α+t_x)^−(r+x)]
    """
    r, alpha, a, b = theta
    xv = rows.x_values
    xb = xv + 1 if modified else xv  # purchases at which the customer may have left
    can_leave = (xb > 0)
    # terms that depend on the frequency only, on its distinct values
    per_x_ll = gammaln(r + xv) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xb) - betaln(a, b)
    common = digamma(a + b) - digamma(a + b + xb)
    per_x_dr = digamma(r + xv) - digamma(r) + np.log(alpha)
    per_x_db = common + digamma(b + xb) - digamma(b)
    inv_bx1 = np.where(can_leave, 1.0 / np.where(can_leave, b + xb - 1, 1.0), 0.0)
    log_a_bx1 = np.where(can_leave, np.log(a) + np.log(np.where(can_leave, inv_bx1, 1.0)), -np.inf)
    log_at, log_atx = np.log(alpha + rows.t_values), np.log(alpha + rows.tx_values)
    inv_at, inv_atx = 1.0 / (alpha + rows.t_values), 1.0 / (alpha + rows.tx_values)
    # the per-row part: the log of the sum of the two terms of the bracket
    rx = r + rows.x
    lt, ltx = log_at[rows.t_code], log_atx[rows.tx_code]
    a3 = -rx * lt
    a4 = log_a_bx1[rows.x_code] - rx * ltx
    tail = np.logaddexp(a3, a4)
    w4 = np.exp(a4 - tail)  # share of the second term; 0 for BG/NBD's one-time buyers
    s4 = rows.w * w4
    s3 = rows.w - s4
    ll = _dot(rows.x_weight, per_x_ll) + _dot(rows.w, tail)
    d_r = _dot(rows.x_weight, per_x_dr) - _dot(s3, lt) - _dot(s4, ltx)
    d_alpha = (r / alpha * rows.w.sum()
               - _dot(rx, s3 * inv_at[rows.t_code] + s4 * inv_atx[rows.tx_code]))
    d_a = _dot(rows.x_weight, common) + s4.sum() / a
    d_b = _dot(rows.x_weight, per_x_db) - _dot(s4, inv_bx1[rows.x_code])
    return float(ll), np.array([d_r, d_alpha, d_a, d_b])


def _beta_geo_if_alive(theta: np.ndarray, t: float, x: np.ndarray, t_cap: np.ndarray, shift: int) -> np.ndarray:
    """FHL eq. 10 without its P(alive) factor (``shift`` 0); MBG/NBD's is the same with b + 1 (``shift`` 1)."""
    r, alpha, a, b = theta
    b = b + shift
    c = a + b + x - 1
    z = t / (alpha + t_cap + t)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_hyp = np.log(hyp2f1(r + x, b + x, c, z))
        # where 2F1 overflows, use Euler's transformation of the same function
        alt = np.log(hyp2f1(c - r - x, c - b - x, c, z)) + (c - r - x - b - x) * np.log1p(-z)
    log_hyp = np.where(np.isfinite(log_hyp), log_hyp, alt)
    first = (a + b + x - 1) / (a - 1)
    return -first * np.expm1(log_hyp + (r + x) * (np.log(alpha + t_cap) - np.log(alpha + t_cap + t)))


class _BetaGeoFamily(PurchaseModel):
    """BG/NBD and MBG/NBD: λ ~ Gamma(r, α) purchase rates, dropout chances p ~ Beta(a, b)."""

    param_names = ["r", "alpha", "a", "b"]
    _modified = False

    def _start(self, rate: float, mean_age: float) -> np.ndarray:
        return np.array([1.0, 1.0 / max(rate, 1e-9), 1.0, 1.0])

    def _loglik_grad(self, theta: np.ndarray, rows: _RfmRows) -> tuple[float, np.ndarray]:
        return _beta_geo_loglik_grad(theta, rows, self._modified)

    def _row_loglik(self, theta: np.ndarray, x: np.ndarray, tx: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        """Per customer, the log-likelihood of :func:`_beta_geo_loglik_grad`."""
        r, alpha, a, b = theta
        xb = x + 1 if self._modified else x
        can_leave = xb > 0
        with np.errstate(divide="ignore"):
            second = np.where(can_leave, np.log(a) - np.log(np.where(can_leave, b + xb - 1, 1.0)), -np.inf)
        return (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xb) - betaln(a, b)
                + np.logaddexp(-(r + x) * np.log(alpha + t_cap), second - (r + x) * np.log(alpha + tx)))

    def _check_fit(self, theta: np.ndarray) -> None:
        a, b = theta[2], theta[3]
        mean, spread = a / (a + b), np.sqrt(a * b / (a + b + 1)) / (a + b)
        if spread < COMMON_DROPOUT_CV * mean:
            warnings.warn(
                f"the chances of leaving hardly differ between customers (a = {a:.3g}, b = {b:.3g}: "
                f"{mean:.1%} ± {spread:.1%} after each {'purchase' if self._modified else 'repeat purchase'}); "
                "a and b are then poorly determined and mean little on their own, the expected values are "
                "still usable", CommonDropoutWarning, stacklevel=3,
            )

    def _p_alive(self, x: np.ndarray, tx: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        r, alpha, a, b = self._theta()
        log_odds = np.full_like(x, -np.inf)
        can_leave = np.ones_like(x, dtype=bool) if self._modified else x > 0
        xb = x[can_leave] + (1 if self._modified else 0)
        log_odds[can_leave] = (np.log(a) - np.log(b + xb - 1) + (r + x[can_leave])
                               * (np.log(alpha + t_cap[can_leave]) - np.log(alpha + tx[can_leave])))
        return np.exp(-np.logaddexp(0.0, log_odds))

    def _if_alive(self, t: float, x: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        return _beta_geo_if_alive(self._theta(), t, x, t_cap, 1 if self._modified else 0)

    def _p_alive_draws(self, thetas: np.ndarray, x: np.ndarray, tx: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        """:meth:`_p_alive` under every parameter draw at once (customers × draws)."""
        r, alpha, a, b = (col[None, :] for col in thetas.T)
        x, tx, t_cap = x[:, None], tx[:, None], t_cap[:, None]
        xb = x + (1 if self._modified else 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = np.log(a) - np.log(b + xb - 1) + (r + x) * (np.log(alpha + t_cap) - np.log(alpha + tx))
        if not self._modified:
            log_odds = np.where(x > 0, log_odds, -np.inf)  # BG/NBD: nobody leaves before a repeat purchase
        return np.exp(-np.logaddexp(0.0, log_odds))

    def _draw_if_alive(self, thetas: np.ndarray, t: float, x: np.ndarray, t_cap: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
        """Alive at T with x repeat purchases: λ ~ Gamma(r + x, α + T), p ~ Beta(a, b + x) (MBG/NBD:
        b + x + 1, having survived the first purchase too); the purchases until they leave are
        Geometric(p) (they leave right after one of them), so the count in (T, T + t] is
        min(Poisson(λt), Geometric(p))."""
        r, alpha, a, b = (col[None, :] for col in thetas.T)
        x, t_cap = x[:, None], t_cap[:, None]
        shape = (len(x), len(thetas))
        rate = rng.gamma(np.broadcast_to(r + x, shape)) / (alpha + t_cap)
        leave = np.clip(rng.beta(np.broadcast_to(a, shape), np.broadcast_to(b + x + (1 if self._modified else 0),
                                                                              shape)), 1e-12, 1.0)
        return np.minimum(rng.poisson(rate * t), rng.geometric(leave))


def beta_geo_new_customer_purchases(t: float | np.ndarray, r: float | np.ndarray, *, alpha: float | np.ndarray,
                                    a: float | np.ndarray, b: float | np.ndarray) -> np.ndarray:
    """BG/NBD's expected repeat purchases of a new customer in their first ``t`` periods (Fader,
    Hardie & Lee 2005, eq. 9), elementwise over arrays of ``t`` or of parameters (e.g. draws of
    them); finite only for a > 1."""
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


class BetaGeoModel(_BetaGeoFamily):
    """The BG/NBD "buy till you die" model (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

    While alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); after each repeat purchase
    they leave for good with probability p ~ Beta(a, b). A customer who never came back is
    certainly alive (P(alive) = 1). Parameters ``params_``: r, alpha, a, b (times in the
    summary's periods). See :class:`PurchaseModel` for the fitted state.
    """

    name = "BG/NBD"

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> float | np.ndarray:
        """Expected repeat purchases of a new customer in their first ``t`` periods (FHL eq. 9)."""
        r, alpha, a, b = self._theta()
        return _scalar_or_array(beta_geo_new_customer_purchases(np.asarray(t, dtype=float), r, alpha=alpha, a=a, b=b))


class ModifiedBetaGeoModel(_BetaGeoFamily):
    """The MBG/NBD model (Batislam, Denizel & Filiztekin 2007), as lifetimes' ``ModifiedBetaGeoFitter``.

    As BG/NBD, but a customer may leave right after *every* purchase, the first one included:
    a one-time buyer who has been silent a long time is probably gone, which BG/NBD cannot say.
    Parameters ``params_``: r, alpha, a, b. See :class:`PurchaseModel` for the fitted state.
    """

    name = "MBG/NBD"
    _modified = True

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> float | np.ndarray:
        """Expected repeat purchases of a new customer in their first ``t`` periods (Batislam et al. eq. 8)."""
        r, alpha, a, b = self._theta()
        t = np.asarray(t, dtype=float)
        hyp = hyp2f1(r, b + 1, a + b, t / (alpha + t))
        return _scalar_or_array(b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp))


# --------------------------------------------------------------------------------------------
# Pareto/NBD: leaving at any moment
# --------------------------------------------------------------------------------------------


_NODES, _NODE_WEIGHTS = np.polynomial.legendre.leggauss(32)
"""Gauss-Legendre nodes on [−1, 1] for each of the two panels of the Pareto/NBD's integral."""

PANEL_SPLIT = 3.0
"""The Pareto/NBD's integral is split 3 units of y left of its peak: a near-exponential far tail, and the peak."""

TAIL_DROP = 38.0
"""The Pareto/NBD's integral is taken where its integrand is within e^−38 (3e−17) of its peak."""


def _pareto_log_tail(theta: np.ndarray, x: np.ndarray, u: np.ndarray, with_grad: bool = False,
                     ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """ln G(u) = ln ∫ᵤ^∞ (α+τ)^−(r+x) (β+τ)^−(s+1) dτ, the Pareto/NBD's hypergeometric term, by quadrature.

    FHL's note writes G through 2F1(r+s+x, ·; r+s+x+1; z) with z = |α−β|/(max(α, β)+u); when β
    is far above α (customers who rarely leave) z nears 1 and the series needs thousands of
    terms, and 2F1 has no closed-form derivative in its parameters. Here the integral itself is
    taken in y = ln((m+u)/(m+τ)), m = min(α, β), where the integrand is
    (m+u)^−p · exp(p·y − e·ln(1 + c·e^y)), p = r+s+x, c = |β−α|/(m+u), e = s+1 (β ≥ α) or r+x:
    a log-concave bump that is cut where it falls e^−38 below its peak (the cut found by Newton
    steps from the safe side, so nothing larger is left out) and integrated with Gauss-Legendre
    on two panels (the near-exponential far tail, and the peak).
    Its derivatives in (r, α, s, β) are integrals over the same nodes, so the fit gets an
    analytic gradient. Returns ln G, and with ``with_grad`` also ∂ ln G/∂θ (rows × 4).
    """
    r, alpha, s, beta = theta
    x, u = np.asarray(x, dtype=float), np.asarray(u, dtype=float)
    m, gap = min(alpha, beta), abs(beta - alpha)
    p = r + s + x
    e = (s + 1) * np.ones_like(x) if beta >= alpha else r + x
    log_mu = np.log(m + u)
    c = gap / (m + u)

    def g(y: np.ndarray) -> np.ndarray:
        return p * y - e * np.log1p(c * np.exp(y))

    def slope(y: np.ndarray) -> np.ndarray:
        ce = c * np.exp(y)
        return p - e * ce / (1 + ce)

    # the peak: at y = 0 unless the integrand turns down before (only possible when e > p)
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.where((e > p) & (c > 0), np.log(p / ((e - p) * c)), 0.0)
    peak = np.minimum(peak, 0.0)
    target = g(peak) - TAIL_DROP
    low = peak - 1.0  # the tangent there lies above g (log-concave), so each Newton step stays left of the cut
    for _ in range(6):
        low = low - (g(low) - target) / slope(low)
    split = np.maximum(low, peak - PANEL_SPLIT)
    top = g(peak)  # the largest exponent, subtracted against overflow
    # two Gauss-Legendre panels, [split, 0] for every row and [low, split] where it is not empty
    sums = _panel_sums(split, np.zeros_like(split), p, e, c, top, with_grad)
    far = np.flatnonzero(split > low)
    for total, part in zip(sums, _panel_sums(low[far], split[far], p[far], e[far], c[far], top[far], with_grad)):
        total[far] += part
    total = sums[0]
    log_g = -p * log_mu + top + np.log(total)
    if not with_grad:
        return log_g
    # means over the integrand of ln(m+τ) = ln(m+u) − y, ln((M+τ)/(m+τ)), 1/(m+τ) = e^y/(m+u) and 1/(M+τ)
    mean_y, mean_log_big, mean_ey, mean_ey_big = (s_ / total for s_ in sums[1:])
    log_small = log_mu - mean_y
    log_large = log_small + mean_log_big
    inv_small, inv_large = mean_ey / (m + u), mean_ey_big / (m + u)
    log_a, log_b, inv_a, inv_b = ((log_small, log_large, inv_small, inv_large) if beta >= alpha
                                  else (log_large, log_small, inv_large, inv_small))
    grad = np.column_stack([-log_a, -(r + x) * inv_a, -log_b, -(s + 1) * inv_b])  # ∂/∂(r, α, s, β) of ln G
    return log_g, grad


def _panel_sums(low: np.ndarray, high: np.ndarray, p: np.ndarray, e: np.ndarray, c: np.ndarray, top: np.ndarray,
                with_grad: bool) -> list[np.ndarray]:
    """Gauss-Legendre sums over [low, high] per row of exp(p·y − e·ln(1 + c·e^y) − top) (see
    :func:`_pareto_log_tail`): the integral, and with ``with_grad`` the integrals of it times y,
    ln(1 + c·e^y), e^y and e^y / (1 + c·e^y).

    Written with in-place operations on the rows × nodes arrays: at a million customers these
    arrays are the fit's largest cost, and each temporary is another pass over them.
    """
    half = (high - low) / 2
    y = half[:, None] * _NODES
    y += ((low + high) / 2)[:, None]  # rows × nodes
    ey = np.exp(y)
    log_big = c[:, None] * ey
    log_big += 1
    big = log_big.copy() if with_grad else log_big
    np.log(log_big, out=log_big)  # ln((M+τ)/(m+τ)), M = max(α, β)
    weighted = p[:, None] * y
    weighted -= e[:, None] * log_big
    weighted -= top[:, None]
    np.exp(weighted, out=weighted)
    weighted *= half[:, None] * _NODE_WEIGHTS
    sums = [weighted.sum(axis=1)]
    if with_grad:
        sums += [np.einsum("ij,ij->i", weighted, v) for v in (y, log_big, ey)]
        ey /= big
        sums.append(np.einsum("ij,ij->i", weighted, ey))
    return sums


def _pareto_log_alive(theta: np.ndarray, x: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
    """ln[(α+T)^−(r+x) (β+T)^−s], the "alive at T" term of the bracket of the Pareto/NBD likelihood."""
    r, alpha, s, beta = theta
    return -(r + x) * np.log(alpha + t_cap) - s * np.log(beta + t_cap)


def _pareto_log_gone(s: float, log_tail_tx: np.ndarray, log_tail_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ln[s · (G(t_x) − G(T))], the "left between t_x and T" term of the bracket, and 1 − G(T)/G(t_x).

    L = Γ(r+x) α^r β^s / Γ(r) · [(α+T)^−(r+x) (β+T)^−s + s · (G(t_x) − G(T))]
    (FHL, "A note on deriving the Pareto/NBD model", eq. 22, with G of :func:`_pareto_log_tail`).
    """
    left = -np.expm1(np.minimum(log_tail_t - log_tail_tx, 0.0))  # 1 − G(T)/G(t_x), 0 when t_x = T
    with np.errstate(divide="ignore"):
        return np.log(s) + log_tail_tx + np.log(left), left


def _pareto_loglik_grad(theta: np.ndarray, rows: _RfmRows) -> tuple[float, np.ndarray]:
    """Weighted Pareto/NBD log-likelihood (FHL's note, eq. 22) and its gradient in (r, alpha, s, beta).

    The integral terms and the "alive" term are computed on the distinct (frequency, age) pairs
    only (:class:`_RfmRows`); per row there are only the bracket and its two shares, and the
    rows' shares are summed back onto the pairs (``np.bincount``) before they meet the pairs'
    derivatives.
    """
    r, alpha, s, beta = theta
    xv = rows.x_values
    per_x = gammaln(r + xv) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    px, pu = rows.age_pairs
    tail, d_tail = _pareto_log_tail(theta, px, pu, with_grad=True)
    tail_tx, tail_t = tail[rows.tx_pair], tail[rows.t_pair]
    alive = _pareto_log_alive(theta, px, pu)[rows.t_pair]
    gone, left = _pareto_log_gone(s, tail_tx, tail_t)
    bracket = np.logaddexp(alive, gone)
    w_gone = rows.w * np.exp(gone - bracket)  # the rows' weights split by the share of each term
    w_alive = rows.w - w_gone
    # ∂ ln(G(t_x) − G(T)) = (∂ ln G(t_x) − ratio · ∂ ln G(T)) / (1 − ratio), ratio = G(T)/G(t_x)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_left = np.where(w_gone > 0, w_gone / left, 0.0)
    ratio = np.exp(np.minimum(tail_t - tail_tx, 0.0))
    on_pairs = (np.bincount(rows.tx_pair, weights=per_left, minlength=len(px))
                - np.bincount(rows.t_pair, weights=per_left * ratio, minlength=len(px)))
    alive_on_t = np.bincount(rows.t_pair, weights=w_alive, minlength=len(px))
    total = rows.w.sum()
    grad = np.array([
        _dot(rows.x_weight, digamma(r + xv) - digamma(r) + np.log(alpha)) - _dot(alive_on_t, np.log(alpha + pu)),
        r / alpha * total - _dot(alive_on_t, (r + px) / (alpha + pu)),
        np.log(beta) * total - _dot(alive_on_t, np.log(beta + pu)) + w_gone.sum() / s,
        s / beta * total - _dot(alive_on_t, s / (beta + pu)),
    ]) + np.einsum("i,ij->j", on_pairs, d_tail)
    return _dot(rows.x_weight, per_x) + _dot(rows.w, bracket), grad


def _numeric_gradient(f: Callable[[np.ndarray], float], theta: np.ndarray, rel_step: float = 1e-6) -> np.ndarray:
    """Central differences with steps relative to each parameter (the tests check the analytic gradients with it)."""
    grad = np.empty(len(theta))
    for k in range(len(theta)):
        h = rel_step * theta[k]
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        grad[k] = (f(up) - f(down)) / (2 * h)
    return grad


class ParetoNBDModel(PurchaseModel):
    """The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987), fitted by maximum likelihood.

    While alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); they stay alive for an
    exponential time with rate μ ~ Gamma(s, β), so they may leave at any moment, between
    purchases too (BG/NBD only lets them leave right after one). Parameters ``params_``: r,
    alpha, s, beta (times in the summary's periods); the likelihood of Fader, Hardie & Lee's
    note, its hypergeometric term taken as the integral it stands for (:func:`_pareto_log_tail`),
    with an analytic gradient. No bound on s: when it comes out above 16 (dropout rates differing
    by less than 25% between customers) the fit warns (:class:`CommonDropoutWarning`). See :class:`PurchaseModel` for the fitted state.
    """

    name = "Pareto/NBD"
    param_names = ["r", "alpha", "s", "beta"]

    def _start(self, rate: float, mean_age: float) -> np.ndarray:
        return np.array([1.0, 1.0 / max(rate, 1e-9), 1.0, max(mean_age, 1.0)])

    def _loglik_grad(self, theta: np.ndarray, rows: _RfmRows) -> tuple[float, np.ndarray]:
        return _pareto_loglik_grad(theta, rows)

    def _row_loglik(self, theta: np.ndarray, x: np.ndarray, tx: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        """Per customer, the log-likelihood of :func:`_pareto_loglik_grad`."""
        r, alpha, s, beta = theta
        gone, _ = _pareto_log_gone(s, _pareto_log_tail(theta, x, tx), _pareto_log_tail(theta, x, t_cap))
        return (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
                + np.logaddexp(_pareto_log_alive(theta, x, t_cap), gone))

    def _check_fit(self, theta: np.ndarray) -> None:
        r, alpha, s, beta = theta
        if 1 / np.sqrt(s) < COMMON_DROPOUT_CV:
            warnings.warn(
                f"the rates of leaving hardly differ between customers (s = {s:.3g}: about {s / beta:.2%} a period "
                f"for everybody, ± {1 / np.sqrt(s):.1%}); s and beta are then poorly determined and mean little on "
                "their own, the expected values are still usable", CommonDropoutWarning, stacklevel=3,
            )

    def _p_alive(self, x: np.ndarray, tx: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        """P(alive) = 1 / (1 + s · (α+T)^(r+x) (β+T)^s · (G(t_x) − G(T))) (FHL's note, eq. 24)."""
        theta = self._theta()
        (px, ptx), at_tx = _unique_inverse([x, tx])
        (qx, qt), at_t = _unique_inverse([x, t_cap])
        gone, _ = _pareto_log_gone(theta[2], _pareto_log_tail(theta, px, ptx)[at_tx],
                                   _pareto_log_tail(theta, qx, qt)[at_t])
        alive = _pareto_log_alive(theta, x, t_cap)
        return np.exp(-np.logaddexp(0.0, gone - alive))

    def _draw_if_alive(self, thetas: np.ndarray, t: float, x: np.ndarray, t_cap: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
        """Alive at T with x repeat purchases: λ ~ Gamma(r + x, α + T) and μ ~ Gamma(s, β + T),
        independent; the rest of the lifetime is Exponential(μ) (memoryless), and the purchases are
        Poisson(λ · min(lifetime, t))."""
        r, alpha, s, beta = (col[None, :] for col in thetas.T)
        x, t_cap = x[:, None], t_cap[:, None]
        shape = (len(x), len(thetas))
        rate = rng.gamma(np.broadcast_to(r + x, shape)) / (alpha + t_cap)
        leave_rate = rng.gamma(np.broadcast_to(s, shape)) / (beta + t_cap)
        with np.errstate(divide="ignore", over="ignore"):  # a leave rate of ~0: a lifetime of inf, as meant
            lifetime = rng.standard_exponential(shape) / leave_rate
        return rng.poisson(rate * np.minimum(lifetime, t))

    def _if_alive(self, t: float, x: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        """(r+x)(β+T) / ((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)] (FHL's note, eq. 27, without P(alive))."""
        r, alpha, s, beta = self._theta()
        return (r + x) / (alpha + t_cap) * (beta + t_cap) * _lifetime_share(s, t / (beta + t_cap))

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> float | np.ndarray:
        """E[X(t)] = rβ / (α(s−1)) · [1 − (β/(β+t))^(s−1)] (FHL's note, eq. 17)."""
        r, alpha, s, beta = self._theta()
        t = np.asarray(t, dtype=float)
        return _scalar_or_array(r / alpha * beta * _lifetime_share(s, t / beta))


def _lifetime_share(s: float, ratio: np.ndarray) -> np.ndarray:
    """[1 − (1 + ratio)^−(s−1)] / (s − 1), with its limit ln(1 + ratio) at s = 1, computed without cancellation."""
    log_growth = np.log1p(ratio)
    if abs(s - 1) < 1e-9:
        return log_growth
    return -np.expm1(-(s - 1) * log_growth) / (s - 1)


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SpendRows:
    """Unique (frequency, mean spend) rows of repeat buyers with weights, and the sums the likelihood reuses."""

    w: np.ndarray
    x: np.ndarray
    xm: np.ndarray
    x_values: np.ndarray
    x_code: np.ndarray
    x_weight: np.ndarray
    sum_log_m: float  # Σ w ln m
    sum_x_log_m: float  # Σ w x ln m

    @classmethod
    def build(cls, x: np.ndarray, m: np.ndarray, w: np.ndarray) -> "_SpendRows":
        (x, m), w = _collapse([x, m], w)
        x_code, x_values = pd.factorize(x, sort=True)
        log_m = np.log(m)
        return cls(w, x, x * m, np.asarray(x_values, dtype=float), x_code,
                   np.bincount(x_code, weights=w, minlength=len(x_values)),
                   float(_dot(w, log_m)), float(_dot(w * x, log_m)))


def _gg_loglik_grad(theta: np.ndarray, rows: _SpendRows) -> tuple[float, np.ndarray]:
    """Weighted Gamma-Gamma log-likelihood of mean spends (Fader, Hardie & Lee 2005) and its gradient.

    LL = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln v + (px−1) ln m + px ln x − (px+q) ln(xm + v)
    """
    p, q, v = theta
    xv, wx = rows.x_values, rows.x_weight
    pxv = p * xv
    psi_pq = digamma(pxv + q)
    log_xm_v = np.log(rows.xm + v)  # the only per-row special function
    pxq = p * rows.x + q
    ll = (_dot(wx, gammaln(pxv + q) - gammaln(pxv) - gammaln(q) + q * np.log(v) + pxv * np.log(xv))
          + p * rows.sum_x_log_m - rows.sum_log_m - _dot(rows.w * pxq, log_xm_v))
    d_p = _dot(wx, xv * (psi_pq - digamma(pxv) + np.log(xv))) + rows.sum_x_log_m - _dot(rows.w * rows.x, log_xm_v)
    d_q = _dot(wx, psi_pq - digamma(q) + np.log(v)) - _dot(rows.w, log_xm_v)
    d_v = q / v * rows.w.sum() - _dot(rows.w * pxq, 1.0 / (rows.xm + v))
    return float(ll), np.array([d_p, d_q, d_v])


class GammaGammaModel(_Estimator):
    """The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV").

    Each purchase of a customer is worth Gamma(p, ν) with ν ~ Gamma(q, γ) across customers, so a
    customer's mean spend is pulled towards the population mean the fewer purchases they made.
    Fitted on repeat buyers only (frequency > 0) and their ``monetary_value`` (mean repeat spend).
    It assumes spend per purchase does not depend on how often one buys: the fit warns
    (:class:`GammaGammaAssumptionWarning`) when the two correlate beyond ``correlation_limit``.

    ``prior_sd`` (None = plain maximum likelihood) puts a weak normal prior on each log-parameter
    (centred on p = 1, q = 2, v = the mean spend), as :class:`PurchaseModel` does.

    Fitted state: ``params_`` (Series p, q, v; v is γ in the paper), ``standard_errors_``,
    ``frequency_monetary_correlation_``, ``log_likelihood_``, ``n_customers_``.
    """

    param_names = ["p", "q", "v"]

    def __init__(self, penalizer_coef: float = 0.0, correlation_limit: float = GG_CORRELATION_LIMIT, *,
                 prior_sd: float | None = None) -> None:
        self.penalizer_coef = penalizer_coef
        self.prior_sd = prior_sd
        self.correlation_limit = correlation_limit

    def fit(
        self, frequency: ArrayLike, monetary_value: ArrayLike, *, weights: ArrayLike | None = None
    ) -> "GammaGammaModel":
        """Fit on the repeat buyers among the rows (one-time buyers are skipped, as in the paper)."""
        x, m = nonnegative_floats(frequency, "frequency"), nonnegative_floats(monetary_value, "monetary_value")
        w = np.ones_like(x) if weights is None else nonnegative_floats(weights, "weights")
        if not (len(x) == len(m) == len(w)):
            raise ClvError("frequency, monetary_value and weights must have the same length")
        repeat = (x > 0) & (w > 0)
        if not repeat.any():
            raise NoRepeatBuyersError("no customer bought more than once: Gamma-Gamma is fitted on repeat buyers")
        if (m[repeat] == 0).any():
            raise ClvError(
                f"{int((m[repeat] == 0).sum())} repeat buyers have a mean spend of 0; Gamma-Gamma needs "
                "positive spend (leave free orders out of the summary)"
            )
        x, m, w = x[repeat], m[repeat], w[repeat]
        if len(np.unique(m)) < 2:
            raise ClvError("every repeat buyer has the same mean spend: Gamma-Gamma cannot be fitted")
        xm_corr = np.corrcoef(x, m)[0, 1] if np.std(x) > 0 else 0.0
        self.frequency_monetary_correlation_ = float(xm_corr)
        if abs(xm_corr) > self.correlation_limit:
            warnings.warn(
                i18n.t("purchase frequency and spend per purchase are correlated (r = {r}); Gamma-Gamma assumes they are "
                       "independent, so its spend estimates are doubtful", r=f"{xm_corr:.2f}"),
                GammaGammaAssumptionWarning,
                stacklevel=2,
            )
        mean = np.dot(w, m) / w.sum()
        rows = _SpendRows.build(x, m, w)

        def loglik_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return _gg_loglik_grad(theta, rows)

        start = np.array([1.0, 2.0, mean])
        prior = None if self.prior_sd is None else LogPrior(np.log(start), self.prior_sd)
        theta = _fit_log_params(loglik_grad, start, w.sum(), self.penalizer_coef, "Gamma-Gamma", prior)
        self._store_fit(theta, loglik_grad, int(w.sum()), prior)
        if theta[1] <= 1:
            warnings.warn(
                f"q = {theta[1]:.2f} ≤ 1: the population mean spend is not defined, so expected "
                "values cannot be computed", GammaGammaAssumptionWarning, stacklevel=2,
            )
        return self

    @staticmethod
    def draw_spend(thetas: np.ndarray, purchases: np.ndarray, *, frequency: np.ndarray, monetary_value: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
        """The spend of simulated ``purchases`` (customers × draws), under the parameter draws
        ``thetas`` (one row (p, q, v) per column): each customer's spend level ν drawn given their
        past, ν ~ Gamma(q + p·x, rate v + x·m̄) (x repeat purchases of mean m̄), then the n purchases'
        sum ~ Gamma(p·n, rate ν). In the currency of ``monetary_value``."""
        p, q, v = (col[None, :] for col in thetas.T)
        x, m = frequency[:, None], monetary_value[:, None]
        shape = purchases.shape
        level = rng.gamma(np.broadcast_to(q + p * x, shape)) / (v + x * m)
        return rng.gamma(p * purchases) / level

    def expected_average_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> pd.Series | np.ndarray:
        """Expected spend per future purchase of each customer, E[M | x, m̄] = p(v + x m̄) / (p x + q − 1).

        A weighted average of the population mean p·v/(q − 1) and the customer's own mean; one-time
        buyers (x = 0) get the population mean. lifetimes' ``conditional_expected_average_profit``.
        """
        p, q, v = self._theta()
        if q <= 1:
            raise ClvError("the fitted q is ≤ 1: the expected spend is infinite under this fit")
        x, m = nonnegative_floats(frequency, "frequency"), nonnegative_floats(monetary_value, "monetary_value")
        if len(x) != len(m):
            raise ClvError("frequency and monetary_value must have the same length")
        return shaped_like(p * (v + x * m) / (p * x + q - 1), frequency, name="expected_average_value")


