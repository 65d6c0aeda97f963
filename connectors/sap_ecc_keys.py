"""SAP ECC keys and BAPI return rows: what every ECC module of the hub reads and writes alike.

Keys travel in SAP's internal form, which the BAPIs do not convert for a caller: customer
numbers by the ALPHA conversion (10 characters, a numeric number right-aligned with leading
zeros), material numbers by MATN1 (18 characters, the same rule, in ECC's default non-
lexicographic setting). Their output forms drop those zeros again, as SAP's screens show them;
a code that had leading zeros of its own before it became a material number (U8's ``0101001``
→ ``000000000000101001`` → ``101001``) cannot be told back from the number alone.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from hub.errors import DataError

ERROR_TYPES = ("E", "A")


def alpha(number: Any, width: int = 10) -> str:
    """SAP's ALPHA input conversion: a numeric key right-aligned with leading zeros to ``width``;
    anything else as it is (upper case, SAP keys are). Longer than ``width`` is a DataError."""
    text = str(number or "").strip()
    out = text.zfill(width) if text.isdigit() else text.upper()
    if len(out) > width:
        raise DataError(f"SAP key {text!r} is longer than {width} characters")
    return out


def matn1(code: Any) -> str:
    """MATN1 input conversion (ECC's 18-character material number)."""
    return alpha(code, 18)


def matn1_output(number: Any) -> str:
    """MATN1 / ALPHA output conversion: a numeric number without its leading zeros ("0" stays "0")."""
    text = str(number or "").strip()
    return (text.lstrip("0") or "0") if text.isdigit() else text


def messages_text(msgs: Sequence[Mapping[str, Any]], type_key: str = "TYPE", text_key: str = "MESSAGE",
                  id_key: str = "ID", number_key: str = "NUMBER") -> str:
    """BAPI return rows as one line: ``E V1 311: text; …``."""
    return "; ".join(f"{m.get(type_key, '')} {m.get(id_key, '')} {m.get(number_key, '')}".replace("  ", " ").strip()
                     + f": {m.get(text_key, '')}" for m in msgs)


def error_rows(msgs: Sequence[Mapping[str, Any]], type_key: str = "TYPE") -> list[Mapping[str, Any]]:
    """The rows of type E (error) or A (abort): SAP refused, whatever the HTTP status said."""
    return [m for m in msgs if str(m.get(type_key, "")).strip().upper() in ERROR_TYPES]
