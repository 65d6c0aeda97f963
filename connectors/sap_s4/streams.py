"""The S/4HANA entity sets the hub reads and writes, as SAP's ``$metadata`` describes them.

Everything here is copied from the edmx files in ``../shared/reference/sap/odata/`` (service
paths, keys, change-time properties and their Edm types, to-one navigation properties, MaxLength
of the properties a create is recognised by), so nothing needs ``$metadata`` at run time.

Change times differ per entity set, so each set names how it is read incrementally:

- ``stamp``: one ``Edm.DateTimeOffset`` (A_SalesOrder and A_Product ``LastChangeDateTime``;
  the sales order's is also its ETag, ``ConcurrencyMode="Fixed"``).
- ``date_time``: ``Edm.DateTime`` date + ``Edm.Time`` time pairs (A_BusinessPartner
  ``LastChangeDate`` + ``LastChangeTime``). SAP fills the change pair only once a partner is
  changed after its creation (BUT000 CHDAT/CHTIM), so ``CreationDate`` + ``CreationTime`` are
  read beside it.
- ``date``: dates only (A_OutbDeliveryHeader has ``LastChangeDate`` and ``CreationDate``, no
  time and no stamp): whole days are re-read. The delivery service's ``$metadata`` marks every
  property ``sap:filterable="false"``; filtering on them is unverified against a real system, and
  a refused filter is a configuration error naming the property (see ``odata.SapODataClient``).
"""
from __future__ import annotations

from dataclasses import dataclass

ROOT = "/sap/opu/odata/sap"


@dataclass(frozen=True)
class Stream:
    """One entity set: its service, key properties and how its changes are found."""

    service: str
    keys: tuple[str, ...]
    #: "stamp" | "date_time" | "date" | "" (no incremental read: looked up by key only)
    change: str = ""
    #: the change-time properties: (stamp,) | ((date, time), …) | (date, …)
    change_props: tuple = ()
    #: a condition every read of the set carries (only partners with the customer role)
    base_filter: str = ""
    #: the property a create is recognised by before it is repeated, and its MaxLength
    natural_key: str = ""
    natural_max: int = 0
    #: the ETag property (ConcurrencyMode="Fixed"): changes need If-Match
    etag_prop: str = ""
    #: whether the key is sortable ($orderby): the delivery service marks it sap:sortable="false"
    ordered: bool = True

    @property
    def path(self) -> str:
        return f"{ROOT}/{self.service}"


BP, PRODUCT, SALES, DELIVERY = ("API_BUSINESS_PARTNER", "API_PRODUCT_SRV", "API_SALES_ORDER_SRV",
                                "API_OUTBOUND_DELIVERY_SRV;v=0002")

STREAMS: dict[str, Stream] = {
    # BusinessPartnerIDByExtSystem: Edm.String MaxLength 20, "External BP Number"
    "A_BusinessPartner": Stream(BP, ("BusinessPartner",), "date_time",
                                (("LastChangeDate", "LastChangeTime"), ("CreationDate", "CreationTime")),
                                base_filter="Customer ne ''", natural_key="BusinessPartnerIDByExtSystem",
                                natural_max=20),
    "A_BusinessPartnerTaxNumber": Stream(BP, ("BusinessPartner", "BPTaxType")),
    "A_BusinessPartnerAddress": Stream(BP, ("BusinessPartner", "AddressID")),
    "A_Customer": Stream(BP, ("Customer",)),
    "A_Product": Stream(PRODUCT, ("Product",), "stamp", ("LastChangeDateTime",)),
    # PurchaseOrderByCustomer: Edm.String MaxLength 35, "Customer Reference"
    "A_SalesOrder": Stream(SALES, ("SalesOrder",), "stamp", ("LastChangeDateTime",),
                           natural_key="PurchaseOrderByCustomer", natural_max=35, etag_prop="LastChangeDateTime"),
    "A_SalesOrderItem": Stream(SALES, ("SalesOrder", "SalesOrderItem")),
    "A_OutbDeliveryHeader": Stream(DELIVERY, ("DeliveryDocument",), "date", ("LastChangeDate", "CreationDate"),
                                   ordered=False),
    "A_OutbDeliveryItem": Stream(DELIVERY, ("DeliveryDocument", "DeliveryDocumentItem"), ordered=False),
}

#: Navigation properties whose multiplicity is 0..1 (the edmx associations); every other
#: navigation the hub names is a collection (``*``), answered and deep-inserted as ``{"results": [...]}``.
TO_ONE = frozenset({"to_Customer", "to_ProductSales", "to_SalesOrder", "to_SalesOrderItem"})

#: Edm.DateTime properties the hub writes: V2 JSON carries them as ``/Date(<ms>)/``.
DATETIME_PROPS = frozenset({"SalesOrderDate", "CustomerPurchaseOrderDate", "RequestedDeliveryDate", "PricingDate"})


def stream(name: str) -> Stream:
    """The entity set ``name``; a ConfigurationError-worthy KeyError names the known ones."""
    try:
        return STREAMS[name]
    except KeyError:
        raise KeyError(f"S/4HANA entity set {name!r} is not one the hub reads (known: {', '.join(STREAMS)})") from None
