"""Every plot of the pages, and the one look they share (:func:`setup`).

The plots are grouped by the page that shows them; each takes what an analysis of
:mod:`crm_helpers.analyses` returned (a table or a result object) and only draws it. An
analysis's constant or helper a plot needs (a metric's label, the segment grid) is imported
inside the plot, as are seaborn and pyplot: every notebook imports this module for
:func:`setup`, and should load only the analyses it uses.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import pandas as pd

from crm_helpers.i18n import DEFAULT, language, t

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontManager

    from crm_helpers.analyses.clv import HoldoutValidation
    from crm_helpers.analyses.forecast import SalesForecast
    from crm_helpers.analyses.rhythm import PurchaseRhythm
    from crm_helpers.models.btyd import PurchaseModel

#: Fonts with Chinese glyphs, in order of preference: those shipped by Linux distributions
#: (Noto/Source Han, WenQuanYi), then macOS and Windows. Product names and comments from Taobao,
#: WeChat Pay or 问卷星 exports are Chinese; without one of these they would be drawn as boxes.
CJK_FONTS = (
    "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
    "PingFang SC", "Heiti SC", "Microsoft YaHei", "SimHei", "Noto Sans CJK JP",
)

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
"""Jupyter's inline backend: figures become PNG outputs of the cell that drew them."""


def installed_cjk_fonts() -> list[str]:
    """The families of `CJK_FONTS` that matplotlib can find on this machine, in preference order.

    matplotlib caches the machine's font list the first time it runs and does not look again, so a
    Chinese font installed later (say, after the first report) would never be used: Chinese would be
    drawn as boxes and its "Glyph missing" warnings would land on the pages. When the cached list
    holds none of `CJK_FONTS`, the system's font files that matplotlib does not know yet are added
    to it (``FontManager.addfont``, for this process; a few milliseconds)."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    if not _cjk_families(manager):
        known = {font.fname for font in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # a file FreeType cannot read: not a font to use
                    continue
    return _cjk_families(manager)


def _cjk_families(manager: "FontManager") -> list[str]:
    """The families of `CJK_FONTS` in ``manager``'s font list, in preference order."""
    installed = {font.name for font in manager.ttflist}
    return [family for family in CJK_FONTS if family in installed]


def setup() -> None:
    """Seaborn's clean theme, readable sizes, and PNG figures embedded in the notebook.

    Text is drawn in seaborn's sans-serif font; characters it lacks (Chinese) fall back, glyph
    by glyph, to the first installed font of `CJK_FONTS`, so Chinese product names stay legible.

    With the inline backend each figure is rendered once, when the cell ends: pyplot's REPL hook,
    which redraws every changed figure after each cell for interactive windows, is disconnected,
    because the inline backend draws the figure again anyway to make its PNG (the hook's draw was
    a third of every page's plotting time). Other backends keep it.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    matplotlib.rcParams.update({"figure.figsize": (8, 4), "figure.dpi": 90, "axes.titleweight": "bold"})
    sns.set_theme(style="whitegrid", context="notebook")
    matplotlib.rcParams["font.family"] = ["sans-serif", *installed_cjk_fonts()]
    # A CJK font without a bold face is drawn regular in bold titles; matplotlib logs that at
    # warning level for every figure, which would land on the owner's pages.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    if matplotlib.get_backend() == INLINE_BACKEND:
        plt.switch_backend(INLINE_BACKEND)  # connects the hooks now, so they are not connected later
        plt.uninstall_repl_displayhook()
    if language() != DEFAULT:
        _translate_before_display()


def translate_figure(figure: Any) -> None:
    """Every word drawn on ``figure`` in the pack's language (:func:`crm_helpers.i18n.t`): titles,
    axis labels, legends, notes in the plot and the labels of categories on an axis; a text the
    catalogue does not hold stays as drawn (names, numbers)."""
    if figure.get_suptitle():
        figure.suptitle(t(figure.get_suptitle()))
    for ax in figure.axes:
        for loc in ("center", "left", "right"):
            if ax.get_title(loc):
                ax.set_title(t(ax.get_title(loc)), loc=loc)
        ax.set_xlabel(_label(ax.get_xlabel()))
        ax.set_ylabel(_label(ax.get_ylabel()))
        legend = ax.get_legend()
        texts = list(ax.texts) + (list(legend.get_texts()) + [legend.get_title()] if legend is not None else [])
        for text in texts:
            text.set_text(t(text.get_text()))
        for axis in (ax.xaxis, ax.yaxis):
            labels = [label.get_text() for label in axis.get_ticklabels()]
            translated = [t(label) for label in labels]
            if translated != labels:
                axis.set_ticks(axis.get_ticklocs(), labels=translated)


def _label(text: str) -> str:
    """An axis label in the pack's language, its unit in brackets kept ("net revenue (EUR)")."""
    whole = t(text)
    if whole != text or " (" not in text:
        return whole
    base, _, unit = text.partition(" (")
    return f"{t(base)} ({unit}"


def _translate_before_display() -> None:
    """Make the notebook's PNG of every figure go through :func:`translate_figure` first."""
    from matplotlib.figure import Figure

    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        draw = formatter.lookup_by_type(Figure)
    except KeyError:
        return
    if getattr(draw, "translates", False):
        return

    def translated(figure: Figure, *args: Any, **kwargs: Any) -> Any:
        translate_figure(figure)
        return draw(figure, *args, **kwargs)

    translated.translates = True
    formatter.for_type(Figure, translated)


# -- shared by the plots: given axes or a new figure, and an empty plot that says why --------------


def get_axes(ax: Axes | None = None) -> Axes:
    """``ax``, or the axes of a new figure (plot helpers draw into either)."""
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.subplots()[1]


def empty_axes(ax: Axes, message: str) -> Axes:
    """Clear ``ax`` and write ``message`` in its middle: a plot with nothing to show says why."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#52606d")
    ax.set_axis_off()
    return ax


def readable_axes(*axes: Axes) -> None:
    """Tick labels of the numbers on ``axes`` in the pack's style (:func:`crm_helpers.report.numbers.axis_tick`):
    thousands separated (``12,000``), at most six ticks on a numeric x axis so labels never run
    together (``1000012000``), no scientific offset; a log axis labelled 10, 100, 1,000. Axes of
    dates or categories keep their own labels."""
    from matplotlib import ticker

    from crm_helpers.report.numbers import axis_tick

    for ax in axes:
        for axis, bins in ((ax.xaxis, 5), (ax.yaxis, 6)):
            formatter = axis.get_major_formatter()
            if isinstance(formatter, ticker.LogFormatter):
                axis.set_major_formatter(ticker.FuncFormatter(axis_tick))
                axis.set_minor_formatter(ticker.NullFormatter())
            elif isinstance(formatter, ticker.ScalarFormatter):
                axis.set_major_formatter(ticker.FuncFormatter(axis_tick))
                if isinstance(axis.get_major_locator(), ticker.AutoLocator):
                    axis.set_major_locator(ticker.MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]))


MAIN_COLOUR = "#3b8ea5"
"""The workbook's main colour: one-colour bars, points and lines."""


def bars(data: pd.DataFrame, *, x: str, y: str, title: str, xlabel: str, ylabel: str = "",
         label_counts: bool = False, ax: Axes | None = None) -> Axes:
    """One-colour bars of ``data``: horizontal when ``y`` names the categories, vertical when ``x``
    does; ``label_counts`` writes each bar's value (a whole number) at its end."""
    import seaborn as sns

    ax = get_axes(ax)
    sns.barplot(data=data, x=x, y=y, color=MAIN_COLOUR, ax=ax)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if label_counts:
        ax.bar_label(ax.containers[0], fmt="{:,.0f}", padding=3)
    readable_axes(ax)
    return ax


# -- Page 01, import and entry --------------------------------------------------------------------


def plot_table_rows(overview: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Horizontal bars: rows per table of the store (from :func:`~crm_helpers.analyses.quality.table_overview`)."""
    if overview["rows"].sum() == 0:
        return empty_axes(get_axes(ax), "the store is empty: no rows imported yet")
    return bars(overview, y="table", x="rows", title="Rows per table", xlabel="rows", label_counts=True, ax=ax)


# -- Page 02, segmentation -------------------------------------------------------------------------


def plot_segment_sizes(summary: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Horizontal bars: customers per segment (from :func:`~crm_helpers.analyses.segmentation.segment_summary`),
    best segment on top."""
    if summary["customers"].sum() == 0:
        return empty_axes(get_axes(ax), "no buyers to segment")
    return bars(summary, y="segment", x="customers", title="Customers per segment", xlabel="customers",
                label_counts=True, ax=ax)


def plot_grid_counts(counts: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Heatmap of customers per (R, F) cell (from :func:`~crm_helpers.analyses.segmentation.score_counts`),
    labelled with the segment."""
    import seaborn as sns

    from crm_helpers.analyses.segmentation import segment_grid

    ax = get_axes(ax)
    labels = segment_grid().reindex(index=counts.index, columns=counts.columns)
    annot = labels.apply(lambda col: col.str.replace(" ", "\n", n=1)) + "\n" + counts.astype(str)
    sns.heatmap(counts, annot=annot.to_numpy(), fmt="", cmap="crest", cbar=False, linewidths=0.5,
                annot_kws={"fontsize": 7}, ax=ax)
    ax.set(title="Customers per R and F score", xlabel="frequency score", ylabel="recency score")
    return ax


def plot_migration(matrix: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Heatmap of the migration matrix (from :func:`~crm_helpers.analyses.segmentation.migration_matrix`)."""
    import seaborn as sns

    ax = get_axes(ax)
    if matrix.to_numpy().sum() == 0:
        return empty_axes(ax, "no snapshots to compare")
    sns.heatmap(matrix, annot=True, fmt="d", cmap="crest", cbar=False, linewidths=0.5, ax=ax,
                annot_kws={"fontsize": 8}, mask=matrix == 0)
    ax.grid(False)
    ax.set(title="Where last month's customers are now")
    return ax


def plot_silhouette(scores: pd.DataFrame, *, chosen_k: int, ax: Axes | None = None) -> Axes:
    """Silhouette (higher is better) and inertia (the elbow) by k, the chosen k marked."""
    import seaborn as sns

    ax = get_axes(ax)
    if scores.empty:
        return empty_axes(ax, "too few customers to compare cluster counts")
    sns.lineplot(data=scores, x="k", y="silhouette", marker="o", ax=ax, label="silhouette (left)")
    ax.axvline(chosen_k, color="#b42318", linestyle="--", linewidth=1)
    other = ax.twinx()
    sns.lineplot(data=scores, x="k", y="inertia", marker="s", color="#9aa5b1", ax=other, label="inertia (right)")
    other.grid(False)
    ax.legend(loc="lower left")
    other.legend(loc="upper right")
    ax.set(title=f"Choosing the number of clusters (chosen: {chosen_k})", xlabel="number of clusters k")
    return ax


def plot_clusters_2d(points: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Scatter of the 2-D view (from :meth:`~crm_helpers.analyses.segmentation.CustomerClusters.map_2d`),
    one colour per cluster."""
    import seaborn as sns

    ax = get_axes(ax)
    if points.empty:
        return empty_axes(ax, "no buyers to show")
    sns.scatterplot(data=points, x="pc1", y="pc2", hue="cluster", palette="crest", s=18, ax=ax)
    ax.set(title="Customers on the two main axes of behaviour", xlabel="first component",
           ylabel="second component")
    return ax


# -- Page 03, scoring ------------------------------------------------------------------------------


def plot_purchases(loyalty: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bars: buyers by number of purchases (from :func:`~crm_helpers.analyses.scoring.loyalty_table`), 10 and
    more grouped."""
    import seaborn as sns

    ax = get_axes(ax)
    if loyalty.empty:
        return empty_axes(ax, "no buyers yet")
    counts = loyalty["purchases"].clip(upper=10).value_counts().sort_index()
    labels = [str(k) if k < 10 else "10+" for k in counts.index]
    frame = pd.DataFrame({"purchases": labels, "buyers": counts.to_numpy()})
    sns.barplot(data=frame, x="purchases", y="buyers", color=MAIN_COLOUR, ax=ax)
    ax.set(title="Buyers by number of paid orders (loyalty = 1 − 1/orders)", xlabel="paid orders", ylabel="buyers")
    return ax


def plot_calibration(calibration: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Predicted against observed churn per group of customers, one line per model, with the diagonal."""
    import seaborn as sns

    ax = get_axes(ax)
    if calibration.empty:
        return empty_axes(ax, "no churn model to check")
    ax.plot([0, 1], [0, 1], color="#9aa5b1", linestyle="--", linewidth=1, label="perfect calibration")
    sns.lineplot(data=calibration, x="predicted", y="observed", hue="model", marker="o", ax=ax)
    ax.set(title="Predicted and actual churn on the later snapshot", xlabel="predicted probability of leaving",
           ylabel="share who actually left", xlim=(0, 1), ylim=(0, 1))
    return ax


def plot_value_risk(scored: pd.DataFrame, *, valuable_score: float = 70.0, risk_threshold: float = 0.5,
                    ax: Axes | None = None) -> Axes:
    """Scatter of value score against churn probability, the follow-up corner marked by lines."""
    import seaborn as sns

    ax = get_axes(ax)
    if scored.empty or scored["churn_probability"].isna().all():
        return empty_axes(ax, "no churn probabilities to show")
    sns.scatterplot(data=scored, x="value_score", y="churn_probability", s=14, color=MAIN_COLOUR, alpha=0.6, ax=ax)
    ax.axvline(valuable_score, color="#b42318", linestyle="--", linewidth=1)
    ax.axhline(risk_threshold, color="#b42318", linestyle="--", linewidth=1)
    ax.set(title="Value and risk of leaving (top right: act first)", xlabel="value score (0–100)",
           ylabel="probability of no order in the horizon")
    return ax


# -- Page 04, customer value and ROMI --------------------------------------------------------------


def plot_holdout(validation: HoldoutValidation) -> Axes:
    """Grouped bars: mean actual vs each model's predicted repeat purchases in the holdout, per calibration frequency."""
    import seaborn as sns

    frame = validation.long()
    frame["kind"] = frame["kind"].where(frame["kind"] != validation.chosen, f"{validation.chosen} (chosen)")
    ax = sns.barplot(data=frame, x="repeat_purchases_in_calibration", y="mean_purchases_in_holdout",
                     hue="kind", palette=["#3b8ea5", "#f2a65a", "#c2d98a", "#a27fb8"][:frame["kind"].nunique()])
    ax.set(title=f"Repeat purchases in the last {validation.holdout_days} days: actual vs each model",
           xlabel="repeat purchases before the holdout", ylabel="mean per customer")
    return ax


def plot_alive_matrices(model: PurchaseModel, T: float, *, horizon_days: float, max_frequency: int = 10) -> Figure:
    """Two heatmaps for a customer of age ``T`` days: P(alive), and expected purchases in the next ``horizon_days``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from crm_helpers.analyses.clv import DAYS_PER_MONTH, frequency_recency_matrix

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    alive = frequency_recency_matrix(model, T, max_frequency=max_frequency, n_recency=8)
    expected = frequency_recency_matrix(model, T, max_frequency=max_frequency, n_recency=8, t=horizon_days)
    sns.heatmap(alive, ax=left, cmap="crest", vmin=0, vmax=1, annot=True, fmt=".1f", annot_kws={"size": 7})
    sns.heatmap(expected, ax=right, cmap="crest", annot=True, fmt=".1f", annot_kws={"size": 7})
    for ax, title in ((left, "P(still a customer)"),
                      (right, f"Expected purchases, next {horizon_days / DAYS_PER_MONTH:.0f} months")):
        ax.invert_yaxis()
        ax.set(title=title, xlabel="age at last purchase (days)", ylabel="repeat purchases")
    fig.tight_layout()
    return fig


def plot_clv_distribution(customers: pd.DataFrame, currency: str) -> Axes:
    """Histogram of customer values on a log scale, split by buyer group."""
    import seaborn as sns

    shown = customers[customers["clv"] > 0]
    ax = sns.histplot(data=shown, x="clv", hue="buyer_group", multiple="stack", bins=40, log_scale=True,
                      palette="crest", hue_order=["1 purchase", "2–3 purchases", "4–9 purchases", "10+ purchases"])
    ax.set(title="Customer lifetime value (discounted expected profit)",
           xlabel=t("CLV ({currency}, log scale)", currency=currency), ylabel="customers")
    if ax.get_legend() is not None:
        ax.get_legend().set_title("purchases so far")  # not the column's name, buyer_group
    readable_axes(ax)
    return ax


def plot_campaigns(table: pd.DataFrame, confidence: float = 0.95) -> Figure:
    """Left: gross and net ROMI per campaign (where defined). Right: incremental revenue with its ``confidence`` CI.
    Campaigns are labelled by code and name."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4))
    romi_long = table.melt(id_vars="campaign_id", value_vars=["gross_romi_pct", "net_romi_pct"],
                           var_name="kind", value_name="pct").dropna()
    romi_long = romi_long.assign(pct=romi_long["pct"].astype(float),
                                 kind=romi_long["kind"].map({"gross_romi_pct": "gross (revenue ÷ cost)",
                                                             "net_romi_pct": "net ((margin − cost) ÷ cost)"}))
    names = dict(zip(table["campaign_id"], table["campaign_id"] + " " + table["name"].fillna("")))
    romi_long["campaign"] = romi_long["campaign_id"].map(names)
    sns.barplot(data=romi_long, y="campaign", x="pct", hue="kind", palette=["#97c1a9", "#3b8ea5"], ax=left)
    left.set(title="ROMI on attributed orders", xlabel="%", ylabel="")
    lift = table.dropna(subset=["incremental_revenue"])
    mid = lift["incremental_revenue"].astype(float).to_numpy()
    low = lift["incremental_ci_low"].astype(float).to_numpy()
    high = lift["incremental_ci_high"].astype(float).to_numpy()
    sns.barplot(x=mid, y=lift["campaign_id"].map(names).to_numpy(), color=MAIN_COLOUR, ax=right)
    right.errorbar(mid, np.arange(len(lift)), xerr=[mid - low, high - mid], fmt="none", color="black", capsize=4)
    right.axvline(0, color="grey", linewidth=1)
    right.set(title=f"Incremental revenue vs not-contacted customers ({confidence:.0%} CI)", xlabel="net revenue",
              ylabel="")
    readable_axes(left, right)
    fig.tight_layout()
    return fig


def plot_channel_outlook(table: pd.DataFrame) -> Figure:
    """Repeat purchases a new customer is expected to make in their first and in their second year,
    by acquisition channel (:func:`crm_helpers.analyses.channels.channel_outlook`), each with its 80 % range."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(table) + 1.6), sharey=True)
    rows = np.arange(len(table))
    for ax, column, title in ((axes[0], "purchases", "First year"), (axes[1], "later", "Second year")):
        mid = table[column].to_numpy(dtype=float)
        low, high = table[f"{column}_low"].to_numpy(dtype=float), table[f"{column}_high"].to_numpy(dtype=float)
        ax.errorbar(mid, rows, xerr=[mid - low, high - mid], fmt="o", color=MAIN_COLOUR, capsize=4)
        ax.set(title=f"{title}: purchases per new customer (80 % range)", xlabel="purchases", ylabel="")
        ax.set_xlim(left=0)
    axes[0].set_yticks(rows, table.index.tolist())
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


# -- Page 05, satisfaction and service -------------------------------------------------------------


def plot_trend(trend: pd.DataFrame) -> Figure:
    """CSAT (%) and NPS per month above the number of responses; small months drawn hollow."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=[3, 1.2])
    long = trend.melt(id_vars=["month", "small_sample"], value_vars=["csat_pct", "nps"], var_name="measure")
    long["measure"] = long["measure"].map({"csat_pct": "CSAT (% 4–5)", "nps": "NPS"})
    if long["value"].notna().any():
        sns.lineplot(data=long, x="month", y="value", hue="measure", marker="o", ax=top)
        top.fill_between(trend["month"], trend["nps_ci_low"], trend["nps_ci_high"], alpha=0.15, color="C1",
                         label="NPS 95% interval")
    top.set(title="Satisfaction per month", xlabel="", ylabel="CSAT % / NPS")
    sns.barplot(data=trend, x="month", y="responses", hue="small_sample", palette={True: "#d9a441", False: "#3b8ea5"},
                ax=bottom, legend=False)
    bottom.set(ylabel="responses", xlabel="")
    bottom.tick_params(axis="x", rotation=45)
    return fig


def plot_drivers(table: pd.DataFrame) -> Figure:
    """Standardized OLS coefficient and random-forest importance per item, side by side."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(8, 3.5))
    long = table.melt(id_vars="item", value_vars=["standardized", "rf_importance"], var_name="method")
    long["method"] = long["method"].map({"standardized": "OLS standardized coefficient",
                                         "rf_importance": "random-forest importance"})
    if not long.empty:
        sns.barplot(data=long, y="item", x="value", hue="method", ax=ax)
    ax.set(title="What moves overall satisfaction", xlabel="", ylabel="")
    return fig


def plot_volume(ticket_frame: pd.DataFrame) -> Figure:
    """Stacked bars of the tickets of :func:`~crm_helpers.analyses.service.tickets` per month of opening and
    category."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(9, 3.5))
    if not ticket_frame.empty:
        data = ticket_frame.assign(category=ticket_frame["category"].fillna("uncategorized"))
        sns.histplot(data=data, x="month", hue="category", multiple="stack", shrink=0.8, palette="crest", ax=ax)
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set(title="Tickets opened per month", xlabel="", ylabel="tickets")
    ax.tick_params(axis="x", rotation=45)
    return fig


# -- Page 06, sales, forecast and cohorts ----------------------------------------------------------


def plot_revenue_by_category(table: pd.DataFrame, *, currency: str, ax: Axes | None = None) -> Axes:
    """Horizontal bars: the month's net revenue per product category (from
    :func:`~crm_helpers.analyses.sales.revenue_by_category`), biggest on top."""
    if table["revenue"].sum() <= 0:
        return empty_axes(get_axes(ax), "no net revenue this month")
    return bars(table, x="revenue", y="category", title="Revenue by product category this month",
                xlabel=f"net revenue ({currency})", ax=ax)


def plot_customer_flows(flows: pd.DataFrame, *, months: int = 24, ax: Axes | None = None) -> Axes:
    """Bars of new, returning, reactivated and lost customers for the last ``months`` months of
    :func:`~crm_helpers.analyses.sales.monthly_customer_flows` (lost drawn below zero), the customer base as a
    line."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4))
    recent = flows.tail(months).assign(lost=lambda f: -f["lost"])
    long = recent.melt(id_vars="month", value_vars=["new", "returning", "reactivated", "lost"],
                       var_name="flow", value_name="customers")
    if not long.empty:
        sns.barplot(data=long, x="month", y="customers", hue="flow", ax=ax, palette="crest")
        ax.plot(range(len(recent)), recent["customer_base"].to_numpy(), color="black", marker=".",
                label="customer base")
        ax.legend(loc="upper left", fontsize=8, ncols=5)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(title="Customers per month (lost below zero)", xlabel="", ylabel="customers")
    ax.tick_params(axis="x", rotation=90)
    readable_axes(ax)
    return ax


def plot_pipeline_by_stage(stages: pd.DataFrame, *, currency: str, ax: Axes | None = None) -> Axes:
    """Horizontal bars: the weighted amount of the open deals per stage (from
    :func:`~crm_helpers.analyses.sales.pipeline_by_stage`, its ``total`` row left out), in funnel order."""
    shown = stages[stages["stage"] != "total"]
    if shown["weighted_amount"].sum() == 0:
        return empty_axes(get_axes(ax), "no open deals with a weighted amount")
    return bars(shown, x="weighted_amount", y="stage", title="Weighted pipeline by stage",
                xlabel=f"weighted amount ({currency})", ax=ax)


def plot_stage_funnel(funnel: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Horizontal bars: deals that reached each stage (from :func:`~crm_helpers.analyses.sales.stage_funnel`),
    first stage on top."""
    if funnel["reached"].sum() == 0:
        return empty_axes(get_axes(ax), "no deals yet")
    return bars(funnel, x="reached", y="stage", title="Deals that reached each stage", xlabel="deals", ax=ax)


def plot_pipeline_by_month(by_month: pd.DataFrame, *, currency: str, ax: Axes | None = None) -> Axes:
    """Vertical bars: the weighted pipeline per month of expected close (from
    :func:`~crm_helpers.analyses.sales.weighted_pipeline_by_month`: overdue first, no date last)."""
    if by_month["weighted_amount"].sum() == 0:
        return empty_axes(get_axes(ax), "no open deals with a weighted amount")
    return bars(by_month, x="expected_close_month", y="weighted_amount",
                title="Weighted pipeline by expected close month", xlabel="",
                ylabel=f"weighted amount ({currency})", ax=ax)


def plot_forecast(result: SalesForecast, *, metric: str = "revenue", ax: Axes | None = None) -> Axes:
    """History (line), forecast (dashed) and its prediction interval (band) of one metric."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import seaborn as sns

    from crm_helpers.analyses.forecast import METRICS

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    history, fc = result.history, result.forecasts.get(metric)
    sns.lineplot(data=history, x="month", y=metric, ax=ax, marker="o", label="history")
    if fc is not None and not fc.empty:
        joined = pd.concat([history[["month", metric]].tail(1).rename(columns={metric: "forecast"}), fc])
        sns.lineplot(data=joined, x="month", y="forecast", ax=ax, marker="o", linestyle="--", label="forecast")
        coverage = int(round(result.models[metric].interval * 100))
        ax.fill_between(fc["month"], fc["lower"], fc["upper"], alpha=0.25, label=f"{coverage}% interval")
        ax.set_title(f"{METRICS[metric].capitalize()}: {result.models[metric].label_}")
    ax.set(xlabel="", ylabel=METRICS[metric])
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.tick_params(axis="x", rotation=45)
    ax.legend(loc="upper left")
    readable_axes(ax)
    return ax


def plot_cohort_heatmap(matrix: pd.DataFrame, *, title: str, percent: bool = True, ax: Axes | None = None) -> Axes:
    """A seaborn heatmap of :func:`~crm_helpers.analyses.cohorts.cohort_matrix`: shares shown in percent, other
    values as they are.

    Cells are labelled with their value when there are at most 200 of them (more would be unreadable).
    The colour scale is set by months 1 and later, so that month 0 (100% retention by definition,
    the first purchase) does not wash out the differences that matter.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.45 * matrix.shape[1] + 2), max(3.0, 0.32 * matrix.shape[0] + 1)))
    shown = matrix * 100 if percent else matrix
    later = shown.drop(columns=0, errors="ignore")
    top = later.max().max() if later.notna().any().any() else None
    sns.heatmap(shown, ax=ax, cmap="crest", vmin=0, vmax=top, annot=matrix.size <= 200, fmt=".0f", cbar=True,
                annot_kws={"fontsize": 7}, cbar_kws={"label": "%" if percent else ""})
    ax.set(title=title, xlabel="months since first purchase", ylabel="first-purchase month")
    return ax


def plot_retention_curve(curve: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """:func:`~crm_helpers.analyses.cohorts.retention_curve` from month 1 on, in percent, with its interval as a band.

    Month 0 (100% by definition) is left out so the scale shows the months that matter.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    later = curve[curve["months_since"] >= 1]
    ax.fill_between(later["months_since"], 100 * later["retention_low"], 100 * later["retention_high"],
                    color=MAIN_COLOUR, alpha=0.2, label="95% interval")
    ax.plot(later["months_since"], 100 * later["retention"], marker="o", color=MAIN_COLOUR, label="share still buying")
    ax.set(title="Share of a cohort still buying, by months since the first purchase",
           xlabel="months since first purchase", ylabel="%", ylim=(0, None))
    ax.legend(loc="lower left")
    return ax


def plot_repeat_rate_by_channel(repeat: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Horizontal bars: per acquisition channel, the share of customers who bought again within
    :data:`~crm_helpers.store.facts.REPEAT_WINDOW_DAYS` days (``repeat_rate_window`` of
    :func:`~crm_helpers.analyses.cohorts.repeat_rate_by_channel` with its default window), best first."""
    from crm_helpers.store.facts import REPEAT_WINDOW_DAYS

    if repeat["repeat_rate_window"].isna().all():
        return empty_axes(get_axes(ax), f"no customer bought a first order at least {REPEAT_WINDOW_DAYS} days ago")
    return bars(repeat, x="repeat_rate_window", y="acquisition_channel",
                title=f"Bought again within {REPEAT_WINDOW_DAYS} days", xlabel="share of customers", ax=ax)


def plot_next_products(offers: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Horizontal bars: customers per suggested next product (from
    :func:`~crm_helpers.analyses.crosssell.next_best_products`), in the order the products first appear
    there (the likeliest purchases first)."""
    import seaborn as sns

    ax = get_axes(ax)
    if offers.empty:
        return empty_axes(ax, "no customer has a suggested next product")
    sns.countplot(data=offers, y="product_name", color=MAIN_COLOUR, ax=ax)
    ax.set(title="Suggested next products", xlabel="customers", ylabel="")
    return ax


def plot_purchase_rhythm(result: PurchaseRhythm, ax: Axes | None = None) -> Axes:
    """Every customer whose rhythm is judged (:class:`~crm_helpers.analyses.rhythm.PurchaseRhythm`):
    usual interval (days) against the spread of their intervals (coefficient of variation), the
    regular ones below the dashed line, those late for their usual reorder marked."""
    ax = get_axes(ax)
    if not result.ok:
        return empty_axes(ax, "no customer has enough orders to show a rhythm yet")
    customers = result.customers
    groups = (("irregular", ~customers["regular"], "#9aa5b1"),
              ("regular, on time", customers["regular"] & ~customers["late"], MAIN_COLOUR),
              ("regular, late for their reorder", customers["late"], "#d64545"))
    for label, rows, colour in groups:
        ax.scatter(customers.loc[rows, "interval_days"], customers.loc[rows, "cv"], s=18, color=colour, label=label)
    ax.axhline(result.max_cv, color="#52606d", linestyle="--", linewidth=1)
    ax.set(title="Purchase rhythm: usual interval and how steady it is", xlabel="usual interval between orders (days)",
           ylabel="spread of the intervals (CV)", ylim=(0, None))
    ax.legend(loc="upper right")
    return ax

