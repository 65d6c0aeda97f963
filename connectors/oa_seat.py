"""The ``oa`` seat: an approvals system (泛微 e-cology 9 here) as the approvals flow asks for it.

What a tenant's workflow is lives in the binding's options, not in code: ``workflows`` (approval
kind → the OA workflowId), ``rejected_nodes`` (the archive nodes a 不同意 ends in; any other archive
node is an approval) and ``mappings`` (kind → the mapping spec of its form, default
``<kind>_to_<system>``). The seat reads a request's progress and says what it means."""
from __future__ import annotations

from typing import Any, Mapping

from connectors.ecology import EcologyApi
from connectors.seat import Seat
from hub.errors import ConfigurationError
from hub.types import Vault

PENDING, APPROVED, REJECTED, RETURNED = "pending", "approved", "rejected", "returned"


class EcologySeat(Seat):
    """泛微 e-cology 9 in the ``oa`` role (connection ``api``: host, login = appid, extra.user_id)."""

    def connector(self, vault: Vault) -> EcologyApi:
        return EcologyApi(self.binding.connection("api"), vault)

    def workflow(self, kind: str) -> str:
        found = (self.binding.options.get("workflows") or {}).get(kind)
        if not found:
            raise ConfigurationError(f"{self.binding.where}: oa binding {self.binding.name!r} names no workflow for "
                                     f"{kind!r} (options: {{workflows: {{{kind}: <e-cology workflowId>}}}})")
        return str(found)

    def mapping(self, kind: str) -> str:
        return str((self.binding.options.get("mappings") or {}).get(kind) or f"{kind}_to_{self.binding.system}")

    def decision(self, progress: Mapping[str, Any]) -> str:
        """archive node (type 3): approved, or rejected where the tenant's rejection archive; back at
        the creator's node (type 0) after a 退回: returned; anywhere else: still pending."""
        node_type, node = str(progress.get("node_type")), str(progress.get("node") or "")
        if node_type == "3":
            return REJECTED if node in set(self.binding.options.get("rejected_nodes") or ()) else APPROVED
        if node_type == "0" and progress.get("last_action") == "退回":
            return RETURNED
        return PENDING
