"""抖店 (Douyin shop, openapi-fxg): ``POST {host}/{method with . as /}``, signed by
connectors.shops.signer (md5 | hmac-sha256 over app_key, method, param_json, timestamp, v).

Evidence (protocol_notes §2; open with read_file id=<fs id>):
- the call: query app_key, method, access_token (not signed), timestamp ``yyyy-MM-dd HH:mm:ss``,
  v=2, sign_method, sign; the body is the key-sorted compact ``param_json``; token calls carry
  param_json in the query too (minibear2021/doudian ``core.py``).
- token: ``/token/create`` {code:"", grant_type: authorization_self, shop_id} and ``/token/refresh``
  {grant_type: refresh_token, refresh_token}; ``data`` {access_token, expires_in (604800),
  refresh_token, shop_id}; success ``err_no`` 0 / ``code`` 10000 (fs:47204268586, core.py).
- ``order.searchList``: update_time_start/end (Unix seconds), order_by=update_time, page from 0,
  size ≤ 100; ``data`` {shop_order_list, total, has_more}; each shop order carries its
  sku_order_list, money in 分, times in Unix seconds, ciphertext receiver fields (fs:70525997113,
  fs:68329675379). ``order.orderDetail`` {shop_order_id} → ``data.shop_order_detail``
  (fs:47204268586).
- shipments: ``order.logisticsAdd`` {order_id, company_code, logistics_code} ships the whole
  order (fs:68304042165); a partial package goes by ``order.logisticsAddMultiPack`` {order_id,
  pack_list[{company_code, logistics_code, shipped_order_info[{shipped_order_id, shipped_num}]}],
  request_id} (fs:47204268586). What the platform already holds: the detail's
  ``logistics_info[].tracking_no`` (fs:70525997113).
- PII: ``order.batchDecrypt`` {cipher_infos[{auth_id, cipher_text}]} → ``data.decrypt_infos``
  [{auth_id, cipher_text, decrypt_text, err_no}] (fs:44961045846, fs:67231311436), called only when
  the connection's extra.decrypt_pii is true.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Sequence

from connectors.http import HttpClient
from connectors.shops import carriers, money
from connectors.shops.platform import Paced, Pacer, ShopWindow, Unreadable, aware, iso, loads, parse_shanghai, shanghai_text, tid_text
from connectors.shops.signer import param_json, sign
from hub import pii
from hub.errors import (AmbiguousWriteError, ConfigurationError, DataError, HubError, QuotaExceededError)
from hub.types import ConnectionInfo, Record, WriteResult

# -- what 抖店 is (data) ----------------------------------------------------------------------------
LIST = "order.searchList"
DETAIL = "order.orderDetail"
SHIP = "order.logisticsAdd"
SHIP_PART = "order.logisticsAddMultiPack"
DECRYPT = "order.batchDecrypt"
TOKEN_CREATE = "token.create"
TOKEN_REFRESH = "token.refresh"
API_VERSION = "2"
# UNVERIFIED: no published per-app QPS was found; a conservative default, the binding's qps overrides it
DEFAULT_QPS = 20
PAGE_SIZE = 100                     # "每页的数量,最多支持100条"
FIRST_PAGE = 0                      # pages count from 0
MAX_WINDOW = timedelta(days=90)     # protocol_notes §2: window ≤ 90 days
TOKEN_LIFETIME = 604800             # expires_in the docs give (seconds), used when an answer lacks it
REFRESH_MARGIN = 3600               # refresh when less than this many seconds are left (extra.token_margin_s)
DECRYPT_BATCH = 50                  # cipher_infos per batchDecrypt call (fs:67231311436 batches of 50)
#: order_status → normalised state (fs:70525997113: 1 待确认/待支付, 103 部分支付, 105 已支付, 2 备货中,
#: 101 部分发货, 3 已发货, 4 已取消, 5 已完成)
STATES = {1: "unpaid", 103: "unpaid", 105: "paid", 2: "paid", 101: "paid", 3: "shipped", 4: "cancelled",
          5: "completed"}
#: after_sale_info.refund_status → none | refunding | refunded (0 无需退款, 1 待退款, 2 退款中,
#: 3 退款成功, 4 退款失败)
REFUNDS = {0: "none", 1: "refunding", 2: "refunding", 3: "refunded", 4: "none"}
#: err_no → what it means. 30001 isv.app-permissions-insufficient (fs:54565846998). 30002 / 30005 /
#: 30007: a public client renews its access token on them (fs:2448648204).
# UNVERIFIED: the meaning of 30002/30005/30007 beyond that client's handling; 50002 / 90000 are the
# shop's decrypt quota in one client (fs:2397003486).
PERMISSION_CODES = {30001}
TOKEN_CODES = {30002, 30005, 30007}
DECRYPT_QUOTA_CODES = {50002, 90000}


class Doudian(Paced):
    key = "doudian"
    max_window: timedelta | None = MAX_WINDOW
    page_size: int = PAGE_SIZE  # the platform's most; the seat's page_size option may lower it

    def __init__(self, conn: ConnectionInfo, http: HttpClient, *, clock: Callable[[], float] = time.time) -> None:
        self.conn, self.http, self.clock = conn, http, clock
        self.app_key, self.secret = conn.login, conn.password
        extra = conn.extra or {}
        self.shop_id = str(extra.get("shop_id") or "")
        self.sign_method = str(extra.get("sign_method") or "md5").lower()
        self.decrypt_pii = _flag(extra.get("decrypt_pii"))
        self.margin = float(extra.get("token_margin_s") or REFRESH_MARGIN)
        if not (self.app_key and self.secret and self.shop_id):
            raise ConfigurationError(f"{conn.conn_id}: doudian needs login (app_key), password (app_secret) and "
                                     f"extra.shop_id")
        if self.decrypt_pii:
            pii.require_key()  # decrypted consignees are sealed at rest: refuse here, not mid-run
        # the token lives in this process only: never written, never logged (HttpClient redacts it)
        self._token: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.pace = Pacer(float(extra.get("qps") or DEFAULT_QPS))
        self.token_calls: list[str] = []  # which token calls were made (create / refresh), for the audit

    # -- token ---------------------------------------------------------------------------------

    def access_token(self) -> str:
        """A valid access token: created on first use, refreshed when less than the margin is left."""
        with self._lock:
            now = self.clock()
            if self._token is None:
                self._take(self._token_call(TOKEN_CREATE, {"code": "", "grant_type": "authorization_self",
                                                           "shop_id": self.shop_id}), now)
            elif self._token["expires_at"] - now < self.margin:
                try:
                    self._take(self._token_call(TOKEN_REFRESH, {"grant_type": "refresh_token",
                                                                "refresh_token": self._token["refresh_token"]}), now)
                except ConfigurationError:  # a refused refresh token: a self-use app may create anew
                    self._take(self._token_call(TOKEN_CREATE, {"code": "", "grant_type": "authorization_self",
                                                               "shop_id": self.shop_id}), now)
            return self._token["access_token"]

    def _take(self, data: dict[str, Any], now: float) -> None:
        token = str(data.get("access_token") or "")
        if not token:
            raise ConfigurationError(f"{self.conn.conn_id}: doudian token answer carries no access_token")
        self.http.secrets = tuple({*self.http.secrets, token, str(data.get("refresh_token") or "")} - {""})
        self._token = {"access_token": token, "refresh_token": str(data.get("refresh_token") or ""),
                       "expires_at": now + float(data.get("expires_in") or TOKEN_LIFETIME)}

    def _forget_token(self) -> None:
        with self._lock:
            self._token = None

    def _token_call(self, method: str, business: dict[str, Any]) -> dict[str, Any]:
        self.token_calls.append(method)
        return self._send(method, business, token=None)

    # -- the call ------------------------------------------------------------------------------

    def call(self, method: str, business: dict[str, Any], *, write: bool = False) -> dict[str, Any]:
        """One API call with the current token; a token the platform refuses is renewed once."""
        try:
            return self._send(method, business, token=self.access_token(), write=write)
        except _TokenRefused:
            self._forget_token()
            try:
                return self._send(method, business, token=self.access_token(), write=write)
            except _TokenRefused as exc:
                raise ConfigurationError(f"{exc} (a fresh token was refused too: check the app's authorisation "
                                         f"of shop {self.shop_id})") from None

    def _send(self, *args: Any, **kw: Any) -> Any:
        return self.pace(lambda: self._send_once(*args, **kw), read=not kw.get("write"))

    def _send_once(self, method: str, business: dict[str, Any], *, token: str | None, write: bool = False) -> dict[str, Any]:
        body = param_json({k: v for k, v in business.items() if v is not None})
        query: dict[str, Any] = {"app_key": self.app_key, "method": method, "param_json": body,
                                 "timestamp": shanghai_text(datetime.now().astimezone()), "v": API_VERSION,
                                 "sign_method": self.sign_method}
        query["sign"] = sign("doudian", self.secret, query, sign_method=self.sign_method).sign
        if token is None:
            pass  # token calls: param_json in the query as well (minibear2021/doudian core.py)
        else:
            query.pop("param_json")
            query["access_token"] = token
        resp = self.http.request("POST", "/" + method.replace(".", "/"), params=query, data=body.encode("utf-8"),
                                 headers={"Content-Type": "application/json", "Accept": "application/json"},
                                 expect_json=False, idempotent=not write)
        answer = loads(resp.body, f"doudian {method}")
        if not isinstance(answer, dict):
            raise DataError(f"doudian {method}: answer is not an object (HTTP {resp.status})")
        err = answer.get("err_no")
        ok = (err in (0, "0")) if err is not None else answer.get("code") in (10000, "10000")
        if not ok:
            raise _error(method, answer, token is not None)
        data = answer.get("data")
        return data if isinstance(data, dict) else {"_list": data} if isinstance(data, list) else {}

    # -- reads ---------------------------------------------------------------------------------
    def _list(self, start: datetime, end: datetime, page: int, size: int) -> dict[str, Any]:
        # UNVERIFIED: whether update_time_end is inclusive; end is sent as is, so an order updated at
        # exactly that second may come in two windows (harmless: orders are upserted), never in none
        return self.call(LIST, {"update_time_start": int(aware(start).timestamp()),
                                "update_time_end": int(aware(end).timestamp()),
                                "order_by": "update_time", "page": page, "size": size})

    def count(self, start: datetime, end: datetime) -> int:
        return int(self._list(start, end, FIRST_PAGE, 1).get("total") or 0)

    def window(self, start: datetime, end: datetime) -> ShopWindow:
        """Every order updated in [start, end). Sorted by update time descending, so paged from the last
        page back (an order changing while we page moves to page 0, already behind us, or out of the
        window); the whole window is read again while the platform's total moves under us."""
        for _ in range(3):
            first = self._list(start, end, FIRST_PAGE, self.page_size)
            total = int(first.get("total") or 0)
            found: dict[str, Record] = {}
            bad: list[Unreadable] = []
            pages = max(1, -(-total // self.page_size))
            for page in range(FIRST_PAGE + pages - 1, FIRST_PAGE - 1, -1):
                got = first if page == FIRST_PAGE else self._list(start, end, page, self.page_size)
                for raw in got.get("shop_order_list") or []:
                    try:
                        order = self._normalise(raw)
                    except DataError as exc:
                        bad.append(Unreadable.of(raw, lambda r: r.get("order_id"), exc))
                        continue
                    found[order["tid"]] = order
            again = int(self._list(start, end, FIRST_PAGE, 1).get("total") or 0)
            if again == total:
                break
        return ShopWindow(self._finish(list(found.values())), total, bad)

    def _detail(self, tid: str) -> dict[str, Any]:
        detail = self.call(DETAIL, {"shop_order_id": tid}).get("shop_order_detail")
        if not isinstance(detail, dict) or not detail:
            raise DataError(f"doudian {DETAIL} {tid}: no shop_order_detail in the answer")
        return detail

    def by_id(self, tids: Sequence[str]) -> list[Record]:
        return self._finish([self._normalise(self._detail(str(t))) for t in tids])

    def _normalise(self, raw: dict[str, Any]) -> Record:
        return normalise(raw)

    def _finish(self, orders: list[Record]) -> list[Record]:
        """Decrypt the consignees when the connection asks for it; the ciphertext bookkeeping goes."""
        if self.decrypt_pii:
            self._decrypt(orders)
        for o in orders:
            o["consignee"].pop("_cipher", None)
            o["consignee"].pop("_region", None)
        return orders

    # -- PII -----------------------------------------------------------------------------------
    def _decrypt(self, orders: list[Record]) -> None:
        """Replace the consignee's ciphertexts by the platform's decryption (order.batchDecrypt)."""
        wanted = [(o, k) for o in orders for k in ("name", "phone", "address_detail")
                  if o["consignee"].get("encrypted") and o["consignee"]["_cipher"].get(k)]
        plain: dict[tuple[str, str], str] = {}
        for i in range(0, len(wanted), DECRYPT_BATCH):
            chunk = wanted[i:i + DECRYPT_BATCH]
            infos = [{"auth_id": o["tid"], "cipher_text": o["consignee"]["_cipher"][k]} for o, k in chunk]
            data = self.call(DECRYPT, {"cipher_infos": infos})
            for d in data.get("decrypt_infos") or []:
                if d.get("err_no") in (None, 0, "0") and d.get("decrypt_text") is not None:
                    plain[(str(d.get("auth_id")), str(d.get("cipher_text")))] = str(d["decrypt_text"])
        for o in orders:
            c = o["consignee"]
            cipher = c.get("_cipher") or {}
            got = {k: plain.get((o["tid"], v)) for k, v in cipher.items() if v}
            if cipher and all(v is not None for v in got.values()):
                c["name"] = got.get("name", c["name"])
                c["phone"] = got.get("phone", c["phone"])
                if "address_detail" in got:
                    c["address"] = (c.get("_region") or "") + got["address_detail"]
                c["encrypted"], c["decrypted"] = False, True  # the flow seals it before storing (hub.pii)

    # -- shipments -----------------------------------------------------------------------------
    def carrier_code(self, name: str) -> str | None:
        """The company_code for a hub carrier name: the connection's extra.carrier_codes {name: code}
        (the shop's own logisticsCompanyList), else carriers.yaml."""
        return _carrier_codes(self.conn).get(name) or carriers.code(self.key, name)

    def _held(self, tid: str) -> tuple[set[str], list[dict[str, Any]]]:
        """The tracking numbers the platform already holds for the order, and its product lines."""
        detail = self._detail(tid)
        tracking = {str(p.get("tracking_no")) for p in detail.get("logistics_info") or [] if p.get("tracking_no")}
        return tracking, [s for s in detail.get("sku_order_list") or [] if isinstance(s, dict)]

    def ship(self, record: Record) -> WriteResult:
        key, tid, tracking = str(record["_key"]), str(record["tid"]), str(record["tracking_no"])
        company = self.carrier_code(str(record.get("carrier") or ""))
        if company is None:
            return WriteResult(key, "failed", error=carriers.unknown(self.key, str(record.get("carrier"))),
                               error_class="configuration")
        try:
            held, lines = self._held(tid)
        except DataError as exc:
            return WriteResult(key, "failed", native_key=tid, error=str(exc), error_class="data")
        if tracking in held:
            return WriteResult(key, "unchanged", native_key=tid)
        oids = [str(o) for o in record.get("oids") or []]
        every = {str(s.get("order_id")) for s in lines}
        unknown = [o for o in oids if o not in every]
        if unknown:
            return WriteResult(key, "failed", native_key=tid, error=f"doudian order {tid} has no lines "
                               f"{', '.join(unknown)}", error_class="data")
        if oids and set(oids) != every:
            qty = {str(s.get("order_id")): int(s.get("item_num") or 1) for s in lines}
            method = SHIP_PART
            business: dict[str, Any] = {
                "order_id": tid, "request_id": key,  # the hub's shipment id: a resend is the same request
                "pack_list": [{"company_code": company, "logistics_code": tracking,
                               "shipped_order_info": [{"shipped_order_id": o, "shipped_num": qty[o]} for o in oids]}]}
        else:
            method = SHIP
            business = {"order_id": tid, "company_code": company, "logistics_code": tracking}
        try:
            self.call(method, business, write=True)
        except AmbiguousWriteError:
            held, _ = self._held(tid)
            if tracking in held:
                return WriteResult(key, "created", native_key=tid)
            raise
        except DataError as exc:
            return WriteResult(key, "failed", native_key=tid, error=str(exc), error_class="data")
        return WriteResult(key, "created", native_key=tid)


PLATFORM = Doudian


class _TokenRefused(HubError):
    failure_class = "configuration"


def _error(method: str, answer: dict[str, Any], with_token: bool) -> HubError:
    err = answer.get("err_no", answer.get("code"))
    text = (f"doudian {method}: err_no {err} {answer.get('message') or answer.get('msg') or ''} "
            f"{answer.get('sub_code') or ''} {answer.get('sub_msg') or ''}").strip()
    try:
        err = int(err)
    except (TypeError, ValueError):
        pass
    if err in TOKEN_CODES and with_token:
        return _TokenRefused(text)
    if err in PERMISSION_CODES or (err in TOKEN_CODES and not with_token):
        return ConfigurationError(text + " (the app's permissions or the shop's authorisation)")
    if err in DECRYPT_QUOTA_CODES and method == DECRYPT:
        return QuotaExceededError(text + " (the shop's decrypt quota)")
    if method in (TOKEN_CREATE, TOKEN_REFRESH):
        return ConfigurationError(text + " (token: check app_key, app_secret and extra.shop_id)")
    return DataError(text)


def _carrier_codes(conn: ConnectionInfo) -> dict[str, str]:
    """extra.carrier_codes: {hub carrier name: platform code}, a dict or its JSON text."""
    raw = (conn.extra or {}).get("carrier_codes") or {}
    if isinstance(raw, str):
        import json
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ConfigurationError(f"{conn.conn_id}: extra.carrier_codes is not JSON") from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{conn.conn_id}: extra.carrier_codes must map carrier names to codes")
    return {str(k): str(v) for k, v in raw.items()}


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


def _fen(value: Any, field: str) -> Decimal:
    return Decimal(money.fen_to_yuan(value if value not in (None, "") else 0, field=field))


def _time(value: Any, what: str) -> datetime | None:
    if value in (None, "", 0, "0"):
        return None
    return parse_shanghai(value, what)


def _status(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def normalise(raw: dict[str, Any]) -> Record:
    """A 抖店 shop order (searchList item or orderDetail) as the normalised shop order; 分 → 元 text."""
    tid = tid_text(raw.get("order_id"))
    status = _status(raw.get("order_status"))
    if status not in STATES:
        raise DataError(f"doudian order {tid}: unknown order_status {raw.get('order_status')!r}", field="order_status")
    lines = []
    for s in raw.get("sku_order_list") or []:
        qty = int(s.get("item_num") or 0)
        # goods_price is the unit price (商品单价); origin_amount is "商品现价" in the public sample
        # (fs:70525997113), read as the unit price only when goods_price is absent.
        # UNVERIFIED: whether origin_amount is per unit or per line (the sample has one item)
        price = _fen(s.get("goods_price") if s.get("goods_price") not in (None, "") else s.get("origin_amount"),
                     "sku_order_list.goods_price")
        # UNVERIFIED: whether a line's pay_amount includes its share of postage; its post_amount
        # (快递费) is taken off so that Σ line payment + post_fee = the order's payment
        paid = _fen(s.get("pay_amount"), "sku_order_list.pay_amount") - _fen(s.get("post_amount"),
                                                                           "sku_order_list.post_amount")
        after = s.get("after_sale_info") or {}
        refund = REFUNDS.get(_status(after.get("refund_status") if after.get("refund_status") is not None else 0))
        if refund is None:
            raise DataError(f"doudian order {tid}: unknown refund_status {after.get('refund_status')!r}",
                            field="refund_status")
        sku = s.get("out_sku_id") or s.get("code") or None
        lines.append({
            "oid": tid_text(s.get("order_id")),
            "outer_sku": str(sku) if sku not in (None, "", "0") else None,
            "title": str(s.get("product_name") or ""),
            "quantity": str(qty),
            "price": f"{price:.2f}",
            "discount": f"{price * qty - paid:.2f}",
            "payment": f"{paid:.2f}",
            "refund_status": refund,
            # UNVERIFIED: the list gives no refunded quantity per line; a refunded line counts whole
            "refunded_quantity": str(qty if refund == "refunded" else 0),
        })
    modified = parse_shanghai(raw.get("update_time"), "update_time")
    addr = raw.get("post_addr") or {}
    region = "".join(str((addr.get(k) or {}).get("name") or "") for k in ("province", "city", "town", "street"))
    cipher = {"name": raw.get("encrypt_post_receiver") or "", "phone": raw.get("encrypt_post_tel") or "",
              "address_detail": addr.get("encrypt_detail") or ""}
    encrypted = any(cipher.values())
    detail = addr.get("encrypt_detail") or addr.get("detail") or ""
    paid_at = _time(raw.get("pay_time"), "pay_time")
    return {
        "tid": tid, "platform": "doudian", "status": str(status), "state": STATES[status],
        "created": iso(parse_shanghai(raw.get("create_time"), "create_time")), "modified": iso(modified),
        "paid_at": iso(paid_at), "version": iso(modified),
        "total": money.total(Decimal(ln["price"]) * int(ln["quantity"]) for ln in lines),
        "post_fee": f"{_fen(raw.get('post_amount'), 'post_amount'):.2f}",
        "discount": money.total(ln["discount"] for ln in lines),
        "payment": f"{_fen(raw.get('pay_amount'), 'pay_amount'):.2f}",
        # 抖店 gives an encrypted doudian_open_id; a masked nick only where the answer has one
        # (UNVERIFIED: user_nick_name is not in the public sample)
        "buyer_nick": raw.get("user_nick_name") or None,
        "buyer_memo": raw.get("buyer_words") or None, "seller_memo": raw.get("seller_words") or None,
        "consignee": {"name": raw.get("encrypt_post_receiver") or raw.get("mask_post_receiver") or None,
                      "phone": raw.get("encrypt_post_tel") or raw.get("mask_post_tel") or None,
                      "address": (region + detail) or None, "encrypted": encrypted,
                      "_cipher": cipher if encrypted else {}, "_region": region},
        "lines": lines,
    }
