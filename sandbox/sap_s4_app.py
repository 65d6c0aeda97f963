"""SAP S/4HANA OData V2 stand-in (work in progress: ``$metadata`` of each service only)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response

from .faults import ASGIApp, FaultMiddleware, Faults
from .sap_edm import all_services


def create_sap_s4_app(directory: Path, faults: Faults) -> ASGIApp:
    """The S/4HANA ASGI app (FastAPI behind the fault middleware) over ``directory``."""
    app = FastAPI(title="SAP S/4HANA OData sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    for svc in all_services().values():
        def metadata(xml: bytes = svc.xml) -> Response:
            return Response(xml, media_type="application/xml")
        app.get(f"{svc.path}/$metadata")(metadata)
    return FaultMiddleware(app, faults, token_paths=(), live_token=lambda scope: None, revoke=lambda t: False,
                           expired=lambda: (403, {}), error_body=lambda status, msg: {"error": {"code": str(status),
                           "message": {"lang": "en", "value": msg}}})
