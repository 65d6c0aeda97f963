"""Benchmark of the shop orders path (issue 12): shop orders across the five platform stand-ins
into the hub (shop_orders) and on into the ERP (sales_orders), with the platforms' rate limits
respected, against a bare read of the same orders from the stand-in's own database.

    .venv/bin/python bench/shop_orders_bench.py --orders 2000      # smoke: well under 2 minutes
    .venv/bin/python bench/shop_orders_bench.py --orders 100000    # the issue's figure (long on 2 cores)

``--orders`` is the total over the five platforms (the seed takes ``--shop-orders orders/5`` per
platform). Every shop is bound (a bindings file in the bench's folder, conn ids shop_taobao …
shop_pdd, all selling to ERP customer 0100001); a platform whose seat cannot be built is left
out and named in the result. Each app's rate limit is set in the stand-in to the same ``--qps``
the bindings configure, so a connector that calls faster than configured is refused and counted
(``rate_limited`` in the stand-in's stats). The stand-in's call counters are sampled once a
second while shop_orders runs: calls per second per app, the busiest second and the mean over the
seconds the app was called, beside the configured qps.

customer_master and product_master run first (not measured); shop_orders and sales_orders are
child processes (``python -m flows run``), each with its own wall time and peak RSS.
Baseline, same run: the stand-in's ``shops.db`` read straight into a DataFrame (SQL only, and with
each order's JSON document decoded into order and line rows): what a bare copy of the orders costs.
Results go to bench/out/shops-<stamp>/result.json and are printed as Markdown.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sqlite3
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from harness import run_flow, steps  # noqa: E402
from sandbox.harness import Sandbox  # noqa: E402

PLATFORMS = ("taobao", "jd", "youzan", "doudian", "pdd")
ERP_CUSTOMER = "0100001"
#: the platforms' documented window limit where there is one, else the seat's default (minutes)
WINDOW_MINUTES = {"taobao": 1440, "pdd": 30, "doudian": 360, "jd": 60, "youzan": 60}
#: the first run reads this far back: the seed spreads modified times over the 3 days before it ran
SINCE_HOURS = 80
CALL_COUNTERS = ("list_calls", "detail_calls", "shipment_calls")


def seat_builds(platform: str) -> str | None:
    """None when the platform's connector module imports and exposes PLATFORM, else why not."""
    try:
        module = importlib.import_module(f"connectors.shops.{platform}")
        getattr(module, "PLATFORM")
    except Exception as exc:  # noqa: BLE001 - any failure to build means: leave this shop out
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def bindings_text(platforms: list[str], qps: float) -> str:
    """The default deployment (销售易 + U8) with one shop per platform."""
    shops = "".join(
        f"  - system: {p}\n    name: shop_{p}\n    connections: {{api: shop_{p}}}\n"
        f"    options: {{erp_customer: \"{ERP_CUSTOMER}\", window_minutes: {WINDOW_MINUTES[p]}, overlap_minutes: 10, "
        f"since_hours: {SINCE_HOURS}, qps: {qps:g}}}\n" for p in platforms)
    return ("crm:\n  system: xiaoshouyi\n  name: crm\n  connections: {api: crm_xiaoshouyi}\n"
            "erp:\n  system: u8\n  connections: {odbc: u8_odbc, openapi: u8_openapi}\n"
            "registry:\n  system: registry_api\n  name: registry\n  connections: {api: registry}\n"
            "bank:\n  system: bank_files\n  name: bank\n  connections: {drop: bank_drop}\n"
            "shop:\n" + shops)


class CallSampler:
    """The stand-in's per-platform call counters, read once a second in a thread."""

    def __init__(self, url: str, every: float = 1.0) -> None:
        self.url, self.every = url, every
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> dict[str, int]:
        stats = requests.get(f"{self.url}/__sandbox/shops/stats", timeout=30).json()
        return {p: sum(int(stats[p].get(k, 0)) for k in CALL_COUNTERS) for p in PLATFORMS if p in stats}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self._read()))
            except requests.RequestException:
                pass
            self._stop.wait(self.every)

    def __enter__(self) -> "CallSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic(), self._read()))

    def rates(self) -> dict[str, dict[str, float]]:
        """Per platform: calls, the busiest sampled second's calls/s, the mean calls/s over the
        sampled seconds in which the app made calls, and those seconds."""
        out: dict[str, dict[str, float]] = {}
        for p in PLATFORMS:
            per_s = []
            for (t0, a), (t1, b) in zip(self.samples, self.samples[1:]):
                if p in a and p in b and b[p] > a[p] and t1 > t0:
                    per_s.append(((b[p] - a[p]) / (t1 - t0), t1 - t0))
            calls = (self.samples[-1][1].get(p, 0) - self.samples[0][1].get(p, 0)) if self.samples else 0
            busy = sum(d for _, d in per_s)
            out[p] = {"calls": calls, "busy_seconds": round(busy, 1),
                      "peak_per_s": round(max((r for r, _ in per_s), default=0.0), 1),
                      "mean_per_s": round(sum(r * d for r, d in per_s) / busy, 1) if busy else 0.0}
        return out


def raw_read(shops_db: Path) -> dict[str, Any]:
    """The bare copy: every order row of shops.db into a DataFrame, then the same with each order's
    JSON document decoded into flat order and line frames."""
    start = time.perf_counter()
    con = sqlite3.connect(f"file:{shops_db}?mode=ro", uri=True)
    try:
        frame = pd.read_sql_query("select platform, tid, modified, state, payment, doc from orders", con)
    finally:
        con.close()
    sql_s = time.perf_counter() - start
    docs = [json.loads(d) for d in frame["doc"]]
    heads = pd.DataFrame([{k: v for k, v in d.items() if k not in ("lines", "packages", "consignee")} for d in docs])
    lines = pd.DataFrame([{**ln, "platform": d["platform"], "tid": d["tid"]} for d in docs for ln in d["lines"]])
    total_s = time.perf_counter() - start
    return {"orders": len(heads), "lines": len(lines), "sql_seconds": round(sql_s, 3),
            "decoded_seconds": round(total_s, 3),
            "sql_orders_per_s": round(len(frame) / sql_s) if sql_s else None,
            "decoded_orders_per_s": round(len(heads) / total_s) if total_s else None}


def erp_counts(store_db: Path, seats: list[str]) -> dict[str, int]:
    """Per shop seat: orders the hub holds (xref), records in quarantine (with their reasons), orders U8 has."""
    con = sqlite3.connect(store_db)
    try:
        out = {}
        for seat in seats:
            held = con.execute("select count(*) from xref where entity='sales_order' and system=?", (seat,)).fetchone()[0]
            in_erp = con.execute("select count(*) from xref s join xref e on e.hub_id = s.hub_id and e.entity = s.entity "
                                 "where s.entity='sales_order' and s.system=? and e.system='u8'", (seat,)).fetchone()[0]
            quarantined = con.execute("select count(distinct record_key) from quarantine where flow='shop_orders' "
                                      "and system=? and status='open'", (seat,)).fetchone()[0]
            out[seat] = {"held": held, "quarantined": quarantined, "in_erp": in_erp}
        return out
    finally:
        con.close()


def audit(store_db: Path) -> dict[str, dict[str, int]]:
    con = sqlite3.connect(store_db)
    try:
        rows = con.execute("select seat, count(*), sum(verdict = 'agrees'), sum(platform_count), sum(found_late) "
                           "from shop_window_audit group by seat").fetchall()
        return {r[0]: {"windows": r[1], "agree": r[2], "platform_orders": r[3], "found_late": r[4]} for r in rows}
    finally:
        con.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--orders", type=int, default=100_000, help="shop orders over the five platforms (default 100000)")
    p.add_argument("--accounts", type=int, default=60, help="CRM accounts (the CRM side is not measured)")
    p.add_argument("--qps", type=float, default=50, help="per-app qps: the bindings' option and the stand-in's limit")
    p.add_argument("--platforms", nargs="+", choices=PLATFORMS, default=list(PLATFORMS),
                   help="the shops to bind (default all five; the stand-in is seeded with all five either way)")
    args = p.parse_args()
    out = ROOT / "bench" / "out" / f"shops-{args.orders}-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True)
    store_db = out / "hub.db"
    per_platform = max(1, args.orders // len(PLATFORMS))
    broken = {pl: why for pl in args.platforms if (why := seat_builds(pl))}
    platforms = [pl for pl in args.platforms if pl not in broken]
    (out / "bindings.yaml").write_text(bindings_text(platforms, args.qps), encoding="utf-8")
    started = time.perf_counter()
    sb = Sandbox(out / "sandbox", accounts=args.accounts, shop_orders=per_platform).seed()
    result: dict[str, Any] = {"orders_per_platform": per_platform, "platforms": platforms, "left_out": broken,
                              "qps": args.qps, "accounts": args.accounts, "machine": f"{os.cpu_count()} cores",
                              "seed_seconds": round(time.perf_counter() - started, 1),
                              "command": f"bench/shop_orders_bench.py --orders {args.orders} --qps {args.qps:g}"
                                         + ("" if platforms == list(PLATFORMS) else f" --platforms {' '.join(platforms)}")}
    with sb:
        for pl in PLATFORMS:
            sb.shops("limits", platform=pl, qps=args.qps)
        env = {**os.environ, **sb.connections(), "HUB_STORE_URL": f"sqlite:///{store_db}", "HUB_VAR_DIR": str(out),
               "HUB_BINDINGS": str(out / "bindings.yaml"), "PYTHONPATH": str(ROOT)}
        result["setup"] = {f: run_flow(f, f"setup-{f}", env) for f in ("customer_master", "product_master")}
        before = sb.shops("stats")
        with CallSampler(sb.shops_url) as sampler:
            result["shop_orders"] = run_flow("shop_orders", "shops", env) | {"steps": steps(store_db, "shops")}
        after = sb.shops("stats")
        result["calls"] = sampler.rates()
        result["rate_limited"] = {pl: after[pl]["rate_limited"] - before[pl]["rate_limited"] for pl in PLATFORMS}
        result["stand_in_orders"] = {pl: after[pl]["orders"] for pl in PLATFORMS}
        result["audit"] = audit(store_db)
        result["sales_orders"] = run_flow("sales_orders", "erp", env) | {"steps": steps(store_db, "erp")}
        result["erp"] = erp_counts(store_db, [f"shop_{pl}" for pl in platforms])
        result["baseline"] = raw_read(sb.folder / "shops.db")
    shop_run, sales_run = result["shop_orders"], result["sales_orders"]
    held = sum(v["held"] for v in result["erp"].values())
    in_erp = sum(v["in_erp"] for v in result["erp"].values())
    result["hub_orders_per_s"] = round(held / shop_run["seconds"], 1)
    result["erp_orders_per_s"] = round(in_erp / sales_run["seconds"], 1)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    (out / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(render(result, out))
    return 0


def render(r: dict[str, Any], out: Path) -> str:
    held = sum(v["held"] for v in r["erp"].values())
    in_erp = sum(v["in_erp"] for v in r["erp"].values())
    b = r["baseline"]
    lines = [f"shop orders: {r['orders_per_platform']:,} per platform × {len(r['platforms'])} "
             f"({', '.join(r['platforms'])}), qps {r['qps']:g} per app, {r['machine']}; "
             f"`{r['command']}` ({out.relative_to(ROOT)})",
             *([f"left out (seat does not build): {r['left_out']}"] if r["left_out"] else []), "",
             "| run | step | seconds | records in | written |", "|---|---|---:|---:|---:|"]
    for name in ("shop_orders", "sales_orders"):
        for s in r[name]["steps"]:
            lines.append(f"| {name} | {s['step']} | {s['seconds']:.2f} | {s['read']:,} | {s['written']:,} |")
        lines.append(f"| {name} | **end to end** | **{r[name]['seconds']:.1f}** | | peak RSS {r[name]['peak_rss_mib']} MiB |")
    lines += ["", f"into the hub: {held:,} orders in {r['shop_orders']['seconds']:.1f} s = **{r['hub_orders_per_s']:,} orders/s**; "
                  f"into U8: {in_erp:,} in {r['sales_orders']['seconds']:.1f} s = **{r['erp_orders_per_s']:,} orders/s**",
              f"baseline: shops.db read into a DataFrame: {b['orders']:,} orders in {b['sql_seconds']:.2f} s "
              f"({b['sql_orders_per_s']:,}/s); decoded into order and line frames ({b['lines']:,} lines): "
              f"{b['decoded_seconds']:.2f} s ({b['decoded_orders_per_s']:,}/s)", "",
              "| platform | stand-in orders | hub holds | quarantined | in U8 | windows (agree) | calls | busiest second | mean calls/s | qps | refused for rate |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for pl in r["platforms"]:
        c, e, a = r["calls"][pl], r["erp"][f"shop_{pl}"], r["audit"].get(f"shop_{pl}", {})
        lines.append(f"| {pl} | {r['stand_in_orders'][pl]:,} | {e['held']:,} | {e['quarantined']:,} | {e['in_erp']:,} | "
                     f"{a.get('windows', 0)} ({a.get('agree', 0)}) | {c['calls']:,} | {c['peak_per_s']} | {c['mean_per_s']} | "
                     f"{r['qps']:g} | {r['rate_limited'][pl]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
