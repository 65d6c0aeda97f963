"""A salesperson's edits to orders already in the ERP, as a sandbox control of the CRM stand-in.

``POST /__sandbox/crm/orders/after-push`` applies the ``after_push`` list of
``orders_plan.json`` through the same store the API writes through (so ``updatedAt`` moves as
for any edit): ``change`` raises the first line's quantity by one and recomputes the line and
order amounts (Decimal, half-up to the fen, as the CRM does); ``cancel`` sets the order's
status to 已作废.  Applying twice changes the changed orders again, on purpose.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from .crm_store import CrmStore

CANCELLED = 3
FEN = Decimal("0.01")


def _d(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0))


class OrdersControl:
    """The ``ControlExtension`` that applies the seeded after-push edits."""

    def __init__(self, store: CrmStore, directory: Path) -> None:
        self.store, self.directory = store, directory
        self.applied = 0

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        if path != "/__sandbox/crm/orders/after-push":
            return None
        if method != "POST":
            return 405, {"ok": False, "error": "POST only"}
        plan_file = self.directory / "orders_plan.json"
        edits = json.loads(plan_file.read_text(encoding="utf-8")).get("after_push", []) if plan_file.exists() else []
        done = [self._apply(int(e["order_id"]), e["action"]) | {"expect": e.get("expect")} for e in edits]
        self.applied += len(done)
        return 200, {"ok": True, "applied": done}

    def _apply(self, order_id: int, action: str) -> dict[str, Any]:
        user = self.store.api_user_id
        if action == "cancel":
            self.store.update("order", order_id, {"status": CANCELLED}, user)
            return {"order_id": str(order_id), "action": action}
        with self.store.lock:
            lines = self.store.conn.execute(
                'SELECT id, quantity, unitPrice, discount__c, amount FROM "orderProduct" WHERE orderId = ? ORDER BY id',
                (order_id,)).fetchall()
        first = lines[0]
        qty = _d(first[1]) + 1
        amount = (qty * _d(first[2]) - _d(first[3])).quantize(FEN, rounding=ROUND_HALF_UP)
        self.store.update("orderProduct", first[0], {"quantity": float(qty), "amount": float(amount)}, user)
        total = amount + sum((_d(r[4]) for r in lines[1:]), Decimal(0))
        self.store.update("order", order_id, {"amount": float(total)}, user)
        return {"order_id": str(order_id), "action": action, "line_id": str(first[0]), "quantity": str(qty)}

    def stats(self) -> dict[str, Any]:
        return {"after_push_applied": self.applied}

    def reset(self) -> None:
        self.applied = 0
