"""Reconciliation cost as volume grows: receipts against five times as many open items.

    .venv/bin/python bench/reconcile_bench.py --sizes 10000 30000 100000

Each size runs in a child process (its peak memory is its own). The data is synthetic but
shaped like the sandbox's: 20 open items per customer, references in 45 % of memos, payers
known by bank account or by a name variant, bank fees, receipts paying several invoices,
invoices paid by several receipts, partial payments, 1.5 % unknown payers. Reported: time of
``quality.reconcile.reconcile`` alone (data generation excluded), peak RSS, µs per receipt,
the auto-match rate and the wrong automatic matches against the generator's truth.
"""
from __future__ import annotations

import json
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from harness import per_size  # noqa: E402

ITEMS_PER_CUSTOMER = 20
FORMS = ("有限公司", "有限责任公司", "股份有限公司")


def world(receipts: int, seed: int = 5):
    """(receipts, items, accounts, names, truth) with ``5 × receipts`` open items."""
    import pandas as pd

    from quality.names import name_key

    rng = random.Random(seed)
    customers = max(1, receipts * 5 // ITEMS_PER_CUSTOMER)
    codes = [f"C{c:07d}" for c in range(customers)]
    names = [f"{rng.choice('上海北京深圳杭州苏州南京成都武汉')}{c:07d}{rng.choice('科技贸易机械电子')}{rng.choice(FORMS)}"
             for c in range(customers)]
    accounts = [str(rng.randint(10**18, 10**19 - 1)) for _ in range(customers)]
    item_rows, by_customer = [], [[] for _ in range(customers)]
    for n in range(customers * ITEMS_PER_CUSTOMER):
        c = n // ITEMS_PER_CUSTOMER
        doc = f"0{3_000_000 + n:08d}"
        amount = rng.randint(100_000, 50_000_000)
        day = f"2025-{rng.randint(1, 5):02d}-{rng.randint(1, 28):02d}"
        item_rows.append((f"invoice:{doc}", "invoice", codes[c], amount, day, f"{doc}|SO{c:07d}{n % 3}"))
        by_customer[c].append(len(item_rows) - 1)
    rec_rows, truth = [], {}
    used = set()

    def free(c: int, k: int = 1) -> list[int] | None:
        pool = [i for i in by_customer[c] if i not in used]
        if len(pool) < k:
            return None
        picked = rng.sample(pool, k)
        used.update(picked)
        return picked

    for r in range(receipts):
        rid, c, day = f"R{r:08d}", rng.randrange(customers), f"2025-06-{rng.randint(1, 28):02d}"
        kind = rng.choices(["ref", "account", "name", "fee", "multi", "split", "partial", "unknown"],
                           [45, 25, 9, 5, 5, 4, 3, 1.5])[0]
        picked = free(c, 2 if kind == "multi" else 1)
        if picked is None or kind == "unknown":
            rec_rows.append((rid, rng.randint(10_000, 9_000_000), day, "货款", f"陌生公司{r}", str(rng.randint(10**15, 10**16))))
            truth[rid] = None
            continue
        its = [item_rows[i] for i in picked]
        total = sum(i[3] for i in its)
        account, name, memo = accounts[c], names[c], "货款"
        if kind == "ref":
            memo = f"付发票{its[0][0][8:]}"
        elif kind == "name":
            variant = name[:-6] + FORMS[0] if name.endswith(FORMS[1]) else name.replace("（", "(") + " "
            account, name = str(rng.randint(10**15, 10**16)), variant
        elif kind == "fee":
            total -= rng.randint(5, 20) * 100
        elif kind == "partial":
            total, memo = total // 3, f"{its[0][0][8:]}部分付款"
        elif kind == "split":
            first = total // 2 + rng.randint(1, 999)
            rec_rows.append((rid + "a", first, day, f"付{its[0][0][8:]}", name, account))
            truth[rid + "a"] = {its[0][0]: first}
            total -= first
            memo = f"付{its[0][0][8:]}"
        rec_rows.append((rid, total, day, memo, name, account))
        truth[rid] = {i[0]: i[3] for i in its} if kind != "partial" and kind != "split" and kind != "fee" else \
            {its[0][0]: total}
    receipts_df = pd.DataFrame(rec_rows, columns=["receipt_id", "amount_fen", "value_date", "memo", "payer_name",
                                                  "payer_account"])
    items_df = pd.DataFrame(item_rows, columns=["item_id", "kind", "customer", "open_fen", "doc_date", "refs"])
    accounts_df = pd.DataFrame({"account": accounts, "customer": codes})
    names_df = pd.DataFrame({"name_key": name_key(pd.Series(names)), "customer": codes})
    return receipts_df, items_df, accounts_df, names_df, truth


def one(receipts: int) -> dict:
    from quality.reconcile import reconcile

    rec, items, accounts, names, truth = world(receipts)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = reconcile(rec, items, accounts, names)
    took = time.perf_counter() - start
    got = {}
    for a in result.allocations.itertuples(index=False):
        if a.item_id:
            got.setdefault(a.receipt_id, {})[a.item_id] = int(a.amount_fen)
    posted = result.receipts[result.receipts["status"] == "posted"]["receipt_id"]
    wrong = sum(1 for rid in posted if truth.get(rid) is None or got.get(rid, {}) != truth[rid])
    return {"receipts": len(rec), "items": len(items), "seconds": round(took, 2),
            "us_per_receipt": round(took / len(rec) * 1e6), "auto_rate": round(len(posted) / len(rec), 4),
            "wrong": wrong, "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_with_data_mib": round(before)}


def main() -> int:
    rows = per_size(__file__, one, [10_000, 30_000, 100_000])
    if rows is None:  # --one: one size measured and printed
        return 0
    print("\n| receipts | open items | seconds | µs / receipt | peak RSS MiB | of which the data | auto-matched | wrong |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['receipts']:,} | {r['items']:,} | {r['seconds']:.1f} | {r['us_per_receipt']} | "
              f"{r['peak_rss_mib']:,} | {r['rss_with_data_mib']:,} | {r['auto_rate']:.1%} | {r['wrong']} |")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"\ngrowth {a['receipts']:,} → {b['receipts']:,} receipts (×{b['receipts'] / a['receipts']:.0f}): "
              f"time ×{b['seconds'] / a['seconds']:.1f}, peak memory ×{b['peak_rss_mib'] / a['peak_rss_mib']:.1f}")
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "out" / "reconcile_bench.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
