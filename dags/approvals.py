"""approvals (Airflow DAG): what it does, its sources and targets by role, schedule and assets are data in
flows/specs/approvals.yaml; offered only where an ``oa`` seat that takes part in approvals is bound."""
from flows.dag import spec_dag

dag = spec_dag("approvals")
