"""What every shop platform module implements (``Platform``), what a window read returns
(``ShopWindow``), and the small pieces all five share: Asia/Shanghai time, window splitting and
the normalised order's states."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, NamedTuple, Protocol, Sequence, TypeVar

from connectors.http import HttpClient
from hub.errors import ConfigurationError, DataError, RateLimitedError, TransientError
from hub.types import ConnectionInfo, Record, WriteResult

#: the platforms speak Beijing time (+08:00, no DST)
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
#: the normalised order's ``state`` (connectors/shops contract)
STATES = ("unpaid", "paid", "shipped", "completed", "cancelled")
REFUND_STATUSES = ("none", "refunding", "refunded")


T = TypeVar("T")
#: a call the platform refused for its rate is sent again this many times, after growing pauses
RATE_ATTEMPTS = 6
RATE_BACKOFF_S = 0.5
RATE_MAX_WAIT_S = 10.0


class Pacer:
    """The one pace of a platform app's calls from this process: at most ``qps`` a second (the
    binding's ``qps`` option, else the platform's default), and a call the platform refused for
    its rate (an answer sent before any work was done, so safe for a write too) sent again after
    a pause that doubles. The platforms answer a too-fast app with an error in a 200 response,
    which the HTTP helper cannot see."""

    def __init__(self, qps: float | None) -> None:
        self.qps = qps
        self._lock = threading.Lock()
        self._next = 0.0
        self.refusals = 0

    def wait(self) -> None:
        if not self.qps:
            return
        with self._lock:
            pause = self._next - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self._next = max(self._next, time.monotonic()) + 1.0 / float(self.qps)

    def __call__(self, send: Callable[[], T], *, read: bool = False) -> T:
        """``read``: a read may be sent again after any transient failure too (an answer cut in
        half, which the HTTP helper hands on as text the platform module could not parse); a
        write only after a refusal for rate, which the platform answered before doing anything."""
        for attempt in range(1, RATE_ATTEMPTS + 1):
            self.wait()
            try:
                return send()
            except RateLimitedError:
                self.refusals += 1
                if attempt == RATE_ATTEMPTS:
                    raise
            except TransientError:
                if not read or attempt == RATE_ATTEMPTS:
                    raise
            time.sleep(min(RATE_MAX_WAIT_S, RATE_BACKOFF_S * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")


class Paced:
    """A platform whose calls go through its ``pace`` (a :class:`Pacer`); the seat's ``qps``
    option is set on it as ``qps``."""

    pace: Pacer
    page_size: int

    @property
    def qps(self) -> float | None:
        return self.pace.qps

    @qps.setter
    def qps(self, value: float | None) -> None:
        self.pace.qps = value


class Unreadable(NamedTuple):
    """An order the connector could not normalise: quarantined under its id when the fragment
    names one (the audit then counts it as held: stored with its reason, nothing lost), else as
    a fragment of the window (which then cannot agree)."""

    tid: str | None
    fragment: str
    reason: str

    @classmethod
    def of(cls, raw: Any, ident: Callable[[Any], Any], exc: Exception) -> "Unreadable":
        try:
            tid: str | None = tid_text(ident(raw))
        except Exception:  # noqa: BLE001 - no readable id: the fragment stands for itself
            tid = None
        return cls(tid, repr(raw)[:2000], str(exc))


@dataclass
class ShopWindow:
    """Orders modified in one window, with the platform's own total for it (the audit compares
    the two) and the fragments that could not be read (quarantine, never dropped)."""

    orders: list[Record]
    count: int
    bad: list[Unreadable] = field(default_factory=list)


class Platform(Protocol):
    key: str                      # taobao | jd | youzan | doudian | pdd
    max_window: timedelta | None  # None: not documented (the seat's default applies)

    def __init__(self, conn: ConnectionInfo, http: HttpClient) -> None: ...

    def window(self, start: datetime, end: datetime) -> ShopWindow: ...

    def count(self, start: datetime, end: datetime) -> int: ...

    def by_id(self, tids: Sequence[str]) -> list[Record]: ...

    def ship(self, record: Record) -> WriteResult: ...


def aware(dt: datetime, what: str = "time") -> datetime:
    """Refuse naive datetimes: a window in an unknown zone misses or doubles eight hours."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ConfigurationError(f"{what} {dt.isoformat()} has no timezone; shop windows need aware datetimes")
    return dt


def split(start: datetime, end: datetime, step: timedelta | None) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most ``step`` (None: one window)."""
    aware(start, "window start"), aware(end, "window end")
    if step is not None and step <= timedelta(0):
        raise ConfigurationError(f"window step {step} must be positive")
    at = start
    while at < end:
        nxt = end if step is None else min(end, at + step)
        yield at, nxt
        at = nxt


def shanghai_text(dt: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time (TOP, JOS, PDD's texts)."""
    return aware(dt).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def parse_shanghai(text: Any, what: str = "time") -> datetime:
    """A platform time (``yyyy-MM-dd HH:mm:ss`` in Beijing time, ISO text, or Unix seconds) as an
    aware datetime; garbage is a DataError naming the field."""
    if isinstance(text, (int,)) and not isinstance(text, bool):
        return datetime.fromtimestamp(text, SHANGHAI)
    s = str(text or "").strip()
    if s.isdigit():
        return datetime.fromtimestamp(int(s), SHANGHAI)
    try:
        dt = datetime.fromisoformat(s.replace("T", " ").replace("/", "-"))
    except ValueError:
        raise DataError(f"{what} {text!r} is not a time", field=what) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=SHANGHAI)


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 with the +08:00 offset (the normalised order's times)."""
    return None if dt is None else aware(dt).astimezone(SHANGHAI).isoformat()


def tid_text(value: Any) -> str:
    """An order id as text, whatever JSON type it came in (TOP sends tid as number or string)."""
    if value is None or value == "":
        raise DataError("order without an id", field="tid")
    if isinstance(value, float):
        raise DataError(f"order id {value!r} came as a float (parse JSON with parse_int/parse_float exact)",
                        field="tid")
    return str(value)


def loads(text: str, where: str) -> Any:
    """JSON with exact numbers: PDD and JOS send 元 amounts as JSON numbers, which float would
    round (``json.loads(..., parse_float=Decimal)``); a body that is not JSON is transient."""
    import json
    from decimal import Decimal

    from connectors.http import MalformedResponse
    try:
        return json.loads(text, parse_float=Decimal)
    except (TypeError, ValueError):
        raise MalformedResponse(f"{where}: answer is not JSON", body=(text or "")[:500]) from None


def page_numbers(total: int, page_size: int) -> list[int]:
    """Pages last to first (1-based): the platforms that sort by modified time descending lose
    orders to a forward walk while orders change (TOP, PDD: "必须采用倒序的分页方式")."""
    last = max(1, -(-int(total) // page_size))
    return list(range(last, 0, -1))
