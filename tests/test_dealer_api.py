"""The dealer ordering channel on loopback: signed orders become the hub's orders and reach U8; a
bad signature, a stale one and a replay are refused and store nothing; a bad order is refused with
the sales order suite's reason and quarantined; the OpenAPI document in docs/ is the API's own.

The dealer's side is sandbox/dealer_portal.py, which signs as docs/dealer_api.md says (its own
HMAC code); the server is the channel's FastAPI app under uvicorn, mounted at /dealer-api as Airflow's API server mounts it
(the dealer signs the full path, prefix included).
"""
from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from hub import model, store
from sandbox.dealer_portal import DealerPortal, catalogue, orders
from sandbox.harness import loopback
from tests.conftest import ordered_world
from tests.flowkit import query, run_flow

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.xdist_group("test_dealer_api")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from plugins.hub_dealer_api import create_app

    emitted: list[dict] = []
    with ordered_world(tmp_path_factory, "dealer") as sb, \
            loopback(create_app(emit=lambda entity, extra: emitted.append(extra) or True), "/dealer-api") as base:
        cred = sb.credentials()["dealers"]
        portal = {code: DealerPortal(base, "dealers", code, d["key"]) for code, d in cred.items()}
        with store.engine().begin() as conn:   # what the hub took from U8 (product_master quarantines a few)
            known = set(conn.exec_driver_sql("select native_key from xref where entity = 'product' "
                                             "and system = 'u8'").scalars())
        yield sb, portal, [i for i in catalogue(Path(sb.u8_db)) if i[0] in known], emitted


def _held(order_no: str) -> int:
    with store.engine().begin() as conn:
        return len(conn.execute(model.sales_order.select().where(model.sales_order.c.order_no == order_no)).all())


def test_a_signed_order_is_the_hubs_once_and_reaches_u8_under_the_dealers_customer(world):
    sb, portal, items, emitted = world
    order = orders("D0001", items, 1, seed=1)[0]
    first = portal["D0001"].order(order)
    assert first.status_code == 201, first.text
    hub_id = first.json()["hub_order_id"]
    for _ in range(40):                           # the asset event goes after the answer
        if emitted:
            break
        time.sleep(0.05)
    assert first.json()["outcome"] == "accepted" and emitted[-1]["hub_order_id"] == hub_id
    again = portal["D0001"].order(order)          # the answer was lost: the portal sends it again
    assert again.status_code == 200 and again.json() == {**first.json(), "outcome": "unchanged"}
    assert portal["D0001"].state(order["order_no"]).json()["state"] == "queued"

    run_flow("sales_orders", "dealer-so-1")
    state = portal["D0001"].state(order["order_no"]).json()
    assert state["state"] == "in_erp" and state["erp_order_no"], state
    head = query(sb.u8_db, "select cCusCode from SO_SOMain where cSOCode = ?", state["erp_order_no"])
    assert head == [("0100002",)]                 # the dealer's ERP customer (its connection's extra)
    lines = query(sb.u8_db, "select d.cInvCode, d.iQuantity, d.iSum from SO_SODetails d join SO_SOMain m "
                            "on m.ID = d.ID where m.cSOCode = ? order by d.cInvCode", state["erp_order_no"])
    want = sorted((ln["product_code"], Decimal(ln["quantity"]), Decimal(ln["amount"])) for ln in order["lines"])
    assert [(c, Decimal(str(q)), Decimal(str(s))) for c, q, s in lines] == want
    assert query(sb.u8_db, "select count(*) from SO_SOMain where cSOCode = ?", state["erp_order_no"]) == [(1,)]


def test_forged_stale_and_replayed_requests_are_refused_and_store_nothing(world):
    sb, portal, items, _ = world
    order = orders("D0002", items, 1, seed=2)[0]
    forged = DealerPortal(portal["D0002"].base, "dealers", "D0002", "not-the-dealers-key").order(order)
    assert forged.status_code == 401
    other = DealerPortal(portal["D0002"].base, "dealers", "D0009", "whatever").order(order)
    assert other.status_code == 401                # no such dealer: the same answer as a bad key
    stale = portal["D0002"].order(order, stamp=int(time.time()) - 900)
    assert stale.status_code == 401 and "stale" in stale.json()["detail"]
    assert _held(order["order_no"]) == 0
    ok = portal["D0002"].order(order, nonce="replayed-nonce-0001")
    assert ok.status_code == 201
    replay = portal["D0002"].order(order, nonce="replayed-nonce-0001")
    assert replay.status_code == 409
    tampered = portal["D0002"]
    body = json.dumps({**order, "total": "1.00"}).encode()
    headers = tampered.headers("POST", tampered.path("orders"), json.dumps(order, ensure_ascii=False).encode())
    origin = tampered.base.removesuffix("/dealer-api")
    cut = requests.post(f"{origin}{tampered.path('orders')}", data=body, headers=headers, timeout=10)
    assert cut.status_code == 401                  # a body changed after signing
    with store.engine().begin() as conn:
        r = model.dealer_request.c
        log = conn.execute(model.dealer_request.select().where(r.dealer == "D0002")).all()
    assert [(row.outcome, row.http_status) for row in log] == [("accepted", 201)]   # refusals claim no nonce


def test_a_bad_order_is_refused_with_the_suites_reason_quarantined_and_taken_once_corrected(world):
    sb, portal, items, _ = world
    bad = orders("D0001", items, 3, seed=3)[1]    # a line's amount a fen off
    refused = portal["D0001"].order(bad)
    assert refused.status_code == 422
    assert any("订单明细金额" in r for r in refused.json()["reasons"]), refused.json()
    state = portal["D0001"].state(bad["order_no"]).json()
    assert state["state"] == "refused" and state["reasons"]
    q = model.quarantine.c
    with store.engine().begin() as conn:
        held = conn.execute(model.quarantine.select().where(q.flow == "dealer_orders", q.status == "open")).all()
    assert [h.record_key for h in held] == [f"D0001:{bad['order_no']}"]
    shape = portal["D0001"].order({"order_no": "X1", "lines": []})
    assert shape.status_code == 422 and any("total" in r for r in shape.json()["reasons"])

    from sandbox.dealer_portal import _fen
    fixed = {**bad, "lines": [{**ln, "amount": str(_fen(Decimal(ln["quantity"]) * Decimal(ln["unit_price"])))}
                              for ln in bad["lines"]]}
    fixed["total"] = str(sum(Decimal(ln["amount"]) for ln in fixed["lines"]))
    taken = portal["D0001"].order(fixed)
    assert taken.status_code == 201
    assert portal["D0001"].state(bad["order_no"]).json()["state"] == "queued"
    with store.engine().begin() as conn:
        still = conn.execute(model.quarantine.select().where(q.flow == "dealer_orders", q.status == "open",
                                                             q.record_key == f"D0001:{bad['order_no']}")).all()
    assert still == []


def test_an_order_for_an_unknown_item_waits_with_the_reason_and_a_cancel_reaches_u8(world):
    sb, portal, items, _ = world
    batch = orders("D0002", items, 3, seed=4)
    unknown, good = batch[2], batch[0]
    assert portal["D0002"].order(unknown).status_code == 201
    assert portal["D0002"].order(good).status_code == 201
    run_flow("sales_orders", "dealer-so-2")
    waiting = portal["D0002"].state(unknown["order_no"]).json()
    assert waiting["state"] == "waiting" and "ZZ-9" in waiting["reasons"][0], waiting
    placed = portal["D0002"].state(good["order_no"]).json()
    assert placed["state"] == "in_erp", placed
    assert portal["D0002"].order({**good, "cancelled": True}).json()["outcome"] == "changed"
    run_flow("sales_orders", "dealer-so-3")
    closed = query(sb.u8_db, "select cCloser from SO_SOMain where cSOCode = ?", placed["erp_order_no"])
    assert closed and closed[0][0], closed            # U8 closed the order the dealer cancelled
    assert portal["D0002"].state(good["order_no"]).json()["state"] == "cancelled"


def test_the_published_openapi_document_is_the_apis_own():
    from plugins.hub_dealer_api import create_app

    published = json.loads((ROOT / "docs" / "dealer_api.openapi.json").read_text(encoding="utf-8"))
    assert published == json.loads(json.dumps(create_app(emit=lambda *a: True).openapi())), (
        "docs/dealer_api.openapi.json is stale: PYTHONPATH=. .venv/bin/python plugins/hub_dealer_api.py > docs/dealer_api.openapi.json")
