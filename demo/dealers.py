"""The demo's dealers: each dealer's ordering system (sandbox/dealer_portal.py) sends its orders to the
hub's dealer API before the first sales_orders run — mess included (an amount a fen off, an item the
ERP does not know, a re-send after a lost answer, a replayed request, a forged one) — and the closing
lines say, per dealer, what it was answered and where each order is now, checked against U8's own
order tables and the special prices it can read."""
from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from sandbox.dealer_portal import DealerPortal, catalogue, orders
from sandbox.harness import Sandbox, loopback

ORDERS_PER_DEALER = 5


@contextlib.contextmanager
def channel() -> Iterator[str]:
    """The dealer API (the app Airflow's API server mounts from plugins/hub_dealer_api.py) on loopback,
    at the same /dealer-api prefix."""
    from plugins.hub_dealer_api import URL_PREFIX, create_app

    with loopback(create_app(), URL_PREFIX) as base:
        yield base


def _portals(sb: Sandbox, base: str) -> dict[str, DealerPortal]:
    from flows import roles

    name = roles.seats("dealer")[0].name
    return {code: DealerPortal(base, name, code, d["key"]) for code, d in sb.credentials()["dealers"].items()}


def send(sb: Sandbox, base: str) -> str:
    """Every dealer's orders, then the mess; returns what the dealers were answered."""
    items = catalogue(Path(sb.u8_db))
    answers: Counter[str] = Counter()
    for code, portal in _portals(sb, base).items():
        batch = orders(code, items, ORDERS_PER_DEALER)
        for order in batch:
            r = portal.order(order)
            answers[f"{r.status_code} {r.json().get('outcome') or r.json().get('detail')}"] += 1
        again = portal.order(batch[0])                        # the answer was lost: sent again
        answers[f"{again.status_code} {again.json().get('outcome')} (a re-send)"] += 1
        portal.order(batch[3], nonce=f"demo-replay-{code}-0001")
        replay = portal.order(batch[3], nonce=f"demo-replay-{code}-0001")
        answers[f"{replay.status_code} replay refused"] += 1
        forged = DealerPortal(portal.base, portal.channel, code, "a-guessed-key").order(batch[4])
        answers[f"{forged.status_code} forged refused"] += 1
    return "dealer API answers: " + ", ".join(f"{k} ×{n}" for k, n in sorted(answers.items()))


def summary(sb: Sandbox, base: str, as_of: str | None = None) -> str:
    """Per dealer: where each order it sent stands, by the API's own answer, with U8's check."""
    import sqlite3

    items = catalogue(Path(sb.u8_db))
    con = sqlite3.connect(sb.u8_db)
    lines = []
    try:
        for code, portal in _portals(sb, base).items():
            where: Counter[str] = Counter()
            wrong = 0
            for order in orders(code, items, ORDERS_PER_DEALER):
                state: dict[str, Any] = portal.state(order["order_no"]).json()
                where[state["state"]] += 1
                if state["state"] == "in_erp":
                    held = con.execute("SELECT count(*) FROM SO_SOMain WHERE cSOCode = ? AND cCusCode = ?",
                                       (state["erp_order_no"], sb.credentials()["dealers"][code]["erp_customer"])).fetchone()
                    wrong += held[0] != 1
            prices = portal.special_prices(on=as_of).json()
            lines.append(f"dealer {code}: {sum(where.values())} orders sent: "
                         + ", ".join(f"{n} {s}" for s, n in sorted(where.items()))
                         + f"; U8 holds each order in_erp once under the dealer's customer: {'yes' if not wrong else f'NO ({wrong})'}"
                         + f"; {len(prices)} approved special prices readable")
    finally:
        con.close()
    return "\n".join(lines)
