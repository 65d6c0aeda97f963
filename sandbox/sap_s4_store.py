"""``sap_s4.db`` read and written the way the OData services see it: collections with
``$filter``/``$orderby``/``$select``/``$expand`` and server-driven paging, single entities by
key, navigation, and the change clock.

Paging is keyset paging: ``$skiptoken`` carries the sort values of the page's last row (the
``$orderby`` columns, then the key), so rows that change or are added while a client walks the
pages are neither lost nor served twice (the real token is opaque too; what SAP puts in it is
not public). Thread-safe: one connection, one lock.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from . import sap_s4_schema
from .sap_edm import EntitySet
from .sap_odata import NOT_FOUND, ODataError, bad, compile_filter

DEFAULT_PAGE_SIZE = 1000

#: (entity set, navigation) → (target set, [(source column, target column)]). The edmx has no
#: referential constraints for these, so the joins are written down here, by key name.
LINKS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("A_BusinessPartner", "to_Customer"): [("Customer", "Customer")],
    ("A_BusinessPartner", "to_BusinessPartnerAddress"): [("BusinessPartner", "BusinessPartner")],
    ("A_BusinessPartner", "to_BusinessPartnerTax"): [("BusinessPartner", "BusinessPartner")],
    ("A_BusinessPartner", "to_BusinessPartnerRole"): [("BusinessPartner", "BusinessPartner")],
    ("A_Product", "to_Description"): [("Product", "Product")],
    ("A_SalesOrder", "to_Item"): [("SalesOrder", "SalesOrder")],
    ("A_SalesOrder", "to_Partner"): [("SalesOrder", "SalesOrder")],
    ("A_SalesOrder", "to_PricingElement"): [("SalesOrder", "SalesOrder")],
    ("A_SalesOrderItem", "to_SalesOrder"): [("SalesOrder", "SalesOrder")],
    ("A_SalesOrderItem", "to_PricingElement"): [("SalesOrder", "SalesOrder"), ("SalesOrderItem", "SalesOrderItem")],
    ("A_OutbDeliveryHeader", "to_DeliveryDocumentItem"): [("DeliveryDocument", "DeliveryDocument")],
    ("A_OutbDeliveryItem", "to_SerialDeliveryItem"): [("DeliveryDocument", "DeliveryDocument"),
                                                       ("DeliveryDocumentItem", "DeliveryDocumentItem")],
    ("A_SerialNmbrDelivery", "to_MaintenanceItemObject"): [("MaintenanceItemObjectList", "MaintenanceItemObjectList")],
    # an address's communication data is keyed by the address (and the person, '' for an organisation)
    **{("A_BusinessPartnerAddress", nav): [("AddressID", "AddressID"), ("Person", "Person")]
       for nav in ("to_PhoneNumber", "to_MobilePhoneNumber", "to_EmailAddress", "to_FaxNumber")},
    ("A_Customer", "to_CustomerSalesArea"): [("Customer", "Customer")],
    **{("A_CustomerSalesArea", nav): [(k, k) for k in ("Customer", "SalesOrganization", "DistributionChannel",
                                                         "Division")]
       for nav in ("to_SalesAreaTax", "to_PartnerFunction")},
    ("A_Product", "to_ProductSales"): [("Product", "Product")],
    ("A_Product", "to_ProductSalesTax"): [("Product", "Product")],
}
#: Navigations that reach only some rows of their target (both phone navigations lead to
#: A_AddressPhoneNumber): the extra condition, on PhoneNumberType ("Indicator: Telephone is a Mobile
#: Telephone"; that 2 and 3 are the mobile values is the stand-in's reading, unverified).
MOBILE_TYPES = ("2", "3")
_MOBILE = ", ".join(f"'{t}'" for t in MOBILE_TYPES)
SCOPES: dict[tuple[str, str], str] = {
    ("A_BusinessPartnerAddress", "to_PhoneNumber"): f'"PhoneNumberType" NOT IN ({_MOBILE})',
    ("A_BusinessPartnerAddress", "to_MobilePhoneNumber"): f'"PhoneNumberType" IN ({_MOBILE})',
}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Query:
    """The system query options of one collection request, parsed."""

    filter: str | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)  # (property, descending)
    top: int | None = None
    skip: int = 0
    skiptoken: str | None = None
    select: list[str] | None = None
    expand: list[list[str]] = field(default_factory=list)            # paths of navigations
    inlinecount: bool = False


@dataclass
class Page:
    rows: list[dict[str, Any]]
    count: int | None
    next_token: str | None


class Clock:
    """Strictly increasing milliseconds: two changes never share a change time."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            self._last = max(int(time.time() * 1000), self._last + 1)
            return self._last


class Store:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        sap_s4_schema.create_all(self.conn)
        self.sets = sap_s4_schema.stored_sets()
        self.lock = threading.RLock()
        self.clock = Clock()

    # -- plumbing ---------------------------------------------------------------------------------
    def entity_set(self, name: str) -> EntitySet:
        es = self.sets.get(name)
        if es is None:
            raise ODataError(404, NOT_FOUND, f"Resource not found for segment '{name}'")
        return es

    def transaction(self) -> "_Tx":
        return _Tx(self)

    def meta(self, name: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM sandbox_meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def set_meta(self, name: str, value: str) -> None:
        self.conn.execute("INSERT INTO sandbox_meta (name, value) VALUES (?, ?) "
                          "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))

    def next_number(self, name: str, start: int) -> int:
        """The next document number of a number range (kept in sandbox_meta)."""
        value = int(self.meta(f"range:{name}", str(start - 1)) or start - 1) + 1
        self.set_meta(f"range:{name}", str(value))
        return value

    # -- reads ------------------------------------------------------------------------------------
    def get(self, es: EntitySet, key: dict[str, Any]) -> dict[str, Any]:
        where = " AND ".join(f"{_q(k)} = ?" for k in es.keys)
        row = self.conn.execute(f"SELECT * FROM {_q(es.name)} WHERE {where}", [key[k] for k in es.keys]).fetchone()
        if row is None:
            shown = ",".join(f"{k}='{key[k]}'" for k in es.keys)
            raise ODataError(404, NOT_FOUND, f"Resource not found for segment '{es.type_name.split('.')[-1]}' ({shown})")
        return dict(row)

    def rows(self, table: str, where: str = "1 = 1", params: Iterator[Any] | list[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(f"SELECT * FROM {_q(table)} WHERE {where}", list(params))]

    def collection(self, es: EntitySet, q: Query, page_size: int, scope: tuple[str, list[Any]] | None = None) -> Page:
        """One page of ``es`` (optionally inside ``scope``: the rows a navigation reaches)."""
        conds, params = [], []
        if scope:
            conds.append(scope[0])
            params += scope[1]
        if q.filter is not None:
            sql, fparams = compile_filter(es, q.filter)
            conds.append(sql)
            params += fparams
        order = self._order(es, q.orderby)
        count = None
        where = " AND ".join(conds) or "1 = 1"
        if q.inlinecount:
            count = self.conn.execute(f"SELECT COUNT(*) FROM {_q(es.name)} WHERE {where}", params).fetchone()[0]
        top, skip = q.top, q.skip
        if q.skiptoken:
            values, top = _decode(q.skiptoken, len(order))
            kcond, kparams = _after(order, values)
            where += f" AND {kcond}"
            params = params + kparams
            skip = 0
        limit = page_size if top is None else min(top, page_size)
        order_sql = ", ".join(f"{expr} {'DESC' if desc else 'ASC'}" for expr, desc in order)
        rows = [dict(r) for r in self.conn.execute(
            f"SELECT * FROM {_q(es.name)} WHERE {where} ORDER BY {order_sql} LIMIT ? OFFSET ?",
            [*params, limit + 1, skip])]
        more = len(rows) > limit
        rows = rows[:limit]
        left = None if top is None else top - len(rows)
        token = None
        if more and rows and (left is None or left > 0):
            last = self.conn.execute(
                f"SELECT {', '.join(expr for expr, _ in order)} FROM {_q(es.name)} WHERE "
                + " AND ".join(f"{_q(k)} = ?" for k in es.keys), [rows[-1][k] for k in es.keys]).fetchone()
            token = _encode(list(last), left)
        return Page(rows, count, token)

    def count(self, es: EntitySet, q: Query, scope: tuple[str, list[Any]] | None = None) -> int:
        conds, params = ([scope[0]], list(scope[1])) if scope else ([], [])
        if q.filter is not None:
            sql, fparams = compile_filter(es, q.filter)
            conds.append(sql)
            params += fparams
        return self.conn.execute(f"SELECT COUNT(*) FROM {_q(es.name)} WHERE {' AND '.join(conds) or '1 = 1'}",
                                 params).fetchone()[0]

    def _order(self, es: EntitySet, orderby: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
        out, seen = [], set()
        for name, desc in orderby:
            prop = es.props.get(name)
            if prop is None:
                raise bad(f"Property '{name}' in $orderby is invalid: {es.type_name.split('.')[-1]} has no such property")
            if name in seen:
                continue
            seen.add(name)
            out.append((_sort_expr(prop.name, prop.type), desc))
        for k in es.keys:  # the key breaks ties, so every row has one place in the order
            if k not in seen:
                out.append((_sort_expr(k, es.props[k].type), False))
        return out

    def navigate(self, es: EntitySet, nav: str, row: dict[str, Any]) -> tuple[EntitySet, tuple[str, list[Any]], bool]:
        """The target set of ``nav`` from ``row``, the SQL scope of the rows it reaches, to-many?"""
        if nav not in es.navs:
            raise bad(f"Property '{nav}' is invalid: {es.type_name.split('.')[-1]} has no navigation '{nav}'")
        link = LINKS.get((es.name, nav))
        if link is None:
            raise ODataError(501, "SANDBOX/501", f"Navigation {es.name}/{nav} is not served by the sandbox")
        target = self.sets[es.navs[nav].target]
        where = " AND ".join([f"{_q(t)} = ?" for _, t in link] + ([SCOPES[(es.name, nav)]]
                                                                   if (es.name, nav) in SCOPES else []))
        return target, (where, [row[s] for s, _ in link]), es.navs[nav].many

    def expand(self, es: EntitySet, rows: list[dict[str, Any]], paths: list[list[str]]) -> None:
        """Attach ``$expand`` results in place: row[nav] = list of rows (to-many) or row/None."""
        firsts: dict[str, list[list[str]]] = {}
        for path in paths:
            firsts.setdefault(path[0], [])
            if len(path) > 1:
                firsts[path[0]].append(path[1:])
        for nav, rest in firsts.items():
            for row in rows:
                target, (where, params), many = self.navigate(es, nav, row)
                keys = ", ".join(_q(k) for k in target.keys)
                children = [dict(r) for r in self.conn.execute(
                    f"SELECT * FROM {_q(target.name)} WHERE {where} ORDER BY {keys}", params)]
                if rest:
                    self.expand(target, children, rest)
                row[nav] = children if many else (children[0] if children else None)

    # -- writes -----------------------------------------------------------------------------------
    def insert(self, es: EntitySet, values: dict[str, Any]) -> None:
        """Insert one row: every property not given gets its initial value."""
        unknown = set(values) - set(es.props)
        assert not unknown, f"{es.name} has no {sorted(unknown)}"  # a slip in the sandbox's own code
        row = {name: values.get(name, sap_s4_schema.initial(p.type)) for name, p in es.props.items()}
        cols = list(row)
        try:
            self.conn.execute(f"INSERT INTO {_q(es.name)} ({', '.join(map(_q, cols))}) "
                              f"VALUES ({', '.join('?' * len(cols))})", [row[c] for c in cols])
        except sqlite3.IntegrityError:
            shown = ",".join(f"{k}='{row[k]}'" for k in es.keys)
            raise ODataError(400, "SANDBOX/409", f"{es.name}({shown}) already exists") from None

    def insert_many(self, es: EntitySet, rows: list[dict[str, Any]]) -> None:
        """Bulk ``insert`` (the seed's path): one prepared statement for all rows."""
        cols = list(es.props)
        defaults = {name: sap_s4_schema.initial(p.type) for name, p in es.props.items()}
        for row in rows:
            unknown = set(row) - defaults.keys()
            assert not unknown, f"{es.name} has no {sorted(unknown)}"
        self.conn.executemany(f"INSERT INTO {_q(es.name)} ({', '.join(map(_q, cols))}) VALUES ({', '.join('?' * len(cols))})",
                              ([row.get(c, defaults[c]) for c in cols] for row in rows))

    def update(self, es: EntitySet, key: dict[str, Any], values: dict[str, Any]) -> None:
        if not values:
            return
        sets = ", ".join(f"{_q(c)} = ?" for c in values)
        where = " AND ".join(f"{_q(k)} = ?" for k in es.keys)
        self.conn.execute(f"UPDATE {_q(es.name)} SET {sets} WHERE {where}",
                          [*values.values(), *(key[k] for k in es.keys)])


class _Tx:
    """``with store.transaction():`` the lock and one IMMEDIATE transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> Store:
        self.store.lock.acquire()
        self.store.conn.execute("BEGIN IMMEDIATE")
        return self.store

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        try:
            self.store.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store.lock.release()


def _sort_expr(column: str, edm: str) -> str:
    """The expression a column sorts by (NULL folded to the lowest value, decimals as numbers)."""
    if edm == "Edm.Decimal":
        return f"CAST(IFNULL({_q(column)}, '0') AS REAL)"
    if edm in ("Edm.String", "Edm.Guid"):
        return f"IFNULL({_q(column)}, '')"
    return f"IFNULL({_q(column)}, -9000000000000000000)"


def _after(order: list[tuple[str, bool]], values: list[Any]) -> tuple[str, list[Any]]:
    """Rows strictly after ``values`` in ``order`` (expanded lexicographic comparison)."""
    ors, params = [], []
    for i, (expr, desc) in enumerate(order):
        ands = [f"{e} = ?" for e, _ in order[:i]] + [f"{expr} {'<' if desc else '>'} ?"]
        ors.append("(" + " AND ".join(ands) + ")")
        params += values[:i] + [values[i]]
    return "(" + " OR ".join(ors) + ")", params


def _encode(values: list[Any], left: int | None) -> str:
    raw = json.dumps({"v": values, "t": left}, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, width: int) -> tuple[list[Any], int | None]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        values, left = raw["v"], raw["t"]
        if not isinstance(values, list) or len(values) != width or not (left is None or isinstance(left, int)):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise bad(f"Invalid $skiptoken '{token}': use the __next link of the previous page as it is") from None
    return values, left
