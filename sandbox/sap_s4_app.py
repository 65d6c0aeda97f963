"""SAP S/4HANA OData V2 stand-in: API_BUSINESS_PARTNER, API_PRODUCT_SRV, API_SALES_ORDER_SRV and
API_OUTBOUND_DELIVERY_SRV;v=0002 at their real paths under ``/sap/opu/odata/sap/``, over
``<dir>/sap_s4.db``.

The gate, as SAP Gateway behaves (protocol notes §2 and §3):
- HTTP Basic with the communication user of ``credentials.json`` ("sap_s4"), or the session
  cookie a CSRF fetch set; ``sap-client`` accepted (only client 100 exists).
- ``GET`` with ``X-CSRF-Token: Fetch`` answers the token in ``x-csrf-token`` and sets
  ``SAP_SESSIONID_<SID>_<client>`` and ``sap-usercontext``; a ``HEAD`` fetch is refused 403
  (oisee/vibing-steampunk#104). POST/PATCH/MERGE/PUT/DELETE need the token *and* its session
  cookie, else 403 ``x-csrf-token: Required`` with the text ``CSRF token validation failed``
  (that text and a text/plain body of 28 bytes are what SAP/cloud-sdk-js#1037 shows).
- JSON only: a request that asks for neither ``$format=json`` nor ``Accept: application/json``
  is refused 406 (the real default is Atom XML, which this stand-in does not write).

Answers: ``{"d": {"results": [...], "__count": "N", "__next": "…$skiptoken=…"}}``, entities with
``__metadata`` (id, uri, type, etag), deferred navigation links, errors in SAP's envelope
(``error.code``, ``error.message{lang,value}``, ``error.innererror{application, transactionid,
timestamp, Error_Resolution, errordetails}``, the shape of a published S/4HANA 1909 sample).
Error codes: see sap_odata (most are the sandbox's own: no public sample named them).

Controls: ``POST /__sandbox/sap/ship`` (the warehouse), ``POST /__sandbox/sap/page-size``
``{"page_size": n}``, plus ``/__sandbox/faults`` and ``/__sandbox/stats`` of every stand-in.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .faults import ASGIApp, FaultMiddleware, Faults, Scope
from .sap_edm import ROOT, EntitySet, Service, all_services
from .sap_odata import NOT_FOUND, ODataError, bad, key_text, parse_key, to_json
from .sap_s4_docs import Documents
from .sap_s4_store import DEFAULT_PAGE_SIZE, Query, Store
from .sap_s4_schema import NAVIGATION_ONLY, STORED

SID, CLIENT = "S4H", "100"
SESSION_COOKIE = f"SAP_SESSIONID_{SID}_{CLIENT}"
CSRF_FAILED = b"CSRF token validation failed"
MODIFYING = ("POST", "PUT", "PATCH", "MERGE", "DELETE")
SYSTEM_OPTIONS = {"$filter", "$select", "$expand", "$orderby", "$top", "$skip", "$skiptoken", "$inlinecount",
                  "$format"}
#: SAP application component of each service, where public material named one (KBA 3524568: LO-MD-BP).
COMPONENTS = {"API_BUSINESS_PARTNER": "LO-MD-BP"}


class Gate:
    """The communication user, the sessions a CSRF fetch opened and their tokens."""

    def __init__(self, creds: dict[str, str]) -> None:
        self.user, self.password = creds["user"], creds["password"]
        self._lock = threading.Lock()
        self.sessions: dict[str, str | None] = {}   # session id → its CSRF token (None: revoked)

    def basic_ok(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            user, _, pw = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user.upper(), self.user.upper()) and secrets.compare_digest(pw, self.password)

    def session_ok(self, sid: str | None) -> bool:
        with self._lock:
            return bool(sid) and sid in self.sessions

    def fetch(self, sid: str | None) -> tuple[str, str]:
        """(session id, token): the session's token, a new one if it had none or no session."""
        with self._lock:
            if not sid or sid not in self.sessions:
                sid = secrets.token_urlsafe(24)
                self.sessions[sid] = None
            if self.sessions[sid] is None:
                self.sessions[sid] = base64.b64encode(secrets.token_bytes(18)).decode()
            return sid, str(self.sessions[sid])

    def token_ok(self, sid: str | None, token: str | None) -> bool:
        with self._lock:
            live = self.sessions.get(sid or "")
        return bool(token) and live is not None and secrets.compare_digest(live, token or "")

    def live(self, token: str | None) -> bool:
        with self._lock:
            return bool(token) and token in self.sessions.values()

    def revoke(self, token: str) -> bool:
        with self._lock:
            for sid, tok in self.sessions.items():
                if tok == token:
                    self.sessions[sid] = None
                    return True
        return False


def _timestamp() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%d%H%M%S.") + f"{now.microsecond:06d}0"


def error_body(exc: ODataError, service: str = "") -> dict[str, Any]:
    details = exc.details or [{"code": exc.code, "message": exc.message, "propertyref": "", "severity": "error",
                               "target": ""}]
    return {"error": {"code": exc.code, "message": {"lang": "en", "value": exc.message}, "innererror": {
        "application": {"component_id": COMPONENTS.get(service, ""), "service_namespace": "/SAP/",
                        "service_id": service.split(";")[0], "service_version": "0001"},
        "transactionid": uuid.uuid4().hex.upper(), "timestamp": _timestamp(),
        "Error_Resolution": {"SAP_Transaction": "For backend administrators: use ADT feed reader \"SAP Gateway "
                             "Error Log\" or run transaction /IWFND/ERROR_LOG on SAP Gateway hub system and search "
                             "for entries with the timestamp above for more details",
                             "SAP_Note": "See SAP Note 1797736 for error analysis "
                                         "(https://service.sap.com/sap/support/notes/1797736)"},
        "errordetails": details}}}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status_code=status,
                    media_type="application/json; charset=utf-8", headers={"dataserviceversion": "2.0", **(headers or {})})


def _fail(exc: ODataError, service: str = "") -> Response:
    return _json(error_body(exc, service), exc.status)


def parse_query(params: dict[str, str]) -> Query:
    q = Query()
    for name, value in params.items():
        if name.startswith("$") and name not in SYSTEM_OPTIONS:
            raise bad(f"Invalid system query option '{name}'" + (
                ": OData V2 counts with $inlinecount=allpages or the /$count segment" if name == "$count" else ""))
    q.filter = params.get("$filter")
    for name in ("$top", "$skip"):
        if name in params:
            raw = params[name].strip()
            if not raw.isdigit():
                raise bad(f"Invalid value '{raw}' of {name}: a non-negative integer is required")
            setattr(q, name[1:], int(raw))
    q.skiptoken = params.get("$skiptoken") or None
    if "$orderby" in params:
        for part in params["$orderby"].split(","):
            words = part.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
                raise bad(f"Invalid $orderby '{params['$orderby']}'")
            q.orderby.append((words[0], len(words) == 2 and words[1] == "desc"))
    if params.get("$select", "").strip():
        q.select = [s.strip() for s in params["$select"].split(",") if s.strip()]
    if params.get("$expand", "").strip():
        q.expand = [[p for p in s.strip().split("/")] for s in params["$expand"].split(",") if s.strip()]
    count = params.get("$inlinecount")
    if count not in (None, "allpages", "none"):
        raise bad(f"Invalid value '{count}' of $inlinecount: allpages or none")
    q.inlinecount = count == "allpages"
    if params.get("$format") not in (None, "json"):
        raise ODataError(406, "SANDBOX/406", f"$format={params['$format']} is not served by the sandbox: use json")
    return q


@dataclass
class Selection:
    """What ``$select`` asks of one level: every property (``whole``) or ``props``, and per
    navigation what it asks of that navigation's entities."""

    whole: bool = False
    props: set[str] = field(default_factory=set)
    navs: dict[str, "Selection"] = field(default_factory=dict)

    def below(self, nav: str) -> "Selection":
        return ALL if self.whole else self.navs.get(nav, ALL)

    def wants(self, name: str) -> bool:
        return self.whole or name in self.props or name in self.navs


ALL = Selection(whole=True)


class Renderer:
    """Stored rows → OData V2 JSON entities under one base URL."""

    def __init__(self, base: str, docs: Documents) -> None:
        self.base, self.docs = base, docs

    def uri(self, es: EntitySet, row: dict[str, Any]) -> str:
        return f"{self.base}{es.name}({quote(key_text(es, row), safe=chr(39) + '=,')})"

    def entity(self, es: EntitySet, row: dict[str, Any], select: Selection = ALL) -> dict[str, Any]:
        uri = self.uri(es, row)
        etag = self.docs.etag(es, row)
        out: dict[str, Any] = {"__metadata": {"id": uri, "uri": uri, "type": es.type_name,
                                              **({"etag": etag} if etag else {})}}
        for name, prop in es.props.items():
            if select.wants(name):
                out[name] = to_json(prop, row.get(name))
        for nav, info in es.navs.items():
            if nav in row and isinstance(row[nav], (list, dict, type(None))) and nav not in es.props:
                target, below = self.docs.store.sets[info.target], select.below(nav)
                value = row[nav]
                out[nav] = ({"results": [self.entity(target, r, below) for r in value]} if isinstance(value, list)
                            else (self.entity(target, value, below) if value else None))
            elif select.wants(nav):
                out[nav] = {"__deferred": {"uri": f"{uri}/{nav}"}}
        return out


def _type(es: EntitySet) -> str:
    return es.type_name.split(".")[-1]


def selection(es: EntitySet, q: Query, sets: dict[str, EntitySet]) -> Selection:
    """``$select`` and ``$expand`` checked against the edmx, as one Selection (OData V2: a select
    path may run through navigations, ``to_X/Prop`` or ``to_X/to_Y/*``, each of them expanded; a
    navigation selected on its own is answered whole when expanded and deferred when not; SAP
    Cloud SDK docs "expand-select": "in OData v2 you select via a path $select=Friends/FirstName
    &$expand=Friends")."""
    for path in q.expand:
        target = es
        for nav in path:
            if nav not in target.navs:
                raise bad(f"Property '{nav}' in $expand is invalid: {_type(target)} has no navigation '{nav}'")
            nxt = sets.get(target.navs[nav].target)
            if nxt is None:
                raise ODataError(501, "SANDBOX/501", f"$expand={'/'.join(path)} is not served by the sandbox")
            target = nxt
    if q.select is None:
        return ALL
    root = Selection()
    for text in q.select:
        *navs, last = text.split("/")
        level, target = root, es
        for i, nav in enumerate(navs):
            if nav not in target.navs:
                raise bad(f"Property '{nav}' in $select is invalid: {_type(target)} has no navigation '{nav}'")
            if not any(p[:i + 1] == navs[:i + 1] for p in q.expand):
                raise bad(f"$select={text} runs through {'/'.join(navs[:i + 1])}, which $expand does not name")
            target = sets[target.navs[nav].target]
            if level.navs.get(nav) is not ALL:
                level = level.navs.setdefault(nav, Selection())
            else:
                break  # selected whole already
        else:
            if last == "*":
                level.whole = True
            elif last in target.navs:
                level.navs[last] = ALL
            elif last in target.props:
                level.props.add(last)
            else:
                raise bad(f"Property '{last}' in $select is invalid: {_type(target)} has no such property")
    return root


def _split_segment(segment: str) -> tuple[str, str | None]:
    if segment.endswith(")") and "(" in segment:
        name, _, key = segment.partition("(")
        return name, key[:-1]
    return segment, None


class SapControls:
    """``/__sandbox/sap/ship`` and ``/__sandbox/sap/page-size`` (a faults.ControlExtension)."""

    def __init__(self, docs: Documents, state: dict[str, Any]) -> None:
        self.docs, self.state = docs, state
        self.shipped = 0

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        if path not in ("/__sandbox/sap/ship", "/__sandbox/sap/page-size"):
            return None
        if method != "POST":
            return 405, {"ok": False, "error": "POST only"}
        if path.endswith("/ship"):
            counts = self.docs.ship()
            self.shipped += counts["deliveries"]
            return 200, {"ok": True, **counts}
        try:
            size = json.loads(body or b"{}").get("page_size", DEFAULT_PAGE_SIZE)
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise ValueError
        except (ValueError, AttributeError):
            return 400, {"ok": False, "error": 'body must be {"page_size": <positive integer>}'}
        self.state["page_size"] = size
        return 200, {"ok": True, "page_size": size}

    def stats(self) -> dict[str, Any]:
        return {"warehouse": {"deliveries": self.shipped}, "page_size": self.state["page_size"]}

    def reset(self) -> None:
        self.shipped = 0


def create_sap_s4_app(directory: Path, faults: Faults) -> ASGIApp:
    """The S/4HANA ASGI app (FastAPI behind the fault middleware) over ``directory``."""
    creds = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))["sap_s4"]
    store = Store(directory / "sap_s4.db")
    docs = Documents(store, int(store.meta("seed", "0") or 0))
    gate = Gate(creds)
    state: dict[str, Any] = {"page_size": DEFAULT_PAGE_SIZE}
    services = all_services()
    app = FastAPI(title="SAP S/4HANA OData sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    def locked(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with store.lock:
                return fn()
        return run

    @app.api_route(ROOT + "/{tail:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "MERGE", "DELETE"])
    async def odata(tail: str, request: Request) -> Response:
        svc = next((s for n, s in services.items() if tail == n or tail.startswith(n + "/")), None)
        if svc is None:
            return _fail(ODataError(404, NOT_FOUND, f"No service found for namespace '', name '{tail.split('/')[0]}', "
                                                    "version '0001'"))
        method = request.method.upper()
        if method == "POST" and request.headers.get("x-http-method", "").upper() in ("MERGE", "PATCH", "DELETE", "PUT"):
            method = request.headers["x-http-method"].upper()
        sid = request.cookies.get(SESSION_COOKIE)
        if not gate.basic_ok(request.headers.get("authorization")) and not gate.session_ok(sid):
            return Response(b"<html><body><h1>Logon failed</h1></body></html>", 401, media_type="text/html",
                            headers={"www-authenticate": f'Basic realm="SAP NetWeaver Application Server [{SID}/{CLIENT}]"'})
        if request.query_params.get("sap-client", CLIENT) != CLIENT:
            return Response(b"<html><body><h1>Logon failed: client does not exist</h1></body></html>", 401,
                            media_type="text/html")
        fetch = request.headers.get("x-csrf-token", "").lower() == "fetch"
        if method == "HEAD":
            return Response(status_code=403 if fetch else 200, headers={"x-csrf-token": "Required"} if fetch else {})
        if method in MODIFYING and not gate.token_ok(sid, request.headers.get("x-csrf-token")):
            return Response(CSRF_FAILED, 403, media_type="text/plain; charset=utf-8", headers={"x-csrf-token": "Required"})
        extra: dict[str, str] = {}
        cookies: list[tuple[str, str]] = []
        if fetch and method == "GET":
            sid, token = gate.fetch(sid)
            extra["x-csrf-token"] = token
            cookies = [(SESSION_COOKIE, sid), ("sap-usercontext", f"sap-client={CLIENT}")]
        rest = tail[len(svc.name):].lstrip("/")
        try:
            response = await handle(svc, rest, method, request)
        except ODataError as exc:
            response = _fail(exc, svc.name)
        for k, v in extra.items():
            response.headers[k] = v
        for name, value in cookies:
            response.set_cookie(name, value, path="/", httponly=True)
        return response

    async def handle(svc: Service, rest: str, method: str, request: Request) -> Response:
        if rest == "$metadata":
            return Response(svc.xml, media_type="application/xml", headers={"dataserviceversion": "2.0"})
        accept = request.headers.get("accept", "")
        params = dict(request.query_params)
        if params.get("$format") != "json" and "json" not in accept.lower():
            raise ODataError(406, "SANDBOX/406", "The sandbox answers JSON only: send Accept: application/json "
                                                 "or $format=json (S/4 would answer Atom XML)")
        base = f"{str(request.base_url).rstrip('/')}{svc.path}/"
        render = Renderer(base, docs)
        if rest == "":
            if method != "GET":
                raise bad("The service document is read-only", "SANDBOX/405", 405)
            return _json({"d": {"EntitySets": list(svc.sets)}})
        segments = rest.split("/")
        name, key = _split_segment(segments[0])
        if name not in STORED[svc.name]:
            if name in svc.sets:
                raise ODataError(501, "SANDBOX/501", f"Entity set {name} is not served by the sandbox")
            raise ODataError(404, NOT_FOUND, f"Resource not found for segment '{name}'")
        if name in NAVIGATION_ONLY:
            raise ODataError(501, "SANDBOX/501", f"Entity set {name} is not addressable: read it through its "
                                                  "navigation (sap:addressable=\"false\")")
        es = store.sets[name]
        user = docs_user(request)
        if method in ("POST",) and key is None and len(segments) == 1:
            return await create(es, render, request, user)
        if method == "POST" and key is not None and len(segments) == 2:  # a new entry below an entity
            body = await body_json(request)
            target, row = await run_in_threadpool(docs.create_under, es, parse_key(es, key), segments[1], body, user)
            inline = [[nav] for nav in (body if isinstance(body, dict) else {}) if nav in target.navs]
            return await run_in_threadpool(locked(lambda: created(target, row, render, inline)))
        if method in ("PATCH", "MERGE") and key is not None and len(segments) == 1:
            body = await body_json(request)
            key_values = parse_key(es, key)
            await run_in_threadpool(docs.patch, es, key_values, body, request.headers.get("if-match"), user)
            return Response(status_code=204, headers={"dataserviceversion": "2.0"})
        if method in ("PUT", "DELETE"):
            if method == "DELETE" and not es.deletable:
                raise bad(f"{es.name} cannot be deleted", "SANDBOX/405", 405)
            raise ODataError(501, "SANDBOX/501", f"{method} on {es.name} is not served by the sandbox (use PATCH)")
        if method != "GET":
            raise bad(f"{method} is not allowed on this resource", "SANDBOX/405", 405)
        q = parse_query(params)
        self_url = base + "/".join(seg for seg in segments if seg != "$count")
        return await run_in_threadpool(locked(lambda: read(es, key, segments[1:], q, render, params, self_url)))

    def read(es: EntitySet, key: str | None, more: list[str], q: Query, render: Renderer, params: dict[str, str],
             self_url: str) -> Response:
        scope = None
        if key is not None:
            row = store.get(es, parse_key(es, key))
            if not more:
                chosen = selection(es, q, store.sets)
                store.expand(es, [row], q.expand)
                etag = docs.etag(es, row)
                return _json({"d": render.entity(es, row, chosen)}, headers={"etag": etag} if etag else None)
            nav = more.pop(0)
            if nav == "$count":
                raise bad("$count follows a collection")
            target, scope, many = store.navigate(es, nav, row)
            if not many:
                rows = store.rows(target.name, scope[0], scope[1])
                if not rows:
                    return _json({"d": None})
                chosen = selection(target, q, store.sets)
                store.expand(target, rows[:1], q.expand)
                return _json({"d": render.entity(target, rows[0], chosen)})
            es = target
        if more == ["$count"]:
            return Response(str(store.count(es, q, scope)), media_type="text/plain")
        if more:
            raise ODataError(404, NOT_FOUND, f"Resource not found for segment '{more[0]}'")
        chosen = selection(es, q, store.sets)
        page = store.collection(es, q, state["page_size"], scope)
        store.expand(es, page.rows, q.expand)
        body: dict[str, Any] = {"results": [render.entity(es, r, chosen) for r in page.rows]}
        if page.count is not None:
            body["__count"] = str(page.count)
        if page.next_token:
            keep = {k: v for k, v in params.items() if k not in ("$skiptoken", "$skip", "$top")}
            keep["$skiptoken"] = page.next_token  # the remaining $top travels inside the token
            body["__next"] = f"{self_url}?{urlencode(keep, safe='$,()/' + chr(39))}"
        return _json({"d": body})

    async def body_json(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise bad("The request body is not valid JSON") from None

    async def create(es: EntitySet, render: Renderer, request: Request, user: str) -> Response:
        body = await body_json(request)
        makers = {"A_BusinessPartner": docs.create_business_partner, "A_SalesOrder": docs.create_sales_order,
                  "A_BusinessPartnerTaxNumber": docs.create_tax_number}
        if es.name not in makers:
            if not es.creatable:
                raise bad(f"{es.name} cannot be created", "SANDBOX/405", 405)
            raise ODataError(501, "SANDBOX/501", f"Creating {es.name} is not served by the sandbox")
        row = await run_in_threadpool(makers[es.name], body, user)
        posted = [[nav] for nav in (body or {}) if nav in es.navs]
        if es.name == "A_SalesOrder" and ["to_Item"] in posted:
            posted.append(["to_Item", "to_PricingElement"])
        return await run_in_threadpool(locked(lambda: created(es, row, render, posted)))

    def created(es: EntitySet, row: dict[str, Any], render: Renderer, posted: list[list[str]]) -> Response:
        """201 with the new entity (and what was posted inline with it), its location and ETag."""
        store.expand(es, [row], posted)
        entity = render.entity(es, row)
        headers = {"location": entity["__metadata"]["uri"]}
        if entity["__metadata"].get("etag"):
            headers["etag"] = entity["__metadata"]["etag"]
        return _json({"d": entity}, 201, headers)

    def docs_user(request: Request) -> str:
        return gate.user.upper()[:12]

    def live_token(scope: Scope) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        token = headers.get("x-csrf-token")
        return token if token and token.lower() != "fetch" and gate.live(token) else None

    return FaultMiddleware(
        app, faults, token_paths=(), live_token=live_token, revoke=gate.revoke,
        expired=lambda: (403, CSRF_FAILED, [(b"x-csrf-token", b"Required")]),
        error_body=lambda status, msg: error_body(ODataError(status, f"SANDBOX/{status}", msg)),
        extension=SapControls(docs, state),
    )
