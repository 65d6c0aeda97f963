"""SAP ECC materials for product_master: BAPI_MATERIAL_GETLIST for the list, BAPI_MATERIAL_GET_DETAIL
for each material's general data (the composed ``zbapi_material.composed.wsdl``).

ECC has no change pointers through these services, so every read is the whole list (cursor
None, no watermark); ``{"keys": [...]}`` re-reads those materials (MATN1 applied). The list is one
call without a limit (MAXROWS 0) unless ``extra.material_page_size`` > 0: then it is paged by
key, ``MATNRSELECTION I GT <last number>`` with MAXROWS rows a page. Which rows MAXROWS keeps is
not documented in what was found, so a page that does not come back in ascending material order
past the last one is a ConfigurationError (paging would skip materials) rather than a silent gap.

Records: ``MATERIAL`` (internal form, the key), ``MATL_DESC`` (the list's short text),
``MATERIAL_GENERAL_DATA.<FIELD>`` (MATL_TYPE, IND_SECTOR, OLD_MAT_NO, BASE_UOM, MATL_DESC of the
detail) and ``MATERIAL_CODE``, computed here, not an SAP field: the code the hub's other systems
know the material by. With ``extra.material_code`` "old_number" (default) it is the old material
number (MARA-BISMT) where one is kept, which is where a migration puts the previous system's code
(U8's ``0101001``, which the number ``000000000000101001`` can no longer tell), else the number's
MATN1 output form (leading zeros dropped); with "number" always the output form.
A detail answered with RETURN E/A is a bad record with SAP's text.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Sequence

from connectors.sap_ecc_keys import error_rows, matn1, matn1_output, messages_text
from connectors.soap import rows
from hub.errors import ConfigurationError
from hub.types import Page, Record

MATERIALS = "Material"
SERVICE = "material"
GETLIST, DETAIL = "BAPI_MATERIAL_GETLIST", "BAPI_MATERIAL_GET_DETAIL"
EVERYTHING = {"SIGN": "I", "OPTION": "CP", "MATNR_LOW": "*"}
CODE_FROM = ("old_number", "number")
#: Materials per Page handed to the flow (each costs one detail call).
CHUNK = 200
Call = Callable[..., dict[str, Any]]


class MaterialReader:
    """Reads the material stream (module docstring)."""

    def __init__(self, call: Call, page_size: int = 0, code_from: str = "old_number") -> None:
        if code_from not in CODE_FROM:
            raise ConfigurationError(f"SAP ECC extra.material_code {code_from!r} is not one of {CODE_FROM}")
        self.call, self.page_size, self.code_from = call, max(0, int(page_size)), code_from

    def read(self, cursor: Any = None) -> Iterator[Page]:
        keys = cursor.get("keys") if isinstance(cursor, Mapping) and "keys" in cursor else None
        chunk: list[dict[str, str]] = []
        pages = 0
        for row in self._listed(keys):
            chunk.append(row)
            if len(chunk) == CHUNK:
                yield self._page(chunk)
                chunk, pages = [], pages + 1
        if chunk or not pages:
            yield self._page(chunk)

    # --- the list -----------------------------------------------------------------------------------
    def _listed(self, keys: Sequence[Any] | None) -> Iterator[dict[str, str]]:
        if keys is not None:
            numbers = list(dict.fromkeys(matn1(k) for k in keys if str(k or "").strip()))
            if numbers:
                yield from self._getlist([{"SIGN": "I", "OPTION": "EQ", "MATNR_LOW": n} for n in numbers], 0)
            return
        if not self.page_size:
            yield from self._getlist([EVERYTHING], 0)
            return
        last = ""
        while True:
            page = self._getlist([{"SIGN": "I", "OPTION": "GT", "MATNR_LOW": last} if last else EVERYTHING],
                                 self.page_size)
            numbers = [r["MATERIAL"] for r in page]
            if numbers != sorted(set(numbers)) or (numbers and numbers[0] <= last):
                raise ConfigurationError(
                    f"SAP ECC {GETLIST} with MAXROWS {self.page_size} did not answer in ascending material order after "
                    f"{last or 'the start'}: paging by key would skip materials; set extra.material_page_size to 0")
            yield from page
            if len(page) < self.page_size:
                return
            last = numbers[-1]

    def _getlist(self, selection: list[dict[str, str]], maxrows: int) -> list[dict[str, str]]:
        answer = self.call(SERVICE, {"MATNRSELECTION": selection, "MAXROWS": maxrows}, operation=GETLIST)
        errors = error_rows(rows(answer.get("RETURN")))
        if errors:
            raise ConfigurationError(f"SAP ECC {GETLIST} refused the selection: {messages_text(errors)}")
        return [{"MATERIAL": str(r.get("MATERIAL") or ""), "MATL_DESC": str(r.get("MATL_DESC") or "")}
                for r in rows(answer.get("MATNRLIST")) if r.get("MATERIAL")]

    # --- the details --------------------------------------------------------------------------------
    def _page(self, listed: list[dict[str, str]]) -> Page:
        records: list[Record] = []
        bad: list[tuple[str, str]] = []
        for row in listed:
            answer = self.call(SERVICE, {"MATERIAL": row["MATERIAL"]}, operation=DETAIL)
            ret = answer.get("RETURN") if isinstance(answer.get("RETURN"), dict) else {}
            if error_rows([ret]):
                bad.append((row["MATERIAL"], f"SAP {DETAIL} {row['MATERIAL']}: "
                                             f"{messages_text([ret], id_key='CODE', number_key='')}"))
                continue
            general = answer.get("MATERIAL_GENERAL_DATA") if isinstance(answer.get("MATERIAL_GENERAL_DATA"), dict) else {}
            rec: Record = {**row, **{f"MATERIAL_GENERAL_DATA.{k}": v for k, v in general.items()
                                     if not isinstance(v, (dict, list))}}
            old = str(general.get("OLD_MAT_NO") or "").strip()
            rec["MATERIAL_CODE"] = old if old and self.code_from == "old_number" else matn1_output(row["MATERIAL"])
            records.append(rec)
        return Page(records, None, bad)
