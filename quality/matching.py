"""The resolve step's matching: which golden customer is each incoming record?

Incoming records find their candidates among *all* stored source records through the
block-key index (``match_key``), are scored with the trained Fellegi–Sunter model
(``quality.dedup``), and join the hub id of the cluster they fall in. Pairs in the review
band, and model matches that would merge two existing golden records, wait in the review
queue (``match_decision``) instead of being merged; a reviewer's decision overrides the
model in every later run.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

import pandas as pd
from sqlalchemy import select

from hub import model
from hub.store import select_in, upsert, utcnow
from quality.dedup import engine, prepare

log = logging.getLogger("quality.matching")

ENTITY = "customer"
CONFIG = "customer"
#: A batch at least this large (a first load, a backfill) retrains the model; smaller
#: incremental batches reuse the stored one (EM on a handful of pairs is not reliable).
TRAIN_MIN_NODES = 2000
HUB_NS = uuid.UUID("6f1c8a52-1d1e-4c59-9d7e-3a1f0e2b7c11")
EVIDENCE = ("name", "uscc", "phone", "address", "system")


def new_hub_id(entity: str, node: str) -> str:
    """Deterministic: a retried step or a re-run gives the same id to the same record."""
    return f"{entity[:3].upper()}-{uuid.uuid5(HUB_NS, f'{entity}:{node}').hex[:20]}"


def node_of(system: pd.Series, key: pd.Series) -> pd.Series:
    return system.astype(str) + ":" + key.astype(str)


def _candidates(conn, keys: dict[str, pd.Series], exclude: set[str]) -> pd.DataFrame:
    """Stored source records sharing a block key with the batch."""
    mk = model.match_key.c
    found = []
    for rule, series in keys.items():
        values = series.dropna().unique().tolist()
        if values:
            found.append(select_in(conn, model.match_key, "key", values, where=[mk.entity == ENTITY, mk.rule == rule],
                                   columns=["node"]))
    nodes = set(pd.concat(found)["node"]) - exclude if found else set()
    if not nodes:
        return pd.DataFrame()
    native = [n.split(":", 1)[1] for n in nodes]
    src = select_in(conn, model.customer_source, "native_key", native)
    src["node"] = node_of(src["system"], src["native_key"])
    return src[src["node"].isin(nodes)].rename(columns={"native_key": "_key"})


def _stored_model(conn) -> engine.Model | None:
    row = conn.execute(select(model.match_model.c.params).where(model.match_model.c.entity == ENTITY)).scalar()
    return engine.Model.from_json(row) if row else None


def _reviewer_decisions(conn, nodes: list[str]) -> pd.DataFrame:
    d = model.match_decision.c
    cols = ["left_node", "right_node", "decision"]
    where = [d.entity == ENTITY, d.source == "reviewer", d.status == "active"]
    rows = pd.concat([select_in(conn, model.match_decision, "left_node", nodes, where=where, columns=cols),
                      select_in(conn, model.match_decision, "right_node", nodes, where=where, columns=cols)])
    return rows.drop_duplicates().rename(columns={"left_node": "left", "right_node": "right"})


def resolve(conn, batch: pd.DataFrame, run_id: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Give every batch row a hub_id and the rule that chose it.

    ``batch``: system, _key, name, uscc, phone, address and hub_id (from xref, may be null).
    Returns (batch with node, hub_id and match_rule; stats).
    """
    cfg = engine.load_config(CONFIG)
    b = batch.copy()
    b["node"] = node_of(b["system"], b["_key"])
    prepared = prepare.company(b)
    keys = engine.block_keys(prepared, cfg)
    cands = _candidates(conn, keys, set(b["node"]))
    nodes = pd.concat([prepared, prepare.company(cands)], ignore_index=True) if len(cands) else prepared
    nodes["_row"] = nodes["node"]
    trained = _stored_model(conn)
    retrain = trained is None or len(nodes) >= TRAIN_MIN_NODES
    result = engine.find_matches(nodes, cfg, decisions=_reviewer_decisions(conn, nodes["node"].tolist()),
                                 model=None if retrain else trained, prepared=True)
    if retrain:
        upsert(conn, model.match_model, [{"entity": ENTITY, "params": result.model.to_json(), "trained_at": utcnow(),
                                         "trained_on": result.stats["candidate_pairs"]}], keys=["entity"])
    assigned, pairs = _assign(result.records, result.pairs, set(b["node"]))
    _record_decisions(conn, pairs, nodes, set(b["node"]), run_id)
    out = b.merge(assigned, on="node", how="left", suffixes=("_xref", "")).drop(columns=["hub_id_xref"])
    stats = {**result.stats, "candidates_from_store": len(cands), "retrained": retrain}
    return out, stats


def _assign(recs: pd.DataFrame, pairs: pd.DataFrame, batch_nodes: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hub id per batch node from its cluster; a cluster spanning two existing golden
    records does not merge them: those pairs go to review."""
    known = recs[recs["hub_id"].notna()]
    per_cluster = known.groupby("cluster")["hub_id"].agg(lambda s: sorted(set(s)))
    hub_of_node = dict(zip(recs["node"], recs["hub_id"]))
    pairs = pairs.copy()
    spans = pairs["left"].map(hub_of_node).notna() & pairs["right"].map(hub_of_node).notna() & (
        pairs["left"].map(hub_of_node) != pairs["right"].map(hub_of_node)) & (pairs["decision"] == "match")
    pairs.loc[spans, "decision"] = "review"
    rows = []
    batch = recs[recs["node"].isin(batch_nodes)]
    fresh_ids = batch[batch["hub_id"].isna()].groupby("cluster")["node"].min().map(lambda n: new_hub_id(ENTITY, n))
    sizes = recs.groupby("cluster")["node"].size()
    for node, hub_id, cluster in zip(batch["node"], batch["hub_id"], batch["cluster"]):
        existing = per_cluster.get(cluster, [])
        if isinstance(hub_id, str):
            rows.append((node, hub_id, "xref"))
        elif len(existing) == 1:
            rows.append((node, existing[0], "match"))
        elif len(existing) > 1:
            rows.append((node, existing[0], "conflict"))
        else:
            rows.append((node, fresh_ids[cluster], "batch" if sizes[cluster] > 1 else "new"))
    return pd.DataFrame(rows, columns=["node", "hub_id", "match_rule"]), pairs


def _record_decisions(conn, pairs: pd.DataFrame, nodes: pd.DataFrame, batch_nodes: set[str], run_id: str) -> None:
    """Store the model's match and review decisions that involve the batch, with evidence."""
    info_nodes = set(nodes["node"])
    by_reviewer = pairs["by_reviewer"].fillna(False).astype(bool) if "by_reviewer" in pairs else False
    keep = pairs[pairs["decision"].isin(["match", "review"]) & ~by_reviewer &
                 (pairs["left"].isin(batch_nodes) | pairs["right"].isin(batch_nodes)) &
                 pairs["left"].isin(info_nodes) & pairs["right"].isin(info_nodes)]
    if keep.empty:
        return
    info = nodes.drop_duplicates("node").set_index("node")
    cols = [c for c in EVIDENCE if c in info.columns]
    level_cols = [c for c in keep.columns if c.startswith("level_")]
    now = utcnow()
    rows = []
    for rec in keep.to_dict("records"):
        evidence = {"levels": {c[6:]: int(rec[c]) for c in level_cols if rec[c] == rec[c]},
                    "left": {c: _plain(info.at[rec["left"], c]) for c in cols},
                    "right": {c: _plain(info.at[rec["right"], c]) for c in cols}}
        rows.append({"entity": ENTITY, "left_node": rec["left"], "right_node": rec["right"], "source": "model",
                     "decision": rec["decision"], "probability": float(rec["probability"]), "evidence": evidence,
                     "status": "active", "run_id": run_id, "decided_by": "model", "decided_at": now, "comment": None})
    upsert(conn, model.match_decision, rows, keys=["entity", "left_node", "right_node", "source"],
           update=["decision", "probability", "evidence", "run_id", "decided_at"])


def _plain(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)


def index(conn, sources: pd.DataFrame) -> None:
    """Index source records' block keys (system, native_key, hub_id, name, uscc, phone,
    address), in the same transaction that stores the records."""
    if sources.empty:
        return
    cfg = engine.load_config(CONFIG)
    prepared = prepare.company(sources)
    nodes = node_of(sources["system"], sources["native_key"]).to_numpy()
    hubs = sources["hub_id"].to_numpy()
    rows = [{"entity": ENTITY, "node": n, "rule": rule, "key": k, "hub_id": h}
            for rule, keys in engine.block_keys(prepared, cfg).items()
            for n, k, h in zip(nodes, keys.to_numpy(), hubs) if k is not None]
    upsert(conn, model.match_key, rows, keys=["entity", "node", "rule"])
