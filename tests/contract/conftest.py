"""The contract kit: each connector's documented behaviour, checked against whatever its
Airflow connection points at.

``make contract SYSTEM=<system>`` (or ``pytest -m contract tests/contract``) resolves the
connections the way the flows do (``AIRFLOW_CONN_<ID>`` or Airflow's connection store). When
a system's connection is not configured, a small sandbox is seeded and started instead, so
the same tests run in ``make test``. Read-only checks always run; write checks run only when
the connection's extra says ``"contract_writes": true`` (a test tenant), and they clean up
after themselves. See docs/protocols.md (the contract kit).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from hub import connections
from hub.errors import ConfigurationError
from hub.types import ConnectionInfo


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "tests/contract/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.contract)


@dataclass
class Target:
    """The connections one system's contract runs against, and whether that is the sandbox."""

    conns: dict[str, ConnectionInfo]
    sandbox: Any = None

    @property
    def where(self) -> str:
        return "the sandbox" if self.sandbox is not None else "the configured system"

    def writes_allowed(self, conn_id: str) -> bool:
        return bool(self.conns[conn_id].extra.get("contract_writes"))


def _configured(conn_ids: tuple[str, ...]) -> dict[str, ConnectionInfo] | None:
    try:
        return {c: connections.get(c) for c in conn_ids}
    except ConfigurationError:
        return None


def resolve(conn_ids: tuple[str, ...], tmp_path_factory) -> tuple[Target, pytest.MonkeyPatch | None]:
    """The configured connections, or a sandbox's (with write checks allowed: it is a test tenant)."""
    if os.environ.get("HUB_CONTRACT_SANDBOX") != "1" and (found := _configured(conn_ids)) is not None:
        return Target(found), None
    from sandbox.harness import Sandbox

    sb = Sandbox(tmp_path_factory.mktemp("contract") / "sandbox", accounts=30).seed().start()
    mp = pytest.MonkeyPatch()
    for key, value in sb.connections().items():
        mp.setenv(key, value)
    conns = {}
    for c in conn_ids:
        info = connections.get(c)
        conns[c] = ConnectionInfo(info.conn_id, info.host, info.port, info.schema, info.login, info.password,
                                  {**info.extra, "contract_writes": True}, info.conn_type)
    return Target(conns, sb), mp


@pytest.fixture(scope="module")
def target(request, tmp_path_factory):
    t, mp = resolve(request.module.CONNECTIONS, tmp_path_factory)
    yield t
    if t.sandbox is not None:
        t.sandbox.stop()
    if mp is not None:
        mp.undo()


def needs_writes(t: Target, conn_id: str) -> None:
    """Write checks only on a test tenant: the connection's extra must say contract_writes."""
    if not t.writes_allowed(conn_id):
        pytest.skip(f"write checks need \"contract_writes\": true in {conn_id}'s extra (a test tenant)")
