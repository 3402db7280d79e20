"""Injected faults: seeded and repeatable, each kind as a client would see it."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from p2c_sandbox import FaultConfig, Sandbox
from p2c_sandbox.faults import Faults


def outcomes(sb: Sandbox, n: int) -> list[str]:
    seen = []
    with httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/") as dv:
        for _ in range(n):
            try:
                r = dv.get("transactioncurrencies", params={"$select": "isocurrencycode"})
                r.read()
                seen.append(str(r.status_code))
            except httpx.TransportError as exc:
                seen.append(type(exc).__name__)
    return seen


def test_same_seed_same_faults_other_seed_other_faults():
    with Sandbox() as sb:
        config = FaultConfig(seed=7, error_rate=0.3, drop_rate=0.1)
        sb.set_faults(config)
        first = outcomes(sb, 40)
        sb.set_faults(config)
        assert outcomes(sb, 40) == first
        assert {"200", "429"} <= set(first) and "RemoteProtocolError" in first
        sb.set_faults(FaultConfig(seed=8, error_rate=0.3, drop_rate=0.1))
        assert outcomes(sb, 40) != first


def test_throttle_has_retry_after_and_the_real_error_code():
    with Sandbox() as sb, httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/") as dv:
        sb.set_faults(FaultConfig(error_rate=1.0, statuses={429: 1.0}, retry_after_s=3))
        r = dv.get("accounts")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        assert r.json()["error"]["code"] == "0x80072322" and r.headers["x-ms-service-request-id"]


def test_a_fault_after_handling_keeps_the_write_and_loses_the_answer():
    with Sandbox() as sb, httpx.Client(base_url=sb.fno_url + "/data/") as fno:
        sb.set_faults(FaultConfig(error_rate=1.0, statuses={500: 1.0}, after_share=1.0))
        r = fno.post("CustomersV3", json={"CustomerAccount": "AFTER-1", "OrganizationName": "Lost answer"})
        assert r.status_code == 500 and "innererror" in r.json()["error"]
        assert any(row["CustomerAccount"] == "AFTER-1" for row in sb.fno.rows("CustomersV3"))


def test_latency_and_bad_configuration():
    with Sandbox() as sb:
        sb.set_faults(FaultConfig(latency_ms=200))
        t0 = time.monotonic()
        assert outcomes(sb, 2) == ["200", "200"]
        assert time.monotonic() - t0 >= 0.4
        admin = httpx.post(sb.dataverse_url + "/_sandbox/faults", json={"error_rate": 2})
        assert admin.status_code == 400 and "between 0 and 1" in admin.json()["error"]
        admin = httpx.post(sb.dataverse_url + "/_sandbox/faults", json={"nope": 1})
        assert admin.status_code == 400 and "nope" in admin.json()["error"]
        ok = httpx.post(sb.dataverse_url + "/_sandbox/faults", json={"seed": 3, "error_rate": 0.5})
        assert ok.status_code == 200 and ok.json()["config"]["seed"] == 3


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_admin_endpoints_are_never_faulted(rate: float):
    with Sandbox() as sb:
        sb.set_faults(FaultConfig(error_rate=rate, drop_rate=0.0))
        assert httpx.get(sb.dataverse_url + "/_sandbox/stats").status_code == 200


def test_a_slow_answer_times_the_client_out_and_the_write_still_happens():
    with Sandbox(seed=False) as sb:
        sb.dataverse_service.faults.configure(FaultConfig(slow_rate=1.0, slow_ms=800))
        dv = httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/", timeout=0.3)
        with dv, pytest.raises(httpx.TimeoutException):
            dv.post("transactioncurrencies", json={"isocurrencycode": "NZD", "currencyname": "NZ Dollar"})
        time.sleep(1.0)
        assert [r["isocurrencycode"] for r in sb.dataverse.rows("transactioncurrencies")] == ["NZD"]
        assert sb.dataverse_service.faults.snapshot()["counts"] == {"slow": 1}


def test_latency_jitter_is_seeded_and_within_its_bounds():
    # Acceptance 3: the same seed gives the same fault sequence, delays included.
    def delays(seed: int) -> list[float]:
        faults = Faults()
        faults.configure(FaultConfig(seed=seed, latency_ms=100, jitter_ms=40))
        return [faults.draw().delay_s for _ in range(200)]

    first = delays(4)
    assert first == delays(4) and first != delays(5)
    assert all(0.06 <= d <= 0.14 for d in first) and max(first) - min(first) > 0.06


def test_error_rate_is_split_between_statuses_by_weight_and_worded_as_each_service_does():
    with Sandbox() as sb, httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/") as dv:
        sb.set_faults(FaultConfig(seed=2, error_rate=1.0, statuses={500: 1.0, 503: 3.0}))
        seen = [dv.get("transactioncurrencies").status_code for _ in range(200)]
        assert set(seen) == {500, 503} and 2 < seen.count(503) / seen.count(500) < 4.5
        sb.set_faults(FaultConfig(error_rate=1.0, statuses={403: 1.0}))
        denied = dv.get("accounts")
        # "Compose HTTP requests and handle errors": 403 for privilege errors (PrivilegeDenied).
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "0x80040220"
        fno = httpx.get(sb.fno_url + "/data/CustomersV3")
        assert fno.status_code == 403 and fno.headers["ms-dyn-aid"] and "innererror" in fno.json()["error"]


def test_a_slow_body_starts_at_once_and_ends_late():
    # Each read arrives within a short read timeout; only a deadline on the whole answer sees it.
    with Sandbox() as sb:
        sb.set_faults(FaultConfig(slow_body_rate=1.0, slow_ms=800))
        url = sb.dataverse_url + "/api/data/v9.2/accounts?$select=name"
        with httpx.Client(timeout=httpx.Timeout(0.4)) as client:
            t0 = time.monotonic()
            with client.stream("GET", url) as response:
                started = time.monotonic() - t0
                body = response.read()
            ended = time.monotonic() - t0
        assert response.status_code == 200 and len(json.loads(body)["value"]) > 40
        assert started < 0.3 and ended >= 0.75
        assert sb.dataverse_service.faults.snapshot()["counts"] == {"slow body": 1}
        admin = httpx.post(sb.fno_url + "/_sandbox/faults", json={"slow_body_rate": 0.5, "slow_ms": 100})
        assert admin.status_code == 200 and admin.json()["config"]["slow_body_rate"] == 0.5
