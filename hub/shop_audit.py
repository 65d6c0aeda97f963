"""The shops' completeness audit (issue 12): per shop and closed window, the platform's own count
of orders modified in it beside what the hub read and stored, and the verdict.

A window *agrees* when the platform's count equals the orders the hub holds for it (those whose
latest known modified time lies in the window); one that disagrees was re-read, and what is
still missing is named by id where the platform listed it. The shop's watermark never moves past
a window that disagrees (flows/shop_orders.py), so the next run reads it again.

Kept on ``hub.model.metadata`` (``hub.model`` imports this module at its end).
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text, select

from hub import store  # attribute use only: hub.model imports this module while hub.store may be loading
from hub.model import metadata

AGREES, DISAGREES = "agrees", "disagrees"

shop_window_audit = Table(
    "shop_window_audit", metadata,
    Column("seat", String(100), primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("platform_count", Integer, nullable=False),   # the platform's own total for the window
    Column("read", Integer, nullable=False),             # distinct orders the hub read in it
    Column("held", Integer),                             # orders the hub holds whose modified time is in it
    Column("reads", Integer, nullable=False),            # list passes it took (a disagreeing window is re-read)
    Column("found_late", Integer, nullable=False),       # orders only a re-read (or a push) brought
    Column("late_ids", Text),
    Column("missing_ids", Text),                         # listed by the platform, not held by the hub
    Column("verdict", String(20), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Index("ix_shop_audit_run", "run_id"),
)

COLUMNS = ("seat", "window_start", "window_end", "platform_count", "read", "held", "reads", "found_late",
           "late_ids", "missing_ids", "verdict", "run_id")


def save(conn, rows: Sequence[dict[str, Any]]) -> int:
    """Record windows audited (the latest verdict per shop and window start wins)."""
    if not rows:
        return 0
    now = store.utcnow()
    store.upsert(conn, shop_window_audit, [{**{c: r.get(c) for c in COLUMNS}, "checked_at": now} for r in rows],
           keys=["seat", "window_start"])
    return len(rows)


def of_run(conn, run_id: str) -> pd.DataFrame:
    t = shop_window_audit.c
    rows = conn.execute(select(shop_window_audit).where(t.run_id == run_id).order_by(t.seat, t.window_start)).all()
    return pd.DataFrame([dict(r._mapping) for r in rows], columns=[*COLUMNS, "checked_at"])


def open_windows(conn, seat: str | None = None) -> pd.DataFrame:
    """Windows whose latest verdict is still a disagreement: what an operator looks at."""
    t = shop_window_audit.c
    query = select(shop_window_audit).where(t.verdict == DISAGREES)
    if seat:
        query = query.where(t.seat == seat)
    rows = conn.execute(query.order_by(t.seat, t.window_start)).all()
    return pd.DataFrame([dict(r._mapping) for r in rows], columns=[*COLUMNS, "checked_at"])


def summary(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per shop: windows audited, agreeing, orders found late, and the ids still missing."""
    out: dict[str, dict[str, Any]] = {}
    for seat, part in frame.groupby("seat"):
        missing = sorted({i for text in part["missing_ids"].dropna() for i in str(text).split(",") if i})
        out[str(seat)] = {"windows": len(part), "agree": int((part["verdict"] == AGREES).sum()),
                          "disagree": int((part["verdict"] == DISAGREES).sum()),
                          "platform_orders": int(part["platform_count"].sum()),
                          "found_late": int(part["found_late"].sum()), "missing": missing,
                          "verdict": "complete" if (part["verdict"] == AGREES).all() else "incomplete"}
    return out
