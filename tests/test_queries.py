"""The store-layer memo: a page and its headline figures share one computation, and nothing stale
is ever returned (a write anywhere, another store or other arguments each mean a new computation)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from crm_helpers.store.connection import open_db
from crm_helpers.store.periods import parse_month
from crm_helpers.store.queries import MEMO_SIZE, memoized, query_df


def _counting() -> tuple[list[tuple], object]:
    calls: list[tuple] = []

    @memoized
    def customers_since(db, since: dt.date, *, limit: int = 10) -> pd.DataFrame:
        calls.append((since, limit))
        return query_df(db, "SELECT customer_id FROM customers WHERE first_seen >= ? LIMIT ?",
                        params=[since.isoformat(), limit])

    return calls, customers_since


def _store(path):
    db = open_db(path)
    db["customers"].insert({"customer_id": "c1", "name": "Ann", "first_seen": "2026-01-05"})
    return db


def test_same_store_same_arguments_computes_once_and_shares_the_result(tmp_path):
    calls, since = _counting()
    db = _store(tmp_path / "a.db")
    first = since(db, dt.date(2026, 1, 1))
    assert since(db, since=dt.date(2026, 1, 1), limit=10) is first  # the same call, spelled otherwise
    assert len(calls) == 1


def test_a_write_by_this_connection_or_another_makes_the_result_stale(tmp_path):
    calls, since = _counting()
    db = _store(tmp_path / "a.db")
    assert len(since(db, dt.date(2026, 1, 1))) == 1
    db["customers"].insert({"customer_id": "c2", "name": "Bo", "first_seen": "2026-02-01"})
    assert len(since(db, dt.date(2026, 1, 1))) == 2
    other = open_db(tmp_path / "a.db")
    other["customers"].insert({"customer_id": "c3", "name": "Cy", "first_seen": "2026-03-01"})
    assert len(since(db, dt.date(2026, 1, 1))) == 3
    assert len(calls) == 3


def test_another_store_does_not_share_even_in_the_same_state(tmp_path):
    calls, since = _counting()
    one, two = _store(tmp_path / "a.db"), open_db(tmp_path / "b.db")
    assert len(since(one, dt.date(2026, 1, 1))) == 1
    assert len(since(two, dt.date(2026, 1, 1))) == 0
    # a second connection to the same file is another store object: it computes for itself
    assert len(since(open_db(tmp_path / "a.db"), dt.date(2026, 1, 1))) == 1
    assert len(calls) == 3


def test_different_arguments_do_not_share_and_only_a_few_results_are_kept(tmp_path):
    calls, since = _counting()
    db = _store(tmp_path / "a.db")
    assert len(since(db, dt.date(2026, 1, 1))) == 1
    assert len(since(db, dt.date(2026, 2, 1))) == 0
    assert len(since(db, dt.date(2026, 1, 1), limit=0)) == 0
    assert len(calls) == 3
    for day in range(1, MEMO_SIZE + 2):
        since(db, dt.date(2025, 1, day))
    since(db, dt.date(2026, 1, 1))  # pushed out by the newer ones: computed again
    assert len(calls) == 3 + MEMO_SIZE + 1 + 1


def test_periods_are_keys_and_unhashable_arguments_are_computed_every_time(tmp_path):
    calls = []

    @memoized
    def months(db, period, *, names=()):
        calls.append(period)
        return period.label

    db = _store(tmp_path / "a.db")
    assert months(db, parse_month("2026-10")) == months(db, parse_month("2026-10")) == "2026-10"
    assert len(calls) == 1
    months(db, parse_month("2026-10"), names=["a"])
    months(db, parse_month("2026-10"), names=["a"])
    assert len(calls) == 3


def test_clear_memos_forgets_every_result(tmp_path):
    from crm_helpers.store.queries import clear_memos

    calls, since = _counting()
    db = _store(tmp_path / "a.db")
    since(db, dt.date(2026, 1, 1))
    clear_memos()
    since(db, dt.date(2026, 1, 1))
    assert len(calls) == 2
