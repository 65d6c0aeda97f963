"""The stand-ins over real HTTP on loopback, and u8.db over real ODBC (SQLite3 driver).

One ``python -m sandbox serve`` subprocess for the module (fixture ``sbx``; the conftest's
``sandbox`` fixture is the hub-wired one), on free ports, over a freshly seeded directory.
Tests that switch faults on switch them off again in ``finally``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pyodbc
import pytest
import requests

from sandbox.harness import free_port

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = 2500


class Sandbox:
    """Handles to one running sandbox: URLs, credentials, data directory."""

    def __init__(self, directory: Path, crm: str, u8: str, proc: subprocess.Popen[str]) -> None:
        self.dir, self.crm, self.u8, self.proc = directory, crm, u8, proc
        self.creds = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))

    # CRM ------------------------------------------------------------------------------------
    def token_params(self) -> dict[str, str]:
        c = self.creds["crm"]
        return {"grant_type": "password", "client_id": c["client_id"], "client_secret": c["client_secret"],
                "username": c["username"], "password": c["password"] + c["security_token"]}

    def crm_session(self) -> requests.Session:
        s = requests.Session()
        r = s.post(self.crm + "/auc/oauth2/token", data=self.token_params(), timeout=10)
        r.raise_for_status()
        s.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        return s

    def xoql(self, s: requests.Session, text: str) -> dict[str, Any]:
        r = s.post(self.crm + "/rest/data/v2.0/query/xoql", data={"xoql": text}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    # U8 -------------------------------------------------------------------------------------
    def u8_params(self) -> dict[str, str]:
        u = self.creds["u8"]
        r = requests.get(self.u8 + "/system/token", timeout=10, params={
            "from_account": u["from_account"], "app_key": u["app_key"], "app_secret": u["app_secret"]})
        body = r.json()
        assert body["errcode"] == "0", body
        return {"from_account": u["from_account"], "to_account": u["to_account"], "app_key": u["app_key"],
                "token": body["token"]["id"], "ds_sequence": u["ds_sequence"]}

    def u8_add(self, p: dict[str, str], entity: str, body: dict[str, Any], **params: str) -> dict[str, Any]:
        """An add the documented way: tradeid, POST (answer: empty ``id``, a result ``url``), then
        the result url until it answers more than "not ready yet"."""
        trade = requests.get(self.u8 + "/system/tradeid", params=p, timeout=10).json()
        answer = requests.post(f"{self.u8}/api/{entity}/add", params={**p, **params, "tradeid": trade["trade"]["id"]},
                               json={entity: body}, timeout=10).json()
        assert answer["errcode"] == "0" and answer["id"] == "" and answer["tradeid"] == trade["trade"]["id"], answer
        for _ in range(5):
            result = requests.get(answer["url"], timeout=10).json()
            if result["errcode"] != "0" or result["id"]:
                return result
        raise AssertionError(f"no result at {answer['url']}")

    def odbc(self) -> pyodbc.Connection:
        if "SQLite3" not in pyodbc.drivers():
            pytest.skip("SQLite3 ODBC driver (libsqliteodbc) is not installed")
        return pyodbc.connect(f"DRIVER={{SQLite3}};Database={self.dir / 'u8.db'};", autocommit=True)

    def faults(self, base: str, **config: Any) -> None:
        r = requests.post(base + "/__sandbox/faults", json=config, timeout=10)
        assert r.status_code == 200 and r.json()["ok"], r.text


@pytest.fixture(scope="module")
def sbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    directory = tmp_path_factory.mktemp("sandbox")
    subprocess.run([sys.executable, "-m", "sandbox", "seed", "--dir", str(directory),
                    "--accounts", str(ACCOUNTS), "--seed", "11"], cwd=ROOT, check=True, capture_output=True)
    crm_port, u8_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--dir", str(directory),
         "--crm-port", str(crm_port), "--u8-port", str(u8_port), "--fault-slow-seconds", "0.3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == f"sandbox ready crm=http://127.0.0.1:{crm_port} u8=http://127.0.0.1:{u8_port}", \
        line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    box = Sandbox(directory, f"http://127.0.0.1:{crm_port}", f"http://127.0.0.1:{u8_port}", proc)
    yield box
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


# -- CRM: auth ---------------------------------------------------------------------------------

def test_password_and_refresh_grants(sbx: Sandbox) -> None:
    r = requests.post(sbx.crm + "/auc/oauth2/token", params=sbx.token_params(), timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 7199
    assert body["instance_uri"] == sbx.crm.removeprefix("http://")
    assert body["tenant_id"] == sbx.creds["crm"]["tenant_id"]
    c = sbx.creds["crm"]
    r2 = requests.post(sbx.crm + "/auc/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "client_id": c["client_id"], "client_secret": c["client_secret"],
        "refresh_token": body["refresh_token"]})
    assert r2.status_code == 200 and r2.json()["access_token"] != body["access_token"]
    headers = {"Authorization": "Bearer " + r2.json()["access_token"]}
    ok = requests.post(sbx.crm + "/rest/data/v2.0/query/xoql", data={"xoql": "select id from account limit 0,1"},
                       headers=headers, timeout=10)
    assert ok.json()["code"] == "200"


def test_bad_grant_and_bad_token(sbx: Sandbox) -> None:
    params = {**sbx.token_params(), "password": sbx.creds["crm"]["password"]}  # no security token
    r = requests.post(sbx.crm + "/auc/oauth2/token", data=params, timeout=10)
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_grant"
    r = requests.post(sbx.crm + "/rest/data/v2.0/query/xoql", data={"xoql": "select id from account"},
                      headers={"Authorization": "Bearer nope"}, timeout=10)
    assert r.status_code == 401 and r.json() == {"code": "401", "msg": "invalid or expired access token"}


# -- CRM: queries ------------------------------------------------------------------------------

def test_xoql_pages_cover_everything_once(sbx: Sandbox) -> None:
    s = sbx.crm_session()
    ids: list[str] = []
    offset = 0
    while True:
        body = sbx.xoql(s, f"select id, accountName, updatedAt from account order by id limit {offset},100")
        assert body["code"] == "200" and body["msg"] is None and body["data"]["totalSize"] == ACCOUNTS
        ids += [r["id"] for r in body["data"]["records"]]
        if body["data"]["count"] < 100:
            break
        offset += 100
    assert len(ids) == len(set(ids)) == ACCOUNTS and all(isinstance(i, str) for i in ids)
    assert sbx.xoql(s, "select id from account limit 0,3001")["code"] != "200"
    assert sbx.xoql(s, "select id from account where accountName like '华%'")["code"] == "1020025"
    assert sbx.xoql(s, "select nope from account")["code"] != "200"


def test_order_by_anything_but_id_is_refused_as_bad_xoql(sbx: Sandbox) -> None:
    """"ORDER BY 仅支持 id": the stand-in refuses what the documented rule forbids, with the
    envelope it gives any bad statement, so a connector sorting by updatedAt fails here."""
    s = sbx.crm_session()
    for text in ("select id, updatedAt from account order by updatedAt asc limit 0,10",
                 "select id from account order by updatedAt, id", "select id from account order by id, updatedAt"):
        body = sbx.xoql(s, text)
        assert body["code"] == "1020025" and "ORDER BY accepts only id" in body["msg"] and body["data"] is None, text
    rows = sbx.xoql(s, "select id from account order by id desc limit 0,3000")["data"]["records"]
    assert len(rows) == ACCOUNTS and [int(r["id"]) for r in rows] == sorted((int(r["id"]) for r in rows), reverse=True)


def test_scroll_returns_every_record_and_repeats_a_batch_on_retry(sbx: Sandbox) -> None:
    s = sbx.crm_session()
    url = sbx.crm + "/rest/data/v2.0/query/xoqlScroll"
    form = {"xoql": "select id, updatedAt from account order by id", "batchCount": "1000",
            "queryLocator": ""}
    seen: list[str] = []
    while True:
        body = s.post(url, data=form, timeout=10).json()
        assert body["code"] == "200" and body["data"]["totalSize"] == ACCOUNTS
        if form["queryLocator"]:  # a lost answer, retried with the same locator: the same batch
            again = s.post(url, data=form, timeout=10).json()
            assert again["data"]["records"] == body["data"]["records"]
            assert again["queryLocator"] == body["queryLocator"]
        seen += [r["id"] for r in body["data"]["records"]]
        if not body["queryLocator"]:
            break
        form["queryLocator"] = body["queryLocator"]
    assert len(seen) == len(set(seen)) == ACCOUNTS
    assert s.post(url, data={**form, "batchCount": "2001", "queryLocator": ""}, timeout=10).json()["code"] != "200"


def test_seeded_wrong_types_come_back_wrong_typed(sbx: Sandbox) -> None:
    truth = json.loads((sbx.dir / "truth.json").read_text(encoding="utf-8"))
    wrong = [t for t in truth["crm"] if t["fault"] == "wrong_type"]
    s = sbx.crm_session()
    for t in wrong:
        field, json_type = t["detail"].split(":")
        rec = s.get(f"{sbx.crm}/rest/data/v2.0/xobjects/account/{t['crm_id']}", timeout=10).json()["data"]
        assert isinstance(rec[field], int if json_type == "number" else str), t


# -- CRM: writes -------------------------------------------------------------------------------

def test_create_and_patch_bump_updated_at(sbx: Sandbox) -> None:
    s = sbx.crm_session()
    base = sbx.crm + "/rest/data/v2.0/xobjects/account"
    r = s.post(base, json={"data": {"accountName": "上海测试写入有限公司", "hubId__c": "hub-1"}}, timeout=10)
    assert r.status_code == 200 and r.json()["code"] == "200"
    rid = r.json()["data"]["id"]
    first = s.get(f"{base}/{rid}", timeout=10).json()["data"]
    stamps = [first["updatedAt"]]
    for i in range(3):  # back to back: several may land in the same millisecond
        r = s.patch(f"{base}/{rid}", json={"data": {"erpCode__c": f"H00000{i}"}}, timeout=10)
        assert r.json() == {"code": "200", "msg": "OK", "data": {"id": rid}}
        stamps.append(s.get(f"{base}/{rid}", timeout=10).json()["data"]["updatedAt"])
    assert stamps == sorted(set(stamps))
    last = s.get(f"{base}/{rid}", timeout=10).json()["data"]
    assert last["updatedBy"] == sbx.creds["crm"]["user_id"] and last["erpCode__c"] == "H000002"
    # (A seeded updatedAt *string* compares above every number, so bound the range from above too.)
    newest = sbx.xoql(s, f"select id, updatedAt from account where updatedAt >= {stamps[-1]} and "
                         "updatedAt < 99999999999999")["data"]["records"]
    assert [r["id"] for r in newest] == [str(rid)]


def test_unknown_field_and_wrong_type_are_400(sbx: Sandbox) -> None:
    s = sbx.crm_session()
    base = sbx.crm + "/rest/data/v2.0/xobjects/account"
    rid = sbx.xoql(s, "select id from account limit 0,1")["data"]["records"][0]["id"]
    for data in ({"nickName__c": "x"}, {"phone": 13800138000}, {"updatedAt": 1}):
        r = s.patch(f"{base}/{rid}", json={"data": data}, timeout=10)
        assert r.status_code == 400 and r.json()["code"] != "200", data
    r = s.post(base, json={"data": {"accountName": ""}}, timeout=10)
    assert r.status_code == 400


# -- U8 ---------------------------------------------------------------------------------------

def test_u8_add_is_idempotent_per_biz_id(sbx: Sandbox) -> None:
    p = sbx.u8_params()
    conn = sbx.odbc()
    before = conn.execute("SELECT COUNT(*) FROM Customer").fetchone()[0]
    body = {"customer": {"name": "杭州幂等测试科技有限公司", "tax_reg_code": "91330106MA2H0AB12X",
                         "address": "杭州市西湖区文三路1号"}}
    first = sbx.u8_add(p, "customer", body["customer"], biz_id="crm-1")
    assert first["errcode"] == "0" and first["id"].startswith("H") and len(first["id"]) == 7
    again = sbx.u8_add(p, "customer", {"name": "别的名字"}, biz_id="crm-1")
    assert again["errcode"] == "0" and again["id"] == first["id"]
    assert conn.execute("SELECT COUNT(*) FROM Customer").fetchone()[0] == before + 1
    row = conn.execute("SELECT cCusName, cCusRegCode FROM Customer WHERE cCusCode = ?", first["id"]).fetchone()
    assert tuple(row) == ("杭州幂等测试科技有限公司", "91330106MA2H0AB12X")
    got = requests.get(sbx.u8 + "/api/customer/get", params={**p, "id": first["id"]}, timeout=10).json()
    assert got["errcode"] == "0" and got["customer"]["address"] == "杭州市西湖区文三路1号"


def test_u8_errors(sbx: Sandbox) -> None:
    p = sbx.u8_params()
    add = sbx.u8 + "/api/customer/add"
    assert sbx.u8_add(p, "customer", {"name": "长" * 99}, biz_id="long")["errcode"] == "40001"   # U8's refusals come
    assert sbx.u8_add(p, "customer", {"name": "长" * 98}, biz_id="ok98")["errcode"] == "0"       # through the result url
    assert sbx.u8_add(p, "customer", {"address": "x"}, biz_id="noname")["errcode"] == "40001"
    existing = sbx.odbc().execute("SELECT MIN(cCusCode) FROM Customer").fetchone()[0]
    assert sbx.u8_add(p, "customer", {"code": existing, "name": "x"}, biz_id="dup")["errcode"] == "40002"
    bad = requests.post(add, params={**p, "token": "expired"}, json={"customer": {"name": "x"}}, timeout=10)
    assert bad.json()["errcode"] == "20003"
    sync = requests.post(add, params={**p, "biz_id": "sync", "sync": "1"}, json={"customer": {"name": "x"}}, timeout=10)
    assert sync.json()["errcode"] == "20002" and "sync=1" in sync.json()["errmsg"]   # the old shape is refused


def test_rowversion_strictly_increases_on_edit(sbx: Sandbox) -> None:
    p = sbx.u8_params()
    conn = sbx.odbc()
    code, rv0 = conn.execute("SELECT cCusCode, pubufts FROM Customer ORDER BY pubufts LIMIT 1").fetchone()
    top = conn.execute("SELECT MAX(pubufts) FROM Customer").fetchone()[0]
    seen = [rv0]
    for phone in ("021-64880001", "021-64880002"):
        r = requests.post(sbx.u8 + "/api/customer/edit", params=p,
                          json={"customer": {"code": code, "phone": phone}}, timeout=10).json()
        assert r == {"errcode": "0", "errmsg": ""}
        seen.append(conn.execute("SELECT pubufts FROM Customer WHERE cCusCode = ?", code).fetchone()[0])
    assert seen == sorted(set(seen)) and seen[1] > top and isinstance(seen[-1], int) and seen[-1] > 2**32
    changed = conn.execute("SELECT cCusCode FROM Customer WHERE pubufts > ? ORDER BY pubufts, cCusCode",
                           top).fetchall()
    assert code in [r[0] for r in changed]


# -- faults ------------------------------------------------------------------------------------

def test_faults_switch_on_and_off(sbx: Sandbox) -> None:
    s = sbx.crm_session()
    url = sbx.crm + "/rest/data/v2.0/query/xoql"
    form = {"xoql": "select id from account limit 0,5"}
    try:
        sbx.faults(sbx.crm, rate=1.0, kinds=["429"], seed=5)
        r = s.post(url, data=form, timeout=10)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert requests.get(sbx.crm + "/__sandbox/stats", timeout=10).status_code == 200  # never faulted
        sbx.faults(sbx.crm, kinds=["malformed"])
        r = s.post(url, data=form, timeout=10)
        assert r.status_code == 200
        with pytest.raises(ValueError):
            json.loads(r.text)
        token_answer = requests.post(sbx.crm + "/auc/oauth2/token", data=sbx.token_params(), timeout=10)
        assert token_answer.json()["access_token"]  # malformed never hits the token endpoint
        sbx.faults(sbx.crm, kinds=["expire_token"])
        assert s.post(url, data=form, timeout=10).status_code == 401
        sbx.faults(sbx.crm, rate=0.0)
        assert s.post(url, data=form, timeout=10).status_code == 401  # that token really is gone
        s = sbx.crm_session()
        assert s.post(url, data=form, timeout=10).json()["code"] == "200"
        stats = requests.get(sbx.crm + "/__sandbox/stats", timeout=10).json()
        assert stats["faults"]["429"] >= 1 and stats["faults"]["malformed"] >= 1
        assert stats["by_status"]["429"] >= 1 and stats["config"]["rate"] == 0.0
    finally:
        sbx.faults(sbx.crm, rate=0.0)


def test_a_write_answered_with_5xx_was_not_applied(sbx: Sandbox) -> None:
    p = sbx.u8_params()
    conn = sbx.odbc()
    before = conn.execute("SELECT COUNT(*) FROM Customer").fetchone()[0]
    try:
        sbx.faults(sbx.u8, rate=1.0, kinds=["500", "502"], seed=9)
        for _ in range(4):
            r = requests.post(sbx.u8 + "/api/customer/add", params={**p, "biz_id": "five-xx"},
                              json={"customer": {"name": "五百测试有限公司"}}, timeout=10)
            assert r.status_code in (500, 502)
        assert conn.execute("SELECT COUNT(*) FROM Customer").fetchone()[0] == before
        # expire_token spares tokens younger than fresh_seconds (default 5 s): none spared here
        requests.post(sbx.u8 + "/__sandbox/u8/tokens", json={"fresh_seconds": 0}, timeout=10).raise_for_status()
        sbx.faults(sbx.u8, kinds=["expire_token"])
        r = requests.get(sbx.u8 + "/api/customer/get", params={**p, "id": "H000001"}, timeout=10).json()
        assert r["errcode"] == "20003"
    finally:
        sbx.faults(sbx.u8, rate=0.0)
        requests.post(sbx.u8 + "/__sandbox/u8/tokens", json={"fresh_seconds": 5}, timeout=10).raise_for_status()
    p = sbx.u8_params()
    r = sbx.u8_add(p, "customer", {"name": "五百测试有限公司"}, biz_id="five-xx")
    assert r["errcode"] == "0" and conn.execute("SELECT COUNT(*) FROM Customer").fetchone()[0] == before + 1


def test_fault_sequence_is_deterministic(sbx: Sandbox) -> None:
    def run() -> list[int]:
        sbx.faults(sbx.u8, rate=0.5, kinds=["429", "500", "slow"], seed=21)
        return [requests.get(sbx.u8 + "/system/token", params={}, timeout=10).status_code for _ in range(12)]
    try:
        first, second = run(), run()
    finally:
        sbx.faults(sbx.u8, rate=0.0)
    assert first == second and set(first) != {200}


def test_sigterm_stops_cleanly(sbx: Sandbox) -> None:
    # Last test of the module: stops the shared server.
    sbx.proc.send_signal(signal.SIGTERM)
    assert sbx.proc.wait(timeout=10) == 0
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        requests.get(sbx.crm + "/__sandbox/stats", timeout=2)
    assert time.monotonic() - started < 5
