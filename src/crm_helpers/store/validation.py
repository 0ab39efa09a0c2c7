"""Turning values as people's files hold them into clean, typed values of the schema.

Shared by the importer (column by column, vectorized where the data are clean) and the
data-entry functions (one record at a time). Conventions: dates become ISO ``YYYY-MM-DD``,
timestamps ``YYYY-MM-DD HH:MM:SS``, booleans 0/1, e-mails trimmed and lower-cased.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd

from crm_helpers.errors import CrmError
from crm_helpers.i18n import t
from crm_helpers.store.schema import Column, Table
from crm_helpers.store.values import span

EXCEL_EPOCH = dt.date(1899, 12, 30)
MAX_WHOLE_NUMBER = 2**53
"""Largest whole number a column of type integer accepts: numbers are read as floats, exact up to here."""
_CURRENCY = re.compile(r"[\s$€¥￥£\u00a0\u202f']|^(EUR|USD|CNY|RMB|GBP)|(EUR|USD|CNY|RMB|GBP)$", re.I)
_DMY = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{2,4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_ISO = re.compile(r"^(\d{4})[./-](\d{1,2})[./-](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(?:\s?(?:Z|UTC|[+-]\d{2}:?\d{2}))?$")
"""ISO dates and timestamps; a zone suffix (``Z``, ``UTC``, ``+0200``, `` +02:00``) is dropped: the
clock time as written is the local time, so ``2026-05-01 23:30:00 -0500`` is 1 May."""
_CLOCK_WORDS = re.compile(
    r"^(?P<day>\S+)\s+(?P<half>上午|下午)?(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?(?:\.\d+)?"
    r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?\s*(?P<zone>(?:GMT|UTC)(?:[+-]\d{1,2}(?::?\d{2})?)?|[A-Z]{3,5})?$")
"""A timestamp with the clock's words: ``AM``/``PM`` (``上午``/``下午``) and a zone written as a name
(``GMT+2``, ``CEST``), as Google Forms' download writes ``2026/06/14 9:12:03 AM GMT+2``
(:func:`plain_clock`)."""
_CJK_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$")
TRUE_WORDS = {"1", "true", "yes", "y", "ja", "oui", "是", "x", "✓"}
FALSE_WORDS = {"0", "false", "no", "n", "nein", "non", "否", ""}


class ValidationError(CrmError, ValueError):
    """A value does not fit its column; the message names the column, the value and the reason."""

    def __init__(self, column: str, value: Any, reason: str) -> None:
        self.column, self.value, self.reason = column, value, reason
        super().__init__(f"{column} = {value!r}: {reason}")


def is_blank(value: Any) -> bool:
    """None, NaN and empty or whitespace-only text."""
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def parse_number(value: Any) -> float:
    """``"1.234,56 €"`` -> 1234.56. Thousands separators, currency symbols, comma decimals."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if not np.isfinite(float(value)):
            raise ValueError(t("not a number"))
        return float(value)
    text = _CURRENCY.sub("", str(value).strip())
    negative = text.startswith("(") and text.endswith(")")
    text = text.strip("()")
    if "," in text and "." in text:
        # the separator that comes last is the decimal one
        text = text.replace(".", "").replace(",", ".") if text.rfind(",") > text.rfind(".") else text.replace(",", "")
    elif "," in text:
        text = text.replace(",", "") if _looks_grouped(text) else text.replace(",", ".")
    elif text.count(".") > 1:  # 1.234.567 written with dots as thousands separators
        text = text.replace(".", "")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(t("not a number")) from None
    if not np.isfinite(number):
        raise ValueError(t("not a number"))
    return -number if negative else number


def _looks_grouped(text: str) -> bool:
    """``1,234`` / ``12,345,678`` are thousands groups; ``12,5`` is a decimal comma."""
    return re.fullmatch(r"-?\d{1,3}(,\d{3})+", text) is not None


def plain_clock(text: str) -> str:
    """``text`` with a 12-hour clock made 24-hour and a zone name dropped (the clock time as written
    is the local time, as for a numeric zone suffix): ``2026/06/14 9:12:03 PM GMT+2`` ->
    ``2026/06/14 21:12:03``; ``2026/6/14 下午9:12:03`` -> ``2026/6/14 21:12:03``. Any other text
    is returned as it is."""
    m = _CLOCK_WORDS.match(text)
    if m is None or not (m["half"] or m["ampm"] or m["zone"]):
        return text
    hour = int(m["h"])
    half = (m["ampm"] or "").lower()[:1] or {"上午": "a", "下午": "p"}.get(m["half"] or "", "")
    if half and not 1 <= hour <= 12:
        return text  # "13:00 PM" is no clock time: left for the parser to refuse
    if half:
        hour = hour % 12 + (12 if half == "p" else 0)
    return f"{m['day']} {hour:02d}:{m['m']}:{m['s'] or '00'}"


def date_parts(value: str) -> tuple[int, int] | None:
    """The first two numbers of a d/m/y-or-m/d/y date, or None when the value is not of that form."""
    m = _DMY.match(plain_clock(value.strip()))
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_date(value: Any, dayfirst: bool | None = None, *, with_time: bool = False) -> str:
    """An ISO date (or timestamp with ``with_time``) from ISO, d/m/y, m/d/y, 2025年3月4日 or an Excel serial.

    ``dayfirst`` decides 03/04/2025 (None: only unambiguous values are accepted). Raises
    ValueError(t("impossible date")) for dates such as 2025-02-30.
    """
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.strftime("%Y-%m-%d %H:%M:%S" if with_time else "%Y-%m-%d")
    if isinstance(value, dt.date):
        return value.isoformat() + (" 00:00:00" if with_time else "")
    text = plain_clock(str(value).strip())
    hh = mm = ss = 0
    if re.fullmatch(r"\d{4,5}(\.\d+)?", text):
        serial = float(text)
        if not 1 <= serial < 2_958_466:
            raise ValueError(t("not a date"))
        stamp = dt.datetime.combine(EXCEL_EPOCH, dt.time()) + dt.timedelta(days=serial)
        return stamp.strftime("%Y-%m-%d %H:%M:%S" if with_time else "%Y-%m-%d")
    if m := _ISO.match(text):
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        hh, mm, ss = (int(m.group(i) or 0) for i in (4, 5, 6))
    elif m := _CJK_DATE.match(text):
        y, mo, d = (int(m.group(i)) for i in (1, 2, 3))
    elif m := _DMY.match(text):
        a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        hh, mm, ss = (int(m.group(i) or 0) for i in (4, 5, 6))
        y = y + 2000 if y < 100 else y
        if a > 12 and b <= 12:
            d, mo = a, b
        elif b > 12 and a <= 12:
            mo, d = a, b
        elif dayfirst is None:
            raise ValueError(t("ambiguous day/month order"))
        else:
            d, mo = (a, b) if dayfirst else (b, a)
    else:
        raise ValueError(t("not a date"))
    try:
        stamp = dt.datetime(y, mo, d, hh, mm, ss)
    except ValueError:
        raise ValueError(t("impossible date")) from None
    return stamp.strftime("%Y-%m-%d %H:%M:%S" if with_time else "%Y-%m-%d")


def normalize_email(value: Any) -> str:
    """Trimmed, lower-cased; ValueError when it has no single @ with a dotted domain."""
    text = str(value).strip().lower()
    if text.startswith("mailto:"):
        text = text[7:]
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise ValueError(t("not an e-mail address"))
    return text


def parse_bool(value: Any) -> int:
    """1/0 from yes/no, true/false, y/n, 1/0, 是/否."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return 1
    if text in FALSE_WORDS:
        return 0
    raise ValueError(t("not yes/no"))


def clean_value(column: Column, value: Any, *, dayfirst: bool | None = None) -> Any:
    """The stored form of ``value`` for ``column``; ValueError with the reason when it does not fit."""
    if is_blank(value):
        if column.required:
            raise ValueError(t("required"))
        return None
    if column.type == "text":
        text = str(value).strip()
        if column.name == "email":
            text = normalize_email(text)
        if column.allowed and text.lower() not in column.allowed:
            raise ValueError(t("not one of {values}", values=", ".join(column.allowed)))
        return text.lower() if column.allowed else text
    if column.type in ("date", "datetime"):
        return parse_date(value, dayfirst, with_time=column.type == "datetime")
    if column.type == "bool":
        return parse_bool(value)
    number = parse_number(value)
    if column.type == "integer":
        if number != int(number):
            raise ValueError(t("not a whole number"))
        if abs(number) > MAX_WHOLE_NUMBER:
            raise ValueError(t("too large"))
        number = int(number)
    _check_range(column, number)
    return number


def _check_range(column: Column, number: float) -> None:
    lo, hi = column.minimum, column.maximum
    if lo is not None and hi is not None and not lo <= number <= hi:
        raise ValueError(t("out of range {span}", span=span(f"{lo:g}", f"{hi:g}")))
    if lo is not None and number < lo:
        raise ValueError(t("below the minimum {minimum}", minimum=f"{lo:g}"))
    if hi is not None and number > hi:
        raise ValueError(t("above the maximum {maximum}", maximum=f"{hi:g}"))


def validate_record(
    table: Table, record: dict[str, Any], *, dayfirst: bool | None = None
) -> tuple[dict[str, Any], list[tuple[str, Any, str]]]:
    """Clean every known column of ``record``; returns (clean record, [(column, value, reason)])."""
    clean: dict[str, Any] = {}
    errors: list[tuple[str, Any, str]] = []
    for column in table.columns:
        if column.name not in record:
            if column.required:
                errors.append((column.name, None, t("required")))
            continue
        try:
            clean[column.name] = clean_value(column, record[column.name], dayfirst=dayfirst)
        except ValueError as exc:
            errors.append((column.name, record[column.name], str(exc)))
    return clean, errors


def require_valid(table: Table, record: dict[str, Any]) -> dict[str, Any]:
    """:func:`validate_record`, raising :class:`ValidationError` for the first problem."""
    clean, errors = validate_record(table, record)
    if errors:
        raise ValidationError(*errors[0])
    return clean
