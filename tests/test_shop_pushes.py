"""The shops' push receiver in Airflow's API server: a push is acknowledged only once stored,
forged / stale pushes are refused with the platform's answer, a replay or a duplicate stores
nothing twice, and a stored push records an Airflow asset event that queues the DAG consuming
``hub://shop_push``.

The oracle: every signed message is built here with hashlib from the platforms' published rules
(有赞 Event-Sign = md5(client_id + body + client_secret), cuncle/youzanyun-push-demo; 抖店
event-sign = md5(app_key + body + app_secret) with header app-id, minibear2021/doudian core.py).
The answers expected are those the seat adapter words for the platform (connectors/shops/push.py):
the receiver must pass them on unchanged, so the test asks the seat for them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from hub import pushes, store
from sandbox.harness import free_port
from tests.consolekit import AirflowApiServer

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/shop-push"
YZ_ID, YZ_SECRET = "b8fca94e508ac942de", "0123456789abcdef-yz-push-secret"
DD_KEY, DD_SECRET = "3409409348479354011", "2ad2355c-01d0-11f8-91dc-05a8cd1054b1-dd"
BUYER = "张三丰"  # personal data inside the message: must not be stored
CONSUMER_DAG = '''
import pendulum
from airflow.sdk import DAG, task
from flows.dag import asset

with DAG("shop_push_consumer", schedule=[asset("shop_push")], catchup=False,
         start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def nothing():
        return None

    nothing()
'''


def _bindings(folder: Path) -> Path:
    text = (ROOT / "deploy" / "bindings.yaml").read_text(encoding="utf-8")
    text += """
shop:
  - system: youzan
    name: yz_shop
    connections: {api: shop_push_youzan}
    options: {erp_customer: "9903"}
  - system: doudian
    name: dd_shop
    connections: {api: shop_push_doudian}
    options: {erp_customer: "9902"}
"""
    path = folder / "bindings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _env(folder: Path, store_url: str) -> dict[str, str]:
    return {
        "HUB_VAR_DIR": str(folder / "var"), "HUB_STORE_URL": store_url, "HUB_BINDINGS": str(_bindings(folder)),
        "AIRFLOW_CONN_SHOP_PUSH_YOUZAN": json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9",
                                                     "login": YZ_ID, "password": YZ_SECRET,
                                                     "extra": {"grant_id": "567323"}}),
        "AIRFLOW_CONN_SHOP_PUSH_DOUDIAN": json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9",
                                                      "login": DD_KEY, "password": DD_SECRET,
                                                      "extra": {"shop_id": "323423"}}),
    }


def youzan_push(tid: str, *, age: int = 30, msg_id: str = "9cb85c3d-8353-4e80-b24b-eb670eb52775",
                version: int | None = None) -> bytes:
    msg = urllib.parse.quote(json.dumps({"tid": tid, "receiver_name": BUYER}, ensure_ascii=False))
    body = {"client_id": YZ_ID, "id": tid, "kdt_id": 567323, "kdt_name": "有赞的店", "mode": 1, "msg": msg,
            "msg_id": msg_id, "sendCount": 0, "status": "WAIT_SELLER_SEND_GOODS", "test": False,
            "type": "trade_TradePaid", "version": version or int(time.time()) - age}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def youzan_headers(body: bytes, secret: str = YZ_SECRET) -> dict[str, str]:
    return {"Event-Sign": hashlib.md5(YZ_ID.encode() + body + secret.encode()).hexdigest(),
            "Content-Type": "application/json"}


def doudian_push(tag: str, p_id: int | None = None, *, age: int = 20) -> bytes:
    data = {} if p_id is None else {"shop_id": 323423, "p_id": p_id, "s_ids": [p_id + 1], "order_status": 2,
                                    "pay_time": int(time.time()) - age, "pay_amount": 12300}
    return json.dumps([{"tag": tag, "msg_id": f"70000000000{tag}{p_id or 0}", "data": json.dumps(data)}],
                      separators=(",", ":")).encode("utf-8")


def doudian_headers(body: bytes, app_key: str = DD_KEY) -> dict[str, str]:
    return {"app-id": app_key, "event-sign": hashlib.md5(DD_KEY.encode() + body + DD_SECRET.encode()).hexdigest(),
            "Content-Type": "application/json"}


def _answer(seat: str, ok: bool) -> tuple[int, dict]:
    """What the seat says the platform expects (the receiver must send exactly this)."""
    from flows import roles

    binding = next(b for b in roles.seats("shop") if b.name == seat)
    return roles.adapter(binding).push_answer(ok)


def _rows(tid: str) -> list:
    with store.engine().begin() as c:
        return c.execute(select(pushes.shop_push).where(pushes.shop_push.c.tid == tid)).all()


def _tally(seat: str) -> dict[str, int]:
    with store.engine().begin() as c:
        return {outcome: n for (_, outcome), n in pushes.tally(c, seat).items()}


class Site:
    def __init__(self, server: AirflowApiServer, env: dict[str, str]) -> None:
        self.server, self.env = server, env

    def post(self, seat: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(f"{self.server.url}{PREFIX}/{seat}", data=body, headers=headers, timeout=20)

    def api(self, path: str) -> dict:
        r = requests.get(self.server.url + path, timeout=10,
                         headers={"Authorization": f"Bearer {self.server.token('ops')}"})
        r.raise_for_status()
        return r.json()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Airflow's API server with the project's plugins, a hub store, two shop seats, and a DAG
    scheduled on hub://shop_push parsed into its metadata DB (as the DAG processor would)."""
    root = tmp_path_factory.mktemp("pushes")
    env = _env(root, f"sqlite:///{root / 'hub.db'}")
    server = AirflowApiServer(root / "airflow", env).launch()
    try:
        dags = root / "dags"
        dags.mkdir()
        (dags / "shop_push_consumer.py").write_text(CONSUMER_DAG, encoding="utf-8")
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "reserialize"], check=True,
                       env={**os.environ, **env, "PYTHONPATH": str(ROOT), "AIRFLOW_HOME": str(server.home),
                            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{server.home / 'airflow.db'}"},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        server.wait()
    except BaseException:
        server.stop()
        raise
    yield Site(server, env)
    server.stop()


@pytest.fixture
def world(site, monkeypatch):
    """This test reads the same store and bindings as the server."""
    from flows import roles

    for key, value in site.env.items():
        monkeypatch.setenv(key, value)
    store.engine_for.cache_clear()
    roles.reset()
    yield site
    store.engine_for.cache_clear()
    roles.reset()


def _logged(caplog, capfd) -> str:
    """What was logged so far (Airflow's structlog writes to stdout once Airflow is imported)."""
    out, err = capfd.readouterr()
    return caplog.text + out + err


def _wait_for(check, timeout: float = 20.0):
    deadline = time.time() + timeout
    while True:
        found = check()
        if found or time.time() > deadline:
            return found
        time.sleep(0.3)


def _signed(seat: str, tid: str) -> tuple[bytes, dict[str, str], str, str]:
    """A fresh signed push of order ``tid`` for ``seat``: body, headers, kind, version."""
    if seat == "yz_shop":
        body = youzan_push(tid)
        return body, youzan_headers(body), "trade_TradePaid", str(json.loads(body)["version"])
    body = doudian_push("101", int(tid))
    return body, doudian_headers(body), "101", str(json.loads(json.loads(body)[0]["data"])["pay_time"])


@pytest.mark.parametrize("seat,platform,tid", [("yz_shop", "youzan", "E20260526105106025600001"),
                                               ("dd_shop", "doudian", "4987654321012300009")])
def test_a_signed_push_is_stored_before_it_is_acknowledged_and_queues_the_orders_dag(world, seat, platform, tid):
    body, headers, kind, version = _signed(seat, tid)
    r = world.post(seat, body, headers)
    assert (r.status_code, r.json()) == _answer(seat, True)
    [row] = _rows(tid)
    assert (row.seat, row.platform, row.kind, row.consumed_run_id) == (seat, platform, kind, None)
    assert row.version == version and row.body_sha256 == hashlib.sha256(body).hexdigest()
    assert row.sent_at is not None and row.received_at is not None
    assert BUYER not in repr(tuple(row)) and "msg" not in row._mapping   # ids and a digest, never the body
    with store.engine().begin() as c:
        assert tid in pushes.pending(c, seat)

    [asset] = world.api("/api/v2/assets?uri_pattern=shop_push")["assets"]
    assert asset["uri"] == "hub://shop_push/"

    def event():
        events = world.api(f"/api/v2/assets/events?asset_id={asset['id']}")["asset_events"]
        return [e for e in events if tid in (e.get("extra") or {}).get("tids", [])]

    [ev] = _wait_for(event)
    assert ev["extra"]["seat"] == seat
    queued = world.api("/api/v2/dags/shop_push_consumer/assets/queuedEvents")["queued_events"]
    assert [q["asset_id"] for q in queued] == [asset["id"]]        # the consuming DAG is due to run


def test_doudian_url_check_is_answered_and_an_order_push_stored(world):
    check = doudian_push("0")
    r = world.post("dd_shop", check, doudian_headers(check))
    assert (r.status_code, r.json()) == _answer("dd_shop", True)
    paid = doudian_push("101", 4987654321012300001)
    r = world.post("dd_shop", paid, doudian_headers(paid))
    assert (r.status_code, r.json()) == _answer("dd_shop", True)
    [row] = _rows("4987654321012300001")
    assert (row.seat, row.platform, row.kind) == ("dd_shop", "doudian", "101")
    assert _tally("dd_shop").get(pushes.NO_ORDER) == 1


def test_forged_pushes_are_refused_with_the_platforms_answer_and_never_stored(world):
    tid = "E20260526105106025600002"
    body = youzan_push(tid)
    before = _tally("yz_shop").get(pushes.FORGED, 0)
    attempts = [
        ("yz_shop", body, youzan_headers(body, secret="not-the-secret")),             # wrong secret
        ("yz_shop", body, {"Content-Type": "application/json"}),                     # no signature
        ("yz_shop", body.replace(b"WAIT_SELLER", b"TRADE_CLOSE"), youzan_headers(body)),  # altered after signing
        ("yz_shop", body, doudian_headers(body)),                                    # another platform's headers
    ]
    for seat, data, headers in attempts:
        r = world.post(seat, data, headers)
        assert (r.status_code, r.json()) == _answer(seat, False), headers
    dd = doudian_push("101", 4987654321012300002)
    r = world.post("dd_shop", dd, doudian_headers(dd, app_key="1111111111111111111"))  # not our app
    assert (r.status_code, r.json()) == _answer("dd_shop", False)
    assert _rows(tid) == [] and _rows("4987654321012300002") == []
    assert _tally("yz_shop")[pushes.FORGED] == before + len(attempts)
    log = (world.server.home / "api-server.log").read_text(encoding="utf-8", errors="replace")
    assert "shop push refused on seat yz_shop: forged" in log
    for secret in (YZ_SECRET, DD_SECRET):
        assert secret not in log


def test_a_stale_push_is_refused_and_counted(world):
    tid = "E20260526105106025600003"
    body = youzan_push(tid, age=3600)
    before = _tally("yz_shop").get(pushes.STALE, 0)
    r = world.post("yz_shop", body, youzan_headers(body))
    assert (r.status_code, r.json()) == _answer("yz_shop", False)
    assert _rows(tid) == [] and _tally("yz_shop")[pushes.STALE] == before + 1


def test_a_replayed_push_is_answered_ok_and_stored_once(world):
    tid = "E20260526105106025600004"
    body = youzan_push(tid)
    before = _tally("yz_shop").get(pushes.REPLAYED, 0)
    for _ in range(3):
        r = world.post("yz_shop", body, youzan_headers(body))
        assert (r.status_code, r.json()) == _answer("yz_shop", True)
    assert len(_rows(tid)) == 1 and _tally("yz_shop")[pushes.REPLAYED] == before + 2


def test_a_duplicated_push_stores_one_and_a_new_version_one_more(world):
    tid = "E20260526105106025600005"
    version = int(time.time()) - 40
    before = _tally("yz_shop").get(pushes.DUPLICATE, 0)
    for msg_id in ("a-first-message-id", "a-second-message-id"):   # the same change, two messages
        body = youzan_push(tid, msg_id=msg_id, version=version)
        r = world.post("yz_shop", body, youzan_headers(body))
        assert (r.status_code, r.json()) == _answer("yz_shop", True)
    assert len(_rows(tid)) == 1 and _tally("yz_shop")[pushes.DUPLICATE] == before + 1
    newer = youzan_push(tid, msg_id="a-third-message-id", version=version + 5)
    assert world.post("yz_shop", newer, youzan_headers(newer)).status_code == 200
    assert sorted(r.version for r in _rows(tid)) == [str(version), str(version + 5)]
    with store.engine().begin() as c:
        assert pushes.pending(c, "yz_shop").count(tid) == 1


def test_the_receiver_is_mounted_beside_the_console(world):
    plugins = {p["name"]: p for p in world.api("/api/v2/plugins")["plugins"]}
    assert plugins["hub_pushes"]["fastapi_apps"][0]["url_prefix"] == PREFIX
    assert plugins["hub_console"]["fastapi_apps"][0]["url_prefix"] == "/hub"


def test_an_unknown_seat_is_404(world):
    body = youzan_push("E20260526105106025600006")
    for seat in ("no_such_shop", "crm", "erp"):
        r = world.post(seat, body, youzan_headers(body))
        assert r.status_code == 404, seat
    assert _rows("E20260526105106025600006") == []


def test_consume_marks_what_a_run_took_and_leaves_later_pushes_pending(hub):
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 5, 26, 2, 0, tzinfo=timezone.utc)
    with store.engine().begin() as c:
        for i, (tid, version) in enumerate([("1", "v1"), ("2", "v1"), ("1", "v2")]):
            assert pushes.record(c, seat="s", platform="youzan", body_sha256=f"d{i}", tid=tid, version=version,
                                 kind="k", sent_at=t0, received_at=t0 + timedelta(seconds=i)) == pushes.STORED
        assert pushes.pending(c, "s") == ["1", "2"] and pushes.pending(c, "other") == []
        read_at = t0 + timedelta(seconds=1)     # the run read pending before ("1", "v2") came in
        assert pushes.consume(c, "s", ["1", "2"], "run-1", received_before=read_at) == 2
        assert pushes.pending(c, "s") == ["1"]
        assert pushes.consume(c, "s", ["1"], "run-2") == 1 and pushes.pending(c, "s") == []


# --- the receiver outside Airflow: a store that is down, an asset event that fails ----------------

@pytest.fixture
def receiver(tmp_path, monkeypatch):
    """flows.shop_pushes.create_app under uvicorn on a free loopback port, with an emitter that
    fails (the Airflow side is exercised against the API server above)."""
    import uvicorn

    from flows import roles, shop_pushes

    for key, value in _env(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}").items():
        monkeypatch.setenv(key, value)
    store.engine_for.cache_clear()
    roles.reset()
    emitted: list[tuple[str, list[str]]] = []

    def emit(seat, tids):
        emitted.append((seat, list(tids)))
        raise RuntimeError("airflow metadata DB unreachable")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(shop_pushes.create_app(emit), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait_for(lambda: server.started, 10)
    yield f"http://127.0.0.1:{port}", emitted
    server.should_exit = True
    thread.join(10)
    store.engine_for.cache_clear()
    roles.reset()


def test_a_store_that_is_down_acknowledges_nothing_so_the_platform_retries(receiver, tmp_path, monkeypatch, caplog,
                                                                           capfd):
    url, emitted = receiver
    tid = "4987654321012300007"
    body, headers, _, _ = _signed("dd_shop", tid)
    good_store = os.environ["HUB_STORE_URL"]
    monkeypatch.setenv("HUB_STORE_URL", f"sqlite:///{tmp_path / 'no-such-dir' / 'hub.db'}")
    store.engine_for.cache_clear()
    caplog.set_level(logging.INFO, logger="flows.shop_pushes")
    r = requests.post(f"{url}/dd_shop", data=body, headers=headers, timeout=20)
    assert r.status_code >= 500 and r.json() != _answer("dd_shop", True)[1]
    logged = [_logged(caplog, capfd)]
    assert "not stored, not acknowledged" in logged[0]

    monkeypatch.setenv("HUB_STORE_URL", good_store)         # the store is back: the platform's retry
    store.engine_for.cache_clear()
    r = requests.post(f"{url}/dd_shop", data=body, headers=headers, timeout=20)
    assert (r.status_code, r.json()) == _answer("dd_shop", True)
    assert len(_rows(tid)) == 1
    # the asset event failed: logged, and the push still waits for the next run
    assert _wait_for(lambda: logged.append(_logged(caplog, capfd)) or "asset event for seat dd_shop failed"
                     in "".join(logged), 10)
    assert emitted == [("dd_shop", [tid])]
    with store.engine().begin() as c:
        assert pushes.pending(c, "dd_shop") == [tid]
    for secret in (YZ_SECRET, DD_SECRET):
        assert secret not in "".join(logged)
