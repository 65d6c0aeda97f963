"""The CRM tenant's data behind the API: XOQL queries, scroll cursors, record writes.

Kept apart from the HTTP layer so the rules (field checks, updatedAt clock, paging limits) are
plain Python that answers with ``CrmError`` codes; ``crm_app`` only turns them into envelopes.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import crm_schema, xoql
from .crm_schema import OBJECTS, REQUIRED, SYSTEM_FIELDS

# Error codes.  "1020025" is the one the public docs show for a syntax error; the others are
# the sandbox's own (the real values are not public).
XOQL_SYNTAX = "1020025"
XOQL_FIELD = "1020026"
UNKNOWN_OBJECT = "1020027"
XOQL_LIMIT = "1020028"
BAD_LOCATOR = "1020029"
FIELD_UNKNOWN = "1020040"
FIELD_TYPE = "1020041"
FIELD_REQUIRED = "1020042"
FIELD_READONLY = "1020043"
NOT_FOUND = "1020044"
BAD_BODY = "1020045"
BAD_REFERENCE = "1020046"

#: XOQL v2.0 page size: public clients ask for 3000 rows a page (``limit 3000 OFFSET n``,
#: docs/protocols.md); the real maximum is not published, so a larger ask is refused here.
MAX_PAGE = 3000
MAX_BATCH = 2000
CURSOR_TTL_S = 600.0
MAX_CURSORS = 256
_DIGITS = re.compile(r"-?\d+")


class CrmError(Exception):
    """A request the tenant refuses: ``code`` for the envelope, ``status`` for HTTP."""

    def __init__(self, code: str, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


class MillisClock:
    """Server clock in epoch ms that never repeats or goes back (two writes in one ms differ)."""

    def __init__(self, floor: int = 0) -> None:
        self.last = floor
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self.last = max(int(time.time() * 1000), self.last + 1)
            return self.last


@dataclass
class _Cursor:
    api_key: str
    fields: list[str]
    ids: list[int]
    touched: float = field(default_factory=time.monotonic)


def _q(ident: str) -> str:
    return '"' + ident + '"'


class CrmStore:
    """One tenant's objects in ``crm.db``; thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path, api_user_id: int) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        crm_schema.create_tables(self.conn)
        crm_schema.create_indexes(self.conn)
        self.api_user_id = api_user_id
        self.lock = threading.RLock()
        floor = 0
        for api_key in OBJECTS:
            row = self.conn.execute(
                f"SELECT MAX(updatedAt) FROM {_q(api_key)} WHERE typeof(updatedAt) = 'integer'").fetchone()
            floor = max(floor, row[0] or 0)
        self.clock = MillisClock(floor)
        self._cursors: dict[str, _Cursor] = {}

    # -- queries -------------------------------------------------------------------------------
    def _compile(self, text: str) -> tuple[xoql.Query, str, list[Any], str]:
        """Parse and check a statement; returns (query, WHERE sql, params, ORDER BY sql)."""
        try:
            q = xoql.parse(text)
        except xoql.XoqlError as exc:
            raise CrmError(XOQL_SYNTAX, f"xoql syntax error: {exc}") from None
        if q.api_key not in OBJECTS:
            raise CrmError(UNKNOWN_OBJECT, f"object '{q.api_key}' does not exist")
        kinds = OBJECTS[q.api_key]
        for name in q.fields + [c.field for c in q.conditions] + [f for f, _ in q.order]:
            if name not in kinds:
                raise CrmError(XOQL_FIELD, f"field '{name}' does not exist on object '{q.api_key}'")
        where, params = [], []
        for cond in q.conditions:
            col = _q(cond.field)
            values = [self._coerce(kinds[cond.field], v) for v in cond.values]
            if cond.op == "isnull":
                where.append(f"{col} IS NULL")
            elif cond.op == "notnull":
                where.append(f"{col} IS NOT NULL")
            elif cond.op == "in":
                where.append(f"{col} IN ({', '.join('?' * len(values))})")
                params += values
            else:
                where.append(f"{col} {cond.op} ?")
                params += values
        order = [f"{_q(f)} {'DESC' if desc else 'ASC'}" for f, desc in q.order]
        if "id" not in [f for f, _ in q.order]:
            order.append('"id" ASC')  # a total order, so pages never overlap or skip
        where_sql = (" WHERE " + " AND ".join(where)) if where else ""
        return q, where_sql, params, " ORDER BY " + ", ".join(order)

    @staticmethod
    def _coerce(kind: str, value: xoql.Value) -> xoql.Value:
        """Let ``id = '3461...'`` match a numeric column, as the real service does."""
        if kind in ("id", "ref", "time") and isinstance(value, str) and _DIGITS.fullmatch(value):
            return int(value)
        return value

    @staticmethod
    def _record(fields: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
        rec = dict(zip(fields, row))
        if "id" in rec and rec["id"] is not None:
            rec["id"] = str(rec["id"])  # XOQL v2.0 answers ids as strings (public sample)
        return rec

    def query(self, text: str) -> dict[str, Any]:
        """``/query/xoql``: one page, ``limit offset,size`` with size <= 3000 (default 0,3000)."""
        q, where, params, order = self._compile(text)
        offset, size = q.limit or (0, MAX_PAGE)
        if size > MAX_PAGE:
            raise CrmError(XOQL_LIMIT, f"limit size {size} exceeds the maximum of {MAX_PAGE}")
        cols = ", ".join(_q(f) for f in q.fields)
        table = _q(q.api_key)
        with self.lock:
            total = self.conn.execute(f"SELECT COUNT(*) FROM {table}{where}", params).fetchone()[0]
            rows = self.conn.execute(f"SELECT {cols} FROM {table}{where}{order} LIMIT ? OFFSET ?",
                                     params + [size, offset]).fetchall()
        records = [self._record(q.fields, r) for r in rows]
        return {"totalSize": total, "count": len(records), "records": records}

    def scroll(self, text: str, batch_count: int, locator: str) -> tuple[dict[str, Any], str]:
        """``/query/xoqlScroll``: the id set is fixed on the first call; batches read current values.

        A locator names (cursor, position), so repeating a call with the same locator after a
        lost answer returns the same batch again.
        """
        if not 1 <= batch_count <= MAX_BATCH:
            raise CrmError(XOQL_LIMIT, f"batchCount must be between 1 and {MAX_BATCH}")
        with self.lock:
            self._expire_cursors()
            if locator:
                cursor_id, pos = self._decode_locator(locator)
                cursor = self._cursors[cursor_id]
            else:
                q, where, params, order = self._compile(text)
                limit = f" LIMIT {q.limit[1]} OFFSET {q.limit[0]}" if q.limit else ""
                ids = [r[0] for r in self.conn.execute(
                    f"SELECT id FROM {_q(q.api_key)}{where}{order}{limit}", params)]
                cursor_id, pos = secrets.token_hex(12), 0
                cursor = _Cursor(q.api_key, q.fields, ids)
                self._cursors[cursor_id] = cursor
            cursor.touched = time.monotonic()
            batch = cursor.ids[pos:pos + batch_count]
            cols = ", ".join(_q(f) for f in ["id"] + cursor.fields)
            rows = self.conn.execute(
                f"SELECT {cols} FROM {_q(cursor.api_key)} WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(batch),)).fetchall()
        by_id = {r[0]: r[1:] for r in rows}
        records = [self._record(cursor.fields, by_id[i]) for i in batch if i in by_id]
        end = pos + len(batch)
        next_locator = self._encode_locator(cursor_id, end) if end < len(cursor.ids) else ""
        return {"totalSize": len(cursor.ids), "count": len(records), "records": records}, next_locator

    @staticmethod
    def _encode_locator(cursor_id: str, pos: int) -> str:
        return base64.urlsafe_b64encode(f"{cursor_id}:{pos}".encode()).decode().rstrip("=")

    def _decode_locator(self, locator: str) -> tuple[str, int]:
        try:
            raw = base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode()
            cursor_id, pos = raw.split(":")
            if cursor_id in self._cursors and int(pos) >= 0:
                return cursor_id, int(pos)
        except (ValueError, UnicodeDecodeError):
            pass
        raise CrmError(BAD_LOCATOR, "queryLocator is invalid or has expired")

    def _expire_cursors(self) -> None:
        now = time.monotonic()
        for key in [k for k, c in self._cursors.items() if now - c.touched > CURSOR_TTL_S]:
            del self._cursors[key]
        while len(self._cursors) >= MAX_CURSORS:
            del self._cursors[min(self._cursors, key=lambda k: self._cursors[k].touched)]

    # -- records -------------------------------------------------------------------------------
    def _object(self, api_key: str) -> dict[str, str]:
        if api_key not in OBJECTS:
            raise CrmError(UNKNOWN_OBJECT, f"object '{api_key}' does not exist", 404)
        return OBJECTS[api_key]

    def get(self, api_key: str, record_id: int) -> dict[str, Any]:
        """The stored record, every field, values in their stored types."""
        self._object(api_key)
        fields = crm_schema.field_order(api_key)
        with self.lock:
            row = self.conn.execute(f"SELECT {', '.join(_q(f) for f in fields)} FROM {_q(api_key)} WHERE id = ?",
                                    (record_id,)).fetchone()
        if row is None:
            raise CrmError(NOT_FOUND, f"{api_key} {record_id} does not exist", 404)
        return dict(zip(fields, row))

    def _validate(self, api_key: str, data: Any, creating: bool) -> dict[str, Any]:
        kinds = self._object(api_key)
        if not isinstance(data, dict):
            raise CrmError(BAD_BODY, 'body must be {"data": {...}}', 400)
        clean: dict[str, Any] = {}
        for name, value in data.items():
            if name not in kinds:
                raise CrmError(FIELD_UNKNOWN, f"field '{name}' does not exist on object '{api_key}'", 400)
            if name in SYSTEM_FIELDS:
                raise CrmError(FIELD_READONLY, f"field '{name}' is maintained by the system", 400)
            kind = kinds[name]
            if value is None:
                clean[name] = None
            elif kind == "text" and isinstance(value, str):
                clean[name] = value
            elif kind == "ref" and isinstance(value, int) and not isinstance(value, bool):
                clean[name] = value
            elif kind == "ref" and isinstance(value, str) and _DIGITS.fullmatch(value):
                clean[name] = int(value)
            elif kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
                clean[name] = value
            else:
                expected = {"text": "a string", "number": "a number"}.get(kind, "an id (integer)")
                raise CrmError(FIELD_TYPE, f"field '{name}' must be {expected}, got {type(value).__name__}", 400)
        for name in REQUIRED[api_key]:
            present = name in clean
            if (creating or present) and (clean.get(name) is None or str(clean[name]).strip() == ""):
                raise CrmError(FIELD_REQUIRED, f"field '{name}' is required", 400)
        self._check_refs(clean)
        return clean

    def _check_refs(self, clean: dict[str, Any]) -> None:
        for name, table in crm_schema.REFS.items():
            if clean.get(name) is not None and self.conn.execute(
                    f"SELECT 1 FROM {_q(table)} WHERE id = ?", (clean[name],)).fetchone() is None:
                raise CrmError(BAD_REFERENCE, f"field '{name}': {clean[name]} does not exist", 400)

    def create(self, api_key: str, data: Any, user_id: int) -> int:
        """Insert a record; the server sets id, createdAt/By, updatedAt/By (ownerId defaults to the user)."""
        with self.lock:
            clean = self._validate(api_key, data, creating=True)
            top = max(self.conn.execute(f"SELECT MAX(id) FROM {_q(k)}").fetchone()[0] or 0 for k in OBJECTS)
            new_id = top + 1 + secrets.randbelow(4000)
            now = self.clock.next()
            clean.setdefault("ownerId", user_id)
            clean.update(id=new_id, createdAt=now, updatedAt=now, createdBy=user_id, updatedBy=user_id)
            cols = list(clean)
            self.conn.execute(f"INSERT INTO {_q(api_key)} ({', '.join(_q(c) for c in cols)}) "
                              f"VALUES ({', '.join('?' * len(cols))})", [clean[c] for c in cols])
            return new_id

    def update(self, api_key: str, record_id: int, data: Any, user_id: int) -> None:
        """Change the given fields; every update moves updatedAt forward and sets updatedBy."""
        with self.lock:
            clean = self._validate(api_key, data, creating=False)
            clean.update(updatedAt=self.clock.next(), updatedBy=user_id)
            sets = ", ".join(f"{_q(c)} = ?" for c in clean)
            cur = self.conn.execute(f"UPDATE {_q(api_key)} SET {sets} WHERE id = ?", [*clean.values(), record_id])
            if cur.rowcount == 0:
                raise CrmError(NOT_FOUND, f"{api_key} {record_id} does not exist", 404)

    def delete(self, api_key: str, record_id: int) -> None:
        """Remove a record (``DELETE xobjects/{apiKey}/{id}``, reference examples §5)."""
        self._object(api_key)
        with self.lock:
            cur = self.conn.execute(f"DELETE FROM {_q(api_key)} WHERE id = ?", (record_id,))
            if cur.rowcount == 0:
                raise CrmError(NOT_FOUND, f"{api_key} {record_id} does not exist", 404)
