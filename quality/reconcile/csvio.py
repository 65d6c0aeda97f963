"""Reconcile two CSV files without the hub: receipts against open items (docs/reconciliation.md).

receipts.csv: ``receipt_id, date, amount, payer_name, payer_account, memo[, customer]``
items.csv:    ``item_id, kind, customer, customer_name, doc_date[, due_date], amount[, open_amount][, refs]``
accounts.csv (optional): ``account, customer`` — bank accounts known to belong to a customer.

Files may be UTF-8 (with or without BOM) or GBK/GB18030 (not a mix); amounts may carry thousand
separators, full-width digits or a currency sign. A file that cannot be taken as it is — missing
or empty, a repeated or blank id, a blank or non-money amount, an impossible date, a control
character — is refused with the row and the reason, before anything is matched. The output
has one row per allocation (status ``matched``) or per proposed piece of an exception (status
``exception``), with the reason; its text cells are neutralised against formula injection
(:mod:`hub.cells`).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from hub.cells import check_cells, csv_rows, date_text, open_output, read_text
from quality.names import name_key
from quality.reconcile.amounts import show, to_fen, yuan
from quality.reconcile.engine import Result, Settings, reconcile

RECEIPT_COLUMNS = ("receipt_id", "date", "amount")
ITEM_COLUMNS = ("item_id", "customer", "amount")
OUTPUT = ["receipt_id", "status", "item_id", "amount", "writeoff", "credit", "rule", "confidence", "customer",
          "customer_by", "reason_code", "reason", "evidence"]


def read_csv(path: Path | str, required: tuple[str, ...]) -> pd.DataFrame:
    """A CSV as text columns, decoded as UTF-8 or GB18030; missing required columns are an error."""
    text = read_text(path)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, csv.Error) as exc:
        raise ValueError(f"{path}: not a CSV file pandas can read ({str(exc).strip()})") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (see docs/reconciliation.md)")
    check_cells(frame, path)
    return frame.replace({"": None})


def _cells(frame: pd.DataFrame, column: str, path: Any, parse: Callable[[Any], Any], what: str,
           required: bool = False) -> pd.Series:
    """``parse`` of every cell of a column; a ValueError names the file, the row and the column."""
    def one(n: int, v: Any) -> Any:
        try:
            value = parse(v)
        except ValueError as exc:  # AmountError is one
            raise ValueError(f"{path}: row {n + 2}, {column}: {exc}") from None
        if value is None and required:
            raise ValueError(f"{path}: row {n + 2}, {column}: blank (every row needs {what})")
        return value
    return pd.Series([one(n, v) for n, v in enumerate(frame[column])], index=frame.index, dtype=object)


def _money(frame: pd.DataFrame, column: str, path: Any, required: bool = False) -> pd.Series:
    return _cells(frame, column, path, to_fen, "an amount", required)


def _dates(frame: pd.DataFrame, column: str, path: Any, required: bool = False) -> pd.Series | None:
    """ISO dates of a column; an impossible date (2026-02-30, not-a-date) is an error, never a
    date outside every window."""
    return _cells(frame, column, path, date_text, "a date", required) if column in frame else None


def _unique_ids(frame: pd.DataFrame, column: str, path: Any) -> None:
    """Two rows under one id would be merged into one: refuse, naming the rows."""
    ids = frame[column]
    blank = ids.isna()
    if blank.any():
        raise ValueError(f"{path}: row {int(blank.to_numpy().argmax()) + 2}, {column}: blank (every row needs an id)")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        first = dup.iloc[0]
        rows = [str(n + 2) for n, v in enumerate(ids) if v == first]
        raise ValueError(f"{path}: {column} {first!r} appears on rows {', '.join(rows)} "
                         f"({dup.nunique()} id(s) repeated): each row must have its own id")


def load(receipts_csv: Path | str, items_csv: Path | str, accounts_csv: Path | str | None = None):
    rec = read_csv(receipts_csv, RECEIPT_COLUMNS)
    if rec.empty:
        raise ValueError(f"{receipts_csv}: a header but no receipts: nothing to reconcile")
    its = read_csv(items_csv, ITEM_COLUMNS)
    _unique_ids(rec, "receipt_id", receipts_csv)
    _unique_ids(its, "item_id", items_csv)
    receipts = pd.DataFrame({"receipt_id": rec["receipt_id"], "amount_fen": _money(rec, "amount", receipts_csv, True),
                             "value_date": _dates(rec, "date", receipts_csv, True), "memo": rec.get("memo"),
                             "payer_name": rec.get("payer_name"), "payer_account": rec.get("payer_account"),
                             "customer": rec.get("customer")})
    amount = _money(its, "amount", items_csv, True)
    open_ = _money(its, "open_amount", items_csv) if "open_amount" in its else amount
    items = pd.DataFrame({"item_id": its["item_id"], "kind": its.get("kind", pd.Series("invoice", index=its.index)),
                          "customer": its["customer"], "open_fen": open_.where(open_.notna(), amount).astype("int64"),
                          "doc_date": _dates(its, "doc_date", items_csv), "due_date": _dates(its, "due_date", items_csv),
                          "refs": its.get("refs")})
    names = pd.DataFrame(columns=["name_key", "customer"])
    if "customer_name" in its:
        named = its.dropna(subset=["customer_name"])
        names = pd.DataFrame({"name_key": name_key(named["customer_name"]), "customer": named["customer"]}).dropna()
    accounts = read_csv(accounts_csv, ("account", "customer")) if accounts_csv else pd.DataFrame(
        columns=["account", "customer"])
    return receipts, items, accounts, names


def rows(result: Result) -> list[dict[str, Any]]:
    """The output rows: allocations of matched receipts, proposed pieces of exceptions."""
    out: list[dict[str, Any]] = []
    allocs = result.allocations.groupby("receipt_id") if len(result.allocations) else {}
    for r in result.receipts.itertuples(index=False):
        base = {"receipt_id": r.receipt_id, "customer": r.customer, "customer_by": r.customer_by}
        if r.status == "posted":
            for a in allocs.get_group(r.receipt_id).itertuples(index=False):
                credit = a.kind == "credit"
                out.append({**base, "status": "matched", "item_id": None if credit else a.item_id,
                            "amount": None if credit else yuan(a.amount_fen), "writeoff": yuan(a.writeoff_fen or 0),
                            "credit": yuan(a.amount_fen) if credit else None, "rule": a.rule,
                            "confidence": a.confidence, "evidence": json.dumps(a.evidence, ensure_ascii=False)})
            continue
        pieces = r.proposal or [{}]
        for p in pieces:
            credit = bool(p) and not p.get("item_id")
            out.append({**base, "status": "exception", "item_id": p.get("item_id"),
                        "amount": None if credit or not p else yuan(p["amount_fen"]),
                        "writeoff": yuan(p.get("writeoff_fen") or 0) if p else None,
                        "credit": yuan(p["amount_fen"]) if credit else None, "rule": None,
                        "confidence": r.confidence, "reason_code": r.reason_code, "reason": r.reason,
                        "evidence": json.dumps(r.evidence, ensure_ascii=False)})
    return out


def match_files(receipts_csv: Path | str, items_csv: Path | str, output: Path | str,
                accounts_csv: Path | str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Reconcile the files and write the allocations; returns the figures."""
    receipts, items, accounts, names = load(receipts_csv, items_csv, accounts_csv)
    result = reconcile(receipts, items, accounts, names, settings=settings or Settings())
    with open_output(output) as fh:
        w = csv.writer(fh)
        w.writerow(OUTPUT)
        w.writerows(csv_rows([row.get(k) for k in OUTPUT] for row in rows(result)))
    posted = result.stats.get("posted", 0)
    return {**result.stats, "auto_rate": round(posted / max(1, len(receipts)), 4),
            "allocated": show(int(result.allocations["amount_fen"].sum()) if len(result.allocations) else 0),
            "output": str(output)}
