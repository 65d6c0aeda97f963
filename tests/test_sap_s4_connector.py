"""The S/4HANA connector and its erp seat against the sandbox's S/4 stand-in over real HTTP:
CSRF fetched again after it expired, paging to the end, an incremental read with its overlap,
deep inserts, a create whose answer is lost made once, changes with ETags, SAP's error
envelope in a failed result, and the seat's named lookups after the warehouse shipped.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterator

import pytest
import requests

from connectors.sap_s4 import SapS4Connector
from connectors.sap_s4.odata import PreconditionFailed
from connectors.sap_s4_erp import SapS4Erp, partner_reference
from hub.errors import ConfigurationError
from hub.types import Binding, ConnectionInfo
from sandbox.harness import Sandbox

SALES = "API_SALES_ORDER_SRV"
PRICE = "to_PricingElement[ConditionType=PPR0]/ConditionRateValue"
PARTNER_COLUMNS = ["OrganizationBPName1", "SearchTerm1", "to_BusinessPartnerAddress/StreetName",
                   "to_BusinessPartnerTax[BPTaxType=CN5]/BPTaxNumber"]


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path_factory.mktemp("sap") / "sandbox", accounts=20).seed().start()
    yield box
    box.stop()


@pytest.fixture
def conn(sb: Sandbox) -> Iterator[ConnectionInfo]:
    cred = sb.credentials()["sap_s4"]
    yield ConnectionInfo("sap_s4", host=sb.sap_url, login=cred["user"], password=cred["password"],
                         extra={"sap_client": "100", "scheme": "http"})
    requests.post(f"{sb.sap_url}/__sandbox/sap/page-size", json={"page_size": 1000}, timeout=10).raise_for_status()
    sb.faults(0.0, systems=("sap",))


def _erp(conn: ConnectionInfo, **options) -> SapS4Erp:
    # the stand-in's one sales area (its seeded customers have it; new ones get it deep-inserted)
    opts = {"sales_org": "1310", "distribution_channel": "10", "division": "00", "order_type": "OR",
            "rejection_reason": "10", **options}
    return SapS4Erp(Binding("erp", "sap", "sap_s4", "SAP S/4HANA", {"api": "sap_s4"}, opts, "test",
                            resolve=lambda _: conn))


def _page_size(sb: Sandbox, n: int) -> None:
    requests.post(f"{sb.sap_url}/__sandbox/sap/page-size", json={"page_size": n}, timeout=10).raise_for_status()


def _read(connector: SapS4Connector, stream: str, cursor=None) -> tuple[list[dict], list]:
    pages = list(connector.read(stream, cursor))
    return [r for p in pages for r in p.records], [p.cursor for p in pages]


def _partner(erp: SapS4Erp, name: str, uscc: str) -> dict:
    hub_id = str(uuid.uuid4())
    body = {"BusinessPartnerCategory": "2", "OrganizationBPName1": name, "SearchTerm1": "测试",
            "to_BusinessPartnerTax[BPTaxType=CN5]/BPTaxNumber": uscc,
            "to_BusinessPartnerAddress/Country": "CN", "to_BusinessPartnerAddress/StreetName": "徐汇区漕溪北路1号",
            "to_BusinessPartnerRole[BusinessPartnerRole=FLCU01]/BusinessPartnerRole": "FLCU01"}
    return erp.customer_document(hub_id, "add", None, body)


def _line(n: int, material: str, qty: str, price: str) -> dict:
    return {"SalesOrderItem": n, "Material": material, "RequestedQuantity": Decimal(qty), PRICE: Decimal(price)}


def _materials(connector: SapS4Connector, n: int) -> list[str]:
    return sorted(r["Product"] for r in _read(connector, "A_Product")[0])[:n]


def _order(erp: SapS4Erp, sold_to: str, lines: list[dict]) -> dict:
    hub_id = str(uuid.uuid4())
    body = {"SoldToParty": sold_to, "SalesOrderDate": "2026-11-30", "PurchaseOrderByShipToParty": "CRM-1",
            "to_Item": lines}
    return erp.order_document("add", hub_id, None, body, erp.idempotency_key(hub_id, 1))


def _placed(conn: ConnectionInfo, sold_to: str, *lines: tuple[str, str]):
    """An order of one line per (quantity, price), each of another material, created in SAP."""
    erp = _erp(conn)
    connector = erp.connector({"A_OutbDeliveryHeader": ["SoldToParty", "to_DeliveryDocumentItem/ReferenceSDDocument"]})
    m = _materials(connector, len(lines))
    record = _order(erp, sold_to, [_line(i + 1, m[i], q, p) for i, (q, p) in enumerate(lines)])
    [result] = connector.write("A_SalesOrder", [record])
    return erp, connector, m, record, result


def _held(connector: SapS4Connector, number: str) -> dict:
    cli = connector.client(SALES)
    return cli.get(f"{cli.root}/A_SalesOrder('{number}')", {"$expand": "to_Item,to_Item/to_PricingElement"}).body["d"]


def test_a_wrong_password_is_a_configuration_error_without_the_password(conn):
    bad = replace(conn, password="not-the-password-" + uuid.uuid4().hex[:6])
    with pytest.raises(ConfigurationError) as exc:
        SapS4Connector(bad).check()
    assert "401" in str(exc.value) and bad.password not in str(exc.value)


def test_an_expired_csrf_token_is_fetched_again_with_get_and_the_write_goes_through(sb, conn):
    erp = _erp(conn)
    connector = erp.connector()
    token = connector.client("API_BUSINESS_PARTNER").token()
    sb.faults(1.0, kinds=["expire_token"], systems=("sap",))   # the next call carrying it revokes it
    requests.get(f"{sb.sap_url}/sap/opu/odata/sap/API_BUSINESS_PARTNER/", headers={"X-CSRF-Token": token},
                 timeout=10)
    sb.faults(0.0, systems=("sap",))
    [result] = connector.write("A_BusinessPartner", [_partner(erp, "上海令牌过期测试有限公司", "91310000MA1FL0XQ6B")])
    assert result.status == "created" and result.native_key
    assert connector.client("API_BUSINESS_PARTNER").token() != token
    stats = requests.get(f"{sb.sap_url}/__sandbox/stats", timeout=10).json()
    assert stats["by_status"].get("403", 0) >= 1 and "HEAD" not in " ".join(stats["by_path"])


def test_paging_follows_next_to_the_end_and_only_the_last_page_carries_the_cursor(sb, conn):
    connector = SapS4Connector(conn, {"A_BusinessPartner": PARTNER_COLUMNS})
    everything, _ = _read(connector, "A_BusinessPartner")
    _page_size(sb, 3)
    records, cursors = _read(connector, "A_BusinessPartner")
    keys = [r["BusinessPartner"] for r in records]
    assert len(cursors) == -(-len(everything) // 3) > 2
    assert keys == sorted(keys) and set(keys) == {r["BusinessPartner"] for r in everything} and len(keys) == len(set(keys))
    assert cursors[:-1] == [None] * (len(cursors) - 1) and cursors[-1]["since"]
    assert all(r["OrganizationBPName1"] and r["__key"] == r["BusinessPartner"] for r in records)


def test_an_incremental_read_reaches_back_by_its_overlap_and_loses_nothing(sb, conn):
    erp = _erp(conn)
    connector = SapS4Connector(conn, {"A_BusinessPartner": PARTNER_COLUMNS})
    _, cursors = _read(connector, "A_BusinessPartner")
    mark = cursors[-1]
    quiet, after = _read(connector, "A_BusinessPartner", mark)
    # only what changed within the overlap before the watermark comes back, never the whole set
    assert after[-1]["since"] == mark["since"] and len(quiet) < 5
    [created] = connector.write("A_BusinessPartner", [_partner(erp, "上海增量读取测试有限公司", "91310000MA1FL0XQ7C")])
    changed, after = _read(connector, "A_BusinessPartner", mark)
    assert created.native_key in {r["BusinessPartner"] for r in changed}
    assert after[-1]["since"] >= mark["since"]
    # a watermark a minute after a change still finds it: the overlap (600 s) reaches back over it
    row = next(r for r in changed if r["BusinessPartner"] == created.native_key)
    made = datetime.fromisoformat(row["CreationDate"][:11] + row["CreationTime"])
    ahead = {"since": (made + timedelta(seconds=60)).isoformat()}
    assert created.native_key in {r["BusinessPartner"] for r in _read(connector, "A_BusinessPartner", ahead)[0]}
    none = SapS4Connector(replace(conn, extra={**conn.extra, "overlap_seconds": 0}), connector.columns)
    later = {"since": after[-1]["since"][:10] + "T23:59:59"}
    assert created.native_key not in {r["BusinessPartner"] for r in _read(none, "A_BusinessPartner", later)[0]}


def test_a_business_partner_is_deep_inserted_once_and_changed_in_place(conn):
    erp = _erp(conn)
    connector = erp.connector()
    record = _partner(erp, "上海深插连接器测试有限公司", "91310000MA1FL0XQ8D")
    [first] = connector.write("A_BusinessPartner", [record])
    [again] = connector.write("A_BusinessPartner", [dict(record)])   # a repeat finds it by the hub's reference
    assert first.status == again.status == "created" and again.native_key == first.native_key
    assert connector.census("A_BusinessPartner", [record]) == {partner_reference(record["_key"]): 1}
    assert erp.customers_by_tax_number(["91310000MA1FL0XQ8D"]) == {"91310000MA1FL0XQ8D": [first.native_key]}
    edit = erp.customer_document(record["_key"], "edit", first.native_key, {
        **{k: v for k, v in record.items() if not k.startswith("_")},
        "to_BusinessPartnerAddress/StreetName": "徐汇区漕溪北路2号"})
    assert connector.write("A_BusinessPartner", [edit])[0].status == "updated"
    [held] = connector.lookup("A_BusinessPartner", "BusinessPartner", [first.native_key], PARTNER_COLUMNS)
    assert held["to_BusinessPartnerAddress/StreetName"] == "徐汇区漕溪北路2号"
    assert held["to_BusinessPartnerTax[BPTaxType=CN5]/BPTaxNumber"] == "91310000MA1FL0XQ8D"
    assert held["BusinessPartnerIDByExtSystem"] == partner_reference(record["_key"])


def test_a_sales_order_is_deep_inserted_with_its_items_and_prices(conn):
    erp, connector, m, record, result = _placed(conn, "0001000001", ("2", "10.5"), ("3", "7.25"))
    held = _held(connector, result.native_key)
    assert result.status == "created" and held["PurchaseOrderByCustomer"] == record["PurchaseOrderByCustomer"]
    assert (held["SalesOrderType"], held["SalesOrganization"], held["SoldToParty"]) == ("OR", "1310", "0001000001")
    items = {i["SalesOrderItem"]: i for i in held["to_Item"]["results"]}
    assert {k: (i["Material"], Decimal(i["RequestedQuantity"])) for k, i in items.items()} == \
        {"1": (m[0], Decimal(2)), "2": (m[1], Decimal(3))}
    assert [Decimal(p["ConditionRateValue"]) for p in items["2"]["to_PricingElement"]["results"]
            if p["ConditionType"] == "PPR0"] == [Decimal("7.25")]


def test_a_create_whose_answer_is_lost_is_found_not_made_twice(sb, conn, caplog):
    caplog.set_level(logging.INFO, logger="connectors.sap_s4")
    erp = _erp(conn)
    connector = erp.connector()
    m = _materials(connector, 1)
    records = [_order(erp, "0001000002", [_line(1, m[0], "1", "5")]) for _ in range(4)]
    requests.delete(f"{sb.sap_url}/__sandbox/stats", timeout=10).raise_for_status()
    sb.faults(0.5, kinds=["lost"], seed=7, systems=("sap",))
    results = connector.write("A_SalesOrder", records)
    sb.faults(0.0, systems=("sap",))
    lost = requests.get(f"{sb.sap_url}/__sandbox/stats", timeout=10).json()["faults"].get("lost", 0)
    assert lost >= 2 and all(r.status == "created" and r.native_key for r in results)
    assert connector.census("A_SalesOrder", records) == {r["PurchaseOrderByCustomer"]: 1 for r in records}
    assert len({r.native_key for r in results}) == len(records)
    assert any("answer lost, the record was created" in r.getMessage() for r in caplog.records)   # a POST's 504
    posts = requests.get(f"{sb.sap_url}/__sandbox/stats", timeout=10).json()["by_path"]
    assert posts["POST /sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder"] == len(records)   # none sent twice


def test_a_change_is_patched_with_the_etag_and_a_cancel_rejects_every_item(conn):
    erp, connector, m, record, created = _placed(conn, "0001000003", ("2", "10"), ("3", "7"))
    number, hub_id = created.native_key, record["_key"]
    body = {k: v for k, v in record.items() if not k.startswith("_") and k not in ("PurchaseOrderByCustomer",)}
    change = erp.order_document("change", hub_id, number, {**body, "to_Item": [_line(1, m[0], "5", "10")]}, None)
    assert connector.write("A_SalesOrder", [change])[0].status == "updated"
    held = _held(connector, number)
    items = {i["SalesOrderItem"]: i for i in held["to_Item"]["results"]}
    assert Decimal(items["1"]["RequestedQuantity"]) == 5 and items["2"]["SalesDocumentRjcnReason"] == "10"
    assert connector.write("A_SalesOrder", [change])[0].status == "updated"   # again: nothing left to change
    cli = connector.client(SALES)
    stale = held["__metadata"]["etag"]
    cli.send("PATCH", f"{cli.root}/A_SalesOrder('{number}')", {"PurchaseOrderByShipToParty": "CRM-2"}, etag=stale)
    with pytest.raises(PreconditionFailed):   # the ETag moved on with that change
        cli.send("PATCH", f"{cli.root}/A_SalesOrder('{number}')", {"PurchaseOrderByShipToParty": "CRM-3"}, etag=stale)
    assert connector.write("A_SalesOrder", [erp.order_document("cancel", hub_id, number, None, None)])[0].status == "updated"
    assert erp.order_state([number]).closed[number].startswith("rejected")
    assert all(i["SalesDocumentRjcnReason"] for i in _held(connector, number)["to_Item"]["results"])


def test_sap_refusing_a_record_is_a_failed_result_with_its_message(conn):
    erp = _erp(conn)
    connector = erp.connector()
    m = _materials(connector, 1)
    bad = _order(erp, "9999999999", [_line(1, m[0], "1", "1")])
    good = _order(erp, "0001000004", [_line(1, m[0], "1", "1")])
    refused, made = connector.write("A_SalesOrder", [bad, good])
    assert refused.status == "failed" and refused.error_class == "data" and "9999999999" in refused.error
    assert "HTTP 4" in refused.error and made.status == "created"
    assert connector.census("A_SalesOrder", [bad]) == {bad["PurchaseOrderByCustomer"]: 0}


def test_the_seat_reads_deliveries_their_items_and_the_order_items_they_ship(sb, conn):
    erp, connector, m, _, order = _placed(conn, "0001000005", ("4", "3"), ("2", "3"))
    _, cursors = _read(connector, "A_OutbDeliveryHeader")
    assert sb.sap_ship()["deliveries"] >= 1
    sb.sap_ship()   # the warehouse ships some orders in two goes
    state = erp.order_state([order.native_key])
    assert state.shipped[order.native_key] == 6
    assert "deliveries" in erp.refusal("replace", order.native_key, state)
    heads, _ = _read(connector, "A_OutbDeliveryHeader", cursors[-1])
    mine = [h for h in heads if h["to_DeliveryDocumentItem/ReferenceSDDocument"] == order.native_key]
    assert mine and mine[0]["SoldToParty"] == "0001000005"
    lines = erp.dispatch_lines([h["DeliveryDocument"] for h in mine],
                               ["Material", "ActualDeliveryQuantity", "ReferenceSDDocument|ReferenceSDDocumentItem"])
    refs = sorted({r["ReferenceSDDocument|ReferenceSDDocumentItem"] for r in lines})   # a split ships an item twice
    assert refs == [f"{order.native_key}/1", f"{order.native_key}/2"]
    items = erp.order_lines(refs, ["Material", "RequestedQuantity"])
    assert sorted(i["__key"] for i in items) == refs and {i["Material"] for i in items} == set(m)


def test_a_customer_the_seat_creates_takes_an_order_at_once(conn):
    erp = _erp(conn)
    connector = erp.connector()
    [made] = connector.write("A_BusinessPartner", [_partner(erp, "上海销售范围连接器测试有限公司", "91310000MA1FL0XQ9E")])
    m = _materials(connector, 1)
    [order] = connector.write("A_SalesOrder", [_order(erp, made.native_key, [_line(1, m[0], "1", "2")])])
    assert order.status == "created", order.error   # the binding's sales area came with the partner
    bare = _erp(conn, customer_sales_area=False)
    [plain] = connector.write("A_BusinessPartner", [_partner(bare, "上海无销售范围连接器测试有限公司", "91310000MA1FL0XR0F")])
    [refused] = connector.write("A_SalesOrder", [_order(bare, plain.native_key, [_line(1, m[0], "1", "2")])])
    assert refused.status == "failed" and "not maintained for sales area 1310 10 00" in refused.error
