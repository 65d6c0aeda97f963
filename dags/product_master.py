"""product_master (Airflow DAG): U8 products → hub → CRM (销售易) products, every 30 minutes or on demand."""
from datetime import timedelta

from flows.dag import flow_dag

dag = flow_dag(
    "product_master", "flows.product_master", schedule=timedelta(minutes=30), produces=["product"],
    doc="Product master: U8 Inventory (sales items) into canonical products, created or updated in the CRM "
        "(never twice: linked by the U8 code in productCode__c); units and classes through value maps.",
)
