"""Dedup of a legacy customer export (CSV in, CSV out) with the same engine as the flows.

Input columns (UTF-8 or GBK; header row): ``id`` and ``name`` required; ``uscc``,
``phone``, ``address``, ``source`` (which system the row came from) and ``updated_at``
optional. Output: every input row with ``cluster_id``, the cluster's golden values
(``golden_name``, ``golden_uscc``, ``golden_phone``, ``golden_address``), the best match
probability and a reason a data steward can read.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from quality import survivorship
from quality.dedup import engine

GOLDEN = ["name", "uscc", "phone", "address"]


def describe(levels: dict[str, int], cfg: engine.DedupConfig) -> str:
    """'uscc equal; name_core similar (≥0.95); phone_digits missing' from comparison levels."""
    words = []
    for comp in cfg.comparisons:
        lv = levels.get(comp.column)
        if lv is None or lv == engine.NULL:
            continue
        if lv == 0:
            words.append(f"{comp.column} equal")
        elif lv == comp.n_levels - 1:
            words.append(f"{comp.column} different")
        else:
            op = "≥" if comp.method == "similarity" else "≤ edits"
            words.append(f"{comp.column} similar ({op}{comp.thresholds[lv - 1]})")
    return "; ".join(words)


def dedup_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    missing = {"id", "name"} - set(df.columns)
    if missing:
        raise ValueError(f"input lacks required columns: {sorted(missing)}")
    start = time.perf_counter()
    cfg = engine.load_config("customer")
    data = df.copy()
    data["_row"] = data["id"].astype(str)
    res = engine.find_matches(data, cfg)
    recs = res.records
    matches = res.pairs[res.pairs["decision"] == "match"]
    long = pd.concat([matches.rename(columns={"left": "rec", "right": "other"}),
                      matches.rename(columns={"right": "rec", "left": "other"})], ignore_index=True)
    best = long.sort_values("probability", ascending=False).drop_duplicates("rec").set_index("rec")
    level_cols = [c for c in best.columns if c.startswith("level_")]
    reasons = {rec: f"matches {row['other']} (p={row['probability']:.3f}): "
                    + describe({c[6:]: int(row[c]) for c in level_cols}, cfg)
               for rec, row in best.iterrows()}
    sources = recs.assign(hub_id=recs["cluster"], system=recs.get("source", pd.Series("csv", index=recs.index)),
                          source_updated_at=recs.get("updated_at", pd.Series(None, index=recs.index)))
    gold = survivorship.golden("customer", sources, [c for c in GOLDEN if c in recs.columns]).set_index("hub_id")
    out = df.copy()
    out["cluster_id"] = recs["cluster"].to_numpy()
    for col in GOLDEN:
        out[f"golden_{col}"] = out["cluster_id"].map(gold[col]) if col in gold.columns else None
    ids = out["id"].astype(str)
    out["match_probability"] = ids.map(best["probability"]).round(4) if len(best) else np.nan
    out["reason"] = ids.map(reasons).fillna("no match: a cluster of its own")
    stats = {**res.stats, "clusters": int(out["cluster_id"].nunique()),
             "records_merged": int((out.groupby("cluster_id")["id"].transform("size") > 1).sum()),
             "seconds": round(time.perf_counter() - start, 2)}
    return out, stats


def dedup_csv(src: str | Path, dst: str | Path, encoding: str = "utf-8-sig") -> dict:
    try:
        df = pd.read_csv(src, dtype=str, encoding=encoding, keep_default_na=False, na_values=[""])
    except UnicodeDecodeError:
        df = pd.read_csv(src, dtype=str, encoding="gb18030", keep_default_na=False, na_values=[""])
    out, stats = dedup_frame(df)
    out.to_csv(dst, index=False, encoding="utf-8-sig")
    return stats
