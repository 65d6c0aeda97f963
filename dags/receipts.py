"""receipts (Airflow DAG): bank statements and U8 收款单 reconciled against invoices, orders and payment plans, hourly.

Offered only where the bound ERP supports receipts (its card in connectors.SYSTEMS: U8 does; SAP's
receivables come with the finance issue, so under deploy/bindings.sap.yaml there is no receipts DAG)."""
from datetime import timedelta

from flows import roles
from flows.dag import flow_dag

if roles.offers("erp", "receipts"):
    dag = flow_dag(
        "receipts", "flows.receipts", schedule=timedelta(hours=1), produces=["receipt"],
        doc="Receipts for finance: new bank statement files (each content once) and U8 收款单 matched to U8 invoices, "
            "orders and 销售易 payment plans by memo references, payer and amount, unique combinations; certain "
            "matches posted (U8 收款单 with the write-off link, 销售易 回款 records and plan status), the rest in the "
            "finance exception queue (python -m quality.reconcile exceptions); a workbook per run in var/reports.",
    )
