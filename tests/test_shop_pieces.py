"""Pure pieces of the shop connectors (until the stand-ins land): money exact, windows split,
backwards page order, status mapping, TOP/PDD normalisation of documented shapes, carrier codes."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.shops import carriers, money, pdd, taobao
from connectors.shops.platform import SHANGHAI, page_numbers, split
from hub.errors import ConfigurationError, DataError

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "shops"


def test_money_is_exact():
    assert money.fen_to_yuan(1230) == "12.30" and money.yuan_to_fen("12.3") == 1230
    assert money.yuan_to_fen(Decimal("0.1") + Decimal("0.2")) == 30
    with pytest.raises(DataError):
        money.yuan(0.1)
    with pytest.raises(DataError):
        money.yuan("1.001")


def test_windows_split_and_refuse_naive_times():
    a = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    parts = list(split(a, a + timedelta(minutes=70), timedelta(minutes=30)))
    assert [(s.minute, e - s) for s, e in parts] == [(0, timedelta(minutes=30)), (30, timedelta(minutes=30)),
                                                     (0, timedelta(minutes=10))]
    with pytest.raises(ConfigurationError):
        list(split(datetime(2024, 1, 1), datetime(2024, 1, 2), None))


def test_pages_run_last_to_first():
    assert page_numbers(250, 100) == [3, 2, 1] and page_numbers(0, 100) == [1]


def test_top_trade_from_the_reference_sample():
    body = json.loads((REF / "trade_fullinfo_get_response.mock_template.redacted.json").read_text(),
                      parse_float=Decimal)
    order = taobao.normalise(body["trade_fullinfo_get_response"]["trade"])
    assert order["tid"] == "500001084" and order["state"] == "paid"
    assert order["created"].endswith("+08:00")
    line = order["lines"][0]
    assert line["payment"] == "86.20" and line["discount"] == "13.80" and line["outer_sku"] == "B-C352-F301-356M"
    assert order["consignee"]["encrypted"] is True


def test_top_errors_map_to_classes():
    for sample in json.loads((REF / "top_error_response.examples.real.json").read_text()):
        assert isinstance(taobao._error("x", sample["error_response"]), ConfigurationError)


def test_pdd_state_and_payment_add_up():
    raw = {"order_sn": 231215, "confirm_status": 1, "pay_time": "2024-01-01 10:00:00", "order_status": 1,
           "refund_status": 4, "updated_at": "2024-01-01 10:05:00", "created_time": "2024-01-01 09:59:00",
           "item_list": [{"goods_price": Decimal("10.00"), "goods_count": 3}, {"goods_price": Decimal("5.5"),
                                                                                "goods_count": 1}],
           "discount_amount": Decimal("3.33"), "postage": Decimal("6"), "pay_amount": Decimal("38.17")}
    order = pdd.normalise(raw)
    assert order["tid"] == "231215" and order["state"] == "cancelled"  # refunded before shipment
    paid = sum(Decimal(ln["payment"]) for ln in order["lines"]) + Decimal(order["post_fee"])
    assert f"{paid:.2f}" == order["payment"]
    assert pdd.state({**raw, "confirm_status": 0}) == "unpaid"
    assert pdd.state({**raw, "order_status": 2, "refund_status": 1}) == "shipped"


def test_carrier_codes():
    assert carriers.code("taobao", "顺丰速运") == "SF" and carriers.code("pdd", "顺丰速运") == "44"
    assert carriers.code("jd", "顺丰速运") == "467" and carriers.code("jd", "德邦快递") is None
    assert "carriers.yaml" in carriers.unknown("jd", "德邦快递")
