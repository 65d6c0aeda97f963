"""The console's approvals page: what waits in the OA and for how long, what is stuck past the
threshold, what was decided and what a changed price superseded, as the approval table holds it."""
from __future__ import annotations

from datetime import timedelta

import requests

from hub import model, store
from hub.store import utcnow


def _row(subject: str, version: str, state: str, days: float, request_id: str, **extra) -> dict:
    at = utcnow() - timedelta(days=days)
    return {"kind": "special_price", "subject": subject, "version": version, "system": "oa",
            "request_name": f"特价审批 {subject} {version} [HUB:t]", "request_id": request_id, "state": state,
            "superseded": None, "facts": {"customer_name": f"客户{subject}", "product_code": "0101001"},
            "submitted_at": at, "updated_at": at, "node": None, "approver": None, "opinion": None, "decided_on": None,
            **extra}


def test_the_approvals_page_shows_waiting_by_age_stuck_decided_and_superseded(console):
    with store.engine().begin() as c:
        c.execute(model.approval.delete())
        c.execute(model.approval.insert(), [
            _row("A", "612.00", "pending", 5, "3039001", node="销售经理审批"),
            _row("B", "700.00", "pending", 1, "3039002", node="销售经理审批"),
            _row("C", "650.00", "approved", 2, "3039003", approver="王经理", opinion="同意", decided_on="2025-06-03"),
            _row("D", "600.00", "approved", 4, "3039004", superseded="yes", opinion="同意"),
            _row("D", "640.00", "rejected", 1, "3039005", opinion="价格低于公司底线，不同意"),
        ])
    viewer = console.server.token("viewer")
    r = requests.get(console.server.url + "/hub/approvals", cookies={"_token": viewer}, timeout=10)
    assert r.status_code == 200
    page = r.text
    stuck = page.split('id="stuck"')[1].split("</table>")[0]
    waiting = page.split('id="pending"')[1].split("</table>")[0]
    decided = page.split('id="decided"')[1].split("</table>")[0]
    superseded = page.split('id="superseded"')[1].split("</table>")[0]
    assert "3039001" in stuck and "3039002" not in stuck
    assert waiting.index("3039001") < waiting.index("3039002"), "oldest first"
    assert "3039003" in decided and "3039005" in decided and "价格低于公司底线" in decided
    assert "3039004" in superseded and "3039004" not in decided
    r = requests.get(console.server.url + "/hub/approvals?stuck_days=0.5", cookies={"_token": viewer}, timeout=10)
    assert "3039002" in r.text.split('id="stuck"')[1].split("</table>")[0]
    with store.engine().begin() as c:
        c.execute(model.approval.delete())
