"""Bearer tokens with an expiry, shared by both stand-ins' auth code.

Tokens live in memory only: restarting the sandbox invalidates them, which a connector has to
survive anyway (it sees 401 / errcode 20003 and fetches a new one).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Grant:
    """What a token stands for."""

    subject: Any
    expires_at: float
    issued_at: float = 0.0


class TokenStore:
    """Issue, check and revoke opaque tokens."""

    def __init__(self) -> None:
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, token: str, subject: Any, ttl_s: float) -> None:
        """Register ``token`` for ``subject`` for ``ttl_s`` seconds."""
        with self._lock:
            now = time.monotonic()
            for key in [k for k, g in self._grants.items() if g.expires_at <= now]:
                del self._grants[key]
            self._grants[token] = Grant(subject, now + ttl_s, now)

    def check(self, token: str | None) -> Any | None:
        """The subject of a live token, else None."""
        if not token:
            return None
        with self._lock:
            grant = self._grants.get(token)
            if grant is None or grant.expires_at <= time.monotonic():
                return None
            return grant.subject

    def age(self, token: str | None) -> float | None:
        """Seconds since a live token was issued, else None."""
        if not token:
            return None
        with self._lock:
            grant = self._grants.get(token)
            now = time.monotonic()
            return None if grant is None or grant.expires_at <= now else now - grant.issued_at

    def revoke_all(self) -> int:
        """Forget every token (as if all had expired at once); how many were live."""
        with self._lock:
            now = time.monotonic()
            live = sum(g.expires_at > now for g in self._grants.values())
            self._grants.clear()
            return live

    def revoke(self, token: str | None) -> bool:
        """Forget a token (the ``expire_token`` fault); True if it was live."""
        if not token:
            return False
        with self._lock:
            grant = self._grants.pop(token, None)
            return grant is not None and grant.expires_at > time.monotonic()
