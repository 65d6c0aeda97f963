"""The callback crypto of 钉钉 (and 企业微信, whose scheme it follows): one family, one module.

A push arrives as ``POST <url>?signature|msg_signature=…&timestamp|timeStamp=…&nonce=…`` with body
``{"encrypt": "<base64>"}``. The signature is the lowercase hex SHA-1 of the four strings token,
timestamp, nonce and encrypt, sorted and joined. The payload is AES-256-CBC with key =
base64(encodingAesKey + "=") (43 characters → 32 bytes), IV = the key's first 16 bytes, PKCS#7
padded to 32-byte blocks; the plaintext is 16 random bytes, the message length as a 4-byte
big-endian integer, the message (UTF-8) and the receiver's id (appKey / corpId / suiteKey),
which must be ours. The reply is the encrypted "success" as ``{msg_signature, timeStamp, nonce,
encrypt}``. (open-dingtalk/DingTalk-Callback-Crypto; the official test vector is in the tests.)
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hub.errors import DataError

BLOCK = 32


class ForgedCallback(DataError):
    """A push whose signature or receiver id is not ours: never processed."""


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode("utf-8")).hexdigest()


def _key(aes_key: str) -> bytes:
    if len(aes_key) != 43:
        raise ValueError("the callback aes key (encodingAesKey) must be 43 characters")
    return base64.b64decode(aes_key + "=")


def _cipher(key: bytes) -> Cipher:
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def encrypt(aes_key: str, message: str, receive_id: str, random: bytes | None = None) -> str:
    key = _key(aes_key)
    body = message.encode("utf-8")
    plain = (random or os.urandom(16)) + struct.pack(">I", len(body)) + body + receive_id.encode("utf-8")
    pad = BLOCK - len(plain) % BLOCK
    enc = _cipher(key).encryptor()
    return base64.b64encode(enc.update(plain + bytes([pad]) * pad) + enc.finalize()).decode("ascii")


def decrypt(aes_key: str, encrypted: str, receive_id: str) -> str:
    """The message of ``encrypted``; a ForgedCallback when it is not for ``receive_id`` or not ours."""
    key = _key(aes_key)
    try:
        dec = _cipher(key).decryptor()
        plain = dec.update(base64.b64decode(encrypted)) + dec.finalize()
        pad = plain[-1]
        plain = plain[:-pad] if 1 <= pad <= BLOCK else plain
        length = struct.unpack(">I", plain[16:20])[0]
        message, rest = plain[20:20 + length], plain[20 + length:]
    except (ValueError, struct.error, IndexError) as exc:
        raise ForgedCallback(f"callback payload does not decrypt with our key ({type(exc).__name__})") from None
    if not hmac.compare_digest(rest, receive_id.encode("utf-8")):
        raise ForgedCallback("callback payload is for another receiver (its id is not ours)")
    return message.decode("utf-8")


def verify(token: str, aes_key: str, receive_id: str, query: dict[str, str], encrypted: str) -> tuple[str, str]:
    """(message, timestamp) of a push whose signature is ours; a ForgedCallback otherwise. Both
    spellings of the query's names are accepted (the documentation's and the crypto samples')."""
    sig = query.get("msg_signature") or query.get("signature") or ""
    stamp = query.get("timeStamp") or query.get("timestamp") or ""
    nonce = query.get("nonce") or ""
    if not (sig and stamp and nonce and encrypted):
        raise ForgedCallback("callback without signature, timestamp, nonce or encrypt")
    if not hmac.compare_digest(signature(token, stamp, nonce, encrypted), sig):
        raise ForgedCallback("callback signature does not match")
    return decrypt(aes_key, encrypted, receive_id), stamp


def reply(token: str, aes_key: str, receive_id: str, message: str = "success") -> dict[str, str]:
    """The answer DingTalk expects: the encrypted "success", signed."""
    stamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(8)
    enc = encrypt(aes_key, message, receive_id)
    return {"msg_signature": signature(token, stamp, nonce, enc), "timeStamp": stamp, "nonce": nonce, "encrypt": enc}
