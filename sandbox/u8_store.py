"""U8 customer archive writes, as the OpenAPI (api.yonyouup.com, customer_add/edit/get) does them.

Field names of the API body map to real ``Customer`` columns (docs/protocols.md); lengths come
from the real schema, so a name one character over ``cCusName``'s 98 is refused here exactly
where SQL Server would truncate or refuse it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from . import u8_schema

# errcodes: 20003/40001/40002 as documented; 20001, 20002, 40003 are the sandbox's own.
BAD_APP = "20001"
BAD_PARAMS = "20002"
BAD_TOKEN = "20003"
BAD_FIELD = "40001"
DUPLICATE_CODE = "40002"
NOT_FOUND = "40003"

FIELD_COLUMNS: dict[str, str] = {
    "code": "cCusCode", "name": "cCusName", "abbrname": "cCusAbbName", "sort_code": "cCCCode",
    "domain_code": "cDCCode", "industry": "cTrade", "address": "cCusAddress", "bank_open": "cCusBank",
    "bank_acc_number": "cCusAccount", "contact": "cCusPerson", "phone": "cCusPhone", "fax": "cCusFax",
    "mobile": "cCusHand", "memo": "cMemo", "tax_reg_code": "cCusRegCode",
    **{f"self_define{i}": f"cCusDefine{i}" for i in range(1, 17)},
}
AUTO_PREFIX = "H"
API_USER = "openapi"
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d")


class U8Error(Exception):
    """An answer with a non-"0" errcode (HTTP 200 as the platform answers, unless ``status``
    says otherwise: the stand-in can refuse tokens with another HTTP status)."""

    def __init__(self, errcode: str, errmsg: str, status: int = 200) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg, self.status = errcode, errmsg, status


def entity_body(raw: bytes, entity: str) -> dict[str, Any]:
    """``{entity: {...}}`` from a request body (every OpenAPI body wraps its object), else 40001."""
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise U8Error(BAD_FIELD, "body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get(entity), dict):
        raise U8Error(BAD_FIELD, f'body must be {{"{entity}": {{...}}}}')
    return body[entity]


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class U8Store:
    """The ``Customer`` table of ``u8.db`` plus the biz_id register; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        u8_schema.create_all(self.conn)
        self.lock = threading.Lock()
        cols = u8_schema.columns("Customer")
        self.lengths = u8_schema.max_lengths("Customer")
        self.types = {c: u8_schema.sqlite_type(c, s, "cCusCode") for c, s in cols.items()}

    # -- validation ----------------------------------------------------------------------------
    def _value(self, field: str, value: Any) -> Any:
        """Check one body value against its column (type and nvarchar length)."""
        column = FIELD_COLUMNS[field]
        kind = self.types[column]
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise U8Error(BAD_FIELD, f"{field}: expected a string, got {type(value).__name__}")
        if kind == "DATETIME":
            text = str(value).strip()
            if not text:
                return None
            for fmt in _DATE_FORMATS:
                try:
                    return datetime.strptime(text, fmt).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
                except ValueError:
                    continue
            raise U8Error(BAD_FIELD, f"{field}: {text!r} is not a date")
        if kind == "NUMERIC":
            if isinstance(value, str) and not value.strip():
                return None
            try:
                return float(value) if "." in str(value) else int(value)
            except ValueError:
                raise U8Error(BAD_FIELD, f"{field}: {value!r} is not a number") from None
        text = value if isinstance(value, str) else str(value)
        limit = self.lengths.get(column)
        if limit is not None and len(text) > limit:
            raise U8Error(BAD_FIELD, f"{field} ({column}) is {len(text)} characters, at most {limit} allowed")
        return text

    def _columns(self, customer: Any, creating: bool) -> dict[str, Any]:
        if not isinstance(customer, dict):
            raise U8Error(BAD_FIELD, 'body must be {"customer": {...}}')
        unknown = sorted(set(customer) - set(FIELD_COLUMNS))
        if unknown:
            raise U8Error(BAD_FIELD, f"unknown field(s): {', '.join(unknown)}")
        values = {FIELD_COLUMNS[f]: self._value(f, v) for f, v in customer.items()}
        name = values.get("cCusName")
        if (creating or "cCusName" in values) and (name is None or not str(name).strip()):
            raise U8Error(BAD_FIELD, "name (cCusName) is required")
        if "cCusAbbName" in values and not (values["cCusAbbName"] or "").strip():
            raise U8Error(BAD_FIELD, "abbrname (cCusAbbName) may not be empty")
        return values

    # -- operations ----------------------------------------------------------------------------
    def add(self, customer: Any, biz_id: str | None) -> str:
        """Create a customer; a repeated ``biz_id`` answers the code it created before."""
        with self.lock:
            if biz_id:
                row = self.conn.execute("SELECT code FROM sandbox_bizid WHERE biz_id = ?", (biz_id,)).fetchone()
                if row:
                    return row[0]
            values = self._columns(customer, creating=True)
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                code = values.get("cCusCode") or self._next_code()
                if not str(code).strip():
                    raise U8Error(BAD_FIELD, "code may not be empty")
                if self.conn.execute("SELECT 1 FROM Customer WHERE cCusCode = ?", (code,)).fetchone():
                    raise U8Error(DUPLICATE_CODE, f"customer code {code} already exists")
                now = _now()
                values.update(cCusCode=code, cInvoiceCompany=code, cCreatePerson=API_USER,
                              dCusDevDate=now[:10] + " 00:00:00.000", dCusCreateDatetime=now, dDepBeginDate=now)
                # U8 requires a short name; the platform fills it from the name when omitted.
                if not values.get("cCusAbbName"):
                    values["cCusAbbName"] = values["cCusName"][: self.lengths["cCusAbbName"]]
                cols = list(values)
                self.conn.execute(
                    f"INSERT INTO Customer ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [values[c] for c in cols])
                if biz_id:
                    self.conn.execute("INSERT INTO sandbox_bizid (biz_id, code, created) VALUES (?, ?, ?)",
                                      (biz_id, code, now))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return code

    def _next_code(self) -> str:
        """自动编码: 'H' + 6 digits, one above the highest such code."""
        row = self.conn.execute(
            "SELECT MAX(cCusCode) FROM Customer WHERE cCusCode GLOB ?", (AUTO_PREFIX + "[0-9]" * 6,)).fetchone()
        last = int(row[0][1:]) if row and row[0] else 0
        return f"{AUTO_PREFIX}{last + 1:06d}"

    def edit(self, customer: Any) -> None:
        """Change the given fields of the customer named by ``code``."""
        if not isinstance(customer, dict) or not customer.get("code"):
            raise U8Error(BAD_FIELD, "code is required")
        code = str(customer["code"])
        values = self._columns({k: v for k, v in customer.items() if k != "code"}, creating=False)
        values.update(cModifyPerson=API_USER)
        with self.lock:
            sets = ", ".join(f"{c} = ?" for c in values)
            cur = self.conn.execute(f"UPDATE Customer SET {sets} WHERE cCusCode = ?", [*values.values(), code])
            if cur.rowcount == 0:
                raise U8Error(NOT_FOUND, f"customer {code} does not exist")

    def get(self, code: str) -> dict[str, Any]:
        """The customer in API field names."""
        cols = list(FIELD_COLUMNS.values())
        with self.lock:
            row = self.conn.execute(f"SELECT {', '.join(cols)} FROM Customer WHERE cCusCode = ?",
                                    (code,)).fetchone()
        if row is None:
            raise U8Error(NOT_FOUND, f"customer {code} does not exist")
        return dict(zip(FIELD_COLUMNS, row))

