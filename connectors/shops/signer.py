"""The one signer of the router-style shop platforms (TOP, JOS, PDD, 抖店).

All four sign a concatenation of the request's parameters wrapped in (or keyed by) the app
secret; they differ in which parameters, the hash and the letter case:

- taobao (TOP): md5 → upper(hex(md5(secret + Σ sorted(k + v) + secret))); hmac →
  upper(hex(HMAC-MD5(key=secret, Σ sorted(k + v)))) (bububa/opentaobao core/client.go; TOP doc).
- jd (JOS): md5 like TOP's, over the system parameters with the business JSON in
  ``360buy_param_json`` (seven_jd base.py, fs:5964518464).
- pdd: md5 like TOP's over every parameter, business ones included (fs:12029618041).
- doudian (抖店): secret + "app_key…method…param_json…timestamp…v…" + secret, lower hex md5, or
  HMAC-SHA256 keyed by the secret over the same text (minibear2021/doudian doudian/core.py
  ``_sign``); ``param_json`` is key-sorted compact JSON; access_token is not signed.

``Signed.signed_text`` is what was hashed with the secret shown as ``<secret>``: what
``python -m connectors.shops sign --explain`` prints when a platform says "invalid signature".
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Mapping

from hub.errors import ConfigurationError

SECRET_MARK = "<secret>"
#: the sign methods each platform documents; the first is its default
SIGN_METHODS: dict[str, tuple[str, ...]] = {
    "taobao": ("md5", "hmac"),
    "jd": ("md5",),
    "pdd": ("md5",),
    "doudian": ("md5", "hmac-sha256"),
}
#: 抖店 signs these five in this order (its doc's sign string), nothing else
DOUDIAN_SIGNED = ("app_key", "method", "param_json", "timestamp", "v")


@dataclass(frozen=True)
class Signed:
    sign: str
    signed_text: str          # the hashed text, secret shown as <secret>
    algorithm: str = ""       # e.g. "upper(hex(md5(text)))"


def param_json(business: Any) -> str:
    """Business parameters as the compact, key-sorted JSON 抖店 signs and sends (JOS's
    ``360buy_param_json`` is sent as given; sorting it is harmless)."""
    if isinstance(business, str):
        return business
    return json.dumps(business, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return param_json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _concat(params: Mapping[str, Any]) -> str:
    """Σ sorted(k + v) over the parameters that are sent, ``sign`` itself and empty values left out
    (TOP's and PDD's SDKs drop parameters without a value before signing)."""
    return "".join(f"{k}{_text(v)}" for k, v in sorted(params.items())
                   if k != "sign" and v is not None and _text(v) != "")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def sign(platform: str, secret: str, params: Mapping[str, Any], *, method: str | None = None,
         path: str | None = None, sign_method: str | None = None) -> Signed:
    """Sign one request of ``platform``. ``params`` are the parameters sent (system and business;
    for 抖店: app_key, timestamp, v and the business parameters as ``param_json``, a dict or its
    JSON text); ``method`` (the API name) is added as the platform names it (TOP/JOS ``method``,
    PDD ``type``, 抖店 ``method``; from ``path`` "/order/searchList" when only a path is given)."""
    if platform not in SIGN_METHODS:
        raise ConfigurationError(f"no router-style signer for platform {platform!r} "
                                 f"(signed: {', '.join(SIGN_METHODS)}; 有赞 uses a token, not a sign)")
    chosen = (sign_method or str(params.get("sign_method") or "") or SIGN_METHODS[platform][0]).lower()
    if chosen not in SIGN_METHODS[platform]:
        raise ConfigurationError(f"{platform} documents sign_method {' | '.join(SIGN_METHODS[platform])}, "
                                 f"not {chosen!r}")
    if not secret:
        raise ConfigurationError(f"{platform}: no app secret to sign with (the connection's password)")
    p = dict(params)
    signed = _doudian(secret, p, method, path, chosen) if platform == "doudian" else _router(platform, secret, p,
                                                                                               method, path, chosen)
    # a parameter that happens to hold the secret must not print it either
    return Signed(signed.sign, signed.signed_text.replace(secret, SECRET_MARK), signed.algorithm)


def _router(platform: str, secret: str, p: dict[str, Any], method: str | None, path: str | None,
            chosen: str) -> Signed:
    if method is not None or path is not None:
        name = method or (path or "").strip("/").replace("/", ".")
        p["type" if platform == "pdd" else "method"] = name
    body = _concat(p)
    if chosen == "hmac":
        digest = hmac.new(secret.encode("utf-8"), body.encode("utf-8"), hashlib.md5).hexdigest().upper()
        return Signed(digest, body, f"upper(hex(HMAC-MD5(key={SECRET_MARK}, text)))")
    digest = _md5(secret + body + secret).upper()
    return Signed(digest, SECRET_MARK + body + SECRET_MARK, "upper(hex(md5(text)))")


def _doudian(secret: str, p: dict[str, Any], method: str | None, path: str | None, chosen: str) -> Signed:
    name = method or p.get("method") or (path or "").strip("/").replace("/", ".")
    if not name:
        raise ConfigurationError("doudian: no method to sign (--method order.searchList or --path /order/searchList)")
    p["method"] = name
    p["param_json"] = param_json(p.get("param_json", {}))
    p.setdefault("v", "2")
    missing = [k for k in DOUDIAN_SIGNED if k not in p or p[k] in (None, "")]
    if missing:
        raise ConfigurationError(f"doudian: parameters to sign missing: {', '.join(missing)}")
    body = "".join(f"{k}{_text(p[k])}" for k in DOUDIAN_SIGNED)
    text = secret + body + secret
    if chosen == "hmac-sha256":
        digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()
        return Signed(digest, SECRET_MARK + body + SECRET_MARK, f"hex(HMAC-SHA256(key={SECRET_MARK}, text))")
    return Signed(_md5(text), SECRET_MARK + body + SECRET_MARK, "hex(md5(text))")
