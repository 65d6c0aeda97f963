"""SAP ECC stand-in: the SOAP services of ``sandbox/sap_wsdl/`` on the paths their WSDLs give.

| path (client 100) | WSDL | operation |
|---|---|---|
| ``/sap/bc/srt/rfc/sap/zsi_cmd_create_in/100/customermaster_v1/customercreate_v1`` | reference | ZfmCustomerMasterCreate |
| ``/sap/bc/srt/xip/sap/ECC_CUSTOMER002QR?sap-client=100`` | reference | CustomerSimpleByNameAndAddressQueryResponse_In |
| ``/sap/bc/srt/rfc/sap/zbapi_customer_getdetail2/100/zbapi_customer_getdetail2/zbapi_customer_getdetail2`` | composed | BAPI_CUSTOMER_GETDETAIL2 |
| ``/sap/bc/srt/rfc/sap/zws_bapi_salesorder_create/100/zws_bapi_salesorder_create_sev/zws_bapi_salesorder_create_binding`` | reference | ZBAPI_SALESORDER_CREATE |
| ``/sap/bc/srt/rfc/sap/zbapi_salesorder_createfromdat/100/zbapi_salesorder_createfromdat/zbapi_salesorder_createfromdat`` | composed, stateful | BAPI_SALESORDER_CREATEFROMDAT2, BAPI_TRANSACTION_COMMIT, BAPI_TRANSACTION_ROLLBACK |
| ``/sap/bc/srt/rfc/sap/zbapi_salesorder_getlist/100/zbapi_salesorder_getlist/zbapi_salesorder_getlist`` | composed | BAPI_SALESORDER_GETLIST |
| ``/sap/bc/srt/rfc/sap/zbapi_material/100/zbapi_material/zbapi_material`` | composed | BAPI_MATERIAL_GETLIST, BAPI_MATERIAL_GET_DETAIL |

``GET <path>?wsdl`` answers the WSDL with its addresses pointing here.  ``POST`` takes a SOAP 1.1
envelope (1.2 too where the WSDL binds it), checks HTTP Basic (``credentials.json`` ``sap_ecc``)
and the client (path segment or ``sap-client`` in query or header: 100), validates the body
element against the WSDL's schema (a SOAP Fault naming what failed when it does not conform),
runs the operation and answers an envelope built to, and validated against, the same schema.
Business errors are RETURN rows under HTTP 200.  A stateful service (its WSDL's policy says
``enableSession`` true) runs each caller in a session kept by the ``sap-contextid`` cookie
(sandbox/sap_ecc_sessions.py): the standard BAPI's documents wait there for
BAPI_TRANSACTION_COMMIT.  Faults (sandbox/faults.py) as in every stand-in; ``POST
/__sandbox/ecc/config`` takes ``createfromdat2_commits`` (the create saves at once, default
false), ``commit_fails`` (BAPI_TRANSACTION_COMMIT answers a failed update), ``session_timeout_seconds``
(default 1800) and ``end_sessions`` (true: end every session now, their pending work lost).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from lxml import etree
from starlette.concurrency import run_in_threadpool

from . import sap_ecc_customers as customers
from . import sap_ecc_materials as materials
from . import sap_ecc_orders as orders
from .faults import ASGIApp, FaultMiddleware, Faults
from .sap_ecc_sessions import COOKIE, EccSession, Sessions
from .sap_ecc_soap import CONTENT_TYPE, SoapFault, envelope, fault, parse
from .sap_ecc_store import EccStore
from .sap_ecc_wsdl import Service, load_services
from .sap_ecc_xsd import XsdModel, to_python

CLIENT = "100"
REALM = f'Basic realm="SAP NetWeaver Application Server [ECC/{CLIENT}]"'
log = logging.getLogger(__name__)


class EccConfig:
    """The stand-in's switches (``/__sandbox/ecc/config``), its sessions and its extra stats."""

    SWITCHES = ("createfromdat2_commits", "commit_fails")

    def __init__(self, st: EccStore) -> None:
        self.st = st
        self.createfromdat2_commits = False
        self.commit_fails = False
        self.sessions = Sessions()

    def settings(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self.SWITCHES}, "session_timeout_seconds": self.sessions.timeout}

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        if path != "/__sandbox/ecc/config":
            return None
        if method == "POST":
            try:
                cfg = json.loads(body or b"{}")
                known = {*self.SWITCHES, "session_timeout_seconds", "end_sessions"}
                if not isinstance(cfg, dict) or set(cfg) - known:
                    raise ValueError(f"body must be an object with some of {sorted(known)}")
                for key in self.SWITCHES:
                    setattr(self, key, bool(cfg.get(key, getattr(self, key))))
                self.sessions.timeout = float(cfg.get("session_timeout_seconds", self.sessions.timeout))
                if cfg.get("end_sessions"):
                    self.sessions.end_all()
            except (ValueError, TypeError) as exc:
                return 400, {"ok": False, "error": str(exc)}
        return 200, {"ok": True, **self.settings()}

    def stats(self) -> dict[str, Any]:
        return {"ecc": {"tables": self.st.counts(), **self.settings(), "sessions": self.sessions.stats()}}

    def reset(self) -> None:
        return None


#: An operation: (request, the caller's session or None on a stateless service) → answer values.
Handler = Callable[[dict[str, Any], EccSession | None], dict[str, Any]]


def _handlers(st: EccStore, cfg: EccConfig) -> dict[str, Handler]:
    return {
        "ZfmCustomerMasterCreate": lambda req, _: customers.create(st, req),
        "CustomerSimpleByNameAndAddressQueryResponse_In": lambda req, _: customers.find(st, req),
        "BAPI_CUSTOMER_GETDETAIL2": lambda req, _: customers.getdetail2(st, req),
        "ZBAPI_SALESORDER_CREATE": lambda req, _: orders.zbapi_create(st, req),
        "BAPI_SALESORDER_CREATEFROMDAT2": lambda req, ses: orders.createfromdat2(st, req, ses, cfg.createfromdat2_commits),
        "BAPI_TRANSACTION_COMMIT": lambda req, ses: orders.commit(st, req, ses, cfg.commit_fails),
        "BAPI_TRANSACTION_ROLLBACK": lambda req, ses: orders.rollback(st, req, ses),
        "BAPI_SALESORDER_GETLIST": lambda req, _: orders.getlist(st, req),
        "BAPI_MATERIAL_GETLIST": lambda req, _: materials.getlist(st, req),
        "BAPI_MATERIAL_GET_DETAIL": lambda req, _: materials.get_detail(st, req),
    }


def _authorised(request: Request, user: str, password: str) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        got_user, _, got_password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return secrets.compare_digest(got_user, user) & secrets.compare_digest(got_password, password)


def _invalid(service: Service, node: etree._Element) -> str | None:
    """Why ``node`` breaks the service's schema (its first five complaints), or None."""
    with service.lock:
        if service.schema.validate(node):
            return None
        return "; ".join(f"line {e.line}: {e.message}" for e in list(service.schema.error_log)[:5])


def _soap_answer(service: Service, model: XsdModel, handlers: dict[str, Handler], session: EccSession | None,
                 raw: bytes) -> tuple[int, bytes, str]:
    """(status, body, content type) of one POST: the operation's answer, or a fault."""
    version = "1.1"
    try:
        version, body = parse(raw)
        if version not in service.soap_versions:
            raise SoapFault(f"this service binds SOAP {'/'.join(sorted(service.soap_versions))} only",
                            "1.1", code="VersionMismatch")
        op = service.operations.get(etree.QName(body))
        if op is None:
            raise SoapFault(f"no operation of this service takes element {body.tag}", version)
        if (why := _invalid(service, body)) is not None:
            raise SoapFault(f"request does not conform to the WSDL schema: {why}", version)
        answer = model.render(op.output, handlers[op.name](to_python(body), session))
        if (why := _invalid(service, answer)) is not None:  # the stand-in's own bug: say so, teach no wrong shape
            log.error("ECC stand-in answer for %s breaks its schema: %s", op.name, why)
            raise SoapFault(f"internal error: answer does not conform: {why}", version, sender=False)
        return 200, envelope(version, answer), CONTENT_TYPE[version]
    except SoapFault as exc:
        return 500, fault(exc), CONTENT_TYPE[exc.version]
    except Exception:  # a stand-in bug: an SAP system would dump (ST22) and answer a server fault
        log.exception("ECC stand-in failed on a request")
        exc = SoapFault("internal error in the ECC stand-in (see its log)", version, sender=False)
        return 500, fault(exc), CONTENT_TYPE[version]


def create_sap_ecc_app(directory: Path, faults: Faults) -> ASGIApp:
    """The ECC ASGI app (FastAPI behind the fault middleware) over ``directory``."""
    creds = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))["sap_ecc"]
    st = EccStore(directory / "sap_ecc.db")
    cfg = EccConfig(st)
    handlers = _handlers(st, cfg)
    app = FastAPI(title="SAP ECC SOAP sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    def route(service: Service) -> None:
        model = XsdModel(service.schema_docs)

        def session_of(request: Request) -> tuple[EccSession | None, dict[str, str], Response | None]:
            """(the caller's session, headers to answer with, or the refusal of a dead session)."""
            if not service.stateful:
                return None, {}, None
            sid = request.cookies.get(COOKIE, "")
            if sid and sid != "0":
                session = cfg.sessions.get(sid, service.path)
                if session is None:
                    return None, {}, Response("<html><body><h1>Session timed out</h1></body></html>", 400,
                                              media_type="text/html",
                                              headers={"set-cookie": Sessions.delete_cookie(service.path)})
                return session, {}, None
            session = cfg.sessions.open(service.path)
            return session, {"set-cookie": Sessions.set_cookie(session)}, None

        def refused(request: Request) -> Response | None:
            clients = {c for c in (request.query_params.get("sap-client"), request.headers.get("sap-client")) if c}
            if not _authorised(request, creds["user"], creds["password"]) or clients - {CLIENT}:
                return Response("<html><body><h1>Logon failed</h1></body></html>", 401, media_type="text/html",
                                headers={"www-authenticate": REALM})
            return None

        @app.get(service.path)
        async def wsdl(request: Request) -> Response:
            if (denied := refused(request)) is not None:
                return denied
            if "wsdl" not in {k.lower() for k in request.query_params}:
                return Response("only ?wsdl is served with GET", 405, media_type="text/plain")
            return Response(service.wsdl_for(str(request.base_url)), media_type="text/xml")

        @app.post(service.path)
        async def call(request: Request) -> Response:
            if (denied := refused(request)) is not None:
                return denied
            if "xml" not in request.headers.get("content-type", ""):
                return Response("SOAP wants text/xml (1.1) or application/soap+xml (1.2)", 415, media_type="text/plain")
            session, headers, dead = session_of(request)
            if dead is not None:
                return dead
            status, body, ctype = await run_in_threadpool(_soap_answer, service, model, handlers, session,
                                                          await request.body())
            return Response(body, status, media_type=ctype, headers=headers)

    for service in load_services():
        route(service)

    return FaultMiddleware(app, faults, token_paths=(), live_token=lambda scope: None, revoke=lambda token: False,
                           expired=lambda: (401, {}),
                           error_body=lambda status, msg: {"error": {"code": str(status), "message": msg}},
                           extension=cfg)
