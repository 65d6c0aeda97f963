"""Bank statement layouts (``mappings/banks/*.yaml``): header aliases per bank, data not code.

Add a bank by adding a file; the connector picks the layout whose aliases fit a file's header
best (docs/protocols.md, "Bank statement files").
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

BANK_DIR = Path(__file__).resolve().parent / "banks"


@lru_cache(maxsize=1)
def layouts() -> tuple[dict[str, Any], ...]:
    """Every layout, the bank-specific ones first and ``generic`` last."""
    raw = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(BANK_DIR.glob("*.yaml"))]
    return tuple(sorted(raw, key=lambda r: r["code"] == "generic"))
