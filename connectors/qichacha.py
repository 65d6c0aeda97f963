"""企查查 open API connector: company base information (ECIV4 GetBasicDetailsByName).

``GET {host}/ECIV4/GetBasicDetailsByName?key=<appkey>&keyword=…`` with headers
``Token = upper(MD5(appkey + Timespan + secretkey))`` and ``Timespan`` (Unix seconds). The
answer is ``{"Status": "200", "Message": …, "Result": {...}}``; ``Status`` 201 (查询无结果) is
an answer, not an error. Quota statuses raise QuotaExceededError so the flow defers the
lookup; frequency statuses raise RateLimitedError. Codes and sources: docs/protocols.md.
A lookup costs money: this module never caches, flows/registry.py does.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from connectors.http import HttpClient
from connectors.registry_api import RegistryApi
from hub.errors import ConfigurationError, TransientError
from hub.types import ConnectionInfo, RegistryRecord

log = logging.getLogger("connectors.qichacha")

DEFAULT_HOST = "https://api.qichacha.com"
BASIC = "/ECIV4/GetBasicDetailsByName"
OK, NO_DATA = "200", "201"
QUOTA = {"102", "109", "112", "116"}                 # 欠费, 每日系统限制, 剩余使用量不足, 每日调用总量
RATE_LIMITED = {"106", "108", "110", "117", "122"}   # 请求过多, 连续出错, 并发限制
TRANSIENT = {"120", "124", "199", "203", "205"}      # 系统流量异常, 维护, 未知错误, 查询异常, 处理中
BAD_QUERY = {"202", "213", "215", "223"}             # 查询参数错误 / 过短 / 不支持 / 模糊


def token(appkey: str, timespan: str, secret: str) -> str:
    """企查查's request signature: upper-case hex MD5 of appkey + Timespan + secret key."""
    return hashlib.md5(f"{appkey}{timespan}{secret}".encode("utf-8")).hexdigest().upper()


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text if text and text not in ("-", "null") else None


def _date(value: Any) -> date | None:
    """``StartDate`` as "2012-07-10T00:00:00" or "2012-07-10 00:00:00"."""
    text = _text(value)
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _history(result: dict[str, Any], current: str) -> list[str]:
    """``OriginalName``: a list of ``{"Name", "ChangeDate"}`` (plain strings tolerated)."""
    names = []
    for item in result.get("OriginalName") or []:
        name = _text(item.get("Name") if isinstance(item, dict) else item)
        if name and name != current:
            names.append(name)
    return list(dict.fromkeys(names))


def parse(result: dict[str, Any]) -> RegistryRecord:
    """One ``Result`` object of GetBasicDetailsByName as a RegistryRecord."""
    name = _text(result.get("Name")) or ""
    status, active = RegistryRecord.normalise_status(result.get("Status"))
    return RegistryRecord(
        legal_name=name, uscc=(_text(result.get("CreditCode")) or "").upper() or None, status=status,
        active=active, legal_representative=_text(result.get("OperName")),
        registered_capital=_text(result.get("RegistCapi")), address=_text(result.get("Address")),
        history_names=_history(result, name), established=_date(result.get("StartDate")),
        source="qichacha", raw=result)


@dataclass
class QichachaConnector(RegistryApi):
    """Connector for one 企查查 open-platform application.

    Connection (``registry``): host (default ``https://api.qichacha.com``), login = the
    application key, password = the secret key; extra ``provider: qichacha``, optional
    ``workers``, ``max_attempts`` (HTTP tries per lookup, default 3), ``check_keyword``.
    """

    conn: ConnectionInfo
    system: str = "qichacha"
    LABEL, CODE_NAME = "企查查", "Status"
    QUOTA, RATE_LIMITED, TRANSIENT, BAD_QUERY = QUOTA, RATE_LIMITED, TRANSIENT, BAD_QUERY
    CONFIG_HINT = "the key, the secret key, the purchased interfaces and the IP whitelist"

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.conn.secrets() + (self.conn.login,)

    def __post_init__(self) -> None:
        if not (self.conn.login and self.conn.password):
            raise ConfigurationError(f"connection {self.conn.conn_id!r} needs login = 企查查 key and "
                                     f"password = secret key")
        extra = self.conn.extra
        self.http = HttpClient(self.conn.base_url() if self.conn.host else DEFAULT_HOST, secrets=self.secrets,
                               max_attempts=int(extra.get("max_attempts", 3)), backoff=float(extra.get("backoff", 0.5)))
        self.workers = int(extra["workers"]) if extra.get("workers") else None

    def _headers(self) -> dict[str, str]:
        timespan = str(int(time.time()))
        return {"Token": token(self.conn.login, timespan, self.conn.password), "Timespan": timespan}

    def lookup(self, keyword: str) -> RegistryRecord | None:
        """The company registered under ``keyword`` (name, former name, USCC, 注册号), or None."""
        resp = self.http.request("GET", BASIC, params={"key": self.conn.login, "keyword": keyword},
                                 headers=self._headers())
        body = resp.body if isinstance(resp.body, dict) else {}
        if resp.status in (401, 403, 404):
            raise ConfigurationError(f"企查查 answered HTTP {resp.status} on {BASIC}", secrets=self.secrets)
        status = str(body.get("Status") or "")
        if not status:
            raise TransientError(f"企查查 answered HTTP {resp.status} without a Status")
        if status == OK:
            result = body.get("Result")
            return parse(result) if isinstance(result, dict) and result.get("Name") else None
        if status == NO_DATA:
            return None
        raise self._error(status, str(body.get("Message") or ""), keyword)
