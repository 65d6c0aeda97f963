"""The reconciliation workbook finance gets per run (Excel, openpyxl).

Sheets: 汇总 (the run's figures), 已匹配 matched (every allocation posted this run with its rule,
confidence and evidence), 部分核销 partial (items partly paid), 待处理 exceptions (the open queue
with reason, proposal and the hub id the CLI takes), 客户汇总 per-customer totals, 逾期 overdue
plan instalments. Money is written as exact Decimal yuan with a ``#,##0.00`` format; every
text cell goes through :func:`hub.cells.append_row` (a payer named ``=cmd|…`` is text, not a
formula; a NUL in a name is shown as ``\\x00``).
"""
from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from hub.cells import append_row
from quality.reconcile.amounts import show, yuan

MONEY = "#,##0.00"


def file_name(flow: str, run_id: str) -> str:
    return f"{flow}__{re.sub(r'[^A-Za-z0-9_.-]+', '_', run_id)}.xlsx"


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, "", []))
    if isinstance(value, list):
        return "; ".join(
            (f"{v.get('item_id') or '→ credit'} {show(v.get('amount_fen'))}" if "amount_fen" in v else
             f"{v.get('item_id') or v.get('customer')} {show(v['open_fen']) if 'open_fen' in v else ''}".strip())
            if isinstance(v, dict) else str(v) for v in value)
    return str(value)


def _sheet(wb, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]], money: Sequence[int] = ()) -> None:
    ws = wb.create_sheet(title)
    append_row(ws, list(header))
    for row in rows:
        append_row(ws, list(row))
    for col in money:
        for cell in ws.iter_cols(min_col=col + 1, max_col=col + 1, min_row=2):
            for c in cell:
                c.number_format = MONEY
    ws.freeze_panes = "A2"
    for n, name in enumerate(header, start=1):
        ws.column_dimensions[ws.cell(1, n).column_letter].width = max(10, min(60, len(str(name)) * 2 + 4))


def _y(fen: Any):
    return None if fen is None or (isinstance(fen, float) and fen != fen) else yuan(int(fen))


def write(path: Path, *, figures: dict[str, Any], allocations: pd.DataFrame, receipts: pd.DataFrame,
          items: pd.DataFrame, exceptions: pd.DataFrame, plans: pd.DataFrame, as_of: date) -> Path:
    from openpyxl import Workbook

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "汇总 summary"
    append_row(ws, ["项目 figure", "值 value"])
    append_row(ws, ["as of", as_of.isoformat()])
    for k, v in figures.items():
        append_row(ws, [k, v])
    ws.column_dimensions["A"].width = 40

    rec = receipts.set_index("hub_id") if len(receipts) else pd.DataFrame()
    doc = items.set_index("item_key") if len(items) else pd.DataFrame()

    def r(h: str, col: str) -> Any:
        return rec.at[h, col] if len(rec) and h in rec.index else None

    def d(k: str, col: str) -> Any:
        return doc.at[k, col] if len(doc) and k in doc.index else None

    rows = []
    for a in (allocations.sort_values("seq").itertuples(index=False) if len(allocations) else []):
        rows.append([r(a.receipt_hub_id, "receipt_no"), r(a.receipt_hub_id, "source"), r(a.receipt_hub_id, "bank"),
                     str(r(a.receipt_hub_id, "value_date") or ""), r(a.receipt_hub_id, "payer_name"),
                     r(a.receipt_hub_id, "payer_account"), a.customer_code,
                     d(a.item_key, "doc_no") if a.kind != "credit" else "(credit 预收)", a.kind, _y(a.amount_fen),
                     _y(a.writeoff_fen), a.rule, a.confidence, _text(a.evidence), a.decided_by, a.receipt_hub_id])
    _sheet(wb, "已匹配 matched", ["收款号 receipt", "来源 source", "银行 bank", "日期 date", "付款方 payer", "付款账号 account",
                                 "客户 customer", "单据 document", "类型 kind", "金额 amount", "手续费 fee written off",
                                 "规则 rule", "置信度 confidence", "依据 evidence", "决定 by", "hub id"], rows, money=(9, 10))

    part = items[(items["open_fen"] > 0) & (items["hub_fen"] > 0)] if len(items) else items
    _sheet(wb, "部分核销 partial", ["客户 customer", "单据 document", "类型 kind", "订单 order", "金额 amount",
                                    "已收 settled", "未结 open"],
           ([p.customer_code, p.doc_no, p.kind, p.order_no, _y(p.amount_fen), _y(p.amount_fen - p.open_fen), _y(p.open_fen)]
            for p in part.itertuples(index=False)), money=(4, 5, 6))

    _sheet(wb, "待处理 exceptions", ["收款号 receipt", "日期 date", "付款方 payer", "付款账号 account", "金额 amount", "摘要 memo",
                                     "客户 customer", "原因 reason code", "原因 reason", "建议 proposal", "候选 candidates",
                                     "hub id (python -m quality.reconcile exceptions …)"],
           ([e.receipt_no, str(e.value_date), e.payer_name, e.payer_account, _y(e.open_fen or e.amount_fen), e.memo,
             e.customer_code, e.reason_code, e.reason, _text(e.proposal), _text(e.candidates), e.receipt_hub_id]
            for e in (exceptions.itertuples(index=False) if len(exceptions) else [])), money=(4,))

    cust = _customer_totals(allocations, items, exceptions)
    _sheet(wb, "客户汇总 customers", ["客户 customer", "本次收款笔数 receipts posted", "本次核销 allocated", "本次预收 credit",
                                      "待处理笔数 exceptions", "待处理金额 exception amount", "未结单据 open items",
                                      "未结金额 open amount"],
           ([c.customer, int(c.receipts), _y(c.allocated), _y(c.credit), int(c.exceptions), _y(c.exception_fen),
             int(c.open_items), _y(c.open_fen)] for c in cust.itertuples(index=False)), money=(2, 3, 5, 7))

    late = plans[plans["new_overdue"] == 1] if len(plans) else plans
    _sheet(wb, "逾期 overdue", ["客户 customer", "销售易客户 account", "订单 order", "合同 contract", "期次 instalment",
                                "到期日 due", "计划 planned", "已回款 received", "未回款 outstanding", "逾期天数 days",
                                "回款计划 plan id"],
           ([p.customer_code, p.account_id, p.order_no, p.contract_no, p.instalment, str(p.due_date), _y(p.amount_fen),
             _y(p.new_received), _y(p.amount_fen - p.new_received), p.overdue_days, p.crm_id]
            for p in late.itertuples(index=False)), money=(6, 7, 8))
    wb.save(path)
    return path


def _customer_totals(allocations: pd.DataFrame, items: pd.DataFrame, exceptions: pd.DataFrame) -> pd.DataFrame:
    frames = []
    if len(allocations):
        a = allocations.assign(credit=allocations["amount_fen"].where(allocations["kind"] == "credit", 0),
                               allocated=allocations["amount_fen"].where(allocations["kind"] != "credit", 0))
        frames.append(a.groupby("customer_code").agg(receipts=("receipt_hub_id", "nunique"), allocated=("allocated", "sum"),
                                                     credit=("credit", "sum")))
    if len(items):
        o = items[items["open_fen"] > 0]
        frames.append(o.groupby("customer_code").agg(open_items=("item_key", "size"), open_fen=("open_fen", "sum")))
    if len(exceptions):
        e = exceptions.dropna(subset=["customer_code"])
        frames.append(e.groupby("customer_code").agg(exceptions=("receipt_hub_id", "size"),
                                                     exception_fen=("open_fen", "sum")))
    cols = ["receipts", "allocated", "credit", "exceptions", "exception_fen", "open_items", "open_fen"]
    if not frames:
        return pd.DataFrame(columns=["customer", *cols])
    out = pd.concat(frames, axis=1)
    for c in cols:
        out[c] = out[c].fillna(0) if c in out else 0
    return out.rename_axis("customer").reset_index().sort_values("customer")
