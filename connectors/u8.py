"""用友 U8 connector: reads by ODBC, writes through the U8 OpenAPI.

Reads page by the table's rowversion (``pubufts`` on master data, ``ufts`` on vouchers),
read as a 64-bit integer: keyset paging, parameterised, one query per page. On SQL Server
a read stops below ``MIN_ACTIVE_ROWVERSION()``, so a row whose transaction has not
committed yet is picked up next time instead of being jumped over.

Writes use the OpenAPI with ``biz_id`` as the idempotency key: U8 keeps biz_id ↔ ERP key
one to one, so a write repeated after a crash returns the code it already created.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterator, Sequence

from connectors.http import HttpClient
from hub.errors import ConfigurationError, DataError, TransientError
from hub.types import ConnectionInfo, Page, Record, WriteResult

log = logging.getLogger("connectors.u8")

#: Tables the hub reads: key column and rowversion column (docs/protocols.md).
TABLES: dict[str, tuple[str, str]] = {
    "Customer": ("cCusCode", "pubufts"),
    "Inventory": ("cInvCode", "pubufts"),
    "SO_SOMain": ("ID", "ufts"),
    "SO_SODetails": ("AutoID", "dufts"),
    "DispatchList": ("DLID", "ufts"),
    "DispatchLists": ("AutoID", ""),  # no rowversion of its own: read by its header's DLID
    "Ap_CloseBill": ("iID", "ufts"),
    "Ap_CloseBills": ("ID", ""),  # read by its header's iID (lookup)
    "SaleBillVouch": ("SBVID", "ufts"),
    "SaleBillVouchs": ("AutoID", "ufts"),
}


@dataclass(frozen=True)
class DateWindow:
    """How a table is read when its rowversion column is missing: no public schema shows
    ``ufts`` on Ap_CloseBill or SaleBillVouchs (``../shared/reference/u8``), so an account
    without it is read by a documented date column instead, re-reading ``reread_days`` back
    from the newest date seen (changes to vouchers older than that are not seen: the check
    says so). ``via`` reads a line table through its header's date: (header, join column)."""

    date: str
    via: tuple[str, str] | None = None


#: Tables whose rowversion is unverified, and the date read each falls back to.
ROWVERSION_FALLBACK: dict[str, DateWindow] = {
    "Ap_CloseBill": DateWindow("dVouchDate"),
    "SaleBillVouchs": DateWindow("dDate", via=("SaleBillVouch", "SBVID")),
}
#: Streams that are a filtered table: stream → (table, WHERE condition on plain column names).
#: 收款单 are cFlag 'AR' + cVouchType '48' in the table AR and AP share (U8_dictionary_facts.md).
VIEWS: dict[str, tuple[str, str]] = {
    "ArReceipt": ("Ap_CloseBill", "cFlag = 'AR' AND cVouchType = '48'"),
}
TOKEN_ERRORS = {"20003", "20004", "30002"}
#: Logins per call before a token refusal counts as persistent: with several workers sharing one
#: token, a token revoked under one worker is refused to the others' calls in flight too.
TOKEN_ATTEMPTS = 5


@dataclass(frozen=True)
class Dialect:
    """The few SQL differences between real U8 (SQL Server) and the sandbox (SQLite)."""

    name: str

    def page_sql(self, table: str, cols: Sequence[str], rv: str, key: str, where: str = "") -> str:
        col_list = ", ".join(f'"{c}"' if self.name == "sqlite" else f"[{c}]" for c in cols)
        extra = f" AND ({where})" if where else ""
        if self.name == "mssql":
            return (f"SELECT TOP (?) {col_list}, CAST([{rv}] AS BIGINT) AS hub_rv FROM [{table}] "
                    f"WHERE CAST([{rv}] AS BIGINT) > ? AND [{rv}] < MIN_ACTIVE_ROWVERSION(){extra} ORDER BY [{rv}]")
        return f'SELECT {col_list}, "{rv}" AS hub_rv FROM "{table}" WHERE "{rv}" > ?{extra} ORDER BY "{rv}" LIMIT ?'

    def keys_sql(self, table: str, cols: Sequence[str], rv: str, key: str, n: int) -> str:
        q = self.quote
        rv_expr = q(rv) if self.name == "sqlite" else f"CAST({q(rv)} AS BIGINT)"
        return (f"SELECT {', '.join(q(c) for c in cols)}, {rv_expr} AS hub_rv FROM {q(table)} "
                f"WHERE {q(key)} IN ({', '.join('?' * n)})")

    def quote(self, name: str) -> str:
        return f'"{name}"' if self.name == "sqlite" else f"[{name}]"

    def in_sql(self, table: str, cols: Sequence[str], column: str, n: int) -> str:
        """Rows whose ``column`` is one of ``n`` parameters (a set-based read by any column)."""
        q = self.quote
        return f"SELECT {', '.join(q(c) for c in cols)} FROM {q(table)} WHERE {q(column)} IN ({', '.join('?' * n)})"

    def probe_sql(self, table: str) -> str:
        """A query with no rows whose description lists the table's columns."""
        return f"SELECT TOP 0 * FROM [{table}]" if self.name == "mssql" else f'SELECT * FROM "{table}" LIMIT 0'

    def window_sql(self, table: str, cols: Sequence[str], key: str, window: DateWindow, where: str, first: bool) -> str:
        """A page of rows dated on or after ``?`` (their header's date with ``via``), keyset on ``key``."""
        q = self.quote
        src = f"{q(table)} t JOIN {q(window.via[0])} h ON h.{q(window.via[1])} = t.{q(window.via[1])}" if window.via \
            else f"{q(table)} t"
        date = f"{'h' if window.via else 't'}.{q(window.date)}"
        cond = f"{date} >= ?" + ("" if first else f" AND t.{q(key)} > ?") + (f" AND ({where})" if where else "")
        col_list = ", ".join(f"t.{q(c)}" for c in cols)
        top = "TOP (?) " if self.name == "mssql" else ""
        limit = "" if self.name == "mssql" else " LIMIT ?"
        return f"SELECT {top}{col_list}, {date} AS hub_date FROM {src} WHERE {cond} ORDER BY t.{q(key)}{limit}"

    def window_params(self, since: str, after: Any, size: int, first: bool) -> tuple:
        rest = (since,) if first else (since, after)
        return (size, *rest) if self.name == "mssql" else (*rest, size)

    def params(self, after: int, size: int) -> tuple:
        return (size, after) if self.name == "mssql" else (after, size)


def dialect_of(conn_str: str) -> Dialect:
    return Dialect("sqlite" if "sqlite" in conn_str.lower() else "mssql")


@dataclass
class U8Reader:
    """ODBC side. Connection: extra ``odbc`` (a full ODBC connection string), or host,
    port, schema (UFDATA_<acct>_<year>), login and password with extra ``driver``."""

    conn: ConnectionInfo
    page_size: int = 5000
    _columns: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def connection_string(self) -> str:
        if self.conn.extra.get("odbc"):
            return str(self.conn.extra["odbc"])
        driver = self.conn.extra.get("driver", "ODBC Driver 18 for SQL Server")
        server = f"{self.conn.host},{self.conn.port}" if self.conn.port else self.conn.host
        return (f"DRIVER={{{driver}}};SERVER={server};DATABASE={self.conn.schema};UID={self.conn.login};"
                f"PWD={self.conn.password};TrustServerCertificate=yes")

    def _connect(self):
        import pyodbc  # lazy: needs unixODBC, not every process needs it

        try:
            cnx = pyodbc.connect(self.connection_string(), timeout=15)
        except pyodbc.InterfaceError as exc:  # driver or DSN missing: a person must fix it
            raise ConfigurationError(f"U8 ODBC connection {self.conn.conn_id!r} failed: {exc.args[0] if exc.args else exc}",
                                     secrets=self.conn.secrets()) from None
        except pyodbc.Error as exc:
            raise TransientError(f"U8 ODBC connection {self.conn.conn_id!r} failed: {exc.args[0] if exc.args else exc}",
                                 secrets=self.conn.secrets()) from None
        return cnx

    def check(self) -> None:
        """The database answers, and each table the hub pages by rowversion has that column or
        a documented date read to fall back to (a warning says which are in use)."""
        cnx = self._connect()
        try:
            cnx.cursor().execute("SELECT 1").fetchall()
        finally:
            cnx.close()
        for table, (_, rv) in TABLES.items():
            if rv:
                self.rowversion_of(table)

    def columns_of(self, table: str) -> set[str]:
        """The table's columns as the database reports them (asked once per reader)."""
        if table not in self._columns:
            import pyodbc

            cnx = self._connect()
            try:
                cur = cnx.cursor()
                try:
                    cur.execute(dialect_of(self.connection_string()).probe_sql(table))
                except pyodbc.Error as exc:
                    raise ConfigurationError(f"U8 table {table} cannot be read through {self.conn.conn_id!r}: "
                                             f"{exc.args[-1] if exc.args else exc}", secrets=self.conn.secrets()) from None
                self._columns[table] = {d[0].lower() for d in cur.description}
            finally:
                cnx.close()
        return self._columns[table]

    def rowversion_of(self, table: str) -> str | DateWindow:
        """The rowversion column to page ``table`` by, or the date window it falls back to."""
        rv = TABLES[table][1]
        if rv.lower() in self.columns_of(table):
            return rv
        window = ROWVERSION_FALLBACK.get(table)
        if window is None:
            raise ConfigurationError(f"U8 table {table} has no {rv} column in {self.conn.conn_id!r} and no documented "
                                     f"fallback: its changes cannot be read incrementally")
        log.warning("U8 table %s has no %s column: reading by %s%s, re-reading %d days back (changes to older vouchers "
                    "are not seen)", table, rv, window.date, f" of {window.via[0]}" if window.via else "", self.reread_days)
        return window

    @property
    def reread_days(self) -> int:
        return int(self.conn.extra.get("reread_days", 62))

    def lookup(self, table: str, column: str, values: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """Rows of ``table`` whose ``column`` is in ``values``: one parameterised query per 500
        values (detail rows of a page of headers, the state of a few orders), never per row."""
        if table not in TABLES:
            raise ConfigurationError(f"U8 table {table!r} is not one the hub reads")
        import pyodbc

        values = list(dict.fromkeys(values))
        if not values:
            return []
        cols = list(dict.fromkeys([TABLES[table][0], column, *columns]))
        dialect = dialect_of(self.connection_string())
        cnx = self._connect()
        out: list[Record] = []
        try:
            cur = cnx.cursor()
            for start in range(0, len(values), 500):
                part = values[start:start + 500]
                try:
                    rows = cur.execute(dialect.in_sql(table, cols, column, len(part)), part).fetchall()
                except pyodbc.Error as exc:
                    raise TransientError(f"U8 read of {table} failed: {exc.args[-1] if exc.args else exc}",
                                         secrets=self.conn.secrets()) from None
                names = [d[0] for d in cur.description]
                out.extend(dict(zip(names, row)) for row in rows)
        finally:
            cnx.close()
        return out

    def read(self, table: str, columns: Sequence[str], cursor: Any = None) -> Iterator[Page]:
        table, where = VIEWS.get(table, (table, ""))
        if table not in TABLES:
            raise ConfigurationError(f"U8 table {table!r} is not one the hub reads")
        key, rv = TABLES[table]
        if not rv:
            raise ConfigurationError(f"U8 table {table!r} has no rowversion: read it by its header's key (lookup)")
        cols = list(dict.fromkeys([key, *columns]))
        import pyodbc

        paging = self.rowversion_of(table)
        if isinstance(paging, DateWindow) and not (cursor and "keys" in cursor):
            yield from self._read_window(table, cols, key, paging, where, cursor)
            return

        after = int((cursor or {}).get("rowversion", 0))
        cnx = self._connect()
        dialect = dialect_of(self.connection_string())
        sql = dialect.page_sql(table, cols, rv, key, where)
        try:
            cur = cnx.cursor()
            if cursor and "keys" in cursor:  # replay: fetch these records again by key
                keys = [str(k) for k in cursor["keys"]]
                for start in range(0, len(keys), 500):
                    part = keys[start:start + 500]
                    rows = cur.execute(dialect.keys_sql(table, cols, rv, key, len(part)), part).fetchall()
                    names = [d[0] for d in cur.description]
                    records = [dict(zip(names, row)) for row in rows]
                    for r in records:
                        r["rowversion"] = int(r.pop("hub_rv"))
                    yield Page(records, None)
                return
            while True:
                try:
                    rows = cur.execute(sql, dialect.params(after, self.page_size)).fetchall()
                except pyodbc.Error as exc:
                    raise TransientError(f"U8 read of {table} failed: {exc.args[-1] if exc.args else exc}",
                                         secrets=self.conn.secrets()) from None
                names = [d[0] for d in cur.description]
                records = [dict(zip(names, row)) for row in rows]
                if records:
                    after = int(records[-1]["hub_rv"])
                for r in records:
                    r["rowversion"] = int(r.pop("hub_rv"))
                yield Page(records, {"rowversion": after})
                if len(records) < self.page_size:
                    return
        finally:
            cnx.close()


    def _read_window(self, table: str, cols: list[str], key: str, window: DateWindow, where: str,
                     cursor: Any) -> Iterator[Page]:
        """Rows dated within ``reread_days`` of the newest date read before, keyset on the key;
        only the last page carries the new cursor (the newest date seen), so a kill re-reads."""
        import pyodbc

        newest = str((cursor or {}).get("date") or "")
        since = "1900-01-01"
        if newest:
            since = (date.fromisoformat(newest[:10]) - timedelta(days=self.reread_days)).isoformat()
        dialect = dialect_of(self.connection_string())
        cnx = self._connect()
        after, first = None, True
        try:
            cur = cnx.cursor()
            while True:
                sql = dialect.window_sql(table, cols, key, window, where, first)
                try:
                    rows = cur.execute(sql, dialect.window_params(since, after, self.page_size, first)).fetchall()
                except pyodbc.Error as exc:
                    raise TransientError(f"U8 read of {table} failed: {exc.args[-1] if exc.args else exc}",
                                         secrets=self.conn.secrets()) from None
                names = [d[0] for d in cur.description]
                records = [dict(zip(names, row)) for row in rows]
                for r in records:
                    seen = str(r.pop("hub_date") or "")[:10]
                    newest = max(newest[:10], seen)
                    r["rowversion"] = 0
                if records:
                    after, first = records[-1][key], False
                done = len(records) < self.page_size
                yield Page(records, {"date": newest} if done and newest else None)
                if done:
                    return
        finally:
            cnx.close()


@dataclass
class U8OpenApi:
    """OpenAPI side. Connection: host = API base (``https://api.yonyouup.com``), login =
    from_account, password = app_secret; extra ``app_key``, ``to_account``, ``ds_sequence``,
    ``workers`` (parallel requests, default 4)."""

    conn: ConnectionInfo

    def __post_init__(self) -> None:
        for key in ("app_key", "to_account"):
            if not self.conn.extra.get(key):
                raise ConfigurationError(f"connection {self.conn.conn_id!r} lacks extra.{key}")
        self.http = HttpClient(self.conn.base_url(), secrets=self.conn.secrets())
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _get_token(self, stale: str | None = None) -> str:
        with self._lock:
            if self._token and self._token[0] != stale and time.time() < self._token[1]:
                return self._token[0]
            resp = self.http.request("GET", "/system/token", params={
                "from_account": self.conn.login, "app_key": self.conn.extra["app_key"], "app_secret": self.conn.password})
            body = resp.body if isinstance(resp.body, dict) else {}
            if str(body.get("errcode")) != "0" or not (body.get("token") or {}).get("id"):
                raise ConfigurationError(f"U8 OpenAPI refused a token for {self.conn.conn_id!r}: "
                                         f"errcode {body.get('errcode')} {body.get('errmsg', '')}", secrets=self.conn.secrets())
            token = body["token"]["id"]
            self.http.secrets = self.conn.secrets() + (token,)
            self._token = (token, time.time() + float(body["token"].get("expiresIn", 7200)) - 60)
            return token

    def _params(self, token: str, **more: Any) -> dict[str, Any]:
        e = self.conn.extra
        params = {"from_account": self.conn.login, "to_account": e["to_account"], "app_key": e["app_key"], "token": token}
        if e.get("ds_sequence"):
            params["ds_sequence"] = e["ds_sequence"]
        params.update({k: v for k, v in more.items() if v is not None})
        return params

    def call(self, method: str, api: str, body: Any = None, **params: Any) -> dict:
        """One OpenAPI call; a token error fetches a new token and retries once.

        Every call the hub makes is safe to repeat after a lost answer: an add carries
        ``biz_id``, which U8 keeps one to one with the voucher it made; edit, verify and close
        set a state, and closing a closed order answers success."""
        if api.endswith("/add") and not params.get("biz_id"):
            raise ConfigurationError(f"U8 {api} without biz_id: a lost answer would make a second voucher")
        token = self._get_token()
        for _ in range(TOKEN_ATTEMPTS):
            resp = self.http.request(method, f"/api/{api}", params=self._params(token, **params), json_body=body,
                                     idempotent=True)
            out = resp.body if isinstance(resp.body, dict) else {}
            code = str(out.get("errcode", resp.status))
            if code in TOKEN_ERRORS:
                token = self._get_token(stale=token)
                continue
            if code != "0":
                raise DataError(f"U8 {api} refused: errcode {code} {out.get('errmsg', '')}".strip())
            return out
        # the login itself works (else _get_token raised): a gateway refusing fresh tokens is passing
        raise TransientError(f"U8 OpenAPI refused {TOKEN_ATTEMPTS} fresh tokens in a row on {api}")

    def check(self) -> None:
        self._get_token()

    def write_one(self, entity: str, rec: Record) -> WriteResult:
        """``_op`` add (default; ``_biz_id`` is the idempotency key), edit, or another voucher
        action the API names ``{entity}/{op}`` (e.g. saleorder/close, whose body names the
        voucher by ``voucher_code``)."""
        key = str(rec["_key"])
        body = {entity: {k: v for k, v in rec.items() if not k.startswith("_") and v is not None}}
        op = rec.get("_op") or "add"
        try:
            if op == "add":
                out = self.call("POST", f"{entity}/add", body, biz_id=rec.get("_biz_id"), sync=1)
                if out.get("id") in (None, "", "None"):
                    raise DataError(f"U8 {entity}/add answered without a voucher code for biz_id {rec.get('_biz_id')}")
                return WriteResult(key, "created", str(out["id"]))
            self.call("POST", f"{entity}/{op}", body)
            return WriteResult(key, "updated", str(rec.get("code") or rec.get("voucher_code") or ""))
        except DataError as exc:
            return WriteResult(key, "failed", error=str(exc), error_class="data")

    def write(self, entity: str, records: Sequence[Record]) -> list[WriteResult]:
        workers = int(self.conn.extra.get("workers", 4))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(pool.map(lambda r: self.write_one(entity, r), records))


@dataclass
class U8Connector:
    """Both sides of one U8 account behind the one connector protocol."""

    odbc: ConnectionInfo
    openapi: ConnectionInfo | None = None
    columns: dict[str, Sequence[str]] = field(default_factory=dict)
    system: str = "u8"

    def __post_init__(self) -> None:
        self.reader = U8Reader(self.odbc)
        self.api = U8OpenApi(self.openapi) if self.openapi else None

    def check(self) -> None:
        self.reader.check()
        if self.api:
            self.api.check()

    def read(self, stream: str, cursor: Any = None) -> Iterator[Page]:
        return self.reader.read(stream, self.columns.get(stream, ()), cursor)

    def lookup(self, stream: str, column: str, values: Sequence[Any]) -> list[Record]:
        """Rows of ``stream`` whose ``column`` is in ``values`` (see :meth:`U8Reader.lookup`)."""
        return self.reader.lookup(stream, column, values, self.columns.get(stream, ()))

    def write(self, stream: str, records: Sequence[Record]) -> list[WriteResult]:
        if self.api is None:
            raise ConfigurationError("U8 writes need an OpenAPI connection")
        return self.api.write(stream, records)
