"""Headline figures: a notebook records the numbers the report index shows.

An analysis returns its figures as :class:`Headline` values from its ``headline_figures()``; the
notebook hands them over with ``record_all(module.headline_figures(...))`` (or one figure with
``record("revenue", 12345.6, label="Revenue", unit="EUR", previous=11000.0)``), which displays a
small output of a custom MIME type in the notebook. The report runner reads those outputs back from the
executed notebook, so the index shows exactly what the notebook computed, never a second
computation. In JupyterLab the output renders as a short line of text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the kernels only record; reading back is the runner's, which has nbformat loaded
    import nbformat

from crm_helpers.i18n import t
from crm_helpers.store.values import Action, Attention, Headline, clipped, limits

__all__ = ["Action", "Attention", "Headline", "record_actions", "ACTIONS_TABLE", "record", "record_all", "show", "line", "page_outputs", "flag", "flag_all", "record_table", "read", "read_flags", "read_tables",
           "recorded", "compare", "basis", "interval", "Change"]

MIME_TYPE = "application/vnd.crm-headline+json"
ATTENTION_MIME_TYPE = "application/vnd.crm-attention+json"
TABLE_MIME_TYPE = "application/vnd.crm-table+json"
RECORD_MIME_TYPES = (MIME_TYPE, ATTENTION_MIME_TYPE, TABLE_MIME_TYPE)
"""The outputs that hand figures, flags and tables to the index: the page leaves them out
(:func:`page_outputs`), because each page shows its figures in its own tables and sentences."""
TABLE_MAX_ROWS = 25
"""A recorded table holds at most this many rows (no table on the index is longer)."""


PREVIOUS_SUFFIX = "_prev"
"""How figures recorded their previous month before :class:`Headline` carried it (read back only)."""

Z95 = 1.959964
"""Standard normal quantile of a two-sided 95 % interval."""


def record(key: str, value: float | int | str | None, *, label: str, unit: str = "", note: str = "",
           change: str = "", good: str = "", previous: float | int | None = None, se: float | None = None,
           previous_se: float | None = None, interval: tuple[float, float] | None = None,
           change_interval: tuple[float, float] | None = None, worth: float | None = None,
           missing: str = "", year_ago: float | int | None = None, year_ago_se: float | None = None,
           year_change_interval: tuple[float, float] | None = None, exact: bool = False,
           lowest: float | None = None, highest: float | None = None) -> None:
    """Record one headline figure (``value`` None or NaN means "not available"), with the previous
    month's ``previous`` beside it; the arguments are the fields of :class:`Headline`, which
    documents them. Must run inside a notebook (it displays the figure)."""
    show(Headline(key, value, label, unit=unit, note=note, change=change, good=good, previous=previous, se=se,
                  previous_se=previous_se, interval=interval, change_interval=change_interval, worth=worth,
                  missing=missing, year_ago=year_ago, year_ago_se=year_ago_se,
                  year_change_interval=year_change_interval, exact=exact, lowest=lowest, highest=highest))


def record_all(figures: Iterable[Headline]) -> None:
    """Record every figure an analysis' ``headline_figures()`` returned, in order."""
    for figure in figures:
        show(figure)


def line(figure: Headline) -> str:
    """``figure`` as one line of text: "Revenue: 24,178.50 EUR (net revenue: paid orders only, ...)".

    For a page that shows a figure nowhere else (its recorded output is not on the page, see
    :func:`page_outputs`): ``print(headlines.line(figure))``.
    """
    unit = f" {figure.unit}" if figure.value is not None and figure.unit else ""
    return f"{t(figure.label)}: {figure.shown}{unit}" + (f" ({t(figure.note)})" if figure.note else "")


def show(figure: Headline) -> None:
    """Display ``figure`` as a custom MIME output the report runner reads back (:func:`read`); in
    JupyterLab it renders as its :func:`line`. The page leaves it out (:func:`page_outputs`)."""
    from IPython.display import display

    display({MIME_TYPE: figure.payload(), "text/plain": line(figure)}, raw=True)


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


def flag_all(items: Iterable[Attention]) -> None:
    """Record every :class:`~crm_helpers.store.values.Attention` an analysis raised, in order (see :func:`flag`)."""
    for item in items:
        flag(item.key, item.sentence, money=item.money)


def record_table(key: str, frame: Any, *, label: str, units: dict[str, str] | None = None) -> None:
    """Record a small table for the index (e.g. the follow-up queue as ``"follow_up_queue"``): its
    first :data:`TABLE_MAX_ROWS` rows as JSON (missing values None, dates ISO text), and the unit of
    each money column (``units``, e.g. ``{"money_at_stake": "EUR a year"}``). Shows one line of text
    in the notebook (display the table itself for the page)."""
    from IPython.display import display

    rows = json.loads(frame.head(TABLE_MAX_ROWS).to_json(orient="records", date_format="iso", force_ascii=False))
    payload = {"key": key, "label": label, "columns": [str(c) for c in frame.columns], "rows": rows,
               "units": units or {}}
    display({TABLE_MIME_TYPE: payload, "text/plain": f"{label}: {len(rows)} rows recorded for the index"}, raw=True)


ACTIONS_TABLE = "actions"
"""The key under which a notebook records its candidate actions (:func:`record_actions`)."""


def record_actions(actions: Iterable[Action]) -> None:
    """Record the candidate :class:`~crm_helpers.store.values.Action` s an analysis' ``actions()``
    returned, for the index's "Actions this month": once per notebook, with every analysis' actions
    of the page (a second call replaces the first). They travel as a recorded table (key
    :data:`ACTIONS_TABLE`, one row per action, read back with :func:`read_tables`), so the shared
    copy masks the names in their sentences like the follow-up queue's, and the page leaves them
    out (:func:`page_outputs`). Shows one line per action in the notebook."""
    from IPython.display import display

    rows = [action.payload() for action in actions]
    payload = {"key": ACTIONS_TABLE, "label": "Actions", "columns": list(rows[0]) if rows else [], "rows": rows}
    text = "\n".join(f"Action: {row['sentence']}" for row in rows) or "No action from this analysis."
    display({TABLE_MIME_TYPE: payload, "text/plain": text}, raw=True)


def page_outputs(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed notebook without the outputs that record for the index
    (:data:`RECORD_MIME_TYPES`): what its HTML page shows.

    The figures a notebook records are on its page already, in the tables and sentences it
    displays; their one-line records under them showed every figure twice ("Revenue: 24,178.50
    EUR" under the table with revenue in it). The index shows them, read from the executed notebook.
    """
    import copy

    page = copy.deepcopy(notebook)
    for cell in page.cells:
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if not set(o.get("data", {})) & set(RECORD_MIME_TYPES)]
    return page


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


def sections_of_figures(notebook: str | nbformat.NotebookNode) -> dict[str, str]:
    """``{key: heading}``: for each recorded headline figure, the section (the last level-2 Markdown
    heading above the cell that recorded it), so the index links to the section, not the page's top."""
    import nbformat  # not at module level: its jsonschema import costs every kernel 1-4 s

    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, str) else notebook
    found: dict[str, str] = {}
    heading = ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = next((ln[3:].strip() for ln in cell.source.splitlines() if ln.startswith("## ")), heading)
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIME_TYPE)
            if payload is not None and heading:
                found[(json.loads(payload) if isinstance(payload, str) else payload)["key"]] = heading
    return found


def read(notebook: str | nbformat.NotebookNode) -> dict[str, dict[str, Any]]:
    """All headline figures recorded in an executed notebook (path or node), by key.

    A figure recorded the old way, its previous month as a separate ``<key>_prev`` (executed
    notebooks of packs rendered before :class:`Headline` carried ``previous``), is folded into
    ``previous`` and ``previous_se`` of its figure, so earlier pages keep their change column.
    """
    figures = {payload["key"]: payload for payload in _payloads(notebook, MIME_TYPE)}
    for key, heading in sections_of_figures(notebook).items():
        figures[key].setdefault("section", heading)
    for key in [k for k in figures if k.endswith(PREVIOUS_SUFFIX) and k.removesuffix(PREVIOUS_SUFFIX) in figures]:
        old, figure = figures.pop(key), figures[key.removesuffix(PREVIOUS_SUFFIX)]
        if figure.get("previous") is None:
            figure["previous"], figure["previous_se"] = old.get("value"), old.get("se")
    return figures


def read_tables(notebook: str | nbformat.NotebookNode) -> dict[str, dict[str, Any]]:
    """Every table recorded with :func:`record_table` in an executed notebook, by key."""
    return {payload["key"]: payload for payload in _payloads(notebook, TABLE_MIME_TYPE)}


def read_flags(notebook: str | nbformat.NotebookNode) -> list[dict[str, Any]]:
    """Everything flagged with :func:`flag` in an executed notebook, in the order flagged."""
    return _payloads(notebook, ATTENTION_MIME_TYPE)


@dataclass(frozen=True)
class Change:
    """A headline figure against a reference: the previous month or the same month last year.

    ``delta`` is value − reference (None when either is missing); ``within_noise`` is True when the
    move could be chance (its 95 % interval includes 0), False when it is a real move, None when
    nothing was recorded to tell; ``verdict`` is ``"good"``, ``"bad"``, ``"noise"`` or
    ``"neutral"`` (no move, no good direction, nothing to compare, or no noise recorded to judge
    the move by: a move is only called good or bad when it is known to be more than noise).
    ``basis`` says which reference: ``"month"`` or ``"year"``; ``reference`` is its value.
    """

    delta: float | None
    within_noise: bool | None
    verdict: str
    basis: str = "month"
    reference: float | None = None


BASES = ("month", "year")
"""The references a figure is compared with: the previous month, the same month last year."""


def basis(payload: dict[str, Any]) -> str:
    """The fair comparison of a recorded figure: ``"year"`` when it carries a value of the same month
    last year (a seasonal business is judged against its own season), else ``"month"``."""
    return "year" if isinstance(payload.get("year_ago"), (int, float)) else "month"


def compare(now: dict[str, Any], previous: dict[str, Any] | None = None, *, against: str = "") -> Change:
    """Compare a recorded figure (a payload as returned by :func:`read`) with a reference.

    ``previous`` given: that payload (``value``, ``se``), month-on-month. Else ``against`` says
    which reference the figure carries: ``"month"`` (its ``previous``, ``previous_se`` and
    ``change_interval``), ``"year"`` (its ``year_ago``, ``year_ago_se`` and
    ``year_change_interval``) or blank for the fair one (:func:`basis`).

    The move is within noise when the recorded change interval includes 0, or else when
    ``|delta| < 1.96 · √(se² + se_ref²)`` (two independent estimates). Without either, nothing is
    said about it (``within_noise`` None): such a move is drawn grey and says it has no noise estimate.
    """
    side = "month" if previous is not None else (against or basis(now))
    if side not in BASES:
        raise ValueError(f"against must be 'month', 'year' or blank, not {against!r}")
    if previous is None and side == "month" and now.get("previous") is not None:
        previous = {"value": now["previous"], "se": now.get("previous_se")}
    if side == "year":
        previous = {"value": now.get("year_ago"), "se": now.get("year_ago_se")}
    moved = now.get("year_change_interval" if side == "year" else "change_interval")
    value, prev = now.get("value"), (previous or {}).get("value")
    if not isinstance(value, (int, float)) or not isinstance(prev, (int, float)):
        return Change(None, None, "neutral", side, None)
    delta = float(value - prev)
    within: bool | None = None
    if moved:
        low, high = moved
        within = low <= 0 <= high
    elif now.get("se") is not None and (previous or {}).get("se") is not None:
        within = abs(delta) < Z95 * math.hypot(now["se"], previous["se"])
    if within:
        verdict = "noise"
    elif within is None or delta == 0 or not now.get("good"):
        verdict = "neutral"
    else:
        verdict = "good" if (delta > 0) == (now["good"] == "up") else "bad"
    return Change(delta, within, verdict, side, float(prev))


def interval(payload: dict[str, Any]) -> tuple[float, float] | None:
    """The figure's 95 % interval: the recorded one, else value ± 1.96 se, else None; kept within
    the values the figure can take (its ``lowest`` and ``highest``, 0…100 for a share in %), so a
    range never goes below zero for a quantity that cannot."""
    bounds = limits(payload.get("unit", ""), lowest=payload.get("lowest"), highest=payload.get("highest"))
    if payload.get("interval"):
        low, high = payload["interval"]
        return clipped((float(low), float(high)), bounds)
    value, se = payload.get("value"), payload.get("se")
    if isinstance(value, (int, float)) and se is not None:
        return clipped((value - Z95 * se, value + Z95 * se), bounds)
    return None
