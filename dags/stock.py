"""stock (Airflow DAG): what it does, its sources and targets by role, schedule and assets are data in
flows/specs/stock.yaml; the bound systems come from the bindings (deploy/bindings*.yaml)."""
from flows.dag import spec_dag

dag = spec_dag("stock")
