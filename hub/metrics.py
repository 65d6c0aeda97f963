"""The hub's state in the Prometheus text format, for the monitoring operations already run.

Gauges only, computed from the run log and the quarantine at scrape time: per flow the
last run's status, duration and per-step counts and durations, the time of the last
success, the stale flag and the open quarantine. Airflow's own StatsD / OpenTelemetry
metrics (task durations, failures, scheduler health) complement these; see the runbook.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import func, select

from hub import health, model, runs
from hub.store import utcnow

STATUSES = ("success", "failed", "running")


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _sample(name: str, labels: dict[str, object], value: float) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}"


class _Family:
    """One metric family: HELP and TYPE once, then its samples."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help, self.samples = name, help_text, []  # type: ignore[var-annotated]

    def add(self, labels: dict[str, object], value: float) -> None:
        self.samples.append(_sample(self.name, labels, value))

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        yield from self.samples


def render(conn, now: datetime | None = None) -> str:
    """All hub gauges as one exposition text (ends with a newline)."""
    now = now or utcnow()
    fam = {k: _Family(k, h) for k, h in (
        ("hub_flow_last_run_status", "1 for the status of the flow's last run (success, failed, running)"),
        ("hub_flow_last_run_timestamp_seconds", "Start of the flow's last run, Unix time"),
        ("hub_flow_last_run_duration_seconds", "Duration of the flow's last run"),
        ("hub_flow_last_success_timestamp_seconds", "End of the flow's last successful run, Unix time"),
        ("hub_flow_stale", "1 when the flow has had no successful run for longer than its expected interval"),
        ("hub_flow_stale_after_seconds", "The flow's expected interval between successful runs"),
        ("hub_step_records", "Records per step and count kind in the flow's last run"),
        ("hub_step_duration_seconds", "Step duration in the flow's last run"),
        ("hub_step_failed", "1 when the step failed in the flow's last run"),
        ("hub_quarantine_records", "Quarantined records by flow, system, stage and status (open and replay_pending)"),
    )}
    for h in health.all_flows(conn, now):
        f = {"flow": h.flow}
        fam["hub_flow_stale"].add(f, 1 if h.stale else 0)
        fam["hub_flow_stale_after_seconds"].add(f, h.stale_after.total_seconds())
        if h.last_success_at:
            fam["hub_flow_last_success_timestamp_seconds"].add(f, h.last_success_at.timestamp())
        last = runs.recent(conn, h.flow, limit=1)
        if not last:
            continue
        run = last[0]
        for status in STATUSES:
            fam["hub_flow_last_run_status"].add({**f, "status": status}, 1 if run["status"] == status else 0)
        if run["started_at"]:
            fam["hub_flow_last_run_timestamp_seconds"].add(f, run["started_at"].timestamp())
        if run["seconds"] is not None:
            fam["hub_flow_last_run_duration_seconds"].add(f, run["seconds"])
        for step in run["steps"]:
            s = {**f, "step": step["step"]}
            for count in runs.COUNTS:
                fam["hub_step_records"].add({**s, "count": count}, step.get(count) or 0)
            if step.get("seconds") is not None:
                fam["hub_step_duration_seconds"].add(s, step["seconds"])
            fam["hub_step_failed"].add(s, 1 if step["status"] == "failed" else 0)
    q = model.quarantine.c
    for row in conn.execute(select(q.flow, q.system, q.stage, q.status, func.count()).where(
            q.status.in_(["open", "replay_pending"])).group_by(q.flow, q.system, q.stage, q.status)):
        fam["hub_quarantine_records"].add({"flow": row[0], "system": row[1], "stage": row[2], "status": row[3]}, row[4])
    lines = [line for family in fam.values() if family.samples for line in family.lines()]
    return "\n".join(lines) + "\n"
