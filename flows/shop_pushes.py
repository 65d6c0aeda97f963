"""The shops' push receiver (issue 12): verify, store, dedupe, answer, then nudge the orders DAG.

``POST {prefix}/{seat}`` where ``seat`` is a ``shop`` binding's name. The seat adapter verifies
the message (``verify_push``: signature and age, by the platform's rules) and words the answer
the platform expects (``push_answer``); this module names no platform. A message is acknowledged
only once it is in the hub store (``hub.pushes``): when the store is down the platform hears no
"ok" and sends it again. After the answer, an Airflow asset event on ``hub://shop_push`` makes the
orders DAG run sooner; if that fails it is logged and the message waits for the next run, which
reads :func:`hub.pushes.pending` as well as its polled window (polling stays the safety net).
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from flows import receivers, roles
from flows.dag import emit_asset_event as emit_event
from hub import pushes, store
from hub.errors import ConfigurationError, HubError, redact
from hub.types import Binding

log = logging.getLogger("flows.shop_pushes")

#: The entity whose asset the receiver emits (flows.dag.asset): the orders DAG consumes it.
PUSH_ENTITY = "shop_push"
#: A push larger than this is no order notice (有赞 and 抖店 send a few KB): refused unread.
MAX_BODY = 1 << 20
#: What verify_push's refusals are called, by the seat's exception class (flows import no
#: connector, so the classes of connectors/shops/push.py are known by name only).
REFUSALS = {"ForgedPush": pushes.FORGED, "StalePush": pushes.STALE}

Emitter = Callable[[str, Sequence[str]], bool]


def _secrets(binding: Binding) -> tuple[str, ...]:
    try:
        return binding.connection("api").secrets()
    except Exception:  # noqa: BLE001 - only for redaction; the refusal is logged either way
        return ()


def _count(seat: str, outcome: str, now: datetime) -> None:
    """Tally a push that stored nothing (forged, stale …); a store that is down only costs the count."""
    try:
        with store.engine().begin() as conn:
            pushes.count(conn, seat, outcome, now)
    except Exception as exc:  # noqa: BLE001
        log.error("shop push %s on seat %s not counted: the hub store is unavailable (%s)", outcome, seat,
                  type(exc).__name__)


def _messages(verified: Any) -> list[Any]:
    """verify_push's answer as a list (one message per request is the contract; a batch is taken too)."""
    return list(verified) if isinstance(verified, (list, tuple)) else [verified]


def _answer(adapter: Any, ok: bool, status: int | None = None) -> JSONResponse:
    code, body = adapter.push_answer(ok)
    return JSONResponse(body, status_code=status or code)


def emit_asset_event(seat: str, tids: Sequence[str]) -> bool:
    """One asset event on ``hub://shop_push`` (flows.dag.emit_asset_event): the orders DAG runs sooner."""
    return emit_event(PUSH_ENTITY, {"seat": seat, "tids": list(tids)})


def _emit(emit: Emitter, seat: str, tids: Sequence[str]) -> None:
    try:
        if emit(seat, tids):
            log.info("shop push: asset event emitted for seat %s (%d order(s))", seat, len(tids))
    except Exception as exc:  # noqa: BLE001 - the message is stored; polling and pending() pick it up
        log.error("shop push: asset event for seat %s failed (%s: %s); the next run reads the stored push",
                  seat, type(exc).__name__, redact(str(exc)))


def receive(binding: Binding, headers: Any, body: bytes, now: datetime,
            background: Callable[..., None], emit: Emitter) -> JSONResponse:
    """One push request for ``binding``: the answer the platform gets."""
    seat = binding.name
    try:
        adapter = roles.adapter(binding)
    except Exception as exc:  # noqa: BLE001 - a seat that cannot be built acknowledges nothing
        log.error("shop push for seat %s: the seat adapter is unavailable (%s: %s)", seat, type(exc).__name__,
                  redact(str(exc), _secrets(binding)))
        return JSONResponse({"detail": "seat unavailable"}, status_code=503)
    if len(body) > MAX_BODY:
        _count(seat, pushes.REFUSED, now)
        log.warning("shop push refused on seat %s: body of %d bytes over %d", seat, len(body), MAX_BODY)
        return _answer(adapter, False, 413)
    try:
        messages = _messages(adapter.verify_push(headers, body, now))
    except ConfigurationError as exc:  # the seat cannot verify (connection incomplete): no "ok", it is sent again
        log.error("shop push on seat %s not verified: %s", seat, redact(str(exc), _secrets(binding)))
        return _answer(adapter, False, 503)
    except HubError as exc:
        outcome = REFUSALS.get(type(exc).__name__, pushes.REFUSED)
        _count(seat, outcome, now)
        log.warning("shop push refused on seat %s: %s (%s)", seat, outcome, redact(str(exc), _secrets(binding)))
        return _answer(adapter, False)
    except Exception as exc:  # noqa: BLE001 - a bug in verification: no "ok", the platform retries
        log.error("shop push on seat %s not verified: %s", seat, type(exc).__name__)
        return _answer(adapter, False, 500)

    digest = hashlib.sha256(body).hexdigest()
    outcomes: list[str] = []
    stored: list[str] = []
    try:
        with store.engine().begin() as conn:
            for i, msg in enumerate(messages):
                if not msg.tid:  # a platform's check message (e.g. 抖店 tag 0): nothing to fetch
                    outcome = pushes.NO_ORDER
                else:
                    key = digest if len(messages) == 1 else hashlib.sha256(body + b"#%d" % i).hexdigest()
                    outcome = pushes.record(conn, seat=seat, platform=binding.system, body_sha256=key,
                                            tid=str(msg.tid), version=str(msg.version), kind=str(msg.kind or ""),
                                            sent_at=msg.sent_at, received_at=now)
                pushes.count(conn, seat, outcome, now)
                outcomes.append(outcome)
                if outcome == pushes.STORED:
                    stored.append(str(msg.tid))
    except Exception as exc:  # noqa: BLE001 - not stored, so not acknowledged: the platform sends it again
        log.error("shop push on seat %s not stored, not acknowledged: the hub store is unavailable (%s)", seat,
                  type(exc).__name__)
        return _answer(adapter, False, 503)
    log.info("shop push on seat %s: %s", seat, ", ".join(outcomes))
    if stored:
        background(_emit, emit, seat, stored)
    return _answer(adapter, True)


def create_app(emit: Emitter = emit_asset_event) -> FastAPI:
    """The receiver as a FastAPI app (plugins/hub_pushes.py mounts it in Airflow's API server).

    Public by design: the platforms do not sign in; the message's signature is its authentication."""
    app = FastAPI(title="Hub shop push receiver", docs_url=None, redoc_url=None)

    @app.post("/{seat}", include_in_schema=False)
    async def push(seat: str, request: Request, background: BackgroundTasks) -> JSONResponse:
        binding = await receivers.seat_of("shop", seat)
        if isinstance(binding, JSONResponse):
            return binding
        body = await request.body()
        return await run_in_threadpool(receive, binding, request.headers, body, datetime.now(timezone.utc),
                                       background.add_task, emit)

    return app
