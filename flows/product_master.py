"""The product master flow: the ERP → hub → CRM.

extract (the ERP's items, e.g. U8 Inventory by pubufts) → map (YAML spec; units through a strict
value map) → validate (GX: code, name, a VAT rate in force, price) → resolve (unchanged products
skipped by content hash) → load (source record, canonical product, xref, outbox, watermark) →
publish (what the CRM lacks) → write back (CRM product created or patched; before a create the
connector looks the ERP code up in the spec's natural key, ``productCode__c`` in 销售易, so a
product the CRM users typed in themselves is linked, and a create whose answer was lost is not
made twice).

The ERP masters products: the CRM gets every sales item (U8 ``bSale`` = 1), and a product it
already has is disabled there when the ERP discontinues it or stops selling it.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

import pandas as pd

from flows import roles
from flows.engine import Flow
from flows.ledger import Ledger
from flows.steps import crm_write_outcomes, quarantine_errors, read_outcomes, save_outcomes, write_in_chunks
from hub import model, money, outbox, quarantine, xref
from hub.model import PRODUCT_FIELDS
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import frame_records, select_in, stage_read, stage_write, upsert, utcnow
from mappings import engine

log = logging.getLogger("flows.product_master")

FLOW = "product_master"
ENTITY = "product"
TO_CRM = "product_to_crm_product"
STAGE = "erp"   # staging key of what the ERP gave
NS = uuid.UUID("6f1c2a8e-3b7d-4e0a-9c55-1d2e3f405162")
SOURCE_COLUMNS = [*PRODUCT_FIELDS, *model.SOURCE_EXTRA]


def hub_id_of(code: str, system: str | None = None) -> str:
    """A product's hub id: stable for its ERP code (and the ERP seat's xref name, ``u8`` under
    the default bindings), so a rebuilt hub finds the same ids."""
    return str(uuid.uuid5(NS, f"{system or roles.erp().system}:{code}"))


def source_spec() -> engine.Spec:
    """The bound ERP's mapping of its items to canonical products."""
    return engine.load_spec(roles.erp().mapping("product.in"))


def crm():
    """The CRM seat's connector; a create is looked up first by the spec's natural key."""
    spec = engine.load_spec(TO_CRM)
    return roles.crm().connector(streams={spec.stream: [spec.natural_key]},
                                 natural_keys={spec.stream: spec.natural_key})


# --- extract … load: the engine's, with the product's hooks -------------------------------------------

def _active(batch: pd.DataFrame) -> pd.Series:
    """Not discontinued: no 停用日期, or one still ahead."""
    end = pd.to_datetime(batch["end_date"], utc=True, errors="coerce") if "end_date" in batch else pd.Series(pd.NaT, index=batch.index)
    return (end.isna() | (end > pd.Timestamp(utcnow()))).map({True: "true", False: "false"})


def prepare(batch: pd.DataFrame) -> pd.DataFrame:
    """What the product suite checks beside the mapped fields: active, and sellable as text."""
    batch["active"] = _active(batch)
    batch["sellable"] = batch["sellable"].map(lambda v: "false" if v in (0, "0") else "true")
    return batch


FLOW_ENGINE = Flow(FLOW, prepare=prepare, hub_id=hub_id_of)


# --- publish / write back --------------------------------------------------------------------------

def _projection(gold: pd.DataFrame) -> pd.DataFrame:
    """What the CRM should show: a product that is not sold (any more) is disabled there."""
    out = gold.copy()
    out["active"] = ((out["active"] == "true") & (out["sellable"] != "false")).map({True: "true", False: "false"})
    out["content_hash"] = xref.content_hash(out, engine.load_spec(TO_CRM).hash_fields)
    return out


def publish(ctx: StepContext) -> StepCounts:
    """Products whose CRM projection differs from what the CRM holds; new non-sales items are not sent."""
    with ctx.engine.begin() as conn:
        replays = quarantine.take_replays(conn, FLOW, "crm", ["write"])
        if replays:
            outbox.mark(conn, ENTITY, "crm", [r["record_key"] for r in replays], outbox.PENDING)
        pending = outbox.ids(conn, ENTITY, "crm")
        counts = StepCounts(read=len(pending))
        gold = _projection(select_in(conn, model.product, "hub_id", pending))
        s = model.product_source.c
        have = select_in(conn, model.product_source, "hub_id", pending, where=[s.system == "crm"],
                         columns=["hub_id", "native_key", "content_hash"])
        have = have.sort_values("native_key").drop_duplicates("hub_id").rename(
            columns={"native_key": "crm_id", "content_hash": "crm_hash"})
        merged = gold.merge(have, on="hub_id", how="left")
        never_sold = merged["crm_id"].isna() & (merged["sellable"] == "false")
        todo = merged[~never_sold & (merged["crm_hash"].isna() | (merged["crm_hash"] != merged["content_hash"]))]
        done = sorted(set(pending) - set(todo["hub_id"]))
        outbox.mark(conn, ENTITY, "crm", done)
        counts.skipped, counts.written = len(done), len(todo)
        stage_write(conn, ctx.run_id, "publish", todo)
    return counts


def write_back(ctx: StepContext) -> StepCounts:
    """Create or patch the CRM products, chunk by chunk, each chunk's outcome committed."""
    spec = engine.load_spec(TO_CRM)
    with ctx.engine.begin() as conn:
        todo = stage_read(conn, ctx.run_id, "publish")
        if not todo.empty:  # a retried write-back skips what its killed attempt already stored
            todo = todo[todo["hub_id"].isin(outbox.ids(conn, ENTITY, "crm"))].reset_index(drop=True)
    counts = StepCounts(read=len(todo))
    if not todo.empty:
        mapped = engine.apply(spec, todo)
        if len(mapped.errors):
            with ctx.engine.begin() as conn:
                counts.quarantined += quarantine_write_errors(conn, ctx, todo, mapped.errors)
        records = []
        for payload, (hub_id, crm_id) in zip(frame_records(mapped.frame.drop(columns=["_row"])),
                                             todo.loc[mapped.frame["_row"], ["hub_id", "crm_id"]].itertuples(index=False)):
            payload = money.json_numbers({k: v for k, v in payload.items() if not k.startswith("_")})
            known = isinstance(crm_id, str)
            payload.update({"_key": hub_id, "_linked": not known})  # no CRM id yet: looked up by its code
            if known:
                payload["id"] = crm_id
            records.append(payload)
        by_hub = todo.set_index("hub_id")

        def holds(conn, ok) -> None:
            _crm_now_holds(conn, ctx.run_id, pd.DataFrame([
                by_hub.loc[rec["_key"]].to_dict() | {"hub_id": rec["_key"], "native_key": res.native_key}
                for rec, res in ok]))

        ledger = Ledger(ctx, ENTITY, "crm", on_ok=holds, results="crm_results", row=lambda rec, res: {
            "hub_id": rec["_key"], "result": _result(rec, res), "crm_id": res.native_key})
        counts += write_in_chunks(ctx, crm(), spec.stream, records, ledger.persist)
    with ctx.engine.begin() as conn:
        result = outcomes(conn, ctx.run_id)
    save_outcomes(ctx, result)
    return counts


def _result(rec: dict[str, Any], res) -> str:
    if res.status == "updated" and rec.get("_linked"):
        return "linked"  # the CRM already had it under its ERP code: patched, not created again
    return res.status


def quarantine_write_errors(conn, ctx: StepContext, todo: pd.DataFrame, errors: pd.DataFrame) -> int:
    n = quarantine_errors(conn, ctx, FLOW, ENTITY, "crm", "write", todo, errors, "hub_id")
    outbox.mark(conn, ENTITY, "crm", todo.loc[errors["_row"].unique(), "hub_id"].tolist(), outbox.FAILED,
                "mapping to the CRM failed")
    return n


def _crm_now_holds(conn, run_id: str, rows: pd.DataFrame) -> None:
    """After a write, remember what the CRM now holds (its source record and xref), so the next
    publish sends nothing unless the product changes again."""
    frame = rows.copy()
    for col in SOURCE_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    frame["system"], frame["run_id"], frame["source_updated_at"] = "crm", run_id, utcnow()
    upsert(conn, model.product_source, frame_records(frame[["system", "native_key", "hub_id", *SOURCE_COLUMNS,
                                                            "source_updated_at", "content_hash", "run_id"]]),
           keys=["system", "native_key"])
    xref.save(conn, ENTITY, "crm", frame.assign(native_version=None))


#: The seven steps, in order, as the DAG schedules them.
STEP_FUNCTIONS = {
    "extract": FLOW_ENGINE.extract, "map": FLOW_ENGINE.map, "validate": FLOW_ENGINE.validate,
    "resolve": FLOW_ENGINE.resolve, "load": FLOW_ENGINE.load, "publish": publish, "write_back": write_back,
}


# --- outcomes --------------------------------------------------------------------------------------

def result_outcomes(erp_label: str) -> dict[str, str]:
    """The outcome label of each CRM write result."""
    return {"created": "created in CRM", "updated": "updated in CRM",
            "linked": f"linked to the CRM product with its {erp_label} code", "failed": "quarantined"}


def outcomes(conn, run_id: str) -> pd.DataFrame:
    """Every ERP product this run read, with the one outcome it ended in."""
    erp, spec = roles.erp(), source_spec()
    raw = stage_read(conn, run_id, "extract", STAGE)
    keys = raw[spec.key] if spec.key in raw.columns else pd.Series([], dtype=object)
    out = read_outcomes(conn, run_id, ENTITY, erp.system, keys, lambda k: hub_id_of(k, erp.system),
                        stage_read(conn, run_id, "skipped", STAGE))
    out = crm_write_outcomes(conn, run_id, ENTITY, out, result_outcomes(erp.label))
    gold = select_in(conn, model.product, "hub_id", out.loc[out["outcome"].isna(), "hub_id"].dropna().tolist(),
                     columns=["hub_id", "sellable"])
    not_sold = out["outcome"].isna() & out["hub_id"].isin(gold.loc[gold["sellable"] == "false", "hub_id"])
    out.loc[not_sold, ["outcome", "detail"]] = ["skipped", f"not a sales item in {erp.label}: not sent to the CRM"]
    out.loc[out["outcome"].isna(), ["outcome", "detail"]] = ["stored in hub", "the CRM already holds this version"]
    return out
