"""The customer master flow end to end against the sandbox over real HTTP and real ODBC."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from hub import model, store
from quality import uscc
from tests.flowkit import CrmClient, crm_accounts, query, run_flow, step, u8_customers

ALLOWED = {"created in U8", "updated in U8", "linked to existing U8 customer", "skipped", "quarantined",
           "held back from U8"}


def test_first_run_accounts_for_every_record_and_fills_both_systems(sandbox):
    before = u8_customers(sandbox)
    rep = run_flow("customer_master", "run-1")
    crm, u8 = rep["systems"]["crm"], rep["systems"]["u8"]
    assert crm["adds_up"] and u8["adds_up"]
    assert crm["in"] == len(crm_accounts(sandbox))
    assert u8["in"] == len(before)
    assert set(crm["outcomes"]) <= ALLOWED, crm["outcomes"]
    assert crm["outcomes"].get("created in U8", 0) > 0 and crm["outcomes"].get("quarantined", 0) > 0
    after = u8_customers(sandbox)
    accounts = crm_accounts(sandbox)
    coded = {k: a for k, a in accounts.items() if a.get("erpCode__c")}
    assert len(coded) == crm["written"]
    with store.engine().begin() as conn:
        held = {r[0] for r in conn.execute(select(model.outbox.c.hub_id).where(model.outbox.c.status == "held"))}
        hub_of = dict(conn.execute(select(model.xref.c.native_key, model.xref.c.hub_id).where(
            model.xref.c.system == "crm", model.xref.c.entity == "customer")).all())
    for key, acc in coded.items():
        cust = after[acc["erpCode__c"]]                 # the code names a real U8 customer
        if hub_of.get(key) in held:                     # a closed company: U8 is left as it was
            continue
        if acc.get("uscc__c") and uscc.is_valid(str(acc["uscc__c"]).replace(" ", "").upper()):
            assert cust["cCusRegCode"] == str(acc["uscc__c"]).replace(" ", "").upper()
    created_codes = set(after) - set(before)
    assert created_codes and created_codes <= {a["erpCode__c"] for a in coded.values()}  # no orphan creates
    assert all(after[c]["cCusRegCode"] is None or uscc.is_valid(after[c]["cCusRegCode"]) for c in created_codes)


def test_second_run_without_changes_writes_nothing_and_does_not_echo(sandbox):
    run_flow("customer_master", "run-1")
    u8_before, crm_before = u8_customers(sandbox), crm_accounts(sandbox)
    rep = run_flow("customer_master", "run-2")
    assert step(rep, "load")["written"] == 0
    assert step(rep, "publish")["written"] == 0
    assert step(rep, "write_back")["written"] == 0
    assert u8_customers(sandbox) == u8_before
    assert {k: a["updatedAt"] for k, a in crm_accounts(sandbox).items()} == {
        k: a["updatedAt"] for k, a in crm_before.items()}
    assert rep["systems"]["crm"]["adds_up"]


def test_a_change_to_one_crm_account_is_picked_up_and_only_that_one(sandbox):
    run_flow("customer_master", "run-1")
    accounts = crm_accounts(sandbox)
    target = next(a for a in accounts.values() if a.get("erpCode__c"))
    CrmClient(sandbox).patch("account", str(target["id"]), {"phone": "021-64880000"})
    rep = run_flow("customer_master", "run-2")
    assert step(rep, "load")["written"] == 1
    assert step(rep, "write_back")["written"] == 1
    assert u8_customers(sandbox)[target["erpCode__c"]]["cCusPhone"] == "021-64880000"
    assert step(run_flow("customer_master", "run-3"), "write_back")["written"] == 0


def _final_state(sb):
    u8 = sorted((c["cCusName"], c["cCusRegCode"] or "") for c in u8_customers(sb).values())
    crm = sorted((str(k), bool(a.get("erpCode__c"))) for k, a in crm_accounts(sb).items())
    return u8, crm


def test_twenty_percent_transient_faults_end_with_the_same_result(hub, monkeypatch, tmp_path):
    from tests.conftest import start_sandbox

    clean = start_sandbox(tmp_path / "clean", 150, monkeypatch)
    try:
        run_flow("customer_master", "clean-1")
        expected = _final_state(clean)
    finally:
        clean.stop()
    store.engine_for.cache_clear()
    monkeypatch.setenv("HUB_STORE_URL", f"sqlite:///{tmp_path / 'faulty.db'}")
    faulty = start_sandbox(tmp_path / "faulty", 150, monkeypatch)
    try:
        # the flow's own systems; a registry outage defers enrichment by design (tests/test_registry.py)
        faulty.faults(0.2, ["429", "500", "502", "expire_token", "malformed"], systems=("crm", "u8"))
        rep = run_flow("customer_master", "faulty-1")
        assert rep["systems"]["crm"]["adds_up"]
        faulty.faults(0.0)
        assert _final_state(faulty) == expected
        stats = faulty.stats()
        assert stats  # faults were really served
    finally:
        faulty.stop()


def _u8_count(sb) -> int:
    return query(sb.u8_db, "select count(*) from Customer")[0][0]


def _step_process(run_id: str, step_name: str, extra_env: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, **extra_env}
    return subprocess.Popen([sys.executable, "-m", "flows", "run", "customer_master", "--run-id", run_id,
                             "--step", step_name], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_write_back_killed_mid_way_and_run_again_writes_nothing_twice(sandbox):
    import importlib

    from tests.flowkit import run_flow as _  # noqa: F401

    functions = importlib.import_module("flows.customer_master").STEP_FUNCTIONS
    from hub import runner

    for name in ("extract", "map", "validate", "resolve", "load", "publish"):
        runner.run_step("customer_master", name, "kill-1", functions[name])
    start = _u8_count(sandbox)
    seeded = set(u8_customers(sandbox))
    proc = _step_process("kill-1", "write_back", {"HUB_WRITE_CHUNK": "3"})
    deadline = time.time() + 60
    while _u8_count(sandbox) < start + 6 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "write_back finished before it could be killed; seed more accounts"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    mid = _u8_count(sandbox)
    assert start < mid
    runner.run_step("customer_master", "write_back", "kill-1", functions["write_back"])
    after = u8_customers(sandbox)
    names = [c["cCusName"] for code, c in after.items() if code not in seeded]
    assert len(names) == len(set(names)), "a customer was created twice in U8"
    # the same end state as a run never killed: every pending golden record is in U8 once
    with store.engine().begin() as conn:
        pending = conn.execute(select(func.count()).select_from(model.outbox).where(
            model.outbox.c.status == "pending", model.outbox.c.target == "u8")).scalar()
    assert pending == 0
    rep = run_flow("customer_master", "kill-2")
    assert step(rep, "write_back")["written"] == 0


def test_load_killed_mid_way_and_run_again_ends_like_an_unkilled_run(sandbox):
    import importlib

    from hub import runner

    functions = importlib.import_module("flows.customer_master").STEP_FUNCTIONS
    for name in ("extract", "map", "validate", "resolve"):
        runner.run_step("customer_master", name, "kl-1", functions[name])
    seeded = set(u8_customers(sandbox))
    proc = _step_process("kl-1", "load", {})
    time.sleep(1.5)  # python start + imports; the load transaction is under way or done
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for name in ("load", "publish", "write_back"):
        runner.run_step("customer_master", name, "kl-1", functions[name])
    runner.finish_run("kl-1", "success")
    names = [c["cCusName"] for code, c in u8_customers(sandbox).items() if code not in seeded]
    assert len(names) == len(set(names))
    with store.engine().begin() as conn:
        golden = conn.execute(select(func.count()).select_from(model.customer)).scalar()
        sources = conn.execute(select(func.count()).select_from(model.customer_source)).scalar()
    assert golden > 0 and sources >= golden
    rep = run_flow("customer_master", "kl-2")
    assert step(rep, "write_back")["written"] == 0


def _extract_entries(status: str | None = None) -> list[dict]:
    from hub import quarantine as q

    with store.engine().begin() as conn:
        return [e for e in q.listing(conn, "customer_master", status=status, limit=10_000) if e["stage"] == "extract"]


def test_a_crm_that_sends_only_broken_pages_fails_the_run_and_its_entries_resolve_later(sandbox):
    from hub import report, runner
    from hub.errors import TransientError

    u8_before = u8_customers(sandbox)
    sandbox.faults(1.0, ["malformed"], systems=("crm",))
    with pytest.raises(TransientError, match="unreadable"):
        run_flow("customer_master", "broken-1", retries=1)
    runner.finish_run("broken-1", "failed")
    rep = report.build("broken-1")
    assert step(rep, "extract")["status"] == "failed" and step(rep, "extract")["error_class"] == "transient"
    assert [s["step"] for s in rep["steps"]] == ["extract"]          # nothing went on with an unread source
    crm = rep["systems"]["crm"]
    assert crm["in"] == 0 and crm["broken_pages"] >= 1
    assert "crm: in 0 = written 0 + skipped 0 + quarantined 0" in report.render(rep)
    broken = _extract_entries("open")
    assert broken and all(e["record_key"].startswith("account@") for e in broken)
    assert "not valid JSON" in broken[0]["reasons"][0]
    assert u8_customers(sandbox) == u8_before

    sandbox.faults(0.0)
    rep = run_flow("customer_master", "broken-2")
    assert rep["systems"]["crm"]["in"] == len(crm_accounts(sandbox)) and rep["systems"]["crm"]["adds_up"]
    assert not _extract_entries("open")
    assert {e["id"] for e in _extract_entries("resolved")} == {e["id"] for e in broken}
    assert "broken-2" in _extract_entries("resolved")[0]["comment"]


class _FailsAfterFirstPage:
    """The real CRM connector, with the sandbox cutting every answer after its first page:
    a CRM that breaks in the middle of a read."""

    system = "crm"

    def __init__(self, inner, sb) -> None:
        self.inner, self.sb = inner, sb

    def check(self) -> None:
        self.inner.check()

    def read(self, stream, cursor=None):
        for n, page in enumerate(self.inner.read(stream, cursor)):
            yield page
            if n == 0:
                self.sb.faults(1.0, ["malformed"], systems=("crm",))

    def write(self, stream, records):
        return self.inner.write(stream, records)


def test_a_page_broken_after_good_ones_is_quarantined_and_the_next_run_reads_on_from_there(sandbox, monkeypatch):
    from flows.customer_master import crm
    from flows.steps import read_stream
    from hub import runner, watermarks

    conn_env = json.loads(os.environ["AIRFLOW_CONN_CRM_XIAOSHOUYI"])
    conn_env["extra"]["page_size"] = 50  # 150 accounts: three pages
    monkeypatch.setenv("AIRFLOW_CONN_CRM_XIAOSHOUYI", json.dumps(conn_env))

    def extract(run_id: str, connector) -> list[str]:
        runner.run_step("customer_master", "extract", run_id,
                        lambda ctx: read_stream(ctx, connector, "crm", "account", "customer"))
        with store.engine().begin() as conn:
            staged = store.stage_read(conn, run_id, "extract", "crm")
            watermarks.commit_pending(conn, run_id, "customer_master")  # what the run's last step does
        return staged["id"].astype(str).tolist() if len(staged) else []

    first = extract("part-1", _FailsAfterFirstPage(crm(), sandbox))
    assert 0 < len(first) < len(crm_accounts(sandbox))  # the run went on with the good page
    broken = _extract_entries("open")
    assert len(broken) == 1 and broken[0]["record_key"].startswith("account@")
    sandbox.faults(0.0)
    second = extract("part-2", crm())
    assert set(first) | set(second) == set(crm_accounts(sandbox))   # nothing behind the broken page was lost
    assert not _extract_entries("open") and len(_extract_entries("resolved")) == 1


def test_companies_the_registry_reports_closed_are_held_back_from_u8_with_a_reason(sandbox):
    import json

    from hub import quarantine as q

    rep = run_flow("customer_master", "reg-1")
    registry = json.loads((sandbox.folder / "registry_truth.json").read_text(encoding="utf-8"))
    closed = {c["company_id"]: c["status"] for c in registry["companies"] if not c["active"]}
    truth = json.loads((sandbox.folder / "truth.json").read_text(encoding="utf-8"))
    company_of = {r["crm_id"]: r["company_id"] for r in truth["crm"]}
    with store.engine().begin() as conn:
        x = dict(conn.execute(select(model.xref.c.native_key, model.xref.c.hub_id).where(
            model.xref.c.entity == "customer", model.xref.c.system == "crm")).all())
        held = {e["record_key"]: e for e in q.listing(conn, "customer_master", limit=10_000) if e["system"] == "registry"}
    seeded_codes = {r["u8_code"] for r in truth["u8"]}
    accounts = crm_accounts(sandbox)
    closed_accounts = [k for k in accounts if company_of.get(k) in closed and k in x]
    assert closed_accounts, "the seed has companies the registry reports closed"
    for key in closed_accounts:
        code = accounts[key].get("erpCode__c")
        assert not code or code in seeded_codes, f"{key} was created in U8 although the registry says {closed[company_of[key]]}"
        reason = " ".join(held[x[key]]["reasons"])
        assert "暂不同步到 ERP" in reason and any(word in reason for word in ("注销", "吊销", "迁出", "停业"))
    assert rep["systems"]["crm"]["outcomes"]["held back from U8"] >= 1


def test_a_contact_entered_twice_at_one_customer_becomes_one_person(sandbox):
    """The seed types some contacts twice at the same account (a stray space in the name, same
    mobile); each pair ends as one contact hub id, and distinct people stay apart."""
    truth = json.loads((sandbox.folder / "truth.json").read_text(encoding="utf-8"))["contact_duplicates"]
    assert truth
    run_flow("customer_master", "run-contacts")
    c = model.contact_source.c
    with store.engine().begin() as conn:
        src = conn.execute(select(c.native_key, c.hub_id, c.customer_hub_id, c.name, c.mobile)).all()
    hub_of = {r.native_key: r.hub_id for r in src}
    pairs = [(t["contact_id"], t["duplicate_of"]) for t in truth
             if t["contact_id"] in hub_of and t["duplicate_of"] in hub_of]
    assert pairs, "the seeded duplicate contacts reached the hub"
    assert all(hub_of[a] == hub_of[b] for a, b in pairs)
    # a merged person is one customer's contacts sharing a mobile or a name (spaces aside);
    # two different people at one customer, or one name at two customers, stay apart
    groups: dict[str, list] = {}
    for r in src:
        groups.setdefault(r.hub_id, []).append(r)
    merged = [g for g in groups.values() if len(g) > 1]
    assert len(merged) >= len(pairs)
    for g in merged:
        assert len({r.customer_hub_id for r in g}) == 1, g
        names = {"".join((r.name or "").split()) for r in g}
        mobiles = {r.mobile for r in g if r.mobile}
        assert len(names) == 1 or len(mobiles) == 1, g
