"""Business-registry stand-in: 天眼查 ic/baseinfo/normal and 企查查 ECIV4/GetBasicDetailsByName.

One app answers both providers' paths over the same records (``<dir>/registry.jsonl``), each
in its own envelope, auth and status codes (docs/protocols.md):

- 天眼查: ``Authorization: <token>``; ``{"error_code": 0, "reason": "ok", "result": {...}}``,
  300000 for no data, 300006 when the quota switch says the balance is gone.
- 企查查: ``key`` parameter plus ``Token = upper(MD5(key + Timespan + secret))`` and
  ``Timespan`` headers; ``{"Status": "200", "Message": ..., "Result": {...}}``, 201 for no
  data, 112 when the quota is gone.

A keyword matches a current name, a former name, the USCC, the 注册号 or the provider's own
id, after folding full-width forms and whitespace (our choice; see sandbox/README.md).
``/__sandbox/stats`` adds per-key lookup counters (``registry.paid_by_key``) so tests can
prove that a paid lookup is never repeated; ``/__sandbox/registry/quota`` is the quota switch.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import unicodedata
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .faults import ASGIApp, FaultMiddleware, Faults

TYC_PATH = "/services/open/ic/baseinfo/normal"
QCC_PATH = "/ECIV4/GetBasicDetailsByName"
TIMESPAN_TOLERANCE_S = 600
CST = timezone(timedelta(hours=8))
QCC_STATUS_TEXT = {"存续": "存续（在营、开业、在册）"}
#: Error answers: (天眼查 error_code, reason) and (企查查 Status, Message).
TYC = {"no_data": (300000, "经查无结果"), "busy": (300004, "访问频率过快"), "quota": (300006, "余额不足"),
       "missing": (300008, "缺少必要参数"), "auth": (300009, "账号信息有误")}
QCC = {"no_data": ("201", "查询无结果"), "busy": ("122", "请求超过系统并发限制"),
       "quota": ("112", "您的账号剩余使用量已不足或已过期"), "missing": ("202", "查询参数错误，请检查"),
       "short": ("213", "参数长度不能小于2"), "key": ("101", "当前的KEY无效或者还未生效中"),
       "sign": ("107", "被禁止的IP或者签名错误"), "expired": ("115", "身份验证错误或者已过期")}


def fold(text: str) -> str:
    """How the stand-in compares keywords: NFKC, no whitespace, codes upper-cased."""
    value = "".join(unicodedata.normalize("NFKC", text).split())
    return value.upper() if value.isascii() else value


def _ms(day: str | None) -> int | None:
    if not day:
        return None
    return int(datetime.combine(date.fromisoformat(day), datetime.min.time(), CST).timestamp() * 1000)


class Registry:
    """The records and their keyword index."""

    def __init__(self, path: Path) -> None:
        with open(path, encoding="utf-8") as fh:
            self.records = [json.loads(line) for line in fh if line.strip()]
        self.index: dict[str, int] = {}
        for i, r in enumerate(self.records):
            keys = [r["name"], r["uscc"], r["reg_no"], str(r["tyc_id"]), r["keyno"],
                    *(h["name"] for h in r["history"])]
            for key in keys:
                self.index.setdefault(fold(key), i)

    def find(self, keyword: str) -> dict[str, Any] | None:
        i = self.index.get(fold(keyword))
        return self.records[i] if i is not None else None


class Meter:
    """Quota switch, busy switch and per-key lookup counters (the ``ControlExtension``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.remaining: int | None = None
        self.busy = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls_by_key: dict[str, int] = {}
            self.paid_by_key: dict[str, int] = {}

    def admit(self, provider: str, keyword: str) -> str | None:
        """Count the call; "busy" or "quota" when a switch refuses it, else None (it will be paid)."""
        key = f"{provider}:{keyword}"
        with self._lock:
            self.calls_by_key[key] = self.calls_by_key.get(key, 0) + 1
            if self.busy > 0:
                self.busy -= 1
                return "busy"
            if self.remaining is not None and self.remaining <= 0:
                return "quota"
            if self.remaining is not None:
                self.remaining -= 1
            self.paid_by_key[key] = self.paid_by_key.get(key, 0) + 1
            return None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"registry": {"calls": sum(self.calls_by_key.values()), "paid": sum(self.paid_by_key.values()),
                                 "calls_by_key": dict(self.calls_by_key), "paid_by_key": dict(self.paid_by_key),
                                 "quota": {"remaining": self.remaining, "busy": self.busy}}}

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        if path != "/__sandbox/registry/quota":
            return None
        if method == "POST":
            try:
                data = json.loads(body or b"{}")
                if not isinstance(data, dict) or set(data) - {"remaining", "busy"}:
                    raise ValueError('body must be {"remaining": n|null, "busy": k}')
                with self._lock:
                    if "remaining" in data:
                        self.remaining = None if data["remaining"] is None else max(0, int(data["remaining"]))
                    self.busy = max(0, int(data.get("busy", self.busy)))
            except (ValueError, TypeError) as exc:
                return 400, {"ok": False, "error": str(exc)}
        with self._lock:
            return 200, {"ok": True, "remaining": self.remaining, "busy": self.busy}


def tyc_result(r: dict[str, Any]) -> dict[str, Any]:
    """A record in the shape of 天眼查 ic/baseinfo/normal ``result`` (reference sample's keys)."""
    history = [h["name"] for h in r["history"]]
    status = r["status"]
    amount = r["capital"]
    return {
        "historyNames": "".join(f"{h};" for h in history) or None,
        **({"historyNameList": history} if r["tyc_id"] % 2 == 0 and history else {}),
        "cancelDate": _ms(r["status_date"]) if status.startswith("注销") else None,
        "regStatus": status, "regCapital": amount, "city": r["city"], "staffNumRange": "小于50人",
        "industry": r["industry"], "revokeDate": _ms(r["status_date"]) if status.startswith("吊销") else None,
        "type": 1, "updateTimes": 1719734400000, "legalPersonName": r["legal_rep"], "revokeReason": "",
        "regNumber": r["reg_no"], "creditCode": r["uscc"], "property3": None, "approvedTime": _ms(r["established"]),
        "fromTime": _ms(r["established"]), "socialStaffNum": None, "actualCapitalCurrency": "人民币", "alias": None,
        "companyOrgType": r["econ_kind"], "id": r["tyc_id"], "cancelReason": "", "orgNumber": r["org_no"],
        "toTime": None, "actualCapital": None, "estiblishTime": _ms(r["established"]),
        "regInstitute": r["belong_org"], "businessScope": r["scope"], "taxNumber": r["uscc"],
        "regLocation": r["address"], "regCapitalCurrency": "美元" if "美元" in amount else "人民币",
        "tags": status, "district": r["district"], "districtCode": r["uscc"][2:8], "name": r["name"],
        "percentileScore": None, "isMicroEnt": 1, "base": r["province_code"].lower(),
    }


def qcc_result(r: dict[str, Any]) -> dict[str, Any]:
    """A record in the shape of 企查查 ECIV4 ``Result`` (reference sample's keys)."""
    start = f"{r['established']} 00:00:00"
    return {
        "KeyNo": r["keyno"], "Name": r["name"], "No": r["reg_no"], "BelongOrg": r["belong_org"],
        "OperName": r["legal_rep"], "StartDate": start,
        "EndDate": f"{r['status_date']} 00:00:00" if r["status_date"] else None,
        "Status": QCC_STATUS_TEXT.get(r["status"], r["status"]), "Province": r["province_code"],
        "UpdatedDate": "2025-06-30 18:00:00", "CreditCode": r["uscc"], "RegistCapi": r["capital_qcc"],
        "EconKind": r["econ_kind"], "Address": r["address"], "Scope": r["scope"], "TermStart": start,
        "TeamEnd": None, "CheckDate": start, "OrgNo": f"{r['org_no'][:8]}-{r['org_no'][8:]}", "IsOnStock": "0",
        "StockNumber": None, "StockType": None,
        "OriginalName": [{"Name": h["name"], "ChangeDate": f"{h['until']} 00:00:00"} for h in r["history"]],
        "ImageUrl": None,
    }


def create_registry_app(directory: Path, faults: Faults) -> ASGIApp:
    """The registry ASGI app (FastAPI behind the fault middleware) over ``directory``."""
    creds = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))["registry"]
    registry = Registry(directory / "registry.jsonl")
    meter = Meter()
    app = FastAPI(title="天眼查 / 企查查 registry sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    def tyc(kind: str) -> JSONResponse:
        code, reason = TYC[kind]
        return JSONResponse({"error_code": code, "reason": reason})

    def qcc(kind: str, result: Any = None) -> JSONResponse:
        status, message = QCC[kind] if kind != "ok" else ("200", "查询成功")
        return JSONResponse({"Status": status, "Message": message, "OrderNumber": f"ECI{uuid.uuid4().hex[:22].upper()}",
                             "Result": result})

    @app.get(TYC_PATH)
    async def tianyancha(request: Request) -> JSONResponse:
        if request.headers.get("authorization", "").strip() != creds["tianyancha_token"]:
            return tyc("auth")
        keyword = (request.query_params.get("keyword") or "").strip()
        if not keyword:
            return tyc("missing")
        refused = meter.admit("tianyancha", keyword)
        if refused:
            return tyc(refused)
        record = registry.find(keyword)
        return JSONResponse({"error_code": 0, "reason": "ok", "result": tyc_result(record)}) if record else tyc("no_data")

    @app.get(QCC_PATH)
    async def qichacha(request: Request) -> JSONResponse:
        p, h = request.query_params, request.headers
        if p.get("key") != creds["qichacha_key"]:
            return qcc("key")
        timespan = h.get("timespan", "")
        if not timespan.isdigit() or abs(time.time() - int(timespan)) > TIMESPAN_TOLERANCE_S:
            return qcc("expired")
        expected = hashlib.md5(f"{creds['qichacha_key']}{timespan}{creds['qichacha_secret']}".encode()).hexdigest()
        if h.get("token", "") != expected.upper():
            return qcc("sign")
        keyword = (p.get("keyword") or "").strip()
        if not keyword:
            return qcc("missing")
        if len(keyword) < 2:
            return qcc("short")
        refused = meter.admit("qichacha", keyword)
        if refused:
            return qcc(refused)
        record = registry.find(keyword)
        return qcc("ok", qcc_result(record)) if record else qcc("no_data")

    return FaultMiddleware(
        app, faults, token_paths=(), live_token=lambda scope: None, revoke=lambda token: False,
        expired=lambda: (200, {"error_code": TYC["auth"][0], "reason": TYC["auth"][1]}),
        error_body=lambda status, msg: {"error_code": status, "reason": msg},
        extension=meter,
    )
