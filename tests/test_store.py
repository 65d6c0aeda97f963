"""The hub store on SQLite and PostgreSQL: upserts, staging, quarantine, watermarks."""
import pandas as pd
from sqlalchemy import func, select

from hub import model, quarantine, store, watermarks


def test_upsert_is_set_based_and_idempotent(store_url):
    eng = store.engine(store_url)
    rows = [{"hub_id": f"C{i}", "name": f"公司{i}", "content_hash": "h"} for i in range(5000)]
    with eng.begin() as c:
        store.upsert(c, model.customer, rows, keys=["hub_id"])
        store.upsert(c, model.customer, rows, keys=["hub_id"])
        rows[0]["name"] = "改名"
        store.upsert(c, model.customer, rows[:1], keys=["hub_id"])
    with eng.begin() as c:
        assert c.execute(select(func.count()).select_from(model.customer)).scalar() == 5000
        assert c.execute(select(model.customer.c.name).where(model.customer.c.hub_id == "C0")).scalar() == "改名"


def test_staging_is_keyed_by_run_and_replaced_on_retry(store_url):
    eng = store.engine(store_url)
    df = pd.DataFrame({"a": range(12000), "b": ["中文"] * 12000})
    with eng.begin() as c:
        store.stage_write(c, "run1", "map", df, "crm")
        store.stage_write(c, "run1", "map", df.head(3), "crm")  # a retried step replaces its output
        store.stage_write(c, "run2", "map", df.head(1), "crm")
    with eng.begin() as c:
        assert len(store.stage_read(c, "run1", "map")) == 3
        assert store.stage_read(c, "run1", "map")["b"].iloc[0] == "中文"


def test_quarantine_keeps_one_row_per_bad_record_and_closes_it_when_fixed(store_url):
    eng = store.engine(store_url)
    item = ("42", {"id": 42, "accountName": ""}, ["name: required value missing"])
    with eng.begin() as c:
        quarantine.add(c, run_id="r1", flow="f", entity="customer", system="crm", stage="map", items=[item])
        quarantine.add(c, run_id="r2", flow="f", entity="customer", system="crm", stage="map", items=[item])
        rows = quarantine.listing(c, "f")
        assert len(rows) == 1 and rows[0]["last_run_id"] == "r2"
        quarantine.resolve(c, run_id="r3", flow="f", system="crm", record_keys=["42"])
        assert quarantine.listing(c, "f") == []


def test_watermark_moves_only_when_the_run_commits_it(store_url):
    eng = store.engine(store_url)
    with eng.begin() as c:
        watermarks.set_pending(c, "r1", "f", "crm.account", {"updatedAt": 5})
        assert watermarks.get(c, "f", "crm.account") is None
        watermarks.commit_pending(c, "r1", "f")
        assert watermarks.get(c, "f", "crm.account") == {"updatedAt": 5}
