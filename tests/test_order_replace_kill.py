"""A changed U8 order is replaced by two OpenAPI calls without a transaction (close, then
add). A write step killed after U8 closed the order and before the hub recorded it must not
leave a closed order with no replacement: the next run finishes the replacement."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import select

from hub import model, store
from tests.flowkit import run_flow, step
from tests.orderkit import crm_orders, plan, u8_orders


def test_a_kill_between_close_and_add_is_finished_by_the_next_run(sandbox):
    for n, flow in enumerate(["customer_master", "product_master", "sales_orders"]):
        run_flow(flow, f"rk-{n}")
    before = {o["cDefine11"]: o["cSOCode"] for o in u8_orders(sandbox)}
    applied = sandbox.crm_after_push()["applied"]
    replaced = [(p["po"], e) for p, e in zip(plan(sandbox)["after_push"], applied) if e["expect"] == "replaced"]
    assert replaced
    import importlib

    from hub import runner

    functions = importlib.import_module("flows.sales_orders").STEP_FUNCTIONS
    for name in ("extract", "map", "validate", "resolve", "load", "publish"):
        runner.run_step("sales_orders", name, "rk-change", functions[name])
    # U8 applies each close and its answer is lost: the hub retries with backoff, and is killed
    # as soon as U8 holds the closes, before any replacement was added
    sandbox.faults(1.0, ["lost"], systems=("u8",))
    proc = subprocess.Popen([sys.executable, "-m", "flows", "run", "sales_orders", "--run-id", "rk-change",
                             "--step", "write_back"], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    codes = {before[po] for po, _ in replaced}
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        closed = {o["cSOCode"] for o in u8_orders(sandbox) if o["cCloser"]}
        if codes <= closed:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the write step ended before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    sandbox.faults(0.0)
    by_po = {}
    for o in u8_orders(sandbox):
        by_po.setdefault(o["cDefine11"], []).append(o)
    assert all(all(o["cCloser"] for o in by_po[po]) for po, _ in replaced)   # closed, nothing added yet

    rep = run_flow("sales_orders", "rk-next")                               # the next scheduled run
    assert all(t["adds_up"] for t in rep["systems"].values())
    orders = crm_orders(sandbox)
    open_by_po: dict[str, list] = {}
    for o in u8_orders(sandbox):
        if not o["cCloser"]:
            open_by_po.setdefault(o["cDefine11"], []).append(o)
    for po, edit in replaced:
        assert len(open_by_po.get(po, [])) == 1, po                         # exactly one replacement
        assert orders[edit["order_id"]]["erpCode__c"] == open_by_po[po][0]["cSOCode"]
    with store.engine().begin() as conn:
        q = model.quarantine.c
        reasons = [r for (r,) in conn.execute(select(q.reasons).where(q.flow == "sales_orders", q.status == "open"))]
    assert not any("cannot be applied" in " ".join(r) for r in reasons), reasons
    assert step(run_flow("sales_orders", "rk-again"), "write_back")["written"] == 0


def test_a_close_that_never_reached_u8_is_planned_again_not_doubled(sandbox, monkeypatch):
    # U8 refuses every call while down: two attempts a call, not six with backoff (the connection's
    # http_max_attempts), or the refused run alone spends a minute in retries
    conn = json.loads(os.environ["AIRFLOW_CONN_U8_OPENAPI"])
    conn["extra"] = {**conn["extra"], "http_max_attempts": 2, "http_backoff": 0.05}
    monkeypatch.setenv("AIRFLOW_CONN_U8_OPENAPI", json.dumps(conn))
    for n, flow in enumerate(["customer_master", "product_master", "sales_orders"]):
        run_flow(flow, f"rn-{n}")
    applied = sandbox.crm_after_push()["applied"]
    replaced = [(p["po"], e) for p, e in zip(plan(sandbox)["after_push"], applied) if e["expect"] == "replaced"]
    sandbox.faults(1.0, ["500"], systems=("u8",))     # every close is refused before U8 does anything
    try:
        run_flow("sales_orders", "rn-change", retries=0)
    except Exception:  # noqa: BLE001 - the write step fails: U8 is down
        pass
    sandbox.faults(0.0)
    assert all(not o["cCloser"] for o in u8_orders(sandbox))
    run_flow("sales_orders", "rn-next")
    open_by_po: dict[str, int] = {}
    for o in u8_orders(sandbox):
        if not o["cCloser"]:
            open_by_po[o["cDefine11"]] = open_by_po.get(o["cDefine11"], 0) + 1
    assert all(open_by_po.get(po) == 1 for po, _ in replaced), open_by_po   # replaced once, never two open
    assert max(open_by_po.values()) == 1
