"""Several legal entities, Sales -> F&O (issue 23): records routed to their company, keys
carrying it, per-company defaults and value maps, and the upgrade from one company."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2c_core.envelope import Envelope, Record
from p2c_core.flows import get_flow
from p2c_core.signing import seal

from .conftest import E2E

accounts = get_flow("accounts")
BY_UNIT = {
    "usmf": {"business_unit": "Contoso US"},
    "demf": {"business_unit": "Contoso DE", "defaults": {"customer_group": "40", "language": "de"},
             "value_maps": {"payment_terms": {"1": "14T"}}},
}  # fmt: skip


def use_companies(e2e: E2E, monkeypatch: pytest.MonkeyPatch, companies: dict[str, Any], **more: str) -> None:
    monkeypatch.setenv("P2C_COMPANIES", json.dumps(companies))
    for name, value in more.items():
        monkeypatch.setenv(name, value)
    e2e.restart_runtime()


def customers(e2e: E2E, company: str) -> dict[str, dict[str, Any]]:
    return {r["CustomerAccount"]: r for r in e2e.sandbox.fno.rows("CustomersV3") if r["dataAreaId"] == company}


def send(e2e: E2E, records: list[Record]) -> bytes:
    body = seal(Envelope(flow="accounts", records=records), e2e.runtime.signing_key)  # as the poll signs it
    e2e.storage.queue(accounts.queue).send_message(body)
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    return body


def account(number: str, name: str, **more: Any) -> dict[str, Any]:
    return {"accountnumber": number, "name": name, "customertypecode": 3, "statecode": 0, **more}


def test_a_message_and_a_key_map_written_before_the_company_map_belong_to_the_default_company(e2e: E2E, monkeypatch):
    e2e.sync("accounts")  # one company: key map entries under the bare account numbers
    synced = next(e for e in e2e.runtime.state.entries("accounts") if e.version >= 0)
    use_companies(e2e, monkeypatch, BY_UNIT)
    # As the previous release queued them: no company, bare keys.
    old = Record(key="OLD-1", version=1, data=account("OLD-1", "Old Message Ltd"))
    again = Record(key=synced.source_key, version=synced.version, data=account(synced.source_key, "Renamed Ltd"))
    body = send(e2e, [old, again])
    assert b'"company"' not in body
    us, de = customers(e2e, "usmf"), customers(e2e, "demf")
    assert us["OLD-1"]["OrganizationName"] == "Old Message Ltd" and "OLD-1" not in de
    assert us[synced.source_key]["OrganizationName"] == "Renamed Ltd" and synced.source_key not in de
    assert us["OLD-1"]["CustomerGroupId"] == "10"  # the default company's (global) defaults
    state = e2e.runtime.state
    assert state.get_entry("accounts", "usmf|OLD-1") is not None and state.get_entry("accounts", "OLD-1") is None
    moved = state.get_entry("accounts", f"usmf|{synced.source_key}")
    assert moved is not None and moved.version == synced.version and moved.target_key == synced.source_key
    assert not {f.source_key for f in state.failures("accounts")} & {"OLD-1", "usmf|OLD-1", moved.source_key}


def test_records_of_two_companies_in_one_message_are_written_each_to_its_own_with_its_own_defaults(
    e2e: E2E, monkeypatch
):
    use_companies(e2e, monkeypatch, BY_UNIT, P2C_VALUE_MAPS__PAYMENT_TERMS='{"1": "Net30"}')
    records = [
        Record(key="usmf|TWO-1", company="usmf", version=1, data=account("TWO-1", "US Ltd", paymenttermscode=1)),
        Record(key="demf|TWO-1", company="demf", version=1, data=account("TWO-1", "DE GmbH", paymenttermscode=1)),
        Record(key="demf|TWO-2", company="demf", version=1, data=account("TWO-2", "Zwei GmbH")),
    ]
    send(e2e, records)
    us, de = customers(e2e, "usmf"), customers(e2e, "demf")
    assert us["TWO-1"]["OrganizationName"] == "US Ltd" and de["TWO-1"]["OrganizationName"] == "DE GmbH"
    assert "TWO-2" not in us and de["TWO-2"]["OrganizationName"] == "Zwei GmbH"
    assert (us["TWO-1"]["CustomerGroupId"], us["TWO-1"]["LanguageId"], us["TWO-1"]["PaymentTerms"]) == (
        "10",
        "en-us",
        "Net30",
    )
    assert (de["TWO-1"]["CustomerGroupId"], de["TWO-1"]["LanguageId"], de["TWO-1"]["PaymentTerms"]) == (
        "40",
        "de",
        "14T",
    )
    keys = {e.source_key: e.target_key for e in e2e.runtime.state.entries("accounts")}
    assert keys == {"usmf|TWO-1": "TWO-1", "demf|TWO-1": "TWO-1", "demf|TWO-2": "TWO-2"}
