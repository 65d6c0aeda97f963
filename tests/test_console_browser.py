"""An operator's walk through the console in a real headless Chromium: log into Airflow,
open the console from Airflow's navigation, check the runs and their counts, open a CRM
account quarantined for a missing name, fix it in the CRM, replay it, run the flow again
and see it written to U8. Screenshots of the main pages go to var/screenshots/."""
from __future__ import annotations

from urllib.parse import quote

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from hub import model, quarantine, report, runs, store
from tests.consolekit import USERS, chromium, need_chromium, screenshot
from tests.flowkit import CrmClient, crm_accounts, run_flow, u8_customers

FIXED_NAME = "杭州测试修复科技有限公司"


def _login(driver, wait, url: str, user: str) -> None:
    """Through Airflow's own login page, as a person would."""
    driver.get(url + "/")
    wait.until(EC.url_contains("/auth/login"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[name=username]"))).send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(USERS[user][1])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/auth/login" not in d.current_url)


def _text(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text.strip()


def test_an_operator_replays_a_fixed_record_and_sees_it_written(console):
    need_chromium()
    url, sb = console.server.url, console.sandbox
    with store.engine().begin() as c:
        first = runs.one(c, console.first_run)
        latest = runs.recent(c, "customer_master", 1)[0]  # other console tests may have run the flow since
        missing_name, _ = quarantine.find(c, text="accountName: required value missing", stage="map")
    assert first and missing_name
    entry = missing_name[0]
    key = entry["record_key"]
    rep = report.build(console.first_run)

    driver = chromium()
    wait = WebDriverWait(driver, 30)
    try:
        _login(driver, wait, url, "ops")

        # the console from Airflow's own navigation, inside the Airflow UI
        wait.until(EC.element_to_be_clickable((By.XPATH, "//a[.//*[contains(text(), 'Hub console')]]"
                                                         " | //a[contains(., 'Hub console')]"))).click()
        wait.until(EC.url_contains("/plugin/hub-console"))
        frame = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "iframe")))
        driver.switch_to.frame(frame)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "section[data-flow=customer_master]")))
        assert "signed in as ops" in _text(driver, "#who")
        driver.switch_to.default_content()
        screenshot(driver, "01-airflow-ui-hub-console")

        # flows overview: the demo's run with the right counts
        driver.get(url + "/hub/")
        row = f'table.runs tr[data-run="{console.first_run}"]'
        for count in ("read", "written", "quarantined"):
            assert _text(driver, f'{row} td[data-count="{count}"]') == str(first["summary"][count])
        for step in latest["steps"]:  # the overview shows the flow's latest run per step
            for count in runs.COUNTS:
                cell = (f'table.steps[data-run="{latest["run_id"]}"] tr[data-step="{step["step"]}"]'
                        f' td[data-count="{count}"]')
                assert _text(driver, cell) == str(step[count] or 0), (step["step"], count)
        assert first["summary"]["quarantined"] > 0 and first["summary"]["written"] > 0
        screenshot(driver, "02-flows")

        # run detail: steps, task log links, where every record ended up
        driver.find_element(By.CSS_SELECTOR, f'{row} a').click()
        wait.until(EC.presence_of_element_located((By.ID, "run-id")))
        assert _text(driver, "#run-id") == console.first_run and _text(driver, "#run-status") == "success"
        log_link = driver.find_element(By.CSS_SELECTOR, 'tr[data-step="extract"] a').get_attribute("href")
        assert log_link.endswith(f"/dags/customer_master/runs/{quote(console.first_run, safe='')}/tasks/extract")
        crm = rep["systems"]["crm"]
        for count in ("in", "written", "skipped", "quarantined"):
            assert _text(driver, f'.outcome[data-system="crm"] [data-count="{count}"]') == str(crm[count])
        screenshot(driver, "03-run-detail")

        # the quarantine, filtered by reason; the record and its payload
        driver.get(url + "/hub/quarantine?q=" + quote("accountName"))
        assert int(_text(driver, "#total")) == len(missing_name)
        screenshot(driver, "04-quarantine")
        driver.find_element(By.CSS_SELECTOR, f'tr[data-id="{entry["id"]}"] td a').click()
        wait.until(EC.presence_of_element_located((By.ID, "payload")))
        assert key in _text(driver, "#payload") and "accountName: required value missing" in _text(driver, "#reasons")
        assert _text(driver, "#status") == "open"
        screenshot(driver, "05-quarantined-record")

        # the salesperson fixes the account in the CRM; the operator replays it
        CrmClient(sb).patch("account", key, {"accountName": FIXED_NAME})
        driver.find_element(By.CSS_SELECTOR, "#act input[name=comment]").send_keys("name filled in the CRM")
        driver.find_element(By.ID, "replay").click()
        wait.until(EC.presence_of_element_located((By.ID, "done")))
        assert _text(driver, "#status") == "replay_pending"
        assert "ops" in _text(driver, "#history") and "name filled in the CRM" in _text(driver, "#history")
        screenshot(driver, "06-replay-requested")

        # the flow's next run takes it, and it is written to U8 and the code back to the CRM
        second = run_flow("customer_master", "console-run-2")
        assert second["status"] == "success"
        driver.refresh()
        assert _text(driver, "#status") in ("replayed", "resolved")
        driver.get(url + "/hub/trace?q=" + key)
        wait.until(EC.presence_of_element_located((By.ID, "xref")))
        u8_code = _text(driver, '#xref tr[data-system="u8"] .key')
        # created in U8, or linked to the U8 customer it matched: either way it has its U8 code
        assert u8_code and u8_code in u8_customers(sb) and crm_accounts(sb)[key]["erpCode__c"] == u8_code
        assert FIXED_NAME in _text(driver, "#sources") and "console-run-2" in _text(driver, "#runs")
        screenshot(driver, "07-record-trace")

        driver.get(url + "/hub/dedup")
        assert _text(driver, "h1") == "Dedup review queue"
        screenshot(driver, "08-dedup-review")
        driver.get(url + "/hub/finance")
        assert _text(driver, "h1") == "Finance exception queue"
        screenshot(driver, "09-finance-exceptions")
    finally:
        driver.quit()

    with store.engine().begin() as c:
        status = c.execute(select(model.quarantine.c.status).where(model.quarantine.c.id == entry["id"])).scalar()
        actions = c.execute(select(model.quarantine_action).where(
            model.quarantine_action.c.quarantine_id == entry["id"])).all()
    assert status in ("replayed", "resolved")
    assert [(a.actor, a.action) for a in actions] == [("ops", "replay")]


def test_a_viewer_sees_no_replay_button(console):
    need_chromium()
    driver = chromium()
    wait = WebDriverWait(driver, 30)
    try:
        _login(driver, wait, console.server.url, "viewer")
        with store.engine().begin() as c:
            rows, _ = quarantine.find(c, text="phone_format", status="open", limit=1)
        driver.get(f"{console.server.url}/hub/quarantine/{rows[0]['id']}")
        wait.until(EC.presence_of_element_located((By.ID, "payload")))
        assert not driver.find_elements(By.ID, "replay") and "read-only" in driver.page_source
        assert "read-only" in _text(driver, "#who")
        screenshot(driver, "09-viewer-read-only")
    finally:
        driver.quit()
