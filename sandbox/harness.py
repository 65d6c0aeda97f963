"""Start the sandbox systems as a child process and hand out the Airflow connections that
reach them. Used by the demo, the tests and the benchmarks; imports nothing of the hub."""
from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import requests

from sandbox.faults import KINDS


LISTEN_PORTS = range(20000, 32000)  # below Linux's ephemeral range (32768-60999)


@contextlib.contextmanager
def loopback(app: Any, prefix: str | None = None) -> Iterator[str]:
    """One of the hub's ASGI apps (a receiver Airflow's API server mounts from a plugin) under
    uvicorn on loopback, mounted at ``prefix`` as the plugin mounts it; yields the base URL with the
    prefix. For tests and the demo: production serves these inside Airflow's API server."""
    import uvicorn

    if prefix:
        from fastapi import FastAPI

        parent = FastAPI()
        parent.mount(prefix, app)
        app = parent
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}{prefix or ''}"
    finally:
        server.should_exit = True
        thread.join(10)


def free_port() -> int:
    """A loopback port nobody listens on, drawn below the kernel's ephemeral range: a port the
    kernel handed out with ``bind(0)`` is soon given again to some outgoing connection, and on a
    busy test run a stand-in then fails to bind (seen in CI as "sandbox did not start")."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.choice(LISTEN_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {LISTEN_PORTS}")


class Sandbox:
    """The 销售易, U8, registry (天眼查 / 企查查), SAP S/4HANA, SAP ECC and shop platform stand-ins on
    loopback, seeded into ``folder``."""

    def __init__(self, folder: Path, accounts: int = 300, seed: int = 42, crm_port: int | None = None,
                 u8_port: int | None = None, registry_port: int | None = None, orders: int | None = None,
                 sap_port: int | None = None, ecc_port: int | None = None, shops_port: int | None = None,
                 shop_orders: int | None = None, oa_port: int | None = None,
                 dingtalk_port: int | None = None) -> None:
        self.folder = Path(folder).resolve()
        self.accounts = accounts
        self.orders = orders  # None: the seed's default (one order per two accounts)
        self.seed_value = seed
        self.crm_port = crm_port or free_port()
        self.u8_port = u8_port or free_port()
        self.registry_port = registry_port or free_port()
        self.sap_port = sap_port or free_port()
        self.ecc_port = ecc_port or free_port()
        self.shops_port = shops_port or free_port()
        self.oa_port = oa_port or free_port()
        self.dingtalk_port = dingtalk_port or free_port()
        self.shop_orders = shop_orders  # None: the seed's default (one per account per platform)
        self.proc: subprocess.Popen | None = None

    @property
    def crm_url(self) -> str:
        return f"http://127.0.0.1:{self.crm_port}"

    @property
    def u8_url(self) -> str:
        return f"http://127.0.0.1:{self.u8_port}"

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    @property
    def sap_url(self) -> str:
        return f"http://127.0.0.1:{self.sap_port}"

    @property
    def urls(self) -> dict[str, str]:
        """Each stand-in's base URL by the name faults and stats use."""
        return {"crm": self.crm_url, "u8": self.u8_url, "registry": self.registry_url, "sap": self.sap_url,
                "ecc": self.ecc_url, "shops": self.shops_url, "oa": self.oa_url, "dingtalk": self.dingtalk_url}

    @property
    def dingtalk_url(self) -> str:
        """The 钉钉 approvals stand-in (api.dingtalk.com's v1.0 paths)."""
        return f"http://127.0.0.1:{self.dingtalk_port}"

    @property
    def oa_url(self) -> str:
        """The 泛微 e-cology 9 stand-in."""
        return f"http://127.0.0.1:{self.oa_port}"

    @property
    def shops_url(self) -> str:
        """The shop platforms' stand-in (all five on one port, each on its own paths)."""
        return f"http://127.0.0.1:{self.shops_port}"

    @property
    def ecc_url(self) -> str:
        return f"http://127.0.0.1:{self.ecc_port}"

    @property
    def sap_s4_db(self) -> Path:
        return self.folder / "sap_s4.db"

    @property
    def u8_db(self) -> Path:
        return self.folder / "u8.db"

    @property
    def crm_db(self) -> Path:
        return self.folder / "crm.db"

    def seed(self) -> "Sandbox":
        subprocess.run([sys.executable, "-m", "sandbox", "seed", "--dir", str(self.folder), "--accounts",
                        str(self.accounts), "--seed", str(self.seed_value),
                        *(["--orders", str(self.orders)] if self.orders is not None else []),
                        *(["--shop-orders", str(self.shop_orders)] if self.shop_orders is not None else [])],
                       check=True, stdout=subprocess.DEVNULL)
        return self

    def start(self, timeout: float = 60.0, attempts: int = 3) -> "Sandbox":
        """Serve, and serve again on fresh ports when a port was taken between choosing and
        binding it (another process's listener)."""
        for attempt in range(attempts):
            if self._serve(timeout):
                return self
            if attempt + 1 < attempts and "address already in use" in self._log_tail().lower():
                for name in ("crm_port", "u8_port", "registry_port", "sap_port", "ecc_port", "shops_port", "oa_port",
                             "dingtalk_port"):
                    setattr(self, name, free_port())
                continue
            break
        raise RuntimeError(f"sandbox did not start; see {self.folder / 'serve.log'}:\n{self._log_tail()}")

    def _log_tail(self, size: int = 2000) -> str:
        data = (self.folder / "serve.log").read_bytes() if (self.folder / "serve.log").exists() else b""
        return data[-size:].decode("utf-8", "replace")

    def _serve(self, timeout: float) -> bool:
        log = open(self.folder / "serve.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "sandbox", "serve", "--dir", str(self.folder),
                                      "--crm-port", str(self.crm_port), "--u8-port", str(self.u8_port),
                                      "--registry-port", str(self.registry_port),
                                      "--sap-port", str(self.sap_port), "--ecc-port", str(self.ecc_port),
                                      "--shops-port", str(self.shops_port), "--oa-port", str(self.oa_port),
                                      "--dingtalk-port", str(self.dingtalk_port)],
                                     stdout=subprocess.PIPE, stderr=log, text=True)
        deadline = time.time() + timeout
        assert self.proc.stdout is not None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if "sandbox ready" in line:
                return True
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def credentials(self) -> dict[str, Any]:
        return json.loads((self.folder / "credentials.json").read_text(encoding="utf-8"))

    def crm_session(self, timeout: float = 30) -> requests.Session:
        """A session signed into the sandbox CRM as its API user (OAuth2 password grant), the way
        a salesperson's client edits records: for tests and benchmarks, not for the hub."""
        cred = self.credentials()["crm"]
        token = requests.post(f"{self.crm_url}/auc/oauth2/token", data={
            "grant_type": "password", "client_id": cred["client_id"], "client_secret": cred["client_secret"],
            "username": cred["username"], "password": cred["password"] + cred["security_token"]},
            timeout=timeout).json()
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token['access_token']}"
        return session

    def registry_connection(self, provider: str = "tianyancha") -> dict[str, Any]:
        """The ``registry`` connection (Airflow's JSON form) for 天眼查 or 企查查."""
        reg = self.credentials()["registry"]
        if provider == "qichacha":
            return {"conn_type": "http", "host": self.registry_url, "login": reg["qichacha_key"],
                    "password": reg["qichacha_secret"], "extra": {"provider": "qichacha", "scheme": "http"}}
        return {"conn_type": "http", "host": self.registry_url, "password": reg["tianyancha_token"],
                "extra": {"provider": "tianyancha", "scheme": "http"}}

    def connections(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` values (Airflow's JSON form) for the hub's connections."""
        cred = self.credentials()
        crm, u8 = cred["crm"], cred["u8"]
        conns = {
            "CRM_XIAOSHOUYI": {"conn_type": "http", "host": self.crm_url, "login": crm["username"],
                               "password": crm["password"],
                               "extra": {"client_id": crm["client_id"], "client_secret": crm["client_secret"],
                                         "security_token": crm["security_token"], "scheme": "http"}},
            "U8_ODBC": {"conn_type": "odbc", "extra": {"odbc": f"DRIVER={{SQLite3}};Database={self.u8_db};"}},
            "U8_OPENAPI": {"conn_type": "http", "host": self.u8_url, "login": u8["from_account"],
                           "password": u8["app_secret"],
                           "extra": {"app_key": u8["app_key"], "to_account": u8["to_account"],
                                     "ds_sequence": u8.get("ds_sequence", "1"),
                                     # loopback answers in milliseconds: poll results soon, not after 1 s
                                     "result_wait_seconds": 0.05, "result_deadline_seconds": 30,
                                     **({"operator_user_id": u8["operator"]["user_id"],
                                         "operator_password": u8["operator"]["password"]} if u8.get("operator") else {})}},
            "REGISTRY": self.registry_connection("tianyancha"),
            "BANK_DROP": {"conn_type": "fs", "extra": {"path": str(self.folder / "bank_inbox")}},
            "SAP_S4": {"conn_type": "http", "host": self.sap_url, "login": cred["sap_s4"]["user"],
                       "password": cred["sap_s4"]["password"], "extra": {"sap_client": "100", "scheme": "http"}},
            # orders through the standard BAPI and BAPI_TRANSACTION_COMMIT (the stand-in also serves the Z wrapper)
            "SAP_ECC": {"conn_type": "http", "host": self.ecc_url, "login": cred["sap_ecc"]["user"],
                        "password": cred["sap_ecc"]["password"],
                        "extra": {"sap_client": "100", "scheme": "http", "order_commit": "standard"}},
        }
        if cred.get("ecology"):  # the 泛微 e-cology app: appid as login, the OA user requests are created as
            conns["OA_ECOLOGY"] = {"conn_type": "http", "host": self.oa_url, "login": cred["ecology"]["appid"],
                                   "extra": {"user_id": cred["ecology"]["user_id"], "scheme": "http"}}
        if cred.get("dingtalk"):  # the 钉钉 app: appKey / appSecret, who starts requests, its event push
            dt = cred["dingtalk"]
            conns["OA_DINGTALK"] = {"conn_type": "http", "host": self.dingtalk_url, "login": dt["app_key"],
                                    "password": dt["app_secret"], "extra": {
                                        "originator_user_id": dt["originator_user_id"], "dept_id": dt["dept_id"],
                                        "callback_token": dt["callback_token"], "callback_aes_key": dt["callback_aes_key"],
                                        "scheme": "http"}}
        for code, dealer in (cred.get("dealers") or {}).items():  # the dealer ordering API's dealers
            conns[f"DEALER_{code}"] = {"conn_type": "generic", "password": dealer["key"],
                                       "extra": {"erp_customer": dealer["erp_customer"], "name": dealer["name"]}}
        conns.update(self.shop_connections())
        for conn in conns.values():   # loopback answers in milliseconds: the retries' pauses short, their count as deployed
            if conn["conn_type"] == "http":
                conn["extra"].setdefault("http_backoff", 0.02)
        return {f"AIRFLOW_CONN_{k}": json.dumps(v, ensure_ascii=False) for k, v in conns.items()}

    def shop_connections(self) -> dict[str, dict[str, Any]]:
        """The five shops' ``api`` connections (docs: the shops contract), keyed SHOP_<PLATFORM>."""
        shops = self.credentials().get("shops")
        if not shops:
            return {}
        extra = {"taobao": {"session": shops["taobao"]["session"], "sign_method": "md5"},
                 "jd": {"access_token": shops["jd"]["access_token"]},
                 "pdd": {"access_token": shops["pdd"]["access_token"]},
                 "doudian": {"shop_id": shops["doudian"]["shop_id"], "sign_method": "md5"},
                 "youzan": {"grant_id": shops["youzan"]["grant_id"]}}
        return {f"SHOP_{platform.upper()}": {
            "conn_type": "http", "host": self.shops_url, "login": shops[platform]["app_key"],
            "password": shops[platform]["app_secret"],
            "extra": {**extra[platform], "scheme": "http", "decrypt_pii": False}} for platform in extra}

    def export(self) -> None:
        os.environ.update(self.connections())

    def faults(self, rate: float, kinds: list[str] | None = None, seed: int = 1,
               systems: tuple[str, ...] = ("crm", "u8", "registry", "sap", "ecc", "shops", "oa", "dingtalk"),
               slow_seconds: float | None = None) -> None:
        """Faults of ``kinds`` at ``rate`` on ``systems``; ``slow_seconds``: how long a ``slow`` answer stalls."""
        body: dict[str, Any] = {"rate": rate, "kinds": kinds or list(KINDS), "seed": seed}
        if slow_seconds is not None:
            body["slow_seconds"] = slow_seconds
        for name in systems:
            requests.post(f"{self.urls[name]}/__sandbox/faults", json=body, timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return {name: requests.get(f"{url}/__sandbox/stats", timeout=10).json() for name, url in self.urls.items()}

    def u8_ship(self, unplanned: str | None = None) -> dict[str, Any]:
        """The U8 warehouse verifies and ships the next stage of its plan (sandbox/u8_orders.py);
        ``unplanned`` ("full" | "two_stage") ships the orders no plan names too (a shop's)."""
        resp = requests.post(f"{self.u8_url}/__sandbox/u8/ship", json={"unplanned": unplanned} if unplanned else None,
                             timeout=120)
        resp.raise_for_status()
        return resp.json()

    def u8_return(self, serials: list[str]) -> dict[str, Any]:
        """A customer returns these serial-numbered units: U8 books a 退货单 per delivery (sandbox/u8_orders.py)."""
        resp = requests.post(f"{self.u8_url}/__sandbox/u8/return", json={"serials": serials}, timeout=120)
        resp.raise_for_status()
        return resp.json()

    def oa(self, control: str, **body: Any) -> dict[str, Any]:
        """The OA approvers: ``advance`` (``days``: the approvers work through that many days) or
        ``decide`` (``requestId``, ``action`` approve | reject | return, ``remark``); sandbox/ecology_app.py."""
        resp = requests.post(f"{self.oa_url}/__sandbox/oa/{control}", json=body, timeout=60)
        return {"status": resp.status_code, **resp.json()}

    def dingtalk(self, control: str, **body: Any) -> dict[str, Any]:
        """The 钉钉 stand-in's approvers and push: ``callback`` (``url``, ``token``, ``aes_key``), ``advance``
        (``days``), ``decide`` (``instanceId``, ``result`` agree | refuse) or ``pushes`` (what it pushed)."""
        url = f"{self.dingtalk_url}/__sandbox/dingtalk/{control}"
        resp = requests.get(url, timeout=60) if control == "pushes" else requests.post(url, json=body, timeout=60)
        return {"status": resp.status_code, **resp.json()}

    def sap_ship(self) -> dict[str, Any]:
        """The S/4HANA warehouse creates outbound deliveries for open sales orders (sandbox/sap_s4_app.py)."""
        resp = requests.post(f"{self.sap_url}/__sandbox/sap/ship", timeout=120)
        resp.raise_for_status()
        return resp.json()

    def crm_after_push(self) -> dict[str, Any]:
        """A salesperson changes and cancels orders already in U8 (sandbox/crm_orders.py)."""
        resp = requests.post(f"{self.crm_url}/__sandbox/crm/orders/after-push", timeout=60)
        resp.raise_for_status()
        return resp.json()

    def registry_quota(self, remaining: int | None, busy: int = 0) -> None:
        """After ``remaining`` more paid lookups the registry answers "balance insufficient";
        the next ``busy`` lookups get "access frequency too fast". None lifts the quota."""
        requests.post(f"{self.registry_url}/__sandbox/registry/quota", json={"remaining": remaining, "busy": busy},
                      timeout=10).raise_for_status()

    def registry_stats(self, reset: bool = False) -> dict[str, Any]:
        """The registry's lookup counters (``paid_by_key``, ``calls_by_key``); ``reset`` clears them."""
        stats = requests.get(f"{self.registry_url}/__sandbox/stats", timeout=10).json()
        if reset:
            requests.delete(f"{self.registry_url}/__sandbox/stats", timeout=10).raise_for_status()
        return stats

    def shops(self, action: str, **body: Any) -> dict[str, Any]:
        """A shops control call: ``churn``, ``push``, ``pay``, ``refund``, ``tokens``, ``limits``
        (POST with ``body``) or ``stats`` / ``truth`` (GET); see sandbox/shops_control.py."""
        url = f"{self.shops_url}/__sandbox/shops/{action}"
        resp = requests.get(url, timeout=60) if action in ("stats", "truth") else requests.post(url, json=body, timeout=60)
        resp.raise_for_status()
        return resp.json()

    def registry_truth(self) -> dict[str, Any]:
        return json.loads((self.folder / "registry_truth.json").read_text(encoding="utf-8"))
