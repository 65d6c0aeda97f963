"""Flow settings that operations may tune without code, from the environment."""
from __future__ import annotations

import os

#: Below this many records a batch is too small for a reject rate to mean much.
MIN_ROWS_FOR_THRESHOLD = 20


def reject_threshold(flow: str) -> float:
    """Share of rejected records above which a run fails as "the source looks broken"."""
    return float(os.environ.get(f"HUB_REJECT_THRESHOLD_{flow.upper()}", os.environ.get("HUB_REJECT_THRESHOLD", "0.5")))


def write_chunk() -> int:
    """Records written to a target between two commits of their outcome."""
    return int(os.environ.get("HUB_WRITE_CHUNK", "200"))
