"""Where every record the receipts flow read ended up, for the report (in = written + skipped +
quarantined per system): bank statement lines and the ERP's receipts (posted by which rule, or
waiting for finance with which reason), invoices, plan instalments, directory customers, and files.
"""
from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from flows.receipts_map import bank_key
from flows.receipts_sources import FLOW, RECEIPT_STAGES, spec, system_of
from hub import model, receipts_model as rm
from hub.runner import StepContext
from hub.store import select_in, stage_read, stage_write

RULE_TEXT = {"reference": "document number in the memo", "reference_fee": "memo reference, bank fee written off",
             "reference_partial": "memo reference, partial payment", "reference_subset": "memo reference",
             "reference_overpayment": "memo reference, over-payment kept as credit",
             "amount_exact": "payer and exact amount", "amount_fee": "payer and amount less a bank fee",
             "subset": "payer and a unique combination of invoices", "subset_fee": "unique combination less a fee",
             "receipts_group": "several receipts adding up to one invoice", "finance": "finance's decision"}


def _keys(conn, run_id: str) -> dict[str, pd.DataFrame]:
    """system → the records read (key column ``key``)."""
    out = {}
    bank = stage_read(conn, run_id, "extract", "bank")
    if len(bank):
        for col in ("serial", "our_account", "payer_account", "payer_name", "memo"):
            if col not in bank:
                bank[col] = None
        out["bank"] = pd.DataFrame({"key": bank_key(bank)})
    for stage in ("erp", "erp_invoice", "crm_plan", "erp_customer"):
        raw = stage_read(conn, run_id, "extract", stage)
        if len(raw):
            out[system_of(stage)] = pd.DataFrame({"key": raw[spec(stage).key].astype(str)})
    return out


def outcomes(conn, run_id: str) -> pd.DataFrame:
    q = model.quarantine.c
    quarantined = pd.DataFrame(conn.execute(select(q.system, q.record_key, q.reasons).where(
        q.last_run_id == run_id, q.flow == FLOW,
        q.stage.in_(["extract", "map", "validate"]))).all(), columns=["system", "key", "reasons"])
    skipped = stage_read(conn, run_id, "skipped")
    unchanged = pd.concat([stage_read(conn, run_id, "unchanged", s) for s in ("receipt", "erp_invoice", "crm_plan")],
                          ignore_index=True)
    recon = stage_read(conn, run_id, "recon")
    frames = []
    for system, df in _keys(conn, run_id).items():
        df = df.assign(system=system, outcome=None, detail=None)
        bad = quarantined[quarantined["system"] == system].drop_duplicates("key").set_index("key")
        short = df["key"].str.slice(0, 200)  # the quarantine keeps 200 characters of a key
        hit = short.isin(bad.index)
        df.loc[hit, "outcome"] = "quarantined"
        df.loc[hit, "detail"] = short[hit].map(bad["reasons"].map(lambda r: "; ".join(r)))
        if len(skipped):
            mine = skipped[skipped["system"] == system].drop_duplicates("key", keep="last").set_index("key")["detail"]
            # a key read n times and skipped k times: the last k are the skipped copies, the first is the record
            times = df["key"].map(skipped.loc[skipped["system"] == system, "key"].value_counts()).fillna(0)
            copy = df.groupby("key").cumcount() >= df.groupby("key")["key"].transform("size") - times
            take = df["outcome"].isna() & df["key"].isin(mine.index) & copy
            df.loc[take, "outcome"] = "skipped"
            df.loc[take, "detail"] = df.loc[take, "key"].map(mine)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["system", "key", "outcome", "detail"])
    if len(unchanged):
        same = out["outcome"].isna() & (out["system"] + ":" + out["key"]).isin(unchanged["system"] + ":" + unchanged["key"])
        out.loc[same, ["outcome", "detail"]] = ["skipped", "unchanged since the last run"]
    receipts = out["outcome"].isna() & out["system"].isin([system_of(s) for s in RECEIPT_STAGES])
    if receipts.any():
        part = out[receipts]
        stored = select_in(conn, rm.receipt, "native_key", part["key"].tolist(),
                           columns=["hub_id", "source", "native_key", "status", "posted_run_id"])
        stored.index = stored["source"] + ":" + stored["native_key"].astype(str)
        ids = (part["system"] + ":" + part["key"]).map(stored["hub_id"])
        state = recon.set_index("receipt_id") if len(recon) else pd.DataFrame(
            columns=["status", "rule", "reason_code", "reason"])
        now_status, rule = ids.map(state["status"]), ids.map(state["rule"])
        code, reason = ids.map(state["reason_code"]), ids.map(state["reason"])
        was = (part["system"] + ":" + part["key"]).map(stored["status"])
        by = (part["system"] + ":" + part["key"]).map(stored["posted_run_id"])
        outcome = pd.Series("skipped", index=part.index, dtype=object)
        detail = was.map(lambda v: f"stored, status {v if isinstance(v, str) else 'unknown'}").astype(object)
        posted = now_status == "posted"
        outcome[posted] = rule[posted].map(lambda r: f"posted: {RULE_TEXT.get(r, r)}")
        detail[posted] = rule[posted]
        waiting = now_status == "exception"
        outcome[waiting] = code[waiting].map(lambda c: f"waiting for finance: {c}")
        detail[waiting] = reason[waiting]
        earlier = now_status.isna() & (was == "posted")
        detail[earlier] = by[earlier].map(lambda r: f"already posted by run {r}")
        detail[ids.isna()] = "not stored (see the run's steps)"
        out.loc[part.index, "outcome"], out.loc[part.index, "detail"] = outcome, detail
    others = out["outcome"].isna()
    for stage, outcome in (("erp_invoice", "stored as open item"), ("crm_plan", "stored plan instalment"),
                           ("erp_customer", "stored in the payer directory")):
        out.loc[others & (out["system"] == system_of(stage)), "outcome"] = outcome
    files = stage_read(conn, run_id, "bank_files")
    if len(files):
        out = pd.concat([out, files[["system", "key", "outcome", "detail"]]], ignore_index=True)
    out.loc[out["outcome"].isna(), "outcome"] = "waiting"
    return out


def save(ctx: StepContext) -> None:
    with ctx.engine.begin() as conn:
        stage_write(conn, ctx.run_id, "outcome", outcomes(conn, ctx.run_id))


def summary(conn, run_id: str) -> dict[str, int]:
    """The run's reconciliation figures (receipts matched this run, auto rate, exceptions by reason)."""
    recon = stage_read(conn, run_id, "recon")
    if recon.empty:
        return {"receipts": 0}
    posted = recon["status"] == "posted"
    out = {"receipts": len(recon), "posted": int(posted.sum()), "exceptions": int((~posted).sum()),
           "auto_rate_pct": round(100 * posted.mean(), 1)}
    out.update({f"rule {k}": int(v) for k, v in recon.loc[posted, "rule"].value_counts().items()})
    out.update({f"exception {k}": int(v) for k, v in recon.loc[~posted, "reason_code"].value_counts().items()})
    e = rm.recon_exception.c
    out["open in finance queue"] = len(conn.execute(select(e.receipt_hub_id).where(e.status == "open")).all())
    return out
