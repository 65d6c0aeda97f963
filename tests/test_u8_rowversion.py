"""U8 tables whose rowversion column no public schema shows: the reader checks each table's
columns and, where ``ufts`` is missing, reads by the documented date instead of failing or
missing changes. Real ODBC (SQLite3 driver) over a seeded sandbox U8 database."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from connectors.u8 import U8Reader
from hub.errors import ConfigurationError
from hub.types import ConnectionInfo


@pytest.fixture(scope="module")
def u8_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("u8")
    subprocess.run([sys.executable, "-m", "sandbox", "seed", "--dir", str(folder), "--accounts", "40"], check=True,
                   capture_output=True)
    return folder / "u8.db"


def _drop_rowversion(db, table: str, column: str) -> None:
    con = sqlite3.connect(db)
    with con:
        for kind, name in con.execute("select type, name from sqlite_master where type in ('trigger', 'index') "
                                      "and tbl_name = ? and sql is not null", (table,)).fetchall():
            con.execute(f'drop {kind} "{name}"')
        con.execute(f'alter table "{table}" drop column "{column}"')
    con.close()


def _reader(db) -> U8Reader:
    return U8Reader(ConnectionInfo("u8_odbc", extra={"odbc": f"DRIVER={{SQLite3}};Database={db};", "reread_days": 30}))


def _read(reader, stream, cursor=None):
    records, last = [], None
    for page in reader.read(stream, ["iID", "cVouchID", "dVouchDate", "iAmount"], cursor):
        records += page.records
        last = page.cursor if page.cursor is not None else last
    return records, last


def test_receipts_are_read_by_date_when_ap_closebill_has_no_ufts(u8_db, tmp_path, caplog):
    db = tmp_path / "u8.db"
    db.write_bytes(u8_db.read_bytes())
    con = sqlite3.connect(db)
    expected = con.execute("select count(*), max(dVouchDate) from Ap_CloseBill where cFlag = 'AR' and cVouchType = '48'"
                           ).fetchone()
    con.close()
    _drop_rowversion(db, "Ap_CloseBill", "ufts")
    reader = _reader(db)
    reader.check()                                       # a missing ufts with a fallback is not a failure …
    assert "Ap_CloseBill has no ufts column: reading by dVouchDate" in caplog.text   # … but it is said
    first, cursor = _read(reader, "ArReceipt")
    assert len(first) == expected[0] and cursor == {"date": expected[1][:10]}
    # a 收款单 entered (or re-dated) inside the window is seen by the next read; older ones are not re-read
    con = sqlite3.connect(db)
    with con:
        iid = con.execute("select max(iID) from Ap_CloseBill").fetchone()[0] + 1
        con.execute("insert into Ap_CloseBill (iID, cVouchType, cVouchID, dVouchDate, cDwCode, cFlag, iAmount) "
                    "values (?, '48', 'SK-NEW', ?, 'C000001', 'AR', 100.5)", (iid, expected[1]))
    con.close()
    again, cursor2 = _read(reader, "ArReceipt", cursor)
    keys = {r["iID"] for r in again}
    assert iid in keys and len(again) < len(first) + 1   # bounded: the window, not the whole table
    assert cursor2 == cursor


def test_a_missing_rowversion_without_a_fallback_is_a_clear_configuration_error(u8_db, tmp_path):
    db = tmp_path / "u8.db"
    db.write_bytes(u8_db.read_bytes())
    _drop_rowversion(db, "DispatchList", "ufts")
    reader = _reader(db)
    with pytest.raises(ConfigurationError, match="DispatchList has no ufts column"):
        reader.check()
    with pytest.raises(ConfigurationError, match="DispatchList has no ufts column"):
        list(reader.read("DispatchList", ["DLID"]))


def test_tables_with_their_rowversion_are_paged_by_it(u8_db):
    reader = _reader(u8_db)
    reader.check()
    records, cursor = _read(reader, "ArReceipt")
    assert records and set(cursor) == {"rowversion"}


def test_invoice_lines_without_ufts_are_read_through_their_invoice_date(u8_db, tmp_path):
    db = tmp_path / "u8.db"
    db.write_bytes(u8_db.read_bytes())
    _drop_rowversion(db, "SaleBillVouchs", "ufts")
    con = sqlite3.connect(db)
    total = con.execute("select count(*) from SaleBillVouchs").fetchone()[0]
    newest = con.execute("select max(dDate) from SaleBillVouch").fetchone()[0]
    recent = con.execute("select count(*) from SaleBillVouchs l join SaleBillVouch h on h.SBVID = l.SBVID "
                         "where h.dDate >= date(?, '-30 days')", (newest[:10],)).fetchone()[0]
    con.close()
    reader = _reader(db)
    lines, cursor = [], None
    for page in reader.read("SaleBillVouchs", ["SBVID", "iSum"]):
        lines += page.records
        cursor = page.cursor or cursor
    assert len(lines) == total and cursor == {"date": newest[:10]}
    again = [r for page in reader.read("SaleBillVouchs", ["SBVID", "iSum"], cursor) for r in page.records]
    assert len(again) == recent < total
