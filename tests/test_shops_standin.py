"""The shop platforms' stand-in over HTTP, with every signature computed here with hashlib / hmac
(the oracle: the platforms' published rules, not the sandbox's or a connector's code)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests

from sandbox.harness import Sandbox

CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Any:
    sb = Sandbox(tmp_path_factory.mktemp("shops"), accounts=40, shop_orders=400).seed()
    with sb:
        yield sb


def fmt(dt: datetime) -> str:
    return dt.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def joined(p: dict[str, str]) -> str:
    return "".join(f"{k}{v}" for k, v in sorted(p.items()) if k != "sign")


def md5_sign(secret: str, p: dict[str, str]) -> str:
    return hashlib.md5(f"{secret}{joined(p)}{secret}".encode()).hexdigest().upper()


def top(box: Sandbox, method: str, *, secret: str | None = None, session: str | None = None,
        sign_method: str = "md5", **kw: str) -> dict[str, Any]:
    c = box.credentials()["shops"]["taobao"]
    p = {"method": method, "app_key": c["app_key"], "session": session or c["session"], "format": "json",
         "v": "2.0", "sign_method": sign_method, "timestamp": fmt(datetime.now(CST)), **kw}
    key = secret or c["app_secret"]
    p["sign"] = (md5_sign(key, p) if sign_method == "md5"
                 else hmac.new(key.encode(), joined(p).encode(), hashlib.md5).hexdigest().upper())
    return requests.post(f"{box.shops_url}/router/rest", data=p, timeout=30).json()


def increment(box: Sandbox, start: datetime, end: datetime, **kw: str) -> dict[str, Any]:
    return top(box, "taobao.trades.sold.increment.get", start_modified=fmt(start), end_modified=fmt(end),
               fields="tid,modified,payment,orders", **kw)


def test_top_signatures_sessions_and_window(box: Sandbox) -> None:
    now = datetime.now(CST)
    bad = increment(box, now - timedelta(hours=2), now, secret="not-the-secret")
    assert bad["error_response"]["code"] == 25 and bad["error_response"]["msg"] == "Invalid signature"
    wrong = top(box, "taobao.trades.sold.increment.get", session="6100wrong",
                start_modified=fmt(now - timedelta(hours=1)), end_modified=fmt(now))
    assert wrong["error_response"]["code"] == 27 and wrong["error_response"]["sub_code"] == "invalid-sessionkey"
    too_wide = increment(box, now - timedelta(days=1, seconds=1), now)
    assert too_wide["error_response"]["code"] == 41
    ok = increment(box, now - timedelta(hours=23), now, sign_method="hmac", page_size="100")
    answer = ok["trades_sold_increment_get_response"]
    assert answer["total_results"] > 0 and "has_next" not in answer


def test_top_pages_newest_first_and_has_next(box: Sandbox) -> None:
    now = datetime.now(CST)
    first = increment(box, now - timedelta(hours=20), now, page_size="20", page_no="1", use_has_next="true")
    body = first["trades_sold_increment_get_response"]
    assert body["has_next"] is True and "total_results" not in body
    full = increment(box, now - timedelta(hours=20), now, page_size="100")["trades_sold_increment_get_response"]
    modified = [t["modified"] for t in full["trades"]["trade"]]
    assert modified == sorted(modified, reverse=True)
    assert isinstance(full["trades"]["trade"][0]["tid"], int)  # a number in lists, text in fullinfo
    tid = str(full["trades"]["trade"][0]["tid"])
    detail = top(box, "taobao.trade.fullinfo.get", tid=tid, fields="tid,payment,post_fee,orders")
    trade = detail["trade_fullinfo_get_response"]["trade"]
    assert trade["tid"] == tid
    # money to the fen in 元 text (the seed keeps paid = Σ line payment + postage, few exceptions)
    from decimal import Decimal
    lines = sum(Decimal(o["payment"]) for o in trade["orders"]["order"])
    truth = {r["tid"]: r for r in box.shops("truth")["taobao"]}
    assert Decimal(truth[tid]["paid"]) == Decimal(trade["payment"])
    assert abs(lines + Decimal(trade["post_fee"]) - Decimal(trade["payment"])) <= Decimal("1.00")


def test_churn_resorts_the_window_while_it_is_paged(box: Sandbox) -> None:
    now = datetime.now(CST)
    start, end = now - timedelta(hours=10), now
    before = increment(box, start, end, page_size="100")["trades_sold_increment_get_response"]
    box.shops("churn", platform="taobao", n=2)
    page1 = increment(box, start, end, page_size="100")["trades_sold_increment_get_response"]
    page2 = increment(box, start, end, page_size="100")["trades_sold_increment_get_response"]
    after = increment(box, start, end, page_size="100")["trades_sold_increment_get_response"]
    assert page1["total_results"] == before["total_results"] + 1  # one order added inside the window
    assert page2["total_results"] == page1["total_results"] + 1
    assert after["total_results"] == page2["total_results"]  # churn was for two list calls only
    order_before = [t["tid"] for t in before["trades"]["trade"]]
    order_after = [t["tid"] for t in after["trades"]["trade"]]
    assert order_before != order_after[: len(order_before)]
    assert box.shops("stats")["taobao"]["churned"] == 6


def test_repeated_shipment_is_not_a_second_shipment(box: Sandbox) -> None:
    truth = box.shops("truth")["taobao"]
    tid = next(r["tid"] for r in truth if r["state"] == "paid")
    first = top(box, "taobao.logistics.offline.send", tid=tid, out_sid="SF1234567890", company_code="SF")
    assert first["logistics_offline_send_response"]["shipping"]["is_success"] is True
    again = top(box, "taobao.logistics.offline.send", tid=tid, out_sid="SF1234567890", company_code="SF")
    assert again["error_response"]["sub_code"] == "isv.logistics-offline-service-error:B04"
    sent = [s for s in box.shops("stats")["taobao"]["shipments"] if s["tid"] == tid]
    assert [(s["tracking_no"], s["sends"]) for s in sent] == [("SF1234567890", 2)]
    trade = top(box, "taobao.trade.fullinfo.get", tid=tid, fields="status")["trade_fullinfo_get_response"]["trade"]
    assert trade["status"] == "WAIT_BUYER_CONFIRM_GOODS"


def pdd(box: Sandbox, type_: str, secret: str | None = None, **kw: Any) -> dict[str, Any]:
    c = box.credentials()["shops"]["pdd"]
    p = {"type": type_, "client_id": c["app_key"], "access_token": c["access_token"], "data_type": "JSON",
         "timestamp": str(int(time.time())), **{k: str(v) for k, v in kw.items()}}
    p["sign"] = md5_sign(secret or c["app_secret"], p)
    return requests.post(f"{box.shops_url}/api/router", data=p, timeout=30).json()


def test_pdd_window_sort_and_sign(box: Sandbox) -> None:
    end = int(time.time())
    assert "error_response" in pdd(box, "pdd.order.number.list.increment.get", secret="x",
                                   start_updated_at=end - 600, end_updated_at=end)
    wide = pdd(box, "pdd.order.number.list.increment.get", start_updated_at=end - 1801, end_updated_at=end)
    assert "error_response" in wide
    found = None
    for k in range(0, 48):  # find a 30-minute window with orders
        lo = end - (k + 1) * 1800
        body = pdd(box, "pdd.order.number.list.increment.get", start_updated_at=lo, end_updated_at=lo + 1800,
                   page=1, page_size=100)["order_sn_increment_get_response"]
        if body["total_count"] >= 2:
            found = body
            break
    assert found is not None
    stamps = [o["updated_at"] for o in found["order_sn_list"]]
    assert stamps == sorted(stamps, reverse=True) and found["has_next"] is False
    sn = found["order_sn_list"][0]["order_sn"]
    assert pdd(box, "pdd.order.information.get", order_sn=sn)["order_info_get_response"]["order_info"]["order_sn"] == sn


def jos(box: Sandbox, method: str, token: str | None = None, **args: Any) -> dict[str, Any]:
    c = box.credentials()["shops"]["jd"]
    p = {"method": method, "app_key": c["app_key"], "access_token": token or c["access_token"],
         "timestamp": fmt(datetime.now(CST)), "v": "2.0",
         "360buy_param_json": json.dumps(args, ensure_ascii=False)}
    p["sign"] = md5_sign(c["app_secret"], p)
    return requests.post(f"{box.shops_url}/routerjson", data=p, timeout=30).json()


def jos_search(box: Sandbox, **args: Any) -> dict[str, Any]:
    raw = jos(box, "jingdong.pop.order.search", **args)
    return json.loads(raw["jingdong_pop_order_search_responce"]["searchorderinfo_result"])


def test_jos_responce_keys_and_double_encoding(box: Sandbox) -> None:
    now = datetime.now(CST)
    window = {"start_date": fmt(now - timedelta(hours=5)), "end_date": fmt(now), "page": "1", "page_size": "50"}
    result = jos_search(box, **window)
    assert result["apiResult"]["success"] is True and result["orderTotal"] == len(result["orderInfoList"]) > 0
    assert jos(box, "jingdong.pop.order.search", token="stale", **window)["error_response"]["code"] == "19"


def test_jos_order_total_counts_the_order_state_filter(box: Sandbox) -> None:
    """orderTotal counts the filtered query, and paging by it gives exactly the filtered orders."""
    now = datetime.now(CST)
    window = {"start_date": fmt(now - timedelta(days=3)), "end_date": fmt(now)}
    everything = jos_search(box, **window, page=1, page_size=100)
    states = {o["orderState"] for o in everything["orderInfoList"]}
    assert len(states) > 2 and states <= {"WAIT_SELLER_STOCK_OUT", "WAIT_GOODS_RECEIVE_CONFIRM", "FINISHED_L",
                                          "TRADE_CANCELED"}  # the documented texts; JOS shows no unpaid order
    asked = "WAIT_SELLER_STOCK_OUT,WAIT_GOODS_RECEIVE_CONFIRM,LOCKED"
    first = jos_search(box, **window, order_state=asked, page=1, page_size=20)
    rows = [o for page in range(1, -(-first["orderTotal"] // 20) + 1)
            for o in jos_search(box, **window, order_state=asked, page=page, page_size=20)["orderInfoList"]]
    assert 0 < first["orderTotal"] < everything["orderTotal"] and len(rows) == first["orderTotal"]
    assert {o["orderState"] for o in rows} <= set(asked.split(","))
    assert len({o["orderId"] for o in rows}) == len(rows)


def test_jos_shipment_takes_the_documented_parameters(box: Sandbox) -> None:
    """pop.order.shipment {orderId long, logiCoprId, logiNo} (JD's SDK PopOrderShipmentRequest);
    sopjosshipment_result is an object; a repeat is refused and counted, never booked twice."""
    tid = next(r["tid"] for r in box.shops("truth")["jd"] if r["state"] == "paid")

    def ship(**args: Any) -> dict[str, Any]:
        return jos(box, "jingdong.pop.order.shipment", **args)["jingdong_pop_order_shipment_responce"][
            "sopjosshipment_result"]

    other_api = ship(order_id=tid, logistics_id="467", waybill="SF7000000001")
    assert other_api["success"] is False
    first = ship(orderId=int(tid), logiCoprId="467", logiNo="SF7000000001")
    assert first["success"] is True and set(first) == {"success", "errorCode", "chineseErrCode", "englishErrCode"}
    again = ship(orderId=int(tid), logiCoprId="467", logiNo="SF7000000001")
    assert again["success"] is False and again["errorCode"]
    assert ship(orderId=int(tid), logiCoprId="99999", logiNo="X1")["success"] is False
    sent = [s for s in box.shops("stats")["jd"]["shipments"] if s["tid"] == tid]
    assert [(s["tracking_no"], s["company"], s["sends"]) for s in sent] == [("SF7000000001", "467", 2)]
    detail = json.loads(jos(box, "jingdong.pop.order.get", order_id=tid)["jingdong_pop_order_get_responce"][
        "orderDetailInfo"])
    assert detail["orderInfo"]["orderState"] == "WAIT_GOODS_RECEIVE_CONFIRM" and detail["orderInfo"]["waybill"] == "SF7000000001"


def doudian(box: Sandbox, method: str, params: dict[str, Any], token: str | None = None,
            sign_method: str = "md5") -> dict[str, Any]:
    c = box.credentials()["shops"]["doudian"]
    param_json = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    ts = fmt(datetime.now(CST))
    pattern = f"{c['app_secret']}app_key{c['app_key']}method{method}param_json{param_json}timestamp{ts}v2{c['app_secret']}"
    sign = (hmac.new(c["app_secret"].encode(), pattern.encode(), hashlib.sha256).hexdigest()
            if sign_method == "hmac-sha256" else hashlib.md5(pattern.encode()).hexdigest())
    q = {"app_key": c["app_key"], "method": method, "timestamp": ts, "v": "2", "sign_method": sign_method,
         "sign": sign, **({"access_token": token} if token else {"param_json": param_json})}
    return requests.post(f"{box.shops_url}/{method.replace('.', '/')}", params=q,
                         data=param_json.encode() if token else None, timeout=30).json()


def test_doudian_tokens_expire_and_refresh(box: Sandbox) -> None:
    shop_id = box.credentials()["shops"]["doudian"]["shop_id"]
    made = doudian(box, "token.create", {"code": "", "grant_type": "authorization_self", "shop_id": shop_id})
    assert made["code"] == 10000 and made["data"]["expires_in"] == 604800
    now = int(time.time())
    window = {"update_time_start": now - 3 * 86400, "update_time_end": now, "page": 0, "size": 100,
              "order_by": "update_time", "order_asc": False}
    listed = doudian(box, "order.searchList", window, made["data"]["access_token"], sign_method="hmac-sha256")
    assert listed["code"] == 10000 and listed["data"]["total"] == 400 and listed["data"]["has_more"] is True
    first = listed["data"]["shop_order_list"][0]
    assert isinstance(first["pay_amount"], int) and first["encrypt_post_tel"].startswith("#")
    forged = doudian(box, "order.searchList", window, made["data"]["access_token"])
    forged_sign = requests.post(f"{box.shops_url}/order/searchList", params={"app_key": "x"}, timeout=10).json()
    assert forged["code"] == 10000 and forged_sign["code"] != 10000
    box.shops("tokens", platform="doudian", ttl=1)
    short = doudian(box, "token.create", {"code": "", "grant_type": "authorization_self", "shop_id": shop_id})
    assert short["data"]["expires_in"] == 1
    time.sleep(1.2)
    expired = doudian(box, "order.searchList", window, short["data"]["access_token"])
    assert expired["code"] != 10000 and expired["sub_code"] == "isv.access-token-expired"
    box.shops("tokens", platform="doudian", ttl=604800)
    fresh = doudian(box, "token.refresh", {"grant_type": "refresh_token", "refresh_token": short["data"]["refresh_token"]})
    assert doudian(box, "order.searchList", window, fresh["data"]["access_token"])["code"] == 10000
    cipher = first["encrypt_post_tel"]
    plain = doudian(box, "order.batchDecrypt", {"cipher_infos": [{"auth_id": first["order_id"], "cipher_text": cipher}]},
                    fresh["data"]["access_token"])
    assert plain["data"]["decrypt_infos"][0]["decrypt_text"].endswith(first["mask_post_tel"][-4:])


def test_youzan_token_orders_and_shipment(box: Sandbox) -> None:
    c = box.credentials()["shops"]["youzan"]
    tok = requests.post(f"{box.shops_url}/auth/token", json={
        "client_id": c["app_key"], "client_secret": c["app_secret"], "authorize_type": "silent",
        "grant_id": c["grant_id"]}, timeout=10).json()["data"]["access_token"]
    now = datetime.now(CST)
    body = requests.post(f"{box.shops_url}/api/youzan.trades.sold.get/4.0.0", params={"access_token": tok}, json={
        "start_update": fmt(now - timedelta(days=3)), "end_update": fmt(now), "page_no": 1, "page_size": 100},
        timeout=30).json()
    assert body["success"] is True and body["data"]["total_results"] == 400
    paid = next(o["full_order_info"] for o in body["data"]["full_order_info_list"]
                if o["full_order_info"]["order_info"]["status"] == "WAIT_SELLER_SEND_GOODS")
    assert "." in paid["pay_info"]["payment"]
    express = requests.post(f"{box.shops_url}/api/youzan.logistics.express.get/3.0.0", params={"access_token": tok},
                            json={}, timeout=10).json()["response"]["allExpress"]
    sf = next(e for e in express if e["name"] == "顺丰速运")  # {display, name, id} (fs:22267300190)
    assert isinstance(sf["id"], int) and {"申通快递", "中通快递"} <= {e["name"] for e in express}
    args = {"tid": paid["order_info"]["tid"], "out_stype": str(sf["id"]), "out_sid": "SF99887766"}
    url = f"{box.shops_url}/api/youzan.logistics.online.confirm/3.0.0"
    assert requests.post(url, params={"access_token": tok}, json=args, timeout=10).json() == {"response": {"is_success": True}}
    assert "error_response" in requests.post(url, params={"access_token": tok}, json=args, timeout=10).json()
    bad = requests.post(url, params={"access_token": "nope"}, json=args, timeout=10).json()
    assert "gw_err_resp" in bad


class _Receiver(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        _Receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"code":0,"msg":"success"}')

    def log_message(self, *args: Any) -> None:
        pass


def test_push_sender_signs_duplicates_forges_and_dates(box: Sandbox) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/push"
    creds = box.credentials()["shops"]
    try:
        tids = [r["tid"] for r in box.shops("truth")["youzan"][:2]]
        _Receiver.got.clear()
        box.shops("push", platform="youzan", url=url, tids=tids, duplicate=True)
        assert len(_Receiver.got) == 4 and _Receiver.got[0][1] == _Receiver.got[1][1]
        for headers, body in _Receiver.got:
            c = creds["youzan"]
            assert headers["event-sign"] == hashlib.md5(c["app_key"].encode() + body + c["app_secret"].encode()).hexdigest()
        _Receiver.got.clear()
        dd_tid = box.shops("truth")["doudian"][0]["tid"]
        box.shops("push", platform="doudian", url=url, tids=[dd_tid], forged=True)
        box.shops("push", platform="doudian", url=url, tids=[dd_tid], stale=True)
        c = creds["doudian"]
        signs = [(h["event-sign"], hashlib.md5(c["app_key"].encode() + b + c["app_secret"].encode()).hexdigest())
                 for h, b in _Receiver.got]
        assert signs[0][0] != signs[0][1] and signs[1][0] == signs[1][1]
        assert all(h["app-id"] == c["app_key"] for h, _ in _Receiver.got)
        stale = json.loads(json.loads(_Receiver.got[1][1])[0]["data"])
        assert stale["update_time"] < time.time() - 3000
        assert box.shops("stats")["youzan"]["pushes_sent"] == 4
    finally:
        server.shutdown()


def test_pay_refund_and_rate_limit(box: Sandbox) -> None:
    truth = box.shops("truth")["taobao"]
    unpaid = next(r["tid"] for r in truth if r["state"] == "unpaid")
    assert box.shops("pay", platform="taobao", tids=[unpaid])["paid"] == [unpaid]
    after = {r["tid"]: r for r in box.shops("truth")["taobao"]}
    assert after[unpaid]["state"] == "paid"
    refunded = box.shops("refund", platform="taobao", tid=unpaid)
    assert refunded["state"] == "cancelled"
    box.shops("limits", platform="taobao", qps=2)
    now = datetime.now(CST)
    answers = [increment(box, now - timedelta(hours=1), now) for _ in range(4)]
    box.shops("limits", platform="taobao", qps=40)
    assert any(a.get("error_response", {}).get("code") == 7 for a in answers)
    assert box.shops("stats")["taobao"]["rate_limited"] >= 1
