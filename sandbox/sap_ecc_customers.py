"""Customers: create (ZfmCustomerMasterCreate), find by name and address (ECC_CUSTOMER002QR),
read one (BAPI_CUSTOMER_GETDETAIL2).

- Create takes the mc-style structures of the reference WSDL (CentralData.Central: Ktokd, Stcd1,
  Stcd5 …; CentralData.Address: Name..Name4, City, District, Street, PostlCod1, Country, Region,
  Sort1, Sort2 (search terms 1 and 2); Communication.Telephone; CompanyData items (Altkn);
  SalesData items (Vkorg, Vtweg, Spart: the sales areas the customer is extended to)) and answers Customer (10 digits, leading
  zeros; internal numbering unless CentralData.Customer names a free number) and Return
  (CvisMessage: IsError + BAPIRET2 rows).  TestRun "X" checks without saving.  Nothing makes a
  create idempotent: the same request twice makes two customers, which is why a client looks
  the customer up first.
- Find matches every given criterion (name lines against NAME1..NAME4, city, district, postal
  code, street, country, region; CustomerKeyWordsText against SORT1 and
  CustomerAdditionalKeyWordsText against SORT2, search terms 1 and 2), case-insensitively, ``*`` as a
  wildcard and otherwise the whole value; it answers ID and name (all the response schema has).
  The matching rules are the stand-in's: SAP's were not found in public material.
- Read: CUSTOMERNO exactly as sent (10 characters with leading zeros; "100001" is not
  "0000100001", as in SAP where the BAPI does not convert); COMPANYCODE is not checked.
"""

from __future__ import annotations

import fnmatch
from datetime import date
from typing import Any

from . import sap_ecc_store as store
from .sap_ecc_messages import failed, ret2
from .sap_ecc_store import EccStore
from .sap_ecc_xsd import rows


def _ret2_mc(row: dict[str, Any]) -> dict[str, Any]:
    """A BAPIRET2 row in the mc-style (camel case) names of the customer-create WSDL."""
    names = {"TYPE": "Type", "ID": "Id", "NUMBER": "Number", "MESSAGE": "Message", "LOG_NO": "LogNo",
             "LOG_MSG_NO": "LogMsgNo", "MESSAGE_V1": "MessageV1", "MESSAGE_V2": "MessageV2",
             "MESSAGE_V3": "MessageV3", "MESSAGE_V4": "MessageV4", "PARAMETER": "Parameter", "ROW": "Row",
             "FIELD": "Field", "SYSTEM": "System"}
    return {names[k]: v for k, v in row.items()}


def create(st: EccStore, req: dict[str, Any]) -> dict[str, Any]:
    central = req.get("CentralData") or {}
    c = central.get("Central") or {}
    a = central.get("Address") or {}
    wanted = (central.get("Customer") or "").strip()
    msgs: list[dict[str, Any]] = []
    if not (a.get("Name") or "").strip():
        msgs.append(ret2("E", "Enter a name (Address-Name)", parameter="ADDRESS", field="NAME"))
    if wanted and (not wanted.isdigit() or len(wanted) != 10):
        msgs.append(ret2("E", f"Customer number {wanted} is not 10 digits", v=(wanted,), field="KUNNR"))
    elif wanted and st.customer(wanted) is not None:
        msgs.append(ret2("E", f"Customer {wanted} already exists", v=(wanted,), field="KUNNR"))
    areas = [(s.get("Vkorg", ""), s.get("Vtweg", ""), s.get("Spart", "")) for s in rows(req.get("SalesData"))]
    altkn = next((cd.get("CompanyData", {}).get("Altkn", "") for cd in rows(req.get("CompanyData"))), "")
    if failed(msgs) or req.get("TestRun") == "X":
        return {"Customer": "", "Return": {"IsError": "X" if failed(msgs) else "", "Messages": [_ret2_mc(m) for m in msgs]}}
    with st.tx() as conn:
        kunnr = wanted or store.next_number(conn, "DEBITOR")
        store.insert_customer(conn, {
            "kunnr": kunnr, "name1": a.get("Name"), "name2": a.get("Name2"), "name3": a.get("Name3"),
            "name4": a.get("Name4"), "city1": a.get("City"), "district": a.get("District"), "street": a.get("Street"),
            "post_code1": a.get("PostlCod1"), "region": a.get("Region"), "country": a.get("Country"),
            "sort1": a.get("Sort1"), "sort2": a.get("Sort2"), "tel_number": (central.get("Communication") or {}).get("Telephone"),
            "stcd1": c.get("Stcd1"), "stcd5": c.get("Stcd5"), "ktokd": c.get("Ktokd"),
            "adrnr": store.next_number(conn, "ADRNR"), "altkn": altkn, "erdat": date.today().isoformat(),
            "origin": "api"}, areas)
    msgs.append(ret2("S", f"Customer {kunnr} has been created", v=(kunnr,)))
    return {"Customer": kunnr, "Return": {"IsError": "", "Messages": [_ret2_mc(m) for m in msgs]}}


def _matches(pattern: str, value: str | None) -> bool:
    pattern, value = pattern.strip().casefold(), (value or "").casefold()
    return fnmatch.fnmatchcase(value, pattern) if "*" in pattern else value == pattern


def find(st: EccStore, req: dict[str, Any]) -> dict[str, Any]:
    sel = req.get("CustomerSimpleSelectionByNameAndAddress") or {}
    name = sel.get("CustomerName") or {}
    checks = [(name.get(k), col) for k, col in (("FirstLineName", "name1"), ("SecondLineName", "name2"),
                                               ("ThirdLineName", "name3"), ("FourthLineName", "name4"))]
    checks += [(sel.get(k) if not isinstance(sel.get(k), dict) else "", col) for k, col in (
        ("CustomerAddressCountryCode", "country"), ("CustomerAddressRegionCode", "region"),
        ("CustomerAddressCityName", "city1"), ("CustomerAddressDistrictName", "district"),
        ("CustomerAddressStreetPostalCode", "post_code1"), ("CustomerAddressStreetName", "street"),
        ("CustomerKeyWordsText", "sort1"), ("CustomerAdditionalKeyWordsText", "sort2"))]
    checks = [(p, col) for p, col in checks if p and p.strip()]
    if not checks:
        return {"Customer": []}
    found = [r for r in st.query("SELECT * FROM kna1 ORDER BY kunnr") if all(_matches(p, r[col]) for p, col in checks)]
    return {"Customer": [{"ID": r["kunnr"], "BasicData": {"Common": {
        "Name": {"FirstLineName": r["name1"], "SecondLineName": r["name2"] or None,
                 "ThirdLineName": r["name3"] or None, "FourthLineName": r["name4"] or None},
        "BlockedIndicator": False, "NaturalPersonIndicator": False}}} for r in found]}


def getdetail2(st: EccStore, req: dict[str, Any]) -> dict[str, Any]:
    number = req.get("CUSTOMERNO", "")
    r = st.customer(number)
    if r is None:
        return {"CUSTOMERADDRESS": {}, "CUSTOMERGENERALDETAIL": {},
                "RETURN": {k: v for k, v in ret2("E", f"Customer {number} does not exist", v=(number,)).items()
                           if k in ("TYPE", "ID", "NUMBER", "MESSAGE", "LOG_NO", "LOG_MSG_NO", "MESSAGE_V1",
                                    "MESSAGE_V2", "MESSAGE_V3", "MESSAGE_V4")}}
    return {"CUSTOMERADDRESS": {"NAME": r["name1"][:35], "CITY": r["city1"][:35], "DISTRICT": r["district"][:35],
                                "POSTL_CODE": r["post_code1"][:10], "STREET": r["street"][:35],
                                "COUNTRY": r["country"][:3], "REGION": r["region"][:3]},
            "CUSTOMERGENERALDETAIL": {"ADDRESS": r["adrnr"], "TAX_NO_1": r["stcd1"][:16]},
            "RETURN": {}}
