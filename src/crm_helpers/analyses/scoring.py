"""Scores for action: loyalty, churn propensity and value.

- **Loyalty** as the articles define it: repeat purchases / all purchases (忠诚度 = 重复购买次数 /
  总购买次数, :func:`crm_helpers.store.facts.loyalty`), per customer and overall, beside sound measures
  (the repeat rate of the month, the share of buyers who ever came back, and the 12-month repeat
  rate, which does not grow with the length of the record).
- **Churn propensity**: the probability that a buyer places no paid order in the next
  ``horizon_days``. A scikit-learn pipeline (logistic regression, as the articles ask, with an
  optional gradient-boosting model beside it) is trained on a past snapshot (features as of
  ``as_of - 2H``, outcome over the following H days) and evaluated on a later snapshot it never
  saw (features as of ``as_of - H``, outcome up to ``as_of``): ROC AUC, Brier score and
  calibration. The same recipe is then refitted on that latest fully observed snapshot to score
  today's customers.
- **Value score** (0–100): ``100 × (0.5·pM + 0.3·pF + 0.2·pR)`` with ``p`` the mid-rank
  percentile among buyers of net revenue (M), paid orders (F) and recency (R, more recent is
  higher). A ranking aid, not money.

Lead scoring is in :mod:`crm_helpers.analyses.lead_scoring`, the follow-up queue in
:mod:`crm_helpers.analyses.followup`. Purchases and revenue count paid orders only; refunded and cancelled
orders count as neither (see :mod:`crm_helpers.analyses.features`). Everything is computed as of a given
day and seeded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.i18n import t
from crm_helpers.errors import CrmError
from crm_helpers.store.facts import (
    LOYALTY_LABEL,
    LOYALTY_MEANING,
    REPEAT_RATE_MEANING,
    REPEAT_WINDOW_DAYS,
    buyer_repeats,
    loyalty,
    repeat_rate,
)
from crm_helpers.store.queries import memoized
from crm_helpers.analyses.features import as_date, customer_features, paid_orders_between
from crm_helpers.analyses.satisfaction import DETRACTOR_MAX

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

# -- loyalty ---------------------------------------------------------------------------------


def loyalty_table(db: Database, as_of: dt.date | str) -> pd.DataFrame:
    """The articles' loyalty per buyer: repeat purchases / all purchases, up to the end of ``as_of``.

    Output: customer_id, purchases (paid orders), repeat_purchases (paid orders on a later day than
    the first, :func:`crm_helpers.store.facts.repeat_day_sql`), loyalty (0 to 1; 0 for a one-time
    buyer). Per customer this is ``1 - first-day orders/purchases``: it says little more than the
    number of orders.
    """
    buyers = buyer_repeats(db, as_date(as_of))
    return pd.DataFrame({
        "customer_id": buyers["customer_id"].to_numpy(),
        "purchases": buyers["purchases"].to_numpy(),
        "repeat_purchases": buyers["repeat_purchases"].to_numpy(),
        "loyalty": (buyers["repeat_purchases"] / buyers["purchases"]).to_numpy(dtype="float64"),
    })


def loyalty_overview(db: Database, as_of: dt.date | str, *, period_start: dt.date | str | None = None,
                     window_days: int = REPEAT_WINDOW_DAYS) -> pd.DataFrame:
    """The articles' loyalty beside sound repeat measures, one row each: measure, value (%), definition.

    With ``period_start``, the month's **Repeat rate** and **Repeat purchase share (customer
    loyalty)** come first: the same figures, from the same functions (:func:`crm_helpers.store.facts.repeat_rate`,
    :func:`crm_helpers.store.facts.loyalty`), as on the index. Then the whole record: the articles' overall
    ratio (repeat purchases / all purchases), dominated by the heaviest buyers and rising the longer
    the record runs; the average per customer; the share of buyers who ever bought again; and the
    share who bought again within ``window_days`` (:data:`~crm_helpers.store.facts.REPEAT_WINDOW_DAYS`),
    which looks only at buyers who have had ``window_days`` since their first purchase, so it
    compares fairly over time. A repeat purchase is a paid order on a later day than the first
    (:func:`crm_helpers.store.facts.buyer_repeats`).
    """
    day = as_date(as_of)
    buyers = buyer_repeats(db, day, window_days=window_days)
    per_buyer = buyers["repeat_purchases"] / buyers["purchases"]
    eligible = buyers.loc[buyers["mature"]]

    def pct(num: float, den: float) -> float:
        return float(100 * num / den) if den else float("nan")

    rows = []
    if period_start is not None:
        rows += [
            ("Repeat rate", repeat_rate(db, period_start, end=day), REPEAT_RATE_MEANING),
            (LOYALTY_LABEL, 100 * loyalty(db, period_start, end=day)["loyalty"],
             LOYALTY_MEANING),
        ]
    rows += [
        ("Since the first order: repeat purchases / all purchases", 100 * loyalty(db, None, end=day)["loyalty"],
         "the article's loyalty formula (重复购买次数 / 总购买次数) over the whole record, all buyers and all their orders "
         "together: not this month's repeat purchase share, and it rises the longer the record runs"),
        ("Since the first order: average per buyer of repeat purchases / purchases",
         100 * float(per_buyer.mean()) if len(buyers) else float("nan"),
         "mean of each buyer's repeat purchases / purchases (orders on later days than the first)"),
        ("Buyers who ever bought again", pct(buyers["repeat_day"].notna().sum(), len(buyers)),
         "share of buyers with a paid order on a later day than their first (grows with the length of the record)"),
        (t("Bought again within {days} days", days=window_days), pct(eligible["bought_again"].sum(), len(eligible)),
         t("share of buyers whose first purchase was at least {days} days ago who bought again (on a later day) "
           "within {days} days of it ({buyers} buyers): comparable from month to month", days=window_days,
           buyers=len(eligible))),
    ]
    return pd.DataFrame(rows, columns=["measure", "value_pct", "definition"])


# -- churn -----------------------------------------------------------------------------------

CHURN_FEATURES: dict[str, str] = {
    "recency_days": "days since the last order",
    "frequency": "number of paid orders",
    "monetary": "net revenue",
    "tenure_days": "days since the first order",
    "avg_order_value": "average order value",
    "recent_orders": "orders in the last 90 days",
    "interactions": "logged interactions",
    "complaints": "complaint tickets",
}
"""Numeric churn-model inputs (``log(1 + x)``, then standardized), with plain names."""

CHURN_FLAGS: dict[str, str] = {"detractor": "last NPS answer was 0–6"}
"""Yes/no churn-model inputs (0/1, not transformed)."""

MODEL_KINDS = ("logistic", "boosting")


class ScoringError(CrmError, ValueError):
    """A model cannot be fitted or used (too little data, one outcome only, unknown kind)."""


def model_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """:func:`customer_features` -> the churn model's input columns, indexed by customer_id."""
    frame = features.set_index("customer_id")
    inputs = frame[list(CHURN_FEATURES)].astype("float64").fillna(0.0).clip(lower=0.0)
    inputs["detractor"] = (frame["last_nps"].astype("Float64").fillna(10) <= DETRACTOR_MAX).astype("float64").to_numpy()
    return inputs


def churn_snapshot(db: Database, cutoff: dt.date | str, *, horizon_days: int) -> pd.DataFrame:
    """Buyers' features as of ``cutoff`` plus ``churned``: 1 if no paid order in the next ``horizon_days``.

    The outcome window is ``(cutoff, cutoff + horizon_days]``; use it only when the data reach
    the window's end. Shape: one row per buyer at ``cutoff`` (see :func:`customer_features`).
    """
    day = as_date(cutoff)
    frame = customer_features(db, day)
    later = paid_orders_between(db, day, until=day + dt.timedelta(days=horizon_days))
    return frame.assign(churned=(~frame["customer_id"].isin(later.index)).astype("int64"))


class ChurnModel:
    """Churn propensity: ``kind="logistic"`` (scaled log features) or ``"boosting"`` (histogram GBM).

    ``fit(features, churned)`` takes :func:`customer_features` rows and 0/1 outcomes; after it,
    ``pipeline_`` is the fitted scikit-learn pipeline and ``base_rate_`` the training churn rate.
    """

    def __init__(self, kind: str = "logistic", C: float = 1.0, *, random_state: int = 0) -> None:
        self.kind = kind
        self.C = C
        self.random_state = random_state

    def _pipeline(self) -> Pipeline:
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline, make_pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        if self.kind not in MODEL_KINDS:
            raise ScoringError(f"unknown model kind {self.kind!r}; choose one of {', '.join(MODEL_KINDS)}")
        prep = ColumnTransformer([
            ("numbers", make_pipeline(FunctionTransformer(np.log1p, feature_names_out="one-to-one"), StandardScaler()),
             list(CHURN_FEATURES)),
            ("flags", "passthrough", list(CHURN_FLAGS)),
        ])
        if self.kind == "logistic":
            model = LogisticRegression(C=self.C, max_iter=2000, random_state=self.random_state)
        else:
            model = HistGradientBoostingClassifier(max_depth=3, learning_rate=0.1, max_iter=100,
                                                   early_stopping=False, random_state=self.random_state)
        return Pipeline([("prep", prep), ("model", model)])

    def fit(self, features: pd.DataFrame, churned: pd.Series) -> "ChurnModel":
        """Fit on one snapshot; raises ScoringError when both outcomes are not present."""
        y = np.asarray(churned, dtype=int)
        if len(np.unique(y)) < 2:
            raise ScoringError("the training snapshot has only one outcome (everyone stayed or everyone left)")
        x = model_inputs(features)
        with _one_thread():
            self.pipeline_ = self._pipeline().fit(x, y)
        self.base_rate_ = float(y.mean())
        self.training_medians_ = x[list(CHURN_FEATURES)].median()
        return self

    def predict_proba(self, features: pd.DataFrame) -> pd.Series:
        """Churn probability (0–1) per customer_id."""
        x = model_inputs(features)
        if x.empty:
            return pd.Series(dtype="float64", name="churn_probability")
        with _one_thread():
            return pd.Series(self.pipeline_.predict_proba(x)[:, 1], index=x.index, name="churn_probability")

    def odds_ratios(self) -> pd.DataFrame:
        """Logistic model only: odds ratio of leaving per typical step of each input, in plain words.

        A step is one standard deviation of ``log(1 + x)`` in the training snapshot, shown in the
        input's own units from its median (e.g. "40 → 120 days"); for yes/no inputs the step is
        "no → yes". Odds ratio above 1: more likely to leave.
        """
        if self.kind != "logistic":
            raise ScoringError("odds ratios exist for the logistic model only")
        coefs = self.pipeline_.named_steps["model"].coef_[0]
        scaler = self.pipeline_.named_steps["prep"].named_transformers_["numbers"][-1]
        rows = []
        for i, (col, label) in enumerate(CHURN_FEATURES.items()):
            start = float(self.training_medians_[col])
            end = float(np.expm1(np.log1p(start) + scaler.scale_[i]))
            rows.append((label, f"{_number(start)} → {_number(end)}", float(np.exp(coefs[i]))))
        for j, label in enumerate(CHURN_FLAGS.values()):
            rows.append((label, "no → yes", float(np.exp(coefs[len(CHURN_FEATURES) + j]))))
        frame = pd.DataFrame(rows, columns=["input", "typical step", "odds_ratio"])
        frame["reading"] = [_odds_words(v) for v in frame["odds_ratio"]]
        return frame.sort_values("odds_ratio", key=lambda s: -np.abs(np.log(s))).reset_index(drop=True)


def _one_thread() -> threadpool_limits:
    """Run native code single-threaded: on a small or busy machine, OpenMP threads of the boosting
    model wait on each other far longer than one thread takes (seconds instead of a fraction)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"


def _odds_words(ratio: float) -> str:
    if ratio >= 1.05:
        return t("odds of leaving × {ratio}", ratio=f"{ratio:.2f}")
    if ratio <= 1 / 1.05:
        return t("odds of leaving cut by {pct}%", pct=f"{100 * (1 - ratio):.0f}")
    return t("hardly changes the odds")


def calibration_table(churned: pd.Series, probability: pd.Series, *, bins: int = 10) -> pd.DataFrame:
    """Customers grouped into up to ``bins`` equal-size groups by predicted probability.

    Columns: predicted (mean probability), observed (share who churned), customers. A well
    calibrated model has observed ≈ predicted in every group.
    """
    frame = pd.DataFrame({"y": np.asarray(churned, dtype=float), "p": np.asarray(probability, dtype=float)})
    if frame.empty:
        return pd.DataFrame(columns=["predicted", "observed", "customers"])
    ranks = frame["p"].rank(method="first")
    frame["group"] = np.ceil(ranks * min(bins, len(frame)) / len(frame)).astype(int)
    table = frame.groupby("group").agg(predicted=("p", "mean"), observed=("y", "mean"), customers=("y", "size"))
    return table.reset_index(drop=True)


@dataclass
class ChurnBacktest:
    """A churn model trained on one snapshot and judged on a later one, plus the model for today.

    ``metrics``: model, train/test cutoffs, customers, churn rate, ROC AUC, Brier score and the
    Brier score of always predicting the training churn rate (lower is better). ``calibration``:
    :func:`calibration_table` per model. ``models``: the recipes refitted on the test snapshot,
    which score today's customers. ``ok``: a model was fitted; ``message``: why not, if not.
    """

    horizon_days: int
    train_cutoff: dt.date
    test_cutoff: dt.date
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    evaluated: dict[str, ChurnModel] = field(default_factory=dict)
    models: dict[str, ChurnModel] = field(default_factory=dict)
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when a model was fitted (else :attr:`message` says why not)."""
        return self.model is not None

    @property
    def model(self) -> ChurnModel | None:
        """The logistic model refitted on the latest fully observed snapshot (None if unavailable)."""
        return self.models.get("logistic")

    def odds_ratios(self) -> pd.DataFrame:
        """:meth:`ChurnModel.odds_ratios` of the model for today (an empty table without one)."""
        if self.model is None:
            return pd.DataFrame(columns=["input", "typical step", "odds_ratio", "reading"])
        return self.model.odds_ratios()


MIN_TRAINING_BUYERS = 30


@memoized
def churn_backtest(
    db: Database,
    as_of: dt.date | str,
    *,
    horizon_days: int = 90,
    kinds: tuple[str, ...] = MODEL_KINDS,
    random_state: int = 0,
) -> ChurnBacktest:
    """Train on the snapshot at ``as_of - 2H``, evaluate on the one at ``as_of - H`` (H = horizon).

    The test snapshot's outcomes end on ``as_of``, so nothing after ``as_of`` is used and the
    evaluated model never saw them. Returns a :class:`ChurnBacktest`; when a snapshot is too small
    or has one outcome only, its ``message`` says so and no model is returned (no exception).
    Memoized (:func:`~crm_helpers.store.queries.memoized`): shared, treat it as read-only.
    """
    day = as_date(as_of)
    test_cut = day - dt.timedelta(days=horizon_days)
    train_cut = test_cut - dt.timedelta(days=horizon_days)
    train = churn_snapshot(db, train_cut, horizon_days=horizon_days)
    test = churn_snapshot(db, test_cut, horizon_days=horizon_days)
    empty = ChurnBacktest(horizon_days, train_cut, test_cut, pd.DataFrame(), pd.DataFrame())
    for name, snap in (("training", train), ("test", test)):
        if len(snap) < MIN_TRAINING_BUYERS or snap["churned"].nunique() < 2:
            cut = train_cut if name == "training" else test_cut
            empty.message = (f"No churn model: the {name} snapshot (as of {cut.isoformat()}) has "
                          f"{len(snap)} buyers and {snap['churned'].nunique()} outcome(s); it needs at least "
                          f"{MIN_TRAINING_BUYERS} buyers, some who bought again and some who did not.")
            return empty
    rows, calibration, evaluated, final = [], [], {}, {}
    for kind in kinds:
        model = ChurnModel(kind=kind, random_state=random_state).fit(train, train["churned"])
        p = model.predict_proba(test).to_numpy()
        rows.append(_metrics(kind, train_cut, test_cut, test["churned"], p, model.base_rate_))
        calibration.append(calibration_table(test["churned"], p).assign(model=kind))
        evaluated[kind] = model
        final[kind] = ChurnModel(kind=kind, random_state=random_state).fit(test, test["churned"])
    return ChurnBacktest(horizon_days, train_cut, test_cut, pd.DataFrame(rows),
                         pd.concat(calibration, ignore_index=True), evaluated, final)


def _metrics(kind: str, train_cut: dt.date, test_cut: dt.date, y: pd.Series, p: np.ndarray,
             base_rate: float) -> dict[str, Any]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    return {
        "model": kind, "trained on": train_cut.isoformat(), "tested on": test_cut.isoformat(),
        "test customers": int(len(y)), "test churn rate": float(y.mean()),
        "ROC AUC": float(roc_auc_score(y, p)), "Brier score": float(brier_score_loss(y, p)),
        "Brier, base rate only": float(brier_score_loss(y, np.full(len(y), base_rate))),
    }


# -- value -----------------------------------------------------------------------------------

VALUE_WEIGHTS = {"monetary": 0.5, "frequency": 0.3, "recency": 0.2}
"""Weights of the value score's percentiles: net revenue, paid orders, recency (recent = high)."""


def percentile_rank(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Mid-rank percentile of each value among ``values``, 0–1 (ties share a value; 0.5 is typical)."""
    oriented = values.astype("float64") if higher_is_better else -values.astype("float64")
    return (oriented.rank(method="average") - 0.5) / len(values)


def value_score(features: pd.DataFrame) -> pd.Series:
    """Value score 0–100 per buyer (customer_id index): 100 × (0.5·pM + 0.3·pF + 0.2·pR).

    ``p`` is the mid-rank percentile among the buyers in ``features`` (ties share a value), so
    50 is a typical buyer. Net revenue and orders count paid orders only.
    """
    buyers = features.loc[features["frequency"] > 0].set_index("customer_id")
    if buyers.empty:
        return pd.Series(dtype="float64", name="value_score", index=pd.Index([], name="customer_id", dtype=object))
    score = (VALUE_WEIGHTS["monetary"] * percentile_rank(buyers["monetary"])
             + VALUE_WEIGHTS["frequency"] * percentile_rank(buyers["frequency"])
             + VALUE_WEIGHTS["recency"] * percentile_rank(buyers["recency_days"], higher_is_better=False))
    return (100 * score).rename("value_score")


def score_customers(
    db: Database, as_of: dt.date | str, *, model: ChurnModel | None, previous_as_of: dt.date | str | None = None
) -> pd.DataFrame:
    """Today's buyers with value score and churn probability (now and at ``previous_as_of``).

    ``previous_as_of`` defaults to 30 days earlier. Columns: the :func:`customer_features`
    columns plus value_score, churn_probability, churn_probability_prev (empty without a model,
    or for customers who were not buyers yet), sorted by customer_id.
    """
    day = as_date(as_of)
    before = as_date(previous_as_of) if previous_as_of else day - dt.timedelta(days=30)
    feats = customer_features(db, day)
    out = feats.merge(value_score(feats).reset_index(), on="customer_id", how="left")
    if model is None or feats.empty:
        out["churn_probability"], out["churn_probability_prev"] = np.nan, np.nan
        return out
    out["churn_probability"] = model.predict_proba(feats).to_numpy()
    earlier = customer_features(db, before)
    prev = model.predict_proba(earlier) if len(earlier) else pd.Series(dtype="float64")
    out["churn_probability_prev"] = out["customer_id"].map(prev).astype("float64")
    return out


def value_risk_table(
    scored: pd.DataFrame, *, valuable_score: float = 70.0, risk_threshold: float = 0.5
) -> pd.DataFrame:
    """Buyers by value (score below / from ``valuable_score``) and churn risk (below / from the threshold).

    One row per value band with customers, net revenue and revenue share per risk band; the
    "valuable, likely to leave" cell is where the follow-up effort pays most. Without churn
    probabilities every buyer counts as "risk unknown".
    """
    value = np.where(scored["value_score"].fillna(0) >= valuable_score, "valuable", "other")
    p = scored["churn_probability"]
    risk = np.where(p.isna(), "risk unknown", np.where(p >= risk_threshold, "likely to leave (churn model)",
                                                               "likely to stay (churn model)"))
    frame = pd.DataFrame({"value": value, "risk": risk, "revenue": scored["monetary"].astype("float64")})
    grouped = frame.groupby(["value", "risk"])
    table = grouped.agg(customers=("revenue", "size"), revenue=("revenue", "sum")).reset_index()
    total = float(table["revenue"].sum())
    table["revenue_share_pct"] = 100 * table["revenue"] / total if total else 0.0
    return table.sort_values(["value", "risk"], ascending=[False, True]).reset_index(drop=True)
