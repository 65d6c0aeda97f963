"""Quarantine: every record the hub could not take, with its payload, stage and reasons.

Nothing is lost: a record stays here until a later run takes a good version of it
(``resolved``), an operator replays it after a fix (``replay_pending`` → ``replayed``)
or ignores it with a comment.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Sequence

from sqlalchemy import String, and_, cast, func, or_, select, true, update

from hub import audit, model
from hub.store import chunks, upsert, utcnow

OPEN = "open"
RESOLVED = "resolved"


def payload_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def add(conn, *, run_id: str, flow: str, entity: str, system: str, stage: str,
        items: Sequence[tuple[str, Any, list[str]]]) -> int:
    """Quarantine ``(record_key, payload, reasons)`` items; the same bad record seen again
    updates its row instead of adding one."""
    now = utcnow()
    rows = []
    seen: set[tuple[str, str]] = set()
    for key, payload, reasons in items:
        h = payload_hash(payload)
        if (str(key), h) in seen:
            continue
        seen.add((str(key), h))
        rows.append({"flow": flow, "entity": entity, "system": system, "stage": stage,
                     "record_key": str(key)[:200], "payload_hash": h, "reasons": list(reasons),
                     "payload": payload, "status": OPEN, "first_run_id": run_id, "last_run_id": run_id,
                     "created_at": now, "updated_at": now, "comment": None})
    upsert(conn, model.quarantine, rows,
           keys=["flow", "system", "stage", "record_key", "payload_hash"],
           update=["reasons", "status", "last_run_id", "updated_at"])
    return len(rows)


def resolve(conn, *, run_id: str, flow: str, system: str, record_keys: Iterable[str]) -> None:
    """A good version of these records was stored: close their open quarantine rows."""
    q = model.quarantine.c
    for part in chunks([str(k) for k in record_keys]):
        conn.execute(update(model.quarantine).where(
            q.flow == flow, q.system == system, q.status == OPEN, q.record_key.in_(part)).values(
            status=RESOLVED, updated_at=utcnow(), comment=f"taken by run {run_id}"))


def page_key(stream: str, where: str) -> str:
    """The record key of a page ``stream`` sent broken: ``<stream>@<where the read was>``, so
    a later complete read of that stream can find its entries (:func:`resolve_pages`)."""
    return where if where.startswith(f"{stream}@") else f"{stream}@{where}"


def resolve_pages(conn, *, run_id: str, flow: str, system: str, entity: str, stream: str) -> int:
    """A read of ``stream`` reached its end without a broken page, from a watermark no broken
    page ever moved: the records of the pages it once sent broken arrived, so their entries
    (stage extract) close as resolved. Returns how many closed."""
    q = model.quarantine.c
    return conn.execute(update(model.quarantine).where(
        q.flow == flow, q.system == system, q.entity == entity, q.stage == "extract",
        q.status.in_([OPEN, "replay_pending"]),
        q.record_key.like(_like(page_key(stream, ""))[1:], escape="\\")).values(
        status=RESOLVED, updated_at=utcnow(), comment=f"the records arrived in run {run_id}")).rowcount or 0


def _claim(conn, ids: Sequence[int], statuses: Sequence[str]) -> list[dict[str, Any]]:
    """The rows among ``ids`` whose status allows the action (id and status before it)."""
    q = model.quarantine.c
    out: list[dict[str, Any]] = []
    for part in chunks(sorted({int(i) for i in ids})):
        out.extend(dict(r._mapping) for r in conn.execute(select(q.id, q.status).where(
            q.id.in_(part), q.status.in_(list(statuses)))))
    return out


def _set_status(conn, rows: list[dict[str, Any]], allowed: Sequence[str], **values: Any) -> int:
    q = model.quarantine.c
    n = 0
    for part in chunks([r["id"] for r in rows]):
        n += conn.execute(update(model.quarantine).where(q.id.in_(part), q.status.in_(list(allowed))).values(
            updated_at=utcnow(), **values)).rowcount
    return n


def request_replay(conn, ids: Sequence[int], comment: str | None = None, *, actor: str | None = None) -> int:
    """Mark open entries for the flow's next run to fetch again; ``actor`` is audited."""
    rows = _claim(conn, ids, [OPEN])
    n = _set_status(conn, rows, [OPEN], status="replay_pending", comment=comment)
    if actor:
        audit.record(conn, rows=rows, action="replay", actor=actor, to_status="replay_pending", comment=comment)
    return n


def ignore(conn, ids: Sequence[int], comment: str, *, actor: str | None = None) -> int:
    """Drop entries on purpose, with the reason; ``actor`` is audited."""
    allowed = [OPEN, "replay_pending"]
    rows = _claim(conn, ids, allowed)
    n = _set_status(conn, rows, allowed, status="ignored", comment=comment)
    if actor:
        audit.record(conn, rows=rows, action="ignore", actor=actor, to_status="ignored", comment=comment)
    return n


def take_replays(conn, flow: str, system: str, stage_names: Sequence[str], entity: str | None = None) -> list[dict[str, Any]]:
    """Claim this flow's pending replays of ``system`` (and ``entity``); returns their rows."""
    q = model.quarantine.c
    cond = [q.flow == flow, q.system == system, q.status == "replay_pending", q.stage.in_(list(stage_names))]
    if entity:
        cond.append(q.entity == entity)
    rows = [dict(r._mapping) for r in conn.execute(select(model.quarantine).where(*cond))]
    if rows:
        conn.execute(update(model.quarantine).where(q.id.in_([r["id"] for r in rows])).values(
            status="replayed", updated_at=utcnow()))
    return rows


def listing(conn, flow: str | None = None, status: str | None = OPEN, limit: int = 50) -> list[dict[str, Any]]:
    q = model.quarantine.c
    cond = []
    if flow:
        cond.append(q.flow == flow)
    if status:
        cond.append(q.status == status)
    stmt = select(model.quarantine).where(and_(*cond) if cond else True).order_by(q.id.desc()).limit(limit)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


STATUSES = (OPEN, "replay_pending", "replayed", RESOLVED, "ignored")


def find(conn, *, flow: str | None = None, entity: str | None = None, system: str | None = None,
         stage: str | None = None, status: str | None = OPEN, text: str | None = None, run_id: str | None = None,
         limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Entries matching every given filter, newest first, and how many match in all.

    ``text`` matches the record key or a reason (e.g. ``phone_format`` or ``统一社会信用代码``);
    ``run_id`` matches entries first or last seen by that run.
    """
    q = model.quarantine.c
    cond = [col == value for col, value in ((q.flow, flow), (q.entity, entity), (q.system, system),
                                            (q.stage, stage), (q.status, status)) if value]
    if run_id:
        cond.append(or_(q.first_run_id == run_id, q.last_run_id == run_id))
    if text:
        # reasons are JSON: stores may keep non-ASCII text as \\uXXXX escapes, so match both spellings
        likes = {_like(text), _like(json.dumps(text)[1:-1])}
        cond.append(or_(q.record_key == text, q.comment.like(_like(text), escape="\\"),
                        *[cast(q.reasons, String).like(p, escape="\\") for p in likes]))
    where = and_(*cond) if cond else true()
    total = conn.execute(select(func.count()).select_from(model.quarantine).where(where)).scalar() or 0
    rows = [dict(r._mapping) for r in conn.execute(
        select(model.quarantine).where(where).order_by(q.id.desc()).limit(limit).offset(offset))]
    return rows, int(total)


def facets(conn) -> dict[str, list[str]]:
    """The values each filter can take, for the console's drop-downs."""
    q = model.quarantine.c
    return {name: sorted({r[0] for r in conn.execute(select(col).distinct()) if r[0]})
            for name, col in (("flow", q.flow), ("entity", q.entity), ("system", q.system), ("stage", q.stage))}
