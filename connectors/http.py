"""The one HTTP helper every connector uses: timeouts, retry with backoff, error classes.

Retries: connection errors, timeouts, 429 (waiting what ``Retry-After`` says), 500, 502,
503, 504 and bodies that should be JSON but are not (a truncated page). Everything else
is returned to the connector, which knows what its API's errors mean. Error texts carry
the redacted URL, never a token or secret.

A request that is not safe to repeat (``idempotent=False``: a create without the target's
own idempotency key) is re-sent only when it certainly never arrived (the connection was
refused, or 429). When its answer is lost after it went out, the helper raises
:class:`AmbiguousWriteError` instead of sending it again: only the connector can tell, by
looking the record up by its natural key, whether the write was applied.
"""
from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import requests
import urllib3

from hub.errors import AmbiguousWriteError, DataError, RateLimitedError, TransientError, redact
from hub.types import Page, WriteResult

log = logging.getLogger("connectors.http")


class _RedactingFilter(logging.Filter):
    """urllib3 logs request lines at DEBUG; some real APIs (the U8 token call) carry a secret
    in the query string, so those lines pass through the same redaction as our errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactingFilter())

RETRY_STATUS = {429, 500, 502, 503, 504}
#: Methods whose repetition has the effect of one call (RFC 9110 §9.2.2; our PATCHes set fields).
IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"}
T = TypeVar("T")
S = TypeVar("S")


class MalformedResponse(TransientError):
    """The body was not the JSON the API promised (kept, redacted, for quarantine)."""

    def __init__(self, message: str, body: str = "", **kw) -> None:
        super().__init__(message, **kw)
        self.body = body


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class HttpClient:
    """A retrying JSON-over-HTTP client bound to one base URL."""

    def __init__(self, base_url: str, *, secrets: tuple[str, ...] = (), timeout: tuple[float, float] = (5.0, 60.0),
                 max_attempts: int = 6, backoff: float = 0.2, max_backoff: float = 20.0,
                 sleep: Callable[[float], None] = time.sleep, cookies: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.secrets = secrets
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        #: False: no cookie is ever kept (泛微 e-cology: a shared jar mixes users up, 串号)
        self.cookies = cookies
        self._local = threading.local()
        self.retries = 0

    @property
    def session(self) -> requests.Session:
        """One session per thread: connection reuse without sharing a session across threads."""
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            if not self.cookies:
                from http.cookiejar import DefaultCookiePolicy

                self._local.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        return self._local.session

    def _where(self, method: str, path: str) -> str:
        return redact(f"{method} {self.base_url}{path}", self.secrets)

    def request(self, method: str, path: str, *, params: dict | None = None, data: dict | None = None,
                json_body: Any = None, headers: dict | None = None, expect_json: bool = True,
                idempotent: bool | None = None) -> Response:
        """Send with retries; returns the last response for the caller to interpret.

        ``idempotent`` (default: by method, so a POST is not) says whether the request may be
        re-sent after its answer was lost; when it may not, such a loss raises
        :class:`AmbiguousWriteError`."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        repeatable = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        last: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            sent = True
            try:
                resp = self.session.request(method, url, params=params, data=data, json=json_body,
                                            headers=headers, timeout=self.timeout)
                body: Any = resp.text if resp.status_code not in RETRY_STATUS else None
            except requests.RequestException as exc:  # refused, timed out, dropped or cut mid-answer
                sent = not _never_sent(exc)
                last = TransientError(f"{self._where(method, path)}: {type(exc).__name__}", secrets=self.secrets)
            else:
                if resp.status_code in RETRY_STATUS:
                    wait = retry_after_seconds(resp.headers.get("Retry-After"))
                    sent = resp.status_code != 429  # 429: refused before any work was done
                    cls = RateLimitedError if resp.status_code == 429 else TransientError
                    last = cls(f"{self._where(method, path)}: HTTP {resp.status_code}", secrets=self.secrets)
                else:
                    if expect_json:
                        try:
                            body = resp.json()
                        except (ValueError, json.JSONDecodeError):
                            last = MalformedResponse(f"{self._where(method, path)}: HTTP {resp.status_code} body is not JSON",
                                                     body=redact(resp.text[:2000], self.secrets), secrets=self.secrets)
                            body = None
                    if body is not None or not expect_json:
                        return Response(resp.status_code, body, dict(resp.headers))
            if sent and not repeatable:
                raise AmbiguousWriteError(f"{last}: the answer to a write was lost after it was sent",
                                          secrets=self.secrets) from None
            if attempt < self.max_attempts:
                self.retries += 1
                delay = wait if wait is not None else min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                delay *= 1 if wait is not None else random.uniform(0.5, 1.0)
                log.warning("%s (attempt %d/%d, retrying in %.2fs)", last, attempt, self.max_attempts, delay)
                self.sleep(delay)
        assert last is not None
        raise last


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly did not reach the server (refused or unreachable)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the connection error
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def paginate(fetch: Callable[[S], tuple[T, S | None]], start: S) -> Iterator[T]:
    """Drive any paging scheme (offset, keyset, scroll locator): ``fetch(state)`` returns a
    page and the next state, ``None`` when there is no next page."""
    state: S | None = start
    while state is not None:
        page, state = fetch(state)
        yield page


def create_once(find: Callable[[], str | None], create: Callable[[], str], attempts: int = 3) -> tuple[str, str]:
    """A create the target has no idempotency key for, made safe to repeat by a lookup by the record's
    own key: ("linked", id) when ``find`` finds it, else ("created", id). An answer lost after the
    request went out (:class:`AmbiguousWriteError`) is looked up again before the next try, so a write
    that was applied is found, and one that never arrived is sent again."""
    for attempt in range(1, attempts + 1):
        found = find()
        if found:
            return "linked", found
        try:
            return "created", create()
        except AmbiguousWriteError:
            if attempt == attempts:
                found = find()
                if found:
                    return "linked", found
                raise
    raise AssertionError("unreachable")


def write_each(key: str, write: Callable[[], WriteResult]) -> WriteResult:
    """One record's write with the outcomes every connector gives alike: a refusal (``DataError``)
    fails that record (the ledger quarantines it); a target still out of reach after the helper's
    retries (``TransientError``, a lost answer included) defers it, so the chunk's other records are
    booked and the step's retry sends this one again; safe, because every create is found by its
    key before it is sent again. A ``ConfigurationError`` stops the write: a person must act."""
    try:
        return write()
    except DataError as exc:
        return WriteResult(key, "failed", error=str(exc), error_class="data")
    except TransientError as exc:
        return WriteResult(key, "deferred", error=str(exc), error_class="transient")


def pages_by_key(keys: Any, fetch: Callable[[str], dict], size: int = 50) -> Iterator[Any]:
    """Pages (``hub.types.Page``) of ``fetch(key)`` for each key, ``size`` a page: a read by ids
    where the API answers one record a call (an OA request's progress)."""
    keys = [str(k) for k in keys]
    for i in range(0, len(keys), size):
        yield Page([fetch(k) for k in keys[i:i + size]])
