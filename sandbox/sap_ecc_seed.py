"""``sap_ecc.db`` from the U8 world the seed just wrote: the same companies, products and orders
as an SAP ECC system that took over U8's master data would hold them.

- Customers (U8 ``Customer``, by ``cCusCode``) get internal numbers from 0000100001 (KUNNR, 10
  digits), the U8 code as ALTKN (KNB1 "previous master record number", the field migrations keep
  the old number in), the name in NAME1..NAME4 (ADRC, 40 characters each), the address split into
  city / district / street where it names them, and the tax code ``cCusRegCode`` verbatim in STCD5
  with all of U8's mess (18-character USCC, pre-2015 15-digit numbers, empty): SAP keeps China's
  tax number in STCD5 (tax number category CN5; SAP KBA 3524568, "CN5 maps to Tax Number 5
  (STCD5)"; STCD1 is CHAR 16 in the customer-create WSDL, too short for a USCC).  The same tax
  code (its first 20 characters) is in search term 2 (SORT2): the stand-in's assumption that the
  migration followed the convention the hub writes by (Sort2 = USCC), since ECC's customer
  services search search terms, not tax numbers.  Every seeded customer is extended to the one
  sales area the stand-in has (``SALES_AREA``).
- Materials (U8 ``Inventory``): MATNR is ``cInvCode`` through the MATN1 rule (a purely numeric
  number is right-aligned to 18 digits with leading zeros, ``0101001`` → ``000000000000101001``;
  anything else is kept left-aligned in capitals); a code longer than 18 characters cannot be an
  ECC material number and is left out; the U8 code itself is kept as the old material number
  (BISMT), which is how a material numbered ``000000000000101001`` still says it was U8's
  ``0101001`` (the MATN1 output ``101001`` has lost the leading zero).  Products U8 does not sell (``bSale`` 0) or has
  discontinued (``dEDate``) get no sales data, so an order for them is refused as for a material
  "not defined for sales org.".
- Sales orders (U8 ``SO_SOMain``/``SO_SODetails``, empty right after seeding): VBELN from
  0000010001, the U8 order code as the customer's PO number (BSTKD, what PURCH_NO_C fills).

Deterministic: no randomness at all; the same u8.db gives the same file.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from . import sap_ecc_store as store

#: The sales area (sales org, distribution channel, division) of the stand-in's configuration.
SALES_AREA = ("1000", "10", "00")
#: U8 unit name → SAP internal unit of measure (T006).  The stand-in's choice: U8's 桶 has no
#: counterpart here, so its materials get an empty base unit.
UNITS = {"个": "ST", "台": "ST", "套": "ST", "箱": "KAR", "千克": "KG", "米": "M"}
_PROVINCE_ENDS = ("自治区", "省")
_CITY_ENDS = ("自治州", "地区", "市", "盟")
_DISTRICT_ENDS = ("区", "县", "旗", "市")


def _cut(text: str, ends: tuple[str, ...], within: int) -> tuple[str, str]:
    """(head up to the first of ``ends`` found in the first ``within`` characters, rest) or ("", text)."""
    hits = [text.find(e, 1) + len(e) for e in ends if 0 < text.find(e, 1) < within]
    if not hits:
        return "", text
    return text[:min(hits)], text[min(hits):]


def matn1(code: str) -> str:
    """MATN1 input conversion: numeric → 18 digits with leading zeros, else upper case as typed."""
    code = code.strip()
    return code.zfill(18) if code.isdigit() else code.upper()


def split_name(name: str, width: int = 40) -> list[str]:
    """NAME1..NAME4 of ``width`` characters (what does not fit is lost, as in SAP)."""
    return [name[i:i + width] for i in range(0, width * 4, width)]


def split_address(address: str) -> tuple[str, str, str]:
    """(city, district, street) of a Chinese address; the whole text as street when no city is named."""
    _, rest = _cut(address or "", _PROVINCE_ENDS, 8)
    city, rest = _cut(rest, _CITY_ENDS, 10)
    if not city:
        return "", "", (address or "")[:60]
    district, street = _cut(rest, _DISTRICT_ENDS, 9)
    return city, district, street[:60]


def _customers(u8: sqlite3.Connection, conn: sqlite3.Connection) -> dict[str, str]:
    kunnr_of: dict[str, str] = {}
    for code, name, abbr, address, post, reg, phone, created in u8.execute(
            'SELECT cCusCode, cCusName, cCusAbbName, cCusAddress, cCusPostCode, cCusRegCode, cCusPhone, '
            'dCusCreateDatetime FROM Customer ORDER BY cCusCode'):
        kunnr = store.next_number(conn, "DEBITOR")
        city, district, street = split_address(address or "")
        n1, n2, n3, n4 = split_name(name or "")
        store.insert_customer(conn, {
            "kunnr": kunnr, "name1": n1, "name2": n2, "name3": n3, "name4": n4, "city1": city, "district": district,
            "street": street, "post_code1": (post or "")[:10], "country": "CN", "sort1": (abbr or "")[:20],
            "sort2": (reg or "")[:20],
            "tel_number": (phone or "")[:30], "stcd5": reg or "", "ktokd": "0001",
            "adrnr": store.next_number(conn, "ADRNR"), "altkn": code, "erdat": str(created or "")[:10],
            "origin": "u8"}, [SALES_AREA])
        kunnr_of[code] = kunnr
    return kunnr_of


def _materials(u8: sqlite3.Connection, conn: sqlite3.Connection) -> dict[str, str]:
    units = dict(u8.execute("SELECT cComunitCode, cComUnitName FROM ComputationUnit"))
    matnr_of: dict[str, str] = {}
    for code, name, unit, price, sale, end in u8.execute(
            "SELECT cInvCode, cInvName, cComUnitCode, iInvSPrice, bSale, dEDate FROM Inventory ORDER BY cInvCode"):
        matnr = matn1(code or "")
        if not matnr or len(matnr) > 18:
            continue
        conn.execute("INSERT INTO mara VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (matnr, (name or "")[:40], UNITS.get(units.get(unit, ""), ""),
                      str(Decimal(str(price or 0)).quantize(Decimal("0.01"))), "CNY",
                      int(bool(sale) and not end), code))
        matnr_of[code] = matnr
    return matnr_of


def _orders(u8: sqlite3.Connection, conn: sqlite3.Connection, kunnr_of: dict[str, str],
            matnr_of: dict[str, str]) -> None:
    vkorg, vtweg, spart = SALES_AREA
    for so_id, so_code, cus, ddate in u8.execute(
            "SELECT ID, cSOCode, cCusCode, dDate FROM SO_SOMain ORDER BY cSOCode").fetchall():
        if cus not in kunnr_of:
            continue
        vbeln = store.next_number(conn, "RV_BELEG")
        total = Decimal("0")
        for row_no, (inv, qty, price, money) in enumerate(u8.execute(
                "SELECT cInvCode, iQuantity, iUnitPrice, iMoney FROM SO_SODetails WHERE ID = ? ORDER BY AutoID",
                (so_id,)).fetchall(), start=1):
            posnr = f"{row_no * 10:06d}"
            net = Decimal(str(money or 0)).quantize(Decimal("0.01"))
            total += net
            conn.execute("INSERT INTO vbap VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (vbeln, posnr, matnr_of.get(inv, matn1(inv or "")), "", str(qty or 0), "",
                          str(Decimal(str(price or 0)).quantize(Decimal("0.01"))), "1", str(net), ""))
        day = str(ddate or "")[:10]
        conn.execute("INSERT INTO vbak VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (vbeln, "TA", vkorg, vtweg, spart, kunnr_of[cus], kunnr_of[cus], so_code or "", day, day, day,
                      str(total), "CNY", "u8"))


def write(u8_db: Path, path: Path, seed: int) -> None:
    """Recreate ``path`` from ``u8_db`` (``seed`` is accepted for the common signature; nothing here is random)."""
    u8 = sqlite3.connect(f"file:{u8_db}?mode=ro", uri=True)
    conn = store.create(path)
    try:
        kunnr_of = _customers(u8, conn)
        _orders(u8, conn, kunnr_of, _materials(u8, conn))
        conn.commit()
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
        u8.close()
