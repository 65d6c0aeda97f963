"""Domain checks GX has no expectation for, computed as columns the suite then checks.

Kept to what GX cannot express: the USCC check character. Formats, lengths, sets and
nulls are plain GX expectations in ``quality/suites/*.yaml``.
"""
from __future__ import annotations

import pandas as pd

from quality import uscc


def derive(entity: str, df: pd.DataFrame) -> pd.DataFrame:
    if entity in ("customer", "customer_readiness") and "uscc" in df.columns:
        df["uscc_check_ok"] = uscc.valid_mask(df["uscc"].astype(object).where(df["uscc"].notna(), None))
    return df
