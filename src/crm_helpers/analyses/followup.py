"""Whom to contact: the follow-up queue of the scoring page and the satisfaction page's call list.

Both lists start from the same people, :func:`unhappy_customers` (recent detractors and open
complaints), so "detractor" and "open complaint" mean one thing on every page:

- :func:`follow_up_queue`: the ``top_n`` people to contact this week, ranked by a **priority**
  (the sum of :data:`REASON_WEIGHTS` of a person's reasons, 1 to 4 each, plus up to 1 for their
  value; the report's :func:`~crm_helpers.report.sentences.priority_meaning` says it in words),
  each with its reasons in words;
- :func:`follow_up`: the satisfaction call list, detractors and open complaints with the last
  interaction.

Everything is computed as of a given day; names and e-mails are personal data (masked in shared
reports).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.queries import memoized, query_df
from crm_helpers.store.facts import STALE_DAYS, deal_stale, next_day, ticket_open_sql
from crm_helpers.analyses.features import as_date
from crm_helpers.store.values import Headline
from crm_helpers.store.safe_csv import write_safe_csv
from crm_helpers.analyses.satisfaction import DETRACTOR_MAX
from crm_helpers.analyses.scoring import MODEL_KINDS, churn_backtest, percentile_rank, score_customers
from crm_helpers.analyses.lead_scoring import lead_backtest_as_of, open_pipeline
from crm_helpers.analyses.sales import opportunities_as_of
from crm_helpers.store.periods import Period

LOOKBACK_DAYS = 90
"""How many days back a detractor answer counts as recent, for the call list and the follow-up queue."""

_UNHAPPY = f"""
WITH latest AS (
  SELECT customer_id, nps, submitted_at, comment,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY submitted_at DESC, feedback_id DESC) AS rn
  FROM feedback WHERE nps IS NOT NULL AND submitted_at >= :since AND submitted_at < :end_next
), detractors AS (SELECT * FROM latest WHERE rn = 1 AND nps <= {DETRACTOR_MAX}),
complaints AS (
  SELECT customer_id, COUNT(*) AS open_complaints, MIN(opened_at) AS oldest_open_complaint
  FROM tickets
  WHERE category = 'complaint' AND opened_at < :end_next AND {ticket_open_sql(":end_next")}
  GROUP BY customer_id
), who AS (SELECT customer_id FROM detractors UNION SELECT customer_id FROM complaints)
"""
"""The people with a reason to be called: recent detractors and open complaints (see :func:`unhappy_customers`)."""

_UNHAPPY_SQL = _UNHAPPY + """
SELECT who.customer_id, d.nps AS last_nps, d.submitted_at AS answered_at,
       COALESCE(k.open_complaints, 0) AS open_complaints, k.oldest_open_complaint
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
    oldest_open_complaint; one row per customer, by customer_id.
    """
    return query_df(db, _UNHAPPY_SQL, params=_window(as_of, lookback_days))


REASON_LABELS = {"complaint": "open complaint ticket", "detractor": "recent detractor answer",
                 "churn": "valuable, likely to leave and rising", "stale": "idle open deal",
                 "no_contact": "valuable, not contacted lately"}

QUEUE_COLUMNS = ["customer_id", "name", "email", "reasons", "last_order", "last_contact", "priority",
                 "value_score", "churn_probability"]
"""Columns of the follow-up queue (and of its CSV file)."""

REASON_WEIGHTS = {"complaint": 4.0, "detractor": 3.0, "churn": 3.0, "stale": 3.0, "no_contact": 1.0}
"""How much each reason adds to a person's priority; the value score (0–100) adds up to 1 more."""


@dataclass
class FollowUpQueue:
    """The queue (``table``, columns :data:`QUEUE_COLUMNS`, most urgent first), how many people have
    at least one reason (``candidates``), and people per reason (``by_reason``: reason, people).
    ``anyone_to_follow_up``: somebody needs a follow-up; ``ok``: always True, an empty queue is a
    result too; ``message``: the queue's size in a plain sentence."""

    table: pd.DataFrame
    candidates: int
    by_reason: pd.DataFrame

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
        """A plain sentence on the queue's size, for the headline."""
        if self.candidates == 0:
            return "nobody needs a follow-up"
        return f"the {len(self.table)} most urgent are listed"


def headline_figures(db: Database, *, period: Period, previous: Period | None = None, horizon_days: int = 90,
                     kinds: tuple[str, ...] = MODEL_KINDS, top_n: int = 20, valuable_score: float = 70.0,
                     no_contact_days: int = 60, stale_days: int = STALE_DAYS,
                     random_state: int = 0) -> list[Headline]:
    """The size of the follow-up queue as of ``period``'s last day (:func:`follow_up_queue_as_of`, churn
    risk compared with ``previous``'s last day, default the calendar month before ``period``) as
    the ``follow_up_count`` headline: people with at least one reason, a count (a fact, without a range)."""
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
    (``horizon_days``, ``kinds``) now and at ``previous_as_of``, and the open pipeline weighed by
    :func:`~crm_helpers.analyses.lead_scoring.lead_backtest_as_of`. Memoized
    (:func:`~crm_helpers.store.queries.memoized`): page 03 and :func:`headline_figures` share one
    queue, treat it as read-only."""
    churn = churn_backtest(db, as_of, horizon_days=horizon_days, kinds=kinds, random_state=random_state)
    scored = score_customers(db, as_of, model=churn.model, previous_as_of=previous_as_of)
    pipeline = open_pipeline(opportunities_as_of(db, as_of),
                             lead_backtest_as_of(db, as_of, random_state=random_state).model)
    return follow_up_queue(db, as_of, scored=scored, pipeline=pipeline, top_n=top_n, valuable_score=valuable_score,
                           no_contact_days=no_contact_days, stale_days=stale_days)


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
) -> FollowUpQueue:
    """The ``top_n`` people to contact this week, each with its reasons in words (see :class:`FollowUpQueue`).

    Reasons: an open complaint ticket and a detractor answer as :func:`unhappy_customers` defines them
    (the same people as the call list of :func:`follow_up`, answers of the last ``lookback_days``);
    a valuable customer (value score ≥ ``valuable_score``) whose churn risk is at least
    ``risk_threshold`` and rose by ``rising_by`` or more since the previous scoring; a valuable
    customer not contacted for more than ``no_contact_days`` (or never); an open deal idle for
    more than ``stale_days`` (:func:`crm_helpers.store.facts.deal_stale`). Priority = the sum of :data:`REASON_WEIGHTS` of the reasons plus the
    larger of value score / 100 and the size of the person's largest idle deal as a percentile of
    the idle deals (0–1), explained in plain words by the report's ``priority_meaning``; ties go by
    customer_id. ``scored`` is :func:`crm_helpers.analyses.scoring.score_customers`, ``pipeline`` is
    :func:`crm_helpers.analyses.lead_scoring.open_pipeline`. Names, e-mails and last contacts are looked up
    for the listed people only.
    """
    day = pd.Timestamp(as_date(as_of))
    s = scored.set_index("customer_id")
    valuable = s["value_score"].fillna(0) >= valuable_score
    reasons: list[pd.DataFrame] = []

    def add(mask: pd.Series, kind: str, text: pd.Series) -> None:
        if mask.any():
            reasons.append(pd.DataFrame({"customer_id": mask.index[mask], "kind": kind, "text": text[mask].to_numpy()}))

    unhappy = unhappy_customers(db, day.date(), lookback_days=lookback_days).set_index("customer_id")
    add(unhappy["open_complaints"] > 0, "complaint",
        unhappy["open_complaints"].map(lambda n: "open complaint ticket" if n == 1 else f"{n} open complaint tickets"))
    add(unhappy["last_nps"].notna(), "detractor",
        "detractor: NPS " + unhappy["last_nps"].astype("Int64").astype("string").fillna("") + " on "
        + unhappy["answered_at"].astype(str).str[:10])
    now, before = s["churn_probability"], s["churn_probability_prev"]
    rising = valuable & (now >= risk_threshold) & ((now - before.fillna(now)) >= rising_by)
    add(rising.fillna(False), "churn",
        "valuable (score " + _whole(s["value_score"]) + "), likely to leave: chance up from "
        + _whole(100 * before) + "% to " + _whole(100 * now) + "%")
    silent = valuable & (s["days_since_contact"].isna() | (s["days_since_contact"] > no_contact_days))
    add(silent, "no_contact", s["days_since_contact"].map(
        lambda d: "valuable, never contacted" if pd.isna(d) else f"valuable, no contact for {int(d)} days"))
    stale = pipeline.loc[deal_stale(pipeline["days_since_activity"], stale_days)]
    if len(stale):
        amount = stale["amount"].astype("float64").fillna(0).map(lambda v: f"{v:,.0f}")
        chance = stale["win_probability"].map(lambda p: "" if pd.isna(p) else f", {100 * p:.0f}% win chance")
        text = ("open deal '" + stale["title"].fillna("untitled").astype(str) + "' (" + amount + chance
                + ") idle for " + stale["days_since_activity"].astype(int).astype(str) + " days")
        reasons.append(pd.DataFrame({"customer_id": stale["customer_id"].to_numpy(), "kind": "stale",
                                     "text": text.to_numpy(),
                                     "deal": percentile_rank(stale["amount"].fillna(0)).to_numpy()}))
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

    Written with :func:`crm_helpers.store.safe_csv.write_safe_csv` (formulas neutralized, owner-only).
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
    nps_part = ("detractor (NPS " + frame["last_nps"].astype("Int64").astype(str) + " on "
                + frame["answered_at"].astype(str).str[:10] + ")").where(frame["last_nps"].notna(), "")
    complaint_part = (frame["open_complaints"].astype(str) + " open complaint(s) since "
                      + frame["oldest_open_complaint"].astype(str).str[:10]).where(frame["open_complaints"] > 0, "")
    frame.insert(3, "reason", (nps_part + "; " + complaint_part).str.strip("; "))
    return frame.sort_values(["open_complaints", "last_nps", "customer_id"], ascending=[False, True, True],
                             na_position="last", ignore_index=True)
