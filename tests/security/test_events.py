"""Issue 18, acceptance 3: the event functions refuse anyone without the key (401), any body
they do not take (400, a log line naming why), enqueue nothing then, write nothing for a
forged event, and never put the key in a log, a failure entry or a span."""

from __future__ import annotations

import json
import logging
import uuid

import azure.functions as func
import pytest

from p2c_cli.host import indexed
from p2c_core.events import MAX_BODY_BYTES
from tests.e2e.conftest import E2E
from tests.e2e.live import KEY, Live, live_sync


@pytest.fixture
def live(e2e: E2E, monkeypatch: pytest.MonkeyPatch, otel, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="p2c")  # whatever an earlier in-process CLI run set
    otel[0].clear()
    with live_sync(e2e, monkeypatch) as found:
        yield found
    spans = json.dumps([dict(s.attributes or {}) | {"name": s.name} for s in otel[0].get_finished_spans()])
    failures = json.dumps([f.__dict__ for f in e2e.runtime.state.failures()], default=str)
    for where, text in (("logs", caplog.text), ("spans", spans), ("failure entries", failures)):
        assert KEY not in text, f"the events key appears in {where}"


def post(service: str, body: bytes, params: dict[str, str] | None = None, headers: dict[str, str] | None = None):
    import function_app

    fn = {f.get_function_name(): f.get_user_function() for f in indexed(function_app.app)}[f"{service}_events"]
    request = func.HttpRequest(method="POST", url=f"/api/events/{service}", body=body,
                               params=params or {}, headers=headers or {})  # fmt: skip
    return fn(req=request)


def context(row_id: str, message: str = "Update", table: str = "account") -> bytes:
    return json.dumps({"MessageName": message, "PrimaryEntityName": table, "PrimaryEntityId": row_id}).encode()


@pytest.mark.parametrize(
    ("params", "headers"),
    [({}, {}), ({"code": "wrong-key"}, {}), ({}, {"x-functions-key": KEY[:-1]}), ({"code": ""}, {})],
)
def test_no_key_or_a_wrong_key_is_401_and_enqueues_nothing(live: Live, params, headers, caplog):
    for service in ("dataverse", "fno"):
        answer = post(service, context(str(uuid.uuid4())), params, headers)
        assert answer.status_code == 401 and json.loads(answer.get_body()) == {"error": "unauthorized"}
    assert live.queued() == 0
    assert "event refused: " in caplog.text


def test_the_key_in_either_place_is_taken(live: Live):
    row_id = str(uuid.uuid4())
    assert post("dataverse", context(row_id), {"code": KEY}).status_code == 202
    assert post("dataverse", context(row_id), headers={"x-functions-key": KEY}).status_code == 202
    assert live.queued() == 2


@pytest.mark.parametrize(
    ("service", "body", "why"),
    [
        ("dataverse", b"x" * (MAX_BODY_BYTES + 1), "over the"),
        ("dataverse", b"{not json", "not JSON"),
        ("dataverse", b"[1]", "not a JSON object"),
        ("dataverse", b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (
            "dataverse",
            json.dumps(
                {"MessageName": "Assign", "PrimaryEntityName": "account", "PrimaryEntityId": str(uuid.uuid4())}
            ).encode(),
            "MessageName",
        ),
        ("dataverse", context("not-a-guid"), "PrimaryEntityId"),
        ("dataverse", context(str(uuid.uuid4()), table="acc'ount"), "PrimaryEntityName"),
        ("fno", json.dumps({"EntityName": "CustomersV3", "EventType": "Updated"}).encode(), "ControlNumber"),
        (
            "fno",
            json.dumps(
                {"ControlNumber": 1, "EntityName": "CDSSalesOrderHeaders", "EventType": "Updated", "dataAreaId": "usmf"}
            ).encode(),
            "has no SalesOrderNumber",
        ),
        (
            "fno",
            json.dumps(
                {
                    "ControlNumber": 1,
                    "EntityName": "CDSSalesOrderHeaders",
                    "EventType": "Changed",
                    "SalesOrderNumber": "SO-1",
                }
            ).encode(),
            "EventType",
        ),
    ],
)
def test_a_bad_body_is_400_with_a_log_line_naming_why_and_enqueues_nothing(live: Live, service, body, why, caplog):
    answer = post(service, body, {"code": KEY})
    assert answer.status_code == 400 and why in json.loads(answer.get_body())["error"]
    assert f"{service} event refused (400): " in caplog.text and why in caplog.text
    assert live.queued() == 0


def test_forged_events_for_rows_that_do_not_exist_write_nothing(live: Live):
    e2e = live.e2e
    e2e.sync("accounts", "products", "fno_orders")
    failures = e2e.runtime.state.failures()  # the seed's own (hostile rows)
    e2e.sandbox.dataverse_service.accounting.reset()
    e2e.sandbox.fno_service.accounting.reset()
    assert post("dataverse", context(str(uuid.uuid4())), {"code": KEY}).status_code == 202
    assert post("dataverse", context(str(uuid.uuid4()), "Delete"), {"code": KEY}).status_code == 202
    forged_order = {"ControlNumber": 99, "EntityName": "CDSSalesOrderHeaders", "EventType": "Updated",
                    "dataAreaId": "usmf", "SalesOrderNumber": "SO-FORGED", "OrderTotalAmount": 1}  # fmt: skip
    assert post("fno", json.dumps(forged_order).encode(), {"code": KEY}).status_code == 202
    assert live.queued() == 3
    live.drain_nudges()
    for service in (e2e.sandbox.dataverse_service, e2e.sandbox.fno_service):
        writes = [r for r in service.accounting.snapshot()["requests"] if r["method"] != "GET"]
        assert writes == []
    assert not any(r["SalesOrderNumber"] == "SO-FORGED" for r in e2e.sandbox.fno.rows("CDSSalesOrderHeaders"))
    assert e2e.runtime.state.failures() == failures


def test_push_off_answers_404_and_enqueues_nothing(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    with live_sync(e2e, monkeypatch) as live:
        monkeypatch.setenv("P2C_EVENTS_ENABLED", "false")
        e2e.restart_runtime()
        answer = post("dataverse", context(str(uuid.uuid4())), {"code": KEY})
        assert answer.status_code == 404 and live.queued() == 0
