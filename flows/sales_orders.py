"""The sales orders flow: CRM (销售易) orders → hub → U8 sales orders, the U8 number back to the CRM.

extract (orders and order lines by updatedAt; the lines of every touched order read whole) →
map (YAML specs; a bad line holds its whole order) → validate (GX on one row per order with
its line facts: every line's amount and the header total checked exactly, in Decimal) →
resolve (unchanged orders skipped by a hash over header and lines; drafts and orders
cancelled before they reached U8 skipped) → load (canonical order and lines, xref, outbox,
watermarks) → publish (customer and products in U8? else the order waits with the reason; a
change or cancellation only where U8's state allows; the saleorder body) → write back
(U8 saleorder/close then saleorder/add with biz_id, then erpCode__c on the CRM order).
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pandas as pd
from sqlalchemy import delete

from connectors.u8 import U8Connector
from connectors.xiaoshouyi import XiaoshouyiConnector
from flows import order_u8
from flows.steps import (gate_records, json_safe, map_lines, map_records, quarantined_keys, read_outcomes,
                         read_stream, save_outcomes, upsert_canonical, with_known_hashes, write_in_chunks)
from hub import connections, model, outbox, quarantine, watermarks, xref
from hub.model import SALES_ORDER_FIELDS, SALES_ORDER_LINE_FIELDS
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import chunks, select_in, stage_append, stage_read, stage_write
from mappings import engine
from quality.orders import order_facts

log = logging.getLogger("flows.sales_orders")

FLOW = "sales_orders"
ENTITY, LINE_ENTITY = "sales_order", "sales_order_line"
HEADER_SPEC, LINE_SPEC = "crm_order_to_sales_order", "crm_order_product_to_sales_order_line"
HEAD, LINES = "crm.order", "crm.orderProduct"   # staging keys: the CRM gives this flow two streams
CRM_CONN, U8_ODBC_CONN, U8_API_CONN = "crm_xiaoshouyi", "u8_odbc", "u8_openapi"
NS = uuid.UUID("2d4b7a90-1c3e-4f5a-8b6d-0e9f8a7b6c5d")
OPEN, CLOSED = "open", "closed"   # xref native_version of a U8 order the hub created
#: xref native_version while the hub's close of a U8 order is under way: U8's OpenAPI has no
#: transaction, so a replacement is close + add; this intent, committed before the close, lets
#: the next run finish a replacement whose add never came (see ``_settle_closing``).
CLOSING = "closing"


def order_hub_id(crm_id: str) -> str:
    return str(uuid.uuid5(NS, f"crm:order:{crm_id}"))


def line_hub_id(crm_id: str) -> str:
    return str(uuid.uuid5(NS, f"crm:orderProduct:{crm_id}"))


def crm() -> XiaoshouyiConnector:
    head, line = engine.load_spec(HEADER_SPEC), engine.load_spec(LINE_SPEC)
    return XiaoshouyiConnector(connections.get(CRM_CONN), streams={head.stream: head.source_fields,
                                                                   line.stream: line.source_fields})


def u8(write: bool = False) -> U8Connector:
    return U8Connector(connections.get(U8_ODBC_CONN), connections.get(U8_API_CONN) if write else None,
                       columns={"SO_SOMain": ["cSOCode", "cVerifier", "dverifydate", "cCloser", "dclosedate"],
                                "SO_SODetails": ["cSOCode", "iFHQuantity"]})


# --- extract ---------------------------------------------------------------------------------------

def extract(ctx: StepContext) -> StepCounts:
    """Orders and lines changed since the watermarks; then, on an incremental run, every line of
    every touched order (a changed line touches its order, a removed line is seen as missing)."""
    connector = crm()
    with ctx.engine.begin() as conn:
        full = all(watermarks.get(conn, FLOW, f"crm.{s}") is None for s in ("order", "orderProduct"))
    counts = read_stream(ctx, connector, "crm", "order", ENTITY, stage_as=HEAD)
    counts += read_stream(ctx, connector, "crm", "orderProduct", LINE_ENTITY, stage_as=LINES)
    with ctx.engine.begin() as conn:
        heads, lines = stage_read(conn, ctx.run_id, "extract", HEAD), stage_read(conn, ctx.run_id, "extract", LINES)
    head_ids = set(heads["id"].astype(str)) if not heads.empty else set()
    touched = head_ids | (set(lines["orderId"].astype(str)) if not lines.empty else set())
    if full or not touched:
        return counts
    missing = sorted(touched - head_ids)
    extra = [r for page in connector.read("order", {"keys": missing}) for r in page.records] if missing else []
    whole = [r for page in connector.read("orderProduct", {"keys": sorted(touched), "key_field": "orderId"})
             for r in page.records]
    with ctx.engine.begin() as conn:
        if extra:
            stage_write(conn, ctx.run_id, "extract", pd.concat(
                [heads, pd.DataFrame([json_safe(r) for r in extra])], ignore_index=True), HEAD)
        stage_write(conn, ctx.run_id, "extract", pd.DataFrame([json_safe(r) for r in whole]), LINES)
    log.info("incremental: %d touched orders (%d read for their lines only), %d lines read whole",
             len(touched), len(missing), len(whole))
    return counts


# --- map -------------------------------------------------------------------------------------------

def map_step(ctx: StepContext) -> StepCounts:
    """Headers and lines by their specs. A line that does not map holds its whole order back:
    the order is quarantined with the line's reason (an order goes to U8 whole or not at all)."""
    line_spec = engine.load_spec(LINE_SPEC)
    with ctx.engine.begin() as conn:
        raw_heads = stage_read(conn, ctx.run_id, "extract", HEAD)
        heads, counts = map_records(conn, ctx, ENTITY, "crm", engine.load_spec(HEADER_SPEC), raw_heads, stage_as=HEAD)
        raw_lines = stage_read(conn, ctx.run_id, "extract", LINES)
        lines, heads, held = map_lines(conn, ctx, ENTITY, "crm", line_spec, raw_lines, heads, "orderId", "order_key")
        counts.quarantined += held
        counts.rejected = counts.quarantined
        counts.mapped = len(heads)
        stage_write(conn, ctx.run_id, "map", heads, HEAD)
        stage_write(conn, ctx.run_id, "map", lines, LINES)
    return counts


# --- validate --------------------------------------------------------------------------------------

def validate(ctx: StepContext) -> StepCounts:
    """GX on activated orders, one row each with the exact facts of its lines; drafts and
    cancellations pass (they carry no amounts to U8)."""
    with ctx.engine.begin() as conn:
        heads, lines = stage_read(conn, ctx.run_id, "map", HEAD), stage_read(conn, ctx.run_id, "map", LINES)
        if heads.empty:
            stage_write(conn, ctx.run_id, "validate", heads, HEAD)
            stage_write(conn, ctx.run_id, "validate", heads, LINES)
            return StepCounts()
        active = heads["status"] == "activated"
        facts = order_facts(heads[active], lines)
        good, counts = gate_records(conn, ctx, ENTITY, facts)
        kept = pd.concat([good, heads[~active]], ignore_index=True)
        counts.read, counts.mapped = len(heads), len(kept)
        stage_write(conn, ctx.run_id, "validate", kept, HEAD)
        stage_write(conn, ctx.run_id, "validate", lines[lines["order_key"].isin(kept["_key"])] if not lines.empty
                    else lines, LINES)
    return counts


# --- resolve ---------------------------------------------------------------------------------------

def _with_ids(heads: pd.DataFrame, lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    heads = heads.assign(hub_id=heads["_key"].map(order_hub_id))
    if lines.empty:
        return heads, pd.DataFrame(columns=["hub_id", "order_hub_id", *SALES_ORDER_LINE_FIELDS])
    lines = lines.assign(hub_id=lines["_key"].map(line_hub_id), order_hub_id=lines["order_key"].map(order_hub_id),
                         native_key=lines["_key"], _n=pd.to_numeric(lines["_key"], errors="coerce"))
    lines["line_no"] = lines.groupby("order_hub_id")["_n"].rank(method="first").astype(int).astype(str)
    return heads, lines.drop(columns=["_n"])


def _current_u8(conn, hub_ids: list[str]) -> pd.DataFrame:
    """The U8 orders the hub created per order: hub_id, native_key (cSOCode), native_version
    (open | closing | closed) and content_hash (the version U8 got)."""
    x = model.xref.c
    return select_in(conn, model.xref, "hub_id", hub_ids, where=[x.entity == ENTITY, x.system == "u8"],
                     columns=["hub_id", "native_key", "native_version", "content_hash"])


def resolve_step(ctx: StepContext) -> StepCounts:
    """Skip what did not change; say why drafts and early cancellations are not sent."""
    with ctx.engine.begin() as conn:
        heads, lines = _with_ids(stage_read(conn, ctx.run_id, "validate", HEAD),
                                 stage_read(conn, ctx.run_id, "validate", LINES))
        counts = StepCounts(read=len(heads))
        if heads.empty:
            for name in ("resolve", "skipped"):
                stage_write(conn, ctx.run_id, name, heads, HEAD)
            return counts
        hashes = order_u8.order_hashes(heads, lines)
        batch = with_known_hashes(conn, ENTITY, "crm", heads, heads["hub_id"].map(hashes))
        batch["hub_id"] = batch["_key"].map(order_hub_id)
        unchanged = batch["known_hash"].notna() & (batch["content_hash"] == batch["known_hash"])
        sent = _current_u8(conn, batch["hub_id"].tolist())
        has_open = set(sent.loc[sent["native_version"].isin([OPEN, CLOSING]), "hub_id"])
        reason = pd.Series(None, index=batch.index, dtype=object)
        reason[unchanged] = "unchanged since last run"
        draft, cancelled = batch["status"] == "draft", batch["status"] == "cancelled"
        ever = batch["hub_id"].isin(set(sent["hub_id"]))
        reason[~unchanged & draft & ~ever] = "draft (not activated in the CRM): not sent"
        reason[~unchanged & draft & batch["hub_id"].isin(has_open)] = \
            "deactivated in the CRM (取消生效): the U8 order stays as it is until the order is activated again"
        reason[~unchanged & cancelled & ~ever] = "cancelled in the CRM before it reached U8: nothing to send"
        counts.skipped = int(reason.notna().sum())
        changed = batch[~unchanged].drop(columns=["known_hash"])
        changed["send"] = reason[~unchanged].isna().to_numpy()
        stage_write(conn, ctx.run_id, "resolve", changed, HEAD)
        stage_write(conn, ctx.run_id, "resolve", lines[lines["order_hub_id"].isin(changed["hub_id"])], LINES)
        stage_write(conn, ctx.run_id, "skipped", batch.loc[reason.notna(), ["_key", "hub_id"]].assign(
            reason=reason[reason.notna()].to_numpy()), HEAD)
    return counts


# --- load ------------------------------------------------------------------------------------------

def load(ctx: StepContext) -> StepCounts:
    """Canonical orders and lines (a line no longer in the CRM is removed), xref, outbox."""
    with ctx.engine.begin() as conn:
        heads = stage_read(conn, ctx.run_id, "resolve", HEAD)
        lines = stage_read(conn, ctx.run_id, "resolve", LINES)
        counts = StepCounts(read=len(heads))
        if not heads.empty:
            for col in SALES_ORDER_FIELDS:
                if col not in heads.columns:
                    heads[col] = None
            counts.written = upsert_canonical(conn, model.sales_order, heads, SALES_ORDER_FIELDS, ctx.run_id)
            ids = heads["hub_id"].tolist()
            for part in chunks(ids):
                conn.execute(delete(model.sales_order_line).where(model.sales_order_line.c.order_hub_id.in_(part)))
            if not lines.empty:
                lines = lines.assign(content_hash=xref.content_hash(lines, list(order_u8.LINE_HASH)))
                upsert_canonical(conn, model.sales_order_line, lines, SALES_ORDER_LINE_FIELDS, ctx.run_id)
            xref.save(conn, ENTITY, "crm", heads.rename(columns={"_key": "native_key"}).assign(
                native_version=heads["_version"].astype(str)))
            quarantine.resolve(conn, run_id=ctx.run_id, flow=FLOW, system="crm", record_keys=heads["_key"].tolist())
            send = heads.loc[heads["send"].astype(bool), "hub_id"].tolist()
            outbox.enqueue(conn, ENTITY, ctx.run_id, send, ["u8"])
        log.info("watermarks moved: %s", watermarks.commit_pending(conn, ctx.run_id, FLOW))
    return counts


# --- publish ---------------------------------------------------------------------------------------

def publish(ctx: StepContext) -> StepCounts:
    """Decide per pending or waiting order: add, replace (close + add), cancel (close), nothing
    (U8 already holds this version), wait (customer or product not in U8 yet) or refuse (U8's
    state does not allow it; quarantined with the reason)."""
    with ctx.engine.begin() as conn:
        replays = quarantine.take_replays(conn, FLOW, "u8", ["publish", "write"])
        if replays:  # an operator acted on what U8 refused: look at those orders again
            outbox.mark(conn, ENTITY, "u8", [r["record_key"] for r in replays], outbox.PENDING)
        ids = outbox.ids(conn, ENTITY, "u8", (outbox.PENDING, outbox.WAITING))
        _settle_closing(conn, _current_u8(conn, ids))
        heads = select_in(conn, model.sales_order, "hub_id", ids)
        lines = select_in(conn, model.sales_order_line, "order_hub_id", ids)
        sent = _current_u8(conn, ids)
        counts = StepCounts(read=len(ids))
        if heads.empty:
            stage_write(conn, ctx.run_id, "publish", pd.DataFrame())
            stage_write(conn, ctx.run_id, "publish_waiting", pd.DataFrame())
            return counts
        heads = _plan(heads, lines, sent)
        sending = heads[heads["op"].isin(["add", "replace"])]
        sending_lines = lines[lines["order_hub_id"].isin(sending["hub_id"])]
        customer_code, product_code, waits = order_u8.prerequisites(conn, sending, sending_lines)
    ready = ~sending["hub_id"].isin(waits)
    bodies, refused = order_u8.payloads(sending[ready], sending_lines[~sending_lines["order_hub_id"].isin(waits)],
                                        customer_code, product_code)
    checked = heads[heads["op"].isin(["replace", "cancel"]) & ~heads["hub_id"].isin(waits)]
    state = order_u8.u8_state(u8(), checked["u8_code"].tolist())
    for h, op, code in zip(checked["hub_id"], checked["op"], checked["u8_code"]):
        if op == "cancel" and code in state.closed and h not in refused:
            heads.loc[heads["hub_id"] == h, "op"] = "already closed"
        elif (why := order_u8.refusal(op, code, state)) and h not in refused:
            refused[h] = why
    acting = heads["op"].isin(["add", "replace", "cancel"]) & ~heads["hub_id"].isin(waits) & ~heads["hub_id"].isin(refused)
    todo = heads[acting].assign(body=lambda t: t["hub_id"].map(lambda h: json.dumps(bodies[h], ensure_ascii=False)
                                                                if h in bodies else None))
    todo["biz_id"] = [order_u8.biz_id(h, int(n)) for h, n in zip(todo["hub_id"], todo["revision"])]
    with ctx.engine.begin() as conn:
        outbox.mark(conn, ENTITY, "u8", heads.loc[heads["op"] == "nothing", "hub_id"].tolist())
        closed_by_u8 = heads[heads["op"] == "already closed"]
        if not closed_by_u8.empty:
            _u8_closed(conn, closed_by_u8)
            outbox.mark(conn, ENTITY, "u8", closed_by_u8["hub_id"].tolist())
        outbox.mark_each(conn, ENTITY, "u8", outbox.WAITING, waits)
        outbox.mark(conn, ENTITY, "u8", todo["hub_id"].tolist(), outbox.PENDING)  # a waiting order that can go now
        if refused:
            by_hub = heads.set_index("hub_id")
            counts.quarantined = quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity=ENTITY, system="u8",
                                                stage="publish", items=[
                (h, {"hub_id": h, "order_no": by_hub.loc[h, "order_no"], "op": by_hub.loc[h, "op"],
                     "u8_code": by_hub.loc[h, "u8_code"] if isinstance(by_hub.loc[h, "u8_code"], str) else None},
                 [r]) for h, r in refused.items()])
            outbox.mark_each(conn, ENTITY, "u8", outbox.FAILED, refused)
        stage_write(conn, ctx.run_id, "publish", todo[["hub_id", "order_no", "op", "u8_code", "u8_hash", "biz_id", "body"]])
        stage_write(conn, ctx.run_id, "publish_waiting", pd.DataFrame({"hub_id": list(waits), "reason": list(waits.values())}))
    counts.written = len(todo)
    counts.skipped = counts.read - counts.written - counts.quarantined
    log.info("publish: %d to U8, %d waiting, %d refused", len(todo), len(waits), len(refused))
    return counts


def _settle_closing(conn, sent: pd.DataFrame) -> None:
    """Closes the hub started and did not record: U8's own state says how each ended. Closed,
    the U8 order is marked closed, so a changed order gets its replacement added now (with
    the same ``biz_id`` the interrupted add carried); still open, it is open again and the
    change is planned anew."""
    closing = sent[sent["native_version"] == CLOSING]
    if closing.empty:
        return
    state = order_u8.u8_state(u8(), closing["native_key"].tolist())
    done = closing["native_key"].isin(state.closed)
    xref.save(conn, ENTITY, "u8", closing.assign(native_version=[CLOSED if d else OPEN for d in done]))
    log.info("U8 closes left under way by an earlier run: %d closed in U8 (their replacement follows), %d still open",
             int(done.sum()), int((~done).sum()))


def _plan(heads: pd.DataFrame, lines: pd.DataFrame, sent: pd.DataFrame) -> pd.DataFrame:
    """Each order's operation from its status and what U8 holds: add, replace, cancel or nothing."""
    opened = sent[sent["native_version"] == OPEN].drop_duplicates("hub_id").set_index("hub_id")
    heads = heads.assign(u8_code=heads["hub_id"].map(opened["native_key"]),
                         u8_hash=heads["hub_id"].map(order_u8.order_hashes(heads.assign(erp_code=None), lines)),
                         revision=heads["hub_id"].map(sent.groupby("hub_id").size()).fillna(0).astype(int))
    in_u8 = heads["hub_id"].map(opened["content_hash"])
    has = heads["u8_code"].notna()
    heads["op"] = "nothing"
    active, cancelled = heads["status"] == "activated", heads["status"] == "cancelled"
    heads.loc[active & ~has, "op"] = "add"
    heads.loc[active & has & (in_u8 != heads["u8_hash"]), "op"] = "replace"
    heads.loc[cancelled & has, "op"] = "cancel"
    return heads


def _u8_closed(conn, heads: pd.DataFrame) -> None:
    """U8 closed these orders (by the hub or by hand): xref marks them closed."""
    frame = heads.assign(native_key=heads["u8_code"], native_version=CLOSED, content_hash=None)
    xref.save(conn, ENTITY, "u8", frame)


# --- write back ------------------------------------------------------------------------------------

def write_back(ctx: StepContext) -> StepCounts:
    """Close what must be closed, then add what must be added (biz_id), then write the U8 order
    number into the CRM order; each chunk's outcome is committed before the next chunk."""
    with ctx.engine.begin() as conn:
        todo = stage_read(conn, ctx.run_id, "publish")
        if not todo.empty:  # a retried write-back skips what its killed attempt already finished
            todo = todo[todo["hub_id"].isin(outbox.ids(conn, ENTITY, "u8"))].reset_index(drop=True)
    counts = StepCounts(read=len(todo))
    if not todo.empty:
        connector = u8(write=True)
        closing = todo[todo["op"].isin(["cancel", "replace"])]
        with ctx.engine.begin() as conn:  # the intent first: a kill after U8 closed is finished by the next run
            current = _current_u8(conn, closing["hub_id"].tolist())
            xref.save(conn, ENTITY, "u8", current[current["native_key"].isin(closing["u8_code"])].assign(
                native_version=CLOSING))
        closed: set[str] = set()
        counts += write_in_chunks(ctx, connector, "saleorder", [
            {"_key": h, "_op": "close", "voucher_code": code} for h, code in zip(closing["hub_id"], closing["u8_code"])],
            _persist(ctx, todo, "close", closed))
        adding = todo[(todo["op"] == "add") | ((todo["op"] == "replace") & todo["hub_id"].isin(closed))]
        counts += write_in_chunks(ctx, connector, "saleorder", [
            {**json.loads(body), "_key": h, "_op": "add", "_biz_id": biz}
            for h, body, biz in zip(adding["hub_id"], adding["body"], adding["biz_id"])],
            _persist(ctx, todo, "add", closed))
    counts += _write_crm(ctx)
    with ctx.engine.begin() as conn:
        result = outcomes(conn, ctx.run_id)
    save_outcomes(ctx, result)
    return counts


def _persist(ctx: StepContext, todo: pd.DataFrame, phase: str, closed: set[str]):
    ops = todo.set_index("hub_id")

    def persist(conn, chunk: list[dict[str, Any]], results) -> StepCounts:
        c = StepCounts()
        ok = [(rec["_key"], res) for rec, res in zip(chunk, results) if res.status != "failed"]
        failed = [(rec, res) for rec, res in zip(chunk, results) if res.status == "failed"]
        if phase == "close" and ok:
            keys = [h for h, _ in ok]
            _u8_closed(conn, ops.loc[keys].reset_index())
            closed.update(keys)
            cancels = [h for h in keys if ops.loc[h, "op"] == "cancel"]
            outbox.mark(conn, ENTITY, "u8", cancels)
            c.written += len(cancels)
        if phase == "add" and ok:
            hashes = ops["u8_hash"].to_dict()
            xref.save(conn, ENTITY, "u8", pd.DataFrame([{"hub_id": h, "native_key": res.native_key, "native_version": OPEN,
                                                         "content_hash": hashes.get(h)} for h, res in ok]))
            outbox.mark(conn, ENTITY, "u8", [h for h, _ in ok])
            outbox.enqueue(conn, ENTITY, ctx.run_id, [h for h, _ in ok], ["crm"])  # its number goes to the CRM next
            c.written += len(ok)
        if failed:
            c.quarantined += quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity=ENTITY, system="u8", stage="write",
                                            items=[(rec["_key"], {k: v for k, v in rec.items() if k != "entry"} | {
                                                "lines": len(rec.get("entry") or [])}, [res.error or "write failed"])
                                                   for rec, res in failed])
            outbox.mark_each(conn, ENTITY, "u8", outbox.FAILED, {rec["_key"]: res.error or "write failed" for rec, res in failed})
        stage_append(conn, ctx.run_id, "u8_results", pd.DataFrame([
            {"hub_id": rec["_key"], "phase": phase, "op": ops.loc[rec["_key"], "op"], "result": res.status,
             "u8_code": res.native_key} for rec, res in zip(chunk, results)]))
        return c

    return persist


def _write_crm(ctx: StepContext) -> StepCounts:
    """The U8 order number (and the hub id) into the CRM orders U8 just got, through the outbox
    (target ``crm``): a PATCH that failed or was killed is sent by the next run."""
    x = model.xref.c
    with ctx.engine.begin() as conn:
        ids = outbox.ids(conn, ENTITY, "crm")
        opened = select_in(conn, model.xref, "hub_id", ids, where=[x.entity == ENTITY, x.system == "u8",
                                                                   x.native_version == OPEN],
                           columns=["hub_id", "native_key"]).rename(columns={"native_key": "u8_code"})
        heads = select_in(conn, model.sales_order, "hub_id", ids, columns=["hub_id", "erp_code"])
        crm_keys = select_in(conn, model.xref, "hub_id", ids, where=[x.entity == ENTITY, x.system == "crm"],
                             columns=["hub_id", "native_key"])
        want = opened.merge(heads, on="hub_id").merge(crm_keys, on="hub_id")
        todo = want[want["u8_code"] != want["erp_code"]]
        outbox.mark(conn, ENTITY, "crm", sorted(set(ids) - set(todo["hub_id"])))
    counts = StepCounts(read=len(ids), skipped=len(ids) - len(todo))
    if todo.empty:
        return counts
    records = [{"_key": h, "id": k, "erpCode__c": code, "hubId__c": h}
               for h, k, code in zip(todo["hub_id"], todo["native_key"], todo["u8_code"])]

    def persist(conn, chunk, results) -> StepCounts:
        c = StepCounts()
        ok = {rec["_key"]: rec["erpCode__c"] for rec, res in zip(chunk, results) if res.status != "failed"}
        if ok:
            _crm_now_holds(conn, ctx.run_id, ok)
            outbox.mark(conn, ENTITY, "crm", list(ok))
            c.written += len(ok)
        failed = [(rec, res) for rec, res in zip(chunk, results) if res.status == "failed"]
        if failed:
            c.quarantined += quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity=ENTITY, system="crm", stage="write",
                                            items=[(rec["id"], rec, [res.error or "write failed"]) for rec, res in failed])
            outbox.mark_each(conn, ENTITY, "crm", outbox.FAILED, {rec["_key"]: res.error or "" for rec, res in failed})
        return c

    return counts + write_in_chunks(ctx, crm(), "order", records, persist)


def _crm_now_holds(conn, run_id: str, erp_codes: dict[str, str]) -> None:
    """The CRM orders now carry these U8 numbers: canonical erp_code and the xref hash follow,
    so reading the order back is no change (no echo)."""
    ids = list(erp_codes)
    heads = select_in(conn, model.sales_order, "hub_id", ids)
    heads["erp_code"] = heads["hub_id"].map(erp_codes)
    lines = select_in(conn, model.sales_order_line, "order_hub_id", ids)
    hashes = order_u8.order_hashes(heads, lines)
    heads["content_hash"] = heads["hub_id"].map(hashes)
    upsert_canonical(conn, model.sales_order, heads, SALES_ORDER_FIELDS, run_id)
    x = model.xref.c
    crm_keys = select_in(conn, model.xref, "hub_id", ids, where=[x.entity == ENTITY, x.system == "crm"],
                         columns=["hub_id", "native_key", "native_version"])
    xref.save(conn, ENTITY, "crm", crm_keys.assign(content_hash=crm_keys["hub_id"].map(hashes)))


#: The seven steps, in order, as the DAG schedules them.
STEP_FUNCTIONS = {
    "extract": extract, "map": map_step, "validate": validate, "resolve": resolve_step,
    "load": load, "publish": publish, "write_back": write_back,
}


# --- outcomes --------------------------------------------------------------------------------------

DONE = {("add", "created"): "created in U8", ("replace", "created"): "replaced in U8 (changed order: old one closed)",
        ("cancel", "updated"): "closed in U8 (cancelled in the CRM)"}


def outcomes(conn, run_id: str) -> pd.DataFrame:
    """Every CRM order this run read, and every waiting order it looked at again, with the one
    outcome it ended in (the report's in = written + skipped + quarantined)."""
    raw = stage_read(conn, run_id, "extract", HEAD)
    keys = raw["id"] if "id" in raw.columns else pd.Series([], dtype=object)
    results = stage_read(conn, run_id, "u8_results")
    sent_now = set(results["hub_id"]) if not results.empty else set()  # a waiting order re-read unchanged may go now
    out = read_outcomes(conn, run_id, ENTITY, "crm", keys, order_hub_id, stage_read(conn, run_id, "skipped", HEAD),
                        exempt=sent_now)
    seen = set(out["hub_id"].dropna())
    waiting_now = outbox.reasons(conn, ENTITY, "u8", outbox.WAITING)
    looked_at = stage_read(conn, run_id, "publish_waiting")
    extra = set(looked_at["hub_id"]) if not looked_at.empty else set()
    if not results.empty:
        extra |= set(results["hub_id"])
    others = pd.DataFrame({"system": "outbox", "hub_id": sorted(extra - seen)})
    others["key"], others["outcome"], others["detail"] = others["hub_id"], None, None
    out = pd.concat([out, others], ignore_index=True)
    if not results.empty:
        final = results.drop_duplicates("hub_id", keep="last").set_index("hub_id")
        done = final.apply(lambda r: DONE.get((r["op"], r["result"])), axis=1)
        failed = final["result"] == "failed"
        open_rows = out["outcome"].isna()
        out.loc[open_rows, "outcome"] = out.loc[open_rows, "hub_id"].map(done)
        is_failed = out["outcome"].isna() & out["hub_id"].isin(final.index[failed])
        out.loc[is_failed, ["outcome", "detail"]] = ["quarantined", "U8 refused the write (see quarantine, stage write)"]
    refused = quarantined_keys(conn, run_id, ENTITY, ["publish"])
    refused = refused.drop_duplicates("key").set_index("key")["detail"]
    hit = out["outcome"].isna() & out["hub_id"].isin(refused.index)
    out.loc[hit, "outcome"] = "quarantined"
    out.loc[hit, "detail"] = out.loc[hit, "hub_id"].map(refused)
    hit = out["outcome"].isna() & out["hub_id"].isin(waiting_now)
    out.loc[hit, "outcome"] = "waiting"
    out.loc[hit, "detail"] = out.loc[hit, "hub_id"].map(waiting_now)
    failed_before = outbox.reasons(conn, ENTITY, "u8", outbox.FAILED)
    hit = out["outcome"].isna() & out["hub_id"].isin(failed_before)
    out.loc[hit, "outcome"] = "quarantined"
    out.loc[hit, "detail"] = out.loc[hit, "hub_id"].map(failed_before)
    out.loc[out["outcome"].isna(), ["outcome", "detail"]] = ["stored in hub", "U8 already holds this version"]
    return out
