"""The hub store's tables (SQLAlchemy Core): canonical entities and system tables.

Canonical entities keep the golden record; ``*_source`` tables keep each system's own
version mapped to the canonical shape, which survivorship merges into the golden one and
which tells whether a system already holds what the hub would write (echo suppression).
"""
from __future__ import annotations

from sqlalchemy import (
    JSON, BigInteger, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text,
)

metadata = MetaData()

#: Canonical customer fields (开票档案 invoicing profile and registry facts included).
CUSTOMER_FIELDS: tuple[str, ...] = (
    "name", "name_key", "short_name", "uscc", "phone", "mobile", "address", "contact_name",
    "email", "invoice_title", "tax_number", "invoice_address", "invoice_phone", "invoice_bank",
    "invoice_bank_account", "registry_status", "legal_representative", "registered_capital",
    "category_code", "region_code",
)

#: Canonical contact fields.
CONTACT_FIELDS: tuple[str, ...] = ("customer_hub_id", "name", "mobile", "phone", "email", "title")


def _field(name: str) -> Column:
    """Text, except references to another canonical record (``*_hub_id``): short and indexed."""
    if name.endswith("_hub_id"):
        return Column(name, String(40), index=True)
    return Column(name, Text)


def _canonical(name: str, fields: tuple[str, ...]) -> Table:
    return Table(
        name, metadata,
        Column("hub_id", String(40), primary_key=True),
        *[_field(f) for f in fields],
        Column("content_hash", String(64)),
        Column("created_at", DateTime(timezone=True)),
        Column("updated_at", DateTime(timezone=True)),
        Column("run_id", String(250)),
    )


#: Per-system extras a source record keeps beyond the canonical fields (the ERP code the
#: CRM holds, so the write-back knows whether the CRM already has it).
SOURCE_EXTRA: tuple[str, ...] = ("erp_code",)


def _source(name: str, fields: tuple[str, ...]) -> Table:
    return Table(
        name, metadata,
        Column("system", String(40), primary_key=True),
        Column("native_key", String(100), primary_key=True),
        Column("hub_id", String(40), index=True),
        *[_field(f) for f in (*fields, *SOURCE_EXTRA)],
        Column("source_updated_at", DateTime(timezone=True)),
        Column("content_hash", String(64)),
        Column("run_id", String(250)),
    )


customer = _canonical("customer", CUSTOMER_FIELDS)
customer_source = _source("customer_source", CUSTOMER_FIELDS)
contact = _canonical("contact", CONTACT_FIELDS)
contact_source = _source("contact_source", CONTACT_FIELDS)

#: Canonical product (存货 / 物料): mastered in the ERP. Money and rates are exact decimal text.
PRODUCT_FIELDS: tuple[str, ...] = ("code", "name", "spec", "uom", "tax_rate", "class_code", "list_price",
                                   "active", "sellable")
product = _canonical("product", PRODUCT_FIELDS)
product_source = _source("product_source", PRODUCT_FIELDS)

#: Canonical sales order and its lines (CRM → ERP). Quantities, prices and amounts are exact
#: decimal text (never float); ``total`` is the tax-inclusive order total the CRM shows.
#: ``source`` is the seat an order came from (None: the CRM; a shop's binding name), ``ship_to`` a shop
#: order's consignee exactly as the platform gave it (masked or its ciphertext, never decrypted here).
SALES_ORDER_FIELDS: tuple[str, ...] = ("order_no", "customer_key", "status", "order_date", "total",
                                       "currency", "memo", "owner_key", "erp_code", "source", "ship_to")
SALES_ORDER_LINE_FIELDS: tuple[str, ...] = ("order_hub_id", "native_key", "line_no", "product_key",
                                            "quantity", "unit_price", "discount", "tax_rate", "amount",
                                            "special_price_ref")
sales_order = _canonical("sales_order", SALES_ORDER_FIELDS)
sales_order_line = _canonical("sales_order_line", SALES_ORDER_LINE_FIELDS)

#: Canonical stock (现存量): one ERP stock row (U8 CurrentStock: warehouse, item, batch), quantities as
#: exact decimal text; what the CRM is shown is summed per product and warehouse (flows/stock.py).
STOCK_FIELDS: tuple[str, ...] = ("product_code", "warehouse_code", "batch", "on_hand", "reserved", "frozen",
                                 "available")
stock = _canonical("stock", STOCK_FIELDS)
stock_source = _source("stock_source", STOCK_FIELDS)

#: Canonical shipment (发货单) and its lines (ERP → CRM); a line points at the order line it ships.
SHIPMENT_FIELDS: tuple[str, ...] = ("code", "order_hub_id", "order_code", "customer_code", "ship_date",
                                    "carrier", "tracking_no", "is_return", "memo")
SHIPMENT_LINE_FIELDS: tuple[str, ...] = ("shipment_hub_id", "order_line_hub_id", "native_key", "line_no",
                                         "product_code", "quantity", "serial_numbers", "so_line_key")
shipment = _canonical("shipment", SHIPMENT_FIELDS)
shipment_line = _canonical("shipment_line", SHIPMENT_LINE_FIELDS)

#: One serial number on one delivery line (U8 DispatchLists.cInvSN split): the history an asset in
#: the CRM is derived from. A delivery re-read replaces its lines' rows; a return (红字发货单) is a row
#: with ``is_return`` set. ``asset_hub_id`` is the serial's asset, one per ERP product and serial.
asset_event = Table(
    "asset_event", metadata,
    Column("shipment_line_hub_id", String(40), primary_key=True),
    Column("serial", String(100), primary_key=True),
    Column("asset_hub_id", String(40), nullable=False),
    Column("product_code", String(60)),
    Column("shipment_hub_id", String(40), nullable=False),
    Column("order_hub_id", String(40)),
    Column("order_line_hub_id", String(40)),
    Column("ship_date", String(10)),
    Column("is_return", String(5)),
    Column("run_id", String(250)),
    Index("ix_asset_event_asset", "asset_hub_id"),
    Index("ix_asset_event_shipment", "shipment_hub_id"),
)

xref = Table(
    "xref", metadata,
    Column("entity", String(40), primary_key=True),
    Column("system", String(40), primary_key=True),
    Column("native_key", String(100), primary_key=True),
    Column("hub_id", String(40), nullable=False),
    Column("native_version", String(100)),
    Column("content_hash", String(64)),
    Column("synced_at", DateTime(timezone=True)),
    Index("ix_xref_hub", "entity", "hub_id", "system"),
)

watermark = Table(
    "watermark", metadata,
    Column("flow", String(100), primary_key=True),
    Column("stream", String(100), primary_key=True),
    Column("cursor", JSON),
    Column("updated_at", DateTime(timezone=True)),
)

#: A cursor a run has read up to but not yet committed (committed by the final step).
pending_watermark = Table(
    "pending_watermark", metadata,
    Column("run_id", String(250), primary_key=True),
    Column("flow", String(100), primary_key=True),
    Column("stream", String(100), primary_key=True),
    Column("cursor", JSON),
)

sync_run = Table(
    "sync_run", metadata,
    Column("run_id", String(250), primary_key=True),
    Column("flow", String(100), nullable=False, index=True),
    Column("status", String(20), nullable=False),  # running | success | failed
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("error_class", String(20)),
    Column("error_text", Text),
    Column("log_url", Text),
)

sync_step = Table(
    "sync_step", metadata,
    Column("run_id", String(250), primary_key=True),
    Column("step", String(40), primary_key=True),
    Column("flow", String(100), index=True),
    Column("status", String(20), nullable=False),
    Column("attempt", Integer, default=1),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("seconds", Float),
    Column("read", Integer, default=0),
    Column("mapped", Integer, default=0),
    Column("rejected", Integer, default=0),
    Column("merged", Integer, default=0),
    Column("written", Integer, default=0),
    Column("skipped", Integer, default=0),
    Column("quarantined", Integer, default=0),
    Column("error_class", String(20)),
    Column("error_text", Text),
)

quarantine = Table(
    "quarantine", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow", String(100), nullable=False),
    Column("entity", String(40), nullable=False),
    Column("system", String(40), nullable=False),
    Column("stage", String(40), nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("payload_hash", String(64), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("payload", JSON),
    Column("status", String(20), nullable=False),  # open | replay_pending | replayed | resolved | ignored
    Column("first_run_id", String(250)),
    Column("last_run_id", String(250), index=True),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("comment", Text),
    Index("ux_quarantine_record", "flow", "system", "stage", "record_key", "payload_hash", unique=True),
    Index("ix_quarantine_status", "flow", "status"),
)

#: Step outputs keyed by run id, so any step can be retried alone.
stage = Table(
    "stage", metadata,
    Column("run_id", String(250), primary_key=True),
    Column("step", String(40), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("system", String(40)),
    Column("record_key", String(200)),
    Column("payload", Text, nullable=False),
)

#: Transactional outbox: a golden record that changed waits here until every target
#: system holds it. Enqueued in the same transaction as the change, so a crash between
#: load and write-back loses nothing: the next run finds the entry still pending.
#: What the CRM account shows of why its customer cannot take orders (the tenant field
#: ``missing_for_orders`` of customer_to_crm_account.yaml), as the hub last wrote it: sales_orders
#: writes the field only when this changes (``shown`` "" once no order of it waits for readiness).
#: The hub's encrypted state (hub/vault.py): what a system hands out once, sealed with Airflow's fernet key.
vault = Table(
    "vault", metadata,
    Column("name", String(250), primary_key=True),
    Column("sealed", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True)),
)

#: One OA approval request per business object and version (flows/approvals.py): ``kind`` (special_price …),
#: ``subject`` what it is about (customer|product for a special price), ``version`` what was asked
#: (the price); ``state`` submitting | pending | approved | rejected | returned, ``superseded`` once a
#: newer version of the subject was asked for (its decision is recorded, never applied).
approval = Table(
    "approval", metadata,
    Column("kind", String(40), primary_key=True),
    Column("subject", String(200), primary_key=True),
    Column("version", String(60), primary_key=True),
    Column("system", String(40), nullable=False),
    Column("request_name", Text, nullable=False),
    Column("request_id", String(40)),
    Column("state", String(20), nullable=False),
    Column("superseded", String(5)),
    Column("facts", JSON),
    Column("node", Text),
    Column("approver", Text),
    Column("opinion", Text),
    Column("decided_on", String(10)),
    Column("valid_until", String(10)),
    Column("submitted_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("run_id", String(250)),
    Index("ix_approval_request", "system", "request_id"),
)

#: An OA's approval event as received (flows/oa_events.py): its key (the event's own id, else a SHA-256 of
#: the ciphertext) refuses a replay; polling the open requests stays the safety net.
oa_event = Table(
    "oa_event", metadata,
    Column("seat", String(100), primary_key=True),
    Column("event_key", String(100), primary_key=True),
    Column("instance_id", String(100)),
    Column("event_type", String(60)),
    Column("result", String(20)),
    Column("sent_at", String(40)),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

#: Every signed request on the dealer ordering channel (flows/dealer_orders.py), one row per nonce:
#: the primary key is what refuses a replay, and the row is the channel's intake log (what came,
#: what the hub answered, the order it became).
dealer_request = Table(
    "dealer_request", metadata,
    Column("seat", String(100), primary_key=True),
    Column("dealer", String(60), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("method", String(10), nullable=False),
    Column("path", Text, nullable=False),
    Column("order_no", String(120)),
    Column("hub_id", String(40)),
    Column("outcome", String(20)),       # accepted | changed | unchanged | refused | read
    Column("http_status", Integer),
    Column("detail", Text),
    Index("ix_dealer_request_order", "seat", "dealer", "order_no"),
)

crm_readiness = Table(
    "crm_readiness", metadata,
    Column("account_key", String(100), primary_key=True),
    Column("shown", Text),
    Column("run_id", String(250)),
    Column("updated_at", DateTime(timezone=True)),
)

outbox = Table(
    "outbox", metadata,
    Column("entity", String(40), primary_key=True),
    Column("hub_id", String(40), primary_key=True),
    Column("target", String(40), primary_key=True),
    Column("status", String(20), nullable=False),  # pending | done | failed
    Column("enqueued_run", String(250)),
    Column("updated_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Index("ix_outbox_pending", "entity", "target", "status"),
)

#: Business-registry answers (天眼查, 企查查): a lookup costs money, so each normalised query
#: is asked at most once per TTL, across runs. ``status``: ok | no_data | deferred (quota,
#: rate limit or outage: ``next_try`` says from when the next run asks again). A deferred
#: refresh keeps the last good ``answer``.
registry_cache = Table(
    "registry_cache", metadata,
    Column("provider", String(20), primary_key=True),
    Column("query_key", String(200), primary_key=True),
    Column("query_text", Text),
    Column("status", String(20), nullable=False),
    Column("answer", JSON),
    Column("reason", Text),
    Column("attempts", Integer, default=0),
    Column("fetched_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("next_try", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Index("ix_registry_cache_due", "provider", "status", "expires_at"),
)

#: Who did what to a quarantined record from the console or the CLI (replay, ignore), so
#: an operator's decision can be traced after the row's status has moved on.
quarantine_action = Table(
    "quarantine_action", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("quarantine_id", Integer, nullable=False, index=True),
    Column("action", String(20), nullable=False),  # replay | ignore
    Column("actor", String(200), nullable=False),
    Column("from_status", String(20)),
    Column("to_status", String(20)),
    Column("comment", Text),
    Column("at", DateTime(timezone=True)),
)

#: Alerts sent (failed run, reject rate, stale flow), so one event alerts once and a stale
#: flow is re-announced only after a quiet period.
alert_log = Table(
    "alert_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow", String(100), nullable=False),
    Column("kind", String(20), nullable=False),  # failed | reject_rate | stale
    Column("dedup_key", String(300), nullable=False, index=True),
    Column("run_id", String(250)),
    Column("title", Text),
    Column("channels", Text),  # channels that took the message, comma-separated
    Column("errors", Text),    # channels that refused it, redacted
    Column("sent_at", DateTime(timezone=True)),
)

#: Block keys of every source record, so an incoming record finds its candidates among all
#: stored records with a few indexed lookups instead of a scan (dedup is never O(n²)).
match_key = Table(
    "match_key", metadata,
    Column("entity", String(40), primary_key=True),
    Column("node", String(150), primary_key=True),   # "<system>:<native_key>"
    Column("rule", String(80), primary_key=True),
    Column("key", Text, nullable=False),
    Column("hub_id", String(40)),
    Index("ix_match_key_lookup", "entity", "rule", "key"),
)

#: Every dedup decision with its evidence: the model's (match / review / distinct) and a
#: reviewer's (merge / distinct), which overrides the model and sticks across runs.
match_decision = Table(
    "match_decision", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity", String(40), nullable=False),
    Column("left_node", String(150), nullable=False),
    Column("right_node", String(150), nullable=False),
    Column("source", String(20), nullable=False),     # model | reviewer
    Column("decision", String(20), nullable=False),   # match | review | distinct | merge
    Column("probability", Float),
    Column("evidence", JSON),
    Column("status", String(20), nullable=False),     # active | undone | decided
    Column("run_id", String(250)),
    Column("decided_by", String(100)),
    Column("decided_at", DateTime(timezone=True)),
    Column("comment", Text),
    Index("ux_match_decision", "entity", "left_node", "right_node", "source", unique=True),
    Index("ix_match_decision_queue", "entity", "decision", "status"),
)

#: The trained match model per entity (m, u, prior), reused by incremental runs.
match_model = Table(
    "match_model", metadata,
    Column("entity", String(40), primary_key=True),
    Column("params", JSON, nullable=False),
    Column("trained_at", DateTime(timezone=True)),
    Column("trained_on", Integer),
)

# Receipts and reconciliation tables (issue 5) live in their own module on this metadata.
from hub import receipts_model as _receipts_model  # noqa: E402,F401
# The shops' received push messages (issue 12) live in their own module on this metadata.
from hub import pushes as _pushes  # noqa: E402,F401
# The shops' completeness audit per window (issue 12) lives in its own module on this metadata.
from hub import shop_audit as _shop_audit  # noqa: E402,F401
