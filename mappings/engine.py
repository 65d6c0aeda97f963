"""The mapping engine: compiles a YAML spec into column-wise transforms over a DataFrame.

A spec names, per target field, its source field, type, cleaning, value map, whether it is
required and its maximum length. The engine works a column at a time (vectorised); a row
that breaks a rule is not dropped silently: it comes back in ``errors`` with the field
and the reason, for quarantine.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import yaml

SPEC_DIR = Path(__file__).resolve().parent / "specs"
VALUEMAP_DIR = Path(__file__).resolve().parent / "valuemaps"

_WS = re.compile(r"[\s\u3000]+")


def _company_name(s: pd.Series) -> pd.Series:
    """Registered-name form: half-width letters/digits, full-width brackets, single spaces."""
    s = s.str.normalize("NFKC").str.replace(_WS, " ", regex=True).str.strip()
    s = s.str.replace("(", "（", regex=False).str.replace(")", "）", regex=False)
    # no space next to a CJK character or a bracket: 上海 华测 → 上海华测
    return s.str.replace(r"(?<=[\u4e00-\u9fff（）]) | (?=[\u4e00-\u9fff（）])", "", regex=True)


CLEANERS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "strip": lambda s: s.str.strip().str.strip("\u3000"),
    "upper": lambda s: s.str.upper(),
    "lower": lambda s: s.str.lower(),
    "nfkc": lambda s: s.str.normalize("NFKC"),
    "collapse_spaces": lambda s: s.str.replace(_WS, " ", regex=True).str.strip(),
    "remove_spaces": lambda s: s.str.replace(_WS, "", regex=True),
    "digits_only": lambda s: s.str.replace(r"[^0-9]", "", regex=True),
    "company_name": _company_name,
}


@dataclass(frozen=True)
class FieldRule:
    target: str
    source: str | None
    type: str = "str"
    required: bool = False
    max_length: int | None = None
    clean: tuple[str, ...] = ()
    value_map: str | None = None
    const: Any = None


@dataclass(frozen=True)
class Spec:
    name: str
    entity: str
    system: str
    stream: str
    key: str
    version: str | None
    fields: tuple[FieldRule, ...]
    hash_fields: tuple[str, ...] = ()
    #: the target field naming a record's natural key (a create is looked up by it before it is
    #: repeated, e.g. ``productCode__c``): ``target: {natural_key: …}``
    natural_key: str | None = None
    #: how a document's lines nest in its header (line specs): ``lines_key``, ``order_by`` and
    #: optionally ``amount`` (the line field whose sum must equal the order total)
    document: tuple[tuple[str, Any], ...] = ()
    #: named target fields the flows write to besides the mapped ones (``write_back:
    #: {erp_code: erpCode__c, hub_id: hubId__c}``): tenant field names stay in the mapping
    write_back: tuple[tuple[str, str], ...] = ()

    def doc(self, key: str, default: Any = None) -> Any:
        return dict(self.document).get(key, default)

    def field_for(self, purpose: str) -> str:
        """The tenant field a flow writes for ``purpose`` (``write_back``); KeyError names the spec."""
        found = dict(self.write_back).get(purpose)
        if not found:
            raise KeyError(f"mapping {self.name} has no write_back field for {purpose!r}")
        return found

    @property
    def source_fields(self) -> list[str]:
        return list(dict.fromkeys(f.source for f in self.fields if f.source))

    @property
    def targets(self) -> list[str]:
        return [f.target for f in self.fields]


@dataclass
class MapResult:
    frame: pd.DataFrame  # mapped rows that passed, with _key, _version, _row
    errors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["_row", "field", "reason"]))


@lru_cache(maxsize=64)
def load_spec(name: str) -> Spec:
    """Load ``mappings/specs/<name>.yaml``."""
    raw = yaml.safe_load((SPEC_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    rules = []
    for target, rule in raw["fields"].items():
        rule = rule or {}
        rules.append(FieldRule(target=target, source=rule.get("from"), type=rule.get("type", "str"),
                               required=bool(rule.get("required", False)), max_length=rule.get("max_length"),
                               clean=tuple(rule.get("clean", ())), value_map=rule.get("map"), const=rule.get("const")))
    unknown = {c for r in rules for c in r.clean} - CLEANERS.keys()
    if unknown:
        raise ValueError(f"spec {name}: unknown cleaners {sorted(unknown)}")
    src = raw.get("source") or raw.get("target") or {}
    return Spec(name=raw.get("name", name), entity=raw["entity"], system=raw["system"], stream=src.get("stream", ""),
                key=src.get("key", ""), version=src.get("version"), fields=tuple(rules),
                hash_fields=tuple(raw.get("hash_fields", ())), natural_key=src.get("natural_key"),
                document=tuple((raw.get("document") or {}).items()),
                write_back=tuple((raw.get("write_back") or {}).items()))


@lru_cache(maxsize=64)
def load_value_map(name: str) -> tuple[dict[str, Any], Any, bool]:
    """A value map: ``values`` (source → target), ``default`` and ``strict`` (unknown = error)."""
    raw = yaml.safe_load((VALUEMAP_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    return ({str(k): v for k, v in (raw.get("values") or {}).items()}, raw.get("default"), bool(raw.get("strict", False)))


def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | s.map(lambda v: isinstance(v, str) and not v.strip())


def _as_text(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Text values; integral numbers become their digits; dicts, lists and bools are errors."""
    def conv(v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, bool):
            return _Bad
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return None if math.isnan(v) else (str(int(v)) if v.is_integer() else str(v))
        return _Bad
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return s.astype(object), pd.Series(False, index=s.index)
    out = s.astype(object).map(conv)
    bad = out.map(lambda v: v is _Bad)
    return out.where(~bad, None), bad


class _BadType:
    pass


_Bad = _BadType()


def _as_number(s: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    def conv(v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, bool):
            return _Bad
        try:
            if kind == "decimal":
                return Decimal(str(v).replace(",", "").strip())
            d = Decimal(str(v).strip())
            return int(d) if d == d.to_integral_value() else _Bad
        except (InvalidOperation, ValueError):
            return _Bad
    out = s.astype(object).map(conv)
    bad = out.map(lambda v: v is _Bad)
    return out.where(~bad, None), bad


def _convert(s: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    if kind == "str":
        return _as_text(s)
    if kind in ("int", "decimal"):
        return _as_number(s, kind)
    if kind == "epoch_ms":
        num, bad = _as_number(s, "int")
        ts = pd.to_datetime(num.astype("Int64"), unit="ms", utc=True, errors="coerce")
        return ts.astype(object).where(ts.notna(), None), bad
    if kind == "datetime":
        ts = pd.to_datetime(s, utc=True, errors="coerce")
        return ts.astype(object).where(ts.notna(), None), ts.isna() & s.notna()
    raise ValueError(f"unknown type {kind}")


def apply(spec: Spec, df: pd.DataFrame) -> MapResult:
    """Map every row of ``df`` by ``spec``; rows that break a rule come back in errors."""
    n = len(df)
    out = pd.DataFrame(index=df.index)
    errors: list[pd.DataFrame] = []

    def fail(mask: pd.Series, fld: str, reason: str) -> None:
        if mask.any():
            errors.append(pd.DataFrame({"_row": df.index[mask.to_numpy()], "field": fld, "reason": reason}))

    for rule in spec.fields:
        if rule.source is None:
            out[rule.target] = pd.Series([rule.const] * n, index=df.index, dtype=object)
            continue
        col = df[rule.source] if rule.source in df.columns else pd.Series([None] * n, index=df.index, dtype=object)
        values, bad = _convert(col, rule.type)
        fail(bad, rule.target, f"{rule.source}: expected {rule.type}")
        if rule.type == "str":
            text = values.astype("string")
            for name in rule.clean:
                text = CLEANERS[name](text)
            values = text.astype(object).where(text.notna(), None)
            values = values.where(~_blank(values), None)
        if rule.value_map:
            mapping, default, strict = load_value_map(rule.value_map)
            keyed = values.map(lambda v: None if v is None else str(v))
            mapped = keyed.map(mapping)
            unknown = keyed.notna() & mapped.isna()
            if strict:
                fail(unknown, rule.target, f"{rule.source}: value not in map {rule.value_map}")
            values = mapped.where(~unknown, default).astype(object)
        if rule.required:
            fail(_blank(values) & ~bad, rule.target, f"{rule.source}: required value missing")
        if rule.max_length:
            too_long = values.map(lambda v: isinstance(v, str) and len(v) > rule.max_length)
            fail(too_long, rule.target, f"{rule.source}: longer than {rule.max_length} characters")
        out[rule.target] = values
    if spec.key:
        keys, _ = _as_text(df[spec.key]) if spec.key in df.columns else (pd.Series([None] * n, index=df.index), None)
        out["_key"] = keys
        fail(_blank(keys), spec.key, f"{spec.key}: record has no key")
    if spec.version and spec.version in df.columns:
        out["_version"] = df[spec.version].astype(object)
    out["_row"] = df.index
    err = pd.concat(errors, ignore_index=True) if errors else pd.DataFrame(columns=["_row", "field", "reason"])
    good = out[~out.index.isin(err["_row"])] if len(err) else out
    return MapResult(good, err)
