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

import numpy as np
import pandas as pd

from crm_helpers.store.files import atomic_open

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_DECIMALS = 2
"""Decimals kept in a CSV file for a number that is not whole (money in cents, measures to 0.01)."""
CSV_SHARE_DECIMALS = 3
"""Decimals kept for a column of shares (every value from 0 to 1): 0.784, a rate of 78.4 %."""


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
    """Write a DataFrame with :func:`write_safe_rows` (no index; missing values as empty cells;
    plain rounded values, :func:`for_csv`)."""
    frame = for_csv(frame)
    values = frame.astype(object).where(frame.notna(), "")
    return write_safe_rows(path, [list(frame.columns), *values.itertuples(index=False, name=None)])


def for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with plain rounded values for a CSV file: floats that are all whole as integers
    (``80``, not ``80.0``), a column of shares from 0 to 1 to :data:`CSV_SHARE_DECIMALS` decimals
    (``0.784``), other floats to :data:`CSV_DECIMALS` decimals (``6.87``, not ``6.872500399936011``),
    timestamps that are all at midnight as dates. Text is left alone. Every CSV of a frame is
    written so (:func:`write_safe_csv`)."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_float_dtype(values):
            present = values.dropna()
            finite = present[np.isfinite(present)]
            if len(finite) == len(present) and len(present) and bool((present == np.round(present)).all()):
                out[column] = values.round().astype("Int64")
            elif len(present) and bool(((present >= 0) & (present <= 1)).all()):
                out[column] = values.round(CSV_SHARE_DECIMALS)
            else:
                out[column] = values.round(CSV_DECIMALS)
        elif pd.api.types.is_datetime64_any_dtype(values):
            present = values.dropna()
            if len(present) and bool((present == present.dt.normalize()).all()):
                out[column] = values.dt.date
    return out
