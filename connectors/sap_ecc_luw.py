"""The standard sales order BAPI's logical unit of work: create, then commit in the same session.

BAPI_SALESORDER_CREATEFROMDAT2 is a release 4.0+ BAPI: it does not commit. Its document is saved
only when BAPI_TRANSACTION_COMMIT runs in the same ABAP session (protocol notes section 2; SAP's
BAPI programming guide, TIBCO's and BizTalk's SAP adapters send the commit on the same
connection). Over SOAP that session is the stateful web service's HTTP session, held by the
``sap-contextid`` cookie SAP sets with the service's path, so the three function modules are
operations of one service definition bound with stateful communication (the composed
``zbapi_salesorder_createfromdat.composed.wsdl``).

One order is one LUW in a session of its own: the cookie jar is emptied before the create (no
earlier LUW's leftovers can be committed with it) and after the commit (the server ends the
session when it times out). ``WAIT = 'X'`` makes the commit synchronous, so the order can be
looked up right after. RETURN rows E/A of the create or of the commit are a failed result, and
the LUW is rolled back (BAPI_TRANSACTION_ROLLBACK). A lost answer on the create or the commit, or
a session that has ended, raises :class:`~hub.errors.AmbiguousWriteError`: the caller looks the
order up by its PO number before anything is sent again; an uncommitted create of the old
session is never committed later, because nothing is sent with its cookie any more.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import requests

from connectors.sap_ecc_keys import alpha, error_rows, messages_text
from connectors.soap import rows
from hub.errors import ConfigurationError, HubError
from hub.types import WriteResult

log = logging.getLogger("connectors.sap_ecc")

SERVICE = "order_standard"
CREATE, COMMIT, ROLLBACK = "BAPI_SALESORDER_CREATEFROMDAT2", "BAPI_TRANSACTION_COMMIT", "BAPI_TRANSACTION_ROLLBACK"
SESSION_COOKIE = "sap-contextid"
#: ``call(service, values, write=…, operation=…)`` of the connector.
Call = Callable[..., dict[str, Any]]


class OrderLuw:
    """Creates one sales order and commits it in one SAP session (module docstring)."""

    def __init__(self, call: Call, session: requests.Session) -> None:
        self.call, self.session = call, session

    def create(self, key: str, body: Mapping[str, Any]) -> WriteResult:
        jar = self.session.cookies
        jar.clear()
        try:
            answer = self.call(SERVICE, body, write=True, operation=CREATE)
            msgs = rows(answer.get("RETURN"))
            errors, number = error_rows(msgs), str(answer.get("SALESDOCUMENT") or "").strip()
            if errors or not number:
                self._rollback()
                text = messages_text(errors or msgs) or "no SALESDOCUMENT and no message"
                return WriteResult(key, "failed", error=f"SAP refused the order: {text}", error_class="data")
            if SESSION_COOKIE not in {c.name for c in jar}:
                raise ConfigurationError(
                    f"SAP ECC {CREATE} answered order {number} without a session cookie ({SESSION_COOKIE}): the service "
                    f"is bound stateless, so no BAPI_TRANSACTION_COMMIT can reach its LUW and the order was not kept. "
                    f"Set its communication to stateful in SOAMANAGER, or bind the Z-wrapper (extra.order_commit wrapper)")
            ret = self.call(SERVICE, {"WAIT": "X"}, write=True, operation=COMMIT).get("RETURN")
            ret = ret if isinstance(ret, dict) else {}
            if error_rows([ret]):
                self._rollback()
                return WriteResult(key, "failed", error_class="data", error=(
                    f"SAP did not commit order {alpha(number)}: {messages_text([ret])}; rolled back, nothing kept"))
            for m in msgs:
                if str(m.get("TYPE", "")).upper() == "W":
                    log.info("SAP ECC order %s %s: warning %s", number, key, messages_text([m]))
            return WriteResult(key, "created", alpha(number))
        finally:
            jar.clear()

    def _rollback(self) -> None:
        """Roll the session's LUW back; if that fails the session's end drops it all the same."""
        try:
            self.call(SERVICE, {}, write=True, operation=ROLLBACK)
        except HubError as exc:
            log.warning("SAP ECC %s failed (the session's end drops the LUW anyway): %s", ROLLBACK, exc)
