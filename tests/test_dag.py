"""customer_master through Airflow itself (dag.test), and no secret in what it logs."""
from __future__ import annotations

import importlib.util
import json
import logging
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from hub import model, store
from tests.flowkit import crm_accounts

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def _dag():
    spec = importlib.util.spec_from_file_location("customer_master_dag", ROOT / "dags" / "customer_master.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def _secrets(sb) -> list[str]:
    cred = sb.credentials()
    return [cred["crm"]["password"], cred["crm"]["client_secret"], cred["crm"]["security_token"],
            cred["u8"]["app_secret"]]


def test_the_dag_runs_twice_through_airflow_and_logs_no_secret(sandbox, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    dag = _dag()
    assert [t.task_id for t in dag.tasks] == ["extract", "map", "validate", "resolve", "load", "publish", "write_back"]
    now = datetime.now(timezone.utc)
    first = dag.test(logical_date=now - timedelta(minutes=1))
    second = dag.test(logical_date=now)
    assert str(first.state) == "success" and str(second.state) == "success"
    with store.engine().begin() as conn:
        runs = conn.execute(select(model.sync_run.c.run_id, model.sync_run.c.status)
                            .order_by(model.sync_run.c.started_at)).all()
        steps = {(r.run_id, r.step): r for r in conn.execute(select(model.sync_step))}
    assert [r.status for r in runs] == ["success", "success"]
    assert steps[(runs[1].run_id, "write_back")].written == 0          # run 2 writes nothing
    assert any(a.get("erpCode__c") for a in crm_accounts(sandbox).values())
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    assert "customer_master.write_back done" in logged
    for secret in _secrets(sandbox):
        assert secret not in logged


def test_a_refused_login_fails_without_retry_and_without_the_password(sandbox, monkeypatch, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    conn = json.loads(sandbox.connections()["AIRFLOW_CONN_CRM_XIAOSHOUYI"])
    conn["password"] = "Wr0ngPassw0rd-do-not-log"
    monkeypatch.setenv("AIRFLOW_CONN_CRM_XIAOSHOUYI", json.dumps(conn))
    run = _dag().test()
    assert str(run.state) == "failed"
    with store.engine().begin() as c:
        step = c.execute(select(model.sync_step).where(model.sync_step.c.step == "extract")).first()
        run_row = c.execute(select(model.sync_run)).first()
    assert step.error_class == "configuration" and step.attempt == 1
    assert "login refused" in step.error_text
    assert run_row.status == "failed"
    out, err = capfd.readouterr()
    for text in (out + err + caplog.text, step.error_text, run_row.error_text or ""):
        assert "Wr0ngPassw0rd-do-not-log" not in text
        for secret in _secrets(sandbox):
            assert secret not in text
