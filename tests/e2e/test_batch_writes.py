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


# --- documents with lines: header and lines in changesets --------------------------------

DEPENDENCIES = ("accounts", "contact_customers", "products")


def _fno_order_in_sales(e2e: E2E, skip: int = 0) -> dict:
    orders = sorted(
        (o for o in e2e.sandbox.dataverse.rows("salesorders") if o["msdynce_ismaintainedexternally"]),
        key=lambda o: o["ordernumber"],
    )
    return orders[skip]


def _add_fno_lines(e2e: E2E, number: str, count: int, *, description: str = "") -> None:
    with httpx.Client(base_url=e2e.sandbox.fno_url + "/data/", params={"cross-company": "true"}) as fno:
        for n in range(count):
            fno.post("CDSSalesOrderLines", json={
                "dataAreaId": "usmf", "SalesOrderNumber": number, "LineCreationSequenceNumber": 5000 + n,
                "ProductNumber": "D0003", "OrderedSalesQuantity": 1.0 + n, "SalesPrice": 10.0,
                "SalesUnitSymbol": "ea", "LineDescription": description,
            }).raise_for_status()  # fmt: skip
        # F&O recalculates the header when lines change: the scan sees the order as changed.
        address = f"CDSSalesOrderHeaders(dataAreaId='usmf',SalesOrderNumber='{number}')"
        fno.patch(address, json={"SalesOrderName": f"{count} more lines"}).raise_for_status()


def _sales_lines(e2e: E2E, order: dict) -> list[dict]:
    return [
        r for r in e2e.sandbox.dataverse.rows("salesorderdetails") if r["_salesorderid_value"] == order["salesorderid"]
    ]


def test_a_600_line_order_is_written_in_a_few_requests(e2e: E2E):
    e2e.sync(*DEPENDENCIES, "fno_orders")
    order = _fno_order_in_sales(e2e)
    _add_fno_lines(e2e, order["ordernumber"], 600)
    dataverse = e2e.sandbox.dataverse_service.accounting
    dataverse.reset()
    assert e2e.sync("fno_orders").flows["fno_orders"].written == 1
    sent = dataverse.snapshot()
    # The header's upsert, one read of the order's lines, one changeset of 600 creates;
    # line by line it was 602 requests.
    assert sent["total"] <= 10, sent["requests"]
    assert _requests(e2e, "dataverse").get(("POST", "$batch"), 0) >= 1
    created = sum(r["count"] for r in sent["operations"] if r["entity_set"] == "salesorderdetails")
    assert created >= 600
    assert len({r["sequencenumber"] for r in _sales_lines(e2e, order)} & {5000 + n for n in range(600)}) == 600


def test_one_document_whose_lines_are_refused_fails_alone_and_writes_none_of_them(e2e: E2E):
    e2e.sync(*DEPENDENCIES, "fno_orders")
    good, bad = _fno_order_in_sales(e2e, 0), _fno_order_in_sales(e2e, 1)
    _add_fno_lines(e2e, good["ordernumber"], 5)
    # Sales takes 2,000 characters of a line's description: the last line of this order is refused.
    _add_fno_lines(e2e, bad["ordernumber"], 4)
    with httpx.Client(base_url=e2e.sandbox.fno_url + "/data/", params={"cross-company": "true"}) as fno:
        number = bad["ordernumber"]
        line = f"CDSSalesOrderLines(dataAreaId='usmf',SalesOrderNumber='{number}',LineCreationSequenceNumber=5003)"
        fno.patch(line, json={"LineDescription": "x" * 2500}).raise_for_status()
    before_bad = {r["sequencenumber"] for r in _sales_lines(e2e, bad)}
    summary = e2e.sync("fno_orders").flows["fno_orders"]
    assert summary.written == 1 and summary.failed == 1
    (failure,) = e2e.runtime.state.failures("fno_orders")
    assert failure.source_key == bad["ordernumber"] and failure.status == 400
    assert "maximum allowed length" in failure.message
    # Its changeset was rolled back whole: none of its new lines, not even the three valid ones.
    assert {r["sequencenumber"] for r in _sales_lines(e2e, bad)} == before_bad
    assert {5000, 5001, 5002, 5003, 5004} <= {r["sequencenumber"] for r in _sales_lines(e2e, good)}
