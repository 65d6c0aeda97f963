"""Where alerts go: e-mail over SMTP, a 钉钉 (DingTalk) group robot, a 企业微信 (WeCom)
group robot. Each channel is an Airflow connection; a connection that does not exist is a
channel that is off.

| conn id | host | login / password | extra |
|---|---|---|---|
| ``hub_alert_smtp`` | SMTP server (port in port) | SMTP user / password | ``to`` (comma-separated), ``from_email``, ``disable_ssl``, ``disable_tls``, ``timeout`` (the SMTP provider's names) |
| ``hub_alert_dingtalk`` | ``https://oapi.dingtalk.com`` (default) | password = the robot's access_token | ``secret``: the robot's 加签 secret (SEC…); ``throttle_seconds`` |
| ``hub_alert_wecom`` | ``https://qyapi.weixin.qq.com`` (default) | password = the robot's key | ``throttle_seconds`` |

A robot's answer codes are told apart: 钉钉 130101 (over 20 messages a minute) raises
:class:`hub.errors.Throttled`, so the alert is held back for ``throttle_seconds`` (default 60) and merged
into the channel's next message (flows/alerts.py); 310000 (the security check: signature,
timestamp) says to check the clock or the secret. 企业微信 markdown is cut to 4,096 UTF-8 bytes
(over that the robot answers 40058) with a link to the console.

Which connection builds which channel is ``connectors.NOTIFIERS``; ``flows.roles.notifiers()``
builds the configured ones.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import time
from email.message import EmailMessage
from urllib.parse import quote_plus

from hub.errors import ConfigurationError, Throttled
from hub.types import AlertChannel as Channel, AlertMessage as Message, ConnectionInfo

__all__ = ["Channel", "DingTalkChannel", "EmailChannel", "Message", "Throttled", "WeComChannel", "cut_utf8"]


def cut_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    return text.encode("utf-8")[:max(0, limit)].decode("utf-8", errors="ignore")


def _flag(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class EmailChannel:
    """Plain-text e-mail through the SMTP server of ``hub_alert_smtp``."""

    name = "email"

    def __init__(self, info: ConnectionInfo) -> None:
        self.info = info
        extra = info.extra
        self.recipients = [a.strip() for a in str(extra.get("to", "")).replace(";", ",").split(",") if a.strip()]
        if not info.host or not self.recipients:
            raise ConfigurationError(f"connection {info.conn_id!r} needs a host and extra 'to' (recipients)")
        self.sender = str(extra.get("from_email") or extra.get("from") or info.login or "integration-hub@localhost")
        self.ssl = not _flag(extra.get("disable_ssl", False))
        self.starttls = not self.ssl and not _flag(extra.get("disable_tls", False))
        self.timeout = float(extra.get("timeout", 30))

    def secrets(self) -> tuple[str, ...]:
        return self.info.secrets()

    def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail.set_content(message.text)
        port = self.info.port or (465 if self.ssl else 25)
        smtp_class = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        with smtp_class(self.info.host, port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.info.login:
                smtp.login(self.info.login, self.info.password)
            smtp.send_message(mail)


class _Robot:
    """A chat group robot: JSON posted to a webhook whose token is the connection password."""

    name = "robot"
    default_host = ""
    path = ""
    token_param = ""
    #: errcodes that mean "too fast": the alert is held back and merged, not dropped
    throttled: frozenset[int] = frozenset()
    #: errcode → what the operator should check
    hints: dict[int, str] = {}

    def __init__(self, info: ConnectionInfo) -> None:
        if not info.password and "?" not in info.host:
            raise ConfigurationError(f"connection {info.conn_id!r} needs the robot's token as password")
        self.info = info
        self.timeout = float(info.extra.get("timeout", 10))
        self.throttle_seconds = float(info.extra.get("throttle_seconds", 60))

    def secrets(self) -> tuple[str, ...]:
        return self.info.secrets()

    def url(self) -> str:
        if "?" in self.info.host:  # the full webhook URL was given as host
            return self.info.host
        host = (self.info.base_url() if self.info.host else self.default_host).rstrip("/")
        return f"{host}{self.path}?{self.token_param}={quote_plus(self.info.password)}"

    def body(self, message: Message) -> dict:
        raise NotImplementedError

    def send(self, message: Message) -> None:
        import requests  # lazy: DAG files import this module while parsing

        resp = requests.post(self.url(), json=self.body(message), timeout=self.timeout)
        resp.raise_for_status()
        answer = resp.json() if resp.content else {}
        try:
            code = int(answer.get("errcode", 0))
        except (TypeError, ValueError):
            code = -1
        said = f"{answer.get('errcode')} {answer.get('errmsg')}"
        if code in self.throttled:
            raise Throttled(f"{self.name} robot: too many messages ({said})")
        if code != 0:
            hint = self.hints.get(code)
            raise RuntimeError(f"{self.name} robot refused the message: {said}" + (f"; {hint}" if hint else ""))


class DingTalkChannel(_Robot):
    """钉钉 group robot with 加签: ``timestamp`` and ``sign`` =
    urlencode(base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}"))) on the webhook URL."""

    name = "dingtalk"
    default_host = "https://oapi.dingtalk.com"
    path = "/robot/send"
    token_param = "access_token"
    throttled = frozenset({130101})  # "send too fast, exceed 20 times per minute"
    hints = {310000: "check the clock or the secret (加签 signature and timestamp; the robot's keyword and IP "
                     "settings answer 310000 too)"}

    @staticmethod
    def sign(secret: str, timestamp_ms: int) -> str:
        digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
        return quote_plus(base64.b64encode(digest).decode())

    def url(self) -> str:
        url = super().url()
        secret = str(self.info.extra.get("secret", ""))
        if secret:
            ts = int(time.time() * 1000)
            url += f"&timestamp={ts}&sign={self.sign(secret, ts)}"
        return url

    def body(self, message: Message) -> dict:
        return {"msgtype": "markdown", "markdown": {"title": message.title, "text": message.text}}


class WeComChannel(_Robot):
    """企业微信 group robot (the key in the URL is its only credential)."""

    name = "wecom"
    default_host = "https://qyapi.weixin.qq.com"
    path = "/cgi-bin/webhook/send"
    token_param = "key"
    max_bytes = 4096  # markdown.content; over it the robot answers 40058
    hints = {40058: "the markdown is over 4096 bytes"}

    def body(self, message: Message) -> dict:
        """Markdown cut to 4,096 UTF-8 bytes, ending with the console link when cut."""
        content = f"**{message.title}**\n\n{message.text}"
        if len(content.encode("utf-8")) > self.max_bytes:
            tail = f"\n\n… (cut at {self.max_bytes} bytes) [the whole alert in the console]({message.link})"
            content = cut_utf8(content, self.max_bytes - len(tail.encode("utf-8"))) + tail
        return {"msgtype": "markdown", "markdown": {"content": content}}
