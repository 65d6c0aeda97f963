"""Types shared across the layers: connection settings, pages read, write outcomes.

Connectors implement :class:`Connector`; the flows and the step runner only ever see
these types, so a new system is one new module that fills them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from hub.errors import ConfigurationError

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
            if isinstance(value, str) and any(w in key.lower() for w in ("secret", "token", "password", "key", "session")):
                out.append(value)
        return tuple(out)

    def http_retry(self) -> dict[str, Any]:
        """The HTTP helper's retry settings this connection's extra sets (``http_max_attempts``,
        ``http_backoff`` in seconds, doubled per attempt); absent, the helper's defaults (6, 0.2)."""
        out: dict[str, Any] = {}
        if self.extra.get("http_max_attempts") is not None:
            out["max_attempts"] = max(1, int(self.extra["http_max_attempts"]))
        if self.extra.get("http_backoff") is not None:
            out["backoff"] = max(0.0, float(self.extra["http_backoff"]))
        return out

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
    #: created | updated | unchanged | failed (refused: quarantined) | deferred (the target could
    #: not be reached for it after the HTTP helper's retries: nothing is booked and the step fails
    #: transiently after the other records, so its retry sends only this one again)
    status: str
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


class Vault(Protocol):
    """The hub's encrypted state (hub/vault.py): what a system hands out once and a connector must
    keep, not in code or a connection (the 泛微 registration's secrit and spk)."""

    def get(self, name: str) -> dict[str, Any] | None: ...

    def put(self, name: str, value: Mapping[str, Any]) -> None: ...


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


# --- roles and bindings (docs/adr/0004-roles-and-bindings.md) --------------------------------------

ROLES = ("crm", "erp", "shop", "oa", "registry", "bank", "dealer")


@dataclass(frozen=True)
class SystemCard:
    """What a system is, as its connector package declares it: a human label, the roles it
    can play, its adapter (``module:Class``) and the connections a binding must name."""

    label: str
    roles: tuple[str, ...]
    adapter: str
    needs: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    #: the flows it takes part in (``receipts`` …): read where building the adapter would cost too
    #: much, e.g. a DAG file offering a flow only when the bound ERP supports it
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Binding:
    """One seat of a deployment: which system plays ``role``, under which xref name, through
    which Airflow connections. ``where`` is the bindings file and line it came from, for errors.

    ``connection`` resolves a connection by its purpose in the binding (``"odbc"``,
    ``"openapi"``, ``"api"``); the flows inject it (hub.connections.get), so an adapter never
    reads the environment itself.
    """

    role: str
    name: str
    system: str
    label: str
    connections: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""
    resolve: Any = field(default=None, repr=False, compare=False)

    def connection(self, purpose: str) -> ConnectionInfo:
        """The Airflow connection bound for ``purpose``; a ConfigurationError naming the line if unbound."""
        conn_id = self.connections.get(purpose)
        if not conn_id:
            raise ConfigurationError(f"{self.where}: {self.role} binding {self.name!r} ({self.system}) names no "
                                     f"{purpose!r} connection (connections: {{{purpose}: <airflow conn id>}})")
        if self.resolve is None:
            raise ConfigurationError(f"{self.role} binding {self.name!r} was built without a connection resolver")
        return self.resolve(conn_id)

    def has(self, purpose: str) -> bool:
        return bool(self.connections.get(purpose))


@dataclass
class OrderState:
    """What the ERP says about sales orders the hub sent (by the ERP's document number):
    who approved or closed them, what was shipped. Read by the ERP adapter's ``order_state``."""

    approved: dict[str, str] = field(default_factory=dict)   # number → "verified (审核) by X on D"
    closed: dict[str, str] = field(default_factory=dict)     # number → "closed by X on D" / "rejected …"
    shipped: dict[str, Any] = field(default_factory=dict)    # number → Decimal quantity shipped


@dataclass
class CreditFacts:
    """One ERP customer's credit as the ERP keeps it (远东: in front of sales before they promise):
    the limit (None: the ERP does not control this customer's credit), open receivables, the part
    of them past the customer's payment terms, and orders in the ERP not invoiced yet. Decimal yuan."""

    limit: Any = None
    receivables: Any = 0
    overdue: Any = 0
    open_orders: Any = 0
    terms_days: int | None = None

    @property
    def available(self) -> Any:
        """limit − open receivables − open orders (None without a limit)."""
        return None if self.limit is None else self.limit - self.receivables - self.open_orders


@runtime_checkable
class ErpAdapter(Protocol):
    """What the flows ask of the bound ERP, by meaning (docs/extending.md "Adding an ERP").

    Streams and mapping names come from ``mapping``; documents change through ``lifecycle``:
    the phases the ERP needs to apply a flow's ``add`` / ``replace`` / ``cancel`` (U8 closes and
    re-adds a changed order; SAP changes it in place)."""

    binding: Binding

    @property
    def system(self) -> str: ...        # the xref name of this seat (the binding's name)

    @property
    def label(self) -> str: ...         # how outcomes name it ("created in U8")

    def mapping(self, purpose: str) -> str:
        """The mapping spec for ``purpose`` (``customer.in``, ``sales_order.out`` …)."""

    def supports(self, capability: str) -> bool:
        """Whether this ERP takes part in a capability (``receipts`` …)."""

    def connector(self, columns: Mapping[str, Sequence[str]] | None = None, write: bool = False) -> Connector:
        """The protocol connector, reading ``columns`` per stream; ``write`` also opens the write side."""

    def customers_by_tax_number(self, usccs: Sequence[str]) -> dict[str, list[str]]:
        """USCC → the ERP's customer numbers holding it (the last check before a create)."""

    def credit(self, customer_codes: Sequence[str], as_of: date) -> dict[str, CreditFacts]:
        """The ERP's credit facts of these customers (its own numbers) on ``as_of``."""

    def order_state(self, numbers: Sequence[str]) -> OrderState:
        """The ERP's state of its sales orders ``numbers`` (set-based)."""

    def lifecycle(self, op: str) -> tuple[str, ...]:
        """The write phases of ``op``: ``("close", "add")`` for a U8 replace, ``("change",)`` for SAP."""

    def refusal(self, op: str, number: str, state: OrderState) -> str | None:
        """Why the ERP's state forbids ``op`` on order ``number``; None when allowed."""

    def dispatch_lines(self, dispatch_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """The lines of the ERP's deliveries ``dispatch_keys``."""

    def order_lines(self, line_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """Sales order lines by the ERP's line key (what a delivery line points at)."""

    def receipt_lines(self, receipt_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """The lines of the ERP's receipts ``receipt_keys`` (what is still open on each)."""

    def invoices(self, invoice_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """Sales invoice headers by the ERP's invoice key (those whose lines changed under them)."""

    def invoice_lines(self, invoice_keys: Sequence[Any], columns: Sequence[str]) -> list[Record]:
        """The lines of the ERP's sales invoices ``invoice_keys`` (totals and what is settled)."""

    def idempotency_key(self, hub_id: str, revision: int) -> str:
        """The key that makes the n-th create of one hub order safe to repeat (U8 biz_id, SAP
        PurchaseOrderByCustomer / PURCH_NO_C)."""

    order_stream: str       # the connector stream sales orders are written to
    customer_stream: str    # … and customers

    def order_document(self, phase: str, hub_id: str, number: str | None, body: Mapping[str, Any] | None,
                       key: str | None) -> Record:
        """The record the connector writes for one lifecycle phase of one order."""

    def customer_document(self, hub_id: str, op: str, number: str | None, body: Mapping[str, Any]) -> Record:
        """The record the connector writes to create (``add``) or change (``edit``) a customer."""

    def receipt_document(self, hub_id: str, body: Mapping[str, Any], amount_fen: int, invoiced_fen: int) -> Record:
        """The record the connector writes to book one posted bank receipt (``mapping("receipt.out")``'s
        stream), ``invoiced_fen`` of its ``amount_fen`` against invoices, the rest in advance."""


# --- alerts (flows/alerts.py decides, connectors/alert_channels.py carries) -------------------------

@dataclass(frozen=True)
class AlertMessage:
    """One alert as channels carry it: a one-line title and a Markdown body."""

    title: str
    text: str
    link: str = ""  # the console page with the whole alert: where a channel that cuts points to


class AlertChannel(Protocol):
    """Where alerts go (a mail server, a chat robot): built from one Airflow connection."""

    name: str

    def secrets(self) -> tuple[str, ...]: ...

    def send(self, message: AlertMessage) -> None: ...
