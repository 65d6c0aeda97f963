"""Inventory availability in the CRM (销售易 E公司, 纷享销客): U8's 现存量 per product and warehouse in the
CRM's stock records, changes in the next run only, and a CRM order line the ERP has not taken yet
flagged while its quantity is above the product's available stock.

One sandbox for the module; the oracle is U8's own CurrentStock and the CRM stand-in's tables.
"""
from __future__ import annotations

import sqlite3
from collections import defaultdict
from decimal import Decimal

import pytest

from hub import model, store
from tests.conftest import ordered_world
from tests.flowkit import run_flow, step
from tests.orderkit import rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with ordered_world(tmp_path_factory, "stock") as sb:
        yield sb, [run_flow("stock", "st-1")]


def _u8_levels(sb) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """product@warehouse → (on hand, reserved, available) summed over U8's stock rows, in Decimal."""
    out: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for r in rows(sb.u8_db, "select cInvCode, cWhCode, iQuantity, fOutQuantity, fAvaQuantity from CurrentStock"):
        level = out[f"{r['cInvCode']}@{r['cWhCode']}"]
        for i, col in enumerate(("iQuantity", "fOutQuantity", "fAvaQuantity")):
            level[i] += Decimal(str(r[col] or 0))
    return {k: tuple(v) for k, v in out.items()}


def _crm_levels(sb) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    got = rows(sb.crm_db, 'select stockKey__c, onHand__c, reserved__c, available__c from "stock__c"')
    assert len(got) == len({r["stockKey__c"] for r in got}), "one stock record per product and warehouse"
    return {r["stockKey__c"]: tuple(Decimal(str(r[c])) for c in ("onHand__c", "reserved__c", "available__c")) for r in got}


def _in_crm(sb) -> set[str]:
    """The CRM products product_master linked to U8 (they carry the hub's id); a CRM product whose U8
    record is quarantined (an old tax rate, an unknown unit) is not linked and shows no stock."""
    return {r["productCode__c"] for r in rows(sb.crm_db, 'select productCode__c, hubId__c from "product"')
            if r["productCode__c"] and r["hubId__c"]}


def test_every_u8_stock_level_of_a_crm_product_is_in_the_crm(world):
    sb, reports = world
    assert all(t["adds_up"] for t in reports[0]["systems"].values())
    u8, crm, linked = _u8_levels(sb), _crm_levels(sb), _in_crm(sb)
    want = {k: v for k, v in u8.items() if k.split("@")[0] in linked}
    assert want and crm == want
    assert any(v[1] > 0 for v in crm.values()), "orders in U8 reserve stock (待发货)"


def _set_stock(sb, code: str, quantity: int) -> None:
    """The warehouse counts ``code`` again: every row of it in 01 主仓 set to ``quantity`` on hand (ufts moves)."""
    con = sqlite3.connect(sb.u8_db)
    try:
        con.execute("update CurrentStock set iQuantity = ?, fAvaQuantity = ? - fOutQuantity - fStopQuantity "
                    "where cInvCode = ? and cWhCode = '01'", (quantity, quantity, code))
        con.commit()
    finally:
        con.close()


def test_a_stock_change_reaches_the_crm_in_the_next_run_and_nothing_else_is_written(world):
    sb, _ = world
    code = sorted(k.split("@")[0] for k in _crm_levels(sb) if k.endswith("@01"))[0]
    _set_stock(sb, code, 7)
    report = run_flow("stock", "st-2")
    assert all(t["adds_up"] for t in report["systems"].values())
    assert _crm_levels(sb) == {k: v for k, v in _u8_levels(sb).items() if k.split("@")[0] in _in_crm(sb)}
    assert _crm_levels(sb)[f"{code}@01"][0] == 7
    assert step(report, "write_back")["written"] == 1
    assert step(run_flow("stock", "st-3"), "write_back")["written"] == 0


def _waiting_line(sb) -> tuple[str, str, Decimal]:
    """A line of a CRM order the hub holds back from U8 (pending or waiting): its CRM id, product code, quantity."""
    from sqlalchemy import select

    with store.engine().begin() as conn:
        o = model.outbox.c
        held = [h for (h,) in conn.execute(select(o.hub_id).where(o.entity == "sales_order", o.target == "u8",
                                                                  o.status.in_(["pending", "waiting"])))]
        lines = store.select_in(conn, model.sales_order_line, "order_hub_id", held, columns=["native_key", "product_key", "quantity"])
    codes = {str(r["id"]): r["productCode__c"] for r in rows(sb.crm_db, 'select id, productCode__c from "product"')}
    stocked = {k.split("@")[0] for k in _crm_levels(sb)}
    for key, product, qty in lines.itertuples(index=False):
        if codes.get(str(product)) in stocked:
            return str(key), codes[str(product)], Decimal(str(qty))
    raise AssertionError(f"the seed holds no CRM order back from U8 with a stocked product ({len(held)} held)")


def test_a_held_order_line_above_available_stock_is_flagged_until_stock_covers_it(world):
    sb, _ = world
    line, code, qty = _waiting_line(sb)
    _set_stock(sb, code, 0)
    run_flow("stock", "st-short")
    flagged = {str(r["id"]): r["stockShortage__c"] for r in rows(sb.crm_db, 'select id, stockShortage__c from "orderProduct"')}
    assert flagged[line].startswith("库存不足") and code in flagged[line]
    assert all(not t for k, t in flagged.items() if k != line and t and code not in t)
    _set_stock(sb, code, int(qty) + 1000)
    run_flow("stock", "st-covered")
    after = {str(r["id"]): r["stockShortage__c"] for r in rows(sb.crm_db, 'select id, stockShortage__c from "orderProduct"')}
    assert not after[line]
