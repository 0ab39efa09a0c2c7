"""Reading the store: :func:`query_df` runs a SELECT into a DataFrame, the store's currency, and
:func:`memoized`, which lets a page and its ``headline_figures`` share one computation.

Analyses write their own SQL, which filters and aggregates inside SQLite (so a notebook never
loads a whole table just to count it), with the business rules of :mod:`crm_helpers.store.facts`;
:func:`store_currency` and :func:`currency_note` say in which currency their money is and which
paid orders are left out of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import inspect
import itertools
import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, Sequence, TypeVar

import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.connection import CUSTOMER_SEARCH, PHONE_DIGITS_SQL
from crm_helpers.store.facts import STORE_CURRENCY_SQL, net_revenue_sql, paid

MEMO_SIZE = 4
"""How many recent results :func:`memoized` keeps per function (e.g. this month and the last, for
two settings)."""

F = TypeVar("F", bound=Callable[..., Any])

_store_ids: weakref.WeakKeyDictionary[Database, int] = weakref.WeakKeyDictionary()
_next_store_id = itertools.count(1)
_store_ids_lock = threading.Lock()
_memos: list[OrderedDict[tuple[Any, ...], Any]] = []


def _store_state(db: Database) -> tuple[Any, ...]:
    """What a memoized result of ``db`` is valid for: the store's file (blank in memory), this
    ``Database`` object (numbered once, never reused: ``total_changes`` counts one connection's
    writes, so two connections to one file may show the same numbers), ``PRAGMA data_version``
    (changes when another connection commits) and the connection's ``total_changes`` (changes with
    every row this connection writes)."""
    with _store_ids_lock:
        number = _store_ids.get(db)
        if number is None:
            number = _store_ids[db] = next(_next_store_id)
    file = db.execute("PRAGMA database_list").fetchone()[2]
    version = db.execute("PRAGMA data_version").fetchone()[0]
    return file, number, version, db.conn.total_changes


def _plain_argument(value: Any) -> bool:
    """True for the arguments a memo may key on: None, numbers, text, dates and times, tuples and
    frozensets of them, and frozen dataclasses of them (a :class:`~crm_helpers.store.periods.Period`).
    Frames, lists, dicts, models and other mutable objects are not (equal today, different tomorrow)."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, dt.date, dt.time, dt.timedelta)):
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_plain_argument(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and value.__dataclass_params__.frozen:
        return all(_plain_argument(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def memoized(function: F) -> F:
    """Keep the last :data:`MEMO_SIZE` results of ``function(db, ...)``, so that a page and its
    ``headline_figures`` share one computation of an expensive analysis.

    A result is reused only for the same store in the same state and the same arguments: the key
    is the store's file, the ``Database`` object, ``PRAGMA data_version`` and the connection's
    ``total_changes`` (so any write to the store, by this connection or another, makes every
    earlier result stale), and the arguments as the signature binds them, defaults filled in (so
    ``f(db, day)`` and ``f(db, as_of=day)`` are one call). Arguments must be plain values (numbers,
    text, dates, tuples, frozen dataclasses such as a ``Period``); a call with any other argument
    (a frame, a list, a model) is computed every time, never keyed on it.

    **Results are shared and must be treated as read-only**: the second caller gets the very
    object the first one got, so a caller that changes a returned frame, series or list in place
    changes it for everybody; copy it first (``frame.copy()``). ``function.__wrapped__`` is the
    function itself, uncached.
    """
    signature = inspect.signature(function)
    results: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
    _memos.append(results)
    lock = threading.Lock()

    @functools.wraps(function)
    def wrapper(db: Database, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(db, *args, **kwargs)
        bound.apply_defaults()
        arguments = tuple(bound.arguments.items())[1:]
        if not all(_plain_argument(value) for _, value in arguments):
            return function(db, *args, **kwargs)
        key = (_store_state(db), arguments)
        with lock:
            if key in results:
                results.move_to_end(key)
                return results[key]
        result = function(db, *args, **kwargs)
        with lock:
            results[key] = result
            while len(results) > MEMO_SIZE:
                results.popitem(last=False)
        return result

    return wrapper  # type: ignore[return-value]


def clear_memos() -> None:
    """Forget every :func:`memoized` result, e.g. before each timed run of a benchmark, which times
    the computation, not the look-up."""
    for results in _memos:
        results.clear()


def query_df(
    db: Database,
    sql: str,
    *,
    params: Sequence[Any] | dict[str, Any] | None = None,
    parse_dates: Sequence[str] = (),
) -> pd.DataFrame:
    """Run a SELECT with bound parameters and return a DataFrame (dates parsed when named)."""
    cursor = db.execute(sql, params or [])
    columns = [d[0] for d in cursor.description]
    frame = pd.DataFrame.from_records(cursor.fetchall(), columns=columns)
    for col in parse_dates:
        frame[col] = pd.to_datetime(frame[col])
    return frame


@memoized
def store_currency(db: Database) -> str:
    """The currency of most paid orders (e.g. ``"EUR"``), or ``""`` when no order names one
    (:data:`~crm_helpers.store.facts.STORE_CURRENCY_SQL`). Memoized (:func:`memoized`): a pass over
    the orders, done once per store state (the desk's standby kernel does it for the next page)."""
    row = db.execute(STORE_CURRENCY_SQL).fetchone()
    return str(row[0]) if row else ""


def paid_orders_by_currency(db: Database) -> dict[str, tuple[int, int]]:
    """``{currency: (paid orders, of which left out)}`` of the paid orders in a currency other than
    the store's (:func:`store_currency`); left out: without an exchange rate on or before their date
    (their :func:`~crm_helpers.store.facts.net_revenue_sql` is NULL), the others are converted. Empty
    when every paid order is in the store's currency. One pass over the orders."""
    rows = db.execute(
        f"SELECT currency, count(*), sum({net_revenue_sql()} IS NULL) FROM orders WHERE {paid()} "
        f"AND coalesce(currency, '') NOT IN ('', coalesce(({STORE_CURRENCY_SQL}), '')) "
        "GROUP BY currency ORDER BY count(*) DESC, currency"
    ).fetchall()
    return {str(currency): (int(n), int(left_out)) for currency, n, left_out in rows}


def unconverted_orders(db: Database) -> dict[str, int]:
    """``{currency: paid orders}`` of the paid orders left out of the money figures for want of an
    exchange rate (see :func:`paid_orders_by_currency`). Empty when every order counts."""
    return _left_out(paid_orders_by_currency(db))


def _left_out(by_currency: dict[str, tuple[int, int]]) -> dict[str, int]:
    """The left-out counts of :func:`paid_orders_by_currency`, most first."""
    order = sorted(by_currency, key=lambda c: (-by_currency[c][1], c))
    return {c: by_currency[c][1] for c in order if by_currency[c][1]}


def currency_note(db: Database) -> str:
    """A sentence for the owner when some paid orders are left out of the money figures for want of
    exchange rates (see :func:`unconverted_orders`); ``""`` when none are."""
    return _left_out_sentence(db, unconverted_orders(db))


def _left_out_sentence(db: Database, left_out: dict[str, int]) -> str:
    if not left_out:
        return ""
    counts = ", ".join(f"{n} in {currency}" for currency, n in left_out.items())
    total = sum(left_out.values())
    return (f"{total} paid order{'s' if total != 1 else ''} ({counts}) {'are' if total != 1 else 'is'} left out of "
            f"the money figures, which are in {store_currency(db)}: there is no exchange rate for "
            f"{'them' if total != 1 else 'it'} on or before the order date. Import the ECB reference rates "
            "(eurofxref-hist.csv) with `crm import FILE` to count them.")


def money_note(db: Database) -> str:
    """The line under a page's title when the store's paid orders are in several currencies: which
    were converted to the store's currency (at the ECB reference rate of the order's date, or the
    latest before it) and which are left out (:func:`currency_note`); ``""`` when every paid order is
    in the store's currency."""
    by_currency = paid_orders_by_currency(db)
    converted = {c: n - left for c, (n, left) in by_currency.items() if n > left}
    parts = []
    if converted:
        counts = ", ".join(f"{n} in {c}" for c, n in converted.items())
        total = sum(converted.values())
        parts.append(f"Amounts are in {store_currency(db)}; {total} paid order{'s' if total != 1 else ''} "
                     f"({counts}) {'were' if total != 1 else 'was'} converted at the ECB reference rate of the "
                     "order's date (or the latest before it).")
    if left_out := _left_out(by_currency):
        parts.append(_left_out_sentence(db, left_out))
    return " ".join(parts)



SEARCH_INDEX_MIN = 3
"""Typed text of this many characters or more is looked up in the search index (its trigrams);
shorter text (a Chinese name of 2 characters, one emoji) is compared with every customer."""


def customer_search_sql(text: str) -> tuple[str, dict[str, str]] | None:
    """A condition on ``customers`` (no alias) and its parameters that holds for the customers whose
    name, e-mail, company or phone contains ``text`` (any case), or whose phone's digits contain its
    digits (3 or more, whatever spaces or dashes either is written with); None for blank text.
    From :data:`SEARCH_INDEX_MIN` characters on through the index
    (:data:`~crm_helpers.store.connection.CUSTOMER_SEARCH`), else by ``LIKE`` over every customer
    (the same matches, a scan)."""
    needle = text.strip().lower()
    if not needle:
        return None
    digits = "".join(ch for ch in needle if ch.isdigit())
    if len(needle) >= SEARCH_INDEX_MIN:
        query = '{name email company phone} : "' + needle.replace('"', '""') + '"'
        if len(digits) >= SEARCH_INDEX_MIN:
            query += f' OR digits : "{digits}"'
        return (f"rowid IN (SELECT rowid FROM {CUSTOMER_SEARCH} WHERE {CUSTOMER_SEARCH} MATCH :query)",
                {"query": query})
    like = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"  # typed literally
    return ("(lower(name) LIKE :like ESCAPE '\\' OR email LIKE :like ESCAPE '\\' "
            "OR lower(company) LIKE :like ESCAPE '\\' OR phone LIKE :like ESCAPE '\\')", {"like": like})
