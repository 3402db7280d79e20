"""One share of a service identity's budget, paced: for every instance that talks as that identity.

Dataverse limits each user over a sliding window (300 s: 6,000 requests and 1,200 s of
execution time; "Service protection API limits", How Service Protection API Limits are
enforced) and reports what is left on every answer
(`x-ms-ratelimit-burst-remaining-xrm-requests`, `x-ms-ratelimit-time-remaining-xrm-requests`:
the time budget is "the remaining combined duration for all connections using the same
user account"). A request's execution time counts from when it ends, for one window. N
instances sharing a user keep under it by each keeping its own charges within 1/N of the
budget; N comes from a small lease table in Table Storage (peers.py).

So a `Pacer` keeps a ledger of its own requests: when each started, when its charge lands
in the window (answered: when it did; in flight: when a request of its size is expected to
end) and what it spends (its operations times what one operation is charged). A request
starts when, over the whole window its charge will stay in (from when it is expected to
land), this instance's charges plus it stay within its share (TARGET of it alone), and its requests
within the window within its share of the request budget. So a request may start before an
earlier one slides out if it lands after: the window stays full, never over. A token bucket
at the same rate does worse (one worker reached 0.8 of the bound): it knows no landing times,
so it lets charges bunch and must hold when the window touches its limit.

What an operation spends: alone, what the service charged, as the time header says (what is
left of the window, so the window holds the budget less that, spent by this instance's
operations charged within it); with other instances, whose part of the window is a guess
that may be too low, what one more operation adds to a request's duration (no request is
charged more than it lasts), so it never books more than the window holds, and books all of
its share rather than TARGET of it (large requests fill a share in few steps). Until every
instance has counted itself, one may think it is alone: each books its share no faster than
over RAMP_S, and no more than what the others left of the window at its last answer (their
charges, and during RAMP_S their requests counted on arrival). A new instance whose peers
have said what an operation costs (peers.py) paces by that from its first request.
An answer that leaves no time (spent by someone not counted: another tool as the same user)
holds requests until this instance's oldest charge slides out of the window; a 429's
Retry-After holds the identity (concurrency.py). Without budget headers (F&O) nothing is paced.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable, Sequence

from p2c_core.clients.occupancy import Charge, Occupancy

# Dataverse's window (the limits above); settable for a sandbox whose window is scaled down.
DEFAULT_WINDOW_S = 300.0
# Dataverse's documented budgets per second of its window (1,200 s and 6,000 requests per 300 s):
# the budgets assumed until answers report more. An instance that first answers in a busy
# window would otherwise take what is left for the whole, and keep to a share of too little.
SECONDS_PER_WINDOW_S = 1200 / 300
REQUESTS_PER_WINDOW_S = 6000 / 300
# What an operation costs: from this many answers' samples.
SAMPLES = 10
# The share of the budgets paced to: estimates of cost and landing time are estimates.
TARGET = 0.98
# A request arrives a moment after it starts here, so it leaves the window that much later.
ARRIVAL_SLACK_S = 0.5
# How much sooner (and later) than expected a request may land: at least this share of its
# duration, or as far as answers lately spread below (above) what is expected, up to MAX_SLACK
# of it. Sooner and later apart: a request booked to land as an earlier charge leaves risks
# only landing sooner (the earlier one has landed: its end is known).
LANDING_SLACK, MAX_SLACK = 0.01, 0.25
# How long after its first answer an instance takes to book its whole share.
RAMP_S = 4.0
# A request unanswered this long (timed out) no longer holds a place in flight.
STALE_S = 120.0


class Pacer:
    """Paces one process's requests as one identity; not thread-safe (AdaptiveLimit locks)."""

    def __init__(
        self,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        peers: Callable[[], int] = lambda: 1,
        clock: Callable[[], float] = time.monotonic,
        documented: bool = True,
        shared_cost: Callable[[], float | None] = lambda: None,
        publish: Callable[[float], None] = lambda _cost: None,
    ) -> None:
        self.window_s = window_s
        self.peers = peers
        self.clock = clock
        self.shared_cost, self.publish = shared_cost, publish  # what peers learned an operation costs
        self.max_requests: float | None = None  # the whole budgets, as reported
        self.max_seconds: float | None = None
        # The documented budgets for this window, once an answer says budgets are reported.
        self._documented = (window_s * SECONDS_PER_WINDOW_S, window_s * REQUESTS_PER_WINDOW_S) if documented else None
        self.per_operation: float | None = None  # execution seconds one operation spends
        self.fixed_s = 0.0  # what a request takes besides its operations' time (latency)
        self._fixed: deque[float] = deque(maxlen=SAMPLES)  # what answers took besides their operations
        self.ledger: list[Charge] = []
        self._samples: deque[tuple[float, int]] = deque(maxlen=SAMPLES)
        self._small: deque[tuple[float, int]] = deque(maxlen=SAMPLES)  # (duration, operations) of small requests
        self._large: deque[tuple[float, int]] = deque(maxlen=SAMPLES)  # and of batches
        self._first_at: float | None = None  # the first answer with budgets
        # What the other instances held of the window at the last answer: their charges, and
        # (read only while ramping) their requests that arrived, at this one's average cost.
        self._others: tuple[float | None, float | None] = (None, None)
        self._spent_until = -float("inf")  # no request starts before: the time budget is spent
        self._most_left: tuple[float, int] | None = None  # the most time left reported, by an answer of n ops
        self.answers = 0  # answers seen: before the first, nobody knows whether budgets are reported

    @property
    def active(self) -> bool:
        return self.max_requests is not None or self.max_seconds is not None

    def ready(self, in_flight: Sequence[tuple[float, int]] = ()) -> bool:
        """Pacing: since an answer reported budgets, or, before any answer, since a peer said what
        an operation costs (it learned that from answers with budgets): then this instance paces
        by the documented budgets and that cost from its first request, rather than sending one
        request alone to learn (a batch takes seconds, and instances of a scale-out start often).
        `in_flight`: (started, operations) of the requests sent before, booked then."""
        if self.active:
            return True
        if self.answers or self._documented is None:
            return False
        self.peers()  # renews what peers said (peers.py looks every second at first)
        if not (shared := self.shared_cost()):
            return False
        self.per_operation = shared
        self.max_seconds, self.max_requests = self._documented
        self._first_at = self.clock()  # the ramp: instances starting now may not be counted yet
        for started, operations in in_flight:
            self.ledger.append(Charge(started, started + self.duration(operations), self.cost(operations), operations))
        return True

    def cost(self, operations: int) -> float:
        return (self.per_operation or 0.0) * max(1, operations)

    def duration(self, operations: int) -> float:
        """How long a request of `operations` is expected to take, start to answer."""
        return self.fixed_s + self.cost(operations)

    def wait(self, operations: int = 1) -> float:
        """0.0: a request of `operations` may start now (and is booked); else seconds to wait."""
        if not self.active:
            return 0.0
        now = self.clock()
        self._prune(now)
        share = 1.0 / max(1, self.peers())
        cost, took = self.cost(operations), self.duration(operations)
        waits = [self._spent_until - now]
        if self.max_requests is not None:
            waits.append(self._request_wait(now, max(1.0, self.max_requests * share * TARGET)))
        if self.max_seconds is not None and cost > 0:
            waits.append(self._time_wait(now, took, cost, self._time_share(now, share, cost)))
            waits.append(self._ramp_wait(now, share, took, cost))
        if max(waits) > 0:
            if self._ramping(now) and self._first_at is not None:  # what holds it then ends with the ramp
                return max(0.001, min(max(waits), self._first_at + min(self.window_s, RAMP_S) - now))
            return max(0.001, max(waits))
        self.ledger.append(Charge(now, now + took, cost, max(1, operations)))
        return 0.0

    def _time_share(self, now: float, share: float, cost: float) -> float:
        """This instance's share of the time budget: TARGET of it alone (what an operation costs
        is then what the service charged, an estimate), all of it with others (an operation's
        cost is then guessed from durations, which are never less than what was charged); no
        more than what the others leave of it at the last answer (instances not yet counted,
        another tool as the same user)."""
        whole = self.max_seconds or 0.0
        allowed = whole * share * (TARGET if share >= 1.0 else 1.0)
        landed, arrived = self._others
        held = [h for h in (landed, arrived if self._ramping(now) else None) if h is not None]
        left = whole * TARGET - max(held) if held else whole
        return max(0.0, min(allowed, left))

    def _ramp_wait(self, now: float, share: float, took: float, cost: float) -> float:
        """For RAMP_S after the first answer, the share is booked no faster than over RAMP_S:
        until the instances starting together have all counted themselves (peers.py looks
        every second then), each may think it is alone."""
        ramp_s = min(self.window_s, RAMP_S)
        if self._first_at is None or now + took - self._first_at >= ramp_s:
            return 0.0
        rate = (self.max_seconds or 0.0) * TARGET * share / ramp_s
        booked = sum(c.cost for c in self.ledger if c.started >= self._first_at) + cost
        return max(0.0, booked / max(rate, 1e-9) - (now + took - self._first_at))

    def _ramping(self, now: float) -> bool:
        """Within RAMP_S of the first answer: instances starting together may not all be counted."""
        return self._first_at is None or now - self._first_at < min(self.window_s, RAMP_S)

    def _others_hold(
        self, now: float, time_left: float | None, requests_left: int | None
    ) -> tuple[float | None, float | None]:
        """What the other instances hold of the window, as this answer says: their charges (the
        time spent less this instance's), and their requests that arrived within the window
        (the request header counts them on arrival, before they are charged) at what this
        instance's cost on average. The second is for the ramp only: until every instance
        starting together counts the others, each may think it is alone; after it, each keeps
        to its share, and the second (every look-up costed as a batch) would only hold back."""
        landed = arrived = None
        if time_left is not None and self.max_seconds is not None:
            mine = sum(c.cost for c in self.ledger if c.answered and c.lands + self.window_s > now)
            landed = max(0.0, self.max_seconds - time_left - mine)
        if self._ramping(now) and requests_left is not None and self.max_requests is not None:
            recent = [c for c in self.ledger if c.started > now - self.window_s]
            if recent:
                average = sum(c.cost for c in recent) / len(recent)
                arrived = max(0.0, (self.max_requests - requests_left - len(recent)) * average)
        return landed, arrived

    def _request_wait(self, now: float, allowed: float) -> float:
        edge = now - self.window_s - ARRIVAL_SLACK_S
        starts = sorted(c.started for c in self.ledger if c.started > edge)
        over = len(starts) + 1 - int(allowed)
        return 0.0 if over <= 0 else starts[over - 1] - edge

    def _time_wait(self, now: float, took: float, cost: float, allowed: float) -> float:
        """Seconds until a charge of `cost`, landing `took` after it starts, fits the share
        over the whole window it stays in."""
        allowed = max(allowed, cost)  # one dearer than the share goes alone
        # It may land a little sooner and leave a little later than expected.
        early, late = self._slack(took)
        land = now + took - early
        held = Occupancy.of(self.ledger, self.window_s, early, late)
        if held.fits(land, cost, allowed, early + late):
            return 0.0
        leaving = sorted([*held.ends, *(end for _, end, _ in held.flying)])
        for out in leaving[bisect.bisect_right(leaving, land) :]:
            if held.fits(out, cost, allowed, early + late):
                return out + early - took - now
        return self.window_s

    def _slack(self, took: float) -> tuple[float, float]:
        """How much sooner and how much later than expected a request of duration `took` may
        land: what answers took besides their operations lately, below and above its median
        (what is expected), at least LANDING_SLACK of `took` and at most MAX_SLACK (a loaded
        machine makes a few very late)."""
        fixed = self._fixed or deque([0.0])
        offs = (self.fixed_s - min(fixed), max(fixed) - self.fixed_s)
        low, high = LANDING_SLACK * took, MAX_SLACK * took
        return max(low, min(high, offs[0])), max(low, min(high, offs[1]))

    def _prune(self, now: float) -> None:
        kept: list[Charge] = []
        for c in self.ledger:
            if c.answered and c.lands + self.window_s <= now:
                continue  # slid out of the window
            if not c.answered:
                if now - c.started > STALE_S:
                    continue  # timed out, never answered
                # Expected as the model now says (it learns while they fly), and no earlier than now.
                c.lands = max(c.started + self.duration(c.operations), now)
            kept.append(c)
        self.ledger = kept

    def _settle(self, now: float, duration_s: float, operations: int, charged: bool) -> None:
        """The ledger's entry of the request just answered: landed now, or (refused) gone."""
        started = now - duration_s
        flying = [c for c in self.ledger if not c.answered]
        same = [c for c in flying if c.operations == max(1, operations)] or flying
        if not same:
            if charged:  # sent before budgets were known (the first request): booked now
                self.ledger.append(Charge(started, now, self.cost(operations), max(1, operations), answered=True))
            return
        entry = min(same, key=lambda c: abs(c.started - started))
        if not charged:
            self.ledger.remove(entry)
            return
        entry.answered, entry.lands, entry.cost = True, now, self.cost(operations)

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
        now = self.clock()
        if time_left is None and requests_left is None:
            # No budget reported (F&O, a sandbox without limits, a refusal): nothing charged.
            self._settle(now, duration_s, operations, charged=False)
            return
        ops = max(1, operations)
        sample = self._charged(time_left, requests_left, ops, duration_s / ops, in_flight)
        self._samples.append((sample, ops))
        (self._small if ops <= 2 else self._large).append((duration_s, ops))
        if self.peers() > 1:
            # The others' part of the window is a guess, and a guess too low books more than
            # the window holds: what a request took, less what every request takes (latency).
            self.per_operation = self._from_durations()
        else:
            # Over the last few answers, weighed by their operations: a lone read's sample is
            # mostly latency (no more than it took), a batch's mostly what was charged.
            total = sum(n for _, n in self._samples)
            self.per_operation = sum(c * n for c, n in self._samples) / total
        self._fixed.append(max(0.0, duration_s - self.cost(ops)))
        self.fixed_s = sorted(self._fixed)[len(self._fixed) // 2]  # the median: one slow answer moves it little
        self._settle(now, duration_s, operations, charged=True)
        if self.per_operation is not None:
            self.publish(self.per_operation)
        if self._first_at is None:
            self._first_at = now
        self._others = self._others_hold(now, time_left, requests_left)
        if time_left is not None:
            if self._most_left is None or time_left > self._most_left[0]:
                self._most_left = (time_left, ops)
            most, most_ops = self._most_left
            self.max_seconds = max(most + self.cost(most_ops), self._documented[0] if self._documented else 0.0)
            self._hold(now, time_left)
        if requests_left is not None:
            documented = self._documented[1] if self._documented else 0.0
            self.max_requests = max(self.max_requests or 0.0, requests_left + 1.0, documented)
            if requests_left <= 0:  # spent (by anyone): hold until this instance's oldest request is out
                oldest = min((c.started for c in self.ledger), default=now)
                self._spent_until = max(self._spent_until, oldest + self.window_s + ARRIVAL_SLACK_S)

    def _from_durations(self) -> float:
        """What one more operation adds to a request's duration (between the quickest small and
        the quickest large request lately: a loaded machine only lengthens them), else what the
        quickest large one took per operation. Never below what was charged: no request is
        charged more than it lasts."""
        small, large = self._small, self._large
        if not large:
            return min(d / n for d, n in small)
        large_d, large_n = min(large, key=lambda x: x[0] / x[1])
        if not small:
            return large_d / large_n
        small_d, small_n = min(small, key=lambda x: x[0] / x[1])
        slope = (large_d - small_d) / max(large_n - small_n, 1e-9)
        return min(max(slope, 0.0), large_d / large_n)

    def _hold(self, now: float, time_left: float) -> None:
        """Dataverse admits a request while the window is under its limits. An answer that
        leaves no time (the ledger keeps this instance within its share, so someone else spent
        it) holds every request until this instance's oldest charge has slid out of the window."""
        if time_left > 0:
            self._spent_until = -float("inf")
            return
        landed = [c.lands for c in self.ledger if c.answered]
        self._spent_until = min(landed, default=now) + self.window_s

    def _charged(
        self, time_left: float | None, requests_left: int | None, ops: int, took: float, in_flight: int
    ) -> float:
        """What one operation spent, as the service's time budget says (else as long as it took)."""
        if time_left is None:
            return took
        now = self.clock()
        # This instance's charges within the window: the ledger's answered ones, and this one
        # (answered now, settled after).
        mine = [(c.started, c.operations) for c in self.ledger if c.answered and c.lands > now - self.window_s]
        mine.append((now - took * ops, ops))
        if self.max_seconds is None:
            return took  # no budget known yet
        if time_left <= 0:  # spent: what is left says too little, so this answer teaches nothing
            return took if self.per_operation is None else self.per_operation
        spent = max(0.0, self.max_seconds - time_left)  # by every instance of this identity
        my_ops = sum(n for _, n in mine)
        if requests_left is not None and self.max_requests is not None:
            # The other instances' requests that arrived within the window (the request budget's
            # header counts everyone's), in this one's proportion of operations charged to requests
            # arrived: the same for every instance, so none paces faster for spending more. Its own
            # charge, just landed, counts half: the others' land at any time.
            arrived = sum(1 for started, _ in mine if started > now - self.window_s) + in_flight
            others = max(0.0, self.max_requests - requests_left - arrived)
            everyone = my_ops + others * (my_ops - ops / 2) / max(1, arrived)
        else:
            everyone = float(my_ops * max(1, self.peers()))
        # No more than it took: the service does not charge more than the request lasted.
        return min(took, spent / max(everyone, 1e-9))

    def throttled(self) -> None:
        """A 429: the service's Retry-After holds the identity (AdaptiveLimit); the refused
        request was charged nothing (its answer, without budgets, took it off the ledger)."""
