"""淘宝/天猫 TOP: POST {host}/router/rest, signed (md5 | hmac) by connectors.shops.signer.

Reads: taobao.trades.sold.increment.get (window ≤ 1 day, sorted by modified descending, so paged
from the last page back, use_has_next=false so total_results is the platform's count) then
taobao.trade.fullinfo.get per tid (bububa/opentaobao api/trade; protocol_notes §2).
Shipments: taobao.logistics.offline.send (tid, out_sid, company_code; sub_tid + is_split for a
partial); a repeat is recognised by the order lines' invoice_no already holding the tracking number.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Sequence

from connectors.http import HttpClient
from connectors.shops import carriers, money
from connectors.shops.platform import Paced, Pacer, ShopWindow, Unreadable, iso, loads, page_numbers, parse_shanghai, shanghai_text, tid_text
from connectors.shops.signer import sign
from hub.errors import AmbiguousWriteError, ConfigurationError, DataError, HubError, RateLimitedError
from hub.types import ConnectionInfo, Record, WriteResult

# -- what TOP is (data) ---------------------------------------------------------------------------
PATH = "/router/rest"
LIST = "taobao.trades.sold.increment.get"
DETAIL = "taobao.trade.fullinfo.get"
SHIP = "taobao.logistics.offline.send"
PAGE_SIZE = 100
MAX_WINDOW = timedelta(days=1)
LIST_FIELDS = "tid,modified"
DETAIL_FIELDS = ("tid,status,created,modified,pay_time,post_fee,payment,discount_fee,total_fee,buyer_nick,"
                 "buyer_message,seller_memo,receiver_name,receiver_mobile,receiver_phone,receiver_state,"
                 "receiver_city,receiver_district,receiver_town,receiver_address,orders")
#: paid but held by the platform (TOP's trade status list, fs:6039083273: "拼团中订单或者发货强管控的
#: 订单，已付款但禁止发货"): not an order the ERP may ship yet, so it waits in quarantine under its tid
HELD = {"PAID_FORBID_CONSIGN": "已付款但禁止发货"}
#: trade.status → normalised state (TOP trade status list; TRADE_CLOSED: refunded in full after payment)
STATES = {
    "TRADE_NO_CREATE_PAY": "unpaid", "WAIT_BUYER_PAY": "unpaid", "PAY_PENDING": "unpaid",
    "WAIT_PRE_AUTH_CONFIRM": "unpaid",
    "WAIT_SELLER_SEND_GOODS": "paid", "SELLER_CONSIGNED_PART": "paid",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped", "TRADE_BUYER_SIGNED": "shipped",
    "TRADE_FINISHED": "completed",
    "TRADE_CLOSED": "cancelled", "TRADE_CLOSED_BY_TAOBAO": "cancelled",
}
#: order.refund_status → none | refunding | refunded
REFUNDS = {
    "NO_REFUND": "none", "CLOSED": "none", "SUCCESS": "refunded",
    "WAIT_SELLER_AGREE": "refunding", "WAIT_BUYER_RETURN_GOODS": "refunding",
    "WAIT_SELLER_CONFIRM_GOODS": "refunding", "SELLER_REFUSE_BUYER": "refunding",
}
#: error_response.code → error class. 27: invalid session (reference top_error_response.examples.real.json).
CONFIG_CODES = {27}
# UNVERIFIED: code 7 "App Call Limited" is TOP's published rate-limit code (错误码一览表), not seen in
# the reference samples; any other code is raised with TOP's own text.
RATE_CODES = {7}
# UNVERIFIED: the per-app QPS the platform grants varies by app; the binding's qps overrides it
DEFAULT_QPS = 20



class Taobao(Paced):
    key = "taobao"
    max_window: timedelta | None = MAX_WINDOW
    page_size: int = PAGE_SIZE  # the platform's most; the seat's page_size option may lower it

    def __init__(self, conn: ConnectionInfo, http: HttpClient) -> None:
        self.conn, self.http = conn, http
        self.pace = Pacer(float(conn.extra.get("qps") or DEFAULT_QPS))
        self.app_key, self.secret = conn.login, conn.password
        self.session = str(conn.extra.get("session") or "")
        self.sign_method = str(conn.extra.get("sign_method") or "md5")
        self.types = conn.extra.get("trade_types")  # None: TOP's default types (docs: type omitted)
        if not (self.app_key and self.secret and self.session):
            raise ConfigurationError(f"{conn.conn_id}: taobao needs login (app_key), password (app_secret) and "
                                     f"extra.session")

    # -- the call ------------------------------------------------------------------------------

    def call(self, *args: Any, **kw: Any) -> dict[str, Any]:
        return self.pace(lambda: self._call_once(*args, **kw), read=not kw.get("write"))

    def _call_once(self, method: str, business: dict[str, Any], *, write: bool = False) -> dict[str, Any]:
        params = {"method": method, "app_key": self.app_key, "session": self.session, "format": "json",
                  "v": "2.0", "sign_method": self.sign_method,
                  "timestamp": shanghai_text(datetime.now().astimezone()),
                  **{k: v for k, v in business.items() if v is not None}}
        params["sign"] = sign("taobao", self.secret, params).sign
        resp = self.http.request("POST", PATH, data=params, expect_json=False, idempotent=not write)
        body = loads(resp.body, f"taobao {method}")
        if not isinstance(body, dict):
            raise DataError(f"taobao {method}: answer is not an object")
        if "error_response" in body:
            raise _error(method, body["error_response"])
        key = method.replace("taobao.", "", 1).replace(".", "_") + "_response"
        if key not in body:
            raise DataError(f"taobao {method}: answer lacks {key!r} (keys: {', '.join(body)})")
        return body[key]

    # -- reads ---------------------------------------------------------------------------------
    def _list(self, start: datetime, end: datetime, page_no: int, page_size: int) -> dict[str, Any]:
        return self.call(LIST, {"start_modified": shanghai_text(start), "end_modified": shanghai_text(end),
                                "page_no": page_no, "page_size": page_size, "use_has_next": "false",
                                "fields": LIST_FIELDS, "type": self.types})

    def count(self, start: datetime, end: datetime) -> int:
        return int(self._list(start, end, 1, 1).get("total_results") or 0)

    def window(self, start: datetime, end: datetime) -> ShopWindow:
        first = self._list(start, end, 1, self.page_size)
        total = int(first.get("total_results") or 0)
        tids: list[str] = []
        seen: set[str] = set()
        bad: list[Unreadable] = []
        for page in page_numbers(total, self.page_size) if total else []:
            got = first if page == 1 and total <= self.page_size else self._list(start, end, page, self.page_size)
            for t in ((got.get("trades") or {}).get("trade") or []):
                try:
                    tid = tid_text(t.get("tid"))
                except DataError as exc:
                    bad.append(Unreadable.of(t, lambda r: r.get("tid"), exc))
                    continue
                if tid not in seen:
                    seen.add(tid)
                    tids.append(tid)
        orders, more_bad = self._details(tids)
        return ShopWindow(orders, total, bad + more_bad)

    def _details(self, tids: Sequence[str]) -> tuple[list[Record], list[Unreadable]]:
        out, bad = [], []
        for tid in tids:
            trade = self.call(DETAIL, {"tid": tid, "fields": DETAIL_FIELDS}).get("trade")
            try:
                if not trade:
                    raise DataError(f"taobao {DETAIL} {tid}: no trade in the answer")
                out.append(normalise(trade))
            except DataError as exc:
                bad.append(Unreadable(tid, repr(trade)[:2000], str(exc)))
        return out, bad

    def by_id(self, tids: Sequence[str]) -> list[Record]:
        orders, bad = self._details(tids)
        if bad:
            raise DataError("; ".join(f"{t}: {why}" for t, why in bad))
        return orders

    # -- shipments -----------------------------------------------------------------------------
    def _shipped(self, tid: str) -> dict[str, str]:
        """oid → tracking number TOP already holds (order.invoice_no)."""
        trade = self.call(DETAIL, {"tid": tid, "fields": "tid,orders.oid,orders.invoice_no"}).get("trade") or {}
        return {str(o.get("oid")): str(o.get("invoice_no") or "")
                for o in ((trade.get("orders") or {}).get("order") or [])}

    def ship(self, record: Record) -> WriteResult:
        key, tid, tracking = str(record["_key"]), str(record["tid"]), str(record["tracking_no"])
        company = carriers.code(self.key, str(record.get("carrier") or ""))
        if company is None:
            return WriteResult(key, "failed", error=carriers.unknown(self.key, str(record.get("carrier"))),
                               error_class="configuration")
        oids = [str(o) for o in record.get("oids") or []]
        held = self._shipped(tid)
        wanted = oids or list(held)
        if wanted and all(held.get(o) == tracking for o in wanted):
            return WriteResult(key, "unchanged", native_key=tid)
        partial = bool(oids) and set(oids) != set(held)
        business = {"tid": tid, "out_sid": tracking, "company_code": company}
        if partial:
            business.update(sub_tid=",".join(oids), is_split=1)
        try:
            answer = self.call(SHIP, business, write=True)
        except AmbiguousWriteError:
            held = self._shipped(tid)
            if wanted and all(held.get(o) == tracking for o in wanted):
                return WriteResult(key, "created", native_key=tid)
            raise
        except DataError as exc:
            return WriteResult(key, "failed", native_key=tid, error=str(exc), error_class="data")
        ok = (answer.get("shipping") or {}).get("is_success")
        if ok in (True, "true"):
            return WriteResult(key, "created", native_key=tid)
        return WriteResult(key, "failed", native_key=tid, error=f"taobao {SHIP}: is_success={ok!r}", error_class="data")


PLATFORM = Taobao


def _error(method: str, err: dict[str, Any]) -> HubError:
    code, sub = err.get("code"), err.get("sub_code")
    text = f"taobao {method}: error {code} {err.get('msg', '')} {sub or ''} {err.get('sub_msg', '')}".strip()
    try:
        code = int(code)
    except (TypeError, ValueError):
        pass
    if code in CONFIG_CODES:
        return ConfigurationError(text + " (renew the seller session: connection extra.session)")
    if code in RATE_CODES:
        return RateLimitedError(text)
    if str(sub or "").startswith("isv."):
        return DataError(text)  # the business refused this record (TOP's isv.* sub codes)
    return HubError(text)


def normalise(trade: dict[str, Any]) -> Record:
    """A TOP trade (fullinfo) as the normalised shop order; money stays 元 text to the fen."""
    tid = tid_text(trade.get("tid"))
    status = str(trade.get("status") or "")
    if status in HELD:
        raise DataError(f"taobao trade {tid}: {status} ({HELD[status]}): held on the platform, not to be shipped; "
                        f"read again once the platform releases it", field="status")
    if status not in STATES:
        raise DataError(f"taobao trade {tid}: unknown status {status!r}", field="status")
    lines = []
    for o in ((trade.get("orders") or {}).get("order") or []):
        qty = int(o.get("num") or 0)
        price = money.yuan(o.get("price"), field="orders.price")
        paid = money.yuan(o.get("divide_order_fee") if o.get("divide_order_fee") not in (None, "")
                          else o.get("payment"), field="orders.payment")
        refund = REFUNDS.get(str(o.get("refund_status") or "NO_REFUND"))
        if refund is None:
            raise DataError(f"taobao trade {tid}: unknown refund_status {o.get('refund_status')!r}",
                            field="refund_status")
        lines.append({
            "oid": tid_text(o.get("oid")),
            "outer_sku": (o.get("outer_sku_id") or o.get("outer_iid") or None),
            "title": str(o.get("title") or ""),
            "quantity": str(qty),
            "price": f"{price:.2f}",
            "discount": f"{price * qty - paid:.2f}",
            "payment": f"{paid:.2f}",
            "refund_status": refund,
            # UNVERIFIED: TOP reports no refunded quantity per line; a refunded line counts whole
            "refunded_quantity": str(qty if refund == "refunded" else 0),
        })
    post_fee = money.yuan(trade.get("post_fee"), field="post_fee")
    total = sum((Decimal(ln["price"]) * int(ln["quantity"]) for ln in lines), Decimal("0.00"))
    modified = parse_shanghai(trade.get("modified"), "modified")
    address = "".join(str(trade.get(k) or "") for k in ("receiver_state", "receiver_city", "receiver_district",
                                                          "receiver_town", "receiver_address"))
    return {
        "tid": tid, "platform": "taobao", "status": status, "state": STATES[status],
        "created": iso(parse_shanghai(trade.get("created"), "created")), "modified": iso(modified),
        "paid_at": iso(parse_shanghai(trade["pay_time"], "pay_time")) if trade.get("pay_time") else None,
        "version": iso(modified),
        "total": f"{total:.2f}", "post_fee": f"{post_fee:.2f}",
        "discount": money.total(ln["discount"] for ln in lines),
        "payment": money.yuan_text(trade.get("payment"), field="payment"),
        "buyer_nick": trade.get("buyer_nick") or None,
        "buyer_memo": trade.get("buyer_message") or None, "seller_memo": trade.get("seller_memo") or None,
        # TOP gives receivers masked (OAID era); kept as given, never decrypted here
        "consignee": {"name": trade.get("receiver_name"),
                      "phone": trade.get("receiver_mobile") or trade.get("receiver_phone"),
                      "address": address or None, "encrypted": True},
        "lines": lines,
    }
