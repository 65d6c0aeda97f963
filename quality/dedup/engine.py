"""Blocking, comparison levels, Fellegi–Sunter weights trained by EM, and clusters.

Never O(n²): candidate pairs come only from blocks (records sharing a block key), a block
larger than ``max_block_size`` is walked as a sorted neighbourhood instead of all its
pairs, comparisons run over the pair arrays at once (rapidfuzz ``cpdist`` on all cores),
and EM runs over the distinct comparison patterns, not over the pairs.

Model as in Splink: ``u`` (how often a level occurs between two random records) from a
random sample of record pairs, ``m`` (how often it occurs between matches) and the prior
estimated by EM over the blocked pairs, match weight = log2 of the Bayes factor.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from rapidfuzz import distance, process
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from quality.dedup import prepare

log = logging.getLogger("quality.dedup")
RULE_DIR = Path(__file__).resolve().parent.parent / "rules"
NULL = -1

SCORERS = {
    "jaro_winkler": distance.JaroWinkler.normalized_similarity,
    "levenshtein": distance.Levenshtein.normalized_similarity,
    "indel": distance.Indel.normalized_similarity,
}
DISTANCES = {
    "levenshtein": distance.Levenshtein.distance,
    "damerau_levenshtein": distance.DamerauLevenshtein.distance,
}


@dataclass(frozen=True)
class Comparison:
    """One column's comparison: exact, similarity thresholds, or edit-distance thresholds.

    Levels run from the strongest (0: equal) down to "else"; a null on either side is
    NULL and contributes nothing to the weight.
    """

    column: str
    method: str = "exact"          # exact | similarity | distance
    scorer: str = "jaro_winkler"   # for similarity / distance
    thresholds: tuple[float, ...] = ()
    veto: bool = False             # both present and different: never a match
    #: both present and equal: always a match, whatever the other columns say (a valid
    #: 统一社会信用代码 names one legal entity; a reviewer's "distinct" still wins)
    decisive: bool = False

    @property
    def n_levels(self) -> int:
        return 2 + len(self.thresholds)  # equal, each threshold, else


@dataclass(frozen=True)
class DedupConfig:
    entity: str
    preparer: str
    id_column: str
    blocking: tuple[tuple[str, ...], ...]
    comparisons: tuple[Comparison, ...]
    max_block_size: int = 200
    window: int = 10
    match_probability: float = 0.95
    review_probability: float = 0.5
    u_sample_pairs: int = 200_000
    em_iterations: int = 40
    seed: int = 42


@lru_cache(maxsize=8)
def load_config(name: str) -> DedupConfig:
    raw = yaml.safe_load((RULE_DIR / f"{name}_dedup.yaml").read_text(encoding="utf-8"))
    comps = tuple(Comparison(column=c["column"], method=c.get("method", "exact"), scorer=c.get("scorer", "jaro_winkler"),
                             thresholds=tuple(c.get("thresholds", ())), veto=bool(c.get("veto", False)),
                             decisive=bool(c.get("decisive", False)))
                  for c in raw["comparisons"])
    return DedupConfig(entity=raw["entity"], preparer=raw["preparer"], id_column=raw.get("id_column", "_row"),
                       blocking=tuple(tuple(b) for b in raw["blocking"]), comparisons=comps,
                       **{k: raw[k] for k in ("max_block_size", "window", "match_probability", "review_probability",
                                              "u_sample_pairs", "em_iterations", "seed") if k in raw})


# --- blocking -------------------------------------------------------------------------------------

def _block_pairs(keys: pd.Series, max_block: int, window: int, order: pd.Series | None) -> np.ndarray:
    """Pairs (i < j, positional) of rows sharing a non-null key."""
    present = keys.dropna()
    if present.empty:
        return np.empty((0, 2), dtype=np.int64)
    codes, _ = pd.factorize(present, sort=False)
    pos = present.index.to_numpy()
    sort = np.argsort(codes, kind="stable")
    codes, pos = codes[sort], pos[sort]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    sizes = np.diff(np.r_[starts, len(codes)])
    out = []
    for size in np.unique(sizes[sizes > 1]):
        group_starts = starts[sizes == size]
        members = pos[group_starts[:, None] + np.arange(size)]  # (groups, size)
        if size <= max_block:
            a, b = np.triu_indices(size, k=1)
        else:  # sorted neighbourhood: each record against the next `window` in a stable order
            if order is not None:
                members = np.take_along_axis(members, np.argsort(order.to_numpy()[members], axis=1, kind="stable"), 1)
            a = np.concatenate([np.arange(size - k) for k in range(1, window + 1)])
            b = np.concatenate([np.arange(k, size) for k in range(1, window + 1)])
        pa, pb = members[:, a].ravel(), members[:, b].ravel()
        out.append(np.stack([np.minimum(pa, pb), np.maximum(pa, pb)], axis=1))
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def block_keys(df: pd.DataFrame, cfg: DedupConfig) -> dict[str, pd.Series]:
    """Per blocking rule, each record's key (null where a rule's column is missing)."""
    out = {}
    for rule in cfg.blocking:
        if any(c not in df.columns for c in rule):
            continue
        cols = df[list(rule)]
        texts = [cols[c].astype("string") for c in rule]
        key = texts[0].str.cat(texts[1:], sep="\x1f") if len(texts) > 1 else texts[0]
        out["+".join(rule)] = key.where(cols.notna().all(axis=1)).astype(object).where(lambda k: k.notna(), None)
    return out


def candidate_pairs(df: pd.DataFrame, cfg: DedupConfig) -> np.ndarray:
    """Union of the pairs of every blocking rule, each pair once (positional indices)."""
    frame = df.reset_index(drop=True)
    order = frame[cfg.comparisons[0].column].astype(str) if cfg.comparisons else None
    parts = [_block_pairs(key, cfg.max_block_size, cfg.window, order) for key in block_keys(frame, cfg).values()]
    pairs = np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64)
    if not len(pairs):
        return pairs
    n = np.int64(len(frame))
    code = np.unique(pairs[:, 0].astype(np.int64) * n + pairs[:, 1])
    return np.stack([code // n, code % n], axis=1)


# --- comparison levels ----------------------------------------------------------------------------

#: Pairs compared at a time: bounds the memory of the string columns' left and right sides.
LEVEL_CHUNK = 500_000


def _level(comp, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """One comparison's levels for aligned object arrays of values (None where missing)."""
    null = pd.isna(left) | pd.isna(right)
    ls, rs = np.where(null, "", left), np.where(null, "", right)   # object arrays stay object arrays
    equal = (ls == rs).astype(bool)
    lev = np.full(len(ls), comp.n_levels - 1, dtype=np.int8)
    if comp.method == "similarity" and len(ls):
        sim = process.cpdist(ls, rs, scorer=SCORERS[comp.scorer], workers=-1)
        for i, t in reversed(list(enumerate(comp.thresholds, start=1))):
            lev[sim >= t] = i
    elif comp.method == "distance" and len(ls):
        dist = process.cpdist(ls, rs, scorer=DISTANCES[comp.scorer], workers=-1)
        for i, t in reversed(list(enumerate(comp.thresholds, start=1))):
            lev[dist <= t] = i
    lev[equal] = 0
    lev[null] = NULL
    return lev


def levels(df: pd.DataFrame, pairs: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """(pairs × comparisons) int8 matrix of comparison levels, computed in chunks of pairs."""
    frame = df.reset_index(drop=True)
    out = np.empty((len(pairs), len(cfg.comparisons)), dtype=np.int8)
    for k, comp in enumerate(cfg.comparisons):
        if comp.column not in frame.columns:  # an optional input column that is absent: all unknown
            out[:, k] = NULL
            continue
        # text in object arrays, never numpy's fixed-width str: one over-long value would size every row
        col = frame[comp.column].map(lambda v: None if pd.isna(v) else str(v)).to_numpy(dtype=object)
        for start in range(0, len(pairs), LEVEL_CHUNK):
            part = pairs[start:start + LEVEL_CHUNK]
            out[start:start + len(part), k] = _level(comp, col[part[:, 0]], col[part[:, 1]])
    return out


# --- Fellegi–Sunter with EM -----------------------------------------------------------------------

@dataclass
class Model:
    """m and u probabilities per comparison level, and the prior match probability."""

    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float                      # P(match) among the blocked pairs EM was trained on
    iterations: int = 0
    history: list[float] = field(default_factory=list)
    #: P(match) between two records drawn at random: the prior a score starts from, as in
    #: Splink. Blocked pairs are far likelier to match than random ones, so starting from
    #: ``prior`` would let weak evidence merge strangers that merely share a block.
    global_prior: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"m": [a.tolist() for a in self.m], "u": [a.tolist() for a in self.u], "prior": self.prior,
                "global_prior": self.global_prior, "iterations": self.iterations}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Model":
        return cls(m=[np.asarray(a) for a in data["m"]], u=[np.asarray(a) for a in data["u"]], prior=data["prior"],
                   iterations=data.get("iterations", 0), global_prior=data.get("global_prior"))

    def score(self, lv: np.ndarray) -> np.ndarray:
        """Match probability of pairs, starting from the prior of two random records."""
        prior = self.global_prior if self.global_prior is not None else self.prior
        w = self.weights(lv) + np.log2(prior / (1 - prior))
        return 1.0 / (1.0 + np.power(2.0, -w))

    def weights(self, lv: np.ndarray) -> np.ndarray:
        """log2 Bayes factor per pair (nulls add 0)."""
        total = np.zeros(len(lv))
        for k in range(lv.shape[1]):
            bf = np.log2(self.m[k] / self.u[k])
            col = lv[:, k]
            total += np.where(col == NULL, 0.0, bf[np.clip(col, 0, None)])
        return total

    def probability(self, lv: np.ndarray) -> np.ndarray:
        w = self.weights(lv) + np.log2(self.prior / (1 - self.prior))
        return 1.0 / (1.0 + np.power(2.0, -w))

    def describe(self, cfg: DedupConfig) -> list[dict[str, Any]]:
        return [{"column": c.column, "m": np.round(self.m[k], 4).tolist(), "u": np.round(self.u[k], 6).tolist()}
                for k, c in enumerate(cfg.comparisons)]


def _level_frequencies(lv: np.ndarray, weights: np.ndarray, n_levels: list[int]) -> list[np.ndarray]:
    out = []
    for k, n in enumerate(n_levels):
        col = lv[:, k]
        ok = col != NULL
        freq = np.bincount(col[ok].astype(np.int64), weights=weights[ok], minlength=n).astype(float)
        out.append((freq + 1e-3) / (freq.sum() + 1e-3 * n))
    return out


def estimate_u(df: pd.DataFrame, cfg: DedupConfig) -> list[np.ndarray]:
    """Level frequencies among random record pairs (almost all non-matches)."""
    n = len(df)
    rng = np.random.default_rng(cfg.seed)
    size = min(cfg.u_sample_pairs, max(1, n * (n - 1) // 2))
    a, b = rng.integers(0, n, size), rng.integers(0, n, size)
    keep = a != b
    pairs = np.stack([np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])], axis=1)
    lv = levels(df, pairs, cfg)
    return _level_frequencies(lv, np.ones(len(lv)), [c.n_levels for c in cfg.comparisons])


def train(lv: np.ndarray, u: list[np.ndarray], cfg: DedupConfig) -> Model:
    """EM for m and the prior over the distinct patterns of the blocked pairs (u fixed)."""
    patterns, counts = np.unique(lv, axis=0, return_counts=True)
    n_levels = [c.n_levels for c in cfg.comparisons]
    m = [np.linspace(0.9, 0.02, n) / np.linspace(0.9, 0.02, n).sum() for n in n_levels]
    model = Model(m=m, u=u, prior=0.1)
    for it in range(cfg.em_iterations):
        p = model.probability(patterns)
        new_m = _level_frequencies(patterns, counts * p, n_levels)
        prior = float(np.clip((counts * p).sum() / counts.sum(), 1e-6, 1 - 1e-6))
        change = max(float(np.abs(a - b).max()) for a, b in zip(new_m, model.m))
        model.m, model.prior, model.iterations = new_m, prior, it + 1
        model.history.append(change)
        if change < 1e-5:
            break
    return model


# --- the whole thing ------------------------------------------------------------------------------

@dataclass
class MatchResult:
    records: pd.DataFrame        # prepared records with a ``cluster`` column
    pairs: pd.DataFrame          # left, right (ids), probability, decision, evidence columns
    model: Model
    stats: dict[str, Any]


def find_matches(df: pd.DataFrame, config: str | DedupConfig, decisions: pd.DataFrame | None = None,
                 model: Model | None = None, prepared: bool = False) -> MatchResult:
    """Score candidate pairs and cluster ``df``; ``decisions`` (left, right, decision in
    {merge, distinct}) are a reviewer's and override the model. Without ``model`` one is
    trained on ``df`` (u by random sampling, m and the prior by EM)."""
    cfg = load_config(config) if isinstance(config, str) else config
    recs = (df if prepared else prepare.PREPARERS[cfg.preparer](df)).reset_index(drop=True)
    ids = recs[cfg.id_column].astype(str).to_numpy()
    pairs = candidate_pairs(recs, cfg)
    lv = levels(recs, pairs, cfg)
    if model is None:
        u = estimate_u(recs, cfg)
        model = train(lv, u, cfg) if len(lv) else Model(m=u, u=u, prior=0.5)
        all_pairs = max(1.0, len(recs) * (len(recs) - 1) / 2)
        model.global_prior = float(np.clip(model.prior * len(lv) / all_pairs, 1e-12, 0.5))
    prob = model.score(lv) if len(lv) else np.empty(0)
    for k, comp in enumerate(cfg.comparisons):
        if comp.veto and len(lv):
            prob[lv[:, k] == comp.n_levels - 1] = 0.0  # present on both sides and unlike
    decisive = np.zeros(len(lv), dtype=bool)
    for k, comp in enumerate(cfg.comparisons):
        if comp.decisive and len(lv):
            decisive |= lv[:, k] == 0  # present on both sides and equal: outranks every veto
    prob[decisive] = 1.0
    decision = np.where(prob >= cfg.match_probability, "match",
                        np.where(prob >= cfg.review_probability, "review", "distinct")).astype(object)
    out = pd.DataFrame({"left": ids[pairs[:, 0]] if len(pairs) else [], "right": ids[pairs[:, 1]] if len(pairs) else [],
                        "probability": prob, "decision": decision, "decisive": decisive})
    for k, comp in enumerate(cfg.comparisons):
        out[f"level_{comp.column}"] = lv[:, k] if len(lv) else []
    if decisions is not None and len(decisions):
        out = _apply_decisions(out, decisions)
    out = _untangle(recs, ids, out, [c.column for c in cfg.comparisons if c.veto])
    recs["cluster"] = clusters(ids, out)
    stats = {"records": len(recs), "candidate_pairs": int(len(pairs)), "matches": int((out["decision"] == "match").sum()),
             "review": int((out["decision"] == "review").sum()), "em_iterations": model.iterations,
             "prior": round(model.prior, 6)}
    log.info("dedup %s: %s", cfg.entity, stats)
    return MatchResult(recs, out, model, stats)


def _apply_decisions(pairs: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    d = decisions.copy()
    d["a"], d["b"] = d[["left", "right"]].min(axis=1), d[["left", "right"]].max(axis=1)
    key = pairs[["left", "right"]].min(axis=1) + "\x1f" + pairs[["left", "right"]].max(axis=1)
    verdict = dict(zip(d["a"] + "\x1f" + d["b"], d["decision"]))
    manual = key.map(verdict)
    pairs.loc[manual.notna(), "decision"] = manual[manual.notna()].map({"merge": "match", "distinct": "distinct"})
    pairs["by_reviewer"] = manual.notna()
    extra = d[~(d["a"] + "\x1f" + d["b"]).isin(key) & (d["decision"] == "merge")]
    if len(extra):
        pairs = pd.concat([pairs, pd.DataFrame({"left": extra["a"], "right": extra["b"], "probability": 1.0,
                                                "decision": "match", "by_reviewer": True})], ignore_index=True)
    return pairs


def _untangle(recs: pd.DataFrame, ids: np.ndarray, pairs: pd.DataFrame, veto: list[str], rounds: int = 3) -> pd.DataFrame:
    """A cluster must not hold two different values of a veto column (two USCCs, two
    regions): a record lacking the value can bridge two companies (恒骏科技 matching both
    北京恒骏科技 and 天津恒骏科技). Such bridging edges go to review instead."""
    if not veto or pairs.empty:
        return pairs
    pairs = pairs.copy()
    values = {c: pd.Series(recs[c].to_numpy(), index=ids) for c in veto if c in recs.columns}
    for _ in range(rounds):
        cl = pd.Series(clusters(ids, pairs), index=ids)
        bad: dict[str, set] = {}
        for col, vals in values.items():
            distinct = vals.dropna().groupby(cl[vals.dropna().index]).nunique()
            bad[col] = set(distinct[distinct > 1].index)
        if not any(bad.values()):
            return pairs
        match = pairs["decision"] == "match"
        demote = pd.Series(False, index=pairs.index)
        for col, clusters_bad in bad.items():
            if not clusters_bad:
                continue
            in_bad = pairs["left"].map(cl).isin(clusters_bad)
            one_blank = pairs["left"].map(values[col]).isna() ^ pairs["right"].map(values[col]).isna()
            demote |= match & in_bad & one_blank & ~pairs["decisive"].fillna(False).astype(bool)
        if not demote.any():
            return pairs
        pairs.loc[demote, "decision"] = "review"
    return pairs


def clusters(ids: np.ndarray, pairs: pd.DataFrame) -> np.ndarray:
    """Connected components of the match edges; cluster id = the smallest member id."""
    n = len(ids)
    index = pd.Series(np.arange(n), index=ids)
    edges = pairs[pairs["decision"] == "match"]
    a = index.reindex(edges["left"]).to_numpy()
    b = index.reindex(edges["right"]).to_numpy()
    ok = ~(np.isnan(a.astype(float)) | np.isnan(b.astype(float)))
    graph = coo_matrix((np.ones(int(ok.sum())), (a[ok].astype(int), b[ok].astype(int))), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    first = pd.Series(ids).groupby(comp).transform("min")
    return first.to_numpy()
