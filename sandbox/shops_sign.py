"""The shop platforms' signature rules as the platforms check them (the stand-in's own copy:
it shares no code with connectors/, so a connector that signs wrongly is refused here).

Sources (protocol notes section 2):
- TOP: md5 = upper(hex(md5(secret + Σ sorted(k + v) + secret))); hmac = upper(hex(HMAC-MD5(secret,
  Σ sorted(k + v)))) over every parameter but ``sign`` (bububa/opentaobao ``core/client.go``).
- JOS: upper(md5(secret + Σ sorted(k + v) + secret)), ``360buy_param_json`` one of the parameters
  (seven_jd ``base.py`` fs:5964518464, fs:67598997403).
- PDD: upper(md5(secret + Σ sorted(k + v) + secret)) (fs:12029618041).
- 抖店: secret + "app_key…method…param_json…timestamp…v…" + secret, md5 hex or HMAC-SHA256 keyed
  with the secret (sign_method=hmac-sha256); ``access_token`` is not signed; ``param_json``
  key-sorted compact JSON (minibear2021/doudian ``doudian/core.py``).
- Pushes: 有赞 ``Event-Sign`` = md5(client_id + body + client_secret) (cuncle/youzanyun-push-demo);
  抖店 ``event-sign`` = md5(app_key + body + app_secret) (doudian ``core.py`` ``callback``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Mapping


def _joined(params: Mapping[str, Any]) -> str:
    """Σ sorted(k + v) over every parameter but ``sign`` (empty values are left out, as TOP's
    and JOS's clients do)."""
    return "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign" and v not in (None, ""))


def router_md5(secret: str, params: Mapping[str, Any]) -> str:
    """TOP md5, JOS and PDD."""
    return hashlib.md5(f"{secret}{_joined(params)}{secret}".encode()).hexdigest().upper()


def top_hmac(secret: str, params: Mapping[str, Any]) -> str:
    return hmac.new(secret.encode(), _joined(params).encode(), hashlib.md5).hexdigest().upper()


def top(secret: str, params: Mapping[str, Any]) -> str:
    """What TOP expects in ``sign`` for ``params`` (their ``sign_method``: md5, the default, or hmac)."""
    return top_hmac(secret, params) if params.get("sign_method") == "hmac" else router_md5(secret, params)


def canonical_param_json(text: str, ascii_only: bool = False) -> str:
    """抖店's ``param_json``: key-sorted compact JSON (nested objects sorted too)."""
    return json.dumps(json.loads(text or "{}"), sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)


def doudian(secret: str, app_key: str, method: str, param_json: str, timestamp: str, v: str,
            sign_method: str | None) -> str:
    pattern = f"{secret}app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v{v}{secret}"
    if sign_method == "hmac-sha256":
        return hmac.new(secret.encode(), pattern.encode(), hashlib.sha256).hexdigest()
    return hashlib.md5(pattern.encode()).hexdigest()


def doudian_ok(secret: str, app_key: str, method: str, param_json: str, timestamp: str, v: str,
               sign_method: str | None, sign: str) -> bool:
    """The platform signs the key-sorted compact form of what arrived. Whether it keeps non-ASCII
    text as is or \\u-escaped is not documented (UNVERIFIED): both forms are accepted."""
    try:
        forms = {canonical_param_json(param_json), canonical_param_json(param_json, ascii_only=True)}
    except (ValueError, TypeError):
        return False
    return any(hmac.compare_digest(doudian(secret, app_key, method, f, timestamp, v, sign_method), sign or "")
               for f in forms)


def youzan_event(client_id: str, body: bytes, client_secret: str) -> str:
    return hashlib.md5(client_id.encode() + body + client_secret.encode()).hexdigest()


def doudian_event(app_key: str, body: bytes, app_secret: str) -> str:
    return hashlib.md5(app_key.encode() + body + app_secret.encode()).hexdigest()
