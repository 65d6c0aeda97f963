"""``sap_s4.db``: one SQLite table per entity set the stand-in holds, one column per property
of the entity type as ``$metadata`` lists it (so every property is answered, empty where S/4
would leave it initial).

Storage types, chosen so SQL can filter and order on them:
- Edm.String, Edm.Guid → TEXT ('' when initial, as ABAP has no NULL string);
- Edm.Boolean → INTEGER 0/1;
- Edm.Decimal → TEXT (the exact digits; compared as REAL);
- Edm.Double, Edm.Int* , Edm.Byte → REAL / INTEGER;
- Edm.DateTime, Edm.DateTimeOffset → INTEGER milliseconds since the epoch, UTC (NULL initial);
- Edm.Time → INTEGER seconds of the day (NULL initial).
"""

from __future__ import annotations

import sqlite3

from .sap_edm import EntitySet, all_services

#: (service, entity set) the stand-in stores; the other sets of each service are refused as not served.
STORED: dict[str, tuple[str, ...]] = {
    "API_BUSINESS_PARTNER": ("A_BusinessPartner", "A_BusinessPartnerRole", "A_BusinessPartnerAddress",
                             "A_BusinessPartnerTaxNumber", "A_Customer", "A_AddressPhoneNumber",
                             "A_AddressEmailAddress", "A_AddressFaxNumber", "A_CustomerSalesArea",
                             "A_CustomerSalesAreaTax", "A_CustSalesPartnerFunc"),
    "API_PRODUCT_SRV": ("A_Product", "A_ProductDescription", "A_ProductSales", "A_ProductSalesTax"),
    "API_SALES_ORDER_SRV": ("A_SalesOrder", "A_SalesOrderItem", "A_SalesOrderHeaderPartner",
                            "A_SalesOrderHeaderPrElement", "A_SalesOrderItemPrElement"),
    "API_OUTBOUND_DELIVERY_SRV;v=0002": ("A_OutbDeliveryHeader", "A_OutbDeliveryItem", "A_SerialNmbrDelivery",
                                         "A_MaintenanceItemObject"),
}
#: Stored sets the edmx marks ``sap:addressable="false"``: reached through a navigation only
#: (a delivery item's serial numbers: to_SerialDeliveryItem/to_MaintenanceItemObject).
NAVIGATION_ONLY = frozenset({"A_SerialNmbrDelivery", "A_MaintenanceItemObject"})
#: Indexes for the lookups the app and the warehouse make (keys are primary keys already).
INDEXES = (("A_SalesOrder", "PurchaseOrderByCustomer"), ("A_OutbDeliveryItem", "ReferenceSDDocument"),
           ("A_SalesOrder", "LastChangeDateTime"), ("A_BusinessPartner", "LastChangeDate"))

_SQL_TYPE = {"Edm.String": "TEXT", "Edm.Guid": "TEXT", "Edm.Decimal": "TEXT", "Edm.Boolean": "INTEGER",
             "Edm.DateTime": "INTEGER", "Edm.DateTimeOffset": "INTEGER", "Edm.Time": "INTEGER",
             "Edm.Double": "REAL", "Edm.Single": "REAL"}


def sql_type(edm: str) -> str:
    return _SQL_TYPE.get(edm, "INTEGER")


def initial(edm: str) -> object:
    """The stored value of a property nobody set (ABAP's initial value)."""
    if edm in ("Edm.String", "Edm.Guid"):
        return ""
    if edm == "Edm.Decimal":
        return "0"
    if edm in ("Edm.DateTime", "Edm.DateTimeOffset", "Edm.Time"):
        return None
    return 0


def stored_sets() -> dict[str, EntitySet]:
    """Entity set name → its definition, for every stored set (the names are unique across services)."""
    services = all_services()
    return {name: services[svc].sets[name] for svc, names in STORED.items() for name in names}


def create_all(conn: sqlite3.Connection) -> None:
    """Create every table (idempotent), plus ``sandbox_meta`` (counters, the warehouse's state)."""
    for es in stored_sets().values():
        cols = ", ".join(f'"{p.name}" {sql_type(p.type)}' for p in es.props.values())
        keys = ", ".join(f'"{k}"' for k in es.keys)
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{es.name}" ({cols}, PRIMARY KEY ({keys}))')
    for table, column in INDEXES:
        conn.execute(f'CREATE INDEX IF NOT EXISTS "ix_{table}_{column}" ON "{table}" ("{column}")')
    conn.execute("CREATE TABLE IF NOT EXISTS sandbox_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
