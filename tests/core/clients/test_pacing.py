"""Pacing to one share of an identity's budget, on a clock: no test waits."""

from __future__ import annotations

import math
import random

import pytest

from p2c_core.clients.concurrency import AdaptiveLimit
from p2c_core.clients.pacing import Pacer

# Dataverse's budgets scaled to a 10 s window: 200 requests and 40 s of execution time.
WINDOW_S, REQUESTS, SECONDS = 10.0, 200, 40.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pacer(peers: int = 1, clock: Clock | None = None) -> tuple[Pacer, Clock]:
    clock = clock or Clock()
    return Pacer(window_s=WINDOW_S, peers=lambda: peers, clock=clock), clock


class Window:
    """Dataverse's sliding window for one user, on the clock: what is charged, when, and what is left."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.charges: list[tuple[float, float]] = []  # (when, execution seconds)
        self.arrivals: list[float] = []
        self.refused = 0  # requests that started while the window was spent: Dataverse would answer 429

    def spent(self) -> float:
        return self.held(self.clock.now)

    def held(self, at: float) -> float:
        return sum(c for t, c in self.charges if at - WINDOW_S < t <= at)

    def ends(self) -> list[float]:
        return [t for t, _ in self.charges]

    def start(self) -> bool:
        """Admitted, or refused (429): the window had spent its time budget."""
        if self.spent() >= SECONDS:
            self.refused += 1
            return False
        self.arrivals.append(self.clock.now)
        return True

    def answer(self, charged: float) -> tuple[float, int]:
        self.charges.append((self.clock.now, charged))
        in_window = sum(1 for t in self.arrivals if t > self.clock.now - WINDOW_S)
        return max(0.0, SECONDS - self.spent()), REQUESTS - in_window


def run(
    pacers: list[Pacer],
    clock: Clock,
    *,
    cost: float,
    took: float,
    operations: int = 1,
    until: float,
    headers: bool = True,
) -> Window:
    """Every pacer sends requests of `operations` as fast as it lets them, 52 at once; each is charged
    `cost` per operation and answered `took` per operation later (latency and the client's own time)."""
    window = Window(clock)
    jitter = random.Random(20)  # answers come back at their own pace, as from a loaded machine
    flying: list[tuple[float, int, float]] = []  # (answered at, pacer, started at)
    while clock.now < until:
        for answer in [f for f in flying if f[0] <= clock.now]:
            flying.remove(answer)
            i, duration = answer[1], clock.now - answer[2]
            left, requests_left = window.answer(cost * operations)
            if headers:
                others = sum(1 for f in flying if f[1] == i)
                pacers[i].answered(left, requests_left, duration, operations, in_flight=others)
            else:
                pacers[i].answered(None, None, duration, operations)
        for i, p in enumerate(pacers):
            while sum(1 for f in flying if f[1] == i) < 52 and p.wait(operations) == 0.0:
                if not window.start():
                    p.throttled()
                    break
                flying.append((clock.now + took * operations * jitter.uniform(0.8, 1.2), i, clock.now))
        clock.now = round(clock.now + 0.01, 6)
    return window


def test_nothing_is_paced_until_the_service_reports_a_budget():
    p, _ = pacer()
    assert not p.active and p.wait(20) == 0.0
    p.answered(None, None, 0.2)  # F&O, or a sandbox without limits
    assert not p.active and p.answers == 1


def first_answer(p: Pacer, took: float) -> None:
    p.answered(SECONDS - took, REQUESTS - 1, took)  # one lone lookup in a fresh window


def test_one_instance_spends_the_execution_budget_over_the_window_though_requests_take_longer():
    p, clock = pacer()
    first_answer(p, 0.16)
    start = clock.now
    # Batches of 20 charged 0.16 s an operation, answered 0.25 s an operation later.
    window = run([p], clock, cost=0.16, took=0.25, operations=20, until=start + 100)
    spent = sum(c for t, c in window.charges if t > start + WINDOW_S)  # past the first window
    # 90 s at 40 s of execution per 10 s window is 360 s; paced on how long requests took, 230 s.
    # Hardly over: answers land up to a fifth sooner or later than expected (each booking leaves
    # room for how far off they have been lately), so a window may hold a few batches over the
    # budget for a moment, and hardly a request is refused.
    assert 360 * 0.85 <= spent <= 360
    assert window.refused <= 0.02 * (len(window.arrivals) + window.refused)
    assert max(window.held(t) for t in window.ends()) <= SECONDS + 3 * 3.2


def test_what_an_operation_costs_comes_from_the_time_budget_not_from_how_long_it_took():
    p, clock = pacer()
    first_answer(p, 0.16)
    run([p], clock, cost=0.16, took=0.3, operations=20, until=clock.now + 60)
    assert p.cost(20) == pytest.approx(3.2, rel=0.1)


def test_a_request_starts_before_an_earlier_charge_slides_out_when_it_lands_after():
    p, clock = pacer()
    first_answer(p, 0.16)  # a lone look-up, answered at 100
    clock.now = 101.0
    for _ in range(12):  # 12 batches of 3.2 s: 38.4 s, as much as the share holds (0.98 of 40)
        assert p.wait(20) == 0.0
    assert p.wait(20) > 0
    clock.now = 104.2
    for _ in range(12):
        p.answered(40 - 0.16 - 3.2 * (_ + 1), REQUESTS - 14, 3.2, operations=20)
    # They slide out at 114.2; a batch started at 111 lands at about 114.2: it may start then,
    # three seconds before the window has room, and not much sooner.
    clock.now = 110.0
    assert p.wait(20) > 0
    clock.now = 111.3
    assert p.wait(20) == 0.0


def test_four_instances_together_fill_the_window_and_never_overfill_it():
    clock = Clock()
    pacers = [Pacer(window_s=WINDOW_S, peers=lambda: 4, clock=clock) for _ in range(4)]
    for p in pacers:
        first_answer(p, 0.16)
    start = clock.now
    # Answered a little later than charged (latency, a loaded machine): what an operation costs
    # comes from how long requests take, with others about (their part of the window is a guess).
    window = run(pacers, clock, cost=0.16, took=0.175, operations=20, until=start + 100)
    spent = sum(c for t, c in window.charges if t > start + WINDOW_S)
    assert 360 * 0.8 <= spent <= 360
    assert window.refused <= 0.02 * (len(window.arrivals) + window.refused)


def test_the_request_budget_binds_when_requests_are_cheap():
    p, clock = pacer()
    first_answer(p, 0.001)
    window = run([p], clock, cost=0.001, took=0.002, until=clock.now + 100)
    # 200 requests per 10 s, paced to 0.98 of them: no window holds more than 200.
    assert 1900 <= len(window.arrivals) <= 2000
    assert max(sum(1 for a in window.arrivals if t - WINDOW_S < a <= t) for t in window.arrivals) <= REQUESTS


def test_without_a_time_budget_what_a_request_spends_is_how_long_it_took_per_operation():
    p, _ = pacer()
    p.answered(None, REQUESTS - 1, 0.2)  # only the request count reported
    assert p.cost(20) == pytest.approx(4.0)
    for _ in range(30):
        p.answered(None, REQUESTS - 1, 2.0, operations=20)  # 0.1 s an operation, lately
    assert p.cost(20) == pytest.approx(2.0, rel=0.01)


def test_a_budget_reported_spent_stops_every_instance_until_it_is_back():
    p, clock = pacer(peers=2)
    p.answered(SECONDS - 0.2, REQUESTS - 1, 0.2)
    clock.now += 10  # the bucket is full: 2 s of execution
    p.answered(0.0, 150, 0.2)  # someone else spent the window
    assert p.wait(1) > 0  # held until this instance's oldest charge slides out of the window


def test_a_spent_budget_holds_until_this_instances_oldest_charge_has_slid_out():
    p, clock = pacer(peers=2)
    first_answer(p, 0.16)  # at 100
    clock.now = 100.5
    assert p.wait(20) == 0.0
    clock.now = 103.7
    p.answered(0.0, REQUESTS - 30, 3.2, operations=20)  # someone else spent the window
    clock.now = 109.9
    assert p.wait(1) > 0  # the look-up answered at 100 slides out at 110
    clock.now = 110.1
    p.answered(30.0, REQUESTS - 30, 0.2)  # an answer that leaves room: the next may go
    assert p.wait(1) == 0.0


def test_a_refused_request_is_charged_nothing():
    p, clock = pacer()
    first_answer(p, 0.16)
    clock.now += 1
    for _ in range(12):
        assert p.wait(20) == 0.0
    assert p.wait(20) > 0  # the share is booked
    p.answered(None, None, 0.05, operations=20)  # a 429 (no budgets reported): it ran nothing
    p.throttled()
    assert p.wait(20) == 0.0  # its place is free again (the Retry-After holds the limit, not the pacer)


def test_the_limit_sends_the_first_request_alone_then_lets_the_pacer_decide():
    clock = Clock()
    limit = AdaptiveLimit(52, clock=clock, pacer=Pacer(window_s=WINDOW_S, clock=clock))
    assert limit.try_start() == 0.0
    assert limit.try_start() == math.inf  # until the first answer says whether budgets are reported
    limit.answered(SECONDS - 0.2, REQUESTS - 1, 0.2)
    limit.release()
    assert limit.try_start(20) == 0.0  # paced from now on: the window has room
    assert limit.pacer is not None and len(limit.pacer.ledger) == 2  # the look-up and the batch, booked


def test_what_a_peer_learned_an_operation_costs_paces_an_instance_from_its_first_request():
    clock = Clock()
    learned: list[float | None] = [None]
    published: list[float] = []
    pacer = Pacer(window_s=WINDOW_S, peers=lambda: 4, clock=clock, shared_cost=lambda: learned[0],
                  publish=published.append)  # fmt: skip
    limit = AdaptiveLimit(52, clock=clock, pacer=pacer)
    assert limit.try_start(20) == 0.0
    assert limit.try_start(20) == math.inf  # no peer has said: the first goes alone
    learned[0] = 0.16  # now one has (its row in the lease table)
    clock.now += 0.5
    # Paced by the documented budgets (40 s per 10 s) and that cost: a share of 10 s holds three
    # batches of 3.2 s, the one in flight among them; so two more start, and a third waits.
    assert [limit.try_start(20) for _ in range(2)] == [0.0, 0.0]
    assert 0 < limit.try_start(20) < math.inf
    assert [c.operations for c in pacer.ledger] == [20, 20, 20] and pacer.ledger[0].started == 100.0
    limit.answered(SECONDS - 3.2, REQUESTS - 3, 3.3, operations=20)
    assert published and published[-1] == pytest.approx(pacer.per_operation)  # and says what it learned


def test_what_holds_an_instance_while_it_ramps_holds_it_no_longer_than_the_ramp():
    from p2c_core.clients.pacing import RAMP_S

    p, clock = pacer(peers=4)
    first_answer(p, 0.16)
    assert p.wait(20) == 0.0
    clock.now += 3.3
    # Its batch answered: 150 requests arrived in the window, all but its two the others', each
    # costed as its own on average: more than the window holds, so nothing fits while it ramps.
    p.answered(SECONDS - 3.36, REQUESTS - 150, 3.3, operations=20)
    held = p.wait(20)
    assert 0 < held <= RAMP_S  # not until its own charge leaves the window (10 s)
    clock.now += held
    # After the ramp every instance counts the others, and only their charges hold the window.
    assert p.wait(20) == 0.0


def test_without_budgets_the_limit_is_not_paced():
    clock = Clock()
    limit = AdaptiveLimit(4, clock=clock, pacer=Pacer(window_s=WINDOW_S, clock=clock))
    assert limit.try_start() == 0.0
    limit.answered(None, None, 0.05)
    assert [limit.try_start() for _ in range(3)] == [0.0, 0.0, 0.0]  # only the slots bound it
    assert limit.try_start() == math.inf
