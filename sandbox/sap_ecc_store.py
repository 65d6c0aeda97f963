"""``sap_ecc.db``: the ECC stand-in's tables, named after the ECC tables they stand for.

``kna1`` customers (KUNNR 10 digits; the address fields ADRC keeps: NAME1..NAME4 of 40, CITY1,
DISTRICT, STREET, POST_CODE1, REGION, COUNTRY, SORT1 / SORT2 (search terms 1 and 2), TEL_NUMBER;
STCD1/STCD5 tax numbers; ALTKN the previous (U8) number), ``knvv`` the sales areas a customer is
extended to, ``mara`` materials (MATNR in MATN1 internal form, the list price the stand-in prices
with, whether it may be sold in the sales area, ``u8_code`` the U8 code, which BAPI_MATERIAL_GET_DETAIL
shows as the old material number BISMT), ``vbak``/``vbap``/``vbep``/``konv`` sales orders, ``stxl``
their texts (object VBBK/VBBP, name VBELN[+POSNR], text ID, language, line), and ``nriv`` the number
ranges.
Amounts and quantities are kept as decimal strings.  One connection behind a lock: SQLite
serialises writers anyway and the stand-in's load is a test's.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE kna1 (kunnr TEXT PRIMARY KEY, name1 TEXT, name2 TEXT, name3 TEXT, name4 TEXT, city1 TEXT,
  district TEXT, street TEXT, post_code1 TEXT, region TEXT, country TEXT, sort1 TEXT, sort2 TEXT, tel_number TEXT,
  stcd1 TEXT, stcd5 TEXT, ktokd TEXT, adrnr TEXT, altkn TEXT, erdat TEXT, origin TEXT);
CREATE TABLE knvv (kunnr TEXT, vkorg TEXT, vtweg TEXT, spart TEXT, PRIMARY KEY (kunnr, vkorg, vtweg, spart));
CREATE TABLE mara (matnr TEXT PRIMARY KEY, maktx TEXT, meins TEXT, price TEXT, waers TEXT, sellable INTEGER,
  u8_code TEXT);
CREATE TABLE vbak (vbeln TEXT PRIMARY KEY, auart TEXT, vkorg TEXT, vtweg TEXT, spart TEXT, kunnr TEXT,
  kunwe TEXT, bstkd TEXT, bstdk TEXT, audat TEXT, erdat TEXT, netwr TEXT, waerk TEXT, origin TEXT);
CREATE TABLE vbap (vbeln TEXT, posnr TEXT, matnr TEXT, arktx TEXT, kwmeng TEXT, vrkme TEXT, netpr TEXT,
  kpein TEXT, netwr TEXT, werks TEXT, PRIMARY KEY (vbeln, posnr));
CREATE TABLE vbep (vbeln TEXT, posnr TEXT, etenr TEXT, edatu TEXT, wmeng TEXT, PRIMARY KEY (vbeln, posnr, etenr));
CREATE TABLE konv (vbeln TEXT, posnr TEXT, kschl TEXT, kbetr TEXT, waers TEXT, kpein TEXT, kmein TEXT);
CREATE TABLE stxl (tdobject TEXT, tdname TEXT, tdid TEXT, tdspras TEXT, line INTEGER, tdline TEXT);
CREATE TABLE nriv (object TEXT PRIMARY KEY, nrlevel INTEGER);
CREATE INDEX vbak_kunnr ON vbak (kunnr, vkorg);
CREATE INDEX vbak_bstkd ON vbak (bstkd);
"""
KNA1_COLS = ("kunnr", "name1", "name2", "name3", "name4", "city1", "district", "street", "post_code1", "region",
             "country", "sort1", "sort2", "tel_number", "stcd1", "stcd5", "ktokd", "adrnr", "altkn", "erdat", "origin")
#: First numbers of the internal number ranges (objects as SAP names them: DEBITOR, RV_BELEG, ADRNR).
RANGE_START = {"DEBITOR": 100001, "RV_BELEG": 10001, "ADRNR": 25001}


def create(path: Path) -> sqlite3.Connection:
    """A fresh ``sap_ecc.db`` (old files removed) with the schema and the number ranges."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO nriv VALUES (?, ?)", RANGE_START.items())
    return conn


def next_number(conn: sqlite3.Connection, obj: str) -> str:
    """Draw the next number of range ``obj``, 10 digits with leading zeros."""
    (n,) = conn.execute("SELECT nrlevel FROM nriv WHERE object = ?", (obj,)).fetchone()
    conn.execute("UPDATE nriv SET nrlevel = nrlevel + 1 WHERE object = ?", (obj,))
    return f"{n:010d}"


def insert_customer(conn: sqlite3.Connection, row: dict[str, Any], areas: list[tuple[str, str, str]]) -> None:
    conn.execute(f"INSERT INTO kna1 ({', '.join(KNA1_COLS)}) VALUES ({', '.join('?' * len(KNA1_COLS))})",
                 [row.get(c) or "" for c in KNA1_COLS])
    conn.executemany("INSERT OR IGNORE INTO knvv VALUES (?, ?, ?, ?)", [(row["kunnr"], *a) for a in areas])


class EccStore:
    """The stand-in's access to ``sap_ecc.db``."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.lock = threading.Lock()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, args).fetchall()

    def customer(self, kunnr: str) -> sqlite3.Row | None:
        found = self.query("SELECT * FROM kna1 WHERE kunnr = ?", (kunnr,))
        return found[0] if found else None

    def in_sales_area(self, kunnr: str, vkorg: str, vtweg: str, spart: str) -> bool:
        return bool(self.query("SELECT 1 FROM knvv WHERE kunnr = ? AND vkorg = ? AND vtweg = ? AND spart = ?",
                               (kunnr, vkorg, vtweg, spart)))

    def material(self, matnr: str) -> sqlite3.Row | None:
        found = self.query("SELECT * FROM mara WHERE matnr = ?", (matnr,))
        return found[0] if found else None

    def counts(self) -> dict[str, int]:
        return {t: self.query(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("kna1", "mara", "vbak", "vbap")}
