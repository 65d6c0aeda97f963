"""Creates are exactly once when answers are lost after the write was applied.

The stand-ins' ``lost`` (504 after the write), ``truncated`` (connection cut mid-answer) and
``malformed`` (half a body) faults apply the write and spoil only the answer: a client that
sends the create again makes a second record. These tests run the flows that create records
in the CRM and U8 with those faults on both, then count what the targets hold.
"""
from __future__ import annotations

import http.server
import threading

import pytest

from connectors.http import HttpClient
from hub.errors import AmbiguousWriteError
from tests.flowkit import query, run_flow

AFTER_APPLY = ["lost", "truncated", "malformed"]


class _Counting(http.server.BaseHTTPRequestHandler):
    """Applies every request (counts it), then loses the answer: 504, as a proxy would."""

    applied: list[str] = []

    def _lose(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).applied.append(self.command)
        self.send_response(504)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _lose

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def losing_server():
    _Counting.applied = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_the_http_helper_never_sends_a_create_twice_after_a_lost_answer(losing_server):
    client = HttpClient(losing_server, max_attempts=4, backoff=0.01, sleep=lambda s: None)
    with pytest.raises(AmbiguousWriteError):
        client.request("POST", "/xobjects/product", json_body={"data": {"productName": "x"}})
    assert _Counting.applied == ["POST"]            # sent once, then the connector must look it up
    with pytest.raises(Exception):
        client.request("GET", "/query")
    assert _Counting.applied == ["POST", "GET", "GET", "GET", "GET"]   # a read is simply retried
    _Counting.applied = []
    with pytest.raises(Exception) as exc:
        client.request("POST", "/api/customer/add?biz_id=h1", json_body={}, idempotent=True)
    assert not isinstance(exc.value, AmbiguousWriteError) and len(_Counting.applied) == 4


def test_a_connections_extra_sets_how_often_a_read_is_tried(losing_server):
    from hub.types import ConnectionInfo

    conn = ConnectionInfo("u8_openapi", host=losing_server, extra={"http_max_attempts": "2", "http_backoff": "0"})
    _Counting.applied = []
    with pytest.raises(Exception):
        HttpClient(conn.base_url(), **conn.http_retry()).request("GET", "/query")
    assert _Counting.applied == ["GET", "GET"]
    assert ConnectionInfo("x").http_retry() == {}   # no extra: the helper's defaults


def _dupes(db, table: str, column: str) -> list[tuple]:
    return query(db, f'select "{column}", count(*) from "{table}" where coalesce("{column}", \'\') != \'\' '
                     f'group by "{column}" having count(*) > 1')


def test_crm_and_u8_creates_are_once_when_answers_are_lost(sandbox):
    sandbox.faults(0.4, AFTER_APPLY, seed=11, systems=("crm", "u8"))
    for n, flow in enumerate(["customer_master", "product_master", "sales_orders"]):
        rep = run_flow(flow, f"lost-{n}")
        assert all(t["adds_up"] for t in rep["systems"].values()), rep["systems"]
    sandbox.faults(0.0)
    sandbox.u8_ship()
    sandbox.faults(0.4, AFTER_APPLY, seed=12, systems=("crm", "u8"))
    rep = run_flow("shipments", "lost-ship")
    assert rep["targets"]["crm"]["duplicates"] == 0 and rep["targets"]["crm"]["keys"] > 0
    sandbox.faults(0.0)
    stats = sandbox.stats()
    assert sum(stats["crm"]["faults"].get(k, 0) for k in AFTER_APPLY) > 10    # the faults were really served

    assert _dupes(sandbox.crm_db, "product", "productCode__c") == []
    assert _dupes(sandbox.crm_db, "shipment__c", "dispatchCode__c") == []
    assert query(sandbox.u8_db, "select count(*), count(distinct code) from sandbox_bizid")[0] == \
        query(sandbox.u8_db, "select count(*), count(*) from sandbox_bizid")[0]
    # nothing the hub wrote is held twice, and a rerun with faults off writes nothing new
    products = query(sandbox.crm_db, "select count(*) from product")[0][0]
    run_flow("product_master", "lost-again")
    assert query(sandbox.crm_db, "select count(*) from product")[0][0] == products


def test_a_record_the_erp_cannot_take_now_waits_for_the_retry_while_the_rest_is_booked(sandbox, monkeypatch):
    """One try per call and a gateway that loses a third of U8's answers (some after the write
    was applied): the write step books what U8 confirmed, fails transiently for the rest, and its
    retry sends only those; U8 then holds every customer once."""
    import importlib
    import json
    import os
    import re

    from hub import report, runner, store
    from hub.errors import TransientError

    conn = json.loads(os.environ["AIRFLOW_CONN_U8_OPENAPI"])
    conn["extra"].update({"http_max_attempts": "1", "http_backoff": "0"})
    monkeypatch.setenv("AIRFLOW_CONN_U8_OPENAPI", json.dumps(conn))
    sandbox.faults(0.3, ["502", "lost"], seed=21, systems=("u8",))
    functions = importlib.import_module("flows.customer_master").STEP_FUNCTIONS
    steps = iter(runner.STEPS)
    for step in steps:
        try:
            runner.run_step("customer_master", step, "defer", functions[step])
        except TransientError as exc:
            deferred = int(re.search(r"(\d+) of \d+ records could not be written for now", str(exc))[1])
            break
    else:
        pytest.fail("no write was deferred")
    with store.engine().begin() as db:
        booked = dict(db.exec_driver_sql("select status, count(*) from outbox where entity = 'customer' "
                                         "and target = 'u8' group by status").fetchall())
    assert booked.get("done", 0) > 0 and booked.get("pending", 0) >= deferred > 0

    sandbox.faults(0.0)                        # the task's retry, as Airflow's retries would run it
    before = sandbox.stats()["u8"]["by_path"]
    for step in [step, *steps]:
        runner.run_step("customer_master", step, "defer", functions[step])
    runner.finish_run("defer", "success")
    rep = report.build("defer")
    assert all(t["adds_up"] for t in rep["systems"].values()), rep["systems"]
    after = sandbox.stats()["u8"]["by_path"]
    sent = sum(v - before.get(k, 0) for k, v in after.items() if k.endswith(("/customer/add", "/customer/edit")))
    assert sent == deferred                    # only the deferred ones went again
    made = query(sandbox.u8_db, "select biz_id, code from sandbox_bizid")
    assert len({code for _, code in made}) == len({biz for biz, _ in made}) == len(made)
    with store.engine().begin() as db:
        known = dict(db.exec_driver_sql("select hub_id, native_key from xref where entity = 'customer' "
                                        "and system = 'u8'").fetchall())
    assert all(known.get(biz) == code for biz, code in made)   # every customer U8 made is the hub's, once


def test_the_report_does_not_add_up_when_the_target_holds_a_record_twice(sandbox):
    run_flow("customer_master", "census-0")
    run_flow("product_master", "census-1")
    code, name = query(sandbox.crm_db, "select productCode__c, productName from product "
                                       "where coalesce(hubId__c, '') != '' order by id limit 1")[0]
    session = sandbox.crm_session()
    r = session.post(f"{sandbox.crm_url}/rest/data/v2.0/xobjects/product",
                     json={"data": {"productName": name, "productCode__c": code}}, timeout=10)
    assert r.json()["code"] == "200"                 # a salesperson typed the product in again
    # the U8 product changes, so the hub writes it again and counts what the CRM holds
    import sqlite3

    con = sqlite3.connect(sandbox.u8_db)
    with con:
        con.execute("update Inventory set cInvStd = coalesce(cInvStd, '') || ' v2' where cInvCode = ?", (code,))
    con.close()
    rep = run_flow("product_master", "census-2")
    from hub import report

    assert rep["systems"]["u8"]["outcomes"].get("updated in CRM", 0) >= 1, rep["systems"]
    assert rep["targets"]["crm"]["duplicates"] == 1
    assert rep["targets"]["crm"]["examples"] == {"product": [code]}
    assert rep["systems"]["crm"]["adds_up"] is False
    assert "HELD MORE THAN ONCE" in report.render(rep) and "DOES NOT ADD UP" in report.render(rep)
