"""The audit trail of operator actions on quarantined records.

A quarantine row keeps only its latest status and comment; this trail keeps every
decision (who, what, when, from which status), so an operator can answer "who ignored
this account, and why" weeks later.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import select

from hub import model
from hub.store import utcnow


def record(conn, *, rows: Sequence[dict[str, Any]], action: str, actor: str, to_status: str,
           comment: str | None) -> int:
    """Log ``action`` by ``actor`` on the quarantine ``rows`` (id and status before the change)."""
    now = utcnow()
    entries = [{"quarantine_id": r["id"], "action": action, "actor": actor[:200], "from_status": r["status"],
                "to_status": to_status, "comment": comment, "at": now} for r in rows]
    if entries:
        conn.execute(model.quarantine_action.insert(), entries)
    return len(entries)


def history(conn, quarantine_id: int) -> list[dict[str, Any]]:
    """Every action on one quarantine entry, oldest first."""
    a = model.quarantine_action.c
    return [dict(r._mapping) for r in conn.execute(
        select(model.quarantine_action).where(a.quarantine_id == quarantine_id).order_by(a.at, a.id))]
