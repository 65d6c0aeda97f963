"""The ``oa`` seat: an approvals system (泛微 e-cology 9, 钉钉) as the approvals flow asks for it.

What a tenant's workflow is lives in the binding's options, not in code: ``workflows`` (approval
kind → the OA workflowId), ``rejected_nodes`` (the archive nodes a 不同意 ends in; any other archive
node is an approval) and ``mappings`` (kind → the mapping spec of its form, default
``<kind>_to_<system>``). The seat reads a request's progress and says what it means."""
from __future__ import annotations

from typing import Any, Mapping

import hashlib
import json

from connectors import callback_crypto
from connectors.callback_crypto import ForgedCallback
from connectors.dingtalk_approval import DingTalkApprovalApi, approval_api
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


class DingTalkSeat(Seat):
    """钉钉 approvals in the ``oa`` role (connection ``api``: login = appKey, password = appSecret, extra
    ``originator_user_id``, ``dept_id``; ``callback_token`` / ``callback_aes_key`` where the app's
    approval events are pushed to the hub). ``workflows`` maps a kind to its processCode."""

    def connector(self, vault: Vault | None = None) -> DingTalkApprovalApi:
        return approval_api(self.binding.connection("api"))

    workflow = EcologySeat.workflow
    mapping = EcologySeat.mapping

    def decision(self, progress: Mapping[str, Any]) -> str:
        """COMPLETED + agree: approved; COMPLETED + refuse, TERMINATED (revoked by its originator) or
        DELETED (gone from DingTalk): rejected; RUNNING (or anything new): pending."""
        status, result = str(progress.get("status") or "").upper(), str(progress.get("result") or "").lower()
        if status == "COMPLETED":
            return APPROVED if result == "agree" else REJECTED
        if status in ("TERMINATED", "DELETED"):
            return REJECTED
        return PENDING

    def verify_event(self, query: Mapping[str, str], body: bytes) -> tuple[dict[str, Any], str]:
        """The decrypted event and its timestamp of a push whose signature and receiver are ours
        (connectors/callback_crypto.py); a ForgedCallback otherwise."""
        token, key, receiver = self.callback()
        try:
            encrypted = str(json.loads(body or b"{}").get("encrypt") or "")
        except (ValueError, AttributeError):
            raise ForgedCallback("callback body is not {\"encrypt\": …}") from None
        message, stamp = callback_crypto.verify(token, key, receiver, dict(query), encrypted)
        event = json.loads(message)
        event.setdefault("_digest", hashlib.sha256(encrypted.encode()).hexdigest())
        return event, stamp

    def event_answer(self) -> dict[str, str]:
        """The encrypted, signed "success" DingTalk requires as the answer to a push."""
        return callback_crypto.reply(*self.callback())

    def callback(self) -> tuple[str, str, str]:
        """(token, aes key, receiver id) of the app's event push; a ConfigurationError when not set up."""
        conn = self.binding.connection("api")
        token, key = conn.extra.get("callback_token"), conn.extra.get("callback_aes_key")
        if not token or not key:
            raise ConfigurationError(f"connection {conn.conn_id!r}: extra.callback_token and extra.callback_aes_key "
                                     "are needed to receive DingTalk's approval events")
        return str(token), str(key), str(conn.extra.get("callback_receiver_id") or conn.login)
