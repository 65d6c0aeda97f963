"""用友 U8 OpenAPI stand-in for 收款单: ``POST /api/accept/add`` (apiCenter accept_add).

The real API (open.yonyouup.com/apiCenter/accept_add, "新增一张收款单", U8 V12.0+): URL
parameters as every call plus ``biz_id`` / ``tradeid``; body ``{"accept": {...}}`` with the
header ``vouchcode, vouchdate, period, vouchtype (48 收款单 / 49 付款单), customercode,
departmentcode, personcode, amount (本币), originalamount (原币), foreigncurrency, currencyrate,
operator (录入人), flag (AR), digest (摘要), balancecode (结算方式), balanceitemcode, itemcode,
oppositebankname, oppositebankcode, bankname, bankaccount, define1..define16`` and its lines in
``entry``: ``type`` (款项类型 0 应收款 / 1 预收款 / 2 其他费用), ``customercode``, ``amount``,
``originalamount``, ``iamt_s`` (数量), ... (protocol notes U2: a public schema marks ``entry``
required and a list; the documentation's sample sends one line as an object: both are taken).
Answer ``{"errcode": "0", "errmsg": "", "id": "", "tradeid": ..., "url": ...}`` (u8_app.Trades).

A 收款单 lands in ``Ap_CloseBill`` (cFlag AR, cVouchType 48) with one ``Ap_CloseBills`` row per
``entry`` line, as given: a body without ``entry``, or whose lines do not add up to its amount,
is refused (40001).

Ours, not U8's: the public API has no 核销 call, so the hub writes the write-off link into the
receipt's ``define11`` (``<invoice no>=<amount>;…``) and this stand-in applies it at once, as
finance's 核销 in U8 would: ``SaleBillVouchs.iMoneySum`` goes up line by line and the
unsettled ``iRAmt_s`` of the 应收 lines goes down (the link may take no more than they hold).
``sandbox_accept`` keeps the body by biz_id (the platform's idempotency register), so a repeated
add answers the same 收款单 and changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .u8_store import BAD_FIELD, NOT_FOUND, U8Error, entity_body

LINK_FIELD = "define11"
HEAD_FIELDS = frozenset({
    "vouchcode", "vouchdate", "period", "vouchtype", "customercode", "customername", "customerabbname",
    "departmentcode", "departmentname", "personcode", "personname", "amount", "originalamount", "foreigncurrency",
    "currencyrate", "operator", "flag", "digest", "balancecode", "balancename", "balanceitemcode", "itemclasscode",
    "itemcode", "itemname", "orderid", "notecode", "sitemcode", "oppositebankname", "oppositebankcode", "bankname",
    "bankaccount", "checkman", "ccontracttype", "ccontractid", "iamount_s", "startflag", "entry",
    *(f"define{i}" for i in range(1, 17)),
})
ENTRY_FIELDS = frozenset({
    "mainid", "type", "customercode", "originalamount", "amount", "itemcode", "projectclass", "project",
    "departmentcode", "personcode", "orderid", "itemname", "ccontype", "cconid", "iamt_s", "iramt_s", "digest",
    *(f"define{i}" for i in range(22, 38)),
})
#: 款项类型 of a line (the public schema: 0 应收款, 1 预收款, 2 其他费用).
LINE_TYPES = {"0": "应收款", "1": "预收款", "2": "其他费用"}
TEXT_LIMITS = {"digest": 120, "oppositebankname": 98, "oppositebankcode": 50, LINK_FIELD: 120, "vouchcode": 30}


def _money(name: str, value: Any) -> Decimal:
    try:
        dec = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise U8Error(BAD_FIELD, f"{name}: {value!r} is not a number") from None
    if dec <= 0 or dec != dec.quantize(Decimal("0.01")):
        raise U8Error(BAD_FIELD, f"{name}: {value!r} must be positive with at most two decimals")
    return dec


def _quantity(name: str, value: Any) -> Decimal:
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise U8Error(BAD_FIELD, f"{name}: {value!r} is not a number") from None


def _link(text: str) -> list[tuple[str, Decimal]]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        code, _, amount = part.partition("=")
        if not code or not amount:
            raise U8Error(BAD_FIELD, f"{LINK_FIELD}: {part!r} is not <invoice no>=<amount>")
        out.append((code.strip(), _money(LINK_FIELD, amount)))
    return out


class AcceptStore:
    """收款单 writes into ``Ap_CloseBill(s)`` of ``u8.db``, with the write-off by the link field."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.execute("CREATE TABLE IF NOT EXISTS sandbox_accept (biz_id TEXT PRIMARY KEY NOT NULL, "
                          "iID INTEGER NOT NULL, code TEXT NOT NULL, body TEXT NOT NULL, created TEXT NOT NULL)")
        self.lock = threading.Lock()

    def _check(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise U8Error(BAD_FIELD, 'body must be {"accept": {...}}')
        unknown = sorted(set(body) - HEAD_FIELDS)
        if unknown:
            raise U8Error(BAD_FIELD, f"unknown field(s): {', '.join(unknown)}")
        for name, limit in TEXT_LIMITS.items():
            if body.get(name) is not None and len(str(body[name])) > limit:
                raise U8Error(BAD_FIELD, f"{name} is {len(str(body[name]))} characters, at most {limit} allowed")
        if str(body.get("vouchtype") or "48") != "48":
            raise U8Error(BAD_FIELD, "vouchtype: this stand-in takes 收款单 (48) only")
        if str(body.get("flag") or "AR") != "AR":
            raise U8Error(BAD_FIELD, "flag: a 收款单 of 应收 is AR")
        if str(body.get("foreigncurrency") or "人民币") != "人民币" or _quantity("currencyrate", body.get("currencyrate") or 1) != 1:
            raise U8Error(BAD_FIELD, "foreigncurrency / currencyrate: this account books 人民币 at rate 1 only")
        if not body.get("customercode"):
            raise U8Error(BAD_FIELD, "customercode is required")
        if body.get("amount") is None and body.get("originalamount") is None:
            raise U8Error(BAD_FIELD, "amount is required")
        return body

    def _lines(self, head: dict[str, Any], amount: Decimal) -> list[dict[str, Any]]:
        """The ``entry`` lines, checked: each with a known type and a positive amount, together
        the header's amount."""
        entry = head.get("entry")
        lines = [entry] if isinstance(entry, dict) else entry
        if not isinstance(lines, list) or not lines:
            raise U8Error(BAD_FIELD, "entry (the 收款单 lines: type, customercode, amount) is required")
        out = []
        for n, line in enumerate(lines):
            if not isinstance(line, dict):
                raise U8Error(BAD_FIELD, f"entry[{n}] must be an object")
            unknown = sorted(set(line) - ENTRY_FIELDS)
            if unknown:
                raise U8Error(BAD_FIELD, f"entry[{n}]: unknown field(s): {', '.join(unknown)}")
            kind = str(line.get("type", ""))
            if kind not in LINE_TYPES:
                raise U8Error(BAD_FIELD, f"entry[{n}].type: {line.get('type')!r} is not 0 应收款, 1 预收款 or 2 其他费用")
            amt = _money(f"entry[{n}].amount", line.get("amount"))
            if line.get("originalamount") is not None and _money(f"entry[{n}].originalamount",
                                                                 line["originalamount"]) != amt:
                raise U8Error(BAD_FIELD, f"entry[{n}]: originalamount differs from amount at rate 1")
            if line.get("iamt_s") is not None:
                _quantity(f"entry[{n}].iamt_s", line["iamt_s"])
            out.append({**line, "type": int(kind), "amount": amt,
                        "customercode": str(line.get("customercode") or head["customercode"])})
        total = sum((line["amount"] for line in out), Decimal(0))
        if total != amount:
            raise U8Error(BAD_FIELD, f"entry: the lines add up to {total}, the header's amount is {amount}")
        return out

    def add(self, body: Any, biz_id: str | None) -> str:
        with self.lock:
            if biz_id:
                row = self.conn.execute("SELECT code FROM sandbox_accept WHERE biz_id = ?", (biz_id,)).fetchone()
                if row:
                    return row[0]
            head = self._check(body)
            amount = _money("amount", head.get("amount") if head.get("amount") is not None else head["originalamount"])
            lines = self._lines(head, amount)
            links = _link(str(head.get(LINK_FIELD) or ""))
            linked = sum((a for _, a in links), Decimal(0))
            receivable = sum((line["amount"] for line in lines if line["type"] == 0), Decimal(0))
            if linked > receivable:
                raise U8Error(BAD_FIELD, f"{LINK_FIELD}: write-off {linked} exceeds the 应收款 lines ({receivable})")
            customer = str(head["customercode"])
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                if not self.conn.execute("SELECT 1 FROM Customer WHERE cCusCode = ?", (customer,)).fetchone():
                    raise U8Error(NOT_FOUND, f"customer {customer} does not exist")
                iid = (self.conn.execute("SELECT MAX(iID) FROM Ap_CloseBill").fetchone()[0] or 0) + 1
                code = str(head.get("vouchcode") or f"{iid:010d}")
                date = str(head.get("vouchdate") or datetime.now().strftime("%Y-%m-%d"))[:10] + " 00:00:00.000"
                prepay = all(line["type"] == 1 for line in lines)
                self.conn.execute(
                    "INSERT INTO Ap_CloseBill (iID, cVouchType, cVouchID, dVouchDate, cDwCode, cDeptCode, cPerson, "
                    "cFlag, cSSCode, cCode, cexch_name, iExchRate, iAmount, iAmount_f, cNoteNo, cSrcFlag, iType, bPrePay) "
                    "VALUES (?, '48', ?, ?, ?, ?, ?, 'AR', ?, ?, '人民币', 1, ?, ?, ?, 'OpenAPI', ?, ?)",
                    (iid, code, date, customer, head.get("departmentcode"), head.get("personcode"),
                     head.get("balancecode"), head.get("balanceitemcode"), float(amount), float(amount),
                     head.get("oppositebankcode"), 1 if prepay else 0, 1 if prepay else 0))
                first = (self.conn.execute("SELECT MAX(ID) FROM Ap_CloseBills").fetchone()[0] or 0) + 1
                left = linked  # the write-off settles the 应收款 lines in their order
                for n, line in enumerate(lines):
                    amt = line["amount"]
                    settled = min(amt, left) if line["type"] == 0 else Decimal(0)
                    left -= settled
                    self.conn.execute(
                        "INSERT INTO Ap_CloseBills (ID, iID, iType, bPrePay, cCusVen, iAmt, iAmt_f, iRAmt, iRAmt_f, "
                        "iRAmt_s, cKm, cXm, cDepCode, cPersonCode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (first + n, iid, line["type"], 1 if line["type"] == 1 else 0, line["customercode"], float(amt),
                         float(amt), float(amt), float(amt), float(amt - settled), line.get("itemcode"),
                         line.get("project"), line.get("departmentcode"), line.get("personcode")))
                for invoice, amt in links:
                    self._write_off(customer, invoice, amt)
                self.conn.execute("INSERT INTO sandbox_accept (biz_id, iID, code, body, created) VALUES (?, ?, ?, ?, ?)",
                                  (biz_id or uuid.uuid4().hex, iid, code, json.dumps(head, ensure_ascii=False),
                                   datetime.now().isoformat()))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return code

    def _write_off(self, customer: str, invoice: str, amount: Decimal) -> None:
        """核销 one invoice: fill its lines' iMoneySum (累计收款核销) in line order."""
        head = self.conn.execute("SELECT SBVID FROM SaleBillVouch WHERE cSBVCode = ? AND cCusCode = ?",
                                 (invoice, customer)).fetchone()
        if head is None:
            raise U8Error(BAD_FIELD, f"{LINK_FIELD}: invoice {invoice} of customer {customer} does not exist")
        left = amount
        for auto_id, total, done in self.conn.execute(
                "SELECT AutoID, iSum, COALESCE(iMoneySum, 0) FROM SaleBillVouchs WHERE SBVID = ? ORDER BY AutoID",
                (head[0],)).fetchall():
            room = Decimal(str(total)) - Decimal(str(done))
            take = min(room, left)
            if take > 0:
                self.conn.execute("UPDATE SaleBillVouchs SET iMoneySum = ? WHERE AutoID = ?",
                                  (float(Decimal(str(done)) + take), auto_id))
                left -= take
        if left > 0:
            raise U8Error(BAD_FIELD, f"{LINK_FIELD}: invoice {invoice} has less than {amount} open")


def register(app: FastAPI, gate: Any, trades: Any, directory: Path, fail: Callable[[U8Error], JSONResponse]) -> None:
    """Add ``/api/accept/add`` to the U8 app (``gate`` checks token and account parameters,
    ``trades.accept`` answers the add with its result url)."""
    store = AcceptStore(directory / "u8.db")

    @app.post("/api/accept/add")
    async def accept_add(request: Request) -> JSONResponse:
        p = dict(request.query_params)
        try:
            gate.check(p)
            head = entity_body(await request.body(), "accept")
            return await trades.accept(request, p, lambda: store.add(head, p.get("biz_id") or None))
        except U8Error as exc:
            return fail(exc)
