"""京东 JOS: {host}/routerjson, md5-signed by connectors.shops.signer over the system parameters
and the business JSON in ``360buy_param_json`` (seven_jd ``base.py``, fs:5964518464).

Evidence (open with read_file id=<fs id>):
- jingdong.pop.order.search: start_date, end_date, order_state, optional_fields, page, page_size,
  sortType, dateType (seven_jd PopOrderSearchRequest, fs:15369015220); dateType 0 = by modified
  time, sortType 1 = descending (a client's comment, fs:14006717442; a doc summary, fs:68877485596).
  Answer ``jingdong_pop_order_search_responce.searchorderinfo_result {orderInfoList, orderTotal,
  apiResult{success, chineseErrCode}}`` (JD's own SDK classes fs:16102267810; clients fs:27209719881,
  fs:31322900670). The window limit is not documented: the seat's default applies.
- orders: OrderSearchInfo {orderId, orderTotalPrice, orderPayment, freightPrice, sellerDiscount,
  orderState, orderStartTime, paymentConfirmTime, modified, orderRemark, venderRemark, pin,
  consigneeInfo{fullname, mobile, telephone, fullAddress}, itemInfoList[], couponDetailList[],
  waybill, logisticsId} (JD Java SDK, fs:67369110114); ItemInfo {skuId, outerSkuId, skuName,
  jdPrice, itemTotal} (fs:23668201103). Money is 元 text. Some values are JSON held in a string
  (``sendpayMap``, ``orderExt`` in a captured pop.order.get answer, fs:17456547989; union's
  ``queryResult``, fs:67598997403): :func:`_again` parses such a value a second time.
- jingdong.pop.order.get {order_id, optional_fields}: ``…_responce.orderDetailInfo.orderInfo``
  (fs:37582302146, fs:21369854263).
- jingdong.pop.order.shipment {orderId, logiCoprId, logiNo} (seven_jd PopOrderShipmentRequest
  fs:6165544553; JD Java SDK fs:67613720358): answer ``…_responce.sopjosshipment_result {success,
  chineseErrCode, errorCode}`` (fs:67242824508, fs:30294272085). Whole orders only (no line ids).
- errors: ``error_response {code, zh_desc, en_desc}``: 5 不支持的版本号, 12 无效签名, 15 不存在的方法名,
  19 无效access_token, 21 无效App Key, 24 该商家无权调用API, 65 系统处理超时 (fs:22816499540,
  fs:25921745324, fs:27540896936, fs:70610190297).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, Sequence

from connectors.http import HttpClient
from connectors.shops import carriers, money
from connectors.shops.platform import (Paced, Pacer, ShopWindow, Unreadable, iso, loads, page_numbers, parse_shanghai, shanghai_text,
                                       tid_text)
from connectors.shops.signer import sign
from hub.errors import AmbiguousWriteError, ConfigurationError, DataError, HubError, TransientError
from hub.types import ConnectionInfo, Record, WriteResult

# -- what JOS is (data) -----------------------------------------------------------------------------
PATH = "/routerjson"
LIST, LIST_RESULT = "jingdong.pop.order.search", "searchorderinfo_result"
DETAIL, DETAIL_RESULT = "jingdong.pop.order.get", "orderDetailInfo"
SHIP, SHIP_RESULT = "jingdong.pop.order.shipment", "sopjosshipment_result"
VERSION = "2.0"
# UNVERIFIED: JOS's page_size cap was not found; 100 is what public clients send (fs:69083534142)
PAGE_SIZE = 100
MAX_WINDOW: timedelta | None = None      # not documented: the seat's default (window_minutes) applies
DATE_TYPE_MODIFIED = 0                   # dateType 0: by the order's modified time
SORT_DESCENDING = 1                      # sortType 1: newest first (paged last page first)
#: a window re-read while its total or its pages move (orders changing while it is paged)
PASSES = 4
OPTIONAL_FIELDS = ("orderId,orderState,orderTotalPrice,orderSellerPrice,orderPayment,freightPrice,sellerDiscount,"
                   "orderStartTime,paymentConfirmTime,modified,orderRemark,venderRemark,pin,consigneeInfo,"
                   "itemInfoList,couponDetailList,waybill,logisticsId,returnOrder")
#: orderState → normalised state (the order_state values of the pop.order.search doc, as clients send them:
#: fs:182744304, fs:61649087063)
STATES = {
    "WAIT_SELLER_STOCK_OUT": "paid", "WAIT_SELLER_DELIVERY": "paid", "WAIT_SEND_CODE": "paid",
    "POP_ORDER_PAUSE": "paid", "PAUSE": "paid", "LOCKED": "paid",
    "WAIT_GOODS_RECEIVE_CONFIRM": "shipped",
    "FINISHED_L": "completed",
    "TRADE_CANCELED": "cancelled",
}
# UNVERIFIED: the text JOS gives an order not yet paid was not found in public material; orders in a
# state missing above are quarantined (ShopWindow.bad) naming it, never guessed.
#: the states asked for in a window read (order_state is a comma-separated filter)
ORDER_STATES = ",".join(STATES)
#: error_response.code → class (fs:22816499540)
CONFIG_CODES = {"5", "12", "15", "19", "21", "24"}
TRANSIENT_CODES = {"65"}
# UNVERIFIED: JOS's rate-limit code was not found; any other code is raised with JOS's own text.

# UNVERIFIED: the per-app QPS JOS grants varies by app; the binding's qps overrides it
DEFAULT_QPS = 20


class Jos(Paced):
    key = "jd"
    max_window: timedelta | None = MAX_WINDOW
    page_size: int = PAGE_SIZE  # the platform's most; the seat's page_size option may lower it

    def __init__(self, conn: ConnectionInfo, http: HttpClient) -> None:
        self.conn, self.http = conn, http
        self.pace = Pacer(float(conn.extra.get("qps") or DEFAULT_QPS))
        self.app_key, self.secret = conn.login, conn.password
        self.token = str(conn.extra.get("access_token") or "")
        if not (self.app_key and self.secret and self.token):
            raise ConfigurationError(f"{conn.conn_id}: jd needs login (app_key), password (app_secret) and "
                                     f"extra.access_token")

    # -- the call ------------------------------------------------------------------------------
    def call(self, *args: Any, **kw: Any) -> dict[str, Any]:
        return self.pace(lambda: self._call_once(*args, **kw), read=not kw.get("write"))

    def _call_once(self, method: str, business: dict[str, Any], result: str, *, write: bool = False) -> dict[str, Any]:
        """One JOS call: the answer's ``<method with _>_responce`` object, and in it ``result``
        (parsed a second time when JOS sends it as JSON text)."""
        params = {"method": method, "app_key": self.app_key, "access_token": self.token, "v": VERSION,
                  "timestamp": shanghai_text(datetime.now().astimezone()),
                  "360buy_param_json": json.dumps({k: v for k, v in business.items() if v is not None},
                                                  ensure_ascii=False, separators=(",", ":"), default=str)}
        params["sign"] = sign("jd", self.secret, params).sign
        resp = self.http.request("POST", PATH, data=params, expect_json=False, idempotent=not write)
        body = _again(loads(resp.body, f"jd {method}"))
        if not isinstance(body, dict):
            raise DataError(f"jd {method}: answer is not an object")
        if "error_response" in body:
            raise _error(method, _again(body["error_response"]) or {})
        key = method.replace(".", "_") + "_responce"
        if key not in body:
            raise DataError(f"jd {method}: answer lacks {key!r} (keys: {', '.join(body)})")
        outer = _again(body[key]) or {}
        if str(outer.get("code", "0")) != "0":
            raise DataError(f"jd {method}: answer code {outer.get('code')!r}")
        inner = _again(outer.get(result))
        if not isinstance(inner, dict):
            raise DataError(f"jd {method}: answer lacks {key}.{result}")
        ok = _again(inner.get("apiResult"))
        if isinstance(ok, dict) and str(ok.get("success", "true")).lower() != "true":
            raise DataError(f"jd {method}: {ok.get('chineseErrCode') or ok.get('englishErrCode') or ok}")
        return inner

    # -- reads ---------------------------------------------------------------------------------
    def _list(self, start: datetime, end: datetime, page: int, size: int) -> dict[str, Any]:
        return self.call(LIST, {"start_date": shanghai_text(start), "end_date": shanghai_text(end),
                                "order_state": ORDER_STATES, "optional_fields": OPTIONAL_FIELDS,
                                "page": str(page), "page_size": str(size), "sortType": SORT_DESCENDING,
                                "dateType": DATE_TYPE_MODIFIED}, LIST_RESULT)

    def count(self, start: datetime, end: datetime) -> int:
        return int(self._list(start, end, 1, 1).get("orderTotal") or 0)

    def window(self, start: datetime, end: datetime) -> ShopWindow:
        """Every order modified in the window, once. Paged last page first (newest first sort); a
        pass is kept only when its total did not move and it found as many orders as the total
        (an order changed while paged shifts the pages): else the window is read again."""
        last: tuple[dict[str, Record], int, list[tuple[str, str]]] = ({}, 0, [])
        for _ in range(PASSES):
            found, total, bad, clean = self._pass(start, end)
            last = (found, total, bad)
            if clean:
                break
        else:
            found, total, bad = last
            bad = bad + [(f"{start.isoformat()}..{end.isoformat()}",
                          f"jd {LIST}: the window kept moving over {PASSES} reads "
                          f"({len(found)} orders found, total {total})")]
        return ShopWindow(list(found.values()), total, bad)

    def _pass(self, start: datetime, end: datetime) -> tuple[dict[str, Record], int, list[Unreadable], bool]:
        first = self._list(start, end, 1, self.page_size)
        total = int(first.get("orderTotal") or 0)
        found: dict[str, Record] = {}
        bad: list[Unreadable] = []
        seen: set[str] = set()
        for page in page_numbers(total, self.page_size) if total else []:
            got = first if page == 1 and total <= self.page_size else self._list(start, end, page, self.page_size)
            for raw in _again(got.get("orderInfoList")) or []:
                raw = _again(raw)
                ident = str(raw.get("orderId") or repr(raw)[:200]) if isinstance(raw, dict) else repr(raw)[:200]
                seen.add(ident)
                try:
                    order = normalise(raw)
                except DataError as exc:
                    bad.append(Unreadable.of(raw, lambda r: r.get("orderId"), exc))
                    continue
                have = found.get(order["tid"])
                if have is None or order["modified"] >= have["modified"]:
                    found[order["tid"]] = order
        after = int(self._list(start, end, 1, 1).get("orderTotal") or 0) if total > self.page_size else total
        return found, total, bad, after == total and len(seen) == total

    def _info(self, tid: str) -> dict[str, Any]:
        got = self.call(DETAIL, {"order_id": tid, "optional_fields": OPTIONAL_FIELDS}, DETAIL_RESULT)
        info = _again(got.get("orderInfo"))
        if not isinstance(info, dict) or not info:
            raise DataError(f"jd {DETAIL} {tid}: no orderInfo in the answer")
        return info

    def by_id(self, tids: Sequence[str]) -> list[Record]:
        return [normalise(self._info(t)) for t in tids]

    # -- shipments -----------------------------------------------------------------------------
    def carrier_code(self, name: str) -> str | None:
        """The logiCoprId for a hub carrier name: the connection's extra.carrier_codes {name: id} (the
        shop's own JOS logistics company ids), else carriers.yaml."""
        return _carrier_codes(self.conn).get(name) or carriers.code(self.key, name)

    def _shipped(self, tid: str) -> set[str]:
        """Tracking numbers the order already holds (waybill).
        # UNVERIFIED: several packages in one waybill text, separated by commas, as some clients split it."""
        text = str(self._info(tid).get("waybill") or "")
        return {w.strip() for w in text.replace(";", ",").split(",") if w.strip()}

    def ship(self, record: Record) -> WriteResult:
        key, tid, tracking = str(record["_key"]), str(record["tid"]), str(record["tracking_no"])
        carrier = str(record.get("carrier") or "")
        code = self.carrier_code(carrier)
        if code is None:
            return WriteResult(key, "failed", error=carriers.unknown(self.key, carrier), error_class="configuration")
        try:
            info = self._info(tid)
        except DataError as exc:
            return WriteResult(key, "failed", native_key=tid, error=str(exc), error_class="data")
        if record.get("oids"):
            lines = {str(i.get("skuId")) for i in _again(info.get("itemInfoList")) or []}
            if {str(o) for o in record["oids"]} != lines:
                return WriteResult(key, "failed", native_key=tid, error_class="data",
                                   error="京东 ships whole orders only (jingdong.pop.order.shipment takes no line ids)")
        if tracking in self._waybills(info):
            return WriteResult(key, "unchanged", native_key=tid)
        try:
            # orderId is a long in JD's SDK (PopOrderShipmentRequest, fs:67613720358): sent as a number
            answer = self.call(SHIP, {"orderId": _order_number(tid), "logiCoprId": code, "logiNo": tracking},
                               SHIP_RESULT, write=True)
        except AmbiguousWriteError:
            if tracking in self._shipped(tid):
                return WriteResult(key, "created", native_key=tid)
            raise
        except DataError as exc:
            return WriteResult(key, "failed", native_key=tid, error=str(exc), error_class="data")
        if str(answer.get("success")).lower() == "true":
            return WriteResult(key, "created", native_key=tid)
        # UNVERIFIED: sopjosshipment_result's errorCode values are not published; the text is JOS's own
        why = answer.get("chineseErrCode") or answer.get("englishErrCode") or answer.get("errorCode") or answer
        return WriteResult(key, "failed", native_key=tid, error=f"jd {SHIP}: {why}", error_class="data")

    @staticmethod
    def _waybills(info: dict[str, Any]) -> set[str]:
        text = str(info.get("waybill") or "")
        return {w.strip() for w in text.replace(";", ",").split(",") if w.strip()}


PLATFORM = Jos


def _again(value: Any) -> Any:
    """A value JOS sent as JSON text, parsed a second time (exact numbers); anything else as is."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value, parse_float=Decimal)
        except ValueError:
            return value
    return value


def _order_number(tid: str) -> int:
    if not tid.isdigit():
        raise DataError(f"jd order id {tid!r} is not a number (JOS order ids are)", field="tid")
    return int(tid)


def _carrier_codes(conn: ConnectionInfo) -> dict[str, str]:
    raw = (conn.extra or {}).get("carrier_codes") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ConfigurationError(f"{conn.conn_id}: extra.carrier_codes is not JSON") from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{conn.conn_id}: extra.carrier_codes must map carrier names to codes")
    return {str(k): str(v) for k, v in raw.items()}


def _error(method: str, err: dict[str, Any]) -> HubError:
    code = str(err.get("code") or "")
    text = f"jd {method}: error {code} {err.get('zh_desc', '')} {err.get('en_desc', '')}".strip()
    if code in CONFIG_CODES:
        hint = " (renew the shop's access token: connection extra.access_token)" if code == "19" else ""
        return ConfigurationError(text + hint)
    if code in TRANSIENT_CODES:
        return TransientError(text)
    return HubError(text)


def _time(value: Any, what: str) -> datetime | None:
    s = str(value or "").strip()
    if not s or s.startswith("0001") or s.startswith("1970"):
        return None
    return parse_shanghai(s, what)


def state(raw: dict[str, Any]) -> str:
    status = str(raw.get("orderState") or "")
    if status not in STATES:
        raise DataError(f"jd order {raw.get('orderId')}: unknown orderState {status!r}", field="orderState")
    return STATES[status]


def normalise(raw: dict[str, Any]) -> Record:
    """A JOS OrderSearchInfo as the normalised shop order; money stays 元 text to the fen."""
    tid = tid_text(raw.get("orderId"))
    items = [_again(i) for i in _again(raw.get("itemInfoList")) or []]
    goods = [(money.yuan(i.get("jdPrice"), field="jdPrice"), int(str(i.get("itemTotal") or 0))) for i in items]
    total = sum((p * q for p, q in goods), Decimal("0.00"))
    coupons = [_again(c) for c in _again(raw.get("couponDetailList")) or []]
    # the itemised discounts when JOS lists them, else the seller's discount total
    discount = (sum((money.yuan(c.get("couponPrice"), field="couponPrice") for c in coupons), Decimal("0.00"))
                if coupons else money.yuan(raw.get("sellerDiscount"), field="sellerDiscount"))
    per_sku: dict[str, Decimal] = {}
    for c in coupons:
        # UNVERIFIED: a coupon with a skuId is that line's; one without is the order's, shared by value
        if c.get("skuId") not in (None, "", 0, "0"):
            per_sku[str(c["skuId"])] = per_sku.get(str(c["skuId"]), Decimal("0.00")) + money.yuan(c.get("couponPrice"))
    shared = discount - sum(per_sku.values(), Decimal("0.00"))
    st = state(raw)
    paid_at = _time(raw.get("paymentConfirmTime"), "paymentConfirmTime")
    # UNVERIFIED: pop.order.search reports no refund per line; an order cancelled after payment
    # counts as refunded in full on every line
    refund = "refunded" if st == "cancelled" and paid_at is not None else "none"
    lines, left = [], shared
    for n, (item, (price, qty)) in enumerate(zip(items, goods)):
        gross = price * qty
        share = left if n == len(items) - 1 else ((shared * gross / total).quantize(Decimal("0.01"), ROUND_DOWN)
                                                  if total else Decimal("0.00"))
        left -= share
        line_discount = share + per_sku.get(str(item.get("skuId")), Decimal("0.00"))
        lines.append({
            "oid": str(item.get("skuId") or n + 1),   # JOS has no line id: the order's SKU id stands in
            "outer_sku": item.get("outerSkuId") or item.get("productNo") or None,
            "title": str(item.get("skuName") or ""), "quantity": str(qty), "price": f"{price:.2f}",
            "discount": f"{line_discount:.2f}", "payment": f"{gross - line_discount:.2f}",
            "refund_status": refund, "refunded_quantity": str(qty if refund == "refunded" else 0),
        })
    modified = parse_shanghai(raw.get("modified"), "modified")
    created = parse_shanghai(raw.get("orderStartTime"), "orderStartTime")
    who = _again(raw.get("consigneeInfo")) or {}
    return {
        "tid": tid, "platform": "jd", "status": str(raw.get("orderState")), "state": st,
        "created": iso(created), "modified": iso(modified), "paid_at": iso(paid_at), "version": iso(modified),
        "total": f"{total:.2f}", "post_fee": money.yuan_text(raw.get("freightPrice"), field="freightPrice"),
        "discount": f"{discount:.2f}",
        "payment": money.yuan_text(raw.get("orderPayment"), field="orderPayment"),
        "buyer_nick": raw.get("pin") or None,
        "buyer_memo": raw.get("orderRemark") or None, "seller_memo": raw.get("venderRemark") or None,
        # JOS gives the consignee masked; kept as given, never decrypted here
        "consignee": {"name": who.get("fullname") or None, "phone": who.get("mobile") or who.get("telephone") or None,
                      "address": who.get("fullAddress") or None, "encrypted": True},
        "lines": lines,
    }
