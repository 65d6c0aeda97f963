"""What a sales order needs before it can go to U8, and the body U8 gets.

- **Prerequisites**: the order's customer and every product must already be in U8 (xref
  customer/product → u8). An order that lacks one *waits* with the reason; it is looked at
  again on every run, so it goes as soon as customer_master / product_master bring the
  missing record (a late upstream never loses an order).
- **U8's state**: U8's OpenAPI has no order edit or delete (apiCenter saleorder: add, get,
  verify, close ...). A change after the first push closes the U8 order and adds the new
  version; a cancellation closes it. Both only while U8 allows: nothing dispatched yet and, for
  a change, not verified (审核) either. The state is read from SO_SOMain / SO_SODetails by
  ODBC, set-based, for the few orders that changed.
- **The body**: header and ``entry`` lines from the YAML specs, amounts from ``hub.money``
  (Decimal, half-up to the fen), sent as decimal text.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from hub import model, money, xref
from hub.store import select_in
from mappings import engine

TO_U8, LINE_TO_U8 = "sales_order_to_u8", "sales_order_line_to_u8"
HEADER_HASH = ("order_no", "customer_key", "status", "order_date", "total", "memo", "erp_code")
LINE_HASH = ("native_key", "line_no", "product_key", "quantity", "unit_price", "discount", "tax_rate", "amount",
             "special_price_ref")
BIZ_NS = uuid.UUID("a3f0c6d2-5e1b-4b8f-8d2a-7c9e1f0b3a54")


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


def biz_id(hub_id: str, revision: int) -> str:
    """The idempotency key of the n-th U8 order of one CRM order: an add repeated after a crash
    gets the order it created, and a later version (after a change) gets a new one."""
    return str(uuid.uuid5(BIZ_NS, f"{hub_id}:{revision}"))


# --- prerequisites ---------------------------------------------------------------------------------

def _u8_codes(conn, entity: str, crm_keys: pd.Series) -> pd.Series:
    """CRM key → U8 code through xref (crm key → hub id → u8 key); missing ones absent."""
    keys = [str(k) for k in crm_keys.dropna().unique()]
    if not keys:
        return pd.Series(dtype=object)
    crm = xref.lookup(conn, entity, "crm", keys)[["native_key", "hub_id"]]
    x = model.xref.c
    u8 = select_in(conn, model.xref, "hub_id", crm["hub_id"].tolist(), where=[x.entity == entity, x.system == "u8"],
                   columns=["hub_id", "native_key"]).sort_values("native_key").drop_duplicates("hub_id")
    both = crm.merge(u8.rename(columns={"native_key": "code"}), on="hub_id")
    return both.set_index("native_key")["code"]


def _customer_names(conn, keys: list[str]) -> dict[str, str]:
    s = model.customer_source.c
    rows = select_in(conn, model.customer_source, "native_key", keys, where=[s.system == "crm"],
                     columns=["native_key", "name"])
    return dict(zip(rows["native_key"], rows["name"]))


def prerequisites(conn, heads: pd.DataFrame, lines: pd.DataFrame) -> tuple[pd.Series, pd.Series, dict[str, str]]:
    """(customer code per order hub id, product code per line hub id, hub id → why it waits)."""
    cust = _u8_codes(conn, "customer", heads["customer_key"])
    prod = _u8_codes(conn, "product", lines["product_key"]) if not lines.empty else pd.Series(dtype=object)
    customer_code = heads.set_index("hub_id")["customer_key"].astype(str).map(cust)
    product_code = lines.set_index("hub_id")["product_key"].astype(str).map(prod) if not lines.empty else pd.Series(dtype=object)
    names = _customer_names(conn, heads.loc[customer_code.isna().to_numpy(), "customer_key"].astype(str).tolist())
    waits: dict[str, list[str]] = {}
    for hub_id, key in zip(heads["hub_id"], heads["customer_key"].astype(str)):
        if pd.isna(customer_code.get(hub_id)):
            who = f"{names[key]} ({key})" if key in names else key
            waits.setdefault(hub_id, []).append(f"customer {who} is not in U8 yet (customer_master creates or links it)")
    if not lines.empty:
        missing = lines[lines["hub_id"].map(product_code).isna()]
        for order, part in missing.groupby("order_hub_id"):
            keys = ", ".join(sorted(part["product_key"].astype(str).unique()))
            waits.setdefault(str(order), []).append(
                f"product {keys} (CRM) has no U8 inventory record linked yet (product_master links it by productCode__c)")
    return customer_code, product_code, {h: "; ".join(r) for h, r in waits.items()}


# --- U8's state ------------------------------------------------------------------------------------

@dataclass
class U8State:
    """What U8 says about the orders the hub sent: who verified or closed them, what was shipped."""

    verified: dict[str, str] = field(default_factory=dict)   # code → "by X on D"
    closed: dict[str, str] = field(default_factory=dict)
    shipped: dict[str, Decimal] = field(default_factory=dict)  # code → Σ iFHQuantity


def u8_state(connector, codes: list[str]) -> U8State:
    """Read SO_SOMain / SO_SODetails of ``codes`` by ODBC (two set-based queries per 500 codes)."""
    state = U8State()
    if not codes:
        return state
    for row in connector.lookup("SO_SOMain", "cSOCode", codes):
        code = str(row["cSOCode"])
        if row.get("cVerifier"):
            state.verified[code] = f"verified (审核) by {row['cVerifier']} on {str(row.get('dverifydate') or '')[:10]}"
        if row.get("cCloser"):
            state.closed[code] = f"closed by {row['cCloser']} on {str(row.get('dclosedate') or '')[:10]}"
    for row in connector.lookup("SO_SODetails", "cSOCode", codes):
        qty = money.dec(row.get("iFHQuantity")) or Decimal(0)
        state.shipped[str(row["cSOCode"])] = state.shipped.get(str(row["cSOCode"]), Decimal(0)) + qty
    return state


def refusal(op: str, code: str, state: U8State) -> str | None:
    """Why U8's state forbids closing (cancel) or replacing (change) its order; None if allowed."""
    if state.shipped.get(code, Decimal(0)) != 0:
        what = "cancelled" if op == "cancel" else "changed"
        return (f"U8 order {code} has dispatches (shipped {money.text(state.shipped[code])}): the order was {what} "
                f"in the CRM after shipping; handle it in U8 (return / 退货) or revert the CRM order")
    if op == "replace" and code in state.closed:
        return f"U8 order {code} was {state.closed[code]} in U8; the CRM change cannot be applied"
    if op == "replace" and code in state.verified:
        return (f"U8 order {code} is {state.verified[code]}: un-verify it in U8 (弃审) to let the hub replace it, "
                f"or revert the change in the CRM")
    return None


# --- the saleorder/add body ------------------------------------------------------------------------

def payloads(heads: pd.DataFrame, lines: pd.DataFrame, customer_code: pd.Series,
             product_code: pd.Series) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """hub id → saleorder body (Decimals as text), and hub id → why no body could be built."""
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
    entry_map = engine.apply(engine.load_spec(LINE_TO_U8), ln)
    for row, reason in zip(entry_map.errors["_row"], entry_map.errors["reason"]):
        problems.setdefault(str(ln.loc[row, "order_hub_id"]), f"line {ln.loc[row, 'native_key']}: {reason}")
    entries: dict[str, list[dict[str, Any]]] = {}
    for order, rec in zip(ln.loc[entry_map.frame["_row"], "order_hub_id"], entry_map.frame.drop(columns=["_row"]).to_dict("records")):
        entries.setdefault(str(order), []).append({k: v for k, v in rec.items() if v is not None and v == v})
    hd = heads.assign(customer_code=heads["hub_id"].map(customer_code)).reset_index(drop=True)
    head_map = engine.apply(engine.load_spec(TO_U8), hd)
    for row, reason in zip(head_map.errors["_row"], head_map.errors["reason"]):
        problems.setdefault(str(hd.loc[row, "hub_id"]), reason)
    out: dict[str, dict[str, Any]] = {}
    for hub_id, total, rec in zip(hd.loc[head_map.frame["_row"], "hub_id"], hd.loc[head_map.frame["_row"], "total"],
                                  head_map.frame.drop(columns=["_row"]).to_dict("records")):
        if hub_id in problems:
            continue
        rows = sorted(entries.get(hub_id, []), key=lambda e: e["rowno"])
        lines_sum = sum((money.dec(e["sum"]) for e in rows), Decimal(0))
        if not rows or lines_sum != money.dec(total):  # the gate checked the CRM's amounts; this checks ours
            problems[hub_id] = f"U8 body lines sum {lines_sum} ≠ order total {total}"
            continue
        body = {k: v for k, v in rec.items() if v is not None and v == v}
        body["entry"] = rows
        out[hub_id] = money.wire(body)
    return out, problems
