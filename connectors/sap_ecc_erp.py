"""SAP ECC in the ``erp`` seat: customers and sales orders over SOAP (connectors/sap_ecc.py).

What this seat does in this hub: create customers (with the binding's sales area, so orders can
be placed for them), read them back by number, create sales orders. What it does not:
products, shipments and receipts (``supports`` says so; products and shipments are S/4's in
this issue), and changing or cancelling an order or a customer: no change service is bound, so
:meth:`SapEccErp.refusal` refuses a replace or cancel with the reason (the order is quarantined,
never dropped) and a customer edit fails with the reason.

Binding options (deploy/bindings.sap-ecc.yaml): ``sales_org``, ``distribution_channel``,
``division`` and ``order_type`` (the internal document type: ``TA`` is what English screens show
as ``OR``); optionally ``account_group`` (KNA1-KTOKD) and ``company_code`` (a CompanyData row).
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

from connectors.sap_ecc import CUSTOMERS, ORDERS, SapEccConnector, alpha, customer_ref
from hub.errors import ConfigurationError
from hub.types import Binding, OrderState, Record

MAPPINGS = {
    "customer.in": "sap_ecc_customer_in",
    "customer.out": "sap_ecc_customer_out",
    "sales_order.out": "sap_ecc_sales_order_out",
    "sales_order_line.out": "sap_ecc_sales_order_line_out",
}
CAPABILITIES = frozenset({"customers", "sales_orders"})
#: SAP changes documents in place; only ``add`` is bound here (refusal() stops the others).
LIFECYCLE = {"add": ("add",), "replace": ("change",), "cancel": ("cancel",)}
ORG = {"SALES_ORG": "sales_org", "SALES_CHANNEL": "distribution_channel", "SALES_DIVISION": "division",
       "ORDER_TYPE": "order_type"}
NO_CHANGE = ("no sales order change or cancel service is bound for SAP ECC in this hub (only the create, "
             "ZBAPI_SALESORDER_CREATE): {what} order {number} in SAP (VA02), or revert the CRM change")


def material(code: Any) -> str:
    """MATN1 input conversion (ECC's 18-character material number): numeric codes right-aligned
    with leading zeros, others in upper case; the BAPIs do not convert a material number."""
    return alpha(code, 18)


class SapEccErp:
    """The ``erp`` seat played by SAP ECC (bindings: ``system: sap_ecc``, connection ``soap``)."""

    mappings: Mapping[str, str] = MAPPINGS
    order_stream = ORDERS
    customer_stream = CUSTOMERS

    def __init__(self, binding: Binding) -> None:
        self.binding = binding

    @property
    def system(self) -> str:
        return self.binding.name

    @property
    def label(self) -> str:
        return self.binding.label

    def mapping(self, purpose: str) -> str:
        if purpose not in MAPPINGS:
            raise ConfigurationError(f"{self.binding.where}: SAP ECC has no {purpose!r} in this hub (it does "
                                     f"{', '.join(sorted(MAPPINGS))}; products and shipments are S/4's)")
        return MAPPINGS[purpose]

    def supports(self, capability: str) -> bool:
        return capability in CAPABILITIES

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
        """The PO number (CUST_PO → PURCH_NO_C, 35 characters) of the n-th create of one hub order."""
        return f"HUB-{hashlib.sha1(f'{hub_id}:{revision}'.encode('utf-8')).hexdigest()[:20].upper()}-{revision}"

    def order_document(self, phase: str, hub_id: str, number: str | None, body: Mapping[str, Any] | None,
                       key: str | None) -> Record:
        """A ZBAPI_SALESORDER_CREATE record: the mapped header and items, the binding's sales
        area and document type, keys in internal form, ``_ref`` = the PO number."""
        if phase != "add":
            raise ConfigurationError(NO_CHANGE.format(what=phase, number=number))
        doc = dict(body or {})
        items = [{**i, "MATERIAL": material(i.get("MATERIAL"))} for i in doc.pop("IT_SO_ITEM", None) or []]
        sold_to = alpha(doc.get("SOLD_TO_PARTY"))
        return {**doc, **{field: self.option(opt) for field, opt in ORG.items()}, "SOLD_TO_PARTY": sold_to,
                "SHIP_TO_PARTY": alpha(doc.get("SHIP_TO_PARTY") or sold_to), "IT_SO_ITEM": items,
                "_key": hub_id, "_op": "add", "_ref": key}

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
