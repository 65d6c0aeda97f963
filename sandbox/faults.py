"""Fault injection and request statistics, as ASGI middleware in front of a stand-in.

A connector is only robust if it has met 429s, 5xx, slow answers, tokens that die early and
answers cut in half.  The middleware draws those from a seeded RNG (same seed and same request
sequence, same faults) and never touches ``/__sandbox/*``, which it serves itself.

Order of effects, chosen so retries are safe to test:
- ``429``/``500``/``502`` and ``expire_token`` answer *before* the request reaches the app, so
  nothing was written; the client may simply retry.
- ``malformed`` lets the app do the work and then cuts the JSON answer (a complete HTTP answer
  whose body is half a document): the write happened, the client cannot tell.
- ``truncated`` lets the app do the work, promises the whole body in ``Content-Length`` and
  closes the connection half-way through it (a proxy or link that died mid-answer).
- ``lost`` lets the app do the work and answers ``504 Gateway Time-out`` as a reverse proxy
  does when the backend finished after the proxy gave up: the answer to an applied write is lost.
  These three are the cases idempotency keys (U8 ``biz_id``) and look-ups by natural key exist for.
- ``slow`` delays, then serves normally.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable, Protocol

KINDS: tuple[str, ...] = ("429", "500", "502", "slow", "expire_token", "malformed", "truncated", "lost")
#: Kinds whose request reaches the app: the write is applied and only the answer goes wrong.
AFTER_APPLY: tuple[str, ...] = ("malformed", "truncated", "lost")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BAD_GATEWAY = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
                b"</body>\r\n</html>\r\n")
_GATEWAY_TIMEOUT = (b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
                    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
                    b"</body>\r\n</html>\r\n")
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


@dataclass
class FaultConfig:
    """What ``POST /__sandbox/faults`` sets."""

    rate: float = 0.0
    kinds: list[str] = field(default_factory=lambda: list(KINDS))
    seed: int = 1
    slow_seconds: float = 2.0

    @classmethod
    def from_json(cls, body: Any, current: "FaultConfig") -> "FaultConfig":
        """Validate a request body; missing keys keep their current value."""
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        unknown = set(body) - {"rate", "kinds", "seed", "slow_seconds"}
        if unknown:
            raise ValueError(f"unknown keys: {sorted(unknown)}")
        rate = float(body.get("rate", current.rate))
        kinds = body.get("kinds", current.kinds)
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if not isinstance(kinds, list) or any(k not in KINDS for k in kinds):
            raise ValueError(f"kinds must be a list drawn from {list(KINDS)}")
        return cls(rate, [str(k) for k in kinds], int(body.get("seed", current.seed)),
                   float(body.get("slow_seconds", current.slow_seconds)))


class Faults:
    """One stand-in's fault switch, its RNG and its counters."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Switch to ``config``; the RNG restarts from its seed."""
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)

    def draw(self, eligible: list[str]) -> str | None:
        """The fault for the next request, or None.  Always consumes the same draws per request."""
        with self._lock:
            u, pick = self._rng.random(), self._rng.random()
            kinds = [k for k in self.config.kinds if k in eligible]
            if u >= self.config.rate or not kinds:
                return None
            return kinds[int(pick * len(kinds))]


@dataclass
class Stats:
    """Request counters for ``GET /__sandbox/stats``."""

    requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)

    def bump(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


async def _drain(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _respond(send: Send, status: int, body: bytes, content_type: bytes = b"application/json",
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


class ControlExtension(Protocol):
    """A stand-in's own ``/__sandbox/*`` switches and counters (the registry's quota and
    per-key lookup counts), served next to the common ones."""

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        """Answer (status, body) for a control path it owns, else None."""

    def stats(self) -> dict[str, Any]:
        """Extra keys for ``GET /__sandbox/stats``."""

    def reset(self) -> None:
        """What ``DELETE /__sandbox/stats`` clears."""


class FaultMiddleware:
    """Wraps one stand-in.  The app-specific parts are passed in as small callables."""

    def __init__(self, app: ASGIApp, faults: Faults, *,
                 token_paths: tuple[str, ...],
                 live_token: Callable[[Scope], str | None],
                 revoke: Callable[[str], bool],
                 # (status, body) or (status, body, headers); None: the token is revoked and the
                 # request goes on to the stand-in, which refuses it in its own words
                 expired: Callable[[], tuple[Any, ...]] | None,
                 error_body: Callable[[int, str], dict[str, Any]],
                 extension: ControlExtension | None = None) -> None:
        self.app, self.faults = app, faults
        self.token_paths, self.live_token, self.revoke = token_paths, live_token, revoke
        self.expired, self.error_body = expired, error_body
        self.extension = extension
        self.stats = Stats()
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/__sandbox/"):
            await self._control(scope, receive, send)
            return

        is_token = path in self.token_paths
        token = None if is_token else self.live_token(scope)
        eligible = [k for k in KINDS
                    if not (is_token and k in (*AFTER_APPLY, "expire_token"))
                    and not (k == "expire_token" and token is None)]
        kind = self.faults.draw(eligible)
        with self._lock:
            self.stats.requests += 1
            self.stats.bump(self.stats.by_path, f"{scope['method']} {_ID_SEGMENT.sub('/{id}', path)}")
            if kind:
                self.stats.bump(self.stats.faults, kind)

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                with self._lock:
                    self.stats.bump(self.stats.by_status, str(message["status"]))
            await send(message)

        if kind in ("429", "500", "502"):
            await _drain(receive)
            if kind == "502":
                await _respond(counting_send, 502, _BAD_GATEWAY, b"text/html")
            else:
                status = int(kind)
                msg = "too many requests" if status == 429 else "internal server error"
                await _respond(counting_send, status, _json(self.error_body(status, f"{msg} (sandbox fault)")),
                               headers=[(b"retry-after", b"1")] if status == 429 else None)
            return
        if kind == "expire_token" and token is not None and self.expired is None:
            self.revoke(token)
            await self.app(scope, receive, counting_send)
            return
        if kind == "expire_token" and token is not None:
            await _drain(receive)
            self.revoke(token)
            status, body, *extra = self.expired()  # (status, body[, headers]); bytes go out as text/plain
            if isinstance(body, bytes):
                await _respond(counting_send, status, body, b"text/plain; charset=utf-8", *extra)
            else:
                await _respond(counting_send, status, _json(body), b"application/json", *extra)
            return
        if kind == "slow":
            await asyncio.sleep(self.faults.config.slow_seconds)
        if kind in AFTER_APPLY:
            await self._after_apply(kind, scope, receive, counting_send)
            return
        await self.app(scope, receive, counting_send)

    async def _after_apply(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app to the end (its write is applied), then spoil the answer as ``kind`` says."""
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        cut = body[: max(1, len(body) // 2)] if len(body) > 1 else b"{"
        if kind == "malformed":
            await _respond(send, 200, cut)
        elif kind == "lost":
            await _respond(send, 504, _GATEWAY_TIMEOUT, b"text/html")
        else:  # truncated: Content-Length says the whole body, the connection ends after half of it
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(max(len(body), 2)).encode())]})
            await send({"type": "http.response.body", "body": cut, "more_body": True})
            # returning with the answer incomplete makes the server close the connection

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/__sandbox/faults`` (GET/POST) and ``/__sandbox/stats`` (GET, DELETE resets)."""
        path, method = scope["path"], scope["method"]
        raw = await _drain(receive)
        if path == "/__sandbox/faults" and method == "POST":
            try:
                config = FaultConfig.from_json(json.loads(raw or b"{}"), self.faults.config)
            except (ValueError, TypeError) as exc:
                await _respond(send, 400, _json({"ok": False, "error": str(exc)}))
                return
            self.faults.configure(config)
            await _respond(send, 200, _json({"ok": True, "config": asdict(config)}))
        elif path == "/__sandbox/faults" and method == "GET":
            await _respond(send, 200, _json({"ok": True, "config": asdict(self.faults.config)}))
        elif path == "/__sandbox/stats" and method == "GET":
            with self._lock:
                body = {**asdict(self.stats), "config": asdict(self.faults.config)}
            if self.extension is not None:
                body.update(self.extension.stats())
            await _respond(send, 200, _json(body))
        elif path == "/__sandbox/stats" and method == "DELETE":
            with self._lock:
                self.stats = Stats()
            if self.extension is not None:
                self.extension.reset()
            await _respond(send, 200, _json({"ok": True}))
        elif self.extension is not None and (answer := self.extension.control(method, path, raw)) is not None:
            await _respond(send, answer[0], _json(answer[1]))
        else:
            await _respond(send, 404, _json({"ok": False, "error": "no such sandbox endpoint"}))
