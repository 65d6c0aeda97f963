"""用友 U8 OpenAPI stand-in: /system/token, /api/customer/add|edit|get and (u8_orders.py) /api/saleorder/*.

Every answer is HTTP 200 with an ``errcode`` string, as the platform does; the data goes into
``<dir>/u8.db`` (the same file ODBC readers see).  Credentials: ``<dir>/credentials.json``.
"""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from . import u8_orders
from . import u8_accept
from .faults import ASGIApp, FaultMiddleware, Faults, Scope
from .tokens import TokenStore
from .u8_store import BAD_APP, BAD_FIELD, BAD_PARAMS, BAD_TOKEN, U8Error, U8Store

TOKEN_PATH = "/system/token"
TOKEN_TTL_S = 7200
EXPIRED = {"errcode": BAD_TOKEN, "errmsg": "token不存在或已过期 (token missing or expired)"}


def _ok(**extra: Any) -> JSONResponse:
    return JSONResponse({"errcode": "0", "errmsg": "", **extra})


def _fail(exc: U8Error) -> JSONResponse:
    return JSONResponse({"errcode": exc.errcode, "errmsg": exc.errmsg})


class U8Gate:
    """App credentials and the common URL parameters every call carries."""

    def __init__(self, creds: dict[str, Any], ttl_s: float) -> None:
        self.creds = creds
        self.tokens = TokenStore()
        self.ttl_s = ttl_s

    def issue(self, p: dict[str, str]) -> dict[str, Any]:
        c = self.creds
        if (p.get("app_key"), p.get("app_secret"), p.get("from_account")) != \
                (c["app_key"], c["app_secret"], c["from_account"]):
            raise U8Error(BAD_APP, "app_key, app_secret or from_account is wrong")
        token = secrets.token_hex(16)
        self.tokens.issue(token, c["app_key"], self.ttl_s)
        return {"id": token, "expiresIn": int(self.ttl_s)}

    def check(self, p: dict[str, str]) -> None:
        """Token first (errcode 20003 means: fetch a new token), then the account parameters."""
        if self.tokens.check(p.get("token")) != self.creds["app_key"] or p.get("app_key") != self.creds["app_key"]:
            raise U8Error(BAD_TOKEN, EXPIRED["errmsg"])
        for name in ("from_account", "to_account", "ds_sequence"):
            if p.get(name) != str(self.creds[name]):
                raise U8Error(BAD_PARAMS, f"URL parameter {name} is missing or wrong")


def create_u8_app(directory: Path, faults: Faults, token_ttl_s: float = TOKEN_TTL_S) -> ASGIApp:
    """The U8 ASGI app (FastAPI behind the fault middleware) over ``directory``."""
    creds = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))["u8"]
    store = U8Store(directory / "u8.db")
    gate = U8Gate(creds, token_ttl_s)
    app = FastAPI(title="用友 U8 OpenAPI sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    async def customer_body(request: Request) -> Any:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            raise U8Error(BAD_FIELD, "body is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("customer"), dict):
            raise U8Error(BAD_FIELD, 'body must be {"customer": {...}}')
        return body["customer"]

    @app.get(TOKEN_PATH)
    async def token(request: Request) -> JSONResponse:
        try:
            return _ok(token=gate.issue(dict(request.query_params)))
        except U8Error as exc:
            return _fail(exc)

    @app.post("/api/customer/add")
    async def add(request: Request) -> JSONResponse:
        p = dict(request.query_params)
        try:
            gate.check(p)
            customer = await customer_body(request)
            code = await run_in_threadpool(store.add, customer, p.get("biz_id") or None)
        except U8Error as exc:
            return _fail(exc)
        return _ok(id=code, tradeid=uuid.uuid4().hex)

    @app.post("/api/customer/edit")
    async def edit(request: Request) -> JSONResponse:
        p = dict(request.query_params)
        try:
            gate.check(p)
            await run_in_threadpool(store.edit, await customer_body(request))
        except U8Error as exc:
            return _fail(exc)
        return _ok()

    @app.get("/api/customer/get")
    async def get(request: Request) -> JSONResponse:
        p = dict(request.query_params)
        try:
            gate.check(p)
            if not p.get("id"):
                raise U8Error(BAD_FIELD, "id is required")
            customer = await run_in_threadpool(store.get, p["id"])
        except U8Error as exc:
            return _fail(exc)
        return _ok(customer=customer)

    # sales orders (saleorder/add, get, verify, close) and the warehouse control, u8_orders.py
    warehouse = u8_orders.mount(app, directory, gate.check, _ok, _fail)

    u8_accept.register(app, gate, directory)  # 收款单 (accept/add), see sandbox/u8_accept.py

    def live_token(scope: Scope) -> str | None:
        query = parse_qs(scope.get("query_string", b"").decode("utf-8", "replace"))
        token = (query.get("token") or [None])[0]
        return token if gate.tokens.check(token) is not None else None

    return FaultMiddleware(
        app, faults, token_paths=(TOKEN_PATH,), live_token=live_token, revoke=gate.tokens.revoke,
        expired=lambda: (200, EXPIRED),
        error_body=lambda status, msg: {"errcode": str(status), "errmsg": msg}, extension=warehouse,
    )
