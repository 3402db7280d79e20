"""Issue 21, acceptance 2: queue messages cannot forge the truth. A forged message (no
signature, a wrong one, version 2^63-1, `op: delete`, `force: true`) writes nothing and
leaves a failure entry naming why; a real change after it still syncs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2c_core import engine, ops
from p2c_core.envelope import MAX_VERSION, Envelope, Record
from p2c_core.flows import get_flow
from p2c_core.signing import seal
from p2c_core.state import Failure
from tests.e2e.conftest import E2E
from tests.e2e.test_accounts import fno_customers

ACCOUNTS = get_flow("accounts")


def synced_key(e2e: E2E) -> str:
    e2e.sync("accounts")
    return sorted(k for k in fno_customers(e2e) if k.startswith("ACC-"))[0]


def body(key: str, version: int, **record: Any) -> dict[str, Any]:
    data = {"accountnumber": key, "name": "Forged Name Ltd"}
    return {"v": 2, "flow": "accounts", "records": [{"key": key, "version": version, "data": data, **record}]}


def deliver(e2e: E2E, message: bytes) -> None:
    e2e.storage.queue(ACCOUNTS.queue).send_message(message)
    e2e.host.drain(timeout=60, idle_sleep=0.05)


def failures(e2e: E2E) -> dict[str, Failure]:
    return {f.source_key: f for f in e2e.runtime.state.failures("accounts")}


def signed(e2e: E2E, raw: dict[str, Any]) -> bytes:
    return seal(Envelope.model_validate(raw), e2e.runtime.signing_key)


def forged(e2e: E2E, case: str, key: str) -> bytes:
    if case == "unsigned":
        return json.dumps(body(key, MAX_VERSION)).encode()
    if case == "wrong signature":
        return json.dumps({**body(key, MAX_VERSION), "sig": "0" * 64}).encode()
    if case == "changed after signing":
        good = json.loads(signed(e2e, body(key, 1)))
        good["records"][0]["version"] = MAX_VERSION
        return json.dumps(good).encode()
    if case == "force":
        return json.dumps(body(key, 1, force=True)).encode()
    if case == "replay":
        return json.dumps(body(key, 1, replay=True)).encode()
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["unsigned", "wrong signature", "changed after signing", "force", "replay"])
def test_a_message_p2c_did_not_sign_writes_nothing_and_is_kept_for_review(e2e: E2E, case):
    key = synced_key(e2e)
    before = fno_customers(e2e)[key]["OrganizationName"]
    deliver(e2e, forged(e2e, case, key))
    assert fno_customers(e2e)[key]["OrganizationName"] == before
    held = failures(e2e)[f"unverified:{key}"]
    assert held.error_class == "UntrustedMessage" and ("signed" in held.message or "signature" in held.message)
    assert held.record is not None and json.loads(held.record)["force"] is False  # kept, never forced
    entry = e2e.runtime.state.get_entry("accounts", key)
    assert entry is not None and entry.version < MAX_VERSION  # not pinned
    assert_a_real_change_still_syncs(e2e, key)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (lambda key: body(key, MAX_VERSION), "above any accounts row version"),
        # A signed `op: delete` is p2c's own since deletes exist (docs/lifecycle.md): what it does is
        # the flow's ON_DELETE choice, within the same version bounds (tests/e2e/test_lifecycle.py).
    ],
)
def test_even_a_signed_record_is_refused_beyond_what_the_source_can_issue(e2e: E2E, raw, why):
    """A signature says p2c wrote it, e.g. replaying a failure entry planted in the table."""
    key = synced_key(e2e)
    before = fno_customers(e2e)[key]["OrganizationName"]
    deliver(e2e, signed(e2e, raw(key)))
    assert fno_customers(e2e)[key]["OrganizationName"] == before
    failure = failures(e2e)[key]
    assert why in failure.message and failure.error_class in ("VersionOutOfRange", "OperationRefused")
    assert_a_real_change_still_syncs(e2e, key)


def test_a_planted_failure_entry_is_re_signed_by_replay_and_still_refused(e2e: E2E):
    key = synced_key(e2e)
    planted = Record(key=key, version=MAX_VERSION, data={"accountnumber": key, "name": "Planted"}, force=True)
    e2e.runtime.state.record_failure(Failure(flow="accounts", source_key=key, attempt=1, error_class="X",
                                             message="planted", record=planted.model_dump_json()))  # fmt: skip
    assert ops.replay(e2e.runtime, "accounts", {key}) == {"accounts": 1}
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    assert fno_customers(e2e)[key]["OrganizationName"] != "Planted"
    assert failures(e2e)[key].error_class == "VersionOutOfRange"
    assert_a_real_change_still_syncs(e2e, key)


def test_a_version_too_large_for_the_key_map_is_a_failure_entry_not_a_crash(e2e: E2E):
    key = synced_key(e2e)
    deliver(e2e, json.dumps(body(key, 2**64)).encode())
    (entry,) = [f for k, f in failures(e2e).items() if k.startswith("message-")]
    assert entry.error_class == "MessageError" and "version" in entry.message
    assert_a_real_change_still_syncs(e2e, key)


def test_an_f_and_o_poll_time_from_the_future_is_refused(e2e: E2E):
    e2e.sync("products")
    flow = get_flow("products")
    assert flow.source.service == "fno"
    key = next(iter(e2e.runtime.state.entries("products"))).source_key
    far = Record(key=key, version=MAX_VERSION, data={"ItemNumber": key})
    e2e.storage.queue(flow.queue).send_message(seal(Envelope(flow="products", records=[far]), e2e.runtime.signing_key))
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    failure = {f.source_key: f for f in e2e.runtime.state.failures("products")}[key]
    assert failure.error_class == "VersionOutOfRange" and "later than now" in failure.message
    entry = e2e.runtime.state.get_entry("products", key)
    assert entry is None or entry.version < MAX_VERSION


def assert_a_real_change_still_syncs(e2e: E2E, key: str) -> None:
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{key}')", json={"name": "Real Change Ltd"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
    assert e2e.sync("accounts").flows["accounts"].written == 1
    assert fno_customers(e2e)[key]["OrganizationName"] == "Real Change Ltd"


def test_apply_never_raises_for_an_oversized_message_it_recorded(e2e: E2E):
    big = b'{"v": 2, "flow": "accounts", "records": [], "pad": "' + b"x" * 70_000 + b'"}'
    out = engine.apply(e2e.runtime, ACCOUNTS, big)  # sending it whole to poison raised before
    assert out.counts.failed == 1
    (entry,) = [f for k, f in failures(e2e).items() if k.startswith("message-")]
    assert "over the 64 KB" in entry.message
    (copy,) = list(e2e.storage.queue(ACCOUNTS.poison_queue).receive_messages(max_messages=5))
    stand_in = json.loads(copy.content)
    assert stand_in["p2c_poison"] == "truncated" and stand_in["bytes"] == len(big)
    assert stand_in["failure"] == {"flow": "accounts", "source_key": entry.source_key}
