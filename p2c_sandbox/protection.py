"""Service protection limits, as Dataverse and F&O apply them.

User-based limits (`ServiceProtection`: Dataverse's, and F&O's optional ones): per caller
(the bearer token), over a sliding window, a request budget, an execution-time budget
(each operation costs `cost_ms`; a `$batch` is one request that spends the time of all
its operations) and a cap on concurrent requests. Over a budget -> 429 with Retry-After
(until enough of the window has passed) and the service's wording; over the concurrency
cap -> 429 at once. Only Dataverse reports what is left in `x-ms-ratelimit-*` headers.

Resource-based limits (`ResourceThrottling`, F&O's priority-based throttling): the web
servers' combined load over a short window, from every caller; when it passes a
priority's threshold, callers of that priority get 429 with Retry-After, so low-priority
integrations are throttled before high ones. Every limit is off unless configured.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

# Dataverse's error codes for the three limits (APIS.md).
TOO_MANY_REQUESTS = "0x80072322"
EXECUTION_TIME = "0x80072321"
CONCURRENCY = "0x80072326"
PRIORITIES = ("Low", "Medium", "High")


@dataclass(frozen=True)
class Wording:
    """How a service words a refusal: error codes, messages, and whether it reports budgets."""

    requests_code: str
    requests_message: str  # formatted with limit= and window=
    execution_code: str
    execution_message: str  # formatted with limit_ms=, limit_s= and window=
    concurrency_code: str
    concurrency_message: str  # formatted with limit=
    reports_budget: bool


DATAVERSE_WORDING = Wording(
    TOO_MANY_REQUESTS,
    "Number of requests exceeded the limit of {limit} over time window of {window} seconds.",
    EXECUTION_TIME,
    "Combined execution time of incoming requests exceeded limit of {limit_ms} milliseconds over time window "
    "of {window} seconds.",
    CONCURRENCY,
    "Number of concurrent requests exceeded the limit of {limit}.",
    reports_budget=True,
)
# F&O's service protection article: no error codes, no budget headers.
FNO_WORDING = Wording(
    "",
    "Number of requests exceeded the limit of {limit} over the time window of {window} seconds.",
    "",
    "Combined execution time of incoming requests exceeded limit of {limit_s} seconds over time window of "
    "{window} seconds. Decrease number of concurrent requests or reduce the duration of requests and try "
    "again later.",
    "",
    "Number of concurrent requests exceeded the limit of {limit}.",
    reports_budget=False,
)
RESOURCE_MESSAGE = (
    "This request could not be processed at this time due to system experiencing high resource utilization."
)


@dataclass
class ProtectionConfig:
    enabled: bool = False
    window_s: float = 300.0
    max_requests: int = 6000
    max_execution_s: float = 1200.0
    max_concurrent: int = 52
    cost_ms: float = 0.0  # execution time one operation spends
    spend_time: bool = True  # and takes: the answer comes that much later

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
    limit: str  # which limit: requests, execution_time, concurrency, resources
    code: str
    message: str
    retry_after_s: int


@dataclass
class _Caller:
    arrivals: deque[float] = field(default_factory=deque)  # when each request came in
    executions: deque[tuple[float, float]] = field(default_factory=deque)  # (when it ended, execution seconds)
    in_flight: int = 0


class ServiceProtection:
    """Dataverse's user-based limits ("Service protection API limits", How Service
    Protection API Limits are enforced), per caller over a sliding window:

    - a request counts toward the request limit when it comes in, a `$batch` as one;
    - its execution time (`cost_ms` per operation, every operation of a `$batch` included)
      is known when it ends and is charged then;
    - a request is admitted while neither limit is exceeded over the preceding window, so
      one that starts inside the budget runs to its end and may spend past it: "you can
      expect to exceed the number of requests and execution time limits ... before the
      service protection API limits will take effect". What it overspent is paid back:
      later requests are refused, with a Retry-After until enough of the window has
      passed for both measures to be under their limits again;
    - too many at once is refused at once.
    """

    def __init__(
        self, config: ProtectionConfig | None = None, clock: Any = time.monotonic, wording: Wording = DATAVERSE_WORDING
    ) -> None:
        self.config = config or ProtectionConfig()
        self.clock = clock
        self.wording = wording
        self.lock = threading.Lock()
        self.callers: dict[str, _Caller] = {}
        self.refused: dict[str, int] = {}

    def configure(self, config: ProtectionConfig) -> None:
        with self.lock:
            self.config, self.callers, self.refused = config, {}, {}

    def _prune(self, caller: _Caller, now: float) -> None:
        edge = now - self.config.window_s
        while caller.arrivals and caller.arrivals[0] <= edge:
            caller.arrivals.popleft()
        while caller.executions and caller.executions[0][0] <= edge:
            caller.executions.popleft()

    @staticmethod
    def _spent(caller: _Caller) -> float:
        return sum(cost for _, cost in caller.executions)

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
            words, window = self.wording, f"{cfg.window_s:.0f}"
            if caller.in_flight >= cfg.max_concurrent:
                message = words.concurrency_message.format(limit=cfg.max_concurrent)
                refusal = Refusal("concurrency", words.concurrency_code, message, 1)
            elif len(caller.arrivals) >= cfg.max_requests:
                message = words.requests_message.format(limit=cfg.max_requests, window=window)
                refusal = Refusal("requests", words.requests_code, message, self._wait(caller, now))
            elif self._spent(caller) >= cfg.max_execution_s:
                message = words.execution_message.format(
                    limit_ms=f"{cfg.max_execution_s * 1000:.0f}", limit_s=f"{cfg.max_execution_s:g}", window=window
                )
                refusal = Refusal("execution_time", words.execution_code, message, self._wait(caller, now))
            if refusal is not None:
                self.refused[refusal.limit] = self.refused.get(refusal.limit, 0) + 1
                return refusal
            caller.in_flight += 1
            caller.arrivals.append(now)
            return None

    def _wait(self, caller: _Caller, now: float) -> int:
        """Whole seconds until both measures are under their limits again: the requests
        over the limit, and the execution time spent past it, have left the window."""
        cfg = self.config
        until = now
        over = len(caller.arrivals) - cfg.max_requests
        if over >= 0:
            until = max(until, caller.arrivals[over] + cfg.window_s)
        spent = self._spent(caller)
        for ended, cost in caller.executions:
            if spent < cfg.max_execution_s:
                break
            spent -= cost
            until = max(until, ended + cfg.window_s)
        return max(1, int(until - now + 0.999))

    def release(self, who: str) -> None:
        """Give back the slot of a request another limit refused: it never ran, so costs nothing."""
        if not self.config.enabled:
            return
        with self.lock:
            caller = self.callers.setdefault(who, _Caller())
            caller.in_flight = max(0, caller.in_flight - 1)
            if caller.arrivals:
                caller.arrivals.pop()  # the latest arrival is this one's (or one just like it)

    def done(self, who: str, operations: int = 1) -> dict[str, str]:
        """Release the slot, charge the request's execution time; the rate-limit headers to send."""
        cfg = self.config
        if not cfg.enabled:
            return {}
        with self.lock:
            now = self.clock()
            caller = self.callers.setdefault(who, _Caller())
            caller.in_flight = max(0, caller.in_flight - 1)
            caller.executions.append((now, operations * cfg.cost_ms / 1000))
            self._prune(caller, now)
            if not self.wording.reports_budget:
                return {}
            time_left = max(0.0, cfg.max_execution_s - self._spent(caller))
            return {
                "x-ms-ratelimit-burst-remaining-xrm-requests": str(max(0, cfg.max_requests - len(caller.arrivals))),
                "x-ms-ratelimit-time-remaining-xrm-requests": f"{time_left:,.2f}",
            }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"config": asdict(self.config), "refused": dict(self.refused)}


def _default_thresholds() -> dict[str, float]:
    return {"Low": 0.6, "Medium": 0.8, "High": 0.95}


@dataclass
class ThrottlingConfig:
    """F&O's resource-based limits. The thresholds are shares of the web servers' capacity
    at which each priority is throttled (F&O does not publish its own; these keep the
    documented order, low before medium before high)."""

    enabled: bool = False
    window_s: float = 10.0  # how far back the load is measured
    capacity_s: float = 20.0  # execution seconds the web servers can spend per window
    cost_ms: float = 10.0  # execution time one operation spends
    thresholds: dict[str, float] = field(default_factory=_default_thresholds)
    priorities: dict[str, str] = field(default_factory=dict)  # client or user id -> Low/Medium/High
    default_priority: str = "Medium"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ThrottlingConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown throttling settings: {', '.join(sorted(unknown))}")
        cfg = cls(**data)
        if cfg.window_s <= 0 or cfg.capacity_s <= 0 or cfg.cost_ms < 0:
            raise ValueError("window_s and capacity_s must be positive and cost_ms not negative")
        cfg.thresholds = {**_default_thresholds(), **cfg.thresholds}
        named = [*cfg.thresholds, *cfg.priorities.values(), cfg.default_priority]
        wrong = sorted({p for p in named if p not in PRIORITIES})
        if wrong:
            raise ValueError(f"unknown priority {', '.join(wrong)}: use {', '.join(PRIORITIES)}")
        if any(not 0 < share <= 1 for share in cfg.thresholds.values()):
            raise ValueError("thresholds are shares of capacity, above 0 and at most 1")
        return cfg


def identity(authorization: str | None) -> str:
    """Who is calling, as F&O's throttling priority mapping names it: the Entra application
    (client id) of an app token, else the user; the sandbox accepts opaque tokens as names."""
    if not authorization:
        return "anonymous"
    token = authorization.removeprefix("Bearer ").strip()
    parts = token.split(".")
    if len(parts) == 3:
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (ValueError, UnicodeDecodeError):
            claims = None
        if isinstance(claims, dict):
            for claim in ("appid", "azp", "oid", "upn"):
                if isinstance(claims.get(claim), str):
                    return claims[claim]
    return token


class ResourceThrottling:
    """F&O's priority-based throttling of the load all callers put on the web servers."""

    def __init__(self, config: ThrottlingConfig | None = None, clock: Any = time.monotonic) -> None:
        self.config = config or ThrottlingConfig()
        self.clock = clock
        self.lock = threading.Lock()
        self.load: deque[tuple[float, float]] = deque()  # (when, execution seconds), every caller
        self.refused: dict[str, int] = {}  # by priority

    def configure(self, config: ThrottlingConfig) -> None:
        with self.lock:
            self.config, self.load, self.refused = config, deque(), {}

    def _prune(self, now: float) -> float:
        while self.load and self.load[0][0] <= now - self.config.window_s:
            self.load.popleft()
        return sum(cost for _, cost in self.load)

    def priority(self, who: str) -> str:
        return self.config.priorities.get(who, self.config.default_priority)

    def admit(self, who: str) -> Refusal | None:
        """Charge one operation up front (load counts while a request runs), or refuse."""
        cfg = self.config
        if not cfg.enabled:
            return None
        with self.lock:
            now = self.clock()
            spent = self._prune(now)
            priority = self.priority(who)
            allowed = cfg.thresholds[priority] * cfg.capacity_s
            if spent >= allowed - 1e-9:  # sums of float costs fall just short
                self.refused[priority] = self.refused.get(priority, 0) + 1
                return Refusal("resources", "", RESOURCE_MESSAGE, self._wait(now, spent, allowed))
            self.load.append((now, cfg.cost_ms / 1000))
            return None

    def _wait(self, now: float, spent: float, allowed: float) -> int:
        """Whole seconds until enough load has left the window to fall under `allowed`."""
        for when, cost in self.load:
            spent -= cost
            if spent < allowed - 1e-9:
                return max(1, int(when + self.config.window_s - now + 0.999))
        return 1

    def done(self, who: str, operations: int = 1) -> None:
        """Charge the operations of a `$batch` beyond the one charged on admission."""
        cfg = self.config
        if not cfg.enabled or operations <= 1:
            return
        with self.lock:
            self.load.append((self.clock(), (operations - 1) * cfg.cost_ms / 1000))

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            spent = self._prune(self.clock())
            return {
                "config": asdict(self.config),
                "refused": dict(self.refused),
                "utilization": round(spent / self.config.capacity_s, 3),
            }
