"""Registry enrichment (天眼查 / 企查查) against the sandbox stand-in over real HTTP.

One sandbox for the module (seeded registry, CRM and U8 from the same companies); every test
gets its own empty hub store, and the registry's faults, quota and counters are reset around
it. The counters (``paid_by_key``) are how the tests prove a paid lookup is never repeated.
"""
from __future__ import annotations

import importlib.util
import logging
import sqlite3
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import select

from connectors.qichacha import QichachaConnector
from connectors.tianyancha import TianyanchaConnector
from flows import registry
from hub import model, store
from hub.errors import ConfigurationError
from hub.types import ConnectionInfo
from tests.conftest import ROOT, start_sandbox
from tests.flowkit import run_flow, step

PROVIDERS = ["tianyancha", "qichacha"]


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        box = start_sandbox(tmp_path_factory.mktemp("registry_sandbox"), 150, mp)
        try:
            yield box
        finally:
            box.stop()


@pytest.fixture(autouse=True)
def clean_registry(sb, hub, monkeypatch):
    """A fresh hub store (``hub``), the ``registry`` connection, and a registry without faults."""
    monkeypatch.setenv("AIRFLOW_CONN_REGISTRY", sb.connections()["AIRFLOW_CONN_REGISTRY"])
    sb.faults(0.0)
    sb.registry_quota(None, busy=0)
    sb.registry_stats(reset=True)
    yield
    sb.faults(0.0)
    sb.registry_quota(None, busy=0)


def info(sb, provider: str, **extra) -> ConnectionInfo:
    c = sb.registry_connection(provider)
    return ConnectionInfo(conn_id="registry", host=c["host"], login=c.get("login", ""), password=c["password"],
                          extra={**c["extra"], **extra}, conn_type=c["conn_type"])


def make(sb, provider: str, **extra):
    return registry.connector(info(sb, provider, **extra))


def customers(sb) -> pd.DataFrame:
    """Every CRM account and U8 customer as (hub_id, name, uscc), messy as they are."""
    con = sqlite3.connect(sb.crm_db)
    crm = pd.read_sql("select 'crm:' || id as hub_id, accountName as name, uscc__c as uscc from account", con)
    con.close()
    con = sqlite3.connect(sb.u8_db)
    u8 = pd.read_sql('select \'u8:\' || cCusCode as hub_id, cCusName as name, cCusRegCode as uscc from "Customer"', con)
    con.close()
    return pd.concat([crm, u8], ignore_index=True)


def paid(sb) -> dict[str, int]:
    return sb.registry_stats()["registry"]["paid_by_key"]


def truth(sb) -> dict:
    return sb.registry_truth()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_both_providers_parse_real_shaped_answers(sb, provider):
    t = truth(sb)
    renamed = next(c for c in t["companies"] if c["renamed"])
    reg = make(sb, provider)
    assert isinstance(reg, TianyanchaConnector if provider == "tianyancha" else QichachaConnector)
    by_code = reg.lookup(renamed["uscc"])
    by_old_name = reg.lookup(renamed["former_names"][0])     # what CRM and U8 still call it
    assert by_code == by_old_name
    assert by_code.legal_name == renamed["legal_name"] != renamed["former_names"][0]
    assert by_code.history_names == renamed["former_names"]
    assert by_code.uscc == renamed["uscc"] and by_code.source == provider
    assert by_code.established is not None and by_code.legal_representative
    assert by_code.registered_capital.endswith(("人民币", "美元")) and by_code.address
    assert by_code.raw["regStatus" if provider == "tianyancha" else "Status"]
    assert reg.lookup("查无此公司测试有限公司") is None
    decoy = t["decoys"][0]
    original = next(c for c in t["companies"] if c["company_id"] == decoy["decoy_of"])
    near = reg.lookup(decoy["name"])                           # one character away, another company
    assert near.legal_name == decoy["name"] and near.uscc == decoy["uscc"] != original["uscc"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_repeated_runs_make_no_repeated_paid_lookups(sb, provider):
    rows = customers(sb)
    rows = pd.concat([rows, rows.head(20).assign(hub_id=lambda d: d["hub_id"] + "-dup")], ignore_index=True)
    facts, first = registry.enrich(store.engine(), rows, make(sb, provider))
    assert len(facts) == len(rows) and first.called == first.keys and first.cached == 0
    assert first.found > 0.9 * first.keys and first.deferred == 0
    again, second = registry.enrich(store.engine(), rows, make(sb, provider))    # the next run: new connector
    assert second.called == 0 and second.cached == first.keys
    assert again["legal_name"].tolist() == facts["legal_name"].tolist()
    counter = paid(sb)
    assert len(counter) == first.keys and set(counter.values()) == {1}


def test_an_outage_defers_lookups_and_the_next_run_completes_them(sb):
    rows = customers(sb).head(60)
    sb.faults(1.0, ["500", "502"])
    facts, down = registry.enrich(store.engine(), rows, make(sb, "tianyancha"))
    assert down.deferred == down.keys and down.found == 0
    assert down.called <= registry.BREAKER + registry.DEFAULT_WORKERS      # it stopped calling a dead registry
    assert set(facts["lookup"]) == {"deferred"}
    with store.engine().begin() as conn:
        cached = conn.execute(select(model.registry_cache.c.status, model.registry_cache.c.reason)).all()
    assert len(cached) == down.keys and {s for s, _ in cached} == {"deferred"}   # nothing lost
    assert all("unavailable" in r for _, r in cached)
    sb.faults(0.0)
    facts, up = registry.enrich(store.engine(), rows, make(sb, "tianyancha"))
    assert up.deferred == 0 and up.called == up.keys and up.found + up.no_data == up.keys
    assert set(facts["lookup"]) <= {"ok", "no_data"}
    assert set(paid(sb).values()) == {1}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_exhausted_quota_defers_the_rest_and_nothing_is_lost(sb, provider):
    rows = customers(sb).head(40)
    sb.registry_quota(10)
    facts, short = registry.enrich(store.engine(), rows, make(sb, provider))
    assert short.found + short.no_data == 10 and short.deferred == short.keys - 10
    assert short.called <= 10 + registry.DEFAULT_WORKERS                   # stopped at the first quota answer
    reasons = facts.loc[facts["lookup"] == "deferred", "reason"]
    assert reasons.str.contains("quota").all()
    sb.registry_quota(None, busy=2)                                         # topped up; briefly "too fast"
    _, next_run = registry.enrich(store.engine(), rows, make(sb, provider))
    assert next_run.deferred == 2 and next_run.called == short.keys - 10
    facts, last = registry.enrich(store.engine(), rows, make(sb, provider))
    assert last.deferred == 0 and last.called == 2 and last.found + last.no_data == last.keys
    counter = paid(sb)
    assert len(counter) == last.keys and set(counter.values()) == {1}


def test_ttl_expiry_triggers_a_refresh(sb, monkeypatch):
    monkeypatch.setenv("HUB_REGISTRY_TTL_DAYS", "7")
    rows = customers(sb).head(15)
    t0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
    _, first = registry.enrich(store.engine(), rows, make(sb, "qichacha"), now=t0)
    _, within = registry.enrich(store.engine(), rows, make(sb, "qichacha"), now=t0 + timedelta(days=6))
    _, after = registry.enrich(store.engine(), rows, make(sb, "qichacha"), now=t0 + timedelta(days=7, seconds=1))
    assert first.called == first.keys and within.called == 0 and after.called == first.keys
    assert set(paid(sb).values()) == {2}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_deregistered_and_revoked_companies_are_inactive_with_their_status_text(sb, provider):
    t = truth(sb)
    pick = {s: next(c for c in t["companies"] if c["status"] == s) for s in ("注销", "吊销，未注销", "存续")}
    rows = pd.DataFrame([{"hub_id": s, "name": None, "uscc": c["uscc"]} for s, c in pick.items()])
    facts, _ = registry.enrich(store.engine(), rows, make(sb, provider))
    got = facts.set_index("hub_id")
    assert got.loc["注销", "registry_status"] == "注销" and got.loc["吊销，未注销", "registry_status"] == "吊销"
    assert got.loc["存续", "registry_status"] == "存续" and got.loc["存续", "active"] == True  # noqa: E712
    for status in ("注销", "吊销，未注销"):
        assert got.loc[status, "active"] == False  # noqa: E712
        assert got.loc[status, "registry_status"] in got.loc[status, "hold_reason"]
        assert "ERP" in got.loc[status, "hold_reason"]
    assert got.loc["存续", "hold_reason"] is None


def test_the_connectors_never_log_the_token_or_the_secret(sb, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    reg = sb.credentials()["registry"]
    secrets = [reg["tianyancha_token"], reg["qichacha_secret"]]
    everything = customers(sb)
    rows = everything.head(30)
    sb.faults(0.5, ["429", "500", "502", "malformed"], seed=3)   # retries log warnings with the URL
    for provider in PROVIDERS:
        registry.enrich(store.engine(), rows, make(sb, provider, max_attempts=2, backoff=0.05))
    sb.faults(0.0)
    errors = []
    for provider in PROVIDERS:
        bad = info(sb, provider)
        bad = ConnectionInfo(conn_id="registry", host=bad.host, login=bad.login, password=bad.password[::-1],
                             extra=bad.extra)
        with pytest.raises(ConfigurationError) as exc:
            registry.enrich(store.engine(), everything.iloc[100:103], registry.connector(bad))
        errors.append(str(exc.value))
        secrets.append(bad.password)
    with store.engine().begin() as conn:
        reasons = [r[0] or "" for r in conn.execute(select(model.registry_cache.c.reason))]
    out, err = capfd.readouterr()
    logged = "\n".join([out, err, caplog.text, *errors, *reasons])
    assert "retrying" in logged and "check the" in logged
    for secret in secrets:
        assert secret not in logged
    # the 企查查 key is an identifier that travels in the URL (urllib3's DEBUG lines show it),
    # but the hub's own logs and errors leave it out too
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("urllib3")]
    assert reg["qichacha_key"] not in "\n".join([*ours, *errors, *reasons])


def test_registry_refresh_stores_facts_as_registry_source_records(sb):
    t = truth(sb)
    renamed = next(c for c in t["companies"] if c["renamed"])
    golden = [{"hub_id": f"h{i}", "name": c["legal_name"], "uscc": c["uscc"]} for i, c in enumerate(t["companies"][:12])]
    golden.append({"hub_id": "h-renamed", "name": renamed["former_names"][0], "uscc": None})
    with store.engine().begin() as conn:
        conn.execute(model.customer.insert(), golden)
    first = run_flow("registry_refresh", "refresh-1")
    with store.engine().begin() as conn:
        src = {r.native_key: r for r in conn.execute(select(model.customer_source).where(
            model.customer_source.c.system == "registry"))}
    assert len(src) == len(golden) and src["h-renamed"].hub_id == "h-renamed"
    assert src["h-renamed"].name == renamed["legal_name"] and src["h-renamed"].uscc == renamed["uscc"]
    assert all(r.registry_status and r.legal_representative and r.registered_capital for r in src.values())
    assert step(first, "extract")["written"] == len(golden) and step(first, "load")["written"] == len(golden)
    second = run_flow("registry_refresh", "refresh-2")                   # nothing expired: no call, no write
    assert step(second, "extract")["written"] == 0 and step(second, "extract")["skipped"] == len(golden)
    assert step(second, "load")["written"] == 0 and step(second, "load")["skipped"] == len(golden)
    assert set(paid(sb).values()) == {1}


def test_the_dag_runs_registry_lookups_in_the_registry_api_pool():
    path = ROOT / "dags" / "registry_refresh.py"
    assert "airflow" in path.read_text(encoding="utf-8").lower()
    spec = importlib.util.spec_from_file_location("registry_refresh_dag", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    assert [t.task_id for t in dag.tasks] == ["extract", "map", "validate", "resolve", "load", "publish", "write_back"]
    pools = {t.task_id: t.pool for t in dag.tasks}
    assert pools.pop("extract") == "registry_api" and set(pools.values()) == {"default_pool"}
