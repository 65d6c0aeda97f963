"""Resolve Airflow connections into :class:`hub.types.ConnectionInfo`.

Airflow's own conventions are the single source: an ``AIRFLOW_CONN_<ID>`` environment
variable (JSON or URI form), or, inside a running task, Airflow's connection lookup
(metadata DB or a secrets backend). Secrets never come from code.
"""
from __future__ import annotations

import json
import os
from typing import Any

from hub.errors import ConfigurationError
from hub.types import ConnectionInfo


def _mask(info: ConnectionInfo) -> None:
    """Tell Airflow's log masker about this connection's secrets, when Airflow is loaded."""
    try:
        from airflow.sdk.log import mask_secret  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - outside Airflow there is no masker to feed
        return
    for secret in info.secrets():
        mask_secret(secret)


def _from_json(conn_id: str, raw: str) -> ConnectionInfo:
    data: dict[str, Any] = json.loads(raw)
    extra = data.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra) if extra else {}
    return ConnectionInfo(conn_id=conn_id, host=data.get("host") or "", port=data.get("port"),
                          schema=data.get("schema") or "", login=data.get("login") or "",
                          password=data.get("password") or "", extra=extra, conn_type=data.get("conn_type") or "")


def _from_uri(conn_id: str, raw: str) -> ConnectionInfo:
    from airflow.models.connection import Connection  # lazy: heavy import

    c = Connection(conn_id=conn_id, uri=raw)
    return ConnectionInfo(conn_id=conn_id, host=c.host or "", port=c.port, schema=c.schema or "",
                          login=c.login or "", password=c.password or "", extra=c.extra_dejson,
                          conn_type=c.conn_type or "")


def get(conn_id: str) -> ConnectionInfo:
    """The connection ``conn_id``; ConfigurationError (without secrets) when it is missing."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    try:
        if raw:
            info = _from_json(conn_id, raw) if raw.lstrip().startswith("{") else _from_uri(conn_id, raw)
        else:
            from airflow.sdk import BaseHook  # lazy: only inside Airflow

            c = BaseHook.get_connection(conn_id)
            info = ConnectionInfo(conn_id=conn_id, host=c.host or "", port=c.port, schema=c.schema or "",
                                  login=c.login or "", password=c.password or "", extra=c.extra_dejson,
                                  conn_type=c.conn_type or "")
    except ConfigurationError:
        raise
    except Exception as exc:  # noqa: BLE001 - any lookup failure is a configuration problem
        raise ConfigurationError(f"connection {conn_id!r} is missing or unreadable ({type(exc).__name__})") from None
    _mask(info)
    return info
