"""Adaptive concurrency: 429s halve the requests in flight, successes win them back."""

import math
import threading
import time

import httpx
import pytest

from p2c_core.clients.concurrency import BUDGET_HOLD_S, AdaptiveLimit
from p2c_core.clients.odata import ODataClient, RetryPolicy, ServiceProfile
from p2c_core.errors import ThrottledError


def test_throttles_halve_the_limit_and_successes_raise_it_to_the_cap():
    limit = AdaptiveLimit(cap=8)
    assert limit.limit == 8
    for expected in (4, 2, 1, 1):
        limit.throttled()
        assert limit.limit == expected
    for _ in range(1 + 2 + 3):  # one more slot per `limit` successes in a row
        limit.succeeded()
    assert limit.limit == 4
    for _ in range(100):
        limit.succeeded()
    assert limit.limit == 8  # never above the cap


def test_no_more_requests_in_flight_than_the_limit():
    limit = AdaptiveLimit(cap=3)
    peak, now, lock = 0, 0, threading.Lock()

    def work() -> None:
        nonlocal peak, now
        with limit.slot():
            with lock:
                now += 1
                peak = max(peak, now)
            time.sleep(0.02)
            with lock:
                now -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 3


def test_the_client_backs_off_its_concurrency_on_429_and_recovers():
    answers = iter([429, 429, *([200] * 20)])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        if status == 429:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"code": "x", "message": "slow"}})
        return httpx.Response(200, json={"value": []})

    profile = ServiceProfile("test", "/", {}, (), max_concurrency=4)
    client = ODataClient(profile, "http://127.0.0.1:1", transport=httpx.MockTransport(handler),
                         retry=RetryPolicy(max_retries=5), sleep=lambda _: None)  # fmt: skip
    client.get_json("things")
    assert client.limit.limit == 2  # two 429s: 4 -> 2 -> 1; then one success: 2
    for _ in range(4):
        client.get_json("things")
    assert client.limit.limit == 3  # 2 more successes -> 3; 3 more needed for 4
    client.get_json("things")
    assert client.limit.limit == 4


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_retry_after_holds_every_new_request_until_it_has_passed():
    clock = Clock()
    limit = AdaptiveLimit(cap=4, clock=clock)
    limit.throttled(0.3)
    assert limit.try_start() == pytest.approx(0.3)  # none goes before Retry-After
    clock.now += 0.2
    assert limit.try_start() == pytest.approx(0.1)
    clock.now += 0.1
    assert limit.try_start() == 0.0  # and after it, nothing waits
    assert limit.try_start() == 0.0
    assert limit.in_use == 2


def test_a_long_retry_after_gives_the_work_back_instead_of_holding_a_worker():
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(429, headers={"Retry-After": "120"}, json={"error": {"code": "x", "message": "slow"}})

    profile = ServiceProfile("test", "/", {}, (), max_concurrency=4)
    client = ODataClient(profile, "http://127.0.0.1:1", transport=httpx.MockTransport(handler),
                         retry=RetryPolicy(max_retries=3, max_inline_wait=30), sleep=lambda _: None)  # fmt: skip
    for _ in range(2):
        with pytest.raises(ThrottledError) as info:
            client.get_json("things")
        assert info.value.retry_after > 100
    assert len(calls) == 1  # the second call never reached the service: it is held for 120 s
    assert client.limit.in_use == 0  # and it held no slot while it was refused


def test_new_requests_start_only_while_the_reported_budget_covers_them():
    limit = AdaptiveLimit(cap=8, clock=Clock())
    limit.budget(10.0, 100)
    limit.budget(9.0, 99)  # one request costs 1 s of execution time
    assert limit.try_start() == 0.0 and limit.try_start() == 0.0  # two in flight
    for left in (8.0, 7.0, 6.0, 5.0, 4.0, 3.0):
        limit.budget(left, 98)  # others' answers: 3 s covers the two in flight and a spare, none more
    assert limit.try_start() == math.inf  # waits for an answer in flight
    limit.release()
    limit.budget(4.0, 97)  # the window moved on: room for more beside the one in flight
    assert limit.try_start() == 0.0
    assert limit.limit == 8  # a spent budget is not a refusal: the slots stay


def test_a_spent_budget_with_nothing_in_flight_asks_again_after_a_moment():
    clock = Clock()
    limit = AdaptiveLimit(cap=8, clock=clock)
    assert limit.try_start() == 0.0
    limit.budget(None, 0)  # no requests left in the window
    limit.release()
    assert limit.try_start() == pytest.approx(BUDGET_HOLD_S)  # wait a moment...
    assert limit.try_start() == pytest.approx(BUDGET_HOLD_S)
    clock.now += BUDGET_HOLD_S
    assert limit.try_start() == 0.0  # ...then one request goes, to learn how far the window moved
    assert limit.try_start() == math.inf  # and only one, until its answer says more
