"""钉钉 approvals stand-in: api.dingtalk.com v1.0 oauth2 and workflow, and the app's event push.

As DingTalk documents it (docs/protocols.md, 钉钉): ``POST /v1.0/oauth2/accessToken`` (JSON
``{appKey, appSecret}`` → ``{accessToken, expireIn: 7200}``, the same token again inside its
lifetime); every workflow call needs ``x-acs-dingtalk-access-token`` (else 400
``InvalidAuthentication`` 不合法的access_token); errors are ``{code, message, requestid}``.
``POST /v1.0/workflow/processInstances`` starts an instance (``deptId`` missing: 400 invalidParameter;
a component the form lacks: 400 illegalComponent; an unknown processCode: 400 processCodeError);
``GET`` it back (``success`` is the string "true"), ``POST /v1.0/workflow/processes/instanceIds/query``
lists ids 20 at most a page (``nextToken`` a string).

The legacy server API on the same instances, as oapi.dingtalk.com answers it (``{errcode, errmsg}``
with HTTP 200): ``GET /gettoken?appkey=&appsecret=`` (40096 不合法的appKey或appSecret, as seen from
the real server, fs:66386426550), every call with ``?access_token=`` (40014 不合法的access_token); a
refused parameter is 40035; ``POST /topapi/processinstance/create``,
``/topapi/processinstance/get`` and ``/topapi/processinstance/listids`` (``size`` at most 20, a numeric
``next_cursor``) with the old snake_case fields.

The approvers decide by a fate drawn from the instance's key field on the sandbox's day clock
(``/__sandbox/dingtalk/advance``) or at once (``/__sandbox/dingtalk/decide``); each decision is pushed to
the app's callback URL (``/__sandbox/dingtalk/callback`` sets it) as DingTalk does: the
``bpms_instance_change`` event encrypted (AES-256-CBC, 32-byte PKCS#7 blocks, appKey as receiver id)
and signed (SHA-1 over token, timestamp, nonce, encrypt), written here from the published scheme
with its own code (it shares none with the hub's connector).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sqlite3
import struct
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .faults import FaultMiddleware, Faults

KEY_FIELD = "HUB编号"
#: the tenant's approval forms: processCode → (name, component names)
PROCESSES = {
    "PROC-TJSP-0001": ("特价审批", {"客户名称", "产品编码", "产品名称", "申请单价", "标准单价", "底价", "数量", "CRM订单",
                                     KEY_FIELD}),
    "PROC-CXY-0002": ("超信用额度审批", {"客户名称", "客户编码", "CRM订单", "订单金额", "信用额度", "应收余额", "可用额度",
                                        "超出金额", KEY_FIELD}),
}
APPROVER = "manager0231"
DAY_MS = 86_400_000


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "requestid": str(uuid.uuid4()).upper()}, status_code=status)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(ms / 1000))


class Pusher:
    """The app's event push, as DingTalk sends it."""

    def __init__(self, app_key: str) -> None:
        self.app_key = app_key
        self.url: str | None = None
        self.token = self.aes_key = ""
        self.sent: list[dict[str, Any]] = []

    def seal(self, message: str) -> dict[str, str]:
        key = base64.b64decode(self.aes_key + "=")
        raw = message.encode()
        plain = os.urandom(16) + struct.pack(">I", len(raw)) + raw + self.app_key.encode()
        pad = 32 - len(plain) % 32
        enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        encrypt = base64.b64encode(enc.update(plain + bytes([pad]) * pad) + enc.finalize()).decode()
        stamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(4)
        sig = hashlib.sha1("".join(sorted([self.token, stamp, nonce, encrypt])).encode()).hexdigest()
        return {"query": {"signature": sig, "timestamp": stamp, "nonce": nonce}, "body": {"encrypt": encrypt}}

    def push(self, event: dict[str, Any]) -> None:
        if not self.url:
            return
        sealed = self.seal(json.dumps(event, ensure_ascii=False))
        self.sent.append(sealed | {"event": event})
        try:
            requests.post(self.url, params=sealed["query"], json=sealed["body"], timeout=5)
        except requests.RequestException:
            pass   # DingTalk retries a failed push later; the hub's polling is the safety net either way


class DingTalk:
    def __init__(self, directory: Path) -> None:
        creds = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))["dingtalk"]
        self.app_key, self.app_secret = creds["app_key"], creds["app_secret"]
        self.corp_id = creds["corp_id"]
        self.users = {creds["originator_user_id"], APPROVER}
        self.db = directory / "dingtalk.db"
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}
        self.day = 0
        self.pusher = Pusher(self.app_key)
        with self._con() as con:
            con.executescript("""
                create table if not exists instance (id text primary key, process_code text, originator text,
                    dept_id integer, created_ms integer, form_json text, status text, result text, fate text,
                    due_day integer, finish_ms integer, remark text);
            """)

    def _con(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    def now_ms(self) -> int:
        """DingTalk's clock: real time, moved on by the days the approvers were given (advance)."""
        return int(time.time() * 1000) + self.day * DAY_MS

    def access_token(self, body: dict[str, Any], now: float) -> JSONResponse:
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return _error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        live = [t for t, exp in self.tokens.items() if exp > now + 60]
        token = live[0] if live else uuid.uuid4().hex
        self.tokens[token] = now + 7200
        return JSONResponse({"accessToken": token, "expireIn": 7200})

    def authorised(self, request: Request, now: float) -> bool:
        token = request.headers.get("x-acs-dingtalk-access-token", "")
        return self.tokens.get(token, 0) > now

    def start(self, body: dict[str, Any]) -> JSONResponse:
        code = str(body.get("processCode") or "")
        if code not in PROCESSES:
            return _error(400, "processCodeError", f"processCode {code} 不存在")
        if body.get("originatorUserId") not in self.users:
            return _error(400, "processInstanceInvalidParameter", "originatorUserId 不存在")
        if body.get("deptId") in (None, ""):
            return _error(400, "invalidParameter", "deptId 不能为空")
        values = body.get("formComponentValues") or []
        unknown = sorted({str(v.get("name")) for v in values} - PROCESSES[code][1])
        if unknown:
            return _error(400, "illegalComponent", f"表单组件不存在: {unknown}")
        key = next((str(v.get("value")) for v in values if v.get("name") == KEY_FIELD), "")
        digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
        fate = ("agree", "agree", "agree", "agree", "agree", "agree", "refuse", "refuse", "agree", "slow")[digest % 10]
        iid = str(uuid.uuid4())
        with self.lock, self._con() as con:
            con.execute("insert into instance values (?, ?, ?, ?, ?, ?, 'RUNNING', '', ?, ?, null, null)",
                        (iid, code, body["originatorUserId"], int(body["deptId"]), self.now_ms(),
                         json.dumps(values, ensure_ascii=False), fate, self.day + (14 if fate == "slow" else 1 + digest % 3)))
        return JSONResponse({"instanceId": iid})

    def get(self, iid: str) -> JSONResponse:
        with self._con() as con:
            r = con.execute("select * from instance where id = ?", (iid,)).fetchone()
        if r is None:
            return _error(400, "processInstanceNotExist", "审批实例不存在")
        records = [{"userId": r["originator"], "date": _iso(r["created_ms"]), "type": "START_PROCESS_INSTANCE",
                    "result": "NONE", "remark": ""}]
        tasks = [{"taskId": int(r["created_ms"] % 10**9), "userId": APPROVER,
                  "status": "RUNNING" if r["status"] == "RUNNING" else "COMPLETED",
                  "result": {"agree": "AGREE", "refuse": "REFUSE"}.get(r["result"], "NONE"),
                  "createTime": _iso(r["created_ms"])}]
        if r["status"] != "RUNNING":
            records.append({"userId": APPROVER, "showName": "王经理", "date": _iso(r["finish_ms"]),
                            "type": "EXECUTE_TASK_NORMAL", "result": r["result"].upper(), "remark": r["remark"] or ""})
        name, _ = PROCESSES[r["process_code"]]
        return JSONResponse({"result": {
            "title": f"集成账号提交的{name}", "businessId": str(r["created_ms"]), "originatorUserId": r["originator"],
            "originatorDeptId": str(r["dept_id"]), "status": r["status"], "result": r["result"],
            "createTime": _iso(r["created_ms"]), "finishTime": _iso(r["finish_ms"]) if r["finish_ms"] else None,
            "operationRecords": records, "tasks": tasks, "formComponentValues": json.loads(r["form_json"]),
            "bizAction": "NONE"}, "success": "true"})

    def list_ids(self, body: dict[str, Any]) -> JSONResponse:
        size = int(body.get("maxResults") or 0)
        if size < 1 or size > 20:
            return _error(400, "invalidMaxResults", "maxResults 不能超过 20")
        start, offset = int(body.get("startTime") or 0), int(body.get("nextToken") or 0)
        users = set(body.get("userIds") or [])
        with self._con() as con:
            ids = [r["id"] for r in con.execute(
                "select id, originator from instance where process_code = ? and created_ms >= ? order by created_ms, id",
                (body.get("processCode"), start)) if not users or r["originator"] in users]
        page = ids[offset:offset + size]
        more = offset + size < len(ids)
        return JSONResponse({"result": {"list": page, **({"nextToken": str(offset + size)} if more else {})},
                             "success": True})

    # --- the legacy server API (topapi) ------------------------------------------------------------

    def legacy_token(self, appkey: str, appsecret: str, now: float) -> JSONResponse:
        if appkey != self.app_key or appsecret != self.app_secret:
            return JSONResponse({"errcode": 40096, "errmsg": "不合法的appKey或appSecret"})
        live = [t for t, exp in self.tokens.items() if exp > now + 60]
        token = live[0] if live else uuid.uuid4().hex
        self.tokens[token] = now + 7200
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    @staticmethod
    def _legacy(answer: JSONResponse) -> dict[str, Any]:
        return json.loads(answer.body)

    def legacy_create(self, body: dict[str, Any]) -> JSONResponse:
        answer = self.start({"processCode": body.get("process_code"), "originatorUserId": body.get("originator_user_id"),
                             "deptId": body.get("dept_id"), "formComponentValues": body.get("form_component_values")})
        data = self._legacy(answer)
        if answer.status_code != 200:
            return JSONResponse({"errcode": 40035, "errmsg": data["message"]})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "process_instance_id": data["instanceId"],
                             "request_id": uuid.uuid4().hex[:12]})

    def legacy_get(self, body: dict[str, Any]) -> JSONResponse:
        answer = self.get(str(body.get("process_instance_id") or ""))
        data = self._legacy(answer)
        if answer.status_code != 200:
            return JSONResponse({"errcode": 40035, "errmsg": data["message"]})
        r = data["result"]
        return JSONResponse({"errcode": 0, "errmsg": "ok", "request_id": uuid.uuid4().hex[:12], "process_instance": {
            "title": r["title"], "create_time": r["createTime"], "finish_time": r["finishTime"],
            "originator_userid": r["originatorUserId"], "originator_dept_id": r["originatorDeptId"],
            "status": r["status"], "result": r["result"], "business_id": r["businessId"],
            "form_component_values": r["formComponentValues"],
            "operation_records": [{"userid": x["userId"], "date": x["date"], "operation_type": x["type"],
                                   "operation_result": x["result"], "remark": x.get("remark", "")}
                                  for x in r["operationRecords"]],
            "tasks": [{"userid": t["userId"], "task_status": t["status"], "task_result": t["result"],
                       "create_time": t["createTime"], "taskid": str(t["taskId"])} for t in r["tasks"]]}})

    def legacy_list_ids(self, body: dict[str, Any]) -> JSONResponse:
        size = int(body.get("size") or 10)
        if size > 20:
            return JSONResponse({"errcode": 40035, "errmsg": "size 不能超过 20"})
        users = [u for u in str(body.get("userid_list") or "").split(",") if u]
        answer = self.list_ids({"processCode": body.get("process_code"), "startTime": body.get("start_time"),
                                "nextToken": body.get("cursor") or 0, "maxResults": size, "userIds": users})
        result = self._legacy(answer)["result"]
        return JSONResponse({"errcode": 0, "errmsg": "ok", "result": {
            "list": result["list"], **({"next_cursor": int(result["nextToken"])} if "nextToken" in result else {})}})

    def decide(self, con, iid: str, result: str, remark: str | None = None) -> bool:
        r = con.execute("select * from instance where id = ?", (iid,)).fetchone()
        if r is None or r["status"] != "RUNNING":
            return False
        finish = self.now_ms()
        remark = remark or ("同意" if result == "agree" else "价格低于公司底线，不同意")
        con.execute("update instance set status = 'COMPLETED', result = ?, finish_ms = ?, remark = ? where id = ?",
                    (result, finish, remark, iid))
        self.pusher.push({"EventType": "bpms_instance_change", "processInstanceId": iid, "corpId": self.corp_id,
                          "processCode": r["process_code"], "title": PROCESSES[r["process_code"]][0], "type": "finish",
                          "result": result, "staffId": r["originator"], "createTime": r["created_ms"],
                          "finishTime": finish, "bizCategoryId": "", "businessId": str(r["created_ms"]),
                          "BizId": str(uuid.uuid4())})
        return True

    def advance(self, days: int) -> dict[str, int]:
        done: dict[str, int] = {}
        with self.lock, self._con() as con:
            self.day += days
            for r in con.execute("select id, fate from instance where status = 'RUNNING' and due_day <= ?",
                                 (self.day,)).fetchall():
                result = "agree" if r["fate"] == "slow" else r["fate"]
                if self.decide(con, r["id"], result):
                    done[result] = done.get(result, 0) + 1
        return done


class _Control:
    def __init__(self, dt: DingTalk) -> None:
        self.dt = dt

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        data = json.loads(body or b"{}")
        if method == "POST" and path == "/__sandbox/dingtalk/callback":
            self.dt.pusher.url, self.dt.pusher.token, self.dt.pusher.aes_key = data.get("url"), data["token"], data["aes_key"]
            return 200, {"callback": self.dt.pusher.url}
        if method == "POST" and path == "/__sandbox/dingtalk/advance":
            return 200, {"decided": self.dt.advance(int(data.get("days", 1)))}
        if method == "POST" and path == "/__sandbox/dingtalk/decide":
            with self.dt.lock, self.dt._con() as con:
                ok = self.dt.decide(con, data["instanceId"], data["result"], data.get("remark"))
            return (200 if ok else 409), {"decided": ok}
        if method == "GET" and path == "/__sandbox/dingtalk/pushes":
            return 200, {"pushes": self.dt.pusher.sent}
        return None

    def stats(self) -> dict[str, Any]:
        with self.dt._con() as con:
            return {"dingtalk": {"instances": con.execute("select count(*) from instance").fetchone()[0]}}

    def reset(self) -> None:
        return None


def create_dingtalk_app(directory: Path, faults: Faults) -> Any:
    dt = DingTalk(directory)
    app = FastAPI(title="钉钉 approvals (sandbox)")

    @app.post("/v1.0/oauth2/accessToken")
    async def access_token(request: Request):
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "MissingBody", "body is mandatory for this action")
        return dt.access_token(body if isinstance(body, dict) else {}, time.time())

    def refused() -> JSONResponse:
        return _error(400, "InvalidAuthentication", "不合法的access_token")

    @app.post("/v1.0/workflow/processInstances")
    async def start(request: Request):
        return dt.start(await request.json()) if dt.authorised(request, time.time()) else refused()

    @app.get("/v1.0/workflow/processInstances")
    async def get(request: Request, processInstanceId: str = ""):
        return dt.get(processInstanceId) if dt.authorised(request, time.time()) else refused()

    @app.post("/v1.0/workflow/processes/instanceIds/query")
    async def list_ids(request: Request):
        return dt.list_ids(await request.json()) if dt.authorised(request, time.time()) else refused()

    @app.get("/gettoken")
    async def gettoken(appkey: str = "", appsecret: str = ""):
        return dt.legacy_token(appkey, appsecret, time.time())

    def legacy(request: Request, answer) -> JSONResponse:
        if dt.tokens.get(request.query_params.get("access_token", ""), 0) <= time.time():
            return JSONResponse({"errcode": 40014, "errmsg": "不合法的access_token"})
        return answer()

    @app.post("/topapi/processinstance/create")
    async def legacy_create(request: Request):
        body = await request.json()
        return legacy(request, lambda: dt.legacy_create(body))

    @app.post("/topapi/processinstance/get")
    async def legacy_get(request: Request):
        body = await request.json()
        return legacy(request, lambda: dt.legacy_get(body))

    @app.post("/topapi/processinstance/listids")
    async def legacy_list_ids(request: Request):
        body = await request.json()
        return legacy(request, lambda: dt.legacy_list_ids(body))

    def live_token(scope) -> str | None:
        headers = {k.decode(): v.decode() for k, v in scope.get("headers", [])}
        query = dict(urllib.parse.parse_qsl(scope.get("query_string", b"").decode()))
        return headers.get("x-acs-dingtalk-access-token") or query.get("access_token") or None

    def revoke(token: str) -> bool:
        return dt.tokens.pop(token, None) is not None

    return FaultMiddleware(
        app, faults, token_paths=("/v1.0/oauth2/accessToken", "/gettoken"), live_token=live_token, revoke=revoke,
        expired=None,   # both APIs refuse the revoked token themselves (v1.0: 400 InvalidAuthentication; topapi: 40014)
        error_body=lambda status, msg: {"code": "systemError", "message": msg, "requestid": str(uuid.uuid4()).upper()},
        extension=_Control(dt))
