"""Credit exposure in the CRM (远东): every account linked to a U8 customer shows the customer's credit
limit, open receivables, overdue and open orders as U8's own tables give them; a change in U8 reaches
the account in the next run, and a run without changes writes nothing.

The oracle is U8's tables read here with plain SQL and Decimal, and the CRM stand-in's account table.
"""
from __future__ import annotations

import sqlite3
from collections import defaultdict
from decimal import Decimal

import pytest

from hub import model, store
from tests.conftest import ordered_world
from tests.flowkit import run_flow, step
from tests.orderkit import d, rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with ordered_world(tmp_path_factory, "credit") as sb:
        yield sb, run_flow("credit", "cr-1")


def _u8_truth(sb) -> dict[str, dict[str, Decimal | None]]:
    """Per U8 customer: limit (where bCredit), receivables (verified invoices − AR receipts), open orders
    (each unclosed order's lines less what was invoiced against it)."""
    out: dict[str, dict] = {r["cCusCode"]: {"limit": d(r["iCusCreLine"]) if r["bCredit"] else None,
                                            "receivables": Decimal(0), "open_orders": Decimal(0)}
                            for r in rows(sb.u8_db, "select cCusCode, bCredit, iCusCreLine from Customer")}
    invoiced: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows(sb.u8_db, "select h.cCusCode, h.cSOCode, l.iSum from SaleBillVouch h join SaleBillVouchs l "
                            "on l.SBVID = h.SBVID where h.cVerifier is not null"):
        out[r["cCusCode"]]["receivables"] += d(r["iSum"])
        invoiced[r["cSOCode"]] += d(r["iSum"])
    for r in rows(sb.u8_db, "select cDwCode, iAmount from Ap_CloseBill where upper(cFlag) = 'AR'"):
        out[r["cDwCode"]]["receivables"] -= d(r["iAmount"])
    lines: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows(sb.u8_db, "select l.cSOCode, l.iSum from SO_SODetails l join SO_SOMain h on h.cSOCode = l.cSOCode "
                            "where h.cCloser is null"):
        lines[r["cSOCode"]] += d(r["iSum"])
    for r in rows(sb.u8_db, "select cSOCode, cCusCode from SO_SOMain where cCloser is null"):
        out[r["cCusCode"]]["open_orders"] += max(Decimal(0), lines[r["cSOCode"]] - invoiced[r["cSOCode"]])
    return out


def _linked() -> dict[str, list[str]]:
    """CRM account id → the U8 customer codes the hub linked it to (several where it merged U8 duplicates)."""
    with store.engine().begin() as c:
        x = model.xref.c
        u8_codes: dict[str, list[str]] = defaultdict(list)
        for h, k in c.execute(model.xref.select().with_only_columns(x.hub_id, x.native_key).where(
                x.entity == "customer", x.system == "u8")):
            u8_codes[h].append(k)
        return {k: sorted(u8_codes[h]) for h, k in c.execute(model.xref.select().with_only_columns(
            x.hub_id, x.native_key).where(x.entity == "customer", x.system == "crm")) if h in u8_codes}


def test_every_linked_account_shows_its_u8_credit(world):
    sb, report = world
    assert all(t["adds_up"] for t in report["systems"].values())
    assert report["systems"]["crm"]["outcomes"].get("shown on the CRM account") == step(report, "write_back")["written"] > 0
    truth, linked = _u8_truth(sb), _linked()
    accounts = {str(r["id"]): r for r in rows(sb.crm_db, "select * from account")}
    assert linked
    controlled = 0
    for account, codes in linked.items():
        a = accounts[account]
        limits = [truth[c]["limit"] for c in codes if truth[c]["limit"] is not None]
        t = {"limit": sum(limits, Decimal(0)) if limits else None,
             "receivables": sum((truth[c]["receivables"] for c in codes), Decimal(0)),
             "open_orders": sum((truth[c]["open_orders"] for c in codes), Decimal(0))}
        code = codes
        assert d(a["receivables__c"]) == t["receivables"] and d(a["openOrders__c"]) == t["open_orders"], (account, code)
        assert Decimal(0) <= d(a["overdue__c"]) <= max(t["receivables"], Decimal(0))
        if t["limit"] is None:
            assert a["creditLimit__c"] is None and a["availableCredit__c"] is None
        else:
            controlled += 1
            assert d(a["creditLimit__c"]) == t["limit"]
            assert d(a["availableCredit__c"]) == t["limit"] - t["receivables"] - t["open_orders"]
    assert controlled, "the seed controls half the customers' credit"
    assert any(d(a["receivables__c"]) > 0 for a in accounts.values() if a["receivables__c"] is not None)


def test_a_credit_line_changed_in_u8_reaches_the_account_once(world):
    sb, _ = world
    account, codes = sorted((a, c) for a, c in _linked().items() if len(c) == 1)[0]
    code = codes[0]
    con = sqlite3.connect(sb.u8_db)
    with con:
        con.execute("update Customer set bCredit = 1, iCusCreLine = 123456 where cCusCode = ?", (code,))
    con.close()
    rep = run_flow("credit", "cr-2")
    assert all(t["adds_up"] for t in rep["systems"].values())
    assert d(rows(sb.crm_db, "select creditLimit__c from account where id = ?", int(account))[0]["creditLimit__c"]) == 123456
    assert step(rep, "write_back")["written"] >= 1
    assert step(run_flow("credit", "cr-3"), "write_back")["written"] == 0
