"""Is each flow healthy? Last run, last success and staleness, from the run log.

A flow is *stale* when it has had no successful run for longer than its expected
interval: the schedule stopped, the scheduler is down, or every run fails. The console
marks it, the metrics export it and the watchdog DAG alerts on it, all from this module.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from hub import model
from hub.store import aware, utcnow

#: Minutes without a successful run after which a flow is stale: a few of its schedule's
#: intervals (customer_master and sales_orders run every 15 min, product_master every 30,
#: stock every 10, receipts hourly, registry_refresh daily).
DEFAULT_STALE_MINUTES: dict[str, int] = {"customer_master": 60, "product_master": 120, "sales_orders": 60,
                                         "shipments": 60, "stock": 40, "receipts": 180, "registry_refresh": 2 * 24 * 60}
FALLBACK_STALE_MINUTES = 60
#: Flows expected to run even before their first run (so a never-started one stands out);
#: ``HUB_FLOWS`` adds the others a deployment schedules.
EXPECTED_FLOWS: tuple[str, ...] = ("customer_master",)


def stale_after(flow: str) -> timedelta:
    """``HUB_STALE_AFTER_<FLOW>_MINUTES``, else ``HUB_STALE_AFTER_MINUTES``, else the default."""
    raw = os.environ.get(f"HUB_STALE_AFTER_{flow.upper()}_MINUTES") or os.environ.get("HUB_STALE_AFTER_MINUTES")
    minutes = float(raw) if raw else DEFAULT_STALE_MINUTES.get(flow, FALLBACK_STALE_MINUTES)
    return timedelta(minutes=minutes)


def known_flows(conn) -> list[str]:
    """Flows expected to run (defaults and ``HUB_FLOWS``) plus every flow that ever ran."""
    expected = set(EXPECTED_FLOWS)
    expected |= {f.strip() for f in os.environ.get("HUB_FLOWS", "").split(",") if f.strip()}
    ran = {r[0] for r in conn.execute(select(model.sync_run.c.flow).distinct())}
    return sorted(expected | ran)


@dataclass(frozen=True)
class FlowHealth:
    """One flow's state at a glance."""

    flow: str
    last_run: dict[str, Any] | None
    last_success_at: datetime | None
    stale_after: timedelta
    stale: bool
    open_quarantine: int

    @property
    def stale_reason(self) -> str:
        if not self.stale:
            return ""
        minutes = int(self.stale_after.total_seconds() // 60)
        if self.last_success_at is None:
            return f"no successful run yet (expected every {minutes} min)"
        return f"no successful run since {self.last_success_at:%Y-%m-%d %H:%M} UTC (expected every {minutes} min)"


def flow_health(conn, flow: str, now: datetime | None = None) -> FlowHealth:
    now = now or utcnow()
    r = model.sync_run.c
    last = conn.execute(select(model.sync_run).where(r.flow == flow).order_by(r.started_at.desc()).limit(1)).first()
    last_ok = aware(conn.execute(select(func.max(r.finished_at)).where(r.flow == flow, r.status == "success")).scalar())
    q = model.quarantine.c
    open_q = conn.execute(select(func.count()).select_from(model.quarantine).where(
        q.flow == flow, q.status.in_(["open", "replay_pending"]))).scalar() or 0
    limit = stale_after(flow)
    stale = last_ok is None or now - last_ok > limit
    run = None
    if last is not None:
        run = dict(last._mapping)
        run["started_at"], run["finished_at"] = aware(run["started_at"]), aware(run["finished_at"])
    return FlowHealth(flow=flow, last_run=run, last_success_at=last_ok, stale_after=limit, stale=stale,
                      open_quarantine=int(open_q))


def all_flows(conn, now: datetime | None = None) -> list[FlowHealth]:
    now = now or utcnow()
    return [flow_health(conn, f, now) for f in known_flows(conn)]
