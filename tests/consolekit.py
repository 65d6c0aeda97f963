"""A real Airflow API server with the hub console plugin, and a real headless Chromium, for
the console tests. Both bind to loopback only."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from sandbox.harness import free_port

ROOT = Path(__file__).resolve().parent.parent
#: The simple auth manager's users for the tests: an admin who may edit, a viewer who may not.
USERS = {"ops": ("admin", "ops-Pa55-console"), "viewer": ("viewer", "viewer-Pa55-console")}
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "var" / "screenshots"


def metadata_db(target: Path) -> None:
    """An Airflow metadata DB for the server: a copy of the project's migrated one, else a new one."""
    source = ROOT / "var" / "airflow" / "airflow.db"
    if source.exists():
        src, dst = sqlite3.connect(source), sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        return
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{target}"}
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class AirflowApiServer:
    """``airflow api-server`` on a free loopback port, its own AIRFLOW_HOME and metadata DB,
    the project's plugins, and the environment of the calling test (hub store, connections)."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = Path(home)
        self.port = free_port()
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> "AirflowApiServer":
        return self.launch().wait(timeout)

    def launch(self) -> "AirflowApiServer":
        """Start the server process without waiting for it (it takes a few seconds to boot)."""
        self.home.mkdir(parents=True, exist_ok=True)
        db = self.home / "airflow.db"
        metadata_db(db)
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({u: p for u, (_, p) in USERS.items()}), encoding="utf-8")
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW_CONFIG": str(ROOT / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, (r, _) in USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": "console-test-jwt-secret-0123456789abcdef",
            "AIRFLOW__API__BASE_URL": self.url,
            **self.extra_env,
        }
        self.log = open(self.home / "api-server.log", "wb")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), "api-server", "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", "1"], env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def wait(self, timeout: float = 120.0) -> "AirflowApiServer":
        """Block until the server answers its health check."""
        assert self.proc is not None
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"airflow api-server did not start; see {self.home / 'api-server.log'}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the server and its worker: our own process group
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()

    def token(self, user: str) -> str:
        """A JWT from Airflow's own login endpoint."""
        r = requests.post(f"{self.url}/auth/token", json={"username": user, "password": USERS[user][1]}, timeout=10)
        r.raise_for_status()
        return r.json()["access_token"]


def need_chromium() -> None:
    """Debian's chromium and chromedriver (``make system-deps``); CI must have them."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        message = f"missing {', '.join(missing)}: run `make system-deps` (apt chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def chromium():
    """A fresh headless Chromium driven through chromedriver (selenium)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="hub-chromium-")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000", "--lang=en-US"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    original_quit = driver.quit

    def quit_and_clean() -> None:
        original_quit()
        shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean  # type: ignore[method-assign]
    return driver


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


class Site:
    """A console under test: the sandbox, a hub store with one customer_master run, and the
    API server reading that store."""

    def __init__(self, sandbox, server: AirflowApiServer, env: dict[str, str], first_run: str) -> None:
        self.sandbox, self.server, self.env, self.first_run = sandbox, server, env, first_run


METRICS_TOKEN = "scrape-token-for-prometheus-0123456789"


@pytest.fixture(scope="session")
def console_site(tmp_path_factory):
    """One API server and one seeded hub for all console tests (booting them is the slow part)."""
    from hub import store
    from tests.conftest import start_sandbox
    from tests.flowkit import run_flow

    root = tmp_path_factory.mktemp("console")
    env = {"HUB_VAR_DIR": str(root / "var"), "HUB_STORE_URL": f"sqlite:///{root / 'hub.db'}"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        store.engine_for.cache_clear()
        sb = start_sandbox(root / "sandbox", 150, mp)
        env.update(sb.connections())
        server = AirflowApiServer(root / "airflow", {"HUB_METRICS_TOKEN": METRICS_TOKEN}).launch()
        try:
            run_flow("customer_master", "console-run-1")
            server.wait()
        except BaseException:
            server.stop()
            sb.stop()
            raise
        finally:
            store.engine_for.cache_clear()
    yield Site(sb, server, env, "console-run-1")
    server.stop()
    sb.stop()


@pytest.fixture
def console(console_site, monkeypatch):
    """The console site, with this test's hub store and connections pointing at it."""
    from hub import store

    for key, value in console_site.env.items():
        monkeypatch.setenv(key, value)
    store.engine_for.cache_clear()
    yield console_site
    store.engine_for.cache_clear()
