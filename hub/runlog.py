"""The run log: one ``sync_run`` row per flow run and one ``sync_step`` row per step.

It is the source of truth for the report, the console and the alerts.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import select, update

from hub import model
from hub.errors import redact
from hub.store import upsert, utcnow


@dataclass
class StepCounts:
    """What a step did, in the run log's vocabulary (in = written + skipped + quarantined)."""

    read: int = 0
    mapped: int = 0
    rejected: int = 0
    merged: int = 0
    written: int = 0
    skipped: int = 0
    quarantined: int = 0

    def __add__(self, other: "StepCounts") -> "StepCounts":
        return StepCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def start_run(conn, run_id: str, flow: str, log_url: str | None = None) -> None:
    """Open (or reopen, on a retried first task) the run's row."""
    upsert(conn, model.sync_run, [{
        "run_id": run_id, "flow": flow, "status": "running", "started_at": utcnow(),
        "finished_at": None, "error_class": None, "error_text": None, "log_url": log_url,
    }], keys=["run_id"], update=["status", "finished_at", "error_class", "error_text"])


def failed_step(conn, run_id: str) -> dict[str, Any] | None:
    """The run's last failed step (what a failure alert and the run row report)."""
    s = model.sync_step.c
    row = conn.execute(select(model.sync_step).where(s.run_id == run_id, s.status == "failed")
                       .order_by(s.finished_at.desc()).limit(1)).first()
    return dict(row._mapping) if row else None


def finish_run(conn, run_id: str, status: str, error_class: str | None = None,
               error_text: str | None = None) -> None:
    """Close the run's row; a failure without its own error takes its failed step's."""
    if status == "failed" and error_class in (None, "internal"):
        step = failed_step(conn, run_id)
        if step and step["error_class"]:
            error_class = step["error_class"]
            error_text = f"{step['step']}: {step['error_text']}" if step["error_text"] else error_text
    conn.execute(update(model.sync_run).where(model.sync_run.c.run_id == run_id).values(
        status=status, finished_at=utcnow(), error_class=error_class,
        error_text=redact(error_text)[:4000] if error_text else None))


def start_step(conn, run_id: str, flow: str, step: str) -> int:
    """Mark a step running; returns its attempt number (retries count up)."""
    prev = conn.execute(select(model.sync_step.c.attempt).where(
        model.sync_step.c.run_id == run_id, model.sync_step.c.step == step)).scalar()
    attempt = (prev or 0) + 1
    row: dict[str, Any] = {"run_id": run_id, "flow": flow, "step": step, "status": "running",
                           "attempt": attempt, "started_at": utcnow(), "finished_at": None,
                           "seconds": None, "error_class": None, "error_text": None,
                           **StepCounts().as_dict()}
    upsert(conn, model.sync_step, [row], keys=["run_id", "step"])
    return attempt


def finish_step(conn, run_id: str, step: str, counts: StepCounts, started, status: str = "success",
                error_class: str | None = None, error_text: str | None = None) -> None:
    now = utcnow()
    conn.execute(update(model.sync_step).where(
        model.sync_step.c.run_id == run_id, model.sync_step.c.step == step).values(
        status=status, finished_at=now, seconds=round((now - started).total_seconds(), 3),
        error_class=error_class, error_text=redact(error_text)[:4000] if error_text else None,
        **counts.as_dict()))
