"""The pack's glossary: one plain definition for each term the pages use, written once.

Each entry names the term as the pages print it, what it means in plain words, and the function
that computes it, so the same word always means the same number. The report writes it as
``glossary.html`` next to the index (see :func:`crm_helpers.report.runner.render_report`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from crm_helpers.analyses.clv import PROBABLY_LOST_MEANING
from crm_helpers.analyses.segmentation import AT_RISK_MEANING
from crm_helpers.i18n import html_lang, t
from crm_helpers.store.files import write_text
from crm_helpers.store.facts import (
    LOYALTY_LABEL,
    LOYALTY_MEANING,
    REPEAT_RATE_MEANING,
    REPEAT_WINDOW_DAYS,
    lost_meaning,
)

GLOSSARY_FILE = "glossary.html"

LADDER: tuple[str, ...] = ("Customers at risk", "Customers probably lost", "Lost customers")
"""The three steps of losing a customer, in order, as every page and the index name them."""

CHURN_TERM = "Likely to leave in the next 90 days (churn model)"
"""Page 03's churn forecast, named so that it is not taken for a step of :data:`LADDER`."""


@dataclass(frozen=True)
class Term:
    """One glossary entry: the term, its plain meaning, where it is computed."""

    term: str
    meaning: str
    computed_by: str


TERMS: tuple[Term, ...] = (
    # the ladder for losing customers, from the first warning to the departure: at risk → probably lost → lost
    Term("Customers at risk", AT_RISK_MEANING, "crm_helpers.analyses.segmentation.at_risk_count"),
    Term("Customers probably lost", PROBABLY_LOST_MEANING, "crm_helpers.analyses.clv.analyse_customers"),
    Term("Lost customers", lost_meaning(), "crm_helpers.store.facts.lost_sql"),
    # a different model, not a step of the ladder
    Term(CHURN_TERM, "Buyers whom the churn model (page 03) gives at least an even chance (50 %) of placing no paid "
         "order in the next 90 days: a forecast for every buyer, not a step of the ladder above. A valuable one "
         "whose chance is rising goes on the follow-up list.",
         "crm_helpers.analyses.scoring.value_risk_table"),
    Term("People to follow up", "Everybody the follow-up queue has a reason to contact this week, each with the "
         "reason; the page lists the most urgent.",
         "crm_helpers.analyses.followup.follow_up_queue"),
    # rates
    Term("Repeat rate", REPEAT_RATE_MEANING, "crm_helpers.store.facts.repeat_rate"),
    Term(LOYALTY_LABEL, LOYALTY_MEANING, "crm_helpers.store.facts.loyalty"),
    Term(f"Bought again within {REPEAT_WINDOW_DAYS} days", f"Of the customers acquired at least {REPEAT_WINDOW_DAYS} "
         f"days ago, the share who bought again (on a later day than their first purchase) within {REPEAT_WINDOW_DAYS} "
         "days of it: the fair way to compare channels and months.",
         "crm_helpers.store.facts.buyer_repeats"),
    # scores and models
    Term("R, F and M scores", "1 to 5, how recently (R), how often (F) and how much (M) a customer bought compared "
         "with the others; 5 is the best fifth. F 1 means exactly one order.", "crm_helpers.analyses.segmentation.rfm_table"),
    Term("P(alive)", "The model's chance that a customer is still a customer (will buy again some day), 0 to 1; "
         "it cannot judge a one-time buyer (it says 1 for each), so only repeat buyers can be probably lost.",
         "crm_helpers.analyses.clv.analyse_customers"),
    Term("Silhouette", "How cleanly customer groups separate, from −1 to 1; the number of groups with the highest "
         "value is chosen.", "crm_helpers.analyses.segmentation.CustomerClusters"),
    Term("NPS", "Net Promoter Score: % of answers 9–10 minus % of answers 0–6 to \"would you recommend us\", "
         "from −100 to 100.", "crm_helpers.analyses.satisfaction.period_scores"),
    Term("CSAT", "The share of answers scoring 4 or 5 on the 1–5 overall satisfaction question, in %.",
         "crm_helpers.analyses.satisfaction.period_scores"),
    Term("ROMI", "Return on marketing investment: (what the campaign's tagged orders earned − its cost) ÷ cost. "
         "It credits orders that would have come anyway; the extra revenue against customers not contacted says "
         "what the campaign really changed.", "crm_helpers.analyses.romi.campaign_table"),
    Term("Extra revenue (lift)", "What contacted customers spent during a campaign beyond comparable customers who "
         "were not contacted, with a 95 % range; when the range includes zero the campaign had no measurable effect.",
         "crm_helpers.analyses.romi.lift_ranking"),
    Term("Weighted pipeline", "Open deals' amounts times their chance to win: what they are expected to bring; "
         "overdue deals (past their expected close date) are shown apart.", "crm_helpers.analyses.sales.pipeline_split"),
    Term("SARIMAX forecast", "A statistical forecast of monthly revenue from its trend and its season (the same "
         "month a year before); the range says how far off it may be.", "crm_helpers.analyses.forecast.forecast_sales"),
    Term("95 % range", "Where the true figure lies with 95 % confidence, given how much such a figure varies by "
         "chance from month to month.", "crm_helpers.report.headlines.interval"),
    Term("Within noise", "A move against the same month last year (or, without a year of history, the previous "
         "month) that chance alone would often produce: not called a change. A figure without a noise estimate "
         "says so instead.", "crm_helpers.report.headlines.compare"),
)
"""Every term of the glossary, in the order the page lists them."""


GLOSSARY_INTRO = ("Each word the pages use for customers at risk or gone, and each rate, means one thing, computed in "
                  "one\nplace: the same word gives the same number on every page. Losing a customer is one ladder of "
                  "three steps:\ncustomers at risk, then customers probably lost, then lost customers.")
"""The glossary's opening paragraph."""


def glossary_html(title: str) -> str:
    """The glossary page in the language in use: one definition list, each term with its meaning and
    its function (a term keeps its English id, where links point)."""
    entries = "".join(
        f'<dt id="{html.escape(term.term.lower().replace(" ", "-"))}">{html.escape(t(term.term))}</dt>'
        f'<dd>{html.escape(t(term.meaning))} <span class="src">'
        f'{t("Computed by {function}.", function=f"<code>{html.escape(term.computed_by)}</code>")}</span></dd>'
        for term in TERMS
    )
    return f"""<!DOCTYPE html>
<html lang="{html_lang()}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:860px;margin:2em auto;padding:0 1em;color:#1f2933}}
dt{{font-weight:600;margin-top:1em}} dd{{margin:.2em 0 0 0}} .src{{color:#7b8794;font-size:.85em}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>{t(GLOSSARY_INTRO)}</p>
<dl>{entries}</dl><p><a href="index.html">{t("Back to the index")}</a></p></body></html>
"""


def write_glossary(folder: Path, title: str = "Glossary") -> Path:
    """Write :data:`GLOSSARY_FILE` into ``folder`` (a pack); returns its path."""
    path = folder / GLOSSARY_FILE
    return write_text(path, glossary_html(title))
