"""Payer → customer: who sent the money, from the evidence a bank line carries.

In order of strength (as ERPNext does): the customer the source already names (a U8 收款单's
cDwCode), the payer's bank account when exactly one customer has used it, then the payer's
company name folded to its name key (``quality.names.name_key``: widths, brackets, spaces and
the legal-form suffix fold, a branch stays its own company). Ties abstain: an account or a
name key that several customers share is no evidence. All of it is merges on keys.
"""
from __future__ import annotations

import re
import unicodedata

import pandas as pd

from quality.names import name_key

_NOT_DIGIT = re.compile(r"[^0-9]")


def account_key(values: pd.Series) -> pd.Series:
    """Bank account numbers as digits only (spaces, dashes, full-width forms typed in)."""
    def one(v) -> str | None:
        if v is None or (isinstance(v, float) and v != v):
            return None
        digits = _NOT_DIGIT.sub("", unicodedata.normalize("NFKC", str(v)))
        return digits if len(digits) >= 6 else None
    return values.map(one).astype(object)


def _unique(pairs: pd.DataFrame, key: str) -> pd.DataFrame:
    """key → customer when one customer holds the key; ``ambiguous`` lists them when several do."""
    if pairs.empty:
        return pd.DataFrame(columns=[key, "customer", "ambiguous"])
    pairs = pairs.dropna().drop_duplicates()
    counts = pairs.groupby(key)["customer"].size()
    first = pairs.groupby(key)["customer"].first()
    out = pd.DataFrame({key: counts.index, "customer": first.reindex(counts.index).to_numpy()})
    shared = counts[counts > 1].index
    out["ambiguous"] = None
    if len(shared):
        lists = pairs[pairs[key].isin(shared)].groupby(key)["customer"].agg(lambda s: sorted(s))
        out.loc[out[key].isin(shared), "customer"] = None
        out["ambiguous"] = out[key].map(lists).astype(object)
    return out


def resolve(receipts: pd.DataFrame, accounts: pd.DataFrame, names: pd.DataFrame) -> pd.DataFrame:
    """One row per receipt: customer, customer_by (source | account | name), and the evidence.

    ``receipts``: receipt_id, customer (may be null), payer_name, payer_account.
    ``accounts``: account, customer. ``names``: name_key, customer.
    """
    out = pd.DataFrame({"receipt_id": receipts["receipt_id"].to_numpy()})
    given = receipts["customer"] if "customer" in receipts else pd.Series(None, index=receipts.index)
    out["given"] = given.astype(object).where(given.notna(), None).to_numpy()
    out["account"] = account_key(receipts.get("payer_account", pd.Series(None, index=receipts.index))).to_numpy()
    payer = receipts.get("payer_name", pd.Series(None, index=receipts.index))
    out["name_key"] = name_key(payer.astype(object).where(payer.notna(), None)).to_numpy()
    acc = accounts.assign(account=account_key(accounts["account"]))[["account", "customer"]] if len(accounts) else \
        pd.DataFrame(columns=["account", "customer"])
    by_acc = _unique(acc, "account").rename(columns={"customer": "by_account", "ambiguous": "account_ambiguous"})
    by_name = _unique(names[["name_key", "customer"]] if len(names) else pd.DataFrame(columns=["name_key", "customer"]),
                      "name_key").rename(columns={"customer": "by_name", "ambiguous": "name_ambiguous"})
    out = out.merge(by_acc, on="account", how="left").merge(by_name, on="name_key", how="left")
    for col in ("by_account", "by_name", "account_ambiguous", "name_ambiguous"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    customer = out["given"].copy()
    by = pd.Series(["source" if known else None for known in customer.notna()], dtype=object)  # None reads back NaN
    take = customer.isna() & out["by_account"].notna()
    customer[take], by[take] = out.loc[take, "by_account"], "account"
    take = customer.isna() & out["by_name"].notna()
    customer[take], by[take] = out.loc[take, "by_name"], "name"
    out["customer"], out["customer_by"] = customer, by
    # the account and the name disagree: the account wins, but the receipt is not certain
    out["conflict"] = (out["by_account"].notna() & out["by_name"].notna()
                       & (out["by_account"] != out["by_name"]) & out["given"].isna())
    return out
