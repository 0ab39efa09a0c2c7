"""Customer lifetime value: who is probably still a customer, how much they will buy, what they are worth.

Three ways to put a number on a customer, each named for what it is:

- **BG/NBD + Gamma-Gamma** (Fader, Hardie & Lee 2005, "Counting your customers the easy way" and
  "RFM and CLV"): a probabilistic "buy till you die" model of each customer's purchases and a
  model of their average spend, combined into a discounted cash flow over a horizon. This is the
  sound method: it knows that a customer who used to buy every week and has been silent for
  months is probably gone.
- **The transparent formula** from the owner's articles, CLV = Σₜ₌₁ⁿ profit / (1 + d)ᵗ: a constant
  yearly profit, discounted, for n years. Easy to explain; it assumes the customer stays n years.
- **The subscription-style estimate**, average monthly margin ÷ monthly churn rate, as billing
  dashboards show it. Sound for subscriptions; rough for a shop, where "churn" has to be defined.

Conventions follow the ``lifetimes`` library so that its users feel at home: ``frequency`` is
the number of *repeat* purchase periods (the first purchase is not counted; several purchases
in one period count once), ``recency`` the customer's age at their last purchase, ``T`` their
age at the end of the observation, ``monetary_value`` the mean value of their repeat purchase
periods (0 for one-time buyers), all in periods of ``freq`` ("D" days, "W" weeks, "M" months).

Why we implement BG/NBD and Gamma-Gamma here instead of depending on ``lifetimes``: the library
has been unmaintained since 2020, it pins old versions of ``autograd`` and ``dill`` that clash
with the rest of the scientific stack, and its fitters evaluate the likelihood on every customer
row with autograd, which is slow for millions of customers. The models are a few closed-form
formulas; here the log-likelihood is evaluated once per *unique* (frequency, recency, T) row with
weights, vectorized with ``scipy.special``, with an analytic gradient (tested against finite
differences), and the fit is checked against the published CDNOW estimates in the tests.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import betaln, digamma, gammaln, hyp2f1
from sqlite_utils import Database

from .data import query_df, store_currency
from .schema import net_revenue_sql

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Freq = Literal["D", "W", "M"]
ArrayLike = pd.Series | np.ndarray | Sequence[float]
LogLikelihood = Callable[[np.ndarray], tuple[float, np.ndarray]]
"""A function of the parameters returning the weighted log-likelihood and its gradient."""

DAYS_PER_MONTH = 365.25 / 12
"""Average length of a month in days, used to turn a horizon in months into model periods."""

PERIODS_PER_MONTH: dict[str, float] = {"D": DAYS_PER_MONTH, "W": DAYS_PER_MONTH / 7, "M": 1.0}
"""Model periods per month for each ``freq`` (lifetimes uses the rounder 30 and 4.345)."""

GG_CORRELATION_LIMIT = 0.3
"""Above this absolute frequency–monetary correlation, Gamma-Gamma's independence assumption is doubtful."""


class ClvError(ValueError):
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
# The RFM summary
# --------------------------------------------------------------------------------------------


def _period_numbers(dates: pd.Series, freq: Freq) -> np.ndarray:
    """Integer period number of each date: days, Monday-to-Sunday weeks, or calendar months."""
    days = dates.to_numpy(dtype="datetime64[D]").astype(np.int64)
    if freq == "D":
        return days
    if freq == "W":
        return (days + 3) // 7  # 1970-01-01 was a Thursday; weeks run Monday to Sunday like pandas "W"
    return dates.to_numpy(dtype="datetime64[M]").astype(np.int64)


def _to_timestamp(value: str | dt.date | pd.Timestamp, name: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(value).normalize()
    except (TypeError, ValueError):
        raise ClvError(f"{name} {value!r} is not a date (expected e.g. 2026-10-31)") from None


def _purchase_periods(tx: pd.DataFrame, with_value: bool) -> pd.DataFrame:
    """One row per customer and period with a purchase: customer, period [, value summed over the period].

    Rows of a customer are contiguous and in period order (one integer sort, not a two-key groupby).
    """
    codes, uniques = pd.factorize(tx["customer"].to_numpy())
    periods = tx["period"].to_numpy(dtype=np.int64)
    if len(periods) == 0:
        empty = {"customer": uniques[:0], "period": periods}
        return pd.DataFrame(empty | ({"value": np.zeros(0)} if with_value else {}))
    low = periods.min()
    key = codes.astype(np.int64) * (periods.max() - low + 1) + (periods - low)
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
    out = pd.DataFrame({"customer": uniques[codes[order][starts]], "period": periods[order][starts]})
    if with_value:
        out["value"] = np.add.reduceat(tx["value"].to_numpy(dtype=float)[order], starts)
    return out


def _per_customer(periods: pd.DataFrame, end_period: int, freq_multiplier: float, with_value: bool) -> pd.DataFrame:
    """frequency, recency, T [, monetary_value] per customer from :func:`_purchase_periods`."""
    columns = ["frequency", "recency", "T"] + (["monetary_value"] if with_value else [])
    if periods.empty:
        return pd.DataFrame(columns=columns, dtype=float)
    customer = periods["customer"].to_numpy()
    period = periods["period"].to_numpy(dtype=np.int64)
    first_row = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    last_row = np.r_[first_row[1:], len(customer)] - 1
    frequency = (last_row - first_row).astype(float)  # periods with a purchase, minus the first
    out = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (period[last_row] - period[first_row]) / freq_multiplier,
            "T": (end_period - period[first_row]) / freq_multiplier,
        },
        index=pd.Index(customer[first_row]),
    )
    if with_value:
        value = periods["value"].to_numpy(dtype=float)
        repeat_total = np.add.reduceat(value, first_row) - value[first_row]
        out["monetary_value"] = np.where(frequency > 0, repeat_total / np.maximum(frequency, 1), 0.0)
    return out.astype(float)


def summary_from_transactions(
    transactions: pd.DataFrame,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None = None,
    observation_period_end: str | dt.date | pd.Timestamp | None = None,
    freq: Freq = "D",
    calibration_period_end: str | dt.date | pd.Timestamp | None = None,
    freq_multiplier: float = 1.0,
) -> pd.DataFrame:
    """Per-customer RFM summary of a transaction log, in the conventions of ``lifetimes``.

    In: one row per transaction with ``customer_id_col``, ``datetime_col`` and optionally
    ``monetary_value_col`` (pass net revenue: paid orders only). Transactions after
    ``observation_period_end`` (default: the last transaction) are ignored. Times are counted in
    whole periods of ``freq`` ("D" days, "W" Monday-to-Sunday weeks, "M" calendar months),
    divided by ``freq_multiplier`` (``freq="D", freq_multiplier=7`` gives exact weeks).

    Out, indexed by customer id (index named ``customer_id_col``), all float:

    - ``frequency``: number of periods with a purchase, minus one (the first purchase is not a
      repeat); several purchases in one period count once;
    - ``recency``: age at the last purchase (last minus first purchase period); 0 for one-time buyers;
    - ``T``: age at the end of the observation (end period minus first purchase period);
    - ``monetary_value`` (only with ``monetary_value_col``): mean value of the repeat purchase
      periods, each period's transactions summed; 0 for one-time buyers.

    With ``calibration_period_end`` the log is split like lifetimes'
    ``calibration_and_holdout_data``: customers whose first purchase is on or before that date,
    with ``frequency_cal``, ``recency_cal``, ``T_cal`` [, ``monetary_value_cal``] measured up to it,
    and ``frequency_holdout`` (periods with a purchase after it, up to the observation end),
    [``monetary_value_holdout``: mean value of those periods, 0 if none] and ``duration_holdout``
    (length of the holdout in periods). Unlike lifetimes, the holdout mean is taken per purchase
    period, like the calibration one, so the two are comparable.
    """
    if freq not in PERIODS_PER_MONTH:
        raise ClvError(f"freq must be 'D', 'W' or 'M', not {freq!r}")
    if freq_multiplier <= 0:
        raise ClvError("freq_multiplier must be positive")
    needed = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    missing = [c for c in needed if c not in transactions.columns]
    if missing:
        raise ClvError(f"the transactions have no column {', '.join(map(repr, missing))}")
    tx = pd.DataFrame({"customer": transactions[customer_id_col].to_numpy()})
    tx["date"] = pd.to_datetime(transactions[datetime_col].to_numpy(), errors="coerce")
    if tx["customer"].isna().any() or tx["date"].isna().any():
        raise ClvError(f"some transactions have no {customer_id_col} or no valid {datetime_col}")
    if tx.empty:
        raise ClvError("there are no transactions to summarise")
    with_value = monetary_value_col is not None
    if with_value:
        values = pd.to_numeric(transactions[monetary_value_col], errors="coerce").to_numpy(dtype=float)
        if np.isnan(values).any():
            raise ClvError(f"some transactions have no numeric {monetary_value_col}")
        if (values < 0).any():
            raise NegativeValueError(
                f"{int((values < 0).sum())} transactions have a negative {monetary_value_col}; "
                "refunds are not negative purchases: leave refunded orders out instead"
            )
        tx["value"] = values
    end = _to_timestamp(observation_period_end, "observation_period_end") if observation_period_end is not None \
        else tx["date"].max().normalize()
    tx = tx[tx["date"] < end + pd.Timedelta(days=1)]
    tx["period"] = _period_numbers(tx["date"], freq)
    end_period = int(_period_numbers(pd.Series([end]), freq)[0])
    if calibration_period_end is None:
        out = _per_customer(_purchase_periods(tx, with_value), end_period, freq_multiplier, with_value)
        out.index.name = customer_id_col
        return out

    cal_end = _to_timestamp(calibration_period_end, "calibration_period_end")
    if cal_end >= end:
        raise ClvError(f"the calibration end {cal_end:%Y-%m-%d} must be before the observation end {end:%Y-%m-%d}")
    in_cal = tx["date"] < cal_end + pd.Timedelta(days=1)
    cal_end_period = int(_period_numbers(pd.Series([cal_end]), freq)[0])
    cal = _per_customer(_purchase_periods(tx[in_cal], with_value), cal_end_period, freq_multiplier, with_value)
    cal.columns = [f"{c}_cal" for c in cal.columns]
    holdout = _purchase_periods(tx[~in_cal & tx["customer"].isin(cal.index)], with_value)
    per_customer = holdout.groupby("customer", sort=False)
    cal["frequency_holdout"] = per_customer.size().reindex(cal.index, fill_value=0).astype(float)
    if with_value:
        means = per_customer["value"].mean()
        cal["monetary_value_holdout"] = means.reindex(cal.index, fill_value=0.0).astype(float)
    cal["duration_holdout"] = float(end_period - cal_end_period) / freq_multiplier
    cal.index.name = customer_id_col
    return cal


# --------------------------------------------------------------------------------------------
# Shared helpers of the two models
# --------------------------------------------------------------------------------------------


def _as_float(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(arr).all():
        raise ClvError(f"{name} holds missing or infinite values")
    if (arr < 0).any():
        raise NegativeValueError(f"{name} must not be negative ({int((arr < 0).sum())} negative values)")
    return arr


def _like(result: np.ndarray, template: ArrayLike, name: str) -> pd.Series | np.ndarray:
    """Return a Series with the template's index when the input was a Series."""
    if isinstance(template, pd.Series):
        return pd.Series(result, index=template.index, name=name)
    return result


def _check_rfm(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, tx, t_cap = _as_float(frequency, "frequency"), _as_float(recency, "recency"), _as_float(T, "T")
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


def _fit_log_params(
    loglik_grad: LogLikelihood, start: np.ndarray, total_weight: float, penalizer: float, what: str
) -> np.ndarray:
    """Maximise the weighted log-likelihood over log-parameters with L-BFGS-B and the analytic gradient."""

    def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(u)
        ll, grad = loglik_grad(theta)
        value = -ll / total_weight + penalizer * np.sum(theta**2)
        grad_theta = -grad / total_weight + 2 * penalizer * theta
        return value, grad_theta * theta  # chain rule: d/du = theta * d/dtheta

    result = optimize.minimize(
        objective, np.log(start), jac=True, method="L-BFGS-B",
        bounds=[(-25.0, 25.0)] * len(start), options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
    )
    if not np.isfinite(result.fun):
        raise ClvError(f"the {what} fit failed: the likelihood is not finite for these data")
    if not result.success and "ABNORMAL" not in str(result.message).upper():
        raise ClvError(f"the {what} fit did not converge: {result.message}")
    return np.exp(result.x)


def _standard_errors(loglik_grad: LogLikelihood, theta: np.ndarray, names: list[str]) -> pd.Series:
    """Square roots of the inverse observed information (Hessian by central differences of the gradient)."""
    k = len(theta)
    hessian = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        hessian[:, j] = -(loglik_grad(up)[1] - loglik_grad(down)[1]) / (2 * h)
    hessian = (hessian + hessian.T) / 2
    try:
        variances = np.diag(np.linalg.inv(hessian))
    except np.linalg.LinAlgError:
        variances = np.full(k, np.nan)
    se = np.sqrt(np.where(variances > 0, variances, np.nan))
    if not np.isfinite(se).all():
        warnings.warn("the information matrix is not positive definite at the estimate: some standard errors "
                      "are not available (a parameter may sit at the edge of what the data can tell)", stacklevel=3)
    return pd.Series(se, index=names, name="standard_error")


# --------------------------------------------------------------------------------------------
# BG/NBD (implemented here rather than imported from lifetimes: see the module docstring)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RfmRows:
    """Unique (frequency, recency, T) rows with weights, each column coded against its few distinct values.

    Frequency, recency and T take few distinct values (whole days of a few years), so every
    special function is evaluated on those values only and gathered back to the rows.
    """

    w: np.ndarray
    x: np.ndarray
    x_values: np.ndarray
    x_code: np.ndarray
    tx_values: np.ndarray
    tx_code: np.ndarray
    t_values: np.ndarray
    t_code: np.ndarray
    repeat: np.ndarray
    x_weight: np.ndarray  # total weight per distinct frequency

    @classmethod
    def build(cls, x: np.ndarray, tx: np.ndarray, t_cap: np.ndarray, w: np.ndarray) -> "_RfmRows":
        (x, tx, t_cap), w = _collapse([x, tx, t_cap], w)
        x_code, x_values = pd.factorize(x, sort=True)
        tx_code, tx_values = pd.factorize(tx, sort=True)
        t_code, t_values = pd.factorize(t_cap, sort=True)
        return cls(w, x, np.asarray(x_values, dtype=float), x_code, np.asarray(tx_values, dtype=float), tx_code,
                   np.asarray(t_values, dtype=float), t_code, x > 0,
                   np.bincount(x_code, weights=w, minlength=len(x_values)))


def _bgnbd_loglik_grad(theta: np.ndarray, rows: _RfmRows) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD log-likelihood (FHL 2005, eq. 6) and its gradient in (r, alpha, a, b).

    LL = ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b)
         + ln[(α+T)^−(r+x) + 1{x>0} · a/(b+x−1) · (α+t_x)^−(r+x)]
    """
    r, alpha, a, b = theta
    xv = rows.x_values
    # terms that depend on the frequency only, on its distinct values
    per_x_ll = gammaln(r + xv) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xv) - betaln(a, b)
    common = digamma(a + b) - digamma(a + b + xv)
    per_x_dr = digamma(r + xv) - digamma(r) + np.log(alpha)
    per_x_db = common + digamma(b + xv) - digamma(b)
    inv_bx1 = np.where(xv > 0, 1.0 / np.where(xv > 0, b + xv - 1, 1.0), 0.0)
    log_a_bx1 = np.where(xv > 0, np.log(a) + np.log(np.where(xv > 0, inv_bx1, 1.0)), -np.inf)
    log_at, log_atx = np.log(alpha + rows.t_values), np.log(alpha + rows.tx_values)
    inv_at, inv_atx = 1.0 / (alpha + rows.t_values), 1.0 / (alpha + rows.tx_values)
    # the per-row part: the log of the sum of the two terms of the bracket
    rx = r + rows.x
    lt, ltx = log_at[rows.t_code], log_atx[rows.tx_code]
    a3 = -rx * lt
    a4 = log_a_bx1[rows.x_code] - rx * ltx
    tail = np.logaddexp(a3, a4)
    w4 = np.exp(a4 - tail)  # share of the second term; 0 for one-time buyers
    s4 = rows.w * w4
    s3 = rows.w - s4
    ll = _dot(rows.x_weight, per_x_ll) + _dot(rows.w, tail)
    d_r = _dot(rows.x_weight, per_x_dr) - _dot(s3, lt) - _dot(s4, ltx)
    d_alpha = (r / alpha * rows.w.sum()
               - _dot(rx, s3 * inv_at[rows.t_code] + s4 * inv_atx[rows.tx_code]))
    d_a = _dot(rows.x_weight, common) + s4.sum() / a
    d_b = _dot(rows.x_weight, per_x_db) - _dot(s4, inv_bx1[rows.x_code])
    return float(ll), np.array([d_r, d_alpha, d_a, d_b])


class BetaGeoModel:
    """The BG/NBD "buy till you die" model (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

    While alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); after each repeat purchase
    they leave for good with probability p ~ Beta(a, b). Times are in the summary's periods.
    ``penalizer_coef`` adds ``penalizer_coef · Σ θ²`` to the mean negative log-likelihood, as
    in lifetimes (0 = plain maximum likelihood; a small value steadies tiny books).

    Fitted state: ``params_`` (Series r, alpha, a, b), ``standard_errors_`` (from the inverse
    observed information of the unpenalised likelihood), ``log_likelihood_``, ``n_customers_``.
    """

    param_names = ["r", "alpha", "a", "b"]

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = penalizer_coef

    def fit(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
    ) -> "BetaGeoModel":
        """Fit on one row per customer (or per group of identical customers with ``weights``)."""
        x, tx, t_cap = _check_rfm(frequency, recency, T)
        w = np.ones_like(x) if weights is None else _as_float(weights, "weights")
        if len(w) != len(x):
            raise ClvError("weights must have one value per row")
        if len(x) == 0 or w.sum() == 0:
            raise ClvError("there are no customers to fit the BG/NBD model on")
        if not (w[x > 0] > 0).any():
            raise NoRepeatBuyersError(
                f"none of the {int(w.sum())} customers bought more than once: BG/NBD needs repeat "
                "buyers to learn how often customers buy and when they leave"
            )
        if (t_cap[w > 0] == 0).all():
            raise ClvError("every customer bought for the first time at the end of the observation (T = 0)")
        rows = _RfmRows.build(x, tx, t_cap, w)

        def loglik_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return _bgnbd_loglik_grad(theta, rows)

        rate = np.dot(w, x) / max(np.dot(w, t_cap), 1e-9)
        start = np.array([1.0, 1.0 / max(rate, 1e-9), 1.0, 1.0])
        theta = _fit_log_params(loglik_grad, start, w.sum(), self.penalizer_coef, "BG/NBD")
        self.params_ = pd.Series(theta, index=self.param_names, name="estimate")
        self.standard_errors_ = _standard_errors(loglik_grad, theta, self.param_names)
        self.log_likelihood_ = loglik_grad(theta)[0]
        self.n_customers_ = int(w.sum())
        a, b = theta[2], theta[3]
        mean, spread = a / (a + b), np.sqrt(a * b / (a + b + 1)) / (a + b)
        if spread < COMMON_DROPOUT_CV * mean:
            warnings.warn(
                f"the chances of leaving hardly differ between customers (a = {a:.3g}, b = {b:.3g}: "
                f"{mean:.1%} ± {spread:.1%} after each repeat purchase); a and b are then poorly determined "
                "and mean little on their own, the expected values are still usable",
                CommonDropoutWarning, stacklevel=2,
            )
        return self

    def _theta(self) -> tuple[float, float, float, float]:
        if not hasattr(self, "params_"):
            raise ClvError("fit the model first")
        r, alpha, a, b = self.params_.to_numpy()
        return float(r), float(alpha), float(a), float(b)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> pd.Series | np.ndarray:
        """Probability that each customer is still a customer at age T (FHL 2005, eq. 12).

        Customers with no repeat purchase get 1: in BG/NBD a customer can only leave right
        after a repeat purchase.
        """
        r, alpha, a, b = self._theta()
        x, tx, t_cap = _check_rfm(frequency, recency, T)
        return _like(self._p_alive(r, alpha, a, b, x, tx, t_cap), frequency, "p_alive")

    @staticmethod
    def _p_alive(r: float, alpha: float, a: float, b: float, x: np.ndarray, tx: np.ndarray,
                 t_cap: np.ndarray) -> np.ndarray:
        log_odds = np.full_like(x, -np.inf)
        rep = x > 0
        log_odds[rep] = (np.log(a) - np.log(b + x[rep] - 1)
                         + (r + x[rep]) * (np.log(alpha + t_cap[rep]) - np.log(alpha + tx[rep])))
        return np.exp(-np.logaddexp(0.0, log_odds))

    def expected_purchases(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> pd.Series | np.ndarray:
        """Expected repeat purchases in the next ``t`` periods given each customer's history (FHL eq. 10).

        lifetimes' ``conditional_expected_number_of_purchases_up_to_time``.
        """
        r, alpha, a, b = self._theta()
        x, tx, t_cap = _check_rfm(frequency, recency, T)
        if t < 0:
            raise NegativeValueError("the prediction horizon t must not be negative")
        # the hypergeometric part depends on (frequency, T) only: evaluate it on those pairs
        (ux, ut), pair = _unique_inverse([x, t_cap])
        alive = self._p_alive(r, alpha, a, b, x, tx, t_cap)
        return _like(self._if_alive(t, ux, ut)[pair] * alive, frequency, "expected_purchases")

    def _if_alive(self, t: float, x: np.ndarray, t_cap: np.ndarray) -> np.ndarray:
        """FHL eq. 10 without its P(alive) factor: expected purchases in (T, T + t] of a customer alive at T."""
        r, alpha, a, b = self._theta()
        c = a + b + x - 1
        z = t / (alpha + t_cap + t)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            log_hyp = np.log(hyp2f1(r + x, b + x, c, z))
            # where 2F1 overflows, use Euler's transformation of the same function
            alt = np.log(hyp2f1(c - r - x, c - b - x, c, z)) + (c - r - x - b - x) * np.log1p(-z)
        log_hyp = np.where(np.isfinite(log_hyp), log_hyp, alt)
        first = (a + b + x - 1) / (a - 1)
        return -first * np.expm1(log_hyp + (r + x) * (np.log(alpha + t_cap) - np.log(alpha + t_cap + t)))

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> float | np.ndarray:
        """Expected repeat purchases of a new customer in their first ``t`` periods (FHL eq. 9).

        lifetimes' ``expected_number_of_purchases_up_to_time``; what the model predicts for a
        customer about whom nothing is known yet.
        """
        r, alpha, a, b = self._theta()
        t = np.asarray(t, dtype=float)
        hyp = hyp2f1(r, b, a + b - 1, t / (alpha + t))
        value = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)
        return float(value) if value.ndim == 0 else value


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


class GammaGammaModel:
    """The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV").

    Each purchase of a customer is worth Gamma(p, ν) with ν ~ Gamma(q, γ) across customers, so a
    customer's mean spend is pulled towards the population mean the fewer purchases they made.
    Fitted on repeat buyers only (frequency > 0) and their ``monetary_value`` (mean repeat spend).
    It assumes spend per purchase does not depend on how often one buys: the fit warns
    (:class:`GammaGammaAssumptionWarning`) when the two correlate beyond ``correlation_limit``.

    Fitted state: ``params_`` (Series p, q, v; v is γ in the paper), ``standard_errors_``,
    ``frequency_monetary_correlation_``, ``log_likelihood_``, ``n_customers_``.
    """

    param_names = ["p", "q", "v"]

    def __init__(self, penalizer_coef: float = 0.0, correlation_limit: float = GG_CORRELATION_LIMIT) -> None:
        self.penalizer_coef = penalizer_coef
        self.correlation_limit = correlation_limit

    def fit(
        self, frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
    ) -> "GammaGammaModel":
        """Fit on the repeat buyers among the rows (one-time buyers are skipped, as in the paper)."""
        x, m = _as_float(frequency, "frequency"), _as_float(monetary_value, "monetary_value")
        w = np.ones_like(x) if weights is None else _as_float(weights, "weights")
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
                f"purchase frequency and spend per purchase are correlated (r = {xm_corr:.2f}); "
                "Gamma-Gamma assumes they are independent, so its spend estimates are doubtful",
                GammaGammaAssumptionWarning,
                stacklevel=2,
            )
        mean = np.dot(w, m) / w.sum()
        rows = _SpendRows.build(x, m, w)

        def loglik_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            return _gg_loglik_grad(theta, rows)

        theta = _fit_log_params(loglik_grad, np.array([1.0, 2.0, mean]), w.sum(), self.penalizer_coef,
                                "Gamma-Gamma")
        self.params_ = pd.Series(theta, index=self.param_names, name="estimate")
        self.standard_errors_ = _standard_errors(loglik_grad, theta, self.param_names)
        self.log_likelihood_ = loglik_grad(theta)[0]
        self.n_customers_ = int(w.sum())
        if theta[1] <= 1:
            warnings.warn(
                f"q = {theta[1]:.2f} ≤ 1: the population mean spend is not defined, so expected "
                "values cannot be computed", GammaGammaAssumptionWarning, stacklevel=2,
            )
        return self

    def expected_average_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> pd.Series | np.ndarray:
        """Expected spend per future purchase of each customer, E[M | x, m̄] = p(v + x m̄) / (p x + q − 1).

        A weighted average of the population mean p·v/(q − 1) and the customer's own mean; one-time
        buyers (x = 0) get the population mean. lifetimes' ``conditional_expected_average_profit``.
        """
        if not hasattr(self, "params_"):
            raise ClvError("fit the model first")
        p, q, v = self.params_.to_numpy()
        if q <= 1:
            raise ClvError("the fitted q is ≤ 1: the expected spend is infinite under this fit")
        x, m = _as_float(frequency, "frequency"), _as_float(monetary_value, "monetary_value")
        if len(x) != len(m):
            raise ClvError("frequency and monetary_value must have the same length")
        return _like(p * (v + x * m) / (p * x + q - 1), frequency, "expected_average_value")


# --------------------------------------------------------------------------------------------
# Customer lifetime value: the model-based one and the two simple formulas
# --------------------------------------------------------------------------------------------


def monthly_rate(annual_discount_rate: float) -> float:
    """The monthly rate equivalent to an annual one: (1 + d)^(1/12) − 1."""
    if annual_discount_rate <= -1:
        raise ClvError("the discount rate must be above -100%")
    return (1 + annual_discount_rate) ** (1 / 12) - 1


def customer_lifetime_value(
    transaction_model: BetaGeoModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    expected_value: ArrayLike,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.1,
    margin: float = 1.0,
    freq: Freq = "D",
    freq_multiplier: float = 1.0,
) -> pd.Series | np.ndarray:
    """Discounted expected profit of each customer over the next ``horizon_months`` months.

    lifetimes' discounted-cash-flow method: for each month k = 1..H, the expected purchases in
    that month (the difference of the conditional expectation at the end and the start of the
    month) times the expected spend per purchase (``expected_value``, e.g. from
    :meth:`GammaGammaModel.expected_average_value`) times ``margin`` (profit share of revenue),
    discounted by (1 + i)ᵏ with i the monthly rate equivalent to ``annual_discount_rate``.
    Differences from lifetimes: the rate is given per year (lifetimes takes a monthly rate), a
    month is 365.25/12 days (lifetimes: 30 days, 4.345 weeks), and the margin is explicit.
    Times follow the summary's ``freq`` and ``freq_multiplier``. In the currency of the values.
    """
    if horizon_months < 1 or int(horizon_months) != horizon_months:
        raise ClvError("the horizon must be a whole number of months, at least 1")
    if not 0 <= margin <= 1:
        raise ClvError("the margin is a share of revenue between 0 and 1")
    x, tx, t_cap = _check_rfm(frequency, recency, T)
    value = _as_float(expected_value, "expected_value")
    if len(value) != len(x):
        raise ClvError("expected_value must have one value per customer")
    (ux, ut), pair = _unique_inverse([x, t_cap])  # the purchase curve depends on (frequency, T) only
    r, alpha, a, b = transaction_model._theta()
    alive = transaction_model._p_alive(r, alpha, a, b, x, tx, t_cap)
    per_month = PERIODS_PER_MONTH[freq] / freq_multiplier
    rate = monthly_rate(annual_discount_rate)
    discounted = np.zeros_like(ux)
    previous = np.zeros_like(ux)
    for k in range(1, int(horizon_months) + 1):  # a loop over months, not customers
        cumulative = transaction_model._if_alive(k * per_month, ux, ut)
        discounted += (cumulative - previous) / (1 + rate) ** k
        previous = cumulative
    return _like(margin * value * alive * discounted[pair], frequency, "clv")


def constant_profit_clv(
    profit_per_year: ArrayLike | float, annual_discount_rate: float, years: int
) -> np.ndarray | float:
    """The transparent formula of the owner's articles: CLV = Σₜ₌₁ⁿ profit / (1 + d)ᵗ.

    ``profit_per_year`` is earned at the end of each of the next ``years`` years and discounted
    at ``annual_discount_rate`` (0.1 = 10%). It assumes the customer stays exactly n years and
    earns the same profit every year; the BG/NBD value instead lets them leave. The articles'
    example: 1000 a year, 10%, 5 years → 3790.79.
    """
    if years < 1 or int(years) != years:
        raise ClvError("years must be a whole number, at least 1")
    if annual_discount_rate <= -1:
        raise ClvError("the discount rate must be above -100%")
    annuity = sum(1 / (1 + annual_discount_rate) ** t for t in range(1, int(years) + 1))
    profit = np.asarray(profit_per_year, dtype=float)
    result = profit * annuity
    return float(result) if result.ndim == 0 else result


def subscription_clv(monthly_margin_per_customer: float, monthly_churn_rate: float) -> float:
    """The subscription-style estimate: average monthly margin per customer ÷ monthly churn rate.

    The expected margin of a customer who stays on average 1/churn months, undiscounted (what
    billing dashboards show as "LTV"). Raises :class:`ClvError` when the churn rate is 0 (the
    estimate would be infinite) or outside (0, 1].
    """
    if not 0 < monthly_churn_rate <= 1:
        raise ClvError(
            "the monthly churn rate must be above 0 and at most 1 "
            f"(got {monthly_churn_rate:g}); with no churn the subscription estimate is infinite"
        )
    return monthly_margin_per_customer / monthly_churn_rate


# --------------------------------------------------------------------------------------------
# From the store: the analyses the notebook shows
# --------------------------------------------------------------------------------------------


def paid_purchase_days(db: Database, as_of: dt.date | str) -> pd.DataFrame:
    """Net revenue per customer and day up to ``as_of``, aggregated in SQLite.

    Columns: customer_id, order_date (datetime64), amount (sum of the day's paid orders, net
    of refunds), cost (sum of the known order costs, NaN when none is known), orders. Paid orders
    only: refunded and cancelled orders are not purchases; nor are orders in a currency without an
    exchange rate (their net revenue is unknown: see ``crm_helpers.data.currency_note``).
    """
    frame = query_df(
        db,
        f"SELECT customer_id, order_date, sum({net_revenue_sql()}) AS amount, sum(cost) AS cost, count(*) AS orders "
        f"FROM orders WHERE status = 'paid' AND order_date <= ? AND {net_revenue_sql()} IS NOT NULL "
        "GROUP BY customer_id, order_date",
        [_iso(as_of)],
        parse_dates=["order_date"],
    )
    frame["amount"] = frame["amount"].astype(float)
    frame["cost"] = pd.to_numeric(frame["cost"], errors="coerce")
    return frame


def _iso(day: dt.date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


def margin_rate(db: Database, as_of: dt.date | str, default_margin: float) -> tuple[float, str]:
    """Profit share of net revenue and where it comes from.

    Measured as 1 − Σ cost ÷ Σ amount over the paid orders up to ``as_of`` that carry a cost,
    when those orders hold at least half of the revenue; otherwise ``default_margin``.
    """
    if not 0 <= default_margin <= 1:
        raise ClvError("the profit margin is a share of revenue between 0 and 1, e.g. 0.3")
    total, with_cost, cost = db.execute(
        "SELECT sum(amount), sum(CASE WHEN cost IS NOT NULL THEN amount END), sum(cost) "
        "FROM orders WHERE status = 'paid' AND order_date <= ?", [_iso(as_of)],
    ).fetchone()
    if total and with_cost and with_cost >= 0.5 * total:
        rate = float(np.clip(1 - cost / with_cost, 0, 1))
        return rate, f"measured on the paid orders that carry a cost ({with_cost / total:.0%} of revenue)"
    return float(default_margin), "the profit_margin parameter (orders carry no cost)"


def _buyer_group(frequency: pd.Series) -> pd.Series:
    purchases = frequency + 1
    groups = pd.cut(purchases, [0, 1, 3, 9, np.inf], labels=["1 purchase", "2–3 purchases", "4–9 purchases",
                                                             "10+ purchases"])
    return groups.astype(str)


@dataclass
class ClvAnalysis:
    """What :func:`analyse_customers` found; ``message`` says why models are missing ("" when fine).

    ``customers``: one row per customer who bought up to ``as_of``, indexed by customer_id, with
    name, acquisition_channel, buyer_group, first_purchase, last_purchase, revenue_to_date (net,
    paid orders), frequency / recency / T (days) / monetary_value (lifetimes' conventions),
    p_alive, expected_purchases (in the next ``horizon_months``), expected_average_value (per
    purchase, gross), clv (discounted expected profit over the horizon), transparent_clv (the
    articles' formula on the last 12 months' profit), probably_lost. Money in ``currency``.
    """

    as_of: dt.date
    horizon_months: int
    customers: pd.DataFrame
    transaction_model: BetaGeoModel | None
    spend_model: GammaGammaModel | None
    margin_rate: float
    margin_source: str
    currency: str
    message: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the models were fitted and the CLV columns hold values."""
        return not self.message

    @property
    def total_clv(self) -> float:
        """Sum of the customers' discounted expected profit over the horizon."""
        return float(self.customers["clv"].sum()) if self.ok else math.nan

    @property
    def n_probably_lost(self) -> int:
        """Repeat buyers whose probability of still being a customer is below the threshold."""
        return int(self.customers["probably_lost"].sum()) if self.ok else 0

    def parameters(self) -> pd.DataFrame:
        """Fitted parameters with standard errors, one row per parameter and model."""
        rows = []
        for model, label in ((self.transaction_model, "BG/NBD (purchases; times in days)"),
                             (self.spend_model, "Gamma-Gamma (spend per purchase)")):
            if model is not None:
                rows.append(pd.DataFrame({"model": label, "parameter": model.params_.index,
                                          "estimate": model.params_.to_numpy(),
                                          "standard_error": model.standard_errors_.to_numpy()}))
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
            columns=["model", "parameter", "estimate", "standard_error"])

    def top_by_clv(self, n: int = 15) -> pd.DataFrame:
        """The ``n`` customers with the highest CLV."""
        cols = ["name", "acquisition_channel", "buyer_group", "last_purchase", "revenue_to_date", "p_alive",
                "expected_purchases", "expected_average_value", "clv"]
        return self.customers.nlargest(n, "clv")[cols]

    def probably_lost(self, n: int = 20) -> pd.DataFrame:
        """Repeat buyers who are probably gone, the biggest past spenders first."""
        cols = ["name", "buyer_group", "first_purchase", "last_purchase", "revenue_to_date", "p_alive"]
        lost = self.customers[self.customers["probably_lost"]]
        return lost.sort_values(["revenue_to_date", "p_alive"], ascending=[False, True]).head(n)[cols]


def _empty_analysis(as_of: dt.date, horizon: int, rate: float, source: str, currency: str, message: str) -> ClvAnalysis:
    return ClvAnalysis(as_of, horizon, pd.DataFrame(), None, None, rate, source, currency, message)


def analyse_customers(
    db: Database,
    as_of: dt.date | str,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.1,
    profit_margin: float = 0.3,
    p_alive_threshold: float = 0.5,
    penalizer_coef: float = 0.0,
) -> ClvAnalysis:
    """Fit BG/NBD and Gamma-Gamma on the paid orders up to ``as_of`` and value every customer.

    Times in days (``freq="D"``). Customer value is the discounted expected *profit*: expected
    net revenue × the margin share (:func:`margin_rate`: measured from order costs when orders
    carry them, else ``profit_margin``). A repeat buyer is "probably lost" when P(alive) is below
    ``p_alive_threshold``; one-time buyers always have P(alive) = 1 in BG/NBD, so they are never
    flagged (their low expected purchases say the same thing). Never raises on a thin store:
    the reason models could not be fitted is in ``message``.
    """
    as_of = dt.date.fromisoformat(_iso(as_of))
    if not 0 < p_alive_threshold < 1:
        raise ClvError("the P(alive) threshold must be between 0 and 1")
    rate, source = margin_rate(db, as_of, profit_margin)
    currency = store_currency(db)
    days = paid_purchase_days(db, as_of)
    if days.empty:
        return _empty_analysis(as_of, horizon_months, rate, source, currency,
                               f"no paid orders up to {as_of}: nothing to value yet")
    summary = summary_from_transactions(days, "customer_id", "order_date", "amount", observation_period_end=as_of)
    people = query_df(db, "SELECT customer_id, name, acquisition_channel FROM customers").set_index("customer_id")
    grouped = days.groupby("customer_id")
    one_year_ago = pd.Timestamp(as_of) - pd.Timedelta(days=365)
    recent = days[days["order_date"] > one_year_ago]
    recent_profit = (recent["amount"] - recent["cost"]).where(recent["cost"].notna(), recent["amount"] * rate)
    customers = summary.join(people, how="left").assign(
        buyer_group=_buyer_group(summary["frequency"]),
        first_purchase=grouped["order_date"].min().dt.date,
        last_purchase=grouped["order_date"].max().dt.date,
        revenue_to_date=grouped["amount"].sum(),
        transparent_clv=constant_profit_clv(
            recent_profit.groupby(recent["customer_id"]).sum().reindex(summary.index, fill_value=0.0).to_numpy(),
            annual_discount_rate, max(1, int(horizon_months) // 12)),
    )
    customers["acquisition_channel"] = customers["acquisition_channel"].fillna("unknown")
    analysis = ClvAnalysis(as_of, horizon_months, customers, None, None, rate, source, currency)
    repeat = int((summary["frequency"] > 0).sum())
    if repeat < 30:
        analysis.notes.append(f"only {repeat} customers bought more than once: the estimates are rough")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            bgm = BetaGeoModel(penalizer_coef).fit(summary["frequency"], summary["recency"], summary["T"])
        except ClvError as exc:
            analysis.message = f"the purchase model cannot be fitted: {exc}"
            return analysis
        spend = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        try:
            ggm: GammaGammaModel | None = GammaGammaModel(penalizer_coef).fit(
                spend["frequency"], spend["monetary_value"])
            value = ggm.expected_average_value(summary["frequency"], summary["monetary_value"])
        except ClvError as exc:
            ggm = None
            mean_spend = float((spend["monetary_value"] * spend["frequency"]).sum() / max(spend["frequency"].sum(), 1))
            value = pd.Series(mean_spend, index=summary.index)
            analysis.notes.append(f"spend model not fitted ({exc}); every customer is valued at the mean "
                                  f"repeat purchase, {mean_spend:,.2f}")
    analysis.notes += [str(w.message) for w in caught]
    analysis.transaction_model, analysis.spend_model = bgm, ggm
    args = (summary["frequency"], summary["recency"], summary["T"])
    customers["p_alive"] = bgm.p_alive(*args)
    customers["expected_purchases"] = bgm.expected_purchases(horizon_months * DAYS_PER_MONTH, *args)
    customers["expected_average_value"] = value
    customers["clv"] = customer_lifetime_value(bgm, *args, value, horizon_months, annual_discount_rate, rate)
    customers["probably_lost"] = (customers["frequency"] > 0) & (customers["p_alive"] < p_alive_threshold)
    return analysis


def value_by_group(customers: pd.DataFrame, by: str) -> pd.DataFrame:
    """CLV per group of an :class:`ClvAnalysis` ``customers`` frame (e.g. by="acquisition_channel").

    Columns: customers, total_clv, mean_clv, median_clv, share_of_clv (%), mean_p_alive,
    probably_lost; sorted by total CLV.
    """
    grouped = customers.groupby(by, observed=True)
    out = pd.DataFrame({
        "customers": grouped.size(),
        "total_clv": grouped["clv"].sum(),
        "mean_clv": grouped["clv"].mean(),
        "median_clv": grouped["clv"].median(),
        "mean_p_alive": grouped["p_alive"].mean(),
        "probably_lost": grouped["probably_lost"].sum().astype(int),
    })
    total = out["total_clv"].sum()
    out.insert(4, "share_of_clv", 100 * out["total_clv"] / total if total > 0 else 0.0)
    return out.sort_values("total_clv", ascending=False)


def subscription_estimate(
    db: Database, as_of: dt.date | str, margin_share: float, months: int = 12, active_days: int = 90
) -> pd.DataFrame:
    """The subscription-style CLV from the store: average monthly margin per active customer ÷ monthly churn.

    A customer is "active" at a month's end when they have a paid order in the ``active_days``
    days before it; the monthly churn rate is the share of customers active at the end of one
    month who are no longer active at the end of the next, averaged over the last ``months``
    months; the monthly margin per active customer is the month's net revenue × ``margin_share``
    ÷ active customers, averaged too. One row: months, mean_active_customers,
    monthly_margin_per_customer, monthly_churn_rate, subscription_clv (missing when churn is 0),
    note. For a shop (not a subscription) "active" and "churn" are definitions, not facts.
    """
    end = pd.Timestamp(_iso(as_of))
    ends = [(end + pd.offsets.MonthEnd(0)) - pd.offsets.MonthEnd(k) for k in range(months, -1, -1)]
    ends[-1] = min(ends[-1], end)
    active, margins = [], []
    for k, month_end in enumerate(ends):  # one small query per month
        since = (month_end - pd.Timedelta(days=active_days)).date().isoformat()
        ids = db.execute("SELECT DISTINCT customer_id FROM orders WHERE status = 'paid' AND order_date > ? "
                         "AND order_date <= ?", [since, month_end.date().isoformat()]).fetchall()
        active.append({r[0] for r in ids})
        if k:
            start = (ends[k - 1] + pd.Timedelta(days=1)).date().isoformat()
            revenue = db.execute(f"SELECT coalesce(sum({net_revenue_sql()}), 0) FROM orders WHERE status = 'paid' "
                                 "AND order_date >= ? AND order_date <= ?",
                                 [start, month_end.date().isoformat()]).fetchone()[0]
            margins.append(revenue * margin_share / len(active[-1]) if active[-1] else 0.0)
    churn = [len(prev - cur) / len(prev) for prev, cur in zip(active, active[1:]) if prev]
    row: dict[str, object] = {
        "months": months, "mean_active_customers": float(np.mean([len(a) for a in active[1:]])),
        "monthly_margin_per_customer": float(np.mean(margins)) if margins else 0.0,
        "monthly_churn_rate": float(np.mean(churn)) if churn else None, "subscription_clv": None, "note": "",
    }
    try:
        row["subscription_clv"] = subscription_clv(row["monthly_margin_per_customer"], row["monthly_churn_rate"] or 0.0)
    except ClvError as exc:
        row["note"] = f"not defined: {exc}"
    out = pd.DataFrame([row])
    for col in ("monthly_churn_rate", "subscription_clv"):
        out[col] = pd.array(out[col].tolist(), dtype="Float64")
    return out


def compare_methods(analysis: ClvAnalysis, subscription: pd.DataFrame) -> pd.DataFrame:
    """The three CLV figures side by side, per customer, each with what it assumes."""
    c = analysis.customers
    years = max(1, analysis.horizon_months // 12)
    return pd.DataFrame([
        {"method": f"BG/NBD + Gamma-Gamma, discounted, next {analysis.horizon_months} months",
         "mean_per_customer": float(c["clv"].mean()), "total": float(c["clv"].sum()),
         "assumes": "customers buy at their own pace until they silently leave; learned from the whole book"},
        {"method": f"Transparent formula Σ profit/(1+d)^t, {years} year(s)",
         "mean_per_customer": float(c["transparent_clv"].mean()), "total": float(c["transparent_clv"].sum()),
         "assumes": "each customer repeats last year's profit every year and never leaves"},
        {"method": "Subscription style: monthly margin ÷ monthly churn",
         "mean_per_customer": subscription["subscription_clv"].iloc[0],
         "total": pd.NA,
         "assumes": "a constant churn rate for every customer; undiscounted; per active customer"},
    ]).astype({"mean_per_customer": "Float64", "total": "Float64"})


@dataclass
class HoldoutValidation:
    """Predicted vs actual repeat purchases in a holdout window (see :func:`holdout_validation`)."""

    calibration_end: dt.date | None
    holdout_days: int
    by_frequency: pd.DataFrame
    aggregate: pd.DataFrame
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.message

    def long(self) -> pd.DataFrame:
        """``by_frequency`` in long form for a grouped bar plot: repeat_purchases_in_calibration, kind, mean."""
        frame = self.by_frequency.reset_index()
        return frame.melt(id_vars="repeat_purchases_in_calibration", value_vars=["actual", "predicted"],
                          var_name="kind", value_name="mean_purchases_in_holdout")


def holdout_validation(
    db: Database, as_of: dt.date | str, holdout_days: int | None = None, penalizer_coef: float = 0.0,
    max_group: int = 7,
) -> HoldoutValidation:
    """Fit BG/NBD on the orders before a holdout window and compare its predictions with what happened.

    The holdout is the last ``holdout_days`` days up to ``as_of`` (default: a third of the
    history, at most 182 days). Only customers who bought before it are scored (lifetimes'
    ``calibration_and_holdout_data``). ``by_frequency``: per number of repeat purchases in the
    calibration (capped at ``max_group``+), customers and mean actual and predicted repeat
    purchases in the holdout. ``aggregate``: customers, actual and predicted totals, the total
    the model expects from customers of the same ages without looking at their history
    (``predicted_without_history``: the unconditional E[X(T + d)] − E[X(T)], FHL eq. 9), the
    relative error of the prediction (%) and the mean absolute error per customer.
    """
    as_of = dt.date.fromisoformat(_iso(as_of))
    empty = HoldoutValidation(None, 0, pd.DataFrame(), pd.DataFrame())
    days = paid_purchase_days(db, as_of)
    if days.empty:
        empty.message = f"no paid orders up to {as_of}"
        return empty
    span = (pd.Timestamp(as_of) - days["order_date"].min()).days
    holdout = int(holdout_days) if holdout_days else min(182, span // 3)
    if holdout < 14 or span - holdout < 60:
        empty.message = f"the history ({span} days) is too short to hold out a validation window"
        return empty
    cal_end = as_of - dt.timedelta(days=holdout)
    split = summary_from_transactions(days, "customer_id", "order_date", observation_period_end=as_of,
                                      calibration_period_end=cal_end)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = BetaGeoModel(penalizer_coef).fit(split["frequency_cal"], split["recency_cal"], split["T_cal"])
    except ClvError as exc:
        empty.message = f"the purchase model cannot be fitted on the calibration period: {exc}"
        return empty
    predicted = np.asarray(model.expected_purchases(float(split["duration_holdout"].iloc[0]), split["frequency_cal"],
                                                    split["recency_cal"], split["T_cal"]))
    actual = split["frequency_holdout"].to_numpy()
    group = np.minimum(split["frequency_cal"].to_numpy(), max_group).astype(int)
    labels = pd.Series([f"{g}+" if g == max_group else str(g) for g in group], name="repeat_purchases_in_calibration")
    frame = pd.DataFrame({"group": group, "label": labels, "actual": actual, "predicted": predicted})
    by_frequency = frame.groupby(["group", "label"]).agg(
        customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean"))
    by_frequency = by_frequency.reset_index("group", drop=True)
    by_frequency.index.name = "repeat_purchases_in_calibration"
    total_actual, total_predicted = float(actual.sum()), float(predicted.sum())
    age, duration = split["T_cal"].to_numpy(), float(split["duration_holdout"].iloc[0])
    unconditional = float(np.sum(model.expected_purchases_new_customer(age + duration)
                                 - model.expected_purchases_new_customer(age)))
    aggregate = pd.DataFrame([{
        "customers": len(frame), "calibration_end": cal_end, "holdout_days": holdout,
        "actual_repeat_purchases": total_actual, "predicted_repeat_purchases": total_predicted,
        "predicted_without_history": unconditional,
        "error_pct": 100 * (total_predicted - total_actual) / total_actual if total_actual else None,
        "mean_absolute_error_per_customer": float(np.mean(np.abs(predicted - actual))),
    }]).astype({"error_pct": "Float64"})
    return HoldoutValidation(cal_end, holdout, by_frequency, aggregate)


def frequency_recency_matrix(
    model: BetaGeoModel, T: float, max_frequency: int = 10, n_recency: int = 12, t: float | None = None
) -> pd.DataFrame:
    """P(alive) — or, with ``t``, expected purchases in the next ``t`` periods — by frequency and recency.

    For a customer of age ``T``: rows are repeat purchases 0..``max_frequency``, columns ages
    at last purchase from 0 to T in ``n_recency`` + 1 steps (model periods, days in this
    workbook). Impossible cells (no repeat purchase but a recency above 0) are empty (NaN).
    The input of a heatmap.
    """
    if T <= 0:
        raise ClvError("T must be positive")
    recencies = np.linspace(0, T, n_recency + 1)
    f_grid, r_grid = np.meshgrid(np.arange(max_frequency + 1, dtype=float), recencies, indexing="ij")
    valid = (f_grid > 0) | (r_grid == 0)
    f, r = f_grid[valid], r_grid[valid]
    ages = np.full_like(f, float(T))
    values = model.p_alive(f, r, ages) if t is None else model.expected_purchases(t, f, r, ages)
    grid = np.full(f_grid.shape, np.nan)
    grid[valid] = values
    return pd.DataFrame(grid, index=pd.Index(range(max_frequency + 1), name="frequency"),
                        columns=pd.Index(np.round(recencies).astype(int), name="recency"))


# --------------------------------------------------------------------------------------------
# Plots for the notebook
# --------------------------------------------------------------------------------------------


def plot_holdout(validation: HoldoutValidation) -> "Axes":
    """Grouped bars: mean actual vs predicted repeat purchases in the holdout, per calibration frequency."""
    import seaborn as sns

    ax = sns.barplot(data=validation.long(), x="repeat_purchases_in_calibration", y="mean_purchases_in_holdout",
                     hue="kind", palette=["#3b8ea5", "#f2a65a"])
    ax.set(title=f"Repeat purchases in the last {validation.holdout_days} days: actual vs predicted",
           xlabel="repeat purchases before the holdout", ylabel="mean per customer")
    return ax


def plot_alive_matrices(model: BetaGeoModel, T: float, horizon_days: float, max_frequency: int = 10) -> "Figure":
    """Two heatmaps for a customer of age ``T`` days: P(alive), and expected purchases in the next ``horizon_days``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    alive = frequency_recency_matrix(model, T, max_frequency, n_recency=8)
    expected = frequency_recency_matrix(model, T, max_frequency, n_recency=8, t=horizon_days)
    sns.heatmap(alive, ax=left, cmap="crest", vmin=0, vmax=1, annot=True, fmt=".1f", annot_kws={"size": 7})
    sns.heatmap(expected, ax=right, cmap="crest", annot=True, fmt=".1f", annot_kws={"size": 7})
    for ax, title in ((left, "P(still a customer)"),
                      (right, f"Expected purchases, next {horizon_days / DAYS_PER_MONTH:.0f} months")):
        ax.invert_yaxis()
        ax.set(title=title, xlabel="age at last purchase (days)", ylabel="repeat purchases")
    fig.tight_layout()
    return fig


def plot_clv_distribution(customers: pd.DataFrame, currency: str) -> "Axes":
    """Histogram of customer values on a log scale, split by buyer group."""
    import seaborn as sns

    shown = customers[customers["clv"] > 0]
    ax = sns.histplot(data=shown, x="clv", hue="buyer_group", multiple="stack", bins=40, log_scale=True,
                      palette="crest", hue_order=["1 purchase", "2–3 purchases", "4–9 purchases", "10+ purchases"])
    ax.set(title="Customer lifetime value (discounted expected profit)", xlabel=f"CLV ({currency}, log scale)",
           ylabel="customers")
    return ax
