"""钉钉 approvals (api.dingtalk.com v1.0 workflow; aliyun/dingtalk-sdk workflow_1_0 and oauth2_1_0).

Token: ``POST /v1.0/oauth2/accessToken`` ``{appKey, appSecret}`` → ``{accessToken, expireIn}`` (7200 s;
asking again inside the lifetime gives the same one), kept until a minute before it ends and
fetched again (up to three times a call) on ``InvalidAuthentication`` (400 in practice, 401 accepted too). Every call
carries ``x-acs-dingtalk-access-token``; errors come as ``{code, message, requestid}``.

Streams: ``workflow_request`` — write takes the approvals flow's records (``workflow`` = the
processCode, ``title``, ``fields`` ``[{name, value}]``) and starts an instance with ``POST
/v1.0/workflow/processInstances`` ``{originatorUserId, processCode, deptId, formComponentValues}``
(``deptId`` is documented as optional and is in practice required: the connection's ``dept_id``,
-1 for the root). DingTalk gives an instance no title of ours, so the tenant's form has a text
field for the hub's key (``key_field``, default 「HUB编号」) carrying the title; before a create and
after a lost answer the originator's instances of the last ``lookback_days`` (``POST
/v1.0/workflow/processes/instanceIds/query``, ≤ 20 a page, ``nextToken`` a string back and a
number forth) are read and matched on that field. Read (``{"keys": [instanceId, …]}``) gives each
instance's progress from ``GET /v1.0/workflow/processInstances?processInstanceId=``: ``status``
RUNNING / TERMINATED / COMPLETED, ``result`` agree / refuse, the operation records' remarks.

A tenant still on the legacy server API sets ``extra.api: topapi`` (:class:`DingTalkTopApi`): the
token from ``GET https://oapi.dingtalk.com/gettoken?appkey=&appsecret=`` → ``{errcode, access_token,
expires_in}``, every call with ``?access_token=``, ``POST /topapi/processinstance/create``
``{process_code, originator_user_id, dept_id, form_component_values}`` → ``{errcode, process_instance_id}``,
``/topapi/processinstance/listids`` ``{process_code, start_time, size ≤ 20, cursor, userid_list}`` →
``{result: {list, next_cursor}}`` and ``/topapi/processinstance/get`` ``{process_instance_id}`` →
``{process_instance: {status, result, form_component_values, operation_records, tasks, finish_time}}``
(protocol notes; the legacy clients fastwego/dingding and the PHP and Java samples the notes cite).
Errors are ``{errcode, errmsg}`` with HTTP 200: 40014 (不合法的access_token) and 42001 (access_token
expired) get a new token; any other code is a refusal of the record on a create and a configuration
error on a read (the codes of a missing instance are not documented for the legacy API, so a deleted
instance is a configuration error there, visible, rather than a guess).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterator, Mapping, Sequence

from connectors.http import HttpClient, create_once, pages_by_key, write_each
from hub.errors import ConfigurationError, DataError, TransientError
from hub.types import ConnectionInfo, Page, Record, WriteResult

log = logging.getLogger("connectors.dingtalk_approval")

DEFAULT_HOST = "https://api.dingtalk.com"
TOKEN = "/v1.0/oauth2/accessToken"
INSTANCES = "/v1.0/workflow/processInstances"
LIST_IDS = "/v1.0/workflow/processes/instanceIds/query"
STREAM = "workflow_request"
#: documented 400 codes of a start that are the record's, not the configuration's
DATA_CODES = {"processInstanceInvalidParameter", "invalidParameter", "formConverterError", "illegalComponent",
              "targetSelectApproverMissing"}
CONFIG_CODES = {"processCodeError", "needAuth", "invalidAgentId", "benefitStatusInvalid", "invalidClientIdOrSecret",
                "Forbidden.AccessDenied.AccessTokenPermissionDenied", "Forbidden.AccessDenied.IpNotInWhiteList"}
AUTH_CODES = {"InvalidAuthentication"}
#: an instance DingTalk no longer has (deleted in the admin console): its request is over, not retried
GONE_CODES = {"processInstanceNotExist", "processInstanceIdError"}
TOKEN_MARGIN_S = 60
#: a refused token is fetched again up to this many times per call before it is the app's configuration
TOKEN_TRIES = 3


class DingTalkApprovalApi:
    """One DingTalk app (connection: login = appKey, password = appSecret; extra ``originator_user_id``,
    ``dept_id``, optional ``key_field``, ``lookback_days``)."""

    system = "dingtalk"

    def __init__(self, conn: ConnectionInfo) -> None:
        if not conn.login or not conn.password:
            raise ConfigurationError(f"connection {conn.conn_id!r}: login must be the DingTalk appKey and password its appSecret")
        self.conn = conn
        self.originator = str(conn.extra.get("originator_user_id") or "").strip()
        if not self.originator or conn.extra.get("dept_id") in (None, ""):
            raise ConfigurationError(f"connection {conn.conn_id!r}: extra.originator_user_id and extra.dept_id (the "
                                     "originator's department, -1 for the root) are required")
        self.dept_id = int(conn.extra["dept_id"])
        self.key_field = str(conn.extra.get("key_field") or "HUB编号")
        self.lookback_ms = int(float(conn.extra.get("lookback_days") or 30) * 86_400_000)
        base = conn.base_url() if conn.host else DEFAULT_HOST
        self.http = HttpClient(base, secrets=conn.secrets(), **conn.http_retry())
        self._token: tuple[str, float] | None = None

    # --- auth ---------------------------------------------------------------------------------------

    def token(self) -> str:
        if self._token and self._token[1] > time.time():
            return self._token[0]
        resp = self.http.request("POST", TOKEN, json_body={"appKey": self.conn.login, "appSecret": self.conn.password},
                                 idempotent=True)
        body = resp.body if isinstance(resp.body, dict) else {}
        if resp.status != 200 or not body.get("accessToken"):
            raise ConfigurationError(f"DingTalk refused a token for app {self.conn.login}: {body.get('code')} "
                                     f"{body.get('message', '')}".strip())
        self._token = (str(body["accessToken"]), time.time() + max(1, int(body.get("expireIn") or 7200) - TOKEN_MARGIN_S))
        return self._token[0]

    def _call(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
              idempotent: bool | None = None) -> Any:
        for attempt in range(1, TOKEN_TRIES + 1):
            resp = self.http.request(method, path, params=params, json_body=body, idempotent=idempotent,
                                     headers={"x-acs-dingtalk-access-token": self.token()})
            data = resp.body if isinstance(resp.body, dict) else {}
            if resp.status == 200:
                return data
            code = str(data.get("code") or "")
            if (code in AUTH_CODES or resp.status == 401) and attempt < TOKEN_TRIES:
                self._token = None
                continue
            message = f"DingTalk {path}: HTTP {resp.status} {code} {data.get('message', '')}".strip()
            if code in DATA_CODES or code in GONE_CODES:
                raise DataError(message)
            if code in CONFIG_CODES or code in AUTH_CODES or resp.status in (401, 403):
                raise ConfigurationError(message)
            raise TransientError(message)
        return None

    def check(self) -> None:
        self.token()

    # --- instances ----------------------------------------------------------------------------------

    def _key_of(self, instance: Mapping[str, Any]) -> str | None:
        for f in instance.get("formComponentValues") or []:
            if f.get("name") == self.key_field:
                return str(f.get("value") or "")
        return None

    def instance(self, instance_id: str) -> dict[str, Any]:
        data = self._call("GET", INSTANCES, params={"processInstanceId": instance_id})
        if not isinstance(data.get("result"), dict):
            raise TransientError(f"DingTalk {INSTANCES} {instance_id}: no result in the answer")
        return data["result"]

    def keys(self, process_code: str) -> dict[str, str]:
        """key field value → instance id, over the originator's instances of ``process_code`` of the
        last ``lookback_days`` (one listing, one read per instance)."""
        out: dict[str, str] = {}
        for i in self._ids(process_code):
            key = self._key_of(self.instance(i))
            if key:
                out.setdefault(key, i)
        return out

    def start(self, record: Mapping[str, Any]) -> str:
        values = [{"name": f["name"], "value": f["value"]} for f in record["fields"]]
        values.append({"name": self.key_field, "value": record["title"]})
        data = self._call("POST", INSTANCES, idempotent=False, body={
            "originatorUserId": self.originator, "processCode": str(record["workflow"]), "deptId": self.dept_id,
            "formComponentValues": values})
        if not data.get("instanceId"):
            raise TransientError(f"DingTalk {INSTANCES}: no instanceId in the answer")
        return str(data["instanceId"])

    def write(self, stream: str, records: Sequence[Record]) -> list[WriteResult]:
        """Each record started once: the instances already there are listed once per process for the
        chunk; after a lost answer the listing is read again before the next try."""
        if stream != STREAM:
            raise ConfigurationError(f"DingTalk approvals have no writable stream {stream!r} (only {STREAM})")
        known: dict[str, dict[str, str]] = {}

        def lookup(rec: Record, fresh: list[bool]) -> str | None:
            code = str(rec["workflow"])
            if code not in known or fresh[0]:
                known[code] = self.keys(code)
            fresh[0] = True           # a second look (after a lost answer) reads DingTalk again
            return known[code].get(rec["title"])

        def one(rec: Record) -> WriteResult:
            flag = [False]
            status, native = create_once(lambda: lookup(rec, flag), lambda: self.start(rec))
            known.setdefault(str(rec["workflow"]), {})[rec["title"]] = str(native)
            return WriteResult(str(rec["_key"]), status, native_key=str(native))

        return [write_each(str(rec["_key"]), lambda rec=rec: one(rec)) for rec in records]

    def census(self, stream: str, records: Sequence[Record]) -> dict[str, int]:
        if stream != STREAM:
            return {}
        held: dict[str, int] = {}
        for code in {str(r["workflow"]) for r in records}:
            listed = [(self._key_of(self.instance(i)), i) for i in self._ids(code)]
            for k, _ in listed:
                held[k or ""] = held.get(k or "", 0) + 1
        return {str(r["title"]): held.get(str(r["title"]), 0) for r in records}

    def _ids(self, process_code: str) -> list[str]:
        start, token, out = int(time.time() * 1000) - self.lookback_ms, 0, []
        for _ in range(500):
            data = self._call("POST", LIST_IDS, idempotent=True, body={
                "processCode": process_code, "startTime": start, "nextToken": token, "maxResults": 20,
                "userIds": [self.originator]})
            result = data.get("result") or {}
            out += list(result.get("list") or [])
            nxt = result.get("nextToken")
            if nxt in (None, ""):
                break
            token = int(nxt)
        return out

    def progress(self, instance_id: str) -> dict[str, Any]:
        """Where an instance stands; one DingTalk no longer has is ``status`` DELETED."""
        try:
            inst = self.instance(instance_id)
        except DataError as exc:
            if not any(code in str(exc) for code in GONE_CODES):
                raise
            return {"request_id": str(instance_id), "status": "DELETED", "result": "", "node": "",
                    "last_operator": "", "last_action": "", "opinion": "deleted in DingTalk", "operated_on": ""}
        records = inst.get("operationRecords") or []
        latest = records[-1] if records else {}
        running = [t for t in inst.get("tasks") or [] if t.get("status") in ("RUNNING", "NEW")]
        return {"request_id": str(instance_id), "status": inst.get("status") or "", "result": inst.get("result") or "",
                "node": ",".join(sorted({str(t.get("userId")) for t in running})) or inst.get("status") or "",
                "last_operator": latest.get("showName") or latest.get("userId") or "",
                "last_action": latest.get("type") or "", "opinion": str(latest.get("remark") or "").strip(),
                "operated_on": str(inst.get("finishTime") or latest.get("date") or "")[:10]}

    def read(self, stream: str, cursor: Any = None) -> Iterator[Page]:
        if stream != STREAM or not isinstance(cursor, dict) or "keys" not in cursor:
            raise ConfigurationError(f"DingTalk reads {STREAM} by instance ids ({{'keys': [...]}}), got {stream!r}")
        yield from pages_by_key(cursor["keys"], self.progress)


LEGACY_HOST = "https://oapi.dingtalk.com"
LEGACY_TOKEN = "/gettoken"
LEGACY_CREATE = "/topapi/processinstance/create"
LEGACY_GET = "/topapi/processinstance/get"
LEGACY_LIST_IDS = "/topapi/processinstance/listids"
#: 40014 不合法的access_token, 42001 access_token 超时
LEGACY_TOKEN_CODES = {40014, 42001}


class DingTalkTopApi(DingTalkApprovalApi):
    """The same app on DingTalk's legacy ``topapi`` (``extra.api: topapi``): the calls and field names
    of the old server API, the instance read back in the v1.0 shape so that progress, keys and
    decisions are the same code."""

    def __init__(self, conn: ConnectionInfo) -> None:
        super().__init__(conn)
        if not conn.host:
            self.http = HttpClient(LEGACY_HOST, secrets=conn.secrets(), **conn.http_retry())

    def token(self) -> str:
        if self._token and self._token[1] > time.time():
            return self._token[0]
        resp = self.http.request("GET", LEGACY_TOKEN, params={"appkey": self.conn.login, "appsecret": self.conn.password})
        body = resp.body if isinstance(resp.body, dict) else {}
        if int(body.get("errcode", -1)) != 0 or not body.get("access_token"):
            raise ConfigurationError(f"DingTalk refused a token for app {self.conn.login}: {body.get('errcode')} "
                                     f"{body.get('errmsg', '')}".strip())
        self._token = (str(body["access_token"]),
                       time.time() + max(1, int(body.get("expires_in") or 7200) - TOKEN_MARGIN_S))
        return self._token[0]

    def _top(self, path: str, body: dict[str, Any], *, idempotent: bool, refusal: type[Exception]) -> dict[str, Any]:
        for attempt in range(1, TOKEN_TRIES + 1):
            resp = self.http.request("POST", path, params={"access_token": self.token()}, json_body=body,
                                     idempotent=idempotent)
            data = resp.body if isinstance(resp.body, dict) else {}
            code = int(data.get("errcode", -1)) if str(data.get("errcode", "")).lstrip("-").isdigit() else -1
            if resp.status == 200 and code == 0:
                return data
            if code in LEGACY_TOKEN_CODES and attempt < TOKEN_TRIES:
                self._token = None
                continue
            message = f"DingTalk {path}: HTTP {resp.status} errcode {data.get('errcode')} {data.get('errmsg', '')}".strip()
            if resp.status != 200 or code == -1:
                raise TransientError(message)
            raise (ConfigurationError if code in LEGACY_TOKEN_CODES else refusal)(message)
        raise AssertionError("unreachable")

    def instance(self, instance_id: str) -> dict[str, Any]:
        data = self._top(LEGACY_GET, {"process_instance_id": instance_id}, idempotent=True,
                         refusal=ConfigurationError)
        inst = data.get("process_instance")
        if not isinstance(inst, dict):
            raise TransientError(f"DingTalk {LEGACY_GET} {instance_id}: no process_instance in the answer")
        return {"status": inst.get("status"), "result": inst.get("result"), "finishTime": inst.get("finish_time"),
                "formComponentValues": inst.get("form_component_values") or [],
                "operationRecords": [{"userId": r.get("userid"), "date": r.get("date"), "type": r.get("operation_type"),
                                      "result": r.get("operation_result"), "remark": r.get("remark")}
                                     for r in inst.get("operation_records") or []],
                "tasks": [{"userId": t.get("userid"), "status": t.get("task_status")} for t in inst.get("tasks") or []]}

    def start(self, record: Mapping[str, Any]) -> str:
        values = [{"name": f["name"], "value": f["value"]} for f in record["fields"]]
        values.append({"name": self.key_field, "value": record["title"]})
        data = self._top(LEGACY_CREATE, {"process_code": str(record["workflow"]), "originator_user_id": self.originator,
                                         "dept_id": self.dept_id, "form_component_values": values},
                         idempotent=False, refusal=DataError)
        if not data.get("process_instance_id"):
            raise TransientError(f"DingTalk {LEGACY_CREATE}: no process_instance_id in the answer")
        return str(data["process_instance_id"])

    def _ids(self, process_code: str) -> list[str]:
        start, cursor, out = int(time.time() * 1000) - self.lookback_ms, 0, []
        for _ in range(500):
            data = self._top(LEGACY_LIST_IDS, {"process_code": process_code, "start_time": start, "size": 20,
                                               "cursor": cursor, "userid_list": self.originator},
                             idempotent=True, refusal=ConfigurationError)
            result = data.get("result") or {}
            out += [str(i) for i in result.get("list") or []]
            nxt = result.get("next_cursor")
            if nxt in (None, ""):
                break
            cursor = int(nxt)
        return out


def approval_api(conn: ConnectionInfo) -> DingTalkApprovalApi:
    """The app's API as its connection says: ``extra.api`` ``v1`` (default) or ``topapi`` (legacy)."""
    dialect = str(conn.extra.get("api") or "v1").lower()
    if dialect not in ("v1", "topapi"):
        raise ConfigurationError(f"connection {conn.conn_id!r}: extra.api is v1 (api.dingtalk.com) or topapi "
                                 f"(oapi.dingtalk.com), not {dialect!r}")
    return DingTalkTopApi(conn) if dialect == "topapi" else DingTalkApprovalApi(conn)
