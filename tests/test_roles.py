"""Flows name roles, never systems (issue 11): no flow module imports a connector or spells a
system's name in its code; bindings files are validated with the file and line in the error."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from connectors import SYSTEMS
from hub import bindings
from hub.errors import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent
FLOW_MODULES = sorted(p for p in (ROOT / "flows").glob("*.py"))
#: Every system name a flow might spell: the systems the hub speaks and those on its roadmap.
LATIN = {"u8", "xiaoshouyi", "sap", "s4", "s4hana", "ecc", "kingdee", "k3cloud", "tianyancha", "qichacha",
         "dingtalk", "wecom", "weaver", "ecology", "taobao", "tmall", "jd", "jos", "youzan", "pdd", "pinduoduo",
         "doudian", "bapi", "odata", "openapi", "odbc", "xoql"}
CJK = re.compile("用友|销售易|金蝶|天眼查|企查查|钉钉|企业微信|泛微|天猫|淘宝|京东|有赞|抖店|拼多多")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def system_names(path: Path) -> list[str]:
    """Where ``path`` spells a system in code (identifiers, imports, string literals; not
    docstrings or comments): ``line: text``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    found = []

    def latin(text: str) -> set[str]:
        return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if w in LATIN}

    for node in ast.walk(tree):
        words: set[str] = set()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = getattr(node, "module", None) or ""
            names = [a.name for a in node.names]
            if (mod.startswith("connectors") or any(n.startswith("connectors") for n in names)) \
                    and path.name != "roles.py":  # the one door: seats are built from connectors.SYSTEMS
                found.append(f"{node.lineno}: imports {mod or names}")
            words = latin(" ".join([mod, *names]))
        elif isinstance(node, ast.Name):
            words = latin(node.id)
        elif isinstance(node, ast.Attribute):
            words = latin(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.arg)):
            words = latin(getattr(node, "name", None) or getattr(node, "arg", ""))
        elif isinstance(node, ast.keyword) and node.arg:
            words = latin(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            words = latin(node.value)
            if CJK.search(node.value):
                words.add(CJK.search(node.value).group())
        if words:
            found.append(f"{getattr(node, 'lineno', '?')}: {sorted(words)}")
    return found


@pytest.mark.parametrize("path", FLOW_MODULES, ids=lambda p: p.name)
def test_flow_module_names_no_system(path: Path) -> None:
    assert system_names(path) == []


def test_the_scan_sees_a_system_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('"""U8 may be named here."""\nfrom connectors.u8 import U8Connector\nx = {"u8": 1}\n'
                   'def push_to_sap(): return "created in 金蝶"\n', encoding="utf-8")
    hits = system_names(bad)
    assert len(hits) >= 4 and not any(h.startswith("1:") for h in hits)


@pytest.mark.parametrize("name", ["", "sap", "sap-ecc"])
def test_shipped_bindings_are_valid(monkeypatch, name: str) -> None:
    monkeypatch.setenv(bindings.ENV, name)
    seats = bindings.load(SYSTEMS)
    assert [b.system for b in seats["crm"]] == ["xiaoshouyi"]
    assert seats["erp"][0].system == {"": "u8", "sap": "sap_s4", "sap-ecc": "sap_ecc"}[name]


@pytest.mark.parametrize("text, says", [
    ("crm:\n  system: xiaoshouyi\n  connections: {api: c}\nerp:\n  system: sapp\n", ":5: erp: unknown system 'sapp'"),
    ("crm:\n  system: xiaoshouyi\n  connections: {api: c}\nerp:\n  system: u8\n  connections: {openapi: x}\n",
     ":5: erp u8 needs connection(s) ['odbc']"),
    ("crm:\n  system: u8\n  connections: {odbc: c}\n", ":2: u8 (U8) cannot play 'crm'"),
    ("crm:\n  system: xiaoshouyi\n  connections: {api: c}\nwarehouse:\n  system: u8\n", "unknown role 'warehouse'"),
    ("crm:\n  system: xiaoshouyi\n  connections: {api: c}\nerp:\n  system: u8\n  conections: {odbc: x}\n",
     ":5: erp: unknown key(s) ['conections']"),
    ("crm:\n  system: xiaoshouyi\n  name: crm\n  connections: {api: c}\nerp:\n"
     "  - {system: u8, name: crm, connections: {odbc: d}}\n", "binding name 'crm' is already used"),
    ("crm: [\n", "not valid YAML"),
])
def test_a_bad_bindings_line_is_named(tmp_path: Path, text: str, says: str) -> None:
    file = tmp_path / "bindings.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as err:
        bindings.load(SYSTEMS, file)
    assert says in str(err.value) and str(file) in str(err.value)


def test_an_unknown_bindings_name_lists_the_shipped_ones(monkeypatch) -> None:
    monkeypatch.setenv(bindings.ENV, "kingdee-typo")
    with pytest.raises(ConfigurationError, match="bindings.sap.yaml"):
        bindings.load(SYSTEMS)
