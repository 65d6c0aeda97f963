"""The stock flow (inventory availability; 销售易 E公司, 纷享销客: sales see stock and are warned when it
runs short): the ERP's stock rows → hub → CRM.

extract … load are the engine's over flows/specs/stock.yaml: the ERP's stock rows (U8 CurrentStock:
one per warehouse, item and batch) read by their change cursor (U8 ``ufts``), gated by the stock
suite, unchanged rows skipped by hash, stored as canonical ``stock`` rows. publish sums the rows of
every product and warehouse a changed row touches (exact decimals) into a stock level — on hand,
reserved (U8 待发货: what orders already in the ERP hold), available (U8 可用量) — and keeps the
levels whose CRM copy differs; levels of a product the CRM did not hold before are picked up once it
does. write back creates or patches the CRM's stock records (``stock_to_crm``; the key
``<code>@<warehouse>`` is looked up before a create), then flags each CRM order line the ERP has not
taken yet whose quantity is above its product's available stock over all warehouses (the line's
``shortage`` field, emptied once it is not short or the ERP took the order: the ERP's available
quantity already holds back what its own orders reserve).
"""
from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import pandas as pd
from sqlalchemy import select

from flows import order_documents, roles
from flows.engine import Flow
from flows.product_master import hub_id_of as product_id
from flows.ledger import Ledger
from flows.steps import read_outcomes, save_outcomes, write_in_chunks, write_to_crm
from hub import model, money, outbox, xref
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import select_in, stage_read, stage_write, utcnow
from mappings import engine

log = logging.getLogger("flows.stock")

FLOW = ENTITY = "stock"
LEVEL, SHORTAGE = "stock_level", "stock_shortage"
TO_CRM = "stock_to_crm"
CRM_ORDER_LINE_SPEC = "crm_order_product_to_sales_order_line"
NS = uuid.UUID("5d2e8b14-6a3f-4c7e-9b10-2f4a6c8e0d31")
QUANTITIES = ("on_hand", "reserved", "available")
NOT_IN_CRM = "its product is not linked to a CRM product (product_master links it by its code once the ERP's record passes)"


def hub_id_of(key: str, system: str | None = None) -> str:
    """A stock row's hub id: stable for the ERP seat and the row's key (U8 CurrentStock.AutoID)."""
    return str(uuid.uuid5(NS, f"{system or roles.erp().system}:row:{key}"))


def level_id(product_code: str, warehouse: str, system: str | None = None) -> str:
    return str(uuid.uuid5(NS, f"{system or roles.erp().system}:level:{product_code}@{warehouse}"))


FLOW_ENGINE = Flow(FLOW, hub_id=hub_id_of)


def crm():
    spec = engine.load_spec(TO_CRM)
    return roles.crm().connector(streams={spec.stream: [spec.natural_key]},
                                 natural_keys={spec.stream: spec.natural_key})


def _sum(values: pd.Series) -> str:
    return money.text(sum((money.dec(v) or Decimal(0) for v in values), Decimal(0)))


def _crm_products(conn, codes: list[str]) -> dict[str, str]:
    """ERP product code → the CRM's product id (what product_master linked)."""
    ids = {product_id(c): c for c in codes}
    return {ids[h]: k for h, k in xref.of_hub_ids(conn, "product", "crm", list(ids))["native_key"].items()}

def levels(conn, products: list[str]) -> pd.DataFrame:
    """Per product (of ``products``) and warehouse: the quantities summed over its stock rows."""
    cols = ["hub_id", "product_code", "warehouse_code", *QUANTITIES]
    rows = select_in(conn, model.stock, "product_code", products, columns=cols[1:])
    if rows.empty:
        return pd.DataFrame(columns=[*cols, "stock_key"])
    out = rows.groupby(["product_code", "warehouse_code"], as_index=False).agg({q: _sum for q in QUANTITIES})
    system = roles.erp().system
    out["hub_id"] = [level_id(p, w, system) for p, w in zip(out["product_code"], out["warehouse_code"])]
    out["stock_key"] = out["product_code"] + "@" + out["warehouse_code"]
    return out


def publish(ctx: StepContext) -> StepCounts:
    """The stock levels the changed rows touch, and those never shown whose product the CRM now
    holds, where the CRM's copy differs."""
    spec = engine.load_spec(TO_CRM)
    with ctx.engine.begin() as conn:
        pending = outbox.ids(conn, ENTITY, "crm")
        touched = set(select_in(conn, model.stock, "hub_id", pending, columns=["product_code"])["product_code"])
        pairs = pd.DataFrame(conn.execute(select(model.stock.c.product_code, model.stock.c.warehouse_code).distinct()).all(),
                             columns=["product_code", "warehouse_code"])
        in_crm = _crm_products(conn, pairs["product_code"].unique().tolist())
        linked = pairs[pairs["product_code"].isin(list(in_crm))]
        ids = [level_id(p, w) for p, w in zip(linked["product_code"], linked["warehouse_code"])]
        shown = set(xref.of_hub_ids(conn, LEVEL, "crm", ids).index)
        unshown = {p for p, i in zip(linked["product_code"], ids) if i not in shown}
        due = levels(conn, sorted(touched | unshown))   # only these products' rows are summed
        due = due[due["product_code"].isin(touched) | ~due["hub_id"].isin(shown)]
        due = due.assign(crm_product_id=due["product_code"].map(in_crm), as_of=utcnow().isoformat(timespec="seconds"))
        waiting = due[due["crm_product_id"].isna()]
        due = due[due["crm_product_id"].notna()].copy()
        due["content_hash"] = xref.content_hash(due, spec.hash_fields)
        have = xref.of_hub_ids(conn, LEVEL, "crm", due["hub_id"].tolist())
        due["crm_id"] = due["hub_id"].map(have["native_key"])
        todo = due[due["hub_id"].map(have["content_hash"]) != due["content_hash"]]
        outbox.mark(conn, ENTITY, "crm", pending)
        stage_write(conn, ctx.run_id, "publish", todo)
        stage_write(conn, ctx.run_id, "publish_waiting", waiting[["product_code", "warehouse_code"]])
    log.info("publish: %d stock rows changed, %d levels for the CRM, %d wait for their product", len(pending),
             len(todo), len(waiting))
    return StepCounts(read=len(due) + len(waiting), written=len(todo), skipped=len(due) - len(todo) + len(waiting))


def write_back(ctx: StepContext) -> StepCounts:
    """The CRM's stock records, then the order lines' shortage flags."""
    spec = engine.load_spec(TO_CRM)
    with ctx.engine.begin() as conn:
        todo = stage_read(conn, ctx.run_id, "publish")
    counts = StepCounts(read=len(todo))
    if not todo.empty:
        counts += write_to_crm(ctx, LEVEL, spec, todo.reset_index(drop=True), crm(), "crm_results")
    counts += _flag_shortages(ctx, spec.field_for("shortage"))
    with ctx.engine.begin() as conn:
        result = outcomes(conn, ctx.run_id)
    save_outcomes(ctx, result)
    return counts


# --- shortages on CRM order lines ------------------------------------------------------------------

def shortages(conn) -> pd.DataFrame:
    """Per line of a CRM order the ERP has not taken yet (its outbox entry pending or waiting):
    its CRM line id and the shortage text ('' when the product's available stock covers it)."""
    erp = roles.erp()
    heads = order_documents.untaken_orders(conn, roles.seat("erp").name)
    lines = select_in(conn, model.sales_order_line, "order_hub_id", heads["hub_id"].tolist() if not heads.empty else [],
                      columns=["native_key", "product_key", "quantity"])
    if lines.empty:
        return pd.DataFrame(columns=["native_key", "text"])
    x = model.xref.c
    crm_products = select_in(conn, model.xref, "native_key", lines["product_key"].dropna().astype(str).unique().tolist(),
                             where=[x.entity == "product", x.system == "crm"], columns=["native_key", "hub_id"])
    codes = select_in(conn, model.product, "hub_id", crm_products["hub_id"].tolist(), columns=["hub_id", "code"])
    code_of = crm_products.merge(codes, on="hub_id").drop_duplicates("native_key").set_index("native_key")["code"]
    lines["code"] = lines["product_key"].astype(str).map(code_of)
    stock = select_in(conn, model.stock, "product_code", lines["code"].dropna().unique().tolist(),
                      columns=["product_code", "available"])
    available = stock.groupby("product_code")["available"].agg(_sum) if not stock.empty else pd.Series(dtype=object)
    texts = []
    for code, qty in zip(lines["code"], lines["quantity"]):
        have = money.dec(available.get(code)) if isinstance(code, str) and code in available.index else None
        want = money.dec(qty) or Decimal(0)
        texts.append("" if have is None or want <= have else
                     f"库存不足: 可用 {money.text(have)}, 订购 {money.text(want)} ({erp.label} 现存量, {code})")
    return pd.DataFrame({"native_key": lines["native_key"].astype(str), "text": texts})


def _flag_shortages(ctx: StepContext, field: str) -> StepCounts:
    """Write each line's shortage text where it changed; empty the lines flagged before that no longer
    are (short no more, or the ERP took the order). A refused line stays as it was and is tried next run."""
    with ctx.engine.begin() as conn:
        now = shortages(conn)
        x = model.xref.c
        before = pd.DataFrame(conn.execute(select(x.native_key, x.native_version).where(
            x.entity == SHORTAGE, x.system == "crm")).all(), columns=["native_key", "shown"])
    merged = now.merge(before, on="native_key", how="outer")
    merged["text"] = merged["text"].fillna("")
    merged["shown"] = merged["shown"].fillna("")
    due = merged[merged["text"] != merged["shown"]]
    records = [{"_key": k, "id": k, field: t} for k, t in zip(due["native_key"], due["text"])]
    counts = StepCounts(read=len(merged), skipped=len(merged) - len(due))
    if not records:
        return counts

    def holds(conn, ok) -> int:
        xref.save(conn, SHORTAGE, "crm", pd.DataFrame([{"native_key": rec["_key"], "hub_id": rec["_key"],
                                                         "native_version": rec[field] or None, "content_hash": None}
                                                        for rec, _ in ok]))
        return None

    ledger = Ledger(ctx, SHORTAGE, "crm", on_ok=holds, done=False, failed_status=None, results="shortage_results")
    stream = engine.load_spec(CRM_ORDER_LINE_SPEC).stream
    counts += write_in_chunks(ctx, roles.crm().connector(), stream, records, ledger.persist)
    log.info("shortage flags: %d lines written (%d short now)", len(records), int((now["text"] != "").sum()))
    return counts


#: The seven steps, in order, as the DAG schedules them.
STEP_FUNCTIONS = {
    "extract": FLOW_ENGINE.extract, "map": FLOW_ENGINE.map, "validate": FLOW_ENGINE.validate,
    "resolve": FLOW_ENGINE.resolve, "load": FLOW_ENGINE.load, "publish": publish, "write_back": write_back,
}


# --- outcomes --------------------------------------------------------------------------------------

def outcomes(conn, run_id: str) -> pd.DataFrame:
    """Every ERP stock row this run read, with the one outcome it ended in."""
    erp = roles.erp()
    src = FLOW_ENGINE.own_sources()[0]
    raw = stage_read(conn, run_id, "extract", src.stage)
    keys = raw[src.spec.key] if src.spec.key in raw.columns else pd.Series([], dtype=object)
    out = read_outcomes(conn, run_id, ENTITY, erp.system, keys, lambda k: hub_id_of(k, erp.system),
                        stage_read(conn, run_id, "skipped", src.stage))
    rows = select_in(conn, model.stock, "hub_id", out["hub_id"].dropna().tolist(),
                     columns=["hub_id", "product_code", "warehouse_code"])
    level_of = {h: level_id(p, w, erp.system) for h, p, w in zip(rows["hub_id"], rows["product_code"], rows["warehouse_code"])}
    results = stage_read(conn, run_id, "crm_results")
    said = {"created": "shown in the CRM's stock (created)", "updated": "shown in the CRM's stock (updated)",
            "linked": "shown in the CRM's stock (its record found by key)", "failed": "quarantined"}
    result = results.drop_duplicates("hub_id", keep="last").set_index("hub_id")["result"] if not results.empty \
        else pd.Series(dtype=object)
    waiting = stage_read(conn, run_id, "publish_waiting")
    waits = set(waiting["product_code"]) if not waiting.empty else set()
    res = out["hub_id"].map(level_of).map(result)
    hit = out["outcome"].isna() & res.notna()
    out.loc[hit, "outcome"] = res[hit].map(said).fillna("quarantined")
    out.loc[hit & (res == "failed"), "detail"] = "the CRM refused the stock record (see quarantine, stage write)"
    wait = out["outcome"].isna() & out["hub_id"].map(dict(zip(rows["hub_id"], rows["product_code"]))).isin(waits)
    out.loc[wait, ["outcome", "detail"]] = ["skipped", NOT_IN_CRM]
    out.loc[out["outcome"].isna(), ["outcome", "detail"]] = ["stored in hub", "the CRM already shows this stock level"]
    return out
