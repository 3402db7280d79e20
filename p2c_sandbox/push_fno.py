"""F&O data events from the sandbox: activated per entity and event (the stand-in for
System administration > Business events > Data event catalog > Activate), sent after
every committed write to the endpoint each activation names.

The payload is the entity record with the business event fields around it ("Data events":
"the payload of the event contains the corresponding entity record"): BusinessEventId,
BusinessEventLegalEntity, ControlNumber (one counter, increasing), EventId, EventTime
(`/Date(ms)/`), MajorVersion, MinorVersion, and EntityName / EventType naming what changed.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from p2c_sandbox.push import PushAdmin, Sender, send_fno, wcf_date
from p2c_sandbox.store import Row, Store

EVENTS = ("Created", "Updated", "Deleted")


@dataclass(frozen=True)
class Activation:
    entity: str
    event: str
    endpoint: str
    # A company-specific data event activated in one legal entity, or None: all of them.
    company: str | None = None


class FnoPush(PushAdmin):
    def __init__(self, store: Store, entities: set[str]) -> None:
        self.entities = entities
        self.activations: list[Activation] = []
        self.lock = threading.Lock()
        self.sender = Sender("fno")
        self._control = itertools.count(5637144576)  # a RecId-like start, as F&O numbers
        self.store = store

    def written(self, entity: str, pk: str, row: Row, event: str) -> None:
        company = str(row.get("dataAreaId") or "").lower() or None
        with self.lock:
            targets = [a for a in self.activations if a.entity == entity and a.event == event
                       and (a.company is None or a.company == company)]  # fmt: skip
        for activation in targets:
            payload = self.payload(entity, event, row, company)
            self.sender.event(lambda _oversized, url=activation.endpoint, p=payload: send_fno(self.sender, url, p))

    def payload(self, entity: str, event: str, row: Row, company: str | None) -> dict[str, Any]:
        now = time.time()
        return {
            "BusinessEventId": f"{entity}_{event}",
            "BusinessEventLegalEntity": (company or "").upper(),
            "ContextRecordSubject": "",
            "ControlNumber": next(self._control),
            "EventId": str(uuid.uuid4()).upper(),
            "EventTime": wcf_date(now),
            "EventTimeIso8601": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "InitiatingUserAADObjectId": "00000000-0000-0000-0000-000000000000",
            "MajorVersion": 0,
            "MinorVersion": 0,
            "ParentContextRecordSubjects": [],
            "EntityName": entity,
            "EventType": event,
            **row,
        }

    # --- /_sandbox/data-events and /_sandbox/push --------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/data-events", self.list_activations, methods=["GET"]),
            Route("/_sandbox/data-events", self.activate, methods=["POST"]),
            Route("/_sandbox/data-events", self.deactivate, methods=["DELETE"]),
            *self.push_routes(),
        ]

    async def list_activations(self, request: Request) -> Response:
        with self.lock:
            return JSONResponse({"value": [asdict(a) for a in self.activations]})

    async def activate(self, request: Request) -> Response:
        """{"entity": "CustomersV3", "events": ["Created", "Updated"], "endpoint": url, "company": "usmf"}."""
        try:
            data = json.loads(await request.body() or b"{}")
            entity, events, endpoint = data["entity"], data.get("events") or list(EVENTS), data["endpoint"]
            company = str(data["company"]).lower() if data.get("company") else None
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"not an activation: {exc}"}, status_code=400)
        if entity not in self.entities or any(e not in EVENTS for e in events):
            return JSONResponse({"error": f"no data event {entity} {events}"}, status_code=400)
        self.store.on_write = self.written  # from the first activation on: seeding pays nothing
        with self.lock:
            for event in events:
                activation = Activation(entity, event, str(endpoint), company)
                if activation not in self.activations:
                    self.activations.append(activation)
        return await self.list_activations(request)

    async def deactivate(self, request: Request) -> Response:
        with self.lock:
            self.activations.clear()
        return Response(status_code=204)
