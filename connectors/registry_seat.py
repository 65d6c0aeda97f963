"""天眼查 / 企查查 in the ``registry`` seat: the provider is the one the connection's
``extra.provider`` names (the account a customer buys decides it, not the code)."""
from __future__ import annotations

from connectors.qichacha import QichachaConnector
from connectors.registry_api import RegistryApi
from connectors.seat import Seat
from connectors.tianyancha import TianyanchaConnector
from hub.errors import ConfigurationError
from hub.types import ConnectionInfo

PROVIDERS = {"tianyancha": TianyanchaConnector, "qichacha": QichachaConnector}
PROVIDER_NAMES = {"tianyancha": "天眼查", "qichacha": "企查查"}


class RegistrySeat(Seat):
    """The ``registry`` seat (bindings: ``system: registry_api``, connection ``api``); its label
    is the provider's (``label(conn)``), not the card's."""

    @staticmethod
    def provider_of(conn: ConnectionInfo) -> str:
        provider = str(conn.extra.get("provider") or conn.conn_type or "").strip().lower()
        if provider not in PROVIDERS:
            raise ConfigurationError(f"connection {conn.conn_id!r} must say extra.provider: tianyancha or qichacha "
                                     f"(got {provider or 'nothing'!r})")
        return provider

    def connector(self, conn: ConnectionInfo | None = None) -> RegistryApi:
        """The provider's connector for the bound connection (or ``conn``, for a check)."""
        conn = conn or self.binding.connection("api")
        return PROVIDERS[self.provider_of(conn)](conn)

    def label(self, conn: ConnectionInfo | None = None) -> str:
        return PROVIDER_NAMES[self.provider_of(conn or self.binding.connection("api"))]
