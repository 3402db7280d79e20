"""Pacing to one share of an identity's budget, on a clock: no test waits."""

from __future__ import annotations

import math

import pytest

from p2c_core.clients.concurrency import AdaptiveLimit
from p2c_core.clients.pacing import BURST_S, Pacer

# Dataverse's budgets scaled to a 10 s window: 200 requests and 40 s of execution time.
WINDOW_S, REQUESTS, SECONDS = 10.0, 200, 40.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pacer(peers: int = 1) -> tuple[Pacer, Clock]:
    clock = Clock()
    return Pacer(window_s=WINDOW_S, peers=lambda: peers, clock=clock), clock


def spend(p: Pacer, clock: Clock, seconds: float, *, operations: int = 1, until: float) -> int:
    """Start requests (each `seconds` of execution) as fast as the pacer lets them; how many."""
    started = 0
    while clock.now < until:
        wait = p.wait(operations)
        if wait > 0:
            clock.now += wait
            continue
        started += 1
        p.answered(SECONDS - seconds, REQUESTS - 1, seconds, operations)  # as if alone in a fresh window
    return started


def test_nothing_is_paced_until_the_service_reports_a_budget():
    p, _ = pacer()
    assert not p.active and p.wait(20) == 0.0
    p.answered(None, None, 0.2)  # F&O, or a sandbox without limits
    assert not p.active and p.answers == 1


def test_one_instance_spends_the_execution_budget_over_the_window_and_no_faster():
    p, clock = pacer()
    p.answered(SECONDS - 0.2, REQUESTS - 1, 0.2)  # the first answer: the budget, and what one operation took
    start = clock.now
    started = spend(p, clock, 3.2, operations=20, until=start + 100)  # batches of 20 at 0.16 s each
    spent = started * 3.2
    # 100 s at 40 s of execution per 10 s window is 400 s: within one bucket of it.
    assert 400 - BURST_S * 4 - 3.2 <= spent <= 400 + BURST_S * 4


def test_four_instances_each_take_a_quarter():
    p, clock = pacer(peers=4)
    p.answered(SECONDS - 0.2, REQUESTS - 1, 0.2)
    start = clock.now
    started = spend(p, clock, 0.2, until=start + 100)
    assert 100 * 4 / 4 / 0.2 * 0.95 <= started <= 100 * 4 / 4 / 0.2 * 1.05  # 1 s of execution per second


def test_the_request_budget_binds_when_requests_are_cheap():
    p, clock = pacer()
    p.answered(SECONDS - 0.001, REQUESTS - 1, 0.001)
    started = spend(p, clock, 0.001, until=clock.now + 100)
    assert 1900 <= started <= 2000 + REQUESTS * BURST_S / WINDOW_S  # 200 requests per 10 s


def test_what_a_request_spends_is_measured_per_operation():
    p, _ = pacer()
    p.answered(SECONDS - 0.2, REQUESTS - 1, 0.2)
    assert p.cost(20) == pytest.approx(4.0)
    for _ in range(30):
        p.answered(SECONDS - 1.0, REQUESTS - 1, 2.0, operations=20)  # 0.1 s an operation, lately
    assert p.cost(20) == pytest.approx(2.0, rel=0.01)


def test_a_budget_reported_spent_stops_every_instance_until_it_is_back():
    p, clock = pacer(peers=2)
    p.answered(SECONDS - 0.2, REQUESTS - 1, 0.2)
    clock.now += 10  # the bucket is full: 2 s of execution
    p.answered(0.0, 150, 0.2)  # someone else spent the window
    assert p.seconds.level <= 0 and p.wait(1) > 0


def test_a_429_empties_the_buckets():
    p, clock = pacer()
    p.answered(SECONDS - 0.2, REQUESTS - 1, 0.2)
    clock.now += 10
    assert p.wait(1) == 0.0
    p.throttled()
    assert p.wait(1) > 0


def test_the_limit_sends_the_first_request_alone_then_lets_the_pacer_decide():
    clock = Clock()
    limit = AdaptiveLimit(52, clock=clock, pacer=Pacer(window_s=WINDOW_S, clock=clock))
    assert limit.try_start() == 0.0
    assert limit.try_start() == math.inf  # until the first answer says whether budgets are reported
    limit.answered(SECONDS - 0.2, REQUESTS - 1, 0.2)
    limit.release()
    assert limit.try_start() > 0  # paced: the bucket fills from empty, no burst at start
    clock.now += 1
    assert limit.try_start() == 0.0


def test_without_budgets_the_limit_is_not_paced():
    clock = Clock()
    limit = AdaptiveLimit(4, clock=clock, pacer=Pacer(window_s=WINDOW_S, clock=clock))
    assert limit.try_start() == 0.0
    limit.answered(None, None, 0.05)
    assert [limit.try_start() for _ in range(3)] == [0.0, 0.0, 0.0]  # only the slots bound it
    assert limit.try_start() == math.inf
