"""registry_refresh (Airflow DAG): customers' 天眼查 / 企查查 facts refreshed daily, lookups in the registry_api pool."""
from flows.dag import flow_dag

dag = flow_dag(
    "registry_refresh", "flows.registry_refresh", schedule="@daily", pools={"extract": "registry_api"},
    doc="Registry refresh: looks up customers whose cached registry answer is missing, expired or deferred "
        "(quota, rate limit, outage) and stores the facts as their registry source record. Lookups cost money: "
        "each key at most once per TTL; the registry_api pool bounds concurrent registry tasks.",
)
