"""Dedup of a legacy customer export (CSV in, CSV out) with the same engine as the flows.

Input columns (UTF-8 or GBK; header row): ``id`` and ``name`` required; ``uscc``,
``phone``, ``address``, ``source`` (which system the row came from) and ``updated_at``
optional. Output: every input row with ``cluster_id``, the cluster's golden values
(``golden_name``, ``golden_uscc``, ``golden_phone``, ``golden_address``), the best match
probability and a reason a data steward can read. A file the command cannot take as it is
(empty, header only, no ``id`` / ``name`` column, a repeated id, a mix of encodings, a NUL)
is refused with one line saying so.
"""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from hub.cells import check_cells, csv_rows, open_output, read_text
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


def dedup_frame(df: pd.DataFrame, seats: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, dict]:
    """Cluster an export's rows; ``source`` is a role (erp, crm, registry) or the xref name of a
    seat in ``seats`` (role → xref name), which survivorship ranks by its role."""
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
    gold = survivorship.golden("customer", sources, [c for c in GOLDEN if c in recs.columns],
                               seats or {}).set_index("hub_id")
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


def read_export(src: str | Path, encoding: str | None = None) -> pd.DataFrame:
    """The export as text columns; ValueError (one line for the user) for a file the dedup cannot
    take as it is: missing, empty, header only, undecodable, without ``id`` / ``name``, with a
    blank or repeated id, with control characters."""
    text = read_text(src, encoding)
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise ValueError(f"{src}: not a CSV file pandas can read ({str(exc).strip()})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = sorted({"id", "name"} - set(df.columns))
    if missing:
        raise ValueError(f"{src}: missing column(s) {', '.join(missing)} (id and name are required, see docs/dedup.md)")
    if df.empty:
        raise ValueError(f"{src}: a header but no records")
    blank = df["id"].isna().to_numpy()
    if blank.any():
        raise ValueError(f"{src}: row {int(blank.argmax()) + 2}, id: blank (every record needs an id)")
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        rows = [str(n + 2) for n, v in enumerate(df["id"]) if v == dup.iloc[0]]
        raise ValueError(f"{src}: id {dup.iloc[0]!r} appears on rows {', '.join(rows)} ({dup.nunique()} id(s) "
                         "repeated): each record must have its own id")
    check_cells(df, src)
    return df


def dedup_csv(src: str | Path, dst: str | Path, encoding: str | None = None,
              seats: Mapping[str, str] | None = None) -> dict:
    """Dedup ``src`` into ``dst``; text cells of the output are neutralised against formula
    injection (:mod:`hub.cells`)."""
    df = read_export(src, encoding)
    out, stats = dedup_frame(df, seats)
    with open_output(dst) as fh:
        w = csv.writer(fh)
        w.writerow(list(out.columns))
        w.writerows(csv_rows(out.itertuples(index=False, name=None)))
    return stats
