"""Which acquisition channels bring customers who stay and buy again (page 04).

Each buyer's ``acquisition_channel`` (customers table; empty → "unknown") is a covariate of the
purchase model (:class:`crm_helpers.models.covariates.BetaGeoCovariateModel`: BG/NBD whose
purchase rate and dropout depend on the channel), fitted on every buyer's paid purchase days up
to the as-of day (:func:`crm_helpers.analyses.clv.paid_purchase_days`; days, one purchase per day).
For a new customer of each channel it gives the repeat purchases expected in their first year
and those expected in their second (nothing from those who left: staying and buying again in one
figure), each with an 80 % range over the fitted parameters' uncertainty (not over one
customer's own randomness: these are channel averages).
Unlike "CLV by channel" (the average of the customers a channel brought, whatever their age),
it compares channels at the same age, and separates buying often from staying.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlite_utils import Database

from crm_helpers.i18n import t
from crm_helpers.analyses.clv import paid_purchase_days, summary_from_transactions
from crm_helpers.models.btyd import ClvError
from crm_helpers.models.covariates import BetaGeoCovariateModel
from crm_helpers.store.facts import iso
from crm_helpers.store.queries import memoized, query_df
from crm_helpers.store.values import span

MIN_CHANNEL_BUYERS = 30
"""A channel with fewer buyers than this is counted in "other" (too few to say anything of its own)."""

FIRST_YEAR_DAYS = 365


@dataclass
class ChannelOutlook:
    """``table``: by channel (the most buyers first): buyers, purchases, purchases_low,
    purchases_high (repeat purchases in a new customer's first year), later, later_low, later_high
    (purchases in their second year), all ranges 80 %. ``ok``: the model could be fitted; ``message``: why not, or the plain finding."""

    table: pd.DataFrame
    message: str

    @property
    def ok(self) -> bool:
        """True when there is a table to show."""
        return not self.table.empty

    def shown(self) -> pd.DataFrame:
        """The table as the page shows it: one row per channel, each figure with its 80 % range in words."""
        def with_range(column: str) -> pd.Series:
            t = self.table
            ends = zip(t[f"{column}_low"].map("{:.1f}".format), t[f"{column}_high"].map("{:.1f}".format))
            return t[column].map("{:.1f}".format) + pd.Series([f" ({span(low, high)})" for low, high in ends], index=t.index)
        return pd.DataFrame({"buyers so far": self.table["buyers"],
                             "purchases in the first year (80 % range)": with_range("purchases"),
                             "purchases in the second year (80 % range)": with_range("later")},
                            index=self.table.index.rename("channel"))


@memoized
def channel_outlook(db: Database, as_of: dt.date | str, *, min_buyers: int = MIN_CHANNEL_BUYERS,
                    random_state: int = 0) -> ChannelOutlook:
    """Fit the purchase model with the acquisition channel as covariate on the buyers up to ``as_of``
    and compare a new customer's first year by channel (see the module notes)."""
    day = dt.date.fromisoformat(iso(as_of))
    days = paid_purchase_days(db, day)
    if days.empty:
        return ChannelOutlook(pd.DataFrame(), f"no paid orders up to {day}: no channel to compare yet")
    summary = summary_from_transactions(days, "customer_id", datetime_col="order_date", observation_period_end=day)
    channel = query_df(db, "SELECT customer_id, acquisition_channel FROM customers").set_index("customer_id")
    groups = channel["acquisition_channel"].reindex(summary.index).fillna("unknown").replace("", "unknown")
    sizes = groups.value_counts()
    groups = groups.where(groups.map(sizes) >= min_buyers, "other")
    if groups.nunique() < 2:
        return ChannelOutlook(pd.DataFrame(), "the buyers do not come from two channels with "
                                              f"{min_buyers} or more buyers each: no channels to compare")
    try:
        model = BetaGeoCovariateModel().fit(summary["frequency"], summary["recency"], summary["T"], groups=groups)
    except ClvError as exc:
        return ChannelOutlook(pd.DataFrame(), f"channels cannot be compared: {exc}")
    table = model.group_outlook(FIRST_YEAR_DAYS, random_state=random_state).rename(columns={"customers": "buyers"})
    table.index.name = "channel"
    return ChannelOutlook(table, _finding(table))


def _finding(table: pd.DataFrame) -> str:
    """Plain sentences: the channels whose new customers buy again most and least in their first and
    second years, and whether the 80 % ranges tell them apart."""
    def figure(column: str, channel: str) -> str:
        value, lo, hi = (table.loc[channel, c] for c in (column, f"{column}_low", f"{column}_high"))
        return t("{value} times (80 % range {range} times)", value=f"{value:.1f}", range=span(f"{lo:.1f}", f"{hi:.1f}"))

    def compare(column: str, *, apart: str, overlap: str) -> str:
        best, worst = table[column].idxmax(), table[column].idxmin()
        sentence = apart if table.loc[best, f"{column}_low"] > table.loc[worst, f"{column}_high"] else overlap
        return t(sentence, best=t(best), best_figure=figure(column, best), worst=t(worst),
                 worst_figure=figure(column, worst))
    return " ".join([
        compare("purchases", apart=FIRST_YEAR_APART, overlap=FIRST_YEAR_OVERLAP),
        compare("later", apart=SECOND_YEAR_APART, overlap=SECOND_YEAR_OVERLAP),
    ])


FIRST_YEAR_APART = ("In their first year, new customers buy again most often when they came from {best}: "
                    "{best_figure}, least from {worst}: {worst_figure}; the ranges do not overlap, so the "
                    "difference is real.")
FIRST_YEAR_OVERLAP = ("In their first year, new customers buy again most often when they came from {best}: "
                      "{best_figure}, least from {worst}: {worst_figure}; the ranges overlap, so the data cannot "
                      "yet tell these two apart.")
SECOND_YEAR_APART = ("In their second year, customers still buy most when they came from {best}: {best_figure}, "
                     "least from {worst}: {worst_figure}; the ranges do not overlap, so the difference is real.")
SECOND_YEAR_OVERLAP = ("In their second year, customers still buy most when they came from {best}: {best_figure}, "
                       "least from {worst}: {worst_figure}; the ranges overlap, so the data cannot yet tell these "
                       "two apart.")
"""The channel finding's sentences: the channel whose new customers buy again most ({best}) and least
({worst}) with their figures, and whether the 80 % ranges tell them apart."""
