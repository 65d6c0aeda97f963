"""The 销售易 incremental read against the sandbox CRM over real HTTP: a window walked by id
(the only ORDER BY the service documents), rows changed while the walk runs, and the token
answers (401 / 403) of a loopback tenant."""
from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import parse_qs

from connectors.xiaoshouyi import XiaoshouyiConnector
from hub import connections
from hub.types import ConnectionInfo
from tests.flowkit import CrmClient, crm_accounts
from tests.sinks import Call, JsonServer


def _connector(monkeypatch, **extra: Any) -> XiaoshouyiConnector:
    conn = json.loads(os.environ["AIRFLOW_CONN_CRM_XIAOSHOUYI"])
    conn["extra"].update(extra)
    monkeypatch.setenv("AIRFLOW_CONN_CRM_XIAOSHOUYI", json.dumps(conn))
    return XiaoshouyiConnector(connections.get("crm_xiaoshouyi"), streams={"account": ["accountName", "phone"]})


def _read(connector: XiaoshouyiConnector, cursor: Any) -> tuple[list[dict], Any]:
    records, last = [], None
    for page in connector.read("account", cursor):
        assert not page.bad
        records.extend(page.records)
        last = page.cursor if page.cursor is not None else last
    return records, last


def test_rows_changed_while_the_walk_runs_are_never_skipped(sandbox, monkeypatch):
    """Between pages a salesperson edits an account the walk has passed and then one ahead of
    it. With no overlap at all, the next window still holds the one behind: the watermark is
    the window's newest updatedAt, but never later than the server's clock when the walk began."""
    connector = _connector(monkeypatch, page_size=20, overlap_ms=0)
    crm, everyone = CrmClient(sandbox), set(crm_accounts(sandbox))
    seen: list[str] = []
    behind = ahead = None
    pages = connector.read("account", None)
    for n, page in enumerate(pages):
        seen.extend(str(r["id"]) for r in page.records)
        if n == 1:  # two pages read: change one behind the walk, then one ahead of it
            behind = seen[0]
            ahead = max(everyone - set(seen), key=int)
            crm.patch("account", behind, {"phone": "021-60000001"})
            crm.patch("account", ahead, {"phone": "021-60000002"})
        cursor = page.cursor
    assert len(seen) == len(set(seen)) and set(seen) == everyone     # each once, none skipped
    after, _ = _read(connector, cursor)
    changed = {str(r["id"]): r["phone"] for r in after}
    assert changed.get(behind) == "021-60000001"                   # the next window holds it
    assert ahead in changed


def test_an_unchanged_tenant_keeps_its_watermark_and_reads_only_the_overlap(sandbox, monkeypatch):
    connector = _connector(monkeypatch, page_size=40)
    _, cursor = _read(connector, None)
    again, cursor2 = _read(connector, cursor)
    assert cursor2 == cursor                                        # an empty window does not move it back
    newest = max(int(a["updatedAt"]) for a in crm_accounts(sandbox).values() if str(a["updatedAt"]).isdigit())
    assert all(int(r["updatedAt"]) >= cursor["updatedAt"] - connector.overlap_ms for r in again
               if str(r["updatedAt"]).isdigit())
    assert cursor["updatedAt"] <= newest


class _Tenant(JsonServer):
    """A loopback 销售易 tenant: the first token it hands out is answered 403 (revoked), later
    ones get the data; its pages are capped at ``cap`` rows whatever the query asks for."""

    def __init__(self, rows: int = 7, cap: int = 3) -> None:
        self.tokens, self.cap = 0, cap
        self.calls: list[tuple[str, str]] = []
        self.data = [{"id": str(1000 + i), "updatedAt": 1_700_000_000_000 + i} for i in range(rows)]
        super().__init__(self._answer)

    def _answer(self, call: Call) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(call.raw.decode()).items()}
        if call.path == "/auc/oauth2/token":
            self.tokens += 1
            return 200, {"access_token": f"t{self.tokens}", "expires_in": 7199, "instance_uri": call.headers["host"]}
        token = call.headers.get("authorization", "").split(" ")[-1]
        self.calls.append((token, form.get("xoql", "")))
        if token == "t1":
            return 403, {"code": "403", "msg": "access token is invalid"}
        after = re.search(r"id > (\d+)", form["xoql"])
        rest = [r for r in self.data if not after or int(r["id"]) > int(after.group(1))]
        page = rest[:self.cap]
        return 200, {"code": "200", "data": {"totalSize": len(rest), "count": len(page), "records": page}}


def test_a_403_token_logs_in_again_once_and_a_capped_page_does_not_end_the_walk():
    tenant = _Tenant(rows=7, cap=3)
    try:
        conn = ConnectionInfo("crm_test", host=f"http://127.0.0.1:{tenant.port}", login="api", password="pw",
                              extra={"client_id": "c", "client_secret": "s", "scheme": "http"})
        connector = XiaoshouyiConnector(conn, streams={"account": []})
        records = [r for page in connector.read("account", None) for r in page.records]
        assert [r["id"] for r in records] == [str(1000 + i) for i in range(7)]   # 3 + 3 + 1, none lost
        assert tenant.tokens == 2 and [t for t, _ in tenant.calls].count("t1") == 1
        assert all("order by id asc" in q and "updatedAt asc" not in q for _, q in tenant.calls)
    finally:
        tenant.close()
