"""accounts under injected faults: the target ends as a fault-free run leaves it."""

from __future__ import annotations

from p2c_core import engine
from p2c_sandbox import FaultConfig

from .conftest import E2E
from .test_accounts import assert_synced, fno_customers


def test_accounts_converge_under_twenty_percent_faults(e2e: E2E, monkeypatch):
    # Short record backoff so the test does not wait minutes; the logic is the same.
    monkeypatch.setattr(engine, "RECORD_BACKOFF", engine.Backoff(base=0.2, cap=1.0))
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
