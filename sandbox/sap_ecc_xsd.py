"""Requests read into plain Python values, answers written from them, both by the WSDL's schema.

An answer is built element by element in the order its XSD sequence gives, every required
element present (an SAP answer carries every field of a structure, initial ones too: ``""``,
``0``, ``000000`` for NUMC, ``0000-00-00`` for dates), and is then validated against the same
schema the request was, so a stand-in that drifts from its WSDL fails loudly instead of
teaching the client a wrong shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lxml import etree

XSD_NS = "http://www.w3.org/2001/XMLSchema"
_X = f"{{{XSD_NS}}}"


@dataclass(frozen=True)
class Decl:
    """An element declaration: its name, the namespace it is written in (None: unqualified), its
    type (a QName or an inline type node), and how often it may occur (None: unbounded)."""

    name: str
    ns: str | None
    type_name: etree.QName | None
    inline: etree._Element | None
    min: int
    max: int | None


def _qname(node: etree._Element, value: str) -> etree.QName:
    prefix, _, local = value.rpartition(":")
    return etree.QName(node.nsmap.get(prefix or None), local)


class XsdModel:
    """The named types and global elements of a WSDL's schemas."""

    def __init__(self, schemas: list[etree._Element]) -> None:
        self.simple: dict[etree.QName, etree._Element] = {}
        self.complex: dict[etree.QName, etree._Element] = {}
        self.elements: dict[etree.QName, etree._Element] = {}
        self._tns: dict[etree._Element, str] = {}
        for s in schemas:
            tns = s.get("targetNamespace", "")
            for node in s:
                if not isinstance(node.tag, str):
                    continue
                name = node.get("name")
                table = {f"{_X}simpleType": self.simple, f"{_X}complexType": self.complex,
                         f"{_X}element": self.elements}.get(node.tag)
                if table is not None and name:
                    table[etree.QName(tns, name)] = node
            self._tns[s] = tns

    def _schema_of(self, node: etree._Element) -> etree._Element:
        while node.getparent() is not None and node.tag != f"{_X}schema":
            node = node.getparent()
        return node

    def decl(self, node: etree._Element, top: bool = False) -> Decl:
        schema = self._schema_of(node)
        qualified = top or schema.get("elementFormDefault") == "qualified"
        max_occurs = node.get("maxOccurs", "1")
        inline = next((c for c in node if c.tag in (f"{_X}complexType", f"{_X}simpleType")), None)
        return Decl(node.get("name"), schema.get("targetNamespace") if qualified else None,
                    _qname(node, node.get("type")) if node.get("type") else None, inline,
                    int(node.get("minOccurs", "1")), None if max_occurs == "unbounded" else int(max_occurs))

    def global_decl(self, qname: etree.QName) -> Decl:
        return self.decl(self.elements[qname], top=True)

    # ---------------------------------------------------------------- types
    def _type_node(self, d: Decl) -> etree._Element | None:
        if d.inline is not None:
            return d.inline
        if d.type_name is None or d.type_name.namespace == XSD_NS:
            return None
        found = self.complex.get(d.type_name)
        return found if found is not None else self.simple[d.type_name]

    def _children(self, ctype: etree._Element) -> list[Decl]:
        seq = ctype.find(f"{_X}sequence")
        return [] if seq is None else [self.decl(e) for e in seq.findall(f"{_X}element")]

    def _simple_default(self, node: etree._Element | None, builtin: str | None) -> str:
        """The initial value SAP writes for a simple type (see module docstring)."""
        pattern = max_length = None
        while node is not None:
            restriction = node.find(f"{_X}restriction")
            if restriction is None:
                break
            for facet in restriction:
                if facet.tag == f"{_X}pattern" and pattern is None:
                    pattern = facet.get("value")
                elif facet.tag in (f"{_X}maxLength", f"{_X}length") and max_length is None:
                    max_length = int(facet.get("value"))
            base = _qname(restriction, restriction.get("base"))
            if base.namespace == XSD_NS:
                builtin = base.localname
                break
            node = self.simple.get(base)
        if builtin in ("decimal", "int", "integer", "long", "short", "byte", "double", "float"):
            return "0"
        if builtin == "boolean":
            return "false"
        if pattern == r"\d*" and max_length:
            return "0" * max_length
        if pattern and pattern.startswith(r"\d\d\d\d-"):
            return "0000-00-00"
        return ""

    # ---------------------------------------------------------------- render
    def render(self, qname: etree.QName, value: dict[str, Any], nsmap_prefix: str = "n0") -> etree._Element:
        """The global element ``qname`` written from ``value`` (dicts, lists, scalars)."""
        d = self.global_decl(qname)
        root = etree.Element(qname, nsmap={nsmap_prefix: qname.namespace})
        self._fill(root, d, value)
        return root

    def _fill(self, node: etree._Element, d: Decl, value: Any) -> None:
        tnode = self._type_node(d)
        if tnode is None or tnode.tag == f"{_X}simpleType":
            node.text = self._scalar(value) if value is not None else self._simple_default(
                tnode, d.type_name.localname if d.type_name is not None else None)
            return
        content = tnode.find(f"{_X}simpleContent")
        if content is not None:  # a code or ID with attributes: value is text or {"_": text, "@attr": …}
            attrs = value if isinstance(value, dict) else {"_": value}
            node.text = self._scalar(attrs.get("_", ""))
            for k, v in attrs.items():
                if k.startswith("@") and v is not None:
                    node.set(k[1:], self._scalar(v))
            return
        children = self._children(tnode)
        if isinstance(value, list) and len(children) == 1 and children[0].max is None:
            value = {children[0].name: value}  # a TABLE_OF_…: rows given directly
        value = value or {}
        if not isinstance(value, dict):
            raise TypeError(f"{d.name}: expected a structure, got {value!r}")
        unknown = set(value) - {c.name for c in children}
        if unknown:
            raise KeyError(f"{d.name}: no such field(s) {sorted(unknown)} in the schema")
        for c in children:
            v = value.get(c.name)
            if c.max == 1:  # a single element (a list here is a TABLE_OF_… given as its rows)
                rows = [] if v is None and c.min == 0 else [v]
            else:
                rows = v if isinstance(v, list) else ([] if v is None else [v])
            for row in rows:
                child = etree.SubElement(node, etree.QName(c.ns, c.name) if c.ns else c.name)
                self._fill(child, c, row)

    @staticmethod
    def _scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, Decimal):
            return format(value, "f")
        return str(value)


def to_python(node: etree._Element) -> Any:
    """A request element as Python: text for leaves (``""`` when empty), a list for an element
    whose children are all ``item`` (a table), else a dict by local name."""
    children = [c for c in node if isinstance(c.tag, str)]
    if not children:
        return node.text or ""
    if all(etree.QName(c).localname == "item" for c in children):
        return [to_python(c) for c in children]
    return {etree.QName(c).localname: to_python(c) for c in children}


def rows(value: Any) -> list[dict[str, Any]]:
    """A table parameter's rows (an empty ``<TABLE/>`` reads as ``""``)."""
    return value if isinstance(value, list) else []
