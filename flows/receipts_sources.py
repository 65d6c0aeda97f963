"""Where the receipts flow reads from: the ERP (receipts, invoices, customers) through its seat,
the CRM's payment plans, and the bank statement drop folder with its file ledger (each content
loaded once).

Also the flow's settings: the as-of date overdue is judged against, the sources and the names
their records are accounted under.

Under the default bindings the ERP is U8: its 收款单 (Ap_CloseBill) with their lines, its 销售发票
(SaleBillVouch) with their lines, its customers (the payer directory), all by ODBC. The flow
reads every table through the ERP's mapping specs and named lookups, never by name.
"""
from __future__ import annotations

import logging
import os
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pandas as pd
from sqlalchemy import select, update

from flows import roles
from flows.steps import read_stream
from hub import receipts_model as rm
from hub.errors import ConfigurationError
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import select_in, stage_read, stage_write, upsert, utcnow
from mappings import banks, engine
from mappings.engine import Spec

log = logging.getLogger("flows.receipts")

FLOW = "receipts"
CAPABILITY = "receipts"
#: The flow's sources by stage name: (role, suffix of the name its records are accounted and
#: quarantined under, the mapping: a purpose the seat names or a spec). Accounted names are the
#: seat's xref name plus the suffix, so under the default bindings they stay what finance knows
#: (u8, u8_invoice, u8_customer, crm_plan, bank).
SOURCES = {
    "bank": ("bank", "", "bank_line_to_receipt"),
    "erp": ("erp", "", "receipt.in"),
    "erp_invoice": ("erp", "_invoice", "invoice.in"),
    "erp_customer": ("erp", "_customer", "payer.in"),
    "crm_plan": ("crm", "_plan", "crm_payment_plan_to_plan"),
}
#: The stages holding receipts (bank lines and the ERP's own receipts).
RECEIPT_STAGES = ("bank", "erp")
TO_CRM_APPLICATION, TO_CRM_PLAN = "receipt_to_crm_application", "plan_to_crm_payment_plan"
CST = timezone(timedelta(hours=8))


def as_of() -> date:
    """The day overdue is judged against: ``HUB_RECEIPTS_AS_OF`` (YYYY-MM-DD), else today in China."""
    raw = os.environ.get("HUB_RECEIPTS_AS_OF")
    return date.fromisoformat(raw) if raw else datetime.now(CST).date()


def erp() -> Any:
    """The bound ERP (:class:`hub.types.ErpAdapter`); a ConfigurationError naming the bindings file
    and line when the system there does not take part in receipts (its card says so, before any
    adapter is built)."""
    if not roles.offers("erp", CAPABILITY):
        seat = roles.seat("erp")
        raise ConfigurationError(f"{seat.where}: receipts need an ERP seat that supports them; {seat.label} "
                                 f"({seat.system}) does not: its receivables come with the finance issue. "
                                 "Bind an ERP that supports receipts, or leave the receipts DAG off")
    return roles.erp()


def system_of(stage: str) -> str:
    """The name the records of source ``stage`` are accounted and quarantined under."""
    role, suffix, _ = SOURCES[stage]
    return "bank" if role == "bank" else roles.seat(role).name + suffix


def spec(stage: str) -> Spec:
    """The mapping spec of source ``stage`` (the ERP's by its purpose)."""
    role, _, name = SOURCES[stage]
    return engine.load_spec(erp().mapping(name) if role == "erp" else name)


def lines_of(head: Spec) -> tuple[str, dict[str, str]]:
    """(the lines' column naming their header, {header column the flow adds: line column summed})."""
    return head.doc("lines_key"), dict(head.doc("sums") or {})


def line_columns(head: Spec) -> list[str]:
    """The line columns the flow reads: the one naming the header, and those it sums."""
    key, sums = lines_of(head)
    return [key, *dict.fromkeys(sums.values())]


def _read_columns(head: Spec) -> list[str]:
    """The header columns to read: the spec's, less those the flow sums from the lines."""
    _, sums = lines_of(head)
    return [c for c in head.source_fields if c not in sums]


def erp_connector(specs: dict[str, Spec]) -> Any:
    """The ERP's connector reading the flow's streams (and the invoice lines' own stream)."""
    columns = {s.stream: _read_columns(s) for s in specs.values()}
    inv = specs["erp_invoice"]
    columns[inv.doc("lines_stream")] = line_columns(inv)
    return erp().connector(columns=columns)


def crm() -> Any:
    plan = spec("crm_plan")
    app = engine.load_spec(TO_CRM_APPLICATION)
    return roles.crm().connector(streams={plan.stream: plan.source_fields}, natural_keys={app.stream: app.natural_key})


def bank() -> Any:
    return roles.bank().connector(layouts=banks.layouts())


# --- the ERP -------------------------------------------------------------------------------------

def _lines(head: Spec, lookup, keys: list[Any]) -> pd.DataFrame:
    """The lines of headers ``keys`` by one of the ERP's named lookups (none asked for none)."""
    columns = line_columns(head)
    return pd.DataFrame(lookup(keys, columns) if keys else [], columns=columns)


def extract_erp(ctx: StepContext) -> StepCounts:
    """The ERP's receipts since the watermark with their lines; invoices whose header or lines
    changed with all their lines; the customer directory."""
    adapter = erp()
    specs = {s: spec(s) for s in ("erp", "erp_invoice", "erp_customer")}
    rec, inv, cust = specs["erp"], specs["erp_invoice"], specs["erp_customer"]
    connector = erp_connector(specs)
    counts = StepCounts()
    for stream, entity, stage, source in ((rec.stream, "receipt", "erp", "erp"),
                                          (inv.stream, "open_item", "erp_invoice", "erp_invoice"),
                                          (inv.doc("lines_stream"), "open_item", "erp_invoice_lines_changed", "erp_invoice"),
                                          (cust.stream, "payer", "erp_customer", "erp_customer")):
        counts += read_stream(ctx, connector, adapter.system, stream, entity, stage_as=stage,
                              accounted_as=system_of(source))
    with ctx.engine.begin() as conn:
        heads = stage_read(conn, ctx.run_id, "extract", "erp")
        invoices = stage_read(conn, ctx.run_id, "extract", "erp_invoice")
        changed = stage_read(conn, ctx.run_id, "extract", "erp_invoice_lines_changed")
    receipt_ids = heads[rec.key].tolist() if rec.key in heads else []
    lines = _lines(rec, adapter.receipt_lines, receipt_ids)
    inv_key, _ = lines_of(inv)
    known = set(invoices[inv.key]) if inv.key in invoices else set()
    more = sorted(set(changed[inv_key]) - known) if inv_key in changed else []
    if more:  # lines changed (核销 raised what is settled) under an unchanged header: fetch the header too
        extra = pd.DataFrame(adapter.invoices(more, _read_columns(inv)))
        invoices = pd.concat([invoices, extra], ignore_index=True)
        counts.read += len(extra)
    invoice_ids = invoices[inv.key].tolist() if inv.key in invoices else []
    inv_lines = _lines(inv, adapter.invoice_lines, invoice_ids)
    with ctx.engine.begin() as conn:
        stage_write(conn, ctx.run_id, "extract", invoices, "erp_invoice")
        stage_write(conn, ctx.run_id, "extract_lines", lines, "erp")
        stage_write(conn, ctx.run_id, "extract_lines", inv_lines, "erp_invoice")
    # the changed-lines stream is only a pointer to invoices: its rows are not records of their own
    counts.read -= len(changed)
    return counts


def extract_crm(ctx: StepContext) -> StepCounts:
    return read_stream(ctx, crm(), roles.crm().system, spec("crm_plan").stream, "payment_plan", stage_as="crm_plan",
                       accounted_as=system_of("crm_plan"))


# --- bank files ----------------------------------------------------------------------------------

def extract_bank(ctx: StepContext) -> StepCounts:
    """New statement files (by content hash) parsed into lines; a file whose content was loaded
    before is archived unread, whatever its name."""
    connector = bank()
    files = connector.files()
    with ctx.engine.begin() as conn:
        ledger = select_in(conn, rm.bank_file, "sha256", [f.sha256 for f in files])
    loaded = dict(zip(ledger["sha256"], ledger["status"])) if len(ledger) else {}
    first_run = dict(zip(ledger["sha256"], ledger["loaded_run_id"])) if len(ledger) else {}
    lines: list[dict[str, Any]] = []
    report, ledger_rows, bad = [], [], []
    for name, why in connector.refused():  # e.g. a symbolic link out of the drop folder
        bad.append((name, {"file": name}, [why]))
        report.append({"system": "bank_file", "key": name, "outcome": "quarantined", "detail": why})
    seen: set[str] = set()
    for f in files:
        if loaded.get(f.sha256) == "loaded" or f.sha256 in seen:
            where = connector.archive(f.name, f.sha256)
            report.append({"system": "bank_file", "key": f.name, "outcome": "skipped",
                           "detail": f"same content as a file already processed (sha256 {f.sha256[:12]}…, "
                                     f"run {first_run.get(f.sha256) or ctx.run_id}); moved to {where}"})
            continue
        seen.add(f.sha256)
        try:
            layout, parsed = connector.parse(f)
        except Exception as exc:  # noqa: BLE001 - a file no layout fits is quarantined, the rest go on
            bad.append((f.name, {"file": f.name, "sha256": f.sha256}, [f"{type(exc).__name__}: {exc}"]))
            report.append({"system": "bank_file", "key": f.name, "outcome": "quarantined", "detail": str(exc)})
            continue
        lines.extend(parsed)
        ledger_rows.append({"sha256": f.sha256, "file_name": f.name, "layout": layout, "lines": len(parsed),
                            "status": "staged", "first_run_id": ctx.run_id, "first_seen_at": utcnow()})
        report.append({"system": "bank_file", "key": f.name, "outcome": "loaded",
                       "detail": f"{layout}, {len(parsed)} lines"})
    with ctx.engine.begin() as conn:
        if ledger_rows:  # a file staged by a run that died before load is staged again by this one
            upsert(conn, rm.bank_file, ledger_rows, keys=["sha256"],
                   update=["file_name", "layout", "lines", "first_run_id"])
        if bad:
            from hub import quarantine

            quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity="receipt", system="bank", stage="extract",
                           items=bad)
        stage_write(conn, ctx.run_id, "extract", pd.DataFrame.from_records(lines), "bank")
        stage_write(conn, ctx.run_id, "bank_files", pd.DataFrame(report))
    return StepCounts(read=len(lines), quarantined=len(bad))


def loaded_files(conn, run_id: str) -> pd.DataFrame:
    """The files this run staged (the load step marks them loaded and archives them)."""
    f = rm.bank_file.c
    return pd.DataFrame(conn.execute(select(f.sha256, f.file_name).where(f.status == "staged",
                                                                          f.first_run_id == run_id)).all(),
                        columns=["sha256", "file_name"])


def mark_loaded(conn, run_id: str, shas: list[str]) -> None:
    if shas:
        conn.execute(update(rm.bank_file).where(rm.bank_file.c.sha256.in_(shas)).values(
            status="loaded", loaded_run_id=run_id, loaded_at=utcnow()))


def archive_loaded(run_id: str, files: pd.DataFrame, eng) -> None:
    """Move this run's loaded files to processed/ (after their receipts are committed)."""
    if files.empty:
        return
    connector = bank()
    with eng.begin() as conn:
        for sha, name in zip(files["sha256"], files["file_name"]):
            where = connector.archive(name, sha, run_id)
            conn.execute(update(rm.bank_file).where(rm.bank_file.c.sha256 == sha).values(
                archived_to=str(where) if where else None))
