"""The sentences of the pages: what a notebook says in words, built from what an analysis returned.

An analysis returns numbers, tables and value objects; the paragraph a page shows about them
(Markdown with its bold lead, or a plain printed line) is written here, one function per kind of
sentence. A section whose analysis can refuse (too few answers, nobody on the list) is a
:class:`Finding`: the sentence, or a plain note saying why there is none, and the table behind it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crm_helpers.analyses.followup import FOLLOW_UP_FILE, LOOKBACK_DAYS, FollowUpQueue
from crm_helpers.analyses.satisfaction import (
    CommentThemes,
    KeyDriverAnalysis,
    KeyDrivers,
    format_measure,
    nps_interval,
)
from crm_helpers.store.values import span

if TYPE_CHECKING:
    from crm_helpers.analyses.clv import HoldoutValidation
    from crm_helpers.analyses.rhythm import PurchaseRhythm


@dataclass(frozen=True)
class Finding:
    """A notebook section's result: ``message``, one or two sentences (Markdown), and the ``table``
    behind them. ``ok`` is False when the analysis produced no result (too few answers or comments):
    then ``message`` says why and ``table`` is empty, with its columns. An empty list (nobody to
    call) is a result: ``ok`` stays True."""

    message: str
    table: pd.DataFrame
    ok: bool = True


# -- page 03, scoring ------------------------------------------------------------------------------


def stake_meaning(queue: FollowUpQueue) -> str:
    """The call list's count and what its money at stake means, in plain Markdown, for the page
    that shows ``queue`` (:func:`~crm_helpers.analyses.followup.follow_up_queue`)."""
    unit = queue.currency or "the store's currency"
    if not queue.anyone_to_follow_up:
        return ("**Nobody to follow up**: every complaint, detractor answer, lapse and idle deal has been followed "
                "by a logged contact, or there is none.")
    return (f"**{queue.candidates} {'person' if queue.candidates == 1 else 'people'} to follow up**, all written to "
            f"`{FOLLOW_UP_FILE}`; the index shows the first {len(queue.top)}. A person is listed once something "
            "happens (a complaint, a detractor answer, a top spender's lapse, a slide into Can't Lose Them, a rising "
            "risk of leaving, a long silence, an idle deal) and leaves the list as soon as you log a contact with "
            f"them after it. **Money at stake ({unit} a year)** orders the list: the customer's yearly value (their "
            "net revenue per year as a customer) times their chance of leaving (the churn model's chance of no paid "
            "order in its horizon, above; for an unhappy customer, whom the model cannot see answering, at least the "
            "share of your past unhappy customers with as many orders who then stopped buying), or "
            "the expected value of their idle deal when that is larger; it is blank when there is no churn model.")


# -- page 04, customer value -----------------------------------------------------------------------


def holdout_error(validation: HoldoutValidation) -> str:
    """How far the chosen model's past prediction was off, in one plain sentence."""
    row = validation.aggregate.loc[validation.chosen]
    error = validation.error()
    direction = "too many" if error > 0 else "too few"
    return (f"Asked to predict the last {validation.holdout_days} days from the history before them, the chosen "
            f"model ({validation.chosen}) expected {row['predicted_repeat_purchases']:,.0f} repeat purchases where "
            f"{row['actual_repeat_purchases']:,.0f} happened: {abs(error):.0%} {direction}.")


def model_choice(validation: HoldoutValidation) -> str:
    """How sure the choice of purchase model is, in plain sentences: how far the chosen model's
    holdout score is ahead of the runner-up's (``margin_z``, in standard errors of the customers'
    paired differences), at how many of the checks it was best, and how much the two models'
    predicted totals differ (what the choice changes)."""
    chosen, other = validation.chosen, validation.runner_up
    if not other:
        return f"Only {chosen} could be fitted, so there was no choice to make."
    z, a = validation.margin_z, validation.aggregate
    won, checks = int(a.loc[chosen, "origins_won"]), len(validation.origins)
    apart = a.loc[chosen, "predicted_repeat_purchases"] / a.loc[other, "predicted_repeat_purchases"] - 1
    steady = 2 * won > checks  # best at most of the checks, not only on their sum
    if z >= 2.5 and steady:
        how = f"{chosen} gave clearly more probability to what customers then did than {other}, the runner-up"
    elif z >= 1:
        how = (f"{chosen} gave more probability to what customers then did than {other}, the runner-up, "
               + ("but not by much: the choice is likely right but not certain" if steady else
                  "but not at most of the checks: the choice is uncertain"))
    else:
        how = (f"{chosen} and {other} foresaw what customers then did about equally well: the choice between them "
               "is close to a coin toss")
    return (f"How sure the choice is: {how} (best at {won} of {checks} check{'s' if checks != 1 else ''}). "
            f"Their predictions of the last held-out total differ by {abs(apart):.0%}, so the choice "
            f"{'matters little' if abs(apart) < 0.05 else 'matters'} for the values below.")


# -- page 05, satisfaction -------------------------------------------------------------------------


def month_summary(current: pd.Series, previous: pd.Series) -> str:
    """A Markdown paragraph on ``current`` (a row of
    :func:`~crm_helpers.analyses.satisfaction.period_scores`): how many answered, CSAT and NPS, or
    a plain "no responses" note naming ``previous``'s answers."""
    if current["responses"] == 0:
        before = f" The previous month had {previous['responses']:.0f} answers." if previous["responses"] else ""
        return (f"**No responses this month** ({current['label']}): nobody answered the survey, so CSAT, NPS "
                f"and the indexes for the period are blank.{before} The trend, the drivers and the comment "
                "themes below use the months before, where there are any.")
    text = (f"**{current['responses']:.0f} responses** in {current['label']}: "
            f"CSAT {format_measure(current['csat_pct'], 'pct')} ({current['csat_positive']:.0f} of "
            f"{current['csat_answers']:.0f} answered 4–5), mean overall score "
            f"{format_measure(current['csat_mean'], 'score')}, NPS {format_measure(current['nps'], 'nps')}")
    if np.isfinite(current["nps_ci_low"]):
        text += f" (95% interval {nps_interval(current)})"
    text += "."
    if current["small_sample"]:
        text += " **Small sample:** with this few answers a single answer moves the figures a lot."
    return text


def top_driver(model: KeyDriverAnalysis) -> str:
    """One Markdown sentence naming the top driver of a fitted ``model``, with its effect and the model's fit."""
    top = model.table_.iloc[0]
    outcome = "overall 1–5 score" if model.target == "csat" else "0–10 likelihood to recommend"
    agree = ("the random forest ranks it first too" if model.rf_top_driver_ == model.top_driver_
             else f"the random forest ranks **{model.rf_top_driver_}** first instead")
    return (f"**{model.top_driver_.capitalize()} is the top driver** of overall satisfaction: one point more "
            f"on the {model.top_driver_} score goes with {top['coefficient']:.2f} more on the {outcome} "
            f"(95% CI {span(format(top['ci_low'], '.2f'), format(top['ci_high'], '.2f'))}), the other "
            f"items held equal; {agree}. The four items explain {model.r_squared_:.0%} of the variation "
            f"(OLS R², {model.n_answers_} complete answers; forest out-of-bag R² {model.rf_oob_r_squared_:.0%}).")


def driver_report(drivers: KeyDrivers) -> Finding:
    """:func:`~crm_helpers.analyses.satisfaction.key_drivers` as a notebook section: the
    :func:`top_driver` sentence and the per-item table, or a plain note when there were too few answers."""
    if not drivers.ok:
        return Finding(f"**Not enough answers for a driver analysis:** {drivers.message}.", drivers.table, ok=False)
    return Finding(top_driver(drivers.model), drivers.table)


def theme_report(themes: CommentThemes) -> Finding:
    """:func:`~crm_helpers.analyses.satisfaction.themes_of_comments` as a notebook section: the side
    each theme leans to, or a plain note when there were too few comments."""
    if not themes.ok:
        return Finding(f"**Not enough comments for themes:** {themes.message}.", themes.table, ok=False)
    table = themes.table
    det = table.loc[table["leans_to"] == "detractors", "theme"].head(3).tolist()
    pro = table.loc[table["leans_to"] == "promoters", "theme"].head(3).tolist()
    text = (f"Detractors' comments lean to **{', '.join(det) or '–'}**; promoters' to **{', '.join(pro) or '–'}** "
            f"({themes.comments} comments; words, word pairs and Chinese character pairs).")
    return Finding(text, table)


def follow_up_report(table: pd.DataFrame, *, as_of: dt.date, lookback_days: int = LOOKBACK_DAYS) -> Finding:
    """The call list ``table`` (:func:`~crm_helpers.analyses.followup.follow_up` as of ``as_of`` with
    ``lookback_days``) with a sentence counting who is on it and why."""
    if table.empty:
        return Finding(f"Nobody to call: no detractor answered in the {lookback_days} days to {as_of} and no "
                       "complaint is open.", table)
    detractors = int(table["last_nps"].notna().sum())
    complaints = int((table["open_complaints"] > 0).sum())
    return Finding(f"**{len(table)} customer{'s' * (len(table) != 1)} to call**: {detractors} answered as "
                   f"detractor{'s' * (detractors != 1)} in the {lookback_days} days to {as_of}, {complaints} "
                   f"{'has' if complaints == 1 else 'have'} an open complaint.", table)


# -- page 06, cross-sell ---------------------------------------------------------------------------


def describe_rules(basket: pd.DataFrame, rules: pd.DataFrame, *, top: int = 5) -> str:
    """Plain text on :func:`~crm_helpers.analyses.crosssell.association_rules_table`: how many
    baskets and rules there are, then the ``top`` rules in words (or why there are none)."""
    head = f"{basket.shape[0]:,} paid orders with recorded lines, {basket.shape[1]} products, {len(rules)} rules."
    if basket.shape[0] == 0:
        return head + " No order lines are recorded, so there is nothing to learn from: import order_items."
    if rules.empty:
        return head + " No rule passes the thresholds: lower min_support or min_lift to see weaker links."
    return "\n".join([head, *rules["in_words"].head(top)])


# -- page 02, purchase rhythm ---------------------------------------------------------------------


def rhythm_report(result: PurchaseRhythm) -> Finding:
    """The regular buyers late for their usual reorder (:class:`~crm_helpers.analyses.rhythm.PurchaseRhythm`):
    a sentence counting them and the money of one usual order each, and their table, largest usual
    order first (name, usual interval and days late in days, dates, usual order in the store's currency)."""
    currency = result.currency or "store currency"
    columns = {"name": "customer", "customer_id": "customer id", "interval_days": "usual interval (days)",
               "last_purchase": "last order", "expected_date": "expected order", "days_late": "days late",
               "order_value": f"usual order ({currency})"}
    late = result.late
    table = late[list(columns)].rename(columns=columns).reset_index(drop=True)
    if not result.ok:
        return Finding(result.message, table, ok=False)
    regulars = len(result.regulars)
    rule = (f"A regular buyer has {result.min_purchases} or more days with a paid order and reorders at a steady "
            f"interval (the intervals' spread at most {result.max_cv:.0%} of their mean); late means past the "
            "expected order date (last order + usual interval) by more than twice their own spread, and at least "
            "a week.")
    if late.empty:
        return Finding(f"**None of your {regulars} regular buyers is late for their usual reorder** on "
                       f"{result.as_of}. {rule}", table)
    return Finding(f"**{len(late)} of your {regulars} regular buyers are late for their usual reorder** on "
                   f"{result.as_of}: one usual order each comes to {late['order_value'].sum():,.0f} {currency}. "
                   f"{rule} Largest usual order first.", table)

