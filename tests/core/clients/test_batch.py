"""The `$batch` codec and ODataClient.batch against httpx.MockTransport (the protocol's edges;
the sandbox's real `$batch` is exercised end to end in tests/e2e)."""

import httpx
import pytest

from p2c_core.clients import batch
from p2c_core.clients.batch import BatchRequest
from p2c_core.clients.fno import PROFILE as FNO
from p2c_core.clients.odata import ODataClient, RetryPolicy
from p2c_core.errors import PermanentError, ThrottledError, TransientError

ROOT = "http://svc.test/data/"


def test_requests_are_encoded_as_independent_http_parts_with_absolute_urls():
    ctype, body = batch.encode(ROOT, [
        BatchRequest("PATCH", "CustomersV3(dataAreaId='usmf',CustomerAccount='O%27Brien')", {"cross-company": "true"},
                     {"OrganizationName": "Müller & Söhne"}),
        BatchRequest("POST", "CustomersV3", json_body={"CustomerAccount": "A-1"}),
    ])  # fmt: skip
    boundary = ctype.split("boundary=")[1]
    assert ctype.startswith("multipart/mixed; boundary=batch_")
    text = body.decode()
    parts = text.split(f"--{boundary}")
    assert parts[-1].strip() == "--" and len(parts) == 4  # preamble, two parts, close
    first = parts[1].split("\r\n")
    assert first[1:3] == ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    assert (
        first[4]
        == f"PATCH {ROOT}CustomersV3(dataAreaId='usmf',CustomerAccount='O%27Brien')?cross-company=true HTTP/1.1"
    )
    assert '{"OrganizationName": "Müller & Söhne"}' in parts[1]
    assert f"POST {ROOT}CustomersV3 HTTP/1.1" in parts[2]


def _answer(*parts: tuple[int, str, dict[str, str]], boundary="batchresponse_7") -> httpx.Response:
    chunks = []
    for status, body, headers in parts:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        chunks.append(f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                      f"HTTP/1.1 {status} X\r\n{head}\r\n{body}\r\n")  # fmt: skip
    content = "".join(chunks) + f"--{boundary}--\r\n"
    return httpx.Response(200, content=content.encode(), headers={
        "Content-Type": f"multipart/mixed; boundary={boundary}", "ms-dyn-aid": "batch-1"})  # fmt: skip


def client(handler) -> ODataClient:
    return ODataClient(FNO, "http://svc.test", transport=httpx.MockTransport(handler),
                       retry=RetryPolicy(max_retries=1), sleep=lambda s: None)  # fmt: skip


def test_each_part_answers_alone_as_a_response_or_its_typed_error():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        error = '{"error":{"code":"","message":"An error has occurred.","innererror":{"message":"Name too long"}}}'
        return _answer(
            (201, '{"CustomerAccount":"A-1"}', {"Content-Type": "application/json"}),
            (400, error, {"Content-Type": "application/json", "ms-dyn-aid": "part-2"}),
            (429, '{"error":{"code":"429","message":"slow down"}}', {"Retry-After": "7"}),
        )

    answers = client(handler).batch([BatchRequest("POST", "CustomersV3", json_body={}) for _ in range(3)])
    assert seen[0].url.path == "/data/$batch" and seen[0].headers["Prefer"] == "odata.continue-on-error"
    ok, bad, throttled = answers
    assert isinstance(ok, httpx.Response) and ok.json() == {"CustomerAccount": "A-1"}
    assert isinstance(bad, PermanentError) and "HTTP 400: Name too long" in str(bad) and bad.request_id == "part-2"
    assert isinstance(throttled, ThrottledError) and throttled.retry_after == 7
    assert throttled.request_id == "batch-1"  # a part without its own id carries the batch's


def test_requests_the_service_did_not_answer_are_transient_and_a_garbled_answer_is_an_error():
    answers = client(lambda r: _answer((204, "", {}))).batch([BatchRequest("PATCH", "X", json_body={})] * 2)
    assert isinstance(answers[0], httpx.Response) and answers[0].status_code == 204
    assert isinstance(answers[1], TransientError)
    with pytest.raises(PermanentError, match="not multipart"):
        client(lambda r: httpx.Response(200, json={"value": []})).batch([BatchRequest("GET", "X")])


def test_changeset_responses_are_flattened_in_order():
    inner = ("--changesetresponse_1\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\n"
             "HTTP/1.1 204 No Content\r\n\r\n\r\n--changesetresponse_1--\r\n")  # fmt: skip
    content = (f"--b\r\nContent-Type: multipart/mixed; boundary=changesetresponse_1\r\n\r\n{inner}\r\n"
               "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\n{}\r\n"
               "--b--\r\n")  # fmt: skip
    statuses = [r.status_code for r in batch.decode("multipart/mixed; boundary=b", content.encode())]
    assert statuses == [204, 404]
