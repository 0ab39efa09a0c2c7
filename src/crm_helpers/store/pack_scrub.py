"""The report packs' side of ``crm forget``: remember where each pack of a store went, and rewrite
the person out of every page, notebook and CSV there.

The report runner calls :func:`remember_report_folder` before it renders a page; after the
erasure's transaction, :func:`scrub_packs` finds, in every remembered folder (the owner's pack and
its ``share/`` copy alike), each occurrence of the values the person was shown by
(:func:`values_shown`: name, e-mail, phone as stored and in its international form, company when no
other customer has it, customer id, free-text values) in whatever encoding the file holds it (as
written, HTML-escaped, JSON-escaped, CSV-quoted) and replaces it with the pseudonym. A file that
still holds one of them afterwards is removed, and said so (:class:`PackScrub`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import sqlite3
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from crm_helpers.store import config
from crm_helpers.store.files import write_bytes
from crm_helpers.store.schema import REPORT_FOLDERS, TABLES, personal_columns
from crm_helpers.store.connection import StoreError, open_db
from crm_helpers.store.suppression import phone_forms, store_region

@dataclass
class PackScrub:
    """The report packs' files that held the person: rewritten with the pseudonym, or removed
    (a file that still held them after the rewrite, or that could not be rewritten)."""

    folders: dict[str, str] = field(default_factory=dict)
    """``{folder: period}`` of every remembered pack folder that exists (searched with its ``share/``)."""
    rewritten: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no page had to be removed (nothing to render again)."""
        return not self.removed

    @property
    def message(self) -> str:
        """Plain words for the owner: what was rewritten or removed, and what to do."""
        if not self.folders:
            return "No report pack of this store is known (packs rendered before this version are not remembered)."
        if not self.rewritten and not self.removed:
            return f"No report page or CSV in the {len(self.folders)} report folders showed them."
        words = []
        if self.rewritten:
            words.append(f"Rewrote {len(self.rewritten)} report files without them (in {_folders(self.rewritten)}).")
        if self.removed:
            words.append(f"Removed {len(self.removed)} report files that still showed them: "
                         + ", ".join(self.removed) + ". Render those packs again: " + "; ".join(self.rerender()) + ".")
        return " ".join(words)

    def rerender(self) -> list[str]:
        """The ``crm report`` command that renders each pack with a removed file again."""
        commands = []
        for folder, period in self.folders.items():
            if any(Path(p).is_relative_to(folder) for p in self.removed):
                month = period if re.fullmatch(r"\d{4}-\d\d", period) else "YYYY-MM"
                default = Path(folder) == (config.reports_dir() / month).resolve()
                commands.append(f"crm report --month {month}" + ("" if default else f" --out {folder}")
                                + (" --share" if (Path(folder) / "share").is_dir() else ""))
        return commands



PACK_SUFFIXES = (".html", ".ipynb", ".csv", ".md", ".txt", ".json")
"""The files of a pack that hold text (pages, notebooks, CSVs); images hold no names (the plots
label segments, months and products, never a customer)."""
HIDDEN_FREE_TEXT = "[erased]"
_MIN_FREE_TEXT = 8
"""The person's free-text values (notes, subjects, comments) shorter than this are not searched for:
a comment "ok" or "thanks" is anybody's."""


def remember_report_folder(db_path: str | os.PathLike[str], folder: str | os.PathLike[str], *, period: str) -> bool:
    """Record in the store at ``db_path`` that a pack for ``period`` (YYYY-MM) went to ``folder`` (kept
    absolute), so that ``crm forget`` finds it. False when the store cannot be written (a read-only
    copy): the pack is rendered all the same."""
    try:
        db = open_db(db_path)
        with db.conn:
            db.execute(f"INSERT INTO {REPORT_FOLDERS} (path, period, rendered_at) VALUES (?, ?, ?) "
                       "ON CONFLICT(path) DO UPDATE SET period = excluded.period, rendered_at = excluded.rendered_at",
                       [str(Path(folder).resolve()), period, dt.datetime.now().isoformat(timespec="seconds")])
        db.conn.close()
    except (StoreError, sqlite3.DatabaseError):
        return False
    return True


def report_folders(db: Database) -> dict[str, str]:
    """``{folder: period}`` of the remembered pack folders of ``db`` that exist, oldest first."""
    if REPORT_FOLDERS not in db.table_names():
        return {}
    rows = db.execute(f"SELECT path, period FROM {REPORT_FOLDERS} ORDER BY rowid").fetchall()
    return {path: period for path, period in rows if Path(path).is_dir() and not Path(path).is_symlink()}


def values_shown(db: Database, customer_id: str) -> dict[str, str]:
    """``{value: replacement kind}`` for everything of the person a page can show: ``"id"`` for the
    name, e-mail, phone (as stored and in its other forms), company (when no other customer has it)
    and customer id, all replaced by the pseudonym; ``"text"`` for their free-text values (notes,
    subjects, comments) that no other customer has, of :data:`_MIN_FREE_TEXT` characters or more."""
    row = db.execute("SELECT name, email, phone, company FROM customers WHERE customer_id = ?",
                     [customer_id]).fetchone()
    name, email, phone, company = row
    values = {customer_id: "id"}
    for value in (name, email, phone):
        if value and value.strip():
            values[value.strip()] = "id"
    if phone:
        for form in phone_forms(phone, region=store_region(db)):
            values.setdefault(form, "id")
    if company and company.strip():
        others = db.execute("SELECT count(*) FROM customers WHERE company = ? AND customer_id <> ?",
                            [company, customer_id]).fetchone()[0]
        if not others:
            values.setdefault(company.strip(), "id")
    for table, columns in personal_columns().items():
        if "customer_id" not in TABLES[table].column_names:
            continue
        for column in (c for c in columns if table != "customers" or c == "notes"):
            # only their own words: a comment another customer wrote too ("Fast delivery") is nobody's
            rows = db.execute(f"SELECT DISTINCT {column} FROM {table} AS mine WHERE customer_id = ? "
                              f"AND {column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {table} AS other "
                              f"WHERE other.{column} = mine.{column} AND other.customer_id <> mine.customer_id)",
                              [customer_id]).fetchall()
            for (text,) in rows:
                if len(str(text).strip()) >= _MIN_FREE_TEXT:
                    values.setdefault(str(text).strip(), "text")
    return values


def scrub_packs(db: Database, values: dict[str, str], *, pseudonym: str) -> PackScrub:
    """Rewrite every text file (:data:`PACK_SUFFIXES`) of every remembered pack folder of ``db`` that
    shows one of ``values`` (``{value: "id" | "text"}``, see :func:`_values_shown`): ids become
    ``pseudonym``, free text :data:`HIDDEN_FREE_TEXT`. Files are replaced atomically (a temporary
    file in the same folder, renamed), owner-only; links are never followed. A file still holding a
    value afterwards (found in its decoded text, HTML-unescaped, and in a notebook's JSON strings) is
    removed. The pack's PDFs (``brief.pdf``, ``pack.pdf``: printed from the pages, not searchable
    text) are removed from a folder where the person was found; the next render prints them again."""
    scrub = PackScrub(folders=report_folders(db))
    if not scrub.folders:
        return scrub
    encoded = _Needles({form for value in values for form in _encodings(value)})
    plain = _Needles(set(values))
    replacements = {v.casefold(): (pseudonym if kind == "id" else HIDDEN_FREE_TEXT) for v, kind in values.items()}
    for folder in scrub.folders:
        shown = len(scrub.rewritten) + len(scrub.removed)
        for path in _pack_files(Path(folder)):
            text = path.read_bytes().decode("utf-8", errors="surrogateescape")
            new = encoded.sub(text, lambda m: replacements.get(_decoded(m.group(0)).casefold(), pseudonym))
            if new == text and not _still_shows(new, path, plain):
                continue
            try:
                if new != text:
                    write_bytes(path, new.encode("utf-8", errors="surrogateescape"))
                if _still_shows(new, path, plain):
                    path.unlink()
                    scrub.removed.append(str(path))
                else:
                    scrub.rewritten.append(str(path))
            except OSError:
                path.unlink(missing_ok=True)
                scrub.removed.append(str(path))
        if len(scrub.rewritten) + len(scrub.removed) > shown:  # the person was in this pack: so are its PDFs
            for pdf in sorted(Path(folder).rglob("*.pdf")):
                if pdf.is_file() and not pdf.is_symlink():
                    pdf.unlink()
                    scrub.removed.append(str(pdf))
    return scrub


def _folders(paths: list[str]) -> str:
    folders = sorted({str(Path(p).parent) for p in paths})
    return ", ".join(folders)


def _pack_files(folder: Path) -> list[Path]:
    """The text files under ``folder``, its subfolders included, links neither listed nor followed."""
    found = []
    for root, dirs, files in os.walk(folder):  # os.walk does not follow links to folders
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
        for name in files:
            path = Path(root) / name
            if path.suffix.lower() in PACK_SUFFIXES and not path.is_symlink():
                found.append(path)
    return sorted(found)


def _encodings(value: str) -> set[str]:
    """``value`` as a page, notebook or CSV can hold it: as written; HTML-escaped (Python's, Jinja's and
    pandas' ways); each of those JSON-escaped (a notebook, ASCII or not) and CSV-quoted."""
    escaped = {value, html.escape(value), html.escape(value, quote=False),
               html.escape(value, quote=False).replace("'", "&#39;").replace('"', "&#34;")}
    forms = set()
    for form in escaped:
        forms |= {form, json.dumps(form, ensure_ascii=False)[1:-1], json.dumps(form)[1:-1], form.replace('"', '""')}
    return forms


def _decoded(form: str) -> str:
    """The value a matched encoded form stands for (the inverse of :func:`_encodings`)."""
    text = form.replace('""', '"')
    if "\\" in text:
        try:
            text = json.loads(f'"{text}"')
        except ValueError:
            pass
    return html.unescape(text)


def _bounded(form: str) -> str:
    """``form`` as a regular expression that matches it as a whole word where it starts or ends with a
    letter or digit of a script that separates words (not inside ``C123`` for ``C12``); CJK names
    have no word boundaries, so they match anywhere. A JSON escape (``\\n``) before it is a boundary."""
    body = re.escape(form)
    if _word_edge(form[0]):
        body = r"(?:(?<!\w)|(?<=\\[nrt]))" + body
    if _word_edge(form[-1]):
        body += r"(?!\w)"
    return body


def _word_edge(char: str) -> bool:
    return (char.isalnum() or char == "_") and unicodedata.east_asian_width(char) not in ("W", "F")


class _Needles:
    """Literal forms found in any letter case, each as :func:`_bounded` says. One regular expression
    of many alternatives is slow over a page of megabytes of images (about 1 s per MB), so the
    forms are first found with ``str.find`` in the lower-cased text and the expression is tried only
    where one starts (a pack of 11 MB: 12 s -> 0.3 s)."""

    def __init__(self, forms: set[str]) -> None:
        ordered = sorted(forms, key=len, reverse=True)
        self.pattern = re.compile("|".join(_bounded(f) for f in ordered), re.IGNORECASE)
        self.lowered = {f.lower() for f in ordered}

    def _starts(self, text: str) -> list[int] | None:
        lowered = text.lower()
        if len(lowered) != len(text):  # a letter whose lower case is longer: positions would shift
            return None
        starts = set()
        for needle in self.lowered:
            at = lowered.find(needle)
            while at >= 0:
                starts.add(at)
                at = lowered.find(needle, at + 1)
        return sorted(starts)

    def search(self, text: str) -> bool:
        starts = self._starts(text)
        if starts is None:
            return self.pattern.search(text) is not None
        return any(self.pattern.match(text, at) for at in starts)

    def sub(self, text: str, replace) -> str:
        starts = self._starts(text)
        if starts is None:
            return self.pattern.sub(replace, text)
        parts, done = [], 0
        for at in starts:
            match = self.pattern.match(text, at) if at >= done else None
            if match:
                parts += [text[done:at], replace(match)]
                done = match.end()
        return "".join(parts) + text[done:]


def _still_shows(text: str, path: Path, plain: _Needles) -> bool:
    """Whether ``text`` (a file's) still shows a value: as written, once HTML entities are read, or, in a
    notebook, inside any of its JSON strings."""
    if plain.search(text) or plain.search(html.unescape(text)):
        return True
    if path.suffix.lower() in (".ipynb", ".json"):
        try:
            strings = "\n".join(_strings(json.loads(text)))
        except ValueError:
            return False
        return bool(plain.search(strings) or plain.search(html.unescape(strings)))
    return False


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []
