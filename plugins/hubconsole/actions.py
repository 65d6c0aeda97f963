"""Replay and ignore, as the console's pages and API both do them: permission per flow,
then one transaction that changes the entries and audits who did it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from fastapi import HTTPException, status
from sqlalchemy import select

from hub import model, quarantine, store

from .auth import Operator
from .params import row_ids

ACTIONS = ("replay", "ignore")


@dataclass(frozen=True)
class Outcome:
    action: str
    asked: int
    changed: int

    @property
    def message(self) -> str:
        verb = "will be replayed by the flow's next run" if self.action == "replay" else "ignored"
        skipped = self.asked - self.changed
        extra = f"; {skipped} not in a state that allows it" if skipped else ""
        return f"{self.changed} entr{'y' if self.changed == 1 else 'ies'} {verb}{extra}"


def apply(op: Operator, action: str, ids: Sequence[int], comment: str | None) -> Outcome:
    """Replay or ignore quarantine entries ``ids`` as ``op``; 400 / 403 / 404 on a bad request."""
    if action not in ACTIONS:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown action {action!r}")
    ids = row_ids([int(i) for i in ids], "a quarantine entry")
    if not ids:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "select at least one entry")
    comment = (comment or "").strip() or None
    if action == "ignore" and not comment:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "ignoring needs a comment: why may this record be dropped?")
    with store.engine().begin() as conn:
        q = model.quarantine.c
        flows = {r.flow for part in store.chunks(ids)
                 for r in conn.execute(select(q.flow).where(q.id.in_(part)).distinct())}
        if not flows:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such quarantine entries")
        op.require_edit(flows)
        if action == "replay":
            changed = quarantine.request_replay(conn, ids, comment, actor=op.name)
        else:
            changed = quarantine.ignore(conn, ids, comment or "", actor=op.name)
    return Outcome(action=action, asked=len(ids), changed=changed)
