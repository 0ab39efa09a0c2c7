"""Owner-facing words: the articles' formulas are named as such, never "seeds"; one ladder, one rate each."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

from crm_helpers.report import glossary

ROOT = Path(__file__).resolve().parents[1]
SEEDS = re.compile(r"\bseeds'|\bseed's\b|\bseeds?\s+(?:articles?|formulas?)\b|\(seeds\)|\bthe seeds\b", re.I)
""""Seeds" in the sense of the source articles (a random seed, "seeded", ``--seed`` are fine)."""


def _strings(path: Path) -> list[str]:
    """Every string literal of a Python module (labels, notes, sentences, docstrings)."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return [t.string for t in tokens if t.type == tokenize.STRING]


def test_the_pattern_finds_the_old_words_and_spares_random_seeds():
    assert SEEDS.search("Repeat purchase share (seeds' customer loyalty)")
    assert SEEDS.search("## Repeat buying and loyalty as the seeds define it")
    assert SEEDS.search("Cross-sell probability (the seed formula)")
    assert not SEEDS.search("a seeded bootstrap, deterministic per --seed, seed 42")


def test_no_notebook_markdown_calls_the_articles_seeds():
    found = [f"{nb.name}: {m.group(0)!r}"
             for nb in sorted((ROOT / "notebooks").glob("*.ipynb"))
             for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"] if cell["cell_type"] == "markdown"
             for m in SEEDS.finditer("".join(cell["source"]))]
    assert not found, found


def test_no_sentence_label_or_glossary_entry_calls_the_articles_seeds():
    src = ROOT / "src" / "crm_helpers"
    modules = [*sorted((src / "report").glob("*.py")), *sorted((src / "analyses").glob("*.py")),
               src / "store" / "facts.py"]
    found = [f"{p.name}: {m.group(0)!r}" for p in modules for s in _strings(p) for m in SEEDS.finditer(s)]
    found += [f"glossary {t.term}: {m.group(0)!r}" for t in glossary.TERMS
              for m in SEEDS.finditer(f"{t.term} {t.meaning}")]
    assert not found, found


def test_the_glossary_defines_each_step_of_the_ladder_and_each_rate_once_in_one_sentence():
    from crm_helpers.analyses.clv import PROBABLY_LOST_MEANING
    from crm_helpers.analyses.segmentation import AT_RISK_MEANING
    from crm_helpers.store.facts import LOYALTY_LABEL, LOYALTY_MEANING, REPEAT_RATE_MEANING, lost_meaning

    meaning = {t.term: t.meaning for t in glossary.TERMS}
    expected = {"Customers at risk": AT_RISK_MEANING, "Customers probably lost": PROBABLY_LOST_MEANING,
                "Lost customers": lost_meaning(), "Repeat rate": REPEAT_RATE_MEANING, LOYALTY_LABEL: LOYALTY_MEANING}
    for term, sentence in expected.items():
        assert [t.term for t in glossary.TERMS].count(term) == 1, term
        assert meaning[term] == sentence, term  # the glossary prints the sentence the pages print
        assert sentence.count(". ") == 0 and sentence.endswith("."), f"{term}: not one sentence"
    terms = [t.term for t in glossary.TERMS]
    assert [terms.index(step) for step in glossary.LADDER] == sorted(terms.index(step) for step in glossary.LADDER)
    # the churn model's word is not taken for a step of the ladder, and no other entry reuses the ladder's words
    assert "churn model" in glossary.CHURN_TERM and "not a step of the ladder" in meaning[glossary.CHURN_TERM]
    assert not [t for t in terms if t not in glossary.LADDER and any(s.lower() in t.lower() for s in glossary.LADDER)]
    assert not [t for t in terms if t != LOYALTY_LABEL and "loyalty" in t.lower()]


def test_headlines_and_tables_print_the_glossary_sentence_beside_each_ladder_word_and_rate():
    from crm_helpers.analyses import clv, sales, segmentation
    from crm_helpers.store.connection import memory_db
    from crm_helpers.store.facts import LOYALTY_LABEL, LOYALTY_MEANING, REPEAT_RATE_MEANING, lost_meaning
    from crm_helpers.store.periods import parse_month

    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c, "name": f"Person {c}"} for c in "ABC"])
    orders = [("A", "2026-04-10"), ("A", "2026-04-20"), ("B", "2026-09-02"), ("B", "2026-10-20"), ("C", "2026-10-30")]
    db.table("orders").insert_all([{"order_id": f"o{i}", "customer_id": c, "order_date": d, "amount": 50.0,
                                    "status": "paid"} for i, (c, d) in enumerate(orders)])
    period = parse_month("2026-10")
    meaning = {t.term: t.meaning for t in glossary.TERMS}
    notes = {h.label: h.note for h in segmentation.headline_figures(db, period=period)
             + clv.headline_figures(db, period=period)}
    assert notes["Customers at risk"] == meaning["Customers at risk"]
    assert notes["Customers probably lost"] == meaning["Customers probably lost"]
    table = sales.headline_table(db, period).set_index("key")
    assert table.loc["lost_customers", "label"] == "Lost customers"
    assert table.loc["lost_customers", "note"] == lost_meaning() == meaning["Lost customers"]
    assert table.loc["lost_customers", "value"] == 1  # A: last order in April, six months before October
    assert (table.loc["repeat_rate", "label"], table.loc["repeat_rate", "note"]) == ("Repeat rate", REPEAT_RATE_MEANING)
    assert table.loc["repeat_purchase_share", ["label", "note"]].tolist() == [LOYALTY_LABEL, LOYALTY_MEANING]


def test_one_time_buyers_are_not_judged_by_the_purchase_model_in_the_group_table():
    import pandas as pd

    from crm_helpers.analyses import clv

    customers = pd.DataFrame({
        "buyer_group": ["1 purchase", "1 purchase", "2–3 purchases", "2–3 purchases"],
        "frequency": [0, 0, 1, 2], "p_alive": [1.0, 1.0, 0.3, 0.9], "clv": [5.0, 6.0, 10.0, 30.0],
        "probably_lost": [False, False, True, False]})
    analysis = clv.ClvAnalysis(as_of=dt.date(2026, 10, 31), horizon_months=12, customers=customers,
                               transaction_model=None, spend_model=None, margin_rate=0.3, margin_source="test",
                               currency="EUR")
    table = clv.value_by_group(analysis, "buyer_group")
    assert table.loc["1 purchase", ["mean_p_alive", "probably_lost"]].isna().all()  # not "1" and "0"
    assert table.loc["2–3 purchases", "mean_p_alive"] == 0.6 and table.loc["2–3 purchases", "probably_lost"] == 1


def test_page_03_calls_only_the_months_figure_loyalty_and_gives_every_rate_in_percent():
    from crm_helpers.analyses import scoring
    from crm_helpers.store.connection import memory_db
    from crm_helpers.store.facts import LOYALTY_LABEL, loyalty, repeat_rate

    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c, "name": f"Person {c}"} for c in "AB"])
    orders = [("A", "2026-01-10"), ("A", "2026-10-20"), ("B", "2026-10-02"), ("B", "2026-10-25")]
    db.table("orders").insert_all([{"order_id": f"o{i}", "customer_id": c, "order_date": d, "amount": 50.0,
                                    "status": "paid"} for i, (c, d) in enumerate(orders)])
    overview = scoring.loyalty_overview(db, "2026-10-31", period_start="2026-10-01").set_index("measure")
    assert [m for m in overview.index if "loyalty" in m.lower()] == [LOYALTY_LABEL]
    assert overview.loc[LOYALTY_LABEL, "value_pct"] == 100 * loyalty(db, "2026-10-01", end="2026-10-31")["loyalty"]
    assert overview.loc[LOYALTY_LABEL, "value_pct"] == pytest.approx(100 * 2 / 3)  # A's and B's second orders of three
    assert overview.loc["Repeat rate", "value_pct"] == repeat_rate(db, "2026-10-01", end="2026-10-31") == pytest.approx(50.0)
