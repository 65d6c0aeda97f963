"""Field paths: how the hub's flat records name OData properties, expanded navigations and
their entries, both ways.

A mapping names an S/4 field by a path:

- ``OrganizationBPName1``: a property of the entity itself;
- ``to_BusinessPartnerAddress/StreetName``: a property of the (first) entry of a navigation;
- ``to_BusinessPartnerTax[BPTaxType=CN5]/BPTaxNumber``: of the entry whose ``BPTaxType`` is
  ``CN5``. On a write the selector's values are the entry's identity: a create carries them, a
  change finds the entry by them (and creates it when missing);
- ``OrganizationBPName1+OrganizationBPName2`` (reads): the texts run together, as SAP spreads
  one long text over numbered fields (an organisation's name over four lines of 40);
- ``ReferenceSDDocument|ReferenceSDDocumentItem`` (reads): the parts joined with ``/`` as one
  value, the form of a two-part key (see :func:`join_key`).
- ``to_SerialDeliveryItem/to_MaintenanceItemObject[*]/SerialNumber`` (reads): ``[*]`` takes every
  entry of that navigation, the values joined with ``,`` (a delivery item's serial numbers).

Reads derive ``$select`` and ``$expand`` from the paths (a navigation is selected whole:
``$select=to_X`` is the form every V2 server takes, where ``to_X/Prop`` is not always served)
and flatten each answered entity into
one record keyed by them (plus ``__key``, the entity's key as one value); creates unflatten a
record into the deep-insert body OData V2 takes (a collection as ``{"results": [...]}``, a to-one
navigation as an object); changes compare a record with the entity as read and plan the PATCHes
and POSTs that make them agree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping, Sequence

from connectors.sap_s4.streams import TO_ONE
from connectors.sap_s4.values import from_wire, parse_moment

KEY = "__key"
_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?$")


@dataclass(frozen=True)
class Step:
    """One navigation step: its name and the selector its entry is chosen by."""

    nav: str
    select: tuple[tuple[str, str], ...] = ()
    every: bool = False         # ``[*]``: all entries (reads only)


@dataclass(frozen=True)
class Path:
    steps: tuple[Step, ...]
    props: tuple[str, ...]      # one property, or the parts of a joined value
    joint: str = ""             # "+" texts run together, "|" key parts joined with "/"

    @property
    def prop(self) -> str:
        return self.props[0]


def parse(text: str) -> Path:
    """A path as written in a mapping; a ValueError names what is wrong with it."""
    *navs, last = text.split("/")
    steps = []
    for seg in navs:
        m = _SEGMENT.match(seg)
        if not m:
            raise ValueError(f"field path {text!r}: {seg!r} is not a navigation property")
        select = ()
        if m.group(2) == "*":
            steps.append(Step(m.group(1), (), True))
            continue
        if m.group(2):
            try:
                select = tuple(tuple(p.split("=", 1)) for p in m.group(2).split(","))  # type: ignore[misc]
            except ValueError:
                raise ValueError(f"field path {text!r}: selector {m.group(2)!r} is not name=value,…") from None
            if any(len(p) != 2 or not p[0] for p in select):
                raise ValueError(f"field path {text!r}: selector {m.group(2)!r} is not name=value,…")
        steps.append(Step(m.group(1), select))
    joint = "+" if "+" in last else "|" if "|" in last else ""
    if "+" in last and "|" in last:
        raise ValueError(f"field path {text!r}: join with + or with |, not both")
    props = tuple(last.split(joint)) if joint else (last,)
    if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in props):
        raise ValueError(f"field path {text!r}: {last!r} is not a property")
    return Path(tuple(steps), props, joint)


def nav_prefix(steps: Sequence[Step]) -> str:
    return "/".join(s.nav for s in steps)


def query(columns: Iterable[str], always: Iterable[str]) -> tuple[str, str]:
    """``$select`` and ``$expand`` for the fields named (``always``: the key and change properties)."""
    select: dict[str, None] = dict.fromkeys(always)
    expand: dict[str, None] = {}
    for col in columns:
        if col == KEY:
            continue
        path = parse(col)
        for i in range(1, len(path.steps) + 1):
            expand[nav_prefix(path.steps[:i])] = None
            select[nav_prefix(path.steps[:i])] = None
        if not path.steps:
            select.update(dict.fromkeys(path.props))
    return ",".join(select), ",".join(expand)


def entries(value: Any) -> list[dict]:
    """A navigation's answered entries (``{"results": [...]}``, an object, or null)."""
    if value is None:
        return []
    if isinstance(value, dict) and "__deferred" in value:
        raise ValueError("navigation not expanded")
    if isinstance(value, dict) and "results" in value:
        return [e for e in value["results"] if isinstance(e, dict)]
    return [value] if isinstance(value, dict) else []


def _matches(entry: Mapping[str, Any], select: Sequence[tuple[str, str]]) -> bool:
    return all(str(from_wire(entry.get(k))) == v for k, v in select)


def pick(entity: Mapping[str, Any], step: Step) -> dict | None:
    """The first entry of ``step``'s navigation that its selector matches."""
    return next((e for e in entries(entity.get(step.nav)) if _matches(e, step.select)), None)


def join_key(parts: Sequence[Any]) -> str | None:
    """Parts of a multi-part key as one value, ``"4711/10"``: all-digit parts without leading
    zeros, because SAP answers the same item number as ``"10"`` in one service (display format
    NonNegative) and may answer ``"000010"`` in another (the delivery's ReferenceSDDocumentItem)."""
    if any(p in (None, "") for p in parts):
        return None
    return "/".join(str(int(p)) if str(p).isdigit() else str(p) for p in parts)


def key_of(entity: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    """The entity's ``__key``: its one key value as answered, or its key parts joined."""
    if len(keys) == 1:
        value = entity.get(keys[0])
        return None if value in (None, "") else str(value)
    return join_key([entity.get(k) for k in keys])


def split_key(value: str, keys: Sequence[str]) -> dict[str, str]:
    """A ``__key`` back into its key properties; a ValueError when the parts do not fit."""
    parts = [value] if len(keys) == 1 else str(value).split("/")
    if len(parts) != len(keys):
        raise ValueError(f"key {value!r} does not have the {len(keys)} parts {'/'.join(keys)}")
    return dict(zip(keys, parts))


def resolve(entity: Mapping[str, Any], path: Path) -> Any:
    """The value ``path`` names in an answered entity (None where an entry is missing)."""
    nodes: list[Mapping[str, Any]] = [entity]
    for step in path.steps:
        nodes = ([e for n in nodes for e in entries(n.get(step.nav))] if step.every
                 else [p for n in nodes if (p := pick(n, step)) is not None])
    if any(step.every for step in path.steps):
        values = [_value(n, path) for n in nodes]
        return ",".join(str(v) for v in values if v not in (None, "")) or None
    return _value(nodes[0], path) if nodes else None


def _value(node: Mapping[str, Any], path: Path) -> Any:
    if path.joint == "|":
        return join_key([from_wire(node.get(p)) for p in path.props])
    if path.joint == "+":
        return "".join(str(node.get(p) or "") for p in path.props) or None
    return from_wire(node.get(path.prop))


def flatten(entity: Mapping[str, Any], columns: Iterable[str], keys: Sequence[str],
            extra: Iterable[str] = ()) -> dict[str, Any]:
    """One flat record: every asked path, the key and ``extra`` properties, and ``__key``."""
    record: dict[str, Any] = {k: from_wire(entity.get(k)) for k in (*keys, *extra)}
    for col in columns:
        if col != KEY:
            record[col] = resolve(entity, parse(col))
    record[KEY] = key_of(entity, keys)
    return record


# --- writes ---------------------------------------------------------------------------------------

@dataclass
class Node:
    """What a record says about one entity: its own properties and its navigations' entries."""

    props: dict[str, Any]
    navs: dict[Step, "Node"]
    lists: dict[str, list["Node"]]   # a list of records under a navigation (an order's to_Item)


def tree(record: Mapping[str, Any]) -> Node:
    """The record's paths as a tree (control keys ``_…`` and ``__…`` left out, nulls dropped)."""
    node = Node({}, {}, {})
    for name, value in record.items():
        if name.startswith("_") or value is None:
            continue
        if isinstance(value, list):
            node.lists[name] = [tree(v) for v in value if isinstance(v, Mapping)]
            continue
        path = parse(name)
        if path.joint or any(step.every for step in path.steps):
            raise ValueError(f"{name!r}: a joined or [*] path can only be read")
        target = node
        for step in path.steps:
            target = target.navs.setdefault(step, Node({}, {}, {}))
        target.props[path.prop] = value
    return node


def body(node: Node, wire) -> dict[str, Any]:
    """A deep-insert body (``wire(prop, value)`` encodes each value)."""
    out: dict[str, Any] = {k: wire(k, v) for k, v in node.props.items()}
    for step, child in node.navs.items():
        entry = {k: v for k, v in step.select} | body(child, wire)
        if step.nav in TO_ONE:
            if step.nav in out:
                raise ValueError(f"{step.nav} is a to-one navigation: one entry only")
            out[step.nav] = entry
        else:
            out.setdefault(step.nav, {"results": []})["results"].append(entry)
    for nav, items in node.lists.items():
        out[nav] = {"results": [body(item, wire) for item in items]}
    return out


def same(current: Any, wanted: Any) -> bool:
    """Whether an answered value already is the wanted one (decimal text, dates and codes
    compared by meaning: "2.000" is 2, "/Date(…)/" is its day)."""
    cur = from_wire(current)
    if cur is None or cur == "":
        return wanted is None or wanted == ""
    if str(cur) == str(wanted):
        return True
    try:
        return Decimal(str(cur)) == Decimal(str(wanted))
    except (InvalidOperation, ValueError):
        pass
    a, b = parse_moment(cur), parse_moment(str(wanted))
    return a is not None and a == b


@dataclass
class Op:
    """One call of a change: PATCH an entity's own properties, or POST a missing entry."""

    method: str                 # PATCH | POST
    uri: str                    # the entity's uri (PATCH) or its parent's navigation (POST)
    fields: dict[str, Any]      # PATCH: the properties that differ; POST: the entry's body
    etag: str | None = None


def uri_of(entity: Mapping[str, Any]) -> str:
    meta = entity.get("__metadata") or {}
    uri = meta.get("uri") if isinstance(meta, dict) else None
    if not uri:
        raise ValueError("the answer carries no __metadata.uri for an entity to change")
    return str(uri)


def etag_of(entity: Mapping[str, Any]) -> str | None:
    meta = entity.get("__metadata") or {}
    return meta.get("etag") if isinstance(meta, dict) else None


def plan(current: Mapping[str, Any], want: Node, wire, match: Mapping[str, str],
         keep: Iterable[str] = ()) -> list[Op]:
    """The calls that make ``current`` (an entity as answered, its navigations expanded) say
    what ``want`` says: a PATCH of the properties that differ (none when all agree), a POST for
    each entry missing, the same for each entry present. ``match`` names, per list navigation
    (``to_Item``), the property its entries are matched by; ``keep`` lists properties never
    changed (a key, an identity SAP already holds)."""
    ops: list[Op] = []
    uri = uri_of(current)
    keep = set(keep)
    differ = {k: wire(k, v) for k, v in want.props.items() if k not in keep and not same(current.get(k), v)}
    if differ:
        ops.append(Op("PATCH", uri, differ, etag_of(current)))
    for step, child in want.navs.items():
        found = pick(current, step)
        ident = {k for k, _ in step.select}
        if found is None:
            ops.append(Op("POST", f"{uri}/{step.nav}", {k: v for k, v in step.select} | body(child, wire)))
        else:
            ops.extend(plan(found, child, wire, match, ident))
    for nav, items in want.lists.items():
        field = match[nav]
        have = {str(from_wire(e.get(field))): e for e in entries(current.get(nav))}
        for item in items:
            key = item.props.get(field)
            found = have.get(str(key)) if key is not None else None
            if found is None:
                ops.append(Op("POST", f"{uri}/{nav}", body(item, wire)))
            else:
                ops.extend(plan(found, item, wire, match, {field}))
    return ops


def expand_of(node: Node, prefix: str = "") -> list[str]:
    """The ``$expand`` a change needs to see every entry ``node`` names."""
    out: list[str] = []
    for step, child in node.navs.items():
        here = f"{prefix}{step.nav}"
        out += [here, *expand_of(child, here + "/")]
    for nav, items in node.lists.items():
        here = f"{prefix}{nav}"
        out.append(here)
        for item in items:
            out += expand_of(item, here + "/")
    return list(dict.fromkeys(out))
