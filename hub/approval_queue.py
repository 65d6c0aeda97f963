"""What the console's approvals page shows (flows/approvals.py keeps the ``approval`` table): open
requests by age, those stuck longer than a threshold, the decided ones, the superseded ones."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from hub import model
from hub.store import aware, utcnow

OPEN = ("submitting", "pending")
DECIDED = ("approved", "rejected", "returned")
#: an open request older than this many days is "stuck" (the page's default; ``?stuck_days=`` changes it)
STUCK_DAYS = 3


def _age_days(row: dict[str, Any], now: datetime) -> float | None:
    since = aware(row.get("submitted_at")) or aware(row.get("updated_at"))
    return round((now - since).total_seconds() / 86400, 1) if since else None


def overview(conn, stuck_days: float = STUCK_DAYS, now: datetime | None = None, limit: int = 500) -> dict[str, Any]:
    """``pending`` (oldest first, with ``age_days``), ``stuck`` (open longer than ``stuck_days``),
    ``decided`` (newest first), ``superseded``, and ``counts`` per kind and state."""
    now = now or utcnow()
    a = model.approval.c
    rows = [dict(r._mapping) for r in conn.execute(select(model.approval).order_by(a.updated_at.desc()).limit(limit))]
    for r in rows:
        r["age_days"] = _age_days(r, now)
        r["customer"] = (r.get("facts") or {}).get("customer_name")
        r["product"] = (r.get("facts") or {}).get("product_code")
    live = [r for r in rows if r["superseded"] != "yes"]
    pending = sorted((r for r in live if r["state"] in OPEN), key=lambda r: -(r["age_days"] or 0))
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        state = "superseded" if r["superseded"] == "yes" else r["state"]
        counts.setdefault(r["kind"], {}).setdefault(state, 0)
        counts[r["kind"]][state] += 1
    return {"pending": pending, "stuck": [r for r in pending if (r["age_days"] or 0) > stuck_days],
            "decided": [r for r in live if r["state"] in DECIDED],
            "superseded": [r for r in rows if r["superseded"] == "yes"], "counts": counts,
            "stuck_days": stuck_days, "cutoff": now - timedelta(days=stuck_days)}
