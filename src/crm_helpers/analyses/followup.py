"""Whom to contact: the follow-up queue of the scoring page and the satisfaction page's call list.

Both lists start from the same people, :func:`unhappy_customers` (recent detractors and open
complaints), so "detractor" and "open complaint" mean one thing on every page:

- :func:`follow_up_queue`: the call list that remembers: everybody with a trigger (a complaint, a
  detractor answer, a lapse of a top spender, Can't Lose Them, a rising risk, a long silence, an
  idle deal) not yet followed by a logged contact
  (:func:`crm_helpers.store.facts.contacted_since_sql`), ranked by the **money at stake** (yearly
  value × chance of leaving, in the store's currency), each with its reasons in words; the index
  shows its ``top_n``, the CSV file holds it whole;
- :func:`follow_up`: the satisfaction call list, detractors and open complaints with the last
  interaction.

Everything is computed as of a given day; names and e-mails are personal data (masked in shared
reports).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.queries import memoized, query_df, store_currency
from crm_helpers.store.facts import (
    LOST_AFTER_MONTHS,
    STALE_DAYS,
    contacted_since_sql,
    deal_stale,
    lost_month_sql,
    month_index,
    month_index_sql,
    month_label,
    next_day,
    on_or_before_sql,
    paid,
    task_open_sql,
    task_overdue_sql,
    ticket_open_sql,
)
from crm_helpers.analyses.features import as_date
from crm_helpers.i18n import t, tn
from crm_helpers.store.values import Headline, money
from crm_helpers.store.schema import TASKS
from crm_helpers.store.safe_csv import write_safe_csv
from crm_helpers.analyses.satisfaction import DETRACTOR_MAX, unhappy_leave_chance
from crm_helpers.analyses.scoring import MODEL_KINDS, churn_backtest, percentile_rank, score_customers
from crm_helpers.analyses.lead_scoring import lead_backtest_as_of, open_pipeline
from crm_helpers.analyses.sales import opportunities_as_of
from crm_helpers.analyses.segmentation import rfm_table
from crm_helpers.store.periods import Period

LOOKBACK_DAYS = 90
"""How many days back a detractor answer counts as recent, for the call list and the follow-up queue."""

_UNHAPPY = f"""
WITH latest AS (
  SELECT customer_id, nps, submitted_at, comment,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY submitted_at DESC, feedback_id DESC) AS rn
  FROM feedback WHERE nps IS NOT NULL AND customer_id IS NOT NULL  -- an anonymous answer: nobody to call
    AND submitted_at >= :since AND submitted_at < :end_next
), detractors AS (SELECT * FROM latest WHERE rn = 1 AND nps <= {DETRACTOR_MAX}),
complaints AS (
  SELECT customer_id, COUNT(*) AS open_complaints, MIN(opened_at) AS oldest_open_complaint,
         MAX(opened_at) AS newest_open_complaint
  FROM tickets
  WHERE category = 'complaint' AND opened_at < :end_next AND {ticket_open_sql(":end_next")}
  GROUP BY customer_id
), who AS (SELECT customer_id FROM detractors UNION SELECT customer_id FROM complaints)
"""
"""The people with a reason to be called: recent detractors and open complaints (see :func:`unhappy_customers`)."""

_UNHAPPY_SQL = _UNHAPPY + """
SELECT who.customer_id, d.nps AS last_nps, d.submitted_at AS answered_at,
       COALESCE(k.open_complaints, 0) AS open_complaints, k.oldest_open_complaint, k.newest_open_complaint
FROM who LEFT JOIN detractors d ON d.customer_id = who.customer_id
LEFT JOIN complaints k ON k.customer_id = who.customer_id
ORDER BY who.customer_id
"""

_CALL_LIST_SQL = _UNHAPPY + """,
touch AS (
  SELECT i.customer_id, i.occurred_at, i.channel, i.direction, i.outcome,
         ROW_NUMBER() OVER (PARTITION BY i.customer_id ORDER BY i.occurred_at DESC, i.interaction_id DESC) AS rn
  FROM interactions i JOIN who ON who.customer_id = i.customer_id WHERE i.occurred_at < :end_next
)
SELECT who.customer_id, c.name, c.email, d.nps AS last_nps, d.submitted_at AS answered_at,
       COALESCE(k.open_complaints, 0) AS open_complaints, k.oldest_open_complaint,
       t.occurred_at AS last_interaction, t.channel AS last_channel, t.direction AS last_direction,
       t.outcome AS last_outcome, d.comment AS last_comment
FROM who JOIN customers c ON c.customer_id = who.customer_id
LEFT JOIN detractors d ON d.customer_id = who.customer_id
LEFT JOIN complaints k ON k.customer_id = who.customer_id
LEFT JOIN touch t ON t.customer_id = who.customer_id AND t.rn = 1
"""


def _window(as_of: dt.date, lookback_days: int) -> dict[str, str]:
    """The SQL parameters of the ``lookback_days`` days that end with ``as_of`` (``as_of`` included)."""
    return {"since": (as_of - dt.timedelta(days=lookback_days - 1)).isoformat(), "end_next": next_day(as_of)}


def unhappy_customers(db: Database, as_of: dt.date, *, lookback_days: int = LOOKBACK_DAYS) -> pd.DataFrame:
    """Recent detractors and customers with an open complaint: the one definition both lists use.

    A **detractor** is a customer whose latest NPS answer in the ``lookback_days`` days up to
    ``as_of`` (``as_of`` included) is 0–6 (:data:`~crm_helpers.analyses.satisfaction.DETRACTOR_MAX`; a later
    7–10 answer takes them off). An **open complaint** is a ``complaint`` ticket opened by ``as_of``
    and open at its end (:func:`crm_helpers.store.facts.ticket_open_sql`: a reopened ticket is open).
    Columns: customer_id, last_nps (empty when not a detractor), answered_at, open_complaints,
    oldest_open_complaint, newest_open_complaint; one row per customer, by customer_id.
    """
    return query_df(db, _UNHAPPY_SQL, params=_window(as_of, lookback_days))


REASON_LABELS = {"complaint": "open complaint ticket", "detractor": "recent detractor answer",
                 "lapsed": "lapsed top spender", "cant_lose": "in Can't Lose Them",
                 "churn": "valuable, likely to leave (churn model) and rising", "stale": "idle open deal",
                 "no_contact": "valuable, not contacted lately"}
"""The triggers that put a person on the call list, in words (the order of the page's count table)."""

@dataclass(frozen=True)
class ReasonWording:
    """How one trigger is said, as two whole sentences with the same named placeholders: ``text``
    in the pack's words (the call list's ``reasons`` column, the CSV file, the index) and ``plain``
    in the owner's words (the desk's Today). Both are filled from the same facts, so no page
    re-reads the other's sentence."""

    kind: str
    text: str
    plain: str


REASON_WORDINGS = {
    "complaint": ReasonWording("complaint", "open complaint ticket", "has an open complaint"),
    "complaints": ReasonWording("complaint", "{count} open complaint tickets", "has {count} open complaints"),
    "detractor": ReasonWording("detractor", "detractor: NPS {score} on {day}",
                               "answered {score} of 10 when asked whether they would recommend you, {days} days ago"),
    "detractor_yesterday": ReasonWording(
        "detractor", "detractor: NPS {score} on {day}",
        "answered {score} of 10 yesterday when asked whether they would recommend you"),
    "detractor_today": ReasonWording("detractor", "detractor: NPS {score} on {day}",
                                     "answered {score} of 10 today when asked whether they would recommend you"),
    "lapsed": ReasonWording("lapsed", "lapsed top spender: {spent} to date, no order since {last_order}",
                            "one of your biggest buyers ({spent} so far), no order since {last_order}"),
    "cant_lose": ReasonWording("cant_lose", "Can't Lose Them: {orders} orders, none for {days} days",
                               "bought {orders} times, but nothing for {days} days"),
    "churn": ReasonWording(
        "churn", "valuable (score {score}), likely to leave (churn model): chance up from {before}% to {now}%",
        "one of your best customers, and the chance they stop buying rose from {before} % to {now} %"),
    "never_contacted": ReasonWording("no_contact", "valuable, never contacted",
                                     "one of your best customers, never contacted"),
    "no_contact": ReasonWording("no_contact", "valuable, no contact for {days} days",
                                "one of your best customers, no contact for {days} days"),
    "stale_chance": ReasonWording("stale", "open deal '{title}' ({amount}, {chance}% win chance) idle for {days} days",
                                  "deal '{title}' with no news for {days} days"),
    "stale": ReasonWording("stale", "open deal '{title}' ({amount}) idle for {days} days",
                           "deal '{title}' with no news for {days} days"),
}
"""Every way a trigger of the call list is worded, by key; a trigger is built with its key and its
facts (:class:`Reason`), never as a sentence to be parsed later."""


@dataclass(frozen=True)
class Reason:
    """One uncontacted trigger of one person on the call list: its ``kind`` (a key of
    :data:`REASON_LABELS`), its ``wording`` (a key of :data:`REASON_WORDINGS`) and the ``facts`` it was
    made from (the placeholders' values: e.g. ``score``, ``day``, ``days`` since, ``spent`` in the
    store's currency). :attr:`text` and :attr:`plain` are the same reason in the pack's and the
    owner's words."""

    customer_id: str
    kind: str
    wording: str
    facts: dict

    @property
    def text(self) -> str:
        """The reason in the pack's words (the call list's ``reasons`` column)."""
        return t(REASON_WORDINGS[self.wording].text, **self.facts)

    @property
    def plain(self) -> str:
        """The reason in the owner's words (the desk's Today)."""
        return t(REASON_WORDINGS[self.wording].plain, **self.facts)


QUEUE_COLUMNS = ["customer_id", "name", "email", "money_at_stake", "reasons", "yearly_value", "churn_probability",
                 "value_score", "last_order", "last_contact"]
"""Columns of the follow-up queue (and of its CSV file): ``money_at_stake`` and ``yearly_value`` are in
the store's currency (EUR on the demo), see :func:`follow_up_queue`."""

TOP_SPENDER_SHARE = 0.2
"""A **top spender** is among this share of buyers with the highest net revenue to date (the top fifth)."""


@dataclass
class FollowUpQueue:
    """The whole call list (``table``, columns :data:`QUEUE_COLUMNS`, the most money at stake first),
    the ``top_n`` the index shows (:attr:`top`), people per trigger (``by_reason``: reason, people)
    and the store's ``currency`` (the unit of the money columns). :attr:`candidates` is the list's
    length: the page's count, the CSV's rows and the index's "to follow up" are this one number.
    ``anyone_to_follow_up``: somebody needs a follow-up; ``ok``: always True, an empty list is a
    result too; ``message``: the list's size in a plain sentence."""

    table: pd.DataFrame
    by_reason: pd.DataFrame
    top_n: int = 20
    currency: str = ""
    reasons: dict[str, tuple[Reason, ...]] = field(default_factory=dict)
    """Each person's uncontacted triggers (:class:`Reason`), by customer_id, in the order of the
    table's ``reasons`` column (which joins their :attr:`Reason.text`)."""

    def plain_reasons(self, customer_id: str) -> list[str]:
        """Why ``customer_id`` is on the list, one plain sentence per trigger (the desk's Today)."""
        return [reason.plain for reason in self.reasons.get(customer_id, ())]

    @property
    def candidates(self) -> int:
        """How many people are on the list (every row of :attr:`table`)."""
        return len(self.table)

    @property
    def top(self) -> pd.DataFrame:
        """The ``top_n`` people with the most money at stake: the index's list."""
        return self.table.head(self.top_n)

    @property
    def anyone_to_follow_up(self) -> bool:
        """True when at least one person needs a follow-up."""
        return self.candidates > 0

    @property
    def ok(self) -> bool:
        """True: the queue is built whatever the store holds (nobody to follow up is an answer)."""
        return True

    @property
    def message(self) -> str:
        """A plain sentence on the list's size, for the headline."""
        if self.candidates == 0:
            return t("nobody needs a follow-up")
        return t("the {count} most urgent are listed, most money at stake first; all {candidates} are in {file}",
                 count=len(self.top), candidates=self.candidates, file=FOLLOW_UP_FILE)


def headline_figures(db: Database, *, period: Period, previous: Period | None = None, horizon_days: int = 90,
                     kinds: tuple[str, ...] = MODEL_KINDS, top_n: int = 20, valuable_score: float = 70.0,
                     no_contact_days: int = 60, stale_days: int = STALE_DAYS,
                     random_state: int = 0) -> list[Headline]:
    """The size of the call list as of ``period``'s last day (:func:`follow_up_queue_as_of`, churn
    risk compared with ``previous``'s last day, default the calendar month before ``period``) as
    the ``follow_up_count`` headline: everybody on it (the rows of its CSV file), a count (a fact, without a range)."""
    queue = follow_up_queue_as_of(db, period.end, previous_as_of=(previous or period.previous_month()).end,
                                  horizon_days=horizon_days, kinds=kinds, top_n=top_n, valuable_score=valuable_score,
                                  no_contact_days=no_contact_days, stale_days=stale_days, random_state=random_state)
    return [Headline("follow_up_count", queue.candidates, "People to follow up", note=queue.message, exact=True,
                     lowest=0.0)]


@memoized
def follow_up_queue_as_of(db: Database, as_of: dt.date, *, previous_as_of: dt.date | None = None,
                          horizon_days: int = 90, kinds: tuple[str, ...] = MODEL_KINDS, top_n: int = 20,
                          valuable_score: float = 70.0, no_contact_days: int = 60, stale_days: int = STALE_DAYS,
                          random_state: int = 0) -> FollowUpQueue:
    """:func:`follow_up_queue` with its inputs read from the store as page 03 shows them: customers
    scored by the churn model of :func:`~crm_helpers.analyses.scoring.churn_backtest`
    (``horizon_days``; ``kinds`` only adds models to compare, the scores are the logistic model's)
    now and at ``previous_as_of``, and the open pipeline weighed by
    :func:`~crm_helpers.analyses.lead_scoring.lead_backtest_as_of`. Memoized
    (:func:`~crm_helpers.store.queries.memoized`): page 03, :func:`headline_figures` and the desk's
    Today share one list, treat it as read-only."""
    churn = churn_backtest(db, as_of, horizon_days=horizon_days, kinds=kinds, random_state=random_state)
    scored = score_customers(db, as_of, model=churn.model, previous_as_of=previous_as_of)
    pipeline = open_pipeline(opportunities_as_of(db, as_of),
                             lead_backtest_as_of(db, as_of, random_state=random_state).model)
    return follow_up_queue(db, as_of, scored=scored, pipeline=pipeline, top_n=top_n, valuable_score=valuable_score,
                           no_contact_days=no_contact_days, stale_days=stale_days, previous_as_of=previous_as_of,
                           horizon_days=horizon_days)


def follow_up_queue(
    db: Database,
    as_of: dt.date | str,
    *,
    scored: pd.DataFrame,
    pipeline: pd.DataFrame,
    top_n: int = 20,
    valuable_score: float = 70.0,
    rising_by: float = 0.10,
    risk_threshold: float = 0.5,
    no_contact_days: int = 60,
    lookback_days: int = LOOKBACK_DAYS,
    stale_days: int = STALE_DAYS,
    previous_as_of: dt.date | str | None = None,
    lapse_months: int = LOST_AFTER_MONTHS,
    top_spender_share: float = TOP_SPENDER_SHARE,
    horizon_days: int = 90,
) -> FollowUpQueue:
    """The call list as of ``as_of``: everybody with a trigger not yet followed by a contact, the most
    money at stake first, each with its reasons in words (see :class:`FollowUpQueue`).

    **Triggers** (each with the day it happened):

    - an open complaint ticket and a detractor answer of the last ``lookback_days`` days, as
      :func:`unhappy_customers` defines them (since the newest open complaint's opening; since the answer);
    - a **lapsed top spender**: lost by the store's rule (:func:`crm_helpers.store.facts.lost_sql`, no paid
      order for ``lapse_months`` calendar months) and among the ``top_spender_share`` of buyers with
      the most net revenue to date (since the first day of the month they were lost);
    - **Can't Lose Them** (:mod:`crm_helpers.analyses.segmentation`: among the most frequent buyers,
      now quiet; since the day they had been without an order as long as the least quiet of R 1–2);
    - a valuable customer (value score ≥ ``valuable_score``) whose churn risk is at least
      ``risk_threshold`` and rose by ``rising_by`` or more since ``previous_as_of`` (default 30 days
      earlier, as :func:`~crm_helpers.analyses.scoring.score_customers`; since that day);
    - a valuable customer not contacted for more than ``no_contact_days`` days, or never;
    - an open deal idle for more than ``stale_days`` days (:func:`crm_helpers.store.facts.deal_stale`;
      since the day it went idle).

    A trigger counts only while the person has not been contacted since it
    (:func:`crm_helpers.store.facts.contacted_since_sql`): an interaction logged after it takes the
    person off, a new trigger brings them back; a person stays while any trigger is uncontacted. **Ranking**: ``money_at_stake`` = ``yearly_value`` ×
    ``churn_probability``, what the business expects to lose in a year if the person goes: their
    yearly value is their net revenue to date (paid orders, refunds off, store currency) per year
    since their first order (a customer of less than a year counted over one year), and the chance
    is the churn model's (no paid order in its ``horizon_days``). The model sees no answers or tickets:
    for a person with a recent detractor answer or an open complaint the chance is the larger of the
    model's and the share of this store's past unhappy buyers with as many orders who then bought
    nothing in ``horizon_days`` days (:func:`crm_helpers.analyses.satisfaction.unhappy_leave_chance`). For a person with an idle deal it is the
    larger of that and the deal's expected value (amount × the model's win chance, else yours).
    Without a churn model the chance and the money are blank and the list goes by yearly value.
    Ties go by customer_id. ``scored`` is :func:`crm_helpers.analyses.scoring.score_customers`,
    ``pipeline`` is :func:`crm_helpers.analyses.lead_scoring.open_pipeline`.
    """
    day = as_date(as_of)
    before = as_date(previous_as_of) if previous_as_of else day - dt.timedelta(days=30)
    currency = store_currency(db)
    s = scored.set_index("customer_id")
    valuable = s["value_score"].fillna(0) >= valuable_score
    triggers: list[pd.DataFrame] = []

    def add(mask: pd.Series, kind: str, wording: pd.Series | str, facts: pd.DataFrame,
            since: pd.Series | str) -> None:
        """Add the people of ``mask`` as ``kind`` triggers, each worded by its :data:`REASON_WORDINGS`
        key (``wording``) from its row of ``facts`` (the placeholders' values), since ``since``."""
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            triggers.append(pd.DataFrame({"customer_id": mask.index[mask], "kind": kind,
                                          "wording": wording[mask].to_numpy() if isinstance(wording, pd.Series)
                                          else wording, "facts": facts[mask].to_dict("records"),
                                          "since": since[mask].to_numpy() if isinstance(since, pd.Series) else since}))

    unhappy = unhappy_customers(db, day, lookback_days=lookback_days).set_index("customer_id")
    complaints = unhappy["open_complaints"]
    add(complaints > 0, "complaint", complaints.map(lambda n: "complaint" if n == 1 else "complaints"),
        pd.DataFrame({"count": complaints}), unhappy["newest_open_complaint"].astype(str))
    answered = unhappy["answered_at"].astype("string").str[:10]
    ago = (pd.Timestamp(day) - pd.to_datetime(answered, errors="coerce")).dt.days.astype("Int64")
    add(unhappy["last_nps"].notna(), "detractor",
        ago.map(lambda n: {0: "detractor_today", 1: "detractor_yesterday"}.get(n, "detractor")),
        pd.DataFrame({"score": unhappy["last_nps"].astype("Int64").astype("string").fillna(""), "day": answered,
                      "days": ago}), unhappy["answered_at"].astype(str))
    buyers = s.loc[s["frequency"] > 0]
    if len(buyers):
        lapsed = _lapsed(db, day, lapse_months=lapse_months).reindex(buyers.index)
        top = percentile_rank(buyers["monetary"]) >= 1 - top_spender_share
        add(top & lapsed.notna(), "lapsed", "lapsed",
            pd.DataFrame({"spent": _amounts(buyers["monetary"], currency),
                          "last_order": buyers["last_order"].dt.strftime("%Y-%m-%d")}), lapsed.astype(str))
        rfm = rfm_table(buyers.reset_index()).set_index("customer_id")
        quiet_after = rfm.loc[rfm["r_score"] <= 2, "recency_days"].min()
        quiet = rfm["segment"].reindex(buyers.index) == "Can't Lose Them"
        if quiet.any():
            add(quiet, "cant_lose", "cant_lose",
                pd.DataFrame({"orders": buyers["frequency"].astype(str),
                              "days": buyers["recency_days"].astype("Int64").astype("string").fillna("")}),
                (buyers["last_order"] + pd.to_timedelta(quiet_after, unit="D")).dt.strftime("%Y-%m-%d"))
    now, then = s["churn_probability"], s["churn_probability_prev"]
    rising = valuable & (now >= risk_threshold) & ((now - then.fillna(now)) >= rising_by)
    add(rising, "churn", "churn",
        pd.DataFrame({"score": _whole(s["value_score"]), "before": _whole(100 * then), "now": _whole(100 * now)}),
        before.isoformat())
    silent = valuable & (s["days_since_contact"].isna() | (s["days_since_contact"] > no_contact_days))
    add(silent, "no_contact", s["days_since_contact"].map(lambda d: "never_contacted" if pd.isna(d) else "no_contact"),
        pd.DataFrame({"days": _whole(s["days_since_contact"])}), (day - dt.timedelta(days=no_contact_days)).isoformat())
    stale = pipeline.loc[deal_stale(pipeline["days_since_activity"], stale_days)]
    if len(stale):
        amount = stale["amount"].astype("float64").fillna(0)
        chance = stale["win_probability"].astype("float64").fillna(stale["probability"].astype("float64"))
        facts = pd.DataFrame({"title": stale["title"].fillna("untitled").astype(str),
                              "amount": _amounts(amount, currency),
                              "chance": chance.map(lambda p: "" if pd.isna(p) else f"{100 * p:.0f}"),
                              "days": stale["days_since_activity"].astype(int).astype(str)})
        idle_since = pd.Timestamp(day) - pd.to_timedelta(stale["days_since_activity"].astype(int) - stale_days, unit="D")
        triggers.append(pd.DataFrame({"customer_id": stale["customer_id"].to_numpy(), "kind": "stale",
                                      "wording": chance.isna().map({True: "stale", False: "stale_chance"}).to_numpy(),
                                      "facts": facts.to_dict("records"),
                                      "since": idle_since.dt.strftime("%Y-%m-%d").to_numpy(),
                                      "deal": (amount * chance.fillna(0)).to_numpy()}))
    if not triggers:
        return FollowUpQueue(pd.DataFrame(columns=QUEUE_COLUMNS), _reason_counts(pd.DataFrame(columns=["kind"])),
                             top_n, currency)
    long = pd.concat(triggers, ignore_index=True).dropna(subset=["customer_id"])
    if "deal" not in long:
        long["deal"] = np.nan
    long = long.loc[~_contacted_since(db, long, day)].drop(columns="since")
    order = {kind: i for i, kind in enumerate(REASON_LABELS)}
    long = long.assign(rank=long["kind"].map(order)).sort_values(["customer_id", "rank"], kind="stable")
    reasons: dict[str, list[Reason]] = {}
    for customer_id, kind, wording, facts in zip(long["customer_id"], long["kind"], long["wording"], long["facts"]):
        reasons.setdefault(customer_id, []).append(Reason(customer_id, kind, wording, facts))
    long["text"] = [r.text for person in reasons.values() for r in person]
    unhappy_ids = long.loc[long["kind"].isin(["complaint", "detractor"]), "customer_id"].unique()
    unhappy_chance = unhappy_leave_chance(db, day, orders=s["frequency"].reindex(unhappy_ids), horizon_days=horizon_days)
    return FollowUpQueue(_ranked(db, long, scored=s, day=day, unhappy_chance=unhappy_chance), _reason_counts(long),
                         top_n, currency, {c: tuple(r) for c, r in reasons.items()})


def _ranked(db: Database, long: pd.DataFrame, *, scored: pd.DataFrame, day: dt.date,
            unhappy_chance: pd.Series) -> pd.DataFrame:
    """One row per person of the triggers ``long`` (customer_id, kind, text, deal; each person's in the
    order of :data:`REASON_LABELS`), ranked (see
    :func:`follow_up_queue`), with the columns :data:`QUEUE_COLUMNS`; ``unhappy_chance`` is the measured
    chance of leaving of the unhappy people, by customer_id."""
    if long.empty:
        return pd.DataFrame(columns=QUEUE_COLUMNS)
    queue = long.groupby("customer_id", sort=True).agg(reasons=("text", "; ".join), deal=("deal", "max"))
    ids = queue.index
    years = (scored["tenure_days"].reindex(ids).astype("float64") / 365.25).clip(lower=1.0)
    queue["yearly_value"] = (scored["monetary"].reindex(ids).astype("float64") / years).fillna(0.0)
    queue["churn_probability"] = np.fmax(scored["churn_probability"].reindex(ids).astype("float64"),
                                         unhappy_chance.reindex(ids))
    queue["value_score"] = scored["value_score"].reindex(ids).astype("float64")
    queue["money_at_stake"] = np.fmax(queue["yearly_value"] * queue["churn_probability"], queue["deal"])
    queue["last_order"] = scored["last_order"].reindex(ids).dt.strftime("%Y-%m-%d")
    queue = queue.reset_index().sort_values(["money_at_stake", "yearly_value", "customer_id"],
                                            ascending=[False, False, True], na_position="last")
    queue = queue.merge(_contacts(db, queue["customer_id"].tolist(), pd.Timestamp(day)), on="customer_id", how="left")
    queue = queue.round({"value_score": 1, "churn_probability": 3})
    for column in ("money_at_stake", "yearly_value"):  # whole units of money, written as 3131 not 3131.0
        queue[column] = queue[column].round().astype("Int64")
    return queue[QUEUE_COLUMNS].reset_index(drop=True)


_CONTACTED_SQL = f"""
SELECT t.key FROM json_each(:triggers) AS t
WHERE {contacted_since_sql("json_extract(t.value, '$[0]')", "json_extract(t.value, '$[1]')")}
"""


def _contacted_since(db: Database, long: pd.DataFrame, day: dt.date) -> np.ndarray:
    """Whether each trigger of ``long`` (customer_id, since) was followed by a logged contact up to the
    end of ``day`` (:func:`crm_helpers.store.facts.contacted_since_sql`), one bool per row in order."""
    pairs = json.dumps([[str(c), str(s)] for c, s in zip(long["customer_id"], long["since"])])
    hit = {row[0] for row in db.execute(_CONTACTED_SQL, {"triggers": pairs, "end_next": next_day(day)})}
    return np.array([i in hit for i in range(len(long))], dtype=bool)


_LAPSED_SQL = f"""
SELECT customer_id, {month_index_sql("max(order_date)")} AS last_month FROM orders
WHERE {paid()} AND customer_id IS NOT NULL AND {on_or_before_sql("order_date")}
GROUP BY customer_id HAVING {lost_month_sql("last_month")} <= :month
"""


def _lapsed(db: Database, day: dt.date, *, lapse_months: int) -> pd.Series:
    """The first day (ISO text) of the month each customer lost by ``day`` was lost in
    (:func:`crm_helpers.store.facts.lost_month_sql`: ``lapse_months`` calendar months without a paid
    order), by customer_id; customers not lost are absent."""
    rows = db.execute(_LAPSED_SQL, {"end_next": next_day(day), "lapse": lapse_months,
                                    "month": month_index(day)}).fetchall()
    return pd.Series({c: f"{month_label(m + lapse_months)}-01" for c, m in rows}, dtype=object)


def _amounts(values: pd.Series, currency: str) -> pd.Series:
    """Each amount as the pages write money (:func:`crm_helpers.store.values.money`)."""
    return values.astype("float64").map(lambda v: money(v, currency))


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
    frame = query_df(
        db,
        f"SELECT c.customer_id, c.name, c.email, (SELECT MAX(occurred_at) FROM interactions i "
        f"WHERE i.customer_id = c.customer_id AND i.occurred_at < ?) AS last_contact "
        f"FROM customers c WHERE c.customer_id IN ({placeholders})",
        params=[next_day(day.date()), *ids],
    )
    frame["last_contact"] = frame["last_contact"].fillna("").astype(str).str[:10]
    return frame


FOLLOW_UP_FILE = "follow_up_queue.csv"
"""The queue's file in the report folder (the index shows the queue from the notebook's record)."""


def write_follow_up(queue: pd.DataFrame, output_dir: str | os.PathLike[str]) -> Path | None:
    """Write the queue as ``follow_up_queue.csv`` into ``output_dir`` (nothing when blank); returns the path.

    Written with :func:`crm_helpers.store.safe_csv.write_safe_csv` (formulas neutralized, owner-only,
    plain rounded values: :func:`crm_helpers.store.safe_csv.for_csv`); the chance of leaving as a
    share with three decimals, the money columns in whole units.
    """
    if not str(output_dir).strip():
        return None
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return write_safe_csv(queue, folder / FOLLOW_UP_FILE)


def follow_up(db: Database, as_of: dt.date, *, lookback_days: int = LOOKBACK_DAYS) -> pd.DataFrame:
    """Customers to call: detractors and customers with an open complaint, with their last interaction.

    Detractors and open complaints as :func:`unhappy_customers` defines them. One row per customer:
    customer_id, name, email, reason, last_nps, answered_at, open_complaints,
    oldest_open_complaint, last_interaction (timestamp, interactions table, up to ``as_of``),
    last_channel, last_direction, last_outcome, last_comment (personal data: masked in shared
    reports). Sorted with open complaints first, then the lowest NPS.
    """
    frame = query_df(db, _CALL_LIST_SQL, params=_window(as_of, lookback_days))
    frame.insert(3, "reason", [_call_reason(row) for row in frame.itertuples(index=False)])
    return frame.sort_values(["open_complaints", "last_nps", "customer_id"], ascending=[False, True, True],
                             na_position="last", ignore_index=True)


def _call_reason(row: Any) -> str:
    """Why a call-list row is on the list, in words: the detractor answer (score and day, worded as
    the call list's reason, :data:`REASON_WORDINGS` ``"detractor"``, so the two cannot drift) and the
    open complaints (how many, since which day), whichever apply, joined by "; "."""
    parts = []
    if pd.notna(row.last_nps):
        parts.append(t(REASON_WORDINGS["detractor"].text, score=int(row.last_nps), day=str(row.answered_at)[:10]))
    if row.open_complaints > 0:
        parts.append(tn("{n} open complaint since {day}", "{n} open complaints since {day}",
                        n=int(row.open_complaints), day=str(row.oldest_open_complaint)[:10]))
    return t("; ").join(parts)


@dataclass(frozen=True)
class TaskCounts:
    """The desk's tasks as of a day: ``open`` (not done, :func:`crm_helpers.store.facts.task_open_sql`)
    and ``overdue`` (open and due before the day, :func:`crm_helpers.store.facts.task_overdue_sql`).
    ``ok``: always True (no tasks is an answer); ``message``: both in a sentence."""

    as_of: dt.date
    open: int
    overdue: int

    @property
    def ok(self) -> bool:
        """True: the counts are known whatever the store holds."""
        return True

    @property
    def message(self) -> str:
        """The counts in a plain sentence, for page 03."""
        if self.open == 0:
            return t("No open tasks from the desk.")
        return t("Tasks written at the desk: {open} open, {overdue} of them overdue (due before {day}); the desk's "
                 "Today lists them first.", open=self.open, overdue=self.overdue, day=f"{self.as_of:%d %B %Y}")


def task_counts(db: Database, as_of: dt.date) -> TaskCounts:
    """How many of the desk's tasks are open and overdue at the end of ``as_of`` (a task done later
    than ``as_of`` counts as open then; a task written after it does not count)."""
    row = db.execute(f"SELECT COUNT(*), COALESCE(SUM({task_overdue_sql(':day', ':end_next')}), 0) FROM {TASKS.name} "
                     f"WHERE {on_or_before_sql('created_at')} AND {task_open_sql(':end_next')}",
                     {"day": as_of.isoformat(), "end_next": next_day(as_of)}).fetchone()
    return TaskCounts(as_of, int(row[0]), int(row[1]))
