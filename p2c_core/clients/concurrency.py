"""How many requests a worker process sends to one service at once: adaptive (AIMD).

Every request holds a slot. A 429 halves the slots (never below one); each run of
`limit` successes adds one back, up to the service's cap (Dataverse allows 52
concurrent requests per user). So a throttled service sees fewer requests at once until
it stops throttling, and a quiet one is ramped up to its cap, as Microsoft advises.
A 429's Retry-After holds every new request of the process until it has passed: the
service said when it will take more, and pushing on only lengthens the wait. Better still
is not to be refused: Dataverse reports what is left of its budgets on every answer
(`x-ms-ratelimit-*-remaining-xrm-requests`), so new requests start only while what is
left covers them, the requests in flight and one spare. When it covers none, one request
goes after a moment to learn how far the window has moved on; its answer lets as many
start as the budget has regained. A spent budget is not a refusal: the slots stay.
With a `Pacer` (pacing.py: one share of the identity's budget for each instance that
talks as it), the pacer decides when a request may start instead, and the first request
goes alone to learn whether budgets are reported.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from p2c_core.clients.pacing import Pacer

# How long new requests wait when the service's remaining budget is nearly spent.
BUDGET_HOLD_S = 0.5


class AdaptiveLimit:
    """Slots for requests to one service; `clock` (monotonic seconds) is injectable for tests."""

    def __init__(
        self,
        cap: int,
        start: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        pacer: Pacer | None = None,
    ) -> None:
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self.cap = cap
        self.clock = clock
        self.limit = max(1, min(cap, start if start is not None else cap))
        self.in_use = 0
        self._successes = 0
        self._resume_at = 0.0  # monotonic time before which no request starts
        self._time_left: float | None = None  # execution time the service has left for us
        self._cost: float | None = None  # what one request spends of it, as seen lately
        self._room: int | None = None  # new requests the budget covers (None: not told)
        self.pacer = pacer
        self._unpaced: list[tuple[float, int]] = []  # (started, operations) sent before pacing
        self._cond = threading.Condition()

    @contextmanager
    def slot(self, operations: int = 1) -> Iterator[None]:
        """Hold a slot while one request (of `operations`) is in flight; waits until one may start."""
        with self._cond:
            while (delay := self._admit(operations)) > 0:
                self._cond.wait(None if delay == math.inf else delay)
        try:
            yield
        finally:
            self.release()

    def try_start(self, operations: int = 1) -> float:
        """Start a request now if one may (0.0: it holds a slot until `release`), else how many
        seconds until one might (`math.inf`: until a request in flight answers)."""
        with self._cond:
            return self._admit(operations)

    def release(self) -> None:
        with self._cond:
            self.in_use -= 1
            self._cond.notify()

    def _admit(self, operations: int = 1) -> float:
        held = self._resume_at - self.clock()
        if held > 0:
            return held
        if self.in_use >= self.limit:
            return math.inf
        if self.pacer is not None and self.pacer.ready(self._unpaced):
            self._unpaced = []
            paced = self.pacer.wait(operations)
            return paced if paced > 0 else self._start()
        if self.pacer is not None and self.pacer.answers == 0 and self.in_use:
            return math.inf  # the first request goes alone: its answer says whether budgets are reported
        if self._room is not None and self._room <= 0:
            if self.in_use > 0:
                return math.inf  # an answer in flight brings news of the budget
            # Nothing in flight will tell us more: wait a moment, then ask with one request.
            self._resume_at = self.clock() + BUDGET_HOLD_S
            self._room = 1
            return BUDGET_HOLD_S
        if self._room is not None:
            self._room -= 1
        if self.pacer is not None and self.pacer.answers == 0:  # booked if a peer's cost comes first
            self._unpaced.append((self.clock(), max(1, operations)))
        return self._start()

    def _start(self) -> float:
        self.in_use += 1
        return 0.0

    def held(self) -> float:
        """Seconds until requests may start again (0 when they may now)."""
        with self._cond:
            return max(0.0, self._resume_at - self.clock())

    def answered(
        self, time_left: float | None, requests_left: int | None, duration_s: float, operations: int = 1
    ) -> None:
        """One of our requests answered: what is left of the budgets, and what it took."""
        if self.pacer is None:
            self.budget(time_left, requests_left)
            return
        with self._cond:
            self.pacer.answered(time_left, requests_left, duration_s, operations, in_flight=self.in_use)
            self._unpaced = []  # the pacer has its answers now
            self._cond.notify_all()

    def budget(self, time_left: float | None, requests_left: int | None) -> None:
        """What the service says is left of its budgets, after one of our requests."""
        with self._cond:
            if time_left is not None:
                if self._time_left is not None and time_left < self._time_left:
                    drop = self._time_left - time_left
                    # The dearest request seen lately (slowly forgotten): requests differ in
                    # cost (a batch spends many operations' time), and the window refills meanwhile.
                    self._cost = drop if self._cost is None else max(drop, 0.95 * self._cost)
                self._time_left = time_left
            if time_left is None and requests_left is None:
                return  # this answer says nothing of the budget (a 429 says it with Retry-After)
            # What is left, less the requests in flight (each will spend about as much) and one
            # spare: a budget spent to nothing refuses every request until the window moves on.
            room: int | None = None
            if time_left is not None and self._cost:
                room = int(time_left / self._cost) - self.in_use - 1
            if requests_left is not None:
                by_count = requests_left - self.in_use - 1
                room = by_count if room is None else min(room, by_count)
            if room is not None:
                self._room = room
            self._cond.notify_all()

    def throttled(self, retry_after: float | None = None) -> None:
        """Multiplicative decrease; and no new request before Retry-After has passed."""
        with self._cond:
            self.limit = max(1, self.limit // 2)
            self._successes = 0
            if self.pacer is not None:
                self.pacer.throttled()
            if retry_after:
                self._resume_at = max(self._resume_at, self.clock() + retry_after)

    def succeeded(self) -> None:
        """Additive increase: one more slot per `limit` successes in a row."""
        with self._cond:
            self._successes += 1
            if self._successes >= self.limit and self.limit < self.cap:
                self.limit += 1
                self._successes = 0
                self._cond.notify()
