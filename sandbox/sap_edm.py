"""The S/4HANA services as their ``$metadata`` describes them (``sandbox/sap_metadata/*.edmx``).

Everything the stand-in names (entity sets, properties, Edm types, keys, navigation properties,
the ``ConcurrencyMode="Fixed"`` property an ETag is made of) is read from SAP's own documents,
so a name the stand-in answers is a name the real service has. Parsed with lxml, DTDs,
entities and the network off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lxml import etree

METADATA_DIR = Path(__file__).with_name("sap_metadata")
ROOT = "/sap/opu/odata/sap"
_EDM = "{http://schemas.microsoft.com/ado/2008/09/edm}"
_SAP = "{http://www.sap.com/Protocols/SAPData}"

#: service path segment → edmx file (the delivery API's version is part of its path)
SERVICES: dict[str, str] = {
    "API_BUSINESS_PARTNER": "API_BUSINESS_PARTNER.edmx",
    "API_PRODUCT_SRV": "API_PRODUCT_SRV.edmx",
    "API_SALES_ORDER_SRV": "API_SALES_ORDER_SRV.edmx",
    "API_OUTBOUND_DELIVERY_SRV;v=0002": "API_OUTBOUND_DELIVERY_SRV_0002.edmx",
}


@dataclass(frozen=True)
class Prop:
    name: str
    type: str               # Edm.String, Edm.DateTime, Edm.DateTimeOffset, Edm.Time, Edm.Decimal ...
    nullable: bool = True
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    creatable: bool = True
    updatable: bool = True
    etag: bool = False      # ConcurrencyMode="Fixed"


@dataclass(frozen=True)
class Nav:
    name: str
    target: str             # entity set name
    many: bool


@dataclass
class EntitySet:
    name: str
    type_name: str          # qualified, e.g. API_SALES_ORDER_SRV.A_SalesOrderType
    keys: tuple[str, ...]
    props: dict[str, Prop]
    navs: dict[str, Nav]
    creatable: bool = True
    updatable: bool = True
    deletable: bool = True

    @property
    def etag_prop(self) -> str | None:
        return next((p.name for p in self.props.values() if p.etag), None)


@dataclass
class Service:
    name: str               # the path segment (API_OUTBOUND_DELIVERY_SRV;v=0002)
    namespace: str
    xml: bytes              # the document as served for $metadata
    sets: dict[str, EntitySet] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"{ROOT}/{self.name}"


def _flag(el: etree._Element, name: str) -> bool:
    return el.get(_SAP + name, "true") != "false"


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def parse(name: str, xml: bytes) -> Service:
    """One service from its edmx document."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(xml, parser)
    schema = next(root.iter(_EDM + "Schema"))
    ns = schema.get("Namespace", "")
    types = {et.get("Name"): et for et in schema.iter(_EDM + "EntityType")}
    assoc_ends = {(a.get("Name"), end.get("Role")): end.get("Multiplicity")
                  for a in schema.iter(_EDM + "Association") for end in a.iter(_EDM + "End")}
    assoc_sets = {(s.get("Association", "").split(".")[-1], end.get("Role")): end.get("EntitySet")
                  for s in schema.iter(_EDM + "AssociationSet") for end in s.iter(_EDM + "End")}
    service = Service(name, ns, xml)
    for es in schema.iter(_EDM + "EntitySet"):
        et = types[es.get("EntityType", "").split(".")[-1]]
        props = {}
        for p in et.iter(_EDM + "Property"):
            props[p.get("Name")] = Prop(
                p.get("Name"), p.get("Type"), p.get("Nullable", "true") != "false", _int(p.get("MaxLength")),
                _int(p.get("Precision")), _int(p.get("Scale")), _flag(p, "creatable"), _flag(p, "updatable"),
                p.get("ConcurrencyMode") == "Fixed")
        navs = {}
        for n in et.iter(_EDM + "NavigationProperty"):
            assoc = n.get("Relationship", "").split(".")[-1]
            target = assoc_sets.get((assoc, n.get("ToRole")))
            if target:
                navs[n.get("Name")] = Nav(n.get("Name"), target, assoc_ends.get((assoc, n.get("ToRole"))) == "*")
        service.sets[es.get("Name")] = EntitySet(
            es.get("Name"), f"{ns}.{et.get('Name')}", tuple(k.get("Name") for k in et.iter(_EDM + "PropertyRef")),
            props, navs, _flag(es, "creatable"), _flag(es, "updatable"), _flag(es, "deletable"))
    return service


@lru_cache(maxsize=None)
def service(name: str) -> Service:
    """The parsed service ``name`` (a key of SERVICES); parsed once per process."""
    return parse(name, (METADATA_DIR / SERVICES[name]).read_bytes())


def all_services() -> dict[str, Service]:
    return {name: service(name) for name in SERVICES}
