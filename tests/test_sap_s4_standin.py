"""The SAP S/4HANA OData V2 stand-in over real HTTP, driven with plain ``requests`` the way SAP
documents the protocol (never through the hub's connector): CSRF, server-driven paging,
``$inlinecount``, ``$filter`` on change times, deep inserts, ETags, the error envelope, the
warehouse and a fault that applies the write and loses the answer.
"""
from __future__ import annotations

import re
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from sandbox import sap_s4_seed
from sandbox.harness import Sandbox

ODATA = "/sap/opu/odata/sap"
BP = f"{ODATA}/API_BUSINESS_PARTNER"
SO = f"{ODATA}/API_SALES_ORDER_SRV"
DL = f"{ODATA}/API_OUTBOUND_DELIVERY_SRV;v=0002"
PRODUCT = f"{ODATA}/API_PRODUCT_SRV"


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path_factory.mktemp("sap") / "sandbox", accounts=20).seed().start()
    yield box
    box.stop()


class Client:
    """A session as an SAP client keeps one: Basic auth, JSON, the CSRF token and its cookies."""

    def __init__(self, sb: Sandbox) -> None:
        cred = sb.credentials()["sap_s4"]
        self.url = sb.sap_url
        self.s = requests.Session()
        self.s.auth = (cred["user"], cred["password"])
        self.s.headers["Accept"] = "application/json"
        self.s.params = {"sap-client": "100"}  # type: ignore[assignment]
        self.token = ""

    def fetch(self, service: str = SO) -> str:
        r = self.s.get(f"{self.url}{service}/", headers={"X-CSRF-Token": "Fetch"}, timeout=10)
        assert r.status_code == 200, r.text
        self.token = r.headers["x-csrf-token"]
        return self.token

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.s.get(f"{self.url}{path}", params=params, timeout=10)

    def write(self, method: str, path: str, body: Any, **headers: str) -> requests.Response:
        return self.s.request(method, f"{self.url}{path}", json=body, timeout=10,
                              headers={"X-CSRF-Token": self.token, **headers})


@pytest.fixture
def client(sb: Sandbox) -> Iterator[Client]:
    c = Client(sb)
    c.fetch()
    yield c
    requests.post(f"{sb.sap_url}/__sandbox/sap/page-size", json={"page_size": 1000}, timeout=10).raise_for_status()
    sb.faults(0.0, systems=("sap",))


def _partner(client: Client) -> str:
    return client.get(f"{BP}/A_BusinessPartner", **{"$top": 1}).json()["d"]["results"][0]["BusinessPartner"]


def _order(client: Client, sold_to: str, po: str, items: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    body = {"SalesOrderType": "OR", "SoldToParty": sold_to, "PurchaseOrderByCustomer": po, **extra,
            "to_Item": {"results": [{"Material": m, "RequestedQuantity": q} for m, q in items]}}
    r = client.write("POST", f"{SO}/A_SalesOrder", body)
    assert r.status_code == 201, r.text
    return r.json()["d"]


def _error(r: requests.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] and err["message"]["lang"] == "en" and err["message"]["value"]
    assert err["innererror"]["errordetails"][0]["message"] == err["message"]["value"]
    return err


def test_csrf_token_needs_get_and_its_cookie(sb: Sandbox) -> None:
    c = Client(sb)
    assert c.s.head(f"{sb.sap_url}{SO}/", headers={"X-CSRF-Token": "Fetch"}, timeout=10).status_code == 403
    token = c.fetch()
    assert {"SAP_SESSIONID_S4H_100", "sap-usercontext"} <= set(c.s.cookies.keys())
    body = {"SalesOrderType": "OR", "SoldToParty": _partner(c)}
    bare = requests.post(f"{sb.sap_url}{SO}/A_SalesOrder", json=body, auth=c.s.auth, timeout=10,
                         headers={"X-CSRF-Token": token, "Accept": "application/json"})  # the token without its cookie
    assert (bare.status_code, bare.headers["x-csrf-token"], bare.text) == (403, "Required", "CSRF token validation failed")
    r = c.s.post(f"{sb.sap_url}{SO}/A_SalesOrder", json=body, timeout=10)  # the cookie without the token
    assert (r.status_code, r.headers["x-csrf-token"]) == (403, "Required")
    assert requests.get(f"{sb.sap_url}{BP}/A_BusinessPartner", timeout=10).status_code == 401
    assert c.s.get(f"{sb.sap_url}{BP}/A_BusinessPartner", params={"sap-client": "200"}, timeout=10).status_code == 401


def test_paging_to_the_end_while_rows_change(sb: Sandbox, client: Client) -> None:
    requests.post(f"{sb.sap_url}/__sandbox/sap/page-size", json={"page_size": 3}, timeout=10).raise_for_status()
    before = {r["BusinessPartner"] for r in client.get(f"{BP}/A_BusinessPartner", **{"$top": 500}).json()["d"]["results"]}
    assert len(before) == 3  # $top is capped by the server page too
    total = int(client.get(f"{BP}/A_BusinessPartner/$count").text)
    r = client.get(f"{BP}/A_BusinessPartner", **{"$inlinecount": "allpages", "$select": "BusinessPartner"})
    seen: list[str] = []
    pages = 0
    while True:
        d = r.json()["d"]
        assert d["__count"] == str(total + (1 if pages else 0))
        seen += [row["BusinessPartner"] for row in d["results"]]
        pages += 1
        if pages == 1:  # change a row already served and one still ahead, add a new partner
            for number in (seen[0], f"{int(seen[-1]) + 2:010d}"):
                assert client.write("PATCH", f"{BP}/A_BusinessPartner('{number}')", {"SearchTerm2": "MOVED"}).status_code == 204
            assert client.write("POST", f"{BP}/A_BusinessPartner", {"OrganizationBPName1": "翻页新增有限公司"}).status_code == 201
        if "__next" not in d:
            break
        assert "$skiptoken=" in d["__next"]
        r = client.s.get(d["__next"], timeout=10)
    assert len(seen) == len(set(seen)) == total + 1 and pages == (total + 1 + 2) // 3


def test_count_refused_inlinecount_and_filter_errors(client: Client) -> None:
    err = _error(client.get(f"{SO}/A_SalesOrder", **{"$count": "true"}), 400)
    assert "$count" in err["message"]["value"]
    d = client.get(f"{PRODUCT}/A_Product", **{"$inlinecount": "allpages", "$top": 2}).json()["d"]
    assert d["__count"] == str(len(client.get(f"{PRODUCT}/A_Product").json()["d"]["results"])) and len(d["results"]) == 2
    for bad in ("LastChangeDateTime gt datetime'2025-01-01T00:00:00'",  # a DateTimeOffset wants datetimeoffset'…'
                "Product eq 1", "NoSuchField eq 'x'", "Product eq 'x' andd Product eq 'y'", "Product like 'x%'"):
        _error(client.get(f"{PRODUCT}/A_Product", **{"$filter": bad}), 400)
    _error(client.get(f"{SO}/A_SalesOrder('99999999')"), 404)


def test_filters_on_change_times(client: Client) -> None:
    products = client.get(f"{PRODUCT}/A_Product", **{"$expand": "to_Description"}).json()["d"]["results"]
    assert products[0]["to_Description"]["results"][0]["Language"] == "ZH"
    stamps = sorted(int(re.match(r"/Date\((\d+)\+0000\)/", p["LastChangeDateTime"]).group(1)) for p in products)
    middle = stamps[len(stamps) // 2]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle // 1000)) + f".{middle % 1000:03d}Z"
    newer = client.get(f"{PRODUCT}/A_Product", **{"$filter": f"LastChangeDateTime gt datetimeoffset'{iso}'"}).json()
    assert len(newer["d"]["results"]) == sum(1 for s in stamps if s > middle)
    # the business partner's compound date + time: change one, find exactly the changes since
    number = _partner(client)
    assert client.write("PATCH", f"{BP}/A_BusinessPartner('{number}')", {"SearchTerm2": "CHANGED"}).status_code == 204
    row = client.get(f"{BP}/A_BusinessPartner('{number}')").json()["d"]
    day = time.strftime("%Y-%m-%dT00:00:00", time.gmtime(int(row["LastChangeDate"][6:-2]) / 1000))
    since = (f"LastChangeDate gt datetime'{day}' or (LastChangeDate eq datetime'{day}' and "
             f"LastChangeTime ge time'{row['LastChangeTime']}')")
    found = {r["BusinessPartner"] for r in client.get(f"{BP}/A_BusinessPartner", **{"$filter": since}).json()["d"]["results"]}
    every = client.get(f"{BP}/A_BusinessPartner", **{"$select": "BusinessPartner,LastChangeDate,LastChangeTime"})
    mark = (row["LastChangeDate"][6:-2].rjust(15, "0"), row["LastChangeTime"])
    assert number in found and found == {r["BusinessPartner"] for r in every.json()["d"]["results"]
                                         if (r["LastChangeDate"][6:-2].rjust(15, "0"), r["LastChangeTime"]) >= mark}
    old = client.get(f"{BP}/A_BusinessPartner", **{"$filter": "LastChangeDate lt datetime'2025-07-01T00:00:00'"})
    assert number not in {r["BusinessPartner"] for r in old.json()["d"]["results"]}


def test_deep_insert_business_partner_with_uscc(client: Client) -> None:
    uscc = "91310000MA1FL0XQ6B"
    r = client.write("POST", f"{BP}/A_BusinessPartner", {
        "BusinessPartnerCategory": "2", "OrganizationBPName1": "上海深插测试有限公司",
        "to_BusinessPartnerRole": {"results": [{"BusinessPartnerRole": "FLCU01"}]},
        "to_BusinessPartnerAddress": {"results": [{"Country": "CN", "CityName": "上海", "StreetName": "徐汇区漕溪北路1号"}]},
        "to_BusinessPartnerTax": {"results": [{"BPTaxType": "CN5", "BPTaxNumber": uscc}]},
        "to_Customer": {"CustomerAccountGroup": "CUST"}})
    assert r.status_code == 201, r.text
    d = r.json()["d"]
    number = d["BusinessPartner"]
    assert re.fullmatch(r"\d{10}", number) and d["Customer"] == number and r.headers["location"].endswith(f"('{number}')")
    assert d["to_BusinessPartnerTax"]["results"][0]["BPTaxNumber"] == uscc
    got = client.get(f"{BP}/A_BusinessPartner('{number}')",
                     **{"$expand": "to_Customer,to_BusinessPartnerAddress,to_BusinessPartnerTax"}).json()["d"]
    assert got["to_Customer"]["TaxNumber5"] == uscc and got["to_BusinessPartnerAddress"]["results"][0]["Country"] == "CN"
    taxes = client.get(f"{BP}/A_BusinessPartnerTaxNumber", **{"$filter": f"BPTaxNumber eq '{uscc}'"}).json()["d"]["results"]
    assert [(t["BusinessPartner"], t["BPTaxType"]) for t in taxes] == [(number, "CN5")]
    _error(client.write("POST", f"{BP}/A_BusinessPartner", {"OrganizationBPName1": "x", "NoSuchField": "1"}), 400)


def test_sales_order_deep_insert_etag_and_rejection(client: Client) -> None:
    sold_to = _partner(client)
    order = _order(client, sold_to, "PO-ETAG-1", [("0101001", "2"), ("0201001", "4")],
                   to_Partner={"results": [{"PartnerFunction": "SH", "Customer": sold_to}]})
    number, etag = order["SalesOrder"], order["__metadata"]["etag"]
    assert etag.startswith("W/\"datetimeoffset'") and len(order["to_Item"]["results"]) == 2
    path = f"{SO}/A_SalesOrder('{number}')"
    assert _error(client.write("PATCH", path, {"PurchaseOrderByCustomer": "PO-ETAG-2"}), 428)
    assert client.write("PATCH", path, {"PurchaseOrderByCustomer": "PO-ETAG-2"}, **{"If-Match": etag}).status_code == 204
    _error(client.write("PATCH", path, {"PurchaseOrderByCustomer": "PO-ETAG-3"}, **{"If-Match": etag}), 412)
    fresh = client.get(path)
    assert fresh.json()["d"]["PurchaseOrderByCustomer"] == "PO-ETAG-2" and fresh.headers["etag"] != etag
    item = f"{SO}/A_SalesOrderItem(SalesOrder='{number}',SalesOrderItem='20')"
    _error(client.write("PATCH", item, {"SalesDocumentRjcnReason": "03"}), 428)
    r = client.write("PATCH", item, {"SalesDocumentRjcnReason": "03"}, **{"If-Match": fresh.headers["etag"]})
    assert r.status_code == 204, r.text
    head = client.get(path, **{"$expand": "to_Item"}).json()["d"]
    items = {i["SalesOrderItem"]: i for i in head["to_Item"]["results"]}
    assert head["OverallSDDocumentRejectionSts"] == "B" and items["20"]["SalesDocumentRjcnReason"] == "03"
    assert head["TotalNetAmount"] == items["10"]["NetAmount"]
    _error(client.write("POST", f"{SO}/A_SalesOrder", {"SalesOrderType": "OR", "SoldToParty": "9999999999"}), 400)


def test_ship_creates_deliveries_referencing_the_order(sb: Sandbox, client: Client) -> None:
    sold_to = _partner(client)
    orders = [_order(client, sold_to, f"PO-SHIP-{n}", [("0101001", "4"), ("0201001", "3")]) for n in range(4)]
    rejected = orders[0]
    item = f"{SO}/A_SalesOrderItem(SalesOrder='{rejected['SalesOrder']}',SalesOrderItem='10')"
    etag = client.get(f"{SO}/A_SalesOrder('{rejected['SalesOrder']}')").headers["etag"]
    assert client.write("PATCH", item, {"SalesDocumentRjcnReason": "03"}, **{"If-Match": etag}).status_code == 204
    first, second, third = sb.sap_ship(), sb.sap_ship(), sb.sap_ship()
    assert first["deliveries"] >= 4 and third["deliveries"] == 0 and first["partial"] == second["deliveries"]
    for o in orders:
        numbers = o["SalesOrder"]
        lines = client.get(f"{DL}/A_OutbDeliveryItem", **{"$filter": f"ReferenceSDDocument eq '{numbers}'"}).json()
        shipped: dict[str, float] = {}
        for line in lines["d"]["results"]:
            shipped[line["ReferenceSDDocumentItem"]] = shipped.get(line["ReferenceSDDocumentItem"], 0) + float(
                line["ActualDeliveryQuantity"])
        want = {"20": 3.0} if o is rejected else {"10": 4.0, "20": 3.0}
        assert shipped == want
        head = client.get(f"{SO}/A_SalesOrder('{numbers}')").json()["d"]
        assert head["OverallTotalDeliveryStatus"] == "C"
    dl = client.get(f"{DL}/A_OutbDeliveryHeader", **{"$expand": "to_DeliveryDocumentItem", "$top": 1}).json()["d"]["results"][0]
    assert dl["to_DeliveryDocumentItem"]["results"][0]["DeliveryDocument"] == dl["DeliveryDocument"]
    # a serialised material's units carry serial numbers, reached through the item only (not addressable)
    nav = "to_SerialDeliveryItem/to_MaintenanceItemObject"
    items = client.get(f"{DL}/A_OutbDeliveryItem", **{"$expand": nav, "$filter": f"ReferenceSDDocument eq '{orders[1]['SalesOrder']}'"}
                       ).json()["d"]["results"]
    serials: dict[str, list[str]] = {}   # over every delivery of the order (a split one ships 2 + 2)
    for it in items:
        if it["to_SerialDeliveryItem"]:
            serials.setdefault(it["Material"], []).extend(
                o["SerialNumber"] for o in it["to_SerialDeliveryItem"]["to_MaintenanceItemObject"]["results"])
    assert {m: len(v) for m, v in serials.items()} == {"0101001": 4} and len(set(serials["0101001"])) == 4
    assert all(it["to_SerialDeliveryItem"] is None for it in items if it["Material"] == "0201001")
    _error(client.get(f"{DL}/A_SerialNmbrDelivery"), 501)


def test_lost_answer_after_the_write_and_an_expired_token(sb: Sandbox, client: Client) -> None:
    sold_to = _partner(client)
    sb.faults(1.0, kinds=["lost"], systems=("sap",))
    body = {"SalesOrderType": "OR", "SoldToParty": sold_to, "PurchaseOrderByCustomer": "PO-LOST-1",
            "to_Item": {"results": [{"Material": "0101001", "RequestedQuantity": "1"}]}}
    assert client.write("POST", f"{SO}/A_SalesOrder", body).status_code == 504
    sb.faults(0.0, systems=("sap",))
    found = client.get(f"{SO}/A_SalesOrder", **{"$filter": "PurchaseOrderByCustomer eq 'PO-LOST-1'"}).json()["d"]["results"]
    assert len(found) == 1  # the order was created though its answer was lost
    sb.faults(1.0, kinds=["expire_token"], systems=("sap",))
    r = client.write("POST", f"{SO}/A_SalesOrder", body)
    sb.faults(0.0, systems=("sap",))
    assert (r.status_code, r.headers["x-csrf-token"]) == (403, "Required")
    assert client.write("POST", f"{SO}/A_SalesOrder", body).status_code == 403  # that token is dead now
    client.fetch()
    assert client.write("POST", f"{SO}/A_SalesOrder", body).status_code == 201


def test_seed_is_the_u8_world(sb: Sandbox, tmp_path: Path) -> None:
    u8 = sqlite3.connect(sb.u8_db)
    s4 = sqlite3.connect(f"file:{sb.sap_s4_db}?mode=ro", uri=True)
    customers = u8.execute("SELECT cCusCode, cCusName, cCusRegCode FROM Customer").fetchall()
    partners = dict(s4.execute('SELECT "BusinessPartnerIDByExtSystem", "BusinessPartner" FROM "A_BusinessPartner" '
                               "WHERE \"CreatedByUser\" = 'MIGRATION'").fetchall())
    assert set(partners) == {c for c, _, _ in customers}
    taxes = dict(s4.execute('SELECT "BusinessPartner", "BPTaxNumber" || "BPTaxLongNumber" FROM '
                            '"A_BusinessPartnerTaxNumber" WHERE "BPTaxType" = \'CN5\'').fetchall())
    for code, name, reg in customers:
        assert taxes.get(partners[code]) == (reg or None)  # missing stays missing, odd ones as typed
        names = s4.execute('SELECT "OrganizationBPName1" || "OrganizationBPName2" || "OrganizationBPName3" FROM '
                           '"A_BusinessPartner" WHERE "BusinessPartner" = ?', (partners[code],)).fetchone()[0]
        assert names == name
    products = {r[0] for r in s4.execute('SELECT "Product" FROM "A_Product"')}
    assert products == {r[0] for r in u8.execute("SELECT cInvCode FROM Inventory")}
    # U8 orders and dispatches (none in a fresh seed) come across with their references
    copy = tmp_path / "u8.db"
    copy.write_bytes(sb.u8_db.read_bytes())
    c = sqlite3.connect(copy)
    code, inv = customers[0][0], sorted(products)[0]
    c.execute("INSERT INTO SO_SOMain (ID, cSOCode, cCusCode, dDate, cDefine11, cBusType, cSTCode, cDepCode, "
              "cexch_name) VALUES (1, '0000000001', ?, '2025-06-01 00:00:00.000', 'DD2025', '普通销售', '01', '03', "
              "'人民币')", (code,))
    c.execute("INSERT INTO SO_SODetails (AutoID, iSOsID, ID, cSOCode, cInvCode, iQuantity, iMoney, iRowNo, iFHQuantity) "
              "VALUES (1, 1, 1, '0000000001', ?, 5, 100, 1, 2)", (inv,))
    c.execute("INSERT INTO DispatchList (DLID, cDLCode, cSOCode, cCusCode, dDate, cVouchType, cBusType, cSTCode, "
              "cDepCode, cexch_name) VALUES (1, '0000000001', '0000000001', ?, '2025-06-02 00:00:00.000', '05', "
              "'普通销售', '01', '03', '人民币')", (code,))
    c.execute("INSERT INTO DispatchLists (AutoID, iDLsID, DLID, cInvCode, iQuantity, iSOsID, irowno) "
              "VALUES (1, 1, 1, ?, 2, 1, 1)", (inv,))
    c.commit()
    c.close()
    sap_s4_seed.write(copy, tmp_path / "sap_s4.db", 42)
    out = sqlite3.connect(tmp_path / "sap_s4.db")
    order = out.execute('SELECT "SalesOrder", "PurchaseOrderByCustomer", "OverallTotalDeliveryStatus" FROM "A_SalesOrder"').fetchall()
    assert [(o[1], o[2]) for o in order] == [("DD2025", "B")]
    refs = out.execute('SELECT "ReferenceSDDocument", "ReferenceSDDocumentItem", "ActualDeliveryQuantity" '
                       'FROM "A_OutbDeliveryItem"').fetchall()
    assert refs == [(order[0][0], "10", "2")]


def _expanded(d: dict[str, Any], nav: str) -> list[dict[str, Any]]:
    value = d[nav]
    return value["results"] if isinstance(value, dict) and "results" in value else [value]


def test_select_paths_through_expanded_navigations(sb: Sandbox, client: Client) -> None:
    phones = dict(sqlite3.connect(sb.u8_db).execute("SELECT cCusCode, cCusPhone FROM Customer"))
    nav = "to_BusinessPartnerAddress"
    r = client.get(f"{BP}/A_BusinessPartner", **{
        "$select": f"BusinessPartnerIDByExtSystem,{nav}/StreetName,{nav}/to_PhoneNumber/PhoneNumber",
        "$expand": f"{nav},{nav}/to_PhoneNumber", "$filter": "CreatedByUser eq 'MIGRATION'"})
    assert r.status_code == 200, r.text
    for bp in r.json()["d"]["results"]:
        assert set(bp) == {"__metadata", "BusinessPartnerIDByExtSystem", nav}
        [address] = _expanded(bp, nav)
        assert set(address) == {"__metadata", "StreetName", "to_PhoneNumber"}
        numbers = [p["PhoneNumber"] for p in _expanded(address, "to_PhoneNumber")]
        assert numbers == ([phones[bp["BusinessPartnerIDByExtSystem"]][:30]]
                           if (phones[bp["BusinessPartnerIDByExtSystem"]] or "").strip() else [])
    whole = client.get(f"{BP}/A_BusinessPartner", **{"$top": 1, "$select": f"BusinessPartner,{nav}",
                                                      "$expand": f"{nav},{nav}/to_PhoneNumber"}).json()["d"]["results"][0]
    assert "Country" in _expanded(whole, nav)[0] and "to_PhoneNumber" in _expanded(whole, nav)[0]
    deferred = client.get(f"{BP}/A_BusinessPartner", **{"$top": 1, "$select": nav}).json()["d"]["results"][0]
    assert set(deferred[nav]) == {"__deferred"}
    err = _error(client.get(f"{BP}/A_BusinessPartner", **{"$select": f"{nav}/StreetName"}), 400)
    assert "$expand" in err["message"]["value"]  # a path through a navigation needs it expanded
    _error(client.get(f"{BP}/A_BusinessPartner", **{"$select": f"{nav}/NoSuch", "$expand": nav}), 400)


def test_product_sales_status_and_tax_classification_come_from_u8(sb: Sandbox, client: Client) -> None:
    u8 = {r[0]: r[1:] for r in sqlite3.connect(sb.u8_db).execute("SELECT cInvCode, iTaxRate, bSale, dEDate FROM Inventory")}
    r = client.get(f"{PRODUCT}/A_Product", **{
        "$select": "Product,to_ProductSales/SalesStatus,to_ProductSalesTax", "$expand": "to_ProductSales,to_ProductSalesTax"})
    assert r.status_code == 200, r.text
    classes = {0: "0", 13: "1", 17: "1", 9: "2", 6: "3"}
    for p in r.json()["d"]["results"]:
        rate, sale, end = u8[p["Product"]]
        [tax] = p["to_ProductSalesTax"]["results"]
        assert (tax["Country"], tax["TaxCategory"], tax["TaxClassification"]) == ("CN", "MWST", classes[int(rate)])
        assert p["to_ProductSales"]["SalesStatus"] == ("" if sale and end is None else "01")
    assert {int(v[0]) for v in u8.values()} >= {13, 6}


def test_deep_insert_address_communication_and_sales_area(client: Client) -> None:
    area = {"SalesOrganization": "1310", "DistributionChannel": "10", "Division": "00"}
    body = {"OrganizationBPName1": "上海销售范围测试有限公司",
            "to_BusinessPartnerRole": {"results": [{"BusinessPartnerRole": "FLCU01"}]},
            "to_BusinessPartnerAddress": {"results": [{
                "Country": "CN", "StreetName": "徐汇区漕溪北路3号",
                "to_PhoneNumber": {"results": [{"PhoneNumber": "021-64870000"}]},
                "to_MobilePhoneNumber": {"results": [{"PhoneNumber": "13800000000"}]},
                "to_EmailAddress": {"results": [{"EmailAddress": "sales@example.cn"}]}}]},
            "to_Customer": {"to_CustomerSalesArea": {"results": [{**area, "to_SalesAreaTax": {"results": [
                {"DepartureCountry": "CN", "CustomerTaxCategory": "MWST", "CustomerTaxClassification": "1"}]}}]}}}
    r = client.write("POST", f"{BP}/A_BusinessPartner", body)
    assert r.status_code == 201, r.text
    number = r.json()["d"]["BusinessPartner"]
    got = client.get(f"{BP}/A_BusinessPartner('{number}')", **{"$expand": ",".join((
        "to_BusinessPartnerAddress/to_PhoneNumber", "to_BusinessPartnerAddress/to_MobilePhoneNumber",
        "to_BusinessPartnerAddress/to_EmailAddress", "to_Customer/to_CustomerSalesArea/to_SalesAreaTax",
        "to_Customer/to_CustomerSalesArea/to_PartnerFunction"))}).json()["d"]
    [address] = got["to_BusinessPartnerAddress"]["results"]
    [phone], [mobile] = address["to_PhoneNumber"]["results"], address["to_MobilePhoneNumber"]["results"]
    assert (phone["PhoneNumber"], phone["OrdinalNumber"], phone["IsDefaultPhoneNumber"],
            phone["DestinationLocationCountry"], phone["AddressID"]) == ("021-64870000", "001", True, "CN", address["AddressID"])
    assert (mobile["PhoneNumber"], mobile["OrdinalNumber"]) == ("13800000000", "002")   # one range per address
    assert address["to_EmailAddress"]["results"][0]["EmailAddress"] == "sales@example.cn"
    [sales] = got["to_Customer"]["to_CustomerSalesArea"]["results"]
    assert (sales["Customer"], sales["Currency"]) == (number, "CNY")
    assert sales["to_SalesAreaTax"]["results"][0]["CustomerTaxClassification"] == "1"
    assert {(f["PartnerFunction"], f["BPCustomerNumber"]) for f in sales["to_PartnerFunction"]["results"]} == \
        {(f, number) for f in ("SP", "BP", "PY", "SH")}   # proposed: the customer in every sold-to role
    assert _order(client, number, "PO-AREA-1", [("0101001", "1")])["SalesOrganization"] == "1310"
    elsewhere = {**body, "OrganizationBPName1": "上海未定义销售范围有限公司",
                 "to_Customer": {"to_CustomerSalesArea": {"results": [{**area, "SalesOrganization": "1010"}]}}}
    assert "1010 10 00" in _error(client.write("POST", f"{BP}/A_BusinessPartner", elsewhere), 400)["message"]["value"]


def test_an_order_needs_the_sold_to_partys_sales_area(client: Client) -> None:
    r = client.write("POST", f"{BP}/A_BusinessPartner", {
        "OrganizationBPName1": "上海无销售范围有限公司", "to_BusinessPartnerRole": {"results": [{"BusinessPartnerRole": "FLCU01"}]}})
    number = r.json()["d"]["BusinessPartner"]
    order = {"SalesOrderType": "OR", "SoldToParty": number, "SalesOrganization": "1310", "DistributionChannel": "10",
             "OrganizationDivision": "00", "to_Item": {"results": [{"Material": "0101001", "RequestedQuantity": "1"}]}}
    err = _error(client.write("POST", f"{SO}/A_SalesOrder", order), 400)
    assert err["message"]["value"] == f"Sold-to party {number} not maintained for sales area 1310 10 00"
    seeded = _partner(client)
    _error(client.write("POST", f"{SO}/A_SalesOrder", {**order, "SoldToParty": seeded, "DistributionChannel": "20"}), 400)
    area = client.write("POST", f"{BP}/A_Customer('{number}')/to_CustomerSalesArea",
                        {"SalesOrganization": "1310", "DistributionChannel": "10", "Division": "00"})
    assert area.status_code == 201 and area.headers["location"].endswith(
        f"A_CustomerSalesArea(Customer='{number}',SalesOrganization='1310',DistributionChannel='10',Division='00')")
    assert client.write("POST", f"{SO}/A_SalesOrder", order).status_code == 201


def test_items_and_conditions_posted_to_an_existing_order(client: Client) -> None:
    order = _order(client, _partner(client), "PO-NAV-1", [("0101001", "2")])
    number, etag = order["SalesOrder"], order["__metadata"]["etag"]
    path = f"{SO}/A_SalesOrder('{number}')"
    r = client.write("POST", f"{path}/to_Item", {"Material": "0201001", "RequestedQuantity": "3", "to_PricingElement": {
        "results": [{"ConditionType": "PPR0", "ConditionRateValue": "12.5", "ConditionCurrency": "CNY"}]}})
    assert r.status_code == 201, r.text   # no If-Match on a create below the order
    item = r.json()["d"]
    assert (item["SalesOrderItem"], Decimal(item["NetAmount"])) == ("20", Decimal("37.5"))
    assert r.headers["location"].endswith(f"A_SalesOrderItem(SalesOrder='{number}',SalesOrderItem='20')")
    fresh = client.get(path).headers["etag"]
    assert fresh != etag and item["__metadata"]["etag"] == fresh
    first = f"{SO}/A_SalesOrderItem(SalesOrder='{number}',SalesOrderItem='10')"
    cond = client.write("POST", f"{first}/to_PricingElement", {"ConditionType": "PPR0", "ConditionRateValue": "7"})
    assert cond.status_code == 201, cond.text
    assert _error(client.write("POST", f"{first}/to_PricingElement", {"ConditionType": "PPR0",
                                                                        "ConditionRateValue": "8"}), 400)
    uri = cond.json()["d"]["__metadata"]["uri"]
    assert _error(client.s.patch(uri, json={"ConditionRateValue": "9"}, headers={"X-CSRF-Token": client.token},
                                 timeout=10), 428)
    patched = client.s.patch(uri, json={"ConditionRateValue": "9"}, timeout=10,
                             headers={"X-CSRF-Token": client.token, "If-Match": client.get(path).headers["etag"]})
    assert patched.status_code == 204, patched.text
    head = client.get(path, **{"$expand": "to_Item,to_Item/to_PricingElement"}).json()["d"]
    items = {i["SalesOrderItem"]: i for i in head["to_Item"]["results"]}
    assert Decimal(items["10"]["NetAmount"]) == 18 and Decimal(head["TotalNetAmount"]) == Decimal("55.5")
    assert Decimal(items["10"]["to_PricingElement"]["results"][0]["ConditionAmount"]) == 18
    _error(client.write("POST", f"{SO}/A_SalesOrderItemPrElement", {"SalesOrder": number}), 405)
    _error(client.write("POST", f"{first}/to_ScheduleLine", {}), 501)
