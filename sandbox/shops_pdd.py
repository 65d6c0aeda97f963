"""拼多多 stand-in: POST ``/api/router`` (form or JSON body).

Common parameters type, client_id, access_token, timestamp (Unix seconds, within ±10 min),
data_type=JSON, sign = upper(md5(secret + Σ sorted(k + v) + secret)) (doc copy fs:53367503776,
fs:12029618041). Errors ``error_response {error_code, error_msg, sub_code?, sub_msg?, request_id}``;
10019 "access_token已过期" is documented by public clients (fs:29445686938); the other codes here
are UNVERIFIED (no public table found): 10016 sign, 10017 timestamp, 10015 client_id,
70031 rate limit, 10000 parameter errors, 52101 order/shipment refusals.

pdd.order.number.list.increment.get: start_updated_at/end_updated_at ≤ 30 min apart, page from 1,
page_size ≤ 100, newest ``updated_at`` first ("必须采用倒序的分页方式…才能避免漏单", niltor/open-pdd-net-sdk),
``total_count`` and ``has_next``. Money is 元 as JSON numbers (UNVERIFIED: parse as Decimal).
Refund state is per order (1 none, 2 in progress, 4 refunded in full); no sub-order ids, so
pdd.logistics.online.send ships the whole order. Buyer data comes encrypted (``~…~``, UNVERIFIED form).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from .shops_sign import router_md5
from .shops_world import World, cst_text as _fmt

PLATFORM = "pdd"
MAX_WINDOW_S = 1800
MAX_PAGE_SIZE = 100
TIMESTAMP_TOLERANCE_S = 600
#: pdd.logistics.online.send logistics_id values (UNVERIFIED ids; pdd.logistics.companies.get lists them)
COMPANIES = {"44": "顺丰速运", "115": "中通快递", "85": "圆通速递", "121": "韵达快递", "1": "申通快递"}


def json_params(body: bytes) -> dict[str, str]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()} if isinstance(data, dict) else {}


def error(code: int, msg: str, sub_msg: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error_code": code, "error_msg": msg, "request_id": uuid.uuid4().hex}
    if sub_msg:
        body["sub_msg"] = sub_msg
    return {"error_response": body}


def _yuan(fen: int) -> float:
    return round(fen / 100, 2)


def _enc(text: str) -> str:
    return "~" + base64.b64encode(text.encode()).decode() + "~"


def info(doc: dict[str, Any]) -> dict[str, Any]:
    refunded = [ln["refund_status"] == "refunded" for ln in doc["lines"]]
    refund_status = 4 if all(refunded) else 2 if any(refunded) or any(
        ln["refund_status"] == "refunding" for ln in doc["lines"]) else 1
    c = doc["consignee"]
    pkg = doc["packages"][0] if doc["packages"] else None
    return {
        "order_sn": doc["tid"], "order_status": {"paid": 1, "cancelled": 1, "shipped": 2, "completed": 3}[doc["state"]],
        "refund_status": refund_status, "trade_type": 0, "created_time": _fmt(doc["created"]),
        "confirm_time": _fmt(doc["paid_at"]), "pay_time": _fmt(doc["paid_at"]), "updated_at": _fmt(doc["modified"]),
        "goods_amount": _yuan(sum(ln["price"] * ln["qty"] for ln in doc["lines"])),
        "discount_amount": _yuan(doc["platform_discount"] + doc["coupon"]),
        "seller_discount": _yuan(doc["coupon"]), "platform_discount": _yuan(doc["platform_discount"]),
        "postage": _yuan(doc["post_fee"]), "pay_amount": _yuan(doc["payment"]),
        "buyer_memo": doc["buyer_memo"] or "", "remark": doc["seller_memo"] or "",
        "receiver_name": _enc(c["name"]), "receiver_phone": _enc(c["phone"]), "address": _enc(c["address"]),
        "receiver_name_mask": c["name"][:1] + "**", "receiver_phone_mask": c["phone"][:3] + "****" + c["phone"][-4:],
        "tracking_number": pkg["tracking_no"] if pkg else None, "logistics_id": None,
        "item_list": [{"goods_id": 300000000 + k, "sku_id": int(ln["oid"][-10:]), "goods_name": ln["title"],
                       "goods_count": ln["qty"], "goods_price": _yuan(ln["price"]),
                       "outer_id": ln["outer_sku"] or "", "outer_goods_id": (ln["outer_sku"] or "").split("-")[0]}
                      for k, ln in enumerate(doc["lines"])],
    }


def call(world: World, p: dict[str, str]) -> dict[str, Any]:
    creds = world.creds[PLATFORM]
    if p.get("client_id") != creds["app_key"]:
        return error(10015, "client_id不存在")
    ts = p.get("timestamp", "")
    if not ts.isdigit() or abs(int(ts) - world.now("pdd")) > TIMESTAMP_TOLERANCE_S:
        return error(10017, "timestamp已过期或无效")
    if p.get("sign", "") != router_md5(creds["app_secret"], p):
        return error(10016, "签名错误")
    if p.get("access_token") != creds["access_token"]:
        return error(10019, "access_token已过期")
    if not world.admit(PLATFORM):
        return error(70031, "调用过于频繁，请调整调用频率")
    handler = METHODS.get(p.get("type", ""))
    return handler(world, p) if handler else error(10000, "参数错误", f"unknown type {p.get('type')!r}")


def _int(p: dict[str, str], name: str, default: int | None = None) -> int | None:
    value = p.get(name)
    if value in (None, ""):
        return default
    return int(value) if str(value).lstrip("-").isdigit() else None


def _increment(world: World, p: dict[str, str]) -> dict[str, Any]:
    start, end = _int(p, "start_updated_at"), _int(p, "end_updated_at")
    if start is None or end is None:
        return error(10000, "参数错误", "start_updated_at and end_updated_at are required")
    if end < start or end - start > MAX_WINDOW_S:
        return error(10000, "参数错误", "end_updated_at - start_updated_at must not exceed 30 minutes")
    page, size = _int(p, "page", 1), _int(p, "page_size", 100)
    if not page or page < 1 or not size or not 1 <= size <= MAX_PAGE_SIZE:
        return error(10000, "参数错误", "page from 1, page_size 1..100")
    world.listed(PLATFORM, start, end)
    total, docs = world.store.window(PLATFORM, start, end, (page - 1) * size, size)
    return {"order_sn_increment_get_response": {"total_count": total, "has_next": page * size < total,
                                                "order_sn_list": [info(d) for d in docs],
                                                "request_id": uuid.uuid4().hex}}


def _information(world: World, p: dict[str, str]) -> dict[str, Any]:
    world.bump(PLATFORM, "detail_calls")
    doc = world.store.get(PLATFORM, p.get("order_sn", ""))
    if doc is None:
        return error(52101, "订单不存在")
    return {"order_info_get_response": {"order_info": info(doc), "request_id": uuid.uuid4().hex}}


def _send(world: World, p: dict[str, str]) -> dict[str, Any]:
    doc = world.store.get(PLATFORM, p.get("order_sn", ""))
    if doc is None:
        return error(52101, "订单不存在")
    if p.get("logistics_id") not in COMPANIES or not p.get("tracking_number"):
        return error(10000, "参数错误", "logistics_id unknown or tracking_number missing")
    outcome = world.ship(doc, p["tracking_number"], p["logistics_id"], None)
    if outcome != "created":
        return error(52101, "订单已发货或状态不允许发货", outcome)
    return {"logistics_online_send_response": {"is_success": True, "request_id": uuid.uuid4().hex}}


METHODS = {
    "pdd.order.number.list.increment.get": _increment,
    "pdd.order.information.get": _information,
    "pdd.logistics.online.send": _send,
}
