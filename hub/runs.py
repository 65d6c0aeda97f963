"""The run log read back for people and monitors: recent runs with their steps, one run.

The console, the metrics endpoint and the alerts show the same numbers because they all
read them here.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub import model
from hub.runner import STEPS
from hub.store import aware, chunks

COUNTS: tuple[str, ...] = ("read", "mapped", "rejected", "merged", "written", "skipped", "quarantined")


def _step_order(step: str) -> int:
    return STEPS.index(step) if step in STEPS else len(STEPS)


def _with_times(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("started_at", "finished_at"):
        if key in row:
            row[key] = aware(row[key])
    return row


def summary(steps: list[dict[str, Any]]) -> dict[str, int]:
    """A run in three numbers for trends: records read, written to targets, quarantined."""
    by = {s["step"]: s for s in steps}
    return {"read": int((by.get(STEPS[0]) or {}).get("read") or 0),
            "written": int((by.get(STEPS[-1]) or {}).get("written") or 0),
            "quarantined": int(sum(s.get("quarantined") or 0 for s in steps))}


def duration(run: dict[str, Any], steps: list[dict[str, Any]]) -> float | None:
    """Seconds from start to finish; a run still going counts its finished steps."""
    if run.get("started_at") and run.get("finished_at"):
        return (aware(run["finished_at"]) - aware(run["started_at"])).total_seconds()
    secs = [s["seconds"] for s in steps if s.get("seconds") is not None]
    return sum(secs) if secs else None


def _steps_of(conn, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {r: [] for r in run_ids}
    for part in chunks(run_ids):
        for row in conn.execute(select(model.sync_step).where(model.sync_step.c.run_id.in_(part))):
            out[row.run_id].append(_with_times(dict(row._mapping)))
    for steps in out.values():
        steps.sort(key=lambda s: _step_order(s["step"]))
    return out


def recent(conn, flow: str, limit: int = 20) -> list[dict[str, Any]]:
    """The flow's last ``limit`` runs, newest first, each with its steps, duration and summary."""
    r = model.sync_run.c
    runs = [_with_times(dict(x._mapping)) for x in conn.execute(
        select(model.sync_run).where(r.flow == flow).order_by(r.started_at.desc()).limit(limit))]
    steps = _steps_of(conn, [x["run_id"] for x in runs])
    for run in runs:
        run["steps"] = steps[run["run_id"]]
        run["seconds"] = duration(run, run["steps"])
        run["summary"] = summary(run["steps"])
    return runs


def one(conn, run_id: str) -> dict[str, Any] | None:
    """One run with its steps (in step order), duration and summary; None if unknown."""
    row = conn.execute(select(model.sync_run).where(model.sync_run.c.run_id == run_id)).first()
    if row is None:
        return None
    run = _with_times(dict(row._mapping))
    run["steps"] = _steps_of(conn, [run_id])[run_id]
    run["seconds"] = duration(run, run["steps"])
    run["summary"] = summary(run["steps"])
    return run
