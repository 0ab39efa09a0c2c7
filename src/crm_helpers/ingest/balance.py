"""The money balance of an import: where every amount of an export went, per currency.

Two equations close for every export that carries money (``crm import FILE``):

- **the file's money** (the amount of every row, as a positive number, a refund row that pays
  back another row apart) = **paid** (the stored paid orders, net of what was paid back) +
  **refunded** (what the stored orders say was paid back) + **failed/cancelled** (failed,
  cancelled and pending orders) + **not sales** (each kind, e.g. a WeChat bill's 支出, PayPal's
  General Withdrawal, counted) + **erased** (rows of people on the suppression list) + **lines
  of orders stored from the tool's order export** (Etsy Order Items: the order keeps what the
  buyer paid, shipping and tax included) +
  **rejected** (bad rows left out with ``--skip-bad-rows``);
- **the refunds the file records** = the refunded amounts stored for its orders + the refunds of
  payments imported earlier (a refund row whose payment came in an earlier file); the refunds that
  lines of orders stored from the tool's order export record must be held by those orders (what
  they hold beyond them came from the order export).

The file's side is read from the file's own cells, apart from the import's own reading: every
column whose header says it holds money paid back (``Amount Refunded``, ``Refunded Amount``,
``退款金额`` …, whether the source maps it or not), an adjusted order total (Etsy), a partial refund
written in a status (``已退款(￥50.00)``), a status or after-sale status of a whole refund
(``退款成功``), and refund rows. A refund column the import does not read (renamed by the tool,
say) therefore leaves a difference, and the import is refused naming it, instead of storing
revenue that was paid back. Amounts are in the currency they are written in, rounded to cents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from crm_helpers.i18n import t
from crm_helpers.ingest.table_import import RowError, clean_column
from crm_helpers.store.facts import PAID
from crm_helpers.store.schema import TABLES

CENT = 0.005
"""Half a cent: two sums closer than this are equal (amounts are written to the cent)."""
REFUND_COLUMN = re.compile(r"refund|退款金额|已退款金额|退款额|成功退款", re.I)
"""A header of a column holding money paid back (English or Chinese), whatever else it says."""
ADJUSTED_TOTAL = re.compile(r"adjusted\W*order\W*total", re.I)
"""A header of an order's total after partial refunds (Etsy's ``Adjusted Order Total``)."""
AFTER_SALE_COLUMN = re.compile(r"售后状态|退款状态")
"""A header of an after-sale (refund) status column (Douyin 售后状态, Taobao 退款状态)."""
REFUND_DONE = ("退款成功", "已退款", "退款完成")
"""After-sale words saying the line's money was paid back (whole, unless a refund-money column says how much)."""
NO_AFTER_SALE = ("", "-", "/")
"""After-sale cells saying nothing: any other word that is not :data:`REFUND_DONE` (``退款关闭``: a refund
asked for and closed, ``退款中``) means the row's refund money was not paid back (yet)."""
PARTIAL_REFUND = re.compile(r"退款\s*[(（]\s*[￥¥]?\s*(-?[\d,]*\.?\d+)\s*[)）]")
"""A status naming the part paid back: ``已退款(￥50.00)``."""
NO_CURRENCY = "(no currency)"
"""How the balance names money whose currency the export does not say."""


def money(texts: pd.Series) -> np.ndarray:
    """Each cell as an amount (``1,250.00``, ``¥23.50``, ``-99.99``), NaN where it is none; read with
    the importer's own rules for ``orders.amount`` (a sign allowed). Plain numbers are read at C
    speed; only the other cells go through the importer's cleaning."""
    if texts.empty:
        return np.zeros(0)
    texts = texts.astype(object).fillna("")
    values = pd.to_numeric(texts, errors="coerce").to_numpy(dtype=float, copy=True)
    other = np.flatnonzero(np.isnan(values) & (texts != "").to_numpy())
    if len(other):
        column = replace(TABLES["orders"].column("amount"), minimum=None, required=False)
        ignored: list[RowError] = []
        cleaned = clean_column(column, texts.iloc[other].reset_index(drop=True), dayfirst=None, errors=ignored,
                               rows=np.arange(len(other)))
        values[other] = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float)
    return values


def partial_refunds(words: pd.Series) -> np.ndarray:
    """The part paid back that each status names (``已退款(￥50.00)``: 50.0), NaN where it names none;
    worked out once per distinct status (a status column repeats a few words)."""
    codes, uniques = pd.factorize(words.astype(object).fillna(""))
    found = pd.Series(uniques, dtype=object).astype(str).str.extract(PARTIAL_REFUND, expand=False).fillna("")
    per_word = np.append(money(found), np.nan)
    return per_word[codes]


@dataclass
class CurrencyBalance:
    """The two equations of one currency (see the module doc); amounts in that currency."""

    currency: str
    file_money: float = 0.0
    paid: float = 0.0
    refunded: float = 0.0
    failed: float = 0.0  # failed, cancelled and pending orders
    not_sales: dict[str, list[float]] = field(default_factory=dict)  # kind -> [rows, money]
    erased: float = 0.0
    described: float = 0.0  # lines of orders stored from the tool's order export (their amount kept)
    rejected: float = 0.0
    rejected_rows: int = 0
    file_refunds: float = 0.0
    earlier_refunds: float = 0.0  # refund rows paying back payments of earlier imports
    unheld_refunds: float = 0.0  # refunds lines record that their order (stored from the order export) lacks

    @property
    def accounted(self) -> float:
        """What the import did with the file's money: the right side of the first equation."""
        return (self.paid + self.refunded + self.failed + sum(m for _, m in self.not_sales.values())
                + self.erased + self.described + self.rejected)

    @property
    def gap(self) -> float:
        """The file's money the import did not account for (negative: more stored than the file holds)."""
        return round(self.file_money - self.accounted, 2)

    @property
    def refunds_gap(self) -> float:
        """Refunds the file records that no stored order shows (negative: more stored than recorded)."""
        return round(self.file_refunds - self.refunded - self.earlier_refunds + self.unheld_refunds, 2)

    @property
    def closes(self) -> bool:
        return abs(self.gap) < CENT and abs(self.refunds_gap) < CENT

    def line(self) -> str:
        """The balance line, e.g. ``balance CNY: the file's money 367.00 = paid 99.00 + refunded 268.00 + …``."""
        parts = [t("paid {amount}", amount=f"{self.paid:,.2f}"), t("refunded {amount}", amount=f"{self.refunded:,.2f}"),
                 t("failed/cancelled {amount}", amount=f"{self.failed:,.2f}")]
        for kind, (rows, amount) in sorted(self.not_sales.items()):
            parts.append(t("not sales {amount} ({rows} {kind})", amount=f"{amount:,.2f}", rows=int(rows), kind=kind))
        if self.erased:
            parts.append(t("erased people {amount}", amount=f"{self.erased:,.2f}"))
        if self.described:
            parts.append(t("lines of orders stored from the order export {amount}", amount=f"{self.described:,.2f}"))
        if self.rejected_rows:
            parts.append(t("rejected {amount} ({rows} rows)", amount=f"{self.rejected:,.2f}", rows=self.rejected_rows))
        text = t("balance {currency}: the file's money {amount} = {parts}", currency=t(self.currency),
                 amount=f"{self.file_money:,.2f}", parts=" + ".join(parts))
        if self.file_refunds or self.earlier_refunds:
            text += "; " + t("of it paid back {amount}", amount=f"{self.file_refunds:,.2f}")
            if self.earlier_refunds:
                text += " " + t("({amount} of payments imported earlier)", amount=f"{self.earlier_refunds:,.2f}")
        if abs(self.gap) >= CENT:
            text += "; " + t("DIFFERENCE {amount} not accounted for", amount=f"{self.gap:,.2f}")
        if abs(self.refunds_gap) >= CENT:
            text += "; " + t("DIFFERENCE {amount} of refunds the file records but no order shows",
                             amount=f"{self.refunds_gap:,.2f}")
        return text


@dataclass
class ImportBalance:
    """The balance of one import, per currency; ``ok`` when every currency closes."""

    currencies: dict[str, CurrencyBalance] = field(default_factory=dict)

    def of(self, currency: object) -> CurrencyBalance:
        """The balance of ``currency`` (an ISO code; anything else is :data:`NO_CURRENCY`)."""
        known = isinstance(currency, str) and currency.strip() not in ("", NO_CURRENCY)
        key = currency.strip().upper() if known else NO_CURRENCY  # type: ignore[union-attr]
        return self.currencies.setdefault(key, CurrencyBalance(key))

    @property
    def ok(self) -> bool:
        return all(c.closes for c in self.currencies.values())

    @property
    def message(self) -> str:
        """The balance lines, one per currency (empty for an export without money)."""
        return "\n".join(c.line() for _, c in sorted(self.currencies.items()))

    def difference(self) -> str:
        """The differences in words, for a refusal (empty when the balance closes)."""
        said = []
        for name, c in sorted(self.currencies.items()):
            if abs(c.gap) >= CENT:
                said.append(t("{amount} {currency} of the file's money is neither stored nor counted as left out",
                              amount=f"{c.gap:,.2f}", currency=t(name)))
            if abs(c.refunds_gap) >= CENT:
                said.append(t("{amount} {currency} of refunds the file records is on no stored order",
                              amount=f"{c.refunds_gap:,.2f}", currency=t(name)))
        return "; ".join(said)

    def to_json(self) -> str:
        """The balance as kept with the import batch (``import_log.balance``)."""
        return json.dumps({name: {"file_money": round(c.file_money, 2), "paid": round(c.paid, 2),
                                  "refunded": round(c.refunded, 2), "failed_cancelled": round(c.failed, 2),
                                  "not_sales": {k: {"rows": int(r), "money": round(m, 2)} for k, (r, m) in
                                                c.not_sales.items()},
                                  "erased": round(c.erased, 2), "described": round(c.described, 2), "rejected": round(c.rejected, 2),
                                  "rejected_rows": c.rejected_rows, "file_refunds": round(c.file_refunds, 2),
                                  "earlier_refunds": round(c.earlier_refunds, 2),
                                  "unheld_refunds": round(c.unheld_refunds, 2), "difference": c.gap,
                                  "refunds_difference": c.refunds_gap}
                           for name, c in sorted(self.currencies.items())}, ensure_ascii=False)

    # ------------------------------------------------------------------ counting
    def count_not_sales(self, kinds: pd.Series, amounts: np.ndarray, *, currencies: pd.Series) -> None:
        """Rows left out as not sales: each kind's rows and money (in the file's money too)."""
        for kind, amount, currency in zip(kinds, amounts, currencies):
            value = 0.0 if np.isnan(amount) else abs(float(amount))
            c = self.of(currency)
            c.file_money += value
            entry = c.not_sales.setdefault(str(kind) or "other", [0, 0.0])
            entry[0] += 1
            entry[1] += value

    def count_file(self, rows: pd.DataFrame, *, per_order: bool) -> None:
        """The file's side of the kept rows: ``rows`` has ``order_id``, ``currency``, ``amount``
        (NaN: none), ``refund`` (money paid back the row records), ``refund_row`` (a row paying back
        another row: its money is a refund, not the file's money) and ``left_out`` ("", "erased",
        "rejected", or "described": a line of an order stored from the tool's order export, whose
        amount that export gives). With ``per_order`` the amount and refund are the order's (repeated
        on its lines, or written on its first: counted once per order, the largest), else each line's
        own. Vectorised: a chunk is 100,000 lines."""
        amount = rows["amount"].abs().fillna(0.0).to_numpy(dtype=float)
        refund = rows["refund"].to_numpy(dtype=float)
        if per_order:
            order, _ = pd.factorize(rows["order_id"].astype(object).fillna(""))
            largest_amount = np.zeros(order.max() + 1 if len(order) else 0)
            largest_refund = np.zeros_like(largest_amount)
            np.maximum.at(largest_amount, order, amount)
            np.maximum.at(largest_refund, order, refund)
            first = np.zeros(len(order), dtype=bool)
            first[np.unique(order, return_index=True)[1]] = True
            amount = np.where(first, largest_amount[order], 0.0)
            refund = np.where(first, largest_refund[order], 0.0)
        money_in = np.where(rows["refund_row"].to_numpy(dtype=bool), 0.0, amount)
        currency, currencies = pd.factorize(rows["currency"].astype(object).fillna(NO_CURRENCY))
        part, parts = pd.factorize(rows["left_out"].astype(object))
        key = currency * max(len(parts), 1) + part
        size = len(currencies) * max(len(parts), 1)
        sums = {name: np.bincount(key, weights=values, minlength=size)
                for name, values in (("money", money_in), ("refund", refund), ("lines", np.ones(len(key))))}
        for at in np.flatnonzero(sums["lines"]):
            c = self.of(currencies[at // max(len(parts), 1)])
            left_out = parts[at % max(len(parts), 1)]
            money_here = float(sums["money"][at])
            c.file_money += money_here
            if left_out == "rejected":
                c.rejected += money_here
                c.rejected_rows += int(sums["lines"][at])
            elif left_out == "erased":
                c.erased += money_here
            elif left_out == "described":
                c.described += money_here
            else:
                c.file_refunds += float(sums["refund"][at])

    def count_stored(self, orders: pd.DataFrame, default_currency: str | None) -> None:
        """The store's side: the orders of this file as written (amount, refunded_amount, status)."""
        if orders.empty:
            return
        currency = (orders["currency"] if "currency" in orders else pd.Series(None, index=orders.index, dtype=object))
        currency = currency.astype(object).where(currency.notna(), default_currency)
        amount = pd.to_numeric(orders["amount"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
        back = (pd.to_numeric(orders["refunded_amount"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
                if "refunded_amount" in orders else np.zeros(len(orders)))
        sold = orders["status"].isin((PAID, "refunded")).to_numpy()  # money received, paid back since or not
        code, names = pd.factorize(currency.fillna(NO_CURRENCY))
        for name, weights in (("refunded", back), ("paid", np.where(sold, amount - back, 0.0)),
                              ("failed", np.where(sold, 0.0, amount - back))):
            for at, total in enumerate(np.bincount(code, weights=weights, minlength=len(names))):
                c = self.of(names[at])
                setattr(c, name, getattr(c, name) + float(total))

    def count_described_refunds(self, lines: pd.DataFrame, orders: pd.DataFrame) -> None:
        """Refunds recorded by lines of orders stored from the tool's order export (``lines``:
        ``order_id``, ``currency``, ``refund``) that the stored order does not hold (``orders``:
        ``order_id``, ``refunded_amount`` as written): each order's refunds beyond its refunded
        amount are refunds on no stored order. What the order holds beyond them (refunds the order
        export gave) is not the file's."""
        if lines.empty:
            return
        recorded = lines.assign(currency=lines["currency"].astype(object).fillna(NO_CURRENCY)).groupby(
            ["order_id", "currency"], sort=False)["refund"].sum().reset_index()
        held = pd.to_numeric(orders.set_index("order_id")["refunded_amount"], errors="coerce").fillna(0.0)
        recorded["missing"] = (recorded["refund"] - recorded["order_id"].map(held).fillna(0.0)).clip(lower=0.0)
        for currency, missing in recorded.groupby("currency")["missing"].sum().items():
            self.of(currency).unheld_refunds += float(missing)

    def count_earlier_refunds(self, amounts: Iterable[float], *, currencies: Iterable[str | None]) -> None:
        """Refund rows paying back payments of earlier imports (their orders were updated)."""
        for amount, currency in zip(amounts, currencies):
            self.of(currency).earlier_refunds += abs(float(amount))


def recorded_refunds(header: list[str], data: list[list[str]], *, amount: np.ndarray, status: pd.Series | None,
                     refunded_status: set[str]) -> np.ndarray:
    """Money paid back each row records, from the file's own cells (the largest of what it says):
    every refund-money column (:data:`REFUND_COLUMN`), the order total less its adjusted total
    (:data:`ADJUSTED_TOTAL`), a partial refund in the status (:data:`PARTIAL_REFUND`), the whole
    amount when the status says refunded (``refunded_status``: the tool's words, lower case) or an
    after-sale column says 退款成功 (the refund-money column's amount when it names one), and the
    amount of a row whose amount is negative. A row whose after-sale status says the refund did not
    happen (``退款关闭``) records no refund, whatever its refund-money column says."""
    n = len(data)
    evidence = np.where(amount < 0, -amount, 0.0)
    evidence = np.nan_to_num(evidence)
    gross = np.nan_to_num(np.abs(amount))

    def column(i: int) -> pd.Series:
        return pd.Series([r[i] if i < len(r) else "" for r in data], dtype=object)

    said = np.zeros(n)  # the refund-money columns' largest
    done = np.zeros(n, dtype=bool)  # an after-sale status says paid back
    closed = np.zeros(n, dtype=bool)  # an after-sale status says not paid back
    for i, name in enumerate(header):
        if REFUND_COLUMN.search(name) and not AFTER_SALE_COLUMN.search(name):
            values = money(column(i))
            if not np.isnan(values).all():
                said = np.maximum(said, np.nan_to_num(np.abs(values)))
        elif ADJUSTED_TOTAL.search(name):
            adjusted = money(column(i))
            paid_back = np.where(np.isnan(adjusted), 0.0, gross - np.abs(adjusted))
            evidence = np.maximum(evidence, np.clip(paid_back, 0.0, None))
        elif AFTER_SALE_COLUMN.search(name):
            words = column(i).astype(str).str.strip()
            done |= words.isin(REFUND_DONE).to_numpy()
            closed |= (~words.isin((*REFUND_DONE, *NO_AFTER_SALE))).to_numpy()
    after_sale = np.where(said > 0, np.minimum(said, np.where(gross > 0, gross, said)), gross)
    evidence = np.maximum(evidence, np.where(done, after_sale, np.where(closed, 0.0, said)))
    if status is not None and n:
        codes, uniques = pd.factorize(status.astype(object).fillna(""))
        said = pd.Series(uniques, dtype=object).astype(str).str.strip()
        whole = np.append(said.str.lower().isin(refunded_status).to_numpy(), False)[codes]
        evidence = np.where(whole, np.maximum(evidence, gross), evidence)
        part = np.append(partial_refunds(said), np.nan)[codes]
        evidence = np.maximum(evidence, np.nan_to_num(np.abs(part)))
    return evidence
