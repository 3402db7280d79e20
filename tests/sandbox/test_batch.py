"""`$batch` on both services, as OData 4.0 (11.7) and Dataverse's "Execute batch operations
using the Web API" describe it: multipart/mixed, one response per request in order, atomic
changesets with Content-ID references, stop at the first error unless continue-on-error."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from p2c_core.batch import decode
from p2c_sandbox import Sandbox

DV = "/api/data/v9.2/"


@pytest.fixture(scope="module")
def sb():
    with Sandbox() as sandbox:
        yield sandbox


def http_part(method: str, url: str, body: dict[str, Any] | None = None, content_id: int | None = None) -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id is not None:
        head += f"Content-ID: {content_id}\r\n"
    text = f"{head}\r\n{method} {url} HTTP/1.1\r\n"
    if body is not None:
        text += "Content-Type: application/json\r\n\r\n" + json.dumps(body)
    else:
        text += "\r\n"
    return text


def changeset(*parts: str) -> str:
    boundary = f"changeset_{uuid.uuid4().hex}"
    inner = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--"
    return f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n{inner}"


def send(base: str, root: str, *parts: str, prefer: str | None = None) -> httpx.Response:
    boundary = f"batch_{uuid.uuid4().hex}"
    body = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--\r\n"
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}"}
    if prefer:
        headers["Prefer"] = prefer
    return httpx.post(f"{base}{root}$batch", content=body.encode(), headers=headers, timeout=30)


def answers(response: httpx.Response) -> list[httpx.Response]:
    assert response.status_code == 200, response.text
    return decode(response.headers["content-type"], response.content)


def account(name: str, number: str | None = None) -> dict[str, Any]:
    return {"name": name, "accountnumber": number or f"B-{uuid.uuid4().hex[:8].upper()}", "customertypecode": 3}


def test_independent_requests_answer_in_order_and_the_batch_stops_at_the_first_error(sb: Sandbox):
    good, bad, after = account("Batch One"), {"nosuchcolumn": 1}, account("Never Reached")
    got = answers(send(sb.dataverse_url, DV, http_part("POST", f"{sb.dataverse_url}{DV}accounts", good),
                       http_part("POST", "accounts", bad), http_part("POST", "accounts", after)))  # fmt: skip
    assert [r.status_code for r in got] == [204, 400]  # absolute and relative URLs; none after the error
    assert got[0].headers["odata-entityid"].startswith(f"{sb.dataverse_url}{DV}accounts(")
    assert "nosuchcolumn" in got[1].json()["error"]["message"]
    numbers = {r["accountnumber"] for r in sb.dataverse.rows("accounts")}
    assert good["accountnumber"] in numbers and after["accountnumber"] not in numbers


def test_continue_on_error_runs_every_request_and_says_so(sb: Sandbox):
    first, last = account("Go On 1"), account("Go On 2")
    response = send(sb.dataverse_url, DV, http_part("POST", "accounts", first), http_part("GET", "accounts(nope)"),
                    http_part("PATCH", f"accounts(accountnumber='{last['accountnumber']}')", last),
                    prefer="odata.continue-on-error")  # fmt: skip
    assert response.headers["preference-applied"] == "odata.continue-on-error"
    assert [r.status_code for r in answers(response)] == [204, 400, 204]  # the upsert by key created it
    numbers = {r["accountnumber"] for r in sb.dataverse.rows("accounts")}
    assert {first["accountnumber"], last["accountnumber"]} <= numbers


def test_a_changeset_is_atomic_and_its_parts_refer_to_each_other_by_content_id(sb: Sandbox):
    parent, doomed = account("Parent Co"), account("Doomed Co")
    contact = {"firstname": "Ada", "lastname": "Lovelace", "parentcustomerid_account@odata.bind": "$1"}
    together = changeset(http_part("POST", "accounts", parent, 1), http_part("POST", "contacts", contact, 2),
                         http_part("PATCH", "$1", {"telephone1": "+1 555 0100"}, 3))  # fmt: skip
    ok = answers(send(sb.dataverse_url, DV, together))
    assert [r.status_code for r in ok] == [204, 204, 204]
    row = next(r for r in sb.dataverse.rows("accounts") if r["accountnumber"] == parent["accountnumber"])
    assert row["telephone1"] == "+1 555 0100"
    ada = next(r for r in sb.dataverse.rows("contacts") if r.get("lastname") == "Lovelace")
    assert ada["_parentcustomerid_value"] == row["accountid"]
    # A failing part rolls back the parts before it; the changeset answers with that failure alone.
    before = httpx.get(f"{sb.dataverse_url}{DV}accounts", params={"$select": "name"},
                       headers={"Prefer": "odata.track-changes"}).json()["@odata.deltaLink"]  # fmt: skip
    doomed_set = changeset(http_part("POST", "accounts", doomed, 1), http_part("POST", "accounts", {"bogus": 1}, 2))
    failed = answers(send(sb.dataverse_url, DV, doomed_set))
    assert [r.status_code for r in failed] == [400]
    assert doomed["accountnumber"] not in {r["accountnumber"] for r in sb.dataverse.rows("accounts")}
    assert httpx.get(before).json()["value"] == []  # nothing changed, as far as change tracking can tell


def test_f_and_o_batch_with_composite_keys_and_one_refused_create(sb: Sandbox):
    base, root = sb.fno_url, "/data/"
    key = "CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')"
    new = {"dataAreaId": "usmf", "CustomerAccount": "BATCH-01", "OrganizationName": "Batch Wholesales",
           "CustomerGroupId": "30", "SalesCurrencyCode": "USD"}  # fmt: skip
    got = answers(send(base, root, http_part("PATCH", f"{key}?cross-company=true", {"OrganizationName": "Forest 2"}),
                       http_part("POST", "CustomersV3", new), http_part("POST", "CustomersV3", new),
                       http_part("GET", f"{key}?cross-company=true&$select=OrganizationName"),
                       prefer="odata.continue-on-error"))  # fmt: skip
    assert [r.status_code for r in got] == [204, 201, 400, 200]  # F&O refuses a second create with a 400
    assert "The record already exists." in got[2].json()["error"]["innererror"]["message"]
    assert got[3].json()["OrganizationName"] == "Forest 2"
    assert "BATCH-01" in {r["CustomerAccount"] for r in sb.fno.rows("CustomersV3")}


def test_a_batch_is_one_request_but_spends_the_time_of_every_operation(sb: Sandbox):
    stats = f"{sb.dataverse_url}/_sandbox/stats"
    httpx.post(f"{sb.dataverse_url}/_sandbox/reset-stats")
    protection = f"{sb.dataverse_url}/_sandbox/protection"
    httpx.post(protection, json={"enabled": True, "window_s": 60, "max_execution_s": 1.0, "cost_ms": 100})
    try:
        parts = [http_part("POST", "accounts", account(f"Costly {n}")) for n in range(12)]
        first = send(sb.dataverse_url, DV, *parts)
        assert first.status_code == 200 and len(answers(first)) == 12
        assert first.headers["x-ms-ratelimit-time-remaining-xrm-requests"] == "0.00"  # 12 x 100 ms > 1 s
        refused = send(sb.dataverse_url, DV, parts[0])
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "0x80072321"
    finally:
        httpx.post(protection, json={"enabled": False})
    snapshot = httpx.get(stats).json()
    assert [(r["entity_set"], r["status"], r["count"]) for r in snapshot["requests"]] == [
        ("$batch", 200, 1),
        ("?", 429, 1),
    ]
    assert snapshot["operations"] == [{"method": "POST", "entity_set": "accounts", "status": 204, "count": 12}]
    assert snapshot["operations_total"] == 13


def test_more_than_a_thousand_requests_or_a_body_that_is_not_multipart_is_refused(sb: Sandbox):
    parts = [http_part("GET", "transactioncurrencies?$top=1")] * 1001
    refused = send(sb.dataverse_url, DV, *parts)
    assert refused.status_code == 400 and "maximum number of '1000' operations" in refused.json()["error"]["message"]
    garbled = httpx.post(f"{sb.dataverse_url}{DV}$batch", json={"requests": []})
    assert garbled.status_code == 400 and "multipart/mixed" in garbled.json()["error"]["message"]
