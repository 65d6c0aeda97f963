"""Contacts to the ERP (issue 16): the ERP's one contact slot of a customer (U8 cCusPerson, cCusHand)
shows its primary CRM contact — a contact typed twice in the CRM is one person there and reaches
U8 once — and a changed mobile in the CRM reaches U8 in the next run, once.

The oracle is the CRM stand-in's contacts and U8's Customer table, not the hub's books.
"""
from __future__ import annotations

import re
from collections import defaultdict

import pytest

from tests.conftest import isolate_hub, start_sandbox
from tests.flowkit import CrmClient, run_flow, step
from tests.orderkit import rows

MOBILE = re.compile(r"(?:\+?86)?1[3-9][0-9]{9}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("contacts_erp")
    isolate_hub(folder, mp)
    sb = start_sandbox(folder / "sandbox", 60, mp)
    try:
        yield sb, [run_flow("customer_master", "cm-1"), run_flow("customer_master", "cm-2")]
    finally:
        sb.stop()
        mp.undo()


def _mobile(text) -> str | None:
    plain = re.sub(r"[\s-]", "", text or "")
    return plain if MOBILE.fullmatch(plain) else None


def _crm_contacts(sb) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for c in rows(sb.crm_db, 'select id, accountId, contactName, mobile from "contact"'):
        out[str(c["accountId"])].append(c)
    return out


def _u8(sb) -> dict[str, dict]:
    return {r["cCusCode"]: r for r in rows(sb.u8_db, "select cCusCode, cCusPerson, cCusHand from Customer")}


def test_u8_shows_a_crm_contact_of_each_customer_once(world):
    sb, reports = world
    assert all(t["adds_up"] for rep in reports for t in rep["systems"].values())
    assert step(reports[1], "write_back")["written"] == 0   # duplicates merged: nothing to send twice
    people, u8 = _crm_contacts(sb), _u8(sb)
    accounts = [a for a in rows(sb.crm_db, 'select id, erpCode__c from "account"') if a["erpCode__c"]]
    checked = 0
    for account in accounts:
        mine = [c for c in people.get(str(account["id"]), []) if (c["contactName"] or "").strip()]
        if not mine:
            continue
        held = u8[account["erpCode__c"]]
        assert held["cCusPerson"] in {c["contactName"].strip() for c in mine}, account
        with_mobile = {_mobile(c["mobile"]) for c in mine} - {None}
        if with_mobile:   # a contact with a valid mobile is preferred, and its mobile goes with it
            assert held["cCusHand"] in with_mobile
        checked += 1
    assert checked >= 10


def test_a_changed_mobile_reaches_u8_in_the_next_run_once(world):
    sb, _ = world
    u8, people = _u8(sb), _crm_contacts(sb)
    account = next(a for a in rows(sb.crm_db, 'select id, erpCode__c from "account"') if a["erpCode__c"]
                   and any(c["contactName"] == u8[a["erpCode__c"]]["cCusPerson"] and _mobile(c["mobile"])
                           for c in people.get(str(a["id"]), [])))
    code = account["erpCode__c"]
    contact = next(c for c in people[str(account["id"])] if c["contactName"] == u8[code]["cCusPerson"] and _mobile(c["mobile"]))
    CrmClient(sb).patch("contact", str(contact["id"]), {"mobile": "13900139000"})
    report = run_flow("customer_master", "cm-mobile")
    assert all(t["adds_up"] for t in report["systems"].values())
    assert _u8(sb)[code]["cCusHand"] == "13900139000"
    assert step(report, "write_back")["written"] >= 1
    assert step(run_flow("customer_master", "cm-quiet"), "write_back")["written"] == 0
