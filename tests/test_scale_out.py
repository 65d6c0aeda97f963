"""The production profile's scale-out: Airflow with its metadata on PostgreSQL and the
CeleryExecutor with Redis or RabbitMQ as broker. A real scheduler, DAG processor, API server and Celery
worker (separate processes) run the customer_master DAG; the hub store is on PostgreSQL too.
In CI a missing PostgreSQL or Redis fails this test instead of skipping it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, select, text

from hub import model, store
from sandbox.harness import free_port

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = str(Path(sys.executable).parent / "airflow")
#: The brokers of the production profile, on the machine's local services (test defaults).
BROKERS = {"redis": os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
           "rabbitmq": os.environ.get("HUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")}
DAG_FILE = '''"""customer_master as in dags/, without its timer: the test triggers it (an airflow dag file)."""
from flows.dag import flow_dag

dag = flow_dag("customer_master", "flows.customer_master", schedule=None, produces=["customer"])
'''


def _need(broker: str) -> str:
    """The broker's URL; in CI a broker that does not answer fails the test."""
    url = urlsplit(BROKERS[broker])
    try:
        with socket.create_connection((url.hostname, url.port), timeout=3):
            return BROKERS[broker]
    except OSError as exc:
        where = f"{url.hostname}:{url.port}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{broker} is required in CI and is not reachable at {where}: {exc}")
        pytest.skip(f"{broker} not reachable at {where}: {exc}")


@pytest.fixture
def airflow_on_postgres(pg_url):
    """A fresh PostgreSQL database for Airflow's metadata; dropped afterwards."""
    from tests.conftest import PG_URL

    name = f"airflow_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"create database {name}"))
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as c:
        c.execute(text(f"drop database if exists {name} with (force)"))
    admin.dispose()


def _drop_queue(broker_url: str, queue: str) -> None:
    """Leave the broker as it was: this test's queue goes with it."""
    from kombu import Connection

    try:
        with Connection(broker_url, connect_timeout=5) as conn:
            conn.default_channel.queue_delete(queue)
    except Exception:  # noqa: BLE001 - cleanup only; the test's verdict does not depend on it
        pass


class Cluster:
    """The Airflow processes of one deployment, each logging to its own file."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env, self.procs = home, env, {}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=300)
        if check and done.returncode:
            raise AssertionError(f"airflow {' '.join(args)}: exit {done.returncode}\n{done.stdout[-3000:]}\n"
                                 f"{done.stderr[-3000:]}")
        return done

    def start(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "wb")
        self.procs[name] = (subprocess.Popen([AIRFLOW, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True), log)

    def stop(self) -> None:
        for proc, log in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, log in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            log.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.home.glob("*.log"))


@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_customer_master_runs_on_celery_workers_with_postgres_metadata(broker, sandbox, pg_url, airflow_on_postgres,
                                                                        tmp_path, monkeypatch):
    broker_url = _need(broker)
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / "customer_master.py").write_text(DAG_FILE, encoding="utf-8")
    monkeypatch.setenv("HUB_STORE_URL", pg_url)
    store.engine_for.cache_clear()
    queue, port = f"hub_{uuid.uuid4().hex[:8]}", free_port()
    meta = airflow_on_postgres
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "AIRFLOW_HOME": str(home), "AIRFLOW_CONFIG": str(ROOT / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,           # this test's tasks reach this test's worker only
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": "scale-out-test-jwt-secret-0123456789abcdef",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    }
    cluster = Cluster(home, env)
    cluster.cli("db", "migrate")
    cluster.cli("pools", "set", "registry_api", "2", "registry lookups")
    try:
        cluster.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        cluster.start("dag-processor", "dag-processor")
        cluster.start("scheduler", "scheduler")
        cluster.start("worker", "celery", "worker", "--queues", queue, "--concurrency", "2", "--skip-serve-logs")
        run_id = "celery-1"
        deadline = time.time() + 180
        while True:  # the DAG is triggerable once the DAG processor has serialized it
            done = cluster.cli("dags", "trigger", "customer_master", "--run-id", run_id, check=False)
            if done.returncode == 0:
                break
            assert time.time() < deadline, done.stderr[-2000:] + cluster.logs()
            time.sleep(3)
        af = create_engine(meta)
        deadline = time.time() + 420
        state = None
        while time.time() < deadline:
            with af.connect() as c:
                state = c.execute(text("select state from dag_run where dag_id = 'customer_master' and run_id = :r"),
                                  {"r": run_id}).scalar()
            if state in ("success", "failed"):
                break
            time.sleep(3)
        with af.connect() as c:
            tis = c.execute(text("select task_id, state, queue, hostname, executor from task_instance "
                                 "where dag_id = 'customer_master' and run_id = :r"), {"r": run_id}).all()
        af.dispose()
        assert state == "success", (state, tis, cluster.logs())
    finally:
        cluster.stop()
        _drop_queue(broker_url, queue)
    assert sorted(t.task_id for t in tis) == sorted(
        ["extract", "map", "validate", "resolve", "load", "publish", "write_back"])
    assert all(t.state == "success" and t.queue == queue and t.hostname for t in tis), tis
    with store.engine().begin() as c:
        run = c.execute(select(model.sync_run).where(model.sync_run.c.run_id == run_id)).one()
        written = c.execute(select(model.sync_step.c.written).where(
            model.sync_step.c.run_id == run_id, model.sync_step.c.step == "write_back")).scalar()
    assert store.engine().dialect.name == "postgresql"
    assert run.status == "success" and written > 0
