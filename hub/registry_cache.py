"""The registry cache: every registry query is paid for at most once per TTL, across runs.

A query is keyed by its normalised text (NFKC, no whitespace, codes upper-cased) and the
provider, so "上海华测检测技术有限公司 " typed twice, or a USCC in lower case, is one paid
lookup. Reads are one set-based query per batch; writes are one upsert per batch of answers.
An answer that could not be had (quota, rate limit, outage) is stored as ``deferred`` with the
reason: it is never dropped, and the next run asks again.
"""
from __future__ import annotations

import os
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from sqlalchemy import or_, select

from hub import model
from hub.store import chunks, upsert

DEFAULT_TTL_DAYS = 30.0
_CODE = re.compile(r"^[0-9A-Za-z]{15,18}$")
COLUMNS = [c.name for c in model.registry_cache.columns]


def normalise_key(text: Any) -> str | None:
    """The cache key of a query: NFKC (full-width → half-width), no whitespace, codes upper-cased."""
    if text is None or (isinstance(text, float) and text != text):
        return None
    value = "".join(unicodedata.normalize("NFKC", str(text)).split())
    if not value:
        return None
    return value.upper() if _CODE.match(value) else value


def ttl() -> timedelta:
    """How long an answer (or a "no such company") is trusted: ``HUB_REGISTRY_TTL_DAYS``, default 30."""
    return timedelta(days=float(os.environ.get("HUB_REGISTRY_TTL_DAYS", DEFAULT_TTL_DAYS)))


def as_utc(value: Any) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite hands them back naive)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def read(conn, provider: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The cached rows of ``keys`` by key: one set-based read (chunked only for the IN-list
    limit), as plain dicts so no value goes through pandas' type guessing."""
    t = model.registry_cache
    out: dict[str, dict[str, Any]] = {}
    for part in chunks(list(dict.fromkeys(keys))):
        for row in conn.execute(select(t).where(t.c.provider == provider, t.c.query_key.in_(part))):
            out[row.query_key] = dict(row._mapping)
    return out


def is_due(row: dict[str, Any] | None, now: datetime) -> bool:
    """Whether a cached row needs a (paid) call now: missing, expired, or deferred and due."""
    if row is None:
        return True
    if row.get("status") == "deferred":
        next_try = as_utc(row.get("next_try"))
        return next_try is None or next_try <= now
    expires = as_utc(row.get("expires_at"))
    return expires is None or expires <= now


def answered(provider: str, key: str, text: str, answer: dict[str, Any] | None, now: datetime,
             reason: str | None = None) -> dict[str, Any]:
    """A cache row for an answer: a record (``ok``) or the registry's "no such company" (``no_data``)."""
    return {"provider": provider, "query_key": key, "query_text": text, "status": "ok" if answer else "no_data",
            "answer": answer, "reason": reason, "attempts": 0, "fetched_at": now, "expires_at": now + ttl(),
            "next_try": None, "updated_at": now}


def deferred(provider: str, key: str, text: str, reason: str, now: datetime, previous: dict[str, Any] | None,
             retry_after: float | None = None) -> dict[str, Any]:
    """A cache row for a lookup that has to wait; an earlier good answer is kept, not lost."""
    prev = previous or {}
    return {"provider": provider, "query_key": key, "query_text": text, "status": "deferred",
            "answer": prev.get("answer"), "reason": reason[:2000], "attempts": int(prev.get("attempts") or 0) + 1,
            "fetched_at": as_utc(prev.get("fetched_at")), "expires_at": as_utc(prev.get("expires_at")),
            "next_try": now + timedelta(seconds=retry_after or 0), "updated_at": now}


def save(conn, rows: list[dict[str, Any]]) -> int:
    """Store a batch of outcomes in one upsert."""
    return upsert(conn, model.registry_cache, [{c: r.get(c) for c in COLUMNS} for r in rows],
                  keys=["provider", "query_key"])


def stale_keys(conn, provider: str, now: datetime) -> list[str]:
    """Keys whose answer has expired or whose lookup was deferred (for the refresh flow)."""
    c = model.registry_cache.c
    stmt = select(c.query_key).where(c.provider == provider, or_(
        c.status == "deferred", c.expires_at.is_(None), c.expires_at <= now))
    return [r[0] for r in conn.execute(stmt)]
