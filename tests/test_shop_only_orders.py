"""A company whose orders come from its shops only: the CRM holds no order yet, and
sales_orders still sends the shops' paid orders to U8 (a run that reads no CRM order is not an
error), accounting for each."""
from __future__ import annotations

import pytest

from hub import store
from tests.conftest import isolate_hub
from tests.flowkit import query, run_flow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from flows import roles
    from sandbox.harness import Sandbox

    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("shop_only")
    isolate_hub(folder, mp)
    mp.delenv("HUB_BINDINGS", raising=False)  # the default deployment: U8, 天猫 and 抖店
    roles.reset()
    sb = Sandbox(folder / "sandbox", accounts=12, orders=0, shop_orders=15).seed().start()
    for key, value in sb.connections().items():
        mp.setenv(key, value)
    reports = [run_flow(f, f"{f}-1") for f in ("customer_master", "product_master", "shop_orders", "sales_orders")]
    yield sb, reports
    sb.stop()
    mp.undo()
    roles.reset()
    store.engine_for.cache_clear()


def test_the_crm_had_no_order_and_the_run_says_so(world):
    _, reports = world
    so = reports[-1]
    assert so["status"] == "success"
    assert all(line["in"] == 0 for system, line in so["systems"].items() if system == "crm"), so["systems"]
    for rep in reports:
        for system, line in rep["systems"].items():
            assert line["adds_up"], (rep["flow"], system, line)


def test_the_shops_paid_orders_reached_u8(world):
    sb, _ = world
    held = [po for (po,) in query(sb.u8_db, "select cDefine11 from SO_SOMain where cCloser is null")]
    truth = sb.shops("truth")
    paid = {str(o["tid"]) for p in ("taobao", "doudian") for o in truth[p] if o["state"] == "paid"}
    assert held and set(held) <= paid, set(held) - paid   # paid and not shipped elsewhere: nothing else goes
    assert len(held) == len(set(held))
