"""The receipts ledger in the hub store: what is open, who pays, and what the matcher decided.

``open_items`` computes each item's open amount set-based: the invoice total less the larger
of what the ERP says is settled and what it had settled when the hub first saw it plus what the
hub allocated since (the hub's own write-offs show up in the ERP later; counting the larger of
the two never counts one payment twice). ``persist`` stores a matcher result in one transaction:
allocations, receipt states, the exception queue, learned bank accounts, and the outbox.
"""
from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, func, select, update

from hub import outbox, receipts_model as rm
from hub.store import chunks, upsert, utcnow
from quality.reconcile import Result

NAMESPACE = uuid.UUID("6f1d3c52-58a4-4d8e-9b57-2f0d1a5c9e11")


def hub_id(*parts: Any) -> str:
    """A deterministic id: the same receipt (or allocation) always gets the same one."""
    return str(uuid.uuid5(NAMESPACE, "|".join(str(p) for p in parts)))


def allocated(conn) -> pd.DataFrame:
    """item_key → fen the hub allocated to it (money and written-off fees)."""
    a = rm.allocation.c
    rows = conn.execute(select(a.item_key, func.sum(a.amount_fen + func.coalesce(a.writeoff_fen, 0)))
                        .where(a.kind != "credit").group_by(a.item_key)).all()
    return pd.DataFrame(rows, columns=["item_key", "hub_fen"])


def items_frame(conn, since: date | None = None) -> pd.DataFrame:
    """Open items with their open amount, refs and dates (items dated before ``since`` that are
    fully settled are left out: no receipt can reach them any more)."""
    i = rm.open_item.c
    cols = [i.item_key, i.kind, i.doc_no, i.customer_code, i.order_no, i.contract_no, i.refs, i.amount_fen,
            i.erp_settled_fen, i.baseline_settled_fen, i.doc_date, i.due_date, i.crm_account_id]
    items = pd.DataFrame(conn.execute(select(*cols)).all(), columns=[c.key for c in cols])
    if items.empty:
        return items.assign(open_fen=pd.Series(dtype="int64"), hub_fen=pd.Series(dtype="int64"))
    items = items.merge(allocated(conn), on="item_key", how="left")
    items["hub_fen"] = items["hub_fen"].fillna(0).astype("int64")
    settled = pd.concat([items["erp_settled_fen"].fillna(0).astype("int64"),
                         items["baseline_settled_fen"].fillna(0).astype("int64") + items["hub_fen"]], axis=1).max(axis=1)
    items["open_fen"] = (items["amount_fen"].astype("int64") - settled).clip(lower=0)
    if since is not None:
        keep = (items["open_fen"] > 0) | (pd.to_datetime(items["doc_date"]) >= pd.Timestamp(since))
        items = items[keep]
    return items.reset_index(drop=True)


def matcher_items(items: pd.DataFrame) -> pd.DataFrame:
    """The engine's view of the items."""
    return pd.DataFrame({"item_id": items["item_key"], "kind": items["kind"], "customer": items["customer_code"],
                         "open_fen": items["open_fen"], "doc_date": items["doc_date"], "due_date": items["due_date"],
                         "refs": items["refs"]})


def receipts_to_match(conn) -> pd.DataFrame:
    r = rm.receipt.c
    cols = [r.hub_id, r.source, r.native_key, r.receipt_no, r.customer_code, r.payer_name, r.payer_account,
            r.amount_fen, r.open_fen, r.value_date, r.memo, r.status]
    return pd.DataFrame(conn.execute(select(*cols).where(r.status.in_(["open", "exception"]))).all(),
                        columns=[c.name for c in cols])


def matcher_receipts(receipts: pd.DataFrame, erp_source: str) -> pd.DataFrame:
    """The engine's view: a receipt of the ERP (source ``erp_source``: a U8 收款单) is matched for
    its unsettled remainder, with its customer."""
    return pd.DataFrame({"receipt_id": receipts["hub_id"], "amount_fen": receipts["open_fen"],
                         "value_date": receipts["value_date"], "memo": receipts["memo"],
                         "payer_name": receipts["payer_name"], "payer_account": receipts["payer_account"],
                         "customer": receipts["customer_code"].where(receipts["source"] == erp_source, None)})


def directory(conn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accounts: account, customer), (names: name_key, customer)."""
    a, n = rm.payer_account.c, rm.payer_name.c
    accounts = pd.DataFrame(conn.execute(select(a.account_no, a.customer_code)).all(), columns=["account", "customer"])
    names = pd.DataFrame(conn.execute(select(n.name_key, n.customer_code)).all(), columns=["name_key", "customer"])
    return accounts, names


def decisions(conn) -> pd.DataFrame:
    """Finance's latest active decision per receipt."""
    d = rm.recon_decision.c
    rows = pd.DataFrame([dict(r._mapping) for r in conn.execute(
        select(rm.recon_decision).where(d.status == "active").order_by(d.id))])
    if rows.empty:
        return pd.DataFrame(columns=["receipt_id", "action", "customer", "item_ids", "proposal", "by", "comment"])
    rows = rows.drop_duplicates("receipt_hub_id", keep="last")
    return pd.DataFrame({"receipt_id": rows["receipt_hub_id"], "action": rows["action"],
                         "customer": rows["customer_code"], "item_ids": rows["item_keys"],
                         "proposal": rows["proposal"], "by": rows["decided_by"], "comment": rows["comment"],
                         "decision_id": rows["id"]})


def possible_duplicates(conn, receipts: pd.DataFrame, customers: pd.Series, erp_source: str, erp_label: str,
                        days: int = 7) -> dict[str, str]:
    """Bank receipts that look like a receipt (收款单) finance already entered in the ERP (same
    customer and amount within ``days``): they are held, so one payment never becomes two."""
    bank = receipts.assign(customer=customers.to_numpy())
    bank = bank[(bank["source"] == "bank") & bank["customer"].notna()]
    if bank.empty:
        return {}
    r = rm.receipt.c
    entered = pd.DataFrame(conn.execute(select(r.receipt_no, r.customer_code, r.amount_fen, r.value_date).where(
        r.source == erp_source)).all(), columns=["erp_no", "customer", "amount_fen", "erp_date"])
    if entered.empty:
        return {}
    pairs = bank.merge(entered, on=["customer", "amount_fen"])
    gap = (pd.to_datetime(pairs["value_date"]) - pd.to_datetime(pairs["erp_date"])).abs()
    pairs = pairs[gap <= pd.Timedelta(days=days)]
    return {h: f"{erp_label} 收款单 {n}" for h, n in zip(pairs["hub_id"], pairs["erp_no"])}


# --- persisting a matcher result ---------------------------------------------------------------

def _update_receipts(conn, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    r = rm.receipt.c
    cols = [k for k in rows[0] if k != "hub_id"]
    stmt = update(rm.receipt).where(r.hub_id == bindparam("_h")).values(**{c: bindparam(c) for c in cols})
    conn.execute(stmt, [{"_h": row["hub_id"], **{c: row[c] for c in cols}} for row in rows])


def persist(conn, run_id: str, receipts: pd.DataFrame, result: Result, *, erp_target: str,
            crm_target: str) -> dict[str, Any]:
    """Store what the matcher decided; returns counts and the hub ids of posted receipts. The
    outbox sends every posted receipt to the CRM (``crm_target``), the bank's also to the ERP."""
    now = utcnow()
    source = dict(zip(receipts["hub_id"], receipts["source"]))
    out = result.receipts
    posted = out[out["status"] == "posted"]
    failed = out[out["status"] == "exception"]
    a = result.allocations
    last = conn.execute(select(func.max(rm.allocation.c.seq))).scalar() or 0
    def key(row) -> str:
        return row.item_id if isinstance(row.item_id, str) else f"credit:{row.customer}"

    alloc_rows = [{"alloc_id": hub_id(row.receipt_id, key(row)), "receipt_hub_id": row.receipt_id, "item_key": key(row),
                   "kind": row.kind, "customer_code": row.customer, "amount_fen": int(row.amount_fen),
                   "writeoff_fen": int(row.writeoff_fen or 0), "rule": row.rule, "confidence": float(row.confidence),
                   "evidence": row.evidence, "decided_by": "finance" if row.rule == "finance" else "auto",
                   "seq": last + n + 1, "run_id": run_id, "posted_at": now}
                  for n, row in enumerate(a.itertuples(index=False))]
    upsert(conn, rm.allocation, alloc_rows, keys=["alloc_id"], update=[])
    _update_receipts(conn, [{"hub_id": p.receipt_id, "status": "posted", "customer_code": p.customer,
                             "customer_by": p.customer_by, "rule": p.rule, "confidence": float(p.confidence),
                             "credit_fen": int(p.credit_fen or 0), "open_fen": 0, "posted_run_id": run_id,
                             "updated_at": now} for p in posted.itertuples(index=False)])
    _update_receipts(conn, [{"hub_id": f.receipt_id, "status": "exception", "customer_code": f.customer,
                             "customer_by": f.customer_by, "rule": None, "confidence": float(f.confidence or 0),
                             "updated_at": now} for f in failed.itertuples(index=False)])
    exc_rows = [{"receipt_hub_id": f.receipt_id, "status": "open", "reason_code": f.reason_code, "reason": f.reason,
                 "customer_code": f.customer, "proposal": f.proposal, "candidates": f.candidates,
                 "confidence": float(f.confidence or 0), "first_run_id": run_id, "last_run_id": run_id,
                 "created_at": now, "updated_at": now} for f in failed.itertuples(index=False)]
    upsert(conn, rm.recon_exception, exc_rows, keys=["receipt_hub_id"],
           update=["status", "reason_code", "reason", "customer_code", "proposal", "candidates", "confidence",
                   "last_run_id", "updated_at"])
    e, d = rm.recon_exception.c, rm.recon_decision.c
    for part in chunks(posted["receipt_id"].tolist()):
        conn.execute(update(rm.recon_exception).where(e.receipt_hub_id.in_(part)).values(
            status="resolved", updated_at=now, last_run_id=run_id))
        conn.execute(update(rm.recon_decision).where(d.receipt_hub_id.in_(part), d.status == "active").values(
            status="applied"))
    learned = [{"account_no": p.payer_account, "customer_code": p.customer, "source": "receipt", "seen_at": now}
               for p in posted.itertuples(index=False)
               if isinstance(p.payer_account, str) and isinstance(p.customer, str)
               and p.customer_by in ("source", "account", "name", "reference")]
    learned += [{"account_no": p.payer_account, "customer_code": p.customer, "source": "finance", "seen_at": now}
                for p in out.itertuples(index=False)
                if isinstance(p.payer_account, str) and isinstance(p.customer, str) and p.customer_by == "finance"]
    upsert(conn, rm.payer_account, list({(x["account_no"], x["customer_code"]): x for x in learned}.values()),
           keys=["account_no", "customer_code"], update=["seen_at"])
    ids = posted["receipt_id"].tolist()
    outbox.enqueue(conn, "receipt", run_id, ids, [crm_target])
    outbox.enqueue(conn, "receipt", run_id, [h for h in ids if source.get(h) == "bank"], [erp_target])
    return {"posted": ids, "exceptions": failed["receipt_id"].tolist()}


def window_start(receipts: pd.DataFrame, window_days: int) -> date | None:
    if receipts.empty:
        return None
    first = pd.to_datetime(receipts["value_date"]).min()
    return None if pd.isna(first) else (first - timedelta(days=window_days)).date()


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
