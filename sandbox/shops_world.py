"""What the five shop stand-ins share: the store, the credentials, per-app rate limits, the churn
switch (the boundary bug), issued tokens and the counters ``/__sandbox/shops/stats`` reports.

The platform modules (shops_top, shops_jos, shops_pdd, shops_doudian, shops_youzan) speak their
platform's words over this; nothing here knows a wire shape.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import shops_seed
from .shops_store import ShopStore
from .tokens import TokenStore

CST = timezone(timedelta(hours=8))
#: requests per second per app before the platform's limit error. UNVERIFIED: no public page
#: found gives a per-app default for these calls on any of the five; set per test or bench with
#: POST /__sandbox/shops/limits {"platform", "qps"}.
DEFAULT_QPS = {"taobao": 40, "jd": 40, "pdd": 40, "doudian": 40, "youzan": 40}
#: 抖店 ``expires_in`` (fs:47204268586: 604800); 有赞's lifetime is UNVERIFIED (7 days assumed).
TOKEN_TTL_S = {"doudian": 604800, "youzan": 604800}


def cst_text(ts: int | None) -> str | None:
    """Unix seconds → ``yyyy-MM-dd HH:mm:ss`` China time (what TOP, JOS, 有赞 and 抖店 requests use)."""
    return None if ts is None else datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M:%S")


def parse_cst(text: str | None) -> int | None:
    """``yyyy-MM-dd HH:mm:ss`` China time → Unix seconds, None when absent or malformed."""
    try:
        return int(datetime.strptime(str(text).strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp())
    except (TypeError, ValueError):
        return None


def yuan(fen: int) -> str:
    """分 → 元 text, exact."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


class RateLimit:
    """At most ``qps`` calls in any one-second span per app; refusals counted."""

    def __init__(self, qps: float) -> None:
        self.qps = qps
        self.calls: deque[float] = deque()

    def admit(self, now: float) -> bool:
        while self.calls and self.calls[0] <= now - 1.0:
            self.calls.popleft()
        if self.qps and len(self.calls) >= self.qps:
            return False
        self.calls.append(now)
        return True


#: how late the stand-in indexes a change: its modified time may lie this far before it is listed
INDEX_LAG_S = 30


class World:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.creds: dict[str, dict[str, str]] = json.loads(
            (directory / "credentials.json").read_text(encoding="utf-8"))["shops"]
        self.store = ShopStore(directory / "shops.db")
        self.lock = threading.Lock()
        self.limits = {p: RateLimit(q) for p, q in DEFAULT_QPS.items()}
        self.tokens = {p: TokenStore() for p in TOKEN_TTL_S}
        self.refresh_tokens = {p: TokenStore() for p in TOKEN_TTL_S}
        self.token_ttl = dict(TOKEN_TTL_S)
        self.churn: dict[str, int] = {}
        self.skew: dict[str, int] = {}   # seconds a platform's clock is ahead of ours (negative: behind)
        self.rng = random.Random(7)
        self._pool: list[tuple[str, str, int]] | None = None
        self.added = 0
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.counters = {p: {"list_calls": 0, "detail_calls": 0, "rate_limited": 0, "pushes_sent": 0,
                                 "shipment_calls": 0, "churned": 0} for p in shops_seed.PLATFORMS}

    def bump(self, platform: str, key: str, n: int = 1) -> None:
        with self.lock:
            self.counters[platform][key] += n

    def now(self, platform: str | None = None) -> int:
        """The platform's clock, in whole seconds: ours plus its skew (POST clock)."""
        return int(time.time()) + self.skew.get(platform or "", 0)

    def admit(self, platform: str) -> bool:
        """The app's rate limit; a refusal is counted."""
        with self.lock:
            ok = self.limits[platform].admit(time.monotonic())
            if not ok:
                self.counters[platform]["rate_limited"] += 1
        return ok

    # --- the boundary bug -------------------------------------------------------------------
    def listed(self, platform: str, start: int, end: int) -> None:
        """A list call of [start, end]: counted, and while churn is on for the platform, two orders
        of the window change and a new one arrives as it is paged (the boundary bug). A change is
        stamped with the platform's clock, indexed up to INDEX_LAG_S late: an order moves out of the
        window (the pages behind it shift), or, in a window that reaches that close to now, later
        inside it (the window re-sorts); a reader paging forward skips an order either way."""
        self.bump(platform, "list_calls")
        with self.lock:
            if self.churn.get(platform, 0) <= 0:
                return
            self.churn[platform] -= 1
        now = self.now(platform)
        for tid in self.rng.sample(tids := self.store.tids_between(platform, start, min(end, now)), min(2, len(tids))):
            doc = self.store.get(platform, tid)
            if doc and doc["modified"] < now:
                doc["modified"] = self.rng.randint(max(doc["modified"] + 1, now - INDEX_LAG_S), now)
                doc["seller_memo"] = f"改价/备注 v{doc['version'] + 1}"
                doc["version"] += 1
                self.store.put(doc)
        if self._pool is None:
            self._pool = shops_seed.products(self.directory / "u8.db")
        with self.lock:
            self.added += 1
            serial = 9_000_000 + self.added
        modified = self.rng.randint(now - INDEX_LAG_S, now)
        doc = shops_seed.order(platform, serial, self.rng, self._pool, modified)
        doc.update(state="paid", packages=[], closed_reason=None, paid_at=modified - 1, modified=modified)
        doc["created"] = min(doc["created"], doc["modified"])
        for ln in doc["lines"]:
            ln["refund_status"], ln["refunded_qty"] = "none", 0
        self.store.put(doc)
        self.bump(platform, "churned", 3)

    def touch(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The order changed now: a new modified time and version, written."""
        doc["modified"] = max(self.now(doc["platform"]), doc["modified"] + 1)
        doc["version"] += 1
        self.store.put(doc)
        return doc

    # --- tokens (抖店, 有赞) ----------------------------------------------------------------
    def issue_token(self, platform: str, token: str, refresh: str) -> int:
        ttl = self.token_ttl[platform]
        self.tokens[platform].issue(token, platform, ttl)
        self.refresh_tokens[platform].issue(refresh, platform, max(ttl, 14 * 86400))
        return int(ttl)

    def token_ok(self, platform: str, token: str | None) -> bool:
        return self.tokens[platform].check(token) is not None

    # --- shipments ---------------------------------------------------------------------------
    def ship(self, doc: dict[str, Any], tracking_no: str, company: str, oids: list[str] | None) -> str:
        """Book a send. "repeat": this tid + tracking was sent before (nothing changes);
        "shipped": lines already in a package; "refused": unpaid, cancelled or refunded lines;
        "unknown_oid"; else "created" (state shipped once every live line is in a package)."""
        self.bump(doc["platform"], "shipment_calls")
        if self.store.sends(doc["platform"], doc["tid"], tracking_no) or \
                any(p["tracking_no"] == tracking_no for p in doc["packages"]):
            self.store.ship(doc["platform"], doc["tid"], tracking_no, company, oids, self.now(doc["platform"]))
            return "repeat"
        if doc["state"] not in ("paid", "shipped"):
            return "refused"
        live = [ln["oid"] for ln in doc["lines"] if ln["refund_status"] != "refunded"]
        packed = {o for p in doc["packages"] for o in p["oids"]}
        wanted = list(oids) if oids else [o for o in live if o not in packed]
        if any(o not in {ln["oid"] for ln in doc["lines"]} for o in wanted):
            return "unknown_oid"
        if not wanted or any(o in packed for o in wanted):
            return "shipped"
        if any(o not in live for o in wanted):
            return "refused"
        self.store.ship(doc["platform"], doc["tid"], tracking_no, company, oids, self.now(doc["platform"]))
        doc["packages"].append({"oids": wanted, "company": company, "tracking_no": tracking_no})
        if all(o in packed or o in wanted for o in live):
            doc["state"] = "shipped"
        self.touch(doc)
        return "created"

    def stats(self) -> dict[str, Any]:
        counts = self.store.counts()
        shipments = self.store.shipments()
        with self.lock:
            return {p: {"orders": counts.get(p, 0), **self.counters[p], "qps": self.limits[p].qps,
                        "churn_left": self.churn.get(p, 0), "shipments": shipments.get(p, []),
                        "shipments_received": sum(s["sends"] for s in shipments.get(p, []))}
                    for p in shops_seed.PLATFORMS}
