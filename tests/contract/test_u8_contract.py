"""用友 U8 contract: the database the hub reads by ODBC and the OpenAPI it writes through,
each test naming the documented behaviour. Runs against ``u8_odbc`` and ``u8_openapi`` (a real
account when configured, else the sandbox). Write checks need ``"contract_writes": true`` in
``u8_openapi``'s extra; U8's OpenAPI documents no customer delete, so the write check uses one
fixed ``biz_id``: every contract run finds the same test customer instead of adding one.
"""
from __future__ import annotations

import uuid

import pytest

from connectors.u8 import TABLES, U8Connector, U8Reader, dialect_of
from hub.errors import DataError
from tests.contract.conftest import needs_writes

CONNECTIONS = ("u8_odbc", "u8_openapi")
CONTRACT_BIZ_ID = "hub-contract-customer-1"


def _reader(target, page_size: int = 5000) -> U8Reader:
    return U8Reader(target.conns["u8_odbc"], page_size=page_size)


def _count(reader: U8Reader, table: str) -> int:
    cnx = reader._connect()
    try:
        return int(cnx.cursor().execute(f"SELECT COUNT(*) FROM {dialect_of(reader.connection_string()).quote(table)}")
                   .fetchone()[0])
    finally:
        cnx.close()


def test_auth_the_openapi_issues_a_token(target):
    """GET /system/token?from_account&app_key&app_secret → {"errcode":"0","token":{"id",…}}."""
    U8Connector(target.conns["u8_odbc"], target.conns["u8_openapi"]).check()


def test_the_openapi_issues_a_tradeid_for_the_asynchronous_pattern(target):
    """GET /system/tradeid?from_account&app_key&token → {"errcode":"0","trade":{"id"}}: the id an add
    or a voucher action is posted with (protocol notes U1, U4)."""
    api = U8Connector(target.conns["u8_odbc"], target.conns["u8_openapi"]).api
    assert api.tradeid().strip()


def test_every_table_read_has_its_key_and_rowversion_or_a_documented_fallback(target):
    """The tables and columns of ../shared/reference/u8 (ufts / pubufts where U8 has them):
    a column the account lacks is a configuration error naming it, never a silent miss."""
    reader = _reader(target)
    reader.check()
    for table, (key, _) in TABLES.items():
        assert key.lower() in reader.columns_of(table), f"{table} has no {key}"


def test_paging_by_rowversion_reaches_the_end_with_every_row_once(target):
    """Keyset paging on the rowversion (bounded by MIN_ACTIVE_ROWVERSION() on SQL Server)."""
    reader = _reader(target, page_size=7)
    rows, pages = [], 0
    for page in reader.read("Customer", ["cCusCode", "cCusName"]):
        rows += page.records
        pages += 1
    keys = [r["cCusCode"] for r in rows]
    assert pages > 1 and len(keys) == len(set(keys)) == _count(reader, "Customer")


def test_an_incremental_read_returns_exactly_the_rows_after_the_watermark(target):
    """rowversion > watermark, strictly: nothing at or below it comes back, nothing above is missed."""
    reader = _reader(target)
    rows = [r for page in reader.read("Customer", ["cCusCode"]) for r in page.records]
    versions = sorted(r["rowversion"] for r in rows)
    mark = versions[len(versions) // 2]
    after = [r for page in reader.read("Customer", ["cCusCode"], {"rowversion": mark}) for r in page.records]
    assert {r["cCusCode"] for r in after} == {r["cCusCode"] for r in rows if r["rowversion"] > mark}


def test_the_error_envelope_of_an_unknown_customer_is_a_data_error_with_its_errcode(target):
    """{"errcode": "<not 0>", "errmsg": …}: a data error carrying U8's code and message."""
    api = U8Connector(target.conns["u8_odbc"], target.conns["u8_openapi"]).api
    with pytest.raises(DataError) as exc:
        api.call("GET", "customer/get", id=f"NOSUCH{uuid.uuid4().hex[:8]}")
    assert "errcode" in str(exc.value)


def test_an_add_repeated_with_its_biz_id_answers_the_same_customer(target):
    """biz_id ↔ ERP key one to one ("上游id, biz_id 与 ERP 主键唯一对应"): a repeated add, as after a
    lost answer, returns the customer it made, never a second one."""
    needs_writes(target, "u8_openapi")
    connector = U8Connector(target.conns["u8_odbc"], target.conns["u8_openapi"])
    record = {"_key": "contract", "_biz_id": CONTRACT_BIZ_ID, "name": "HUB CONTRACT CHECK (do not use)"}
    first = connector.write("customer", [record])[0]
    second = connector.write("customer", [dict(record)])[0]
    assert first.status == second.status == "created" and first.native_key not in (None, "", "None")
    assert second.native_key == first.native_key
    found = connector.lookup("Customer", "cCusCode", [first.native_key])
    assert len(found) == 1
