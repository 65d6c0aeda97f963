"""What the hub's HTTP receivers share (shop pushes, OA events, the dealer ordering channel): the seat a
request names, found in the bindings off the event loop, or the answer that says why there is none."""
from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from flows import roles
from hub.errors import ConfigurationError, redact
from hub.types import Binding

log = logging.getLogger("flows.receivers")


def _find(role: str, name: str) -> Binding | None:
    return next((b for b in roles.seats(role) if b.name == name), None)


async def seat_of(role: str, name: str) -> Binding | JSONResponse:
    """The ``role`` binding called ``name``; else 503 (a bad bindings file: nothing is acknowledged until
    it is fixed, so the sender tries again) or 404 (no such seat)."""
    try:
        binding = await run_in_threadpool(_find, role, name)
    except ConfigurationError as exc:
        log.error("%s request for seat %s: bindings unavailable (%s)", role, name, redact(str(exc)))
        return JSONResponse({"detail": "bindings unavailable"}, status_code=503)
    if binding is None:
        return JSONResponse({"detail": f"no such {role} seat"}, status_code=404)
    return binding


async def body_within(request: Request, limit: int) -> bytes | JSONResponse:
    """The request's body, or 413 when it is over ``limit`` bytes."""
    body = await request.body()
    if len(body) > limit:
        return JSONResponse({"detail": "too large"}, status_code=413)
    return body


async def seat_and_body(role: str, name: str, request: Request, limit: int) -> tuple[Binding, bytes] | JSONResponse:
    """:func:`seat_of` and :func:`body_within` in one: the seat and the body, or the answer why not."""
    binding = await seat_of(role, name)
    if isinstance(binding, JSONResponse):
        return binding
    body = await body_within(request, limit)
    return body if isinstance(body, JSONResponse) else (binding, body)
