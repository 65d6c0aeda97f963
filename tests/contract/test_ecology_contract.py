"""泛微 e-cology 9 contract: the handshake and workflow calls the approvals flow relies on, each test
naming the documented behaviour (protocol notes, 泛微 e-cology 9; docs/approvals.md). Runs against
``oa_ecology`` (a real tenant when configured, else the sandbox). The registration is kept in a
vault of the test's own (a real one answers the same secrit and spk to a second regist).

Where nothing we hold documents the answer (a token e-cology no longer knows), the test states
what the connector assumes, so a real tenant that answers otherwise fails here, not in a sync.
"""
from __future__ import annotations

import pytest
import requests

from connectors.ecology import MINE, EcologyApi
from hub.errors import DataError
from tests.contract.conftest import needs_writes

CONNECTIONS = ("oa_ecology",)


class _Vault(dict):
    def get(self, name):  # type: ignore[override]
        return dict.get(self, name)

    def put(self, name, value) -> None:
        self[name] = dict(value)


@pytest.fixture(scope="module")
def api(target) -> EcologyApi:
    return EcologyApi(target.conns["oa_ecology"], _Vault())


def test_regist_then_applytoken_with_the_rsa_encrypted_secrit_gives_a_token(api):
    """POST /api/ec/dev/auth/regist (appid, cpk) → secrit, spk; applytoken (appid, secret =
    RSA-PKCS#1(spk, secrit), time) → {"status": true, "token"}."""
    reg = api.registration()
    assert reg["secrit"] and reg["spk"]
    assert api.token()


def test_the_creators_request_list_is_a_bare_json_array(api):
    """getMyWorkflowRequestList answers a list of {requestId, requestName, currentNodeName, …}, no envelope."""
    assert isinstance(api.find("[hub contract: no such title]"), list)


def test_a_token_e_cology_does_not_know_answers_user_exception(target, api):
    """Assumed (not documented in what we hold): a forged token is answered with code USER_EXCEPTION,
    which the connector takes as "apply for a token again"."""
    conn = target.conns["oa_ecology"]
    body = requests.post(f"{conn.base_url()}{MINE}", timeout=30,
                         headers={"appid": conn.login, "token": "hub-contract-forged", "userid": "x"}).json()
    assert isinstance(body, dict) and body.get("code") == "USER_EXCEPTION", body


def test_a_main_field_the_form_lacks_is_param_error(target, api):
    """doCreateRequest: "参数中多了都不允许正常新建流程" — a mainData field the form does not have is
    PARAM_ERROR (a data error for the hub: the tenant's form mapping is wrong)."""
    needs_writes(target, "oa_ecology")
    workflow = target.conns["oa_ecology"].extra.get("contract_workflow_id", "101")
    with pytest.raises(DataError, match="PARAM_ERROR"):
        api.create({"workflow": workflow, "title": "[hub contract] 不存在的字段",
                    "fields": [{"name": "hub_contract_no_such_field", "value": "1"}], "submit": False})
