"""Delivery of posted receipts: the ERP's receipt document with the write-off link (U8 收款单),
CRM 回款 records and plan status, and the finance workbook.

Every write is idempotent: the ERP's add carries the receipt's hub id as its idempotency key
(U8 ``biz_id``: a repeat answers the 收款单 it made), a CRM 回款 record is looked up by its
natural key (the mapping's ``natural_key``, ``hubId__c``) before a create, a plan is patched
only when what the CRM holds differs from what the hub computed. The outbox (``receipt`` →
the ERP seat / ``crm``) holds what still has to go; each chunk's outcome is committed before
the next, so a kill mid-way redoes at most one chunk, harmlessly.
"""
from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, select, update

from flows import receipts_book as book, receipts_outcomes, receipts_plans as plans
from flows import roles
from flows.ledger import Ledger, Written
from flows.receipts_sources import FLOW, TO_CRM_APPLICATION, TO_CRM_PLAN, as_of, crm, erp
from flows.steps import quarantine_errors, write_in_chunks
from hub import config, model, outbox, receipts_model as rm, xref
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import frame_records, select_in
from mappings import engine
from quality.reconcile import queue, workbook as wb
from quality.reconcile.amounts import yuan

log = logging.getLogger("flows.receipts")


def _text(fen: int) -> str:
    return format(yuan(int(fen)), "f")


def _posted(conn, hub_ids: list[str]) -> pd.DataFrame:
    return select_in(conn, rm.receipt, "hub_id", hub_ids)


def _json_numbers(record: dict[str, Any], spec) -> dict[str, Any]:
    """The spec's decimal fields as JSON numbers for the CRM: a two-decimal yuan amount below 2^53
    fen survives float's shortest repr exactly (the value on the wire is the decimal text)."""
    for rule in spec.fields:
        if rule.type == "decimal" and isinstance(record.get(rule.target), Decimal):
            record[rule.target] = float(record[rule.target])
    return record


def _keys_in(entity: str, target: str):
    """The ledger's ``on_ok`` of a write whose answer the hub keeps only as a key: xref hub id →
    the target's native key."""
    def save(conn, ok: Written) -> None:
        xref.save(conn, entity, target, pd.DataFrame({
            "native_key": [res.native_key for _, res in ok], "hub_id": [r["_key"] for r, _ in ok],
            "native_version": None, "content_hash": None}))
    return save


# --- the ERP -------------------------------------------------------------------------------------

def to_erp(ctx: StepContext) -> StepCounts:
    """One receipt document per posted bank receipt (U8 收款单: accept/add, biz_id = hub id); its
    write-off link (U8: define11) carries the invoices it writes off and how much of each."""
    adapter = erp()
    target = adapter.system
    with ctx.engine.begin() as conn:
        todo = outbox.ids(conn, "receipt", target)
        if not todo:
            return StepCounts()
        rec = _posted(conn, todo)
        allocs = select_in(conn, rm.allocation, "receipt_hub_id", todo, columns=["receipt_hub_id", "item_key", "kind",
                                                                                  "amount_fen", "seq"])
        docs = select_in(conn, rm.open_item, "item_key", allocs["item_key"].tolist(), columns=["item_key", "doc_no"])
    counts = StepCounts(read=len(rec))
    doc_of = dict(zip(docs["item_key"], docs["doc_no"])) if len(docs) else {}
    invoices = allocs[allocs["kind"] == "invoice"].sort_values("seq")
    link = invoices.groupby("receipt_hub_id").apply(
        lambda g: ";".join(f"{doc_of.get(k, k)}={_text(a)}" for k, a in zip(g["item_key"], g["amount_fen"])),
        include_groups=False) if len(invoices) else pd.Series(dtype=object)
    invoiced = invoices.groupby("receipt_hub_id")["amount_fen"].sum().to_dict() if len(invoices) else {}
    waiting = rec[rec["customer_code"].isna()]
    rec = rec[rec["customer_code"].notna()].reset_index(drop=True)
    frame = pd.DataFrame({
        "hub_id": rec["hub_id"], "value_date": rec["value_date"].astype(str), "customer_code": rec["customer_code"],
        "period": rec["value_date"].astype(str).str.slice(5, 7),  # 期间: the month of the voucher date
        "amount_text": rec["amount_fen"].map(_text),
        "digest": ("银行收款 " + rec["bank"].fillna("") + " " + rec["receipt_no"].fillna("") + " "
                   + rec["memo"].fillna("")).str.slice(0, 120),
        "payer_name": rec["payer_name"], "payer_account": rec["payer_account"],
        "writeoff_link": rec["hub_id"].map(link)})
    spec = engine.load_spec(adapter.mapping("receipt.out"))
    mapped = engine.apply(spec, frame)
    with ctx.engine.begin() as conn:
        if len(waiting):
            outbox.mark(conn, "receipt", target, waiting["hub_id"].tolist(), outbox.WAITING,
                        f"the receipt's customer is not known in {adapter.label}")
            counts.skipped += len(waiting)
        if len(mapped.errors):
            counts.quarantined += quarantine_errors(conn, ctx, FLOW, "receipt", target, "write", frame, mapped.errors,
                                                    "hub_id")
            outbox.mark(conn, "receipt", target, frame.loc[mapped.errors["_row"].unique(), "hub_id"].tolist(),
                        outbox.FAILED, f"mapping to the {adapter.label} 收款单 failed")
    body = mapped.frame
    amount_of = dict(zip(rec["hub_id"], rec["amount_fen"]))
    records = [adapter.receipt_document(h, {k: v for k, v in r.items() if v is not None}, int(amount_of[h]),
                                        int(invoiced.get(h, 0)))
               for r, h in zip(frame_records(body.drop(columns=["_row"])), frame.loc[body["_row"], "hub_id"])]

    ledger = Ledger(ctx, "receipt", target, on_ok=_keys_in("receipt", target), results="erp_results",
                    row=lambda r, res: {"hub_id": r["_key"], "erp_result": res.status, "erp_number": res.native_key},
                    refused=f"{adapter.label} refused the 收款单")
    if records:
        counts += write_in_chunks(ctx, adapter.connector(write=True), spec.stream, records, ledger.persist)
    return counts


# --- CRM -----------------------------------------------------------------------------------------

def to_crm(ctx: StepContext) -> StepCounts:
    """CRM 回款 records (销售易 paymentApplication) for posted receipts: one per allocation and plan
    instalment it pays; credits as 预收款."""
    seat, erp_system = roles.crm(), erp().system
    target = seat.system
    with ctx.engine.begin() as conn:
        todo = outbox.ids(conn, "receipt", target)
        if not todo:
            return StepCounts()
        rec = _posted(conn, todo).set_index("hub_id")
        items = book.items_frame(conn)
        plan_rows = plans.plans_frame(conn)
        pieces = plans.applications(conn, todo, items, plan_rows)
        if pieces.empty:
            outbox.mark(conn, "receipt", target, todo)
            return StepCounts()
        fallback = plans.crm_accounts_of(conn, pieces["customer_code"].dropna().unique().tolist(), erp_system, target)
    counts = StepCounts(read=len(pieces))
    pieces["account_id"] = pieces["account_id"].where(pieces["account_id"].notna(),
                                                      pieces["customer_code"].map(fallback))
    no_account = pieces["account_id"].isna()
    orphan = sorted(set(pieces.loc[no_account, "receipt_hub_id"]) - set(pieces.loc[~no_account, "receipt_hub_id"]))
    pieces = pieces[~no_account].reset_index(drop=True)
    frame = pd.DataFrame({
        "hub_id": [book.hub_id(a, p) for a, p in zip(pieces["alloc_id"], pieces["crm_id"].fillna(""))],
        "receipt_hub_id": pieces["receipt_hub_id"],
        "title": [f"{rec.at[h, 'receipt_no'] or h[:8]} {d if isinstance(d, str) else '预收款'}"
                  for h, d in zip(pieces["receipt_hub_id"], pieces["doc_no"])],
        "account_id": pieces["account_id"].astype(str), "plan_id": pieces["crm_id"],
        "order_no": pieces["order_no"], "invoice_no": pieces["doc_no"].where(pieces["kind"] == "invoice", None),
        "amount": pieces["amount_fen"].map(lambda f: yuan(int(f))),
        "value_date": [str(rec.at[h, "value_date"]) for h in pieces["receipt_hub_id"]],
        "payer_name": [rec.at[h, "payer_name"] for h in pieces["receipt_hub_id"]],
        "application_type": pieces["kind"].map({"credit": "预收款"}).fillna("回款"),
        "receipt_no": [rec.at[h, "receipt_no"] for h in pieces["receipt_hub_id"]]})
    spec = engine.load_spec(TO_CRM_APPLICATION)
    mapped = engine.apply(spec, frame)
    with ctx.engine.begin() as conn:
        if orphan:  # an ERP-only customer, or none known: nothing for sales to see
            outbox.mark(conn, "receipt", target, orphan, outbox.DONE, f"the customer has no {seat.label} account")
            counts.skipped += len(orphan)
        if len(mapped.errors):
            counts.quarantined += quarantine_errors(conn, ctx, FLOW, "receipt", target, "write", frame, mapped.errors,
                                                    "hub_id")
    body = mapped.frame
    records = []
    for r, (h, rh) in zip(frame_records(body.drop(columns=["_row"])), frame.loc[body["_row"], ["hub_id", "receipt_hub_id"]]
                          .itertuples(index=False)):
        r = _json_numbers({k: v for k, v in r.items() if v is not None}, spec)
        records.append({**r, "_key": h, "_receipt": rh})
    pieces_of: dict[str, set[str]] = frame.groupby("receipt_hub_id")["hub_id"].agg(set).to_dict()
    x = model.xref.c

    def settled(conn, ok: Written) -> list[str]:
        """The receipts every 回款 piece of which is now in the CRM (the outbox is per receipt)."""
        touched = sorted({r["_receipt"] for r, _ in ok})
        wanted = [p for h in touched for p in pieces_of[h]]
        have = set(select_in(conn, model.xref, "hub_id", wanted, where=[x.entity == "payment_application",
                                                                         x.system == target], columns=["hub_id"])["hub_id"])
        return [h for h in touched if pieces_of[h] <= have]

    ledger = Ledger(ctx, "receipt", target, on_ok=_keys_in("payment_application", target), done=settled,
                    refused=f"{seat.label} refused", outbox_key=lambda r: r["_receipt"],
                    failed_note=f"{seat.label} refused a 回款 record (see quarantine)")
    if records:
        counts += write_in_chunks(ctx, crm(), spec.stream, records, ledger.persist)
    return counts


def plans_to_crm(ctx: StepContext) -> StepCounts:
    """PATCH each plan instalment whose received amount, status or overdue flag in the CRM is not
    what the hub computed (as of ``HUB_RECEIPTS_AS_OF`` or today)."""
    with ctx.engine.begin() as conn:
        plan_rows = plans.plans_frame(conn)
        if plan_rows.empty:
            return StepCounts()
        status = plans.plan_status(plan_rows, book.items_frame(conn), as_of())
    same = ((status["received_fen"].fillna(-1).astype("int64") == status["new_received"])
            & (status["status_text"].fillna("") == status["new_status"])
            & (status["overdue"].fillna(-1).astype("int64") == status["new_overdue"]))
    todo = status[~same].reset_index(drop=True)
    counts = StepCounts(read=len(status), skipped=int(same.sum()))
    if todo.empty:
        return counts
    frame = pd.DataFrame({"received": todo["new_received"].map(lambda f: yuan(int(f))), "status_text": todo["new_status"],
                          "overdue": todo["new_overdue"], "overdue_days": todo["overdue_days"]})
    spec, seat = engine.load_spec(TO_CRM_PLAN), roles.crm()
    mapped = engine.apply(spec, frame)
    records = []
    for r, row in zip(frame_records(mapped.frame.drop(columns=["_row"])), mapped.frame["_row"]):
        records.append({**_json_numbers(r, spec), "id": todo.at[row, "crm_id"], "_key": todo.at[row, "crm_id"],
                        "_fen": int(todo.at[row, "new_received"]), "_status": todo.at[row, "new_status"],
                        "_overdue": int(todo.at[row, "new_overdue"])})
    p = rm.payment_plan.c

    def holds(conn, ok: Written) -> None:
        """The CRM now holds these values: its read-back of them is no change."""
        conn.execute(update(rm.payment_plan).where(p.crm_id == bindparam("k")).values(
            received_fen=bindparam("f"), status_text=bindparam("s"), overdue=bindparam("o")),
            [{"k": r["_key"], "f": r["_fen"], "s": r["_status"], "o": r["_overdue"]} for r, _ in ok])
        now = select_in(conn, rm.payment_plan, "crm_id", [r["_key"] for r, _ in ok])
        conn.execute(update(rm.payment_plan).where(p.crm_id == bindparam("k")).values(content_hash=bindparam("h")),
                     [{"k": k, "h": h} for k, h in zip(now["crm_id"], plans.plan_hash(now))])

    # plans have no outbox: the next run compares again, so a refused PATCH is simply sent again
    ledger = Ledger(ctx, "payment_plan", seat.system, on_ok=holds, done=False, failed_status=None,
                    refused=f"{seat.label} refused")
    counts += write_in_chunks(ctx, crm(), spec.stream, records, ledger.persist)
    return counts


# --- finance workbook ----------------------------------------------------------------------------

def workbook(ctx: StepContext) -> str:
    """var/reports/receipts__<run>.xlsx: matched, partial, exceptions, per-customer totals, overdue."""
    with ctx.engine.begin() as conn:
        a = rm.allocation.c
        allocs = pd.DataFrame([dict(r._mapping) for r in conn.execute(select(rm.allocation).where(a.run_id == ctx.run_id))])
        items = book.items_frame(conn)
        receipts = select_in(conn, rm.receipt, "hub_id", allocs["receipt_hub_id"].unique().tolist()) if len(allocs) \
            else pd.DataFrame()
        exceptions = queue.rows(conn)
        plan_rows = plans.plans_frame(conn)
        status = plans.plan_status(plan_rows, items, as_of()) if len(plan_rows) else pd.DataFrame()
        figures = receipts_outcomes.summary(conn, ctx.run_id)
    path = config.var_dir() / "reports" / wb.file_name(FLOW, ctx.run_id)
    wb.write(path, figures=figures, allocations=allocs, receipts=receipts, items=items, exceptions=exceptions,
             plans=status, as_of=as_of())
    log.info("finance workbook: %s", path)
    return str(path)
