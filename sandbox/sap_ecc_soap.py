"""SOAP 1.1 / 1.2 envelopes and faults as the ECC stand-in writes and reads them.

Answers use the prefixes an SAP system's answers show (``soap-env`` for the envelope, ``n0`` for
the body element: a captured SOAMANAGER answer, index id fs:13704414604).  A fault is HTTP 500
(SOAP 1.1 §6.2, SOAP 1.2 part 2 §7.5.1) naming what failed; the fault's ``detail`` layout is
ours: SAP's own fault detail for a deserialisation error was not found in public material.
"""

from __future__ import annotations

from lxml import etree

from .sap_ecc_wsdl import safe_parser

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
VERSION_OF = {SOAP11: "1.1", SOAP12: "1.2"}
CONTENT_TYPE = {"1.1": "text/xml; charset=utf-8", "1.2": "application/soap+xml; charset=utf-8"}
MAX_BODY = 4 * 1024 * 1024


class SoapFault(Exception):
    """A request the SOAP layer refuses; ``sender`` False means the server's own fault."""

    def __init__(self, text: str, version: str = "1.1", sender: bool = True, code: str | None = None) -> None:
        super().__init__(text)
        self.text, self.version, self.sender, self.code = text, version, sender, code


def parse(raw: bytes) -> tuple[str, etree._Element]:
    """(SOAP version, the single body element) of a request, or a SoapFault saying why not."""
    if len(raw) > MAX_BODY:
        raise SoapFault(f"request body larger than {MAX_BODY} bytes")
    if b"<!DOCTYPE" in raw[:4096] or b"<!ENTITY" in raw:
        raise SoapFault("DTDs and entity declarations are not accepted")
    try:
        root = etree.fromstring(raw, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault(f"request is not well-formed XML: {exc}") from None
    version = VERSION_OF.get(etree.QName(root).namespace or "")
    if etree.QName(root).localname != "Envelope" or version is None:
        raise SoapFault(f"root element {root.tag} is not a SOAP 1.1 or 1.2 Envelope", code="VersionMismatch")
    ns = etree.QName(root).namespace
    body = root.find(f"{{{ns}}}Body")
    if body is None:
        raise SoapFault("SOAP Envelope has no Body", version)
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapFault(f"SOAP Body must hold exactly one element, found {len(children)}", version)
    return version, children[0]


def envelope(version: str, payload: etree._Element) -> bytes:
    """``payload`` inside ``soap-env:Envelope`` / ``soap-env:Body``."""
    ns = SOAP11 if version == "1.1" else SOAP12
    env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap-env": ns})
    etree.SubElement(env, f"{{{ns}}}Header")
    etree.SubElement(env, f"{{{ns}}}Body").append(payload)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def fault(exc: SoapFault) -> bytes:
    """The fault envelope for ``exc`` in its SOAP version."""
    if exc.version == "1.2":
        ns = SOAP12
        env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap-env": ns})
        f = etree.SubElement(etree.SubElement(env, f"{{{ns}}}Body"), f"{{{ns}}}Fault")
        code = etree.SubElement(etree.SubElement(f, f"{{{ns}}}Code"), f"{{{ns}}}Value")
        code.text = "soap-env:" + (exc.code or ("Sender" if exc.sender else "Receiver"))
        text = etree.SubElement(etree.SubElement(f, f"{{{ns}}}Reason"), f"{{{ns}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = exc.text
    else:
        ns = SOAP11
        env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap-env": ns})
        f = etree.SubElement(etree.SubElement(env, f"{{{ns}}}Body"), f"{{{ns}}}Fault")
        etree.SubElement(f, "faultcode").text = "soap-env:" + (exc.code or ("Client" if exc.sender else "Server"))
        fs = etree.SubElement(f, "faultstring")
        fs.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        fs.text = exc.text
        etree.SubElement(f, "detail")
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")
