"""What an action is worth: the planner behind ``notebooks/07_plan.ipynb`` and ``crm plan``.

Three levers, each valued with the models the pack already uses, as extra **revenue** (net of
refunds, paid orders only, in the store's currency, not discounted) over the next
``horizon_months``, with an 80 % range from simulating the same models:

* win back a share of the customers probably lost (:func:`crm_helpers.analyses.clv.win_back_group`, the group the index's win-back action names);
* raise the repeat rate by some points: more of this period's first-time buyers buy a second time
  (the repeat rule of :func:`crm_helpers.store.facts.buyer_repeats`);
* stop a campaign: its cost saved minus the extra revenue it measurably brought
  (:func:`crm_helpers.analyses.romi.incremental_revenue`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.analyses import clv, romi
from crm_helpers.errors import CrmError
from crm_helpers.store.facts import buyer_repeats, iso, on_or_before
from crm_helpers.store.queries import query_df, store_currency
from crm_helpers.store.periods import Period
from crm_helpers.i18n import t
from crm_helpers.store.values import Action, money, money_span

RANGE = 0.80
"""Share of simulated outcomes inside the stated range (10th to 90th percentile)."""


class PlanError(CrmError, ValueError):
    """A lever set outside what it can mean (a share above 100 %, an unknown campaign)."""


@dataclass
class PlanEffect:
    """The effect of the levers together: ``effect`` (expected extra money over ``horizon_months``,
    in ``currency``; for a stopped campaign, cost saved minus the extra revenue it brought), ``low``
    and ``high`` its 80 % range, ``sentence`` one plain sentence per lever, ``parts`` one row per lever
    (lever, effect, low, high), ``customers`` the people the win-back lever is about (name,
    p_alive, purchases_if_back: expected purchases of the horizon if still a customer,
    expected_average_value: per purchase, value_if_back: the two multiplied, revenue_to_date).
    ``message`` says why nothing could be computed ("" when fine)."""

    effect: float
    low: float
    high: float
    currency: str
    horizon_months: int
    sentence: str = ""
    message: str = ""
    parts: pd.DataFrame = field(default_factory=pd.DataFrame)
    customers: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def ok(self) -> bool:
        """True when every lever asked for could be valued."""
        return not self.message


def _range(draws: np.ndarray) -> tuple[float, float]:
    tail = (1 - RANGE) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return float(low), float(high)


def simulate_win_back(chance_gone: np.ndarray, purchases_if_back: np.ndarray, *, order_value: np.ndarray,
                      share: float, order_shape: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Simulated extra revenue of winning back ``share`` (0–1) of a group, ``draws`` outcomes.

    Per customer and draw: the customer is won back (chance ``share``) and had in fact left
    (chance ``chance_gone``, 1 − P(alive)); such a customer then makes Poisson(``purchases_if_back``)
    purchases, each worth a Gamma draw with mean ``order_value`` and shape ``order_shape`` (the
    Gamma-Gamma model's p: the spread of one customer's orders). A customer who had not left
    brings nothing extra. Money in the unit of ``order_value``.
    """
    n = len(chance_gone)
    back = rng.random((draws, n)) < share * chance_gone
    orders = rng.poisson(np.broadcast_to(purchases_if_back, (draws, n))) * back
    revenue = rng.gamma(np.maximum(orders * order_shape, 1e-12), order_value / order_shape) * (orders > 0)
    return revenue.sum(axis=1)


def _win_back(db: Database, as_of: dt.date, share: float, horizon_months: int, draws: int,
              rng: np.random.Generator) -> tuple[str, float, np.ndarray, pd.DataFrame, str]:
    group = clv.win_back_group(db, as_of, horizon_months=horizon_months)
    if not group.ok:
        return "", math.nan, np.array([]), pd.DataFrame(), group.message
    lost, analysis = group.lost, group.analysis
    p_alive = lost["p_alive"].clip(lower=1e-3).to_numpy()
    purchases_if_back = lost["expected_purchases"].to_numpy() / p_alive  # E[purchases | still a customer]
    order_value = lost["expected_average_value"].to_numpy(dtype=float)
    shape = float(analysis.spend_model.params_["p"]) if analysis.spend_model is not None else 1.0
    point = float((share * (1 - p_alive) * purchases_if_back * order_value).sum())
    simulated = simulate_win_back(1 - p_alive, purchases_if_back, order_value=order_value, share=share,
                                  order_shape=shape, draws=draws, rng=rng)
    table = lost.assign(purchases_if_back=purchases_if_back, value_if_back=purchases_if_back * order_value)[
        ["name", "p_alive", "purchases_if_back", "expected_average_value", "value_if_back", "revenue_to_date"]
    ].sort_values("value_if_back", ascending=False)
    label = t("Winning back {share} % of the {count} customers probably lost", share=f"{share * 100:g}",
              count=f"{len(lost):,}")
    return label, point, simulated, table, ""


def _repeat(db: Database, as_of: dt.date, since: dt.date, points: float, draws: int,
            rng: np.random.Generator) -> tuple[str, float, np.ndarray, str]:
    buyers = buyer_repeats(db, as_of)
    first = pd.to_datetime(buyers["first_day"])
    newcomers = int(((first >= pd.Timestamp(since)) & on_or_before(first, as_of)).sum())
    days = clv.paid_purchase_days(db, as_of)
    first_day = days.groupby("customer_id")["order_date"].transform("min").dt.normalize()
    values = days.loc[days["order_date"].dt.normalize() > first_day, "amount"].to_numpy(dtype=float)
    if newcomers == 0 or len(values) == 0:
        why = "no first-time buyers in the period" if newcomers == 0 else "no repeat purchase in the store yet"
        return "", math.nan, np.array([]), f"The repeat rate lever cannot be valued: {why}."
    share = points / 100
    point = share * newcomers * float(values.mean())
    extra = rng.binomial(newcomers, share, size=draws)
    width = max(int(extra.max()), 1)
    picked = rng.choice(values, size=(draws, width)) * (np.arange(width) < extra[:, None])
    label = (f"Raising the repeat rate by {points:g} points ({points:g} % more of the {newcomers:,} "
             f"first-time buyers of {since:%Y-%m-%d} to {as_of:%Y-%m-%d} buying again)")
    return label, point, picked.sum(axis=1), ""


def _stop(db: Database, as_of: dt.date, campaign: str, draws: int,
          rng: np.random.Generator) -> tuple[str, float, np.ndarray, str]:
    found = query_df(db, "SELECT campaign_id, name, coalesce(cost, 0) AS cost FROM campaigns "
                         "WHERE campaign_id = ? OR lower(name) = lower(?)", params=[campaign, campaign])
    if found.empty:
        names = query_df(db, "SELECT name FROM campaigns ORDER BY name")["name"].tolist()
        raise PlanError(f"No campaign is called {campaign!r}; the store's campaigns are: {', '.join(names)}.")
    row = found.iloc[0]
    lift = romi.incremental_revenue(db, row["campaign_id"], as_of=as_of, n_boot=draws, confidence=RANGE)
    if lift["incremental_revenue"] is None:
        return "", math.nan, np.array([]), f"The extra revenue of {row['name']} cannot be measured: {lift['note']}."
    gained = float(lift["incremental_revenue"])
    # the bootstrap's own range, turned into draws of the same spread so levers can be added up; a
    # campaign is not taken to have cost sales: what is lost by stopping it is never below zero, so
    # stopping never saves more than the campaign's cost
    spread = (float(lift["ci_high"]) - float(lift["ci_low"])) / (2 * 1.2816)
    simulated = float(row["cost"]) - np.maximum(rng.normal(gained, spread, size=draws), 0.0)
    measured = (t("extra revenue measured {money}", money=f"{gained:,.0f}") if gained > 0
                else t("no extra revenue measured"))
    label = t("Stopping {name} (cost {cost}, {measured})", name=row["name"], cost=f"{float(row['cost']):,.0f}",
              measured=measured)
    return label, float(row["cost"]) - max(gained, 0.0), simulated, ""


def plan_effect(db: Database, *, as_of: dt.date | str, since: dt.date | str | None = None, win_back: float = 0.0,
                repeat_points: float = 0.0, stop_campaign: str | None = None, horizon_months: int = 12,
                draws: int = 4000, random_state: int = 0) -> PlanEffect:
    """The effect of the levers over the ``horizon_months`` after ``as_of``, with an 80 % range.

    ``win_back``: share (0–1) of the customers probably lost who come back and buy like active
    customers (each valued by the purchase and Gamma-Gamma models); ``repeat_points``: percentage
    points added to the share of the first-time buyers of ``since``–``as_of`` (default: the calendar
    month of ``as_of``) who buy a second time, each worth a repeat order of the store's (net revenue);
    ``stop_campaign``: a campaign's id or name, whose cost is saved and whose measured extra revenue
    is lost. Levers left at 0 / None count nothing; the levers' simulated outcomes are added draw by
    draw. Money in the store's currency. Bad levers raise :class:`PlanError`.
    """
    as_of = dt.date.fromisoformat(iso(as_of))
    since = as_of.replace(day=1) if since is None else dt.date.fromisoformat(iso(since))
    if not 0 <= win_back <= 1:
        raise PlanError(f"The win-back share must be between 0 % and 100 %, not {win_back * 100:g} %.")
    if not 0 <= repeat_points <= 100:
        raise PlanError(f"The repeat rate can rise by 0 to 100 points, not {repeat_points:g}.")
    currency = store_currency(db)
    rng = np.random.default_rng(random_state)
    total = np.zeros(draws)
    rows, sentences, problems = [], [], []
    customers = pd.DataFrame()
    parts: list[tuple[str, float, np.ndarray, str]] = []
    if win_back > 0:
        label, point, simulated, customers, problem = _win_back(db, as_of, win_back, horizon_months, draws, rng)
        parts.append((label, point, simulated, problem))
    if repeat_points > 0:
        parts.append(_repeat(db, as_of, since, repeat_points, draws, rng))
    if stop_campaign:
        parts.append(_stop(db, as_of, stop_campaign, draws, rng))
    for label, point, simulated, problem in parts:
        if problem:
            problems.append(problem)
            continue
        low, high = _range(simulated)
        total += simulated
        rows.append({"lever": label, "effect": point, "low": low, "high": high})
        sentences.append(t("{lever}: about {money} over the next {months} months (80 % range {range}).",
                           lever=label, money=money(point, currency, signed=True), months=horizon_months,
                           range=money_span(low, high, currency=currency, signed=True)))
    effect = float(sum(row["effect"] for row in rows))
    low, high = _range(total) if rows else (0.0, 0.0)
    if not parts:
        sentences.append(t("No lever is set: set a win-back share, repeat-rate points or a campaign to stop."))
    return PlanEffect(effect, low, high, currency, horizon_months, sentence=" ".join(sentences + problems),
                      message="; ".join(problems), parts=pd.DataFrame(rows, columns=["lever", "effect", "low", "high"]),
                      customers=customers)


PLANNER_PAGE = "07_plan"
"""The planner's page in the pack; rendered with its default levers (:data:`DEFAULT_WIN_BACK`)."""
DEFAULT_WIN_BACK = 0.10
"""The share of the probably lost the planner's page values by default (its ``win_back`` parameter)."""


def with_what_if(db: Database, actions: list[Action], *, period: Period) -> list[Action]:
    """``actions`` with the planner's numbers filled in where it values them: the win-back action
    (clv's ``"win back probably lost"``) gets what winning back :data:`DEFAULT_WIN_BACK` of them is
    worth over the next 12 months and its 80 % range, as page 07 shows it; a "stop campaign" action
    (romi's) what stopping that campaign is worth (`crm plan --stop-campaign ID`)."""
    out = []
    for action in actions:
        plan = None
        if action.key == "win back probably lost":
            plan = plan_effect(db, as_of=period.end, since=period.start, win_back=DEFAULT_WIN_BACK)
        elif action.key.startswith(romi.STOP_CAMPAIGN_KEY):
            plan = plan_effect(db, as_of=period.end, since=period.start,
                               stop_campaign=action.key.removeprefix(romi.STOP_CAMPAIGN_KEY))
        if plan is not None and plan.ok and plan.sentence:
            action = replace(action, what_if=plan.sentence, what_if_page=PLANNER_PAGE)
        out.append(action)
    return out
