"""Service protection: request, execution-time and concurrency limits per caller, as Dataverse
applies them (F&O with its own wording); F&O's resource-based, priority-based throttling."""

from __future__ import annotations

import base64
import json
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
    assert snapshot["refused"] == {"requests": 1}


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


def app_token(client_id: str) -> str:
    """An unsigned token shaped like Entra's, naming the application in `appid`."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'typ': 'JWT', 'alg': 'none'})}.{part({'appid': client_id, 'aud': 'fno'})}.sig"


def fno(sb: Sandbox, token: str) -> httpx.Client:
    return httpx.Client(base_url=sb.fno_url + "/data/", headers={"Authorization": f"Bearer {token}"})


def test_fno_user_based_limits_are_worded_as_fno_words_them_and_report_no_budget(sb: Sandbox):
    r = httpx.post(sb.fno_url + "/_sandbox/protection", json={"enabled": True, "max_requests": 2, "window_s": 300})
    assert r.status_code == 200
    try:
        with fno(sb, "user-a") as client:
            answers = [client.get("CustomersV3", params={"$top": 1}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert not any(k.startswith("x-ms-ratelimit") for a in answers for k in a.headers)  # Dataverse's only
        error = answers[2].json()["error"]
        assert (
            error["innererror"]["message"]
            == "Number of requests exceeded the limit of 2 over the time window of 300 seconds."
        )
        assert "0x8007" not in json.dumps(error)
        assert answers[2].headers["ms-dyn-aid"] and int(answers[2].headers["Retry-After"]) >= 1
    finally:
        httpx.post(sb.fno_url + "/_sandbox/protection", json={"enabled": False})


def throttle(sb: Sandbox, **config) -> dict:
    r = httpx.post(sb.fno_url + "/_sandbox/throttling", json={"enabled": True, **config})
    assert r.status_code == 200, r.text
    return r.json()


def test_fno_throttles_low_priority_integrations_before_high_ones(sb: Sandbox):
    # Capacity 1 s of execution per 60 s, 100 ms an operation: the load passes Low's 30%
    # after 3 requests from anyone, High's 90% after 9.
    throttle(sb, window_s=60, capacity_s=1.0, cost_ms=100, thresholds={"Low": 0.3, "Medium": 0.6, "High": 0.9},
             priorities={"high-app": "High"}, default_priority="Low")  # fmt: skip
    try:
        with fno(sb, app_token("low-app")) as low, fno(sb, app_token("high-app")) as high:
            low_statuses = [low.get("CustomersV3", params={"$top": 1}).status_code for _ in range(4)]
            assert low_statuses == [200, 200, 200, 429]
            refused = low.get("CustomersV3", params={"$top": 1})
            assert refused.status_code == 429
            message = refused.json()["error"]["innererror"]["message"]
            assert message == (
                "This request could not be processed at this time due to system experiencing high resource utilization."
            )
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            # The same load does not yet stop a high-priority integration...
            high_statuses = [high.get("CustomersV3", params={"$top": 1}).status_code for _ in range(7)]
            assert high_statuses == [200] * 6 + [429]  # ...until its own threshold: 9 operations in all
        snapshot = httpx.get(sb.fno_url + "/_sandbox/throttling").json()
        assert snapshot["refused"] == {"Low": 2, "High": 1}
        assert snapshot["utilization"] == 0.9
    finally:
        httpx.post(sb.fno_url + "/_sandbox/throttling", json={"enabled": False})


def test_fno_throttling_counts_every_operation_of_a_batch_and_every_caller(sb: Sandbox):
    throttle(sb, window_s=60, capacity_s=1.0, cost_ms=100, thresholds={"Medium": 0.5})
    try:
        boundary = "batch_1"
        parts = "".join(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            "GET CustomersV3?$top=1 HTTP/1.1\r\nAccept: application/json\r\n\r\n"
            for _ in range(4)
        )
        with fno(sb, "user-a") as a, fno(sb, "user-b") as b:
            batch = a.post("$batch", content=f"{parts}--{boundary}--\r\n",
                           headers={"Content-Type": f"multipart/mixed; boundary={boundary}"})  # fmt: skip
            assert batch.status_code == 200
            assert httpx.get(sb.fno_url + "/_sandbox/throttling").json()["utilization"] == 0.4
            assert b.get("CustomersV3", params={"$top": 1}).status_code == 200  # 0.5: the load is everyone's
            assert b.get("CustomersV3", params={"$top": 1}).status_code == 429
    finally:
        httpx.post(sb.fno_url + "/_sandbox/throttling", json={"enabled": False})


def test_bad_throttling_settings_are_named_and_dataverse_has_none(sb: Sandbox):
    r = httpx.post(sb.fno_url + "/_sandbox/throttling", json={"priorities": {"app": "Urgent"}})
    assert r.status_code == 400 and "Urgent" in r.json()["error"]
    r = httpx.post(sb.fno_url + "/_sandbox/throttling", json={"thresholds": {"Low": 1.5}})
    assert r.status_code == 400 and "thresholds" in r.json()["error"]
    assert httpx.get(sb.dataverse_url + "/_sandbox/throttling").status_code == 404
