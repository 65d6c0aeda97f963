"""Money as integer fen (分), parsed exactly from what finance and banks type.

A bank export writes ``12,345.60``, ``１２，３４５．６０`` (full-width, in GBK files), ``¥12345.6``
or ``(1,234.00)``; a U8 ODBC read gives a float (SQLite driver) or a Decimal (SQL Server).
Every path goes through ``Decimal`` built from text, never through float arithmetic, and an
amount with a non-zero third decimal is refused rather than rounded: a bank never sends one.
"""
from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

_NOISE = re.compile(r"[\s,'’_]|人民币|元|RMB|CNY|¥|￥")
_PARENS = re.compile(r"^\((.*)\)$")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")


class AmountError(ValueError):
    """Text that is not an amount of money to the fen."""


def to_fen(value: Any) -> int | None:
    """Integer fen of a number or an amount as typed; None for blank; AmountError if not money."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise AmountError(f"{value!r} is not an amount")
    if isinstance(value, int):
        return value * 100
    if isinstance(value, float):
        if value != value:
            return None
        text = repr(value)  # the shortest repr is the decimal the source held (12345.6 → '12345.6')
    elif isinstance(value, Decimal):
        text = format(value, "f")
    else:
        text = unicodedata.normalize("NFKC", str(value)).strip()
        if not text:
            return None
        text = _NOISE.sub("", text.upper()).replace("－", "-")
        m = _PARENS.match(text)
        if m:  # accounting notation: (1,234.00) is negative
            text = "-" + m.group(1)
        if not _NUMBER.match(text):
            raise AmountError(f"{value!r} is not an amount")
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise AmountError(f"{value!r} is not an amount") from None
    fen = dec * 100
    if fen != fen.to_integral_value():
        raise AmountError(f"{value!r} has more than two decimals")
    return int(fen)


def yuan(fen: int | None) -> Decimal | None:
    """Fen as an exact Decimal yuan amount (for workbooks and wire formats)."""
    return None if fen is None else Decimal(int(fen)).scaleb(-2)


def show(fen: int | None) -> str:
    """¥1,234.56 for reasons and reports."""
    if fen is None:
        return "-"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"
