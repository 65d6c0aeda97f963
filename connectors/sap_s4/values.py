"""OData V2 values as SAP's JSON format writes them, and the literals ``$filter`` takes.

V2 JSON (OData V2 "JSON Format" §2.2.6.3, as SAP Gateway answers it):
- ``Edm.DateTime``: ``"/Date(1704067200000)/"`` (ms since the epoch, no offset);
- ``Edm.DateTimeOffset``: ``"/Date(1704067200000+0000)/"`` (offset in minutes);
- ``Edm.Time``: ``"PT13H20M05S"`` (an ISO 8601 duration);
- ``Edm.Decimal`` and ``Edm.String``: JSON strings.

Reads hand the flows ISO text instead (``2024-01-01T00:00:00`` for a DateTime, with ``+00:00``
for a DateTimeOffset, ``13:20:05`` for a Time), which the mappings' ``datetime`` type parses.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

_DATE = re.compile(r"^/Date\((-?\d+)(?:([+-])(\d{4}))?\)/$")
_TIME = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.\d+)?S)?$")
EPOCH = datetime(1970, 1, 1)


def from_wire(value: Any) -> Any:
    """A JSON value as the hub's records carry it (dates as ISO text, everything else as is)."""
    if not isinstance(value, str) or len(value) < 3:
        return value
    m = _DATE.match(value)
    if m:
        moment = EPOCH + timedelta(milliseconds=int(m.group(1)))
        if m.group(2) is None:
            return moment.isoformat(timespec="seconds")
        # "+0000": the value is the UTC instant; the offset says where it was meant (kept as UTC)
        return moment.replace(tzinfo=timezone.utc).isoformat(timespec="milliseconds")
    m = _TIME.match(value) if value.startswith("PT") else None
    if m and any(m.groups()):
        h, mi, s = (int(g or 0) for g in m.groups())
        return f"{h:02d}:{mi:02d}:{s:02d}"
    return value


def parse_moment(text: Any) -> datetime | None:
    """An ISO date or date-time (as :func:`from_wire` renders) as an aware UTC datetime."""
    if not text or not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def combine(day: Any, clock: Any) -> datetime | None:
    """A DateTime's day and a Time (both as records carry them) as one moment."""
    moment = parse_moment(day)
    if moment is None:
        return None
    if isinstance(clock, str) and re.fullmatch(r"\d{2}:\d{2}:\d{2}", clock):
        h, m, s = (int(p) for p in clock.split(":"))
        return moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=h, minutes=m, seconds=s)
    return moment


def quote(value: Any) -> str:
    """An Edm.String literal: single quotes, an inner quote doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def datetime_literal(moment: datetime | date) -> str:
    """``datetime'2024-01-01T00:00:00'`` (Edm.DateTime: no offset)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return f"datetime'{moment.replace(tzinfo=None).isoformat(timespec='seconds')}'"


def datetimeoffset_literal(moment: datetime) -> str:
    """``datetimeoffset'2024-01-01T00:00:00.000Z'`` (Edm.DateTimeOffset, UTC)."""
    utc = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return f"datetimeoffset'{utc.isoformat(timespec='milliseconds')}Z'"


def time_literal(clock: time) -> str:
    """``time'PT13H20M05S'`` (Edm.Time)."""
    return f"time'PT{clock.hour:02d}H{clock.minute:02d}M{clock.second:02d}S'"


def to_wire(prop: str, value: Any, datetime_props: frozenset[str]) -> Any:
    """A value for a V2 JSON body: numbers as decimal text (Edm.Decimal and Edm.String are JSON
    strings), the Edm.DateTime properties the hub writes as ``/Date(<ms>)/``."""
    if isinstance(value, bool) or value is None:
        return value
    if prop in datetime_props:
        moment = parse_moment(value if isinstance(value, str) else value.isoformat())
        if moment is None:
            raise ValueError(f"{prop}: {value!r} is not a date")
        return f"/Date({int((moment - EPOCH.replace(tzinfo=timezone.utc)).total_seconds() * 1000)})/"
    if isinstance(value, (int, Decimal)):
        return f"{value:f}" if isinstance(value, Decimal) else str(value)
    if isinstance(value, float):
        return repr(value)
    return value
