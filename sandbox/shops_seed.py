"""``shops.db`` and the ``shops`` credentials: one store per platform with messy orders.

Outer SKU codes are the U8 seed's product codes (``Inventory.cInvCode`` of sellable products, read
from ``u8.db`` as sap_s4_seed does), ~3 % of lines carry codes the ERP lacks (or none). The mess:
coupons and platform discounts spread over the lines, postage, partial refunds, split packages,
full-width names, emoji memos, unpaid and cancelled orders, a few orders whose paid amount is off
by some fen (``inconsistent`` in the doc), modified times over the 3 days before the seed ran.
Money is 分 integers throughout: paid = Σ line payment + postage unless deliberately inconsistent.
"""

from __future__ import annotations

import random
import sqlite3
import string
import time
from pathlib import Path
from typing import Any

from . import shops_store

PLATFORMS = ("taobao", "jd", "youzan", "doudian", "pdd")
#: state shares (the rest are paid, not shipped yet); PDD lists only paid orders (UNVERIFIED
#: whether its increment list can ever show an unpaid order), so it gets none; nor does JOS, whose
#: documented pop.order.search order_state values name no unpaid state (fs:47189090667, fs:29150772807).
SHARES = {"unpaid": 0.06, "cancelled": 0.05, "shipped": 0.25, "completed": 0.09}
UNKNOWN_SKU_SHARE = 0.03
#: 天猫 orders paid but held by the platform (PAID_FORBID_CONSIGN: 拼团中, 发货强管控)
FORBID_CONSIGN_SHARE = 0.03
INCONSISTENT_SHARE = 0.01
FULL_WIDTH = str.maketrans(string.ascii_letters + string.digits + " ",
                           "".join(chr(ord(c) + 0xFEE0) for c in string.ascii_letters + string.digits) + "\u3000")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛")
CITIES = ("浙江省杭州市西湖区文三路90号", "广东省深圳市南山区科技园南区8栋", "北京市朝阳区建国路88号SOHO现代城",
          "上海市浦东新区张江路1388弄", "四川省成都市武侯区天府大道北段28号", "湖北省武汉市洪山区珞喻路1037号")
MEMOS = ("请尽快发货🚀", "送人的，不要放发票🎁", "周末配送 ", "🙏麻烦包装好一点", "到了打电话📞", None, None, None)
SELLER_MEMOS = ("改为发顺丰", "老客户，送赠品", None, None, None, None)
CARRIERS = ("顺丰速运", "中通快递", "圆通速递", "韵达快递", "申通快递")


def credentials(seed: int) -> dict[str, dict[str, str]]:
    """Per platform app credentials (their own RNG: the other systems' credentials do not move)."""
    rng = random.Random(f"shops-credentials-{seed}")

    def draw(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    hexd, digits = "0123456789abcdef", string.digits
    return {
        "taobao": {"app_key": "2" + draw(digits, 7), "app_secret": draw(hexd, 32),
                   "session": "6100" + draw(hexd, 52), "seller_nick": "九号官方旗舰店"},
        "jd": {"app_key": draw(hexd, 32).upper(), "app_secret": draw(hexd, 32), "access_token": draw(hexd, 32)},
        "pdd": {"app_key": draw(hexd, 32), "app_secret": draw(hexd, 40), "access_token": draw(hexd, 32)},
        "doudian": {"app_key": "7" + draw(digits, 18), "app_secret": f"{draw(hexd, 8)}-{draw(hexd, 4)}-{draw(hexd, 4)}-"
                    f"{draw(hexd, 4)}-{draw(hexd, 12)}", "shop_id": str(rng.randint(1000000, 9999999))},
        "youzan": {"app_key": draw(hexd, 18), "app_secret": draw(hexd, 32), "grant_id": str(rng.randint(40000000, 99999999))},
    }


def products(u8_db: Path) -> list[tuple[str, str, int]]:
    """(code, name, list price in 分) of what U8 sells."""
    conn = sqlite3.connect(f"file:{u8_db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT cInvCode, cInvName, iInvSPrice FROM Inventory WHERE bSale = 1 AND dEDate IS NULL "
                            "ORDER BY cInvCode").fetchall()
    finally:
        conn.close()
    return [(code, name, max(100, int(round(float(price or 0) * 100)))) for code, name, price in rows]


def _tid(platform: str, rng: random.Random, i: int, when: int) -> str:
    day = time.strftime("%y%m%d", time.localtime(when))
    if platform == "taobao":
        return str(3_000_000_000_000_000_000 + i * 7919 + rng.randint(0, 7000))
    if platform == "jd":
        return str(280_000_000_000 + i * 37 + rng.randint(0, 30))
    if platform == "pdd":
        return f"{day}-{rng.randint(10**14, 10**15 - 1)}"
    if platform == "doudian":
        return str(6_920_000_000_000_000_000 + i * 1009 + rng.randint(0, 1000))
    return f"E{time.strftime('%Y%m%d%H%M%S', time.localtime(when))}{i:08d}{rng.randint(10, 99)}"


def _spread(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` 分 over lines in proportion to ``weights``, the last line takes the rest."""
    whole = sum(weights) or 1
    parts = [total * w // whole for w in weights[:-1]]
    return [*parts, total - sum(parts)]


def order(platform: str, i: int, rng: random.Random, pool: list[tuple[str, str, int]], now: int) -> dict[str, Any]:
    """One order in the neutral form (see shops_store)."""
    r = rng.random()
    state, acc = "paid", 0.0
    for name, share in SHARES.items():
        acc += share
        if r < acc:
            state = name
            break
    if platform in ("pdd", "jd") and state == "unpaid":
        state = "paid"
    modified = now - rng.randint(60, 3 * 86400)
    created = modified - rng.randint(0, 2 * 86400)
    tid = _tid(platform, rng, i, created)
    lines = []
    for k in range(rng.choice((1, 1, 1, 2, 2, 3))):
        if rng.random() < UNKNOWN_SKU_SHARE:
            code, name, price = (rng.choice(("ZZ-" + str(rng.randint(1000, 9999)), None)), "赠品 联名款挂件",
                                 rng.randint(990, 4990))
        else:
            code, name, price = rng.choice(pool)
        qty = rng.choice((1, 1, 1, 2, 3))
        lines.append({"oid": f"1{''.join(ch for ch in tid if ch.isdigit())[-11:]}{k + 1:02d}", "outer_sku": code, "title": name,
                      "qty": qty, "price": price, "discount": 0, "payment": 0, "refund_status": "none",
                      "refunded_qty": 0})
    gross = [ln["price"] * ln["qty"] for ln in lines]
    coupon = rng.choice((0, 0, 500, 1000, 2000)) if sum(gross) > 5000 else 0
    platform_discount = rng.choice((0, 0, 0, 300, 800)) if sum(gross) > 3000 else 0
    discounts = _spread(coupon + platform_discount, gross)
    for ln, g, d in zip(lines, gross, discounts):
        ln["discount"], ln["payment"] = d, g - d
    post_fee = rng.choice((0, 0, 0, 600, 800, 1200))
    payment = sum(ln["payment"] for ln in lines) + post_fee
    inconsistent = rng.random() < INCONSISTENT_SHARE and state != "unpaid"
    if inconsistent:
        payment += rng.choice((-3, 1, 2, 100))
    name = rng.choice(SURNAMES) + rng.choice(GIVEN)
    nick = rng.choice((name, f"tb{rng.randint(1000, 9999)}", f"{name}{rng.randint(1, 99)}".translate(FULL_WIDTH),
                       f"Ｌｉｎ{rng.randint(1, 9)}号"))
    doc: dict[str, Any] = {
        "platform": platform, "tid": tid, "state": state, "created": created, "modified": modified,
        "paid_at": None if state in ("unpaid",) else min(modified, created + rng.randint(5, 600)),
        "post_fee": post_fee, "coupon": coupon, "platform_discount": platform_discount, "payment": payment,
        "inconsistent": inconsistent, "buyer_nick": nick, "buyer_memo": rng.choice(MEMOS),
        "seller_memo": rng.choice(SELLER_MEMOS),
        "consignee": {"name": name if rng.random() > 0.1 else name.translate(FULL_WIDTH) + "（公司）",
                      "phone": f"1{rng.choice('3578')}{rng.randint(100000000, 999999999)}",
                      "address": rng.choice(CITIES)},
        "lines": lines, "packages": [], "version": 1, "closed_reason": None,
    }
    if state == "cancelled":
        never_paid = rng.random() < 0.5
        if never_paid and platform != "pdd":  # PDD lists paid orders only: its cancellations are refunds
            doc["paid_at"], doc["closed_reason"] = None, "unpaid_timeout"
        else:  # refunded in full before shipment
            doc["closed_reason"] = "refunded"
            for ln in lines:
                ln["refund_status"], ln["refunded_qty"] = "refunded", ln["qty"]
    elif state in ("shipped", "completed"):
        oids = [ln["oid"] for ln in lines]
        split = len(oids) > 1 and rng.random() < 0.4
        groups = [oids[:1], oids[1:]] if split else [oids]
        doc["packages"] = [{"oids": g, "company": rng.choice(CARRIERS), "tracking_no": f"SF{rng.randint(10**11, 10**12)}"}
                           for g in groups]
    elif platform == "taobao" and state == "paid" and rng.random() < FORBID_CONSIGN_SHARE:
        doc["forbid_consign"] = True  # TOP's PAID_FORBID_CONSIGN: paid, held by the platform
    elif state == "paid" and rng.random() < 0.06:
        ln = rng.choice(lines)  # a partial refund: one line's refund agreed or pending
        ln["refund_status"] = rng.choice(("refunded", "refunding"))
        ln["refunded_qty"] = 1 if ln["refund_status"] == "refunded" else 0
        if all(x["refund_status"] == "refunded" and x["refunded_qty"] >= x["qty"] for x in lines):
            doc["state"], doc["closed_reason"] = "cancelled", "refunded"  # nothing left to ship: closed
    return doc


def generate(u8_db: Path, seed: int, per_platform: int, now: int | None = None) -> list[dict[str, Any]]:
    now = int(now if now is not None else time.time())
    pool = products(u8_db)
    docs: list[dict[str, Any]] = []
    for platform in PLATFORMS:
        rng = random.Random(f"shops-{seed}-{platform}")
        docs.extend(order(platform, i, rng, pool, now) for i in range(per_platform))
    return docs


def write(directory: Path, seed: int, per_platform: int) -> int:
    """Recreate ``<directory>/shops.db`` from ``<directory>/u8.db``; the number of orders."""
    return shops_store.create(directory / "shops.db", generate(directory / "u8.db", seed, per_platform))
