"""泛微 e-cology 9 workflow REST (``/api/ec/dev/auth/*``, ``/api/workflow/paService/*``).

The handshake (protocol notes, 泛微 e-cology 9): the app registers once with its RSA public key
(``regist``: headers ``appid``, ``cpk``) and gets ``secrit`` and the server's public key ``spk``;
both are kept in the hub's encrypted state (:class:`hub.types.Vault`), never in code or a
connection. A token comes from ``applytoken`` with ``secret`` = RSA-PKCS#1 v1.5(spk, secrit) in
base64 and ``time`` (its lifetime); it is reused until shortly before that lifetime ends. Every
business call sends ``appid``, ``token`` and ``userid`` = RSA(spk, user id), with no cookie jar
(a shared one mixes users up, 串号).

Streams: ``workflow_request`` — write takes the approvals flow's records (``workflow``, ``title``,
``fields`` as ``[{name, value}]``, ``remark``) and creates a request with ``doCreateRequest`` (form fields
``workflowId``, ``requestName``, ``mainData``/``detailData`` as JSON strings, ``otherParams``
``{"isnextflow": "1"}`` to submit it); read (``{"keys": [requestid, …]}``) gives each request's
progress from ``getRequestStatus`` (``currentNodeType``: 0 创建, 1 批准, 2 提交, 3 归档) and
``getWorkflowRequest`` (node name, status, the signed opinions). A create is not safe to repeat,
so the title carries the hub's key and the creator's requests (``getMyWorkflowRequestList``,
``conditions.requestname``, a LIKE match checked exactly here) are searched before a create and
after an answer that was lost: one OA request per key, however often it is sent.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import time
from typing import Any, Iterator, Mapping, Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.http import HttpClient, create_once, pages_by_key, write_each
from hub.errors import ConfigurationError, DataError, TransientError
from hub.types import ConnectionInfo, Page, Record, Vault, WriteResult

log = logging.getLogger("connectors.ecology")

REGIST, APPLY_TOKEN = "/api/ec/dev/auth/regist", "/api/ec/dev/auth/applytoken"
CREATE = "/api/workflow/paService/doCreateRequest"
MINE = "/api/workflow/paService/getMyWorkflowRequestList"
STATUS = "/api/workflow/paService/getRequestStatus"
REQUEST = "/api/workflow/paService/getWorkflowRequest"
STREAM = "workflow_request"
OK = "SUCCESS"
#: documented answer codes (paService): what each means for the hub
CONFIG_CODES = {"NO_PERMISSION"}           # the integration user may not create or see this workflow
DATA_CODES = {"PARAM_ERROR"}               # a field the form does not have, a required one empty
#: ``currentNodeType`` values (getRequestStatus; the list interfaces' ``nodetype`` condition)
NODE_TYPES = {"0": "创建", "1": "批准", "2": "提交", "3": "归档"}
TOKEN_MARGIN_S = 60
_TAGS = re.compile(r"<[^>]+>")


def _encrypt(spk_b64: str, text: str) -> str:
    """RSA-PKCS#1 v1.5 with the server's public key (base64 DER, as ``regist`` gives it), in base64."""
    key = serialization.load_der_public_key(base64.b64decode(spk_b64))
    return base64.b64encode(key.encrypt(text.encode("utf-8"), padding.PKCS1v15())).decode("ascii")  # type: ignore[union-attr]


class EcologyApi:
    """One e-cology tenant through one app (``appid`` = the connection's login) acting as one OA user
    (``extra.user_id``, the integration account requests are created as)."""

    system = "ecology"

    def __init__(self, conn: ConnectionInfo, vault: Vault, token_seconds: int = 1800) -> None:
        if not conn.login:
            raise ConfigurationError(f"connection {conn.conn_id!r}: the login must be the e-cology appid")
        self.conn, self.vault = conn, vault
        self.appid = conn.login
        self.user_id = str(conn.extra.get("user_id") or "").strip()
        if not self.user_id:
            raise ConfigurationError(f"connection {conn.conn_id!r}: extra.user_id (the OA user requests are created as) is missing")
        self.token_seconds = int(conn.extra.get("token_seconds") or token_seconds)
        self.http = HttpClient(conn.base_url(), cookies=False, **conn.http_retry())
        self._token: tuple[str, float] | None = None
        self._registration: dict[str, str] | None = None

    # --- the handshake ------------------------------------------------------------------------------

    @property
    def _vault_name(self) -> str:
        return f"ecology:{self.conn.base_url()}:{self.appid}"

    def registration(self) -> dict[str, str]:
        """``secrit`` and ``spk`` from the vault, or from ``regist`` once (then kept there)."""
        if self._registration:
            return self._registration
        kept = self.vault.get(self._vault_name)
        if not kept:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            cpk = base64.b64encode(key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode("ascii")
            body = self.http.request("POST", REGIST, headers={"appid": self.appid, "cpk": cpk}, idempotent=True).body
            secrit = body.get("secrit") or body.get("secret") if isinstance(body, dict) else None
            if not (isinstance(body, dict) and body.get("status") is True and secrit and body.get("spk")):
                raise ConfigurationError(f"e-cology refused to register app {self.appid}: {self._msg(body)} (is regist "
                                         "whitelisted in weaver_session_filter.properties, the appid in ecology_dev?)")
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode("ascii")
            kept = {"secrit": secrit, "spk": body["spk"], "cpk": cpk, "private_key": pem}
            self.vault.put(self._vault_name, kept)
            log.info("e-cology: app %s registered; secrit and spk kept in the hub's vault", self.appid)
        self._registration = {k: str(v) for k, v in kept.items()}
        return self._registration

    def token(self) -> str:
        if self._token and self._token[1] > time.time():
            return self._token[0]
        reg = self.registration()
        body = self.http.request("POST", APPLY_TOKEN, idempotent=True, headers={
            "appid": self.appid, "secret": _encrypt(reg["spk"], reg["secrit"]), "time": str(self.token_seconds)}).body
        if not (isinstance(body, dict) and body.get("status") is True and body.get("token")):
            raise ConfigurationError(f"e-cology refused a token for app {self.appid}: {self._msg(body)}")
        self._token = (str(body["token"]), time.time() + max(1, self.token_seconds - TOKEN_MARGIN_S))
        return self._token[0]

    def _headers(self) -> dict[str, str]:
        reg = self.registration()
        return {"appid": self.appid, "token": self.token(), "userid": _encrypt(reg["spk"], self.user_id)}

    @staticmethod
    def _msg(body: Any) -> str:
        if isinstance(body, dict):
            return str(body.get("msg") or body.get("errMsg") or body.get("code") or body)[:300]
        return str(body)[:300]

    def _call(self, method: str, path: str, *, params: dict | None = None, form: dict | None = None,
              idempotent: bool | None = None) -> Any:
        """One business call; a USER_EXCEPTION answer (a token the OA no longer knows) gets a new token
        and another try, up to three; then it is the user's (a ConfigurationError)."""
        for attempt in (1, 2, 3):
            body = self.http.request(method, path, params=params, data=form, headers=self._headers(),
                                     idempotent=idempotent).body
            if not (isinstance(body, dict) and body.get("code") == "USER_EXCEPTION"):
                return body
            self._token = None
            if attempt == 3:
                raise ConfigurationError(f"e-cology: user {self.user_id} of app {self.appid} refused on {path}: "
                                         f"{self._msg(body)}")
        return None

    def check(self) -> None:
        self.find("[connection check]")

    # --- requests -----------------------------------------------------------------------------------

    def find(self, name: str, page_size: int = 50) -> list[dict[str, Any]]:
        """The integration user's requests whose title is exactly ``name``."""
        out: list[dict[str, Any]] = []
        for page in range(1, 21):
            body = self._call("POST", MINE, idempotent=True, form={"pageNo": str(page), "pageSize": str(page_size),
                                                  "conditions": json.dumps({"requestname": name}, ensure_ascii=False)})
            if not isinstance(body, list):
                raise TransientError(f"e-cology {MINE}: expected a list of requests, got {self._msg(body)}")
            out += [r for r in body if str(r.get("requestName", "")).strip() == name]
            if len(body) < page_size:
                break
        return out

    def create(self, record: Mapping[str, Any]) -> str:
        """``doCreateRequest``; the new request's id. PARAM_ERROR is the record's (DataError),
        NO_PERMISSION the configuration's."""
        main = [{"fieldName": f["name"], "fieldValue": f["value"]} for f in record["fields"]]
        form = {"workflowId": str(record["workflow"]), "requestName": record["title"],
                "mainData": json.dumps(main, ensure_ascii=False),
                "otherParams": json.dumps({"isnextflow": "1" if record.get("submit", True) else "0"})}
        if record.get("details"):  # detail tables as e-cology takes them: [{tableDBName, workflowRequestTableRecords}]
            form["detailData"] = json.dumps(record["details"], ensure_ascii=False)
        if record.get("remark"):
            form["remark"] = str(record["remark"])
        body = self._call("POST", CREATE, form=form, idempotent=False)
        code = body.get("code") if isinstance(body, dict) else None
        if code == OK and isinstance(body.get("data"), dict) and body["data"].get("requestid"):
            return str(body["data"]["requestid"])
        if code in CONFIG_CODES:
            raise ConfigurationError(f"e-cology {code} creating workflow {form['workflowId']}: {self._msg(body)}")
        if code in DATA_CODES:
            raise DataError(f"e-cology {code}: {self._msg(body)}")
        raise TransientError(f"e-cology {CREATE}: unexpected answer {self._msg(body)}")

    def write(self, stream: str, records: Sequence[Record]) -> list[WriteResult]:
        if stream != STREAM:
            raise ConfigurationError(f"e-cology has no writable stream {stream!r} (only {STREAM})")
        def one(rec: Record) -> WriteResult:
            status, native = create_once(lambda: next((str(r["requestId"]) for r in self.find(rec["title"])), None),
                                         lambda: self.create(rec))
            return WriteResult(str(rec["_key"]), status, native_key=str(native))

        return [write_each(str(rec["_key"]), lambda rec=rec: one(rec)) for rec in records]

    def progress(self, request_id: str) -> dict[str, Any]:
        """Where a request stands: node type and name, status, and the latest signed opinion."""
        status = self._call("GET", STATUS, params={"requestId": request_id})
        info = self._call("GET", REQUEST, params={"requestId": request_id})
        for body, path in ((status, STATUS), (info, REQUEST)):
            if not (isinstance(body, dict) and isinstance(body.get("data"), dict)):
                raise TransientError(f"e-cology {path} {request_id}: {self._msg(body)}")
        data, st = info["data"], status["data"]
        logs = data.get("workflowRequestLogs") or []
        latest = logs[0] if logs else {}
        return {"request_id": str(request_id), "node_type": str(st.get("currentNodeType", "")),
                "node": data.get("currentNodeName") or "", "status": data.get("status") or st.get("status") or "",
                "last_operator": latest.get("operatorName") or data.get("lastOperatorName") or "",
                "last_action": latest.get("operateType") or "",
                "opinion": _TAGS.sub("", str(latest.get("remark") or "")).strip(),
                "operated_on": latest.get("operateDate") or str(data.get("lastOperateTime") or "")[:10]}

    def read(self, stream: str, cursor: Any = None) -> Iterator[Page]:
        if stream != STREAM or not isinstance(cursor, dict) or "keys" not in cursor:
            raise ConfigurationError(f"e-cology reads {STREAM} by request ids ({{'keys': [...]}}), got {stream!r}")
        yield from pages_by_key(cursor["keys"], self.progress)

    def census(self, stream: str, records: Sequence[Record]) -> dict[str, int]:
        """OA requests per title written (more than one: a doubled request the report shows)."""
        return {str(r["title"]): len(self.find(str(r["title"]))) for r in records} if stream == STREAM else {}
