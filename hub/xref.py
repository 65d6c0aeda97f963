"""Cross-references between canonical records and each system's keys, and content hashes.

Every write looks here first: a record whose hash the target already holds is not sent
again, which is what makes writes idempotent and stops echo loops in two-way syncs.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import pandas as pd
from sqlalchemy import select

from hub import model
from hub.store import select_in, upsert, utcnow


def content_hash(df: pd.DataFrame, fields: Sequence[str]) -> pd.Series:
    """A stable hash per row over ``fields`` (missing and empty values hash alike)."""
    if df.empty:
        return pd.Series([], dtype=object, index=df.index)
    texts = []
    for f in fields:
        col = df[f] if f in df.columns else pd.Series(None, index=df.index, dtype=object)
        texts.append(col.astype(object).where(col.notna(), "").astype(str))
    joined = texts[0].str.cat(texts[1:], sep="\x1f") if len(texts) > 1 else texts[0]
    return joined.map(lambda s: hashlib.sha256(s.encode()).hexdigest())


def lookup(conn, entity: str, system: str, native_keys: Sequence[str]) -> pd.DataFrame:
    """xref rows of these native keys: columns native_key, hub_id, native_version, content_hash."""
    x = model.xref.c
    return select_in(conn, model.xref, "native_key", [str(k) for k in native_keys],
                     where=[x.entity == entity, x.system == system],
                     columns=["native_key", "hub_id", "native_version", "content_hash"])


def of_hub_ids(conn, entity: str, system: str, hub_ids: Sequence[str]) -> pd.DataFrame:
    """One system's key of each of these hub ids (the lowest where it holds several), indexed by
    hub_id: columns native_key, content_hash."""
    x = model.xref.c
    rows = select_in(conn, model.xref, "hub_id", list(hub_ids), where=[x.entity == entity, x.system == system],
                     columns=["hub_id", "native_key", "content_hash"])
    return rows.sort_values("native_key").drop_duplicates("hub_id").set_index("hub_id")


def by_hub_id(conn, entity: str, system: str) -> pd.DataFrame:
    """All of one system's keys for an entity: hub_id → native_key."""
    x = model.xref.c
    rows = conn.execute(select(x.hub_id, x.native_key, x.content_hash).where(
        x.entity == entity, x.system == system)).all()
    return pd.DataFrame(rows, columns=["hub_id", "native_key", "content_hash"])


def save(conn, entity: str, system: str, df: pd.DataFrame) -> int:
    """Upsert xref rows from a frame with native_key, hub_id, native_version, content_hash."""
    now = utcnow()
    rows = [{"entity": entity, "system": system, "native_key": str(r.native_key), "hub_id": r.hub_id,
             "native_version": None if pd.isna(r.native_version) else str(r.native_version),
             "content_hash": r.content_hash, "synced_at": now}
            for r in df[["native_key", "hub_id", "native_version", "content_hash"]].itertuples(index=False)]
    return upsert(conn, model.xref, rows, keys=["entity", "system", "native_key"])
