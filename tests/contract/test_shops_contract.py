"""TOP, 拼多多 and 京东 JOS contract (connectors/shops/taobao.py, pdd.py, jd.py, seat.py): each test
names the documented behaviour and runs against ``shop_taobao`` / ``shop_pdd`` / ``shop_jd`` (a real
shop when configured, else the sandbox's stand-ins). Reads go through the seat (ShopSeat), which
splits a span into the platform's windows (TOP ≤ 1 day, PDD ≤ 30 min, JOS the seat's default).
Write checks (shipments) need ``"contract_writes": true`` in the connection's extra (a test shop).
What the sandbox holds (``/__sandbox/shops/truth`` and ``stats``) is only read when the target is
the sandbox.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from connectors.shops.seat import ShopSeat
from connectors.shops.platform import SHANGHAI
from hub.errors import ConfigurationError, HubError
from hub.types import Binding
from tests.contract.conftest import needs_writes

CONNECTIONS = ("shop_taobao", "shop_pdd", "shop_jd")
PLATFORMS = {"taobao": "shop_taobao", "pdd": "shop_pdd", "jd": "shop_jd"}
#: the connection extra key holding each platform's seller credential
SESSION_KEY = {"taobao": "session", "pdd": "access_token", "jd": "access_token"}
YUAN = re.compile(r"^-?\d+\.\d{2}$")

def seat(target, key: str, **extra) -> ShopSeat:
    conn = target.conns[PLATFORMS[key]]
    conn = replace(conn, extra={**conn.extra, **extra})
    binding = Binding(role="shop", name=f"{key}_contract", system=key, label=key,
                      connections={"api": conn.conn_id}, options={"erp_customer": "9901"},
                      where="tests/contract/test_shops_contract.py", resolve=lambda _cid: conn)
    s = ShopSeat(binding)
    if hasattr(s.impl.http, "backoff"):
        s.impl.http.backoff = 0.01
    return s


def span():
    now = datetime.now(SHANGHAI)
    return now - timedelta(days=4), now + timedelta(minutes=1)


def truth(target, key: str) -> dict[str, dict]:
    return {r["tid"]: r for r in target.sandbox.shops("truth")[key]}


def held_in(target, key: str, start: datetime, end: datetime) -> set[str]:
    return {t for t, r in truth(target, key).items() if start <= datetime.fromisoformat(r["modified"]) < end}


def by_platform(*marks_for_jd):
    return pytest.mark.parametrize("key", ["taobao", "pdd", pytest.param("jd", marks=list(marks_for_jd))])


@by_platform()
def test_a_window_read_gives_every_order_once_with_the_platforms_count(target, key):
    """trades.sold.increment.get / order.number.list.increment.get / pop.order.search: every order
    modified in the span, tid as text, once, the platform's own total, and the sandbox's truth."""
    s = seat(target, key)
    start, end = span()
    w = s.orders(start, end)
    tids = [o["tid"] for o in w.orders]
    assert w.orders and all(isinstance(t, str) for t in tids)
    assert not w.bad, w.bad[:3]
    assert len(tids) == len(set(tids)) == w.count, (len(tids), w.count)
    assert s.count(start, end) == w.count
    if target.sandbox is not None:
        assert set(tids) == held_in(target, key, start, end)


@by_platform()
def test_paging_backwards_under_churn_still_gives_every_order_once(target, key):
    """Orders change and arrive while a window is paged (POST /__sandbox/shops/churn): the read
    still holds every order of the window once, as the platform holds it at the end."""
    if target.sandbox is None:
        pytest.skip("needs the sandbox's churn switch")
    s = seat(target, key)
    start, end = span()
    target.sandbox.shops("churn", platform=key, n=3)
    w = s.orders(start, end)
    assert target.sandbox.shops("stats")[key]["churned"] > 0
    tids = [o["tid"] for o in w.orders]
    assert len(tids) == len(set(tids))
    assert set(tids) == held_in(target, key, start, end)
    held = truth(target, key)
    for o in w.orders:
        assert datetime.fromisoformat(o["modified"]) == datetime.fromisoformat(held[o["tid"]]["modified"]), o["tid"]


@by_platform()
def test_details_by_id_are_the_window_orders(target, key):
    """trade.fullinfo.get / order.information.get / pop.order.get: the same order as the window
    read gives, tid as text."""
    s = seat(target, key)
    start = datetime.now(SHANGHAI) - timedelta(hours=6)
    orders = s.orders(start, datetime.now(SHANGHAI) + timedelta(minutes=1)).orders[:5]
    assert orders
    again = s.orders_by_id([o["tid"] for o in orders])
    assert again == orders
    assert all(isinstance(o["tid"], str) and o["tid"] for o in again)


@by_platform()
def test_money_is_yuan_text_to_the_fen_and_adds_up_where_the_platform_is_consistent(target, key):
    """元 text with two decimals; paid = the platform's (truth); Σ line payment + post_fee = paid
    for (nearly) every order; states are the contract's and agree with the truth."""
    s = seat(target, key)
    start = datetime.now(SHANGHAI) - timedelta(hours=12)
    orders = s.orders(start, datetime.now(SHANGHAI) + timedelta(minutes=1)).orders
    assert orders
    held = truth(target, key) if target.sandbox is not None else {}
    consistent = 0
    for o in orders:
        for f in ("total", "post_fee", "discount", "payment"):
            assert YUAN.match(o[f]), (o["tid"], f, o[f])
        for ln in o["lines"]:
            assert YUAN.match(ln["price"]) and YUAN.match(ln["payment"]) and YUAN.match(ln["discount"])
            assert ln["quantity"].isdigit() and ln["refund_status"] in ("none", "refunding", "refunded")
            assert Decimal(ln["price"]) * int(ln["quantity"]) - Decimal(ln["discount"]) == Decimal(ln["payment"])
        assert sum((Decimal(ln["price"]) * int(ln["quantity"]) for ln in o["lines"]), Decimal(0)) == Decimal(o["total"])
        assert o["state"] in ("unpaid", "paid", "shipped", "completed", "cancelled")
        assert datetime.fromisoformat(o["modified"]).utcoffset() == timedelta(hours=8)
        lines_paid = sum((Decimal(ln["payment"]) for ln in o["lines"]), Decimal("0"))
        ok = lines_paid + Decimal(o["post_fee"]) == Decimal(o["payment"])
        if held:
            assert o["payment"] == held[o["tid"]]["paid"], (o["tid"], o["payment"], held[o["tid"]]["paid"])
            assert o["state"] == held[o["tid"]]["state"], (o["tid"], o["status"], held[o["tid"]]["state"])
            if held[o["tid"]].get("consistent"):
                assert ok, o["tid"]
        consistent += ok
    assert consistent >= 0.9 * len(orders), (consistent, len(orders))


def _paid_unshipped(target, key, s):
    held = truth(target, key)
    shipped = {x["tid"] for x in target.sandbox.shops("stats")[key]["shipments"]}
    start = datetime.now(SHANGHAI) - timedelta(hours=24)
    for o in s.orders(start, datetime.now(SHANGHAI) + timedelta(minutes=1)).orders:
        if held[o["tid"]]["state"] == "paid" and o["tid"] not in shipped \
                and all(ln["refund_status"] == "none" for ln in o["lines"]):
            return o
    pytest.skip(f"no paid, unshipped {key} order in the last day of the seed")


@by_platform()
def test_a_shipment_is_sent_once_and_its_repeat_is_unchanged(target, key):
    """logistics.offline.send / logistics.online.send / pop.order.shipment through the seat's
    connector: created, then the same tid + tracking number is unchanged, one send in stats."""
    needs_writes(target, PLATFORMS[key])
    if target.sandbox is None:
        pytest.skip("needs the sandbox's stats")
    s = seat(target, key)
    o = _paid_unshipped(target, key, s)
    rec = {"_key": f"hub-ship-{key}-1", "tid": o["tid"], "oids": None, "carrier": "顺丰速运",
           "tracking_no": f"SF{o['tid'][-10:]}"}
    c = s.connector(write=True)
    first = c.write("shipment", [rec])
    assert [r.status for r in first] == ["created"], first
    again = c.write("shipment", [rec])
    assert [r.status for r in again] == ["unchanged"], again
    sends = [x for x in target.sandbox.shops("stats")[key]["shipments"]
             if x["tid"] == o["tid"] and x["tracking_no"] == rec["tracking_no"]]
    assert [x["sends"] for x in sends] == [1]
    assert s.orders_by_id([o["tid"]])[0]["state"] == "shipped"


@by_platform()
def test_an_unknown_carrier_fails_naming_carriers_yaml(target, key):
    needs_writes(target, PLATFORMS[key])
    s = seat(target, key)
    [r] = s.connector(write=True).write("shipment", [{"_key": "hub-ship-x", "tid": "1", "oids": None,
                                                      "carrier": "没有这家快递", "tracking_no": "X1"}])
    assert r.status == "failed" and "carriers.yaml" in (r.error or "")


@by_platform()
def test_a_bad_session_is_a_configuration_error_without_the_secret(target, key):
    """TOP 27 invalid-sessionkey / PDD's token codes / JOS 19 无效access_token."""
    bad = "bad-session-0000ffff"
    s = seat(target, key, **{SESSION_KEY[key]: bad})
    with pytest.raises(ConfigurationError) as err:
        s.count(*span())
    text = str(err.value)
    assert bad not in text and target.conns[PLATFORMS[key]].password not in text


def test_top_windows_are_one_day_at_most(target):
    """TOP: start_modified/end_modified ≤ 1 day apart; a longer binding window is refused and a
    span is cut into days."""
    s = seat(target, "taobao")
    assert s.window == timedelta(days=1)
    start, end = span()
    pieces = list(s.windows(start, end))
    assert len(pieces) == 5 and all(b - a <= timedelta(days=1) for a, b in pieces)
    with pytest.raises(ConfigurationError):
        ShopSeat(replace(s.binding, options={"erp_customer": "9901", "window_minutes": 1441}))
    if target.sandbox is not None:
        with pytest.raises(HubError):   # the platform itself refuses a longer window
            s.impl.count(end - timedelta(days=2), end)


def test_pdd_windows_are_thirty_minutes_split_by_the_seat(target):
    s = seat(target, "pdd")
    assert s.window == timedelta(minutes=30)
    end = datetime.now(SHANGHAI) + timedelta(minutes=1)
    start = end - timedelta(hours=3)
    pieces = list(s.windows(start, end))
    assert len(pieces) == 6 and all(b - a <= timedelta(minutes=30) for a, b in pieces)
    with pytest.raises(ConfigurationError):
        ShopSeat(replace(s.binding, options={"erp_customer": "9901", "window_minutes": 31}))
    if target.sandbox is not None:
        with pytest.raises(HubError):
            s.impl.count(end - timedelta(hours=1), end)
        assert s.count(start, end) == len(held_in(target, "pdd", start, end))


def test_jos_window_is_the_seats_default_and_configurable(target):
    """JOS documents no window limit: the seat's default (60 min) applies, window_minutes overrides."""
    s = seat(target, "jd")
    assert s.impl.max_window is None and s.window == timedelta(minutes=60)
    wide = ShopSeat(replace(s.binding, options={"erp_customer": "9901", "window_minutes": 1440}))
    assert wide.window == timedelta(days=1)
