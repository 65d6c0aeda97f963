"""Airflow plugin: the shops' push receiver (issue 12) in Airflow's API server.

Mounted at ``/shop-push``: a platform posts to ``{api server}/shop-push/{seat}`` where ``seat`` is
a ``shop`` binding's name (docs/shops_pushes.md). Not under ``/hub`` (the console's mount would
take the path first) and not signed in: the platforms authenticate each message by its signature,
which the seat checks. The receiver lives in ``flows/shop_pushes.py``.
"""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from flows.shop_pushes import create_app

URL_PREFIX = "/shop-push"


class HubPushesPlugin(AirflowPlugin):
    name = "hub_pushes"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Hub shop push receiver"}]
