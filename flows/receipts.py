"""The receipts flow (回款 / 对账): bank statements and the ERP's receipts reconciled against the
ERP's invoices, orders and the CRM's payment plans, delivered to the CRM, to finance and to the ERP.
Under the default bindings: U8 收款单 and invoices, 销售易 plans and 回款 records.

extract (bank files new by content hash, the ERP's receipts / invoices / customers by
rowversion, CRM plans by updatedAt) → map (YAML specs; natural keys; echoes, debit lines and
receipts already settled in the ERP skipped) → validate (GX receipt suite) → resolve (hub ids,
unchanged records skipped) → load (receipts, open items, plans, payer directory, file ledger
and watermarks in one transaction) → publish (the tiered matcher over every open receipt;
allocations, the exception queue and the outbox in one transaction) → write back (the ERP's
receipt document with the write-off link for bank receipts, CRM 回款 records and plan status,
the finance workbook, the run's outcomes).

The bound ERP must support receipts (its card in connectors.SYSTEMS): the first step fails
with a ConfigurationError naming the bindings file where it does not (SAP's receivables come
with the finance issue), and dags/receipts.py offers no DAG there.

Each function is one step: it reads this run's input from the store and writes its output
there, so Airflow may retry any step alone.
"""
from __future__ import annotations

import logging

import pandas as pd

from flows import receipts_book as book, receipts_deliver as deliver, receipts_map, receipts_outcomes, settings
from flows import receipts_plans as plans
from flows import roles
from flows.receipts_sources import (FLOW, RECEIPT_STAGES, archive_loaded, erp, extract_bank, extract_crm,
                                    extract_erp, loaded_files, mark_loaded, system_of)
from hub import model, quarantine, receipts_model as rm, watermarks, xref
from hub.errors import DataError
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import frame_records, select_in, stage_read, stage_write, upsert, utcnow
from quality import gate
from quality.names import name_key
from quality.reconcile import Settings, payers, reconcile

log = logging.getLogger("flows.receipts")

RECEIPT_HASH = ["amount_fen", "open_fen", "value_date", "payer_name", "payer_account", "memo", "customer_code"]
ITEM_HASH = ["doc_no", "customer_code", "order_no", "doc_date", "amount_fen", "settled_fen"]
PLAN_HASH = plans.PLAN_HASH


# --- extract, map, validate ----------------------------------------------------------------------

def extract(ctx: StepContext) -> StepCounts:
    erp()  # an ERP without receipts: a ConfigurationError naming the bindings file, before anything is read
    return extract_bank(ctx) + extract_erp(ctx) + extract_crm(ctx)


def map_step(ctx: StepContext) -> StepCounts:
    return receipts_map.map_all(ctx)


def validate(ctx: StepContext) -> StepCounts:
    with ctx.engine.begin() as conn:
        batch = pd.concat([stage_read(conn, ctx.run_id, "map", s).assign(system=system_of(s)) for s in RECEIPT_STAGES],
                          ignore_index=True)
    counts = StepCounts(read=len(batch))
    if batch.empty:
        with ctx.engine.begin() as conn:
            stage_write(conn, ctx.run_id, "validate", batch, "receipt")
        return counts
    for col in ("payer_name", "memo"):  # the suite checks them; the ERP's receipts (U8 收款单) have neither
        if col not in batch:
            batch[col] = None
    batch["_row"] = batch["system"] + ":" + batch["native_key"].astype(str)
    batch["open_ok"] = batch["open_fen"].fillna(0).astype("int64") <= batch["amount_fen"].fillna(0).astype("int64")
    result = gate.validate("receipt", batch)
    with ctx.engine.begin() as conn:
        if len(result.failures):
            reasons = result.failures.groupby("_row")["reason"].agg(list)
            bad = batch[batch["_row"].isin(reasons.index)]
            for system, part in bad.groupby("system"):
                items = [(k, rec, reasons[row]) for k, row, rec in
                         zip(part["native_key"], part["_row"], frame_records(part.drop(columns=["open_ok"])))]
                counts.quarantined += quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity="receipt",
                                                     system=str(system), stage="validate", items=items)
        stage_write(conn, ctx.run_id, "validate", result.good.drop(columns=["open_ok"]), "receipt")
    counts.rejected = counts.quarantined
    counts.mapped = len(result.good)
    rate = counts.rejected / max(1, counts.read)
    if counts.read >= settings.MIN_ROWS_FOR_THRESHOLD and rate > settings.reject_threshold(FLOW):
        raise DataError(f"{FLOW}: {rate:.0%} of {counts.read} receipts failed validation "
                        f"(threshold {settings.reject_threshold(FLOW):.0%}); the source itself looks broken")
    return counts


# --- resolve -------------------------------------------------------------------------------------

def _changed(conn, frame: pd.DataFrame, table, key: str, stored_key: str, fields: list[str],
             hasher=None) -> pd.DataFrame:
    """Rows of ``frame`` whose content hash differs from the stored one (or that are new)."""
    frame = frame.assign(content_hash=hasher(frame) if hasher else xref.content_hash(frame, fields))
    known = select_in(conn, table, stored_key, frame[key].tolist(), columns=[stored_key, "content_hash"])
    known = dict(zip(known[stored_key], known["content_hash"])) if len(known) else {}
    same = frame[key].map(known) == frame["content_hash"]
    return frame.assign(_unchanged=same.to_numpy())


def resolve_step(ctx: StepContext) -> StepCounts:
    counts = StepCounts()
    with ctx.engine.begin() as conn:
        rec = stage_read(conn, ctx.run_id, "validate", "receipt")
        counts.read += len(rec)
        if len(rec):
            for col in RECEIPT_HASH:
                if col not in rec:
                    rec[col] = None
            rec["hub_id"] = [book.hub_id(s, k) for s, k in zip(rec["source"], rec["native_key"])]
            rec = _changed(conn, rec, rm.receipt, "hub_id", "hub_id", RECEIPT_HASH)
        items = stage_read(conn, ctx.run_id, "map", "erp_invoice")
        counts.read += len(items)
        if len(items):
            items["item_key"] = "invoice:" + items["doc_no"].astype(str)
            items = _changed(conn, items, rm.open_item, "item_key", "item_key", ITEM_HASH)
        plan_rows = stage_read(conn, ctx.run_id, "map", "crm_plan")
        counts.read += len(plan_rows)
        if len(plan_rows):
            plan_rows["crm_id"] = plan_rows["_key"].astype(str)
            plan_rows = _changed(conn, plan_rows, rm.payment_plan, "crm_id", "crm_id", PLAN_HASH, plans.plan_hash)
        for stage, frame in (("receipt", rec), ("erp_invoice", items), ("crm_plan", plan_rows)):
            if len(frame):
                same = frame[frame["_unchanged"]]
                counts.skipped += len(same)
                key = "native_key" if stage == "receipt" else "_key"
                stage_write(conn, ctx.run_id, "unchanged", pd.DataFrame({
                    "system": same["system"] if stage == "receipt" else system_of(stage),
                    "key": same[key].astype(str)}), stage)
                frame = frame[~frame["_unchanged"]].drop(columns=["_unchanged"])
            stage_write(conn, ctx.run_id, "resolve", frame, stage)
    return counts


# --- load ----------------------------------------------------------------------------------------

def _load_receipts(conn, rec: pd.DataFrame, run_id: str) -> int:
    if rec.empty:
        return 0
    now = utcnow()
    stored = select_in(conn, rm.receipt, "hub_id", rec["hub_id"].tolist(), columns=["hub_id", "status"])
    status = dict(zip(stored["hub_id"], stored["status"])) if len(stored) else {}
    rows = []
    for r in frame_records(rec):
        old = status.get(r["hub_id"])
        rows.append({"hub_id": r["hub_id"], "source": r["source"], "native_key": str(r["native_key"]),
                     "receipt_no": r.get("receipt_no"), "customer_code": r.get("customer_code"),
                     "customer_by": "source" if r.get("customer_code") else None, "payer_name": r.get("payer_name"),
                     "payer_account": r.get("payer_account"), "amount_fen": int(r["amount_fen"]),
                     "open_fen": 0 if old == "posted" else int(r["open_fen"]), "value_date": pd.Timestamp(r["value_date"]).date(),
                     "memo": r.get("memo"), "bank": r.get("bank"), "our_account": r.get("our_account"),
                     "settlement": r.get("settlement"), "file_sha256": r.get("file_sha256"),
                     "line_no": None if r.get("line_no") is None else int(r["line_no"]),
                     "status": old if old in ("posted", "settled_in_erp") else "open", "content_hash": r["content_hash"],
                     "first_run_id": run_id, "run_id": run_id, "created_at": now, "updated_at": now})
    upsert(conn, rm.receipt, rows, keys=["hub_id"], update=[c for c in rows[0] if c not in ("first_run_id", "created_at")])
    for system, part in rec.groupby("source"):
        quarantine.resolve(conn, run_id=run_id, flow=FLOW, system=str(system), record_keys=part["native_key"].astype(str))
    return len(rows)


def _load_items(conn, items: pd.DataFrame, run_id: str) -> int:
    if items.empty:
        return 0
    now = utcnow()
    known = select_in(conn, rm.open_item, "item_key", items["item_key"].tolist(), columns=["item_key"])
    seen = set(known["item_key"]) if len(known) else set()
    rows = [{"item_key": r["item_key"], "kind": "invoice", "doc_no": r["doc_no"], "native_key": str(r["_key"]),
             "customer_code": r["customer_code"], "order_no": r.get("order_no"),
             "refs": "|".join(t for t in (r["doc_no"], r.get("order_no")) if t), "amount_fen": int(r["amount_fen"]),
             "erp_settled_fen": int(r["settled_fen"] or 0), "baseline_settled_fen": int(r["settled_fen"] or 0),
             "doc_date": pd.Timestamp(r["doc_date"]).date(), "due_date": pd.Timestamp(r["doc_date"]).date(),
             "content_hash": r["content_hash"], "source_version": str(r.get("_version")), "run_id": run_id,
             "updated_at": now} for r in frame_records(items)]
    new = [r for r in rows if r["item_key"] not in seen]
    old = [{k: v for k, v in r.items() if k != "baseline_settled_fen"} for r in rows if r["item_key"] in seen]
    upsert(conn, rm.open_item, new, keys=["item_key"])
    upsert(conn, rm.open_item, old, keys=["item_key"])  # the baseline stays what the ERP said when first seen
    quarantine.resolve(conn, run_id=run_id, flow=FLOW, system=system_of("erp_invoice"),
                       record_keys=items["_key"].astype(str))
    return len(rows)


def _load_directory(conn, run_id: str) -> int:
    """Payer names and bank accounts of the ERP's customers read, plus their CRM names (customer master)."""
    cust = stage_read(conn, run_id, "map", "erp_customer")
    if cust.empty:
        return 0
    now = utcnow()
    source = erp().system
    accounts = cust.assign(account=payers.account_key(cust["account"])).dropna(subset=["account"])
    upsert(conn, rm.payer_account, [{"account_no": a, "customer_code": c, "source": source, "seen_at": now}
                                    for a, c in zip(accounts["account"], accounts["_key"])],
           keys=["account_no", "customer_code"], update=["seen_at"])
    names = pd.DataFrame({"customer_code": cust["_key"].astype(str), "name": cust["name"], "source": source})
    x = model.xref.c
    hubs = select_in(conn, model.xref, "native_key", names["customer_code"].tolist(),
                     where=[x.entity == "customer", x.system == source], columns=["native_key", "hub_id"])
    if len(hubs):  # the names the customer master knows for the same company (CRM, registry)
        s = model.customer_source.c
        other = select_in(conn, model.customer_source, "hub_id", hubs["hub_id"].tolist(),
                          where=[s.system != source], columns=["hub_id", "name", "system"])
        other = other.merge(hubs.rename(columns={"native_key": "customer_code"}), on="hub_id")
        names = pd.concat([names, pd.DataFrame({"customer_code": other["customer_code"], "name": other["name"],
                                                "source": other["system"]})], ignore_index=True)
    names["name_key"] = name_key(names["name"].astype(object).where(names["name"].notna(), None))
    names = names.dropna(subset=["name_key"]).drop_duplicates(["name_key", "customer_code"])
    upsert(conn, rm.payer_name, frame_records(names[["name_key", "customer_code", "name", "source"]]),
           keys=["name_key", "customer_code"])
    return len(cust)


def load(ctx: StepContext) -> StepCounts:
    """Store receipts, open items, plans and the payer directory; mark this run's files loaded
    and commit the watermarks, all in one transaction; then archive the files."""
    with ctx.engine.begin() as conn:
        rec = stage_read(conn, ctx.run_id, "resolve", "receipt")
        items = stage_read(conn, ctx.run_id, "resolve", "erp_invoice")
        plan_rows = stage_read(conn, ctx.run_id, "resolve", "crm_plan")
        counts = StepCounts(read=len(rec) + len(items) + len(plan_rows))
        counts.written += _load_receipts(conn, rec, ctx.run_id)
        counts.written += _load_items(conn, items, ctx.run_id)
        counts.written += plans.save_plans(conn, plan_rows, ctx.run_id, erp().system, roles.crm().system)
        if len(plan_rows):
            quarantine.resolve(conn, run_id=ctx.run_id, flow=FLOW, system=system_of("crm_plan"),
                               record_keys=plan_rows["_key"].astype(str))
        _load_directory(conn, ctx.run_id)
        plans.refresh_order_items(conn, ctx.run_id)
        files = loaded_files(conn, ctx.run_id)
        mark_loaded(conn, ctx.run_id, files["sha256"].tolist())
        log.info("watermarks moved: %s", watermarks.commit_pending(conn, ctx.run_id, FLOW))
    archive_loaded(ctx.run_id, files, ctx.engine)
    return counts


# --- publish: reconcile --------------------------------------------------------------------------

def publish(ctx: StepContext) -> StepCounts:
    """Match every receipt still open (new ones and earlier exceptions) against the open items;
    post the certain ones, queue the rest for finance; enqueue the deliveries."""
    cfg = Settings.from_env()
    adapter = erp()
    with ctx.engine.begin() as conn:
        receipts = book.receipts_to_match(conn)
        counts = StepCounts(read=len(receipts))
        if receipts.empty:
            stage_write(conn, ctx.run_id, "recon", pd.DataFrame())
            return counts
        items = book.items_frame(conn, book.window_start(receipts, cfg.window_days))
        accounts, names = book.directory(conn)
        decided = book.decisions(conn)
        rec_view = book.matcher_receipts(receipts, adapter.system)
        who = payers.resolve(rec_view, accounts, names)
        holds = {h: ("possible_duplicate", d) for h, d in book.possible_duplicates(
            conn, receipts, who["customer"], adapter.system, adapter.label).items()}
        result = reconcile(rec_view, book.matcher_items(items), accounts, names, decided, cfg, holds)
        outcome = book.persist(conn, ctx.run_id, receipts, result, erp_target=adapter.system,
                               crm_target=roles.crm().system)
        stage_write(conn, ctx.run_id, "recon", result.receipts.assign(
            proposal=result.receipts["proposal"].map(book.as_json),
            candidates=result.receipts["candidates"].map(book.as_json),
            evidence=result.receipts["evidence"].map(book.as_json)))
    counts.written = len(outcome["posted"])
    counts.skipped = len(outcome["exceptions"])
    counts.merged = int(result.allocations["item_id"].notna().sum()) if len(result.allocations) else 0
    log.info("reconciliation: %s", result.stats)
    return counts


# --- write back ----------------------------------------------------------------------------------

def write_back(ctx: StepContext) -> StepCounts:
    """The ERP's receipt documents (U8 收款单) for posted bank receipts, CRM 回款 records and plan
    status, the workbook."""
    counts = deliver.to_erp(ctx)
    counts += deliver.to_crm(ctx)
    counts += deliver.plans_to_crm(ctx)
    receipts_outcomes.save(ctx)
    counts.quarantined += _workbook(ctx)
    return counts


WORKBOOK_KEY = "finance workbook"


def _workbook(ctx: StepContext) -> int:
    """Write the finance workbook; a failure to write it is quarantined (and closed by the next
    run that writes one), never a failed step that would report the postings above as 0."""
    try:
        deliver.workbook(ctx)
    except Exception as exc:  # noqa: BLE001 - the postings are done and counted; the workbook is a report
        log.error("finance workbook not written: %s: %s", type(exc).__name__, exc)
        with ctx.engine.begin() as conn:
            return quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity="workbook", system="finance",
                                  stage="write_back", items=[(WORKBOOK_KEY, {"run_id": ctx.run_id}, [
                                      f"the finance workbook of run {ctx.run_id} was not written "
                                      f"({type(exc).__name__}: {exc}); the postings are done and counted, "
                                      "the next run writes the workbook again"])])
    with ctx.engine.begin() as conn:
        quarantine.resolve(conn, run_id=ctx.run_id, flow=FLOW, system="finance", record_keys=[WORKBOOK_KEY])
    return 0


#: The seven steps, in order, as the DAG schedules them.
STEP_FUNCTIONS = {
    "extract": extract, "map": map_step, "validate": validate, "resolve": resolve_step,
    "load": load, "publish": publish, "write_back": write_back,
}
