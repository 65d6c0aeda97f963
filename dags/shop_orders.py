"""shop_orders (Airflow DAG): what it does, its sources and targets by role, schedule and assets are
data in flows/specs/shop_orders.yaml; the bound shops come from the bindings (deploy/bindings*.yaml)."""
from flows.dag import spec_dag

dag = spec_dag("shop_orders")
