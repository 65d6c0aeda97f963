"""The hub store's tables for receipts and reconciliation (回款 / 对账, issue 5).

Kept apart from ``hub/model.py`` but on the same ``metadata`` (``hub.model`` imports this
module at its end, so ``create_all`` makes these tables too). Money is integer fen (分)
everywhere: sums and comparisons never drift, and a yuan amount is ``fen / 100`` exactly.
"""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime, Float, Index, Integer, String, Table, Text

from hub.model import metadata

#: One receipt (收款): a bank statement line or a U8 收款单, whatever its state. ``open_fen``
#: is what still needs allocating (a U8 收款单's unsettled remainder, iRAmt_s); ``status``:
#: open (to match) | posted (allocated, maybe with credit) | exception (in the finance queue)
#: | settled_in_erp (finance already wrote it off in the ERP: nothing to do).
receipt = Table(
    "receipt", metadata,
    Column("hub_id", String(40), primary_key=True),
    Column("source", String(20), nullable=False),           # bank | the ERP seat's name (u8)
    Column("native_key", String(200), nullable=False),
    Column("receipt_no", String(100)),                      # what finance reads: U8 cVouchID, bank serial
    Column("customer_code", String(40), index=True),        # U8 cCusCode once known
    Column("customer_by", String(40)),                      # u8 | account | name | reference | finance
    Column("payer_name", Text),
    Column("payer_account", String(60), index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("open_fen", BigInteger, nullable=False),
    Column("credit_fen", BigInteger, default=0),            # over-payment kept as customer credit
    Column("value_date", Date),
    Column("memo", Text),
    Column("bank", String(20)),
    Column("our_account", String(60)),
    Column("settlement", String(20)),                       # U8 cSSCode / 电汇
    Column("file_sha256", String(64)),
    Column("line_no", Integer),
    Column("status", String(20), nullable=False),
    Column("rule", String(40)),
    Column("confidence", Float),
    Column("content_hash", String(64)),
    Column("first_run_id", String(250)),
    Column("run_id", String(250)),
    Column("posted_run_id", String(250)),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Index("ux_receipt_native", "source", "native_key", unique=True),
    Index("ix_receipt_status", "status"),
)

#: What a receipt can pay: a U8 sales invoice (its open remainder) or the part of an order's
#: payment plan not invoiced yet (a prepayment target). ``refs`` are the normalised document
#: numbers that identify it in a bank memo ("|"-joined: invoice no, order no, contract no).
open_item = Table(
    "open_item", metadata,
    Column("item_key", String(120), primary_key=True),      # invoice:<cSBVCode> | order:<order no>
    Column("kind", String(20), nullable=False),
    Column("doc_no", String(100), nullable=False),
    Column("native_key", String(100)),                      # SBVID
    Column("customer_code", String(40), index=True),
    Column("crm_account_id", String(40)),
    Column("order_no", String(100), index=True),
    Column("contract_no", String(100)),
    Column("refs", Text),
    Column("amount_fen", BigInteger, nullable=False),
    # the ERP's own settled amount now (U8 iMoneySum); stored under its first name, so stores made
    # before the ERP became a role keep working (no migration): code says erp_settled_fen
    Column("u8_settled_fen", BigInteger, default=0, key="erp_settled_fen"),
    Column("baseline_settled_fen", BigInteger, default=0),  # ... when the hub first saw the item
    Column("doc_date", Date),
    Column("due_date", Date),
    Column("content_hash", String(64)),
    Column("source_version", String(100)),
    Column("run_id", String(250)),
    Column("updated_at", DateTime(timezone=True)),
)

#: One piece of a receipt applied to an item (or kept as credit: kind = credit, item_key =
#: credit:<customer>). Keyed deterministically, so posting twice is one row.
allocation = Table(
    "receipt_allocation", metadata,
    Column("alloc_id", String(40), primary_key=True),
    Column("receipt_hub_id", String(40), nullable=False, index=True),
    Column("item_key", String(120), nullable=False, index=True),
    Column("kind", String(20), nullable=False),             # invoice | order | credit
    Column("customer_code", String(40)),
    Column("amount_fen", BigInteger, nullable=False),
    Column("writeoff_fen", BigInteger, default=0),          # bank fee written off with the item
    Column("rule", String(40)),
    Column("confidence", Float),
    Column("evidence", JSON),
    Column("decided_by", String(100)),                      # auto | finance:<who>
    Column("seq", BigInteger),                              # posting order (plan instalments fill by it)
    Column("run_id", String(250)),
    Column("posted_at", DateTime(timezone=True)),
)

#: 回款计划 instalments as the CRM holds them, plus what the hub computed for them.
payment_plan = Table(
    "payment_plan", metadata,
    Column("crm_id", String(40), primary_key=True),
    Column("account_id", String(40)),
    Column("customer_code", String(40)),
    Column("order_no", String(100), index=True),
    Column("contract_no", String(100)),
    Column("instalment", Integer),
    Column("due_date", Date),
    Column("amount_fen", BigInteger, nullable=False),
    Column("received_fen", BigInteger),                     # as the CRM holds it
    Column("status_text", String(20)),
    Column("overdue", Integer),
    Column("content_hash", String(64)),
    Column("source_version", String(100)),
    Column("run_id", String(250)),
    Column("updated_at", DateTime(timezone=True)),
)

#: Bank accounts seen paying for a customer (U8 客户档案 bank account, CRM invoicing account,
#: receipts the hub posted, finance's reassignments). Two customers on one account = no evidence.
payer_account = Table(
    "payer_account", metadata,
    Column("account_no", String(60), primary_key=True),
    Column("customer_code", String(40), primary_key=True),
    Column("source", String(20), nullable=False),
    Column("seen_at", DateTime(timezone=True)),
)

#: Names a customer is known by (U8 name, CRM names, registry name) as company name keys.
payer_name = Table(
    "payer_name", metadata,
    Column("name_key", String(200), primary_key=True),
    Column("customer_code", String(40), primary_key=True),
    Column("name", Text),
    Column("source", String(20)),
)

#: The finance exception queue: one row per receipt the hub did not post, with the reason
#: finance can act on, what the hub proposes and the candidates it weighed.
recon_exception = Table(
    "recon_exception", metadata,
    Column("receipt_hub_id", String(40), primary_key=True),
    Column("status", String(20), nullable=False),           # open | decided | resolved
    Column("reason_code", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("customer_code", String(40)),
    Column("proposal", JSON),
    Column("candidates", JSON),
    Column("confidence", Float),
    Column("first_run_id", String(250)),
    Column("last_run_id", String(250)),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Index("ix_recon_exception_status", "status", "reason_code"),
)

#: Finance's decisions on exceptions (accept the proposal, reject, reassign to a customer and
#: items). They stick: every run applies the latest decision per receipt before matching.
recon_decision = Table(
    "recon_decision", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("receipt_hub_id", String(40), nullable=False, index=True),
    Column("action", String(20), nullable=False),           # accept | reject | reassign
    Column("customer_code", String(40)),
    Column("item_keys", JSON),
    Column("proposal", JSON),                               # the proposal as finance saw it (accept)
    Column("decided_by", String(100), nullable=False),
    Column("comment", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("status", String(20), nullable=False),           # active | applied | superseded
)

#: Bank statement files: each content (sha256) is loaded once, whatever its name or how often
#: it is dropped. ``status``: staged (read by a run) | loaded (its receipts are stored).
bank_file = Table(
    "bank_file", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("file_name", Text, nullable=False),
    Column("layout", String(40)),
    Column("lines", Integer),
    Column("status", String(20), nullable=False),
    Column("first_run_id", String(250)),
    Column("loaded_run_id", String(250)),
    Column("first_seen_at", DateTime(timezone=True)),
    Column("loaded_at", DateTime(timezone=True)),
    Column("archived_to", Text),
)
