"""Airflow plugin: the OA's approval events (钉钉 bpms_instance_change) in Airflow's API server.

Mounted at ``/oa-events``: the OA app's event URL is ``{api server}/oa-events/{seat}`` where ``seat`` is
an ``oa`` binding's name (docs/approvals.md). Not signed in: each push is authenticated by its
signature, which the receiver (flows/oa_events.py) checks."""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from flows.oa_events import create_app

URL_PREFIX = "/oa-events"


class HubOaEventsPlugin(AirflowPlugin):
    name = "hub_oa_events"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Hub OA event receiver"}]
