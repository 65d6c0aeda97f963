"""Bounded subset sums: which few open items add up to one receipt (or which few receipts to
one item), and whether that answer is the only one.

LIBRARIES.md measured a subset-sum tier alone at 83 % right: a sum of several invoices often
has more than one solution. So every search here enumerates *all* combinations of 2..k
values from a small pool (at most ``MAX_POOL``, else uniqueness cannot be shown) and the
caller posts only a unique exact one. The combination index arrays are built once per
(pool size, k) and summed with numpy, so one search is a few vectorised sums, not a loop.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np

MAX_POOL = 24


@lru_cache(maxsize=256)
def _combos(n: int, k: int) -> np.ndarray:
    return np.array(list(combinations(range(n), k)), dtype=np.int32).reshape(-1, k)


def solutions(values: list[int], low: int, high: int, exact_at: int, *, min_size: int = 2,
              max_size: int = 4, limit: int = 5) -> tuple[list[tuple[int, ...]], bool]:
    """Index tuples of combinations of ``min_size``..``max_size`` values summing into [low, high].

    Returns (up to ``limit`` solutions, exact): when some combinations sum to ``exact_at``
    exactly only those are returned (an exact sum beats one within the fee tolerance).
    """
    n = len(values)
    if n < min_size or n > MAX_POOL:
        return [], False
    arr = np.asarray(values, dtype=np.int64)
    exact: list[tuple[int, ...]] = []
    near: list[tuple[int, ...]] = []
    for k in range(min_size, min(max_size, n) + 1):
        idx = _combos(n, k)
        sums = arr[idx].sum(axis=1)
        hit = np.nonzero((sums >= low) & (sums <= high))[0]
        for row in hit[: limit * 4]:
            combo = tuple(int(i) for i in idx[row])
            (exact if sums[row] == exact_at else near).append(combo)
        if len(exact) > limit:
            break
    if exact:
        return exact[:limit], True
    return near[:limit], False
