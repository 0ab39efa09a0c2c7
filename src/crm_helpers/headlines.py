"""Headline figures: a notebook records the numbers the report index shows.

``record("revenue", 12345.6, label="Revenue", unit="EUR")`` displays a small output of a
custom MIME type in the notebook. The report runner reads those outputs back from the
executed notebook, so the index shows exactly what the notebook computed, never a second
computation. In JupyterLab the output renders as a short line of text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the kernels only record; reading back is the runner's, which has nbformat loaded
    import nbformat

MIME_TYPE = "application/vnd.crm-headline+json"
ATTENTION_MIME_TYPE = "application/vnd.crm-attention+json"


Z95 = 1.959964
"""Standard normal quantile of a two-sided 95 % interval."""


def record(key: str, value: float | int | str | None, *, label: str, unit: str = "", note: str = "",
           change: str = "", good: str = "", se: float | None = None,
           interval: tuple[float, float] | None = None,
           change_interval: tuple[float, float] | None = None, worth: float | None = None) -> None:
    """Record one headline figure (``value`` None or NaN means "not available").

    ``change`` says how the index shows the move against the previous month: ``"points"`` (a
    difference, for shares in % and scores on a fixed scale such as NPS) or ``"relative"`` (a
    percentage change, for amounts and counts). Blank: points for unit ``"%"``, else relative.

    ``good`` is the direction that is good for the business: ``"up"`` (revenue, NPS), ``"down"``
    (lost customers, response time) or blank (neither, e.g. people to follow up). ``se`` is the
    value's standard error in its own unit (e.g. √n for a count, Poisson); ``interval`` its 95 %
    interval (shown beside it; without it, value ± 1.96 se is shown); ``change_interval`` the 95 %
    interval of the change against the previous month when a test gives it directly (e.g. the
    bootstrap of the NPS difference). They decide whether a move is within its noise, see
    :func:`compare`. ``worth`` is the money one unit of the figure stands for (e.g. a month's
    revenue per active customer), so "Needs attention" can rank a count's move by money.
    """
    if change not in ("", "points", "relative"):
        raise ValueError(f"change must be 'points' or 'relative', not {change!r}")
    if good not in ("", "up", "down"):
        raise ValueError(f"good must be 'up', 'down' or blank, not {good!r}")
    from IPython.display import display

    if isinstance(value, float) and not math.isfinite(value):
        value = None
    change = change or ("points" if unit == "%" else "relative")
    payload = {"key": key, "value": value, "label": label, "unit": unit, "note": note, "change": change,
               "good": good, "se": _finite(se), "interval": _finite_pair(interval),
               "change_interval": _finite_pair(change_interval), "worth": _finite(worth)}
    shown = "n/a" if value is None else (f"{value:,.2f}" if isinstance(value, float) else str(value))
    text = f"{label}: {shown} {unit}".rstrip() + (f" ({note})" if note else "")
    display({MIME_TYPE: payload, "text/plain": text}, raw=True)


def flag(key: str, sentence: str, *, money: float = 0.0) -> None:
    """Record one thing the owner should look at, for the index's "Needs attention" list.

    ``sentence`` is plain and complete ("Paid social ads cost 1,200 EUR and brought no measurable
    extra revenue."); ``money`` is what is at stake, in the store's currency (the list is ranked
    by it). Only flag what the notebook's figures and their uncertainty support: a change within
    its noise is not a change.
    """
    from IPython.display import display

    payload = {"key": key, "sentence": sentence, "money": float(money) if math.isfinite(money) else 0.0}
    display({ATTENTION_MIME_TYPE: payload, "text/plain": f"Needs attention: {sentence}"}, raw=True)


def recorded(notebook: str | nbformat.NotebookNode, mime: str) -> list[Any]:
    """Every output of MIME type ``mime`` in an executed notebook (path or node), in cell order,
    as the JSON it was displayed with: how a notebook hands the report runner what it computed."""
    import nbformat  # not at module level: its jsonschema import costs every kernel 1-4 s

    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, str) else notebook
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(mime)
            if payload is not None:
                found.append(json.loads(payload) if isinstance(payload, str) else payload)
    return found


def _payloads(notebook: str | nbformat.NotebookNode, mime: str) -> list[dict[str, Any]]:
    return [dict(payload) for payload in recorded(notebook, mime)]


def read(notebook: str | nbformat.NotebookNode) -> dict[str, dict[str, Any]]:
    """All headline figures recorded in an executed notebook (path or node), by key."""
    return {payload["key"]: payload for payload in _payloads(notebook, MIME_TYPE)}


def read_flags(notebook: str | nbformat.NotebookNode) -> list[dict[str, Any]]:
    """Everything flagged with :func:`flag` in an executed notebook, in the order flagged."""
    return _payloads(notebook, ATTENTION_MIME_TYPE)


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _finite_pair(pair: tuple[float, float] | None) -> list[float] | None:
    if pair is None or any(_finite(v) is None for v in pair):
        return None
    return [float(pair[0]), float(pair[1])]


@dataclass(frozen=True)
class Change:
    """A headline figure against its previous month.

    ``delta`` is value − previous (None when either is missing); ``within_noise`` is True when the
    move could be chance (its 95 % interval includes 0), False when it is a real move, None when
    nothing was recorded to tell; ``verdict`` is ``"good"``, ``"bad"``, ``"noise"`` or
    ``"neutral"`` (no move, no good direction, nothing to compare, or no noise recorded to judge
    the move by: a move is only called good or bad when it is known to be more than noise).
    """

    delta: float | None
    within_noise: bool | None
    verdict: str


def compare(now: dict[str, Any], previous: dict[str, Any] | None) -> Change:
    """Compare a recorded figure with the previous month's (payloads as returned by :func:`read`).

    The move is within noise when the recorded ``change_interval`` includes 0, or else when
    ``|delta| < 1.96 · √(se² + se_prev²)`` (two independent estimates; se of the previous month
    taken from its own record). Without either, nothing is said about it (``within_noise`` None).
    """
    value, prev = now.get("value"), (previous or {}).get("value")
    if not isinstance(value, (int, float)) or not isinstance(prev, (int, float)):
        return Change(None, None, "neutral")
    delta = float(value - prev)
    within: bool | None = None
    if now.get("change_interval"):
        low, high = now["change_interval"]
        within = low <= 0 <= high
    elif now.get("se") is not None and (previous or {}).get("se") is not None:
        within = abs(delta) < Z95 * math.hypot(now["se"], previous["se"])
    if within:
        verdict = "noise"
    elif within is None or delta == 0 or not now.get("good"):
        verdict = "neutral"
    else:
        verdict = "good" if (delta > 0) == (now["good"] == "up") else "bad"
    return Change(delta, within, verdict)


def interval(payload: dict[str, Any]) -> tuple[float, float] | None:
    """The figure's 95 % interval: the recorded one, else value ± 1.96 se, else None."""
    if payload.get("interval"):
        low, high = payload["interval"]
        return float(low), float(high)
    value, se = payload.get("value"), payload.get("se")
    if isinstance(value, (int, float)) and se is not None:
        return value - Z95 * se, value + Z95 * se
    return None
