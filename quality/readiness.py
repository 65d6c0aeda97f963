"""Is a customer ready for its first order? (华测: legal data, 开票档案 and a reachable contact
complete and correct before an order reaches the ERP.)

The golden customer and its contacts are checked by the ``customer_readiness`` GX suite; what a
salesperson must still fill in comes back as the suites' reasons, per customer. Set-based: one
query per table per chunk of customers, one GX run over the frame.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from hub import model
from hub.store import select_in
from quality import gate

SUITE = "customer_readiness"
#: A contact is reachable by a mobile (optionally +86) or a landline with its area code.
MOBILE = r"(?:\+?86)?1[3-9][0-9]{9}"
LANDLINE = r"0[1-9][0-9]{1,2}-?[0-9]{7,8}(?:-[0-9]{1,6})?|400-?[0-9]{3}-?[0-9]{4}"


def _reachable(contacts: pd.DataFrame) -> pd.Series:
    """Customer hub id → has at least one contact with a valid mobile or landline."""
    if contacts.empty:
        return pd.Series(dtype=bool)
    def fits(column: str, pattern: str) -> pd.Series:
        text = contacts[column].astype("string").str.replace(r"[\s()（）]", "", regex=True)
        return text.str.fullmatch(pattern).fillna(False).astype(bool)
    ok = fits("mobile", MOBILE) | fits("mobile", LANDLINE) | fits("phone", LANDLINE) | fits("phone", MOBILE)
    return ok.groupby(contacts["customer_hub_id"]).any()


def missing_for_orders(conn, hub_ids: Sequence[str]) -> dict[str, list[str]]:
    """Hub id → what keeps that golden customer from taking orders (empty: none is missing).
    A hub id without a golden record is not judged here (the order waits for its customer anyway)."""
    ids = sorted({str(h) for h in hub_ids if h is not None})
    if not ids:
        return {}
    customers = select_in(conn, model.customer, "hub_id", ids,
                          columns=["hub_id", "name", "uscc", "invoice_title", "tax_number", "invoice_address",
                                   "invoice_phone", "invoice_bank", "invoice_bank_account"])
    if customers.empty:
        return {}
    contacts = select_in(conn, model.contact, "customer_hub_id", customers["hub_id"].tolist(),
                         columns=["customer_hub_id", "mobile", "phone"])
    frame = customers.astype(object).where(customers.notna(), None)
    for column in frame.columns.drop("hub_id"):  # a blank the CRM kept is as missing as a null
        blank = frame[column].map(lambda v: isinstance(v, str) and not v.strip())
        frame.loc[blank, column] = None
    frame["reachable_contact"] = frame["hub_id"].map(_reachable(contacts)).fillna(False).astype(bool)
    frame[gate.ROW_KEY] = range(len(frame))
    result = gate.validate(SUITE, frame)
    by_row = frame.set_index(gate.ROW_KEY)["hub_id"]
    out: dict[str, list[str]] = {}
    for row, reason in zip(result.failures[gate.ROW_KEY], result.failures["reason"]):
        out.setdefault(by_row[row], []).append(reason)
    return out
