"""The sandbox pushes like the real services: after a committed write, a POST to whoever
registered for it, from a background sender, with the services' own retry rules.

- Dataverse: a `RemoteExecutionContext` as JSON to each webhook step the write fires
  (registration.py), the WebhookKey as `?code=`, with the `x-ms-dynamics-*` headers. An
  asynchronous step is retried once, and only after 502, 503 or 504; order is not
  guaranteed; a payload over 256 KB goes without ParentContext, InputParameters and the
  images, flagged by `x-ms-dynamics-msg-size-exceeded` ("Use WebHooks to create external
  handlers for server events", "Troubleshoot WebHook registrations").
- F&O: a data event (the entity record, with the business event fields: ControlNumber,
  EventId, EventTime, BusinessEventLegalEntity) to each activated endpoint, retried 3 times
  a second apart, then kept in an error log ("Data events"; business events "Errors").

Faults on demand (`/_sandbox/push`): events dropped, duplicated, reordered (held back so a
later one overtakes), delayed, or oversized (images dropped), drawn from a seed.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_DATAVERSE_BYTES = 256 * 1024
RETRIED_STATUSES = (502, 503, 504)
FNO_RETRIES, FNO_RETRY_GAP_S = 3, 1.0
REORDER_HOLD_S = 0.5


@dataclass
class PushFaults:
    seed: int = 0
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    delay_ms: float = 0.0
    oversize_rate: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PushFaults:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown push fault settings: {', '.join(sorted(unknown))}")
        config = cls(**data)
        for name in ("drop_rate", "duplicate_rate", "reorder_rate", "oversize_rate"):
            if not 0 <= getattr(config, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        return config


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    send: Callable[[], None] = field(compare=False)


@dataclass
class PushStats:
    events: int = 0
    sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    oversized: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


class Sender:
    """A background thread that sends what is due, in due-time order; stops with the server."""

    def __init__(self, name: str, threads: int = 4) -> None:
        self._heap: list[_Due] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._stopped = False
        self._name = name
        self._threads = threads
        self._started: list[threading.Thread] = []
        self.client = httpx.Client(timeout=60)
        self.faults = PushFaults()
        self.random = random.Random(0)
        self.stats = PushStats()
        self.lock = threading.Lock()

    def configure(self, faults: PushFaults) -> None:
        with self.lock:
            self.faults = faults
            self.random = random.Random(faults.seed)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"faults": asdict(self.faults), **asdict(self.stats), "queued": len(self._heap)}

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    def event(self, send: Callable[[bool], None]) -> None:
        """One event: `send(oversized)` is called when it is due (or more than once, or never)."""
        with self.lock:
            f, draw = self.faults, self.random.random
            dropped, duplicated, reordered, oversized = (draw() < f.drop_rate, draw() < f.duplicate_rate,
                                                         draw() < f.reorder_rate, draw() < f.oversize_rate)  # fmt: skip
            self.stats.events += 1
        if dropped:
            self.count("dropped")
            return
        base = time.monotonic() + self.faults.delay_ms / 1000
        self._put(base + (REORDER_HOLD_S if reordered else 0), lambda: send(oversized))
        if reordered:
            self.count("reordered")
        if oversized:
            self.count("oversized")
        if duplicated:
            self.count("duplicated")
            self._put(base + REORDER_HOLD_S / 2, lambda: send(oversized))

    def _put(self, at: float, send: Callable[[], None]) -> None:
        with self._cv:
            if self._stopped:
                return
            if not self._started:
                for i in range(self._threads):
                    thread = threading.Thread(target=self._run, name=f"{self._name}-push-{i}", daemon=True)
                    thread.start()
                    self._started.append(thread)
            heapq.heappush(self._heap, _Due(at, next(self._seq), send))
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._heap or self._heap[0].at > time.monotonic()):
                    wait = self._heap[0].at - time.monotonic() if self._heap else None
                    self._cv.wait(timeout=wait)
                if self._stopped:
                    return
                due = heapq.heappop(self._heap)
            try:
                due.send()
            except Exception as exc:  # a sender thread never dies of one event
                self.fail({"error": f"{type(exc).__name__}: {exc}"})

    def fail(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.stats.failed += 1
            self.stats.errors = [*self.stats.errors[-99:], entry]

    def post(self, url: str, body: bytes, headers: dict[str, str], params: dict[str, str]) -> int | None:
        try:
            # No `params` when none: httpx would drop the query the URL carries (an F&O endpoint's ?code=).
            response = self.client.post(url, content=body, headers=headers, params=params or None)
        except httpx.HTTPError:
            return None
        self.count("sent")
        return response.status_code

    def idle(self) -> bool:
        with self._cv:
            return not self._heap

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._heap.clear()
            self._cv.notify_all()
        for thread in self._started:
            thread.join(timeout=10)
        self.client.close()


def wcf_date(epoch_s: float) -> str:
    """A date as WCF JSON writes it (RemoteExecutionContext, business events): `/Date(ms)/`."""
    return f"/Date({int(epoch_s * 1000)})/"


def send_dataverse(sender: Sender, url: str, key: str | None, context: dict[str, Any], oversized: bool) -> None:
    """POST one RemoteExecutionContext; retried once, only after 502/503/504."""
    headers = {"Content-Type": "application/json", "x-ms-dynamics-organization": "sandbox.crm.dynamics.com",
               "x-ms-dynamics-entity-name": context["PrimaryEntityName"],
               "x-ms-dynamics-request-name": context["MessageName"],
               "x-ms-correlation-request-id": context["CorrelationId"]}  # fmt: skip
    body = json.dumps(context).encode()
    if oversized or len(body) > MAX_DATAVERSE_BYTES:
        trimmed = {k: v for k, v in context.items()
                   if k not in ("ParentContext", "InputParameters", "PreEntityImages", "PostEntityImages")}  # fmt: skip
        body = json.dumps(trimmed).encode()
        headers["x-ms-dynamics-msg-size-exceeded"] = "true"
    params = {"code": key} if key else {}
    status = sender.post(url, body, headers, params)
    if status in RETRIED_STATUSES:
        sender.count("retried")
        status = sender.post(url, body, headers, params)
    if status is None or not 200 <= status < 300:
        sender.fail({"message": context["MessageName"], "table": context["PrimaryEntityName"],
                     "id": context["PrimaryEntityId"], "status": status})  # fmt: skip


def send_fno(sender: Sender, url: str, event: dict[str, Any]) -> None:
    """POST one data event; 3 retries a second apart, then the error log."""
    body = json.dumps(event).encode()
    status: int | None = None
    for attempt in range(1 + FNO_RETRIES):
        if attempt:
            sender.count("retried")
            time.sleep(FNO_RETRY_GAP_S)
        status = sender.post(url, body, {"Content-Type": "application/json"}, {})
        if status is not None and 200 <= status < 300:
            return
    sender.fail({"event": event.get("BusinessEventId"), "control": event.get("ControlNumber"), "status": status})


def new_id() -> str:
    return str(uuid.uuid4())


class PushAdmin:
    """`/_sandbox/push` of either service: GET what was pushed, POST seeded faults
    (`{"seed": 1, "drop_rate": 0.2, "duplicate_rate": 0.1, "reorder_rate": 0.1, ...}`)."""

    sender: Sender

    def push_routes(self) -> list[Route]:
        return [Route("/_sandbox/push", self.get_push, methods=["GET"]),
                Route("/_sandbox/push", self.set_push, methods=["POST"])]  # fmt: skip

    async def get_push(self, request: Request) -> Response:
        return JSONResponse(self.sender.snapshot())

    async def set_push(self, request: Request) -> Response:
        try:
            self.sender.configure(PushFaults.from_json(json.loads(await request.body() or b"{}")))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.sender.snapshot())
