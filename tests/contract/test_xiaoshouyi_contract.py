"""销售易 contract: what the connector relies on, each test naming the documented behaviour.

Runs against the ``crm_xiaoshouyi`` connection (a real tenant when configured, else the
sandbox). Extra keys for the kit: ``contract_stream`` (object to page, default ``account``),
``contract_writes`` (true on a test tenant), ``contract_create`` (the object, natural key and
fields of the record the write check creates and deletes; default a ``product`` with
``productCode__c``).
"""
from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from connectors.xiaoshouyi import XiaoshouyiConnector
from hub.errors import ConfigurationError, DataError, HubError
from tests.contract.conftest import needs_writes

CONNECTIONS = ("crm_xiaoshouyi",)
CRM = "crm_xiaoshouyi"


def _connector(target, **kw) -> XiaoshouyiConnector:
    conn = target.conns[CRM]
    stream = conn.extra.get("contract_stream", "account")
    return XiaoshouyiConnector(conn, streams={stream: ()}, **kw)


def _stream(target) -> str:
    return target.conns[CRM].extra.get("contract_stream", "account")


def _read_all(connector, stream, cursor=None) -> tuple[list[dict], object]:
    records, last = [], None
    for page in connector.read(stream, cursor):
        assert not page.bad, f"the API sent pages that are not JSON: {page.bad[:1]}"
        records += page.records
        last = page.cursor if page.cursor is not None else last
    return records, last


def test_auth_password_grant_issues_a_token_that_queries_run_with(target):
    """OAuth2 password grant at /auc/oauth2/token (password + security token), then XOQL."""
    _connector(target).check()


def test_auth_a_wrong_client_secret_is_a_configuration_error_naming_the_connection(target):
    """A refused grant is a configuration error (no retry storm), without the secret in it."""
    conn = target.conns[CRM]
    bad = replace(conn, extra={**conn.extra, "client_secret": "not-the-secret-" + uuid.uuid4().hex[:6]})
    with pytest.raises(ConfigurationError) as exc:
        XiaoshouyiConnector(bad, streams={"account": ()}).check()
    assert CRM in str(exc.value) and conn.password not in str(exc.value)


def test_paging_reaches_the_end_with_every_record_once(target):
    """XOQL paging (limit/offset or keyset, xoqlScroll for large reads) ends, and no id twice."""
    records, cursor = _read_all(_connector(target), _stream(target))
    ids = [r["id"] for r in records]
    assert ids and len(ids) == len(set(map(str, ids)))
    assert cursor is not None and "updatedAt" in cursor


def test_an_incremental_read_from_a_watermark_misses_nothing_changed_since(target):
    """updatedAt (epoch ms) ≥ watermark − overlap: every record changed at or after the
    watermark comes back, whatever order the service sorts in."""
    connector = _connector(target)
    records, _ = _read_all(connector, _stream(target))
    stamps = sorted(int(r["updatedAt"]) for r in records if str(r.get("updatedAt", "")).isdigit())
    mark = stamps[len(stamps) // 2]
    since, _ = _read_all(connector, _stream(target), {"updatedAt": mark})
    got = {str(r["id"]) for r in since}
    want = {str(r["id"]) for r in records if str(r.get("updatedAt", "")).isdigit() and int(r["updatedAt"]) >= mark}
    assert want <= got
    assert len(got) < len(records) or len(set(stamps)) == 1   # a window, not a full re-read


def test_the_error_envelope_of_a_bad_query_is_a_clear_hub_error(target):
    """{"code": "<not 200>", "msg": …} on an unknown object: a hub error with the API's code."""
    with pytest.raises(HubError) as exc:
        _read_all(_connector(target), f"noSuchObject{uuid.uuid4().hex[:6]}__c")
    assert "code" in str(exc.value)


def test_a_create_repeated_by_natural_key_is_one_record_and_is_cleaned_up(target):
    """xobjects create has no idempotency key: a second write of the same natural key finds the
    first record and patches it; the census counts one. The record is deleted afterwards."""
    needs_writes(target, CRM)
    spec = target.conns[CRM].extra.get("contract_create") or {
        "stream": "product", "key": "productCode__c", "data": {"productName": "hub contract check"}}
    stream, key = spec["stream"], spec["key"]
    connector = _connector(target, natural_keys={stream: key})
    record = {**spec["data"], key: f"HUB-CONTRACT-{uuid.uuid4().hex[:10]}", "_key": "contract"}
    first = connector.write(stream, [record])[0]
    try:
        assert first.status == "created" and first.native_key, first
        second = connector.write(stream, [record])[0]
        assert (second.status, second.native_key) == ("updated", first.native_key)
        assert connector.census(stream, [record]) == {record[key]: 1}
    finally:
        if first.native_key:
            connector.delete(stream, first.native_key)
    assert connector.census(stream, [record]) == {record[key]: 0}
    with pytest.raises(DataError):
        connector.delete(stream, first.native_key)          # gone: the API says so, in its envelope
