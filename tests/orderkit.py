"""Helpers the order tests share: look into the sandbox's CRM and U8 tables and its truth."""
from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from typing import Any


def rows(db, sql: str, *args) -> list[dict[str, Any]]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, args)]
    finally:
        con.close()


def d(value: Any) -> Decimal:
    """A stored number as Decimal, through its shortest repr (as the hub reads it)."""
    return Decimal(str(value if value is not None else 0))


def truth(sb) -> dict[str, Any]:
    return json.loads((sb.folder / "orders_truth.json").read_text(encoding="utf-8"))


def plan(sb) -> dict[str, Any]:
    return json.loads((sb.folder / "orders_plan.json").read_text(encoding="utf-8"))


def crm_orders(sb) -> dict[str, dict[str, Any]]:
    return {str(r["id"]): r for r in rows(sb.crm_db, 'select * from "order"')}


def crm_lines(sb) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows(sb.crm_db, 'select * from "orderProduct" order by id'):
        out.setdefault(str(r["orderId"]), []).append(r)
    return out


def u8_orders(sb) -> list[dict[str, Any]]:
    return rows(sb.u8_db, "select * from SO_SOMain order by ID")


def u8_rows(sb) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows(sb.u8_db, "select * from SO_SODetails order by cSOCode, iRowNo"):
        out.setdefault(r["cSOCode"], []).append(r)
    return out


def counts(sb) -> dict[str, int]:
    """How many records each system holds of what the order flows write."""
    one = lambda db, sql: rows(db, sql)[0]["n"]  # noqa: E731
    return {"u8_orders": one(sb.u8_db, "select count(*) n from SO_SOMain"),
            "u8_rows": one(sb.u8_db, "select count(*) n from SO_SODetails"),
            "crm_products": one(sb.crm_db, "select count(*) n from product"),
            "crm_product_codes": one(sb.crm_db, "select count(distinct productCode__c) n from product"),
            "crm_shipments": one(sb.crm_db, 'select count(*) n from "shipment__c"'),
            "crm_shipment_codes": one(sb.crm_db, 'select count(distinct dispatchCode__c) n from "shipment__c"')}
