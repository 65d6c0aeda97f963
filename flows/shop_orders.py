"""The shop orders flow: every bound shop's orders (淘宝/天猫, 京东, 有赞, 抖店, 拼多多) into the hub as
canonical sales orders queued for the ERP, with a completeness audit per window.

extract (per shop: the windows since its watermark, each read whole with the platform's own count;
a window whose count disagrees with what was read is re-read; pushed orders not in a window are
fetched by id) → map (YAML specs) → validate (GX: each line's amount and paid = Σ lines + postage,
to the fen) → resolve (unchanged skipped by a hash over header and lines; unpaid orders and those
cancelled before reaching the ERP not sent) → load (canonical orders and lines, xref, the ERP's
outbox, the pushes consumed, the audit rows; then the watermark, which never passes a window that
disagrees) → publish (the audit after storage: each window read this run, its platform count
against the orders the hub now holds for it) → write_back (outcomes only).

The ERP write itself is the sales_orders flow's (one ERP order path, its lifecycle and ledger):
its publish step takes every order the outbox holds for the ERP, whichever seat it came from.
The flow names roles only (flows/roles.py).
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from flows import order_documents, roles
from flows.engine import Flow
from flows.steps import json_safe, read_outcomes, save_outcomes, with_known_hashes
from hub import model, money, outbox, pii, pushes, quarantine, shop_audit, watermarks, xref
from hub.model import SALES_ORDER_LINE_FIELDS
from hub.runlog import StepCounts
from hub.runner import StepContext
from hub.store import select_in, stage_read, stage_write, utcnow
from quality.orders import order_facts

log = logging.getLogger("flows.shop_orders")

FLOW = "shop_orders"
ENTITY = "sales_order"
HEAD, LINES = "shop.order", "shop.line"
NS = uuid.UUID("7e3f0c52-9a41-4d2b-b6e8-5c1d0f2a9b73")
#: how far back the first run of a shop reads (binding option ``since_hours``)
FIRST_READ = timedelta(hours=72)
#: list passes per window before a disagreement is recorded (the first read and two re-reads)
READS = 3
#: the tax rate of a line whose SKU the hub does not know yet (binding option ``tax_rate``): the order
#: waits for its product anyway, and the rate is the product's once it is known
DEFAULT_TAX_RATE = "13"


def order_hub_id(seat: str, tid: str) -> str:
    return str(uuid.uuid5(NS, f"{seat}:order:{tid}"))


def line_hub_id(seat: str, line_key: str) -> str:
    return str(uuid.uuid5(NS, f"{seat}:line:{line_key}"))


def _prepare(heads: pd.DataFrame, lines: pd.DataFrame | None = None) -> pd.DataFrame:
    return order_facts(heads, lines if lines is not None else pd.DataFrame())


FLOW_ENGINE = Flow(FLOW, prepare=_prepare)
map_step = FLOW_ENGINE.map
validate = FLOW_ENGINE.validate


def _stages() -> dict[str, tuple[str, str]]:
    """Shop seat name → (its header staging key, its lines' staging key), as the engine stages them."""
    out: dict[str, tuple[str, str]] = {}
    sources = FLOW_ENGINE.sources()
    for src in sources:
        if src.own:
            line = next(s.stage for s in sources if s.lines_of == src.stage)
            out[src.system] = (src.stage, line)
    return out


def _erp() -> str:
    return roles.erp().system


# --- extract ---------------------------------------------------------------------------------------

def _modified(order: dict[str, Any]) -> datetime | None:
    text = order.get("modified")
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def _read_window(shop, a: datetime, b: datetime) -> tuple[dict[str, dict], dict[str, Any], list]:
    """One window read whole, re-read while the platform's count disagrees with what came back.
    Orders modified again while the window was paged have moved on (the platform no longer counts
    them here), so the comparison is of the orders whose modified time still lies in the window."""
    got: dict[str, dict] = {}
    late: set[str] = set()
    bad: list = []
    count = held = 0
    agrees = False
    for attempt in range(1, READS + 1):
        w = shop.orders(a, b)
        bad = list(w.bad)
        for order in w.orders:
            tid = str(order["tid"])
            if attempt > 1 and tid not in got:
                late.add(tid)
            have = got.get(tid)
            if have is None or str(order.get("modified") or "") >= str(have.get("modified") or ""):
                got[tid] = order
        count = int(w.count)
        held = sum(1 for o in got.values() if (m := _modified(o)) is not None and a <= m <= b)
        held += len({u.tid for u in bad if u.tid and u.tid not in got})   # quarantined under its id
        agrees = held == count and not any(not u.tid for u in bad)         # a nameless fragment: never complete
        if agrees:
            break
    audit = {"window_start": a, "window_end": b, "platform_count": count, "read": len(got), "held": held, "reads": attempt,
             "found_late": len(late), "late_ids": ",".join(sorted(late)) or None,
             "verdict": shop_audit.AGREES if agrees else shop_audit.DISAGREES,
             "missing_ids": None}
    return got, audit, bad


def _lines_and_head(seat: str, shop, order: dict[str, Any], tax_rates: dict[str, str], default_rate: str,
                    postage_sku: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A normalised shop order as one flat header row and its line rows. Fully refunded lines are
    left out, partly refunded ones reduced (amount pro rata to the fen); the header's goods total is
    what the buyer paid less postage and the refunds, so "total = Σ lines" is the platform's
    "paid = Σ line payment + postage" check. With the binding's ``postage_sku`` (the ERP's 运费
    item) the postage is one more line of that item and in the total. A cancelled order keeps its
    lines as ordered: the ERP closes it whole, and an order without lines would not pass validation
    (a full refund before shipment must still reach the ERP as a cancel)."""
    tid = str(order["tid"])
    rows, refunded = [], Decimal(0)
    whole = order.get("state") == "cancelled"
    for ln in order.get("lines") or []:
        qty, paid = money.dec(ln.get("quantity")) or Decimal(0), money.dec(ln.get("payment")) or Decimal(0)
        back = Decimal(0) if whole else money.dec(ln.get("refunded_quantity")) or Decimal(0)
        if ln.get("refund_status") == "refunded" and back == 0 and not whole:
            back = qty
        keep = qty - back
        if keep <= 0:
            refunded += paid
            continue
        amount = paid if back == 0 else money.fen(paid * keep / qty)
        refunded += paid - amount
        price = money.dec(ln.get("price")) or Decimal(0)
        sku = (ln.get("outer_sku") or None)
        rows.append({"line_key": f"{tid}:{ln.get('oid')}", "tid": tid, "outer_sku": sku, "quantity": money.text(keep),
                     "price": money.text(price), "discount": money.text(price * keep - amount),
                     "payment": money.text(amount), "tax_rate": tax_rates.get(str(sku), default_rate),
                     "modified": order.get("modified"), "system": seat})
    paid_total = money.dec(order.get("payment")) or Decimal(0)
    post_fee = money.dec(order.get("post_fee")) or Decimal(0)
    if postage_sku and post_fee and rows:
        rows.append({"line_key": f"{tid}:postage", "tid": tid, "outer_sku": postage_sku, "quantity": "1",
                     "price": money.text(post_fee), "discount": "0", "payment": money.text(post_fee),
                     "tax_rate": tax_rates.get(postage_sku, default_rate), "modified": order.get("modified"),
                     "system": seat})
        post_fee = Decimal(0)
    memo = "; ".join(f"{label}: {order[k]}" for k, label in (("buyer_memo", "买家留言"), ("seller_memo", "卖家备注"))
                     if order.get(k))
    created = str(order.get("created") or "")
    head = {"tid": tid, "seat": seat, "system": seat, "erp_customer": shop.erp_customer, "state": order.get("state"),
            "platform_status": order.get("status"), "order_date": created[:10] or None,
            "goods_total": money.text(paid_total - post_fee - refunded), "memo": memo or None,
            "ship_to": _ship_to(order.get("consignee")),
            "modified": order.get("modified"), "payment": order.get("payment"), "post_fee": order.get("post_fee")}
    return head, rows


def _ship_to(consignee: dict[str, Any] | None) -> str | None:
    """The consignee as the platform gave it (masked or ciphertext); one the platform decrypted
    for us (decrypt_pii) is sealed with Airflow's Fernet key first, never stored in the clear."""
    if not consignee:
        return None
    text = json.dumps(consignee, ensure_ascii=False)
    return pii.seal(text) if consignee.get("decrypted") else text


def _tax_rates(conn, skus: set[str]) -> dict[str, str]:
    """The tax rate of each SKU the hub knows as an ERP product code."""
    if not skus:
        return {}
    found = select_in(conn, model.product, "code", sorted(skus), columns=["code", "tax_rate"])
    return {str(c): str(r) for c, r in zip(found["code"], found["tax_rate"]) if r is not None and r == r}


def extract(ctx: StepContext) -> StepCounts:
    """Per shop: every window from the watermark (less the overlap) to now, each audited against
    the platform's own count; pushed orders not in a window fetched by id. The pending watermark
    is the end of the last window of an unbroken run of agreeing ones."""
    counts = StepCounts()
    now = utcnow().replace(microsecond=0)  # the platforms take whole seconds and include both ends
    stages = _stages()
    for binding in roles.seats("shop"):
        seat, shop = binding.name, roles.adapter(binding)
        head_stage, line_stage = stages[seat]
        with ctx.engine.begin() as conn:
            mark = watermarks.get(conn, FLOW, f"{seat}.orders")
            pushed = pushes.pending(conn, seat)
        since = timedelta(hours=float(binding.options.get("since_hours") or FIRST_READ.total_seconds() / 3600))
        start = ((datetime.fromisoformat(mark) - shop.overlap) if mark else now - since).replace(microsecond=0)
        end = now - shop.lag
        orders: dict[str, dict] = {}
        audits, broken, moved_to = [], False, None
        bad_fragments: list = []
        for a, b in shop.windows(start, end):
            got, audit, bad = _read_window(shop, a, b)
            bad_fragments.extend(bad)
            for tid, order in got.items():
                if tid not in orders or str(order.get("modified") or "") >= str(orders[tid].get("modified") or ""):
                    orders[tid] = order
            audits.append({"seat": seat, "run_id": ctx.run_id, **audit})
            if audit["verdict"] == shop_audit.AGREES and not broken:
                moved_to = b
            else:
                broken = True
        extra = [t for t in pushed if t not in orders]
        for order in shop.orders_by_id(extra) if extra else []:
            orders[str(order["tid"])] = order
        with ctx.engine.begin() as conn:
            postage_sku = str(binding.options.get("postage_sku") or "") or None
            skus = {str(ln.get("outer_sku")) for o in orders.values() for ln in o.get("lines") or [] if ln.get("outer_sku")}
            skus |= {postage_sku} if postage_sku else set()
            rates = _tax_rates(conn, skus)
            default_rate = str(binding.options.get("tax_rate") or DEFAULT_TAX_RATE)
            heads, lines = [], []
            for order in orders.values():
                head, rows = _lines_and_head(seat, shop, order, rates, default_rate, postage_sku)
                heads.append(json_safe(head))
                lines.extend(rows)
            stage_write(conn, ctx.run_id, "extract", pd.DataFrame(heads), head_stage)
            stage_write(conn, ctx.run_id, "extract", pd.DataFrame(lines), line_stage)
            stage_write(conn, ctx.run_id, "audit", pd.DataFrame(audits), seat)
            stage_write(conn, ctx.run_id, "pushes", pd.DataFrame({"tid": pushed, "asked_at": now}), seat)
            if bad_fragments:
                counts.quarantined += quarantine.add(conn, run_id=ctx.run_id, flow=FLOW, entity=ENTITY, system=seat,
                                                     stage="extract", items=[
                    (u.tid or quarantine.page_key("orders", str(i)), {"fragment": u.fragment}, [u.reason])
                    for i, u in enumerate(bad_fragments) if not (u.tid and u.tid in orders)])
            if moved_to is not None:
                watermarks.set_pending(conn, ctx.run_id, FLOW, f"{seat}.orders", moved_to.isoformat())
        counts.read += len(orders)
        log.info("%s: %d orders in %d windows (%d disagree), %d pushed, watermark → %s", binding.label,
                 len(orders), len(audits), sum(a["verdict"] != shop_audit.AGREES for a in audits), len(pushed),
                 moved_to.isoformat() if moved_to else "unchanged")
    return counts


# --- resolve ---------------------------------------------------------------------------------------

def _with_ids(seat: str, heads: pd.DataFrame, lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    heads = heads.assign(hub_id=heads["_key"].map(lambda k: order_hub_id(seat, k)), source=seat)
    if lines.empty:
        return heads, pd.DataFrame(columns=["hub_id", "order_hub_id", *SALES_ORDER_LINE_FIELDS])
    lines = lines.assign(hub_id=lines["_key"].map(lambda k: line_hub_id(seat, k)),
                         order_hub_id=lines["order_key"].map(lambda k: order_hub_id(seat, k)), native_key=lines["_key"])
    lines["line_no"] = lines.groupby("order_hub_id").cumcount().add(1).astype(str)
    for col in SALES_ORDER_LINE_FIELDS:
        if col not in lines.columns:
            lines[col] = None
    return heads, lines


def resolve_step(ctx: StepContext) -> StepCounts:
    """Skip what did not change; unpaid orders and those cancelled before the ERP had them are
    stored, not sent (with the reason)."""
    counts = StepCounts()
    erp = roles.erp()
    with ctx.engine.begin() as conn:
        for binding in roles.seats("shop"):
            seat = binding.name
            head_stage, line_stage = _stages()[seat]
            heads = stage_read(conn, ctx.run_id, "validate", head_stage)
            lines = stage_read(conn, ctx.run_id, "validate", line_stage)
            counts.read += len(heads)
            if heads.empty:
                for name in ("resolve", "skipped"):
                    stage_write(conn, ctx.run_id, name, heads, head_stage)
                stage_write(conn, ctx.run_id, "resolve", lines, line_stage)
                continue
            heads, lines = _with_ids(seat, heads, lines)
            hashes = order_documents.order_hashes(heads, lines)
            batch = with_known_hashes(conn, ENTITY, seat, heads, heads["hub_id"].map(hashes))
            batch["hub_id"] = batch["_key"].map(lambda k: order_hub_id(seat, k))
            unchanged = batch["known_hash"].notna() & (batch["content_hash"] == batch["known_hash"])
            x = model.xref.c
            sent = select_in(conn, model.xref, "hub_id", batch["hub_id"].tolist(),
                             where=[x.entity == ENTITY, x.system == erp.system], columns=["hub_id"])
            ever = batch["hub_id"].isin(set(sent["hub_id"]))
            reason = pd.Series(None, index=batch.index, dtype=object)
            reason[unchanged] = "unchanged since last run"
            reason[~unchanged & (batch["status"] == "draft")] = f"unpaid on {binding.label}: sent to {erp.label} once paid"
            shipped_there = batch["shop_state"].isin(["shipped", "completed"]) if "shop_state" in batch else False
            reason[~unchanged & shipped_there & ~ever] = \
                f"already shipped on {binding.label} when the hub first read it: fulfilled elsewhere, not sent to {erp.label}"
            reason[~unchanged & (batch["status"] == "cancelled") & ~ever] = \
                f"closed or refunded on {binding.label} before it reached {erp.label}: nothing to send"
            counts.skipped += order_documents.stage_resolved(conn, ctx.run_id, batch, unchanged, reason, lines,
                                                             head_stage, line_stage)
    return counts


# --- load ------------------------------------------------------------------------------------------

def load(ctx: StepContext) -> StepCounts:
    """Canonical orders and lines, xref (the shop's order id and version), the ERP's outbox, the
    pushes this run fetched marked consumed and the audit rows; then the watermarks, in the same
    transaction as the data they cover."""
    counts = StepCounts()
    erp = _erp()
    with ctx.engine.begin() as conn:
        for binding in roles.seats("shop"):
            seat = binding.name
            head_stage, line_stage = _stages()[seat]
            heads = stage_read(conn, ctx.run_id, "resolve", head_stage)
            lines = stage_read(conn, ctx.run_id, "resolve", line_stage)
            counts.read += len(heads)
            if not heads.empty:
                counts.written += order_documents.store(conn, heads, lines, ctx.run_id)
                xref.save(conn, ENTITY, seat, heads.rename(columns={"_key": "native_key"}).assign(
                    native_version=heads["_version"].astype(str)))
                quarantine.resolve(conn, run_id=ctx.run_id, flow=FLOW, system=seat, record_keys=heads["_key"].tolist())
                outbox.enqueue(conn, ENTITY, ctx.run_id, heads.loc[heads["send"].astype(bool), "hub_id"].tolist(), [erp])
            asked = stage_read(conn, ctx.run_id, "pushes", seat)
            if not asked.empty:
                pushes.consume(conn, seat, asked["tid"].astype(str).tolist(), ctx.run_id,
                               received_before=pd.Timestamp(asked["asked_at"].iloc[0]).to_pydatetime())
            audits = stage_read(conn, ctx.run_id, "audit", seat)
            if not audits.empty:
                shop_audit.save(conn, _audit_rows(audits))
        log.info("watermarks moved: %s", watermarks.commit_pending(conn, ctx.run_id, FLOW))
    return counts


def _aware(value: Any) -> datetime:
    ts = pd.Timestamp(value)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts).to_pydatetime()


def _audit_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame.to_dict("records")
    for r in rows:
        for k in ("window_start", "window_end"):
            r[k] = pd.Timestamp(r[k]).to_pydatetime()
        for k, v in list(r.items()):
            if isinstance(v, float) and v != v:
                r[k] = None
    return rows


# --- publish: the audit after storage -----------------------------------------------------------------

def publish(ctx: StepContext) -> StepCounts:
    """Each window this run read, counted once more after the orders are stored. A count that
    moved (orders changed since, or indexed late) lists the window again: every order the platform
    lists in it must be held by the hub (stored, or in quarantine with its reason: nothing lost)
    and the platform's count must equal its list. What is missing is named by id; a window that
    disagrees moves the shop's watermark back before it, so the next run reads it again."""
    counts = StepCounts()
    for binding in roles.seats("shop"):
        seat, shop = binding.name, roles.adapter(binding)
        with ctx.engine.begin() as conn:
            audits = shop_audit.of_run(conn, ctx.run_id)
        audits = audits[audits["seat"] == seat]
        if audits.empty:
            continue
        with ctx.engine.begin() as conn:
            x, q = model.xref.c, model.quarantine.c
            held = {str(k) for (k,) in conn.execute(model.xref.select().with_only_columns(x.native_key)
                                                    .where(x.entity == ENTITY, x.system == seat))}
            held |= {str(k) for (k,) in conn.execute(model.quarantine.select().with_only_columns(q.record_key).where(
                q.flow == FLOW, q.system == seat, q.status == quarantine.OPEN))}
        rows = []
        for rec in audits.to_dict("records"):
            a, b = (_aware(rec["window_start"]), _aware(rec["window_end"]))
            count = shop.count(a, b)   # one call; the window is listed again only when the count moved
            if rec["verdict"] == shop_audit.AGREES and count == rec["held"]:
                rows.append({**{k: rec[k] for k in shop_audit.COLUMNS}, "window_start": a, "window_end": b})
                continue
            window = shop.orders(a, b)
            listed = {str(o["tid"]) for o in window.orders}
            missing = sorted(listed - held)
            agrees = window.count == len(listed) and not missing
            rows.append({**{k: rec[k] for k in shop_audit.COLUMNS}, "window_start": a, "window_end": b,
                         "platform_count": window.count, "held": len(listed & held),
                         "missing_ids": ",".join(missing) or None,
                         "verdict": shop_audit.AGREES if agrees else shop_audit.DISAGREES})
        with ctx.engine.begin() as conn:
            shop_audit.save(conn, rows)
        bad = [r for r in rows if r["verdict"] != shop_audit.AGREES]
        counts.read += len(rows)
        counts.skipped += len(rows) - len(bad)
        if bad:
            first = min(r["window_start"] for r in bad)
            with ctx.engine.begin() as conn:  # the next run reads from the first window that disagrees
                mark = watermarks.get(conn, FLOW, f"{seat}.orders")
                if mark and datetime.fromisoformat(mark) > first:
                    watermarks.set_pending(conn, ctx.run_id, FLOW, f"{seat}.orders", first.isoformat())
                    watermarks.commit_pending(conn, ctx.run_id, FLOW)
            log.warning("%s: %d of %d windows disagree after storage (first %s); missing: %s", binding.label,
                        len(bad), len(rows), first.isoformat(),
                        ", ".join(r["missing_ids"] for r in bad if r["missing_ids"]) or "none listed")
    return counts


# --- write back: outcomes ------------------------------------------------------------------------------

def write_back(ctx: StepContext) -> StepCounts:
    """Nothing is written to the shops here (shipments go back in the shipments flow, the ERP
    order in sales_orders); the run's outcome per order read is recorded for the report."""
    label = roles.erp().label
    frames = []
    with ctx.engine.begin() as conn:
        for binding in roles.seats("shop"):
            seat = binding.name
            head_stage, _ = _stages()[seat]
            raw = stage_read(conn, ctx.run_id, "extract", head_stage)
            keys = raw["tid"].astype(str) if "tid" in raw.columns else pd.Series([], dtype=object)
            out = read_outcomes(conn, ctx.run_id, ENTITY, seat, keys, lambda k, s=seat: order_hub_id(s, k),
                                stage_read(conn, ctx.run_id, "skipped", head_stage))
            queued = set(outbox.ids(conn, ENTITY, _erp(), (outbox.PENDING, outbox.WAITING)))
            open_rows = out["outcome"].isna()
            out.loc[open_rows & out["hub_id"].isin(queued), ["outcome", "detail"]] = [
                f"stored in hub, queued for {label}", "the sales_orders flow sends it"]
            out.loc[out["outcome"].isna(), ["outcome", "detail"]] = ["stored in hub", f"{label} already has this version"]
            frames.append(out)
    save_outcomes(ctx, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["system", "key", "hub_id", "outcome", "detail"]))
    return StepCounts()


STEP_FUNCTIONS = {
    "extract": extract, "map": map_step, "validate": validate, "resolve": resolve_step,
    "load": load, "publish": publish, "write_back": write_back,
}
