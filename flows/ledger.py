"""The one write ledger: what a chunk of write results means for the hub's books.

Every write the flows make goes through :func:`flows.steps.write_in_chunks`, whose ``persist``
callback runs in the chunk's own transaction. A :class:`Ledger` is that callback, written
once: a result that failed is quarantined (stage ``write``, with the target's error) and its
outbox entry marked failed; one that succeeded has its outbox entry marked done, the next
targets enqueued, and the entity's own bookkeeping (xref, canonical updates) done by
``on_ok``; every result is appended to the run's results stage, which the outcomes read.
Where an outbox entry is not one record (a receipt and its 回款 pieces, a customer and its CRM
accounts), ``done``, ``outbox_key`` and ``failed_status`` say how the results settle it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
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
    #: mark the written records' outbox entries done (True), none (False), or the entries a
    #: callable names: it decides after the chunk's failures are booked and ``on_ok`` ran (a
    #: receipt is done once every 回款 piece of it is in the CRM)
    done: bool | Callable[[Any, Written], Sequence[str]] = True
    #: the staging table of per-record results (None: not staged)
    results: str | None = None
    #: one results row per record (default: hub id, result status, native key)
    row: Callable[[dict[str, Any], WriteResult], dict[str, Any]] | None = None
    #: the quarantined payload of a failed record (default: the record)
    payload: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: the key a failed record is quarantined under (default: its hub id, ``_key``)
    quarantine_key: Callable[[dict[str, Any]], str] | None = None
    #: the reason of a failed result that carries no error of its own
    refused: str = "write failed"
    #: what a failed record's outbox entry becomes (None: left as it is, e.g. pending, so the
    #: next run sends it again)
    failed_status: str | None = outbox.FAILED
    #: the outbox entry a failed record belongs to (default: its hub id, ``_key``; a 回款 piece's receipt)
    outbox_key: Callable[[dict[str, Any]], str] | None = None
    #: the outbox reason of a failed entry (default: the record's error)
    failed_note: str | None = None
    #: the ``_key`` of every record that failed, over all chunks (for a caller that settles the
    #: outbox only after the last chunk)
    failed: set[str] = field(default_factory=set)

    def persist(self, conn, chunk: list[dict[str, Any]], results: list[WriteResult]) -> StepCounts:
        counts = StepCounts()
        ok = [(rec, res) for rec, res in zip(chunk, results) if res.status != "failed"]
        failed = [(rec, res) for rec, res in zip(chunk, results) if res.status == "failed"]
        if ok:
            written = self.on_ok(conn, ok) if self.on_ok else None
            keys = [rec["_key"] for rec, _ in ok]
            if self.done is True:
                outbox.mark(conn, self.entity, self.target, keys)
            if self.then:
                outbox.enqueue(conn, self.entity, self.ctx.run_id, keys, list(self.then))
            counts.written += len(ok) if written is None else written
        if failed:
            self.failed.update(rec["_key"] for rec, _ in failed)
            key = self.quarantine_key or (lambda rec: rec["_key"])
            payload = self.payload or (lambda rec: rec)
            counts.quarantined += quarantine.add(
                conn, run_id=self.ctx.run_id, flow=self.ctx.flow, entity=self.entity, system=self.target,
                stage="write", items=[(key(rec), payload(rec), [res.error or self.refused]) for rec, res in failed])
            if self.failed_status:
                entry = self.outbox_key or (lambda rec: rec["_key"])
                outbox.mark_each(conn, self.entity, self.target, self.failed_status,
                                 {entry(rec): self.failed_note or res.error or self.refused for rec, res in failed})
        if ok and callable(self.done):
            outbox.mark(conn, self.entity, self.target, list(self.done(conn, ok)))
        if self.results:
            row = self.row or (lambda rec, res: {"hub_id": rec["_key"], "result": res.status,
                                                 "native_key": res.native_key})
            stage_append(conn, self.ctx.run_id, self.results,
                         pd.DataFrame([row(rec, res) for rec, res in zip(chunk, results)]))
        return counts
