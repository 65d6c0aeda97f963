"""The customer master flow: CRM ⇄ hub ⇄ ERP.

extract (CRM accounts and contacts, the ERP's customers) → map (YAML specs) → validate (GX
gates) → resolve (xref, unchanged records skipped, dedup against every stored record) → load
(source records, survivorship into golden records, outbox, watermarks; contacts) → publish
(registry check, what each target lacks) → write back (the ERP's customer add / edit, with
U8's biz_id under default bindings, then the ERP's number into the CRM account).

The flow names roles (``crm``, ``erp``, ``registry``; flows.roles): staging is keyed by role,
xref, outbox and quarantine by the seat's xref name (``roles.erp().system``: ``u8`` under the
default bindings), messages by its label.

Each function is one step: it reads this run's input from the store and writes its
output there, so Airflow may retry any step alone.
"""
from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import select, update

from flows import contacts, registry, roles, settings
from flows.engine import Flow, Source
from flows.ledger import Ledger
from flows.steps import quarantine_errors, read_stream, save_source_records, write_in_chunks
from hub import model, outbox, quarantine, watermarks, xref
from hub.errors import ConfigurationError, DataError
from hub.model import CUSTOMER_FIELDS, SOURCE_EXTRA
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import chunks, frame_records, select_in, stage_read, stage_write, upsert, utcnow
from hub.types import Connector, WriteResult
from mappings import engine
from quality import gate, golden, matching, review, survivorship, uscc

log = logging.getLogger("flows.customer_master")

FLOW = "customer_master"
ENTITY = "customer"
CRM_IN, CRM_OUT = "crm_account_to_customer", "customer_to_crm_account"
SOURCE_COLUMNS = [*CUSTOMER_FIELDS, *SOURCE_EXTRA]


class _Customers(Flow):
    """The engine's extract and map over the spec's customer sources (flows/specs/customer_master.yaml).

    Two sources of the spec are not the engine's to read: the contacts (stage ``crm.contact``)
    are flows.contacts' (their broken pages, replays and quarantine entries are entity
    ``contact``, the engine's would be ``customer``), and the ERP's customers when its card
    lacks ``customer_feed`` (ECC: only written to, though its adapter maps ``customer.in`` for
    the read-back hash, so the spec's ``optional`` alone would read it)."""

    def sources(self) -> list[Source]:
        feed = roles.offers("erp", "customer_feed")
        return [s for s in super().sources() if s.stage != contacts.STAGE and (s.end.role != "erp" or feed)]


FLOW_ENGINE = _Customers(FLOW)


def sources() -> list[Source]:
    """The CRM's accounts and the ERP's customers, as the bindings seat them (staged by role:
    ``crm``, ``erp``); an ERP without a customer change feed is only written to, never read."""
    return FLOW_ENGINE.sources()


def targets() -> tuple[str, str]:
    """The xref names a changed golden customer is sent to (the outbox targets): ERP, then CRM."""
    return roles.erp().system, roles.crm().system


def seats() -> dict[str, str]:
    """Role → xref name of the seats a customer's records come from and go to: the suites'
    ``clear_for`` (quality.gate), survivorship's role order and the golden record's targets."""
    bound = {"erp": roles.erp().system, "crm": roles.crm().system}
    return bound | {"registry": s.name for s in roles.seats("registry")}


def crm() -> Connector:
    """The CRM connector reading accounts and contacts (and writing the ERP number back)."""
    account, contact = engine.load_spec(CRM_IN), contacts.spec()
    return roles.crm().connector(streams={account.stream: account.source_fields, contact.stream: contact.source_fields})


def erp_connector(write: bool = False) -> Connector:
    """The ERP connector reading its customers; ``write`` also opens the write side."""
    erp = roles.erp()
    spec = engine.load_spec(erp.mapping("customer.in"))
    return erp.connector(columns={spec.stream: spec.source_fields}, write=write)


# --- extract -------------------------------------------------------------------------------------

def extract(ctx: StepContext) -> StepCounts:
    """Accounts and the ERP's customers by the engine, then the CRM's contacts."""
    counts = FLOW_ENGINE.extract(ctx)
    counts += read_stream(ctx, crm(), roles.crm().system, contacts.spec().stream, contacts.ENTITY,
                          stage_as=contacts.STAGE)
    return counts


# --- map -----------------------------------------------------------------------------------------

def map_step(ctx: StepContext) -> StepCounts:
    """Each seat's records mapped by its spec (the engine's map: the newest version per key,
    since an overlap window or a replay can bring one twice; mapping errors quarantined), then
    the contacts."""
    counts = FLOW_ENGINE.map(ctx)
    with ctx.engine.begin() as conn:
        counts += contacts.map_step(conn, ctx, FLOW)
    counts.rejected = counts.quarantined
    return counts


# --- validate ------------------------------------------------------------------------------------

def validate(ctx: StepContext) -> StepCounts:
    """The customer suite over both seats' records. Not flows.steps.gate_records: a run over the
    reject threshold keeps its quarantine, its validate_report and validate_cleared stages (they
    are committed before the run stops), and the threshold counts the contacts read."""
    with ctx.engine.begin() as conn:
        contact_counts = contacts.validate(conn, ctx, FLOW)
        batch = pd.concat([stage_read(conn, ctx.run_id, "map", src.stage) for src in sources()], ignore_index=True)
    counts = StepCounts(read=len(batch))
    if batch.empty:
        with ctx.engine.begin() as conn:
            stage_write(conn, ctx.run_id, "validate", batch, ENTITY)
        return counts + contact_counts
    result = gate.validate(ENTITY, batch, seats=seats())
    with ctx.engine.begin() as conn:
        if len(result.failures):
            reasons = result.failures.groupby("_row").apply(
                lambda g: [f"{e}: {r}" for e, r in zip(g["expectation"], g["reason"])], include_groups=False)
            bad = batch[batch["_row"].isin(reasons.index)]
            for system, part in bad.groupby("system"):
                items = [(k, rec, reasons[row]) for k, row, rec in zip(part["_key"], part["_row"], frame_records(part))]
                counts.quarantined += quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity=ENTITY,
                                                     system=str(system), stage="validate", items=items)
        stage_write(conn, ctx.run_id, "validate", result.good, ENTITY)
        stage_write(conn, ctx.run_id, "validate_report", pd.DataFrame(result.results))
        stage_write(conn, ctx.run_id, "validate_cleared", result.cleared)
    if len(result.cleared):
        log.warning("%d fields failed the gate on records that were kept with the field cleared: %s",
                    len(result.cleared), result.cleared.groupby("expectation").size().to_dict())
    counts.rejected = counts.quarantined
    counts.mapped = len(result.good)
    rate = counts.rejected / max(1, counts.read)
    counts += contact_counts
    if counts.read >= settings.MIN_ROWS_FOR_THRESHOLD and rate > settings.reject_threshold(FLOW):
        raise DataError(f"{FLOW}: {rate:.0%} of {counts.read} records failed validation "
                        f"(threshold {settings.reject_threshold(FLOW):.0%}); the source itself looks broken")
    return counts


# --- resolve -------------------------------------------------------------------------------------

def resolve_step(ctx: StepContext) -> StepCounts:
    with ctx.engine.begin() as conn:
        applied = review.apply_requested(conn, seats=seats())  # verdicts a reviewer gave in the console
        if applied:
            log.info("applied %d dedup verdicts from the review queue", applied)
        batch = stage_read(conn, ctx.run_id, "validate", ENTITY)
        counts = StepCounts(read=len(batch))
        if batch.empty:
            stage_write(conn, ctx.run_id, "resolve", batch, ENTITY)
            return counts
        batch["uscc"] = batch["uscc"].where(batch["uscc"].notna(), None)
        spec_of = {src.system: src.spec for src in sources()}
        parts = []
        for system, part in batch.groupby("system"):
            spec = spec_of[str(system)]
            known = xref.lookup(conn, ENTITY, str(system), part["_key"].astype(str).tolist())
            part = part.assign(_key=part["_key"].astype(str), content_hash=xref.content_hash(part, spec.hash_fields))
            part = part.merge(known[["native_key", "hub_id", "content_hash"]].rename(
                columns={"native_key": "_key", "content_hash": "known_hash"}), on="_key", how="left")
            parts.append(part)
        batch = pd.concat(parts, ignore_index=True)
        unchanged = batch["hub_id"].notna() & (batch["content_hash"] == batch["known_hash"])
        counts.skipped = int(unchanged.sum())
        changed = batch[~unchanged].drop(columns=["known_hash"]).reset_index(drop=True)
        if not changed.empty:
            changed, stats = matching.resolve(conn, changed, ctx.run_id)
            counts.merged = int(changed["match_rule"].isin(["match", "batch", "conflict"]).sum())
            log.info("matching: %s", stats)
        stage_write(conn, ctx.run_id, "resolve", changed, ENTITY)
        stage_write(conn, ctx.run_id, "skipped", batch.loc[unchanged, ["system", "_key", "hub_id"]], ENTITY)
    return counts


# --- load ----------------------------------------------------------------------------------------

def _sources_of(conn, hub_ids: list[str]) -> pd.DataFrame:
    return select_in(conn, model.customer_source, "hub_id", hub_ids)


def load(ctx: StepContext) -> StepCounts:
    """Store source records and xref, rebuild the touched golden records, enqueue them."""
    crm_key = roles.crm().system
    with ctx.engine.begin() as conn:
        batch = stage_read(conn, ctx.run_id, "resolve", ENTITY)
        counts = StepCounts(read=len(batch))
        if not batch.empty:
            src = save_source_records(conn, model.customer_source, batch, SOURCE_COLUMNS, ctx.run_id)
            for system, part in src.groupby("system"):
                xref.save(conn, ENTITY, str(system), part.assign(
                    native_version=part["_version"].astype(str) if "_version" in part else None))
                quarantine.resolve(conn, run_id=ctx.run_id, flow=FLOW, system=str(system),
                                   record_keys=part["native_key"].tolist())
            matching.index(conn, src)
            counts.written = golden.rebuild(conn, ctx.run_id, batch["hub_id"].unique().tolist(), seats=seats())
            # a CRM account that joined a customer the ERP already holds leaves the golden record
            # as it was, yet still lacks the ERP's number: write_back compares and sends only what differs
            outbox.enqueue(conn, ENTITY, ctx.run_id, src.loc[src["system"] == crm_key, "hub_id"].tolist(), [crm_key])
            counts.skipped = counts.read - len(batch)
        # contacts after their customers, whose hub ids they need
        counts += contacts.resolve(conn, ctx, FLOW)
        counts += contacts.load(conn, ctx, FLOW)
        moved = watermarks.commit_pending(conn, ctx.run_id, FLOW)
        log.info("watermarks moved: %s", moved)
    return counts


# --- publish -------------------------------------------------------------------------------------

def _pending(conn, target: str) -> list[str]:
    o = model.outbox.c
    return [r[0] for r in conn.execute(select(o.hub_id).where(o.entity == ENTITY, o.target == target,
                                                              o.status == "pending"))]


def _golden(conn, hub_ids: list[str]) -> pd.DataFrame:
    return select_in(conn, model.customer, "hub_id", hub_ids)


def publish(ctx: StepContext) -> StepCounts:
    """Decide what the ERP lacks: golden records whose ERP projection differs from what it holds.

    Before that, new and changed golden records are checked against the business registry
    (when a ``registry`` connection exists): its legal facts become a source record that
    survivorship ranks first, a company it reports 注销 / 吊销 is held back from the ERP
    with a reason, and one whose lookup was deferred (quota, outage) waits for the next run.
    """
    erp = roles.erp()
    with ctx.engine.begin() as conn:
        replays = quarantine.take_replays(conn, FLOW, erp.system, ["write", "publish"])
        if replays:  # an operator fixed what the ERP refused: send those golden records again
            _outbox_done(conn, erp.system, [r["record_key"] for r in replays], "pending")
        pending = _pending(conn, erp.system)
    counts = StepCounts(read=len(pending))
    waiting = _registry_check(ctx, pending, counts)
    spec = engine.load_spec(erp.mapping("customer.out"))
    with ctx.engine.begin() as conn:
        pending = [h for h in _pending(conn, erp.system) if h not in waiting]
        gold = _with_primary_contact(conn, _golden(conn, pending))
        stored = _sources_of(conn, pending)   # what each seat holds of these customers
        projected = gold.assign(content_hash=xref.content_hash(gold, spec.hash_fields))
        have = stored[stored["system"] == erp.system][["hub_id", "native_key", "content_hash"]] \
            if not stored.empty else pd.DataFrame(columns=["hub_id", "native_key", "content_hash"])
        have = have.sort_values("native_key").drop_duplicates("hub_id")
        merged = projected.merge(have.rename(columns={"content_hash": "erp_hash", "native_key": "erp_number"}),
                                 on="hub_id", how="left")
        todo = merged[merged["erp_hash"].isna() | (merged["erp_hash"] != merged["content_hash"])].copy()
        todo["op"] = todo["erp_number"].map(lambda v: "edit" if isinstance(v, str) else "add")
        done = sorted(set(pending) - set(todo["hub_id"]))
        _outbox_done(conn, erp.system, done)
        counts.skipped += len(done)
        todo = _link_to_erp_holders(conn, ctx.run_id, todo, counts)
        counts.written = len(todo)
        stage_write(conn, ctx.run_id, "publish", todo)
    return counts


def _with_primary_contact(conn, gold: pd.DataFrame) -> pd.DataFrame:
    """The ERP is shown the customer's primary CRM contact (name and mobile) where it has one: the
    CRM is where sales keep their contacts; a customer without CRM contacts keeps its own."""
    first = contacts.primary(conn, gold["hub_id"].tolist()).set_index("customer_hub_id")
    if first.empty:
        return gold
    has = gold["hub_id"].isin(first.index)
    out = gold.copy()
    out.loc[has, "contact_name"] = out.loc[has, "hub_id"].map(first["contact_name"])
    out.loc[has, "mobile"] = out.loc[has, "hub_id"].map(first["mobile"])
    return out


def _link_to_erp_holders(conn, run_id: str, todo: pd.DataFrame, counts: StepCounts) -> pd.DataFrame:
    """A valid USCC that the ERP already holds is never created a second time.

    Resolve links records that share one; this is the last check before the ERP, against the
    ERP itself (``customers_by_tax_number``): a customer the hub could not take in
    (quarantined, typed into the ERP after this run's read) is edited instead of created, so
    the golden record links to it. When another golden record already holds that ERP
    customer, or two of this run's new golden records share the code, the extra ones are held
    back with a reason (two hub customers for one company: a reviewer merges them, or the code
    in the CRM is wrong).
    """
    adds = todo[(todo["op"] == "add") & todo["uscc"].map(uscc.identifies)]
    if adds.empty:
        return todo
    erp = roles.erp()
    # the lowest of the ERP's numbers holding a code, as the adapter sorts them
    code_of = {code: numbers[0] for code, numbers in
               erp.customers_by_tax_number(adds["uscc"].unique().tolist()).items() if numbers}
    owners = select_in(conn, model.xref, "native_key", list(code_of.values()),
                       where=[model.xref.c.entity == ENTITY, model.xref.c.system == erp.system],
                       columns=["native_key", "hub_id"])
    owner = dict(zip(owners["native_key"], owners["hub_id"]))
    first: dict[str, str] = {}
    held: dict[str, str] = {}
    for i, hub_id, code in zip(adds.index, adds["hub_id"], adds["uscc"]):
        number, claimed = code_of.get(code), first.setdefault(code, hub_id)
        if claimed != hub_id:
            held[hub_id] = (f"统一社会信用代码 {code} 也属于客户 {claimed} (same USCC as hub customer {claimed} in this run): "
                            f"not created twice in {erp.label}; merge the two in the dedup review or correct the code")
        elif number and owner.get(number, hub_id) != hub_id:
            held[hub_id] = (f"{erp.label} 客户 {number} 已使用统一社会信用代码 {code} ({erp.label} customer {number} of hub "
                            f"customer {owner[number]} holds this USCC): not created twice; merge the two in the dedup "
                            "review or correct the code")
        elif number:
            todo.loc[i, ["op", "erp_number"]] = ["edit", number]
    if held:
        log.warning("%d customers not created in %s: their USCC is already there", len(held), erp.label)
        _outbox_done(conn, erp.system, sorted(held), "held", f"USCC already in {erp.label}")
        rows = todo[todo["hub_id"].isin(held)]
        counts.quarantined += quarantine.add(conn, run_id=run_id, flow=FLOW, entity=ENTITY, system=erp.system,
                                             stage="publish",
                                             items=[(h, {"hub_id": h, "name": n, "uscc": c}, [held[h]])
                                                    for h, n, c in zip(rows["hub_id"], rows["name"], rows["uscc"])])
    return todo[~todo["hub_id"].isin(held)]


REGISTRY_FIELDS = {"legal_name": "name", "uscc": "uscc", "registry_status": "registry_status",
                   "legal_representative": "legal_representative", "registered_capital": "registered_capital"}
#: What a company's registry facts also are: its 开票抬头 is its legal name, and since 三证合一 (2015)
#: its USCC is its 纳税人识别号 (canonical field → the registry field it is taken from).
REGISTRY_DERIVED = {"invoice_title": "name", "tax_number": "uscc"}


def _registry_check(ctx: StepContext, pending: list[str], counts: StepCounts) -> set[str]:
    """Enrich pending golden records from the registry; returns the hub ids that must wait."""
    if not pending:
        return set()
    try:
        connector = registry.connector()
    except ConfigurationError as exc:
        log.info("no business registry check: %s", exc)
        return set()
    source, erp = roles.registry().system, roles.erp()   # the registry seat's xref name keys its facts
    with ctx.engine.begin() as conn:
        gold = _golden(conn, pending)[["hub_id", "name", "uscc"]]
    facts, enrich_counts = registry.enrich(ctx.engine, gold, connector)
    log.info("registry: %s", enrich_counts)
    found = facts[facts["lookup"] == "ok"]
    held = found[found["hold_reason"].notna()]
    deferred = facts[facts["lookup"] == "deferred"]
    with ctx.engine.begin() as conn:
        if len(found):
            rows = found.rename(columns=REGISTRY_FIELDS)[["hub_id", *REGISTRY_FIELDS.values()]].assign(
                system=source, native_key=found["hub_id"].to_numpy(), source_updated_at=utcnow(), run_id=ctx.run_id)
            rows = rows.assign(**{field: rows[of] for field, of in REGISTRY_DERIVED.items()})
            for col in SOURCE_COLUMNS:
                if col not in rows.columns:
                    rows[col] = None
            rows["content_hash"] = xref.content_hash(rows, list(REGISTRY_FIELDS.values()))
            upsert(conn, model.customer_source, frame_records(rows[["system", "native_key", "hub_id", *SOURCE_COLUMNS,
                                                                    "source_updated_at", "content_hash", "run_id"]]),
                   keys=["system", "native_key"])
            matching.index(conn, rows)  # a renamed company is found again by its legal name
            golden.rebuild(conn, ctx.run_id, found["hub_id"].tolist(), seats=seats())
        if len(held):
            _outbox_done(conn, erp.system, held["hub_id"].tolist(), "held", "registry status")
            counts.quarantined += quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity=ENTITY, system=source,
                                                 stage="publish", items=[
                (h, {"hub_id": h, "legal_name": n, "registry_status": st}, [reason])
                for h, n, st, reason in zip(held["hub_id"], held["legal_name"], held["registry_status"], held["hold_reason"])])
    counts.skipped += len(deferred)
    if len(deferred):
        log.warning("%d customers wait for a deferred registry lookup: %s", len(deferred),
                    deferred["reason"].dropna().unique()[:3].tolist())
    return set(held["hub_id"]) | set(deferred["hub_id"])


def _outbox_done(conn, target: str, hub_ids: list[str], status: str = "done", error: str | None = None) -> None:
    o = model.outbox.c
    for part in chunks(hub_ids):
        conn.execute(update(model.outbox).where(o.entity == ENTITY, o.target == target, o.hub_id.in_(part)).values(
            status=status, updated_at=utcnow(), last_error=error))


# --- write back ----------------------------------------------------------------------------------

def write_back(ctx: StepContext) -> StepCounts:
    """The ERP first (create, safe to repeat by its idempotency key: U8's biz_id = hub id; or
    edit), then the ERP's number into the CRM."""
    counts = StepCounts()
    with ctx.engine.begin() as conn:
        todo = stage_read(conn, ctx.run_id, "publish")
        if not todo.empty:  # a retried write-back skips what its killed attempt already stored
            todo = todo[todo["hub_id"].isin(_pending(conn, roles.erp().system))]
    counts += _write_erp(ctx, todo)
    counts += _write_crm(ctx)
    _save_outcomes(ctx)
    return counts


def _write_erp(ctx: StepContext, todo: pd.DataFrame) -> StepCounts:
    counts = StepCounts(read=len(todo))
    if todo.empty:
        return counts
    erp = roles.erp()
    ledger = _erp_ledger(ctx, todo)
    if not roles.offers("erp", "customer_change"):
        todo = _link_only(ctx, todo, ledger)
        if todo.empty:
            return counts
    spec = engine.load_spec(erp.mapping("customer.out"))
    mapped = engine.apply(spec, todo.reset_index(drop=True))
    todo = todo.reset_index(drop=True)
    with ctx.engine.begin() as conn:
        bad = mapped.errors
        if len(bad):
            counts.quarantined += quarantine_errors(conn, ctx, FLOW, ENTITY, erp.system, "write", todo, bad, "hub_id")
            _outbox_done(conn, erp.system, todo.loc[bad["_row"].unique(), "hub_id"].tolist(), "failed",
                         f"mapping to {erp.label} failed")
    body = mapped.frame
    ops = todo.loc[body["_row"], ["hub_id", "op", "erp_number"]].reset_index(drop=True)
    records = [erp.customer_document(hub_id, op, number, payload) for payload, (hub_id, op, number)
               in zip(frame_records(body.drop(columns=["_row"])), ops.itertuples(index=False))]
    counts += write_in_chunks(ctx, erp_connector(write=True), erp.customer_stream, records, ledger.persist)
    return counts


def _erp_ledger(ctx: StepContext, todo: pd.DataFrame) -> Ledger:
    """The books of the ERP's customer writes: what the ERP now holds (source record, xref, match
    index: its read-back is no change), the outbox done or failed, each result in ``erp_results``."""
    erp = roles.erp()
    read_back = engine.load_spec(erp.mapping("customer.in")).hash_fields
    by_hub = todo.set_index("hub_id")

    def holds(conn, ok) -> None:
        rows = pd.DataFrame([by_hub.loc[rec["_key"]].to_dict() | {"hub_id": rec["_key"], "native_key": res.native_key}
                             for rec, res in ok])
        _record_target_state(conn, ctx.run_id, erp.system, rows, read_back)

    return Ledger(ctx, ENTITY, erp.system, on_ok=holds, results="erp_results",
                  row=lambda rec, res: {"hub_id": rec["_key"], "erp_result": res.status, "erp_number": res.native_key})


def _link_only(ctx: StepContext, todo: pd.DataFrame, ledger: Ledger) -> pd.DataFrame:
    """An ERP the hub may not change customers in (its card lacks ``customer_change``): a golden
    customer it already holds (linked by its USCC, or created before) is recorded as held there,
    never edited; its number still goes back to the CRM. Returns what is left to create.

    The links go through the ERP's ledger as results ``linked`` (nothing was sent, so they are
    not counted as written)."""
    erp = roles.erp()
    links = todo[todo["op"] == "edit"]
    if links.empty:
        return todo
    with ctx.engine.begin() as conn:
        ledger.persist(conn, [{"_key": h} for h in links["hub_id"]],
                       [WriteResult(h, "linked", native_key=n) for h, n in zip(links["hub_id"], links["erp_number"])])
    log.info("%d customers %s already holds linked, not changed (%s takes no customer changes from the hub)",
             len(links), erp.label, erp.label)
    return todo[todo["op"] != "edit"]


def _record_target_state(conn, run_id: str, system: str, rows: pd.DataFrame, hash_fields) -> None:
    """After a write, remember what the target now holds, so its read-back is no change."""
    now = utcnow()
    frame = rows.copy()
    for col in SOURCE_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    frame["content_hash"] = xref.content_hash(frame, hash_fields)
    frame["source_updated_at"] = now
    frame["system"] = system
    frame["run_id"] = run_id
    upsert(conn, model.customer_source, frame_records(frame[["system", "native_key", "hub_id", *SOURCE_COLUMNS,
                                                             "source_updated_at", "content_hash", "run_id"]]),
           keys=["system", "native_key"])
    xref.save(conn, ENTITY, system, frame.assign(native_version=None))
    matching.index(conn, frame)


def _write_crm(ctx: StepContext) -> StepCounts:
    """CRM accounts get what they lack: their ERP number (and the hub id) where the ERP code field
    is not it yet, and the golden legal and invoicing facts the account mapping names where the
    account holds none (or, where the survivorship group says ``to_crm: overwrite``, where it
    differs): registry facts into empty legal fields, the ERP's 开票档案 into empty invoicing fields.

    Candidates are the golden records the outbox holds for the CRM plus those the ERP took in
    this run; the tenant's field names are ``customer_to_crm_account.yaml``'s.
    """
    crm_key, erp_key = roles.crm().system, roles.erp().system
    crm_spec, out_spec = engine.load_spec(CRM_IN), engine.load_spec(CRM_OUT)
    code_field, hub_field = out_spec.field_for("erp_code"), out_spec.field_for("hub_id")
    fills = {f.source: f.target for f in out_spec.fields if f.source}   # canonical field → CRM field
    policy = survivorship.to_crm(ENTITY)
    s = model.customer_source.c
    with ctx.engine.begin() as conn:
        written = stage_read(conn, ctx.run_id, "erp_results")
        hub_ids = sorted(set(_pending(conn, crm_key)) | set(written.get("hub_id", pd.Series(dtype=object))))
        have = select_in(conn, model.customer_source, "hub_id", hub_ids, where=[s.system == crm_key],
                         columns=["native_key", "hub_id", "erp_code", *fills]).rename(columns={"erp_code": "current_erp_code"})
        numbers = select_in(conn, model.xref, "hub_id", hub_ids, where=[model.xref.c.entity == ENTITY,
                                                                        model.xref.c.system == erp_key],
                            columns=["hub_id", "native_key"]).sort_values("native_key").drop_duplicates("hub_id")
        gold = _golden(conn, hub_ids)[["hub_id", *fills]].set_index("hub_id")
        want = have.merge(numbers.rename(columns={"native_key": "erp_code"}), on="hub_id", how="left")
        code_due = want["erp_code"].notna() & (want["erp_code"] != want["current_erp_code"])
        due = pd.DataFrame(index=want.index)
        for field in fills:
            golden = want["hub_id"].map(gold[field])
            give, held = ~_blank(golden), want[field]
            send = give & (_blank(held) | ((policy.get(field) == "overwrite") & (held.astype(object) != golden)))
            due[field] = golden.where(send, None)
        keep = code_due | due.notna().any(axis=1)
        todo, due = want[keep].reset_index(drop=True), due[keep].reset_index(drop=True)
        _outbox_done(conn, crm_key, sorted(set(hub_ids) - set(todo["hub_id"])))  # nothing to send for these
    counts = StepCounts()
    counts.read, counts.skipped = len(want), len(want) - len(todo)
    if todo.empty:
        return counts
    # the due facts through the account mapping (its rules apply as to any write), nulls left out
    mapped = engine.apply(out_spec, due)
    bodies = dict.fromkeys(range(len(todo)), {}) | {
        row: {k: v for k, v in body.items() if v is not None}
        for row, body in zip(mapped.frame["_row"], frame_records(mapped.frame.drop(columns=["_row"])))}
    code_due = todo["erp_code"].notna() & (todo["erp_code"] != todo["current_erp_code"])
    records = [{**bodies[i], **({code_field: code, hub_field: hub_id} if due_code else {}), "_key": key, "id": key}
               for i, (key, hub_id, code, due_code) in enumerate(zip(todo["native_key"], todo["hub_id"],
                                                                    todo["erp_code"], code_due))]
    # what each account now holds, in canonical fields: the facts sent, and the ERP code where it was
    sent = {fills[f]: f for f in fills}
    changes = {rec["_key"]: {sent[k]: due.at[i, sent[k]] for k in rec if k in sent} |
               ({"erp_code": rec[code_field]} if code_field in rec else {}) for i, rec in enumerate(records)}
    hub_of = dict(zip(todo["native_key"], todo["hub_id"]))

    def holds(conn, ok) -> None:
        _crm_now_holds(conn, {rec["_key"]: changes[rec["_key"]] for rec, _ in ok}, crm_spec.hash_fields)

    # records are keyed by CRM account; the outbox by customer, settled after the last chunk: a
    # customer with two accounts is done once both took the code, and one that failed stays pending
    ledger = Ledger(ctx, ENTITY, crm_key, on_ok=holds, done=False, failed_status=None)
    counts += write_in_chunks(ctx, crm(), out_spec.stream, records, ledger.persist)
    with ctx.engine.begin() as conn:  # only now: a kill before this leaves them pending, and a PATCH may be redone
        _outbox_done(conn, crm_key, sorted(set(hub_of.values()) - {hub_of[k] for k in ledger.failed}))
    return counts


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip())


def _crm_now_holds(conn, changes: dict[str, dict[str, str]], hash_fields) -> None:
    """The CRM accounts now hold these values (ERP code, filled facts): update their source records
    and hashes, so the account read back is no change."""
    s, crm_key = model.customer_source.c, roles.crm().system
    rows = select_in(conn, model.customer_source, "native_key", list(changes), where=[s.system == crm_key])
    now = pd.DataFrame.from_dict(changes, orient="index").reindex(rows["native_key"])
    for field in now.columns:   # a value sent replaces the held one; the rest stay as read
        value = pd.Series(now[field].to_numpy(dtype=object), index=rows.index)
        rows[field] = value.where(value.notna(), rows[field])
    rows["content_hash"] = xref.content_hash(rows, hash_fields)
    upsert(conn, model.customer_source, frame_records(rows), keys=["system", "native_key"])
    xref.save(conn, ENTITY, crm_key, rows.assign(native_version=None))


#: The seven steps, in order, as the DAG schedules them.
STEP_FUNCTIONS = {
    "extract": extract, "map": map_step, "validate": validate, "resolve": resolve_step,
    "load": load, "publish": publish, "write_back": write_back,
}


# --- outcomes ------------------------------------------------------------------------------------

def outcomes(conn, run_id: str) -> pd.DataFrame:
    """Every record this run read, with the one outcome it ended in (for the report); the
    outcomes name the bound ERP by its label ("created in U8")."""
    erp, crm_key = roles.erp(), roles.crm().system
    q = model.quarantine.c
    quarantined = pd.DataFrame(conn.execute(select(q.system, q.record_key, q.stage, q.reasons).where(
        q.last_run_id == run_id, q.entity == ENTITY)).all(), columns=["system", "key", "stage", "reasons"])
    skipped = stage_read(conn, run_id, "skipped", ENTITY)
    resolved = stage_read(conn, run_id, "resolve", ENTITY)
    erp_results = stage_read(conn, run_id, "erp_results")
    erp_xref = xref.by_hub_id(conn, ENTITY, erp.system)
    frames = []
    for src in sources():
        spec, system = src.spec, src.system
        raw = stage_read(conn, run_id, "extract", src.stage)
        keys = raw[spec.key] if spec.key in raw.columns else pd.Series([None] * len(raw))
        df = pd.DataFrame({"system": system, "key": keys.map(lambda k: None if k is None or k != k else str(k))})
        df["outcome"], df["detail"], df["hub_id"] = None, None, None
        bad = quarantined[(quarantined["system"] == system) & quarantined["stage"].isin(["extract", "map", "validate"])]
        hit = df["key"].isin(bad["key"]) | df["key"].isna()
        df.loc[hit, "outcome"] = "quarantined"
        df.loc[hit, "detail"] = df.loc[hit, "key"].map(bad.drop_duplicates("key").set_index("key")["reasons"].map(
            lambda r: "; ".join(r))).fillna("record has no key")
        dup = df["outcome"].isna() & df["key"].duplicated(keep="last")
        df.loc[dup, ["outcome", "detail"]] = ["skipped", "read twice (overlap window)"]
        if not skipped.empty:
            same = df["outcome"].isna() & df["key"].isin(skipped.loc[skipped["system"] == system, "_key"].astype(str))
            df.loc[same, ["outcome", "detail"]] = ["skipped", "unchanged since last run"]
        if not resolved.empty:
            part = resolved[resolved["system"] == system].drop_duplicates("_key").set_index("_key")
            df["hub_id"] = df["key"].map(part["hub_id"])
            df["match_rule"] = df["key"].map(part["match_rule"])
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    res = erp_results.drop_duplicates("hub_id", keep="last").set_index("hub_id")["erp_result"] \
        if not erp_results.empty else pd.Series(dtype=object)
    has_erp = set(erp_xref["hub_id"])
    open_rows = out["outcome"].isna()
    r = out.loc[open_rows, "hub_id"].map(res)
    from_crm = out["system"] == crm_key
    out.loc[open_rows & from_crm & (r == "created"), "outcome"] = f"created in {erp.label}"
    out.loc[open_rows & from_crm & (r == "updated"), "outcome"] = f"updated in {erp.label}"
    out.loc[open_rows & from_crm & (r == "failed"), "outcome"] = "quarantined"
    out.loc[open_rows & from_crm & (r == "failed"), "detail"] = f"{erp.label} refused the write (see quarantine, stage write)"
    still = out["outcome"].isna()
    out.loc[still & from_crm & out["hub_id"].isin(has_erp), "outcome"] = f"linked to existing {erp.label} customer"
    o = model.outbox.c
    held = dict(conn.execute(select(o.hub_id, o.last_error).where(o.entity == ENTITY, o.target == erp.system,
                                                                  o.status == "held")).all())
    reasons = _hold_reasons(conn, list(held))
    is_held = out["outcome"].isna() & from_crm & out["hub_id"].isin(held)
    out.loc[is_held, "outcome"] = f"held back from {erp.label}"
    out.loc[is_held, "detail"] = out.loc[is_held, "hub_id"].map(reasons)
    out.loc[still & ~from_crm & r.reindex(out.index).eq("updated"), "outcome"] = f"updated in {erp.label}"
    out.loc[out["outcome"].isna() & ~from_crm, "outcome"] = "stored in hub"
    out.loc[out["outcome"].isna(), "outcome"] = "waiting"
    return pd.concat([out, contacts.outcomes(conn, run_id)], ignore_index=True)


def _hold_reasons(conn, hub_ids: list[str]) -> dict[str, str]:
    """Why each held customer waits: what the registry or the ERP check said at publish."""
    q = model.quarantine.c
    held_by = [roles.erp().system, *(b.name for b in roles.seats("registry"))]
    rows = select_in(conn, model.quarantine, "record_key", hub_ids, where=[q.system.in_(held_by), q.stage == "publish"],
                     columns=["record_key", "reasons"])
    return {k: "; ".join(r) for k, r in zip(rows["record_key"], rows["reasons"])}


def _save_outcomes(ctx: StepContext) -> None:
    with ctx.engine.begin() as conn:
        stage_write(conn, ctx.run_id, "outcome", outcomes(conn, ctx.run_id))
