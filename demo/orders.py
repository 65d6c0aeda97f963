"""The demo's closing lines about orders: where every seeded CRM order ended up, checked
against the systems themselves (U8 tables, CRM records) and the hub's outbox."""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from hub import model, store


def _rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def summary(folder: Path) -> str:
    """Seeded orders: in U8 with matching totals / waiting (why) / quarantined / not sent; shipments on the CRM."""
    from flows.sales_orders import order_hub_id

    truth = json.loads((folder / "orders_truth.json").read_text(encoding="utf-8"))["orders"]
    u8_po = {po: code for code, po in _rows(folder / "u8.db", "select cSOCode, cDefine11 from SO_SOMain "
                                                               "where cCloser is null and cDefine11 is not null")}
    u8_sum: dict[str, Decimal] = {}
    for code, line_sum in _rows(folder / "u8.db", "select cSOCode, iSum from SO_SODetails"):  # Decimal, not SQL's float sum
        u8_sum[code] = u8_sum.get(code, Decimal(0)) + Decimal(str(line_sum))
    crm_total = {str(i): Decimal(str(a)) for i, a in _rows(folder / "crm.db", 'select id, amount from "order"')}
    with store.engine().begin() as conn:
        o = model.outbox.c
        box = {h: (s, e) for h, s, e in conn.execute(select(o.hub_id, o.status, o.last_error).where(o.entity == "sales_order"))}
        q = model.quarantine.c
        bad = {k for (k,) in conn.execute(select(q.record_key).where(q.flow == "sales_orders", q.status == "open"))}
    where: Counter[str] = Counter()
    why: Counter[str] = Counter()
    for t in truth:
        status, error = box.get(order_hub_id(t["crm_id"]), (None, None))
        if t["po"] in u8_po:
            ok = u8_sum.get(u8_po[t["po"]]) == crm_total[t["crm_id"]]
            where["in U8, lines and totals match" if ok else "in U8, TOTALS DIFFER"] += 1
        elif t["crm_id"] in bad or status == "failed":
            where["quarantined with a reason"] += 1
        elif status == "waiting":
            where["waiting with a reason"] += 1
            why[(error or "").split(" (")[0].split(" is ")[0].split(" has ")[0].split(" ")[0]] += 1
        else:
            where["not sent (draft or cancelled in the CRM)"] += 1
    dispatches = _rows(folder / "u8.db", "select count(*) from DispatchList")[0][0]
    on_crm = _rows(folder / "crm.db", 'select count(distinct dispatchCode__c) from "shipment__c"')[0][0]
    lines = [f"orders seeded in the CRM: {len(truth)}"] + [f"  {n:>6}  {k}" for k, n in where.most_common()]
    if why:
        lines.append("  waiting for: " + ", ".join(f"{k} ({n})" for k, n in why.most_common()))
    lines.append(f"U8 dispatch lists: {dispatches}; shipment records in the CRM: {on_crm}")
    serials = {sn for (text,) in _rows(folder / "u8.db", "select cInvSN from DispatchLists where cInvSN is not null")
               for sn in text.split(",")}
    assets = Counter(s for (s,) in _rows(folder / "crm.db", 'select assetStatus__c from "asset__c"'))
    states = ", ".join(f"{k} {n}" for k, n in assets.most_common())
    lines.append(f"serial numbers U8 shipped: {len(serials)}; assets in the CRM: {sum(assets.values())}"
                 + (f" ({states})" if states else ""))
    levels = _rows(folder / "u8.db", "select count(distinct cInvCode || '@' || cWhCode) from CurrentStock")[0][0]
    shown, short = _rows(folder / "crm.db", 'select (select count(*) from "stock__c"), (select count(*) from "orderProduct" '
                                            "where coalesce(stockShortage__c, '') != '')")[0]
    lines.append(f"U8 stock levels (product × warehouse): {levels}; stock records in the CRM: {shown} (products the CRM "
                 f"holds); CRM order lines flagged short of stock: {short}")
    lines.append(_readiness())
    return "\n".join(lines)


def _readiness() -> str:
    """How many golden customers would be held from their first order (the ERP seat's option
    ready_before_orders, off in this demo) and for what (quality/readiness.py)."""
    from quality import readiness

    with store.engine().begin() as conn:
        ids = [h for (h,) in conn.execute(select(model.customer.c.hub_id))]
        missing = readiness.missing_for_orders(conn, ids)
    why = Counter(reason.split(" (")[0] for reasons in missing.values() for reason in reasons)
    return (f"customers not ready for a first order (ready_before_orders): {len(missing)} of {len(ids)}; missing: "
            + ", ".join(f"{k} {n}" for k, n in why.most_common()))
