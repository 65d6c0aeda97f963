"""Record trace: from any key an operator has at hand to everything the hub knows.

A salesperson calls with a CRM id, finance with a U8 code, someone else with a USCC or
half a company name. ``search`` turns any of them into canonical records; ``trace`` shows
one record's golden version, its id in every system, each system's version, what still
waits in the outbox, its quarantine entries and the runs that touched it.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from hub import model, store
from hub.store import aware

ENTITY = "customer"
OUTCOME_RUNS = 20  # recent runs whose per-record outcomes are searched for a trace


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search(conn, query: str, limit: int = 25) -> list[dict[str, Any]]:
    """Canonical records matching ``query`` (hub id, any system key, USCC, ERP code, name
    fragment), each with what matched; exact key matches first."""
    q = (query or "").strip()
    if not q:
        return []
    found: dict[str, str] = {}
    c, s, x = model.customer.c, model.customer_source.c, model.xref.c

    def add(rows, why: str) -> None:
        for (hub_id,) in rows:
            if hub_id and hub_id not in found and len(found) < limit:
                found[hub_id] = why

    add(conn.execute(select(c.hub_id).where(c.hub_id == q)), "hub id")
    add(conn.execute(select(x.hub_id).where(x.entity == ENTITY, x.native_key == q)), "system key")
    add(conn.execute(select(s.hub_id).where(or_(s.native_key == q, s.erp_code == q))), "system key")
    add(conn.execute(select(c.hub_id).where(c.uscc == q.upper())), "USCC")
    add(conn.execute(select(s.hub_id).where(s.uscc == q.upper())), "USCC")
    if len(q) >= 2:
        pattern = _like(q)
        add(conn.execute(select(c.hub_id).where(c.name.like(pattern, escape="\\")).limit(limit)), "name")
        add(conn.execute(select(s.hub_id).where(s.name.like(pattern, escape="\\")).limit(limit)), "name")
    if not found:
        return []
    rows = {r.hub_id: r for r in conn.execute(select(c.hub_id, c.name, c.uscc).where(c.hub_id.in_(list(found))))}
    return [{"hub_id": h, "matched": why, "name": rows[h].name if h in rows else None,
             "uscc": rows[h].uscc if h in rows else None} for h, why in found.items()]


def quarantined(conn, query: str, limit: int = 25) -> list[dict[str, Any]]:
    """Quarantine entries whose record key is ``query``: a record that never got a hub id."""
    q = model.quarantine.c
    return [dict(r._mapping) for r in conn.execute(select(
        q.id, q.flow, q.system, q.stage, q.record_key, q.status, q.reasons, q.last_run_id, q.updated_at).where(
        q.record_key == (query or "").strip()).order_by(q.id.desc()).limit(limit))]


def _outcomes(conn, keys: set[tuple[str, str]], run_ids: list[str]) -> list[dict[str, Any]]:
    """What each of the recent runs did with these (system, key) records."""
    out = []
    for run_id in run_ids:
        frame = store.stage_read(conn, run_id, "outcome")
        if frame.empty or "key" not in frame.columns:
            continue
        hit = frame[[(str(sy), str(k)) in keys for sy, k in zip(frame["system"], frame["key"])]]
        for rec in store.frame_records(hit):
            out.append({"run_id": run_id, "system": rec.get("system"), "key": rec.get("key"),
                        "outcome": rec.get("outcome"), "detail": rec.get("detail")})
    return out


def trace(conn, hub_id: str) -> dict[str, Any] | None:
    """Everything about one canonical record; None when the hub id is unknown."""
    c, s, x, o, q, r = (model.customer.c, model.customer_source.c, model.xref.c, model.outbox.c,
                        model.quarantine.c, model.sync_run.c)
    golden = conn.execute(select(model.customer).where(c.hub_id == hub_id)).first()
    xrefs = [dict(row._mapping) for row in conn.execute(select(model.xref).where(
        x.entity == ENTITY, x.hub_id == hub_id).order_by(x.system, x.native_key))]
    sources = [dict(row._mapping) for row in conn.execute(select(model.customer_source).where(
        s.hub_id == hub_id).order_by(s.system, s.native_key))]
    if golden is None and not xrefs and not sources:
        return None
    keys = {(row["system"], str(row["native_key"])) for row in xrefs + sources}
    outbox = [dict(row._mapping) for row in conn.execute(select(model.outbox).where(
        o.entity == ENTITY, o.hub_id == hub_id).order_by(o.target))]
    quarantine = []
    if keys:
        quarantine = [dict(row._mapping) for row in conn.execute(select(model.quarantine).where(
            q.entity == ENTITY, or_(*[and_(q.system == sy, q.record_key == k) for sy, k in keys])).order_by(q.id))]
    touched: dict[str, set[str]] = {}

    def touch(run_id: str | None, what: str) -> None:
        if run_id:
            touched.setdefault(run_id, set()).add(what)

    if golden is not None:
        touch(golden.run_id, "golden record last changed")
    for src in sources:
        touch(src["run_id"], f"{src['system']} version stored")
    for item in outbox:
        touch(item["enqueued_run"], f"queued for {item['target']}")
    for item in quarantine:
        touch(item["first_run_id"], f"quarantined ({item['system']}, {item['stage']})")
        touch(item["last_run_id"], f"quarantine seen ({item['system']}, {item['stage']})")
    recent = [row.run_id for row in conn.execute(select(r.run_id).order_by(r.started_at.desc()).limit(OUTCOME_RUNS))]
    outcomes = _outcomes(conn, keys, recent)
    for item in outcomes:
        touch(item["run_id"], f"{item['system']}: {item['outcome']}")
    run_rows = {row.run_id: row for row in conn.execute(select(r.run_id, r.flow, r.status, r.started_at).where(
        r.run_id.in_(list(touched))))} if touched else {}
    runs = sorted(({"run_id": rid, "what": sorted(what),
                    "flow": run_rows[rid].flow if rid in run_rows else None,
                    "status": run_rows[rid].status if rid in run_rows else None,
                    "started_at": aware(run_rows[rid].started_at) if rid in run_rows else None}
                   for rid, what in touched.items()),
                  key=lambda d: d["started_at"] or aware(store.utcnow()), reverse=True)
    return {"hub_id": hub_id, "golden": dict(golden._mapping) if golden is not None else None, "xref": xrefs,
            "sources": sources, "outbox": outbox, "quarantine": quarantine, "outcomes": outcomes, "runs": runs}
