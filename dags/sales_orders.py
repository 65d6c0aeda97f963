"""sales_orders (Airflow DAG): CRM orders → U8 sales orders, after customers and products or every 15 minutes."""
from datetime import timedelta

from flows.dag import flow_dag

dag = flow_dag(
    "sales_orders", "flows.sales_orders", schedule=timedelta(minutes=15), consumes=["customer", "product"],
    produces=["sales_order"],
    doc="Sales orders: activated CRM orders to U8 (saleorder/add with biz_id), the U8 order number back to the CRM. "
        "An order whose customer or product is not in U8 yet waits with the reason and goes when they arrive.",
)
