"""`p2c events register | unregister | status`: the Dataverse webhook p2c's event function
needs, through the Web API, and what to activate in F&O.

Dataverse (learn.microsoft.com, ServiceEndpoint and SdkMessageProcessingStep references;
"Register a WebHook"): one `serviceendpoint` named `p2c live sync` with contract 8 (Webhook),
authtype 4 (Webhook Key: sent as `?code=`), `url` the function's and `authvalue` the key; and
per table the enabled flows read (their documents' lines too) one `sdkmessageprocessingstep`
per message Create, Update and Delete: mode 1 (Asynchronous), stage 40 (Post-operation),
supporteddeployment 0 (Server Only), asyncautodelete, and for Update `filteringattributes`
the columns p2c reads, so an edit of any other column sends nothing. Idempotent: what exists
is kept, a step whose columns changed is updated, a step for a table no flow reads any more
removed. The key is sent, never printed.

F&O has no OData for activating data events: `register` says which to activate (Created,
Updated, Deleted per entity) and the endpoint to configure, per legal entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from p2c_core.events import logical_name
from p2c_core.flow import Flow
from p2c_core.sources import VERSION_COLUMN

if TYPE_CHECKING:
    from p2c_core.clients.odata import ODataClient
    from p2c_core.runtime import Runtime

ENDPOINT_NAME = "p2c live sync"
MESSAGES = ("Create", "Update", "Delete")
WEBHOOK, WEBHOOK_KEY, JSON_FORMAT = 8, 4, 2
ASYNCHRONOUS, POST_OPERATION, SERVER_ONLY = 1, 40, 0
_NOT_FILTERING = {VERSION_COLUMN, "modifiedon"}


@dataclass(frozen=True)
class Step:
    table: str  # logical name
    message: str
    filtering: str | None

    @property
    def name(self) -> str:
        return f"p2c: {self.message} of {self.table}"


def _attribute(column: str) -> str:
    return column[1:-6] if column.startswith("_") and column.endswith("_value") else column


def tables(rt: Runtime) -> dict[str, set[str]]:
    """Logical name -> the columns the enabled Dataverse-source flows read of it."""
    out: dict[str, set[str]] = {}
    for flow in _dataverse_flows(rt):
        reader = rt.reader(flow)
        out.setdefault(logical_name(flow.source.entity_set), set()).update(reader.select())
        lines = flow.lines
        if lines is not None and lines.source is not None:
            columns = {lines.source_parent, *lines.source_columns()}
            columns.update(lookup.value_column for lookup in lines.lookups)
            out.setdefault(logical_name(lines.source), set()).update(columns)
    return {table: {_attribute(c) for c in cols} - _NOT_FILTERING for table, cols in out.items()}


def _dataverse_flows(rt: Runtime) -> list[Flow]:
    from p2c_core.flows import all_flows

    flows = [rt.flow(f.name) for f in all_flows() if rt.settings.flow(f.name).enabled]
    return [f for f in flows if f.source.service == "dataverse"]


def wanted_steps(rt: Runtime) -> list[Step]:
    steps = []
    for table, columns in sorted(tables(rt).items()):
        for message in MESSAGES:
            steps.append(Step(table, message, ",".join(sorted(columns)) if message == "Update" else None))
    return steps


def _one(odata: ODataClient, entity_set: str, filter: str, select: str) -> dict[str, Any] | None:
    found = odata.get_json(entity_set, params={"$filter": filter, "$select": select}).get("value") or []
    return found[0] if found else None


def _created_id(response: Any) -> str:
    entity = response.headers.get("OData-EntityId", "")
    return entity.rsplit("(", 1)[-1].rstrip(")")


def _existing(odata: ODataClient) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    endpoint = _one(odata, "serviceendpoints", f"name eq '{ENDPOINT_NAME}'", "serviceendpointid,name,url")
    if endpoint is None:
        return None, []
    steps = odata.get_json("sdkmessageprocessingsteps", params={
        "$filter": f"_eventhandler_value eq {endpoint['serviceendpointid']}",
        "$select": "sdkmessageprocessingstepid,name,filteringattributes",
    }).get("value") or []  # fmt: skip
    return endpoint, steps


def register(rt: Runtime, url: str, *, dry_run: bool) -> dict[str, Any]:
    """Create what is missing, update what changed, remove what no flow needs; what was done."""
    if rt.settings.events_key is None:
        raise ValueError("P2C_EVENTS_KEY is not set: the webhook needs the key the event function checks")
    odata = rt.dataverse.odata
    endpoint, steps = _existing(odata)
    report: dict[str, Any] = {"dry_run": dry_run, "endpoint": {"name": ENDPOINT_NAME, "url": url}, "steps": []}
    body = {"name": ENDPOINT_NAME, "url": url, "contract": WEBHOOK, "authtype": WEBHOOK_KEY,
            "authvalue": rt.settings.events_key.get_secret_value(), "messageformat": JSON_FORMAT}  # fmt: skip
    if endpoint is None:
        report["endpoint"]["action"] = "create"
        endpoint_id = None if dry_run else _created_id(odata.request("POST", "serviceendpoints", json_body=body))
    else:
        endpoint_id = endpoint["serviceendpointid"]
        report["endpoint"]["action"] = "keep" if endpoint.get("url") == url else "update"
        if not dry_run:  # the key too: it may have been rotated (it cannot be read back to compare)
            odata.request("PATCH", f"serviceendpoints({endpoint_id})", json_body=body)
    have = {s["name"]: s for s in steps}
    wanted = wanted_steps(rt)
    for step in wanted:
        existing = have.get(step.name)
        action = "create" if existing is None else (
            "keep" if (existing.get("filteringattributes") or None) == step.filtering else "update")  # fmt: skip
        report["steps"].append({"name": step.name, "table": step.table, "message": step.message,
                                "filteringattributes": step.filtering, "action": action})  # fmt: skip
        if dry_run or action == "keep":
            continue
        if existing is not None:
            odata.request("PATCH", f"sdkmessageprocessingsteps({existing['sdkmessageprocessingstepid']})",
                          json_body={"filteringattributes": step.filtering})  # fmt: skip
        else:
            odata.request("POST", "sdkmessageprocessingsteps", json_body=_step_body(odata, step, endpoint_id))
    for name, old in have.items():
        if name not in {s.name for s in wanted}:
            report["steps"].append({"name": name, "action": "remove"})
            if not dry_run:
                odata.request("DELETE", f"sdkmessageprocessingsteps({old['sdkmessageprocessingstepid']})")
    report["fno"] = fno_instructions(rt, url)
    return report


def _step_body(odata: ODataClient, step: Step, endpoint_id: str | None) -> dict[str, Any]:
    message = _one(odata, "sdkmessages", f"name eq '{step.message}'", "sdkmessageid,name")
    if message is None:
        raise ValueError(f"Dataverse has no message {step.message}")
    found = _one(odata, "sdkmessagefilters",
                 f"primaryobjecttypecode eq '{step.table}' and _sdkmessageid_value eq {message['sdkmessageid']}",
                 "sdkmessagefilterid")  # fmt: skip
    if found is None:
        raise ValueError(f"{step.message} of {step.table} takes no steps (no sdkmessagefilter)")
    body: dict[str, Any] = {
        "name": step.name, "mode": ASYNCHRONOUS, "stage": POST_OPERATION, "rank": 1,
        "supporteddeployment": SERVER_ONLY, "asyncautodelete": True,
        "sdkmessageid@odata.bind": f"/sdkmessages({message['sdkmessageid']})",
        "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({found['sdkmessagefilterid']})",
        "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint_id})",
    }  # fmt: skip
    if step.filtering:
        body["filteringattributes"] = step.filtering
    return body


def unregister(rt: Runtime, *, dry_run: bool) -> dict[str, Any]:
    odata = rt.dataverse.odata
    endpoint, steps = _existing(odata)
    report: dict[str, Any] = {"dry_run": dry_run, "steps": [{"name": s["name"], "action": "remove"} for s in steps]}
    report["endpoint"] = {"name": ENDPOINT_NAME, "action": "remove" if endpoint else "absent"}
    if not dry_run and endpoint is not None:
        for step in steps:
            odata.request("DELETE", f"sdkmessageprocessingsteps({step['sdkmessageprocessingstepid']})")
        odata.request("DELETE", f"serviceendpoints({endpoint['serviceendpointid']})")
    return report


def status(rt: Runtime) -> dict[str, Any]:
    endpoint, steps = _existing(rt.dataverse.odata)
    wanted = {s.name: s for s in wanted_steps(rt)}
    have = {s["name"]: s for s in steps}
    return {
        "push": rt.settings.events_enabled,
        "endpoint": None if endpoint is None else {"name": endpoint["name"], "url": endpoint.get("url")},
        "steps": len(steps),
        "missing": sorted(set(wanted) - set(have)),
        "outdated": sorted(
            n for n, s in wanted.items() if n in have and (have[n].get("filteringattributes") or None) != s.filtering
        ),
        "extra": sorted(set(have) - set(wanted)),
    }


def fno_instructions(rt: Runtime, url: str) -> list[dict[str, Any]]:
    """Per legal entity, the data events to activate and the endpoint to point them at."""
    from p2c_core.flows import all_flows

    entities: list[str] = []
    for flow in (rt.flow(f.name) for f in all_flows() if rt.settings.flow(f.name).enabled):
        if flow.source.service != "fno":
            continue
        entities.append(flow.source.entity_set)
        if flow.lines is not None and flow.lines.source is not None:
            entities.append(flow.lines.source)
    endpoint = url.replace("/events/dataverse", "/events/fno")
    return [{"legal_entity": rt.settings.fno_company, "entity": e, "events": ["Created", "Updated", "Deleted"],
             "endpoint": endpoint} for e in dict.fromkeys(entities)]  # fmt: skip
