"""钉钉 approvals contract: what connectors/dingtalk_approval.py relies on, each test naming the
documented behaviour (aliyun/dingtalk-sdk workflow_1_0 / oauth2_1_0; the open platform's error
codes). Runs against ``oa_dingtalk`` (a real app when configured, else the sandbox). The process
checked is the connection's extra ``contract_process_code`` (default the sandbox's 特价审批).
"""
from __future__ import annotations

import time

import pytest
import requests

from connectors.dingtalk_approval import INSTANCES, LIST_IDS, DingTalkApprovalApi
from hub.errors import DataError

CONNECTIONS = ("oa_dingtalk",)


@pytest.fixture(scope="module")
def api(target) -> DingTalkApprovalApi:
    return DingTalkApprovalApi(target.conns["oa_dingtalk"])


def _process(target) -> str:
    return str(target.conns["oa_dingtalk"].extra.get("contract_process_code") or "PROC-TJSP-0001")


def test_the_app_gets_an_access_token(api):
    """POST /v1.0/oauth2/accessToken {appKey, appSecret} → {accessToken, expireIn}."""
    assert api.token()


def test_a_forged_token_is_invalid_authentication(target, api):
    """A token DingTalk does not know: HTTP 400 (in practice; 401 accepted) {code: InvalidAuthentication}."""
    r = requests.get(f"{api.http.base_url}{INSTANCES}", params={"processInstanceId": "x"}, timeout=30,
                     headers={"x-acs-dingtalk-access-token": "hub-contract-forged"})
    assert r.status_code in (400, 401) and r.json().get("code") == "InvalidAuthentication", r.text


def test_listing_instance_ids_answers_a_list_and_a_string_next_token(target, api):
    """instanceIds/query: result.list of ids; result.nextToken a string while more remain (absent at the end)."""
    data = api._call("POST", LIST_IDS, idempotent=True, body={
        "processCode": _process(target), "startTime": int(time.time() * 1000) - 86_400_000, "nextToken": 0,
        "maxResults": 20, "userIds": [api.originator]})
    result = data.get("result") or {}
    assert isinstance(result.get("list"), list)
    assert result.get("nextToken") in (None, "") or isinstance(result["nextToken"], str)


def test_an_unknown_instance_is_an_error_not_an_empty_answer(api):
    """GET processInstances of an id that does not exist: 400 processInstanceNotExist (or processInstanceIdError)."""
    with pytest.raises(DataError, match="processInstance(NotExist|IdError)"):
        api.instance("hub-contract-no-such-instance")
    assert api.progress("hub-contract-no-such-instance")["status"] == "DELETED"


# --- the legacy server API (extra.api: topapi) ----------------------------------------------------

@pytest.fixture(scope="module")
def legacy(target):
    """The same app on oapi.dingtalk.com's topapi (a tenant on it points oa_dingtalk there)."""
    import dataclasses

    from connectors.dingtalk_approval import DingTalkTopApi

    conn = target.conns["oa_dingtalk"]
    return DingTalkTopApi(dataclasses.replace(conn, extra={**conn.extra, "api": "topapi"}))


def test_legacy_gettoken_answers_errcode_0_and_an_access_token(legacy):
    """GET /gettoken?appkey=&appsecret= → {errcode: 0, access_token, expires_in}."""
    assert legacy.token()


def test_legacy_a_forged_access_token_is_errcode_40014(legacy):
    """Every topapi call carries ?access_token=; one the server does not know: HTTP 200 {errcode: 40014}."""
    r = requests.post(f"{legacy.http.base_url}/topapi/processinstance/get", params={"access_token": "hub-contract-forged"},
                      json={"process_instance_id": "x"}, timeout=30)
    assert r.status_code == 200 and r.json().get("errcode") == 40014, r.text


def test_legacy_listids_answers_a_list_and_a_numeric_next_cursor(target, legacy):
    """listids {process_code, start_time, size ≤ 20, cursor}: result.list; result.next_cursor a number while more remain."""
    data = legacy._top("/topapi/processinstance/listids", {
        "process_code": _process(target), "start_time": int(time.time() * 1000) - 86_400_000, "size": 20, "cursor": 0},
        idempotent=True, refusal=DataError)
    result = data.get("result") or {}
    assert isinstance(result.get("list"), list)
    assert result.get("next_cursor") in (None, "") or isinstance(result["next_cursor"], int)
