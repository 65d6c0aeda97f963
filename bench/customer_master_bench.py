"""Benchmark of the customer_master flow against the sandbox (records/s per step, memory,
incremental cost, and the load step against a raw bulk insert of the same rows).

    .venv/bin/python bench/customer_master_bench.py --accounts 100000

Each run of the flow is a child process (``python -m flows run``), so its peak memory is
its own (``ru_maxrss`` from ``wait4``). Results go to bench/out/<stamp>/result.json and are
printed as a Markdown table.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from harness import run_flow, steps  # noqa: E402
from sandbox.harness import Sandbox  # noqa: E402

FLOW = "customer_master"


#: The runs follow each other within seconds, so the production overlap window (60 s)
#: would re-read everything the previous run wrote back; 5 s keeps the measurement about
#: the 1 % that changed. The overlap's own cost is then visible in the settle run.
OVERLAP_MS = 5000


def change_accounts(sb: Sandbox, share: float, seed: int = 7) -> int:
    """A salesforce editing ``share`` of the accounts through the CRM API."""
    con = sqlite3.connect(sb.crm_db)
    ids = [r[0] for r in con.execute("select id from account where erpCode__c is not null and erpCode__c != ''")]
    con.close()
    picked = random.Random(seed).sample(ids, max(1, int(len(ids) * share)))
    session = sb.crm_session()

    def patch(i: int) -> None:
        phone = f"021-6{random.Random(i).randint(1000000, 9999999)}"
        session.patch(f"{sb.crm_url}/rest/data/v2.0/xobjects/account/{i}", json={"data": {"phone": phone}},
                      timeout=30).raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(patch, picked))
    return len(picked)


def raw_bulk_insert(store_db: Path, run_id: str) -> dict[str, float]:
    """Baseline for the load step: the same source rows into a bare table, one executemany."""
    con = sqlite3.connect(store_db)
    try:
        cols = [r[1] for r in con.execute("pragma table_info(customer_source)")]
        rows = con.execute(f"select {', '.join(cols)} from customer_source").fetchall()
        con.execute("drop table if exists bench_raw")
        con.execute(f"create table bench_raw ({', '.join(cols)})")
        start = time.perf_counter()
        con.executemany(f"insert into bench_raw values ({', '.join('?' * len(cols))})", rows)
        con.commit()
        return {"rows": len(rows), "seconds": round(time.perf_counter() - start, 3)}
    finally:
        con.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--changed", type=float, default=0.01)
    args = p.parse_args()
    out = ROOT / "bench" / "out" / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    store_db = out / "hub.db"
    sb = Sandbox(out / "sandbox", accounts=args.accounts).seed()
    result: dict = {"accounts": args.accounts, "machine": f"{os.cpu_count()} cores"}
    with sb:
        conns = sb.connections()
        crm = json.loads(conns["AIRFLOW_CONN_CRM_XIAOSHOUYI"])
        crm["extra"]["overlap_ms"] = OVERLAP_MS
        conns["AIRFLOW_CONN_CRM_XIAOSHOUYI"] = json.dumps(crm)
        env = {**os.environ, **conns, "HUB_STORE_URL": f"sqlite:///{store_db}", "HUB_VAR_DIR": str(out),
               "PYTHONPATH": str(ROOT)}
        result["full"] = run_flow(FLOW, "full", env) | {"steps": steps(store_db, "full")}
        # the first run after a full load re-reads what its own write-back touched (and skips it)
        result["settle"] = run_flow(FLOW, "settle", env) | {"steps": steps(store_db, "settle")}
        result["changed_accounts"] = change_accounts(sb, args.changed)
        result["incremental"] = run_flow(FLOW, "incremental", env) | {"steps": steps(store_db, "incremental")}
        result["load_baseline_raw_insert"] = raw_bulk_insert(store_db, "full")
    full, inc = result["full"], result["incremental"]
    result["incremental_ratio"] = round(inc["seconds"] / full["seconds"], 4)
    (out / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(render(result))
    return 0


def render(r: dict) -> str:
    lines = [f"customer_master, {r['accounts']:,} CRM accounts (+ U8 customers), {r['machine']}", "",
             "| run | step | seconds | records in | records/s | written |", "|---|---|---:|---:|---:|---:|"]
    for name in ("full", "settle", "incremental"):
        for s in r[name]["steps"]:
            rate = s["read"] / s["seconds"] if s["seconds"] else 0
            lines.append(f"| {name} | {s['step']} | {s['seconds']:.2f} | {s['read']:,} | {rate:,.0f} | {s['written']:,} |")
        lines.append(f"| {name} | **end to end** | **{r[name]['seconds']:.1f}** | | | peak RSS {r[name]['peak_rss_mib']} MiB |")
    load = next(s for s in r["full"]["steps"] if s["step"] == "load")
    base = r["load_baseline_raw_insert"]
    lines += ["", f"changed accounts: {r['changed_accounts']:,}; incremental / full wall time: {r['incremental_ratio']:.3f}",
              f"load step {load['seconds']:.2f} s for {load['read']:,} rows (source records, xref, survivorship, golden, "
              f"outbox, watermarks) vs raw executemany of {base['rows']:,} source rows into a bare table: {base['seconds']:.2f} s"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
