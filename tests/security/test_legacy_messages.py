"""Upgrades lose nothing: messages queued by the previous main (unsigned, v1, frozen in
fixtures/ as it wrote them) are not applied and not dropped: each record becomes a failure
entry with the record, and `replay` re-signs it; a forged one is still refused then."""

from __future__ import annotations

import json
from pathlib import Path

from p2c_core import ops
from p2c_core.envelope import MAX_VERSION
from p2c_core.flows import get_flow
from tests.e2e.conftest import E2E
from tests.e2e.test_accounts import fno_customers

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNTS = get_flow("accounts")


def test_messages_queued_before_signing_are_kept_then_replayed_after_review(e2e: E2E):
    poll = (FIXTURES / "v1_poll_message.json").read_bytes()
    retry = (FIXTURES / "v1_retry_message.json").read_bytes()
    keys = [r["key"] for r in json.loads(poll)["records"]]
    assert json.loads(poll)["v"] == 1 and "sig" not in json.loads(poll)
    queue = e2e.storage.queue(ACCOUNTS.queue)
    queue.send_message(poll)
    queue.send_message(retry)
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    assert not set(keys) & set(fno_customers(e2e))  # nothing unsigned was written
    held = {f.source_key: f for f in e2e.runtime.state.failures("accounts")}
    assert set(held) == {f"unverified:{k}" for k in keys}
    assert all(f.record and json.loads(f.record)["key"] in keys for f in held.values())

    replayed = ops.replay(e2e.runtime, "accounts", set(held))  # the operator looked: re-signed
    assert replayed == {"accounts": len(keys)}
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    assert set(keys) <= set(fno_customers(e2e))
    assert e2e.runtime.state.failures("accounts") == []


def test_a_forged_message_in_the_old_format_is_kept_and_still_refused_after_replay(e2e: E2E):
    old = json.loads((FIXTURES / "v1_retry_message.json").read_bytes())
    key = old["records"][0]["key"]
    old["records"][0].update(version=MAX_VERSION, force=True)
    old["records"][0]["data"]["name"] = "Forged In v1"
    e2e.storage.queue(ACCOUNTS.queue).send_message(json.dumps(old).encode())
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    assert ops.replay(e2e.runtime, "accounts", {f"unverified:{key}"}) == {"accounts": 1}
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    assert key not in fno_customers(e2e)
    failure = {f.source_key: f for f in e2e.runtime.state.failures("accounts")}[key]
    assert failure.error_class == "VersionOutOfRange"
