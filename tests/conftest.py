"""Shared fixtures: an isolated hub store per test, PostgreSQL when the production profile
is tested, and the sandbox systems on loopback."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The embedded Airflow profile, as the Makefile sets it, for a bare `pytest` too.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / "var" / "airflow"))
os.environ.setdefault("AIRFLOW_CONFIG", str(ROOT / "airflow.cfg"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{ROOT / 'var' / 'airflow' / 'airflow.db'}")
#: Test files that share one Airflow metadata DB, API server or the Celery broker: under pytest-xdist
#: (make test: -n 2 --dist loadgroup) they run one after another on one worker; every other file runs
#: whole on whichever worker is free, so its module-scoped worlds are built once.
SHARED_AIRFLOW = {"test_console_access", "test_console_browser", "test_dag", "test_make_up", "test_scale_out",
                  "test_shop_pushes", "test_production_profile", "test_alerts", "test_receipts"}


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): run with the other tests of this group on one xdist worker")
    config.pluginmanager.register(_GroupingCheck(), "hub-grouping-check")


#: The longest groups (measured with --durations), handed out first so that neither worker is left
#: alone with a long group at the end of the run (longest first; every other file after them).
LONGEST_FIRST = ("airflow", "test_chaos", "test_shop_faults", "test_order_replace_kill", "test_shop_orders",
                 "test_exactly_once", "test_orders", "test_customer_master", "test_shops_contract")


def _group(item) -> str:
    module = Path(str(item.fspath)).stem
    return "airflow" if module in SHARED_AIRFLOW else module


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_group(item), len(rank)))  # stable: each file keeps its order


class _GroupingCheck:
    """Stops a run whose files xdist could not group: xdist tags each node id with its group, and
    under pytest 9 that tag silently went nowhere, so every file ran split over both workers and
    built its module world twice (the suite took twice as long)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items) -> None:
        if config.getoption("loadgroup", False) and any("@" not in item.nodeid for item in items):
            raise pytest.UsageError("pytest-xdist did not group the tests by file (xdist_group): see requirements.txt")


PG_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    from sqlalchemy import create_engine, text

    try:
        eng = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture
def pg_url() -> str:
    """A fresh PostgreSQL schema; in CI a missing server fails the test instead of skipping."""
    problem = _pg_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and is not reachable at {PG_URL}: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    from sqlalchemy import create_engine, text

    schema = f"hubtest_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f"create schema {schema}"))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    yield url
    from hub import store

    store.engine_for(url).dispose()
    store.engine_for.cache_clear()
    with admin.begin() as c:
        c.execute(text(f"drop schema {schema} cascade"))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """Run a store test on the embedded SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty hub store and var folder of its own."""
    from hub import store

    monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HUB_STORE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    store.engine_for.cache_clear()
    yield tmp_path
    store.engine_for.cache_clear()


def isolate_hub(folder: Path, monkeypatch) -> None:
    """A hub store and var folder of its own under ``folder``, for a module's shared world; the
    seeded world's today for receipts (overdue plans), as the demo sets it."""
    from hub import store

    monkeypatch.setenv("HUB_VAR_DIR", str(folder / "var"))
    monkeypatch.setenv("HUB_STORE_URL", f"sqlite:///{folder / 'hub.db'}")
    monkeypatch.setenv("HUB_RECEIPTS_AS_OF", "2025-06-30")
    store.engine_for.cache_clear()


def start_sandbox(folder: Path, accounts: int, monkeypatch, seed: int = 42, shop_orders: int | None = None):
    from sandbox.harness import Sandbox

    folder.mkdir(parents=True, exist_ok=True)
    sb = Sandbox(folder, accounts=accounts, seed=seed, shop_orders=shop_orders).seed().start()
    for key, value in sb.connections().items():
        monkeypatch.setenv(key, value)
    return sb


@contextmanager
def ordered_world(tmp_path_factory, name: str, accounts: int = 60, env: dict[str, str] | None = None):
    """A module's world up to the orders: its own hub and sandbox, customers, products and orders
    through their flows (U8 holds the hub's orders, nothing shipped yet); cleaned up after. ``env``:
    settings of the module (``HUB_BINDINGS``, a fernet key) in place before anything runs."""
    from hub import store
    from tests.flowkit import run_flow

    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp(name)
    isolate_hub(folder, mp)
    for key, value in (env or {}).items():
        mp.setenv(key, value)
    sb = start_sandbox(folder / "sandbox", accounts, mp)
    try:
        for flow in ("customer_master", "product_master", "sales_orders"):
            run_flow(flow, f"{flow}-1")
        yield sb
    finally:
        sb.stop()
        mp.undo()
        store.engine_for.cache_clear()


@pytest.fixture
def sandbox(hub, monkeypatch):
    """The sandbox systems on loopback (150 seeded accounts), wired to the hub's connections."""
    sb = start_sandbox(hub / "sandbox", 150, monkeypatch)
    yield sb
    sb.stop()


# The console tests' shared Airflow API server and seeded hub (tests/consolekit.py).
from tests.consolekit import console, console_site  # noqa: E402,F401
