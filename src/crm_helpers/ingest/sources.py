"""The exports of the tools a one-person business uses, each described as data.

A :class:`Source` says how one tool's export looks and what it means: the headers that
recognise it (its *signature*), which file column goes to which store column (``"table.column"``),
how its statuses read, how its dates are written and whether its rows are order *lines* grouped
into orders. ``crm import FILE`` recognises the source from the headers (:func:`recognise`); the
generic machinery in :mod:`crm_helpers.ingest.export_import` does the rest. Adding a tool means adding
one description here and one fixture under ``tests/fixtures/``.

Store targets: ``orders.*``, ``order_items.*``, ``customers.*``, ``products.*`` and ``feedback.*``.
Several headers on one target: a target the source lists in ``joined`` joins them with a space
(First Name + Last Name), any other takes the first non-empty one (Billing City, else Shipping City). Statuses map to the store's (see ``schema.ORDER_STATUSES``);
a source without a status column means its orders were paid (the import summary says so). Rows
that are not sales (a payment bill's own spending, transfers, fees) are left out with ``keep`` and
counted in the summary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

Amount = Literal["total", "lines", "line_totals"]
"""``total``: the order's amount is a column of the order; ``lines``: the sum of quantity × unit
price of its lines; ``line_totals``: the sum of its lines' own totals (the ``orders.amount`` column
then holds a line's total)."""


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
    keep: dict[str, tuple[str, ...]] = field(default_factory=dict)  # header -> values of the rows to import
    constants: dict[str, str] = field(default_factory=dict)  # "table.column" -> the value every row has
    empty: tuple[str, ...] = ()  # what the tool writes for "no value" ("/", "-", "(空)")
    refund_of: str | None = None  # a header naming the order a refund row pays back (PayPal's Reference Txn ID)
    refund_rows: dict[str, tuple[str, ...]] = field(default_factory=dict)  # header -> values of a row paying
    # back a payment of the bill, named by its own order number before "_" (Alipay's 退款成功 rows)
    adjusted_total: str | None = None  # a header of the order's total after partial refunds (Etsy)
    refunded_when: dict[str, tuple[str, ...]] = field(default_factory=dict)  # after-sale header -> values of a
    # line paid back (Douyin 售后状态 退款成功): whole, unless ``line_refunded`` says how much
    line_refunded: str | None = None  # a header of the money a line's after-sale paid back (Taobao 退款金额)
    received_only: dict[str, tuple[str, ...]] = field(default_factory=dict)  # header -> values that are sales
    # only when money came in (PayPal General Payment received from a customer)
    owner_named: tuple[str, ...] = ()  # regexes on a bill's preamble lines naming its owner (group 1): money
    # the owner moves between their own accounts is no sale, and the owner is never a customer
    lines_of: str | None = None  # the key of the source whose orders these lines describe: an order it
    # stored keeps its amount (what the buyer paid), status and buyer (Etsy Order Items of Etsy Orders)
    own_account: str | None = None  # a header naming the account that received the money: its most frequent
    # value is the shop itself, never a customer (PayPal's To Email Address)
    statuses: dict[str, str] = field(default_factory=dict)  # the tool's status (lower case) -> store status
    cancelled_when: str | None = None  # a header whose non-empty value means the order was cancelled
    dayfirst: bool | None = None  # day/month order of dates like 03/04/2025 (None: decided from the file)
    lines: bool = False  # one row per order line; rows of one order share its order id
    amount: Amount = "total"
    credit_note_prefix: str | None = None  # order ids starting with it are credit notes (money paid back)
    currency: str | None = None  # the currency when the export names none
    rates_per: str | None = None  # exchange rates: a date, then one column per currency (its ISO code), per 1 of this
    id_prefix: str = ""  # prefix of the ids made for rows without one (feedback answers, campaigns)
    format_note: str = ""  # where the header of the fixture was taken from (documentation or sample)
    closing_rows: tuple[str, ...] = ()  # how the first cells of the export's closing summary lines start ("Totals")


SHOPIFY_FINANCIAL = {
    "paid": "paid", "partially_paid": "paid", "partially_refunded": "paid", "refunded": "refunded",
    "voided": "failed", "expired": "failed", "pending": "pending", "authorized": "pending",
}

ETSY_STATUS = {"": "paid", "completed": "paid", "paid": "paid", "partially refunded": "paid",
               "refunded": "refunded", "fully refunded": "refunded", "canceled": "cancelled", "cancelled": "cancelled"}
"""Etsy Sold Orders' Status: empty for most orders, ``Completed`` / ``Paid`` as public readers of the
export show it; the refund and cancellation words as the Shop Manager names those orders."""

TAOBAO_STATUS = {"交易成功": "paid", "卖家已发货，等待买家确认": "paid", "买家已付款，等待卖家发货": "paid",
                 "交易关闭": "cancelled", "等待买家付款": "pending"}
"""订单状态 of Taobao's reports (订单报表, 宝贝报表)."""

SQUARE_EVENTS = ("Payment", "Refund")
"""Square exports' Event Type of a sale and of money paid back; the rows of any other are no sale."""

MAILCHIMP_AUDIENCE_HEADER = ("Email Address", "First Name", "Last Name", "MEMBER_RATING", "OPTIN_TIME", "LEID")
"""The columns every Mailchimp audience export starts with (subscribed, unsubscribed, cleaned)."""

MAILCHIMP_NOT_MAILED: dict[str, Any] = {
    "columns": {"Email Address": "customers.email", "First Name": "customers.name", "Last Name": "customers.name",
                "Phone Number": "customers.phone"},
    "joined": ("customers.name",),
    "constants": {"customers.consent_marketing": "0"},
}
"""What a Mailchimp audience export of people it no longer mails (unsubscribed, cleaned) gives."""

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
            "Lineitem price": "order_items.unit_price", "Lineitem discount": "order_items.discount",
            "Lineitem name": "products.name",
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
        key="stripe_payments_current",
        title="Stripe payments (current layout)",
        menu="Stripe Dashboard → Transactions → Payments → Export, columns: All, CSV",
        signature=("id", "Created date (UTC)", "Amount", "Amount Refunded", "Currency", "Status"),
        columns={
            "id": "orders.order_id", "Created date (UTC)": "orders.order_date", "Amount": "orders.amount",
            "Amount Refunded": "orders.refunded_amount", "Currency": "orders.currency", "Status": "orders.status",
            "Customer ID": "customers.customer_id", "Customer Email": "customers.email",
            "Customer Name": "customers.name", "Card Address City": "customers.city",
            "Card Address Country": "customers.country",
        },
        # Amount is in the payment's Currency; Converted Amount is the same money in the account's
        # settlement currency (the store converts with its own exchange rates)
        statuses={"paid": "paid", "succeeded": "paid", "refunded": "refunded", "partially refunded": "paid",
                  "failed": "failed", "blocked": "failed", "canceled": "cancelled", "incomplete": "pending",
                  "uncaptured": "pending"},
        format_note="Stripe Dashboard unified payments export since 2024: 'Created date (UTC)', 'Converted Amount'",
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
        statuses=TAOBAO_STATUS,
        currency="CNY",
        format_note="Taobao seller order report (订单报表) header, as written by the seller back-end export",
    ),
    Source(
        key="taobao_order_items",
        title="Taobao / Tmall item report (宝贝报表)",
        menu="千牛卖家工作台 → 交易 → 已卖出的宝贝 → 批量导出 → 宝贝报表 (CSV, GBK; with the 订单报表 of the same period)",
        signature=("子订单编号", "主订单编号", "商品标题", "购买数量", "买家实付金额"),
        columns={
            "主订单编号": "orders.order_id", "订单创建时间": "orders.order_date", "买家实付金额": "orders.amount",
            "订单状态": "orders.status", "商家编码": "order_items.product_id", "商品ID": "order_items.product_id",
            "购买数量": "order_items.quantity", "商品标题": "products.name",
        },
        # one row per sub-order (子订单): its 买家实付金额 is that line's money; 退款状态 退款成功 paid back
        # its 退款金额 (退款关闭: a refund asked for and closed, nothing paid back); the report names
        # no buyer: after the 订单报表 its orders keep their amount and buyer, and gain the refunds
        statuses=TAOBAO_STATUS,
        refunded_when={"退款状态": ("退款成功",)},
        line_refunded="退款金额",
        lines=True,
        amount="line_totals",
        lines_of="taobao_orders",
        currency="CNY",
        format_note="Tmall/Taobao 宝贝报表 (sub-order report) header, columns A–W as a public reader of the "
                    "seller export lists them (子订单编号 … 退款状态, 退款金额, 订单创建时间 … 物流公司)",
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
    Source(
        key="woocommerce_orders",
        title="WooCommerce orders (Customer/Order CSV Export)",
        menu="WordPress admin → WooCommerce → Export (Customer/Order/Coupon CSV Export) → Orders, default format",
        signature=("order_id", "order_number", "date", "status", "order_total", "billing_email"),
        columns={
            "order_number": "orders.order_id", "date": "orders.order_date", "order_total": "orders.amount",
            "status": "orders.status", "billing_email": "customers.email", "billing_first_name": "customers.name",
            "billing_last_name": "customers.name", "billing_phone": "customers.phone",
            "billing_company": "customers.company", "billing_city": "customers.city",
            "billing_country": "customers.country",
        },
        joined=("customers.name",),
        statuses={"completed": "paid", "processing": "paid", "printed": "paid", "refunded": "refunded",
                  "cancelled": "cancelled", "failed": "failed", "pending": "pending", "on-hold": "pending"},
        format_note="WooCommerce Customer/Order CSV Export, default order format (a real export's header)",
    ),
    Source(
        key="woocommerce_orders_current",
        title="WooCommerce orders (Customer/Order/Coupon Export, current default format)",
        menu="WordPress admin → WooCommerce → Export → Orders, format: Default (CSV)",
        signature=("order_id", "order_number", "status", "order_total", "refunded_total", "order_currency",
                   "billing_email"),
        columns={
            # the extension's column key order_date is written under the header "date"; both are read
            "order_number": "orders.order_id", "date": "orders.order_date", "order_date": "orders.order_date",
            "order_total": "orders.amount", "refunded_total": "orders.refunded_amount",
            "order_currency": "orders.currency", "status": "orders.status", "billing_email": "customers.email",
            "billing_first_name": "customers.name", "billing_last_name": "customers.name",
            "billing_phone": "customers.phone", "billing_company": "customers.company",
            "billing_city": "customers.city", "shipping_city": "customers.city",
            "billing_country": "customers.country", "shipping_country": "customers.country",
        },
        joined=("customers.name",),
        statuses={"completed": "paid", "processing": "paid", "refunded": "refunded", "cancelled": "cancelled",
                  "failed": "failed", "pending": "pending", "on-hold": "pending", "checkout-draft": "pending"},
        format_note="WooCommerce Customer/Order/Coupon Export 5.x, default order format (Orders_Export_Format_"
                    "Definition 'default': order_id … order_total, refunded_total, order_currency …)",
    ),
    Source(
        key="woocommerce_customers",
        title="WooCommerce customers (Customer/Order CSV Export)",
        menu="WordPress admin → WooCommerce → Export (Customer/Order/Coupon CSV Export) → Customers, default format",
        signature=("customer_id", "first_name", "last_name", "email", "date_registered", "billing_email"),
        # customer_id is the WordPress user (0 for a guest), unknown to the orders export: people are
        # matched by e-mail, as the orders export's are; the billing e-mail stands in for a missing one
        columns={
            "email": "customers.email", "billing_email": "customers.email", "first_name": "customers.name",
            "last_name": "customers.name", "billing_phone": "customers.phone", "billing_company": "customers.company",
            "billing_city": "customers.city", "billing_country": "customers.country",
            "date_registered": "customers.first_seen",
        },
        joined=("customers.name",),
        format_note="WooCommerce Customer/Order CSV Export, default customer format (the extension's customer "
                    "column headers)",
    ),
    Source(
        key="stripe_customers",
        title="Stripe customers",
        menu="Stripe Dashboard → Customers → Export, CSV",
        signature=("id", "Email", "Name", "Created (UTC)", "Total Spend", "Payment Count"),
        columns={"id": "customers.customer_id", "Email": "customers.email", "Name": "customers.name",
                 "Created (UTC)": "customers.first_seen"},
        format_note="Stripe Dashboard customers export header",
    ),
    Source(
        key="paypal_activity",
        title="PayPal activity download",
        menu="PayPal → Activity → Statements → Activity download (CSV, balance-affecting)",
        signature=("Date", "Time", "TimeZone", "Name", "Type", "Status", "Gross", "Transaction ID"),
        columns={
            "Transaction ID": "orders.order_id", "Date": "orders.order_date", "Gross": "orders.amount",
            "Status": "orders.status", "Currency": "orders.currency", "From Email Address": "customers.email",
            "Name": "customers.name", "Contact Phone Number": "customers.phone",
        },
        refund_of="Reference Txn ID",
        keep={"Type": ("Express Checkout Payment", "Website Payment", "Payment Received", "Mobile Payment",
                       "Subscription Payment", "Donation Payment", "Refund", "Payment Refund", "General Payment")},
        received_only={"Type": ("General Payment",)},
        own_account="To Email Address",
        statuses={"completed": "paid", "pending": "pending", "denied": "failed", "reversed": "refunded",
                  "refunded": "refunded", "partially refunded": "paid", "canceled": "cancelled"},
        format_note="PayPal activity download, all-columns layout",
    ),
    Source(
        key="etsy_orders",
        title="Etsy sold orders",
        menu="Etsy Shop Manager → Settings → Options → Download Data → Orders (CSV)",
        signature=("Sale Date", "Order ID", "Buyer User ID", "Full Name", "Number of Items", "Order Total"),
        columns={
            "Order ID": "orders.order_id", "Sale Date": "orders.order_date", "Order Total": "orders.amount",
            "Currency": "orders.currency", "Status": "orders.status", "Buyer User ID": "customers.customer_id",
            "Full Name": "customers.name", "Ship City": "customers.city", "Delivery City": "customers.city",
            "Ship Country": "customers.country", "Delivery Country": "customers.country",
        },
        adjusted_total="Adjusted Order Total",
        # the Status cell is empty for most orders (paid; a refund shows in the Adjusted Order Total)
        statuses=ETSY_STATUS,
        dayfirst=False,  # 09/25/26 is 25 September 2026
        format_note="Etsy 'EtsySoldOrders' CSV header (US layout: Ship City / Ship Country; en-GB layout: "
                    "Delivery City / Delivery Country)",
    ),
    Source(
        key="etsy_order_items",
        title="Etsy sold order items",
        menu="Etsy Shop Manager → Settings → Options → Download Data → Order Items (CSV)",
        signature=("Sale Date", "Item Name", "Buyer", "Quantity", "Price", "Item Total", "Listing ID", "Order ID"),
        columns={
            "Order ID": "orders.order_id", "Sale Date": "orders.order_date", "Item Total": "orders.amount",
            "Currency": "orders.currency", "Buyer": "customers.customer_id", "Ship Name": "customers.name",
            "Ship City": "customers.city", "Ship Country": "customers.country",
            "Listing ID": "order_items.product_id", "Quantity": "order_items.quantity",
            "Price": "order_items.unit_price", "Item Name": "products.name",
        },
        dayfirst=False,
        lines=True,
        amount="line_totals",
        lines_of="etsy_orders",
        format_note="Etsy 'EtsySoldOrderItems' CSV header",
    ),
    Source(
        key="douyin_orders",
        title="Douyin shop orders (抖店订单)",
        menu="抖店商家后台 → 订单 → 订单管理 → 批量导出 (CSV)",
        signature=("主订单编号", "子订单编号", "选购商品", "商品数量", "订单应付金额", "订单提交时间"),
        columns={
            "主订单编号": "orders.order_id", "订单提交时间": "orders.order_date", "订单应付金额": "orders.amount",
            "订单状态": "orders.status", "收件人手机号": "customers.customer_id", "收件人": "customers.name",
            "商家编码": "order_items.product_id", "商品数量": "order_items.quantity", "选购商品": "products.name",
        },
        statuses={"已完成": "paid", "已发货": "paid", "待发货": "paid", "已支付": "paid", "已关闭": "cancelled",
                  "待支付": "pending"},
        refunded_when={"售后状态": ("退款成功",)},
        lines=True,
        amount="line_totals",
        currency="CNY",
        empty=("-",),
        format_note="抖店 order export header (one row per sub-order)",
    ),
    Source(
        key="wechat_pay_bill",
        title="WeChat Pay bill (微信支付账单)",
        menu="微信 → 我 → 服务 → 钱包 → 账单 → 常见问题 → 下载账单 → 用于个人对账 (CSV by e-mail)",
        signature=("交易时间", "交易类型", "交易对方", "商品", "收/支", "金额(元)", "当前状态", "交易单号"),
        columns={
            "交易单号": "orders.order_id", "交易时间": "orders.order_date", "金额(元)": "orders.amount",
            "当前状态": "orders.status", "交易对方": "customers.customer_id",
        },
        keep={"收/支": ("收入",)},
        owner_named=(r"微信昵称[:：]\s*\[(.+?)\]",),
        empty=("/",),
        statuses={"已收钱": "paid", "已存入零钱": "paid", "支付成功": "paid", "已到账": "paid",
                  "已全额退款": "refunded", "对方已退还": "refunded"},
        currency="CNY",
        format_note="WeChat Pay bill: preamble lines, then this header",
    ),
    Source(
        key="alipay_bill",
        title="Alipay bill (支付宝交易明细)",
        menu="支付宝 → 我的 → 账单 → ⋯ → 开具交易流水证明 → 用于个人对账 (CSV by e-mail, GBK)",
        signature=("交易时间", "交易分类", "交易对方", "商品说明", "收/支", "金额", "交易状态", "交易订单号"),
        columns={
            "交易订单号": "orders.order_id", "交易时间": "orders.order_date", "金额": "orders.amount",
            "交易状态": "orders.status", "交易对方": "customers.customer_id",
        },
        keep={"收/支": ("收入",)},
        owner_named=(r"^姓名[:：]\s*(\S+)",),
        refund_rows={"交易状态": ("退款成功",)},
        statuses={"交易成功": "paid", "已收款": "paid", "退款成功": "refunded", "交易关闭": "cancelled"},
        currency="CNY",
        empty=("/",),
        format_note="Alipay personal bill: preamble lines, then this header",
    ),
    Source(
        key="gumroad_sales",
        title="Gumroad sales",
        menu="Gumroad → Sales → Export (CSV, sent by e-mail for large exports)",
        signature=("Purchase ID", "Item Name", "Purchase Email", "Purchase Date", "Sale Price ($)",
                   "Fully Refunded?"),
        columns={
            "Purchase ID": "orders.order_id", "Purchase Date": "orders.order_date", "Sale Price ($)": "orders.amount",
            "Partial Refund ($)": "orders.refunded_amount", "Fully Refunded?": "orders.status",
            "Purchase Email": "customers.email", "Buyer Email": "customers.email", "Buyer Name": "customers.name",
            "City": "customers.city", "Country": "customers.country", "Product ID": "order_items.product_id",
            "Quantity": "order_items.quantity", "Item Name": "products.name",
        },
        statuses={"0": "paid", "1": "refunded"},  # a partly refunded sale is paid, with its Partial Refund ($)
        amount="line_totals",  # one row per sale: its Sale Price ($) is the line's total (unit price: ÷ Quantity)
        currency="USD",  # every money column is in dollars ("($)")
        closing_rows=("Totals",),  # the export closes with a row of column totals
        format_note="Gumroad's sales export (Exports::PurchaseExportService::PURCHASE_FIELDS in Gumroad's "
                    "published source)",
    ),
    Source(
        key="square_transactions",
        title="Square transactions",
        menu="Square Dashboard → Transactions → Export → Transactions CSV",
        signature=("Date", "Time", "Time Zone", "Gross Sales", "Total Collected", "Transaction ID", "Payment ID",
                   "Event Type"),
        columns={
            "Transaction ID": "orders.order_id", "Date": "orders.order_date", "Total Collected": "orders.amount",
            "Transaction Status": "orders.status", "Source": "orders.channel",
            "Customer ID": "customers.customer_id", "Customer Name": "customers.name",
        },
        # one row per payment (Event Type Payment); a refund is a row of its own (Event Type Refund)
        # with the payment's Transaction ID and negative amounts; a refund by amount shows its money
        # in Partial Refunds (negative) and Total Collected. Total Collected is what the buyer paid
        # (net sales, tax, tip); amounts are written $1.00 with no currency named
        statuses={"complete": "paid"},
        keep={"Event Type": SQUARE_EVENTS},  # any other row (an account adjustment) is no sale
        refund_rows={"Event Type": ("Refund",)},
        dayfirst=False,  # 11/15/2017 in US accounts
        format_note="Square Dashboard Transactions CSV header (Date, Time, Time Zone, Gross Sales, Discounts, … "
                    "Partial Refunds, Total Collected, … Transaction ID, Payment ID, … Event Type, … Customer ID, "
                    "Customer Name, …, Transaction Status) as public readers of the export list it",
    ),
    Source(
        key="square_item_details",
        title="Square item details",
        menu="Square Dashboard → Transactions → Export → Item Details CSV",
        signature=("Date", "Time", "Time Zone", "Category", "Item", "Qty", "Net Sales", "Transaction ID",
                   "Payment ID", "Event Type"),
        columns={
            "Transaction ID": "orders.order_id", "Date": "orders.order_date", "Net Sales": "orders.amount",
            "Customer ID": "customers.customer_id", "Customer Name": "customers.name",
            "SKU": "order_items.product_id", "Qty": "order_items.quantity", "Item": "products.name",
        },
        # one row per item line (Net Sales: its money after discounts, before tax); a refunded item is
        # a row of its own (Event Type Refund, negative money) of the payment's Transaction ID. After
        # the Transactions CSV its orders keep what the buyer paid (tax and tip included) and buyer
        keep={"Event Type": SQUARE_EVENTS},
        refund_rows={"Event Type": ("Refund",)},
        lines=True,
        amount="line_totals",
        lines_of="square_transactions",
        dayfirst=False,
        format_note="Square Dashboard Item Details CSV header (Date, Time, Time Zone, Category, Item, Qty, "
                    "Price Point Name, SKU, Modifiers Applied, Gross Sales, Discounts, Net Sales, Tax, Transaction "
                    "ID, Payment ID, …, Event Type, …, Customer ID, Customer Name, Customer Reference ID) as public "
                    "readers of the export list it",
    ),
    Source(
        key="amazon_all_orders",
        title="Amazon seller orders (All Orders Report, tab-separated)",
        menu="Seller Central → Reports → Fulfillment → All Orders (or Order Reports) → Download (.txt, tab-separated)",
        signature=("amazon-order-id", "merchant-order-id", "purchase-date", "order-status", "item-price",
                   "quantity"),
        columns={
            "amazon-order-id": "orders.order_id", "purchase-date": "orders.order_date", "item-price": "orders.amount",
            "order-status": "orders.status", "currency": "orders.currency", "sales-channel": "orders.channel",
            "ship-city": "customers.city", "ship-country": "customers.country", "sku": "order_items.product_id",
            "quantity": "order_items.quantity", "product-name": "products.name",
        },
        # one row per order line; item-price is the line's price (all its units); the report names no
        # buyer: each order is a guest of its own
        statuses={"shipped": "paid", "unshipped": "paid", "shipping": "paid", "shipped - delivered to buyer": "paid",
                  "shipped - out for delivery": "paid", "shipped - picked up": "paid", "pending": "pending",
                  "cancelled": "cancelled"},
        lines=True,
        amount="line_totals",
        format_note="Amazon All Orders Report flat file (GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL), "
                    "the 32-column header public MWS/SP-API clients check for",
    ),
    Source(
        key="alipay_pc_download",
        title="Alipay trade records, PC site (支付宝交易记录明细查询)",
        menu="alipay.com (电脑网页版) → 交易记录 → 下载查询结果 (CSV, GBK)",
        signature=("交易号", "交易创建时间", "交易对方", "商品名称", "金额（元）", "收/支", "交易状态", "成功退款（元）"),
        columns={
            "交易号": "orders.order_id", "交易创建时间": "orders.order_date", "金额（元）": "orders.amount",
            "成功退款（元）": "orders.refunded_amount", "交易状态": "orders.status", "交易对方": "customers.customer_id",
        },
        keep={"收/支": ("收入",)},
        statuses={"交易成功": "paid", "支付成功": "paid", "已收款": "paid", "交易关闭": "cancelled",
                  "退款成功": "refunded", "等待付款": "pending", "等待买家付款": "pending"},
        currency="CNY",
        closing_rows=("----", "共", "已收入", "待收入", "已支出", "待支出", "导出时间"),  # the footer's lines
        format_note="Alipay PC-site download: preamble (支付宝交易记录明细查询, 账号, 起始日期, ----交易记录明细列表----), "
                    "this header with a trailing comma, space-padded cells, a footer of totals",
    ),
    Source(
        key="mailchimp_subscribed",
        title="Mailchimp audience (subscribed contacts)",
        menu="Mailchimp → Audience → All contacts → Export Audience (CSV, subscribed_members_export)",
        signature=MAILCHIMP_AUDIENCE_HEADER,
        columns={"Email Address": "customers.email", "First Name": "customers.name", "Last Name": "customers.name",
                 "Phone Number": "customers.phone", "TAGS": "customers.tags"},
        joined=("customers.name",),
        constants={"customers.consent_marketing": "1"},
        format_note="Mailchimp audience export (subscribed members) header",
    ),
    Source(
        key="mailchimp_unsubscribed",
        title="Mailchimp audience (unsubscribed contacts)",
        menu="Mailchimp → Audience → All contacts → Export Audience (CSV, unsubscribed_members_export)",
        signature=(*MAILCHIMP_AUDIENCE_HEADER, "UNSUB_TIME"),
        **MAILCHIMP_NOT_MAILED,
        format_note="Mailchimp audience export (unsubscribed members) header",
    ),
    Source(
        key="mailchimp_cleaned",
        title="Mailchimp audience (cleaned contacts)",
        menu="Mailchimp → Audience → All contacts → Export Audience (CSV, cleaned_members_export)",
        signature=(*MAILCHIMP_AUDIENCE_HEADER, "CLEAN_TIME"),
        **MAILCHIMP_NOT_MAILED,  # Mailchimp no longer mails them: no e-mail reaches them
        format_note="Mailchimp audience export (cleaned members: addresses that bounced hard) header",
    ),
    Source(
        key="ecb_rates",
        title="ECB euro reference exchange rates",
        menu="ecb.europa.eu → Statistics → Euro foreign exchange reference rates → Time series: "
             "eurofxref-hist.zip (unzip it: eurofxref-hist.csv)",
        signature=("Date", "USD", "JPY", "GBP", "CHF"),
        columns={"Date": "exchange_rates.rate_date"},
        rates_per="EUR",
        empty=("N/A",),
        format_note="ECB eurofxref-hist.csv: Date, then one column per currency (units per 1 EUR), N/A where the "
                    "currency had no rate, a comma closing each line; newest day first",
    ),
    Source(
        key="typeform",
        title="Typeform responses",
        menu="Typeform → Results → Responses → Download all responses (CSV)",
        signature=("#", "Start Date (UTC)", "Submit Date (UTC)", "Network ID"),
        columns={"Submit Date (UTC)": "feedback.submitted_at"},
        questions={
            r"e-?mail": "customers.email",
            r"how likely .*recommend": "feedback.nps",
            r"how satisfied|overall satisfaction": "feedback.csat",
            r"comment|anything else|suggestion": "feedback.comment",
        },
        id_prefix="TF-",
        format_note="Typeform responses CSV: #, one column per question, Start/Submit Date (UTC), Network ID",
    ),
    Source(
        key="wjx",
        title="问卷星 survey answers (wjx.cn)",
        menu="问卷星 → 分析&下载 → 查看下载答卷 → 下载答卷数据 → 按选项文本 (CSV)",
        signature=("序号", "提交答卷时间", "所用时间", "来源", "来自IP"),
        columns={"提交答卷时间": "feedback.submitted_at"},
        questions={
            r"邮箱|e-?mail": "customers.email",
            r"推荐.*可能|可能.*推荐": "feedback.nps",
            r"满意": "feedback.csat",
            r"建议|意见|评论": "feedback.comment",
        },
        id_prefix="WJX-",
        empty=("(空)",),
        format_note="问卷星 answer download: 序号, 提交答卷时间, 所用时间, 来源, 来源详情, 来自IP, then the questions",
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


def _fills(source: Source) -> str:
    """The store tables a source's export fills, in plain words."""
    tables = {t.split(".")[0] for t in [*source.columns.values(), *source.questions.values(), *source.constants]}
    if any(t.startswith("order_items.") for t in source.columns.values()):
        tables |= {"products"}
    order = ("customers", "products", "orders", "order_items", "feedback", "exchange_rates")
    return ", ".join(t for t in order if t in tables)


def bringing_data_in_markdown() -> str:
    """``docs/bringing-your-data-in.md``, generated from :data:`SOURCES` (a test keeps it in sync;
    ``python -m crm_helpers.ingest.sources`` rewrites it)."""
    lines = [
        "# Bringing your data in",
        "",
        "Generated from `src/crm_helpers/ingest/sources.py` by `python -m crm_helpers.ingest.sources`; do not edit by hand.",
        "",
        "Export from the tool as it comes, then:",
        "",
        "```sh",
        "crm import --dry-run ~/Downloads/orders_export.csv   # what it recognised, which column goes where, the counts",
        "crm import ~/Downloads/orders_export.csv             # the same, written",
        "crm import --skip-bad-rows ~/Downloads/orders_export.csv  # good rows written; bad ones, with the other",
        "                                                      # lines of their orders and the reasons, to",
        "                                                      # orders_export.rejects.csv",
        "crm undo-import BATCH                                 # takes the whole export back",
        "```",
        "",
        "or drop the file into `data/inbox/` (any name) and run the report, which imports the inbox first.",
        "The inbox imports each file once: one whose rows were all in the store already (last month's export",
        "downloaded again) is remembered as checked and left alone, until the import that brought its rows",
        "is undone.",
        "The workbook recognises the tool from the file's column headers, also when the header comes after",
        "a few lines of account details (payment bills). One export fills every table it knows about:",
        "an orders export with line items writes the customers, the products, the orders and their items,",
        "in one step that `crm undo-import` takes back whole. Importing the same file again changes nothing",
        "(and leaves nothing to undo: it says \"nothing changed\"); next month's export adds and updates what",
        "changed.",
        "",
        "## What the import does with your data",
        "",
        "- **Customers** are matched by e-mail (capitals or not) to those already in the store, whichever",
        "  tool they came from first; without an e-mail, by the customer id the tool gives (Stripe `cus_…`,",
        "  Etsy buyer, Taobao 买家会员名, …). An empty cell never overwrites what the store knows.",
        "- **Guest orders** (no e-mail, no customer id) are kept, each for a customer of its own tagged",
        "  `guest`, and the summary counts them.",
        "- **Orders written on several lines** (Shopify, Etsy items, Square item details, Taobao's 宝贝报表,",
        "  Douyin, invoice lines) become one order;",
        "  fields written on the first line only are carried to the others; the same product on several",
        "  lines of one order is added up. A large export is read 100,000 rows at a time (a million lines",
        "  need well under a gigabyte of memory), so the lines of one order must be next to each other, as",
        "  every tool writes them: an order whose lines lie further apart is refused, naming it.",
        "- **Money as it moves**: a partial refund stays a paid order with its `refunded_amount`; a refund or",
        "  credit note (a negative amount, an invoice number starting with C in the invoice-lines layout, a",
        "  PayPal refund row) is money paid back, never revenue; failed or voided payments are `failed`;",
        "  cancelled orders are `cancelled`. Net revenue in every page is `amount − refunded_amount` of the",
        "  paid orders. A file without any status column is taken as paid, and the summary says so.",
        "- **Currencies** are kept as the tool wrote them, one per order. The money figures are in the",
        "  store's currency (that of most paid orders). Orders in another currency are converted with the",
        "  exchange rate of their date (the last one published on or before it) once you import the ECB",
        "  reference rates (`eurofxref-hist.csv`, below) with `crm import FILE`; until then they are left",
        "  out of the money figures, never added up as if one currency, and `crm import` says how many",
        "  orders in which currency are left out.",
        "- **Dates**: a timestamp with a time-zone suffix (`2026-05-01 23:30:00 -0500`) gives the date as the",
        "  shop saw it (1 May), as does a 12-hour clock with a zone name (Google Forms' download:",
        "  `2026/06/14 9:12:03 AM GMT+2` is 14 June, 09:12). Day/month order is the tool's own (US tools",
        "  write months first).",
        "- **An empty cell never overwrites** what the store knows, in a tool's export as in",
        "  `crm import TABLE FILE`: `customer_id,name,email,phone` / `C00001,Zoe,,` keeps Zoe's stored",
        "  e-mail and phone; an orders file without refunds keeps the refunds stored (a new order has none).",
        "- **Excel guards** that keep a phone or an id as text (`'+1 514 555 0101`, `=\"0012345\"`) are",
        "  taken off: the store holds `+1 514 555 0101` and `0012345`.",
        "- **Survey answers** never submitted (a Typeform partial response: no submit date) are left out",
        "  and counted in the summary; the person is not added for them. An answer that names nobody (a",
        "  问卷星 answer with the e-mail question left empty) is kept as anonymous feedback: it counts in",
        "  NPS and CSAT, is linked to no customer and never puts anyone on the call list.",
        "- **Line discounts** (Shopify `Lineitem discount`): an item's unit price is what was paid per unit",
        "  after them, and the discount is kept with the item (`order_items.discount`); the product keeps",
        "  its list price.",
        "- **Long order numbers** (Taobao's and Douyin's 19 digits) stay exact text.",
        "- **Rows that are not sales** (your own spending in a WeChat bill, PayPal withdrawals and fees)",
        "  are left out and counted in the summary.",
        "- **Refunds wherever the tool records them**: a refunded-amount column, an adjusted order total",
        "  (Etsy: the order's total less what was paid back), a partial refund in the status",
        "  (`已退款(￥50.00)`), an after-sale status (Douyin `售后状态` 退款成功: that line's money; Taobao's",
        "  宝贝报表 `退款状态` 退款成功: its `退款金额`; 退款关闭 is a refund asked for and closed, nothing paid",
        "  back), a refund row pointing at its payment (PayPal's `Reference Txn ID`, Alipay's 退款成功 row,",
        "  Square's rows of Event Type Refund with the payment's Transaction ID, a refund by amount",
        "  included). Etsy's `Status` column is read (empty or Completed: paid). A refund of a",
        "  payment imported from an earlier file updates that order's refunded amount, never a new order",
        "  or customer; a refund of a payment that is nowhere is a bad row (import the older file first).",
        "- **Whose money it is**: the shop's own account (the PayPal address that receives the payments,",
        "  the bill's owner named above a WeChat or Alipay bill's header) is never a customer, and money the",
        "  owner moves to themselves is not a sale; encrypted or masked buyer fields (`##…`, `$$…`, `138****0000`) are no",
        "  identity, so each such order is a guest of its own; money a customer sends outside a checkout",
        "  (a PayPal General Payment received) is a sale, and the summary says so. An item export after",
        "  its tool's order export (Etsy's Order Items after its Orders, Square's Item Details after its",
        "  Transactions, Taobao's 宝贝报表 after its 订单报表) fills the items and products and leaves each",
        "  order's amount (what the buyer paid, shipping, tax and tip included) and buyer as the order",
        "  export gave them; the refunds it records (Taobao's 退款状态) are added to those orders.",
        "",
        "## The balance line",
        "",
        "Every import of an export with money, and every orders file imported into the orders table",
        "(`crm import orders FILE`), with its `--dry-run`, the inbox and page 01, ends with a balance per",
        "currency, for example:",
        "",
        "```text",
        "balance CNY: the file's money 370.32 = paid 99.00 + refunded 268.00 + failed/cancelled 0.00 + not sales 3.32 (1 支出); of it paid back 268.00",
        "```",
        "",
        "- **the file's money**: the amount of every row of the file (a refund row that pays back another",
        "  row apart, since its money is the other row's);",
        "- **paid**: the paid orders stored, less what was paid back; **refunded**: what the stored orders",
        "  say was paid back; **failed/cancelled**: failed, cancelled and pending orders;",
        "- **not sales**: the rows left out as not sales, each kind with its count (your own spending,",
        "  withdrawals); **erased people**: rows of people you erased (`crm forget`); **rejected**: bad",
        "  rows left out with `--skip-bad-rows`; **lines of orders stored from the order export**: Etsy",
        "  order items whose order's amount the Orders export gives;",
        "- **paid back**: the refunds the file records, read from the file's own cells (any column whose",
        "  header says refund, adjusted totals, refund statuses, refund rows; not a refund whose",
        "  after-sale status says it was closed); each must be on a stored order (or on a payment",
        "  imported earlier). The refunds an item export records for orders of the order export must",
        "  be on those orders too.",
        "",
        "When the two sides differ, the import is refused, nothing is written, and the message names the",
        "difference: the file holds money the import would not store as the tool says (a refund column",
        "the tool renamed, a layout this workbook does not know yet). Check the export against the tool;",
        "`--skip-bad-rows` imports it anyway with the difference listed. The balance is kept with the",
        "import batch (`import_log.balance`), so it can be looked up later.",
        "",
        "An orders file in the workbook's own columns balances the same way: its money is the `amount` of",
        "every row (an order written on several rows once), its refunds what its `refunded_amount` or any",
        "other refund column says, a negative amount, and the whole amount of a `refunded` order that says",
        "nothing of how much. A refund column under a name the import does not read (`Money Refunded`,",
        "say) is refused by the balance: map it with `--map 'Money Refunded=refunded_amount'`.",
        "",
        "## The exports recognised",
        "",
        "| tool and export | where to find it in the tool | fills |",
        "|---|---|---|",
    ]
    for source in SOURCES:
        lines.append(f"| {source.title} | {source.menu} | {_fills(source)} |")
    lines += [
        "",
        "## Any other file",
        "",
        "Name the table it belongs to and, for headers the workbook cannot guess, say where each goes:",
        "",
        "```sh",
        "crm import orders invoices.csv --map \"Beleg=order_id\" --map \"Brutto=amount\"",
        "```",
        "",
        "The mapping is kept for that file layout (its headers), so next month's file of the same layout",
        "imports with `crm import invoices_2026-11.csv` alone, and the inbox recognises it too. Common",
        "headers, English and Chinese (`E-mail`, `Order Date`, `Total`, `姓名`, `邮箱`, `订单号`, `金额` …),",
        "need no mapping. The store's columns are listed in `docs/data-model.md`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    from crm_helpers.store.config import PROJECT_ROOT
    from crm_helpers.store.files import write_text

    target = PROJECT_ROOT / "docs" / "bringing-your-data-in.md"
    write_text(target, bringing_data_in_markdown(), file_mode=0o644)  # a document of the repository
    print(f"wrote {target}")
