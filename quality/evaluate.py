"""Pairwise precision and recall of a clustering against known truth, without listing pairs.

TP = Σ C(n, 2) over (true entity, predicted cluster) groups; predicted pairs = Σ C(n, 2)
over clusters; true pairs = Σ C(n, 2) over entities.
"""
from __future__ import annotations

import pandas as pd


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise(truth: pd.Series, predicted: pd.Series) -> dict[str, float | int]:
    """``truth`` and ``predicted`` map the same record ids to an entity / a cluster."""
    df = pd.DataFrame({"truth": truth, "pred": predicted}).dropna()
    tp = _pairs(df.groupby(["truth", "pred"]).size())
    pred = _pairs(df.groupby("pred").size())
    true = _pairs(df.groupby("truth").size())
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"records": len(df), "true_pairs": true, "predicted_pairs": pred, "true_positives": tp,
            "false_merges": pred - tp, "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}
