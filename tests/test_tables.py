"""Tables for people: no code words for missing values, counts as whole numbers, at most 25 rows."""

from __future__ import annotations

import stat

import numpy as np
import pandas as pd
from bs4 import BeautifulSoup

from crm_helpers.report import tables


def _cells(html: str) -> list[list[str]]:
    soup = BeautifulSoup(html, "html.parser")
    return [[td.get_text() for td in tr.find_all("td")] for tr in soup.select("tbody tr")]


def test_missing_values_of_every_kind_are_a_dash():
    frame = pd.DataFrame({"a": [1.5, np.nan], "b": pd.array([1, None], dtype="Int64"),
                          "c": [pd.Timestamp("2026-10-01"), pd.NaT], "d": ["x", None]})
    rows = _cells(tables.for_people(frame))
    assert rows == [["1.50", "1", "2026-10-01", "x"], [tables.MISSING] * 4]


def test_counts_stored_as_floats_show_as_whole_numbers_and_amounts_with_separators():
    frame = pd.DataFrame({"orders": [265.0, 3.0], "responses": [5.0, 12.0], "revenue": [32524.37, 0.5],
                          "paid": [True, False], "when": [pd.Timestamp("2026-10-03 14:05"), pd.Timestamp("2026-10-04")]})
    assert _cells(tables.for_people(frame)) == [["265", "5", "32,524", "yes", "2026-10-03 14:05"],
                                                 ["3", "12", "0.50", "no", "2026-10-04"]]


def test_column_names_in_words_index_kept_as_a_column_and_text_never_cut():
    reason = "open deal 'Tasting workshop for the whole office team' with no activity for 45 days"
    frame = pd.DataFrame({"days_since_order": [3]}, index=pd.Index([reason], name="follow_up_reason"))
    soup = BeautifulSoup(tables.for_people(frame), "html.parser")
    assert [th.get_text() for th in soup.select("th")] == ["follow up reason", "days since order"]
    assert reason in soup.get_text()


def test_an_unnamed_index_is_kept_with_a_blank_header_not_the_word_index():
    frame = pd.DataFrame({"customers": [3, 4]}, index=["referral", "search"])
    soup = BeautifulSoup(tables.for_people(frame), "html.parser")
    assert [th.get_text() for th in soup.select("th")] == ["", "customers"]
    assert _cells(tables.for_people(frame))[0] == ["referral", "3"]


def test_a_long_list_shows_25_rows_and_says_so():
    frame = pd.DataFrame({"n": range(40)})
    soup = BeautifulSoup(tables.for_people(frame), "html.parser")
    assert len(soup.select("tbody tr")) == tables.MAX_ROWS == 25
    assert "first 25 of 40 rows" in soup.get_text()


def test_show_writes_the_whole_list_owner_only_and_links_it(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj.data))
    frame = pd.DataFrame({"name": [f"=cmd{i}" for i in range(30)], "orders": np.arange(30.0)})
    path = tables.show(frame, name="call_list", output_dir=tmp_path)
    assert path == tmp_path / "call_list.csv" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(pd.read_csv(path, encoding="utf-8-sig")) == 30
    soup = BeautifulSoup(shown[0], "html.parser")
    assert soup.select_one("a")["href"] == "call_list.csv" and len(soup.select("tbody tr")) == 25
    assert tables.show(frame.head(5), name="short", output_dir=tmp_path) is None
    assert not (tmp_path / "short.csv").exists()


def test_show_leaves_csv_only_columns_off_the_page_but_in_the_file(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj.data))
    frame = pd.DataFrame({"customer": [f"C{i:03d}" for i in range(30)], "rule": ["Who buys A also buys B"] * 30})
    path = tables.show(frame, name="offers", output_dir=tmp_path, csv_only=["rule"])
    soup = BeautifulSoup(shown[0], "html.parser")
    assert [th.get_text() for th in soup.select("th")] == ["customer"]
    assert "Who buys A" not in soup.get_text()
    assert list(pd.read_csv(path, encoding="utf-8-sig").columns) == ["customer", "rule"]
