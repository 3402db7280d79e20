"""Writes in `$batch`: few round trips per record, and each record still answers alone."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E


def _requests(e2e: E2E, service: str) -> dict[tuple[str, str], int]:
    side = e2e.sandbox.dataverse_service if service == "dataverse" else e2e.sandbox.fno_service
    counts: dict[tuple[str, str], int] = {}
    for r in side.accounting.snapshot()["requests"]:
        counts[(r["method"], r["entity_set"])] = counts.get((r["method"], r["entity_set"]), 0) + r["count"]
    return counts


def test_a_message_of_customers_is_written_in_one_batch_after_one_existence_query(e2e: E2E):
    e2e.sandbox.fno_service.accounting.reset()
    summary = e2e.sync("accounts")
    written = summary.flows["accounts"].written
    fno = _requests(e2e, "fno")
    assert written > 40
    # 48 customers fill one message and spill one into a second (a message stays under
    # 64 KB): one existence query and one $batch for the first, a look-up and a create
    # for the lone one. One request per record would be 96.
    assert fno.get(("POST", "$batch"), 0) == 1 and sum(fno.values()) <= 6
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
