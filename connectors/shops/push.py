"""Push messages from the shop platforms: prove a message came from the platform (``verify``) and
give the platform the answer it expects (``answer``).

A push only says "this order changed"; the receiver stores it (refusing a message id seen
before: replay is its job, not ours) and the flow re-reads the order through the API. So a
forged push could at worst make us re-read an order, but it must still never reach the store:
it is refused here, before its body is trusted for anything.

What each platform sends (public evidence; the shape is data below, not buried in code):

- 有赞 (youzanyun): header ``Event-Sign`` = hex(md5(client_id + raw body + client_secret))
  (cuncle/youzanyun-push-demo ``pushdemo.go``). The body is one JSON message: ``id`` (the order
  number for trade messages), ``status``, ``type`` (e.g. ``trade_TradeSuccess``), ``version``
  ("消息版本号 … 高版本覆盖低版本"), ``msg_id``, ``kdt_id``, ``client_id``, ``msg`` (URL-encoded)
  (TsangJx/YouZanYunSDK ``Msg/TradeTradesuccessData.cs``). Some messages (订购 …) carry an
  AES-128-CBC ciphertext instead of plain text: key = client_secret[:16], IV "0102030405060708",
  base64 after URL-decoding (youzan/open-sdk-node ``src/crypto.js``, worked example in
  ``test/crypto.test.js``).
- 抖店: headers ``app-id`` (must be our app key) and ``event-sign`` = hex(md5(app_key + raw body +
  app_secret)) (minibear2021/doudian ``core.py`` ``callback``). The body is a JSON *list* of
  ``{tag, msg_id, data}`` where ``data`` is itself JSON text with ``p_id`` (the order), ``s_ids``,
  ``order_status`` and the time of the event (``create_time`` tag 100, ``pay_time`` 101,
  ``update_time`` 105, ``cancel_time`` 106 …; 819-hao/feilun ``entity/douyin/*``). Tag "0" is the
  platform's check of a newly configured URL and must be answered with success.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from connectors.shops.platform import SHANGHAI, aware
from hub.errors import ConfigurationError, HubError
from hub.types import ConnectionInfo

PLATFORMS = ("youzan", "doudian")

#: 有赞: the sign header and what is hashed (client_id + body + client_secret)
YOUZAN_SIGN_HEADER = "Event-Sign"
#: 有赞 encrypted messages: AES-128-CBC, key = secret[:16], this IV (open-sdk-node src/crypto.js)
YOUZAN_AES_IV = b"0102030405060708"
#: 抖店: the two headers (minibear2021/doudian core.py callback)
DOUDIAN_APP_HEADER = "app-id"
DOUDIAN_SIGN_HEADER = "event-sign"
#: 抖店 push sign methods: md5 is what the public SDK checks; hmac-sha256 keyed by app_secret over
#: the same text is the API sign's second method carried over.
# UNVERIFIED: no public evidence shows a push signed with hmac-sha256 or a header naming the method;
# it is used only when the connection's extra.push_sign_method says "hmac-sha256".
DOUDIAN_PUSH_SIGN_METHODS = ("md5", "hmac-sha256")
#: 抖店 data fields holding the event's own time (Unix seconds), the first present one counts
DOUDIAN_TIME_FIELDS = ("update_time", "pay_time", "cancel_time", "create_time")
#: 抖店 tag "0": the URL check sent when the push URL is configured (answer success at once)
DOUDIAN_CHECK_TAG = "0"

#: what each platform expects back. Success bodies are the public samples' (有赞 push demo:
#: {"code":"200","msg":"success"}; 抖店 SDK example: {"code":0,"msg":"success"}). A refusal is
#: sent as HTTP 500 with the samples' failure body: whether a platform judges by the status or by
#: the body, 500 + a non-success body reads as "not received" and the platform pushes again.
# UNVERIFIED: which of the two (status or body) each platform's retry looks at.
ANSWERS: dict[str, dict[bool, tuple[int, dict]]] = {
    "youzan": {True: (200, {"code": "200", "msg": "success"}), False: (500, {"code": "500", "msg": "fail"})},
    "doudian": {True: (200, {"code": 0, "msg": "success"}), False: (500, {"code": 40041, "message": "解析推送数据失败"})},
}


@dataclass(frozen=True)
class PushMessage:
    """One verified push: which order (``tid``), at which version, what happened (``kind``: the
    platform's own message type or tag), when the platform says it happened, and the message."""

    platform: str
    tid: str
    version: str
    kind: str
    sent_at: datetime
    raw: dict


class ForgedPush(HubError):
    """The push is not provably from the platform (bad or missing signature, wrong app): refused,
    never stored. A data failure: the message is dropped, nothing to fix in the hub."""

    failure_class = "data"


class StalePush(HubError):
    """The push is older than the accepted age by its own timestamp (a replay of an old message,
    or one held back): refused; the next window read picks the order up anyway."""

    failure_class = "data"


def verify(platform: str, headers: Mapping[str, str], body: bytes, conn: ConnectionInfo, now: datetime,
           max_age: timedelta = timedelta(minutes=10)) -> PushMessage:
    """The one message of a push, verified (signature first, then age). A 抖店 push may carry
    several messages: ``verify`` returns the first, :func:`verify_all` every one (receivers should
    use it)."""
    return verify_all(platform, headers, body, conn, now, max_age)[0]


def verify_all(platform: str, headers: Mapping[str, str], body: bytes, conn: ConnectionInfo, now: datetime,
               max_age: timedelta = timedelta(minutes=10)) -> list[PushMessage]:
    """Every message of one push, after the push's signature is proven; a stale message refuses the
    whole push (the platform signs the body as one)."""
    if platform not in _VERIFIERS:
        raise ConfigurationError(f"no push verification for platform {platform!r} (known: {', '.join(PLATFORMS)})")
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("push body must be the raw bytes as received (the signature covers them exactly)")
    aware(now, "now")
    messages = _VERIFIERS[platform](_lower(headers), bytes(body), conn, now)
    for m in messages:
        if now - m.sent_at > max_age:
            raise StalePush(f"{platform} push for order {m.tid or '-'} ({m.kind}) was sent {m.sent_at.isoformat()}, "
                            f"older than {max_age} at {aware(now).astimezone(SHANGHAI).isoformat()}")
    return messages


def answer(platform: str, ok: bool) -> tuple[int, dict]:
    """The HTTP status and JSON body the platform expects for a push taken (ok) or refused."""
    if platform not in ANSWERS:
        raise ConfigurationError(f"no push answer for platform {platform!r} (known: {', '.join(PLATFORMS)})")
    status, body = ANSWERS[platform][bool(ok)]
    return status, dict(body)


# --- 有赞 ------------------------------------------------------------------------------------------

def _youzan(headers: dict[str, str], body: bytes, conn: ConnectionInfo, now: datetime) -> list[PushMessage]:
    client_id, secret = _credentials("youzan", conn, "client_id", "client_secret")
    given = headers.get(YOUZAN_SIGN_HEADER.lower(), "")
    if not given:
        raise ForgedPush(f"youzan push without an {YOUZAN_SIGN_HEADER} header")
    expected = hashlib.md5(client_id.encode("utf-8") + body + secret.encode("utf-8")).hexdigest()
    if not hmac.compare_digest(given.strip().lower(), expected):
        raise ForgedPush(f"youzan push {YOUZAN_SIGN_HEADER} does not match md5(client_id + body + client_secret)")
    raw = _json_object(body, "youzan")
    if str(raw.get("client_id") or client_id) != client_id:
        raise ForgedPush("youzan push names another client_id than this connection's")
    msg = raw.get("msg")
    decoded = _youzan_msg(msg, secret) if isinstance(msg, str) and msg else None
    if decoded is not None:
        raw = {**raw, "msg_decoded": decoded}
    version = raw.get("version")
    if version in (None, ""):
        raise StalePush("youzan push without a version (its own time): its age cannot be told, so it is not taken")
    # The version is the message's own time in Unix seconds: the sample's 1621997469 is
    # 2021-05-26 10:51:09 +08:00, three seconds after its order E20210526105106… was made.
    sent_at = _unix(version, "youzan version")
    return [PushMessage("youzan", str(raw.get("id") or ""), str(version), str(raw.get("type") or ""), sent_at, raw)]


def _youzan_msg(msg: str, secret: str) -> Any:
    """The ``msg`` field: URL-encoded JSON, or (encrypted messages) URL-encoded base64 ciphertext."""
    text = urllib.parse.unquote(msg)
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return json.loads(decrypt_youzan(msg, secret))
    except (ValueError, TypeError):
        return text  # neither: kept as given (the order is re-read through the API anyway)


def decrypt_youzan(ciphertext: str, client_secret: str) -> str:
    """有赞's encrypted message as text: URL-decode, base64-decode, AES-128-CBC with key =
    client_secret[:16] and IV 0102030405060708, PKCS#7 padding (open-sdk-node src/crypto.js)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = client_secret[:16].encode("utf-8")
    if len(key) != 16:
        raise ValueError("youzan client_secret is shorter than the 16 characters its AES key needs")
    data = base64.b64decode(urllib.parse.unquote(ciphertext), validate=True)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(YOUZAN_AES_IV)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")


# --- 抖店 ------------------------------------------------------------------------------------------

def _doudian(headers: dict[str, str], body: bytes, conn: ConnectionInfo, now: datetime) -> list[PushMessage]:
    app_key, secret = _credentials("doudian", conn, "app_key", "app_secret")
    app_id = headers.get(DOUDIAN_APP_HEADER, "")
    given = headers.get(DOUDIAN_SIGN_HEADER, "")
    if not app_id or not given:
        raise ForgedPush(f"doudian push without the {DOUDIAN_APP_HEADER} / {DOUDIAN_SIGN_HEADER} headers")
    if app_id.strip() != app_key:
        raise ForgedPush(f"doudian push {DOUDIAN_APP_HEADER} is not this connection's app key")
    method = str((conn.extra or {}).get("push_sign_method") or "md5").lower()
    if method not in DOUDIAN_PUSH_SIGN_METHODS:
        raise ConfigurationError(f"doudian extra.push_sign_method {method!r}: documented are "
                                 f"{' | '.join(DOUDIAN_PUSH_SIGN_METHODS)}")
    text = app_key.encode("utf-8") + body + secret.encode("utf-8")
    if method == "md5":
        expected = hashlib.md5(text).hexdigest()
    else:
        expected = hmac.new(secret.encode("utf-8"), text, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.strip().lower(), expected):
        raise ForgedPush(f"doudian push {DOUDIAN_SIGN_HEADER} does not match {method}(app_key + body + app_secret)")
    try:
        items = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ForgedPush("doudian push body is not JSON") from None
    items = [items] if isinstance(items, dict) else items
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise ForgedPush("doudian push body is not a list of {tag, msg_id, data} messages")
    return [_doudian_message(item, now) for item in items]


def _doudian_message(item: dict, now: datetime) -> PushMessage:
    tag = str(item.get("tag", ""))
    data = item.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data) if data.strip() else {}
        except ValueError:
            raise ForgedPush(f"doudian push message {item.get('msg_id')!r}: data is not JSON") from None
    data = data if isinstance(data, dict) else {}
    raw = {**item, "data_decoded": data}
    if tag == DOUDIAN_CHECK_TAG:  # the URL check carries no order and no time: it is as fresh as now
        return PushMessage("doudian", "", "", tag, aware(now), raw)
    at = next((f for f in DOUDIAN_TIME_FIELDS if data.get(f) not in (None, "", 0)), None)
    if at is None:
        raise StalePush(f"doudian push message tag {tag} has none of {', '.join(DOUDIAN_TIME_FIELDS)}: "
                        f"its age cannot be told, so it is not taken")
    pid = data.get("p_id")
    return PushMessage("doudian", "" if pid in (None, "") else str(pid), str(data[at]), tag,
                       _unix(data[at], f"doudian {at}"), raw)


# --- shared ----------------------------------------------------------------------------------------

_VERIFIERS: dict[str, Callable[[dict[str, str], bytes, ConnectionInfo, datetime], list[PushMessage]]] = {
    "youzan": _youzan,
    "doudian": _doudian,
}


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive (HTTP); Starlette gives them lower-cased, tests may not."""
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _credentials(platform: str, conn: ConnectionInfo, key_name: str, secret_name: str) -> tuple[str, str]:
    if not conn.login or not conn.password:
        raise ConfigurationError(f"{platform} connection {conn.conn_id}: login ({key_name}) and password "
                                 f"({secret_name}) are needed to verify pushes")
    return conn.login, conn.password


def _json_object(body: bytes, platform: str) -> dict:
    try:
        raw = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ForgedPush(f"{platform} push body is not JSON") from None
    if not isinstance(raw, dict):
        raise ForgedPush(f"{platform} push body is not a JSON object")
    return raw


def _unix(value: Any, what: str) -> datetime:
    """Unix seconds (or milliseconds, when the number is that large) as an aware datetime."""
    try:
        n = int(str(value).strip())
    except ValueError:
        raise StalePush(f"{what} {value!r} is not a Unix time: the push's age cannot be told") from None
    if n > 10**11:  # milliseconds (有赞's decrypted messages carry payTime in ms)
        n //= 1000
    return datetime.fromtimestamp(n, SHANGHAI)
