"""The credit flow (远东: credit risk, receivables and payment terms in front of sales): each CRM
account linked to an ERP customer shows the customer's credit as the ERP keeps it — limit, open
receivables, overdue, open orders, available — written only where it changed.

extract — the ERP's credit facts (its adapter's ``credit``: U8 from its own tables) of every
customer the hub has linked to both the ERP and the CRM, one lookup per 500 customers. map — the
account fields by ``credit_to_crm_account``. validate — as read. resolve — unchanged since the
account last showed it (a hash in xref): skipped. load — nothing is kept beyond what the CRM shows.
publish — the accounts to patch. write back — the patches, through the write ledger.
"""
from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

import pandas as pd

from flows import roles
from flows.steps import read_outcomes, save_outcomes, write_to_crm
from hub import model, money, xref
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import chunks, select_in, stage_read, stage_write
from mappings import engine

log = logging.getLogger("flows.credit")

FLOW = ENTITY = "credit"
SPEC = "credit_to_crm_account"
FACTS = ("credit_limit", "receivables", "overdue", "open_orders", "available")


def _key(crm_id: str) -> str:
    """The xref hub id of one account's credit (an account is shown one ERP customer's credit)."""
    return f"credit:{crm_id}"


def extract(ctx: StepContext) -> StepCounts:
    erp = roles.erp()
    x = model.xref.c
    with ctx.engine.begin() as conn:
        codes = pd.DataFrame(conn.execute(model.xref.select().with_only_columns(x.hub_id, x.native_key).where(
            x.entity == "customer", x.system == erp.system)).all(), columns=["hub_id", "erp_code"])
        accounts = select_in(conn, model.xref, "hub_id", codes["hub_id"].tolist(),
                             where=[x.entity == "customer", x.system == "crm"], columns=["hub_id", "native_key"])
    linked = codes.merge(accounts.rename(columns={"native_key": "crm_id"}), on="hub_id")
    today = date.today()
    facts: dict = {}
    for part in chunks(sorted(set(linked["erp_code"])), 500):
        facts |= erp.credit(list(part), today)
    rows = []
    # one CRM account, one company: where the hub merged U8 duplicates (several codes), its exposure is theirs together
    for crm_id, part in linked.groupby(linked["crm_id"].astype(str)):
        found = [facts[c] for c in sorted(set(part["erp_code"])) if c in facts]
        if not found:
            continue
        limits = [f.limit for f in found if f.limit is not None]
        limit = sum(limits, Decimal(0)) if limits else None
        receivables, overdue = sum((f.receivables for f in found), Decimal(0)), sum((f.overdue for f in found), Decimal(0))
        open_orders = sum((f.open_orders for f in found), Decimal(0))
        rows.append({"crm_id": crm_id, "hub_id": _key(crm_id), "erp_code": ",".join(sorted(set(part["erp_code"]))),
                     "credit_limit": money.text(limit) if limit is not None else None,
                     "receivables": money.text(receivables), "overdue": money.text(overdue),
                     "open_orders": money.text(open_orders),
                     "available": money.text(limit - receivables - open_orders) if limit is not None else None,
                     "as_of": today.isoformat()})
    frame = pd.DataFrame(rows, columns=["crm_id", "hub_id", "erp_code", *FACTS, "as_of"])
    with ctx.engine.begin() as conn:
        stage_write(conn, ctx.run_id, "extract", frame)
    log.info("extract: the credit of %d accounts (%d ERP customers)", len(frame), len(facts))
    return StepCounts(read=len(frame))


def _passed(step_from: str, step_to: str):
    def run(ctx: StepContext) -> StepCounts:
        with ctx.engine.begin() as conn:
            frame = stage_read(conn, ctx.run_id, step_from)
            stage_write(conn, ctx.run_id, step_to, frame)
        return StepCounts(read=len(frame))
    run.__doc__ = f"The accounts' credit as {step_from} left it."
    return run


def resolve_step(ctx: StepContext) -> StepCounts:
    """Skip the accounts that already show these figures."""
    spec = engine.load_spec(SPEC)
    with ctx.engine.begin() as conn:
        frame = stage_read(conn, ctx.run_id, "validate")
        if frame.empty:
            stage_write(conn, ctx.run_id, "resolve", frame)
            stage_write(conn, ctx.run_id, "skipped", frame)
            return StepCounts()
        frame["content_hash"] = xref.content_hash(frame, spec.hash_fields)
        shown = xref.of_hub_ids(conn, ENTITY, "crm", frame["hub_id"].tolist())["content_hash"]
        known = shown.to_dict()
        same = pd.Series([known.get(str(h)) == c for h, c in zip(frame["hub_id"], frame["content_hash"])],
                         index=frame.index, dtype=bool)
        stage_write(conn, ctx.run_id, "resolve", frame[~same])
        stage_write(conn, ctx.run_id, "skipped", frame[same].assign(_key=lambda t: t["crm_id"],
                                                                    reason="the account already shows these figures"))
    return StepCounts(read=len(frame), skipped=int(same.sum()))


def write_back(ctx: StepContext) -> StepCounts:
    spec = engine.load_spec(SPEC)
    with ctx.engine.begin() as conn:
        todo = stage_read(conn, ctx.run_id, "publish")
    counts = StepCounts(read=len(todo))
    if not todo.empty:
        counts += write_to_crm(ctx, ENTITY, spec, todo.reset_index(drop=True), roles.crm().connector(), "crm_results")
    with ctx.engine.begin() as conn:
        result = outcomes(conn, ctx.run_id)
    save_outcomes(ctx, result)
    return counts


STEP_FUNCTIONS = {
    "extract": extract, "map": _passed("extract", "map"), "validate": _passed("map", "validate"),
    "resolve": resolve_step, "load": _passed("resolve", "load"), "publish": _passed("load", "publish"),
    "write_back": write_back,
}


def outcomes(conn, run_id: str) -> pd.DataFrame:
    """Every account this run read, with the one outcome it ended in."""
    raw = stage_read(conn, run_id, "extract")
    keys = raw["crm_id"] if "crm_id" in raw.columns else pd.Series([], dtype=object)
    out = read_outcomes(conn, run_id, ENTITY, "crm", keys, _key, stage_read(conn, run_id, "skipped"))
    results = stage_read(conn, run_id, "crm_results")
    result = results.drop_duplicates("hub_id", keep="last").set_index("hub_id")["result"] if not results.empty \
        else pd.Series(dtype=object)
    res = out["hub_id"].map(result)
    hit = out["outcome"].isna() & res.notna()
    out.loc[hit, "outcome"] = res[hit].map({"updated": "shown on the CRM account"}).fillna("quarantined")
    out.loc[out["outcome"].isna(), ["outcome", "detail"]] = ["skipped", "the account already shows these figures"]
    return out
