"""The five shop platforms' stand-ins in one ASGI app (one port), behind the fault middleware.

Paths (each platform's own, so one host serves them all):
- 淘宝/天猫 TOP: ``/router/rest`` (shops_top.py)
- 京东 JOS: ``/routerjson`` (shops_jos.py)
- 拼多多: ``/api/router`` (shops_pdd.py)
- 抖店: ``/token/create``, ``/token/refresh``, ``/order/searchList``, ``/order/orderDetail``,
  ``/order/logisticsAdd``, ``/order/batchDecrypt`` (shops_doudian.py)
- 有赞: ``/auth/token``, ``/api/{name}/{version}`` (shops_youzan.py)
Control: ``/__sandbox/shops/*`` (shops_control.py) beside the common faults and stats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from . import shops_doudian, shops_jos, shops_pdd, shops_top, shops_youzan
from .faults import ASGIApp, FaultMiddleware, Faults
from .shops_control import Control
from .shops_world import World


async def _params(request: Request) -> tuple[dict[str, str], bytes]:
    """Query and form parameters merged (form wins), and the raw body."""
    body = await request.body()
    params = dict(request.query_params)
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params, body


def _json(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


def create_shops_app(directory: Path, faults: Faults) -> ASGIApp:
    world = World(directory)
    app = FastAPI(title="shop platforms sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    @app.api_route("/router/rest", methods=["GET", "POST"])
    async def top(request: Request) -> Response:
        params, _ = await _params(request)
        return _json(await run_in_threadpool(shops_top.call, world, params))

    @app.api_route("/routerjson", methods=["GET", "POST"])
    async def jos(request: Request) -> Response:
        params, _ = await _params(request)
        return _json(await run_in_threadpool(shops_jos.call, world, params))

    @app.post("/api/router")
    async def pdd(request: Request) -> Response:
        params, body = await _params(request)
        if "application/json" in request.headers.get("content-type", ""):
            params.update(shops_pdd.json_params(body))
        return _json(await run_in_threadpool(shops_pdd.call, world, params))

    @app.post("/auth/token")
    async def youzan_token(request: Request) -> Response:
        return _json(await run_in_threadpool(shops_youzan.token, world, await request.body()))

    @app.api_route("/api/{name}/{version}", methods=["GET", "POST"])
    async def youzan_api(name: str, version: str, request: Request) -> Response:
        params, body = await _params(request)
        status, answer = await run_in_threadpool(shops_youzan.call, world, name, version, params, body,
                                                 request.headers.get("content-type", ""))
        return _json(answer, status)

    @app.api_route("/{group}/{action}", methods=["GET", "POST"])
    async def doudian(group: str, action: str, request: Request) -> Response:
        params, body = await _params(request)
        return _json(await run_in_threadpool(shops_doudian.call, world, f"/{group}/{action}", params, body))

    def live_token(scope: dict[str, Any]) -> str | None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        token = query.get("access_token")
        return token if token and any(world.token_ok(p, token) for p in world.tokens) else None

    def revoke(token: str) -> bool:
        return any(store.revoke(token) for store in world.tokens.values())

    return FaultMiddleware(
        app, faults, token_paths=("/token/create", "/token/refresh", "/auth/token"),
        live_token=live_token, revoke=revoke,
        expired=lambda: (200, shops_doudian.error(shops_doudian.TOKEN_EXPIRED)),
        error_body=lambda status, msg: {"error_response": {"code": status, "msg": msg}},
        extension=Control(world),
    )
