"""抖店 stand-in: ``/{method with . as /}`` (minibear2021/doudian ``core.py``).

Query: app_key, method, access_token (not for token calls), timestamp (``yyyy-MM-dd HH:mm:ss``),
v=2, sign_method (md5 default | hmac-sha256), sign; ``param_json`` in the query (token calls) or
as the POST body. The sign covers the key-sorted compact ``param_json`` (shops_sign.doudian_ok).
Answers ``{code, msg, sub_code, sub_msg, data, log_id}`` with code 10000 on success (doudian
``core.py`` checks ``code == 10000``) plus the older ``err_no``/``message`` (fs:47204268586 shows
``err_no: 0, message: success``). Error codes: 30001 isv.app-permissions-insufficient is
documented (fs:54565846998); UNVERIFIED: 40004 isv.sign-check-failure (sign), 30002
isv.access-token-expired (token), 40003 isv.parameter-invalid (parameters, timestamp), 50002
isv.business-failed (shipment refused), 70001 isv.call-limit (rate limit).

- /token/create {code:"", grant_type: authorization_self, shop_id}, /token/refresh {grant_type:
  refresh_token, refresh_token}: data {access_token, expires_in (604800 default; the
  ``tokens`` control shortens it), refresh_token, scope, shop_id, shop_name}.
- /order/searchList {update_time_start, update_time_end (seconds, ≤ 90 days), order_by
  update_time, order_asc (false: newest first), page from 0, size ≤ 100}: data {shop_order_list,
  page, size, total, has_more}.
- /order/orderDetail {shop_order_id}: data {shop_order_detail}.
- /order/logisticsAdd {order_id, company_code, logistics_code} (whole order) and
  /order/logisticsAddMultiPack {order_id, pack_list:[{company_code, logistics_code,
  shipped_order_info:[{shipped_order_id, shipped_num}]}]} (doudian-proxy sample fs:47204268586).
- /order/batchDecrypt {cipher_infos:[{auth_id, cipher_text}]}: data {decrypt_infos:[{auth_id,
  cipher_text, decrypt_text, err_no, err_msg}]} (UNVERIFIED shape; ciphertext form is ours).
Money in 分 integers; buyer PII only as ciphertext and masks.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from .shops_sign import doudian_ok
from .shops_world import World, parse_cst

PLATFORM = "doudian"
MAX_WINDOW_S = 90 * 86400
MAX_PAGE_SIZE = 100
TIMESTAMP_TOLERANCE_S = 600
SIGN_ERROR = (40004, "isv.sign-check-failure", "签名校验失败")
TOKEN_EXPIRED = (30002, "isv.access-token-expired", "access_token已过期")
BAD_PARAM = (40003, "isv.parameter-invalid", "参数不合法")
REFUSED = (50002, "isv.business-failed", "业务处理失败")
LIMITED = (70001, "isv.call-limit", "调用频率超限")
#: company_code values (order.logisticsCompanyList gives them on the platform; UNVERIFIED list)
COMPANIES = {"shunfeng": "顺丰速运", "zhongtong": "中通快递", "yuantong": "圆通速递", "yunda": "韵达快递",
             "shentong": "申通快递"}
STATUS = {"unpaid": (1, "待支付"), "paid": (2, "备货中"), "shipped": (3, "已发货"), "cancelled": (4, "已取消"),
          "completed": (5, "已完成")}


def error(kind: tuple[int, str, str], detail: str = "") -> dict[str, Any]:
    code, sub_code, msg = kind
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": detail or msg, "data": None,
            "err_no": code, "message": detail or msg, "log_id": uuid.uuid4().hex.upper()}


def ok(data: Any) -> dict[str, Any]:
    return {"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "data": data, "err_no": 0,
            "message": "success", "log_id": uuid.uuid4().hex.upper()}


def encrypt(tid: str, text: str) -> str:
    return "#" + base64.b64encode(f"{tid}|{text}".encode()).decode() + "#"


def decrypt(tid: str, cipher: str) -> str | None:
    try:
        owner, _, plain = base64.b64decode(cipher.strip("#")).decode().partition("|")
    except (ValueError, UnicodeDecodeError):
        return None
    return plain if owner == tid else None


def shop_order(doc: dict[str, Any]) -> dict[str, Any]:
    c, tid = doc["consignee"], doc["tid"]
    code, desc = STATUS[doc["state"]]
    by_oid = {o: p for p in doc["packages"] for o in p["oids"]}
    return {
        "order_id": tid, "shop_id": None, "order_status": code, "order_status_desc": desc,
        "create_time": doc["created"], "update_time": doc["modified"], "pay_time": doc["paid_at"] or 0,
        "order_amount": sum(ln["price"] * ln["qty"] for ln in doc["lines"]) + doc["post_fee"],
        "pay_amount": doc["payment"], "post_amount": doc["post_fee"],
        "promotion_amount": doc["coupon"] + doc["platform_discount"], "promotion_shop_amount": doc["coupon"],
        "promotion_platform_amount": doc["platform_discount"], "buyer_words": doc["buyer_memo"] or "",
        "seller_words": doc["seller_memo"] or "", "user_nick_name": doc["buyer_nick"][:1] + "***",
        "encrypt_post_receiver": encrypt(tid, c["name"]), "mask_post_receiver": c["name"][:1] + "**",
        "encrypt_post_tel": encrypt(tid, c["phone"]), "mask_post_tel": c["phone"][:3] + "****" + c["phone"][-4:],
        "post_addr": {"province": {"name": c["address"][:3]}, "encrypt_detail": encrypt(tid, c["address"]),
                      "detail": c["address"][:6] + "***"},
        "sku_order_list": [{
            "order_id": ln["oid"], "parent_order_id": tid, "code": ln["outer_sku"] or "", "out_sku_id": "",
            "product_name": ln["title"], "item_num": ln["qty"], "goods_price": ln["price"],
            "origin_amount": ln["price"] * ln["qty"], "promotion_amount": ln["discount"], "pay_amount": ln["payment"],
            "order_status": code,
            "after_sale_info": {"after_sale_status": {"none": 0, "refunding": 6, "refunded": 12}[ln["refund_status"]],
                                "refund_status": {"none": 0, "refunding": 1, "refunded": 3}[ln["refund_status"]]},
        } for ln in doc["lines"]],
        "logistics_info": [{"tracking_no": p["tracking_no"], "company": p["company"], "company_name": p["company"],
                            "product_info": [{"sku_order_id": o} for o in p["oids"]]} for p in doc["packages"]],
        "_packed": sorted(by_oid),
    }


def call(world: World, path: str, q: dict[str, str], body: bytes) -> dict[str, Any]:
    creds = world.creds[PLATFORM]
    method = path.strip("/").replace("/", ".")
    handler = METHODS.get(method)
    if handler is None:
        return error(BAD_PARAM, f"unknown method {method}")
    param_json = q.get("param_json")
    if param_json is None:
        param_json = body.decode("utf-8", "replace") if body else "{}"
    if q.get("app_key") != creds["app_key"] or q.get("method") != method:
        return error(BAD_PARAM, "app_key or method does not match the path")
    ts = parse_cst(q.get("timestamp"))
    if ts is None or abs(ts - world.now("doudian")) > TIMESTAMP_TOLERANCE_S:
        return error(BAD_PARAM, "timestamp missing or off by more than 10 minutes")
    if not doudian_ok(creds["app_secret"], creds["app_key"], method, param_json, q.get("timestamp", ""),
                      q.get("v", ""), q.get("sign_method"), q.get("sign", "")):
        return error(SIGN_ERROR)
    if not method.startswith("token.") and not world.token_ok(PLATFORM, q.get("access_token")):
        return error(TOKEN_EXPIRED)
    if not world.admit(PLATFORM):
        return error(LIMITED)
    try:
        args = json.loads(param_json or "{}")
    except ValueError:
        return error(BAD_PARAM, "param_json is not JSON")
    return handler(world, args if isinstance(args, dict) else {})


def _token_data(world: World) -> dict[str, Any]:
    token, refresh = str(uuid.uuid4()), str(uuid.uuid4())
    ttl = world.issue_token(PLATFORM, token, refresh)
    shop = world.creds[PLATFORM]["shop_id"]
    return {"access_token": token, "expires_in": ttl, "refresh_token": refresh, "scope": "SCOPE",
            "shop_id": int(shop), "shop_name": "九号抖音旗舰店", "authority_id": shop}


def _create(world: World, a: dict[str, Any]) -> dict[str, Any]:
    if a.get("grant_type") != "authorization_self" or str(a.get("shop_id")) != world.creds[PLATFORM]["shop_id"]:
        return error(BAD_PARAM, "grant_type authorization_self with this app's shop_id expected")
    return ok(_token_data(world))


def _refresh(world: World, a: dict[str, Any]) -> dict[str, Any]:
    store = world.refresh_tokens[PLATFORM]
    if a.get("grant_type") != "refresh_token" or store.check(a.get("refresh_token")) is None:
        return error(BAD_PARAM, "refresh_token invalid or expired")
    store.revoke(a.get("refresh_token"))  # a refresh token is good once (UNVERIFIED)
    return ok(_token_data(world))


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    out = shop_order(doc)
    out.pop("_packed")
    return out


def _search(world: World, a: dict[str, Any]) -> dict[str, Any]:
    try:
        start, end = int(a["update_time_start"]), int(a["update_time_end"])
        page, size = int(a.get("page", 0)), int(a.get("size", 10))
    except (KeyError, TypeError, ValueError):
        return error(BAD_PARAM, "update_time_start and update_time_end (seconds) are required")
    if end < start or end - start > MAX_WINDOW_S or page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        return error(BAD_PARAM, "window ≤ 90 days, page from 0, size 1..100")
    world.listed(PLATFORM, start, end)
    total, docs = world.store.window(PLATFORM, start, end, page * size, size, ascending=bool(a.get("order_asc")))
    return ok({"shop_order_list": [_public(d) for d in docs], "page": page, "size": size, "total": total,
               "has_more": (page + 1) * size < total})


def _detail(world: World, a: dict[str, Any]) -> dict[str, Any]:
    world.bump(PLATFORM, "detail_calls")
    doc = world.store.get(PLATFORM, str(a.get("shop_order_id", "")))
    return ok({"shop_order_detail": _public(doc)}) if doc else error(BAD_PARAM, "订单不存在")


def _ship(world: World, doc: dict[str, Any] | None, company: Any, tracking: Any, oids: list[str] | None) -> dict[str, Any]:
    if doc is None:
        return error(BAD_PARAM, "订单不存在")
    if company not in COMPANIES or not tracking:
        return error(BAD_PARAM, "company_code unknown or logistics_code missing")
    outcome = world.ship(doc, str(tracking), str(company), oids)
    return ok({}) if outcome == "created" else error(REFUSED, f"订单不可发货: {outcome}")


def _logistics_add(world: World, a: dict[str, Any]) -> dict[str, Any]:
    return _ship(world, world.store.get(PLATFORM, str(a.get("order_id", ""))), a.get("company_code"),
                 a.get("logistics_code"), None)


def _multi_pack(world: World, a: dict[str, Any]) -> dict[str, Any]:
    doc = world.store.get(PLATFORM, str(a.get("order_id", "")))
    answer = error(BAD_PARAM, "pack_list is empty")
    for pack in a.get("pack_list") or []:
        oids = [str(s.get("shipped_order_id")) for s in pack.get("shipped_order_info") or []]
        answer = _ship(world, doc, pack.get("company_code"), pack.get("logistics_code"), oids or None)
        if answer["code"] != 10000:
            return answer
        doc = world.store.get(PLATFORM, str(a.get("order_id", "")))
    return answer


def _batch_decrypt(world: World, a: dict[str, Any]) -> dict[str, Any]:
    out = []
    for item in a.get("cipher_infos") or []:
        plain = decrypt(str(item.get("auth_id", "")), str(item.get("cipher_text", "")))
        out.append({"auth_id": item.get("auth_id"), "cipher_text": item.get("cipher_text"),
                    "decrypt_text": plain or "", "err_no": 0 if plain is not None else 300008,
                    "err_msg": "" if plain is not None else "解密失败"})
    return ok({"decrypt_infos": out, "custom_err": {"err_code": 0, "err_msg": ""}})


METHODS = {
    "token.create": _create, "token.refresh": _refresh, "order.searchList": _search,
    "order.orderDetail": _detail, "order.logisticsAdd": _logistics_add,
    "order.logisticsAddMultiPack": _multi_pack, "order.batchDecrypt": _batch_decrypt,
}
