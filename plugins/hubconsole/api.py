"""The console's JSON API (same data and actions as the pages, for scripts) and the
Prometheus endpoint."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from hub import audit, health, metrics, model, quarantine, report, runs, store, trace

from . import actions
from .auth import Operator, operator, scraper
from .params import EntryId, Offset

router = APIRouter()
Op = Annotated[Operator, Depends(operator)]


class ActionBody(BaseModel):
    ids: list[int] = Field(min_length=1)
    comment: str | None = None


@router.get("/api/flows")
def flows(op: Op) -> Any:
    with store.engine().begin() as conn:
        out = []
        for h in health.all_flows(conn):
            out.append({"flow": h.flow, "stale": h.stale, "stale_reason": h.stale_reason,
                        "stale_after_minutes": h.stale_after.total_seconds() / 60,
                        "last_success_at": h.last_success_at, "open_quarantine": h.open_quarantine,
                        "runs": runs.recent(conn, h.flow, 20)})
    return jsonable_encoder(out)


@router.get("/api/run")
def run(op: Op, id: str) -> Any:  # noqa: A002 - the query parameter's name
    with store.engine().begin() as conn:
        found = runs.one(conn, id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {id!r}")
    found["report"] = report.build(id)
    return jsonable_encoder(found)


@router.get("/api/quarantine")
def quarantine_list(op: Op, flow: str | None = None, entity: str | None = None, system: str | None = None,
                    stage: str | None = None, state: Annotated[str, Query(alias="status")] = "open",
                    q: str | None = None, run: str | None = None, limit: int = 100, offset: Offset = 0) -> Any:
    with store.engine().begin() as conn:
        rows, total = quarantine.find(conn, flow=flow, entity=entity, system=system, stage=stage,
                                      status=None if state in ("", "all") else state, text=q, run_id=run,
                                      limit=min(max(limit, 1), 1000), offset=max(offset, 0))
    return jsonable_encoder({"total": total, "items": rows})


@router.get("/api/quarantine/{qid}")
def quarantine_item(op: Op, qid: EntryId) -> Any:
    with store.engine().begin() as conn:
        row = conn.execute(select(model.quarantine).where(model.quarantine.c.id == qid)).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantine entry {qid}")
        return jsonable_encoder({**dict(row._mapping), "history": audit.history(conn, qid)})


@router.post("/api/quarantine/replay")
def replay(op: Op, body: ActionBody) -> Any:
    result = actions.apply(op, "replay", body.ids, body.comment)
    return {"changed": result.changed, "asked": result.asked, "message": result.message}


@router.post("/api/quarantine/ignore")
def ignore(op: Op, body: ActionBody) -> Any:
    result = actions.apply(op, "ignore", body.ids, body.comment)
    return {"changed": result.changed, "asked": result.asked, "message": result.message}


@router.get("/api/trace")
def trace_api(op: Op, q: str = "", hub_id: str = "") -> Any:
    with store.engine().begin() as conn:
        hits = trace.search(conn, q) if q else []
        target = hub_id or (hits[0]["hub_id"] if len(hits) == 1 else "")
        return jsonable_encoder({"hits": hits, "quarantined": trace.quarantined(conn, q) if q else [],
                                 "trace": trace.trace(conn, target) if target else None})


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(who: Annotated[str, Depends(scraper)]) -> PlainTextResponse:
    with store.engine().begin() as conn:
        text = metrics.render(conn)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
