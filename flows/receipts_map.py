"""The receipts flow's map step per source: raw rows → canonical rows, bad rows to quarantine.

Bank lines get their natural key (bank, our account, the bank's serial; a content hash where
a bank gives none), debit lines are skipped; an ERP receipt (U8 收款单) gets its unsettled
remainder from its lines, and one the hub itself wrote (echo) or finance already settled in the
ERP is skipped; an invoice gets its total and settled amount from its lines (the sums its spec's
``document`` names). Money leaves here as integer fen.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable

import pandas as pd

from flows.receipts_sources import FLOW, erp, lines_of, spec, system_of
from flows.steps import quarantine_errors
from hub import quarantine, receipts_model as rm, xref
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import frame_records, select_in, stage_append, stage_read, stage_write
from mappings import engine
from mappings.engine import Spec
from quality.reconcile.amounts import AmountError, to_fen


def _fen(values: pd.Series) -> pd.Series:
    return values.map(lambda v: to_fen(v) if v is not None and v == v else None).astype(object)


def _sum_fen(lines: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Σ of a money column per key, exactly (each cell to fen first: ODBC hands SQLite decimals as floats)."""
    if lines.empty:
        return pd.Series(dtype=object)
    return lines.assign(_f=_fen(lines[column]).fillna(0).astype("int64")).groupby(key)["_f"].sum()


def _yuan_text(fen: Any) -> str | None:
    if fen is None or fen != fen:
        return None
    fen = int(fen)
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _local_day(values: pd.Series) -> pd.Series:
    """The ERP's datetimes are local wall-clock times without a zone (U8's: the mapping read them
    as UTC): their calendar day as it stands."""
    return pd.to_datetime(values, utc=True).dt.strftime("%Y-%m-%d")


def skip(conn, ctx: StepContext, system: str, keys: list[Any], detail: str) -> int:
    """Records read but deliberately not taken, with why (for the report's outcomes)."""
    if keys:
        stage_append(conn, ctx.run_id, "skipped", pd.DataFrame({"system": system, "key": [str(k) for k in keys],
                                                                "detail": detail}))
    return len(keys)


def _apply(conn, ctx: StepContext, stage: str, entity: str, raw: pd.DataFrame, counts: StepCounts) -> pd.DataFrame:
    rules = spec(stage)
    result = engine.apply(rules, raw)
    counts.quarantined += quarantine_errors(conn, ctx, FLOW, entity, system_of(stage), "map", raw, result.errors,
                                            rules.key)
    return result.frame.drop(columns=["_row"])


def _with_sums(raw: pd.DataFrame, head: Spec, lines: pd.DataFrame) -> pd.DataFrame:
    """Each header with the sums of its lines its spec's ``document`` names (a receipt's open
    remainder, an invoice's total and settled amount), as exact yuan text."""
    key, sums = lines_of(head)
    for column, line_column in sums.items():
        raw[column] = raw[head.key].map(_sum_fen(lines, key, line_column)).map(_yuan_text)
    return raw


def _source_of(head: Spec, target: str) -> str:
    """The source column a spec maps to ``target``."""
    return next(f.source for f in head.fields if f.target == target)


def _latest(raw: pd.DataFrame, key: str, counts: StepCounts, conn, ctx: StepContext, system: str) -> pd.DataFrame:
    """One version per key (the overlap window and replays can bring a record twice)."""
    if "rowversion" in raw:
        raw = raw.assign(_rv=pd.to_numeric(raw["rowversion"], errors="coerce")).sort_values("_rv", kind="stable")
        raw = raw.drop(columns="_rv")
    dup = raw[key].astype(str).duplicated(keep="last")
    counts.skipped += skip(conn, ctx, system, raw.loc[dup, key].tolist(), "read twice (overlap window)")
    return raw[~dup].reset_index(drop=True)


def bank_key(lines: pd.DataFrame) -> pd.Series:
    """<bank>:<our account>:<serial>; without a serial, a hash of the line's content and its
    occurrence number (two identical transfers on one day stay two receipts)."""
    serial = lines["serial"].astype(object).where(lines["serial"].notna(), None)
    parts = [lines[c].astype(object).where(lines[c].notna(), "").astype(str)
             for c in ("value_date", "amount", "payer_account", "payer_name", "memo")]
    text = parts[0].str.cat(parts[1:], sep="|")
    digest = text.map(lambda t: hashlib.sha1(t.encode()).hexdigest()[:16])
    occurrence = digest.groupby([lines["sha256"], digest]).cumcount().astype(str)
    base = lines["bank"].astype(str) + ":" + lines["our_account"].fillna("").astype(str) + ":"
    return (base + serial.where(serial.notna(), "h" + digest + "-" + occurrence)).astype(str)


_VERSION = ["value_date", "amount", "direction"]


def _version(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ("file", "line", "value_date", "amount", "direction", "payer_name", "memo")}


def _told(version: dict[str, Any]) -> str:
    where = "stored" if version.get("stored") else f"{version['file']} line {version['line']}"
    return f"{version['value_date']} {version.get('direction') or 'credit'} {version['amount']} ({where})"


def _without_conflicts(conn, ctx: StepContext, raw: pd.DataFrame, counts: StepCounts) -> pd.DataFrame:
    """A bank's serial names one transaction: two lines under one key with a different date,
    amount or direction (in this run's files, or against the receipt already stored) are a
    conflict, not an overlap. Every version goes to quarantine under the key; none is taken."""
    if raw.empty:
        return raw
    money = raw[_VERSION].astype(object).where(raw[_VERSION].notna(), "").astype(str).agg("|".join, axis=1)
    versions = money.groupby(raw["native_key"]).transform("nunique")
    conflict = versions > 1
    stored = select_in(conn, rm.receipt, "native_key", raw["native_key"].tolist(),
                       where=[rm.receipt.c.source == "bank"],
                       columns=["native_key", "amount_fen", "value_date", "hub_id", "status", "file_sha256", "line_no"])
    before = {r["native_key"]: r for r in frame_records(stored)} if len(stored) else {}
    differs = pd.Series([k in before and (str(before[k]["value_date"])[:10] != d or a is None or
                                          to_fen(a) != before[k]["amount_fen"] or dr != "credit")
                         for k, d, a, dr in zip(raw["native_key"], raw["value_date"], raw["amount"], raw["direction"])],
                        index=raw.index, dtype=bool)
    bad = raw[conflict | differs]
    if bad.empty:
        return raw
    items = []
    for key, part in bad.groupby("native_key", sort=False):
        seen = [_version(r) for r in frame_records(part)]
        if key in before:
            b = before[key]
            seen.insert(0, {"stored": True, "hub_id": b["hub_id"], "status": b["status"],
                            "value_date": str(b["value_date"])[:10], "amount": _yuan_text(b["amount_fen"]),
                            "file_sha256": b["file_sha256"], "line": b["line_no"]})
        told = "; ".join(_told(v) for v in seen)
        items.append((str(key), {"native_key": str(key), "versions": seen},
                      [f"bank serial {part['serial'].iloc[0] or key} names different transactions: {told}. "
                       "A bank line never changes: ask the bank which is right"
                       + ("; the stored receipt stays as it is" if key in before else "; none of them is taken")]))
    quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity="receipt", system="bank", stage="map", items=items)
    counts.quarantined += len(bad)
    return raw[~(conflict | differs)]


def map_bank(conn, ctx: StepContext, raw: pd.DataFrame, counts: StepCounts) -> pd.DataFrame:
    for col in ("serial", "our_account", "payer_account", "payer_name", "memo", "parse_error", "amount", "direction"):
        if col not in raw:
            raw[col] = None
    raw["native_key"] = bank_key(raw)
    broken = raw[raw["parse_error"].notna()]
    if len(broken):
        errors = pd.DataFrame({"_row": broken.index, "field": "amount", "reason": broken["parse_error"]})
        counts.quarantined += quarantine_errors(conn, ctx, FLOW, "receipt", "bank", "map", raw, errors, "native_key")
    raw = raw[raw["parse_error"].isna()]
    raw = _without_conflicts(conn, ctx, raw, counts)
    not_credit = raw["direction"] != "credit"
    counts.skipped += skip(conn, ctx, "bank", raw.loc[not_credit, "native_key"].tolist(),
                           "a payment out or a zero line (借方 / 支出), not a receipt")
    raw = raw[~not_credit]
    dup = raw["native_key"].duplicated(keep="first")
    counts.skipped += skip(conn, ctx, "bank", raw.loc[dup, "native_key"].tolist(),
                           "the same statement line twice (overlapping statements)")
    raw = raw[~dup].reset_index(drop=True)
    good = _apply(conn, ctx, "bank", "receipt", raw, counts)
    good["native_key"] = good["_key"].astype(str)
    good["amount_fen"] = _fen(good["amount"])
    good["open_fen"] = good["amount_fen"]
    good["customer_code"] = None
    return good.drop(columns=["amount"])


def map_erp_receipts(conn, ctx: StepContext, raw: pd.DataFrame, counts: StepCounts) -> pd.DataFrame:
    head, adapter, system = spec("erp"), erp(), system_of("erp")
    raw = _latest(raw, head.key, counts, conn, ctx, system)
    raw = _with_sums(raw, head, stage_read(conn, ctx.run_id, "extract_lines", "erp"))
    number = _source_of(head, "receipt_no")
    written = set(xref.lookup(conn, "receipt", adapter.system, raw[number].astype(str).tolist())["native_key"])
    echo = raw[number].astype(str).isin(written)
    counts.skipped += skip(conn, ctx, system, raw.loc[echo, head.key].tolist(),
                           "written by the hub itself (the 收款单 of a bank receipt): not a receipt of its own")
    raw = raw[~echo].reset_index(drop=True)
    good = _apply(conn, ctx, "erp", "receipt", raw, counts)
    good["source"] = adapter.system
    good["amount_fen"] = _fen(good["amount"])
    good["open_fen"] = _fen(good["open_amount"])
    good["value_date"] = _local_day(good["value_date"])
    settled = good["open_fen"].fillna(0).astype("int64") <= 0
    remainder = lines_of(head)[1].get(_source_of(head, "open_amount"), "the open remainder")
    counts.skipped += skip(conn, ctx, system, good.loc[settled, "_key"].tolist(),
                           f"already settled in {adapter.label} ({remainder} = 0): finance wrote it off there")
    good = good[~settled].assign(native_key=lambda d: d["_key"].astype(str))
    return good.drop(columns=["amount", "open_amount"])


def map_invoices(conn, ctx: StepContext, raw: pd.DataFrame, counts: StepCounts) -> pd.DataFrame:
    head, system = spec("erp_invoice"), system_of("erp_invoice")
    raw = _latest(raw, head.key, counts, conn, ctx, system)
    raw = _with_sums(raw, head, stage_read(conn, ctx.run_id, "extract_lines", "erp_invoice"))
    good = _apply(conn, ctx, "erp_invoice", "open_item", raw, counts)
    red = pd.to_numeric(good["red"], errors="coerce").fillna(0).astype(int) == 1
    counts.skipped += skip(conn, ctx, system, good.loc[red, "_key"].tolist(),
                           "a red (return) invoice: nothing to collect")
    good = good[~red].copy()
    good["amount_fen"] = _fen(good["amount"])
    good["settled_fen"] = _fen(good["settled"]).fillna(0)
    good["doc_date"] = _local_day(good["doc_date"])
    return good.drop(columns=["amount", "settled", "red"])


def map_plans(conn, ctx: StepContext, raw: pd.DataFrame, counts: StepCounts) -> pd.DataFrame:
    head = spec("crm_plan")
    raw = raw.assign(rowversion=raw.get(head.version))
    raw = _latest(raw, head.key, counts, conn, ctx, system_of("crm_plan"))
    good = _apply(conn, ctx, "crm_plan", "payment_plan", raw.drop(columns=["rowversion"]), counts)
    good["amount_fen"] = _fen(good["amount"])
    good["received_fen"] = _fen(good["received"])
    good["due_date"] = pd.to_datetime(good["due_date"], utc=True).dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m-%d")
    return good.drop(columns=["amount", "received"])


def map_customers(conn, ctx: StepContext, raw: pd.DataFrame, counts: StepCounts) -> pd.DataFrame:
    raw = _latest(raw, spec("erp_customer").key, counts, conn, ctx, system_of("erp_customer"))
    return _apply(conn, ctx, "erp_customer", "payer", raw, counts)


#: Each extracted stream and the function that maps its (non-empty) rows.
MAPPERS: dict[str, Callable[[Any, StepContext, pd.DataFrame, StepCounts], pd.DataFrame]] = {
    "bank": map_bank, "erp": map_erp_receipts, "erp_invoice": map_invoices, "crm_plan": map_plans,
    "erp_customer": map_customers,
}


def map_all(ctx: StepContext) -> StepCounts:
    counts = StepCounts()
    with ctx.engine.begin() as conn:
        for stream, fn in MAPPERS.items():
            raw = stage_read(conn, ctx.run_id, "extract", stream)
            part = StepCounts(read=len(raw))
            try:
                good = fn(conn, ctx, raw, part) if not raw.empty else pd.DataFrame()
            except AmountError as exc:  # the mapping's decimal check lets no such value through
                raise AssertionError(f"money that passed the mapping is not money: {exc}") from None
            part.mapped = len(good)
            stage_write(conn, ctx.run_id, "map", good, stream)
            counts += part
    counts.rejected = counts.quarantined
    return counts
