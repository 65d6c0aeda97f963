"""The validation gate: a Great Expectations suite per canonical entity, run per batch.

Failing rows are found from GX's per-row results (``unexpected_index_list`` over a unique
surrogate row key, as ../shared/LIBRARIES.md advises) and go to quarantine with the
expectation that failed; the rest of the batch goes on. A crashed expectation is told
apart from failing data and raised, never read as "every row failed".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from hub.types import ROLES

SUITE_DIR = Path(__file__).resolve().parent / "suites"
ROW_KEY = "_row"

logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass
class GateResult:
    good: pd.DataFrame
    failures: pd.DataFrame  # _row, expectation, column, reason: these rows go to quarantine
    results: list[dict[str, Any]] = field(default_factory=list)  # one summary per expectation
    cleared: pd.DataFrame = field(default_factory=pd.DataFrame)  # kept rows whose failing field was cleared


class ExpectationCrashed(RuntimeError):
    """An expectation raised inside GX: a bug or a bad suite, not bad data."""


@lru_cache(maxsize=16)
def load_suite(entity: str) -> dict[str, Any]:
    return yaml.safe_load((SUITE_DIR / f"{entity}.yaml").read_text(encoding="utf-8"))


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


@lru_cache(maxsize=16)
def _validation(entity: str):
    """Build (once per process) the GX context, batch definition and suite for ``entity``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    spec = load_suite(entity)
    batch = (ctx.data_sources.add_pandas(f"{entity}_source").add_dataframe_asset(f"{entity}_batch")
             .add_batch_definition_whole_dataframe(f"{entity}_whole"))
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"{entity}_suite"))
    reasons: dict[str, str] = {}
    for item in spec["expectations"]:
        cls = getattr(gx.expectations, _camel(item["expectation"]))
        suite.add_expectation(cls(**item.get("kwargs", {}), meta={"reason": item["reason"], "id": item["id"]}))
        reasons[item["id"]] = item["reason"]
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"{entity}_gate", data=batch, suite=suite))
    return vd


def prepare(entity: str, df: pd.DataFrame) -> pd.DataFrame:
    """Derived columns the suite checks (computed vectorised before GX sees the batch)."""
    from quality import checks

    return checks.derive(entity, df)


def validate(entity: str, df: pd.DataFrame, system_column: str = "system",
             seats: Mapping[str, str] | None = None) -> GateResult:
    """Split ``df`` (which has a unique ``_row`` column) into good rows and failures.

    An expectation with ``clear_for: [role, ...]`` does not reject rows of the systems in those
    roles: their failing field is cleared and the row goes on (an ERP's existing master record
    is not refused for a bad tax code, but the bad code must not be used to match it).
    ``seats`` maps each role to its seat's xref name, the value of ``system_column``
    (``{"erp": "u8", "crm": "crm"}``); the caller knows the bindings, this module does not.
    """
    if df.empty:
        return GateResult(df, pd.DataFrame(columns=[ROW_KEY, "expectation", "column", "reason"]))
    batch = prepare(entity, df.copy())
    vd = _validation(entity)
    res = vd.run(batch_parameters={"dataframe": batch},
                 result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_KEY]})
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for r in res.results:
        meta = r.expectation_config.meta or {}
        column = r.expectation_config.kwargs.get("column")
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise ExpectationCrashed(f"{meta.get('id')}: {r.exception_info.get('exception_message')}")
        unexpected = (r.result or {}).get("unexpected_index_list") or []
        for item in unexpected:
            rows.append({ROW_KEY: item[ROW_KEY] if isinstance(item, dict) else item,
                         "expectation": meta.get("id"), "column": column, "reason": meta.get("reason")})
        summary.append({"id": meta.get("id"), "expectation": r.expectation_config.type, "column": column,
                        "success": bool(r.success), "unexpected": len(unexpected)})
    failures = pd.DataFrame(rows, columns=[ROW_KEY, "expectation", "column", "reason"])
    systems = df.set_index(ROW_KEY)[system_column] if system_column in df.columns else pd.Series(dtype=object)
    clear_for = _clear_for(entity, seats) if system_column in df.columns else {}
    soft = failures.apply(lambda f: systems.get(f[ROW_KEY]) in clear_for.get(f["expectation"], set()), axis=1) \
        if len(failures) else pd.Series(dtype=bool)
    hard_rows = set(failures.loc[~soft, ROW_KEY]) if len(failures) else set()
    cleared = failures[soft & ~failures[ROW_KEY].isin(hard_rows)] if len(failures) else failures
    good = df[~df[ROW_KEY].isin(hard_rows)].copy()
    for column, part in cleared.groupby("column"):
        source_column = "uscc" if column == "uscc_check_ok" else column
        good.loc[good[ROW_KEY].isin(part[ROW_KEY]), source_column] = None
    return GateResult(good, failures[failures[ROW_KEY].isin(hard_rows)], summary, cleared)


def _clear_for(entity: str, seats: Mapping[str, str] | None) -> dict[str, set[str]]:
    """Expectation id → the xref names whose failing rows are cleared, not rejected. A suite that
    names something other than a role, or a role the caller gave no seat for, is an error: a
    silent miss would reject every existing ERP record with a bad tax code."""
    out: dict[str, set[str]] = {}
    for item in load_suite(entity)["expectations"]:
        named = list(item.get("clear_for", ()))
        unknown = [r for r in named if r not in ROLES]
        if unknown:
            raise ValueError(f"suite {entity}, {item['id']}: clear_for names {unknown}, which are not roles "
                             f"({', '.join(ROLES)})")
        missing = [r for r in named if r not in (seats or {})]
        if missing:
            raise ValueError(f"suite {entity}, {item['id']}: clear_for names role(s) {missing}; "
                             "validate() needs seats={role: xref name} for them")
        out[item["id"]] = {(seats or {})[r] for r in named}
    return out
