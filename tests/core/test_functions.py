"""What the registered functions call, on Azurite and the sandbox, wired from app settings."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from p2c_cli.azurite import Azurite
from p2c_cli.local import sandbox_env
from p2c_core import functions
from p2c_core.flows import get_flow
from p2c_core.runtime import get_runtime, reset_runtime
from p2c_core.settings import setting_names
from p2c_core.state.storage import Storage
from p2c_sandbox import Sandbox

ACCOUNTS = get_flow("accounts")


@pytest.fixture
def app(azurite: Azurite, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    """App settings pointing at a fresh sandbox and a clean Azurite; a new runtime before and after."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    with Sandbox() as sb:
        # The demo seed carries accounts that fail on purpose (no number, an over-long name): not here.
        for row in sb.dataverse.rows("accounts"):
            if not row["accountnumber"] or len(row["name"]) > 100:
                httpx.delete(f"{sb.dataverse_url}/api/data/v9.2/accounts({row['accountid']})").raise_for_status()
        for name, value in sandbox_env(azurite.connection_string, sb.dataverse_url, sb.fno_url).items():
            monkeypatch.setenv(name, value)
        reset_runtime()
        try:
            yield storage
        finally:
            reset_runtime()


def a_message(storage: Storage) -> tuple[str, bytes]:
    """(id, body) of one message the poll put on the accounts queue, as the host delivers it."""
    (message,) = storage.queue(ACCOUNTS.queue).receive_messages(max_messages=1)
    return message.id, message.content


def test_run_poll_enqueues_the_source_changes(app: Storage):
    outcome = functions.run_poll("accounts")
    assert (outcome.flow, outcome.kind) == ("accounts", "poll")
    counts = outcome.counts
    assert counts.read > 0 and counts.failed == 0 and counts.enqueued == counts.read - counts.skipped
    depth = app.queue(ACCOUNTS.queue).get_queue_properties().approximate_message_count
    assert depth and depth >= 1


def test_run_apply_writes_a_message_and_records_nothing_failed(app: Storage):
    functions.run_poll("accounts")
    message_id, body = a_message(app)
    outcome = functions.run_apply("accounts", body, message_id=message_id, last_attempt=True)
    assert outcome.kind == "apply" and outcome.counts.written > 0 and outcome.counts.failed == 0
    assert get_runtime().state.failures("accounts") == []


def test_an_unexpected_error_is_recorded_on_the_last_delivery_only(app: Storage):
    functions.run_poll("accounts")
    message_id, body = a_message(app)
    get_runtime().fno.odata.close()  # a fault no handler expects: the F&O client is gone
    with pytest.raises(RuntimeError):
        functions.run_apply("accounts", body, message_id=message_id, last_attempt=False)
    assert get_runtime().state.failures("accounts") == []  # the host delivers it again
    with pytest.raises(RuntimeError):
        functions.run_apply("accounts", body, message_id=message_id, last_attempt=True)
    (failure,) = get_runtime().state.failures("accounts")
    assert (failure.source_key, failure.error_class, failure.attempt) == (f"message-{message_id}", "RuntimeError", 0)
    assert failure.message.startswith("message failed on its last delivery and goes to p2c-accounts-poison: ")
    with pytest.raises(RuntimeError):
        functions.run_apply("accounts", body, message_id=None, last_attempt=True)
    assert {f.source_key for f in get_runtime().state.failures("accounts")} == {
        f"message-{message_id}",
        "message-unknown",
    }


def test_http_status_is_200_when_healthy_and_503_with_a_failure(app: Storage):
    answer = functions.http_status()
    assert (answer["status_code"], answer["mimetype"]) == (200, "application/json")
    assert json.loads(answer["body"])["healthy"] is True
    functions.run_poll("accounts")
    message_id, body = a_message(app)
    get_runtime().fno.odata.close()
    with pytest.raises(RuntimeError):
        functions.run_apply("accounts", body, message_id=message_id, last_attempt=True)
    answer = functions.http_status()
    report = json.loads(answer["body"])
    assert answer["status_code"] == 503 and report["healthy"] is False
    assert report["flows"]["accounts"]["failures"] == 1 and report["flows"]["products"]["healthy"] is True
