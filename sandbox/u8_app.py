"""用友 U8 OpenAPI stand-in: /system/token, /system/tradeid, /api/user/login_v2,
/api/customer/add|edit|get, (u8_orders.py) /api/saleorder/* and (u8_accept.py) /api/accept/add.

Every answer is HTTP 200 with an ``errcode`` string, as the platform does (a token refusal can
be switched to another status: ``/__sandbox/u8/tokens``); the data goes into ``<dir>/u8.db``
(the same file ODBC readers see).  Credentials: ``<dir>/credentials.json``.

Adds answer the documented asynchronous way (protocol notes U1): the client fetches a
``tradeid`` from ``/system/tradeid``, POSTs with it and gets ``{"errcode": "0", "errmsg": "",
"id": "", "tradeid": ..., "url": ...}``; the voucher's code (or U8's refusal of it) is read from
``url``, which answers "not ready yet" (``errcode`` "0", empty ``id``) to the first poll of each
trade (``/__sandbox/u8/results`` sets how many). ``sync=1`` is refused: no public client uses it.
Voucher actions run as the U8 user logged in with ``user/login_v2`` under the same tradeid, else
as the EAI default user.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from . import u8_orders
from . import u8_accept
from .faults import ASGIApp, FaultMiddleware, Faults, Scope
from .tokens import TokenStore
from .u8_store import BAD_APP, BAD_FIELD, BAD_PARAMS, BAD_TOKEN, U8Error, U8Store, entity_body

TOKEN_PATH = "/system/token"
TRADEID_PATH = "/system/tradeid"
LOGIN_PATH = "/api/user/login_v2"
RESULT_PATH = "/api/result"  # ours: the real platform names its own result URL in each answer
TOKEN_TTL_S = 7200
#: ``expire_token`` spares tokens younger than this: a real token does not expire seconds after it
#: was issued, and a fresh token refused is a configuration problem the connector reports as such.
FRESH_S = 5.0
EXPIRED = {"errcode": BAD_TOKEN, "errmsg": "token不存在或已过期 (token missing or expired)"}


def _ok(**extra: Any) -> JSONResponse:
    return JSONResponse({"errcode": "0", "errmsg": "", **extra})


def _fail(exc: U8Error) -> JSONResponse:
    return JSONResponse({"errcode": exc.errcode, "errmsg": exc.errmsg}, status_code=exc.status)


class U8Gate:
    """App credentials, the U8 users that may log in, and the common URL parameters every call
    carries; how a refused token is answered (``/__sandbox/u8/tokens``)."""

    def __init__(self, creds: dict[str, Any], ttl_s: float) -> None:
        self.creds = creds
        self.tokens = TokenStore()
        self.ttl_s = ttl_s
        self.refusal: tuple[int, str, str] = (200, EXPIRED["errcode"], EXPIRED["errmsg"])
        self.refuse_every_token = False
        self.fresh_s = FRESH_S

    def issue(self, p: dict[str, str]) -> dict[str, Any]:
        c = self.creds
        if (p.get("app_key"), p.get("app_secret"), p.get("from_account")) != \
                (c["app_key"], c["app_secret"], c["from_account"]):
            raise U8Error(BAD_APP, "app_key, app_secret or from_account is wrong")
        token = secrets.token_hex(16)
        self.tokens.issue(token, c["app_key"], self.ttl_s)
        return {"id": token, "expiresIn": int(self.ttl_s)}

    def refused(self) -> U8Error:
        status, code, msg = self.refusal
        return U8Error(code, msg, status)

    def check_token(self, p: dict[str, str]) -> None:
        """The token is live and the app's (by default errcode 20003: fetch a new token)."""
        if self.refuse_every_token or self.tokens.check(p.get("token")) != self.creds["app_key"] \
                or p.get("app_key") != self.creds["app_key"]:
            raise self.refused()

    def check(self, p: dict[str, str]) -> None:
        """Token first, then the account parameters."""
        self.check_token(p)
        for name in ("from_account", "to_account", "ds_sequence"):
            if p.get(name) != str(self.creds[name]):
                raise U8Error(BAD_PARAMS, f"URL parameter {name} is missing or wrong")

    def expirable(self, token: str | None) -> bool:
        """A live token old enough for the ``expire_token`` fault (see FRESH_S)."""
        age = self.tokens.age(token)
        return age is not None and age >= self.fresh_s

    def operator(self, user: Any) -> str:
        """The name of the U8 user ``{"user_id", "password"}`` names (errcode 20001 if none)."""
        known = self.creds.get("operator") or {}
        if not isinstance(user, dict) or not known or \
                (user.get("user_id"), user.get("password")) != (known.get("user_id"), known.get("password")):
            raise U8Error(BAD_APP, "user_id or password is wrong")
        return str(known.get("name") or known["user_id"])


class Trades:
    """Trade ids (``/system/tradeid``), the user logged in under each, and what each add did,
    answered through the add's result URL."""

    def __init__(self, pending_polls: int = 1) -> None:
        self._lock = threading.Lock()
        self._trades: dict[str, dict[str, Any]] = {}
        self.pending_polls = pending_polls

    def issue(self) -> str:
        tradeid = str(uuid.uuid4())
        with self._lock:
            self._trades[tradeid] = {"user": None, "result": None, "polls": 0}
        return tradeid

    def _trade(self, tradeid: str | None) -> dict[str, Any]:
        trade = self._trades.get(tradeid or "")
        if trade is None:
            raise U8Error(BAD_PARAMS, f"tradeid {tradeid!r} was not issued by {TRADEID_PATH}")
        return trade

    def login(self, tradeid: str | None, user_id: str, name: str) -> None:
        with self._lock:
            self._trade(tradeid)["user"] = (user_id, name)

    def operator(self, tradeid: str | None, voucher: dict[str, Any]) -> str | None:
        """The name of the user logged in under ``tradeid`` (None: the EAI default user); a
        ``user_id`` in the voucher body must be that user."""
        with self._lock:
            user = self._trade(tradeid)["user"] if tradeid else None
        named = voucher.get("user_id") or voucher.get("person_code")
        if named and (user is None or str(named) != user[0]):
            raise U8Error(BAD_PARAMS, f"user_id {named} is not logged in under this tradeid ({LOGIN_PATH} first)")
        return user[1] if user else None

    async def accept(self, request: Request, p: dict[str, str], work: Callable[[], str]) -> JSONResponse:
        """Run an add (``work`` returns the voucher's code or raises U8Error) and answer as the
        platform does: accepted, with the url its result is read from."""
        if p.get("sync") not in (None, "", "0"):
            raise U8Error(BAD_PARAMS, "sync=1 is not served: read the result from the url of the answer")
        tradeid = p.get("tradeid") or self.issue()  # openapi4j's addByBizId posts biz_id alone
        with self._lock:
            self._trade(tradeid)
        try:
            result = {"errcode": "0", "errmsg": "", "id": await run_in_threadpool(work)}
        except U8Error as exc:
            result = {"errcode": exc.errcode, "errmsg": exc.errmsg}
        with self._lock:
            self._trade(tradeid)["result"] = result
        url = f"{str(request.base_url).rstrip('/')}{RESULT_PATH}?{urlencode({'tradeid': tradeid})}"
        return _ok(id="", tradeid=tradeid, url=url)

    def poll(self, tradeid: str | None) -> dict[str, Any]:
        with self._lock:
            trade = self._trade(tradeid)
            if trade["result"] is None:
                raise U8Error(BAD_PARAMS, f"tradeid {tradeid} has no add behind it")
            trade["polls"] += 1
            if trade["polls"] <= self.pending_polls:
                return {"errcode": "0", "errmsg": "处理中 (not ready yet)", "id": "", "tradeid": tradeid}
            return {**trade["result"], "tradeid": tradeid}


class U8Controls:
    """``/__sandbox/u8/tokens`` (how a refused token is answered, refuse every token, revoke all,
    how young a token ``expire_token`` spares) and ``/__sandbox/u8/results`` (polls answered
    "not ready yet"), beside the warehouse's ``/__sandbox/u8/ship``."""

    def __init__(self, gate: U8Gate, trades: Trades, warehouse: Any) -> None:
        self.gate, self.trades, self.warehouse = gate, trades, warehouse

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        if path not in ("/__sandbox/u8/tokens", "/__sandbox/u8/results"):
            return self.warehouse.control(method, path, body)
        if method != "POST":
            return 405, {"ok": False, "error": "POST only"}
        try:
            cfg = json.loads(body or b"{}")
            if not isinstance(cfg, dict):
                raise ValueError("body must be a JSON object")
            return 200, {"ok": True, **(self._tokens(cfg) if path.endswith("/tokens") else self._results(cfg))}
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"ok": False, "error": str(exc)}

    def _tokens(self, cfg: dict[str, Any]) -> dict[str, Any]:
        unknown = set(cfg) - {"refusal", "refuse_every_token", "revoke", "fresh_seconds"}
        if unknown:
            raise ValueError(f"unknown keys: {sorted(unknown)}")
        g = self.gate
        if "refusal" in cfg:
            r = cfg["refusal"] or {}
            g.refusal = (int(r.get("status", 200)), str(r.get("errcode", EXPIRED["errcode"])),
                         str(r.get("errmsg", EXPIRED["errmsg"])))
        g.refuse_every_token = bool(cfg.get("refuse_every_token", g.refuse_every_token))
        g.fresh_s = float(cfg.get("fresh_seconds", g.fresh_s))
        revoked = g.tokens.revoke_all() if cfg.get("revoke") else 0
        return {"refusal": list(g.refusal), "refuse_every_token": g.refuse_every_token, "fresh_seconds": g.fresh_s,
                "revoked": revoked}

    def _results(self, cfg: dict[str, Any]) -> dict[str, Any]:
        polls = int(cfg["pending_polls"])
        if polls < 0:
            raise ValueError("pending_polls must be 0 or more")
        self.trades.pending_polls = polls
        return {"pending_polls": polls}

    def stats(self) -> dict[str, Any]:
        return self.warehouse.stats()

    def reset(self) -> None:
        self.warehouse.reset()


def create_u8_app(directory: Path, faults: Faults, token_ttl_s: float = TOKEN_TTL_S) -> ASGIApp:
    """The U8 ASGI app (FastAPI behind the fault middleware) over ``directory``."""
    creds = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))["u8"]
    store = U8Store(directory / "u8.db")
    gate = U8Gate(creds, token_ttl_s)
    trades = Trades()
    app = FastAPI(title="用友 U8 OpenAPI sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(TOKEN_PATH)
    async def token(request: Request) -> JSONResponse:
        try:
            return _ok(token=gate.issue(dict(request.query_params)))
        except U8Error as exc:
            return _fail(exc)

    @app.get(TRADEID_PATH)
    async def tradeid(request: Request) -> JSONResponse:
        """``?from_account&app_key&token`` → ``{"errcode": "0", "trade": {"id": ...}}``."""
        p = dict(request.query_params)
        try:
            gate.check_token(p)
            if p.get("from_account") != creds["from_account"]:
                raise U8Error(BAD_PARAMS, "URL parameter from_account is missing or wrong")
        except U8Error as exc:
            return _fail(exc)
        return _ok(trade={"id": trades.issue()})

    @app.post(LOGIN_PATH)
    async def login(request: Request) -> JSONResponse:
        """``?…&tradeid``, body ``{"user": {"user_id", "password"}}``: the voucher actions posted
        with this tradeid run as that user."""
        p = dict(request.query_params)
        try:
            gate.check(p)
            user = entity_body(await request.body(), "user")
            trades.login(p.get("tradeid"), str(user.get("user_id")), gate.operator(user))
        except U8Error as exc:
            return _fail(exc)
        return _ok()

    @app.get(RESULT_PATH)
    async def result(request: Request) -> JSONResponse:
        try:
            return JSONResponse(trades.poll(request.query_params.get("tradeid")))
        except U8Error as exc:
            return _fail(exc)

    @app.post("/api/customer/add")
    async def add(request: Request) -> JSONResponse:
        p = dict(request.query_params)
        try:
            gate.check(p)
            customer = entity_body(await request.body(), "customer")
            return await trades.accept(request, p, lambda: store.add(customer, p.get("biz_id") or None))
        except U8Error as exc:
            return _fail(exc)

    @app.post("/api/customer/edit")
    async def edit(request: Request) -> JSONResponse:
        p = dict(request.query_params)
        try:
            gate.check(p)
            await run_in_threadpool(store.edit, entity_body(await request.body(), "customer"))
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
    warehouse = u8_orders.mount(app, directory, gate.check, _ok, _fail, trades)

    u8_accept.register(app, gate, trades, directory, _fail)  # 收款单 (accept/add), see sandbox/u8_accept.py

    def live_token(scope: Scope) -> str | None:
        query = parse_qs(scope.get("query_string", b"").decode("utf-8", "replace"))
        token = (query.get("token") or [None])[0]
        return token if gate.expirable(token) else None

    return FaultMiddleware(
        # the session calls (token, tradeid, login) change no business data: answers spoilt after
        # the fact (malformed, truncated, lost) are for the calls that do
        app, faults, token_paths=(TOKEN_PATH, TRADEID_PATH, LOGIN_PATH), live_token=live_token, revoke=gate.tokens.revoke,
        expired=lambda: (gate.refusal[0], {"errcode": gate.refusal[1], "errmsg": gate.refusal[2]}),
        error_body=lambda status, msg: {"errcode": str(status), "errmsg": msg},
        extension=U8Controls(gate, trades, warehouse),
    )
