"""Dedup cost as volume grows: 100k → 1M customer records (CRM accounts + U8 customers).

    .venv/bin/python bench/dedup_scale.py --sizes 100000 300000 1000000

Records come from the sandbox's seeded world (the same messy companies the flows see);
each size runs in a child process so its peak memory is its own. Precision and recall
are against the seed's ground truth.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from harness import per_size  # noqa: E402


CHUNK = 100_000  # accounts per generated world: the generator keeps a whole world in memory


def _world(seed: int, accounts: int, tag: str):
    import pandas as pd

    from sandbox.seed import generate

    ds = generate(seed=seed, accounts=accounts)
    crm = pd.DataFrame(ds.accounts)
    crm = pd.DataFrame({"_row": f"crm{tag}:" + crm["id"].astype(str), "name": crm["accountName"],
                        "uscc": crm["uscc__c"], "phone": crm["phone"], "address": crm["address"]})
    u8 = pd.DataFrame(ds.u8_rows)
    u8 = pd.DataFrame({"_row": f"u8{tag}:" + u8["cCusCode"].astype(str), "name": u8["cCusName"],
                       "uscc": u8["cCusRegCode"], "phone": u8["cCusPhone"], "address": u8["cCusAddress"]})
    truth = {f"crm{tag}:{r['crm_id']}": f"{tag}{r['company_id']}" for r in ds.crm_truth} | {
        f"u8{tag}:{r['u8_code']}": f"{tag}{r['company_id']}" for r in ds.u8_truth}
    return pd.concat([crm, u8], ignore_index=True), truth


def records(accounts: int):
    """CRM accounts and U8 customers of ``accounts`` seeded companies (in worlds of 100k,
    each with its own seed, so generating 1M does not hold 1M worlds' contacts in memory)."""
    import gc

    import pandas as pd

    frames, truth = [], {}
    for i, start in enumerate(range(0, accounts, CHUNK)):
        df, t = _world(7 + i, min(CHUNK, accounts - start), f"w{i}")
        frames.append(df)
        truth.update(t)
        gc.collect()
    df = pd.concat(frames, ignore_index=True)
    for col in ("name", "uscc", "phone", "address"):  # the wrong-typed seeds: text as the mapping would make it
        df[col] = df[col].map(lambda v: None if v is None or v != v else str(v))
    df["uscc"] = df["uscc"].str.replace(r"\s+", "", regex=True).str.upper()
    df.loc[~df["uscc"].str.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{18}", na=False), "uscc"] = None  # the gate's job
    return df, truth


def one(accounts: int) -> dict:
    import pandas as pd

    from quality.dedup import engine
    from quality.evaluate import pairwise

    df, truth = records(accounts)
    start = time.perf_counter()
    res = engine.find_matches(df, "customer")
    took = time.perf_counter() - start
    clusters = res.records.set_index("_row")["cluster"]
    score = pairwise(pd.Series(truth).reindex(clusters.index), clusters)
    return {"accounts": accounts, "records": len(df), "seconds": round(took, 1), **res.stats,
            "precision": score["precision"], "recall": score["recall"], "false_merges": score["false_merges"],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> int:
    rows = per_size(__file__, one, [100_000, 300_000, 1_000_000])
    if rows is None:  # --one: one size measured and printed
        return 0
    print("\n| CRM accounts | records | candidate pairs | seconds | µs / record | peak RSS MiB | precision | recall |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['accounts']:,} | {r['records']:,} | {r['candidate_pairs']:,} | {r['seconds']:.1f} | "
              f"{r['seconds'] / r['records'] * 1e6:.0f} | {r['peak_rss_mib']:,} | {r['precision']:.4f} | {r['recall']:.4f} |")
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "out" / "dedup_scale.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
