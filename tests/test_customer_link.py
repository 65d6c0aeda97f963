"""A CRM account for a company U8 already holds links to that U8 customer and gets its code:
a valid 统一社会信用代码 that U8 (or the hub's xref) holds never becomes a second U8 customer,
whatever the name, and whatever an earlier run could or could not read."""
from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import select

from hub import model, store
from quality import uscc
from tests.flowkit import crm_accounts, query, run_flow, u8_customers

#: A seed whose U8-only customers include one the registry reports renamed (seed 42 has none).
SEED_WITH_RENAMED_U8_ONLY = 4


@pytest.fixture
def renamed_sandbox(hub, monkeypatch):
    from tests.conftest import start_sandbox

    sb = start_sandbox(hub / "sandbox", 150, monkeypatch, seed=SEED_WITH_RENAMED_U8_ONLY)
    yield sb
    sb.stop()


def _create_account(sb, data: dict[str, Any]) -> str:
    """A salesperson types a new account into the CRM (through its real API)."""
    r = sb.crm_session(timeout=10).post(f"{sb.crm_url}/rest/data/v2.0/xobjects/account", json={"data": data},
                                        timeout=10)
    r.raise_for_status()
    return str(r.json()["data"]["id"])


def _doubled_usccs(sb, seeded: set[str]) -> dict[str, list[str]]:
    """Valid USCCs that a U8 customer the hub created shares with another U8 customer (there
    must be none; the seed's own U8 duplicates were typed by people, not by the hub)."""
    holders: dict[str, list[str]] = defaultdict(list)
    for code, reg in query(sb.u8_db, "select cCusCode, cCusRegCode from Customer where cCusRegCode is not null"):
        if uscc.is_valid(reg):
            holders[reg].append(code)
    return {reg: codes for reg, codes in holders.items() if len(codes) > 1 and set(codes) - seeded}


def _renamed_u8_customer(sb) -> tuple[str, str, str]:
    """(U8 code, former name, USCC) of a U8-only customer the hub renamed from the registry:
    nothing in the hub carries its former name any more."""
    renamed = {c["company_id"]: c for c in sb.registry_truth()["companies"] if c["renamed"]}
    truth = json.loads((sb.folder / "truth.json").read_text(encoding="utf-8"))
    held = u8_customers(sb)
    for t in truth["u8"]:
        company = renamed.get(t["company_id"])
        cust = held.get(t["u8_code"])
        if (company and cust and not t["crm_ids"] and cust["cCusName"] == company["legal_name"]
                and uscc.is_valid(cust["cCusRegCode"] or "")):
            return t["u8_code"], company["former_names"][0], cust["cCusRegCode"]
    raise AssertionError("the seed has no U8 customer the hub renamed from the registry")


def test_an_account_typed_with_a_u8_customers_former_name_and_uscc_links_to_it(renamed_sandbox):
    sandbox = renamed_sandbox
    seeded = set(u8_customers(sandbox))
    run_flow("customer_master", "former-1")
    code, former, reg_code = _renamed_u8_customer(sandbox)
    assert not _doubled_usccs(sandbox, seeded)
    before = set(u8_customers(sandbox))
    new_id = _create_account(sandbox, {"accountName": former, "uscc__c": reg_code})
    rep = run_flow("customer_master", "former-2")
    assert set(u8_customers(sandbox)) == before, "a second U8 customer was created"
    assert not _doubled_usccs(sandbox, seeded)
    assert crm_accounts(sandbox)[new_id]["erpCode__c"] == code
    outcome = rep["systems"]["crm"]["outcomes"]
    assert outcome.get("created in U8", 0) == 0, outcome
    assert rep["systems"]["crm"]["adds_up"]


def test_after_a_run_with_every_crm_page_broken_no_u8_customer_is_created_twice(sandbox):
    from hub.errors import HubError

    seeded = set(u8_customers(sandbox))
    sandbox.faults(1.0, ["malformed"], systems=("crm",))
    try:
        run_flow("customer_master", "blind-1", retries=0)
    except HubError:
        pass  # a run that could not read the CRM may fail; what matters is what U8 ends with
    sandbox.faults(0.0, systems=("crm",))
    run_flow("customer_master", "blind-2")
    assert not _doubled_usccs(sandbox, seeded)
    run_flow("customer_master", "blind-3")
    assert not _doubled_usccs(sandbox, seeded)
    # every CRM account whose valid USCC U8 holds carries the code of a U8 customer with it
    holders: dict[str, set[str]] = defaultdict(set)
    for code, c in u8_customers(sandbox).items():
        holders[c["cCusRegCode"]].add(code)
    with store.engine().begin() as conn:
        linked = {k for (k,) in conn.execute(select(model.xref.c.native_key).where(
            model.xref.c.entity == "customer", model.xref.c.system == "crm"))}
    checked = 0
    for key, acc in crm_accounts(sandbox).items():
        reg = str(acc.get("uscc__c") or "").replace(" ", "").replace("\u3000", "").upper()
        if key in linked and uscc.is_valid(reg) and reg in holders:
            assert acc.get("erpCode__c") in holders[reg], (key, acc["accountName"], acc.get("erpCode__c"))
            checked += 1
    assert checked > 0


def test_an_account_typed_exactly_like_a_u8_only_customer_gets_its_u8_code(sandbox):
    truth = json.loads((sandbox.folder / "truth.json").read_text(encoding="utf-8"))
    run_flow("customer_master", "u8only-1")
    held = u8_customers(sandbox)
    only = next(held[t["u8_code"]] for t in truth["u8"]
                if not t["crm_ids"] and t["u8_code"] in held and uscc.is_valid(held[t["u8_code"]]["cCusRegCode"] or ""))
    before = set(held)
    new_id = _create_account(sandbox, {"accountName": only["cCusName"], "uscc__c": only["cCusRegCode"]})
    rep = run_flow("customer_master", "u8only-2")
    assert rep["systems"]["crm"]["outcomes"].get("linked to existing U8 customer", 0) >= 1
    assert crm_accounts(sandbox)[new_id]["erpCode__c"] == only["cCusCode"]
    assert set(u8_customers(sandbox)) == before
    rep = run_flow("customer_master", "u8only-3")
    assert crm_accounts(sandbox)[new_id]["erpCode__c"] == only["cCusCode"]
    assert rep["systems"]["crm"]["adds_up"]


def _new_uscc(sb) -> str:
    """A valid USCC no seeded company has."""
    taken = {c for (c,) in query(sb.u8_db, "select cCusRegCode from Customer")}
    for n in range(10_000):
        first17 = f"91310115MA1K{n:05d}"
        code = first17 + uscc.check_character(first17)
        if uscc.identifies(code) and code not in taken:
            return code
    raise AssertionError("no free USCC")


def _type_into_u8(sb, code: str, name: str, reg_code: str) -> None:
    """A clerk types a customer straight into U8 (its client writes the database)."""
    con = sqlite3.connect(sb.u8_db)
    try:
        con.row_factory = sqlite3.Row
        row = dict(con.execute("select * from Customer limit 1").fetchone())
        row.update(cCusCode=code, cCusName=name, cCusAbbName=name[:10], cCusRegCode=reg_code)
        row.pop("pubufts", None)  # the rowversion trigger stamps it
        cols = list(row)
        con.execute(f"insert into Customer ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                    [row[c] for c in cols])
        con.commit()
    finally:
        con.close()


def test_a_uscc_u8_holds_on_a_customer_the_hub_could_not_take_in_links_instead_of_creating(sandbox):
    """U8's record fails the hub's gate (a ';' in its name), so only U8 knows the code: the CRM
    account with that code still links to it, and U8 gets the clean name from the hub."""
    seeded = set(u8_customers(sandbox))
    run_flow("customer_master", "erp-1")
    reg_code = _new_uscc(sandbox)
    _type_into_u8(sandbox, "Z000001", "澄明新材料;有限公司", reg_code)
    rep = run_flow("customer_master", "erp-2")
    assert rep["systems"]["u8"]["outcomes"].get("quarantined", 0) >= 1  # the hub could not take it in
    new_id = _create_account(sandbox, {"accountName": "上海澄明新材料有限公司", "uscc__c": reg_code})
    rep = run_flow("customer_master", "erp-3")
    holders = [code for code, c in u8_customers(sandbox).items() if c["cCusRegCode"] == reg_code]
    assert holders == ["Z000001"], holders
    assert crm_accounts(sandbox)[new_id]["erpCode__c"] == "Z000001"
    assert u8_customers(sandbox)["Z000001"]["cCusName"] == "上海澄明新材料有限公司"
    assert not _doubled_usccs(sandbox, seeded | {"Z000001"})
    assert rep["systems"]["crm"]["adds_up"]


def test_a_uscc_another_hub_customer_holds_in_u8_is_held_back_with_the_reason_not_created(sandbox):
    """A reviewer kept the new account apart from the U8 customer with its USCC: two hub
    customers for one code. U8 still gets no second customer; the account waits with why."""
    from hub import quarantine as q

    truth = json.loads((sandbox.folder / "truth.json").read_text(encoding="utf-8"))
    run_flow("customer_master", "apart-1")
    held = u8_customers(sandbox)
    only = next(held[t["u8_code"]] for t in truth["u8"]
                if not t["crm_ids"] and t["u8_code"] in held and uscc.identifies(held[t["u8_code"]]["cCusRegCode"]))
    new_id = _create_account(sandbox, {"accountName": "星河远航贸易有限公司", "uscc__c": only["cCusRegCode"]})
    with store.engine().begin() as conn:
        hub_id = conn.execute(select(model.xref.c.hub_id).where(
            model.xref.c.system == "u8", model.xref.c.native_key == only["cCusCode"])).scalar()
        for other in (f"u8:{only['cCusCode']}", f"registry:{hub_id}"):
            conn.execute(model.match_decision.insert().values(
                entity="customer", left_node=f"crm:{new_id}", right_node=other, source="reviewer",
                decision="distinct", probability=1.0, evidence={}, status="active", decided_by="steward"))
    before = set(held)
    rep = run_flow("customer_master", "apart-2")
    assert set(u8_customers(sandbox)) == before
    assert not crm_accounts(sandbox)[new_id].get("erpCode__c")
    with store.engine().begin() as conn:
        entries = [e for e in q.listing(conn, "customer_master", limit=10_000)
                   if e["system"] == "u8" and e["stage"] == "publish"]
    assert len(entries) == 1 and only["cCusCode"] in entries[0]["reasons"][0]
    assert rep["systems"]["crm"]["outcomes"].get("held back from U8") == 1
    assert rep["systems"]["crm"]["adds_up"]
