"""The console answers only to Airflow's signed-in users: anonymous requests to its pages,
API and metrics are refused, a viewer reads but cannot replay or ignore, an admin can and
is audited, and a cookie-borne state change from another site is refused."""
from __future__ import annotations

from urllib.parse import quote

import pytest
import requests
from sqlalchemy import select

from hub import model, quarantine, store
from tests.consolekit import METRICS_TOKEN

PAGES = ["/hub/", "/hub/run?id=console-run-1", "/hub/quarantine", "/hub/quarantine/1", "/hub/trace?q=x",
         "/hub/dedup", "/hub/finance", "/hub/approvals"]
API = ["/hub/api/flows", "/hub/api/run?id=console-run-1", "/hub/api/quarantine", "/hub/api/quarantine/1",
       "/hub/api/trace?q=x", "/hub/metrics"]


def _open_entry(text: str) -> dict:
    with store.engine().begin() as c:
        rows, _ = quarantine.find(c, text=text, status="open", limit=1)
    assert rows, f"no open quarantine entry matching {text!r}"
    return rows[0]


def _status(qid: int) -> str:
    with store.engine().begin() as c:
        return c.execute(select(model.quarantine.c.status).where(model.quarantine.c.id == qid)).scalar()


def test_anonymous_requests_are_refused(console):
    url = console.server.url
    for path in PAGES:
        r = requests.get(url + path, headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and "/auth/login" in r.headers["location"], (path, r.status_code)
        assert "customer_master" not in r.text
    for path in PAGES + API:
        r = requests.get(url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 401, (path, r.status_code)
    bad = {"Authorization": "Bearer not-a-real-token"}
    for path in API:
        assert requests.get(url + path, headers=bad, timeout=10).status_code in (401, 403), path
    assert requests.get(url + "/hub/", cookies={"_token": "forged"}, allow_redirects=False,
                        timeout=10).status_code in (401, 403)
    entry = _open_entry("phone_format")
    r = requests.post(url + "/hub/api/quarantine/replay", json={"ids": [entry["id"]]}, timeout=10)
    assert r.status_code == 401
    r = requests.post(url + "/hub/quarantine/action", data={"ids": entry["id"], "action": "replay"},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 401
    assert _status(entry["id"]) == "open"


def test_a_viewer_reads_but_cannot_replay_or_ignore(console):
    url, token = console.server.url, console.server.token("viewer")
    auth = {"Authorization": f"Bearer {token}"}
    flows = requests.get(url + "/hub/api/flows", headers=auth, timeout=10)
    assert flows.status_code == 200 and flows.json()[0]["flow"] == "customer_master"
    page = requests.get(url + "/hub/quarantine", cookies={"_token": token}, timeout=10)
    assert page.status_code == 200 and "read-only" in page.text and 'name="ids"' not in page.text
    entry = _open_entry("phone_format")
    for action in ("replay", "ignore"):
        r = requests.post(f"{url}/hub/api/quarantine/{action}", headers=auth,
                          json={"ids": [entry["id"]], "comment": "viewer tries"}, timeout=10)
        assert r.status_code == 403, r.text
        r = requests.post(url + "/hub/quarantine/action", cookies={"_token": token}, allow_redirects=False,
                          headers={"Origin": url}, data={"ids": entry["id"], "action": action, "comment": "x"},
                          timeout=10)
        assert r.status_code == 403
    assert _status(entry["id"]) == "open"


def test_an_admin_ignores_with_a_comment_and_is_audited(console):
    url, token = console.server.url, console.server.token("ops")
    auth = {"Authorization": f"Bearer {token}"}
    entry = _open_entry("uscc_placeholder")
    r = requests.post(url + "/hub/api/quarantine/ignore", headers=auth, json={"ids": [entry["id"]]}, timeout=10)
    assert r.status_code == 400 and "comment" in r.json()["detail"]
    # a form post riding on the session cookie from another site is refused
    r = requests.post(url + "/hub/quarantine/action", cookies={"_token": token}, allow_redirects=False,
                      headers={"Origin": "http://evil.example"},
                      data={"ids": entry["id"], "action": "ignore", "comment": "csrf"}, timeout=10)
    assert r.status_code == 403 and _status(entry["id"]) == "open"
    r = requests.post(url + "/hub/api/quarantine/ignore", headers=auth,
                      json={"ids": [entry["id"]], "comment": "placeholder USCC, a test account"}, timeout=10)
    assert r.status_code == 200 and r.json()["changed"] == 1
    item = requests.get(f"{url}/hub/api/quarantine/{entry['id']}", headers=auth, timeout=10).json()
    assert item["status"] == "ignored" and item["comment"] == "placeholder USCC, a test account"
    assert [(h["actor"], h["action"], h["from_status"], h["to_status"]) for h in item["history"]] == [
        ("ops", "ignore", "open", "ignored")]


@pytest.mark.parametrize("header", ["Basic b3BzOm9wcy1QYTU1LWNvbnNvbGU=", "Bearer", "Negotiate abc", "Digest x"])
def test_an_authorization_header_that_is_no_bearer_token_does_not_lift_the_origin_check(console, header):
    """Only a bearer token Airflow accepts exempts a state change from the Origin check: with
    the session cookie, any other Authorization header is still the cookie's request."""
    url, token = console.server.url, console.server.token("ops")
    entry = _open_entry("phone_format")
    for origin in ({"Origin": "http://evil.example"}, {}):
        r = requests.post(url + "/hub/quarantine/action", cookies={"_token": token}, allow_redirects=False,
                          headers={"Authorization": header, **origin},
                          data={"ids": entry["id"], "action": "ignore", "comment": "csrf"}, timeout=10)
        assert r.status_code == 403, (header, origin, r.status_code)
        r = requests.post(url + "/hub/api/quarantine/replay", cookies={"_token": token},
                          headers={"Authorization": header, **origin}, json={"ids": [entry["id"]]}, timeout=10)
        assert r.status_code == 403, (header, origin, r.status_code)
    assert _status(entry["id"]) == "open"
    # the same cookie from the console's own page still works, and so does a real bearer token
    r = requests.get(f"{url}/hub/api/quarantine/{entry['id']}", cookies={"_token": token},
                     headers={"Authorization": header}, timeout=10)
    assert r.status_code == 200


BEYOND = str(2**63)  # one more than the largest id a database row can have


@pytest.mark.parametrize("path", [
    f"/hub/api/quarantine/{BEYOND}", "/hub/api/quarantine/99999999999999999999999999", "/hub/api/quarantine/-1",
    "/hub/api/quarantine/abc", "/hub/api/quarantine/1.5", f"/hub/api/quarantine?offset={BEYOND}",
    "/hub/api/quarantine?limit=abc", "/hub/api/quarantine?offset=1e3", "/hub/api/run?id=x%00y",
    "/hub/api/trace?q=%00", "/hub/api/quarantine?q=a%00b", f"/hub/quarantine/{BEYOND}",
    f"/hub/quarantine?page_no={BEYOND}", "/hub/quarantine?page_no=x", "/hub/run?id=%00",
])
def test_a_parameter_no_row_can_have_is_a_4xx_with_the_reason(console, path):
    token = console.server.token("viewer")
    r = requests.get(console.server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert 400 <= r.status_code < 500 and r.status_code not in (401, 403), (path, r.status_code, r.text[:300])
    detail = r.json()["detail"]
    assert detail and "Internal Server Error" not in detail, detail
    page = requests.get(console.server.url + path, cookies={"_token": token}, headers={"Accept": "text/html"},
                        timeout=10)
    assert 400 <= page.status_code < 500, (path, page.status_code)


@pytest.mark.parametrize("ids", [[2**63], [2**70], [0], [1, -5]])
def test_an_action_on_an_id_no_row_can_have_is_a_4xx(console, ids):
    url, token = console.server.url, console.server.token("ops")
    r = requests.post(url + "/hub/api/quarantine/replay", headers={"Authorization": f"Bearer {token}"},
                      json={"ids": ids}, timeout=10)
    assert r.status_code == 400 and "id" in r.json()["detail"], (ids, r.status_code, r.text[:300])
    form = requests.post(url + "/hub/quarantine/action", cookies={"_token": token}, headers={"Origin": url},
                         data={"ids": ids, "action": "replay"}, allow_redirects=False, timeout=10)
    assert form.status_code == 400, (ids, form.status_code)
    verdict = requests.post(url + "/hub/dedup/action", cookies={"_token": token}, headers={"Origin": url},
                            data={"id": ids[-1], "verdict": "merge"}, allow_redirects=False, timeout=10)
    assert 400 <= verdict.status_code < 500, (ids, verdict.status_code)


def test_metrics_for_prometheus(console):
    url = console.server.url
    r = requests.get(url + "/hub/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    with store.engine().begin() as c:
        steps = {s.step: s for s in c.execute(select(model.sync_step).where(
            model.sync_step.c.run_id == console.first_run))}
    assert 'hub_flow_stale{flow="customer_master"} 0' in text
    assert f'hub_step_records{{flow="customer_master",step="validate",count="rejected"}} {steps["validate"].rejected}' in text
    assert f'hub_step_records{{flow="customer_master",step="extract",count="read"}} {steps["extract"].read}' in text
    assert 'hub_quarantine_records{flow="customer_master",system="crm",stage="validate",status="open"}' in text
    assert "# TYPE hub_step_duration_seconds gauge" in text
    wrong = requests.get(url + "/hub/metrics", headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert wrong.status_code in (401, 403)
    signed_in = requests.get(url + "/hub/metrics", headers={"Authorization": f"Bearer {console.server.token('viewer')}"},
                             timeout=10)
    assert signed_in.status_code == 200


@pytest.mark.parametrize("path", ["/hub/api/run?id=no-such-run", "/hub/api/quarantine/999999"])
def test_unknown_things_are_404(console, path):
    r = requests.get(console.server.url + path, headers={"Authorization": f"Bearer {console.server.token('viewer')}"},
                     timeout=10)
    assert r.status_code == 404


def test_the_plugin_is_registered_with_airflow(console):
    r = requests.get(console.server.url + "/api/v2/plugins",
                     headers={"Authorization": f"Bearer {console.server.token('ops')}"}, timeout=10)
    assert r.status_code == 200
    plugin = next(p for p in r.json()["plugins"] if p["name"] == "hub_console")
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/hub"
    view = plugin["external_views"][0]
    assert view["href"] == "/hub/" and view["url_route"] == "hub-console" and view["destination"] == "nav"
    assert quote("hub-console") == view["url_route"]


def test_a_dedup_verdict_given_in_the_console_is_applied_by_the_next_run(console):
    from tests.flowkit import run_flow

    url = console.server.url
    with store.engine().begin() as c:
        x = c.execute(select(model.xref.c.native_key, model.xref.c.hub_id).where(
            model.xref.c.entity == "customer", model.xref.c.system == "crm")).all()
        hubs: dict[str, str] = {}
        for key, hub in x:
            hubs.setdefault(hub, key)
        (left, _), (right, _) = [(f"crm:{k}", h) for h, k in list(hubs.items())[:2]]
        decision = c.execute(model.match_decision.insert().values(
            entity="customer", left_node=left, right_node=right, source="model", decision="review", probability=0.8,
            evidence={"levels": {"name_core": 2}, "left": {"name": "甲"}, "right": {"name": "乙"}}, status="active",
            decided_by="model")).inserted_primary_key[0]
    viewer = console.server.token("viewer")
    page = requests.get(url + "/hub/dedup", cookies={"_token": viewer}, timeout=10)
    assert page.status_code == 200 and f"pair-{decision}" in page.text and "read-only" in page.text
    r = requests.post(url + "/hub/dedup/action", cookies={"_token": viewer}, headers={"Origin": url},
                      data={"id": decision, "verdict": "merge"}, allow_redirects=False, timeout=10)
    assert r.status_code == 403
    ops = console.server.token("ops")
    r = requests.post(url + "/hub/dedup/action", cookies={"_token": ops}, headers={"Origin": url},
                      data={"id": decision, "verdict": "merge", "comment": "same company"}, allow_redirects=False,
                      timeout=10)
    assert r.status_code == 303 and "recorded" in r.headers["location"]
    run_flow("customer_master", "console-dedup-1")
    with store.engine().begin() as c:
        after = dict(c.execute(select(model.xref.c.native_key, model.xref.c.hub_id).where(
            model.xref.c.system == "crm", model.xref.c.native_key.in_([left[4:], right[4:]]))).all())
        verdict = c.execute(select(model.match_decision.c.status, model.match_decision.c.decided_by).where(
            model.match_decision.c.source == "reviewer")).all()
    assert after[left[4:]] == after[right[4:]]
    assert ("active", "ops") in [tuple(v) for v in verdict]


def test_finance_works_the_exception_queue_in_the_console(console, monkeypatch):
    """The receipts run's exceptions appear with their reasons; a viewer may not decide; an
    operator's rejection without a comment is refused with the reason, with one it is recorded."""
    from hub import receipts_model as rm
    from quality.reconcile import queue
    from tests.flowkit import run_flow

    monkeypatch.setenv("HUB_RECEIPTS_AS_OF", "2025-06-30")
    run_flow("receipts", "console-receipts-1")
    with store.engine().begin() as c:
        waiting = queue.rows(c)
    assert len(waiting) >= 1
    first = waiting.iloc[0]
    url = console.server.url

    viewer = console.server.token("viewer")
    page = requests.get(url + "/hub/finance", cookies={"_token": viewer}, timeout=10)
    assert page.status_code == 200, page.text[-2000:]
    assert "read-only" in page.text
    for r in waiting.itertuples():
        assert f'data-receipt="{r.receipt_no}"' in page.text and r.reason_code in page.text
    r = requests.post(url + "/hub/finance/action", cookies={"_token": viewer}, headers={"Origin": url},
                      data={"receipt": first["receipt_hub_id"], "action": "reject", "comment": "x"},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 403

    ops = console.server.token("ops")
    r = requests.post(url + "/hub/finance/action", cookies={"_token": ops}, headers={"Origin": url},
                      data={"receipt": first["receipt_hub_id"], "action": "reject"}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and "error=" in r.headers["location"] and "comment" in r.headers["location"]
    r = requests.post(url + "/hub/finance/action", cookies={"_token": ops}, headers={"Origin": url},
                      data={"receipt": first["receipt_hub_id"], "action": "reject", "comment": "不是我们的客户"},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 303 and "recorded" in r.headers["location"]
    with store.engine().begin() as c:
        d = rm.recon_decision.c
        decided = c.execute(select(d.action, d.decided_by, d.comment).where(
            d.receipt_hub_id == first["receipt_hub_id"], d.status == "active")).one()
    assert tuple(decided) == ("reject", "ops", "不是我们的客户")
    page = requests.get(url + "/hub/finance?status=decided", cookies={"_token": ops}, timeout=10)
    assert f'data-receipt="{first["receipt_no"]}"' in page.text
