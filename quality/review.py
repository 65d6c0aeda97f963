"""The dedup review queue and a reviewer's decisions: merge, keep apart, undo a merge.

A decision is applied to the hub at once (source records re-pointed, golden records
rebuilt, targets told through the outbox) and stored as a reviewer decision, which the
matcher applies in every later run, so it sticks. ``seats`` maps role → xref name
(``flows.customer_master.seats()``): the caller knows the bindings.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd
from sqlalchemy import select, update

from hub import model, review_queue
from hub.store import is_row_id, upsert, utcnow
from quality import golden
from quality.matching import ENTITY, new_hub_id

def queue(conn, limit: int = 50) -> list[dict[str, Any]]:
    """Model decisions waiting for a person: the review band, and merges of two golden records."""
    return review_queue.waiting(conn, ENTITY, limit)


def apply_requested(conn, *, seats: Mapping[str, str]) -> int:
    """Apply verdicts recorded elsewhere (the console) as a reviewer's decisions."""
    done = 0
    for row in review_queue.requested(conn, ENTITY):
        by = row["decided_by"] or "console"
        if row["decision"] == "merge":
            merge(conn, row["left_node"], row["right_node"], by, row["comment"], seats=seats)
        else:
            keep_apart(conn, row["left_node"], row["right_node"], by, row["comment"], seats=seats)
        done += 1
    return done


def get(conn, decision_id: int) -> dict[str, Any] | None:
    if not is_row_id(decision_id):  # no such row, and a database integer cannot hold it
        return None
    row = conn.execute(select(model.match_decision).where(model.match_decision.c.id == decision_id)).first()
    return dict(row._mapping) if row else None


def _hub_of(conn, node: str) -> str | None:
    system, key = node.split(":", 1)
    x = model.xref.c
    return conn.execute(select(x.hub_id).where(x.entity == ENTITY, x.system == system, x.native_key == key)).scalar()


def _repoint(conn, nodes: list[str] | None, from_hub: str, to_hub: str) -> None:
    """Move source records (all of ``from_hub``'s, or just ``nodes``) to ``to_hub``."""
    s, x, k = model.customer_source.c, model.xref.c, model.match_key.c
    targets = [n.split(":", 1) for n in nodes] if nodes else None
    if targets is None:
        conn.execute(update(model.customer_source).where(s.hub_id == from_hub).values(hub_id=to_hub))
        conn.execute(update(model.xref).where(x.entity == ENTITY, x.hub_id == from_hub).values(hub_id=to_hub))
        conn.execute(update(model.match_key).where(k.entity == ENTITY, k.hub_id == from_hub).values(hub_id=to_hub))
        return
    for system, key in targets:
        conn.execute(update(model.customer_source).where(s.system == system, s.native_key == key).values(hub_id=to_hub))
        conn.execute(update(model.xref).where(x.entity == ENTITY, x.system == system, x.native_key == key)
                     .values(hub_id=to_hub))
        conn.execute(update(model.match_key).where(k.entity == ENTITY, k.node == f"{system}:{key}")
                     .values(hub_id=to_hub))


def _remember(conn, left: str, right: str, decision: str, by: str, comment: str | None) -> None:
    a, b = sorted((left, right))
    upsert(conn, model.match_decision, [{
        "entity": ENTITY, "left_node": a, "right_node": b, "source": "reviewer", "decision": decision,
        "probability": None, "evidence": None, "status": "active", "run_id": None, "decided_by": by,
        "decided_at": utcnow(), "comment": comment}], keys=["entity", "left_node", "right_node", "source"],
        update=["decision", "status", "decided_by", "decided_at", "comment"])
    d = model.match_decision.c
    conn.execute(update(model.match_decision).where(
        d.entity == ENTITY, d.source == "model", d.left_node.in_([a, b]), d.right_node.in_([a, b]))
        .values(status="decided"))


def merge(conn, left: str, right: str, by: str, comment: str | None = None, *, seats: Mapping[str, str]) -> str:
    """The two records are one company: their golden records become one. Returns its hub id."""
    hl, hr = _hub_of(conn, left), _hub_of(conn, right)
    if hl is None or hr is None:
        raise ValueError(f"{left if hl is None else right} is not a record the hub holds")
    survivor, gone = sorted((hl, hr))
    if survivor != gone:
        _repoint(conn, None, gone, survivor)
        conn.execute(update(model.outbox).where(model.outbox.c.hub_id == gone).values(status="done",
                     last_error=f"merged into {survivor}", updated_at=utcnow()))
        golden.rebuild(conn, f"review:{by}", [survivor, gone], seats=seats)
        golden.enqueue(conn, f"review:{by}", [survivor], golden.targets(seats))
    _remember(conn, left, right, "merge", by, comment)
    return survivor


def keep_apart(conn, left: str, right: str, by: str, comment: str | None = None, *,
               seats: Mapping[str, str]) -> tuple[str, str]:
    """The two records are different companies (also: undo a merge). Returns both hub ids."""
    hl, hr = _hub_of(conn, left), _hub_of(conn, right)
    if hl is None or hr is None:
        raise ValueError(f"{left if hl is None else right} is not a record the hub holds")
    if hl == hr:
        mover = right if new_hub_id(ENTITY, right) != hl else left
        fresh = new_hub_id(ENTITY, mover)
        _repoint(conn, [mover], hl, fresh)
        golden.rebuild(conn, f"review:{by}", [hl, fresh], seats=seats)
        golden.enqueue(conn, f"review:{by}", [hl, fresh], golden.targets(seats))
        hr = fresh if mover == right else hr
        hl = fresh if mover == left else hl
    _remember(conn, left, right, "distinct", by, comment)
    return hl, hr


def decide(conn, decision_id: int, verdict: str, by: str, comment: str | None = None, *,
           seats: Mapping[str, str]) -> dict[str, Any]:
    """Apply a reviewer's verdict (merge | distinct | undo) to a queued or past decision."""
    row = get(conn, decision_id)
    if row is None:
        raise ValueError(f"no dedup decision {decision_id}")
    if verdict == "merge":
        hub = merge(conn, row["left_node"], row["right_node"], by, comment, seats=seats)
        return {"decision": decision_id, "merged_into": hub}
    if verdict in ("distinct", "undo"):
        hubs = keep_apart(conn, row["left_node"], row["right_node"], by, comment or verdict, seats=seats)
        return {"decision": decision_id, "hub_ids": list(hubs)}
    raise ValueError("verdict must be merge, distinct or undo")


def pairs_of(conn, hub_id: str) -> pd.DataFrame:
    """The match decisions that put records into ``hub_id`` (to find what to undo)."""
    k = model.match_key.c
    nodes = sorted({r[0] for r in conn.execute(select(k.node).where(k.entity == ENTITY, k.hub_id == hub_id))})
    d = model.match_decision.c
    rows = conn.execute(select(model.match_decision).where(
        d.entity == ENTITY, d.left_node.in_(nodes), d.right_node.in_(nodes))).all()
    return pd.DataFrame([dict(r._mapping) for r in rows])
