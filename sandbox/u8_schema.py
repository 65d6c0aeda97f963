"""Real U8 table layout, recreated in SQLite.

The stand-in U8 database must look like a real UFDATA account to an ODBC reader: same table
and column names, the same NOT NULL/DEFAULT rules, and a rowversion column that grows on
every write.  The layout comes from ``u8_schema.json`` (derived from microfeel/Yonyou,
Apache-2.0; see the ``_origin`` note inside the file).

Declared types are chosen for two things at once: SQLite's type affinity, and what the
SQLite3 ODBC driver (libsqliteodbc) hands to pyodbc, so a connector sees roughly what SQL
Server would give it: strings -> TEXT (str), datetime -> DATETIME (datetime.datetime),
decimal/money -> NUMERIC (float), rowversion -> BIGINT (int; INTEGER affinity, but the
driver maps a plain INTEGER to a 32-bit SQL_INTEGER and would truncate large values).
"""

from __future__ import annotations

import json
import sqlite3
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("u8_schema.json")

#: Tables the sandbox creates (all of them are in the JSON file).
TABLES: tuple[str, ...] = (
    "Customer", "Inventory", "InventoryClass", "ComputationUnit",
    "SO_SOMain", "SO_SODetails", "DispatchList", "DispatchLists",
    "SaleBillVouch", "SaleBillVouchs", "Ap_CloseBill", "Ap_CloseBills", "CurrentStock",
)

#: First rowversion handed out.  Above 2**32 on purpose: SQL Server rowversion is 8 bytes and
#: a connector that reads it into 32 bits must fail here, not in production.
ROWVERSION_START = 2**32

#: SQL Server's getdate() in the format the ODBC driver parses into datetime.
NOW_SQL = "strftime('%Y-%m-%d %H:%M:%f', 'now', 'localtime')"


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The parsed ``u8_schema.json`` (``{"tables": {name: {"key", "columns"}}}``)."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def table_spec(table: str) -> dict[str, Any]:
    """Key and column specs of one table."""
    return load_schema()["tables"][table]


def columns(table: str) -> dict[str, dict[str, Any]]:
    """Column name -> spec (``max_length``, ``type``, ``required``, ``default``, ``rowversion``)."""
    return table_spec(table)["columns"]


def max_lengths(table: str) -> dict[str, int]:
    """Column name -> nvarchar length, for the columns that have one."""
    return {c: s["max_length"] for c, s in columns(table).items() if "max_length" in s}


def rowversion_column(table: str) -> str | None:
    """The column flagged ``rowversion`` in the schema (``pubufts``/``ufts``/``dufts``), if any."""
    for name, spec in columns(table).items():
        if spec.get("rowversion"):
            return name
    return None


def sqlite_type(name: str, spec: dict[str, Any], key: str) -> str:
    """Declared SQLite type for one column (see the module docstring for why these)."""
    if spec.get("rowversion"):
        return "BIGINT"
    typ = (spec.get("type") or "").lower()
    if typ == "datetime":
        return "DATETIME"
    if typ.startswith(("decimal", "numeric", "money")):
        return "NUMERIC"
    if typ in ("int", "bit"):
        return "INTEGER"
    if typ == "float":
        return "REAL"
    if "max_length" in spec or typ == "nvarchar":
        return "TEXT"
    # Untyped in the scaffold: int/bit/smallint/float/uniqueidentifier.  Infer from U8's
    # Hungarian prefixes.
    low = name.lower()
    if "guid" in low:
        return "TEXT"
    if name == key or low.endswith(("id", "ids")) or low.startswith("b"):
        return "INTEGER"
    if low.startswith("c") and "define" not in low:
        return "TEXT"
    return "NUMERIC"


def _default_sql(raw: str) -> str | None:
    """Translate a SQL Server default such as ``(0)``, ``('PE')``, ``(getdate())``."""
    inner = raw.strip()
    while inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1].strip()
    if inner.lower() == "getdate()":
        return f"({NOW_SQL})"
    if inner.startswith("'") and inner.endswith("'"):
        return inner
    try:
        float(inner)
    except ValueError:
        return None
    return inner


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def create_table_sql(table: str) -> str:
    """``CREATE TABLE`` for one U8 table: every column of the schema, key as primary key."""
    spec = table_spec(table)
    key = spec["key"]
    parts = []
    for name, col in spec["columns"].items():
        decl = f"{_q(name)} {sqlite_type(name, col, key)}"
        if name == key:
            decl += " PRIMARY KEY"
        if col.get("required") or name == key:
            decl += " NOT NULL"
        default = _default_sql(col["default"]) if "default" in col else None
        if default is not None:
            decl += f" DEFAULT {default}"
        parts.append(decl)
    return f"CREATE TABLE IF NOT EXISTS {_q(table)} (\n  " + ",\n  ".join(parts) + "\n)"


def rowversion_trigger_sql(table: str) -> list[str]:
    """Triggers that stamp the rowversion column from the global counter.

    AFTER INSERT always stamps.  AFTER UPDATE OF <every other column> stamps unless the
    statement itself changed the rowversion: that is exactly the trigger's own UPDATE, so
    even with ``PRAGMA recursive_triggers=ON`` it cannot loop.  Customer also gets
    ``dModifyDate``, which U8 maintains on every change of the archive.
    """
    rv = rowversion_column(table)
    if rv is None:
        return []
    others = [c for c in columns(table) if c != rv]
    extra = f", {_q('dModifyDate')} = {NOW_SQL}" if table == "Customer" else ""
    bump = "UPDATE sandbox_rowversion SET v = v + 1;"
    stamp = (f"UPDATE {_q(table)} SET {_q(rv)} = (SELECT v FROM sandbox_rowversion){{extra}} "
             f"WHERE rowid = NEW.rowid;")
    return [
        f"CREATE TRIGGER IF NOT EXISTS {_q(table + '_rv_ins')} AFTER INSERT ON {_q(table)} "
        f"BEGIN {bump} {stamp.format(extra='')} END",
        f"CREATE TRIGGER IF NOT EXISTS {_q(table + '_rv_upd')} "
        f"AFTER UPDATE OF {', '.join(_q(c) for c in others)} ON {_q(table)} "
        f"WHEN NEW.{_q(rv)} IS OLD.{_q(rv)} "
        f"BEGIN {bump} {stamp.format(extra=extra)} END",
    ]


def create_all(conn: sqlite3.Connection) -> None:
    """Create the counter, every table, its rowversion triggers and the sandbox's own tables."""
    conn.execute("CREATE TABLE IF NOT EXISTS sandbox_rowversion (v INTEGER NOT NULL)")
    if conn.execute("SELECT COUNT(*) FROM sandbox_rowversion").fetchone()[0] == 0:
        conn.execute("INSERT INTO sandbox_rowversion (v) VALUES (?)", (ROWVERSION_START,))
    # biz_id <-> cCusCode, the OpenAPI platform's idempotency record.
    conn.execute("CREATE TABLE IF NOT EXISTS sandbox_bizid ("
                 "biz_id TEXT PRIMARY KEY NOT NULL, code TEXT NOT NULL, created TEXT NOT NULL)")
    for table in TABLES:
        conn.execute(create_table_sql(table))
        for sql in rowversion_trigger_sql(table):
            conn.execute(sql)
        rv = rowversion_column(table)
        if rv is not None:
            key = table_spec(table)["key"]
            conn.execute(f"CREATE INDEX IF NOT EXISTS {_q('ix_' + table + '_' + rv)} "
                         f"ON {_q(table)} ({_q(rv)}, {_q(key)})")
