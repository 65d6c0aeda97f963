"""有赞 (youzanyun v4) stand-in: POST ``/auth/token`` and ``/api/{name}/{version}?access_token=``.

Token: JSON ``{client_id, client_secret, authorize_type: "silent", grant_id: <kdt_id>}`` →
``{success, code: 200, data: {access_token, expires (epoch ms), scope, authority_id}}``
(youzan/open-sdk-node ``src/token.js``; ``expires`` as epoch ms is UNVERIFIED). API answers for
versions ≥ 4: ``{success, code, message, data}``, a gateway refusal ``gw_err_resp {err_code,
err_msg}`` (fs:34101235081); 3.x: ``response`` / ``error_response {code, msg}``. UNVERIFIED codes:
4201 token missing/expired, 4202 bad credentials, 429 rate limit, 50000+ business refusals.

youzan.trades.sold.get 4.0.0: start_update / end_update (``yyyy-MM-dd HH:mm:ss``), page_no from 1,
page_size ≤ 100 (UNVERIFIED: no window or page cap is documented for 4.0.x; none enforced for the
window), newest update first (UNVERIFIED): data {full_order_info_list, total_results}. Money is 元 text.
youzan.trade.get 4.0.0 {tid}: data {full_order_info}. youzan.logistics.online.confirm (any version)
{tid, out_stype (company), out_sid (tracking), oids (comma, optional: a partial send)}; its out_stype
ids are the ones youzan.logistics.express.get lists (fs:30424223620). youzan.logistics.express.get
(3.0.0, no parameters): ``{allExpress: [{display, name, id}]}`` (fs:22267300190, fs:30542592674,
fs:134110456; 申通快递 is id 1 there, the other ids are UNVERIFIED).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from .shops_world import World, cst_text, parse_cst, yuan

PLATFORM = "youzan"
MAX_PAGE_SIZE = 100
#: out_stype values (UNVERIFIED ids; youzan.logistics.express.get lists them)
COMPANIES = {"7": "顺丰速运", "3": "中通快递", "2": "圆通速递", "5": "韵达快递", "1": "申通快递"}
STATUS = {"unpaid": "WAIT_BUYER_PAY", "paid": "WAIT_SELLER_SEND_GOODS", "shipped": "WAIT_BUYER_CONFIRM_GOODS",
          "completed": "TRADE_SUCCESS", "cancelled": "TRADE_CLOSE"}
REFUND = {"none": "NO_REFUND", "refunding": "WAIT_SELLER_AGREE", "refunded": "SUCCESS"}  # UNVERIFIED texts


def token(world: World, body: bytes) -> dict[str, Any]:
    try:
        a = json.loads(body or b"{}")
    except ValueError:
        a = {}
    creds = world.creds[PLATFORM]
    if not isinstance(a, dict) or (a.get("client_id"), a.get("client_secret"), str(a.get("grant_id")),
                                   a.get("authorize_type")) != (creds["app_key"], creds["app_secret"],
                                                                creds["grant_id"], "silent"):
        return {"success": False, "code": 4202, "message": "client_id, client_secret, grant_id or authorize_type wrong",
                "data": None}
    tok, refresh = uuid.uuid4().hex, uuid.uuid4().hex
    ttl = world.issue_token(PLATFORM, tok, refresh)
    return {"success": True, "code": 200, "message": None,
            "data": {"access_token": tok, "expires": int((time.time() + ttl) * 1000), "scope": "trade logistics",
                     "authority_id": creds["grant_id"]}}


def full_order(doc: dict[str, Any]) -> dict[str, Any]:
    c = doc["consignee"]
    return {"full_order_info": {
        "order_info": {"tid": doc["tid"], "status": STATUS[doc["state"]], "type": 0,
                       "created": cst_text(doc["created"]), "update_time": cst_text(doc["modified"]),
                       "pay_time": cst_text(doc["paid_at"]), "node_kdt_id": None},
        "buyer_info": {"fans_nickname": doc["buyer_nick"], "buyer_phone": c["phone"][:3] + "****" + c["phone"][-4:]},
        "address_info": {"receiver_name": c["name"][:1] + "**", "receiver_tel": c["phone"][:3] + "****" + c["phone"][-4:],
                         "delivery_address": c["address"][:6] + "****"},
        "remark_info": {"buyer_message": doc["buyer_memo"] or "", "trade_memo": doc["seller_memo"] or ""},
        "pay_info": {"total_fee": yuan(sum(ln["price"] * ln["qty"] for ln in doc["lines"])),
                     "post_fee": yuan(doc["post_fee"]), "payment": yuan(doc["payment"]),
                     "discount_fee": yuan(doc["coupon"] + doc["platform_discount"])},
        "orders": [{"oid": ln["oid"], "outer_sku_id": ln["outer_sku"] or "",
                    "outer_item_id": (ln["outer_sku"] or "").split("-")[0], "title": ln["title"], "num": ln["qty"],
                    "price": yuan(ln["price"]), "total_fee": yuan(ln["price"] * ln["qty"]),
                    "discount_price": yuan(ln["price"] - ln["discount"] // max(1, ln["qty"])),
                    "payment": yuan(ln["payment"]), "refund_status": REFUND[ln["refund_status"]]}
                   for ln in doc["lines"]],
        "delivery_order": [{"express_info": {"express_no": p["tracking_no"], "express_id": p["company"]},
                            "oids": [{"oid": o} for o in p["oids"]]} for p in doc["packages"]],
    }}


def call(world: World, name: str, version: str, q: dict[str, str], body: bytes,
         content_type: str) -> tuple[int, dict[str, Any]]:
    v4 = version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 4
    a = dict(q)
    if "application/json" in content_type:
        try:
            data = json.loads(body or b"{}")
            a.update(data if isinstance(data, dict) else {})
        except ValueError:
            pass
    elif body and "form" not in content_type:
        a.update(parse_qsl(body.decode("utf-8", "replace")))

    def fail(code: int, msg: str) -> tuple[int, dict[str, Any]]:
        if v4:
            return 200, {"success": False, "code": code, "message": msg, "data": None}
        return 200, {"error_response": {"code": code, "msg": msg}}

    if not world.token_ok(PLATFORM, q.get("access_token")):
        return 200, {"gw_err_resp": {"err_code": 4201, "err_msg": "access_token不存在或已过期"}}
    if not world.admit(PLATFORM):
        return 200, {"gw_err_resp": {"err_code": 429, "err_msg": "请求过于频繁，请稍后再试"}}
    if name == "youzan.trades.sold.get":
        start, end = parse_cst(a.get("start_update")), parse_cst(a.get("end_update"))
        try:
            page, size = int(a.get("page_no", 1)), int(a.get("page_size", 40))
        except (TypeError, ValueError):
            return fail(50001, "page_no / page_size must be numbers")
        if start is None or end is None or end < start or page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return fail(50001, "start_update and end_update required, page_no from 1, page_size 1..100")
        world.listed(PLATFORM, start, end)
        total, docs = world.store.window(PLATFORM, start, end, (page - 1) * size, size)
        return 200, {"success": True, "code": 200, "message": "successful",
                     "data": {"full_order_info_list": [full_order(d) for d in docs], "total_results": total}}
    if name == "youzan.logistics.express.get":
        result = {"allExpress": [{"display": 1, "name": n, "id": int(i)} for i, n in COMPANIES.items()]}
        return 200, ({"success": True, "code": 200, "message": "successful", "data": result} if v4
                     else {"response": result})
    if name == "youzan.trade.get":
        world.bump(PLATFORM, "detail_calls")
        doc = world.store.get(PLATFORM, str(a.get("tid", "")))
        if doc is None:
            return fail(50002, "订单不存在")
        return 200, {"success": True, "code": 200, "message": "successful", "data": full_order(doc)}
    if name == "youzan.logistics.online.confirm":
        doc = world.store.get(PLATFORM, str(a.get("tid", "")))
        if doc is None:
            return fail(50002, "订单不存在")
        if str(a.get("out_stype")) not in COMPANIES or not a.get("out_sid"):
            return fail(50003, "物流公司或快递单号错误")
        oids = [o.strip() for o in str(a.get("oids") or "").split(",") if o.strip()] or None
        outcome = world.ship(doc, str(a["out_sid"]), str(a["out_stype"]), oids)
        if outcome != "created":
            return fail(50004, f"订单不能发货: {outcome}")
        result = {"is_success": True}
        return 200, ({"success": True, "code": 200, "message": "successful", "data": result} if v4
                     else {"response": result})
    return fail(50000, f"api {name} {version} is not served by the sandbox")
