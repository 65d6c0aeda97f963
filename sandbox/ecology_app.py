"""泛微 e-cology 9 stand-in: the ESB-less REST of ``/api/ec/dev/auth/*`` and ``/api/workflow/paService/*``.

What it checks, as e-cology does (docs/protocols.md, ../shared/reference/protocol_notes.md):

- ``POST /api/ec/dev/auth/regist`` with headers ``appid`` (a registered app, here the seed's) and
  ``cpk`` (the client's RSA public key, base64 DER): answers ``secrit`` and ``spk`` (the server's
  public key). Calling it again gives the same pair.
- ``POST /api/ec/dev/auth/applytoken`` with ``appid``, ``secret`` = RSA-PKCS#1 v1.5(spk, secrit) in
  base64 and ``time`` (lifetime, seconds): a token; a secret that does not decrypt to the app's
  secrit is refused.
- Every business call carries ``appid``, ``token`` and ``userid`` = RSA(spk, user id); the user is
  the one decrypted, never a cookie (the stand-in sets none).

The tenant (workflows 特价审批 101 and 超信用额度审批 102, forms ``formtable_main_101`` / ``_102``): a request is created
at node 申请人 (type 0) and, with ``isnextflow`` 1, submitted to 销售经理审批 (type 1). The approvers
decide by a fate drawn from the request title's hash, on the sandbox's day clock
(``POST /__sandbox/oa/advance {"days": n}``): most approve within 1-3 days (to 归档, type 3), some
reject (to 否决归档, type 3, status 否决), some return the request to the applicant (退回, type 0)
and some sit for two weeks. ``POST /__sandbox/oa/decide`` makes one decision now (tests).
A mainData field the form does not have is PARAM_ERROR, as the documentation says.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import threading
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .faults import FaultMiddleware, Faults

#: the tenant's workflows: workflowId → (name, main form table, its fields 数据库字段名 → 显示名)
WORKFLOWS = {
    "101": ("特价审批", "formtable_main_101", {
        "sqr": "申请人", "khbm": "客户编码", "khmc": "客户名称", "cpbm": "产品编码", "cpmc": "产品名称",
        "sqjg": "申请单价", "bzjg": "标准单价", "djxx": "底价", "zkl": "折扣率", "sl": "数量", "yxq": "有效期至",
        "ddh": "CRM订单", "sm": "说明"}),
    "102": ("超信用额度审批", "formtable_main_102", {
        "sqr": "申请人", "khbm": "客户编码", "khmc": "客户名称", "ddh": "CRM订单", "ddje": "订单金额",
        "xyed": "信用额度", "ysye": "应收余额", "yqje": "逾期金额", "wcdd": "未完成订单", "kyed": "可用额度",
        "cxje": "超出金额", "sm": "说明"}),
}
DETAIL_FIELDS = {"hh": "行号", "cpbm": "产品编码", "sl": "数量", "sqjg": "申请单价"}
NODES = {"start": ("1001", "申请人", "0"), "manager": ("1002", "销售经理审批", "1"),
         "archive": ("1004", "归档", "3"), "rejected": ("1005", "否决归档", "3")}
USERS = {"1": "系统管理员", "23": "集成账号", "31": "王经理", "41": "李总"}
APPROVER = "31"
BASE_DAY = date(2025, 6, 2)


def _public_b64(key: rsa.RSAPublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


class Ecology:
    """The tenant's state in ``ecology.db`` (kept across restarts, readable by tests as the oracle)."""

    def __init__(self, directory: Path) -> None:
        creds = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))["ecology"]
        self.appid = creds["appid"]
        self.db = directory / "ecology.db"
        self.lock = threading.Lock()
        with self._con() as con:
            con.executescript("""
                create table if not exists app (appid text primary key, cpk text, secrit text, private_pem text);
                create table if not exists token (token text primary key, appid text, expires real);
                create table if not exists clock (day integer);
                create table if not exists request (requestid integer primary key autoincrement, workflowid text,
                    requestname text, creatorid text, created_day integer, main_json text, detail_json text,
                    node text, status text, fate text, due_day integer, last_day integer);
                create table if not exists log (id integer primary key autoincrement, requestid integer, nodeid text,
                    nodename text, operator text, operatorname text, day integer, remark text, operatetype text,
                    logtype text);
            """)
            if con.execute("select count(*) from clock").fetchone()[0] == 0:
                con.execute("insert into clock values (0)")
            if con.execute("select count(*) from sqlite_sequence where name = 'request'").fetchone()[0] == 0:
                con.execute("insert into sqlite_sequence (name, seq) values ('request', 3038000)")

    def _con(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    # --- auth ---------------------------------------------------------------------------------------

    def regist(self, appid: str, cpk: str) -> dict[str, Any]:
        if appid != self.appid:
            return {"code": -1, "status": False, "msg": f"appid {appid!r} 未在 ECOLOGY 中登记 (ecology_ecology_dev)"}
        try:
            serialization.load_der_public_key(base64.b64decode(cpk))
        except Exception:
            return {"code": -1, "status": False, "msg": "cpk 不是有效的 RSA 公钥"}
        with self.lock, self._con() as con:
            row = con.execute("select * from app where appid = ?", (appid,)).fetchone()
            if row is None:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
                con.execute("insert into app values (?, ?, ?, ?)", (appid, cpk, str(uuid.uuid4()), pem))
                row = con.execute("select * from app where appid = ?", (appid,)).fetchone()
        key = self._private(row["private_pem"])
        return {"code": 0, "status": True, "msg": "ok", "secrit": row["secrit"], "secret": row["secrit"],
                "spk": _public_b64(key.public_key())}

    @staticmethod
    def _private(pem: str) -> rsa.RSAPrivateKey:
        return serialization.load_pem_private_key(pem.encode(), password=None)  # type: ignore[return-value]

    def _decrypt(self, appid: str, value: str) -> str | None:
        with self._con() as con:
            row = con.execute("select private_pem from app where appid = ?", (appid,)).fetchone()
        if row is None:
            return None
        try:
            return self._private(row["private_pem"]).decrypt(base64.b64decode(value), padding.PKCS1v15()).decode()
        except Exception:
            return None

    def applytoken(self, appid: str, secret: str, lifetime: str, now: float) -> dict[str, Any]:
        with self._con() as con:
            row = con.execute("select secrit from app where appid = ?", (appid,)).fetchone()
        if row is None:
            return {"code": -1, "status": False, "msg": "请先调用 regist 注册"}
        if self._decrypt(appid, secret) != row["secrit"]:
            return {"code": -1, "status": False, "msg": "secret 解密失败或不匹配"}
        seconds = float(lifetime) if lifetime and lifetime.replace(".", "", 1).isdigit() else 1800.0
        token = uuid.uuid4().hex
        with self.lock, self._con() as con:
            con.execute("insert into token values (?, ?, ?)", (token, appid, now + seconds))
        return {"code": 0, "status": True, "msg": "获取成功!", "token": token}

    def user_of(self, headers: Any, now: float) -> str | None:
        """The calling user, or None: an unknown app or token, an expired token, a userid that does
        not decrypt with this app's key or names nobody."""
        appid, token, userid = headers.get("appid", ""), headers.get("token", ""), headers.get("userid", "")
        with self._con() as con:
            row = con.execute("select expires from token where token = ? and appid = ?", (token, appid)).fetchone()
        if row is None or row["expires"] < now:
            return None
        user = self._decrypt(appid, userid)
        return user if user in USERS else None

    def live_token(self, headers: dict[str, str]) -> str | None:
        return headers.get("token") or None

    def revoke(self, token: str) -> bool:
        with self.lock, self._con() as con:
            return con.execute("delete from token where token = ?", (token,)).rowcount > 0

    # --- the workflow -------------------------------------------------------------------------------

    def today(self, con: sqlite3.Connection) -> int:
        return int(con.execute("select day from clock").fetchone()[0])

    def create(self, user: str, form: dict[str, str]) -> dict[str, Any]:
        workflow = form.get("workflowId") or ""
        if workflow not in WORKFLOWS:
            return {"code": "NO_PERMISSION", "errMsg": {"workflowId": f"用户 {user} 没有流程 {workflow} 的创建权限"}}
        fields = WORKFLOWS[workflow][2]
        name = (form.get("requestName") or "").strip()
        if not name:
            return {"code": "PARAM_ERROR", "errMsg": {"requestName": "流程标题不能为空"}}
        try:
            main = json.loads(form.get("mainData") or "")
            detail = json.loads(form["detailData"]) if form.get("detailData") else []
            other = json.loads(form["otherParams"]) if form.get("otherParams") else {}
        except ValueError:
            return {"code": "PARAM_ERROR", "errMsg": {"mainData": "参数格式错误", "workflowId": "0"}}
        if not isinstance(main, list) or not all(isinstance(f, dict) and "fieldName" in f for f in main):
            return {"code": "PARAM_ERROR", "errMsg": {"mainData": "mainData 应为 [{fieldName, fieldValue}]"}}
        unknown = [f["fieldName"] for f in main if f["fieldName"] not in fields]
        for table in detail:
            for rec in table.get("workflowRequestTableRecords") or []:
                unknown += [f["fieldName"] for f in rec.get("workflowRequestTableFields") or []
                            if f.get("fieldName") not in DETAIL_FIELDS]
        if unknown:
            return {"code": "PARAM_ERROR", "errMsg": {"mainData": f"表单中不存在字段 {sorted(set(unknown))}"}}
        submit = str(other.get("isnextflow", "1")) == "1"
        digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
        fate = ("approve", "approve", "approve", "approve", "approve", "approve", "reject", "reject", "return",
                "slow")[digest % 10]
        with self.lock, self._con() as con:
            day = self.today(con)
            due = day + {"approve": 1 + digest % 3, "reject": 2, "return": 1, "slow": 14}[fate]
            cur = con.execute(
                "insert into request (workflowid, requestname, creatorid, created_day, main_json, detail_json, node, "
                "status, fate, due_day, last_day) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (workflow, name, user, day, json.dumps(main, ensure_ascii=False), json.dumps(detail, ensure_ascii=False),
                 "manager" if submit else "start", "提交" if submit else "创建", fate, due, day))
            rid = cur.lastrowid
            self._log(con, rid, "start", user, day, form.get("remark") or "", "提交" if submit else "保存",
                      "2" if submit else "1")
        return {"code": "SUCCESS", "data": {"requestid": rid}, "errMsg": {}}

    @staticmethod
    def _log(con, rid: int, node: str, user: str, day: int, remark: str, operatetype: str, logtype: str) -> None:
        nid, nname, _ = NODES[node]
        con.execute("insert into log (requestid, nodeid, nodename, operator, operatorname, day, remark, operatetype, "
                    "logtype) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (rid, nid, nname, user, USERS.get(user, user), day, remark, operatetype, logtype))

    def decide(self, con, rid: int, action: str, remark: str | None = None) -> bool:
        row = con.execute("select node from request where requestid = ?", (rid,)).fetchone()
        if row is None or row["node"] != "manager":
            return False
        day = self.today(con)
        node, status, optype, logtype, default = {
            "approve": ("archive", "归档", "批准", "0", "同意"),
            "reject": ("rejected", "否决", "批准", "0", "价格低于公司底线，不同意"),
            "return": ("start", "退回", "退回", "3", "请补充竞品报价后重新提交"),
        }[action]
        con.execute("update request set node = ?, status = ?, last_day = ? where requestid = ?", (node, status, day, rid))
        self._log(con, rid, "manager", APPROVER, day, remark or default, optype, logtype)
        return True

    def advance(self, days: int) -> dict[str, int]:
        """The approvers work through ``days`` days: each request due by then gets its fate."""
        done: dict[str, int] = {}
        with self.lock, self._con() as con:
            day = self.today(con) + days
            con.execute("update clock set day = ?", (day,))
            for row in con.execute("select requestid, fate from request where node = 'manager' and due_day <= ?",
                                   (day,)).fetchall():
                action = {"slow": "approve"}.get(row["fate"], row["fate"])
                if self.decide(con, row["requestid"], action):
                    done[action] = done.get(action, 0) + 1
        return done

    def _stamp(self, day: int) -> str:
        return (BASE_DAY + timedelta(days=day)).isoformat()

    def info(self, rid: str, user: str) -> dict[str, Any] | None:
        with self._con() as con:
            row = con.execute("select * from request where requestid = ?", (rid,)).fetchone()
            logs = con.execute("select * from log where requestid = ? order by id", (rid,)).fetchall()
        if row is None:
            return None
        nid, nname, ntype = NODES[row["node"]]
        return {"row": row, "node": (nid, nname, ntype), "logs": logs}

    def status(self, rid: str, user: str) -> dict[str, Any]:
        got = self.info(rid, user)
        if got is None:
            return {"code": "PARAM_ERROR", "errMsg": {"requestId": f"请求 {rid} 不存在"}}
        row, (nid, _, ntype) = got["row"], got["node"]
        return {"code": "SUCCESS", "data": {
            "creatertype": 0, "creatorId": row["creatorid"], "currentNodeId": nid, "currentNodeType": ntype,
            "isremark": 0, "requestId": str(row["requestid"]), "requestName": row["requestname"],
            "requestLevel": "0", "status": row["status"], "workflowId": int(row["workflowid"]),
            "workflowBaseInfo": {"workflowName": WORKFLOWS[row["workflowid"]][0], "workflowTypeId": "12",
                                 "formId": f"-{row['workflowid']}", "isBill": "1"}},
            "errMsg": {}}

    def request(self, rid: str, user: str) -> dict[str, Any]:
        got = self.info(rid, user)
        if got is None:
            return {"code": "PARAM_ERROR", "errMsg": {"requestId": f"请求 {rid} 不存在"}}
        row, (nid, nname, _), logs = got["row"], got["node"], got["logs"]
        main = json.loads(row["main_json"])
        last = logs[-1]
        return {"code": "SUCCESS", "data": {
            "canEdit": False, "canView": True, "createTime": f"{self._stamp(row['created_day'])} 09:00:00",
            "creatorId": row["creatorid"], "creatorName": USERS.get(row["creatorid"], ""), "currentNodeId": nid,
            "currentNodeName": nname, "lastOperateTime": f"{self._stamp(row['last_day'])} 10:00:00",
            "lastOperatorName": last["operatorname"], "requestId": str(row["requestid"]), "requestLevel": "0",
            "requestName": row["requestname"], "status": row["status"],
            "workflowBaseInfo": {"workflowId": row["workflowid"], "workflowName": WORKFLOWS[row["workflowid"]][0],
                                 "workflowTypeId": "12", "workflowTypeName": "销售流程"},
            "workflowMainTableInfo": {"tableDBName": WORKFLOWS[row["workflowid"]][1], "requestRecords": [{
                "recordOrder": 0, "workflowRequestTableFields": [
                {"fieldName": f["fieldName"], "fieldShowName": WORKFLOWS[row["workflowid"]][2].get(f["fieldName"], ""),
                 "fieldValue": str(f.get("fieldValue", "")), "fieldShowValue": str(f.get("fieldValue", ""))}
                for f in main]}]},
            "workflowRequestLogs": [{
                "id": str(lg["id"]), "nodeId": lg["nodeid"], "nodeName": lg["nodename"],
                "operateDate": self._stamp(lg["day"]), "operateTime": "10:00:00", "operateType": lg["operatetype"],
                "operatorId": lg["operator"], "operatorName": lg["operatorname"], "operatorDept": "销售部",
                "receivedPersons": "", "remark": lg["remark"]} for lg in reversed(logs)]},
            "errMsg": {}}

    def mine(self, user: str, form: dict[str, str]) -> list[dict[str, Any]]:
        """getMyWorkflowRequestList: the user's requests, ``conditions.requestname`` matched as LIKE."""
        try:
            cond = json.loads(form.get("conditions") or "{}")
        except ValueError:
            cond = {}
        page, size = max(1, int(form.get("pageNo") or 1)), max(1, int(form.get("pageSize") or 10))
        like = f"%{cond.get('requestname', '')}%"
        with self._con() as con:
            rows = con.execute("select * from request where creatorid = ? and requestname like ? order by requestid desc "
                               "limit ? offset ?", (user, like, size, (page - 1) * size)).fetchall()
        return [{"createTime": f"{self._stamp(r['created_day'])} 09:00:00", "creatorId": r["creatorid"],
                 "creatorName": USERS.get(r["creatorid"], ""), "currentNodeId": NODES[r["node"]][0],
                 "currentNodeName": NODES[r["node"]][1], "requestId": str(r["requestid"]), "requestLevel": "0",
                 "requestName": r["requestname"], "status": r["status"], "sysName": "",
                 "workflowBaseInfo": {"workflowId": r["workflowid"], "workflowName": WORKFLOWS[r["workflowid"]][0]}}
                for r in rows]


class _Control:
    """``/__sandbox/oa/advance`` and ``/__sandbox/oa/decide``."""

    def __init__(self, oa: Ecology) -> None:
        self.oa = oa

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        data = json.loads(body or b"{}")
        if method == "POST" and path == "/__sandbox/oa/advance":
            return 200, {"decided": self.oa.advance(int(data.get("days", 1)))}
        if method == "POST" and path == "/__sandbox/oa/decide":
            with self.oa.lock, self.oa._con() as con:
                ok = self.oa.decide(con, int(data["requestId"]), data["action"], data.get("remark"))
            return (200 if ok else 409), {"decided": ok}
        return None

    def stats(self) -> dict[str, Any]:
        with self.oa._con() as con:
            return {"oa": {"requests": con.execute("select count(*) from request").fetchone()[0]}}

    def reset(self) -> None:
        return None


def create_ecology_app(directory: Path, faults: Faults) -> Any:
    oa = Ecology(directory)
    app = FastAPI(title="泛微 e-cology 9 (sandbox)")
    import time

    async def form_of(request: Request) -> dict[str, str]:
        raw = (await request.body()).decode("utf-8")
        return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def refused() -> JSONResponse:
        # e-cology's own answer to a bad token is not documented in what we hold: USER_EXCEPTION (用户异常)
        # is the documented code closest to it; the connector treats it as "apply for a token again" once
        return JSONResponse({"code": "USER_EXCEPTION", "errMsg": {"token": "token 无效或已过期, 或 userid 无法解密"}})

    @app.post("/api/ec/dev/auth/regist")
    async def regist(request: Request):
        return JSONResponse(oa.regist(request.headers.get("appid", ""), request.headers.get("cpk", "")))

    @app.post("/api/ec/dev/auth/applytoken")
    async def applytoken(request: Request):
        h = request.headers
        return JSONResponse(oa.applytoken(h.get("appid", ""), h.get("secret", ""), h.get("time", ""), time.time()))

    @app.post("/api/workflow/paService/doCreateRequest")
    async def create(request: Request):
        user = oa.user_of(request.headers, time.time())
        return refused() if user is None else JSONResponse(oa.create(user, await form_of(request)))

    @app.post("/api/workflow/paService/getMyWorkflowRequestList")
    async def mine(request: Request):
        user = oa.user_of(request.headers, time.time())
        return refused() if user is None else JSONResponse(oa.mine(user, await form_of(request)))

    @app.get("/api/workflow/paService/getRequestStatus")
    async def status(request: Request, requestId: str = ""):
        user = oa.user_of(request.headers, time.time())
        return refused() if user is None else JSONResponse(oa.status(requestId, user))

    @app.get("/api/workflow/paService/getWorkflowRequest")
    async def get_request(request: Request, requestId: str = ""):
        user = oa.user_of(request.headers, time.time())
        return refused() if user is None else JSONResponse(oa.request(requestId, user))

    return FaultMiddleware(
        app, faults, token_paths=("/api/ec/dev/auth/regist", "/api/ec/dev/auth/applytoken"),
        live_token=lambda scope: oa.live_token({k.decode(): v.decode() for k, v in scope.get("headers", [])}),
        revoke=oa.revoke, expired=lambda: (200, {"code": "USER_EXCEPTION", "errMsg": {"token": "token 已过期"}}),
        error_body=lambda status, msg: {"code": "SYSTEM_INNER_ERROR", "errMsg": {"msg": msg}},
        extension=_Control(oa))
