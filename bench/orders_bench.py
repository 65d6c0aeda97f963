"""Benchmark of the sales_orders flow against the sandbox: records/s per step, the incremental
cost with 1 % of the orders changed, and the flow's writes against raw bulk writes of the
same rows in the same run.

    .venv/bin/python bench/orders_bench.py --accounts 3000 --orders 45000    # ≈ 100 000 order lines

customer_master and product_master run first (not measured) so that customers and products
are in U8; every measured run is a child process (``python -m flows run``) with its own peak
memory. Baselines, on the rows the flow itself produced:
- load: the canonical order and line rows, one executemany each into bare tables;
- write to U8: the same SO_SOMain / SO_SODetails rows inserted straight into an empty copy of
  the U8 tables (what a direct database write would cost; the OpenAPI, with biz_id and per-order
  validation, is the supported path).
Results go to bench/out/<stamp>/result.json and are printed as a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from customer_master_bench import OVERLAP_MS  # noqa: E402
from harness import run_flow, steps  # noqa: E402
from sandbox.harness import Sandbox  # noqa: E402


def change_orders(sb: Sandbox, share: float, seed: int = 7) -> int:
    """A salesforce raising one line's quantity on ``share`` of the orders already in U8."""
    con = sqlite3.connect(sb.crm_db)
    ids = [r[0] for r in con.execute('select id from "order" where erpCode__c is not null')]
    picked = random.Random(seed).sample(ids, max(1, int(len(ids) * share)))
    lines = {o: con.execute('select id, quantity, unitPrice, discount__c, amount from "orderProduct" '
                            'where orderId = ? order by id', (o,)).fetchall() for o in picked}
    con.close()
    session = sb.crm_session()
    fen = Decimal("0.01")

    def change(order_id: int) -> None:
        first, *rest = lines[order_id]
        qty = Decimal(str(first[1])) + 1
        amount = (qty * Decimal(str(first[2])) - Decimal(str(first[3] or 0))).quantize(fen, ROUND_HALF_UP)
        total = amount + sum((Decimal(str(r[4])) for r in rest), Decimal(0))
        for api, rid, data in (("orderProduct", first[0], {"quantity": float(qty), "amount": float(amount)}),
                               ("order", order_id, {"amount": float(total)})):
            session.patch(f"{sb.crm_url}/rest/data/v2.0/xobjects/{api}/{rid}", json={"data": data},
                          timeout=30).raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(change, picked))
    return len(picked)


def _bulk(src: Path, dst: Path, tables: list[str]) -> dict[str, float]:
    """Copy ``tables``' rows from ``src`` into fresh tables of the same columns in ``dst`` with
    one executemany each; returns rows and seconds (the write alone)."""
    s = sqlite3.connect(src)
    data = {t: ([r[1] for r in s.execute(f'pragma table_info("{t}")')], s.execute(f'select * from "{t}"').fetchall())
            for t in tables}
    s.close()
    d = sqlite3.connect(dst)
    try:
        for t, (cols, _) in data.items():
            d.execute(f'drop table if exists "bench_{t}"')
            d.execute(f'create table "bench_{t}" ({", ".join(chr(34) + c + chr(34) for c in cols)})')
        start = time.perf_counter()
        for t, (cols, rows) in data.items():
            d.executemany(f'insert into "bench_{t}" values ({", ".join("?" * len(cols))})', rows)
        d.commit()
        return {"rows": sum(len(r) for _, r in data.values()), "seconds": round(time.perf_counter() - start, 3)}
    finally:
        d.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--accounts", type=int, default=3000)
    p.add_argument("--orders", type=int, default=45_000)
    p.add_argument("--changed", type=float, default=0.01)
    args = p.parse_args()
    out = ROOT / "bench" / "out" / f"orders-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True)
    store_db = out / "hub.db"
    started = time.perf_counter()
    sb = Sandbox(out / "sandbox", accounts=args.accounts, orders=args.orders).seed()
    meta = json.loads((out / "sandbox" / "orders_truth.json").read_text(encoding="utf-8"))["meta"]
    result: dict = {"accounts": args.accounts, "orders": meta["orders"], "lines": meta["lines"],
                    "seed_seconds": round(time.perf_counter() - started, 1), "machine": f"{os.cpu_count()} cores"}
    with sb:
        conns = sb.connections()
        crm = json.loads(conns["AIRFLOW_CONN_CRM_XIAOSHOUYI"])
        crm["extra"]["overlap_ms"] = OVERLAP_MS
        conns["AIRFLOW_CONN_CRM_XIAOSHOUYI"] = json.dumps(crm)
        env = {**os.environ, **conns, "HUB_STORE_URL": f"sqlite:///{store_db}", "HUB_VAR_DIR": str(out),
               "PYTHONPATH": str(ROOT)}
        result["setup"] = {f: run_flow(f, f"setup-{f}", env) for f in ("customer_master", "product_master")}
        result["full"] = run_flow("sales_orders", "full", env) | {"steps": steps(store_db, "full")}
        # the first run after a full load re-reads the orders its own write-back touched (and skips them)
        result["settle"] = run_flow("sales_orders", "settle", env) | {"steps": steps(store_db, "settle")}
        result["changed_orders"] = change_orders(sb, args.changed)
        result["incremental"] = run_flow("sales_orders", "incremental", env) | {"steps": steps(store_db, "incremental")}
        result["load_baseline"] = _bulk(store_db, out / "baseline.db", ["sales_order", "sales_order_line"])
        result["u8_baseline"] = _bulk(sb.u8_db, out / "baseline.db", ["SO_SOMain", "SO_SODetails"])
    full, inc = result["full"], result["incremental"]
    result["incremental_ratio"] = round(inc["seconds"] / full["seconds"], 4)
    (out / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(render(result))
    return 0


def render(r: dict) -> str:
    lines = [f"sales_orders, {r['orders']:,} CRM orders with {r['lines']:,} lines ({r['accounts']:,} accounts), "
             f"{r['machine']}; seeding took {r['seed_seconds']} s", "",
             "| run | step | seconds | records in | records/s | written |", "|---|---|---:|---:|---:|---:|"]
    for name in ("full", "settle", "incremental"):
        for s in r[name]["steps"]:
            rate = s["read"] / s["seconds"] if s["seconds"] else 0
            lines.append(f"| {name} | {s['step']} | {s['seconds']:.2f} | {s['read']:,} | {rate:,.0f} | {s['written']:,} |")
        lines.append(f"| {name} | **end to end** | **{r[name]['seconds']:.1f}** | | | peak RSS {r[name]['peak_rss_mib']} MiB |")
    load = next(s for s in r["full"]["steps"] if s["step"] == "load")
    write = next(s for s in r["full"]["steps"] if s["step"] == "write_back")
    lb, ub = r["load_baseline"], r["u8_baseline"]
    lines += ["", f"changed orders: {r['changed_orders']:,} ({r['changed_orders'] / max(1, r['orders']):.1%}); "
                  f"incremental / full wall time: {r['incremental_ratio']:.3f}",
              f"load step {load['seconds']:.2f} s for {load['read']:,} orders (canonical orders and lines, xref, outbox, "
              f"watermarks) vs raw executemany of the same {lb['rows']:,} order and line rows into bare tables: {lb['seconds']:.2f} s",
              f"write_back {write['seconds']:.2f} s ({write['written']:,} writes: U8 saleorder/add over HTTP with biz_id, then "
              f"erpCode__c PATCHes to the CRM) vs inserting the resulting {ub['rows']:,} SO_SOMain / SO_SODetails rows "
              f"straight into bare tables: {ub['seconds']:.2f} s"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
