"""Headline figures: a notebook records the numbers the report index shows.

``record("revenue", 12345.6, label="Revenue", unit="EUR")`` displays a small output of a
custom MIME type in the notebook. The report runner reads those outputs back from the
executed notebook, so the index shows exactly what the notebook computed, never a second
computation. In JupyterLab the output renders as a short line of text.
"""

from __future__ import annotations

import json
import math
from typing import Any

import nbformat

MIME_TYPE = "application/vnd.crm-headline+json"


def record(key: str, value: float | int | str | None, *, label: str, unit: str = "", note: str = "",
           change: str = "") -> None:
    """Record one headline figure (``value`` None or NaN means "not available").

    ``change`` says how the index shows the move against the previous month: ``"points"`` (a
    difference, for shares in % and scores on a fixed scale such as NPS) or ``"relative"`` (a
    percentage change, for amounts and counts). Blank: points for unit ``"%"``, else relative.
    """
    if change not in ("", "points", "relative"):
        raise ValueError(f"change must be 'points' or 'relative', not {change!r}")
    from IPython.display import display

    if isinstance(value, float) and not math.isfinite(value):
        value = None
    change = change or ("points" if unit == "%" else "relative")
    payload = {"key": key, "value": value, "label": label, "unit": unit, "note": note, "change": change}
    shown = "n/a" if value is None else (f"{value:,.2f}" if isinstance(value, float) else str(value))
    text = f"{label}: {shown} {unit}".rstrip() + (f" ({note})" if note else "")
    display({MIME_TYPE: payload, "text/plain": text}, raw=True)


def read(notebook: str | nbformat.NotebookNode) -> dict[str, dict[str, Any]]:
    """All headline figures recorded in an executed notebook (path or node), by key."""
    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, str) else notebook
    found: dict[str, dict[str, Any]] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME_TYPE in data:
                payload = data[MIME_TYPE]
                if isinstance(payload, str):
                    payload = json.loads(payload)
                found[payload["key"]] = dict(payload)
    return found
