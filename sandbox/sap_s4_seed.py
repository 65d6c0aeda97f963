"""``sap_s4.db``: the world the U8 seed just wrote, as S/4HANA holds it after a migration.

Read from ``u8.db`` (so both ERPs describe the same companies and products):
- ``Customer`` → business partners (category 2, numbers ``0001000001``… in creation order, roles
  FLCU00 + FLCU01), one address each, the USCC as tax number of category ``USCC_TAX_TYPE``
  (also ``A_Customer.TaxNumber5``), the customer view ``A_Customer`` (Customer = BP number).
  The U8 mess is kept: double entries stay two partners, name variants and odd whitespace stay
  as typed (names split into the 40-character ``OrganizationBPName1..4``), missing tax codes
  leave no tax number, the pre-2015 15-digit codes and mistyped ones are stored as they are.
  ``BusinessPartnerIDByExtSystem`` holds the U8 code. The phone (``cCusPhone``) and fax
  (``cCusFax``) as typed become the address's phone and fax numbers; every customer has the one
  sales area the system has (``SALES_AREAS``: currency CNY, tax classification 1 "liable" for
  CN / MWST, partner functions SP/BP/PY/SH = itself), as the U8 customers all took orders.
- ``Inventory`` → ``A_Product`` + ``A_ProductDescription`` (ZH), Product = ``cInvCode``; its
  reference price becomes the sandbox's condition record for new orders. Its output tax rate
  (``iTaxRate``) becomes the tax classification for CN / MWST (``A_ProductSalesTax``; the classes
  are customizing, TSKM: ``TAX_CLASSES``, the pre-2018 full rate 17 % as class 1, the full rate
  now), a product U8 does not sell (``bSale`` 0) or has discontinued (``dEDate``) the
  cross-distribution-chain sales status ``BLOCKED_FOR_SALES`` (``A_ProductSales``, valid from
  ``dEDate`` or the creation date); a rate without a class leaves no tax classification.
- ``SO_SOMain``/``SO_SODetails`` → sales orders (``PurchaseOrderByCustomer`` = the CRM order
  number in ``cDefine11``, else the U8 code; a closed order's undelivered items rejected) and
  ``DispatchList``/``DispatchLists`` → outbound deliveries referencing those items.
U8 times are China time; S/4 stamps are written in UTC. Same U8 file and seed, same database.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from .sap_s4_children import SOLD_TO_PARTNERS
from .sap_s4_docs import (ADDR_START, BP_START, CURRENCY, DL_START, SALES_AREAS, SO_START, USCC_TAX_TYPE, Documents,
                          day_ms, sec_of_day)
from .sap_s4_store import Store

CST = timezone(timedelta(hours=8))
MIGRATION_USER = "MIGRATION"
VALID_TO_MS = 253402300799000  # 9999-12-31T23:59:59Z: "valid until further notice"
#: U8 计量单位 code → SAP unit of measure (99 桶, unknown to the hub's value map, stays unknown: DR drum).
UNITS = {"01": "PC", "02": "PC", "03": "SET", "04": "BOX", "05": "KG", "06": "M", "99": "DR"}
CLOSED_REJECTION = "10"  # rejection reason for what a closed U8 order never delivered
#: output VAT rate % → the material's tax classification for CN / MWST (this system's TSKM
#: customizing: 0 exempt and 1 full rate as SAP's examples have them, 2 and 3 the reduced rates)
TAX_CLASSES = {0: "0", 13: "1", 17: "1", 9: "2", 6: "3"}
#: the sales status (TVMS customizing) of what may not be sold; the stand-in's code
BLOCKED_FOR_SALES = "01"
TAX_COUNTRY, TAX_CATEGORY = "CN", "MWST"


def _ms(text: str | None) -> int | None:
    """A U8 ``datetime`` text (China time) → epoch ms UTC."""
    if not text:
        return None
    dt = datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
    return int(dt.timestamp() * 1000) + (int(text[20:23]) if len(text) >= 23 else 0)


def _chunks(text: str, size: int, parts: int) -> list[str]:
    return [text[i * size:(i + 1) * size] for i in range(parts)]


def _rows(conn: Any, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def write(u8_db: Path, path: Path, seed: int) -> None:
    """Recreate ``path`` from ``u8_db``."""
    import sqlite3

    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    u8 = sqlite3.connect(f"file:{u8_db}?mode=ro", uri=True)
    store = Store(path)
    try:
        store.conn.execute("PRAGMA synchronous=OFF")
        with store.transaction():
            store.set_meta("seed", str(seed))
            bp_of = _partners(store, u8)
            _products(store, u8)
            _orders(store, u8, bp_of, Documents(store, seed))
    finally:
        store.conn.close()
        u8.close()


class _Rows:
    """Rows gathered per entity set and inserted in bulk (``store.insert`` one by one is slow at 50 000)."""

    def __init__(self, store: Store) -> None:
        self.store, self.rows = store, {}

    def insert(self, es: Any, values: dict[str, Any]) -> None:
        self.rows.setdefault(es.name, (es, []))[1].append(values)

    def flush(self) -> None:
        for es, rows in self.rows.values():
            self.store.insert_many(es, rows)
        self.rows = {}


def _partners(store: Store, u8: Any) -> dict[str, str]:
    sets, out = store.sets, _Rows(store)
    bp_of: dict[str, str] = {}
    customers = _rows(u8, 'SELECT * FROM Customer ORDER BY dCusCreateDatetime, cCusCode')
    for n, c in enumerate(customers, start=1):
        number = f"{BP_START + n:010d}"
        bp_of[c["cCusCode"]] = number
        created = _ms(c["dCusCreateDatetime"]) or 0
        changed = max(_ms(c["dModifyDate"]) or created, created)
        name = c["cCusName"] or ""
        names = _chunks(name, 40, 4)
        full = " ".join(x for x in names[:2] if x)[:81]
        stamps = {"CreationDate": day_ms(created), "CreationTime": sec_of_day(created),
                  "CreatedByUser": MIGRATION_USER}
        out.insert(sets["A_BusinessPartner"], {
            **stamps, "BusinessPartner": number, "Customer": number, "BusinessPartnerCategory": "2",
            "BusinessPartnerFullName": full, "BusinessPartnerName": full,
            **{f"OrganizationBPName{i + 1}": part for i, part in enumerate(names)},
            "SearchTerm1": (c["cCusAbbName"] or "")[:20].upper(), "BusinessPartnerIDByExtSystem": c["cCusCode"][:20],
            "Language": "ZH", "CorrespondenceLanguage": "ZH", "LastChangeDate": day_ms(changed),
            "LastChangeTime": sec_of_day(changed), "LastChangedByUser": MIGRATION_USER,
            "BusinessPartnerUUID": f"{n:08x}-0000-4000-8000-{int(number):012x}"})
        for role in ("FLCU00", "FLCU01"):
            out.insert(sets["A_BusinessPartnerRole"], {"BusinessPartner": number, "BusinessPartnerRole": role,
                                                         "ValidFrom": created, "ValidTo": VALID_TO_MS})
        address = c["cCusAddress"] or ""
        out.insert(sets["A_BusinessPartnerAddress"], {
            "BusinessPartner": number, "AddressID": str(ADDR_START + n), "Country": "CN",
            "Language": "ZH", "StreetName": address[:60], "StreetSuffixName": address[60:100],
            "PostalCode": (c["cCusPostCode"] or "")[:10], "ValidityStartDate": created, "ValidityEndDate": VALID_TO_MS,
            "FullName": full[:80]})
        for table, column, value in (("A_AddressPhoneNumber", "PhoneNumber", c["cCusPhone"]),
                                     ("A_AddressFaxNumber", "FaxNumber", c["cCusFax"])):
            if (value or "").strip():
                flag, country = (("IsDefaultPhoneNumber", "DestinationLocationCountry") if column == "PhoneNumber"
                                 else ("IsDefaultFaxNumber", "FaxCountry"))
                out.insert(sets[table], {"AddressID": str(ADDR_START + n), "Person": "", "OrdinalNumber": "001",
                                         country: "CN", flag: 1, column: value[:30]})
        for org, channel, division in sorted(SALES_AREAS):
            area = {"Customer": number, "SalesOrganization": org, "DistributionChannel": channel, "Division": division}
            out.insert(sets["A_CustomerSalesArea"], {**area, "Currency": CURRENCY, "CustomerAccountGroup": "CUST"})
            out.insert(sets["A_CustomerSalesAreaTax"], {**area, "DepartureCountry": TAX_COUNTRY,
                                                         "CustomerTaxCategory": TAX_CATEGORY,
                                                         "CustomerTaxClassification": "1"})
            for function in SOLD_TO_PARTNERS:
                out.insert(sets["A_CustSalesPartnerFunc"], {**area, "PartnerCounter": "000",
                                                             "PartnerFunction": function, "BPCustomerNumber": number})
        tax = c["cCusRegCode"]
        if tax:  # NULL and '' leave no tax number, as in U8
            out.insert(sets["A_BusinessPartnerTaxNumber"], {
                "BusinessPartner": number, "BPTaxType": USCC_TAX_TYPE,
                **({"BPTaxNumber": tax} if len(tax) <= 20 else {"BPTaxLongNumber": tax[:60]})})
        out.insert(sets["A_Customer"], {
            "Customer": number, "CustomerName": name[:80], "CustomerFullName": name[:220],
            "CustomerAccountGroup": "CUST", "CreationDate": day_ms(created), "CreatedByUser": MIGRATION_USER,
            "TaxNumber5": (tax or "")[:60]})
    out.flush()
    store.set_meta("range:bp", str(BP_START + len(customers)))      # new partners number on from here
    store.set_meta("range:addr", str(ADDR_START + len(customers)))
    return bp_of


def _products(store: Store, u8: Any) -> None:
    sets, out = store.sets, _Rows(store)
    for inv in _rows(u8, "SELECT * FROM Inventory ORDER BY cInvCode"):
        created = _ms(inv["dSDate"]) or 0
        changed = max(_ms(inv["dModifyDate"]) or created, created)
        kind = "SERV" if inv["bService"] else ("ROH" if not inv["bSale"] else "HAWA")
        out.insert(sets["A_Product"], {
            "Product": inv["cInvCode"], "ProductType": kind, "BaseUnit": UNITS.get(inv["cComUnitCode"] or "", ""),
            "ProductGroup": (inv["cInvCCode"] or "")[:9], "SizeOrDimensionText": (inv["cInvStd"] or "")[:32],
            "IsMarkedForDeletion": int(inv["dEDate"] is not None), "Division": "00", "ItemCategoryGroup": "NORM",
            "CreationDate": day_ms(created), "CreatedByUser": MIGRATION_USER, "LastChangeDate": day_ms(changed),
            "LastChangedByUser": MIGRATION_USER, "LastChangeDateTime": changed})
        out.insert(sets["A_ProductDescription"], {"Product": inv["cInvCode"], "Language": "ZH",
                                                    "ProductDescription": (inv["cInvName"] or "")[:40]})
        blocked = not inv["bSale"] or inv["dEDate"] is not None
        out.insert(sets["A_ProductSales"], {"Product": inv["cInvCode"], "SalesStatus": BLOCKED_FOR_SALES if blocked else "",
                                            "SalesStatusValidityDate": day_ms(_ms(inv["dEDate"]) or created) if blocked else None})
        rate = Decimal(str(inv["iTaxRate"])) if inv["iTaxRate"] is not None else None
        if rate is not None and rate == rate.to_integral_value() and int(rate) in TAX_CLASSES:
            out.insert(sets["A_ProductSalesTax"], {"Product": inv["cInvCode"], "Country": TAX_COUNTRY,
                                                   "TaxCategory": TAX_CATEGORY, "TaxClassification": TAX_CLASSES[int(rate)]})
        store.set_meta(f"price:{inv['cInvCode']}", str(Decimal(str(inv["iInvSPrice"] or 0))))
    out.flush()


def _orders(store: Store, u8: Any, bp_of: dict[str, str], docs: Documents) -> None:
    sets = store.sets
    item_of: dict[Any, tuple[str, str]] = {}   # U8 iSOsID → (sales order, item)
    orders = _rows(u8, "SELECT * FROM SO_SOMain ORDER BY ID")
    for o in orders:
        number = str(store.next_number("so", SO_START))
        created = _ms(o["dcreatesystime"]) or _ms(o["dDate"]) or 0
        store.insert(sets["A_SalesOrder"], {
            "SalesOrder": number, "SalesOrderType": "OR", "SalesOrganization": "1310", "DistributionChannel": "10",
            "OrganizationDivision": "00", "SoldToParty": bp_of.get(o["cCusCode"], ""),
            "PurchaseOrderByCustomer": (o["cDefine11"] or o["cSOCode"] or "")[:35], "TransactionCurrency": "CNY",
            "SalesOrderDate": day_ms(_ms(o["dDate"]) or created), "CreationDate": day_ms(created),
            "CreatedByUser": MIGRATION_USER, "LastChangeDate": day_ms(created), "LastChangeDateTime": created})
        for d in _rows(u8, "SELECT * FROM SO_SODetails WHERE ID = ? ORDER BY iRowNo", (o["ID"],)):
            item = str(int(d["iRowNo"] or 0) * 10 or 10)
            item_of[d["iSOsID"]] = (number, item)
            shipped = Decimal(str(d["iFHQuantity"] or 0))
            closed = bool(o["cCloser"] or d["cSCloser"]) and shipped < Decimal(str(d["iQuantity"] or 0))
            store.insert(sets["A_SalesOrderItem"], {
                "SalesOrder": number, "SalesOrderItem": item, "Material": d["cInvCode"],
                "SalesOrderItemText": (d["cInvName"] or "")[:40], "RequestedQuantity": str(d["iQuantity"] or 0),
                "RequestedQuantityUnit": UNITS.get(d["cUnitID"] or "", "PC"), "NetAmount": str(d["iMoney"] or 0),
                "TransactionCurrency": "CNY", "SalesOrderItemCategory": "TAN", "ProductionPlant": "1310",
                "SalesDocumentRjcnReason": CLOSED_REJECTION if closed else ""})
    for dl in _rows(u8, "SELECT * FROM DispatchList ORDER BY DLID"):
        lines = [(r, item_of.get(r["iSOsID"])) for r in
                 _rows(u8, "SELECT * FROM DispatchLists WHERE DLID = ? ORDER BY irowno", (dl["DLID"],))]
        lines = [(r, ref) for r, ref in lines if ref]
        if not lines:
            continue
        number = str(store.next_number("dl", DL_START))
        created = _ms(dl["dcreatesystime"]) or _ms(dl["dDate"]) or 0
        stamps = {"CreationDate": day_ms(created), "CreationTime": sec_of_day(created), "CreatedByUser": MIGRATION_USER,
                  "LastChangeDate": day_ms(created), "DeliveryVersion": "0001"}
        store.insert(sets["A_OutbDeliveryHeader"], {
            **stamps, "DeliveryDocument": number, "DeliveryDocumentType": "LF", "SDDocumentCategory": "J",
            "SoldToParty": bp_of.get(dl["cCusCode"], ""), "ShipToParty": bp_of.get(dl["cCusCode"], ""),
            "SalesOrganization": "1310", "ShippingPoint": "1310", "DeliveryDate": day_ms(created),
            "ActualGoodsMovementDate": day_ms(created), "OverallGoodsMovementStatus": "C",
            "BillOfLading": (dl["cEBExpressCode"] or "")[:35], "Shippinglocationtimezone": "UTC+8",
            "Receivinglocationtimezone": "UTC+8"})
        for n, (r, (order, item)) in enumerate(lines, start=1):
            store.insert(sets["A_OutbDeliveryItem"], {
                **stamps, "DeliveryDocument": number, "DeliveryDocumentItem": str(n * 10), "Material": r["cInvCode"],
                "DeliveryDocumentItemText": (r["cInvName"] or "")[:40],
                "ActualDeliveryQuantity": str(r["iQuantity"] or 0), "OriginalDeliveryQuantity": str(r["iQuantity"] or 0),
                "Plant": "1310", "GoodsMovementStatus": "C", "ReferenceSDDocument": order,
                "ReferenceSDDocumentItem": item, "ReferenceSDDocumentCategory": "C"})
    for o in store.rows("A_SalesOrder"):
        docs.refresh_order(o["SalesOrder"], touch=False)
