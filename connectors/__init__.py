"""Connectors: one module per external system, all implementing ``hub.types.Connector``.

They import only ``hub.errors`` and ``hub.types``; one HTTP helper (``connectors.http``)
gives them timeouts, retries with backoff that honours Retry-After, and error classes.

``SYSTEMS`` is the one list of what each system is and which roles it can play; a
deployment's bindings (``deploy/bindings*.yaml``) are checked against it, and the flows
build a seat's adapter from the card's ``adapter`` path (so flows import no connector).
``NOTIFIERS`` does the same for the alert channels (connectors/alert_channels.py).
"""
from hub.types import SystemCard

#: The flows an ERP seat takes part in (its adapter's ``supports``); receipts only where the card
#: adds them (SAP's receivables come with the finance issue).
ERP_FLOWS = ("customers", "products", "sales_orders", "shipments")
#: An ERP whose changed customers can be read (a change feed); one without it only receives them.
CUSTOMER_FEED = "customer_feed"
#: An ERP the hub may change a customer in; one without it (ECC here: only a create service is
#: bound) gets a customer it already holds linked, never edited.
CUSTOMER_CHANGE = "customer_change"

#: The shop platforms (issue 12): one seat adapter picks the platform module by the binding's system.
SHOP_SEAT = "connectors.shops.seat:ShopSeat"
SHOP_FLOWS = ("shop_orders", "shop_shipments")

SYSTEMS: dict[str, SystemCard] = {
    "xiaoshouyi": SystemCard("销售易", ("crm",), "connectors.xiaoshouyi_crm:XiaoshouyiCrm", needs=("api",)),
    "u8": SystemCard("U8", ("erp",), "connectors.u8_erp:U8Erp", needs=("odbc",), optional=("openapi",),
                     capabilities=ERP_FLOWS + (CUSTOMER_FEED, CUSTOMER_CHANGE, "receipts", "stock", "credit")),
    "sap_s4": SystemCard("SAP S/4HANA", ("erp",), "connectors.sap_s4_erp:SapS4Erp", needs=("api",),
                         capabilities=ERP_FLOWS + (CUSTOMER_FEED, CUSTOMER_CHANGE)),
    "sap_ecc": SystemCard("SAP ECC", ("erp",), "connectors.sap_ecc_erp:SapEccErp", needs=("soap",),
                          capabilities=("customers", "products", "sales_orders")),
    "registry_api": SystemCard("天眼查 / 企查查", ("registry",), "connectors.registry_seat:RegistrySeat",
                               needs=("api",)),
    "bank_files": SystemCard("bank statement files", ("bank",), "connectors.bank_files:BankSeat", needs=("drop",)),
    "taobao": SystemCard("淘宝/天猫", ("shop",), SHOP_SEAT, needs=("api",), capabilities=SHOP_FLOWS),
    "jd": SystemCard("京东", ("shop",), SHOP_SEAT, needs=("api",), capabilities=SHOP_FLOWS),
    "youzan": SystemCard("有赞", ("shop",), SHOP_SEAT, needs=("api",), capabilities=SHOP_FLOWS),
    "doudian": SystemCard("抖店", ("shop",), SHOP_SEAT, needs=("api",), capabilities=SHOP_FLOWS),
    "pdd": SystemCard("拼多多", ("shop",), SHOP_SEAT, needs=("api",), capabilities=SHOP_FLOWS),
    "ecology": SystemCard("泛微 e-cology", ("oa",), "connectors.oa_seat:EcologySeat", needs=("api",),
                          capabilities=("approvals",)),
    "dingtalk": SystemCard("钉钉", ("oa",), "connectors.oa_seat:DingTalkSeat", needs=("api",),
                           capabilities=("approvals",)),
    # the hub's own inbound order API; its connections are the dealers (code: Airflow conn id)
    "dealer_api": SystemCard("经销商订货 API", ("dealer",), "connectors.dealer_api:DealerSeat",
                             capabilities=("dealer_orders",)),
}

#: The alert channels: name → (Airflow connection id, channel ``module:Class``). A connection that
#: does not exist is a channel that is off; ``flows.roles.notifiers()`` builds the others, in this order.
NOTIFIERS: dict[str, tuple[str, str]] = {
    "smtp": ("hub_alert_smtp", "connectors.alert_channels:EmailChannel"),
    "dingtalk": ("hub_alert_dingtalk", "connectors.alert_channels:DingTalkChannel"),
    "wecom": ("hub_alert_wecom", "connectors.alert_channels:WeComChannel"),
}
