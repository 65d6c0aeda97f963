"""The ``shop`` seat (connectors/shops contract): picks the platform module by the binding's
system, keeps windows within the platform's limit, builds the one HttpClient with the
connection's secrets, and offers orders by window, the platform's counts, re-reads by id,
shipments back and push verification to the flows (which import no connector)."""
from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from typing import Any, Iterator, Mapping, Sequence

from connectors.http import HttpClient, write_each
from connectors.seat import Seat
from connectors.shops import carriers
from connectors.shops.platform import Platform, ShopWindow, aware, split
from hub.errors import ConfigurationError, DataError, HubError, TransientError, failure_class_of
from hub.types import Binding, Page, Record, WriteResult

__all__ = ["ShopSeat", "ShopWindow"]

PLATFORMS = ("taobao", "jd", "youzan", "doudian", "pdd")
#: the window where the platform documents none (JOS, 有赞): configurable by window_minutes
DEFAULT_WINDOW = timedelta(minutes=60)
DEFAULT_OVERLAP = timedelta(minutes=10)
#: how far behind now the last window closes: a platform indexes a change a little after it happened
DEFAULT_LAG = timedelta(minutes=1)


class ShopSeat(Seat):
    """A shop in the ``shop`` role; one per binding (two shops are two seats)."""

    def __init__(self, binding: Binding) -> None:
        super().__init__(binding)
        if binding.system not in PLATFORMS:
            raise ConfigurationError(f"{binding.where}: shop binding {binding.name!r}: no shop platform "
                                     f"{binding.system!r} (known: {', '.join(PLATFORMS)})")
        self.platform = binding.system
        opts = binding.options or {}
        customer = opts.get("erp_customer")
        if customer in (None, ""):
            raise ConfigurationError(f"{binding.where}: shop binding {binding.name!r} ({self.platform}) needs "
                                     f"options.erp_customer: the ERP customer code its orders are sold to")
        self.erp_customer = str(customer)
        self._module = importlib.import_module(f"connectors.shops.{self.platform}")
        cls = self._module.PLATFORM
        limit: timedelta | None = cls.max_window
        self.window = _minutes(opts, "window_minutes", limit or DEFAULT_WINDOW, binding)
        if limit is not None and self.window > limit:
            raise ConfigurationError(f"{binding.where}: shop binding {binding.name!r}: window_minutes "
                                     f"{self.window.total_seconds() / 60:g} exceeds {self.platform}'s documented "
                                     f"limit of {limit.total_seconds() / 60:g} minutes")
        self.overlap = _minutes(opts, "overlap_minutes", DEFAULT_OVERLAP, binding, zero_ok=True)
        self.lag = _minutes(opts, "lag_minutes", DEFAULT_LAG, binding, zero_ok=True)
        self.qps = opts.get("qps")
        self.page_size = _page_size(opts, cls.page_size, binding)
        self._impl: Platform | None = None

    # -- the platform, built once -------------------------------------------------------------
    @property
    def impl(self) -> Platform:
        if self._impl is None:
            conn = self.binding.connection("api")
            http = HttpClient(conn.base_url(), secrets=conn.secrets(), **conn.http_retry())
            self._impl = self._module.PLATFORM(conn, http)
            if self.qps is not None and hasattr(self._impl, "qps"):
                self._impl.qps = float(self.qps)
            self._impl.page_size = self.page_size
        return self._impl

    # -- reads ---------------------------------------------------------------------------------
    def windows(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """[start, end) in windows of the seat's size (≤ the platform's limit)."""
        return split(aware(start, "start"), aware(end, "end"), self.window)

    def orders(self, start: datetime, end: datetime) -> ShopWindow:
        """Orders modified in [start, end) with full details; ``count`` is the platform's own total."""
        found: dict[str, Record] = {}
        count, bad = 0, []
        for a, b in self.windows(start, end):
            w = self.impl.window(a, b)
            count += w.count
            bad.extend(w.bad)
            for order in w.orders:
                have = found.get(order["tid"])
                if have is None or str(order.get("modified") or "") >= str(have.get("modified") or ""):
                    found[order["tid"]] = order
        return ShopWindow(list(found.values()), count, bad)

    def count(self, start: datetime, end: datetime) -> int:
        return sum(self.impl.count(a, b) for a, b in self.windows(start, end))

    def orders_by_id(self, tids: Sequence[str]) -> list[Record]:
        return self.impl.by_id([str(t) for t in tids]) if tids else []

    def carrier_code(self, carrier_name: str) -> str | None:
        """carriers.yaml's code, else the platform module's own lookup (``carrier_code`` where it has
        one: e.g. the connection's extra.carrier_codes for 抖店 / 有赞 / JOS)."""
        code = carriers.code(self.platform, carrier_name)
        if code is None and hasattr(self.impl, "carrier_code"):
            code = self.impl.carrier_code(carrier_name)
        return code

    def connector(self, write: bool = False) -> "ShopConnector":
        return ShopConnector(self, write)

    # -- pushes (connectors/shops/push.py) ------------------------------------------------------
    def verify_push(self, headers: Mapping[str, str], body: bytes, now: datetime) -> list:
        """Every message of one push (抖店 sends several in one body), as push.verify_all gives them;
        flows/shop_pushes.py stores each."""
        from connectors.shops import push
        return push.verify_all(self.platform, headers, body, self.binding.connection("api"), now)

    def push_answer(self, ok: bool) -> tuple[int, dict]:
        from connectors.shops import push
        return push.answer(self.platform, ok)


class ShopConnector:
    """``hub.types.Connector`` over a shop seat: ``read("orders", cursor)`` pages windows from the
    cursor (an aware datetime) to now; ``write("shipment", records)`` sends shipments."""

    def __init__(self, seat: ShopSeat, write: bool) -> None:
        self.seat = seat
        self.system = seat.system
        self.writable = write

    def check(self) -> None:
        now = datetime.now().astimezone()
        self.seat.impl.count(now - timedelta(minutes=1), now)

    def read(self, stream: str, cursor: Any = None) -> Iterator[Page]:
        if stream != "orders":
            raise ConfigurationError(f"{self.seat.label}: no stream {stream!r} (shops read 'orders')")
        if not isinstance(cursor, datetime):
            raise ConfigurationError(f"{self.seat.label}: a shop read starts at an aware datetime, got {cursor!r}")
        end = datetime.now().astimezone()
        for a, b in self.seat.windows(cursor, end):
            w = self.seat.impl.window(a, b)
            yield Page(w.orders, cursor=b, bad=[(u.tid or a.isoformat(), u.fragment) for u in w.bad])

    def write(self, stream: str, records: Sequence[Record]) -> list[WriteResult]:
        if not self.writable:
            raise ConfigurationError(f"{self.seat.label}: connector built read-only; use connector(write=True)")
        if stream != "shipment":
            raise ConfigurationError(f"{self.seat.label}: no write stream {stream!r} (shops take 'shipment')")
        out = []
        for rec in records:
            key = str(rec.get("_key"))
            if self.seat.carrier_code(str(rec.get("carrier") or "")) is None:
                out.append(WriteResult(key, "failed", error=carriers.unknown(self.seat.platform, str(rec.get("carrier"))),
                                       error_class="configuration"))
                continue
            # a send whose answer was lost may have applied: it is deferred (never "failed"), and
            # the platform's repeat check (tid + tracking number already held) answers the
            # step's retry unchanged or created
            out.append(write_each(key, lambda rec=rec: self._ship(rec)))
        return out

    def _ship(self, rec: Record) -> WriteResult:
        """A refusal other than the record's own (a platform setting) fails it with its class."""
        try:
            return self.seat.impl.ship(rec)
        except (TransientError, DataError):
            raise
        except HubError as exc:
            return WriteResult(str(rec.get("_key")), "failed", error=str(exc), error_class=failure_class_of(exc))


def _page_size(opts: Mapping[str, Any], most: int, binding: Binding) -> int:
    """Orders per list page: the platform's most unless the binding asks for fewer (smaller pages
    are more calls, each answered sooner)."""
    if opts.get("page_size") in (None, ""):
        return most
    try:
        value = int(opts["page_size"])
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= most:
        raise ConfigurationError(f"{binding.where}: shop binding {binding.name!r}: page_size {opts['page_size']!r} "
                                 f"must be a whole number from 1 to {most} ({binding.system}'s most)")
    return value


def _minutes(opts: Mapping[str, Any], key: str, default: timedelta, binding: Binding,
             zero_ok: bool = False) -> timedelta:
    if opts.get(key) in (None, ""):
        return default
    try:
        value = float(opts[key])
    except (TypeError, ValueError):
        raise ConfigurationError(f"{binding.where}: shop binding {binding.name!r}: {key} {opts[key]!r} is not a "
                                 f"number of minutes") from None
    if value < 0 or (value == 0 and not zero_ok):
        raise ConfigurationError(f"{binding.where}: shop binding {binding.name!r}: {key} must be positive")
    return timedelta(minutes=value)
