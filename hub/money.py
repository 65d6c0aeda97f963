"""Exact money: every amount is a ``Decimal`` from the moment it is read to the moment it is
sent, rounded half-up to the fen (0.01 元) only where an invoice line rounds.

Why not float: 0.5 × 5.35 = 2.675 is 2.67499… in binary, so ``round(…, 2)`` gives 2.67 where
a Chinese invoice shows 2.68; such cents add up over a hundred thousand order lines. A JSON
number arrives as a float, but its shortest repr is the decimal the sender wrote, so
``Decimal(str(value))`` recovers it exactly; no arithmetic ever happens in float.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

FEN = Decimal("0.01")
PRICE = Decimal("0.000001")   # unit prices: U8 keeps decimal(30,10); six places is what its forms show
HUNDRED = Decimal(100)


def dec(value: Any) -> Decimal | None:
    """A value as Decimal (None for missing); floats go through their shortest repr."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise InvalidOperation(f"not a number: {value!r}")
    text = str(value).strip().replace(",", "")
    return Decimal(text) if text else None


def fen(value: Decimal) -> Decimal:
    """Rounded half-up to the fen, as invoices and U8 round."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def to_fen_int(value: Decimal) -> int:
    """Integer fen (分), for sums and comparisons that must not drift."""
    return int(fen(value) * 100)


def text(value: Decimal | None, places: Decimal | None = None) -> str | None:
    """Plain decimal text for the wire (never exponent notation, never float)."""
    if value is None:
        return None
    if places is not None:
        value = value.quantize(places, rounding=ROUND_HALF_UP)
    out = format(value, "f")
    return out.rstrip("0").rstrip(".") if "." in out and places is None else out


@dataclass(frozen=True)
class LineAmounts:
    """One order line in U8's terms (价税合计 sum, 无税金额 money, 税额 tax ...)."""

    quantity: Decimal
    quoted_price: Decimal      # 报价: the agreed tax-inclusive price per unit, before discount
    discount: Decimal          # 折扣额
    tax_rate: Decimal          # percent, e.g. 13
    sum: Decimal               # 价税合计 = fen(quantity × quoted_price − discount)
    money: Decimal             # 无税金额 = fen(sum / (1 + rate))
    tax: Decimal               # 税额 = sum − money (so money + tax is exactly sum)
    tax_unit_price: Decimal    # 含税单价 = sum / quantity
    unit_price: Decimal        # 无税单价 = money / quantity


def line_amounts(quantity: Any, quoted_price: Any, tax_rate: Any, discount: Any = None) -> LineAmounts:
    """The amounts of one line, computed the way an invoice is: round the line, not the unit."""
    q, p, r = dec(quantity), dec(quoted_price), dec(tax_rate)
    d = dec(discount) or Decimal(0)
    if q is None or p is None or r is None:
        raise InvalidOperation("quantity, price and tax rate are required")
    total = fen(q * p - d)
    money = fen(total / (1 + r / HUNDRED))
    tax = total - money
    tax_unit = (total / q).quantize(PRICE, rounding=ROUND_HALF_UP) if q else Decimal(0)
    unit = (money / q).quantize(PRICE, rounding=ROUND_HALF_UP) if q else Decimal(0)
    return LineAmounts(q, p, d, r, total, money, tax, tax_unit, unit)


def wire(obj: Any) -> Any:
    """A payload with every Decimal as decimal text, ready for JSON (recursively)."""
    if isinstance(obj, Decimal):
        return text(obj)
    if isinstance(obj, dict):
        return {k: wire(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [wire(v) for v in obj]
    return obj


def json_number(value: Decimal) -> int | float:
    """A Decimal as a JSON number for APIs that take numbers (销售易 money fields). The float is
    only a carrier: its shortest repr, which is what goes on the wire, is exactly the decimal
    text; a value with more digits than a double carries is refused, not rounded."""
    if value == value.to_integral_value():
        return int(value)
    number = float(value)
    if Decimal(repr(number)) != value:
        raise ValueError(f"{value} has more digits than a JSON number carries exactly")
    return number


def json_numbers(obj: Any) -> Any:
    """A payload with every Decimal as an exact JSON number (recursively)."""
    if isinstance(obj, Decimal):
        return json_number(obj)
    if isinstance(obj, dict):
        return {k: json_numbers(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_numbers(v) for v in obj]
    return obj
