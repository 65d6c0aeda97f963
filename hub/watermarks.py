"""Watermarks: how far a flow has read a stream, moved only after the data is stored.

A read records a *pending* cursor for its run; the run's last step commits it. A run that
dies in between leaves the old watermark, so the next run reads the same data again and
the xref hashes make that harmless.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from hub import model
from hub.store import upsert, utcnow


def get(conn, flow: str, stream: str) -> Any:
    return conn.execute(select(model.watermark.c.cursor).where(
        model.watermark.c.flow == flow, model.watermark.c.stream == stream)).scalar()


def set_pending(conn, run_id: str, flow: str, stream: str, cursor: Any) -> None:
    upsert(conn, model.pending_watermark, [{"run_id": run_id, "flow": flow, "stream": stream, "cursor": cursor}],
           keys=["run_id", "flow", "stream"])


def commit_pending(conn, run_id: str, flow: str) -> dict[str, Any]:
    """Move this run's pending cursors to the watermark table; returns what moved."""
    pw = model.pending_watermark.c
    rows = conn.execute(select(pw.stream, pw.cursor).where(pw.run_id == run_id, pw.flow == flow)).all()
    now = utcnow()
    moved = {r.stream: r.cursor for r in rows if r.cursor is not None}
    upsert(conn, model.watermark, [{"flow": flow, "stream": s, "cursor": c, "updated_at": now} for s, c in moved.items()],
           keys=["flow", "stream"])
    conn.execute(delete(model.pending_watermark).where(pw.run_id == run_id, pw.flow == flow))
    return moved
