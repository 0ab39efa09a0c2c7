"""The plot theme: Chinese text is drawn with real glyphs, not boxes."""

import io
import logging
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from crm_helpers.report import plots# noqa: E402


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


def test_without_the_fallback_the_same_labels_lose_their_glyphs():
    # the check above can fail: seaborn's font alone has no Chinese glyphs
    with matplotlib.rc_context():
        plots.setup()
        matplotlib.rcParams["font.family"] = ["sans-serif"]
        assert _missing_glyph_warnings("发货太慢，等了两个星期")
