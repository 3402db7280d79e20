"""Request accounting through the admin endpoint (/_sandbox/stats, /_sandbox/reset-stats):
each request counted by method, entity set and the status it got; a $batch is one request
and one operation per request inside it, as the services count them toward their limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from p2c_sandbox import Sandbox
from tests.sandbox.test_batch import http_part, send


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def counts(base: str) -> tuple[set[tuple[str, str, int, int]], dict[str, Any]]:
    snapshot = httpx.get(base + "/_sandbox/stats").json()
    return {(r["method"], r["entity_set"], r["status"], r["count"]) for r in snapshot["requests"]}, snapshot


def test_dataverse_requests_by_method_entity_set_and_outcome(sb: Sandbox):
    base = sb.dataverse_url
    assert httpx.post(base + "/_sandbox/reset-stats").status_code == 204
    dv = httpx.Client(base_url=base + "/api/data/v9.2/")
    dv.get("accounts", params={"$top": "1"})
    dv.get("accounts", params={"$top": "2"})
    dv.get("accounts(00000000-0000-0000-0000-000000000001)")
    dv.post("accounts", json={"nosuch": 1})
    dv.patch("contacts(msdynce_contactnumber='ACCT-1')", json={"lastname": "Counted"})
    dv.get("nosuchset")
    requests, snapshot = counts(base)
    assert requests == {
        ("GET", "accounts", 200, 2),
        ("GET", "accounts", 404, 1),
        ("POST", "accounts", 400, 1),
        ("PATCH", "contacts", 204, 1),
        ("GET", "nosuchset", 404, 1),
    }
    assert snapshot["total"] == 6 and snapshot["operations_total"] == 6 and snapshot["operations"] == []


def test_fno_batch_is_one_request_and_each_part_an_operation(sb: Sandbox):
    base = sb.fno_url
    httpx.post(base + "/_sandbox/reset-stats")
    key = "CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')"
    response = send(base, "/data/", http_part("GET", f"{key}?$select=OrganizationName"),
                    http_part("PATCH", key, {"OrganizationName": "Counted"}),
                    http_part("GET", "CustomersV3(dataAreaId='usmf',CustomerAccount='NONE')"),
                    prefer="odata.continue-on-error")  # fmt: skip
    assert response.status_code == 200
    httpx.get(base + "/data/CustomersV3/$count")
    requests, snapshot = counts(base)
    assert requests == {("POST", "$batch", 200, 1), ("GET", "CustomersV3", 200, 1)}
    inner = {(r["method"], r["entity_set"], r["status"], r["count"]) for r in snapshot["operations"]}
    assert inner == {("GET", "CustomersV3", 200, 1), ("PATCH", "CustomersV3", 204, 1), ("GET", "CustomersV3", 404, 1)}
    assert snapshot["total"] == 2 and snapshot["operations_total"] == 1 + 3
