"""SAP ECC connector: customers, materials and sales orders through SOAP services over RFC function modules.

Services (WSDL copies in ``connectors/sap_wsdl/``; ``*.composed.wsdl`` were written by the hub
from public evidence, each says which):

- ``customer_create``: ZFM_CUSTOMER_MASTER_CREATE (operation ZfmCustomerMasterCreate, mc-style);
  answers Customer and Return (CvisMessage: IsError + BAPIRET2 rows).
- ``customer_query``: ECC_CUSTOMER002QR (CustomerSimpleByNameAndAddressQueryResponse_In), the
  enterprise service that finds customers by name, address and key words (search terms).
- ``customer_detail``: BAPI_CUSTOMER_GETDETAIL2 (composed) reads one customer by number.
- ``order_create``: ZBAPI_SALESORDER_CREATE, the reference binding, a Z wrapper whose signature is
  its own (CUST_PO, SOLD_TO_PARTY, SHIP_TO_PARTY, ORDER_TYPE, SALES_ORG, SALES_CHANNEL,
  SALES_DIVISION, IT_SO_ITEM → SALES_NO, DETAIL_MESSAGE), not BAPI_SALESORDER_CREATEFROMDAT2's.
- ``order_standard`` (composed, stateful): BAPI_SALESORDER_CREATEFROMDAT2 with
  BAPI_TRANSACTION_COMMIT and BAPI_TRANSACTION_ROLLBACK in one service definition
  (connectors/sap_ecc_luw.py).
- ``order_list``: BAPI_SALESORDER_GETLIST (composed): a customer's orders by PO number.
- ``material`` (composed): BAPI_MATERIAL_GETLIST and BAPI_MATERIAL_GET_DETAIL, the material
  stream ``Material`` (connectors/sap_ecc_materials.py).

Keys: customer numbers travel in SAP's internal form, 10 characters with leading zeros (ALPHA
conversion, :func:`alpha`), both ways; the BAPIs do not convert them.

Idempotency: none of these services has an idempotency key, so every create is looked up first
and again after a lost answer (a transport error, timeout, 5xx or unreadable answer after the
request went out), and sent only when SAP does not hold it:
- a customer by the hub's reference in search term 1 (ADRC-SORT1, which the connector fills;
  found through the query's CustomerKeyWordsText);
- an order by its customer PO number (CUST_PO, stored as PURCH_NO_C / VBKD-BSTKD), found through
  GETLIST's PURCHASE_ORDER_NUMBER for the sold-to party and sales organisation.
After a lost answer the look-up waits ``extra.settle_seconds`` (default 1) first: a create whose
update task is still running is not yet visible.

Commit (``extra.order_commit``, :data:`COMMIT`): ``"wrapper"`` (default) binds the reference Z
wrapper, which commits itself on a stateless binding (its WSDL's policy has ``enableSession
false``, so nothing sent after the call could commit its LUW; the contract test reads the order
back to prove it); it takes no price, so an order with a special price is refused with the reason.
``"standard"`` binds BAPI_SALESORDER_CREATEFROMDAT2 (header, items, partners AG/WE, schedule lines,
conditions: the price as PR00, a special price included; item texts) and commits it with
BAPI_TRANSACTION_COMMIT (WAIT = 'X') in the same HTTP session, the stateful service's
``sap-contextid`` cookie kept in a requests Session of its own; RETURN E/A of either is a failed
result and the LUW is rolled back (connectors/sap_ecc_luw.py). The choice is the connection's
because it says which service the installation exposes; the erp seat picks the mappings by it.

Reads: ECC offers no change pointers through these services, so the customer stream is read by
keys only (``read("Customer", {"keys": [...]})``; a full or incremental read is a configuration
error) and the material stream is the whole list every run, or by keys. Connection: host (with
scheme), login / password (HTTP Basic), extra ``sap_client`` (default 100), ``paths`` (service →
path, where the installation's differ from the WSDLs'), ``timeout_seconds`` (60), ``attempts``
(4), ``settle_seconds`` (1), ``order_commit`` ("wrapper" | "standard"), ``material_page_size`` (0:
the list in one call), ``material_code`` ("old_number" | "number").
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from connectors.http import write_each
from connectors import sap_ecc_luw, sap_ecc_materials
from connectors.sap_ecc_keys import alpha, error_rows, messages_text
from connectors.soap import SoapFault, SoapService, rows
from hub.errors import AmbiguousWriteError, ConfigurationError, DataError
from hub.types import ConnectionInfo, Page, Record, WriteResult

log = logging.getLogger("connectors.sap_ecc")

CUSTOMERS, ORDERS, MATERIALS = "Customer", "SalesOrder", sap_ecc_materials.MATERIALS
RFC = "{urn:sap-com:document:sap:rfc:functions}"
#: service → (WSDL file, binding, operation)
SERVICES: dict[str, tuple[str, str, str]] = {
    "customer_create": ("customercreate_v1_ZFM_CUSTOMER_MASTER_CREATE.wsdl",
                        "{urn:sap-com:document:sap:soap:functions:mc-style}CustomerCreate_v1", "ZfmCustomerMasterCreate"),
    "customer_query": ("ECC_CUSTOMER002QR.wsdl",
                       "{http://sap.com/xi/APPL/SE/Global}CustomerSimpleByNameAndAddressQueryResponse_InSoapBinding",
                       "CustomerSimpleByNameAndAddressQueryResponse_In"),
    "customer_detail": ("zbapi_customer_getdetail2.composed.wsdl", f"{RFC}ZBAPI_CUSTOMER_GETDETAIL2",
                        "BAPI_CUSTOMER_GETDETAIL2"),
    "order_create": ("zws_bapi_salesorder_create_binding.wsdl", f"{RFC}ZWS_BAPI_SALESORDER_CREATE_BINDING",
                     "ZBAPI_SALESORDER_CREATE"),
    "order_standard": ("zbapi_salesorder_createfromdat.composed.wsdl", f"{RFC}ZBAPI_SALESORDER_CREATEFROMDAT",
                       sap_ecc_luw.CREATE),
    "order_list": ("zbapi_salesorder_getlist.composed.wsdl", f"{RFC}ZBAPI_SALESORDER_GETLIST", "BAPI_SALESORDER_GETLIST"),
    "material": ("zbapi_material.composed.wsdl", f"{RFC}ZBAPI_MATERIAL", sap_ecc_materials.GETLIST),
}
#: Services whose binding is stateful: their calls share an HTTP session of their own.
STATEFUL = frozenset({sap_ecc_luw.SERVICE})
#: Where the hub's customer reference lives (search term 1); the connector fills it.
REF_FIELD = "CentralData.Address.Sort1"
#: How an order create's LUW is committed (module docstring): the wrapper's own commit, or the
#: standard BAPI's with BAPI_TRANSACTION_COMMIT in the same session.
COMMIT = ("wrapper", "standard")
#: Creates whose answer was lost and that SAP does not hold are sent again this often.
CREATE_ATTEMPTS = 3


def customer_ref(hub_id: str) -> str:
    """The hub's reference for a customer it creates: 20 characters (the search term's length)."""
    return "HUB" + hashlib.sha1(hub_id.encode("utf-8")).hexdigest()[:17].upper()


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted paths (``CentralData.Address.Name``) to nested dicts; lists (tables) keep their rows,
    each nested the same way; keys starting with ``_`` are the hub's, never sent."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        if path.startswith("_") or value is None:
            continue
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = [nest(r) for r in value] if isinstance(value, list) else value
    return out


class SapEccConnector:
    """The connector protocol over the ECC services (module docstring)."""

    system = "sap_ecc"

    def __init__(self, conn: ConnectionInfo, columns: Mapping[str, Sequence[str]] | None = None) -> None:
        self.conn = conn
        self.columns = dict(columns or {})
        extra = conn.extra
        self.client = str(extra.get("sap_client", "100"))
        self.paths = dict(extra.get("paths") or {})
        unknown = set(self.paths) - set(SERVICES)
        if unknown:
            raise ConfigurationError(f"connection {conn.conn_id!r}: extra.paths names unknown services "
                                     f"{sorted(unknown)} (known: {sorted(SERVICES)})")
        self.settle = float(extra.get("settle_seconds", 1.0))
        self.commit = str(extra.get("order_commit", "wrapper"))
        if self.commit not in COMMIT:
            raise ConfigurationError(f"connection {conn.conn_id!r}: extra.order_commit {self.commit!r} is not one of "
                                     f"{COMMIT} (wrapper: the reference Z service commits itself; standard: "
                                     f"BAPI_SALESORDER_CREATEFROMDAT2 and BAPI_TRANSACTION_COMMIT in one stateful service)")
        self.session, self.luw_session = self._http(), self._http()
        self.timeout = (5.0, float(extra.get("timeout_seconds", 60)))
        self.attempts = int(extra.get("attempts", 4))
        self._services: dict[str, SoapService] = {}
        self.materials = sap_ecc_materials.MaterialReader(self.call, int(extra.get("material_page_size", 0)),
                                                          str(extra.get("material_code", "old_number")))
        self.luw = sap_ecc_luw.OrderLuw(self.call, self.luw_session)

    def _http(self) -> requests.Session:
        """A requests Session with this connection's auth and client (one for the stateless services,
        one of its own for the stateful one, so its cookies are that service's session only)."""
        session = requests.Session()
        session.auth = (self.conn.login, self.conn.password)
        session.headers["sap-client"] = self.client
        return session

    # --- plumbing ---------------------------------------------------------------------------------
    def locate(self, service: str, wsdl_address: str) -> str:
        """The WSDL's address re-homed: this connection's scheme, host and port; the path of
        ``extra.paths`` or the WSDL's, with SOAMANAGER's client segment and ``sap-client`` set
        to this connection's client."""
        parts = urlsplit(self.paths[service]) if service in self.paths else urlsplit(wsdl_address)
        segments = parts.path.split("/")
        if parts.path.startswith("/sap/bc/srt/rfc/sap/") and len(segments) > 7 and segments[7].isdigit():
            segments[7] = self.client
        query = {**dict(parse_qsl(parts.query)), "sap-client": self.client}
        return f"{self.conn.base_url()}{'/'.join(segments)}?{urlencode(query)}"

    def service(self, name: str) -> SoapService:
        if name not in self._services:
            wsdl, binding, _ = SERVICES[name]
            session = self.luw_session if name in STATEFUL else self.session
            self._services[name] = SoapService(wsdl, binding, session, timeout=self.timeout,
                                               attempts=self.attempts, secrets=self.conn.secrets(),
                                               conn_id=self.conn.conn_id,
                                               locate=lambda address, n=name: self.locate(n, address))
        return self._services[name]

    def call(self, name: str, values: Mapping[str, Any], write: bool = False, operation: str | None = None) -> dict[str, Any]:
        """``operation`` (default: the service's first) of service ``name``."""
        return self.service(name).call(operation or SERVICES[name][2], values, write=write)

    # --- connector protocol -----------------------------------------------------------------------
    def check(self) -> None:
        """Each read service answers under this connection's credentials and paths (the create
        services are proven by the contract kit's write checks, on a test client only); with the
        standard order service bound, a rollback of an empty LUW proves its path and that it
        keeps a session (sets ``sap-contextid``)."""
        self.customers_by_search_term("HUBCHECK", key_words="CustomerKeyWordsText")
        self.call("customer_detail", {"CUSTOMERNO": "0000000000"})
        self.call("order_list", {"CUSTOMER_NUMBER": "0000000000", "SALES_ORGANIZATION": "0000"})
        self.call("material", {"MATNRSELECTION": [{"SIGN": "I", "OPTION": "EQ", "MATNR_LOW": "HUBCHECK"}], "MAXROWS": 1})
        if self.commit == "standard":
            self.luw_session.cookies.clear()
            self.call(sap_ecc_luw.SERVICE, {}, operation=sap_ecc_luw.ROLLBACK)
            stateful = sap_ecc_luw.SESSION_COOKIE in {c.name for c in self.luw_session.cookies}
            self.luw_session.cookies.clear()
            if not stateful:
                raise ConfigurationError(f"SAP ECC {sap_ecc_luw.SERVICE} keeps no session (no {sap_ecc_luw.SESSION_COOKIE} "
                                         f"cookie): BAPI_TRANSACTION_COMMIT could not commit the orders it creates")

    def read(self, stream: str, cursor: Any = None) -> Iterator[Page]:
        """Materials (connectors/sap_ecc_materials.py), or the customers of ``cursor["keys"]``
        (BAPI_CUSTOMER_GETDETAIL2, one call each) as flat records: ``CUSTOMERNO`` and
        ``<STRUCTURE>.<FIELD>`` of the answer's structures."""
        if stream == MATERIALS:
            yield from self.materials.read(cursor)
            return
        if stream != CUSTOMERS or not (isinstance(cursor, Mapping) and "keys" in cursor):
            raise ConfigurationError(f"SAP ECC {stream}: ECC has no change-pointer read in this hub yet; customers are "
                                     f"read by keys only ({{'keys': [...]}})")
        records, bad = [], []
        for key in dict.fromkeys(alpha(k) for k in cursor["keys"]):
            answer = self.call("customer_detail", {"CUSTOMERNO": key})
            ret = answer.get("RETURN") if isinstance(answer.get("RETURN"), dict) else {}
            if error_rows([ret]):
                bad.append((key, f"SAP BAPI_CUSTOMER_GETDETAIL2 {key}: {messages_text([ret])}"))
                continue
            rec: Record = {"CUSTOMERNO": key}
            for struct, fields in answer.items():
                if isinstance(fields, dict) and struct != "RETURN":
                    rec.update({f"{struct}.{f}": v for f, v in fields.items() if not isinstance(v, (dict, list))})
            records.append(rec)
        yield Page(records, None, bad)

    def write(self, stream: str, records: Sequence[Record]) -> list[WriteResult]:
        """Create customers (stream ``Customer``) or sales orders (``SalesOrder``), one call each,
        in order. A record is flat: dotted WSDL paths (lists for tables), plus ``_key`` (the hub
        id), ``_op`` (``add``) and ``_ref`` (the hub's reference: search term 1 of a customer,
        CUST_PO of an order)."""
        if stream in (CUSTOMERS, ORDERS):
            one = self._write_customer if stream == CUSTOMERS else self._write_order
            return [write_each(str(r["_key"]), lambda r=r: one(r)) for r in records]
        raise ConfigurationError(f"SAP ECC has no stream {stream!r} to write (only {CUSTOMERS}, {ORDERS}; "
                                 f"{MATERIALS} is read only)")

    def census(self, stream: str, records: Sequence[Record]) -> dict[str, int]:
        """How many customers (by search term 1) or orders (by PO number, per sold-to party and
        sales organisation) SAP holds for each record's ``_ref``."""
        out: dict[str, int] = {}
        for rec in records:
            ref = str(rec.get("_ref") or "")
            if not ref:
                continue
            try:
                out[ref] = len(self.customers_by_ref(ref) if stream == CUSTOMERS else self.orders_by_ref(rec))
            except DataError as exc:
                log.warning("SAP ECC census of %s %s skipped: %s", stream, ref, exc)
        return out

    # --- look-ups ---------------------------------------------------------------------------------
    def customers_by_search_term(self, term: str, key_words: str = "CustomerKeyWordsText") -> list[str]:
        """Customer numbers whose search term matches ``term`` exactly (ECC_CUSTOMER002QR:
        ``CustomerKeyWordsText`` is search term 1, ``CustomerAdditionalKeyWordsText`` search term 2;
        that correspondence is SAP's field naming, not verified against a system)."""
        answer = self.call("customer_query", {"CustomerSimpleSelectionByNameAndAddress": {key_words: term}})
        log_ = answer.get("Log") if isinstance(answer.get("Log"), dict) else {}
        if str(log_.get("MaximumLogItemSeverityCode", "")).strip() == "3" and not rows(answer.get("Customer")):
            notes = "; ".join(str(i.get("Note", "")) for i in rows(log_.get("Item")))
            raise DataError(f"SAP ECC_CUSTOMER002QR search for {term!r} failed: {notes or 'severity 3'}")
        ids = [c.get("ID") for c in rows(answer.get("Customer"))]
        return sorted({alpha(i if isinstance(i, str) else "") for i in ids if i})

    def customers_by_ref(self, ref: str) -> list[str]:
        return self.customers_by_search_term(ref, "CustomerKeyWordsText")

    def orders_by_ref(self, rec: Mapping[str, Any]) -> list[str]:
        """Order numbers of the sold-to party in the sales organisation whose PO number is the
        record's ``_ref`` (BAPI_SALESORDER_GETLIST answers one row per item). A RETURN of type E
        or A is a DataError: a failed look-up is never taken for "not there"."""
        ref = str(rec.get("_ref") or "")
        sold_to, sales_org = _sold_to_and_org(rec)
        answer = self.call("order_list", {"CUSTOMER_NUMBER": alpha(sold_to), "SALES_ORGANIZATION": sales_org,
                                          "PURCHASE_ORDER_NUMBER": ref})
        ret = answer.get("RETURN") if isinstance(answer.get("RETURN"), dict) else {}
        if error_rows([ret]):
            raise DataError(f"SAP BAPI_SALESORDER_GETLIST for PO number {ref}: {messages_text([ret], id_key='CODE', number_key='')}")
        return sorted({alpha(r.get("SD_DOC")) for r in rows(answer.get("SALES_ORDERS"))
                       if str(r.get("PURCH_NO_C", "")).strip() == ref and r.get("SD_DOC")})

    # --- creates ----------------------------------------------------------------------------------
    def _create(self, key: str, what: str, find, send) -> WriteResult:
        """Look ``what`` up, create it when SAP does not hold it, and after a lost answer look
        again before sending it again (CREATE_ATTEMPTS)."""
        try:
            found = find()
        except DataError as exc:
            return WriteResult(key, "failed", error=f"{exc}; not created (a create without the look-up could "
                                                    f"make it twice)", error_class="data")
        if found:
            log.info("SAP ECC %s is there already (%s): not created again", what, found[0])
            return WriteResult(key, "created", found[0])
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return send()
            except SoapFault as exc:
                return WriteResult(key, "failed", error=str(exc), error_class="data")
            except AmbiguousWriteError as exc:
                time.sleep(self.settle)
                try:
                    found = find()
                except DataError as again:
                    return WriteResult(key, "failed", error_class="data", error=(
                        f"{exc}; the look-up that follows failed ({again}): SAP may hold {what}, the next attempt "
                        f"looks it up before creating"))
                if found:
                    log.info("SAP ECC %s: answer lost, it was created (%s)", what, found[0])
                    return WriteResult(key, "created", found[0])
                if attempt == CREATE_ATTEMPTS:
                    raise
                log.warning("%s; SAP does not hold %s, sending the create again", exc, what)
        raise AssertionError("unreachable")

    def _write_customer(self, rec: Record) -> WriteResult:
        key, ref = str(rec["_key"]), str(rec.get("_ref") or "")
        if (rec.get("_op") or "add") != "add":
            return WriteResult(key, "failed", error_class="configuration", error=(
                f"SAP ECC customer {rec.get('CentralData.Customer') or ''}: no customer change service is bound in this "
                f"hub (ZFM_CUSTOMER_MASTER_CREATE only creates); change it in SAP (XD02) or bind a change service"))
        if not ref:
            raise ConfigurationError("SAP ECC customer creates need _ref (the hub's reference) to be safe to repeat")
        if rec.get(REF_FIELD) not in (None, "", ref):
            raise ConfigurationError(f"SAP ECC: {REF_FIELD} carries the hub's reference; the mapping must not fill it")
        body = nest({**rec, REF_FIELD: ref})

        def send() -> WriteResult:
            answer = self.call("customer_create", body, write=True)
            ret = answer.get("Return") if isinstance(answer.get("Return"), dict) else {}
            msgs = rows(ret.get("Messages"))
            errors = error_rows(msgs, "Type")
            number = str(answer.get("Customer") or "").strip()
            if errors or str(ret.get("IsError", "")).strip().upper() == "X" or not number:
                text = messages_text(errors or msgs, "Type", "Message", "Id", "Number") or "no customer number"
                return WriteResult(key, "failed", error=f"SAP refused the customer: {text}", error_class="data")
            return WriteResult(key, "created", alpha(number))

        return self._create(key, f"customer {ref}", lambda: self.customers_by_ref(ref), send)

    def _write_order(self, rec: Record) -> WriteResult:
        key, ref = str(rec["_key"]), str(rec.get("_ref") or "")
        if (rec.get("_op") or "add") != "add":
            return WriteResult(key, "failed", error_class="configuration",
                               error="SAP ECC: no sales order change or cancel service is bound in this hub")
        if not ref:
            raise ConfigurationError("SAP ECC order creates need _ref (the PO number, PURCH_NO_C) to be safe to repeat")
        standard = "ORDER_PARTNERS" in rec
        if standard != (self.commit == "standard"):
            raise ConfigurationError(f"SAP ECC: an order record shaped for the {'standard BAPI' if standard else 'Z wrapper'} "
                                     f"but connection {self.conn.conn_id!r} has extra.order_commit {self.commit!r}")
        if standard:
            return self._write_standard_order(key, ref, rec)
        items = [dict(i) for i in rec.get("IT_SO_ITEM") or []]
        special = [str(i["_special_price_ref"]) for i in items if i.get("_special_price_ref")]
        if special:
            return WriteResult(key, "failed", error_class="data", error=(
                f"SAP ECC: special price ({', '.join(special)}) cannot be sent: the bound ZBAPI_SALESORDER_CREATE takes "
                f"no price or condition (IT_SO_ITEM: material, quantity, unit, plant, dates); SAP would price the "
                f"order itself. Enter the order in SAP, or bind BAPI_SALESORDER_CREATEFROMDAT2 (ORDER_CONDITIONS_IN)"))
        body = nest({**rec, "CUST_PO": ref, "SOLD_TO_PARTY": alpha(rec.get("SOLD_TO_PARTY")),
                     "SHIP_TO_PARTY": alpha(rec.get("SHIP_TO_PARTY") or rec.get("SOLD_TO_PARTY")), "IT_SO_ITEM": items})

        def send() -> WriteResult:
            answer = self.call("order_create", body, write=True)
            msgs = rows(answer.get("DETAIL_MESSAGE"))
            errors = error_rows(msgs)
            number = str(answer.get("SALES_NO") or "").strip()
            if errors or not number:
                text = messages_text(errors or msgs) or "no SALES_NO and no message"
                return WriteResult(key, "failed", error=f"SAP refused the order: {text}", error_class="data")
            for m in msgs:
                if str(m.get("TYPE", "")).upper() == "W":
                    log.info("SAP ECC order %s %s: warning %s", number, ref, messages_text([m]))
            return WriteResult(key, "created", alpha(number))

        return self._create(key, f"order with PO number {ref}", lambda: self.orders_by_ref(rec), send)

    def _write_standard_order(self, key: str, ref: str, rec: Record) -> WriteResult:
        """BAPI_SALESORDER_CREATEFROMDAT2 + BAPI_TRANSACTION_COMMIT in one session; PURCH_NO_C is ``_ref``."""
        if rec.get(PO_FIELD) not in (None, "", ref):
            raise ConfigurationError(f"SAP ECC: {PO_FIELD} carries the hub's idempotency key; the mapping must not fill it")
        body = nest({**rec, PO_FIELD: ref})
        return self._create(key, f"order with PO number {ref}", lambda: self.orders_by_ref(rec),
                            lambda: self.luw.create(key, body))


#: Where the standard BAPI takes the PO number the hub looks an order up by.
PO_FIELD = "ORDER_HEADER_IN.PURCH_NO_C"


def _sold_to_and_org(rec: Mapping[str, Any]) -> tuple[str, str]:
    """(sold-to party, sales organisation) of an order record of either shape."""
    if "ORDER_PARTNERS" in rec:
        sold_to = next((p.get("PARTN_NUMB") for p in rec["ORDER_PARTNERS"] if p.get("PARTN_ROLE") == "AG"), "")
        return str(sold_to or ""), str(rec.get("ORDER_HEADER_IN.SALES_ORG") or "")
    return str(rec.get("SOLD_TO_PARTY") or ""), str(rec.get("SALES_ORG") or "")
