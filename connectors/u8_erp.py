"""用友 U8 in the ``erp`` seat: what the flows ask of an ERP, answered the U8 way.

- Reads go through :class:`connectors.u8.U8Connector` (ODBC); writes through its OpenAPI side.
- Named lookups read U8's tables set-based (Customer.cCusRegCode, SO_SOMain / SO_SODetails,
  DispatchLists, Ap_CloseBills, SaleBillVouch / SaleBillVouchs): the flows never see a table name.
- Lifecycle: U8's OpenAPI has no order edit or delete (apiCenter saleorder: add, get, verify,
  close …), so a change closes the U8 order and adds the new version, and a cancellation
  closes it (docs/adr/0003-orders-to-u8.md). Both only while U8 allows: nothing dispatched yet
  and, for a change, not verified (审核).
- Idempotency: every add carries ``biz_id``; U8 keeps biz_id ↔ voucher one to one.
"""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from functools import cached_property
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, Sequence

from connectors.seat import ErpSeat
from connectors.u8 import U8Connector, U8OpenApi
from hub.types import CreditFacts, OrderState, Record

#: Mapping specs (mappings/specs/) for each purpose the flows name.
MAPPINGS = {
    "customer.in": "u8_customer_to_customer",
    "customer.out": "customer_to_u8",
    "product.in": "u8_inventory_to_product",
    "sales_order.out": "sales_order_to_u8",
    "sales_order_line.out": "sales_order_line_to_u8",
    "shipment.in": "u8_dispatch_to_shipment",
    "shipment_line.in": "u8_dispatch_line_to_shipment_line",
    "sales_order_line.in": "u8_order_line_to_sales_order_line",   # the order lines deliveries ship
    "receipt.in": "u8_receipt_to_receipt",
    "invoice.in": "u8_invoice_to_item",
    "payer.in": "u8_customer_to_payer",
    "receipt.out": "receipt_to_u8_accept",
    "stock.in": "u8_current_stock_to_stock",
}
#: Write phases per operation (see the module docstring).
LIFECYCLE = {"add": ("add",), "replace": ("close", "add"), "cancel": ("close",)}
#: The columns each named lookup reads.
ORDER_HEAD = ["cSOCode", "cVerifier", "dverifydate", "cCloser", "dclosedate"]
ORDER_LINE = ["cSOCode", "iFHQuantity"]
BIZ_NS = uuid.UUID("a3f0c6d2-5e1b-4b8f-8d2a-7c9e1f0b3a54")


def _yuan(fen: int) -> str:
    """Fen as exact yuan text (``12345`` → ``"123.45"``)."""
    return format(Decimal(int(fen)).scaleb(-2), "f")


def _day(value: Any) -> date | None:
    """A U8 datetime ("2025-06-02 00:00:00.000", or a date) as its date."""
    if isinstance(value, date):
        return value if not hasattr(value, "date") else value.date()
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


class U8Erp(ErpSeat):
    """The ``erp`` seat played by U8 (bindings: ``system: u8``, connections odbc + openapi)."""

    MAPPINGS = MAPPINGS
    LIFECYCLE = LIFECYCLE
    SHIPPED = "has dispatches"
    UNDO_SHIPPED = "handle it in U8 (return / 退货)"
    UNAPPROVE = "un-verify it in U8 (弃审)"

    def connector(self, columns: Mapping[str, Sequence[str]] | None = None, write: bool = False) -> U8Connector:
        return U8Connector(self.binding.connection("odbc"), self.binding.connection("openapi") if write else None,
                           columns=dict(columns or {}))

    # --- named lookups ---------------------------------------------------------------------------

    def customers_by_tax_number(self, usccs: Sequence[str]) -> dict[str, list[str]]:
        rows = self.connector({"Customer": ["cCusCode", "cCusRegCode"]}).lookup("Customer", "cCusRegCode", list(usccs))
        out: dict[str, list[str]] = {}
        for row in sorted(rows, key=lambda r: str(r["cCusCode"])):
            out.setdefault(str(row["cCusRegCode"]), []).append(str(row["cCusCode"]))
        return out

    def credit(self, customer_codes: Sequence[str], as_of: date) -> dict[str, CreditFacts]:
        """Customer.iCusCreLine (信用额度, where bCredit says U8 controls it) and iCusCreDate (信用期限, days;
        the binding's ``payment_terms_days``, default 30, where empty); open receivables = verified sales
        invoices (SaleBillVouch/SaleBillVouchs.iSum) − receipts (Ap_CloseBill.iAmount, cFlag AR), applied to
        the oldest invoices first, what is left of an invoice past its terms being overdue; open orders =
        each unclosed SO_SOMain's SO_SODetails.iSum less what was invoiced against it (cSOCode)."""
        codes = [str(c) for c in customer_codes]
        if not codes:
            return {}
        c = self.connector({"Customer": ["cCusCode", "iCusCreLine", "bCredit", "iCusCreDate"],
                            "SaleBillVouch": ["SBVID", "cCusCode", "cSOCode", "dDate", "cVerifier"],
                            "SaleBillVouchs": ["SBVID", "iSum"], "Ap_CloseBill": ["cDwCode", "cFlag", "iAmount"],
                            "SO_SOMain": ["cSOCode", "cCusCode", "cCloser"], "SO_SODetails": ["cSOCode", "iSum"]})
        default_terms = int(self.binding.options.get("payment_terms_days", 30))
        out = {str(r["cCusCode"]): CreditFacts(
            limit=_dec(r.get("iCusCreLine")) if str(r.get("bCredit") or "0") in ("1", "True", "true") else None,
            terms_days=int(r["iCusCreDate"]) if r.get("iCusCreDate") not in (None, "") else default_terms)
            for r in c.lookup("Customer", "cCusCode", codes)}
        invoices = [r for r in c.lookup("SaleBillVouch", "cCusCode", codes) if r.get("cVerifier")]
        sums: dict[Any, Decimal] = {}
        for r in c.lookup("SaleBillVouchs", "SBVID", [i["SBVID"] for i in invoices]):
            sums[r["SBVID"]] = sums.get(r["SBVID"], Decimal(0)) + _dec(r.get("iSum"))
        paid: dict[str, Decimal] = {}
        for r in c.lookup("Ap_CloseBill", "cDwCode", codes):
            if str(r.get("cFlag") or "").upper() == "AR":
                paid[str(r["cDwCode"])] = paid.get(str(r["cDwCode"]), Decimal(0)) + _dec(r.get("iAmount"))
        for code, amount in paid.items():
            out.setdefault(code, CreditFacts(terms_days=default_terms)).receivables -= amount
        unapplied = dict(paid)
        invoiced_per_order: dict[str, Decimal] = {}
        for inv in sorted(invoices, key=lambda i: (str(i.get("dDate") or ""), i["SBVID"])):
            code, amount = str(inv["cCusCode"]), sums.get(inv["SBVID"], Decimal(0))
            facts = out.setdefault(code, CreditFacts(terms_days=default_terms))
            facts.receivables += amount
            if inv.get("cSOCode"):
                invoiced_per_order[str(inv["cSOCode"])] = invoiced_per_order.get(str(inv["cSOCode"]), Decimal(0)) + amount
            covered = min(amount, max(Decimal(0), unapplied.get(code, Decimal(0))))
            unapplied[code] = unapplied.get(code, Decimal(0)) - covered
            day = _day(inv.get("dDate"))
            if day is not None and day + timedelta(days=facts.terms_days or 0) < as_of:
                facts.overdue += amount - covered
        orders = [o for o in c.lookup("SO_SOMain", "cCusCode", codes) if not o.get("cCloser")]
        totals: dict[str, Decimal] = {}
        for r in c.lookup("SO_SODetails", "cSOCode", [o["cSOCode"] for o in orders]):
            totals[str(r["cSOCode"])] = totals.get(str(r["cSOCode"]), Decimal(0)) + _dec(r.get("iSum"))
        for o in orders:
            facts = out.setdefault(str(o["cCusCode"]), CreditFacts(terms_days=default_terms))
            facts.open_orders += max(Decimal(0), totals.get(str(o["cSOCode"]), Decimal(0))
                                     - invoiced_per_order.get(str(o["cSOCode"]), Decimal(0)))
        return out

    def order_state(self, numbers: Sequence[str]) -> OrderState:
        """SO_SOMain / SO_SODetails of ``numbers`` by ODBC (set-based, 500 codes a query)."""
        state = OrderState()
        if not numbers:
            return state
        connector = self.connector({"SO_SOMain": ORDER_HEAD, "SO_SODetails": ORDER_LINE})
        for row in connector.lookup("SO_SOMain", "cSOCode", list(numbers)):
            code = str(row["cSOCode"])
            if row.get("cVerifier"):
                state.approved[code] = f"verified (审核) by {row['cVerifier']} on {str(row.get('dverifydate') or '')[:10]}"
            if row.get("cCloser"):
                state.closed[code] = f"closed by {row['cCloser']} on {str(row.get('dclosedate') or '')[:10]}"
        for row in connector.lookup("SO_SODetails", "cSOCode", list(numbers)):
            code = str(row["cSOCode"])
            state.shipped[code] = state.shipped.get(code, Decimal(0)) + _dec(row.get("iFHQuantity"))
        return state

    def dispatch_lines(self, dispatch_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        return self.connector({"DispatchLists": list(columns)}).lookup("DispatchLists", "DLID", list(dispatch_keys))

    def order_lines(self, line_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        return self.connector({"SO_SODetails": list(columns)}).lookup("SO_SODetails", "iSOsID", list(line_keys))

    def receipt_lines(self, receipt_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """Ap_CloseBills of the 收款单 ``receipt_keys`` (by the header's iID)."""
        return self.connector({"Ap_CloseBills": list(columns)}).lookup("Ap_CloseBills", "iID", list(receipt_keys))

    def invoices(self, invoice_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """SaleBillVouch headers by SBVID."""
        return self.connector({"SaleBillVouch": list(columns)}).lookup("SaleBillVouch", "SBVID", list(invoice_keys))

    def invoice_lines(self, invoice_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """SaleBillVouchs of the invoices ``invoice_keys`` (by the header's SBVID)."""
        return self.connector({"SaleBillVouchs": list(columns)}).lookup("SaleBillVouchs", "SBVID", list(invoice_keys))

    # --- document lifecycle ------------------------------------------------------------------------

    def idempotency_key(self, hub_id: str, revision: int) -> str:
        """biz_id of the n-th U8 order of one hub order: a repeated add gets the order it created,
        a later version (after a change) a new one."""
        return str(uuid.uuid5(BIZ_NS, f"{hub_id}:{revision}"))

    def order_document(self, phase: str, hub_id: str, number: str | None, body: Mapping[str, Any] | None,
                       key: str | None) -> Record:
        """The record :meth:`U8Connector.write` takes for one phase on stream ``saleorder``."""
        if phase == "close":
            return {"_key": hub_id, "_op": "close", "voucher_code": number}
        return {**(body or {}), "_key": hub_id, "_op": "add", "_biz_id": key}

    order_stream = "saleorder"
    customer_stream = "customer"

    def customer_document(self, hub_id: str, op: str, number: str | None, body: Mapping[str, Any]) -> Record:
        """A customer add (biz_id = hub id) or edit (by U8 code) for stream ``customer``."""
        record = {**body, "_key": hub_id, "_op": op, "_biz_id": hub_id}
        if op == "edit":
            record["code"] = number
        return record

    def receipt_document(self, hub_id: str, body: Mapping[str, Any], amount_fen: int, invoiced_fen: int) -> Record:
        """A 收款单 add (accept/add, biz_id = the receipt's hub id) with its lines (``entry``, protocol
        notes U2): 应收款 (type 0) for what its invoices take, 预收款 (type 1) for the rest (orders
        not invoiced yet, over-payment); 人民币, so originalamount = amount; ``iamt_s`` (数量) 0, as
        the documentation's sample sends it. 录入人 (operator): the OpenAPI connection's operator."""
        parts = (("0", invoiced_fen), ("1", amount_fen - invoiced_fen))
        entry = [{"type": kind, "customercode": body["customercode"], "amount": _yuan(fen),
                  "originalamount": _yuan(fen), "iamt_s": "0"} for kind, fen in parts if fen > 0]
        record = {**body, "_key": hub_id, "_biz_id": hub_id, "entry": entry}
        if self.operator:
            record.setdefault("operator", self.operator)
        return record

    @cached_property
    def operator(self) -> str | None:
        """The OpenAPI connection's operator, resolved once per seat (not once per 收款单)."""
        return U8OpenApi(self.binding.connection("openapi")).operator
