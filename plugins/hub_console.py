"""Airflow plugin: the hub's operations console.

A FastAPI app mounted at ``/hub`` in Airflow's API server (pages, JSON API, Prometheus
metrics; signed-in Airflow users only) and an entry in the Airflow UI's navigation that
shows it inside the UI. The console itself lives in ``hubconsole/`` (kept out of plugin
discovery by ``.airflowignore``) and reads the hub store through ``hub`` only.
"""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from hubconsole.app import create_app

URL_PREFIX = "/hub"


class HubConsolePlugin(AirflowPlugin):
    name = "hub_console"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Hub operations console"}]
    external_views = [{
        "name": "Hub console",
        "href": f"{URL_PREFIX}/",
        "icon": f"{URL_PREFIX}/icon.svg",
        "url_route": "hub-console",
        "destination": "nav",
        "nav_top_level": True,
    }]
