"""Dataverse's event registration tables, as `p2c events register` uses them.

`serviceendpoints` (a webhook: contract 8 Webhook, authtype 4 Webhook Key, the key in
`authvalue`, which is never read back: IsValidForRead False), `sdkmessageprocessingsteps`
(message, filter, event handler, mode 1 Asynchronous, stage 40 Post-operation,
`filteringattributes`), and the read-only `sdkmessages` / `sdkmessagefilters` a step
names (learn.microsoft.com, ServiceEndpoint and SdkMessageProcessingStep table
references). Kept in memory: registrations are the sandbox's configuration, not its data.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from p2c_sandbox.query import DATAVERSE, QueryError, parse_filter
from p2c_sandbox.service import ServiceError, json_body, parse_path
from p2c_sandbox.store import Row

TABLES = ("serviceendpoints", "sdkmessageprocessingsteps", "sdkmessages", "sdkmessagefilters")
READ_ONLY = {"sdkmessages", "sdkmessagefilters"}
MESSAGES = ("Create", "Update", "Delete")
WEBHOOK, WEBHOOK_KEY, ASYNC, POST_OPERATION = 8, 4, 1, 40
CONTRACTS = range(1, 11)  # OneWay ... Managed Data Lake
AUTH_TYPES = range(1, 9)  # ACS ... Access Key
_NS = uuid.UUID("6f1c9a52-7a0f-4e55-9a57-0e6a0c3b8d21")
_HIDDEN = {"authvalue"}  # IsValidForRead False
_ENDPOINT_COLUMNS = {"name", "url", "contract", "authtype", "authvalue", "messageformat", "namespaceformat",
                     "description", "connectionmode", "userclaim", "path", "solutionnamespace"}  # fmt: skip
_STEP_COLUMNS = {"name", "mode", "stage", "rank", "filteringattributes", "supporteddeployment", "asyncautodelete",
                 "description", "statecode", "statuscode"}  # fmt: skip
_BINDS = {
    "sdkmessageid@odata.bind": ("sdkmessages", "_sdkmessageid_value"),
    "sdkmessagefilterid@odata.bind": ("sdkmessagefilters", "_sdkmessagefilterid_value"),
    "eventhandler_serviceendpoint@odata.bind": ("serviceendpoints", "_eventhandler_value"),
}


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "/".join(parts)))


def _bad(message: str) -> ServiceError:
    return ServiceError(400, "0x80060888", message)


@dataclass(frozen=True)
class Webhook:
    """Where one registered step posts: the endpoint's URL and key, the step's id and name."""

    url: str
    key: str | None
    step_id: str
    step_name: str


class Registrations:
    """The four tables; `webhooks` says which registered steps a committed write fires."""

    def __init__(self, logical_names: Iterable[str]) -> None:
        self.lock = threading.Lock()
        self.rows: dict[str, dict[str, Row]] = {table: {} for table in TABLES}
        for message in MESSAGES:
            message_id = _id("message", message)
            self.rows["sdkmessages"][message_id] = {"sdkmessageid": message_id, "name": message}
            for logical in logical_names:
                filter_id = _id("filter", message, logical)
                self.rows["sdkmessagefilters"][filter_id] = {
                    "sdkmessagefilterid": filter_id, "primaryobjecttypecode": logical,
                    "_sdkmessageid_value": message_id, "iscustomprocessingstepallowed": True,
                }  # fmt: skip

    def webhooks(self, message: str, logical: str, changed: set[str] | None) -> list[Webhook]:
        """Enabled webhook steps on `message` for this table; an Update fires a step only when one
        of its filtering attributes is among the changed columns (or it names none)."""
        with self.lock:
            message_id = _id("message", message)
            filters = {k for k, f in self.rows["sdkmessagefilters"].items()
                       if f["primaryobjecttypecode"] == logical and f["_sdkmessageid_value"] == message_id}  # fmt: skip
            found: list[Webhook] = []
            for step in self.rows["sdkmessageprocessingsteps"].values():
                if step.get("_sdkmessagefilterid_value") not in filters or step.get("statecode", 0) != 0:
                    continue
                attributes = {a.strip() for a in (step.get("filteringattributes") or "").split(",") if a.strip()}
                if message == "Update" and attributes and changed is not None and not attributes & changed:
                    continue
                endpoint = self.rows["serviceendpoints"].get(step.get("_eventhandler_value") or "")
                if endpoint is None or endpoint.get("contract") != WEBHOOK or not endpoint.get("url"):
                    continue
                key = endpoint.get("authvalue") if endpoint.get("authtype") == WEBHOOK_KEY else None
                found.append(Webhook(endpoint["url"], key, step["sdkmessageprocessingstepid"], step.get("name", "")))
            return found

    # --- the Web API ---------------------------------------------------------------------

    def answer(self, request: Request, path: str, body: bytes, root: str) -> Response | None:
        address = parse_path(path.split("?", 1)[0])
        table = address.entity_set
        if table not in TABLES or address.rest:
            return None
        key = address.key if isinstance(address.key, str) else None
        if address.key is not None and key is None:
            raise _bad(f"{table} are addressed by their id")
        method = request.method
        if method == "GET":
            return self._read(request, table, key)
        if table in READ_ONLY:
            raise ServiceError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on {table}.")
        if method == "POST" and key is None:
            return self._create(table, json_body(body, _bad), root)
        if method == "PATCH" and key is not None:
            return self._update(table, key, json_body(body, _bad))
        if method == "DELETE" and key is not None:
            return self._delete(table, key)
        raise ServiceError(405, "0x80060888", f"The HTTP method '{method}' is not allowed here.")

    def _visible(self, row: Row, select: str | None) -> Row:
        shown = {k: v for k, v in row.items() if k not in _HIDDEN}
        if select:
            wanted = [c.strip() for c in select.split(",")]
            shown = {k: v for k, v in shown.items() if k in wanted or k.endswith("id")}
        return shown

    def _read(self, request: Request, table: str, key: str | None) -> Response:
        params = dict(request.query_params)
        with self.lock:
            if key is not None:
                row = self.rows[table].get(key.lower())
                if row is None:
                    raise ServiceError(404, "0x80040217", f"{table[:-1]} With Id = {key} Does Not Exist")
                return JSONResponse(self._visible(row, params.get("$select")))
            rows = list(self.rows[table].values())
        if params.get("$filter"):
            try:
                predicate = parse_filter(params["$filter"], DATAVERSE)
            except QueryError as exc:
                raise _bad(str(exc)) from None
            rows = [r for r in rows if predicate(r)]
        return JSONResponse({"value": [self._visible(r, params.get("$select")) for r in rows]})

    def _values(self, table: str, body: Row) -> Row:
        allowed = _ENDPOINT_COLUMNS if table == "serviceendpoints" else _STEP_COLUMNS
        out: Row = {}
        for name, value in body.items():
            if name in _BINDS and table == "sdkmessageprocessingsteps":
                target, column = _BINDS[name]
                ref = parse_path(str(value).lstrip("/").rsplit("/v9.2/", 1)[-1])
                if ref.entity_set != target or not isinstance(ref.key, str) or ref.key.lower() not in self.rows[target]:
                    raise ServiceError(404, "0x80040217", f"The @odata.bind reference '{value}' does not exist.")
                out[column] = ref.key.lower()
            elif name in allowed:
                out[name] = value
            else:
                raise _bad(f"Invalid property '{name}' was found in entity '{table[:-1]}'.")
        if "contract" in out and out["contract"] not in CONTRACTS:
            raise _bad(f"The value {out['contract']} of 'contract' is outside the valid range.")
        if "authtype" in out and out["authtype"] not in AUTH_TYPES:
            raise _bad(f"The value {out['authtype']} of 'authtype' is outside the valid range.")
        return out

    def _create(self, table: str, body: Row, root: str) -> Response:
        values = self._values(table, body)
        pk = f"{table[:-1]}id"
        with self.lock:
            new_id = str(uuid.uuid4())
            if table == "sdkmessageprocessingsteps":
                missing = [c for c in ("_sdkmessageid_value", "_eventhandler_value") if c not in values]
                if missing or not values.get("name"):
                    raise _bad("A step needs a name, sdkmessageid and an event handler.")
                values = {"mode": 0, "stage": POST_OPERATION, "rank": 1, "statecode": 0, "supporteddeployment": 0,
                          **values}  # fmt: skip
            elif not values.get("name"):
                raise _bad("A service endpoint needs a name.")
            self.rows[table][new_id] = {pk: new_id, **values}
        return Response(status_code=204, headers={"OData-EntityId": f"{root}{table}({new_id})"})

    def _update(self, table: str, key: str, body: Row) -> Response:
        values = self._values(table, body)
        with self.lock:
            row = self.rows[table].get(key.lower())
            if row is None:
                raise ServiceError(404, "0x80040217", f"{table[:-1]} With Id = {key} Does Not Exist")
            row.update(values)
        return Response(status_code=204)

    def _delete(self, table: str, key: str) -> Response:
        with self.lock:
            if self.rows[table].pop(key.lower(), None) is None:
                raise ServiceError(404, "0x80040217", f"{table[:-1]} With Id = {key} Does Not Exist")
            if table == "serviceendpoints":  # its steps go with it
                steps = self.rows["sdkmessageprocessingsteps"]
                for step_id in [k for k, s in steps.items() if s.get("_eventhandler_value") == key.lower()]:
                    del steps[step_id]
        return Response(status_code=204)
