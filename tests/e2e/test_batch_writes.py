"""Writes in `$batch`: few round trips per record, and each record still answers alone."""

from __future__ import annotations

import httpx
import pytest

from p2c_core.flows import get_flow
from p2c_sandbox import FaultConfig
from p2c_sandbox.protection import ProtectionConfig
from tests.e2e.conftest import E2E


def _requests(e2e: E2E, service: str) -> dict[tuple[str, str], int]:
    side = e2e.sandbox.dataverse_service if service == "dataverse" else e2e.sandbox.fno_service
    counts: dict[tuple[str, str], int] = {}
    for r in side.accounting.snapshot()["requests"]:
        counts[(r["method"], r["entity_set"])] = counts.get((r["method"], r["entity_set"]), 0) + r["count"]
    return counts


def test_a_message_of_customers_is_written_in_one_batch(e2e: E2E):
    e2e.sandbox.fno_service.accounting.reset()
    summary = e2e.sync("accounts")
    written = summary.flows["accounts"].written
    fno = _requests(e2e, "fno")
    assert written > 40
    # 48 customers fill one message and spill one into a second (a message stays under
    # 64 KB): one $batch of creates for the first (no look-up: a create that meets an
    # existing customer is redone alone), a look-up and a create for the lone one.
    # One request per record would be 48, a look-up and a write each 96.
    assert fno.get(("POST", "$batch"), 0) == 1 and sum(fno.values()) <= 3
    inner = e2e.sandbox.fno_service.accounting.snapshot()["operations"]
    assert sum(r["count"] for r in inner if r["method"] == "POST" and r["status"] == 201) >= written - 2
    accounts = {r["CustomerAccount"] for r in e2e.sandbox.fno.rows("CustomersV3")}
    for entry in e2e.runtime.state.entries("accounts"):
        if entry.version >= 0:
            assert entry.source_key in accounts


def test_a_record_the_target_refuses_fails_alone_with_the_services_words(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    # A payment-terms code longer than F&O's 10 characters: p2c maps it, F&O refuses it.
    terms = '{"1": "Net30", "2": "Net10", "3": "Net45", "4": "Net60DaysEOM"}'
    monkeypatch.setenv("P2C_VALUE_MAPS__PAYMENT_TERMS", terms)
    e2e.restart_runtime()
    summary = e2e.sync("accounts")
    refused = {e.source_key for e in e2e.runtime.state.failures("accounts") if e.error_class == "PermanentError"}
    by_terms = {
        r["accountnumber"]: r.get("paymenttermscode")
        for r in e2e.sandbox.dataverse.rows("accounts")
        if r.get("customertypecode") == 3 and r.get("statecode") == 0 and r.get("accountnumber")
    }
    assert refused and refused == {k for k, terms in by_terms.items() if terms == 4}
    failure = next(f for f in e2e.runtime.state.failures("accounts") if f.source_key in refused)
    assert "PaymentTerms" in failure.message and failure.status == 400 and failure.request_id
    in_fno = {r["CustomerAccount"] for r in e2e.sandbox.fno.rows("CustomersV3")}
    assert not refused & in_fno
    others = {k for k, terms in by_terms.items() if terms != 4 and len(k) <= 20} - {
        f.source_key for f in e2e.runtime.state.failures("accounts")
    }
    assert others and others <= in_fno  # the rest of the batch went through
    assert summary.flows["accounts"].failed >= len(refused)


def test_a_batched_create_that_meets_an_existing_record_updates_it_instead(e2e: E2E):
    # F&O holds a customer that p2c has never written (created there by hand): the batch's
    # create fails for it alone, and it is updated instead, keeping F&O's own fields.
    source = next(r for r in e2e.sandbox.dataverse.rows("accounts")
                  if r.get("customertypecode") == 3 and r.get("statecode") == 0 and r.get("accountnumber")
                  and len(r["name"]) <= 100)  # fmt: skip
    number = source["accountnumber"]
    with httpx.Client(base_url=e2e.sandbox.fno_url + "/data/") as fno:
        native = {"dataAreaId": "usmf", "CustomerAccount": number, "OrganizationName": "Old name",
                  "IsExternallyMaintained": "No", "PartyType": "Organization"}  # fmt: skip
        fno.post("CustomersV3", json=native).raise_for_status()
    e2e.sync("accounts")
    rows = [r for r in e2e.sandbox.fno.rows("CustomersV3") if r["CustomerAccount"] == number]
    assert len(rows) == 1 and rows[0]["OrganizationName"] == source["name"]
    assert rows[0]["IsExternallyMaintained"] == "No"  # a create-only field is not forced on an existing record
    assert number not in {f.source_key for f in e2e.runtime.state.failures("accounts")}


@pytest.mark.parametrize("concurrency", [1, 8])
def test_records_with_lines_in_one_message_are_applied_several_at_once(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch, concurrency: int
):
    # F&O orders carry their lines, so they are written record by record. With Dataverse
    # refusing a second request at once, one after another never meets the cap; several at
    # once do (and are refused with the concurrency code, then retried).
    monkeypatch.setenv("P2C_RECORD_CONCURRENCY", str(concurrency))
    e2e.restart_runtime()
    e2e.sync("accounts", "contact_customers", "products")  # what the orders refer to
    dataverse = e2e.sandbox.dataverse_service
    dataverse.protection.configure(ProtectionConfig(enabled=True, max_concurrent=1, window_s=60))
    dataverse.faults.configure(FaultConfig(latency_ms=30))
    try:
        e2e.sync("fno_orders")
        refused = dataverse.protection.snapshot()["refused"]
    finally:
        dataverse.protection.configure(ProtectionConfig())
        dataverse.faults.configure(FaultConfig())
    assert (refused.get("concurrency", 0) > 0) == (concurrency > 1), refused
    e2e.sync("fno_orders")  # whatever the refusals put back, without them
    in_sales = {r["ordernumber"] for r in e2e.sandbox.dataverse.rows("salesorders")}
    flow = get_flow("fno_orders")
    assert flow.source.where is not None
    carried = {
        r["SalesOrderNumber"] for r in e2e.sandbox.fno.rows("CDSSalesOrderHeaders") if flow.source.where.matches(r)
    }
    assert len(carried) > 8 and carried <= in_sales
    assert [f.source_key for f in e2e.runtime.state.failures("fno_orders")] == []
