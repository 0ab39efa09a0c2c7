"""CSV files that are safe to open in a spreadsheet and private to the owner.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab/carriage return) would be run as a
formula by Excel or LibreOffice ("CSV injection"); such cells get a leading apostrophe, which
spreadsheets show as text. Files are created with owner-only permissions (0600), whole or not at
all and never through a symbolic link (:mod:`crm_helpers.store.files`).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from crm_helpers.store.files import atomic_open

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> Any:
    """``"=HYPERLINK(...)"`` -> ``"'=HYPERLINK(...)"``; numbers and other text unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_safe_rows(path: str | os.PathLike[str], rows: Iterable[Iterable[Any]]) -> Path:
    """Write rows (the first being the header) as UTF-8 CSV with BOM (Excel reads it), 0600, whole
    or not at all; :class:`crm_helpers.store.files.UnsafeWriteError` when ``path`` is a symbolic link."""
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        for row in rows:
            writer.writerow([neutralize(v) for v in row])
    return path


def write_safe_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a DataFrame with :func:`write_safe_rows` (no index; missing values as empty cells)."""
    values = frame.astype(object).where(frame.notna(), "")
    return write_safe_rows(path, [list(frame.columns), *values.itertuples(index=False, name=None)])
