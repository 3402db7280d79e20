"""A message's records claimed together: a claim whose answer is lost, or a delivery that stops
half way, never leaves leases that make the records fail as "being applied by another worker"."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError

import function_app
from p2c_cli.host import LocalHost
from p2c_core.hostconfig import HOST_JSON
from p2c_core.state import ids, keymap
from p2c_core.state.tables import now, source_key
from tests.e2e.conftest import E2E

# The lease of production (settings' default): long enough that a record kept busy by a lease
# nobody holds runs out of attempts (8, 5 s apart) before the lease ends.
LEASE_S = "120"


def _invalid(e2e: E2E) -> set[str]:
    """The demo rows p2c cannot map (a name over F&O's 100 characters): they fail whatever happens."""
    return {f.source_key for f in e2e.runtime.state.failures("accounts") if f.error_class == "MappingError"}


def _customers(e2e: E2E) -> set[str]:
    return {r["CustomerAccount"] for r in e2e.sandbox.fno.rows("CustomersV3")}


def _leased(e2e: E2E) -> list[str]:
    at = now()
    return [e.source_key for e in e2e.runtime.state.keymap.get_many("accounts", _keys(e2e)).values() if e.leased(at)]


def _keys(e2e: E2E) -> list[str]:
    return [e.source_key for e in e2e.runtime.state.entries("accounts")]


def test_a_claim_transaction_whose_answer_is_lost_is_known_as_ours(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    # The storage client retries a transaction whose answer it lost: the retry meets the
    # entries the first attempt created and fails ("already exists"), though they are ours.
    monkeypatch.setenv("P2C_APPLY_LEASE_SECONDS", LEASE_S)
    e2e.restart_runtime()
    real, lost = keymap.submit, []

    def answer_lost(client: Any, ops: list[Any]) -> list[dict[str, Any]]:
        leases = [op for op in ops if op[0] == "create" and op[1].get("lease_until")]
        if leases and len(leases) == len(ops) > 1 and not lost:
            real(client, ops)  # went through; its answer did not come back
            lost.extend(source_key(op[1]["RowKey"]) for op in ops)
        return real(client, ops)

    monkeypatch.setattr(keymap, "submit", answer_lost)
    summary = e2e.sync("accounts")
    assert len(lost) > 1
    failures = e2e.runtime.state.failures("accounts")
    assert {f.error_class for f in failures} == {"MappingError"}  # none "being applied by another worker"
    assert set(lost) - _invalid(e2e) <= _customers(e2e)  # written by the delivery that claimed them
    assert summary.flows["accounts"].written >= len(lost) and not _leased(e2e)


def test_a_delivery_that_stops_half_way_gives_its_leases_back(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("P2C_APPLY_LEASE_SECONDS", LEASE_S)
    e2e.restart_runtime()
    # The host makes a failed message visible again after a second, not host.json's 30.
    config = json.loads(HOST_JSON.read_text())
    config["extensions"]["queues"]["visibilityTimeout"] = "00:00:01"
    (tmp_path / "host.json").write_text(json.dumps(config))
    e2e.host.close()
    e2e.host = LocalHost(function_app.app, e2e.runtime.storage, host_json=tmp_path / "host.json", lease_seconds=2)
    real, raised = ids.reserve, []

    def storage_gave_up(storage: Any, flow: str, wanted: dict[str, str]) -> set[str]:
        if len(wanted) > 1 and not raised:
            raised.extend(wanted.values())
            raise ServiceResponseError("connection reset (after the client's retries)")
        return real(storage, flow, wanted)

    monkeypatch.setattr(ids, "reserve", storage_gave_up)
    functions = {f.name: f for f in e2e.host.functions}
    e2e.host.fire(functions["accounts_poll"])
    while not raised and e2e.host.pump(functions["accounts_apply"]):
        pass
    assert raised and not set(raised) & _customers(e2e)
    assert not set(raised) & set(_leased(e2e))  # claimed, then given back when the delivery stopped
    summary = e2e.sync("accounts")  # the message's next delivery
    assert set(raised) - _invalid(e2e) <= _customers(e2e)
    assert {f.error_class for f in e2e.runtime.state.failures("accounts")} == {"MappingError"}
    assert summary.flows["accounts"].written >= len(set(raised) - _invalid(e2e))


def test_a_record_leased_by_a_worker_that_stopped_waits_for_the_lease_to_end(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    # Few attempts, a lease that outlasts them: before, the record failed "being applied by
    # another worker" though nobody was; waiting on a lease spends no attempt.
    monkeypatch.setenv("P2C_RECORD_MAX_ATTEMPTS", "2")
    e2e.restart_runtime()
    key = next(r["accountnumber"] for r in e2e.sandbox.dataverse.rows("accounts")
               if r.get("customertypecode") == 3 and r.get("statecode") == 0 and r.get("accountnumber")
               and len(r["name"]) <= 100)  # fmt: skip
    e2e.runtime.state.keymap.claim(None, "accounts", key, 0, timedelta(seconds=12))  # its holder stopped
    e2e.sync("accounts")
    assert key in _customers(e2e)
    assert {f.error_class for f in e2e.runtime.state.failures("accounts")} == {"MappingError"}
