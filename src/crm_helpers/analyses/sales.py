"""Sales: the opportunity pipeline, monthly customer flows and the month's headline figures.

Conventions used throughout:

- **Net revenue** is the sum of ``amount − refunded_amount`` (:func:`~crm_helpers.store.facts.net_revenue_sql`)
  over *paid* orders only (:func:`~crm_helpers.store.facts.paid`);
  refunded and cancelled orders are neither revenue nor purchases. Amounts are in the store's
  currency (see :func:`store_currency`).
- Everything is computed **as of** a date given by the caller (the report period's last day),
  never today's date. Opportunities opened after ``as_of`` are ignored.
- The store keeps each opportunity's *current* stage only, not its history. For a past
  ``as_of``, a deal won or lost after ``as_of`` was still open then, but its stage at that time
  is unknown: it is shown as :data:`STAGE_NOT_RECORDED` and left out of weighted amounts.
  Likewise the stage at which a lost deal was lost is not recorded, so the funnel counts lost
  deals at ``lead`` only.

Customer flows (month granularity, paid orders only; ``L`` = ``lapse_months``, default
:data:`~crm_helpers.store.facts.LOST_AFTER_MONTHS`):

- a customer is **in the customer base** at the end of month *m* if they bought in one of the
  ``L`` months ending with *m*;
- **new** in *m*: their first paid order ever is in *m*;
- **returning** in *m*: bought in *m* and was in the base at the end of *m - 1* (bought in one of
  the ``L`` months before *m*);
- **reactivated** in *m*: bought in *m*, had bought before, but not in the ``L`` months before *m*
  (they had lapsed and came back);
- **lost** in *m*: in the base at the end of *m - 1* but not at the end of *m*, i.e. their last
  paid order is exactly ``L`` months before *m* (in month *m - L*) and they have not bought since
  (:func:`~crm_helpers.store.facts.lost_sql`, the one definition).

So ``base(m) = base(m - 1) + new + reactivated - lost`` and every buyer of *m* is exactly one of
new, returning or reactivated.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.queries import memoized, query_df, store_currency
from crm_helpers.i18n import t
from crm_helpers.store.values import Attention, Headline, money_whole
from crm_helpers.store.facts import (
    DEAL_OUTCOMES,
    LOST_AFTER_MONTHS,
    LOYALTY_LABEL,
    LOYALTY_MEANING,
    REPEAT_RATE_MEANING,
    STALE_DAYS,
    category_revenue_sql,
    deal_overdue,
    deal_stale,
    deal_status_at,
    iso,
    lost_meaning,
    lost_month_sql,
    lost_sql,
    loyalty,
    month_index,
    month_index_sql,
    month_label,
    net_revenue_sql,
    next_day,
    on_or_before,
    on_or_before_sql,
    paid,
    repeat_rate,
)
from crm_helpers.store.periods import Period, same_month_last_year
from crm_helpers.store.schema import OPEN_STAGES

FUNNEL_STAGES: tuple[str, ...] = OPEN_STAGES + ("won",)
"""The stages in the order a deal moves through them (``lost`` can follow any of them)."""

DEFAULT_STAGE_PROBABILITY: dict[str, float] = {"lead": 0.1, "qualified": 0.25, "proposal": 0.5, "negotiation": 0.7}
"""Win probability used for an open deal whose ``probability`` is blank."""

STAGE_NOT_RECORDED = "open then (stage not recorded)"
"""Stage label of a deal that was open at ``as_of`` but has been won or lost since."""

HEADLINE_KEYS: tuple[str, ...] = (
    "revenue", "paid_orders", "active_customers", "new_customers", "returning_customers",
    "lost_customers", "repeat_rate",
)
"""The keys of :func:`headline_table` that :func:`headline_figures` hands the index, each with its previous month."""

_COUNT_KEYS = frozenset({"paid_orders", "active_customers", "new_customers", "returning_customers",
                         "reactivated_customers", "lost_customers"})

GOOD_DIRECTION: dict[str, str] = {
    "revenue": "up", "paid_orders": "up", "active_customers": "up", "new_customers": "up",
    "returning_customers": "up", "reactivated_customers": "up", "lost_customers": "down",
    "repeat_rate": "up", "repeat_purchase_share": "up",
}
"""Which way each headline figure moves when things go well for the business."""

_OPPORTUNITY_COLUMNS = (
    "opportunity_id, customer_id, title, source, stage, amount, probability, opened_at, "
    "expected_close, closed_at, last_activity_at, lost_reason"
)




def _shift_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` months after (or before) ``day``'s month."""
    index = month_index(day) + months
    return dt.date(index // 12, index % 12 + 1, 1)


# -- pipeline ------------------------------------------------------------------------------------


@memoized
def opportunities_as_of(db: Database, as_of: dt.date) -> pd.DataFrame:
    """Every opportunity opened on or before ``as_of``, with its state at ``as_of``.

    Returns one row per opportunity: the store's columns (dates as ``datetime64``, ``amount``
    gross, in the store's currency) plus

    - ``status_at``: ``open``, ``won`` or ``lost`` at ``as_of`` (a deal closed after ``as_of``
      was open then; a won or lost deal without ``closed_at`` counts as closed);
    - ``stage_at``: the current stage, or :data:`STAGE_NOT_RECORDED` for deals closed after ``as_of``;
    - ``win_probability``: 1 for won, 0 for lost, the recorded ``probability`` for open deals
      (or :data:`DEFAULT_STAGE_PROBABILITY` when blank), NaN when the stage is not recorded;
    - ``weighted_amount``: ``amount * win_probability`` for open deals, 0 for closed ones;
    - ``won``: 1 for won, 0 for lost, NaN for deals open at ``as_of`` (the lead-scoring outcome);
    - ``age_days``: days from ``opened_at`` to ``closed_at`` for decided deals (NaN without
      ``closed_at``), to ``as_of`` for open ones;
    - ``days_since_activity``: open deals only, calendar days from the day of ``last_activity_at``
      (or ``opened_at`` when blank) to ``as_of`` (0 for activity on ``as_of``, at any hour); NaN for
      decided deals and when the last recorded activity is after the end of ``as_of`` (unknown then).

    Won, lost and open follow :func:`crm_helpers.store.facts.deal_status_at`; a blank ``source`` is
    ``"unknown"``. Memoized (:func:`~crm_helpers.store.queries.memoized`): the frame is shared by
    every caller of the same day, treat it as read-only.
    """
    opps = query_df(
        db,
        f"SELECT {_OPPORTUNITY_COLUMNS} FROM opportunities WHERE {on_or_before_sql('opened_at')} "
        "ORDER BY opened_at, opportunity_id",
        params={"end_next": next_day(as_of)},
        parse_dates=["opened_at", "expected_close", "closed_at", "last_activity_at"],
    )
    opps["amount"] = pd.to_numeric(opps["amount"], errors="coerce").astype(float)
    opps["probability"] = pd.to_numeric(opps["probability"], errors="coerce").astype(float)
    opps["source"] = opps["source"].fillna("").astype(str).str.strip().replace("", "unknown")
    cutoff = pd.Timestamp(as_of)
    opps["status_at"] = deal_status_at(opps["stage"], opps["closed_at"], as_of=as_of)
    closed_later = opps["stage"].isin(DEAL_OUTCOMES) & (opps["status_at"] == "open")
    opps["stage_at"] = opps["stage"].where(~closed_later, STAGE_NOT_RECORDED)
    open_prob = opps["probability"].fillna(opps["stage"].map(DEFAULT_STAGE_PROBABILITY))
    opps["win_probability"] = np.select(
        [opps["status_at"] == "won", opps["status_at"] == "lost", closed_later],
        [1.0, 0.0, np.nan],
        default=open_prob,
    )
    opps["weighted_amount"] = np.where(opps["status_at"] == "open", opps["amount"] * opps["win_probability"], 0.0)
    is_open = opps["status_at"] == "open"
    opps["won"] = (opps["status_at"] == "won").astype(float).where(~is_open)
    end = opps["closed_at"].where(~is_open, cutoff)
    opps["age_days"] = (end - opps["opened_at"]).dt.days.clip(lower=0).astype("float64")
    last = opps["last_activity_at"].fillna(opps["opened_at"])
    opps["days_since_activity"] = (cutoff - last.dt.normalize()).dt.days.where(on_or_before(last, as_of)
                                                                                 & is_open)
    return opps


def pipeline_by_stage(opps: pd.DataFrame) -> pd.DataFrame:
    """Open deals at ``as_of`` by stage: ``stage, deals, amount, weighted_amount, mean_probability``.

    Input: the frame of :func:`opportunities_as_of`. One row per open stage in funnel order (stages
    without deals show 0), plus a :data:`STAGE_NOT_RECORDED` row when there are such deals, plus a
    ``total`` row. ``amount`` is the gross deal value; ``weighted_amount`` is amount × win probability.
    """
    open_deals = opps[opps["status_at"] == "open"]
    stages = list(OPEN_STAGES) + ([STAGE_NOT_RECORDED] if (open_deals["stage_at"] == STAGE_NOT_RECORDED).any() else [])
    grouped = open_deals.groupby("stage_at").agg(
        deals=("opportunity_id", "size"),
        amount=("amount", "sum"),
        weighted_amount=("weighted_amount", "sum"),
        mean_probability=("win_probability", "mean"),
    )
    table = grouped.reindex(stages).fillna({"deals": 0, "amount": 0.0, "weighted_amount": 0.0})
    table["deals"] = table["deals"].astype(int)
    table.loc["total"] = [
        int(table["deals"].sum()), table["amount"].sum(), table["weighted_amount"].sum(),
        open_deals["win_probability"].mean(),
    ]
    table["deals"] = table["deals"].astype(int)
    return table.rename_axis("stage").reset_index()


def stage_funnel(opps: pd.DataFrame) -> pd.DataFrame:
    """How far deals got: ``stage, reached, conversion_from_previous, share_of_leads``.

    Input: the frame of :func:`opportunities_as_of` (all deals opened up to ``as_of``). A deal has
    *reached* a stage when its stage at ``as_of`` is that stage or a later one in
    :data:`FUNNEL_STAGES` (a won deal reached every stage). Lost deals and deals whose stage is not
    recorded count at ``lead`` only, because the store does not keep the stage a deal was lost
    at; late-stage conversions are therefore upper bounds. ``conversion_from_previous`` is
    reached(stage) / reached(previous stage), a share in 0-1 (NaN for the first stage or when
    the previous stage has no deals).
    """
    rank = {stage: k for k, stage in enumerate(FUNNEL_STAGES)}
    furthest = opps["stage_at"].map(rank).fillna(0).to_numpy()
    reached = np.array([(furthest >= k).sum() for k in range(len(FUNNEL_STAGES))], dtype=int)
    previous = np.concatenate([[np.nan], reached[:-1].astype(float)])
    with np.errstate(divide="ignore", invalid="ignore"):
        conversion = np.where(previous > 0, reached / previous, np.nan)
        share = reached / reached[0] if reached[0] else np.full(len(reached), np.nan)
    return pd.DataFrame(
        {"stage": list(FUNNEL_STAGES), "reached": reached, "conversion_from_previous": conversion,
         "share_of_leads": share}
    )


def win_rate(
    opps: pd.DataFrame,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    by: str | None = None,
) -> pd.DataFrame:
    """Win rate of deals decided (won or lost at ``as_of``) with ``closed_at`` in [start, end].

    Input: the frame of :func:`opportunities_as_of`; ``start``/``end`` inclusive (``end`` up to its
    end, :func:`~crm_helpers.store.facts.on_or_before`), ``None`` = open ended (won or lost deals
    without ``closed_at`` count only when both are ``None``). ``by`` groups by a column (e.g.
    ``"source"``). Columns: [by], ``won, lost, decided, win_rate`` (won / decided, 0-1, NaN when
    nothing was decided), ``won_amount, lost_amount`` (gross) and ``value_win_rate`` (won amount /
    decided amount, 0-1).
    """
    decided = opps[opps["status_at"].isin(DEAL_OUTCOMES)]
    if start is not None:
        decided = decided[decided["closed_at"] >= pd.Timestamp(start)]
    if end is not None:
        decided = decided[on_or_before(decided["closed_at"], end)]
    frame = decided.assign(
        won=(decided["status_at"] == "won").astype(int),
        lost=(decided["status_at"] == "lost").astype(int),
        won_amount=decided["amount"].where(decided["status_at"] == "won", 0.0),
        lost_amount=decided["amount"].where(decided["status_at"] == "lost", 0.0),
    )
    cols = ["won", "lost", "won_amount", "lost_amount"]
    if by is None:
        table = frame[cols].sum().to_frame().T
    else:
        table = frame.groupby(frame[by].fillna("not recorded"))[cols].sum().rename_axis(by).reset_index()
    table[["won", "lost"]] = table[["won", "lost"]].astype(int)
    table["decided"] = table["won"] + table["lost"]
    table["win_rate"] = (table["won"] / table["decided"].replace(0, np.nan)).astype(float)
    decided_value = (table["won_amount"] + table["lost_amount"]).replace(0, np.nan)
    table["value_win_rate"] = (table["won_amount"] / decided_value).astype(float)
    order = ([by] if by else []) + ["won", "lost", "decided", "win_rate", "won_amount", "lost_amount", "value_win_rate"]
    return table[order]


def sales_cycle(opps: pd.DataFrame, *, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
    """Average sales cycle in days, from ``opened_at`` to ``closed_at``, of deals decided in [start, end]
    (up to the end of ``end``: :func:`~crm_helpers.store.facts.on_or_before`).

    Input: the frame of :func:`opportunities_as_of`. Rows ``won``, ``lost`` and ``all``; columns
    ``outcome, deals, mean_days, median_days`` (calendar days; NaN when there are no deals).
    Deals still open are not included, so long cycles that have not ended yet are missing: the
    figure describes deals that closed, not every deal.
    """
    closed = opps[opps["status_at"].isin(DEAL_OUTCOMES) & opps["closed_at"].notna()]
    if start is not None:
        closed = closed[closed["closed_at"] >= pd.Timestamp(start)]
    if end is not None:
        closed = closed[on_or_before(closed["closed_at"], end)]
    days = (closed["closed_at"] - closed["opened_at"]).dt.days.astype(float)
    rows = []
    for outcome, mask in (("won", closed["status_at"] == "won"), ("lost", closed["status_at"] == "lost"),
                          ("all", pd.Series(True, index=closed.index))):
        part = days[mask]
        rows.append({"outcome": outcome, "deals": int(len(part)),
                     "mean_days": part.mean() if len(part) else np.nan,
                     "median_days": part.median() if len(part) else np.nan})
    return pd.DataFrame(rows)


def stale_opportunities(opps: pd.DataFrame, stale_days: int = STALE_DAYS) -> pd.DataFrame:
    """Open deals with no activity in the last ``stale_days`` days, longest silence first.

    Input: the frame of :func:`opportunities_as_of`. "No activity" uses ``last_activity_at`` (or
    ``opened_at`` when blank): a deal is stale as :func:`crm_helpers.store.facts.deal_stale` says
    (``days_since_activity > stale_days``, default :data:`~crm_helpers.store.facts.STALE_DAYS`). Deals
    whose last recorded activity is after ``as_of`` are not listed (their silence then is unknown).
    Columns: ``opportunity_id, customer_id, title, source, stage_at, amount, weighted_amount,
    opened_at, last_activity_at, days_since_activity, expected_close``.
    """
    stale = opps[(opps["status_at"] == "open") & deal_stale(opps["days_since_activity"], stale_days)]
    cols = ["opportunity_id", "customer_id", "title", "source", "stage_at", "amount", "weighted_amount",
            "opened_at", "last_activity_at", "days_since_activity", "expected_close"]
    out = stale.sort_values(["days_since_activity", "amount"], ascending=[False, False])[cols]
    return out.astype({"days_since_activity": int}).reset_index(drop=True)


def closed_deals(opps: pd.DataFrame, start: dt.date, *, end: dt.date) -> pd.DataFrame:
    """Deals won or lost with ``closed_at`` in [start, end] (up to the end of ``end``), with the recorded loss reason.

    Columns: ``opportunity_id, customer_id, title, source, outcome, amount, opened_at, closed_at,
    cycle_days, lost_reason`` (``"not recorded"`` for a lost deal without a reason, blank for won).
    """
    mask = (opps["status_at"].isin(DEAL_OUTCOMES) & (opps["closed_at"] >= pd.Timestamp(start))
            & on_or_before(opps["closed_at"], end))
    deals = opps[mask].rename(columns={"status_at": "outcome"})
    deals = deals.assign(
        cycle_days=(deals["closed_at"] - deals["opened_at"]).dt.days,
        lost_reason=deals["lost_reason"].fillna("not recorded").where(deals["outcome"] == "lost", ""),
    )
    cols = ["opportunity_id", "customer_id", "title", "source", "outcome", "amount", "opened_at", "closed_at",
            "cycle_days", "lost_reason"]
    deals = deals.sort_values(["outcome", "closed_at", "opportunity_id"], ascending=[False, True, True])
    return deals[cols].reset_index(drop=True)


def lost_reasons(deals: pd.DataFrame) -> pd.DataFrame:
    """Lost deals of :func:`closed_deals` by reason: ``lost_reason, deals, amount`` (most first)."""
    lost = deals[deals["outcome"] == "lost"]
    table = lost.groupby("lost_reason").agg(deals=("opportunity_id", "size"), amount=("amount", "sum"))
    return table.sort_values(["deals", "amount"], ascending=False).reset_index()


def weighted_pipeline_by_month(opps: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The weighted pipeline forecast per month of expected close, for deals open at ``as_of``.

    Columns: ``expected_close_month`` (``YYYY-MM``, ``"overdue"`` for deals whose expected close
    date is before ``as_of``, :func:`crm_helpers.store.facts.deal_overdue`; ``"no date"`` when blank), ``deals, amount`` (gross),
    ``weighted_amount`` (amount × win probability: what the pipeline is expected to bring in),
    ``cumulative_weighted``. Order: overdue, then months, then no date. Deals whose stage is not
    recorded are counted but add nothing to the weighted amount.
    """
    open_deals = opps[opps["status_at"] == "open"]
    label = open_deals["expected_close"].dt.strftime("%Y-%m")
    label = label.where(~deal_overdue(open_deals["status_at"], open_deals["expected_close"], as_of=as_of), "overdue")
    label = label.where(open_deals["expected_close"].notna(), "no date")
    table = open_deals.assign(expected_close_month=label).groupby("expected_close_month").agg(
        deals=("opportunity_id", "size"), amount=("amount", "sum"), weighted_amount=("weighted_amount", "sum")
    )
    months = sorted(m for m in table.index if m not in ("overdue", "no date"))
    order = [m for m in ("overdue",) if m in table.index] + months + [m for m in ("no date",) if m in table.index]
    table = table.reindex(order)
    table["cumulative_weighted"] = table["weighted_amount"].cumsum()
    return table.reset_index()


def pipeline_split(by_month: pd.DataFrame) -> tuple[float, float]:
    """``(current, overdue)`` weighted amounts of :func:`weighted_pipeline_by_month`: overdue deals
    were expected to close by ``as_of`` and have not, so their money is less certain than the rest
    (current = every other open deal, those without a date included). In the store's currency."""
    overdue = float(by_month.loc[by_month["expected_close_month"] == "overdue", "weighted_amount"].sum())
    return float(by_month["weighted_amount"].sum()) - overdue, overdue


def _pipeline_figures(by_month: pd.DataFrame, currency: str) -> list[Headline]:
    """The ``weighted_pipeline`` (current deals) and ``weighted_pipeline_overdue`` headlines of
    :func:`pipeline_split`, in ``currency`` (the store's)."""
    current, overdue = pipeline_split(by_month)
    return [Headline("weighted_pipeline", current, "Weighted pipeline, current deals", unit=currency,
                     note="open deals not yet past their expected close: amount × chance to win"),
            Headline("weighted_pipeline_overdue", overdue, "Weighted pipeline, overdue deals", unit=currency,
                     note="open deals past their expected close date: less certain money")]


OVERDUE_ATTENTION = "pipeline overdue"
"""The key of the overdue-pipeline item of :func:`attention_items` (lead scoring's action on the same deals
supersedes it on the index)."""


def attention_items(db: Database, *, period: Period) -> list[Attention]:
    """The overdue part of the weighted pipeline at ``period``'s last day (:func:`pipeline_split`, in
    the store's currency), when there is one, as a "Needs attention" item: those deals' dates need
    updating or the deals closing as lost."""
    _, overdue = pipeline_split(weighted_pipeline_by_month(opportunities_as_of(db, period.end), period.end))
    if overdue <= 0:
        return []
    currency = store_currency(db) or "in the store currency"
    return [Attention(OVERDUE_ATTENTION, t("Deals worth {money} (weighted) are past their expected close date: "
                                           "update their dates or close them as lost.",
                                           money=money_whole(overdue, currency)), money=overdue)]


@memoized
def revenue_by_category(db: Database, period: Period, *, previous: Period | None = None) -> pd.DataFrame:
    """Net revenue per product category in ``period`` beside ``previous`` (default: the calendar month
    before ``period``), in the store's currency.

    Columns: category ("no category" when the product has none, and for orders without lines),
    revenue, previous, share_pct (of the period's net revenue).
    Revenue is net revenue as everywhere (refunds taken off, other currencies converted, paid
    orders only), each order's split over its lines by quantity × unit price
    (:func:`crm_helpers.store.facts.category_revenue_sql`): the categories of a month add up to
    the month's net revenue. Biggest first. Memoized (:func:`~crm_helpers.store.queries.memoized`):
    treat the frame as read-only.
    """
    sql = f"""
        SELECT category,
               coalesce(sum(CASE WHEN order_date >= :start THEN revenue END), 0) AS revenue,
               coalesce(sum(CASE WHEN order_date < :prev_end_next THEN revenue END), 0) AS previous
        FROM ({category_revenue_sql("c")} AND c.order_date >= :prev_start AND {on_or_before_sql("c.order_date")})
        GROUP BY 1
    """
    prev = previous or period.previous_month()
    frame = query_df(db, sql, params={"start": iso(period.start), "prev_start": iso(prev.start),
                                      "prev_end_next": next_day(prev.end), "end_next": next_day(period.end)})
    total = float(frame["revenue"].sum()) if len(frame) else 0.0
    frame["share_pct"] = 100 * frame["revenue"] / total if total else 0.0
    return frame.sort_values(["revenue", "category"], ascending=[False, True]).reset_index(drop=True)


def _category_figures(table: pd.DataFrame, currency: str, *, year_ago: pd.DataFrame | None = None) -> list[Headline]:
    """Each category's net revenue of :func:`revenue_by_category` beside the previous month's and,
    from ``year_ago`` (the same function against the same month last year; None when the store does
    not hold it), the same month last year's, as ``revenue_category_<name>`` headlines in
    ``currency``: counted facts without a noise estimate (shown uncoloured)."""
    last_year = {} if year_ago is None else dict(zip(year_ago["category"], year_ago["previous"]))
    figures = []
    for row in table.itertuples():
        key = "revenue_category_" + "".join(ch if ch.isalnum() else "_" for ch in row.category.lower())
        figures.append(Headline(key, _plain(row.revenue), t("Revenue from {category}", category=row.category),
                                unit=currency,
                                note=t("net revenue, {share} % of the month's: each order split over its lines",
                                       share=f"{row.share_pct:.0f}"),
                                good="up", previous=_plain(row.previous),
                                year_ago=None if year_ago is None else _plain(last_year.get(row.category, 0.0)),
                                exact=True, lowest=0.0))
    return figures


# -- customer flows --------------------------------------------------------------------------------



def monthly_customer_flows(db: Database, as_of: dt.date, *, lapse_months: int = LOST_AFTER_MONTHS) -> pd.DataFrame:
    """New, returning, reactivated and lost customers per month, up to ``as_of``'s month.

    Definitions in the module docstring (paid orders only, ``L = lapse_months``). Aggregated in
    SQLite with window functions, so only one small row per month comes back. Columns:
    ``month`` (``YYYY-MM``), ``active`` (customers with a paid order in the month),
    ``new, returning, reactivated, lost, customer_base`` (customers who bought in the ``L`` months
    ending with the month). Months without any purchase are included with zeros; an empty store
    gives an empty frame with these columns. The month of ``as_of`` counts orders up to ``as_of``.
    """
    if lapse_months < 1:
        raise ValueError(f"lapse_months must be at least 1, not {lapse_months}")
    sql = f"""
        WITH cm AS (
            SELECT DISTINCT customer_id, {month_index_sql()} AS m FROM orders
            WHERE {paid()} AND {on_or_before_sql("order_date")}
        ), seq AS (
            SELECT m, lag(m) OVER w AS prev_m, lead(m) OVER w AS next_m
            FROM cm WINDOW w AS (PARTITION BY customer_id ORDER BY m)
        ), bought AS (
            SELECT m, count(*) AS active,
                   sum(prev_m IS NULL) AS "new",
                   sum(m - prev_m <= :lapse) AS "returning",
                   sum(m - prev_m > :lapse) AS reactivated
            FROM seq GROUP BY m
        ), lost AS (
            SELECT {lost_month_sql("m")} AS m, count(*) AS lost FROM seq
            WHERE {lost_sql("m", "next_m")} GROUP BY 1
        )
        SELECT b.m, b.active, b."new", b."returning", b.reactivated, coalesce(l.lost, 0) AS lost
        FROM bought b LEFT JOIN lost l USING (m)
        UNION ALL
        SELECT l.m, 0, 0, 0, 0, l.lost FROM lost l WHERE l.m NOT IN (SELECT m FROM bought)
    """
    counts = query_df(db, sql, params={"end_next": next_day(as_of), "lapse": lapse_months})
    columns = ["month", "active", "new", "returning", "reactivated", "lost", "customer_base"]
    if counts.empty:
        return pd.DataFrame(columns=columns)
    last = month_index(as_of)
    months = np.arange(int(counts["m"].min()), last + 1)
    table = counts.set_index("m").reindex(months).fillna(0).astype(int)
    table["customer_base"] = (table["new"] + table["reactivated"] - table["lost"]).cumsum()
    table.index = [month_label(m) for m in table.index]
    return table.rename_axis("month").reset_index()[columns]


def period_figures(db: Database, start: dt.date, *, end: dt.date,
                   lapse_months: int = LOST_AFTER_MONTHS) -> dict[str, float]:
    """The sales figures of one period [start, end] (inclusive), from SQL aggregates.

    Keys: ``revenue`` (net revenue: sum of paid orders' amounts), ``paid_orders``,
    ``active_customers`` (customers with a paid order in the period), ``new_customers``,
    ``returning_customers``, ``reactivated_customers``, ``lost_customers`` (flows as in the module
    docstring, with months counted from ``start``'s and ``end``'s months; lost as
    :func:`~crm_helpers.store.facts.lost_sql` says, for periods of at most ``L`` months), ``repeat_rate``
    (percent of active customers who had bought before the period: returning + reactivated),
    ``repeat_purchase_share`` (the articles' "customer loyalty" = repeat purchases / all purchases,
    in percent: paid orders of the period that are not a customer's first order). Rates are NaN
    when there is nothing to divide by.
    """
    lapse_start = _shift_months(start, -lapse_months)
    # NOT INDEXED: one scan of the orders and a sort beat a probe of the customer index per order
    # (scale store, 1.25M orders: 2.5 s against 4.1 s of CPU for the period's figures)
    sql = f"""
        WITH c AS (
            SELECT customer_id,
                   min(order_date) AS first_date,
                   max(CASE WHEN order_date < :start THEN order_date END) AS prev_date,
                   max(CASE WHEN order_date < :start THEN {month_index_sql()} END) AS prev_m,
                   min(CASE WHEN order_date >= :start THEN {month_index_sql()} END) AS next_m,
                   max(order_date >= :start) AS bought
            FROM orders NOT INDEXED WHERE {paid()} AND {on_or_before_sql("order_date")} GROUP BY customer_id
        )
        SELECT coalesce(sum(bought), 0),
               coalesce(sum(bought AND first_date >= :start), 0),
               coalesce(sum(bought AND prev_date >= :lapse_start), 0),
               coalesce(sum(bought AND prev_date < :lapse_start), 0),
               coalesce(sum({lost_month_sql("prev_m")} >= :start_m AND {lost_month_sql("prev_m")} <= :end_m
                           AND {lost_sql("prev_m", "next_m")}), 0)
        FROM c
    """
    params = {"start": iso(start), "end_next": next_day(end), "lapse_start": iso(lapse_start),
              "start_m": month_index(start), "end_m": month_index(end), "lapse": lapse_months}
    active, new, returning, reactivated, lost = db.execute(sql, params).fetchone()
    revenue, paid_orders = db.execute(
        f"SELECT coalesce(sum({net_revenue_sql()}), 0), count(*) FROM orders WHERE {paid()} "
        f"AND order_date >= :start AND {on_or_before_sql('order_date')}",
        {"start": iso(start), "end_next": next_day(end)},
    ).fetchone()
    return {
        "revenue": float(revenue),
        "paid_orders": int(paid_orders),
        "active_customers": int(active),
        "new_customers": int(new),
        "returning_customers": int(returning),
        "reactivated_customers": int(reactivated),
        "lost_customers": int(lost),
        "repeat_rate": repeat_rate(db, start, end=end),
        "repeat_purchase_share": 100.0 * loyalty(db, start, end=end)["loyalty"],
    }


def uncertainty(db: Database, start: dt.date, *, end: dt.date,
                figures: dict[str, float]) -> dict[str, tuple[float, float, float]]:
    """``(standard error, 95 % low, 95 % high)`` of each of :func:`period_figures`' figures, in its unit.

    A month's counts vary like Poisson counts even when nothing changed (se = √n, exact Garwood
    interval); a rate like a binomial share of its denominator (se = 100·√(p(1−p)/n) in points,
    Wilson interval); revenue like a compound Poisson sum of its orders (se = √Σ amount², normal
    interval). Used to tell a real move from noise. NaN where there is nothing to divide by.
    """
    from scipy import stats
    from statsmodels.stats.proportion import proportion_confint

    net = net_revenue_sql()
    squares = db.execute(
        f"SELECT coalesce(sum({net} * {net}), 0) FROM orders WHERE {paid()} AND order_date >= :start "
        f"AND {on_or_before_sql('order_date')}",
        {"start": iso(start), "end_next": next_day(end)},
    ).fetchone()[0]

    def count(n: float) -> tuple[float, float, float]:
        low = stats.chi2.ppf(0.025, 2 * n) / 2 if n else 0.0
        return float(np.sqrt(n)), float(low), float(stats.chi2.ppf(0.975, 2 * n + 2) / 2)

    def share(pct: float, n: float) -> tuple[float, float, float]:
        if not n or not np.isfinite(pct):
            return (float("nan"),) * 3
        p = pct / 100
        low, high = proportion_confint(round(p * n), n, method="wilson")
        return 100 * float(np.sqrt(p * (1 - p) / n)), 100 * float(low), 100 * float(high)

    result = {key: count(figures[key]) for key in _COUNT_KEYS}
    se = float(np.sqrt(squares))
    result["revenue"] = (se, figures["revenue"] - 1.96 * se, figures["revenue"] + 1.96 * se)
    result["repeat_rate"] = share(figures["repeat_rate"], figures["active_customers"])
    result["repeat_purchase_share"] = share(figures["repeat_purchase_share"], figures["paid_orders"])
    return result


@memoized
def headline_table(db: Database, period: Period, *, previous: Period | None = None,
                   lapse_months: int = LOST_AFTER_MONTHS) -> pd.DataFrame:
    """The period's headline sales figures beside ``previous``'s (default: the calendar month before).

    Columns: ``key, label, value, previous, change, unit, note, good, se, low, high, se_previous,
    low_previous, high_previous, worth``; ``change`` is value − previous, ``good`` the direction
    good for the business (:data:`GOOD_DIRECTION`), ``se``, ``low``, ``high`` the standard error and
    95 % interval of :func:`uncertainty` (also of the previous month),
    ``worth`` the money one unit stands for (a month's revenue per active customer for customer
    counts, the average order for orders; None for amounts and rates).
    Rows: :data:`HEADLINE_KEYS` plus ``reactivated_customers`` and ``repeat_purchase_share``
    (shown, not recorded). Money in the store's currency (net revenue: paid orders only), rounded
    to cents; counts are whole numbers; a rate that cannot be computed is None. Memoized
    (:func:`~crm_helpers.store.queries.memoized`): treat the frame as read-only.
    """
    now = period_figures(db, period.start, end=period.end, lapse_months=lapse_months)
    prev_period = previous or period.previous_month()
    before = period_figures(db, prev_period.start, end=prev_period.end, lapse_months=lapse_months)
    spread = uncertainty(db, period.start, end=period.end, figures=now)
    spread_before = uncertainty(db, prev_period.start, end=prev_period.end, figures=before)
    per_customer = now["revenue"] / now["active_customers"] if now["active_customers"] else None
    per_order = now["revenue"] / now["paid_orders"] if now["paid_orders"] else None
    worth = {k: per_customer for k in _COUNT_KEYS} | {"paid_orders": per_order}
    currency = store_currency(db)
    lapse = f"{lapse_months} months"
    meta: dict[str, tuple[str, str, str]] = {
        "revenue": ("Revenue", currency, "net revenue: paid orders only, refunds and cancellations excluded"),
        "paid_orders": ("Paid orders", "", "orders with status paid"),
        "active_customers": ("Active customers", "", "customers with a paid order in the period"),
        "new_customers": ("New customers", "", "first paid order ever in the period"),
        "returning_customers": ("Returning customers", "", f"bought in the period and in the {lapse} before it"),
        "reactivated_customers": ("Reactivated customers", "",
                                  f"bought in the period after more than {lapse} without buying"),
        "lost_customers": ("Lost customers", "", lost_meaning(lapse_months)),
        "repeat_rate": ("Repeat rate", "%", REPEAT_RATE_MEANING),
        "repeat_purchase_share": (LOYALTY_LABEL, "%", LOYALTY_MEANING),
    }
    order = list(HEADLINE_KEYS[:6]) + ["reactivated_customers", "repeat_rate", "repeat_purchase_share"]
    rows = [
        {"key": k, "label": meta[k][0], "value": _plain(now[k], k in _COUNT_KEYS),
         "previous": _plain(before[k], k in _COUNT_KEYS), "change": _plain(now[k] - before[k], k in _COUNT_KEYS),
         "unit": meta[k][1], "note": meta[k][2], "good": GOOD_DIRECTION[k], "se": _plain(spread[k][0]),
         "low": _plain(spread[k][1]), "high": _plain(spread[k][2]), "se_previous": _plain(spread_before[k][0]),
         "low_previous": _plain(spread_before[k][1]), "high_previous": _plain(spread_before[k][2]),
         "worth": _plain(worth.get(k))}
        for k in order
    ]
    return pd.DataFrame(rows, dtype=object)


def headline_figures(db: Database, *, period: Period, previous: Period | None = None) -> list[Headline]:
    """What the index shows of sales in ``period``, in this order: the :data:`HEADLINE_KEYS` of
    :func:`headline_table` (money in the store's currency, counts, the repeat rate in %), each beside
    ``previous`` (default: the calendar month before ``period``) and the same month last year (when
    the store holds it, :func:`~crm_helpers.store.periods.same_month_last_year`), with standard
    errors and 95 % intervals that measure their noise; each product category's net revenue
    (:func:`revenue_by_category`, store currency, beside the same two); the weighted pipeline at
    ``period``'s last day, current and overdue deals (:func:`pipeline_split`, store currency, no
    previous month). Every figure but the pipeline is a counted fact (``exact``): the store knows it."""
    currency = store_currency(db)
    by_month = weighted_pipeline_by_month(opportunities_as_of(db, period.end), period.end)
    year = same_month_last_year(db, period)
    return (_table_figures(headline_table(db, period, previous=previous), _year_figures(db, year))
            + _category_figures(revenue_by_category(db, period, previous=previous), currency,
                                year_ago=None if year is None else revenue_by_category(db, period, previous=year))
            + _pipeline_figures(by_month, currency))


def _year_figures(db: Database, year: Period | None) -> dict[str, tuple[float, float]]:
    """``{key: (value, standard error)}`` of :func:`period_figures` and :func:`uncertainty` in the
    same month last year ``year``; empty when the store does not hold it (``year`` None)."""
    if year is None:
        return {}
    figures = period_figures(db, year.start, end=year.end)
    spread = uncertainty(db, year.start, end=year.end, figures=figures)
    return {key: (figures[key], spread[key][0]) for key in HEADLINE_KEYS}


def _table_figures(table: pd.DataFrame, year: dict[str, tuple[float, float]]) -> list[Headline]:
    """The :data:`HEADLINE_KEYS` rows of :func:`headline_table` as headlines, each with its previous
    month and same month last year (``year``, :func:`_year_figures`), standard errors and 95 %
    interval; counted facts, none below zero."""
    figures = []
    for row in table[table["key"].isin(HEADLINE_KEYS)].itertuples():
        count = row.key in _COUNT_KEYS
        year_ago, year_se = year.get(row.key, (None, None))
        figures.append(Headline(row.key, _plain(row.value, count), row.label, unit=row.unit, note=row.note,
                                good=row.good, previous=_plain(row.previous, count), se=row.se,
                                previous_se=row.se_previous, interval=(row.low, row.high), worth=row.worth,
                                year_ago=_plain(year_ago, count), year_ago_se=_plain(year_se), exact=True,
                                lowest=0.0))
    return figures


def _plain(value: Any, count: bool = False) -> float | int | None:
    """A JSON-friendly number: a count as int, an amount or rate rounded to cents, NaN as None."""
    if value is None:
        return None
    number = float(value)
    if np.isnan(number):
        return None
    return int(round(number)) if count else round(number, 2)
