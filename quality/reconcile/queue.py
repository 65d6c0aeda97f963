"""The finance exception queue and finance's decisions, in the hub store.

A receipt the matcher did not post waits in ``recon_exception`` with its reason, proposal and
candidates. Finance decides (CLI, or the console's Finance exceptions page): **accept** the proposal as shown,
**reject** it (the receipt stays queued, never posted automatically, until reassigned), or
**reassign** it to a customer and, optionally, the items it pays. A decision is a row in
``recon_decision``; every run applies the latest active one per receipt before matching, so
it sticks across runs; posting marks it applied.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
from sqlalchemy import or_, select, update

from hub import receipts_model as rm
from hub.store import utcnow

ACTIONS = ("accept", "reject", "reassign")


class DecisionError(ValueError):
    """A decision that cannot be taken (unknown receipt, nothing to accept, unknown item)."""


def rows(conn, status: str = "open", reason: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """The queue joined with its receipts (status ``all`` for every row)."""
    e, r = rm.recon_exception.c, rm.receipt.c
    stmt = (select(e.receipt_hub_id, e.status, e.reason_code, e.reason, e.customer_code, e.proposal, e.candidates,
                   e.confidence, e.first_run_id, e.last_run_id, r.receipt_no, r.source, r.bank, r.payer_name,
                   r.payer_account, r.amount_fen, r.open_fen, r.value_date, r.memo)
            .join(rm.receipt, r.hub_id == e.receipt_hub_id))
    if status != "all":
        stmt = stmt.where(e.status == status)
    if reason:
        stmt = stmt.where(e.reason_code == reason)
    stmt = stmt.order_by(r.value_date, r.receipt_no)
    if limit:
        stmt = stmt.limit(limit)
    return pd.DataFrame([dict(x._mapping) for x in conn.execute(stmt)])


def find(conn, ident: str) -> dict[str, Any]:
    """The exception of a receipt named by hub id, a hub id prefix (8+ characters) or its number."""
    e, r = rm.recon_exception.c, rm.receipt.c
    cond = [e.receipt_hub_id == ident, r.receipt_no == ident]
    if len(ident) >= 8:
        cond.append(e.receipt_hub_id.like(ident.replace("%", "") + "%"))
    found = [dict(x._mapping) for x in conn.execute(
        select(rm.recon_exception, r.receipt_no, r.amount_fen, r.open_fen, r.payer_name, r.payer_account)
        .join(rm.receipt, r.hub_id == e.receipt_hub_id).where(or_(*cond)))]
    if not found:
        raise DecisionError(f"no queued receipt {ident!r}")
    if len(found) > 1:
        raise DecisionError(f"{ident!r} names {len(found)} receipts; give the hub id")
    return found[0]


def known_customer(conn, code: str) -> bool:
    """A U8 customer code the receipts flow has read (directory, bank accounts or open items)."""
    return any(conn.execute(select(t.c.customer_code).where(t.c.customer_code == code).limit(1)).first()
               for t in (rm.payer_name, rm.payer_account, rm.open_item))


def _items(conn, customer: str | None, names: Sequence[str]) -> list[str]:
    """Item keys from what finance typed: ``invoice:0312…``, ``order:SO…`` or a bare document number."""
    i = rm.open_item.c
    out = []
    for name in names:
        key = name if ":" in name else None
        stmt = select(i.item_key, i.customer_code).where(i.item_key == key) if key else \
            select(i.item_key, i.customer_code).where(i.doc_no == name)
        hits = conn.execute(stmt).all()
        if len(hits) != 1:
            raise DecisionError(f"item {name!r}: {'not found' if not hits else 'several match, give kind:number'}")
        if customer and hits[0][1] not in (customer, None):
            raise DecisionError(f"item {name!r} belongs to customer {hits[0][1]}, not {customer}")
        out.append(hits[0][0])
    return out


def decide(conn, ident: str, action: str, by: str, comment: str | None = None, customer: str | None = None,
           items: Sequence[str] = ()) -> dict[str, Any]:
    """Record finance's decision on one queued receipt; the next run applies it."""
    if action not in ACTIONS:
        raise DecisionError(f"action must be one of {ACTIONS}")
    exc = find(conn, ident)
    if exc["status"] == "resolved":
        raise DecisionError(f"receipt {exc['receipt_no']} is already posted")
    if action == "accept" and not exc["proposal"]:
        raise DecisionError(f"receipt {exc['receipt_no']} has no proposal to accept: reassign it")
    if action == "reject" and not comment:
        raise DecisionError("a rejection needs a --comment finance and auditors can read")
    if action == "reassign":
        if not customer:
            raise DecisionError("reassign needs --customer (the U8 customer code)")
        if not known_customer(conn, customer):
            raise DecisionError(f"customer {customer!r} is not a U8 customer the hub knows (give its U8 code, "
                                "cCusCode, as the receipts flow read it)")
        items = _items(conn, customer, items)
    d, e = rm.recon_decision.c, rm.recon_exception.c
    hid = exc["receipt_hub_id"]
    conn.execute(update(rm.recon_decision).where(d.receipt_hub_id == hid, d.status == "active").values(status="superseded"))
    row = {"receipt_hub_id": hid, "action": action, "customer_code": customer, "item_keys": list(items) or None,
           "proposal": exc["proposal"] if action == "accept" else None, "decided_by": by, "comment": comment,
           "decided_at": utcnow(), "status": "active"}
    conn.execute(rm.recon_decision.insert().values(**row))
    conn.execute(update(rm.recon_exception).where(e.receipt_hub_id == hid).values(status="decided",
                                                                                 updated_at=utcnow()))
    return {"receipt": exc["receipt_no"], "hub_id": hid, "action": action, "customer": customer,
            "items": list(items), "by": by}
