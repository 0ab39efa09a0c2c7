"""The data model: every table, column, key and allowed value of the store, in one place.

The store, the importer, the data-entry functions and ``docs/data-model.md`` all read
this module, so a rule is written once. Conventions:

- dates are ISO text ``YYYY-MM-DD``; timestamps are ISO text ``YYYY-MM-DD HH:MM:SS`` (local time);
- money is a plain number in the order's ``currency`` (default: the business currency);
  ``orders.amount`` is **gross revenue** (what the customer paid, before cost of goods);
  ``orders.refunded_amount`` what was paid back; :func:`crm_helpers.store.facts.net_revenue_sql` the net revenue, in the
  store's currency (:data:`crm_helpers.store.facts.STORE_CURRENCY_SQL`), converted with :data:`RATES` where an order's differs;
- booleans are stored as 0/1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["text", "integer", "real", "date", "datetime", "bool"]

SQL_TYPES: dict[str, type] = {
    "text": str,
    "integer": int,
    "real": float,
    "date": str,
    "datetime": str,
    "bool": int,
}


@dataclass(frozen=True)
class Column:
    """One column: its type, whether it is required, and the values it may hold."""

    name: str
    type: ColumnType
    description: str
    required: bool = False
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    references: str | None = None  # "table.column" for a foreign key
    personal: bool = False  # personal data: masked in shared exports, erased by `crm forget`


@dataclass(frozen=True)
class Table:
    """One table: its columns, natural key and the indexes the analyses need."""

    name: str
    description: str
    pk: str | tuple[str, ...]
    columns: tuple[Column, ...]
    indexes: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def pk_columns(self) -> tuple[str, ...]:
        return (self.pk,) if isinstance(self.pk, str) else self.pk

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


ORDER_STATUSES = ("paid", "refunded", "cancelled", "failed", "pending")
"""paid (revenue, less any partial refund); refunded (paid back whole, or a credit note);
cancelled (never paid); failed (a declined or voided payment); pending (not paid yet)."""
INTERACTION_CHANNELS = ("email", "call", "meeting", "chat", "social", "other")
CAMPAIGN_CHANNELS = ("email", "social", "content", "ads", "event", "referral", "other")
TICKET_CATEGORIES = ("question", "complaint", "request", "feedback")
TICKET_STATUSES = ("open", "pending", "closed")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
OPPORTUNITY_STAGES = ("lead", "qualified", "proposal", "negotiation", "won", "lost")
OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "customers",
            "One row per person or company that bought, asked or was contacted.",
            pk="customer_id",
            columns=(
                Column("customer_id", "text", "Your own stable id for the customer.", required=True),
                Column("name", "text", "Full name or company contact name.", personal=True),
                Column("email", "text", "E-mail address, stored trimmed and lower-cased; unique when present.", personal=True),
                Column("phone", "text", "Phone number as written.", personal=True),
                Column("company", "text", "Company name, if a business customer."),
                Column("country", "text", "Country."),
                Column("city", "text", "City."),
                Column("industry", "text", "Industry or customer type."),
                Column("acquisition_channel", "text", "How the customer found you (referral, ads, social, ...)."),
                Column("first_seen", "date", "Date of first contact or purchase."),
                Column("consent_marketing", "bool", "1 if the customer agreed to marketing e-mails."),
                Column("tags", "text", "Comma-separated free tags."),
                Column("notes", "text", "Free-text notes.", personal=True),
            ),
            indexes=(("first_seen",),),
        ),
        Table(
            "products",
            "What you sell: products, packages or services.",
            pk="product_id",
            columns=(
                Column("product_id", "text", "Product or service code.", required=True),
                Column("name", "text", "Product name.", required=True),
                Column("category", "text", "Product category."),
                Column("unit_price", "real", "List price per unit, gross.", minimum=0),
                Column("unit_cost", "real", "Cost per unit (goods, delivery).", minimum=0),
            ),
        ),
        Table(
            "campaigns",
            "Marketing actions with a cost: a newsletter, an ad run, an event.",
            pk="campaign_id",
            columns=(
                Column("campaign_id", "text", "Campaign code.", required=True),
                Column("name", "text", "Campaign name.", required=True),
                Column("channel", "text", "Marketing channel.", allowed=CAMPAIGN_CHANNELS),
                Column("start_date", "date", "First day of the campaign."),
                Column("end_date", "date", "Last day of the campaign."),
                Column("cost", "real", "Total cost of the campaign (money and paid tools).", minimum=0),
                Column("target_segment", "text", "Who it was aimed at (segment name or free text)."),
            ),
            indexes=(("start_date",),),
        ),
        Table(
            "orders",
            "One row per order (paid, refunded or cancelled).",
            pk="order_id",
            columns=(
                Column("order_id", "text", "Order or invoice number.", required=True),
                Column("customer_id", "text", "Who ordered.", required=True, references="customers.customer_id"),
                Column("order_date", "date", "Order date.", required=True),
                Column("amount", "real", "Gross revenue of the order (what the customer paid).", required=True, minimum=0),
                Column("refunded_amount", "real", "Part of the amount paid back (partial or whole refund); empty = 0.",
                       minimum=0),
                Column("cost", "real", "Cost of goods and delivery for the order, if known.", minimum=0),
                Column("currency", "text", "ISO currency code, e.g. EUR, USD, CNY."),
                Column("channel", "text", "Sales channel (shop, invoice, marketplace, ...)."),
                Column("campaign_id", "text", "Campaign the order came from, if known.", references="campaigns.campaign_id"),
                Column("status", "text", "paid, refunded, cancelled, failed (payment declined or voided) or pending.",
                       required=True, allowed=ORDER_STATUSES),
            ),
            indexes=(("customer_id",), ("order_date",), ("campaign_id",)),
        ),
        Table(
            "order_items",
            "The lines of an order.",
            pk=("order_id", "product_id"),
            columns=(
                Column("order_id", "text", "The order.", required=True, references="orders.order_id"),
                Column("product_id", "text", "The product.", required=True, references="products.product_id"),
                Column("quantity", "integer", "Units bought.", required=True, minimum=1),
                Column("unit_price", "real", "Price paid per unit, gross, after the line's discounts.", minimum=0),
                Column("discount", "real", "Money the line's discounts took off, all its units together (Shopify "
                       "Lineitem discount); empty when the file says nothing of one.", minimum=0),
            ),
            indexes=(("product_id",),),
        ),
        Table(
            "interactions",
            "Every touch: e-mails, calls, meetings, chats.",
            pk="interaction_id",
            columns=(
                Column("interaction_id", "text", "Id of the interaction.", required=True),
                Column("customer_id", "text", "Who it was with.", required=True, references="customers.customer_id"),
                Column("occurred_at", "datetime", "When it happened.", required=True),
                Column("channel", "text", "How.", required=True, allowed=INTERACTION_CHANNELS),
                Column("direction", "text", "inbound (they reached you) or outbound.", allowed=("inbound", "outbound")),
                Column("subject", "text", "Subject line or topic.", personal=True),
                Column("outcome", "text", "What came of it."),
                Column("notes", "text", "Free-text notes.", personal=True),
            ),
            indexes=(("customer_id",), ("occurred_at",)),
        ),
        Table(
            "campaign_contacts",
            "Who each campaign reached, and whether they responded.",
            pk=("campaign_id", "customer_id"),
            columns=(
                Column("campaign_id", "text", "The campaign.", required=True, references="campaigns.campaign_id"),
                Column("customer_id", "text", "The customer contacted.", required=True, references="customers.customer_id"),
                Column("contacted_at", "date", "When they were contacted.", required=True),
                Column("responded", "bool", "1 if they opened, clicked or replied."),
            ),
            indexes=(("customer_id",), ("contacted_at",)),
        ),
        Table(
            "feedback",
            "Survey answers: NPS, CSAT and item scores.",
            pk="feedback_id",
            columns=(
                Column("feedback_id", "text", "Id of the answer.", required=True),
                Column("customer_id", "text", "Who answered; empty for an anonymous answer (counted in NPS and "
                       "CSAT, linked to nobody).", references="customers.customer_id"),
                Column("submitted_at", "date", "Date of the answer.", required=True),
                Column("nps", "integer", "Likelihood to recommend, 0-10.", minimum=0, maximum=10),
                Column("csat", "integer", "Overall satisfaction, 1-5.", minimum=1, maximum=5),
                Column("score_quality", "integer", "Quality of the product or work, 1-5.", minimum=1, maximum=5),
                Column("score_delivery", "integer", "Delivery: speed and punctuality, 1-5.", minimum=1, maximum=5),
                Column("score_price", "integer", "Price for value, 1-5.", minimum=1, maximum=5),
                Column("score_service", "integer", "Service and communication, 1-5.", minimum=1, maximum=5),
                Column("comment", "text", "Free-text comment.", personal=True),
            ),
            indexes=(("customer_id",), ("submitted_at",)),
        ),
        Table(
            "tickets",
            "Service requests: questions, complaints, requests.",
            pk="ticket_id",
            columns=(
                Column("ticket_id", "text", "Ticket id.", required=True),
                Column("customer_id", "text", "Who asked.", required=True, references="customers.customer_id"),
                Column("opened_at", "datetime", "When the ticket was opened.", required=True),
                Column("first_response_at", "datetime", "When you first answered."),
                Column("closed_at", "datetime", "When it was closed."),
                Column("category", "text", "Kind of ticket.", allowed=TICKET_CATEGORIES),
                Column("priority", "text", "Priority.", allowed=TICKET_PRIORITIES),
                Column("status", "text", "open, pending or closed.", required=True, allowed=TICKET_STATUSES),
                Column("csat", "integer", "Satisfaction with the ticket's handling, 1-5.", minimum=1, maximum=5),
            ),
            indexes=(("customer_id",), ("opened_at",)),
        ),
        Table(
            "opportunities",
            "Possible deals, from first lead to won or lost.",
            pk="opportunity_id",
            columns=(
                Column("opportunity_id", "text", "Opportunity id.", required=True),
                Column("customer_id", "text", "Prospect or customer.", required=True, references="customers.customer_id"),
                Column("title", "text", "What the deal is about."),
                Column("source", "text", "Where the lead came from (referral, website, ...)."),
                Column("stage", "text", "Sales stage.", required=True, allowed=OPPORTUNITY_STAGES),
                Column("amount", "real", "Expected deal value, gross.", minimum=0),
                Column("probability", "real", "Your own estimate of the chance to win, 0-1.", minimum=0, maximum=1),
                Column("opened_at", "date", "When the opportunity was opened.", required=True),
                Column("expected_close", "date", "When you expect to close it."),
                Column("closed_at", "date", "When it was won or lost."),
                Column("last_activity_at", "date", "Last time it moved or was worked on."),
                Column("lost_reason", "text", "Why it was lost, if recorded."),
            ),
            indexes=(("customer_id",), ("stage",)),
        ),
    )
}

IMPORT_LOG = "import_log"
"""One row per import: file, sha256, table, counts, time (created by the store)."""

IMPORT_BATCHES = "import_batches"
"""Per import batch: inserted keys and previous values of updated rows (for undo)."""

SEGMENT_SNAPSHOTS = "segment_snapshots"
"""Each report month's segment per customer (written by the segmentation analysis)."""

ERASURE_LOG = "erasure_log"
"""One row per erasure by ``crm forget`` (or its re-application after a restore): time, pseudonym, rows changed."""

SUPPRESSION_LIST = "suppression_list"
"""One row per erased person: keyed hashes of their identifiers, never the identifiers (see ``suppression.py``)."""

SUPPRESSION_KEYS = "suppression_keys"
"""The random secrets the suppression list's hashes are keyed with."""

IMPORT_MAPPINGS = "import_mappings"
"""The ``--map`` given for a header signature, kept so that next month's export needs no flags."""

REPORT_FOLDERS = "report_folders"
"""Every folder a report pack of this store was rendered into (its ``share/`` copy inside), so that
``crm forget`` finds and rewrites every page and CSV that shows the person (``--out`` included)."""

LOAD_ORDER: tuple[str, ...] = tuple(TABLES)
"""Tables in an order that satisfies foreign keys (parents first)."""

# Kept out of TABLES: reference data, not facts of the business (the demo, erasure and exports
# iterate TABLES; rates have no demo rows and nothing personal).
RATES = Table(
    "exchange_rates",
    "Reference exchange rates, as the ECB publishes them: units of a currency per 1 EUR on a day.",
    pk=("currency", "rate_date"),
    columns=(
        Column("currency", "text", "ISO currency code of the rate, e.g. USD.", required=True),
        Column("rate_date", "date", "Day the rate was published for.", required=True),
        Column("per_eur", "real", "Units of the currency worth 1 EUR that day.", required=True, minimum=0),
    ),
)
"""Exchange rates (``crm import`` of the ECB's eurofxref CSV); :func:`crm_helpers.store.facts.net_revenue_sql` converts with them."""

TASKS = Table(
    "tasks",
    "The owner's to-dos with a due date (\u201ccall back Tuesday\u201d), from the desk.",
    pk="task_id",
    columns=(
        Column("task_id", "text", "Task id.", required=True),
        Column("due", "date", "The day it is due (the desk's Today shows it from that day on).", required=True),
        Column("note", "text", "What to do, in the owner's words.", personal=True),
        Column("customer_id", "text", "Whom it concerns, if anyone.", references="customers.customer_id"),
        Column("opportunity_id", "text", "The deal it concerns, if any.", references="opportunities.opportunity_id"),
        Column("ticket_id", "text", "The ticket it concerns, if any.", references="tickets.ticket_id"),
        Column("created_at", "datetime", "When it was written down.", required=True),
        Column("done_at", "datetime", "When it was done (blank: open)."),
        Column("snoozed", "integer", "How many times it was moved to a later day (\u201cSnooze\u201d).", minimum=0),
    ),
    indexes=(("customer_id",), ("due",)),
)
"""The desk's tasks (migration m008). Kept out of TABLES like :data:`RATES`: the owner's own notes,
not facts of the business that an export brings in; erasure (``crm forget``) clears their notes."""

RATES_BASE = "EUR"
"""The currency :data:`RATES` are quoted against (1 unit of it = ``per_eur`` units of the other)."""


def table(name: str) -> Table:
    """The :class:`Table` called ``name`` (one of TABLES, :data:`RATES` or :data:`TASKS`), or a ValueError
    listing the known tables."""
    if name == RATES.name:
        return RATES
    if name == TASKS.name:
        return TASKS
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; known tables: {', '.join(TABLES)}") from None


def personal_columns() -> dict[str, list[str]]:
    """``{table: [columns holding personal data]}``."""
    return {t.name: [c.name for c in t.columns if c.personal] for t in TABLES.values()}


def data_model_markdown() -> str:
    """``docs/data-model.md``, generated from this module (a test keeps the file in sync)."""
    lines = [
        "# Data model",
        "",
        "Generated from `src/crm_helpers/store/schema.py` by `crm schema-doc`; do not edit by hand.",
        "",
        "Dates are ISO `YYYY-MM-DD`, timestamps ISO `YYYY-MM-DD HH:MM:SS`, booleans 0/1.",
        "Money is in the order's currency; `orders.amount` is gross revenue; net revenue is",
        "`amount − refunded_amount` over paid orders, in the store's currency (that of most paid orders):",
        f"an order in another is converted with the `{RATES.name}` of its date (the latest earlier rate),",
        "and left out of the money figures, with a note, when there is none.",
        "Foreign keys are enforced; importing a row whose customer is unknown is rejected",
        "(or, with `--create-missing-customers`, creates a bare customer).",
        "",
    ]
    for t in (*TABLES.values(), RATES, TASKS):
        pk = ", ".join(t.pk_columns)
        lines += [f"## {t.name}", "", t.description, "", f"Key: `{pk}`", ""]
        lines += ["| column | type | required | allowed values | description |", "|---|---|---|---|---|"]
        for c in t.columns:
            allowed = ""
            if c.allowed:
                allowed = " \\| ".join(c.allowed)
            elif c.minimum is not None or c.maximum is not None:
                lo = "" if c.minimum is None else f"{c.minimum:g}"
                hi = "" if c.maximum is None else f"{c.maximum:g}"
                allowed = f"{lo} … {hi}".strip()
            ref = f" → `{c.references}`" if c.references else ""
            pii = " (personal data)" if c.personal else ""
            req = "yes" if c.required else ""
            lines.append(f"| `{c.name}` | {c.type} | {req} | {allowed} | {c.description}{ref}{pii} |")
        lines.append("")
    lines += [
        f"## {IMPORT_LOG}",
        "",
        "One row per import batch: `batch_id`, `file_name`, `sha256`, `table_name`, `inserted`, `updated`,",
        "`unchanged`, `rejected`, `imported_at`, `group_id` (the first batch of a several-table import:",
        "`crm undo-import` takes the whole group back).",
        "",
        f"## {IMPORT_BATCHES}",
        "",
        "What each import batch changed, for `crm undo-import`: `batch_id`, `table_name`, `inserted_keys`,",
        "`previous_rows`, `written_rows` (gzip-compressed JSON), `undone_at`.",
        "",
        f"## {IMPORT_MAPPINGS}",
        "",
        "The `--map` given once for a file layout: `signature` (the file's normalised headers), `target_table`,",
        "`mapping` (JSON), `saved_at`.",
        "",
        f"## {SEGMENT_SNAPSHOTS}",
        "",
        "Each report month's RFM segment per customer: `month` (YYYY-MM), `customer_id`, `segment`,",
        "`r_score`, `f_score`, `m_score`. Key: (`month`, `customer_id`).",
        "",
        f"## {ERASURE_LOG}",
        "",
        "One row per erasure by `crm forget` and per erasure re-applied after a restore: `id`, `erased_at`,",
        "`pseudonym` (the id that now stands for the person), `rows_changed`. No personal data.",
        "",
        f"## {REPORT_FOLDERS}",
        "",
        "Where the report packs of this store went, so that `crm forget` rewrites every page and CSV that shows",
        "the person: `path` (the pack's folder, absolute; its `share/` copy is inside), `period` (YYYY-MM),",
        "`rendered_at` (local time, ISO). Key: `path`.",
        "",
        f"## {SUPPRESSION_LIST}",
        "",
        "The people erased, so that imports, data entry and restores keep them erased: `pseudonym`, `erased_at`,",
        f"`key_id` (→ `{SUPPRESSION_KEYS}`), `digests` (JSON: HMAC-SHA256 of the customer id, the e-mail",
        "lower-cased and the phone in E.164 form, `+491526493665`), `rows_changed`. No identifier is stored in clear.",
        "",
    ]
    return "\n".join(lines)
