"""Registry enrichment: look customers up in 天眼查 or 企查查, each key at most once per TTL.

The public API, for flows that want registry facts (customer_master, registry_refresh):

- ``connector(conn=None)``: the connector of the ``registry`` seat (flows.roles): the provider
  its connection names (``extra.provider`` or ``conn_type``: ``tianyancha`` | ``qichacha``).
- ``enrich(engine, customers, connector, *, budget=None, workers=None, now=None)``:
  ``customers`` has ``hub_id``, ``name``, ``uscc``; returns ``(facts, counts)`` with one
  facts row per customer row (columns ``FACT_COLUMNS``) and an ``EnrichCounts``.

Why it is built this way:

- A lookup costs money. Each row is reduced to one query key (its USCC when it is a valid
  code, else its registered-name form) and each distinct key is asked at most once per TTL,
  across runs: one set-based cache read for the whole batch, one upsert per batch of answers.
  "No such company" is cached too.
- Quota, rate-limit and outage errors never lose a lookup: the key is stored as ``deferred``
  with the reason and the next run asks again. After a quota error, or three transient
  failures in a row, the rest of the run is deferred without calling (no point paying
  for, or waiting on, answers that will not come).
- Parallel lookups are bounded by ``workers`` (``HUB_REGISTRY_WORKERS``, else the
  connection's ``extra.workers``, else 4) inside one task; the Airflow pool ``registry_api``
  bounds how many tasks call the registry at once across DAGs (docs/operations.md).
- A company the registry reports as 注销 / 吊销 (not ``active``) gets a ``hold_reason`` a
  salesperson can read; the calling flow decides to hold it back from the ERP.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

import pandas as pd
from sqlalchemy import Engine

from flows import roles
from hub import registry_cache
from hub.errors import (DataError, QuotaExceededError, RateLimitedError, TransientError,
                        failure_class_of)
from hub.runlog import StepCounts
from hub.store import utcnow
from hub.types import ConnectionInfo, RegistryRecord
from quality import uscc as uscc_check

log = logging.getLogger("flows.registry")

DEFAULT_WORKERS = 4
BATCH = 200               # keys whose answers are stored in one upsert
BREAKER = 3               # transient failures in a row after which the rest of the run is deferred
FACT_COLUMNS = [
    "hub_id", "query", "lookup", "legal_name", "uscc", "registry_status", "legal_representative",
    "registered_capital", "address", "history_names", "established", "active", "source", "hold_reason", "reason",
]


class RegistryConnector(Protocol):
    """What enrichment needs of a registry connector (both connectors/ registries have it)."""

    system: str
    LABEL: str      # the provider's name in messages (天眼查, 企查查)

    def lookup(self, keyword: str) -> RegistryRecord | None:
        """The registered company for a name or code, None when the registry has none."""


def connector(conn: ConnectionInfo | None = None) -> RegistryConnector:
    """The ``registry`` seat's connector: the provider its connection names in ``extra.provider``
    (or ``conn_type``); ``conn`` instead of the bound connection (a check, a test). A
    ConfigurationError when the seat is unbound, its connection missing or the provider unknown."""
    return roles.registry().connector(conn)


@dataclass
class EnrichCounts:
    """What one enrichment did; ``called`` is what the registry may bill."""

    rows: int = 0       # customer rows given
    keys: int = 0       # distinct query keys among them
    no_key: int = 0     # rows with neither a valid USCC nor a name
    cached: int = 0     # keys answered from the cache, no call
    called: int = 0     # lookups sent to the registry
    found: int = 0      # keys the registry knows
    no_data: int = 0    # keys the registry does not know
    deferred: int = 0   # keys left for the next run (quota, rate limit, outage, budget)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def as_step_counts(self) -> StepCounts:
        """In the run log's words: read rows, skipped = from cache, written = looked up now."""
        return StepCounts(read=self.rows, mapped=self.found, skipped=self.cached, written=self.called)


def query_text(name: Any, code: Any) -> str | None:
    """What to ask the registry for one row: the USCC when it is valid, else the name in its
    registered form (NFKC, no spaces, full-width brackets as PRC enterprise names are written)."""
    if isinstance(code, str):
        candidate = "".join(code.split()).upper()
        if uscc_check.is_valid(candidate) and len(set(candidate)) > 1:  # 000…0 passes the check, means nothing
            return candidate
    key = registry_cache.normalise_key(name)
    return key.replace("(", "（").replace(")", "）") if key else None


def _workers(conn_workers: int | None, workers: int | None) -> int:
    value = workers or os.environ.get("HUB_REGISTRY_WORKERS") or conn_workers or DEFAULT_WORKERS
    return max(1, int(value))


@dataclass
class _Outcome:
    status: str                      # ok | no_data | deferred
    answer: dict[str, Any] | None = None
    reason: str | None = None
    retry_after: float | None = None
    called: bool = False


class _Caller:
    """Runs lookups in parallel and stops calling once the registry is clearly not answering."""

    def __init__(self, registry: RegistryConnector) -> None:
        self.registry = registry
        self.stop_reason: str | None = None
        self.fatal: BaseException | None = None
        self._failures = 0
        self._lock = threading.Lock()

    def __call__(self, text: str) -> _Outcome:
        if self.stop_reason:
            return _Outcome("deferred", reason=self.stop_reason)
        try:
            record = self.registry.lookup(text)
        except QuotaExceededError as exc:
            self._stop(f"quota: {exc}")
            return _Outcome("deferred", reason=f"quota: {exc}", called=True)
        except DataError as exc:  # the registry refused this keyword: asking again would not help
            self._ok()
            return _Outcome("no_data", reason=str(exc), called=True)
        except TransientError as exc:
            kind = "rate limited" if isinstance(exc, RateLimitedError) else "unavailable"
            with self._lock:
                self._failures += 1
                if self._failures >= BREAKER and not self.stop_reason:
                    self.stop_reason = f"registry {kind} ({self._failures} failures in a row): {exc}"
            return _Outcome("deferred", reason=f"{kind}: {exc}", retry_after=getattr(exc, "retry_after", None),
                            called=True)
        except Exception as exc:  # noqa: BLE001 - configuration or a bug: stop, keep what was paid for, re-raise
            self._stop(f"{failure_class_of(exc)}: {exc}")
            with self._lock:
                self.fatal = self.fatal or exc
            return _Outcome("deferred", reason=f"{failure_class_of(exc)}: {exc}", called=True)
        self._ok()
        return _Outcome("ok", answer=record.as_dict(), called=True) if record else _Outcome("no_data", called=True)

    def _ok(self) -> None:
        with self._lock:
            self._failures = 0

    def _stop(self, reason: str) -> None:
        with self._lock:
            self.stop_reason = self.stop_reason or reason


def _hold_reason(record: RegistryRecord, who: str) -> str | None:
    """What a salesperson reads about a company ``who`` (the provider's name) reports closed."""
    if record.active:
        return None
    return f"{who}显示该企业登记状态为「{record.status}」，已不能正常经营：暂不同步到 ERP，请与客户确认后再处理。"


def _facts_row(hub_id: Any, text: str | None, row: dict[str, Any] | None, who: str) -> dict[str, Any]:
    out: dict[str, Any] = {c: None for c in FACT_COLUMNS}
    out.update(hub_id=hub_id, query=text, history_names=[])
    if text is None:
        out.update(lookup="no_key", reason="neither a valid 统一社会信用代码 nor a name to look up")
        return out
    if row is None:
        out.update(lookup="pending", reason="not looked up yet")
        return out
    out.update(lookup=row["status"], reason=row.get("reason"))
    if row.get("answer"):
        rec = RegistryRecord.from_dict(row["answer"])
        out.update(legal_name=rec.legal_name, uscc=rec.uscc, registry_status=rec.status,
                   legal_representative=rec.legal_representative, registered_capital=rec.registered_capital,
                   address=rec.address, history_names=list(rec.history_names),
                   established=rec.established.isoformat() if rec.established else None, active=rec.active,
                   source=rec.source, hold_reason=_hold_reason(rec, who))
    return out


def enrich(engine: Engine, customers: pd.DataFrame, connector: RegistryConnector, *, budget: int | None = None,
           workers: int | None = None, now: datetime | None = None) -> tuple[pd.DataFrame, EnrichCounts]:
    """Registry facts for ``customers`` (``hub_id``, ``name``, ``uscc``), one row each.

    ``budget`` caps the lookups this call may send (None: no cap); keys over it are stored
    as deferred and asked next time. ``now`` is for tests and backfills. ``lookup`` in the
    result is ok | no_data | deferred | no_key; a deferred key keeps the facts of its last
    good answer, if it ever had one. Raises ConfigurationError (after storing every answer
    already paid for) when the registry refuses the account.
    """
    now = now or utcnow()
    provider = connector.system
    names = customers["name"] if "name" in customers else pd.Series(None, index=customers.index, dtype=object)
    codes = customers["uscc"] if "uscc" in customers else pd.Series(None, index=customers.index, dtype=object)
    texts = [query_text(n, c) for n, c in zip(names, codes)]
    keys = [registry_cache.normalise_key(t) if t else None for t in texts]
    first_text: dict[str, str] = {}
    for key, text in zip(keys, texts):
        if key and key not in first_text:
            first_text[key] = text  # type: ignore[assignment]
    counts = EnrichCounts(rows=len(customers), keys=len(first_text), no_key=sum(1 for k in keys if k is None))

    with engine.begin() as conn:
        rows = registry_cache.read(conn, provider, list(first_text))
    due = [k for k in first_text if registry_cache.is_due(rows.get(k), now)]
    counts.cached = len(first_text) - len(due)
    to_call, over = (due, []) if budget is None else (due[:max(0, budget)], due[max(0, budget):])

    caller = _Caller(connector)
    outcomes: list[dict[str, Any]] = [registry_cache.deferred(provider, k, first_text[k], "over this run's lookup budget",
                                                              now, rows.get(k)) for k in over]
    with ThreadPoolExecutor(max_workers=_workers(getattr(connector, "workers", None), workers),
                            thread_name_prefix="registry") as pool:
        for start in range(0, len(to_call), BATCH):
            batch = to_call[start:start + BATCH]
            results = list(pool.map(caller, [first_text[k] for k in batch]))
            saved = []
            for key, res in zip(batch, results):
                counts.called += res.called
                if res.status == "deferred":
                    saved.append(registry_cache.deferred(provider, key, first_text[key], res.reason or "deferred",
                                                         now, rows.get(key), res.retry_after))
                else:
                    saved.append(registry_cache.answered(provider, key, first_text[key], res.answer, now, res.reason))
            outcomes.extend(saved)
            with engine.begin() as conn:
                registry_cache.save(conn, outcomes)
            rows.update({r["query_key"]: r for r in outcomes})
            outcomes = []
    if outcomes:  # only budget deferrals, when nothing was called
        with engine.begin() as conn:
            registry_cache.save(conn, outcomes)
        rows.update({r["query_key"]: r for r in outcomes})

    for key in first_text:
        status = rows[key]["status"] if key in rows else "pending"
        counts.found += status == "ok"
        counts.no_data += status == "no_data"
        counts.deferred += status == "deferred"
    log.info("%s enrichment: %s", provider, counts.as_dict())
    if caller.fatal is not None:
        raise caller.fatal
    who = getattr(connector, "LABEL", None) or provider  # the cache is per provider: its answers are this one's
    facts = pd.DataFrame([_facts_row(h, t, rows.get(k) if k else None, who)
                          for h, t, k in zip(customers["hub_id"], texts, keys)], columns=FACT_COLUMNS, dtype=object)
    return facts, counts


__all__ = ["FACT_COLUMNS", "EnrichCounts", "RegistryConnector", "connector", "enrich", "query_text"]
