"""Who is asking, and may they? Airflow's own authentication and auth manager decide.

The console runs inside Airflow's API server, so it trusts exactly what Airflow trusts:
the JWT the Airflow UI keeps in the ``_token`` cookie, or an ``Authorization: Bearer``
token from ``POST /auth/token``, resolved by Airflow's ``get_user``. A state change that
rides on the cookie must come from this server's own pages (Origin / Referer); only a
bearer token Airflow accepted is exempt, since a browser never adds one on its own.
Permissions map onto DAG runs, since each flow is a DAG: reading the console needs read
access to DAG runs, replaying or ignoring a flow's records needs edit access to that
flow's DAG runs (in the simple auth manager: role ``user`` or above; ``viewer`` is
read-only).

Airflow's API modules are imported inside the functions: every Airflow process loads
plugins, and only the API server needs them.
"""
from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, status

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Operator:
    """The authenticated Airflow user behind a request."""

    user: Any  # airflow BaseUser
    name: str

    def _may(self, method: str, flow: str | None) -> bool:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

        return get_auth_manager().is_authorized_dag(method=method, access_entity=DagAccessEntity.RUN,
                                                    details=DagDetails(id=flow), user=self.user)

    def may_read(self, flow: str | None = None) -> bool:
        return self._may("GET", flow)

    def may_edit(self, flow: str | None = None) -> bool:
        return self._may("PUT", flow)

    def require_edit(self, flows: Iterable[str]) -> None:
        """403 unless the user may edit the runs of every one of ``flows``."""
        denied = sorted({f for f in flows if not self.may_edit(f)})
        if denied or not self.may_edit():
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"your Airflow role may not edit runs of {', '.join(denied) or 'these flows'}")


async def _airflow_user(request: Request) -> tuple[Any, bool]:
    """Airflow's ``get_user``: a bearer token wins over the UI's session cookie; 401 without.

    Also says whether the user came from a bearer token Airflow accepted: only then is the
    request free of the cookie's cross-site risk. Any other ``Authorization`` header
    (``Basic …``, an empty ``Bearer``) leaves the cookie as the identity, so it is not one.
    """
    from airflow.api_fastapi.core_api import security

    credentials = await security.bearer_scheme(request)
    user = await security.get_user(request, None, credentials)  # an invalid bearer token raises here
    return user, credentials is not None and credentials.scheme.lower() == "bearer" and bool(credentials.credentials)


def _same_origin(request: Request) -> bool:
    """A state change carried by the session cookie must come from a page of this server."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return False
    src, host = urlsplit(source), request.headers.get("host", "")
    return src.netloc == host


async def operator(request: Request) -> Operator:
    """FastAPI dependency: the signed-in user who may read the console (401 / 403 otherwise)."""
    user, by_bearer = await _airflow_user(request)
    op = Operator(user=user, name=str(user.get_name()))
    if not op.may_read():
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your Airflow role may not read DAG runs")
    if request.method not in SAFE_METHODS and not by_bearer and not _same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused")
    return op


async def scraper(request: Request) -> str:
    """For ``/metrics``: Prometheus may present ``HUB_METRICS_TOKEN`` (a long-lived scrape
    secret) instead of an Airflow JWT, which expires; anyone else signs in as usual."""
    expected = os.environ.get("HUB_METRICS_TOKEN", "")
    header = request.headers.get("authorization", "")
    if expected and header.lower().startswith("bearer ") and hmac.compare_digest(header[7:].strip(), expected):
        return "metrics-token"
    return (await operator(request)).name


def login_url(request: Request) -> str:
    """Airflow's login page, coming back to the page asked for."""
    from airflow.api_fastapi.app import get_auth_manager

    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return get_auth_manager().get_url_login(next_url=target)
