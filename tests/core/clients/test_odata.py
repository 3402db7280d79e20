"""The OData client against httpx.MockTransport: narrow protocol cases only."""

import re

import httpx
import pytest

from p2c_core.clients.dataverse import PROFILE as DATAVERSE
from p2c_core.clients.fno import PROFILE as FNO
from p2c_core.clients.odata import ODataClient, RetryPolicy
from p2c_core.clients.origin import ForeignOriginError
from p2c_core.errors import NotFoundError, PermanentError, ThrottledError, TransientError


def client(handler, *, retries=3, sleeps=None, profile=DATAVERSE, max_inline_wait=30.0):
    sleeps = sleeps if sleeps is not None else []
    return ODataClient(
        profile, "http://svc.test", transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_retries=retries, max_inline_wait=max_inline_wait), sleep=sleeps.append,
    )  # fmt: skip


def test_error_body_becomes_typed_error_with_request_id():
    def handler(request):
        body = {"error": {"code": "0x80040217", "message": "account With Id = x Does Not Exist"}}
        return httpx.Response(404, json=body, headers={"x-ms-service-request-id": "req-42"})

    with pytest.raises(NotFoundError) as info:
        client(handler).get_json("accounts(00000000-0000-0000-0000-000000000000)")
    err = info.value
    assert (err.status, err.code, err.request_id) == (404, "0x80040217", "req-42")
    assert "Does Not Exist" in str(err) and "req-42" in str(err)


def test_429_retry_after_is_honoured_then_succeeds():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(
                429, headers={"Retry-After": "2"}, json={"error": {"code": "0x80072322", "message": "x"}}
            )
        return httpx.Response(200, json={"value": []})

    sleeps: list[float] = []
    assert client(handler, sleeps=sleeps).get_json("accounts") == {"value": []}
    assert len(calls) == 3 and all(s >= 2.0 for s in sleeps)


def test_long_retry_after_is_not_slept_but_raised():
    def handler(request):
        return httpx.Response(429, headers={"Retry-After": "300"}, json={"error": {"message": "busy"}})

    sleeps: list[float] = []
    with pytest.raises(ThrottledError) as info:
        client(handler, sleeps=sleeps).get_json("accounts")
    assert info.value.retry_after == 300.0 and sleeps == []


def test_retries_are_bounded_for_5xx_and_connection_errors():
    calls = []

    def handler(request):
        calls.append(1)
        raise httpx.ConnectError("refused")

    with pytest.raises(TransientError, match="connection failed"):
        client(handler, retries=2).get_json("accounts")
    assert len(calls) == 3


def test_html_instead_of_json_is_a_clear_error():
    def handler(request):
        return httpx.Response(200, text="<html>sign in</html>", headers={"content-type": "text/html"})

    with pytest.raises(PermanentError, match="expected a JSON body, got text/html"):
        client(handler, profile=FNO).get_json("CustomersV3")


def test_paging_follows_next_link_and_detects_loops():
    def handler(request):
        if "skiptoken" not in str(request.url):
            return httpx.Response(200, json={"value": [{"a": 1}], "@odata.nextLink": "http://svc.test/x?$skiptoken=1"})
        return httpx.Response(200, json={"value": [{"a": 2}], "@odata.nextLink": "http://svc.test/x?$skiptoken=1"})

    pages = client(handler).pages("accounts")
    assert next(pages).rows == [{"a": 1}]
    assert next(pages).rows == [{"a": 2}]
    with pytest.raises(PermanentError, match="paging loops"):
        next(pages)


def test_fno_request_id_header_and_non_odata_error():
    def handler(request):
        return httpx.Response(502, text="Bad gateway", headers={"ms-dyn-aid": "aid-7"})

    with pytest.raises(TransientError) as info:
        client(handler, retries=0, profile=FNO).get_json("CustomersV3")
    assert info.value.request_id == "aid-7" and "non-JSON body" in str(info.value)


def test_links_are_stored_relative_to_the_service_root_and_foreign_ones_refused():
    c = ODataClient(DATAVERSE, "https://contoso.crm.dynamics.com")
    link = "https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$select=name&$deltatoken=919042%2108%2f22"
    assert c.relative(link) == "accounts?$select=name&$deltatoken=919042%2108%2f22"
    built = c._http.build_request("GET", c.relative(link)).url
    assert (
        str(built)
        == "https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$select=name&$deltatoken=919042%2108%2f22"
    )
    # Another host name, even of the same org, is another origin: refused, never stored (issue 21).
    with pytest.raises(ForeignOriginError, match=re.escape("https://contoso.crm4.dynamics.com:443")):
        c.relative(link.replace("crm.", "crm4."))


def test_fno_inner_error_message_is_the_one_reported():
    def handler(request):
        body = {"error": {"code": "", "message": "An error has occurred.", "innererror": {
            "message": "Write failed for table row of type 'CustomersV3'. The record already exists.",
            "type": "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException",
            "stacktrace": "at Dynamics.Ax.Application..."}}}  # fmt: skip
        return httpx.Response(400, json=body, headers={"ms-dyn-aid": "aid-9"})

    with pytest.raises(PermanentError) as info:
        client(handler, profile=FNO).request("POST", "CustomersV3", json_body={})
    assert "The record already exists" in str(info.value) and "stacktrace" not in str(info.value)
    assert "at Dynamics" not in str(info.value)
