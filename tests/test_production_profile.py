"""The production profile's hub store: every flow end to end with the hub on PostgreSQL
(in CI a missing server fails this test), against the sandbox systems on loopback. Same
story as the embedded default: every record accounted for, and a second pass writes
nothing twice."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub import model, receipts_model as rm, store
from tests.flowkit import run_flow, step
from tests.orderkit import counts

STORY = ("customer_master", "product_master", "sales_orders", "shipments", "receipts")


@pytest.fixture
def pg_world(pg_url, tmp_path, monkeypatch):
    from tests.conftest import start_sandbox

    monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HUB_STORE_URL", pg_url)
    monkeypatch.setenv("HUB_RECEIPTS_AS_OF", "2025-06-30")
    store.engine_for.cache_clear()
    sb = start_sandbox(tmp_path / "sandbox", 120, monkeypatch)
    yield sb
    sb.stop()
    store.engine_for.cache_clear()


def _pass(sb, n: int) -> dict[str, dict]:
    reports = {}
    for flow in STORY:
        if flow == "shipments":
            sb.u8_ship()
        reports[flow] = run_flow(flow, f"pg-{flow}-{n}")
    return reports


def test_every_flow_runs_on_postgresql_and_a_second_pass_writes_nothing_twice(pg_world):
    sb = pg_world
    assert store.engine().dialect.name == "postgresql"
    first = _pass(sb, 1)
    for flow, rep in first.items():
        for system, figures in rep["systems"].items():
            assert figures["adds_up"], (flow, system, figures)      # in = written + skipped + quarantined
    assert step(first["customer_master"], "load")["written"] > 0
    assert step(first["sales_orders"], "write_back")["written"] > 0
    with store.engine().begin() as c:
        golden = c.execute(select(func.count()).select_from(model.customer)).scalar()
        posted = c.execute(select(func.count()).select_from(rm.allocation)).scalar()
    assert golden > 0 and posted > 0
    systems_after_first = counts(sb)

    again = _pass(sb, 2)
    for flow in ("customer_master", "product_master", "sales_orders", "receipts"):
        assert step(again[flow], "write_back")["written"] == 0, flow
    with store.engine().begin() as c:
        assert c.execute(select(func.count()).select_from(rm.allocation)).scalar() == posted
        assert c.execute(select(func.count()).select_from(model.customer)).scalar() == golden
    after = counts(sb)
    for key in ("u8_orders", "u8_rows", "crm_products"):
        assert after[key] == systems_after_first[key], key
