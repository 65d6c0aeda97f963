"""What a sales order needs before it can go to the ERP, and the document the ERP gets.

- **Prerequisites**: the order's customer and every product must already be in the ERP (xref
  customer/product → the erp seat). An order that lacks one *waits* with the reason; it is looked
  at again on every run, so it goes as soon as customer_master / product_master bring the missing
  record (a late upstream never loses an order).
- **The ERP's state** (approved, closed, shipped) and what it forbids are the adapter's
  (``order_state`` / ``refusal``): U8 closes and re-adds a changed order, SAP changes it in place.
- **The document**: header and lines from the ERP's mapping specs (``sales_order.out``,
  ``sales_order_line.out``; the line spec's ``document`` says where lines nest, their order and the
  field whose sum must equal the order total), amounts from ``hub.money`` (Decimal, half-up to
  the fen), sent as decimal text.
"""
from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pandas as pd

from sqlalchemy import delete, select

from flows.steps import upsert_canonical
from hub import model, money, outbox, xref
from hub.model import SALES_ORDER_FIELDS, SALES_ORDER_LINE_FIELDS
from hub.store import chunks, select_in, stage_write
from mappings import engine
from quality import readiness

HEADER_HASH = ("order_no", "customer_key", "status", "order_date", "total", "memo", "erp_code")
LINE_HASH = ("native_key", "line_no", "product_key", "quantity", "unit_price", "discount", "tax_rate", "amount",
             "special_price_ref")


def order_hashes(heads: pd.DataFrame, lines: pd.DataFrame) -> pd.Series:
    """One content hash per order over its header and all its lines (hub_id → hash), computed
    the same way from a CRM read and from the canonical tables."""
    if heads.empty:
        return pd.Series([], dtype=object)
    head = xref.content_hash(heads, list(HEADER_HASH))
    if lines.empty:
        digest = pd.Series("", index=heads["hub_id"])
    else:
        ln = lines.assign(_h=xref.content_hash(lines, list(LINE_HASH)),
                          _n=pd.to_numeric(lines["line_no"], errors="coerce")).sort_values(["order_hub_id", "_n"])
        digest = ln.groupby("order_hub_id")["_h"].agg("".join)
    joined = head.to_numpy() + heads["hub_id"].map(digest).fillna("").to_numpy()
    return pd.Series([hashlib.sha256(s.encode()).hexdigest() for s in joined], index=heads["hub_id"].to_numpy())


# --- resolve and load: what every source of orders shares ---------------------------------------------

def stage_resolved(conn, run_id: str, batch: pd.DataFrame, unchanged: pd.Series, reason: pd.Series,
                   lines: pd.DataFrame, head_stage: str, line_stage: str) -> int:
    """Stage a resolved batch: the changed orders (``send`` where no reason holds them back) and
    their lines, and the skipped ones with their reasons; returns how many were skipped."""
    changed = batch[~unchanged].drop(columns=["known_hash"])
    changed["send"] = reason[~unchanged].isna().to_numpy()
    stage_write(conn, run_id, "resolve", changed, head_stage)
    stage_write(conn, run_id, "resolve", lines[lines["order_hub_id"].isin(changed["hub_id"])], line_stage)
    stage_write(conn, run_id, "skipped", batch.loc[reason.notna(), ["_key", "hub_id"]].assign(
        reason=reason[reason.notna()].to_numpy()), head_stage)
    return int(reason.notna().sum())


def store(conn, heads: pd.DataFrame, lines: pd.DataFrame, run_id: str) -> int:
    """Canonical orders and their lines, the lines replaced whole (a line the source no longer has
    is gone); returns the orders written."""
    for col in SALES_ORDER_FIELDS:
        if col not in heads.columns:
            heads[col] = None
    written = upsert_canonical(conn, model.sales_order, heads, SALES_ORDER_FIELDS, run_id)
    for part in chunks(heads["hub_id"].tolist()):
        conn.execute(delete(model.sales_order_line).where(model.sales_order_line.c.order_hub_id.in_(part)))
    if not lines.empty:
        lines = lines.assign(content_hash=xref.content_hash(lines, list(LINE_HASH)))
        upsert_canonical(conn, model.sales_order_line, lines, SALES_ORDER_LINE_FIELDS, run_id)
    return written


# --- prerequisites ---------------------------------------------------------------------------------

def _erp_numbers(conn, entity: str, crm_keys: pd.Series, crm: str, erp: str) -> pd.Series:
    """CRM key → the ERP's number through xref (crm key → hub id → erp key); missing ones absent."""
    keys = [str(k) for k in crm_keys.dropna().unique()]
    if not keys:
        return pd.Series(dtype=object)
    source = xref.lookup(conn, entity, crm, keys)[["native_key", "hub_id"]]
    x = model.xref.c
    target = select_in(conn, model.xref, "hub_id", source["hub_id"].tolist(), where=[x.entity == entity, x.system == erp],
                       columns=["hub_id", "native_key"]).sort_values("native_key").drop_duplicates("hub_id")
    both = source.merge(target.rename(columns={"native_key": "code"}), on="hub_id")
    return both.set_index("native_key")["code"]


def _customer_names(conn, keys: list[str], crm: str) -> dict[str, str]:
    s = model.customer_source.c
    rows = select_in(conn, model.customer_source, "native_key", keys, where=[s.system == crm],
                     columns=["native_key", "name"])
    return dict(zip(rows["native_key"], rows["name"]))


def unready_customers(conn, heads: pd.DataFrame, crm: str) -> dict[str, str]:
    """CRM customer key → what keeps it from taking orders (quality.readiness: legal data, 开票档案,
    a reachable contact), for the CRM orders' customers that are not complete; shop orders
    (``source`` another seat) sell to the shop's configured ERP customer and are not judged."""
    source = heads["source"] if "source" in heads.columns else pd.Series(None, index=heads.index, dtype=object)
    keys = heads.loc[source.isna() | (source == crm), "customer_key"].dropna().astype(str).unique().tolist()
    if not keys:
        return {}
    hub_of = xref.lookup(conn, "customer", crm, keys).drop_duplicates("native_key").set_index("native_key")["hub_id"]
    missing = readiness.missing_for_orders(conn, hub_of.tolist())
    return {key: "; ".join(missing[hub_of[key]]) for key in keys if key in hub_of.index and hub_of[key] in missing}


def _held_by_erp(conn, entity: str, codes: pd.Series, erp: str) -> pd.Series:
    """ERP code → itself for the codes xref holds for the ERP seat (a shop order names the ERP's
    own customer and product codes: the shop's configured customer, the SKU's 商家编码)."""
    keys = [str(k) for k in codes.dropna().unique()]
    if not keys:
        return pd.Series(dtype=object)
    found = xref.lookup(conn, entity, erp, keys)["native_key"].astype(str).unique()
    return pd.Series(found, index=found)


def prerequisites(conn, heads: pd.DataFrame, lines: pd.DataFrame, crm: str, erp: str,
                  label: str, unready: dict[str, str] | None = None) -> tuple[pd.Series, pd.Series, dict[str, str]]:
    """(customer number per order hub id, product number per line hub id, hub id → why it waits);
    ``crm`` / ``erp`` are the seats' xref keys, ``label`` the ERP's name in the reasons. An order
    whose ``source`` is another seat (a shop) names the ERP's codes directly. ``unready`` (CRM
    customer key → what it lacks, :func:`unready_customers`) holds a CRM order until its customer is
    complete, naming what is missing."""
    source = heads["source"] if "source" in heads.columns else pd.Series(None, index=heads.index, dtype=object)
    direct = source.notna() & (source != crm)
    direct_ids = set(heads.loc[direct, "hub_id"])
    cust = pd.concat([_erp_numbers(conn, "customer", heads.loc[~direct, "customer_key"], crm, erp),
                      _held_by_erp(conn, "customer", heads.loc[direct, "customer_key"], erp)])
    cust = cust[~cust.index.duplicated()]
    customer_code = heads.set_index("hub_id")["customer_key"].astype(str).map(cust)
    if not lines.empty:
        by_shop = lines["order_hub_id"].isin(direct_ids)
        prod = pd.concat([_erp_numbers(conn, "product", lines.loc[~by_shop, "product_key"], crm, erp),
                          _held_by_erp(conn, "product", lines.loc[by_shop, "product_key"], erp)])
        prod = prod[~prod.index.duplicated()]
        product_code = lines.set_index("hub_id")["product_key"].astype(str).map(prod)
    else:
        product_code = pd.Series(dtype=object)
    names = _customer_names(conn, heads.loc[customer_code.isna().to_numpy(), "customer_key"].astype(str).tolist(), crm)
    waits: dict[str, list[str]] = {}
    for hub_id, key, src in zip(heads["hub_id"], heads["customer_key"].astype(str), source):
        if pd.isna(customer_code.get(hub_id)):
            if hub_id in direct_ids:
                waits.setdefault(hub_id, []).append(
                    f"customer {key} (the ERP customer shop {src} sells to, binding option erp_customer) is not "
                    f"in {label} as the hub knows it (customer_master links it)")
                continue
            who = f"{names[key]} ({key})" if key in names else key
            waits.setdefault(hub_id, []).append(f"customer {who} is not in {label} yet (customer_master creates or links it)")
    if unready:
        more = _customer_names(conn, [k for k in unready if k not in names], crm)
        for hub_id, key in zip(heads.loc[~direct, "hub_id"], heads.loc[~direct, "customer_key"].astype(str)):
            if key in unready:
                who = names.get(key) or more.get(key) or key
                waits.setdefault(hub_id, []).append(f"customer {who} ({key}) is not ready for orders: {unready[key]} "
                                                    f"(complete it in the CRM; customer_master takes it in)")
    if not lines.empty:
        source_of = dict(zip(heads["hub_id"], source))
        missing = lines[lines["hub_id"].map(product_code).isna()]
        for order, part in missing.groupby("order_hub_id"):
            keys = ", ".join(sorted(part["product_key"].astype(str).unique()))
            if order in direct_ids:
                waits.setdefault(str(order), []).append(
                    f"SKU {keys} (商家编码) is no {label} product code the hub knows (fix the code in "
                    f"{source_of.get(order, 'the shop')}, or add the product to {label}; product_master links it)")
                continue
            waits.setdefault(str(order), []).append(
                f"product {keys} (CRM) has no {label} product record linked yet (product_master links it by its code)")
    return customer_code, product_code, {h: "; ".join(r) for h, r in waits.items()}


# --- the document -------------------------------------------------------------------------------------

def _order_key(value: Any) -> tuple[int, Any]:
    text = str(value)
    return (0, int(text)) if text.isdigit() else (1, text)


def payloads(heads: pd.DataFrame, lines: pd.DataFrame, customer_code: pd.Series, product_code: pd.Series,
             header_spec: str, line_spec: str, label: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """hub id → the ERP's order document (Decimals as text), and hub id → why none could be built.

    The line spec's ``document`` says where the lines nest (``lines_key``), how they are ordered
    (``order_by``) and, where the ERP takes line amounts, which field must add up to the order
    total (``amount``): the gate checked the CRM's amounts, this checks the document's."""
    line = engine.load_spec(line_spec)
    nest, order_by, amount = line.doc("lines_key", "lines"), line.doc("order_by"), line.doc("amount")
    problems: dict[str, str] = {}
    ln = lines.copy()
    ln["product_code"] = ln["hub_id"].map(product_code)
    amounts = [money.line_amounts(q, p, r, d) for q, p, r, d in
               zip(ln["quantity"], ln["unit_price"], ln["tax_rate"], ln["discount"])]
    ln["amount"] = [a.sum for a in amounts]
    ln["tax_unit_price"] = [a.tax_unit_price for a in amounts]
    ln["net_unit_price"] = [a.unit_price for a in amounts]
    ln["net_amount"] = [a.money for a in amounts]
    ln["tax_amount"] = [a.tax for a in amounts]
    ln = ln.reset_index(drop=True)
    entry_map = engine.apply(line, ln)
    for row, reason in zip(entry_map.errors["_row"], entry_map.errors["reason"]):
        problems.setdefault(str(ln.loc[row, "order_hub_id"]), f"line {ln.loc[row, 'native_key']}: {reason}")
    entries: dict[str, list[dict[str, Any]]] = {}
    for order, rec in zip(ln.loc[entry_map.frame["_row"], "order_hub_id"], entry_map.frame.drop(columns=["_row"]).to_dict("records")):
        entries.setdefault(str(order), []).append({k: v for k, v in rec.items() if v is not None and v == v})
    hd = heads.assign(customer_code=heads["hub_id"].map(customer_code)).reset_index(drop=True)
    head_map = engine.apply(engine.load_spec(header_spec), hd)
    for row, reason in zip(head_map.errors["_row"], head_map.errors["reason"]):
        problems.setdefault(str(hd.loc[row, "hub_id"]), reason)
    out: dict[str, dict[str, Any]] = {}
    for hub_id, total, rec in zip(hd.loc[head_map.frame["_row"], "hub_id"], hd.loc[head_map.frame["_row"], "total"],
                                  head_map.frame.drop(columns=["_row"]).to_dict("records")):
        if hub_id in problems:
            continue
        rows = entries.get(hub_id, [])
        if order_by:
            rows = sorted(rows, key=lambda e: _order_key(e.get(order_by)))
        if not rows:
            problems[hub_id] = f"{label} document has no lines"
            continue
        if amount:
            lines_sum = sum((money.dec(e[amount]) for e in rows), Decimal(0))
            if lines_sum != money.dec(total):
                problems[hub_id] = f"{label} body lines sum {lines_sum} ≠ order total {total}"
                continue
        body = {k: v for k, v in rec.items() if v is not None and v == v}
        body[nest] = rows
        out[hub_id] = money.wire(body)
    return out, problems


def untaken_orders(conn, erp: str) -> pd.DataFrame:
    """The CRM's orders (not a shop's) the ERP seat ``erp`` has not taken yet (their outbox entry
    pending or waiting) and not cancelled: hub_id and the header fields."""
    o = model.outbox.c
    ids = [h for (h,) in conn.execute(select(o.hub_id).where(
        o.entity == "sales_order", o.target == erp, o.status.in_([outbox.PENDING, outbox.WAITING])))]
    heads = select_in(conn, model.sales_order, "hub_id", ids)
    if heads.empty:
        return heads
    return heads[heads["source"].isna() & (heads["status"] != "cancelled")]
