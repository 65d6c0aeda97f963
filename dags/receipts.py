"""receipts (Airflow DAG): what it does, its sources and targets by role, schedule and assets are
data in flows/specs/receipts.yaml; the bound systems come from the bindings (deploy/bindings*.yaml)."""
from flows.dag import spec_dag

dag = spec_dag("receipts")  # None (no DAG) where the bound ERP takes no part in receipts
