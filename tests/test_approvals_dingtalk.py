"""Approvals through 钉钉 (HUB_BINDINGS=dingtalk): the same engine and kinds as e-cology, on DingTalk's
v1.0 workflow API; one instance per request however often it is sent (its key field is how a lost
start is found); the app's approval events are verified and decrypted by the hub's receiver on
loopback, a forged or replayed push is refused, and polling decides even without events.

The oracles: the DingTalk stand-in's own instances (dingtalk.db), its pushes, U8's order lines.
"""
from __future__ import annotations

import json
import time

import pytest
import requests
from cryptography.fernet import Fernet

from connectors import callback_crypto
from flows import approvals, oa_events
from hub import model, store
from tests.conftest import ordered_world
from tests.flowkit import run_flow
from tests.orderkit import rows


class _Receiver:
    """flows/oa_events.py's app on loopback, mounted at /oa-events as Airflow's API server mounts it."""

    def __init__(self) -> None:
        from sandbox.harness import loopback

        self.emitted: list[dict] = []
        app = oa_events.create_app(emit=lambda entity, extra: self.emitted.append({"entity": entity, **extra}) or True)
        self._serving = loopback(app, "/oa-events")
        self.url = f"{self._serving.__enter__()}/oa"

    def stop(self) -> None:
        self._serving.__exit__(None, None, None)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    receiver = _Receiver()
    env = {"HUB_BINDINGS": "dingtalk", "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()}
    try:
        with ordered_world(tmp_path_factory, "approvals_dingtalk", 160, env) as sb:
            creds = sb.credentials()["dingtalk"]   # the app's events to the hub's receiver from here on
            sb.dingtalk("callback", url=receiver.url, token=creds["callback_token"], aes_key=creds["callback_aes_key"])
            yield sb, receiver
    finally:
        receiver.stop()


def _instances(sb) -> list[dict]:
    return rows(sb.folder / "dingtalk.db", "select * from instance order by created_ms, id")


def _keys(sb) -> list[str]:
    return [next(v["value"] for v in json.loads(i["form_json"]) if v["name"] == "HUB编号") for i in _instances(sb)]


def _approval_rows() -> list[dict]:
    with store.engine().begin() as conn:
        return [dict(r._mapping) for r in conn.execute(model.approval.select())]


def test_one_instance_per_request_with_answers_lost_and_tokens_expired(world):
    sb, _ = world
    sb.faults(0.3, ["lost", "500", "expire_token", "truncated"], seed=5, systems=("dingtalk",))
    try:
        for i in range(2):
            run_flow("approvals", f"dt-{i}")
    finally:
        sb.faults(0.0, systems=("dingtalk",))
    asked = [r for r in _approval_rows() if r["superseded"] is None]
    assert asked and {r["kind"] for r in asked} == {"special_price", "over_credit"}
    keys = _keys(sb)
    assert len(keys) == len(set(keys)) == len(asked), "one DingTalk instance per request"
    assert all(r["request_id"] and r["state"] == approvals.PENDING for r in asked)
    assert sorted(keys) == sorted(r["request_name"] for r in asked)


def test_pushed_decisions_are_verified_stored_once_and_applied(world):
    sb, receiver = world
    sb.dingtalk("advance", days=20)
    pushes = sb.dingtalk("pushes")["pushes"]
    assert pushes, "the stand-in pushed its decisions"
    with store.engine().begin() as conn:
        stored = conn.execute(model.oa_event.select()).all()
    assert len(stored) == len(pushes) and {e["entity"] for e in receiver.emitted} == {"oa_event"}
    run_flow("approvals", "dt-decided")
    run_flow("sales_orders", "so-dt")
    decided = [r for r in _approval_rows() if r["superseded"] is None]
    assert {r["state"] for r in decided} >= {approvals.APPROVED, approvals.REJECTED}
    approved = {r["request_id"] for r in decided if r["state"] == approvals.APPROVED and r["kind"] == "special_price"}
    in_u8 = {r["cDefine22"] for r in rows(sb.u8_db, "select cDefine22 from SO_SODetails where cDefine22 is not null")}
    assert in_u8 & approved, "approved special prices reached U8 with the DingTalk instance id"
    assert not in_u8 - approved - {r["specialPriceApproval__c"] for r in rows(
        sb.crm_db, 'select specialPriceApproval__c from "orderProduct" where specialPriceStatus__c is null')}


def test_a_forged_push_is_refused_and_a_replay_is_not_stored_again(world):
    sb, receiver = world
    creds = sb.credentials()["dingtalk"]
    captured = sb.dingtalk("pushes")["pushes"][0]
    with store.engine().begin() as conn:
        before = conn.execute(model.oa_event.select()).all()
    r = requests.post(receiver.url, params=captured["query"], json=captured["body"], timeout=10)
    assert r.status_code == 200       # a replay inside the hour: answered, not stored again
    answer = r.json()
    assert callback_crypto.decrypt(creds["callback_aes_key"], answer["encrypt"], creds["app_key"]) == "success"
    assert answer["msg_signature"] == callback_crypto.signature(creds["callback_token"], answer["timeStamp"],
                                                                answer["nonce"], answer["encrypt"])
    forged = dict(captured["query"], signature="0" * 40)
    assert requests.post(receiver.url, params=forged, json=captured["body"], timeout=10).status_code == 403
    other = callback_crypto.encrypt(creds["callback_aes_key"], json.dumps({"EventType": "bpms_instance_change",
                                                                          "processInstanceId": "x", "BizId": "y"}),
                                    "someone-else")
    q = {"timestamp": str(int(time.time() * 1000)), "nonce": "n1"}
    q["signature"] = callback_crypto.signature(creds["callback_token"], q["timestamp"], q["nonce"], other)
    assert requests.post(receiver.url, params=q, json={"encrypt": other}, timeout=10).status_code == 403
    old = callback_crypto.encrypt(creds["callback_aes_key"], json.dumps({"EventType": "bpms_instance_change",
                                                                        "BizId": "old"}), creds["app_key"])
    q = {"timestamp": str(int(time.time() * 1000) - 2 * 3600 * 1000), "nonce": "n2"}
    q["signature"] = callback_crypto.signature(creds["callback_token"], q["timestamp"], q["nonce"], old)
    assert requests.post(receiver.url, params=q, json={"encrypt": old}, timeout=10).status_code == 403
    with store.engine().begin() as conn:
        assert len(conn.execute(model.oa_event.select()).all()) == len(before)
    check = callback_crypto.encrypt(creds["callback_aes_key"], '{"EventType":"check_url"}', creds["app_key"])
    q = {"timestamp": str(int(time.time() * 1000)), "nonce": "n3"}
    q["signature"] = callback_crypto.signature(creds["callback_token"], q["timestamp"], q["nonce"], check)
    r = requests.post(receiver.url, params=q, json={"encrypt": check}, timeout=10)
    assert r.status_code == 200 and callback_crypto.decrypt(creds["callback_aes_key"], r.json()["encrypt"],
                                                            creds["app_key"]) == "success"


def test_the_official_callback_test_vector():
    """open-dingtalk/DingTalk-Callback-Crypto's own example decrypts and verifies with our code."""
    enc = ("0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYxxOK+HZeKju4y"
           "hELOFchzNukR+t8SB/qk4ROMu3")
    assert callback_crypto.signature("mryue", "1608001896814", "WL4PK6yA", enc) == "03044561471240d4a14bb09372dfcfd4fd0e40cb"
    assert callback_crypto.decrypt("Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7", enc,
                                   "ding6ccabc44d2c8d38b") == '{"EventType":"check_url"}'


def test_a_tenant_on_the_legacy_topapi_gets_one_instance_per_request_and_its_decisions(world, monkeypatch):
    """extra.api: topapi — the old oapi calls (gettoken, processinstance create / listids / get): lost
    answers and expired tokens still make one instance per request, and a decision reads back."""
    from connectors.dingtalk_approval import DingTalkTopApi, approval_api
    from hub import connections
    from hub.errors import ConfigurationError

    sb, _ = world
    raw = json.loads(sb.connections()["AIRFLOW_CONN_OA_DINGTALK"])
    raw["extra"]["api"] = "topapi"
    monkeypatch.setenv("AIRFLOW_CONN_OA_DINGTALK", json.dumps(raw))
    api = approval_api(connections.get("oa_dingtalk"))
    assert isinstance(api, DingTalkTopApi)
    fields = [{"name": "客户名称", "value": "上海荣俊纺织有限公司"}, {"name": "产品编码", "value": "0101001"},
              {"name": "申请单价", "value": "51000.00"}, {"name": "数量", "value": "2"}]
    records = [{"_key": f"legacy-{i}", "workflow": "PROC-TJSP-0001", "title": f"特价审批 旧接口 {i}", "fields": fields}
               for i in range(6)]
    requests.delete(f"{sb.urls['dingtalk']}/__sandbox/stats", timeout=10).raise_for_status()
    sb.faults(0.4, ["lost", "500", "expire_token", "truncated"], seed=17, systems=("dingtalk",))
    try:
        todo, done = list(records), {}
        for _ in range(8):                    # the task's retries: only what was deferred goes again
            results = api.write("workflow_request", todo)
            done.update({r.key: r for r in results if r.status != "deferred"})
            todo = [rec for rec, r in zip(todo, results) if r.status == "deferred"]
            if not todo:
                break
    finally:
        sb.faults(0.0, systems=("dingtalk",))
    assert not todo and all(r.status in ("created", "linked") for r in done.values())
    served = sb.stats()["dingtalk"]["faults"]
    assert served.get("expire_token") and served.get("lost"), served          # the faults were really served
    keys = _keys(sb)
    assert all(keys.count(rec["title"]) == 1 for rec in records), "one instance per request"
    again = api.write("workflow_request", records)
    assert [r.status for r in again] == ["linked"] * len(records)
    assert {r.native_key for r in again} == {r.native_key for r in done.values()}

    first = done["legacy-0"].native_key
    assert sb.dingtalk("decide", instanceId=first, result="refuse", remark="旧接口：价格过低")["decided"]
    [page] = list(api.read("workflow_request", {"keys": [first]}))
    assert page.records[0]["status"] == "COMPLETED" and page.records[0]["result"] == "refuse"
    assert page.records[0]["opinion"] == "旧接口：价格过低"
    raw["password"] = "not-the-app-secret"
    monkeypatch.setenv("AIRFLOW_CONN_OA_DINGTALK", json.dumps(raw))
    with pytest.raises(ConfigurationError, match="40096"):
        approval_api(connections.get("oa_dingtalk")).token()
