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

The models themselves (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma) live in
:mod:`crm_helpers.models.btyd`, which never touches the store; they are re-exported here, so
``crm_helpers.analyses.clv.ParetoNBDModel`` works. This module turns the store's paid orders into the
models' input, picks the purchase model by how well it predicted a held-out window, and puts a
range on every value.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sqlite_utils import Database

# the models and their errors are re-exported, so crm_helpers.analyses.clv.ParetoNBDModel works (issue 17's split)
from crm_helpers.models.btyd import (
    # noqa: F401
    COMMON_DROPOUT_CV,
    GG_CORRELATION_LIMIT,
    ArrayLike,
    BetaGeoModel,
    ClvError,
    CommonDropoutWarning,
    GammaGammaAssumptionWarning,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    NegativeValueError,
    NoRepeatBuyersError,
    WEAK_PRIOR_SD,
    ParetoNBDModel,
    PurchaseModel,
    nonnegative_floats,
    shaped_like,
)
from crm_helpers.models.predictive import DEFAULT_DRAWS, FutureSampler, quantile_bounds
from crm_helpers.analyses import segmentation
from crm_helpers.store.queries import memoized, query_df, store_currency
from crm_helpers.store.periods import Period, same_month_last_year
from crm_helpers.i18n import t, tn
from crm_helpers.store.values import Action, Headline, money_span, money_whole, named_list
from crm_helpers.store.facts import iso, net_revenue_sql, next_day, on_or_before_sql, order_margin, paid

Freq = Literal["D", "W", "M"]
DAYS_PER_MONTH = 365.25 / 12
"""Average length of a month in days, used to turn a horizon in months into model periods."""

PERIODS_PER_MONTH: dict[str, float] = {"D": DAYS_PER_MONTH, "W": DAYS_PER_MONTH / 7, "M": 1.0}
"""Model periods per month for each ``freq`` (lifetimes uses the rounder 30 and 4.345)."""


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
    *,
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
# Customer lifetime value: the model-based one and the two simple formulas
# --------------------------------------------------------------------------------------------


def monthly_rate(annual_discount_rate: float) -> float:
    """The monthly rate equivalent to an annual one: (1 + d)^(1/12) − 1."""
    if annual_discount_rate <= -1:
        raise ClvError("the discount rate must be above -100%")
    return (1 + annual_discount_rate) ** (1 / 12) - 1


def customer_lifetime_value(
    transaction_model: PurchaseModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    expected_value: ArrayLike,
    *,
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
    value = nonnegative_floats(expected_value, "expected_value")
    purchases = np.asarray(transaction_model.discounted_expected_purchases(
        frequency, recency, T, months=horizon_months, periods_per_month=PERIODS_PER_MONTH[freq] / freq_multiplier,
        monthly_rate=monthly_rate(annual_discount_rate),
    ))
    if len(value) != len(purchases):
        raise ClvError("expected_value must have one value per customer")
    return shaped_like(margin * value * purchases, frequency, name="clv")


def constant_profit_clv(
    profit_per_year: ArrayLike | float, annual_discount_rate: float, *, years: int
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
    """Net revenue per customer and day up to ``as_of``.

    Columns: customer_id, order_date (datetime64), amount (sum of the day's paid orders, net
    of refunds), cost (sum of the known order costs, NaN when none is known), orders. Paid orders
    only: refunded and cancelled orders are not purchases; nor are orders in a currency without an
    exchange rate (their net revenue is unknown: see ``crm_helpers.store.queries.currency_note``). Sorted by
    customer and day (as stored, ISO text). The orders are read one row each and summed per day in
    pandas: SQLite's GROUP BY customer and day sorts the 1.2M orders of the scale store in a
    temporary B-tree, three times slower than reading them.
    """
    frame = query_df(
        db,
        f"SELECT customer_id, order_date, {net_revenue_sql()} AS amount, cost FROM orders "
        f"WHERE {paid()} AND {on_or_before_sql('order_date', '?')} AND {net_revenue_sql()} IS NOT NULL",
        params=[next_day(as_of)],
    )
    frame["amount"] = frame["amount"].astype(float)
    frame["cost"] = pd.to_numeric(frame["cost"], errors="coerce")
    grouped = frame.groupby(["customer_id", "order_date"], sort=True)
    days = pd.DataFrame({"amount": grouped["amount"].sum(), "cost": grouped["cost"].sum(min_count=1),
                         "orders": grouped.size()}).reset_index()
    days["order_date"] = pd.to_datetime(days["order_date"])
    return days


def margin_rate(db: Database, as_of: dt.date | str, *, margin: float) -> tuple[float, str]:
    """Gross margin share of net revenue (revenue minus the cost of the goods sold) and where it comes from.

    Measured as 1 − Σ cost ÷ Σ amount over the paid orders up to ``as_of`` that carry a cost,
    when those orders hold at least half of the revenue; otherwise ``margin`` (the owner's own
    gross margin, a share of revenue between 0 and 1).
    """
    if not 0 <= margin <= 1:
        raise ClvError("the profit margin is a share of revenue between 0 and 1, e.g. 0.3")
    total, with_cost, cost = db.execute(
        "SELECT sum(amount), sum(CASE WHEN cost IS NOT NULL THEN amount END), sum(cost) "
        f"FROM orders WHERE {paid()} AND {on_or_before_sql('order_date', '?')}", [next_day(as_of)],
    ).fetchone()
    if total and with_cost and with_cost >= 0.5 * total:
        rate = float(np.clip(1 - cost / with_cost, 0, 1))
        return rate, t("measured on the paid orders that carry a cost ({share} of revenue)",
                       share=f"{with_cost / total:.0%}")
    return float(margin), t("the margin parameter (orders carry no cost)")


def _buyer_group(frequency: pd.Series) -> pd.Series:
    purchases = frequency + 1
    groups = pd.cut(purchases, [0, 1, 3, 9, np.inf], labels=["1 purchase", "2–3 purchases", "4–9 purchases",
                                                             "10+ purchases"])
    return groups.astype(str)


# --------------------------------------------------------------------------------------------
# Choosing the purchase model by a holdout window
# --------------------------------------------------------------------------------------------


PURCHASE_MODELS: dict[str, type[PurchaseModel]] = {
    m.name: m for m in (BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel)}
"""The purchase models compared in the holdout check, by name, in the order the notebook shows them."""

SEASON_DAYS = 365
"""A holdout of this many days covers every season once."""


def _fit_purchase_model(name: str, penalizer_coef: float, frequency: ArrayLike, recency: ArrayLike,
                        T: ArrayLike, initial_params: ArrayLike | None = None) -> tuple[PurchaseModel, list[str]]:
    """Fit one purchase model, with the weak prior (:data:`~crm_helpers.models.btyd.WEAK_PRIOR_SD`) that keeps a
    thin book's parameters off the bounds; its warnings come back as plain sentences instead of being shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PURCHASE_MODELS[name](penalizer_coef, prior_sd=WEAK_PRIOR_SD).fit(frequency, recency, T,
                                                                                 initial_params=initial_params)
    return model, [f"{name}: {w.message}" for w in caught]


def _holdout_window(covered_days: int, covered_months: int, holdout_days: int | None) -> tuple[int, str]:
    """Length of the holdout window and, in plain words, how it was chosen.

    With two years of history or more (paid orders in 24 calendar months, the first one counted
    even when it started on the 3rd), the last 365 days are held out and the models learn from
    everything before (about a year or more): both windows hold every season, so a December peak
    or a quiet summer cannot flatter or spoil the check. With less, the last third of the history
    (at most 182 days) is held out, and the sentence says that it is not seasonally fair.
    """
    if holdout_days:
        return int(holdout_days), t("the last {days} days, as asked", days=int(holdout_days))
    if covered_months >= 24:
        return SEASON_DAYS, t("the last 12 months held out, the models fitted on the {days} days before: each "
                              "window covers every season, so the check is fair to seasons",
                              days=covered_days - SEASON_DAYS)
    short = min(182, covered_days // 3)
    return short, t("the last {days} days held out: with less than two years of history the windows cannot cover "
                    "whole years, so a busy or quiet season may flatter or spoil the check", days=short)


ORIGIN_STEP_DAYS = 91
"""The earlier holdout origins are a quarter apart: the last window ends at the as-of date, each
earlier one 91 days before the next."""

MAX_ORIGINS = 3
"""At most this many holdout origins (fits of every model at each)."""

MIN_CALIBRATION_DAYS = 180
"""An earlier origin is used only when the history before it spans at least this many days."""


@dataclass
class HoldoutValidation:
    """Each purchase model's predictions for held-out windows against what happened (see :func:`holdout_validation`).

    ``aggregate``: one row per model (index ``model``) with, for the latest window: customers,
    actual_repeat_purchases, predicted_repeat_purchases, predicted_without_history, error_pct
    (predicted vs actual, %), mean_absolute_error_per_customer, calibration_log_likelihood; and
    over every origin: holdout_log_likelihood (the log-probability the model gave to what each
    customer did in the window, given their history before it, per customer, averaged over the
    origins: higher is better), origins_won (at how many origins it scored best).
    ``by_frequency``: per number of repeat purchases before the latest window, customers, the mean
    actual purchases in it and each model's mean prediction. ``per_customer``: the same per customer
    (index customer_id): frequency_cal, recency_cal, T_cal (days), actual and each model's prediction.
    ``chosen``: the model with the highest holdout log-likelihood; ``margin_z``: how far ahead of the
    runner-up it is, in standard errors of the customers' paired score differences (a Vuong-style
    statistic: below 1 a near coin toss, above 2.5 clear); ``runner_up`` that model. ``errors``:
    each model's relative error on the total at every origin (0.06 = 6 % too many), latest first.
    ``origins``: the calibration ends, latest first. ``window``: how the window was chosen, in plain
    words. ``models``: the models fitted on the latest calibration period, by name. ``message``
    says why there is no comparison ("" when there is one, and then ``ok``).
    """

    calibration_end: dt.date | None
    holdout_days: int
    window: str
    by_frequency: pd.DataFrame
    aggregate: pd.DataFrame
    per_customer: pd.DataFrame = field(default_factory=pd.DataFrame)
    chosen: str = ""
    message: str = ""
    models: dict[str, PurchaseModel] = field(default_factory=dict)
    errors: dict[str, list[float]] = field(default_factory=dict)
    origins: list[dt.date] = field(default_factory=list)
    runner_up: str = ""
    margin_z: float = math.nan

    @property
    def ok(self) -> bool:
        return not self.message

    def error(self, model: str | None = None) -> float:
        """Relative error of a model's total prediction in the latest window (0.06 = 6% too many; the chosen model by default)."""
        row = self.aggregate.loc[model or self.chosen]
        return float(row["predicted_repeat_purchases"] / row["actual_repeat_purchases"] - 1)

    def table(self) -> pd.DataFrame:
        """The comparison for the owner: one row per model, rounded, in plain column names."""
        a = self.aggregate
        return pd.DataFrame({
            "repeat purchases predicted": a["predicted_repeat_purchases"].round(0).astype(int),
            "repeat purchases that happened": a["actual_repeat_purchases"].round(0).astype(int),
            "error on the total (%)": a["error_pct"].round(1),
            "mean miss per customer (purchases)": a["mean_absolute_error_per_customer"].round(2),
            "score on the held-out months (per customer, higher is better)": a["holdout_log_likelihood"].round(4),
            f"best at (of {len(self.origins)} checks)": a["origins_won"].astype(int),
            "used": ["yes, best score" if m == self.chosen else "" for m in a.index],
        }, index=a.index)

    def long(self) -> pd.DataFrame:
        """``by_frequency`` in long form for a grouped bar plot: repeat_purchases_in_calibration, kind, mean."""
        frame = self.by_frequency.reset_index()
        kinds = ["actual", *self.aggregate.index]
        return frame.melt(id_vars="repeat_purchases_in_calibration", value_vars=kinds,
                          var_name="kind", value_name="mean_purchases_in_holdout")


def holdout_validation(
    db: Database, as_of: dt.date | str, *, holdout_days: int | None = None, penalizer_coef: float = 0.0,
    max_group: int = 7,
) -> HoldoutValidation:
    """Fit every purchase model on the orders before a holdout window and compare their predictions with what happened.

    The window is the last 365 days when the paid orders cover two years or more, else the last
    third of the history (at most 182 days); ``holdout_days`` overrides it (see
    :func:`_holdout_window`). The same window is also held out from up to two earlier origins, a
    quarter apart (:data:`ORIGIN_STEP_DAYS`), where at least :data:`MIN_CALIBRATION_DAYS` of
    history lie before it. Only customers who bought before a window are scored (lifetimes'
    ``calibration_and_holdout_data``). The model whose predictions gave the highest probability to
    what customers then did (the holdout log-likelihood per customer, over every origin) is
    ``chosen``: a proper score of the whole prediction per customer, which on simulated books
    picks the true model far more often than the error on one total does. ``predicted_without_history``
    is the total each model expects from customers of the same ages without looking at their
    history (the unconditional E[X(T + d)] − E[X(T)]); it shows how much the histories tell.
    """
    as_of = dt.date.fromisoformat(iso(as_of))
    return holdout_on_purchase_days(paid_purchase_days(db, as_of), as_of, holdout_days=holdout_days,
                                    penalizer_coef=penalizer_coef, max_group=max_group)


def holdout_on_purchase_days(days: pd.DataFrame, as_of: dt.date, *, holdout_days: int | None = None,
                             penalizer_coef: float = 0.0, max_group: int = 7) -> HoldoutValidation:
    """:func:`holdout_validation` on purchase days already read: ``days`` as :func:`paid_purchase_days`
    gives them (customer_id, order_date as datetime64, amount), from the store or from any transaction log."""
    empty = HoldoutValidation(None, 0, "", pd.DataFrame(), pd.DataFrame())
    if days.empty:
        empty.message = f"no paid orders up to {as_of}"
        return empty
    first = days["order_date"].min()
    covered = (pd.Timestamp(as_of) - first).days + 1
    months = (as_of.year - first.year) * 12 + as_of.month - first.month + 1
    holdout, window = _holdout_window(covered, months, holdout_days)
    if holdout < 14 or covered - holdout < 60:
        empty.message = f"the history ({covered} days) is too short to hold out a validation window"
        return empty
    ends = [as_of - dt.timedelta(days=k * ORIGIN_STEP_DAYS) for k in range(MAX_ORIGINS)]
    ends = [ends[0]] + [e for e in ends[1:] if covered - holdout - (as_of - e).days >= MIN_CALIBRATION_DAYS]
    checks = [_one_origin(days, end, holdout, penalizer_coef) for end in ends]
    latest = checks[0]
    if latest is None or isinstance(latest, str):
        empty.message = latest or "nobody bought in the holdout window: there is nothing to compare with"
        return empty
    checks = [c for c in checks if not (c is None or isinstance(c, str))]
    split, models, predicted = latest["split"], latest["models"], latest["predicted"]
    actual = split["frequency_holdout"].to_numpy()
    age, duration = split["T_cal"].to_numpy(), float(split["duration_holdout"].iloc[0])
    group = np.minimum(split["frequency_cal"].to_numpy(), max_group).astype(int)
    frame = pd.DataFrame({"group": group, "label": [f"{g}+" if g == max_group else str(g) for g in group],
                          "frequency_cal": split["frequency_cal"], "recency_cal": split["recency_cal"],
                          "T_cal": split["T_cal"], "actual": actual}, index=split.index)
    fitted = [name for name in PURCHASE_MODELS if name in models and all(name in c["models"] for c in checks)]
    scores = {name: np.concatenate([c["scores"][name] for c in checks]) for name in fitted}
    won = dict.fromkeys(fitted, 0)
    for c in checks:
        won[max(fitted, key=lambda n: c["scores"][n].sum())] += 1
    rows = []
    for name in fitted:
        model = models[name]
        frame[name] = predicted[name]
        rows.append({
            "model": name, "customers": len(frame), "actual_repeat_purchases": float(actual.sum()),
            "predicted_repeat_purchases": float(predicted[name].sum()),
            "predicted_without_history": float(np.sum(model.expected_purchases_new_customer(age + duration)
                                                      - model.expected_purchases_new_customer(age))),
            "error_pct": 100 * (predicted[name].sum() - actual.sum()) / actual.sum(),
            "mean_absolute_error_per_customer": float(np.mean(np.abs(predicted[name] - actual))),
            "calibration_log_likelihood": model.log_likelihood_,
            "holdout_log_likelihood": float(np.mean([c["scores"][name].mean() for c in checks])),
            "origins_won": won[name],
        })
    aggregate = pd.DataFrame(rows).set_index("model")
    by_frequency = frame.groupby(["group", "label"]).agg(
        customers=("actual", "size"), actual=("actual", "mean"), **{name: (name, "mean") for name in fitted})
    by_frequency = by_frequency.reset_index("group", drop=True)
    by_frequency.index.name = "repeat_purchases_in_calibration"
    ranked = sorted(fitted, key=lambda n: -aggregate.loc[n, "holdout_log_likelihood"])
    chosen, runner_up, z = ranked[0], (ranked[1] if len(ranked) > 1 else ""), math.nan
    if runner_up:
        diff = scores[chosen] - scores[runner_up]
        spread = diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else 0.0
        z = float(diff.mean() / spread) if spread > 0 else math.inf
    errors = {name: [c["errors"][name] for c in checks] for name in fitted}
    return HoldoutValidation(latest["cal_end"], holdout, window, by_frequency, aggregate,
                             frame.drop(columns=["group", "label"]), chosen, models=models, errors=errors,
                             origins=[c["cal_end"] for c in checks], runner_up=runner_up, margin_z=z)


def _one_origin(days: pd.DataFrame, end: dt.date, holdout: int, penalizer_coef: float) -> dict | str | None:
    """Every purchase model fitted on the history up to ``end`` − ``holdout`` days and scored on the
    window after it: the split summary, the fitted models, their predicted purchases and relative
    errors on the total, and each customer's holdout log-likelihood (their log-likelihood on the
    history up to ``end`` minus that on the history before the window). A sentence when no model
    could be fitted; None when nobody bought in the window."""
    cal_end = end - dt.timedelta(days=holdout)
    split = summary_from_transactions(days, "customer_id", datetime_col="order_date", observation_period_end=end,
                                      calibration_period_end=cal_end)
    actual = split["frequency_holdout"].to_numpy()
    if not actual.sum():
        return None
    full = summary_from_transactions(days, "customer_id", datetime_col="order_date",
                                     observation_period_end=end).reindex(split.index)
    duration = float(split["duration_holdout"].iloc[0])
    cal = (split["frequency_cal"], split["recency_cal"], split["T_cal"])
    models, predicted, errors, scores, failures = {}, {}, {}, {}, []
    for name in PURCHASE_MODELS:
        try:
            model, _ = _fit_purchase_model(name, penalizer_coef, *cal)
        except ClvError as exc:
            failures.append(f"{name}: {exc}")
            continue
        models[name] = model
        predicted[name] = np.asarray(model.expected_purchases(duration, *cal))
        errors[name] = float(predicted[name].sum() / actual.sum() - 1)
        scores[name] = (model.log_likelihood_per_customer(full["frequency"], full["recency"], full["T"])
                        - model.log_likelihood_per_customer(*cal))
    if not models:
        return "no purchase model could be fitted on the calibration period: " + "; ".join(failures)
    return {"cal_end": cal_end, "split": split, "models": models, "predicted": predicted, "errors": errors,
            "scores": scores}


# --------------------------------------------------------------------------------------------
# A range on every value
# --------------------------------------------------------------------------------------------


LIKELY_SHARE = 0.8
"""Share of the simulated futures a "likely" range holds (from their 10th to their 90th percentile)."""


def model_error_sd(errors: ArrayLike) -> float:
    """The model's own error on the log scale, from its relative errors on held-out totals
    (0.06 = 6 % too many): √(mean ln(1 + e)²), each error counted as one draw of a model error
    ln(1 + e) ~ N(0, sd²). It widens a range on both sides (:class:`FutureSampler`'s ``model_sd``);
    0 without errors."""
    e = np.asarray(errors, dtype=float)
    e = e[np.isfinite(e) & (e > -1)]
    return float(np.sqrt(np.mean(np.log1p(e) ** 2))) if len(e) else 0.0


SIMULATED_CELLS = 20_000_000
"""Customers × simulated futures of the pack's CLV ranges: 1,000 futures up to 20,000 customers,
fewer above (at least :data:`MIN_FUTURES`), so a large book's page stays quick."""

MIN_FUTURES = 200
"""The fewest futures behind a range (its 10th and 90th percentiles known to about ±2 points)."""


def clv_sampler(
    transaction_model: PurchaseModel,
    spend_model: GammaGammaModel | None,
    *,
    summary: pd.DataFrame,
    value: ArrayLike,
    horizon_months: int,
    annual_discount_rate: float,
    margin: float,
    model_sd: float = 0.0,
    random_state: int = 0,
) -> FutureSampler:
    """Simulated futures of every customer's discounted profit over the horizon (see
    :meth:`~crm_helpers.models.btyd.PurchaseModel.future_sampler`): their repeat purchases over
    ``horizon_months`` months and the spend of those purchases (Gamma-Gamma given their past spend;
    without a spend model, ``value`` per purchase), times ``margin`` and their discount (their
    discounted expected purchases ÷ their expected purchases, as in :func:`customer_lifetime_value`).
    ``summary`` has frequency, recency, T (days) and monetary_value per customer. In the money of
    the values.
    """
    args = (summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["T"].to_numpy())
    horizon = horizon_months * DAYS_PER_MONTH
    expected = np.asarray(transaction_model.expected_purchases(horizon, *args))
    discounted = np.asarray(transaction_model.discounted_expected_purchases(
        *args, months=horizon_months, periods_per_month=DAYS_PER_MONTH, monthly_rate=monthly_rate(annual_discount_rate)))
    scale = margin * np.divide(discounted, expected, out=np.zeros_like(expected), where=expected > 0)
    if spend_model is None:
        scale = scale * np.asarray(value, dtype=float)
    futures = int(np.clip(SIMULATED_CELLS // max(len(summary), 1), MIN_FUTURES, DEFAULT_DRAWS))
    return transaction_model.future_sampler(horizon, *args, n_draws=futures, spend_model=spend_model,
                                            monetary_value=summary["monetary_value"].to_numpy(), scale=scale,
                                            model_sd=model_sd, random_state=random_state)


# --------------------------------------------------------------------------------------------
# The analysis the notebook shows
# --------------------------------------------------------------------------------------------


@dataclass
class ClvAnalysis:
    """What :func:`analyse_customers` found; ``message`` says why models are missing ("" when fine).

    ``customers``: one row per customer who bought up to ``as_of``, indexed by customer_id, with
    name, acquisition_channel, buyer_group, first_purchase, last_purchase, revenue_to_date (net,
    paid orders), frequency / recency / T (days) / monetary_value (lifetimes' conventions),
    p_alive, expected_purchases (in the next ``horizon_months``), expected_average_value (per
    purchase, gross), clv (discounted expected profit over the horizon) with clv_low and
    clv_high (the range the customer's realised profit falls in 8 times in 10: their 10th and
    90th simulated percentiles, often 0 for a customer who may well not buy), transparent_clv
    (the articles' formula on the last 12 months' profit), probably_lost. Money in ``currency``.
    ``model_name``: the purchase model used, chosen by ``validation`` (the holdout check) unless
    asked for by name; ``model_error`` its relative holdout error and ``model_sd`` the model's own
    error on the log scale (:func:`model_error_sd`), which widens every range on both sides.
    ``sampler``: the simulated futures (:func:`clv_sampler`), kept so that any group of customers
    gets its range (:meth:`group_range`).
    """

    as_of: dt.date
    horizon_months: int
    customers: pd.DataFrame
    transaction_model: PurchaseModel | None
    spend_model: GammaGammaModel | None
    margin_rate: float
    margin_source: str
    currency: str
    message: str = ""
    notes: list[str] = field(default_factory=list)
    model_name: str = ""
    validation: HoldoutValidation | None = None
    total_clv_low: float = math.nan
    total_clv_high: float = math.nan
    model_error: float = 0.0
    model_sd: float = 0.0
    sampler: FutureSampler | None = None

    @property
    def ok(self) -> bool:
        """True when the models were fitted and the CLV columns hold values."""
        return not self.message

    @property
    def total_clv(self) -> float:
        """Sum of the customers' discounted expected profit over the horizon."""
        return float(self.customers["clv"].sum()) if self.ok else math.nan

    def group_range(self, members: np.ndarray, *, weights: np.ndarray | None = None) -> tuple[float, float]:
        """Likely range of the summed CLV of the customers marked in ``members`` (a boolean mask
        over ``customers``; each CLV times its ``weights`` entry, one per customer, when given): the
        10th and 90th percentiles of their simulated total (:attr:`sampler`)."""
        if not self.ok or self.sampler is None:
            return math.nan, math.nan
        weights = None if weights is None else np.asarray(weights, dtype=float)
        low, high = quantile_bounds(self.sampler.totals(np.asarray(members, dtype=bool), weights=weights),
                                    LIKELY_SHARE)
        return float(low), float(high)

    def group_ranges(self, labels: ArrayLike) -> dict[object, tuple[float, float]]:
        """:meth:`group_range` of every group of customers at once (``labels``: one per customer), in one pass."""
        if not self.ok or self.sampler is None:
            return {}
        return {group: tuple(float(v) for v in quantile_bounds(totals, LIKELY_SHARE))
                for group, totals in self.sampler.totals_by(np.asarray(labels)).items()}

    def likely_total(self) -> str:
        """The total's likely range in words, e.g. "likely 250,000 to 360,000 EUR" ("" when there is none)."""
        if not self.ok or not math.isfinite(self.total_clv_low):
            return ""
        return t("likely {range}", range=money_span(self.total_clv_low, self.total_clv_high, currency=self.currency))

    @property
    def n_probably_lost(self) -> int:
        """Repeat buyers whose probability of still being a customer is below the threshold."""
        return int(self.customers["probably_lost"].sum()) if self.ok else 0

    def parameters(self) -> pd.DataFrame:
        """Fitted parameters with standard errors, one row per parameter and model."""
        rows = []
        for model, label in ((self.transaction_model, t("{model} (purchases; times in days)", model=self.model_name)),
                             (self.spend_model, t("Gamma-Gamma (spend per purchase)"))):
            if model is not None:
                rows.append(pd.DataFrame({"model": label, "parameter": model.params_.index,
                                          "estimate": model.params_.to_numpy(),
                                          "standard_error": model.standard_errors_.to_numpy()}))
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
            columns=["model", "parameter", "estimate", "standard_error"])

    def top_by_clv(self, n: int = 15) -> pd.DataFrame:
        """The ``n`` customers with the highest CLV, with its likely range."""
        cols = ["name", "acquisition_channel", "buyer_group", "last_purchase", "revenue_to_date", "p_alive",
                "expected_purchases", "expected_average_value", "clv", "clv_low", "clv_high"]
        return self.customers.nlargest(n, "clv")[cols]

    def probably_lost(self, n: int = 20) -> pd.DataFrame:
        """Repeat buyers who are probably gone, the biggest past spenders first."""
        cols = ["name", "buyer_group", "first_purchase", "last_purchase", "revenue_to_date", "p_alive"]
        lost = self.customers[self.customers["probably_lost"]]
        return lost.sort_values(["revenue_to_date", "p_alive"], ascending=[False, True]).head(n)[cols]


PROBABLY_LOST_MEANING = ("Repeat buyers whose chance of still being a customer (P(alive), from the purchase model) is "
                         "below 50 %; one-time buyers are not judged, since a single order shows no buying rhythm.")
"""Customers probably lost, the middle step of the ladder at risk → probably lost → lost, in one plain
sentence as the index, page 04 and the glossary print it."""


def headline_figures(db: Database, *, period: Period, previous: Period | None = None, horizon_months: int = 12,
                     annual_discount_rate: float = 0.1, margin: float = 0.3) -> list[Headline]:
    """The expected customer value (in the store's currency, discounted profit over the next
    ``horizon_months`` months) and the customers probably lost (a count) as of ``period``'s last day,
    beside the same as of ``previous``'s last day (default: the calendar month before ``period``)
    and as of the same month last year's last day (when the store holds that month,
    :func:`~crm_helpers.store.periods.same_month_last_year`), both valued with the purchase model
    chosen now (no second holdout check), as headlines for the report index. The settings are
    :func:`analyse_customers`'; a total of a failed analysis is None (shown as "not available").
    Model estimates without a noise estimate of their move, never below zero."""
    settings = dict(horizon_months=horizon_months, annual_discount_rate=annual_discount_rate, margin=margin)
    analysis = analyse_customers(db, period.end, **settings)
    model = analysis.model_name or "auto"
    before = analyse_customers(db, (previous or period.previous_month()).end, **settings, model=model)
    year = same_month_last_year(db, period)
    last_year = None if year is None else analyse_customers(db, year.end, **settings, model=model)
    return [
        Headline("total_expected_clv", analysis.total_clv, "Expected customer value", unit=analysis.currency,
                 note=t("{likely}; discounted profit, next {months} months ({model})",
                        likely=analysis.likely_total(), months=analysis.horizon_months, model=analysis.model_name), previous=before.total_clv,
                 year_ago=None if last_year is None else last_year.total_clv, lowest=0.0),
        Headline("customers_probably_lost", analysis.n_probably_lost if analysis.ok else None,
                 "Customers probably lost",
                 note=PROBABLY_LOST_MEANING,
                 previous=before.n_probably_lost if before.ok else None,
                 year_ago=last_year.n_probably_lost if last_year is not None and last_year.ok else None,
                 lowest=0.0),
    ]


@dataclass(frozen=True)
class WinBackGroup:
    """The customers a win-back campaign is for (:func:`win_back_group`): ``lost`` (rows of
    :attr:`ClvAnalysis.customers`), ``apart`` (how many probably lost are left to the at-risk action)
    and the ``analysis`` they come from. ``ok``: anyone to win back; ``message``: why not, or how many."""

    analysis: ClvAnalysis
    lost: pd.DataFrame
    apart: int

    @property
    def ok(self) -> bool:
        """True when at least one customer is in the group."""
        return not self.lost.empty

    @property
    def message(self) -> str:
        """The group's size, or why it is empty, in a plain sentence."""
        if not self.analysis.ok:
            return f"Customer value is not available: {self.analysis.message}."
        if self.lost.empty:
            return "No customer is probably lost: there is no one to win back."
        return f"{len(self.lost):,} repeat buyers have probably left."


def win_back_group(db: Database, as_of: dt.date | str, *, horizon_months: int = 12,
                   annual_discount_rate: float = 0.1, margin: float = 0.3) -> WinBackGroup:
    """Who a win-back is for as of ``as_of`` (settings as :func:`analyse_customers`'): the repeat
    buyers probably lost, less those who newly fell into At Risk or Can't Lose Them since the end of
    the month before (:func:`crm_helpers.analyses.segmentation.movers`), who are the at-risk action's.
    The index's win-back action and the planner (page 07) value this one group."""
    day = dt.date.fromisoformat(iso(as_of))
    analysis = analyse_customers(db, day, horizon_months=horizon_months, annual_discount_rate=annual_discount_rate,
                                 margin=margin)
    if not analysis.ok or not analysis.n_probably_lost:
        return WinBackGroup(analysis, pd.DataFrame(), 0)
    month_before = day.replace(day=1) - dt.timedelta(days=1)
    moved = segmentation.movers(db, segmentation.month_key(month_before),
                                to_month=segmentation.month_key(day))["customer_id"]
    newly = analysis.customers.index.isin(moved)
    lost = analysis.customers[analysis.customers["probably_lost"] & ~newly]
    return WinBackGroup(analysis, lost, int((analysis.customers["probably_lost"] & newly).sum()))


def actions(db: Database, *, period: Period, horizon_months: int = 12, annual_discount_rate: float = 0.1,
            margin: float = 0.3) -> list[Action]:
    """Win back the :func:`win_back_group` as of ``period``'s last day (settings as
    :func:`analyse_customers`'; money in the store's currency), the three biggest past spenders by name.

    Money at stake = Σ value × chance: each customer's value if still a customer (their CLV divided by
    their P(alive): the discounted profit of the horizon they would bring) times the chance that they
    have left (1 − P(alive)); the range is the 10th to 90th percentile of the same sum over the
    simulated futures (:meth:`ClvAnalysis.group_range`), not a sum of each customer's own range.
    """
    group = win_back_group(db, period.end, horizon_months=horizon_months, annual_discount_rate=annual_discount_rate,
                           margin=margin)
    if not group.ok:
        return []
    lost, apart = group.lost, group.apart
    scale = (1 - lost["p_alive"]) / lost["p_alive"].clip(lower=1e-3)
    analysis = group.analysis
    members = analysis.customers.index.isin(lost.index)
    weights = ((1 - analysis.customers["p_alive"]) / analysis.customers["p_alive"].clip(lower=1e-3)).to_numpy()
    low, high = analysis.group_range(members, weights=np.where(members, weights, 0.0))
    currency = group.analysis.currency
    biggest = lost.sort_values(["revenue_to_date", "p_alive"], ascending=[False, True]).head(3)
    names = [t("{name} ({money} spent)", name=name or index, money=money_whole(spent, currency))
             for index, name, spent in zip(biggest.index, biggest["name"], biggest["revenue_to_date"])]
    listed = named_list(names, more=len(lost) - len(names))
    sentence = (t("Win back the {count} repeat buyers who have probably left (and {apart} newly at risk, listed "
                  "apart), the biggest past spenders first: {names}; their chance of still being a customer is "
                  "below 50 %.", count=f"{len(lost):,}", apart=f"{apart:,}", names=listed) if apart else
                t("Win back the {count} repeat buyers who have probably left, the biggest past spenders first: "
                  "{names}; their chance of still being a customer is below 50 %.", count=f"{len(lost):,}",
                  names=listed))
    return [Action(
        "win back probably lost",
        sentence,
        float((lost["clv"] * scale).sum()), currency=currency, low=low, high=high, page="04_clv_romi",
        section="Customers probably lost")]


def _empty_analysis(as_of: dt.date, horizon: int, rate: float, source: str, currency: str, message: str) -> ClvAnalysis:
    return ClvAnalysis(as_of, horizon, pd.DataFrame(), None, None, rate, source, currency, message)


def _choose_model(model: str, validation: HoldoutValidation | None) -> tuple[str, float, float, str]:
    """The purchase model to use, its latest holdout error, its own error on the log scale over every
    origin (:func:`model_error_sd`, which widens its ranges), and a note ("" when none)."""
    if model != "auto":
        if model not in PURCHASE_MODELS:
            raise ClvError(f"unknown purchase model {model!r}; choose from {', '.join(PURCHASE_MODELS)} or 'auto'")
        known = validation is not None and validation.ok and model in validation.aggregate.index
        return (model, validation.error(model) if known else 0.0,
                model_error_sd(validation.errors[model]) if known else 0.0, "")
    if validation is not None and validation.ok:
        return validation.chosen, validation.error(), model_error_sd(validation.errors[validation.chosen]), ""
    reason = validation.message if validation is not None else "not run"
    return "BG/NBD", 0.0, 0.0, (f"no holdout check ({reason}): BG/NBD is used, and the ranges allow for the "
                                "parameters' uncertainty and chance only, not for how far the model itself may be off")


THIN_SHARE = 0.5
"""A parameter whose posterior spread (log scale) is above this share of the prior's is held by the prior more than by the data."""


def thin_data_notes(model: PurchaseModel) -> list[str]:
    """Plain sentences naming the parameters the book's history can hardly tell (their spread on the log
    scale above :data:`THIN_SHARE` of the weak prior's): the prior holds them, and the ranges are wide."""
    theta = model.params_.to_numpy(dtype=float)
    sd = np.sqrt(np.diag(np.asarray(model.covariance_, dtype=float))) / theta
    thin = [name for name, value in zip(model.param_names, sd) if not value <= THIN_SHARE * WEAK_PRIOR_SD]
    if not thin:
        return []
    return [t("{model}: the history says little about {parameters} (too few customers who came back or left): those "
              "values come mostly from the model's weak starting assumption, so the predictions are rough and their "
              "ranges are wide on purpose", model=model.name, parameters=", ".join(thin))]


@memoized
def analyse_customers(
    db: Database,
    as_of: dt.date | str,
    *,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.1,
    margin: float = 0.3,
    p_alive_threshold: float = 0.5,
    penalizer_coef: float = 0.0,
    model: str = "auto",
) -> ClvAnalysis:
    """Fit a purchase model and Gamma-Gamma on the paid orders up to ``as_of`` and value every customer.

    Times in days (``freq="D"``). The purchase model is the one with the best holdout score
    (:func:`holdout_validation`, kept in ``validation``) unless ``model`` names one of
    :data:`PURCHASE_MODELS`; every model is fitted with a weak prior, so a thin book's parameters
    stay off the bounds. Customer value is the discounted expected *profit*: expected net
    revenue × the gross margin share (:func:`margin_rate`: measured from order costs when orders
    carry them, else ``margin``), with a likely range (8 times in 10) of what will happen: simulated
    futures that hold the parameters' uncertainty, each customer's own randomness and the model's
    own error measured at the holdout origins (:func:`clv_sampler`). A repeat
    buyer is "probably lost" when P(alive) is below ``p_alive_threshold``. Never raises on a
    thin store: the reason models could not be fitted is in ``message``. Memoized
    (:func:`~crm_helpers.store.queries.memoized`): the page and :func:`headline_figures` share one
    analysis, treat it as read-only.
    """
    as_of = dt.date.fromisoformat(iso(as_of))
    if not 0 < p_alive_threshold < 1:
        raise ClvError("the P(alive) threshold must be between 0 and 1")
    rate, source = margin_rate(db, as_of, margin=margin)
    currency = store_currency(db)
    days = paid_purchase_days(db, as_of)
    if days.empty:
        return _empty_analysis(as_of, horizon_months, rate, source, currency,
                               f"no paid orders up to {as_of}: nothing to value yet")
    summary = summary_from_transactions(days, "customer_id", datetime_col="order_date", monetary_value_col="amount",
                                        observation_period_end=as_of)
    people = query_df(db, "SELECT customer_id, name, acquisition_channel FROM customers").set_index("customer_id")
    grouped = days.groupby("customer_id")
    one_year_ago = pd.Timestamp(as_of) - pd.Timedelta(days=365)
    recent = days[days["order_date"] > one_year_ago]
    recent_profit = order_margin(recent, rate)
    customers = summary.join(people, how="left").assign(
        buyer_group=_buyer_group(summary["frequency"]),
        first_purchase=grouped["order_date"].min().dt.date,
        last_purchase=grouped["order_date"].max().dt.date,
        revenue_to_date=grouped["amount"].sum(),
        transparent_clv=constant_profit_clv(
            recent_profit.groupby(recent["customer_id"]).sum().reindex(summary.index, fill_value=0.0).to_numpy(),
            annual_discount_rate, years=max(1, int(horizon_months) // 12)),
    )
    customers["acquisition_channel"] = customers["acquisition_channel"].fillna("unknown")
    analysis = ClvAnalysis(as_of, horizon_months, customers, None, None, rate, source, currency)
    repeat = int((summary["frequency"] > 0).sum())
    if repeat < 30:
        analysis.notes.append(f"only {repeat} customers bought more than once: the estimates are rough")
    analysis.validation = (holdout_on_purchase_days(days, as_of, penalizer_coef=penalizer_coef) if model == "auto"
                           else None)
    name, model_error, model_sd, note = _choose_model(model, analysis.validation)
    analysis.model_name, analysis.model_error, analysis.model_sd = name, model_error, model_sd
    analysis.notes += [note] if note else []
    calibrated = analysis.validation.models.get(name) if analysis.validation is not None else None
    try:  # started from the fit on the calibration period, which is close: fewer steps
        tm, caught = _fit_purchase_model(name, penalizer_coef, summary["frequency"], summary["recency"], summary["T"],
                                         None if calibrated is None else calibrated.params_)
    except ClvError as exc:
        analysis.message = f"the purchase model cannot be fitted: {exc}"
        return analysis
    analysis.notes += caught + thin_data_notes(tm)
    spend = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    with warnings.catch_warnings(record=True) as caught_spend:
        warnings.simplefilter("always")
        try:
            ggm: GammaGammaModel | None = GammaGammaModel(penalizer_coef, prior_sd=WEAK_PRIOR_SD).fit(
                spend["frequency"], spend["monetary_value"])
            value = ggm.expected_average_value(summary["frequency"], summary["monetary_value"])
        except ClvError as exc:
            ggm = None
            mean_spend = float((spend["monetary_value"] * spend["frequency"]).sum() / max(spend["frequency"].sum(), 1))
            value = pd.Series(mean_spend, index=summary.index)
            analysis.notes.append(t("spend model not fitted ({reason}); every customer is valued at the mean repeat "
                                    "purchase, {spend}", reason=exc, spend=f"{mean_spend:,.2f}"))
    analysis.notes += [str(w.message) for w in caught_spend]
    analysis.transaction_model, analysis.spend_model = tm, ggm
    args = (summary["frequency"], summary["recency"], summary["T"])
    customers["p_alive"] = tm.p_alive(*args)
    customers["expected_purchases"] = tm.expected_purchases(horizon_months * DAYS_PER_MONTH, *args)
    customers["expected_average_value"] = value
    customers["clv"] = customer_lifetime_value(tm, *args, value, horizon_months=horizon_months,
                                               annual_discount_rate=annual_discount_rate, margin=rate)
    analysis.sampler = clv_sampler(tm, ggm, summary=summary, value=value, horizon_months=horizon_months,
                                   annual_discount_rate=annual_discount_rate, margin=rate, model_sd=analysis.model_sd)
    customers["clv_low"], customers["clv_high"], totals = analysis.sampler.per_customer(LIKELY_SHARE)
    analysis.total_clv_low, analysis.total_clv_high = (float(v) for v in quantile_bounds(totals, LIKELY_SHARE))
    customers["probably_lost"] = (customers["frequency"] > 0) & (customers["p_alive"] < p_alive_threshold)
    return analysis


GROUP_MONEY_COLUMNS = ["total_clv", "total_clv_low", "total_clv_high", "mean_clv", "median_clv"]
"""The columns of :func:`value_by_group` in money (the analysis' currency), whose headings name the currency."""


def value_by_group(analysis: ClvAnalysis, by: str) -> pd.DataFrame:
    """CLV per group of the analysis' customers (a column of ``customers``, e.g. by="acquisition_channel").

    Columns: customers, total_clv with its likely range total_clv_low and total_clv_high (as the
    total's: :meth:`ClvAnalysis.group_range`), mean_clv, median_clv, share_of_clv (%),
    mean_p_alive, probably_lost; sorted by total CLV. Money in the analysis' currency. A group of
    one-time buyers only has both left blank (missing): the purchase model cannot judge a buyer with
    a single order (it gives each a chance of 1 of still being a customer), so it says nothing there.
    """
    customers = analysis.customers
    grouped = customers.groupby(by, observed=True)
    ranges = analysis.group_ranges(customers[by].to_numpy())
    ranges = {group: ranges.get(group, (math.nan, math.nan)) for group in grouped.groups}
    out = pd.DataFrame({
        "customers": grouped.size(),
        "total_clv": grouped["clv"].sum(),
        "total_clv_low": pd.Series({group: low for group, (low, _) in ranges.items()}),
        "total_clv_high": pd.Series({group: high for group, (_, high) in ranges.items()}),
        "mean_clv": grouped["clv"].mean(),
        "median_clv": grouped["clv"].median(),
        "mean_p_alive": grouped["p_alive"].mean(),
        "probably_lost": grouped["probably_lost"].sum().astype("Int64"),
    })
    judged = customers["frequency"].gt(0).groupby(customers[by], observed=True).any()
    out.loc[~judged.reindex(out.index, fill_value=False), ["mean_p_alive", "probably_lost"]] = pd.NA
    total = out["total_clv"].sum()
    out.insert(6, "share_of_clv", 100 * out["total_clv"] / total if total > 0 else 0.0)
    return out.rename_axis(by).sort_values("total_clv", ascending=False)


def subscription_estimate(
    db: Database, as_of: dt.date | str, *, margin: float, months: int = 12, active_days: int = 90
) -> pd.DataFrame:
    """The subscription-style CLV from the store: average monthly margin per active customer ÷ monthly churn.

    A customer is "active" at a month's end when they have a paid order in the ``active_days``
    days before it; the monthly churn rate is the share of customers active at the end of one
    month who are no longer active at the end of the next, averaged over the last ``months``
    months; the monthly margin per active customer is the month's net revenue × ``margin`` (the
    gross margin share, e.g. :attr:`ClvAnalysis.margin_rate`) ÷ active customers, averaged too. One row: months, mean_active_customers,
    monthly_margin_per_customer, monthly_churn_rate, subscription_clv (missing when churn is 0),
    note. For a shop (not a subscription) "active" and "churn" are definitions, not facts.
    """
    end = pd.Timestamp(iso(as_of))
    ends = [((end + pd.offsets.MonthEnd(0)) - pd.offsets.MonthEnd(k)).date() for k in range(months, -1, -1)]
    ends[-1] = min(ends[-1], end.date())
    since = [day - dt.timedelta(days=active_days) for day in ends]
    orders = query_df(  # one read of the paid orders of every window; dates compared as stored (ISO text)
        db, f"SELECT customer_id, order_date, {net_revenue_sql()} AS revenue FROM orders WHERE {paid()} "
        f"AND order_date >= ? AND {on_or_before_sql('order_date', '?')}",
        params=[next_day(since[0]), next_day(ends[-1])],
    )
    day, dates = pd.factorize(orders["order_date"], sort=True)
    customer, customers = pd.factorize(orders["customer_id"])
    revenue = pd.to_numeric(orders["revenue"]).to_numpy(dtype=float)

    def placed(first: dt.date, last: dt.date) -> np.ndarray:
        """The orders placed from the start of ``first`` to the end of ``last`` (``< next_day(last)``)."""
        return (day >= dates.searchsorted(first.isoformat())) & (day < dates.searchsorted(next_day(last)))

    active, margins = [], []
    for k, month_end in enumerate(ends):
        buyers = np.zeros(len(customers), dtype=bool)
        buyers[customer[placed(since[k] + dt.timedelta(days=1), month_end)]] = True
        active.append(buyers)
        if k:
            month = placed(ends[k - 1] + dt.timedelta(days=1), month_end)
            total = float(np.nansum(revenue[month]))
            margins.append(total * margin / buyers.sum() if buyers.any() else 0.0)
    churn = [(prev & ~cur).sum() / prev.sum() for prev, cur in zip(active, active[1:]) if prev.any()]
    row: dict[str, object] = {
        "months": months, "mean_active_customers": float(np.mean([a.sum() for a in active[1:]])),
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
        {"method": t("{model} + Gamma-Gamma, discounted, next {months} months", model=analysis.model_name,
                     months=analysis.horizon_months),
         "mean_per_customer": float(c["clv"].mean()), "total": float(c["clv"].sum()),
         "assumes": "customers buy at their own pace until they silently leave; learned from the whole book"},
        {"method": tn("Transparent formula Σ profit/(1+d)^t, {n} year",
                      "Transparent formula Σ profit/(1+d)^t, {n} years", n=years),
         "mean_per_customer": float(c["transparent_clv"].mean()), "total": float(c["transparent_clv"].sum()),
         "assumes": "each customer repeats last year's profit every year and never leaves"},
        {"method": "Subscription style: monthly margin ÷ monthly churn",
         "mean_per_customer": subscription["subscription_clv"].iloc[0],
         "total": pd.NA,
         "assumes": "a constant churn rate for every customer; undiscounted; per active customer"},
    ]).astype({"mean_per_customer": "Float64", "total": "Float64"})


def frequency_recency_matrix(
    model: PurchaseModel, T: float, *, max_frequency: int = 10, n_recency: int = 12, t: float | None = None
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
