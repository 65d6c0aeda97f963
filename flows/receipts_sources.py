"""Where the receipts flow reads from: U8 (收款单, invoices, customers) by ODBC, 销售易 payment
plans, and the bank statement drop folder with its file ledger (each content loaded once).

Also the flow's settings: the as-of date overdue is judged against, and the connections.
"""
from __future__ import annotations

import logging
import os
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pandas as pd
from sqlalchemy import select, update

from connectors.bank_files import BankFilesConnector
from connectors.u8 import U8Connector
from connectors.xiaoshouyi import XiaoshouyiConnector
from flows.steps import read_stream
from hub import connections, receipts_model as rm
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import select_in, stage_read, stage_write, upsert, utcnow
from mappings import banks, engine

log = logging.getLogger("flows.receipts")

FLOW = "receipts"
CRM_CONN, U8_ODBC_CONN, U8_API_CONN, BANK_CONN = "crm_xiaoshouyi", "u8_odbc", "u8_openapi", "bank_drop"
SPECS = {"bank": "bank_line_to_receipt", "u8": "u8_receipt_to_receipt", "u8_invoice": "u8_invoice_to_item",
         "crm_plan": "crm_payment_plan_to_plan", "u8_customer": "u8_customer_to_payer"}
TO_U8, TO_CRM_APPLICATION, TO_CRM_PLAN = "receipt_to_u8_accept", "receipt_to_crm_application", "plan_to_crm_payment_plan"
RECEIPT_LINES = ["iID", "iType", "iAmt", "iRAmt_s"]
INVOICE_LINES = ["SBVID", "iSum", "iMoneySum"]
CST = timezone(timedelta(hours=8))


def as_of() -> date:
    """The day overdue is judged against: ``HUB_RECEIPTS_AS_OF`` (YYYY-MM-DD), else today in China."""
    raw = os.environ.get("HUB_RECEIPTS_AS_OF")
    return date.fromisoformat(raw) if raw else datetime.now(CST).date()


def u8(write: bool = False) -> U8Connector:
    columns = {engine.load_spec(SPECS[s]).stream: engine.load_spec(SPECS[s]).source_fields
               for s in ("u8", "u8_invoice", "u8_customer")}
    columns["ArReceipt"] = [c for c in columns["ArReceipt"] if c != "open_amount"]
    columns["SaleBillVouch"] = [c for c in columns["SaleBillVouch"] if c not in ("total", "settled")]
    columns.update({"Ap_CloseBills": RECEIPT_LINES, "SaleBillVouchs": INVOICE_LINES})
    return U8Connector(connections.get(U8_ODBC_CONN), connections.get(U8_API_CONN) if write else None, columns=columns)


def crm() -> XiaoshouyiConnector:
    plan = engine.load_spec(SPECS["crm_plan"])
    app = engine.load_spec(TO_CRM_APPLICATION)
    return XiaoshouyiConnector(connections.get(CRM_CONN), streams={plan.stream: plan.source_fields},
                               natural_keys={app.stream: "hubId__c"})


def bank() -> BankFilesConnector:
    return BankFilesConnector(connections.get(BANK_CONN), layouts=banks.layouts())


# --- U8 ------------------------------------------------------------------------------------------

def extract_u8(ctx: StepContext) -> StepCounts:
    """收款单 headers since the watermark with their lines; invoices whose header or lines
    changed with all their lines; the customer directory."""
    connector = u8()
    counts = read_stream(ctx, connector, "u8", "ArReceipt", "receipt")
    counts += read_stream(ctx, connector, "u8", "SaleBillVouch", "open_item", stage_as="u8_invoice")
    counts += read_stream(ctx, connector, "u8", "SaleBillVouchs", "open_item", stage_as="u8_invoice_lines_changed",
                          accounted_as="u8_invoice")
    counts += read_stream(ctx, connector, "u8", "Customer", "payer", stage_as="u8_customer")
    with ctx.engine.begin() as conn:
        heads = stage_read(conn, ctx.run_id, "extract", "u8")
        invoices = stage_read(conn, ctx.run_id, "extract", "u8_invoice")
        changed = stage_read(conn, ctx.run_id, "extract", "u8_invoice_lines_changed")
    receipt_ids = heads["iID"].tolist() if "iID" in heads else []
    lines = pd.DataFrame(connector.lookup("Ap_CloseBills", "iID", receipt_ids), columns=["ID", *RECEIPT_LINES])
    known = set(invoices["SBVID"]) if "SBVID" in invoices else set()
    more = sorted(set(changed["SBVID"]) - known) if "SBVID" in changed else []
    if more:  # lines changed (核销 raised iMoneySum) under an unchanged header: fetch the header too
        extra = pd.DataFrame(connector.lookup("SaleBillVouch", "SBVID", more))
        invoices = pd.concat([invoices, extra], ignore_index=True)
        counts.read += len(extra)
    sbvids = invoices["SBVID"].tolist() if "SBVID" in invoices else []
    inv_lines = pd.DataFrame(connector.lookup("SaleBillVouchs", "SBVID", sbvids), columns=["AutoID", *INVOICE_LINES])
    with ctx.engine.begin() as conn:
        stage_write(conn, ctx.run_id, "extract", invoices, "u8_invoice")
        stage_write(conn, ctx.run_id, "extract_lines", lines, "u8")
        stage_write(conn, ctx.run_id, "extract_lines", inv_lines, "u8_invoice")
    # the changed-lines stream is only a pointer to invoices: its rows are not records of their own
    counts.read -= len(changed)
    return counts


def extract_crm(ctx: StepContext) -> StepCounts:
    return read_stream(ctx, crm(), "crm", engine.load_spec(SPECS["crm_plan"]).stream, "payment_plan",
                       stage_as="crm_plan")


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
