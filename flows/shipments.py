"""The shipments flow: the ERP's deliveries (U8 发货单) → hub → CRM.

extract (the deliveries by their change cursor, e.g. U8 DispatchList by ufts; their lines and the
order lines those ship, read by key through the ERP's named lookups, set-based) → map (YAML
specs; a bad line holds its delivery) → validate (GX) → resolve (a delivery of an order the hub
sent: linked to the order and, through the order-line key (U8 iSOsID), to the order lines;
others skipped; unchanged ones skipped by hash) → load (canonical shipment and lines, xref,
outbox for the shipment and for its order's delivery state) → publish (the shipment record, and
each touched order's shipped quantities and status partial / complete) → write back (the CRM's
shipment record, 销售易 shipment__c, created or patched, looked up by its natural key, the
dispatch number, first; each order line's shipped quantity and the order's delivery status
patched, in the fields the mapping's ``write_back`` names).

The engine (flows/engine.py over flows/specs/shipments.yaml) reads the deliveries, maps and
gates them; the rest is this module's: the lines follow their deliveries by key, and resolve
and load differ from the engine's (hub ids from the ERP's keys, shipments of orders the hub did
not send skipped, one hash over a delivery and its lines, no source records, lines replaced,
the order's delivery state enqueued). Every write result goes through :class:`flows.ledger.Ledger`.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from decimal import Decimal
from typing import Callable

import pandas as pd
from sqlalchemy import delete

from flows import assets, roles
from flows.engine import Flow
from flows.ledger import Ledger
from flows.steps import (crm_write_outcomes, json_safe, read_outcomes, save_outcomes,
                         upsert_canonical, with_known_hashes, write_in_chunks, write_to_crm)
from hub import model, money, outbox, quarantine, watermarks, xref
from hub.model import SHIPMENT_FIELDS, SHIPMENT_LINE_FIELDS
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import chunks, select_in, stage_read, stage_write
from mappings import engine
from quality.orders import shipment_facts

log = logging.getLogger("flows.shipments")

FLOW = "shipments"
ENTITY, LINE_ENTITY, DELIVERY = "shipment", "shipment_line", "sales_order_delivery"
TO_CRM = "shipment_to_crm"
#: The CRM's order and order-line objects (their read specs name them), patched with delivery state.
CRM_ORDER_SPEC, CRM_ORDER_LINE_SPEC = "crm_order_to_sales_order", "crm_order_product_to_sales_order_line"
HEAD, LINES, SO_LINES = "erp", "erp.lines", "erp.so_lines"   # staging keys of the spec's sources
NS = uuid.UUID("c8e1d0a4-7f6b-4c3d-a2e9-5b4f3e2d1c0b")
LINE_HASH = ("native_key", "line_no", "product_code", "quantity", "serial_numbers", "so_line_key", "order_line_hub_id")
HEAD_HASH = ("code", "order_code", "ship_date", "carrier", "tracking_no", "is_return", "order_hub_id")


#: The engine's steps of flows/specs/shipments.yaml: deliveries and their lines mapped (a line that
#: does not map holds its delivery back), gated by the shipment suite with their line facts.
FLOW_ENGINE = Flow(FLOW, prepare=shipment_facts)


def specs() -> tuple[engine.Spec, engine.Spec, engine.Spec]:
    """The bound ERP's mappings of the spec's sources: deliveries, their lines, and the order
    lines those ship."""
    by_stage = {src.stage: src.spec for src in FLOW_ENGINE.sources()}
    return by_stage[HEAD], by_stage[LINES], by_stage[SO_LINES]


def source_of(spec: engine.Spec, target: str) -> str:
    """The ERP column a canonical field is mapped from (the keys the ERP's lookups take)."""
    found = next((f.source for f in spec.fields if f.target == target and f.source), None)
    if found is None:
        raise KeyError(f"mapping {spec.name} maps no source field to {target!r}")
    return found


def hub_ids() -> tuple[Callable[[str], str], Callable[[str], str]]:
    """(shipment, shipment line) hub id of the ERP's delivery and delivery-line keys: stable for
    the seat and its streams (``u8:DispatchList:<DLID>``, ``u8:DispatchLists:<AutoID>`` under the
    default bindings), so a rebuilt hub finds the same ids."""
    system, (head, line, _) = roles.erp().system, specs()

    def of(stream: str) -> Callable[[str], str]:
        return lambda key: str(uuid.uuid5(NS, f"{system}:{stream}:{key}"))

    return of(head.stream), of(line.stream)


def crm():
    """The CRM seat's connector; a shipment create is looked up first by the spec's natural key."""
    spec = engine.load_spec(TO_CRM)
    return roles.crm().connector(streams={spec.stream: [spec.natural_key]},
                                 natural_keys={spec.stream: spec.natural_key})


# --- extract (map and validate are the engine's) ----------------------------------------------------

def extract(ctx: StepContext) -> StepCounts:
    """Deliveries changed since the watermark (the engine's), then their lines and the order lines
    those ship, read by key through the ERP's named lookups."""
    erp = roles.erp()
    head, line, so_line = specs()
    counts = FLOW_ENGINE.extract(ctx)
    with ctx.engine.begin() as conn:
        heads = stage_read(conn, ctx.run_id, "extract", HEAD)
    ids = heads[head.key].tolist() if not heads.empty else []
    lines = erp.dispatch_lines(ids, line.source_fields)
    so_key = source_of(line, "so_line_key")
    so_lines = erp.order_lines([r[so_key] for r in lines if r.get(so_key)], so_line.source_fields)
    with ctx.engine.begin() as conn:
        stage_write(conn, ctx.run_id, "extract", pd.DataFrame([json_safe(r) for r in lines]), LINES)
        stage_write(conn, ctx.run_id, "extract", pd.DataFrame([json_safe(r) for r in so_lines]), SO_LINES)
    return counts


# --- resolve / load --------------------------------------------------------------------------------

def _link(conn, heads: pd.DataFrame, lines: pd.DataFrame, so_lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attach each shipment to the hub order of its ERP order number and each line to the order
    line it ships (order-line key → the ERP's order line → order number + row number → the
    hub's order line; U8: iSOsID → SO_SODetails → cSOCode + iRowNo)."""
    erp, so_spec = roles.erp().system, specs()[2]
    ship_id, line_id = hub_ids()
    orders = xref.lookup(conn, "sales_order", erp, heads["order_code"].dropna().astype(str).tolist())
    by_code = orders.drop_duplicates("native_key").set_index("native_key")["hub_id"]
    heads = heads.assign(hub_id=heads["_key"].map(ship_id),
                         order_hub_id=heads["order_code"].map(lambda c: by_code.get(str(c)) if isinstance(c, str) else None))
    if lines.empty:
        return heads, pd.DataFrame(columns=["hub_id", "shipment_hub_id", *SHIPMENT_LINE_FIELDS])
    lines = lines.assign(hub_id=lines["_key"].map(line_id), shipment_hub_id=lines["shipment_key"].map(ship_id),
                         native_key=lines["_key"], so_line_key=lines["so_line_key"].astype(str))
    so = engine.apply(so_spec, so_lines).frame if not so_lines.empty else pd.DataFrame()
    so = so.assign(rowno=so["line_no"].map(lambda n: None if n is None else str(n)))[
        ["so_line_key", "rowno", "order_code"]].dropna(subset=["order_code"]) if not so.empty else \
        pd.DataFrame(columns=["so_line_key", "rowno", "order_code"])
    codes = xref.lookup(conn, "sales_order", erp, so["order_code"].unique().tolist()).drop_duplicates("native_key")
    so = so.merge(codes.rename(columns={"native_key": "order_code", "hub_id": "order_hub_id"})[["order_code", "order_hub_id"]],
                  on="order_code", how="inner")
    order_lines = select_in(conn, model.sales_order_line, "order_hub_id", so["order_hub_id"].unique().tolist(),
                            columns=["hub_id", "order_hub_id", "line_no"]).rename(
        columns={"hub_id": "order_line_hub_id", "line_no": "rowno"})
    so = so.merge(order_lines, on=["order_hub_id", "rowno"], how="left")
    lines = lines.merge(so.drop_duplicates("so_line_key")[["so_line_key", "order_line_hub_id"]], on="so_line_key", how="left")
    return heads, lines


def resolve_step(ctx: StepContext) -> StepCounts:
    """Shipments of orders the hub sent, linked to their order lines; unchanged ones skipped."""
    erp = roles.erp()
    with ctx.engine.begin() as conn:
        heads = stage_read(conn, ctx.run_id, "validate", HEAD)
        counts = StepCounts(read=len(heads))
        if heads.empty:
            for name in ("resolve", "skipped"):
                stage_write(conn, ctx.run_id, name, heads, HEAD)
            return counts
        heads, lines = _link(conn, heads, stage_read(conn, ctx.run_id, "validate", LINES),
                             stage_read(conn, ctx.run_id, "extract", SO_LINES))
        hashes = _hashes(heads, lines)
        batch = with_known_hashes(conn, ENTITY, erp.system, heads, heads["hub_id"].map(hashes))
        batch["hub_id"] = batch["_key"].map(hub_ids()[0])
        reason = pd.Series(None, index=batch.index, dtype=object)
        reason[batch["order_hub_id"].isna()] = f"not a shipment of an order the hub sent to {erp.label}"
        reason[batch["known_hash"].notna() & (batch["content_hash"] == batch["known_hash"])] = "unchanged since last run"
        counts.skipped = int(reason.notna().sum())
        changed = batch[reason.isna()].drop(columns=["known_hash"])
        stage_write(conn, ctx.run_id, "resolve", changed, HEAD)
        stage_write(conn, ctx.run_id, "resolve", lines[lines["shipment_hub_id"].isin(changed["hub_id"])], LINES)
        stage_write(conn, ctx.run_id, "skipped", batch.loc[reason.notna(), ["_key", "hub_id"]].assign(
            reason=reason[reason.notna()].to_numpy()), HEAD)
    return counts


def _hashes(heads: pd.DataFrame, lines: pd.DataFrame) -> pd.Series:
    head = xref.content_hash(heads, list(HEAD_HASH))
    digest = (lines.assign(_h=xref.content_hash(lines, list(LINE_HASH))).sort_values("native_key")
              .groupby("shipment_hub_id")["_h"].agg("".join)) if not lines.empty else pd.Series(dtype=object)
    joined = head.to_numpy() + heads["hub_id"].map(digest).fillna("").to_numpy()
    return pd.Series([hashlib.sha256(s.encode()).hexdigest() for s in joined], index=heads["hub_id"].to_numpy())


def load(ctx: StepContext) -> StepCounts:
    """Canonical shipments and lines, xref; the shipment and its order's delivery state enqueued."""
    system = roles.erp().system
    with ctx.engine.begin() as conn:
        heads, lines = stage_read(conn, ctx.run_id, "resolve", HEAD), stage_read(conn, ctx.run_id, "resolve", LINES)
        counts = StepCounts(read=len(heads))
        if not heads.empty:
            heads["ship_date"] = heads["ship_date"].map(lambda v: str(v)[:10] if isinstance(v, str) else None)
            counts.written = upsert_canonical(conn, model.shipment, heads, SHIPMENT_FIELDS, ctx.run_id)
            for part in chunks(heads["hub_id"].tolist()):
                conn.execute(delete(model.shipment_line).where(model.shipment_line.c.shipment_hub_id.in_(part)))
            if not lines.empty:
                upsert_canonical(conn, model.shipment_line, lines.assign(
                    content_hash=xref.content_hash(lines, list(LINE_HASH))), SHIPMENT_LINE_FIELDS, ctx.run_id)
            xref.save(conn, ENTITY, system, heads.rename(columns={"_key": "native_key"}).assign(
                native_version=heads["_version"].astype(str)))
            quarantine.resolve(conn, run_id=ctx.run_id, flow=FLOW, system=system, record_keys=heads["_key"].tolist())
            source = _order_sources(conn, heads["order_hub_id"].dropna().unique().tolist())
            of_shop = heads["order_hub_id"].map(source)
            from_crm = heads[of_shop.isna()]
            outbox.enqueue(conn, ENTITY, ctx.run_id, from_crm["hub_id"].tolist(), ["crm"])
            outbox.enqueue(conn, DELIVERY, ctx.run_id, from_crm["order_hub_id"].dropna().unique().tolist(), ["crm"])
            for seat, part in heads[of_shop.notna()].groupby(of_shop[of_shop.notna()]):
                outbox.enqueue(conn, ENTITY, ctx.run_id, part["hub_id"].tolist(), [str(seat)])
            assets.record(conn, ctx.run_id, heads, lines, pd.Series(of_shop.isna().to_numpy(), index=heads["hub_id"]))
        log.info("watermarks moved: %s", watermarks.commit_pending(conn, ctx.run_id, FLOW))
    return counts


def _order_sources(conn, order_hub_ids: list[str]) -> pd.Series:
    """Order hub id → the shop seat it came from (orders of the CRM are absent)."""
    rows = select_in(conn, model.sales_order, "hub_id", order_hub_ids, columns=["hub_id", "source"])
    shops = {b.name for b in roles.seats("shop")}
    rows = rows[rows["source"].isin(shops)]
    return rows.set_index("hub_id")["source"]


# --- publish ---------------------------------------------------------------------------------------

def _crm_order_ids(conn, order_hub_ids: list[str]) -> pd.Series:
    x = model.xref.c
    rows = select_in(conn, model.xref, "hub_id", order_hub_ids, where=[x.entity == "sales_order", x.system == "crm"],
                     columns=["hub_id", "native_key"])
    return rows.drop_duplicates("hub_id").set_index("hub_id")["native_key"]


def _shipment_records(conn, ids: list[str]) -> pd.DataFrame:
    """The CRM projection of these shipments (one row each) with its hash."""
    heads = select_in(conn, model.shipment, "hub_id", ids)
    lines = select_in(conn, model.shipment_line, "shipment_hub_id", ids)
    heads["crm_order_id"] = heads["order_hub_id"].map(_crm_order_ids(conn, heads["order_hub_id"].dropna().tolist()))
    heads["ship_day"] = heads["ship_date"]
    if not lines.empty:
        lines = lines.assign(_n=pd.to_numeric(lines["line_no"], errors="coerce")).sort_values(["shipment_hub_id", "_n"])
        items = lines.groupby("shipment_hub_id").apply(
            lambda g: "; ".join(f"{c} × {q}" for c, q in zip(g["product_code"], g["quantity"])), include_groups=False)
        serials = lines.dropna(subset=["serial_numbers"]).groupby("shipment_hub_id")["serial_numbers"].agg(",".join)
        heads["items"] = heads["hub_id"].map(items)
        heads["serial_numbers"] = heads["hub_id"].map(serials)
    else:
        heads["items"], heads["serial_numbers"] = None, None
    heads["content_hash"] = xref.content_hash(heads, engine.load_spec(TO_CRM).hash_fields)
    return heads


def delivery_state(conn, order_hub_ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per order line: ordered and shipped quantity (Decimal sums over every shipment of the
    order, returns negative); per order: none | partial | complete and a hash of it all."""
    order_lines = select_in(conn, model.sales_order_line, "order_hub_id", order_hub_ids,
                            columns=["hub_id", "order_hub_id", "native_key", "quantity"])
    ships = select_in(conn, model.shipment, "order_hub_id", order_hub_ids, columns=["hub_id", "order_hub_id"])
    rows = select_in(conn, model.shipment_line, "shipment_hub_id", ships["hub_id"].tolist(),
                     columns=["order_line_hub_id", "quantity"])
    shipped: dict[str, Decimal] = {}
    for line, qty in zip(rows["order_line_hub_id"], rows["quantity"]):
        if isinstance(line, str):
            shipped[line] = shipped.get(line, Decimal(0)) + (money.dec(qty) or Decimal(0))
    order_lines["shipped"] = order_lines["hub_id"].map(lambda h: shipped.get(h, Decimal(0)))
    order_lines["complete"] = [s >= (money.dec(q) or Decimal(0)) for s, q in zip(order_lines["shipped"], order_lines["quantity"])]
    order_lines["shipped"] = order_lines["shipped"].map(money.text)
    per = order_lines.groupby("order_hub_id").agg(any_shipped=("shipped", lambda s: any(v != "0" for v in s)),
                                                  complete=("complete", "all"))
    per["status"] = ["complete" if c else "partial" if a else "none" for a, c in zip(per["any_shipped"], per["complete"])]
    state = per.reset_index()[["order_hub_id", "status"]]
    digest = order_lines.sort_values("native_key").groupby("order_hub_id").apply(
        lambda g: ";".join(f"{k}={s}" for k, s in zip(g["native_key"], g["shipped"])), include_groups=False)
    state["detail"] = state["order_hub_id"].map(digest)
    state["content_hash"] = xref.content_hash(state, ["status", "detail"])
    return state, order_lines


def publish(ctx: StepContext) -> StepCounts:
    """Shipment records the CRM lacks, and orders whose shipped quantities or status changed."""
    spec = engine.load_spec(TO_CRM)
    with ctx.engine.begin() as conn:
        replays = quarantine.take_replays(conn, FLOW, "crm", ["write"])
        if replays:
            outbox.mark(conn, ENTITY, "crm", [r["record_key"] for r in replays], outbox.PENDING)
        ids = outbox.ids(conn, ENTITY, "crm")
        ships = _shipment_records(conn, ids) if ids else pd.DataFrame(columns=["hub_id", "content_hash"])
        have = select_in(conn, model.xref, "hub_id", ids, where=[model.xref.c.entity == ENTITY, model.xref.c.system == "crm"],
                         columns=["hub_id", "native_key", "content_hash"]).drop_duplicates("hub_id")
        ships = ships.merge(have.rename(columns={"native_key": "crm_id", "content_hash": "crm_hash"}), on="hub_id", how="left")
        todo = ships[ships["crm_hash"].isna() | (ships["crm_hash"] != ships["content_hash"])]
        outbox.mark(conn, ENTITY, "crm", sorted(set(ids) - set(todo["hub_id"])))
        orders = outbox.ids(conn, DELIVERY, "crm")
        state, lines = delivery_state(conn, orders) if orders else (pd.DataFrame(columns=["order_hub_id"]), pd.DataFrame())
        if not state.empty:
            state["crm_id"] = state["order_hub_id"].map(_crm_order_ids(conn, orders))
            known = xref.lookup(conn, DELIVERY, "crm", state["crm_id"].dropna().tolist())
            state["crm_hash"] = state["crm_id"].map(known.set_index("native_key")["content_hash"])
        due = state[state["crm_hash"].isna() | (state["crm_hash"] != state["content_hash"])] if not state.empty else state
        outbox.mark(conn, DELIVERY, "crm", sorted(set(orders) - set(due.get("order_hub_id", []))))
        due_lines = lines[lines["order_hub_id"].isin(due["order_hub_id"])] if not due.empty else pd.DataFrame()
        stage_write(conn, ctx.run_id, "publish", todo.drop(columns=[c for c in ("created_at", "updated_at") if c in todo]))
        stage_write(conn, ctx.run_id, "publish_delivery", due)
        stage_write(conn, ctx.run_id, "publish_delivery_lines", due_lines)
    log.info("publish: %d shipments, %d orders' delivery state for the CRM (spec %s)", len(todo), len(due), spec.name)
    return StepCounts(read=len(ids) + len(orders), written=len(todo) + len(due),
                      skipped=len(ids) - len(todo) + len(orders) - len(due))


# --- write back ------------------------------------------------------------------------------------

def write_back(ctx: StepContext) -> StepCounts:
    counts = _write_shipments(ctx) + _write_delivery(ctx) + assets.write(ctx)   # assets link their delivery
    for binding in roles.seats("shop"):
        counts += _write_shop(ctx, binding)
    with ctx.engine.begin() as conn:
        result = outcomes(conn, ctx.run_id)
    save_outcomes(ctx, result)
    return counts


def _write_shipments(ctx: StepContext) -> StepCounts:
    """The CRM's shipment records, created or patched (looked up by the spec's natural key, the
    dispatch number, before a create)."""
    spec = engine.load_spec(TO_CRM)
    with ctx.engine.begin() as conn:
        todo = stage_read(conn, ctx.run_id, "publish")
        if not todo.empty:
            todo = todo[todo["hub_id"].isin(outbox.ids(conn, ENTITY, "crm"))].reset_index(drop=True)
    counts = StepCounts(read=len(todo))
    if todo.empty:
        return counts
    return counts + write_to_crm(ctx, ENTITY, spec, todo, crm(), "crm_results")


def _write_delivery(ctx: StepContext) -> StepCounts:
    """Shipped quantity on every line of a touched order, then the order's delivery status (the
    fields the mapping's ``write_back`` names, on the CRM's order and order-line objects)."""
    spec = engine.load_spec(TO_CRM)
    shipped_field, status_field = spec.field_for("shipped_quantity"), spec.field_for("delivery_status")
    with ctx.engine.begin() as conn:
        due = stage_read(conn, ctx.run_id, "publish_delivery")
        lines = stage_read(conn, ctx.run_id, "publish_delivery_lines")
        if not due.empty:
            due = due[due["order_hub_id"].isin(outbox.ids(conn, DELIVERY, "crm")) & due["crm_id"].notna()]
    counts = StepCounts(read=len(due))
    if due.empty:
        return counts
    connector = crm()
    line_records = [{"_key": k, "_order": o, "id": k, shipped_field: money.json_number(money.dec(s))}
                    for k, o, s in zip(lines["native_key"], lines["order_hub_id"], lines["shipped"])
                    if o in set(due["order_hub_id"])]
    # a line is no outbox entry and counts as no write: a refused one is quarantined under its
    # order, which then is not sent (its entry fails below, after the last chunk)
    line_ledger = Ledger(ctx, DELIVERY, "crm", on_ok=lambda conn, ok: 0, done=False, failed_status=None,
                         quarantine_key=lambda rec: rec["_order"])
    counts += write_in_chunks(ctx, connector, engine.load_spec(CRM_ORDER_LINE_SPEC).stream, line_records,
                              line_ledger.persist)
    order_of = {rec["_key"]: rec["_order"] for rec in line_records}
    failed_orders = {order_of[k] for k in line_ledger.failed}
    labels = engine.load_value_map("crm_delivery_status")[0]
    ready = due[~due["order_hub_id"].isin(failed_orders)]
    by_order = due.set_index("order_hub_id")
    order_records = [{"_key": h, "id": k, status_field: labels[s]}
                     for h, k, s in zip(ready["order_hub_id"], ready["crm_id"], ready["status"])]

    def holds(conn, ok) -> None:
        rows = by_order.loc[[rec["_key"] for rec, _ in ok]].reset_index()
        xref.save(conn, DELIVERY, "crm", pd.DataFrame({"hub_id": rows["order_hub_id"], "native_key": rows["crm_id"],
                                                       "native_version": rows["status"],
                                                       "content_hash": rows["content_hash"]}))

    # an order whose status the CRM refused stays pending: the next run sends it again
    order_ledger = Ledger(ctx, DELIVERY, "crm", on_ok=holds, failed_status=None)
    with ctx.engine.begin() as conn:
        outbox.mark(conn, DELIVERY, "crm", sorted(failed_orders), outbox.FAILED, "a line's shipped quantity was refused")
    orders_stream = engine.load_spec(CRM_ORDER_SPEC).stream
    return counts + write_in_chunks(ctx, connector, orders_stream, order_records, order_ledger.persist)


def _shop_records(conn, seat: str, ids: list[str], default_carrier: str | None = None
                  ) -> tuple[list[dict], dict[str, str]]:
    """What the shop is told of each shipment of its orders: the platform's order id, the lines it
    ships (None: every line of the order, a whole shipment), the carrier and tracking number; and,
    per shipment, why nothing is reported (a return, no tracking number: 客户自提)."""
    heads = select_in(conn, model.shipment, "hub_id", ids)
    lines = select_in(conn, model.shipment_line, "shipment_hub_id", ids, columns=["shipment_hub_id", "order_line_hub_id"])
    x = model.xref.c
    tids = select_in(conn, model.xref, "hub_id", heads["order_hub_id"].dropna().unique().tolist(),
                     where=[x.entity == "sales_order", x.system == seat], columns=["hub_id", "native_key"])
    tid_of = tids.drop_duplicates("hub_id").set_index("hub_id")["native_key"]
    order_lines = select_in(conn, model.sales_order_line, "order_hub_id", heads["order_hub_id"].dropna().unique().tolist(),
                            columns=["hub_id", "order_hub_id", "native_key"])
    oid_of = order_lines.set_index("hub_id")["native_key"].map(lambda k: str(k).split(":", 1)[-1])
    per_order = order_lines.groupby("order_hub_id")["hub_id"].agg(set)
    shipments_of = select_in(conn, model.shipment, "order_hub_id", heads["order_hub_id"].dropna().unique().tolist(),
                             columns=["hub_id", "order_hub_id"]).groupby("order_hub_id").size()
    state, _ = delivery_state(conn, heads["order_hub_id"].dropna().unique().tolist())
    # the lines earlier packages of the same orders already carried to the shop: a platform splits by
    # sub-order (a 子订单 has one waybill), so a line's remainder travels under its first package's number
    earlier = select_in(conn, model.shipment, "order_hub_id", heads["order_hub_id"].dropna().unique().tolist(),
                        columns=["hub_id", "order_hub_id"])
    earlier = earlier[~earlier["hub_id"].isin(ids)]
    told = select_in(conn, model.xref, "hub_id", earlier["hub_id"].tolist(),
                     where=[x.entity == ENTITY, x.system == seat], columns=["hub_id"])
    carried = select_in(conn, model.shipment_line, "shipment_hub_id", told["hub_id"].tolist(),
                        columns=["order_line_hub_id"])
    reported = set(carried["order_line_hub_id"].dropna())
    complete = set(state.loc[state["status"] == "complete", "order_hub_id"])
    records, nothing = [], {}
    for head in heads.to_dict("records"):
        hub_id, order = head["hub_id"], head["order_hub_id"]
        if str(head.get("is_return")).lower() in ("true", "1"):
            nothing[hub_id] = "a return: the shop is not told (refunds are the platform's)"
            continue
        if not head.get("tracking_no"):
            nothing[hub_id] = f"no tracking number ({head.get('carrier') or 'no carrier'}): nothing to report"
            continue
        carrier = head.get("carrier") or default_carrier
        if not carrier:
            nothing[hub_id] = ("the delivery names no carrier and the shop binding no default_carrier: "
                               "the tracking number cannot be reported without its express company")
            continue
        shipped = set(lines.loc[lines["shipment_hub_id"] == hub_id, "order_line_hub_id"].dropna())
        # the order's only shipment, shipping all of it, is the whole order; any other is a split
        # package, named by its lines (a line shipped in part is named in each package that carries it)
        whole = order in complete and int(shipments_of.get(order, 0)) <= 1 and shipped >= per_order.get(order, set())
        fresh = shipped - reported
        if not whole and not fresh:
            nothing[hub_id] = "every line of this package went to the shop with an earlier package's tracking number"
            continue
        records.append({"_key": hub_id, "tid": str(tid_of.get(order)), "carrier": carrier,
                        "tracking_no": str(head["tracking_no"]),
                        "oids": None if whole else sorted(str(oid_of[h]) for h in fresh if h in oid_of.index)})
    return records, nothing


def _write_shop(ctx: StepContext, binding) -> StepCounts:
    """Carrier and tracking number of each shipment of a shop's order reported to the shop
    (partial shipments by line where the platform takes them). A repeat is no second shipment:
    the platform already holding that tracking number for the order answers ``unchanged``."""
    seat = binding.name
    with ctx.engine.begin() as conn:
        ids = outbox.ids(conn, ENTITY, seat)
        records, nothing = _shop_records(conn, seat, ids, binding.options.get("default_carrier")) if ids else ([], {})
        outbox.mark(conn, ENTITY, seat, sorted(nothing))
        stage_write(conn, ctx.run_id, "shop_nothing", pd.DataFrame({"hub_id": list(nothing),
                                                                    "reason": list(nothing.values())}), seat)
    counts = StepCounts(read=len(ids), skipped=len(nothing))
    if not records:
        return counts

    def holds(conn, ok) -> None:
        xref.save(conn, ENTITY, seat, pd.DataFrame([{"hub_id": rec["_key"], "native_key": f"{rec['tid']}:{rec['tracking_no']}",
                                                     "native_version": None, "content_hash": None} for rec, _ in ok]))

    ledger = Ledger(ctx, ENTITY, seat, on_ok=holds, results="shop_results", row=lambda rec, res: {
        "hub_id": rec["_key"], "seat": seat, "result": res.status})
    return counts + write_in_chunks(ctx, roles.adapter(binding).connector(write=True), "shipment", records,
                                    ledger.persist)


#: The seven steps, in order, as the DAG schedules them.
STEP_FUNCTIONS = {
    "extract": extract, "map": FLOW_ENGINE.map, "validate": FLOW_ENGINE.validate, "resolve": resolve_step,
    "load": load, "publish": publish, "write_back": write_back,
}


# --- outcomes --------------------------------------------------------------------------------------

RESULT_OUTCOMES = {"created": "created in CRM", "updated": "updated in CRM",
                   "linked": "linked to the CRM shipment with its dispatch number", "failed": "quarantined"}


def outcomes(conn, run_id: str) -> pd.DataFrame:
    """Every ERP delivery this run read, with the one outcome it ended in."""
    key = specs()[0].key
    raw = stage_read(conn, run_id, "extract", HEAD)
    keys = raw[key] if key in raw else pd.Series([], dtype=object)
    out = read_outcomes(conn, run_id, ENTITY, roles.erp().system, keys, hub_ids()[0],
                        stage_read(conn, run_id, "skipped", HEAD))
    out = crm_write_outcomes(conn, run_id, ENTITY, out, RESULT_OUTCOMES)
    shops = stage_read(conn, run_id, "shop_results")
    if not shops.empty:
        labels = {b.name: b.label for b in roles.seats("shop")}
        final = shops.drop_duplicates("hub_id", keep="last").set_index("hub_id")
        said = {"created": "reported to {}", "unchanged": "{} already had this tracking number"}
        done = final.apply(lambda r: said[r["result"]].format(labels.get(r["seat"], r["seat"]))
                           if r["result"] in said else "quarantined", axis=1)
        hit = out["outcome"].isna() & out["hub_id"].isin(done.index)
        out.loc[hit, "outcome"] = out.loc[hit, "hub_id"].map(done)
        out.loc[hit & (out["outcome"] == "quarantined"), "detail"] = "the shop refused it (see quarantine, stage write)"
    for binding in roles.seats("shop"):
        quiet = stage_read(conn, run_id, "shop_nothing", binding.name)
        if not quiet.empty:
            why = quiet.set_index("hub_id")["reason"]
            hit = out["outcome"].isna() & out["hub_id"].isin(why.index)
            out.loc[hit, "outcome"] = "skipped"
            out.loc[hit, "detail"] = out.loc[hit, "hub_id"].map(why).map(lambda r, b=binding: f"{b.label}: {r}")
    out.loc[out["outcome"].isna(), ["outcome", "detail"]] = ["stored in hub", "the CRM already holds this version"]
    return out
