"""Local stand-ins for alert channels, on loopback: an SMTP server that keeps every mail and
an HTTP server that keeps every webhook call (answering like 钉钉 / 企业微信 robots)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socketserver
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes
    auth: str | None  # what the client sent in AUTH (transport, not the message)

    @property
    def message(self):
        return message_from_bytes(self.data, policy=policy.default)

    @property
    def text(self) -> str:
        """Subject and body, decoded: what a reader sees."""
        msg = self.message
        return f"{msg['Subject']}\n{msg.get_content()}"


class _SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self) -> None:
        sink: SmtpSink = self.server.sink  # type: ignore[attr-defined]
        sender, rcpts, auth = "", [], None
        self.reply("220 sink ESMTP")
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            cmd = line.split(" ", 1)[0].upper()
            if cmd in ("EHLO", "HELO"):
                self.reply("250-sink")
                self.reply("250-AUTH PLAIN LOGIN")
                self.reply("250 8BITMIME")
            elif cmd == "AUTH":
                parts = line.split(" ")
                if parts[1].upper() == "PLAIN" and len(parts) > 2:
                    auth = base64.b64decode(parts[2]).decode("utf-8", "replace")
                elif parts[1].upper() == "LOGIN":
                    self.reply("334 VXNlcm5hbWU6")
                    user = base64.b64decode(self.rfile.readline().strip()).decode()
                    self.reply("334 UGFzc3dvcmQ6")
                    auth = user + ":" + base64.b64decode(self.rfile.readline().strip()).decode()
                self.reply("235 ok")
            elif cmd == "MAIL":
                sender, rcpts = line.split(":", 1)[1].strip(" <>"), []
                self.reply("250 ok")
            elif cmd == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip(" <>"))
                self.reply("250 ok")
            elif cmd == "DATA":
                self.reply("354 go on")
                chunks = []
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b".\n", b""):
                        break
                    chunks.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                sink.mails.append(Mail(sender, rcpts, b"".join(chunks), auth))
                self.reply("250 queued")
            elif cmd == "QUIT":
                self.reply("221 bye")
                return
            else:  # RSET, NOOP and the rest
                self.reply("250 ok")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink:
    """An SMTP server on 127.0.0.1 that accepts any login and keeps every mail."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.server = _Server(("127.0.0.1", 0), _SmtpHandler)
        self.server.sink = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Call:
    path: str
    query: dict[str, str]
    raw: bytes
    body: Any = field(default=None)
    headers: dict[str, str] = field(default_factory=dict)
    answer: Any = field(default=None)


class JsonServer:
    """An HTTP server on 127.0.0.1: each POST becomes a :class:`Call` and ``answer(call)``
    gives the (HTTP status, JSON body) to send back."""

    def __init__(self, answer: Callable[[Call], tuple[int, Any]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body = answer(Call(url.path, query, raw, headers=headers))
                out = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebhookSink(JsonServer):
    """An HTTP server on 127.0.0.1 answering like a chat robot and keeping every call (with
    its ``answer``). Like the real robots it may refuse: 钉钉 130101 past ``limit`` messages in
    ``window`` seconds (the service: 20 a minute), 310000 when ``secret`` is set and the 加签
    signature does not match or the timestamp is over an hour off; 企业微信 40058 for markdown
    over 4096 bytes."""

    def __init__(self, *, limit: int | None = None, window: float = 60.0, secret: str | None = None) -> None:
        self.calls: list[Call] = []
        self.limit, self.window, self.secret = limit, window, secret
        self._taken: list[float] = []
        self._lock = threading.Lock()
        super().__init__(self._answer)

    @property
    def delivered(self) -> list[Call]:
        """The calls the robot took (errcode 0)."""
        return [c for c in self.calls if c.answer and c.answer["errcode"] == 0]

    def _verdict(self, call: Call) -> dict[str, Any]:
        if call.path == "/cgi-bin/webhook/send":
            content = ((call.body or {}).get("markdown") or {}).get("content") or ""
            if len(content.encode("utf-8")) > 4096:
                return {"errcode": 40058,
                        "errmsg": "markdown.content exceed max length 4096. invalid Request Parameter"}
        if call.path == "/robot/send" and self.secret is not None:
            ts = call.query.get("timestamp", "")
            digest = hmac.new(self.secret.encode(), f"{ts}\n{self.secret}".encode(), hashlib.sha256).digest()
            if not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > 3_600_000:
                return {"errcode": 310000, "errmsg": "invalid timestamp"}
            if call.query.get("sign") != base64.b64encode(digest).decode():
                return {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc]"}
        if call.path == "/robot/send" and self.limit is not None:
            now = time.monotonic()
            with self._lock:
                self._taken = [t for t in self._taken if now - t < self.window]
                if len(self._taken) >= self.limit:
                    return {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
                self._taken.append(now)
        return {"errcode": 0, "errmsg": "ok"}

    def _answer(self, call: Call) -> tuple[int, Any]:
        call.body = json.loads(call.raw or b"null")
        call.answer = self._verdict(call)
        self.calls.append(call)
        return 200, call.answer
