"""`make up`: the sandbox plus `airflow standalone` (API server with the UI, scheduler, DAG
processor, triggerer). A user opens the UI, triggers customer_master and sees it succeed;
its tasks run in LocalExecutor workers that report to the API server, which must accept
their tokens (every component signs with one shared JWT key, or every task is refused)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from sandbox.harness import free_port
from tests.consolekit import metadata_db

ROOT = Path(__file__).resolve().parent.parent


def _wait(what: str, check, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"make up exited while waiting for {what}:\n{log.read_text(errors='replace')[-4000:]}"
        try:
            found = check()
        except requests.RequestException:
            found = None
        if found:
            return found
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text(errors='replace')[-4000:]}")


def test_make_up_serves_the_ui_and_runs_a_triggered_flow(tmp_path):
    home, port = tmp_path / "airflow", free_port()
    home.mkdir()
    metadata_db(home / "airflow.db")
    meta = create_engine(f"sqlite:///{home / 'airflow.db'}")
    with meta.begin() as c:  # the copy may know DAGs other tests ran: only the one unpaused below may run
        c.execute(text("update dag set is_paused = 1"))
    meta.dispose()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW_CONN_", "AIRFLOW__API_AUTH__", "HUB_"))}
    env.update({
        "PYTHONPATH": str(ROOT), "AIRFLOW_HOME": str(home), "AIRFLOW_CONFIG": str(ROOT / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",   # only the DAG this test unpauses runs
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "HUB_VAR_DIR": str(tmp_path / "var"), "HUB_STORE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "HUB_UP_CRM_PORT": str(free_port()), "HUB_UP_U8_PORT": str(free_port()),
    })
    log = tmp_path / "make-up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "demo", "--up"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait("the API server", lambda: requests.get(f"{url}/api/v2/monitor/health", timeout=3).ok, 180, proc, log)
        passwords = home / "simple_auth_manager_passwords.json.generated"
        admin = json.loads(_wait("the admin password", lambda: passwords.exists() and passwords.read_text(), 60,
                                 proc, log))["admin"]
        token = requests.post(f"{url}/auth/token", json={"username": "admin", "password": admin}, timeout=10)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        dag = f"{url}/api/v2/dags/customer_master"
        _wait("the DAG to be parsed", lambda: requests.get(dag, headers=headers, timeout=5).ok, 120, proc, log)
        # SQLite metadata under a busy scheduler may answer 5xx for a moment: ask again, as a user would
        _wait("the DAG to be unpaused", lambda: requests.patch(dag, headers=headers, json={"is_paused": False},
                                                               timeout=10).ok, 60, proc, log)
        _wait("the run to be accepted", lambda: requests.post(
            f"{dag}/dagRuns", headers=headers, json={"dag_run_id": "up-1", "logical_date": None}, timeout=10
        ).status_code in (200, 409), 60, proc, log)
        state = _wait("the run to finish", lambda: (s := requests.get(f"{dag}/dagRuns/up-1", headers=headers,
                                                                      timeout=5).json().get("state"))
                      in ("success", "failed") and s, 300, proc, log)
        tis = requests.get(f"{dag}/dagRuns/up-1/taskInstances", headers=headers, timeout=10).json()["task_instances"]
        assert state == "success", ([(t["task_id"], t["state"], t["try_number"]) for t in tis],
                                    log.read_text(errors="replace")[-4000:])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    hub = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    with hub.connect() as c:
        status = c.execute(text("select status from sync_run where run_id = 'up-1'")).scalar()
    hub.dispose()
    assert status == "success"
