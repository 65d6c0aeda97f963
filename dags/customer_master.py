"""customer_master (Airflow DAG): what it does, its sources and targets by role, schedule and assets are
data in flows/specs/customer_master.yaml; the bound systems come from the bindings (deploy/bindings*.yaml)."""
from flows.dag import spec_dag

dag = spec_dag("customer_master")
