"""The one write ledger: what a chunk of write results means for the hub's books.

Every write the flows make goes through :func:`flows.steps.write_in_chunks`, whose ``persist``
callback runs in the chunk's own transaction. A :class:`Ledger` is that callback, written
once: a result that failed is quarantined (stage ``write``, with the target's error) and its
outbox entry marked failed; one that succeeded has its outbox entry marked done, the next
targets enqueued, and the entity's own bookkeeping (xref, canonical updates) done by
``on_ok``; every result is appended to the run's results stage, which the outcomes read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pandas as pd

from hub import outbox, quarantine
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import stage_append
from hub.types import WriteResult

Written = list[tuple[dict[str, Any], WriteResult]]


@dataclass
class Ledger:
    """The books of one write: ``target`` is the seat's xref key (outbox target, quarantine
    system), ``entity`` the outbox entity."""

    ctx: StepContext
    entity: str
    target: str
    #: the bookkeeping of the records the target took (xref, canonical rows); returns how many
    #: count as written (None: all of them)
    on_ok: Callable[[Any, Written], int | None] | None = None
    #: outbox targets that get the written records next (e.g. the CRM after the ERP)
    then: Sequence[str] = ()
    #: mark the written records' outbox entries done
    done: bool = True
    #: the staging table of per-record results (None: not staged)
    results: str | None = None
    #: one results row per record (default: hub id, result status, native key)
    row: Callable[[dict[str, Any], WriteResult], dict[str, Any]] | None = None
    #: the quarantined payload of a failed record (default: the record)
    payload: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: the key a failed record is quarantined under (default: its hub id, ``_key``)
    quarantine_key: Callable[[dict[str, Any]], str] | None = None

    def persist(self, conn, chunk: list[dict[str, Any]], results: list[WriteResult]) -> StepCounts:
        counts = StepCounts()
        ok = [(rec, res) for rec, res in zip(chunk, results) if res.status != "failed"]
        failed = [(rec, res) for rec, res in zip(chunk, results) if res.status == "failed"]
        if ok:
            written = self.on_ok(conn, ok) if self.on_ok else None
            keys = [rec["_key"] for rec, _ in ok]
            if self.done:
                outbox.mark(conn, self.entity, self.target, keys)
            if self.then:
                outbox.enqueue(conn, self.entity, self.ctx.run_id, keys, list(self.then))
            counts.written += len(ok) if written is None else written
        if failed:
            key = self.quarantine_key or (lambda rec: rec["_key"])
            payload = self.payload or (lambda rec: rec)
            counts.quarantined += quarantine.add(
                conn, run_id=self.ctx.run_id, flow=self.ctx.flow, entity=self.entity, system=self.target,
                stage="write", items=[(key(rec), payload(rec), [res.error or "write failed"]) for rec, res in failed])
            outbox.mark_each(conn, self.entity, self.target, outbox.FAILED,
                             {rec["_key"]: res.error or "write failed" for rec, res in failed})
        if self.results:
            row = self.row or (lambda rec, res: {"hub_id": rec["_key"], "result": res.status,
                                                 "native_key": res.native_key})
            stage_append(conn, self.ctx.run_id, self.results,
                         pd.DataFrame([row(rec, res) for rec, res in zip(chunk, results)]))
        return counts
