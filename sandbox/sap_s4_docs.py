"""What S/4 does when a document is created, changed or shipped: numbering, derived fields,
statuses, change stamps, ETags and the warehouse.

Names are the edmx's (checked against sandbox/sap_metadata): the USCC is a business partner tax
number of category ``USCC_TAX_TYPE``; rejection is the item's ``SalesDocumentRjcnReason`` with
the header's ``OverallSDDocumentRejectionSts``; deliveries point at the order through
``ReferenceSDDocument`` / ``ReferenceSDDocumentItem``; change times are ``LastChangeDateTime``
(sales order, product), ``LastChangeDate`` + ``LastChangeTime`` (business partner) and
``LastChangeDate`` only (outbound delivery: its edmx has no change time).

A sales order's sold-to party needs a sales area of the customer for the order's sales
organisation, distribution channel and division (A_CustomerSalesArea), else the order is refused
with the text SAP users report ("Sold-to party … not maintained for sales area …"; its message
class and number were not found in public material, so the code is the sandbox's BUSINESS).

Unverified choices, visible here: the ETag text format; the entries of a sales order (items,
pricing elements, header partners) carry their order's ETag (this edmx marks ConcurrencyMode only
on A_SalesOrder.LastChangeDateTime, while every change of an entry moves that stamp); sales
organisation 1310 / plant 1310 (SAP's best-practice China company) as defaults and the one
configured sales area; business partner change stamps in UTC.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

from . import sap_s4_children as children
from .sap_edm import EntitySet
from .sap_odata import (BUSINESS, NOT_ALLOWED, PRECONDITION, PRECONDITION_REQUIRED, ODataError, bad,
                        from_json)
from .sap_s4_store import Store

#: Tax number category of China's 统一社会信用代码. CN5 "China: Tax Number" (Golden Tax, mapped to
#: A_Customer.TaxNumber5 / STCD5) per SAP KBA 3524568 ("The Golden tax number was transiently
#: moved from tax category CN1 to tax category CN0. The final solution was to move it to CN5");
#: that the USCC is that number for a registered company is the taxpayer-id rule, not SAP's text.
USCC_TAX_TYPE = "CN5"
CUSTOMER_ROLES = ("FLCU00", "FLCU01")  # BP roles that make a customer (FI and sales views)
SALES_ORG, DISTR_CHANNEL, DIVISION, PLANT = "1310", "10", "00", "1310"
#: (sales organisation, distribution channel, division) this system is configured for
SALES_AREAS = {(SALES_ORG, DISTR_CHANNEL, DIVISION)}
#: entity sets that belong to one sales order and answer (and are checked against) its ETag
ORDER_ENTRIES = ("A_SalesOrderItem", "A_SalesOrderItemPrElement", "A_SalesOrderHeaderPrElement",
                 "A_SalesOrderHeaderPartner")
#: entity sets of a business partner's family: a change of one moves the partner's change stamp
PARTNER_SETS = ("A_BusinessPartner", "A_BusinessPartnerAddress", "A_BusinessPartnerTaxNumber",
                "A_BusinessPartnerRole", "A_Customer", "A_AddressPhoneNumber", "A_AddressEmailAddress",
                "A_AddressFaxNumber", "A_CustomerSalesArea", "A_CustomerSalesAreaTax", "A_CustSalesPartnerFunc")
#: (entity set, navigation) a POST may create an entry through (the rest answer 501)
POSTABLE = {("A_SalesOrder", "to_Item"), ("A_SalesOrder", "to_Partner"), ("A_SalesOrder", "to_PricingElement"),
            ("A_SalesOrderItem", "to_PricingElement"), ("A_BusinessPartner", "to_BusinessPartnerAddress"),
            ("A_BusinessPartner", "to_BusinessPartnerTax"), ("A_BusinessPartner", "to_BusinessPartnerRole"),
            *((name, nav) for name, navs in children.DEEP.items() for nav in navs)}
CURRENCY = "CNY"
BP_START, SO_START, DL_START, ADDR_START = 1_000_000, 1_000_000, 80_000_000, 30_000
CENT = Decimal("0.01")
WAREHOUSE_USER = "WAREHOUSE"


def day_ms(ms: int) -> int:
    return ms - ms % 86_400_000


def sec_of_day(ms: int) -> int:
    return ms % 86_400_000 // 1000


def etag_of(es: EntitySet, row: dict[str, Any]) -> str | None:
    """The weak ETag S/4 derives from the ConcurrencyMode="Fixed" property (W/"<literal>")."""
    if es.name in ORDER_ENTRIES:
        return None  # taken from the order; see Documents.etag
    prop = es.etag_prop
    if prop is None or row.get(prop) is None:
        return None
    value = row[prop]
    if es.props[prop].type == "Edm.DateTimeOffset":
        dt = datetime.fromtimestamp(value / 1000, timezone.utc)
        text = dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}0000Z"
        return 'W/"datetimeoffset\'' + quote(text, safe="-.TZ") + '\'"'
    return f"W/\"'{value}'\""


def _dec(value: Any) -> Decimal:
    return Decimal(str(value or "0"))


class Documents:
    """Deep inserts, entries posted below a stored entity, changes and the warehouse over one Store."""

    def __init__(self, store: Store, seed: int) -> None:
        self.store, self.seed = store, seed

    # -- bodies -----------------------------------------------------------------------------------
    def split(self, es: EntitySet, body: Any, creating: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """A JSON entity → (stored property values, {navigation: raw inline content})."""
        if not isinstance(body, dict):
            raise bad(f"The body of {es.name} must be a JSON object")
        values, navs = {}, {}
        for name, value in body.items():
            if name == "__metadata":
                continue
            if name in es.navs:
                navs[name] = value
                continue
            prop = es.props.get(name)
            if prop is None:
                raise bad(f"Property '{name}' is invalid: {es.type_name.split('.')[-1]} has no such property")
            allowed = prop.creatable if creating else prop.updatable
            if not allowed and name not in es.keys:
                raise bad(f"Property '{name}' of {es.name} is read-only ({'creatable' if creating else 'updatable'}=false)")
            values[name] = from_json(prop, value)
        return values, navs

    @staticmethod
    def many(nav: str, raw: Any) -> list[Any]:
        if isinstance(raw, dict) and "results" in raw:
            raw = raw["results"]
        if not isinstance(raw, list):
            raise bad(f"Inline {nav} must be {{\"results\": [...]}}")
        return raw

    def children(self, parent: EntitySet, nav: str, raw: Any) -> tuple[EntitySet, list[tuple[dict, dict]]]:
        target = self.store.sets.get(parent.navs[nav].target) if nav in parent.navs else None
        if target is None:
            raise ODataError(501, "SANDBOX/501", f"Deep insert into {parent.name}/{nav} is not served by the sandbox")
        items = self.many(nav, raw) if parent.navs[nav].many else [raw]
        return target, [self.split(target, item, creating=True) for item in items]

    @staticmethod
    def no_deeper(es: EntitySet, navs: dict[str, Any], allowed: tuple[str, ...] = ()) -> None:
        extra = sorted(set(navs) - set(allowed))
        if extra:
            raise ODataError(501, "SANDBOX/501", f"Deep insert of {es.name}/{extra[0]} is not served by the sandbox")

    # -- business partner -------------------------------------------------------------------------
    def create_business_partner(self, body: Any, user: str) -> dict[str, Any]:
        st = self.store
        es = st.sets["A_BusinessPartner"]
        values, navs = self.split(es, body, creating=True)
        self.no_deeper(es, navs, ("to_BusinessPartnerRole", "to_BusinessPartnerAddress", "to_BusinessPartnerTax",
                                  "to_Customer"))
        parts = {nav: self.children(es, nav, raw) for nav, raw in navs.items() if raw is not None}
        category = values.get("BusinessPartnerCategory") or ("2" if values.get("OrganizationBPName1") else "1")
        if category not in ("1", "2", "3"):
            raise bad(f"BP category {category} does not exist (1 person, 2 organization, 3 group)", BUSINESS)
        if category == "2" and not str(values.get("OrganizationBPName1", "")).strip():
            raise bad("Enter a name for the organization (OrganizationBPName1)", BUSINESS)
        with st.transaction():
            number = values.get("BusinessPartner") or f"{st.next_number('bp', BP_START + 1):010d}"
            now = st.clock.now_ms()
            names = [values.get(f"OrganizationBPName{i}", "") for i in (1, 2)]
            full = " ".join(n for n in names if n)[:81]
            roles = [v.get("BusinessPartnerRole") for v, _ in parts.get("to_BusinessPartnerRole", (None, []))[1]]
            is_customer = bool(set(roles) & set(CUSTOMER_ROLES)) or "to_Customer" in parts
            values.update(BusinessPartner=number, BusinessPartnerCategory=category, BusinessPartnerFullName=full,
                          BusinessPartnerName=full, BusinessPartnerUUID=str(uuid.uuid5(uuid.NAMESPACE_OID, number)),
                          CreatedByUser=user, LastChangedByUser=user, CreationDate=day_ms(now),
                          CreationTime=sec_of_day(now), LastChangeDate=day_ms(now), LastChangeTime=sec_of_day(now),
                          Customer=number if is_customer else "")
            st.insert(es, values)
            partner = st.get(es, {"BusinessPartner": number})
            for nav, (target, rows) in parts.items():
                if target.name != "A_Customer":
                    children.insert_rows(self, es, partner, nav, target, rows)
            if is_customer:
                cust = dict(parts["to_Customer"][1][0][0]) if "to_Customer" in parts else {}
                cust.pop("BusinessPartner", None)
                taxes = {r.get("BPTaxType"): r.get("BPTaxNumber") or r.get("BPTaxLongNumber", "")
                         for r, _ in parts.get("to_BusinessPartnerTax", (None, []))[1]}
                cust.update(Customer=number, CustomerName=full[:80], CustomerFullName=full[:220], CreatedByUser=user,
                            CreationDate=day_ms(now), TaxNumber5=taxes.get(USCC_TAX_TYPE, "")[:60])
                cust_es = st.sets["A_Customer"]
                st.insert(cust_es, cust)
                children.insert_below(self, cust_es, st.get(cust_es, {"Customer": number}),
                                      parts["to_Customer"][1][0][1] if "to_Customer" in parts else {})
            return st.get(es, {"BusinessPartner": number})

    def partner_of(self, es: EntitySet, row: dict[str, Any]) -> str:
        """The business partner an entry of the partner's family belongs to (the stand-in numbers a
        customer as its partner; an address's communication data through its address)."""
        if row.get("BusinessPartner") or row.get("Customer"):
            return str(row.get("BusinessPartner") or row.get("Customer"))
        found = self.store.rows("A_BusinessPartnerAddress", '"AddressID" = ?', [row.get("AddressID", "")])
        if not found:
            raise bad(f"{es.name}: address {row.get('AddressID')} belongs to no business partner")
        return str(found[0]["BusinessPartner"])

    def _mirror_uscc(self, number: str, tax: dict[str, Any]) -> None:
        """A CN5 tax number is the customer's TaxNumber5 too."""
        if tax.get("BPTaxType") == USCC_TAX_TYPE:
            self.store.update(self.store.sets["A_Customer"], {"Customer": number},
                              {"TaxNumber5": str(tax.get("BPTaxNumber") or "")[:60]})

    def touch_business_partner(self, number: str, user: str) -> None:
        now = self.store.clock.now_ms()
        self.store.update(self.store.sets["A_BusinessPartner"], {"BusinessPartner": number},
                          {"LastChangeDate": day_ms(now), "LastChangeTime": sec_of_day(now), "LastChangedByUser": user})

    # -- sales order ------------------------------------------------------------------------------
    def create_sales_order(self, body: Any, user: str) -> dict[str, Any]:
        st = self.store
        es = st.sets["A_SalesOrder"]
        values, navs = self.split(es, body, creating=True)
        self.no_deeper(es, navs, ("to_Item", "to_Partner", "to_PricingElement"))
        for name in ("SalesOrderType", "SoldToParty"):
            if not values.get(name):
                raise bad(f"Enter {name}", BUSINESS)
        items = self.children(es, "to_Item", navs["to_Item"])[1] if navs.get("to_Item") is not None else []
        partners = self.children(es, "to_Partner", navs["to_Partner"])[1] if navs.get("to_Partner") else []
        header_pricing = (self.children(es, "to_PricingElement", navs["to_PricingElement"])[1]
                          if navs.get("to_PricingElement") else [])
        with st.transaction():
            self._customer(values["SoldToParty"], "Sold-to party")
            values.update(SalesOrganization=values.get("SalesOrganization") or SALES_ORG,
                          DistributionChannel=values.get("DistributionChannel") or DISTR_CHANNEL,
                          OrganizationDivision=values.get("OrganizationDivision") or DIVISION)
            self._sales_area(values["SoldToParty"], values)
            for p, _ in partners:
                if p.get("Customer"):
                    self._customer(p["Customer"], f"Partner {p.get('PartnerFunction', '')}")
            number = str(st.next_number("so", SO_START))
            now = st.clock.now_ms()
            values.update(SalesOrder=number, TransactionCurrency=values.get("TransactionCurrency") or CURRENCY,
                          SalesOrderDate=values.get("SalesOrderDate") or day_ms(now),
                          PricingDate=values.get("PricingDate") or day_ms(now),
                          RequestedDeliveryDate=values.get("RequestedDeliveryDate") or day_ms(now),
                          CreationDate=day_ms(now), CreatedByUser=user, LastChangeDate=day_ms(now),
                          LastChangeDateTime=now)
            st.insert(es, values)
            item_es = st.sets["A_SalesOrderItem"]
            for n, (item, sub) in enumerate(items, start=1):
                self.no_deeper(item_es, sub, ("to_PricingElement",))
                pricing = (self.children(item_es, "to_PricingElement", sub["to_PricingElement"])[1]
                           if sub.get("to_PricingElement") else [])
                self._insert_item(number, item, pricing, str(n * 10), values["TransactionCurrency"])
            for p, sub in partners:
                self.no_deeper(st.sets["A_SalesOrderHeaderPartner"], sub)
                p["SalesOrder"] = number
                st.insert(st.sets["A_SalesOrderHeaderPartner"], p)
            for k, (pe, sub) in enumerate(header_pricing, start=1):
                self.no_deeper(st.sets["A_SalesOrderHeaderPrElement"], sub)
                pe.update(SalesOrder=number, PricingProcedureStep=pe.get("PricingProcedureStep") or f"{k * 10:03d}",
                          PricingProcedureCounter=pe.get("PricingProcedureCounter") or "001")
                st.insert(st.sets["A_SalesOrderHeaderPrElement"], pe)
            self.refresh_order(number, touch=False)
            return st.get(es, {"SalesOrder": number})

    def _sales_area(self, customer: str, order: dict[str, Any]) -> None:
        """The sold-to party's sales area of the order's organisation, channel and division."""
        area = [order["SalesOrganization"], order["DistributionChannel"], order["OrganizationDivision"]]
        rows = self.store.rows("A_CustomerSalesArea", '"Customer" = ? AND "SalesOrganization" = ? AND '
                               '"DistributionChannel" = ? AND "Division" = ?', [customer, *area])
        if not rows:
            raise bad(f"Sold-to party {customer} not maintained for sales area {' '.join(area)}", BUSINESS)
        if rows[0]["DeletionIndicator"] or rows[0]["OrderIsBlockedForCustomer"]:
            raise bad(f"Sold-to party {customer} is blocked for sales orders in sales area {' '.join(area)}",
                      BUSINESS)

    def _customer(self, number: str, role: str) -> dict[str, Any]:
        rows = self.store.rows("A_Customer", '"Customer" = ?', [number])
        if not rows:
            raise bad(f"{role} {number} does not exist", BUSINESS)
        if rows[0]["DeletionIndicator"] or rows[0]["OrderIsBlockedForCustomer"]:
            raise bad(f"{role} {number} is blocked for sales orders", BUSINESS)
        return rows[0]

    def _insert_item(self, order: str, item: dict[str, Any], pricing: list[tuple[dict, dict]], default_no: str,
                     currency: str) -> None:
        st = self.store
        item_no = str(item.get("SalesOrderItem") or default_no)
        material = item.get("Material")
        if not material:
            raise bad(f"Item {item_no}: enter a Material", BUSINESS)
        product = st.rows("A_Product", '"Product" = ?', [material])
        if not product or product[0]["IsMarkedForDeletion"]:
            raise bad(f"Item {item_no}: material {material} does not exist or is marked for deletion", BUSINESS)
        qty = _dec(item.get("RequestedQuantity"))
        if qty <= 0:
            raise bad(f"Item {item_no}: RequestedQuantity must be greater than 0", BUSINESS)
        text = st.rows("A_ProductDescription", '"Product" = ? ORDER BY "Language" DESC', [material])
        price = st.conn.execute("SELECT value FROM sandbox_meta WHERE name = ?", (f"price:{material}",)).fetchone()
        rate = _dec(price[0]) if price else Decimal(0)
        for k, (pe, sub) in enumerate(pricing, start=1):
            self.no_deeper(st.sets["A_SalesOrderItemPrElement"], sub)
            if pe.get("ConditionType") == "PPR0" and pe.get("ConditionRateValue") not in (None, "0"):
                rate = _dec(pe["ConditionRateValue"])
        item.update(SalesOrder=order, SalesOrderItem=item_no, RequestedQuantity=str(qty),
                    RequestedQuantityUnit=item.get("RequestedQuantityUnit") or product[0]["BaseUnit"],
                    SalesOrderItemText=item.get("SalesOrderItemText") or (text[0]["ProductDescription"] if text else ""),
                    SalesOrderItemCategory=item.get("SalesOrderItemCategory") or "TAN",
                    ProductionPlant=item.get("ProductionPlant") or PLANT, TransactionCurrency=currency,
                    NetAmount=str((qty * rate).quantize(CENT, ROUND_HALF_UP)), DeliveryStatus="A", SDProcessStatus="A")
        st.insert(st.sets["A_SalesOrderItem"], item)
        for k, (pe, _) in enumerate(pricing, start=1):
            st.insert(st.sets["A_SalesOrderItemPrElement"], self._condition(order, item_no, qty, pe, k * 10))

    @staticmethod
    def _condition(order: str, item_no: str, qty: Decimal, pe: dict[str, Any], step: int) -> dict[str, Any]:
        """An item's pricing element as stored: its place in the pricing procedure and its amount."""
        pe.update(SalesOrder=order, SalesOrderItem=item_no,
                  PricingProcedureStep=pe.get("PricingProcedureStep") or f"{step:03d}",
                  PricingProcedureCounter=pe.get("PricingProcedureCounter") or "001",
                  ConditionAmount=str((qty * _dec(pe.get("ConditionRateValue"))).quantize(CENT, ROUND_HALF_UP)))
        return pe

    def reprice(self, order: str, item_no: str) -> None:
        """The item's net amount (and its PPR0's amount) from its PPR0 rate, where it has one."""
        st = self.store
        item_es, pe_es = st.sets["A_SalesOrderItem"], st.sets["A_SalesOrderItemPrElement"]
        item = st.get(item_es, {"SalesOrder": order, "SalesOrderItem": item_no})
        ppr0 = st.rows(pe_es.name, '"SalesOrder" = ? AND "SalesOrderItem" = ? AND "ConditionType" = \'PPR0\'',
                       [order, item_no])
        if not ppr0 or _dec(ppr0[0]["ConditionRateValue"]) == 0:
            return
        amount = str((_dec(item["RequestedQuantity"]) * _dec(ppr0[0]["ConditionRateValue"])).quantize(CENT, ROUND_HALF_UP))
        st.update(item_es, item, {"NetAmount": amount})
        st.update(pe_es, ppr0[0], {"ConditionAmount": amount})

    # -- entries posted below a stored entity ------------------------------------------------------
    def create_under(self, parent: EntitySet, key: dict[str, Any], nav: str, body: Any,
                     user: str) -> tuple[EntitySet, dict[str, Any]]:
        """``POST <parent>(<key>)/<nav>``: one new entry below a stored entity (``POSTABLE``).

        An item or condition posted to a sales order needs no If-Match (public clients post
        ``to_Item`` without one: SAP BPM workflow samples, index fs:36165136746) and moves the
        order's ETag on like any change of it. A condition type the item or header has already is
        refused (change it with PATCH; the sandbox's text). Entries of a business partner's family
        are completed as ``sap_s4_children`` says and move the partner's change stamp."""
        st = self.store
        if nav not in parent.navs:
            raise bad(f"Property '{nav}' is invalid: {parent.type_name.split('.')[-1]} has no navigation '{nav}'")
        target = st.sets.get(parent.navs[nav].target)
        if target is None or (parent.name, nav) not in POSTABLE:
            raise ODataError(501, "SANDBOX/501", f"Creating entries of {parent.name}/{nav} is not served by the sandbox")
        values, sub = self.split(target, body, creating=True)
        with st.transaction():
            row = st.get(parent, key)
            if parent.name in ("A_SalesOrder", "A_SalesOrderItem"):
                children.link(parent, row, nav, target, values)
                new = self._order_entry(row, target, values, sub)
                self.refresh_order(row["SalesOrder"])
                return target, new
            [new] = children.insert_rows(self, parent, row, nav, target, [(values, sub)])
            number = self.partner_of(target, new)
            if target.name == "A_BusinessPartnerTaxNumber":
                self._mirror_uscc(number, new)
            self.touch_business_partner(number, user)
            return target, new

    def _order_entry(self, parent_row: dict[str, Any], target: EntitySet, values: dict[str, Any],
                     sub: dict[str, Any]) -> dict[str, Any]:
        """An item, header partner or condition added to a stored order (its keys linked already)."""
        st = self.store
        order = parent_row["SalesOrder"]
        if target.name == "A_SalesOrderItem":
            self.no_deeper(target, sub, ("to_PricingElement",))
            pricing = (self.children(target, "to_PricingElement", sub["to_PricingElement"])[1]
                       if sub.get("to_PricingElement") else [])
            numbers = [int(i["SalesOrderItem"]) for i in st.rows(target.name, '"SalesOrder" = ?', [order])
                       if str(i["SalesOrderItem"]).isdigit()]
            self._insert_item(order, values, pricing, str((max(numbers, default=0) // 10 + 1) * 10),
                              parent_row["TransactionCurrency"])  # the next item number, by 10
            return st.get(target, {k: values[k] for k in target.keys})
        self.no_deeper(target, sub)
        if target.name == "A_SalesOrderHeaderPartner":
            if not values.get("PartnerFunction"):
                raise bad("Enter PartnerFunction", BUSINESS)
            if values.get("Customer"):
                self._customer(values["Customer"], f"Partner {values['PartnerFunction']}")
            st.insert(target, values)
            return st.get(target, {k: values[k] for k in target.keys})
        kind = values.get("ConditionType")
        if not kind:
            raise bad("Enter ConditionType", BUSINESS)
        scope = [k for k in ("SalesOrder", "SalesOrderItem") if k in target.keys]
        have = st.rows(target.name, " AND ".join(f'"{k}" = ?' for k in scope), [values[k] for k in scope])
        if any(r["ConditionType"] == kind for r in have):
            where = f"item {values['SalesOrderItem']} of " if "SalesOrderItem" in scope else ""
            raise bad(f"Condition {kind} exists already in {where}sales order {order}: change it with PATCH", BUSINESS)
        step = max((int(r["PricingProcedureStep"]) for r in have if str(r["PricingProcedureStep"]).isdigit()),
                   default=0) + 10
        if "SalesOrderItem" in scope:
            st.insert(target, self._condition(order, values["SalesOrderItem"], _dec(parent_row["RequestedQuantity"]),
                                              values, step))
            self.reprice(order, values["SalesOrderItem"])
        else:
            values.update(PricingProcedureStep=values.get("PricingProcedureStep") or f"{step:03d}",
                          PricingProcedureCounter=values.get("PricingProcedureCounter") or "001")
            st.insert(target, values)
        return st.get(target, {k: values[k] for k in target.keys})

    def delivered(self, order: str) -> dict[str, Decimal]:
        rows = self.store.conn.execute(
            'SELECT "ReferenceSDDocumentItem", "ActualDeliveryQuantity" FROM "A_OutbDeliveryItem" '
            'WHERE "ReferenceSDDocument" = ?', (order,)).fetchall()
        out: dict[str, Decimal] = {}
        for item, qty in rows:
            out[item] = out.get(item, Decimal(0)) + _dec(qty)
        return out

    def refresh_order(self, order: str, touch: bool = True) -> None:
        """Recompute item and header statuses and the net value; ``touch`` moves the change time."""
        st = self.store
        items = st.rows("A_SalesOrderItem", '"SalesOrder" = ?', [order])
        done = self.delivered(order)
        open_items, rejected, total = [], 0, Decimal(0)
        item_es = st.sets["A_SalesOrderItem"]
        for it in items:
            qty, got = _dec(it["RequestedQuantity"]), done.get(it["SalesOrderItem"], Decimal(0))
            delivery = "A" if got == 0 else ("C" if got >= qty else "B")
            if it["SalesDocumentRjcnReason"]:
                rejected += 1
                process = "C"
            else:
                total += _dec(it["NetAmount"])
                open_items.append(delivery)
                process = "C" if delivery == "C" else ("B" if delivery == "B" else "A")
            st.update(item_es, it, {"DeliveryStatus": delivery, "SDProcessStatus": process})
        if not open_items:
            overall_delivery, process = ("" if items else "A"), ("C" if items else "A")
        elif all(s == "C" for s in open_items):
            overall_delivery, process = "C", "C"
        elif all(s == "A" for s in open_items):
            overall_delivery, process = "A", ("B" if rejected else "A")
        else:
            overall_delivery, process = "B", "B"
        rejection = "A" if rejected == 0 else ("C" if rejected == len(items) else "B")
        values: dict[str, Any] = {"TotalNetAmount": str(total), "OverallTotalDeliveryStatus": overall_delivery,
                                  "OverallSDProcessStatus": process, "OverallSDDocumentRejectionSts": rejection}
        if touch:
            now = st.clock.now_ms()
            values.update(LastChangeDateTime=now, LastChangeDate=day_ms(now))
        st.update(st.sets["A_SalesOrder"], {"SalesOrder": order}, values)

    # -- changes ----------------------------------------------------------------------------------
    def check_etag(self, current: str | None, if_match: str | None) -> None:
        if current is None:
            return
        if not if_match:
            raise ODataError(428, PRECONDITION_REQUIRED,
                             "Precondition required: send If-Match with the ETag of the entity you read")
        if if_match.strip() != "*" and current not in [t.strip() for t in if_match.split(",")]:
            raise ODataError(412, PRECONDITION, "Precondition failed: the entity was changed since you read it "
                                                f"(current ETag {current})")

    def etag(self, es: EntitySet, row: dict[str, Any]) -> str | None:
        """The ETag an entity answers: its own, or its sales order's (ORDER_ENTRIES)."""
        return self.order_etag(row["SalesOrder"]) if es.name in ORDER_ENTRIES else etag_of(es, row)

    def order_etag(self, order: str) -> str | None:
        es = self.store.sets["A_SalesOrder"]
        rows = self.store.rows("A_SalesOrder", '"SalesOrder" = ?', [order])
        return etag_of(es, rows[0]) if rows else None

    def patch(self, es: EntitySet, key: dict[str, Any], body: Any, if_match: str | None, user: str) -> None:
        st = self.store
        with st.transaction():
            row = st.get(es, key)
            if not es.updatable:
                raise bad(f"{es.name} cannot be changed", NOT_ALLOWED, 405)
            if es.name == "A_SalesOrder":
                self.check_etag(etag_of(es, row), if_match)
                values, navs = self.split(es, body, creating=False)
                self.no_deeper(es, navs)
                st.update(es, key, {k: v for k, v in values.items() if k not in es.keys})
                self.refresh_order(row["SalesOrder"])
            elif es.name in ORDER_ENTRIES:
                self.check_etag(self.order_etag(row["SalesOrder"]), if_match)
                values, navs = self.split(es, body, creating=False)
                self.no_deeper(es, navs)
                if es.name == "A_SalesOrderItem":
                    self._change_item(row, values)
                st.update(es, key, {k: v for k, v in values.items() if k not in es.keys})
                if "SalesOrderItem" in row:
                    self.reprice(row["SalesOrder"], row["SalesOrderItem"])
                self.refresh_order(row["SalesOrder"])
            elif es.name in PARTNER_SETS:
                self.check_etag(etag_of(es, row), if_match)
                values, navs = self.split(es, body, creating=False)
                self.no_deeper(es, navs)
                st.update(es, key, {k: v for k, v in values.items() if k not in es.keys})
                number = self.partner_of(es, row)
                if es.name == "A_BusinessPartnerTaxNumber":
                    self._mirror_uscc(number, {**row, **values})
                self.touch_business_partner(number, user)
            else:
                raise ODataError(501, "SANDBOX/501", f"Changing {es.name} is not served by the sandbox")

    def _change_item(self, row: dict[str, Any], values: dict[str, Any]) -> None:
        done = self.delivered(row["SalesOrder"]).get(row["SalesOrderItem"], Decimal(0))
        item = f"Item {row['SalesOrderItem']} of sales order {row['SalesOrder']}"
        if values.get("SalesDocumentRjcnReason") and done >= _dec(row["RequestedQuantity"]):
            raise bad(f"{item} is fully delivered and cannot be rejected", BUSINESS)
        if "Material" in values and values["Material"] != row["Material"] and done > 0:
            raise bad(f"{item} is delivered: the material cannot be changed", BUSINESS)
        if "RequestedQuantity" in values:
            qty = _dec(values["RequestedQuantity"])
            if qty <= 0 or qty < done:
                raise bad(f"{item}: quantity {qty} is below the delivered quantity {done}", BUSINESS)
            price = _dec(row["NetAmount"]) / _dec(row["RequestedQuantity"])
            values["NetAmount"] = str((qty * price).quantize(CENT, ROUND_HALF_UP))

    def create_tax_number(self, body: Any, user: str) -> dict[str, Any]:
        st = self.store
        es = st.sets["A_BusinessPartnerTaxNumber"]
        values, navs = self.split(es, body, creating=True)
        self.no_deeper(es, navs)
        for name in ("BusinessPartner", "BPTaxType"):
            if not values.get(name):
                raise bad(f"Enter {name}", BUSINESS)
        with st.transaction():
            st.get(st.sets["A_BusinessPartner"], {"BusinessPartner": values["BusinessPartner"]})
            st.insert(es, values)
            self._mirror_uscc(values["BusinessPartner"], values)
            self.touch_business_partner(values["BusinessPartner"], user)
            return st.get(es, values)

    # -- the warehouse ----------------------------------------------------------------------------
    def partial(self, order: str) -> bool:
        """Every third order (by a hash of seed and number) ships in two deliveries."""
        return int(hashlib.sha256(f"{self.seed}:{order}".encode()).hexdigest(), 16) % 3 == 0

    def ship(self) -> dict[str, int]:
        """One delivery for every open, unrejected, unblocked order: all it still needs, or, for the
        first delivery of a split order, half of each item (the rest comes with the next call)."""
        st = self.store
        counts = {"deliveries": 0, "items": 0, "partial": 0}
        with st.transaction():
            orders = st.rows("A_SalesOrder", '"OverallSDProcessStatus" <> \'C\' AND "DeliveryBlockReason" = \'\' '
                             'ORDER BY "SalesOrder"')
            for order in orders:
                number = order["SalesOrder"]
                done = self.delivered(number)
                items = [it for it in st.rows("A_SalesOrderItem", '"SalesOrder" = ? ORDER BY CAST("SalesOrderItem" '
                                              'AS INTEGER)', [number]) if not it["SalesDocumentRjcnReason"]]
                first = not done
                split = first and self.partial(number)
                lines = []
                for it in items:
                    left = _dec(it["RequestedQuantity"]) - done.get(it["SalesOrderItem"], Decimal(0))
                    if left <= 0:
                        continue
                    qty = left
                    if split:
                        half = (left / 2).quantize(Decimal(1) if left == left.to_integral_value() else Decimal("0.001"),
                                                   ROUND_DOWN)
                        qty = half if half > 0 else left
                    lines.append((it, qty))
                if not lines:
                    continue
                self._deliver(order, lines)
                counts["deliveries"] += 1
                counts["items"] += len(lines)
                counts["partial"] += int(split and any(q < _dec(it["RequestedQuantity"]) for it, q in lines))
                self.refresh_order(number)
        return counts

    def _deliver(self, order: dict[str, Any], lines: list[tuple[dict[str, Any], Decimal]]) -> None:
        st = self.store
        number = str(st.next_number("dl", DL_START))
        now = st.clock.now_ms()
        ship_to = st.conn.execute('SELECT "Customer" FROM "A_SalesOrderHeaderPartner" WHERE "SalesOrder" = ? AND '
                                  '"PartnerFunction" IN (\'SH\', \'WE\')', (order["SalesOrder"],)).fetchone()
        digest = int(hashlib.sha256(f"{self.seed}:{number}".encode()).hexdigest(), 16)
        stamps = {"CreationDate": day_ms(now), "CreationTime": sec_of_day(now), "CreatedByUser": WAREHOUSE_USER,
                  "LastChangeDate": day_ms(now), "DeliveryVersion": "0001"}
        st.insert(st.sets["A_OutbDeliveryHeader"], {
            **stamps, "DeliveryDocument": number, "DeliveryDocumentType": "LF", "SDDocumentCategory": "J",
            "SoldToParty": order["SoldToParty"], "ShipToParty": ship_to[0] if ship_to else order["SoldToParty"],
            "SalesOrganization": order["SalesOrganization"], "ShippingPoint": PLANT, "DeliveryDate": day_ms(now),
            "DocumentDate": day_ms(now), "PlannedGoodsIssueDate": day_ms(now), "ActualGoodsMovementDate": day_ms(now),
            "ActualGoodsMovementTime": sec_of_day(now), "LastChangedByUser": WAREHOUSE_USER,
            "BillOfLading": f"SF{digest % 10 ** 12:012d}", "OverallGoodsMovementStatus": "C",
            "OverallPickingStatus": "C", "OverallSDProcessStatus": "B", "TransactionCurrency": order["TransactionCurrency"],
            "Shippinglocationtimezone": "UTC+8", "Receivinglocationtimezone": "UTC+8"})
        for n, (it, qty) in enumerate(lines, start=1):
            st.insert(st.sets["A_OutbDeliveryItem"], {
                **stamps, "DeliveryDocument": number, "DeliveryDocumentItem": str(n * 10),
                "DeliveryDocumentItemCategory": "TAN", "SDDocumentCategory": "J", "Material": it["Material"],
                "DeliveryDocumentItemText": it["SalesOrderItemText"], "ActualDeliveryQuantity": str(qty),
                "OriginalDeliveryQuantity": str(qty), "ActualDeliveredQtyInBaseUnit": str(qty),
                "DeliveryQuantityUnit": it["RequestedQuantityUnit"], "BaseUnit": it["RequestedQuantityUnit"],
                "Plant": it["ProductionPlant"] or PLANT, "StorageLocation": "101A", "GoodsMovementStatus": "C",
                "PickingStatus": "C", "SDProcessStatus": "B", "GoodsMovementType": "601",
                "ReferenceSDDocument": it["SalesOrder"], "ReferenceSDDocumentItem": it["SalesOrderItem"],
                "ReferenceSDDocumentCategory": "C"})
            self._serials(number, str(n * 10), it["Material"], qty, now)

    def _serials(self, delivery: str, item: str, material: str, qty: Decimal, now: int) -> None:
        """A serialised material's units get serial numbers at goods issue: the item's serial number
        list (A_SerialNmbrDelivery, one per item) and one object per unit (A_MaintenanceItemObject).
        The sandbox serialises the instruments (product group 01…) shipped in whole units."""
        st = self.store
        group = st.conn.execute('SELECT "ProductGroup" FROM "A_Product" WHERE "Product" = ?', (material,)).fetchone()
        if not group or not str(group[0] or "").startswith("01") or qty != qty.to_integral_value() or qty <= 0:
            return
        objects = st.next_number("objk", 1)
        st.insert(st.sets["A_SerialNmbrDelivery"], {
            "DeliveryDocument": delivery, "DeliveryDocumentItem": item, "MaintenanceItemObjectList": objects,
            "DeliveryDate": day_ms(now), "SDDocumentCategory": "J"})
        for k in range(1, int(qty) + 1):
            serial = st.next_number("sernr", 1)
            st.insert(st.sets["A_MaintenanceItemObject"], {
                "MaintenanceItemObject": k, "MaintenanceItemObjectList": objects, "Material": material,
                "SerialNumber": f"S4{serial:010d}"})
