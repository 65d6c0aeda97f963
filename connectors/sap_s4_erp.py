"""SAP S/4HANA in the ``erp`` seat: what the flows ask of an ERP, answered over S/4's OData APIs
(:class:`connectors.sap_s4.SapS4Connector`).

- Customers are business partners with the customer role. A create carries the hub's reference
  in ``BusinessPartnerIDByExtSystem`` (20 characters, derived from the hub id), by which it is
  looked up before it is sent (again); the binding's sales area is deep-inserted with it, so the
  new customer can take orders at once.
- Sales orders change in place (``replace`` = ``("change",)``: PATCH with ``If-Match``; items the
  CRM dropped get the binding's reason for rejection) and a cancellation rejects every item
  (``cancel`` = ``("cancel",)``); SAP keeps the document and its history. A create carries the
  idempotency key in ``PurchaseOrderByCustomer`` (35 characters).
- Named lookups: order state from A_SalesOrder (overall process, delivery and rejection status)
  and the outbound delivery items that reference the order; deliveries' items and the sales
  order items they ship, by key.

Binding options (deploy/bindings.sap.yaml): ``sales_org``, ``distribution_channel``,
``division``, ``order_type`` (required: every order and new customer carries them),
``currency`` (default CNY), ``customer_sales_area`` (default true: a new customer is created with
the binding's sales area, ``to_Customer/to_CustomerSalesArea``; false where sales areas are kept
by someone else, e.g. a master-data workflow), ``rejection_reason`` (the reason for rejection a cancel or a dropped
item gets; required for those, a configuration error otherwise).
"""
from __future__ import annotations

import base64
import hashlib
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, Sequence

from connectors.sap_s4 import SapS4Connector
from connectors.seat import ErpSeat
from hub.errors import ConfigurationError
from hub.types import Binding, OrderState, Record

MAPPINGS = {
    "customer.in": "sap_s4_customer_in",
    "customer.out": "sap_s4_customer_out",
    "product.in": "sap_s4_product_in",
    "sales_order.out": "sap_s4_sales_order_out",
    "sales_order_line.out": "sap_s4_sales_order_line_out",
    "shipment.in": "sap_s4_shipment_in",
    "shipment_line.in": "sap_s4_shipment_line_in",
    "sales_order_line.in": "sap_s4_order_line_in",
}
ORG = {"order_type": "SalesOrderType", "sales_org": "SalesOrganization",
       "distribution_channel": "DistributionChannel", "division": "OrganizationDivision"}
ORDER_HEAD = ["OverallSDProcessStatus", "OverallTotalDeliveryStatus", "OverallSDDocumentRejectionSts"]
KEY_NS = uuid.UUID("6f1d2c3b-8a4e-4f7d-9b0c-5e6a7d8c9b01")
REF_LENGTH = 20   # A_BusinessPartner.BusinessPartnerIDByExtSystem MaxLength
NAME_LINE = 40    # A_BusinessPartner.OrganizationBPName1–4 MaxLength


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def partner_reference(hub_id: str) -> str:
    """The hub's reference on a business partner: ``H`` + 19 base32 characters of SHA-256(hub id)
    (95 bits; fits BusinessPartnerIDByExtSystem's 20)."""
    return "H" + _b32(hashlib.sha256(hub_id.encode()).digest())[:REF_LENGTH - 1]


class SapS4Erp(ErpSeat):
    """The ``erp`` seat played by S/4HANA (bindings: ``system: sap_s4``, connection ``api``)."""

    MAPPINGS = MAPPINGS
    SHIPPED = "has outbound deliveries"
    UNDO_SHIPPED = "handle it in SAP (a return)"
    order_stream = "A_SalesOrder"
    customer_stream = "A_BusinessPartner"
    binding: Binding

    def connector(self, columns: Mapping[str, Sequence[str]] | None = None, write: bool = False) -> SapS4Connector:
        return SapS4Connector(self.binding.connection("api"), columns=dict(columns or {}))

    def _option(self, name: str, default: Any = None) -> str:
        value = self.binding.options.get(name, default)
        if value in (None, ""):
            raise ConfigurationError(f"{self.binding.where}: erp binding {self.binding.name!r} (sap_s4) needs "
                                     f"options.{name}")
        return str(value)

    # --- named lookups ---------------------------------------------------------------------------

    def customers_by_tax_number(self, usccs: Sequence[str]) -> dict[str, list[str]]:
        """Partners holding each USCC as a tax number (any category: one number is one company),
        kept where the partner has the customer role."""
        c = self.connector()
        rows = c.lookup("A_BusinessPartnerTaxNumber", "BPTaxNumber", list(usccs), ["BPTaxNumber"])
        partners = sorted({str(r["BusinessPartner"]) for r in rows})
        customers = {str(r["BusinessPartner"]) for r in c.lookup("A_BusinessPartner", "BusinessPartner", partners,
                                                                  ["Customer"]) if r.get("Customer")}
        out: dict[str, list[str]] = {}
        for row in sorted(rows, key=lambda r: (len(str(r["BusinessPartner"])), str(r["BusinessPartner"]))):
            bp = str(row["BusinessPartner"])
            if bp in customers and bp not in out.get(str(row["BPTaxNumber"]), []):
                out.setdefault(str(row["BPTaxNumber"]), []).append(bp)
        return out

    def order_state(self, numbers: Sequence[str]) -> OrderState:
        """A_SalesOrder's status of ``numbers``; shipped = Σ ActualDeliveryQuantity of the outbound
        delivery items that reference each order (set-based, 40 numbers a query)."""
        state = OrderState()
        if not numbers:
            return state
        c = self.connector()
        for row in c.lookup("A_SalesOrder", "SalesOrder", list(numbers), ORDER_HEAD):
            number = str(row["SalesOrder"])
            if row.get("OverallSDDocumentRejectionSts") == "C":
                state.closed[number] = "rejected in SAP (every item has a reason for rejection)"
            elif row.get("OverallSDProcessStatus") == "C":
                state.closed[number] = "completed in SAP (overall status C)"
        for row in c.lookup("A_OutbDeliveryItem", "ReferenceSDDocument", list(numbers),
                            ["ReferenceSDDocument", "ActualDeliveryQuantity"]):
            number = str(row["ReferenceSDDocument"])
            state.shipped[number] = state.shipped.get(number, Decimal(0)) + _dec(row.get("ActualDeliveryQuantity"))
        return state

    def dispatch_lines(self, dispatch_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """The items of outbound deliveries ``dispatch_keys`` (DeliveryDocument numbers)."""
        return self.connector().lookup("A_OutbDeliveryItem", "DeliveryDocument", list(dispatch_keys), list(columns))

    def order_lines(self, line_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """Sales order items by ``"<SalesOrder>/<SalesOrderItem>"`` (a delivery line's so_line_key)."""
        return self.connector().lookup("A_SalesOrderItem", "__key", list(line_keys), list(columns))

    # --- document lifecycle ------------------------------------------------------------------------

    def idempotency_key(self, hub_id: str, revision: int) -> str:
        """PurchaseOrderByCustomer of the n-th SAP order of one hub order: ``HUB`` + 26 base32
        characters of a UUID5 (29 of its 35 characters)."""
        return "HUB" + _b32(uuid.uuid5(KEY_NS, f"{hub_id}:{revision}").bytes)

    def order_document(self, phase: str, hub_id: str, number: str | None, body: Mapping[str, Any] | None,
                       key: str | None) -> Record:
        """The record :class:`SapS4Connector` writes on stream ``A_SalesOrder`` for one phase."""
        if phase == "add":
            if not key:
                raise ConfigurationError("an SAP order create needs its idempotency key (PurchaseOrderByCustomer)")
            org = {prop: self._option(name) for name, prop in ORG.items()}
            return {**(body or {}), **org, "PurchaseOrderByCustomer": key, "_key": hub_id, "_op": "add"}
        if not number:
            raise ConfigurationError(f"an SAP order {phase} needs the SAP order number")
        reason = self.binding.options.get("rejection_reason")
        if phase == "cancel":
            return {"SalesOrder": number, "_key": hub_id, "_op": "cancel", "_reject_with": self._option("rejection_reason")}
        if phase == "change":
            record = {**(body or {}), "SalesOrder": number, "_key": hub_id, "_op": "change"}
            if reason:
                record["_reject_with"] = str(reason)
            return record
        raise ConfigurationError(f"SAP orders have no phase {phase!r} (lifecycle: add, change, cancel)")

    def _sales_area_on_create(self) -> bool:
        value = self.binding.options.get("customer_sales_area", True)
        return value not in (False, "false", "no", 0, "0")

    @staticmethod
    def _name_lines(body: Mapping[str, Any]) -> dict[str, str]:
        """An organisation's name over its four name lines of 40 (OrganizationBPName1–4, as SAP
        keeps a long name); lines it does not need are sent empty, so a shorter new name leaves
        nothing of the old one behind."""
        name = body.get("OrganizationBPName1")
        if not isinstance(name, str):
            return {}
        return {f"OrganizationBPName{i + 1}": name[i * NAME_LINE:(i + 1) * NAME_LINE] for i in range(4)}

    def customer_document(self, hub_id: str, op: str, number: str | None, body: Mapping[str, Any]) -> Record:
        """A business partner create (``add``, with the hub's reference and the sales area) or
        change (``edit``, by partner number) for stream ``A_BusinessPartner``."""
        record = {**body, **self._name_lines(body), "BusinessPartnerIDByExtSystem": partner_reference(hub_id),
                  "_key": hub_id, "_op": op}
        if op == "edit":
            if not number:
                raise ConfigurationError("an SAP business partner edit needs the partner number")
            record["BusinessPartner"] = number
        elif op == "add" and self._sales_area_on_create():
            area = ",".join(f"{prop}={self._option(name)}" for name, prop in
                            (("sales_org", "SalesOrganization"), ("distribution_channel", "DistributionChannel"),
                             ("division", "Division")))
            record[f"to_Customer/to_CustomerSalesArea[{area}]/Currency"] = self._option("currency", "CNY")
        return record
