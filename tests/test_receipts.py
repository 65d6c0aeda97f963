"""The receipts flow end to end against the sandbox: real bank statement files in a drop folder,
U8 over real ODBC and its OpenAPI, 销售易 over real HTTP; checked against the seed's truth.

One seeded world per module (the flow's first run is the expensive part); the tests that
change it (files dropped again, finance decisions, a re-run DAG) come last.
"""
from __future__ import annotations

import importlib.util
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from demo import receipts as demo_receipts
from hub import model, receipts_model as rm, runner, store
from tests.conftest import isolate_hub, start_sandbox
from tests.flowkit import query, run_flow, step

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("receipts")
    mp = pytest.MonkeyPatch()
    isolate_hub(tmp, mp)
    sb = start_sandbox(tmp / "sandbox", 150, mp)
    try:
        rep = run_flow("receipts", "receipts-1")
        yield SimpleNamespace(sb=sb, folder=tmp / "sandbox", var=tmp / "var", rep1=rep)
    finally:
        sb.stop()
        mp.undo()
        store.engine_for.cache_clear()


def _count(table) -> int:
    with store.engine().begin() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def _targets(sb) -> dict[str, int]:
    """What the hub has written into the systems: U8 收款单 by the API, CRM 回款 records."""
    return {"u8_accept": query(sb.u8_db, "select count(*) from Ap_CloseBill where cSrcFlag = 'OpenAPI'")[0][0],
            "crm_applications": query(sb.crm_db, "select count(*) from paymentApplication")[0][0],
            "allocations": _count(rm.allocation)}


def test_seeded_receipts_are_matched_as_the_truth_says(world):
    q = demo_receipts.against_truth(world.folder)
    assert not q["missing"]
    assert q["wrong"] == []                                   # zero wrong automatic matches
    assert q["auto_rate"] >= 0.97, q["unexpected_exceptions"]
    assert q["exceptions"] and not q["exceptions_without_reason"]
    assert set(q["exceptions"]) == {"unknown_payer"}          # the seeded unknown payers, nothing else
    for system, tally in world.rep1["systems"].items():
        assert tally["adds_up"], system
    bank = world.rep1["systems"]["bank"]["outcomes"]
    assert any(o.startswith("posted: document number in the memo") for o in bank)
    assert any(o.startswith("waiting for finance: unknown_payer") for o in bank)
    assert bank.get("quarantined") == 1                       # the hand-edited line with three decimals
    with store.engine().begin() as conn:
        q = model.quarantine.c
        why = conn.execute(select(q.reasons, q.payload).where(q.flow == "receipts", q.stage == "map")).all()
    assert len(why) == 1 and "more than two decimals" in why[0].reasons[0] and why[0].payload["serial"] == "CMB-BAD-0001"


def test_money_is_exact_to_the_fen_in_the_hub_and_in_u8(world):
    with store.engine().begin() as conn:
        r, a = rm.receipt.c, rm.allocation.c
        posted = dict(conn.execute(select(r.hub_id, r.amount_fen).where(r.status == "posted", r.source == "bank")).all())
        sums = dict(conn.execute(select(a.receipt_hub_id, func.sum(a.amount_fen)).group_by(a.receipt_hub_id)).all())
        x = model.xref.c
        code_of = dict(conn.execute(select(x.hub_id, x.native_key).where(x.entity == "receipt", x.system == "u8")).all())
    assert all(sums[h] == amount for h, amount in posted.items())           # every fen of a receipt is placed
    u8 = {code: Decimal(str(amount)) for code, amount in query(
        world.sb.u8_db, "select cVouchID, iAmount from Ap_CloseBill where cSrcFlag = 'OpenAPI'")}
    assert len(u8) == len(posted)
    assert all(u8[code_of[h]] == Decimal(amount).scaleb(-2) for h, amount in posted.items())
    truth = {i["doc_no"]: i["amount"] for i in __import__("json").loads(
        (world.folder / "receipts_truth.json").read_text(encoding="utf-8"))["invoices"]}
    totals = query(world.sb.u8_db, "select v.cSBVCode, sum(s.iSum), sum(s.iMoneySum) from SaleBillVouch v "
                                   "join SaleBillVouchs s on s.SBVID = v.SBVID group by v.cSBVCode")
    for doc, total, settled in totals:
        assert round(Decimal(str(total)) * 100) == truth[doc]
        assert Decimal(str(settled)) <= Decimal(str(total))                  # never written off beyond the invoice


def test_each_u8_receipt_carries_its_entry_lines_and_the_documented_header(world):
    """The 收款单 body as documented (protocol notes U2): 应收款 lines (type 0) for what the
    invoices take, 预收款 (type 1) for the rest, booked as sent; period, 人民币 at 1, operator, AR."""
    from collections import Counter
    import json

    with store.engine().begin() as conn:
        a, x = rm.allocation.c, model.xref.c
        pieces = conn.execute(select(a.receipt_hub_id, a.kind, a.amount_fen)).all()
        code_of = dict(conn.execute(select(x.hub_id, x.native_key).where(x.entity == "receipt", x.system == "u8")).all())
    sent: dict[str, Counter] = {}
    for hub_id, kind, fen in pieces:
        if hub_id in code_of:
            sent.setdefault(code_of[hub_id], Counter())[0 if kind == "invoice" else 1] += fen
    booked: dict[str, Counter] = {}
    for code, itype, amount in query(world.sb.u8_db, "select h.cVouchID, s.iType, s.iAmt from Ap_CloseBills s join "
                                                     "Ap_CloseBill h on h.iID = s.iID where h.cSrcFlag = 'OpenAPI'"):
        booked.setdefault(code, Counter())[itype] += int(Decimal(str(amount)) * 100)
    assert booked and booked == {code: +lines for code, lines in sent.items()}
    assert any(lines[0] and lines[1] for lines in booked.values())          # both kinds of line occur
    open_receivable = query(world.sb.u8_db, "select coalesce(sum(s.iRAmt_s), 0) from Ap_CloseBills s join Ap_CloseBill h "
                                            "on h.iID = s.iID where h.cSrcFlag = 'OpenAPI' and s.iType = 0")[0][0]
    assert open_receivable == 0                                              # the write-off link took every 应收款 line
    operator = json.loads((world.folder / "credentials.json").read_text(encoding="utf-8"))["u8"]["operator"]["user_id"]
    for (raw,) in query(world.sb.u8_db, "select body from sandbox_accept"):
        head = json.loads(raw)
        assert (head["flag"], head["foreigncurrency"], head["currencyrate"], head["operator"]) == ("AR", "人民币", "1", operator)
        assert head["period"] == head["vouchdate"][5:7] and isinstance(head["entry"], list) and head["entry"]


def test_the_crm_sees_receipts_linked_to_plans_and_overdue_instalments(world):
    q = demo_receipts.against_truth(world.folder)
    assert q["plans"] == []                                    # received and overdue as the truth says
    apps = query(world.sb.crm_db, "select a.accountId, a.paymentPlanId, p.accountId, a.amount, a.hubId__c "
                                  "from paymentApplication a left join paymentPlan p on p.id = a.paymentPlanId")
    assert apps and all(hub for *_, hub in apps)
    assert all(plan_acc is None or acc == plan_acc for acc, _, plan_acc, _, _ in apps)
    overdue = query(world.sb.crm_db, "select count(*) from paymentPlan where overdue__c = 1 and planDate < ?",
                    int(datetime(2025, 6, 30, tzinfo=timezone(timedelta(hours=8))).timestamp() * 1000))[0][0]
    assert overdue > 0


def test_finance_gets_a_workbook_with_every_sheet(world):
    path = world.var / "reports" / "receipts__receipts-1.xlsx"
    wb = load_workbook(path, read_only=True)
    names = [ws.title for ws in wb.worksheets]
    assert [n.split()[1] for n in names] == ["summary", "matched", "partial", "exceptions", "customers", "overdue"]
    exceptions = list(wb["待处理 exceptions"].iter_rows(min_row=2, values_only=True))
    with store.engine().begin() as conn:
        open_ = conn.execute(select(func.count()).select_from(rm.recon_exception).where(
            rm.recon_exception.c.status == "open")).scalar()
    assert len(exceptions) == open_ and all(row[8] for row in exceptions)       # each with its reason
    matched = list(wb["已匹配 matched"].iter_rows(min_row=2, values_only=True))
    assert len(matched) == _count(rm.allocation) and all(row[11] and row[12] for row in matched)


def test_a_second_run_posts_nothing_twice(world):
    before = _targets(world.sb)
    rep = run_flow("receipts", "receipts-2")
    assert _targets(world.sb) == before
    assert step(rep, "write_back")["written"] == 0 and step(rep, "publish")["written"] == 0
    assert all(t["adds_up"] for t in rep["systems"].values())
    echoes = rep["systems"]["u8"]["outcomes"]                  # the 收款单 the hub wrote come back as echoes
    assert set(echoes) == {"skipped"}


def test_a_write_back_killed_before_its_bookkeeping_posts_nothing_twice(world):
    before = _targets(world.sb)
    with store.engine().begin() as conn:                       # as if the run died after the writes
        conn.execute(update(model.outbox).where(model.outbox.c.entity == "receipt").values(status="pending"))
    from flows import receipts

    runner.run_step("receipts", "write_back", "receipts-2", receipts.STEP_FUNCTIONS["write_back"])
    assert _targets(world.sb) == before                        # U8 biz_id and the CRM natural key held
    with store.engine().begin() as conn:
        left = conn.execute(select(func.count()).select_from(model.outbox).where(
            model.outbox.c.entity == "receipt", model.outbox.c.status == "pending")).scalar()
    assert left == 0


def test_a_day_of_files_dropped_again_is_processed_once(world):
    before = _targets(world.sb)
    processed = sorted((world.folder / "bank_inbox" / "processed").iterdir())
    inbox = world.folder / "bank_inbox"
    shutil.copy(processed[0], inbox / processed[0].name.split("_", 1)[1])        # the same file again
    shutil.copy(processed[0], inbox / "copy of the same statement.xlsx")           # and once more, renamed
    csv_file = next(p for p in processed if p.suffix == ".csv")
    raw = csv_file.read_bytes()
    (inbox / "re-exported.csv").write_bytes(raw.replace(b"\n", b"\r\n", 1) if b"\r\n" not in raw[:200] else raw + b"\r\n")
    rep = run_flow("receipts", "receipts-3")
    files = rep["systems"]["bank_file"]["outcomes"]
    assert files.get("skipped") == 2 and files.get("loaded") == 1
    lines = rep["systems"]["bank"]["outcomes"]                      # its lines are known: nothing posted twice
    assert set(lines) <= {"skipped", "quarantined"} and lines.get("quarantined", 0) <= 1
    assert _targets(world.sb) == before
    assert not [p for p in inbox.iterdir() if p.is_file()]          # every file archived


def test_finance_decisions_stick_across_runs(world):
    from quality.reconcile import queue

    with store.engine().begin() as conn:
        waiting = queue.rows(conn)
        item = conn.execute(select(rm.open_item.c.doc_no, rm.open_item.c.customer_code)
                            .where(rm.open_item.c.kind == "invoice").order_by(rm.open_item.c.doc_no)).first()
    assert len(waiting) >= 2
    first, second = waiting.iloc[0], waiting.iloc[1]
    with store.engine().begin() as conn:
        queue.decide(conn, first["receipt_no"], "reassign", "finance:zhang", "客户来电确认", item.customer_code,
                     [item.doc_no])
        queue.decide(conn, second["receipt_hub_id"][:10], "reject", "finance:li", "不是我们的客户")
    run_flow("receipts", "receipts-4")
    again = run_flow("receipts", "receipts-5")
    with store.engine().begin() as conn:
        state = dict(conn.execute(select(rm.receipt.c.hub_id, rm.receipt.c.rule).where(
            rm.receipt.c.hub_id.in_([first["receipt_hub_id"], second["receipt_hub_id"]]))).all())
        queued = dict(conn.execute(select(rm.recon_exception.c.receipt_hub_id, rm.recon_exception.c.reason_code)
                                   .where(rm.recon_exception.c.status == "open")).all())
        pieces = conn.execute(select(func.count()).select_from(rm.allocation).where(
            rm.allocation.c.receipt_hub_id == first["receipt_hub_id"])).scalar()
    assert state[first["receipt_hub_id"]] == "finance" and first["receipt_hub_id"] not in queued
    assert queued[second["receipt_hub_id"]] == "rejected_by_finance"
    assert pieces >= 1 and step(again, "publish")["written"] == 0        # posted once, and it stays so


def test_the_dag_runs_through_airflow_and_posts_nothing_twice(world):
    before = _targets(world.sb)
    spec = importlib.util.spec_from_file_location("receipts_dag", ROOT / "dags" / "receipts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    assert [t.task_id for t in dag.tasks] == list(runner.STEPS)
    run = dag.test(logical_date=datetime.now(timezone.utc))
    assert str(run.state) == "success"
    assert _targets(world.sb) == before
    with sqlite3.connect(world.sb.u8_db) as u8:
        dup = u8.execute("select count(*) from (select cDwCode, iAmount, dVouchDate, count(*) n from Ap_CloseBill "
                         "where cSrcFlag = 'OpenAPI' group by 1, 2, 3 having n > 1)").fetchone()[0]
    assert dup == 0
