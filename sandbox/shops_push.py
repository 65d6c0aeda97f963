"""Push messages as 有赞 and 抖店 send them, to a receiver URL (``POST /__sandbox/shops/push``).

- 有赞: one JSON object per message, header ``Event-Sign`` = md5(client_id + raw body +
  client_secret) (cuncle/youzanyun-push-demo ``pushdemo.go``), plus ``Event-Type`` and
  ``Client-Id``; body keys client_id, id, kdt_id, kdt_name, mode, msg (URL-encoded JSON), sendCount,
  status, test, type, version (epoch ms of the event) (UNVERIFIED beyond the signature: the
  demo's struct).
- 抖店: a JSON array of {tag, msg_id, data (JSON text)}, headers ``app-id`` and ``event-sign`` =
  md5(app_key + body + app_secret) (doudian ``core.py`` ``callback``); tag 101 paid, 102 shipped,
  105 changed, 106 cancelled (UNVERIFIED tags).
Options: ``duplicate`` sends each message twice (same body, same id), ``forged`` spoils the
signature, ``stale`` dates the event an hour back.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import requests

from .shops_sign import doudian_event, youzan_event
from .shops_youzan import STATUS as YZ_STATUS
from .shops_world import World

STALE_S = 3600
DOUDIAN_TAGS = {"paid": "101", "shipped": "102", "cancelled": "106"}


def _youzan(world: World, doc: dict[str, Any], at: int) -> tuple[bytes, dict[str, str]]:
    creds = world.creds["youzan"]
    status = YZ_STATUS[doc["state"]]
    msg = json.dumps({"tid": doc["tid"], "status": status, "update_time": doc["modified"]}, ensure_ascii=False)
    body = json.dumps({"client_id": creds["app_key"], "id": doc["tid"], "kdt_id": int(creds["grant_id"]),
                       "kdt_name": "九号有赞微商城", "mode": 1, "msg": quote(msg), "sendCount": 1, "status": status,
                       "test": False, "type": "trade_TradePaid" if doc["state"] == "paid" else "trade_TradeUpdate",
                       "version": at * 1000, "msg_id": uuid.uuid4().hex}, ensure_ascii=False).encode()
    sign = youzan_event(creds["app_key"], body, creds["app_secret"])
    return body, {"Event-Sign": sign, "Event-Type": "TRADE_ORDER_STATE", "Client-Id": creds["app_key"],
                  "Content-Type": "application/json"}


def _doudian(world: World, doc: dict[str, Any], at: int) -> tuple[bytes, dict[str, str]]:
    creds = world.creds["doudian"]
    data = {"p_id": int(doc["tid"]), "s_ids": [int(ln["oid"]) for ln in doc["lines"]], "shop_id": int(creds["shop_id"]),
            "order_status": {"unpaid": 1, "paid": 2, "shipped": 3, "cancelled": 4, "completed": 5}[doc["state"]],
            "update_time": at, "biz": 1}
    body = json.dumps([{"tag": DOUDIAN_TAGS.get(doc["state"], "105"), "msg_id": uuid.uuid4().hex,
                        "data": json.dumps(data)}]).encode()
    sign = doudian_event(creds["app_key"], body, creds["app_secret"])
    return body, {"app-id": creds["app_key"], "event-sign": sign, "Content-Type": "application/json"}


def send(world: World, opts: dict[str, Any]) -> dict[str, Any]:
    platform = opts["platform"]
    build = {"youzan": _youzan, "doudian": _doudian}.get(platform)
    if build is None:
        raise ValueError("pushes are sent for youzan and doudian only")
    url = str(opts["url"])
    sent = []
    for tid in opts.get("tids") or []:
        doc = world.store.get(platform, str(tid))
        if doc is None:
            sent.append({"tid": str(tid), "error": "no such order"})
            continue
        at = world.now(platform) - (STALE_S if opts.get("stale") else 0)
        body, headers = build(world, doc, at)
        if opts.get("forged"):
            key = "Event-Sign" if platform == "youzan" else "event-sign"
            headers[key] = ("0" if headers[key][0] != "0" else "1") + headers[key][1:]
        for _ in range(2 if opts.get("duplicate") else 1):
            try:
                resp = requests.post(url, data=body, headers=headers, timeout=10)
                answer: Any = resp.status_code
            except requests.RequestException as exc:
                answer = f"error: {type(exc).__name__}"
            world.bump(platform, "pushes_sent")
            sent.append({"tid": doc["tid"], "status": answer})
    return {"ok": True, "sent": sent}
