"""``/__sandbox/shops/*``: the switches and views tests and benches use (a ControlExtension).

- POST churn {platform, n}: the next n list calls of the platform modify and add orders inside
  the window being paged (the boundary bug; shops_world.World.listed).
- GET stats: per platform orders, list/detail/shipment calls, shipments with sends per
  tid + tracking number, rate-limit refusals, pushes sent.
- GET truth: every order's tid, state, modified time and paid amount per platform.
- POST clock {platform, skew}: the platform's clock runs skew seconds ahead of ours (negative:
  behind); its timestamps, its checks of ours and its list windows follow it.
- POST push {platform, url, tids, duplicate, forged, stale}: shops_push.py.
- POST pay {platform, tids}: unpaid orders are paid, modified now.
- POST refund {platform, tid, oid?}: a refund before shipment (a line, or the whole order, which
  then is cancelled).
- POST tokens {platform, ttl?, expire_all?}: lifetime of tokens issued from now on (抖店, 有赞),
  and/or every issued token dies now.
- POST limits {platform, qps}: the app's rate limit (0: none).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from . import shops_push
from .shops_seed import PLATFORMS
from .shops_world import CST, RateLimit, World, yuan


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, CST).isoformat()


class Control:
    def __init__(self, world: World) -> None:
        self.world = world

    def stats(self) -> dict[str, Any]:
        return {"shops": self.world.stats()}

    def reset(self) -> None:
        self.world.reset()

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        if not path.startswith("/__sandbox/shops/"):
            return None
        name = path.removeprefix("/__sandbox/shops/")
        if method == "GET" and name == "stats":
            return 200, self.world.stats()
        if method == "GET" and name == "truth":
            return 200, {p: [{"tid": r["tid"], "state": r["state"], "modified": _iso(r["modified"]),
                              "paid": yuan(r["paid_fen"])} for r in rows]
                         for p, rows in self.world.store.truth().items()}
        if method != "POST" or name not in ("churn", "clock", "push", "pay", "refund", "tokens", "limits"):
            return 404, {"ok": False, "error": f"no such sandbox endpoint {method} {path}"}
        try:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict) or data.get("platform") not in PLATFORMS:
                raise ValueError(f"body must be a JSON object with platform one of {list(PLATFORMS)}")
            return getattr(self, f"_{name}")(data)
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"ok": False, "error": str(exc)}

    def _churn(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.world.lock:
            self.world.churn[data["platform"]] = max(0, int(data.get("n", 1)))
        return 200, {"ok": True, "churn": dict(self.world.churn)}

    def _clock(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.world.lock:
            self.world.skew[data["platform"]] = int(data.get("skew", 0))
        return 200, {"ok": True, "skew": dict(self.world.skew)}

    def _push(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, shops_push.send(self.world, data)

    def _pay(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        paid = []
        for tid in data.get("tids") or []:
            doc = self.world.store.get(data["platform"], str(tid))
            if doc and doc["state"] == "unpaid":
                doc["state"], doc["paid_at"] = "paid", self.world.now(data["platform"])
                self.world.touch(doc)
                paid.append(doc["tid"])
        return 200, {"ok": True, "paid": paid}

    def _refund(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        doc = self.world.store.get(data["platform"], str(data["tid"]))
        if doc is None:
            return 404, {"ok": False, "error": "no such order"}
        if doc["state"] != "paid":
            return 409, {"ok": False, "error": f"order is {doc['state']}: a refund before shipment needs a paid order"}
        packed = {o for p in doc["packages"] for o in p["oids"]}
        oid = data.get("oid")
        lines = [ln for ln in doc["lines"] if oid is None or ln["oid"] == str(oid)]
        if not lines or any(ln["oid"] in packed for ln in lines):
            return 409, {"ok": False, "error": "no such line, or it is shipped already"}
        for ln in lines:
            ln["refund_status"], ln["refunded_qty"] = "refunded", ln["qty"]
        if all(ln["refund_status"] == "refunded" for ln in doc["lines"]):
            doc["state"], doc["closed_reason"] = "cancelled", "refunded"
        self.world.touch(doc)
        return 200, {"ok": True, "tid": doc["tid"], "state": doc["state"]}

    def _tokens(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        platform = data["platform"]
        if platform not in self.world.tokens:
            raise ValueError("only 抖店 (doudian) and 有赞 (youzan) issue tokens here")
        if "ttl" in data:
            self.world.token_ttl[platform] = float(data["ttl"])
        expired = self.world.tokens[platform].revoke_all() if data.get("expire_all") else 0
        return 200, {"ok": True, "ttl": self.world.token_ttl[platform], "expired": expired}

    def _limits(self, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.world.lock:
            self.world.limits[data["platform"]] = RateLimit(float(data["qps"]))
        return 200, {"ok": True, "qps": float(data["qps"])}
