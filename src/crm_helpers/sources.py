"""The exports of the tools a one-person business uses, each described as data.

A :class:`Source` says how one tool's export looks and what it means: the headers that
recognise it (its *signature*), which file column goes to which store column (``"table.column"``),
how its statuses read, how its dates are written and whether its rows are order *lines* grouped
into orders. ``crm import FILE`` recognises the source from the headers (:func:`recognise`); the
generic machinery in :mod:`crm_helpers.source_import` does the rest. Adding a tool means adding
one description here and one fixture under ``tests/fixtures/``.

Store targets: ``orders.*``, ``order_items.*``, ``customers.*``, ``products.*`` and ``feedback.*``.
Several headers on one target: a target the source lists in ``joined`` joins them with a space
(First Name + Last Name), any other takes the first non-empty one (Billing City, else Shipping City). Statuses map to the store's (see ``schema.ORDER_STATUSES``);
a source without a status column means its orders were paid (the import summary says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Amount = Literal["total", "lines"]
"""``total``: the order's amount is a column; ``lines``: the sum of quantity × unit price of its lines."""


@dataclass(frozen=True)
class Source:
    """One tool's export layout. Header names are matched ignoring case, spaces and punctuation."""

    key: str
    title: str
    menu: str  # where the owner finds the export in the tool, for the docs page
    signature: tuple[str, ...]  # headers that must all be present to recognise the file
    columns: dict[str, str]  # file header -> "table.column"
    questions: dict[str, str] = field(default_factory=dict)  # regex on a header's wording -> "table.column"
    joined: tuple[str, ...] = ()  # targets whose headers are joined with a space (First + Last Name)
    statuses: dict[str, str] = field(default_factory=dict)  # the tool's status (lower case) -> store status
    cancelled_when: str | None = None  # a header whose non-empty value means the order was cancelled
    dayfirst: bool | None = None  # day/month order of dates like 03/04/2025 (None: decided from the file)
    lines: bool = False  # one row per order line; rows of one order share its order id
    amount: Amount = "total"
    credit_note_prefix: str | None = None  # order ids starting with it are credit notes (money paid back)
    currency: str | None = None  # the currency when the export names none
    id_prefix: str = ""  # prefix of the ids made for rows without one (feedback answers, campaigns)
    header_within: int = 1  # the header is among the first rows (bills start with preamble lines)
    encoding: str | None = None  # the encoding the tool writes, when detection could mistake it
    format_note: str = ""  # where the header of the fixture was taken from (documentation or sample)


SHOPIFY_FINANCIAL = {
    "paid": "paid", "partially_paid": "paid", "partially_refunded": "paid", "refunded": "refunded",
    "voided": "failed", "expired": "failed", "pending": "pending", "authorized": "pending",
}

SOURCES: tuple[Source, ...] = (
    Source(
        key="shopify_orders",
        title="Shopify orders (with line items)",
        menu="Shopify admin → Orders → Export → All orders, CSV for Excel/Numbers/other spreadsheet programs",
        signature=("Name", "Email", "Financial Status", "Paid at", "Lineitem quantity", "Lineitem name"),
        columns={
            "Name": "orders.order_id", "Created at": "orders.order_date", "Total": "orders.amount",
            "Refunded Amount": "orders.refunded_amount", "Financial Status": "orders.status",
            "Currency": "orders.currency", "Source": "orders.channel",
            "Email": "customers.email", "Billing Name": "customers.name", "Shipping Name": "customers.name",
            "Billing Company": "customers.company", "Billing City": "customers.city",
            "Shipping City": "customers.city", "Billing Country": "customers.country",
            "Shipping Country": "customers.country", "Billing Phone": "customers.phone", "Phone": "customers.phone",
            "Accepts Marketing": "customers.consent_marketing",
            "Lineitem sku": "order_items.product_id", "Lineitem quantity": "order_items.quantity",
            "Lineitem price": "order_items.unit_price", "Lineitem name": "products.name",
        },
        statuses=SHOPIFY_FINANCIAL,
        cancelled_when="Cancelled at",
        lines=True,
        format_note="Shopify order export columns as listed in Shopify's help center 'Exporting orders'",
    ),
    Source(
        key="shopify_customers",
        title="Shopify customers",
        menu="Shopify admin → Customers → Export → All customers, CSV for Excel/Numbers/other spreadsheet programs",
        signature=("First Name", "Last Name", "Email", "Accepts Email Marketing", "Total Spent", "Total Orders"),
        columns={
            "Customer ID": "customers.customer_id", "First Name": "customers.name", "Last Name": "customers.name",
            "Email": "customers.email", "Phone": "customers.phone", "Default Address Phone": "customers.phone",
            "Accepts Email Marketing": "customers.consent_marketing", "Company": "customers.company",
            "Default Address Company": "customers.company", "City": "customers.city",
            "Default Address City": "customers.city", "Country": "customers.country",
            "Country Code": "customers.country", "Default Address Country Code": "customers.country",
            "Tags": "customers.tags", "Note": "customers.notes",
        },
        joined=("customers.name",),
        format_note="Shopify customer export columns (Customers → Export), current 'Default Address …' layout",
    ),
    Source(
        key="stripe_payments",
        title="Stripe payments",
        menu="Stripe Dashboard → Payments → Export (all columns), CSV",
        signature=("id", "Created (UTC)", "Amount", "Amount Refunded", "Currency", "Status"),
        columns={
            "id": "orders.order_id", "Created (UTC)": "orders.order_date", "Amount": "orders.amount",
            "Amount Refunded": "orders.refunded_amount", "Currency": "orders.currency", "Status": "orders.status",
            "Customer ID": "customers.customer_id", "Customer Email": "customers.email",
            "Card Address City": "customers.city", "Card Address Country": "customers.country",
        },
        statuses={"paid": "paid", "succeeded": "paid", "refunded": "refunded", "partially refunded": "paid",
                  "failed": "failed", "blocked": "failed", "canceled": "cancelled", "incomplete": "pending",
                  "uncaptured": "pending"},
        format_note="Stripe Dashboard payments export ('unified payments' CSV)",
    ),
    Source(
        key="uci_online_retail",
        title="Invoice lines (UCI Online Retail layout)",
        menu="Any shop or till export with one row per invoice line: InvoiceNo, StockCode, Description, "
             "Quantity, InvoiceDate, UnitPrice, CustomerID, Country (the UCI Online Retail data set's layout)",
        signature=("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"),
        columns={
            "InvoiceNo": "orders.order_id", "InvoiceDate": "orders.order_date", "CustomerID": "customers.customer_id",
            "Country": "customers.country", "StockCode": "order_items.product_id",
            "Quantity": "order_items.quantity", "UnitPrice": "order_items.unit_price",
            "Description": "products.name",
        },
        dayfirst=False,  # 12/1/2010 8:26 is 1 December 2010
        lines=True,
        amount="lines",
        credit_note_prefix="C",
        format_note="UCI Machine Learning Repository, 'Online Retail' (Chen, 2015), Online Retail.xlsx columns",
    ),
    Source(
        key="taobao_orders",
        title="Taobao / Tmall order report (订单报表)",
        menu="千牛卖家工作台 → 交易 → 已卖出的宝贝 → 批量导出 → 订单报表 (CSV, GBK)",
        signature=("订单编号", "买家会员名", "买家实际支付金额", "订单状态", "订单创建时间"),
        columns={
            "订单编号": "orders.order_id", "订单创建时间": "orders.order_date", "买家实际支付金额": "orders.amount",
            "订单状态": "orders.status", "买家会员名": "customers.customer_id", "收货人姓名": "customers.name",
            "联系手机": "customers.phone", "联系电话": "customers.phone",
        },
        statuses={"交易成功": "paid", "卖家已发货，等待买家确认": "paid", "买家已付款，等待卖家发货": "paid",
                  "交易关闭": "cancelled", "等待买家付款": "pending"},
        currency="CNY",
        encoding="gb18030",
        format_note="Taobao seller order report (订单报表) header, as written by the seller back-end export",
    ),
    Source(
        key="google_forms",
        title="Google Forms survey responses",
        menu="Google Forms → Responses → ⋮ → Download responses (.csv)",
        signature=("Timestamp", "Email Address"),
        columns={"Timestamp": "feedback.submitted_at", "Email Address": "customers.email"},
        questions={
            r"how likely .*recommend": "feedback.nps",
            r"how satisfied|overall satisfaction": "feedback.csat",
            r"comment|anything else|suggestion": "feedback.comment",
        },
        id_prefix="GF-",
        format_note="Google Forms responses CSV: Timestamp, Email Address, then one column per question",
    ),
)


def normalize(header: str) -> str:
    """A header as compared: lower case, without spaces, punctuation or a byte-order mark."""
    return re.sub(r"[\s_\-.:/()#*]+", "", str(header).strip().lower().lstrip("\ufeff"))


def matches(source: Source, header: list[str]) -> bool:
    """Whether ``header`` carries every column of the source's signature."""
    present = {normalize(h) for h in header}
    return all(normalize(s) in present for s in source.signature)


def recognise(header: list[str]) -> Source | None:
    """The source whose signature ``header`` carries (the longest signature wins), or None."""
    found = [s for s in SOURCES if matches(s, header)]
    return max(found, key=lambda s: len(s.signature)) if found else None


def by_key(key: str) -> Source:
    """The source called ``key``; ValueError listing the known ones."""
    for source in SOURCES:
        if source.key == key:
            return source
    raise ValueError(f"unknown source {key!r}; known: {', '.join(s.key for s in SOURCES)}")
