"""The approvals flow: what the OA must decide is held from the ERP until it has, and the decision
goes back to the CRM. One engine over the kinds of flows/approval_kinds.py — a special price (特价,
德力西: an order line below its product's floor) and an order over its customer's credit (超信用,
远东) so far — each a rule, an OA form (mapping spec) and a workflow (the oa binding's ``workflows``).

extract — the requests the CRM's waiting orders call for (per kind, one per subject and version:
a special price per customer and product at the lowest price asked, an over-credit order at its
total) and the progress of every open OA request. map — each request's OA form by its kind's
mapping spec (a request that does not map is quarantined; its order waits). validate — as mapped.
resolve — a (kind, subject, version) asked already is skipped; a new version supersedes the
subject's open request. load — the intents (state ``submitting``), before anything is sent, and the
decisions read (a superseded request's decision is recorded, never applied). publish — the OA
requests, looked up by their title before a create and after a lost answer (one request per
version, however often sent). write back — each case's approval status on its CRM record, and the
approved request's number where the kind carries it to the ERP. sales_orders asks :func:`holds`
which orders wait.
"""
from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, select, update

from flows import order_documents, roles
from flows.approval_kinds import CASE_COLUMNS, KINDS, rules
from flows.ledger import Ledger
from flows.steps import quarantined_keys, save_outcomes, write_in_chunks
from hub import model, quarantine, xref
from hub.errors import ConfigurationError
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import select_in, stage_read, stage_write, upsert, utcnow
from hub.vault import HubVault
from mappings import engine

log = logging.getLogger("flows.approvals")

FLOW, KIND = "approvals", "special_price"
SHOWN = "approval_shown"   # xref: what a CRM record shows of its approval (native_version), per kind and record
CASES, PROGRESS = "cases", "progress"
SUBMITTING, PENDING, APPROVED, REJECTED, RETURNED = "submitting", "pending", "approved", "rejected", "returned"
#: what a CRM record shows once it no longer waits for the decision it was asked for (the price raised
#: above the floor, the customer's credit enough again, the order cancelled)
NO_LONGER = "{label}审批已不需要"
OPEN = (SUBMITTING, PENDING, RETURNED)


def active() -> bool:
    """Whether this deployment runs approvals: an ``oa`` seat that takes part in them."""
    return roles.offers("oa", "approvals")


def _oa():
    return roles.adapter(roles.seat("oa"))


# --- which orders need an approval ---------------------------------------------------------------

def kinds() -> list[Any]:
    """The kinds this deployment runs: those the oa binding names a workflow for."""
    named = [k for k in (roles.seat("oa").options.get("workflows") or {}) if not k.startswith("__")]
    unknown = [k for k in named if k not in KINDS]
    if unknown:
        raise ConfigurationError(f"{roles.seat('oa').where}: workflows names unknown approval kind(s) {unknown}; "
                                 f"the kinds are {sorted(KINDS)}")
    return [KINDS[k] for k in named]


def _untaken(conn) -> tuple[pd.DataFrame, pd.DataFrame]:
    heads = order_documents.untaken_orders(conn, roles.seat("erp").name)
    lines = select_in(conn, model.sales_order_line, "order_hub_id", heads["hub_id"].tolist() if not heads.empty else [])
    return heads, lines


def cases_of(conn, heads: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Every kind's cases among these orders, one frame (the kinds' own facts side by side)."""
    found = [k.cases(conn, heads, lines) for k in kinds()]
    found = [f for f in found if not f.empty]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=CASE_COLUMNS)


def below_floor(conn, heads: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """The special-price cases among these orders (tests, the demo)."""
    return KINDS[KIND].cases(conn, heads, lines)


def _approvals(conn, subjects: list[str]) -> pd.DataFrame:
    return select_in(conn, model.approval, "subject", subjects)


def covered(rows: pd.DataFrame, kind: Any, version: str, order_date: str) -> pd.Series | None:
    """The approval among ``rows`` (one subject's of one kind) that covers ``version`` on an order of
    ``order_date``: approved, not superseded, covering that version, and valid on that date."""
    ok = rows[(rows["state"] == APPROVED) & (rows["superseded"] != "yes")]
    ok = ok[[kind.covers(v, version) and (not order_date or str(u or "9999") >= order_date)
             for v, u in zip(ok["version"], ok["valid_until"])]]
    return ok.iloc[0] if not ok.empty else None


def _mine(rows: pd.DataFrame, kind: str, subject: str) -> pd.DataFrame:
    return rows[(rows["kind"] == kind) & (rows["subject"] == subject)] if not rows.empty else rows


def holds(conn, heads: pd.DataFrame, lines: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    """For sales_orders: the orders an approval holds (hub id → why), and the approved request's
    number for each CRM record that must carry it first (a special-price line: its number goes to
    the ERP with it; CRM record id → OA request id)."""
    cases = cases_of(conn, heads, lines)
    if cases.empty:
        return {}, {}
    refs_of = dict(zip(lines["native_key"].astype(str), lines["special_price_ref"])) if not lines.empty else {}
    label = _oa().label
    rows = _approvals(conn, cases["subject"].unique().tolist())
    waits: dict[str, list[str]] = {}
    refs: dict[str, str] = {}
    for case in cases.to_dict("records"):
        kind = KINDS[case["kind"]]
        mine = _mine(rows, kind.name, case["subject"])
        hit = covered(mine, kind, case["version"], case["order_date"]) if not mine.empty else None
        what = kind.what(case)
        if hit is not None and (kind.crm_ref is None or refs_of.get(case["crm_key"]) == str(hit["request_id"])):
            continue
        if hit is not None:  # the CRM record gets the number first, so the ERP's copy never changes after
            refs[case["crm_key"]] = str(hit["request_id"])
            waits.setdefault(case["order_hub_id"], []).append(
                f"{what}: approved in {label} (request {hit['request_id']}); the CRM record is given its number "
                "next (approvals write back), then the order goes")
            continue
        asked = mine[(mine["version"] == case["version"]) & (mine["superseded"] != "yes")] if not mine.empty else mine
        if asked.empty:
            why = f"{what} needs an approval in {label}: not asked yet (the approvals flow asks)"
        else:
            row = asked.iloc[0]
            why = {SUBMITTING: f"{what} is being sent to {label}",
                   PENDING: f"{what} waits for {label} request {row['request_id']} at {row['node'] or 'its first node'}",
                   REJECTED: f"{what} was rejected in {label} (request {row['request_id']}: {row['opinion'] or 'no opinion'})",
                   RETURNED: f"{what} was returned for changes in {label} (request {row['request_id']}: "
                             f"{row['opinion'] or 'no opinion'})",
                   APPROVED: f"{what}: {label} approved {row['version']} until {row['valid_until']}, which does not "
                             f"cover this order"}.get(row["state"], what)
        waits.setdefault(case["order_hub_id"], []).append(why)
    return {h: "; ".join(w) for h, w in waits.items()}, refs


# --- extract -----------------------------------------------------------------------------------------

def extract(ctx: StepContext) -> StepCounts:
    """The requests the cases call for (per kind: one per subject and version) and the progress of
    every open OA request."""
    oa = _oa()
    with ctx.engine.begin() as conn:
        heads, lines = _untaken(conn)
        found = cases_of(conn, heads, lines)
        a = model.approval.c
        open_ids = [r for (r,) in conn.execute(select(a.request_id).where(
            a.system == oa.system, a.state.in_([PENDING, RETURNED]), a.request_id.isnot(None)))]
    parts = []
    for kind in kinds():
        mine = found[found["kind"] == kind.name] if not found.empty else found
        if not mine.empty:
            nos = mine.groupby("subject")["order_no"].agg(lambda s: ",".join(sorted({str(v) for v in s})))
            parts.append(kind.requests(mine).assign(order_nos=lambda t: t["subject"].map(nos)))
    cases = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CASE_COLUMNS)
    progress = [r for page in oa.connector(HubVault(ctx.engine)).read("workflow_request", {"keys": open_ids})
                for r in page.records] if open_ids else []
    with ctx.engine.begin() as conn:
        stage_write(conn, ctx.run_id, "extract", cases, CASES)
        stage_write(conn, ctx.run_id, "extract", pd.DataFrame(progress), PROGRESS)
    log.info("extract: %d requests the cases call for (%s), %d open OA requests read", len(cases),
             dict(cases["kind"].value_counts()) if not cases.empty else {}, len(progress))
    return StepCounts(read=len(cases) + len(progress))


# --- map / validate ----------------------------------------------------------------------------------

def _customer_names(conn, keys: list[str]) -> dict[str, str]:
    x = model.xref.c
    links = select_in(conn, model.xref, "native_key", keys, where=[x.entity == "customer", x.system == "crm"],
                      columns=["native_key", "hub_id"])
    names = select_in(conn, model.customer, "hub_id", links["hub_id"].tolist(), columns=["hub_id", "name"])
    return dict(links.merge(names, on="hub_id")[["native_key", "name"]].itertuples(index=False))


def _key(case: Any) -> str:
    return f"{case['kind']}:{case['subject']}@{case['version']}"


def map_step(ctx: StepContext) -> StepCounts:
    """Each request's OA form (its fields, name → value) by its kind's mapping spec; a request that
    does not map (a field the form needs is empty) is quarantined with the reason, its order waits."""
    oa = _oa()
    with ctx.engine.begin() as conn:
        cases = stage_read(conn, ctx.run_id, "extract", CASES)
        progress = stage_read(conn, ctx.run_id, "extract", PROGRESS)
        out = []
        if not cases.empty:
            names = _customer_names(conn, cases["customer_key"].astype(str).tolist())
            cases = cases.assign(customer_name=cases["customer_key"].astype(str).map(names),
                                 applicant=cases["owner_key"].astype(str))
            for kind_name, part in cases.groupby("kind"):
                spec = engine.load_spec(oa.mapping(kind_name))
                part = part.reset_index(drop=True)
                result = engine.apply(spec, part)
                if not result.errors.empty:
                    reasons = result.errors.groupby("_row")["reason"].agg("; ".join)
                    quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity="approval", system="crm", stage="map",
                                   items=[(_key(part.loc[i]), {"kind": kind_name, "subject": part.loc[i, "subject"]},
                                           [reasons[i]]) for i in sorted(reasons.index)])
                fields = [r.target for r in spec.fields]
                mapped = result.frame.set_index("_row").reindex(columns=fields)
                out.append(part.loc[mapped.index].assign(form=[
                    [{"name": f, "value": "" if pd.isna(v) else str(v)} for f, v in zip(fields, row)]
                    for row in mapped.itertuples(index=False)]))
        cases = pd.concat(out, ignore_index=True) if out else cases
        stage_write(conn, ctx.run_id, "map", cases, CASES)
        stage_write(conn, ctx.run_id, "map", progress, PROGRESS)
    return StepCounts(read=len(cases) + len(progress), mapped=len(cases) + len(progress))


def validate(ctx: StepContext) -> StepCounts:
    """The requests and decisions as mapped (the orders passed the sales_order suite in their own flow)."""
    with ctx.engine.begin() as conn:
        for part in (CASES, PROGRESS):
            stage_write(conn, ctx.run_id, "validate", stage_read(conn, ctx.run_id, "map", part), part)
    return StepCounts()


# --- resolve / load ----------------------------------------------------------------------------------

def request_name(case: Any) -> str:
    """The OA title: readable, and unique per kind, subject and version (the hub's key is how a lost
    create is found)."""
    digest = xref.content_hash(pd.DataFrame([case]), ["kind", "subject", "version"]).iloc[0][:16]
    return f"{KINDS[case['kind']].title(case)} [HUB:{case['kind']}:{digest}]"


def resolve_step(ctx: StepContext) -> StepCounts:
    """A request whose (kind, subject, version) was asked already is skipped; a new one is to be
    asked, and supersedes the subject's requests for other versions that are still open. A version
    asked once, superseded and wanted again is asked again (its OA request is found by its title)."""
    with ctx.engine.begin() as conn:
        cases = stage_read(conn, ctx.run_id, "validate", CASES)
        progress = stage_read(conn, ctx.run_id, "validate", PROGRESS)
        counts = StepCounts(read=len(cases))
        if not cases.empty:
            known = _approvals(conn, cases["subject"].tolist())
            live = known[known["superseded"] != "yes"] if not known.empty else known
            asked = set(zip(live["kind"], live["subject"], live["version"])) if not live.empty else set()
            new = [(k, s, v) not in asked for k, s, v in zip(cases["kind"], cases["subject"], cases["version"])]
            cases = cases.assign(new=new)
            counts.skipped = int((~cases["new"]).sum())
            cases = cases[cases["new"]]
        stage_write(conn, ctx.run_id, "resolve", cases, CASES)
        stage_write(conn, ctx.run_id, "resolve", progress, PROGRESS)
    return counts


FACT_SKIP = {"new", "form", "order_hub_id", "crm_key", "owner_key", "applicant"}


def load(ctx: StepContext) -> StepCounts:
    """The new requests as intents (before anything is sent: a kill after the OA took one is found by
    its title next run), the subjects' older open requests superseded, and the decisions read."""
    oa = _oa()
    with ctx.engine.begin() as conn:
        cases = stage_read(conn, ctx.run_id, "resolve", CASES)
        progress = stage_read(conn, ctx.run_id, "resolve", PROGRESS)
        now = utcnow()
        a = model.approval.c
        for kind_name, part in (cases.groupby("kind") if not cases.empty else []):
            conn.execute(update(model.approval).where(and_(
                a.kind == kind_name, a.subject.in_(part["subject"].tolist()),
                a.state.in_([SUBMITTING, PENDING, RETURNED]))).values(superseded="yes", updated_at=now))
        if not cases.empty:
            upsert(conn, model.approval, [{
                "kind": c["kind"], "subject": c["subject"], "version": c["version"], "system": oa.system,
                "request_name": request_name(c), "request_id": None, "state": SUBMITTING, "superseded": None,
                "facts": {**{k: v for k, v in c.items() if k not in FACT_SKIP and not pd.isna(v)}, "form": c["form"]},
                "submitted_at": None, "updated_at": now, "run_id": ctx.run_id} for c in cases.to_dict("records")],
                keys=["kind", "subject", "version"])
        decided = _record_decisions(conn, oa, progress, ctx.run_id)
        stage_write(conn, ctx.run_id, "decided", pd.DataFrame({"request_id": decided}))
        _retire(conn, stage_read(conn, ctx.run_id, "extract", CASES), now)
    return StepCounts(read=len(cases) + len(progress), written=len(cases) + len(decided),
                      skipped=len(progress) - len(decided))


def _retire(conn, wanted: pd.DataFrame, now) -> None:
    """Open requests whose subject no longer calls for a decision (no waiting case asks for it) are
    superseded: the OA may still decide them, the hub records that and applies nothing."""
    a = model.approval.c
    for kind in kinds():
        keep = set(wanted.loc[wanted["kind"] == kind.name, "subject"]) if not wanted.empty else set()
        stale = [s for (s,) in conn.execute(select(a.subject).where(a.kind == kind.name, a.state.in_(OPEN),
                                                                    a.superseded.is_(None))) if s not in keep]
        if stale:
            conn.execute(update(model.approval).where(a.kind == kind.name, a.subject.in_(stale), a.state.in_(OPEN))
                         .values(superseded="yes", updated_at=now))
            log.info("%s: %d open request(s) no longer needed (superseded)", kind.name, len(stale))


def _record_decisions(conn, oa, progress: pd.DataFrame, run_id: str) -> list[str]:
    """Each request's state as the OA now says (the ids whose state changed); a superseded request's
    decision is recorded too, and never applied. A returned request is read again: the applicant may
    resubmit it in the OA."""
    if progress.empty:
        return []
    a = model.approval.c
    ids = progress["request_id"].astype(str).tolist()
    before = {r.request_id: (r.state, r.kind) for r in conn.execute(select(a.request_id, a.state, a.kind).where(
        a.system == oa.system, a.request_id.in_(ids)))}
    changed: list[str] = []
    for p in progress.to_dict("records"):
        rid = str(p["request_id"])
        state, kind = oa.decision(p), (before.get(rid) or (None, KIND))[1]
        days = int(rules(kind).get("valid_days", 90))
        decided_on = str(p.get("operated_on") or "")[:10] if state != PENDING else None
        valid = (date.fromisoformat(decided_on) + timedelta(days=days)).isoformat() if state == APPROVED and decided_on else None
        res = conn.execute(update(model.approval).where(and_(a.system == oa.system, a.request_id == rid))
                           .values(state=state, node=p.get("node"), approver=p.get("last_operator"),
                                   opinion=p.get("opinion") if state != PENDING else None, decided_on=decided_on,
                                   valid_until=valid, updated_at=utcnow(), run_id=run_id))
        if res.rowcount and state != (before.get(rid) or (None,))[0]:
            changed.append(rid)
    return changed


# --- publish: the OA requests -------------------------------------------------------------------------

def publish(ctx: StepContext) -> StepCounts:
    """Every intent not yet sent (this run's and any a killed run left), to the OA."""
    oa = _oa()
    a = model.approval.c
    with ctx.engine.begin() as conn:
        todo = pd.DataFrame([dict(r._mapping) for r in conn.execute(select(model.approval).where(
            a.system == oa.system, a.state == SUBMITTING, a.superseded.is_(None)))])
    counts = StepCounts(read=len(todo))
    if todo.empty:
        return counts
    records = [{"_key": _key(r), "kind": r["kind"], "subject": r["subject"], "version": r["version"],
                "workflow": oa.workflow(r["kind"]), "title": r["request_name"], "fields": r["facts"]["form"],
                "remark": f"CRM 订单 {r['facts']['order_nos']}"} for r in todo.to_dict("records")]

    def sent(conn, ok) -> None:
        for rec, res in ok:
            conn.execute(update(model.approval).where(and_(a.kind == rec["kind"], a.subject == rec["subject"],
                                                           a.version == rec["version"]))
                         .values(request_id=res.native_key, state=PENDING, submitted_at=utcnow(), updated_at=utcnow()))

    ledger = Ledger(ctx, "approval", oa.system, on_ok=sent, done=False, failed_status=None, results="oa_results",
                    row=lambda rec, res: {"hub_id": rec["_key"], "result": res.status, "request_id": res.native_key})
    counts += write_in_chunks(ctx, oa.connector(HubVault(ctx.engine)), "workflow_request", records, ledger.persist)
    return counts


# --- write back: the CRM lines ------------------------------------------------------------------------

def _status_text(row: Any, label: str, kind: Any) -> str:
    rid = row["request_id"] or "—"
    return {SUBMITTING: f"{kind.label}审批提交中 ({label})",
            PENDING: f"{kind.label}审批中: {label} {rid} @ {row['node'] or ''}",
            APPROVED: f"{kind.label}已批准: {label} {rid}, {row['version']} 至 {row['valid_until']}",
            REJECTED: f"{kind.label}被驳回: {label} {rid}: {row['opinion'] or ''}",
            RETURNED: f"{kind.label}退回修改: {label} {rid}: {row['opinion'] or ''}"}.get(row["state"], "")


def write_back(ctx: StepContext) -> StepCounts:
    """Per waiting case: its approval's status on the CRM record the kind names (a special price's
    order line, an over-credit order), and, once approved, the OA request's number where the kind
    carries it to the ERP (a special-price line's approval field); written where it changed."""
    oa = _oa()
    with ctx.engine.begin() as conn:
        heads, lines = _untaken(conn)
        cases = cases_of(conn, heads, lines)
        rows = _approvals(conn, cases["subject"].unique().tolist()) if not cases.empty else pd.DataFrame()
        x = model.xref.c
        shown = dict(conn.execute(select(x.native_key, x.native_version).where(x.entity == SHOWN, x.system == "crm")).all())
    counts = StepCounts(read=len(cases))
    for kind in kinds():
        spec = engine.load_spec(kind.crm_spec)
        status_field = dict(spec.write_back).get(kind.crm_status)
        ref_field = next((r.source for r in spec.fields if r.target == kind.crm_ref), None) if kind.crm_ref else None
        records = []
        for case in (cases[cases["kind"] == kind.name].to_dict("records") if not cases.empty else []):
            if not case["crm_key"]:
                continue
            mine = _mine(rows, kind.name, case["subject"])
            hit = covered(mine, kind, case["version"], case["order_date"]) if not mine.empty else None
            live = mine[mine["superseded"] != "yes"] if not mine.empty else mine
            row = hit if hit is not None else (live.sort_values("updated_at").iloc[-1] if not live.empty else None)
            if row is None:
                continue
            text = _status_text(row, oa.label, kind)
            ref = str(row["request_id"]) if hit is not None and ref_field else None
            want, key = f"{text}|{ref or ''}", f"{kind.name}:{case['crm_key']}"
            if shown.get(key) == want:
                continue
            rec = {"_key": key, "id": case["crm_key"], "_shown": want}
            if status_field:
                rec[status_field] = text
            if ref:
                rec[ref_field] = ref
            records.append(rec)
        counts.skipped += int((cases["kind"] == kind.name).sum()) - len(records) if not cases.empty else 0
        current = {f"{kind.name}:{k}" for k in (cases.loc[cases["kind"] == kind.name, "crm_key"] if not cases.empty else [])}
        gone = NO_LONGER.format(label=kind.label)
        for key, was in shown.items():   # a record no longer waiting for a decision it did not get: say so
            if key.startswith(f"{kind.name}:") and key not in current and was and "已批准" not in was and was != f"{gone}|":
                rec = {"_key": key, "id": key.split(":", 1)[1], "_shown": f"{gone}|"}
                if status_field:
                    rec[status_field] = gone
                records.append(rec)
        if records:
            counts += _show(ctx, spec.stream, records)
    with ctx.engine.begin() as conn:
        result = outcomes(conn, ctx.run_id)
    save_outcomes(ctx, result)
    return counts


def _show(ctx: StepContext, stream: str, records: list[dict[str, Any]]) -> StepCounts:
    def holds_now(conn, ok) -> None:
        xref.save(conn, SHOWN, "crm", pd.DataFrame([{"native_key": rec["_key"], "hub_id": rec["_key"],
                                                     "native_version": rec["_shown"], "content_hash": None}
                                                    for rec, _ in ok]))

    ledger = Ledger(ctx, SHOWN, "crm", on_ok=holds_now, done=False, failed_status=None, results="crm_results",
                    payload=lambda rec: {k: v for k, v in rec.items() if k != "_shown"})
    return write_in_chunks(ctx, roles.crm().connector(), stream, records, ledger.persist)


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
    state = {(k, s, v): st for k, s, v, st in conn.execute(select(a.kind, a.subject, a.version, a.state))}
    held = set(quarantined_keys(conn, run_id, "approval", ["map"])["key"])
    rows = []
    for c in cases.to_dict("records"):
        key = _key(c)
        res = "failed" if key in held else result.get(key)
        outcome = {"created": f"asked in {label}", "linked": f"asked in {label} (its request found by title)",
                   "failed": "quarantined"}.get(res) if res else None
        rows.append({"system": "crm", "key": key, "hub_id": key,
                     "outcome": outcome or "skipped",
                     "detail": None if outcome else
                     f"{label} request for this version is {state.get((c['kind'], c['subject'], c['version']), 'not sent')}"})
    decided = stage_read(conn, run_id, "decided")
    moved = set(decided["request_id"].astype(str)) if not decided.empty else set()
    for p in progress.to_dict("records"):
        decision = _oa().decision(p)
        rows.append({"system": _oa().system, "key": str(p["request_id"]), "hub_id": str(p["request_id"]),
                     "outcome": f"recorded: {decision}" if str(p["request_id"]) in moved else "skipped",
                     "detail": f"{decision} at {p.get('node')}" + ("" if str(p["request_id"]) in moved else ", as before")})
    return pd.DataFrame(rows, columns=["system", "key", "hub_id", "outcome", "detail"])
