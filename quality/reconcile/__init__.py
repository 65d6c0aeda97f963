"""Reconciliation (对账): receipts against invoices, orders and payment plans.

``engine.reconcile`` is the tiered matcher; ``queue`` keeps the finance exception queue and
finance's decisions in the hub store; ``workbook`` writes the per-run Excel file; ``csvio``
and ``python -m quality.reconcile`` reconcile two CSV files without the hub.
"""
from quality.reconcile.engine import Result, Settings, reconcile

__all__ = ["Result", "Settings", "reconcile"]
