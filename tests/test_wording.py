"""Owner-facing words: the articles' formulas are named as such, never "seeds"; one ladder, one rate each."""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

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
