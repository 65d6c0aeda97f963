"""The CRM tenant's object definitions and their SQLite storage.

One table per apiKey.  Columns other than ``id`` are declared without a type, which gives them
no SQLite affinity: a value keeps the Python type it was written with.  That is what lets a
seeded "phone as a number" or "updatedAt as a string" come back over the API exactly as a
sloppy import left it in the real tenant.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

FieldKind = Literal["id", "ref", "text", "time", "number"]

_COMMON: dict[str, FieldKind] = {
    "id": "id", "ownerId": "ref", "createdAt": "time", "updatedAt": "time",
    "createdBy": "ref", "updatedBy": "ref",
}

OBJECTS: dict[str, dict[str, FieldKind]] = {
    "account": {
        **_COMMON,
        "accountName": "text", "phone": "text", "fax": "text", "address": "text", "zipCode": "text",
        "url": "text", "comment": "text", "uscc__c": "text", "invoiceTitle__c": "text",
        "taxNumber__c": "text", "invoiceAddress__c": "text", "invoicePhone__c": "text",
        "invoiceBank__c": "text", "invoiceBankAccount__c": "text", "erpCode__c": "text", "hubId__c": "text",
        "missingForOrders__c": "text", "creditLimit__c": "number", "receivables__c": "number", "overdue__c": "number",
        "openOrders__c": "number", "availableCredit__c": "number", "creditAsOf__c": "text",
    },
    "contact": {
        **_COMMON,
        "contactName": "text", "accountId": "ref", "phone": "text", "mobile": "text", "email": "text",
        "post": "text",
    },
    # Products, orders and their lines (standard objects) and the shipment custom object.
    # ``number`` fields are JSON numbers (money as the CRM stores it: yuan with two decimals).
    "product": {
        **_COMMON,
        "productName": "text", "productCode__c": "text", "spec__c": "text", "unit": "text",
        "priceUnit": "number", "taxRate__c": "number", "productClass__c": "text", "enableStatus": "number",
        "hubId__c": "text",
    },
    "order": {
        **_COMMON,
        "po": "text", "accountId": "ref", "status": "number", "orderDate": "text", "amount": "number",
        "comment": "text", "erpCode__c": "text", "hubId__c": "text", "deliveryStatus__c": "text",
        "creditApproval__c": "text",
    },
    "orderProduct": {
        **_COMMON,
        "orderId": "ref", "productId": "ref", "quantity": "number", "unitPrice": "number",
        "discount__c": "number", "taxRate__c": "number", "amount": "number",
        "specialPriceApproval__c": "text", "shippedQuantity__c": "number", "stockShortage__c": "text",
        "specialPriceStatus__c": "text",
    },
    "shipment__c": {
        **_COMMON,
        "name": "text", "dispatchCode__c": "text", "order__c": "ref", "shipDate__c": "text",
        "carrier__c": "text", "trackingNo__c": "text", "serialNumbers__c": "text", "items__c": "text",
        "hubId__c": "text",
    },
    # 资产 (a serial-numbered device at a customer): the sandbox tenant's custom object, one per serial.
    "asset__c": {
        **_COMMON,
        "name": "text", "serialNumber__c": "text", "account__c": "ref", "product__c": "ref", "order__c": "ref",
        "shipment__c": "ref", "warrantyStart__c": "text", "warrantyEnd__c": "text", "assetStatus__c": "text",
        "hubId__c": "text",
    },
    # 库存 (a product's stock in one warehouse, from the ERP): the sandbox tenant's custom object.
    "stock__c": {
        **_COMMON,
        "name": "text", "stockKey__c": "text", "product__c": "ref", "warehouse__c": "text", "onHand__c": "number",
        "reserved__c": "number", "available__c": "number", "stockAsOf__c": "text", "hubId__c": "text",
    },
    # 回款计划 (payment plan instalments) and 回款 (receipts applied to them): the sandbox tenant's
    # apiKeys; mappings/specs/crm_payment_plan_to_plan.yaml names them for the hub.
    "paymentPlan": {
        **_COMMON,
        "name": "text", "accountId": "ref", "orderNo__c": "text", "contractNo__c": "text", "stage": "number",
        "planDate": "time", "planAmount": "number", "receivedAmount__c": "number", "paymentStatus__c": "text",
        "overdue__c": "number", "overdueDays__c": "number", "hubId__c": "text",
    },
    "paymentApplication": {
        **_COMMON,
        "name": "text", "accountId": "ref", "paymentPlanId": "ref", "orderNo__c": "text", "invoiceNo__c": "text",
        "amount": "number", "receivedDate__c": "text", "payerName__c": "text", "applicationType__c": "text",
        "receiptNo__c": "text", "hubId__c": "text",
    },
}

#: Reference fields and the object (table) they point to; a write naming nothing is refused.
REFS: dict[str, str] = {"accountId": "account", "ownerId": "sandbox_user", "orderId": "order",
                        "productId": "product", "order__c": "order",
                        "account__c": "account", "product__c": "product", "shipment__c": "shipment__c", "paymentPlanId": "paymentPlan"}

#: Fields the server maintains; a client may not write them.
SYSTEM_FIELDS = frozenset({"id", "createdAt", "updatedAt", "createdBy", "updatedBy"})

#: Fields that must be present and non-empty on create, per object.
REQUIRED = {"account": ("accountName",), "contact": ("contactName", "accountId"), "product": ("productName",),
            "order": ("accountId",), "orderProduct": ("orderId", "productId"), "shipment__c": ("name",),
            "asset__c": ("name", "serialNumber__c", "account__c"),
            "stock__c": ("name", "stockKey__c", "product__c"),
            "paymentPlan": ("accountId",), "paymentApplication": ("accountId", "amount")}

#: Secondary indexes: the scroll/incremental order first, then lookups a connector does.
INDEXES = {
    "account": (("updatedAt", "id"), ("uscc__c",), ("hubId__c",), ("erpCode__c",), ("accountName",)),
    "contact": (("updatedAt", "id"), ("accountId",), ("mobile",)),
    "product": (("updatedAt", "id"), ("productCode__c",)),
    "order": (("updatedAt", "id"), ("accountId",), ("po",)),
    "orderProduct": (("updatedAt", "id"), ("orderId",)),
    "shipment__c": (("updatedAt", "id"), ("dispatchCode__c",), ("order__c",)),
    "asset__c": (("updatedAt", "id"), ("serialNumber__c",), ("account__c",)),
    "stock__c": (("updatedAt", "id"), ("stockKey__c",)),
    "paymentPlan": (("updatedAt", "id"), ("accountId",), ("orderNo__c",)),
    "paymentApplication": (("updatedAt", "id"), ("hubId__c",), ("paymentPlanId",)),
}


def field_order(api_key: str) -> list[str]:
    """Column order of an object's table."""
    return list(OBJECTS[api_key])


def create_tables(conn: sqlite3.Connection) -> None:
    """Create every object table (indexes separately: a bulk load builds them faster after)."""
    for api_key, fields in OBJECTS.items():
        cols = ", ".join("id INTEGER PRIMARY KEY" if f == "id" else f'"{f}"' for f in fields)
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{api_key}" ({cols})')
    conn.execute("CREATE TABLE IF NOT EXISTS sandbox_user (id INTEGER PRIMARY KEY, name TEXT, username TEXT)")


def create_indexes(conn: sqlite3.Connection) -> None:
    """Secondary indexes of every object table."""
    for api_key, indexes in INDEXES.items():
        for idx in indexes:
            cols = ", ".join(f'"{c}"' for c in idx)
            conn.execute(f'CREATE INDEX IF NOT EXISTS "ix_{api_key}_{"_".join(idx)}" ON "{api_key}" ({cols})')
