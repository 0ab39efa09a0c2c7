"""One look for every plot in the workbook."""

from __future__ import annotations

import matplotlib

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
"""Jupyter's inline backend: figures become PNG outputs of the cell that drew them."""


def setup() -> None:
    """Seaborn's clean theme, readable sizes, and PNG figures embedded in the notebook.

    With the inline backend each figure is rendered once, when the cell ends: pyplot's REPL hook,
    which redraws every changed figure after each cell for interactive windows, is disconnected,
    because the inline backend draws the figure again anyway to make its PNG (the hook's draw was
    a third of every page's plotting time). Other backends keep it.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    matplotlib.rcParams.update({"figure.figsize": (8, 4), "figure.dpi": 90, "axes.titleweight": "bold"})
    sns.set_theme(style="whitegrid", context="notebook")
    if matplotlib.get_backend() == INLINE_BACKEND:
        plt.switch_backend(INLINE_BACKEND)  # connects the hooks now, so they are not connected later
        plt.uninstall_repl_displayhook()
