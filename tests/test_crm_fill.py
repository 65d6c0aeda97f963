"""Golden facts back to the CRM where it lacks them (issue 16): registry facts fill the CRM's empty
legal fields and the ERP's 开票档案 its empty invoicing fields; what a salesperson typed is never
overwritten unless the survivorship rule says ``to_crm: overwrite``.

The oracle is the CRM stand-in's tables before and after, and the registry stand-in's truth.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, isolate_hub, start_sandbox
from tests.flowkit import run_flow, step
from tests.orderkit import rows

FIELDS = ("uscc__c", "taxNumber__c", "invoiceTitle__c", "invoiceAddress__c", "invoicePhone__c", "invoiceBank__c",
          "invoiceBankAccount__c")


def _accounts(sb) -> dict[str, dict]:
    return {str(r["id"]): r for r in rows(sb.crm_db, f'select id, {", ".join(FIELDS)} from "account"')}


def _registry(sb) -> dict[str, dict]:
    """CRM account id → its company as the registry holds it (seed truth)."""
    folder = Path(sb.folder)
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))["crm"]
    companies = {c["company_id"]: c for c in json.loads((folder / "registry_truth.json").read_text(encoding="utf-8"))["companies"]}
    return {t["crm_id"]: companies[t["company_id"]] for t in truth if t.get("company_id") in companies}


@contextmanager
def _world(tmp_path_factory, name: str, rules: Path | None = None):
    """A sandbox and hub of its own, the CRM accounts as seeded, and two customer_master runs."""
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp(name)
    isolate_hub(folder, mp)
    if rules is not None:
        mp.setenv("HUB_RULES_DIR", str(rules))
    sb = start_sandbox(folder / "sandbox", 60, mp)
    try:
        before = _accounts(sb)
        yield sb, before, [run_flow("customer_master", "cm-1"), run_flow("customer_master", "cm-2")]
    finally:
        sb.stop()
        mp.undo()


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    with _world(tmp_path_factory, "fill") as world:
        yield world


def test_empty_legal_and_invoicing_fields_are_filled_and_typed_ones_kept(kept):
    sb, before, reports = kept
    assert all(t["adds_up"] for rep in reports for t in rep["systems"].values())
    after, registry = _accounts(sb), _registry(sb)
    filled = {(k, f) for k in before for f in FIELDS if not (before[k][f] or "").strip() and (after[k][f] or "").strip()}
    assert len({f for _, f in filled}) >= 5, "registry and ERP facts reach several empty fields"
    for key in before:
        for field in FIELDS:
            if (before[key][field] or "").strip():
                assert after[key][field] == before[key][field], (key, field)   # typed: kept
    usccs = [(k, after[k]["uscc__c"]) for k, f in filled if f == "uscc__c"]
    assert usccs and all(registry[k]["uscc"] == v for k, v in usccs if k in registry)   # the registry's, not a guess
    assert step(reports[1], "write_back")["written"] == 0   # what the CRM now holds is no change


@pytest.fixture(scope="module")
def overwritten(tmp_path_factory):
    rules = tmp_path_factory.mktemp("rules")
    spec = yaml.safe_load((ROOT / "quality" / "rules" / "customer_survivorship.yaml").read_text(encoding="utf-8"))
    for group in spec["groups"]:
        if group["name"] == "legal":
            group["to_crm"] = "overwrite"
    (rules / "customer_survivorship.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    with _world(tmp_path_factory, "overwrite", rules) as world:
        yield world


def test_the_rule_overwrite_lets_the_registry_replace_typed_legal_facts(overwritten):
    sb, before, reports = overwritten
    assert all(t["adds_up"] for rep in reports for t in rep["systems"].values())
    after, registry = _accounts(sb), _registry(sb)
    replaced = [k for k in before if (before[k]["invoiceTitle__c"] or "").strip()
                and after[k]["invoiceTitle__c"] != before[k]["invoiceTitle__c"]]
    assert replaced, "a typed 开票抬头 that is not the registry's legal name (a renamed company) is replaced"
    assert all(after[k]["invoiceTitle__c"] == registry[k]["legal_name"] for k in replaced)
    for key in before:   # invoicing facts keep fill_empty: typed ones stay
        for field in ("invoiceAddress__c", "invoicePhone__c", "invoiceBank__c", "invoiceBankAccount__c"):
            if (before[key][field] or "").strip():
                assert after[key][field] == before[key][field], (key, field)

