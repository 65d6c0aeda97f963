"""The sales orders flow: CRM orders → hub → the ERP's sales orders, the ERP number back to the CRM.

extract (orders and order lines by updatedAt; the lines of every touched order read whole) →
map (YAML specs; a bad line holds its whole order) → validate (GX on one row per order with
its line facts: every line's amount and the header total checked exactly, in Decimal) →
resolve (unchanged orders skipped by a hash over header and lines; drafts and orders
cancelled before they reached the ERP skipped) → load (canonical order and lines, xref,
outbox, watermarks) → publish (customer and products in the ERP? else the order waits with the
reason; a change or cancellation only where the ERP's state allows; the ERP's document) →
write back (the ERP's lifecycle phases: U8 closes and re-adds with biz_id, SAP changes in
place; then the ERP number on the CRM order). The flow names roles only (flows/roles.py).
"""
from __future__ import annotations

import json
import logging
import uuid

import pandas as pd
from sqlalchemy import select

from flows import approvals, order_documents, roles
from flows.engine import Flow
from flows.ledger import Ledger
from flows.steps import (gate_records, json_safe, quarantined_keys, read_outcomes, read_stream, save_outcomes,
                         upsert_canonical, with_known_hashes, write_in_chunks)
from hub import model, outbox, quarantine, watermarks, xref
from hub.model import SALES_ORDER_FIELDS, SALES_ORDER_LINE_FIELDS
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import select_in, stage_read, stage_write, upsert, utcnow
from mappings import engine
from quality.orders import order_facts

log = logging.getLogger("flows.sales_orders")

FLOW = "sales_orders"
ENTITY, LINE_ENTITY = "sales_order", "sales_order_line"
HEADER_SPEC, LINE_SPEC = "crm_order_to_sales_order", "crm_order_product_to_sales_order_line"
#: the CRM account's tenant fields (its ``missing_for_orders`` shows why a customer cannot take orders)
ACCOUNT_SPEC = "customer_to_crm_account"
HEAD, LINES = "crm.order", "crm.orderProduct"   # staging keys: the CRM gives this flow two streams
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


def crm():
    """The CRM seat's connector, reading orders and their lines."""
    head, line = engine.load_spec(HEADER_SPEC), engine.load_spec(LINE_SPEC)
    return roles.crm().connector(streams={head.stream: head.source_fields, line.stream: line.source_fields})


def _erp() -> str:
    """The ERP seat's xref key (the bound ERP's binding name)."""
    return roles.erp().system


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

#: The engine's steps of this flow's spec (flows/specs/sales_orders.yaml): headers and lines by their
#: specs; a line that does not map holds its whole order back (quarantined with the line's reason: an
#: order goes to the ERP whole or not at all).
FLOW_ENGINE = Flow(FLOW)
map_step = FLOW_ENGINE.map


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


def _current_erp(conn, hub_ids: list[str]) -> pd.DataFrame:
    """The U8 orders the hub created per order: hub_id, native_key (cSOCode), native_version
    (open | closing | closed) and content_hash (the version U8 got)."""
    x = model.xref.c
    return select_in(conn, model.xref, "hub_id", hub_ids, where=[x.entity == ENTITY, x.system == _erp()],
                     columns=["hub_id", "native_key", "native_version", "content_hash"])


def resolve_step(ctx: StepContext) -> StepCounts:
    """Skip what did not change; say why drafts and early cancellations are not sent."""
    with ctx.engine.begin() as conn:
        heads = stage_read(conn, ctx.run_id, "validate", HEAD)
        counts = StepCounts(read=len(heads))
        if heads.empty:  # a run that read no CRM order (its staged frame has no columns either)
            for name in ("resolve", "skipped"):
                stage_write(conn, ctx.run_id, name, heads, HEAD)
            return counts
        heads, lines = _with_ids(heads, stage_read(conn, ctx.run_id, "validate", LINES))
        hashes = order_documents.order_hashes(heads, lines)
        label = roles.erp().label
        batch = with_known_hashes(conn, ENTITY, "crm", heads, heads["hub_id"].map(hashes))
        batch["hub_id"] = batch["_key"].map(order_hub_id)
        unchanged = batch["known_hash"].notna() & (batch["content_hash"] == batch["known_hash"])
        sent = _current_erp(conn, batch["hub_id"].tolist())
        has_open = set(sent.loc[sent["native_version"].isin([OPEN, CLOSING]), "hub_id"])
        reason = pd.Series(None, index=batch.index, dtype=object)
        reason[unchanged] = "unchanged since last run"
        draft, cancelled = batch["status"] == "draft", batch["status"] == "cancelled"
        ever = batch["hub_id"].isin(set(sent["hub_id"]))
        reason[~unchanged & draft & ~ever] = "draft (not activated in the CRM): not sent"
        reason[~unchanged & draft & batch["hub_id"].isin(has_open)] = \
            f"deactivated in the CRM (取消生效): the {label} order stays as it is until the order is activated again"
        reason[~unchanged & cancelled & ~ever] = f"cancelled in the CRM before it reached {label}: nothing to send"
        counts.skipped = order_documents.stage_resolved(conn, ctx.run_id, batch, unchanged, reason, lines, HEAD, LINES)
    return counts


# --- load ------------------------------------------------------------------------------------------

def load(ctx: StepContext) -> StepCounts:
    """Canonical orders and lines (a line no longer in the CRM is removed), xref, outbox."""
    with ctx.engine.begin() as conn:
        heads = stage_read(conn, ctx.run_id, "resolve", HEAD)
        lines = stage_read(conn, ctx.run_id, "resolve", LINES)
        counts = StepCounts(read=len(heads))
        if not heads.empty:
            counts.written = order_documents.store(conn, heads, lines, ctx.run_id)
            xref.save(conn, ENTITY, "crm", heads.rename(columns={"_key": "native_key"}).assign(
                native_version=heads["_version"].astype(str)))
            quarantine.resolve(conn, run_id=ctx.run_id, flow=FLOW, system="crm", record_keys=heads["_key"].tolist())
            send = heads.loc[heads["send"].astype(bool), "hub_id"].tolist()
            outbox.enqueue(conn, ENTITY, ctx.run_id, send, [_erp()])
        log.info("watermarks moved: %s", watermarks.commit_pending(conn, ctx.run_id, FLOW))
    return counts


# --- publish ---------------------------------------------------------------------------------------

def publish(ctx: StepContext) -> StepCounts:
    """Decide per pending or waiting order: add, replace (close + add), cancel (close), nothing
    (U8 already holds this version), wait (customer or product not in U8 yet) or refuse (U8's
    state does not allow it; quarantined with the reason). How a replace or cancel is carried out
    is the ERP's (``lifecycle``): U8 closes and re-adds, SAP changes in place."""
    erp = roles.erp()
    with ctx.engine.begin() as conn:
        replays = quarantine.take_replays(conn, FLOW, _erp(), ["publish", "write"])
        if replays:  # an operator acted on what U8 refused: look at those orders again
            outbox.mark(conn, ENTITY, _erp(), [r["record_key"] for r in replays], outbox.PENDING)
        ids = outbox.ids(conn, ENTITY, _erp(), (outbox.PENDING, outbox.WAITING))
        _settle_closing(conn, _current_erp(conn, ids))
        heads = select_in(conn, model.sales_order, "hub_id", ids)
        lines = select_in(conn, model.sales_order_line, "order_hub_id", ids)
        sent = _current_erp(conn, ids)
        counts = StepCounts(read=len(ids))
        if heads.empty:
            stage_write(conn, ctx.run_id, "publish", pd.DataFrame())
            stage_write(conn, ctx.run_id, "publish_waiting", pd.DataFrame())
            return counts
        heads = _plan(heads, lines, sent)
        sending = heads[heads["op"].isin(["add", "replace"])]
        sending_lines = lines[lines["order_hub_id"].isin(sending["hub_id"])]
        unready = order_documents.unready_customers(conn, sending, "crm") if _ready_before_orders() else {}
        customer_code, product_code, waits = order_documents.prerequisites(
            conn, sending, sending_lines, "crm", erp.system, erp.label, unready=unready)
        if approvals.active():  # a line below its price floor waits for its OA approval (特价)
            held, _ = approvals.holds(conn, sending, sending_lines)
            waits = {h: "; ".join(w for w in (waits.get(h), held.get(h)) if w) for h in set(waits) | set(held)}
    ready = ~sending["hub_id"].isin(waits)
    bodies, refused = order_documents.payloads(sending[ready], sending_lines[~sending_lines["order_hub_id"].isin(waits)],
                                               customer_code, product_code, erp.mapping("sales_order.out"),
                                               erp.mapping("sales_order_line.out"), erp.label)
    checked = heads[heads["op"].isin(["replace", "cancel"]) & ~heads["hub_id"].isin(waits)]
    state = erp.order_state(checked["erp_number"].tolist())
    for h, op, code in zip(checked["hub_id"], checked["op"], checked["erp_number"]):
        if op == "cancel" and code in state.closed and h not in refused:
            heads.loc[heads["hub_id"] == h, "op"] = "already closed"
        elif (why := erp.refusal(op, code, state)) and h not in refused:
            refused[h] = why
    acting = heads["op"].isin(["add", "replace", "cancel"]) & ~heads["hub_id"].isin(waits) & ~heads["hub_id"].isin(refused)
    todo = heads[acting].assign(body=lambda t: t["hub_id"].map(lambda h: json.dumps(bodies[h], ensure_ascii=False)
                                                                if h in bodies else None))
    todo["doc_key"] = [erp.idempotency_key(h, int(n)) for h, n in zip(todo["hub_id"], todo["revision"])]
    with ctx.engine.begin() as conn:
        outbox.mark(conn, ENTITY, _erp(), heads.loc[heads["op"] == "nothing", "hub_id"].tolist())
        closed_by_erp = heads[heads["op"] == "already closed"]
        if not closed_by_erp.empty:
            _erp_closed(conn, closed_by_erp)
            outbox.mark(conn, ENTITY, _erp(), closed_by_erp["hub_id"].tolist())
        outbox.mark_each(conn, ENTITY, _erp(), outbox.WAITING, waits)
        outbox.mark(conn, ENTITY, _erp(), todo["hub_id"].tolist(), outbox.PENDING)  # a waiting order that can go now
        if refused:
            by_hub = heads.set_index("hub_id")
            counts.quarantined = quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity=ENTITY, system=_erp(),
                                                stage="publish", items=[
                (h, {"hub_id": h, "order_no": by_hub.loc[h, "order_no"], "op": by_hub.loc[h, "op"],
                     "erp_number": by_hub.loc[h, "erp_number"] if isinstance(by_hub.loc[h, "erp_number"], str) else None},
                 [r]) for h, r in refused.items()])
            outbox.mark_each(conn, ENTITY, _erp(), outbox.FAILED, refused)
        stage_write(conn, ctx.run_id, "publish", todo[["hub_id", "order_no", "op", "erp_number", "erp_hash", "doc_key", "body"]])
        stage_write(conn, ctx.run_id, "publish_waiting", pd.DataFrame({"hub_id": list(waits), "reason": list(waits.values())}))
        stage_write(conn, ctx.run_id, "unready", pd.DataFrame({"account_key": list(unready), "missing": list(unready.values())}))
    counts.written = len(todo)
    counts.skipped = counts.read - counts.written - counts.quarantined
    log.info("publish: %d to %s, %d waiting, %d refused", len(todo), roles.erp().label, len(waits), len(refused))
    return counts


def _settle_closing(conn, sent: pd.DataFrame) -> None:
    """Closes the hub started and did not record: U8's own state says how each ended. Closed,
    the U8 order is marked closed, so a changed order gets its replacement added now (with
    the same ``biz_id`` the interrupted add carried); still open, it is open again and the
    change is planned anew."""
    closing = sent[sent["native_version"] == CLOSING]
    if closing.empty:
        return
    state = roles.erp().order_state(closing["native_key"].tolist())
    done = closing["native_key"].isin(state.closed)
    xref.save(conn, ENTITY, _erp(), closing.assign(native_version=[CLOSED if d else OPEN for d in done]))
    log.info("%s closes left under way by an earlier run: %d closed (their replacement follows), %d still open",
             roles.erp().label, int(done.sum()), int((~done).sum()))


def _plan(heads: pd.DataFrame, lines: pd.DataFrame, sent: pd.DataFrame) -> pd.DataFrame:
    """Each order's operation from its status and what U8 holds: add, replace, cancel or nothing."""
    opened = sent[sent["native_version"] == OPEN].drop_duplicates("hub_id").set_index("hub_id")
    heads = heads.assign(erp_number=heads["hub_id"].map(opened["native_key"]),
                         erp_hash=heads["hub_id"].map(order_documents.order_hashes(heads.assign(erp_code=None), lines)),
                         revision=heads["hub_id"].map(sent.groupby("hub_id").size()).fillna(0).astype(int))
    in_erp = heads["hub_id"].map(opened["content_hash"])
    has = heads["erp_number"].notna()
    heads["op"] = "nothing"
    active, cancelled = heads["status"] == "activated", heads["status"] == "cancelled"
    heads.loc[active & ~has, "op"] = "add"
    heads.loc[active & has & (in_erp != heads["erp_hash"]), "op"] = "replace"
    heads.loc[cancelled & has, "op"] = "cancel"
    return heads


def _erp_closed(conn, heads: pd.DataFrame) -> None:
    """U8 closed these orders (by the hub or by hand): xref marks them closed."""
    frame = heads.assign(native_key=heads["erp_number"], native_version=CLOSED, content_hash=None)
    xref.save(conn, ENTITY, _erp(), frame)


# --- write back ------------------------------------------------------------------------------------

#: The order the lifecycle phases run in: what ends a document first, then what changes or adds one.
PHASES = ("close", "cancel", "change", "add")


def write_back(ctx: StepContext) -> StepCounts:
    """Each order's lifecycle phases in turn (U8: close, then add with biz_id; SAP: change or
    cancel in place, add with its reference), then the ERP's order number into the CRM order;
    each chunk's outcome is committed before the next chunk."""
    erp = roles.erp()
    with ctx.engine.begin() as conn:
        todo = stage_read(conn, ctx.run_id, "publish")
        if not todo.empty:  # a retried write-back skips what its killed attempt already finished
            todo = todo[todo["hub_id"].isin(outbox.ids(conn, ENTITY, erp.system))].reset_index(drop=True)
    counts = StepCounts(read=len(todo))
    if not todo.empty:
        connector = erp.connector(write=True)
        phases = todo["op"].map(erp.lifecycle)
        closing = todo[phases.map(lambda p: "close" in p)]
        with ctx.engine.begin() as conn:  # the intent first: a kill after the ERP closed is finished by the next run
            current = _current_erp(conn, closing["hub_id"].tolist())
            xref.save(conn, ENTITY, erp.system, current[current["native_key"].isin(closing["erp_number"])].assign(
                native_version=CLOSING))
        closed: set[str] = set()
        for phase in PHASES:
            part = todo[phases.map(lambda p, ph=phase: ph in p)]
            if phase == "add":  # an add that follows a close waits for the close to have happened
                part = part[(part["op"] == "add") | part["hub_id"].isin(closed)]
            if part.empty:
                continue
            records = [erp.order_document(phase, h, number if isinstance(number, str) else None,
                                          json.loads(body) if isinstance(body, str) else None, key)
                       for h, number, body, key in zip(part["hub_id"], part["erp_number"], part["body"], part["doc_key"])]
            counts += write_in_chunks(ctx, connector, erp.order_stream, records, _persist(ctx, todo, phase, closed))
    counts += _write_crm(ctx)
    if _ready_before_orders():
        counts += _show_readiness(ctx)
    with ctx.engine.begin() as conn:
        result = outcomes(conn, ctx.run_id)
    save_outcomes(ctx, result)
    return counts


def _persist(ctx: StepContext, todo: pd.DataFrame, phase: str, closed: set[str]):
    """The ledger of one lifecycle phase: an ended order (close, cancel) is closed in xref, a
    cancellation is done; an added or changed one is open in xref with the version it got, and
    an added one's number goes to the CRM next."""
    ops = todo.set_index("hub_id")
    erp = roles.erp()
    nest = engine.load_spec(erp.mapping("sales_order_line.out")).doc("lines_key", "lines")

    def ended(conn, ok) -> int:
        keys = [rec["_key"] for rec, _ in ok]
        _erp_closed(conn, ops.loc[keys].reset_index())
        closed.update(keys)
        cancels = [h for h in keys if ops.loc[h, "op"] == "cancel"]
        outbox.mark(conn, ENTITY, erp.system, cancels)
        return len(cancels)

    def opened(conn, ok) -> None:
        hashes, numbers = ops["erp_hash"].to_dict(), ops["erp_number"].to_dict()
        xref.save(conn, ENTITY, erp.system, pd.DataFrame([
            {"hub_id": rec["_key"], "native_key": res.native_key or numbers.get(rec["_key"]), "native_version": OPEN,
             "content_hash": hashes.get(rec["_key"])} for rec, res in ok]))

    ending = phase in ("close", "cancel")
    return Ledger(ctx, ENTITY, erp.system, on_ok=ended if ending else opened, done=not ending,
                  then=["crm"] if phase == "add" else (), results="erp_results",
                  row=lambda rec, res: {"hub_id": rec["_key"], "phase": phase, "op": ops.loc[rec["_key"], "op"],
                                        "result": res.status, "erp_number": res.native_key},
                  payload=lambda rec: {k: v for k, v in rec.items() if k != nest} | {"lines": len(rec.get(nest) or [])}
                  ).persist


def _write_crm(ctx: StepContext) -> StepCounts:
    """The U8 order number (and the hub id) into the CRM orders U8 just got, through the outbox
    (target ``crm``): a PATCH that failed or was killed is sent by the next run."""
    x = model.xref.c
    with ctx.engine.begin() as conn:
        ids = outbox.ids(conn, ENTITY, "crm")
        opened = select_in(conn, model.xref, "hub_id", ids, where=[x.entity == ENTITY, x.system == _erp(),
                                                                   x.native_version == OPEN],
                           columns=["hub_id", "native_key"]).rename(columns={"native_key": "erp_number"})
        heads = select_in(conn, model.sales_order, "hub_id", ids, columns=["hub_id", "erp_code"])
        crm_keys = select_in(conn, model.xref, "hub_id", ids, where=[x.entity == ENTITY, x.system == "crm"],
                             columns=["hub_id", "native_key"])
        want = opened.merge(heads, on="hub_id").merge(crm_keys, on="hub_id")
        todo = want[want["erp_number"] != want["erp_code"]]
        outbox.mark(conn, ENTITY, "crm", sorted(set(ids) - set(todo["hub_id"])))
    counts = StepCounts(read=len(ids), skipped=len(ids) - len(todo))
    if todo.empty:
        return counts
    spec = engine.load_spec(HEADER_SPEC)
    code_field, hub_field = spec.field_for("erp_code"), spec.field_for("hub_id")
    records = [{"_key": h, "id": k, code_field: code, hub_field: h}
               for h, k, code in zip(todo["hub_id"], todo["native_key"], todo["erp_number"])]

    def holds(conn, ok) -> None:
        _crm_now_holds(conn, ctx.run_id, {rec["_key"]: rec[code_field] for rec, _ in ok})

    ledger = Ledger(ctx, ENTITY, "crm", on_ok=holds, quarantine_key=lambda rec: rec["id"])
    return counts + write_in_chunks(ctx, crm(), "order", records, ledger.persist)


def _ready_before_orders() -> bool:
    """The ERP seat's binding option: a CRM order waits until its customer is complete (华测)."""
    return bool(roles.seat("erp").options.get("ready_before_orders"))


def _show_readiness(ctx: StepContext) -> StepCounts:
    """What keeps a customer from taking orders, into its CRM account's tenant field (``missing_for_orders``
    of customer_to_crm_account.yaml) while an order of it waits for that; emptied once none does.
    Written only when it changes (``crm_readiness``); a failed PATCH is sent again by the next run."""
    spec = engine.load_spec(ACCOUNT_SPEC)
    field = dict(spec.write_back).get("missing_for_orders")
    if not field:
        return StepCounts()
    r = model.crm_readiness.c
    with ctx.engine.begin() as conn:
        now = stage_read(conn, ctx.run_id, "unready")
        want = dict(zip(now["account_key"].astype(str), now["missing"])) if not now.empty else {}
        shown = dict(conn.execute(select(r.account_key, r.shown)).all())
    todo = {k: v for k, v in want.items() if shown.get(k) != v}
    todo |= {k: "" for k, v in shown.items() if v and k not in want}
    counts = StepCounts(read=len(todo))
    if not todo:
        return counts
    records = [{"_key": k, "id": k, field: v} for k, v in sorted(todo.items())]

    def holds(conn, ok) -> None:
        upsert(conn, model.crm_readiness, [{"account_key": rec["_key"], "shown": rec[field], "run_id": ctx.run_id,
                                            "updated_at": utcnow()} for rec, _ in ok], keys=["account_key"])

    ledger = Ledger(ctx, "customer_readiness", "crm", on_ok=holds, done=False, failed_status=None)
    return counts + write_in_chunks(ctx, crm(), spec.stream, records, ledger.persist)


def _crm_now_holds(conn, run_id: str, erp_codes: dict[str, str]) -> None:
    """The CRM orders now carry these U8 numbers: canonical erp_code and the xref hash follow,
    so reading the order back is no change (no echo)."""
    ids = list(erp_codes)
    heads = select_in(conn, model.sales_order, "hub_id", ids)
    heads["erp_code"] = heads["hub_id"].map(erp_codes)
    lines = select_in(conn, model.sales_order_line, "order_hub_id", ids)
    hashes = order_documents.order_hashes(heads, lines)
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

def done_label(op: str, phase: str, result: str, label: str) -> str | None:
    """The outcome of an order whose last phase ended in ``result``, naming the bound ERP."""
    return {("add", "add", "created"): f"created in {label}",
            ("replace", "add", "created"): f"replaced in {label} (changed order: old one closed)",
            ("replace", "change", "updated"): f"changed in {label}",
            ("cancel", "close", "updated"): f"closed in {label} (cancelled in the CRM)",
            ("cancel", "cancel", "updated"): f"cancelled in {label} (cancelled in the CRM)"}.get((op, phase, result))


def outcomes(conn, run_id: str) -> pd.DataFrame:
    """Every CRM order this run read, and every waiting order it looked at again, with the one
    outcome it ended in (the report's in = written + skipped + quarantined)."""
    label = roles.erp().label
    raw = stage_read(conn, run_id, "extract", HEAD)
    keys = raw["id"] if "id" in raw.columns else pd.Series([], dtype=object)
    results = stage_read(conn, run_id, "erp_results")
    sent_now = set(results["hub_id"]) if not results.empty else set()  # a waiting order re-read unchanged may go now
    out = read_outcomes(conn, run_id, ENTITY, "crm", keys, order_hub_id, stage_read(conn, run_id, "skipped", HEAD),
                        exempt=sent_now)
    seen = set(out["hub_id"].dropna())
    waiting_now = outbox.reasons(conn, ENTITY, _erp(), outbox.WAITING)
    looked_at = stage_read(conn, run_id, "publish_waiting")
    extra = set(looked_at["hub_id"]) if not looked_at.empty else set()
    if not results.empty:
        extra |= set(results["hub_id"])
    others = pd.DataFrame({"system": "outbox", "hub_id": sorted(extra - seen)})
    others["key"], others["outcome"], others["detail"] = others["hub_id"], None, None
    out = pd.concat([out, others], ignore_index=True)
    if not results.empty:
        final = results.drop_duplicates("hub_id", keep="last").set_index("hub_id")
        done = final.apply(lambda r: done_label(r["op"], r["phase"], r["result"], label), axis=1)
        failed = final["result"] == "failed"
        open_rows = out["outcome"].isna()
        out.loc[open_rows, "outcome"] = out.loc[open_rows, "hub_id"].map(done)
        is_failed = out["outcome"].isna() & out["hub_id"].isin(final.index[failed])
        out.loc[is_failed, ["outcome", "detail"]] = ["quarantined", f"{label} refused the write (see quarantine, stage write)"]
    refused = quarantined_keys(conn, run_id, ENTITY, ["publish"])
    refused = refused.drop_duplicates("key").set_index("key")["detail"]
    hit = out["outcome"].isna() & out["hub_id"].isin(refused.index)
    out.loc[hit, "outcome"] = "quarantined"
    out.loc[hit, "detail"] = out.loc[hit, "hub_id"].map(refused)
    hit = out["outcome"].isna() & out["hub_id"].isin(waiting_now)
    out.loc[hit, "outcome"] = "waiting"
    out.loc[hit, "detail"] = out.loc[hit, "hub_id"].map(waiting_now)
    failed_before = outbox.reasons(conn, ENTITY, _erp(), outbox.FAILED)
    hit = out["outcome"].isna() & out["hub_id"].isin(failed_before)
    out.loc[hit, "outcome"] = "quarantined"
    out.loc[hit, "detail"] = out.loc[hit, "hub_id"].map(failed_before)
    out.loc[out["outcome"].isna(), ["outcome", "detail"]] = ["stored in hub", f"{label} already holds this version"]
    return out
