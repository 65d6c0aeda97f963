"""The reconciliation engine, money parsing, memo tokens, bank statement files and the CSV
command, without the sandbox."""
from __future__ import annotations

import csv
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from connectors.bank_files import BankFilesConnector, amount_text
from hub.types import ConnectionInfo
from mappings import banks
from quality.names import name_key
from quality.reconcile import Settings, reconcile, tokens
from quality.reconcile.amounts import AmountError, to_fen

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text,fen", [
    ("12,345.60", 1234560), ("１２，３４５．６０", 1234560), ("¥12345.6", 1234560), ("￥ 1,000", 100000),
    ("(1,234.00)", -123400), ("0.01", 1), (12345.67, 1234567), (Decimal("99999999.99"), 9999999999),
    ("人民币 8,888.88 元", 888888), (" 3\u3000000.00 ", 300000),
])
def test_amounts_are_parsed_exactly_to_the_fen(text, fen):
    assert to_fen(text) == fen


@pytest.mark.parametrize("text", ["12.345", "abc", "1.2.3", "12,34a"])
def test_what_is_not_money_is_refused_not_rounded(text):
    with pytest.raises(AmountError):
        to_fen(text)


def test_sums_in_fen_are_exact_where_floats_drift():
    amounts = ["0.10", "0.20", "1,234,567.89", "１．０５"] * 1000
    assert sum(to_fen(a) for a in amounts) == 123_456_924_000
    assert sum(float(a.replace(",", "").replace("１．０５", "1.05")) for a in amounts) * 100 != 123_456_924_000
    assert amount_text("１２，３４５．６０") == "12345.60" and amount_text(1234.5) == "1234.50"


def test_memo_tokens_find_document_numbers_and_ignore_amounts():
    memo = "付ＨＴ2025-0012第2期货款，发票03120456；金额12345.00 RMB 电话13800138000"
    toks = tokens.tokens(memo)
    assert "HT20250012" in toks and "03120456" in toks
    assert "12345" not in toks and "RMB" not in toks
    assert tokens.normalise("ht2025-0012") == "HT20250012"


def _gbk_statement(path: Path) -> None:
    rows = [["# 招商银行交易记录"], ["# 账号: 7559 1234 5610 801"],
            ["交易日", "交易时间", "借方金额", "贷方金额", "余额", "摘要", "流水号", "用途", "收/付方名称", "收/付方帐号"],
            ["20250603", "10:00:00", "", "１２，３４５．６０", "1,000,000.00", "汇入", "CMB0001", "付发票03120456",
             "上海华测检测技术（有限）公司", "6222 0000 1111 2222"],
            ["２０２５０６０４", "10:00:00", "", "1,234,567.89", "", "汇入", "CMB0002", "货款", "江苏恒瑞医药股份有限公司", "6222"],
            ["20250605", "10:00:00", "500.00", "", "", "付款", "CMB0003", "", "国家税务总局", "1"],
            ["20250606", "10:00:00", "", "12.345", "", "汇入", "CMB0004", "", "某公司", "2"]]
    out = "\r\n".join(",".join(f'"{c}"' for c in r) for r in rows) + "\r\n"
    path.write_bytes(out.encode("gbk"))


def test_a_gbk_file_with_full_width_digits_and_thousand_separators_is_read_exactly(tmp_path):
    drop = tmp_path / "inbox"
    drop.mkdir()
    _gbk_statement(drop / "招商银行_交易明细.csv")
    conn = BankFilesConnector(ConnectionInfo("bank_drop", extra={"path": str(drop)}), banks.layouts())
    info = conn.files()[0]
    layout, lines = conn.parse(info)
    assert layout == "cmb"
    first, second, debit, bad = lines
    assert (first["amount"], first["value_date"], first["direction"]) == ("12345.60", "2025-06-03", "credit")
    assert first["payer_account"] == "6222000011112222" and first["our_account"] == "755912345610801"
    assert "03120456" in first["memo"] and first["serial"] == "CMB0001"
    assert (second["amount"], second["value_date"]) == ("1234567.89", "2025-06-04")
    assert debit["direction"] == "debit" and debit["amount"] == "500.00"
    assert bad["parse_error"] and "two decimals" in bad["parse_error"]


def _items() -> pd.DataFrame:
    return pd.DataFrame([
        dict(item_id="invoice:03120001", kind="invoice", customer="C1", open_fen=100000, doc_date="2025-05-01",
             refs="03120001|SO2025001|HT2025-0001"),
        dict(item_id="invoice:03120002", kind="invoice", customer="C1", open_fen=55555, doc_date="2025-05-10",
             refs="03120002|SO2025001|HT2025-0001"),
        dict(item_id="invoice:03120003", kind="invoice", customer="C2", open_fen=77700, doc_date="2025-05-10", refs="03120003"),
        dict(item_id="invoice:03120004", kind="invoice", customer="C2", open_fen=12300, doc_date="2025-05-11", refs="03120004"),
        dict(item_id="invoice:03120005", kind="invoice", customer="C2", open_fen=45600, doc_date="2025-05-12", refs="03120005"),
        dict(item_id="invoice:03120006", kind="invoice", customer="C3", open_fen=200000, doc_date="2025-05-12", refs="03120006"),
        dict(item_id="invoice:03120007", kind="invoice", customer="C4", open_fen=30000, doc_date="2025-05-12", refs="03120007"),
        dict(item_id="invoice:03120008", kind="invoice", customer="C4", open_fen=30000, doc_date="2025-05-13", refs="03120008"),
    ])


def _directory():
    accounts = pd.DataFrame([dict(account="6222 0000 1111", customer="C1"), dict(account="6222000033334444", customer="C3"),
                             dict(account="6222000044445555", customer="C4")])
    names = pd.DataFrame({"name_key": name_key(pd.Series(["乙有限公司", "丁有限公司"])), "customer": ["C2", "C4"]})
    return accounts, names


def _receipt(rid, amount, memo="", name="", account="", day="2025-06-03", customer=None):
    return dict(receipt_id=rid, amount_fen=amount, value_date=day, memo=memo, payer_name=name, payer_account=account,
                customer=customer)


def test_each_tier_posts_only_what_is_certain():
    receipts = pd.DataFrame([
        _receipt("ref", 100000, "付发票03120001货款", "x", "1"),
        _receipt("fee", 55555 - 1500, "货款", "甲公司", "6222-0000-1111"),
        _receipt("subset", 77700 + 12300, "货款", "乙有限责任公司"),                 # name variant, two invoices
        _receipt("unknown", 99, "", "不认识的公司", "999999"),
        _receipt("same_amount", 30000, "", "", "6222000044445555"),             # C4 has two invoices of 30000
        _receipt("over", 245600, "03120005", "", ""),                           # C2's invoice + credit
    ])
    accounts, names = _directory()
    res = reconcile(receipts, _items(), accounts, names)
    out = res.receipts.set_index("receipt_id")
    alloc = res.allocations.groupby("receipt_id")
    assert out.at["ref", "rule"] == "reference" and out.at["ref", "status"] == "posted"
    fee = alloc.get_group("fee").iloc[0]
    assert (fee["amount_fen"], fee["writeoff_fen"], fee["rule"]) == (54055, 1500, "amount_fee")
    assert set(alloc.get_group("subset")["item_id"]) == {"invoice:03120003", "invoice:03120004"}
    assert out.at["unknown", "reason_code"] == "unknown_payer" and "reassign" in out.at["unknown", "reason"]
    assert out.at["same_amount", "reason_code"] == "ambiguous_amount"      # never a coin toss
    over = alloc.get_group("over").set_index("kind")["amount_fen"].to_dict()
    assert over == {"invoice": 45600, "credit": 200000}
    for rid in out.index:   # every allocation adds up to its receipt, to the fen
        if out.at[rid, "status"] == "posted":
            assert alloc.get_group(rid)["amount_fen"].sum() == receipts.set_index("receipt_id").at[rid, "amount_fen"]


def test_several_receipts_for_one_invoice_and_partial_payments():
    receipts = pd.DataFrame([
        _receipt("p1", 40000, "付03120001"), _receipt("p2", 60000, "03120001尾款", day="2025-06-05"),
        _receipt("g1", 150000, "", "", "6222000033334444"), _receipt("g2", 50000, "", "", "6222000033334444"),
    ])
    accounts, names = _directory()
    res = reconcile(receipts, _items(), accounts, names)
    out = res.receipts.set_index("receipt_id")
    assert out.at["p1", "rule"] == "reference_partial" and out.at["p2", "rule"] == "reference"
    assert out.at["g1", "rule"] == out.at["g2", "rule"] == "receipts_group"
    assert res.allocations.groupby("item_id")["amount_fen"].sum()["invoice:03120006"] == 200000


def test_a_combination_that_is_not_unique_is_never_posted():
    items = pd.DataFrame([dict(item_id=f"i{k}", kind="invoice", customer="C", open_fen=v, doc_date="2025-05-01", refs="")
                          for k, v in enumerate([100, 200, 300, 400])])
    receipts = pd.DataFrame([_receipt("r", 500, customer="C")])       # 100+400 = 200+300
    res = reconcile(receipts, items)
    assert res.receipts.iloc[0]["reason_code"] == "ambiguous_combination" and res.allocations.empty


def test_finance_decisions_override_and_stick():
    receipts = pd.DataFrame([_receipt("u", 100000, "", "不认识", "42424242"), _receipt("v", 5, "", "谁", "1")])
    decisions = pd.DataFrame([
        dict(receipt_id="u", action="reassign", customer="C1", item_ids=["invoice:03120001"], proposal=None, by="li",
             comment="客户来电"),
        dict(receipt_id="v", action="reject", customer=None, item_ids=None, proposal=None, by="li", comment="退回")])
    res = reconcile(receipts, _items(), decisions=decisions)
    out = res.receipts.set_index("receipt_id")
    assert out.at["u", "rule"] == "finance" and res.allocations.iloc[0]["item_id"] == "invoice:03120001"
    assert out.at["v", "reason_code"] == "rejected_by_finance"


def test_fee_tolerance_is_configurable():
    receipts = pd.DataFrame([_receipt("fee", 55555 - 2500, "", "", "622200001111")])
    accounts, names = _directory()
    assert reconcile(receipts, _items(), accounts, names).receipts.iloc[0]["status"] == "exception"
    wide = Settings(fee_tolerance_fen=3000)
    assert reconcile(receipts, _items(), accounts, names, settings=wide).receipts.iloc[0]["rule"] == "amount_fee"


def test_the_csv_command_writes_allocations_with_reasons(tmp_path):
    receipts = tmp_path / "receipts.csv"
    with open(receipts, "w", newline="", encoding="gb18030") as fh:
        w = csv.writer(fh)
        w.writerow(["receipt_id", "date", "amount", "payer_name", "payer_account", "memo"])
        w.writerow(["B1", "2025-06-03", "１，０００．００", "甲公司", "", "付发票03120001"])
        w.writerow(["B2", "2025-06-04", "900.00", "乙有限责任公司", "", "货款"])
        w.writerow(["B3", "2025-06-04", "1.00", "陌生人", "", ""])
    items = tmp_path / "items.csv"
    with open(items, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "kind", "customer", "customer_name", "doc_date", "amount", "open_amount", "refs"])
        w.writerow(["03120001", "invoice", "C1", "甲有限公司", "2025-05-01", "1,000.00", "", "SO1"])
        w.writerow(["03120002", "invoice", "C2", "乙有限公司", "2025-05-01", "1,500.00", "900.00", ""])
    out = tmp_path / "allocations.csv"
    done = subprocess.run([sys.executable, "-m", "quality.reconcile", "match", str(receipts), str(items), "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(open(out, encoding="utf-8-sig")))
    by = {r["receipt_id"]: r for r in rows}
    assert by["B1"]["status"] == "matched" and by["B1"]["item_id"] == "03120001" and by["B1"]["amount"] == "1000.00"
    assert by["B2"]["status"] == "matched" and by["B2"]["rule"] == "amount_exact"
    assert by["B3"]["status"] == "exception" and by["B3"]["reason_code"] == "unknown_payer" and by["B3"]["reason"]
