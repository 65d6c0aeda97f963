"""Receipts for finance, seeded: U8 invoices and 收款单, CRM payment plans, bank statement lines,
and the exact ground truth of which receipt pays what.

Built from the customer dataset (``seed.Dataset``) with an RNG of its own (``receipts-<seed>``),
so the customer data does not move when this changes. Every invoice gets one *story* of how it
is paid (or not), chosen so the hard cases are all there: a reference in the memo, none, a bank
fee deducted, one receipt for several invoices, several receipts for one invoice, a partial
payment, an over-payment, a payer name typed differently, an unknown payer, a prepayment of an
instalment not invoiced yet, a 收款单 finance entered in U8. ``truth`` says, per receipt, what
a correct reconciliation allocates and whether it should be posted automatically.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from . import mess

AS_OF = date(2025, 6, 30)             # the seeded world's today: overdue is judged against it
FIRST_VALUE_DATE = date(2025, 6, 2)
LAST_VALUE_DATE = date(2025, 6, 27)
LAST_INVOICE_DATE = date(2025, 6, 20)
OUR_ACCOUNTS = {"icbc": "1001234509876543210", "cmb": "755912345610801", "ccb": "31050161373600001234"}

#: How an invoice gets paid, with its weight (multi and split take partners or make two receipts).
STORIES: dict[str, float] = {
    "settled_before": 0.07, "unpaid": 0.10, "ref_invoice": 0.22, "ref_order": 0.07, "account_exact": 0.15,
    "name_exact": 0.07, "fee": 0.05, "multi": 0.08, "split": 0.05, "partial_ref": 0.03, "overpay_ref": 0.02,
    "u8_receipt": 0.09,
}
PREPAY_SHARE = 0.35           # contracts whose not-yet-invoiced last instalment is prepaid
UNKNOWN_PAYER_SHARE = 0.015   # receipts from companies that are no customer
DEBIT_SHARE = 0.05            # payments out on the same statements (not receipts)
NOREF_MEMOS = ("货款", "支付货款", "往来款", "转账", "付款", "采购款", "网银转账", "")
REF_MEMOS = ("付发票{ref}货款", "货款 {ref}", "{ref}", "支付{ref}款项", "发票号:{ref}", "付{ref}")
ORDER_MEMOS = ("支付订单{order}货款", "{order} 货款", "合同{contract}款", "付{contract}第{stage}期")


@dataclass
class Receipts:
    invoices: list[dict[str, Any]] = field(default_factory=list)       # SaleBillVouch row + "lines"
    u8_receipts: list[dict[str, Any]] = field(default_factory=list)    # Ap_CloseBill row + "lines"
    plans: list[dict[str, Any]] = field(default_factory=list)          # CRM paymentPlan rows
    bank_lines: list[dict[str, Any]] = field(default_factory=list)     # statement lines, all banks
    truth: dict[str, Any] = field(default_factory=dict)


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` fen in ``parts`` distinct pieces (instalments / invoice lines)."""
    if parts == 1:
        return [total]
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    pieces = [int(total * w / sum(weights)) for w in weights]
    pieces[-1] += total - sum(pieces)
    return pieces


def _day(lo: date, hi: date, rng: random.Random) -> date:
    return lo + timedelta(days=rng.randint(0, max(0, (hi - lo).days)))


def _sql(d: date) -> str:
    return d.strftime("%Y-%m-%d 00:00:00.000")


def _ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, 8).timestamp() * 1000)


class _Builder:
    def __init__(self, rng: random.Random, customers: list[dict[str, Any]]) -> None:
        self.rng = rng
        self.customers = customers
        self.out = Receipts()
        self.seq = {"invoice": 3_120_000, "order": 0, "sbvid": 0, "autoid": 0, "iid": 0, "ap_line": 0, "u8_no": 0,
                    "serial": {b: 0 for b in OUR_ACCOUNTS}, "plan": 0}
        self.truth: list[dict[str, Any]] = []
        self.paid: dict[str, int] = {}   # item key → fen the truth says receipts pay (auto ones)

    # -- documents ----------------------------------------------------------------------------
    def contract(self, cust: dict[str, Any]) -> list[dict[str, Any]]:
        """One contract (order) with its instalments and the invoices of those already due."""
        rng = self.rng
        self.seq["order"] += 1
        order_no, contract_no = f"SO2025{self.seq['order']:05d}", f"HT2025-{self.seq['order']:04d}"
        total = rng.randint(2_000_000, 60_000_000)
        stages = rng.choice((1, 2, 2, 3, 3))
        start = _day(date(2025, 1, 10), date(2025, 5, 20), rng)
        out = []
        for stage, amount in enumerate(_split(total, stages, rng), start=1):
            due = start + timedelta(days=30 * stage + rng.randint(0, 10))
            invoice_date = due - timedelta(days=20)
            inst = {"order_no": order_no, "contract_no": contract_no, "stage": stage, "due": due, "amount": amount,
                    "customer": cust, "invoice": None}
            if invoice_date <= LAST_INVOICE_DATE:
                inst["invoice"] = self.invoice(cust, order_no, max(invoice_date, date(2025, 1, 10)), amount)
            out.append(inst)
        if cust.get("crm_id"):
            for inst in out:
                self.seq["plan"] += 1
                inst["plan_id"] = cust["plan_base"] + self.seq["plan"] * 7
                self.out.plans.append({
                    "id": inst["plan_id"], "name": f"{contract_no} 第{inst['stage']}期", "accountId": int(cust["crm_id"]),
                    "orderNo__c": order_no, "contractNo__c": contract_no, "stage": inst["stage"],
                    "planDate": _ms(inst["due"]), "planAmount": inst["amount"] / 100, "receivedAmount__c": None,
                    "paymentStatus__c": "未回款", "overdue__c": 0, "overdueDays__c": None, "hubId__c": None,
                    "ownerId": cust["owner"], "createdAt": _ms(start), "updatedAt": _ms(start) + self.seq["plan"],
                    "createdBy": cust["owner"], "updatedBy": cust["owner"]})
        return out

    def invoice(self, cust: dict[str, Any], order_no: str, day: date, amount: int) -> dict[str, Any]:
        rng = self.rng
        self.seq["invoice"] += rng.randint(1, 9)
        self.seq["sbvid"] += 1
        inv = {"SBVID": self.seq["sbvid"], "cSBVCode": f"0{self.seq['invoice']:07d}", "cVouchType": rng.choice(("26", "27")),
               "cSTCode": "01", "dDate": _sql(day), "cSOCode": order_no, "cCusCode": cust["code"], "cDepCode": "03",
               "cPersonCode": "0102", "cexch_name": "人民币", "iExchRate": 1, "iTaxRate": 13, "cChecker": "张敏",
               "cVerifier": "李娜", "dArverifydate": _sql(day), "bReturnFlag": 0, "iDisp": 1, "bFirst": 0, "cMaker": "张敏",
               "lines": [], "_date": day, "_amount": amount}
        for piece in _split(amount, rng.choice((1, 1, 2, 3)), rng):
            self.seq["autoid"] += 1
            money = round(piece / 1.13)
            inv["lines"].append({"AutoID": self.seq["autoid"], "SBVID": inv["SBVID"], "cInvCode": f"P{rng.randint(1, 400):04d}",
                                 "cWhCode": "01", "iQuantity": rng.randint(1, 50), "iSum": piece / 100,
                                 "iNatSum": piece / 100, "iMoney": money / 100, "iNatMoney": money / 100,
                                 "iTax": (piece - money) / 100, "iNatTax": (piece - money) / 100, "iMoneySum": 0,
                                 "iExchSum": 0})
        self.out.invoices.append(inv)
        return inv

    # -- receipts -----------------------------------------------------------------------------
    def bank(self, cust: dict[str, Any] | None, amount: int, day: date, memo: str, *, story: str, expect: str,
             allocations: dict[str, int], writeoff: dict[str, int] | None = None, credit: int = 0,
             reason: str | None = None, payer: tuple[str, str] | None = None, bank: str | None = None) -> None:
        rng = self.rng
        bank = bank or rng.choice(tuple(OUR_ACCOUNTS))
        self.seq["serial"][bank] += rng.randint(1, 40)
        serial = f"{bank.upper()}{day:%Y%m%d}{self.seq['serial'][bank]:06d}"
        name, account = payer or (cust["name"], cust["account"])
        self.out.bank_lines.append({"bank": bank, "serial": serial, "date": day, "amount": amount, "direction": "credit",
                                    "payer_name": name, "payer_account": account, "memo": memo,
                                    "our_account": OUR_ACCOUNTS[bank]})
        self.truth.append({"source": "bank", "key": f"{bank}:{OUR_ACCOUNTS[bank]}:{serial}", "story": story,
                           "amount": amount, "customer": cust["code"] if cust else None, "expect": expect,
                           "reason": reason, "allocations": allocations, "writeoff": writeoff or {}, "credit": credit})
        if expect == "auto":
            for k, v in allocations.items():
                self.paid[k] = self.paid.get(k, 0) + v + (writeoff or {}).get(k, 0)

    def u8_receipt(self, cust: dict[str, Any], amount: int, day: date, story: str, allocations: dict[str, int],
                   settled: bool = False) -> None:
        self.seq["iid"] += 1
        self.seq["u8_no"] += 1
        iid = self.seq["iid"]
        rec = {"iID": iid, "cVouchType": "48", "cVouchID": f"{self.seq['u8_no']:010d}", "dVouchDate": _sql(day),
               "cDwCode": cust["code"], "cDeptCode": "03", "cPerson": "0102", "cFlag": "AR",
               "cSSCode": self.rng.choice(("4", "4", "1")), "cCode": "1122", "cexch_name": "人民币", "iExchRate": 1,
               "iAmount": amount / 100, "iAmount_f": amount / 100, "cCheckMan": "李娜", "dverifydate": _sql(day),
               "cNoteNo": f"3{self.rng.randint(10**14, 10**15 - 1)}" , "cSrcFlag": "AR", "iType": 0, "bPrePay": 0,
               "lines": []}
        self.seq["ap_line"] += 1
        rec["lines"].append({"ID": self.seq["ap_line"], "iID": iid, "iType": 0, "bPrePay": 0, "cCusVen": cust["code"],
                             "iAmt": amount / 100, "iAmt_f": amount / 100, "iRAmt": amount / 100,
                             "iRAmt_f": amount / 100, "iRAmt_s": 0 if settled else amount / 100})
        self.out.u8_receipts.append(rec)
        if not settled:
            self.truth.append({"source": "u8", "key": str(iid), "story": story, "amount": amount, "customer": cust["code"],
                               "expect": "auto", "reason": None, "allocations": allocations, "writeoff": {}, "credit": 0})
            for k, v in allocations.items():
                self.paid[k] = self.paid.get(k, 0) + v

    # -- stories ------------------------------------------------------------------------------
    def pay_date(self, after: date) -> date:
        lo = max(FIRST_VALUE_DATE, after + timedelta(days=1))
        return _day(min(lo, LAST_VALUE_DATE), min(LAST_VALUE_DATE, lo + timedelta(days=25)), self.rng)

    def noref(self) -> str:
        return self.rng.choice(NOREF_MEMOS)

    def story(self, cust: dict[str, Any], inst: dict[str, Any], kind: str, partners: list[dict[str, Any]]) -> None:
        rng, inv = self.rng, inst["invoice"]
        key, amount, code = f"invoice:{inv['cSBVCode']}", inv["_amount"], inv["cSBVCode"]
        day = self.pay_date(inv["_date"])
        if kind == "settled_before":
            for line in inv["lines"]:
                line["iMoneySum"] = line["iSum"]
            self.u8_receipt(cust, amount, inv["_date"] + timedelta(days=5), kind, {}, settled=True)
            self.paid[key] = amount
        elif kind == "ref_invoice":
            self.bank(cust, amount, day, rng.choice(REF_MEMOS).format(ref=code), story=kind, expect="auto",
                      allocations={key: amount})
        elif kind == "ref_order":
            memo = rng.choice(ORDER_MEMOS).format(order=inst["order_no"], contract=inst["contract_no"], stage=inst["stage"])
            self.bank(cust, amount, day, memo, story=kind, expect="auto", allocations={key: amount})
        elif kind == "account_exact":
            self.bank(cust, amount, day, self.noref(), story=kind, expect="auto", allocations={key: amount})
        elif kind == "name_exact":
            variant, _ = mess.name_variant(cust["name"], cust["abbr"], rng, allow_abbr=False)
            self.bank(cust, amount, day, self.noref(), story=kind, expect="auto", allocations={key: amount},
                      payer=(variant, f"6217{rng.randint(10**14, 10**15 - 1)}"))
        elif kind == "fee":
            fee = rng.randint(5, 20) * 100
            memo = rng.choice(REF_MEMOS).format(ref=code) if rng.random() < 0.5 else self.noref()
            self.bank(cust, amount - fee, day, memo, story=kind, expect="auto", allocations={key: amount - fee},
                      writeoff={key: fee})
        elif kind == "multi":
            group = [inv] + [p["invoice"] for p in partners]
            total = sum(g["_amount"] for g in group)
            day = self.pay_date(max(g["_date"] for g in group))
            memo = ("发票" + ",".join(g["cSBVCode"] for g in group)) if rng.random() < 0.5 else self.noref()
            self.bank(cust, total, day, memo, story=kind, expect="auto",
                      allocations={f"invoice:{g['cSBVCode']}": g["_amount"] for g in group})
        elif kind == "split":
            first = rng.randint(int(amount * 0.3), int(amount * 0.7))
            with_ref = rng.random() < 0.5
            for n, part in enumerate((first, amount - first)):
                memo = rng.choice(REF_MEMOS).format(ref=code) if with_ref else self.noref()
                later = min(LAST_VALUE_DATE, day + timedelta(days=n * rng.randint(0, 3)))
                self.bank(cust, part, later, memo, story=kind, expect="auto", allocations={key: part})
        elif kind == "partial_ref":
            part = rng.randint(int(amount * 0.2), int(amount * 0.8))
            self.bank(cust, part, day, rng.choice(REF_MEMOS).format(ref=code), story=kind, expect="auto",
                      allocations={key: part})
        elif kind == "overpay_ref":
            extra = rng.randint(100, 20_000) * 100
            self.bank(cust, amount + extra, day, rng.choice(REF_MEMOS).format(ref=code), story=kind, expect="auto",
                      allocations={key: amount}, credit=extra)
        elif kind == "u8_receipt":
            group = [inv] + [p["invoice"] for p in partners]
            self.u8_receipt(cust, sum(g["_amount"] for g in group), day, kind,
                            {f"invoice:{g['cSBVCode']}": g["_amount"] for g in group})

    def prepay(self, cust: dict[str, Any], inst: dict[str, Any], total_uninvoiced: int) -> None:
        """The last, not yet invoiced instalment paid ahead, the memo naming the contract."""
        memo = self.rng.choice(("预付合同{contract}第{stage}期", "{contract} 第{stage}期款", "合同{contract}预付款"))
        day = _day(FIRST_VALUE_DATE, LAST_VALUE_DATE, self.rng)
        self.bank(cust, total_uninvoiced, day, memo.format(contract=inst["contract_no"], stage=inst["stage"]),
                  story="prepay_contract", expect="auto", allocations={f"order:{inst['order_no']}": total_uninvoiced})

    def unknown(self, n: int, factory_names: list[str]) -> None:
        for k in range(n):
            amount = self.rng.randint(500_000, 30_000_000)
            self.bank(None, amount, _day(FIRST_VALUE_DATE, LAST_VALUE_DATE, self.rng), self.noref(), story="unknown_payer",
                      expect="exception", reason="unknown_payer", allocations={},
                      payer=(factory_names[k % len(factory_names)], f"6228{self.rng.randint(10**14, 10**15 - 1)}"))

    def debits(self, n: int) -> None:
        for _ in range(n):
            bank = self.rng.choice(tuple(OUR_ACCOUNTS))
            self.seq["serial"][bank] += 1
            day = _day(FIRST_VALUE_DATE, LAST_VALUE_DATE, self.rng)
            self.out.bank_lines.append({"bank": bank, "serial": f"{bank.upper()}{day:%Y%m%d}{self.seq['serial'][bank]:06d}",
                                        "date": day, "amount": self.rng.randint(10_000, 5_000_000), "direction": "debit",
                                        "payer_name": self.rng.choice(("国家税务总局上海市税务局", "上海电力公司", "员工工资代发")),
                                        "payer_account": str(self.rng.randint(10**15, 10**16 - 1)), "memo": "支付",
                                        "our_account": OUR_ACCOUNTS[bank]})


def customers_of(ds: Any) -> list[dict[str, Any]]:
    """U8 customers that can pay: one U8 row per company (a company entered twice in U8 shares
    its bank account and name key between two codes, so no payer evidence could pick one)."""
    rows = {r["cCusCode"]: r for r in ds.u8_rows}
    per_company: dict[str, int] = {}
    for t in ds.u8_truth:
        per_company[t["company_id"]] = per_company.get(t["company_id"], 0) + 1
    by_id = {c.company_id: c for c in ds.companies}
    owners = {str(a["id"]): a["ownerId"] for a in ds.accounts}
    out = []
    for t in ds.u8_truth:
        if per_company[t["company_id"]] != 1 or t["fault"] == "u8_duplicate":
            continue
        c, row = by_id[t["company_id"]], rows[t["u8_code"]]
        crm_id = t["crm_ids"][0] if t["crm_ids"] else None
        out.append({"code": t["u8_code"], "name": c.name, "abbr": c.abbr, "account": row["cCusAccount"],
                    "crm_id": crm_id, "owner": owners.get(crm_id) if crm_id else None, "company_id": c.company_id})
    return out


def generate(ds: Any, seed: int) -> Receipts:
    """The whole receipts world for the customers of ``ds`` (no I/O)."""
    rng = random.Random(f"receipts-{seed}")
    customers = customers_of(ds)
    b = _Builder(rng, customers)
    plan_base = max((int(a["id"]) for a in ds.accounts), default=0) + 10_000_000
    insts_all: list[dict[str, Any]] = []
    for cust in customers:
        cust["plan_base"] = plan_base
        insts = [i for _ in range(rng.choice((1, 1, 2))) for i in b.contract(cust)]
        insts_all.extend(insts)
        invoiced = [i for i in insts if i["invoice"]]
        names, weights = zip(*STORIES.items())
        todo = list(invoiced)
        rng.shuffle(todo)
        while todo:
            inst = todo.pop()
            kind = rng.choices(names, weights)[0]
            partners: list[dict[str, Any]] = []
            if kind in ("multi", "u8_receipt"):
                want = rng.choice((1, 2)) if kind == "multi" else rng.choice((0, 0, 1))
                partners = [todo.pop() for _ in range(min(want, len(todo)))]
                if kind == "multi" and not partners:
                    kind = "account_exact"
            if kind == "unpaid":
                continue
            b.story(cust, inst, kind, partners)
        by_order: dict[str, list[dict[str, Any]]] = {}
        for i in insts:
            by_order.setdefault(i["order_no"], []).append(i)
        for order_insts in by_order.values():
            open_insts = [i for i in order_insts if not i["invoice"]]
            if (cust.get("crm_id") and len(open_insts) == 1 and len(order_insts) > 1
                    and rng.random() < PREPAY_SHARE):
                b.prepay(cust, open_insts[0], open_insts[0]["amount"])
    credits = len(b.truth)
    b.unknown(max(1, round(credits * UNKNOWN_PAYER_SHARE)), [
        "深圳市前海微众商贸有限公司", "杭州云栖数据服务有限公司", "个人 王建国", "苏州工业园区恒泰物流有限公司",
        "北京中关村创新科技有限公司", "广州天河区美佳贸易商行"])
    b.debits(round(credits * DEBIT_SHARE))
    for cust_inst in insts_all:
        cust_inst.pop("customer", None)
    b.out.truth = _truth(b, insts_all)
    rng.shuffle(b.out.bank_lines)
    return b.out


def _truth(b: _Builder, insts: list[dict[str, Any]]) -> dict[str, Any]:
    """What a correct reconciliation ends with: per receipt, per plan instalment."""
    plans = []
    paid_by_order: dict[str, int] = {}
    for inst in insts:
        key = f"invoice:{inst['invoice']['cSBVCode']}" if inst["invoice"] else None
        if key:
            paid_by_order[inst["order_no"]] = paid_by_order.get(inst["order_no"], 0) + b.paid.get(key, 0)
    for order_no in {i["order_no"] for i in insts}:
        paid_by_order[order_no] = paid_by_order.get(order_no, 0) + b.paid.get(f"order:{order_no}", 0)
    by_order: dict[str, list[dict[str, Any]]] = {}
    for inst in insts:
        by_order.setdefault(inst["order_no"], []).append(inst)
    for order_no, group in by_order.items():
        left = paid_by_order.get(order_no, 0)
        for inst in sorted(group, key=lambda i: (i["due"], i["stage"])):
            got = min(left, inst["amount"])
            left -= got
            if "plan_id" in inst:
                plans.append({"crm_id": str(inst["plan_id"]), "order_no": order_no, "stage": inst["stage"],
                              "due": inst["due"].isoformat(), "amount": inst["amount"], "received": got,
                              "overdue": inst["due"] < AS_OF and got < inst["amount"]})
    counts: dict[str, int] = {}
    for t in b.truth:
        counts[t["story"]] = counts.get(t["story"], 0) + 1
    return {"meta": {"as_of": AS_OF.isoformat(), "receipts": len(b.truth), "stories": dict(sorted(counts.items())),
                     "invoices": len(b.out.invoices), "u8_receipts": len(b.out.u8_receipts), "plans": len(b.out.plans),
                     "bank_lines": len(b.out.bank_lines),
                     "debit_lines": sum(1 for line in b.out.bank_lines if line["direction"] == "debit"),
                     "fee_tolerance_fen": 2000},
            "receipts": b.truth, "plans": plans,
            "invoices": [{"doc_no": i["cSBVCode"], "customer": i["cCusCode"], "order_no": i["cSOCode"],
                          "amount": i["_amount"]} for i in b.out.invoices]}


# -- writing ----------------------------------------------------------------------------------

def _insert(conn: Any, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cols = [c for c in rows[0] if not c.startswith("_") and c != "lines"]
    conn.executemany(f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                     f'VALUES ({", ".join("?" * len(cols))})', ([r.get(c) for c in cols] for r in rows))


def write(rec: Receipts, directory: Any) -> None:
    """Invoices and 收款单 into ``u8.db``, plans into ``crm.db``, statements into ``bank_inbox/``,
    ``receipts_truth.json``. Also two 付款单 (cFlag AP) a receipts reader must leave alone."""
    import json
    import sqlite3
    from pathlib import Path

    from . import bank_files, crm_schema

    directory = Path(directory)
    u8 = sqlite3.connect(directory / "u8.db")
    try:
        _insert(u8, "SaleBillVouch", rec.invoices)
        _insert(u8, "SaleBillVouchs", [line for inv in rec.invoices for line in inv["lines"]])
        base = max((r["iID"] for r in rec.u8_receipts), default=0)
        payments = [{**rec.u8_receipts[0], "iID": base + k, "cVouchType": "49", "cFlag": "AP",
                     "cVouchID": f"F{k:09d}", "lines": []} for k in (1, 2)] if rec.u8_receipts else []
        _insert(u8, "Ap_CloseBill", rec.u8_receipts + payments)
        _insert(u8, "Ap_CloseBills", [line for r in rec.u8_receipts for line in r["lines"]])
        u8.commit()
    finally:
        u8.close()
    crm = sqlite3.connect(directory / "crm.db")
    try:
        crm_schema.create_tables(crm)
        cols = crm_schema.field_order("paymentPlan")
        crm.executemany(f'INSERT INTO "paymentPlan" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                        f'VALUES ({", ".join("?" * len(cols))})', ([p.get(c) for c in cols] for p in rec.plans))
        crm_schema.create_indexes(crm)
        crm.commit()
    finally:
        crm.close()
    files = bank_files.write(rec.bank_lines, OUR_ACCOUNTS, directory)
    truth = dict(rec.truth)
    truth["meta"] = {**truth["meta"], "bank_files": [p.name for p in files], "our_accounts": OUR_ACCOUNTS,
                     "bad_lines": [{"bank": "cmb", "serial": bank_files.BAD_SERIAL, "amount": bank_files.BAD_AMOUNT}]}
    (directory / "receipts_truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1, default=str) + "\n",
                                                   encoding="utf-8")
