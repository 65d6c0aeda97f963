"""销售易 (NeoCRM) OpenAPI stand-in: OAuth2 token, XOQL query/scroll, xobjects REST.

Wire shapes follow docs/protocols.md (and the public samples it cites).  Data lives in
``<dir>/crm.db`` through ``CrmStore``; credentials come from ``<dir>/credentials.json``.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .crm_orders import OrdersControl
from .crm_store import BAD_BODY, NOT_FOUND, XOQL_LIMIT, CrmError, CrmStore
from .faults import ASGIApp, FaultMiddleware, Faults, Scope
from .tokens import TokenStore

TOKEN_PATH = "/auc/oauth2/token"
ACCESS_TTL_S = 7199
REFRESH_TTL_S = 30 * 86400
EXPIRED = {"code": "401", "msg": "invalid or expired access token"}


def _bearer(headers: dict[str, str] | Any) -> str | None:
    """Token from ``Authorization: Bearer x`` (the raw token without "Bearer" also works)."""
    value = headers.get("authorization") or ""
    value = value.strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    return value or None


async def _params(request: Request) -> dict[str, str]:
    """Query parameters merged with an urlencoded/multipart form body (the body wins)."""
    out = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype or "multipart/form-data" in ctype:
        form = await request.form()
        out.update({k: v for k, v in form.items() if isinstance(v, str)})
    return out


def _query_envelope(data: Any) -> dict[str, Any]:
    return {"code": "200", "msg": None, "errorInfo": None, "debugInfo": None, "data": data}


def _error(exc: CrmError) -> JSONResponse:
    return JSONResponse({"code": exc.code, "msg": exc.msg, "errorInfo": None, "debugInfo": None, "data": None},
                        status_code=exc.status)


class CrmAuth:
    """OAuth2 password and refresh_token grants for the one API user in credentials.json."""

    def __init__(self, creds: dict[str, Any], access_ttl_s: float) -> None:
        self.creds = creds
        self.access = TokenStore()
        self.refresh = TokenStore()
        self.access_ttl_s = access_ttl_s
        self._suffix = base64.b64encode(str(creds["tenant_id"]).encode()).decode() + "0"

    def _new_token(self) -> str:
        return f"{secrets.token_hex(32)}.{self._suffix}"  # shape of the public sample

    def grant(self, p: dict[str, str], host: str) -> tuple[int, dict[str, Any]]:
        """Answer one token request: (HTTP status, body)."""
        c = self.creds
        if p.get("client_id") != c["client_id"] or p.get("client_secret") != c["client_secret"]:
            return 401, {"error": "invalid_client", "error_description": "client_id or client_secret is wrong"}
        grant_type = p.get("grant_type")
        if grant_type == "password":
            if p.get("username") != c["username"] or p.get("password") != c["password"] + c["security_token"]:
                return 400, {"error": "invalid_grant",
                             "error_description": "username or password (+ security token) is wrong"}
        elif grant_type == "refresh_token":
            if self.refresh.check(p.get("refresh_token")) is None:
                return 400, {"error": "invalid_grant", "error_description": "refresh_token is invalid or expired"}
        else:
            return 400, {"error": "unsupported_grant_type", "error_description": f"grant_type {grant_type!r}"}
        access = self._new_token()
        self.access.issue(access, c["user_id"], self.access_ttl_s)
        refresh = p.get("refresh_token") if grant_type == "refresh_token" else self._new_token()
        self.refresh.issue(refresh, c["user_id"], REFRESH_TTL_S)
        return 200, {
            "access_token": access, "refresh_token": refresh, "token_type": "Bearer",
            "expires_in": int(self.access_ttl_s), "scope": "all", "tenant_id": str(c["tenant_id"]),
            "login_type": "", "encryption_key": "", "client_id": c["client_id"],
            "passport_id": str(c["user_id"]), "mobile_params": "", "instance_uri": host,
        }


def create_crm_app(directory: Path, faults: Faults, access_ttl_s: float = ACCESS_TTL_S) -> ASGIApp:
    """The CRM ASGI app (FastAPI behind the fault middleware) over ``directory``."""
    creds = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))["crm"]
    store = CrmStore(directory / "crm.db", creds["user_id"])
    auth = CrmAuth(creds, access_ttl_s)
    app = FastAPI(title="销售易 CRM sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    def user_of(request: Request) -> int | None:
        return auth.access.check(_bearer(request.headers))

    @app.api_route(TOKEN_PATH, methods=["GET", "POST"])
    async def token(request: Request) -> JSONResponse:
        status, body = auth.grant(await _params(request), request.headers.get("host", ""))
        return JSONResponse(body, status_code=status)

    @app.post("/rest/data/v2.0/query/xoql")
    async def query(request: Request) -> JSONResponse:
        if user_of(request) is None:
            return JSONResponse(EXPIRED, status_code=401)
        p = await _params(request)
        try:
            data = await run_in_threadpool(store.query, p.get("xoql", ""))
        except CrmError as exc:
            return _error(exc)
        return JSONResponse(_query_envelope(data))

    @app.post("/rest/data/v2.0/query/xoqlScroll")
    async def scroll(request: Request) -> JSONResponse:
        if user_of(request) is None:
            return JSONResponse(EXPIRED, status_code=401)
        p = await _params(request)
        try:
            batch = int(p.get("batchCount") or 2000)
        except ValueError:
            return _error(CrmError(XOQL_LIMIT, "batchCount must be an integer"))
        try:
            data, locator = await run_in_threadpool(store.scroll, p.get("xoql", ""), batch,
                                                    p.get("queryLocator", ""))
        except CrmError as exc:
            return _error(exc)
        return JSONResponse({**_query_envelope(data), "queryLocator": locator})

    async def body_data(request: Request) -> Any:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            raise CrmError(BAD_BODY, "body is not valid JSON", 400) from None
        if not isinstance(body, dict) or "data" not in body:
            raise CrmError(BAD_BODY, 'body must be {"data": {...}}', 400)
        return body["data"]

    def parse_id(raw: str) -> int:
        if not raw.isdigit():
            raise CrmError(NOT_FOUND, f"record id {raw!r} does not exist", 404)
        return int(raw)

    @app.post("/rest/data/v2.0/xobjects/{api_key}")
    async def create(api_key: str, request: Request) -> JSONResponse:
        user = user_of(request)
        if user is None:
            return JSONResponse(EXPIRED, status_code=401)
        try:
            new_id = await run_in_threadpool(store.create, api_key, await body_data(request), user)
        except CrmError as exc:
            return _error(exc)
        return JSONResponse({"code": "200", "msg": "OK", "data": {"id": new_id}})

    @app.get("/rest/data/v2.0/xobjects/{api_key}/{record_id}")
    async def get(api_key: str, record_id: str, request: Request) -> JSONResponse:
        if user_of(request) is None:
            return JSONResponse(EXPIRED, status_code=401)
        try:
            record = await run_in_threadpool(store.get, api_key, parse_id(record_id))
        except CrmError as exc:
            return _error(exc)
        return JSONResponse({"code": "200", "msg": "OK", "data": record})

    @app.patch("/rest/data/v2.0/xobjects/{api_key}/{record_id}")
    async def update(api_key: str, record_id: str, request: Request) -> JSONResponse:
        user = user_of(request)
        if user is None:
            return JSONResponse(EXPIRED, status_code=401)
        try:
            rid = parse_id(record_id)
            await run_in_threadpool(store.update, api_key, rid, await body_data(request), user)
        except CrmError as exc:
            return _error(exc)
        return JSONResponse({"code": "200", "msg": "OK", "data": {"id": rid}})

    @app.delete("/rest/data/v2.0/xobjects/{api_key}/{record_id}")
    async def delete(api_key: str, record_id: str, request: Request) -> JSONResponse:
        if user_of(request) is None:
            return JSONResponse(EXPIRED, status_code=401)
        try:
            rid = parse_id(record_id)
            await run_in_threadpool(store.delete, api_key, rid)
        except CrmError as exc:
            return _error(exc)
        return JSONResponse({"code": "200", "msg": "OK", "data": {"id": rid}})

    def live_token(scope: Scope) -> str | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        token = _bearer(headers)
        return token if auth.access.check(token) is not None else None

    return FaultMiddleware(
        app, faults, token_paths=(TOKEN_PATH,), live_token=live_token, revoke=auth.access.revoke,
        expired=lambda: (401, EXPIRED),
        error_body=lambda status, msg: {"code": str(status), "msg": msg},
        extension=OrdersControl(store, directory),  # /__sandbox/crm/orders/after-push (crm_orders.py)
    )
