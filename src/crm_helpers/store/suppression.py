"""The suppression list: the people ``crm forget`` erased, kept so that they stay erased.

Each erasure is one row of ``suppression_list``: the pseudonym that now stands for the person, the
time of the erasure, the number of rows it changed, and the person's identifiers as keyed hashes
(HMAC-SHA256 under a random 32-byte secret of the store, in ``suppression_keys``), never in clear.
The identifiers, normalised by :func:`identifiers` (the one rule, used for recording and matching):

- ``customer_id``: the id as written, trimmed (also the platform id an export uses as customer id:
  Shopify's customer number, Stripe's ``cus_…``);
- ``email``: trimmed and lower-cased, as the store keeps it;
- ``phone``: in its one international form, E.164 (``+491526493665``), whether it was written
  ``+49 152 6493665``, ``0049 152 6493665`` or, in a German store, ``0152 6493665``: a number without
  its country code is read in the store's country (:func:`store_region`); a number that cannot be
  read so (no store country and no country code) is its digits only. Fewer than
  :data:`MIN_PHONE_DIGITS` digits identify nobody.

Erasures recorded before phones were read this way hashed the phone's digits as written
(``491526493665`` for ``+49 152 6493665``, ``01526493665`` for ``0152 6493665``). They still match:
a phone is looked up under its E.164 form and under each digits-only form an older erasure of the
same number can have held (:func:`phone_forms`), so no list needs migrating (it holds no clear
value that could be hashed again).

A person is erased when **any** of their identifiers is on the list (:meth:`SuppressionList.match`).
Imports skip such rows (:func:`skip_erased`), the data-entry functions refuse them
(:func:`refuse_erased`), restores and backup purges erase them again (``forget.reapply_erasures``).

A copy of the list lives in an owner-only sidecar file beside the backups (:func:`sidecar_path`), so
that restoring a store that predates an erasure, or the list itself, still learns it. The key
travels with the list: whoever holds the store or the sidecar can test a guessed e-mail against
it (as with any suppression list), but cannot read an identifier off the file.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers.geodata.locale import LOCALE_DATA
from sqlite_utils import Database

from crm_helpers.errors import CrmError
from crm_helpers.store.files import write_text
from crm_helpers.store.schema import SUPPRESSION_KEYS, SUPPRESSION_LIST
from crm_helpers.store.validation import ValidationError, normalize_email

KINDS = ("customer_id", "email", "phone")
"""The identifiers hashed, in the order they are named to the owner; each is also a column name."""
KIND_WORDS = {"customer_id": "customer id", "email": "e-mail", "phone": "phone"}
MIN_PHONE_DIGITS = 6
"""Fewer digits than this are not a phone number that identifies anyone (an extension, a typo)."""
SIDECAR_NAME = "suppression-list.json"


class SidecarError(CrmError, ValueError):
    """The sidecar file beside the backups is damaged; the message names it."""


def identifiers(record: Mapping[str, Any], *, region: str | None = None) -> dict[str, str]:
    """``{kind: normalised value}`` of the identifiers present in ``record`` (a row of customers,
    orders, ...), as an erasure records them; blank values, unreadable e-mails and short phone
    numbers are left out. ``region``: the store's country (:func:`store_region`), for phones
    written without a country code."""
    found = {kind: next(iter(lookup_forms(kind, record.get(kind), region=region)), None) for kind in KINDS}
    return {kind: value for kind, value in found.items() if value is not None}


def lookup_forms(kind: str, value: Any, *, region: str | None = None) -> list[str]:
    """The normalised forms under which the identifier ``value`` of ``kind`` is looked up: its
    recorded form first (see the module doc), then, for a phone, the forms older erasures hashed.
    Empty when it identifies nobody."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    text = str(value).strip()
    if not text:
        return []
    if kind == "email":
        try:
            return [normalize_email(text)]
        except ValueError:
            return []
    if kind == "phone":
        return phone_forms(text, region=region)
    return [text]


def phone_forms(text: str, *, region: str | None = None) -> list[str]:
    """``[E.164, digits as written, E.164's digits, 00 + E.164's digits, national digits, + digits]``
    of a phone number (each once; the last when the digits do not start with 0: a number written
    with its country code but no ``+``, ``49 152 6493665``); ``[digits]`` (and ``+ digits``, as
    above) when it cannot be read as a number of a country (no country code and no ``region``);
    ``[]`` below :data:`MIN_PHONE_DIGITS` digits.

    ``region`` is a two-letter country code for numbers written without their country code; without
    one, a leading ``00`` is read as the international prefix (``0049 …`` = ``+49 …``)."""
    digits = re.sub(r"\D", "", text)
    if len(digits) < MIN_PHONE_DIGITS:
        return []
    written_international = [] if digits.startswith("0") else ["+" + digits]
    number = _parsed_phone(text, region)
    if number is None:
        return [digits, *written_international]
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    own_region = phonenumbers.region_code_for_country_code(number.country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(own_region) if own_region else None
    trunk = (metadata.national_prefix if metadata else None) or ""
    national = trunk + phonenumbers.national_significant_number(number)
    return list(dict.fromkeys([e164, digits, e164[1:], "00" + e164[1:], national, *written_international]))


def _parsed_phone(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    """``text`` as a phone number of a country, or None when it cannot be read as one."""
    if region is None and text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def store_region(db: Database) -> str | None:
    """The store's country as a two-letter code, for phone numbers written without their country
    code: the most common ``customers.country`` (ties: the first alphabetically) when it is a country
    code (``DE``) or a country's name in a language the phone library knows (``Germany``,
    ``Deutschland``, ``德国``); None when customers have no country or it is not recognised (then
    such numbers are compared by their digits)."""
    if "customers" not in db.table_names():
        return None
    row = db.execute("SELECT TRIM(country) AS c, COUNT(*) AS n FROM customers WHERE TRIM(country) <> '' "
                     "GROUP BY c ORDER BY n DESC, c LIMIT 1").fetchone()
    return country_code(row[0]) if row else None


def country_code(country: str) -> str | None:
    """The two-letter code of ``country`` (a code or a name, any letter case), or None."""
    return _country_codes().get(country.strip().casefold())


@functools.cache
def _country_codes() -> dict[str, str]:
    """``{code or name, case-folded: code}`` from the phone library's names of each country."""
    codes = {region.casefold(): region for region in phonenumbers.SUPPORTED_REGIONS}
    for region, names in LOCALE_DATA.items():
        for name in names.values():
            seen = set()
            while name.startswith("*") and name not in seen:  # "*en": the name in that language
                seen.add(name)
                name = names.get(name[1:], "")
            if name and not name.startswith("*"):
                codes.setdefault(name.casefold(), region)
    return codes


def _digest(secret: bytes, kind: str, value: str) -> str:
    return hmac.new(secret, f"{kind}\x1f{value}".encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Erasure:
    """One erasure as the list keeps it: no personal data, only digests of the identifiers."""

    pseudonym: str
    erased_at: str
    key_id: str
    digests: dict[str, str]
    """``{kind: hex digest}``"""
    rows_changed: int

    def describe(self) -> str:
        """``2026-11-29 11:50  ERASED-…  customer id, e-mail, phone  37 rows`` for ``crm forget --list``."""
        kinds = ", ".join(KIND_WORDS[k] for k in KINDS if k in self.digests)
        when = self.erased_at.replace("T", " ")
        return f"{when}  {self.pseudonym}  identifiers: {kinds}  rows changed: {self.rows_changed}"


@dataclass
class SuppressionList:
    """The keys and the erasures of one store or sidecar; lists merge by pseudonym. ``region``: the
    country in which phones written without their country code are read when matching (the store's,
    :func:`store_region`; set by :meth:`load` and :meth:`for_store`)."""

    keys: dict[str, bytes] = field(default_factory=dict)
    erasures: dict[str, Erasure] = field(default_factory=dict)
    region: str | None = None

    def __post_init__(self) -> None:
        self._index: dict[tuple[str, str, str], Erasure] | None = None

    def __len__(self) -> int:
        return len(self.erasures)

    def _lookup(self) -> dict[tuple[str, str, str], Erasure]:
        if self._index is None:
            self._index = {(e.key_id, kind, d): e for e in self.erasures.values() for kind, d in e.digests.items()}
        return self._index

    def match(self, record: Mapping[str, Any]) -> Erasure | None:
        """The erasure of the person ``record`` identifies (by any identifier), or None."""
        hit = self.matching(record)
        return hit[1] if hit else None

    def matching(self, record: Mapping[str, Any]) -> tuple[str, Erasure] | None:
        """The identifier (its kind) by which ``record`` names an erased person, and that erasure; or None."""
        if not self.erasures:
            return None
        index = self._lookup()
        for kind in KINDS:
            for value in lookup_forms(kind, record.get(kind), region=self.region):
                for key_id, secret in self.keys.items():
                    hit = index.get((key_id, kind, _digest(secret, kind, value)))
                    if hit is not None:
                        return kind, hit
        return None

    def erased_values(self, kind: str, values: Iterable[Any]) -> set[Any]:
        """Those of ``values`` (identifiers of one kind, each distinct) that name an erased person;
        the bulk form of :meth:`match`, for a column of an import."""
        hits: set[Any] = set()
        for key_id, secret in self.keys.items():
            wanted = {d for (k, c, d) in self._lookup() if k == key_id and c == kind}
            if not wanted:
                continue
            keyed = hmac.new(secret, digestmod=hashlib.sha256)  # copied per value: the key is set up once
            for value in values:
                for text in lookup_forms(kind, value, region=self.region):
                    mac = keyed.copy()
                    mac.update(f"{kind}\x1f{text}".encode("utf-8"))
                    if mac.hexdigest() in wanted:
                        hits.add(value)
                        break
        return hits

    def merged(self, *others: SuppressionList) -> SuppressionList:
        """A new list holding the keys and erasures of this one and ``others``."""
        keys, erasures = dict(self.keys), dict(self.erasures)
        for other in others:
            keys.update(other.keys)
            erasures.update({p: e for p, e in other.erasures.items() if p not in erasures})
        return SuppressionList(keys, erasures, self.region)

    def for_store(self, db: Database) -> SuppressionList:
        """This list, matching phones in the country of the store ``db`` (:func:`store_region`)."""
        return SuppressionList(self.keys, self.erasures, store_region(db) if self._has_phones() else None)

    def _has_phones(self) -> bool:
        return any("phone" in e.digests for e in self.erasures.values())

    # ------------------------------------------------------------------------- the store
    @classmethod
    def load(cls, db: Database) -> SuppressionList:
        """The list kept in ``db`` (empty for a store without one)."""
        if SUPPRESSION_LIST not in db.table_names():
            return cls()
        keys = {k: bytes(s) for k, s in db.execute(f"SELECT key_id, secret FROM {SUPPRESSION_KEYS}").fetchall()}
        rows = db.execute(f"SELECT pseudonym, erased_at, key_id, digests, rows_changed FROM {SUPPRESSION_LIST} "
                          "ORDER BY erased_at, pseudonym").fetchall()
        return cls(keys, {r[0]: Erasure(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows}).for_store(db)

    @classmethod
    def load_file(cls, path: Path) -> SuppressionList:
        """The list kept in the store file ``path``, read-only; empty when it holds none or is unreadable."""
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                return cls.load(Database(conn))
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return cls()

    def save(self, db: Database) -> None:
        """Add this list's keys and erasures to ``db`` (those it already holds stay as they are)."""
        db.conn.executemany(f"INSERT OR IGNORE INTO {SUPPRESSION_KEYS} (key_id, secret) VALUES (?, ?)",
                            list(self.keys.items()))
        db.conn.executemany(
            f"INSERT OR IGNORE INTO {SUPPRESSION_LIST} (pseudonym, erased_at, key_id, digests, rows_changed) "
            "VALUES (?, ?, ?, ?, ?)",
            [(e.pseudonym, e.erased_at, e.key_id, json.dumps(e.digests, sort_keys=True), e.rows_changed)
             for e in self.erasures.values()],
        )

    # ------------------------------------------------------------------------- the sidecar
    @classmethod
    def read_sidecar(cls, folder: Path) -> SuppressionList:
        """The list in ``folder``'s sidecar; empty when there is none. :class:`SidecarError` when
        it cannot be read."""
        path = sidecar_path(folder)
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keys = {k: bytes.fromhex(v) for k, v in data.get("keys", {}).items()}
            erasures = {e["pseudonym"]: Erasure(e["pseudonym"], e["erased_at"], e["key_id"], e["digests"],
                                                e["rows_changed"]) for e in data.get("erasures", [])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SidecarError(f"{path}: the suppression list kept beside the backups cannot be read "
                               f"({type(exc).__name__}: {exc})") from None
        return cls(keys, erasures)

    def write_sidecar(self, folder: Path) -> Path:
        """Merge this list into ``folder``'s sidecar (created owner-only, replaced atomically, never
        through a link: :mod:`crm_helpers.store.files`)."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = sidecar_path(folder)
        try:
            whole = SuppressionList.read_sidecar(folder).merged(self)
        except SidecarError:  # kept aside for the owner, who may mend it; the store's list is whole
            os.replace(path, path.with_name(f"{path.name}.damaged-{dt.datetime.now():%Y%m%d-%H%M%S}"))
            whole = self
        data = {"keys": {k: s.hex() for k, s in whole.keys.items()},
                "erasures": [{"pseudonym": e.pseudonym, "erased_at": e.erased_at, "key_id": e.key_id,
                              "digests": e.digests, "rows_changed": e.rows_changed}
                             for e in sorted(whole.erasures.values(), key=lambda e: (e.erased_at, e.pseudonym))]}
        return write_text(path, json.dumps(data, indent=1))


def sidecar_path(folder: Path) -> Path:
    """The sidecar of a backup folder: ``<folder>/suppression-list.json``."""
    return folder / SIDECAR_NAME


def _store_key(db: Database) -> tuple[str, bytes]:
    """The store's newest key, made on the first erasure."""
    row = db.execute(f"SELECT key_id, secret FROM {SUPPRESSION_KEYS} ORDER BY rowid DESC LIMIT 1").fetchone()
    if row is not None:
        return row[0], bytes(row[1])
    key_id, secret = secrets.token_hex(8), secrets.token_bytes(32)
    db.execute(f"INSERT INTO {SUPPRESSION_KEYS} (key_id, secret) VALUES (?, ?)", [key_id, secret])
    return key_id, secret


def record_erasure(db: Database, pseudonym: str, *, person: Mapping[str, Any], rows_changed: int,
                   erased_at: dt.datetime | None = None) -> Erasure:
    """Put the person (a record with their identifiers) on the list, inside the caller's transaction."""
    key_id, secret = _store_key(db)
    found = identifiers(person, region=store_region(db))
    digests = {kind: _digest(secret, kind, value) for kind, value in found.items()}
    erasure = Erasure(pseudonym, (erased_at or dt.datetime.now()).isoformat(timespec="seconds"), key_id, digests,
                      rows_changed)
    SuppressionList({key_id: secret}, {pseudonym: erasure}).save(db)
    return erasure


# ----------------------------------------------------------------------------- the hooks
def erased_mask(erasures: SuppressionList, frame: pd.DataFrame) -> np.ndarray:
    """True for the rows of ``frame`` (columns named as the store's) that belong to an erased person.
    Each distinct value is hashed once (a phone once per form of :func:`phone_forms`), so an orders file
    of a million rows costs a few hashes per customer."""
    mask = np.zeros(len(frame), dtype=bool)
    if not erasures or not len(frame):
        return mask
    for kind in (k for k in KINDS if k in frame):
        values = frame[kind]
        hits = erasures.erased_values(kind, values.dropna().unique().tolist())
        if hits:
            mask |= values.isin(hits).to_numpy()
    return mask


def skip_erased(db: Database, frame: pd.DataFrame, *, rows: np.ndarray,
                errors: list[Any]) -> tuple[pd.DataFrame, np.ndarray, int]:
    """The importer's hook: drop the rows of erased people from ``frame`` and ``rows`` (its file row
    numbers), and their problems from ``errors`` (so no rejects file writes them back to disk).
    Returns the frame, the row numbers and the number of rows skipped."""
    mask = erased_mask(SuppressionList.load(db), frame)
    if not mask.any():
        return frame, rows, 0
    skipped = set(rows[mask].tolist())
    errors[:] = [e for e in errors if e.row not in skipped]
    return frame[~mask].reset_index(drop=True), rows[~mask], int(mask.sum())


def refuse_erased(db: Database, record: Mapping[str, Any]) -> None:
    """The data-entry hook: a ValidationError when ``record`` identifies an erased person."""
    hit = SuppressionList.load(db).matching(record)
    if hit is None:
        return
    kind, erasure = hit
    raise ValidationError(kind, record[kind], f"belongs to a person erased on {erasure.erased_at[:10]} at their "
                          "request; the suppression list keeps them out (see `crm forget --list`)")
