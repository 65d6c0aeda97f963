"""Stateful sessions of the ECC stand-in: what a session-enabled service keeps between calls.

A service whose WSDL says ``sapsession:enableSession`` true (``zbapi_salesorder_createfromdat``)
runs each caller in a session, as an ABAP system runs a stateful ICF service in one user context:

- a call without the session cookie opens a session; the answer sets ``sap-contextid`` (the ABAP
  session identifier, in the shape public clients show: ``SID%3aANON%3a<host>_<SID>_<nr>%3a<id>-NEW``)
  with the service's path, so a client holding cookies sends it back to that service only;
- work that an update BAPI leaves for the commit (a sales order created without commit) is kept
  in the session as *pending* until BAPI_TRANSACTION_COMMIT saves it or BAPI_TRANSACTION_ROLLBACK
  drops it;
- a session idle for longer than its timeout ends and its pending work is lost (as an ABAP
  session's LUW is rolled back when the session ends); a call that still carries its cookie is
  answered HTTP 400 "Session timed out" with the cookie deleted (``sap-contextid=0``), the answer
  public ADT clients report from ICF for a stale context (GitHub marcellourbani/abap-adt-api
  issue 50, SAP_BASIS 7.50).

The timeout is the stand-in's (``session_timeout_seconds``, default 1800 s: 30 minutes, the
``rdisp/plugin_auto_logout`` default); a real system takes the shortest of SICF's service timeout
and the system-wide one.  Which timeout and which exact answer a SOAP runtime gives is unverified.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

COOKIE = "sap-contextid"
#: Work saved on commit: called with an open transaction of the stand-in's store.
Work = Callable[[Any], None]


@dataclass
class EccSession:
    """One caller's session on one service path."""

    id: str
    path: str
    last_used: float
    pending: list[Work] = field(default_factory=list)


class Sessions:
    """The open sessions, by ``sap-contextid`` value; expired ones are ended when next looked at."""

    def __init__(self, timeout: float = 1800.0, clock: Callable[[], float] = time.monotonic,
                 host: str = "sandbox_ECC_00") -> None:
        self.timeout, self.clock, self.host = timeout, clock, host
        self._open: dict[str, EccSession] = {}
        self._lock = threading.Lock()
        self.lost = 0  # pending documents lost with their session

    def open(self, path: str) -> EccSession:
        """A new session on ``path``."""
        with self._lock:
            self._sweep()
            sid = f"SID%3aANON%3a{self.host}%3a{secrets.token_urlsafe(30)}-NEW"
            session = self._open[sid] = EccSession(sid, path, self.clock())
            return session

    def get(self, sid: str, path: str) -> EccSession | None:
        """The live session ``sid`` of ``path`` (its idle clock restarted), or None if it ended."""
        with self._lock:
            self._sweep()
            session = self._open.get(sid)
            if session is None or session.path != path:
                return None
            session.last_used = self.clock()
            return session

    def end_all(self) -> None:
        """End every session (their pending work is lost)."""
        with self._lock:
            for session in self._open.values():
                self.lost += len(session.pending)
            self._open.clear()

    def _sweep(self) -> None:
        now = self.clock()
        for sid in [s for s, session in self._open.items() if now - session.last_used > self.timeout]:
            self.lost += len(self._open.pop(sid).pending)

    def stats(self) -> dict[str, int]:
        with self._lock:
            self._sweep()
            return {"open": len(self._open), "pending": sum(len(s.pending) for s in self._open.values()),
                    "lost": self.lost}

    @staticmethod
    def set_cookie(session: EccSession) -> str:
        return f"{COOKIE}={session.id}; path={session.path}; HttpOnly"

    @staticmethod
    def delete_cookie(path: str) -> str:
        return f"{COOKIE}=0; expires=Thu, 01 Jan 1970 00:00:01 GMT; path={path}; HttpOnly"
