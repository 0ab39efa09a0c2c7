"""Scores for action: loyalty, churn propensity, value, lead win probability, the follow-up queue.

- **Loyalty** as the seeds define it: repeat purchases / all purchases (忠诚度 = 重复购买次数 /
  总购买次数), per customer and overall, beside two sound measures (the repeat-customer rate,
  and the 12-month repeat rate, which does not grow with the length of the record).
- **Churn propensity**: the probability that a buyer places no paid order in the next
  ``horizon_days``. A scikit-learn pipeline (logistic regression, as the seeds ask, with an
  optional gradient-boosting model beside it) is trained on a past snapshot (features as of
  ``as_of - 2H``, outcome over the following H days) and evaluated on a later snapshot it never
  saw (features as of ``as_of - H``, outcome up to ``as_of``): ROC AUC, Brier score and
  calibration. The same recipe is then refitted on that latest fully observed snapshot to score
  today's customers.
- **Value score** (0–100): ``100 × (0.5·pM + 0.3·pF + 0.2·pR)`` with ``p`` the mid-rank
  percentile among buyers of net revenue (M), paid orders (F) and recency (R, more recent is
  higher). A ranking aid, not money.
- **Lead scoring**: win probability of open opportunities from the closed won/lost ones
  (logistic regression on source, amount and age), and the probability-weighted pipeline value.
- **Follow-up queue**: the top N people to contact this week, each with its reasons in words.

Purchases and revenue count paid orders only; refunded and cancelled orders count as neither
(see :mod:`crm_helpers.features`). Everything is computed as of a given day and seeded.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlite_utils import Database

from .data import query_df
from .features import as_date, customer_features, paid_orders_between
from .safe_csv import write_safe_csv
from .segmentation import empty_axes, get_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

# -- loyalty ---------------------------------------------------------------------------------


def loyalty_table(features: pd.DataFrame) -> pd.DataFrame:
    """The seeds' loyalty per buyer: repeat purchases / all purchases.

    Input: :func:`customer_features`. Output: customer_id, purchases (paid orders),
    repeat_purchases (paid orders after the first), loyalty (0 to 1; 0 for a one-time buyer).
    Per customer this equals ``1 - 1/purchases``: it says no more than the number of orders.
    """
    buyers = features.loc[features["frequency"] > 0, ["customer_id", "frequency"]]
    purchases = buyers["frequency"].astype("int64")
    return pd.DataFrame({
        "customer_id": buyers["customer_id"].to_numpy(),
        "purchases": purchases.to_numpy(),
        "repeat_purchases": (purchases - 1).to_numpy(),
        "loyalty": ((purchases - 1) / purchases).to_numpy(dtype="float64"),
    })


def second_purchase_days(db: Database, as_of: dt.date | str) -> pd.DataFrame:
    """Per buyer: first paid order date and days from it to the second paid order (empty if none yet).

    Columns: customer_id, first_order (datetime64), days_to_second (float, days). Computed in
    SQLite with a window function over paid orders up to ``as_of``.
    """
    frame = query_df(
        db,
        "SELECT customer_id, MIN(order_date) AS first_order, "
        "MAX(CASE WHEN rn = 2 THEN order_date END) AS second_order FROM ("
        "  SELECT customer_id, order_date, ROW_NUMBER() OVER (PARTITION BY customer_id "
        "  ORDER BY order_date, order_id) AS rn FROM orders WHERE status = 'paid' AND order_date <= ?"
        ") WHERE rn <= 2 GROUP BY customer_id ORDER BY customer_id",
        [as_date(as_of).isoformat()],
        parse_dates=["first_order", "second_order"],
    )
    frame["days_to_second"] = (frame["second_order"] - frame["first_order"]).dt.days.astype("float64")
    return frame[["customer_id", "first_order", "days_to_second"]]


def loyalty_overview(db: Database, as_of: dt.date | str, *, window_days: int = 365) -> pd.DataFrame:
    """The seeds' loyalty beside sound repeat measures, one row each: measure, value (%), definition.

    The seeds' overall ratio (repeat purchases / all purchases) is dominated by the heaviest
    buyers and rises the longer the record runs; the 12-month repeat rate looks only at buyers
    who have had ``window_days`` since their first purchase, so it compares fairly over time.
    """
    day = as_date(as_of)
    loyal = loyalty_table(customer_features(db, day))
    firsts = second_purchase_days(db, day)
    eligible = firsts.loc[firsts["first_order"] <= pd.Timestamp(day - dt.timedelta(days=window_days))]
    came_back = eligible["days_to_second"].le(window_days)

    def pct(num: float, den: float) -> float:
        return float(100 * num / den) if den else float("nan")

    rows = [
        ("Loyalty, overall (seeds)", pct(loyal["repeat_purchases"].sum(), loyal["purchases"].sum()),
         "repeat purchases / all purchases, all buyers together (重复购买次数 / 总购买次数)"),
        ("Loyalty, average per customer (seeds)", 100 * float(loyal["loyalty"].mean()) if len(loyal) else float("nan"),
         "mean of each buyer's repeat purchases / purchases; for one buyer this is 1 − 1/orders"),
        ("Repeat-customer rate", pct((loyal["purchases"] >= 2).sum(), len(loyal)),
         "share of buyers with a second paid order (grows with the length of the record)"),
        (f"{window_days}-day repeat rate", pct(came_back.sum(), len(eligible)),
         f"share of buyers whose first purchase was at least {window_days} days ago who bought again "
         f"within {window_days} days of it ({len(eligible)} buyers): comparable from month to month"),
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


class ScoringError(ValueError):
    """A model cannot be fitted or used (too little data, one outcome only, unknown kind)."""


def model_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """:func:`customer_features` -> the churn model's input columns, indexed by customer_id."""
    frame = features.set_index("customer_id")
    inputs = frame[list(CHURN_FEATURES)].astype("float64").fillna(0.0).clip(lower=0.0)
    inputs["detractor"] = (frame["last_nps"].astype("Float64").fillna(10) <= 6).astype("float64").to_numpy()
    return inputs


def churn_snapshot(db: Database, cutoff: dt.date | str, horizon_days: int) -> pd.DataFrame:
    """Buyers' features as of ``cutoff`` plus ``churned``: 1 if no paid order in the next ``horizon_days``.

    The outcome window is ``(cutoff, cutoff + horizon_days]``; use it only when the data reach
    the window's end. Shape: one row per buyer at ``cutoff`` (see :func:`customer_features`).
    """
    day = as_date(cutoff)
    frame = customer_features(db, day)
    later = paid_orders_between(db, day, day + dt.timedelta(days=horizon_days))
    frame["churned"] = (~frame["customer_id"].isin(later.index)).astype("int64")
    return frame


class ChurnModel:
    """Churn propensity: ``kind="logistic"`` (scaled log features) or ``"boosting"`` (histogram GBM).

    ``fit(features, churned)`` takes :func:`customer_features` rows and 0/1 outcomes; after it,
    ``pipeline_`` is the fitted scikit-learn pipeline and ``base_rate_`` the training churn rate.
    """

    def __init__(self, kind: str = "logistic", C: float = 1.0, random_state: int = 0) -> None:
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
        return f"odds of leaving × {ratio:.2f}"
    if ratio <= 1 / 1.05:
        return f"odds of leaving cut by {100 * (1 - ratio):.0f}%"
    return "hardly changes the odds"


def calibration_table(churned: pd.Series, probability: pd.Series, bins: int = 10) -> pd.DataFrame:
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
    which score today's customers. ``note``: why nothing could be fitted, if so.
    """

    horizon_days: int
    train_cutoff: dt.date
    test_cutoff: dt.date
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    evaluated: dict[str, ChurnModel] = field(default_factory=dict)
    models: dict[str, ChurnModel] = field(default_factory=dict)
    note: str = ""

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
    or has one outcome only, its ``note`` says so and no model is returned (no exception).
    """
    day = as_date(as_of)
    test_cut = day - dt.timedelta(days=horizon_days)
    train_cut = test_cut - dt.timedelta(days=horizon_days)
    train, test = churn_snapshot(db, train_cut, horizon_days), churn_snapshot(db, test_cut, horizon_days)
    empty = ChurnBacktest(horizon_days, train_cut, test_cut, pd.DataFrame(), pd.DataFrame())
    for name, snap in (("training", train), ("test", test)):
        if len(snap) < MIN_TRAINING_BUYERS or snap["churned"].nunique() < 2:
            cut = train_cut if name == "training" else test_cut
            empty.note = (f"No churn model: the {name} snapshot (as of {cut.isoformat()}) has "
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


def _percentile(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
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
    score = (VALUE_WEIGHTS["monetary"] * _percentile(buyers["monetary"])
             + VALUE_WEIGHTS["frequency"] * _percentile(buyers["frequency"])
             + VALUE_WEIGHTS["recency"] * _percentile(buyers["recency_days"], higher_is_better=False))
    return (100 * score).rename("value_score")


def score_customers(
    db: Database, as_of: dt.date | str, model: ChurnModel | None, *, previous_as_of: dt.date | str | None = None
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
    risk = np.where(p.isna(), "risk unknown", np.where(p >= risk_threshold, "likely to leave", "likely to stay"))
    frame = pd.DataFrame({"value": value, "risk": risk, "revenue": scored["monetary"].astype("float64")})
    grouped = frame.groupby(["value", "risk"])
    table = grouped.agg(customers=("revenue", "size"), revenue=("revenue", "sum")).reset_index()
    total = float(table["revenue"].sum())
    table["revenue_share_pct"] = 100 * table["revenue"] / total if total else 0.0
    return table.sort_values(["value", "risk"], ascending=[False, True]).reset_index(drop=True)


# -- leads -----------------------------------------------------------------------------------

def opportunities(db: Database, as_of: dt.date | str) -> pd.DataFrame:
    """Opportunities known on ``as_of`` with their status then: won, lost or open.

    Columns: opportunity_id, customer_id, title, source ("unknown" if blank), stage, amount,
    probability (your own estimate), opened_at, closed_at, last_activity_at (datetime64),
    status, won (1/0, empty when open), age_days (opening to closing, or to ``as_of`` while
    open), idle_days (days since the last activity, open deals only).
    """
    day = as_date(as_of)
    frame = query_df(
        db,
        "SELECT opportunity_id, customer_id, title, source, stage, amount, probability, opened_at, closed_at, "
        "last_activity_at FROM opportunities WHERE opened_at <= ? ORDER BY opened_at, opportunity_id",
        [day.isoformat()], parse_dates=["opened_at", "closed_at", "last_activity_at"],
    )
    closed = (frame["stage"].isin(["won", "lost"]) & frame["closed_at"].notna()
              & (frame["closed_at"] <= pd.Timestamp(day)))
    frame["status"] = np.where(closed, frame["stage"], "open")
    frame["won"] = pd.Series(np.where(closed, (frame["stage"] == "won").astype(float), np.nan), index=frame.index)
    frame["source"] = frame["source"].fillna("unknown").astype(str).str.strip().replace("", "unknown")
    ts = pd.Timestamp(day)
    end = frame["closed_at"].where(closed, ts)
    frame["age_days"] = (end - frame["opened_at"]).dt.days.clip(lower=0).astype("float64")
    last = frame["last_activity_at"].fillna(frame["opened_at"]).clip(upper=ts)
    frame["idle_days"] = ((ts - last).dt.days.astype("float64")).where(~closed)
    return frame


class LeadScorer:
    """Win probability of opportunities: logistic regression on source, log amount and age.

    The stage is not an input: closed deals only keep their final stage (won or lost), which is
    the answer itself, and the store keeps no stage history. After :meth:`fit`: ``pipeline_``,
    ``base_rate_`` (share won in training).
    """

    def __init__(self, C: float = 1.0, random_state: int = 0) -> None:
        self.C = C
        self.random_state = random_state

    @staticmethod
    def _inputs(opps: pd.DataFrame) -> pd.DataFrame:
        amount = opps["amount"].astype("float64")
        return pd.DataFrame({
            "source": opps["source"].astype(str).to_numpy(),
            "log_amount": np.log1p(amount.fillna(amount.median() if amount.notna().any() else 0.0)).to_numpy(),
            "age_days": np.log1p(opps["age_days"].astype("float64").fillna(0.0)).to_numpy(),
        }, index=opps.index)

    def fit(self, closed: pd.DataFrame) -> "LeadScorer":
        """Fit on closed opportunities (rows of :func:`opportunities` with ``won`` 0/1)."""
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        y = closed["won"].astype(int).to_numpy()
        if len(np.unique(y)) < 2:
            raise ScoringError("lead scoring needs both won and lost deals among the closed ones")
        prep = ColumnTransformer([
            ("source", OneHotEncoder(handle_unknown="ignore"), ["source"]),
            ("numbers", StandardScaler(), ["log_amount", "age_days"]),
        ])
        model = LogisticRegression(C=self.C, max_iter=2000, random_state=self.random_state)
        self.pipeline_ = Pipeline([("prep", prep), ("model", model)]).fit(self._inputs(closed), y)
        self.base_rate_ = float(y.mean())
        return self

    def predict_proba(self, opps: pd.DataFrame) -> pd.Series:
        """Win probability (0–1) per row of ``opps`` (same index)."""
        if opps.empty:
            return pd.Series(dtype="float64", name="win_probability")
        return pd.Series(self.pipeline_.predict_proba(self._inputs(opps))[:, 1], index=opps.index,
                         name="win_probability")

    def odds_ratios(self) -> pd.DataFrame:
        """Odds ratio of winning per input: each source against the average source; amount and age
        per one standard deviation of their log (i.e. per multiplying them by a typical factor)."""
        prep = self.pipeline_.named_steps["prep"]
        coefs = self.pipeline_.named_steps["model"].coef_[0]
        sources = prep.named_transformers_["source"].categories_[0]
        scaler = prep.named_transformers_["numbers"]
        rows = [(f"source: {s}", "this source", float(np.exp(c))) for s, c in zip(sources, coefs[: len(sources)])]
        for i, (name, label) in enumerate((("log_amount", "deal size"), ("age_days", "days open"))):
            factor = float(np.exp(scaler.scale_[i]))
            rows.append((label, f"× {factor:.1f}", float(np.exp(coefs[len(sources) + i]))))
        frame = pd.DataFrame(rows, columns=["input", "step", "odds_ratio"])
        frame["reading"] = [
            f"odds of winning × {v:.2f}" if v >= 1 else f"odds of winning cut by {100 * (1 - v):.0f}%"
            for v in frame["odds_ratio"]
        ]
        return frame


MIN_CLOSED_DEALS = 20


@dataclass
class LeadBacktest:
    """Lead scoring judged on the most recently closed deals, and the model refitted on all closed ones.

    ``metrics``: one row per check (time-ordered hold-out, 5-fold cross-validation): deals,
    win rate, ROC AUC. ``model``: fitted on every closed deal (None with a ``note`` when too few).
    """

    metrics: pd.DataFrame
    model: LeadScorer | None
    note: str = ""

    def odds_ratios(self) -> pd.DataFrame:
        """:meth:`LeadScorer.odds_ratios` of the fitted model (an empty table without one)."""
        if self.model is None:
            return pd.DataFrame(columns=["input", "step", "odds_ratio", "reading"])
        return self.model.odds_ratios()


def lead_backtest(opps: pd.DataFrame, *, test_share: float = 0.3, random_state: int = 0) -> LeadBacktest:
    """Hold out the last ``test_share`` of closed deals by closing date, train on the earlier ones.

    Beside it, a seeded 5-fold stratified cross-validation over all closed deals (steadier with
    few deals). Returns :class:`LeadBacktest`; never raises for small data (see ``note``).
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    closed = opps.loc[opps["status"] != "open"].sort_values(["closed_at", "opportunity_id"])
    y = closed["won"].astype(int)
    if len(closed) < MIN_CLOSED_DEALS or y.nunique() < 2 or y.value_counts().min() < 5:
        return LeadBacktest(pd.DataFrame(), None, f"No lead scoring: {len(closed)} closed deals "
                            f"({int(y.sum())} won); it needs at least {MIN_CLOSED_DEALS}, with 5 won and 5 lost.")
    n_train = int(round(len(closed) * (1 - test_share)))
    train, test = closed.iloc[:n_train], closed.iloc[n_train:]
    rows = []
    if train["won"].nunique() == 2 and test["won"].nunique() == 2:
        p = LeadScorer(random_state=random_state).fit(train).predict_proba(test)
        rows.append({"check": f"later {len(test)} deals (closed from {test['closed_at'].min():%Y-%m-%d})",
                     "deals": len(test), "win rate": float(test["won"].mean()),
                     "ROC AUC": float(roc_auc_score(test["won"].astype(int), p))})
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=random_state)
    scorer = LeadScorer(random_state=random_state)
    oof = np.zeros(len(closed))
    for fit_idx, test_idx in folds.split(closed, y):
        oof[test_idx] = scorer.fit(closed.iloc[fit_idx]).predict_proba(closed.iloc[test_idx]).to_numpy()
    rows.append({"check": "5-fold cross-validation, all closed deals", "deals": len(closed),
                 "win rate": float(y.mean()), "ROC AUC": float(roc_auc_score(y, oof))})
    return LeadBacktest(pd.DataFrame(rows), LeadScorer(random_state=random_state).fit(closed))


def open_pipeline(opps: pd.DataFrame, model: LeadScorer | None) -> pd.DataFrame:
    """Open deals with the model's win probability and expected value (probability × amount).

    Columns: opportunity_id, customer_id, title, source, stage, amount, probability (yours),
    win_probability, expected_value, age_days, idle_days; highest expected value first.
    """
    open_ = opps.loc[opps["status"] == "open"].copy()
    open_["win_probability"] = model.predict_proba(open_) if model is not None else np.nan
    open_["expected_value"] = open_["win_probability"] * open_["amount"].astype("float64")
    cols = ["opportunity_id", "customer_id", "title", "source", "stage", "amount", "probability",
            "win_probability", "expected_value", "age_days", "idle_days"]
    return open_.sort_values(["expected_value", "opportunity_id"], ascending=[False, True])[cols].reset_index(drop=True)


def pipeline_value(pipeline: pd.DataFrame) -> pd.DataFrame:
    """One-row summary: open deals, total amount, expected value by the model and by your own estimates."""
    amount = pipeline["amount"].astype("float64")
    return pd.DataFrame([{
        "open deals": len(pipeline),
        "total amount": float(amount.sum()),
        "expected value (model)": float(pipeline["expected_value"].sum(min_count=1)) if len(pipeline) else 0.0,
        "expected value (your estimates)": float((amount * pipeline["probability"].astype("float64")).sum()),
    }])


# -- follow-up queue -------------------------------------------------------------------------

REASON_LABELS = {"complaint": "open complaint ticket", "detractor": "recent detractor answer",
                 "churn": "valuable, churn risk rising", "stale": "idle open deal",
                 "no_contact": "valuable, not contacted lately"}

QUEUE_COLUMNS = ["customer_id", "name", "email", "reasons", "last_order", "last_contact", "priority",
                 "value_score", "churn_probability"]
"""Columns of the follow-up queue (and of its CSV file)."""

REASON_WEIGHTS = {"complaint": 4.0, "detractor": 3.0, "churn": 3.0, "stale": 3.0, "no_contact": 1.0}
"""How much each reason adds to a person's priority; the value score (0–100) adds up to 1 more."""


@dataclass
class FollowUpQueue:
    """The queue (``table``, columns :data:`QUEUE_COLUMNS`, most urgent first), how many people have
    at least one reason (``candidates``), and people per reason (``by_reason``: reason, people)."""

    table: pd.DataFrame
    candidates: int
    by_reason: pd.DataFrame

    @property
    def note(self) -> str:
        """A plain sentence on the queue's size, for the headline."""
        if self.candidates == 0:
            return "nobody needs a follow-up"
        return f"the {len(self.table)} most urgent are listed"


def follow_up_queue(
    db: Database,
    as_of: dt.date | str,
    scored: pd.DataFrame,
    pipeline: pd.DataFrame,
    *,
    top_n: int = 20,
    valuable_score: float = 70.0,
    rising_by: float = 0.10,
    risk_threshold: float = 0.5,
    no_contact_days: int = 60,
    detractor_days: int = 90,
    stale_days: int = 30,
) -> FollowUpQueue:
    """The ``top_n`` people to contact this week, each with its reasons in words (see :class:`FollowUpQueue`).

    Reasons: an open complaint ticket; a detractor answer (NPS 0–6) in the last ``detractor_days``;
    a valuable customer (value score ≥ ``valuable_score``) whose churn risk is at least
    ``risk_threshold`` and rose by ``rising_by`` or more since the previous scoring; a valuable
    customer not contacted for more than ``no_contact_days`` (or never); an open deal idle for
    more than ``stale_days``. Priority = the sum of :data:`REASON_WEIGHTS` of the reasons plus the
    larger of value score / 100 and the size of the person's largest idle deal as a percentile of
    the idle deals (0–1); ties go by customer_id. ``scored`` is :func:`score_customers`,
    ``pipeline`` is :func:`open_pipeline`. Names, e-mails and last contacts are looked up for the
    listed people only.
    """
    day = pd.Timestamp(as_date(as_of))
    s = scored.set_index("customer_id")
    valuable = s["value_score"].fillna(0) >= valuable_score
    reasons: list[pd.DataFrame] = []

    def add(mask: pd.Series, kind: str, text: pd.Series) -> None:
        if mask.any():
            reasons.append(pd.DataFrame({"customer_id": mask.index[mask], "kind": kind, "text": text[mask].to_numpy()}))

    add(s["open_complaints"] > 0, "complaint",
        s["open_complaints"].map(lambda n: "open complaint ticket" if n == 1 else f"{n} open complaint tickets"))
    recent_nps = s["last_nps_date"].notna() & ((day - s["last_nps_date"]).dt.days <= detractor_days)
    add(recent_nps & (s["last_nps"].fillna(10) <= 6), "detractor",
        "detractor: NPS " + s["last_nps"].astype("string").fillna("") + " on "
        + s["last_nps_date"].dt.strftime("%Y-%m-%d"))
    now, before = s["churn_probability"], s["churn_probability_prev"]
    rising = valuable & (now >= risk_threshold) & ((now - before.fillna(now)) >= rising_by)
    add(rising.fillna(False), "churn",
        "valuable (score " + _whole(s["value_score"]) + "), churn risk up from " + _whole(100 * before) + "% to "
        + _whole(100 * now) + "%")
    silent = valuable & (s["days_since_contact"].isna() | (s["days_since_contact"] > no_contact_days))
    add(silent, "no_contact", s["days_since_contact"].map(
        lambda d: "valuable, never contacted" if pd.isna(d) else f"valuable, no contact for {int(d)} days"))
    stale = pipeline.loc[pipeline["idle_days"] > stale_days]
    if len(stale):
        amount = stale["amount"].astype("float64").fillna(0).map(lambda v: f"{v:,.0f}")
        chance = stale["win_probability"].map(lambda p: "" if pd.isna(p) else f", {100 * p:.0f}% win chance")
        text = ("open deal '" + stale["title"].fillna("untitled").astype(str) + "' (" + amount + chance
                + ") idle for " + stale["idle_days"].astype(int).astype(str) + " days")
        reasons.append(pd.DataFrame({"customer_id": stale["customer_id"].to_numpy(), "kind": "stale",
                                     "text": text.to_numpy(),
                                     "deal": _percentile(stale["amount"].fillna(0)).to_numpy()}))
    if not reasons:
        nobody = pd.DataFrame(columns=["customer_id", "kind"])
        return FollowUpQueue(pd.DataFrame(columns=QUEUE_COLUMNS), 0, _reason_counts(nobody))
    long = pd.concat(reasons, ignore_index=True)
    long["weight"] = long["kind"].map(REASON_WEIGHTS)
    per_person = long.drop_duplicates(["customer_id", "kind"]).groupby("customer_id")["weight"].sum()
    queue = per_person.rename("priority").to_frame()
    queue["value_score"] = s["value_score"].reindex(queue.index)
    deal = long.groupby("customer_id")["deal"].max().reindex(queue.index) if "deal" in long else 0.0
    queue["priority"] += np.fmax(queue["value_score"].fillna(0) / 100, pd.Series(deal, index=queue.index).fillna(0))
    candidates = len(queue)
    queue = queue.reset_index().sort_values(["priority", "customer_id"], ascending=[False, True]).head(top_n)
    words = long.loc[long["customer_id"].isin(queue["customer_id"])].sort_values(["customer_id", "weight"],
                                                                                 ascending=[True, False])
    queue["reasons"] = queue["customer_id"].map(words.groupby("customer_id")["text"].agg("; ".join))
    queue["churn_probability"] = s["churn_probability"].reindex(queue["customer_id"]).to_numpy()
    queue["last_order"] = s["last_order"].reindex(queue["customer_id"]).dt.strftime("%Y-%m-%d").to_numpy()
    queue = queue.merge(_contacts(db, queue["customer_id"].tolist(), day), on="customer_id", how="left")
    queue = queue.round({"priority": 2, "value_score": 1, "churn_probability": 3})
    return FollowUpQueue(queue[QUEUE_COLUMNS].reset_index(drop=True), candidates, _reason_counts(long))


def _whole(values: pd.Series) -> pd.Series:
    """Numbers rounded to whole numbers, as text (empty where missing)."""
    return values.round().astype("Int64").astype("string").fillna("")


def _reason_counts(long: pd.DataFrame) -> pd.DataFrame:
    people = long.drop_duplicates(["customer_id", "kind"])["kind"].value_counts()
    return pd.DataFrame({"reason": list(REASON_LABELS.values()),
                         "people": [int(people.get(k, 0)) for k in REASON_LABELS]})


def _contacts(db: Database, ids: list[str], day: pd.Timestamp) -> pd.DataFrame:
    """Name, e-mail and last logged interaction (up to ``day``) of the given customers."""
    if not ids:
        return pd.DataFrame(columns=["customer_id", "name", "email", "last_contact"])
    placeholders = ",".join("?" * len(ids))
    next_day = (day + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    frame = query_df(
        db,
        f"SELECT c.customer_id, c.name, c.email, (SELECT MAX(occurred_at) FROM interactions i "
        f"WHERE i.customer_id = c.customer_id AND i.occurred_at < ?) AS last_contact "
        f"FROM customers c WHERE c.customer_id IN ({placeholders})",
        [next_day, *ids],
    )
    frame["last_contact"] = frame["last_contact"].fillna("").astype(str).str[:10]
    return frame


FOLLOW_UP_FILE = "follow_up_queue.csv"
"""The queue's file in the report folder (the index shows the queue from the notebook's record)."""


def write_follow_up(queue: pd.DataFrame, output_dir: str | os.PathLike[str]) -> Path | None:
    """Write the queue as ``follow_up_queue.csv`` into ``output_dir`` (nothing when blank); returns the path.

    Written with :func:`crm_helpers.safe_csv.write_safe_csv` (formulas neutralized, owner-only).
    """
    if not str(output_dir).strip():
        return None
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return write_safe_csv(queue, folder / FOLLOW_UP_FILE)


# -- plots -----------------------------------------------------------------------------------

def plot_purchases(loyalty: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bars: buyers by number of purchases (from :func:`loyalty_table`), 10 and more grouped."""
    import seaborn as sns

    ax = get_axes(ax)
    if loyalty.empty:
        return empty_axes(ax, "no buyers yet")
    counts = loyalty["purchases"].clip(upper=10).value_counts().sort_index()
    labels = [str(k) if k < 10 else "10+" for k in counts.index]
    frame = pd.DataFrame({"purchases": labels, "buyers": counts.to_numpy()})
    sns.barplot(data=frame, x="purchases", y="buyers", color="#3b8ea5", ax=ax)
    ax.set(title="Buyers by number of paid orders (loyalty = 1 − 1/orders)", xlabel="paid orders", ylabel="buyers")
    return ax


def plot_calibration(calibration: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Predicted against observed churn per group of customers, one line per model, with the diagonal."""
    import seaborn as sns

    ax = get_axes(ax)
    if calibration.empty:
        return empty_axes(ax, "no churn model to check")
    ax.plot([0, 1], [0, 1], color="#9aa5b1", linestyle="--", linewidth=1, label="perfect calibration")
    sns.lineplot(data=calibration, x="predicted", y="observed", hue="model", marker="o", ax=ax)
    ax.set(title="Predicted and actual churn on the later snapshot", xlabel="predicted probability of leaving",
           ylabel="share who actually left", xlim=(0, 1), ylim=(0, 1))
    return ax


def plot_value_risk(scored: pd.DataFrame, *, valuable_score: float = 70.0, risk_threshold: float = 0.5,
                    ax: Axes | None = None) -> Axes:
    """Scatter of value score against churn probability, the follow-up corner marked by lines."""
    import seaborn as sns

    ax = get_axes(ax)
    if scored.empty or scored["churn_probability"].isna().all():
        return empty_axes(ax, "no churn probabilities to show")
    sns.scatterplot(data=scored, x="value_score", y="churn_probability", s=14, color="#3b8ea5", alpha=0.6, ax=ax)
    ax.axvline(valuable_score, color="#b42318", linestyle="--", linewidth=1)
    ax.axhline(risk_threshold, color="#b42318", linestyle="--", linewidth=1)
    ax.set(title="Value and risk of leaving (top right: act first)", xlabel="value score (0–100)",
           ylabel="probability of no order in the horizon")
    return ax
