"""The dealer ordering channel: a signed order API for ordering systems without a connector.

``POST {prefix}/{seat}/v1/orders`` takes one dealer order (JSON, schema ``DealerOrder``; the HTTP
surface and its OpenAPI document are plugins/hub_dealer_api.py's, served at ``{prefix}/openapi.json``). The seat (connectors/dealer_api.py) checks the dealer's
HMAC signature and timestamp; the nonce is claimed in the hub store first, so a replay is refused
(409) even when the first request is still being processed. The order is then mapped by the
mapping specs and gated by the same Great Expectations suite as every sales order
(``quality/suites/sales_order.yaml``): a refusal answers 422 with the suite's reasons and is
quarantined with them (nothing is lost; the dealer corrects it and sends it again). A good order is
stored in the hub's canonical orders with its xref and queued for the ERP in one transaction,
answered 201 with the hub's order id (200 for a re-send: unchanged, or the changed order queued
again). The sales_orders flow sends it to the ERP like a shop's (its prerequisites, approvals and
lifecycle); an asset event on ``hub://dealer_order`` makes that run come sooner.

``GET …/v1/orders/{order_no}`` says where the order stands (refused with reasons, waiting for the
ERP with its reason, queued, in the ERP with its number); ``GET …/v1/special-prices`` lists the
dealer's approved special prices valid on a day (``?on=YYYY-MM-DD``, default today; the approvals
flow's 特价, by the dealer's CRM accounts).
Both are signed like the POST (empty body).
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import date, datetime, timezone
from typing import Any, Callable

import pandas as pd
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from flows import order_documents, roles
from flows.steps import decimals_as_text
from hub import model, money, outbox, quarantine, store, xref
from hub.errors import HubError, redact
from hub.store import select_in
from hub.types import Binding
from mappings import engine
from quality import gate
from quality.orders import order_facts

log = logging.getLogger("flows.dealer_orders")

FLOW = "dealer_orders"
ENTITY = "sales_order"
#: the asset the channel emits (flows.dag.asset); the sales_orders DAG runs after it too
ASSET = "dealer_order"
NS = uuid.UUID("5b0d8f3e-61c2-4a7f-9e15-3c8a2d7b4f90")
MAX_BODY = 1 << 20
HEAD_SPEC, LINE_SPEC = "dealer_order_to_sales_order", "dealer_line_to_sales_order_line"
Emitter = Callable[[str, dict[str, Any]], bool]


def order_hub_id(seat: str, dealer: str, order_no: str) -> str:
    return str(uuid.uuid5(NS, f"{seat}:order:{dealer}:{order_no}"))


def line_hub_id(seat: str, line_key: str) -> str:
    return str(uuid.uuid5(NS, f"{seat}:line:{line_key}"))


def _run_id(seat: str, now: float) -> str:
    """The channel's bookkeeping run of the day: what canonical rows and quarantine name as their run."""
    return f"{FLOW}:{seat}:{datetime.fromtimestamp(now, timezone.utc).date().isoformat()}"


# --- one order -----------------------------------------------------------------------------------

def _map(seat, dealer, raw: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Mapped header and lines (with hub ids), and the reasons the order is refused: the mapping
    specs' rules, then the sales order suite's expectations."""
    head, lines = seat.order_rows(dealer, raw)
    hspec, lspec = engine.load_spec(HEAD_SPEC), engine.load_spec(LINE_SPEC)
    mh, ml = engine.apply(hspec, pd.DataFrame([head])), engine.apply(lspec, pd.DataFrame(lines))
    reasons = [f"{r.field}: {r.reason}" for r in mh.errors.itertuples()]
    reasons += [f"line {lines[int(r._row)]['line_key'].rsplit(':', 1)[-1]} {r.field}: {r.reason}"
                for r in ml.errors.itertuples()]
    if reasons:
        return pd.DataFrame(), pd.DataFrame(), reasons
    heads = decimals_as_text(mh.frame.drop(columns=["_row"], errors="ignore"), hspec)
    rows = decimals_as_text(ml.frame.drop(columns=["_row"], errors="ignore"), lspec)
    heads["_key"], rows["_key"] = heads["_key"].astype(str), rows["_key"].astype(str)
    facts = order_facts(heads, rows).reset_index(drop=True)
    checked = gate.validate("sales_order", facts.assign(_row=range(len(facts))))
    reasons = [str(f.reason) for f in checked.failures.itertuples()]
    if rows["_key"].duplicated().any():
        reasons.append("two lines have the same line_no")
    hub_id = order_hub_id(seat.system, dealer.code, str(raw["order_no"]))
    heads = heads.assign(hub_id=hub_id)
    rows = rows.assign(hub_id=rows["_key"].map(lambda k: line_hub_id(seat.system, k)), order_hub_id=hub_id,
                       native_key=rows["_key"], line_no=[str(i) for i in range(1, len(rows) + 1)])
    for col in model.SALES_ORDER_LINE_FIELDS:
        if col not in rows.columns:
            rows[col] = None
    return heads, rows, reasons


def take(binding: Binding, dealer, raw: dict[str, Any], now: float) -> tuple[int, dict[str, Any], str, str | None]:
    """One order: (HTTP status, answer, outcome, hub id)."""
    seat = roles.adapter(binding)
    run_id = _run_id(binding.name, now)
    key = f"{dealer.code}:{raw['order_no']}"
    heads, lines, reasons = _map(seat, dealer, raw)
    erp = roles.erp().system
    with store.engine().begin() as conn:
        if reasons:
            quarantine.add(conn, run_id=run_id, flow=FLOW, entity=ENTITY, system=binding.name, stage="validate",
                           items=[(key, raw, [*reasons, "the dealer corrects the order and sends it again"])])
            return 422, {"detail": "the order was refused", "reasons": reasons}, "refused", None
        hub_id = str(heads["hub_id"].iloc[0])
        digest = order_documents.order_hashes(heads, lines)[hub_id]
        known = xref.lookup(conn, ENTITY, binding.name, [key])
        before = None if known.empty else known["content_hash"].iloc[0]
        cancelled = heads["status"].iloc[0] == "cancelled"
        state = "cancelled" if cancelled else "queued"
        answer = {"order_no": str(raw["order_no"]), "hub_order_id": hub_id, "state": state}
        if before == digest:
            return 200, {**answer, "outcome": "unchanged"}, "unchanged", hub_id
        in_erp = not xref.of_hub_ids(conn, ENTITY, erp, [hub_id]).empty
        order_documents.store(conn, heads.assign(content_hash=digest), lines, run_id)
        xref.save(conn, ENTITY, binding.name, pd.DataFrame([{"native_key": key, "hub_id": hub_id,
                                                             "native_version": None, "content_hash": digest}]))
        quarantine.resolve(conn, run_id=run_id, flow=FLOW, system=binding.name, record_keys=[key])
        if not cancelled or in_erp:
            outbox.enqueue(conn, ENTITY, run_id, [hub_id], [erp])
        outcome = "accepted" if before is None else "changed"
    return (201 if outcome == "accepted" else 200), {**answer, "outcome": outcome}, outcome, hub_id


def where_it_stands(binding: Binding, dealer, order_no: str) -> dict[str, Any]:
    """The order's state as the dealer may see it."""
    key = f"{dealer.code}:{order_no}"
    hub_id = order_hub_id(binding.name, dealer.code, order_no)
    erp = roles.erp().system
    out: dict[str, Any] = {"order_no": order_no, "hub_order_id": hub_id, "state": "unknown", "erp_order_no": None,
                           "reasons": []}
    q, o = model.quarantine.c, model.outbox.c
    with store.engine().begin() as conn:
        refused = conn.execute(select(q.reasons).where(q.flow == FLOW, q.system == binding.name, q.record_key == key,
                                                       q.status == quarantine.OPEN)).first()
        order = conn.execute(select(model.sales_order.c.status).where(model.sales_order.c.hub_id == hub_id)).first()
        queued = conn.execute(select(o.status, o.last_error).where(o.entity == ENTITY, o.hub_id == hub_id,
                                                                   o.target == erp)).first()
        there = xref.of_hub_ids(conn, ENTITY, erp, [hub_id])
    if refused is not None:
        reasons = refused[0] if isinstance(refused[0], list) else json.loads(refused[0] or "[]")
        return {**out, "state": "refused", "reasons": [str(r) for r in reasons]}
    if order is None:
        return out
    if not there.empty:
        out["erp_order_no"] = str(there["native_key"].iloc[0])
    if order[0] == "cancelled":
        return {**out, "state": "cancelled"}
    if queued is not None and queued[0] == outbox.DONE and not there.empty:
        return {**out, "state": "in_erp"}
    if queued is not None and queued[0] != outbox.PENDING and queued[1]:
        return {**out, "state": "waiting", "reasons": [str(queued[1])]}
    return {**out, "state": "queued"}


def special_prices(dealer, today: date) -> list[dict[str, Any]]:
    """The dealer's approved special prices still valid: approvals of the CRM accounts the hub
    links to the dealer's ERP customer, newest decision per product."""
    erp, crm = roles.erp().system, roles.crm().system
    a = model.approval.c
    with store.engine().begin() as conn:
        hub = xref.lookup(conn, "customer", erp, [dealer.erp_customer])
        x = model.xref.c
        accounts = select_in(conn, model.xref, "hub_id", hub["hub_id"].tolist(),
                             where=[x.entity == "customer", x.system == crm], columns=["native_key"])
        keys = set(accounts["native_key"].astype(str))
        rows = conn.execute(select(a.subject, a.version, a.request_id, a.decided_on, a.valid_until, a.facts).where(
            a.kind == "special_price", a.state == "approved", or_(a.superseded.is_(None), a.superseded != "yes"),
            or_(*[a.subject.like(f"{k}|%") for k in keys]))).all() if keys else []
    out: dict[str, dict[str, Any]] = {}
    for subject, version, request_id, decided, valid, facts in rows:
        account, _, product = str(subject).partition("|")
        if account not in keys or (valid and str(valid) < today.isoformat()):
            continue
        facts = facts if isinstance(facts, dict) else json.loads(facts or "{}")
        item = {"product_code": product, "product_name": facts.get("product_name"), "price": money.text(money.dec(version)),
                "valid_until": valid, "approval_no": request_id, "approved_on": decided}
        if product not in out or str(decided or "") > str(out[product]["approved_on"] or ""):
            out[product] = item
    return sorted(out.values(), key=lambda i: i["product_code"])


# --- the HTTP surface ----------------------------------------------------------------------------

def _claim(binding: Binding, dealer: str, nonce: str, method: str, path: str, now: float) -> bool:
    """Record the nonce; False when the dealer used it before (a replay)."""
    try:
        with store.engine().begin() as conn:
            conn.execute(model.dealer_request.insert().values(
                seat=binding.name, dealer=dealer, nonce=nonce, received_at=datetime.fromtimestamp(now, timezone.utc),
                method=method, path=path[:2000]))
        return True
    except IntegrityError:
        return False


def _settle(binding: Binding, dealer: str, nonce: str, **values: Any) -> None:
    r = model.dealer_request.c
    with store.engine().begin() as conn:
        conn.execute(update(model.dealer_request).where(r.seat == binding.name, r.dealer == dealer,
                                                        r.nonce == nonce).values(**values))


def handle(binding: Binding, method: str, path: str, headers: dict[str, str], body: bytes, now: float,
           act: Callable[[Any], tuple[int, dict[str, Any], dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
    """Verify, claim the nonce, then ``act(dealer)`` → (status, answer, what the intake log keeps)."""
    seat = roles.adapter(binding)
    try:
        dealer, nonce = seat.verify(method, path, headers, body, now)
    except HubError as exc:
        kind = type(exc).__name__
        if kind not in ("ForgedRequest", "StaleRequest"):
            raise
        log.warning("dealer request refused on channel %s: %s", binding.name, exc)
        return 401, {"detail": "stale request: sign it again with the current time" if kind == "StaleRequest"
                     else "signature not valid"}
    if not _claim(binding, dealer.code, nonce, method, path, now):
        log.warning("dealer %s on channel %s: nonce %s used before: replay refused", dealer.code, binding.name, nonce)
        return 409, {"detail": "replay: this nonce was used before"}
    status, answer, kept = act(dealer)
    _settle(binding, dealer.code, nonce, http_status=status, **kept)
    return status, answer


def refuse_shape(binding: Binding, dealer, body: bytes, reasons: list[str], now: float) -> None:
    """Quarantine a request whose body is no order (the schema's reasons), with what was sent."""
    with store.engine().begin() as conn:
        quarantine.add(conn, run_id=_run_id(binding.name, now), flow=FLOW, entity=ENTITY, system=binding.name,
                       stage="extract", items=[(f"{dealer.code}:request:{int(now)}",
                                                {"body": body[:4000].decode("utf-8", "replace")}, reasons)])


def order_act(binding: Binding, body: bytes, now: float, parse: Callable[[bytes, date], dict[str, Any]],
              background: Callable[..., None], emit: Emitter):
    """What a verified POST of an order does: ``parse`` (the HTTP surface's schema) gives the order as
    text or raises ValueError with the reasons in ``args[1]``; then :func:`take`."""
    def act(dealer) -> tuple[int, dict[str, Any], dict[str, Any]]:
        try:
            raw = parse(body, datetime.fromtimestamp(now, timezone.utc).date())
        except ValueError as exc:
            reasons = list(exc.args[1]) if len(exc.args) > 1 else [str(exc)]
            refuse_shape(binding, dealer, body, reasons, now)
            return 422, {"detail": "the order is not a DealerOrder", "reasons": reasons}, {
                "outcome": "refused", "detail": "; ".join(reasons)[:2000]}
        status, answer, outcome, hub_id = take(binding, dealer, raw, now)
        if outcome in ("accepted", "changed"):
            background(_emit, emit, binding.name, dealer.code, hub_id)
        return status, answer, {"order_no": raw["order_no"], "hub_id": hub_id, "outcome": outcome,
                                "detail": "; ".join(answer.get("reasons", []))[:2000] or None}
    return act


def _emit(emit: Emitter, seat: str, dealer: str, hub_id: str | None) -> None:
    try:
        emit(ASSET, {"seat": seat, "dealer": dealer, "hub_order_id": hub_id})
    except Exception as exc:  # noqa: BLE001 - stored and queued; the next scheduled sales_orders run sends it
        log.error("dealer order: asset event for channel %s failed (%s: %s)", seat, type(exc).__name__, redact(str(exc)))
