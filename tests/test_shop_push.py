"""connectors/shops/push.py: a push is taken only when it is provably the platform's and fresh.

The oracle: every signed message is built here with hashlib from the rules the platforms publish
(有赞 Event-Sign = md5(client_id + body + client_secret), cuncle/youzanyun-push-demo; 抖店
event-sign = md5(app_key + body + app_secret) with app-id, minibear2021/doudian core.py), never
with push.py's own code. The 有赞 ciphertext is the published worked example of
youzan/open-sdk-node test/crypto.test.js.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from datetime import datetime, timedelta

import pytest

from connectors.shops import push
from connectors.shops.push import ForgedPush, PushMessage, StalePush, answer, verify, verify_all
from hub.errors import ConfigurationError, HubError, failure_class_of
from hub.types import ConnectionInfo

SH = push.SHANGHAI
NOW = datetime(2026, 5, 26, 10, 55, 0, tzinfo=SH)
YZ = ConnectionInfo("shop_youzan", host="127.0.0.1", login="b8fca94e508ac942de",
                    password="0123456789abcdef-youzan-secret", extra={"grant_id": "567323"})
DD = ConnectionInfo("shop_doudian", host="127.0.0.1", login="3409409348479354011",
                    password="2ad2355c-01d0-11f8-91dc-05a8cd1054b1", extra={"shop_id": "323423"})


def _md5(text: bytes) -> str:
    return hashlib.md5(text).hexdigest()


def youzan_push(tid="E20260526105106025604163", status="TRADE_SUCCESS", version=None, **extra) -> bytes:
    msg = urllib.parse.quote(json.dumps({"tid": tid, "update_time": "2026-05-26 10:51:09"}, ensure_ascii=False))
    body = {"client_id": YZ.login, "id": tid, "kdt_id": 567323, "kdt_name": "有赞的店", "mode": 1,
            "msg": msg, "msg_id": "9cb85c3d-8353-4e80-b24b-eb670eb52775", "sendCount": 0,
            "status": status, "test": False, "type": "trade_TradeSuccess",
            "version": int(NOW.timestamp()) - 60 if version is None else version, **extra}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def youzan_headers(body: bytes, conn: ConnectionInfo = YZ) -> dict[str, str]:
    return {"Event-Sign": _md5(conn.login.encode() + body + conn.password.encode()), "Content-Type": "application/json"}


def doudian_push(*messages: dict) -> bytes:
    items = messages or ({"tag": "101", "msg_id": "7000000000000000001",
                          "data": json.dumps({"shop_id": 323423, "p_id": 4987654321012345678,
                                              "s_ids": [4987654321012345679], "pay_amount": 12300,
                                              "pay_type": 1, "pay_time": int(NOW.timestamp()) - 30,
                                              "order_status": 2, "order_type": 0, "biz": 8})},)
    return json.dumps(list(items), separators=(",", ":")).encode("utf-8")


def doudian_headers(body: bytes, conn: ConnectionInfo = DD) -> dict[str, str]:
    return {"app-id": conn.login, "event-sign": _md5(conn.login.encode() + body + conn.password.encode())}


# --- 有赞 --------------------------------------------------------------------------------------------

def test_youzan_signed_push_is_taken_with_the_messages_own_fields():
    body = youzan_push()
    m = verify("youzan", youzan_headers(body), body, YZ, NOW)
    assert isinstance(m, PushMessage)
    assert (m.platform, m.tid, m.kind) == ("youzan", "E20260526105106025604163", "trade_TradeSuccess")
    assert m.version == str(int(NOW.timestamp()) - 60)
    assert m.sent_at == NOW - timedelta(seconds=60) and m.sent_at.utcoffset() == timedelta(hours=8)
    assert m.raw["status"] == "TRADE_SUCCESS"
    assert m.raw["msg_decoded"] == {"tid": "E20260526105106025604163", "update_time": "2026-05-26 10:51:09"}


def test_youzan_header_names_are_case_insensitive():
    body = youzan_push()
    headers = {k.lower(): v for k, v in youzan_headers(body).items()}
    assert verify("youzan", headers, body, YZ, NOW).tid == "E20260526105106025604163"


@pytest.mark.parametrize("case", ["wrong_sign", "missing_header", "body_changed", "other_secret", "other_client"])
def test_youzan_forged_push_is_refused(case):
    body = youzan_push()
    headers = youzan_headers(body)
    if case == "wrong_sign":
        headers["Event-Sign"] = "0" * 32
    elif case == "missing_header":
        headers.pop("Event-Sign")
    elif case == "body_changed":  # one byte: 1 → 2 in the kdt_id
        body = body.replace(b"567323", b"567324", 1)
    elif case == "other_secret":
        headers = youzan_headers(body, ConnectionInfo("x", login=YZ.login, password="not-the-secret"))
    elif case == "other_client":
        body = youzan_push(client_id="someone-else")
        headers = youzan_headers(body)
    with pytest.raises(ForgedPush) as err:
        verify("youzan", headers, body, YZ, NOW)
    assert YZ.password not in str(err.value)
    assert isinstance(err.value, HubError) and failure_class_of(err.value) == "data"


def test_youzan_stale_push_is_refused_by_its_own_version_time():
    body = youzan_push(version=int((NOW - timedelta(minutes=11)).timestamp()))
    with pytest.raises(StalePush):
        verify("youzan", youzan_headers(body), body, YZ, NOW)
    # the same message inside a wider max_age is taken
    assert verify("youzan", youzan_headers(body), body, YZ, NOW, max_age=timedelta(minutes=12)).tid


def test_youzan_encrypted_message_decrypts_to_the_published_example():
    """youzan/open-sdk-node test/crypto.test.js: this ciphertext and secret give this text."""
    messages = ("zanO3UZzEA5Fm6qKsCq6rJ70VoKdiqXDfgdqGvzOfIZ%2FVNB%2FUHuG7%2F6TxdL6NQIVkO8CFm20whTivoPj4%2B6nXL"
                "Aoe9J%2BZc42nRAbkTg5GruMl8RohxSDS0%2F99FwGtLW9TmMbxs554ZWVaRaiB5KaHF%2FNTzuLHyEtrLB2xu8Y%2BAnMN%2F"
                "VVVO9PPgO8o1BSAuvJdNXa1%2ButpG%2BRSSSMbxXrvCkRC34X7kCK1z5Xg51r%2Fym8nxrrSFn2c4R3rMRxKQAMmzRfGBkcQ9"
                "XayS31oT5DNy0h5pWzP8W5pe9naUguCiPIIAqGmBo8etlIn1Y1FHAU")
    secret = "def00000b1228e0f6ba8ef96be9"
    text = ('{"appId":110,"buyerId":123456,"buyerPhone":"13800138000","env":"PROD","kdtId":160,'
            '"orderNo":"E201905060000001","payTime":1557138032000,"price":42,"skuIntervalText":"7",'
            '"skuVersionText":"试用版","status":20,"type":"APP_SUBSCRIBE"}')
    assert push.decrypt_youzan(messages, secret) == text
    # and inside a signed push, the msg field comes back decrypted
    conn = ConnectionInfo("shop_youzan", login="cid", password=secret)
    body = json.dumps({"client_id": "cid", "id": "E201905060000001", "type": "APP_SUBSCRIBE",
                       "msg": messages, "version": int(NOW.timestamp())}).encode()
    m = verify("youzan", {"Event-Sign": _md5(b"cid" + body + secret.encode())}, body, conn, NOW)
    assert m.raw["msg_decoded"]["orderNo"] == "E201905060000001"


# --- 抖店 --------------------------------------------------------------------------------------------

def test_doudian_signed_push_is_taken():
    body = doudian_push()
    m = verify("doudian", doudian_headers(body), body, DD, NOW)
    assert (m.platform, m.tid, m.kind) == ("doudian", "4987654321012345678", "101")
    assert m.version == str(int(NOW.timestamp()) - 30) and m.sent_at == NOW - timedelta(seconds=30)
    assert m.raw["msg_id"] == "7000000000000000001" and m.raw["data_decoded"]["order_status"] == 2


def test_doudian_push_with_several_messages_gives_every_one():
    t = int(NOW.timestamp())
    body = doudian_push({"tag": "100", "msg_id": "1", "data": json.dumps({"p_id": 11, "create_time": t - 5})},
                        {"tag": "106", "msg_id": "2", "data": json.dumps({"p_id": 12, "cancel_time": t - 3})})
    ms = verify_all("doudian", doudian_headers(body), body, DD, NOW)
    assert [(m.tid, m.kind, m.version) for m in ms] == [("11", "100", str(t - 5)), ("12", "106", str(t - 3))]


def test_doudian_url_check_message_is_taken():
    body = doudian_push({"tag": "0", "msg_id": "", "data": ""})
    m = verify("doudian", doudian_headers(body), body, DD, NOW)
    assert (m.kind, m.tid) == ("0", "")


@pytest.mark.parametrize("case", ["wrong_sign", "missing_sign", "missing_app", "other_app", "body_changed"])
def test_doudian_forged_push_is_refused(case):
    body = doudian_push()
    headers = doudian_headers(body)
    if case == "wrong_sign":
        headers["event-sign"] = _md5(b"something else")
    elif case == "missing_sign":
        headers.pop("event-sign")
    elif case == "missing_app":
        headers.pop("app-id")
    elif case == "other_app":
        headers["app-id"] = "1111111111111111111"
    elif case == "body_changed":
        body = body.replace(b"12300", b"12301", 1)
    with pytest.raises(ForgedPush) as err:
        verify("doudian", headers, body, DD, NOW)
    assert DD.password not in str(err.value)


def test_doudian_hmac_sha256_where_configured():
    conn = ConnectionInfo("shop_doudian", login=DD.login, password=DD.password,
                          extra={"shop_id": "323423", "push_sign_method": "hmac-sha256"})
    body = doudian_push()
    text = conn.login.encode() + body + conn.password.encode()
    sign = hmac.new(conn.password.encode(), text, hashlib.sha256).hexdigest()
    m = verify("doudian", {"app-id": conn.login, "event-sign": sign}, body, conn, NOW)
    assert m.tid == "4987654321012345678"
    with pytest.raises(ForgedPush):  # an md5 sign is not accepted when hmac-sha256 is configured
        verify("doudian", doudian_headers(body), body, conn, NOW)


def test_doudian_stale_push_is_refused():
    old = int((NOW - timedelta(hours=1)).timestamp())
    body = doudian_push({"tag": "105", "msg_id": "3", "data": json.dumps({"p_id": 13, "update_time": old})})
    with pytest.raises(StalePush):
        verify("doudian", doudian_headers(body), body, DD, NOW)


def test_doudian_message_without_its_own_time_is_not_taken():
    body = doudian_push({"tag": "999", "msg_id": "4", "data": json.dumps({"p_id": 14})})
    with pytest.raises(StalePush):
        verify("doudian", doudian_headers(body), body, DD, NOW)


# --- answers and misuse ------------------------------------------------------------------------------

def test_answers_are_what_the_platforms_expect():
    assert answer("youzan", True) == (200, {"code": "200", "msg": "success"})
    assert answer("doudian", True) == (200, {"code": 0, "msg": "success"})
    for platform in ("youzan", "doudian"):
        status, body = answer(platform, False)
        assert status == 500 and body.get("msg") != "success"
    a = answer("youzan", True)[1]
    a["msg"] = "changed"
    assert answer("youzan", True)[1]["msg"] == "success"  # callers get a copy


def test_unknown_platform_and_naive_now_are_configuration_errors():
    body = youzan_push()
    with pytest.raises(ConfigurationError):
        verify("taobao", youzan_headers(body), body, YZ, NOW)
    with pytest.raises(ConfigurationError):
        answer("taobao", True)
    with pytest.raises(ConfigurationError):
        verify("youzan", youzan_headers(body), body, YZ, NOW.replace(tzinfo=None))
