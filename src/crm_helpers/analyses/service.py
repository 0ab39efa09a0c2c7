"""Service tickets: volume, response and resolution times, backlog, ticket CSAT and later NPS.

Conventions (also in ``docs/satisfaction.md``):

- times are in **hours** (first response = ``first_response_at − opened_at``, resolution =
  ``closed_at − opened_at``), ages in **days**; a month counts tickets by ``opened_at``;
- everything is **as of** a date: a response or a close after ``as_of`` has not happened yet, so
  re-running an old month gives the figures that month's report gave. Medians and 90th
  percentiles are over the tickets that had a response (or were closed) by then; the others are
  counted as still waiting;
- open, closed and **reopened** tickets as :mod:`crm_helpers.store.facts` defines them: the store keeps
  no ticket history, so a reopened ticket is one with a ``closed_at`` but an open or pending status
  (closed once, opened again), and it counts as open.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.queries import query_df, store_currency
from crm_helpers.i18n import t
from crm_helpers.store.values import Action, Headline, named_list
from crm_helpers.store.facts import iso, net_revenue_sql, next_day, on_or_before_sql, paid, ticket_closed_sql, ticket_open_sql, ticket_reopened_sql
from crm_helpers.store.periods import Period, same_month_last_year
from crm_helpers.analyses.satisfaction import (DETRACTOR_MAX, PROMOTER_MIN, lookback_start, nps_ci, nps_score,
                                               unhappy_leave_chance)

RESOLUTION_BANDS = (0, 24, 48, 24 * 7, np.inf)
RESOLUTION_LABELS = ("within a day", "1–2 days", "2–7 days", "over a week")






def tickets(
    db: Database, start: dt.date | str, *, end: dt.date | str, as_of: dt.date | None = None
) -> pd.DataFrame:
    """Tickets opened in [start, end], as known at the end of ``as_of`` (default ``end``).

    Columns: ticket_id, customer_id, opened_at, first_response_at, closed_at (datetime64; blank
    when it happened after ``as_of``, and for a reopened ticket), month (YYYY-MM of opening),
    category, priority, status (as stored today), csat (ticket rating 1–5, only for tickets closed
    by ``as_of``), first_response_hours, resolution_hours (hours, NaN while waiting).
    """
    cutoff = next_day(as_of or end)
    closed = ticket_closed_sql()
    sql = f"""
    SELECT ticket_id, customer_id, opened_at,
           CASE WHEN first_response_at < :cutoff THEN first_response_at END AS first_response_at,
           CASE WHEN {closed} THEN closed_at END AS closed_at,
           substr(opened_at, 1, 7) AS month, category, priority, status,
           CASE WHEN {closed} THEN csat END AS csat,
           CASE WHEN first_response_at < :cutoff
                THEN (julianday(first_response_at) - julianday(opened_at)) * 24 END AS first_response_hours,
           CASE WHEN {closed}
                THEN (julianday(closed_at) - julianday(opened_at)) * 24 END AS resolution_hours
    FROM tickets WHERE opened_at >= :start AND opened_at < :end_next ORDER BY opened_at, ticket_id
    """
    frame = query_df(db, sql, params={"cutoff": cutoff, "start": iso(start), "end_next": next_day(end)},
                     parse_dates=["opened_at", "first_response_at", "closed_at"])
    for col in ("csat", "first_response_hours", "resolution_hours"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


def volume_by_month(ticket_frame: pd.DataFrame) -> pd.DataFrame:
    """Tickets opened per month (rows) and category (columns), with a ``total`` column."""
    table = pd.crosstab(ticket_frame["month"], ticket_frame["category"].fillna("uncategorized"))
    table["total"] = table.sum(axis=1)
    return table.rename_axis(index="month", columns=None)


def _p90(values: pd.Series) -> float:
    return float(values.quantile(0.9)) if values.notna().any() else float("nan")


def response_times(ticket_frame: pd.DataFrame, *, by: str | None = "month") -> pd.DataFrame:
    """First-response and resolution times in hours: median and 90th percentile per group.

    ``by`` is a column of :func:`tickets` (``"month"``, ``"category"``...) or None for one row
    over all tickets. Columns: tickets, answered, waiting_for_answer, median_first_response_hours,
    p90_first_response_hours, closed, still_open, median_resolution_hours, p90_resolution_hours.
    """
    frame = ticket_frame.assign(_all="all")
    key = by or "_all"
    grouped = frame.groupby(key, sort=True)
    table = pd.DataFrame({
        "tickets": grouped.size(),
        "answered": grouped["first_response_hours"].count(),
        "median_first_response_hours": grouped["first_response_hours"].median(),
        "p90_first_response_hours": grouped["first_response_hours"].agg(_p90),
        "closed": grouped["resolution_hours"].count(),
        "median_resolution_hours": grouped["resolution_hours"].median(),
        "p90_resolution_hours": grouped["resolution_hours"].agg(_p90),
    })
    table.insert(2, "waiting_for_answer", table["tickets"] - table["answered"])
    table.insert(6, "still_open", table["tickets"] - table["closed"])
    if by is None:
        table.index = ["all"]
    return table.rename_axis(by or None)


def period_times(db: Database, period: Period) -> pd.Series:
    """:func:`response_times` over the tickets opened in ``period``, as of its last day (one row).

    An empty period gives 0 tickets and NaN times.
    """
    frame = tickets(db, period.start, end=period.end)
    if frame.empty:
        row = pd.Series({"tickets": 0, "answered": 0, "waiting_for_answer": 0,
                         "median_first_response_hours": np.nan, "p90_first_response_hours": np.nan,
                         "closed": 0, "still_open": 0, "median_resolution_hours": np.nan,
                         "p90_resolution_hours": np.nan})
    else:
        row = response_times(frame, by=None).iloc[0]
    row = row.astype(object)
    row["label"] = period.label
    return row


def headline_figures(db: Database, *, period: Period, previous: Period | None = None) -> list[Headline]:
    """The median first response in hours of the tickets opened in ``period`` beside those opened in
    ``previous`` (default: the calendar month before ``period``) and in the same month last year (when
    the store holds it, :func:`~crm_helpers.store.periods.same_month_last_year`), each as of its own
    last day (:func:`period_times`), as a headline for the report index; shorter is better. A fact
    of the store's tickets, without a noise estimate."""
    current = period_times(db, period)
    before = period_times(db, previous or period.previous_month())
    year = same_month_last_year(db, period)

    def hours(row: pd.Series) -> float | None:
        value = row["median_first_response_hours"]
        return round(float(value), 1) if np.isfinite(value) else None

    return [Headline("median_first_response_hours", hours(current), "Median first response, hours", good="down",
                     note=t("{tickets} tickets opened, {answered} answered by month end",
                            tickets=int(current["tickets"]), answered=int(current["answered"])),
                     previous=hours(before), year_ago=None if year is None else hours(period_times(db, year)),
                     exact=True, lowest=0.0)]


def backlog(db: Database, as_of: dt.date) -> pd.DataFrame:
    """Tickets open at the end of ``as_of``: opened by then and not closed by then.

    Columns: ticket_id, customer_id, category, priority, opened_at (datetime64), answered (bool:
    a first response by ``as_of``), age_days (from opening to the end of ``as_of``), reopened
    (closed once but open again: only detectable when the ticket is open now). Oldest first.
    """
    cutoff = next_day(as_of)
    reopened, open_ = ticket_reopened_sql(), ticket_open_sql()
    sql = f"""
    SELECT ticket_id, customer_id, category, priority, opened_at,
           COALESCE(first_response_at < :cutoff, 0) AS answered,
           (julianday(:cutoff) - julianday(opened_at)) AS age_days,
           {reopened} AS reopened
    FROM tickets
    WHERE opened_at < :cutoff
      AND {open_}
    ORDER BY opened_at, ticket_id
    """
    frame = query_df(db, sql, params={"cutoff": cutoff}, parse_dates=["opened_at"])
    frame["answered"] = frame["answered"].astype(bool)
    frame["reopened"] = frame["reopened"].astype(bool)
    frame["age_days"] = frame["age_days"].astype(float)
    return frame


def backlog_summary(backlog_frame: pd.DataFrame) -> pd.DataFrame:
    """Open tickets per category: open, not_answered, median_age_days, oldest_age_days, plus a total row."""
    frame = backlog_frame.assign(category=backlog_frame["category"].fillna("uncategorized"))
    columns = ["open", "not_answered", "median_age_days", "oldest_age_days"]
    if frame.empty:
        return pd.DataFrame([[0, 0, np.nan, np.nan]], columns=columns, index=pd.Index(["all"], name="category"))

    def summarize(group: pd.DataFrame) -> pd.Series:
        return pd.Series([len(group), int((~group["answered"]).sum()), group["age_days"].median(),
                          group["age_days"].max()], index=columns)

    table = frame.groupby("category")[["answered", "age_days"]].apply(summarize)
    table.loc["all"] = summarize(frame)
    return table.astype({"open": int, "not_answered": int})


def long_running(db: Database, period: Period, *, threshold_days: float = 7) -> pd.DataFrame:
    """Tickets that took or are taking longer than ``threshold_days``, and reopened tickets.

    Rows: tickets still open at the period's end and older than the threshold, tickets closed in
    the period after more than the threshold, and reopened tickets (see the module note).
    Columns: ticket_id, customer_id, category, opened_at, closed_at, days, why. Longest first.
    """
    cutoff = next_day(period.end)
    closed, reopened, open_ = ticket_closed_sql(), ticket_reopened_sql(), ticket_open_sql()
    sql = f"""
    SELECT ticket_id, customer_id, category, opened_at,
           CASE WHEN {closed} THEN closed_at END AS closed_at,
           CASE WHEN {closed} THEN julianday(closed_at) - julianday(opened_at)
                ELSE julianday(:cutoff) - julianday(opened_at) END AS days,
           {reopened} AS reopened
    FROM tickets
    WHERE opened_at < :cutoff AND (
          {reopened}
       OR ({open_} AND julianday(:cutoff) - julianday(opened_at) > :threshold)
       OR (closed_at >= :start AND closed_at < :cutoff AND julianday(closed_at) - julianday(opened_at) > :threshold))
    """
    frame = query_df(db, sql, params={"cutoff": cutoff, "start": iso(period.start), "threshold": threshold_days},
                     parse_dates=["opened_at", "closed_at"])
    frame["days"] = frame["days"].astype(float)
    days = f"{threshold_days:g}"
    why = np.where(frame["reopened"].astype(bool), t("reopened (closed once, open again)"),
                   np.where(frame["closed_at"].isna(), t("open for more than {days} days", days=days),
                            t("closed after more than {days} days", days=days)))
    frame["why"] = why
    return frame.drop(columns="reopened").sort_values("days", ascending=False, ignore_index=True)


def csat_after_close(ticket_frame: pd.DataFrame, *, by: str = "month") -> pd.DataFrame:
    """Ticket ratings (1–5) of closed tickets: per month of opening or per resolution-time band.

    ``by="month"`` or ``by="resolution"`` (bands: within a day, 1–2 days, 2–7 days, over a
    week). Columns: closed, rated, csat_pct (% of ratings 4–5), mean_rating.
    """
    closed = ticket_frame[ticket_frame["resolution_hours"].notna()]
    if by == "resolution":
        key = pd.cut(closed["resolution_hours"], RESOLUTION_BANDS, labels=RESOLUTION_LABELS, right=True,
                     include_lowest=True).rename("resolution")
    elif by == "month":
        key = closed["month"]
    else:
        raise ValueError(f"by must be 'month' or 'resolution', not {by!r}")
    grouped = closed.groupby(key, observed=False)
    return pd.DataFrame({
        "closed": grouped.size(),
        "rated": grouped["csat"].count(),
        "csat_pct": grouped["csat"].agg(lambda s: 100 * (s >= 4).sum() / s.count() if s.count() else np.nan),
        "mean_rating": grouped["csat"].mean(),
    })


_EXPERIENCE_SQL = """
WITH answers AS (
  SELECT feedback_id, customer_id, submitted_at, nps FROM feedback
  WHERE nps IS NOT NULL AND submitted_at >= :since AND submitted_at < :end_next
), recent AS (
  SELECT a.feedback_id, t.csat, CASE WHEN t.status = 'closed' THEN t.closed_at END AS closed_at,
         ROW_NUMBER() OVER (PARTITION BY a.feedback_id ORDER BY t.opened_at DESC, t.ticket_id DESC) AS rn
  FROM answers a JOIN tickets t ON t.customer_id = a.customer_id
   AND t.opened_at < a.submitted_at AND t.opened_at >= date(a.submitted_at, :window)
)
SELECT a.nps, r.feedback_id IS NOT NULL AS had_ticket, r.closed_at < a.submitted_at AS closed_before,
       r.csat AS ticket_csat
FROM answers a LEFT JOIN recent r ON r.feedback_id = a.feedback_id AND r.rn = 1
"""

EXPERIENCE_GROUPS = ("no ticket", "ticket closed, rated 4–5", "ticket closed, rated 1–3",
                     "ticket closed, not rated", "ticket still open")
ANY_TICKET = "any recent ticket"


def ticket_experience_nps(
    db: Database, as_of: dt.date, *, lookback_days: int = 365, window_days: int = 90, n_boot: int = 2000,
    random_state: int = 0,
) -> pd.DataFrame:
    """NPS of later answers by the customer's ticket experience before answering.

    For every NPS answer in the ``lookback_days`` days to ``as_of``, the customer's latest ticket
    opened in the ``window_days`` days before the answer puts it in a group: no ticket; ticket
    closed before the answer and rated 4–5, rated 1–3, or not rated; ticket still open when
    answering; a row "any recent ticket" pools the four ticket groups. Columns per group: answers,
    promoters, detractors, nps, nps_ci_low, nps_ci_high (bootstrap, seeded). This is an
    association, not proof that tickets cause the score: unhappy customers also write more tickets.
    """
    since = (as_of - dt.timedelta(days=lookback_days - 1)).isoformat()
    frame = query_df(db, _EXPERIENCE_SQL, params={"since": since, "end_next": next_day(as_of),
                                            "window": f"-{int(window_days)} days"})
    had = frame["had_ticket"].fillna(0).astype(bool)
    closed = frame["closed_before"].fillna(0).astype(bool)
    rating = pd.to_numeric(frame["ticket_csat"], errors="coerce")
    group = np.select(
        [~had, had & ~closed, closed & (rating >= 4), closed & (rating <= 3)],
        [EXPERIENCE_GROUPS[0], EXPERIENCE_GROUPS[4], EXPERIENCE_GROUPS[1], EXPERIENCE_GROUPS[2]],
        default=EXPERIENCE_GROUPS[3],
    )
    scores = pd.to_numeric(frame["nps"], errors="coerce")
    rows = []
    for name in (EXPERIENCE_GROUPS[0], ANY_TICKET, *EXPERIENCE_GROUPS[1:]):
        s = scores[had.to_numpy()] if name == ANY_TICKET else scores[group == name]
        pro, det = int((s >= PROMOTER_MIN).sum()), int((s <= DETRACTOR_MAX).sum())
        pas = len(s) - pro - det
        low, high = nps_ci(pro, pas, detractors=det, n_boot=n_boot, random_state=random_state)
        rows.append({"ticket experience": name, "answers": len(s), "promoters": pro, "detractors": det,
                     "nps": nps_score(pro, pas, detractors=det), "nps_ci_low": low, "nps_ci_high": high})
    return pd.DataFrame(rows).set_index("ticket experience")


MIN_RATED = 10
"""A resolution band needs this many rated tickets before :func:`actions` compares it."""


def actions(db: Database, *, period: Period) -> list[Action]:
    """Solve tickets within a day, when slower tickets are rated worse: the tickets opened in the 12
    months up to ``period``'s end (:func:`csat_after_close` by resolution band), each band slower than
    a day against "within a day" (at least :data:`MIN_RATED` rated tickets in each).

    Money at stake (store currency) = value × drop × chance of leaving: for every customer with a
    ticket solved in more than a day, their net revenue of those 12 months, times the drop in the
    share of satisfied ratings from "within a day" to the band of their slowest ticket (the share
    of them slow service made unsatisfied), times how often an unhappy buyer with as many orders
    stopped buying in this store (:func:`crm_helpers.analyses.satisfaction.unhappy_leave_chance`;
    without it, no action). The range takes each drop at the bounds of its 95 % interval (normal
    approximation of a difference of two shares, within 0–1).
    """
    end = period.end
    start = lookback_start(end, months=12)
    frame = tickets(db, start, end=end)
    bands = csat_after_close(frame, by="resolution")
    fast = bands.loc[RESOLUTION_LABELS[0]]
    if fast["rated"] < MIN_RATED:
        return []
    p0, n0 = fast["csat_pct"] / 100, fast["rated"]
    drops: dict[str, tuple[float, float, float]] = {}
    for label in RESOLUTION_LABELS[1:]:
        row = bands.loc[label]
        if row["rated"] >= MIN_RATED and row["csat_pct"] / 100 < p0:
            p, n = row["csat_pct"] / 100, row["rated"]
            drop, se = p0 - p, float(np.sqrt(p0 * (1 - p0) / n0 + p * (1 - p) / n))
            drops[label] = (drop, max(0.0, drop - 1.959964 * se), min(1.0, drop + 1.959964 * se))
    if not drops:
        return []
    slow = frame[frame["resolution_hours"] > RESOLUTION_BANDS[1]].copy()
    slow["band"] = pd.cut(slow["resolution_hours"], RESOLUTION_BANDS, labels=RESOLUTION_LABELS).astype(str)
    slowest = slow.sort_values("resolution_hours").groupby("customer_id")["band"].last()
    value = query_df(db, f"SELECT customer_id, sum({net_revenue_sql()}) AS value FROM orders WHERE {paid()} "
                         f"AND order_date >= :start AND {on_or_before_sql('order_date')} GROUP BY customer_id",
                     params={"start": iso(start), "end_next": next_day(end)}).set_index("customer_id")["value"]
    customers = pd.DataFrame({"band": slowest, "value": value.reindex(slowest.index).fillna(0.0)})
    customers = customers[customers["band"].isin(list(drops))]
    orders = query_df(db, f"SELECT customer_id, count(*) AS orders FROM orders WHERE {paid()} "
                          f"AND {on_or_before_sql('order_date')} GROUP BY customer_id",
                      params={"end_next": next_day(end)}).set_index("customer_id")["orders"]
    leave = unhappy_leave_chance(db, end, orders=orders.reindex(customers.index).fillna(0))
    customers = customers.assign(leave=leave).dropna(subset=["leave"])
    if customers.empty:
        return []
    money = [float((customers["value"] * customers["leave"]
                    * customers["band"].map({b: d[i] for b, d in drops.items()})).sum()) for i in range(3)]
    currency = store_currency(db)
    compared = named_list([t("{pct} % for {band}", pct=f"{bands.loc[b, 'csat_pct']:.0f}", band=t(b)) for b in drops])
    return [Action(
        "service delay",
        t("Solve tickets within a day: {fast} % of tickets solved within a day were rated satisfied, against "
          "{compared}; {count} customers had a slower ticket in the last 12 months, and {leave} % of unhappy "
          "customers like them stopped buying within 90 days.", fast=f"{fast['csat_pct']:.0f}", compared=compared,
          count=f"{len(customers):,}", leave=f"{100 * customers['leave'].mean():.0f}"),
        money[0], currency=currency, low=money[1], high=money[2], page="05_satisfaction_review",
        section="Ticket satisfaction after closing")]
