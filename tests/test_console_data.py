"""What the console, the metrics and the alerts read, on a small hand-made store: staleness,
the Prometheus text, quarantine filters (Chinese reasons too), the audit trail, the trace."""
from __future__ import annotations

from datetime import timedelta

from hub import audit, health, metrics, model, quarantine, runs, store, trace


def _run(conn, run_id: str, status: str, ago: timedelta, **steps: dict) -> None:
    end = store.utcnow() - ago
    conn.execute(model.sync_run.insert().values(run_id=run_id, flow="customer_master", status=status,
                                                started_at=end - timedelta(seconds=30), finished_at=end,
                                                error_class="data" if status == "failed" else None))
    for step, counts in steps.items():
        conn.execute(model.sync_step.insert().values(run_id=run_id, step=step, flow="customer_master",
                                                     status=counts.pop("status", "success"), seconds=1.5,
                                                     started_at=end - timedelta(seconds=20), finished_at=end, **counts))


def test_staleness_follows_the_last_success_and_the_configured_interval(hub, monkeypatch):
    with store.engine().begin() as c:
        assert [(h.flow, h.stale, h.last_run) for h in health.all_flows(c)] == [("customer_master", True, None)]
        assert "no successful run yet" in health.flow_health(c, "customer_master").stale_reason
        _run(c, "r1", "success", timedelta(minutes=90), extract={"read": 10})
        _run(c, "r2", "failed", timedelta(minutes=5), validate={"read": 10, "rejected": 9, "status": "failed"})
        h = health.flow_health(c, "customer_master")
        assert h.stale and h.last_run["run_id"] == "r2" and "expected every 60 min" in h.stale_reason
        monkeypatch.setenv("HUB_STALE_AFTER_CUSTOMER_MASTER_MINUTES", "120")
        assert not health.flow_health(c, "customer_master").stale
        monkeypatch.setenv("HUB_FLOWS", "order_sync")
        assert [f.flow for f in health.all_flows(c)] == ["customer_master", "order_sync"]


def test_metrics_are_valid_prometheus_text(hub):
    with store.engine().begin() as c:
        _run(c, "r1", "success", timedelta(minutes=5), extract={"read": 12}, write_back={"written": 7})
        quarantine.add(c, run_id="r1", flow="customer_master", entity="customer", system="crm", stage="map",
                       items=[("k1", {"id": "k1"}, ['name "quoted"\nand new line'])])
        text = metrics.render(c)
    lines = text.splitlines()
    assert text.endswith("\n")
    assert 'hub_flow_last_run_status{flow="customer_master",status="success"} 1' in lines
    assert 'hub_step_records{flow="customer_master",step="extract",count="read"} 12' in lines
    assert 'hub_step_records{flow="customer_master",step="write_back",count="written"} 7' in lines
    assert 'hub_quarantine_records{flow="customer_master",system="crm",stage="map",status="open"} 1' in lines
    assert 'hub_flow_stale{flow="customer_master"} 0' in lines
    for line in lines:  # every sample is `name{labels} number`
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])
    assert sum(1 for x in lines if x == "# TYPE hub_step_records gauge") == 1


def test_quarantine_filters_actions_and_their_audit(hub):
    with store.engine().begin() as c:
        quarantine.add(c, run_id="r1", flow="customer_master", entity="customer", system="crm", stage="validate",
                       items=[("3461001", {"id": "3461001"}, ["uscc_check_character: 统一社会信用代码校验位错误"]),
                              ("3461002", {"id": "3461002"}, ["phone_format: 电话格式错误"]),
                              ("3461003", {"id": "3461003"}, ["phone_format: 电话格式错误"])])
        rows, total = quarantine.find(c, text="统一社会信用代码")
        assert total == 1 and rows[0]["record_key"] == "3461001"
        rows, total = quarantine.find(c, text="phone_format", system="crm", stage="validate")
        assert total == 2
        assert quarantine.find(c, text="3461002")[1] == 1
        ids = {r["record_key"]: r["id"] for r in quarantine.find(c, status=None)[0]}
        assert quarantine.request_replay(c, [ids["3461001"], ids["3461002"]], "fixed the rule", actor="ops") == 2
        assert quarantine.ignore(c, [ids["3461002"], ids["3461003"]], "test accounts", actor="ops") == 2
        assert quarantine.request_replay(c, [ids["3461003"]], actor="ops") == 0  # ignored: nothing to replay
        history = audit.history(c, ids["3461002"])
        assert [(h["action"], h["from_status"], h["to_status"], h["actor"]) for h in history] == [
            ("replay", "open", "replay_pending", "ops"), ("ignore", "replay_pending", "ignored", "ops")]
        assert quarantine.facets(c)["stage"] == ["validate"]


def test_trace_finds_a_record_by_any_key(hub):
    with store.engine().begin() as c:
        c.execute(model.customer.insert().values(hub_id="CUS-1", name="杭州示例科技有限公司", uscc="91330100MA2XXXXX1X",
                                                 run_id="r1"))
        c.execute(model.customer_source.insert().values(system="crm", native_key="3461", hub_id="CUS-1",
                                                        name="杭州示例科技有限公司", erp_code="H000001", run_id="r1"))
        c.execute(model.xref.insert(), [
            {"entity": "customer", "system": "crm", "native_key": "3461", "hub_id": "CUS-1"},
            {"entity": "customer", "system": "u8", "native_key": "H000001", "hub_id": "CUS-1"}])
        _run(c, "r1", "success", timedelta(minutes=1))
        for key in ("3461", "H000001", "91330100ma2xxxxx1x", "CUS-1", "示例科技"):
            assert [h["hub_id"] for h in trace.search(c, key)] == ["CUS-1"], key
        assert trace.search(c, "100%") == [] and trace.search(c, " ") == []
        t = trace.trace(c, "CUS-1")
        assert {(x["system"], x["native_key"]) for x in t["xref"]} == {("crm", "3461"), ("u8", "H000001")}
        assert [r["run_id"] for r in t["runs"]] == ["r1"]
        assert trace.trace(c, "CUS-unknown") is None


def test_runs_read_back_in_step_order_with_a_summary(hub):
    with store.engine().begin() as c:
        _run(c, "r1", "success", timedelta(minutes=1), write_back={"written": 3}, extract={"read": 5},
             map={"read": 5, "quarantined": 1}, validate={"read": 4, "quarantined": 1})
        run = runs.one(c, "r1")
    assert [s["step"] for s in run["steps"]] == ["extract", "map", "validate", "write_back"]
    assert run["summary"] == {"read": 5, "written": 3, "quarantined": 2}
    assert run["seconds"] == 30.0
