"""``shops.db``: the five shops' orders and the shipments they received.

One row per order: the platform, its tid, the modified time (Unix seconds) the list calls page
by, the state and paid amount the truth endpoint reports, and ``doc`` (the order as JSON in the
stand-in's own neutral form, money in 分 integers; each platform module renders it in the
platform's words). Shipments are kept per tid + tracking number with a count of sends, so a
repeated send is visible (``/__sandbox/shops/stats``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    platform TEXT NOT NULL, tid TEXT NOT NULL, modified INTEGER NOT NULL, state TEXT NOT NULL,
    payment INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (platform, tid));
CREATE INDEX IF NOT EXISTS orders_modified ON orders (platform, modified);
CREATE TABLE IF NOT EXISTS shipments (
    platform TEXT NOT NULL, tid TEXT NOT NULL, tracking_no TEXT NOT NULL, company TEXT NOT NULL,
    oids TEXT, sends INTEGER NOT NULL, first_at INTEGER NOT NULL, PRIMARY KEY (platform, tid, tracking_no));
"""


def row_of(doc: dict[str, Any]) -> tuple[str, str, int, str, int, str]:
    return (doc["platform"], doc["tid"], int(doc["modified"]), doc["state"], int(doc["payment"]),
            json.dumps(doc, ensure_ascii=False, separators=(",", ":")))


def create(path: Path, docs: Iterable[dict[str, Any]]) -> int:
    """Recreate ``path`` with ``docs`` (one transaction, one executemany: fast at 100k)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
    with conn:
        conn.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?)", (row_of(d) for d in docs))
    n = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    conn.close()
    return n


class ShopStore:
    """The served file, behind one lock (the app's handlers run in a thread pool)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + SCHEMA)
        self.lock = threading.RLock()

    def window(self, platform: str, start: int, end: int, offset: int, limit: int,
               ascending: bool = False, states: set[str] | None = None) -> tuple[int, list[dict[str, Any]]]:
        """Orders modified in [start, end] (both ends included: UNVERIFIED which end each platform
        includes, so a connector must dedupe at the boundary), newest first unless ``ascending``;
        with ``states`` only orders in those (neutral) states, counted and paged alike."""
        order = "ASC" if ascending else "DESC"
        where, args = "platform=? AND modified BETWEEN ? AND ?", [platform, start, end]
        if states is not None:
            where += f" AND state IN ({','.join('?' * len(states))})" if states else " AND 0"
            args += sorted(states)
        with self.lock:
            total = self.conn.execute(f"SELECT count(*) FROM orders WHERE {where}", args).fetchone()[0]
            rows = self.conn.execute(f"SELECT doc FROM orders WHERE {where} ORDER BY modified {order}, tid {order} "
                                     f"LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        return total, [json.loads(r[0]) for r in rows]

    def get(self, platform: str, tid: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.conn.execute("SELECT doc FROM orders WHERE platform=? AND tid=?", (platform, tid)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, doc: dict[str, Any]) -> None:
        with self.lock, self.conn:
            self.conn.execute("INSERT OR REPLACE INTO orders VALUES (?,?,?,?,?,?)", row_of(doc))

    def tids_between(self, platform: str, start: int, end: int) -> list[str]:
        with self.lock:
            return [r[0] for r in self.conn.execute(
                "SELECT tid FROM orders WHERE platform=? AND modified BETWEEN ? AND ? ORDER BY tid", (platform, start, end))]

    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.conn.execute("SELECT platform, count(*) FROM orders GROUP BY platform").fetchall())

    def truth(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with self.lock:
            rows = self.conn.execute("SELECT platform, tid, state, modified, payment FROM orders ORDER BY platform, tid")
            for platform, tid, state, modified, payment in rows:
                out.setdefault(platform, []).append({"tid": tid, "state": state, "modified": modified,
                                                     "paid_fen": payment})
        return out

    def ship(self, platform: str, tid: str, tracking_no: str, company: str, oids: list[str] | None,
             now: int) -> int:
        """Record a send; how many times this tid + tracking number has now been sent."""
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT INTO shipments VALUES (?,?,?,?,?,1,?) ON CONFLICT (platform, tid, tracking_no) "
                "DO UPDATE SET sends = sends + 1", (platform, tid, tracking_no, company,
                                                   json.dumps(oids) if oids is not None else None, now))
            return self.conn.execute("SELECT sends FROM shipments WHERE platform=? AND tid=? AND tracking_no=?",
                                     (platform, tid, tracking_no)).fetchone()[0]

    def sends(self, platform: str, tid: str, tracking_no: str) -> int:
        with self.lock:
            row = self.conn.execute("SELECT sends FROM shipments WHERE platform=? AND tid=? AND tracking_no=?",
                                    (platform, tid, tracking_no)).fetchone()
        return row[0] if row else 0

    def shipments(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with self.lock:
            for platform, tid, tracking, company, oids, sends in self.conn.execute(
                    "SELECT platform, tid, tracking_no, company, oids, sends FROM shipments ORDER BY platform, tid"):
                out.setdefault(platform, []).append({"tid": tid, "tracking_no": tracking, "company": company,
                                                     "oids": json.loads(oids) if oids else None, "sends": sends})
        return out
