"""The approvals flow (德力西's special prices): a CRM order line below its product's price floor is
held from the ERP until the OA approves that price for that customer and product; the decision
is written back to the CRM order line, and an approved price goes to the ERP with the OA request's
number (U8 ``define22``, SAP's item text) when sales_orders sends the order.

Kinds are data: a kind is its rule (quality/rules/<kind>.yaml), its OA form (the mapping spec the
oa seat names) and its workflow (the binding's ``workflows``). This module is the one engine; the
special price is the kind built so far (docs/approvals.md says what is left).

extract — the cases: per customer and product, the lowest price asked on the lines of CRM orders
the ERP has not taken yet that are below the floor; and the OA progress of every open request.
map — each case's OA form by the kind's mapping spec. validate — a case without its customer's
or product's name cannot be asked for (quarantined). resolve — one OA request per subject and
version (the price): a case whose version was asked already is skipped; a new version supersedes
the subject's open request. load — the intents (state ``submitting``), before anything is sent,
and the decisions read. publish — the OA requests, looked up by their title before a create and
after a lost answer (one request per version, however often sent). write back — the CRM lines'
approval status, and the approved request's number on each line it covers.
"""
from __future__ import annotations

import logging
import os
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sqlalchemy import and_, select, update

from flows import order_documents, roles
from flows.ledger import Ledger
from flows.steps import quarantined_keys, save_outcomes, write_in_chunks
from hub import model, money, quarantine, xref
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import select_in, stage_read, stage_write, utcnow, upsert
from hub.vault import HubVault
from mappings import engine

log = logging.getLogger("flows.approvals")

FLOW, KIND = "approvals", "special_price"
SHOWN = "special_price_shown"   # xref: what a CRM order line shows of its approval (native_version)
CASES, PROGRESS = "cases", "progress"
SUBMITTING, PENDING, APPROVED, REJECTED, RETURNED = "submitting", "pending", "approved", "rejected", "returned"
LINE_SPEC = "crm_order_product_to_sales_order_line"
RULE_DIR = Path(__file__).resolve().parent.parent / "quality" / "rules"


def rules(kind: str = KIND) -> dict[str, Any]:
    """The kind's rule: ``HUB_RULES_DIR/<kind>.yaml`` where a deployment keeps its own, else the project's."""
    own = Path(os.environ["HUB_RULES_DIR"]) / f"{kind}.yaml" if os.environ.get("HUB_RULES_DIR") else None
    return _rules(own if own is not None and own.exists() else RULE_DIR / f"{kind}.yaml")


@lru_cache(maxsize=8)
def _rules(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def active() -> bool:
    """Whether this deployment approves special prices: an ``oa`` seat that takes part in approvals."""
    return roles.offers("oa", "approvals")


def _oa():
    return roles.adapter(roles.seat("oa"))


# --- which lines need an approval --------------------------------------------------------------------

def below_floor(conn, heads: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """The lines of ``heads`` priced below their product's floor (list price × the class's share), one
    row each: order and line ids, customer, product code/name/list price, floor, price, quantity, subject."""
    cols = ["order_hub_id", "native_key", "order_no", "order_date", "owner_key", "customer_key", "product_key",
            "product_code", "product_name", "list_price", "floor", "price", "quantity", "subject"]
    if heads.empty or lines.empty:
        return pd.DataFrame(columns=cols)
    x = model.xref.c
    keys = lines["product_key"].dropna().astype(str).unique().tolist()
    links = select_in(conn, model.xref, "native_key", keys, where=[x.entity == "product", x.system == "crm"],
                      columns=["native_key", "hub_id"])
    products = select_in(conn, model.product, "hub_id", links["hub_id"].tolist(),
                         columns=["hub_id", "code", "name", "class_code", "list_price"])
    by_key = links.merge(products, on="hub_id").drop_duplicates("native_key").set_index("native_key")
    rule = rules()
    shares = {str(k): Decimal(str(v)) for k, v in (rule.get("floor", {}).get("by_class") or {}).items()}
    default = Decimal(str(rule.get("floor", {}).get("default", 1)))
    head = heads.set_index("hub_id")
    out = []
    for rec in lines.itertuples(index=False):
        key = str(rec.product_key)
        if key not in by_key.index:
            continue
        product = by_key.loc[key]
        listed, price = money.dec(product["list_price"]), money.dec(rec.unit_price)
        if listed is None or price is None or listed <= 0:
            continue
        floor = (listed * shares.get(str(product["class_code"] or ""), default)).quantize(Decimal("0.01"))
        if price >= floor:
            continue
        order = head.loc[rec.order_hub_id]
        out.append({"order_hub_id": rec.order_hub_id, "native_key": str(rec.native_key), "order_no": order["order_no"],
                    "order_date": str(order["order_date"] or "")[:10], "owner_key": order.get("owner_key"),
                    "customer_key": str(order["customer_key"]), "product_key": key, "product_code": product["code"],
                    "product_name": product["name"], "list_price": money.text(listed), "floor": money.text(floor),
                    "price": money.text(price), "quantity": money.text(money.dec(rec.quantity) or Decimal(0)),
                    "subject": f"{order['customer_key']}|{product['code']}"})
    return pd.DataFrame(out, columns=cols)


def _untaken(conn) -> tuple[pd.DataFrame, pd.DataFrame]:
    heads = order_documents.untaken_orders(conn, roles.seat("erp").name)
    lines = select_in(conn, model.sales_order_line, "order_hub_id", heads["hub_id"].tolist())
    return heads, lines


def _approvals(conn, subjects: list[str]) -> pd.DataFrame:
    a = model.approval.c
    return select_in(conn, model.approval, "subject", subjects, where=[a.kind == KIND])


def covered(rows: pd.DataFrame, price: str, order_date: str) -> pd.Series | None:
    """The approval among ``rows`` (one subject's, not superseded) that covers ``price`` on an order of
    ``order_date``: approved at that price or lower, and still valid on that date."""
    ok = rows[(rows["state"] == APPROVED) & (rows["superseded"] != "yes")]
    ok = ok[[money.dec(v) <= money.dec(price) and (not order_date or str(u or "9999") >= order_date)
             for v, u in zip(ok["version"], ok["valid_until"])]]
    return ok.iloc[0] if not ok.empty else None


def holds(conn, heads: pd.DataFrame, lines: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    """For sales_orders: the orders a special price holds (hub id → why), and the approved request's
    number for each line an approval covers whose CRM line does not carry it yet (CRM line id → OA
    request id). A line goes once its CRM line carries its approval's number (``special_price_ref``)."""
    cases = below_floor(conn, heads, lines)
    if cases.empty:
        return {}, {}
    refs_of = dict(zip(lines["native_key"].astype(str), lines["special_price_ref"]))
    label = _oa().label
    rows = _approvals(conn, cases["subject"].unique().tolist())
    waits: dict[str, list[str]] = {}
    refs: dict[str, str] = {}
    for case in cases.itertuples(index=False):
        mine = rows[rows["subject"] == case.subject] if not rows.empty else rows
        hit = covered(mine, case.price, case.order_date) if not mine.empty else None
        if hit is not None and refs_of.get(case.native_key) == str(hit["request_id"]):
            continue
        if hit is not None:  # the CRM line gets the number first, so the ERP's copy never changes after
            refs[case.native_key] = str(hit["request_id"])
            waits.setdefault(case.order_hub_id, []).append(
                f"特价 {case.product_code} at {case.price} approved in {label} (request {hit['request_id']}); the CRM "
                "line is given its number next (approvals write back), then the order goes")
            continue
        asked = mine[(mine["version"] == case.price) & (mine["superseded"] != "yes")] if not mine.empty else mine
        what = f"特价 {case.product_code} at {case.price} (floor {case.floor}, list {case.list_price})"
        if asked.empty:
            why = f"{what} needs an approval in {label}: not asked yet (the approvals flow asks)"
        else:
            row = asked.iloc[0]
            why = {SUBMITTING: f"{what} is being sent to {label}",
                   PENDING: f"{what} waits for {label} request {row['request_id']} at {row['node'] or 'its first node'}",
                   REJECTED: f"{what} was rejected in {label} (request {row['request_id']}: {row['opinion'] or 'no opinion'}); "
                             "raise the price or ask again with a changed one",
                   RETURNED: f"{what} was returned for changes in {label} (request {row['request_id']}: "
                             f"{row['opinion'] or 'no opinion'})",
                   APPROVED: f"{what}: {label} approved {row['version']} until {row['valid_until']}, which does not "
                             f"cover this order"}.get(row["state"], what)
        waits.setdefault(case.order_hub_id, []).append(why)
    return {h: "; ".join(w) for h, w in waits.items()}, refs


# --- extract -----------------------------------------------------------------------------------------

def extract(ctx: StepContext) -> StepCounts:
    """The cases (lowest price asked per subject) and the progress of every open OA request."""
    oa = _oa()
    with ctx.engine.begin() as conn:
        heads, lines = _untaken(conn)
        lines = below_floor(conn, heads, lines)
        a = model.approval.c
        open_ids = [r for (r,) in conn.execute(select(a.request_id).where(
            a.kind == KIND, a.system == oa.system, a.state.in_([PENDING]), a.request_id.isnot(None)))]
    cases = pd.DataFrame(columns=["subject"])
    if not lines.empty:
        lines["_price"] = lines["price"].map(money.dec)
        lowest = lines.sort_values("_price", kind="stable").drop_duplicates("subject")
        qty = lines.groupby("subject")["quantity"].agg(lambda s: money.text(sum((money.dec(v) for v in s), Decimal(0))))
        nos = lines.groupby("subject")["order_no"].agg(lambda s: ",".join(sorted({str(v) for v in s})))
        cases = lowest.drop(columns=["_price", "quantity"]).assign(
            quantity=lambda t: t["subject"].map(qty), order_nos=lambda t: t["subject"].map(nos))
    progress = [r for page in oa.connector(HubVault(ctx.engine)).read("workflow_request", {"keys": open_ids})
                for r in page.records] if open_ids else []
    with ctx.engine.begin() as conn:
        stage_write(conn, ctx.run_id, "extract", cases, CASES)
        stage_write(conn, ctx.run_id, "extract", pd.DataFrame(progress), PROGRESS)
        stage_write(conn, ctx.run_id, "lines", lines.drop(columns=["_price"], errors="ignore"))
    log.info("extract: %d special-price cases over %d lines, %d open OA requests read", len(cases), len(lines),
             len(progress))
    return StepCounts(read=len(cases) + len(progress))


# --- map / validate ----------------------------------------------------------------------------------

def _customer_names(conn, keys: list[str]) -> dict[str, str]:
    x = model.xref.c
    links = select_in(conn, model.xref, "native_key", keys, where=[x.entity == "customer", x.system == "crm"],
                      columns=["native_key", "hub_id"])
    names = select_in(conn, model.customer, "hub_id", links["hub_id"].tolist(), columns=["hub_id", "name"])
    return dict(links.merge(names, on="hub_id")[["native_key", "name"]].itertuples(index=False))


def map_step(ctx: StepContext) -> StepCounts:
    """Each case's OA form (mainData) by the kind's mapping spec; the OA's decisions pass as read."""
    spec = engine.load_spec(_oa().mapping(KIND))
    with ctx.engine.begin() as conn:
        cases = stage_read(conn, ctx.run_id, "extract", CASES)
        progress = stage_read(conn, ctx.run_id, "extract", PROGRESS)
        if not cases.empty:
            names = _customer_names(conn, cases["customer_key"].astype(str).tolist())
            cases = cases.assign(customer_name=cases["customer_key"].astype(str).map(names),
                                 applicant=cases["owner_key"].astype(str),
                                 discount_rate=[f"{money.dec(p) / money.dec(lp):.4f}" for p, lp in
                                                zip(cases["price"], cases["list_price"])])
            result = engine.apply(spec, cases.reset_index(drop=True))
            bad = set(result.errors["_row"]) if not result.errors.empty else set()
            cases = cases.reset_index(drop=True)
            reasons = result.errors.groupby("_row")["reason"].agg("; ".join) if bad else pd.Series(dtype=object)
            if bad:
                quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity="approval", system="crm", stage="map", items=[
                    (cases.loc[i, "subject"], {"subject": cases.loc[i, "subject"]}, [reasons[i]]) for i in sorted(bad)])
            fields = [r.target for r in spec.fields]
            mapped = result.frame.set_index("_row").reindex(columns=fields)
            cases = cases.loc[mapped.index].assign(main_data=[
                [{"fieldName": f, "fieldValue": "" if pd.isna(v) else str(v)} for f, v in zip(fields, row)]
                for row in mapped.itertuples(index=False)])
        stage_write(conn, ctx.run_id, "map", cases, CASES)
        stage_write(conn, ctx.run_id, "map", progress, PROGRESS)
    return StepCounts(read=len(cases) + len(progress), mapped=len(cases) + len(progress))


def validate(ctx: StepContext) -> StepCounts:
    """The cases and decisions as mapped (the orders passed the sales_order suite in their own flow)."""
    with ctx.engine.begin() as conn:
        for part in (CASES, PROGRESS):
            stage_write(conn, ctx.run_id, "validate", stage_read(conn, ctx.run_id, "map", part), part)
    return StepCounts()


# --- resolve / load ----------------------------------------------------------------------------------

def request_name(case: Any) -> str:
    """The OA title: readable, and unique per subject and version (the hub's key is how a lost create is found)."""
    return (f"特价审批 {case['customer_name']} {case['product_code']} {case['price']} "
            f"[HUB:{KIND}:{xref.content_hash(pd.DataFrame([case]), ['subject', 'price']).iloc[0][:16]}]")


def resolve_step(ctx: StepContext) -> StepCounts:
    """A case whose (subject, price) was asked already is skipped; a new one is to be asked, and
    supersedes the subject's requests for other prices that are still open."""
    with ctx.engine.begin() as conn:
        cases = stage_read(conn, ctx.run_id, "validate", CASES)
        progress = stage_read(conn, ctx.run_id, "validate", PROGRESS)
        counts = StepCounts(read=len(cases))
        if not cases.empty:
            known = _approvals(conn, cases["subject"].tolist())
            asked = set(zip(known["subject"], known["version"])) if not known.empty else set()
            new = [(s, p) not in asked for s, p in zip(cases["subject"], cases["price"])]
            cases = cases.assign(new=new)
            counts.skipped = int((~cases["new"]).sum())
            cases = cases[cases["new"]]
        stage_write(conn, ctx.run_id, "resolve", cases, CASES)
        stage_write(conn, ctx.run_id, "resolve", progress, PROGRESS)
    return counts


def load(ctx: StepContext) -> StepCounts:
    """The new requests as intents (before anything is sent: a kill after the OA took one is found by
    its title next run), the subjects' older open requests superseded, and the decisions read."""
    oa = _oa()
    with ctx.engine.begin() as conn:
        cases = stage_read(conn, ctx.run_id, "resolve", CASES)
        progress = stage_read(conn, ctx.run_id, "resolve", PROGRESS)
        now = utcnow()
        a = model.approval.c
        if not cases.empty:
            conn.execute(update(model.approval).where(and_(
                a.kind == KIND, a.subject.in_(cases["subject"].tolist()), a.state.in_([SUBMITTING, PENDING, RETURNED])
            )).values(superseded="yes", updated_at=now))
            upsert(conn, model.approval, [{
                "kind": KIND, "subject": c["subject"], "version": c["price"], "system": oa.system,
                "request_name": request_name(c), "request_id": None, "state": SUBMITTING, "superseded": None,
                "facts": {k: c[k] for k in ("customer_key", "customer_name", "product_code", "product_name", "list_price",
                                            "floor", "price", "quantity", "order_nos", "main_data")},
                "submitted_at": None, "updated_at": now, "run_id": ctx.run_id} for c in cases.to_dict("records")],
                keys=["kind", "subject", "version"])
        decided = _record_decisions(conn, oa, progress, ctx.run_id)
    return StepCounts(read=len(cases) + len(progress), written=len(cases) + decided, skipped=len(progress) - decided)


def _record_decisions(conn, oa, progress: pd.DataFrame, run_id: str) -> int:
    """Each request's state as the OA now says; a superseded request's decision is recorded too (and never applied)."""
    if progress.empty:
        return 0
    days = int(rules().get("valid_days", 90))
    a = model.approval.c
    changed = 0
    for p in progress.to_dict("records"):
        state = oa.decision(p)
        decided_on = str(p.get("operated_on") or "")[:10] if state != PENDING else None
        valid = (date.fromisoformat(decided_on) + timedelta(days=days)).isoformat() if state == APPROVED and decided_on else None
        res = conn.execute(update(model.approval).where(and_(a.system == oa.system, a.request_id == str(p["request_id"])))
                           .values(state=state, node=p.get("node"), approver=p.get("last_operator"),
                                   opinion=p.get("opinion") if state != PENDING else None, decided_on=decided_on,
                                   valid_until=valid, updated_at=utcnow(), run_id=run_id))
        changed += res.rowcount if state != PENDING else 0
    return changed


# --- publish: the OA requests -------------------------------------------------------------------------

def publish(ctx: StepContext) -> StepCounts:
    """Every intent not yet sent (this run's and any a killed run left), to the OA."""
    oa = _oa()
    a = model.approval.c
    with ctx.engine.begin() as conn:
        todo = pd.DataFrame([dict(r._mapping) for r in conn.execute(select(model.approval).where(
            a.kind == KIND, a.system == oa.system, a.state == SUBMITTING, a.superseded.is_(None)))])
    counts = StepCounts(read=len(todo))
    if todo.empty:
        return counts
    workflow = oa.workflow(KIND)
    records = [{"_key": f"{r['subject']}@{r['version']}", "subject": r["subject"], "version": r["version"],
                "workflowId": workflow, "requestName": r["request_name"], "mainData": r["facts"]["main_data"],
                "remark": f"CRM 订单 {r['facts']['order_nos']}"} for r in todo.to_dict("records")]

    def sent(conn, ok) -> None:
        for rec, res in ok:
            conn.execute(update(model.approval).where(and_(a.kind == KIND, a.subject == rec["subject"],
                                                           a.version == rec["version"]))
                         .values(request_id=res.native_key, state=PENDING, submitted_at=utcnow(), updated_at=utcnow()))

    ledger = Ledger(ctx, "approval", oa.system, on_ok=sent, done=False, failed_status=None, results="oa_results",
                    row=lambda rec, res: {"hub_id": rec["_key"], "result": res.status, "request_id": res.native_key})
    counts += write_in_chunks(ctx, oa.connector(HubVault(ctx.engine)), "workflow_request", records, ledger.persist)
    return counts


# --- write back: the CRM lines ------------------------------------------------------------------------

def _status_text(row: Any, label: str) -> str:
    rid = row["request_id"] or "—"
    return {SUBMITTING: f"特价审批提交中 ({label})",
            PENDING: f"特价审批中: {label} {rid} @ {row['node'] or ''}",
            APPROVED: f"特价已批准: {label} {rid}, {row['version']} 至 {row['valid_until']}",
            REJECTED: f"特价被驳回: {label} {rid}: {row['opinion'] or ''}",
            RETURNED: f"特价退回修改: {label} {rid}: {row['opinion'] or ''}"}.get(row["state"], "")


def write_back(ctx: StepContext) -> StepCounts:
    """Per waiting special-price line: its approval's status, and, once approved, the OA request's
    number in the line's approval field (which carries it to the ERP); written where it changed."""
    oa = _oa()
    spec = engine.load_spec(LINE_SPEC)
    ref_field = next(r.source for r in spec.fields if r.target == "special_price_ref")
    status_field = dict(spec.write_back).get("special_price_status")
    with ctx.engine.begin() as conn:
        heads, lines = _untaken(conn)
        cases = below_floor(conn, heads, lines)
        rows = _approvals(conn, cases["subject"].unique().tolist()) if not cases.empty else pd.DataFrame()
        x = model.xref.c
        shown = dict(conn.execute(select(x.native_key, x.native_version).where(x.entity == SHOWN, x.system == "crm")).all())
    records = []
    for case in cases.itertuples(index=False):
        mine = rows[(rows["subject"] == case.subject)] if not rows.empty else rows
        hit = covered(mine, case.price, case.order_date) if not mine.empty else None
        live = mine[(mine["superseded"] != "yes")] if not mine.empty else mine
        row = hit if hit is not None else (live.sort_values("updated_at").iloc[-1] if not live.empty else None)
        if row is None:
            continue
        text = _status_text(row, oa.label)
        ref = str(row["request_id"]) if hit is not None else None
        want = f"{text}|{ref or ''}"
        if shown.get(case.native_key) == want:
            continue
        rec = {"_key": case.native_key, "id": case.native_key, "_shown": want}
        if status_field:
            rec[status_field] = text
        if ref:
            rec[ref_field] = ref
        records.append(rec)
    counts = StepCounts(read=len(cases), skipped=len(cases) - len(records))
    if records:
        def holds_now(conn, ok) -> None:
            xref.save(conn, SHOWN, "crm", pd.DataFrame([{"native_key": rec["_key"], "hub_id": rec["_key"],
                                                         "native_version": rec["_shown"], "content_hash": None}
                                                        for rec, _ in ok]))

        ledger = Ledger(ctx, SHOWN, "crm", on_ok=holds_now, done=False, failed_status=None, results="crm_results",
                        payload=lambda rec: {k: v for k, v in rec.items() if k != "_shown"})
        counts += write_in_chunks(ctx, roles.crm().connector(), spec.stream,
                                  [{k: v for k, v in r.items()} for r in records], ledger.persist)
    with ctx.engine.begin() as conn:
        result = outcomes(conn, ctx.run_id)
    save_outcomes(ctx, result)
    return counts


STEP_FUNCTIONS = {
    "extract": extract, "map": map_step, "validate": validate, "resolve": resolve_step,
    "load": load, "publish": publish, "write_back": write_back,
}


# --- outcomes -----------------------------------------------------------------------------------------

def outcomes(conn, run_id: str) -> pd.DataFrame:
    """Every case and every OA request this run read, with the one outcome it ended in."""
    label = _oa().label
    cases = stage_read(conn, run_id, "extract", CASES)
    progress = stage_read(conn, run_id, "extract", PROGRESS)
    sent = stage_read(conn, run_id, "oa_results")
    result = sent.set_index("hub_id")["result"].to_dict() if not sent.empty else {}
    a = model.approval.c
    state = {(s, v): st for s, v, st in conn.execute(select(a.subject, a.version, a.state).where(a.kind == KIND))}
    held = set(quarantined_keys(conn, run_id, "approval", ["map"])["key"])
    rows = []
    for c in cases.to_dict("records"):
        key = f"{c['subject']}@{c['price']}"
        res = "failed" if c["subject"] in held else result.get(key)
        outcome = {"created": f"asked in {label}", "linked": f"asked in {label} (its request found by title)",
                   "failed": "quarantined"}.get(res) if res else None
        rows.append({"system": "crm", "key": key, "hub_id": key,
                     "outcome": outcome or "skipped",
                     "detail": None if outcome else f"{label} request for this price is {state.get((c['subject'], c['price']), 'not sent')}"})
    for p in progress.to_dict("records"):
        decision = _oa().decision(p)
        rows.append({"system": _oa().system, "key": str(p["request_id"]), "hub_id": str(p["request_id"]),
                     "outcome": "stored in hub" if decision != PENDING else "skipped",
                     "detail": f"{decision} ({p.get('node')})"})
    return pd.DataFrame(rows, columns=["system", "key", "hub_id", "outcome", "detail"])
