"""The one flow engine: the seven steps built from a flow spec (``flows/specs/<flow>.yaml``).

A flow module asks ``Flow("<flow>")`` for the steps it has no logic of its own in and
hands the engine its entity hooks where logic is real:

- ``extract``: every source of the spec, by role: the bound seat's connector reads the
  mapping's stream since its watermark (replays by key, broken pages quarantined). A
  document's lines (``lines_of``) and a ``lookup`` source are the hook's to read: they
  follow what was read (a delivery's rows, the order lines those ship).
- ``map``: every source by its mapping (newest version per key, errors to quarantine); a
  source with ``lines_of`` is a document's lines, and a line that does not map holds its
  header back. A ``lookup`` source is not mapped (the hook's own steps use it).
- ``validate``: the spec's GX suite on each source's mapped rows, after the ``prepare``
  hook derived what the suite checks (a product's active flag; a document's line facts:
  ``prepare`` gets its lines beside the headers); a document's lines go on with the headers
  that passed.
- ``resolve``: unchanged records skipped by the mapping's content hash; hub ids from the
  ``hub_id`` hook for records xref does not know yet.
- ``load``: source records, canonical rows and xref of what changed, the spec's targets
  enqueued in the outbox, then the watermarks committed (only after the data is stored).

``publish`` and ``write_back`` stay the entity's (an ERP's lifecycle, survivorship, what a
target lacks); they write through :class:`flows.ledger.Ledger`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from flows import roles, spec as flow_spec
from flows.steps import (gate_records, map_lines, map_records, read_stream, save_source_records, upsert_canonical,
                         with_known_hashes)
from hub import model, outbox, quarantine, watermarks, xref
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import stage_read, stage_write
from hub.types import Binding
from mappings import engine as mapping

log = logging.getLogger("flows.engine")


@dataclass(frozen=True)
class Source:
    """One source of a run: its seat, its mapping, and its staging key. A role bound several
    times (two shops) gives one source per seat, staged as ``<stage>@<seat>``."""

    system: str
    spec: mapping.Spec
    stage: str
    end: flow_spec.End
    binding: Binding | None = None

    @property
    def adapter(self) -> Any:
        return roles.adapter(self.binding or roles.seat(self.end.role))

    @property
    def own(self) -> bool:
        """Read, gated and stored as records of its own (not a document's lines, not a lookup)."""
        return not (self.end.lines_of or self.end.lookup)

    @property
    def lines_of(self) -> str | None:
        """The staging key of the headers these lines belong to (the same seat's)."""
        if not self.end.lines_of:
            return None
        return self.end.lines_of + self.stage[len(self.end.stage or self.end.role):]


def _mapping_of(end: flow_spec.End, seat: Binding) -> str:
    if end.mapping:
        return end.mapping
    return roles.adapter(seat).mapping(end.purpose)


class Flow:
    """The generic steps of one flow spec; ``prepare`` and ``hub_id`` are the entity's hooks
    (``prepare(headers, *lines)``: a source's mapped rows and those of its documents' lines)."""

    def __init__(self, flow: str, *, prepare: Callable[..., pd.DataFrame] | None = None,
                 hub_id: Callable[[str, str], str] | None = None) -> None:
        self.spec = flow_spec.load(flow)
        self.prepare = prepare
        self.hub_id = hub_id

    # --- what the spec names, resolved against the bindings ------------------------------------

    def sources(self) -> list[Source]:
        """The spec's sources as bound now (an optional one whose seat lacks it is left out)."""
        out = []
        for end in self.spec.sources:
            seats = roles.seats(end.role)
            for seat in seats:
                adapter = roles.adapter(seat)
                if end.purpose and not end.mapping and end.optional and end.purpose not in getattr(adapter, "mappings", {}):
                    continue
                stage = end.stage or end.role
                out.append(Source(seat.name, mapping.load_spec(_mapping_of(end, seat)),
                                  f"{stage}@{seat.name}" if len(seats) > 1 else stage, end, seat))
        return out

    def own_sources(self) -> list[Source]:
        """The sources read, gated and stored as records of their own (see ``Source.own``)."""
        return [src for src in self.sources() if src.own]

    def targets(self) -> list[str]:
        """The xref names of the seats the spec's targets are bound to (the outbox targets)."""
        return [b.name for end in self.spec.targets for b in roles.seats(end.role)]

    @property
    def entity(self) -> str:
        return self.spec.entity

    # --- the generic steps ----------------------------------------------------------------------

    def extract(self, ctx: StepContext) -> StepCounts:
        counts = StepCounts()
        for src in self.own_sources():
            connector = src.adapter.connector({src.spec.stream: src.spec.source_fields})
            counts += read_stream(ctx, connector, src.system, src.spec.stream, self.entity, stage_as=src.stage,
                                  accounted_as=src.system)
        return counts

    def map(self, ctx: StepContext) -> StepCounts:
        counts = StepCounts()
        with ctx.engine.begin() as conn:
            heads: dict[str, pd.DataFrame] = {}
            for src in self.sources():
                if src.end.lookup:
                    continue
                raw = stage_read(conn, ctx.run_id, "extract", src.stage)
                if src.lines_of:
                    parent = heads[src.lines_of]
                    raw_parent = next(f.source for f in src.spec.fields if f.target == src.end.parent)
                    lines, kept, held = map_lines(conn, ctx, self.entity, src.system, src.spec, raw, parent,
                                                  raw_parent, src.end.parent)
                    counts.quarantined += held
                    counts.rejected += held
                    counts.mapped -= len(parent) - len(kept)
                    heads[src.lines_of] = kept
                    stage_write(conn, ctx.run_id, "map", kept, src.lines_of)
                    stage_write(conn, ctx.run_id, "map", lines, src.stage)
                    continue
                good, c = map_records(conn, ctx, self.entity, src.system, src.spec, raw, stage_as=src.stage)
                heads[src.stage] = good
                counts += c
        return counts

    def validate(self, ctx: StepContext) -> StepCounts:
        """Each source in a transaction of its own: gate_records commits the quarantine of a batch
        over the reject threshold on its own, which SQLite allows only while no writer is open.
        A document's lines go to ``prepare`` with their headers and on with those that passed."""
        counts = StepCounts()
        sources = self.sources()
        for src in sources:
            if not src.own:
                continue
            parts = [s for s in sources if s.lines_of == src.stage]
            with ctx.engine.begin() as conn:
                batch = stage_read(conn, ctx.run_id, "map", src.stage)
                lines = [stage_read(conn, ctx.run_id, "map", part.stage) for part in parts]
                if self.prepare is not None and not batch.empty:
                    batch = self.prepare(batch, *lines)
                good, c = gate_records(conn, ctx, self.entity, batch)
                stage_write(conn, ctx.run_id, "validate", good, src.stage)
                for part, rows in zip(parts, lines):
                    nothing = rows.empty or good.empty
                    kept = pd.DataFrame() if nothing else rows[rows[part.end.parent].isin(good["_key"])]
                    stage_write(conn, ctx.run_id, "validate", kept, part.stage)
            counts += c
        return counts

    def resolve(self, ctx: StepContext) -> StepCounts:
        counts = StepCounts()
        with ctx.engine.begin() as conn:
            for src in self.own_sources():
                batch = stage_read(conn, ctx.run_id, "validate", src.stage)
                counts.read += len(batch)
                if batch.empty:
                    stage_write(conn, ctx.run_id, "resolve", batch, src.stage)
                    continue
                batch = with_known_hashes(conn, self.entity, src.system, batch,
                                          xref.content_hash(batch, src.spec.hash_fields))
                if self.hub_id is not None:
                    fresh = batch["_key"].map(lambda k, s=src.system: self.hub_id(k, s))
                    batch["hub_id"] = batch["hub_id"].where(batch["hub_id"].notna(), fresh)
                unchanged = batch["known_hash"].notna() & (batch["content_hash"] == batch["known_hash"])
                counts.skipped += int(unchanged.sum())
                stage_write(conn, ctx.run_id, "resolve", batch[~unchanged].drop(columns=["known_hash"]), src.stage)
                stage_write(conn, ctx.run_id, "skipped", batch.loc[unchanged, ["system", "_key", "hub_id"]], src.stage)
        return counts

    def load(self, ctx: StepContext) -> StepCounts:
        """Source records, canonical rows and xref of every changed record; the targets enqueued;
        then the watermarks move (the data they cover is stored in the same transaction)."""
        canonical, source_table = getattr(model, self.entity), getattr(model, f"{self.entity}_source")
        fields = getattr(model, f"{self.entity.upper()}_FIELDS")
        counts = StepCounts()
        with ctx.engine.begin() as conn:
            for src in self.own_sources():
                batch = stage_read(conn, ctx.run_id, "resolve", src.stage)
                counts.read += len(batch)
                if batch.empty:
                    continue
                rows = save_source_records(conn, source_table, batch, [*fields, *model.SOURCE_EXTRA], ctx.run_id)
                counts.written += upsert_canonical(conn, canonical, rows, fields, ctx.run_id)
                xref.save(conn, self.entity, src.system, rows.assign(native_version=rows["_version"].astype(str)))
                quarantine.resolve(conn, run_id=ctx.run_id, flow=ctx.flow, system=src.system,
                                   record_keys=rows["native_key"].tolist())
                outbox.enqueue(conn, self.entity, ctx.run_id, rows["hub_id"].tolist(), self.targets())
            log.info("watermarks moved: %s", watermarks.commit_pending(conn, ctx.run_id, ctx.flow))
        return counts
