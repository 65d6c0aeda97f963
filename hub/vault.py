"""The hub's encrypted state: values a system hands out once and the hub must keep (the 泛微
e-cology registration's ``secrit`` and ``spk``), sealed with Airflow's own fernet key
(``[core] fernet_key``, the key that encrypts connections), never in code, a file or a log.

Without a key nothing is kept: the connector that needs it is refused with the reason."""
from __future__ import annotations

import json
from typing import Any, Mapping

from sqlalchemy import select

from hub import model
from hub.errors import ConfigurationError
from hub.store import upsert, utcnow


def _fernet():
    from airflow.configuration import conf
    from cryptography.fernet import Fernet, MultiFernet

    keys = [k.strip() for k in str(conf.get("core", "fernet_key", fallback="") or "").split(",") if k.strip()]
    if not keys:
        raise ConfigurationError("the hub keeps an OA registration (secrit, spk) encrypted and Airflow has no fernet "
                                 "key: set AIRFLOW__CORE__FERNET_KEY (or [core] fernet_key)")
    return MultiFernet([Fernet(k.encode()) for k in keys])


class HubVault:
    """:class:`hub.types.Vault` over the ``vault`` table of one hub store."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def get(self, name: str) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            sealed = conn.execute(select(model.vault.c.sealed).where(model.vault.c.name == name)).scalar()
        return json.loads(_fernet().decrypt(sealed.encode()).decode()) if sealed else None

    def put(self, name: str, value: Mapping[str, Any]) -> None:
        sealed = _fernet().encrypt(json.dumps(dict(value)).encode()).decode()
        with self.engine.begin() as conn:
            upsert(conn, model.vault, [{"name": name, "sealed": sealed, "updated_at": utcnow()}], keys=["name"])
