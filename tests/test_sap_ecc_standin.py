"""The SAP ECC stand-in over real HTTP on loopback, driven with raw requests and hand-written SOAP
envelopes (no zeep, no hub connector): schema checks, BAPI RETURN semantics, leading zeros,
the PO-number lookup, a create whose answer is lost, the standard BAPI's LUW kept in a session
until BAPI_TRANSACTION_COMMIT, the material list and detail, and search term 2."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
import uvicorn
from lxml import etree

from sandbox import sap_ecc_seed
from sandbox.faults import Faults
from sandbox.sap_ecc_app import create_sap_ecc_app
from sandbox.seed import seed

RFC = "/sap/bc/srt/rfc/sap"
CREATE_CUSTOMER = f"{RFC}/zsi_cmd_create_in/100/customermaster_v1/customercreate_v1"
FIND_CUSTOMER = "/sap/bc/srt/xip/sap/ECC_CUSTOMER002QR?sap-client=100"
GETDETAIL2 = f"{RFC}/zbapi_customer_getdetail2/100/zbapi_customer_getdetail2/zbapi_customer_getdetail2"
Z_CREATE = f"{RFC}/zws_bapi_salesorder_create/100/zws_bapi_salesorder_create_sev/zws_bapi_salesorder_create_binding"
CREATEFROMDAT2 = f"{RFC}/zbapi_salesorder_createfromdat/100/zbapi_salesorder_createfromdat/zbapi_salesorder_createfromdat"
GETLIST = f"{RFC}/zbapi_salesorder_getlist/100/zbapi_salesorder_getlist/zbapi_salesorder_getlist"
MATERIAL = f"{RFC}/zbapi_material/100/zbapi_material/zbapi_material"
COMMIT = f'<r:BAPI_TRANSACTION_COMMIT xmlns:r="urn:sap-com:document:sap:rfc:functions"><WAIT>X</WAIT></r:BAPI_TRANSACTION_COMMIT>'
ROLLBACK = '<r:BAPI_TRANSACTION_ROLLBACK xmlns:r="urn:sap-com:document:sap:rfc:functions"/>'
S11 = "http://schemas.xmlsoap.org/soap/envelope/"
S12 = "http://www.w3.org/2003/05/soap-envelope"
RFC_NS = "urn:sap-com:document:sap:rfc:functions"
MC_NS = "urn:sap-com:document:sap:soap:functions:mc-style"
WSDL = Path(__file__).resolve().parents[1] / "sandbox" / "sap_wsdl" / "customercreate_v1_ZFM_CUSTOMER_MASTER_CREATE.wsdl"


class Ecc:
    def __init__(self, base: str, auth: tuple[str, str], directory: Path) -> None:
        self.base, self.auth, self.directory = base, auth, directory

    def post(self, path: str, body: str, version: str = "1.1", auth: tuple[str, str] | None = None,
             via: requests.Session | None = None) -> requests.Response:
        ns, ctype = (S11, "text/xml; charset=utf-8") if version == "1.1" else (S12, "application/soap+xml; charset=utf-8")
        env = f'<e:Envelope xmlns:e="{ns}"><e:Header/><e:Body>{body}</e:Body></e:Envelope>'
        return (via or requests).post(self.base + path, data=env.encode("utf-8"), headers={"Content-Type": ctype},
                                      auth=auth or self.auth, timeout=10)

    def call(self, path: str, body: str, version: str = "1.1", via: requests.Session | None = None) -> etree._Element:
        resp = self.post(path, body, version, via=via)
        assert resp.status_code == 200, resp.text
        return etree.fromstring(resp.content)

    def config(self, **switches: object) -> None:
        requests.post(self.base + "/__sandbox/ecc/config", json=switches, timeout=10).raise_for_status()

    def orders_of(self, customer: str, po: str) -> list[str]:
        return texts(self.call(GETLIST, getlist_xml(customer, po)), ".//SALES_ORDERS/item/SD_DOC")


@pytest.fixture(scope="module")
def ecc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ecc]:
    directory = tmp_path_factory.mktemp("ecc")
    seed(directory, accounts=20)
    sap_ecc_seed.write(directory / "u8.db", directory / "sap_ecc.db", 42)
    import json
    creds = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))["sap_ecc"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_sap_ecc_app(directory, Faults()), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    yield Ecc(f"http://127.0.0.1:{port}", (creds["user"], creds["password"]), directory)
    server.should_exit = True
    thread.join(5)


def texts(root: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in root.iterfind(path)]


def order_xml(sold_to: str, material: str, po: str, qty: str = "2", price: str | None = None, testrun: str = "") -> str:
    cond = (f"<ORDER_CONDITIONS_IN><item><ITM_NUMBER>000010</ITM_NUMBER><COND_ST_NO>000</COND_ST_NO>"
            f"<COND_COUNT>00</COND_COUNT><COND_TYPE>PR00</COND_TYPE><COND_VALUE>{price}</COND_VALUE>"
            f"<CURRENCY>CNY</CURRENCY><COND_UNIT>ST</COND_UNIT><COND_P_UNT>1</COND_P_UNT></item>"
            f"</ORDER_CONDITIONS_IN>") if price else ""
    return (f'<r:BAPI_SALESORDER_CREATEFROMDAT2 xmlns:r="{RFC_NS}">{cond}'
            "<ORDER_HEADER_IN><DOC_TYPE>TA</DOC_TYPE><SALES_ORG>1000</SALES_ORG><DISTR_CHAN>10</DISTR_CHAN>"
            "<DIVISION>00</DIVISION><REQ_DATE_H>2025-07-01</REQ_DATE_H><PURCH_DATE>2025-06-30</PURCH_DATE>"
            f"<PURCH_NO_C>{po}</PURCH_NO_C><DOC_DATE>2025-06-30</DOC_DATE><CURRENCY>CNY</CURRENCY></ORDER_HEADER_IN>"
            "<ORDER_ITEMS_IN><item><ITM_NUMBER>000010</ITM_NUMBER>"
            f"<MATERIAL>{material}</MATERIAL><PLANT>1000</PLANT><TARGET_QTY>0</TARGET_QTY><TARGET_QU>ST</TARGET_QU>"
            "<ITEM_CATEG></ITEM_CATEG><SHORT_TEXT></SHORT_TEXT><SALES_UNIT>ST</SALES_UNIT><CURRENCY>CNY</CURRENCY>"
            "</item></ORDER_ITEMS_IN>"
            f"<ORDER_PARTNERS><item><PARTN_ROLE>AG</PARTN_ROLE><PARTN_NUMB>{sold_to}</PARTN_NUMB>"
            "<ITM_NUMBER>000000</ITM_NUMBER></item></ORDER_PARTNERS>"
            "<ORDER_SCHEDULES_IN><item><ITM_NUMBER>000010</ITM_NUMBER><SCHED_LINE>0001</SCHED_LINE>"
            f"<REQ_DATE>2025-07-01</REQ_DATE><REQ_QTY>{qty}</REQ_QTY></item></ORDER_SCHEDULES_IN>"
            f"<TESTRUN>{testrun}</TESTRUN></r:BAPI_SALESORDER_CREATEFROMDAT2>")


def getlist_xml(customer: str, po: str) -> str:
    return (f'<r:BAPI_SALESORDER_GETLIST xmlns:r="{RFC_NS}"><CUSTOMER_NUMBER>{customer}</CUSTOMER_NUMBER>'
            f"<PURCHASE_ORDER_NUMBER>{po}</PURCHASE_ORDER_NUMBER><SALES_ORDERS/>"
            "<SALES_ORGANIZATION>1000</SALES_ORGANIZATION></r:BAPI_SALESORDER_GETLIST>")


def z_order_xml(sold_to: str, material: str, po: str) -> str:
    return (f'<r:ZBAPI_SALESORDER_CREATE xmlns:r="{RFC_NS}"><CUST_PO>{po}</CUST_PO>'
            "<CUST_PO_DATE>2025-06-30</CUST_PO_DATE><IT_SO_ITEM><item><MATERIAL_NO>000010</MATERIAL_NO>"
            f"<MATERIAL>{material}</MATERIAL><UNIT>ST</UNIT><QTY>1</QTY><CUST_MATERIAL></CUST_MATERIAL>"
            "<PLANT>1000</PLANT><SHIPPING_POINT></SHIPPING_POINT><DELIVERY_DATE>2025-07-01</DELIVERY_DATE></item>"
            "</IT_SO_ITEM><ORDER_TYPE>TA</ORDER_TYPE><SALES_CHANNEL>10</SALES_CHANNEL><SALES_DIVISION>00</SALES_DIVISION>"
            f"<SALES_ORG>1000</SALES_ORG><SHIP_TO_PARTY></SHIP_TO_PARTY><SOLD_TO_PARTY>{sold_to}</SOLD_TO_PARTY>"
            "</r:ZBAPI_SALESORDER_CREATE>")


def blank(type_name: str, given: dict[str, str]) -> str:
    """The mc-style structure ``type_name`` with the ``given`` fields and every other (required) field
    empty: the reference WSDL marks all of them required, so a request has to carry them."""
    root = etree.parse(str(WSDL), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    xs = "{http://www.w3.org/2001/XMLSchema}"
    ctype = next(c for c in root.iter(f"{xs}complexType") if c.get("name") == type_name)
    out = []
    for el in ctype.find(f"{xs}sequence"):
        name, typ = el.get("name"), el.get("type", "")
        value = given.get(name, "0000-00-00" if typ.endswith("date10") else "0" if (
            "curr" in typ or "decimal" in typ or typ.endswith(":int")) else "")
        out.append(f"<{name}>{value}</{name}>")
    return "".join(out)


def customer_xml(name: str, uscc: str, sales_area: bool = True) -> str:
    address = blank("Bapiad1vl", {"Name": name, "City": "上海市", "District": "徐汇区", "Street": "漕溪北路88号",
                                  "PostlCod1": "200030", "Country": "CN", "Sort1": name[:8], "Sort2": uscc})
    central = blank("CmdsEiVmdCentralData", {"Ktokd": "0001", "Stcd5": uscc})
    sales = ("<SalesData><item><Vkorg>1000</Vkorg><Vtweg>10</Vtweg><Spart>00</Spart>"
             f"<SalesData>{blank('CmdsEiSalesData', {'Waers': 'CNY'})}</SalesData><Partners/></item></SalesData>"
             if sales_area else "")
    return (f'<m:ZfmCustomerMasterCreate xmlns:m="{MC_NS}"><CentralData><Customer></Customer>'
            f"<Central>{central}</Central><Address>{address}</Address>"
            "<Communication><Telephone>021-64881234</Telephone><MobNumber></MobNumber><Extension></Extension>"
            "<EMail></EMail></Communication><Bankdetails/><VatNumber/><TaxInd/><Contact/><SttvLicense/>"
            f"</CentralData>{sales}</m:ZfmCustomerMasterCreate>")


def test_wsdl_answers_with_the_stand_ins_own_address(ecc: Ecc) -> None:
    resp = requests.get(ecc.base + Z_CREATE + "?wsdl", auth=ecc.auth, timeout=10)
    assert resp.status_code == 200
    root = etree.fromstring(resp.content)
    locations = [a.get("location") for a in root.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address")]
    assert locations == [ecc.base + Z_CREATE]
    assert requests.get(ecc.base + Z_CREATE + "?wsdl", auth=("nobody", "x"), timeout=10).status_code == 401


def test_a_request_breaking_the_schema_is_a_soap_fault_naming_it(ecc: Ecc) -> None:
    too_long = getlist_xml("0000100001", "X" * 36)
    resp = ecc.post(GETLIST, too_long)
    assert resp.status_code == 500
    fault = etree.fromstring(resp.content)
    assert texts(fault, f".//{{{S11}}}Fault/faultcode") == ["soap-env:Client"]
    assert "PURCHASE_ORDER_NUMBER" in texts(fault, f".//{{{S11}}}Fault/faultstring")[0]
    missing = ecc.post(GETLIST, getlist_xml("0000100001", "PO").replace("<SALES_ORDERS/>", ""))
    assert missing.status_code == 500 and b"SALES_ORDERS" in missing.content
    v12_to_11_only = ecc.post(FIND_CUSTOMER, "<x/>", version="1.2")
    assert v12_to_11_only.status_code == 500 and b"VersionMismatch" in v12_to_11_only.content
    assert ecc.post(GETLIST, "<x/>", auth=("nobody", "x")).status_code == 401
    entity = ('<?xml version="1.0"?><!DOCTYPE e [<!ENTITY boom "x">]>'
              f'<e:Envelope xmlns:e="{S11}"><e:Body><x>&boom;</x></e:Body></e:Envelope>')
    refused = requests.post(ecc.base + GETLIST, data=entity, headers={"Content-Type": "text/xml"}, auth=ecc.auth,
                            timeout=10)
    assert refused.status_code == 500 and b"DTD" in refused.content


def test_unknown_customer_is_a_return_error_under_http_200(ecc: Ecc) -> None:
    root = ecc.call(CREATEFROMDAT2, order_xml("0000999999", "000000000000101001", "CRM-UNKNOWN"))
    assert texts(root, ".//SALESDOCUMENT") == [""]
    types = texts(root, ".//RETURN/item/TYPE")
    messages = texts(root, ".//RETURN/item/MESSAGE")
    assert "E" in types and "Sold-to party 999999 not maintained for sales area 1000/10/00" in messages
    z = ecc.call(Z_CREATE, z_order_xml("0000999999", "000000000000101001", "CRM-UNKNOWN-Z"))
    assert texts(z, ".//SALES_NO") == [""] and "E" in texts(z, ".//DETAIL_MESSAGE/item/TYPE")


def test_created_customer_reads_back_with_leading_zeros(ecc: Ecc) -> None:
    root = ecc.call(CREATE_CUSTOMER, customer_xml("上海测试仪器有限公司", "91310104MA1FL0XX1A"), version="1.2")
    kunnr = texts(root, ".//Customer")[0]
    assert len(kunnr) == 10 and kunnr.startswith("0000") and kunnr.isdigit()
    assert texts(root, ".//Return/IsError") == [""]
    detail = ecc.call(GETDETAIL2, f'<r:BAPI_CUSTOMER_GETDETAIL2 xmlns:r="{RFC_NS}"><CUSTOMERNO>{kunnr}</CUSTOMERNO>'
                                  "</r:BAPI_CUSTOMER_GETDETAIL2>")
    assert texts(detail, ".//CUSTOMERADDRESS/NAME") == ["上海测试仪器有限公司"]
    assert texts(detail, ".//CUSTOMERADDRESS/CITY") == ["上海市"] and texts(detail, ".//RETURN/TYPE") == [""]
    unpadded = ecc.call(GETDETAIL2, f'<r:BAPI_CUSTOMER_GETDETAIL2 xmlns:r="{RFC_NS}"><CUSTOMERNO>{kunnr.lstrip("0")}'
                                    "</CUSTOMERNO></r:BAPI_CUSTOMER_GETDETAIL2>")
    assert texts(unpadded, ".//RETURN/TYPE") == ["E"]
    found = ecc.call(FIND_CUSTOMER, '<g:CustomerSimpleByNameAndAddressQuery_sync xmlns:g="http://sap.com/xi/SAPGlobal20/Global">'
                                    "<CustomerSimpleSelectionByNameAndAddress><CustomerName><FirstLineName>上海测试*"
                                    "</FirstLineName></CustomerName></CustomerSimpleSelectionByNameAndAddress>"
                                    "</g:CustomerSimpleByNameAndAddressQuery_sync>")
    assert texts(found, ".//Customer/ID") == [kunnr]


def test_getlist_by_purch_no_c_finds_the_order_and_its_special_price(ecc: Ecc) -> None:
    luw = requests.Session()
    unpadded_material = ecc.call(CREATEFROMDAT2, order_xml("0000100001", "101001", "CRM-SO-0001"), via=luw)
    assert "E" in texts(unpadded_material, ".//RETURN/item/TYPE")
    root = ecc.call(CREATEFROMDAT2, order_xml("0000100001", "000000000000101001", "CRM-SO-0001", price="59999.00"), via=luw)
    vbeln = texts(root, ".//SALESDOCUMENT")[0]
    assert len(vbeln) == 10 and vbeln.isdigit()
    assert ("S", "V1", "311") in zip(texts(root, ".//RETURN/item/TYPE"), texts(root, ".//RETURN/item/ID"),
                                     texts(root, ".//RETURN/item/NUMBER"))
    assert ecc.orders_of("0000100001", "CRM-SO-0001") == []          # saved, says RETURN, but not committed
    assert texts(ecc.call(CREATEFROMDAT2, COMMIT, via=luw), ".//RETURN/TYPE") == [""]
    listed = ecc.call(GETLIST, getlist_xml("0000100001", "CRM-SO-0001"))
    assert texts(listed, ".//SALES_ORDERS/item/SD_DOC") == [vbeln]
    assert texts(listed, ".//SALES_ORDERS/item/NET_PRICE") == ["59999.00"]
    assert texts(listed, ".//SALES_ORDERS/item/NET_VAL_HD") == ["119998.00"]
    assert ecc.orders_of("100001", "CRM-SO-0001") == []
    test_run = ecc.call(CREATEFROMDAT2, order_xml("0000100001", "000000000000101001", "CRM-SO-TEST", testrun="X"), via=luw)
    assert texts(test_run, ".//SALESDOCUMENT") == [""]
    ecc.call(CREATEFROMDAT2, COMMIT, via=luw)
    assert ecc.orders_of("0000100001", "CRM-SO-TEST") == []


def test_a_lost_answer_still_applied_the_create(ecc: Ecc) -> None:
    before = requests.get(ecc.base + "/__sandbox/stats", timeout=10).json()
    requests.post(ecc.base + "/__sandbox/faults", json={"rate": 1.0, "kinds": ["lost"]}, timeout=10).raise_for_status()
    try:
        lost = ecc.post(Z_CREATE, z_order_xml("0000100002", "000000000000101001", "CRM-SO-LOST"))
    finally:
        requests.post(ecc.base + "/__sandbox/faults", json={"rate": 0.0}, timeout=10).raise_for_status()
    assert lost.status_code == 504
    listed = ecc.call(GETLIST, getlist_xml("0000100002", "CRM-SO-LOST"))
    assert len(texts(listed, ".//SALES_ORDERS/item/SD_DOC")) == 1
    stats = requests.get(ecc.base + "/__sandbox/stats", timeout=10).json()
    lost_before = before["faults"].get("lost", 0)
    assert stats["faults"].get("lost") == lost_before + 1
    assert stats["ecc"]["tables"]["vbak"] == before["ecc"]["tables"]["vbak"] + 1


def test_the_standard_bapi_s_order_waits_in_its_session_for_the_commit(ecc: Ecc) -> None:
    mine, other = requests.Session(), requests.Session()
    first = ecc.post(CREATEFROMDAT2, order_xml("0000100003", "000000000000101001", "CRM-LUW-1"), via=mine)
    cookie = first.headers["set-cookie"]
    assert cookie.startswith("sap-contextid=SID%3aANON%3a") and f"path={CREATEFROMDAT2}" in cookie
    assert texts(ecc.call(CREATEFROMDAT2, COMMIT, via=other), ".//RETURN/TYPE") == [""]   # another session's commit
    assert ecc.orders_of("0000100003", "CRM-LUW-1") == []
    ecc.call(CREATEFROMDAT2, COMMIT, via=mine)
    assert len(ecc.orders_of("0000100003", "CRM-LUW-1")) == 1
    ecc.call(CREATEFROMDAT2, order_xml("0000100003", "000000000000101001", "CRM-LUW-2"), via=mine)
    ecc.call(CREATEFROMDAT2, ROLLBACK, via=mine)
    ecc.call(CREATEFROMDAT2, COMMIT, via=mine)
    assert ecc.orders_of("0000100003", "CRM-LUW-2") == []                                # rolled back
    ecc.config(commit_fails=True)
    try:
        ecc.call(CREATEFROMDAT2, order_xml("0000100003", "000000000000101001", "CRM-LUW-3"), via=mine)
        failed = ecc.call(CREATEFROMDAT2, COMMIT, via=mine)
    finally:
        ecc.config(commit_fails=False)
    assert (texts(failed, ".//RETURN/TYPE"), texts(failed, ".//RETURN/ID"), texts(failed, ".//RETURN/NUMBER")) == (
        ["E"], ["S&"], ["150"])
    assert ecc.orders_of("0000100003", "CRM-LUW-3") == []


def test_uncommitted_work_is_lost_when_the_session_ends_or_times_out(ecc: Ecc) -> None:
    before = requests.get(ecc.base + "/__sandbox/stats", timeout=10).json()["ecc"]["sessions"]["lost"]
    ended, idle = requests.Session(), requests.Session()
    ecc.call(CREATEFROMDAT2, order_xml("0000100004", "000000000000101001", "CRM-LOST-1"), via=ended)
    ecc.config(end_sessions=True)
    dead = ecc.post(CREATEFROMDAT2, COMMIT, via=ended)
    assert dead.status_code == 400 and b"Session timed out" in dead.content
    assert dead.headers["set-cookie"].startswith("sap-contextid=0;")
    assert ecc.orders_of("0000100004", "CRM-LOST-1") == []
    ecc.config(session_timeout_seconds=0.2)
    try:
        ecc.call(CREATEFROMDAT2, order_xml("0000100004", "000000000000101001", "CRM-LOST-2"), via=idle)
        time.sleep(0.3)
        assert ecc.post(CREATEFROMDAT2, COMMIT, via=idle).status_code == 400
    finally:
        ecc.config(session_timeout_seconds=1800)
    assert ecc.orders_of("0000100004", "CRM-LOST-2") == []
    stats = requests.get(ecc.base + "/__sandbox/stats", timeout=10).json()["ecc"]
    assert stats["sessions"]["lost"] == before + 2 and stats["createfromdat2_commits"] is False
    ecc.config(createfromdat2_commits=True)   # the switch for tests: the create saves at once
    try:
        ecc.call(CREATEFROMDAT2, order_xml("0000100004", "000000000000101001", "CRM-LOST-3"))
    finally:
        ecc.config(createfromdat2_commits=False)
    assert len(ecc.orders_of("0000100004", "CRM-LOST-3")) == 1


def material_xml(*selection: tuple[str, str, str, str], maxrows: int = 0, desc: str = "") -> str:
    rows_ = "".join(f"<item><SIGN>{s}</SIGN><OPTION>{o}</OPTION><MATNR_LOW>{lo}</MATNR_LOW><MATNR_HIGH>{hi}</MATNR_HIGH>"
                    + "".join(f"<{f}></{f}>" for f in ("MATNR_HIGH_EXTERNAL", "MATNR_HIGH_GUID", "MATNR_HIGH_VERSION",
                                                      "MATNR_LOW_EXTERNAL", "MATNR_LOW_GUID", "MATNR_LOW_VERSION",
                                                      "MATNR_LOW_LONG", "MATNR_HIGH_LONG"))
                    + "</item>" for s, o, lo, hi in selection)
    by_text = (f"<MATERIALSHORTDESCSEL><item><SIGN>I</SIGN><OPTION>CP</OPTION><DESCR_LOW>{desc}</DESCR_LOW>"
               "<DESCR_HIGH></DESCR_HIGH></item></MATERIALSHORTDESCSEL>") if desc else ""
    return (f'<r:BAPI_MATERIAL_GETLIST xmlns:r="{RFC_NS}">{by_text}<MATNRSELECTION>{rows_}</MATNRSELECTION>'
            f"<MAXROWS>{maxrows}</MAXROWS></r:BAPI_MATERIAL_GETLIST>")


def test_materials_are_listed_by_selection_and_read_with_their_old_number(ecc: Ecc) -> None:
    import sqlite3
    with sqlite3.connect(ecc.directory / "sap_ecc.db") as db:
        mara = db.execute("SELECT matnr, maktx, u8_code, meins FROM mara ORDER BY matnr").fetchall()
    everything = ecc.call(MATERIAL, material_xml(("I", "CP", "*", "")))
    assert texts(everything, ".//MATNRLIST/item/MATERIAL") == [m[0] for m in mara]
    assert texts(everything, ".//MATNRLIST/item/MATL_DESC")[0] == mara[0][1]
    page = ecc.call(MATERIAL, material_xml(("I", "GT", mara[1][0], ""), maxrows=2))
    assert texts(page, ".//MATNRLIST/item/MATERIAL") == [mara[2][0], mara[3][0]]
    assert texts(ecc.call(MATERIAL, material_xml(("I", "EQ", mara[0][0], ""), ("E", "EQ", mara[0][0], ""))),
                 ".//MATNRLIST/item/MATERIAL") == []
    by_name = ecc.call(MATERIAL, material_xml(("I", "CP", "*", ""), desc=mara[0][1][:2] + "*"))
    assert mara[0][0] in texts(by_name, ".//MATNRLIST/item/MATERIAL")
    bad = ecc.call(MATERIAL, material_xml(("I", "XX", "1", "")))
    assert texts(bad, ".//RETURN/item/TYPE") == ["E"] and texts(bad, ".//MATNRLIST/item") == []
    numeric = next(m for m in mara if m[2].isdigit() and m[2].startswith("0"))
    detail = ecc.call(MATERIAL, f'<r:BAPI_MATERIAL_GET_DETAIL xmlns:r="{RFC_NS}"><MATERIAL>{numeric[0]}</MATERIAL>'
                                "</r:BAPI_MATERIAL_GET_DETAIL>")
    assert numeric[0] == numeric[2].zfill(18)                              # MATN1 lost the leading zero …
    assert texts(detail, ".//MATERIAL_GENERAL_DATA/OLD_MAT_NO") == [numeric[2]]   # … BISMT keeps the U8 code
    assert texts(detail, ".//MATERIAL_GENERAL_DATA/BASE_UOM") == [numeric[3]] and texts(detail, ".//RETURN/TYPE") == [""]
    missing = ecc.call(MATERIAL, f'<r:BAPI_MATERIAL_GET_DETAIL xmlns:r="{RFC_NS}"><MATERIAL>NOPE</MATERIAL>'
                                 "</r:BAPI_MATERIAL_GET_DETAIL>")
    assert texts(missing, ".//RETURN/TYPE") == ["E"]


def test_a_customer_is_found_by_search_term_2(ecc: Ecc) -> None:
    kunnr = texts(ecc.call(CREATE_CUSTOMER, customer_xml("北京检索词二有限公司", "91110105MA00ABCD1X")), ".//Customer")[0]
    query = ('<g:CustomerSimpleByNameAndAddressQuery_sync xmlns:g="http://sap.com/xi/SAPGlobal20/Global">'
             "<CustomerSimpleSelectionByNameAndAddress><CustomerAdditionalKeyWordsText>{}"
             "</CustomerAdditionalKeyWordsText></CustomerSimpleSelectionByNameAndAddress>"
             "</g:CustomerSimpleByNameAndAddressQuery_sync>")
    assert texts(ecc.call(FIND_CUSTOMER, query.format("91110105MA00ABCD1X")), ".//Customer/ID") == [kunnr]
    assert texts(ecc.call(FIND_CUSTOMER, query.format("91110105MA00ABCD1Y")), ".//Customer/ID") == []
