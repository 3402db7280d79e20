"""Service protection: request, execution-time and concurrency limits per caller, as Dataverse applies them."""

from __future__ import annotations

import threading

import httpx
import pytest

from p2c_sandbox import FaultConfig, Sandbox


@pytest.fixture(scope="module")
def sb():
    with Sandbox(seed=False) as sandbox:
        yield sandbox


def client(sb: Sandbox, token: str = "caller-a") -> httpx.Client:
    return httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/", headers={"Authorization": f"Bearer {token}"})


def protect(sb: Sandbox, **config) -> None:
    r = httpx.post(sb.dataverse_url + "/_sandbox/protection", json={"enabled": True, **config})
    assert r.status_code == 200, r.text


def test_the_request_budget_gives_429_with_retry_after_and_code_and_counts_down_in_headers(sb: Sandbox):
    protect(sb, max_requests=3, window_s=60)
    with client(sb) as dv, client(sb, "caller-b") as other:
        left = [
            dv.get("transactioncurrencies").headers["x-ms-ratelimit-burst-remaining-xrm-requests"] for _ in range(3)
        ]
        assert left == ["2", "1", "0"]
        refused = dv.get("transactioncurrencies")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "0x80072322"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert other.get("transactioncurrencies").status_code == 200  # budgets are per caller
    snapshot = httpx.get(sb.dataverse_url + "/_sandbox/protection").json()
    assert snapshot["refused"] == {"0x80072322": 1}


def test_execution_time_is_a_budget_of_its_own(sb: Sandbox):
    protect(sb, max_requests=100, max_execution_s=1.0, cost_ms=400, window_s=60)
    with client(sb) as dv:
        statuses = [dv.get("transactioncurrencies").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]  # 3 x 400 ms spends the second
        assert dv.get("transactioncurrencies").json()["error"]["code"] == "0x80072321"


def test_too_many_at_once_is_refused_at_once(sb: Sandbox):
    protect(sb, max_concurrent=1, window_s=60)
    sb.dataverse_service.faults.configure(FaultConfig(latency_ms=400))
    try:
        results: list[httpx.Response] = []

        def slow() -> None:
            with client(sb) as dv:
                results.append(dv.get("transactioncurrencies"))

        first = threading.Thread(target=slow)
        first.start()
        threading.Event().wait(0.15)  # the first request is in flight
        with client(sb) as dv:
            refused = dv.get("transactioncurrencies")
        first.join()
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "0x80072326"
        assert results[0].status_code == 200
    finally:
        sb.dataverse_service.faults.configure(FaultConfig())
        httpx.post(sb.dataverse_url + "/_sandbox/protection", json={"enabled": False})


def test_bad_protection_settings_are_named():
    with Sandbox(seed=False) as sandbox:
        r = httpx.post(sandbox.dataverse_url + "/_sandbox/protection", json={"max_requets": 5})
        assert r.status_code == 400 and "max_requets" in r.json()["error"]
