"""The OA's approval events (钉钉 ``bpms_instance_change``): verified, decrypted, stored, answered, and
the approvals DAG nudged to run sooner.

``POST {prefix}/{seat}?signature=…&timestamp=…&nonce=…`` with ``{"encrypt": …}``, where ``seat`` is an
``oa`` binding's name. The seat says which token, key and receiver id the app's pushes use
(its ``verify_event``); a push whose signature or receiver is not ours is refused (403), one older than
``MAX_AGE`` or already received (its ``BizId``/``eventId``, else the ciphertext's SHA-256) is a
replay and is not stored again. DingTalk's URL check (``check_url``) is answered the same way. The
answer is the encrypted "success" DingTalk requires. An event only makes the approvals run sooner:
the run reads every open request's state from the OA itself (polling is the safety net).
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from flows import receivers, roles
from flows.dag import emit_asset_event
from hub import model, store
from hub.errors import ConfigurationError, HubError, redact

log = logging.getLogger("flows.oa_events")

EVENT_ENTITY = "oa_event"
MAX_AGE_S = 3600
MAX_BODY = 1 << 16
STORED, REPLAYED, FORGED, STALE, CHECK = "stored", "replayed", "forged", "stale", "check_url"


def _age_s(stamp: str, now: float) -> float:
    value = float(stamp) if stamp.replace(".", "", 1).isdigit() else 0.0
    return now - (value / 1000 if value > 1e11 else value)   # milliseconds or seconds, as DingTalk sends either


def receive(binding, query: dict[str, str], body: bytes, now: float, background: Callable[..., None],
            emit: Callable[[str, dict[str, Any]], bool] = emit_asset_event) -> tuple[int, dict[str, Any], str]:
    """One push: (HTTP status, answer, outcome)."""
    seat = roles.adapter(binding)
    if not hasattr(seat, "verify_event"):
        raise ConfigurationError(f"{binding.where}: {binding.label} pushes no approval events to the hub")
    try:
        event, stamp = seat.verify_event(query, body)
    except (HubError, ValueError) as exc:
        log.warning("oa event refused on seat %s: %s", binding.name, exc)
        return 403, {"detail": "forged"}, FORGED
    if _age_s(stamp, now) > MAX_AGE_S:
        log.warning("oa event refused on seat %s: sent %s, older than %d s (a replay)", binding.name, stamp, MAX_AGE_S)
        return 403, {"detail": "stale"}, STALE
    if event.get("EventType") == "check_url":
        return 200, seat.event_answer(), CHECK
    event_key = str(event.get("BizId") or event.get("eventId") or event["_digest"])
    e = model.oa_event.c
    with store.engine().begin() as conn:
        seen = conn.execute(select(e.event_key).where(e.seat == binding.name, e.event_key == event_key)).first()
        if seen is None:
            conn.execute(model.oa_event.insert().values(
                seat=binding.name, event_key=event_key, instance_id=str(event.get("processInstanceId") or ""),
                event_type=f"{event.get('EventType')}:{event.get('type', '')}", result=event.get("result"),
                sent_at=str(event.get("finishTime") or event.get("createTime") or ""),
                received_at=datetime.fromtimestamp(now, timezone.utc)))
    outcome = REPLAYED if seen else STORED
    if outcome == STORED:
        background(_emit, emit, binding.name, str(event.get("processInstanceId") or ""))
    log.info("oa event on seat %s: %s %s (%s)", binding.name, event.get("EventType"), event.get("type"), outcome)
    return 200, seat.event_answer(), outcome


def _emit(emit, seat: str, instance: str) -> None:
    try:
        emit(EVENT_ENTITY, {"seat": seat, "instance": instance})
    except Exception as exc:  # noqa: BLE001 - stored; the next scheduled approvals run reads the OA anyway
        log.error("oa event: asset event for seat %s failed (%s: %s)", seat, type(exc).__name__, redact(str(exc)))


def create_app(emit: Callable[[str, dict[str, Any]], bool] = emit_asset_event) -> FastAPI:
    """The receiver as a FastAPI app (plugins/hub_oa_events.py mounts it in Airflow's API server).
    Public by design: the OA does not sign in; the push's signature is its authentication."""
    app = FastAPI(title="Hub OA event receiver", docs_url=None, redoc_url=None)

    @app.post("/{seat}", include_in_schema=False)
    async def push(seat: str, request: Request, background: BackgroundTasks) -> JSONResponse:
        found = await receivers.seat_and_body("oa", seat, request, MAX_BODY)
        if isinstance(found, JSONResponse):
            return found
        binding, body = found
        try:
            status, answer, _ = await run_in_threadpool(receive, binding, dict(request.query_params), body, time.time(),
                                                        background.add_task, emit)
        except ConfigurationError as exc:
            log.error("oa event on seat %s not verified: %s", seat, redact(str(exc)))
            return JSONResponse({"detail": "seat cannot verify events"}, status_code=503)
        return JSONResponse(answer, status_code=status)

    return app
