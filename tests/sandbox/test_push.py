"""The sandbox pushes like the services: registration through the Web API, a RemoteExecutionContext
or a data event after each committed write, the services' retry rules, and seeded faults."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from p2c_sandbox import Sandbox
from p2c_sandbox.server import BackgroundServer

KEY = "sandbox-push-test-key-0123456789abcdef"


@dataclass
class Receiver:
    """Records every POST; answers with `statuses` in turn (then 200)."""

    statuses: list[int] = field(default_factory=list)
    got: list[tuple[dict, dict, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def post(self, request: Request) -> Response:
        body = json.loads(await request.body())
        with self.lock:
            self.got.append((body, dict(request.headers), dict(request.query_params)))
            status = self.statuses.pop(0) if self.statuses else 200
        return Response(status_code=status)

    def wait(self, n: int, within: float = 20.0) -> list[tuple[dict, dict, dict]]:
        deadline = time.monotonic() + within  # a deadline for the background sender, not a speed goal
        while time.monotonic() < deadline and len(self.got) < n:
            time.sleep(0.02)
        return self.got


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    found = Receiver()
    server = BackgroundServer(Starlette(routes=[Route("/hook", found.post, methods=["POST"])]))
    server.start()
    try:
        yield found, f"{server.url}/hook"
    finally:
        server.stop()


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def register(dv: httpx.Client, url: str, message: str, table: str, filtering: str | None = None) -> str:
    answer = dv.post("serviceendpoints", json={"name": "hook", "url": url, "contract": 8, "authtype": 4,
                                               "authvalue": KEY, "messageformat": 2})  # fmt: skip
    assert answer.status_code == 204
    endpoint = answer.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    sdk_message = dv.get("sdkmessages", params={"$filter": f"name eq '{message}'"}).json()["value"][0]
    filters = dv.get(
        "sdkmessagefilters",
        params={
            "$filter": f"primaryobjecttypecode eq '{table}' and _sdkmessageid_value eq {sdk_message['sdkmessageid']}"
        },
    )
    step = {"name": f"{message} of {table}", "mode": 1, "stage": 40,
            "sdkmessageid@odata.bind": f"/sdkmessages({sdk_message['sdkmessageid']})",
            "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({filters.json()['value'][0]['sdkmessagefilterid']})",
            "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint})"}  # fmt: skip
    if filtering:
        step["filteringattributes"] = filtering
    assert dv.post("sdkmessageprocessingsteps", json=step).status_code == 204
    return endpoint


def an_account(box: Sandbox) -> dict:
    return next(r for r in box.dataverse.rows("accounts") if r.get("accountnumber"))


def test_an_update_posts_a_remote_execution_context_with_the_key_as_code(box: Sandbox, receiver):
    found, url = receiver
    with httpx.Client(base_url=box.dataverse_url + "/api/data/v9.2/") as dv:
        register(dv, url, "Update", "account", filtering="name,telephone1")
        account = an_account(box)
        dv.patch(f"accounts({account['accountid']})", json={"telephone2": "1"}).raise_for_status()  # not filtered
        dv.patch(f"accounts({account['accountid']})", json={"name": "Hooked"}).raise_for_status()
    [(context, headers, params)] = found.wait(1)
    assert params == {"code": KEY}
    assert headers["x-ms-dynamics-entity-name"] == "account" and headers["x-ms-dynamics-request-name"] == "Update"
    assert context["MessageName"] == "Update" and context["PrimaryEntityName"] == "account"
    assert context["PrimaryEntityId"] == account["accountid"] and context["Stage"] == 40 and context["Mode"] == 1
    assert context["OperationCreatedOn"].startswith("/Date(")
    target = context["InputParameters"][0]["value"]
    assert {a["key"]: a["value"] for a in target["Attributes"]} == {"name": "Hooked", "accountid": account["accountid"]}
    assert box.dataverse_service.push.sender.snapshot()["events"] == 1  # the unfiltered edit sent nothing


def test_dataverse_retries_once_and_only_after_502_503_504(box: Sandbox, receiver):
    found, url = receiver
    found.statuses = [503, 503, 500]
    with httpx.Client(base_url=box.dataverse_url + "/api/data/v9.2/") as dv:
        register(dv, url, "Update", "account")
        account = an_account(box)
        dv.patch(f"accounts({account['accountid']})", json={"name": "First"}).raise_for_status()
        assert len(found.wait(2)) == 2  # 503, then once more: 503 again, given up
        dv.patch(f"accounts({account['accountid']})", json={"name": "Second"}).raise_for_status()
        assert len(found.wait(3)) == 3  # 500: not retried
    deadline = time.monotonic() + 10  # the sender records the outcome after the answer
    while time.monotonic() < deadline and box.dataverse_service.push.sender.snapshot()["failed"] < 2:
        time.sleep(0.02)
    stats = box.dataverse_service.push.sender.snapshot()
    assert len(found.got) == 3 and stats["retried"] == 1 and stats["failed"] == 2


def test_fno_retries_three_times_a_second_apart_then_logs_the_error(box: Sandbox, receiver):
    found, url = receiver
    found.statuses = [500, 500, 500, 500]
    with httpx.Client(base_url=box.fno_url) as client:
        client.post("/_sandbox/data-events", json={"entity": "CustomersV3", "events": ["Updated"], "endpoint": url,
                                                  "company": "usmf"}).raise_for_status()  # fmt: skip
        customer = next(r for r in box.fno.rows("CustomersV3") if r["dataAreaId"] == "usmf")
        client.patch(f"/data/CustomersV3(dataAreaId='usmf',CustomerAccount='{customer['CustomerAccount']}')",
                     json={"OrganizationName": "Evented"}).raise_for_status()  # fmt: skip
        got = found.wait(4, within=30)
        assert len(got) == 4
        event = got[0][0]
        assert event["EntityName"] == "CustomersV3" and event["EventType"] == "Updated"
        assert isinstance(event["ControlNumber"], int) and event["OrganizationName"] == "Evented"
        assert event["BusinessEventLegalEntity"] == "USMF" and event["EventTime"].startswith("/Date(")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not client.get("/_sandbox/push").json()["errors"]:
            time.sleep(0.05)
        push = client.get("/_sandbox/push").json()
    assert push["retried"] == 3 and push["errors"][-1]["status"] == 500


def test_seeded_faults_drop_duplicate_and_oversize(box: Sandbox, receiver):
    found, url = receiver
    with httpx.Client(base_url=box.dataverse_url) as client:
        assert client.post("/_sandbox/push", json={"bogus": 1}).status_code == 400
        client.post("/_sandbox/push", json={"seed": 3, "drop_rate": 0.3, "duplicate_rate": 0.3,
                                            "oversize_rate": 0.5}).raise_for_status()  # fmt: skip
        dv = httpx.Client(base_url=box.dataverse_url + "/api/data/v9.2/")
        register(dv, url, "Update", "account")
        account = an_account(box)
        for i in range(40):
            dv.patch(f"accounts({account['accountid']})", json={"name": f"Name {i}"}).raise_for_status()
        deadline = time.monotonic() + 20
        stats = client.get("/_sandbox/push").json()
        while time.monotonic() < deadline and (stats["queued"] or len(found.got) < stats["sent"]):
            time.sleep(0.05)
            stats = client.get("/_sandbox/push").json()
    assert stats["events"] == 40 and stats["dropped"] > 0 and stats["duplicated"] > 0 and stats["oversized"] > 0
    assert len(found.got) == 40 - stats["dropped"] + stats["duplicated"]
    trimmed = [c for c, h, _ in found.got if h.get("x-ms-dynamics-msg-size-exceeded")]
    assert trimmed and all("InputParameters" not in c and c["PrimaryEntityId"] == account["accountid"] for c in trimmed)
