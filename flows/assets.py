"""Serial-numbered assets (九号, 施耐德): every serial number the ERP ships becomes one asset record in
the CRM, linked to the customer, product, order and delivery, with its warranty.

The shipments flow calls in at two points. At ``load`` each delivery line's serial numbers (U8
``DispatchLists.cInvSN``, comma-separated) are stored as events (``hub.model.asset_event``, one row
per serial per delivery line; a re-read delivery replaces its rows) and the assets they touch are
enqueued for the CRM. At ``write_back``, after the deliveries are in the CRM, each pending asset is
derived from all its events and written (``mappings/specs/asset_to_crm.yaml``; the serial is the
natural key the connector looks up before a create, so a create whose answer was lost, or a serial
shipped twice, stays one asset).

An asset's state is its latest event: shipped → ``in_service``, its warranty starting on that ship
date and ending after the product's warranty months (value map ``asset_warranty_months``: by ERP
product code, then by product class, then the map's default); returned (a 退货单 carrying the
serial) → ``returned``. Its links are those of the delivery that last shipped it.
"""
from __future__ import annotations

import calendar
import logging
import uuid
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import delete

from flows import roles
from flows.product_master import hub_id_of
from flows.steps import write_to_crm
from hub import model, outbox, xref
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import chunks, frame_records, select_in, stage_append, upsert
from mappings import engine

log = logging.getLogger("flows.assets")

ENTITY = "asset"
TO_CRM = "asset_to_crm"
WARRANTY = "asset_warranty_months"
NS = uuid.UUID("0b7f8a52-91c3-4e2d-b6a4-3c5d7e9f1a20")
#: Why a pending asset is not written in this run (it stays pending, the reason on its outbox entry).
NO_SHIPMENT = "waits for its delivery to be in the CRM"
NO_ACCOUNT = "its order's CRM account is unknown"


def asset_hub_id(product_code: str, serial: str, system: str | None = None) -> str:
    """One asset per ERP product and serial number (stable, so a rebuilt hub finds the same ids)."""
    return str(uuid.uuid5(NS, f"{system or roles.erp().system}:{product_code}:{serial}"))


def _is_return(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true")


# --- load: events ----------------------------------------------------------------------------------

def events(heads: pd.DataFrame, lines: pd.DataFrame, system: str) -> pd.DataFrame:
    """One row per serial per delivery line (duplicates within a line dropped), vectorised."""
    cols = ["shipment_line_hub_id", "serial", "asset_hub_id", "product_code", "shipment_hub_id", "order_hub_id",
            "order_line_hub_id", "ship_date", "is_return"]
    if lines.empty or "serial_numbers" not in lines:
        return pd.DataFrame(columns=cols)
    sn = lines.loc[lines["serial_numbers"].map(lambda v: isinstance(v, str) and bool(v.strip())),
                   ["hub_id", "shipment_hub_id", "order_line_hub_id", "product_code", "serial_numbers"]]
    if sn.empty:
        return pd.DataFrame(columns=cols)
    sn = sn.assign(serial=sn["serial_numbers"].str.split(r"[,，;\s]+", regex=True)).explode("serial")
    sn = sn[sn["serial"].map(lambda s: isinstance(s, str) and bool(s)).astype(bool)]
    sn = sn.drop_duplicates(["hub_id", "serial"]).rename(columns={"hub_id": "shipment_line_hub_id"})
    head = heads.set_index("hub_id")
    sn["order_hub_id"] = sn["shipment_hub_id"].map(head["order_hub_id"])
    sn["ship_date"] = sn["shipment_hub_id"].map(head["ship_date"])
    sn["is_return"] = sn["shipment_hub_id"].map(head["is_return"]).map(lambda v: "true" if _is_return(v) else "false")
    sn["asset_hub_id"] = [asset_hub_id(str(p), s, system) for p, s in zip(sn["product_code"], sn["serial"])]
    return sn[cols]


def record(conn, run_id: str, heads: pd.DataFrame, lines: pd.DataFrame, to_crm: pd.Series) -> int:
    """Replace the events of these deliveries and enqueue, for the CRM, the assets of deliveries of
    CRM orders (``to_crm``: per delivery hub id) whose events changed, the ones a line lost included."""
    system = roles.erp().system
    ids = heads["hub_id"].tolist()
    before = select_in(conn, model.asset_event, "shipment_hub_id", ids, columns=["asset_hub_id", "shipment_hub_id"])
    for part in chunks(ids):
        conn.execute(delete(model.asset_event).where(model.asset_event.c.shipment_hub_id.in_(part)))
    now = events(heads, lines, system)
    if not now.empty:
        upsert(conn, model.asset_event, frame_records(now.assign(run_id=run_id)), keys=["shipment_line_hub_id", "serial"])
    touched = pd.concat([before, now[["asset_hub_id", "shipment_hub_id"]]])
    touched = touched[touched["shipment_hub_id"].map(to_crm).fillna(False).astype(bool)]
    return outbox.enqueue(conn, ENTITY, run_id, sorted(set(touched["asset_hub_id"])), ["crm"])


# --- write back: the CRM's assets ------------------------------------------------------------------

def _add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def warranty_months(conn, codes: list[str]) -> dict[str, int]:
    """Per ERP product code: its warranty months (by code, then class, then the map's default)."""
    values, default, _ = engine.load_value_map(WARRANTY)
    products = select_in(conn, model.product, "hub_id", [hub_id_of(c) for c in codes], columns=["code", "class_code"])
    by_class = dict(zip(products["code"], products["class_code"]))
    out = {}
    for code in codes:
        months = values.get(code, values.get(str(by_class.get(code)), default))
        out[code] = int(months) if months is not None else 0
    return out


def projection(conn, asset_ids: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """What the CRM should hold of each asset (one row each, with its hash), and why the others wait."""
    ev = select_in(conn, model.asset_event, "asset_hub_id", asset_ids)
    if ev.empty:
        return pd.DataFrame(columns=["hub_id", "content_hash"]), {}
    codes = select_in(conn, model.shipment, "hub_id", ev["shipment_hub_id"].unique().tolist(), columns=["hub_id", "code"])
    ev["shipment_code"] = ev["shipment_hub_id"].map(codes.set_index("hub_id")["code"])
    ev = ev.sort_values(["asset_hub_id", "ship_date", "is_return", "shipment_code"], na_position="first")
    last = ev.drop_duplicates("asset_hub_id", keep="last").set_index("asset_hub_id")
    out_ev = ev[ev["is_return"] == "false"].drop_duplicates("asset_hub_id", keep="last").set_index("asset_hub_id")
    head = out_ev.reindex(last.index).combine_first(last)   # the delivery that last shipped it (else the return)
    assets = pd.DataFrame({"hub_id": last.index, "serial": last["serial"].to_numpy(),
                           "product_code": last["product_code"].to_numpy(),
                           "status": last["is_return"].map({"true": "returned", "false": "in_service"}).to_numpy(),
                           "shipment_hub_id": head["shipment_hub_id"].to_numpy(),
                           "order_hub_id": head["order_hub_id"].to_numpy(),
                           "ship_date": out_ev["ship_date"].reindex(last.index).to_numpy()})
    months = warranty_months(conn, assets["product_code"].dropna().astype(str).unique().tolist())
    starts = pd.to_datetime(assets["ship_date"], errors="coerce")
    assets["warranty_start"] = [d.date().isoformat() if pd.notna(d) else None for d in starts]
    assets["warranty_end"] = [_add_months(d.date(), months.get(str(c), 0)).isoformat() if pd.notna(d) else None
                              for d, c in zip(starts, assets["product_code"])]
    orders = select_in(conn, model.sales_order, "hub_id", assets["order_hub_id"].dropna().unique().tolist(),
                       columns=["hub_id", "customer_key"]).set_index("hub_id")["customer_key"]
    product_ids = {c: hub_id_of(c) for c in assets["product_code"].dropna().astype(str).unique()}
    crm_products = xref.of_hub_ids(conn, "product", "crm", list(product_ids.values()))["native_key"]
    assets["crm_account_id"] = assets["order_hub_id"].map(orders)
    crm_orders = xref.of_hub_ids(conn, "sales_order", "crm", assets["order_hub_id"].dropna().tolist())["native_key"]
    crm_shipments = xref.of_hub_ids(conn, "shipment", "crm", assets["shipment_hub_id"].tolist())["native_key"]
    assets["crm_order_id"] = assets["order_hub_id"].map(crm_orders)
    assets["crm_shipment_id"] = assets["shipment_hub_id"].map(crm_shipments)
    assets["crm_product_id"] = assets["product_code"].map(lambda c: crm_products.get(product_ids.get(str(c))))
    assets["content_hash"] = xref.content_hash(assets, engine.load_spec(TO_CRM).hash_fields)
    waits = {h: NO_SHIPMENT for h in assets.loc[assets["crm_shipment_id"].isna(), "hub_id"]}
    waits |= {h: NO_ACCOUNT for h in assets.loc[assets["crm_account_id"].isna() & ~assets["hub_id"].isin(waits), "hub_id"]}
    return assets[~assets["hub_id"].isin(waits)].reset_index(drop=True), waits


def crm():
    """The CRM seat's connector; an asset create is looked up first by its serial (the natural key)."""
    spec = engine.load_spec(TO_CRM)
    return roles.crm().connector(streams={spec.stream: [spec.natural_key]},
                                 natural_keys={spec.stream: spec.natural_key})


def write(ctx: StepContext) -> StepCounts:
    """The pending assets created or patched in the CRM; unchanged ones marked done, waiting ones left
    pending with their reason."""
    spec = engine.load_spec(TO_CRM)
    with ctx.engine.begin() as conn:
        pending = outbox.ids(conn, ENTITY, "crm")
        todo, waits = projection(conn, pending) if pending else (pd.DataFrame(columns=["hub_id", "content_hash"]), {})
        gone = sorted(set(pending) - set(todo["hub_id"]) - set(waits))   # no event left: nothing to show
        have = xref.of_hub_ids(conn, ENTITY, "crm", todo["hub_id"].tolist())
        todo["crm_id"] = todo["hub_id"].map(have["native_key"])
        same = todo["crm_id"].notna() & (todo["hub_id"].map(have["content_hash"]) == todo["content_hash"])
        outbox.mark(conn, ENTITY, "crm", sorted(set(todo.loc[same, "hub_id"])) + gone)
        for reason in set(waits.values()):
            outbox.mark(conn, ENTITY, "crm", [h for h, r in waits.items() if r == reason], outbox.PENDING, reason)
        todo = todo[~same].reset_index(drop=True)
        stage_append(conn, ctx.run_id, "asset_results", pd.DataFrame(
            [{"hub_id": h, "result": "waiting", "detail": r} for h, r in waits.items()]))
    counts = StepCounts(read=len(pending), skipped=len(pending) - len(todo))
    if todo.empty:
        return counts
    counts += write_to_crm(ctx, ENTITY, spec, todo, crm(), "asset_results")
    log.info("assets: %d pending, %d written or refused, %d waiting", len(pending), len(todo), len(waits))
    return counts
