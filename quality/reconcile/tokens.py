"""Document references in bank memos (摘要 / 附言 / 用途), as Odoo tokenises a statement label.

A memo like ``付HT2025-0012第2期货款，发票03120456`` holds the contract ``HT2025-0012`` and the
invoice ``03120456``. Tokens are the runs of Latin letters and digits (after NFKC folds
full-width forms), with the separators people type inside numbers (``-``, ``/``, ``_``)
dropped and letters upper-cased; only tokens of six or more characters holding a digit
count, so amounts like ``12345`` and words like ``RMB`` never look like a document.
Document numbers are normalised the same way, so ``HT2025-0012`` and ``ht20250012`` meet.
"""
from __future__ import annotations

import re
import unicodedata
import pandas as pd

MIN_LENGTH = 6
_RUN = re.compile(r"[A-Z0-9](?:[A-Z0-9]|[-/_.](?=[A-Z0-9]))*")
_SEP = re.compile(r"[-/_.]")


def normalise(ref: str | None) -> str | None:
    """A document number in token form (``HT2025-0012`` → ``HT20250012``), or None."""
    if ref is None or (isinstance(ref, float) and ref != ref):
        return None
    text = _SEP.sub("", unicodedata.normalize("NFKC", str(ref)).upper().strip())
    text = re.sub(r"\s+", "", text)
    return text or None


def tokens(memo: str | None) -> list[str]:
    """The reference-like tokens of one memo, in order, without repeats."""
    if not memo or not isinstance(memo, str):
        return []
    text = unicodedata.normalize("NFKC", memo).upper()
    out: dict[str, None] = {}
    for m in _RUN.finditer(text):
        tok = _SEP.sub("", m.group(0))
        if len(tok) >= MIN_LENGTH and any(c.isdigit() for c in tok):
            # "03120456.00" is an amount, not a document: a decimal point splits the run
            out.setdefault(tok, None)
            if "." in m.group(0):
                for part in m.group(0).split("."):
                    part = _SEP.sub("", part)
                    if len(part) >= MIN_LENGTH and any(c.isdigit() for c in part):
                        out.setdefault(part, None)
    return list(out)


def explode(ids: pd.Series, texts: pd.Series) -> pd.DataFrame:
    """(id, token) rows for every token of every memo: the set-based form the matcher joins on."""
    lists = texts.map(tokens)
    frame = pd.DataFrame({"id": ids.to_numpy(), "token": lists.to_numpy()})
    frame = frame.explode("token").dropna(subset=["token"])
    return frame.reset_index(drop=True)


def ref_index(ids: pd.Series, refs: pd.Series) -> pd.DataFrame:
    """(id, token) rows of every document number an item is known by (``|``-joined text), built
    with Arrow string kernels: it runs over every open item."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(refs.astype(object).where(refs.notna(), "").astype(str).to_numpy(dtype=object), type=pa.string())
    parts = pc.split_pattern(text, "|")
    owner = pc.list_parent_indices(parts)
    flat = pc.list_flatten(parts)
    flat = pc.utf8_upper(pc.utf8_normalize(flat, "NFKC"))
    flat = pc.replace_substring_regex(flat, pattern=r"[\s\-/_.]", replacement="")
    keep = pc.greater_equal(pc.utf8_length(flat), MIN_LENGTH)
    frame = pd.DataFrame({"id": ids.to_numpy(dtype=object)[pc.filter(owner, keep).to_numpy()],
                          "token": pc.filter(flat, keep).to_numpy(zero_copy_only=False)})
    return frame.drop_duplicates().reset_index(drop=True)
