"""The registry refresh flow: keep every customer's registry facts no older than the TTL.

extract asks the ``registry`` seat (天眼查 or 企查查, as its connection says) about the
customers of the hub's ``customer`` table whose cached answer is missing, expired or
deferred (flows/registry.py: cached keys cost nothing); load stores each customer's facts as
its ``customer_source`` row of the registry seat (xref name ``registry``), keyed by hub id, where survivorship ranks
it first for legal facts. The other steps have nothing to do in this flow.

Only extract calls the registry; its Airflow task runs in the pool ``registry_api``.
"""
from __future__ import annotations

import logging
import os

import pandas as pd
from sqlalchemy import select

from flows import registry, roles
from hub import model, xref
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import frame_records, select_in, stage_read, stage_write, upsert, utcnow
from quality import names

log = logging.getLogger("flows.registry_refresh")

FLOW = "registry_refresh"
#: Registry facts as canonical customer fields (hub.model.CUSTOMER_FIELDS).
FIELDS = {"legal_name": "name", "uscc": "uscc", "registry_status": "registry_status",
          "legal_representative": "legal_representative", "registered_capital": "registered_capital",
          "address": "address"}
HASHED = [*FIELDS.values(), "name_key"]


def budget() -> int | None:
    """Lookups one run may send (``HUB_REGISTRY_BUDGET``; unset: no cap)."""
    value = os.environ.get("HUB_REGISTRY_BUDGET")
    return int(value) if value else None


def extract(ctx: StepContext) -> StepCounts:
    c = model.customer.c
    with ctx.engine.begin() as conn:
        customers = pd.DataFrame(conn.execute(select(c.hub_id, c.name, c.uscc)).all(), columns=["hub_id", "name", "uscc"])
    facts, counts = registry.enrich(ctx.engine, customers, registry.connector(), budget=budget())
    with ctx.engine.begin() as conn:
        stage_write(conn, ctx.run_id, "extract", facts)
        stage_write(conn, ctx.run_id, "registry_counts", pd.DataFrame([counts.as_dict()]))
    return counts.as_step_counts()


def load(ctx: StepContext) -> StepCounts:
    """Facts into ``customer_source`` (system: the registry seat's name, native key = hub id); unchanged
    ones skipped."""
    system = roles.registry().system
    with ctx.engine.begin() as conn:
        facts = stage_read(conn, ctx.run_id, "extract")
        if facts.empty or "legal_name" not in facts:
            return StepCounts()
        facts = facts[facts["legal_name"].notna()].drop_duplicates("hub_id", keep="first")
        counts = StepCounts(read=len(facts))
        if facts.empty:
            return counts
        src = facts.rename(columns=FIELDS)[["hub_id", *FIELDS.values()]].copy()
        src["name_key"] = names.name_key(src["name"])
        src["content_hash"] = xref.content_hash(src, HASHED)
        s = model.customer_source.c
        have = select_in(conn, model.customer_source, "native_key", src["hub_id"].tolist(),
                         where=(s.system == system,), columns=["native_key", "content_hash"])
        known = dict(zip(have["native_key"], have["content_hash"]))
        changed = src[src["content_hash"] != src["hub_id"].map(known)]
        counts.skipped = len(src) - len(changed)
        if not changed.empty:
            rows = frame_records(changed.assign(system=system, native_key=changed["hub_id"], source_updated_at=utcnow(),
                                                run_id=ctx.run_id))
            upsert(conn, model.customer_source, rows, keys=["system", "native_key"])
        counts.written = len(changed)
    log.info("registry facts: %d changed, %d unchanged", counts.written, counts.skipped)
    return counts


def nothing(ctx: StepContext) -> StepCounts:
    """This flow has nothing to do in this step."""
    return StepCounts()


STEP_FUNCTIONS = {"extract": extract, "map": nothing, "validate": nothing, "resolve": nothing, "load": load,
                  "publish": nothing, "write_back": nothing}
