"""有赞 (youzanyun, the v4 generation only): a token from ``POST {host}/auth/token`` and JSON calls to
``POST {host}/api/{name}/{version}?access_token=…``. The legacy open.youzan.com generation
(``/oauth/token`` grant_type=silent, ``response`` / ``error_response`` envelope) is not used.

Evidence (protocol_notes §2; open with read_file id=<fs id>):
- token: {client_id, client_secret, authorize_type: "silent", grant_id: <kdt_id>}
  (youzan/open-sdk-node ``src/token.js``, ``src/config/http.js``); the token goes in the query
  only: one in the body or an Authorization header is "非法的请求凭证" (fs:65776416470).
- answers: {success, code (200 = ok), data, message} (a real trades.sold.get answer: pages corpus,
  docker.chuyigo.com youzan-datahub trade_test_output.txt); gateway refusals
  {gw_err_resp: {err_code, err_msg}}: 4201 非法的请求凭证, 4203 Token 不存在, 4005 非法的API
  (fs:65776416470).
- ``youzan.trades.sold.get`` 4.0.x: page_no, page_size, status; ``data.full_order_info_list[]
  .full_order_info`` {order_info{tid, status, created, update_time, pay_time, refund_state},
  buyer_info{fans_nickname}, remark_info{buyer_message}, address_info{receiver_name,
  receiver_tel, delivery_province/city/district/address}, pay_info{total_fee, post_fee, payment}
  (元 text), orders[]} (fs:18681361211); orders[] {oid, title, num, price, payment, total_fee,
  outer_sku_id, outer_item_id} (linkflow field map, pages corpus). ``youzan.trade.get`` 4.0.0 {tid}.
- ``youzan.logistics.online.confirm`` 3.0.0: tid, out_stype (carrier id from
  youzan.logistics.express.get), out_sid (tracking number), oids (comma-separated lines, for a
  split shipment), answer is_success (fs:30424223620, fs:51883778473, fs:57356844088).
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Iterator, Sequence

from connectors.http import HttpClient
from connectors.shops import carriers, money
from connectors.shops.platform import Paced, Pacer, ShopWindow, Unreadable, iso, loads, parse_shanghai, shanghai_text, tid_text
from hub.errors import AmbiguousWriteError, ConfigurationError, DataError, HubError, RateLimitedError
from hub.types import ConnectionInfo, Record, WriteResult

# -- what 有赞 is (data) ----------------------------------------------------------------------------
TOKEN_PATH = "/auth/token"
LIST = ("youzan.trades.sold.get", "4.0.0")
DETAIL = ("youzan.trade.get", "4.0.0")
SHIP = ("youzan.logistics.online.confirm", "3.0.0")
#: the shop's carrier list: {allExpress: [{id, name, display}]} (fs:22267300190, fs:30542592674, fs:134110456)
EXPRESS = ("youzan.logistics.express.get", "3.0.0")
#: express.get's {name: id} per (gateway, shop), asked once per process: the list changes rarely
_EXPRESS: dict[tuple[str, str], dict[str, str]] = {}
_EXPRESS_LOCK = threading.Lock()
# UNVERIFIED: the page cap of trades.sold.get 4.0.x was not found; 50 stays under any cap seen.
PAGE_SIZE = 50
# UNVERIFIED: no published per-app QPS was found; a conservative default, the binding's qps overrides it
DEFAULT_QPS = 20
FIRST_PAGE = 1
# UNVERIFIED: incremental parameters for 4.0.x were not found in public material (protocol notes:
# "Not found"); start_update / end_update (yyyy-MM-dd HH:mm:ss) are the names this connector sends.
# A platform that ignores them answers every order: the contract test against the stand-in is the
# judge, and a window whose orders fall outside it is refused below (never silently kept).
WINDOW_PARAMS = ("start_update", "end_update")
MAX_WINDOW: timedelta | None = None   # not documented: the seat's default applies
TOKEN_LIFETIME = 7 * 24 * 3600        # when the answer gives no expiry ("过期时间：7天", fs:30424223620)
TOKEN_MARGIN = 60                     # renew this many seconds before the expiry the platform gave
OK_CODE = 200
#: gateway codes that mean the token is not accepted (fs:65776416470)
TOKEN_CODES = {4201, 4203}
#: UNVERIFIED: the gateway's "请求过于频繁" code (the stand-in's reading; docs/shops.md): paced and retried
RATE_CODES = {429}
#: order_info.status → normalised state. Seen: WAIT_BUYER_PAY, WAIT_SELLER_SEND_GOODS,
#: WAIT_BUYER_CONFIRM_GOODS, TRADE_BUYER_SIGNED, TRADE_CLOSED (fs:59306382519), TRADE_SUCCESS
#: (fs:18681361211).
# UNVERIFIED: WAIT_CONFIRM (拼团待成团) and TRADE_CLOSE as spelled in some clients.
STATES = {
    "WAIT_BUYER_PAY": "unpaid", "WAIT_CONFIRM": "paid", "WAIT_SELLER_SEND_GOODS": "paid",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped", "TRADE_BUYER_SIGNED": "shipped",
    "TRADE_SUCCESS": "completed", "TRADE_CLOSED": "cancelled", "TRADE_CLOSE": "cancelled",
}
#: refund_state → none | refunding | refunded. order_info.refund_state 0 is seen (fs:18681361211).
# UNVERIFIED: 1 部分退款中, 2 部分退款成功, 11 全额退款中, 12 全额退款成功, and the same field on a line.
REFUNDS = {0: "none", 1: "refunding", 2: "refunded", 11: "refunding", 12: "refunded"}
#: a line's refund_status as text, where an answer gives that instead of refund_state.
# UNVERIFIED: the texts (TOP's refund texts, as some 有赞 clients carry them)
REFUND_TEXTS = {"NO_REFUND": "none", "CLOSED": "none", "SUCCESS": "refunded", "WAIT_SELLER_AGREE": "refunding",
                "WAIT_BUYER_RETURN_GOODS": "refunding", "WAIT_SELLER_CONFIRM_GOODS": "refunding",
                "SELLER_REFUSE_BUYER": "refunding"}
#: keys under which a trade detail may hold a shipment's tracking number (repeat check).
# UNVERIFIED: where trade.get 4.0.0 puts the express number; any of these names with the same value counts.
TRACKING_KEYS = ("express_no", "out_sid", "logistics_no", "tracking_no", "nu")


class Youzan(Paced):
    key = "youzan"
    max_window: timedelta | None = MAX_WINDOW
    page_size: int = PAGE_SIZE  # the platform's most; the seat's page_size option may lower it

    def __init__(self, conn: ConnectionInfo, http: HttpClient, *, clock: Callable[[], float] = time.time) -> None:
        self.conn, self.http, self.clock = conn, http, clock
        self.client_id, self.secret = conn.login, conn.password
        extra = conn.extra or {}
        self.grant_id = str(extra.get("grant_id") or "")
        self.decrypt_pii = str(extra.get("decrypt_pii")).strip().lower() in ("1", "true", "yes", "on")
        if not (self.client_id and self.secret and self.grant_id):
            raise ConfigurationError(f"{conn.conn_id}: youzan needs login (client_id), password (client_secret) "
                                     f"and extra.grant_id (the shop's kdt_id)")
        if self.decrypt_pii:
            # UNVERIFIED: no public evidence of youzanyun's decrypt call was found; refuse rather than guess
            raise ConfigurationError(f"{conn.conn_id}: extra.decrypt_pii is set, but no documented 有赞 decrypt "
                                     f"call is known to this connector; consignees stay as the platform gives them")
        self._token: dict[str, Any] | None = None  # process memory only, never logged
        self._lock = threading.Lock()
        self.pace = Pacer(float(extra.get("qps") or DEFAULT_QPS))
        self.token_calls = 0

    # -- token ---------------------------------------------------------------------------------

    def access_token(self) -> str:
        with self._lock:
            now = self.clock()
            if self._token is None or self._token["expires_at"] - now < TOKEN_MARGIN:
                self._token = self._new_token(now)
            return self._token["access_token"]

    def _new_token(self, now: float) -> dict[str, Any]:
        self.token_calls += 1
        body = {"client_id": self.client_id, "client_secret": self.secret, "authorize_type": "silent",
                "grant_id": self.grant_id}
        resp = self.http.request("POST", TOKEN_PATH, json_body=body, expect_json=False, idempotent=True)
        answer = loads(resp.body, "youzan /auth/token")
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or not answer.get("success") or not isinstance(data, dict) \
                or not data.get("access_token"):
            code = answer.get("code") if isinstance(answer, dict) else None
            msg = answer.get("message") if isinstance(answer, dict) else None
            raise ConfigurationError(f"youzan /auth/token refused (code {code}, {msg or 'no access_token'}): check "
                                     f"client_id, client_secret and extra.grant_id", secrets=(self.secret,))
        token = str(data["access_token"])
        self.http.secrets = tuple({*self.http.secrets, token})
        return {"access_token": token, "expires_at": _expiry(data, now)}

    def _forget_token(self) -> None:
        with self._lock:
            self._token = None

    # -- the call ------------------------------------------------------------------------------

    def call(self, api: tuple[str, str], params: dict[str, Any], *, write: bool = False) -> Any:
        """One API call; a token the gateway refuses is renewed once, then it is a configuration error."""
        for attempt in (1, 2):
            try:
                return self._send(api, params, write)
            except _TokenRefused as exc:
                self._forget_token()
                if attempt == 2:
                    raise ConfigurationError(f"{exc} (a fresh token was refused too)") from None
        raise AssertionError("unreachable")

    def _send(self, *args: Any, **kw: Any) -> Any:
        return self.pace(lambda: self._send_once(*args, **kw), read=not (kw.get("write") or (len(args) > 2 and args[2])))

    def _send_once(self, api: tuple[str, str], params: dict[str, Any], write: bool) -> Any:
        name, version = api
        resp = self.http.request("POST", f"/api/{name}/{version}", params={"access_token": self.access_token()},
                                 json_body={k: v for k, v in params.items() if v is not None},
                                 expect_json=False, idempotent=not write)
        answer = loads(resp.body, f"youzan {name}")
        if not isinstance(answer, dict):
            raise DataError(f"youzan {name}: answer is not an object (HTTP {resp.status})")
        gw = answer.get("gw_err_resp")
        if isinstance(gw, dict):
            text = f"youzan {name}: gateway error {gw.get('err_code')} {gw.get('err_msg') or ''}".strip()
            if _int(gw.get("err_code")) in TOKEN_CODES:
                raise _TokenRefused(text)
            if _int(gw.get("err_code")) in RATE_CODES:
                raise RateLimitedError(text)
            raise ConfigurationError(text)
        # 3.x APIs (logistics.online.confirm 3.0.0) may answer in the {response} / {error_response}
        # envelope on the same youzanyun gateway (UNVERIFIED; the sandbox's reading of fs:34101235081)
        if isinstance(answer.get("error_response"), dict):
            e = answer["error_response"]
            raise DataError(f"youzan {name}: error {e.get('code')} {e.get('msg') or ''}".strip())
        if "response" in answer and "success" not in answer:
            return answer["response"]
        if answer.get("success") is not True and _int(answer.get("code")) != OK_CODE:
            raise DataError(f"youzan {name}: error {answer.get('code')} {answer.get('message') or ''}".strip())
        return answer.get("data")

    # -- reads ---------------------------------------------------------------------------------
    def _list(self, start: datetime, end: datetime, page: int, size: int) -> dict[str, Any]:
        data = self.call(LIST, {WINDOW_PARAMS[0]: shanghai_text(start), WINDOW_PARAMS[1]: shanghai_text(end),
                                "page_no": page, "page_size": size})
        return data if isinstance(data, dict) else {}

    def count(self, start: datetime, end: datetime) -> int:
        return int(self._list(start, end, FIRST_PAGE, 1).get("total_results") or 0)

    def window(self, start: datetime, end: datetime) -> ShopWindow:
        """Orders updated in [start, end). The sort order is not documented: pages are read last to
        first and the window read again while the platform's total moves under us."""
        for _ in range(3):
            first = self._list(start, end, FIRST_PAGE, self.page_size)
            total = int(first.get("total_results") or 0)
            found: dict[str, Record] = {}
            bad: list[Unreadable] = []
            pages = max(1, -(-total // self.page_size))
            for page in range(pages, FIRST_PAGE - 1, -1):
                got = first if page == FIRST_PAGE else self._list(start, end, page, self.page_size)
                for item in got.get("full_order_info_list") or []:
                    raw = (item or {}).get("full_order_info") if isinstance(item, dict) else None
                    try:
                        if not isinstance(raw, dict):
                            raise DataError("list item without full_order_info")
                        order = normalise(raw)
                    except DataError as exc:
                        bad.append(Unreadable.of(raw, lambda r: ((r or {}).get("order_info") or {}).get("tid"), exc))
                        continue
                    found[order["tid"]] = order
            if int(self._list(start, end, FIRST_PAGE, 1).get("total_results") or 0) == total:
                break
        outside = [t for t, o in found.items() if not (start <= datetime.fromisoformat(o["modified"]) < end)]
        # an order updated after `end` while we paged is legitimately newer; one from before `start`
        # means the platform ignored the window parameters (see WINDOW_PARAMS)
        early = [t for t in outside if datetime.fromisoformat(found[t]["modified"]) < start]
        if early:
            raise ConfigurationError(f"youzan {LIST[0]} answered orders updated before the window start "
                                     f"({', '.join(early[:5])}…): the platform does not take "
                                     f"{'/'.join(WINDOW_PARAMS)} (UNVERIFIED parameters)")
        return ShopWindow(list(found.values()), total, bad)

    def _detail(self, tid: str) -> dict[str, Any]:
        data = self.call(DETAIL, {"tid": tid})
        raw = data.get("full_order_info") if isinstance(data, dict) else None
        if not isinstance(raw, dict):
            raise DataError(f"youzan {DETAIL[0]} {tid}: no full_order_info in the answer")
        return raw

    def by_id(self, tids: Sequence[str]) -> list[Record]:
        return [normalise(self._detail(str(t))) for t in tids]

    # -- shipments -----------------------------------------------------------------------------
    def carrier_code(self, name: str) -> str | None:
        """The out_stype id for a hub carrier name: the connection's extra.carrier_codes {name: id},
        else carriers.yaml, else the id youzan.logistics.express.get gives that name (asked once per
        process and shop). None: no one names it; a failed express.get call raises its error."""
        from connectors.shops.doudian import _carrier_codes
        return _carrier_codes(self.conn).get(name) or carriers.code(self.key, name) or self._express().get(name)

    def _express(self) -> dict[str, str]:
        key = (self.http.base_url, self.grant_id)
        with _EXPRESS_LOCK:
            known = _EXPRESS.get(key)
        if known is None:
            data = self.call(EXPRESS, {})
            # UNVERIFIED beyond allExpress: a bare list or an "express" key is read the same way
            rows = data if isinstance(data, list) else (data or {}).get("allExpress") or (data or {}).get("express") or []
            known = {str(r.get("name")): str(r.get("id")) for r in rows if isinstance(r, dict) and r.get("id") is not None}
            with _EXPRESS_LOCK:
                _EXPRESS[key] = known
        return known

    def ship(self, record: Record) -> WriteResult:
        key, tid, tracking = str(record["_key"]), str(record["tid"]), str(record["tracking_no"])
        carrier = str(record.get("carrier") or "")
        try:
            detail = self._detail(tid)
            if tracking in set(_tracking_numbers(detail)):
                return WriteResult(key, "unchanged", native_key=tid)
        except DataError as exc:
            return WriteResult(key, "failed", native_key=tid, error=str(exc), error_class="data")
        try:
            company, why = self.carrier_code(carrier), "youzan.logistics.express.get does not name it either"
        except DataError as exc:
            company, why = None, f"and youzan.logistics.express.get failed: {exc}"
        if company is None:
            return WriteResult(key, "failed", error=f"{carriers.unknown(self.key, carrier)} ({why})",
                               error_class="configuration")
        oids = [str(o) for o in record.get("oids") or []]
        lines = {str(o.get("oid")) for o in detail.get("orders") or [] if isinstance(o, dict)}
        unknown = [o for o in oids if o not in lines]
        if unknown:
            return WriteResult(key, "failed", native_key=tid, error=f"youzan order {tid} has no lines "
                               f"{', '.join(unknown)}", error_class="data")
        params = {"tid": tid, "out_stype": company, "out_sid": tracking,
                  "oids": ",".join(oids) if oids and set(oids) != lines else None}
        try:
            data = self.call(SHIP, params, write=True)
        except AmbiguousWriteError:
            if tracking in set(_tracking_numbers(self._detail(tid))):
                return WriteResult(key, "created", native_key=tid)
            raise
        except DataError as exc:
            return WriteResult(key, "failed", native_key=tid, error=str(exc), error_class="data")
        ok = data.get("is_success") if isinstance(data, dict) else data
        if ok in (True, "true"):
            return WriteResult(key, "created", native_key=tid)
        return WriteResult(key, "failed", native_key=tid, error=f"youzan {SHIP[0]}: is_success={ok!r}",
                           error_class="data")


PLATFORM = Youzan


class _TokenRefused(HubError):
    failure_class = "configuration"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _expiry(data: dict[str, Any], now: float) -> float:
    """When the token stops working: ``expires`` (an epoch time, in ms when that large) or
    ``expires_in`` (seconds from now); seven days when the answer says neither."""
    expires = _int(data.get("expires"))
    if expires:
        return expires / 1000 if expires > 10**11 else float(expires)
    seconds = _int(data.get("expires_in"))
    return now + (seconds if seconds else TOKEN_LIFETIME)


def _tracking_numbers(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in TRACKING_KEYS and isinstance(v, (str, int)) and str(v):
                yield str(v)
            else:
                yield from _tracking_numbers(v)
    elif isinstance(node, list):
        for v in node:
            yield from _tracking_numbers(v)


def _ciphertext(value: Any) -> bool:
    """有赞 encrypted fields look like ``$…$1$`` (fs:18681361211)."""
    s = str(value or "")
    return len(s) > 3 and s.startswith("$") and s.endswith("$")


def normalise(raw: dict[str, Any]) -> Record:
    """A 有赞 full_order_info as the normalised shop order; money is 元 text already (kept exact)."""
    info = raw.get("order_info") or {}
    tid = tid_text(info.get("tid"))
    status = str(info.get("status") or "")
    if status not in STATES:
        raise DataError(f"youzan order {tid}: unknown status {status!r}", field="status")
    order_refund = REFUNDS.get(_int(info.get("refund_state")) or 0)
    lines = []
    for o in raw.get("orders") or []:
        qty = int(o.get("num") or 0)
        price = money.yuan(o.get("price"), field="orders.price")
        paid = money.yuan(o.get("payment"), field="orders.payment")
        line_state = o.get("refund_state")
        line_text = o.get("refund_status")
        if line_state not in (None, ""):
            refund = REFUNDS.get(_int(line_state) if _int(line_state) is not None else -1)
        elif line_text not in (None, ""):
            refund = REFUND_TEXTS.get(str(line_text))
        else:  # no line field: a full refund of the order (11 / 12) covers every line, a partial one none
            refund = order_refund if _int(info.get("refund_state")) in (11, 12) else "none"
        if refund is None:
            raise DataError(f"youzan order {tid}: unknown line refund {line_state or line_text!r}",
                            field="refund_state")
        sku = o.get("outer_sku_id") or o.get("outer_item_id") or None
        lines.append({
            "oid": tid_text(o.get("oid")),
            "outer_sku": str(sku) if sku else None,
            "title": str(o.get("title") or ""),
            "quantity": str(qty),
            "price": f"{price:.2f}",
            "discount": f"{price * qty - paid:.2f}",
            "payment": f"{paid:.2f}",
            "refund_status": refund,
            # UNVERIFIED: no refunded quantity per line is documented; a refunded line counts whole
            "refunded_quantity": str(qty if refund == "refunded" else 0),
        })
    pay = raw.get("pay_info") or {}
    addr = raw.get("address_info") or {}
    buyer = raw.get("buyer_info") or {}
    remark = raw.get("remark_info") or {}
    modified = parse_shanghai(info.get("update_time"), "update_time")
    name, phone = addr.get("receiver_name") or None, addr.get("receiver_tel") or None
    detail = addr.get("delivery_address") or ""
    address = "".join(str(addr.get(k) or "") for k in ("delivery_province", "delivery_city", "delivery_district")) \
        + str(detail)
    return {
        "tid": tid, "platform": "youzan", "status": status, "state": STATES[status],
        "created": iso(parse_shanghai(info.get("created"), "created")), "modified": iso(modified),
        "paid_at": iso(parse_shanghai(info["pay_time"], "pay_time")) if info.get("pay_time") else None,
        "version": iso(modified),
        "total": money.total(Decimal(ln["price"]) * int(ln["quantity"]) for ln in lines),
        "post_fee": money.yuan_text(pay.get("post_fee"), field="post_fee"),
        "discount": money.total(ln["discount"] for ln in lines),
        "payment": money.yuan_text(pay.get("payment"), field="payment"),
        "buyer_nick": buyer.get("fans_nickname") or None,
        # UNVERIFIED: trade_memo as the seller's memo field
        "buyer_memo": remark.get("buyer_message") or None, "seller_memo": remark.get("trade_memo") or None,
        "consignee": {"name": name, "phone": phone, "address": address or None,
                      "encrypted": any(_ciphertext(v) for v in (name, phone, detail))},
        "lines": lines,
    }
