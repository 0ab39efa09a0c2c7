"""One look for every plot in the workbook."""

from __future__ import annotations

import matplotlib


def setup() -> None:
    """Seaborn's clean theme, readable sizes, and PNG figures embedded in the notebook."""
    import seaborn as sns

    matplotlib.rcParams.update({"figure.figsize": (8, 4), "figure.dpi": 90, "axes.titleweight": "bold"})
    sns.set_theme(style="whitegrid", context="notebook")
