"""The dedup review queue as the hub stores it: what waits, and a reviewer's verdicts.

The console (which may only use the hub) records a verdict as *requested*; the flow's
next resolve step applies it with the rest of entity resolution (``quality.review``),
as quarantine replays are applied by the next extract.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub import model
from hub.store import is_row_id, upsert, utcnow

VERDICTS = ("merge", "distinct", "undo")


def waiting(conn, entity: str = "customer", limit: int = 50) -> list[dict[str, Any]]:
    """Model decisions waiting for a person, most probable first."""
    d = model.match_decision.c
    rows = conn.execute(select(model.match_decision).where(
        d.entity == entity, d.source == "model", d.decision == "review", d.status == "active")
        .order_by(d.probability.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in rows]


def request(conn, decision_id: int, verdict: str, by: str, comment: str | None = None) -> bool:
    """Record ``verdict`` on a queued decision for the next run to apply; False if unknown."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}")
    if not is_row_id(decision_id):  # no such row, and a database integer cannot hold it
        return False
    row = conn.execute(select(model.match_decision).where(model.match_decision.c.id == decision_id)).first()
    if row is None:
        return False
    a, b = sorted((row.left_node, row.right_node))
    upsert(conn, model.match_decision, [{
        "entity": row.entity, "left_node": a, "right_node": b, "source": "reviewer",
        "decision": "merge" if verdict == "merge" else "distinct", "probability": row.probability,
        "evidence": row.evidence, "status": "requested", "run_id": None, "decided_by": by, "decided_at": utcnow(),
        "comment": comment or verdict}], keys=["entity", "left_node", "right_node", "source"],
        update=["decision", "status", "decided_by", "decided_at", "comment"])
    return True


def requested(conn, entity: str = "customer") -> list[dict[str, Any]]:
    d = model.match_decision.c
    return [dict(r._mapping) for r in conn.execute(select(model.match_decision).where(
        d.entity == entity, d.source == "reviewer", d.status == "requested"))]
