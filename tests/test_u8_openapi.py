"""U8 OpenAPI writes as the documentation shows them (protocol notes U1–U4): the stand-in over
real HTTP on loopback and the connector against it.

Adds are asynchronous (tradeid, POST, result url; ``sync=1`` refused), a 收款单 carries its
``entry`` lines, voucher actions run as the operator logged in with ``user/login_v2``, and a
refused token is told by HTTP status and message as well as by code.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import pytest
import requests

from connectors.u8 import U8OpenApi
from hub import connections
from hub.errors import ConfigurationError
from hub.types import ConnectionInfo
from sandbox.harness import Sandbox
from tests.flowkit import query


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path_factory.mktemp("u8api") / "sandbox", accounts=20).seed().start()
    yield box
    box.stop()


@pytest.fixture
def u8(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> ConnectionInfo:
    """The hub's ``u8_openapi`` connection to the stand-in, with the stand-in's defaults restored."""
    for key, value in sb.connections().items():
        monkeypatch.setenv(key, value)
    yield connections.get("u8_openapi")
    _control(sb, "tokens", refusal=None, refuse_every_token=False, fresh_seconds=5)
    _control(sb, "results", pending_polls=1)


def _control(sb: Sandbox, what: str, **body: Any) -> dict[str, Any]:
    r = requests.post(f"{sb.u8_url}/__sandbox/u8/{what}", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _with(info: ConnectionInfo, **extra: Any) -> ConnectionInfo:
    return dataclasses.replace(info, extra={**info.extra, **extra})


def _params(sb: Sandbox) -> dict[str, str]:
    u = sb.credentials()["u8"]
    token = requests.get(sb.u8_url + "/system/token", params={"from_account": u["from_account"], "app_key": u["app_key"],
                                                              "app_secret": u["app_secret"]}, timeout=10).json()
    return {"from_account": u["from_account"], "to_account": u["to_account"], "app_key": u["app_key"],
            "token": token["token"]["id"], "ds_sequence": u["ds_sequence"]}


def _tradeid(sb: Sandbox, p: dict[str, str]) -> str:
    answer = requests.get(sb.u8_url + "/system/tradeid", params={k: p[k] for k in ("from_account", "app_key", "token")},
                          timeout=10).json()
    assert answer["errcode"] == "0" and answer["trade"]["id"], answer
    return answer["trade"]["id"]


def _stats(sb: Sandbox) -> dict[str, int]:
    return requests.get(sb.u8_url + "/__sandbox/stats", timeout=10).json()["by_path"]


def _count(sb: Sandbox, sql: str, *args: Any) -> Any:
    return query(sb.u8_db, sql, *args)[0][0]


# -- the stand-in ------------------------------------------------------------------------------

def test_the_stand_in_refuses_sync_1_in_its_envelope_and_adds_nothing(sb: Sandbox) -> None:
    p = _params(sb)
    before = _count(sb, "select count(*) from Customer")
    r = requests.post(sb.u8_url + "/api/customer/add", params={**p, "biz_id": "sync-1", "sync": "1"},
                      json={"customer": {"name": "同步调用测试有限公司"}}, timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["errcode"] == "20002" and "sync=1" in body["errmsg"], body
    assert _count(sb, "select count(*) from Customer") == before


def test_an_add_answers_an_empty_id_and_the_result_url_answers_the_voucher_once_ready(sb: Sandbox) -> None:
    p = _params(sb)
    tradeid = _tradeid(sb, p)
    answer = requests.post(sb.u8_url + "/api/customer/add", params={**p, "biz_id": "async-1", "tradeid": tradeid},
                           json={"customer": {"name": "异步结果测试有限公司"}}, timeout=10).json()
    assert answer["errcode"] == "0" and answer["id"] == "" and answer["tradeid"] == tradeid and answer["url"], answer
    first = requests.get(answer["url"], timeout=10).json()
    assert first["errcode"] == "0" and first["id"] == "", first          # not ready at the first poll
    ready = requests.get(answer["url"], timeout=10).json()
    assert ready["errcode"] == "0" and ready["id"], ready
    assert _count(sb, "select cCusName from Customer where cCusCode = ?", ready["id"]) == "异步结果测试有限公司"
    again = requests.post(sb.u8_url + "/api/customer/add", params={**p, "biz_id": "async-1", "tradeid": _tradeid(sb, p)},
                          json={"customer": {"name": "别的名字"}}, timeout=10).json()
    requests.get(again["url"], timeout=10)
    assert requests.get(again["url"], timeout=10).json()["id"] == ready["id"]   # the same voucher, through its url
    unknown = requests.post(sb.u8_url + "/api/customer/add", params={**p, "biz_id": "async-2", "tradeid": "made-up"},
                            json={"customer": {"name": "x"}}, timeout=10).json()
    assert unknown["errcode"] == "20002"


def _accept_result(sb: Sandbox, p: dict[str, str], biz_id: str, accept: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(sb.u8_url + "/api/accept/add", params={**p, "biz_id": biz_id, "tradeid": _tradeid(sb, p)},
                           json={"accept": accept}, timeout=10).json()
    assert answer["errcode"] == "0" and answer["id"] == "", answer
    requests.get(answer["url"], timeout=10)
    return requests.get(answer["url"], timeout=10).json()


def test_a_receipt_without_entry_is_refused_and_one_with_entry_books_its_lines(sb: Sandbox) -> None:
    p = _params(sb)
    customer = _count(sb, "select min(cCusCode) from Customer")
    head = {"vouchtype": "48", "vouchdate": "2025-06-12", "period": "06", "customercode": customer, "amount": "300.00",
            "originalamount": "300.00", "foreigncurrency": "人民币", "currencyrate": "1", "operator": "hub01", "flag": "AR",
            "digest": "银行收款 测试"}
    before = _count(sb, "select count(*) from Ap_CloseBill")
    refused = _accept_result(sb, p, "accept-no-entry", head)
    assert refused["errcode"] == "40001" and "entry" in refused["errmsg"], refused
    wrong_sum = _accept_result(sb, p, "accept-bad-sum", {**head, "entry": [
        {"type": "0", "customercode": customer, "amount": "100.00", "iamt_s": "0"}]})
    assert wrong_sum["errcode"] == "40001" and "add up" in wrong_sum["errmsg"], wrong_sum
    assert _count(sb, "select count(*) from Ap_CloseBill") == before
    booked = _accept_result(sb, p, "accept-lines", {**head, "entry": [
        {"type": "0", "customercode": customer, "amount": "120.50", "originalamount": "120.50", "iamt_s": "0"},
        {"type": "1", "customercode": customer, "amount": "179.50", "originalamount": "179.50", "iamt_s": "0"}]})
    assert booked["errcode"] == "0" and booked["id"], booked
    lines = query(sb.u8_db, "select s.iType, s.bPrePay, s.cCusVen, s.iAmt from Ap_CloseBills s join Ap_CloseBill h "
                            "on h.iID = s.iID where h.cVouchID = ? order by s.ID", booked["id"])
    assert lines == [(0, 0, customer, 120.5), (1, 1, customer, 179.5)]


# -- the connector -----------------------------------------------------------------------------

def test_the_connector_polls_the_result_url_and_keeps_the_voucher_code(sb: Sandbox, u8: ConnectionInfo) -> None:
    _control(sb, "results", pending_polls=3)
    before = _stats(sb)
    result = U8OpenApi(u8).write("customer", [{"_key": "poll", "_biz_id": "poll-1", "name": "轮询结果测试有限公司"}])[0]
    after = _stats(sb)
    assert result.status == "created" and result.native_key and result.native_key != "None"
    assert _count(sb, "select cCusName from Customer where cCusCode = ?", result.native_key) == "轮询结果测试有限公司"
    assert after.get("GET /api/result", 0) - before.get("GET /api/result", 0) == 4      # three "not ready", then the code
    assert after["GET /system/tradeid"] - before.get("GET /system/tradeid", 0) == 1


def test_an_empty_id_is_never_stored_a_passed_deadline_names_the_tradeid_and_the_retry_is_safe(
        sb: Sandbox, u8: ConnectionInfo) -> None:
    before = _count(sb, "select count(*) from Customer")
    record = {"_key": "late", "_biz_id": "late-1", "name": "迟到结果测试有限公司"}
    _control(sb, "results", pending_polls=10_000)
    [late] = U8OpenApi(_with(u8, result_deadline_seconds=0.3)).write("customer", [dict(record)])
    assert late.status == "deferred" and late.native_key is None       # never booked without its code
    assert "tradeid" in late.error and "biz_id late-1" in late.error and "same biz_id is safe" in late.error
    assert _count(sb, "select count(*) from Customer") == before + 1       # U8 made it; the hub kept no key
    _control(sb, "results", pending_polls=1)
    again = U8OpenApi(u8).write("customer", [dict(record)])[0]
    assert again.status == "created" and again.native_key == _count(
        sb, "select cCusCode from Customer where cCusName = ?", record["name"])
    assert _count(sb, "select count(*) from Customer") == before + 1       # the retry with the same biz_id: no second


def _open_order(sb: Sandbox, api: U8OpenApi, biz_id: str) -> str:
    customer = _count(sb, "select min(cCusCode) from Customer")
    product = _count(sb, "select min(cInvCode) from Inventory where bSale = 1 and dEDate is null")
    order = {"_key": biz_id, "_biz_id": biz_id, "typecode": "01", "custcode": customer, "deptcode": "01",
             "entry": [{"rowno": 1, "inventorycode": product, "quantity": "2", "sum": "20.00", "money": "17.70",
                        "tax": "2.30", "taxrate": "13"}]}
    result = api.write("saleorder", [order])[0]
    assert result.status == "created", result
    return result.native_key


def test_close_is_recorded_under_the_configured_operator_else_the_eai_default_user(
        sb: Sandbox, u8: ConnectionInfo) -> None:
    operator = sb.credentials()["u8"]["operator"]
    with_operator = U8OpenApi(u8)
    assert with_operator.operator == operator["user_id"]
    code = _open_order(sb, with_operator, "close-as-operator")
    [closed] = with_operator.write("saleorder", [{"_key": "c1", "_op": "close", "voucher_code": code}])
    assert closed.status == "updated"
    assert _count(sb, "select cCloser from SO_SOMain where cSOCode = ?", code) == operator["name"]
    anonymous = U8OpenApi(dataclasses.replace(u8, extra={k: v for k, v in u8.extra.items() if not k.startswith("operator")}))
    other = _open_order(sb, anonymous, "close-as-default")
    anonymous.write("saleorder", [{"_key": "c2", "_op": "close", "voucher_code": other}])
    assert _count(sb, "select cCloser from SO_SOMain where cSOCode = ?", other) == "openapi"
    wrong = U8OpenApi(_with(u8, operator_password="not-the-password"))
    third = _open_order(sb, anonymous, "close-wrong-password")
    with pytest.raises(ConfigurationError) as exc:
        wrong.write("saleorder", [{"_key": "c3", "_op": "close", "voucher_code": third}])
    assert "login_v2" in str(exc.value) and "'u8_openapi'" in str(exc.value) and "not-the-password" not in str(exc.value)
    assert _count(sb, "select cCloser from SO_SOMain where cSOCode = ?", third) is None


@pytest.mark.parametrize("refusal", [
    {"status": 401, "errcode": "401", "errmsg": "Unauthorized: token已失效"},      # an HTTP status, no known code
    {"status": 200, "errcode": "99999", "errmsg": "access token expired"},         # a message, no known code
])
def test_token_expiry_is_told_by_status_and_message_and_refreshed_once(
        sb: Sandbox, u8: ConnectionInfo, refusal: dict[str, Any]) -> None:
    api = U8OpenApi(u8)
    code = _count(sb, "select min(cCusCode) from Customer")
    assert api.call("GET", "customer/get", id=code)["customer"]["code"] == code
    _control(sb, "tokens", refusal=refusal, revoke=True)
    logins = _stats(sb)["GET /system/token"]
    assert api.call("GET", "customer/get", id=code)["customer"]["code"] == code
    assert _stats(sb)["GET /system/token"] == logins + 1


def test_a_token_refused_again_after_the_refresh_is_a_configuration_error_naming_the_connection(
        sb: Sandbox, u8: ConnectionInfo) -> None:
    api = U8OpenApi(u8)
    code = _count(sb, "select min(cCusCode) from Customer")
    api.call("GET", "customer/get", id=code)
    _control(sb, "tokens", refusal={"status": 401, "errcode": "", "errmsg": "unauthorized"}, refuse_every_token=True)
    logins = _stats(sb)["GET /system/token"]
    with pytest.raises(ConfigurationError) as exc:
        api.call("GET", "customer/get", id=code)
    assert "'u8_openapi'" in str(exc.value) and "HTTP 401" in str(exc.value)
    assert u8.password not in str(exc.value)
    assert _stats(sb)["GET /system/token"] == logins + 1                    # refreshed once, no more
