"""The demo's (and the tests') check of the receipts flow against the sandbox's ground truth.

``receipts_truth.json`` says, per seeded receipt, what a correct reconciliation allocates and
whether it should be posted automatically; per plan instalment, what it received and whether
it is overdue. This compares the hub store and the CRM with it.
"""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub import receipts_model as rm, store


def against_truth(folder: Path) -> dict[str, Any]:
    """Auto-match rate, wrong auto-matches, exceptions by reason, plan mismatches."""
    truth = json.loads((folder / "receipts_truth.json").read_text(encoding="utf-8"))
    with store.engine().begin() as conn:
        r, a, e = rm.receipt.c, rm.allocation.c, rm.recon_exception.c
        rec = {(s, k): (h, st) for h, s, k, st in conn.execute(select(r.hub_id, r.source, r.native_key, r.status))}
        allocs: dict[str, dict[str, tuple[int, int]]] = {}
        for h, item, amount, fee in conn.execute(select(a.receipt_hub_id, a.item_key, a.amount_fen, a.writeoff_fen)):
            allocs.setdefault(h, {})[item] = (int(amount), int(fee or 0))
        reasons = dict(conn.execute(select(e.receipt_hub_id, e.reason).where(e.status == "open")).all())
        codes = dict(conn.execute(select(e.receipt_hub_id, e.reason_code).where(e.status == "open")).all())
    auto, wrong, missing, unexpected = 0, [], [], []
    exceptions: Counter = Counter()
    for t in truth["receipts"]:
        hit = rec.get((t["source"], t["key"]))
        if hit is None:
            missing.append(t["key"])
            continue
        hid, status = hit
        if status == "posted":
            auto += 1
            got = {k: v for k, v in allocs.get(hid, {}).items() if not k.startswith("credit:")}
            credit = sum(v[0] for k, v in allocs.get(hid, {}).items() if k.startswith("credit:"))
            want = {k: (v, t["writeoff"].get(k, 0)) for k, v in t["allocations"].items()}
            if t["expect"] != "auto" or got != want or credit != t["credit"]:
                wrong.append({"key": t["key"], "story": t["story"], "want": want, "got": got, "credit": credit})
        else:
            exceptions[codes.get(hid, "?")] += 1
            if t["expect"] == "auto":
                unexpected.append({"key": t["key"], "story": t["story"], "reason": codes.get(hid)})
    n = len(truth["receipts"])
    return {"receipts": n, "auto": auto, "auto_rate": auto / max(1, n), "wrong": wrong, "missing": missing,
            "unexpected_exceptions": unexpected, "exceptions": dict(exceptions),
            "exceptions_without_reason": [h for h, why in reasons.items() if not why or not codes.get(h)],
            "plans": plan_mismatches(folder, truth)}


def plan_mismatches(folder: Path, truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Plan instalments whose received amount or overdue flag in the CRM is not the truth's."""
    con = sqlite3.connect(folder / "crm.db")
    try:
        got = {str(i): (rec, late) for i, rec, late in con.execute(
            "select id, receivedAmount__c, overdue__c from paymentPlan")}
    finally:
        con.close()
    bad = []
    for p in truth["plans"]:
        received, late = got.get(p["crm_id"], (None, None))
        fen = None if received is None else round(received * 100)
        if fen != p["received"] or bool(late) != p["overdue"]:
            bad.append({**p, "crm_received_fen": fen, "crm_overdue": late})
    return bad


def summary(folder: Path) -> str:
    q = against_truth(folder)
    return (f"receipts against the seeded truth: {q['auto']} of {q['receipts']} posted automatically "
            f"({q['auto_rate']:.1%}), {len(q['wrong'])} wrong, exceptions {q['exceptions']} (every one with a reason: "
            f"{not q['exceptions_without_reason']}); plan instalments differing from the truth: {len(q['plans'])}; "
            f"the queue: python -m quality.reconcile exceptions list; the workbook: var/reports/receipts__*.xlsx")
