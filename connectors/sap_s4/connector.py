"""SAP S/4HANA behind the hub's one connector protocol (``check`` / ``read`` / ``write`` /
``census``), over the OData V2 APIs of ``streams.STREAMS``.

Connection (Airflow, purpose ``api``): host (``https://my-s4.example.com[:port]``), login and
password (a communication user), ``extra.sap_client`` (the client, e.g. ``"100"``); optional
``extra.overlap_seconds`` (default 600: how far an incremental read reaches back behind its
watermark) and ``extra.overlap_days`` (default 1, for the date-only delivery changes).

Reads
- ``read(stream, cursor)`` pages by the server's ``__next``, ordered by key where the set is
  sortable (a change during the walk then never moves a row past the walk; the overlap and the
  dedupe by key catch rows that moved). Only the last page carries the cursor
  (``{"since": <newest change time read>}``), so a walk broken off never moves the watermark; a
  walk that ended short of the ``__count`` SAP announced raises :class:`TransientError`.
- ``read(stream, {"keys": [...], "key_field": f})`` re-reads records by key (``__key`` unless
  ``key_field`` names a property); :meth:`lookup` is the same for the adapter's named lookups.
- Records are flat: one value per path of ``columns`` (``paths``), the key properties, the
  change-time properties and ``__key``; dates as ISO text (``values``).

Writes (``_op`` in the record; one call after another, each with its own result)
- ``add``: a deep insert (``paths.body``), safe to repeat: the record's natural key
  (``BusinessPartnerIDByExtSystem``, ``PurchaseOrderByCustomer``) is looked up first, and a
  create whose answer was lost (:class:`AmbiguousWriteError`) is looked up again before it is
  sent again.
- ``edit`` / ``change``: the entity is read with the navigations the record names, and only what
  differs is PATCHed (``If-Match`` with its ETag where it has one), missing entries POSTed to
  their navigation; ``412`` (changed meanwhile) or a lost answer reads again and plans again
  (twice), which is also what makes a repeated change harmless. ``_reject_with``: items SAP
  holds that the record no longer lists get that reason for rejection.
- ``cancel``: every item not yet rejected gets ``_reject_with`` as its reason for rejection.
- SAP's refusal of a record (a 4xx with its message) is a failed result; 401 / 403 raise
  :class:`ConfigurationError`; 5xx, 429 and timeouts :class:`TransientError`.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Iterator, Mapping, Sequence

from connectors.http import write_each
from connectors.sap_s4 import paths
from connectors.sap_s4.odata import PreconditionFailed, PreconditionRequired, SapODataClient, header
from connectors.sap_s4.streams import DATETIME_PROPS, STREAMS, Stream, stream as stream_of
from connectors.sap_s4.values import (combine, datetime_literal, datetimeoffset_literal, parse_moment, quote,
                                      time_literal, to_wire)
from hub.errors import AmbiguousWriteError, ConfigurationError, DataError, TransientError
from hub.types import ConnectionInfo, Page, Record, WriteResult

log = logging.getLogger("connectors.sap_s4")

OVERLAP_SECONDS = 600
OVERLAP_DAYS = 1
#: values per ``$filter`` of a lookup (``k eq 'a' or k eq 'b' …``; SAP's URL length stays small)
KEYS_PER_QUERY = 40
CREATE_ATTEMPTS = 3
CHANGE_ATTEMPTS = 3
#: list navigations a change matches entries of, by this property (an order's items by number)
ITEM_MATCH = {"to_Item": "SalesOrderItem"}
REJECTION = "SalesDocumentRjcnReason"


def _wire(prop: str, value: Any) -> Any:
    return to_wire(prop, value, DATETIME_PROPS)


def predicate(s: Stream, keys: Mapping[str, Any]) -> str:
    """The key predicate of an entity: ``('4711')`` or ``(SalesOrder='4711',SalesOrderItem='10')``."""
    if len(s.keys) == 1:
        return f"({quote(keys[s.keys[0]])})"
    return "(" + ",".join(f"{k}={quote(keys[k])}" for k in s.keys) + ")"


class SapS4Connector:
    """One S/4HANA system (all four services on one host), reading ``columns`` per entity set."""

    system = "sap_s4"

    def __init__(self, conn: ConnectionInfo, columns: Mapping[str, Sequence[str]] | None = None) -> None:
        self.conn = conn
        self.columns = {k: list(v) for k, v in (columns or {}).items()}
        self.overlap = timedelta(seconds=self._number("overlap_seconds", OVERLAP_SECONDS))
        self.overlap_days = int(self._number("overlap_days", OVERLAP_DAYS))
        self._clients: dict[str, SapODataClient] = {}
        self._lock = threading.Lock()

    def _number(self, key: str, default: float) -> float:
        raw = self.conn.extra.get(key, default)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = -1.0
        if value < 0:
            raise ConfigurationError(f"connection {self.conn.conn_id!r}: extra.{key} must be a number ≥ 0, not {raw!r}")
        return value

    def client(self, service: str) -> SapODataClient:
        """The client of one service (its own HTTP sessions, so its own CSRF token and cookies)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = SapODataClient(self.conn, service)
            return self._clients[service]

    def _stream(self, name: str) -> Stream:
        try:
            return stream_of(name)
        except KeyError as exc:
            raise ConfigurationError(str(exc.args[0])) from None

    def check(self) -> None:
        """Each service the configured streams use answers this login with a CSRF token."""
        services = {self._stream(n).service for n in self.columns} or {s.service for s in STREAMS.values()}
        for service in sorted(services):
            self.client(service).check()

    # --- reads --------------------------------------------------------------------------------
    def _change_names(self, s: Stream) -> list[str]:
        if s.change == "date_time":
            return [p for pair in s.change_props for p in pair]
        return list(s.change_props)

    def _query(self, s: Stream, columns: Sequence[str]) -> dict[str, str]:
        try:
            select, expand = paths.query(columns, [*s.keys, *self._change_names(s), *([s.natural_key] if s.natural_key else [])])
        except ValueError as exc:
            raise ConfigurationError(f"S/4HANA columns: {exc}") from None
        params = {"$select": select}
        if expand:
            params["$expand"] = expand
        return params

    def _since_filter(self, s: Stream, since: str) -> str:
        moment = parse_moment(since)
        if moment is None:
            raise ConfigurationError(f"S/4HANA watermark {since!r} is not a date or time")
        if s.change == "stamp":
            return f"{s.change_props[0]} gt {datetimeoffset_literal(moment - self.overlap)}"
        if s.change == "date_time":
            back = (moment - self.overlap).replace(tzinfo=None)
            day, clock = datetime_literal(back.date()), time_literal(back.time())
            return " or ".join(f"({d} gt {day} or ({d} eq {day} and {t} ge {clock}))" for d, t in s.change_props)
        day = datetime_literal((moment - timedelta(days=self.overlap_days)).date())
        return " or ".join(f"{d} ge {day}" for d in s.change_props)

    def changed_at(self, name: str, rec: Record) -> datetime | None:
        """When a record read from ``name`` last changed, as its cursor compares it."""
        return self._moment(self._stream(name), rec)

    def _moment(self, s: Stream, rec: Record) -> datetime | None:
        if s.change == "date_time":
            found = [combine(rec.get(d), rec.get(t)) for d, t in s.change_props]
        else:
            found = [parse_moment(rec.get(p)) for p in s.change_props]
        found = [m for m in found if m is not None]
        return max(found) if found else None

    def _cursor_text(self, s: Stream, moment: datetime) -> str:
        if s.change == "date":
            return moment.date().isoformat()
        if s.change == "date_time":   # the system's own date and time, compared as they are
            return moment.replace(tzinfo=None).isoformat(timespec="seconds")
        return moment.isoformat(timespec="milliseconds")

    def read(self, name: str, cursor: Any = None) -> Iterator[Page]:
        """Pages of ``name`` changed since ``cursor`` (None: all); see the module docstring."""
        s = self._stream(name)
        cols = self.columns.get(name, [])
        if isinstance(cursor, Mapping) and "keys" in cursor:
            records = self.lookup(name, str(cursor.get("key_field") or paths.KEY), list(cursor["keys"]), cols)
            yield Page(records, None)
            return
        since = (cursor or {}).get("since") if isinstance(cursor, Mapping) else None
        if since and not s.change:
            raise ConfigurationError(f"S/4HANA {name} has no change time: read it by key")
        conditions = [c for c in (s.base_filter, self._since_filter(s, str(since)) if since else "") if c]
        params = self._query(s, cols)
        if conditions:
            params["$filter"] = " and ".join(f"({c})" for c in conditions)
        if s.ordered:
            params["$orderby"] = ",".join(f"{k} asc" for k in s.keys)
        yield from self._walk(s, name, cols, params, since)

    def _walk(self, s: Stream, name: str, cols: Sequence[str], params: dict[str, str],
              since: str | None) -> Iterator[Page]:
        """Follow ``__next`` to the end, holding each page back until the next one is in, so that
        only the last page carries the cursor."""
        seen: set[str] = set()
        newest = parse_moment(since) if since else None
        rows, announced, held = 0, None, None
        extra = self._change_names(s) + ([s.natural_key] if s.natural_key else [])
        for results, count in self.client(s.service).pages(name, params):
            announced = count if announced is None else announced
            rows += len(results)
            fresh = []
            for entity in results:
                rec = paths.flatten(entity, cols, s.keys, extra)
                if rec[paths.KEY] in seen:
                    continue
                seen.add(str(rec[paths.KEY]))
                moment = self._moment(s, rec)
                if moment is not None and (newest is None or moment > newest):
                    newest = moment
                fresh.append(rec)
            if held is not None:
                yield Page(held, None)
            held = fresh
        if announced is not None and rows < announced:
            raise TransientError(f"S/4HANA {name}: the server announced {announced} records and its pages ended "
                                 f"after {rows}; the read is incomplete, the watermark stays")
        cursor = {"since": self._cursor_text(s, newest)} if newest is not None and s.change else None
        yield Page(held or [], cursor)

    def _eq(self, s: Stream, field: str, value: Any) -> str:
        if field == paths.KEY:
            try:
                parts = paths.split_key(str(value), s.keys)
            except ValueError as exc:
                raise DataError(f"S/4HANA {exc}") from None
            return " and ".join(f"{k} eq {quote(v)}" for k, v in parts.items())
        return f"{field} eq {quote(value)}"

    def lookup(self, name: str, field: str, values: Sequence[Any], columns: Sequence[str] | None = None,
               where: str = "") -> list[Record]:
        """Records of ``name`` whose ``field`` (a property, or ``__key``) is one of ``values``:
        one query per ``KEYS_PER_QUERY`` values, never one per record."""
        s = self._stream(name)
        cols = list(self.columns.get(name, []) if columns is None else columns)
        wanted = list(dict.fromkeys(str(v) for v in values if v not in (None, "")))
        params = self._query(s, cols)
        extra = self._change_names(s) + ([s.natural_key] if s.natural_key else [])
        out: list[Record] = []
        seen: set[str] = set()
        for start in range(0, len(wanted), KEYS_PER_QUERY):
            part = wanted[start:start + KEYS_PER_QUERY]
            cond = " or ".join(f"({self._eq(s, field, v)})" for v in part)
            flt = " and ".join(f"({c})" for c in (where, cond) if c)
            for results, _ in self.client(s.service).pages(name, {**params, "$filter": flt}):
                for entity in results:
                    rec = paths.flatten(entity, cols, s.keys, extra)
                    if rec[paths.KEY] not in seen:
                        seen.add(str(rec[paths.KEY]))
                        out.append(rec)
        return out

    def holders(self, name: str, field: str, values: Sequence[Any]) -> dict[str, list[str]]:
        """The keys of the ``name`` records holding each value of ``field``, lowest first."""
        found: dict[str, list[str]] = {}
        for rec in self.lookup(name, field, values, [field]):
            found.setdefault(str(rec.get(field)), []).append(str(rec[paths.KEY]))
        for keys in found.values():
            keys.sort(key=lambda k: (len(k), k))
        return found

    def census(self, name: str, records: Sequence[Record]) -> dict[str, int]:
        """How many records SAP holds per natural-key value of ``records`` (``hub.types.Census``):
        the creates only, since an edit of a record the hub linked (a seeded partner found by its
        USCC) carries no hub reference in SAP."""
        s = self._stream(name)
        values = [str(r[s.natural_key]) for r in records if (r.get("_op") or "add") == "add"
                  and s.natural_key and r.get(s.natural_key) not in (None, "")]
        if not values:
            return {}
        held = self.holders(name, s.natural_key, values)
        return {v: len(held.get(v, [])) for v in dict.fromkeys(values)}

    # --- writes -------------------------------------------------------------------------------
    def write(self, name: str, records: Sequence[Record]) -> list[WriteResult]:
        """One result per record, in order (see the module docstring)."""
        s = self._stream(name)
        adds = [str(r[s.natural_key]) for r in records
                if (r.get("_op") or "add") == "add" and s.natural_key and r.get(s.natural_key) not in (None, "")]
        found = self.holders(name, s.natural_key, adds) if adds else {}
        return [self._write_one(s, name, rec, found) for rec in records]

    def _write_one(self, s: Stream, name: str, rec: Record, found: Mapping[str, list[str]]) -> WriteResult:
        key = str(rec.get("_key") or "")
        op = rec.get("_op") or "add"

        def send() -> WriteResult:
            try:
                if op == "add":
                    return self._create(s, name, rec, found)
                if op in ("edit", "change"):
                    return self._change(s, name, rec)
                if op == "cancel":
                    return self._change(s, name, {k: rec[k] for k in rec if k in s.keys or k.startswith("_")},
                                        reject_all=True)
            except ValueError as exc:   # a value SAP's format cannot carry (a path, a date)
                raise DataError(f"S/4HANA {name} {key}: {exc}") from None
            raise ConfigurationError(f"S/4HANA {name}: unknown _op {op!r} (add, edit, change, cancel)")

        return write_each(key, send)

    def _create(self, s: Stream, name: str, rec: Record, found: Mapping[str, list[str]]) -> WriteResult:
        key = str(rec.get("_key") or "")
        if not s.natural_key:
            raise ConfigurationError(f"S/4HANA {name}: the hub creates only where a natural key makes a repeat safe")
        natural = str(rec.get(s.natural_key) or "")
        if not natural:
            raise DataError(f"S/4HANA {name}: a create needs {s.natural_key} (what a repeat is recognised by)")
        if len(natural) > s.natural_max:
            raise DataError(f"S/4HANA {name}: {s.natural_key} {natural!r} is longer than its {s.natural_max} characters")
        if natural in found:
            log.info("S/4HANA %s %s=%s is held already (%s): not created again", name, s.natural_key, natural,
                     found[natural][0])
            return WriteResult(key, "created", found[natural][0])
        payload = paths.body(paths.tree(rec), _wire)
        cli = self.client(s.service)
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                resp = cli.send("POST", f"{cli.root}/{name}", payload, idempotent=False)
            except AmbiguousWriteError as exc:
                held = self.holders(name, s.natural_key, [natural]).get(natural)
                if held:
                    log.info("S/4HANA %s %s=%s: answer lost, the record was created (%s)", name, s.natural_key,
                             natural, held[0])
                    return WriteResult(key, "created", held[0])
                if attempt == CREATE_ATTEMPTS:
                    raise
                log.warning("%s; %s=%s is not in SAP, sending the create again", exc, s.natural_key, natural)
                time.sleep(min(5.0, 0.2 * 2 ** attempt))
                continue
            d = resp.body.get("d") if isinstance(resp.body, dict) else None
            native = paths.key_of(d, s.keys) if isinstance(d, dict) else None
            if not native:   # created, but the answer does not say as what: ask by the natural key
                held = self.holders(name, s.natural_key, [natural]).get(natural)
                if not held:
                    raise TransientError(f"S/4HANA {name}: HTTP {resp.status} without a key, and "
                                         f"{s.natural_key}={natural} is not found")
                native = held[0]
            return WriteResult(key, "created", native)
        raise AssertionError("unreachable")

    def _entity(self, s: Stream, name: str, keys: Mapping[str, Any], expand: Sequence[str]) -> dict:
        cli = self.client(s.service)
        resp = cli.get(f"{cli.root}/{name}{predicate(s, keys)}", {"$expand": ",".join(expand)} if expand else None)
        d = resp.body.get("d") if isinstance(resp.body, dict) else None
        if not isinstance(d, dict):
            raise TransientError(f"S/4HANA {name}{predicate(s, keys)}: the answer has no d")
        etag = header(resp.headers, "etag")
        if etag:   # the entity's own ETag header wins over what its __metadata says
            d.setdefault("__metadata", {})["etag"] = etag
        return d

    def _change(self, s: Stream, name: str, rec: Record, reject_all: bool = False) -> WriteResult:
        """Make the entity say what ``rec`` says (read, plan, PATCH / POST; see module docstring)."""
        key = str(rec.get("_key") or "")
        keys = {k: rec.get(k) for k in s.keys}
        if any(v in (None, "") for v in keys.values()):
            raise DataError(f"S/4HANA {name}: a change needs {', '.join(s.keys)}")
        want = paths.tree(rec)
        reason = rec.get("_reject_with")
        if reject_all and not reason:
            raise ConfigurationError(f"S/4HANA {name}: a cancellation needs a reason for rejection "
                                     f"(binding option rejection_reason)")
        expand = paths.expand_of(want) + (["to_Item"] if reason and "to_Item" not in want.lists else [])
        cli = self.client(s.service)
        for attempt in range(1, CHANGE_ATTEMPTS + 1):
            current = self._entity(s, name, keys, list(dict.fromkeys(expand)))
            keep = set(s.keys) | ({s.natural_key} if s.natural_key and current.get(s.natural_key) else set())
            try:
                ops = paths.plan(current, want, _wire, ITEM_MATCH, keep)
                if reason:
                    ops += self._rejections(current, want, str(reason), reject_all)
            except ValueError as exc:
                raise DataError(f"S/4HANA {name} {key}: {exc}") from None
            try:
                self._apply_all(cli, s, name, keys, ops)
            except (PreconditionFailed, AmbiguousWriteError) as exc:
                if attempt == CHANGE_ATTEMPTS:
                    raise
                log.info("S/4HANA %s %s: %s; reading it again", name, key, exc)
                continue
            return WriteResult(key, "updated", paths.key_of(current, s.keys))
        raise AssertionError("unreachable")

    @staticmethod
    def _rejections(current: Mapping[str, Any], want: paths.Node, reason: str, reject_all: bool) -> list[paths.Op]:
        """PATCHes giving ``reason`` to the items SAP holds that the record no longer lists (all of
        them for a cancellation), skipping those rejected already."""
        listed = {str(i.props.get("SalesOrderItem")) for i in want.lists.get("to_Item", [])}
        ops = []
        for item in paths.entries(current.get("to_Item")):
            if (reject_all or str(item.get("SalesOrderItem")) not in listed) and not item.get(REJECTION):
                ops.append(paths.Op("PATCH", paths.uri_of(item), {REJECTION: reason}, paths.etag_of(item)))
        return ops

    def _apply_all(self, cli: SapODataClient, s: Stream, name: str, keys: Mapping[str, Any],
                   ops: Sequence[paths.Op]) -> None:
        """The calls of a change in order. A call changes the document's ETag (an item's ETag may
        be its order's: entries answer the one they are checked against), so after each the
        ETag it sent is replaced in the calls still to come by the new one, taken from the
        answer or, when the answer has none, read from the document."""
        ops = list(ops)
        for i, op in enumerate(ops):
            resp = self._apply(cli, op)
            old = op.etag
            if not old or i == len(ops) - 1 or not any(o.etag == old for o in ops[i + 1:]):
                continue
            new = header(resp.headers, "etag") or self._etag(cli, s, name, keys)
            for later in ops[i + 1:]:
                if later.etag == old:
                    later.etag = new

    def _etag(self, cli: SapODataClient, s: Stream, name: str, keys: Mapping[str, Any]) -> str | None:
        resp = cli.get(f"{cli.root}/{name}{predicate(s, keys)}", {"$select": ",".join(s.keys)})
        d = resp.body.get("d") if isinstance(resp.body, dict) else None
        return header(resp.headers, "etag") or paths.etag_of(d or {})

    def _apply(self, cli: SapODataClient, op: paths.Op):
        """One call of a change. A PATCH refused for lacking If-Match (428) on an entity read
        without its ETag reads that entity alone for it and is sent once more."""
        if op.method == "POST":
            return cli.send("POST", op.uri, op.fields, idempotent=False)
        try:
            return cli.send("PATCH", op.uri, op.fields, etag=op.etag)
        except PreconditionRequired:
            if op.etag:
                raise
            resp = cli.get(op.uri)
            d = resp.body.get("d") if isinstance(resp.body, dict) else {}
            etag = header(resp.headers, "etag") or paths.etag_of(d or {})
            if not etag:
                raise
            op.etag = etag
            return cli.send("PATCH", op.uri, op.fields, etag=etag)
