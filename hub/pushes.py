"""The shops' push messages as received (issue 12): stored before they are acknowledged.

A push only makes an order arrive sooner: the receiver (flows/shop_pushes.py) stores the
order's id and version here, the shop_orders flow reads the ids not yet consumed
(:func:`pending`) besides its polled window and marks them (:func:`consume`). No buyer data
is kept: the ids, the kind, the times and a SHA-256 of the body (the replay key), never the body.

Kept on ``hub.model.metadata`` (``hub.model`` imports this module at its end), so
``create_all`` makes these tables too.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hub.model import metadata

#: What became of one push request (the tally's outcomes).
STORED, REPLAYED, DUPLICATE, FORGED, STALE, REFUSED, NO_ORDER = (
    "stored", "replayed", "duplicate", "forged", "stale", "refused", "no_order")

#: One push message that named an order. ``body_sha256`` is the replay key (the platforms'
#: retries and a replayed capture send the same bytes); (seat, tid, version) is the dedupe
#: key (the same change pushed twice under two message ids stores one row).
shop_push = Table(
    "shop_push", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seat", String(100), nullable=False),            # the shop binding's name
    Column("platform", String(20), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("tid", String(100), nullable=False),
    Column("version", String(100), nullable=False),
    Column("kind", String(100)),
    Column("sent_at", DateTime(timezone=True)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("consumed_run_id", String(250)),
    Column("consumed_at", DateTime(timezone=True)),
    Index("ux_shop_push_body", "seat", "body_sha256", unique=True),
    Index("ux_shop_push_version", "seat", "tid", "version", unique=True),
    Index("ix_shop_push_pending", "seat", "consumed_run_id"),
)

#: How many push requests each seat had per outcome (stored, replayed, duplicate, forged, stale …).
shop_push_tally = Table(
    "shop_push_tally", metadata,
    Column("seat", String(100), primary_key=True),
    Column("outcome", String(20), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("last_at", DateTime(timezone=True)),
)


def _insert(conn, table: Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _seen(conn, seat: str, body_sha256: str, tid: str, version: str) -> str | None:
    """REPLAYED when these bytes came before, DUPLICATE when this order version did, else None."""
    t = shop_push.c
    if conn.execute(select(t.id).where(t.seat == seat, t.body_sha256 == body_sha256)).first():
        return REPLAYED
    if conn.execute(select(t.id).where(t.seat == seat, t.tid == tid, t.version == version)).first():
        return DUPLICATE
    return None


def record(conn, *, seat: str, platform: str, body_sha256: str, tid: str, version: str, kind: str,
           sent_at: datetime | None, received_at: datetime) -> str:
    """Store one verified push once: STORED, or REPLAYED / DUPLICATE (nothing written).

    Two receivers racing on the same message both end here: the unique keys decide, the loser
    is told what it lost to."""
    seen = _seen(conn, seat, body_sha256, tid, version)
    if seen:
        return seen
    stmt = _insert(conn, shop_push).values(
        seat=seat, platform=platform, body_sha256=body_sha256, tid=str(tid), version=str(version), kind=kind,
        sent_at=sent_at, received_at=received_at).on_conflict_do_nothing()
    if conn.execute(stmt).rowcount == 1:
        return STORED
    return _seen(conn, seat, body_sha256, tid, version) or DUPLICATE


def count(conn, seat: str, outcome: str, at: datetime) -> None:
    """Add one to ``seat``'s tally of ``outcome``."""
    stmt = _insert(conn, shop_push_tally).values(seat=seat, outcome=outcome, count=1, last_at=at)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["seat", "outcome"],
        set_={"count": shop_push_tally.c["count"] + 1, "last_at": at}))


def tally(conn, seat: str | None = None) -> dict[tuple[str, str], int]:
    """{(seat, outcome): requests}, for the run report, the console and the tests."""
    t = shop_push_tally.c
    query = select(t.seat, t.outcome, t["count"])
    if seat is not None:
        query = query.where(t.seat == seat)
    return {(r.seat, r.outcome): int(r.count) for r in conn.execute(query)}


def pending(conn, seat: str) -> list[str]:
    """The order ids pushed to ``seat`` and not consumed by a run yet, oldest push first."""
    t = shop_push.c
    rows = conn.execute(select(t.tid, t.received_at).where(t.seat == seat, t.consumed_run_id.is_(None))
                        .order_by(t.received_at, t.id))
    out: dict[str, None] = {}
    for row in rows:
        out.setdefault(row.tid, None)
    return list(out)


def consume(conn, seat: str, tids: Sequence[str], run_id: str, *, received_before: datetime | None = None,
            at: datetime | None = None) -> int:
    """Mark ``seat``'s pushes of ``tids`` consumed by ``run_id``; the rows marked.

    ``received_before`` (the time the run read :func:`pending`) leaves a push that came in while
    the run was reading pending, so the next run fetches that newer version too."""
    if not tids:
        return 0
    t = shop_push.c
    marked = 0
    at = at or datetime.now(timezone.utc)
    values = list(dict.fromkeys(str(x) for x in tids))
    for start in range(0, len(values), 500):
        where = [t.seat == seat, t.consumed_run_id.is_(None), t.tid.in_(values[start:start + 500])]
        if received_before is not None:
            where.append(t.received_at <= received_before)
        marked += conn.execute(update(shop_push).where(*where).values(consumed_run_id=run_id, consumed_at=at)).rowcount
    return marked
