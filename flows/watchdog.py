"""The watchdog: every 15 minutes, alert on flows that have gone stale.

A stale flow fails silently: its DAG was paused, the scheduler stopped, or its runs never
start; no run fails, so no failure callback fires. This DAG looks at the run log instead.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

DAG_ID = "hub_watchdog"
EVERY = timedelta(minutes=15)


def check() -> dict[str, list[str]]:
    """Alert every stale flow (once per stale spell, again after the re-alert period), then
    send what a throttled robot still owes; returns the stale flows and the channels each
    alert went to."""
    from flows import alerts
    from hub import health, store

    with store.engine().begin() as conn:
        stale = [h for h in health.all_flows(conn) if h.stale]
    sent = {h.flow: alerts.send(alerts.for_stale(h), again_after=alerts.stale_again_after()) for h in stale}
    alerts.flush_held()
    return sent


def watchdog_dag() -> DAG:
    with DAG(dag_id=DAG_ID, schedule=EVERY, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
             max_active_runs=1, tags=["hub", "monitoring"], default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
             doc_md="Alerts the configured channels (e-mail and chat robots: `hub_alert_*` connections, "
                    "connectors/alert_channels.py) when a hub flow has had no successful run for longer "
                    "than its expected interval (`HUB_STALE_AFTER_<FLOW>_MINUTES`).") as dag:
        task(task_id="check_staleness")(check)()
    return dag
