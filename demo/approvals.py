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
        rows = conn.execute(select(a.kind, a.state, a.superseded, a.request_id)).all()
    if not rows:
        return "approvals: no OA request was needed"
    oa_requests = _rows(folder / "ecology.db", "select count(*), count(distinct requestname) from request")[0]
    out = [f"approvals: {oa_requests[0]} requests in 泛微 e-cology ({oa_requests[1]} distinct titles)"]
    for kind in sorted({r.kind for r in rows}):
        mine = [r for r in rows if r.kind == kind]
        states = Counter("superseded" if r.superseded == "yes" else r.state for r in mine)
        out.append(f"  {kind}: {len(mine)} asked — " + ", ".join(f"{n} {s}" for s, n in states.most_common()))
        approved = {r.request_id for r in mine if r.state == "approved" and r.superseded != "yes"}
        crm = _rows(folder / "crm.db", 'select specialPriceApproval__c, specialPriceStatus__c from "orderProduct" '
                                       "where specialPriceStatus__c is not null and specialPriceStatus__c != ''")
        shown = Counter(text.split(":")[0] for _, text in crm)
        carried = sum(1 for ref, _ in crm if ref in approved)
        u8 = _rows(folder / "u8.db", "select cDefine22 from SO_SODetails where cDefine22 is not null")
        in_u8 = sum(1 for (ref,) in u8 if ref in approved)
        out.append(f"    CRM order lines showing their approval: {len(crm)} ("
                   + ", ".join(f"{n} {k}" for k, n in shown.most_common()) + f"); {carried} carry the approved "
                   f"request's number; U8 order lines sold at an approved special price: {in_u8}")
    return "\n".join(out)
