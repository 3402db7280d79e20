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
budget / window / N (the time bucket at TIME_HEADROOM of it): a request starts when both hold
what it will spend. The budget is the most the service has reported left (plus what that
answer's request spent). What an operation spends is what the service charged, not how long
the request took as seen here (that adds latency and this machine's own time: paced on it,
the benchmark reached 0.6 of the bound). The time header says what is left of the window, so
the window holds the budget less that, spent by the operations charged within it: this
instance's own (answered within the window) and the other instances' (their requests in the
window, from the request header, in this instance's proportion of operations to requests).
Per operation (a `$batch` of 20 spends about 20 times what one write does), smoothed.
Differences between two answers would not do: in a steady window what is charged and what
slides out balance, and the drop says nothing. Without a time header, duration it is.
The buckets hold at most a couple of seconds' worth, so an instance that idled does not
burst. Dataverse admits a request while the window is under its limits, so an answer that
leaves some time lets the next request go; one that leaves none (spent by anyone: an instance
not yet counted, another tool as the same user) holds requests until this instance's oldest
charge slides out of the window; a spent request budget, or a 429, empties the buckets.
Without budget headers (F&O) nothing is paced.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# Dataverse's window (the limits above); settable for a sandbox whose window is scaled down.
DEFAULT_WINDOW_S = 300.0
# The most a bucket holds, in seconds of its rate: enough for requests to overlap, no burst.
BURST_S = 2.0
# How much of each answer's sample of an operation's cost moves the estimate.
SMOOTHING = 0.2
# The share of the time budget paced to: what is charged reaches the window a request's length
# after it was admitted, so pacing to all of it lets the window touch its limit (and refuse).
TIME_HEADROOM = 0.97


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
        self._answered: deque[tuple[float, float, int]] = deque()  # (when, started, operations), in the window
        self._spent_until = -float("inf")  # no request starts before: the time budget is spent
        self._everyone_per_mine = float(max(1, peers()))  # the window's operations per one of this one's
        self._most_left: tuple[float, int] | None = None  # the most time left reported, by an answer of n ops
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
        waits = [self._spent_until - self.clock()]
        if self.max_requests is not None and self.requests.level < 1.0:
            waits.append((1.0 - self.requests.level) / max(self.requests.rate, 1e-9))
        if self.max_seconds is not None and self.seconds.level < cost:
            # A request dearer than a bucket holds goes when the bucket is full.
            need = min(cost, self.seconds.cap) - self.seconds.level
            if need > 1e-9:
                waits.append(need / max(self.seconds.rate, 1e-9))
        if max(waits) > 0:
            return max(0.001, max(waits))
        self.requests.level -= 1.0
        self.seconds.level -= cost
        return 0.0

    def answered(
        self,
        time_left: float | None,
        requests_left: int | None,
        duration_s: float,
        operations: int = 1,
        in_flight: int = 0,
    ) -> None:
        """One answer: what the service says is left, what the request took, and how many others
        of this instance's are still in flight."""
        self.answers += 1
        if time_left is None and requests_left is None:
            return  # no budget reported (F&O, a sandbox without limits, a refusal)
        self._fill()  # what accrued until now, before this answer's news applies
        ops = max(1, operations)
        estimate = self.per_operation
        took = self._charged(time_left, requests_left, ops, duration_s / ops, in_flight)
        self.per_operation = took if estimate is None else (1 - SMOOTHING) * estimate + SMOOTHING * took
        if estimate is not None:
            self.seconds.level -= (took - estimate) * ops  # settle what was charged on a guess
        if time_left is not None:
            if self._most_left is None or time_left > self._most_left[0]:
                self._most_left = (time_left, ops)
            most, most_ops = self._most_left
            self.max_seconds = most + self.cost(most_ops)
            self._time_left = time_left
            self._hold(time_left)
        if requests_left is not None:
            self.max_requests = max(self.max_requests or 0.0, requests_left + 1.0)
            self._requests_left = float(requests_left)
        self._rates()

    def _hold(self, time_left: float) -> None:
        """Dataverse admits a request while the window is under its limits: after an answer that
        leaves some time, the next request is admitted (alone, the window only slides on until
        another answer). With other instances, whose answers land meanwhile, it must leave about
        one request's worth for each of them. Else every request holds until enough of what this instance was
        charged (and the others, in proportion) has slid out of the window to leave that."""
        mine = self._answered
        per_op = (self.per_operation or 0.0) * self._everyone_per_mine
        margin = 0.0
        if self.peers() > 1 and mine:  # room for each other instance's request to land meanwhile
            margin = (self.per_operation or 0.0) * sum(n for _, _, n in mine) / len(mine) * (self.peers() - 1)
        if time_left > margin:
            self._spent_until = -float("inf")
            return
        budget = self.max_seconds or 0.0
        in_window = max(budget - time_left, per_op * sum(n for _, _, n in mine))
        for answered_at, _, n in mine:
            self._spent_until = answered_at + self.window_s  # when this charge slides out
            in_window -= per_op * n
            if in_window < budget - margin:
                break

    def _charged(
        self, time_left: float | None, requests_left: int | None, ops: int, took: float, in_flight: int
    ) -> float:
        """What one operation spent, as the service's time budget says (else as long as it took)."""
        if time_left is None:
            return took
        now = self.clock()
        self._answered.append((now, now - took * ops, ops))
        while self._answered and self._answered[0][0] <= now - self.window_s:
            self._answered.popleft()
        if self.max_seconds is None:
            return took  # no budget known yet
        if time_left <= 0:  # spent: what is left says too little, so this answer teaches nothing
            return took if self.per_operation is None else self.per_operation
        spent = max(0.0, self.max_seconds - time_left)  # by every instance of this identity
        my_ops = sum(n for _, _, n in self._answered)  # charged within the window
        if requests_left is not None and self.max_requests is not None:
            # The other instances' requests that arrived within the window (the request budget's
            # header counts everyone's), in this one's proportion of operations charged to requests
            # arrived: the same for every instance, so none paces faster for spending more. Its own
            # charge, just landed, counts half: the others' land at any time.
            arrived = sum(1 for _, started, _ in self._answered if started > now - self.window_s) + in_flight
            others = max(0.0, self.max_requests - requests_left - arrived)
            everyone = my_ops + others * (my_ops - ops / 2) / max(1, arrived)
        else:
            everyone = float(my_ops * max(1, self.peers()))
        self._everyone_per_mine = everyone / max(1, my_ops)
        # No more than it took: the service does not charge more than the request lasted.
        return min(took, spent / everyone)

    def throttled(self) -> None:
        """A 429: spent, whatever the buckets said."""
        self.requests.level = min(self.requests.level, 0.0)
        self.seconds.level = min(self.seconds.level, 0.0)

    def _rates(self) -> None:
        share = 1.0 / max(1, self.peers())
        for bucket, whole, left in (
            (self.requests, self.max_requests, self._requests_left),
            (self.seconds, self.max_seconds, None),  # a spent time budget holds (_hold), not empties
        ):
            if whole is None:
                continue
            bucket.rate = whole / self.window_s * share * (TIME_HEADROOM if bucket is self.seconds else 1.0)
            bucket.cap = bucket.rate * BURST_S
            if left is not None and left <= 0:  # spent (by anyone): nothing starts until it is back
                bucket.level = min(bucket.level, 0.0)

    def _fill(self) -> None:
        now = self.clock()
        dt, self._filled_at = max(0.0, now - self._filled_at), now
        self.requests.fill(dt)
        self.seconds.fill(dt)
