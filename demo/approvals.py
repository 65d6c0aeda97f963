"""The demo's closing lines about approvals: per kind, the OA requests sent and how they were
decided, and what each decision changed in the CRM and the ERP, checked against the systems
themselves (e-cology's requests, the CRM's order lines, U8's order lines)."""
from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from hub import model, store


def _rows(db: Path, sql: str, *args) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def summary(folder: Path) -> str:
    with store.engine().begin() as conn:
        a = model.approval.c
        rows = conn.execute(select(a.kind, a.subject, a.state, a.superseded, a.request_id)).all()
    if not rows:
        return "approvals: no OA request was needed"
    oa_requests = _rows(folder / "ecology.db", "select count(*), count(distinct requestname) from request")[0]
    out = [f"approvals: {oa_requests[0]} requests in 泛微 e-cology ({oa_requests[1]} distinct titles)"]
    for kind in sorted({r.kind for r in rows}):
        mine = [r for r in rows if r.kind == kind]
        states = Counter("superseded" if r.superseded == "yes" else r.state for r in mine)
        out.append(f"  {kind}: {len(mine)} asked — " + ", ".join(f"{n} {s}" for s, n in states.most_common()))
        approved = [r for r in mine if r.state == "approved" and r.superseded != "yes"]
        out.append("    " + (_special_price(folder, {r.request_id for r in approved}) if kind == "special_price"
                              else _over_credit(folder, {r.subject for r in approved})))
    return "\n".join(out)


def _special_price(folder: Path, approved: set[str]) -> str:
    crm = _rows(folder / "crm.db", 'select specialPriceApproval__c, specialPriceStatus__c from "orderProduct" '
                                   "where specialPriceStatus__c is not null and specialPriceStatus__c != ''")
    shown = Counter(text.split(":")[0] for _, text in crm)
    carried = sum(1 for ref, _ in crm if ref in approved)
    in_u8 = sum(1 for (ref,) in _rows(folder / "u8.db", "select cDefine22 from SO_SODetails where cDefine22 is not null")
                if ref in approved)
    return (f"CRM order lines showing their approval: {len(crm)} (" + ", ".join(f"{n} {k}" for k, n in shown.most_common())
            + f"); {carried} carry the approved request's number; U8 order lines sold at an approved special price: {in_u8}")


def _over_credit(folder: Path, approved_orders: set[str]) -> str:
    crm = _rows(folder / "crm.db", 'select creditApproval__c from "order" where creditApproval__c is not null '
                                   "and creditApproval__c != ''")
    shown = Counter(text.split(":")[0] for (text,) in crm)
    with store.engine().begin() as conn:
        x = model.xref.c
        in_u8 = {h for (h,) in conn.execute(select(x.hub_id).where(x.entity == "sales_order", x.system == "u8",
                                                                   x.hub_id.in_(sorted(approved_orders))))}
    return (f"CRM orders showing their approval: {len(crm)} (" + ", ".join(f"{n} {k}" for k, n in shown.most_common())
            + f"); approved orders over credit now in U8: {len(in_u8)} of {len(approved_orders)}")
