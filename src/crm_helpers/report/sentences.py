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

from crm_helpers.i18n import t, tn
from crm_helpers.report import numbers
from crm_helpers.store.values import money, money_span, money_whole

from crm_helpers.analyses.followup import FOLLOW_UP_FILE, LOOKBACK_DAYS, FollowUpQueue
from crm_helpers.analyses.satisfaction import (
    CommentThemes,
    KeyDriverAnalysis,
    KeyDrivers,
    format_measure,
    nps_interval,
)

if TYPE_CHECKING:
    from crm_helpers.store.periods import Period
    from crm_helpers.analyses.clv import HoldoutValidation
    from crm_helpers.analyses.plan import PlanEffect
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
    unit = queue.currency or t("the store's currency")
    if not queue.anyone_to_follow_up:
        return t("**Nobody to follow up**: every complaint, detractor answer, lapse and idle deal has been followed "
                 "by a logged contact, or there is none.")
    return tn("**{n} person to follow up**", "**{n} people to follow up**", n=queue.candidates) + t(
        ", all written to `{file}`; the index shows the first {shown}. A person is listed once something "
        "happens (a complaint, a detractor answer, a top spender's lapse, a slide into Can't Lose Them, a rising "
        "risk of leaving, a long silence, an idle deal) and leaves the list as soon as you log a contact with "
        "them after it. **Money at stake ({unit} a year)** orders the list: the customer's yearly value (their "
        "net revenue per year as a customer) times their chance of leaving (the churn model's chance of no paid "
        "order in its horizon, above; for an unhappy customer, whom the model cannot see answering, at least the "
        "share of your past unhappy customers with as many orders who then stopped buying), or "
        "the expected value of their idle deal when that is larger; it is blank when there is no churn model.",
        file=FOLLOW_UP_FILE, shown=len(queue.top), unit=unit)


# -- page 04, customer value -----------------------------------------------------------------------


def holdout_error(validation: HoldoutValidation) -> str:
    """How far the chosen model's past prediction was off, in one plain sentence."""
    row = validation.aggregate.loc[validation.chosen]
    error = validation.error()
    fields = dict(days=validation.holdout_days, model=validation.chosen,
                  predicted=f"{row['predicted_repeat_purchases']:,.0f}", actual=f"{row['actual_repeat_purchases']:,.0f}",
                  error=f"{abs(error):.0%}")
    if error > 0:
        return t("Asked to predict the last {days} days from the history before them, the chosen model ({model}) "
                 "expected {predicted} repeat purchases where {actual} happened: {error} too many.", **fields)
    return t("Asked to predict the last {days} days from the history before them, the chosen model ({model}) "
             "expected {predicted} repeat purchases where {actual} happened: {error} too few.", **fields)


def model_choice(validation: HoldoutValidation) -> str:
    """How sure the choice of purchase model is, in plain sentences: how far the chosen model's
    holdout score is ahead of the runner-up's (``margin_z``, in standard errors of the customers'
    paired differences), at how many of the checks it was best, and how much the two models'
    predicted totals differ (what the choice changes)."""
    chosen, other = validation.chosen, validation.runner_up
    if not other:
        return t("Only {model} could be fitted, so there was no choice to make.", model=chosen)
    z, a = validation.margin_z, validation.aggregate
    won, checks = int(a.loc[chosen, "origins_won"]), len(validation.origins)
    apart = a.loc[chosen, "predicted_repeat_purchases"] / a.loc[other, "predicted_repeat_purchases"] - 1
    steady = 2 * won > checks  # best at most of the checks, not only on their sum
    if z >= 2.5 and steady:
        how = t("{chosen} gave clearly more probability to what customers then did than {other}, the runner-up",
                chosen=chosen, other=other)
    elif z >= 1 and steady:
        how = t("{chosen} gave more probability to what customers then did than {other}, the runner-up, but not "
                "by much: the choice is likely right but not certain", chosen=chosen, other=other)
    elif z >= 1:
        how = t("{chosen} gave more probability to what customers then did than {other}, the runner-up, but not "
                "at most of the checks: the choice is uncertain", chosen=chosen, other=other)
    else:
        how = t("{chosen} and {other} foresaw what customers then did about equally well: the choice between them "
                "is close to a coin toss", chosen=chosen, other=other)
    best = tn("best at {won} of {n} check", "best at {won} of {n} checks", n=checks, won=won)
    fields = dict(how=how, best=best, apart=f"{abs(apart):.0%}")
    if abs(apart) < 0.05:
        return t("How sure the choice is: {how} ({best}). Their predictions of the last held-out total differ by "
                 "{apart}, so the choice matters little for the values below.", **fields)
    return t("How sure the choice is: {how} ({best}). Their predictions of the last held-out total differ by "
             "{apart}, so the choice matters for the values below.", **fields)


# -- page 05, satisfaction -------------------------------------------------------------------------


def month_summary(current: pd.Series, previous: pd.Series) -> str:
    """A Markdown paragraph on ``current`` (a row of
    :func:`~crm_helpers.analyses.satisfaction.period_scores`): how many answered, CSAT and NPS, or
    a plain "no responses" note naming ``previous``'s answers."""
    if current["responses"] == 0:
        before = (t(" The previous month had {answers} answers.", answers=f"{previous['responses']:.0f}")
                  if previous["responses"] else "")
        return t("**No responses this month** ({month}): nobody answered the survey, so CSAT, NPS and the indexes "
                 "for the period are blank.{before} The trend, the drivers and the comment themes below use the "
                 "months before, where there are any.", month=current["label"], before=before)
    fields = dict(responses=f"{current['responses']:.0f}", month=current["label"],
                  csat=format_measure(current["csat_pct"], "pct"), positive=f"{current['csat_positive']:.0f}",
                  answers=f"{current['csat_answers']:.0f}", mean=format_measure(current["csat_mean"], "score"),
                  nps=format_measure(current["nps"], "nps"))
    if np.isfinite(current["nps_ci_low"]):
        text = t("**{responses} responses** in {month}: CSAT {csat} ({positive} of {answers} answered 4–5), mean "
                 "overall score {mean}, NPS {nps} (95% interval {interval}).", interval=nps_interval(current),
                 **fields)
    else:
        text = t("**{responses} responses** in {month}: CSAT {csat} ({positive} of {answers} answered 4–5), mean "
                 "overall score {mean}, NPS {nps}.", **fields)
    if current["small_sample"]:
        text += t(" **Small sample:** with this few answers a single answer moves the figures a lot.")
    return text


def top_driver(model: KeyDriverAnalysis) -> str:
    """One Markdown sentence naming the top driver of a fitted ``model``, with its effect and the model's fit."""
    top = model.table_.iloc[0]
    outcome = t("overall 1–5 score") if model.target == "csat" else t("0–10 likelihood to recommend")
    agree = (t("the random forest ranks it first too") if model.rf_top_driver_ == model.top_driver_
             else t("the random forest ranks **{item}** first instead", item=t(model.rf_top_driver_)))
    return t("**{Item} is the top driver** of overall satisfaction: one point more on the {item} score goes with "
             "{effect} more on the {outcome} (95% CI {low} to {high}), the other items held equal; {agree}. The four "
             "items explain {r2} of the variation (OLS R², {answers} complete answers; forest out-of-bag R² "
             "{oob}).", Item=t(model.top_driver_).capitalize(), item=t(model.top_driver_),
             effect=f"{top['coefficient']:.2f}", outcome=outcome, low=f"{top['ci_low']:.2f}",
             high=f"{top['ci_high']:.2f}", agree=agree, r2=f"{model.r_squared_:.0%}", answers=model.n_answers_,
             oob=f"{model.rf_oob_r_squared_:.0%}")


def driver_report(drivers: KeyDrivers) -> Finding:
    """:func:`~crm_helpers.analyses.satisfaction.key_drivers` as a notebook section: the
    :func:`top_driver` sentence and the per-item table, or a plain note when there were too few answers."""
    if not drivers.ok:
        return Finding(t("**Not enough answers for a driver analysis:** {reason}.", reason=drivers.message),
                       drivers.table, ok=False)
    return Finding(top_driver(drivers.model), drivers.table)


def theme_report(themes: CommentThemes) -> Finding:
    """:func:`~crm_helpers.analyses.satisfaction.themes_of_comments` as a notebook section: the side
    each theme leans to, or a plain note when there were too few comments."""
    if not themes.ok:
        return Finding(t("**Not enough comments for themes:** {reason}.", reason=themes.message), themes.table,
                       ok=False)
    table = themes.table
    det = table.loc[table["leans_to"] == "detractors", "theme"].head(3).tolist()
    pro = table.loc[table["leans_to"] == "promoters", "theme"].head(3).tolist()
    text = t("Detractors' comments lean to **{detractors}**; promoters' to **{promoters}** ({count} comments; "
             "words, word pairs and Chinese character pairs).", detractors=", ".join(det) or "–",
             promoters=", ".join(pro) or "–", count=themes.comments)
    return Finding(text, table)


def follow_up_report(table: pd.DataFrame, *, as_of: dt.date, lookback_days: int = LOOKBACK_DAYS) -> Finding:
    """The call list ``table`` (:func:`~crm_helpers.analyses.followup.follow_up` as of ``as_of`` with
    ``lookback_days``) with a sentence counting who is on it and why."""
    if table.empty:
        return Finding(t("Nobody to call: no detractor answered in the {days} days to {day} and no complaint is "
                         "open.", days=lookback_days, day=as_of), table)
    detractors = int(table["last_nps"].notna().sum())
    complaints = int((table["open_complaints"] > 0).sum())
    return Finding(tn("**{n} customer to call**", "**{n} customers to call**", n=len(table)) + ": "
                   + tn("{n} answered as detractor in the {days} days to {day}",
                        "{n} answered as detractors in the {days} days to {day}", n=detractors, days=lookback_days,
                        day=as_of) + t(", ")
                   + tn("{n} has an open complaint.", "{n} have an open complaint.", n=complaints), table)


# -- page 06, cross-sell ---------------------------------------------------------------------------


def describe_rules(basket: pd.DataFrame, rules: pd.DataFrame, *, top: int = 5) -> str:
    """Plain text on :func:`~crm_helpers.analyses.crosssell.association_rules_table`: how many
    baskets and rules there are, then the ``top`` rules in words (or why there are none)."""
    head = t("{orders} paid orders with recorded lines, {products} products, {rules} rules.",
             orders=f"{basket.shape[0]:,}", products=basket.shape[1], rules=len(rules))
    if basket.shape[0] == 0:
        return head + t(" No order lines are recorded, so there is nothing to learn from: import order_items.")
    if rules.empty:
        return head + t(" No rule passes the thresholds: lower min_support or min_lift to see weaker links.")
    return "\n".join([head, *rules["in_words"].head(top)])


# -- page 02, purchase rhythm ---------------------------------------------------------------------


def rhythm_report(result: PurchaseRhythm) -> Finding:
    """The regular buyers late for their usual reorder (:class:`~crm_helpers.analyses.rhythm.PurchaseRhythm`):
    a sentence counting them and the money of one usual order each, and their table, largest usual
    order first (name, usual interval and days late in days, dates, usual order in the store's currency)."""
    currency = result.currency or t("store currency")
    columns = {"name": "customer", "customer_id": "customer id", "interval_days": "usual interval (days)",
               "last_purchase": "last order", "expected_date": "expected order", "days_late": "days late",
               "order_value": f"usual order ({currency})"}
    late = result.late
    table = late[list(columns)].rename(columns=columns).reset_index(drop=True)
    if not result.ok:
        return Finding(result.message, table, ok=False)
    regulars = len(result.regulars)
    rule = t("A regular buyer has {days} or more days with a paid order and reorders at a steady interval (the "
             "intervals' spread at most {spread} of their mean); late means past the expected order date (last "
             "order + usual interval) by more than twice their own spread, and at least a week.",
             days=result.min_purchases, spread=f"{result.max_cv:.0%}")
    if late.empty:
        return Finding(t("**None of your {regulars} regular buyers is late for their usual reorder** on {day}. "
                         "{rule}", regulars=regulars, day=result.as_of, rule=rule), table)
    return Finding(t("**{late} of your {regulars} regular buyers are late for their usual reorder** on {day}: one "
                     "usual order each comes to {money}. {rule} Largest usual order first.", late=len(late),
                     regulars=regulars, day=result.as_of, money=money_whole(late["order_value"].sum(), currency),
                     rule=rule), table)



# -- the lines the pages print under their code cells ----------------------------------------------
# One function per printed sentence, so the notebook only prints and the sentence is translated whole.


def store_line(store: str, period: Period, *, inbox: str) -> str:
    """Page 01's first line: which store, period and inbox the page read (paths as the owner sees them)."""
    return t("Store: {store} · period {period} · inbox {inbox}", store=store,
             period=numbers.period(period.start, period.end), inbox=inbox)


def inbox_empty(inbox: str) -> str:
    """Page 01: the inbox folder ``inbox`` held no file to import."""
    return t("The inbox {inbox} is empty: nothing to import.", inbox=inbox)


def no_rows_left_out() -> str:
    """Page 01: every row of the imported files went in."""
    return t("No row was left out.")


def no_data_gaps() -> str:
    """Page 01: no table is late and no month thin."""
    return t("No gaps: every table is as up to date as its usual pace says, and no month is unusually thin.")


def nothing_imported() -> str:
    """Page 01: the store's import log is empty."""
    return t("Nothing has been imported into this store yet.")


def segments_as_of(as_of: dt.date, buyers: int) -> str:
    """Page 02's first line: the day the segments are computed at and how many buyers they cover."""
    return t("Segments as of {as_of}: {buyers} buyers (customers with at least one paid order).",
             as_of=as_of, buyers=f"{buyers:,}")


def scores_as_of(as_of: dt.date, horizon_days: int) -> str:
    """Page 03's first line: the scoring day and what churn means there (no paid order in ``horizon_days`` days)."""
    return t("Scores as of {as_of}; churn means no paid order in the next {days} days.", as_of=as_of, days=horizon_days)


def churn_backtest_line(train_cutoff: dt.date, test_cutoff: dt.date) -> str:
    """Page 03: the churn model's training and test days, and that today's scores use the same recipe."""
    return t("Trained on {train}, tested on {test}; today's scores use the same recipe refitted on {test}.",
             train=train_cutoff, test=test_cutoff)


def odds_ratios_below() -> str:
    """Page 03: the lead model's odds ratios follow its checks."""
    return t("Odds ratios of winning below the checks.")


def follow_up_written(file_name: str, candidates: int) -> str:
    """Page 03: the whole call list (``candidates`` people) went to ``file_name`` beside the page."""
    return t("Written to {file}, next to this page: all {count} of them.", file=file_name, count=candidates)


def follow_up_not_written() -> str:
    """Page 03: no output folder, so the call list is only on the page."""
    return t("No output folder given: the list is shown here only.")


def probably_lost_line(count: int) -> str:
    """Page 04: how many repeat buyers are probably lost (P(alive) below 50 %)."""
    return t("{count} repeat buyers are probably lost: their chance of still being a customer (P(alive)) is below 50 %.",
             count=f"{count:,}")


def model_note(note: str) -> str:
    """A note on the fitted models, printed under their name (``Note: …``; the note in the language in use)."""
    return t("Note: {note}", note=note)


def at_its_bound() -> str:
    """What a parameter table shows for a standard error that is not available (the estimate is at its bound)."""
    return t("not available (at its bound)")


def purchase_model_line(model_name: str) -> str:
    """Page 04: the purchase model the customer values come from ("none" when none could be fitted)."""
    return t("Purchase model used: {model}", model=model_name or t("none"))


def satisfaction_period(period: Period, year_start: dt.date) -> str:
    """Page 05's first line: the month's scores, and the twelve months up to the period's end that
    drivers, themes and tickets use (from ``year_start``)."""
    return t("Period {period} ({start} to {end}); drivers, themes and tickets use {year_start} to {as_of}.",
             period=numbers.period(period.start, period.end), start=period.start, end=period.end,
             year_start=year_start, as_of=period.end)


def sales_period(period: Period, currency: str) -> str:
    """Page 06's first line: the period, its last day and the money the page is in (``currency``,
    an ISO code; blank: the store's currency)."""
    return t("Period {period}, as of {as_of}. Money in {currency}, net revenue of paid orders.",
             period=numbers.period(period.start, period.end), as_of=period.end,
             currency=currency or t("the store currency"))


def stale_deals_line(count: int, stale_days: int) -> str:
    """Page 06: how many open deals had no activity for more than ``stale_days`` days."""
    return t("{count} open deals without activity for more than {days} days.", count=count, days=stale_days)


def offers_line(count: int) -> str:
    """Page 06: how many active customers have a suggested next product."""
    return t("{count} active customers have a suggested next product.", count=f"{count:,}")


def value_basis(as_of: dt.date, buyers: int, *, horizon_months: int, annual_discount_rate: float, margin_rate: float,
                margin_source: str, currency: str) -> str:
    """Page 04's first line: the day, buyers, horizon, yearly discount (a share of 1) and margin (a
    share of 1, and where it comes from) the customer values use, and the money they are in."""
    return t("Customer value as of {as_of}: {buyers} buyers, horizon {months} months, {discount} a year discount, "
             "margin {margin} ({source}). Money in {currency}, net revenue (paid orders only; refunded and "
             "cancelled orders are not purchases).", as_of=as_of, buyers=f"{buyers:,}", months=horizon_months,
             discount=f"{annual_discount_rate:.0%}", margin=f"{margin_rate:.0%}", source=margin_source,
             currency=currency or t("the store currency"))


def value_not_available(reason: str) -> str:
    """Page 04: why there are no customer values (``reason``: the analysis' message)."""
    return t("Customer value not available: {reason}", reason=reason)


def plan_lines(plan: PlanEffect, *, as_of: dt.date) -> str:
    """Page 07: what the levers are worth from ``as_of`` (the plan's own sentence), and with more than
    one lever all of them together, signed, with their 80 % range."""
    lines = [t("As of {day}, for the {months} months after it: {sentence}", day=f"{as_of:%Y-%m-%d}",
               months=plan.horizon_months, sentence=plan.sentence)]
    if len(plan.parts) > 1:
        lines.append(t("All levers together: about {effect} (80 % range {range}).",
                       effect=money(plan.effect, plan.currency, signed=True),
                       range=money_span(plan.low, plan.high, currency=plan.currency, signed=True)))
    return "\n".join(lines)


def no_win_back_customers() -> str:
    """Page 07: the win-back lever is not set, so there is nobody to list."""
    return t("Set a win-back share above 0 to list the customers it is about.")


def no_cohorts() -> str:
    """Page 06: no paid order yet, so no cohort."""
    return t("No paid orders yet: no cohorts.")


def no_campaign(as_of: dt.date) -> str:
    """Page 04: the store holds no campaign started by ``as_of``."""
    return t("No campaign started by {day}.", day=f"{as_of:%Y-%m-%d}")


def held_out_window(window: str) -> str:
    """Page 04: which days the holdout check held out (``window``: the check's own description)."""
    return t("Held-out window: {window}.", window=window)


def no_holdout_check(reason: str) -> str:
    """Page 04: why the holdout check did not run."""
    return t("No holdout check: {reason}", reason=reason or t("not run"))


def expected_value_line(total: float, likely: str, *, currency: str) -> str:
    """Page 04: the customers' total expected value in whole ``currency`` units, then its likely
    range in words (:meth:`crm_helpers.analyses.clv.ClvAnalysis.likely_total`)."""
    return t("Expected customer value: {money}, {likely}.", money=money_whole(total, currency), likely=likely)
