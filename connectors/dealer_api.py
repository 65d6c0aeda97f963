"""The dealer ordering channel (经销商订货): the hub's own inbound order API for ordering systems that
have no connector of their own (a dealer portal such as 网单, a 伙伴云-style ordering app).

The ``dealer`` seat is the channel; each dealer is one Airflow connection the binding names under
the dealer's code (``options: {dealers: {D0001: dealer_d0001}}``): its password is the dealer's
signing key, its ``extra.erp_customer`` the ERP customer code the dealer buys as. The key never leaves the
connection; a dealer without one cannot sign.

**Signature** (docs/dealer_api.md). Every request carries

- ``X-Hub-Dealer``: the dealer's code;
- ``X-Hub-Timestamp``: Unix seconds when it was signed; more than ``max_skew_seconds`` (default
  300) from the hub's clock is refused as stale;
- ``X-Hub-Nonce``: 16 to 64 characters ``[A-Za-z0-9_-]``, never used twice by the dealer (the hub
  refuses a nonce it has seen: a replay);
- ``X-Hub-Signature``: lower-case hex HMAC-SHA256, keyed by the dealer's key, of the five lines
  ``METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body))`` (PATH with its query string, as sent;
  an empty body hashes as the empty string's SHA-256).

This is the scheme webhook providers use (a canonical request under HMAC-SHA256 with a
timestamp and nonce); it is the hub's own contract, so there is no vendor document to follow.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Mapping

from connectors.seat import Seat
from hub.errors import ConfigurationError, HubError
from hub.types import Binding

HEADERS = ("X-Hub-Dealer", "X-Hub-Timestamp", "X-Hub-Nonce", "X-Hub-Signature")
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
DEFAULT_SKEW_S = 300


class ForgedRequest(HubError):
    """Unknown dealer, missing header, or a signature that is not the dealer's."""


class StaleRequest(HubError):
    """Signed too long ago (or in the future) to be told from a replay."""


@dataclass(frozen=True)
class Dealer:
    code: str
    erp_customer: str
    name: str


def signed_text(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """What the signature covers (see the module docstring)."""
    return "\n".join((method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()))


class DealerSeat(Seat):
    """The channel in the ``dealer`` role."""

    def __init__(self, binding: Binding) -> None:
        super().__init__(binding)
        opts = binding.options or {}
        self.max_skew = float(opts.get("max_skew_seconds", DEFAULT_SKEW_S))
        dealers = {k: v for k, v in (opts.get("dealers") or {}).items() if k != "__line__"}
        if not dealers or not all(isinstance(v, str) and v for v in dealers.values()):
            raise ConfigurationError(f"{binding.where}: dealer channel {binding.name!r} needs options.dealers: "
                                     f"{{<dealer code>: <Airflow connection id>}}")
        self.dealers: dict[str, str] = {str(k): v for k, v in dealers.items()}

    def _connection(self, code: str):
        if self.binding.resolve is None:
            raise ConfigurationError(f"dealer binding {self.binding.name!r} was built without a connection resolver")
        return self.binding.resolve(self.dealers[code])

    def dealer(self, code: str) -> Dealer:
        """The dealer ``code`` signs as; ForgedRequest when the binding names no such dealer (the
        answer does not say which part was wrong)."""
        if code not in self.dealers:
            raise ForgedRequest(f"no dealer {code!r} on channel {self.binding.name}")
        conn = self._connection(code)
        customer = str((conn.extra or {}).get("erp_customer") or "").strip()
        if not conn.password or not customer:
            raise ConfigurationError(f"{self.binding.where}: dealer {code} (connection {conn.conn_id!r}) needs a password "
                                     f"(the dealer's signing key) and extra.erp_customer (the ERP customer code)")
        return Dealer(code, customer, str((conn.extra or {}).get("name") or code))

    def _key(self, code: str) -> bytes:
        return self._connection(code).password.encode()

    def verify(self, method: str, path: str, headers: Mapping[str, str], body: bytes, now: float) -> tuple[Dealer, str]:
        """(the dealer, its nonce) of a request whose signature is the dealer's and whose time is
        within the skew; the caller refuses a nonce already seen."""
        got = {h: str(headers.get(h) or headers.get(h.lower()) or "").strip() for h in HEADERS}
        missing = [h for h, v in got.items() if not v]
        if missing:
            raise ForgedRequest(f"missing {', '.join(missing)}")
        code, stamp, nonce, signature = (got[h] for h in HEADERS)
        dealer = self.dealer(code)
        if not NONCE.match(nonce):
            raise ForgedRequest("X-Hub-Nonce must be 16-64 characters of A-Z a-z 0-9 _ -")
        if not stamp.isdigit():
            raise ForgedRequest("X-Hub-Timestamp must be Unix seconds")
        want = hmac.new(self._key(code), signed_text(method, path, stamp, nonce, body).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, signature.lower()):
            raise ForgedRequest(f"signature is not dealer {code}'s")
        if abs(now - int(stamp)) > self.max_skew:
            raise StaleRequest(f"signed at {stamp}, {abs(now - int(stamp)):.0f} s from the hub's clock "
                               f"(at most {self.max_skew:.0f} s)")
        return dealer, nonce

    def order_rows(self, dealer: Dealer, order: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A dealer's order (the API's JSON, already shape-checked) as the flat header row and line rows
        the mapping specs ``dealer_order_to_sales_order`` / ``dealer_line_to_sales_order_line`` take.
        The line key is the dealer's own line number, so a re-sent order keeps its lines' ids."""
        no = str(order["order_no"])
        key = f"{dealer.code}:{no}"
        head = {"order_key": key, "order_no": no, "dealer": dealer.code, "erp_customer": dealer.erp_customer,
                "state": "cancelled" if order.get("cancelled") else "confirmed", "order_date": order.get("order_date"),
                "total": order.get("total"), "memo": order.get("memo"), "ship_to": order.get("ship_to"),
                "currency": order.get("currency") or "CNY", "seat": self.system, "system": self.system}
        lines = [{"line_key": f"{key}:{ln.get('line_no') or i}", "order_key": key, "product_code": ln.get("product_code"),
                  "quantity": ln.get("quantity"), "unit_price": ln.get("unit_price"), "discount": ln.get("discount") or "0",
                  "tax_rate": ln.get("tax_rate"), "amount": ln.get("amount"), "system": self.system}
                 for i, ln in enumerate(order.get("lines") or [], start=1)]
        return head, lines
