"""Error classes that tell operations what kind of failure a run had.

Modelled on Airbyte's failure types: a *transient* failure is retried by Airflow, a
*configuration* failure needs a person to fix a connection or a setting and is not
retried, a *data* failure concerns one record and sends it to quarantine while the batch
goes on.
"""
from __future__ import annotations

import re

_SECRET_PARAM = re.compile(
    r"(?i)\b(access_token|refresh_token|token|app_secret|client_secret|password|pwd|secret|sign)=([^&\s;\"']+)"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove secrets from text bound for logs, errors and the run log."""
    out = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)
    out = _BEARER.sub(r"\1***", out)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    return out


class HubError(Exception):
    """Base of every error the hub raises on purpose."""

    failure_class = "internal"

    def __init__(self, message: str, *, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(redact(message, secrets))


class TransientError(HubError):
    """Worth retrying: timeouts, 5xx, 429, a dropped connection."""

    failure_class = "transient"


class RateLimitedError(TransientError):
    """The remote asked us to slow down; ``retry_after`` is in seconds when it said."""

    def __init__(self, message: str, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class AmbiguousWriteError(TransientError):
    """A write that is not safe to send twice went out and its answer was lost (timeout, dropped
    or cut answer, gateway error): it may or may not have been applied. The connector finds out
    by looking the record up by its idempotency key before it sends the write again."""


class QuotaExceededError(TransientError):
    """A paid API's balance or call allowance is used up: nothing to fix in the hub, so the
    work is deferred (never dropped) until the account is topped up or the day rolls over."""


class Throttled(RuntimeError):
    """An alert channel refused a message for coming too fast (a chat robot's rate limit).
    Nothing is lost: the alert waits and goes merged into the channel's next message."""


class ConfigurationError(HubError):
    """Wrong credentials, missing connection, unknown field: a person must act."""

    failure_class = "configuration"


class DataError(HubError):
    """One record cannot be processed; it goes to quarantine with this reason."""

    failure_class = "data"

    def __init__(self, message: str, *, field: str | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.field = field


def failure_class_of(exc: BaseException) -> str:
    """The failure class the run log and the console show for an exception."""
    return getattr(exc, "failure_class", "internal")


#: What an operator does about each failure class (console, alerts and runbook agree).
ADVICE: dict[str, str] = {
    "transient": "Airflow retries it with backoff; if it keeps failing, check the remote system's status.",
    "configuration": "Fix the Airflow connection or the mapping, then clear the failed task in the Airflow UI.",
    "data": "The run's reject rate is over the flow's threshold: look at this run's quarantine, the source "
            "itself is likely broken (a bad export, a changed field); fix it, then trigger the DAG again.",
    "internal": "An unexpected error: read the task log and hand it to the developers with the run id.",
}
