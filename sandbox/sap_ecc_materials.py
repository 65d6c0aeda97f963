"""Materials: the list (BAPI_MATERIAL_GETLIST) and one material's general data (BAPI_MATERIAL_GET_DETAIL).

- GETLIST selects by MATNRSELECTION (MATNR_LOW / MATNR_HIGH) and MATERIALSHORTDESCSEL (DESCR_LOW /
  DESCR_HIGH) as ABAP selection tables do: a value is selected when an include row (SIGN I) holds
  for it, or no include row is given, and no exclude row (SIGN E) holds; options EQ NE GT GE LT LE
  BT NB CP NP, CP / NP with ``*`` (any run) and ``+`` (one character).  Every given table must
  select a material; with none given every material is listed (the stand-in's choice: what the
  BAPI does then is unverified).  MAXROWS > 0 cuts the list after that many rows, in material
  number order (the order a real system cuts in is unverified).  Material numbers are compared in
  internal form (MATN1: ``000000000000101001``), as the BAPI compares them when no conversion runs.
  An unknown SIGN or OPTION is a RETURN row of type E (text ours).
- GET_DETAIL reads one material exactly as sent (internal form): MATL_TYPE (HAWA, trading goods,
  for every material: the stand-in's), IND_SECTOR (M: the stand-in's), OLD_MAT_NO (BISMT: the U8
  code the material came from), BASE_UOM (internal unit, e.g. ST; empty where U8's unit has no SAP
  counterpart), MATL_DESC.  An unknown number is RETURN TYPE E (BAPIRETURN; text ours, CODE empty).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from .sap_ecc_messages import external, ret2
from .sap_ecc_store import EccStore
from .sap_ecc_xsd import rows

MATL_TYPE, IND_SECTOR = "HAWA", "M"
OPTIONS = ("EQ", "NE", "GT", "GE", "LT", "LE", "BT", "NB", "CP", "NP")


def _pattern(value: str) -> re.Pattern[str]:
    """An ABAP CP pattern (``*`` any run, ``+`` one character) as a regular expression."""
    return re.compile("".join(".*" if c == "*" else "." if c == "+" else re.escape(c) for c in value) + r"\Z", re.S)


def _holds(option: str, low: str, high: str, value: str) -> bool:
    if option in ("CP", "NP"):
        hit = bool(_pattern(low).match(value))
        return hit if option == "CP" else not hit
    if option in ("BT", "NB"):
        inside = low <= value <= high
        return inside if option == "BT" else not inside
    return {"EQ": value == low, "NE": value != low, "GT": value > low, "GE": value >= low,
            "LT": value < low, "LE": value <= low}[option]


def _selector(table: list[dict[str, Any]], low: str, high: str) -> Callable[[str], bool] | str:
    """A test for one selection table, or the reason it is invalid."""
    for r in table:
        if r.get("SIGN") not in ("I", "E") or r.get("OPTION") not in OPTIONS:
            return f"Selection row SIGN {r.get('SIGN')!r} OPTION {r.get('OPTION')!r} is not valid"
    inc = [(r["OPTION"], r.get(low) or "", r.get(high) or "") for r in table if r["SIGN"] == "I"]
    exc = [(r["OPTION"], r.get(low) or "", r.get(high) or "") for r in table if r["SIGN"] == "E"]

    def test(value: str) -> bool:
        return ((not inc or any(_holds(o, lo, hi, value) for o, lo, hi in inc))
                and not any(_holds(o, lo, hi, value) for o, lo, hi in exc))
    return test


def getlist(st: EccStore, req: dict[str, Any]) -> dict[str, Any]:
    by_number, by_text = rows(req.get("MATNRSELECTION")), rows(req.get("MATERIALSHORTDESCSEL"))
    echo = {"MATERIALSHORTDESCSEL": by_text, "MATNRSELECTION": by_number}
    tests = [(_selector(by_number, "MATNR_LOW", "MATNR_HIGH"), "matnr"),
             (_selector(by_text, "DESCR_LOW", "DESCR_HIGH"), "maktx")]
    bad = next((t for t, _ in tests if isinstance(t, str)), None)
    if bad:
        return {**echo, "MATNRLIST": [], "RETURN": [ret2("E", bad, parameter="MATNRSELECTION")]}
    maxrows = int(str(req.get("MAXROWS") or "0").strip() or 0)
    found = []
    for r in st.query("SELECT matnr, maktx FROM mara ORDER BY matnr"):
        if all(t(r[col] or "") for t, col in tests):
            found.append({"MATERIAL": r["matnr"], "MATL_DESC": r["maktx"] or "", "MATERIAL_EXTERNAL": "",
                          "MATERIAL_GUID": "", "MATERIAL_VERSION": "", "MATERIAL_LONG": ""})
            if 0 < maxrows <= len(found):
                break
    return {**echo, "MATNRLIST": found, "RETURN": []}


def get_detail(st: EccStore, req: dict[str, Any]) -> dict[str, Any]:
    number = req.get("MATERIAL", "")
    mat = st.material(number)
    if mat is None:
        row = ret2("E", f"Material {external(number)} does not exist", v=(external(number),))
        return {"MATERIAL_GENERAL_DATA": {}, "RETURN": {
            "TYPE": "E", "CODE": "", **{k: row[k] for k in ("MESSAGE", "LOG_NO", "LOG_MSG_NO", "MESSAGE_V1",
                                                            "MESSAGE_V2", "MESSAGE_V3", "MESSAGE_V4")}}}
    return {"MATERIAL_GENERAL_DATA": {"MATL_TYPE": MATL_TYPE, "IND_SECTOR": IND_SECTOR,
                                      "OLD_MAT_NO": (mat["u8_code"] or "")[:18], "BASE_UOM": mat["meins"] or "",
                                      "MATL_DESC": mat["maktx"] or ""},
            "RETURN": {}}

