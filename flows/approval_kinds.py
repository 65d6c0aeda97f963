"""The kinds of approval the approvals engine (flows/approvals.py) runs, each one what the CRM's
orders tell it: which records need an approval (the *cases*), what one OA request asks for (its
*subject* and *version*), whether an approval covers a case, how a hold reads, and which CRM record
shows the decision. A kind's rule is data (quality/rules/<kind>.yaml), its OA form a mapping spec
(the oa seat names it), its workflow the binding's ``workflows``.

- ``special_price`` (特价, 德力西): an order line below its product's floor; one request per customer
  and product at the lowest price asked; covered by an approval at that price or lower, valid on
  the order's date; the line goes once its CRM line carries the approval's number.
- ``over_credit`` (超信用, 远东): an order that would take its customer past available credit (the
  ERP's limit − open receivables − open orders − the customer's earlier orders waiting here); one
  request per order at its total; covered by an approval of that total or more.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from flows import roles
from hub import model, money, xref
from hub.store import select_in

RULE_DIR = Path(__file__).resolve().parent.parent / "quality" / "rules"
#: what every kind's cases carry (a kind adds its own facts for its form)
CASE_COLUMNS = ["kind", "subject", "version", "order_hub_id", "crm_key", "order_no", "order_date", "owner_key",
                "customer_key"]


def rules(kind: str) -> dict[str, Any]:
    """The kind's rule: ``HUB_RULES_DIR/<kind>.yaml`` where a deployment keeps its own, else the project's."""
    own = Path(os.environ["HUB_RULES_DIR"]) / f"{kind}.yaml" if os.environ.get("HUB_RULES_DIR") else None
    return _rules(own if own is not None and own.exists() else RULE_DIR / f"{kind}.yaml")


@lru_cache(maxsize=8)
def _rules(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _order_fields(order: Any) -> dict[str, Any]:
    return {"order_hub_id": order["hub_id"], "order_no": order["order_no"],
            "order_date": str(order["order_date"] or "")[:10], "owner_key": order.get("owner_key"),
            "customer_key": str(order["customer_key"])}


@dataclass(frozen=True)
class SpecialPrice:
    name: str = "special_price"
    label: str = "特价"
    #: the CRM record that shows the decision: the order line (its mapping spec and write-back purpose)
    crm_spec: str = "crm_order_product_to_sales_order_line"
    crm_status: str = "special_price_status"
    #: the CRM field that carries the approved request's number to the ERP (its canonical name)
    crm_ref: str | None = "special_price_ref"

    def cases(self, conn, heads: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
        """Lines priced below their product's floor (list price × the class's share)."""
        cols = [*CASE_COLUMNS, "product_code", "product_name", "list_price", "floor", "price", "discount_rate",
                "quantity"]
        if heads.empty or lines.empty:
            return pd.DataFrame(columns=cols)
        x = model.xref.c
        links = select_in(conn, model.xref, "native_key", lines["product_key"].dropna().astype(str).unique().tolist(),
                          where=[x.entity == "product", x.system == "crm"], columns=["native_key", "hub_id"])
        products = select_in(conn, model.product, "hub_id", links["hub_id"].tolist(),
                             columns=["hub_id", "code", "name", "class_code", "list_price"])
        by_key = links.merge(products, on="hub_id").drop_duplicates("native_key").set_index("native_key")
        rule = rules(self.name).get("floor", {})
        shares = {str(k): Decimal(str(v)) for k, v in (rule.get("by_class") or {}).items()}
        default = Decimal(str(rule.get("default", 1)))
        head = heads.set_index("hub_id")
        out = []
        for rec in lines.itertuples(index=False):
            key = str(rec.product_key)
            if key not in by_key.index or rec.order_hub_id not in head.index:
                continue
            product = by_key.loc[key]
            listed, price = money.dec(product["list_price"]), money.dec(rec.unit_price)
            if listed is None or price is None or listed <= 0:
                continue
            floor = (listed * shares.get(str(product["class_code"] or ""), default)).quantize(Decimal("0.01"))
            if price >= floor:
                continue
            order = head.loc[rec.order_hub_id].copy()
            order["hub_id"] = rec.order_hub_id
            out.append({"kind": self.name, "subject": f"{order['customer_key']}|{product['code']}",
                        "version": money.text(price), "crm_key": str(rec.native_key), **_order_fields(order),
                        "product_code": product["code"], "product_name": product["name"],
                        "list_price": money.text(listed), "floor": money.text(floor), "price": money.text(price),
                        "discount_rate": f"{price / listed:.4f}",
                        "quantity": money.text(money.dec(rec.quantity) or Decimal(0))})
        return pd.DataFrame(out, columns=cols)

    def requests(self, cases: pd.DataFrame) -> pd.DataFrame:
        """One request per customer and product, at the lowest price its waiting lines ask."""
        ranked = cases.assign(_p=cases["version"].map(money.dec)).sort_values("_p", kind="stable")
        qty = cases.groupby("subject")["quantity"].agg(lambda s: money.text(sum((money.dec(v) for v in s), Decimal(0))))
        return ranked.drop_duplicates("subject").drop(columns=["_p", "quantity"]).assign(
            quantity=lambda t: t["subject"].map(qty))

    def covers(self, approved: str, case_version: str) -> bool:
        return money.dec(approved) <= money.dec(case_version)

    def what(self, case: Any) -> str:
        return f"特价 {case['product_code']} at {case['price']} (floor {case['floor']}, list {case['list_price']})"

    def title(self, case: Any) -> str:
        return f"特价审批 {case['customer_name']} {case['product_code']} {case['price']}"


@dataclass(frozen=True)
class OverCredit:
    name: str = "over_credit"
    label: str = "超信用"
    crm_spec: str = "crm_order_to_sales_order"
    crm_status: str = "credit_approval_status"
    crm_ref: str | None = None

    def cases(self, conn, heads: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
        """New orders (not in the ERP yet) that take their customer past available credit, the
        customer's waiting orders counted oldest first."""
        cols = [*CASE_COLUMNS, "erp_customer", "total", "credit_limit", "receivables", "overdue", "open_orders",
                "available", "exceeded_by"]
        if heads.empty:
            return pd.DataFrame(columns=cols)
        erp = roles.erp()
        x = model.xref.c
        in_erp = set(select_in(conn, model.xref, "hub_id", heads["hub_id"].tolist(),
                               where=[x.entity == "sales_order", x.system == erp.system], columns=["hub_id"])["hub_id"])
        heads = heads[~heads["hub_id"].isin(in_erp) & (heads["status"] == "activated")]
        links = select_in(conn, model.xref, "native_key", heads["customer_key"].astype(str).unique().tolist(),
                          where=[x.entity == "customer", x.system == "crm"], columns=["native_key", "hub_id"])
        codes = xref.of_hub_ids(conn, "customer", erp.system, links["hub_id"].tolist())["native_key"]
        code_of = {k: codes.get(h) for k, h in zip(links["native_key"], links["hub_id"]) if codes.get(h)}
        facts = erp.credit(sorted(set(code_of.values())), date.today()) if code_of else {}
        out = []
        crm_ids = xref.of_hub_ids(conn, "sales_order", "crm", heads["hub_id"].tolist())["native_key"]
        ordered = heads.assign(_k=heads["customer_key"].astype(str)).sort_values(["_k", "order_date", "order_no"])
        for key, orders in ordered.groupby("_k"):
            credit = facts.get(code_of.get(key, ""))
            if credit is None or credit.available is None:
                continue
            running = Decimal(0)
            for order in orders.to_dict("records"):
                total = money.dec(order["total"]) or Decimal(0)
                running += total
                if running <= credit.available:
                    continue
                out.append({"kind": self.name, "subject": order["hub_id"], "version": money.text(total),
                            "crm_key": str(crm_ids[order["hub_id"]]) if order["hub_id"] in crm_ids.index else None,
                            **_order_fields(order),
                            "erp_customer": code_of[key], "total": money.text(total),
                            "credit_limit": money.text(credit.limit), "receivables": money.text(credit.receivables),
                            "overdue": money.text(credit.overdue), "open_orders": money.text(credit.open_orders),
                            "available": money.text(credit.available),
                            "exceeded_by": money.text(running - credit.available)})
        return pd.DataFrame(out, columns=cols)

    def requests(self, cases: pd.DataFrame) -> pd.DataFrame:
        return cases.drop_duplicates("subject")

    def covers(self, approved: str, case_version: str) -> bool:
        return money.dec(case_version) <= money.dec(approved)

    def what(self, case: Any) -> str:
        return (f"超信用 order {case['order_no']} ({case['total']}) is {case['exceeded_by']} over the available credit "
                f"{case['available']} (limit {case['credit_limit']}, receivables {case['receivables']}, open orders "
                f"{case['open_orders']})")

    def title(self, case: Any) -> str:
        return f"超信用审批 {case['customer_name']} {case['order_no']} {case['total']}"


KINDS = {k.name: k for k in (SpecialPrice(), OverCredit())}
