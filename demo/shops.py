"""The demo's closing lines about the shops: per shop, the platform's orders against where each one
ended up (in the ERP, waiting with a reason, quarantined, not sent and why), the shipments the shop
received, and the completeness audit's verdict — read from the stand-in's own truth and stats and
the hub's books, not from the run reports."""
from __future__ import annotations

from collections import Counter

import pandas as pd
from sqlalchemy import select

from hub import model, shop_audit, store
from sandbox.harness import Sandbox


def summary(sb: Sandbox, seats: list, erp: str, label: str) -> str:
    truth = sb.shops("truth")
    stats = sb.shops("stats")
    lines = []
    with store.engine().begin() as conn:
        x, o, q = model.xref.c, model.outbox.c, model.quarantine.c
        audits = pd.DataFrame([dict(r._mapping) for r in conn.execute(select(shop_audit.shop_window_audit))])
        for seat in seats:
            held = dict(conn.execute(select(x.native_key, x.hub_id).where(x.entity == "sales_order",
                                                                            x.system == seat.name)).all())
            in_erp = {h for (h,) in conn.execute(select(x.hub_id).where(x.entity == "sales_order", x.system == erp,
                                                                        x.native_version == "open"))}
            box = dict(conn.execute(select(o.hub_id, o.status).where(o.entity == "sales_order", o.target == erp)).all())
            bad = {k for (k,) in conn.execute(select(q.record_key).where(q.flow == "shop_orders", q.system == seat.name,
                                                                         q.status == "open"))}
            platform = truth.get(seat.system, {})
            orders = platform.get("orders", platform) if isinstance(platform, dict) else platform
            where: Counter[str] = Counter()
            for order in orders if isinstance(orders, list) else []:
                tid = str(order.get("tid"))
                hub_id = held.get(tid)
                if hub_id in in_erp:
                    where[f"in {label}"] += 1
                elif tid in bad:
                    where["quarantined (reason in the console)"] += 1
                elif hub_id and box.get(hub_id) == "waiting":
                    where["waiting (reason in the outbox)"] += 1
                elif hub_id:
                    where[f"stored, not sent ({order.get('state')})"] += 1
                else:
                    where["NOT IN THE HUB"] += 1
            ships = (stats.get(seat.system) or {}).get("shipments") or []
            doubled = sum(1 for s in ships if int(s.get("sends", 1)) > 1)
            part = audits[audits["seat"] == seat.name] if not audits.empty else audits
            verdict = shop_audit.summary(part).get(seat.name) if not part.empty else None
            audit = (f"audit: {verdict['windows']} windows, {verdict['agree']} agree, {verdict['found_late']} found late, "
                     f"missing {len(verdict['missing'])} → {verdict['verdict']}") if verdict else "audit: no window read"
            lines.append(f"{seat.label} ({seat.name}): {sum(where.values())} orders on the platform: "
                         + ", ".join(f"{k} {n}" for k, n in sorted(where.items()))
                         + f"; {len(ships)} packages reported back ({doubled} sent twice); {audit}")
    return "\n".join(lines)
