"""The three-line summary that opens every page of the pack: what the page found, in plain words
with numbers and units, the most important finding first.

One function per page builds its :class:`Summary` from what the page's notebook computed anyway
(its headline figures, its import results, its plan), so nothing is computed twice and the
notebook only displays: its last cell, tagged ``summary``, calls ``summaries.show(...)``. The page
(:func:`crm_helpers.report.pages.write_html`) lifts that output to the top, right under the title.

Every sentence is a whole sentence with named placeholders (the module constants below), passed
through :func:`crm_helpers.i18n.t` when it is filled in, so a translation replaces the sentence,
never a fragment of it; the names it holds (a figure's label, a segment, a reason) are looked up in
the catalogue too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crm_helpers.i18n import t
from crm_helpers.report import numbers
from crm_helpers.store.values import NOT_AVAILABLE, Headline, money_span

MIME_TYPE = "application/vnd.crm-summary+json"
"""The output a summary cell displays; the page shows it under its title (and nowhere else)."""
TAG = "summary"
"""The tag of the notebook cell that displays the summary."""
MAX_LINES = 3
"""A summary holds at most this many sentences, one a line."""

FIGURE = "{label}: {value}."
FIGURE_MOVED = "{label}: {value}, against {previous} the month before."
FIGURE_MISSING = "{label}: {reason}."
GAP = "A gap in the data makes the other pages less reliable: {finding}."
GAPS = "{count} gaps in the data make the other pages less reliable; the biggest: {finding}."
NO_GAPS = "No gap in the data: every table is as up to date as its usual pace says."
IMPORTED = "{files} files came in: {rows} rows imported, {rejected} rows left out."
INBOX_EMPTY = "Nothing new came in this month: the inbox held no file to import."
STORE_HOLDS = "The store holds {orders} orders of {customers} customers, the newest from {newest}."
SEGMENT_LARGEST = "The largest of your {buyers} buyers' segments is {segment}: {customers} customers, {share} of them."
REASON = "The most common reason to contact someone is {reason}: {people} people."
PLAN_EFFECT = "All levers together would bring about {effect} over the next {months} months (80 % range {range})."
PLAN_NOTHING = "No lever is set: set a win-back share or a repeat-rate rise to value it."


@dataclass(frozen=True)
class Summary:
    """A page's summary: at most :data:`MAX_LINES` sentences, the most important first."""

    lines: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when there is something to say."""
        return bool(self.lines)

    @property
    def message(self) -> str:
        """The summary as one paragraph."""
        return " ".join(self.lines)


def summary(lines: Iterable[str]) -> Summary:
    """The first :data:`MAX_LINES` non-blank sentences of ``lines``."""
    return Summary(tuple(line for line in lines if line)[:MAX_LINES])


def figure_sentence(figure: Headline) -> str:
    """One headline figure as a sentence: its value, and last month's beside it when known."""
    if figure.value is None or isinstance(figure.value, str):
        reason = figure.missing or figure.note or NOT_AVAILABLE
        return t(FIGURE_MISSING, label=t(figure.label), reason=t(reason))
    value = numbers.figure(figure.value, figure.unit)
    if figure.previous is None:
        return t(FIGURE, label=t(figure.label), value=value)
    return t(FIGURE_MOVED, label=t(figure.label), value=value, previous=numbers.figure(figure.previous, figure.unit))


def from_figures(figures: Iterable[Headline], *, keys: Sequence[str]) -> list[str]:
    """The sentences of the figures named in ``keys``, in that order (keys not recorded are skipped)."""
    found = {figure.key: figure for figure in figures}
    return [figure_sentence(found[key]) for key in keys if key in found]


def import_page(results: pd.DataFrame | None, *, gaps: Sequence[Any], overview: pd.DataFrame) -> Summary:
    """Page 01: the gaps in the data first when there are any (they mislead every other page), then
    what the inbox brought, then how much the store holds. ``results``: the inbox's outcome (one
    row per file, :func:`crm_helpers.ingest.inbox.import_inbox`; None or empty: nothing came in);
    ``gaps``: :func:`crm_helpers.analyses.quality.data_gaps`; ``overview``:
    :func:`crm_helpers.analyses.quality.table_overview`."""
    lines = []
    if gaps:
        finding = str(gaps[0].finding).rstrip(".")
        lines.append(t(GAP, finding=finding) if len(gaps) == 1 else
                     t(GAPS, count=numbers.count(len(gaps)), finding=finding))
    if results is None or results.empty:
        lines.append(t(INBOX_EMPTY))
    else:
        lines.append(t(IMPORTED, files=numbers.count(len(results)),
                                     rows=numbers.count(results["inserted"].sum() + results["updated"].sum()),
                                     rejected=numbers.count(results["rejected"].sum())))
    if not gaps:
        lines.append(t(NO_GAPS))
    rows = overview.set_index("table")
    if "orders" in rows.index and rows.at["orders", "rows"]:
        lines.append(t(STORE_HOLDS, orders=numbers.count(rows.at["orders", "rows"]),
                                        customers=numbers.count(rows.at["customers", "rows"]),
                                        newest=rows.at["orders", "last"]))
    return summary(lines)


def segments_page(figures: Iterable[Headline], *, segments: pd.DataFrame) -> Summary:
    """Page 02: customers at risk, regulars late for their reorder, the largest segment.
    ``segments``: :func:`crm_helpers.analyses.segmentation.segment_summary`."""
    lines = from_figures(figures, keys=["at_risk_customers", "late_regulars"])
    if not segments.empty and segments["customers"].sum():
        top = segments.loc[segments["customers"].idxmax()]
        lines.append(t(SEGMENT_LARGEST, buyers=numbers.count(segments["customers"].sum()), segment=t(str(top["segment"])),
                                            customers=numbers.count(top["customers"]),
                                            share=numbers.percent(top["share_pct"])))
    return summary(lines)


def scoring_page(figures: Iterable[Headline], *, by_reason: pd.DataFrame) -> Summary:
    """Page 03: how many people to contact, and the most common reason. ``by_reason``: people per
    reason (:class:`crm_helpers.analyses.followup.FollowUpQueue`'s ``by_reason``)."""
    lines = from_figures(figures, keys=["follow_up_count"])
    if not by_reason.empty:
        top = by_reason.sort_values("people", ascending=False).iloc[0]
        lines.append(t(REASON, reason=t(str(top["reason"])), people=numbers.count(top["people"])))
    return summary(lines)


VALUE_KEYS = ("total_expected_clv", "customers_probably_lost", "best_campaign_lift")
SATISFACTION_KEYS = ("nps", "csat", "median_first_response_hours")
SALES_KEYS = ("revenue", "forecast_next_month_revenue", "weighted_pipeline")


def value_page(figures: Iterable[Headline]) -> Summary:
    """Page 04: what the customers are worth, how many have probably left, the best campaign."""
    return summary(from_figures(figures, keys=VALUE_KEYS))


def satisfaction_page(figures: Iterable[Headline]) -> Summary:
    """Page 05: NPS, CSAT and how fast tickets were answered."""
    return summary(from_figures(figures, keys=SATISFACTION_KEYS))


def sales_page(figures: Iterable[Headline]) -> Summary:
    """Page 06: the month's revenue, next month's forecast, the weighted pipeline."""
    return summary(from_figures(figures, keys=SALES_KEYS))


def plan_page(plan: Any) -> Summary:
    """Page 07: the levers' effect (:class:`crm_helpers.analyses.plan.PlanEffect`): its own
    sentence per lever, then all levers together with their 80 % range."""
    if not plan.ok:
        return summary([plan.message])
    if plan.parts.empty:
        return summary([t(PLAN_NOTHING)])
    together = t(
        PLAN_EFFECT, effect=numbers.money(plan.effect, plan.currency, signed=True), months=plan.horizon_months,
        range=money_span(plan.low, plan.high, currency=plan.currency, signed=True))
    return summary([together, plan.sentence] if len(plan.parts) > 1 else [plan.sentence])


def show(page_summary: Summary) -> None:
    """Display ``page_summary`` in a notebook: as text in JupyterLab, and as :data:`MIME_TYPE` for
    the page, which shows it under its title."""
    from IPython.display import display

    display({MIME_TYPE: list(page_summary.lines), "text/plain": "\n".join(page_summary.lines)}, raw=True)


def read(notebook: Any) -> tuple[str, ...]:
    """The summary an executed notebook displayed (() when it has none)."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            lines = output.get("data", {}).get(MIME_TYPE)
            if lines is not None:
                return tuple(str(line) for line in lines)
    return ()
