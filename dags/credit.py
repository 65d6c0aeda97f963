"""credit (Airflow DAG): what it does, its sources and targets by role, schedule and assets are data in
flows/specs/credit.yaml; offered only where the bound ERP has a credit lookup."""
from flows.dag import spec_dag

dag = spec_dag("credit")
