"""Special prices approved through 泛微 e-cology (德力西): a CRM order line below its product's price
floor is held from U8 until the OA approves that price; one OA request per customer, product and
price however often it is sent (answers lost after the OA took it included); a changed price
supersedes the open request and its late decision is not applied; the decision reaches the CRM
line, and an approved order reaches U8 with the approved price and the OA request's number.

One world for the module (HUB_BINDINGS=oa); the oracles are the stand-ins' own tables: U8's
SO_SODetails, the CRM's orderProduct, e-cology's requests.
"""
from __future__ import annotations

import base64
import sqlite3

import pytest
import requests
from cryptography.fernet import Fernet

from flows import approvals
from flows.sales_orders import order_hub_id
from hub import model, store
from tests.conftest import ordered_world
from tests.flowkit import run_flow
from tests.orderkit import d, rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    env = {"HUB_BINDINGS": "oa", "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()}
    with ordered_world(tmp_path_factory, "approvals", 160, env) as sb:
        yield sb


def _cases() -> list[dict]:
    """The special-price lines the hub holds (CRM line id, order, subject, price, floor)."""
    with store.engine().begin() as conn:
        heads, lines = approvals._untaken(conn)
        return approvals.below_floor(conn, heads, lines).to_dict("records")


def _oa_requests(sb, workflow: str = "101") -> list[dict]:
    """e-cology's requests of one workflow (101 特价审批, 102 超信用额度审批)."""
    return rows(sb.folder / "ecology.db", "select * from request where workflowid = ? order by requestid", workflow)


def _approval_rows(kind: str = "special_price") -> list[dict]:
    with store.engine().begin() as conn:
        return [dict(r._mapping) for r in conn.execute(model.approval.select().where(model.approval.c.kind == kind))]


def _u8_line(sb, crm_order_id: str, crm_line_id: str) -> dict | None:
    """The U8 order line of a CRM order line (through the hub's xref of the order), or None."""
    with store.engine().begin() as conn:
        x = model.xref.c
        code = conn.execute(model.xref.select().with_only_columns(x.native_key).where(
            x.entity == "sales_order", x.system == "u8", x.hub_id == order_hub_id(crm_order_id))).scalar()
    if code is None:
        return None
    crm_lines = [r["id"] for r in rows(sb.crm_db, 'select id from "orderProduct" where orderId = ? order by id',
                                       int(crm_order_id))]
    u8 = rows(sb.u8_db, "select * from SO_SODetails where cSOCode = ? order by iRowNo", code)
    return u8[crm_lines.index(int(crm_line_id))] if u8 else None


def test_the_registration_is_sealed_and_a_wrong_secret_gets_no_token(world):
    sb = world
    run_flow("approvals", "ap-1")
    with store.engine().begin() as conn:
        sealed = [r.sealed for r in conn.execute(model.vault.select())]
    secrit = rows(sb.folder / "ecology.db", "select secrit from app")[0]["secrit"]
    assert sealed and all(secrit not in s for s in sealed), "secrit is kept, encrypted"
    appid = sb.credentials()["ecology"]["appid"]
    r = requests.post(f"{sb.oa_url}/api/ec/dev/auth/applytoken", timeout=10, headers={
        "appid": appid, "secret": base64.b64encode(b"not the secrit, not RSA").decode(), "time": "60"})
    assert r.json()["status"] is False and "token" not in r.json()
    r = requests.post(f"{sb.oa_url}/api/workflow/paService/getMyWorkflowRequestList", timeout=10,
                      headers={"appid": appid, "token": "forged", "userid": "23"})
    assert r.json()["code"] == "USER_EXCEPTION"


def test_special_price_orders_wait_and_one_request_is_opened_per_price(world):
    sb = world
    cases = _cases()
    assert cases, "the seed has lines at 72 % of list price"
    for c in cases:
        assert _u8_line(sb, _crm_order(sb, c["crm_key"]), c["crm_key"]) is None, "held from U8"
    subjects = {c["subject"] for c in cases}
    asked = {r["subject"] for r in _approval_rows()}
    with store.engine().begin() as conn:
        q = model.quarantine.c
        unasked = {r.record_key.split(":", 1)[1].rsplit("@", 1)[0]: r.reasons for r in conn.execute(
            model.quarantine.select().where(q.entity == "approval", q.record_key.like("special_price:%")))}
    assert asked | set(unasked) == subjects and not asked & set(unasked)
    assert all("customer_name" in " ".join(r) for r in unasked.values()), "only a case the hub cannot name waits unasked"
    names = [r["requestname"] for r in _oa_requests(sb)]
    assert len(names) == len(set(names)) == len(asked)
    # answers lost after e-cology took the create, 500s and timeouts, then runs again: still one each
    sb.faults(0.5, ["lost", "500", "truncated"], seed=3, systems=("oa",))
    try:
        for i in range(2):
            run_flow("approvals", f"ap-faults-{i}")
    finally:
        sb.faults(0.0, systems=("oa",))
    assert [r["requestname"] for r in _oa_requests(sb)] == names
    # a run killed after the OA took a request and before the hub recorded it: found by its title
    credit = [r["requestname"] for r in _oa_requests(sb, "102")]
    with store.engine().begin() as conn:
        conn.execute(model.approval.update().values(state=approvals.SUBMITTING, request_id=None))
    rep = run_flow("approvals", "ap-relink")
    assert [r["requestname"] for r in _oa_requests(sb)] == names
    assert [r["requestname"] for r in _oa_requests(sb, "102")] == credit
    assert all(r["request_id"] and r["state"] == approvals.PENDING for r in _approval_rows())
    assert rep["systems"]["crm"]["adds_up"], rep["systems"]
    every = len(names) + len(_oa_requests(sb, "102"))   # the seed's orders over credit are asked for too
    assert rep["systems"]["crm"]["outcomes"].get("asked in 泛微 e-cology (its request found by title)") == every


def _crm_order(sb, line_id: str) -> str:
    return str(rows(sb.crm_db, 'select orderId from "orderProduct" where id = ?', int(line_id))[0]["orderId"])


def test_a_changed_price_supersedes_and_the_old_decision_is_not_applied(world):
    sb = world
    case = sorted(_cases(), key=lambda c: c["crm_key"])[0]
    old = next(r for r in _approval_rows() if r["subject"] == case["subject"] and r["superseded"] is None)
    raised = d(case["price"]) + 1                  # still below the floor
    assert raised < d(case["floor"])
    s = sb.crm_session()
    r = s.patch(f"{sb.crm_url}/rest/data/v2.0/xobjects/orderProduct/{case['crm_key']}", timeout=10, json={"data": {
        "unitPrice": float(raised), "amount": float(raised * d(case["quantity"]))}})
    assert r.json()["code"] == "200", r.text
    order = rows(sb.crm_db, 'select id, amount from "order" where id = ?', int(_crm_order(sb, case["crm_key"])))[0]
    r = s.patch(f"{sb.crm_url}/rest/data/v2.0/xobjects/order/{order['id']}", timeout=10, json={"data": {
        "amount": float(d(order["amount"]) + d(case["quantity"]))}})   # the order's total follows its line
    assert r.json()["code"] == "200", r.text
    run_flow("sales_orders", "so-raised")
    run_flow("approvals", "ap-raised")
    mine = {r["version"]: r for r in _approval_rows() if r["subject"] == case["subject"]}
    assert mine[old["version"]]["superseded"] == "yes" and str(raised.quantize(d("0.01"))) in mine
    # the approver decides the superseded request (approved at the lower price): recorded, not applied
    assert sb.oa("decide", requestId=int(old["request_id"]), action="approve")["decided"]
    run_flow("approvals", "ap-late")
    again = {r["version"]: r for r in _approval_rows() if r["subject"] == case["subject"]}
    assert again[old["version"]]["state"] == approvals.APPROVED and again[old["version"]]["superseded"] == "yes"
    crm = rows(sb.crm_db, 'select * from "orderProduct" where id = ?', int(case["crm_key"]))[0]
    assert crm["specialPriceApproval__c"] != old["request_id"]
    run_flow("sales_orders", "so-late")
    assert _u8_line(sb, _crm_order(sb, case["crm_key"]), case["crm_key"]) is None


def test_decisions_reach_the_crm_and_approved_orders_reach_u8_with_the_approved_price(world):
    sb = world
    cases = _cases()                                # all still held: nothing is decided yet
    sb.oa("advance", days=20)                       # the approvers work through three weeks
    run_flow("approvals", "ap-decided")
    run_flow("sales_orders", "so-approved")
    live = {r["subject"]: r for r in _approval_rows() if r["superseded"] is None}
    states = {r["state"] for r in live.values()}
    assert approvals.APPROVED in states and states & {approvals.REJECTED, approvals.RETURNED}
    unasked = [c for c in cases if c["subject"] not in live]      # their customer is not in the hub yet
    cases = [c for c in cases if c["subject"] in live]
    assert all(_u8_line(sb, _crm_order(sb, c["crm_key"]), c["crm_key"]) is None for c in unasked)

    def approved(c) -> bool:
        row = live[c["subject"]]
        return row["state"] == approvals.APPROVED and d(row["version"]) <= d(c["price"])

    credit = {r["subject"]: r for r in _approval_rows("over_credit") if r["superseded"] is None}
    orders: dict[str, list[dict]] = {}
    for c in cases:
        orders.setdefault(c["order_hub_id"], []).append(c)
    went = held = 0
    for c in cases:
        row = live[c["subject"]]
        crm = rows(sb.crm_db, 'select * from "orderProduct" where id = ?', int(c["crm_key"]))[0]
        u8 = _u8_line(sb, _crm_order(sb, c["crm_key"]), c["crm_key"])
        if approved(c):
            assert crm["specialPriceApproval__c"] == row["request_id"] and "已批准" in crm["specialPriceStatus__c"]
        else:
            assert row["state"] == approvals.PENDING or row["opinion"] in (crm["specialPriceStatus__c"] or "")
        over = credit.get(c["order_hub_id"])
        if all(approved(x) for x in orders[c["order_hub_id"]]) and not any(
                x["order_hub_id"] == c["order_hub_id"] for x in unasked) and (over is None or over["state"] == "approved"):
            assert u8 is not None and u8["cDefine22"] == row["request_id"]
            assert d(u8["iTaxUnitPrice"]) == d(c["price"]), "the approved price, not U8's list price"
            went += 1
        else:
            assert u8 is None
            held += 1
    assert went and held
    assert run_flow("approvals", "ap-quiet")["steps"][-1]["written"] == 0, "nothing changed: nothing written"


def test_a_dealer_reads_the_special_prices_approved_for_its_customer(world, monkeypatch):
    """The dealer ordering channel publishes what the OA approved: the dealer whose ERP customer is
    an approved request's customer reads that product at that price, with e-cology's number."""
    import json

    from plugins.hub_dealer_api import create_app
    from sandbox.dealer_portal import DealerPortal
    from sandbox.harness import loopback

    sb = world
    live = [r for r in _approval_rows() if r["superseded"] is None and r["state"] == approvals.APPROVED]
    assert live
    with store.engine().begin() as conn:
        x = model.xref.c
        links = [dict(r._mapping) for r in conn.execute(model.xref.select().where(
            x.entity == "customer", x.system.in_(["crm", "u8"])))]
    hub_of = {r["native_key"]: r["hub_id"] for r in links if r["system"] == "crm"}
    code_of = {r["hub_id"]: r["native_key"] for r in links if r["system"] == "u8"}
    row = next(r for r in live if code_of.get(hub_of.get(r["subject"].split("|")[0])))
    code = code_of[hub_of[row["subject"].split("|")[0]]]
    accounts = {a for a, h in hub_of.items() if h == hub_of[row["subject"].split("|")[0]]}
    key = sb.credentials()["dealers"]["D0001"]["key"]
    monkeypatch.setenv("AIRFLOW_CONN_DEALER_D0001", json.dumps(
        {"conn_type": "generic", "password": key, "extra": {"erp_customer": code}}))
    with loopback(create_app(emit=lambda *a: True), "/dealer-api") as base:
        got = DealerPortal(base, "dealers", "D0001", key).special_prices(on=row["decided_on"])
        later = DealerPortal(base, "dealers", "D0001", key).special_prices(on="2099-01-01")
    assert got.status_code == 200, got.text
    prices = {p["product_code"]: p for p in got.json()}
    mine = {r["subject"].split("|")[1] for r in live if r["subject"].split("|")[0] in accounts
            and str(r["valid_until"] or "9999") >= row["decided_on"]}
    assert set(prices) == mine
    product = row["subject"].split("|")[1]
    assert d(prices[product]["price"]) == d(row["version"]) and prices[product]["approval_no"] == row["request_id"]
    assert [r["requestid"] for r in _oa_requests(sb) if str(r["requestid"]) == row["request_id"]]   # e-cology's own
    assert later.status_code == 200 and later.json() == []         # past every approval's validity


def _u8_order_of_po(sb, po: str) -> dict | None:
    found = rows(sb.u8_db, "select * from SO_SOMain where cDefine11 = ? and cCloser is null", po)
    return found[0] if found else None


def test_an_order_over_credit_waits_for_its_approval_then_reaches_u8(world):
    sb = world
    with store.engine().begin() as conn:
        x = model.xref.c
        linked = {h: k for h, k in conn.execute(model.xref.select().with_only_columns(x.hub_id, x.native_key).where(
            x.entity == "customer", x.system == "u8"))}
        accounts = [(k, linked[h]) for h, k in conn.execute(model.xref.select().with_only_columns(x.hub_id, x.native_key)
                                                              .where(x.entity == "customer", x.system == "crm")) if h in linked]
    account, code = sorted(accounts)[0]
    product = rows(sb.crm_db, 'select * from "product" where coalesce(hubId__c, \'\') != \'\' order by id limit 1')[0]
    con = sqlite3.connect(sb.u8_db)
    with con:   # finance lowers the customer's credit line in U8: 1 000 yuan, controlled
        con.execute("update Customer set bCredit = 1, iCusCreLine = 1000 where cCusCode = ?", (code,))
    con.close()
    price = d(product["priceUnit"])
    s = sb.crm_session()
    po = "PO-CREDIT-0001"
    r = s.post(f"{sb.crm_url}/rest/data/v2.0/xobjects/order", timeout=10, json={"data": {
        "po": po, "accountId": int(account), "status": 2, "orderDate": "2025-06-20", "amount": float(price * 3)}})
    order_id = r.json()["data"]["id"]
    r = s.post(f"{sb.crm_url}/rest/data/v2.0/xobjects/orderProduct", timeout=10, json={"data": {
        "orderId": order_id, "productId": product["id"], "quantity": 3, "unitPrice": float(price), "discount__c": 0,
        "taxRate__c": product["taxRate__c"], "amount": float(price * 3)}})
    assert r.json()["code"] == "200", r.text
    run_flow("sales_orders", "so-credit-1")
    assert _u8_order_of_po(sb, po) is None
    with store.engine().begin() as conn:
        o = model.outbox.c
        why = conn.execute(model.outbox.select().with_only_columns(o.status, o.last_error).where(
            o.entity == "sales_order", o.hub_id == order_hub_id(str(order_id)))).first()
    assert why.status == "waiting" and "超信用" in why.last_error and "available credit" in why.last_error
    run_flow("approvals", "ap-credit-1")
    asked = [r for r in _oa_requests(sb, "102") if po in r["requestname"]]
    assert len(asked) == 1
    crm = rows(sb.crm_db, 'select creditApproval__c from "order" where id = ?', order_id)[0]
    assert "超信用审批中" in crm["creditApproval__c"]
    assert sb.oa("decide", requestId=asked[0]["requestid"], action="approve", remark="同意，月底前回款")["decided"]
    run_flow("approvals", "ap-credit-2")
    assert "超信用已批准" in rows(sb.crm_db, 'select creditApproval__c from "order" where id = ?', order_id)[0][
        "creditApproval__c"]
    run_flow("sales_orders", "so-credit-2")
    assert _u8_order_of_po(sb, po) is not None, "approved: the order reaches U8"
    run_flow("approvals", "ap-credit-3")
    assert len([r for r in _oa_requests(sb, "102") if po in r["requestname"]]) == 1
