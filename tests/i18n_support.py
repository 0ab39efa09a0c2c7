"""What the Chinese tests read: the sentences the code passes to the catalogue, and the English left
on a rendered page.

Run as a script on a pack rendered with ``--lang zh`` to count, per page, the English sentences
left untranslated (the closing note of the translation work quotes these counts); with the store,
the words of its names (people, products, campaigns, deals) and the customers' own comments are
not counted::

    python tests/i18n_support.py reports/2026-11 [data/crm.db]
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "crm_helpers"


def literal_messages(path: Path) -> set[str]:
    """The English texts of every ``t("...")`` and ``tn("...", "...")`` call in the module at
    ``path`` whose text is written in the call (also inside f-strings): the catalogue's entries."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("t", "tn"):
            for arg in node.args[:1]:  # tn: the singular is the entry
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    return found


WORD = re.compile(r"[A-Za-z][a-z]+(?:['’][a-z]+)?")
"""An English word: a letter then lower-case letters (names in capitals, codes and e-mails rarely match)."""
CJK = re.compile(r"[\u4e00-\u9fff]")
NOT_WORDS = re.compile(r"\S+@\S+|\S+://\S+|\S+\.(?:html|pdf|csv|ipynb|py)\b|\b\w+_\w+\b|\b\w+=\"[^\"]*\"")
"""E-mail addresses, links, file names, code names (``follow_up_queue``) and a call's keyword arguments
(``channel="call"``, in a PDF, where a page's code is text): not English sentences."""


SENTENCES = re.compile(r"[\n\r\t|]+|(?<=[。！？；])")
"""Where a run of text ends: a line, a table cell, or a Chinese sentence (an English sentence after a
Chinese one in the same paragraph counts on its own)."""


def english_sentences(text: str, *, allowed: set[str] = frozenset(), min_words: int = 3) -> list[str]:
    """The runs of text in ``text`` (one per line or table cell) holding no Chinese and at least
    ``min_words`` English words that are not in ``allowed`` (names of people, products, campaigns)."""
    left = []
    for line in SENTENCES.split(text):
        line = line.strip()
        if not line or CJK.search(line):
            continue
        words = [w for w in WORD.findall(NOT_WORDS.sub(" ", line)) if w not in allowed]
        if len(words) >= min_words:
            left.append(line)
    return left


def page_text(html_text: str) -> str:
    """The visible text of an HTML page, one line per block or cell (scripts, styles and images left out)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html_text, "html.parser")
    for tag in soup(["script", "style", "img", "svg", "code"]):  # printed sentences (<pre>) count
        tag.decompose()
    return soup.get_text("\n")


def comment_words(comments: set[str]) -> set[str]:
    """The words of the customers' comments: a page quotes them, and the themes drawn from them, as written."""
    return {word for text in comments for word in re.findall(r"[A-Za-z][A-Za-z'’]*", text)}


def store_words(db_path: Path) -> tuple[set[str], set[str]]:
    """The words of the store's names (people, products, categories, campaigns, deals) and the
    customers' own comments, whole: what a translated page shows as written."""
    import sqlite3

    words, comments = set(), set()
    with sqlite3.connect(db_path) as db:
        for query in ("SELECT name FROM customers", "SELECT name FROM products", "SELECT category FROM products",
                      "SELECT name FROM campaigns", "SELECT title FROM opportunities"):
            for (text,) in db.execute(query):
                words.update(re.findall(r"[A-Za-z][A-Za-z'’]*", text or ""))
        comments = {text.strip() for (text,) in db.execute("SELECT comment FROM feedback") if text}
    return words, comments


def main(pack: Path, db_path: Path | None = None) -> None:
    """Print, per page of ``pack``, how many English sentences are left, and the first few."""
    names, comments = store_words(db_path) if db_path else (set(), set())
    total = 0
    for page in sorted(pack.glob("*.html")):
        left = [line for line in english_sentences(page_text(page.read_text(encoding="utf-8")), allowed=names)
                if line not in comments]
        total += len(left)
        print(f"{page.name:34} {len(left):5d}")
        for line in left[:3]:
            print(f"    {line[:110]}")
    print(f"{'total':34} {total:5d}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
