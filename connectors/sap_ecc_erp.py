"""SAP ECC in the ``erp`` seat: customers, products and sales orders over SOAP (connectors/sap_ecc.py).

What this seat does in this hub: create customers (with the binding's sales area, so orders can
be placed for them), read them back by number and find them by USCC (search term 2), read the
materials for product_master, create sales orders. What it does not: shipments and receipts
(its card in connectors.SYSTEMS says so; shipments are S/4's in this issue), and changing or
cancelling an order or a customer: no change service is bound, so :meth:`SapEccErp.refusal`
refuses a replace or cancel with the reason (the order is quarantined, never dropped) and a
customer edit fails with the reason.

Orders go in one of two ways, as the ``soap`` connection's ``extra.order_commit`` says (the
connection's, because it names which service the installation exposes): ``wrapper`` (default)
through the reference Z wrapper ZBAPI_SALESORDER_CREATE (mappings ``sap_ecc_zwrapper_*``; no
price, so a special price is refused), ``standard`` through BAPI_SALESORDER_CREATEFROMDAT2 with
BAPI_TRANSACTION_COMMIT (mappings ``sap_ecc_sales_order_*``). The standard mappings name BAPI
table rows as ``TABLE[FIELD=VALUE].FIELD`` (``ORDER_PARTNERS[PARTN_ROLE=AG].PARTN_NUMB``,
``ORDER_CONDITIONS_IN[COND_TYPE=PR00].COND_VALUE``, ``ORDER_TEXT[TEXT_ID=Z001].TEXT_LINE``);
:meth:`SapEccErp.order_document` turns them into the BAPI's tables, each item's rows carrying
its ITM_NUMBER, so condition types and text IDs (customizing) are the mapping's to change.

Binding options (deploy/bindings.sap-ecc.yaml): ``sales_org``, ``distribution_channel``,
``division`` and ``order_type`` (the internal document type: ``TA`` is what English screens show
as ``OR``); optionally ``account_group`` (KNA1-KTOKD) and ``company_code`` (a CompanyData row).
"""
from __future__ import annotations

import hashlib
import re
from functools import cached_property
from typing import Any, Mapping, Sequence

from connectors.sap_ecc import CUSTOMERS, MATERIALS, ORDERS, SapEccConnector, customer_ref
from connectors.sap_ecc_keys import alpha, matn1
from connectors.seat import ErpSeat
from hub.errors import ConfigurationError
from hub.types import OrderState, Record

#: The standard BAPI's mappings (extra.order_commit standard) …
MAPPINGS = {
    "customer.in": "sap_ecc_customer_in",
    "customer.out": "sap_ecc_customer_out",
    "product.in": "sap_ecc_product_in",
    "sales_order.out": "sap_ecc_sales_order_out",
    "sales_order_line.out": "sap_ecc_sales_order_line_out",
}
#: … and the Z wrapper's order mappings (extra.order_commit wrapper).
WRAPPER_MAPPINGS = {
    "sales_order.out": "sap_ecc_zwrapper_sales_order_out",
    "sales_order_line.out": "sap_ecc_zwrapper_sales_order_line_out",
}
#: SAP changes documents in place; only ``add`` is bound here (refusal() stops the others).
LIFECYCLE = {"add": ("add",), "replace": ("change",), "cancel": ("cancel",)}
WRAPPER_ORG = {"SALES_ORG": "sales_org", "SALES_CHANNEL": "distribution_channel", "SALES_DIVISION": "division",
               "ORDER_TYPE": "order_type"}
STANDARD_ORG = {"ORDER_HEADER_IN.SALES_ORG": "sales_org", "ORDER_HEADER_IN.DISTR_CHAN": "distribution_channel",
                "ORDER_HEADER_IN.DIVISION": "division", "ORDER_HEADER_IN.DOC_TYPE": "order_type"}
NO_CHANGE = ("no sales order change or cancel service is bound for SAP ECC in this hub (only the create): {what} "
             "order {number} in SAP (VA02), or revert the CRM change")
#: ``TABLE[FIELD=VALUE].FIELD``: one field of the row of TABLE whose FIELD is VALUE.
ROW_FIELD = re.compile(r"^(?P<table>[A-Z_]+)\[(?P<key>[A-Z_]+)=(?P<value>[^\]]*)\]\.(?P<field>[A-Z_]+)$")
#: A text row without its line is not sent (a line without a special price has no approval number).
NEEDS = {"ORDER_TEXT": "TEXT_LINE"}


def material(code: Any) -> str:
    """MATN1 input conversion (ECC's 18-character material number); the BAPIs do not convert one."""
    return matn1(code)


def _rows(fields: Mapping[str, Any], item: str | None) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(plain fields, table rows) of a mapped header or item: ``TABLE[K=V].F`` fields become rows
    of TABLE keyed by K=V (and by the item's ITM_NUMBER, when ``item`` is given)."""
    plain: dict[str, Any] = {}
    keyed: dict[tuple[str, str, str], dict[str, Any]] = {}
    for name, value in fields.items():
        m = ROW_FIELD.match(name)
        if m is None:
            plain[name] = value
            continue
        row = keyed.setdefault((m["table"], m["key"], m["value"]),
                               {**({"ITM_NUMBER": item} if item else {}), m["key"]: m["value"]})
        row[m["field"]] = value
    tables: dict[str, list[dict[str, Any]]] = {}
    for (table, _, _), row in keyed.items():
        need = NEEDS.get(table)
        if need is None or row.get(need) not in (None, ""):
            tables.setdefault(table, []).append(row)
    return plain, tables


class SapEccErp(ErpSeat):
    """The ``erp`` seat played by SAP ECC (bindings: ``system: sap_ecc``, connection ``soap``)."""

    MAPPINGS = MAPPINGS
    order_stream = ORDERS
    customer_stream = CUSTOMERS
    product_stream = MATERIALS

    @cached_property
    def order_commit(self) -> str:
        """How orders go in: the ``soap`` connection's ``extra.order_commit`` (module docstring)."""
        return str(self.binding.connection("soap").extra.get("order_commit", "wrapper"))

    def mapping(self, purpose: str) -> str:
        if purpose in WRAPPER_MAPPINGS and self.order_commit == "wrapper":
            return WRAPPER_MAPPINGS[purpose]
        if purpose not in MAPPINGS:
            raise ConfigurationError(f"{self.binding.where}: SAP ECC has no {purpose!r} in this hub (it does "
                                     f"{', '.join(sorted(MAPPINGS))}; shipments are S/4's)")
        return MAPPINGS[purpose]

    def connector(self, columns: Mapping[str, Sequence[str]] | None = None, write: bool = False) -> SapEccConnector:
        return SapEccConnector(self.binding.connection("soap"), columns=columns)

    def option(self, name: str) -> str:
        value = self.binding.options.get(name)
        if value in (None, ""):
            raise ConfigurationError(f"{self.binding.where}: the SAP ECC binding {self.binding.name!r} needs "
                                     f"options.{name}")
        return str(value)

    # --- named lookups -----------------------------------------------------------------------------
    def customers_by_tax_number(self, usccs: Sequence[str]) -> dict[str, list[str]]:
        """USCC → customers whose search term 2 is it (the hub puts the USCC there). These services
        have no search by tax number (KNA1-STCD5), so a customer made by hand is found only if its
        search term 2 is its USCC."""
        connector = self.connector()
        out: dict[str, list[str]] = {}
        for uscc in dict.fromkeys(u for u in usccs if u):
            found = connector.customers_by_search_term(uscc, "CustomerAdditionalKeyWordsText")
            if found:
                out[uscc] = found
        return out

    def order_state(self, numbers: Sequence[str]) -> OrderState:
        """Nothing is read: GETLIST lists by customer, not by order number, and no change or
        cancel is bound, so :meth:`refusal` needs no state."""
        return OrderState()

    def refusal(self, op: str, number: str, state: OrderState) -> str | None:
        if op in ("replace", "cancel"):
            return NO_CHANGE.format(what="change" if op == "replace" else "cancel", number=number)
        return None

    def dispatch_lines(self, dispatch_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        raise ConfigurationError("SAP ECC shipments are not bound in this hub (deliveries are S/4's in this issue)")

    def order_lines(self, line_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        raise ConfigurationError("SAP ECC order lines are not read in this hub (shipments are S/4's in this issue)")

    # --- documents ----------------------------------------------------------------------------------
    def lifecycle(self, op: str) -> tuple[str, ...]:
        return LIFECYCLE[op]

    def idempotency_key(self, hub_id: str, revision: int) -> str:
        """The PO number (CUST_PO / PURCH_NO_C, 35 characters) of the n-th create of one hub order."""
        return f"HUB-{hashlib.sha1(f'{hub_id}:{revision}'.encode('utf-8')).hexdigest()[:20].upper()}-{revision}"

    def order_document(self, phase: str, hub_id: str, number: str | None, body: Mapping[str, Any] | None,
                       key: str | None) -> Record:
        """The record the connector creates: the mapped header and items, the binding's sales area
        and document type, keys in internal form, ``_ref`` = the PO number (the idempotency key)."""
        if phase != "add":
            raise ConfigurationError(NO_CHANGE.format(what=phase, number=number))
        doc = dict(body or {})
        if self.order_commit == "standard":
            return self._standard_document(hub_id, doc, key)
        items = [{**i, "MATERIAL": material(i.get("MATERIAL"))} for i in doc.pop("IT_SO_ITEM", None) or []]
        sold_to = alpha(doc.get("SOLD_TO_PARTY"))
        return {**doc, **{field: self.option(opt) for field, opt in WRAPPER_ORG.items()}, "SOLD_TO_PARTY": sold_to,
                "SHIP_TO_PARTY": alpha(doc.get("SHIP_TO_PARTY") or sold_to), "IT_SO_ITEM": items,
                "_key": hub_id, "_op": "add", "_ref": key}

    def _standard_document(self, hub_id: str, doc: dict[str, Any], key: str | None) -> Record:
        """BAPI_SALESORDER_CREATEFROMDAT2's parameters: ORDER_HEADER_IN fields, ORDER_PARTNERS (ALPHA),
        ORDER_ITEMS_IN (ITM_NUMBER NUMC 6, MATERIAL MATN1) and each item's schedule lines,
        conditions and texts as rows of their tables."""
        lines = doc.pop("ORDER_ITEMS_IN", None) or []
        header, tables = _rows(doc, None)
        for partner in tables.get("ORDER_PARTNERS", []):
            partner["PARTN_NUMB"] = alpha(partner.get("PARTN_NUMB"))
        items = []
        for line in lines:
            posnr = f"{int(str(line.get('ITM_NUMBER') or 0)):06d}"
            item, rows = _rows({k: v for k, v in line.items() if k != "ITM_NUMBER"}, posnr)
            items.append({"ITM_NUMBER": posnr, **item, "MATERIAL": material(item.get("MATERIAL"))})
            for table, found in rows.items():
                tables.setdefault(table, []).extend(found)
        return {**header, **{field: self.option(opt) for field, opt in STANDARD_ORG.items()}, **tables,
                "ORDER_ITEMS_IN": items, "_key": hub_id, "_op": "add", "_ref": key}

    def customer_document(self, hub_id: str, op: str, number: str | None, body: Mapping[str, Any]) -> Record:
        """A ZfmCustomerMasterCreate record: the mapped central data, extended to the binding's
        sales area (SalesData) and, with ``company_code``, to that company code (CompanyData)."""
        record: Record = {**body, "_key": hub_id, "_op": op, "_ref": customer_ref(hub_id),
                          "SalesData": [{"Vkorg": self.option("sales_org"), "Vtweg": self.option("distribution_channel"),
                                         "Spart": self.option("division")}]}
        if self.binding.options.get("account_group"):
            record["CentralData.Central.Ktokd"] = str(self.binding.options["account_group"])
        if self.binding.options.get("company_code"):
            record["CompanyData"] = [{"CompanyCode": str(self.binding.options["company_code"])}]
        if op == "edit":
            record["CentralData.Customer"] = alpha(number)
        return record
