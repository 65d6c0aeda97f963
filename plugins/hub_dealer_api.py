"""Airflow plugin: the dealer ordering channel (经销商订货 API) in Airflow's API server.

Mounted at ``/dealer-api``: a dealer's ordering system calls ``{api server}/dealer-api/{seat}/v1/…``
where ``seat`` is a ``dealer`` binding's name (docs/dealer_api.md; the OpenAPI document is
``/dealer-api/openapi.json``). Not signed in to Airflow: every request is authenticated by the
dealer's HMAC signature, which the channel (flows/dealer_orders.py) checks."""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from flows.dealer_orders import create_app

URL_PREFIX = "/dealer-api"


class HubDealerApiPlugin(AirflowPlugin):
    name = "hub_dealer_api"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Hub dealer ordering API"}]
