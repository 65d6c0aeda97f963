"""销售易 (NeoCRM) connector: OAuth2 password grant, XOQL reads, xobjects writes.

Reads are incremental on ``updatedAt`` (epoch ms) without depending on any sort by it: the
only ORDER BY the service documents is ``id``, so a read walks the window
``updatedAt >= watermark - overlap`` by id (``... and id > last order by id asc limit 0,3000``),
deduped by id, and a window larger than ``scroll_threshold`` goes through the ``xoqlScroll``
cursor. The watermark moves only when the whole window was read. See docs/protocols.md.
"""
from __future__ import annotations

import email.utils
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from connectors.http import HttpClient, MalformedResponse, Response, write_each
from hub.errors import AmbiguousWriteError, ConfigurationError, DataError, TransientError
from hub.types import ConnectionInfo, Page, Record, WriteResult

log = logging.getLogger("connectors.xiaoshouyi")

XOQL = "/rest/data/v2.0/query/xoql"
XOQL_SCROLL = "/rest/data/v2.0/query/xoqlScroll"
XOBJECTS = "/rest/data/v2.0/xobjects"
#: Rows a XOQL page asks for (``extra.page_size``): public XOQL v2.0 clients page by 3000
#: (docs/protocols.md); the legacy ``/v2/query``'s 100-row rule is not XOQL's.
PAGE_SIZE = 3000
#: Values in one ``in (...)`` list (a statement stays short whatever the page size).
KEYS_PER_QUERY = 100
#: Logins per call before a token refusal counts as persistent: with several workers sharing one
#: token, a token revoked under one worker is refused to the others' calls in flight too.
TOKEN_ATTEMPTS = 5
#: How often a create whose answer was lost (and that the tenant does not hold) is sent again.
CREATE_ATTEMPTS = 4


def xoql_literal(value: Any) -> str:
    """A value as an XOQL literal (numbers bare, strings quoted with '' escaping)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


@dataclass
class Token:
    access_token: str
    expires_at: float
    api_base: str
    refresh_token: str | None = None


@dataclass
class XiaoshouyiConnector:
    """Connector for one 销售易 tenant.

    Connection: host = the auth server (``https://login.xiaoshouyi.com``), login = user,
    password = user password (the security token is appended from ``extra.security_token``
    when given); extra: ``client_id``, ``client_secret``, optional ``api_base`` (else
    derived from the token's ``instance_uri``), ``overlap_ms``, ``scroll_threshold``, ``page_size``.
    """

    conn: ConnectionInfo
    streams: dict[str, Sequence[str]] = field(default_factory=dict)
    system: str = "crm"
    #: stream → the field holding a record's natural key (e.g. the ERP code on a product):
    #: a create is preceded by a lookup on it, so a create whose answer was lost is not repeated
    natural_keys: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        extra = self.conn.extra
        for key in ("client_id", "client_secret"):
            if not extra.get(key):
                raise ConfigurationError(f"connection {self.conn.conn_id!r} lacks extra.{key}")
        self.auth = HttpClient(self.conn.base_url(), secrets=self.conn.secrets(), **self.conn.http_retry())
        self.api: HttpClient | None = None
        self.token: Token | None = None
        self._lock = threading.Lock()
        self.overlap_ms = int(extra.get("overlap_ms", 60_000))
        self.scroll_threshold = int(extra.get("scroll_threshold", 5_000))
        self.scroll_batch = min(2000, int(extra.get("scroll_batch", 2000)))
        self.page_size = max(1, int(extra.get("page_size", PAGE_SIZE)))

    # --- auth ---------------------------------------------------------------------------------
    def _login(self) -> Token:
        e = self.conn.extra
        params = {"grant_type": "password", "client_id": e["client_id"], "client_secret": e["client_secret"],
                  "username": self.conn.login, "password": self.conn.password + str(e.get("security_token", ""))}
        resp = self.auth.request("POST", "/auc/oauth2/token", data=params, idempotent=True)
        body = resp.body if isinstance(resp.body, dict) else {}
        if resp.status >= 400 or "access_token" not in body:
            raise ConfigurationError(f"销售易 login refused for {self.conn.conn_id!r}: HTTP {resp.status} "
                                     f"{body.get('error', '')} {body.get('error_description', '')}".strip(),
                                     secrets=self.conn.secrets())
        api_base = e.get("api_base") or f"{e.get('scheme', 'https')}://{body['instance_uri']}"
        token = Token(body["access_token"], time.time() + float(body.get("expires_in", 7199)) - 60, api_base,
                      body.get("refresh_token"))
        secrets = self.conn.secrets() + (token.access_token,)
        if self.api is None or self.api.base_url != api_base.rstrip("/"):
            self.api = HttpClient(api_base, secrets=secrets, **self.conn.http_retry())
        self.api.secrets = secrets
        return token

    def _headers(self, stale: str | None = None) -> dict[str, str]:
        """The current token, logging in when there is none, it expired, or it is ``stale``."""
        with self._lock:
            if self.token is None or time.time() >= self.token.expires_at or self.token.access_token == stale:
                self.token = self._login()
            return {"Authorization": f"Bearer {self.token.access_token}"}

    def _call(self, method: str, path: str, *, idempotent: bool = True, **kw) -> Response:
        """A data call. A 401 or 403 to a token means it expired or was revoked (public clients
        treat both as auth errors): log in again and retry. A 403 is retried once, since to a
        fresh token it is a permission the API user lacks, which the caller reports. Queries
        (POSTs too) are safe to repeat; a create says ``idempotent=False``."""
        stale = None
        for _ in range(TOKEN_ATTEMPTS):
            headers = self._headers(stale)
            assert self.api is not None
            resp = self.api.request(method, path, headers=headers, idempotent=idempotent, **kw)
            if resp.status != 401 and not (resp.status == 403 and stale is None):
                return resp
            stale = headers["Authorization"].split(" ", 1)[1]
        # the login itself works (else _login raised): repeated 401s on fresh tokens are passing
        raise TransientError(f"销售易 answered 401 to {TOKEN_ATTEMPTS} fresh tokens in a row on {path}")

    def check(self) -> None:
        self._query(f"select id from {next(iter(self.streams), 'account')} limit 0,1")

    # --- reads --------------------------------------------------------------------------------
    def _query(self, xoql: str) -> dict:
        return self._page(xoql)[0]

    def _page(self, xoql: str) -> tuple[dict, int | None]:
        """A query's data and the server's clock (epoch ms, from the answer's Date header)."""
        resp = self._call("POST", XOQL, data={"xoql": xoql})
        return self._data(resp, xoql), _server_ms(resp.headers)

    @staticmethod
    def _data(resp: Response, what: str) -> dict:
        body = resp.body if isinstance(resp.body, dict) else {}
        code = str(body.get("code", resp.status))
        if resp.status >= 400 or code != "200":
            msg = f"销售易 query failed: HTTP {resp.status} code {code} {body.get('msg') or ''}".strip()
            raise (DataError if resp.status == 400 else ConfigurationError)(msg)
        data = body.get("data") or body.get("result") or {}
        data["queryLocator"] = body.get("queryLocator", data.get("queryLocator", ""))
        return data

    def _select(self, stream: str, *extra: str) -> str:
        fields = list(dict.fromkeys(["id", "updatedAt", *extra, *self.streams.get(stream, ())]))
        return f"select {', '.join(fields)} from {stream}"

    def read(self, stream: str, cursor: Any = None) -> Iterator[Page]:
        """Pages of ``stream`` with ``updatedAt`` at or after the watermark minus the overlap;
        a cursor ``{"keys": [...]}`` fetches those records by id instead, and
        ``{"keys": [...], "key_field": f}`` the records whose ``f`` is one of them (an order's lines).

        An id walk sees ``updatedAt`` in any order and rows change while it runs, so only the
        window's last page carries a cursor: the newest ``updatedAt`` of the window, but no later
        than the server's clock when the walk began (a row changed behind the walk is newer than
        that, so the next window holds it however long the walk took; the overlap covers skew)."""
        if cursor and "keys" in cursor and cursor.get("key_field"):
            yield from self._by_field(stream, str(cursor["key_field"]), list(cursor["keys"]))
            return
        if cursor and "keys" in cursor:
            yield from self._by_keys(stream, list(cursor["keys"]))
            return
        floor = _ms((cursor or {}).get("updatedAt")) or 0
        since = max(0, floor - self.overlap_ms) if cursor else 0
        base, window = self._select(stream), f"updatedAt >= {since}"
        try:
            first, began = self._page(f"{base} where {window} order by id asc limit 0,{self.page_size}")
        except MalformedResponse as exc:
            yield Page([], None, [(f"{stream}@{since}", exc.body)])
            return
        walk = _Window(floor, began)
        if int(first.get("totalSize") or 0) > self.scroll_threshold:
            yield from self._scroll(stream, base, window, walk)
            return
        pages = self._id_walk(base, window, first)
        while True:
            try:
                records, last = next(pages)
            except MalformedResponse as exc:
                yield Page([], None, [(f"{stream}@{since}:{len(walk.seen)}", exc.body)])
                return
            yield Page(walk.take(records), walk.cursor() if last else None)
            if last:
                return

    def _id_walk(self, base: str, where: str, first: dict | None = None) -> Iterator[tuple[list[Record], bool]]:
        """(records, last page?) of ``where`` ordered by id, keyset ``id > last id`` (a row that
        changes meanwhile shifts no offset). The walk ends on a page that holds every row the
        service says remain (``totalSize``), so a service capping pages below ours does not end it
        early; a page not in id order is refused, since walking it would skip rows."""
        query = f"{base} where {where} order by id asc limit 0,{self.page_size}"
        data = first if first is not None else self._query(query)
        while True:
            records = data.get("records") or []
            order = [_id_order(r.get("id")) for r in records]
            if any(a >= b for a, b in zip(order, order[1:])):
                raise ConfigurationError(f"销售易 answered `{query}` with rows not in id order: an id walk over it "
                                         "would skip rows (check the tenant's XOQL `order by id`)")
            total = data.get("totalSize")
            last = not records or (len(records) >= int(total) if total is not None else len(records) < self.page_size)
            yield records, last
            if last:
                return
            query = (f"{base} where {where} and id > {_id_literal(records[-1].get('id'))} "
                     f"order by id asc limit 0,{self.page_size}")
            data = self._query(query)

    def _by_keys(self, stream: str, keys: list[Any]) -> Iterator[Page]:
        base = self._select(stream)
        for start in range(0, len(keys), KEYS_PER_QUERY):
            ids = ", ".join(_id_literal(k) for k in keys[start:start + KEYS_PER_QUERY])
            for records, _ in self._id_walk(base, f"id in ({ids})"):
                yield Page(records, None)

    def _by_field(self, stream: str, key_field: str, values: list[Any]) -> Iterator[Page]:
        """Records whose ``key_field`` is in ``values``: 100 values a query, walked by id."""
        base = self._select(stream, key_field)
        for start in range(0, len(values), KEYS_PER_QUERY):
            listed = ", ".join(xoql_literal(v) for v in values[start:start + KEYS_PER_QUERY])
            for records, _ in self._id_walk(base, f"{key_field} in ({listed})"):
                yield Page(records, None)

    def _scroll(self, stream: str, base: str, window: str, walk: "_Window") -> Iterator[Page]:
        """A large window through the ``xoqlScroll`` cursor (its own order, ids deduped); only
        its last batch carries the cursor."""
        locator = ""
        while True:
            try:
                resp = self._call("POST", XOQL_SCROLL, data={"xoql": f"{base} where {window}",
                                                             "batchCount": self.scroll_batch, "queryLocator": locator})
                data = self._data(resp, "scroll")
            except MalformedResponse as exc:
                yield Page([], None, [(f"{stream}@{window}:scroll:{locator}", exc.body)])
                return
            locator = data.get("queryLocator") or ""
            yield Page(walk.take(data.get("records") or []), None if locator else walk.cursor())
            if not locator:
                return

    # --- writes -------------------------------------------------------------------------------
    def write(self, stream: str, records: Sequence[Record]) -> list[WriteResult]:
        """PATCH records that carry an ``id``, POST the others; one result each, in order.

        The API takes one record per call and has no idempotency key of its own, so a create is
        made safe to repeat by the stream's natural key (``natural_keys``): records whose key the
        tenant already holds are patched instead (one query per 100 keys), and a create whose
        answer was lost is looked up by that key before it is sent again. Calls run on
        ``extra.workers`` threads (default 4); the HTTP helper keeps one session per thread.
        """
        workers = max(1, int(self.conn.extra.get("workers", 4)))
        self._headers()  # log in once before the threads start
        records = self._with_natural_ids(stream, records)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda rec: self._write_one(stream, rec), records))

    def _natural_key(self, stream: str, rec: Record) -> tuple[str, str]:
        """(field, value) a create of ``rec`` is recognised by; refusing a create without one,
        because a lost answer would otherwise become a second record."""
        key_field = self.natural_keys.get(stream)
        if not key_field:
            raise ConfigurationError(f"销售易 {stream}: creates need a natural key (natural_keys) so that a create "
                                     f"whose answer was lost is found, not made twice")
        value = rec.get(key_field)
        if value in (None, ""):
            raise DataError(f"销售易 {stream}: a new record needs {key_field} (its natural key) to be created safely")
        return key_field, str(value)

    def _with_natural_ids(self, stream: str, records: Sequence[Record]) -> Sequence[Record]:
        """Records without an ``id`` get the id of the record already holding their natural key
        (one XOQL query per 100 keys), so they are patched instead of created twice."""
        key_field = self.natural_keys.get(stream)
        wanted = [str(r[key_field]) for r in records if not r.get("id") and r.get(key_field) not in (None, "")]
        if not key_field or not wanted:
            return records
        found = self.holders(stream, key_field, wanted)
        return [r if r.get("id") or str(r.get(key_field)) not in found else {**r, "id": found[str(r[key_field])][0]}
                for r in records]

    def holders(self, stream: str, key_field: str, values: Sequence[Any]) -> dict[str, list[str]]:
        """The ids of the ``stream`` records holding each natural-key value, lowest id first (a
        tenant's older double entry wins); more than one id per value is a duplicate."""
        found: dict[str, list[str]] = {}
        for page in self._by_field(stream, key_field, list(dict.fromkeys(str(v) for v in values))):
            for r in page.records:
                found.setdefault(str(r.get(key_field)), []).append(str(r["id"]))
        for ids in found.values():
            ids.sort(key=lambda i: (len(i), i))
        return found

    def census(self, stream: str, records: Sequence[Record]) -> dict[str, int]:
        """How many records the tenant holds per natural-key value of ``records``: what the
        run report checks its "written" against (``hub.types.Census``)."""
        key_field = self.natural_keys.get(stream)
        values = [str(r[key_field]) for r in records if key_field and r.get(key_field) not in (None, "")]
        if not values:
            return {}
        held = self.holders(stream, key_field, values)
        return {str(v): len(held.get(str(v), [])) for v in dict.fromkeys(values)}

    def _create(self, stream: str, body: Record, natural: tuple[str, str]) -> tuple[Response | None, str | None]:
        """POST a new record; after a lost answer, look it up by its natural key and send again
        only when the tenant does not hold it. Returns the answer, or the found record's id."""
        key_field, value = natural
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return self._call("POST", f"{XOBJECTS}/{stream}", json_body={"data": body}, idempotent=False), None
            except AmbiguousWriteError as exc:
                held = self.holders(stream, key_field, [value]).get(value)
                if held:
                    log.info("销售易 %s %s=%s: answer lost, the record was created (id %s)", stream, key_field, value, held[0])
                    return None, held[0]
                if attempt == CREATE_ATTEMPTS:
                    raise
                log.warning("%s; %s=%s is not in the tenant, sending the create again", exc, key_field, value)
                time.sleep(min(5.0, 0.2 * 2 ** attempt))
        raise AssertionError("unreachable")

    def delete(self, stream: str, record_id: str) -> None:
        """Remove one record (``DELETE xobjects/{apiKey}/{id}``): the contract kit's clean-up of
        what its write checks created; no flow deletes."""
        resp = self._call("DELETE", f"{XOBJECTS}/{stream}/{record_id}")
        out = resp.body if isinstance(resp.body, dict) else {}
        if resp.status >= 400 or str(out.get("code")) != "200":
            raise DataError(f"销售易 refused to delete {stream} {record_id}: HTTP {resp.status} code {out.get('code')} "
                            f"{out.get('msg') or ''}".strip())

    def _write_one(self, stream: str, rec: Record) -> WriteResult:
        key = str(rec.get("_key") or rec.get("id"))
        return write_each(key, lambda: self._send_one(stream, key, rec))

    def _send_one(self, stream: str, key: str, rec: Record) -> WriteResult:
        body = {k: v for k, v in rec.items() if not k.startswith("_") and k != "id"}
        if rec.get("id"):
            resp = self._call("PATCH", f"{XOBJECTS}/{stream}/{rec['id']}", json_body={"data": body})
            status = "updated"
        else:
            resp, found = self._create(stream, body, self._natural_key(stream, rec))
            status = "created"
            if resp is None:
                return WriteResult(key, status, found)
        out = resp.body if isinstance(resp.body, dict) else {}
        if resp.status >= 400 or str(out.get("code")) != "200":
            raise DataError(f"销售易 refused {stream} {key}: HTTP {resp.status} code {out.get('code')} {out.get('msg') or ''}")
        native = (out.get("data") or {}).get("id") or rec.get("id")
        if native in (None, ""):
            raise DataError(f"销售易 answered {stream} {key} without a record id")
        return WriteResult(key, status, str(native))


@dataclass
class _Window:
    """One window walk: the ids it yielded (to dedupe) and the newest ``updatedAt`` it saw."""

    floor: int              # the watermark the window started from
    began: int | None       # the server's clock (ms) when the walk began; None: it sent no Date
    newest: int | None = None
    seen: set[str] = field(default_factory=set)

    def take(self, records: list[Record]) -> list[Record]:
        """The records not yielded before in this window."""
        fresh = []
        for r in records:
            rid = str(r.get("id"))
            if rid in self.seen:
                continue
            self.seen.add(rid)
            fresh.append(r)
            ms = _ms(r.get("updatedAt"))
            if ms is not None and (self.newest is None or ms > self.newest):
                self.newest = ms
        return fresh

    def cursor(self) -> dict[str, int] | None:
        """The watermark candidate of the completed window (never behind where it started)."""
        if self.newest is None:
            return {"updatedAt": self.floor} if self.floor else None
        newest = self.newest if self.began is None else min(self.newest, self.began)
        return {"updatedAt": max(self.floor, newest)}


def _server_ms(headers: dict[str, str]) -> int | None:
    """The Date header as epoch ms (whole seconds, so never later than the server's clock)."""
    value = next((v for k, v in headers.items() if k.lower() == "date"), None)
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp()) * 1000 if value else None
    except (TypeError, ValueError):
        return None


def _id_literal(value: Any) -> str:
    """A record id as XOQL compares it: digits bare (ids are numbers sent as strings)."""
    return xoql_literal(int(value)) if str(value).isdigit() else xoql_literal(value)


def _id_order(value: Any) -> tuple[int, int | str]:
    return (0, int(value)) if str(value).isdigit() else (1, str(value))


def _ms(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


__all__ = ["XiaoshouyiConnector", "xoql_literal", "TransientError"]
