"""Injected faults, drawn from a seeded generator so a chaos run repeats exactly.

Each request to a service (not to /_sandbox) draws one decision in arrival order: pass,
an error status (429 with Retry-After, 500, 503...), a dropped connection (the response
is cut mid-body), a slow answer (nothing until slow_ms: past a client's timeout) or a slow
body (the headers at once, the body in pieces over slow_ms: each read in time, the whole
late); errors and drops are injected before the request is handled or after it (the work
is done but the answer is lost, the nasty case for idempotence). Latency (fixed plus or
minus jitter) is added to every request.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class FaultConfig:
    seed: int = 0
    error_rate: float = 0.0  # share of requests answered with an injected error status
    drop_rate: float = 0.0  # share of requests whose connection is dropped mid-response
    statuses: dict[int, float] = field(default_factory=lambda: {429: 1.0, 500: 1.0, 503: 1.0})
    after_share: float = 0.5  # of the faults, how many hit after the request was handled
    retry_after_s: float = 1.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    # Share of requests answered only after slow_ms: past a client's timeout, the work
    # still happens (the client cannot know whether it did).
    slow_rate: float = 0.0
    slow_ms: float = 2000.0
    # Share of requests whose answer starts at once but whose body trickles out over slow_ms.
    slow_body_rate: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        if "statuses" in data:
            data = {**data, "statuses": {int(k): float(v) for k, v in data["statuses"].items()}}
        cfg = cls(**data)
        for name in ("error_rate", "drop_rate", "after_share", "slow_rate", "slow_body_rate"):
            if not 0.0 <= getattr(cfg, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        return cfg


@dataclass(frozen=True)
class Decision:
    kind: str  # "pass" | "error" | "drop" | "slow" | "slow body"
    status: int = 200
    after: bool = False
    delay_s: float = 0.0


class Faults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.configure(FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self.lock:
            self.config = config
            self.rng = random.Random(config.seed)
            self.history: list[Decision] = []

    def draw(self) -> Decision:
        with self.lock:
            c, rng = self.config, self.rng
            delay = max(0.0, c.latency_ms + rng.uniform(-c.jitter_ms, c.jitter_ms)) / 1000
            roll = rng.random()
            after = rng.random() < c.after_share
            if roll < c.drop_rate:
                decision = Decision("drop", after=after, delay_s=delay)
            elif roll < c.drop_rate + c.error_rate:
                statuses = sorted(c.statuses)
                status = rng.choices(statuses, weights=[c.statuses[s] for s in statuses])[0]
                # A throttle is refused up front, as the real services do.
                decision = Decision("error", status=status, after=after and status != 429, delay_s=delay)
            elif roll < c.drop_rate + c.error_rate + c.slow_rate:
                decision = Decision("slow", delay_s=delay + c.slow_ms / 1000)
            elif roll < c.drop_rate + c.error_rate + c.slow_rate + c.slow_body_rate:
                decision = Decision("slow body", delay_s=delay)
            else:
                decision = Decision("pass", delay_s=delay)
            self.history.append(decision)
            return decision

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            counts: dict[str, int] = {}
            for d in self.history:
                label = d.kind if d.kind != "error" else f"error {d.status}"
                counts[label] = counts.get(label, 0) + 1
            return {"config": asdict(self.config), "drawn": len(self.history), "counts": counts}


class FaultMiddleware:
    """ASGI middleware that applies the drawn decision to every service request."""

    def __init__(self, app: ASGIApp, faults: Faults, error_body: Any, request_id_header: str) -> None:
        self.app, self.faults = app, faults
        self.error_body = error_body  # (status) -> JSON-able body, shaped like the service's errors
        self.request_id_header = request_id_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        decision = self.faults.draw()
        if decision.kind == "slow":
            # Take the whole request first: the work happens even after the client gave up.
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False) and message["type"] == "http.request"
            await asyncio.sleep(decision.delay_s)

            async def replay() -> Message:
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        if decision.kind == "slow body":
            await self.app(scope, receive, _trickle(send, self.faults.config.slow_ms / 1000))
            return
        if decision.kind == "pass":
            await self.app(scope, receive, send)
            return
        if decision.after:
            await self.app(scope, receive, _swallow)
        if decision.kind == "drop":
            # Promise a body and cut it short: the client sees the connection drop mid-response.
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b'{"value": [', "more_body": False})
            return
        body = json.dumps(self.error_body(decision.status)).encode()
        headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                   (self.request_id_header.encode(), b"injected-fault")]  # fmt: skip
        if decision.status in (429, 503):
            headers.append((b"retry-after", str(int(max(1, round(self.faults.config.retry_after_s)))).encode()))
        await send({"type": "http.response.start", "status": decision.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _trickle(send: Send, seconds: float, pieces: int = 10) -> Send:
    """A `send` that starts the answer at once and spreads its body over `seconds`."""
    body = b""

    async def trickle(message: Message) -> None:
        nonlocal body
        if message["type"] != "http.response.body":
            await send(message)
            return
        body += message.get("body", b"")
        if message.get("more_body", False):
            return
        size = max(1, -(-len(body) // pieces))
        chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
        for n, chunk in enumerate(chunks):
            await asyncio.sleep(seconds / len(chunks))
            await send({"type": "http.response.body", "body": chunk, "more_body": n < len(chunks) - 1})

    return trickle


async def _swallow(message: Message) -> None:
    """Let the real handler finish (its effect stays) and throw its answer away."""
