"""Dataverse's service protection model on a clock: what a request counts, when, and how an
overspend is paid back (no server, no waiting)."""

from __future__ import annotations

from p2c_sandbox.protection import ProtectionConfig, ServiceProtection

# Dataverse's limits (6,000 requests and 1,200 s of execution per 300 s, 52 at once) scaled to 10 s.
SCALED = {"window_s": 10.0, "max_requests": 200, "max_execution_s": 40.0, "max_concurrent": 52}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def protection(**config: float) -> tuple[ServiceProtection, Clock]:
    clock = Clock()
    return ServiceProtection(ProtectionConfig(enabled=True, **{**SCALED, **config}), clock=clock), clock


def test_a_request_counts_when_it_comes_in_not_when_it_ends():
    sp, _ = protection(max_requests=3)
    assert [sp.admit("u") for _ in range(3)] == [None, None, None]  # three in flight, none ended
    refused = sp.admit("u")
    assert refused is not None and refused.limit == "requests" and refused.code == "0x80072322"


def test_a_batch_is_one_request_but_each_of_its_operations_spends_execution_time():
    sp, _ = protection(cost_ms=20)
    assert sp.admit("u") is None
    headers = sp.done("u", operations=100)
    assert headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "199"
    assert headers["x-ms-ratelimit-time-remaining-xrm-requests"] == "38.00"  # 100 x 20 ms


def test_a_batch_that_starts_inside_the_budget_runs_past_it_and_the_overspend_is_paid_back():
    sp, clock = protection(cost_ms=20)
    for at, operations in ((1000.0, 50), (1009.0, 1900)):  # 1 s, then 38 s of the 40 s
        clock.now = at
        assert sp.admit("u") is None
        sp.done("u", operations=operations)
    clock.now = 1009.5
    assert sp.admit("u") is None  # 1 s left: admitted ...
    sp.done("u", operations=1000)  # ... and it spends 20 s: 59 s in the window
    refused = sp.admit("u")
    assert refused is not None and refused.limit == "execution_time"
    # Not when the oldest request leaves (at 1010): only when the 38 s request leaves too
    # (at 1019) is what the window holds (20 s) under the limit again.
    assert refused.retry_after_s == 10
    clock.now = 1018.9
    assert sp.admit("u") is not None
    clock.now = 1019.1
    assert sp.admit("u") is None


def test_the_request_limit_waits_for_the_requests_over_it_to_leave_the_window():
    sp, clock = protection(max_requests=4)
    for step in range(6):  # 4 admitted at once, then each second one more is refused
        clock.now = 1000.0 + (0 if step < 4 else step)
        outcome = sp.admit("u")
        if outcome is None:
            sp.done("u")
    refused = sp.admit("u")
    assert refused is not None and refused.retry_after_s == 5  # the first of the four leaves at 1010


def test_budgets_are_per_user():
    sp, _ = protection(max_requests=1)
    assert sp.admit("app-1") is None
    assert sp.admit("app-1") is not None
    assert sp.admit("app-2") is None  # another application user of the pool has its own


def test_too_many_at_once_is_refused_with_the_concurrency_code():
    sp, _ = protection(max_concurrent=2)
    assert sp.admit("u") is None and sp.admit("u") is None
    refused = sp.admit("u")
    assert refused is not None and refused.limit == "concurrency" and refused.code == "0x80072326"
