"""Flow specs: what a flow is, as data (``flows/specs/<flow>.yaml``).

A spec names the entity, the hooks module holding the entity's real logic (its step
functions), the schedule and assets, the sources and targets **by role** (a mapping spec by
name, or a purpose the bound system's adapter maps: ``customer.in``), the GX suite, and what
the bound seats must support for the flow to be offered (``needs: {erp: receipts}``). The DAG
file loops over the specs (``dags/hub_flows.py``); texts say ``{erp}`` / ``{crm}`` and get the
bound systems' labels, so the Airflow UI tells an operator which system a run talks to.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from hub.errors import ConfigurationError
from hub.types import ROLES

SPEC_DIR = Path(__file__).resolve().parent / "specs"
SUITES = Path(__file__).resolve().parent.parent / "quality" / "suites"
MAPPINGS = Path(__file__).resolve().parent.parent / "mappings" / "specs"
KEYS = {"flow", "entity", "hooks", "schedule", "produces", "consumes", "after_any", "needs", "sources", "suite",
        "targets", "doc", "pools"}
END_KEYS = {"role", "mapping", "purpose", "stage", "lines_of", "parent", "lookup", "optional"}


@dataclass(frozen=True)
class End:
    """A source or target: a role, and either a mapping spec by name or the purpose the bound
    system's adapter maps (``erp.mapping(purpose)``)."""

    role: str
    mapping: str | None = None
    purpose: str | None = None
    stage: str | None = None
    lines_of: str | None = None     # these are the lines of the source staged under this key
    parent: str | None = None       # … and this canonical field of a line holds its header's key
    lookup: bool = False            # read by the flow's hook for its own steps; the engine leaves it alone
    optional: bool = False


@dataclass(frozen=True)
class FlowSpec:
    flow: str
    entity: str
    hooks: str
    schedule: timedelta | str | None
    produces: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    #: entities any one of which also starts a run (``consumes`` needs all of them updated)
    after_any: tuple[str, ...] = ()
    needs: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[End, ...] = ()
    targets: tuple[End, ...] = ()
    suite: str | None = None
    pools: Mapping[str, str] = field(default_factory=dict)
    doc: str = ""

    def steps(self) -> dict[str, Any]:
        """The hooks module's seven step functions (imported on use, never at DAG parse time)."""
        return importlib.import_module(self.hooks).STEP_FUNCTIONS

    def roles(self) -> set[str]:
        return {e.role for e in (*self.sources, *self.targets)}


def _schedule(raw: Any, where: str) -> timedelta | str | None:
    if raw is None:
        return None
    if isinstance(raw, dict) and set(raw) == {"every_minutes"}:
        return timedelta(minutes=int(raw["every_minutes"]))
    if isinstance(raw, dict) and set(raw) == {"cron"}:
        return str(raw["cron"])
    raise ConfigurationError(f"{where}: schedule is {{every_minutes: N}} or {{cron: '…'}}, got {raw!r}")


def _end(raw: Any, where: str) -> End:
    if not isinstance(raw, dict) or raw.get("role") not in ROLES:
        raise ConfigurationError(f"{where}: a source or target names a role ({', '.join(ROLES)}), got {raw!r}")
    unknown = set(raw) - END_KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {sorted(unknown)} in {raw!r}")
    if raw.get("mapping") and not (MAPPINGS / f"{raw['mapping']}.yaml").exists():
        raise ConfigurationError(f"{where}: no mapping spec mappings/specs/{raw['mapping']}.yaml")
    return End(**raw)


@lru_cache(maxsize=32)
def load(flow: str) -> FlowSpec:
    """``flows/specs/<flow>.yaml``, checked: known keys, roles, mappings and suite."""
    path = SPEC_DIR / f"{flow}.yaml"
    where = f"flows/specs/{path.name}"
    if not path.exists():
        raise ConfigurationError(f"no flow spec {where}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(raw) - KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {sorted(unknown)}; a flow spec has {sorted(KEYS)}")
    if raw.get("flow") != flow:
        raise ConfigurationError(f"{where}: flow must be {flow!r} (the file's name), got {raw.get('flow')!r}")
    suite = raw.get("suite")
    if suite and not (SUITES / f"{suite}.yaml").exists():
        raise ConfigurationError(f"{where}: no suite quality/suites/{suite}.yaml")
    needs = raw.get("needs") or {}
    if any(r not in ROLES for r in needs):
        raise ConfigurationError(f"{where}: needs names roles, got {sorted(needs)}")
    return FlowSpec(flow=flow, entity=raw["entity"], hooks=raw["hooks"],
                    schedule=_schedule(raw.get("schedule"), where), produces=tuple(raw.get("produces") or ()),
                    consumes=tuple(raw.get("consumes") or ()), after_any=tuple(raw.get("after_any") or ()),
                    needs=dict(needs),
                    sources=tuple(_end(e, where) for e in raw.get("sources") or ()),
                    targets=tuple(_end(e, where) for e in raw.get("targets") or ()), suite=suite, pools=dict(raw.get("pools") or {}),
                    doc=" ".join(str(raw.get("doc") or "").split()))


def names() -> list[str]:
    return sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))
