"""Sales orders: one create behind two services, the LUW's end, and the list by customer / PO number.

- ``BAPI_SALESORDER_CREATEFROMDAT2`` (composed WSDL ``zbapi_salesorder_createfromdat.wsdl``):
  ORDER_HEADER_IN, ORDER_PARTNERS (AG sold-to required, WE ship-to defaults to AG),
  ORDER_ITEMS_IN, ORDER_SCHEDULES_IN (quantities), ORDER_CONDITIONS_IN (a PR00 condition is the
  item's price, e.g. an approved special price), ORDER_TEXT (texts of the header or an item, any
  text ID), TESTRUN → SALESDOCUMENT + RETURN.  Keys are taken as sent, in internal form:
  PARTN_NUMB with its leading zeros, MATERIAL as MATN1 makes it (the BAPI does not convert them
  unless asked; a number without its zeros is not found).  The BAPI does not commit: the number
  is drawn and RETURN says "has been saved", but the document waits in the caller's session
  (sandbox/sap_ecc_sessions.py) for ``BAPI_TRANSACTION_COMMIT`` of the same service, which saves
  the session's pending documents (WAIT or not: the stand-in's update is synchronous either way;
  with ``commit_fails`` set it answers TYPE E, ID S&, NUMBER 150, the return of a failed update
  under WAIT, and loses them), or ``BAPI_TRANSACTION_ROLLBACK``, which drops them.  With
  ``createfromdat2_commits`` set the create saves at once.
- ``ZBAPI_SALESORDER_CREATE`` (reference WSDL): the Z wrapper's flat interface (CUST_PO →
  PURCH_NO_C, SOLD_TO_PARTY / SHIP_TO_PARTY, IT_SO_ITEM with MATERIAL_NO as the item number) →
  SALES_NO + DETAIL_MESSAGE; it commits itself; it has no price or condition field, so its items
  are priced from the material's list price.
- ``BAPI_SALESORDER_GETLIST`` (composed WSDL): the orders of CUSTOMER_NUMBER in
  SALES_ORGANIZATION, one row per item (BAPIORDERS), narrowed by PURCHASE_ORDER_NUMBER (BSTKD,
  what PURCH_NO_C filled), PURCHASE_ORDER (its first 20 characters), DOCUMENT_DATE(_TO), MATERIAL.

Errors are RETURN rows under HTTP 200 (sandbox/sap_ecc_messages.py says which texts and numbers
are evidenced); a refused or test-run create writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable

from . import sap_ecc_store as store
from .sap_ecc_messages import external, failed, not_changed, ret2
from .sap_ecc_sessions import EccSession, Work
from .sap_ecc_store import EccStore
from .sap_ecc_xsd import rows

#: Sales document types configured in the stand-in (internal keys; "TA" is what English screens show as "OR").
DOC_TYPES = {"TA": "Standard Order"}
PRICE_CONDITIONS = ("PR00",)
CENT = Decimal("0.01")


@dataclass
class Item:
    posnr: str
    matnr: str
    qty: Decimal
    unit: str = ""
    plant: str = ""
    text: str = ""
    req_date: str = ""
    price: Decimal | None = None
    p_unit: Decimal = Decimal(1)


@dataclass
class OrderIn:
    """What either create service asks for, in one shape."""

    auart: str
    vkorg: str
    vtweg: str
    spart: str
    sold_to: str
    ship_to: str
    bstkd: str
    bstdk: str
    audat: str
    waerk: str
    items: list[Item]
    conditions: list[dict[str, Any]] = field(default_factory=list)
    texts: list[dict[str, Any]] = field(default_factory=list)


def _dec(text: Any, default: str = "0") -> Decimal:
    try:
        return Decimal(str(text).strip() or default)
    except InvalidOperation:
        return Decimal(default)


def _date(text: str) -> str:
    return "" if not text or text.startswith("0000") else text


def create_order(st: EccStore, order: OrderIn, *, testrun: bool,
                 save: Callable[[Work], None] | None) -> tuple[str, list[dict[str, Any]]]:
    """Check ``order``, draw its number and hand the insert to ``save`` (run it now, or keep it for
    the commit; None: lost): (SALESDOCUMENT, RETURN rows).  A test run or a refusal saves nothing."""
    msgs: list[dict[str, Any]] = []
    area = (order.vkorg, order.vtweg, order.spart)
    if order.auart not in DOC_TYPES:
        msgs.append(ret2("E", f"Sales document type {order.auart} is not defined", v=(order.auart,),
                         parameter="SALES_HEADER_IN", field="DOC_TYPE"))
    if not order.sold_to and not order.ship_to:
        msgs.append(ret2("E", "Please enter sold-to party or ship-to party", parameter="SALES_HEADER_IN"))
    for role, kunnr in (("Sold-to party", order.sold_to), ("Ship-to party", order.ship_to)):
        if kunnr and not st.in_sales_area(kunnr, *area):
            msgs.append(ret2("E", f"{role} {external(kunnr)} not maintained for sales area {'/'.join(area)}",
                             v=(external(kunnr), *area), parameter="SALES_HEADER_IN"))
    if not order.items:
        msgs.append(ret2("E", "The sales document has no items", parameter="SALES_ITEM_IN"))
    seen: set[str] = set()
    for row, item in enumerate(order.items, start=1):
        if item.posnr in seen:
            msgs.append(ret2("E", f"Item {item.posnr} appears twice", v=(item.posnr,), parameter="SALES_ITEM_IN", row=row))
        seen.add(item.posnr)
        mat = st.material(item.matnr)
        if mat is None or not mat["sellable"]:
            msgs.append(ret2("E", f"Material {external(item.matnr)} is not defined for sales org.{order.vkorg}, "
                                  f"distr.chan.{order.vtweg}, language EN",
                             v=(external(item.matnr), order.vkorg, order.vtweg, "EN"), parameter="SALES_ITEM_IN",
                             row=row, field="MATERIAL"))
        elif item.price is None:
            item.price, item.text = Decimal(mat["price"]), item.text or mat["maktx"]
        else:
            item.text = item.text or mat["maktx"]
        if item.qty <= 0:
            msgs.append(ret2("E", f"Item {item.posnr}: quantity {item.qty} is not a positive quantity",
                             v=(item.posnr, str(item.qty)), parameter="SALES_ITEM_IN", row=row, field="REQ_QTY"))
    if failed(msgs):
        return "", [*msgs, not_changed()]
    msgs.append(ret2("S", "SALES_HEADER_IN has been processed successfully", "V4", "233", ("VBAKKOM",),
                     parameter="SALES_HEADER_IN"))
    msgs += [ret2("S", "SALES_ITEM_IN has been processed successfully", "V4", "233", ("VBAPKOM", it.posnr),
                  parameter="SALES_ITEM_IN", row=i) for i, it in enumerate(order.items, start=1)]
    if testrun:
        return "", msgs
    with st.tx() as conn:
        vbeln = store.next_number(conn, "RV_BELEG")
    if save is not None:
        save(lambda conn: _insert(conn, vbeln, order))
    return vbeln, [*msgs, ret2("S", f"{DOC_TYPES[order.auart]} {external(vbeln)} has been saved", "V1", "311",
                               (DOC_TYPES[order.auart], external(vbeln)))]


def _insert(conn: Any, vbeln: str, order: OrderIn) -> None:
    total = Decimal(0)
    today = date.today().isoformat()
    for it in order.items:
        net = (it.qty * (it.price or 0) / (it.p_unit or 1)).quantize(CENT, ROUND_HALF_UP)
        total += net
        conn.execute("INSERT INTO vbap VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (vbeln, it.posnr, it.matnr, it.text[:40], str(it.qty), it.unit, str(it.price or 0),
                      str(it.p_unit), str(net), it.plant))
        conn.execute("INSERT INTO vbep VALUES (?, ?, ?, ?, ?)", (vbeln, it.posnr, "0001", it.req_date, str(it.qty)))
    for c in order.conditions:
        conn.execute("INSERT INTO konv VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (vbeln, c["ITM_NUMBER"], c["COND_TYPE"], c["COND_VALUE"], c["CURRENCY"], c["COND_P_UNT"],
                      c["COND_UNIT"]))
    for n, t in enumerate(order.texts, start=1):  # text objects VBBK (header) / VBBP (item), name VBELN[+POSNR]
        posnr = str(t["ITM_NUMBER"] or "").zfill(6)
        on_item = bool(posnr.strip("0"))
        conn.execute("INSERT INTO stxl VALUES (?, ?, ?, ?, ?, ?)",
                     ("VBBP" if on_item else "VBBK", vbeln + posnr if on_item else vbeln, t["TEXT_ID"],
                      t["LANGU"] or t["LANGU_ISO"], n, t["TEXT_LINE"]))
    conn.execute("INSERT INTO vbak VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (vbeln, order.auart, order.vkorg, order.vtweg, order.spart, order.sold_to, order.ship_to or order.sold_to,
                  order.bstkd, order.bstdk, order.audat or today, today, str(total), order.waerk or "CNY", "api"))


def _posnr(value: Any, index: int) -> str:
    text = str(value or "").strip()
    return text.zfill(6) if text.strip("0") else f"{index * 10:06d}"


# ---------------------------------------------------------------- BAPI_SALESORDER_CREATEFROMDAT2
def createfromdat2(st: EccStore, req: dict[str, Any], session: EccSession | None, commit: bool) -> dict[str, Any]:
    head = req.get("ORDER_HEADER_IN") or {}
    partners = {p.get("PARTN_ROLE"): p.get("PARTN_NUMB", "") for p in rows(req.get("ORDER_PARTNERS"))
                if not str(p.get("ITM_NUMBER", "")).strip("0")}
    schedules = rows(req.get("ORDER_SCHEDULES_IN"))
    conditions = rows(req.get("ORDER_CONDITIONS_IN"))
    kept = [{**{k: c.get(k, "") for k in ("ITM_NUMBER", "COND_TYPE", "CURRENCY", "COND_P_UNT", "COND_UNIT")},
             "COND_VALUE": str(_price(c)) if c.get("COND_TYPE") in PRICE_CONDITIONS else c.get("COND_VALUE", "")}
            for c in conditions]
    items = []
    for i, row in enumerate(rows(req.get("ORDER_ITEMS_IN")), start=1):
        posnr = _posnr(row.get("ITM_NUMBER"), i)
        lines = [s for s in schedules if _posnr(s.get("ITM_NUMBER"), i) == posnr]
        qty = sum((_dec(s.get("REQ_QTY")) for s in lines), Decimal(0)) if lines else _dec(row.get("TARGET_QTY"))
        price = next(((_price(c), _dec(c.get("COND_P_UNT"), "1") or Decimal(1)) for c in conditions
                      if c.get("COND_TYPE") in PRICE_CONDITIONS and _posnr(c.get("ITM_NUMBER"), i) == posnr), None)
        items.append(Item(posnr, row.get("MATERIAL", ""), qty, row.get("SALES_UNIT") or row.get("TARGET_QU", ""),
                          row.get("PLANT", ""), row.get("SHORT_TEXT", ""),
                          _date(lines[0].get("REQ_DATE", "")) if lines else "",
                          price[0] if price else None, price[1] if price else Decimal(1)))
    order = OrderIn(head.get("DOC_TYPE", ""), head.get("SALES_ORG", ""), head.get("DISTR_CHAN", ""),
                    head.get("DIVISION", ""), partners.get("AG", ""), partners.get("WE", "") or partners.get("AG", ""),
                    head.get("PURCH_NO_C", ""), _date(head.get("PURCH_DATE", "")), _date(head.get("DOC_DATE", "")),
                    head.get("CURRENCY", ""), items, kept,
                    [{k: t.get(k, "") for k in ("ITM_NUMBER", "TEXT_ID", "LANGU", "LANGU_ISO", "TEXT_LINE")}
                     for t in rows(req.get("ORDER_TEXT"))])
    save = _run_now(st) if commit else (session.pending.append if session is not None else None)
    vbeln, msgs = create_order(st, order, testrun=req.get("TESTRUN") == "X", save=save)
    return {"ORDER_CONDITIONS_IN": conditions, "ORDER_ITEMS_IN": rows(req.get("ORDER_ITEMS_IN")),
            "ORDER_PARTNERS": rows(req.get("ORDER_PARTNERS")), "ORDER_SCHEDULES_IN": schedules,
            "ORDER_TEXT": rows(req.get("ORDER_TEXT")), "RETURN": rows(req.get("RETURN")) + msgs,
            "SALESDOCUMENT": vbeln}


def _price(condition: dict[str, Any]) -> Decimal:
    """A price condition's amount as SAP keeps it (KBETR, CURR 11.2: rounded half-up to the fen;
    COND_VALUE is DEC 28.9 only on the way in)."""
    return _dec(condition.get("COND_VALUE")).quantize(CENT, ROUND_HALF_UP)


def _run_now(st: EccStore) -> Callable[[Work], None]:
    def run(work: Work) -> None:
        with st.tx() as conn:
            work(conn)
    return run


# ---------------------------------------------------------------- BAPI_TRANSACTION_COMMIT / _ROLLBACK
def commit(st: EccStore, req: dict[str, Any], session: EccSession | None, fails: bool) -> dict[str, Any]:
    """Save the session's pending documents in one transaction (RETURN initial), or with ``fails``
    lose them and answer the failed update's E S& 150 (its text is ours)."""
    pending = session.pending[:] if session is not None else []
    if session is not None:
        session.pending.clear()
    if fails and pending:
        return {"RETURN": ret2("E", "Update was terminated (stand-in: commit_fails is set)", "S&", "150")}
    with st.tx() as conn:
        for work in pending:
            work(conn)
    return {"RETURN": {}}


def rollback(st: EccStore, req: dict[str, Any], session: EccSession | None) -> dict[str, Any]:
    """Drop the session's pending documents."""
    if session is not None:
        session.pending.clear()
    return {"RETURN": {}}


# ---------------------------------------------------------------- ZBAPI_SALESORDER_CREATE
def zbapi_create(st: EccStore, req: dict[str, Any]) -> dict[str, Any]:
    items = [Item(_posnr(r.get("MATERIAL_NO"), i), r.get("MATERIAL", ""), _dec(r.get("QTY")), r.get("UNIT", ""),
                  r.get("PLANT", ""), req_date=_date(r.get("DELIVERY_DATE", "")))
             for i, r in enumerate(rows(req.get("IT_SO_ITEM")), start=1)]
    order = OrderIn(req.get("ORDER_TYPE", ""), req.get("SALES_ORG", ""), req.get("SALES_CHANNEL", ""),
                    req.get("SALES_DIVISION", ""), req.get("SOLD_TO_PARTY", ""),
                    req.get("SHIP_TO_PARTY") or req.get("SOLD_TO_PARTY", ""), req.get("CUST_PO", ""),
                    _date(req.get("CUST_PO_DATE", "")), "", "", items)
    vbeln, msgs = create_order(st, order, testrun=False, save=_run_now(st))
    keep = ("TYPE", "ID", "NUMBER", "MESSAGE", "LOG_NO", "LOG_MSG_NO", "PARAMETER", "ROW", "FIELD", "SYSTEM")
    return {"DETAIL_MESSAGE": [{**{k: m[k] for k in keep}, "MESSAGE_LONG": ""} for m in msgs],
            "PR_ITEM": [], "SALES_NO": vbeln}


# ---------------------------------------------------------------- BAPI_SALESORDER_GETLIST
def getlist(st: EccStore, req: dict[str, Any]) -> dict[str, Any]:
    sql = ("SELECT h.*, i.posnr, i.matnr, i.arktx, i.kwmeng, i.netpr, k.name1 FROM vbak h "
           "JOIN vbap i ON i.vbeln = h.vbeln LEFT JOIN kna1 k ON k.kunnr = h.kunnr "
           "WHERE h.kunnr = ? AND h.vkorg = ?")
    args: list[Any] = [req.get("CUSTOMER_NUMBER", ""), req.get("SALES_ORGANIZATION", "")]
    for param, cond in (("PURCHASE_ORDER_NUMBER", "h.bstkd = ?"), ("PURCHASE_ORDER", "substr(h.bstkd, 1, 20) = ?"),
                        ("MATERIAL", "i.matnr = ?"), ("DOCUMENT_DATE", "h.audat >= ?"),
                        ("DOCUMENT_DATE_TO", "h.audat <= ?")):
        value = req.get(param) or ""
        if value and not value.startswith("0000-00-00"):
            sql += f" AND {cond}"
            args.append(value)
    found = [] if (req.get("TRANSACTION_GROUP") or "0") != "0" else st.query(sql + " ORDER BY h.vbeln, i.posnr",
                                                                            tuple(args))
    return {"RETURN": {}, "SALES_ORDERS": [{
        "SD_DOC": r["vbeln"], "ITM_NUMBER": r["posnr"], "MATERIAL": r["matnr"], "SHORT_TEXT": r["arktx"],
        "DOC_TYPE": r["auart"], "DOC_DATE": r["audat"] or "0000-00-00", "REQ_QTY": r["kwmeng"], "PURCH_NO": r["bstkd"][:20],
        "SOLD_TO": r["kunnr"], "NAME": (r["name1"] or "")[:35], "NET_PRICE": r["netpr"], "NET_VAL_HD": r["netwr"],
        "DIVISION": r["spart"], "SALES_ORG": r["vkorg"], "DISTR_CHAN": r["vtweg"], "CURRENCY": r["waerk"],
        "PURCH_NO_C": r["bstkd"]} for r in found]}
