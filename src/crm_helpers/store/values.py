"""The :class:`Headline` type: one figure the report index shows, as an analysis computes it.

A plain value with no I/O, so the analyses (below the report layer) can return it from their
``headline_figures()`` and the report layer (:mod:`crm_helpers.report.headlines`) records and
shows it; no analysis imports the report.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from crm_helpers.i18n import currency_symbol, t

CHANGES = ("", "points", "relative")
GOOD_DIRECTIONS = ("", "up", "down")
NOT_AVAILABLE = "not available"
"""What the report says for a figure without a value when the analysis gives no better words."""


# -- how a number is written on a page (the one number style: crm_helpers.report.numbers) -----

MISSING = "—"
"""What a missing value looks like on a page."""


def finite_number(value: Any) -> bool:
    """Whether ``value`` is a real, finite number (not a bool, text, None or NaN)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def amount(value: float) -> str:
    """A number without unit as the pages show an amount: no decimals from 1,000 up (and when it
    is whole), else two; thousands separated (``21,883``, ``954.22``, ``12``)."""
    if not finite_number(value):
        return MISSING
    value = float(value)
    if abs(value) >= 1000 or value.is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"



def money(value: float | None, currency: str = "", *, signed: bool = False) -> str:
    """Money with its currency: ``21,883 EUR``, ``954.22 EUR`` (see :func:`amount`); in a language
    whose readers put the currency's sign first, that sign before the amount (Chinese ``€21,883``,
    ``¥954.22``, ``-¥12``; :func:`crm_helpers.i18n.currency_symbol`). ``signed`` puts a + before a
    gain (a plan's effect)."""
    if value is None or not finite_number(value):
        return MISSING
    symbol = currency_symbol(currency) if currency else ""
    if symbol:
        sign = "-" if float(value) < 0 else "+" if signed and float(value) > 0 else ""
        return f"{sign}{symbol}{amount(abs(float(value)))}"
    text = amount(value)
    if signed and float(value) > 0:
        text = "+" + text
    return f"{text} {currency}".strip()



def money_whole(value: float, currency: str = "") -> str:
    """Money rounded to whole units as a sentence writes it: ``5,334 EUR`` (``€5,334`` in a language
    that writes the currency's sign first, see :func:`money`)."""
    symbol = currency_symbol(currency) if currency else ""
    if symbol:
        return f"{'-' if float(value) < 0 else ''}{symbol}{abs(float(value)):,.0f}"
    return f"{float(value):,.0f} {currency}".rstrip()


def is_currency(unit: str) -> bool:
    """Whether ``unit`` is a currency code (ISO 4217: three capital letters, ``EUR``)."""
    return len(unit) == 3 and unit.isalpha() and unit.isupper()


def span(low: str, high: str, *, unit: str = "") -> str:
    """The one way of writing a range, on pages, the index, the PDFs and in the analyses' sentences:
    ``low to high`` and the unit once (``1,000 to 2,000 EUR``); both ends already formatted. "to"
    and not a dash, because a dash between two numbers reads as a minus when one is negative. In a
    language that writes a currency's sign first, the sign before each end (``€1,000至€2,000``)."""
    symbol = currency_symbol(unit) if is_currency(unit) else ""
    if symbol:
        return t("{low} to {high}", low=symbol + low, high=symbol + high)
    return f"{t('{low} to {high}', low=low, high=high)} {unit}".strip()


def money_span(low: float | None, high: float | None, *, currency: str = "", signed: bool = False) -> str:
    """A range of money written the one way (:func:`span`): ``8,523 to 14,531 EUR``, each end as
    :func:`money` writes it, the currency once (its sign before each end where the language puts it
    first); ``signed`` puts a + before a gain."""
    if currency and currency_symbol(currency):
        return t("{low} to {high}", low=money(low, currency, signed=signed), high=money(high, currency, signed=signed))
    return span(money(low, signed=signed), money(high, signed=signed), unit=currency)


@dataclass(frozen=True)
class Headline:
    """One headline figure of the month, with the previous month's beside it.

    ``value`` and ``previous`` are in ``unit`` (the store's currency, ``"%"``, or blank for counts
    and scores); None means "not available" (NaN and infinities become None). ``change`` says how
    the index shows the move: ``"points"`` (a difference, for shares in % and fixed scales such as
    NPS) or ``"relative"`` (a percentage change, for amounts and counts); blank: points for ``"%"``,
    else relative. ``good`` is the direction good for the business: ``"up"``, ``"down"`` or blank
    (neither). ``se`` and ``previous_se`` are the standard errors of the two values in their unit,
    ``interval`` the value's 95 % interval, ``change_interval`` the 95 % interval of
    value − previous when a test gives it directly (e.g. a bootstrap): they decide whether the move
    is within its noise. ``worth`` is the money one unit of the figure stands for (e.g. a month's
    revenue per active customer), so a count's move can be ranked by money. ``missing`` is what the
    report says in place of a ``value`` of None, in plain words that are true of this case ("no
    campaign with a measurable effect"); blank: :data:`NOT_AVAILABLE`.

    The same period a year earlier: ``year_ago`` (None when the store does not hold that month
    whole, see :func:`crm_helpers.store.periods.same_month_last_year`), ``year_ago_se`` its
    standard error and ``year_change_interval`` the 95 % interval of value − year_ago when a test
    gives it directly. The fair comparison (:attr:`basis`) is year-on-year when ``year_ago`` is
    known (a seasonal business is compared with its own season), else month-on-month.

    ``exact`` marks a counted fact: a count or sum the store knows exactly (orders, customers,
    revenue of the month); the index shows it without a range, and its ``se`` and intervals only
    measure the month-to-month noise that decides whether a move is coloured. ``lowest`` and
    ``highest`` are the values the quantity can take at most (0 for money, counts and shares; a
    share in ``"%"`` is kept in 0…100 without them): ``interval`` is clipped into them, so no range
    goes below zero for a quantity that cannot.
    """

    key: str
    value: float | int | str | None
    label: str
    unit: str = ""
    note: str = ""
    change: str = ""
    good: str = ""
    previous: float | int | None = None
    se: float | None = None
    previous_se: float | None = None
    interval: tuple[float, float] | None = None
    change_interval: tuple[float, float] | None = None
    worth: float | None = None
    missing: str = ""
    year_ago: float | int | None = None
    year_ago_se: float | None = None
    year_change_interval: tuple[float, float] | None = None
    exact: bool = False
    lowest: float | None = None
    highest: float | None = None

    def __post_init__(self) -> None:
        if self.change not in CHANGES:
            raise ValueError(f"change must be 'points' or 'relative', not {self.change!r}")
        if self.good not in GOOD_DIRECTIONS:
            raise ValueError(f"good must be 'up', 'down' or blank, not {self.good!r}")
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "value", _finite(self.value))
        set_(self, "previous", _finite(self.previous))
        set_(self, "year_ago", _finite(self.year_ago))
        set_(self, "change", self.change or ("points" if self.unit == "%" else "relative"))
        for name in ("se", "previous_se", "worth", "year_ago_se", "lowest", "highest"):
            set_(self, name, _finite(getattr(self, name)))
        for name in ("interval", "change_interval", "year_change_interval"):
            set_(self, name, _finite_pair(getattr(self, name)))
        set_(self, "interval", clipped(self.interval, limits(self.unit, lowest=self.lowest, highest=self.highest)))

    @property
    def noise_known(self) -> bool:
        """Whether the figure carries what it takes to tell a move from noise (a change interval, or
        the standard errors of both months)."""
        return self.change_interval is not None or (self.se is not None and self.previous_se is not None)

    @property
    def basis(self) -> str:
        """The fair comparison: ``"year"`` (against the same month last year) when ``year_ago`` is
        known, else ``"month"`` (against the previous month)."""
        return "year" if self.year_ago is not None else "month"

    @property
    def shown(self) -> str:
        """The value as one line of text shows it: two decimals for floats, :attr:`missing` (or
        :data:`NOT_AVAILABLE`) for None."""
        return shown_value(self.value, self.missing)

    def payload(self) -> dict[str, Any]:
        """The JSON the report records (intervals as lists)."""
        data = asdict(self)
        for name in ("interval", "change_interval", "year_change_interval"):
            data[name] = list(data[name]) if data[name] is not None else None
        return data


def limits(unit: str, *, lowest: float | None = None, highest: float | None = None) -> tuple[float | None, float | None]:
    """The values a figure can take: ``lowest`` and ``highest`` as given, a share in ``"%"``
    within 0…100 where they are not (None: no bound on that side)."""
    if unit == "%":
        return (0.0 if lowest is None else lowest), (100.0 if highest is None else highest)
    return lowest, highest


def clipped(pair: tuple[float, float] | None, bounds: tuple[float | None, float | None]) -> tuple[float, float] | None:
    """``pair`` (a range) kept within ``bounds`` (``(lowest, highest)``, None: unbounded)."""
    if pair is None:
        return None
    low, high = pair
    lowest, highest = bounds
    if lowest is not None:
        low, high = max(low, lowest), max(high, lowest)
    if highest is not None:
        low, high = min(low, highest), min(high, highest)
    return low, high


def shown_value(value: Any, missing: str = "") -> str:
    """``value`` as text (floats with two decimals), or the plain words for a missing one: the
    figure's ``missing`` (see :class:`Headline`), else :data:`NOT_AVAILABLE`."""
    if value is None:
        return t(missing or NOT_AVAILABLE)
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def _finite(value: Any) -> Any:
    """Numbers as plain floats/ints, NaN and infinities as None; text as it is."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):  # int, numpy.int64, bool
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def _finite_pair(pair: tuple[float, float] | list[float] | None) -> tuple[float, float] | None:
    if pair is None:
        return None
    low, high = (_finite(v) for v in pair)
    return None if low is None or high is None else (float(low), float(high))


@dataclass(frozen=True)
class Attention:
    """One thing the owner should look at, for the index's "Needs attention" list.

    ``sentence`` is plain and complete ("Paid social ads cost 1,200 EUR and brought no measurable
    extra revenue."); ``money`` is what is at stake, in the store's currency (the list is ranked by
    it); ``key`` names the item so a re-render replaces it. An analysis raises one only where its
    figures and their uncertainty support it: a change within its noise is not a change.
    """

    key: str
    sentence: str
    money: float = 0.0


@dataclass(frozen=True)
class Action:
    """One thing to do this month, for the index's "Actions this month" list.

    ``sentence`` is one plain sentence: what to do, to whom or to what, and why (the evidence), e.g.
    "Repeat the spring newsletter: it cost 120 EUR and brought about 12,774 EUR of extra revenue."
    ``money`` is the expected money at stake in ``currency`` (the store's), ``low``–``high`` its
    likely range when the analysis has one (never below zero: a bound below zero is raised to zero);
    ``money`` None means the analysis has no money estimate, and ``rule`` then says in words how the
    action is ranked instead (it ranks as ``rank_money``). ``page`` is the notebook's name without
    extension ("04_clv_romi") and ``section`` the heading of the page's section holding the evidence,
    so :attr:`link` points at it. ``key`` names the action so a re-render replaces it; ``replaces``
    is the key of the :class:`Attention` item it supersedes (the index then leaves that one out of
    "Needs attention", so one thing is said once). The list is ranked by :attr:`rank_money`, highest first.
    """

    key: str
    sentence: str
    money: float | None
    currency: str = ""
    low: float | None = None
    high: float | None = None
    page: str = ""
    section: str = ""
    rule: str = ""
    rank_money: float = 0.0
    replaces: str = ""
    what_if: str = ""
    """What the planner (page ``what_if_page``) says doing it is worth, numbers filled in; "" when none."""
    what_if_page: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        for name in ("money", "low", "high"):
            value = _finite(getattr(self, name))
            set_(self, name, None if value is None else max(0.0, float(value)))
        if (self.low is None) != (self.high is None):
            set_(self, "low", None)
            set_(self, "high", None)
        if self.money is not None and self.low is not None:
            set_(self, "low", min(self.low, self.money))
            set_(self, "high", max(self.high, self.money))
        set_(self, "rank_money", self.money if self.money is not None else max(0.0, _finite(self.rank_money) or 0.0))
        if self.money is None and not self.rule:
            raise ValueError(f"action {self.key!r} has no money estimate: say in rule how it is ranked")

    @property
    def link(self) -> str:
        """``page.html#section-anchor`` (the anchor as nbconvert writes a Markdown heading's id)."""
        from urllib.parse import quote

        anchor = quote(self.section.replace(" ", "-"), safe="?/:@!$&'()*+,;=") if self.section else ""
        return f"{self.page}.html" + (f"#{anchor}" if anchor else "")

    def payload(self) -> dict[str, Any]:
        """The JSON the report records (its fields and its :attr:`link`)."""
        return {**asdict(self), "link": self.link}


def named_list(names: list[str], *, more: int = 0) -> str:
    """``names`` as one phrase for an :class:`Action`'s sentence: "A, B and C", or "A, B, C and 38 more"."""
    parts = list(names) + ([t("{count} more", count=f"{more:,}")] if more > 0 else [])
    if len(parts) < 2:
        return "".join(parts)
    return t("{names} and {last}", names=t(", ").join(parts[:-1]), last=parts[-1])
