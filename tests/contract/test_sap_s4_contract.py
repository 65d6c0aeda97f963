"""SAP S/4HANA contract: what the OData V2 connector relies on, each test naming the documented
behaviour. Runs against the ``sap_s4`` connection (a real system when configured, else the
sandbox). Write checks need ``"contract_writes": true`` in its extra (a test client). Business
partners cannot be deleted (``sap:deletable="false"``), so the write check makes one sales order
with one fixed PurchaseOrderByCustomer: every run finds the same order, and leaves it rejected.
Extra keys for the kit: ``contract_sold_to`` and ``contract_material`` (what the test order
uses; default the first customer and product read), ``contract_options`` (the erp binding's
org data, default the sandbox's).
"""
from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

import pytest

from connectors.sap_s4 import SapS4Connector
from connectors.sap_s4_erp import SapS4Erp
from hub.errors import ConfigurationError, DataError
from hub.types import Binding
from tests.contract.conftest import needs_writes

CONNECTIONS = ("sap_s4",)
S4 = "sap_s4"
CONTRACT_PO = "HUB-CONTRACT-ORDER-1"
OPTIONS = {"sales_org": "1310", "distribution_channel": "10", "division": "00", "order_type": "OR",
           "rejection_reason": "10"}


def _connector(target, columns=None) -> SapS4Connector:
    return SapS4Connector(target.conns[S4], columns or {"A_BusinessPartner": ["OrganizationBPName1"]})


def _read_all(connector, stream, cursor=None) -> tuple[list[dict], list]:
    pages = list(connector.read(stream, cursor))
    return [r for p in pages for r in p.records], [p.cursor for p in pages]


def test_auth_basic_login_and_a_csrf_token_fetched_with_get(target):
    """HTTP Basic with sap-client; GET (not HEAD) ``X-CSRF-Token: Fetch`` on each service root
    answers a token (protocol notes §2, §3)."""
    _connector(target).check()


def test_a_wrong_password_is_a_configuration_error_naming_the_connection(target):
    conn = target.conns[S4]
    bad = replace(conn, password="not-the-password-" + uuid.uuid4().hex[:6])
    with pytest.raises(ConfigurationError) as exc:
        SapS4Connector(bad).check()
    assert S4 in str(exc.value) and bad.password not in str(exc.value)


def test_paging_follows_next_to_the_end_with_every_partner_once(target):
    """Server-driven paging: ``d.__next`` ($skiptoken) until absent; ``$inlinecount=allpages``
    (the connector refuses a walk that ends short of the announced ``__count``)."""
    records, cursors = _read_all(_connector(target), "A_BusinessPartner")
    keys = [r["BusinessPartner"] for r in records]
    assert keys and len(keys) == len(set(keys))
    assert all(c is None for c in cursors[:-1]) and cursors[-1] and cursors[-1]["since"]


def test_an_incremental_read_by_date_and_time_misses_nothing_changed_since(target):
    """A_BusinessPartner's LastChangeDate + LastChangeTime (and CreationDate + CreationTime for
    partners never changed): every partner changed at or after the watermark comes back."""
    connector = _connector(target)
    records, _ = _read_all(connector, "A_BusinessPartner")
    changed = {r["BusinessPartner"]: connector.changed_at("A_BusinessPartner", r) for r in records}
    moments = sorted(m for m in changed.values() if m)
    mark = moments[len(moments) // 2]
    since, _ = _read_all(connector, "A_BusinessPartner", {"since": mark.replace(tzinfo=None).isoformat()})
    got = {r["BusinessPartner"] for r in since}
    want = {k for k, m in changed.items() if m and m >= mark}
    assert want <= got and len(got) < len(records)


def test_an_incremental_read_by_change_stamp_is_a_datetimeoffset_filter(target):
    """A_Product's LastChangeDateTime (Edm.DateTimeOffset): ``gt datetimeoffset'…'``."""
    connector = SapS4Connector(target.conns[S4], {"A_Product": []})
    records, cursors = _read_all(connector, "A_Product")
    stamps = sorted(r["LastChangeDateTime"] for r in records if r.get("LastChangeDateTime"))
    mark = stamps[len(stamps) // 2]
    since, _ = _read_all(connector, "A_Product", {"since": mark})
    assert {r["Product"] for r in records if r["LastChangeDateTime"] > mark} <= {r["Product"] for r in since}


def test_the_error_envelope_of_a_missing_order_is_a_data_error_with_sap_message(target):
    """``{"error": {"code", "message": {"value"}}}`` on a 404: a data error carrying SAP's text."""
    connector = _connector(target)
    cli = connector.client("API_SALES_ORDER_SRV")
    with pytest.raises(DataError) as exc:
        cli.get(f"{cli.root}/A_SalesOrder('{uuid.uuid4().hex[:10].upper()}')")
    assert "404" in str(exc.value) and ":" in str(exc.value).split("404")[-1]


def test_a_create_repeated_with_its_purchase_order_by_customer_answers_the_same_order(target):
    """A deep insert with ``to_Item`` is looked up by PurchaseOrderByCustomer before it is sent:
    a repeat (as after a lost answer) finds the order, never makes a second; the census counts one.
    Then the order is cancelled the way the hub cancels: every item gets a reason for rejection."""
    needs_writes(target, S4)
    conn = target.conns[S4]
    erp = SapS4Erp(Binding("erp", "sap", "sap_s4", "SAP S/4HANA", {"api": S4},
                           {**OPTIONS, **(conn.extra.get("contract_options") or {})}, "contract", resolve=lambda _: conn))
    connector = erp.connector()
    sold_to = conn.extra.get("contract_sold_to") or _read_all(_connector(target), "A_BusinessPartner")[0][0]["BusinessPartner"]
    material = conn.extra.get("contract_material") or _read_all(SapS4Connector(conn, {"A_Product": []}), "A_Product")[0][0]["Product"]
    body = {"SoldToParty": sold_to, "PurchaseOrderByShipToParty": "HUB CONTRACT CHECK",
            "to_Item": [{"SalesOrderItem": 1, "Material": material, "RequestedQuantity": Decimal(1)}]}
    record = erp.order_document("add", "contract", None, body, CONTRACT_PO)
    first = connector.write("A_SalesOrder", [record])[0]
    second = connector.write("A_SalesOrder", [dict(record)])[0]
    assert first.status == second.status == "created" and first.native_key and second.native_key == first.native_key
    assert connector.census("A_SalesOrder", [record]) == {CONTRACT_PO: 1}
    cancel = erp.order_document("cancel", "contract", first.native_key, None, None)
    assert connector.write("A_SalesOrder", [cancel])[0].status == "updated"
    assert first.native_key in erp.order_state([first.native_key]).closed
