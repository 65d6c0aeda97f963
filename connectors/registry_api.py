"""What every business-registry connector (天眼查, 企查查) shares: the provider's answer codes
sorted into the hub's error classes, and the Connector protocol around ``lookup``.

A registry is looked up by key, never listed and never written: ``read`` takes a
``{"keys": [...]}`` cursor and yields one page per key.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterator, Sequence

from hub.errors import ConfigurationError, DataError, QuotaExceededError, RateLimitedError, TransientError
from hub.types import ConnectionInfo, Page, Record, RegistryRecord, WriteResult


class RegistryApi:
    """Base of a registry connector; subclasses set the code sets and implement ``lookup``."""

    conn: ConnectionInfo
    LABEL = "registry"                       # the provider's name in messages
    CODE_NAME = "code"                       # what the provider calls its answer code
    QUOTA: frozenset = frozenset()
    RATE_LIMITED: frozenset = frozenset()
    TRANSIENT: frozenset = frozenset()
    BAD_QUERY: frozenset = frozenset()
    CONFIG_HINT = "the credentials and the IP whitelist"

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.conn.secrets()

    def lookup(self, keyword: str) -> RegistryRecord | None:  # pragma: no cover - the subclass's job
        raise NotImplementedError

    def _error(self, code: Hashable, message: str, keyword: str) -> Exception:
        """The hub's error class for an answer code that is neither a result nor 'no data'."""
        msg = f"{self.LABEL} {self.CODE_NAME} {code} {message}".strip()
        if code in self.QUOTA:
            return QuotaExceededError(msg, secrets=self.secrets)
        if code in self.RATE_LIMITED:
            return RateLimitedError(msg, secrets=self.secrets)
        if code in self.TRANSIENT:
            return TransientError(msg, secrets=self.secrets)
        if code in self.BAD_QUERY:
            return DataError(f"{msg} (keyword {keyword!r})", field="keyword", secrets=self.secrets)
        return ConfigurationError(f"{msg}: check {self.CONFIG_HINT} of connection {self.conn.conn_id!r}",
                                  secrets=self.secrets)

    def check(self) -> None:
        """Configuration only, unless ``extra.check_keyword`` asks for one (billed) lookup."""
        keyword = self.conn.extra.get("check_keyword")
        if keyword:
            self.lookup(str(keyword))

    def read(self, stream: str, cursor: Any = None) -> Iterator[Page]:
        """Records by key only (``{"keys": [...]}``): a registry cannot be listed."""
        if not cursor or "keys" not in cursor:
            raise ConfigurationError(f"{self.LABEL} is looked up by key; read it with a {{'keys': [...]}} cursor")
        for key in cursor["keys"]:
            record = self.lookup(str(key))
            yield Page([record.as_dict()] if record else [], None)

    def write(self, stream: str, records: Sequence[Record]) -> list[WriteResult]:
        raise ConfigurationError(f"{self.LABEL} is a read-only registry; nothing can be written to it")
