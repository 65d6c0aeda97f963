"""Shop orders and their shipments are exactly once under mixed faults on the shops and the ERP.

Every fault kind at once (429, 5xx, slow, expired tokens, and the three that apply the write and
spoil the answer: lost, truncated, malformed) on the shop platforms' stand-in and on U8, while the
shop orders are read, sent to U8 and their packages reported back; each run retried as the DAG's
retries would. Then, with the faults off, the flows run once more and the tests count what the
systems themselves hold: each platform order in U8 at most once, each package on the platform once,
and the hub's books agreeing with both.
"""
from __future__ import annotations

from collections import Counter

import pytest

from hub import store
from tests.flowkit import query, run_flow
from tests.conftest import isolate_hub, start_sandbox

SHOPS = {"tmall_ninebot": "taobao", "doudian_ninebot": "doudian"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from flows import roles

    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("shop_faults")
    isolate_hub(folder, mp)
    mp.delenv("HUB_BINDINGS", raising=False)            # the default deployment: U8 and two shops
    roles.reset()
    sb = start_sandbox(folder / "sandbox", 60, mp)
    run_flow("customer_master", "cm-1")
    run_flow("product_master", "pm-1")
    sb.faults(0.25, seed=11, systems=("shops", "u8"), slow_seconds=0.3)   # a stall is a stall: 0.3 s, not 2
    reports = [run_flow("shop_orders", "so-shop-1", retries=12), run_flow("sales_orders", "so-1", retries=12)]
    sb.u8_ship(unplanned="two_stage")
    reports.append(run_flow("shipments", "sh-1", retries=12))
    sb.u8_ship(unplanned="two_stage")
    reports.append(run_flow("shipments", "sh-2", retries=12))
    faults = sb.stats()
    sb.faults(0.0, systems=("shops", "u8"))
    for flow, run in (("shop_orders", "so-shop-2"), ("sales_orders", "so-2"), ("shipments", "sh-3")):
        reports.append(run_flow(flow, run))
    yield sb, reports, faults
    sb.stop()
    mp.undo()
    roles.reset()
    store.engine_for.cache_clear()


def test_faults_of_every_kind_were_served_to_the_shops_and_u8(world):
    _, _, faults = world
    for system in ("shops", "u8"):
        served = faults[system].get("faults") or {}
        assert sum(served.values()) > 0, (system, faults[system])
    lost = sum((faults[s].get("faults") or {}).get(k, 0) for s in ("shops", "u8") for k in ("lost", "truncated", "malformed"))
    assert lost > 0, "no answer was lost after a write was applied: the test proves nothing"


def test_each_shop_order_is_in_u8_at_most_once_and_the_hub_agrees(world):
    sb, _, _ = world
    held = Counter(po for (po,) in query(sb.u8_db, "select cDefine11 from SO_SOMain where cCloser is null"))
    truth = sb.shops("truth")
    for seat, platform in SHOPS.items():
        tids = [str(o["tid"]) for o in truth[platform]]
        twice = [t for t in tids if held.get(t, 0) > 1]
        assert not twice, f"{seat}: in U8 more than once: {twice[:5]}"
        with store.engine().begin() as conn:
            from sqlalchemy import select

            from hub import model

            x = model.xref.c
            hub_ids = {h for (h,) in conn.execute(select(x.hub_id).where(x.entity == "sales_order", x.system == seat))}
            open_in_u8 = {h for (h,) in conn.execute(select(x.hub_id).where(
                x.entity == "sales_order", x.system == "u8", x.native_version == "open", x.hub_id.in_(hub_ids)))}
        in_u8 = [t for t in tids if held.get(t)]
        assert in_u8 and len(in_u8) == len(open_in_u8), (seat, len(in_u8), len(open_in_u8))


def test_each_package_reached_its_shop_once(world):
    sb, _, _ = world
    stats = sb.shops("stats")
    with store.engine().begin() as conn:
        from sqlalchemy import select

        from hub import model

        x = model.xref.c
        told = {seat: {k for (k,) in conn.execute(select(x.native_key).where(x.entity == "shipment", x.system == seat))}
                for seat in SHOPS}
    for seat, platform in SHOPS.items():
        ships = stats[platform]["shipments"]
        on_platform = {f"{s['tid']}:{s['tracking_no']}" for s in ships}
        assert ships and len(on_platform) == len(ships)          # one package per tid and tracking number
        assert told[seat] == on_platform, (seat, len(told[seat]), len(on_platform))


def test_every_run_accounts_for_every_record(world):
    _, reports, _ = world
    for rep in reports:
        for system, line in rep["systems"].items():
            assert line["adds_up"], (rep["flow"], system, line)
        for system, held in rep.get("targets", {}).items():
            assert not held["duplicates"], (rep["flow"], system, held)
