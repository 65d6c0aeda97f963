"""Alerts through Airflow's own callbacks: a failing run of the real DAG sends one mail to a
local SMTP sink and one signed 钉钉 robot call to a local webhook sink, each naming the flow,
the failure and the console link, and carrying no secret. A too-high reject rate says so;
a stale flow is announced once by the watchdog."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select

from hub import model, store
from tests.sinks import SmtpSink, WebhookSink
from tests.test_dag import _dag, _secrets

SMTP_PASSWORD = "Smtp-Pa55word-never-in-a-message"
DINGTALK_TOKEN = "dt-access-token-never-in-a-message"
DINGTALK_SECRET = "SEC-dingtalk-signing-secret-never-in-a-message"
WECOM_KEY = "wecom-robot-key-never-in-a-message"
CONSOLE = "http://console.example.test/hub"


@pytest.fixture
def sinks(monkeypatch):
    """The SMTP and webhook sinks, wired up as the hub's alert connections."""
    smtp, hook = SmtpSink(), WebhookSink()
    monkeypatch.setenv("AIRFLOW_CONN_HUB_ALERT_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port, "login": "hub-alerts",
        "password": SMTP_PASSWORD, "extra": {"to": "it-ops@example.test", "from_email": "hub@example.test",
                                             "disable_ssl": True, "disable_tls": True}}))
    monkeypatch.setenv("AIRFLOW_CONN_HUB_ALERT_DINGTALK", json.dumps({
        "conn_type": "http", "host": "http://127.0.0.1", "port": hook.port, "password": DINGTALK_TOKEN,
        "extra": {"secret": DINGTALK_SECRET}}))
    monkeypatch.delenv("AIRFLOW_CONN_HUB_ALERT_WECOM", raising=False)
    monkeypatch.setenv("HUB_CONSOLE_URL", CONSOLE)
    yield smtp, hook
    smtp.close()
    hook.close()


def _channel_secrets() -> list[str]:
    return [SMTP_PASSWORD, DINGTALK_TOKEN, DINGTALK_SECRET, WECOM_KEY]


def _assert_signed(call) -> None:
    """The robot call carries 钉钉's 加签: HMAC-SHA256 of "timestamp\\nsecret", base64."""
    assert call.path == "/robot/send"
    assert call.query["access_token"] == DINGTALK_TOKEN
    ts = int(call.query["timestamp"])
    assert abs(time.time() * 1000 - ts) < 120_000
    expected = base64.b64encode(hmac.new(DINGTALK_SECRET.encode(), f"{ts}\n{DINGTALK_SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert call.query["sign"] == expected


def test_a_failed_run_alerts_once_by_mail_and_signed_dingtalk_without_secrets(sandbox, sinks, monkeypatch):
    smtp, hook = sinks
    conn = json.loads(sandbox.connections()["AIRFLOW_CONN_CRM_XIAOSHOUYI"])
    conn["password"] = "Wr0ngPassw0rd-do-not-alert"
    monkeypatch.setenv("AIRFLOW_CONN_CRM_XIAOSHOUYI", json.dumps(conn))

    dag = _dag()
    run = dag.test()
    assert str(run.state) == "failed"

    assert len(smtp.mails) == 1, [m.text for m in smtp.mails]
    assert len(hook.calls) == 1, [c.body for c in hook.calls]
    mail, call = smtp.mails[0], hook.calls[0]
    link = f"{CONSOLE}/run?id={quote(run.run_id, safe='')}"
    robot = call.body["markdown"]
    assert call.body["msgtype"] == "markdown" and robot["title"].startswith("[hub] customer_master")
    for text in (mail.text, robot["title"] + "\n" + robot["text"]):
        assert "customer_master" in text
        assert "extract" in text and "configuration" in text and "login refused" in text
        assert link in text
    assert mail.recipients == ["it-ops@example.test"]
    _assert_signed(call)

    secrets = [*_secrets(sandbox), *_channel_secrets(), "Wr0ngPassw0rd-do-not-alert"]
    for text in (mail.data.decode("utf-8", "replace"), mail.text, call.raw.decode("utf-8"), json.dumps(call.body, ensure_ascii=False)):
        for secret in secrets:
            assert secret not in text

    with store.engine().begin() as c:
        logged = c.execute(select(model.alert_log)).all()
        run_row = c.execute(select(model.sync_run)).first()
    assert [(r.kind, r.channels) for r in logged] == [("failed", "email,dingtalk")]
    assert run_row.error_class == "configuration" and "login refused" in run_row.error_text

    # the same run's failure is not announced twice (a re-run callback, a second notifier)
    from flows.alerts import HubAlertNotifier

    HubAlertNotifier()({"dag": dag, "run_id": run.run_id})
    assert len(smtp.mails) == 1 and len(hook.calls) == 1


def test_a_reject_rate_over_the_threshold_says_so_on_wecom(sandbox, monkeypatch):
    hook = WebhookSink()
    try:
        for var in ("AIRFLOW_CONN_HUB_ALERT_SMTP", "AIRFLOW_CONN_HUB_ALERT_DINGTALK"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AIRFLOW_CONN_HUB_ALERT_WECOM", json.dumps({
            "conn_type": "http", "host": "http://127.0.0.1", "port": hook.port, "password": WECOM_KEY}))
        monkeypatch.setenv("HUB_CONSOLE_URL", CONSOLE)
        monkeypatch.setenv("HUB_REJECT_THRESHOLD_CUSTOMER_MASTER", "0.01")
        run = _dag().test()
        assert str(run.state) == "failed"
        assert len(hook.calls) == 1
        call = hook.calls[0]
        assert call.path == "/cgi-bin/webhook/send" and call.query == {"key": WECOM_KEY}
        content = call.body["markdown"]["content"]
        assert "customer_master" in content and "reject rate over the threshold" in content
        assert "validate" in content and "data failure" in content and "failed validation" in content
        assert f"{CONSOLE}/run?id={quote(run.run_id, safe='')}" in content
        for secret in [*_secrets(sandbox), WECOM_KEY]:
            assert secret not in call.raw.decode("utf-8")
    finally:
        hook.close()


def test_the_watchdog_announces_a_stale_flow_once(hub, sinks, monkeypatch):
    from flows import watchdog

    smtp, hook = sinks
    long_ago = store.utcnow() - timedelta(hours=3)
    with store.engine().begin() as c:
        c.execute(model.sync_run.insert().values(run_id="old-run", flow="customer_master", status="success",
                                                 started_at=long_ago, finished_at=long_ago))
    assert watchdog.check() == {"customer_master": ["email", "dingtalk"]}
    assert len(smtp.mails) == 1 and len(hook.calls) == 1
    text = smtp.mails[0].text
    assert "customer_master" in text and "stale" in text and "expected every 60 min" in text
    assert f"{CONSOLE}/#flow-customer_master" in text
    _assert_signed(hook.calls[0])

    assert watchdog.check() == {"customer_master": []}           # still stale: not again at once
    monkeypatch.setenv("HUB_STALE_REALERT_MINUTES", "0")
    assert watchdog.check() == {"customer_master": ["email", "dingtalk"]}  # after the quiet period
    monkeypatch.setenv("HUB_STALE_AFTER_CUSTOMER_MASTER_MINUTES", "600")
    assert watchdog.check() == {}                                  # a longer interval: not stale


def test_the_watchdog_dag_runs_every_15_minutes():
    import importlib.util

    from tests.test_dag import ROOT

    spec = importlib.util.spec_from_file_location("hub_watchdog_dag", ROOT / "dags" / "hub_watchdog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.dag.dag_id == "hub_watchdog" and [t.task_id for t in module.dag.tasks] == ["check_staleness"]
    assert module.dag.schedule == timedelta(minutes=15) or str(module.dag.timetable.summary) in ("0:15:00", "15m")


# -- what the robots answer (钉钉 130101 / 310000, 企业微信 40058) and https by default -------------

def _alert(i: int, **kw):
    from flows.alerts import Alert

    fields = {"flow": "customer_master", "kind": "failed", "headline": f"customer_master: run r{i} failed at extract",
              "facts": [("run", f"r{i}")], "link": f"{CONSOLE}/run?id=r{i}", "dedup_key": f"failed:r{i}",
              "run_id": f"r{i}", **kw}
    return Alert(**fields)


def _only_robot(monkeypatch, name: str, port: int, **extra) -> None:
    for var in ("AIRFLOW_CONN_HUB_ALERT_SMTP", "AIRFLOW_CONN_HUB_ALERT_DINGTALK", "AIRFLOW_CONN_HUB_ALERT_WECOM"):
        monkeypatch.delenv(var, raising=False)
    password = DINGTALK_TOKEN if name == "DINGTALK" else WECOM_KEY
    monkeypatch.setenv(f"AIRFLOW_CONN_HUB_ALERT_{name}", json.dumps({
        "conn_type": "http", "host": "http://127.0.0.1", "port": port, "password": password, "extra": extra}))
    monkeypatch.setenv("HUB_CONSOLE_URL", CONSOLE)


def _logged() -> list:
    with store.engine().begin() as c:
        return c.execute(select(model.alert_log).order_by(model.alert_log.c.id)).all()


def test_dingtalk_over_20_a_minute_backs_off_and_sends_the_held_alerts_merged(hub, monkeypatch):
    """钉钉 takes 20 messages a minute and answers 130101 to the 21st: that alert and the ones
    after it wait out the back-off without calling the robot, then go in one merged message."""
    from flows import alerts

    hook = WebhookSink(limit=20, window=1.5, secret=DINGTALK_SECRET)
    try:
        _only_robot(monkeypatch, "DINGTALK", hook.port, secret=DINGTALK_SECRET, throttle_seconds=1)
        took = [alerts.send(_alert(i)) for i in range(25)]
        assert took == [["dingtalk"]] * 20 + [[]] * 5
        assert len(hook.delivered) == 20 and [c.answer["errcode"] for c in hook.calls[20:]] == [130101]  # backed off
        held = _logged()[20:]
        assert all("dingtalk: held back" in r.errors and not r.channels for r in held)
        assert alerts.send(_alert(3)) == []                       # a held alert counts as sent: not twice
        time.sleep(1.6)                                           # the minute (here 1.5 s) and the back-off pass
        assert alerts.flush_held() == ["dingtalk"]                # what the watchdog does every 15 minutes
        assert len(hook.delivered) == 21
        assert hook.delivered[20].body["markdown"]["title"] == "[hub] alerts held back while a robot throttled"
        merged = hook.delivered[20].body["markdown"]["text"]
        assert all(f"run r{i} failed" in merged for i in range(20, 25)) and f"{CONSOLE}/run?id=r24" in merged
        assert all("dingtalk" in r.channels.split(",") for r in _logged() if r.run_id)  # none lost
        assert alerts.flush_held() == []                          # and nothing sent twice
    finally:
        hook.close()


def test_dingtalk_310000_says_check_the_clock_or_the_secret(hub, monkeypatch):
    from flows import alerts

    hook = WebhookSink(secret="SEC-the-secret-the-robot-really-has")
    try:
        _only_robot(monkeypatch, "DINGTALK", hook.port, secret=DINGTALK_SECRET)
        assert alerts.send(_alert(1)) == []
        assert hook.calls[0].answer["errcode"] == 310000 and not hook.delivered
        errors = _logged()[0].errors
        assert "310000" in errors and "check the clock or the secret" in errors and "held back" not in errors
        assert DINGTALK_SECRET not in errors and DINGTALK_TOKEN not in errors
    finally:
        hook.close()


def test_wecom_markdown_is_cut_to_4096_bytes_with_the_console_link(hub, monkeypatch):
    from flows import alerts

    hook = WebhookSink()
    try:
        _only_robot(monkeypatch, "WECOM", hook.port)
        long = _alert(7, facts=[("error", "上海某某机械设备有限公司的统一社会信用代码无效；" * 300)])
        assert alerts.send(long) == ["wecom"]
        content = hook.delivered[0].body["markdown"]["content"]
        size = len(content.encode("utf-8"))
        assert 4096 - 3 < size <= 4096 and "\ufffd" not in content     # full, and no character split
        assert content.endswith(f"[the whole alert in the console]({CONSOLE}/run?id=r7)")
        assert content.startswith("**[hub] customer_master: run r7 failed at extract**")
    finally:
        hook.close()


def test_every_connection_defaults_to_https():
    from connectors.qichacha import QichachaConnector
    from connectors.tianyancha import TianyanchaConnector
    from connectors.alert_channels import DingTalkChannel, WeComChannel
    from hub.types import ConnectionInfo

    tianyancha = TianyanchaConnector(ConnectionInfo("registry", password="t"))
    assert tianyancha.http.base_url == "https://open.api.tianyancha.com"
    assert QichachaConnector(ConnectionInfo("registry", login="k", password="s")).http.base_url.startswith("https://")
    assert DingTalkChannel(ConnectionInfo("d", password="t")).url().startswith("https://oapi.dingtalk.com/")
    assert WeComChannel(ConnectionInfo("w", password="k")).url().startswith("https://qyapi.weixin.qq.com/")
    assert ConnectionInfo("x", host="api.yonyouup.com").base_url() == "https://api.yonyouup.com"
