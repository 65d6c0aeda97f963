"""统一社会信用代码 (USCC) check character, GB 32100-2015.

Written here rather than taken from python-stdnum, whose ``validate()`` also insists the
first eight characters are digits and so rejects legitimate codes of non-business
registrants (see ../shared/LIBRARIES.md).
"""
from __future__ import annotations

import re

import pandas as pd

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
PATTERN = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
#: Codes that pass the check character but are typed in place of a real one.
PLACEHOLDERS = frozenset(c * 18 for c in "0123456789")


def check_character(first17: str) -> str:
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def is_valid(code: str | None) -> bool:
    """True when ``code`` has the GB 32100 form and its 18th character checks."""
    if not isinstance(code, str) or not PATTERN.match(code):
        return False
    return check_character(code[:17]) == code[17]


def identifies(code: str | None) -> bool:
    """A valid code that is not a placeholder: it names one legal entity, so two records that
    carry it are one company (dedup links them; U8 never gets a second customer with it)."""
    return is_valid(code) and code not in PLACEHOLDERS


def valid_mask(codes: pd.Series) -> pd.Series:
    """Per row: True valid, False invalid, <NA> where there is no code."""
    present = codes.notna()
    out = pd.Series(pd.NA, index=codes.index, dtype="boolean")
    if present.any():
        out[present] = codes[present].map(is_valid).astype("boolean")
    return out
