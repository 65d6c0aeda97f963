"""The seats of this deployment, by role: the only way flows reach a system.

``erp()`` is the bound ERP's adapter (:class:`hub.types.ErpAdapter`), ``crm()`` the CRM's,
and so on; which system sits there is the bindings file's business (``hub.bindings``). A
flow names roles and asks by meaning; it never imports a connector.
"""
from __future__ import annotations

import importlib
import logging
from functools import lru_cache
from typing import Any

from connectors import NOTIFIERS, SYSTEMS
from hub import bindings, connections
from hub.errors import ConfigurationError, redact
from hub.types import AlertChannel, Binding

log = logging.getLogger("flows.roles")


@lru_cache(maxsize=8)
def _load(file: str) -> dict[str, list[Binding]]:
    from pathlib import Path

    return bindings.load(SYSTEMS, Path(file), resolve=connections.get)


def seats(role: str) -> list[Binding]:
    """Every binding of ``role`` (two shops are two seats); empty when the role is unbound."""
    return list(_load(str(bindings.path())).get(role, []))


def validate() -> dict[str, list[Binding]]:
    """Load and check the bindings now (DAG files call this while parsed)."""
    return _load(str(bindings.path()))


def seat(role: str) -> Binding:
    """The one binding of ``role``; a ConfigurationError when it is unbound or bound twice."""
    found = seats(role)
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise ConfigurationError(f"{bindings.path()}: {what} {role!r} binding(s); this flow needs exactly one")
    return found[0]


def offers(role: str, capability: str) -> bool:
    """Whether every system bound to ``role`` takes part in ``capability`` (``receipts`` …), as
    its card in connectors.SYSTEMS says: cheap (no adapter is built), so DAG files may ask while parsed."""
    found = seats(role)
    return bool(found) and all(capability in SYSTEMS[b.system].capabilities for b in found)


_ADAPTERS: dict[tuple[str, str, str], Any] = {}


def adapter(binding: Binding) -> Any:
    """The adapter of one seat (built once per process and bindings file)."""
    key = (binding.where, binding.role, binding.name)
    if key not in _ADAPTERS:
        _ADAPTERS[key] = _build(SYSTEMS[binding.system].adapter, binding)
    return _ADAPTERS[key]


def erp() -> Any:
    """The bound ERP (:class:`hub.types.ErpAdapter`)."""
    return adapter(seat("erp"))


def crm() -> Any:
    """The CRM core."""
    return adapter(seat("crm"))


def registry() -> Any:
    """The business registry (天眼查 / 企查查)."""
    return adapter(seat("registry"))


def bank() -> Any:
    """The bank statement drop."""
    return adapter(seat("bank"))


def _build(path: str, *args: Any) -> Any:
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)(*args)


def notifier_connections() -> tuple[str, ...]:
    """The Airflow connection ids the alert channels are read from (connectors.NOTIFIERS)."""
    return tuple(conn_id for conn_id, _ in NOTIFIERS.values())


def notifiers() -> list[AlertChannel]:
    """The alert channels whose connection exists; a broken one is logged (without secrets) and skipped."""
    out: list[AlertChannel] = []
    for conn_id, path in NOTIFIERS.values():
        try:
            info = connections.get(conn_id)
        except ConfigurationError:
            continue  # not configured: the channel is off
        try:
            out.append(_build(path, info))
        except ConfigurationError as exc:
            log.warning("alert channel %s is misconfigured: %s", conn_id, redact(str(exc), info.secrets()))
    return out


def reset() -> None:
    """Forget loaded bindings and adapters (tests switch ``HUB_BINDINGS``)."""
    _load.cache_clear()
    _ADAPTERS.clear()
