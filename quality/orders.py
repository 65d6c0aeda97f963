"""Order and shipment facts the GX suites check, computed per order from its lines.

GX checks one row at a time, an order is a header with lines: the line-by-line money check
(each line's amount = quantity × price − discount, rounded half-up to the fen) and the
header check (the order total = the sum of its lines) are computed here exactly, with
Decimal, as boolean columns of the order row; the suite (``quality/suites/sales_order.yaml``)
then rejects the orders whose columns are false, with the reason a salesperson can act on.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

import pandas as pd

from hub import money

#: VAT rates in force (增值税: 13 %, 9 %, 6 %; 3 % / 1 % / 0 % small-scale and exempt; 5 % simplified).
VAT_RATES = {Decimal(r) for r in ("0", "1", "3", "5", "6", "9", "13")}


def _line_ok(q, p, d, a) -> bool:
    try:
        return money.fen(money.dec(q) * money.dec(p) - (money.dec(d) or Decimal(0))) == money.dec(a)
    except (InvalidOperation, TypeError):
        return False


def order_facts(headers: pd.DataFrame, lines: pd.DataFrame, key: str = "_key", line_order: str = "order_key") -> pd.DataFrame:
    """``headers`` plus line_count, line_amounts_ok, total_matches_lines, quantities_positive,
    prices_non_negative, tax_rates_valid and lines_total (exact decimal text)."""
    out = headers.copy()
    if lines.empty:
        out["line_count"] = 0
        for col in ("line_amounts_ok", "quantities_positive", "prices_non_negative", "tax_rates_valid"):
            out[col] = True
        out["lines_total"] = "0"
        out["total_matches_lines"] = out["total"].map(lambda t: money.dec(t) == 0)
        return out
    ln = lines.assign(
        _ok=[_line_ok(q, p, d, a) for q, p, d, a in zip(lines["quantity"], lines["unit_price"],
                                                        lines["discount"], lines["amount"])],
        _qty_ok=lines["quantity"].map(lambda v: (money.dec(v) or 0) > 0),
        _price_ok=lines["unit_price"].map(lambda v: (money.dec(v) or 0) >= 0),
        _rate_ok=lines["tax_rate"].map(lambda v: money.dec(v) in VAT_RATES),
        _fen=lines["amount"].map(lambda v: money.to_fen_int(money.dec(v) or Decimal(0))),
    )
    agg = ln.groupby(line_order).agg(line_count=("_ok", "size"), line_amounts_ok=("_ok", "all"),
                                     quantities_positive=("_qty_ok", "all"), prices_non_negative=("_price_ok", "all"),
                                     tax_rates_valid=("_rate_ok", "all"), lines_fen=("_fen", "sum"))
    out = out.merge(agg, left_on=key, right_index=True, how="left")
    out["line_count"] = out["line_count"].fillna(0).astype(int)
    for col in ("line_amounts_ok", "quantities_positive", "prices_non_negative", "tax_rates_valid"):
        out[col] = out[col].astype(object).where(out[col].notna(), True).astype(bool)
    fen_total = out["lines_fen"].fillna(0).astype("int64")
    out["lines_total"] = fen_total.map(lambda f: money.text(Decimal(int(f)) / 100))
    out["total_matches_lines"] = [money.to_fen_int(money.dec(t) or Decimal(0)) == int(f)
                                  for t, f in zip(out["total"], fen_total)]
    return out.drop(columns=["lines_fen"])


def shipment_facts(headers: pd.DataFrame, lines: pd.DataFrame, key: str = "_key",
                   line_parent: str = "shipment_key") -> pd.DataFrame:
    """``headers`` plus line_count and quantities_nonzero (a return's quantities are negative)."""
    out = headers.copy()
    if lines.empty:
        return out.assign(line_count=0, quantities_nonzero=True)
    agg = lines.assign(_nz=lines["quantity"].map(lambda v: (money.dec(v) or 0) != 0)).groupby(line_parent).agg(
        line_count=("_nz", "size"), quantities_nonzero=("_nz", "all"))
    out = out.merge(agg, left_on=key, right_index=True, how="left")
    out["line_count"] = out["line_count"].fillna(0).astype(int)
    out["quantities_nonzero"] = out["quantities_nonzero"].astype(object).where(out["quantities_nonzero"].notna(), True).astype(bool)
    return out
