"""Contacts (联系人) inside the customer master flow: CRM contacts → canonical contacts,
deduplicated within their customer by mobile number and by name.

Each function is called by the customer_master step of the same name, after the
customers' part, so a contact finds its customer's hub id in xref. Contacts come from the
``crm`` seat; its xref name (``roles.crm().system``) keys their source records and xref.
"""
from __future__ import annotations

import logging
import uuid

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from flows import roles
from flows.steps import map_records
from hub import model, outbox, quarantine, xref
from hub.model import CONTACT_FIELDS
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import frame_records, select_in, stage_read, stage_write, upsert, utcnow
from mappings import engine
from quality import gate, survivorship
from quality.readiness import MOBILE

log = logging.getLogger("flows.contacts")

ENTITY = "contact"
SPEC = "crm_contact_to_contact"
STAGE = "crm.contact"   # staging key: the CRM gives this flow two streams
NS = uuid.UUID("0b7e4f7e-5d8f-4f0e-9b1b-2f3a4c5d6e7f")


def spec() -> engine.Spec:
    return engine.load_spec(SPEC)


def map_step(conn, ctx: StepContext, flow: str) -> StepCounts:
    """The CRM's contacts mapped (newest version per key; mapping errors quarantined, stage map)."""
    raw = stage_read(conn, ctx.run_id, "extract", STAGE)
    return map_records(conn, ctx, ENTITY, roles.crm().system, spec(), raw, stage_as=STAGE)[1]


def validate(conn, ctx: StepContext, flow: str) -> StepCounts:
    """The contact suite; no reject-rate threshold here (a bad mobile is cleared, not rejected)."""
    crm = roles.crm().system
    batch = stage_read(conn, ctx.run_id, "map", STAGE)
    counts = StepCounts(read=len(batch))
    if batch.empty:
        stage_write(conn, ctx.run_id, "validate", batch, STAGE)
        return counts
    result = gate.validate(ENTITY, batch, seats={"crm": crm})
    if len(result.failures):
        reasons = result.failures.groupby("_row").apply(
            lambda g: [f"{e}: {r}" for e, r in zip(g["expectation"], g["reason"])], include_groups=False)
        bad = batch[batch["_row"].isin(reasons.index)]
        items = [(k, rec, reasons[row]) for k, row, rec in zip(bad["_key"], bad["_row"], frame_records(bad))]
        counts.quarantined = quarantine.add(conn, run_id=ctx.run_id, flow=flow, entity=ENTITY, system=crm,
                                            stage="validate", items=items)
    counts.rejected = counts.quarantined
    counts.mapped = len(result.good)
    stage_write(conn, ctx.run_id, "validate", result.good, STAGE)
    return counts


def _clusters(nodes: pd.DataFrame) -> np.ndarray:
    """Same customer and same mobile, or same customer and same name: one person."""
    n = len(nodes)
    edges = []
    for col in ("mobile", "name"):
        key = nodes["customer_hub_id"].astype(str) + "\x1f" + nodes[col].astype(str)
        key = key.where(nodes[col].notna() & nodes["customer_hub_id"].notna())
        present = key.dropna()
        if present.empty:
            continue
        codes, _ = pd.factorize(present)
        _, first_at = np.unique(codes, return_index=True)   # each key's first row, set-based
        rows = present.index.to_numpy()
        edges.append(np.stack([rows[first_at[codes]], rows], axis=1))
    e = np.concatenate(edges) if edges else np.empty((0, 2), dtype=int)
    graph = coo_matrix((np.ones(len(e)), (e[:, 0].astype(int), e[:, 1].astype(int))), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def resolve(conn, ctx: StepContext, flow: str) -> StepCounts:
    """Attach each contact to its customer's hub id and give duplicates one contact hub id."""
    crm = roles.crm().system
    batch = stage_read(conn, ctx.run_id, "validate", STAGE)
    counts = StepCounts(read=len(batch))
    if batch.empty:
        stage_write(conn, ctx.run_id, "resolve", batch, STAGE)
        return counts
    batch["_key"] = batch["_key"].astype(str)
    batch["content_hash"] = xref.content_hash(batch, spec().hash_fields)
    known = xref.lookup(conn, ENTITY, crm, batch["_key"].tolist())
    batch = batch.merge(known[["native_key", "hub_id", "content_hash"]].rename(
        columns={"native_key": "_key", "content_hash": "known_hash"}), on="_key", how="left")
    unchanged = batch["hub_id"].notna() & (batch["known_hash"] == batch["content_hash"])
    counts.skipped = int(unchanged.sum())
    stage_write(conn, ctx.run_id, "skipped", batch.loc[unchanged, ["_key"]], STAGE)
    batch = batch[~unchanged].drop(columns=["known_hash", "hub_id"])
    accounts = xref.lookup(conn, "customer", crm, batch["account_key"].astype(str).tolist())
    batch["customer_hub_id"] = batch["account_key"].astype(str).map(dict(zip(accounts["native_key"], accounts["hub_id"])))
    orphan = batch["customer_hub_id"].isna()
    if orphan.any():
        items = [(k, rec, ["its account is not in the hub (quarantined or not read yet); replay after the account is fixed"])
                 for k, rec in zip(batch.loc[orphan, "_key"], frame_records(batch[orphan]))]
        counts.quarantined = quarantine.add(conn, run_id=ctx.run_id, flow=flow, entity=ENTITY, system=crm,
                                            stage="resolve", items=items)
    batch = batch[~orphan].reset_index(drop=True)
    existing = select_in(conn, model.contact_source, "customer_hub_id", batch["customer_hub_id"].unique().tolist())
    existing = existing[~existing["native_key"].isin(batch["_key"])] if len(existing) else existing
    nodes = pd.concat([batch.assign(node=f"{crm}:" + batch["_key"], hub_id=None),
                       existing.assign(node=existing["system"] + ":" + existing["native_key"]) if len(existing)
                       else pd.DataFrame()], ignore_index=True)
    nodes["cluster"] = _clusters(nodes)
    have = nodes[nodes["hub_id"].notna()].groupby("cluster")["hub_id"].min()
    fresh = nodes.groupby("cluster")["node"].min().map(lambda n: f"CON-{uuid.uuid5(NS, n).hex[:20]}")
    nodes["hub_id"] = nodes["cluster"].map(have).fillna(nodes["cluster"].map(fresh))
    sizes = nodes.groupby("cluster")["node"].transform("size")
    out = nodes.iloc[: len(batch)].copy()
    counts.merged = int((sizes.iloc[: len(batch)] > 1).sum())
    stage_write(conn, ctx.run_id, "resolve", out.drop(columns=["cluster"]), STAGE)
    return counts


def load(conn, ctx: StepContext, flow: str) -> StepCounts:
    crm = roles.crm().system
    batch = stage_read(conn, ctx.run_id, "resolve", STAGE)
    counts = StepCounts(read=len(batch))
    if batch.empty:
        return counts
    src = batch.rename(columns={"_key": "native_key"})
    src["source_updated_at"] = pd.to_datetime(src["source_updated_at"], utc=True, errors="coerce")
    for col in (*CONTACT_FIELDS, "erp_code"):
        if col not in src.columns:
            src[col] = None
    src["run_id"] = ctx.run_id
    upsert(conn, model.contact_source, frame_records(src[["system", "native_key", "hub_id", *CONTACT_FIELDS, "erp_code",
                                                          "source_updated_at", "content_hash", "run_id"]]),
           keys=["system", "native_key"])
    xref.save(conn, ENTITY, crm, src.assign(native_version=src.get("_version")))
    quarantine.resolve(conn, run_id=ctx.run_id, flow=flow, system=crm, record_keys=src["native_key"].tolist())
    hub_ids = src["hub_id"].unique().tolist()
    sources = select_in(conn, model.contact_source, "hub_id", hub_ids)
    gold = survivorship.golden(ENTITY, sources, list(CONTACT_FIELDS), {"crm": crm})
    gold["content_hash"] = xref.content_hash(gold, list(CONTACT_FIELDS))
    now = utcnow()
    upsert(conn, model.contact, frame_records(gold.assign(updated_at=now, run_id=ctx.run_id)), keys=["hub_id"])
    counts.written = len(gold)
    # a changed contact may change the one contact the ERP shows for its customer: publish compares
    outbox.enqueue(conn, "customer", ctx.run_id, gold["customer_hub_id"].dropna().unique().tolist(), [roles.erp().system])
    return counts


def primary(conn, customer_hub_ids: list[str]) -> pd.DataFrame:
    """Per customer, the contact the ERP's one contact slot shows (U8 cCusPerson / cCusHand): of its
    golden contacts (one per person, duplicates merged), one with a valid mobile first, then by name.
    Columns: customer_hub_id, contact_name, mobile (None where the contact has no valid mobile)."""
    rows = select_in(conn, model.contact, "customer_hub_id", customer_hub_ids,
                     columns=["customer_hub_id", "hub_id", "name", "mobile"])
    rows = rows[rows["name"].map(lambda v: isinstance(v, str) and bool(v.strip()))]
    if rows.empty:
        return pd.DataFrame(columns=["customer_hub_id", "contact_name", "mobile"])
    mobile = rows["mobile"].astype("string").str.replace(r"[\s-]", "", regex=True)
    rows = rows.assign(mobile=mobile.where(mobile.str.fullmatch(MOBILE).fillna(False).astype(bool), None).astype(object),
                       _has=mobile.str.fullmatch(MOBILE).fillna(False).astype(bool))
    rows = rows.sort_values(["customer_hub_id", "_has", "name", "hub_id"], ascending=[True, False, True, True])
    first = rows.drop_duplicates("customer_hub_id")
    return first.rename(columns={"name": "contact_name"})[["customer_hub_id", "contact_name", "mobile"]]


def outcomes(conn, run_id: str) -> pd.DataFrame:
    """Every contact this run read and the one outcome it ended in."""
    s = spec()
    raw = stage_read(conn, run_id, "extract", STAGE)
    keys = raw[s.key] if s.key in raw.columns else pd.Series([None] * len(raw), dtype=object)
    df = pd.DataFrame({"system": f"{roles.crm().system} contact", "key": keys.map(lambda k: None if k is None or k != k else str(k))})
    q = model.quarantine.c
    from sqlalchemy import select

    bad = {r[0] for r in conn.execute(select(q.record_key).where(q.last_run_id == run_id, q.entity == ENTITY))}
    skipped = set(stage_read(conn, run_id, "skipped", STAGE).get("_key", pd.Series(dtype=object)).astype(str))
    loaded = stage_read(conn, run_id, "resolve", STAGE)
    merged = set(loaded.loc[loaded.duplicated("hub_id", keep=False), "_key"].astype(str)) if len(loaded) else set()
    loaded_keys = set(loaded.get("_key", pd.Series(dtype=object)).astype(str))
    df["outcome"] = "waiting"
    df.loc[df["key"].isin(loaded_keys), "outcome"] = "stored in hub"
    df.loc[df["key"].isin(merged), "outcome"] = "stored in hub (duplicate merged)"
    df.loc[df["key"].isin(skipped), "outcome"] = "skipped"
    df.loc[df["key"].duplicated(keep="last") & (df["outcome"] == "waiting"), "outcome"] = "skipped"
    df.loc[df["key"].isin(bad) | df["key"].isna(), "outcome"] = "quarantined"
    df["detail"], df["hub_id"] = None, None
    return df
