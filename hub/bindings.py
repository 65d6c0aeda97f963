"""The deployment's bindings: which system sits in each role (``deploy/bindings*.yaml``).

Chosen by ``HUB_BINDINGS``: a path, or a short name (``sap`` reads
``deploy/bindings.sap.yaml``); unset, ``deploy/bindings.yaml`` (crm: 销售易, erp: U8). The
file is validated against the systems the connectors declare (``connectors.SYSTEMS``) when
DAGs are parsed: a bad line fails the parse with the file and line in the message, rather
than a task failing at 3 a.m.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from hub.errors import ConfigurationError
from hub.types import ROLES, Binding, ConnectionInfo, SystemCard

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DEFAULT = DEPLOY / "bindings.yaml"
ENV = "HUB_BINDINGS"


def path() -> Path:
    """The bindings file this process uses."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT
    if "/" in raw or raw.endswith((".yaml", ".yml")):
        return Path(raw).expanduser().resolve()
    return DEPLOY / f"bindings.{raw}.yaml"


def _loader(text: str, where: Path) -> Any:
    """Parse keeping each mapping's line (``__line__``) so errors can name it."""
    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
        data = loader.construct_mapping(node, deep=True)
        data["__line__"] = node.start_mark.line + 1
        return data

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct)
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigurationError(f"{where}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None


def load(systems: Mapping[str, SystemCard], file: Path | None = None,
         resolve: Callable[[str], ConnectionInfo] | None = None) -> dict[str, list[Binding]]:
    """Role → its bindings, validated: known roles and systems, a system only in a role it can
    play, every connection it needs named, names unique (they are xref keys)."""
    file = file or path()
    if not file.exists():
        raise ConfigurationError(f"{ENV} points at {file}, which does not exist "
                                 f"(choose one of {sorted(p.name for p in DEPLOY.glob('bindings*.yaml'))})")
    data = _loader(file.read_text(encoding="utf-8"), file) or {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"{file}:1: a bindings file maps roles to systems (crm: …, erp: …)")
    out: dict[str, list[Binding]] = {}
    names: dict[str, str] = {}
    for role, value in data.items():
        if role == "__line__":
            continue
        if role not in ROLES:
            raise ConfigurationError(f"{file}: unknown role {role!r}; roles are {', '.join(ROLES)}")
        entries = value if isinstance(value, list) else [value]
        for entry in entries:
            out.setdefault(role, []).append(_binding(role, entry, systems, file, resolve, names))
    for role in ("crm",):
        if role not in out:
            raise ConfigurationError(f"{file}: no {role!r} binding (the hub is built around one CRM core)")
    return out


def _binding(role: str, entry: Any, systems: Mapping[str, SystemCard], file: Path,
             resolve: Callable[[str], ConnectionInfo] | None, names: dict[str, str]) -> Binding:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{file}: {role}: expected `system: <name>` and `connections: {{…}}`, got {entry!r}")
    where = f"{file}:{entry.get('__line__', '?')}"
    system = entry.get("system")
    card = systems.get(system) if isinstance(system, str) else None
    if card is None:
        raise ConfigurationError(f"{where}: {role}: unknown system {system!r}; known: {', '.join(sorted(systems))}")
    if role not in card.roles:
        raise ConfigurationError(f"{where}: {system} ({card.label}) cannot play {role!r}; it plays {', '.join(card.roles)}")
    unknown = set(entry) - {"system", "name", "connections", "options", "__line__"}
    if unknown:
        raise ConfigurationError(f"{where}: {role}: unknown key(s) {sorted(unknown)} "
                                 "(a binding has system, name, connections, options)")
    conns = {k: v for k, v in (entry.get("connections") or {}).items() if k != "__line__"}
    if not all(isinstance(v, str) and v for v in conns.values()):
        raise ConfigurationError(f"{where}: {role}: connections map a purpose to an Airflow connection id, got {conns}")
    missing = [p for p in card.needs if p not in conns]
    if missing:
        raise ConfigurationError(f"{where}: {role} {system} needs connection(s) {missing} "
                                 f"(connections: {{{', '.join(f'{p}: <conn id>' for p in card.needs)}}})")
    extra = set(conns) - set(card.needs) - set(card.optional)
    if extra:
        raise ConfigurationError(f"{where}: {role} {system} takes no connection(s) {sorted(extra)}; "
                                 f"it takes {', '.join((*card.needs, *card.optional))}")
    name = str(entry.get("name") or ("crm" if role == "crm" else system))
    if role == "crm" and name != "crm":
        raise ConfigurationError(f"{where}: the CRM core's seat is always named 'crm' (its xref key); drop `name:`")
    if name in names:
        raise ConfigurationError(f"{where}: binding name {name!r} is already used at {names[name]} "
                                 "(names are the xref keys of the systems: give each seat its own `name:`)")
    names[name] = where
    options = {k: v for k, v in (entry.get("options") or {}).items() if k != "__line__"}
    return Binding(role=role, name=name, system=system, label=card.label, connections=conns, options=options,
                   where=where, resolve=resolve)
