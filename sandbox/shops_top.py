"""淘宝/天猫 TOP stand-in: POST/GET ``/router/rest``.

Common parameters method, app_key, session, timestamp (``yyyy-MM-dd HH:mm:ss``, China time),
format=json, v=2.0, sign_method md5|hmac, sign (protocol notes, fs:71012022269). Checks run in
this order: app key, timestamp, signature, session, method. Errors are HTTP 200 with
``error_response {code, msg, sub_code?, sub_msg?, request_id}``:
- 25 "Invalid signature" (the brief's code; UNVERIFIED against a captured answer);
- 27 "Invalid session" sub_code invalid-sessionkey (reference top_error_response.examples.real.json);
- 15 "Remote service error" sub_code ``isv.logistics-offline-service-error:B04`` for a send to an
  order already shipped or closed (fs:7106221633), ``…:B01`` order not found (fs:46292996560);
- UNVERIFIED (codes from memory of TOP's public error table, no captured answer found): 29 Invalid
  App Key, 31 Invalid Timestamp (tolerance 10 min), 22 Invalid Method, 40 Missing Required
  Arguments, 41 Invalid Arguments (window > 1 day), 7 App Call Limited (rate limit).

taobao.trades.sold.increment.get: start_modified/end_modified ≤ 1 day apart, newest modified
first (bububa ``TaobaoTradesSoldIncrementGet.go``: page backwards), page_no from 1, page_size ≤ 100
(default 40), ``use_has_next=true`` answers ``has_next`` and no ``total_results`` (TOP's doc
wording; UNVERIFIED against a capture). An empty page has no ``trades`` key (UNVERIFIED).
``tid``/``oid`` are numbers in list answers and text in fullinfo answers (the reference samples
show both).
"""

from __future__ import annotations

import uuid
import zlib
from typing import Any

from .shops_sign import top as top_sign
from .shops_world import World, cst_text, parse_cst, yuan

PLATFORM = "taobao"
MAX_WINDOW_S = 86400
MAX_PAGE_SIZE = 100
TIMESTAMP_TOLERANCE_S = 600
B04 = "订单状态不对该物流订单已经发货或者已关闭，不能重复发货"
#: company codes taobao.logistics.offline.send takes (TOP's logistics company codes, UNVERIFIED list)
COMPANIES = {"SF", "ZTO", "YTO", "YUNDA", "STO", "EMS", "JD", "HTKY", "DBL", "POSTB"}
REFUND = {"none": "NO_REFUND", "refunding": "WAIT_SELLER_AGREE", "refunded": "SUCCESS"}


def error(code: int, msg: str, sub_code: str | None = None, sub_msg: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if sub_code:
        body["sub_code"] = sub_code
    if sub_msg:
        body["sub_msg"] = sub_msg
    body["request_id"] = uuid.uuid4().hex[:12]
    return {"error_response": body}


def status(doc: dict[str, Any]) -> str:
    state = doc["state"]
    if state == "cancelled":
        return "TRADE_CLOSED_BY_TAOBAO" if doc["closed_reason"] == "unpaid_timeout" else "TRADE_CLOSED"
    if state == "paid" and doc["packages"]:
        return "SELLER_CONSIGNED_PART"
    if state == "paid" and doc.get("forbid_consign"):
        return "PAID_FORBID_CONSIGN"  # 拼团中 / 发货强管控: paid, not to be shipped yet
    return {"unpaid": "WAIT_BUYER_PAY", "paid": "WAIT_SELLER_SEND_GOODS", "shipped": "WAIT_BUYER_CONFIRM_GOODS",
            "completed": "TRADE_FINISHED"}[state]


def _mask(text: str, keep: int = 1) -> str:
    return text[:keep] + "*" * max(1, len(text) - keep)


def trade(doc: dict[str, Any], as_text: bool) -> dict[str, Any]:
    """The order as TOP's Trade (money 元 text, buyer data masked as TOP gives it since OAID)."""
    ident = (lambda v: str(v)) if as_text else (lambda v: int(v))
    shipped_by = {o: p for p in doc["packages"] for o in p["oids"]}
    orders = []
    for ln in doc["lines"]:
        gross = ln["price"] * ln["qty"]
        pkg = shipped_by.get(ln["oid"])
        line = {"oid": ident(ln["oid"]), "num_iid": 600000000000 + zlib.crc32(ln["title"].encode()) % 10**10,
                "title": ln["title"], "num": ln["qty"], "price": yuan(ln["price"]), "discount_fee": yuan(ln["discount"]),
                "total_fee": yuan(gross - ln["discount"]), "payment": yuan(ln["payment"]),
                "divide_order_fee": yuan(ln["payment"]), "adjust_fee": "0.00",
                "refund_status": REFUND[ln["refund_status"]], "status": status(doc)}
        if ln["outer_sku"]:
            line["outer_sku_id"] = ln["outer_sku"]
            line["outer_iid"] = ln["outer_sku"].split("-")[0]
        if pkg:
            line.update(logistics_company=pkg["company"], invoice_no=pkg["tracking_no"])
        orders.append(line)
    c = doc["consignee"]
    return {
        "tid": ident(doc["tid"]), "status": status(doc), "type": "fixed", "created": cst_text(doc["created"]),
        "modified": cst_text(doc["modified"]), "pay_time": cst_text(doc["paid_at"]),
        "total_fee": yuan(sum(ln["price"] * ln["qty"] for ln in doc["lines"])),
        "discount_fee": yuan(sum(ln["discount"] for ln in doc["lines"])), "post_fee": yuan(doc["post_fee"]),
        "payment": yuan(doc["payment"]), "buyer_nick": _mask(doc["buyer_nick"]),
        "buyer_message": doc["buyer_memo"], "seller_memo": doc["seller_memo"],
        "receiver_name": _mask(c["name"]), "receiver_mobile": "*******" + c["phone"][-4:],
        "receiver_address": c["address"][:6] + "****", "orders": {"order": orders},
        "promotion_details": {"promotion_detail": [
            {"promotion_name": name, "discount_fee": yuan(fee), "id": int(doc["version"])}
            for name, fee in (("店铺优惠券", doc["coupon"]), ("天猫平台优惠", doc["platform_discount"])) if fee]},
    }


def _fields(tr: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """Only the fields asked for (``orders`` and ``orders.x`` keep the sub-orders)."""
    if not fields:
        return tr
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    out = {k: v for k, v in tr.items() if k in wanted}
    if "orders" in wanted or any(f.startswith("orders.") for f in wanted):
        out["orders"] = tr["orders"]
    return out


def call(world: World, p: dict[str, str]) -> dict[str, Any]:
    """One TOP call with its parameters (query and form merged)."""
    creds = world.creds[PLATFORM]
    if not p.get("method"):
        return error(21, "Missing Method")
    if p.get("app_key") != creds["app_key"]:
        return error(29, "Invalid App Key")
    ts = parse_cst(p.get("timestamp"))
    if ts is None or abs(ts - world.now("taobao")) > TIMESTAMP_TOLERANCE_S:
        return error(31, "Invalid Timestamp")
    if p.get("sign", "") != top_sign(creds["app_secret"], p):
        return error(25, "Invalid signature")
    if p.get("session") != creds["session"]:
        return error(27, "Invalid session", "invalid-sessionkey")
    if not world.admit(PLATFORM):
        return error(7, "App Call Limited", "accesscontrol.limited-by-app-access-count",
                     "This ban will last for 1 more seconds")
    handler = METHODS.get(p["method"])
    if handler is None:
        return error(22, "Invalid Method")
    return handler(world, p)


def _increment(world: World, p: dict[str, str]) -> dict[str, Any]:
    start, end = parse_cst(p.get("start_modified")), parse_cst(p.get("end_modified"))
    for name, value in (("start_modified", start), ("end_modified", end)):
        if value is None:
            return error(40, "Missing Required Arguments", f"isv.missing-parameter:{name}")
    assert start is not None and end is not None
    if end < start or end - start > MAX_WINDOW_S:
        return error(41, "Invalid Arguments", "isv.invalid-parameter",
                     "start_modified and end_modified must be on the same day range (≤ 1 day apart)")
    try:
        page_no, page_size = int(p.get("page_no", 1)), int(p.get("page_size", 40))
    except ValueError:
        return error(41, "Invalid Arguments", "isv.invalid-parameter:page_no")
    if page_no < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        return error(41, "Invalid Arguments", "isv.invalid-parameter:page_size")
    world.listed(PLATFORM, start, end)
    total, docs = world.store.window(PLATFORM, start, end, (page_no - 1) * page_size, page_size)
    body: dict[str, Any] = {}
    if p.get("use_has_next") == "true":
        body["has_next"] = page_no * page_size < total
    else:
        body["total_results"] = total
    if docs:
        body["trades"] = {"trade": [_fields(trade(d, as_text=False), p.get("fields")) for d in docs]}
    body["request_id"] = uuid.uuid4().hex[:12]
    return {"trades_sold_increment_get_response": body}


def _fullinfo(world: World, p: dict[str, str]) -> dict[str, Any]:
    if not p.get("tid"):
        return error(40, "Missing Required Arguments", "isv.missing-parameter:tid")
    world.bump(PLATFORM, "detail_calls")
    doc = world.store.get(PLATFORM, p["tid"])
    if doc is None:  # UNVERIFIED sub_code
        return error(15, "Remote service error", "isv.trade-not-exist", "交易不存在")
    return {"trade_fullinfo_get_response": {"trade": _fields(trade(doc, as_text=True), p.get("fields")),
                                            "request_id": uuid.uuid4().hex[:12]}}


def _send(world: World, p: dict[str, str]) -> dict[str, Any]:
    for name in ("tid", "out_sid", "company_code"):
        if not p.get(name):
            return error(40, "Missing Required Arguments", f"isv.missing-parameter:{name}")
    if p["company_code"] not in COMPANIES:  # UNVERIFIED sub_code
        return error(15, "Remote service error", "isv.logistics-offline-service-error:B60", "物流公司不存在")
    doc = world.store.get(PLATFORM, p["tid"])
    if doc is None:
        return error(15, "Remote service error", "isv.logistics-offline-service-error:B01", "订单不存在")
    oids = [o.strip() for o in p["sub_tid"].split(",") if o.strip()] if p.get("sub_tid") else None
    outcome = world.ship(doc, p["out_sid"], p["company_code"], oids)
    if outcome == "unknown_oid":
        return error(41, "Invalid Arguments", "isv.invalid-parameter:sub_tid")
    if outcome != "created":
        return error(15, "Remote service error", "isv.logistics-offline-service-error:B04", B04)
    return {"logistics_offline_send_response": {"shipping": {"is_success": True},
                                                "request_id": uuid.uuid4().hex[:12]}}


METHODS = {
    "taobao.trades.sold.increment.get": _increment,
    "taobao.trade.fullinfo.get": _fullinfo,
    "taobao.logistics.offline.send": _send,
}
