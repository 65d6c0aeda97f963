"""SAP ECC stand-in: the SOAP services of ``sandbox/sap_wsdl/`` on the paths their WSDLs give.

| path (client 100) | WSDL | operation |
|---|---|---|
| ``/sap/bc/srt/rfc/sap/zsi_cmd_create_in/100/customermaster_v1/customercreate_v1`` | reference | ZfmCustomerMasterCreate |
| ``/sap/bc/srt/xip/sap/ECC_CUSTOMER002QR?sap-client=100`` | reference | CustomerSimpleByNameAndAddressQueryResponse_In |
| ``/sap/bc/srt/rfc/sap/zbapi_customer_getdetail2/100/zbapi_customer_getdetail2/zbapi_customer_getdetail2`` | composed | BAPI_CUSTOMER_GETDETAIL2 |
| ``/sap/bc/srt/rfc/sap/zws_bapi_salesorder_create/100/zws_bapi_salesorder_create_sev/zws_bapi_salesorder_create_binding`` | reference | ZBAPI_SALESORDER_CREATE |
| ``/sap/bc/srt/rfc/sap/zbapi_salesorder_createfromdat/100/zbapi_salesorder_createfromdat/zbapi_salesorder_createfromdat`` | composed | BAPI_SALESORDER_CREATEFROMDAT2 |
| ``/sap/bc/srt/rfc/sap/zbapi_salesorder_getlist/100/zbapi_salesorder_getlist/zbapi_salesorder_getlist`` | composed | BAPI_SALESORDER_GETLIST |

``GET <path>?wsdl`` answers the WSDL with its addresses pointing here.  ``POST`` takes a SOAP 1.1
envelope (1.2 too where the WSDL binds it), checks HTTP Basic (``credentials.json`` ``sap_ecc``)
and the client (path segment or ``sap-client`` in query or header: 100), validates the body
element against the WSDL's schema (a SOAP Fault naming what failed when it does not conform),
runs the operation and answers an envelope built to, and validated against, the same schema.
Business errors are RETURN rows under HTTP 200.  Faults (sandbox/faults.py) as in every stand-in;
``POST /__sandbox/ecc/config {"createfromdat2_commits": bool}`` switches whether the composed
standard-BAPI service keeps what it creates (see its WSDL's comment).
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
from . import sap_ecc_orders as orders
from .faults import ASGIApp, FaultMiddleware, Faults
from .sap_ecc_soap import CONTENT_TYPE, SoapFault, envelope, fault, parse
from .sap_ecc_store import EccStore
from .sap_ecc_wsdl import Service, load_services
from .sap_ecc_xsd import XsdModel, to_python

CLIENT = "100"
REALM = f'Basic realm="SAP NetWeaver Application Server [ECC/{CLIENT}]"'
log = logging.getLogger(__name__)


class EccConfig:
    """The stand-in's switches (``/__sandbox/ecc/config``) and its extra stats."""

    def __init__(self, st: EccStore) -> None:
        self.st = st
        self.createfromdat2_commits = True

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        if path != "/__sandbox/ecc/config":
            return None
        if method == "POST":
            try:
                cfg = json.loads(body or b"{}")
                if not isinstance(cfg, dict) or set(cfg) - {"createfromdat2_commits"}:
                    raise ValueError("body must be {\"createfromdat2_commits\": true|false}")
                self.createfromdat2_commits = bool(cfg.get("createfromdat2_commits", self.createfromdat2_commits))
            except ValueError as exc:
                return 400, {"ok": False, "error": str(exc)}
        return 200, {"ok": True, "createfromdat2_commits": self.createfromdat2_commits}

    def stats(self) -> dict[str, Any]:
        return {"ecc": {"tables": self.st.counts(), "createfromdat2_commits": self.createfromdat2_commits}}

    def reset(self) -> None:
        return None


def _handlers(st: EccStore, cfg: EccConfig) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    return {
        "ZfmCustomerMasterCreate": lambda req: customers.create(st, req),
        "CustomerSimpleByNameAndAddressQueryResponse_In": lambda req: customers.find(st, req),
        "BAPI_CUSTOMER_GETDETAIL2": lambda req: customers.getdetail2(st, req),
        "ZBAPI_SALESORDER_CREATE": lambda req: orders.zbapi_create(st, req),
        "BAPI_SALESORDER_CREATEFROMDAT2": lambda req: orders.createfromdat2(st, req, cfg.createfromdat2_commits),
        "BAPI_SALESORDER_GETLIST": lambda req: orders.getlist(st, req),
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


def _soap_answer(service: Service, model: XsdModel, handler: Callable[[dict[str, Any]], dict[str, Any]],
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
        answer = model.render(op.output, handler(to_python(body)))
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
        handler = handlers[next(iter(service.operations.values())).name]

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
            status, body, ctype = await run_in_threadpool(_soap_answer, service, model, handler, await request.body())
            return Response(body, status, media_type=ctype)

    for service in load_services():
        route(service)

    return FaultMiddleware(app, faults, token_paths=(), live_token=lambda scope: None, revoke=lambda token: False,
                           expired=lambda: (401, {}),
                           error_body=lambda status, msg: {"error": {"code": str(status), "message": msg}},
                           extension=cfg)
