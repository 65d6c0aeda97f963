"""用友 U8 OpenAPI sales orders (销售订单) and the warehouse that ships them, for the stand-in.

Endpoints (mounted on the U8 app by :func:`mount`), named as the platform names them
(apiCenter saleorder: add, get, verify, close; there is no edit or delete):

- ``POST /api/saleorder/add?…&biz_id=…&tradeid=…``, body ``{"saleorder": {…, "entry": [{…}, …]}}``
  → ``{"errcode": "0", "id": "", "tradeid": "…", "url": "…"}``; the url answers
  ``{"errcode": "0", "id": "<cSOCode>"}`` (u8_app.Trades); a ``biz_id`` seen before answers
  the order it created then and changes nothing.
- ``GET /api/saleorder/get?…&id=<cSOCode>`` → ``{"saleorder": {…, "entry": […]}}``.
- ``POST /api/saleorder/verify`` and ``/api/saleorder/close?…&tradeid=…``, body
  ``{"saleorder": {"voucher_code": "<cSOCode>", "user_id": …}}``: ``cVerifier`` / ``cCloser`` is
  the user logged in with ``user/login_v2`` under that tradeid, else the EAI default user;
  closing a closed order answers "0" (ours).

Sandbox control (``/__sandbox/u8/ship``, POST): the warehouse verifies and ships the orders
whose CRM order number (``cDefine11``) has a plan in ``orders_plan.json``: one stage of the
plan per call (full, partial, the rest of a two-stage plan), as ``DispatchList`` /
``DispatchLists`` rows linked to the order rows by ``iSOsID``, with ``iFHQuantity`` raised on
the order rows the way U8 does when a dispatch is saved.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from . import u8_schema
from .u8_store import BAD_FIELD, NOT_FOUND, U8Error, entity_body

NO_CUSTOMER = "40004"    # ours: custcode names no customer
NO_INVENTORY = "40005"   # ours: inventorycode names no sellable inventory
API_USER = "openapi"     # the EAI default user: voucher actions without user/login_v2 run as it
FEN = Decimal("0.01")

HEADER: dict[str, str] = {
    "code": "cSOCode", "date": "dDate", "businesstype": "cBusType", "typecode": "cSTCode", "custcode": "cCusCode",
    "deptcode": "cDepCode", "personcode": "cPersonCode", "memo": "cMemo", "maker": "cMaker", "taxrate": "iTaxRate",
    "sendaddress": "cCusOAddress", "ccusperson": "ccusperson", "dpredatebt": "dPreDateBT",
    "dpremodatebt": "dPreMoDateBT", **{f"define{i}": f"cDefine{i}" for i in range(1, 17)},
}
ENTRY: dict[str, str] = {
    "inventorycode": "cInvCode", "quantity": "iQuantity", "num": "iNum", "quotedprice": "iQuotedPrice",
    "unitprice": "iUnitPrice", "taxunitprice": "iTaxUnitPrice", "money": "iMoney", "tax": "iTax", "sum": "iSum",
    "discount": "iDisCount", "taxrate": "iTaxRate", "rowno": "iRowNo", "bgift": "bgift", "unitcode": "cUnitID",
    "dpredate": "dPreDate", **{f"define{i}": f"cDefine{i}" for i in range(22, 38)},
}
#: Secondary indexes the order and dispatch lookups need.
INDEXES = (("SO_SOMain", "cSOCode"), ("SO_SOMain", "cDefine11"), ("SO_SODetails", "cSOCode"),
           ("SO_SODetails", "iSOsID"), ("SO_SODetails", "ID"), ("DispatchList", "cSOCode"),
           ("DispatchLists", "DLID"), ("DispatchLists", "iSOsID"))
NUMERIC_ENTRY = {"quantity", "num", "quotedprice", "unitprice", "taxunitprice", "money", "tax", "sum", "discount",
                 "taxrate", "rowno", "bgift"}


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _dec(field: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise U8Error(BAD_FIELD, f"{field}: expected a number")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise U8Error(BAD_FIELD, f"{field}: {value!r} is not a number") from None


def _fen(d: Decimal) -> Decimal:
    return d.quantize(FEN, rounding=ROUND_HALF_UP)


class SaleOrderStore:
    """``SO_SOMain`` / ``SO_SODetails`` / ``DispatchList(s)`` of ``u8.db``; thread-safe.

    Ids come from counters kept in memory (read once from the tables), as U8 allocates them
    from ``UA_Identity``: no MAX() scan per order.
    """

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        u8_schema.create_all(self.conn)
        for table, column in INDEXES:  # as a real UFDATA has them: no table scan per order
            self.conn.execute(f'CREATE INDEX IF NOT EXISTS "ix_{table}_{column}" ON "{table}" ("{column}")')
        self.lock = threading.Lock()
        one = lambda sql: self.conn.execute(sql).fetchone()[0] or 0  # noqa: E731
        self.next = {"so": one("SELECT MAX(ID) FROM SO_SOMain") + 1,
                     "sos": max(one("SELECT MAX(iSOsID) FROM SO_SODetails"), one("SELECT MAX(AutoID) FROM SO_SODetails")) + 1,
                     "dl": one("SELECT MAX(DLID) FROM DispatchList") + 1,
                     "dls": max(one("SELECT MAX(iDLsID) FROM DispatchLists"), one("SELECT MAX(AutoID) FROM DispatchLists")) + 1}
        self.lengths = {**u8_schema.max_lengths("SO_SOMain"), **u8_schema.max_lengths("SO_SODetails")}

    def _take(self, name: str) -> int:
        value = self.next[name]
        self.next[name] = value + 1
        return value

    # -- add ----------------------------------------------------------------------------------------
    def _text(self, field: str, column: str, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise U8Error(BAD_FIELD, f"{field}: expected a string")
        text = str(value)
        limit = self.lengths.get(column)
        if limit is not None and len(text) > limit:
            raise U8Error(BAD_FIELD, f"{field} ({column}) is {len(text)} characters, at most {limit} allowed")
        return text

    def _header(self, order: Any) -> dict[str, Any]:
        if not isinstance(order, dict):
            raise U8Error(BAD_FIELD, 'body must be {"saleorder": {...}}')
        unknown = sorted(set(order) - set(HEADER) - {"entry"})
        if unknown:
            raise U8Error(BAD_FIELD, f"unknown field(s): {', '.join(unknown)}")
        for name in ("typecode", "custcode", "deptcode"):
            if not str(order.get(name) or "").strip():
                raise U8Error(BAD_FIELD, f"{name} is required")
        values = {HEADER[k]: (str(_dec(k, v)) if k == "taxrate" and v is not None else self._text(k, HEADER[k], v))
                  for k, v in order.items() if k != "entry"}
        entries = order.get("entry")
        if not isinstance(entries, list) or not entries:
            raise U8Error(BAD_FIELD, "entry (the order lines) is required")
        return values

    def _entry(self, row: Any, n: int) -> dict[str, Any]:
        if not isinstance(row, dict):
            raise U8Error(BAD_FIELD, f"entry[{n}] must be an object")
        unknown = sorted(set(row) - set(ENTRY))
        if unknown:
            raise U8Error(BAD_FIELD, f"entry[{n}]: unknown field(s): {', '.join(unknown)}")
        for name in ("inventorycode", "quantity", "rowno"):
            if row.get(name) in (None, ""):
                raise U8Error(BAD_FIELD, f"entry[{n}].{name} is required")
        out: dict[str, Any] = {}
        for k, v in row.items():
            if v is None:
                continue
            out[ENTRY[k]] = _dec(f"entry[{n}].{k}", v) if k in NUMERIC_ENTRY else self._text(k, ENTRY[k], v)
        if all(c in out for c in ("iMoney", "iTax", "iSum")) and out["iMoney"] + out["iTax"] != out["iSum"]:
            raise U8Error(BAD_FIELD, f"entry[{n}]: money + tax ≠ sum ({out['iMoney']} + {out['iTax']} ≠ {out['iSum']})")
        if out["iQuantity"] == 0:
            raise U8Error(BAD_FIELD, f"entry[{n}].quantity may not be 0")
        return out

    def add(self, order: Any, biz_id: str | None) -> str:
        """Create an order with its rows; a repeated ``biz_id`` answers the code it created before."""
        with self.lock:
            if biz_id:
                row = self.conn.execute("SELECT code FROM sandbox_bizid WHERE biz_id = ?", (biz_id,)).fetchone()
                if row:
                    return row[0]
            head = self._header(order)
            rows = [self._entry(r, i) for i, r in enumerate(order["entry"])]
            customer = self.conn.execute("SELECT cCusName FROM Customer WHERE cCusCode = ?",
                                         (head["cCusCode"],)).fetchone()
            if customer is None:
                raise U8Error(NO_CUSTOMER, f"客户 {head['cCusCode']} 不存在 (no such customer)")
            codes = sorted({r["cInvCode"] for r in rows})
            marks = ", ".join("?" * len(codes))
            names = dict(self.conn.execute(
                f"SELECT cInvCode, cInvName FROM Inventory WHERE cInvCode IN ({marks}) AND bSale = 1 "
                f"AND (dEDate IS NULL OR dEDate > ?)", [*codes, _now()]).fetchall())
            missing = [c for c in codes if c not in names]
            if missing:
                raise U8Error(NO_INVENTORY, f"存货 {', '.join(missing)} 不存在或不可销售 (no such sellable inventory)")
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                order_id = self._take("so")
                code = head.get("cSOCode") or f"{order_id:010d}"
                if self.conn.execute("SELECT 1 FROM SO_SOMain WHERE cSOCode = ?", (code,)).fetchone():
                    raise U8Error("40002", f"sale order code {code} already exists")
                now = _now()
                head.update(ID=order_id, cSOCode=code, cCusName=customer[0], cexch_name="人民币", iExchRate=1,
                            cMaker=head.get("cMaker") or API_USER, dcreatesystime=now, bReturnFlag=0,
                            cBusType=head.get("cBusType") or "普通销售", dDate=head.get("dDate") or now[:10],
                            iMoney=str(sum((r.get("iMoney", Decimal(0)) for r in rows), Decimal(0))))
                self._insert("SO_SOMain", head)
                for r in rows:
                    sos = self._take("sos")
                    r.update(AutoID=sos, iSOsID=sos, ID=order_id, cSOCode=code, cInvName=names[r["cInvCode"]],
                             iNatUnitPrice=r.get("iUnitPrice"), iNatMoney=r.get("iMoney"), iNatTax=r.get("iTax"),
                             iNatSum=r.get("iSum"), iNatDisCount=r.get("iDisCount"), iFHQuantity=0, iFHMoney=0)
                    self._insert("SO_SODetails", {k: (str(v) if isinstance(v, Decimal) else v) for k, v in r.items()})
                    self._stock(r["cInvCode"], Decimal(0), Decimal(str(r.get("iQuantity") or 0)))
                if biz_id:
                    self.conn.execute("INSERT INTO sandbox_bizid (biz_id, code, created) VALUES (?, ?, ?)",
                                      (biz_id, code, now))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return code

    def _stock(self, inv: str, on_hand: Decimal, reserved: Decimal) -> None:
        """Move 现存量 of ``inv`` in 01 主仓 (its unbatched row; made when missing, services have none):
        on hand (iQuantity) and to be shipped (fOutQuantity), 可用量 kept as on hand − to ship − frozen.
        Inside the caller's transaction."""
        if not on_hand and not reserved:
            return
        if self.conn.execute("SELECT 1 FROM Inventory WHERE cInvCode = ? AND bService = 1", (inv,)).fetchone():
            return
        row = self.conn.execute("SELECT AutoID FROM CurrentStock WHERE cInvCode = ? AND cWhCode = '01' AND cBatch = '' "
                                "ORDER BY AutoID LIMIT 1", (inv,)).fetchone()
        if row is None:
            auto = (self.conn.execute("SELECT MAX(AutoID) FROM CurrentStock").fetchone()[0] or 0) + 1
            self._insert("CurrentStock", {"AutoID": auto, "cWhCode": "01", "cInvCode": inv, "iQuantity": 0,
                                          "fOutQuantity": 0, "fStopQuantity": 0, "fAvaQuantity": 0})
            row = (auto,)
        self.conn.execute(
            "UPDATE CurrentStock SET iQuantity = COALESCE(iQuantity, 0) + ?, fOutQuantity = COALESCE(fOutQuantity, 0) + ?, "
            "fAvaQuantity = COALESCE(iQuantity, 0) + ? - COALESCE(fOutQuantity, 0) - ? - COALESCE(fStopQuantity, 0) "
            "WHERE AutoID = ?", (str(on_hand), str(reserved), str(on_hand), str(reserved), row[0]))

    def _insert(self, table: str, values: dict[str, Any]) -> None:
        cols = list(values)
        self.conn.execute(f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                          f'VALUES ({", ".join("?" * len(cols))})', [values[c] for c in cols])

    # -- get / verify / close ------------------------------------------------------------------
    def get(self, code: str) -> dict[str, Any]:
        with self.lock:
            self.conn.row_factory = sqlite3.Row
            try:
                head = self.conn.execute("SELECT * FROM SO_SOMain WHERE cSOCode = ?", (code,)).fetchone()
                rows = self.conn.execute("SELECT * FROM SO_SODetails WHERE cSOCode = ? ORDER BY iRowNo", (code,)).fetchall()
            finally:
                self.conn.row_factory = None
        if head is None:
            raise U8Error(NOT_FOUND, f"sale order {code} does not exist")
        out = {k: head[c] for k, c in HEADER.items() if head[c] is not None}
        out.update(verifier=head["cVerifier"], closer=head["cCloser"], entry=[
            {**{k: r[c] for k, c in ENTRY.items() if r[c] is not None}, "fhquantity": r["iFHQuantity"],
             "isosid": r["iSOsID"]} for r in rows])
        return out

    def _voucher(self, order: Any) -> str:
        if not isinstance(order, dict) or not str(order.get("voucher_code") or "").strip():
            raise U8Error(BAD_FIELD, "voucher_code is required")
        return str(order["voucher_code"])

    def verify(self, order: Any, person: str = API_USER) -> None:
        code = self._voucher(order)
        with self.lock:
            cur = self.conn.execute("UPDATE SO_SOMain SET cVerifier = COALESCE(cVerifier, ?), "
                                    "dverifydate = COALESCE(dverifydate, ?) WHERE cSOCode = ?", (person, _now()[:10], code))
            if cur.rowcount == 0:
                raise U8Error(NOT_FOUND, f"sale order {code} does not exist")

    def close(self, order: Any, person: str = API_USER) -> None:
        """关闭: the order and its open rows take no more dispatches (closing twice is no error)."""
        code = self._voucher(order)
        with self.lock:
            row = self.conn.execute("SELECT cCloser FROM SO_SOMain WHERE cSOCode = ?", (code,)).fetchone()
            if row is None:
                raise U8Error(NOT_FOUND, f"sale order {code} does not exist")
            if row[0]:
                return
            now = _now()
            self.conn.execute("BEGIN IMMEDIATE")
            for inv, ordered, shipped in self.conn.execute(
                    "SELECT cInvCode, iQuantity, iFHQuantity FROM SO_SODetails WHERE cSOCode = ? AND cSCloser IS NULL",
                    (code,)).fetchall():
                left = Decimal(str(ordered)) - Decimal(str(shipped or 0))
                if left > 0:
                    self._stock(inv, Decimal(0), -left)   # what was still to ship is no longer reserved
            self.conn.execute("UPDATE SO_SOMain SET cCloser = ?, dclosedate = ?, dclosesystime = ? WHERE cSOCode = ?",
                              (person, now[:10], now, code))
            self.conn.execute("UPDATE SO_SODetails SET cSCloser = ?, dbclosedate = ? WHERE cSOCode = ? "
                              "AND cSCloser IS NULL", (person, now[:10], code))
            self.conn.execute("COMMIT")

    # -- the warehouse ----------------------------------------------------------------------------
    def ship(self, plan: dict[str, Any], unplanned: str | None = None) -> dict[str, int]:
        """One stage of every planned order still open: verify, then dispatch (see module doc).
        ``unplanned`` (``full`` or ``two_stage``): orders the plan does not name (a shop's orders,
        numbered by the platform) ship too, by 顺丰 (01) with a tracking number of their own."""
        counts = {"verified": 0, "dispatches": 0, "rows": 0}
        with self.lock:
            orders = self.conn.execute(
                "SELECT ID, cSOCode, cDefine11, cCusCode, cCusName, cDepCode, cPersonCode, cSTCode, cBusType, "
                "cVerifier, iTaxRate FROM SO_SOMain WHERE cCloser IS NULL AND cDefine11 IS NOT NULL ORDER BY ID").fetchall()
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for o in orders:
                    step = plan.get(o[2])
                    if not step and unplanned in ("full", "two_stage"):
                        step = {"kind": unplanned, "carrier": "01", "serial_seed": 7,
                                "tracking": [f"SF14{o[0]:08d}1", f"SF14{o[0]:08d}2"]}
                    if not step:
                        continue
                    if o[9] is None:
                        self.conn.execute("UPDATE SO_SOMain SET cVerifier = 'demo', dverifydate = ? WHERE ID = ?",
                                          (_now()[:10], o[0]))
                        counts["verified"] += 1
                    done = self.conn.execute("SELECT COUNT(*) FROM DispatchList WHERE cSOCode = ?", (o[1],)).fetchone()[0]
                    stages = {"full": 1, "partial": 1, "two_stage": 2}.get(step["kind"], 0)
                    if done >= stages:
                        continue
                    partial = step["kind"] == "partial" or (step["kind"] == "two_stage" and done == 0)
                    counts["rows"] += self._dispatch(o, step, done, partial)
                    counts["dispatches"] += 1
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return counts

    def _dispatch(self, o: tuple, step: dict[str, Any], stage: int, partial: bool) -> int:
        rows = self.conn.execute(
            "SELECT iSOsID, iRowNo, cInvCode, cInvName, iQuantity, iFHQuantity, iQuotedPrice, iUnitPrice, "
            "iTaxUnitPrice, iTaxRate FROM SO_SODetails WHERE ID = ? ORDER BY iRowNo", (o[0],)).fetchall()
        if not any(min(self._partial(Decimal(str(r[4])), k, len(rows)) if partial else Decimal(str(r[4])) - Decimal(str(r[5] or 0)),
                       Decimal(str(r[4])) - Decimal(str(r[5] or 0))) > 0 for k, r in enumerate(rows)):
            return 0  # nothing of it would ship at this stage: no empty 发货单
        dlid = self._take("dl")
        now = _now()
        tracking = (step.get("tracking") or [""])[min(stage, len(step.get("tracking") or [""]) - 1)]
        self._insert("DispatchList", {
            "DLID": dlid, "cDLCode": f"{dlid:010d}", "cVouchType": "05", "cSTCode": o[7], "dDate": now[:10],
            "cBusType": o[8] or "普通销售", "cDepCode": o[5], "cPersonCode": o[6], "cSOCode": o[1], "cCusCode": o[3],
            "cCusName": o[4], "cexch_name": "人民币", "iExchRate": 1, "iTaxRate": o[10], "cSCCode": step.get("carrier"),
            "cEBExpressCode": tracking or None, "cMaker": "demo", "cVerifier": "demo", "dverifydate": now[:10],
            "bReturnFlag": 0, "dcreatesystime": now, "cMemo": f"销售订单 {o[1]} 第{stage + 1}次发货"})
        written = 0
        for k, r in enumerate(rows):
            ordered, shipped = Decimal(str(r[4])), Decimal(str(r[5] or 0))
            left = ordered - shipped
            qty = self._partial(ordered, k, len(rows)) if partial else left
            qty = min(qty, left)
            if qty <= 0:
                continue
            tax_price = Decimal(str(r[8]))
            total = _fen(qty * tax_price)
            money = _fen(total / (1 + Decimal(str(r[9])) / 100))
            serials = None
            if str(r[2]).startswith("01") and qty == qty.to_integral_value():
                base = step.get("serial_seed", 0) * 100 + int(r[0]) % 997 * 10 + int(shipped)
                serials = ",".join(f"SN{r[2]}{base + i:08d}" for i in range(int(qty)))
            dls = self._take("dls")
            self._insert("DispatchLists", {
                "AutoID": dls, "iDLsID": dls, "DLID": dlid, "irowno": r[1], "cWhCode": "01", "cInvCode": r[2],
                "cInvName": r[3], "iQuantity": str(qty), "iQuotedPrice": r[6], "iUnitPrice": r[7], "iTaxUnitPrice": r[8],
                "iMoney": str(money), "iTax": str(total - money), "iSum": str(total), "iTaxRate": r[9],
                "iSOsID": r[0], "cSoCode": o[1], "cInvSN": serials, "bQAChecked": 0, "bQAChecking": 0,
                "bQANeedCheck": 0, "bQAUrgency": 0, "bcosting": 1})
            self.conn.execute("UPDATE SO_SODetails SET iFHQuantity = ?, iFHMoney = COALESCE(iFHMoney, 0) + ? "
                              "WHERE iSOsID = ?", (str(shipped + qty), str(total), r[0]))
            self._stock(r[2], -qty, -qty)   # goods out of the warehouse, no longer to be shipped
            written += 1
        return written

    def take_back(self, serials: list[str]) -> dict[str, int]:
        """A customer's return of serial-numbered units: one 退货单 (a DispatchList with bReturnFlag 1,
        red: negative quantities) per delivery that shipped them, each line carrying the returned
        serials in cInvSN, the order line's shipped quantity (iFHQuantity) reduced."""
        wanted, counts = set(serials), {"returns": 0, "rows": 0}
        with self.lock:
            rows = self.conn.execute(
                "SELECT l.DLID, l.iSOsID, l.irowno, l.cInvCode, l.cInvName, l.iQuotedPrice, l.iUnitPrice, "
                "l.iTaxUnitPrice, l.iTaxRate, l.cInvSN FROM DispatchLists l JOIN DispatchList h ON h.DLID = l.DLID "
                "WHERE h.bReturnFlag = 0 AND l.cInvSN IS NOT NULL ORDER BY l.DLID, l.AutoID").fetchall()
            by_dispatch: dict[int, list[tuple[tuple, list[str]]]] = {}
            for r in rows:
                hit = [sn for sn in str(r[9]).split(",") if sn in wanted]
                if hit:
                    wanted -= set(hit)
                    by_dispatch.setdefault(r[0], []).append((r, hit))
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for dlid, lines in by_dispatch.items():
                    head = self.conn.execute(
                        "SELECT cSTCode, cBusType, cDepCode, cPersonCode, cSOCode, cCusCode, cCusName, iTaxRate, "
                        "cDLCode FROM DispatchList WHERE DLID = ?", (dlid,)).fetchone()
                    red, now = self._take("dl"), _now()
                    self._insert("DispatchList", {
                        "DLID": red, "cDLCode": f"{red:010d}", "cVouchType": "05", "cSTCode": head[0], "dDate": now[:10],
                        "cBusType": head[1], "cDepCode": head[2], "cPersonCode": head[3], "cSOCode": head[4],
                        "cCusCode": head[5], "cCusName": head[6], "cexch_name": "人民币", "iExchRate": 1,
                        "iTaxRate": head[7], "cMaker": "demo", "cVerifier": "demo", "dverifydate": now[:10],
                        "bReturnFlag": 1, "dcreatesystime": now, "cMemo": f"发货单 {head[8]} 退货"})
                    for r, hit in lines:
                        qty = -Decimal(len(hit))
                        total = _fen(qty * Decimal(str(r[7])))
                        money = _fen(total / (1 + Decimal(str(r[8])) / 100))
                        dls = self._take("dls")
                        self._insert("DispatchLists", {
                            "AutoID": dls, "iDLsID": dls, "DLID": red, "irowno": r[2], "cWhCode": "01", "cInvCode": r[3],
                            "cInvName": r[4], "iQuantity": str(qty), "iQuotedPrice": r[5], "iUnitPrice": r[6],
                            "iTaxUnitPrice": r[7], "iMoney": str(money), "iTax": str(total - money), "iSum": str(total),
                            "iTaxRate": r[8], "iSOsID": r[1], "cSoCode": head[4], "cInvSN": ",".join(hit),
                            "bQAChecked": 0, "bQAChecking": 0, "bQANeedCheck": 0, "bQAUrgency": 0, "bcosting": 1})
                        self.conn.execute("UPDATE SO_SODetails SET iFHQuantity = iFHQuantity + ? WHERE iSOsID = ?",
                                          (str(qty), r[1]))
                        self._stock(r[3], -qty, Decimal(0))   # the units are back on the shelf
                        counts["rows"] += 1
                    counts["returns"] += 1
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return counts | {"unknown": len(wanted)}

    @staticmethod
    def _partial(ordered: Decimal, k: int, n: int) -> Decimal:
        """The first stage of a split delivery: half of the first row (whole units when whole),
        nothing of the others; a first row of one unit ships whole and the rest waits."""
        if k > 0:
            return Decimal(0)
        if ordered == ordered.to_integral_value():
            half = (ordered / 2).quantize(Decimal(1), rounding=ROUND_DOWN)
            return half if half >= 1 else (ordered if n > 1 else Decimal(0))
        return (ordered / 2).quantize(FEN, rounding=ROUND_DOWN)


class WarehouseControl:
    """``POST /__sandbox/u8/ship``: one stage of the warehouse's plan (a ``ControlExtension``)."""

    def __init__(self, store: SaleOrderStore, directory: Path) -> None:
        self.store, self.directory = store, directory
        self.shipped = 0

    def _plan(self) -> dict[str, Any]:
        path = self.directory / "orders_plan.json"
        return json.loads(path.read_text(encoding="utf-8")).get("ship", {}) if path.exists() else {}

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        if path not in ("/__sandbox/u8/ship", "/__sandbox/u8/return"):
            return None
        if method != "POST":
            return 405, {"ok": False, "error": "POST only"}
        asked = json.loads(body or b"{}") if body else {}
        if path.endswith("/return"):
            serials = asked.get("serials") if isinstance(asked, dict) else None
            if not isinstance(serials, list) or not all(isinstance(x, str) for x in serials):
                return 400, {"ok": False, "error": "serials: a list of serial numbers"}
            return 200, {"ok": True, **self.store.take_back(serials)}
        counts = self.store.ship(self._plan(), unplanned=asked.get("unplanned") if isinstance(asked, dict) else None)
        self.shipped += counts["dispatches"]
        return 200, {"ok": True, **counts}

    def stats(self) -> dict[str, Any]:
        return {"warehouse": {"dispatches": self.shipped}}

    def reset(self) -> None:
        self.shipped = 0


def mount(app: FastAPI, directory: Path, check: Callable[[dict[str, str]], None],
          ok: Callable[..., JSONResponse], fail: Callable[[U8Error], JSONResponse], trades: Any) -> WarehouseControl:
    """Add the saleorder endpoints to the U8 app (``check`` is its token and parameter gate,
    ``trades`` its tradeids: ``accept`` answers an add, ``operator`` names who acts)."""
    store = SaleOrderStore(directory / "u8.db")

    async def body_of(request: Request) -> Any:
        return entity_body(await request.body(), "saleorder")

    @app.post("/api/saleorder/add")
    async def add(request: Request) -> JSONResponse:
        p = dict(request.query_params)
        try:
            check(p)
            order = await body_of(request)
            return await trades.accept(request, p, lambda: store.add(order, p.get("biz_id") or None))
        except U8Error as exc:
            return fail(exc)

    @app.get("/api/saleorder/get")
    async def get(request: Request) -> JSONResponse:
        p = dict(request.query_params)
        try:
            check(p)
            if not p.get("id"):
                raise U8Error(BAD_FIELD, "id is required")
            order = await run_in_threadpool(store.get, p["id"])
        except U8Error as exc:
            return fail(exc)
        return ok(saleorder=order)

    def voucher_action(apply: Callable[[Any, str], None]):
        async def act(request: Request) -> JSONResponse:
            p = dict(request.query_params)
            try:
                check(p)
                order = await body_of(request)
                person = trades.operator(p.get("tradeid"), order) or API_USER
                await run_in_threadpool(apply, order, person)
            except U8Error as exc:
                return fail(exc)
            return ok()
        return act

    app.post("/api/saleorder/verify")(voucher_action(store.verify))
    app.post("/api/saleorder/close")(voucher_action(store.close))

    return WarehouseControl(store, directory)
