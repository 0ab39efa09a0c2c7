"""The plots of the pages: the theme draws Chinese text with real glyphs, not boxes, and a plot
with nothing to show says why instead of drawing empty axes."""

import copy
import io
import logging
import shutil
import subprocess
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from crm_helpers.report import plots  # noqa: E402
from crm_helpers.store.facts import REPEAT_WINDOW_DAYS  # noqa: E402


def _missing_glyph_warnings(title: str) -> list[str]:
    fig, ax = plt.subplots()
    ax.set_title(title)
    ax.bar(["龙井", "Sencha"], [3, 4])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_chinese_labels_fall_back_to_an_installed_cjk_font(caplog):
    if not plots.installed_cjk_fonts():
        pytest.skip("no CJK font on this machine (.ci/run installs fonts-wqy-microhei)")
    with matplotlib.rc_context():
        plots.setup()
        assert _missing_glyph_warnings("发货太慢，等了两个星期") == []
    # nothing logged either: a page shows the kernel's log lines (a bold title in a font without bold)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_chinese_font_installed_after_matplotlib_cached_its_font_list_is_still_found(monkeypatch):
    """matplotlib reads the machine's fonts once and caches them: a font installed later (here, one
    missing from a copy of the cached list) is found among the system's font files all the same."""
    from matplotlib import font_manager

    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout \
        if shutil.which("fc-list") else ""
    if not any(family in listed for family in plots.CJK_FONTS):  # asked of fontconfig, not of matplotlib's cache
        pytest.skip("no CJK font on this machine (.ci/run installs fonts-wqy-microhei)")
    stale = copy.copy(font_manager.fontManager)
    files = {font.fname for font in stale.ttflist if font.name in plots.CJK_FONTS}  # a .ttc holds more faces
    stale.ttflist = [font for font in stale.ttflist if font.fname not in files]
    monkeypatch.setattr(font_manager, "fontManager", stale)
    assert plots._cjk_families(stale) == []
    assert plots.installed_cjk_fonts() and plots.installed_cjk_fonts() == plots._cjk_families(stale)


def test_without_the_fallback_the_same_labels_lose_their_glyphs():
    # the check above can fail: seaborn's font alone has no Chinese glyphs
    with matplotlib.rc_context():
        plots.setup()
        matplotlib.rcParams["font.family"] = ["sans-serif"]
        assert _missing_glyph_warnings("发货太慢，等了两个星期")


@pytest.mark.parametrize(("draw", "message"), [
    (lambda: plots.plot_table_rows(pd.DataFrame({"table": ["customers", "orders"], "rows": [0, 0]})),
     "the store is empty: no rows imported yet"),
    (lambda: plots.plot_segment_sizes(pd.DataFrame({"segment": ["Champions"], "customers": [0]})),
     "no buyers to segment"),
    (lambda: plots.plot_migration(pd.DataFrame([[0]])), "no snapshots to compare"),
    (lambda: plots.plot_silhouette(pd.DataFrame(columns=["k", "silhouette", "inertia"]), chosen_k=3),
     "too few customers to compare cluster counts"),
    (lambda: plots.plot_clusters_2d(pd.DataFrame(columns=["pc1", "pc2", "cluster"])), "no buyers to show"),
    (lambda: plots.plot_purchases(pd.DataFrame(columns=["purchases"])), "no buyers yet"),
    (lambda: plots.plot_calibration(pd.DataFrame(columns=["predicted", "observed", "model"])),
     "no churn model to check"),
    (lambda: plots.plot_value_risk(pd.DataFrame(columns=["value_score", "churn_probability"])),
     "no churn probabilities to show"),
    (lambda: plots.plot_revenue_by_category(pd.DataFrame({"category": ["tea"], "revenue": [0.0]}), currency="EUR"),
     "no net revenue this month"),
    (lambda: plots.plot_pipeline_by_stage(pd.DataFrame({"stage": ["lead", "total"], "weighted_amount": [0.0, 0.0]}),
                                          currency="EUR"),
     "no open deals with a weighted amount"),
    (lambda: plots.plot_stage_funnel(pd.DataFrame({"stage": ["lead", "won"], "reached": [0, 0]})), "no deals yet"),
    (lambda: plots.plot_pipeline_by_month(pd.DataFrame(columns=["expected_close_month", "weighted_amount"]),
                                          currency="EUR"),
     "no open deals with a weighted amount"),
    (lambda: plots.plot_repeat_rate_by_channel(pd.DataFrame({"acquisition_channel": ["web"],
                                                             "repeat_rate_window": [float("nan")]})),
     f"no customer bought a first order at least {REPEAT_WINDOW_DAYS} days ago"),
    (lambda: plots.plot_next_products(pd.DataFrame(columns=["product_name"])),
     "no customer has a suggested next product"),
])
def test_a_plot_with_nothing_to_show_says_why(draw, message):
    ax = draw()
    assert [text.get_text() for text in ax.texts] == [message] and not ax.axison
    plt.close(ax.figure)


def test_the_clv_histogram_s_legend_says_purchases_so_far_not_the_column_name():
    customers = pd.DataFrame({"clv": [5.0, 50.0, 500.0, 5000.0] * 5,
                              "buyer_group": ["1 purchase", "2–3 purchases", "4–9 purchases", "10+ purchases"] * 5})
    ax = plots.plot_clv_distribution(customers, "EUR")
    assert ax.get_legend().get_title().get_text() == "purchases so far"
    plt.close(ax.figure)
