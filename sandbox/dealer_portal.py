"""A dealer's ordering system (德力西's 网单, a 伙伴云-style app) as a client of the hub's dealer API:
it signs each request the way docs/dealer_api.md publishes (written from that text, not from the
hub's verifier) and sends the orders a dealer's staff would key, mess included.

The mess, drawn from the seed: a line whose amount is a fen off (the hub refuses it with the
suite's reason), a product code the ERP does not know (the order waits for it), the same order
sent again after a lost answer (unchanged), an order changed and re-sent, and a cancellation.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import sqlite3
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests


class DealerPortal:
    """One dealer's signed calls to ``{base}/{channel}/v1/…``."""

    def __init__(self, base: str, channel: str, code: str, key: str) -> None:
        self.base, self.channel, self.code, self.key = base.rstrip("/"), channel, code, key

    def headers(self, method: str, path: str, body: bytes, stamp: int | None = None,
                nonce: str | None = None) -> dict[str, str]:
        stamp = int(time.time()) if stamp is None else stamp
        nonce = nonce or secrets.token_hex(12)
        text = f"{method}\n{path}\n{stamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
        return {"X-Hub-Dealer": self.code, "X-Hub-Timestamp": str(stamp), "X-Hub-Nonce": nonce,
                "X-Hub-Signature": hmac.new(self.key.encode(), text.encode(), hashlib.sha256).hexdigest(),
                "Content-Type": "application/json"}

    def path(self, tail: str) -> str:
        """The path the request is sent to and signed with: the base URL's own path (the
        /dealer-api mount) included."""
        return f"{urlsplit(self.base).path}/{self.channel}/v1/{tail}"

    def call(self, method: str, tail: str, payload: Any = None, **sign: Any) -> requests.Response:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        path = self.path(tail)
        origin = urlsplit(self.base)
        return requests.request(method, f"{origin.scheme}://{origin.netloc}{path}", data=body or None,
                                headers=self.headers(method, path, body, **sign), timeout=30)

    def order(self, order: dict[str, Any], **sign: Any) -> requests.Response:
        return self.call("POST", "orders", order, **sign)

    def state(self, order_no: str) -> requests.Response:
        return self.call("GET", f"orders/{order_no}")

    def special_prices(self, on: str | None = None) -> requests.Response:
        return self.call("GET", "special-prices" + (f"?on={on}" if on else ""))


def _fen(v: Decimal) -> Decimal:
    return v.quantize(Decimal("0.01"), ROUND_HALF_UP)


def catalogue(u8_db: Path) -> list[tuple[str, Decimal, str]]:
    """(code, list price, tax rate) of the U8 items on sale, from the stand-in's own tables."""
    con = sqlite3.connect(u8_db)
    try:
        rows = con.execute("SELECT cInvCode, iInvSPrice, iTaxRate FROM Inventory WHERE bSale = 1 AND dEDate IS NULL "
                           "AND iInvSPrice > 0 ORDER BY cInvCode").fetchall()
    finally:
        con.close()
    # a dealer invoices at today's rates, whatever an old item card still says (17 % ended in 2018)
    return [(code, _fen(Decimal(str(price))), str(int(rate)) if int(rate or 0) in (13, 9, 6, 3, 1, 0) else "13")
            for code, price, rate in rows]


def orders(code: str, items: list[tuple[str, Decimal, str]], n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` orders of dealer ``code``: mostly good, with one amount a fen off and one unknown item."""
    rng = random.Random(f"dealer-{code}-{seed}")
    out = []
    for i in range(1, n + 1):
        lines = []
        for ln, (item, price, rate) in enumerate(rng.sample(items, k=min(len(items), rng.randint(1, 3))), start=1):
            qty = Decimal(rng.choice([1, 2, 5, 10, 20]))
            amount = _fen(qty * price)
            lines.append({"line_no": ln, "product_code": item, "quantity": str(qty), "unit_price": str(price),
                          "tax_rate": rate, "amount": str(amount)})
        out.append({"order_no": f"WD{code[1:]}-{seed:02d}{i:04d}", "memo": rng.choice([None, "急单", "月底前到货"]),
                    "ship_to": rng.choice([None, "上海市闵行区莘庄工业区申富路 88 号 仓库收货 王工 13916230045"]),
                    "total": str(sum(Decimal(ln["amount"]) for ln in lines)), "lines": lines})
    if n >= 3:
        out[1]["lines"][0]["amount"] = str(Decimal(out[1]["lines"][0]["amount"]) + Decimal("0.01"))  # a fen off
        out[1]["total"] = str(sum(Decimal(ln["amount"]) for ln in out[1]["lines"]))
        out[2]["lines"][0]["product_code"] = "ZZ-9" + out[2]["lines"][0]["product_code"][-3:]   # not in the ERP
    return out
