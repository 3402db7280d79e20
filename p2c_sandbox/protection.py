"""Service protection limits, as Dataverse applies them (and F&O, more simply).

Per caller (the bearer token), over a sliding window: a request budget, an execution-time
budget (each operation costs `cost_ms`; a `$batch` is one request that spends the time of
all its operations) and a cap on concurrent requests. Over a budget -> 429 with
Retry-After (until enough of the window has passed) and the service's error code; over
the concurrency cap -> 429 at once. Off unless configured, like faults.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

# Dataverse's error codes for the three limits (APIS.md).
TOO_MANY_REQUESTS = "0x80072322"
EXECUTION_TIME = "0x80072321"
CONCURRENCY = "0x80072326"


@dataclass
class ProtectionConfig:
    enabled: bool = False
    window_s: float = 300.0
    max_requests: int = 6000
    max_execution_s: float = 1200.0
    max_concurrent: int = 52
    cost_ms: float = 0.0  # execution time one operation spends

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProtectionConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown protection settings: {', '.join(sorted(unknown))}")
        cfg = cls(**data)
        if cfg.window_s <= 0 or cfg.max_requests < 1 or cfg.max_concurrent < 1 or cfg.max_execution_s <= 0:
            raise ValueError("window_s, max_requests, max_execution_s and max_concurrent must be positive")
        return cfg


@dataclass
class Refusal:
    code: str
    message: str
    retry_after_s: int


@dataclass
class _Caller:
    requests: deque[tuple[float, float]] = field(default_factory=deque)  # (when, execution seconds)
    in_flight: int = 0


class ServiceProtection:
    def __init__(self, config: ProtectionConfig | None = None, clock: Any = time.monotonic) -> None:
        self.config = config or ProtectionConfig()
        self.clock = clock
        self.lock = threading.Lock()
        self.callers: dict[str, _Caller] = {}
        self.refused: dict[str, int] = {}

    def configure(self, config: ProtectionConfig) -> None:
        with self.lock:
            self.config, self.callers, self.refused = config, {}, {}

    def _prune(self, caller: _Caller, now: float) -> None:
        while caller.requests and caller.requests[0][0] <= now - self.config.window_s:
            caller.requests.popleft()

    def admit(self, who: str) -> Refusal | None:
        """Take a slot for one request, or say why not."""
        cfg = self.config
        if not cfg.enabled:
            return None
        with self.lock:
            now = self.clock()
            caller = self.callers.setdefault(who, _Caller())
            self._prune(caller, now)
            refusal: Refusal | None = None
            if caller.in_flight >= cfg.max_concurrent:
                message = f"Number of concurrent requests exceeded the limit of {cfg.max_concurrent}."
                refusal = Refusal(CONCURRENCY, message, 1)
            elif len(caller.requests) >= cfg.max_requests:
                refusal = Refusal(
                    TOO_MANY_REQUESTS,
                    f"Number of requests exceeded the limit of {cfg.max_requests} over time window of "
                    f"{cfg.window_s:.0f} seconds.",
                    self._wait(caller, now),
                )
            elif sum(cost for _, cost in caller.requests) >= cfg.max_execution_s:
                refusal = Refusal(
                    EXECUTION_TIME,
                    f"Combined execution time of incoming requests exceeded limit of {cfg.max_execution_s * 1000:.0f} "
                    f"milliseconds over time window of {cfg.window_s:.0f} seconds.",
                    self._wait(caller, now),
                )
            if refusal is not None:
                self.refused[refusal.code] = self.refused.get(refusal.code, 0) + 1
                return refusal
            caller.in_flight += 1
            return None

    def _wait(self, caller: _Caller, now: float) -> int:
        """Whole seconds until the oldest request in the window leaves it."""
        oldest = caller.requests[0][0] if caller.requests else now
        return max(1, int(oldest + self.config.window_s - now + 0.999))

    def done(self, who: str, operations: int = 1) -> dict[str, str]:
        """Release the slot, charge the request; the rate-limit headers to send."""
        cfg = self.config
        if not cfg.enabled:
            return {}
        with self.lock:
            now = self.clock()
            caller = self.callers.setdefault(who, _Caller())
            caller.in_flight = max(0, caller.in_flight - 1)
            caller.requests.append((now, operations * cfg.cost_ms / 1000))
            self._prune(caller, now)
            spent = sum(cost for _, cost in caller.requests)
            return {
                "x-ms-ratelimit-burst-remaining-xrm-requests": str(max(0, cfg.max_requests - len(caller.requests))),
                "x-ms-ratelimit-time-remaining-xrm-requests": f"{max(0.0, cfg.max_execution_s - spent):,.2f}",
            }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"config": asdict(self.config), "refused": dict(self.refused)}
