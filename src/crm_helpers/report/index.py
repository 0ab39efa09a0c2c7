"""The pack's ``index.html``: "Actions this month" (ranked by the money at stake), "Needs attention",
the headline figures beside the previous month and the same month last year (the arrow of the fair
comparison coloured by what is good for the business when the move is beyond noise, grey within
noise or without a noise estimate), whom to contact this week, and a link to every page. Built only
from what the notebooks recorded (:mod:`.headlines`)."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from crm_helpers.i18n import html_lang, t, tn
from crm_helpers.store.values import named_list, shown_value
from crm_helpers.store.periods import Period
from crm_helpers.report import headlines, numbers, tables
from crm_helpers.report.glossary import GLOSSARY_FILE
from crm_helpers.report.pages import NotebookRun, section_anchor

KPI_ORDER = [
    "revenue", "paid_orders", "active_customers", "new_customers", "returning_customers",
    "lost_customers", "repeat_rate", "nps", "csat", "best_campaign_lift",
    "total_expected_clv",
]
"""Headline keys shown first on the index, in this order; any other recorded key follows."""


def format_value(value: Any, unit: str, *, missing: str = "") -> str:
    """``value`` with its unit as the index shows it; a missing one in plain words (the figure's
    ``missing``, else :data:`~crm_helpers.store.values.NOT_AVAILABLE`)."""
    if value is None:
        return html.escape(shown_value(None, missing))
    if isinstance(value, (int, float)):
        return numbers.figure(value, unit)
    return html.escape(str(value))


def format_change(value: Any, previous: Any, *, unit: str, change: str = "") -> str:
    """The move against the previous month: in points for shares and fixed scales, else in %."""
    if not isinstance(value, (int, float)) or not isinstance(previous, (int, float)):
        return ""
    delta = value - previous
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    if (change or ("points" if unit == "%" else "relative")) == "points":
        return t("{arrow} {delta} pts", arrow=arrow, delta=f"{delta:+,.1f}")
    if previous:
        return f"{arrow} {delta / abs(previous) * 100:+,.1f}{t(' %')}"
    return f"{arrow} {delta:+,.0f}"


VERDICT_TITLES = {
    "good": "a real move, good for the business",
    "bad": "a real move, bad for the business",
    "noise": "within its noise: could be chance, not a change",
    "neutral": "",
}
VERDICT_NOTES = {"good": "beyond noise", "bad": "beyond noise", "noise": "within noise"}
"""The words under a judged arrow; a figure without a noise estimate says so instead (never "within noise")."""
NO_NOISE_TITLE = "no noise estimate for this figure: not coloured, the move could be chance"
BASIS_WORDS = {"month": "the previous month", "year": "the same month last year"}


def _versus_cell(payload: dict[str, Any], against: str) -> str:
    """One comparison column: the reference's value (the previous month's or the same month last
    year's) and the move against it. The fair comparison (:func:`headlines.basis`) is judged: its
    arrow coloured by :func:`headlines.compare`'s verdict, "beyond noise" or "within noise" under
    it, or "no noise estimate" when the figure carries none (never called within noise then); the
    other is shown uncoloured, for reference."""
    unit, reference = payload.get("unit", ""), payload.get("previous" if against == "month" else "year_ago")
    if not isinstance(reference, (int, float)):
        return '<td class="num versus"></td>'
    shown = f'<span class="v">{format_value(reference, unit)}</span>'
    text = format_change(payload.get("value"), reference, unit=unit, change=payload.get("change", ""))
    if not text:
        return f'<td class="num versus">{shown}</td>'
    if against != headlines.basis(payload):
        title = t("for reference: the arrow is judged against {basis}",
                  basis=t(BASIS_WORDS[headlines.basis(payload)]))
        return f'<td class="num versus" title="{title}">{shown}<div class="move">{text}</div></td>'
    change = headlines.compare(payload, against=against)
    verdict, title = change.verdict, t(VERDICT_TITLES[change.verdict]) if VERDICT_TITLES[change.verdict] else ""
    note = t(VERDICT_NOTES[verdict]) if verdict in VERDICT_NOTES else ""
    if change.within_noise is None and change.delta:
        verdict, title, note = "neutral unjudged", t(NO_NOISE_TITLE), t("no noise estimate")
    elif change.within_noise is False and not note:
        note = t("beyond noise")
    extra = f'<div class="note">{note}</div>' if note else ""
    return (f'<td class="num versus change {verdict}"' + (f' title="{title}"' if title else "")
            + f'>{shown}<div class="move">{text}</div>{extra}</td>')


def _value_cell(payload: dict[str, Any]) -> str:
    """The value; an estimate's 95 % range underneath (kept within the values the figure can take,
    :func:`headlines.interval`), a counted fact (``exact``) without one: the store knows it exactly."""
    unit = payload.get("unit", "")
    text = format_value(payload.get("value"), unit, missing=payload.get("missing") or "")
    if payload.get("value") is not None:
        text = f'<span class="v">{text}</span>'  # a number and its unit stay on one line on a phone
    bounds = None if payload.get("exact") else headlines.interval(payload)
    if bounds and payload.get("value") is not None:
        digits = 0 if isinstance(payload["value"], int) else 1  # a count's range in whole numbers
        ends = [round(b, digits) if digits else int(round(b)) for b in bounds]
        low, high = (numbers.percent(b, sign=False) if unit == "%" else format_value(b, "") for b in ends)
        text += f'<div class="note">{t("95 % range {range}", range=numbers.span(low, high, unit=unit))}</div>'
    return f'<td class="num">{text}</td>'


def _latest_figures(runs: list[NotebookRun]) -> dict[str, tuple[dict[str, Any], NotebookRun]]:
    """Every recorded figure by key, with the run that recorded it."""
    return {key: (payload, run) for run in runs for key, payload in run.headlines.items()}


def _page_link(run: NotebookRun) -> str:
    return (run.html or run.notebook).name


def _figure_link(payload: dict[str, Any], run: NotebookRun) -> str:
    """The section of the page where the figure was recorded, else the page."""
    section = payload.get("section") or ""
    return _page_link(run) + (f"#{section_anchor(section)}" if section and run.html else "")


def _kpi_rows(runs: list[NotebookRun]) -> list[str]:
    figures = _latest_figures(runs)
    keys = [k for k in KPI_ORDER if k in figures]
    keys += sorted(k for k in figures if k not in KPI_ORDER)
    rows = []
    for key in keys:
        payload, run = figures[key]
        note = f'<div class="note">{html.escape(t(payload["note"]))}</div>' if payload.get("note") else ""
        rows.append(
            f'<tr><td><a href="{html.escape(_figure_link(payload, run))}">{html.escape(t(payload.get("label") or key))}'
            f'</a>{note}</td>'
            f"{_value_cell(payload)}{_versus_cell(payload, 'month')}{_versus_cell(payload, 'year')}</tr>"
        )
    return rows


ACTIONS_MAX = 7
"""How many actions "Actions this month" lists at most (the issue asks for 3–10); the others are counted."""


def _pages(run: NotebookRun) -> str:
    return t("page {number}", number=run.name[:2]) if run.name[:2].isdigit() else run.name


def recorded_actions(runs: list[NotebookRun]) -> list[tuple[dict[str, Any], NotebookRun]]:
    """Every action the notebooks recorded (:func:`crm_helpers.report.headlines.record_actions`), with
    the run that recorded it, ranked by the money at stake (``rank_money``), highest first."""
    found = [(row, run) for run in runs for row in run.tables.get(headlines.ACTIONS_TABLE, {}).get("rows", [])]
    return sorted(found, key=lambda item: -float(item[0].get("rank_money") or 0.0))


def money_text(row: dict[str, Any]) -> str:
    currency = row.get("currency") or ""
    if row.get("money") is None:
        return t("no money estimate ({rule})", rule=t(row.get("rule") or "ranked last"))
    stake = numbers.money(row["money"], currency)
    if row.get("low") is not None and row.get("high") is not None:
        likely = numbers.span(numbers.amount(row["low"]), numbers.amount(row["high"]), unit=currency)
        return t("{money} at stake, likely {range}", money=stake, range=likely)
    return t("{money} at stake", money=stake)


def _action_href(row: dict[str, Any], run: NotebookRun) -> str:
    """The section of the run's page the action's evidence is in (its ``link``'s anchor on the page
    this pack holds, so the shared copy links to its own pages)."""
    anchor = row.get("link", "").partition("#")[2]
    return _page_link(run) + (f"#{anchor}" if anchor else "")


def _actions_html(runs: list[NotebookRun]) -> str:
    """The index's first section: at most :data:`ACTIONS_MAX` actions, each its sentence, the money
    at stake with its range and a link to the section of its page; the rest counted per page."""
    ranked = recorded_actions(runs)
    if not ranked:
        return (f'<section id="actions"><h2>{t("Actions this month")}</h2><p>'
                f'{t("No analysis has an action for you this month (see Needs attention below).")}</p></section>')
    entries = "".join(
        f'<li>{html.escape(row["sentence"])}<div class="meta"><span class="stake">{html.escape(money_text(row))}'
        f'</span> · <a href="{html.escape(_action_href(row, run))}">{html.escape(_pages(run))}: '
        f'{html.escape(t(row.get("section") or "the page"))}</a></div>{_what_if_html(row)}</li>'
        for row, run in ranked[:ACTIONS_MAX])
    rest: dict[str, int] = {}
    for _, run in ranked[ACTIONS_MAX:]:
        rest[_pages(run)] = rest.get(_pages(run), 0) + 1
    more = ""
    if rest:
        count = sum(rest.values())
        where = t(", ").join(t("{count} on {page}", count=n, page=page) for page, n in rest.items())
        more = '<p class="more">' + tn("… and {n} smaller item: {where}.", "… and {n} smaller items: {where}.",
                                       n=count, where=where) + "</p>"
    return (f'<section id="actions"><h2>{t("Actions this month")}</h2><p class="sub">'
            f'{t("Ranked by the money at stake this month; each links to the evidence on its page.")}</p>'
            f"<ol>{entries}</ol>{more}</section>")


def _what_if_html(row: dict[str, Any]) -> str:
    """The planner's numbers for an action, linked to its page, or nothing."""
    if not row.get("what_if"):
        return ""
    page = f'{row.get("what_if_page") or "07_plan"}.html'
    return (f'<div class="meta">{html.escape(t("What if: {numbers}", numbers=row["what_if"]))} · '
            f'<a href="{html.escape(page)}">{t("the planner (page 07)")}</a></div>')


ATTENTION_MAX, ATTENTION_MIN = 7, 3
"""How many sentences "Needs attention" holds at most, and at least (filled with real good news)."""


def _move_sentence(payload: dict[str, Any], change: headlines.Change) -> str:
    """The sentence for a move beyond noise, against the reference it was judged by."""
    rose = change.delta is not None and change.delta > 0
    unit = payload.get("unit", "")
    fields = dict(figure=t(payload.get("label") or payload["key"]), before=format_value(change.reference, unit),
                  now=format_value(payload["value"], unit))
    if change.basis == "year":
        return (t("{figure} rose from {before} in the same month last year to {now}, more than its usual noise.",
                  **fields) if rose else
                t("{figure} fell from {before} in the same month last year to {now}, more than its usual noise.",
                  **fields))
    return (t("{figure} rose from {before} to {now}, more than its usual month-to-month noise.", **fields) if rose
            else t("{figure} fell from {before} to {now}, more than its usual month-to-month noise.", **fields))


def needs_attention(runs: list[NotebookRun]) -> list[tuple[str, str]]:
    """The index's "Needs attention" list: ``(sentence, page)`` pairs, at most :data:`ATTENTION_MAX`.

    What the notebooks flagged (:func:`crm_helpers.report.headlines.flag`; not what an action above
    supersedes, its ``replaces``), and every headline figure
    that moved the bad way by more than its noise (:func:`crm_helpers.report.headlines.compare`), ranked
    by the money at stake: the flag's own ``money``; for a figure in money, its change; for a count,
    its change times the figure's recorded ``worth`` (money per unit). Below :data:`ATTENTION_MIN`
    items, real good moves follow, then one sentence saying that no other figure with a noise estimate
    moved beyond it (and, when the notebooks recorded actions, that those are the month's work: the
    list never says that nothing needs the owner while an analysis holds an action)."""
    items: list[tuple[float, str, str]] = []
    good: list[tuple[float, str, str]] = []
    actions = recorded_actions(runs)
    said = {row.get("replaces") for row, _ in actions} - {"", None}  # an action says it better: said once
    unjudged: list[str] = []
    for run in runs:
        page = _page_link(run)
        items += [(float(f.get("money") or 0.0), f["sentence"], page) for f in run.flags if f.get("key") not in said]
        for payload in run.headlines.values():
            change = headlines.compare(payload)
            if change.delta and change.within_noise is None:
                unjudged.append(t(payload.get("label") or payload["key"]))
            if change.verdict not in ("good", "bad"):
                continue
            worth = 1.0 if payload.get("unit") not in ("", "%") else float(payload.get("worth") or 0.0)
            entry = (abs(change.delta or 0.0) * worth, _move_sentence(payload, change), page)
            (items if change.verdict == "bad" else good).append(entry)
    ranked = sorted(items, key=lambda i: -i[0])[:ATTENTION_MAX]
    ranked += sorted(good, key=lambda i: -i[0])[:max(0, ATTENTION_MIN - len(ranked))]
    chosen = [(sentence, page) for _, sentence, page in ranked]
    if len(chosen) < ATTENTION_MIN:
        closing = _rest_sentence(unjudged)
        if actions:
            closing += t(" The actions above are this month's work.")
        chosen.append((closing, "#kpis"))
    return chosen


def _rest_sentence(unjudged: list[str]) -> str:
    """What the headline figures left off the list did: within their noise, and, named, the ones
    that moved without a noise estimate (never called within noise: nobody can tell)."""
    if not unjudged:
        return t("Every other headline figure moved within its usual noise.")
    names = named_list(unjudged)
    if len(unjudged) == 1:
        return t("The other headline figures with a noise estimate moved within it; {names} has none, so whether "
                 "it moved by more than chance cannot be told: see the table.", names=names)
    return t("The other headline figures with a noise estimate moved within it; {names} have none, so whether "
             "they moved by more than chance cannot be told: see the table.", names=names)


def _attention_html(runs: list[NotebookRun]) -> str:
    entries = "".join(f'<li><a href="{html.escape(page)}">{html.escape(sentence)}</a></li>'
                      for sentence, page in needs_attention(runs))
    return f'<section id="attention"><h2>{t("Needs attention")}</h2><ol>{entries}</ol></section>'


FOLLOW_UP_TABLE = "follow_up_queue"
"""The key under which notebook 03 records the follow-up queue for the index."""


def _follow_up_html(runs: list[NotebookRun], limit: int = 25) -> str:
    """The head of the call list notebook 03 recorded (its first 20, most money at stake first;
    the whole list is in follow_up_queue.csv), never more than ``limit`` rows."""
    recorded = next((run.tables[FOLLOW_UP_TABLE] for run in runs if FOLLOW_UP_TABLE in run.tables), None)
    if recorded is None:
        return f'<p>{t("No follow-up queue this month.")}</p>'
    rows = recorded["rows"][:limit]
    if not rows:
        return f'<p>{t("Nobody needs a follow-up this week.")}</p>'
    units = recorded.get("units", {})
    cols = [c for c in ("name", "email", "money_at_stake", "reasons", "last_order", "last_contact")
            if c in recorded["columns"]]
    head = "".join(f"<th>{html.escape(t(tables.plain_name(c)))}" + (f" ({html.escape(units[c])})" if c in units else "")
                   + "</th>" for c in cols)
    body = "".join("<tr>" + "".join(_queue_cell(row.get(c), money=c in units) for c in cols) + "</tr>"
                   for row in rows)
    return f'<div class="table-box"><table class="queue"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _queue_cell(value: Any, *, money: bool) -> str:
    """One cell of the follow-up table: money as a whole number with thousands separators, right-aligned."""
    if money and isinstance(value, (int, float)) and value == value:
        return f'<td class="num">{numbers.amount(value)}</td>'
    return f"<td>{html.escape(_cell(value))}</td>"


def _cell(value: Any) -> str:
    """A recorded table cell as text; a missing value is blank, never "None" or "nan"."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


INDEX_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#1f2933}
h1{margin-bottom:.2em} .sub{color:#52606d;margin-top:0}
table{border-collapse:collapse;width:100%;margin:1em 0} th,td{padding:.45em .6em;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap} .note{color:#7b8794;font-size:.85em}
.failed{color:#b42318} pre{background:#fef3f2;padding:.6em;overflow:auto;font-size:.85em}
a{color:#0b69a3} .table-box{max-width:100%;overflow-x:auto} .table-box table{margin:0}
table.queue td{min-width:6em} table.queue td:nth-child(2){word-break:break-all;min-width:9em}
.good{color:#067647} .bad{color:#b42318} .noise,.unjudged{color:#9aa5b1}
td.versus .move{color:#52606d} td.change .move{font-weight:600;color:inherit} th .note{font-weight:normal}
@media (max-width:600px){body{margin:1em auto;padding:0 .6em} #kpis,#kpis thead,#kpis tbody{display:block}
 #kpis tr{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));border-bottom:1px solid #e4e7eb}
 #kpis th,#kpis td{border-bottom:none;padding:.3em .35em} #kpis th:first-child{display:none}
 #kpis td:first-child{grid-column:1/-1;padding-bottom:0} #kpis th{text-align:right}
 #kpis td.num{white-space:normal} #kpis .v,#kpis .move{white-space:nowrap}}
#attention ol,#actions ol{padding-left:1.4em} #attention li{margin:.35em 0}
#actions li{margin:.7em 0;line-height:1.45} #actions .meta{font-size:.9em;color:#52606d} .stake{font-weight:600;color:#1f2933}
#actions .more{color:#52606d}
"""


def index_html(period: Period, runs: list[NotebookRun], *, title_suffix: str = "") -> str:
    """The pack's ``index.html``: headline figures with change, follow-up queue, notebook links."""
    kpis = _kpi_rows(runs)
    label = numbers.period(period.start, period.end)
    previous, year_before = period.previous_month(), period.year_before()
    kpi_table = (
        f'<table id="kpis"><thead><tr><th>{t("Figure")}</th><th>{t("This month")}<div class="note">'
        f'{html.escape(label)}</div></th>'
        f'<th>{t("Previous month")}<div class="note">{html.escape(numbers.period(previous.start, previous.end))}'
        f'</div></th><th>{t("Same month last year")}<div class="note">'
        f'{html.escape(numbers.period(year_before.start, year_before.end))}</div></th>'
        "</tr></thead><tbody>"
        + "".join(kpis) + "</tbody></table>"
    ) if kpis else f'<p>{t("No headline figures were recorded.")}</p>'
    items = []
    for run in runs:
        target = _page_link(run)
        status = f'<span class="failed">{t("failed")}</span>' if not run.ok else (
            t("{seconds} s", seconds=f"{run.seconds:.1f}") if run.rendered else t("rendered in an earlier run"))
        detail = "" if run.ok else f"<pre>{html.escape(run.error)}</pre>" + (
            f'<a href="{html.escape(run.notebook.name)}">{t("executed notebook")}</a>' if run.notebook.exists() else ""
        )
        items.append(f'<li><a href="{html.escape(target)}">{html.escape(run.name)}</a> — {status}{detail}</li>')
    generated = dt.date.today().isoformat()
    title = t("CRM report {month}", month=label)
    dates = t("{start} to {end} · rendered {today}", start=period.start.isoformat(), end=period.end.isoformat(),
              today=generated)
    return f"""<!DOCTYPE html>
<html lang="{html_lang()}"><head><meta charset="utf-8"><title>{html.escape(title)}{title_suffix}</title>
<style>{INDEX_CSS}</style></head><body>
<h1>{html.escape(title)}{html.escape(title_suffix)}</h1>
<p class="sub">{dates} ·
<a href="{GLOSSARY_FILE}">{t("glossary: what each word means")}</a></p>
{_actions_html(runs)}
{_attention_html(runs)}
<h2>{t("Headline figures")}</h2>
<p class="sub">{t(HEADLINES_NOTE)}</p>
{kpi_table}
<h2>{t("Whom to contact this week")}</h2>
{_follow_up_html(runs)}
<h2>{t("Notebooks")}</h2>
<ul>{''.join(items)}</ul>
</body></html>
"""


HEADLINES_NOTE = """Each figure is judged against the same month last year where the store holds it (a seasonal
business against its own season), else against the previous month; the other comparison is shown for reference.
<span class="good">Green</span> is a move beyond noise, good for the business, <span class="bad">red</span> one
bad for it, <span class="noise">grey</span> a move within the figure's usual noise (it could be chance) or a figure
with no noise estimate, which says so. Counted facts (orders, customers, revenue) are shown without a range: the
store knows them exactly."""
"""How to read the headline table (HTML: the colour words are coloured)."""
