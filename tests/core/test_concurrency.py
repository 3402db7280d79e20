"""Adaptive concurrency: 429s halve the requests in flight, successes win them back."""

import threading
import time

import httpx
import pytest

from p2c_core.clients.concurrency import AdaptiveLimit
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


def test_retry_after_holds_every_new_request_until_it_has_passed():
    limit = AdaptiveLimit(cap=4)
    limit.throttled(0.3)
    started: list[float] = []
    t0 = time.monotonic()

    def work() -> None:
        with limit.slot():
            started.append(time.monotonic() - t0)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(started) == 3 and min(started) >= 0.29  # none went before Retry-After
    with limit.slot():  # and after it, nothing waits
        assert time.monotonic() - t0 < 1.0


def test_a_long_retry_after_gives_the_work_back_instead_of_holding_a_worker():
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(429, headers={"Retry-After": "120"}, json={"error": {"code": "x", "message": "slow"}})

    profile = ServiceProfile("test", "/", {}, (), max_concurrency=4)
    client = ODataClient(profile, "http://127.0.0.1:1", transport=httpx.MockTransport(handler),
                         retry=RetryPolicy(max_retries=3, max_inline_wait=30), sleep=lambda _: None)  # fmt: skip
    t0 = time.monotonic()
    for _ in range(2):
        with pytest.raises(ThrottledError) as info:
            client.get_json("things")
        assert info.value.retry_after > 100
    assert len(calls) == 1  # the second call never reached the service: it is held for 120 s
    assert time.monotonic() - t0 < 1.0


def started_within(limit: AdaptiveLimit, seconds: float) -> bool:
    """Whether a new request gets a slot within `seconds` (it is given back at once)."""
    got = threading.Event()

    def take() -> None:
        with limit.slot():
            got.set()

    threading.Thread(target=take, daemon=True).start()
    return got.wait(seconds)


def test_new_requests_start_only_while_the_reported_budget_covers_them():
    limit = AdaptiveLimit(cap=8)
    limit.budget(10.0, 100)
    limit.budget(9.0, 99)  # one request costs 1 s of execution time
    first, second = limit.slot(), limit.slot()
    first.__enter__()
    second.__enter__()
    for left in (8.0, 7.0, 6.0, 5.0, 4.0, 3.0):
        limit.budget(left, 98)  # others' answers: 3 s covers the two in flight and a spare, none more
    assert not started_within(limit, 0.2)
    second.__exit__(None, None, None)
    limit.budget(4.0, 97)  # the window moved on: room for more beside the one in flight
    assert started_within(limit, 0.2)
    assert limit.limit == 8  # a spent budget is not a refusal: the slots stay
    first.__exit__(None, None, None)


def test_a_spent_budget_with_nothing_in_flight_asks_again_after_a_moment():
    limit = AdaptiveLimit(cap=8)
    with limit.slot():
        limit.budget(None, 0)  # no requests left in the window
    t0 = time.monotonic()
    assert started_within(limit, 2.0)  # one request goes, to learn how far the window moved
    assert time.monotonic() - t0 >= 0.4
    assert not started_within(limit, 0.2)  # and only one, until its answer says more
