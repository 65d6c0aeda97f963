"""A batch over the reject threshold fails its step and keeps its quarantine entries (the
caller's transaction rolls back with the DataError); a retry does not add them twice."""
from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select

from flows import product_master
from flows.steps import gate_records
from hub import model, quarantine, store
from hub.errors import DataError
from hub.runner import StepContext

RUN = "run-threshold-1"


def _products(good: int, bad: int) -> pd.DataFrame:
    """The ERP's mapped products as the map stage holds them; ``bad`` of them with 17 % VAT."""
    rows = [{"system": "u8", "_key": f"P{i:03d}", "_row": f"erp:P{i:03d}", "_version": "1", "code": f"P{i:03d}",
             "name": f"产品{i}", "spec": None, "uom": "PCS", "tax_rate": "17" if i < bad else "13", "class_code": "01",
             "list_price": "10.00", "sellable": "1", "end_date": None, "source_updated_at": "2025-06-01T00:00:00Z"}
            for i in range(good + bad)]
    return pd.DataFrame(rows)


def _ctx(step: str = "validate", attempt: int = 1) -> StepContext:
    return StepContext(run_id=RUN, flow=product_master.FLOW, step=step, engine=store.engine(), attempt=attempt)


def _entries(conn) -> list[dict]:
    rows, _ = quarantine.find(conn, flow=product_master.FLOW, stage="validate", limit=1000)
    return rows


def test_a_step_over_the_threshold_fails_and_its_rejected_rows_stay_in_quarantine(hub):
    ctx = _ctx()
    with ctx.engine.begin() as conn:
        store.stage_write(conn, RUN, "map", _products(good=5, bad=20), product_master.STAGE)
    for attempt in (1, 2):  # the step, then Airflow's retry of it
        with pytest.raises(DataError, match=r"product_master: 80% of 25 product records failed validation "
                                            r"\(threshold 50%\); the source itself looks broken"):
            product_master.FLOW_ENGINE.validate(_ctx(attempt=attempt))
        with ctx.engine.connect() as conn:
            entries = _entries(conn)
            total = conn.execute(select(func.count()).select_from(model.quarantine)).scalar()
        assert total == len(entries) == 20, f"attempt {attempt}"
        assert sorted(e["record_key"] for e in entries) == [f"P{i:03d}" for i in range(20)]
        assert all(e["system"] == "u8" and e["status"] == "open" and e["entity"] == "product" for e in entries)
        assert all(any(r.startswith("product_tax_rate_valid: ") for r in e["reasons"]) for e in entries)
        assert all(e["payload"]["tax_rate"] == "17" for e in entries)
    with ctx.engine.connect() as conn:
        assert store.stage_read(conn, RUN, "validate", product_master.STAGE).empty  # nothing went on


def test_a_batch_under_the_threshold_quarantines_in_the_callers_transaction(hub):
    ctx = _ctx()
    with ctx.engine.begin() as conn:
        good, counts = gate_records(conn, ctx, "product", product_master.prepare(_products(good=20, bad=5)))
        assert (counts.read, counts.mapped, counts.rejected, counts.quarantined) == (25, 20, 5, 5)
        assert len(_entries(conn)) == 5
        conn.rollback()  # the caller's transaction decides: rolled back, the entries go with it
    with ctx.engine.connect() as conn:
        assert _entries(conn) == []


def test_a_caller_that_wrote_before_the_gate_is_refused_at_once_on_sqlite(hub):
    ctx = _ctx()
    with ctx.engine.begin() as conn:
        store.stage_write(conn, RUN, "validate", pd.DataFrame([{"x": 1}]), "other")
        with pytest.raises(RuntimeError, match="has written already"):
            gate_records(conn, ctx, "product", product_master.prepare(_products(good=5, bad=20)))
