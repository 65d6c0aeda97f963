"""Field-level survivorship: which system's value becomes the golden record's.

Rules are data (``quality/rules/<entity>_survivorship.yaml``): per group of fields either
``priority`` (first role in the order that has a value: registry > ERP > CRM for legal
facts; a source's system is its seat's xref name, ranked by the role the caller says it plays) or ``newest`` (the most recently updated source that has a value).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import pandas as pd
import yaml

RULE_DIR = Path(__file__).resolve().parent / "rules"
RULES_ENV = "HUB_RULES_DIR"


#: What the CRM is sent of a group's golden values (``to_crm`` of a group): ``fill_empty`` only where
#: the CRM account holds nothing (what a person typed there stays), ``overwrite`` wherever it differs.
TO_CRM = ("fill_empty", "overwrite")


def rules(entity: str) -> dict:
    """The entity's rules: ``HUB_RULES_DIR/<entity>_survivorship.yaml`` where a deployment keeps its
    own (a tenant whose CRM must show the registry's names), else the project's."""
    own = Path(os.environ[RULES_ENV]) / f"{entity}_survivorship.yaml" if os.environ.get(RULES_ENV) else None
    return _rules(own if own is not None and own.exists() else RULE_DIR / f"{entity}_survivorship.yaml")


@lru_cache(maxsize=8)
def _rules(path: Path) -> dict:
    entity = path.name.removesuffix("_survivorship.yaml")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    for group in spec.get("groups", []):
        if group.get("to_crm", "fill_empty") not in TO_CRM:
            raise ValueError(f"{entity}_survivorship.yaml group {group.get('name')}: to_crm must be one of {TO_CRM}")
    return spec


def to_crm(entity: str) -> dict[str, str]:
    """Field → how its golden value may reach the CRM (``fill_empty`` unless its group says ``overwrite``)."""
    return {f: group.get("to_crm", "fill_empty") for group in rules(entity).get("groups", []) for f in group["fields"]}


def golden(entity: str, sources: pd.DataFrame, fields: list[str], seats: Mapping[str, str]) -> pd.DataFrame:
    """One golden row per hub_id from its source rows (system, hub_id, fields, source_updated_at);
    ``seats`` maps role → xref name, so the rules' role order ranks the bound systems."""
    if sources.empty:
        return pd.DataFrame(columns=["hub_id", *fields])
    spec = rules(entity)
    src = sources.copy()
    src["_ts"] = pd.to_datetime(src["source_updated_at"], utc=True, errors="coerce")
    src["_role"] = src["system"].map({system: role for role, system in seats.items()}).fillna(src["system"])
    out = pd.DataFrame(index=pd.Index(sorted(src["hub_id"].unique()), name="hub_id"))
    assigned: set[str] = set()
    for group in spec["groups"]:
        cols = [f for f in group["fields"] if f in fields]
        assigned.update(cols)
        out = out.join(_pick(src, cols, group))
    rest = [f for f in fields if f not in assigned]
    if rest:
        out = out.join(_pick(src, rest, spec.get("default", {"rule": "newest"})))
    return out.reset_index()[["hub_id", *fields]]


def _pick(src: pd.DataFrame, cols: list[str], group: dict) -> pd.DataFrame:
    if not cols:
        return pd.DataFrame(index=pd.Index([], name="hub_id"))
    if group["rule"] == "priority":
        order = {s: i for i, s in enumerate(group["order"])}
        ranked = src.assign(_rank=src["_role"].map(order).fillna(len(order)))
        ranked = ranked.sort_values(["hub_id", "_rank", "_ts"], ascending=[True, True, False])
    else:
        ranked = src.sort_values(["hub_id", "_ts"], ascending=[True, False], na_position="last")
    blanks = ranked[cols].astype(object).where(ranked[cols].notna(), None)
    return blanks.assign(hub_id=ranked["hub_id"]).groupby("hub_id", sort=False)[cols].first()
