"""抖店 and 有赞 contract (connectors/shops/doudian.py, youzan.py): each test names the documented
behaviour and runs against ``shop_doudian`` / ``shop_youzan`` (a real shop when configured, else
the sandbox's stand-ins). Write checks (shipments) need ``"contract_writes": true`` in the
connection's extra (a test shop). What the sandbox holds (``/__sandbox/shops/truth`` and
``stats``) is only read when the target is the sandbox.

有赞's incremental parameters for 4.0.x (start_update / end_update) are UNVERIFIED (not found in
public material): the window test below is the judge of the names youzan.py sends.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from connectors.http import HttpClient
from connectors.shops.doudian import Doudian
from connectors.shops.platform import SHANGHAI
from connectors.shops.youzan import Youzan
from hub.errors import ConfigurationError
from tests.contract.conftest import needs_writes

CONNECTIONS = ("shop_doudian", "shop_youzan")
PLATFORMS = {"doudian": ("shop_doudian", Doudian), "youzan": ("shop_youzan", Youzan)}
YUAN = re.compile(r"^-?\d+\.\d{2}$")
#: 有赞 out_stype ids are the shop's (youzan.logistics.express.get); the contract names 顺丰速运's here.
# UNVERIFIED: "7" is the id the stand-in's express list uses; a real shop sets extra.carrier_codes itself.
YOUZAN_CARRIERS = {"顺丰速运": "7"}


class Clock:
    def __init__(self) -> None:
        import time
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def platform(target, key: str, clock=None, **extra):
    conn_id, cls = PLATFORMS[key]
    conn = target.conns[conn_id]
    more = {"carrier_codes": YOUZAN_CARRIERS} if key == "youzan" and "carrier_codes" not in conn.extra else {}
    conn = replace(conn, extra={**conn.extra, **more, **extra})
    http = HttpClient(conn.base_url(), secrets=conn.secrets(), backoff=0.01)
    return cls(conn, http, clock=clock) if clock else cls(conn, http)


def window_bounds():
    now = datetime.now(SHANGHAI)
    return now - timedelta(days=4), now + timedelta(minutes=1)


def truth(target, key: str) -> dict[str, dict]:
    return {r["tid"]: r for r in target.sandbox.shops("truth")[key]}


@pytest.fixture(params=sorted(PLATFORMS))
def key(request):
    return request.param


def test_a_window_read_gives_every_order_once_with_the_platforms_count(target, key):
    """doudian order.searchList (update_time_start/end, page from 0, size ≤ 100, total) / youzan
    trades.sold.get 4.0.0 (page_no from 1, total_results): every order updated in the window,
    tid as text, once, and the platform's own total."""
    p = platform(target, key)
    start, end = window_bounds()
    w = p.window(start, end)
    tids = [o["tid"] for o in w.orders]
    assert w.orders and all(isinstance(t, str) for t in tids)
    assert len(tids) == len(set(tids)) == w.count, (len(tids), w.count)
    assert not w.bad
    assert p.count(start, end) == w.count
    if target.sandbox is not None:
        held = {t for t, r in truth(target, key).items()
                if start <= datetime.fromisoformat(r["modified"]) <= end}
        assert set(tids) == held


def test_a_narrow_window_holds_only_orders_updated_inside_it(target, key):
    """The window parameters are honoured (for 有赞 the UNVERIFIED start_update/end_update)."""
    p = platform(target, key)
    start, end = window_bounds()
    every = p.window(start, end).orders
    mid = sorted(datetime.fromisoformat(o["modified"]) for o in every)[len(every) // 2]
    a, b = mid - timedelta(hours=3), mid + timedelta(hours=3)
    part = p.window(a, b)
    assert 0 < len(part.orders) < len(every)
    assert all(a <= datetime.fromisoformat(o["modified"]) <= b for o in part.orders)
    inside = {o["tid"] for o in every if a <= datetime.fromisoformat(o["modified"]) <= b}
    assert {o["tid"] for o in part.orders} == inside


def test_money_is_yuan_text_to_the_fen_and_adds_up_where_the_platform_is_consistent(target, key):
    """抖店 sends 分 integers, 有赞 元 text: both come out as 元 text with two decimals; the paid
    amount is the platform's (the stand-in's truth), and lines add up to it for nearly every order."""
    p = platform(target, key)
    orders = p.window(*window_bounds()).orders
    held = truth(target, key) if target.sandbox is not None else {}
    consistent = 0
    for o in orders:
        for f in ("total", "post_fee", "discount", "payment"):
            assert YUAN.match(o[f]), (o["tid"], f, o[f])
        for ln in o["lines"]:
            assert YUAN.match(ln["price"]) and YUAN.match(ln["payment"]) and YUAN.match(ln["discount"])
            assert ln["quantity"].isdigit() and ln["refund_status"] in ("none", "refunding", "refunded")
            assert Decimal(ln["price"]) * int(ln["quantity"]) - Decimal(ln["discount"]) == Decimal(ln["payment"])
        if held:
            assert o["payment"] == held[o["tid"]]["paid"], (o["tid"], o["payment"], held[o["tid"]]["paid"])
        lines_paid = sum((Decimal(ln["payment"]) for ln in o["lines"]), Decimal("0"))
        consistent += lines_paid + Decimal(o["post_fee"]) == Decimal(o["payment"])
        assert o["state"] in ("unpaid", "paid", "shipped", "completed", "cancelled")
        assert datetime.fromisoformat(o["modified"]).utcoffset() == timedelta(hours=8)
    assert consistent >= 0.9 * len(orders), (consistent, len(orders))


def test_details_by_id_are_the_window_orders(target, key):
    """doudian order.orderDetail {shop_order_id} / youzan trade.get 4.0.0 {tid}: the same order as
    the window read gives."""
    p = platform(target, key)
    orders = p.window(*window_bounds()).orders[:5]
    again = p.by_id([o["tid"] for o in orders])
    assert again == orders


def test_states_follow_the_platform(target, key):
    """The normalised state agrees with what the platform holds (stand-in truth)."""
    if target.sandbox is None:
        pytest.skip("needs the sandbox's truth")
    held = truth(target, key)
    for o in platform(target, key).window(*window_bounds()).orders:
        assert o["state"] == held[o["tid"]]["state"], (o["tid"], o["status"], held[o["tid"]]["state"])


def test_doudian_token_is_created_once_and_refreshed_before_it_expires(target):
    """/token/create (authorization_self, shop_id) on first use; /token/refresh when less than the
    margin of expires_in (604800 s) is left; the token is never in an error text."""
    clock = Clock()
    p = platform(target, "doudian", clock=clock)
    start, end = window_bounds()
    p.count(start, end)
    p.count(start, end)
    assert p.token_calls == ["token.create"]
    first = p._token["access_token"]
    clock.t = p._token["expires_at"] - p.margin + 1  # inside the margin
    p.count(start, end)
    assert p.token_calls == ["token.create", "token.refresh"]
    assert p._token["access_token"] != first


def test_a_token_the_platform_refuses_is_renewed_once(target, key):
    """A token that died early (抖店 err_no 30002, 有赞 gateway 4201) is renewed and the call repeated."""
    if target.sandbox is None:
        pytest.skip("needs the sandbox's token switch")
    p = platform(target, key)
    start, end = window_bounds()
    n = p.count(start, end)
    before = len(p.token_calls) if key == "doudian" else p.token_calls
    target.sandbox.shops("tokens", platform=key, expire_all=True)
    assert p.count(start, end) == n
    after = len(p.token_calls) if key == "doudian" else p.token_calls
    assert after == before + 1


def test_wrong_credentials_are_a_configuration_error_without_the_secret(target, key):
    conn_id, cls = PLATFORMS[key]
    conn = replace(target.conns[conn_id], password="wrong-secret-0000")
    p = cls(conn, HttpClient(conn.base_url(), secrets=conn.secrets(), backoff=0.01))
    with pytest.raises(ConfigurationError) as err:
        p.count(*window_bounds())
    assert "wrong-secret-0000" not in str(err.value)


def _paid_unshipped(target, key, p, min_lines=1):
    held = truth(target, key)
    shipped = {s["tid"] for s in target.sandbox.shops("stats")[key]["shipments"]}
    for o in p.window(*window_bounds()).orders:
        if held[o["tid"]]["state"] == "paid" and o["tid"] not in shipped and len(o["lines"]) >= min_lines \
                and all(ln["refund_status"] == "none" for ln in o["lines"]):
            return o
    pytest.skip(f"no paid, unshipped {key} order with {min_lines}+ lines in the seed")


def test_a_shipment_is_sent_once_and_its_repeat_is_unchanged(target, key):
    """doudian order.logisticsAdd / youzan logistics.online.confirm: created, then the same tid +
    tracking number again is unchanged (the platform already holds it), never a second send."""
    needs_writes(target, PLATFORMS[key][0])
    p = platform(target, key)
    o = _paid_unshipped(target, key, p)
    rec = {"_key": f"hub-ship-{key}-1", "tid": o["tid"], "oids": None, "carrier": "顺丰速运",
           "tracking_no": f"SF{o['tid'][-10:]}"}
    first = p.ship(rec)
    assert first.status == "created", first
    assert p.ship(rec).status == "unchanged"
    sends = [s for s in target.sandbox.shops("stats")[key]["shipments"]
             if s["tid"] == o["tid"] and s["tracking_no"] == rec["tracking_no"]]
    assert [s["sends"] for s in sends] == [1]
    assert p.by_id([o["tid"]])[0]["state"] == "shipped"


def test_a_partial_shipment_sends_only_its_lines(target, key):
    """doudian order.logisticsAddMultiPack / youzan oids: one line of a two-line order."""
    needs_writes(target, PLATFORMS[key][0])
    p = platform(target, key)
    o = _paid_unshipped(target, key, p, min_lines=2)
    oid = o["lines"][0]["oid"]
    rec = {"_key": f"hub-ship-{key}-2", "tid": o["tid"], "oids": [oid], "carrier": "顺丰速运",
           "tracking_no": f"SP{o['tid'][-10:]}"}
    assert p.ship(rec).status == "created"
    sent = [s for s in target.sandbox.shops("stats")[key]["shipments"] if s["tracking_no"] == rec["tracking_no"]]
    assert [s["oids"] for s in sent] == [[oid]]
    assert p.ship(rec).status == "unchanged"


def test_a_shipment_of_an_unknown_carrier_or_a_refunded_order_fails_with_the_reason(target, key):
    needs_writes(target, PLATFORMS[key][0])
    p = platform(target, key)
    o = _paid_unshipped(target, key, p)
    bad = p.ship({"_key": "hub-ship-x", "tid": o["tid"], "oids": None, "carrier": "没有这家快递",
                  "tracking_no": "X1"})
    assert bad.status == "failed" and "carriers.yaml" in (bad.error or "")
    target.sandbox.shops("refund", platform=key, tid=o["tid"])
    refused = p.ship({"_key": "hub-ship-y", "tid": o["tid"], "oids": None, "carrier": "顺丰速运",
                      "tracking_no": "SFREFUNDED1"})
    assert refused.status == "failed" and refused.error


@pytest.fixture
def fernet_key(monkeypatch):
    """Airflow's Fernet key, as a deployment that decrypts buyer data must set it."""
    from airflow.models.crypto import get_fernet
    from cryptography.fernet import Fernet

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    get_fernet.cache_clear()
    yield
    get_fernet.cache_clear()


def test_doudian_pii_is_decrypted_only_when_asked_and_stored_sealed(target, fernet_key):
    """Buyer PII comes as ciphertext (encrypted: true); order.batchDecrypt runs only with
    extra.decrypt_pii true; the plain consignee then is sealed with Airflow's Fernet key before
    the hub stores it (shop_orders' ship_to), never kept in the clear."""
    import json

    from flows.shop_orders import _ship_to
    from hub import pii

    orders = platform(target, "doudian").window(*window_bounds()).orders[:3]
    assert all(o["consignee"]["encrypted"] for o in orders)
    assert not pii.is_sealed(_ship_to(orders[0]["consignee"]))          # ciphertext is stored as given
    plain = platform(target, "doudian", decrypt_pii=True).by_id([o["tid"] for o in orders])
    for a, b in zip(orders, plain):
        assert b["consignee"]["encrypted"] is False
        assert b["consignee"]["name"] != a["consignee"]["name"] and "#" not in b["consignee"]["name"]
        assert "_cipher" not in b["consignee"]
        stored = _ship_to(b["consignee"])
        assert pii.is_sealed(stored) and b["consignee"]["name"] not in stored
        assert json.loads(pii.open_sealed(stored))["name"] == b["consignee"]["name"]


def test_doudian_decrypt_without_a_fernet_key_is_refused(target, monkeypatch):
    from airflow.models.crypto import get_fernet

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    get_fernet.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="fernet key"):
            platform(target, "doudian", decrypt_pii=True)
    finally:
        get_fernet.cache_clear()


def test_the_platforms_pushes_verify_and_forged_or_stale_ones_are_refused(target, key):
    """The stand-in's push sender (有赞 Event-Sign, 抖店 app-id + event-sign) against push.verify:
    a genuine push is taken with its order and version, a forged or stale one refused."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from connectors.shops import push

    if target.sandbox is None:
        pytest.skip("needs the sandbox's push sender")
    got: list[tuple[dict, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.append(({k: v for k, v in self.headers.items()}, body))
            status, answer = push.answer(key, True)
            data = __import__("json").dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tid = platform(target, key).window(*window_bounds()).orders[0]["tid"]
        url = f"http://127.0.0.1:{server.server_port}/push"
        conn = target.conns[PLATFORMS[key][0]]
        for flags in ({}, {"forged": True}, {"stale": True}):
            got.clear()
            target.sandbox.shops("push", platform=key, url=url, tids=[tid], **flags)
            assert len(got) == 1
            headers, body = got[0]
            now = datetime.now(SHANGHAI)
            if not flags:
                m = push.verify(key, headers, body, conn, now)
                assert m.tid == tid and m.version and now - m.sent_at < timedelta(minutes=1)
            else:
                with pytest.raises(push.ForgedPush if "forged" in flags else push.StalePush):
                    push.verify(key, headers, body, conn, now)
    finally:
        server.shutdown()
