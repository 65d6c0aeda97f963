"""Derived columns the dedup configs block on and compare.

Chinese company names: the registered name minus what typists vary (widths, brackets,
spaces, legal-form suffix) is ``name_key``; minus a leading or bracketed region too is
``name_core``, with a deny list for brand names that start like a place (阿里巴巴 is not
阿里 + 巴巴). A branch (分公司, 分行, 办事处 ...) is kept apart: it is its own legal entity.
"""
from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd
from pypinyin import Style, lazy_pinyin

from quality import uscc
from quality.names import REGION, name_key, split_branch

#: Names that begin like a place but are brands: never strip these (../shared/LIBRARIES.md).
DENY = ("阿里", "中山大学", "长安", "海南航空", "吉林化纤", "中国")
REGION_SUFFIX = "(?:省|市|自治区|特别行政区|地区|区|县)?"
_REGION = REGION
_LEADING_REGION = re.compile(f"^(?:(?:{_REGION}){REGION_SUFFIX})+")
_TRAILING_REGION = re.compile(f"(?:{_REGION}){REGION_SUFFIX}$")
_PHONE = re.compile(r"[^0-9]")


_ANY_REGION = re.compile(f"({REGION})")


def _name_region(base: str) -> str | None:
    """The region a registered name carries (上海华测 → 上海, 华测（上海） → 上海), if any."""
    if not base or any(base.startswith(d.lower()) for d in DENY):
        return None
    m = _LEADING_REGION.match(base) or _TRAILING_REGION.search(base)
    if not m:
        return None
    found = _ANY_REGION.search(m.group(0))
    return found.group(1) if found else None


def _strip_region(key: str) -> str:
    if not key or any(key.startswith(d.lower()) for d in DENY):
        return key
    core = _LEADING_REGION.sub("", key)
    core = _TRAILING_REGION.sub("", core) if len(core) > 3 else core
    return core if len(core) >= 2 else key


@lru_cache(maxsize=200_000)
def _initials(text: str) -> str:
    return "".join(p[0] for p in lazy_pinyin(text, style=Style.FIRST_LETTER) if p)


@lru_cache(maxsize=200_000)
def _pinyin(text: str) -> str:
    return "".join(lazy_pinyin(text))


def company(df: pd.DataFrame) -> pd.DataFrame:
    """Add name_key, branch, name_core, name_pinyin, name_initials, phone_digits, city."""
    out = df.copy()
    if "uscc" in out.columns:  # only a valid code is evidence; a placeholder like 000…0 would tie strangers
        codes = out["uscc"].astype(object).where(out["uscc"].notna(), None)
        out["uscc"] = codes.where(codes.map(uscc.identifies), None)
    keys = name_key(out["name"]).astype(object)
    parts = [split_branch(k) if isinstance(k, str) else (None, None) for k in keys]
    base = [p[0] for p in parts]
    out["name_key"] = keys
    # "-" for a head office, so a branch against its head office is "different", not "unknown"
    out["branch"] = [(p[1] or "-") if k is not None else None for k, p in zip(keys, parts)]
    out["name_core"] = [_strip_region(b) if isinstance(b, str) else None for b in base]
    out["name_region"] = [_name_region(b) if isinstance(b, str) else None for b in base]
    out["name_pinyin"] = [_pinyin(c) if isinstance(c, str) else None for c in out["name_core"]]
    out["name_initials"] = [_initials(c) if isinstance(c, str) else None for c in out["name_core"]]
    phone = out["phone"] if "phone" in out.columns else pd.Series(None, index=out.index, dtype=object)
    digits = phone.astype("string").str.replace(_PHONE, "", regex=True)
    out["phone_digits"] = digits.astype(object).where(digits.str.len() >= 7, None)
    text = (out["name"].astype("string").fillna("") + " " +
            (out["address"].astype("string").fillna("") if "address" in out.columns else ""))
    out["city"] = text.str.extract(f"({_REGION})", expand=False).astype(object)
    return out


def person(df: pd.DataFrame) -> pd.DataFrame:
    """FEBRL-style person records: trimmed text, blanks as null."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype).startswith(("string", "str")):
            s = out[col].astype("string").str.strip()
            out[col] = s.astype(object).where(s.notna() & (s != ""), None)
    return out


PREPARERS = {"company": company, "person": person}
