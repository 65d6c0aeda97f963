"""shipments (Airflow DAG): U8 dispatch lists → CRM shipments and order delivery state, after orders or every 15 minutes."""
from datetime import timedelta

from flows.dag import flow_dag

dag = flow_dag(
    "shipments", "flows.shipments", schedule=timedelta(minutes=15), consumes=["sales_order"], produces=["shipment"],
    doc="Shipments: U8 DispatchList / DispatchLists of the hub's orders to the CRM (shipment__c with carrier, "
        "tracking number, serial numbers; shipped quantities and partial / complete status on the order).",
)
