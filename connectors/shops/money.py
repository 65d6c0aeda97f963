"""Exact money for the shops: 元 text ("12.30") and 分 integers (1230), never float.

TOP, JOS and 抖店 (amounts in 分) and PDD / 有赞 (元 text or numbers) disagree on units; every
platform module converts through here so a fen is never lost to binary floating point."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Iterable

from hub.errors import DataError

FEN = Decimal("0.01")


def yuan(value: Any, *, field: str | None = None) -> Decimal:
    """A 元 amount as Decimal from text, int or Decimal; a float or garbage is a DataError
    (a float already lost the fen before it reached us)."""
    if value is None or value == "":
        return Decimal("0.00")
    if isinstance(value, bool) or isinstance(value, float):
        raise DataError(f"money {value!r} arrived as {type(value).__name__}; parse JSON with parse_float=Decimal",
                        field=field)
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise DataError(f"money {value!r} is not a number", field=field) from None
    if not amount.is_finite():
        raise DataError(f"money {value!r} is not finite", field=field)
    if amount != amount.quantize(FEN):
        raise DataError(f"money {value!r} has more than two decimals (元 to the fen)", field=field)
    return amount.quantize(FEN)


def yuan_text(value: Any, *, field: str | None = None) -> str:
    """A 元 amount as normalised text with two decimals ("12.3" → "12.30")."""
    return f"{yuan(value, field=field):.2f}"


def fen_to_yuan(value: Any, *, field: str | None = None) -> str:
    """分 (integer, or integer text) → 元 text: 1230 → "12.30"."""
    if isinstance(value, bool) or isinstance(value, float):
        raise DataError(f"fen amount {value!r} arrived as {type(value).__name__}", field=field)
    try:
        fen = Decimal(str(value).strip()) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        raise DataError(f"fen amount {value!r} is not a number", field=field) from None
    if fen != fen.to_integral_value():
        raise DataError(f"fen amount {value!r} is not a whole number of 分", field=field)
    return f"{(fen / 100).quantize(FEN):.2f}"


def yuan_to_fen(value: Any, *, field: str | None = None) -> int:
    """元 (text, int or Decimal) → 分 integer: "12.30" → 1230."""
    return int(yuan(value, field=field) * 100)


def total(values: Iterable[Any]) -> str:
    """Σ of 元 amounts as 元 text."""
    return f"{sum((yuan(v) for v in values), Decimal('0.00')):.2f}"


def times(price: Any, quantity: Any) -> str:
    """Unit price × quantity as 元 text, rounded half-up to the fen (exact for 元 prices)."""
    return f"{(yuan(price) * Decimal(str(quantity))).quantize(FEN, rounding=ROUND_HALF_UP):.2f}"
