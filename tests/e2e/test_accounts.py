"""accounts end to end: Sales customer accounts become F&O customers (issue 3 acceptance)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from p2c_core.errors import MappingError
from p2c_core.flows import get_flow
from p2c_core.mapping import Mapper

from .conftest import E2E

accounts = get_flow("accounts")


def expected_customers(e2e: E2E) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """What the mapping says F&O must hold, computed from the Sales side, and the expected failures."""
    currencies = {
        str(c["transactioncurrencyid"]).lower(): c["isocurrencycode"]
        for c in e2e.sandbox.dataverse.rows("transactioncurrencies")
    }
    mapper = Mapper(e2e.runtime.settings)
    expected: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    for row in e2e.sandbox.dataverse.rows("accounts"):
        if row.get("customertypecode") != 3 or row.get("statecode") != 0:
            continue
        key = row.get("accountnumber")
        if not key:
            failures[f"accounts({row['accountid']})"] = "has no accountnumber"
            continue
        data = {**row, "transactioncurrencyid": currencies.get(str(row.get("_transactioncurrencyid_value")).lower())}
        try:
            payload, create = mapper.map(accounts, key, data)
        except MappingError as exc:
            failures[key] = str(exc)
            continue
        expected[key] = {**payload, **create}
    return expected, failures


def fno_customers(e2e: E2E) -> dict[str, dict[str, Any]]:
    return {r["CustomerAccount"]: r for r in e2e.sandbox.fno.rows("CustomersV3") if r["dataAreaId"] == "usmf"}


def assert_synced(e2e: E2E, natives: set[str]) -> dict[str, dict[str, Any]]:
    expected, failures = expected_customers(e2e)
    got = fno_customers(e2e)
    assert set(got) - natives == set(expected), "exactly the customer accounts, no other record"
    for key, fields in expected.items():
        for name, value in fields.items():
            actual = got[key].get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert actual is not None and float(actual) == float(value), (key, name)
            else:
                assert actual == value, (key, name, actual, value)
    recorded = {f.source_key: f for f in e2e.runtime.state.failures("accounts")}
    assert set(recorded) == set(failures)
    for key, message in failures.items():
        assert message.split(" (")[0] in recorded[key].message
    return expected


def test_sync_creates_every_customer_account_once_then_writes_nothing(e2e: E2E):
    natives = set(fno_customers(e2e))
    first = e2e.sync("accounts")
    expected = assert_synced(e2e, natives)
    assert first.flows["accounts"].written == len(expected) > 20
    assert first.flows["accounts"].skipped > 0  # non-customers and inactive accounts
    second = e2e.sync("accounts")
    assert second.flows["accounts"].written == 0 and second.flows["accounts"].read == 0
    cursor = e2e.runtime.state.get_cursor("accounts")
    assert cursor.link is not None and "deltatoken" in cursor.link


def test_an_edit_in_sales_syncs_exactly_that_change(e2e: E2E):
    e2e.sync("accounts")
    key = next(iter(expected_customers(e2e)[0]))
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{key}')", json={"name": "Renamed Ltd", "telephone1": "555-0100"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
    summary = e2e.sync("accounts")
    assert (summary.flows["accounts"].read, summary.flows["accounts"].written) == (1, 1)
    row = fno_customers(e2e)[key]
    assert row["OrganizationName"] == "Renamed Ltd" and row["PrimaryContactPhone"] == "555-0100"


def test_hostile_keys_and_values_sync_or_fail_specifically(e2e: E2E):
    usd = next(c for c in e2e.sandbox.dataverse.rows("transactioncurrencies") if c["isocurrencycode"] == "USD")
    hostile = {
        "Q'1-O'BRIEN": "O'Brien & Daughters",
        "PCT-100%": "100% Organic Ltd.",
        "SL/ASH-7": "A/B Testing Co",
        "HASH#9": "#1 Supplies",
        "AMP&PLUS+1": "Smith & Jones + Partners",
        "ÜML-東京": "東京商事 Müller GmbH",
    }
    with e2e.dataverse() as dv:
        for number, name in hostile.items():
            currency = f"/transactioncurrencies({usd['transactioncurrencyid']})"
            body = {"accountnumber": number, "name": name, "customertypecode": 3,
                    "transactioncurrencyid@odata.bind": currency}  # fmt: skip
            dv.post("accounts", json=body).raise_for_status()
        dv.post(
            "accounts", json={"accountnumber": "LONG-1", "name": "N" * 120, "customertypecode": 3}
        ).raise_for_status()
        dv.post("accounts", json={"accountnumber": "X" * 21, "name": "Too long a key", "customertypecode": 3})
        dv.post("accounts", json={"accountnumber": "NARNIA-1", "name": "Far Away", "customertypecode": 3,
                                  "address1_country": "Narnia"}).raise_for_status()  # fmt: skip
        dv.post("accounts", json={"accountnumber": "BLANK-1", "name": "   ", "customertypecode": 3}).raise_for_status()
        dv.post(
            "accounts", json={"accountnumber": "   ", "name": "Blank key", "customertypecode": 3}
        ).raise_for_status()
        dv.post("accounts", json={"accountnumber": "HUGE-1", "name": "Huge Credit", "customertypecode": 3,
                                  "creditlimit": 1e16}).raise_for_status()  # fmt: skip
    e2e.sync("accounts")
    got = fno_customers(e2e)
    for number, name in hostile.items():
        assert got[number]["OrganizationName"] == name
    failures = {f.source_key: f for f in e2e.runtime.state.failures("accounts")}
    assert "over the target's maximum of 100" in failures["LONG-1"].message
    assert failures["LONG-1"].error_class == "MappingError"
    assert "value map 'country' has no entry for 'Narnia'" in failures["NARNIA-1"].message
    assert failures["BLANK-1"].message == "OrganizationName is required, but source name is empty"
    assert "CreditLimit = 1e+16 is beyond what the target can store" in failures["HUGE-1"].message
    blank_key = [f for f in failures.values() if "has no accountnumber" in f.message]
    assert len(blank_key) == 2  # the seeded account without a number, and the one whose number is blank
    assert not {"LONG-1", "NARNIA-1", "BLANK-1", "HUGE-1", "   "} & set(got)
    if "X" * 21 in {r.get("accountnumber") for r in e2e.sandbox.dataverse.rows("accounts")}:
        assert "CustomerAccount is 21 characters" in failures["X" * 21].message


def test_fixing_a_value_map_and_replaying_clears_the_failure(e2e: E2E, monkeypatch):
    from p2c_core import engine

    with e2e.dataverse() as dv:
        dv.post("accounts", json={"accountnumber": "NARNIA-2", "name": "Far Away", "customertypecode": 3,
                                  "address1_country": "Narnia"}).raise_for_status()  # fmt: skip
    e2e.sync("accounts")
    assert [f.source_key for f in e2e.runtime.state.failures("accounts") if f.source_key == "NARNIA-2"]
    monkeypatch.setenv("P2C_VALUE_MAPS__COUNTRY", '{"Narnia": "NA"}')
    e2e.restart_runtime()
    assert engine.replay(e2e.runtime, accounts, {"NARNIA-2"}) == 1
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    assert "NARNIA-2" not in {f.source_key for f in e2e.runtime.state.failures("accounts")}
    assert fno_customers(e2e)["NARNIA-2"]["DeliveryAddressCountryRegionISOCode"] == "NA"


def test_malformed_messages_become_failures_not_crash_loops(e2e: E2E):
    queue = e2e.storage.queue(accounts.queue)
    queue.send_message(b"not json at all")
    queue.send_message(b'{"v": 7, "flow": "accounts", "records": []}')
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    messages = sorted(f.message for f in e2e.runtime.state.failures("accounts"))
    assert any("not JSON" in m for m in messages) and any("unknown message version 7" in m for m in messages)
    poisoned = list(e2e.storage.queue(accounts.poison_queue).receive_messages(max_messages=10))
    assert len(poisoned) == 2


def test_killed_mid_apply_then_rerun_leaves_each_customer_once(e2e: E2E):
    natives = set(fno_customers(e2e))
    total = len(expected_customers(e2e)[0])
    env = {**os.environ, **e2e.env, "P2C_CHUNK_SIZE": "1", "P2C_HTTP_MAX_RETRIES": "0"}
    child = subprocess.Popen([sys.executable, "-m", "p2c_cli", "sync", "accounts"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(set(fno_customers(e2e)) - natives) < 3:
            assert child.poll() is None, "the sync ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    written_before = len(set(fno_customers(e2e)) - natives)
    assert 3 <= written_before < total, "killed in the middle of applying"
    e2e.sync("accounts")
    assert_synced(e2e, natives)
    assert e2e.host.depth(accounts.queue) == 0
    cursor = e2e.runtime.state.get_cursor("accounts")
    assert cursor.link is not None and "deltatoken" in cursor.link


def test_an_expired_delta_token_falls_back_to_a_full_resync_that_writes_nothing(e2e: E2E):
    import time
    from datetime import timedelta

    first = e2e.sync("accounts").flows["accounts"]
    # The org now keeps changes for no time at all: the stored delta token has expired.
    e2e.sandbox.dataverse_service.delta_retention = timedelta(seconds=0)
    time.sleep(1.1)
    again = e2e.sync("accounts").flows["accounts"]
    assert again.read == first.read and again.written == 0
    assert again.failed == first.failed  # the same two bad records, nothing new
    assert all(r.status == "ok" for r in e2e.runtime.state.runs("accounts", limit=50))
    assert "deltatoken" in str(e2e.runtime.state.get_cursor("accounts").link)


def test_a_value_of_the_wrong_type_fails_that_record_with_the_services_reason(e2e: E2E):
    from p2c_core.envelope import Envelope, Record
    from p2c_core.signing import seal

    good = {"accountnumber": "TYPED-1", "name": "Typed Ltd", "customertypecode": 3, "statecode": 0}
    bad = {**good, "accountnumber": "TYPED-2", "creditlimit": "a lot", "numberofemployees": 12.5}
    records = [Record(key=r["accountnumber"], version=1, data=r) for r in (good, bad)]
    message = seal(Envelope(flow="accounts", records=records), e2e.runtime.signing_key)  # as the poll signs it
    e2e.storage.queue(accounts.queue).send_message(message)
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    failure = next(f for f in e2e.runtime.state.failures("accounts") if f.source_key == "TYPED-2")
    assert (failure.error_class, failure.status) == ("PermanentError", 400)
    assert "CreditLimit" in failure.message and failure.request_id
    assert "TYPED-1" in fno_customers(e2e) and "TYPED-2" not in fno_customers(e2e)  # one bad record fails alone
