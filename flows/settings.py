"""Flow settings that operations may tune without code, from the environment."""
from __future__ import annotations

import os

#: How a failed task is retried, the same in every DAG and in ``python -m flows run --retries``:
#: transient failures only, after 5 s, 10 s, 20 s … at most 5 minutes apart.
TASK_RETRIES = 3
RETRY_DELAY_S = 5.0
MAX_RETRY_DELAY_S = 300.0


def retry_delay(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based), as Airflow's exponential backoff waits."""
    return min(MAX_RETRY_DELAY_S, RETRY_DELAY_S * 2 ** (attempt - 1))


#: Below this many records a batch is too small for a reject rate to mean much.
MIN_ROWS_FOR_THRESHOLD = 20


def reject_threshold(flow: str) -> float:
    """Share of rejected records above which a run fails as "the source looks broken"."""
    return float(os.environ.get(f"HUB_REJECT_THRESHOLD_{flow.upper()}", os.environ.get("HUB_REJECT_THRESHOLD", "0.5")))


def write_chunk() -> int:
    """Records written to a target between two commits of their outcome."""
    return int(os.environ.get("HUB_WRITE_CHUNK", "200"))
