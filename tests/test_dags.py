"""The DAG files as Airflow's DAG processor parses them (a DagBag of dags/): every flow's DAG under
the default bindings, no receipts DAG where the bound ERP does not support receipts, and a bad
bindings line failing each flow's DAG import with the bindings file and line in the error; and
the systems' cards (read while parsing) agree with their adapters (asked while running)."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from connectors import SYSTEMS
from flows import roles
from hub import bindings
from hub.types import Binding

ROOT = Path(__file__).resolve().parent.parent
FLOWS = {"customer_master", "product_master", "sales_orders", "shipments", "registry_refresh"}


@pytest.fixture
def bag(monkeypatch):
    def parse(name: str) -> DagBag:
        monkeypatch.setenv(bindings.ENV, name)
        roles.reset()
        return DagBag(dag_folder=str(ROOT / "dags"))

    yield parse
    roles.reset()


def test_the_default_bindings_offer_every_dag(bag) -> None:
    parsed = bag("")
    assert parsed.import_errors == {}
    assert set(parsed.dag_ids) == FLOWS | {"receipts", "hub_watchdog", "shop_orders", "stock", "credit"}
    assert "approvals" not in parsed.dag_ids          # no oa seat: no approvals


@pytest.mark.parametrize("bindings_file", ["oa", "dingtalk"])
def test_an_oa_seat_gets_the_approvals_dag(bag, bindings_file) -> None:
    parsed = bag(bindings_file)
    assert parsed.import_errors == {}
    assert "approvals" in parsed.dag_ids and FLOWS <= set(parsed.dag_ids)


def test_an_erp_without_receipts_gets_no_receipts_dag(bag) -> None:
    parsed = bag("sap")
    assert parsed.import_errors == {}
    assert "receipts" not in parsed.dag_ids and FLOWS <= set(parsed.dag_ids)
    assert "stock" not in parsed.dag_ids   # no stock read for S/4 yet: the flow is not offered
    assert "credit" not in parsed.dag_ids  # nor a credit lookup


def test_no_shop_bound_no_shop_orders_dag(bag) -> None:
    parsed = bag("sap-ecc")                              # the ECC deployment binds no shop
    assert parsed.import_errors == {} and "shop_orders" not in parsed.dag_ids


def test_a_bad_bindings_line_fails_the_dag_imports_with_file_and_line(bag, tmp_path: Path) -> None:
    broken = tmp_path / "bindings.yaml"
    broken.write_text("crm:\n  system: xiaoshouyi\n  connections: {api: crm_xiaoshouyi}\n"
                      "erp:\n  system: sapp\n  connections: {api: sap}\n", encoding="utf-8")
    parsed = bag(str(broken))
    failed = {Path(f).stem: why for f, why in parsed.import_errors.items()}
    assert set(failed) == FLOWS | {"receipts", "shop_orders", "stock", "approvals", "credit"}  # the watchdog names no seat: it still parses
    assert all(f"{broken}:5: erp: unknown system 'sapp'" in why for why in failed.values()), failed
    assert not FLOWS & set(parsed.dag_ids)


def test_the_receipts_flow_refuses_an_erp_without_receipts_naming_the_bindings(monkeypatch) -> None:
    from flows import receipts
    from hub.errors import ConfigurationError

    monkeypatch.setenv(bindings.ENV, "sap")
    roles.reset()
    try:
        with pytest.raises(ConfigurationError, match=r"bindings\.sap\.yaml:\d+: receipts need an ERP seat that "
                                                     r"supports them; SAP S/4HANA .*finance issue"):
            receipts.extract(None)  # fails before it touches the run's context
    finally:
        roles.reset()


@pytest.mark.parametrize("system", [s for s, card in SYSTEMS.items() if "erp" in card.roles])
def test_an_erp_card_says_what_its_adapter_supports(system: str) -> None:
    """DAG files read the card (cheap); the flows ask the adapter: the two must agree."""
    card = SYSTEMS[system]
    module, _, cls = card.adapter.partition(":")
    adapter = getattr(importlib.import_module(module), cls)(Binding(role="erp", name=system, system=system,
                                                                    label=card.label))
    asked = ("customers", "products", "sales_orders", "shipments", "receipts")
    assert tuple(c for c in asked if adapter.supports(c)) == tuple(c for c in asked if c in card.capabilities)
