"""One share of a service identity's budget, paced: for every instance that talks as that identity.

Dataverse limits each user over a sliding window (300 s: 6,000 requests and 1,200 s of
execution time; "Service protection API limits", How Service Protection API Limits are
enforced) and reports what is left on every answer
(`x-ms-ratelimit-burst-remaining-xrm-requests`, `x-ms-ratelimit-time-remaining-xrm-requests`:
the time budget is "the remaining combined duration for all connections using the same
user account"). A window's budget comes back as the window slides, so the rate a user can
keep up is the budget over the window. N instances sharing a user keep it by each spending
1/N of that rate; N comes from a small lease table in Table Storage (peers.py).

So a `Pacer` is two token buckets, requests and execution seconds, that fill at
budget / window / N: a request starts when both hold what it will spend. The budget is the
most the service has reported (plus what the request it answered spent); what a request
spends is measured, not guessed: its own duration, per operation (a `$batch` of 20 spends
about 20 times what one write does). The buckets hold at most a couple of seconds' worth,
so an instance that idled does not burst; and when the service says the budget is spent
(by anyone: an instance not yet counted, another tool as the same user) they are emptied,
as by a 429. (Dataverse admits a request while the window is under its limits, so "little
left" is no reason to wait: the pace keeps the window at the budget.) Without budget headers (F&O) nothing is paced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Dataverse's window (the limits above); settable for a sandbox whose window is scaled down.
DEFAULT_WINDOW_S = 300.0
# The most a bucket holds, in seconds of its rate: enough for requests to overlap, no burst.
BURST_S = 2.0


@dataclass
class Bucket:
    level: float = 0.0
    rate: float = 0.0  # per second
    cap: float = 0.0

    def fill(self, dt: float) -> None:
        self.level = min(self.cap, self.level + self.rate * dt)


class Pacer:
    """Paces one process's requests as one identity; not thread-safe (AdaptiveLimit locks)."""

    def __init__(
        self,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        peers: Callable[[], int] = lambda: 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.peers = peers
        self.clock = clock
        self.requests = Bucket()
        self.seconds = Bucket()
        self.max_requests: float | None = None  # the whole budgets, as reported
        self.max_seconds: float | None = None
        self.per_operation: float | None = None  # execution seconds one operation spends
        self._time_left: float | None = None
        self._requests_left: float | None = None
        self._filled_at = clock()
        self.answers = 0  # answers seen: before the first, nobody knows whether budgets are reported

    @property
    def active(self) -> bool:
        return self.max_requests is not None or self.max_seconds is not None

    def cost(self, operations: int) -> float:
        return (self.per_operation or 0.0) * max(1, operations)

    def wait(self, operations: int = 1) -> float:
        """0.0: a request of `operations` may start now (and is charged); else seconds to wait."""
        if not self.active:
            return 0.0
        self._fill()
        cost = self.cost(operations)
        waits = []
        if self.max_requests is not None and self.requests.level < 1.0:
            waits.append((1.0 - self.requests.level) / max(self.requests.rate, 1e-9))
        if self.max_seconds is not None and self.seconds.level < cost:
            # A request dearer than a bucket holds goes when the bucket is full.
            need = min(cost, self.seconds.cap) - self.seconds.level
            if need > 1e-9:
                waits.append(need / max(self.seconds.rate, 1e-9))
        if waits:
            return max(0.001, max(waits))
        self.requests.level -= 1.0
        self.seconds.level -= cost
        return 0.0

    def answered(
        self, time_left: float | None, requests_left: int | None, duration_s: float, operations: int = 1
    ) -> None:
        """One answer: what the service says is left, and what the request took."""
        self.answers += 1
        if time_left is None and requests_left is None:
            return  # no budget reported (F&O, a sandbox without limits, a refusal)
        self._fill()  # what accrued until now, before this answer's news applies
        ops = max(1, operations)
        took = duration_s / ops
        estimate = self.per_operation
        self.per_operation = took if estimate is None else 0.8 * estimate + 0.2 * took
        if estimate is not None:
            self.seconds.level -= (took - estimate) * ops  # settle what was charged on a guess
        if time_left is not None:
            self.max_seconds = max(self.max_seconds or 0.0, time_left + duration_s)
            self._time_left = time_left
        if requests_left is not None:
            self.max_requests = max(self.max_requests or 0.0, requests_left + 1.0)
            self._requests_left = float(requests_left)
        self._rates()

    def throttled(self) -> None:
        """A 429: spent, whatever the buckets said."""
        self.requests.level = min(self.requests.level, 0.0)
        self.seconds.level = min(self.seconds.level, 0.0)

    def _rates(self) -> None:
        share = 1.0 / max(1, self.peers())
        for bucket, whole, left in (
            (self.requests, self.max_requests, self._requests_left),
            (self.seconds, self.max_seconds, self._time_left),
        ):
            if whole is None:
                continue
            bucket.rate = whole / self.window_s * share
            bucket.cap = bucket.rate * BURST_S
            if left is not None and left <= 0:  # spent (by anyone): nothing starts until it is back
                bucket.level = min(bucket.level, 0.0)

    def _fill(self) -> None:
        now = self.clock()
        dt, self._filled_at = max(0.0, now - self._filled_at), now
        self.requests.fill(dt)
        self.seconds.fill(dt)
