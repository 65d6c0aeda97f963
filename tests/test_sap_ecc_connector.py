"""The SAP ECC connector and its erp-seat adapter against the sandbox's ECC stand-in (SOAP over
loopback, requests validated against the WSDLs' schemas): customers created and read back with
their leading zeros and found by USCC, orders through the standard BAPI committed in the same
session (special prices as PR00 conditions, RETURN E of the create or the commit a failed
result, a lost answer on the create or the commit found by its PO number instead of made twice)
and through the Z wrapper, materials read with the CRM's codes, answers carrying a DTD refused."""
from __future__ import annotations

import http.server
import json
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import requests

from connectors import SYSTEMS
from connectors.sap_ecc import SapEccConnector
from connectors.sap_ecc_erp import SapEccErp
from flows import order_documents
from hub import bindings, money
from hub.errors import AmbiguousWriteError, ConfigurationError, TransientError
from hub.types import ConnectionInfo, OrderState
from mappings import engine
from sandbox.faults import FaultConfig, Faults
from sandbox.harness import Sandbox

BINDINGS = Path(__file__).resolve().parents[1] / "deploy" / "bindings.sap-ecc.yaml"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    sb = Sandbox(tmp_path_factory.mktemp("ecc") / "sandbox", accounts=20).seed().start()
    yield sb
    sb.stop()


def connection(sb: Sandbox, **extra) -> ConnectionInfo:
    raw = json.loads(sb.connections()["AIRFLOW_CONN_SAP_ECC"])
    return ConnectionInfo("sap_ecc", raw["host"], login=raw["login"], password=raw["password"],
                          extra={**raw["extra"], "settle_seconds": 0, **extra})


def seat(sb: Sandbox, **extra) -> SapEccErp:
    conn = connection(sb, **extra)
    return SapEccErp(bindings.load(SYSTEMS, BINDINGS, resolve=lambda conn_id: conn)["erp"][0])


@pytest.fixture(scope="module")
def erp(world) -> SapEccErp:
    """The seat as the sandbox's connection binds it: orders through the standard BAPI."""
    return seat(world)


@pytest.fixture(scope="module")
def zerp(world) -> SapEccErp:
    """The seat on the reference Z wrapper (extra.order_commit wrapper)."""
    return seat(world, order_commit="wrapper")


def ecc_db(sb: Sandbox, sql: str, args: tuple = ()) -> list[tuple]:
    with sqlite3.connect(sb.folder / "sap_ecc.db") as db:
        return db.execute(sql, args).fetchall()


def customer_body(name: str, uscc: str) -> dict:
    """The customer.out mapping's output for one canonical customer."""
    mapped = engine.apply(engine.load_spec("sap_ecc_customer_out"),
                          pd.DataFrame([{"name": name, "uscc": uscc, "address": "浦东新区张江路 88 号", "phone": "021-5555"}]))
    assert mapped.errors.empty
    return {k: v for k, v in mapped.frame.drop(columns=["_row"]).iloc[0].items() if v is not None}


def a_material(sb: Sandbox) -> str:
    return ecc_db(sb, "SELECT matnr FROM mara WHERE sellable = 1 ORDER BY matnr LIMIT 1")[0][0]


def new_customer(erp: SapEccErp, hub_id: str) -> str:
    rec = erp.customer_document(hub_id, "add", None, customer_body(f"测试客户{hub_id[-3:]}有限公司", "91310000MA1FL0XX1X"))
    (res,) = erp.connector(write=True).write(erp.customer_stream, [rec])
    assert res.status == "created", res.error
    return res.native_key


def order_record(erp: SapEccErp, hub_id: str, customer: str, product: str, special: str | None = None) -> dict:
    """An order through the flows' own document builder and the ECC mappings, as sales_orders does."""
    heads = pd.DataFrame([{"hub_id": hub_id, "customer_key": "acc-1", "order_no": f"SO-{hub_id}",
                           "order_date": "2024-05-06", "memo": "", "total": "200.00"}])
    lines = pd.DataFrame([{"hub_id": f"{hub_id}:{n}", "order_hub_id": hub_id, "native_key": f"l{n}", "line_no": n,
                           "product_key": "p-1", "quantity": Decimal(q), "unit_price": Decimal("50"),
                           "tax_rate": Decimal("13"), "discount": None, "special_price_ref": special if n == 2 else None}
                          for n, q in ((2, "3"), (1, "1"))])
    bodies, problems = order_documents.payloads(
        heads, lines, pd.Series({hub_id: customer.lstrip("0")}), pd.Series({f"{hub_id}:1": product.lstrip("0"),
                                                                            f"{hub_id}:2": product.lstrip("0")}),
        erp.mapping("sales_order.out"), erp.mapping("sales_order_line.out"), erp.label)
    assert not problems
    return erp.order_document("add", hub_id, None, bodies[hub_id], erp.idempotency_key(hub_id, 0))


def test_a_created_customer_reads_back_by_its_number_with_leading_zeros(erp):
    number = new_customer(erp, "hub:customer:001")
    assert len(number) == 10 and number.startswith("0000") and number.isdigit()
    connector = erp.connector(write=True)
    again = connector.write(erp.customer_stream, [erp.customer_document("hub:customer:001", "add", None,
                                                                        customer_body("测试客户001有限公司", ""))])
    assert again[0].native_key == number                       # found by the hub's reference, not made twice
    rec = erp.customer_document("hub:customer:001", "add", None, {})
    assert connector.census(erp.customer_stream, [rec]) == {rec["_ref"]: 1}
    (page,) = connector.read(erp.customer_stream, {"keys": [number.lstrip("0"), "424242"]})
    assert [r["CUSTOMERNO"] for r in page.records] == [number]   # asked for without its zeros, found with them
    assert page.bad and "0000424242" in page.bad[0][1] and "does not exist" in page.bad[0][1]
    canonical = engine.apply(engine.load_spec(erp.mapping("customer.in")), pd.DataFrame(page.records)).frame
    assert canonical["name"].tolist() == ["测试客户001有限公司"] and canonical["_key"].tolist() == [number]


def test_a_standard_order_is_committed_in_its_session_once_with_its_tables(world, erp):
    customer, product = new_customer(erp, "hub:customer:002"), a_material(world)
    rec = order_record(erp, "hub:order:001", customer, product)
    assert erp.order_commit == "standard" and rec["ORDER_HEADER_IN.DOC_TYPE"] == "TA"
    assert [(i["ITM_NUMBER"], i["MATERIAL"]) for i in rec["ORDER_ITEMS_IN"]] == [("000001", product), ("000002", product)]
    assert [(s["ITM_NUMBER"], s["REQ_QTY"]) for s in rec["ORDER_SCHEDULES_IN"]] == [("000001", "1"), ("000002", "3")]
    assert {(p["PARTN_ROLE"], p["PARTN_NUMB"]) for p in rec["ORDER_PARTNERS"]} == {("AG", customer), ("WE", customer)}
    connector = erp.connector(write=True)
    first, second = connector.write(erp.order_stream, [rec]), connector.write(erp.order_stream, [rec])
    assert first[0].status == second[0].status == "created" and first[0].native_key == second[0].native_key
    assert len(first[0].native_key) == 10 and connector.census(erp.order_stream, [rec]) == {rec["_ref"]: 1}
    assert ecc_db(world, "SELECT bstkd FROM vbak WHERE vbeln = ?", (first[0].native_key,)) == [(rec["_ref"],)]
    assert world.stats()["ecc"]["ecc"]["sessions"]["pending"] == 0   # committed: nothing left in a session


def test_the_z_wrapper_still_takes_an_order_in_line_order_once(world, zerp):
    customer, product = new_customer(zerp, "hub:customer:012"), a_material(world)
    rec = order_record(zerp, "hub:order:011", customer, product)
    assert [i["QTY"] for i in rec["IT_SO_ITEM"]] == ["1", "3"] and rec["ORDER_TYPE"] == "TA"
    assert rec["SOLD_TO_PARTY"] == customer and rec["IT_SO_ITEM"][0]["MATERIAL"] == product  # ALPHA, MATN1
    connector = zerp.connector(write=True)
    first, second = connector.write(zerp.order_stream, [rec]), connector.write(zerp.order_stream, [rec])
    assert first[0].status == second[0].status == "created" and first[0].native_key == second[0].native_key
    assert connector.census(zerp.order_stream, [rec]) == {rec["_ref"]: 1}
    with pytest.raises(ConfigurationError, match="order_commit"):      # a wrapper record on the standard service
        erp_connector = seat(world).connector(write=True)
        erp_connector.write("SalesOrder", [rec])


@pytest.mark.parametrize("which", ["standard", "wrapper"])
def test_an_order_sap_refuses_is_a_failed_result_with_sap_s_message(world, erp, zerp, which):
    adapter = erp if which == "standard" else zerp
    rec = order_record(adapter, f"hub:order:002{which}", new_customer(adapter, f"hub:customer:003{which}"),
                       "NO-SUCH-MATERIAL")
    (res,) = adapter.connector(write=True).write(adapter.order_stream, [rec])
    assert res.status == "failed" and res.error_class == "data" and res.native_key is None
    assert "Material NO-SUCH-MATERIAL is not defined for sales org.1000" in res.error


def test_a_special_price_reaches_the_standard_order_as_its_pr00_condition_with_the_approval_text(world, erp):
    rec = order_record(erp, "hub:order:003", new_customer(erp, "hub:customer:004"), a_material(world), special="TJ-2024-7")
    assert [(c["ITM_NUMBER"], c["COND_TYPE"]) for c in rec["ORDER_CONDITIONS_IN"]] == [("000001", "PR00"), ("000002", "PR00")]
    assert [(t["ITM_NUMBER"], t["TEXT_ID"], t["TEXT_LINE"]) for t in rec["ORDER_TEXT"]] == [("000002", "Z001", "TJ-2024-7")]
    connector = erp.connector(write=True)
    (res,) = connector.write(erp.order_stream, [rec])
    assert res.status == "created", res.error
    net = str(money.dec(money.line_amounts(Decimal("3"), Decimal("50"), Decimal("13"), None).unit_price)
              .quantize(Decimal("0.01")))   # PR00 kept as KBETR: to the fen
    assert ecc_db(world, "SELECT posnr, kschl, kbetr FROM konv WHERE vbeln = ? ORDER BY posnr", (res.native_key,)) == [
        ("000001", "PR00", net), ("000002", "PR00", net)]
    assert ecc_db(world, "SELECT netpr FROM vbap WHERE vbeln = ? AND posnr = '000002'", (res.native_key,)) == [(net,)]
    assert ecc_db(world, "SELECT tdobject, tdname, tdid, tdline FROM stxl WHERE tdname LIKE ?", (res.native_key + "%",)) == [
        ("VBBP", res.native_key + "000002", "Z001", "TJ-2024-7")]


def test_the_z_wrapper_refuses_a_special_price_never_sending_it_at_sap_s_price(world, zerp):
    rec = order_record(zerp, "hub:order:013", new_customer(zerp, "hub:customer:014"), a_material(world), special="TJ-2024-8")
    connector = zerp.connector(write=True)
    (res,) = connector.write(zerp.order_stream, [rec])
    assert res.status == "failed" and "TJ-2024-8" in res.error and "ORDER_CONDITIONS_IN" in res.error
    assert connector.census(zerp.order_stream, [rec]) == {rec["_ref"]: 0}


def _seed(kind: str, pattern: list[str | None]) -> int:
    """A fault seed under which the stand-in's next calls draw ``pattern`` (None: served as asked;
    sandbox/faults.py draws the same sequence per seed)."""
    for seed in range(1, 5000):
        faults = Faults(FaultConfig(0.3, [kind], seed))
        if [faults.draw([kind]) for _ in pattern] == pattern:
            return seed
    raise AssertionError("no such seed")


def _write_under(world, connector, rec, kind: str, pattern: list[str | None]):
    before = world.stats()["ecc"]["faults"].get(kind, 0)
    world.faults(0.3, [kind], seed=_seed(kind, pattern), systems=("ecc",))
    try:
        (res,) = connector.write("SalesOrder", [rec])
    finally:
        world.faults(0.0, systems=("ecc",))
    assert world.stats()["ecc"]["faults"].get(kind, 0) == before + pattern.count(kind)
    return res


@pytest.mark.parametrize("which, kind, pattern", [
    # look-up, create (applied, answer lost: its session's cookie never arrived), look-up, create, commit
    ("standard", "lost", [None, "lost", None, None, None]),
    # look-up, create, commit (applied, answer lost), look-up finds it
    ("standard", "lost", [None, None, "lost", None]),
    # look-up, create, commit (refused before it ran: 502), look-up, create, commit in a new session
    ("standard", "502", [None, None, "502", None, None, None]),
    # the Z wrapper: look-up, create (applied, answer lost), look-up finds it
    ("wrapper", "lost", [None, "lost", None]),
])
def test_a_lost_answer_on_the_create_or_the_commit_is_looked_up_not_made_twice(world, erp, zerp, which, kind, pattern):
    adapter = erp if which == "standard" else zerp
    tag = f"{which}{len(pattern)}{kind}"
    rec = order_record(adapter, f"hub:order:004{tag}", new_customer(adapter, f"hub:customer:005{tag}"), a_material(world))
    connector = adapter.connector(write=True)
    res = _write_under(world, connector, rec, kind, pattern)
    assert res.status == "created" and res.native_key
    world_ecc = f"{world.ecc_url}/__sandbox/ecc/config"
    requests.post(world_ecc, json={"end_sessions": True}, timeout=10).raise_for_status()  # a stray LUW dies uncommitted
    assert connector.census(adapter.order_stream, [rec]) == {rec["_ref"]: 1}


def test_a_commit_sap_refuses_is_a_failed_result_and_nothing_is_kept(world, erp):
    rec = order_record(erp, "hub:order:005", new_customer(erp, "hub:customer:006"), a_material(world))
    connector = erp.connector(write=True)
    config = f"{world.ecc_url}/__sandbox/ecc/config"
    requests.post(config, json={"commit_fails": True}, timeout=10).raise_for_status()
    try:
        (res,) = connector.write(erp.order_stream, [rec])
    finally:
        requests.post(config, json={"commit_fails": False}, timeout=10).raise_for_status()
    assert res.status == "failed" and res.error_class == "data" and "S& 150" in res.error and "did not commit" in res.error
    assert connector.census(erp.order_stream, [rec]) == {rec["_ref"]: 0}
    assert world.stats()["ecc"]["ecc"]["sessions"]["pending"] == 0


def test_materials_read_whole_paged_and_by_key_carry_the_crm_s_product_codes(world, erp):
    mara = ecc_db(world, "SELECT matnr, u8_code, meins FROM mara ORDER BY matnr")
    with sqlite3.connect(world.folder / "u8.db") as u8:
        codes = {c for (c,) in u8.execute("SELECT cInvCode FROM Inventory")}
    connector = erp.connector(columns={"Material": []})
    pages = list(connector.read(erp.product_stream, None))
    records = [r for p in pages for r in p.records]
    assert [r["MATERIAL"] for r in records] == [m[0] for m in mara] and all(p.cursor is None for p in pages)
    assert all(r["MATERIAL_CODE"] in codes for r in records)
    zero_led = next(r for r in records if r["MATERIAL_CODE"].startswith("0"))
    assert zero_led["MATERIAL"] == zero_led["MATERIAL_CODE"].zfill(18)   # the CRM's code, not MATN1's output
    paged = seat(world, material_page_size=7).connector().read(erp.product_stream, None)
    assert [r["MATERIAL"] for p in paged for r in p.records] == [m[0] for m in mara]
    (again,) = connector.read(erp.product_stream, {"keys": [zero_led["MATERIAL_CODE"], "NO-SUCH-MATERIAL"]})
    assert [r["MATERIAL"] for r in again.records] == [zero_led["MATERIAL"]]
    (plain,) = seat(world, material_code="number").connector().read(erp.product_stream, {"keys": [zero_led["MATERIAL"]]})
    assert plain.records[0]["MATERIAL_CODE"] == zero_led["MATERIAL_CODE"].lstrip("0")
    mapped = engine.apply(engine.load_spec(erp.mapping("product.in")), pd.DataFrame(records))
    assert set(mapped.frame["code"]) <= codes and set(mapped.frame["_key"]) <= {m[0] for m in mara}
    assert set(mapped.frame["uom"]) <= {"PCS", "BOX", "KG", "M", "SET"} and mapped.frame["tax_rate"].isna().all()
    no_unit = {m[0] for m in mara if not m[2]}
    assert {records[r]["MATERIAL"] for r in mapped.errors["_row"]} == no_unit   # U8's 桶 has no SAP unit here


def test_customers_are_found_by_their_uscc_in_search_term_2(world, erp):
    uscc = "91310000MA1FL0XX1X"
    number = new_customer(erp, "hub:customer:007")   # customer_body puts this USCC in Sort2
    seeded_kunnr, seeded_tax = ecc_db(world, "SELECT kunnr, stcd5 FROM kna1 WHERE length(stcd5) = 18 ORDER BY kunnr")[0]
    found = erp.customers_by_tax_number([uscc, seeded_tax, "91110000000000000X", ""])
    assert number in found[uscc] and found[seeded_tax] == [seeded_kunnr] and "91110000000000000X" not in found


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Answers every SOAP call with an envelope that declares an external entity."""

    body = (b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>'
            b'<n0:BAPI_CUSTOMER_GETDETAIL2Response xmlns:n0="urn:sap-com:document:sap:rfc:functions">'
            b'<CUSTOMERADDRESS><NAME>&x;</NAME></CUSTOMERADDRESS></n0:BAPI_CUSTOMER_GETDETAIL2Response>'
            b'</soap-env:Body></soap-env:Envelope>')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


def test_an_answer_declaring_a_dtd_is_refused_never_expanded():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        conn = ConnectionInfo("sap_ecc", f"http://127.0.0.1:{srv.server_address[1]}", login="u", password="secret-pw",
                              extra={"attempts": 1, "settle_seconds": 0})
        connector = SapEccConnector(conn)
        with pytest.raises(TransientError) as read:
            list(connector.read("Customer", {"keys": ["1"]}))
        assert "DTD" in str(read.value) and "root:" not in str(read.value)
        with pytest.raises(AmbiguousWriteError) as write:  # a write's answer that cannot be trusted is a lost one
            connector.call("customer_detail", {"CUSTOMERNO": "0000000001"}, write=True)
        assert "refused" in str(write.value) and "secret-pw" not in str(write.value)
    finally:
        srv.shutdown()


def test_the_adapter_says_what_ecc_does_not_do_here(erp, zerp):
    assert erp.supports("customers") and erp.supports("sales_orders") and erp.supports("products")
    assert erp.mapping("product.in") == "sap_ecc_product_in"
    assert (erp.mapping("sales_order.out"), zerp.mapping("sales_order.out")) == (
        "sap_ecc_sales_order_out", "sap_ecc_zwrapper_sales_order_out")
    assert not any(erp.supports(c) for c in ("shipments", "receipts"))
    for purpose in ("shipment.in", "receipt.out"):
        with pytest.raises(ConfigurationError, match="S/4"):
            erp.mapping(purpose)
    for op in ("replace", "cancel"):
        assert "no sales order change or cancel service" in erp.refusal(op, "0000010001", OrderState())
    assert erp.refusal("add", "", OrderState()) is None
    with pytest.raises(ConfigurationError, match="change-pointer"):
        list(erp.connector().read(erp.customer_stream, None))
    with pytest.raises(ConfigurationError, match="not bound"):
        erp.dispatch_lines([1], ["x"])
    edit = erp.customer_document("hub:customer:001", "edit", "100001", {"CentralData.Address.Name": "x"})
    (res,) = erp.connector(write=True).write(erp.customer_stream, [edit])
    assert res.status == "failed" and "0000100001" in res.error and "no customer change service" in res.error
