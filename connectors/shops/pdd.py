"""拼多多: POST {host}/api/router, md5-signed by connectors.shops.signer (type, client_id,
access_token, timestamp in Unix seconds, data_type JSON; doc copy fs:53367503776).

Reads: pdd.order.number.list.increment.get (start/end_updated_at ≤ 30 min apart, paged last page
first: "必须采用倒序的分页方式…才能避免漏单"; answer order_sn_increment_get_response {total_count,
order_sn_list, has_next}, fields per niltor/open-pdd-net-sdk GetOrderNumberListIncrementResponseModel,
fs:1232104825). The list carries the details, so pdd.order.information.get is used only by id.
Shipments: pdd.logistics.online.send (order_sn, logistics_id, tracking_number).
Money: 元 as JSON numbers, read exactly (platform.loads, Decimal).
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, Sequence

from connectors.http import HttpClient
from connectors.shops import carriers, money
from connectors.shops.platform import Paced, Pacer, ShopWindow, Unreadable, iso, loads, page_numbers, parse_shanghai, tid_text
from connectors.shops.signer import sign
from hub.errors import AmbiguousWriteError, ConfigurationError, DataError, HubError, RateLimitedError, TransientError
from hub.types import ConnectionInfo, Record, WriteResult

PATH = "/api/router"
LIST, LIST_KEY = "pdd.order.number.list.increment.get", "order_sn_increment_get_response"
# UNVERIFIED: the answer key and shape of pdd.order.information.get (order_info_get_response.order_info)
DETAIL, DETAIL_KEY = "pdd.order.information.get", "order_info_get_response"
# UNVERIFIED: the answer key of pdd.logistics.online.send
SHIP, SHIP_KEY = "pdd.logistics.online.send", "logistics_online_send_response"
PAGE_SIZE = 100
MAX_WINDOW = timedelta(minutes=30)
#: list filters meaning "all" (is_lucky_flag 0, order_status 5, refund_status 5: the SDK's enum texts)
ALL = {"is_lucky_flag": 0, "order_status": 5, "refund_status": 5}
#: order_status: 1 待发货, 2 已发货待签收, 3 已签收
SHIPPING = {1: "paid", 2: "shipped", 3: "completed"}
#: refund_status: 1 无售后或售后关闭, 2 售后处理中, 3 退款中, 4 退款成功
REFUNDS = {1: "none", 2: "refunding", 3: "refunding", 4: "refunded"}
#: documented error codes (pdd.fds.order.get doc's table, fs:53367503776)
CONFIG_CODES = {10016, 10019, 20004, 20005, 20031, 20032}
RATE_CODES = {52101, 70031}
TRANSIENT_CODES = {50000, 50002, 52001, 52002, 52102, 52103}
# UNVERIFIED: the per-app QPS the platform grants varies by app; the binding's qps overrides it
DEFAULT_QPS = 20



class Pdd(Paced):
    key = "pdd"
    max_window: timedelta | None = MAX_WINDOW
    page_size: int = PAGE_SIZE  # the platform's most; the seat's page_size option may lower it

    def __init__(self, conn: ConnectionInfo, http: HttpClient) -> None:
        self.conn, self.http = conn, http
        self.pace = Pacer(float(conn.extra.get("qps") or DEFAULT_QPS))
        self.client_id, self.secret = conn.login, conn.password
        self.token = str(conn.extra.get("access_token") or "")
        if not (self.client_id and self.secret and self.token):
            raise ConfigurationError(f"{conn.conn_id}: pdd needs login (client_id), password (client_secret) and "
                                     f"extra.access_token")


    def call(self, *args: Any, **kw: Any) -> dict[str, Any]:
        return self.pace(lambda: self._call_once(*args, **kw), read=not kw.get("write"))

    def _call_once(self, type_: str, business: dict[str, Any], key: str, *, write: bool = False) -> dict[str, Any]:
        params = {"type": type_, "client_id": self.client_id, "access_token": self.token,
                  "timestamp": str(int(time.time())), "data_type": "JSON",
                  **{k: v for k, v in business.items() if v is not None}}
        params["sign"] = sign("pdd", self.secret, params).sign
        resp = self.http.request("POST", PATH, data=params, expect_json=False, idempotent=not write)
        body = loads(resp.body, f"pdd {type_}")
        if isinstance(body, dict) and "error_response" in body:
            raise _error(type_, body["error_response"])
        if not isinstance(body, dict) or key not in body:
            raise DataError(f"pdd {type_}: answer lacks {key!r}")
        return body[key]

    def _list(self, start: datetime, end: datetime, page: int, size: int) -> dict[str, Any]:
        return self.call(LIST, {**ALL, "start_updated_at": int(start.timestamp()), "end_updated_at":
                                int(end.timestamp()), "page": page, "page_size": size, "use_has_next": "false"},
                         LIST_KEY)

    def count(self, start: datetime, end: datetime) -> int:
        return int(self._list(start, end, 1, 1).get("total_count") or 0)

    def window(self, start: datetime, end: datetime) -> ShopWindow:
        first = self._list(start, end, 1, self.page_size)
        total = int(first.get("total_count") or 0)
        found: dict[str, Record] = {}
        bad: list[Unreadable] = []
        for page in page_numbers(total, self.page_size) if total else []:
            got = first if page == 1 and total <= self.page_size else self._list(start, end, page, self.page_size)
            for raw in got.get("order_sn_list") or []:
                try:
                    order = normalise(raw)
                except DataError as exc:
                    bad.append(Unreadable.of(raw, lambda r: r.get("order_sn"), exc))
                    continue
                have = found.get(order["tid"])
                if have is None or order["modified"] >= have["modified"]:
                    found[order["tid"]] = order
        return ShopWindow(list(found.values()), total, bad)

    def _info(self, tid: str) -> dict[str, Any]:
        info = self.call(DETAIL, {"order_sn": tid}, DETAIL_KEY).get("order_info")
        if not info:
            raise DataError(f"pdd {DETAIL} {tid}: no order_info in the answer")
        return info

    def by_id(self, tids: Sequence[str]) -> list[Record]:
        return [normalise(self._info(t)) for t in tids]

    def ship(self, record: Record) -> WriteResult:
        key, tid, tracking = str(record["_key"]), str(record["tid"]), str(record["tracking_no"])
        logistics_id = carriers.code(self.key, str(record.get("carrier") or ""))
        if logistics_id is None:
            return WriteResult(key, "failed", error=carriers.unknown(self.key, str(record.get("carrier"))),
                               error_class="configuration")
        if record.get("oids"):
            # PDD ships an order whole (pdd.logistics.online.send takes no line ids)
            return WriteResult(key, "failed", native_key=tid, error_class="data",
                               error="拼多多 ships whole orders only (no line ids in pdd.logistics.online.send)")
        if str(self._info(tid).get("tracking_number") or "") == tracking:
            return WriteResult(key, "unchanged", native_key=tid)
        try:
            answer = self.call(SHIP, {"order_sn": tid, "logistics_id": logistics_id, "tracking_number": tracking},
                               SHIP_KEY, write=True)
        except AmbiguousWriteError:
            if str(self._info(tid).get("tracking_number") or "") == tracking:
                return WriteResult(key, "created", native_key=tid)
            raise
        except DataError as exc:
            return WriteResult(key, "failed", native_key=tid, error=str(exc), error_class="data")
        ok = answer.get("is_success", True) if isinstance(answer, dict) else True
        return WriteResult(key, "created" if ok in (True, "true", 1) else "failed", native_key=tid,
                           error=None if ok in (True, "true", 1) else f"pdd {SHIP}: is_success={ok!r}")


PLATFORM = Pdd


def _error(type_: str, err: dict[str, Any]) -> HubError:
    code = err.get("error_code")
    text = f"pdd {type_}: error {code} {err.get('error_msg', '')} {err.get('sub_msg', '') or ''}".strip()
    try:
        code = int(code)
    except (TypeError, ValueError):
        pass
    if code in CONFIG_CODES:
        return ConfigurationError(text)
    if code in RATE_CODES:
        return RateLimitedError(text)
    if code in TRANSIENT_CODES:
        return TransientError(text)
    return DataError(text)  # 10000, 21001, 21002 and business codes: this request's own fault


def state(raw: dict[str, Any]) -> str:
    """unpaid | paid | shipped | completed | cancelled from confirm_status, order_status, refund_status."""
    confirm = int(raw.get("confirm_status") if raw.get("confirm_status") is not None else 1)
    if confirm == 2:
        return "cancelled"
    if confirm == 0 or not raw.get("pay_time"):
        return "unpaid"
    shipping = SHIPPING.get(int(raw.get("order_status") or 0))
    if shipping is None:
        raise DataError(f"pdd order {raw.get('order_sn')}: unknown order_status {raw.get('order_status')!r}")
    if shipping == "paid" and int(raw.get("refund_status") or 1) == 4:
        return "cancelled"
    return shipping


def normalise(raw: dict[str, Any]) -> Record:
    tid = tid_text(raw.get("order_sn"))
    items = raw.get("item_list") or []
    goods = [(money.yuan(i.get("goods_price"), field="goods_price"), int(i.get("goods_count") or 0)) for i in items]
    total = sum((p * q for p, q in goods), Decimal("0.00"))
    discount = money.yuan(raw.get("discount_amount"), field="discount_amount")
    discount += money.yuan(raw.get("order_change_amount") or 0, field="order_change_amount")
    post_fee = money.yuan(raw.get("postage"), field="postage")
    refund = REFUNDS.get(int(raw.get("refund_status") or 1), "none")
    lines, left = [], discount
    for n, (item, (price, qty)) in enumerate(zip(items, goods)):
        gross = price * qty
        share = left if n == len(items) - 1 else (discount * gross / total).quantize(Decimal("0.01"), ROUND_DOWN) \
            if total else Decimal("0.00")
        left -= share
        lines.append({
            # UNVERIFIED: PDD has no line id; the SKU id (else the position) stands in for it
            "oid": str(item.get("sku_id") or n + 1),
            "outer_sku": item.get("outer_id") or item.get("outer_goods_id") or None,
            "title": str(item.get("goods_name") or ""), "quantity": str(qty), "price": f"{price:.2f}",
            "discount": f"{share:.2f}", "payment": f"{gross - share:.2f}",
            # PDD's refund status is the order's; a full refund counts every line
            "refund_status": refund, "refunded_quantity": str(qty if refund == "refunded" else 0),
        })
    modified = parse_shanghai(raw.get("updated_at"), "updated_at")
    encrypted = any(str(raw.get(k) or "").startswith("~") for k in ("receiver_name", "receiver_phone", "address"))
    return {
        "tid": tid, "platform": "pdd",
        "status": f"order_status={raw.get('order_status')};refund_status={raw.get('refund_status')};"
                  f"confirm_status={raw.get('confirm_status')}",
        "state": state(raw),
        "created": iso(parse_shanghai(raw.get("created_time"), "created_time")), "modified": iso(modified),
        "paid_at": iso(parse_shanghai(raw["pay_time"], "pay_time")) if raw.get("pay_time") else None,
        "version": iso(modified), "total": f"{total:.2f}", "post_fee": f"{post_fee:.2f}",
        "discount": f"{discount:.2f}", "payment": money.yuan_text(raw.get("pay_amount"), field="pay_amount"),
        "buyer_nick": None, "buyer_memo": raw.get("buyer_memo") or None, "seller_memo": raw.get("remark") or None,
        # PDD returns receivers as ciphertext (~…~ texts) while awaiting shipment; kept as given
        "consignee": {"name": raw.get("receiver_name") or None, "phone": raw.get("receiver_phone") or None,
                      "address": raw.get("receiver_address") or raw.get("address") or None,
                      "encrypted": encrypted or True},
        "lines": lines,
    }
