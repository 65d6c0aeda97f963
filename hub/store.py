"""The hub store: one SQLAlchemy engine, set-based upserts and run-keyed staging.

Bulk paths are set-based (``INSERT .. ON CONFLICT`` in chunks) on both SQLite and
PostgreSQL; nothing on a hot path makes one round trip per row.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterable, Sequence

import pandas as pd
from sqlalchemy import Engine, Table, create_engine, delete, event, select
from sqlalchemy.dialects import postgresql, sqlite

from hub import config, model

CHUNK = 2000  # rows per statement; stays under SQLite's 32k bound parameters for wide tables
#: The largest integer key a row can have (SQLite INTEGER, PostgreSQL bigint): an id beyond
#: it names no row, and the database driver would overflow on it.
MAX_ROW_ID = 2**63 - 1


def is_row_id(value: int) -> bool:
    """True when ``value`` is an id a database row can have (1 … 2^63-1)."""
    return 0 < value <= MAX_ROW_ID


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(value: datetime | None) -> datetime | None:
    """A timestamp read back from the store, in UTC (SQLite hands back naive datetimes)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process; creates the schema on first use."""
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"timeout": 30})
        event.listen(eng, "connect", _sqlite_pragmas)
    else:
        eng = create_engine(url, pool_pre_ping=True)
    model.metadata.create_all(eng)
    return eng


def engine(url: str | None = None) -> Engine:
    return engine_for(url or config.store_url())


def _insert(eng: Engine, table: Table):
    dialect = postgresql if eng.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def upsert(conn, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str],
           update: Sequence[str] | None = None) -> int:
    """Insert rows, updating ``update`` columns (default: all non-key) on key conflict.

    One statement compiled once and executed with many parameter sets (the driver's
    executemany; SQLAlchemy batches it into multi-row VALUES on PostgreSQL): compiling a
    multi-row VALUES clause in Python instead cost 30 s per 10k rows.
    """
    if not rows:
        return 0
    cols = list(rows[0].keys())
    update = [c for c in (update if update is not None else cols) if c not in keys]
    stmt = _insert(conn.engine, table)
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    for start in range(0, len(rows), CHUNK * 10):
        conn.execute(stmt, list(rows[start:start + CHUNK * 10]))
    return len(rows)


def frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain dicts with None for missing values (what drivers accept)."""
    if df.empty:
        return []
    clean = df.astype(object).where(pd.notna(df), None)
    return clean.to_dict("records")


IN_CHUNK = 900  # values per IN (...) list; SQLite allows 999 bound parameters by default


def chunks(values: Sequence[Any], size: int = IN_CHUNK):
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


def select_in(conn, table: Table, column: str, values: Sequence[Any], *, where=(),
              columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of ``table`` whose ``column`` is in ``values``: a few set-based queries, not one per value."""
    cols = [table.c[c] for c in columns] if columns else list(table.c)
    names = [c.name for c in cols]
    rows: list = []
    for part in chunks(list(dict.fromkeys(values))):
        rows.extend(conn.execute(select(*cols).where(table.c[column].in_(part), *where)).all())
    return pd.DataFrame(rows, columns=names)


# --- staging: step outputs keyed by run id -------------------------------------------------

def stage_write(conn, run_id: str, step: str, df: pd.DataFrame, system: str = "") -> None:
    """Replace this run's output of ``step`` for ``system`` with ``df`` (chunked JSON)."""
    stage_clear(conn, run_id, step, system)
    records = frame_records(df)
    base = _next_seq(conn, run_id, step)
    rows = [
        {"run_id": run_id, "step": step, "seq": base + i, "system": system,
         "record_key": None, "payload": json.dumps(records[s:s + 5000], ensure_ascii=False, default=str)}
        for i, s in enumerate(range(0, len(records), 5000))
    ]
    if rows:
        conn.execute(model.stage.insert(), rows)


def stage_append(conn, run_id: str, step: str, df: pd.DataFrame, system: str = "") -> None:
    """Add to a step's output without clearing it (results that arrive chunk by chunk)."""
    if df.empty:
        return
    conn.execute(model.stage.insert(), [{"run_id": run_id, "step": step, "seq": _next_seq(conn, run_id, step),
                                         "system": system, "record_key": None,
                                         "payload": json.dumps(frame_records(df), ensure_ascii=False, default=str)}])


def _next_seq(conn, run_id: str, step: str) -> int:
    last = conn.execute(
        select(model.stage.c.seq).where(model.stage.c.run_id == run_id, model.stage.c.step == step)
        .order_by(model.stage.c.seq.desc()).limit(1)
    ).scalar()
    return 0 if last is None else last + 1


def stage_clear(conn, run_id: str, step: str, system: str | None = None) -> None:
    cond = [model.stage.c.run_id == run_id, model.stage.c.step == step]
    if system is not None:
        cond.append(model.stage.c.system == system)
    conn.execute(delete(model.stage).where(*cond))


def stage_read(conn, run_id: str, step: str, system: str | None = None) -> pd.DataFrame:
    """This run's output of ``step`` (optionally one system's) as one DataFrame."""
    cond = [model.stage.c.run_id == run_id, model.stage.c.step == step]
    if system is not None:
        cond.append(model.stage.c.system == system)
    records: list[dict[str, Any]] = []
    for (payload,) in conn.execute(select(model.stage.c.payload).where(*cond).order_by(model.stage.c.seq)):
        records.extend(json.loads(payload))
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def stage_purge(conn, keep_runs: Iterable[str]) -> None:
    """Drop staging of runs not in ``keep_runs`` (staging is scratch, the run log stays)."""
    keep = list(keep_runs)
    conn.execute(delete(model.stage).where(model.stage.c.run_id.notin_(keep)))
