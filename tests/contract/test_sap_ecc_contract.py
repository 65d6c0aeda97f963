"""SAP ECC contract: the SOAP services the connector relies on, each test naming the behaviour.

Runs against the ``sap_ecc`` connection (a real client when configured, else the sandbox). The
sales area comes from the ECC seat of ``deploy/bindings.sap-ecc.yaml``. Write checks need
``"contract_writes": true`` in the extra (a test client); SAP offers no delete through these
services, so they use one fixed reference each: every contract run finds the same test customer
and the same test order instead of adding new ones. The order check needs a sellable material in
that sales area: ``"contract_material"`` in the extra (the sandbox's first one when it runs there).
"""
from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from connectors import SYSTEMS
from connectors.sap_ecc import SapEccConnector, alpha
from connectors.sap_ecc_erp import SapEccErp
from hub import bindings
from hub.errors import ConfigurationError
from tests.contract.conftest import needs_writes

CONNECTIONS = ("sap_ecc",)
ECC = "sap_ecc"
BINDINGS = Path(__file__).resolve().parents[2] / "deploy" / "bindings.sap-ecc.yaml"
CONTRACT_CUSTOMER = "hub-contract-customer-1"
CONTRACT_ORDER = "hub-contract-order-1"


def _erp(target) -> SapEccErp:
    seat = bindings.load(SYSTEMS, BINDINGS, resolve=lambda conn_id: target.conns[ECC])["erp"][0]
    return SapEccErp(seat)


def test_auth_basic_credentials_and_the_client_reach_every_read_service(target):
    """HTTP Basic with the connection's login and ``sap-client``: the customer query, GETDETAIL2,
    GETLIST and the material list answer, and a standard order service keeps a session (the
    create services are checked by the write checks)."""
    SapEccConnector(target.conns[ECC]).check()


def test_auth_a_wrong_password_is_a_configuration_error_without_the_password(target):
    """HTTP 401 from the ICF logon is a configuration error (no retry storm) that names no secret."""
    wrong = replace(target.conns[ECC], password="not-the-password-1")
    with pytest.raises(ConfigurationError) as exc:
        SapEccConnector(wrong).check()
    assert "401" in str(exc.value) and "not-the-password-1" not in str(exc.value)


def test_an_unknown_customer_is_a_return_error_under_http_200(target):
    """BAPI_CUSTOMER_GETDETAIL2 answers an unknown number with RETURN TYPE E, not a fault: the
    read reports it as a bad record with SAP's text."""
    (page,) = SapEccConnector(target.conns[ECC]).read("Customer", {"keys": ["9999999999"]})
    assert not page.records and page.bad and page.bad[0][0] == "9999999999"


def test_full_and_incremental_customer_reads_are_not_offered(target):
    """No change pointers through these services: only reads by key."""
    with pytest.raises(ConfigurationError):
        list(SapEccConnector(target.conns[ECC]).read("Customer", {"since": "2024-01-01"}))


def test_a_customer_create_repeated_finds_the_customer_it_made(target):
    """ZfmCustomerMasterCreate has no idempotency key: the hub's reference in search term 1, found
    by ECC_CUSTOMER002QR's CustomerKeyWordsText, makes a repeated create answer the same customer.
    Customer numbers come back in internal form (10 characters, leading zeros)."""
    needs_writes(target, ECC)
    erp = _erp(target)
    connector = erp.connector(write=True)
    record = erp.customer_document(CONTRACT_CUSTOMER, "add", None,
                                   {"CentralData.Address.Name": "HUB CONTRACT CHECK (do not use)"})
    first = connector.write(erp.customer_stream, [record])[0]
    second = connector.write(erp.customer_stream, [dict(record)])[0]
    assert first.status == second.status == "created" and first.native_key == second.native_key
    assert len(first.native_key) == 10 and first.native_key == alpha(first.native_key.lstrip("0"))
    assert connector.census(erp.customer_stream, [record]) == {record["_ref"]: 1}
    (page,) = connector.read(erp.customer_stream, {"keys": [first.native_key.lstrip("0")]})
    assert [r["CUSTOMERNO"] for r in page.records] == [first.native_key]


def test_the_material_list_answers_in_internal_form_and_each_detail_reads(target):
    """BAPI_MATERIAL_GETLIST lists materials (MATN1 internal numbers, 18 characters), MAXROWS
    bounds the answer, and BAPI_MATERIAL_GET_DETAIL reads each listed one (no RETURN E)."""
    connector = SapEccConnector(replace(target.conns[ECC], extra={**target.conns[ECC].extra, "material_page_size": 3}))
    first = next(iter(connector.read("Material", None)))
    assert first.records and not first.bad
    assert all(len(r["MATERIAL"]) == 18 or not r["MATERIAL"].isdigit() for r in first.records)
    assert all(r["MATERIAL_CODE"] for r in first.records)


def test_an_order_create_is_committed_and_found_by_its_po_number(target):
    """The order service commits: the Z wrapper itself, the standard BAPI through
    BAPI_TRANSACTION_COMMIT in the same stateful session (extra.order_commit says which). Right
    after the write, BAPI_SALESORDER_GETLIST lists the order under its PO number (PURCH_NO_C), and
    a repeated create finds it."""
    needs_writes(target, ECC)
    material = target.conns[ECC].extra.get("contract_material")
    if not material and target.sandbox is not None:
        with sqlite3.connect(target.sandbox.folder / "sap_ecc.db") as db:
            material = db.execute("SELECT matnr FROM mara ORDER BY matnr LIMIT 1").fetchone()[0]
    if not material:
        pytest.skip("the order write check needs extra.contract_material (a sellable material of the sales area)")
    erp = _erp(target)
    connector = erp.connector(write=True)
    customer = connector.write(erp.customer_stream, [erp.customer_document(
        CONTRACT_CUSTOMER, "add", None, {"CentralData.Address.Name": "HUB CONTRACT CHECK (do not use)"})])[0]
    if erp.order_commit == "standard":
        body = {"ORDER_PARTNERS[PARTN_ROLE=AG].PARTN_NUMB": customer.native_key,
                "ORDER_PARTNERS[PARTN_ROLE=WE].PARTN_NUMB": customer.native_key, "ORDER_HEADER_IN.PURCH_DATE": "2024-01-02",
                "ORDER_ITEMS_IN": [{"ITM_NUMBER": 1, "MATERIAL": material, "ORDER_SCHEDULES_IN[SCHED_LINE=0001].REQ_QTY": "1"}]}
    else:
        body = {"SOLD_TO_PARTY": customer.native_key, "CUST_PO_DATE": "2024-01-02",
                "IT_SO_ITEM": [{"MATERIAL": material, "QTY": "1", "_line_no": 1}]}
    order = erp.order_document("add", CONTRACT_ORDER, None, body, erp.idempotency_key(CONTRACT_ORDER, 0))
    first = connector.write(erp.order_stream, [order])[0]
    assert first.status == "created", first.error
    assert connector.orders_by_ref(order) == [first.native_key]
    assert connector.write(erp.order_stream, [dict(order)])[0].native_key == first.native_key
