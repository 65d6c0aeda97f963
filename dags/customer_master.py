"""customer_master (Airflow DAG): CRM (销售易) ⇄ hub ⇄ U8 customers, every 15 minutes or on demand."""
from datetime import timedelta

from flows.dag import flow_dag

dag = flow_dag(
    "customer_master", "flows.customer_master", schedule=timedelta(minutes=15), produces=["customer"],
    doc="Customer master: CRM accounts and U8 customers into golden records; new and changed ones "
        "written to U8 through its OpenAPI, and the U8 code written back to the CRM account.",
)
