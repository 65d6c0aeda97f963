"""Bank statement files as three Chinese banks export them, written into a drop folder.

- 工商银行 (ICBC): .xlsx, title rows above the header, 借方发生额 / 贷方发生额 as number cells
  (a fifth of the credits as text with thousand separators), the payer's 附言 in 用途.
- 招商银行 (CMB): CSV in GBK, ``# 招商银行交易记录`` title lines, 交易日 as 20250603, amounts
  with thousand separators and, on a third of the lines, full-width digits (１２，３４５．６０),
  counterparty in 收/付方名称 / 收/付方帐号.
- 建设银行 (CCB): CSV in UTF-8 with BOM, 贷方发生额（收入） / 借方发生额（支取）, 交易时间 as
  ``20250603 10:21:33``.

One file per bank and week of value dates; the header names are the banks' (see the hub's
``mappings/banks/*.yaml``), the content is the seeded truth's.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .mess import to_fullwidth

INBOX = "bank_inbox"
WEEKS = [(date(2025, 6, 1) + timedelta(days=7 * k), date(2025, 6, 7) + timedelta(days=7 * k)) for k in range(4)]
COMPANY = "上海数联集成科技有限公司"
BAD_SERIAL, BAD_AMOUNT = "CMB-BAD-0001", "１，２３４．５６７"   # the line the hub must quarantine, not round


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _thousands(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


def _icbc(lines: list[dict[str, Any]], path: Path, account: str, week: tuple[date, date]) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "账户明细"
    ws.append(["中国工商银行 企业网上银行 账户明细"])
    ws.append([f"户名：{COMPANY}", None, f"账号：{account}"])
    ws.append([f"查询区间：{week[0]:%Y-%m-%d} 至 {week[1]:%Y-%m-%d}", None, "币种：人民币"])
    ws.append([])
    ws.append(["凭证号", "本方账号", "对方账号", "交易时间", "借/贷", "借方发生额", "贷方发生额", "对方行号", "摘要", "用途",
               "对方单位名称", "余额"])
    balance = 500_000_000
    for n, line in enumerate(lines):
        credit = line["direction"] == "credit"
        balance += line["amount"] if credit else -line["amount"]
        amount: Any = line["amount"] / 100 if n % 5 else _thousands(line["amount"])  # some cells are text
        when = f"{line['date']:%Y-%m-%d} {9 + n % 8:02d}:{(n * 7) % 60:02d}:{(n * 13) % 60:02d}"
        ws.append([line["serial"], account, line["payer_account"], when, "贷" if credit else "借",
                   None if credit else amount, amount if credit else None, f"1023{n:08d}"[:12],
                   "汇入" if credit else "汇出", line["memo"] or None, line["payer_name"], balance / 100])
    ws.append(["合计", None, None, None, None, None, None, None, None, None, None, None])
    wb.save(path)


def _cmb(lines: list[dict[str, Any]], path: Path, account: str, week: tuple[date, date]) -> None:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    out.write("# 招商银行交易记录\r\n")
    out.write(f"# 账号: {account}  户名: {COMPANY}  币种: 人民币\r\n")
    out.write(f"# 日期: {week[0]:%Y%m%d} -- {week[1]:%Y%m%d}\r\n")
    w.writerow(["交易日", "交易时间", "起息日", "交易类型", "借方金额", "贷方金额", "余额", "摘要", "流水号", "流程实例号",
                "业务名称", "用途", "业务参考号", "业务摘要", "其它摘要", "收/付方分行名", "收/付方名称", "收/付方帐号"])
    balance = 300_000_000
    for n, line in enumerate(lines):
        credit = line["direction"] == "credit"
        balance += line["amount"] if credit else -line["amount"]
        amount = _thousands(line["amount"])
        if n % 3 == 0:
            amount = to_fullwidth(amount).replace(",", "，").replace(".", "．")
        w.writerow([f"{line['date']:%Y%m%d}", f"{10 + n % 7:02d}:{(n * 11) % 60:02d}:00", f"{line['date']:%Y%m%d}",
                    "汇入汇款" if credit else "转账汇款", "" if credit else amount, amount if credit else "",
                    _thousands(balance), "汇入" if credit else "付款", line["serial"], "", "企业银行",
                    line["memo"], f"K{n:09d}", "", "", "", line["payer_name"], line["payer_account"]])
    if week == WEEKS[0]:  # one line a clerk edited by hand: a third decimal no bank sends
        w.writerow([f"{week[0]:%Y%m%d}", "16:00:00", f"{week[0]:%Y%m%d}", "汇入汇款", "", BAD_AMOUNT, "", "汇入",
                    BAD_SERIAL, "", "企业银行", "货款", "K999999999", "", "", "", "某某商贸有限公司", "6228000000000001"])
    path.write_bytes(out.getvalue().encode("gbk"))


def _ccb(lines: list[dict[str, Any]], path: Path, account: str, week: tuple[date, date]) -> None:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["账号", "账户名称", "交易时间", "借方发生额（支取）", "贷方发生额（收入）", "余额", "币种", "对方户名", "对方账号",
                "对方开户机构", "记账日期", "摘要", "备注", "账户明细编号-交易流水号"])
    balance = 200_000_000
    for n, line in enumerate(lines):
        credit = line["direction"] == "credit"
        balance += line["amount"] if credit else -line["amount"]
        amount = _yuan(line["amount"])
        w.writerow([account, COMPANY, f"{line['date']:%Y%m%d} {8 + n % 9:02d}:{(n * 17) % 60:02d}:{(n * 5) % 60:02d}",
                    "" if credit else amount, amount if credit else "", _yuan(balance), "人民币", line["payer_name"],
                    line["payer_account"], "中国建设银行上海分行", f"{line['date']:%Y%m%d}", "转账" if credit else "支付",
                    line["memo"], line["serial"]])
    path.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))


WRITERS = {"icbc": (_icbc, "工商银行_账户明细_{a:%Y%m%d}-{b:%Y%m%d}.xlsx"),
           "cmb": (_cmb, "招商银行_交易明细_{a:%Y%m%d}-{b:%Y%m%d}.csv"),
           "ccb": (_ccb, "建设银行_账户明细_{a:%Y%m%d}-{b:%Y%m%d}.csv")}


def write(lines: list[dict[str, Any]], accounts: dict[str, str], directory: Path) -> list[Path]:
    """One file per bank and week into ``<directory>/bank_inbox``; returns the files written."""
    inbox = directory / INBOX
    inbox.mkdir(parents=True, exist_ok=True)
    written = []
    for bank, (writer, pattern) in WRITERS.items():
        for week in WEEKS:
            part = sorted((ln for ln in lines if ln["bank"] == bank and week[0] <= ln["date"] <= week[1]),
                          key=lambda ln: (ln["date"], ln["serial"]))
            if not part:
                continue
            path = inbox / pattern.format(a=week[0], b=week[1])
            writer(part, path, accounts[bank], week)
            written.append(path)
    return written
