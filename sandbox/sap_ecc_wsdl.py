"""The ECC stand-in's services, read from the WSDL files in ``sandbox/sap_wsdl/``.

Everything a service is comes from its WSDL: the path it answers on (the ``soap:address``), the
SOAP versions it binds, its operations (body element in, body element out, soapAction), whether
it is stateful (its policy's ``sapsession:enableSession``) and the XML Schema every request is
validated against (``wsdl:types``, built with lxml: no DTDs, no
entities, no network; ``xsd:import`` between the WSDL's own schemas is resolved from memory).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

WSDL_DIR = Path(__file__).with_name("sap_wsdl")
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
SOAP11_BIND_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12_BIND_NS = "http://schemas.xmlsoap.org/wsdl/soap12/"
SESSION_NS = "http://www.sap.com/webas/630/soap/features/session/"
_MEM = "ecc-schema:"


def safe_parser() -> etree.XMLParser:
    """The only way XML is parsed here: no DTD, no entities, no network, no huge trees."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_blank_text=False)


class _MemoryResolver(etree.Resolver):
    """Serves ``ecc-schema:<namespace>`` (the WSDL's own schemas) and refuses everything else."""

    def __init__(self, docs: dict[str, bytes]) -> None:
        super().__init__()
        self.docs = docs

    def resolve(self, url: str, pubid: str | None, context: object) -> object:
        if url.startswith(_MEM) and url[len(_MEM):] in self.docs:
            return self.resolve_string(self.docs[url[len(_MEM):]], context)
        raise etree.XMLSchemaParseError(f"refusing to load {url!r}: only the WSDL's own schemas are used")


@dataclass(frozen=True)
class Operation:
    """One WSDL operation: the request body element, the answer's, and the soapAction."""

    name: str
    input: etree.QName
    output: etree.QName
    soap_action: str


@dataclass
class Service:
    """One WSDL file as the stand-in serves it."""

    file: Path
    path: str                    # the soap:address path, e.g. /sap/bc/srt/rfc/sap/<svc>/100/<svc>/<binding>
    client_in_query: str | None  # ECC_CUSTOMER002QR: the client is ?sap-client=…, not a path segment
    soap_versions: frozenset[str]
    operations: dict[etree.QName, Operation]
    stateful: bool               # the interface policy's sapsession:enableSession is true
    schema_docs: list[etree._Element] = field(repr=False)
    schema: etree.XMLSchema = field(repr=False)
    xml: bytes = field(repr=False)
    #: lxml keeps a schema's last error log on the schema object: one validation at a time
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wsdl_for(self, base_url: str) -> bytes:
        """The WSDL with every soap:address pointing at ``base_url`` (scheme://host:port)."""
        root = etree.fromstring(self.xml, safe_parser())
        for ns in (SOAP11_BIND_NS, SOAP12_BIND_NS):
            for address in root.iter(f"{{{ns}}}address"):
                parts = urlsplit(address.get("location", ""))
                address.set("location", base_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else ""))
        return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _schema(schemas: list[etree._Element]) -> etree.XMLSchema:
    """One XMLSchema over all of a WSDL's ``xsd:schema`` elements (they may import each other)."""
    docs: dict[str, bytes] = {}
    for s in schemas:
        copy = etree.fromstring(etree.tostring(s), safe_parser())
        for imp in copy.findall(f"{{{XSD_NS}}}import"):
            imp.set("schemaLocation", _MEM + imp.get("namespace", ""))
        docs[copy.get("targetNamespace", "")] = etree.tostring(copy)
    wrapper = etree.Element(f"{{{XSD_NS}}}schema", nsmap={"xsd": XSD_NS}, targetNamespace="urn:sandbox:ecc:wrapper")
    for ns in docs:
        etree.SubElement(wrapper, f"{{{XSD_NS}}}import", namespace=ns, schemaLocation=_MEM + ns)
    parser = safe_parser()
    parser.resolvers.add(_MemoryResolver(docs))
    return etree.XMLSchema(etree.fromstring(etree.tostring(wrapper), parser))


def _qname(node: etree._Element, value: str) -> etree.QName:
    prefix, _, local = value.rpartition(":")
    return etree.QName(node.nsmap.get(prefix or None), local)


def load_service(path: Path) -> Service:
    """Read one WSDL (document/literal, one service, one or two SOAP bindings at one address)."""
    xml = path.read_bytes()
    root = etree.fromstring(xml, safe_parser())
    w = f"{{{WSDL_NS}}}"
    messages = {m.get("name"): _qname(m.find(f"{w}part"), m.find(f"{w}part").get("element"))
                for m in root.findall(f"{w}message")}
    port_ops = {}
    for pt in root.findall(f"{w}portType"):
        for op in pt.findall(f"{w}operation"):
            port_ops[op.get("name")] = (messages[_qname(op, op.find(f"{w}input").get("message")).localname],
                                        messages[_qname(op, op.find(f"{w}output").get("message")).localname])
    operations: dict[etree.QName, Operation] = {}
    versions: set[str] = set()
    for binding in root.findall(f"{w}binding"):
        for ns, version in ((SOAP11_BIND_NS, "1.1"), (SOAP12_BIND_NS, "1.2")):
            if binding.find(f"{{{ns}}}binding") is None:
                continue
            versions.add(version)
            for op in binding.findall(f"{w}operation"):
                action = op.find(f"{{{ns}}}operation")
                inp, out = port_ops[op.get("name")]
                operations[inp] = Operation(op.get("name"), inp, out,
                                            action.get("soapAction", "") if action is not None else "")
    locations = {urlsplit(a.get("location", "")) for ns in (SOAP11_BIND_NS, SOAP12_BIND_NS)
                 for a in root.iter(f"{{{ns}}}address")}
    if len({(loc.path, loc.query) for loc in locations}) != 1:
        raise ValueError(f"{path.name}: expected one soap:address, found {locations}")
    loc = locations.pop()
    query = dict(p.split("=", 1) for p in loc.query.split("&") if "=" in p)
    schemas = root.findall(f"{w}types/{{{XSD_NS}}}schema")
    stateful = any((e.text or "").strip() == "true" for e in root.iter(f"{{{SESSION_NS}}}enableSession"))
    return Service(path, loc.path, query.get("sap-client"), frozenset(versions), operations, stateful, schemas,
                   _schema(schemas), xml)


def load_services(directory: Path = WSDL_DIR) -> list[Service]:
    """Every ``*.wsdl`` in ``directory``."""
    return [load_service(p) for p in sorted(directory.glob("*.wsdl"))]
