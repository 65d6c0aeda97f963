"""Airflow plugin: the dealer ordering channel (经销商订货 API) in Airflow's API server, and its HTTP
surface: the documented request and answer shapes (the OpenAPI document docs/dealer_api.openapi.json
is this app's) and the routes. What an order does in the hub is flows/dealer_orders.py's.

Mounted at ``/dealer-api``: a dealer's ordering system calls ``{api server}/dealer-api/{seat}/v1/…``
where ``seat`` is a ``dealer`` binding's name (docs/dealer_api.md; the OpenAPI document is
``/dealer-api/openapi.json``). Not signed in to Airflow: every request is authenticated by the
dealer's HMAC signature, which the channel checks.

``PYTHONPATH=. .venv/bin/python plugins/hub_dealer_api.py`` prints the OpenAPI document.
"""
from __future__ import annotations

import json
import time
from datetime import date
from decimal import Decimal
from typing import Any, Callable, Optional

from airflow.plugins_manager import AirflowPlugin
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from flows import dealer_orders, receivers
from flows.dag import emit_asset_event
from hub.errors import ConfigurationError, redact
from hub.types import Binding

URL_PREFIX = "/dealer-api"
MAX_BODY = dealer_orders.MAX_BODY
Emitter = dealer_orders.Emitter
log = dealer_orders.log


Money = Decimal


class DealerLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line_no: Optional[int] = Field(None, ge=1, description="the dealer's line number (default: position, from 1)")
    product_code: str = Field(..., min_length=1, max_length=60, description="the ERP's product code (存货编码 / material)")
    quantity: Money = Field(..., description="quantity in the product's sales unit")
    unit_price: Money = Field(..., description="price per unit, tax included (含税单价), yuan")
    discount: Optional[Money] = Field(None, description="discount on the line, yuan (default 0)")
    tax_rate: Money = Field(..., description="VAT rate in percent: 13, 9, 6, 3, 1 or 0")
    amount: Money = Field(..., description="quantity × unit_price − discount, rounded half-up to the fen")


class DealerOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_no: str = Field(..., min_length=1, max_length=120, description="the dealer's order number, unique per dealer")
    order_date: Optional[date] = Field(None, description="order date (default: the day it is received)")
    currency: str = Field("CNY", pattern="^CNY$", description="only CNY")
    total: Money = Field(..., description="the order total: the sum of the lines' amounts, to the fen")
    memo: Optional[str] = Field(None, max_length=250)
    ship_to: Optional[str] = Field(None, max_length=250, description="delivery address and contact, as one text")
    cancelled: bool = Field(False, description="true cancels the order (the ERP order is closed if it has it)")
    lines: list[DealerLine] = Field(..., min_length=1, max_length=500)


class OrderAnswer(BaseModel):
    order_no: str
    hub_order_id: str
    outcome: str = Field(..., description="accepted | changed | unchanged")
    state: str = Field(..., description="queued for the ERP, or cancelled")


class Refusal(BaseModel):
    detail: str
    reasons: list[str] = []


class OrderState(BaseModel):
    order_no: str
    hub_order_id: str
    state: str = Field(..., description="refused | waiting | queued | in_erp | cancelled | unknown")
    erp_order_no: Optional[str] = None
    reasons: list[str] = []


class SpecialPrice(BaseModel):
    product_code: str
    product_name: Optional[str] = None
    price: str = Field(..., description="the approved price per unit, tax included, yuan")
    valid_until: Optional[str] = None
    approval_no: Optional[str] = Field(None, description="the OA request's number")
    approved_on: Optional[str] = None


def parse_order(body: bytes, today: date) -> dict[str, Any]:
    """The body as a ``DealerOrder`` in exact text (the default date filled in); ValueError(message,
    reasons) naming each field the schema refuses."""
    try:
        order = DealerOrder.model_validate(json.loads(body, parse_float=Decimal))
    except ValidationError as exc:
        raise ValueError("not a DealerOrder", [f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e['msg']}"
                                               for e in exc.errors(include_url=False)]) from None
    except ValueError as exc:
        raise ValueError("not JSON", [f"body: {exc}"]) from None
    raw = json.loads(order.model_dump_json())
    raw["order_date"] = raw.get("order_date") or today.isoformat()
    return raw


def create_app(emit: Emitter = emit_asset_event) -> FastAPI:
    """The channel as a FastAPI app, mounted below in Airflow's API server. Not signed in to Airflow:
    each request is authenticated by the dealer's signature."""
    app = FastAPI(title="Hub dealer ordering API", version="1", docs_url=None, redoc_url=None,
                  description=dealer_orders.__doc__.split("\n\n", 1)[1] if dealer_orders.__doc__ else None)

    async def _serve(seat: str, request: Request, act_for: Callable[[Binding, bytes], Callable]) -> JSONResponse:
        found = await receivers.seat_and_body("dealer", seat, request, MAX_BODY)
        if isinstance(found, JSONResponse):
            return found
        binding, body = found
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            status, answer = await run_in_threadpool(dealer_orders.handle, binding, request.method, path, dict(request.headers),
                                                     body, time.time(), act_for(binding, body))
        except ConfigurationError as exc:
            log.error("dealer channel %s: %s", seat, redact(str(exc)))
            return JSONResponse({"detail": "the channel is not configured for this dealer"}, status_code=503)
        return JSONResponse(answer, status_code=status)

    signed = {"security": [{"dealerSignature": []}]}

    @app.post("/{seat}/v1/orders", response_model=OrderAnswer, status_code=201, openapi_extra={
        **signed, "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/DealerOrder"}}}}},
        responses={200: {"model": OrderAnswer, "description": "a re-send: unchanged, or the changed order queued again"},
                   401: {"model": Refusal}, 409: {"model": Refusal, "description": "replay"},
                   422: {"model": Refusal, "description": "refused (the suite's reasons); quarantined"}})
    async def post_order(seat: str, request: Request, background: BackgroundTasks) -> JSONResponse:
        """Submit (or re-send, or cancel) one order."""
        return await _serve(seat, request, lambda b, body: dealer_orders.order_act(b, body, time.time(), parse_order,
                                                                              background.add_task, emit))

    @app.get("/{seat}/v1/orders/{order_no}", response_model=OrderState, openapi_extra=signed,
             responses={401: {"model": Refusal}, 409: {"model": Refusal}})
    async def get_order(seat: str, order_no: str, request: Request) -> JSONResponse:
        """Where an order stands."""
        return await _serve(seat, request, lambda b, _: lambda d: (200, dealer_orders.where_it_stands(b, d, order_no), {
            "order_no": order_no, "outcome": "read"}))

    @app.get("/{seat}/v1/special-prices", response_model=list[SpecialPrice], openapi_extra=signed,
             responses={401: {"model": Refusal}, 409: {"model": Refusal}})
    async def get_special_prices(seat: str, request: Request, on: Optional[date] = None) -> JSONResponse:
        """The dealer's approved special prices valid on ``on`` (the day it means to order; default today)."""
        return await _serve(seat, request, lambda b, _: lambda d: (200, dealer_orders.special_prices(d, on or date.today()),
                                                                     {"outcome": "read"}))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for model_ in (DealerOrder, DealerLine):
                schemas[model_.__name__] = model_.model_json_schema(ref_template="#/components/schemas/{model}")
            doc["components"]["securitySchemes"] = {"dealerSignature": {
                "type": "apiKey", "in": "header", "name": "X-Hub-Signature",
                "description": "lower-case hex HMAC-SHA256 with the dealer's key of METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\n"
                               "hex(SHA-256(body)); with X-Hub-Dealer, X-Hub-Timestamp (Unix seconds, ±300 s) and "
                               "X-Hub-Nonce (16-64 of A-Z a-z 0-9 _ -, never reused) (docs/dealer_api.md)"}}
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app



class HubDealerApiPlugin(AirflowPlugin):
    name = "hub_dealer_api"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Hub dealer ordering API"}]


if __name__ == "__main__":
    print(json.dumps(create_app(emit=lambda *a: True).openapi(), ensure_ascii=False, indent=2))
