"""Hostile inputs (issue 9): bank statement lines and files, CRM and U8 records, and every
command line — over-long, wrong types, control characters, mixed encodings, SQL- and
formula-looking text, impossible dates, negative and three-decimal amounts.

For each: no traceback, nothing lost without a word. A refused input exits non-zero with one
line naming the problem; an accepted bad record is accounted for (quarantined with a reason,
skipped with a reason, or in the output), so what came in = what went out + what was held.

One seeded sandbox for the module (small): the hostile CRM accounts and U8 customers are
edited through the CRM's API and the U8 database, the hostile bank files dropped into the
bank inbox, then customer_master and receipts run once each, in-process. The commands run
through their real entry points: ``main(argv)`` in-process, and once each as ``python -m``.
"""
from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from flows import receipts as receipts_flow
from hub import model, runner, store
from tests.conftest import isolate_hub, start_sandbox
from tests.flowkit import CrmClient, crm_accounts, run_flow, step

ROOT = Path(__file__).resolve().parent.parent
OUR_ACCOUNT = "31050161373600001234"   # the seeded 建设银行 account
CCB_HEADER = ["账号", "账户名称", "交易时间", "借方发生额（支取）", "贷方发生额（收入）", "余额", "币种", "对方户名", "对方账号",
              "对方开户机构", "记账日期", "摘要", "备注", "账户明细编号-交易流水号"]
FORMULA_PAYER = "=cmd|' /C calc'!A0"


# --- the hostile inputs --------------------------------------------------------------------------

def _line(serial: str, *, date: str = "20250603 10:00:00", credit: str = "1000.00", debit: str = "",
          payer: str = "某某贸易有限公司", account: str = "6222000011112222", memo: str = "货款",
          currency: str = "人民币") -> list[str]:
    return [OUR_ACCOUNT, "上海数联集成科技有限公司", date, debit, credit, "1,000,000.00", currency, payer, account,
            "中国建设银行上海分行", date[:8], "转账", memo, serial]


#: case → (line fields, expected outcome, words the reason must hold)
BANK_LINES: dict[str, tuple[dict, str, str]] = {
    # control characters: quarantined with the reason, never a space, never a broken workbook
    "nul_in_payer": (dict(payer="测试\x00公司六"), "quarantined", "control character"),
    "bel_in_memo": (dict(memo="货款\x07"), "quarantined", "control character"),
    "escape_in_payer": (dict(payer="\x1b[31m红色贸易有限公司"), "quarantined", "control character"),
    "backspace_in_payer": (dict(payer="贸易\x08有限公司"), "quarantined", "control character"),
    # over-long
    "payer_300_chars": (dict(payer="长" * 300), "quarantined", "longer than 200"),
    "memo_600_chars": (dict(memo="备" * 600), "quarantined", "longer than 500"),
    "account_80_digits": (dict(account="6" * 80), "quarantined", "longer than 60"),
    "serial_150_chars": ({}, "quarantined", "longer than 100"),
    # money that is not money to the fen
    "three_decimals": (dict(credit="1000.005"), "quarantined", "more than two decimals"),
    "amount_in_words": (dict(credit="一千元整"), "quarantined", "is not an amount"),
    "amount_exponent": (dict(credit="1e5"), "quarantined", "is not an amount"),
    "amount_nan": (dict(credit="NaN"), "quarantined", "is not an amount"),
    "amount_infinity": (dict(credit="Infinity"), "quarantined", "is not an amount"),
    "amount_sql": (dict(credit="1000; DROP TABLE receipt"), "quarantined", "is not an amount"),
    "amount_formula": (dict(credit="=1000+1"), "quarantined", "is not an amount"),
    "negative_credit": (dict(credit="-500.00"), "quarantined", "positive amount"),
    "accounting_negative": (dict(credit="(1,000.00)"), "quarantined", "positive amount"),
    "absurd_amount": (dict(credit="99999999999999.99"), "quarantined", "positive amount below"),
    # dates
    "impossible_date": (dict(date="20260230 10:00:00"), "quarantined", "not a date"),
    "not_a_date": (dict(date="not-a-date"), "quarantined", "not a date"),
    "month_13": (dict(date="2025-13-01"), "quarantined", "not a date"),
    "blank_date_with_money": (dict(date=""), "quarantined", "no value date"),
    "last_century": (dict(date="19991231 10:00:00"), "quarantined", "after 2000"),
    # wrong currency: never posted as yuan
    "us_dollars": (dict(currency="USD"), "quarantined", "only 人民币"),
    # text that looks like code is text: taken exactly as it is
    "formula_payer": (dict(payer=FORMULA_PAYER), "taken", ""),
    "plus_payer": (dict(payer="+1+1贸易有限公司"), "taken", ""),
    "at_payer": (dict(payer="@SUM(A1:A9)"), "taken", ""),
    "minus_memo": (dict(memo="-1+1"), "taken", ""),
    "sql_payer": (dict(payer="x'); DROP TABLE receipt;--"), "taken", ""),
    "sql_memo": (dict(memo="'; DELETE FROM receipt WHERE 1=1; --"), "taken", ""),
    "sql_serial": ({}, "taken", ""),
    "html_payer": (dict(payer="<script>alert(1)</script>"), "taken", ""),
    "json_memo": (dict(memo='{"amount": [1, 2], "__proto__": null}'), "taken", ""),
    "emoji_payer": (dict(payer="😀科技有限公司"), "taken", ""),
    "zero_width_payer": (dict(payer="华\u200b测检测技术有限公司"), "taken", ""),
    "null_word_payer": (dict(payer="null"), "taken", ""),
    "blank_payer": (dict(payer=""), "taken", ""),
    "tab_in_payer": (dict(payer="上海\t华测检测"), "taken", ""),
    "fullwidth_amount": (dict(credit="１，０００．００"), "taken", ""),
    "currency_signs": (dict(credit="¥1,000.00元"), "taken", ""),
    # not receipts, said so
    "debit_line": (dict(credit="", debit="500.00"), "skipped", "not a receipt"),
    "zero_line": (dict(credit="0.00"), "skipped", "not a receipt"),
}
SERIALS = {"serial_150_chars": "S" * 150, "sql_serial": "1' OR '1'='1"}


def _serial(case: str) -> str:
    return SERIALS.get(case, f"HX-{case}")


def _bank_file() -> bytes:
    rows = [CCB_HEADER] + [_line(_serial(case), **fields) for case, (fields, _, _) in BANK_LINES.items()]
    # the same serial twice with another amount and date: a conflict; the same line twice: an overlap
    rows += [_line("HX-conflict", credit="1000.00"), _line("HX-conflict", credit="2000.00", date="20250604 09:00:00"),
             _line("HX-overlap"), _line("HX-overlap")]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def _header_only() -> bytes:
    return ("\ufeff" + ",".join(CCB_HEADER) + "\n").encode("utf-8")


def _mixed_encoding() -> bytes:
    first = ",".join(_line("HX-mixed-1", payer="上海华测检测技术有限公司")) + "\n"
    second = ",".join(_line("HX-mixed-2", payer="北京元亨科技有限公司")) + "\n"
    return (",".join(CCB_HEADER) + "\n").encode("utf-8") + first.encode("utf-8") + second.encode("gbk")


#: file name → (content or a symlink target, expected file outcome, words of the reason)
BANK_FILES: dict[str, tuple[object, str, str]] = {
    "建设银行_混合编码.csv": (_mixed_encoding(), "quarantined", "mixes UTF-8 and GBK"),
    "建设银行_unicode.csv": ("\ufeff中文".encode("utf-16"), "quarantined", "UTF-16"),
    "empty.csv": (b"", "quarantined", "no known bank layout"),
    "not_a_statement.csv": (b"hello,world\n1,2\n", "quarantined", "no known bank layout"),
    "broken.xlsx": (b"PK\x03\x04 this is not a zip archive", "quarantined", "zip"),
    "huge_cell.csv": ((",".join(CCB_HEADER) + "\n" + "x" * 200_000 + "\n").encode(), "quarantined", "field larger"),
    "header_only.csv": (_header_only(), "loaded", "0 lines"),
    "link_out.csv": ("outside", "quarantined", "outside the drop folder"),
    "dangling.csv": ("nowhere", "quarantined", "nothing readable"),
}


# --- the world: one sandbox, hostile records in it, each flow run once ---------------------------

HOSTILE_ACCOUNTS = {  # CRM field edits through the 销售易 API → (expected, words of the reason)
    "nul_name": ({"accountName": "测试\x00公司六"}, "quarantined", "control character"),
    "bell_name": ({"accountName": "\x07铃声贸易有限公司"}, "quarantined", "control character"),
    "nul_address": ({"address": "上海市\x00浦东新区"}, "quarantined", "control character"),
    "sql_name": ({"accountName": "x'); DROP TABLE account;--"}, "quarantined", "非法字符"),
    "over_long_name": ({"accountName": "长" * 600}, "quarantined", "2–98"),
    "digits_name": ({"accountName": "1234567890"}, "quarantined", "digits-only"),
    "formula_name": ({"accountName": "=HYPERLINK(\"http://x\",\"点我\")有限公司"}, "accounted", ""),
    "formula_address": ({"address": "@SUM(1+1)*cmd|' /C calc'!A0"}, "accounted", ""),
}
HOSTILE_U8 = {  # U8 customer names edited in the ERP database → (expected, words)
    "u8_bell_name": ("某某\x07贸易有限公司", "quarantined", "control character"),  # (the SQLite ODBC driver cuts at a NUL)
    "u8_escape_in_name": ("某某贸易有限公司\x1b", "quarantined", "control character"),
    "u8_sql_name": ("a'; DROP TABLE Customer; --", "quarantined", "非法字符"),
}


def _drop_bank_files(inbox: Path, outside: Path) -> None:
    (inbox / "建设银行_hostile_lines.csv").write_bytes(_bank_file())
    (outside / "secret.csv").write_bytes(_bank_file().replace(b"HX-", b"XX-"))
    for name, (content, _, _) in BANK_FILES.items():
        if content == "outside":
            (inbox / name).symlink_to(outside / "secret.csv")
        elif content == "nowhere":
            (inbox / name).symlink_to(inbox / "gone.csv")
        else:
            (inbox / name).write_bytes(content)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    mp = pytest.MonkeyPatch()
    isolate_hub(tmp, mp)
    sb = start_sandbox(tmp / "sandbox", 40, mp)
    try:
        crm = CrmClient(sb)
        accounts = sorted(crm_accounts(sb), key=int)
        crm_ids = dict(zip(HOSTILE_ACCOUNTS, accounts))
        for case, (fields, _, _) in HOSTILE_ACCOUNTS.items():
            crm.patch("account", crm_ids[case], fields)
        with sqlite3.connect(sb.u8_db) as u8:
            codes = [r[0] for r in u8.execute("select cCusCode from Customer order by cCusCode")]
            u8_codes = dict(zip(HOSTILE_U8, codes))
            for case, (name, _, _) in HOSTILE_U8.items():
                u8.execute("update Customer set cCusName = ? where cCusCode = ?", (name, u8_codes[case]))
        outside = tmp / "elsewhere"
        outside.mkdir()
        _drop_bank_files(sb.folder / "bank_inbox", outside)
        customers = run_flow("customer_master", "hx-customers")
        (tmp / "var" / "reports").mkdir(parents=True, exist_ok=True)
        (tmp / "var" / "reports").rmdir()
        (tmp / "var" / "reports").write_text("a file where the reports folder should be")   # the disk says no
        receipts = run_flow("receipts", "hx-receipts")
        with store.engine().begin() as conn:
            q = model.quarantine.c
            held = [dict(r._mapping) for r in conn.execute(select(q.flow, q.system, q.stage, q.record_key, q.reasons,
                                                                   q.status, q.payload))]
            outcomes = store.stage_read(conn, "hx-receipts", "outcome")
            customer_outcomes = store.stage_read(conn, "hx-customers", "outcome")
        yield SimpleNamespace(sb=sb, tmp=tmp, crm_ids=crm_ids, u8_codes=u8_codes, customers=customers,
                              receipts=receipts, held=held, outcomes=outcomes, customer_outcomes=customer_outcomes)
    finally:
        sb.stop()
        mp.undo()
        store.engine_for.cache_clear()


def _held(world, system: str, key: str) -> list[str]:
    return [reason for q in world.held if q["system"] == system and q["record_key"] == key for reason in q["reasons"]]


# --- bank statement lines ------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(BANK_LINES))
def test_a_hostile_bank_line_is_accounted_with_its_reason(world, case):
    _, expected, words = BANK_LINES[case]
    key = f"ccb:{OUR_ACCOUNT}:{_serial(case)}"
    mine = world.outcomes[(world.outcomes["system"] == "bank") & (world.outcomes["key"] == key)]
    assert len(mine) == 1, f"{case}: line not accounted for"
    outcome, detail = mine.iloc[0]["outcome"], str(mine.iloc[0]["detail"])
    if expected == "quarantined":
        assert outcome == "quarantined" and words in detail, (outcome, detail)
    elif expected == "skipped":
        assert outcome == "skipped" and words in detail, (outcome, detail)
    else:  # taken: stored, matched or waiting for finance with a reason — never quarantined or dropped
        assert outcome.startswith(("posted", "waiting for finance")), (outcome, detail)


def test_taken_lines_keep_their_text_exactly(world):
    from hub import receipts_model as rm

    with store.engine().begin() as conn:
        r = rm.receipt.c
        stored = dict(conn.execute(select(r.receipt_no, r.payer_name).where(r.receipt_no.like("HX-%"))).all())
        memo = dict(conn.execute(select(r.receipt_no, r.memo).where(r.receipt_no.like("HX-%"))).all())
        sql = conn.execute(select(r.payer_name).where(r.receipt_no == SERIALS["sql_serial"])).scalar()
    assert stored["HX-formula_payer"] == FORMULA_PAYER
    assert stored["HX-sql_payer"] == "x'); DROP TABLE receipt;--"
    assert stored["HX-html_payer"] == "<script>alert(1)</script>"
    assert memo["HX-sql_memo"] == "转账 '; DELETE FROM receipt WHERE 1=1; --"    # 摘要 and 备注 joined
    assert stored["HX-tab_in_payer"] == "上海 华测检测"          # a tab is whitespace
    assert sql == "某某贸易有限公司"
    assert not any("\x00" in (v or "") or "\x07" in (v or "") for v in stored.values())


@pytest.mark.parametrize("serial,expected,words", [
    ("HX-conflict", "quarantined", "names different transactions"),
    ("HX-overlap", "skipped", "twice"),
])
def test_the_same_serial_twice_is_a_conflict_unless_it_is_the_same_line(world, serial, expected, words):
    key = f"ccb:{OUR_ACCOUNT}:{serial}"
    mine = world.outcomes[(world.outcomes["system"] == "bank") & (world.outcomes["key"] == key)]
    assert len(mine) == 2                                          # both lines accounted for
    if expected == "quarantined":
        assert set(mine["outcome"]) == {"quarantined"} and words in mine.iloc[0]["detail"]
        entry = next(q for q in world.held if q["record_key"] == key)
        assert [v["amount"] for v in entry["payload"]["versions"]] == ["1000.00", "2000.00"]   # both versions kept
    else:
        pairs = list(zip(mine["outcome"], mine["detail"].astype(str)))
        assert any(o == "skipped" and words in d for o, d in pairs), pairs                 # the second copy
        assert any(o.startswith(("posted", "waiting for finance")) for o, _ in pairs), pairs  # the line itself


@pytest.mark.parametrize("name", list(BANK_FILES))
def test_a_hostile_bank_file_is_accounted_with_its_reason(world, name):
    _, expected, words = BANK_FILES[name]
    files = world.outcomes[world.outcomes["system"] == "bank_file"].set_index("key")
    assert name in files.index, f"{name}: not accounted for"
    assert files.at[name, "outcome"] == expected and words in str(files.at[name, "detail"]), files.loc[name].to_dict()


def test_a_symbolic_link_out_of_the_drop_folder_is_not_followed(world):
    assert not any(str(k).startswith(f"ccb:{OUR_ACCOUNT}:XX-") for k in world.outcomes["key"])
    assert (world.tmp / "elsewhere" / "secret.csv").exists()                 # neither read nor moved


def test_every_system_adds_up_and_the_postings_count_although_the_workbook_failed(world):
    for rep in (world.customers, world.receipts):
        for system, tally in rep["systems"].items():
            assert tally["adds_up"], (rep["flow"], system, tally)
    write_back = step(world.receipts, "write_back")
    assert write_back["status"] == "success" and write_back["written"] > 0     # the postings are counted
    entry = [q for q in world.held if q["system"] == "finance"]
    assert len(entry) == 1 and entry[0]["status"] == "open" and "was not written" in entry[0]["reasons"][0]


def test_the_workbook_shows_hostile_text_as_text(world):
    reports = world.tmp / "var" / "reports"
    reports.unlink()                                                          # the disk is fixed
    runner.run_step("receipts", "write_back", "hx-receipts", receipts_flow.STEP_FUNCTIONS["write_back"])
    book = load_workbook(reports / "receipts__hx-receipts.xlsx")
    cells = [c for row in book["待处理 exceptions"].iter_rows(min_row=2) for c in row]
    payer = next(c for c in cells if c.value == FORMULA_PAYER)
    assert payer.data_type == "s" and payer.quotePrefix                       # text, never a formula
    assert not [c for ws in book.worksheets for row in ws.iter_rows() for c in row if c.data_type == "f"]
    with store.engine().begin() as conn:
        q = model.quarantine.c
        status = conn.execute(select(q.status).where(q.system == "finance")).scalars().all()
    assert status == ["resolved"]                                             # written by the next attempt


@pytest.mark.parametrize("value,expected", [
    (FORMULA_PAYER, "'" + FORMULA_PAYER), ("+86 138 0013 8000", "'+86 138 0013 8000"), ("-1+1", "'-1+1"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("-1000.00", "-1000.00"), (-1000, -1000),
    ("测试\x00公司六", "测试\\x00公司六"), ("上海华测", "上海华测"), (None, ""),
])
def test_csv_cells_are_neutralised_by_the_one_rule(value, expected):
    from hub.cells import csv_value

    assert csv_value(value) == expected


def test_a_workbook_row_with_a_nul_and_a_formula_is_written(tmp_path):
    """The NUL line of the issue: before, openpyxl refused the whole workbook."""
    from datetime import date

    from quality.reconcile import workbook

    exceptions = pd.DataFrame([dict(receipt_no="B1", value_date="2025-06-03", payer_name="测试\x00公司六", payer_account=None,
                                    open_fen=100000, amount_fen=100000, memo=FORMULA_PAYER, customer_code=None,
                                    reason_code="unknown_payer", reason="-", proposal="[]", candidates="[]",
                                    receipt_hub_id="h1")])
    path = workbook.write(tmp_path / "w.xlsx", figures={"=1+1": 1}, allocations=pd.DataFrame(), receipts=pd.DataFrame(),
                          items=pd.DataFrame(), exceptions=exceptions, plans=pd.DataFrame(), as_of=date(2025, 6, 30))
    ws = load_workbook(path)["待处理 exceptions"]
    row = [c for c in ws[2]]
    assert row[2].value == "测试\\x00公司六" and row[5].value == FORMULA_PAYER and row[5].data_type == "s"
    assert load_workbook(path)["汇总 summary"]["A3"].data_type == "s"


# --- CRM and U8 records --------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(HOSTILE_ACCOUNTS))
def test_a_hostile_crm_account_is_accounted_with_its_reason(world, case):
    _, expected, words = HOSTILE_ACCOUNTS[case]
    key = world.crm_ids[case]
    mine = world.customer_outcomes[(world.customer_outcomes["system"] == "crm")
                                   & (world.customer_outcomes["key"].astype(str) == key)]
    assert len(mine) == 1, f"{case}: not accounted for"
    outcome = mine.iloc[0]["outcome"]
    if expected == "quarantined":
        assert outcome.startswith(("quarantined", "held back")) and any(words in r for r in _held(world, "crm", key)), \
            (outcome, _held(world, "crm", key))
    else:
        assert outcome and not outcome.startswith("quarantined"), outcome


@pytest.mark.parametrize("case", list(HOSTILE_U8))
def test_a_hostile_u8_customer_is_accounted_with_its_reason(world, case):
    _, _, words = HOSTILE_U8[case]
    code = world.u8_codes[case]
    mine = world.customer_outcomes[(world.customer_outcomes["system"] == "u8") & (world.customer_outcomes["key"] == code)]
    assert len(mine) == 1 and mine.iloc[0]["outcome"].startswith("quarantined"), mine.to_dict("records")
    assert any(words in r for r in _held(world, "u8", code)), _held(world, "u8", code)


def test_no_control_character_reaches_a_target(world):
    with sqlite3.connect(world.sb.u8_db) as u8:
        u8_text = [v for row in u8.execute("select cCusName, cCusAddress from Customer where cCusCode like 'H%'")
                   for v in row]                                   # the customers the hub created
    with sqlite3.connect(world.sb.crm_db) as crm:
        crm_text = [r[0] for r in crm.execute("select payerName__c from paymentApplication")]
    assert u8_text and crm_text
    assert not [v for v in u8_text + crm_text if isinstance(v, str) and any(ord(ch) < 32 and ch not in "\t\r\n" for ch in v)]


# --- the command lines ---------------------------------------------------------------------------

def _cli(main, argv: list[str], capsys) -> tuple[int, str, str]:
    """Run a command's real entry point in-process: an uncaught exception fails the test."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def _write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


RECEIPTS_HEADER = "receipt_id,date,amount,payer_name,payer_account,memo,customer\n"
ITEMS = "item_id,kind,customer,customer_name,doc_date,amount\nI1,invoice,C1,甲有限公司,2025-05-01,1000.00\n" \
        "I2,invoice,C2,乙有限公司,2025-05-02,500.00\n"

#: case → (receipts.csv content, items.csv content, extra argv, words of the one-line refusal)
MATCH_REFUSED: dict[str, tuple[object, object, list[str], str]] = {
    "receipts_missing": (None, ITEMS, [], "no such file"),
    "items_missing": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n", None, [], "no such file"),
    "receipts_is_a_folder": ("folder", ITEMS, [], "is a folder"),
    "output_folder_missing": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n", ITEMS, ["-o", "nowhere/out.csv"],
                              "does not exist"),
    "empty_receipts": ("", ITEMS, [], "empty"),
    "header_only_receipts": (RECEIPTS_HEADER, ITEMS, [], "no receipts"),
    "no_amount_column": ("receipt_id,date\nR1,2025-06-03\n", ITEMS, [], "missing column(s) amount"),
    "no_customer_column_in_items": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n", "item_id,amount\nI1,1.00\n", [],
                                    "missing column(s) customer"),
    "duplicate_receipt_id": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\nR1,2025-06-04,2.00,,,,\n", ITEMS, [],
                             "appears on rows 2, 3"),
    "duplicate_item_id": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n", ITEMS + "I1,invoice,C1,,2025-05-03,9.00\n", [],
                          "item_id 'I1' appears on rows 2, 4"),
    "blank_receipt_id": (RECEIPTS_HEADER + ",2025-06-03,1.00,,,,\n", ITEMS, [], "receipt_id: blank"),
    "blank_amount": (RECEIPTS_HEADER + "R1,2025-06-03,,,,,\n", ITEMS, [], "amount: blank"),
    "amount_in_words": (RECEIPTS_HEADER + "R1,2025-06-03,一千元,,,,\n", ITEMS, [], "is not an amount"),
    "three_decimals": (RECEIPTS_HEADER + "R1,2025-06-03,1000.005,,,,\n", ITEMS, [], "more than two decimals"),
    "amount_exponent": (RECEIPTS_HEADER + "R1,2025-06-03,1e3,,,,\n", ITEMS, [], "is not an amount"),
    "item_three_decimals": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n", ITEMS + "I3,invoice,C1,,2025-05-03,1.001\n",
                            [], "more than two decimals"),
    "impossible_date": (RECEIPTS_HEADER + "R1,2026-02-30,1.00,,,,\n", ITEMS, [], "day is out of range"),
    "not_a_date": (RECEIPTS_HEADER + "R1,not-a-date,1.00,,,,\n", ITEMS, [], "is not a date"),
    "blank_date": (RECEIPTS_HEADER + "R1,,1.00,,,,\n", ITEMS, [], "date: blank"),
    "impossible_item_date": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n", ITEMS + "I3,invoice,C1,,2025-02-29,1.00\n",
                             [], "row 4, doc_date"),
    "mixed_encodings": ((RECEIPTS_HEADER + "R1,2025-06-03,1.00,上海华测检测,,,\n").encode()
                        + "R2,2025-06-03,2.00,北京元亨科技,,,\n".encode("gbk"), ITEMS, [], "mixes UTF-8 and GBK"),
    "utf16": ((RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n").encode("utf-16"), ITEMS, [], "UTF-16"),
    "neither_encoding": (RECEIPTS_HEADER.encode() + b"R1,2025-06-03,1.00,\xff\xff,,,\n", ITEMS, [],
                         "neither UTF-8 nor GBK"),
    "nul_in_payer": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,测试\x00公司六,,,\n", ITEMS, [], "U+0000"),
    "fee_nan": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n", ITEMS, ["--fee", "nan"], "--fee nan is out of range"),
    "fee_negative": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n", ITEMS, ["--fee", "-5"], "out of range"),
    "max_subset_zero": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n", ITEMS, ["--max-subset", "0"], "out of range"),
    "fee_not_a_number": (RECEIPTS_HEADER + "R1,2025-06-03,1.00,,,,\n", ITEMS, ["--fee", "abc"], "invalid float"),
}


def _match_files(tmp_path: Path, receipts, items) -> tuple[Path, Path]:
    r, i = tmp_path / "receipts.csv", tmp_path / "items.csv"
    if receipts == "folder":
        r.mkdir()
    elif receipts is not None:
        _write(r, receipts)
    if items is not None:
        _write(i, items)
    return r, i


@pytest.mark.parametrize("case", list(MATCH_REFUSED))
def test_reconcile_match_refuses_bad_input_in_one_line(tmp_path, capsys, case):
    from quality.reconcile.__main__ import main

    receipts, items, extra, words = MATCH_REFUSED[case]
    r, i = _match_files(tmp_path, receipts, items)
    out, rest = (tmp_path / extra[1], extra[2:]) if extra[:1] == ["-o"] else (tmp_path / "out.csv", extra)
    rc, _, err = _cli(main, ["match", r, i, "-o", out, *rest], capsys)
    _refused(rc, err, words)
    assert not out.exists()                                                       # no half-written output


def _refused(rc: int, err: str, words: str) -> None:
    """Refused: a non-zero exit and one error line naming the problem (argparse adds its usage)."""
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("usage:", " "))]
    assert rc != 0 and len(lines) == 1 and words in lines[0], (rc, err)


#: case → (receipt rows, words in the output: status, reason code)
MATCH_ACCEPTED: dict[str, tuple[str, tuple[str, str]]] = {
    "negative_receipt": ("R1,2025-06-03,-1000.00,甲公司,,付I1,C1\n", ("exception", "not_positive")),
    "zero_receipt": ("R1,2025-06-03,0.00,甲公司,,,C1\n", ("exception", "not_positive")),
    "accounting_negative": ("R1,2025-06-03,\"(1,000.00)\",甲公司,,,C1\n", ("exception", "not_positive")),
    "formula_receipt_id": ("=1+1,2025-06-03,5.00,\"=cmd|' /C calc'!A0\",,,\n", ("exception", "unknown_payer")),
    "sql_memo": ("R1,2025-06-03,1000.00,x,,'; DROP TABLE items; --,C1\n", ("matched", "")),
    "over_long_memo": ("R1,2025-06-03,1000.00,x,,\"" + "备" * 20000 + "\",C1\n", ("matched", "")),
    "over_long_payer": ("R1,2025-06-03,7.00,\"" + "长" * 5000 + "\",,,\n", ("exception", "unknown_payer")),
    "fullwidth_amount": ("R1,2025-06-03,１，０００．００,x,,,C1\n", ("matched", "")),
}


@pytest.mark.parametrize("case", list(MATCH_ACCEPTED))
def test_reconcile_match_accounts_for_every_receipt(tmp_path, capsys, case):
    from quality.reconcile.__main__ import main

    rows, (status, code) = MATCH_ACCEPTED[case]
    r, i = _match_files(tmp_path, RECEIPTS_HEADER + rows, ITEMS)
    rc, _, err = _cli(main, ["match", r, i, "-o", tmp_path / "out.csv"], capsys)
    assert rc == 0, err
    with open(tmp_path / "out.csv", encoding="utf-8-sig", newline="") as fh:
        out = list(csv.DictReader(fh))
    ids = pd.read_csv(r, dtype=str, keep_default_na=False)["receipt_id"].tolist()
    assert sorted({o["receipt_id"].removeprefix("'") for o in out}) == sorted(ids)   # in = out
    assert out[0]["status"] == status and out[0]["reason_code"] == code
    if status == "matched":
        assert out[0]["amount"] == "1000.00"
    assert not [v for o in out for v in o.values() if v.startswith(("=", "+", "@"))]   # no live formula
    if case == "formula_receipt_id":
        assert out[0]["receipt_id"] == "'=1+1"


def test_an_amount_that_fits_a_later_invoice_too_is_proposed_not_posted(tmp_path, capsys):
    """先款后票: the second invoice of the same amount is dated after the receipt, beyond the lead days."""
    from quality.reconcile.__main__ import main

    items = "item_id,kind,customer,doc_date,amount\nI1,invoice,C1,2025-05-01,1000.00\nI9,invoice,C1,2025-09-01,1000.00\n"
    r, i = _match_files(tmp_path, RECEIPTS_HEADER + "R1,2025-06-03,1000.00,甲公司,,货款,C1\n", items)
    rc, _, err = _cli(main, ["match", r, i, "-o", tmp_path / "out.csv"], capsys)
    out = list(csv.DictReader(open(tmp_path / "out.csv", encoding="utf-8-sig")))
    assert rc == 0 and [(o["status"], o["reason_code"]) for o in out] == [("exception", "ambiguous_amount")]
    assert "I9" in out[0]["reason"]


DEDUP_HEADER = "id,name,uscc,phone\n"
#: case → (file content, extra argv, words of the refusal)
DEDUP_REFUSED: dict[str, tuple[object, list[str], str]] = {
    "missing_file": (None, [], "no such file"),
    "empty_file": ("", [], "empty"),
    "blank_lines_only": ("\n\n  \n", [], "empty"),
    "header_only": (DEDUP_HEADER, [], "a header but no records"),
    "no_name_column": ("id,nom\n1,上海华测\n", [], "missing column(s) name"),
    "no_id_column": ("name\n上海华测\n", [], "missing column(s) id"),
    "duplicate_ids": (DEDUP_HEADER + "1,上海华测,,\n1,北京元亨,,\n", [], "id '1' appears on rows 2, 3"),
    "blank_id": (DEDUP_HEADER + ",上海华测,,\n", [], "id: blank"),
    "unknown_encoding": (DEDUP_HEADER + "1,上海华测,,\n", ["--encoding", "klingon"], "not an encoding"),
    "wrong_encoding": ((DEDUP_HEADER + "1,上海华测,,\n").encode("gbk"), ["--encoding", "utf-8"], "is not utf-8 text"),
    "mixed_encodings": ((DEDUP_HEADER + "1,上海华测检测,,\n").encode() + "2,北京元亨科技,,\n".encode("gbk"), [],
                        "mixes UTF-8 and GBK"),
    "utf16": ((DEDUP_HEADER + "1,上海华测,,\n").encode("utf-16"), [], "UTF-16"),
    "nul_in_name": (DEDUP_HEADER + "1,测试\x00公司六,,\n", [], "U+0000"),
    "output_folder_missing": (DEDUP_HEADER + "1,上海华测,,\n", ["-o", "nowhere/out.csv"], "does not exist"),
    "unbalanced_quotes": (DEDUP_HEADER + '1,"上海华测,,\n', [], "not a CSV file"),
}


@pytest.mark.parametrize("case", list(DEDUP_REFUSED))
def test_dedup_refuses_bad_input_in_one_line(tmp_path, capsys, case):
    from quality.__main__ import main

    content, extra, words = DEDUP_REFUSED[case]
    src = tmp_path / "customers.csv"
    if content is not None:
        _write(src, content)
    out, rest = (tmp_path / extra[1], extra[2:]) if extra[:1] == ["-o"] else (tmp_path / "out.csv", extra)
    rc, _, err = _cli(main, ["dedup", src, "-o", out, *rest], capsys)
    _refused(rc, err, words)
    assert not out.exists()


def test_dedup_writes_hostile_names_as_text_and_loses_no_record(tmp_path, capsys):
    from quality.__main__ import main

    names = [FORMULA_PAYER, "+86 138 0013 8000", "@SUM(A1)", "-1+1", "x'); DROP TABLE customer;--", "长" * 5000, "",
             "<script>alert(1)</script>", "null", "上海华测检测技术有限公司", "华测检测技术（上海）有限公司"]
    src = tmp_path / "customers.csv"
    pd.DataFrame({"id": [str(n) for n in range(len(names))], "name": names, "phone": "-1"}).to_csv(src, index=False)
    rc, out, err = _cli(main, ["dedup", src, "-o", tmp_path / "out.csv"], capsys)
    assert rc == 0, err
    with open(tmp_path / "out.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == [str(n) for n in range(len(names))]           # every record, in order
    assert rows[0]["name"] == "'" + FORMULA_PAYER and rows[1]["name"].startswith("'+") and rows[3]["name"] == "'-1+1"
    assert rows[4]["name"] == names[4] and rows[5]["name"] == names[5] and rows[0]["phone"] == "-1"   # a number stays
    assert not [v for r in rows for v in r.values() if v.startswith(("=", "+", "@", "\t", "\r"))]


#: (command, argv, words of the refusal); {queued} is a receipt waiting in the finance queue
REFUSED_COMMANDS: dict[str, tuple[str, list[str], str]] = {
    "show_unknown_receipt": ("quality.reconcile", ["exceptions", "show", "no-such-receipt"], "no queued receipt"),
    "show_wildcard": ("quality.reconcile", ["exceptions", "show", "%"], "no queued receipt"),
    "show_sql": ("quality.reconcile", ["exceptions", "show", "' OR 1=1 --"], "no queued receipt"),
    "show_nothing": ("quality.reconcile", ["exceptions", "show"], "give the receipt"),
    "accept_unknown_receipt": ("quality.reconcile", ["exceptions", "accept", "no-such-receipt"], "no queued receipt"),
    "reassign_unknown_customer": ("quality.reconcile", ["exceptions", "reassign", "{queued}", "--customer",
                                                        "NO-SUCH-CUSTOMER"], "not a U8 customer"),
    "reassign_sql_customer": ("quality.reconcile", ["exceptions", "reassign", "{queued}", "--customer", "' OR '1'='1"],
                              "not a U8 customer"),
    "reassign_without_customer": ("quality.reconcile", ["exceptions", "reassign", "{queued}"], "needs --customer"),
    "reject_without_comment": ("quality.reconcile", ["exceptions", "reject", "{queued}"], "needs a --comment"),
    "list_bogus_status": ("quality.reconcile", ["exceptions", "list", "--status", "bogus"], "invalid choice"),
    "merge_unknown_decision": ("quality", ["review", "merge", "999999"], "no dedup decision 999999"),
    "distinct_huge_decision": ("quality", ["review", "distinct", "99999999999999999999999"], "no dedup decision"),
    "undo_decision_zero": ("quality", ["review", "undo", "0"], "no dedup decision"),
    "merge_nothing": ("quality", ["review", "merge"], "give the decision id"),
    "merge_not_a_number": ("quality", ["review", "merge", "abc"], "invalid int value"),
    "run_unknown_flow": ("flows", ["run", "no_such_flow", "--run-id", "x"], "no flow 'no_such_flow'"),
    "run_path_as_flow": ("flows", ["run", "../../etc/passwd", "--run-id", "x"], "no flow"),
    "run_main_as_flow": ("flows", ["run", "__main__", "--run-id", "x"], "no flow"),
    "run_helper_module_as_flow": ("flows", ["run", "steps", "--run-id", "x"], "no flow"),
    "run_unknown_step": ("flows", ["run", "receipts", "--step", "explode", "--run-id", "x"], "no step 'explode'"),
    "quarantine_huge_id": ("hub", ["quarantine", "show", "99999999999999999999999"], "not an entry id"),
    "quarantine_text_id": ("hub", ["quarantine", "show", "abc"], "not an entry id"),
    "quarantine_negative_id": ("hub", ["quarantine", "show", "-1"], "not an entry id"),
    "quarantine_no_id": ("hub", ["quarantine", "show"], "give the id"),
    "quarantine_unknown_id": ("hub", ["quarantine", "show", "987654"], "no quarantine entry 987654"),
    "replay_huge_id": ("hub", ["quarantine", "replay", "99999999999999999999999"], "not an entry id"),
    "ignore_without_comment": ("hub", ["quarantine", "ignore", "1"], "needs --comment"),
}


def _entry_point(command: str):
    from flows.__main__ import main as flows_main
    from hub.cli import main as hub_main
    from quality.__main__ import main as quality_main
    from quality.reconcile.__main__ import main as reconcile_main

    return {"quality.reconcile": reconcile_main, "quality": quality_main, "flows": flows_main, "hub": hub_main}[command]


@pytest.mark.parametrize("case", list(REFUSED_COMMANDS))
def test_a_command_refuses_what_it_cannot_do_in_one_line(world, capsys, case):
    from quality.reconcile import queue

    command, argv, words = REFUSED_COMMANDS[case]
    with store.engine().begin() as conn:
        waiting = queue.rows(conn)
    argv = [a.replace("{queued}", waiting.iloc[0]["receipt_hub_id"]) for a in argv]
    rc, _, err = _cli(_entry_point(command), argv, capsys)
    _refused(rc, err, words)
    with store.engine().begin() as conn:
        assert queue.rows(conn).equals(waiting)                                    # nothing was decided


@pytest.mark.parametrize("argv,words", [
    (["-m", "quality", "dedup", "missing.csv", "-o", "out.csv"], "no such file"),
    (["-m", "quality.reconcile", "match", "missing.csv", "items.csv", "-o", "out.csv"], "no such file"),
    (["-m", "quality.reconcile", "exceptions", "show", "no-such-receipt"], "no queued receipt"),
    (["-m", "quality", "review", "merge", "999999"], "no dedup decision"),
    (["-m", "flows", "run", "no_such_flow", "--run-id", "x"], "no flow"),
    (["-m", "hub", "quarantine", "show", "99999999999999999999999"], "not an entry id"),
])
def test_the_real_commands_exit_non_zero_with_one_line(world, tmp_path, argv, words):
    done = subprocess.run([sys.executable, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode != 0 and words in done.stderr and "Traceback" not in done.stderr, done.stderr
