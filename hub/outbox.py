"""The transactional outbox for any entity: what each target system still has to receive.

A record that changed is enqueued in the same transaction as the change; ``publish`` and
``write_back`` work the outbox, so a run that dies in between loses nothing. Besides
``pending`` / ``done`` / ``failed``, an entry may be ``waiting`` (its prerequisites, e.g. an
order's customer in the ERP, are not there yet; ``last_error`` says which): every run looks
at waiting entries again, so a late upstream record releases them.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import bindparam, select, update

from hub import model
from hub.store import chunks, upsert, utcnow

PENDING, WAITING, DONE, FAILED = "pending", "waiting", "done", "failed"


def enqueue(conn, entity: str, run_id: str, hub_ids: Sequence[str], targets: Sequence[str]) -> int:
    """Make ``hub_ids`` pending for every target (again, if they were done)."""
    now = utcnow()
    rows = [{"entity": entity, "hub_id": h, "target": t, "status": PENDING, "enqueued_run": run_id,
             "updated_at": now, "last_error": None} for h in dict.fromkeys(hub_ids) for t in targets]
    return upsert(conn, model.outbox, rows, keys=["entity", "hub_id", "target"])


def ids(conn, entity: str, target: str, statuses: Sequence[str] = (PENDING,)) -> list[str]:
    o = model.outbox.c
    return [r[0] for r in conn.execute(select(o.hub_id).where(o.entity == entity, o.target == target,
                                                              o.status.in_(list(statuses))))]


def reasons(conn, entity: str, target: str, status: str) -> dict[str, str | None]:
    """hub_id → last_error of the entries in ``status`` (why they wait or failed)."""
    o = model.outbox.c
    return dict(conn.execute(select(o.hub_id, o.last_error).where(o.entity == entity, o.target == target,
                                                                  o.status == status)).all())


def mark(conn, entity: str, target: str, hub_ids: Sequence[str], status: str = DONE,
         error: str | None = None) -> None:
    """Set the entries' status (and reason); one statement per chunk of ids."""
    o = model.outbox.c
    now = utcnow()
    for part in chunks(list(hub_ids)):
        conn.execute(update(model.outbox).where(o.entity == entity, o.target == target, o.hub_id.in_(part))
                     .values(status=status, updated_at=now, last_error=error))


def mark_each(conn, entity: str, target: str, status: str, errors: dict[str, str]) -> None:
    """Set ``status`` with a reason of its own per entry: one statement, many parameter sets."""
    if not errors:
        return
    o = model.outbox.c
    stmt = (update(model.outbox).where(o.entity == entity, o.target == target, o.hub_id == bindparam("h"))
            .values(status=status, updated_at=bindparam("t"), last_error=bindparam("e")))
    now = utcnow()
    conn.execute(stmt, [{"h": h, "e": e, "t": now} for h, e in errors.items()])
