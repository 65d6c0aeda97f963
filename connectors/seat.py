"""What every seat adapter shares: its binding, the xref name it writes under and the label
outcomes name it by; an ERP seat adds its mapping specs as class data, takes part in what its
card in ``connectors.SYSTEMS`` says, and refuses the receipts lookups unless it overrides them."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping, NoReturn, Sequence

from connectors import SYSTEMS
from hub.errors import ConfigurationError
from hub.types import Binding, OrderState, Record


class Seat:
    """A system in one role of a deployment (``hub.types.Binding``)."""

    def __init__(self, binding: Binding) -> None:
        self.binding = binding

    @property
    def system(self) -> str:
        """The seat's key in xref: the binding's name."""
        return self.binding.name

    @property
    def label(self) -> str:
        """How outcomes name the system ("created in SAP S/4HANA")."""
        return self.binding.label


class ErpSeat(Seat):
    """An ``erp`` seat; ``MAPPINGS`` (purpose → spec) is the subclass's."""

    MAPPINGS: Mapping[str, str] = {}
    #: the write phases of add / replace / cancel (docs/adr/0004-roles-and-bindings.md)
    LIFECYCLE: Mapping[str, tuple[str, ...]] = {"add": ("add",), "replace": ("change",), "cancel": ("cancel",)}
    #: how the ERP calls what ships an order, and what a user does there instead of a late change
    SHIPPED = "has deliveries"
    UNDO_SHIPPED = "handle it in the ERP (a return)"
    #: how a user lifts an approval that blocks a change (U8 弃审); None: an approval blocks nothing
    UNAPPROVE: str | None = None

    @property
    def mappings(self) -> Mapping[str, str]:
        return self.MAPPINGS

    def lifecycle(self, op: str) -> tuple[str, ...]:
        return self.LIFECYCLE[op]

    def refusal(self, op: str, number: str, state: OrderState) -> str | None:
        """Why the ERP's state forbids ``op`` on its order ``number``: shipped already, closed, or
        (where approvals block changes) approved; None when the operation may go."""
        shipped = state.shipped.get(number, Decimal(0))
        if shipped != 0:
            what = "cancelled" if op == "cancel" else "changed"
            return (f"{self.label} order {number} {self.SHIPPED} (shipped {shipped.normalize():f}): the order was "
                    f"{what} in the CRM after shipping; {self.UNDO_SHIPPED} or revert the CRM order")
        if op == "replace" and number in state.closed:
            return f"{self.label} order {number} was {state.closed[number]}; the CRM change cannot be applied"
        if op == "replace" and self.UNAPPROVE and number in state.approved:
            return (f"{self.label} order {number} is {state.approved[number]}: {self.UNAPPROVE} to let the hub "
                    f"change it, or revert the change in the CRM")
        return None

    def mapping(self, purpose: str) -> str:
        """The mapping spec for ``purpose``; a KeyError names a purpose this ERP has none for."""
        return self.MAPPINGS[purpose]

    def supports(self, capability: str) -> bool:
        """Whether the system's card (connectors.SYSTEMS) offers ``capability``."""
        return capability in SYSTEMS[self.binding.system].capabilities

    def _not_offered(self, what: str) -> NoReturn:
        raise ConfigurationError(f"{self.binding.where}: {self.label} (erp binding {self.binding.name!r}) takes no "
                                 f"part in receipts, so it has no {what}; bind an ERP whose card offers receipts")

    def receipt_lines(self, receipt_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        self._not_offered("receipt lines")

    def credit(self, customer_codes: Sequence[str], as_of: Any) -> dict[str, Any]:
        raise ConfigurationError(f"{self.binding.where}: {self.label} (erp binding {self.binding.name!r}) has no credit "
                                 "lookup yet (U8 has: its card offers `credit`); over-credit approvals need one")

    def invoices(self, invoice_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        self._not_offered("invoices")

    def invoice_lines(self, invoice_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        self._not_offered("invoice lines")

    def receipt_document(self, hub_id: str, body: Mapping[str, Any], amount_fen: int, invoiced_fen: int) -> Record:
        self._not_offered("receipt documents")
