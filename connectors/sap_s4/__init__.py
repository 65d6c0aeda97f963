"""SAP S/4HANA over its OData V2 APIs (business partner, product, sales order, outbound
delivery): ``SapS4Connector`` implements the hub's connector protocol; ``SapS4Erp``
(``connectors.sap_s4_erp``) puts it in the ``erp`` seat. See docs/protocols.md, "SAP S/4HANA"."""
from connectors.sap_s4.connector import SapS4Connector

__all__ = ["SapS4Connector"]
