"""Monthly revenue and order-count forecasts (the articles' ARIMA), with an honest backtest.

The articles propose an ARIMA model for "customer behaviour" (``x_t = c + φ1 x_{t-1} + ... + ε_t``).
Here it forecasts the business's monthly **net revenue** (sum of paid orders' amounts, in the
store's currency) and **paid-order count**. Which model depends on how much history there is:

- **24 months or more: seasonal ARIMA** (statsmodels ``SARIMAX``), orders
  ``(p, 1, q)(P, 1, Q, 12)``. The differencing is fixed (d = 1 for the trend, D = 1 for the
  yearly pattern) because AIC only compares models fitted to the same differenced series; AIC
  then picks p, q in {0, 1} and (P, Q) in {(0, 0), (0, 1)}, plus (1, 0) from 36 months on: a
  small grid (8 or 12 fits) that stays fast.
- **12 to 23 months: exponential smoothing** (statsmodels' Holt-Winters class
  ``ExponentialSmoothing``) with an additive damped trend and *no* seasonal term: statsmodels
  cannot initialise a 12-month season from less than two full years, and a season guessed from
  a single year did worse than no season in backtests on the demo store. The note says so.
- **fewer than 12 months: the naive forecast** (last month's value carried forward), with a note
  that this is a baseline, not a model; with 12 months or more the *seasonal-naive* forecast
  (same month last year) is the baseline every model is compared with.

Prediction intervals: from the state-space model for SARIMAX, from 500 bootstrap simulations
for exponential smoothing (seeded by ``random_state``), from the spread of past naive errors for
the baselines. Lower bounds are clipped at 0 (no negative revenue or order counts).

The **backtest** is rolling-origin: at each of the last ``folds`` origins the chosen model
specification is refitted on the months before the origin (at least as many as the model is
ever fitted on: 24 for seasonal ARIMA, 12 otherwise) and forecasts the next ``horizon`` months;
the seasonal-naive forecast is scored on exactly the same months. The error measure is MAPE (mean
absolute percentage error, months with an actual of 0 left out). The orders are chosen once on
the full history, which flatters the model slightly; the text says which wins.

statsmodels' optimiser warnings (``ConvergenceWarning``, "non-stationary/non-invertible starting
parameters", "too few observations to estimate starting parameters") are caught and counted;
every other warning is passed on, and errors are never hidden: a grid candidate that fails is
skipped and counted in the note.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pandas as pd
from scipy import stats
from sqlite_utils import Database
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from crm_helpers.errors import CrmError
from crm_helpers.i18n import t, tn
from crm_helpers.store.queries import memoized, query_df, store_currency
from crm_helpers.store.facts import net_revenue_sql, next_day, on_or_before_sql, paid
from crm_helpers.store.values import Headline, span
from crm_helpers.store.periods import Period, month_end

SEASON = 12
FEWEST_MONTHS: dict[str, int] = {"sarimax": 2 * SEASON, "exponential smoothing": SEASON}
"""The fewest months of history each model is fitted on (:meth:`MonthlyForecaster.fit` chooses it
from there), and so the fewest a backtest refit of it gets before its origin (:func:`backtest`).
Seasonal ARIMA refitted on 15–21 months, with yearly differencing leaving 3–9 months, gave ranges
from 4 % to 100 % of the level within one generator of simulated sales, and backtest factors up to
21,000: ranges thousands of times too wide for about 1 owner in 20 with exactly 24 months."""
METRICS: dict[str, str] = {"revenue": "net revenue (paid orders)", "orders": "paid orders"}

METHOD_IN_WORDS = {
    "sarimax": "a seasonal model of the past months",
    "exponential smoothing": "a smoothed trend of the past months",
    "seasonal naive": "the same month last year",
    "naive": "last month again",
}
"""Each forecasting method (``MonthlyForecaster.method_``) in the owner's words, for headlines."""

_NOISE = re.compile(
    r"Non-stationary starting|Non-invertible starting|Too few observations to estimate starting"
)


class ForecastError(CrmError, ValueError):
    """The forecast cannot be made (no history, bad parameters)."""


@contextmanager
def _fitting() -> Iterator[list[str]]:
    """The context of every statsmodels fit: one BLAS thread, optimiser noise caught.

    The matrices of these models are tiny, so extra BLAS threads only add overhead (ten times
    slower on a busy two-core machine). statsmodels' optimiser noise is collected in the
    yielded list; every other warning is re-emitted.
    """
    suppressed: list[str] = []
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield suppressed
    for w in caught:
        noise = issubclass(w.category, ConvergenceWarning) or (
            issubclass(w.category, UserWarning) and _NOISE.search(str(w.message))
        )
        if noise:
            suppressed.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def monthly_history(db: Database, as_of: dt.date) -> pd.DataFrame:
    """Net revenue and paid-order count per complete month up to ``as_of``.

    Columns: ``month`` (``datetime64``, first day of the month), ``revenue`` (sum of paid orders'
    amounts, store currency), ``orders`` (count of paid orders). A month is complete when
    ``as_of`` is on or after its last day. Months between the first month with a paid order and
    the last complete month that have no paid order show 0. Aggregated in SQLite (one row per
    month comes back). An empty store gives an empty frame.
    """
    this_month = as_of.replace(day=1)
    last = this_month if as_of == month_end(as_of) else (this_month - dt.timedelta(days=1)).replace(day=1)
    rows = query_df(
        db,
        f"SELECT substr(order_date, 1, 7) AS month, sum({net_revenue_sql()}) AS revenue, count(*) AS orders FROM orders "
        f"WHERE {paid()} AND {on_or_before_sql('order_date', '?')} GROUP BY 1 ORDER BY 1",
        params=[next_day(month_end(last))],
    )
    if rows.empty:
        return pd.DataFrame({"month": pd.Series(dtype="datetime64[ns]"), "revenue": pd.Series(dtype=float),
                             "orders": pd.Series(dtype=int)})
    months = pd.date_range(pd.Timestamp(rows["month"].iloc[0] + "-01"), pd.Timestamp(last), freq="MS")
    rows.index = pd.to_datetime(rows["month"] + "-01")
    history = rows[["revenue", "orders"]].reindex(months, fill_value=0)
    history = history.astype({"revenue": float, "orders": int})
    return history.rename_axis("month").reset_index()


def _as_series(y: pd.Series) -> pd.Series:
    """A float series on a gap-free month-start index with frequency ``MS``."""
    if not isinstance(y.index, pd.DatetimeIndex):
        raise ForecastError("the series needs a monthly DatetimeIndex (first day of each month)")
    expected = pd.date_range(y.index[0], periods=len(y), freq="MS") if len(y) else y.index
    if len(y) and not y.index.equals(expected):
        raise ForecastError("the series must hold consecutive months, each dated on its first day")
    out = y.astype(float).copy()
    out.index = pd.DatetimeIndex(out.index, freq="MS") if len(y) else out.index
    return out


def _future_months(y: pd.Series, horizon: int) -> pd.DatetimeIndex:
    return pd.date_range(y.index[-1] + pd.offsets.MonthBegin(1), periods=horizon, freq="MS")


def naive_forecast(y: pd.Series, *, horizon: int, seasonal: bool, interval: float = 0.8,
                   clip: bool = True) -> pd.DataFrame:
    """The naive (last value) or seasonal-naive (same month last year) forecast with intervals.

    ``y``: monthly series (see :class:`MonthlyForecaster`); seasonal needs at least 12 months.
    Intervals assume the past one-step naive errors (or same-month-last-year errors) are normal:
    ± z · sd · sqrt(k) for the naive forecast k months ahead, ± z · sd · sqrt(full years ahead)
    for the seasonal one; NaN with fewer than 2 past errors. Columns: ``month, forecast, lower, upper``;
    the lower bound is clipped at 0 unless ``clip`` is False.
    """
    y = _as_series(y)
    lag = SEASON if seasonal else 1
    if len(y) < max(lag, 1):
        raise ForecastError(f"the {'seasonal-' if seasonal else ''}naive forecast needs at least {lag} months")
    steps = np.arange(1, horizon + 1)
    if seasonal:
        point = y.to_numpy()[len(y) - SEASON + (steps - 1) % SEASON]
        spread = np.sqrt((steps - 1) // SEASON + 1)
    else:
        point = np.full(horizon, y.iloc[-1])
        spread = np.sqrt(steps)
    errors = (y - y.shift(lag)).dropna()
    sd = errors.std(ddof=1) if len(errors) >= 2 else np.nan
    z = stats.norm.ppf(0.5 + interval / 2)
    lower = point - z * sd * spread
    return pd.DataFrame({"month": _future_months(y, horizon), "forecast": point,
                         "lower": np.maximum(lower, 0.0) if clip else lower, "upper": point + z * sd * spread})


class MonthlyForecaster:
    """Forecast a monthly series: SARIMAX by AIC, exponential smoothing, or the naive baseline.

    The method follows the length of the history (see the module docstring).

    Parameters: ``horizon`` months to forecast, ``interval`` the coverage of the prediction
    interval (0.8 = 80%), ``random_state`` seeds the simulated intervals of exponential smoothing.

    Fitted attributes: ``method_`` (``"sarimax"``, ``"exponential smoothing"``, ``"naive"`` or
    ``"seasonal naive"``), ``label_`` (e.g. ``"SARIMAX(1,1,0)(0,1,1,12)"``), ``order_`` and
    ``seasonal_order_`` (SARIMAX only), ``aic_``, ``candidates_`` (the grid: orders, AIC, error),
    ``n_months_``, ``note_`` (plain sentences on what was done and why), ``suppressed_warnings_``
    (how many optimiser warnings were caught; :func:`warnings_in_words` says so once for all the
    series of a page), ``y_`` (the history), ``result_`` (statsmodels).
    """

    def __init__(self, horizon: int = 6, interval: float = 0.8, *, random_state: int = 0) -> None:
        self.horizon = horizon
        self.interval = interval
        self.random_state = random_state

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, y: pd.Series) -> "MonthlyForecaster":
        """Choose and fit the model for ``y``: float values on consecutive month starts."""
        if self.horizon < 1:
            raise ForecastError(f"the horizon must be at least 1 month, not {self.horizon}")
        if not 0 < self.interval < 1:
            raise ForecastError(f"interval must be between 0 and 1 (e.g. 0.8), not {self.interval}")
        y = _as_series(y)
        if len(y) == 0:
            raise ForecastError("there is no monthly history to forecast from")
        self.y_, self.n_months_ = y, len(y)
        self.order_: tuple[int, int, int] | None = None
        self.seasonal_order_: tuple[int, int, int, int] | None = None
        self.aic_ = float("nan")
        self.result_: Any = None
        self.candidates_ = pd.DataFrame(columns=["order", "seasonal_order", "aic", "error"])
        self.suppressed_warnings_ = 0
        notes: list[str] = []
        if len(y) >= FEWEST_MONTHS["sarimax"]:
            self._fit_sarimax(y, notes)
        elif len(y) >= FEWEST_MONTHS["exponential smoothing"]:
            notes.append(t(
                "Only {n} months of history: fewer than the 24 a seasonal model needs, so this is "
                "exponential smoothing with a damped trend and no yearly pattern (a December peak, for "
                "example, is not in the forecast).", n=len(y)))
            self._fit_smoothing(y, notes)
        else:
            self._use_naive(seasonal=False)
            notes.append(tn(
                "Only {n} month of history: too short for a model. The forecast is the naive "
                "baseline (last month's value carried forward); treat it as a rough guide.",
                "Only {n} months of history: too short for a model. The forecast is the naive "
                "baseline (last month's value carried forward); treat it as a rough guide.", n=len(y)))
        self.note_ = " ".join(notes)
        return self

    def _fit_sarimax(self, y: pd.Series, notes: list[str]) -> None:
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        seasonal = [(0, 0), (0, 1)] + ([(1, 0)] if len(y) >= 3 * SEASON else [])
        grid = [((p, 1, q), (sp, 1, sq, SEASON)) for p in (0, 1) for q in (0, 1) for sp, sq in seasonal]
        rows, best = [], None
        for order, seasonal_order in grid:
            with _fitting() as noise:
                try:
                    result = SARIMAX(y, order=order, seasonal_order=seasonal_order).fit(disp=False)
                    aic, error = float(result.aic), ""
                except (np.linalg.LinAlgError, ValueError) as exc:
                    result, aic, error = None, float("nan"), f"{type(exc).__name__}: {exc}"
            self.suppressed_warnings_ += len(noise)
            rows.append({"order": order, "seasonal_order": seasonal_order, "aic": aic, "error": error})
            if result is not None and np.isfinite(aic) and (best is None or aic < best[0]):
                best = (aic, order, seasonal_order, result)
        self.candidates_ = pd.DataFrame(rows)
        if best is None:
            notes.append(t("No seasonal ARIMA candidate could be fitted; falling back to exponential smoothing."))
            self._fit_smoothing(y, notes)
            return
        self.aic_, self.order_, self.seasonal_order_, self.result_ = best
        self.method_ = "sarimax"
        self.label_ = f"SARIMAX{self.order_}{self.seasonal_order_}".replace(" ", "")
        failed = int((self.candidates_["error"] != "").sum())
        fields = dict(n=len(y), label=self.label_, candidates=len(grid), failed=failed)
        notes.append(t("{n} months of history: seasonal ARIMA {label}, the lowest AIC of {candidates} candidates "
                       "with trend and yearly differencing ({failed} could not be fitted).", **fields) if failed
                     else t("{n} months of history: seasonal ARIMA {label}, the lowest AIC of {candidates} "
                            "candidates with trend and yearly differencing.", **fields))
        if not self.result_.mle_retvals.get("converged", True):
            notes.append(t("The chosen model's optimiser did not fully converge; read the intervals with care."))

    def _fit_smoothing(self, y: pd.Series, notes: list[str]) -> None:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        with _fitting() as noise:
            try:
                self.result_ = ExponentialSmoothing(
                    y, trend="add", damped_trend=True, initialization_method="estimated"
                ).fit()
            except (np.linalg.LinAlgError, ValueError) as exc:
                self.result_ = None
                failure = f"{type(exc).__name__}: {exc}"
        self.suppressed_warnings_ += len(noise)
        if self.result_ is None:
            self._use_naive(seasonal=len(y) >= SEASON)
            notes.append(f"Exponential smoothing could not be fitted ({failure}); the forecast is the {self.label_}.")
            return
        self.aic_ = float(self.result_.aic)
        self.method_, self.label_ = "exponential smoothing", "exponential smoothing (damped trend)"

    def _use_naive(self, *, seasonal: bool) -> None:
        self.method_ = "seasonal naive" if seasonal else "naive"
        self.label_ = "seasonal-naive baseline" if seasonal else "naive baseline"

    # -- forecasting -------------------------------------------------------------------------------
    def predict(self, horizon: int | None = None) -> pd.DataFrame:
        """Forecast the next ``horizon`` months: ``month, forecast, lower, upper`` (all clipped at 0).

        The range is the model's own (see the module docstring), not yet widened by horizon:
        :func:`forecast_series` does that."""
        fc = self.predict_unclipped(horizon)
        return fc.assign(**{c: np.maximum(fc[c].to_numpy(), 0.0) for c in ("forecast", "lower", "upper")})

    def predict_unclipped(self, horizon: int | None = None) -> pd.DataFrame:
        """As :meth:`predict`, but nothing clipped at 0: the model's range, centred on its forecast."""
        h = horizon or self.horizon
        y = self.y_
        if self.method_ in ("naive", "seasonal naive"):
            return naive_forecast(y, horizon=h, seasonal=self.method_ == "seasonal naive", interval=self.interval,
                                  clip=False)
        if self.method_ == "sarimax":
            with _fitting():
                fc = self.result_.get_forecast(h)
                point = fc.predicted_mean.to_numpy()
                bounds = fc.conf_int(alpha=1 - self.interval).to_numpy()
            lower, upper = bounds[:, 0], bounds[:, 1]
        else:
            point = self.result_.forecast(h).to_numpy()
            with _fitting():
                sims = self.result_.simulate(h, repetitions=500, error="add", random_errors="bootstrap",
                                             rng=np.random.default_rng(self.random_state))
            tail = (1 - self.interval) / 2
            lower = np.quantile(sims.to_numpy(), tail, axis=1)
            upper = np.quantile(sims.to_numpy(), 1 - tail, axis=1)
        return pd.DataFrame({"month": _future_months(y, h), "forecast": point, "lower": lower, "upper": upper})

    @property
    def refit_months(self) -> int:
        """The fewest months a refit of this model gets before a backtest origin: as many as its method
        is ever fitted on (:data:`FEWEST_MONTHS`), 12 for the baselines (a seasonal-naive one needs a year)."""
        return FEWEST_MONTHS.get(self.method_, SEASON)

    def refit(self, y: pd.Series) -> "MonthlyForecaster":
        """A copy with the same method and orders fitted on ``y`` (no new model choice): for backtests."""
        from statsmodels.tsa.holtwinters import ExponentialSmoothing
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        clone = MonthlyForecaster(self.horizon, self.interval, random_state=self.random_state)
        clone.y_ = _as_series(y)
        clone.n_months_, clone.method_, clone.label_ = len(y), self.method_, self.label_
        clone.order_, clone.seasonal_order_ = self.order_, self.seasonal_order_
        with _fitting() as noise:
            if self.method_ == "sarimax":
                clone.result_ = SARIMAX(clone.y_, order=self.order_,
                                        seasonal_order=self.seasonal_order_).fit(disp=False)
            elif self.method_ == "exponential smoothing":
                clone.result_ = ExponentialSmoothing(
                    clone.y_, trend="add", damped_trend=True, initialization_method="estimated"
                ).fit()
        clone.suppressed_warnings_ = len(noise)
        return clone


def backtest(y: pd.Series, model: MonthlyForecaster, *, folds: int = 3, horizon: int = 3) -> pd.DataFrame:
    """Rolling-origin backtest of ``model``'s specification against the seasonal-naive forecast.

    Origins: the last ``folds`` points ``n - horizon·k`` (k = folds..1), so the folds cover the
    last ``folds × horizon`` months without overlap; an origin needs as many earlier months as the
    model is ever fitted on (:data:`FEWEST_MONTHS`: 24 for seasonal ARIMA, so its first fold comes
    at 27 months of history, 12 for exponential smoothing and the seasonal-naive baseline). At each
    origin the model is refitted on the earlier months (same method and orders, see
    :meth:`MonthlyForecaster.refit`) and forecasts ``horizon`` months.
    Columns: ``fold, origin`` (last training month), ``month, actual, model, seasonal_naive`` and
    ``model_half`` (half the width of the refit's own range that month, made non-decreasing within
    the fold as in :func:`model_half_width`: the scale of :func:`backtest_factor`).
    Empty when the model is itself a naive baseline or the history is too short for one fold.
    A fold whose refit fails is skipped.
    """
    y = _as_series(y)
    columns = ["fold", "origin", "month", "actual", "model", "seasonal_naive", "model_half"]
    if model.method_ in ("naive", "seasonal naive"):
        return pd.DataFrame(columns=columns)
    frames = []
    for fold, k in enumerate(range(folds, 0, -1), start=1):
        origin = len(y) - horizon * k
        if origin < model.refit_months:
            continue
        train, test = y.iloc[:origin], y.iloc[origin:origin + horizon]
        try:
            own = model.refit(train).predict_unclipped(len(test))
        except (np.linalg.LinAlgError, ValueError):
            continue
        predicted = np.maximum(own["forecast"].to_numpy(), 0.0)
        baseline = naive_forecast(train, horizon=len(test), seasonal=True)["forecast"].to_numpy()
        frames.append(pd.DataFrame({"fold": fold, "origin": train.index[-1], "month": test.index,
                                    "actual": test.to_numpy(), "model": predicted, "seasonal_naive": baseline,
                                    "model_half": model_half_width(own)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def mape(actual: pd.Series | np.ndarray, predicted: pd.Series | np.ndarray) -> float:
    """Mean absolute percentage error in percent, over the points whose actual is not 0 (NaN if none)."""
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    keep = a != 0
    return float(np.mean(np.abs(a[keep] - p[keep]) / np.abs(a[keep])) * 100) if keep.any() else float("nan")


def backtest_verdict(bt: pd.DataFrame, label: str, *, what: str, fewest: int = SEASON) -> tuple[float, float, str]:
    """``(model MAPE, seasonal-naive MAPE, plain sentence saying which wins)`` for a backtest table.

    ``fewest``: the months the model needs before each test origin
    (:attr:`MonthlyForecaster.refit_months`), said when there is no backtest."""
    if bt.empty:
        return float("nan"), float("nan"), t(
            "No backtest for {what}: the history is too short to test this forecast against the seasonal-naive "
            "one (a backtest needs {fewest} months before each test origin: the fewest this model is fitted on).",
            what=t(what), fewest=fewest)
    model_err, base_err = mape(bt["actual"], bt["model"]), mape(bt["actual"], bt["seasonal_naive"])
    fields = dict(what=t(what), months=bt["month"].nunique(), folds=bt["fold"].nunique(), label=label,
                  model_err=f"{model_err:.1f}%", base_err=f"{base_err:.1f}%")
    if np.isclose(model_err, base_err, atol=0.05):
        return model_err, base_err, t(
            "For {what} over the last {months} months ({folds} folds), the {label} was off by {model_err} on average "
            "(MAPE), the seasonal-naive forecast (same month last year) by {base_err}: a tie, the model adds "
            "nothing over the simple forecast.", **fields)
    if model_err < base_err:
        return model_err, base_err, t(
            "For {what} over the last {months} months ({folds} folds), the {label} was off by {model_err} on average "
            "(MAPE), the seasonal-naive forecast (same month last year) by {base_err}: the model wins.", **fields)
    return model_err, base_err, t(
        "For {what} over the last {months} months ({folds} folds), the {label} was off by {model_err} on average "
        "(MAPE), the seasonal-naive forecast (same month last year) by {base_err}: the seasonal-naive forecast "
        "wins, so trust the simple forecast more than the model.", **fields)


def backtest_factor(bt: pd.DataFrame, *, interval: float) -> float | None:
    """The factor on the model's own half-width that would have held ``interval`` of the backtest's months.

    Split-conformal with a scale per month: each backtest month's score is its miss
    |actual − model| divided by the refit's own half-width that month (``model_half``, which grows
    with the months ahead), so the 1-, 2- and 3-month-ahead errors are pooled on one scale and the
    range that results still grows with the horizon. The factor is the ⌈(n + 1)·interval⌉-th
    smallest of the n scores (the largest when n is too small for that). None without a month whose
    half-width is above 0. Calibration is against the backtest's months, a handful: it corrects a
    range that is clearly too narrow, no more.
    """
    if bt.empty:
        return None
    half = bt["model_half"].to_numpy(dtype=float)
    usable = np.isfinite(half) & (half > 0)
    if not usable.any():
        return None
    scores = np.sort((bt["actual"] - bt["model"]).abs().to_numpy(dtype=float)[usable] / half[usable])
    rank = int(np.ceil((len(scores) + 1) * interval))
    return float(scores[min(rank, len(scores)) - 1])


RANGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (6, 11, "6 to 11 months"), (12, 12, "12 months"), (13, 14, "13 to 14 months"), (15, 17, "15 to 17 months"),
    (18, 20, "18 to 20 months"), (21, 23, "21 to 23 months"), (24, 24, "24 months"), (25, 32, "25 to 32 months"),
    (33, 35, "33 to 35 months"), (36, 10_000, "36 months or more"),
)
"""Lengths of history (months, both ends included) that share one set of :data:`RANGE_FACTORS`:
the method changes at 12 and 24 months, and exactly 12 and exactly 24 months are bands of their
own (with one set of factors for 12 to 14 months, simulated forecasts from 12 months held 75 % and
from 14 months 86 %; with one for 24 to 35 months, 24 months held 72 % one month ahead and 27 and
30 months 85 %: the first seasonal ARIMA, with 12 months left after yearly differencing, states a
much narrower range of its own). The backtest has 1 fold from 15 months (an origin needs
12 earlier months and a fold 3 later ones), 2 from 18 and 3 from 21 with exponential smoothing;
with seasonal ARIMA, whose refits need 24 earlier months (:data:`FEWEST_MONTHS`), 1 from 27, 2
from 30 and 3 from 33; the fewer its folds the less its widening can be trusted. The SARIMAX grid
grows at 36. Under 6 months nothing is measured."""

MIN_BACKTEST_MONTHS = 9
"""The fewest backtest months that widen the range (:func:`backtest_factor`): with fewer, its
⌈(n + 1) · 0.8⌉-th smallest score is the largest one, a range that held 87 % of simulated months at
18 months of history instead of 80 %. Reached (3 folds of 3 months) at 21 months with exponential
smoothing, at 33 with seasonal ARIMA."""

CALIBRATED_INTERVAL = 0.8
"""The only coverage for which :data:`RANGE_FACTORS` and :data:`BACKTEST_SHAPE` were calibrated and measured."""

RANGE_FACTORS: dict[str, tuple[float, ...]] = {
    "6 to 11 months": (1.21, 0.95, 0.85, 0.79, 0.75, 0.0),
    "12 months": (1.75, 1.93, 1.94, 2.0, 1.87, 1.73),
    "13 to 14 months": (1.58, 1.73, 1.51, 1.65, 0.0, 1.16),
    "15 to 17 months": (1.31, 1.35, 1.39, 1.2, 0.0, 1.04),
    "18 to 20 months": (1.22, 1.23, 1.24, 1.22, 1.32, 1.24),
    "21 to 23 months": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    "24 months": (1.59, 1.23, 1.0, 0.9, 0.81, 0.0),
    "25 to 32 months": (1.23, 0.95, 0.0, 0.0, 0.0, 0.66),
    "33 to 35 months": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    "36 months or more": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
}
"""Per band of :data:`RANGE_BANDS`, the factor on the model's own 80 % half-width 1, 2, … 6 months
ahead when the series' backtest does not set the range (it holds under :data:`MIN_BACKTEST_MONTHS`
months: always under 21 months of history and from 24 to 32, rarely otherwise). Calibrated on
2026-12-07 by ``python -m benchmarks.forecast_coverage --calibrate`` on 2,000–2,010 simulated
seasonal series per band, 5,000 at 12 months and 4,000 at 24 (five generators, history lengths
across the band, seeds apart from the benchmark's; with 1,000 a band the 12-month factors held 84 %
of fresh series' months, 87 % five and six months ahead), month by month: each factor is the
smallest that holds 80 % of the simulated months that far ahead, given that the stated range is
never narrower than the month before's (:func:`widen_by_horizon`). 0 means the month before's range,
kept, already held 80 %. The bands 24 and 25 to 32 months were calibrated on 2026-12-07 after
SARIMAX refits were given 24 months (:data:`FEWEST_MONTHS`).
At 21 to 23 months and from 33 the backtest sets the range in all but a handful of the simulated
series (none of 2,010 at 33 to 35 months), too few to calibrate: those keep the model's own range
(1.0)."""

BACKTEST_SHAPE: dict[str, tuple[float, ...]] = {
    "21 to 23 months": (0.99, 0.96, 1.01, 0.0, 0.88, 0.0),
    "33 to 35 months": (1.12, 1.11, 0.92, 0.92, 0.0, 0.79),
    "36 months or more": (1.27, 1.11, 1.04, 0.0, 0.9, 0.0),
}
"""Per band where the backtest sets the range (21 to 23 months with exponential smoothing, from 33 with
seasonal ARIMA), the factor on (the model's own half-width × the backtest's :func:`backtest_factor`)
1, 2, … 6 months ahead. The backtest pools its 1-, 2- and 3-month-ahead misses into one factor, and
the model's own half-width grows faster with the months ahead than its misses do: with that factor
alone, at 24 months of history (when SARIMAX refits still got 12 months) the range held 72 % of
simulated months 1 month ahead and 88 % 5–6 months ahead. Calibrated as :data:`RANGE_FACTORS` are,
on the simulated series whose backtest set the range, with each series' misses divided by its
backtest factor: a shape factor is under 1 where the backtest's factor alone held more than 80 %."""


def history_band(n_months: int) -> str | None:
    """The :data:`RANGE_BANDS` label for ``n_months`` of history, None under 6 months."""
    for low, high, label in RANGE_BANDS:
        if low <= n_months <= high:
            return label
    return None


def model_half_width(raw: pd.DataFrame) -> np.ndarray:
    """Half the width of the model's own range (``raw``, unclipped) per month ahead, never narrower further out."""
    return np.fmax.accumulate((raw["upper"].to_numpy() - raw["lower"].to_numpy()) / 2)


def horizon_factors(steps: np.ndarray, *, n_months: int, q: float | None = None) -> np.ndarray:
    """The factor on the model's own half-width for each of ``steps`` (0 = 1 month ahead; beyond the
    6th month, where nothing was measured, the largest of the six): with the backtest's factor ``q``,
    ``q`` × the band's :data:`BACKTEST_SHAPE` (1 for a band without one); without, the band's
    :data:`RANGE_FACTORS` (1 outside every band: the model's own range)."""
    band = history_band(n_months)
    if q is None:
        factors = np.asarray(RANGE_FACTORS[band] if band else (1.0,), dtype=float)
    else:
        factors = q * np.asarray(BACKTEST_SHAPE.get(band or "", (1.0,)), dtype=float)
    return np.append(factors, factors.max())[np.minimum(steps, len(factors))]


def widen_by_horizon(raw: pd.DataFrame, *, n_months: int, q: float | None = None) -> pd.DataFrame:
    """The model's own range (``raw``: ``month, forecast, lower, upper``, unclipped) rescaled month by month.

    The half-width (upper − lower) ÷ 2 of month k ahead, made non-decreasing with k (a simulated
    range can come out a little narrower a month further on), is multiplied by the k-th factor of
    :func:`horizon_factors` (with the backtest's factor ``q`` when there is one) and made
    non-decreasing again, around the forecast: a range never narrows further out. Nothing is
    clipped: :func:`forecast_series` clips at 0 last.
    """
    factors = horizon_factors(np.arange(len(raw)), n_months=n_months, q=q)
    half = np.fmax.accumulate(model_half_width(raw) * factors)
    point = raw["forecast"].to_numpy()
    return raw.assign(lower=point - half, upper=point + half)


def backtest_hits(bt: pd.DataFrame, *, n_months: int, q: float | None = None) -> tuple[int, int]:
    """``(held, months)``: how many backtest months the stated range, laid around each backtest forecast, held.

    The k-th month of each fold gets the refit's own half-width that month (``model_half``) times the
    factor the stated range uses k months ahead (:func:`horizon_factors` for ``n_months`` of history
    and the backtest's factor ``q``), never narrower than the fold's month before (as
    :func:`widen_by_horizon`); a month is held when |actual − model| is within it.
    ``(0, 0)`` without a backtest."""
    if bt.empty:
        return 0, 0
    steps = bt.groupby("fold").cumcount().to_numpy()
    half = bt["model_half"].to_numpy(dtype=float) * horizon_factors(steps, n_months=n_months, q=q)
    half = pd.Series(half, index=bt.index).groupby(bt["fold"]).cummax().to_numpy()
    held = (bt["actual"] - bt["model"]).abs().to_numpy() <= half + 1e-9
    return int(held.sum()), len(bt)


@dataclass
class SeriesForecast:
    """What :func:`forecast_series` returns for one monthly series.

    ``model`` (fitted :class:`MonthlyForecaster`), ``raw`` (its own range, unclipped), ``backtest``
    (:func:`backtest`), ``q`` (the backtest's factor on the model's own half-width, :func:`backtest_factor`, None
    when it does not set the range), ``forecast`` (``month, forecast, lower, upper``: the range rescaled month by month,
    :func:`widen_by_horizon`, clipped at 0), ``band`` (:func:`history_band`), ``measured`` (True when this range's
    coverage was calibrated and measured: an 80 % range with a band), ``message`` (plain sentences
    on the range)."""

    model: MonthlyForecaster
    raw: pd.DataFrame
    backtest: pd.DataFrame
    forecast: pd.DataFrame
    q: float | None
    band: str | None
    measured: bool
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when there is a forecast."""
        return not self.forecast.empty


def range_in_words(band: str | None, *, measured: bool, backtest_months: int, interval: float) -> str:
    """One or two plain sentences on what the forecast range is and how often it holds.

    ``backtest_months``: months in the series' backtest; from :data:`MIN_BACKTEST_MONTHS` on it sets the range."""
    share = f"{interval:.0%}"
    if not measured:
        if band and interval != CALIBRATED_INTERVAL:
            return t("The {share} range is the model's own, rescaled month by month as for an 80 % range; how often "
                     "it holds is measured only for 80 % ranges.", share=share)
        return t("The {share} range is the baseline's own; with under 6 months of history how often it holds is "
                 "not measured: read it as a rough guide.", share=share)
    fields = {"band": t(band or ""), "inside": round(interval * 10), "months": backtest_months,
              "needed": MIN_BACKTEST_MONTHS}
    if backtest_months >= MIN_BACKTEST_MONTHS:
        return t("The range is set by how far the forecasts of your own past months missed (the backtest), rescaled "
                 "for each month ahead (never narrower further out), so that on simulated seasonal sales with {band} "
                 "of history {inside} actual months in 10 fell inside it.", **fields)
    if backtest_months == 0:
        return t("The range starts from the model's own and is rescaled for each month ahead (never narrower "
                 "further out), so that on simulated seasonal sales with {band} of history {inside} actual months "
                 "in 10 fell inside it. There is no backtest on your own months yet: its width comes from the "
                 "simulations alone.", **fields)
    return t("The range starts from the model's own and is rescaled for each month ahead (never narrower further "
             "out), so that on simulated seasonal sales with {band} of history {inside} actual months in 10 fell "
             "inside it. Your own backtest has only {months} months, too few to set it (it takes {needed}): its "
             "width comes from the simulations alone.", **fields)


def forecast_series(y: pd.Series, *, horizon: int = 6, interval: float = 0.8, folds: int = 3,
                    backtest_horizon: int = 3, random_state: int = 0) -> SeriesForecast:
    """Fit, backtest and forecast one monthly series with a range honest for its length of history.

    The model (:class:`MonthlyForecaster`) gives its own range; :func:`widen_by_horizon` rescales
    it month by month: by the series' own :func:`backtest_factor` times the shape measured for this
    length of history (:data:`BACKTEST_SHAPE`) when the backtest holds at least
    :data:`MIN_BACKTEST_MONTHS` months, else by the factors measured for this length of history
    (:data:`RANGE_FACTORS`); all bounds are clipped at 0 last.
    """
    model = MonthlyForecaster(horizon=horizon, interval=interval, random_state=random_state).fit(y)
    bt = backtest(y, model, folds=folds, horizon=backtest_horizon)
    raw = model.predict_unclipped()
    q = backtest_factor(bt, interval=interval) if len(bt) >= MIN_BACKTEST_MONTHS else None
    widened = widen_by_horizon(raw, n_months=model.n_months_, q=q)
    clipped = widened.assign(**{c: np.maximum(widened[c].to_numpy(), 0.0) for c in ("forecast", "lower", "upper")})
    band = history_band(model.n_months_)
    measured = band is not None and np.isclose(interval, CALIBRATED_INTERVAL)
    words = range_in_words(band, measured=measured, backtest_months=len(bt), interval=interval)
    return SeriesForecast(model=model, raw=raw, backtest=bt, forecast=clipped, q=q, band=band,
                          measured=bool(measured), message=words)


REVENUE_COLUMNS = ("revenue", "revenue_lower", "revenue_upper")
"""The money columns of :attr:`SalesForecast.table` (net revenue, in the store's currency)."""


@dataclass
class SalesForecast:
    """What :func:`forecast_sales` returns: history, forecasts, backtests and plain-language summary.

    ``ok``: there is a forecast; ``message``: plain sentences on which models were used and why, or
    why there is no forecast."""

    history: pd.DataFrame
    forecasts: dict[str, pd.DataFrame] = field(default_factory=dict)
    models: dict[str, MonthlyForecaster] = field(default_factory=dict)
    backtests: dict[str, pd.DataFrame] = field(default_factory=dict)
    series: dict[str, SeriesForecast] = field(default_factory=dict)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when at least one metric was forecast (else :attr:`message` says why not)."""
        return bool(self.forecasts)

    @property
    def backtested(self) -> bool:
        """True when at least one metric has a backtest (its MAPE and months are worth a table)."""
        return any(not bt.empty for bt in self.backtests.values())

    @property
    def table(self) -> pd.DataFrame:
        """Both forecasts side by side: ``month, revenue, revenue_lower, revenue_upper, orders, ...``
        (:data:`REVENUE_COLUMNS` in the store's currency); orders rounded to whole orders, the way a
        person counts them (the model's expected 381.65 orders is shown as 382)."""
        parts = []
        for metric, fc in self.forecasts.items():
            renamed = fc.set_index("month").rename(columns={"forecast": metric, "lower": f"{metric}_lower",
                                                            "upper": f"{metric}_upper"})
            parts.append(renamed.round(0) if metric == "orders" else renamed)
        return pd.concat(parts, axis=1).reset_index() if parts else pd.DataFrame(columns=["month"])

    def next_month(self, metric: str = "revenue") -> dict[str, Any]:
        """The first forecast month of ``metric``: ``{"month", "value", "lower", "upper", "label", "note"}``.

        ``note`` says which month, which model and the interval in words. Empty when there is no forecast.
        """
        fc = self.forecasts.get(metric)
        if fc is None or fc.empty:
            return {}
        first, model, one = fc.iloc[0], self.models[metric], self.series[metric]
        how_often = (t("{n} months in 10 land in such a range, as measured on simulated sales with as much history",
                       n=round(model.interval * 10)) if one.measured
                     else t("how often such a range holds is not measured for so short a history"))
        bounds = (t("{share} range {range} ({how_often})", share=f"{model.interval:.0%}",
                    range=span(f"{first['lower']:,.0f}", f"{first['upper']:,.0f}"), how_often=how_often)
                  if np.isfinite(first["upper"]) else t("no range"))
        words = t(METHOD_IN_WORDS[model.method_]) if model.method_ in METHOD_IN_WORDS else model.label_
        return {"month": f"{first['month']:%Y-%m}", "value": round(float(first["forecast"]), 2),
                "lower": float(first["lower"]),
                "upper": float(first["upper"]), "label": model.label_,
                "note": t("{month}, {method} ({label}); {bounds}", month=f"{first['month']:%Y-%m}", method=words,
                          label=model.label_, bounds=bounds)}


@memoized
def forecast_sales(
    db: Database,
    as_of: dt.date,
    *,
    horizon: int = 6,
    interval: float = 0.8,
    folds: int = 3,
    backtest_horizon: int = 3,
    random_state: int = 0,
) -> SalesForecast:
    """Forecast monthly net revenue and paid orders for ``horizon`` months after ``as_of``'s last complete month.

    Returns a :class:`SalesForecast`: ``history`` (:func:`monthly_history`), per metric the
    ``forecasts`` (``month, forecast, lower, upper``: the range of :func:`forecast_series`, rescaled
    month by month), fitted ``models``, ``backtests`` (:func:`backtest`), the whole
    :class:`SeriesForecast` per metric in ``series``, and a ``summary`` table (``metric, method,
    months_of_history, model_mape, seasonal_naive_mape, verdict, note``; MAPE in percent). An empty store gives empty tables,
    ``ok`` False and a ``message`` instead of an error. Memoized
    (:func:`~crm_helpers.store.queries.memoized`): the page and :func:`headline_figures` share one
    forecast, treat it as read-only.
    """
    if horizon < 1:
        raise ForecastError(f"forecast_horizon_months must be at least 1, not {horizon}")
    history = monthly_history(db, as_of)
    result = SalesForecast(history=history)
    if history.empty:
        result.message = "No paid orders up to the period's end: there is nothing to forecast yet."
        return result
    rows = []
    for metric, what in METRICS.items():
        y = history.set_index("month")[metric].astype(float)
        one = forecast_series(y, horizon=horizon, interval=interval, folds=folds, backtest_horizon=backtest_horizon,
                              random_state=random_state)
        model, bt = one.model, one.backtest
        model_err, base_err, verdict = backtest_verdict(bt, model.label_, what=what, fewest=model.refit_months)
        result.models[metric], result.backtests[metric], result.series[metric] = model, bt, one
        result.forecasts[metric] = one.forecast
        held, months = backtest_hits(bt, n_months=model.n_months_, q=one.q)
        if months:
            verdict += " " + t("Laid around the backtest's forecasts, the {share} range would have held {held} of its "
                               "{months} months.", share=f"{interval:.0%}", held=held, months=months)
        rows.append({"metric": metric, "method": model.label_, "months_of_history": model.n_months_,
                     "model_mape": model_err, "seasonal_naive_mape": base_err, "verdict": verdict,
                     "note": model.note_})
    result.summary = pd.DataFrame(rows)
    warned = warnings_in_words(sum(model.suppressed_warnings_ for model in result.models.values()))
    said = [*result.summary["note"], *(one.message for one in result.series.values()), warned]
    result.message = " ".join(part for part in dict.fromkeys(said) if part)
    return result


def warnings_in_words(count: int) -> str:
    """One sentence saying that statsmodels' optimiser warned ``count`` times in all (empty for 0)."""
    if not count:
        return ""
    return t("statsmodels' optimiser warned {count} times while fitting the forecasts (not shown).", count=count)


def headline_figures(db: Database, *, period: Period, previous: Period | None = None,
                     horizon: int = 6) -> list[Headline]:
    """The ``forecast_next_month_revenue`` headline: the first month's net revenue (store currency) of
    :func:`forecast_sales` as of ``period``'s last day with ``horizon`` months, its note naming the
    month, model and interval; None when there is no forecast. ``previous`` (default: the calendar
    month before ``period``) is not used: a forecast is shown without last month's."""
    nxt = forecast_sales(db, period.end, horizon=horizon).next_month("revenue")
    return [Headline("forecast_next_month_revenue", nxt.get("value"), "Forecast revenue next month",
                     unit=store_currency(db),
                     note=nxt.get("note", "no history to forecast from"))]
