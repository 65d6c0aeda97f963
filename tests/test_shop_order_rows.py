"""How one normalised shop order becomes the hub's header and line rows: refunds before shipment,
postage with and without the ERP's 运费 item, and "paid = Σ lines + postage" exactly to the fen."""
from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from flows.shop_orders import _lines_and_head

SHOP = SimpleNamespace(erp_customer="0100001")


def _order(**over):
    order = {"tid": "3000000000000000001", "state": "paid", "status": "WAIT_SELLER_SEND_GOODS",
             "created": "2026-12-01T10:00:00+08:00", "modified": "2026-12-01T10:05:00+08:00",
             "payment": "208.90", "post_fee": "10.00", "buyer_memo": "尽快发货🙏", "consignee": {"name": "张*"},
             "lines": [{"oid": "1", "outer_sku": "0101001", "quantity": "2", "price": "59.90", "discount": "5.00",
                        "payment": "114.80", "refund_status": "none", "refunded_quantity": "0"},
                       {"oid": "2", "outer_sku": "0102001", "quantity": "3", "price": "30.00", "discount": "5.90",
                        "payment": "84.10", "refund_status": "none", "refunded_quantity": "0"}]}
    order.update(over)
    return order


def _sum(rows, key="payment"):
    return sum((Decimal(r[key]) for r in rows), Decimal(0))


def test_the_goods_total_is_paid_less_postage_and_the_lines_add_up_to_it():
    head, rows = _lines_and_head("tmall", SHOP, _order(), {"0101001": "13"}, "13")
    assert Decimal(head["goods_total"]) == Decimal("198.90") == _sum(rows)
    assert [r["tax_rate"] for r in rows] == ["13", "13"] and head["erp_customer"] == "0100001"
    for r in rows:  # each line: quantity × price − discount = amount, exactly
        assert Decimal(r["quantity"]) * Decimal(r["price"]) - Decimal(r["discount"]) == Decimal(r["payment"])
    assert "尽快发货🙏" in head["memo"]


def test_a_refund_before_shipment_leaves_a_line_out_or_reduces_it_to_the_fen():
    lines = _order()["lines"]
    lines[0] |= {"refund_status": "refunded", "refunded_quantity": "2"}
    lines[1] |= {"refund_status": "refunded", "refunded_quantity": "1"}
    head, rows = _lines_and_head("tmall", SHOP, _order(lines=lines), {}, "13")
    assert [r["line_key"] for r in rows] == ["3000000000000000001:2"]
    assert rows[0]["quantity"] == "2" and Decimal(rows[0]["payment"]) == Decimal("56.07")  # 84.10 × 2/3, half up
    assert Decimal(rows[0]["quantity"]) * Decimal(rows[0]["price"]) - Decimal(rows[0]["discount"]) == Decimal("56.07")
    assert Decimal(head["goods_total"]) == Decimal("56.07")


def test_with_the_erps_freight_item_the_postage_is_a_line_and_in_the_total():
    head, rows = _lines_and_head("tmall", SHOP, _order(), {"YF01": "9"}, "13", postage_sku="YF01")
    assert rows[-1]["outer_sku"] == "YF01" and Decimal(rows[-1]["payment"]) == 10 and rows[-1]["tax_rate"] == "9"
    assert Decimal(head["goods_total"]) == Decimal("208.90") == _sum(rows)
