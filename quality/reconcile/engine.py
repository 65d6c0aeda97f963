"""The tiered matcher: receipts against open items (invoices, orders' uninvoiced plan amounts).

Tiers, strongest first (LIBRARIES.md, "Reconciliation"; ERPNext and Odoo work alike):

0. finance's decisions (accept the proposal, reject, reassign to a customer and items);
1. references: document numbers found in the memo, joined on a token index of the items;
2. payer → customer (source, bank account, name key; ties abstain), then an amount equal to
   one open item, or short of it by at most the fee tolerance, inside the date window,
   unique both ways;
3. a unique exact combination of 2..k of the customer's open items (one receipt, several
   invoices), or of 2..3 receipts (several receipts, one invoice);
4. everything else becomes an exception with a reason, a proposal and the candidates.

Every allocation carries its evidence and a confidence; only those at or above
``auto_confidence`` are posted, a lower one turns into an exception holding the proposal.
Candidates come from joins on (token), (customer, amount bucket) and per-customer pools, never
from a receipts × items product; the running state (what is still open) is a dict.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quality.reconcile import payers, reasons, subset, tokens
from quality.reconcile.amounts import show


@dataclass(frozen=True)
class Settings:
    """Tolerances finance may tune (environment ``HUB_RECON_*``, CLI flags)."""

    fee_tolerance_fen: int = 2000   # a receipt short of an item by up to ¥20 settles it (bank fee)
    window_days: int = 180          # an item dated up to this many days before the receipt
    lead_days: int = 31             # ... or this many days after it (invoiced after a prepayment)
    max_subset: int = 4             # at most this many items paid by one receipt
    max_receipt_group: int = 3      # at most this many receipts paying one item
    auto_confidence: float = 0.9    # posted automatically at or above this

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ.get
        return cls(fee_tolerance_fen=round(float(env("HUB_RECON_FEE_TOLERANCE", "20")) * 100),
                   window_days=int(env("HUB_RECON_WINDOW_DAYS", "180")),
                   lead_days=int(env("HUB_RECON_LEAD_DAYS", "31")),
                   max_subset=int(env("HUB_RECON_MAX_SUBSET", "4")),
                   max_receipt_group=int(env("HUB_RECON_MAX_RECEIPT_GROUP", "3")),
                   auto_confidence=float(env("HUB_RECON_AUTO_CONFIDENCE", "0.9")))


#: Confidence of each rule; the payer evidence lowers the amount-only rules.
CONFIDENCE: dict[str, float] = {
    "finance": 1.0, "reference": 0.99, "reference_fee": 0.97, "reference_partial": 0.95,
    "reference_subset": 0.95, "reference_overpayment": 0.93, "amount_exact": 0.97, "amount_fee": 0.93,
    "subset": 0.92, "subset_fee": 0.90, "receipts_group": 0.90,
}
NAME_PENALTY = 0.02   # a name key is weaker evidence than a bank account or the ERP's own customer
PROPOSAL = 0.6        # what a proposal the hub would not post is worth


@dataclass
class Result:
    allocations: pd.DataFrame   # posted pieces: receipt_id, item_id, kind, customer, amount_fen, writeoff_fen, rule, ...
    receipts: pd.DataFrame      # one row per receipt: status posted | exception, reason, proposal, candidates
    stats: dict[str, int] = field(default_factory=dict)


def _days(values: pd.Series) -> np.ndarray:
    """Dates as integer day numbers (NaT → a very old day, outside every window)."""
    ts = pd.to_datetime(values, errors="coerce")
    out = ts.to_numpy(dtype="datetime64[D]").astype("int64")
    out[ts.isna().to_numpy()] = -10**9
    return out


class _Book:
    """The matcher's running state: what is still open, and what became of each receipt."""

    def __init__(self, items: pd.DataFrame, settings: Settings) -> None:
        self.s = settings
        ids = items["item_id"].to_numpy(dtype=object).tolist()
        customers = [None if c is None or c != c else c for c in items["customer"].to_numpy(dtype=object)]
        doc = _days(items["doc_date"])
        due_col = items["due_date"] if "due_date" in items else items["doc_date"]
        due = _days(due_col.where(due_col.notna(), items["doc_date"]))
        self.open: dict[str, int] = dict(zip(ids, items["open_fen"].astype("int64").tolist()))
        self.customer: dict[str, str | None] = dict(zip(ids, customers))
        self.kind: dict[str, str] = dict(zip(ids, items["kind"].to_numpy(dtype=object).tolist()))
        self.doc_day: dict[str, int] = dict(zip(ids, doc.tolist()))
        self.due_day: dict[str, int] = dict(zip(ids, due.tolist()))
        # each customer's items, oldest due first (one lexsort, not a sort with a Python key)
        order = np.lexsort((np.arange(len(ids)), doc, due))  # ties keep the input order
        self.by_customer: dict[str, list[str]] = {}
        for k in order.tolist():
            c = customers[k]
            if c is not None:
                self.by_customer.setdefault(c, []).append(ids[k])
        self.allocations: list[dict[str, Any]] = []
        self.outcome: dict[str, dict[str, Any]] = {}

    # -- views --------------------------------------------------------------------------------
    def in_window(self, item: str, day: int) -> bool:
        return day - self.s.window_days <= self.doc_day[item] <= day + self.s.lead_days

    def pool(self, customer: str, day: int) -> list[str]:
        return [i for i in self.by_customer.get(customer, ()) if self.open[i] > 0 and self.in_window(i, day)]

    def describe(self, item: str) -> dict[str, Any]:
        return {"item_id": item, "kind": self.kind[item], "customer": self.customer[item], "open_fen": self.open[item],
                "doc_date": str(np.datetime64(self.doc_day[item], "D")) if self.doc_day[item] > -10**8 else None}

    # -- outcomes -----------------------------------------------------------------------------
    def decide(self, r: dict[str, Any], pieces: list[tuple[str, int, int]], credit: int, rule: str,
               confidence: float, evidence: dict[str, Any], customer: str | None) -> None:
        """Post ``pieces`` (item, amount, writeoff) and ``credit`` when confident enough, else
        queue them as the proposal of an exception (needs_review, or payer_conflict)."""
        fail_code, detail = "needs_review", f"{rule}, confidence {confidence:.2f} < {self.s.auto_confidence:.2f}"
        if r.get("conflict"):
            confidence = min(confidence, 0.85)
            fail_code, detail = "payer_conflict", f"account → {r.get('by_account')}, name → {r.get('by_name')}"
        if confidence >= self.s.auto_confidence:
            for item, amount, writeoff in pieces:
                self.open[item] -= amount + writeoff
                self.allocations.append({"receipt_id": r["receipt_id"], "item_id": item, "kind": self.kind[item],
                                         "customer": self.customer[item] or customer, "amount_fen": amount,
                                         "writeoff_fen": writeoff, "item_left_fen": self.open[item], "rule": rule,
                                         "confidence": confidence, "evidence": evidence})
            if credit:
                self.allocations.append({"receipt_id": r["receipt_id"], "item_id": None, "kind": "credit",
                                         "customer": customer, "amount_fen": credit, "writeoff_fen": 0,
                                         "item_left_fen": None, "rule": rule, "confidence": confidence,
                                         "evidence": evidence})
            self.outcome[r["receipt_id"]] = {"status": "posted", "customer": customer, "rule": rule,
                                             "confidence": confidence, "credit_fen": credit, "evidence": evidence}
            return
        self.fail(r, fail_code, detail, customer, _proposal(pieces, credit), [self.describe(i) for i, _, _ in pieces],
                  confidence, evidence)

    def fail(self, r: dict[str, Any], code: str, detail: str, customer: str | None,
             proposal: list[dict[str, Any]] | None = None, candidates: list[dict[str, Any]] | None = None,
             confidence: float = 0.0, evidence: dict[str, Any] | None = None) -> None:
        self.outcome[r["receipt_id"]] = {"status": "exception", "customer": customer, "reason_code": code,
                                         "reason": reasons.text(code, detail), "proposal": proposal or [],
                                         "candidates": candidates or [], "confidence": confidence,
                                         "evidence": evidence or {}}

    def done(self, rid: str) -> bool:
        return rid in self.outcome


# --- tiers -------------------------------------------------------------------------------------

def _payer_evidence(r: dict[str, Any]) -> str:
    by = r.get("customer_by")
    if by == "source":
        return "customer named by the source (U8 收款单 cDwCode)"
    if by == "account":
        return f"bank account {r.get('account')} belongs to {r.get('customer')}"
    if by == "name":
        return f"payer name key {r.get('name_key')} belongs to {r.get('customer')}"
    if by == "finance":
        return f"finance assigned {r.get('customer')}"
    return "payer not identified"


def _fifo(book: _Book, items: list[str], amount: int) -> tuple[list[tuple[str, int, int]], int]:
    """Apply ``amount`` to ``items`` in order, each up to what is open; the rest is credit."""
    pieces, left = [], amount
    for i in items:
        if left <= 0:
            break
        take = min(left, book.open[i])
        if take > 0:
            pieces.append((i, take, 0))
            left -= take
    return pieces, left


def _proposal(pieces: list[tuple[str, int, int]], credit: int) -> list[dict[str, Any]]:
    """Pieces (and any rest as credit) in the form an exception keeps and finance accepts."""
    out = [{"item_id": i, "amount_fen": a, "writeoff_fen": w} for i, a, w in pieces]
    return out + ([{"item_id": None, "amount_fen": credit, "writeoff_fen": 0}] if credit > 0 else [])


def _decisions(book: _Book, rows: dict[str, dict], decisions: pd.DataFrame) -> None:
    """Tier 0: finance's latest decision per receipt, applied before any matching."""
    if decisions is None or decisions.empty:
        return
    for d in decisions.to_dict("records"):
        r = rows.get(str(d["receipt_id"]))
        if r is None or book.done(r["receipt_id"]):
            continue
        action, who = d.get("action"), d.get("by") or "finance"
        evidence = {"decision": action, "by": who, "comment": d.get("comment")}
        if action == "reject":
            book.fail(r, "rejected_by_finance", str(d.get("comment") or ""), r.get("customer"), evidence=evidence)
        elif action == "accept":
            proposal = d.get("proposal") or []
            pieces = [(p["item_id"], int(p["amount_fen"]), int(p.get("writeoff_fen") or 0))
                      for p in proposal if p.get("item_id")]
            credit = sum(int(p["amount_fen"]) for p in proposal if not p.get("item_id"))
            stale = [i for i, a, w in pieces if i not in book.open or book.open[i] < a + w]
            if stale or sum(a for _, a, _ in pieces) + credit != r["amount_fen"]:
                book.fail(r, "decision_stale", ", ".join(stale), r.get("customer"), evidence=evidence)
                continue
            customer = next((book.customer[i] for i, _, _ in pieces if book.customer[i]), r.get("customer"))
            book.decide(r, pieces, credit, "finance", CONFIDENCE["finance"], evidence, customer)
        elif action == "reassign":
            r["customer"], r["customer_by"], r["conflict"] = d.get("customer"), "finance", False
            items = [i for i in (d.get("item_ids") or []) if i in book.open]
            if items:
                pieces, credit = _fifo(book, items, r["amount_fen"])
                book.decide(r, pieces, credit, "finance", CONFIDENCE["finance"], evidence, r["customer"])


def _references(book: _Book, rows: dict[str, dict], receipts: pd.DataFrame, items: pd.DataFrame) -> None:
    """Tier 1: document numbers in the memo (one join on tokens), applied in date order."""
    memo = tokens.explode(receipts["receipt_id"], receipts["memo"].astype(object).where(receipts["memo"].notna(), ""))
    index = tokens.ref_index(items["item_id"].astype(str), items["refs"])
    if memo.empty or index.empty:
        return
    hits = memo.merge(index, on="token", suffixes=("_r", "_i"))
    if hits.empty:
        return
    found_of: dict[str, dict[str, None]] = {}
    toks_of: dict[str, set[str]] = {}
    for rid, item, tok in zip(hits["id_r"].to_numpy(dtype=object), hits["id_i"].to_numpy(dtype=object),
                              hits["token"].to_numpy(dtype=object)):
        found_of.setdefault(rid, {})[item] = None
        toks_of.setdefault(rid, set()).add(tok)
    order = sorted(found_of, key=lambda rid: (rows[rid]["day"], rid))
    tol = book.s.fee_tolerance_fen
    for rid in order:
        r = rows[rid]
        if book.done(rid):
            continue
        found, toks = list(found_of[rid]), sorted(toks_of[rid])
        owners = {book.customer[i] for i in found} - {None}
        customer = r.get("customer")
        evidence = {"payer": _payer_evidence(r), "reference": f"memo names {', '.join(toks)}"}
        if customer is not None and owners and customer not in owners:
            pieces, credit = _fifo(book, [i for i in found if book.open[i] > 0], r["amount_fen"])
            book.fail(r, "reference_conflict", f"memo {', '.join(toks)} → {', '.join(sorted(owners))}; payer → {customer}",
                      customer, _proposal(pieces, credit),
                      [book.describe(i) for i in found], PROPOSAL, evidence)
            continue
        if customer is not None:
            found = [i for i in found if book.customer[i] in (customer, None)]
        elif len(owners) > 1:
            book.fail(r, "reference_ambiguous", f"{', '.join(toks)} → {', '.join(sorted(owners))}", None,
                      candidates=[book.describe(i) for i in found], evidence=evidence)
            continue
        else:
            customer = next(iter(owners), None)
            if customer is not None:
                r["customer"], r["customer_by"] = customer, "reference"
        live = sorted((i for i in found if book.open[i] > 0), key=lambda i: (book.due_day[i], book.doc_day[i], i))
        amount = r["amount_fen"]
        if not live:
            book.fail(r, "reference_settled", ", ".join(toks), customer,
                      [{"item_id": None, "amount_fen": amount, "writeoff_fen": 0}],
                      [book.describe(i) for i in found], PROPOSAL, evidence)
            continue
        total = sum(book.open[i] for i in live)
        if amount == total:
            book.decide(r, [(i, book.open[i], 0) for i in live], 0, "reference", CONFIDENCE["reference"],
                        evidence, customer)
        elif 0 < total - amount <= tol:
            pieces = [(i, book.open[i], 0) for i in live]
            last = pieces[-1]
            pieces[-1] = (last[0], last[1] - (total - amount), total - amount)
            book.decide(r, pieces, 0, "reference_fee", CONFIDENCE["reference_fee"],
                        evidence | {"fee": show(total - amount)}, customer)
        elif amount > total:
            book.decide(r, [(i, book.open[i], 0) for i in live], amount - total, "reference_overpayment",
                        CONFIDENCE["reference_overpayment"], evidence | {"credit": show(amount - total)}, customer)
        elif len(live) == 1:
            book.decide(r, [(live[0], amount, 0)], 0, "reference_partial", CONFIDENCE["reference_partial"],
                        evidence | {"left": show(total - amount)}, customer)
        else:
            _reference_subset(book, r, live, customer, evidence)


def _reference_subset(book: _Book, r: dict, live: list[str], customer: str | None, evidence: dict) -> None:
    """Several documents in the memo, the amount fits fewer of them: one, or a unique subset."""
    tol, amount = book.s.fee_tolerance_fen, r["amount_fen"]
    values = [book.open[i] for i in live]
    sols, exact = subset.solutions(values, amount, amount + tol, amount, min_size=1, max_size=len(live))
    if len(sols) == 1:
        chosen = [live[k] for k in sols[0]]
        pieces = [(i, book.open[i], 0) for i in chosen]
        fee = sum(book.open[i] for i in chosen) - amount
        if fee:
            pieces[-1] = (pieces[-1][0], pieces[-1][1] - fee, fee)
        book.decide(r, pieces, 0, "reference_subset", CONFIDENCE["reference_subset"] - (0 if exact else 0.02),
                    evidence, customer)
        return
    pieces, credit = _fifo(book, live, amount)
    book.fail(r, "ambiguous_combination" if sols else "reference_amount_mismatch",
              f"{show(amount)} against {', '.join(f'{i} {show(book.open[i])}' for i in live)}", customer,
              _proposal(pieces, credit),
              [book.describe(i) for i in live], PROPOSAL, evidence)


def _amounts(book: _Book, rows: dict[str, dict]) -> None:
    """Tier 2: customer known, one open item equal to the amount (or short by the fee), unique
    both ways. Candidates come from a join on (customer, amount bucket)."""
    todo = [r for r in rows.values() if not book.done(r["receipt_id"]) and r.get("customer")]
    live = [(i, c, o) for i, o in book.open.items() if o > 0 and (c := book.customer[i]) is not None]
    if not todo or not live:
        return
    tol, width = book.s.fee_tolerance_fen, max(book.s.fee_tolerance_fen, 1)
    rec = pd.DataFrame({"rid": [r["receipt_id"] for r in todo], "customer": [r["customer"] for r in todo],
                        "amount": [r["amount_fen"] for r in todo], "day": [r["day"] for r in todo]})
    rec = pd.concat([rec.assign(bucket=rec["amount"] // width),
                     rec.assign(bucket=(rec["amount"] + tol) // width)]).drop_duplicates(["rid", "bucket"])
    its = pd.DataFrame(live, columns=["item", "customer", "open"])
    its["bucket"] = its["open"] // width
    pairs = rec.merge(its, on=["customer", "bucket"])
    pairs = pairs[(pairs["open"] >= pairs["amount"]) & (pairs["open"] - pairs["amount"] <= tol)]
    if pairs.empty:
        return
    doc = pairs["item"].map(book.doc_day)
    # an item dated after the receipt, however long after, still makes the amount ambiguous
    # (先款后票: the invoice follows the money); only items inside the window are posted to
    in_window = (doc >= pairs["day"] - book.s.window_days) & (doc <= pairs["day"] + book.s.lead_days)
    pairs = pairs.assign(in_window=in_window.to_numpy())[in_window | (doc > pairs["day"])]
    exact_any = (pairs["open"] == pairs["amount"]).groupby(pairs["rid"]).transform("any")
    pairs = pairs[~exact_any | (pairs["open"] == pairs["amount"])]
    per_receipt = pairs.groupby("rid")["item"].transform("size")
    per_item = pairs.groupby("item")["rid"].transform("size")
    ambiguous = pairs[(per_receipt > 1) | (per_item > 1)]
    items_of = ambiguous.groupby("rid")["item"].agg(list).to_dict()
    for p in pairs.assign(n_r=per_receipt, n_i=per_item).sort_values("in_window", ascending=False,
                                                                      kind="stable").itertuples(index=False):
        r = rows[p.rid]
        if book.done(p.rid) or (not p.in_window and p.n_r == 1 and p.n_i == 1):
            continue
        evidence = {"payer": _payer_evidence(r), "amount": "equal to the open amount" if p.open == p.amount
                    else f"short by {show(p.open - p.amount)} (bank fee)",
                    "date": f"{p.day - book.doc_day[p.item]} days after the item"}
        if p.n_r > 1 or p.n_i > 1:
            cands = list(dict.fromkeys(items_of.get(p.rid, []) + [p.item]))
            oldest = min(cands, key=lambda i: (book.due_day[i], i))
            short = book.open[oldest] - p.amount
            pieces, rest = ([(oldest, p.amount, short)], 0) if 0 <= short <= tol else _fifo(book, [oldest], p.amount)
            book.fail(r, "ambiguous_amount", f"{show(p.amount)} fits {', '.join(cands)}"
                      + (f"; {p.n_i} receipts fit {p.item}" if p.n_i > 1 else ""), r["customer"],
                      _proposal(pieces, rest), [book.describe(i) for i in cands], PROPOSAL, evidence)
            continue
        rule = "amount_exact" if p.open == p.amount else "amount_fee"
        conf = CONFIDENCE[rule] - (NAME_PENALTY if r.get("customer_by") == "name" else 0)
        book.decide(r, [(p.item, p.amount, p.open - p.amount)], 0, rule, conf, evidence, r["customer"])


def _combinations(book: _Book, rows: dict[str, dict]) -> None:
    """Tier 3: per customer, a unique exact combination of open items for one receipt, then a
    unique combination of receipts for one item."""
    tol = book.s.fee_tolerance_fen
    by_customer: dict[str, list[dict]] = {}
    for r in rows.values():
        if not book.done(r["receipt_id"]) and r.get("customer"):
            by_customer.setdefault(r["customer"], []).append(r)
    for customer, todo in by_customer.items():
        todo.sort(key=lambda r: (r["day"], r["receipt_id"]))
        for r in todo:
            pool = book.pool(customer, r["day"])
            if len(pool) < 2 or len(pool) > subset.MAX_POOL:
                continue
            amount = r["amount_fen"]
            sols, exact = subset.solutions([book.open[i] for i in pool], amount, amount + tol, amount,
                                           max_size=book.s.max_subset)
            if not sols:
                continue
            evidence = {"payer": _payer_evidence(r)}
            if len(sols) > 1:
                pieces = [(pool[k], book.open[pool[k]], 0) for k in sols[0]]
                book.fail(r, "ambiguous_combination", f"{len(sols)} or more combinations of {len(pool)} open items",
                          customer, [{"item_id": i, "amount_fen": a, "writeoff_fen": w} for i, a, w in pieces],
                          [book.describe(pool[k]) for s in sols for k in s], PROPOSAL, evidence)
                continue
            chosen = [pool[k] for k in sols[0]]
            pieces = [(i, book.open[i], 0) for i in chosen]
            fee = sum(book.open[i] for i in chosen) - amount
            if fee:
                pieces[-1] = (pieces[-1][0], pieces[-1][1] - fee, fee)
            rule = "subset" if exact else "subset_fee"
            evidence["amount"] = f"sum of {len(chosen)} open items" + (f", short by {show(fee)}" if fee else "")
            conf = CONFIDENCE[rule] - (NAME_PENALTY if r.get("customer_by") == "name" else 0)
            book.decide(r, pieces, 0, rule, conf, evidence, customer)
        _receipt_groups(book, customer, [r for r in todo if not book.done(r["receipt_id"])])


def _receipt_groups(book: _Book, customer: str, todo: list[dict]) -> None:
    """Several receipts of one customer adding up to one open item, uniquely."""
    if len(todo) < 2 or len(todo) > subset.MAX_POOL:
        return
    tol, found = book.s.fee_tolerance_fen, []
    amounts = [r["amount_fen"] for r in todo]
    for item in book.pool(customer, max(r["day"] for r in todo)):
        target = book.open[item]
        sols, exact = subset.solutions(amounts, target - tol, target, target, max_size=book.s.max_receipt_group)
        if len(sols) == 1:
            found.append((item, sols[0], exact))
        elif len(sols) > 1:
            found.append((item, None, exact))
    used: dict[int, int] = {}
    for _, combo, _ in found:
        for k in combo or ():
            used[k] = used.get(k, 0) + 1
    for item, combo, exact in found:
        if combo is None or any(used[k] > 1 for k in combo) or book.open[item] <= 0:
            continue
        group = [todo[k] for k in combo]
        if not all(book.in_window(item, r["day"]) for r in group):
            continue
        fee = book.open[item] - sum(r["amount_fen"] for r in group)
        for n, r in enumerate(group):
            evidence = {"payer": _payer_evidence(r), "amount": f"{len(group)} receipts add up to {item}",
                        "with": [g["receipt_id"] for g in group if g is not r]}
            conf = CONFIDENCE["receipts_group"] - (NAME_PENALTY if r.get("customer_by") == "name" else 0)
            book.decide(r, [(item, r["amount_fen"], fee if n == len(group) - 1 else 0)], 0, "receipts_group",
                        conf, evidence, customer)


def _leftovers(book: _Book, rows: dict[str, dict]) -> None:
    """Tier 4: a reason and, where the hub has one, a proposal for every receipt not posted."""
    for rid, r in rows.items():
        if book.done(rid):
            continue
        customer, amount = r.get("customer"), r["amount_fen"]
        evidence = {"payer": _payer_evidence(r)}
        if customer is None:
            amb = sorted(set((r.get("account_ambiguous") or []) + (r.get("name_ambiguous") or [])))
            who = f"{r.get('payer_name') or '-'} / {r.get('payer_account') or '-'}"
            if amb:
                book.fail(r, "ambiguous_payer", f"{who} → {', '.join(amb)}", None,
                          candidates=[{"customer": c} for c in amb], evidence=evidence)
            else:
                book.fail(r, "unknown_payer", who, None, evidence=evidence)
            continue
        every = [i for i in book.by_customer.get(customer, ()) if book.open[i] > 0]
        pool = [i for i in every if book.in_window(i, r["day"])]
        credit = [{"item_id": None, "amount_fen": amount, "writeoff_fen": 0}]
        if not every:
            book.fail(r, "no_open_items", f"{customer}, {show(amount)}", customer, credit, [], PROPOSAL, evidence)
            continue
        outside = [i for i in every if i not in pool and book.open[i] == amount]
        if not pool and outside:
            book.fail(r, "outside_window", f"{outside[0]} dated {book.describe(outside[0])['doc_date']}", customer,
                      [{"item_id": outside[0], "amount_fen": amount, "writeoff_fen": 0}],
                      [book.describe(i) for i in outside], PROPOSAL, evidence)
            continue
        if len(pool) > subset.MAX_POOL:
            book.fail(r, "too_many_items", f"{len(pool)} open items in the window", customer,
                      candidates=[book.describe(i) for i in _nearest(book, pool, amount)], evidence=evidence)
            continue
        bigger = [i for i in pool if book.open[i] > amount]
        total = sum(book.open[i] for i in pool)
        if pool and amount > total:
            pieces, rest = _fifo(book, pool, amount)
            book.fail(r, "possible_overpayment", f"{show(amount)} > {show(total)} open", customer,
                      _proposal(pieces, rest),
                      [book.describe(i) for i in pool], PROPOSAL, evidence)
        elif bigger:
            target = bigger[0]
            book.fail(r, "possible_partial", f"{show(amount)} of {target} {show(book.open[target])}", customer,
                      [{"item_id": target, "amount_fen": amount, "writeoff_fen": 0}],
                      [book.describe(i) for i in bigger], PROPOSAL, evidence)
        else:
            book.fail(r, "amount_mismatch", f"{show(amount)}; {len(pool)} open items", customer,
                      candidates=[book.describe(i) for i in _nearest(book, pool or every, amount)], evidence=evidence)


def _nearest(book: _Book, items: list[str], amount: int, n: int = 3) -> list[str]:
    return sorted(items, key=lambda i: (abs(book.open[i] - amount), i))[:n]


# --- entry point -------------------------------------------------------------------------------

def reconcile(receipts: pd.DataFrame, items: pd.DataFrame, accounts: pd.DataFrame | None = None,
              names: pd.DataFrame | None = None, decisions: pd.DataFrame | None = None,
              settings: Settings | None = None, holds: dict[str, tuple[str, str]] | None = None) -> Result:
    """Match ``receipts`` to ``items``.

    receipts: receipt_id, amount_fen, value_date, memo, payer_name, payer_account, customer (optional).
    items: item_id, kind, customer, open_fen, doc_date, due_date, refs ("|"-joined document numbers).
    accounts: account, customer (bank accounts known per customer). names: name_key, customer.
    decisions: receipt_id, action (accept | reject | reassign), customer, item_ids, proposal, by, comment.
    holds: receipt_id → (reason code, detail) for receipts the caller knows must not be posted
    (e.g. a possible duplicate of a 收款单 already in U8); a finance decision overrides a hold.
    """
    settings = settings or Settings()
    receipts = receipts.reset_index(drop=True).copy()
    receipts["receipt_id"] = receipts["receipt_id"].astype(str)
    items = items.reset_index(drop=True).copy()
    items["item_id"] = items["item_id"].astype(str)
    _check_input(receipts, items)
    if "refs" not in items:
        items["refs"] = None
    items["refs"] = [f"{i}|{r}" if isinstance(r, str) and r else i for i, r in zip(items["item_id"], items["refs"])]
    book = _Book(items, settings)
    resolved = payers.resolve(receipts, accounts if accounts is not None else pd.DataFrame(columns=["account", "customer"]),
                              names if names is not None else pd.DataFrame(columns=["name_key", "customer"]))
    base = receipts[["receipt_id", "amount_fen"]].assign(day=_days(receipts["value_date"]),
                                                        payer_name=receipts.get("payer_name"),
                                                        payer_account=receipts.get("payer_account"))
    merged = base.merge(resolved.drop(columns=["given"]), on="receipt_id")
    cols = {c: [None if v is None or v != v else v for v in merged[c].to_numpy(dtype=object)] for c in merged.columns}
    rows = {rid: dict(zip(cols, values)) for rid, values in zip(cols["receipt_id"], zip(*cols.values()))}
    for r in rows.values():
        r["amount_fen"] = int(r["amount_fen"])
        r["day"] = int(r["day"])
    for r in rows.values():  # a refund or reversal is not money in: never posted, never proposed
        if r["amount_fen"] <= 0:
            book.fail(r, "not_positive", show(r["amount_fen"]), r.get("customer"))
    _decisions(book, rows, decisions)
    for rid, (code, detail) in (holds or {}).items():
        if rid in rows and not book.done(rid):
            book.fail(rows[rid], code, detail, rows[rid].get("customer"))
    _references(book, rows, receipts, items)
    _amounts(book, rows)
    _combinations(book, rows)
    _leftovers(book, rows)
    return _result(book, rows)


def _check_input(receipts: pd.DataFrame, items: pd.DataFrame) -> None:
    """Refuse what would lose or invent money silently: two receipts (or items) under one id
    would merge into one, a receipt without an amount has nothing to match."""
    for frame, col, what in ((receipts, "receipt_id", "receipt"), (items, "item_id", "item")):
        dup = frame[col][frame[col].duplicated()].unique().tolist()
        if dup:
            raise ValueError(f"{what} ids must be unique: {', '.join(map(str, dup[:5]))} appear more than once")
    blank = receipts["receipt_id"][receipts["amount_fen"].isna()].tolist()
    if blank:
        raise ValueError(f"receipts without an amount: {', '.join(blank[:5])}")


def _result(book: _Book, rows: dict[str, dict]) -> Result:
    alloc_cols = ["receipt_id", "item_id", "kind", "customer", "amount_fen", "writeoff_fen", "item_left_fen", "rule",
                  "confidence", "evidence"]
    allocations = pd.DataFrame(book.allocations, columns=alloc_cols)
    names = ["receipt_id", "customer", "customer_by", "status", "rule", "confidence", "credit_fen", "reason_code",
             "reason", "proposal", "candidates", "evidence", "payer_account"]
    cols: dict[str, list[Any]] = {n: [] for n in names}
    for rid, r in rows.items():   # column lists, not a list of dicts: one pass, no per-row frame work
        o = book.outcome[rid]
        cols["receipt_id"].append(rid)
        cols["customer"].append(o.get("customer") or r.get("customer"))
        cols["customer_by"].append(r.get("customer_by"))
        cols["status"].append(o["status"])
        cols["rule"].append(o.get("rule"))
        cols["confidence"].append(o.get("confidence"))
        cols["credit_fen"].append(o.get("credit_fen", 0))
        cols["reason_code"].append(o.get("reason_code"))
        cols["reason"].append(o.get("reason"))
        cols["proposal"].append(o.get("proposal", []))
        cols["candidates"].append(o.get("candidates", []))
        cols["evidence"].append(o.get("evidence", {}))
        cols["payer_account"].append(r.get("account"))
    frame = pd.DataFrame({n: pd.Series(v, dtype=object) for n, v in cols.items()})
    stats = {"receipts": len(frame), "posted": int((frame["status"] == "posted").sum()),
             "exceptions": int((frame["status"] == "exception").sum()),
             **{f"rule:{k}": int(v) for k, v in frame["rule"].value_counts().items()},
             **{f"reason:{k}": int(v) for k, v in frame["reason_code"].value_counts().items()}}
    return Result(allocations, frame, stats)
