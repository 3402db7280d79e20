"""accounts under injected faults: the target ends as a fault-free run leaves it."""

from __future__ import annotations

import time

from p2c_core import failing
from p2c_core.clients.retry import Backoff
from p2c_core.envelope import decode
from p2c_sandbox import FaultConfig
from p2c_sandbox.protection import ThrottlingConfig

from .conftest import E2E
from .test_accounts import assert_synced, fno_customers


def test_accounts_converge_under_twenty_percent_faults(e2e: E2E, monkeypatch):
    # Short record backoff so the test does not wait minutes; the logic is the same.
    monkeypatch.setattr(failing, "RECORD_BACKOFF", Backoff(base=0.2, cap=1.0))
    monkeypatch.setenv("P2C_BATCH_SIZE", "2")  # many small batches, so the faults hit batches
    e2e.restart_runtime()
    natives = set(fno_customers(e2e))
    e2e.sandbox.set_faults(FaultConfig(seed=42, error_rate=0.15, drop_rate=0.05, retry_after_s=1))
    for _ in range(10):  # timer ticks: a poll that failed is retried on the next one
        e2e.sync("accounts")
        cursor = e2e.runtime.state.get_cursor("accounts")
        if cursor.link and "deltatoken" in cursor.link and e2e.host.depth("p2c-accounts") == 0:
            break
    injected = [svc.faults.snapshot() for svc in (e2e.sandbox.dataverse_service, e2e.sandbox.fno_service)]
    e2e.sandbox.set_faults(FaultConfig())
    counts = [snap["counts"] for snap in injected]  # the faults really happened
    assert sum(n for c in counts for kind, n in c.items() if kind != "pass") >= 5, counts
    assert sum(c.get("drop", 0) for c in counts) >= 1 and sum(c.get("error 429", 0) for c in counts) >= 1, counts
    e2e.sync("accounts")
    assert_synced(e2e, natives)  # every record, once, with every mapped field; only the expected failures


def test_a_long_throttle_makes_progress_without_spending_attempts(e2e: E2E, monkeypatch):
    monkeypatch.setenv("P2C_RECORD_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("P2C_HTTP_MAX_RETRIES", "0")
    monkeypatch.setenv("P2C_RECORD_RETRY_BASE_SECONDS", "0.2")  # so the wait is Retry-After's
    e2e.restart_runtime()
    natives = set(fno_customers(e2e))
    # F&O answers every request 429 (Retry-After 1 s) for a while: far more than 2 attempts' worth.
    e2e.sandbox.fno_service.faults.configure(FaultConfig(error_rate=1.0, statuses={429: 1.0}, after_share=0.0))
    e2e.host.fire(next(f for f in e2e.host.timers() if f.name == "accounts_poll"))
    apply = next(f for f in e2e.host.queue_functions() if f.name == "accounts_apply")
    started = time.monotonic()
    while time.monotonic() < started + 6:
        if not e2e.host.pump(apply):
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    retried = sum(r.counts.get("retried", 0) for r in e2e.runtime.state.runs("accounts") if r.kind == "apply")
    assert retried >= 48  # every record turned away and put back, none failed (below)
    # No request before Retry-After (1 s) had passed: the process held them all.
    turned_away = e2e.sandbox.fno_service.faults.snapshot()["counts"].get("error 429", 0)
    assert 3 <= turned_away <= elapsed / 1.0 + 8  # + what was in flight when the first 429 came
    # Throttles spend no attempts: what waits in the queue is still on its first.
    waiting = e2e.storage.queue("p2c-accounts").peek_messages(max_messages=32)
    attempts = {r.attempt for m in waiting for r in decode(m.content).records}
    assert waiting and attempts == {0}
    assert {f.error_class for f in e2e.runtime.state.failures("accounts")} == {"MappingError"}  # none gave up
    assert e2e.runtime.dataverse.odata.limit.limit == 52 and e2e.runtime.fno.odata.limit.limit == 1
    e2e.sandbox.fno_service.faults.configure(FaultConfig())
    e2e.host.drain([apply], timeout=60, idle_sleep=0.05)
    assert_synced(e2e, natives)


def test_accounts_converge_under_fno_resource_based_throttling(e2e: E2E, monkeypatch):
    # F&O's web servers near capacity: past 80% (this integration's Medium priority) every
    # request is answered 429 with Retry-After until the load of the last 2 s falls below it.
    monkeypatch.setenv("P2C_BATCH_SIZE", "8")  # several batches, so throttling meets some of them
    e2e.restart_runtime()
    natives = set(fno_customers(e2e))
    throttling = e2e.sandbox.fno_service.throttling
    assert throttling is not None
    throttling.configure(ThrottlingConfig(enabled=True, window_s=2, capacity_s=0.2, cost_ms=10))
    try:
        e2e.sync("accounts")
        refused = throttling.snapshot()["refused"]
    finally:
        throttling.configure(ThrottlingConfig())
    assert refused.get("Medium", 0) > 0  # throttled, and yet:
    assert_synced(e2e, natives)
    gave_up = {f.error_class for f in e2e.runtime.state.failures("accounts")}
    assert gave_up == {"MappingError"}  # only the records seeded to fail mapping
