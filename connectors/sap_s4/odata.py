"""One S/4HANA OData V2 service over the hub's HTTP helper: login, CSRF, paging, SAP's errors.

- **Login**: HTTP Basic with the connection's login and password; ``sap-client`` (the
  connection's ``extra.sap_client``) on every call.
- **CSRF**: a GET (never HEAD: protocol notes §3, oisee/vibing-steampunk#104) of the service root
  with ``X-CSRF-Token: Fetch``; the token and the session cookies it belongs to are kept
  together (one ``requests`` session per service and thread, the helper's), and both go with
  every POST / PATCH. A ``403`` answered with ``x-csrf-token: Required`` (the token expired)
  fetches a new one, once, and sends the call again: SAP refused it before doing anything.
- **Paging**: the server's ``d.__next`` (``$skiptoken``) until there is none;
  ``$inlinecount=allpages`` (never ``$count=true``: V2), ``$format=json``.
- **Errors**: SAP's envelope ``{"error": {"code", "message": {"value"}, "innererror":
  {"errordetails": [...]}}}`` becomes the error text: 401 is a configuration error (the login),
  403 one too (a missing authorisation; a CSRF refusal is retried first), 428 and 501 configuration
  errors (a change sent without the ETag it needs; a request the system does not serve), 412 a
  :class:`PreconditionFailed` (read again), other 4xx a :class:`DataError` with SAP's
  message, 5xx / 429 / timeouts a :class:`TransientError` (retried by the helper first).
  Texts carry no password: the helper redacts the login and the Authorization value.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any, Iterator
from urllib.parse import urlsplit

from connectors.http import HttpClient, Response
from connectors.sap_s4.streams import ROOT
from hub.errors import AmbiguousWriteError, ConfigurationError, DataError, TransientError
from hub.types import ConnectionInfo

log = logging.getLogger("connectors.sap_s4")


class PreconditionFailed(TransientError):
    """412: the entity changed since it was read (its ETag no longer matches): read it again."""


class PreconditionRequired(ConfigurationError):
    """428: a change was sent without the If-Match ETag the entity requires."""


def header(headers: dict[str, str], name: str) -> str | None:
    """A response header by name, whatever its case."""
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def sap_message(body: Any) -> str:
    """SAP's error text: ``code: message`` plus each distinct ``errordetails`` message."""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body.strip()[:300]
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return ""
    msg = err.get("message")
    text = str(msg.get("value") if isinstance(msg, dict) else msg or "").strip()
    parts = [f"{err['code']}: {text}" if err.get("code") else text]
    details = ((err.get("innererror") or {}).get("errordetails") or []) if isinstance(err.get("innererror"), dict) else []
    for d in details if isinstance(details, list) else []:
        m = str(d.get("message") or "").strip() if isinstance(d, dict) else ""
        if m and m != text and not any(m in p for p in parts):
            parts.append(f"{d.get('code') or ''} {m}".strip())
    return "; ".join(p for p in parts if p)


class SapODataClient:
    """Calls to one service (``/sap/opu/odata/sap/<service>``) of one S/4HANA system."""

    def __init__(self, conn: ConnectionInfo, service: str, http: HttpClient | None = None) -> None:
        if not conn.host or not conn.login:
            raise ConfigurationError(f"connection {conn.conn_id!r} needs host, login and password for S/4HANA")
        self.conn = conn
        self.service = service
        self.root = f"{ROOT}/{service}"
        basic = base64.b64encode(f"{conn.login}:{conn.password}".encode()).decode()
        self._auth = f"Basic {basic}"
        secrets = conn.secrets() + (basic,)
        self.http = http or HttpClient(conn.base_url(), secrets=secrets, **conn.http_retry())
        self.http.secrets = tuple(dict.fromkeys((*self.http.secrets, *secrets)))
        self.sap_client = str(conn.extra.get("sap_client") or "")
        self._local = threading.local()

    # --- plumbing -----------------------------------------------------------------------------
    def _headers(self, more: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": self._auth, "Accept": "application/json", **(more or {})}

    def _params(self, params: dict[str, Any] | None, url: str = "") -> dict[str, Any] | None:
        out = dict(params or {})
        if self.sap_client and "sap-client=" not in url:
            out["sap-client"] = self.sap_client
        return out or None

    def path(self, uri: str) -> str:
        """A URI SAP answered (``__metadata.uri``, ``__next``; absolute, maybe with another host
        name behind a proxy, or relative to the service) as a path on this connection."""
        if uri.startswith("http://") or uri.startswith("https://"):
            parts = urlsplit(uri)
            uri = parts.path + (f"?{parts.query}" if parts.query else "")
        if uri.startswith("/"):
            return uri
        return f"{self.root}/{uri}"

    def _what(self, method: str, path: str) -> str:
        return f"S/4HANA {method} {path.split('?')[0]}"

    def fail(self, resp: Response, what: str, *, missing: str = "data") -> None:
        """Raise the hub error an answer means (nothing for 2xx); ``missing`` says whether a 404
        is a record's absence ("data") or the service's ("config")."""
        status = resp.status
        if status < 400:
            return
        text = sap_message(resp.body) or f"HTTP {status}"
        where = f"{what} (connection {self.conn.conn_id!r})"
        if status == 401:
            raise ConfigurationError(f"{where}: the login was refused (HTTP 401): check login, password and "
                                     f"extra.sap_client", secrets=self.http.secrets)
        if status == 403:
            raise ConfigurationError(f"{where}: not authorised (HTTP 403): {text}", secrets=self.http.secrets)
        if status == 412:
            raise PreconditionFailed(f"{where}: changed in SAP since it was read (HTTP 412): {text}",
                                     secrets=self.http.secrets)
        if status == 428:
            raise PreconditionRequired(f"{where}: the change was sent without the If-Match ETag SAP requires "
                                     f"(HTTP 428): {text}", secrets=self.http.secrets)
        if status == 404 and missing == "config":
            raise ConfigurationError(f"{where}: not found (HTTP 404): is the service {self.service} activated "
                                     f"(/IWFND/MAINT_SERVICE)? {text}", secrets=self.http.secrets)
        if status == 501:
            raise ConfigurationError(f"{where}: the system does not serve this (HTTP 501): {text}",
                                     secrets=self.http.secrets)
        if status >= 500:
            raise TransientError(f"{where}: HTTP {status}: {text}", secrets=self.http.secrets)
        raise DataError(f"{what}: SAP refused it (HTTP {status}): {text}", secrets=self.http.secrets)

    # --- reads --------------------------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any] | None = None, *, missing: str = "data") -> Response:
        """A GET answered as JSON; errors raised as :meth:`fail` says."""
        path = self.path(path)
        query = dict(params or {}) if "$format=" in path else {"$format": "json", **(params or {})}
        resp = self.http.request("GET", path, params=self._params(query, path), headers=self._headers())
        self.fail(resp, self._what("GET", path), missing=missing)
        return resp

    def pages(self, entity_set: str, params: dict[str, Any]) -> Iterator[tuple[list[dict], int | None]]:
        """Every page of ``entity_set`` (its results and the ``__count`` it announced), following
        ``d.__next`` until the server sends none. A refused query (400) is a configuration error:
        the hub asked the system for something it does not serve (a property it cannot filter)."""
        path: str | None = f"{self.root}/{entity_set}"
        query: dict[str, Any] | None = {**params, "$inlinecount": "allpages"}
        while path:
            try:
                resp = self.get(path, query, missing="config")
            except DataError as exc:
                raise ConfigurationError(f"S/4HANA refused the query on {entity_set} {query or ''}: {exc}") from None
            d = resp.body.get("d") if isinstance(resp.body, dict) else None
            if not isinstance(d, dict) or not isinstance(d.get("results"), list):
                raise TransientError(f"S/4HANA {entity_set}: the answer has no d.results")
            count = d.get("__count")
            yield d["results"], int(count) if str(count or "").isdigit() else None
            nxt = d.get("__next")
            path, query = (self.path(str(nxt)), None) if nxt else (None, None)

    # --- writes -------------------------------------------------------------------------------
    def token(self, fresh: bool = False) -> str:
        """The CSRF token of this thread's session (fetched with GET on the service root)."""
        if fresh or not getattr(self._local, "token", None):
            resp = self.http.request("GET", f"{self.root}/", params=self._params(None),
                                     headers=self._headers({"X-CSRF-Token": "Fetch"}), expect_json=False)
            self.fail(resp, self._what("GET", f"{self.root}/ (X-CSRF-Token: Fetch)"), missing="config")
            token = header(resp.headers, "x-csrf-token")
            if not token or token.lower() == "required":
                raise ConfigurationError(f"S/4HANA {self.service} gave no CSRF token to connection "
                                         f"{self.conn.conn_id!r} (is the login a dialog or communication user?)")
            self._local.token = token
            self.http.secrets = tuple(dict.fromkeys((*self.http.secrets, token)))
        return self._local.token

    def check(self) -> None:
        """The service answers this login (the CSRF fetch proves both)."""
        self.token(fresh=True)

    def send(self, method: str, path: str, body: Any = None, *, etag: str | None = None,
             idempotent: bool | None = None) -> Response:
        """A POST / PATCH / DELETE with the CSRF token (and ``If-Match``); a CSRF refusal fetches a
        new token and sends again, once. The body is parsed here: a 2xx answer that is not JSON
        is, for a create, an answer lost after SAP may have applied it."""
        path = self.path(path)
        resp = None
        for attempt in (1, 2):
            more = {"X-CSRF-Token": self.token(fresh=attempt == 2), "Content-Type": "application/json"}
            if etag:
                more["If-Match"] = etag
            resp = self.http.request(method, path, params=self._params(None, path), json_body=body,
                                     headers=self._headers(more), expect_json=False, idempotent=idempotent)
            if resp.status == 403 and (header(resp.headers, "x-csrf-token") or "").lower() == "required":
                log.info("S/4HANA %s: CSRF token refused (expired); fetching a new one", self.service)
                continue
            break
        assert resp is not None
        text = resp.body or ""
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            if resp.status < 300:
                if method == "POST":
                    raise AmbiguousWriteError(f"{self._what(method, path)}: HTTP {resp.status} with a body that is "
                                              f"not JSON", secrets=self.http.secrets) from None
                parsed = None
            else:
                parsed = text
        resp = Response(resp.status, parsed, resp.headers)
        self.fail(resp, self._what(method, path))
        return resp
