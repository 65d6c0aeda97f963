"""The one step runner every flow uses.

A step reads its input from the store and writes its output there, keyed by the run id,
so Airflow can retry any step alone and XCom carries only ids and counts. The runner
records the step in the run log, with its counts, timing and failure class.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Engine

from hub import runlog, store
from hub.errors import failure_class_of, redact
from hub.runlog import StepCounts

log = logging.getLogger("hub.runner")

STEPS = ("extract", "map", "validate", "resolve", "load", "publish", "write_back")


@dataclass(frozen=True)
class StepContext:
    run_id: str
    flow: str
    step: str
    engine: Engine
    attempt: int


StepFn = Callable[[StepContext], StepCounts]


def run_step(flow: str, step: str, run_id: str, fn: StepFn, *, store_url: str | None = None,
             log_url: str | None = None) -> dict[str, int]:
    """Run one step of one flow run and log it; re-raises failures for Airflow to retry."""
    eng = store.engine(store_url)
    with eng.begin() as conn:
        if step == STEPS[0]:
            runlog.start_run(conn, run_id, flow, log_url)
        attempt = runlog.start_step(conn, run_id, flow, step)
    started = store.utcnow()
    try:
        counts = fn(StepContext(run_id=run_id, flow=flow, step=step, engine=eng, attempt=attempt))
    except BaseException as exc:
        text = redact(f"{type(exc).__name__}: {exc}")
        with eng.begin() as conn:
            runlog.finish_step(conn, run_id, step, StepCounts(), started, status="failed",
                               error_class=failure_class_of(exc), error_text=text)
        log.error("%s.%s failed (%s): %s", flow, step, failure_class_of(exc), text)
        raise
    with eng.begin() as conn:
        runlog.finish_step(conn, run_id, step, counts, started)
    log.info("%s.%s done: %s", flow, step, counts.as_dict())
    return counts.as_dict()


def finish_run(run_id: str, status: str, exc: BaseException | None = None, *, store_url: str | None = None) -> None:
    """Close the run's row: the last step on success, the DAG's failure callback otherwise."""
    with store.engine(store_url).begin() as conn:
        runlog.finish_run(conn, run_id, status, failure_class_of(exc) if exc else None,
                          f"{type(exc).__name__}: {exc}" if exc else None)
