"""Golden records: survivorship over a hub id's source records, and the outbox entry that
tells every target system the golden record changed.

Used by the flows' load step and by reviewers' merges and undos, so a golden record is
always rebuilt the same way.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
from sqlalchemy import delete

from hub import model
from hub.model import CUSTOMER_FIELDS
from hub.store import chunks, frame_records, select_in, upsert, utcnow
from hub.xref import content_hash
from quality import names, survivorship

ENTITY = "customer"
#: Who gets a changed golden customer, by role.
TARGET_ROLES = ("erp", "crm")


def targets(seats: Mapping[str, str]) -> list[str]:
    """The outbox targets of a changed golden customer: the ERP and the CRM seats' xref names."""
    return [seats[role] for role in TARGET_ROLES if role in seats]


def rebuild(conn, run_id: str, hub_ids: Sequence[str], *, seats: Mapping[str, str]) -> int:
    """Rebuild the golden customers of ``hub_ids``; changed ones are enqueued for the ERP and the
    CRM. ``seats`` maps role → xref name (the caller knows the bindings, this module not); the
    survivorship rules rank sources by role.
    A hub id left without source records (merged away) loses its golden record."""
    hub_ids = sorted(set(hub_ids))
    sources = select_in(conn, model.customer_source, "hub_id", hub_ids)
    orphans = sorted(set(hub_ids) - set(sources["hub_id"]))
    for part in chunks(orphans):
        conn.execute(delete(model.customer).where(model.customer.c.hub_id.in_(part)))
    if sources.empty:
        return 0
    fields = [f for f in CUSTOMER_FIELDS if f != "name_key"]
    gold = survivorship.golden(ENTITY, sources, fields, seats)
    gold["name_key"] = names.name_key(gold["name"])
    gold["content_hash"] = content_hash(gold, list(CUSTOMER_FIELDS))
    old = select_in(conn, model.customer, "hub_id", gold["hub_id"].tolist(), columns=["hub_id", "content_hash"])
    before = dict(zip(old["hub_id"], old["content_hash"]))
    changed = gold[gold["content_hash"] != gold["hub_id"].map(before)]
    if changed.empty:
        return 0
    now = utcnow()
    fresh = changed[~changed["hub_id"].isin(before)]
    upsert(conn, model.customer, frame_records(fresh.assign(created_at=now, updated_at=now, run_id=run_id)),
           keys=["hub_id"])
    upsert(conn, model.customer, frame_records(changed[changed["hub_id"].isin(before)].assign(updated_at=now, run_id=run_id)),
           keys=["hub_id"])
    enqueue(conn, run_id, changed["hub_id"].tolist(), targets(seats))
    return len(changed)


def enqueue(conn, run_id: str, hub_ids: Sequence[str], targets: Sequence[str]) -> None:
    now = utcnow()
    upsert(conn, model.outbox, [{"entity": ENTITY, "hub_id": h, "target": t, "status": "pending", "enqueued_run": run_id,
                                 "updated_at": now, "last_error": None} for h in hub_ids for t in targets],
           keys=["entity", "hub_id", "target"])


def source_frame(conn, hub_ids: Sequence[str]) -> pd.DataFrame:
    return select_in(conn, model.customer_source, "hub_id", list(hub_ids))
