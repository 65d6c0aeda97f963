"""``sap_s4.db``: the U8 world as SAP S/4HANA holds it (work in progress: the schema only)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from . import sap_s4_schema


def write(u8_db: Path, path: Path, seed: int) -> None:
    """Recreate ``path`` from the U8 database ``u8_db``, deterministic per ``seed``."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        sap_s4_schema.create_all(conn)
        conn.commit()
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
