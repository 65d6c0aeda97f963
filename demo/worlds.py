"""What the demo does and shows per ERP world: how its warehouse ships (before each shipments
run) and the closing facts read from the stand-in's own tables. The demo drives the sandbox's
worlds, so unlike the flows it names the systems it seeds."""
from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select

from hub import model, store
from sandbox.harness import Sandbox


def _one(db: Path, sql: str) -> Any:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@dataclass(frozen=True)
class World:
    """One ERP's sandbox world: its database file, how to count its customers and the orders the
    hub created there, and how its warehouse ships."""

    label: str
    db: str
    customers_sql: str
    orders_sql: str
    ship: Callable[[Sandbox], Any] | None = None

    def facts(self, sb: Sandbox) -> str:
        n_erp = _one(sb.folder / self.db, self.customers_sql)
        n_crm = _one(sb.crm_db, "select count(*) from account")
        coded = _one(sb.crm_db, "select count(*) from account where erpCode__c is not null and erpCode__c != ''")
        return (f"sandbox now: {self.label} customers {n_erp}; CRM accounts {n_crm}, of which carrying an ERP "
                f"number {coded}")

    def orders(self, sb: Sandbox, erp: str) -> str:
        """The orders the hub created in the ERP, checked against the ERP's own tables, and where
        every other order stands (waiting with a reason, quarantined)."""
        held = _one(sb.folder / self.db, self.orders_sql)
        with store.engine().begin() as conn:
            x, o = model.xref.c, model.outbox.c
            sent = conn.execute(select(func.count()).select_from(model.xref).where(
                x.entity == "sales_order", x.system == erp, x.native_version == "open")).scalar()
            states = Counter(s for (s,) in conn.execute(select(o.status).where(o.entity == "sales_order",
                                                                               o.target == erp)))
        agree = "agrees" if held == sent else "DOES NOT AGREE"
        return (f"orders the hub created in {self.label}: {sent} (xref); {self.label} holds {held}: {agree}; "
                f"outbox to {self.label}: " + ", ".join(f"{k} {n}" for k, n in sorted(states.items())))


WORLDS = {
    "u8": World("U8", "u8.db", "select count(*) from Customer",
                "select count(*) from SO_SOMain where cCloser is null and cDefine12 is not null",
                ship=lambda sb: f"U8 warehouse: {sb.u8_ship(unplanned='two_stage')}"),  # shop orders in two packages
    "sap_s4": World("SAP S/4HANA", "sap_s4.db", "select count(*) from A_Customer",
                    "select count(*) from A_SalesOrder where PurchaseOrderByCustomer like 'HUB%' "
                    "and coalesce(OverallSDDocumentRejectionSts, '') != 'C'",
                    ship=lambda sb: f"SAP warehouse (outbound deliveries): {sb.sap_ship()}"),
    "sap_ecc": World("SAP ECC", "sap_ecc.db", "select count(*) from kna1",
                     "select count(*) from vbak where bstkd like 'HUB%'"),
}
