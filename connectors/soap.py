"""SOAP calls through zeep, hardened, with the hub's error classes.

zeep reads the WSDL (a local copy: nothing is fetched at run time) and builds each request
from the service's schema; the answer is parsed by zeep's own loader under the same settings:
strict XML (a cut answer is an error, never repaired into a shorter one), DTDs, entities and
external references refused. The answer's body becomes plain dicts keyed by element name, so
fields SAP adds to a structure in a later release read the same (an old WSDL copy does not
break); what the hub needs of an answer it checks itself.

SAP's generated WSDLs declare every field of a structure as required, while SAP's runtime
takes an absent field as its initial value. Requests therefore carry every required field,
filled with the ABAP initial value of its type (``""``, ``0``, ``0000-00-00``), which is the
same thing to SAP and valid against the schema for anyone who checks it.

Errors: 401/403 and 404 are configuration errors (credentials, service path); 429 and a request
that never left are retried; a lost answer to a write (timeout, dropped connection, 5xx, an
answer that is not XML) raises :class:`AmbiguousWriteError` so the caller looks the record up
before sending it again, and so does a 400 that ends a stateful service's session
(:class:`SessionLost`); a SOAP fault is :class:`SoapFault` (``client``: the request was refused,
``server``: the provider failed, which for a write is ambiguous as well).
"""
from __future__ import annotations

import logging
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import requests
import zeep
from lxml import etree
from zeep.exceptions import DTDForbidden, EntitiesForbidden, XMLSyntaxError
from zeep.loader import parse_xml
from zeep.xsd.types import builtins

from connectors.http import _never_sent, retry_after_seconds
from hub.errors import AmbiguousWriteError, ConfigurationError, DataError, RateLimitedError, TransientError, redact

log = logging.getLogger("connectors.soap")

WSDL_DIR = Path(__file__).resolve().parent / "sap_wsdl"
SOAP_ENV = {"soap-env": "http://schemas.xmlsoap.org/soap/envelope/"}


def hardened_settings() -> zeep.Settings:
    """strict: lxml without recovery (a truncated answer fails instead of parsing short);
    DTDs, entity declarations and fetches of imported documents are refused."""
    return zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
                         xml_huge_tree=False)


class SessionLost(AmbiguousWriteError):
    """A stateful service's session (its ``sap-contextid`` cookie) has ended: HTTP 400 "Session
    timed out", the cookie deleted. Whatever was sent in that session and not yet committed is
    gone, so the caller treats it as a lost answer: look the record up before sending it again."""


class SoapFault(DataError):
    """The provider answered with a SOAP fault. ``side`` is ``client`` (the request was
    refused: bad data or a message the service does not take) or ``server`` (it failed)."""

    def __init__(self, message: str, side: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.side = side


def localname(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def to_plain(el: etree._Element) -> Any:
    """An answer element as plain data: text for a leaf, a list for an SAP table (``item``
    children), else a dict by local name (a name seen twice becomes a list)."""
    children = [c for c in el if isinstance(c.tag, str)]
    if not children:
        return (el.text or "").strip()
    if all(localname(c.tag) == "item" for c in children):
        return [to_plain(c) for c in children]
    out: dict[str, Any] = {}
    for child in children:
        name, value = localname(child.tag), to_plain(child)
        if name in out:
            out[name] = (out[name] if isinstance(out[name], list) else [out[name]]) + [value]
        else:
            out[name] = value
    return out


def rows(value: Any) -> list[dict[str, Any]]:
    """An answer's table or repeated element as a list of rows ("" when SAP sent it empty)."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return [value] if isinstance(value, dict) else []


def initial(xsd_type: Any) -> Any:
    """The ABAP initial value of a simple SAP type, as SAP's RFC-to-XSD names say it."""
    if isinstance(xsd_type, builtins.Decimal):
        return Decimal(0)
    if isinstance(xsd_type, (builtins.Integer, builtins.Float, builtins.Double)):
        return 0
    if isinstance(xsd_type, builtins.Boolean):
        return False
    name = xsd_type.qname.localname if getattr(xsd_type, "qname", None) is not None else ""
    if name.startswith("date"):
        return "0000-00-00"
    if name.startswith("time") or isinstance(xsd_type, builtins.Time):
        return "00:00:00"
    if name.startswith("numeric") and name[7:].isdigit():
        return "0" * int(name[7:])
    return ""


def fill(element: Any, given: Any, path: str) -> Any:
    """``given`` (nested dicts, lists for tables) completed to a schema-valid value of
    ``element``: required fields absent get their initial value; a name the schema does not
    have is a ConfigurationError (a mapping that names a field the service lacks)."""
    xsd_type = element.type
    sub = dict(getattr(xsd_type, "elements", None) or [])
    if not sub:
        return initial(xsd_type) if given is None or given == "" and initial(xsd_type) != "" else given
    if isinstance(given, list):
        if set(sub) != {"item"}:
            raise ConfigurationError(f"{path} is not a table in the service's WSDL")
        return {"item": [fill(sub["item"], row, f"{path}.item") for row in given]}
    if given is not None and not isinstance(given, Mapping):
        raise ConfigurationError(f"{path} is a structure in the service's WSDL, not a value")
    given = dict(given or {})
    unknown = set(given) - set(sub)
    if unknown:
        raise ConfigurationError(f"{path}: the service's WSDL has no {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for name, child in sub.items():
        if name in given:
            out[name] = fill(child, given[name], f"{path}.{name}")
        elif child.max_occurs != 1 and child.min_occurs == 0:
            out[name] = []
        elif child.min_occurs >= 1:
            out[name] = fill(child, None, f"{path}.{name}")
    return out


class SoapService:
    """One operation set of one WSDL (a local copy) bound to one address.

    ``session`` carries the transport's auth and headers (one per connector); ``timeout`` is
    (connect, read) seconds; ``attempts`` bounds the retries of calls safe to repeat."""

    def __init__(self, wsdl: str, binding: str, session: requests.Session, *,
                 locate: Callable[[str], str] = lambda address: address, timeout: tuple[float, float] = (5.0, 60.0),
                 attempts: int = 4, secrets: tuple[str, ...] = (), conn_id: str = "",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = hardened_settings()
        self.transport = zeep.Transport(session=session, timeout=timeout[1], operation_timeout=timeout)
        self.client = zeep.Client(str(WSDL_DIR / wsdl), transport=self.transport, settings=self.settings)
        self.wsdl = wsdl
        self.address = locate(self._wsdl_address(binding))
        self.service = self.client.create_service(binding, self.address)
        self.attempts, self.secrets, self.conn_id, self.sleep = max(1, attempts), secrets, conn_id, sleep

    def _wsdl_address(self, binding: str) -> str:
        """The soap:address the WSDL gives the port of ``binding`` (the caller re-homes it)."""
        wanted = etree.QName(binding)
        for service in self.client.wsdl.services.values():
            for port in service.ports.values():
                if etree.QName(port.binding.name) == wanted:
                    return str(port.binding_options.get("address") or "")
        raise ConfigurationError(f"{self.wsdl}: no port for binding {binding}")

    def where(self, operation: str) -> str:
        parts = urlsplit(self.address)
        return redact(f"SOAP {operation} at {parts.path}", self.secrets)

    def message(self, operation: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """The operation's parameters, completed (see :func:`fill`)."""
        body = self.service._binding.get(operation).input.body
        return fill(body, dict(values), operation)

    def call(self, operation: str, values: Mapping[str, Any], *, write: bool = False) -> dict[str, Any]:
        """Send ``operation`` and return its answer's body as plain data.

        A read is retried on transient trouble (``attempts``); a write only when it certainly
        never arrived (connection refused, 429), else :class:`AmbiguousWriteError`."""
        params = self.message(operation, values)
        last: TransientError | None = None
        for attempt in range(1, self.attempts + 1):
            wait: float | None = None
            try:
                return self._once(operation, params, write)
            except RateLimitedError as exc:
                last, wait = exc, exc.retry_after
            except AmbiguousWriteError:
                raise
            except TransientError as exc:
                last = exc
            if attempt < self.attempts:
                delay = wait if wait is not None else min(20.0, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                log.warning("%s (attempt %d/%d, retrying in %.2fs)", last, attempt, self.attempts, delay)
                self.sleep(delay)
        assert last is not None
        raise last

    def _once(self, operation: str, params: dict[str, Any], write: bool) -> dict[str, Any]:
        where = self.where(operation)
        lost = AmbiguousWriteError if write else TransientError
        try:
            with self.client.settings(raw_response=True):
                resp = getattr(self.service, operation)(**params)
        except requests.RequestException as exc:
            if _never_sent(exc):
                raise TransientError(f"{where}: {type(exc).__name__} (not sent)", secrets=self.secrets) from None
            raise lost(f"{where}: {type(exc).__name__} after the request was sent", secrets=self.secrets) from None
        status = resp.status_code
        if status in (401, 403):
            raise ConfigurationError(f"{where}: HTTP {status}: SAP refused the credentials or authorisation of "
                                     f"connection {self.conn_id!r}", secrets=self.secrets)
        if status == 404:
            raise ConfigurationError(f"{where}: HTTP 404: no such service path (set the connection's extra.paths)",
                                     secrets=self.secrets)
        if status == 429:
            raise RateLimitedError(f"{where}: HTTP 429", retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
                                   secrets=self.secrets)
        if status == 400 and ("sap-contextid" in resp.headers.get("set-cookie", "")
                              or b"session timed out" in resp.content[:2000].lower()):
            raise SessionLost(f"{where}: HTTP 400: the SAP session (sap-contextid) has ended; what it held uncommitted "
                              f"is lost", secrets=self.secrets)
        try:
            doc = parse_xml(resp.content, self.transport, settings=self.settings)
        except (DTDForbidden, EntitiesForbidden) as exc:
            raise lost(f"{where}: HTTP {status}: the answer declares a DTD or entities, refused ({type(exc).__name__})",
                       secrets=self.secrets) from None
        except XMLSyntaxError:
            raise lost(f"{where}: HTTP {status}: the answer is not well-formed XML"
                       + (" (the write may have been applied)" if write else ""), secrets=self.secrets) from None
        fault = doc.find("soap-env:Body/soap-env:Fault", namespaces=SOAP_ENV)
        if fault is not None:
            raise self._fault(where, status, fault, write)
        if status >= 400:
            raise (lost if status >= 500 else ConfigurationError)(f"{where}: HTTP {status} without a SOAP fault",
                                                                    secrets=self.secrets)
        body = doc.find("soap-env:Body", namespaces=SOAP_ENV)
        answer = next((c for c in (body if body is not None else []) if isinstance(c.tag, str)), None)
        if answer is None:
            raise lost(f"{where}: HTTP {status}: the answer has no SOAP body", secrets=self.secrets)
        out = to_plain(answer)
        return out if isinstance(out, dict) else {}

    def _fault(self, where: str, status: int, fault: etree._Element, write: bool) -> Exception:
        """A SOAP 1.1 fault: ``Client`` codes are a refusal of this request, anything else a
        failure on the provider's side (transient; ambiguous for a write)."""
        code = (fault.findtext("faultcode") or "").strip()
        text = (fault.findtext("faultstring") or "").strip()
        detail = fault.find("detail")
        extra = " ".join(t.strip() for t in detail.itertext() if t.strip())[:500] if detail is not None else ""
        message = f"{where}: SOAP fault {code} (HTTP {status}): {text}" + (f" [{extra}]" if extra else "")
        if code.rpartition(":")[2].lower() == "client":
            return SoapFault(message, "client", secrets=self.secrets)
        return (AmbiguousWriteError if write else TransientError)(message, secrets=self.secrets)
