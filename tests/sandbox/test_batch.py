"""`$batch` on both services, pinned to OData 4.0 (11.7 Batch Requests) and Dataverse's
"Execute batch operations using the Web API" (cited per test as "the batch doc").

The multipart is built and read here by hand, so these tests pin the wire format the
sandbox speaks, not whatever p2c's own batch client happens to accept.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from p2c_sandbox import FaultConfig, Sandbox

DV = "/api/data/v9.2/"
FNO = "/data/"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


# --- building and reading multipart ----------------------------------------------------


def http_part(method: str, url: str, body: dict[str, Any] | None = None, content_id: int | None = None) -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id is not None:
        head += f"Content-ID: {content_id}\r\n"
    text = f"{head}\r\n{method} {url} HTTP/1.1\r\n"
    if body is not None:
        text += "Content-Type: application/json; type=entry\r\n\r\n" + json.dumps(body)
    else:
        text += "\r\n"
    return text


def changeset(*parts: str) -> str:
    boundary = f"changeset_{uuid.uuid4().hex}"
    inner = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--"
    return f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n{inner}'


def send(base: str, root: str, *parts: str, prefer: str | None = None) -> httpx.Response:
    boundary = f"batch_{uuid.uuid4().hex}"
    body = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--\r\n"
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}", "OData-Version": "4.0"}
    if prefer:
        headers["Prefer"] = prefer
    return httpx.post(f"{base}{root}$batch", content=body.encode(), headers=headers, timeout=60)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    content_id: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


Item = Answer | list[Answer]  # a request's answer, or a changeset's answers


def _boundary(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name == "boundary":
            return value.strip('"')
    raise AssertionError(f"no boundary in {content_type!r}")


def _head(chunk: str) -> tuple[dict[str, str], str]:
    head, _, rest = chunk.partition("\r\n\r\n")
    headers = {}
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, rest


def read_multipart(content_type: str, text: str) -> list[Item]:
    delimiter = f"--{_boundary(content_type)}"
    chunks = text.split(delimiter)
    assert chunks[-1].strip() in ("--", ""), "the body ends with the close delimiter"
    items: list[Item] = []
    for chunk in chunks[1:-1]:
        headers, rest = _head(chunk.removeprefix("\r\n").removesuffix("\r\n"))
        if headers["content-type"].startswith("multipart/mixed"):
            nested = read_multipart(headers["content-type"], rest)
            assert all(isinstance(a, Answer) for a in nested)
            items.append([a for a in nested if isinstance(a, Answer)])
            continue
        assert headers["content-type"] == "application/http" and headers["content-transfer-encoding"] == "binary"
        status_line, _, message = rest.partition("\r\n")
        version, status, _reason = status_line.split(" ", 2)
        assert version == "HTTP/1.1"
        inner_headers, body = _head(message)
        items.append(Answer(int(status), inner_headers, body.encode(), headers.get("content-id")))
    return items


def answers(response: httpx.Response) -> list[Item]:
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=batchresponse_")
    return read_multipart(response.headers["content-type"], response.text)


def flat(items: list[Item]) -> list[Answer]:
    return [a for item in items for a in (item if isinstance(item, list) else [item])]


def account(name: str, number: str | None = None) -> dict[str, Any]:
    return {"name": name, "accountnumber": number or f"B-{uuid.uuid4().hex[:8].upper()}", "customertypecode": 3}


def numbers(sb: Sandbox) -> set[str]:
    return {r["accountnumber"] for r in sb.dataverse.rows("accounts") if r.get("accountnumber")}


# --- Dataverse ----------------------------------------------------------------------------


def test_independent_requests_answer_in_order_and_the_batch_stops_at_the_first_error(sb: Sandbox):
    # The batch doc, "Handling errors": without odata.continue-on-error the batch stops at
    # the first failing request and the batch itself answers with that error's status.
    # Part URLs may be absolute, absolute paths or relative to the service root.
    first, second, bad, after = account("Batch One"), account("Batch Two"), {"nosuchcolumn": 1}, account("Not Reached")
    response = send(sb.dataverse_url, DV, http_part("POST", f"{sb.dataverse_url}{DV}accounts", first),
                    http_part("POST", f"{DV}accounts", second), http_part("POST", "accounts", bad),
                    http_part("POST", "accounts", after))  # fmt: skip
    assert response.status_code == 400
    got = flat(answers(response))
    assert [a.status for a in got] == [204, 204, 400]  # nothing after the error
    # "Batch responses": each create answers 204 with OData-EntityId and Location.
    assert got[0].headers["odata-entityid"].startswith(f"{sb.dataverse_url}{DV}accounts(")
    assert got[0].headers["location"] == got[0].headers["odata-entityid"]
    assert got[2].headers["content-type"].startswith("application/json")
    assert got[2].json()["error"]["code"] == "0x80060888" and "nosuchcolumn" in got[2].json()["error"]["message"]
    assert got[2].headers["req_id"] and got[2].headers["odata-version"] == "4.0"
    assert {first["accountnumber"], second["accountnumber"]} <= numbers(sb)
    assert after["accountnumber"] not in numbers(sb)


def test_continue_on_error_runs_every_request_and_says_so(sb: Sandbox):
    # The batch doc, "Handling errors": with Prefer: odata.continue-on-error the batch answers
    # 200 and every request runs; the preference is applied (OData 8.2.8.3).
    first, last = account("Go On 1"), account("Go On 2")
    response = send(sb.dataverse_url, DV, http_part("POST", "accounts", first),
                    http_part("GET", "accounts(00000000-0000-0000-0000-00000000dead)?$select=name"),
                    http_part("PATCH", f"accounts(accountnumber='{last['accountnumber']}')", last),
                    http_part("GET", f"accounts(accountnumber='{last['accountnumber']}')?$select=name"),
                    prefer="odata.continue-on-error")  # fmt: skip
    assert response.status_code == 200
    assert response.headers["preference-applied"] == "odata.continue-on-error"
    got = flat(answers(response))
    assert [a.status for a in got] == [204, 404, 204, 200]  # PATCH by alternate key is an upsert
    assert got[1].json()["error"]["code"] == "0x80040217"
    assert got[3].json()["name"] == "Go On 2"  # a later GET sees an earlier write
    assert {first["accountnumber"], last["accountnumber"]} <= numbers(sb)


def test_a_changeset_answers_per_part_with_content_ids_and_refers_to_earlier_parts(sb: Sandbox):
    # The batch doc, "Change sets" and "Reference URIs in an operation": parts carry
    # Content-ID; `$1` stands for the entity part 1 created, in a later part's URL and in an
    # @odata.bind; the answer is a changesetresponse echoing each Content-ID.
    parent = account("Parent Co")
    contact = {"firstname": "Ada", "lastname": "Lovelace", "parentcustomerid_account@odata.bind": "$1"}
    together = changeset(http_part("POST", f"{DV}accounts", parent, 1), http_part("POST", "contacts", contact, 2),
                         http_part("PATCH", "$1", {"telephone1": "+1 555 0100", "primarycontactid@odata.bind": "$2"},
                                   3))  # fmt: skip
    response = send(sb.dataverse_url, DV, together, http_part("GET", "accounts?$select=name&$top=1"))
    assert response.status_code == 200 and "preference-applied" not in response.headers
    items = answers(response)
    assert isinstance(items[0], list) and isinstance(items[1], Answer)
    assert [(a.content_id, a.status) for a in items[0]] == [("1", 204), ("2", 204), ("3", 204)]
    assert items[0][2].headers["odata-entityid"] == items[0][0].headers["odata-entityid"]
    row = next(r for r in sb.dataverse.rows("accounts") if r["accountnumber"] == parent["accountnumber"])
    ada = next(r for r in sb.dataverse.rows("contacts") if r.get("lastname") == "Lovelace")
    assert row["telephone1"] == "+1 555 0100" and row["_primarycontactid_value"] == ada["contactid"]
    assert ada["_parentcustomerid_value"] == row["accountid"]


def test_a_failing_part_rolls_back_the_whole_changeset_and_leaves_no_trace(sb: Sandbox):
    # The batch doc, "Change sets": if any operation fails, completed ones are rolled back;
    # the changeset answers with the one failure (OData 11.7.4), and the batch stops there.
    dv = httpx.Client(base_url=f"{sb.dataverse_url}{DV}", headers={"Prefer": "return=representation"})
    before = dv.post("contacts", json={"firstname": "Before", "lastname": "Rollback"}).json()
    delta = dv.get("accounts", params={"$select": "name"},
                   headers={"Prefer": "odata.track-changes"}).json()["@odata.deltaLink"]  # fmt: skip
    doomed = account("Doomed Co")
    child = {"lastname": "Doomed", "parentcustomerid_account@odata.bind": "$1"}
    doomed_set = changeset(http_part("POST", "accounts", doomed, 1), http_part("POST", "contacts", child, 2),
                           http_part("PATCH", "$1", {"name": "n" * 161}, 3))  # fmt: skip
    response = send(sb.dataverse_url, DV, doomed_set, http_part("POST", "accounts", account("After The Failure")))
    assert response.status_code == 400
    items = answers(response)
    assert len(items) == 1 and isinstance(items[0], Answer) and items[0].status == 400
    assert items[0].json()["error"]["code"] == "0x80044331"  # the length validation error
    assert doomed["accountnumber"] not in numbers(sb)
    assert not any(r.get("lastname") == "Doomed" for r in sb.dataverse.rows("contacts"))
    # Change tracking saw nothing, and the row version and autonumber sequences did not move.
    assert httpx.get(delta, headers={"Prefer": "odata.track-changes"}).json()["value"] == []
    after = dv.post("contacts", json={"firstname": "After", "lastname": "Rollback"}).json()
    assert after["versionnumber"] == before["versionnumber"] + 1
    seq = [int(c["msdynce_contactnumber"].split("-")[1]) for c in (before, after)]
    assert seq[1] == seq[0] + 1


def test_a_reference_to_an_undeclared_content_id_is_refused(sb: Sandbox):
    # The batch doc, note under "Reference URIs": "Content-ID Reference: '$1' does not exist
    # in the batch context." (400), for a reference before its declaration.
    orphan = {"lastname": "Orphan", "parentcustomerid_account@odata.bind": "$1"}
    early = changeset(http_part("POST", "contacts", orphan, 2), http_part("POST", "accounts", account("Late"), 1))
    got = flat(answers(send(sb.dataverse_url, DV, early, prefer="odata.continue-on-error")))
    assert [a.status for a in got] == [400]
    assert got[0].json()["error"]["message"] == "Content-ID Reference: '$1' does not exist in the batch context."
    assert not any(r.get("lastname") == "Orphan" for r in sb.dataverse.rows("contacts"))


def test_a_get_inside_a_changeset_or_a_body_that_is_not_multipart_is_refused(sb: Sandbox):
    # The batch doc, "Change sets": GET requests are not allowed within change sets.
    refused = send(sb.dataverse_url, DV, changeset(http_part("GET", "accounts?$top=1", content_id=1)))
    assert refused.status_code == 400 and "GET" in refused.json()["error"]["message"]
    garbled = httpx.post(f"{sb.dataverse_url}{DV}$batch", json={"requests": []})
    assert garbled.status_code == 400 and "multipart/mixed" in garbled.json()["error"]["message"]


def test_more_than_a_thousand_requests_are_refused(sb: Sandbox):
    # The batch doc: "Batch requests can contain up to 1000 individual requests"; past that
    # Dataverse answers with the OData library's words (DynamicsWebApi PR #71 quotes them).
    parts = [http_part("GET", "transactioncurrencies?$top=1")] * 1001
    refused = send(sb.dataverse_url, DV, *parts)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "The current change set contains too many operations. "
        "A maximum number of '1000' operations are allowed in a change set."
    )


def test_a_batch_is_one_request_but_spends_the_time_of_every_operation(sb: Sandbox):
    # APIS.md / Dataverse "Service protection API limits": a $batch counts as one request
    # toward the request limit, but every operation's execution time counts.
    httpx.post(f"{sb.dataverse_url}/_sandbox/reset-stats")
    protection = f"{sb.dataverse_url}/_sandbox/protection"
    httpx.post(protection, json={"enabled": True, "window_s": 60, "max_requests": 5, "max_execution_s": 1.0,
                                 "cost_ms": 100})  # fmt: skip
    try:
        parts = [http_part("POST", "accounts", account(f"Costly {n}")) for n in range(12)]
        first = send(sb.dataverse_url, DV, *parts)
        assert first.status_code == 200 and len(flat(answers(first))) == 12
        assert first.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "4"  # one request of five
        assert first.headers["x-ms-ratelimit-time-remaining-xrm-requests"] == "0.00"  # 12 x 100 ms > 1 s
        refused = send(sb.dataverse_url, DV, parts[0])
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "0x80072321"
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        httpx.post(protection, json={"enabled": False})
    snapshot = httpx.get(f"{sb.dataverse_url}/_sandbox/stats").json()
    assert snapshot["total"] == 2  # what "total" and "requests" always meant: HTTP requests
    assert [(r["method"], r["entity_set"], r["status"], r["count"]) for r in snapshot["requests"]] == [
        ("POST", "$batch", 200, 1),
        ("POST", "?", 429, 1),
    ]
    assert snapshot["operations"] == [{"method": "POST", "entity_set": "accounts", "status": 204, "count": 12}]
    assert snapshot["operations_total"] == 13


def test_faults_hit_the_batch_as_a_whole(sb: Sandbox):
    # An injected error answers the batch request itself: none of its parts run.
    httpx.post(f"{sb.dataverse_url}/_sandbox/reset-stats")
    sb.dataverse_service.faults.configure(FaultConfig(error_rate=1.0, statuses={503: 1.0}, after_share=0.0))
    try:
        ghost = account("Ghost")
        response = send(sb.dataverse_url, DV, http_part("POST", "accounts", ghost))
        assert response.status_code == 503 and response.headers["retry-after"]
    finally:
        sb.dataverse_service.faults.configure(FaultConfig())
    assert ghost["accountnumber"] not in numbers(sb)
    assert httpx.get(f"{sb.dataverse_url}/_sandbox/stats").json()["operations"] == []


# --- F&O ------------------------------------------------------------------------------------


def test_f_and_o_batch_with_composite_keys_and_one_refused_create(sb: Sandbox):
    # APIS.md: F&O keys are composite with dataAreaId, there is no upsert, and a second
    # create of a key fails; `/data/$batch` answers each request in order.
    key = "CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')"
    missing = "CustomersV3(dataAreaId='usmf',CustomerAccount='NOPE')"
    new = {"dataAreaId": "usmf", "CustomerAccount": "BATCH-01", "OrganizationName": "Batch Wholesales",
           "CustomerGroupId": "30", "SalesCurrencyCode": "USD"}  # fmt: skip
    response = send(sb.fno_url, FNO, http_part("PATCH", f"{sb.fno_url}{FNO}{key}", {"OrganizationName": "Forest 2"}),
                    http_part("POST", "CustomersV3", new), http_part("POST", f"{FNO}CustomersV3", new),
                    http_part("GET", f"{key}?$select=OrganizationName"),
                    http_part("PATCH", missing, {"OrganizationName": "x"}),
                    prefer="odata.continue-on-error")  # fmt: skip
    assert response.status_code == 200 and response.headers["ms-dyn-aid"]
    got = flat(answers(response))
    assert [a.status for a in got] == [204, 201, 400, 200, 404]  # no upsert: PATCH of a missing key is 404
    assert got[1].headers["location"] == f"{sb.fno_url}{FNO}CustomersV3(dataAreaId='usmf',CustomerAccount='BATCH-01')"
    assert "The record already exists." in got[2].json()["error"]["innererror"]["message"]
    assert got[3].json()["OrganizationName"] == "Forest 2"
    assert all(a.headers["ms-dyn-aid"] for a in got)
    assert "BATCH-01" in {r["CustomerAccount"] for r in sb.fno.rows("CustomersV3")}


def test_f_and_o_changeset_numbers_a_customer_and_updates_it_by_reference(sb: Sandbox):
    # OData 11.7.3.1: `$1` is the entity part 1 created (F&O names it in Location). A
    # failing changeset leaves nothing behind, number sequence included.
    create = {"dataAreaId": "usmf", "OrganizationName": "Numbered By Batch", "CustomerGroupId": "30"}
    together = changeset(http_part("POST", "CustomersV3", create, 1),
                         http_part("PATCH", "$1", {"SalesCurrencyCode": "EUR"}, 2))  # fmt: skip
    ok = answers(send(sb.fno_url, FNO, together))
    assert isinstance(ok[0], list) and [(a.content_id, a.status) for a in ok[0]] == [("1", 201), ("2", 204)]
    account_number = ok[0][0].json()["CustomerAccount"]
    row = next(r for r in sb.fno.rows("CustomersV3") if r["CustomerAccount"] == account_number)
    assert row["SalesCurrencyCode"] == "EUR" and row["OrganizationName"] == "Numbered By Batch"
    doomed = changeset(http_part("POST", "CustomersV3", {**create, "OrganizationName": "Gone"}, 1),
                       http_part("PATCH", "$1", {"NoSuchField": 1}, 2))  # fmt: skip
    failed = send(sb.fno_url, FNO, doomed)
    assert failed.status_code == 200  # F&O's batch answers 200; the failure is inside
    got = answers(failed)
    assert len(got) == 1 and isinstance(got[0], Answer) and got[0].status == 400
    assert "Gone" not in {r["OrganizationName"] for r in sb.fno.rows("CustomersV3")}
    again = answers(send(sb.fno_url, FNO, http_part("POST", "CustomersV3", {**create, "OrganizationName": "Next"})))
    assert isinstance(again[0], Answer)
    assert int(again[0].json()["CustomerAccount"][1:]) == int(account_number[1:]) + 1  # no gap from the rollback
