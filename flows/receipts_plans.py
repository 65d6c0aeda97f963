"""Payment plans (回款计划): what each instalment has received, what is overdue, and which plan
instalment each posted receipt pays.

An order's money fills its instalments in due-date order (FIFO), as finance reads a plan:
first what the ERP had settled on the order's invoices without the hub, then the hub's
allocations in posting order. An instalment is 已回款 when filled, 部分回款 when partly,
未回款 otherwise, and overdue when its due date is before the as-of day and it is not filled.
Each posted allocation is split over the instalments its interval of the order's money covers:
those pieces are the CRM's 回款 records. All of it is group-wise cumulative sums and one merge
on the order number.
"""
from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import select

from hub import model, receipts_model as rm, xref
from hub.store import frame_records, select_in, upsert, utcnow
from quality.reconcile import tokens

STATUS_PAID, STATUS_PART, STATUS_NONE = "已回款", "部分回款", "未回款"


def plans_frame(conn) -> pd.DataFrame:
    p = rm.payment_plan.c
    cols = [p.crm_id, p.account_id, p.customer_code, p.order_no, p.contract_no, p.instalment, p.due_date,
            p.amount_fen, p.received_fen, p.status_text, p.overdue]
    return pd.DataFrame(conn.execute(select(*cols)).all(), columns=[c.name for c in cols])


def _customer_keys(conn, keys: list[str], known: str, wanted: str) -> dict[str, str]:
    """A customer's key in system ``known`` → its key in system ``wanted``, through the customer
    master's cross-references (the smallest key where the hub holds several)."""
    x = model.xref.c
    have = select_in(conn, model.xref, "native_key", keys, where=[x.entity == "customer", x.system == known],
                     columns=["native_key", "hub_id"])
    if have.empty:
        return {}
    other = select_in(conn, model.xref, "hub_id", have["hub_id"].tolist(),
                      where=[x.entity == "customer", x.system == wanted],
                      columns=["hub_id", "native_key"]).sort_values("native_key").drop_duplicates("hub_id")
    joined = have.merge(other, on="hub_id", suffixes=("_known", "_wanted"))
    return dict(zip(joined["native_key_known"], joined["native_key_wanted"]))


def crm_accounts_of(conn, customer_codes: list[str], erp: str, crm: str) -> dict[str, str]:
    """The ERP's customer code → its CRM account id (xref systems ``erp`` and ``crm``)."""
    return _customer_keys(conn, customer_codes, erp, crm)


def erp_codes_of(conn, account_ids: list[str], erp: str, crm: str) -> dict[str, str]:
    """CRM account id → the ERP's customer code (customer master's xref), where the hub knows one."""
    return _customer_keys(conn, account_ids, crm, erp)


def refresh_order_items(conn, run_id: str) -> int:
    """Rebuild the order items (the part of each planned order not invoiced yet) and give every
    invoice of a planned order its contract number as a reference. Returns items written."""
    plans = plans_frame(conn)
    if plans.empty:
        return 0
    i = rm.open_item.c
    inv = select_in(conn, rm.open_item, "order_no", plans["order_no"].dropna().unique().tolist(),
                    where=[i.kind == "invoice"],
                    columns=["item_key", "doc_no", "order_no", "customer_code", "amount_fen", "refs"])
    contract = plans.dropna(subset=["order_no"]).drop_duplicates("order_no").set_index("order_no")["contract_no"]
    now = utcnow()
    if len(inv):
        inv = inv[inv["order_no"].isin(contract.index)]
        want = [_refs(d, o, contract.get(o)) for d, o in zip(inv["doc_no"], inv["order_no"])]
        changed = inv.assign(new=want)
        changed = changed[changed["new"] != changed["refs"]]
        if len(changed):
            from sqlalchemy import bindparam, update

            conn.execute(update(rm.open_item).where(i.item_key == bindparam("k")).values(refs=bindparam("r")),
                         [{"k": k, "r": r} for k, r in zip(changed["item_key"], changed["new"])])
    invoiced = inv.groupby("order_no")["amount_fen"].sum() if len(inv) else pd.Series(dtype="int64")
    customers = inv.dropna(subset=["customer_code"]).drop_duplicates("order_no").set_index("order_no")["customer_code"] \
        if len(inv) else pd.Series(dtype=object)
    plans = plans.dropna(subset=["order_no"]).sort_values(["order_no", "due_date", "instalment", "crm_id"])
    plans["cum_end"] = plans.groupby("order_no")["amount_fen"].cumsum()
    plans["invoiced"] = plans["order_no"].map(invoiced).fillna(0).astype("int64")
    uninvoiced = plans[plans["cum_end"] > plans["invoiced"]]
    first = uninvoiced.drop_duplicates("order_no")
    totals = plans.groupby("order_no")["amount_fen"].sum()
    rows = []
    for r in first.itertuples(index=False):
        amount = int(totals[r.order_no] - invoiced.get(r.order_no, 0))
        rows.append({"item_key": f"order:{r.order_no}", "kind": "order", "doc_no": r.order_no, "native_key": r.order_no,
                     "customer_code": r.customer_code or customers.get(r.order_no), "crm_account_id": r.account_id,
                     "order_no": r.order_no, "contract_no": r.contract_no, "refs": _refs(r.order_no, None, r.contract_no),
                     "amount_fen": max(0, amount), "erp_settled_fen": 0, "baseline_settled_fen": 0,
                     "doc_date": r.due_date, "due_date": r.due_date, "run_id": run_id, "updated_at": now})
    gone = [f"order:{o}" for o in totals.index if o not in set(first["order_no"])]
    if gone:  # fully invoiced since: nothing left to prepay on that order
        existing = select_in(conn, rm.open_item, "item_key", gone, columns=["item_key", "crm_account_id", "customer_code",
                                                                           "order_no", "contract_no", "doc_date"])
        for r in existing.itertuples(index=False):
            rows.append({"item_key": r.item_key, "kind": "order", "doc_no": r.order_no, "native_key": r.order_no,
                         "customer_code": r.customer_code, "crm_account_id": r.crm_account_id, "order_no": r.order_no,
                         "contract_no": r.contract_no, "refs": _refs(r.order_no, None, r.contract_no), "amount_fen": 0,
                         "erp_settled_fen": 0, "baseline_settled_fen": 0, "doc_date": r.doc_date, "due_date": r.doc_date,
                         "run_id": run_id, "updated_at": now})
    return upsert(conn, rm.open_item, rows, keys=["item_key"])


def _refs(doc_no: str, order_no: str | None, contract_no: str | None) -> str:
    parts = [p for p in (doc_no, order_no, contract_no) if p]
    return "|".join(dict.fromkeys(t for t in (tokens.normalise(p) for p in parts) if t))


def order_money(items: pd.DataFrame) -> pd.DataFrame:
    """Per order: what settled without the hub (history) and in all, from the items frame."""
    has = items.dropna(subset=["order_no"])
    settled = has["amount_fen"].astype("int64") - has["open_fen"].astype("int64")
    return pd.DataFrame({"order_no": has["order_no"], "settled": settled,
                         "history": (settled - has["hub_fen"]).clip(lower=0)}).groupby("order_no").sum()


def plan_status(plans: pd.DataFrame, items: pd.DataFrame, day: date) -> pd.DataFrame:
    """Each instalment's received amount, status and overdue flag as of ``day``."""
    if plans.empty:
        return plans.assign(new_received=pd.Series(dtype="int64"), new_status=None, new_overdue=None, overdue_days=None)
    money = order_money(items)
    out = plans.sort_values(["order_no", "due_date", "instalment", "crm_id"]).copy()
    if len(items):  # a plan whose account the customer master has not linked: its order's invoices tell
        by_order = items.dropna(subset=["order_no", "customer_code"]).drop_duplicates("order_no")
        out["customer_code"] = out["customer_code"].where(out["customer_code"].notna(),
                                                          out["order_no"].map(by_order.set_index("order_no")["customer_code"]))
    out["cum_end"] = out.groupby("order_no")["amount_fen"].cumsum()
    out["cum_start"] = out["cum_end"] - out["amount_fen"]
    paid = out["order_no"].map(money["settled"]).fillna(0).astype("int64")
    out["new_received"] = (paid - out["cum_start"]).clip(lower=0).combine(out["amount_fen"], min).astype("int64")
    out["new_status"] = STATUS_NONE
    out.loc[out["new_received"] > 0, "new_status"] = STATUS_PART
    out.loc[out["new_received"] >= out["amount_fen"], "new_status"] = STATUS_PAID
    due = pd.to_datetime(out["due_date"])
    late = (due < pd.Timestamp(day)) & (out["new_received"] < out["amount_fen"])
    out["new_overdue"] = late.astype(int)
    out["overdue_days"] = (pd.Timestamp(day) - due).dt.days.where(late, None)
    return out


def applications(conn, receipt_ids: list[str], items: pd.DataFrame, plans: pd.DataFrame) -> pd.DataFrame:
    """The CRM 回款 pieces of these receipts' allocations: each allocation's interval of its
    order's money, cut by the order's instalments (an allocation outside any plan is one piece)."""
    mine = select_in(conn, rm.allocation, "receipt_hub_id", receipt_ids)
    if mine.empty:
        return pd.DataFrame()
    mine["amount_fen"] = mine["amount_fen"].astype("int64")
    meta = items.set_index("item_key")[["order_no", "doc_no"]]
    mine = mine.join(meta, on="item_key")
    inst = plans.dropna(subset=["order_no"]).sort_values(["order_no", "due_date", "instalment", "crm_id"]).copy()
    planned = mine[mine["order_no"].notna() & mine["order_no"].isin(set(inst["order_no"]))].copy()
    loose = mine.drop(planned.index).assign(crm_id=None, account_id=None, piece=lambda d: d["amount_fen"])
    parts = [loose]
    if len(planned):
        parts.append(_planned_pieces(conn, planned, items, inst))
    out = pd.concat(parts, ignore_index=True)
    out["crm_id"] = out["crm_id"].astype(object).where(out["crm_id"].notna(), None)
    return (out.groupby(["alloc_id", "crm_id"], dropna=False, as_index=False, sort=False)
            .agg(receipt_hub_id=("receipt_hub_id", "first"), item_key=("item_key", "first"), kind=("kind", "first"),
                 customer_code=("customer_code", "first"), order_no=("order_no", "first"), doc_no=("doc_no", "first"),
                 account_id=("account_id", "first"), amount_fen=("piece", "sum")))


def _planned_pieces(conn, planned: pd.DataFrame, items: pd.DataFrame, inst: pd.DataFrame) -> pd.DataFrame:
    """Cut allocations of planned orders at the instalment boundaries (one merge on the order)."""
    a = rm.allocation.c
    orders = planned["order_no"].unique().tolist()
    every = select_in(conn, rm.allocation, "item_key", items.loc[items["order_no"].isin(orders), "item_key"].tolist(),
                      where=[a.kind != "credit"], columns=["alloc_id", "item_key", "amount_fen", "writeoff_fen", "seq"])
    every = every.join(items.set_index("item_key")[["order_no"]], on="item_key").sort_values(["order_no", "seq"])
    every["span"] = every["amount_fen"].astype("int64") + every["writeoff_fen"].fillna(0).astype("int64")
    history = order_money(items)["history"]
    every["start"] = (every.groupby("order_no")["span"].cumsum() - every["span"]
                      + every["order_no"].map(history).fillna(0).astype("int64"))
    planned = planned.merge(every[["alloc_id", "start"]], on="alloc_id", how="left")
    inst = inst[inst["order_no"].isin(orders)].copy()
    inst["cum_end"] = inst.groupby("order_no")["amount_fen"].cumsum()
    inst["cum_start"] = inst["cum_end"] - inst["amount_fen"]
    pieces = planned.merge(inst[["order_no", "crm_id", "account_id", "cum_start", "cum_end"]], on="order_no")
    lo = pieces[["start", "cum_start"]].max(axis=1)
    hi = pd.concat([pieces["start"] + pieces["amount_fen"], pieces["cum_end"]], axis=1).min(axis=1)
    pieces = pieces.assign(piece=(hi - lo).astype("int64"))
    pieces = pieces[pieces["piece"] > 0]
    # money beyond the last instalment (invoices larger than the plan) stays on the last one
    covered = planned["alloc_id"].map(pieces.groupby("alloc_id")["piece"].sum()).fillna(0).astype("int64")
    short = planned[covered < planned["amount_fen"]]
    if len(short):
        last = inst.drop_duplicates("order_no", keep="last").set_index("order_no")
        extra = short.assign(crm_id=short["order_no"].map(last["crm_id"]), account_id=short["order_no"].map(
            last["account_id"]), piece=short["amount_fen"] - covered[short.index])
        pieces = pd.concat([pieces, extra], ignore_index=True)
    return pieces


PLAN_HASH = ["account_id", "order_no", "contract_no", "instalment", "due_date", "amount_fen", "received_fen",
             "status_text", "overdue"]


def plan_hash(frame: pd.DataFrame) -> pd.Series:
    """The content hash of plan rows, alike whether they come from a CRM read (JSON: numbers may
    be floats) or from the store (ints, dates): so a plan the hub itself patched reads back unchanged."""
    norm = pd.DataFrame(index=frame.index)
    for col in PLAN_HASH:
        v = frame[col] if col in frame else pd.Series(None, index=frame.index, dtype=object)
        if col in ("instalment", "amount_fen", "received_fen", "overdue"):
            v = pd.to_numeric(v, errors="coerce").astype("Int64").astype(object)
        elif col == "due_date":
            v = v.map(lambda d: None if d is None or d != d else str(d)[:10])
        norm[col] = v.astype(object).where(v.notna(), None)
    return xref.content_hash(norm, PLAN_HASH)


def _int(value) -> int | None:
    return None if value is None or value != value else int(value)


def save_plans(conn, rows: pd.DataFrame, run_id: str, erp: str, crm: str) -> int:
    """Upsert mapped plan rows (staged by map/resolve) with the ERP customer the hub knows for them
    (xref systems ``erp`` and ``crm``)."""
    if rows.empty:
        return 0
    codes = erp_codes_of(conn, rows["account_id"].astype(str).tolist(), erp, crm)
    now = utcnow()
    recs = []
    for r in frame_records(rows):
        recs.append({"crm_id": str(r["_key"]), "account_id": str(r["account_id"]),
                     "customer_code": codes.get(str(r["account_id"])), "order_no": r.get("order_no"),
                     "contract_no": r.get("contract_no"), "instalment": _int(r.get("instalment")),
                     "due_date": date.fromisoformat(r["due_date"]), "amount_fen": int(r["amount_fen"]),
                     "received_fen": _int(r.get("received_fen")), "status_text": r.get("status_text"),
                     "overdue": _int(r.get("overdue")), "content_hash": r["content_hash"],
                     "source_version": None if r.get("_version") is None else str(r["_version"]),
                     "run_id": run_id, "updated_at": now})
    return upsert(conn, rm.payment_plan, recs, keys=["crm_id"])
