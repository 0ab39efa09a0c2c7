"""The owner's language: one message catalogue per language and the language now in use.

English is the source language and the default: every owner-facing sentence is written in English
in the code and passed through :func:`t` (or :func:`tn` when it depends on a count); in English
:func:`t` only fills in the named placeholders, so English output is exactly the source text. For
another language the sentence is looked up in that language's catalogue, a gettext ``.po`` file at
``locale/<lang>/LC_MESSAGES/crm.po`` beside this module (read with Babel), and an entry that is
missing or empty falls back to the English text. A third language is one more ``.po`` file and
one entry in :data:`LANGUAGES`.

Sentences are whole sentences with named placeholders, translated before they are filled in::

    t("{count} customers bought again.", count=12)

never fragments glued together, since another language orders the words of a sentence its own way.

The language is a process-wide setting (:func:`set_language`): the report runner sets it from
``crm report --lang`` or the ``CRM_LANG`` setting (:func:`crm_helpers.store.config.report_language`
reads it) and hands it to every notebook as its ``lang`` parameter, whose first code cell sets it in
the kernel, so the analyses' sentences come out in the owner's language there too.

This module sits just above :mod:`crm_helpers.errors`, below the store, so every layer may use it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from crm_helpers.errors import CrmError

DEFAULT = "en"
LANGUAGES = {"en": "English", "zh": "简体中文"}
"""The languages the pack is written in: code → the language's own name for itself."""
HTML_LANG = {"en": "en", "zh": "zh-Hans"}
"""The ``lang`` attribute of a page in each language (BCP 47: Simplified Chinese is ``zh-Hans``)."""
BABEL_LOCALE = {"en": "en", "zh": "zh_Hans_CN"}
"""The CLDR locale of each language (currency symbols)."""
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "crm"
"""The catalogue's name: ``locale/<lang>/LC_MESSAGES/crm.po``."""

CONTEXT_SEPARATOR = "\x04"
"""Between an entry's context and its text in :func:`catalogue`'s keys (as gettext's own catalogues)."""

_state = {"lang": DEFAULT}


class LanguageError(CrmError, ValueError):
    """A language the pack has no catalogue for."""


def check_language(lang: str) -> str:
    """``lang`` in its short form (``"zh"``, also from ``"zh-Hans"``, ``"zh_CN"`` or ``"ZH"``); raises
    :class:`LanguageError` naming the languages there are."""
    code = re.split(r"[-_.]", (lang or DEFAULT).strip().lower())[0] or DEFAULT
    if code not in LANGUAGES:
        known = ", ".join(f"{k} ({v})" for k, v in LANGUAGES.items())
        raise LanguageError(f"the report has no language {lang!r}; choose one of {known}.")
    return code


def set_language(lang: str) -> str:
    """Make ``lang`` the language of every sentence from now on in this process; returns its code."""
    code = check_language(lang)
    _state["lang"] = code
    return code


def language() -> str:
    """The language in use (``"en"`` unless :func:`set_language` said otherwise)."""
    return _state["lang"]


def html_lang() -> str:
    """The ``lang`` attribute for a page in the language in use."""
    return HTML_LANG[language()]


def catalogue_path(lang: str) -> Path:
    """Where the catalogue of ``lang`` lives."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str | tuple[str, ...]]:
    """The translated entries of ``lang``'s catalogue: msgid → msgstr, or the singular msgid →
    the plural forms for an entry with a plural. Untranslated and fuzzy entries are left out (their
    English text is used). English has none: its texts are the source."""
    if lang == DEFAULT:
        return {}
    from babel.messages.pofile import read_po

    with open(catalogue_path(lang), "rb") as handle:
        read = read_po(handle, locale=BABEL_LOCALE[lang], domain=DOMAIN)
    entries: dict[str, str | tuple[str, ...]] = {}
    for message in read:
        if not message.id or message.fuzzy:
            continue
        key = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
        if message.context:  # gettext's msgctxt: the same word meant otherwise (see :func:`tc`)
            key = f"{message.context}{CONTEXT_SEPARATOR}{key}"
        if isinstance(message.string, (list, tuple)):
            if all(message.string):
                entries[key] = tuple(message.string)
        elif message.string:
            entries[key] = message.string
    return entries


def _fill(text: str, fields: dict[str, Any]) -> str:
    return text.format(**fields) if fields else text


def t(message: str, /, **fields: Any) -> str:
    """``message`` in the language in use, its named placeholders filled from ``fields``
    (``t("{count} customers", count=3)``); the English text when the catalogue lacks it. ``message`` is
    positional-only, so a placeholder may itself be called ``{message}``."""
    found = catalogue(language()).get(message)
    return _fill(found if isinstance(found, str) else message, fields)


def tc(context: str, message: str, /, **fields: Any) -> str:
    """``message`` as meant in ``context`` (the entry with that ``msgctxt``; a stored value such as
    ``"low"`` is 低 as a ticket's priority, not a range's 下限), else as :func:`t` gives it."""
    found = catalogue(language()).get(f"{context}{CONTEXT_SEPARATOR}{message}")
    return _fill(found, fields) if isinstance(found, str) else t(message, **fields)


def tn(singular: str, plural: str, /, *, n: int, **fields: Any) -> str:
    """The singular or plural sentence for the count ``n`` in the language in use, filled from
    ``fields`` and ``n`` (``tn("{n} order", "{n} orders", n=3)``). English: singular for 1 only;
    Chinese has one form for every count."""
    found = catalogue(language()).get(singular)
    if isinstance(found, tuple):
        text = found[0] if len(found) == 1 else found[0 if n == 1 else 1]
    else:
        text = singular if n == 1 else plural
    return _fill(text, {"n": n, **fields})


def currency_symbol(code: str) -> str:
    """The sign readers of the language in use write before an amount of ``code`` (ISO 4217), as
    CLDR gives it (Chinese: ``¥`` for CNY, ``€`` for EUR, ``US$`` for USD); blank in English,
    where the pack writes the code after the amount (``21,883 EUR``), and for what is not a code."""
    if language() == DEFAULT or not (len(code) == 3 and code.isalpha() and code.isupper()):
        return ""
    return _cldr_symbol(code, BABEL_LOCALE[language()])


@lru_cache(maxsize=None)
def _cldr_symbol(code: str, locale: str) -> str:
    from babel.numbers import get_currency_symbol

    return get_currency_symbol(code, locale=locale)
