"""Pushed events: Dataverse webhook posts and F&O data events, turned into nudges.

The HTTP functions answer by enqueuing, never by writing to the other service: a nudge
(nudge.py) per flow that reads the row named, delayed by `P2C_EVENTS_COALESCE_SECONDS`
so a burst for one row is read once. Nothing in a body is taken as the truth: the row is
read from its source (nudged.py), so a forged or stale event writes nothing new.

Who may post: the caller must present the key, as Dataverse sends a WebhookKey, "a query
string using code as the key" (learn.microsoft.com, "Register a WebHook", Authentication
options), or as the Functions host takes a function key (`code` or `x-functions-key`). The
host checks its function key first (auth_level FUNCTION); this module checks it again
against `P2C_EVENTS_KEY` in constant time, so the check holds wherever the app runs and is
tested. The key is never logged, echoed, or put in a span.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from p2c_core import nudge as nudges
from p2c_core.clients.keys import is_guid
from p2c_core.flow import Flow
from p2c_core.nudge import Nudge, Op

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.events")

# Dataverse sends at most 256 KB and drops the images and input parameters past that
# (`x-ms-dynamics-msg-size-exceeded`, "Use WebHooks to create external handlers for server
# events"); an F&O data event carries one record. Anything much larger is not theirs.
MAX_BODY_BYTES = 320 * 1024
MESSAGES = ("Create", "Update", "Delete")
# F&O data events: created, updated, deleted ("Data events", business events documentation).
FNO_EVENT_TYPES: dict[str, Op] = {"Created": "Create", "Updated": "Update", "Deleted": "Delete"}
_DATE = re.compile(r"^/Date\((-?\d{1,15})([+-]\d{4})?\)/$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")


class BadEvent(ValueError):
    """A body p2c does not take: 400, with this reason in the log (never the body)."""


def key_presented(params: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    return params.get("code") or headers.get("x-functions-key")


def authorized(expected: SecretStr | None, params: Mapping[str, str], headers: Mapping[str, str]) -> bool:
    """The caller presented the events key (compared in constant time); no key set: nobody."""
    given = key_presented(params, headers)
    if expected is None or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def logical_name(entity_set: str) -> str:
    """A Dataverse table's logical name from its entity set, the logical collection name of
    the tables p2c reads (accounts -> account, salesorderdetails -> salesorderdetail)."""
    return entity_set[:-3] + "y" if entity_set.endswith("ies") else entity_set.removesuffix("s")


def epoch(value: Any) -> float | None:
    """`/Date(1506409448000-0700)/` (WCF JSON dates: ms since 1970 UTC, the offset aside) as epoch s."""
    match = _DATE.match(value) if isinstance(value, str) else None
    return int(match.group(1)) / 1000 if match else None


def reads(flows: Iterable[Flow], service: str) -> dict[str, list[tuple[Flow, bool]]]:
    """Table -> the enabled flows that read it, and whether as their documents' lines."""
    out: dict[str, list[tuple[Flow, bool]]] = {}
    for flow in flows:
        if flow.source.service != service:
            continue
        out.setdefault(flow.source.entity_set, []).append((flow, False))
        if flow.lines is not None and flow.lines.source is not None:
            out.setdefault(flow.lines.source, []).append((flow, True))
    return out


def _object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise BadEvent(f"body of {len(body)} bytes is over the {MAX_BODY_BYTES}-byte limit")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadEvent("body is not JSON") from None
    if not isinstance(data, dict):
        raise BadEvent("body is not a JSON object")
    return data


def _reference_id(value: Any) -> str | None:
    """The Id of an EntityReference value (a lookup in Attributes), if it is one."""
    if isinstance(value, dict) and is_guid(str(value.get("Id", ""))):
        return str(value["Id"]).lower()
    return None


def _parent_of(context: dict[str, Any], column: str) -> str | None:
    """A line's document id, from its Target or post-image, when the event carries them."""
    holders: list[Any] = []
    for group in ("InputParameters", "PostEntityImages", "PreEntityImages"):
        for item in context.get(group) or []:
            if isinstance(item, dict) and isinstance(item.get("value"), dict):
                holders.append(item["value"])
    for entity in holders:
        for attribute in entity.get("Attributes") or []:
            if isinstance(attribute, dict) and attribute.get("key") == column:
                return _reference_id(attribute.get("value"))
    return None


def dataverse_nudges(data: dict[str, Any], flows: Iterable[Flow], received: float) -> list[Nudge]:
    """A RemoteExecutionContext (the webhook body) as nudges for the flows that read its table."""
    message, table, row_id = data.get("MessageName"), data.get("PrimaryEntityName"), data.get("PrimaryEntityId")
    if message not in MESSAGES:
        raise BadEvent(f"MessageName is not one of {', '.join(MESSAGES)}")
    op: Op = message
    if not isinstance(table, str) or not _NAME.match(table):
        raise BadEvent("PrimaryEntityName is not a table name")
    if not isinstance(row_id, str) or not is_guid(row_id):
        raise BadEvent("PrimaryEntityId is not a GUID")
    changed = epoch(data.get("OperationCreatedOn"))
    by_table = {logical_name(t): found for t, found in reads(flows, "dataverse").items()}
    out: list[Nudge] = []
    for flow, is_line in by_table.get(table, []):
        entity_set = flow.source.entity_set
        ident: str | None = row_id.lower()
        if is_line:
            assert flow.lines is not None and flow.lines.source is not None
            parent = _parent_of(data, flow.lines.source_parent)
            if parent is None and message == "Delete":
                continue  # the document is recalculated, an Update of its own; else the poll sees it
            ident, is_line = (parent, False) if parent else (ident, True)
            entity_set = entity_set if parent else flow.lines.source
        out.append(Nudge(flow=flow.name, table=entity_set, id=ident, op=op, line=is_line,
                         changed=changed, received=received))  # fmt: skip
    return out


def fno_nudges(data: dict[str, Any], flows: Iterable[Flow], company: str, received: float) -> list[Nudge]:
    """An F&O data event (the entity record, with the business event fields) as nudges."""
    control = data.get("ControlNumber")
    if isinstance(control, bool) or not isinstance(control, int):
        raise BadEvent("ControlNumber is not a number")
    entity, kind = data.get("EntityName"), data.get("EventType")
    if not isinstance(entity, str) or not _NAME.match(entity):
        raise BadEvent("EntityName is not an entity name")
    if kind not in FNO_EVENT_TYPES:
        raise BadEvent(f"EventType is not one of {', '.join(FNO_EVENT_TYPES)}")
    legal = data.get("dataAreaId") or data.get("BusinessEventLegalEntity")
    if legal is not None and (not isinstance(legal, str) or not re.fullmatch(r"[A-Za-z0-9]{1,4}", legal)):
        raise BadEvent("dataAreaId is not a legal entity id")
    if legal is not None and legal.lower() != company:
        log.info("F&O event for legal entity %s ignored: p2c syncs %s", legal.lower(), company)
        return []
    out: list[Nudge] = []
    for flow, is_line in reads(flows, "fno").get(entity, []):
        column = flow.lines.source_parent if is_line and flow.lines is not None else flow.source.key
        key = data.get(column)
        if not isinstance(key, str) or not key.strip() or len(key) > 256:
            raise BadEvent(f"{entity} event has no {column}")
        out.append(Nudge(flow=flow.name, table=flow.source.entity_set, key=key, company=company,
                         op=FNO_EVENT_TYPES[kind], changed=epoch(data.get("EventTime")), received=received,
                         version=control))  # fmt: skip
    return out


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"body": json.dumps(body), "status_code": status, "mimetype": "application/json"}


def receive(
    rt: Runtime, service: str, body: bytes, params: Mapping[str, str], headers: Mapping[str, str]
) -> dict[str, Any]:
    """One POST from `service` ("dataverse" | "fno"): 202 with the nudges enqueued, or why not."""
    settings = rt.settings
    if not authorized(settings.events_key, params, headers):
        log.warning("%s event refused: %s", service, "wrong key" if key_presented(params, headers) else "no key")
        return _answer(401, {"error": "unauthorized"})
    if not settings.events_enabled:
        log.warning("%s event refused: push is off (P2C_EVENTS_ENABLED)", service)
        return _answer(404, {"error": "push is off"})
    flows = [rt.flow(f.name) for f in _all_flows() if settings.flow(f.name).enabled]
    received = time.time()
    try:
        data = _object(body)
        if service == "dataverse":
            found = dataverse_nudges(data, flows, received)
        else:
            found = fno_nudges(data, flows, settings.fno_company, received)
    except (BadEvent, ValueError) as exc:
        log.warning("%s event refused (400): %s", service, exc)
        return _answer(400, {"error": str(exc)})
    queue = rt.storage.queue(nudges.QUEUE)
    delay = round(settings.events_coalesce_seconds)
    for found_nudge in found:
        queue.send_message(nudges.seal(found_nudge, rt.signing_key), visibility_timeout=delay or None)
    if not found:
        log.info("%s event for a table no enabled flow reads: nothing to do", service)
    return _answer(202, {"nudged": len(found)})


def _all_flows() -> list[Flow]:
    from p2c_core.flows import all_flows

    return list(all_flows())
