"""京东 JOS stand-in: ``/routerjson`` (GET or POST form).

Common parameters method, app_key, access_token, timestamp (``yyyy-MM-dd HH:mm:ss``), v=2.0,
``360buy_param_json`` (the business parameters as one JSON text), sign = upper(md5(secret +
Σ sorted(k + v) + secret)) (seven_jd ``base.py`` fs:5964518464, fs:67598997403). Answers are keyed
``<method with _>_responce`` and carry the result as a JSON *string* to parse again
(fs:67598997403, fs:71012022269). Errors ``error_response {code, zh_desc, en_desc}``: code "19"
invalid access_token (fs:25921745324); UNVERIFIED codes: "14" sign, "15" app key, "16" timestamp
(10 min), "41" parameters, "80" rate limit.

jingdong.pop.order.search: start_date, end_date, order_state (comma list), optional_fields, page
(from 1), page_size (≤ 100, UNVERIFIED), sortType (1 newest first, the default here; 0 oldest
first; UNVERIFIED), dateType (0 modified time, the default here; 1 order time; UNVERIFIED). No
window limit is documented: none is enforced. order_state filters the query itself: orderTotal
counts the orders of the window in the asked states and the pages page through those (a total
counts what the list gives). jingdong.pop.order.get by order_id.

jingdong.pop.order.shipment {orderId (long), logiCoprId, logiNo, optional installId} (JD's Java
SDK ``PopOrderShipmentRequest`` fs:67613720358, seven_jd fs:6165544553; order_id / logistics_id /
waybill are 360buy.overseas.order.sop.delivery's names and are not read here): the whole order
(JOS has no per-line send in this call). The answer's ``sopjosshipment_result`` is an object
``{success, errorCode, chineseErrCode, englishErrCode}`` (OperatorResult fs:67610878901; clients
read ``…sopjosshipment_result.success`` directly, fs:37557060528, fs:30294272085); a repeat
answers success false (UNVERIFIED errorCodes).
"""

from __future__ import annotations

import json
from typing import Any

from .shops_sign import router_md5
from .shops_world import World, cst_text, parse_cst, yuan

PLATFORM = "jd"
MAX_PAGE_SIZE = 100
TIMESTAMP_TOLERANCE_S = 600
#: logiCoprId values: 467 顺丰 and 465 邮政EMS as a client maps them (fs:37557060528); the others
#: UNVERIFIED ids (the platform lists a vendor's carriers through its own call)
COMPANIES = {"467": "顺丰速运", "465": "邮政EMS", "1499": "中通快递", "463": "圆通速递", "1327": "韵达快递",
             "470": "申通快递"}
#: order states as pop.order.search documents them (fs:47189090667, fs:29150772807: WAIT_SELLER_STOCK_OUT,
#: WAIT_GOODS_RECEIVE_CONFIRM, WAIT_SELLER_DELIVERY, PAUSE, FINISHED_L, TRADE_CANCELED, LOCKED). None is
#: unpaid, so the stand-in holds no unpaid JOS order (shops_seed) and has no text for one.
STATES = {"paid": "WAIT_SELLER_STOCK_OUT", "shipped": "WAIT_GOODS_RECEIVE_CONFIRM",
          "completed": "FINISHED_L", "cancelled": "TRADE_CANCELED"}


def error(code: str, zh: str, en: str) -> dict[str, Any]:
    return {"error_response": {"code": code, "zh_desc": zh, "en_desc": en}}


def _mask(text: str) -> str:
    return text[:1] + "*" * max(1, len(text) - 1)


def info(doc: dict[str, Any]) -> dict[str, Any]:
    c = doc["consignee"]
    pkg = doc["packages"][0] if doc["packages"] else None
    gross = sum(ln["price"] * ln["qty"] for ln in doc["lines"])
    return {
        "orderId": doc["tid"], "venderId": "10086", "orderType": "22", "payType": "4-在线支付",
        "orderTotalPrice": yuan(gross), "sellerDiscount": yuan(doc["coupon"]),
        "orderSellerPrice": yuan(gross - doc["coupon"]), "orderPayment": yuan(doc["payment"]),
        "freightPrice": yuan(doc["post_fee"]), "orderState": STATES[doc["state"]],
        "orderStateRemark": "", "orderRemark": doc["buyer_memo"] or "", "venderRemark": doc["seller_memo"] or "",
        "orderStartTime": cst_text(doc["created"]), "paymentConfirmTime": cst_text(doc["paid_at"]),
        "modified": cst_text(doc["modified"]), "pin": _mask(doc["buyer_nick"]),
        "consigneeInfo": {"fullname": _mask(c["name"]), "mobile": c["phone"][:3] + "****" + c["phone"][-4:],
                          "fullAddress": c["address"][:6] + "****"},
        "waybill": pkg["tracking_no"] if pkg else "", "logisticsId": pkg["company"] if pkg else "",
        "itemInfoList": [{"skuId": ln["oid"], "outerSkuId": ln["outer_sku"] or "", "skuName": ln["title"],
                          "jdPrice": yuan(ln["price"]), "itemTotal": str(ln["qty"]), "wareId": ln["oid"][:-2],
                          "refundStatus": ln["refund_status"]} for ln in doc["lines"]],
        "couponDetailList": [{"skuId": ln["oid"], "couponType": "20-套装优惠" if doc["platform_discount"] else "39-京豆优惠",
                              "couponPrice": yuan(ln["discount"])} for ln in doc["lines"] if ln["discount"]],
    }


def call(world: World, p: dict[str, str]) -> dict[str, Any]:
    creds = world.creds[PLATFORM]
    if p.get("app_key") != creds["app_key"]:
        return error("15", "无效app_key", "Invalid app_key")
    ts = parse_cst(p.get("timestamp"))
    if ts is None or abs(ts - world.now("jd")) > TIMESTAMP_TOLERANCE_S:
        return error("16", "时间戳错误", "Invalid timestamp")
    if p.get("sign", "") != router_md5(creds["app_secret"], p):
        return error("14", "签名无效", "Invalid signature")
    if p.get("access_token") != creds["access_token"]:
        return error("19", "无效access_token", "Invalid access_token")
    if not world.admit(PLATFORM):
        return error("80", "调用次数超限", "Call limit exceeded")
    try:
        args = json.loads(p.get("360buy_param_json") or "{}")
    except ValueError:
        return error("41", "360buy_param_json不是合法的JSON", "Invalid 360buy_param_json")
    handler = METHODS.get(p.get("method", ""))
    if handler is None:
        return error("22", "无效方法", "Invalid method")
    key, result_key, result = handler(world, args)
    if key not in OBJECT_RESULTS:  # the list and detail results come as JSON text to parse again
        result = json.dumps(result, ensure_ascii=False)
    return {f"{key}_responce": {"code": "0", result_key: result}}


def _search(world: World, a: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    start, end = parse_cst(a.get("start_date")), parse_cst(a.get("end_date"))
    page, size = int(a.get("page") or 1), int(a.get("page_size") or 20)
    if start is None or end is None or end < start or page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        return ("jingdong_pop_order_search", "searchorderinfo_result",
                {"apiResult": {"success": False, "code": "100", "chineseErrCode": "参数错误"}, "orderTotal": 0,
                 "orderInfoList": []})
    world.listed(PLATFORM, start, end)
    wanted = {s.strip() for s in str(a.get("order_state") or "").split(",") if s.strip()}
    # the filter is part of the query, so orderTotal counts what the pages give; a state text JOS
    # does not know matches no order (UNVERIFIED: whether JOS refuses it instead)
    states = {n for n, text in STATES.items() if text in wanted} if wanted else None
    total, docs = world.store.window(PLATFORM, start, end, (page - 1) * size, size,
                                     ascending=str(a.get("sortType", "1")) == "0", states=states)
    rows = [info(d) for d in docs]
    return ("jingdong_pop_order_search", "searchorderinfo_result",
            {"apiResult": {"success": True, "code": "0", "chineseErrCode": "成功"}, "orderTotal": total,
             "orderInfoList": rows})


def _get(world: World, a: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    world.bump(PLATFORM, "detail_calls")
    doc = world.store.get(PLATFORM, str(a.get("order_id", "")))
    return ("jingdong_pop_order_get", "orderDetailInfo",
            {"apiResult": {"success": doc is not None, "code": "0" if doc else "101",
                           "chineseErrCode": "成功" if doc else "订单不存在"},
             "orderInfo": info(doc) if doc else None})


def _shipment_result(success: bool, code: str, zh: str, en: str) -> dict[str, Any]:
    return {"success": success, "errorCode": code, "chineseErrCode": zh, "englishErrCode": en}


def _shipment(world: World, a: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """{orderId, logiCoprId, logiNo} (fs:67613720358); the errorCodes are UNVERIFIED."""
    key, rk = "jingdong_pop_order_shipment", "sopjosshipment_result"
    order_id, company, waybill = str(a.get("orderId") or ""), str(a.get("logiCoprId") or ""), str(a.get("logiNo") or "")
    doc = world.store.get(PLATFORM, order_id) if order_id.isdigit() else None  # orderId is a long
    if doc is None:
        return key, rk, _shipment_result(False, "10400001", "订单不存在", "order not found")
    if company not in COMPANIES or not waybill:
        return key, rk, _shipment_result(False, "10400002", "物流公司或运单号错误", "invalid logiCoprId or logiNo")
    outcome = world.ship(doc, waybill, company, None)
    if outcome != "created":
        return key, rk, _shipment_result(False, "10400003", "订单已出库或状态不允许出库", "order state does not allow shipment")
    return key, rk, _shipment_result(True, "", "成功", "success")


#: methods whose result is an object, not JSON text (fs:37557060528, fs:30294272085)
OBJECT_RESULTS = {"jingdong_pop_order_shipment"}

METHODS = {
    "jingdong.pop.order.search": _search,
    "jingdong.pop.order.get": _get,
    "jingdong.pop.order.shipment": _shipment,
}
