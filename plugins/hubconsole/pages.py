"""The console's HTML pages: flows, run detail, quarantine, record trace, the dedup review
queue, OA approvals, and the finance exception queue."""
from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from hub import approval_queue, audit, health, model, quarantine, report, review_queue, runs, store, trace
from hub.store import MAX_ROW_ID
from quality.reconcile import queue as recon_queue  # the queue finance's CLI works too

from . import actions
from .auth import Operator, operator
from .params import EntryId
from .render import page

router = APIRouter()
Op = Annotated[Operator, Depends(operator)]
PAGE_SIZE = 100


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, op: Op) -> HTMLResponse:
    """Every flow: last run, status, duration, per-step counts, trend, staleness."""
    with store.engine().begin() as conn:
        flows = [{"health": h, "runs": runs.recent(conn, h.flow, 20)} for h in health.all_flows(conn)]
        a = model.alert_log.c
        alerts = [dict(r._mapping) for r in conn.execute(select(model.alert_log).order_by(a.sent_at.desc()).limit(10))]
    return page(request, "overview.html", op=op, flows=flows, alerts=alerts, counts=runs.COUNTS)


@router.get("/run", response_class=HTMLResponse)
def run_detail(request: Request, op: Op, id: str) -> HTMLResponse:  # noqa: A002 - the query parameter's name
    """One run: steps, timings, counts, failure class and error, task logs, record outcomes."""
    with store.engine().begin() as conn:
        run = runs.one(conn, id)
        if run is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {id!r}")
        _, in_quarantine = quarantine.find(conn, run_id=id, status=None, limit=1)
    rep = report.build(id)
    return page(request, "run.html", op=op, run=run, report=rep, counts=runs.COUNTS, in_quarantine=in_quarantine)


def _filters(request: Request) -> dict[str, str]:
    keys = ("flow", "entity", "system", "stage", "status", "q", "run")
    out = {k: request.query_params.get(k, "").strip() for k in keys}
    if "status" not in request.query_params:
        out["status"] = quarantine.OPEN
    return out


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine_list(request: Request, op: Op,
                    page_no: Annotated[int, Query(le=MAX_ROW_ID // PAGE_SIZE)] = 1) -> HTMLResponse:
    """Quarantined records, filtered; select some to replay or ignore."""
    f = _filters(request)
    page_no = max(1, page_no)
    with store.engine().begin() as conn:
        rows, total = quarantine.find(conn, flow=f["flow"] or None, entity=f["entity"] or None,
                                      system=f["system"] or None, stage=f["stage"] or None,
                                      status=None if f["status"] in ("", "all") else f["status"],
                                      text=f["q"] or None, run_id=f["run"] or None,
                                      limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
        facets = quarantine.facets(conn)
    query = urlencode({k: v for k, v in f.items() if v})
    return page(request, "quarantine.html", op=op, rows=rows, total=total, f=f, facets=facets,
                statuses=quarantine.STATUSES, page_no=page_no, page_size=PAGE_SIZE, query=query,
                may_edit=op.may_edit(), done=request.query_params.get("done"))


@router.get("/quarantine/{qid}", response_class=HTMLResponse)
def quarantine_item(request: Request, op: Op, qid: EntryId) -> HTMLResponse:
    """One entry: its payload, reasons, status and who did what to it."""
    with store.engine().begin() as conn:
        row = conn.execute(select(model.quarantine).where(model.quarantine.c.id == qid)).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantine entry {qid}")
        item = dict(row._mapping)
        history = audit.history(conn, qid)
    return page(request, "quarantine_item.html", op=op, item=item, history=history,
                may_edit=op.may_edit(item["flow"]), done=request.query_params.get("done"))


def _back(request: Request, raw: str | None) -> str:
    """Where to return after an action: a page of this console only (no open redirect)."""
    base = request.scope.get("root_path", "").rstrip("/")
    if raw and raw.startswith(base + "/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return f"{base}/quarantine"


@router.post("/quarantine/action")
async def quarantine_action(request: Request, op: Op) -> RedirectResponse:
    """Replay or ignore the selected entries (form post from the quarantine pages)."""
    form = await request.form()
    try:
        ids = [int(v) for v in form.getlist("ids")]
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "ids must be numbers") from None
    result = actions.apply(op, str(form.get("action", "")), ids, str(form.get("comment", "") or ""))
    back = _back(request, str(form.get("back", "") or ""))
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}{urlencode({'done': result.message})}", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/trace", response_class=HTMLResponse)
def trace_page(request: Request, op: Op, q: str = "", hub_id: str = "") -> HTMLResponse:
    """Any key to the canonical record, its ids everywhere, its versions and its runs."""
    with store.engine().begin() as conn:
        hits = trace.search(conn, q) if q and not hub_id else []
        target = hub_id or (hits[0]["hub_id"] if len(hits) == 1 else "")
        found = trace.trace(conn, target) if target else None
        held = trace.quarantined(conn, q) if q else []
    return page(request, "trace.html", op=op, q=q, hits=hits, t=found, held=held)


@router.get("/dedup", response_class=HTMLResponse)
def dedup_queue(request: Request, op: Op) -> HTMLResponse:
    """Possible duplicates waiting for a person's verdict, side by side with the evidence."""
    with store.engine().begin() as conn:
        rows = review_queue.waiting(conn, "customer", PAGE_SIZE)
        requested = len(review_queue.requested(conn, "customer"))
    return page(request, "dedup.html", op=op, rows=rows, requested=requested, may_edit=op.may_edit("customer_master"),
                done=request.query_params.get("done"))


@router.post("/dedup/action")
async def dedup_action(request: Request, op: Op) -> RedirectResponse:
    """Record a verdict (merge / distinct) for the next customer_master run to apply."""
    form = await request.form()
    op.require_edit(["customer_master"])
    try:
        decision = int(str(form.get("id", "")))
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "id must be a number") from None
    verdict = str(form.get("verdict", ""))
    if verdict not in ("merge", "distinct"):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "verdict must be merge or distinct")
    with store.engine().begin() as conn:
        if not review_queue.request(conn, decision, verdict, op.name, str(form.get("comment", "") or "") or None):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dedup decision {decision}")
    base = request.scope.get("root_path", "").rstrip("/")
    msg = urlencode({"done": f"verdict '{verdict}' on #{decision} recorded; the next customer_master run applies it"})
    return RedirectResponse(f"{base}/dedup?{msg}", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, op: Op,
                   stuck_days: Annotated[float, Query(ge=0, le=3650)] = approval_queue.STUCK_DAYS) -> HTMLResponse:
    """OA approvals: waiting by age, stuck over N days, decided, superseded."""
    with store.engine().begin() as conn:
        found = approval_queue.overview(conn, stuck_days)
    return page(request, "approvals.html", op=op, a=found)


@router.get("/finance", response_class=HTMLResponse)
def finance_queue(request: Request, op: Op, reason: str = "", status_: Annotated[str, Query(alias="status")] = "open"
                  ) -> HTMLResponse:
    """Receipts the reconciliation did not post: reason, proposal, candidates; finance decides."""
    with store.engine().begin() as conn:
        rows = recon_queue.rows(conn, status=status_ or "open", reason=reason or None, limit=PAGE_SIZE)
    return page(request, "finance.html", op=op, rows=store.frame_records(rows), reason=reason, status=status_,
                may_edit=op.may_edit("receipts"), done=request.query_params.get("done"),
                error=request.query_params.get("error"))


@router.post("/finance/action")
async def finance_action(request: Request, op: Op) -> RedirectResponse:
    """Finance's decision on one receipt (accept / reject / reassign); the next receipts run applies it."""
    form = await request.form()
    op.require_edit(["receipts"])
    get = lambda k: str(form.get(k, "") or "").strip()  # noqa: E731 - a form field, trimmed
    items = [x for x in get("items").replace(",", " ").split() if x]
    base = request.scope.get("root_path", "").rstrip("/")
    try:
        with store.engine().begin() as conn:
            done = recon_queue.decide(conn, get("receipt"), get("action"), op.name, get("comment") or None,
                                      get("customer") or None, items)
    except recon_queue.DecisionError as exc:
        return RedirectResponse(f"{base}/finance?{urlencode({'error': str(exc)})}", status_code=status.HTTP_303_SEE_OTHER)
    msg = f"{done['action']} on receipt {done['receipt']} recorded; the next receipts run applies it"
    return RedirectResponse(f"{base}/finance?{urlencode({'done': msg})}", status_code=status.HTTP_303_SEE_OTHER)
