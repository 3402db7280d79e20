"""Pushed events as nudges (p2c_core/events.py) and the nudge message (p2c_core/nudge.py)."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from p2c_core import events
from p2c_core.errors import MessageError
from p2c_core.events import BadEvent, dataverse_nudges, fno_nudges
from p2c_core.flows import all_flows
from p2c_core.nudge import Nudge, open_sealed, seal

FLOWS = list(all_flows())
ORDER_ID = "6d81597f-0f9f-e711-8122-000d3aa2331c"
LINE_ID = "7e81597f-0f9f-e711-8122-000d3aa2331c"


def test_logical_names_and_wcf_dates():
    assert events.logical_name("accounts") == "account"
    assert events.logical_name("salesorderdetails") == "salesorderdetail"
    assert events.logical_name("currencies") == "currency"
    assert events.epoch("/Date(1506409448000-0700)/") == 1506409448.0
    assert events.epoch("/Date(1506384247000)/") == 1506384247.0
    assert events.epoch("2017-09-26") is None and events.epoch(None) is None


def test_the_key_is_compared_whole_and_nobody_passes_without_one():
    key = SecretStr("k" * 40)
    assert events.authorized(key, {"code": "k" * 40}, {})
    assert events.authorized(key, {}, {"x-functions-key": "k" * 40})
    assert not events.authorized(key, {"code": "k" * 39}, {})
    assert not events.authorized(key, {}, {})
    assert not events.authorized(None, {"code": "anything"}, {})


def test_an_account_update_nudges_every_flow_that_reads_accounts():
    found = dataverse_nudges({"MessageName": "Update", "PrimaryEntityName": "account", "PrimaryEntityId": ORDER_ID,
                              "OperationCreatedOn": "/Date(1000)/"}, FLOWS, received=5.0)  # fmt: skip
    assert {(n.flow, n.table, n.id, n.op, n.changed) for n in found} >= {
        ("accounts", "accounts", ORDER_ID, "Update", 1.0)
    }
    assert all(n.received == 5.0 and not n.line for n in found)


def test_a_line_nudges_its_document_from_the_target_or_names_the_line_to_read():
    reference = {"__type": "EntityReference:...", "Id": ORDER_ID, "LogicalName": "salesorder"}
    target = {"Attributes": [{"key": "salesorderid", "value": reference}, {"key": "quantity", "value": 2}]}
    context = {"MessageName": "Create", "PrimaryEntityName": "salesorderdetail", "PrimaryEntityId": LINE_ID,
               "InputParameters": [{"key": "Target", "value": target}]}  # fmt: skip
    [found] = dataverse_nudges(context, FLOWS, received=1.0)
    assert (found.flow, found.table, found.id, found.line) == ("orders", "salesorders", ORDER_ID, False)
    # Without the parent (an Update of other columns, or a body over 256 KB): the line is read.
    trimmed = {k: v for k, v in context.items() if k != "InputParameters"} | {"MessageName": "Update"}
    [line] = dataverse_nudges(trimmed, FLOWS, received=1.0)
    assert (line.table, line.id, line.line) == ("salesorderdetails", LINE_ID, True)
    # A line deleted without its parent in the event: the document's recalculation says it.
    assert dataverse_nudges(trimmed | {"MessageName": "Delete"}, FLOWS, received=1.0) == []


def test_an_fno_line_event_nudges_its_document_and_other_companies_are_left_out():
    event = {"ControlNumber": 5637144577, "EntityName": "CDSSalesOrderLines", "EventType": "Updated",
             "dataAreaId": "usmf", "SalesOrderNumber": "SO-001000", "LineCreationSequenceNumber": 1}  # fmt: skip
    [found] = fno_nudges(event, FLOWS, "usmf", received=1.0)
    assert (found.flow, found.table, found.key, found.version) == ("fno_orders", "CDSSalesOrderHeaders",
                                                                   "SO-001000", 5637144577)  # fmt: skip
    assert fno_nudges(event | {"dataAreaId": "demf"}, FLOWS, "usmf", received=1.0) == []
    with pytest.raises(BadEvent, match="legal entity"):
        fno_nudges(event | {"dataAreaId": "x'y"}, FLOWS, "usmf", received=1.0)


def test_a_nudge_is_signed_and_a_changed_or_foreign_one_is_refused():
    nudge = Nudge(flow="accounts", table="accounts", id=ORDER_ID, received=1.0)
    body = seal(nudge, b"k" * 32)
    assert open_sealed(body, b"k" * 32) == nudge
    with pytest.raises(MessageError, match="signature"):
        open_sealed(body, b"j" * 32)
    forged = json.loads(body) | {"id": LINE_ID}
    with pytest.raises(MessageError, match="signature"):
        open_sealed(json.dumps(forged).encode(), b"k" * 32)
    with pytest.raises(MessageError, match="not JSON"):
        open_sealed(b"{", b"k" * 32)
    # A flow envelope in the nudge queue is not a nudge: refused, never applied.
    with pytest.raises(MessageError):
        open_sealed(b'{"v": 2, "flow": "accounts", "records": []}', b"k" * 32)
