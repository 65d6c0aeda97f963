"""Entries below a business partner's address or a customer, inserted by a deep insert or by
``POST <parent>(<key>)/<navigation>``: an address's phone, mobile, fax numbers and e-mail addresses
(``to_PhoneNumber``, ``to_MobilePhoneNumber``, ``to_FaxNumber``, ``to_EmailAddress``), a customer's
sales areas (``to_CustomerSalesArea``) with their tax classifications (``to_SalesAreaTax``) and
partner functions (``to_PartnerFunction``). Names and keys are the edmx's.

What the system fills in when the client leaves it out, as S/4 does:
- communication data: the link to its address (AddressID, Person), the next free OrdinalNumber
  (``001``…, one range per address and kind: both phone navigations share A_AddressPhoneNumber),
  the address's country (DestinationLocationCountry / FaxCountry), the first entry of a kind as
  the default one (IsDefault…); a number posted to ``to_MobilePhoneNumber`` is marked mobile;
- a sales area: the customer; only the sales areas this system is configured for
  (``sap_s4_docs.SALES_AREAS``) are accepted; currency CNY when none is given; a sales area created without
  partner functions gets the ones a sold-to party needs, each the customer itself (sold-to, bill-to,
  payer, ship-to), as the customer master's partner determination proposes them.

Unverified (no public sample found): which PhoneNumberType values mean mobile (see
``sap_s4_store.MOBILE_TYPES``), that the API answers partner functions in their English form
(SP/BP/PY/SH for AG/RE/RG/WE, as the stand-in's sales orders do), the sandbox's own texts for a
refused sales area or a link value that contradicts its parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .sap_edm import EntitySet
from .sap_odata import BUSINESS, bad
from .sap_s4_store import LINKS, MOBILE_TYPES, Store

if TYPE_CHECKING:
    from .sap_s4_docs import Documents

#: entity set → the navigations a deep insert may carry below it (and a POST may name)
DEEP: dict[str, tuple[str, ...]] = {
    "A_BusinessPartnerAddress": ("to_PhoneNumber", "to_MobilePhoneNumber", "to_EmailAddress", "to_FaxNumber"),
    "A_Customer": ("to_CustomerSalesArea",),
    "A_CustomerSalesArea": ("to_SalesAreaTax", "to_PartnerFunction"),
}
#: partner functions proposed for a new sales area: sold-to, bill-to, payer, ship-to
SOLD_TO_PARTNERS = ("SP", "BP", "PY", "SH")
AREA_KEYS = ("SalesOrganization", "DistributionChannel", "Division")
#: communication set → (its default flag, its country property)
_COMM = {"A_AddressPhoneNumber": ("IsDefaultPhoneNumber", "DestinationLocationCountry"),
         "A_AddressEmailAddress": ("IsDefaultEmailAddress", None),
         "A_AddressFaxNumber": ("IsDefaultFaxNumber", "FaxCountry")}


def _scope(nav: str) -> tuple[str, ...] | None:
    """The PhoneNumberType values a phone navigation reaches (None: not a phone navigation)."""
    return {"to_MobilePhoneNumber": MOBILE_TYPES}.get(nav, () if nav == "to_PhoneNumber" else None)


def insert_rows(docs: "Documents", parent: EntitySet, parent_row: dict[str, Any], nav: str, target: EntitySet,
                rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """Insert ``rows`` (property values and their own inline navigations, as ``Documents.split``
    gives them) below the stored ``parent_row`` through ``nav``; the stored rows, in order."""
    st = docs.store
    out = []
    for values, sub in rows:
        docs.no_deeper(target, sub, DEEP.get(target.name, ()))
        row = fill(st, parent, parent_row, nav, target, dict(values))
        st.insert(target, row)
        stored = st.get(target, {k: row[k] for k in target.keys})
        insert_below(docs, target, stored, sub)
        if target.name == "A_CustomerSalesArea" and not sub.get("to_PartnerFunction"):
            proposed = [({"PartnerFunction": f}, {}) for f in SOLD_TO_PARTNERS]
            insert_rows(docs, target, stored, "to_PartnerFunction", st.sets["A_CustSalesPartnerFunc"], proposed)
        out.append(stored)
    return out


def insert_below(docs: "Documents", es: EntitySet, row: dict[str, Any], navs: dict[str, Any]) -> None:
    """Insert the inline ``navs`` of the stored ``row`` (``DEEP`` says which may come)."""
    docs.no_deeper(es, navs, DEEP.get(es.name, ()))
    for nav, raw in navs.items():
        if raw is not None:
            insert_rows(docs, es, row, nav, *docs.children(es, nav, raw))


def link(parent: EntitySet, parent_row: dict[str, Any], nav: str, target: EntitySet, values: dict[str, Any]) -> None:
    """The key values a new entry takes from the parent it is created below (given ones must agree)."""
    for source, column in LINKS[(parent.name, nav)]:
        given = values.get(column)
        if given not in (None, "") and given != parent_row[source]:
            raise bad(f"{column} '{given}' of the new {target.name} contradicts its parent's '{parent_row[source]}'")
        values[column] = parent_row[source]


def fill(st: Store, parent: EntitySet, parent_row: dict[str, Any], nav: str, target: EntitySet,
         values: dict[str, Any]) -> dict[str, Any]:
    """``values`` completed as S/4 completes a new entry below ``parent_row`` (module docstring)."""
    link(parent, parent_row, nav, target, values)
    from .sap_s4_docs import ADDR_START, CURRENCY, SALES_AREAS  # (sap_s4_docs imports this module)
    if target.name == "A_BusinessPartnerAddress" and not values.get("AddressID"):
        values["AddressID"] = str(st.next_number("addr", ADDR_START + 1))
    if target.name in _COMM:
        _communication(st, parent_row, nav, target, values)
    if target.name == "A_CustomerSalesArea":
        area = tuple(str(values.get(k) or "") for k in AREA_KEYS)
        if area not in SALES_AREAS:
            known = ", ".join(" ".join(a) for a in sorted(SALES_AREAS))
            raise bad(f"Sales area {' '.join(area)} is not defined in this system (defined: {known})", BUSINESS)
        values["Currency"] = values.get("Currency") or CURRENCY
        values["CustomerAccountGroup"] = values.get("CustomerAccountGroup") or parent_row.get("CustomerAccountGroup", "")
    if target.name == "A_CustSalesPartnerFunc":
        values["BPCustomerNumber"] = values.get("BPCustomerNumber") or values["Customer"]
        if not values.get("PartnerCounter"):
            values["PartnerCounter"] = f"{_count(st, target, values, ('Customer', *AREA_KEYS, 'PartnerFunction')):03d}"
    linked = {column for _, column in LINKS[(parent.name, nav)]}  # Person is '' for an organisation
    missing = [k for k in target.keys if values.get(k) in (None, "") and k not in linked]
    if missing:
        raise bad(f"Enter {', '.join(missing)} of the new {target.name}", BUSINESS)
    return values


def _communication(st: Store, address: dict[str, Any], nav: str, target: EntitySet, values: dict[str, Any]) -> None:
    flag, country = _COMM[target.name]
    mobile = _scope(nav)
    if mobile is not None:
        kind = str(values.get("PhoneNumberType") or "")
        if mobile and not kind:
            values["PhoneNumberType"] = kind = mobile[-1]
        if (kind in MOBILE_TYPES) != bool(mobile):
            raise bad(f"PhoneNumberType '{kind}' does not belong under {nav}")
    if not values.get("OrdinalNumber"):
        values["OrdinalNumber"] = f"{_count(st, target, values, ('AddressID', 'Person')) + 1:03d}"
    if country and not values.get(country):
        values[country] = address.get("Country", "")
    if flag not in values:
        same_kind = [r for r in st.rows(target.name, '"AddressID" = ? AND "Person" = ?',
                                        [values["AddressID"], values["Person"]])
                     if mobile is None or (str(r.get("PhoneNumberType") or "") in MOBILE_TYPES) == bool(mobile)]
        values[flag] = int(not same_kind)


def _count(st: Store, target: EntitySet, values: dict[str, Any], columns: tuple[str, ...]) -> int:
    """How many rows of ``target`` have ``values``' ``columns`` (the next counter of a range)."""
    where = " AND ".join(f'"{k}" = ?' for k in columns)
    return int(st.conn.execute(f'SELECT COUNT(*) FROM "{target.name}" WHERE {where}',
                               [values[k] for k in columns]).fetchone()[0])
