"""Customer satisfaction: CSAT, NPS, the articles' satisfaction formulas, key drivers and follow-up.

Definitions (also in ``docs/satisfaction.md``):

- **CSAT** = share of answers scoring 4 or 5 on the 1–5 overall question, in % (the industry
  convention). The **mean overall score** (1–5) sits beside it, because some tools call the mean
  "CSAT".
- **NPS** = % promoters (9–10) − % detractors (0–6) among the answers to the 0–10 question;
  passives (7–8) count in the denominator. Range −100…100. A percentile bootstrap gives its
  confidence interval (resampling the month's answers, seeded).
- The **articles' formulas**, implemented as written and labeled as such:

  * weighted satisfaction ``S = (1/n) Σ wᵢ sᵢ`` over the item scores (quality, delivery, price,
    service; n = number of items answered). With weights summing to 1 this is *not* on the 1–5
    scale (four items of 5 with weights 0.25 give 1.25), so the **weighted satisfaction index**
    ``Σ wᵢ sᵢ / Σ wᵢ`` (the normalized weighted mean, 1–5) is shown beside it and is the one
    recorded as a headline;
  * satisfaction = positive feedback / all feedback (an answer is positive when its overall
    score is 4–5, or, for an answer without an overall score, its NPS is 9–10; every answer counts
    as feedback);
  * loyalty = repeat purchases / all purchases (paid orders in the period; a purchase is a repeat
    when the customer has an earlier paid order; refunded and cancelled orders are not purchases);
  * experience score = functional + service + emotional satisfaction, with our mapping:
    functional = share of 4–5 item answers on quality and delivery (what was bought, and that it
    arrived), service = share of 4–5 answers on service, emotional = share of promoters (NPS
    9–10). Each part is 0–1, the score 0–3 (the article's example: 0.5 + 0.5 + 0.5 = 1.5); the mean
    of the three parts (0–1) is shown beside it.

Every period figure is an SQL aggregate, so a monthly trend never loads the feedback table.
A month counts answers by ``submitted_at``; "as of" is always a date given by the caller.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.errors import CrmError
from crm_helpers.store.queries import memoized, query_df, store_currency
from crm_helpers.i18n import t
from crm_helpers.store.values import Action, Headline, money_whole, named_list, span
from crm_helpers.store.facts import LOYALTY_LABEL, iso, loyalty, net_revenue_sql, next_day, on_or_before_sql, paid
from crm_helpers.store.periods import Period, month_start, same_month_last_year

ITEMS: tuple[str, ...] = ("quality", "delivery", "price", "service")
"""The item scores of the survey (columns ``score_<item>``, 1–5)."""

PROMOTER_MIN, DETRACTOR_MAX = 9, 6
"""NPS: 9–10 promoters, 7–8 passives, 0–6 detractors."""

CSAT_POSITIVE_MIN = 4
"""CSAT: answers of 4 or 5 on the 1–5 scale count as satisfied."""

MIN_RESPONSES = 30
"""Fewer answers than this in a month make its scores a small sample: shown, but marked and never called a change."""


class SatisfactionError(CrmError, ValueError):
    """Bad input to a satisfaction analysis (weights, parameters)."""


class NotEnoughResponses(SatisfactionError):
    """Too few answers (or comments) for an analysis to say anything."""


@dataclass(frozen=True)
class ItemWeights:
    """The owner's weights of the four item scores in the weighted satisfaction formulas.

    Weights must be non-negative and not all zero; they need not sum to 1 (the weighted index
    divides by their sum, the articles' ``S`` does not).
    """

    quality: float = 0.25
    delivery: float = 0.25
    price: float = 0.25
    service: float = 0.25

    def __post_init__(self) -> None:
        values = self.as_dict()
        bad = [k for k, v in values.items() if not np.isfinite(v) or v < 0]
        if bad:
            raise SatisfactionError(f"item weights must be non-negative numbers; check {', '.join(bad)}")
        if sum(values.values()) <= 0:
            raise SatisfactionError("at least one item weight must be above zero")

    def as_dict(self) -> dict[str, float]:
        return {item: float(getattr(self, item)) for item in ITEMS}

    @property
    def label(self) -> str:
        """``"quality 0.15, delivery 0.55, price 0.1, service 0.2"``."""
        return ", ".join(f"{k} {v:g}" for k, v in self.as_dict().items())


# -- the measures on counts (hand-checkable) ----------------------------------------------------


_UNHAPPY_LEAVE_SQL = f"""
WITH events AS (
  SELECT customer_id, substr(submitted_at, 1, 10) AS day FROM feedback
  WHERE nps IS NOT NULL AND nps <= {DETRACTOR_MAX} AND customer_id IS NOT NULL AND submitted_at < :last_next
  UNION ALL
  SELECT customer_id, substr(opened_at, 1, 10) AS day FROM tickets
  WHERE category = 'complaint' AND customer_id IS NOT NULL AND opened_at < :last_next
), counted AS (
  SELECT e.customer_id, e.day,
         (SELECT COUNT(*) FROM orders o WHERE o.customer_id = e.customer_id AND {paid("o")}
          AND o.order_date < e.day) AS orders_before,
         NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = e.customer_id AND {paid("o")}
                     AND o.order_date > e.day AND o.order_date <= date(e.day, '+' || :horizon || ' days')) AS left_
  FROM events e
)
SELECT orders_before, COUNT(*) AS events, SUM(left_) AS left_ FROM counted WHERE orders_before > 0
GROUP BY orders_before
"""

MIN_UNHAPPY_EVENTS = 20
"""Fewer past unhappy events than this in a band of buyers and :func:`unhappy_leave_rates` measures nothing for it."""

ORDER_BANDS = (1, 2, 5)
"""The lower ends of the bands of buyers by paid orders so far (1; 2–4; 5 or more) within which
:func:`unhappy_leave_rates` measures how often an unhappy customer stopped buying."""


def order_band(orders: pd.Series) -> pd.Series:
    """The band (:data:`ORDER_BANDS`, its lower end) of each count of paid orders; empty below 1."""
    return pd.cut(orders.astype("float64"), bins=[*ORDER_BANDS, np.inf], right=False,
                  labels=list(ORDER_BANDS)).astype("float64").astype("Int64")


def unhappy_leave_rates(db: Database, as_of: dt.date, *, horizon_days: int = 90) -> pd.DataFrame:
    """How often an unhappy buyer stopped buying, measured in this store up to ``as_of``, per band of
    paid orders before (:data:`ORDER_BANDS`).

    The events are every detractor answer (NPS 0–:data:`DETRACTOR_MAX`)
    and complaint ticket of a customer who had a paid order before that day, on a day whose next
    ``horizon_days`` days ended by ``as_of`` (so the outcome is known); ``rate`` (0–1) is the share of
    them with no paid order in those days (the churn model's outcome), empty for a band with fewer
    than :data:`MIN_UNHAPPY_EVENTS` events. Columns: band, events, rate. The churn model does not
    see answers or tickets: the call list takes this rate as the chance of leaving of a person with
    a recent detractor answer or open complaint where it is higher than the model's.
    """
    last = as_of - dt.timedelta(days=horizon_days)
    counts = query_df(db, _UNHAPPY_LEAVE_SQL, params={"last_next": next_day(last), "horizon": horizon_days})
    counts = counts.assign(band=order_band(counts["orders_before"]))
    bands = counts.groupby("band")[["events", "left_"]].sum().reindex(list(ORDER_BANDS), fill_value=0)
    rate = (bands["left_"].astype("float64") / bands["events"].clip(lower=1)).where(bands["events"] >= MIN_UNHAPPY_EVENTS)
    return pd.DataFrame({"band": list(ORDER_BANDS), "events": bands["events"].astype(int).to_numpy(),
                         "rate": rate.astype("float64").to_numpy()})


def unhappy_leave_chance(db: Database, as_of: dt.date, *, orders: pd.Series, horizon_days: int = 90) -> pd.Series:
    """The chance (0–1) that an unhappy buyer with ``orders`` paid orders so far (a Series by
    customer_id) buys nothing in the next ``horizon_days`` days, as this store measured it
    (:func:`unhappy_leave_rates`, their band's rate; where a band measured nothing, the rate over all
    bands; empty where there are too few events overall)."""
    rates = unhappy_leave_rates(db, as_of, horizon_days=horizon_days)
    measured = rates.dropna(subset=["rate"])
    pooled = ((measured["rate"] * measured["events"]).sum() / measured["events"].sum()) if len(measured) else np.nan
    by_band = rates.set_index("band")["rate"].fillna(pooled)
    return order_band(orders).map(by_band).astype("float64")


def csat_share(positive: float, answered: float) -> float:
    """CSAT in %: ``100 · positive / answered`` (answers of 4–5 among answers); NaN if none."""
    return 100.0 * positive / answered if answered else float("nan")


def nps_score(promoters: float, passives: float, *, detractors: float) -> float:
    """NPS = % promoters − % detractors (passives in the denominator), −100…100; NaN if none."""
    n = promoters + passives + detractors
    return 100.0 * (promoters - detractors) / n if n else float("nan")


def nps_counts(scores: pd.Series) -> tuple[int, int, int]:
    """``(promoters, passives, detractors)`` of a Series of 0–10 answers (missing ones ignored)."""
    s = pd.to_numeric(scores, errors="coerce").dropna()
    return int((s >= PROMOTER_MIN).sum()), int(s.between(DETRACTOR_MAX + 1, PROMOTER_MIN - 1).sum()), int(
        (s <= DETRACTOR_MAX).sum()
    )


def weighted_satisfaction(scores: dict[str, float], weights: ItemWeights) -> tuple[float, float]:
    """One answer's ``(articles' S, weighted index)`` from its item scores (missing items skipped).

    Articles' S = (1/n) Σ wᵢ sᵢ with n the number of items answered (as written in the article; not on
    the 1–5 scale). Weighted index = Σ wᵢ sᵢ / Σ wᵢ over the answered items (1–5).
    """
    w = weights.as_dict()
    answered = {k: float(v) for k, v in scores.items() if k in w and v is not None and np.isfinite(v)}
    if not answered:
        return float("nan"), float("nan")
    total = sum(w[k] * v for k, v in answered.items())
    weight_sum = sum(w[k] for k in answered)
    return total / len(answered), (total / weight_sum if weight_sum else float("nan"))


def experience_score(functional: float, service: float, *, emotional: float) -> float:
    """The article's experience score = functional + service + emotional satisfaction (each 0–1)."""
    return functional + service + emotional


def nps_bootstrap(
    promoters: int, passives: int, *, detractors: int, n_boot: int = 2000, random_state: int = 0
) -> np.ndarray:
    """``n_boot`` bootstrap NPS values, resampling the answers (multinomial on the three counts)."""
    n = promoters + passives + detractors
    if n == 0:
        return np.full(n_boot, np.nan)
    rng = np.random.default_rng(random_state)
    draws = rng.multinomial(n, np.array([promoters, passives, detractors]) / n, size=n_boot)
    return 100.0 * (draws[:, 0] - draws[:, 2]) / n


def nps_ci(
    promoters: int, passives: int, *, detractors: int, level: float = 0.95, n_boot: int = 2000,
    random_state: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the NPS; ``(nan, nan)`` without answers.

    With very few answers the interval is degenerate (one answer gives a zero-width interval):
    such months are flagged as small samples, never trusted.
    """
    boot = nps_bootstrap(promoters, passives, detractors=detractors, n_boot=n_boot, random_state=random_state)
    if np.isnan(boot).all():
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return float(low), float(high)


# -- reading the store -----------------------------------------------------------------------------






def lookback_start(as_of: dt.date, *, months: int) -> dt.date:
    """First day of the window of ``months`` calendar months that ends with ``as_of``'s month."""
    if months < 1:
        raise SatisfactionError("a look-back window needs at least one month")
    first = month_start(as_of)
    for _ in range(months - 1):
        first = month_start(first - dt.timedelta(days=1))
    return first


_AGGREGATE_SQL = """
WITH answers AS (
  SELECT {group} AS bucket, csat, nps, score_quality AS q, score_delivery AS d, score_price AS p,
         score_service AS s,
         (score_quality IS NOT NULL) + (score_delivery IS NOT NULL) + (score_price IS NOT NULL)
           + (score_service IS NOT NULL) AS items_n,
         COALESCE(:wq * score_quality, 0) + COALESCE(:wd * score_delivery, 0)
           + COALESCE(:wp * score_price, 0) + COALESCE(:ws * score_service, 0) AS weighted_sum,
         :wq * (score_quality IS NOT NULL) + :wd * (score_delivery IS NOT NULL)
           + :wp * (score_price IS NOT NULL) + :ws * (score_service IS NOT NULL) AS weight_sum
  FROM feedback WHERE submitted_at >= :start AND submitted_at < :end_next
)
SELECT bucket,
  COUNT(*) AS responses,
  COUNT(csat) AS csat_answers,
  COALESCE(SUM(csat >= 4), 0) AS csat_positive,
  SUM(csat) AS csat_sum,
  COUNT(nps) AS nps_answers,
  COALESCE(SUM(nps >= {promoter}), 0) AS promoters,
  COALESCE(SUM(nps > {detractor} AND nps < {promoter}), 0) AS passives,
  COALESCE(SUM(nps <= {detractor}), 0) AS detractors,
  SUM(items_n > 0) AS item_answers,
  SUM(CASE WHEN items_n > 0 THEN weighted_sum * 1.0 / items_n END) AS seeds_s_sum,
  COUNT(CASE WHEN weight_sum > 0 THEN 1 END) AS index_answers,
  SUM(CASE WHEN weight_sum > 0 THEN weighted_sum * 1.0 / weight_sum END) AS index_sum,
  COUNT(q) + COUNT(d) AS functional_answers,
  COALESCE(SUM(q >= 4), 0) + COALESCE(SUM(d >= 4), 0) AS functional_positive,
  COUNT(s) AS service_answers,
  COALESCE(SUM(s >= 4), 0) AS service_positive,
  SUM(CASE WHEN csat IS NOT NULL THEN csat >= 4 ELSE COALESCE(nps >= {promoter}, 0) END) AS positive_feedback
FROM answers GROUP BY bucket ORDER BY bucket
"""

_COUNT_COLUMNS = [
    "responses", "csat_answers", "csat_positive", "csat_sum", "nps_answers", "promoters", "passives",
    "detractors", "item_answers", "seeds_s_sum", "index_answers", "index_sum", "functional_answers",
    "functional_positive", "service_answers", "service_positive", "positive_feedback",
]


def _aggregate(
    db: Database, start: dt.date | str, end: dt.date | str, weights: ItemWeights, by_month: bool
) -> pd.DataFrame:
    w = weights.as_dict()
    sql = _AGGREGATE_SQL.format(group="substr(submitted_at, 1, 7)" if by_month else "'all'",
                                promoter=PROMOTER_MIN, detractor=DETRACTOR_MAX)
    params = {"wq": w["quality"], "wd": w["delivery"], "wp": w["price"], "ws": w["service"],
              "start": iso(start), "end_next": next_day(end)}
    frame = query_df(db, sql, params=params)
    if frame.empty:
        frame = pd.DataFrame([{"bucket": "all", **{c: 0 for c in _COUNT_COLUMNS}}]) if not by_month else frame
    frame[_COUNT_COLUMNS] = frame[_COUNT_COLUMNS].astype(float).fillna(0.0)
    return frame


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).astype(float)


def _measures(counts: pd.DataFrame, min_responses: int) -> pd.DataFrame:
    """Add the measures to a frame of counts (one row per month or period)."""
    out = counts.copy()
    out["csat_pct"] = 100 * _ratio(out["csat_positive"], out["csat_answers"])
    out["csat_mean"] = _ratio(out["csat_sum"], out["csat_answers"])
    out["nps"] = 100 * _ratio(out["promoters"] - out["detractors"], out["nps_answers"])
    out["seeds_s"] = _ratio(out["seeds_s_sum"], out["item_answers"])
    out["weighted_index"] = _ratio(out["index_sum"], out["index_answers"])
    out["seeds_satisfaction"] = _ratio(out["positive_feedback"], out["responses"])
    out["functional"] = _ratio(out["functional_positive"], out["functional_answers"])
    out["service"] = _ratio(out["service_positive"], out["service_answers"])
    out["emotional"] = _ratio(out["promoters"], out["nps_answers"])
    out["experience_score"] = experience_score(out["functional"], out["service"], emotional=out["emotional"])
    out["experience_mean"] = out["experience_score"] / 3
    out["small_sample"] = out["responses"] < min_responses
    return out


def _with_nps_ci(frame: pd.DataFrame, n_boot: int, random_state: int) -> pd.DataFrame:
    cis = [
        nps_ci(int(r.promoters), int(r.passives), detractors=int(r.detractors), n_boot=n_boot,
               random_state=random_state)
        for r in frame[["promoters", "passives", "detractors"]].itertuples()
    ]
    frame["nps_ci_low"] = [c[0] for c in cis]
    frame["nps_ci_high"] = [c[1] for c in cis]
    return frame


@memoized
def period_scores(
    db: Database, period: Period, *, weights: ItemWeights, min_responses: int = MIN_RESPONSES, n_boot: int = 2000,
    random_state: int = 0,
) -> pd.Series:
    """Every measure for one period (answers with ``submitted_at`` in the period).

    Counts (responses, csat_answers, promoters, passives, detractors, ...), CSAT ``csat_pct`` (%),
    ``csat_mean`` (1–5), ``nps`` (−100…100) with ``nps_ci_low``/``nps_ci_high``, the articles'
    ``seeds_s`` and the ``weighted_index`` (1–5), ``seeds_satisfaction`` (0–1), ``loyalty`` (0–1,
    paid orders), ``functional``/``service``/``emotional`` (0–1) and ``experience_score`` (0–3),
    ``experience_mean`` (0–1), ``small_sample`` (fewer than ``min_responses`` answers), and the
    period's ``start``, ``end``, ``label``. A period without answers gives counts of 0 and NaN
    measures, not an error. Memoized (:func:`~crm_helpers.store.queries.memoized`): the row is shared
    with :func:`headline_figures`, treat it as read-only.
    """
    frame = _with_nps_ci(_measures(_aggregate(db, period.start, period.end, weights, False), min_responses),
                         n_boot, random_state)
    row = frame.iloc[0].drop("bucket")
    for key, value in loyalty(db, period.start, end=period.end).items():
        row[key] = value
    row["start"], row["end"], row["label"] = period.start, period.end, period.label
    return row


def monthly_trend(
    db: Database, as_of: dt.date, *, weights: ItemWeights, months: int = 12, min_responses: int = MIN_RESPONSES,
    n_boot: int = 2000, random_state: int = 0,
) -> pd.DataFrame:
    """One row per calendar month of the ``months`` months ending with ``as_of``'s month.

    Columns: month (YYYY-MM), responses, csat_pct, csat_mean, nps, nps_ci_low, nps_ci_high,
    promoters, passives, detractors, weighted_index, article_s (the articles' S), small_sample. Months without answers
    are kept, with 0 responses and blank measures (flagged small). Answers after ``as_of`` are
    ignored.
    """
    start = lookback_start(as_of, months=months)
    counts = _aggregate(db, start, as_of, weights, True).set_index("bucket")
    labels = [f"{p.year:04d}-{p.month:02d}" for p in pd.period_range(start, as_of, freq="M")]
    counts = counts.reindex(labels).fillna(0.0).rename_axis("bucket").reset_index()
    frame = _with_nps_ci(_measures(counts, min_responses), n_boot, random_state)
    frame = frame.rename(columns={"bucket": "month"})
    return frame[["month", "responses", "csat_pct", "csat_mean", "nps", "nps_ci_low", "nps_ci_high",
                  "promoters", "passives", "detractors", "weighted_index", "seeds_s", "small_sample"]].rename(
        columns={"seeds_s": "article_s"})


# -- month-over-month change -----------------------------------------------------------------------

@memoized
def period_change(db: Database, period: Period, *, previous: Period | None = None,
                  weights: ItemWeights = ItemWeights(), min_responses: int = MIN_RESPONSES,
                  random_state: int = 0) -> pd.DataFrame:
    """:func:`compare_periods` of ``period``'s :func:`period_scores` against ``previous``'s (default:
    the calendar month before ``period``): whether CSAT and NPS changed, in points.

    The page and the index's headlines (:func:`headline_figures`) both show it; memoized
    (:func:`~crm_helpers.store.queries.memoized`), so its bootstrap runs once: treat the frame as read-only.
    """
    scores = {"weights": weights, "min_responses": min_responses}
    return compare_periods(period_scores(db, period, **scores),
                           period_scores(db, previous or period.previous_month(), **scores), random_state=random_state)


def compare_periods(
    current: pd.Series, previous: pd.Series, *, level: float = 0.95, n_boot: int = 2000, random_state: int = 0,
) -> pd.DataFrame:
    """Whether CSAT and NPS changed between two periods (rows of :func:`period_scores`).

    CSAT: two-proportion z-test (statsmodels ``proportions_ztest``) with a Newcombe interval of
    the difference in points. NPS: percentile bootstrap of the difference, resampling each period's
    answers independently; p-value = twice the smaller tail share of the differences at 0.
    ``significant`` is None when a period has no answers, and a small sample (fewer than the
    ``min_responses`` used for the scores) is named in ``verdict``. Changes are in points.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    alpha = 1 - level
    rows: list[dict[str, Any]] = []
    x1, n1 = int(current["csat_positive"]), int(current["csat_answers"])
    x0, n0 = int(previous["csat_positive"]), int(previous["csat_answers"])
    row: dict[str, Any] = {"measure": "CSAT (% answering 4–5)", "this_period": current["csat_pct"],
                           "previous_period": previous["csat_pct"], "answers": n1, "answers_prev": n0,
                           "test": "two-proportion z-test"}
    if n1 and n0:
        row["change"] = current["csat_pct"] - previous["csat_pct"]
        if (x1 + x0) in (0, n1 + n0):  # everybody (or nobody) satisfied in both: no variation to test
            row.update(ci_low=0.0, ci_high=0.0, p_value=1.0)
        else:
            _, p = proportions_ztest([x1, x0], [n1, n0])
            low, high = confint_proportions_2indep(x1, n1, x0, n0, compare="diff", alpha=alpha)
            row.update(ci_low=100 * low, ci_high=100 * high, p_value=float(p))
    rows.append(row)

    counts1 = {k: int(current[k]) for k in ("promoters", "passives", "detractors")}
    counts0 = {k: int(previous[k]) for k in ("promoters", "passives", "detractors")}
    row = {"measure": "NPS", "this_period": current["nps"], "previous_period": previous["nps"],
           "answers": sum(counts1.values()), "answers_prev": sum(counts0.values()), "test": "bootstrap of the difference"}
    if sum(counts1.values()) and sum(counts0.values()):
        diff = (nps_bootstrap(**counts1, n_boot=n_boot, random_state=random_state)
                - nps_bootstrap(**counts0, n_boot=n_boot, random_state=random_state + 1))
        low, high = np.percentile(diff, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        p = min(1.0, 2 * min(float((diff <= 0).mean()), float((diff >= 0).mean())))
        row.update(change=current["nps"] - previous["nps"], ci_low=float(low), ci_high=float(high), p_value=p)
    rows.append(row)

    frame = pd.DataFrame(rows, columns=["measure", "this_period", "previous_period", "change", "ci_low",
                                        "ci_high", "p_value", "answers", "answers_prev", "test"])
    tested = frame["p_value"].notna()
    frame["significant"] = np.where(
        tested, (frame["ci_low"] > 0) | (frame["ci_high"] < 0), None
    )
    small = bool(current["small_sample"]) or bool(previous["small_sample"])
    frame["verdict"] = [
        _verdict(t, bool(s) if t else False, small, level, int(a), int(b))
        for t, s, a, b in zip(tested, frame["significant"], frame["answers"], frame["answers_prev"])
    ]
    return frame


def _verdict(tested: bool, significant: bool, small: bool, level: float, n1: int, n0: int) -> str:
    if not tested:
        return t("not tested: no answers this period") if n1 == 0 else t("not tested: no answers the previous period")
    text = t("changed ({level} interval excludes 0)", level=f"{level:.0%}") if significant \
        else t("no clear change (could be chance)")
    return text + (t("; small sample, read with care") if small else "")


# -- presentation tables -----------------------------------------------------------------------------


def format_measure(value: Any, kind: str) -> str:
    """A measure as the pages write it: ``kind`` "pct" (12.5%), "share_pct" (a 0–1 share as 84.7 %, like
    the other pages' rates), "nps" (+12), "count" (1,234), else two decimals; a missing value is the
    pages' dash "–"."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if kind == "pct":
        return f"{value:.1f}%"
    if kind == "share_pct":
        return f"{100 * value:.1f} %"
    if kind == "nps":
        return f"{value:+.0f}"
    if kind == "count":
        return f"{value:,.0f}"
    if kind == "share":
        return f"{value:.2f}"
    return f"{value:.2f}"


def _change(now: Any, prev: Any, kind: str) -> str:
    if any(v is None or (isinstance(v, float) and not np.isfinite(v)) for v in (now, prev)):
        return "–"
    diff = float(now) - float(prev)
    if kind == "pct":
        return f"{diff:+.1f} pts"
    if kind == "share_pct":
        return f"{100 * diff:+.1f} pts"
    if kind in ("nps", "count"):
        return f"{diff:+.0f}"
    return f"{diff:+.2f}"


_SCORECARD = [
    ("responses", "Responses", "answers submitted in the period", "count"),
    ("csat_pct", "CSAT", "share of overall answers scoring 4–5 (1–5 scale)", "pct"),
    ("csat_mean", "Mean overall score", "mean of the 1–5 overall answers (some tools call this CSAT)", "score"),
    ("nps", "NPS", "% promoters (9–10) − % detractors (0–6), passives in the denominator; −100…100", "nps"),
    ("promoters", "Promoters", "answers of 9–10", "count"),
    ("passives", "Passives", "answers of 7–8", "count"),
    ("detractors", "Detractors", "answers of 0–6", "count"),
    ("weighted_index", "Weighted satisfaction index", "Σ wᵢsᵢ / Σ wᵢ over the item scores, 1–5", "score"),
]


def scorecard(current: pd.Series, previous: pd.Series) -> pd.DataFrame:
    """The standard measures of two periods side by side, each with its definition (text table)."""
    rows = [
        {"measure": name, "definition": definition, "this period": format_measure(current[key], kind),
         "previous period": format_measure(previous[key], kind),
         "change": _change(current[key], previous[key], kind)}
        for key, name, definition, kind in _SCORECARD
    ]
    rows.insert(4, {"measure": "NPS 95% interval", "definition": "percentile bootstrap of the period's answers",
                    "this period": nps_interval(current), "previous period": nps_interval(previous), "change": ""})
    return pd.DataFrame(rows)


def nps_interval(row: pd.Series) -> str:
    """The NPS 95% interval of a :func:`period_scores` row, "-12 to +8", or "–" when there is none."""
    low, high = row["nps_ci_low"], row["nps_ci_high"]
    return span(format_measure(low, 'nps'), format_measure(high, 'nps')) if np.isfinite(low) else "–"


def article_formulas(current: pd.Series, previous: pd.Series, *, weights: ItemWeights) -> pd.DataFrame:
    """The articles' formulas for two periods, each labeled with its formula and what it means."""
    rows = [
        ("seeds_s", "Article's weighted satisfaction S",
         t("(1/n) Σ wᵢsᵢ, n = items answered; weights {weights}. Naive: with weights summing to 1 it is not on "
           "the 1–5 scale", weights=weights.label), "score"),
        ("weighted_index", "Weighted satisfaction index (sound)",
         "Σ wᵢsᵢ / Σ wᵢ: the normalized weighted mean, 1–5", "score"),
        ("seeds_satisfaction", "Article's satisfaction formula",
         "positive feedback / all feedback (positive: overall 4–5, or NPS 9–10 when no overall score), 0–1",
         "share"),
        ("loyalty", LOYALTY_LABEL,
         "repeat purchases / all purchases (paid orders in the period; repeat = the customer bought before), in %",
         "share_pct"),
        ("functional", "Functional satisfaction",
         "share of quality and delivery answers scoring 4–5, 0–1", "share"),
        ("service", "Service satisfaction", "share of service answers scoring 4–5, 0–1", "share"),
        ("emotional", "Emotional satisfaction", "share of promoters (NPS 9–10), 0–1", "share"),
        ("experience_score", "Article's experience score", "functional + service + emotional, 0–3", "share"),
        ("experience_mean", "Experience score as a mean", "(functional + service + emotional) / 3, 0–1", "share"),
    ]
    return pd.DataFrame([
        {"measure": name, "formula": formula, "this period": format_measure(current[key], kind),
         "previous period": format_measure(previous[key], kind),
         "change": _change(current[key], previous[key], kind)}
        for key, name, formula, kind in rows
    ])


def headline_figures(db: Database, *, period: Period, previous: Period | None = None,
                     weights: ItemWeights = ItemWeights(), min_responses: int = MIN_RESPONSES) -> list[Headline]:
    """NPS (−100…100), CSAT (% answering 4–5) and the weighted satisfaction index (1–5) of the answers
    in ``period`` beside those in ``previous`` (default: the calendar month before ``period``), as
    headlines for the report index; ``weights`` and ``min_responses`` as in :func:`period_scores`.

    Higher is better for all three. NPS and CSAT carry their 95 % intervals (NPS: the bootstrap of
    :func:`period_scores`; CSAT: Wilson) and the interval of their change (:func:`compare_periods`
    of the two periods, :func:`period_change`, in points), so the index does not call chance a change.
    Each also carries the same month last year when the store holds it
    (:func:`~crm_helpers.store.periods.same_month_last_year`), NPS and CSAT with the interval of
    that change too. Estimates from a sample of answers, each kept within its scale.
    """
    current = period_scores(db, period, weights=weights, min_responses=min_responses)
    previous_row = period_scores(db, previous or period.previous_month(), weights=weights, min_responses=min_responses)
    keys = {"NPS": "nps", "CSAT (% answering 4–5)": "csat"}
    change = period_change(db, period, previous=previous, weights=weights, min_responses=min_responses)
    moves = {keys[r.measure]: (r.ci_low, r.ci_high) for r in change.itertuples() if r.measure in keys}
    year = same_month_last_year(db, period)
    year_row = year_moves = None
    if year is not None:
        year_row = period_scores(db, year, weights=weights, min_responses=min_responses)
        year_change = period_change(db, period, previous=year, weights=weights, min_responses=min_responses)
        year_moves = {keys[r.measure]: (r.ci_low, r.ci_high) for r in year_change.itertuples() if r.measure in keys}

    def last_year(column: str, digits: int) -> float | None:
        return None if year_row is None else _rounded(year_row[column], digits)

    def year_move(key: str) -> tuple[float, float] | None:
        return None if year_moves is None else year_moves.get(key)

    small = bool(current["small_sample"] and current["responses"])

    def answers(count: Any) -> str:
        return (t("{count} responses; small sample", count=int(count)) if small
                else t("{count} responses", count=int(count)))

    return [
        Headline("nps", _rounded(current["nps"], 1), "NPS", change="points", good="up",
                 note=answers(current["nps_answers"]),
                 previous=_rounded(previous_row["nps"], 1), interval=(current["nps_ci_low"], current["nps_ci_high"]),
                 change_interval=moves.get("nps"), year_ago=last_year("nps", 1),
                 year_change_interval=year_move("nps"), lowest=-100.0, highest=100.0),
        Headline("csat", _rounded(current["csat_pct"], 1), "CSAT, share answering 4–5", unit="%", good="up",
                 note=answers(current["csat_answers"]), previous=_rounded(previous_row["csat_pct"], 1),
                 interval=_csat_interval(current), change_interval=moves.get("csat"),
                 year_ago=last_year("csat_pct", 1), year_change_interval=year_move("csat"), lowest=0.0, highest=100.0),
        Headline("satisfaction_index", _rounded(current["weighted_index"], 2), "Satisfaction index, weighted, 1–5",
                 good="up", note=t("{count} responses", count=int(current["index_answers"])),
                 previous=_rounded(previous_row["weighted_index"], 2), year_ago=last_year("weighted_index", 2),
                 lowest=1.0, highest=5.0),
    ]


def _csat_interval(row: pd.Series) -> tuple[float, float] | None:
    """The Wilson 95 % interval of the CSAT share of ``row``, in % (None without answers)."""
    from statsmodels.stats.proportion import proportion_confint

    if not row["csat_answers"]:
        return None
    low, high = proportion_confint(int(row["csat_positive"]), int(row["csat_answers"]), method="wilson")
    return 100 * low, 100 * high


def _rounded(value: float, digits: int) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


# -- answers, drivers ------------------------------------------------------------------------------


def answers(db: Database, start: dt.date | str, *, end: dt.date | str) -> pd.DataFrame:
    """Survey answers submitted in [start, end], without comments.

    Columns: feedback_id, customer_id, submitted_at (datetime64), nps (0–10), csat (1–5),
    quality, delivery, price, service (item scores 1–5; missing answers are NaN).
    """
    sql = ("SELECT feedback_id, customer_id, submitted_at, nps, csat, score_quality AS quality, "
           "score_delivery AS delivery, score_price AS price, score_service AS service "
           "FROM feedback WHERE submitted_at >= ? AND submitted_at < ? ORDER BY submitted_at, feedback_id")
    frame = query_df(db, sql, params=[iso(start), next_day(end)], parse_dates=["submitted_at"])
    for col in ("nps", "csat", *ITEMS):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


class KeyDriverAnalysis:
    """Which item scores move overall satisfaction: OLS (statsmodels) beside a random forest.

    ``fit(answers)`` regresses ``target`` (``"csat"``, 1–5, or ``"nps"``, 0–10) on the four item
    scores with the formula API (``csat ~ quality + delivery + price + service``) and fits a seeded
    ``RandomForestRegressor`` (the articles' satisfaction model) on the same answers (at most
    ``max_rf_rows``, a seeded sample, to stay quick on a large store). Only complete answers are
    used. The top driver is the item with the largest standardized OLS coefficient (coefficient ×
    sd(item) / sd(target): the effect of a typical difference in that item).

    Fitted: ``ols_`` (statsmodels results), ``table_`` (per item: coefficient, ci_low, ci_high,
    p_value, standardized, rf_importance), ``r_squared_``, ``rf_oob_r_squared_``, ``n_answers_``,
    ``top_driver_``, ``rf_top_driver_``.
    """

    def __init__(self, target: str = "csat", n_estimators: int = 100, *, min_answers: int = 30,
                 max_rf_rows: int = 20_000, random_state: int = 0) -> None:
        self.target = target
        self.n_estimators = n_estimators
        self.min_answers = min_answers
        self.max_rf_rows = max_rf_rows
        self.random_state = random_state

    def fit(self, answer_frame: pd.DataFrame) -> "KeyDriverAnalysis":
        import statsmodels.formula.api as smf
        from sklearn.ensemble import RandomForestRegressor

        if self.target not in ("csat", "nps"):
            raise SatisfactionError(f"target must be 'csat' or 'nps', not {self.target!r}")
        data = answer_frame.dropna(subset=[self.target, *ITEMS])[[self.target, *ITEMS]].astype(float)
        if len(data) < self.min_answers:
            raise NotEnoughResponses(
                f"only {len(data)} complete answers (overall score and all four items); the driver analysis "
                f"needs at least {self.min_answers}"
            )
        flat = [c for c in (self.target, *ITEMS) if data[c].nunique() < 2]
        if flat:
            raise NotEnoughResponses(f"every answer gives the same {', '.join(flat)}: nothing to relate")
        self.ols_ = smf.ols(f"{self.target} ~ {' + '.join(ITEMS)}", data=data).fit()
        ci = self.ols_.conf_int()
        table = pd.DataFrame({
            "item": list(ITEMS),
            "coefficient": self.ols_.params[list(ITEMS)].to_numpy(),
            "ci_low": ci.loc[list(ITEMS), 0].to_numpy(),
            "ci_high": ci.loc[list(ITEMS), 1].to_numpy(),
            "p_value": self.ols_.pvalues[list(ITEMS)].to_numpy(),
        })
        table["standardized"] = table["coefficient"] * data[list(ITEMS)].std().to_numpy() / data[self.target].std()
        sample = data.sample(n=min(len(data), self.max_rf_rows), random_state=self.random_state)
        forest = RandomForestRegressor(n_estimators=self.n_estimators, min_samples_leaf=5, oob_score=True,
                                       random_state=self.random_state, n_jobs=1)
        forest.fit(sample[list(ITEMS)], sample[self.target])
        table["rf_importance"] = forest.feature_importances_
        self.table_ = table.sort_values("standardized", ascending=False, ignore_index=True)
        self.r_squared_ = float(self.ols_.rsquared)
        self.rf_oob_r_squared_ = float(forest.oob_score_)
        self.n_answers_ = len(data)
        self.top_driver_ = str(self.table_["item"].iat[0])
        self.rf_top_driver_ = str(table.loc[table["rf_importance"].idxmax(), "item"])
        return self


DRIVER_COLUMNS = ["item", "coefficient", "ci_low", "ci_high", "p_value", "standardized", "rf_importance"]
"""The columns of :attr:`KeyDriverAnalysis.table_`, one row per item score."""


@dataclass(frozen=True)
class KeyDrivers:
    """What drives satisfaction in a set of answers: the fitted ``model`` (:class:`KeyDriverAnalysis`)
    and its per-item ``table``, or, when there were too few complete answers, ``model`` None, an
    empty ``table`` with :data:`DRIVER_COLUMNS` and ``message`` saying why."""

    model: KeyDriverAnalysis | None
    table: pd.DataFrame
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when a model was fitted."""
        return self.model is not None


def key_drivers(answer_frame: pd.DataFrame, *, target: str = "csat", random_state: int = 0) -> KeyDrivers:
    """:class:`KeyDriverAnalysis` fitted to ``answer_frame`` (:func:`answers`), as a result: too few
    complete answers give a :class:`KeyDrivers` that says so instead of raising."""
    try:
        model = KeyDriverAnalysis(target=target, random_state=random_state).fit(answer_frame)
    except NotEnoughResponses as exc:
        return KeyDrivers(None, pd.DataFrame(columns=DRIVER_COLUMNS), str(exc))
    return KeyDrivers(model, model.table_)

# -- comment themes ----------------------------------------------------------------------------------

_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W\d_]+")


def comment_terms(text: str) -> list[str]:
    """The terms of one comment: words and word pairs, plus character pairs of Chinese text.

    Words (any alphabetic script written with spaces) are lower-cased, English stop words and
    one-letter words dropped, and each adjacent pair kept as a phrase ("late delivery"). Runs of
    Chinese (also Japanese kana and Korean hangul) characters, which have no spaces, give their
    character bigrams ("发货太慢" -> "发货", "货太", "太慢"), the usual character n-gram way to
    index unsegmented text. Scripts written without spaces that are not listed (Thai, Khmer...)
    come out as whole runs, i.e. one term per sentence: themes for them are not meaningful.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    text = str(text).lower()
    terms: list[str] = []
    for run in _CJK_RUN.findall(text):
        terms += [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]
    rest = _CJK_RUN.sub(" ", text)
    words = [w for w in _WORD.findall(rest) if len(w) > 1 and w not in ENGLISH_STOP_WORDS]
    return terms + words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def comments(db: Database, start: dt.date | str, *, end: dt.date | str) -> pd.DataFrame:
    """Non-empty comments of answers with an NPS, submitted in [start, end] (personal data).

    Columns: nps (0–10), comment. No customer ids: themes need only the text and the score.
    """
    sql = ("SELECT nps, comment FROM feedback WHERE submitted_at >= ? AND submitted_at < ? "
           "AND nps IS NOT NULL AND comment IS NOT NULL AND trim(comment) <> '' ORDER BY feedback_id")
    return query_df(db, sql, params=[iso(start), next_day(end)])


def comment_themes(
    comment_frame: pd.DataFrame, *, top: int = 8, min_df: int = 2, min_comments: int = 3
) -> pd.DataFrame:
    """The terms that most separate detractors' comments (NPS 0–6) from promoters' (9–10).

    TF-IDF (scikit-learn, terms from :func:`comment_terms`, sublinear tf) over both groups'
    comments; a term's score is its mean TF-IDF among detractors minus among promoters. A term
    must occur in at least ``min_df`` comments, so a single customer's wording is never shown as a
    theme. Returns up to ``top`` terms per side: theme, leans_to ("detractors"/"promoters"),
    detractor_comments, promoter_comments (comments holding the term), score. Raises
    :class:`NotEnoughResponses` when either side has fewer than ``min_comments`` comments.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    scores = pd.to_numeric(comment_frame["nps"], errors="coerce")
    detractor, promoter = scores <= DETRACTOR_MAX, scores >= PROMOTER_MIN
    if detractor.sum() < min_comments or promoter.sum() < min_comments:
        raise NotEnoughResponses(
            f"{int(detractor.sum())} detractor and {int(promoter.sum())} promoter comments; themes need at least "
            f"{min_comments} on each side"
        )
    texts = comment_frame.loc[detractor | promoter, "comment"].astype(str)
    is_detractor = detractor[detractor | promoter].to_numpy()
    vectorizer = TfidfVectorizer(analyzer=comment_terms, min_df=min_df, sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # no term reaches min_df
        raise NotEnoughResponses(f"no word or phrase occurs in {min_df} or more comments") from None
    det_mean = np.asarray(matrix[is_detractor].mean(axis=0)).ravel()
    pro_mean = np.asarray(matrix[~is_detractor].mean(axis=0)).ravel()
    present = (matrix > 0).astype(int)
    table = pd.DataFrame({
        "theme": vectorizer.get_feature_names_out(),
        "detractor_comments": np.asarray(present[is_detractor].sum(axis=0)).ravel(),
        "promoter_comments": np.asarray(present[~is_detractor].sum(axis=0)).ravel(),
        "score": det_mean - pro_mean,
    })
    table["leans_to"] = np.where(table["score"] > 0, "detractors", "promoters")
    det = table[table["score"] > 0].sort_values(["score", "theme"], ascending=[False, True]).head(top)
    pro = table[table["score"] < 0].sort_values(["score", "theme"]).head(top)
    return pd.concat([det, pro], ignore_index=True)[THEME_COLUMNS]


THEME_COLUMNS = ["theme", "leans_to", "detractor_comments", "promoter_comments", "score"]
"""The columns of :func:`comment_themes`."""


@dataclass(frozen=True)
class CommentThemes:
    """The themes of a set of comments (:func:`comment_themes`) and how many ``comments`` there were;
    when there were too few on either side, an empty ``table`` with :data:`THEME_COLUMNS` and
    ``message`` saying why."""

    table: pd.DataFrame
    comments: int
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when themes were found."""
        return not self.message


def themes_of_comments(comment_frame: pd.DataFrame, *, top: int = 8) -> CommentThemes:
    """:func:`comment_themes` of ``comment_frame`` (:func:`comments`) as a result: too few comments
    give a :class:`CommentThemes` that says so instead of raising."""
    try:
        table = comment_themes(comment_frame, top=top)
    except NotEnoughResponses as exc:
        return CommentThemes(pd.DataFrame(columns=THEME_COLUMNS), len(comment_frame), str(exc))
    return CommentThemes(table, len(comment_frame))


DETRACTOR_DAYS = 90
"""A detractor answer counts for :func:`actions` when it is this recent (days up to the period's end)."""

_UNCONTACTED_DETRACTORS_SQL = f"""
WITH latest AS (
  SELECT customer_id, nps, submitted_at,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY submitted_at DESC, feedback_id DESC) AS rn
  FROM feedback WHERE nps IS NOT NULL AND customer_id IS NOT NULL
   AND submitted_at >= :since AND {on_or_before_sql('submitted_at')}
)
SELECT l.customer_id, c.name, l.nps, l.submitted_at,
       (SELECT coalesce(sum({net_revenue_sql('o')}), 0) FROM orders o
         WHERE o.customer_id = l.customer_id AND {paid('o')} AND o.order_date >= :year_start
           AND {on_or_before_sql('o.order_date')}) AS value
FROM latest l JOIN customers c ON c.customer_id = l.customer_id
WHERE l.rn = 1 AND l.nps <= {DETRACTOR_MAX}
  AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = l.customer_id
                  AND i.occurred_at > l.submitted_at AND {on_or_before_sql('i.occurred_at')})
ORDER BY value DESC, l.customer_id
"""


def actions(db: Database, *, period: Period) -> list[Action]:
    """Call the detractors not yet contacted: customers whose latest NPS answer of the last
    :data:`DETRACTOR_DAYS` days up to ``period``'s end is 0–6 and with no interaction logged after it.

    Money at stake (store currency) = their value: their net revenue of the last 12 months (paid
    orders), what a year of them brings; no range (a sum of facts). The three most valuable by name.
    """
    end = period.end
    frame = query_df(db, _UNCONTACTED_DETRACTORS_SQL, params={
        "since": iso(end - dt.timedelta(days=DETRACTOR_DAYS - 1)), "end_next": next_day(end),
        "year_start": iso(end - dt.timedelta(days=364))})
    if frame.empty:
        return []
    currency = store_currency(db)
    top = frame.head(3)
    names = [t("{name} (NPS {nps}, {money} in the last 12 months)", name=name or cid, nps=nps,
               money=money_whole(value, currency))
             for cid, name, nps, value in zip(top["customer_id"], top["name"], top["nps"], top["value"])]
    return [Action(
        "call detractors",
        t("Call the {count} customers who answered NPS 0–6 in the last {days} days and have not been contacted "
          "since, the most valuable first: {names}.", count=f"{len(frame):,}", days=DETRACTOR_DAYS,
          names=named_list(names)),
        float(frame["value"].sum()), currency=currency, page="05_satisfaction_review", section="Whom to call")]
