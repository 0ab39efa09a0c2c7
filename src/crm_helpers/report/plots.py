"""One look for every plot in the workbook."""

from __future__ import annotations

import logging

import matplotlib

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
    """The families of `CJK_FONTS` that matplotlib can find on this machine, in preference order."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
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
