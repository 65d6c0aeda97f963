"""BAPI return messages (BAPIRET2 rows) as the ECC stand-in writes them.

Message class and number are given only where public material shows them for the message; the
others carry an empty ID and number 000 so a client that keys on them fails here as it would be
wrong there (clients should read TYPE: E and A are errors).

| text | ID / NUMBER | evidence |
|---|---|---|
| ``SALES_HEADER_IN has been processed successfully`` (V1 VBAKKOM) | V4 233 | captured answers, fs:8972743516, fs:13704414604 |
| ``SALES_ITEM_IN has been processed successfully`` (V1 VBAPKOM, V2 item) | V4 233 | fs:8972743516 |
| ``Standard Order <n> has been saved`` | V1 311 | client code keying on V1 311 for the success text, fs:13538193161 |
| ``Sold-to party <n> not maintained for sales area <org>/<ch>/<div>`` | unverified | users' error logs, fs:6175713786, fs:69191584403 |
| ``Material <m> is not defined for sales org.<org>, distr.chan.<ch>, language EN`` | unverified | users' error logs, fs:6175713786, fs:20746773084 |
| ``Please enter sold-to party or ship-to party`` | unverified | an SAP error answer, fs:40180663122 |
| ``Sales document  was not changed`` (after the errors) | unverified | the same answer, fs:40180663122 |
| everything else (quantity, item number, document type, customer create, GETDETAIL2) | ours | none found |
"""

from __future__ import annotations

from typing import Any

#: BAPIRET2-SYSTEM: the logical system of the answering client (``<SID>CLNT<client>``, as
#: PEDCLNT039 / S4DCLNT120 in public answers).
LOGICAL_SYSTEM = "ECCCLNT100"


def ret2(kind: str, text: str, msg_id: str = "", number: str = "000", v: tuple[str, ...] = (),
         parameter: str = "", row: int = 0, field: str = "") -> dict[str, Any]:
    """One BAPIRET2 row."""
    v = (*v, "", "", "", "")[:4]
    return {"TYPE": kind, "ID": msg_id, "NUMBER": number, "MESSAGE": text[:220], "LOG_NO": "", "LOG_MSG_NO": "000000",
            "MESSAGE_V1": v[0][:50], "MESSAGE_V2": v[1][:50], "MESSAGE_V3": v[2][:50], "MESSAGE_V4": v[3][:50],
            "PARAMETER": parameter, "ROW": row, "FIELD": field, "SYSTEM": LOGICAL_SYSTEM}


def external(number: str) -> str:
    """A number as SAP prints it in a message text (ALPHA output: leading zeros of a numeric key dropped)."""
    return (number.lstrip("0") or "0") if number.isdigit() else number


def failed(rows: list[dict[str, Any]]) -> bool:
    """An error or abort row is present."""
    return any(r["TYPE"] in ("E", "A") for r in rows)


def not_changed() -> dict[str, Any]:
    """The closing row of a refused create ("Sales document &1 was not changed" with &1 empty)."""
    return ret2("E", "Sales document  was not changed")
