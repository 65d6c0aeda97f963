"""Products, sales orders and the warehouse's shipping plan, on top of the seeded companies.

U8 gets its inventory archive (``Inventory`` with ``ComputationUnit`` units and
``InventoryClass`` classes); the CRM gets the products its users typed in before any
integration (most with the U8 code in ``productCode__c``, a few without one) and orders with
lines that reference seeded accounts and those products.  Amounts are computed the way the CRM
computes them: Decimal, the line rounded half-up to the fen.

The warehouse's plan (``orders_plan.json``, read by the U8 stand-in's ``/__sandbox/u8/ship``)
says which orders U8 verifies and ships, fully, partly or in two dispatches, with carrier,
tracking number and serial numbers; ``after_push`` lists the edits a salesperson makes once
the orders are in U8 (served by the CRM stand-in's ``/__sandbox/crm/orders/after-push``).
Ground truth per order goes to ``orders_truth.json``.  An RNG of its own: same seed, same files,
and the customer data does not move when the order volume changes.
"""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

CST = timezone(timedelta(hours=8))
SEED_NOW = datetime(2025, 6, 30, 18, 0, tzinfo=CST)
ORDER_START = datetime(2025, 1, 2, 9, 0, tzinfo=CST)
FEN = Decimal("0.01")

#: U8 计量单位 (ComputationUnit).  "99" 桶 is one the hub's value map does not know.
UNITS: tuple[tuple[str, str], ...] = (("01", "个"), ("02", "台"), ("03", "套"), ("04", "箱"), ("05", "千克"),
                                      ("06", "米"), ("99", "桶"))
#: U8 存货分类 (InventoryClass): code, name, grade.
CLASSES: tuple[tuple[str, str, int], ...] = (
    ("01", "仪器仪表", 1), ("0101", "分析仪器", 2), ("0102", "测量仪表", 2), ("02", "配件耗材", 1),
    ("0201", "传感器", 2), ("0202", "试剂耗材", 2), ("0203", "线缆管材", 2), ("03", "服务", 1), ("0301", "技术服务", 2),
)
#: What each leaf class sells: (name stem, spec stems, unit, tax rate %, price range in yuan, serialised).
CATALOG: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, int, tuple[str, str], bool]] = {
    "0101": (("便携式气体检测仪", "红外光谱分析仪", "总有机碳分析仪", "水质多参数分析仪", "离子色谱仪"),
             ("GT-{n}", "IR-{n}A", "TOC-{n}", "WQ-{n}S", "IC-{n}"), "02", 13, ("3800", "168000"), True),
    "0102": (("数字压力表", "电磁流量计", "温湿度记录仪", "超声波液位计", "精密万用表"),
             ("0-{n}MPa", "DN{n}", "TH-{n}", "UL-{n}", "DM{n}"), "02", 13, ("268", "12800"), True),
    "0201": (("氧气传感器", "可燃气体探头", "pH 复合电极", "电导率电极", "温度探头 PT100"),
             ("O2-{n}", "LEL-{n}", "PH-{n}", "EC-{n}", "PT-{n}"), "01", 13, ("85", "2680"), False),
    "0202": (("标准缓冲液", "COD 试剂", "氨氮试剂", "总磷试剂", "校准气体"),
             ("pH{n} 500mL", "{n}次/盒", "{n}次/盒", "{n}次/盒", "{n}ppm 8L"), "04", 13, ("2.45", "398"), False),
    "0203": (("屏蔽信号电缆", "PTFE 采样管", "不锈钢取样管"),
             ("RVVP 2×{n}", "Φ{n}mm", "Φ{n}×1mm"), "06", 13, ("5.35", "86"), False),
    "0301": (("现场安装调试", "年度校准服务", "延长保修"), ("{n}人天", "{n}台次", "{n}年"), "03", 6, ("800", "6800"), False),
}
#: Reagents and cable by weight are sold in fractions; these units take decimal quantities.
FRACTIONAL_UNITS = {"05", "06"}
#: Prices whose line totals land on half a fen: float rounding gets these wrong, Decimal does not.
TRAP_PRICES = ("19.99", "5.35", "2.45", "0.35", "1.15", "8.05", "12.45")

#: Order labels (share of all orders; the rest are "activated" and go to U8).
ORDER_SHARES: dict[str, float] = {
    "draft": 0.06,                # 草稿: not activated, never sent
    "cancelled": 0.03,            # 已作废 before it ever reached U8
    "header_total_wrong": 0.01,   # the order total typed over by hand: Σ lines ≠ header
    "line_amount_wrong": 0.01,    # a line's amount computed with float rounding (2.67 for 2.675)
    "product_not_in_u8": 0.02,    # a line sells a product that exists only in the CRM
}
STATUS = {"draft": 1, "activated": 2, "cancelled": 3}   # 销售易 order status picklist (sandbox tenant)
SPECIAL_PRICE_SHARE = 0.05     # lines with an approved special price (特价审批)
DISCOUNT_SHARE = 0.15          # lines with a discount amount (折扣额)
CRM_PRODUCT_SHARE = 0.7        # sellable U8 products the CRM users had typed in already
SHIP_SHARE = 0.5               # activated orders the warehouse ships (plan)
ORDER_ID_START = 5_210_000_000_000_000
PRODUCT_ID_START = 5_100_000_000_000_000


def _fen(d: Decimal) -> Decimal:
    return d.quantize(FEN, rounding=ROUND_HALF_UP)


def _sql_dt(dt: datetime) -> str:
    return dt.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S.000")


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


@dataclass
class Orders:
    """Everything ``write`` stores."""

    units: list[tuple[str, str]]
    classes: list[tuple[str, str, int]]
    inventory: list[dict[str, Any]]
    crm_products: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    truth: list[dict[str, Any]]
    plan: dict[str, Any] = field(default_factory=dict)
    product_truth: list[dict[str, Any]] = field(default_factory=list)


def _labels(n: int, shares: dict[str, float], rng: random.Random, rest: str) -> list[str]:
    labels: list[str] = []
    for name, share in shares.items():
        labels += [name] * round(n * share)
    labels = labels[:n] + [rest] * max(0, n - len(labels))
    rng.shuffle(labels)
    return labels


def _price(rng: random.Random, low: str, high: str) -> Decimal:
    lo, hi = Decimal(low), Decimal(high)
    if rng.random() < 0.25 and lo < Decimal(30):
        return Decimal(rng.choice([p for p in TRAP_PRICES if lo <= Decimal(p) <= hi] or [low]))
    raw = lo + (hi - lo) * Decimal(str(round(rng.random() ** 2, 4)))
    step = Decimal("100") if raw > 5000 else Decimal("10") if raw > 500 else Decimal("0.01")
    value = (raw / step).quantize(Decimal(1), rounding=ROUND_DOWN) * step
    return max(lo, value - (Decimal("0.01") if step > 1 and rng.random() < 0.5 else 0))


def _products(n: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """U8 Inventory rows and their truth (label: clean | old_tax_rate | unknown_unit | not_for_sale | discontinued)."""
    leaves = list(CATALOG)
    labels = _labels(n, {"not_for_sale": 0.05, "discontinued": 0.05}, rng, "clean")
    sellable = [i for i, lab in enumerate(labels) if lab == "clean"]
    for label, i in zip(("old_tax_rate", "unknown_unit"), sellable[:2] if n >= 20 else []):
        labels[i] = label
    seq: dict[str, int] = {}
    rows, truth = [], []
    for i, label in enumerate(labels):
        cls = leaves[i % len(leaves)] if i < len(leaves) else rng.choice(leaves)
        names, specs, unit, tax, (low, high), serial = CATALOG[cls]
        seq[cls] = seq.get(cls, 0) + 1
        code = f"{cls}{seq[cls]:03d}" if seq[cls] < 1000 else f"{cls}{seq[cls]:05d}"
        k = rng.randrange(len(names))
        name = names[k] if seq[cls] <= len(names) else f"{names[k]} {rng.choice('ABCDEFGH')}{rng.randint(1, 9)}型"
        spec = specs[k % len(specs)].format(n=rng.choice((5, 10, 20, 50, 100, 200, 903, 1600)))
        created = datetime(2016, 1, 1, tzinfo=CST) + timedelta(days=rng.randint(0, 3000))
        modified = created + (SEED_NOW - created) * rng.random() ** 2
        row = {
            "cInvCode": code, "cInvName": name, "cInvStd": spec, "cInvCCode": cls, "cComUnitCode": unit,
            "iTaxRate": tax, "iInvSPrice": float(_price(rng, low, high)), "bSale": 1, "bPurchase": 1, "bSelf": 0,
            "bComsume": 0, "dSDate": _sql_dt(created), "dEDate": None, "cCreatePerson": rng.choice(("demo", "李娜", "王磊")),
            "dModifyDate": _sql_dt(modified), "iGroupType": 0, "bInvType": 0, "bService": 1 if cls == "0301" else 0,
        }
        if label == "not_for_sale":
            row.update(bSale=0, bSelf=1, cInvName=name + "（原料）")
        elif label == "discontinued":
            row["dEDate"] = _sql_dt(SEED_NOW - timedelta(days=rng.randint(30, 700)))
        elif label == "old_tax_rate":
            row["iTaxRate"] = 17  # the rate before 2018: no longer a valid VAT rate
        elif label == "unknown_unit":
            row["cComUnitCode"] = "99"
        rows.append(row)
        truth.append({"code": code, "label": label, "serialised": serial, "unit": row["cComUnitCode"],
                      "tax_rate": row["iTaxRate"], "price": str(Decimal(str(row["iInvSPrice"])))})
    return rows, truth


def current_stock(inventory: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """U8 现存量 (CurrentStock) of the goods (not services): one row per warehouse and batch, as U8
    keeps it. Most goods lie in 01 主仓 only, some in 02 分仓 too, some in two batches; a few are
    frozen in part (fStopQuantity) and a few are below zero (an account that allows 负库存).
    fAvaQuantity (可用量) = on hand − to be shipped (fOutQuantity) − frozen; the stand-in keeps it so
    as orders reserve and deliveries take stock (sandbox/u8_orders.py). Drawn from its own random
    stream, so the rest of the seed is what it was without it."""
    rng = random.Random("u8-current-stock")
    rows, auto = [], 1
    for inv in inventory:
        if inv.get("bService"):
            continue
        places = [("01", "")]
        if rng.random() < 0.3:
            places.append(("02", ""))
        if rng.random() < 0.1:
            places.append(("01", f"B{rng.randint(2023, 2025)}{rng.randint(1, 12):02d}"))
        for wh, batch in places:
            qty = -rng.randint(1, 3) if rng.random() < 0.05 else rng.randint(0, 120)
            stop = rng.randint(1, 5) if qty > 5 and rng.random() < 0.05 else 0
            rows.append({"AutoID": auto, "cWhCode": wh, "cInvCode": inv["cInvCode"], "cBatch": batch,
                         "iQuantity": qty, "fOutQuantity": 0, "fInQuantity": 0, "fStopQuantity": stop,
                         "fAvaQuantity": qty - stop})
            auto += 1
    return rows


def _crm_products(inventory: list[dict[str, Any]], truth: list[dict[str, Any]], rng: random.Random,
                  unit_names: dict[str, str], class_names: dict[str, str]) -> list[dict[str, Any]]:
    """Products the CRM users typed in themselves: most with the U8 code, a few without one."""
    out: list[dict[str, Any]] = []
    pid = PRODUCT_ID_START
    created0 = _ms(datetime(2018, 3, 1, tzinfo=CST))
    for row, t in zip(inventory, truth):
        keep = t["label"] in ("old_tax_rate", "unknown_unit") or (t["label"] == "clean" and rng.random() < CRM_PRODUCT_SHARE)
        if not keep:
            continue
        pid += rng.randint(1, 4000)
        created = created0 + rng.randint(0, 200_000_000_000)
        name = row["cInvName"] if rng.random() < 0.8 else row["cInvName"] + " "
        # the CRM copy of a product U8 still books at the old 17 % was corrected to 13 % by hand
        out.append({"id": pid, "productName": name, "productCode__c": row["cInvCode"], "spec__c": row["cInvStd"],
                    "unit": unit_names.get(row["cComUnitCode"]), "priceUnit": row["iInvSPrice"],
                    "taxRate__c": 13 if row["iTaxRate"] == 17 else row["iTaxRate"],
                    "productClass__c": class_names.get(row["cInvCCode"]),
                    "enableStatus": 1, "hubId__c": None, "createdAt": created, "updatedAt": created})
        t["crm_id"] = str(pid)
    for name, code, unit, price, tax in (("现场安装调试服务（CRM）", None, "套", 1200.0, 6),
                                          ("延保服务（一年）", None, "套", 2680.0, 6),
                                          ("定制标定气体", "0299999", "箱", 560.0, 13)):
        pid += rng.randint(1, 4000)
        created = created0 + rng.randint(0, 200_000_000_000)
        out.append({"id": pid, "productName": name, "productCode__c": code, "spec__c": None, "unit": unit,
                    "priceUnit": price, "taxRate__c": tax, "productClass__c": "其他", "enableStatus": 1,
                    "hubId__c": None, "createdAt": created, "updatedAt": created})
        truth.append({"code": code, "label": "crm_only", "crm_id": str(pid), "serialised": False,
                      "unit": None, "tax_rate": tax, "price": str(Decimal(str(price)))})
    return out


def _quantity(rng: random.Random, unit: str, serial: bool) -> Decimal:
    if unit in FRACTIONAL_UNITS:
        return Decimal(rng.choice(("0.5", "1.5", "2.5", "3", "12.75", "20", "7.35")))
    if serial:
        return Decimal(rng.choice((1, 1, 1, 2, 2, 3)))
    return Decimal(rng.randint(1, 24))


def _line(rng: random.Random, product: dict[str, Any], prod_truth: dict[str, Any]) -> dict[str, Any]:
    """One order line as the CRM stores it, its amount computed as the CRM does (Decimal, half-up)."""
    list_price = Decimal(str(product["priceUnit"]))
    unit = prod_truth.get("unit") or "03"
    qty = _quantity(rng, unit, prod_truth.get("serialised", False))
    price, special = list_price, None
    r = rng.random()
    if r < SPECIAL_PRICE_SHARE:
        price = _fen(list_price * Decimal("0.72"))
        special = f"TJ2025-{rng.randint(1, 9999):04d}"
    elif r < 0.3:
        price = _fen(list_price * Decimal(1 - rng.randint(3, 10) / 100))
    discount = Decimal(0)
    if special is None and rng.random() < DISCOUNT_SHARE:
        discount = _fen(qty * price * Decimal("0.05")) if rng.random() < 0.6 else min(Decimal(50), _fen(qty * price / 4))
    amount = _fen(qty * price - discount)
    return {"productId": product["id"], "quantity": float(qty), "unitPrice": float(price),
            "discount__c": float(discount), "taxRate__c": product["taxRate__c"], "amount": float(amount),
            "specialPriceApproval__c": special, "shippedQuantity__c": None,
            "_qty": qty, "_price": price, "_discount": discount, "_amount": amount}


def _plan_kind(rng: random.Random, lines: list[dict[str, Any]]) -> str:
    multi = len(lines) > 1 or lines[0]["_qty"] >= 2
    r = rng.random()
    if r < 0.55 or not multi:
        return "full"
    return "partial" if r < 0.8 else "two_stage"


def generate(accounts: list[dict[str, Any]], crm_truth: list[dict[str, Any]], seed: int, orders: int,
             products: int | None = None, user_ids: list[int] | None = None) -> Orders:
    """Draw products, orders, lines and the plan (no I/O)."""
    rng = random.Random(f"orders-{seed}")
    n_products = products or max(40, min(400, orders // 4 + 30))
    inventory, prod_truth = _products(n_products, rng)
    unit_names, class_names = dict(UNITS), {c: n for c, n, _ in CLASSES}
    crm_products = _crm_products(inventory, prod_truth, rng, unit_names, class_names)
    by_crm = {int(t["crm_id"]): t for t in prod_truth if t.get("crm_id")}
    orderable = [p for p in crm_products if by_crm[p["id"]]["label"] == "clean"]
    # CRM products the hub cannot send: no U8 code, a code U8 lacks, or a U8 record the hub refuses
    crm_only = [p for p in crm_products if by_crm[p["id"]]["label"] in ("crm_only", "old_tax_rate", "unknown_unit")]
    fault_of = {t["crm_id"]: t["fault"] for t in crm_truth}
    good_accounts = [a for a in accounts if fault_of.get(str(a["id"])) in ("clean", "name_variant")]
    labels = _labels(orders, ORDER_SHARES, rng, "activated")
    out_orders, out_lines, truth = [], [], []
    oid = ORDER_ID_START
    span = (SEED_NOW - ORDER_START).total_seconds()
    stamps = sorted(ORDER_START + timedelta(seconds=rng.uniform(0, span)) for _ in range(orders))
    used_ms: set[int] = set()

    def distinct(ms: int) -> int:
        while ms in used_ms:
            ms += 1
        used_ms.add(ms)
        return ms

    owners = user_ids or [None]
    for seq, (label, when) in enumerate(zip(labels, stamps), start=1):
        account = rng.choice(good_accounts if good_accounts and rng.random() < 0.9 else accounts)
        oid += rng.randint(1, 4000)
        n_lines = rng.choices((1, 2, 3, 4, 5), (30, 30, 20, 12, 8))[0]
        lines = []
        for k in range(n_lines):
            pool = crm_only if label == "product_not_in_u8" and k == n_lines - 1 else orderable
            product = rng.choice(pool)
            lines.append(_line(rng, product, by_crm[product["id"]]))
        if label == "line_amount_wrong":
            bad = lines[0]
            floaty = round(float(bad["_qty"]) * float(bad["_price"]) - float(bad["_discount"]), 2)
            bad["amount"] = floaty if Decimal(str(floaty)) != bad["_amount"] else float(bad["_amount"] - FEN)
        total = sum((Decimal(str(ln["amount"])) for ln in lines), Decimal(0))
        if label == "header_total_wrong":
            total += Decimal(rng.choice(("0.01", "10", "100.5")))
        created = distinct(_ms(when))
        updated = created if rng.random() < 0.6 else distinct(created + rng.randint(60_000, 5 * 86_400_000))
        owner = rng.choice(owners)
        status = STATUS.get(label, STATUS["activated"])
        po = f"DD{when:%Y%m%d}{seq:06d}"
        out_orders.append({"id": oid, "po": po, "accountId": account["id"], "status": status,
                           "orderDate": f"{when:%Y-%m-%d}", "amount": float(total),
                           "comment": rng.choice((None, None, "月底前发货", "开具增值税专用发票", "分批发货")),
                           "erpCode__c": None, "hubId__c": None, "deliveryStatus__c": None, "ownerId": owner,
                           "createdAt": created, "updatedAt": updated, "createdBy": owner, "updatedBy": owner})
        for ln in lines:
            oid += rng.randint(1, 50)
            ln_row = {k: v for k, v in ln.items() if not k.startswith("_")}
            ln_row.update(id=oid, orderId=out_orders[-1]["id"], ownerId=owner, createdAt=created,
                          updatedAt=distinct(created + 1), createdBy=owner, updatedBy=owner)
            out_lines.append(ln_row)
        plan = _plan_kind(rng, lines) if label == "activated" and rng.random() < SHIP_SHARE else None
        if plan is None and label == "activated" and rng.random() < 0.15:
            plan = "verify_only"
        truth.append({"crm_id": str(out_orders[-1]["id"]), "po": po, "account_id": str(account["id"]),
                      "account_fault": fault_of.get(str(account["id"])), "label": label, "lines": n_lines,
                      "total": str(total), "lines_total": str(sum((ln["_amount"] for ln in lines), Decimal(0))),
                      "special_price_lines": sum(1 for ln in lines if ln["specialPriceApproval__c"]),
                      "plan": plan})
    plan = _plan(truth, rng)
    return Orders(list(UNITS), list(CLASSES), inventory, crm_products, out_orders, out_lines, truth, plan, prod_truth)


def _plan(truth: list[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    """The warehouse's work per order number, and the salesperson's edits after the push."""
    carriers = (("01", "SF", 12), ("02", "DPK", 10), ("03", "", 0))
    ship: dict[str, Any] = {}
    for t in truth:
        if not t["plan"]:
            continue
        code, prefix, digits = rng.choice(carriers)
        stages = 2 if t["plan"] == "two_stage" else 0 if t["plan"] == "verify_only" else 1
        ship[t["po"]] = {"kind": t["plan"], "carrier": code,
                         "tracking": [f"{prefix}{rng.randrange(10 ** (digits - 1), 10 ** digits)}" if digits else ""
                                      for _ in range(stages)],
                         "serial_seed": rng.randrange(10 ** 6)}
    eligible = [t for t in truth if t["label"] == "activated" and t["account_fault"] in ("clean", "name_variant")]
    unshipped = [t for t in eligible if not t["plan"]]
    shipped = [t for t in eligible if t["plan"] == "full"]
    verified = [t for t in eligible if t["plan"] == "verify_only"]
    after: list[dict[str, Any]] = []
    for t, action, expect in ((unshipped[0:1], "change", "replaced"), (unshipped[1:2], "change", "replaced"),
                              (unshipped[2:3], "cancel", "closed"), (shipped[0:1], "cancel", "refused: shipped"),
                              (verified[0:1], "change", "refused: verified")):
        for item in t:
            after.append({"order_id": item["crm_id"], "po": item["po"], "action": action, "expect": expect})
            item["after_push"] = {"action": action, "expect": expect}
    return {"ship": ship, "after_push": after}


def write(data: Orders, directory: Path) -> None:
    """Append the products and orders to ``crm.db``, the inventory to ``u8.db``, write the plan and truth."""
    from . import crm_schema

    crm = sqlite3.connect(directory / "crm.db")
    try:
        for api_key, rows in (("product", data.crm_products), ("order", data.orders), ("orderProduct", data.lines)):
            cols = crm_schema.field_order(api_key)
            sql = (f'INSERT INTO "{api_key}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                   f'VALUES ({", ".join("?" * len(cols))})')
            crm.executemany(sql, ([r.get(c) for c in cols] for r in rows))
        crm.commit()
    finally:
        crm.close()
    u8 = sqlite3.connect(directory / "u8.db")
    try:
        u8.executemany('INSERT INTO ComputationUnit ("cComunitCode", "cComUnitName", "cGroupCode", "bMainUnit") '
                       "VALUES (?, ?, '01', 1)", data.units)
        u8.executemany('INSERT INTO InventoryClass ("cInvCCode", "cInvCName", "iInvCGrade", "bInvCEnd") '
                       "VALUES (?, ?, ?, ?)", [(c, n, g, 1 if g == 2 else 0) for c, n, g in data.classes])
        if data.inventory:
            cols = list(data.inventory[0])
            u8.executemany(f'INSERT INTO Inventory ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                           f'VALUES ({", ".join("?" * len(cols))})', ([r[c] for c in cols] for r in data.inventory))
        stock = current_stock(data.inventory)
        if stock:
            cols = list(stock[0])
            u8.executemany(f'INSERT INTO CurrentStock ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                           f'VALUES ({", ".join("?" * len(cols))})', ([r[c] for c in cols] for r in stock))
        u8.commit()
    finally:
        u8.close()
    (directory / "orders_plan.json").write_text(json.dumps(data.plan, ensure_ascii=False, indent=1) + "\n",
                                                encoding="utf-8")
    with open(directory / "orders_truth.json", "w", encoding="utf-8") as fh:
        meta = {"orders": len(data.orders), "lines": len(data.lines), "products_u8": len(data.inventory),
                "products_crm": len(data.crm_products), "shares": ORDER_SHARES,
                "labels": _count(data.truth, "label"), "plans": _count(data.truth, "plan")}
        fh.write('{"meta": ' + json.dumps(meta, ensure_ascii=False))
        for key, rows in (("orders", data.truth), ("products", data.product_truth)):
            fh.write(f',\n"{key}": [\n' + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]")
        fh.write("}\n")


def _count(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[str(r[key])] = out.get(str(r[key]), 0) + 1
    return dict(sorted(out.items()))


def default_orders(accounts: int) -> int:
    """Orders seeded by default: one for every two accounts."""
    return max(0, accounts // 2)
