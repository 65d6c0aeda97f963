"""Serial-numbered assets in the CRM (九号, 施耐德): every serial U8 ships is one asset__c linked to the
customer, product, order and delivery, with its warranty; a re-sent delivery is no second asset, a
returned serial is marked so, and a create whose answer was lost stays one asset.

One sandbox for the module; the oracle is U8's own DispatchLists (what the warehouse shipped) and
the CRM stand-in's tables, not the hub's books.
"""
from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from datetime import date

import pytest
import yaml

from tests.conftest import ROOT, ordered_world
from tests.flowkit import run_flow, step
from tests.orderkit import rows


def _months(code: str, class_code: str | None) -> int:
    spec = yaml.safe_load((ROOT / "mappings" / "valuemaps" / "asset_warranty_months.yaml").read_text(encoding="utf-8"))
    values = {str(k): v for k, v in spec["values"].items()}
    return int(values.get(code, values.get(str(class_code), spec["default"])))


def _plus_months(day: date, months: int) -> date:
    import calendar
    y, m = divmod(day.month - 1 + months, 12)
    return date(day.year + y, m + 1, min(day.day, calendar.monthrange(day.year + y, m + 1)[1]))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with ordered_world(tmp_path_factory, "assets") as sb:
        sb.u8_ship()
        heard = _Heard()
        logging.getLogger("connectors.xiaoshouyi").addHandler(heard)
        sb.faults(0.35, kinds=["lost"], seed=7, systems=("crm",))   # CRM writes applied, their answers lost
        try:
            reports = [run_flow("shipments", "sh-lost")]
        finally:
            sb.faults(0.0, systems=("crm",))
            logging.getLogger("connectors.xiaoshouyi").removeHandler(heard)
        reports.append(run_flow("shipments", "sh-1"))
        yield sb, reports, heard.lines


class _Heard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _shipped(sb) -> dict[str, dict]:
    """serial → the latest U8 delivery line carrying it (with its delivery's date, order and return flag)."""
    out = {}
    for r in rows(sb.u8_db, "select l.cInvSN, l.cInvCode, h.cDLCode, h.cSOCode, h.dDate, h.bReturnFlag, h.DLID "
                            "from DispatchLists l join DispatchList h on h.DLID = l.DLID "
                            "where l.cInvSN is not null order by h.dDate, h.bReturnFlag, h.cDLCode"):
        for sn in r["cInvSN"].split(","):
            out[sn] = r
    return out


def _assets(sb) -> list[dict]:
    return rows(sb.crm_db, 'select * from "asset__c"')


def _hub_orders(sb) -> set[str]:
    return {o["erpCode__c"] for o in rows(sb.crm_db, 'select erpCode__c from "order" where erpCode__c is not null')}


def test_every_shipped_serial_is_one_asset_linked_and_under_warranty(world):
    """Written while a third of the CRM's answers were lost after the write was applied."""
    sb, reports, heard = world
    assert any("asset__c serialNumber__c=" in line and "answer lost" in line for line in heard)
    assert all(t["adds_up"] for rep in reports for t in rep["systems"].values())
    hub_orders = _hub_orders(sb)
    shipped = {sn: r for sn, r in _shipped(sb).items() if r["cSOCode"] in hub_orders}
    assert len(shipped) >= 10, "the seed ships serial-numbered units of the hub's orders"
    assets = _assets(sb)
    assert Counter(a["serialNumber__c"] for a in assets).most_common(1)[0][1] == 1
    by_serial = {a["serialNumber__c"]: a for a in assets}
    assert set(by_serial) == set(shipped)
    orders = {str(o["id"]): o for o in rows(sb.crm_db, 'select id, accountId, erpCode__c from "order"')}
    ships = {str(s["id"]): s["dispatchCode__c"] for s in rows(sb.crm_db, 'select id, dispatchCode__c from "shipment__c"')}
    products = {str(p["id"]): p["productCode__c"] for p in rows(sb.crm_db, 'select id, productCode__c from "product"')}
    classes = {r["cInvCode"]: r["cInvCCode"] for r in rows(sb.u8_db, "select cInvCode, cInvCCode from Inventory")}
    for sn, line in shipped.items():
        a = by_serial[sn]
        order = orders[str(a["order__c"])]
        assert order["erpCode__c"] == line["cSOCode"]
        assert str(a["account__c"]) == str(order["accountId"])
        assert ships[str(a["shipment__c"])] == line["cDLCode"]
        assert products[str(a["product__c"])] == line["cInvCode"]
        start = date.fromisoformat(str(line["dDate"])[:10])
        assert a["warrantyStart__c"] == start.isoformat()
        assert a["warrantyEnd__c"] == _plus_months(start, _months(line["cInvCode"], classes.get(line["cInvCode"]))).isoformat()
        assert a["assetStatus__c"] == "在用"


def test_a_re_sent_delivery_is_no_second_asset(world):
    sb, _, _ = world
    before = {a["serialNumber__c"]: a["id"] for a in _assets(sb)}
    con = sqlite3.connect(sb.u8_db)
    try:   # the warehouse re-sends a delivery (edited: its ufts moves), and re-keys another as a copy
        dlid, dlid2 = [r[0] for r in con.execute(
            "select distinct h.DLID from DispatchList h join DispatchLists l on l.DLID = h.DLID "
            "where l.cInvSN is not null order by h.DLID limit 2")]
        con.execute("update DispatchList set cMemo = coalesce(cMemo, '') || ' 重新发送' where DLID = ?", (dlid,))
        # numbered far above the stand-in's own counters (the re-keying is done behind its back)
        new = con.execute("select max(DLID) + 100000 from DispatchList").fetchone()[0]
        cols = [r[1] for r in con.execute("pragma table_info(DispatchList)") if r[1] not in ("DLID", "cDLCode", "ufts")]
        con.execute(f"insert into DispatchList (DLID, cDLCode, {', '.join(cols)}) "
                    f"select ?, ?, {', '.join(cols)} from DispatchList where DLID = ?", (new, f"{new:010d}", dlid2))
        lcols = [r[1] for r in con.execute("pragma table_info(DispatchLists)") if r[1] not in ("AutoID", "iDLsID", "DLID")]
        top = con.execute("select max(AutoID) + 100000 from DispatchLists").fetchone()[0]
        for k, (auto,) in enumerate(con.execute("select AutoID from DispatchLists where DLID = ?", (dlid2,)).fetchall(), 1):
            con.execute(f"insert into DispatchLists (AutoID, iDLsID, DLID, {', '.join(lcols)}) "
                        f"select ?, ?, ?, {', '.join(lcols)} from DispatchLists where AutoID = ?", (top + k, top + k, new, auto))
        con.commit()
    finally:
        con.close()
    report = run_flow("shipments", "sh-resent")
    assert all(t["adds_up"] for t in report["systems"].values())
    after = _assets(sb)
    assert Counter(a["serialNumber__c"] for a in after).most_common(1)[0][1] == 1
    assert {a["serialNumber__c"]: a["id"] for a in after} == before   # same assets, none added


def test_a_returned_serial_is_marked_returned(world):
    sb, _, _ = world
    serials = sorted(a["serialNumber__c"] for a in _assets(sb))[:2]
    assert sb.u8_return(serials)["returns"] >= 1
    report = run_flow("shipments", "sh-return")
    assert all(t["adds_up"] for t in report["systems"].values())
    assets = _assets(sb)
    assert Counter(a["serialNumber__c"] for a in assets).most_common(1)[0][1] == 1
    status = {a["serialNumber__c"]: a["assetStatus__c"] for a in assets}
    assert {sn for sn, s in status.items() if s == "已退回"} == set(serials)
    again = run_flow("shipments", "sh-quiet")
    assert step(again, "write_back")["written"] == 0
