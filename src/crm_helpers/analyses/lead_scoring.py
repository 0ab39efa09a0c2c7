"""Lead scoring: the win probability of open opportunities, learned from the decided ones.

A logistic regression on source, deal size and age (scikit-learn), judged on the most recently
decided deals and by cross-validation, then used to weigh the open pipeline. Opportunities, their
status at a day (won, lost or open, :func:`crm_helpers.store.facts.deal_status_at`) and their ages come
from :func:`crm_helpers.analyses.sales.opportunities_as_of`, the one reading of the opportunities table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.facts import deal_overdue
from crm_helpers.store.periods import Period
from crm_helpers.store.queries import memoized, store_currency
from crm_helpers.i18n import t
from crm_helpers.store.values import Action, money_whole
from crm_helpers.analyses.sales import OVERDUE_ATTENTION, opportunities_as_of
from crm_helpers.analyses.scoring import ScoringError


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
        """Fit on decided opportunities (rows of :func:`~crm_helpers.analyses.sales.opportunities_as_of` with ``won`` 0/1)."""
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
        rows = [(t("source: {source}", source=t(s)), "this source", float(np.exp(c)))
                for s, c in zip(sources, coefs[: len(sources)])]
        for i, (name, label) in enumerate((("log_amount", "deal size"), ("age_days", "days open"))):
            factor = float(np.exp(scaler.scale_[i]))
            rows.append((label, f"× {factor:.1f}", float(np.exp(coefs[len(sources) + i]))))
        frame = pd.DataFrame(rows, columns=["input", "step", "odds_ratio"])
        frame["reading"] = [
            t("odds of winning × {ratio}", ratio=f"{v:.2f}") if v >= 1
            else t("odds of winning cut by {pct}%", pct=f"{100 * (1 - v):.0f}")
            for v in frame["odds_ratio"]
        ]
        return frame


MIN_CLOSED_DEALS = 20


@dataclass
class LeadBacktest:
    """Lead scoring judged on the most recently closed deals, and the model refitted on all closed ones.

    ``metrics``: one row per check (time-ordered hold-out, 5-fold cross-validation): deals,
    win rate, ROC AUC. ``model``: fitted on every closed deal (None when too few: ``ok`` is False
    and ``message`` says why).
    """

    metrics: pd.DataFrame
    model: LeadScorer | None
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when a model was fitted (else :attr:`message` says why not)."""
        return self.model is not None

    def odds_ratios(self) -> pd.DataFrame:
        """:meth:`LeadScorer.odds_ratios` of the fitted model (an empty table without one)."""
        if self.model is None:
            return pd.DataFrame(columns=["input", "step", "odds_ratio", "reading"])
        return self.model.odds_ratios()


def lead_backtest(opps: pd.DataFrame, *, test_share: float = 0.3, random_state: int = 0) -> LeadBacktest:
    """Hold out the last ``test_share`` of closed deals by closing date, train on the earlier ones.

    Beside it, a seeded 5-fold stratified cross-validation over all closed deals (steadier with
    few deals). Returns :class:`LeadBacktest`; never raises for small data (see ``ok`` and ``message``).
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    closed = opps.loc[opps["status_at"] != "open"].sort_values(["closed_at", "opportunity_id"])
    y = closed["won"].astype(int)
    if len(closed) < MIN_CLOSED_DEALS or y.nunique() < 2 or y.value_counts().min() < 5:
        return LeadBacktest(pd.DataFrame(), None, f"No lead scoring: {len(closed)} closed deals "
                            f"({int(y.sum())} won); it needs at least {MIN_CLOSED_DEALS}, with 5 won and 5 lost.")
    n_train = int(round(len(closed) * (1 - test_share)))
    train, test = closed.iloc[:n_train], closed.iloc[n_train:]
    rows = []
    if train["won"].nunique() == 2 and test["won"].nunique() == 2:
        p = LeadScorer(random_state=random_state).fit(train).predict_proba(test)
        rows.append({"check": t("later {count} deals (closed from {day})", count=len(test),
                                 day=f"{test['closed_at'].min():%Y-%m-%d}"),
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


@memoized
def lead_backtest_as_of(db: Database, as_of: dt.date, *, test_share: float = 0.3, random_state: int = 0) -> LeadBacktest:
    """:func:`lead_backtest` of the opportunities opened up to ``as_of``
    (:func:`~crm_helpers.analyses.sales.opportunities_as_of`). Memoized
    (:func:`~crm_helpers.store.queries.memoized`): page 03 and the follow-up headline share one
    backtest, treat it as read-only."""
    return lead_backtest(opportunities_as_of(db, as_of), test_share=test_share, random_state=random_state)


def open_pipeline(opps: pd.DataFrame, model: LeadScorer | None) -> pd.DataFrame:
    """Open deals with the model's win probability and expected value (probability × amount).

    Columns: opportunity_id, customer_id, title, source, stage, amount, probability (yours),
    win_probability, expected_value, age_days, days_since_activity; highest expected value first.
    """
    open_ = opps.loc[opps["status_at"] == "open"].copy()
    open_["win_probability"] = model.predict_proba(open_) if model is not None else np.nan
    open_["expected_value"] = open_["win_probability"] * open_["amount"].astype("float64")
    cols = ["opportunity_id", "customer_id", "title", "source", "stage", "amount", "probability",
            "win_probability", "expected_value", "age_days", "days_since_activity"]
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


def actions(db: Database, *, period: Period, random_state: int = 0) -> list[Action]:
    """Update or close the deals open at ``period``'s end and past their expected close date
    (:func:`~crm_helpers.store.facts.deal_overdue`), with the model's chance to win beside your own
    (the recorded ``probability``, or the stage's default).

    Money at stake (store currency) = the model's expected value of those deals (Σ amount × the
    model's win probability, :func:`lead_backtest_as_of` with ``random_state``); without a model,
    your own estimates' (Σ amount × your probability), and the sentence says so. No range.
    """
    opps = opportunities_as_of(db, period.end)
    overdue = opps.loc[deal_overdue(opps["status_at"], opps["expected_close"], as_of=period.end)]
    if overdue.empty:
        return []
    currency = store_currency(db)
    amount = overdue["amount"].astype("float64")
    yours = float((amount * overdue["win_probability"].astype("float64")).sum())
    total = float(amount.sum())
    fields = dict(count=f"{len(overdue):,}", total=money_whole(total, currency),
                  chance=f"{yours / total * 100:.0f}" if total else "", yours=money_whole(yours, currency))
    model = lead_backtest_as_of(db, period.end, random_state=random_state).model
    if model is None or not total:
        said = (t("Update the expected close dates of the {count} deals past them, or close them as lost ({total} in "
                  "all): your stage estimates give them a {chance} % chance to win ({yours}); there are too few "
                  "closed deals for a model to check them.", **fields) if total else
                t("Update or close the {count} deals past their expected close date; there are too few closed "
                  "deals for a model to check them.", **fields))
        return [Action("overdue deals", said,
                       yours, currency=currency, page="06_sales_and_forecast",
                       section="What the pipeline should bring, month by month", replaces=OVERDUE_ATTENTION)]
    expected = float((amount * model.predict_proba(overdue)).sum())
    fields.update(model_chance=f"{expected / total * 100:.0f}", expected=money_whole(expected, currency))
    return [Action(
        "overdue deals",
        t("Update the expected close dates of the {count} deals past them, or close them as lost ({total} in all): "
          "your stage estimates give them a {chance} % chance to win ({yours}), the model learned from your closed "
          "deals {model_chance} % ({expected}); plan with the model's figure.", **fields) if expected < yours else
        t("Update the expected close dates of the {count} deals past them, or close them as lost ({total} in all): "
          "your stage estimates give them a {chance} % chance to win ({yours}), the model learned from your closed "
          "deals {model_chance} % ({expected}); the model is not more cautious than you.", **fields),
        expected, currency=currency, page="03_scoring", section="The open pipeline and its expected value",
        replaces=OVERDUE_ATTENTION)]
