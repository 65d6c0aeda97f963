"""天眼查 open API connector: company base information by name, USCC or registration number.

``GET {host}/services/open/ic/baseinfo/normal?keyword=…`` with the account token in the
``Authorization`` header; every answer is HTTP 200 with ``{"error_code", "reason", "result"}``.
``error_code`` 300000 (经查无结果) is an answer, not an error: the company is not registered
under that keyword. Quota codes (余额不足, 剩余次数不足) raise QuotaExceededError so the flow
defers the lookup; 访问频率过快 raises RateLimitedError. Codes and sources: docs/protocols.md.
A lookup costs money: this module never caches, flows/registry.py does.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from connectors.http import HttpClient
from connectors.registry_api import RegistryApi
from hub.errors import ConfigurationError, TransientError
from hub.types import ConnectionInfo, RegistryRecord

log = logging.getLogger("connectors.tianyancha")

DEFAULT_HOST = "https://open.api.tianyancha.com"  # the token travels in a header: never in clear
BASEINFO = "/services/open/ic/baseinfo/normal"
OK, NO_DATA = 0, 300000
RATE_LIMITED = {300004}                 # 访问频率过快
QUOTA = {300006, 300007}                # 余额不足, 剩余次数不足
TRANSIENT = {300001}                    # 请求失败
BAD_QUERY = {300008}                    # 缺少必要参数
CST = timezone(timedelta(hours=8))      # estiblishTime is midnight China time in epoch ms


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text if text and text not in ("-", "null") else None


def _history(result: dict[str, Any], current: str) -> list[str]:
    """Former names: ``historyNameList`` when present, else ``historyNames`` ("a;b;" or a list)."""
    raw = result.get("historyNameList") or result.get("historyNames") or []
    if isinstance(raw, str):
        raw = raw.replace("；", ";").split(";")
    names = [n for n in (_text(v) for v in raw) if n and n != current]
    return list(dict.fromkeys(names))


def _date_ms(value: Any) -> date | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, CST).date()
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def parse(result: dict[str, Any]) -> RegistryRecord:
    """One ``result`` object of ic/baseinfo/normal as a RegistryRecord."""
    name = _text(result.get("name")) or ""
    status, active = RegistryRecord.normalise_status(result.get("regStatus"))
    return RegistryRecord(
        legal_name=name, uscc=(_text(result.get("creditCode")) or "").upper() or None, status=status,
        active=active, legal_representative=_text(result.get("legalPersonName")),
        registered_capital=_text(result.get("regCapital")), address=_text(result.get("regLocation")),
        history_names=_history(result, name), established=_date_ms(result.get("estiblishTime")),
        source="tianyancha", raw=result)


@dataclass
class TianyanchaConnector(RegistryApi):
    """Connector for one 天眼查 open-platform account.

    Connection (``registry``): host (default ``https://open.api.tianyancha.com``), password =
    the account token; extra ``provider: tianyancha``, optional ``workers`` (parallel lookups),
    ``max_attempts`` (HTTP tries per lookup, default 3), ``check_keyword`` (a company looked
    up by ``check()``; that lookup is billed).
    """

    conn: ConnectionInfo
    system: str = "tianyancha"
    LABEL, CODE_NAME = "天眼查", "error_code"
    QUOTA, RATE_LIMITED, TRANSIENT, BAD_QUERY = QUOTA, RATE_LIMITED, TRANSIENT, BAD_QUERY
    CONFIG_HINT = "the token, the account and the IP whitelist"

    def __post_init__(self) -> None:
        if not self.conn.password:
            raise ConfigurationError(f"connection {self.conn.conn_id!r} lacks the 天眼查 token (password)")
        extra = self.conn.extra
        self.http = HttpClient(self.conn.base_url() if self.conn.host else DEFAULT_HOST,
                               secrets=self.conn.secrets(), max_attempts=int(extra.get("max_attempts", 3)),
                               backoff=float(extra.get("backoff", 0.5)))
        self.workers = int(extra["workers"]) if extra.get("workers") else None

    def lookup(self, keyword: str) -> RegistryRecord | None:
        """The company registered under ``keyword`` (name, former name, USCC, 注册号), or None."""
        resp = self.http.request("GET", BASEINFO, params={"keyword": keyword},
                                 headers={"Authorization": self.conn.password})
        body = resp.body if isinstance(resp.body, dict) else {}
        if resp.status in (401, 403, 404):
            raise ConfigurationError(f"天眼查 answered HTTP {resp.status} on {BASEINFO}", secrets=self.conn.secrets())
        try:
            code = int(body.get("error_code"))
        except (TypeError, ValueError):
            raise TransientError(f"天眼查 answered HTTP {resp.status} without an error_code") from None
        if code == OK:
            result = body.get("result")
            return parse(result) if isinstance(result, dict) and result.get("name") else None
        if code == NO_DATA:
            return None
        raise self._error(code, str(body.get("reason") or ""), keyword)
