"""Types shared across the layers: connection settings, pages read, write outcomes.

Connectors implement :class:`Connector`; the flows and the step runner only ever see
these types, so a new system is one new module that fills them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Iterator, Mapping, Protocol, Sequence, runtime_checkable

Record = dict[str, Any]


@dataclass(frozen=True)
class ConnectionInfo:
    """What a connector needs to reach one system; built from an Airflow connection."""

    conn_id: str
    host: str = ""
    port: int | None = None
    schema: str = ""
    login: str = ""
    password: str = field(default="", repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    conn_type: str = ""

    def secrets(self) -> tuple[str, ...]:
        """Every value of this connection that must never reach a log."""
        out = [self.password] if self.password else []
        for key, value in self.extra.items():
            if isinstance(value, str) and any(w in key.lower() for w in ("secret", "token", "password", "key")):
                out.append(value)
        return tuple(out)

    def base_url(self) -> str:
        """``scheme://host[:port]`` from host (which may carry its own scheme) and port."""
        host = self.host.rstrip("/")
        if "://" not in host:
            host = f"{self.extra.get('scheme', 'https')}://{host}"
        if self.port and host.count(":") < 2:
            host = f"{host}:{self.port}"
        return host


@dataclass
class Page:
    """One page of a read: its records and the cursor that is safe to resume from after it.

    ``cursor`` is only a candidate: the flow commits it as a watermark after the page's
    records are stored. ``bad`` holds raw fragments the connector could not parse, with
    the reason, so they go to quarantine instead of vanishing.
    """

    records: list[Record]
    cursor: Any = None
    bad: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class WriteResult:
    """Outcome of writing one record to a system."""

    key: str
    status: str  # created | updated | unchanged | failed
    native_key: str | None = None
    error: str | None = None
    error_class: str | None = None


@runtime_checkable
class Connector(Protocol):
    """The one protocol every connector implements."""

    system: str

    def check(self) -> None:
        """Prove the connection works (auth, reachability); raise ConfigurationError if not."""

    def read(self, stream: str, cursor: Any = None) -> Iterator[Page]:
        """Yield pages of ``stream`` changed since ``cursor`` (None: everything)."""

    def write(self, stream: str, records: Sequence[Record]) -> list[WriteResult]:
        """Write records idempotently; one result per record, in order."""


@runtime_checkable
class Census(Protocol):
    """A target that can count its records by the natural key a create is recognised by."""

    system: str

    def census(self, stream: str, records: Sequence[Record]) -> dict[str, int]:
        """Records the target holds per natural-key value of ``records`` (0 where none)."""


#: Registry status words, most specific first: (word in the registry's text, normalised status, active).
#: "吊销，已注销" is a cancelled company (已注销 before 吊销); "吊销，未注销" is a revoked one
#: (吊销 before 注销).
_STATUS_RULES: tuple[tuple[str, str, bool], ...] = (
    ("已注销", "注销", False), ("吊销", "吊销", False), ("注销", "注销", False), ("撤销", "撤销", False),
    ("责令关闭", "责令关闭", False), ("清算", "清算", False), ("停业", "停业", False), ("歇业", "停业", False),
    ("迁出", "迁出", True), ("在业", "在业", True), ("存续", "存续", True), ("开业", "存续", True),
    ("在营", "存续", True), ("在册", "存续", True), ("正常", "存续", True),
)


@dataclass
class RegistryRecord:
    """One company as a business registry (天眼查, 企查查) reports it, in one provider-neutral shape.

    ``status`` is the registry's own Chinese word, normalised (存续, 在业, 注销, 吊销, 迁出, 停业 …)
    so flows can compare providers; ``raw`` keeps the provider's answer as it came.
    """

    legal_name: str
    uscc: str | None
    status: str
    active: bool
    legal_representative: str | None = None
    registered_capital: str | None = None
    address: str | None = None
    history_names: list[str] = field(default_factory=list)
    established: date | None = None
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @staticmethod
    def normalise_status(text: str | None) -> tuple[str, bool]:
        """(status, active) for a registry's status text, e.g. "存续（在营、开业、在册）" → ("存续", True).

        Text we do not know is kept as it is and counted as not active: a person looks
        before such a company reaches the ERP.
        """
        value = (text or "").strip()
        for word, status, active in _STATUS_RULES:
            if word in value:
                return status, active
        return value, False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the date as ISO text) for the registry cache."""
        out = asdict(self)
        out["established"] = self.established.isoformat() if self.established else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RegistryRecord":
        values = dict(data)
        est = values.get("established")
        values["established"] = date.fromisoformat(est) if isinstance(est, str) and est else None
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})
