"""Sandbox data: USCC arithmetic, seed determinism and shares, U8 layout and rowversion, XOQL parser.

No servers here; see test_sandbox_servers.py for the wire tests.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sandbox import seed as seed_mod
from sandbox import u8_schema, xoql
from sandbox.uscc import is_valid_uscc, org_check_char, uscc_check_char


# -- USCC --------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["91350100M000100Y43", "91440300708461136T"])
def test_uscc_check_char_of_published_codes(code: str) -> None:
    # The GB 32100-2015 example code and a real company's code (Huawei, public record).
    assert uscc_check_char(code[:17]) == code[17]
    assert org_check_char(code[8:16]) == code[16]
    assert is_valid_uscc(code)


def test_uscc_rejects_broken_codes() -> None:
    assert not is_valid_uscc("91350100M000100Y44")   # wrong check character
    assert not is_valid_uscc("91350100M000100Y4")    # too short
    assert not is_valid_uscc("91350100m000100y43")   # lowercase
    # Eighteen zeros pass the bare check-character test; the authority code '0' does not exist.
    assert uscc_check_char("0" * 17) == "0"
    assert not is_valid_uscc("0" * 18)


# -- seed ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("seed_a")
    seed_mod.seed(directory, 7, 1000)
    return directory


def _dump(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_same_seed_gives_same_files(seeded: Path, tmp_path: Path) -> None:
    seed_mod.seed(tmp_path, 7, 1000)
    for name in ("truth.json", "truth.csv", "credentials.json"):
        assert (seeded / name).read_bytes() == (tmp_path / name).read_bytes(), name
    for name in ("crm.db", "u8.db"):
        assert _dump(seeded / name) == _dump(tmp_path / name), name


def test_other_seed_gives_other_data(seeded: Path, tmp_path: Path) -> None:
    seed_mod.seed(tmp_path, 8, 1000)
    assert (seeded / "truth.csv").read_bytes() != (tmp_path / "truth.csv").read_bytes()
    assert (seeded / "credentials.json").read_bytes() != (tmp_path / "credentials.json").read_bytes()


def test_valid_seeded_usccs_have_correct_check_chars(seeded: Path) -> None:
    truth = json.loads((seeded / "truth.json").read_text(encoding="utf-8"))
    fault = {t["crm_id"]: t["fault"] for t in truth["crm"]}
    conn = sqlite3.connect(seeded / "crm.db")
    rows = conn.execute("SELECT id, uscc__c FROM account").fetchall()
    clean = [u for i, u in rows if fault[str(i)] == "clean"]
    assert len(clean) > 500 and all(is_valid_uscc(u) for u in clean)
    broken = [u for i, u in rows if fault[str(i)].startswith("uscc_") and fault[str(i)] != "uscc_missing"]
    assert broken and not any(is_valid_uscc(u) for u in broken)
    u8 = sqlite3.connect(seeded / "u8.db")
    codes = {t["u8_code"]: t["fault"] for t in truth["u8"]}
    regs = [r for c, r in u8.execute("SELECT cCusCode, cCusRegCode FROM Customer") if codes[c] == "clean"]
    assert regs and all(is_valid_uscc(r) for r in regs)


def test_shares_and_links_match_the_readme(seeded: Path) -> None:
    meta = json.loads((seeded / "truth.json").read_text(encoding="utf-8"))["meta"]
    counts = meta["crm_fault_counts"]
    for name, share in seed_mod.CRM_SHARES.items():
        assert counts.get(name, 0) == round(1000 * share), name
    assert meta["crm_accounts_with_u8_counterpart"] == round(1000 * seed_mod.LINKED_SHARE)
    assert meta["u8_only_customers"] >= round(1000 * seed_mod.U8_ONLY_SHARE)


def test_linked_accounts_share_uscc_with_their_u8_customer(seeded: Path) -> None:
    truth = json.loads((seeded / "truth.json").read_text(encoding="utf-8"))
    crm = dict(sqlite3.connect(seeded / "crm.db").execute("SELECT id, uscc__c FROM account").fetchall())
    u8 = dict(sqlite3.connect(seeded / "u8.db").execute("SELECT cCusCode, cCusRegCode FROM Customer").fetchall())
    u8_fault = {t["u8_code"]: t["fault"] for t in truth["u8"]}
    pairs = [(crm[int(t["crm_id"])], u8[t["u8_codes"][0]]) for t in truth["crm"]
             if t["u8_codes"] and t["fault"] == "clean" and u8_fault[t["u8_codes"][0]] == "clean"]
    assert len(pairs) > 100 and all(a == b for a, b in pairs)


def test_seeded_wrong_types_are_stored_as_such(seeded: Path) -> None:
    truth = json.loads((seeded / "truth.json").read_text(encoding="utf-8"))
    wrong = {t["crm_id"]: t["detail"] for t in truth["crm"] if t["fault"] == "wrong_type"}
    conn = sqlite3.connect(seeded / "crm.db")
    sqlite_type = {"number": "integer", "string": "text"}
    for crm_id, detail in wrong.items():
        field, json_type = detail.split(":")
        got = conn.execute(f'SELECT typeof("{field}") FROM account WHERE id = ?', (int(crm_id),)).fetchone()[0]
        assert got == sqlite_type[json_type], (crm_id, detail)
    assert len(wrong) == 10


def test_seed_scales(tmp_path: Path) -> None:
    import time
    started = time.monotonic()
    ds = seed_mod.generate(3, 5000)
    assert len(ds.accounts) == 5000 and time.monotonic() - started < 5


# -- U8 layout -------------------------------------------------------------------------------------

def test_u8_tables_have_every_schema_column(seeded: Path) -> None:
    conn = sqlite3.connect(seeded / "u8.db")
    for table in u8_schema.TABLES:
        have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
        assert have == set(u8_schema.columns(table)), table


def test_rowversion_strictly_increases_and_never_recurses(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "u8.db")
    u8_schema.create_all(conn)
    conn.execute("PRAGMA recursive_triggers = ON")  # worst case: the guard must still stop it
    conn.execute("INSERT INTO Customer (cCusCode, cCusName, cCusAbbName) VALUES ('A1', 'x', 'x')")
    conn.execute("INSERT INTO Customer (cCusCode, cCusName, cCusAbbName) VALUES ('A2', 'y', 'y')")
    seen = [conn.execute("SELECT pubufts FROM Customer WHERE cCusCode='A2'").fetchone()[0]]
    for i in range(3):
        conn.execute("UPDATE Customer SET cCusPhone = ? WHERE cCusCode = 'A1'", (str(i),))
        seen.append(conn.execute("SELECT pubufts FROM Customer WHERE cCusCode='A1'").fetchone()[0])
    conn.execute("INSERT INTO SO_SOMain (cSTCode, cDepCode, cexch_name, cSOCode) VALUES ('1', '1', '人民币', 'S')")
    seen.append(conn.execute("SELECT ufts FROM SO_SOMain").fetchone()[0])
    assert seen == sorted(set(seen)) and seen[0] > 2**32
    assert conn.execute("SELECT dModifyDate FROM Customer WHERE cCusCode='A1'").fetchone()[0]


# -- XOQL parser ------------------------------------------------------------------------------------

def test_xoql_parses_the_documented_subset() -> None:
    q = xoql.parse("SELECT id, accountName from account where updatedAt >= 1700000000000 and "
                   "accountName = 'O''Brien' and id in (1, '2') and erpCode__c is not null "
                   "order by id desc limit 200,100")
    assert q.fields == ["id", "accountName"] and q.api_key == "account"
    assert [(c.field, c.op, c.values) for c in q.conditions] == [
        ("updatedAt", ">=", [1700000000000]), ("accountName", "=", ["O'Brien"]),
        ("id", "in", [1, "2"]), ("erpCode__c", "notnull", [])]
    assert q.order == [("id", True)] and q.limit == (200, 100)


@pytest.mark.parametrize("text", [
    "select * from account", "select id from account where a = 1 or b = 2",
    "select id from account where accountName like '华%'", "select id from account limit 10",
    "select id from account where (id = 1)", "select id from account where name = 'open",
    "select count(id) from account", "select id account", "", "select id from account;",
    "select id from account order by updatedAt", "select id from account order by id, updatedAt",
])
def test_xoql_rejects_everything_else(text: str) -> None:
    with pytest.raises(xoql.XoqlError):
        xoql.parse(text)
